/* Backward of PAD / PADV2: the input gradient is the output gradient without the padding; the
 * exponent is unchanged. Numpy twin: tflm_train/kernels/pad_backward.py. */
#ifndef TT_PAD_BACKWARD_H
#define TT_PAD_BACKWARD_H

#include "tt_common.h"
#include "tt_pad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* output_dims must equal input_dims + before + after (TT_ERR_SHAPE otherwise). No scratch;
 * input_grad may not overlap output_grad. */
tt_status tt_pad_backward(const tt_pad_params *params, const tt_dims *output_dims,
                          const int8_t *output_grad, const tt_dims *input_dims,
                          int8_t *input_grad);

#ifdef __cplusplus
}
#endif
#endif /* TT_PAD_BACKWARD_H */
