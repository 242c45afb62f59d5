/* FULLY_CONNECTED glue: TFLM's FullyConnectedPrepare / CalculateOpDataFullyConnected, then
 * tt_fully_connected. Python twin: tflm_train/ops/fully_connected.py. */
#include <math.h>

#include "tt_fully_connected.h"
#include "tt_op.h"
#include "tt_op_mac_common.h"

/* FullyConnectedOptions field indices (schema.fbs). */
enum { OPT_ACTIVATION = 0, OPT_WEIGHTS_FORMAT = 1 };

static tt_status tt_fully_connected_prepare(tt_op_ctx *ctx) {
  tt_tensor *input, *filter, *bias, *output;
  tt_status st = tt_mac_get_tensors(ctx, &input, &filter, &bias, &output);
  if (st != TT_OK) return st;
  if (tt_op_option_i8(ctx, OPT_WEIGHTS_FORMAT, 0) != 0) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "weights_format not supported (supported: DEFAULT)");
  }
  if (filter->rank != 2) return tt_op_fail(ctx, TT_ERR_SHAPE, "filter must be [units, depth]");
  const int32_t units = filter->dims[0], depth = filter->dims[1];
  /* As TFLM: input read as [batches, depth] whatever its rank, output as [batches, units]
   * (keep_num_dims only changes the declared output shape). */
  const int64_t in_size = tt_tensor_elements(input), out_size = tt_tensor_elements(output);
  if (output->rank < 1 || output->dims[output->rank - 1] != units || depth <= 0 ||
      in_size % depth != 0 || (in_size / depth) * units != out_size ||
      in_size / depth > INT32_MAX) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input, filter and output shapes do not match");
  }
  int32_t per_channel = 0;
  st = tt_mac_check_weights(ctx, input, filter, bias, output, units, &per_channel);
  if (st != TT_OK) return st;
  const float in_scale = tt_tensor_scale(input, 0), out_scale = tt_tensor_scale(output, 0);
  if (!per_channel && bias) {
    /* GetQuantizedConvolutionMultipler: bias scale within 2% of an output step of
     * input scale * filter scale. */
    const double bias_scale = bias->num_quant > 0 ? (double)tt_tensor_scale(bias, 0) : 0.0;
    const double product = (double)in_scale * (double)tt_tensor_scale(filter, 0);
    if (!(fabs(product - bias_scale) / (double)out_scale <= 0.02)) { /* NaN fails too */
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "bias scale differs from input scale * filter scale");
    }
  }

  tt_mac_op_data *d = NULL;
  st = tt_mac_requant(ctx, tt_fully_connected_multiplier, input, filter, output,
                      per_channel ? units : 1, per_channel, &d);
  if (st != TT_OK) return st;
  return tt_mac_activation(ctx, tt_op_option_i8(ctx, OPT_ACTIVATION, TT_ACT_NONE), output,
                           &d->activation);
}

static tt_status tt_fully_connected_eval(tt_op_ctx *ctx) {
  const tt_mac_op_data *d = (const tt_mac_op_data *)tt_op_data(ctx);
  const tt_tensor *input = tt_op_input(ctx, 0), *filter = tt_op_input(ctx, 1);
  const tt_tensor *bias = tt_op_input(ctx, 2), *output = tt_op_output(ctx, 0);
  /* As prepare checked: input read as [batches, depth], output as [batches, units]. */
  const int32_t units = filter->dims[0], depth = filter->dims[1];
  const int32_t batches = (int32_t)(tt_tensor_elements(input) / depth);
  const int32_t per_channel = filter->num_quant > 1;
  const tt_fully_connected_params params = {-tt_tensor_zero_point(input, 0),
                                            tt_tensor_zero_point(output, 0), per_channel,
                                            d->activation};
  const tt_per_channel_quant quant = tt_mac_quant(ctx, d, per_channel ? units : 1);
  const tt_dims in_dims = {batches, 1, 1, depth}, f_dims = {units, 1, 1, depth},
                out_dims = {batches, 1, 1, units};
  const tt_status st = tt_fully_connected(
      &params, &quant, &in_dims, (const int8_t *)input->data, &f_dims,
      (const int8_t *)filter->data, bias ? (const int32_t *)bias->data : NULL, &out_dims,
      (int8_t *)output->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_fully_connected = {
    9 /* BuiltinOperator_FULLY_CONNECTED */, "FULLY_CONNECTED", tt_fully_connected_prepare,
    tt_fully_connected_eval, 0, NULL};
