/* SOFTMAX, int8 → int8: TFLite reference_ops::Softmax quantized arithmetic. Two passes per
 * row: sum of exp(diff) in Q12.19, then each exp times the row's reciprocal. exp() is
 * recomputed in the second pass (no scratch), exactly as the reference does. */
#include "tt_softmax.h"

#include <math.h>

#include "tt_fixedpoint.h"

enum { TT_SCALED_DIFF_INTEGER_BITS = 5, TT_ACCUMULATION_INTEGER_BITS = 12 };

/* exp(beta * scale * diff) in Q0.31 for a difference diff >= diff_min. */
static int32_t tt_softmax_exp(const tt_softmax_params *p, int32_t diff) {
  /* diff >= diff_min keeps diff * 2^left_shift within int32 (CalculateInputRadius). */
  const int32_t rescaled = tt_saturating_rounding_doubling_high_mul(
      (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
  return tt_exp_on_negative_values(rescaled, TT_SCALED_DIFF_INTEGER_BITS);
}

tt_status tt_softmax(const tt_softmax_params *params, int32_t outer_size, int32_t depth,
                     const int8_t *input, int8_t *output) {
  int32_t i, c;
  for (i = 0; i < outer_size; ++i) {
    const int8_t *x = input + (ptrdiff_t)i * depth;
    int8_t *y = output + (ptrdiff_t)i * depth;
    int32_t max = -128, sum = 0, num_bits_over_unit, reciprocal, exponent;
    for (c = 0; c < depth; ++c) max = x[c] > max ? x[c] : max;
    for (c = 0; c < depth; ++c) {
      const int32_t diff = x[c] - max;
      if (diff >= params->diff_min) {
        sum = tt_wrap_add(sum, tt_rounding_divide_by_pot(tt_softmax_exp(params, diff),
                                                         TT_ACCUMULATION_INTEGER_BITS));
      }
    }
    reciprocal = tt_get_reciprocal(sum, TT_ACCUMULATION_INTEGER_BITS, &num_bits_over_unit);
    exponent = num_bits_over_unit + 31 - 8;
    /* A row sum of exps >= 512 (e.g. 512 equal maxima): TFLM aborts here too. */
    if (exponent < 0 || exponent > 31) return TT_ERR_SHAPE;
    for (c = 0; c < depth; ++c) {
      const int32_t diff = x[c] - max;
      int32_t out = -128;
      if (diff >= params->diff_min) {
        const int32_t scaled =
            tt_saturating_rounding_doubling_high_mul(reciprocal, tt_softmax_exp(params, diff));
        out = tt_rounding_divide_by_pot(scaled, exponent) - 128;
        out = tt_clamp(out, -128, 127);
      }
      y[c] = (int8_t)out;
    }
  }
  return TT_OK;
}

tt_status tt_softmax_prepare(float beta, float input_scale, tt_softmax_params *params) {
  const double max_real_multiplier = 2147483647.0; /* (1 << 31) - 1 */
  double real = (double)beta * (double)input_scale *
                (double)(1 << (31 - TT_SCALED_DIFF_INTEGER_BITS));
  int32_t shift;
  if (real > max_real_multiplier) real = max_real_multiplier;
  if (!(real > 1.0)) return TT_ERR_UNSUPPORTED; /* QuantizeMultiplierGreaterThanOne */
  tt_quantize_multiplier(real, &params->input_multiplier, &shift);
  params->input_left_shift = shift;
  /* CalculateInputRadius(5, shift, 31), floored, negated. */
  params->diff_min = -(int32_t)floor(1.0 * ((1 << TT_SCALED_DIFF_INTEGER_BITS) - 1) *
                                     (double)(1LL << (31 - TT_SCALED_DIFF_INTEGER_BITS)) /
                                     (double)(1LL << shift));
  return TT_OK;
}
