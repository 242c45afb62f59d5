/* DEPTHWISE_CONV_2D int8 kernel. Same bits as TFLite's DepthwiseConvPerChannel.
 *
 * Speed (same arithmetic as the numpy twin, only the loop order differs): the valid taps of
 * each output pixel are found once, not tested in the inner loop; with depth_multiplier 1
 * the inner loop runs over a block of channels, contiguous in input, filter and output.
 * Reordering the sum is exact: the accumulator of a channel gets the very products the
 * reference adds (at most kh * kw of them, each |w * (x + offset)| <= 127 * 255).
 * A split filter (tt_depthwise_conv_2d_split) holds disjoint channel ranges: each part
 * computes its own output channels. With the DSP extension (tt_dsp.h), 4 channels per word
 * with one 16x16 multiply-accumulate each (SMLABB / SMLATT), accumulators in registers. */
#include "tt_depthwise_conv_2d.h"

#include "tt_conv_2d.h"
#include "tt_dsp.h"
#include "tt_fixedpoint.h"
#include "tt_window.h"

enum { TT_DW_BLOCK = 16 }; /* channels accumulated together (stack, no scratch) */

static int8_t tt_dw_requantize(const tt_depthwise_conv_2d_params *params,
                               const tt_per_channel_quant *quant, const int32_t *bias,
                               int32_t oc, int32_t acc) {
  if (bias) acc += bias[oc];
  return tt_requantize_output(acc, quant->multiplier[oc], quant->shift[oc],
                              params->output_offset, params->activation);
}

/* The valid taps of one output pixel and the steps through input and one stored filter
 * part (its own channel count is the filter's column step). */
typedef struct {
  int32_t rows, cols;
  size_t x_row, x_col; /* input step between tap rows / columns (dilation included) */
  size_t w_row, w_col; /* filter part step between tap rows / columns */
} tt_dw_taps;

/* Output channels [c_lo, c_hi) of one pixel. x: input at the first valid tap, channel 0;
 * w: the filter part holding these channels at the first valid tap (column 0 = c_lo). */
static void tt_dw_pixel(const tt_depthwise_conv_2d_params *params,
                        const tt_per_channel_quant *quant, const int32_t *bias,
                        const tt_dw_taps *t, const int8_t *x, const int8_t *w, int32_t c_lo,
                        int32_t c_hi, int8_t *out) {
  const int32_t off = params->input_offset, dm = params->depth_multiplier;
  if (dm == 1) {
    int32_t c0 = c_lo;
#if TT_DSP
    /* 4 channels per word, in registers: channels c0, c0+2 from the even halves, c0+1, c0+3
     * from the odd ones. */
    const uint32_t off2 = tt_dsp_pair(off);
    for (; c0 + 4 <= c_hi; c0 += 4) {
      int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int32_t ty = 0; ty < t->rows; ++ty) {
        const int8_t *xp = x + ty * t->x_row + c0;
        const int8_t *wp = w + ty * t->w_row + (c0 - c_lo);
        for (int32_t tx = 0; tx < t->cols; ++tx, xp += t->x_col, wp += t->w_col) {
          const uint32_t xw = tt_dsp_load4(xp), ww = tt_dsp_load4(wp);
          const uint32_t xe = tt_dsp_even(xw, off2), xo = tt_dsp_odd(xw, off2);
          const uint32_t we = tt_dsp_even0(ww), wo = tt_dsp_odd0(ww);
          a0 = tt_dsp_mac_lo(xe, we, a0), a2 = tt_dsp_mac_hi(xe, we, a2);
          a1 = tt_dsp_mac_lo(xo, wo, a1), a3 = tt_dsp_mac_hi(xo, wo, a3);
        }
      }
      out[c0] = tt_dw_requantize(params, quant, bias, c0, a0);
      out[c0 + 1] = tt_dw_requantize(params, quant, bias, c0 + 1, a1);
      out[c0 + 2] = tt_dw_requantize(params, quant, bias, c0 + 2, a2);
      out[c0 + 3] = tt_dw_requantize(params, quant, bias, c0 + 3, a3);
    }
#endif
    for (; c0 + TT_DW_BLOCK <= c_hi; c0 += TT_DW_BLOCK) {
      int32_t acc[TT_DW_BLOCK] = {0};
      for (int32_t ty = 0; ty < t->rows; ++ty) {
        for (int32_t tx = 0; tx < t->cols; ++tx) {
          const int8_t *xp = x + ty * t->x_row + tx * t->x_col + c0;
          const int8_t *wp = w + ty * t->w_row + tx * t->w_col + (c0 - c_lo);
          for (int32_t j = 0; j < TT_DW_BLOCK; ++j) acc[j] += wp[j] * (xp[j] + off);
        }
      }
      for (int32_t j = 0; j < TT_DW_BLOCK; ++j) {
        out[c0 + j] = tt_dw_requantize(params, quant, bias, c0 + j, acc[j]);
      }
    }
    for (; c0 < c_hi; ++c0) { /* the last channels, one by one */
      int32_t acc = 0;
      for (int32_t ty = 0; ty < t->rows; ++ty) {
        for (int32_t tx = 0; tx < t->cols; ++tx) {
          acc += w[ty * t->w_row + tx * t->w_col + (c0 - c_lo)] *
                 (x[ty * t->x_row + tx * t->x_col + c0] + off);
        }
      }
      out[c0] = tt_dw_requantize(params, quant, bias, c0, acc);
    }
  } else {
    /* Output channel oc reads input channel oc / dm. */
    for (int32_t oc = c_lo; oc < c_hi; ++oc) {
      const int32_t ic = oc / dm;
      int32_t acc = 0;
      for (int32_t ty = 0; ty < t->rows; ++ty) {
        for (int32_t tx = 0; tx < t->cols; ++tx) {
          acc += w[ty * t->w_row + tx * t->w_col + (oc - c_lo)] *
                 (x[ty * t->x_row + tx * t->x_col + ic] + off);
        }
      }
      out[oc] = tt_dw_requantize(params, quant, bias, oc, acc);
    }
  }
}

tt_status tt_depthwise_conv_2d(const tt_depthwise_conv_2d_params *params,
                               const tt_per_channel_quant *quant, const tt_dims *input_dims,
                               const int8_t *input, const tt_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const tt_dims *output_dims, int8_t *output) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_depthwise_conv_2d_split(params, quant, input_dims, input, filter_dims, &whole, bias,
                                    output_dims, output);
}

tt_status tt_depthwise_conv_2d_split(const tt_depthwise_conv_2d_params *params,
                                     const tt_per_channel_quant *quant,
                                     const tt_dims *input_dims, const int8_t *input,
                                     const tt_dims *filter_dims, const tt_split_filter *filter,
                                     const int32_t *bias, const tt_dims *output_dims,
                                     int8_t *output) {
  if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !filter->slice ||
      !output_dims || !output) {
    return TT_ERR_ARG;
  }
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w;
  const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
  const int32_t dm = params->depth_multiplier;
  if (dm <= 0 || out_c != in_c * dm || filter_dims->c != out_c || filter_dims->n != 1 ||
      input_dims->n != output_dims->n) {
    return TT_ERR_SHAPE;
  }
  if (filter->split < 1 || filter->split > out_c || (filter->split < out_c && !filter->rest)) {
    return TT_ERR_ARG;
  }
  /* Channels [0, split) come from the slice, [split, out_c) from the rest. */
  const int32_t parts = filter->split < out_c ? 2 : 1;
  const int8_t *w_base[2] = {filter->slice, filter->rest};
  const int32_t c_lo[2] = {0, filter->split}, c_hi[2] = {filter->split, out_c};
  tt_dw_taps t[2];
  for (int32_t p = 0; p < parts; ++p) {
    t[p].x_row = (size_t)params->dilation_h * in_w * in_c;
    t[p].x_col = (size_t)params->dilation_w * in_c;
    t[p].w_col = (size_t)(c_hi[p] - c_lo[p]);
    t[p].w_row = (size_t)k_w * t[p].w_col;
  }
  for (int32_t b = 0; b < output_dims->n; ++b) {
    const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * params->stride_h - params->pad_h;
      int32_t ky_begin, ky_end;
      tt_window_range(y0, params->dilation_h, k_h, in_h, &ky_begin, &ky_end);
      const int32_t iy = y0 + ky_begin * params->dilation_h;
      t[0].rows = t[1].rows = ky_end - ky_begin;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * params->stride_w - params->pad_w;
        int32_t kx_begin, kx_end;
        tt_window_range(x0, params->dilation_w, k_w, in_w, &kx_begin, &kx_end);
        const int32_t ix = x0 + kx_begin * params->dilation_w;
        t[0].cols = t[1].cols = kx_end - kx_begin;
        /* Input at the first valid tap, channel 0; each part at its first valid tap. */
        const int8_t *x = in_batch + ((size_t)iy * in_w + ix) * in_c;
        const size_t tap = (size_t)ky_begin * k_w + kx_begin;
        int8_t *out = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
        /* Two call sites, not a loop over the parts: GCC then keeps tt_dw_pixel out of line
         * with its own registers (inlined here it cost +10% instructions on Cortex-M7). */
        tt_dw_pixel(params, quant, bias, &t[0], x, w_base[0] + tap * t[0].w_col, c_lo[0], c_hi[0],
                    out);
        if (parts == 2) {
          tt_dw_pixel(params, quant, bias, &t[1], x, w_base[1] + tap * t[1].w_col, c_lo[1],
                      c_hi[1], out);
        }
      }
    }
  }
  return TT_OK;
}

void tt_depthwise_conv_2d_multiplier(float input_scale, float filter_scale, float output_scale,
                                     int32_t *multiplier, int32_t *shift) {
  /* TFLM derives depthwise constants with the same PopulateConvolutionQuantizationParams. */
  tt_conv_2d_multiplier(input_scale, filter_scale, output_scale, multiplier, shift);
}
