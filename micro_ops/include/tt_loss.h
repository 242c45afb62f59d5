/* Softmax cross-entropy on int8 logits, integer only (docs/training-numerics.md, "Loss").
 * Numpy twin: tflm_train/kernels/loss.py (SoftmaxCrossEntropyParams, softmax_cross_entropy,
 * softmax_cross_entropy_params). */
#ifndef TT_LOSS_H
#define TT_LOSS_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most classes: a Q12.19 sum of that many terms <= 1 stays below 2^31. */
#define TT_SOFTMAX_CROSS_ENTROPY_MAX_DEPTH 4095

typedef struct {
  int32_t input_multiplier; /* exp argument: s_z * 2^26, as the SOFTMAX kernel with beta 1 */
  int32_t input_left_shift;
  int32_t diff_min;         /* logit differences below this have exp exactly 0 */
  int32_t logit_multiplier; /* s_z * 2^16: a logit difference -> Q16.16 nats */
  int32_t logit_shift;      /* <= 23: a difference of up to 255 shifted left fits int32 */
} tt_softmax_cross_entropy_params;

/* Prepare time, from the logits' scale s_z. TT_ERR_UNSUPPORTED if s_z * 2^26 <= 1 or
 * s_z >= 128 (the loss would not fit Q16.16). */
tt_status tt_softmax_cross_entropy_prepare(float input_scale,
                                           tt_softmax_cross_entropy_params *params);

/* Bytes of int32 scratch for `depth` classes. */
int32_t tt_softmax_cross_entropy_scratch_size(int32_t depth);

/* logits: int8 [depth] (batch 1), label in [0, depth). Writes the loss -ln p_label as Q16.16,
 * the logits gradient p - onehot as int8 [depth] with its exponent (real = q * 2^e), and
 * leaves that gradient in Q0.31 in scratch (int32 [depth]). TT_ERR_ARG if the label is out
 * of range or depth is not in 1..TT_SOFTMAX_CROSS_ENTROPY_MAX_DEPTH. */
tt_status tt_softmax_cross_entropy(const tt_softmax_cross_entropy_params *params, int32_t depth,
                                   const int8_t *logits, int32_t label, int32_t *loss,
                                   int8_t *grad, int32_t *grad_exponent, int32_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* TT_LOSS_H */
