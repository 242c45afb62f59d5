/* AVERAGE_POOL_2D / MAX_POOL_2D glue: TFLM's PoolingPrepare (pooling_common.cc), then
 * tt_average_pool_2d / tt_max_pool_2d. Python twin: tflm_train/ops/pooling.py. */
#include <math.h>

#include "tt_fixedpoint.h"
#include "tt_op.h"
#include "tt_op_checks.h"
#include "tt_pooling.h"

/* Pool2DOptions field indices (schema.fbs). */
enum {
  OPT_PADDING = 0,
  OPT_STRIDE_W = 1,
  OPT_STRIDE_H = 2,
  OPT_FILTER_W = 3,
  OPT_FILTER_H = 4,
  OPT_ACTIVATION = 5
};

typedef struct {
  tt_pool_params params;
  tt_dims input_dims, output_dims;
} tt_pool_op_data;

static tt_status tt_pool_prepare(tt_op_ctx *ctx) {
  tt_tensor *in, *out;
  tt_pool_op_data *d;
  int32_t padding, out_size, pad_h, pad_w;
  tt_status st = tt_chk_arity(ctx, 1, 1);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  out = tt_op_output(ctx, 0);
  if (!tt_chk_is_int8(in) || !tt_chk_is_int8(out)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  if (in->rank != 4 || out->rank != 4 || in->dims[0] != out->dims[0] ||
      in->dims[3] != out->dims[3]) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output must be NHWC with equal N and C");
  }
  /* As TFLM: input and output share their quantization (float difference, then double). */
  if ((double)fabsf(tt_tensor_scale(in, 0) - tt_tensor_scale(out, 0)) > 1.0e-6 ||
      tt_tensor_zero_point(in, 0) != tt_tensor_zero_point(out, 0)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output scale/zero point differ (TFLM requires them equal)");
  }
  d = (tt_pool_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  padding = tt_op_option_i8(ctx, OPT_PADDING, TT_PADDING_SAME);
  d->params.stride_w = tt_op_option_i32(ctx, OPT_STRIDE_W, 0);
  d->params.stride_h = tt_op_option_i32(ctx, OPT_STRIDE_H, 0);
  d->params.filter_w = tt_op_option_i32(ctx, OPT_FILTER_W, 0);
  d->params.filter_h = tt_op_option_i32(ctx, OPT_FILTER_H, 0);
  if (padding != TT_PADDING_SAME && padding != TT_PADDING_VALID) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "padding not supported (supported: SAME, VALID)");
  }
  /* TFLM keeps the output tensor's shape; only the leading padding is computed here. */
  st = tt_compute_padding(padding, in->dims[1], d->params.filter_h, d->params.stride_h, 1,
                          &out_size, &pad_h);
  if (st == TT_OK) {
    st = tt_compute_padding(padding, in->dims[2], d->params.filter_w, d->params.stride_w, 1,
                            &out_size, &pad_w);
  }
  if (st != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "filter and strides must be positive and fit the input");
  }
  /* Keep every window coordinate (out * stride + filter) inside int32. */
  if ((int64_t)out->dims[1] * d->params.stride_h + d->params.filter_h > INT32_MAX / 2 ||
      (int64_t)out->dims[2] * d->params.stride_w + d->params.filter_w > INT32_MAX / 2) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "filter or strides too large");
  }
  d->params.pad_h = pad_h;
  d->params.pad_w = pad_w;
  st = tt_chk_activation(ctx, tt_op_option_i8(ctx, OPT_ACTIVATION, TT_ACT_NONE), out,
                         &d->params.activation);
  if (st != TT_OK) return st;
  d->input_dims = tt_tensor_dims4(in);
  d->output_dims = tt_tensor_dims4(out);
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_average_pool_2d_eval(tt_op_ctx *ctx) {
  const tt_pool_op_data *d = (const tt_pool_op_data *)tt_op_data(ctx);
  const tt_status st =
      tt_average_pool_2d(&d->params, &d->input_dims, (const int8_t *)tt_op_input(ctx, 0)->data,
                         &d->output_dims, (int8_t *)tt_op_output(ctx, 0)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "a pooling window lies entirely in the padding");
}

static tt_status tt_max_pool_2d_eval(tt_op_ctx *ctx) {
  const tt_pool_op_data *d = (const tt_pool_op_data *)tt_op_data(ctx);
  const tt_status st =
      tt_max_pool_2d(&d->params, &d->input_dims, (const int8_t *)tt_op_input(ctx, 0)->data,
                     &d->output_dims, (int8_t *)tt_op_output(ctx, 0)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_average_pool_2d = {
    1 /* BuiltinOperator_AVERAGE_POOL_2D */, "AVERAGE_POOL_2D", tt_pool_prepare,
    tt_average_pool_2d_eval, 0, NULL};
const tt_op_registration tt_op_max_pool_2d = {17 /* BuiltinOperator_MAX_POOL_2D */,
                                              "MAX_POOL_2D", tt_pool_prepare,
                                              tt_max_pool_2d_eval, 0, NULL};
