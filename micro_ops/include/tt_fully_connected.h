/* FULLY_CONNECTED, int8 (TFLite reference_integer_ops::FullyConnected / FullyConnectedPerChannel
 * arithmetic). Numpy twin: tflm_train/kernels/fully_connected.py. */
#ifndef TT_FULLY_CONNECTED_H
#define TT_FULLY_CONNECTED_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t input_offset;  /* -input zero point */
  int32_t output_offset; /* output zero point */
  int32_t per_channel;   /* 0: quant[0] applies to every output channel */
  tt_activation activation;
} tt_fully_connected_params;

/* input_dims: n = batches, c = accumulation depth (h = w = 1); filter_dims: n = units,
 * c = accumulation depth; output_dims: n = batches, c = units. bias [units] or NULL.
 * quant has units entries (per_channel) or 1. No scratch. */
tt_status tt_fully_connected(const tt_fully_connected_params *params,
                             const tt_per_channel_quant *quant, const tt_dims *input_dims,
                             const int8_t *input, const tt_dims *filter_dims,
                             const int8_t *filter, const int32_t *bias,
                             const tt_dims *output_dims, int8_t *output);

/* tt_fully_connected with the filter stored in two parts along its depth (tt_split_filter;
 * filter_dims are the whole filter's): depth [0, split) from filter->slice [units, split],
 * the rest from filter->rest. Same bits as the joined filter. */
tt_status tt_fully_connected_split(const tt_fully_connected_params *params,
                                   const tt_per_channel_quant *quant, const tt_dims *input_dims,
                                   const int8_t *input, const tt_dims *filter_dims,
                                   const tt_split_filter *filter, const int32_t *bias,
                                   const tt_dims *output_dims, int8_t *output);

/* Prepare time: requantization constant of one output channel (per channel) or of the op
 * (per tensor), double(s_in) * double(s_w) / double(s_out) in both cases. (TFLM's
 * kernel_util.cc reads as a float32 product for the per-tensor case, but the pinned
 * tflite-micro interpreter, the bit-exactness reference, multiplies in double.) */
void tt_fully_connected_multiplier(float input_scale, float filter_scale, float output_scale,
                                   int32_t *multiplier, int32_t *shift);

#ifdef __cplusplus
}
#endif
#endif /* TT_FULLY_CONNECTED_H */
