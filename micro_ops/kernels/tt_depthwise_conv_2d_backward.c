/* DEPTHWISE_CONV_2D training kernels: input gradient (gather form) and weight/bias gradients
 * fused with the in-place stochastic-rounding update. */
#include "tt_depthwise_conv_2d_backward.h"

#include "tt_gradient.h"

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

/* Output index o with o * stride + k * dilation - pad == i, or -1 when there is none. */
static int32_t tt_dw_source_index(int32_t i, int32_t k, int32_t stride, int32_t dilation,
                                  int32_t pad, int32_t out_size) {
  const int32_t t = i + pad - k * dilation;
  if (t < 0 || t % stride != 0) return -1;
  return t / stride < out_size ? t / stride : -1;
}

/* tt_dw_source_index, read from `cache` (filled for k < TT_DW_TAP_CACHE) when it is there. */
static int32_t tt_dw_cached_source(const int32_t *cache, int32_t i, int32_t k, int32_t stride,
                                   int32_t dilation, int32_t pad, int32_t out_size) {
  return k < TT_DW_TAP_CACHE ? cache[k] : tt_dw_source_index(i, k, stride, dilation, pad, out_size);
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
  /* Channel c's sum is r[c] * sum over taps of w * g, exactly the reference's sum of
   * w * (g * r[c]) (integers); |w * g| <= 127 * 128, so up to 2^16 taps sum in int32. */
  if ((int64_t)k_h * k_w > 65536) return TT_ERR_UNSUPPORTED;
  const int8_t *part[2] = {filter->slice, filter->rest};
  const int32_t cols[2] = {split, ch - split}; /* each part's channel count (its row step) */
  tt_pow2_stream st;
  tt_pow2_stream_init(&st, input_grad, scratch);
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t iy = 0; iy < in_h; ++iy) {
      for (int32_t ix = 0; ix < in_w; ++ix) {
        /* The output row / column each tap reads from (-1: none), once per pixel. */
        int32_t oy_of[TT_DW_TAP_CACHE], ox_of[TT_DW_TAP_CACHE];
        for (int32_t k = 0; k < k_h && k < TT_DW_TAP_CACHE; ++k) {
          oy_of[k] = tt_dw_source_index(iy, k, params->stride_h, params->dilation_h,
                                        params->pad_h, out_h);
        }
        for (int32_t k = 0; k < k_w && k < TT_DW_TAP_CACHE; ++k) {
          ox_of[k] = tt_dw_source_index(ix, k, params->stride_w, params->dilation_w,
                                        params->pad_w, out_w);
        }
        const int8_t *g_img = grad + (size_t)b * out_h * out_w * ch;
        for (int32_t i = 0; i < in_c; ++i) {
          int64_t acc = 0;
          for (int32_t c = i * dm; c < (i + 1) * dm; ++c) {
            const int32_t p = c < split ? 0 : 1;
            const int8_t *w = part[p] + (c - (p ? split : 0)); /* channel c at tap 0 */
            const size_t w_step = (size_t)cols[p];
            int32_t sum = 0;
            for (int32_t ky = 0; ky < k_h; ++ky) {
              const int32_t oy = tt_dw_cached_source(oy_of, iy, ky, params->stride_h,
                                                     params->dilation_h, params->pad_h, out_h);
              if (oy < 0) continue;
              for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ox = tt_dw_cached_source(ox_of, ix, kx, params->stride_w,
                                                       params->dilation_w, params->pad_w, out_w);
                if (ox < 0) continue;
                sum += w[((size_t)ky * k_w + kx) * w_step] *
                       g_img[((size_t)oy * out_w + ox) * ch + c];
              }
            }
            acc += (int64_t)sum * quant->r[c];
          }
          tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc, quant->p));
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
    const int32_t ch_count = ic * dm; /* the weight slice; biases cover every channel */
    int32_t *v = weight_velocity;     /* compact slice (ky, kx, c): advances in draw order */
    for (int32_t ky = 0; ky < k_h; ++ky) {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        for (int32_t c = 0; c < ch_count; ++c) {
          const int32_t i = c / dm;
          int64_t acc = 0;
          for (int32_t b = 0; b < batches; ++b) {
            for (int32_t oy = 0; oy < out_h; ++oy) {
              const int32_t iy = oy * params->stride_h - params->pad_h + ky * params->dilation_h;
              if (iy < 0 || iy >= in_h) continue; /* padding tap: omitted, as in forward */
              for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t ix = ox * params->stride_w - params->pad_w + kx * params->dilation_w;
                if (ix < 0 || ix >= in_w) continue;
                const int32_t x =
                    input[(((size_t)b * in_h + iy) * in_w + ix) * ic + i] + params->input_offset;
                acc += (int32_t)grad[(((size_t)b * out_h + oy) * out_w + ox) * ch + c] * x;
              }
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
