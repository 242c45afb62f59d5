/* MEAN glue: TFLM's PrepareMeanOrSumHelper (reduce_common.cc) for int8, then tt_mean.
 * TFLM sends every int8 MEAN through QuantizedMeanOrSum, whatever the axes, keep_dims or
 * scales, so there is one path. Python twin: tflm_train/ops/mean.py. */
#include "tt_mean.h"
#include "tt_op.h"
#include "tt_op_checks.h"

typedef struct {
  tt_mean_params params;
  tt_dims input_dims, output_dims; /* output in the keep_dims layout */
} tt_mean_op_data;

static tt_status tt_mean_prepare_op(tt_op_ctx *ctx) {
  tt_tensor *in, *axis, *out;
  const int32_t *axes;
  tt_mean_op_data *d;
  int32_t reduced[TT_MAX_RANK] = {0};
  int32_t keep[4] = {1, 1, 1, 1};
  int64_t n_axes, i, out_elems = 1, in_elems;
  tt_status st = tt_chk_arity(ctx, 2, 2);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  axis = tt_op_input(ctx, 1);
  out = tt_op_output(ctx, 0);
  if (!tt_chk_is_int8(in) || !tt_chk_is_int8(out)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  if (in->rank > 4) return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "input rank > 4 is not supported");
  st = tt_chk_constant_i32(ctx, axis, "axis must be a constant int32 tensor", &axes);
  if (st != TT_OK) return st;
  n_axes = tt_tensor_elements(axis);
  for (i = 0; i < n_axes; ++i) { /* ResolveAxis: negative from the end, duplicates ignored */
    const int32_t a = axes[i] < 0 ? axes[i] + in->rank : axes[i];
    if (a < 0 || a >= in->rank) return tt_op_fail(ctx, TT_ERR_SHAPE, "axis out of range");
    reduced[a] = 1;
  }
  /* Keep-dims output shape, right-aligned in N,H,W,C like tt_tensor_dims4. */
  for (i = 0; i < in->rank; ++i) {
    keep[4 - in->rank + i] = reduced[i] ? 1 : in->dims[i];
    out_elems *= keep[4 - in->rank + i];
  }
  in_elems = tt_tensor_elements(in);
  if (out_elems != tt_tensor_elements(out) || out_elems == 0) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "output shape does not match the reduced input");
  }
  st = tt_chk_scale_ratio(ctx, tt_tensor_scale(in, 0), tt_tensor_scale(out, 0));
  if (st != TT_OK) return st;
  d = (tt_mean_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  tt_mean_prepare(tt_tensor_scale(in, 0), tt_tensor_zero_point(in, 0), tt_tensor_scale(out, 0),
                  tt_tensor_zero_point(out, 0), (int32_t)(in_elems / out_elems), &d->params);
  d->input_dims = tt_tensor_dims4(in);
  d->output_dims.n = keep[0];
  d->output_dims.h = keep[1];
  d->output_dims.w = keep[2];
  d->output_dims.c = keep[3];
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_mean_eval(tt_op_ctx *ctx) {
  const tt_mean_op_data *d = (const tt_mean_op_data *)tt_op_data(ctx);
  const tt_status st =
      tt_mean(&d->params, &d->input_dims, (const int8_t *)tt_op_input(ctx, 0)->data,
              &d->output_dims, (int8_t *)tt_op_output(ctx, 0)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_mean = {40 /* BuiltinOperator_MEAN */, "MEAN",
                                       tt_mean_prepare_op, tt_mean_eval, 0, NULL};
