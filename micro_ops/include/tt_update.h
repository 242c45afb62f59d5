/* The in-place QAS update primitive shared by the MAC training kernels, and the prepare-time
 * constants of the MAC backward kernels (docs/training-numerics.md).
 * Numpy twin: tflm_train/kernels/update.py. */
#ifndef TT_UPDATE_H
#define TT_UPDATE_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Update of one MAC layer. Factors are per output channel, fixed at compile time:
 * QAS: weight s_x/s_w[c], bias 1/(s_x*s_w[c]); plain SGD (ablation): s_x*s_w[c] for both.
 * A factor's shift may be NULL (every shift 0: the model's optional w_shift / b_shift); a
 * factor whose update flag is 0 is not read (may be all NULL).
 * lr is the run-time learning rate. A flag at 0 leaves that tensor untouched and draws
 * no random numbers for it. momentum_q15 = mu * 2^15 in [0, 2^15) (tt_momentum_q15); 0 is
 * plain SGD without velocity state (set it explicitly: the kernels reject values outside). */
typedef struct {
  tt_per_channel_quant weight_factor;
  tt_per_channel_quant bias_factor;
  tt_quant_mult lr;
  int32_t update_weights;
  int32_t update_bias;
  int32_t momentum_q15;
} tt_update_params;

#define TT_MOMENTUM_ONE 32768          /* momentum_q15 of mu = 1 (exclusive bound) */
#define TT_VELOCITY_FRAC_BITS 16       /* velocity: int32 Q16.16, units of one parameter LSB */

/* Input-gradient constants: r[c] = round(2^15 s_w[c] / 2^s_e) (one per output channel),
 * s_e = floor(log2 max s_w) + 1, p = right shift of the int64 sums to int32 accumulators. */
typedef struct {
  const int32_t *r;
  int32_t s_e;
  int32_t p;
} tt_backward_input_quant;

/* --- run time (integer only) --- */

/* Shift of channel c of a factor (NULL shift vector: 0). */
static inline int32_t tt_factor_shift(const tt_per_channel_quant *factor, int32_t c) {
  return factor->shift != NULL ? factor->shift[c] : 0;
}

/* factor * lr: high-mul of the multipliers, shifts add. */
void tt_update_multiplier(int32_t factor_multiplier, int32_t factor_shift, int32_t lr_multiplier,
                          int32_t lr_shift, int32_t *multiplier, int32_t *shift);

/* Stochastically rounded update, in LSBs of the parameter, of a gradient accumulator acc with
 * exponent e_acc scaled by multiplier * 2^(shift-31). |acc| >= 2^31 is first truncated to 31
 * bits (shift k joins the exponent); t = acc * multiplier has R = 31 - shift - e_acc - k
 * fractional bits; R > 62 drops low bits of |t| down to R = 62; R <= 0 is an exact left shift.
 * Result sign(t) * min(floor((|t| + r) / 2^R), INT32_MAX), r = the top R bits of one
 * xorshift64* draw. Draws exactly once, whatever the path. */
int32_t tt_sgd_delta(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                     uint64_t *prng_state);

/* SGD with momentum (docs/training-numerics.md, "Momentum"). The step of tt_sgd_delta before
 * its stochastic rounding, t * 2^-R, is rounded half away from zero to Q16.16 LSBs
 * (s, magnitude saturated at INT32_MAX); v <- sat(rdbp(momentum_q15 * v, 15) + s) with rdbp
 * the half-away-from-zero right shift and sat the clamp to [-INT32_MAX, INT32_MAX];
 * result sign(v) * floor((|v| + (u >> 48)) / 2^16), u one xorshift64* draw (|result| <= 2^15).
 * momentum_q15 == 0: exactly tt_sgd_delta, *velocity neither read nor written (may be NULL).
 * Precondition: 0 <= momentum_q15 < 2^15, velocity != NULL when momentum_q15 != 0. */
int32_t tt_sgd_momentum_delta(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift,
                              int32_t momentum_q15, int32_t *velocity, uint64_t *prng_state);

/* The Q16.16 step s of tt_sgd_momentum_delta (no draw). */
int32_t tt_sgd_step_q16(int64_t acc, int32_t e_acc, int32_t multiplier, int32_t shift);

/* The bias half of every MAC *_update kernel: for c = 0..channels-1 in order, bias[c] less the
 * tt_sgd_momentum_delta (one draw) of the sum over positions of grad[pos * channels + c] (grad
 * [positions, channels], row-major), scaled by bias_factor[c] * lr; velocity bias_velocity[c]. */
void tt_update_bias(const tt_update_params *update, const int8_t *grad, size_t positions,
                    int32_t channels, int32_t grad_exponent, int32_t *bias,
                    int32_t *bias_velocity, uint64_t *prng_state);

/* Argument check shared by the *_update kernels: 0 <= momentum_q15 < 2^15, and with momentum
 * a velocity for every tensor whose update flag is on. */
static inline int tt_update_momentum_ok(const tt_update_params *update,
                                        const int32_t *weight_velocity,
                                        const int32_t *bias_velocity) {
  if (update->momentum_q15 < 0 || update->momentum_q15 >= TT_MOMENTUM_ONE) return 0;
  return update->momentum_q15 == 0 ||
         ((!update->update_weights || weight_velocity) && (!update->update_bias || bias_velocity));
}

/* W <- clamp(W - delta, -127, 127) and b <- clamp_int32(b - delta). */
static inline int8_t tt_apply_weight_delta(int8_t w, int32_t delta) {
  const int64_t v = (int64_t)w - delta;
  return (int8_t)(v < -127 ? -127 : (v > 127 ? 127 : v));
}
static inline int32_t tt_apply_bias_delta(int32_t b, int32_t delta) {
  const int64_t v = (int64_t)b - delta;
  return (int32_t)(v < INT32_MIN ? INT32_MIN : (v > INT32_MAX ? INT32_MAX : v));
}

/* One output row of a weight gradient: sum of g[k * g_step] * (x[k * x_step] + x_offset) for
 * k < n. |term| <= 128 * 255 < 2^15, so up to 2^16 terms sum exactly in int32. */
static inline int32_t tt_weight_grad_row(const int8_t *g, size_t g_step, const int8_t *x,
                                         size_t x_step, int32_t n, int32_t x_offset) {
  int32_t row = 0;
  for (int32_t k = 0; k < n; ++k, g += g_step, x += x_step) row += (int32_t)*g * (*x + x_offset);
  return row;
}

/* Round-half-away-from-zero right shift of an int64 (0 <= exponent < 63). */
static inline int64_t tt_rounding_divide_by_pot64(int64_t x, int exponent) {
  if (exponent == 0) return x;
  {
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    const int64_t remainder = x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* >> of a negative int64 is arithmetic on every target we support (as in gemmlowp). */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
  }
}

/* --- prepare time (double precision) --- */

/* real >= 0 → multiplier in [2^30, 2^31) and shift, real = multiplier * 2^(shift-31). Unlike
 * tt_quantize_multiplier, tiny values are not flushed to zero. 0, negative or NaN → (0, 0)
 * (the numpy twin raises for negative or non-finite values). */
void tt_update_factor(double real, int32_t *multiplier, int32_t *shift);

/* Float learning rate → run-time pair (same rule as tt_update_factor). */
void tt_update_lr(double lr, tt_quant_mult *lr_out);

/* Momentum mu in [0, 1) → round_half_away(mu * 2^15), clamped to 2^15 - 1; mu outside
 * [0, 1) or NaN → -1, which every *_update kernel rejects (TT_ERR_ARG). */
int32_t tt_momentum_q15(double mu);

/* Factors of n_channels output channels from n_scales (1 or n_channels) filter scales;
 * qas != 0 selects QAS. Scales are widened to double first. */
tt_status tt_update_factors(float input_scale, const float *filter_scale, int32_t n_scales,
                            int32_t n_channels, int32_t qas, int32_t *weight_multiplier,
                            int32_t *weight_shift, int32_t *bias_multiplier,
                            int32_t *bias_shift);

/* r (n_channels entries), s_e and p for a layer whose input-gradient elements sum at most
 * fan_out products: p is the smallest shift with 128*128*(2^15-1)*fan_out / 2^p < 2^30. */
tt_status tt_backward_input_prepare(const float *filter_scale, int32_t n_scales,
                                    int32_t n_channels, int32_t fan_out, int32_t *r,
                                    int32_t *s_e, int32_t *p);

#ifdef __cplusplus
}
#endif
#endif /* TT_UPDATE_H */
