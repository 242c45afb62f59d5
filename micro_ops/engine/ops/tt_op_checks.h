/* Prepare-time checks shared by the non-MAC ops' glue (ADD, pooling, MEAN, RESHAPE, SOFTMAX,
 * PAD, QUANTIZE, DEQUANTIZE). Python twin: tflm_train/ops/_checks.py. Each function reports
 * its own error through tt_op_fail. */
#ifndef TT_OP_CHECKS_H
#define TT_OP_CHECKS_H

#include "tt_op.h"

/* min_inputs..max_inputs inputs, all present, and exactly one output. */
tt_status tt_chk_arity(tt_op_ctx *ctx, int32_t min_inputs, int32_t max_inputs);

/* int8, quantized per tensor, with an int8 zero point. */
int tt_chk_is_int8(const tt_tensor *t);
tt_status tt_chk_int8(tt_op_ctx *ctx, const tt_tensor *t, const char *message);

/* NONE, RELU, RELU_N1_TO_1, RELU6 → output clamp range. */
tt_status tt_chk_activation(tt_op_ctx *ctx, int32_t act, const tt_tensor *output,
                            tt_activation *range);

/* A rescale ratio input_scale / output_scale TFLM's arithmetic can represent: finite, > 0,
 * below 2^30 (so the multiplier's left shift stays <= 30 and never overflows int32). */
tt_status tt_chk_scale_ratio(tt_op_ctx *ctx, float input_scale, float output_scale);

/* A constant int32 tensor's data (TT_ERR_UNSUPPORTED with `message` otherwise). */
tt_status tt_chk_constant_i32(tt_op_ctx *ctx, const tt_tensor *t, const char *message,
                              const int32_t **data);

#endif /* TT_OP_CHECKS_H */
