/* Prepare-time checks shared by the MAC ops' glue. */
#include "tt_op_mac_common.h"

#include <math.h>

#include "tt_fixedpoint.h"

static int tt_is_per_tensor_int8(const tt_tensor *t) {
  if (t->type != TT_TYPE_INT8 || t->num_quant != 1) return 0;
  const int32_t zp = tt_tensor_zero_point(t, 0);
  return zp >= -128 && zp <= 127;
}

tt_status tt_mac_get_tensors(tt_op_ctx *ctx, tt_tensor **input, tt_tensor **filter,
                             tt_tensor **bias, tt_tensor **output) {
  const int32_t n_in = tt_op_num_inputs(ctx);
  if (n_in < 2 || n_in > 3 || tt_op_num_outputs(ctx) != 1) {
    return tt_op_fail(ctx, TT_ERR_MODEL, "expected 2 or 3 inputs and 1 output");
  }
  *input = tt_op_input(ctx, 0);
  *filter = tt_op_input(ctx, 1);
  *bias = tt_op_input(ctx, 2);
  *output = tt_op_output(ctx, 0);
  if (!*input || !*filter || !*output) {
    return tt_op_fail(ctx, TT_ERR_MODEL, "input, filter and output must be present");
  }
  if (!tt_is_per_tensor_int8(*input) || !tt_is_per_tensor_int8(*output)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  return TT_OK;
}

tt_status tt_mac_get_split_tensors(tt_op_ctx *ctx, tt_tensor **input, tt_tensor **slice,
                                   tt_tensor **rest, tt_tensor **bias, tt_tensor **output) {
  const int32_t n_in = tt_op_num_inputs(ctx);
  if (n_in < 3 || n_in > 4 || tt_op_num_outputs(ctx) != 1) {
    return tt_op_fail(ctx, TT_ERR_MODEL,
                      "expected 3 or 4 inputs (input, filter slice, filter rest, bias) and 1 "
                      "output");
  }
  *input = tt_op_input(ctx, 0);
  *slice = tt_op_input(ctx, 1);
  *rest = tt_op_input(ctx, 2);
  *bias = tt_op_input(ctx, 3);
  *output = tt_op_output(ctx, 0);
  if (!*input || !*slice || !*rest || !*output) {
    return tt_op_fail(ctx, TT_ERR_MODEL,
                      "input, both filter parts and output must be present");
  }
  if (!tt_is_per_tensor_int8(*input) || !tt_is_per_tensor_int8(*output)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  return TT_OK;
}

tt_status tt_mac_activation(tt_op_ctx *ctx, int32_t act, const tt_tensor *output,
                            tt_activation *range) {
  if (act != TT_ACT_NONE && act != TT_ACT_RELU && act != TT_ACT_RELU_N1_TO_1 &&
      act != TT_ACT_RELU6) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "fused activation not supported (supported: NONE, RELU, RELU_N1_TO_1, "
                      "RELU6)");
  }
  /* The clamp bounds are 6 / scale (or 1 / scale) in output steps: keep them within int32. */
  const float s_out = tt_tensor_scale(output, 0);
  if (act != TT_ACT_NONE && !(6.0f / s_out < 1e9f)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "output scale too small for a fused activation");
  }
  if (tt_activation_range(act, s_out, tt_tensor_zero_point(output, 0), range) != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "fused activation not supported");
  }
  return TT_OK;
}

tt_status tt_mac_check_filter(tt_op_ctx *ctx, const tt_tensor *filter, int32_t channels,
                              int32_t *per_channel) {
  if (filter->type != TT_TYPE_INT8) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "filter must be int8 (supported: int8)");
  }
  const int32_t n = filter->num_quant;
  if (n < 1) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "filter has no quantization parameters");
  }
  if (n > 1 && (n != channels || filter->quant_axis < 0 || filter->quant_axis >= filter->rank ||
                filter->dims[filter->quant_axis] != n)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "filter needs 1 scale or one per output channel on its quantized dimension");
  }
  for (int32_t i = 0; i < n; ++i) {
    if (tt_tensor_zero_point(filter, i) != 0) {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "filter zero point must be 0 (only symmetric int8 weights supported)");
    }
  }
  *per_channel = n > 1;
  return TT_OK;
}

/* Whether the split (last) axis of a filter is its quantized axis: per-channel depthwise. */
static int tt_split_axis_quantized(const tt_tensor *slice) {
  return slice->num_quant > 1 && slice->quant_axis == slice->rank - 1;
}

tt_status tt_mac_check_split_filter(tt_op_ctx *ctx, const tt_tensor *slice,
                                    const tt_tensor *rest, int32_t channels,
                                    int32_t *per_channel) {
  const int32_t last = slice->rank - 1;
  int ok = slice->rank >= 2 && rest->rank == slice->rank && slice->dims[last] >= 1 &&
           rest->dims[last] >= 1;
  for (int32_t d = 0; ok && d < last; ++d) ok = slice->dims[d] == rest->dims[d];
  if (!ok) {
    return tt_op_fail(ctx, TT_ERR_SHAPE,
                      "the filter slice and rest must differ only in their last dimension");
  }
  const int concat = tt_split_axis_quantized(slice);
  int32_t pc_slice = 0, pc_rest = 0;
  tt_status st = tt_mac_check_filter(ctx, slice, concat ? slice->dims[last] : channels, &pc_slice);
  if (st != TT_OK) return st;
  st = tt_mac_check_filter(ctx, rest, concat ? rest->dims[last] : channels, &pc_rest);
  if (st != TT_OK) return st;
  if (pc_slice != pc_rest || concat != tt_split_axis_quantized(rest) ||
      (concat && slice->dims[last] + rest->dims[last] != channels)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "the filter slice and rest must be quantized alike");
  }
  for (int32_t i = 0; !concat && i < slice->num_quant; ++i) {
    if (tt_tensor_scale(slice, i) != tt_tensor_scale(rest, i)) {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "the filter slice and rest must have the same scales");
    }
  }
  *per_channel = pc_slice;
  return TT_OK;
}

float tt_mac_filter_scale(const tt_tensor *slice, const tt_tensor *rest, int32_t c,
                          int32_t per_channel) {
  if (!per_channel) return tt_tensor_scale(slice, 0);
  if (rest && tt_split_axis_quantized(slice) && c >= slice->num_quant) {
    return tt_tensor_scale(rest, c - slice->num_quant);
  }
  return tt_tensor_scale(slice, c);
}

tt_status tt_mac_check_bias(tt_op_ctx *ctx, const tt_tensor *bias, int32_t channels) {
  if (!bias) return TT_OK;
  if (bias->type != TT_TYPE_INT32) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "bias must be int32 (supported: int32)");
  }
  if (tt_tensor_elements(bias) != channels) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "bias needs one entry per output channel");
  }
  return TT_OK;
}

tt_mac_window tt_mac_window_options(tt_op_ctx *ctx, int32_t activation_opt,
                                    int32_t dilation_w_opt, int32_t dilation_h_opt) {
  const tt_mac_window win = {tt_op_option_i8(ctx, 0, TT_PADDING_SAME),
                             tt_op_option_i32(ctx, 1, 0),
                             tt_op_option_i32(ctx, 2, 0),
                             tt_op_option_i32(ctx, dilation_w_opt, 1),
                             tt_op_option_i32(ctx, dilation_h_opt, 1),
                             tt_op_option_i8(ctx, activation_opt, TT_ACT_NONE)};
  return win;
}

tt_status tt_mac_window_geometry(tt_op_ctx *ctx, const tt_mac_window *win, const tt_tensor *input,
                                 const tt_tensor *filter, const tt_tensor *output,
                                 int32_t out_channels, int32_t *pad_w, int32_t *pad_h) {
  if (win->padding != TT_PADDING_SAME && win->padding != TT_PADDING_VALID) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "padding not supported (supported: SAME, VALID)");
  }
  if (win->stride_w <= 0 || win->stride_h <= 0) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "stride must be positive");
  }
  if (win->dilation_w <= 0 || win->dilation_h <= 0) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "dilation must be positive");
  }
  if (input->rank != 4 || filter->rank != 4 || output->rank != 4) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input, filter and output must have rank 4");
  }
  int32_t out_h = 0, out_w = 0;
  if (tt_compute_padding(win->padding, input->dims[1], filter->dims[1], win->stride_h,
                         win->dilation_h, &out_h, pad_h) != TT_OK ||
      tt_compute_padding(win->padding, input->dims[2], filter->dims[2], win->stride_w,
                         win->dilation_w, &out_w, pad_w) != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "filter does not fit the input");
  }
  if (output->dims[0] != input->dims[0] || output->dims[1] != out_h || output->dims[2] != out_w ||
      output->dims[3] != out_channels) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "output shape does not match input, filter and options");
  }
  return TT_OK;
}

tt_status tt_mac_check_scales(tt_op_ctx *ctx, const tt_tensor *input, const tt_tensor *filter,
                              const tt_tensor *output) {
  const float s_in = tt_tensor_scale(input, 0), s_out = tt_tensor_scale(output, 0);
  if (!isfinite(s_in) || !isfinite(s_out) || s_in <= 0.0f || s_out <= 0.0f) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "input and output scales must be positive");
  }
  for (int32_t i = 0; i < filter->num_quant; ++i) {
    const float s = tt_tensor_scale(filter, i);
    if (!isfinite(s) || s < 0.0f) {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "filter scales must be finite and >= 0");
    }
  }
  return TT_OK;
}

tt_status tt_mac_check_weights(tt_op_ctx *ctx, const tt_tensor *input, const tt_tensor *filter,
                               const tt_tensor *bias, const tt_tensor *output, int32_t channels,
                               int32_t *per_channel) {
  tt_status st = tt_mac_check_filter(ctx, filter, channels, per_channel);
  if (st != TT_OK) return st;
  st = tt_mac_check_scales(ctx, input, filter, output);
  if (st != TT_OK) return st;
  return tt_mac_check_bias(ctx, bias, channels);
}

tt_status tt_mac_check_shifts(tt_op_ctx *ctx, const int32_t *shift, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    if (shift[i] < -31 || shift[i] > 30) {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "requantization scale s_in * s_w / s_out out of range (>= 2^30)");
    }
  }
  return TT_OK;
}

tt_status tt_mac_requant(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_tensor *input,
                         const tt_tensor *filter, const tt_tensor *output, int32_t n,
                         int32_t per_channel, tt_mac_op_data **data) {
  return tt_mac_requant_split(ctx, fn, input, filter, NULL, output, n, per_channel, data);
}

tt_status tt_mac_requant_split(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_tensor *input,
                               const tt_tensor *filter, const tt_tensor *rest,
                               const tt_tensor *output, int32_t n, int32_t per_channel,
                               tt_mac_op_data **data) {
  const float in_scale = tt_tensor_scale(input, 0), out_scale = tt_tensor_scale(output, 0);
  const int32_t *flash_mult = NULL, *flash_shift = NULL;
  const int found = tt_op_flash_quant(ctx, n, &flash_mult, &flash_shift);
  if (found < 0) return TT_ERR_MODEL;
  if (found) {
    /* Never trust the table: a stale or corrupted one would silently change the results. */
    for (int32_t c = 0; c < n; ++c) {
      int32_t m = 0, s = 0;
      fn(in_scale, tt_mac_filter_scale(filter, rest, c, per_channel), out_scale, &m, &s);
      tt_status st = tt_mac_check_shifts(ctx, &s, 1);
      if (st != TT_OK) return st;
      if (flash_mult[c] != m || flash_shift[c] != s) {
        return tt_op_fail(ctx, TT_ERR_MODEL,
                          "tt_requant metadata differs from the requantization constants "
                          "computed from the model's scales");
      }
    }
  }
  const size_t bytes = sizeof(tt_mac_op_data) + (found ? 0u : 2u * (size_t)n * sizeof(int32_t));
  tt_mac_op_data *d = (tt_mac_op_data *)tt_op_alloc_persistent(ctx, bytes);
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  d->activation.min = d->activation.max = 0;
  tt_op_set_data(ctx, d);
  *data = d;
  if (found) return TT_OK;
  int32_t *mult = d->quant, *shift = d->quant + n;
  for (int32_t c = 0; c < n; ++c) {
    fn(in_scale, tt_mac_filter_scale(filter, rest, c, per_channel), out_scale, &mult[c],
       &shift[c]);
  }
  return tt_mac_check_shifts(ctx, shift, n);
}

tt_per_channel_quant tt_mac_quant(tt_op_ctx *ctx, const tt_mac_op_data *data, int32_t n) {
  tt_per_channel_quant q;
  if (tt_op_flash_quant(ctx, n, &q.multiplier, &q.shift) != 1) {
    q.multiplier = data->quant;
    q.shift = data->quant + n;
  }
  return q;
}

tt_status tt_mac_conv_prepare(tt_op_ctx *ctx, tt_mac_multiplier_fn fn, const tt_mac_window *win,
                              const tt_tensor *input, const tt_tensor *filter,
                              const tt_tensor *output, int32_t channels, int32_t per_channel) {
  return tt_mac_conv_prepare_split(ctx, fn, win, input, filter, NULL, output, channels,
                                   per_channel);
}

tt_status tt_mac_conv_prepare_split(tt_op_ctx *ctx, tt_mac_multiplier_fn fn,
                                    const tt_mac_window *win, const tt_tensor *input,
                                    const tt_tensor *filter, const tt_tensor *rest,
                                    const tt_tensor *output, int32_t channels,
                                    int32_t per_channel) {
  tt_mac_op_data *d = NULL;
  tt_status st =
      tt_mac_requant_split(ctx, fn, input, filter, rest, output, channels, per_channel, &d);
  if (st != TT_OK) return st;
  return tt_mac_activation(ctx, win->activation, output, &d->activation);
}

void tt_mac_conv_params(const tt_mac_window *win, const tt_tensor *input,
                        const tt_tensor *filter, const tt_tensor *output,
                        const tt_mac_op_data *data, tt_conv_2d_params *params) {
  int32_t out_size, pad_w = 0, pad_h = 0;
  /* As prepare (tt_mac_window_geometry), which checked the shapes fit. */
  tt_compute_padding(win->padding, input->dims[1], filter->dims[1], win->stride_h,
                     win->dilation_h, &out_size, &pad_h);
  tt_compute_padding(win->padding, input->dims[2], filter->dims[2], win->stride_w,
                     win->dilation_w, &out_size, &pad_w);
  params->input_offset = -tt_tensor_zero_point(input, 0);
  params->output_offset = tt_tensor_zero_point(output, 0);
  params->stride_w = win->stride_w;
  params->stride_h = win->stride_h;
  params->dilation_w = win->dilation_w;
  params->dilation_h = win->dilation_h;
  params->pad_w = pad_w;
  params->pad_h = pad_h;
  params->activation = data->activation;
}
