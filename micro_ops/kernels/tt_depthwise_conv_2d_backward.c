/* DEPTHWISE_CONV_2D training kernels: input gradient (gather form) and weight/bias gradients
 * fused with the in-place stochastic-rounding update. The input gradient visits only the taps
 * a stride lets reach each pixel and, with depth multiplier 1, 4 channels per pass (with the
 * DSP extension one SMLABB / SMLATT each, tt_dsp.h); same integer sums, same bits. */
#include "tt_depthwise_conv_2d_backward.h"

#include "tt_dsp.h"
#include "tt_gradient.h"
#include "tt_window.h"

tt_status tt_depthwise_conv_2d_backward_input_prepare(const float *filter_scale,
                                                      int32_t n_scales,
                                                      const tt_dims *filter_dims,
                                                      int32_t depth_multiplier, int32_t *r,
                                                      int32_t *s_e, int32_t *p) {
  if (!filter_dims || depth_multiplier < 1) return TT_ERR_ARG;
  return tt_backward_input_prepare(filter_scale, n_scales, filter_dims->c,
                                   depth_multiplier * filter_dims->h * filter_dims->w, r, s_e, p);
}

int32_t tt_depthwise_conv_2d_backward_input_scratch_size(const tt_dims *input_dims) {
  return tt_pow2_stream_scratch_size(input_dims->n * input_dims->h * input_dims->w *
                                     input_dims->c);
}

enum { TT_DW_TAP_CACHE = 16 }; /* kernel rows / columns whose source index is cached */

/* Taps k with a source index for input position i satisfy k * dilation == i + pad (mod
 * stride): k = first, first + step, ... with step = stride / gcd(stride, dilation). */
static int32_t tt_dw_tap_step(int32_t stride, int32_t dilation) {
  int32_t a = stride, b = dilation;
  while (b != 0) {
    const int32_t t = a % b;
    a = b;
    b = t;
  }
  return stride / a;
}

/* The first such tap below min(step, size), or size when there is none. */
static int32_t tt_dw_first_tap(int32_t i, int32_t stride, int32_t dilation, int32_t pad,
                               int32_t step, int32_t size) {
  for (int32_t k = 0; k < step && k < size; ++k) {
    if ((i + pad - k * dilation) % stride == 0) return k;
  }
  return size;
}

/* tt_window_source, read from `cache` (filled for k < TT_DW_TAP_CACHE) when it is there. */
static int32_t tt_dw_cached_source(const int32_t *cache, int32_t i, int32_t k, int32_t stride,
                                   int32_t dilation, int32_t pad, int32_t out_size) {
  return k < TT_DW_TAP_CACHE ? cache[k] : tt_window_source(i, k, stride, dilation, pad, out_size);
}

/* One input pixel's taps: only ky = fy, fy + sy, ... and kx = fx, fx + sx, ... can reach it;
 * their source rows / columns cached (tt_dw_cached_source). */
typedef struct {
  const tt_depthwise_conv_2d_params *params;
  int32_t iy, ix, fy, fx, sy, sx, k_h, k_w, out_h, out_w, ch;
  const int32_t *oy_of, *ox_of;
} tt_dw_pixel_taps;

/* sum[j] = sum over the taps reaching the pixel of w[tap][j] * g[source pixel][c + j], for
 * j < n (1, or 4 channels contiguous in the filter part and the gradient). w: channel c's
 * column of its filter part at tap 0; w_step: the part's channel count. */
static void tt_dw_input_grad_sums(const tt_dw_pixel_taps *t, const int8_t *g_img, int32_t c,
                                  const int8_t *w, size_t w_step, int32_t n, int32_t sum[4]) {
  const tt_depthwise_conv_2d_params *p = t->params;
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int32_t ky = t->fy; ky < t->k_h; ky += t->sy) {
    const int32_t oy = tt_dw_cached_source(t->oy_of, t->iy, ky, p->stride_h, p->dilation_h,
                                           p->pad_h, t->out_h);
    if (oy < 0) continue;
    for (int32_t kx = t->fx; kx < t->k_w; kx += t->sx) {
      const int32_t ox = tt_dw_cached_source(t->ox_of, t->ix, kx, p->stride_w, p->dilation_w,
                                             p->pad_w, t->out_w);
      if (ox < 0) continue;
      const int8_t *wp = w + ((size_t)ky * t->k_w + kx) * w_step;
      const int8_t *gp = g_img + ((size_t)oy * t->out_w + ox) * t->ch + c;
      if (n == 4) {
#if TT_DSP
        const uint32_t ww = tt_dsp_load4(wp), gw = tt_dsp_load4(gp);
        const uint32_t we = tt_dsp_even0(ww), wo = tt_dsp_odd0(ww);
        const uint32_t ge = tt_dsp_even0(gw), go = tt_dsp_odd0(gw);
        s0 = tt_dsp_mac_lo(we, ge, s0), s2 = tt_dsp_mac_hi(we, ge, s2);
        s1 = tt_dsp_mac_lo(wo, go, s1), s3 = tt_dsp_mac_hi(wo, go, s3);
#else
        s0 += wp[0] * gp[0], s1 += wp[1] * gp[1], s2 += wp[2] * gp[2], s3 += wp[3] * gp[3];
#endif
      } else {
        s0 += wp[0] * gp[0];
      }
    }
  }
  sum[0] = s0, sum[1] = s1, sum[2] = s2, sum[3] = s3;
}

tt_status tt_depthwise_conv_2d_backward_input(const tt_depthwise_conv_2d_params *params,
                                              const tt_backward_input_quant *quant,
                                              const tt_dims *grad_dims, const int8_t *grad,
                                              int32_t grad_exponent, const tt_dims *filter_dims,
                                              const int8_t *filter, const tt_dims *input_dims,
                                              int32_t *scratch, int8_t *input_grad,
                                              int32_t *input_grad_exponent) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_depthwise_conv_2d_backward_input_split(params, quant, grad_dims, grad,
                                                   grad_exponent, filter_dims, &whole,
                                                   input_dims, scratch, input_grad,
                                                   input_grad_exponent);
}

tt_status tt_depthwise_conv_2d_backward_input_split(
    const tt_depthwise_conv_2d_params *params, const tt_backward_input_quant *quant,
    const tt_dims *grad_dims, const int8_t *grad, int32_t grad_exponent,
    const tt_dims *filter_dims, const tt_split_filter *filter, const tt_dims *input_dims,
    int32_t *scratch, int8_t *input_grad, int32_t *input_grad_exponent) {
  if (!params || !quant || !quant->r || !grad_dims || !grad || !filter_dims || !filter ||
      !filter->slice || !input_dims || !scratch || !input_grad || !input_grad_exponent) {
    return TT_ERR_ARG;
  }
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, ch = filter_dims->c;
  const int32_t out_h = grad_dims->h, out_w = grad_dims->w, dm = params->depth_multiplier;
  if (dm < 1 || ch != in_c * dm || grad_dims->c != ch || grad_dims->n != input_dims->n) {
    return TT_ERR_SHAPE;
  }
  const int32_t split = filter->split;
  if (split < 1 || split > ch || (split < ch && !filter->rest)) return TT_ERR_ARG;
  if (params->stride_h < 1 || params->stride_w < 1 || params->dilation_h < 1 ||
      params->dilation_w < 1) {
    return TT_ERR_ARG;
  }
  /* Channel c's sum is r[c] * sum over taps of w * g, exactly the reference's sum of
   * w * (g * r[c]) (integers); |w * g| <= 127 * 128, so up to 2^16 taps sum in int32. */
  if ((int64_t)k_h * k_w > 65536) return TT_ERR_UNSUPPORTED;
  const int8_t *part[2] = {filter->slice, filter->rest};
  const int32_t cols[2] = {split, ch - split}; /* each part's channel count (its row step) */
  const int32_t sy = tt_dw_tap_step(params->stride_h, params->dilation_h);
  const int32_t sx = tt_dw_tap_step(params->stride_w, params->dilation_w);
  tt_pow2_stream st;
  tt_pow2_stream_init(&st, input_grad, scratch);
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t iy = 0; iy < in_h; ++iy) {
      for (int32_t ix = 0; ix < in_w; ++ix) {
        /* Only taps fy, fy + sy, ... (fx, fx + sx, ...) can reach this pixel (a quarter of
         * them at stride 2); the output row / column each reads from (-1: none), once per
         * pixel. */
        const int32_t fy = tt_dw_first_tap(iy, params->stride_h, params->dilation_h,
                                           params->pad_h, sy, k_h);
        const int32_t fx = tt_dw_first_tap(ix, params->stride_w, params->dilation_w,
                                           params->pad_w, sx, k_w);
        int32_t oy_of[TT_DW_TAP_CACHE], ox_of[TT_DW_TAP_CACHE];
        for (int32_t k = fy; k < k_h && k < TT_DW_TAP_CACHE; k += sy) {
          oy_of[k] = tt_window_source(iy, k, params->stride_h, params->dilation_h,
                                        params->pad_h, out_h);
        }
        for (int32_t k = fx; k < k_w && k < TT_DW_TAP_CACHE; k += sx) {
          ox_of[k] = tt_window_source(ix, k, params->stride_w, params->dilation_w,
                                        params->pad_w, out_w);
        }
        const tt_dw_pixel_taps t = {params, iy, ix, fy, fx, sy, sx, k_h, k_w,
                                    out_h, out_w, ch, oy_of, ox_of};
        const int8_t *g_img = grad + (size_t)b * out_h * out_w * ch;
        for (int32_t i = 0; i < in_c;) {
          int32_t sum[4];
          if (dm == 1) { /* channel i = input channel i: 4 at a time within a filter part */
            const int32_t p = i < split ? 0 : 1, lo = p ? split : 0, hi = p ? ch : split;
            const int32_t n = i + 4 <= hi ? 4 : 1;
            tt_dw_input_grad_sums(&t, g_img, i, part[p] + (i - lo), (size_t)cols[p], n, sum);
            for (int32_t j = 0; j < n; ++j) {
              const int64_t acc = (int64_t)sum[j] * quant->r[i + j];
              tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc, quant->p));
            }
            i += n;
            continue;
          }
          int64_t acc = 0; /* input channel i feeds output channels i * dm .. i * dm + dm - 1 */
          for (int32_t c = i * dm; c < (i + 1) * dm; ++c) {
            const int32_t p = c < split ? 0 : 1;
            tt_dw_input_grad_sums(&t, g_img, c, part[p] + (c - (p ? split : 0)),
                                  (size_t)cols[p], 1, sum);
            acc += (int64_t)sum[0] * quant->r[c];
          }
          tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc, quant->p));
          ++i;
        }
      }
    }
  }
  tt_pow2_stream_finish(&st, grad_exponent + quant->s_e - 15 + quant->p, input_grad_exponent);
  return TT_OK;
}

tt_status tt_depthwise_conv_2d_update(const tt_depthwise_conv_2d_params *params,
                                      const tt_update_params *update, const tt_dims *input_dims,
                                      const int8_t *input, const tt_dims *grad_dims,
                                      const int8_t *grad, int32_t grad_exponent,
                                      const tt_dims *filter_dims, int8_t *filter, int32_t *bias,
                                      int32_t *weight_velocity, int32_t *bias_velocity,
                                      uint64_t *prng_state) {
  /* The input is needed only by the weight gradient: a bias-only update may pass NULL. */
  if (!params || !update || !grad_dims || !grad || !filter_dims || !filter || !prng_state ||
      (update->update_bias && !bias) || (input && !input_dims) ||
      (update->update_weights && !input) ||
      !tt_update_momentum_ok(update, weight_velocity, bias_velocity)) {
    return TT_ERR_ARG;
  }
  const int32_t mu = update->momentum_q15;
  /* ch output channels (every bias); the filter holds the first f_c of them */
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
  const int32_t out_h = grad_dims->h, out_w = grad_dims->w, dm = params->depth_multiplier;
  const int32_t batches = grad_dims->n, ch = grad_dims->c;
  if (dm < 1 || f_c > ch) return TT_ERR_SHAPE;
  if (input && (input_dims->c * dm > f_c || input_dims->n != batches)) return TT_ERR_SHAPE;

  if (update->update_weights) {
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ic = input_dims->c;
    if (out_w > 65536) return TT_ERR_UNSUPPORTED; /* a row's int32 sum could overflow */
    const int32_t ch_count = ic * dm; /* the weight slice; biases cover every channel */
    int32_t *v = weight_velocity;     /* compact slice (ky, kx, c): advances in draw order */
    for (int32_t ky = 0; ky < k_h; ++ky) {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        /* Output pixels whose tap (ky, kx) lands inside the input: padding taps are omitted,
         * as in forward. */
        int32_t oy0, oy1, ox0, ox1;
        tt_window_range(ky * params->dilation_h - params->pad_h, params->stride_h, out_h, in_h,
                        &oy0, &oy1);
        tt_window_range(kx * params->dilation_w - params->pad_w, params->stride_w, out_w, in_w,
                        &ox0, &ox1);
        const size_t x_step = (size_t)params->stride_w * ic;
        for (int32_t c = 0; c < ch_count; ++c) {
          const int32_t i = c / dm;
          int64_t acc = 0;
          for (int32_t b = 0; b < batches && ox0 < ox1; ++b) {
            for (int32_t oy = oy0; oy < oy1; ++oy) {
              const int32_t iy = oy * params->stride_h - params->pad_h + ky * params->dilation_h;
              const int32_t ix0 = ox0 * params->stride_w - params->pad_w + kx * params->dilation_w;
              const int8_t *g = grad + (((size_t)b * out_h + oy) * out_w + ox0) * ch + c;
              const int8_t *x = input + (((size_t)b * in_h + iy) * in_w + ix0) * ic + i;
              acc += tt_weight_grad_row(g, (size_t)ch, x, x_step, ox1 - ox0,
                                        params->input_offset);
            }
          }
          int32_t m, s;
          tt_update_multiplier(update->weight_factor.multiplier[c],
                               tt_factor_shift(&update->weight_factor, c), update->lr.multiplier,
                               update->lr.shift, &m, &s);
          int8_t *w = &filter[((size_t)ky * k_w + kx) * f_c + c];
          *w = tt_apply_weight_delta(
              *w, tt_sgd_momentum_delta(acc, grad_exponent, m, s, mu, mu ? v++ : NULL,
                                        prng_state));
        }
      }
    }
  }
  if (update->update_bias) {
    tt_update_bias(update, grad, (size_t)batches * out_h * out_w, ch, grad_exponent, bias,
                   bias_velocity, prng_state);
  }
  return TT_OK;
}
