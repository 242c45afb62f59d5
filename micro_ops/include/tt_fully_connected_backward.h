/* FULLY_CONNECTED training kernels (docs/training-numerics.md). Numpy twin:
 * tflm_train/kernels/fully_connected_backward.py. params is the forward
 * tt_fully_connected_params (only input_offset is used; per-tensor quantization is expanded to
 * per-unit constants by the prepare helpers).
 *
 * Order: call tt_fully_connected_backward_input BEFORE tt_fully_connected_update (the update
 * writes the weights in place; the input gradient needs the forward weights). */
#ifndef TT_FULLY_CONNECTED_BACKWARD_H
#define TT_FULLY_CONNECTED_BACKWARD_H

#include "tt_fully_connected.h"
#include "tt_update.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prepare time: r (filter_dims->n entries), s_e, p; fan-out = units. */
tt_status tt_fully_connected_backward_input_prepare(const float *filter_scale, int32_t n_scales,
                                                    const tt_dims *filter_dims, int32_t *r,
                                                    int32_t *s_e, int32_t *p);

/* Bytes of scratch needed by tt_fully_connected_backward_input: 2 bits per input element
 * (tt_pow2_stream). */
int32_t tt_fully_connected_backward_input_scratch_size(const tt_dims *input_dims);

/* grad_dims: n = batches, c = units; filter_dims: n = units, c = depth; input_dims: n =
 * batches, c = depth → input_grad [batches, depth] and its exponent. input_grad is written
 * while grad and filter are read: it may not overlap them. */
tt_status tt_fully_connected_backward_input(const tt_fully_connected_params *params,
                                            const tt_backward_input_quant *quant,
                                            const tt_dims *grad_dims, const int8_t *grad,
                                            int32_t grad_exponent, const tt_dims *filter_dims,
                                            const int8_t *filter, const tt_dims *input_dims,
                                            int32_t *scratch, int8_t *input_grad,
                                            int32_t *input_grad_exponent);

/* The same with the filter stored in two parts along its depth (tt_split_filter; filter_dims
 * are the whole filter's): same bits as the joined filter. */
tt_status tt_fully_connected_backward_input_split(
    const tt_fully_connected_params *params, const tt_backward_input_quant *quant,
    const tt_dims *grad_dims, const int8_t *grad, int32_t grad_exponent,
    const tt_dims *filter_dims, const tt_split_filter *filter, const tt_dims *input_dims,
    int32_t *scratch, int8_t *input_grad, int32_t *input_grad_exponent);

/* Weight and bias gradients fused with the in-place update. input [batches, ic] is the saved
 * input holding the first ic = input_dims->c <= filter_dims->c features (compact); the
 * trainable slice is filter[:, :ic] (row stride filter_dims->c; a split filter passes its
 * slice alone), plus all biases. Random
 * draws: weights row-major (c, i), then biases in c order. bias may be NULL when
 * update->update_bias is 0; input (and input_dims) may be NULL when update->update_weights is
 * 0 (the bias gradient needs only grad). No scratch.
 * Momentum (update->momentum_q15 != 0): weight_velocity holds one Q16.16 int32 per element of
 * the compact slice [units, ic] (row-major = draw order), bias_velocity one per bias;
 * both are read and written in place and persist across steps (caller-owned, zero at the
 * start). They may be NULL only when momentum_q15 is 0 (plain SGD, velocity untouched) or
 * the matching update flag is 0; otherwise TT_ERR_ARG and nothing is written. */
tt_status tt_fully_connected_update(const tt_fully_connected_params *params,
                                    const tt_update_params *update, const tt_dims *input_dims,
                                    const int8_t *input, const tt_dims *grad_dims,
                                    const int8_t *grad, int32_t grad_exponent,
                                    const tt_dims *filter_dims, int8_t *filter, int32_t *bias,
                                    int32_t *weight_velocity, int32_t *bias_velocity,
                                    uint64_t *prng_state);

#ifdef __cplusplus
}
#endif
#endif /* TT_FULLY_CONNECTED_BACKWARD_H */
