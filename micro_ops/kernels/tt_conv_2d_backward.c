/* CONV_2D training kernels: input gradient (gather form, int64 sums streamed to int8 through
 * tt_pow2_stream), and weight/bias gradients fused with the in-place stochastic-rounding update. */
#include "tt_conv_2d_backward.h"

#include "tt_gradient.h"
#include "tt_window.h"

tt_status tt_conv_2d_backward_input_prepare(const float *filter_scale, int32_t n_scales,
                                            const tt_dims *filter_dims, int32_t *r,
                                            int32_t *s_e, int32_t *p) {
  if (!filter_dims) return TT_ERR_ARG;
  return tt_backward_input_prepare(filter_scale, n_scales, filter_dims->n,
                                   filter_dims->n * filter_dims->h * filter_dims->w, r, s_e, p);
}

int32_t tt_conv_2d_backward_input_scratch_size(const tt_dims *input_dims) {
  return tt_pow2_stream_scratch_size(input_dims->n * input_dims->h * input_dims->w *
                                     input_dims->c);
}

typedef struct {
  const tt_conv_2d_params *params;
  const int32_t *r; /* per output channel */
  int32_t k_h, k_w, out_h, out_w, out_c;
} tt_conv_input_grad_taps;

/* acc[k] = sum over the taps reaching input pixel (iy, ix) and over output channels c of
 * w[c][tap][column k] * (g[c] * r[c]), for column 0 and (if `two`) column 1 of one filter part
 * of row length `depth`. h = g * r < 2^22 and w * h < 2^29, summed in int64. */
static void tt_conv_input_grad_columns(const tt_conv_input_grad_taps *t, int32_t iy, int32_t ix,
                                       const int8_t *grad, const int8_t *column, int32_t depth,
                                       int32_t two, int64_t acc[2]) {
  const tt_conv_2d_params *p = t->params;
  const size_t w_stride = (size_t)t->k_h * t->k_w * depth; /* between output channels */
  int64_t a0 = 0, a1 = 0;
  for (int32_t ky = 0; ky < t->k_h; ++ky) {
    const int32_t oy = tt_window_source(iy, ky, p->stride_h, p->dilation_h, p->pad_h, t->out_h);
    if (oy < 0) continue;
    for (int32_t kx = 0; kx < t->k_w; ++kx) {
      const int32_t ox = tt_window_source(ix, kx, p->stride_w, p->dilation_w, p->pad_w, t->out_w);
      if (ox < 0) continue;
      const int8_t *g = grad + ((size_t)oy * t->out_w + ox) * t->out_c;
      const int8_t *w = column + ((size_t)ky * t->k_w + kx) * depth;
      if (two) {
        for (int32_t c = 0; c < t->out_c; ++c, w += w_stride) {
          const int32_t h = (int32_t)g[c] * t->r[c];
          a0 += (int64_t)w[0] * h;
          a1 += (int64_t)w[1] * h;
        }
      } else {
        for (int32_t c = 0; c < t->out_c; ++c, w += w_stride) {
          a0 += (int64_t)w[0] * ((int32_t)g[c] * t->r[c]);
        }
      }
    }
  }
  acc[0] = a0;
  acc[1] = a1;
}

tt_status tt_conv_2d_backward_input(const tt_conv_2d_params *params,
                                    const tt_backward_input_quant *quant, const tt_dims *grad_dims,
                                    const int8_t *grad, int32_t grad_exponent,
                                    const tt_dims *filter_dims, const int8_t *filter,
                                    const tt_dims *input_dims, int32_t *scratch,
                                    int8_t *input_grad, int32_t *input_grad_exponent) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_conv_2d_backward_input_split(params, quant, grad_dims, grad, grad_exponent,
                                         filter_dims, &whole, input_dims, scratch, input_grad,
                                         input_grad_exponent);
}

tt_status tt_conv_2d_backward_input_split(const tt_conv_2d_params *params,
                                          const tt_backward_input_quant *quant,
                                          const tt_dims *grad_dims, const int8_t *grad,
                                          int32_t grad_exponent, const tt_dims *filter_dims,
                                          const tt_split_filter *filter,
                                          const tt_dims *input_dims, int32_t *scratch,
                                          int8_t *input_grad, int32_t *input_grad_exponent) {
  if (!params || !quant || !quant->r || !grad_dims || !grad || !filter_dims || !filter ||
      !filter->slice || !input_dims || !scratch || !input_grad || !input_grad_exponent) {
    return TT_ERR_ARG;
  }
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
  const int32_t out_h = grad_dims->h, out_w = grad_dims->w, out_c = grad_dims->c;
  if (filter_dims->c != in_c) return TT_ERR_UNSUPPORTED; /* grouped conv */
  if (filter_dims->n != out_c || grad_dims->n != input_dims->n) return TT_ERR_SHAPE;
  const int32_t split = filter->split;
  if (split < 1 || split > in_c || (split < in_c && !filter->rest)) return TT_ERR_ARG;
  if (params->stride_h < 1 || params->stride_w < 1) return TT_ERR_ARG;

  const tt_conv_input_grad_taps t = {params, quant->r, k_h, k_w, out_h, out_w, out_c};
  tt_pow2_stream st;
  tt_pow2_stream_init(&st, input_grad, scratch);
  for (int32_t b = 0; b < input_dims->n; ++b) {
    for (int32_t iy = 0; iy < in_h; ++iy) {
      for (int32_t ix = 0; ix < in_w; ++ix) {
        /* Input channels [0, split) have their filter columns in the slice, [split, in_c) in
         * the rest: one loop per part keeps its strides out of the per-channel work. */
        for (int32_t p = 0; p < 2; ++p) {
          const int32_t i_lo = p == 0 ? 0 : split, i_hi = p == 0 ? split : in_c;
          const int32_t depth = i_hi - i_lo; /* the part's own last dimension */
          const int8_t *part = p == 0 ? filter->slice : filter->rest;
          /* Input channels two at a time (each h = g * r feeds both), then the odd one. */
          for (int32_t i = i_lo; i < i_hi; i += 2) {
            const int32_t pair = i + 1 < i_hi;
            int64_t acc[2];
            tt_conv_input_grad_columns(&t, iy, ix, grad + (size_t)b * out_h * out_w * out_c,
                                       part + (i - i_lo), depth, pair, acc);
            tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc[0], quant->p));
            if (pair) {
              tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc[1], quant->p));
            }
          }
        }
      }
    }
  }
  tt_pow2_stream_finish(&st, grad_exponent + quant->s_e - 15 + quant->p, input_grad_exponent);
  return TT_OK;
}

tt_status tt_conv_2d_update(const tt_conv_2d_params *params, const tt_update_params *update,
                            const tt_dims *input_dims, const int8_t *input,
                            const tt_dims *grad_dims, const int8_t *grad, int32_t grad_exponent,
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
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
  const int32_t out_h = grad_dims->h, out_w = grad_dims->w, out_c = grad_dims->c;
  const int32_t batches = grad_dims->n;
  if (filter_dims->n != out_c) return TT_ERR_SHAPE;
  if (input && (input_dims->c > f_c || input_dims->n != batches)) return TT_ERR_SHAPE;

  if (update->update_weights) {
    const int32_t in_h = input_dims->h, in_w = input_dims->w, ic = input_dims->c;
    if (out_w > 65536) return TT_ERR_UNSUPPORTED; /* a row's int32 sum could overflow */
    int32_t *v = weight_velocity; /* compact slice (c, ky, kx, i): advances in draw order */
    for (int32_t c = 0; c < out_c; ++c) {
      int32_t m, s;
      tt_update_multiplier(update->weight_factor.multiplier[c],
                           tt_factor_shift(&update->weight_factor, c), update->lr.multiplier,
                           update->lr.shift, &m, &s);
      for (int32_t ky = 0; ky < k_h; ++ky) {
        for (int32_t kx = 0; kx < k_w; ++kx) {
          /* Output pixels whose tap (ky, kx) lands inside the input: padding taps are
           * omitted, as in forward. */
          int32_t oy0, oy1, ox0, ox1;
          tt_window_range(ky * params->dilation_h - params->pad_h, params->stride_h, out_h,
                          in_h, &oy0, &oy1);
          tt_window_range(kx * params->dilation_w - params->pad_w, params->stride_w, out_w,
                          in_w, &ox0, &ox1);
          const size_t x_step = (size_t)params->stride_w * ic;
          for (int32_t i = 0; i < ic; ++i) {
            int64_t acc = 0;
            for (int32_t b = 0; b < batches && ox0 < ox1; ++b) {
              for (int32_t oy = oy0; oy < oy1; ++oy) {
                const int32_t iy = oy * params->stride_h - params->pad_h + ky * params->dilation_h;
                const int32_t ix0 =
                    ox0 * params->stride_w - params->pad_w + kx * params->dilation_w;
                const int8_t *g = grad + (((size_t)b * out_h + oy) * out_w + ox0) * out_c + c;
                const int8_t *x = input + (((size_t)b * in_h + iy) * in_w + ix0) * ic + i;
                acc += tt_weight_grad_row(g, (size_t)out_c, x, x_step, ox1 - ox0,
                                          params->input_offset);
              }
            }
            int8_t *w = &filter[(((size_t)c * k_h + ky) * k_w + kx) * f_c + i];
            *w = tt_apply_weight_delta(
                *w, tt_sgd_momentum_delta(acc, grad_exponent, m, s, mu, mu ? v++ : NULL,
                                          prng_state));
          }
        }
      }
    }
  }
  if (update->update_bias) {
    tt_update_bias(update, grad, (size_t)batches * out_h * out_w, out_c, grad_exponent, bias,
                   bias_velocity, prng_state);
  }
  return TT_OK;
}
