/* SOFTMAX, int8 → int8 (TFLite reference_ops::Softmax quantized: gemmlowp fixed point,
 * differences in Q5.26, exp in Q0.31, sum in Q12.19). Output scale 1/256, zero point -128.
 * Numpy twin: tflm_train/kernels/softmax.py (SoftmaxParams, softmax, softmax_params). */
#ifndef TT_SOFTMAX_H
#define TT_SOFTMAX_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input_multiplier;
  int32_t input_left_shift;
  int32_t diff_min; /* differences to the row max below this give exactly -128 */
} tt_softmax_params;

/* outer_size rows of depth values each, softmax over every row. No scratch. */
tt_status tt_softmax(const tt_softmax_params *params, int32_t outer_size, int32_t depth,
                     const int8_t *input, int8_t *output);

/* Prepare time: TFLM's PreprocessSoftmaxScaling (kScaledDiffIntegerBits 5) and
 * CalculateInputRadius. TT_ERR_UNSUPPORTED if beta * input_scale * 2^26 <= 1. */
tt_status tt_softmax_prepare(float beta, float input_scale, tt_softmax_params *params);

#ifdef __cplusplus
}
#endif
#endif /* TT_SOFTMAX_H */
