/* Prepare-time checks shared by the MAC ops' glue (conv, depthwise conv, fully connected):
 * the part of TFLM's conv_common.cc / fully_connected_common.cc / kernel_util.cc they share.
 * Python twin: tflm_train/ops/_mac.py. Each function reports its own error via tt_op_fail. */
#ifndef TT_OP_MAC_COMMON_H
#define TT_OP_MAC_COMMON_H

#include "tt_conv_2d.h"
#include "tt_op.h"

/* 2 or 3 inputs (bias optional, may be -1), 1 output; int8 input/output quantized per tensor. */
tt_status tt_mac_get_tensors(tt_op_ctx *ctx, tt_tensor **input, tt_tensor **filter,
                             tt_tensor **bias, tt_tensor **output);

/* The split-filter ops (TT_CONV_2D & co, docs/train-format.md): input, filter slice, filter rest,
 * bias (opt) and 1 output; int8 input/output quantized per tensor. */
tt_status tt_mac_get_split_tensors(tt_op_ctx *ctx, tt_tensor **input, tt_tensor **slice,
                                   tt_tensor **rest, tt_tensor **bias, tt_tensor **output);

/* NONE, RELU, RELU_N1_TO_1, RELU6 → output clamp range. */
tt_status tt_mac_activation(tt_op_ctx *ctx, int32_t act, const tt_tensor *output,
                            tt_activation *range);

/* int8 filter, symmetric, one scale or one per output channel along quantized_dimension. */
tt_status tt_mac_check_filter(tt_op_ctx *ctx, const tt_tensor *filter, int32_t channels,
                              int32_t *per_channel);

/* A filter stored as two tensors split along the last axis (slice, rest): same rank, equal
 * leading dims, each a valid filter (tt_mac_check_filter) quantized alike. When the split axis
 * is the quantized one (depthwise per channel), the output channels' scales are the slice's
 * then the rest's; otherwise both parts carry the same scales. */
tt_status tt_mac_check_split_filter(tt_op_ctx *ctx, const tt_tensor *slice,
                                    const tt_tensor *rest, int32_t channels,
                                    int32_t *per_channel);

/* Scale of output channel c (per_channel) or of the filter (slice alone when rest is NULL). */
float tt_mac_filter_scale(const tt_tensor *slice, const tt_tensor *rest, int32_t c,
                          int32_t per_channel);

/* int32 bias with one entry per output channel, or absent. */
tt_status tt_mac_check_bias(tt_op_ctx *ctx, const tt_tensor *bias, int32_t channels);

/* Spatial options of Conv2DOptions / DepthwiseConv2DOptions. */
typedef struct {
  int32_t padding, stride_w, stride_h, dilation_w, dilation_h, activation;
} tt_mac_window;

/* Reads the window options: padding is field 0 and the strides fields 1-2 in both schema
 * tables; the activation and dilation fields sit at different indices. */
tt_mac_window tt_mac_window_options(tt_op_ctx *ctx, int32_t activation_opt,
                                    int32_t dilation_w_opt, int32_t dilation_h_opt);

/* Validates the window options and the rank-4 shapes, and computes the leading padding.
 * Checks that output is [n, out_h, out_w, out_channels]. */
tt_status tt_mac_window_geometry(tt_op_ctx *ctx, const tt_mac_window *win, const tt_tensor *input,
                                 const tt_tensor *filter, const tt_tensor *output,
                                 int32_t out_channels, int32_t *pad_w, int32_t *pad_h);

/* Input/output scales finite and positive, filter scales (num_quant of them) finite and
 * non-negative: anything else has no meaningful requantization (and NaN is UB to convert). */
tt_status tt_mac_check_scales(tt_op_ctx *ctx, const tt_tensor *input, const tt_tensor *filter,
                              const tt_tensor *output);

/* tt_mac_check_filter, tt_mac_check_scales, tt_mac_check_bias, in that order. */
tt_status tt_mac_check_weights(tt_op_ctx *ctx, const tt_tensor *input, const tt_tensor *filter,
                               const tt_tensor *bias, const tt_tensor *output, int32_t channels,
                               int32_t *per_channel);

/* Shifts TFLite's MultiplyByQuantizedMultiplier can apply: -31..30 (a larger left shift
 * would overflow; only a malformed scale gets there). */
tt_status tt_mac_check_shifts(tt_op_ctx *ctx, const int32_t *shift, int32_t n);

/* A prepare-time multiplier helper (tt_conv_2d_multiplier and its twins). */
typedef void (*tt_mac_multiplier_fn)(float input_scale, float filter_scale, float output_scale,
                                     int32_t *multiplier, int32_t *shift);

/* Persistent data of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: only what eval cannot
 * recompute in integer arithmetic. Offsets, strides, padding and dims are re-read from the
 * options and tensors in eval (tt_mac_conv_params); the clamp range and the requantization
 * constants come from float scales. */
typedef struct {
  tt_activation activation;
  int32_t quant[]; /* without a tt_requant entry: the n multipliers, then the n shifts */
} tt_mac_op_data;

/* prepare: the op's `n` requantization constants (filter scale c if per_channel, else 0),
 * their shifts checked (tt_mac_check_shifts), and its op data (tt_op_set_data). If the model's
 * "tt_requant" table has them, they stay in the model bytes (flash): each is checked against
 * fn's value, computed one channel at a time, and any difference fails the op with
 * TT_ERR_MODEL; the op data is then just the activation. Otherwise they are computed into
 * 8 * n more bytes of op data, as TFLM does. */
tt_status tt_mac_requant(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_tensor *input,
                         const tt_tensor *filter, const tt_tensor *output, int32_t n,
                         int32_t per_channel, tt_mac_op_data **data);
/* The same for a filter split in two tensors, filter (the slice) and rest (NULL: not split;
 * scales by tt_mac_filter_scale). */
tt_status tt_mac_requant_split(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_tensor *input,
                               const tt_tensor *filter, const tt_tensor *rest,
                               const tt_tensor *output, int32_t n, int32_t per_channel,
                               tt_mac_op_data **data);

/* eval: the op's n requantization constants, from the model's tt_requant table or its data. */
tt_per_channel_quant tt_mac_quant(tt_op_ctx *ctx, const tt_mac_op_data *data, int32_t n);

/* prepare of CONV_2D and DEPTHWISE_CONV_2D: tt_mac_requant, then the fused activation's
 * range into the op data. */
tt_status tt_mac_conv_prepare(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_mac_window *win,
                              const tt_tensor *input, const tt_tensor *filter,
                              const tt_tensor *output, int32_t channels, int32_t per_channel);
/* The same for a filter split in two tensors, filter (the slice) and rest (NULL: not split). */
tt_status tt_mac_conv_prepare_split(tt_op_ctx *ctx, tt_mac_multiplier_fn fn,
                                    const tt_mac_window *win, const tt_tensor *input,
                                    const tt_tensor *filter, const tt_tensor *rest,
                                    const tt_tensor *output, int32_t channels,
                                    int32_t per_channel);

/* eval of CONV_2D and DEPTHWISE_CONV_2D: the kernel parameters they share (tt_conv_2d_params;
 * depthwise adds its depth multiplier), recomputed from the window options and the tensors
 * prepare validated, with the activation range of the op data. A split filter's slice has the
 * whole filter's kernel height and width. */
void tt_mac_conv_params(const tt_mac_window *win, const tt_tensor *input,
                        const tt_tensor *filter, const tt_tensor *output,
                        const tt_mac_op_data *data, tt_conv_2d_params *params);

#endif /* TT_OP_MAC_COMMON_H */
