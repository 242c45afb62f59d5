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

/* gemmlowp SaturatingRoundingDoublingHighMul: (ab + nudge) / 2^31 truncated toward zero, with
 * nudge 2^30 for ab >= 0 and 1 - 2^30 below. That equals floor((ab + 2^30) / 2^31) for every ab
 * (ab < 0, n = -ab: -floor((n + 2^30 - 1) / 2^31) = -ceil((n - 2^30) / 2^31)), which is one
 * multiply-accumulate and a shift (SMLAL on Cortex-M) instead of a sign-dependent nudge and a
 * 64-bit division. Arithmetic right shift of a negative value: GCC, Clang and armcc all. */
static inline int32_t tt_saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
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

/* The int8 output of a MAC layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): the int32
 * accumulator, bias included, requantized, plus the output zero point, clamped to the fused
 * activation. */
static inline int8_t tt_requantize_output(int32_t acc, int32_t multiplier, int32_t shift,
                                          int32_t output_offset, tt_activation act) {
  const int32_t y = tt_multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset;
  return (int8_t)tt_clamp(y, act.min, act.max);
}

/* --- gemmlowp fixed-point exp / reciprocal (softmax, integer softmax loss) ---
 * Raw int32 values of gemmlowp FixedPoint<int32_t, integer_bits>; Q0.31 unless noted.
 * Plain int32 adds in gemmlowp wrap; tt_wrap_add/sub make that defined behaviour. */

static inline int32_t tt_wrap_add(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}
static inline int32_t tt_wrap_sub(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t tt_count_leading_zeros32(uint32_t x) {
  int32_t n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift (exponent > 0)
 * or rounding right shift (exponent < 0). */
static inline int32_t tt_saturating_rounding_multiply_by_pot(int32_t x, int exponent) {
  if (exponent == 0) return x;
  if (exponent < 0) return tt_rounding_divide_by_pot(x, -exponent);
  {
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
  }
}

/* gemmlowp RoundingHalfSum for int32. */
static inline int32_t tt_rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = (int64_t)a + (int64_t)b;
  return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* exp(a) for a in [-1/4, 0): Taylor series around -1/8. */
static inline int32_t tt_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668;   /* exp(-1/8) */
  const int32_t constant_1_over_3 = 715827883; /* 1/3 */
  const int32_t x = tt_wrap_add(a, 1 << 28);
  const int32_t x2 = tt_saturating_rounding_doubling_high_mul(x, x);
  const int32_t x3 = tt_saturating_rounding_doubling_high_mul(x2, x);
  const int32_t x4 = tt_saturating_rounding_doubling_high_mul(x2, x2);
  const int32_t x4_over_4 = tt_rounding_divide_by_pot(x4, 2);
  const int32_t poly = tt_rounding_divide_by_pot(
      tt_wrap_add(tt_saturating_rounding_doubling_high_mul(tt_wrap_add(x4_over_4, x3),
                                                           constant_1_over_3),
                  x2),
      1);
  return tt_wrap_add(constant_term,
                     tt_saturating_rounding_doubling_high_mul(constant_term, tt_wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: a is Q(integer_bits), a <= 0; result Q0.31. */
static inline int32_t tt_exp_on_negative_values(int32_t a, int integer_bits) {
  /* exp(-2^k) for k = -2..4 in Q0.31 (gemmlowp's barrel-shifter constants). */
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242};
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
  const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
  int32_t result = tt_exp_on_interval_between_negative_one_quarter_and_0_excl(
      tt_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits));
  const int32_t remainder = tt_wrap_sub(a_mod_quarter_minus_one_quarter, a);
  int k;
  for (k = -2; k <= 4; ++k) {
    if (integer_bits > k &&
        ((uint32_t)remainder & (1u << (fractional_bits + k)))) {
      result = tt_saturating_rounding_doubling_high_mul(result, barrel[k + 2]);
    }
  }
  if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) result = 0;
  return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1): Newton-Raphson in Q2.29, result Q0.31. */
static inline int32_t tt_one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t half_denominator = tt_rounding_half_sum(a, INT32_MAX);
  int32_t x = tt_wrap_add(1515870810, /* 48/17 */
                          tt_saturating_rounding_doubling_high_mul(half_denominator,
                                                                   -1010580540 /* -32/17 */));
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x =
        tt_saturating_rounding_doubling_high_mul(half_denominator, x);
    const int32_t one_minus = tt_wrap_sub((int32_t)1 << 29, half_denominator_times_x);
    x = tt_wrap_add(x, tt_saturating_rounding_multiply_by_pot(
                           tt_saturating_rounding_doubling_high_mul(x, one_minus), 2));
  }
  return tt_saturating_rounding_multiply_by_pot(x, 1);
}

/* TFLite GetReciprocal: x > 0 in Q(x_integer_digits) → 1/x as a Q0.31 value in [0.5, 1)
 * times 2^-num_bits_over_unit. */
static inline int32_t tt_get_reciprocal(int32_t x, int x_integer_digits,
                                        int32_t *num_bits_over_unit) {
  const int32_t headroom_plus_one = tt_count_leading_zeros32((uint32_t)x);
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  if (headroom_plus_one >= 32) return INT32_MAX; /* x == 0: not reached by callers */
  return tt_one_over_one_plus_x_for_x_in_0_1(
      (int32_t)(((uint32_t)x << headroom_plus_one) - 0x80000000u));
}

/* --- prepare-time helpers (double precision, tt_quant_util.c) --- */

/* real = multiplier * 2^(shift-31), |multiplier| in [2^30, 2^31), rounded half away from
 * zero, no flushing of tiny values (the training update factors rely on that). */
void tt_frexp_multiplier(double real, int32_t *multiplier, int32_t *shift);

/* TFLite QuantizeMultiplier: tt_frexp_multiplier with shifts below -31 flushed to zero. */
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
