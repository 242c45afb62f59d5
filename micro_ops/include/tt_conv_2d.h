/* CONV_2D, int8 (TFLite reference_integer_ops::ConvPerChannel arithmetic).
 * Numpy twin: tflm_train/kernels/conv_2d.py (Conv2DParams, conv_2d, conv_2d_multiplier). */
#ifndef TT_CONV_2D_H
#define TT_CONV_2D_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input_offset;  /* -input zero point */
  int32_t output_offset; /* output zero point */
  int32_t stride_w, stride_h;
  int32_t dilation_w, dilation_h;
  int32_t pad_w, pad_h; /* leading (left/top) padding */
  tt_activation activation;
} tt_conv_2d_params;

/* input [n,h,w,c_in], filter [c_out, kh, kw, c_in/groups] (groups = c_in / filter c),
 * bias [c_out] or NULL, output [n, oh, ow, c_out]; quant has c_out entries.
 * Taps outside the input are omitted (zero padding in real units). No scratch. */
tt_status tt_conv_2d(const tt_conv_2d_params *params, const tt_per_channel_quant *quant,
                     const tt_dims *input_dims, const int8_t *input, const tt_dims *filter_dims,
                     const int8_t *filter, const int32_t *bias, const tt_dims *output_dims,
                     int8_t *output);

/* tt_conv_2d with the filter stored in two parts along its depth (tt_split_filter;
 * filter_dims are the whole filter's): the same bits as tt_conv_2d on the joined filter.
 * Within each group, filter channels [0, split) read the group's first `split` input
 * channels from filter->slice, the rest from filter->rest. No scratch. */
tt_status tt_conv_2d_split(const tt_conv_2d_params *params, const tt_per_channel_quant *quant,
                           const tt_dims *input_dims, const int8_t *input,
                           const tt_dims *filter_dims, const tt_split_filter *filter,
                           const int32_t *bias, const tt_dims *output_dims, int8_t *output);

/* Prepare time: requantization constant of one output channel, as TFLite's
 * PopulateConvolutionQuantizationParams (scales widened to double, then multiplied). */
void tt_conv_2d_multiplier(float input_scale, float filter_scale, float output_scale,
                           int32_t *multiplier, int32_t *shift);

#ifdef __cplusplus
}
#endif
#endif /* TT_CONV_2D_H */
