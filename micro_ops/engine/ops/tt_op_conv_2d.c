/* CONV_2D glue: TFLM's ConvPrepare / CalculateOpDataConv, then tt_conv_2d.
 * Python twin: tflm_train/ops/conv_2d.py. */
#include "tt_conv_2d.h"
#include "tt_op.h"
#include "tt_op_mac_common.h"

/* Conv2DOptions field indices (schema.fbs). */
enum {
  OPT_PADDING = 0,
  OPT_STRIDE_W,
  OPT_STRIDE_H,
  OPT_ACTIVATION,
  OPT_DILATION_W,
  OPT_DILATION_H
};

static tt_status tt_conv_2d_prepare(tt_op_ctx *ctx) {
  tt_tensor *input, *filter, *bias, *output;
  tt_status st = tt_mac_get_tensors(ctx, &input, &filter, &bias, &output);
  if (st != TT_OK) return st;

  const tt_mac_window win =
      tt_mac_window_options(ctx, OPT_ACTIVATION, OPT_DILATION_W, OPT_DILATION_H);
  if (filter->rank != 4) return tt_op_fail(ctx, TT_ERR_SHAPE, "filter must have rank 4");
  const int32_t channels = filter->dims[0];
  int32_t pad_w = 0, pad_h = 0;
  st = tt_mac_window_geometry(ctx, &win, input, filter, output, channels, &pad_w, &pad_h);
  if (st != TT_OK) return st;
  /* Grouped convolution: the input depth is a whole number of filter depths. */
  const int32_t in_c = input->dims[3], f_c = filter->dims[3];
  if (f_c <= 0 || in_c % f_c != 0 || channels % (in_c / f_c) != 0) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input depth is not a whole number of filter groups");
  }
  int32_t per_channel = 0;
  st = tt_mac_check_weights(ctx, input, filter, bias, output, channels, &per_channel);
  if (st != TT_OK) return st;

  return tt_mac_conv_prepare(ctx, tt_conv_2d_multiplier, &win, input, filter, output, channels,
                             per_channel);
}

static tt_status tt_conv_2d_eval(tt_op_ctx *ctx) {
  const tt_mac_op_data *d = (const tt_mac_op_data *)tt_op_data(ctx);
  const tt_tensor *input = tt_op_input(ctx, 0), *filter = tt_op_input(ctx, 1);
  const tt_tensor *bias = tt_op_input(ctx, 2), *output = tt_op_output(ctx, 0);
  const tt_mac_window win =
      tt_mac_window_options(ctx, OPT_ACTIVATION, OPT_DILATION_W, OPT_DILATION_H);
  tt_conv_2d_params params;
  tt_mac_conv_params(&win, input, filter, output, d, &params);
  const tt_per_channel_quant quant = tt_mac_quant(ctx, d, filter->dims[0]);
  const tt_dims input_dims = tt_tensor_dims4(input), filter_dims = tt_tensor_dims4(filter),
                output_dims = tt_tensor_dims4(output);
  const tt_status st = tt_conv_2d(
      &params, &quant, &input_dims, (const int8_t *)input->data, &filter_dims,
      (const int8_t *)filter->data, bias ? (const int32_t *)bias->data : NULL, &output_dims,
      (int8_t *)output->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_conv_2d = {3 /* BuiltinOperator_CONV_2D */, "CONV_2D",
                                          tt_conv_2d_prepare, tt_conv_2d_eval, 0, NULL};
