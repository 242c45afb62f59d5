/* QAS update primitive (stochastic rounding) and MAC backward prepare-time constants. */
#include "tt_update.h"

#include <math.h>

#include "tt_fixedpoint.h"
#include "tt_gradient.h"

#define TT_UPDATE_R_MAX 62

void tt_update_multiplier(int32_t factor_multiplier, int32_t factor_shift, int32_t lr_multiplier,
                          int32_t lr_shift, int32_t *multiplier, int32_t *shift) {
  *multiplier = tt_saturating_rounding_doubling_high_mul(factor_multiplier, lr_multiplier);
  *shift = factor_shift + lr_shift;
}

int32_t tt_sgd_delta(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                     uint64_t *prng_state) {
  const uint64_t bits = tt_prng_next(prng_state);
  const int neg = (acc < 0) != (multiplier < 0);
  uint64_t mag = acc < 0 ? 0u - (uint64_t)acc : (uint64_t)acc;
  /* Reduce |acc| to 31 bits, truncating; the shift k joins the exponent. */
  int32_t k = 0;
  while ((mag >> k) >= ((uint64_t)1 << 31)) ++k;
  mag >>= k;
  const uint64_t abs_m = multiplier < 0 ? 0u - (uint64_t)(int64_t)multiplier : (uint64_t)multiplier;
  uint64_t t = mag * abs_m; /* < 2^62: exact */
  int64_t r_bits = 31 - (int64_t)shift - e_acc - k;
  uint64_t d;
  if (r_bits > TT_UPDATE_R_MAX) {
    const int64_t extra = r_bits - TT_UPDATE_R_MAX;
    t = extra >= 63 ? 0 : t >> extra;
    r_bits = TT_UPDATE_R_MAX;
  }
  if (r_bits > 0) {
    const uint64_t r = bits >> (64 - r_bits); /* uniform in [0, 2^R) */
    d = (t + r) >> r_bits;                    /* t + r < 2^63 */
    if (d > (uint64_t)INT32_MAX) d = INT32_MAX;
  } else if (t == 0) {
    d = 0;
  } else if (-r_bits < 32 && t <= ((uint64_t)INT32_MAX >> -r_bits)) {
    d = t << -r_bits;
  } else {
    d = INT32_MAX;
  }
  return neg ? -(int32_t)d : (int32_t)d;
}

void tt_update_factor(double real, int32_t *multiplier, int32_t *shift) {
  if (!(real > 0.0) || !isfinite(real)) { /* 0, negative or NaN: no update */
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exp = 0;
  const double q = frexp(real, &exp);
  const double scaled = q * (double)(1LL << 31);
  int64_t q_fixed = (int64_t)floor(scaled + 0.5); /* q > 0: half away from zero */
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++exp;
  }
  *multiplier = (int32_t)q_fixed;
  *shift = exp;
}

void tt_update_lr(double lr, tt_quant_mult *lr_out) {
  tt_update_factor(lr, &lr_out->multiplier, &lr_out->shift);
}

tt_status tt_update_factors(float input_scale, const float *filter_scale, int32_t n_scales,
                            int32_t n_channels, int32_t qas, int32_t *weight_multiplier,
                            int32_t *weight_shift, int32_t *bias_multiplier,
                            int32_t *bias_shift) {
  if (!filter_scale || !weight_multiplier || !weight_shift || !bias_multiplier || !bias_shift ||
      n_channels < 1 || (n_scales != 1 && n_scales != n_channels)) {
    return TT_ERR_ARG;
  }
  const double sx = (double)input_scale;
  for (int32_t c = 0; c < n_channels; ++c) {
    const double sw = (double)filter_scale[n_scales == 1 ? 0 : c];
    if (qas) {
      tt_update_factor(sx / sw, &weight_multiplier[c], &weight_shift[c]);
      tt_update_factor(1.0 / (sx * sw), &bias_multiplier[c], &bias_shift[c]);
    } else {
      tt_update_factor(sx * sw, &weight_multiplier[c], &weight_shift[c]);
      tt_update_factor(sx * sw, &bias_multiplier[c], &bias_shift[c]);
    }
  }
  return TT_OK;
}

tt_status tt_backward_input_prepare(const float *filter_scale, int32_t n_scales,
                                    int32_t n_channels, int32_t fan_out, int32_t *r,
                                    int32_t *s_e, int32_t *p) {
  if (!filter_scale || !r || !s_e || !p || n_channels < 1 || fan_out < 1 ||
      (n_scales != 1 && n_scales != n_channels)) {
    return TT_ERR_ARG;
  }
  float max_scale = 0.0f;
  for (int32_t c = 0; c < n_scales; ++c) {
    if (!(filter_scale[c] > 0.0f)) return TT_ERR_ARG;
    if (filter_scale[c] > max_scale) max_scale = filter_scale[c];
  }
  int e = 0;
  (void)frexp((double)max_scale, &e); /* max = m 2^e, m in [0.5, 1): floor(log2 max) + 1 = e */
  for (int32_t c = 0; c < n_channels; ++c) {
    const double v = ldexp((double)filter_scale[n_scales == 1 ? 0 : c], 15 - e);
    const int32_t rc = (int32_t)floor(v + 0.5);
    r[c] = rc > 32767 ? 32767 : rc; /* v < 2^15 may round up to it */
  }
  *s_e = e;
  /* bound = 128 * 128 * (2^15 - 1) * fan_out < 2^60 for any int32 fan_out */
  const uint64_t bound = (uint64_t)128 * 128 * 32767u * (uint64_t)fan_out;
  int32_t bits = 0;
  while (bits < 64 && (bound >> bits) != 0) ++bits;
  *p = bits > 30 ? bits - 30 : 0;
  return TT_OK;
}
