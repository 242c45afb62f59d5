/* Softmax cross-entropy on int8 logits: the SOFTMAX kernel's fixed-point exp and reciprocal,
 * gradient p - onehot in Q0.31 (0 where it pushes a logit at -128 / 127 further out) requantized
 * to int8, loss ln S - s_z * (z_y - z_max) in Q16.16
 * (this form stays exact when p_y underflows Q0.31). */
#include "tt_loss.h"

#include "tt_fixedpoint.h"
#include "tt_gradient.h"
#include "tt_softmax.h"

enum {
  TT_LOSS_SCALED_DIFF_INTEGER_BITS = 5, /* as tt_softmax.c */
  TT_LOSS_ACCUMULATION_INTEGER_BITS = 12,
  TT_LOSS_LOG2_FRACTION_BITS = 24 /* integer log2 result: Q7.24 */
};
#define TT_LN2_Q31 ((int64_t)1488522236) /* round(ln 2 * 2^31) */

/* log2 of a positive fixed-point int32 with fraction_bits fraction bits, as Q7.24:
 * normalise to a Q1.30 mantissa in [1, 2) with count-leading-zeros, then square (truncated)
 * once per result bit; a square >= 2 sets the bit and is halved. */
static int32_t tt_log2_fixed(int32_t x, int32_t fraction_bits) {
  const int32_t msb = 31 - tt_count_leading_zeros32((uint32_t)x);
  uint64_t m = (uint64_t)(uint32_t)x << (30 - msb);
  int32_t result = (int32_t)((uint32_t)(msb - fraction_bits) << TT_LOSS_LOG2_FRACTION_BITS);
  int32_t k;
  for (k = 1; k <= TT_LOSS_LOG2_FRACTION_BITS; ++k) {
    m = (m * m) >> 30; /* m < 2^31, so m * m < 2^62 */
    if (m >= ((uint64_t)1 << 31)) {
      m >>= 1;
      result += (int32_t)1 << (TT_LOSS_LOG2_FRACTION_BITS - k);
    }
  }
  return result;
}

/* Signed right shift of an int64, rounding half away from zero. */
static int64_t tt_round_shift_right64(int64_t v, int32_t shift) {
  const int64_t half = (int64_t)1 << (shift - 1);
  return v >= 0 ? (v + half) >> shift : -((-v + half) >> shift);
}

/* exp(s_z * diff) in Q0.31, 0 below diff_min (as tt_softmax.c). */
static int32_t tt_loss_exp(const tt_softmax_cross_entropy_params *p, int32_t diff) {
  if (diff < p->diff_min) return 0;
  return tt_exp_on_negative_values(
      tt_saturating_rounding_doubling_high_mul((int32_t)((uint32_t)diff << p->input_left_shift),
                                               p->input_multiplier),
      TT_LOSS_SCALED_DIFF_INTEGER_BITS);
}

tt_status tt_softmax_cross_entropy_prepare(float input_scale,
                                           tt_softmax_cross_entropy_params *params) {
  tt_softmax_params sp;
  int32_t multiplier, shift;
  const tt_status status = tt_softmax_prepare(1.0f, input_scale, &sp);
  if (status != TT_OK) return status;
  tt_quantize_multiplier((double)input_scale * 65536.0, &multiplier, &shift);
  if (shift > 23) return TT_ERR_UNSUPPORTED;
  params->input_multiplier = sp.input_multiplier;
  params->input_left_shift = sp.input_left_shift;
  params->diff_min = sp.diff_min;
  params->logit_multiplier = multiplier;
  params->logit_shift = shift;
  return TT_OK;
}

int32_t tt_softmax_cross_entropy_scratch_size(int32_t depth) {
  return depth > 0 ? depth * (int32_t)sizeof(int32_t) : 0;
}

tt_status tt_softmax_cross_entropy(const tt_softmax_cross_entropy_params *params, int32_t depth,
                                   const int8_t *logits, int32_t label, int32_t *loss,
                                   int8_t *grad, int32_t *grad_exponent, int32_t *scratch) {
  int32_t i, max = -128, sum = 0, num_bits_over_unit, reciprocal;
  int64_t ln_sum, total;
  if (depth < 1 || depth > TT_SOFTMAX_CROSS_ENTROPY_MAX_DEPTH) return TT_ERR_ARG;
  if (label < 0 || label >= depth) return TT_ERR_ARG;
  for (i = 0; i < depth; ++i) max = logits[i] > max ? logits[i] : max;
  /* exps in scratch; their sum in Q12.19 (>= 2^19: the maximum contributes exactly 1). */
  for (i = 0; i < depth; ++i) {
    scratch[i] = tt_loss_exp(params, logits[i] - max);
    sum += tt_rounding_divide_by_pot(scratch[i], TT_LOSS_ACCUMULATION_INTEGER_BITS);
  }
  reciprocal = tt_get_reciprocal(sum, TT_LOSS_ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
  for (i = 0; i < depth; ++i) {
    /* p in Q0.31, then p - [i == label]; p_label - 2^31 >= INT32_MIN. */
    const int32_t p = tt_rounding_divide_by_pot(
        tt_saturating_rounding_doubling_high_mul(reciprocal, scratch[i]), num_bits_over_unit);
    scratch[i] = i == label ? (int32_t)((int64_t)p - ((int64_t)1 << 31)) : p;
    /* A logit at an int8 bound cannot move past it: no gradient pushing it further out. */
    if ((logits[i] == 127 && scratch[i] < 0) || (logits[i] == -128 && scratch[i] > 0)) {
      scratch[i] = 0;
    }
  }
  tt_requantize_pow2(scratch, depth, -31, grad, grad_exponent);
  /* ln S: Q7.24 log2 times ln 2 in Q0.31, down to Q16.16. */
  ln_sum = tt_round_shift_right64(
      (int64_t)tt_log2_fixed(sum, 31 - TT_LOSS_ACCUMULATION_INTEGER_BITS) * TT_LN2_Q31,
      TT_LOSS_LOG2_FRACTION_BITS + 31 - 16);
  total = ln_sum - tt_multiply_by_quantized_multiplier(logits[label] - max,
                                                       params->logit_multiplier,
                                                       params->logit_shift);
  *loss = total > INT32_MAX ? INT32_MAX : (int32_t)total;
  return TT_OK;
}
