/* FULLY_CONNECTED training kernels: input gradient and weight/bias gradients fused with the
 * in-place stochastic-rounding update. */
#include "tt_fully_connected_backward.h"

#include "tt_gradient.h"

tt_status tt_fully_connected_backward_input_prepare(const float *filter_scale, int32_t n_scales,
                                                    const tt_dims *filter_dims, int32_t *r,
                                                    int32_t *s_e, int32_t *p) {
  if (!filter_dims) return TT_ERR_ARG;
  return tt_backward_input_prepare(filter_scale, n_scales, filter_dims->n, filter_dims->n, r,
                                   s_e, p);
}

int32_t tt_fully_connected_backward_input_scratch_size(const tt_dims *input_dims) {
  return tt_pow2_stream_scratch_size(input_dims->n * input_dims->c);
}

tt_status tt_fully_connected_backward_input(const tt_fully_connected_params *params,
                                            const tt_backward_input_quant *quant,
                                            const tt_dims *grad_dims, const int8_t *grad,
                                            int32_t grad_exponent, const tt_dims *filter_dims,
                                            const int8_t *filter, const tt_dims *input_dims,
                                            int32_t *scratch, int8_t *input_grad,
                                            int32_t *input_grad_exponent) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_fully_connected_backward_input_split(params, quant, grad_dims, grad, grad_exponent,
                                                 filter_dims, &whole, input_dims, scratch,
                                                 input_grad, input_grad_exponent);
}

tt_status tt_fully_connected_backward_input_split(
    const tt_fully_connected_params *params, const tt_backward_input_quant *quant,
    const tt_dims *grad_dims, const int8_t *grad, int32_t grad_exponent,
    const tt_dims *filter_dims, const tt_split_filter *filter, const tt_dims *input_dims,
    int32_t *scratch, int8_t *input_grad, int32_t *input_grad_exponent) {
  if (!params || !quant || !quant->r || !grad_dims || !grad || !filter_dims || !filter ||
      !filter->slice || !input_dims || !scratch || !input_grad || !input_grad_exponent) {
    return TT_ERR_ARG;
  }
  const int32_t batches = input_dims->n, depth = filter_dims->c, units = filter_dims->n;
  if (input_dims->c != depth || grad_dims->c != units || grad_dims->n != batches) {
    return TT_ERR_SHAPE;
  }
  const int32_t split = filter->split;
  if (split < 1 || split > depth || (split < depth && !filter->rest)) return TT_ERR_ARG;
  tt_pow2_stream st;
  tt_pow2_stream_init(&st, input_grad, scratch);
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t *g = grad + (size_t)b * units;
    for (int32_t j = 0; j < depth; ++j) {
      /* column j of the filter: in the slice or in the rest */
      const int32_t stride = j < split ? split : depth - split;
      const int8_t *column = j < split ? filter->slice + j : filter->rest + (j - split);
      int64_t acc = 0;
      for (int32_t c = 0; c < units; ++c) {
        acc += (int64_t)column[(size_t)c * stride] * ((int32_t)g[c] * quant->r[c]);
      }
      tt_pow2_stream_push(&st, (int32_t)tt_rounding_divide_by_pot64(acc, quant->p));
    }
  }
  tt_pow2_stream_finish(&st, grad_exponent + quant->s_e - 15 + quant->p, input_grad_exponent);
  return TT_OK;
}

tt_status tt_fully_connected_update(const tt_fully_connected_params *params,
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
  const int32_t batches = grad_dims->n, units = grad_dims->c, depth = filter_dims->c;
  if (filter_dims->n != units) return TT_ERR_SHAPE;
  if (input && (input_dims->c > depth || input_dims->n != batches)) return TT_ERR_SHAPE;

  if (update->update_weights) {
    const int32_t ic = input_dims->c;
    int32_t *v = weight_velocity; /* compact slice (c, i): advances in draw order */
    for (int32_t c = 0; c < units; ++c) {
      int32_t m, s;
      tt_update_multiplier(update->weight_factor.multiplier[c],
                           tt_factor_shift(&update->weight_factor, c), update->lr.multiplier,
                           update->lr.shift, &m, &s);
      for (int32_t j = 0; j < ic; ++j) {
        int64_t acc = 0;
        for (int32_t b = 0; b < batches; ++b) {
          acc += (int32_t)grad[(size_t)b * units + c] *
                 ((int32_t)input[(size_t)b * ic + j] + params->input_offset);
        }
        int8_t *w = &filter[(size_t)c * depth + j];
        *w = tt_apply_weight_delta(
            *w, tt_sgd_momentum_delta(acc, grad_exponent, m, s, mu, mu ? v++ : NULL,
                                      prng_state));
      }
    }
  }
  if (update->update_bias) {
    tt_update_bias(update, grad, (size_t)batches, units, grad_exponent, bias, bias_velocity,
                   prng_state);
  }
  return TT_OK;
}
