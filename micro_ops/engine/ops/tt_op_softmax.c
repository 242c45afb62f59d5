/* SOFTMAX glue: TFLM's SoftmaxPrepare / CalculateSoftmaxParams for int8 → int8, then
 * tt_softmax. Python twin: tflm_train/ops/softmax.py. */
#include "tt_op.h"
#include "tt_op_checks.h"
#include "tt_softmax.h"

enum { OPT_BETA = 0 }; /* SoftmaxOptions (schema.fbs) */

typedef struct {
  tt_softmax_params params;
  int32_t outer_size, depth;
} tt_softmax_op_data;

static tt_status tt_softmax_prepare_op(tt_op_ctx *ctx) {
  tt_tensor *in, *out;
  tt_softmax_op_data *d;
  int32_t i;
  tt_status st = tt_chk_arity(ctx, 1, 1);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  out = tt_op_output(ctx, 0);
  if (!tt_chk_is_int8(in) || !tt_chk_is_int8(out)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  if (in->rank < 1 || in->rank != out->rank) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output must have one equal shape");
  }
  for (i = 0; i < in->rank; ++i) {
    if (in->dims[i] != out->dims[i]) {
      return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output must have one equal shape");
    }
  }
  if (tt_tensor_zero_point(out, 0) != -128 || tt_tensor_scale(out, 0) != 1.0f / 256) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "int8 softmax output must have scale 1/256 and zero point -128");
  }
  d = (tt_softmax_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  if (tt_softmax_prepare(tt_op_option_f32(ctx, OPT_BETA, 0.0f), tt_tensor_scale(in, 0),
                         &d->params) != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "beta * input scale * 2^26 must exceed 1");
  }
  d->depth = in->dims[in->rank - 1];
  d->outer_size = d->depth > 0 ? (int32_t)(tt_tensor_elements(in) / d->depth) : 0;
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_softmax_eval(tt_op_ctx *ctx) {
  const tt_softmax_op_data *d = (const tt_softmax_op_data *)tt_op_data(ctx);
  const tt_status st =
      tt_softmax(&d->params, d->outer_size, d->depth, (const int8_t *)tt_op_input(ctx, 0)->data,
                 (int8_t *)tt_op_output(ctx, 0)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "row sum out of range (TFLM aborts too)");
}

const tt_op_registration tt_op_softmax = {25 /* BuiltinOperator_SOFTMAX */, "SOFTMAX",
                                          tt_softmax_prepare_op, tt_softmax_eval, 0, NULL};
