/* TT_FULLY_CONNECTED_GRAD: masks the output gradient, computes the input gradient (when asked for, with
 * the forward weights) and updates the trainable slice in place (docs/train-format.md). The
 * shared glue is in tt_op_train_common.c; numpy twin: tflm_train/ops/training.py. */
#include "tt_op_train_common.h"

static tt_status prepare(tt_op_ctx *ctx) { return tt_train_mac_grad_prepare(ctx, TT_TRAIN_FULLY_CONNECTED); }

const tt_op_registration tt_op_fully_connected_grad = {32 /* CUSTOM */, "TT_FULLY_CONNECTED_GRAD", prepare,
                                            tt_train_mac_grad_eval, 0, "TT_FULLY_CONNECTED_GRAD"};
