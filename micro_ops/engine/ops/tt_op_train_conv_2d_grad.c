/* TT_CONV_2D_GRAD: masks the output gradient, computes the input gradient (when asked for, with
 * the forward weights) and updates the trainable slice in place (docs/train-format.md). The
 * shared glue is in tt_op_train_common.c; numpy twin: tflm_train/ops/training.py. */
#include "tt_op_train_common.h"

static tt_status prepare(tt_op_ctx *ctx) { return tt_train_mac_grad_prepare(ctx, TT_TRAIN_CONV_2D); }

const tt_op_registration tt_op_conv_2d_grad = {32 /* CUSTOM */, "TT_CONV_2D_GRAD", prepare,
                                            tt_train_mac_grad_eval, 0, "TT_CONV_2D_GRAD"};
