/* AVERAGE_POOL_2D / MAX_POOL_2D, int8 (TFLite reference_integer_ops::AveragePool / MaxPool).
 * Numpy twin: tflm_train/kernels/pooling.py (PoolParams, average_pool_2d, max_pool_2d). */
#ifndef TT_POOLING_H
#define TT_POOLING_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t stride_w, stride_h;
  int32_t filter_w, filter_h;
  int32_t pad_w, pad_h; /* leading (left/top) padding */
  tt_activation activation;
} tt_pool_params;

/* input [n,h,w,c] → output [n,oh,ow,c]; taps in the padding are skipped. The average rounds
 * half away from zero and divides by the number of real taps; TT_ERR_SHAPE if a window has
 * none (TFLM fails the same way). No scratch. */
tt_status tt_average_pool_2d(const tt_pool_params *params, const tt_dims *input_dims,
                             const int8_t *input, const tt_dims *output_dims, int8_t *output);
tt_status tt_max_pool_2d(const tt_pool_params *params, const tt_dims *input_dims,
                         const int8_t *input, const tt_dims *output_dims, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif /* TT_POOLING_H */
