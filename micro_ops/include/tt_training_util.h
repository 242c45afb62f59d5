/* Small training-graph kernels: saving a channel slice of an activation for the backward pass,
 * and summing two gradients (docs/train-format.md: TT_SAVE_SLICE, TT_GRAD_ACCUMULATE).
 * Numpy twin: tflm_train/kernels/training_util.py (save_slice, grad_accumulate). */
#ifndef TT_TRAINING_UTIL_H
#define TT_TRAINING_UTIL_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exponent of a gradient that is absent (no label: nothing was back-propagated). */
#define TT_GRAD_NONE INT32_MIN

/* x: int8 NHWC `dims`; out: int8 [n, h, w, channels], the first `channels` (1..dims->c) of each
 * pixel. out may not overlap x unless out == x. */
void tt_save_slice(const tt_dims *dims, const int8_t *x, int32_t channels, int8_t *out);

/* (g, e) = (g1, e1) + (g2, e2), n elements each. Both present: the gradient with the smaller
 * exponent is shifted right (rounding half away from zero) to the larger exponent, and the
 * sum is requantized as tt_requantize_pow2 would (two passes over the inputs, no scratch).
 * One absent (exponent TT_GRAD_NONE): the other is copied. Both absent: g = 0,
 * e = TT_GRAD_NONE. out may be g1 or g2 (in place). */
void tt_grad_accumulate(const int8_t *g1, int32_t e1, const int8_t *g2, int32_t e2, int32_t n,
                        int8_t *out, int32_t *e_out);

#ifdef __cplusplus
}
#endif
#endif /* TT_TRAINING_UTIL_H */
