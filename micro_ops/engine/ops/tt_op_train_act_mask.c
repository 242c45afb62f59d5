/* TT_ACT_MASK: the packed activation mask of a forward output, kept for the backward pass
 * instead of the output itself (docs/train-format.md). Numpy twin: tflm_train/ops/training.py. */
#include "tt_mask.h"
#include "tt_op_train_common.h"

/* The clamp range, from the options in prepare and in each eval (no arena kept). */
static tt_status activation(tt_op_ctx *ctx, tt_activation *act) {
  TT_TRAIN_OPT(ctx, "act_min", &act->min);
  TT_TRAIN_OPT(ctx, "act_max", &act->max);
  return TT_OK;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *y;
  if (tt_op_num_inputs(ctx) != 1 || tt_op_num_outputs(ctx) != 1)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects 1 input and 1 output");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "y must be int8", &y) != TT_OK) return TT_ERR_UNSUPPORTED;
  const tt_tensor *m = tt_op_output(ctx, 0);
  if (m->type != TT_TYPE_UINT8 ||
      tt_tensor_elements(m) != tt_activation_mask_size((int32_t)tt_tensor_elements(y)))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "mask must be uint8 [ceil(n/8)]");
  tt_activation act;
  return activation(ctx, &act);
}

static tt_status eval(tt_op_ctx *ctx) {
  const tt_tensor *y = tt_op_input(ctx, 0);
  tt_activation act;
  if (activation(ctx, &act) != TT_OK) return TT_ERR_MODEL; /* prepare found them */
  tt_activation_mask((const int8_t *)y->data, (int32_t)tt_tensor_elements(y), &act,
                     (uint8_t *)tt_op_output(ctx, 0)->data);
  return TT_OK;
}

const tt_op_registration tt_op_act_mask = {32 /* CUSTOM */, "TT_ACT_MASK", prepare, eval, 0,
                                           "TT_ACT_MASK"};
