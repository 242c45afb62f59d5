/* ADD, int8 (TFLite reference_integer_ops::Add / BroadcastAdd arithmetic).
 * Numpy twin: tflm_train/kernels/add.py (AddParams, add, add_params). */
#ifndef TT_ADD_H
#define TT_ADD_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input1_offset; /* -input1 zero point */
  int32_t input2_offset; /* -input2 zero point */
  int32_t output_offset; /* output zero point */
  int32_t left_shift;    /* 20 for int8: headroom before the rescale */
  int32_t input1_multiplier, input1_shift; /* shifts <= 0 */
  int32_t input2_multiplier, input2_shift;
  int32_t output_multiplier, output_shift;
  tt_activation activation;
} tt_add_params;

/* output = input1 + input2 with broadcasting: a dim of size 1 in an input stretches to the
 * output's (TFLM's 4-D slow broadcast; rank < 4 shapes are padded with leading 1s).
 * TT_ERR_SHAPE if an input dim is neither 1 nor the output's. No scratch. */
tt_status tt_add(const tt_add_params *params, const tt_dims *input1_dims, const int8_t *input1,
                 const tt_dims *input2_dims, const int8_t *input2, const tt_dims *output_dims,
                 int8_t *output);

/* Prepare time: TFLM's CalculateOpDataAdd for int8 (left shift 20, multipliers relative to
 * twice the larger input scale). TT_ERR_UNSUPPORTED where TFLM would abort (a multiplier
 * not in (0, 1)). params->activation is left to the caller. */
tt_status tt_add_prepare(float input1_scale, int32_t input1_zero_point, float input2_scale,
                         int32_t input2_zero_point, float output_scale,
                         int32_t output_zero_point, tt_add_params *params);

#ifdef __cplusplus
}
#endif
#endif /* TT_ADD_H */
