/* QUANTIZE: float32 → int8 (model edge; float by nature) and int8 → int8 (integer only). */
#include "tt_quantize.h"

#include "tt_fixedpoint.h"

/* roundf(r) (half away from zero) converted to int32, saturating; NaN gives INT32_MIN as
 * x86's conversion does. |r| < 2^31 here, and below 2^23 r - trunc(r) is exact. */
static int32_t tt_round_to_int32(float r) {
  int32_t t;
  float frac;
  if (r != r || r <= -2147483648.0f) return INT32_MIN;
  if (r >= 2147483648.0f) return INT32_MAX;
  t = (int32_t)r;
  frac = r - (float)t;
  if (frac >= 0.5f) ++t;
  if (frac <= -0.5f) --t;
  return t;
}

void tt_quantize(const tt_quantize_params *params, const float *input, int8_t *output,
                 size_t size) {
  size_t i;
  for (i = 0; i < size; ++i) {
    /* float32 division, as the reference's val / static_cast<float>(scale). */
    const int64_t q = (int64_t)tt_round_to_int32(input[i] / params->scale) + params->zero_point;
    output[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
  }
}

void tt_requantize(const tt_requantize_params *params, const int8_t *input, int8_t *output,
                   size_t size) {
  size_t i;
  for (i = 0; i < size; ++i) {
    const int32_t y = tt_multiply_by_quantized_multiplier(input[i] - params->input_zero_point,
                                                          params->multiplier, params->shift) +
                      params->output_zero_point;
    output[i] = (int8_t)tt_clamp(y, -128, 127);
  }
}

void tt_requantize_prepare(float input_scale, int32_t input_zero_point, float output_scale,
                           int32_t output_zero_point, tt_requantize_params *params) {
  tt_quantize_multiplier((double)input_scale / (double)output_scale, &params->multiplier,
                         &params->shift);
  params->input_zero_point = input_zero_point;
  params->output_zero_point = output_zero_point;
}
