/* TEMPORARY: registrations of the training ops whose glue is not written yet. */
#include "tt_op.h"

static tt_status stub_prepare(tt_op_ctx *ctx) {
  return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "not implemented yet");
}
static tt_status stub_eval(tt_op_ctx *ctx) { (void)ctx; return TT_ERR_UNSUPPORTED; }
#define STUB(var, code) \
  const tt_op_registration var = {32, code, stub_prepare, stub_eval, 0, code};
STUB(tt_op_act_mask, "TT_ACT_MASK")
STUB(tt_op_save_slice, "TT_SAVE_SLICE")
STUB(tt_op_softmax_xent, "TT_SOFTMAX_XENT")
STUB(tt_op_conv_2d_grad, "TT_CONV_2D_GRAD")
STUB(tt_op_depthwise_conv_2d_grad, "TT_DEPTHWISE_CONV_2D_GRAD")
STUB(tt_op_fully_connected_grad, "TT_FULLY_CONNECTED_GRAD")
STUB(tt_op_add_grad, "TT_ADD_GRAD")
STUB(tt_op_average_pool_2d_grad, "TT_AVERAGE_POOL_2D_GRAD")
STUB(tt_op_mean_grad, "TT_MEAN_GRAD")
STUB(tt_op_max_pool_2d_grad, "TT_MAX_POOL_2D_GRAD")
STUB(tt_op_pad_grad, "TT_PAD_GRAD")
STUB(tt_op_grad_accumulate, "TT_GRAD_ACCUMULATE")
