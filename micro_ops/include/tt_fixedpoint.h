/* Fixed-point arithmetic of the TFLite int8 reference kernels (gemmlowp
 * "double rounding" variant, TFLITE_SINGLE_ROUNDING off, as TFLM builds it).
 * Run-time helpers are integer-only; the *_prepare helpers in tt_quant_util.c
 * use double and run once at model load (compile time on the host). */
#ifndef TT_FIXEDPOINT_H
#define TT_FIXEDPOINT_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul. */
static inline int32_t tt_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  /* Division (not shift) truncates toward zero, as gemmlowp does. */
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: round half away from zero. */
static inline int32_t tt_rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
  return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier(int32 x, multiplier, shift). */
static inline int32_t tt_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  /* x * 2^left_shift wraps in int32 like the reference (callers keep it in range). */
  const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
  return tt_rounding_divide_by_pot(
      tt_saturating_rounding_doubling_high_mul(shifted, multiplier), right_shift);
}

static inline int32_t tt_clamp(int32_t x, int32_t lo, int32_t hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

/* --- prepare-time helpers (double precision, tt_quant_util.c) --- */

/* TFLite QuantizeMultiplier: real = multiplier * 2^(shift-31), frexp-based. */
void tt_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift);

/* TFLite CalculateActivationRangeQuantized for int8 output (act: TT_ACT_*).
 * Returns TT_ERR_UNSUPPORTED for activations other than NONE/RELU/RELU_N1_TO_1/RELU6. */
tt_status tt_activation_range(int32_t act, float out_scale, int32_t out_zero_point,
                              tt_activation *range);

/* TFLite ComputePaddingHeightWidth for one dimension (padding: TT_PADDING_*).
 * Writes the output size and the leading (top/left) padding. */
tt_status tt_compute_padding(int32_t padding, int32_t in_size, int32_t filter_size,
                             int32_t stride, int32_t dilation, int32_t *out_size,
                             int32_t *pad_before);

#ifdef __cplusplus
}
#endif
#endif /* TT_FIXEDPOINT_H */
