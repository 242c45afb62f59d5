/* TT_CONV_2D / TT_DEPTHWISE_CONV_2D / TT_FULLY_CONNECTED: the forward op of a layer whose weights
 * train partly. Its filter is two tensors split along the last axis, the trainable slice (a
 * variable, in SRAM) and the frozen rest (a constant, in flash), so only the slice costs SRAM
 * (docs/train-format.md). Inputs: input, filter slice, filter rest, bias (opt); the custom
 * options are the builtin op's options under their schema names. Same checks, constants and
 * bits as the builtin glue (tt_op_conv_2d.c & co) on the joined filter.
 * Numpy twin: tflm_train/ops/training.py (SplitConv2D & co). */
#include <math.h>

#include "tt_conv_2d.h"
#include "tt_depthwise_conv_2d.h"
#include "tt_fully_connected.h"
#include "tt_op.h"
#include "tt_op_mac_common.h"

enum { SPLIT_CONV_2D, SPLIT_DEPTHWISE_CONV_2D, SPLIT_FULLY_CONNECTED };

/* Op data: tt_mac_op_data (the clamp range, and the requantization constants when the model
 * has no tt_requant entry); everything else is re-read in eval, as the builtin glue does. */

/* The whole (joined) filter's dims; FC: n = units, c = depth. */
static tt_dims whole_dims(int32_t kind, const tt_tensor *slice, const tt_tensor *rest) {
  const int32_t last = slice->rank - 1;
  tt_dims d = {slice->dims[0], 1, 1, 0};
  if (kind != SPLIT_FULLY_CONNECTED) d = tt_tensor_dims4(slice);
  d.c = slice->dims[last] + rest->dims[last];
  return d;
}

/* Conv2DOptions / DepthwiseConv2DOptions by name, with the schema's defaults. */
static tt_mac_window window_options(tt_op_ctx *ctx) {
  const tt_mac_window win = {tt_op_custom_i32(ctx, "padding", TT_PADDING_SAME),
                             tt_op_custom_i32(ctx, "stride_w", 0),
                             tt_op_custom_i32(ctx, "stride_h", 0),
                             tt_op_custom_i32(ctx, "dilation_w_factor", 1),
                             tt_op_custom_i32(ctx, "dilation_h_factor", 1),
                             tt_op_custom_i32(ctx, "fused_activation_function", TT_ACT_NONE)};
  return win;
}

static tt_status prepare_conv(tt_op_ctx *ctx, int32_t kind, const tt_tensor *input,
                              const tt_tensor *slice, const tt_tensor *rest,
                              const tt_tensor *bias, const tt_tensor *output) {
  const tt_mac_window win = window_options(ctx);
  const tt_dims f = whole_dims(kind, slice, rest);
  const int32_t dm = kind == SPLIT_DEPTHWISE_CONV_2D ? tt_op_custom_i32(ctx, "depth_multiplier", 0)
                                                     : 1;
  const int32_t channels = kind == SPLIT_DEPTHWISE_CONV_2D ? f.c : f.n;
  int32_t pad_w = 0, pad_h = 0;
  tt_status st =
      tt_mac_window_geometry(ctx, &win, input, slice, output, channels, &pad_w, &pad_h);
  if (st != TT_OK) return st;
  const int32_t in_c = input->dims[3];
  if (kind == SPLIT_CONV_2D && (in_c % f.c != 0 || channels % (in_c / f.c) != 0)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input depth is not a whole number of filter groups");
  }
  if (kind == SPLIT_DEPTHWISE_CONV_2D && (f.n != 1 || dm <= 0 || channels != in_c * dm)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE,
                      "filter [1,kh,kw,c_out] needs c_out = input depth * depth_multiplier");
  }
  int32_t per_channel = 0;
  st = tt_mac_check_split_filter(ctx, slice, rest, channels, &per_channel);
  if (st == TT_OK) st = tt_mac_check_scales(ctx, input, slice, output);
  if (st == TT_OK) st = tt_mac_check_scales(ctx, input, rest, output);
  if (st == TT_OK) st = tt_mac_check_bias(ctx, bias, channels);
  if (st != TT_OK) return st;
  return tt_mac_conv_prepare_split(
      ctx, kind == SPLIT_CONV_2D ? tt_conv_2d_multiplier : tt_depthwise_conv_2d_multiplier, &win,
      input, slice, rest, output, channels, per_channel);
}

/* As tt_op_fully_connected.c. */
static tt_status prepare_fc(tt_op_ctx *ctx, const tt_tensor *input, const tt_tensor *slice,
                            const tt_tensor *rest, const tt_tensor *bias,
                            const tt_tensor *output) {
  if (tt_op_custom_i32(ctx, "weights_format", 0) != 0) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "weights_format not supported (supported: DEFAULT)");
  }
  const tt_dims f = whole_dims(SPLIT_FULLY_CONNECTED, slice, rest);
  const int32_t units = f.n, depth = f.c;
  const int64_t in_size = tt_tensor_elements(input), out_size = tt_tensor_elements(output);
  if (output->rank < 1 || output->dims[output->rank - 1] != units || in_size % depth != 0 ||
      (in_size / depth) * units != out_size || in_size / depth > INT32_MAX) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input, filter and output shapes do not match");
  }
  int32_t per_channel = 0;
  tt_status st = tt_mac_check_split_filter(ctx, slice, rest, units, &per_channel);
  if (st == TT_OK) st = tt_mac_check_scales(ctx, input, slice, output);
  if (st == TT_OK) st = tt_mac_check_scales(ctx, input, rest, output);
  if (st == TT_OK) st = tt_mac_check_bias(ctx, bias, units);
  if (st != TT_OK) return st;
  const float in_scale = tt_tensor_scale(input, 0), out_scale = tt_tensor_scale(output, 0);
  if (!per_channel && bias) {
    const double bias_scale = bias->num_quant > 0 ? (double)tt_tensor_scale(bias, 0) : 0.0;
    const double product = (double)in_scale * (double)tt_tensor_scale(slice, 0);
    if (!(fabs(product - bias_scale) / (double)out_scale <= 0.02)) { /* NaN fails too */
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "bias scale differs from input scale * filter scale");
    }
  }
  tt_mac_op_data *d = NULL;
  st = tt_mac_requant_split(ctx, tt_fully_connected_multiplier, input, slice, rest, output,
                            per_channel ? units : 1, per_channel, &d);
  if (st != TT_OK) return st;
  return tt_mac_activation(ctx, tt_op_custom_i32(ctx, "fused_activation_function", TT_ACT_NONE),
                           output, &d->activation);
}

static tt_status prepare(tt_op_ctx *ctx, int32_t kind) {
  tt_tensor *input, *slice, *rest, *bias, *output;
  tt_status st = tt_mac_get_split_tensors(ctx, &input, &slice, &rest, &bias, &output);
  if (st != TT_OK) return st;
  if (slice->rank != (kind == SPLIT_FULLY_CONNECTED ? 2 : 4)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, kind == SPLIT_FULLY_CONNECTED
                                             ? "filter parts must be [units, depth]"
                                             : "filter parts must have rank 4");
  }
  return kind == SPLIT_FULLY_CONNECTED ? prepare_fc(ctx, input, slice, rest, bias, output)
                                       : prepare_conv(ctx, kind, input, slice, rest, bias, output);
}

static tt_status eval(tt_op_ctx *ctx, int32_t kind) {
  const tt_mac_op_data *d = (const tt_mac_op_data *)tt_op_data(ctx);
  const tt_tensor *input = tt_op_input(ctx, 0), *slice = tt_op_input(ctx, 1);
  const tt_tensor *rest = tt_op_input(ctx, 2), *bias = tt_op_input(ctx, 3);
  const tt_tensor *output = tt_op_output(ctx, 0);
  const tt_dims f = whole_dims(kind, slice, rest);
  const tt_split_filter filter = {(const int8_t *)slice->data, (const int8_t *)rest->data,
                                  slice->dims[slice->rank - 1]};
  const int32_t *b = bias ? (const int32_t *)bias->data : NULL;
  const int8_t *x = (const int8_t *)input->data;
  int8_t *y = (int8_t *)output->data;
  tt_status st;
  if (kind == SPLIT_FULLY_CONNECTED) {
    /* As prepare checked: input read as [batches, depth], output as [batches, units]. */
    const int32_t batches = (int32_t)(tt_tensor_elements(input) / f.c);
    const int32_t per_channel = slice->num_quant > 1;
    const tt_fully_connected_params p = {-tt_tensor_zero_point(input, 0),
                                         tt_tensor_zero_point(output, 0), per_channel,
                                         d->activation};
    const tt_per_channel_quant q = tt_mac_quant(ctx, d, per_channel ? f.n : 1);
    const tt_dims in_dims = {batches, 1, 1, f.c}, out_dims = {batches, 1, 1, f.n};
    st = tt_fully_connected_split(&p, &q, &in_dims, x, &f, &filter, b, &out_dims, y);
  } else {
    const tt_mac_window win = window_options(ctx);
    tt_conv_2d_params c;
    tt_mac_conv_params(&win, input, slice, output, d, &c);
    const tt_dims in_dims = tt_tensor_dims4(input), out_dims = tt_tensor_dims4(output);
    if (kind == SPLIT_CONV_2D) {
      const tt_per_channel_quant q = tt_mac_quant(ctx, d, f.n);
      st = tt_conv_2d_split(&c, &q, &in_dims, x, &f, &filter, b, &out_dims, y);
    } else {
      const tt_depthwise_conv_2d_params p = {
          c.input_offset, c.output_offset, c.stride_w, c.stride_h, c.dilation_w, c.dilation_h,
          c.pad_w,        c.pad_h,         tt_op_custom_i32(ctx, "depth_multiplier", 0),
          c.activation};
      const tt_per_channel_quant q = tt_mac_quant(ctx, d, f.c);
      st = tt_depthwise_conv_2d_split(&p, &q, &in_dims, x, &f, &filter, b, &out_dims, y);
    }
  }
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

static tt_status prepare_conv_2d(tt_op_ctx *ctx) { return prepare(ctx, SPLIT_CONV_2D); }
static tt_status prepare_depthwise_conv_2d(tt_op_ctx *ctx) {
  return prepare(ctx, SPLIT_DEPTHWISE_CONV_2D);
}
static tt_status prepare_fully_connected(tt_op_ctx *ctx) {
  return prepare(ctx, SPLIT_FULLY_CONNECTED);
}
static tt_status eval_conv_2d(tt_op_ctx *ctx) { return eval(ctx, SPLIT_CONV_2D); }
static tt_status eval_depthwise_conv_2d(tt_op_ctx *ctx) {
  return eval(ctx, SPLIT_DEPTHWISE_CONV_2D);
}
static tt_status eval_fully_connected(tt_op_ctx *ctx) { return eval(ctx, SPLIT_FULLY_CONNECTED); }

const tt_op_registration tt_op_split_conv_2d = {32 /* CUSTOM */, "TT_CONV_2D", prepare_conv_2d,
                                                eval_conv_2d, 0, "TT_CONV_2D"};
const tt_op_registration tt_op_split_depthwise_conv_2d = {
    32 /* CUSTOM */, "TT_DEPTHWISE_CONV_2D", prepare_depthwise_conv_2d, eval_depthwise_conv_2d, 0,
    "TT_DEPTHWISE_CONV_2D"};
const tt_op_registration tt_op_split_fully_connected = {
    32 /* CUSTOM */, "TT_FULLY_CONNECTED", prepare_fully_connected, eval_fully_connected, 0,
    "TT_FULLY_CONNECTED"};
