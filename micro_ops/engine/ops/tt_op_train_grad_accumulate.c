/* TT_GRAD_ACCUMULATE: sum of the two gradients reaching a tensor used twice (e.g. a residual
 * branch), either of which may be absent (docs/train-format.md). */
#include "tt_op_train_common.h"

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *g1, *g2;
  if (tt_op_num_inputs(ctx) != 4 || tt_op_num_outputs(ctx) != 2)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects inputs g1, e1, g2, e2 and outputs g, e");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "g1 must be int8", &g1) != TT_OK ||
      tt_train_input(ctx, 2, TT_TYPE_INT8, "g2 must be int8", &g2) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  const tt_tensor *g = tt_op_output(ctx, 0);
  int64_t n = tt_tensor_elements(g);
  if (!tt_train_is_exp(tt_op_input(ctx, 1)) || !tt_train_is_exp(tt_op_input(ctx, 3)) ||
      !tt_train_is_exp(tt_op_output(ctx, 1)))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "exponents must be int32 [1]");
  if (g->type != TT_TYPE_INT8 || tt_tensor_elements(g1) != n || tt_tensor_elements(g2) != n)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "g1, g2 and g must be int8 with equal element counts");
  return TT_OK; /* no scratch: the kernel works in two passes */
}

static tt_status eval(tt_op_ctx *ctx) {
  const tt_tensor *g = tt_op_output(ctx, 0);
  tt_grad_accumulate((const int8_t *)tt_op_input(ctx, 0)->data, tt_train_exp(tt_op_input(ctx, 1)),
                     (const int8_t *)tt_op_input(ctx, 2)->data, tt_train_exp(tt_op_input(ctx, 3)),
                     (int32_t)tt_tensor_elements(g), (int8_t *)g->data,
                     (int32_t *)tt_op_output(ctx, 1)->data);
  return TT_OK;
}

/* In place: element i is written only after its last read. */
const tt_op_registration tt_op_grad_accumulate = {32 /* CUSTOM */, "TT_GRAD_ACCUMULATE", prepare,
                                                  eval, 1, "TT_GRAD_ACCUMULATE"};
