/* MEAN, int8 (TFLite reference_ops::QuantizedMeanOrSum, the path TFLM takes for every int8
 * MEAN). Numpy twin: tflm_train/kernels/mean.py (MeanParams, mean, mean_params). */
#ifndef TT_MEAN_H
#define TT_MEAN_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier, shift; /* input_scale / output_scale / count, folded as TFLM does */
  int32_t count;             /* input elements per output element */
} tt_mean_params;

/* Reduces every dim where output_dims is 1 and input_dims is not (the keep_dims layout of the
 * output; dropping size-1 dims does not change the element order). Other dims must match.
 * Sums in int32 as the reference does. No scratch. */
tt_status tt_mean(const tt_mean_params *params, const tt_dims *input_dims, const int8_t *input,
                  const tt_dims *output_dims, int8_t *output);

/* Prepare time: QuantizeMultiplier(input_scale / output_scale) (TFLM's Prepare), then 1/count
 * folded in with an integer division (TFLM's Eval, reference/reduce.h). */
void tt_mean_prepare(float input_scale, int32_t input_zero_point, float output_scale,
                     int32_t output_zero_point, int32_t count, tt_mean_params *params);

#ifdef __cplusplus
}
#endif
#endif /* TT_MEAN_H */
