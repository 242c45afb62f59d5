/* Activation masks: where a fused clamp passes gradient (docs/training-numerics.md).
 * Bit order: element i -> byte i >> 3, bit i & 7 (LSB first); unused high bits of the last
 * byte are 0. Bit 1 <=> act.min < output[i] < act.max.
 * Numpy twin: tflm_train/kernels/mask.py. */
#ifndef TT_MASK_H
#define TT_MASK_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of the packed mask of n elements. */
int32_t tt_activation_mask_size(int32_t n);

/* Packs the mask of the int8 output (n elements) clamped to act. */
void tt_activation_mask(const int8_t *output, int32_t n, const tt_activation *act,
                        uint8_t *mask);

/* Zeroes grad[i] (in place) where the mask bit is 0; the exponent is unchanged. */
void tt_apply_activation_mask(int8_t *grad, int32_t n, const uint8_t *mask);

/* The same from the saved int8 output, when the compiler keeps the output instead. */
void tt_apply_activation_mask_from_output(int8_t *grad, int32_t n, const int8_t *output,
                                          const tt_activation *act);

#ifdef __cplusplus
}
#endif
#endif /* TT_MASK_H */
