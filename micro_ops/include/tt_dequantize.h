/* DEQUANTIZE: int8 → float32 (TFLite reference_ops::Dequantize; float at the model edge).
 * Numpy twin: tflm_train/kernels/dequantize.py. */
#ifndef TT_DEQUANTIZE_H
#define TT_DEQUANTIZE_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float scale; /* input scale */
  int32_t zero_point;
} tt_dequantize_params;

/* float(double(scale) * (q - zero_point)): the product in double, as the reference. */
void tt_dequantize(const tt_dequantize_params *params, const int8_t *input, float *output,
                   size_t size);

#ifdef __cplusplus
}
#endif
#endif /* TT_DEQUANTIZE_H */
