/* RESHAPE glue: TFLM's PrepareReshapeReference / EvalReshapeReference. The output tensor's
 * static shape is authoritative, so neither the shape input nor the new_shape option is read.
 * Python twin: tflm_train/ops/reshape.py. */
#include "tt_op.h"
#include "tt_op_checks.h"
#include "tt_reshape.h"

static tt_status tt_reshape_prepare(tt_op_ctx *ctx) {
  const int32_t n = tt_op_num_inputs(ctx);
  tt_tensor *in, *out;
  if (n < 1 || n > 2 || tt_op_num_outputs(ctx) != 1 || !tt_op_input(ctx, 0) ||
      !tt_op_output(ctx, 0)) {
    return tt_op_fail(ctx, TT_ERR_MODEL, "expected 1 or 2 inputs and 1 output");
  }
  in = tt_op_input(ctx, 0);
  out = tt_op_output(ctx, 0);
  if (in->type != out->type) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "input and output types differ");
  }
  if (in->bytes != out->bytes || tt_tensor_elements(in) != tt_tensor_elements(out)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input and output differ in size");
  }
  return TT_OK;
}

static tt_status tt_reshape_eval(tt_op_ctx *ctx) {
  const tt_tensor *in = tt_op_input(ctx, 0);
  tt_reshape(in->data, tt_op_output(ctx, 0)->data, in->bytes);
  return TT_OK;
}

const tt_op_registration tt_op_reshape = {22 /* BuiltinOperator_RESHAPE */, "RESHAPE",
                                          tt_reshape_prepare, tt_reshape_eval, 1, NULL};
