/* QUANTIZE: float32 → int8 (TFLite reference_ops::AffineQuantize; float at the model edge)
 * and int8 → int8 (reference_ops::Requantize, integer only).
 * Numpy twin: tflm_train/kernels/quantize.py. */
#ifndef TT_QUANTIZE_H
#define TT_QUANTIZE_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float scale; /* output scale */
  int32_t zero_point;
} tt_quantize_params;

typedef struct {
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier, shift; /* input_scale / output_scale */
} tt_requantize_params;

/* round(x / scale) + zero_point, saturated to int8 (round half away from zero, float32
 * division as the reference). */
void tt_quantize(const tt_quantize_params *params, const float *input, int8_t *output,
                 size_t size);
void tt_requantize(const tt_requantize_params *params, const int8_t *input, int8_t *output,
                   size_t size);

/* Prepare time: QuantizeMultiplier(double(input_scale) / double(output_scale)). */
void tt_requantize_prepare(float input_scale, int32_t input_zero_point, float output_scale,
                           int32_t output_zero_point, tt_requantize_params *params);

#ifdef __cplusplus
}
#endif
#endif /* TT_QUANTIZE_H */
