/* DEPTHWISE_CONV_2D, int8 (TFLite reference_integer_ops::DepthwiseConvPerChannel arithmetic).
 * Numpy twin: tflm_train/kernels/depthwise_conv_2d.py. */
#ifndef TT_DEPTHWISE_CONV_2D_H
#define TT_DEPTHWISE_CONV_2D_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input_offset;  /* -input zero point */
  int32_t output_offset; /* output zero point */
  int32_t stride_w, stride_h;
  int32_t dilation_w, dilation_h;
  int32_t pad_w, pad_h;
  int32_t depth_multiplier;
  tt_activation activation;
} tt_depthwise_conv_2d_params;

/* input [n,h,w,c_in], filter [1, kh, kw, c_in * depth_multiplier], bias [c_out] or NULL,
 * output [n, oh, ow, c_out]. Output channel ic * depth_multiplier + m reads input channel ic.
 * No scratch. */
tt_status tt_depthwise_conv_2d(const tt_depthwise_conv_2d_params *params,
                               const tt_per_channel_quant *quant, const tt_dims *input_dims,
                               const int8_t *input, const tt_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const tt_dims *output_dims, int8_t *output);

/* tt_depthwise_conv_2d with the filter stored in two parts along its channels
 * (tt_split_filter; filter_dims are the whole filter's): output channels [0, split) read
 * filter->slice [1, kh, kw, split], the rest filter->rest. Same bits as the joined filter. */
tt_status tt_depthwise_conv_2d_split(const tt_depthwise_conv_2d_params *params,
                                     const tt_per_channel_quant *quant,
                                     const tt_dims *input_dims, const int8_t *input,
                                     const tt_dims *filter_dims, const tt_split_filter *filter,
                                     const int32_t *bias, const tt_dims *output_dims,
                                     int8_t *output);

/* Prepare time: same per-channel constant as tt_conv_2d_multiplier. */
void tt_depthwise_conv_2d_multiplier(float input_scale, float filter_scale, float output_scale,
                                     int32_t *multiplier, int32_t *shift);

#ifdef __cplusplus
}
#endif
#endif /* TT_DEPTHWISE_CONV_2D_H */
