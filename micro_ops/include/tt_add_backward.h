/* Backward of ADD: the output gradient, masked by the fused activation, passes to both inputs;
 * a broadcast input gets the int32 sum over its broadcast dims, requantized as
 * tt_requantize_pow2 would (streamed, tt_gradient.h). Numpy twin:
 * tflm_train/kernels/add_backward.py. */
#ifndef TT_ADD_BACKWARD_H
#define TT_ADD_BACKWARD_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output elements above this are rejected (127 * 2^24 < 2^31 keeps the sums in int32). */
#define TT_ADD_BACKWARD_MAX_BROADCAST_ELEMENTS (1L << 24)

/* Bytes of scratch: the 2 bits per element of tt_pow2_stream for the larger broadcast input
 * (0 if none). */
int32_t tt_add_backward_scratch_size(const tt_dims *input1_dims, const tt_dims *input2_dims,
                                     const tt_dims *output_dims);

/* output_mask: the output's packed activation mask (tt_mask.h), or NULL for none.
 * input1_grad / input2_grad may be NULL when that gradient is not needed. An input with the
 * output's dims gets the masked gradient and e_g unchanged; its gradient may alias
 * output_grad (the engine may run it in place). TT_ERR_SHAPE if an input dim is neither 1 nor
 * the output's, or a broadcast input's output has more than 2^24 elements. */
tt_status tt_add_backward(const tt_dims *output_dims, const int8_t *output_grad,
                          int32_t output_grad_exponent, const uint8_t *output_mask,
                          const tt_dims *input1_dims, int8_t *input1_grad,
                          int32_t *input1_grad_exponent, const tt_dims *input2_dims,
                          int8_t *input2_grad, int32_t *input2_grad_exponent, int32_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* TT_ADD_BACKWARD_H */
