/* QUANTIZE glue: TFLM's PrepareQuantizeReference / EvalQuantizeReference for float32 → int8
 * and int8 → int8. Python twin: tflm_train/ops/quantize.py. */
#include "tt_op.h"
#include "tt_op_checks.h"
#include "tt_quantize.h"

typedef struct {
  int32_t float_input;
  tt_quantize_params quantize;
  tt_requantize_params requantize;
} tt_quantize_op_data;

static tt_status tt_quantize_prepare(tt_op_ctx *ctx) {
  tt_tensor *in, *out;
  tt_quantize_op_data *d;
  tt_status st = tt_chk_arity(ctx, 1, 1);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  out = tt_op_output(ctx, 0);
  st = tt_chk_int8(ctx, out, "output must be int8 quantized per tensor (supported: int8)");
  if (st != TT_OK) return st;
  if (tt_tensor_elements(in) != tt_tensor_elements(out)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output differ in size");
  }
  d = (tt_quantize_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  if (in->type == TT_TYPE_FLOAT32) {
    d->float_input = 1;
    d->quantize.scale = tt_tensor_scale(out, 0);
    d->quantize.zero_point = tt_tensor_zero_point(out, 0);
  } else if (tt_chk_is_int8(in)) {
    st = tt_chk_scale_ratio(ctx, tt_tensor_scale(in, 0), tt_tensor_scale(out, 0));
    if (st != TT_OK) return st;
    d->float_input = 0;
    tt_requantize_prepare(tt_tensor_scale(in, 0), tt_tensor_zero_point(in, 0),
                          tt_tensor_scale(out, 0), tt_tensor_zero_point(out, 0), &d->requantize);
  } else {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input type not supported (supported: float32 -> int8, int8 -> int8)");
  }
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_quantize_eval(tt_op_ctx *ctx) {
  const tt_quantize_op_data *d = (const tt_quantize_op_data *)tt_op_data(ctx);
  const tt_tensor *in = tt_op_input(ctx, 0);
  int8_t *out = (int8_t *)tt_op_output(ctx, 0)->data;
  const size_t size = (size_t)tt_tensor_elements(in);
  if (d->float_input) {
    tt_quantize(&d->quantize, (const float *)in->data, out, size);
  } else {
    tt_requantize(&d->requantize, (const int8_t *)in->data, out, size);
  }
  return TT_OK;
}

const tt_op_registration tt_op_quantize = {114 /* BuiltinOperator_QUANTIZE */, "QUANTIZE",
                                           tt_quantize_prepare, tt_quantize_eval, 0, NULL};
