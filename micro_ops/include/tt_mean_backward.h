/* Backward of MEAN: each input element gets its output's gradient / count.
 * Numpy twin: tflm_train/kernels/mean_backward.py. */
#ifndef TT_MEAN_BACKWARD_H
#define TT_MEAN_BACKWARD_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reduced dims: those where output_dims is 1 and input_dims is not (as tt_mean). The result
 * is requantize_pow2(g * R, e_g - 23) with R = (2^23 + count/2) / count, computed per output
 * element and broadcast (same shift as over the whole input). TT_ERR_SHAPE if an output dim
 * is neither 1 nor the input's. No scratch. */
tt_status tt_mean_backward(const tt_dims *output_dims, const int8_t *output_grad,
                           int32_t output_grad_exponent, const tt_dims *input_dims,
                           int8_t *input_grad, int32_t *input_grad_exponent);

#ifdef __cplusplus
}
#endif
#endif /* TT_MEAN_BACKWARD_H */
