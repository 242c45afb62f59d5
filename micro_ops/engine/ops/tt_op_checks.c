/* Prepare-time checks shared by the non-MAC ops' glue. */
#include "tt_op_checks.h"

#include "tt_fixedpoint.h"

tt_status tt_chk_arity(tt_op_ctx *ctx, int32_t min_inputs, int32_t max_inputs) {
  const int32_t n = tt_op_num_inputs(ctx);
  int32_t i;
  if (n < min_inputs || n > max_inputs || tt_op_num_outputs(ctx) != 1 || !tt_op_output(ctx, 0)) {
    return tt_op_fail(ctx, TT_ERR_MODEL, "wrong number of inputs or outputs");
  }
  for (i = 0; i < n; ++i) {
    if (!tt_op_input(ctx, i)) return tt_op_fail(ctx, TT_ERR_MODEL, "an input is absent");
  }
  return TT_OK;
}

int tt_chk_is_int8(const tt_tensor *t) {
  int32_t zp;
  if (t->type != TT_TYPE_INT8 || t->num_quant != 1) return 0;
  zp = tt_tensor_zero_point(t, 0);
  return zp >= -128 && zp <= 127;
}

tt_status tt_chk_int8(tt_op_ctx *ctx, const tt_tensor *t, const char *message) {
  return tt_chk_is_int8(t) ? TT_OK : tt_op_fail(ctx, TT_ERR_UNSUPPORTED, message);
}

tt_status tt_chk_activation(tt_op_ctx *ctx, int32_t act, const tt_tensor *output,
                            tt_activation *range) {
  if (tt_activation_range(act, tt_tensor_scale(output, 0), tt_tensor_zero_point(output, 0),
                          range) != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "fused activation not supported (supported: NONE, RELU, RELU_N1_TO_1, "
                      "RELU6)");
  }
  return TT_OK;
}

tt_status tt_chk_scale_ratio(tt_op_ctx *ctx, float input_scale, float output_scale) {
  const double ratio = (double)input_scale / (double)output_scale;
  if (!(ratio > 0.0 && ratio < 1073741824.0)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input/output scale ratio must be positive, finite and below 2^30");
  }
  return TT_OK;
}

tt_status tt_chk_constant_i32(tt_op_ctx *ctx, const tt_tensor *t, const char *message,
                              const int32_t **data) {
  if (t->type != TT_TYPE_INT32 || !t->is_constant || (!t->data && t->bytes > 0)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, message);
  }
  *data = (const int32_t *)t->data;
  return TT_OK;
}
