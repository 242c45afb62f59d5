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

/* |t| << ls saturating at INT32_MAX (ls >= 0). */
static uint64_t tt_left_shift_sat(uint64_t t, int64_t ls) {
  if (t == 0) return 0;
  if (ls < 32 && t <= ((uint64_t)INT32_MAX >> ls)) return t << ls;
  return INT32_MAX;
}

/* Shared head of both update rules: |t| = |acc| * |M| after the truncating 31-bit pre-shift
 * of |acc| (< 2^62), its fractional bits R, and the sign of t. */
static uint64_t tt_qas_product(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                               int64_t *r_bits, int *neg) {
  *neg = (acc < 0) != (multiplier < 0);
  uint64_t mag = acc < 0 ? 0u - (uint64_t)acc : (uint64_t)acc;
  int32_t k = 0;
  while ((mag >> k) >= ((uint64_t)1 << 31)) ++k;
  mag >>= k;
  const uint64_t abs_m = multiplier < 0 ? 0u - (uint64_t)(int64_t)multiplier : (uint64_t)multiplier;
  *r_bits = 31 - (int64_t)shift - e_acc - k;
  return mag * abs_m;
}

int32_t tt_sgd_delta(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                     uint64_t *prng_state) {
  const uint64_t bits = tt_prng_next(prng_state);
  int64_t r_bits;
  int neg;
  uint64_t t = tt_qas_product(acc, e_acc, multiplier, shift, &r_bits, &neg);
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
  } else {
    d = tt_left_shift_sat(t, -r_bits);
  }
  return neg ? -(int32_t)d : (int32_t)d;
}

int32_t tt_sgd_step_q16(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift) {
  int64_t r_bits;
  int neg;
  const uint64_t t = tt_qas_product(acc, e_acc, multiplier, shift, &r_bits, &neg);
  const int64_t rs = r_bits - TT_VELOCITY_FRAC_BITS;
  uint64_t s;
  if (rs > 0) {
    const int64_t sh = rs > 63 ? 63 : rs; /* t < 2^62: any shift >= 63 rounds to 0 */
    s = (t + ((uint64_t)1 << (sh - 1))) >> sh;
    if (s > (uint64_t)INT32_MAX) s = INT32_MAX;
  } else {
    s = tt_left_shift_sat(t, -rs);
  }
  return neg ? -(int32_t)s : (int32_t)s;
}

int32_t tt_sgd_momentum_delta(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                              int32_t momentum_q15, int32_t *velocity, uint64_t *prng_state) {
  if (momentum_q15 == 0) return tt_sgd_delta(acc, e_acc, multiplier, shift, prng_state);
  const uint64_t bits = tt_prng_next(prng_state);
  const int64_t decayed = tt_rounding_divide_by_pot64((int64_t)momentum_q15 * *velocity, 15);
  int64_t v = decayed + tt_sgd_step_q16(acc, e_acc, multiplier, shift);
  if (v > INT32_MAX) v = INT32_MAX;
  if (v < -INT32_MAX) v = -INT32_MAX;
  *velocity = (int32_t)v;
  const uint64_t mag = (uint64_t)(v < 0 ? -v : v);
  const int32_t d = (int32_t)((mag + (bits >> (64 - TT_VELOCITY_FRAC_BITS))) >>
                              TT_VELOCITY_FRAC_BITS);
  return v < 0 ? -d : d;
}

int32_t tt_momentum_q15(double mu) {
  if (!(mu >= 0.0 && mu < 1.0)) return -1; /* also NaN */
  const int32_t q = (int32_t)floor(mu * TT_MOMENTUM_ONE + 0.5);
  return q > TT_MOMENTUM_ONE - 1 ? TT_MOMENTUM_ONE - 1 : q;
}

void tt_update_factor(double real, int32_t *multiplier, int32_t *shift) {
  if (!(real > 0.0) || !isfinite(real)) { /* 0, negative or NaN: no update */
    *multiplier = 0;
    *shift = 0;
    return;
  }
  tt_frexp_multiplier(real, multiplier, shift);
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

void tt_update_bias(const tt_update_params *update, const int8_t *grad, size_t positions,
                    int32_t channels, int32_t grad_exponent, int32_t *bias,
                    int32_t *bias_velocity, uint64_t *prng_state) {
  const int32_t mu = update->momentum_q15;
  for (int32_t c = 0; c < channels; ++c) {
    int32_t m, s;
    tt_update_multiplier(update->bias_factor.multiplier[c],
                         tt_factor_shift(&update->bias_factor, c), update->lr.multiplier,
                         update->lr.shift, &m, &s);
    int64_t acc = 0;
    for (size_t pos = 0; pos < positions; ++pos) acc += grad[pos * (size_t)channels + c];
    bias[c] = tt_apply_bias_delta(
        bias[c], tt_sgd_momentum_delta(acc, grad_exponent, m, s, mu,
                                       mu ? &bias_velocity[c] : NULL, prng_state));
  }
}
