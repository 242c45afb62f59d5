/* Backward of RESHAPE: the gradient bytes are unchanged, exponent included (the engine may
 * alias input_grad to output_grad and skip the call). Numpy twin:
 * tflm_train/kernels/reshape_backward.py. */
#ifndef TT_RESHAPE_BACKWARD_H
#define TT_RESHAPE_BACKWARD_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copies n gradient elements unless input_grad already is output_grad. */
void tt_reshape_backward(const int8_t *output_grad, int8_t *input_grad, int32_t n);

#ifdef __cplusplus
}
#endif
#endif /* TT_RESHAPE_BACKWARD_H */
