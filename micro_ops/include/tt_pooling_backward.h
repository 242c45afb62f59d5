/* Backward of AVERAGE_POOL_2D / MAX_POOL_2D: int8 output gradient (exponent e_g) -> int8 input
 * gradient and its exponent (docs/training-numerics.md). Windows are clipped to the input as
 * in the forward kernels. params->activation is not read: the caller applies the output's
 * activation mask (tt_apply_activation_mask) to output_grad first.
 * Numpy twin: tflm_train/kernels/pooling_backward.py. */
#ifndef TT_POOLING_BACKWARD_H
#define TT_POOLING_BACKWARD_H

#include "tt_common.h"
#include "tt_pooling.h"

#ifdef __cplusplus
extern "C" {
#endif

/* K of the average-pool reciprocal: 24 - bitlen(ceil(fh/sh) * ceil(fw/sw)). */
int32_t tt_average_pool_recip_bits(const tt_pool_params *params);

/* Bytes of scratch (both kernels): the int32 sums of one input pixel (depth of them), then
 * the 2 bits per input element of tt_pow2_stream. */
int32_t tt_average_pool_2d_backward_scratch_size(const tt_dims *input_dims);
int32_t tt_max_pool_2d_backward_scratch_size(const tt_dims *input_dims);

/* Each output adds g * R to every tap of its clipped window, R = (2^K + count/2) / count
 * (exact for power-of-two counts); the int32 sums (exponent e_g - K, no overflow: at most
 * ceil(fh/sh)*ceil(fw/sw) windows cover an input), gathered pixel by pixel, are requantized as
 * tt_requantize_pow2 would (streamed). TT_ERR_SHAPE if n or c differ or a window lies entirely
 * in the padding. input_grad may not overlap output_grad. */
tt_status tt_average_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                      const int8_t *output_grad, int32_t output_grad_exponent,
                                      const tt_dims *input_dims, int8_t *input_grad,
                                      int32_t *input_grad_exponent, int32_t *scratch);

/* Each output's gradient goes to the first maximum (row-major) of its clipped window in the
 * saved int8 input; overlapping windows add in int32; requantized as tt_requantize_pow2 would
 * from exponent e_g (streamed). input_grad may not overlap output_grad or input. */
tt_status tt_max_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                  const int8_t *output_grad, int32_t output_grad_exponent,
                                  const tt_dims *input_dims, const int8_t *input,
                                  int8_t *input_grad, int32_t *input_grad_exponent,
                                  int32_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* TT_POOLING_BACKWARD_H */
