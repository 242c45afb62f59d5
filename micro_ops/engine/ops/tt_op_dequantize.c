/* DEQUANTIZE glue: TFLM's DequantizePrepare for int8 → float32, then tt_dequantize.
 * Python twin: tflm_train/ops/dequantize.py. */
#include "tt_dequantize.h"
#include "tt_op.h"
#include "tt_op_checks.h"

static tt_status tt_dequantize_prepare(tt_op_ctx *ctx) {
  tt_tensor *in, *out;
  tt_dequantize_params *d;
  tt_status st = tt_chk_arity(ctx, 1, 1);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  out = tt_op_output(ctx, 0);
  st = tt_chk_int8(ctx, in, "input must be int8 quantized per tensor (supported: int8)");
  if (st != TT_OK) return st;
  if (out->type != TT_TYPE_FLOAT32) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "output must be float32 (supported: int8 -> float32)");
  }
  if (tt_tensor_elements(in) != tt_tensor_elements(out)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output differ in size");
  }
  d = (tt_dequantize_params *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  d->scale = tt_tensor_scale(in, 0);
  d->zero_point = tt_tensor_zero_point(in, 0);
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_dequantize_eval(tt_op_ctx *ctx) {
  const tt_tensor *in = tt_op_input(ctx, 0);
  tt_dequantize((const tt_dequantize_params *)tt_op_data(ctx), (const int8_t *)in->data,
                (float *)tt_op_output(ctx, 0)->data, (size_t)tt_tensor_elements(in));
  return TT_OK;
}

const tt_op_registration tt_op_dequantize = {6 /* BuiltinOperator_DEQUANTIZE */, "DEQUANTIZE",
                                             tt_dequantize_prepare, tt_dequantize_eval, 0, NULL};
