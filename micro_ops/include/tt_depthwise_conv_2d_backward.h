/* DEPTHWISE_CONV_2D training kernels (docs/training-numerics.md). Numpy twin:
 * tflm_train/kernels/depthwise_conv_2d_backward.py. params is the forward
 * tt_depthwise_conv_2d_params (output_offset and activation unused).
 * Output channel c = i * depth_multiplier + m reads input channel i.
 *
 * Order: call tt_depthwise_conv_2d_backward_input BEFORE tt_depthwise_conv_2d_update (the
 * update writes the weights in place; the input gradient needs the forward weights). */
#ifndef TT_DEPTHWISE_CONV_2D_BACKWARD_H
#define TT_DEPTHWISE_CONV_2D_BACKWARD_H

#include "tt_depthwise_conv_2d.h"
#include "tt_update.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prepare time: r (filter_dims->c entries), s_e, p; fan-out depth_multiplier * kh * kw. */
tt_status tt_depthwise_conv_2d_backward_input_prepare(const float *filter_scale,
                                                      int32_t n_scales,
                                                      const tt_dims *filter_dims,
                                                      int32_t depth_multiplier, int32_t *r,
                                                      int32_t *s_e, int32_t *p);

/* Bytes of scratch needed by tt_depthwise_conv_2d_backward_input: 2 bits per input element
 * (tt_pow2_stream). */
int32_t tt_depthwise_conv_2d_backward_input_scratch_size(const tt_dims *input_dims);

/* grad [n, oh, ow, c], filter [1, kh, kw, c] → input_grad [n, h, w, c / depth_multiplier].
 * input_grad is written while grad and filter are read: it may not overlap them. */
tt_status tt_depthwise_conv_2d_backward_input(const tt_depthwise_conv_2d_params *params,
                                              const tt_backward_input_quant *quant,
                                              const tt_dims *grad_dims, const int8_t *grad,
                                              int32_t grad_exponent, const tt_dims *filter_dims,
                                              const int8_t *filter, const tt_dims *input_dims,
                                              int32_t *scratch, int8_t *input_grad,
                                              int32_t *input_grad_exponent);

/* The same with the filter stored in two parts along its channels (tt_split_filter;
 * filter_dims are the whole filter's): same bits as the joined filter. */
tt_status tt_depthwise_conv_2d_backward_input_split(
    const tt_depthwise_conv_2d_params *params, const tt_backward_input_quant *quant,
    const tt_dims *grad_dims, const int8_t *grad, int32_t grad_exponent,
    const tt_dims *filter_dims, const tt_split_filter *filter, const tt_dims *input_dims,
    int32_t *scratch, int8_t *input_grad, int32_t *input_grad_exponent);

/* Weight and bias gradients fused with the in-place update. input is the saved forward input
 * holding the first ic = input_dims->c input channels (compact); the trainable weight slice is
 * the first ch_count = ic * depth_multiplier channels of filter (row stride filter_dims->c,
 * which may be fewer than grad_dims->c: a split filter passes its slice alone), while a bias
 * update covers every channel (the sparse-update bias set is whole layers).
 * Random draws: weights row-major over the slice (ky, kx, c), then all biases in c order.
 * bias may be NULL when update->update_bias is 0; input (and input_dims) may be NULL when
 * update->update_weights is 0 (the bias gradient needs only grad). No scratch.
 * Momentum (update->momentum_q15 != 0): weight_velocity holds one Q16.16 int32 per element of
 * the compact slice [kh, kw, ch_count] (row-major = draw order), bias_velocity one per bias;
 * both are read and written in place and persist across steps (caller-owned, zero at the
 * start). They may be NULL only when momentum_q15 is 0 (plain SGD, velocity untouched) or
 * the matching update flag is 0; otherwise TT_ERR_ARG and nothing is written. */
tt_status tt_depthwise_conv_2d_update(const tt_depthwise_conv_2d_params *params,
                                      const tt_update_params *update, const tt_dims *input_dims,
                                      const int8_t *input, const tt_dims *grad_dims,
                                      const int8_t *grad, int32_t grad_exponent,
                                      const tt_dims *filter_dims, int8_t *filter, int32_t *bias,
                                      int32_t *weight_velocity, int32_t *bias_velocity,
                                      uint64_t *prng_state);

#ifdef __cplusplus
}
#endif
#endif /* TT_DEPTHWISE_CONV_2D_BACKWARD_H */
