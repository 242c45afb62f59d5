/* CONV_2D int8 kernel: int32 accumulation of filter * (input + input_offset), bias, per-channel
 * requantization, output offset, clamp. Same bits as TFLite's ConvPerChannel.
 *
 * Speed (same arithmetic as the numpy twin, only the loop order differs): taps outside the
 * image are excluded per output row/column up front, never tested in the inner loop, and the
 * inner loop computes 4 output channels for 1 or 2 output pixels at once, so every input
 * load (and its + input_offset) feeds 4 or 8 multiply-adds.
 * Reordering the sum is exact: each accumulator gets the very products the reference adds,
 * and |w * (x + offset)| <= 127 * 255, so no partial sum can overflow int32 unless the full
 * sum could (more than 66000 taps), where TFLite's own int32 accumulation is undefined.
 * A split filter (tt_conv_2d_split) walks the taps once per stored part and adds the parts'
 * accumulators: the same products again, so the same bits as the joined filter.
 * Code generation: the dot helpers are called once per part from separate call sites, so
 * GCC keeps them out of line, each inner loop with the whole register file. Inlined into the
 * pixel loop (one call site in a loop over the parts) they spilled every accumulator: +27%
 * instructions on Cortex-M7 (arm-none-eabi-gcc -O2).
 * With the DSP extension (tt_dsp.h) the depth loop takes 4 inputs per word: two SMLADs per
 * channel and word instead of four multiply-adds and their byte loads. */
#include "tt_conv_2d.h"

#include "tt_dsp.h"
#include "tt_fixedpoint.h"
#include "tt_window.h"

enum { TT_CONV_CHUNK = 16 };

/* The valid taps of one output pixel and how to step through input and filter. */
typedef struct {
  int32_t rows, cols;     /* valid taps */
  int32_t depth;          /* filter depth (input channels per group) */
  size_t x_row, x_col;    /* input step between tap rows / columns (dilation included) */
  size_t w_row;           /* filter step between tap rows (a column is `depth`) */
  size_t w_chan;          /* filter step between output channels */
  int32_t input_offset;
} tt_conv_taps;

/* acc[k] = sum over taps and depth of w[k] * (x + offset), k < 4 (channels oc..oc+3). */
static void tt_conv_dot_1x4(const tt_conv_taps *t, const int8_t *x, const int8_t *w,
                            int32_t acc[4]) {
  const size_t c = t->w_chan;
  const int32_t off = t->input_offset;
#if TT_DSP
  const uint32_t off2 = tt_dsp_pair(off);
#endif
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (int32_t ty = 0; ty < t->rows; ++ty) {
    for (int32_t tx = 0; tx < t->cols; ++tx) {
      const int8_t *xp = x + ty * t->x_row + tx * t->x_col;
      const int8_t *wp = w + ty * t->w_row + (size_t)tx * t->depth;
      int32_t i = 0;
#if TT_DSP
      for (; i + 4 <= t->depth; i += 4) {
        const uint32_t xw = tt_dsp_load4(xp + i);
        const uint32_t xe = tt_dsp_even(xw, off2), xo = tt_dsp_odd(xw, off2);
        uint32_t w4 = tt_dsp_load4(wp + i);
        a0 = tt_dsp_mac2(xo, tt_dsp_odd0(w4), tt_dsp_mac2(xe, tt_dsp_even0(w4), a0));
        w4 = tt_dsp_load4(wp + i + c);
        a1 = tt_dsp_mac2(xo, tt_dsp_odd0(w4), tt_dsp_mac2(xe, tt_dsp_even0(w4), a1));
        w4 = tt_dsp_load4(wp + i + 2 * c);
        a2 = tt_dsp_mac2(xo, tt_dsp_odd0(w4), tt_dsp_mac2(xe, tt_dsp_even0(w4), a2));
        w4 = tt_dsp_load4(wp + i + 3 * c);
        a3 = tt_dsp_mac2(xo, tt_dsp_odd0(w4), tt_dsp_mac2(xe, tt_dsp_even0(w4), a3));
      }
#else
      /* Fixed-length chunks: the compiler vectorizes these at -O2. */
      for (; i + TT_CONV_CHUNK <= t->depth; i += TT_CONV_CHUNK) {
        const int8_t *xi = xp + i, *wi = wp + i;
        for (int32_t j = 0; j < TT_CONV_CHUNK; ++j) {
          const int32_t v = xi[j] + off;
          a0 += wi[j] * v;
          a1 += wi[j + c] * v;
          a2 += wi[j + 2 * c] * v;
          a3 += wi[j + 3 * c] * v;
        }
      }
#endif
      for (; i < t->depth; ++i) {
        const int32_t v = xp[i] + off;
        a0 += wp[i] * v;
        a1 += wp[i + c] * v;
        a2 += wp[i + 2 * c] * v;
        a3 += wp[i + 3 * c] * v;
      }
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

#if TT_DSP
/* One tap's dot products, accumulated: acc[0..1] += channels w0, w1 on pixel xp, acc[2..3] +=
 * the same on pixel xq, over `depth` contiguous inputs. Four accumulators (not eight) so that
 * the loop keeps everything in registers. */
static void tt_conv_flat_2x2(const int8_t *xp, const int8_t *xq, const int8_t *w0,
                             const int8_t *w1, int32_t depth, int32_t off, int32_t acc[4]) {
  const uint32_t off2 = tt_dsp_pair(off);
  int32_t a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
  int32_t i = 0;
  for (; i + 4 <= depth; i += 4) {
    const uint32_t uw = tt_dsp_load4(xp + i), vw = tt_dsp_load4(xq + i);
    const uint32_t ue = tt_dsp_even(uw, off2), uo = tt_dsp_odd(uw, off2);
    const uint32_t ve = tt_dsp_even(vw, off2), vo = tt_dsp_odd(vw, off2);
    uint32_t w4 = tt_dsp_load4(w0 + i), we = tt_dsp_even0(w4), wo = tt_dsp_odd0(w4);
    a0 = tt_dsp_mac2(uo, wo, tt_dsp_mac2(ue, we, a0));
    b0 = tt_dsp_mac2(vo, wo, tt_dsp_mac2(ve, we, b0));
    w4 = tt_dsp_load4(w1 + i), we = tt_dsp_even0(w4), wo = tt_dsp_odd0(w4);
    a1 = tt_dsp_mac2(uo, wo, tt_dsp_mac2(ue, we, a1));
    b1 = tt_dsp_mac2(vo, wo, tt_dsp_mac2(ve, we, b1));
  }
  for (; i < depth; ++i) {
    const int32_t u = xp[i] + off, v = xq[i] + off;
    a0 += w0[i] * u, a1 += w1[i] * u, b0 += w0[i] * v, b1 += w1[i] * v;
  }
  acc[0] = a0, acc[1] = a1, acc[2] = b0, acc[3] = b1;
}

/* Two output pixels whose inputs are `x_next` apart: acc[0..3] and acc[4..7], tap by tap. */
static void tt_conv_dot_2x4(const tt_conv_taps *t, const int8_t *x, size_t x_next,
                            const int8_t *w, int32_t acc[8]) {
  const size_t c = t->w_chan;
  int32_t lo[4] = {0, 0, 0, 0}, hi[4] = {0, 0, 0, 0};
  for (int32_t ty = 0; ty < t->rows; ++ty) {
    for (int32_t tx = 0; tx < t->cols; ++tx) {
      const int8_t *xp = x + ty * t->x_row + tx * t->x_col;
      const int8_t *wp = w + ty * t->w_row + (size_t)tx * t->depth;
      tt_conv_flat_2x2(xp, xp + x_next, wp, wp + c, t->depth, t->input_offset, lo);
      tt_conv_flat_2x2(xp, xp + x_next, wp + 2 * c, wp + 3 * c, t->depth, t->input_offset, hi);
    }
  }
  acc[0] = lo[0], acc[1] = lo[1], acc[2] = hi[0], acc[3] = hi[1];
  acc[4] = lo[2], acc[5] = lo[3], acc[6] = hi[2], acc[7] = hi[3];
}
#else
/* Same for two output pixels whose inputs are `x_next` apart: acc[0..3] and acc[4..7]. */
static void tt_conv_dot_2x4(const tt_conv_taps *t, const int8_t *x, size_t x_next,
                            const int8_t *w, int32_t acc[8]) {
  const size_t c = t->w_chan;
  const int32_t off = t->input_offset;
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
  for (int32_t ty = 0; ty < t->rows; ++ty) {
    for (int32_t tx = 0; tx < t->cols; ++tx) {
      const int8_t *xp = x + ty * t->x_row + tx * t->x_col;
      const int8_t *xq = xp + x_next;
      const int8_t *wp = w + ty * t->w_row + (size_t)tx * t->depth;
      int32_t i = 0;
      for (; i + TT_CONV_CHUNK <= t->depth; i += TT_CONV_CHUNK) {
        const int8_t *xi = xp + i, *xj = xq + i, *wi = wp + i;
        for (int32_t j = 0; j < TT_CONV_CHUNK; ++j) {
          const int32_t u = xi[j] + off, v = xj[j] + off;
          const int32_t w0 = wi[j], w1 = wi[j + c], w2 = wi[j + 2 * c], w3 = wi[j + 3 * c];
          a0 += w0 * u, a1 += w1 * u, a2 += w2 * u, a3 += w3 * u;
          b0 += w0 * v, b1 += w1 * v, b2 += w2 * v, b3 += w3 * v;
        }
      }
      for (; i < t->depth; ++i) {
        const int32_t u = xp[i] + off, v = xq[i] + off;
        const int32_t w0 = wp[i], w1 = wp[i + c], w2 = wp[i + 2 * c], w3 = wp[i + 3 * c];
        a0 += w0 * u, a1 += w1 * u, a2 += w2 * u, a3 += w3 * u;
        b0 += w0 * v, b1 += w1 * v, b2 += w2 * v, b3 += w3 * v;
      }
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
  acc[4] = b0, acc[5] = b1, acc[6] = b2, acc[7] = b3;
}
#endif

/* One channel (the remainder when a group's channel count is not a multiple of 4). */
static int32_t tt_conv_dot_1x1(const tt_conv_taps *t, const int8_t *x, const int8_t *w) {
  int32_t a = 0;
  for (int32_t ty = 0; ty < t->rows; ++ty) {
    for (int32_t tx = 0; tx < t->cols; ++tx) {
      const int8_t *xp = x + ty * t->x_row + tx * t->x_col;
      const int8_t *wp = w + ty * t->w_row + (size_t)tx * t->depth;
      for (int32_t i = 0; i < t->depth; ++i) a += wp[i] * (xp[i] + t->input_offset);
    }
  }
  return a;
}

static int8_t tt_conv_requantize(const tt_conv_2d_params *params,
                                 const tt_per_channel_quant *quant, const int32_t *bias,
                                 int32_t oc, int32_t acc) {
  if (bias) acc += bias[oc];
  return tt_requantize_output(acc, quant->multiplier[oc], quant->shift[oc],
                              params->output_offset, params->activation);
}

/* Channels oc..oc+3 of one or two pixels (acc[0..3], acc[4..7]; the second `next` bytes
 * after the first): each channel's constants loaded once for both pixels, one call for 8. */
static void tt_conv_requantize_4(const tt_conv_2d_params *params,
                                 const tt_per_channel_quant *quant, const int32_t *bias,
                                 int32_t oc, const int32_t acc[8], int32_t pixels, int8_t *out,
                                 size_t next) {
  for (int32_t k = 0; k < 4; ++k) {
    const int32_t b = bias ? bias[oc + k] : 0, m = quant->multiplier[oc + k];
    const int32_t sh = quant->shift[oc + k];
    for (int32_t p = 0; p < pixels; ++p) {
      out[p * next + k] = tt_requantize_output(acc[4 * p + k] + b, m, sh,
                                               params->output_offset, params->activation);
    }
  }
}

tt_status tt_conv_2d(const tt_conv_2d_params *params, const tt_per_channel_quant *quant,
                     const tt_dims *input_dims, const int8_t *input, const tt_dims *filter_dims,
                     const int8_t *filter, const int32_t *bias, const tt_dims *output_dims,
                     int8_t *output) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_conv_2d_split(params, quant, input_dims, input, filter_dims, &whole, bias,
                          output_dims, output);
}

tt_status tt_conv_2d_split(const tt_conv_2d_params *params, const tt_per_channel_quant *quant,
                           const tt_dims *input_dims, const int8_t *input,
                           const tt_dims *filter_dims, const tt_split_filter *filter,
                           const int32_t *bias, const tt_dims *output_dims, int8_t *output) {
  if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !filter->slice ||
      !output_dims || !output) {
    return TT_ERR_ARG;
  }
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
  const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
  if (f_c <= 0 || in_c % f_c != 0 || filter_dims->n != out_c || input_dims->n != output_dims->n) {
    return TT_ERR_SHAPE;
  }
  if (filter->split < 1 || filter->split > f_c || (filter->split < f_c && !filter->rest)) {
    return TT_ERR_ARG;
  }
  const int32_t groups = in_c / f_c;
  if (out_c % groups != 0) return TT_ERR_SHAPE;
  const int32_t per_group = out_c / groups;

  /* The filter's stored parts: the slice (channels [0, split) of each group's input) and, for
   * a split filter, the rest; each with its own depth, so its own strides. */
  const int32_t split = filter->split, rest_depth = f_c - split;
  tt_conv_taps t, t_rest;
  t.depth = split;
  t.x_row = (size_t)params->dilation_h * in_w * in_c;
  t.x_col = (size_t)params->dilation_w * in_c;
  t.w_row = (size_t)k_w * split;
  t.w_chan = (size_t)k_h * k_w * split;
  t.input_offset = params->input_offset;
  t_rest = t;
  t_rest.depth = rest_depth;
  t_rest.w_row = (size_t)k_w * rest_depth;
  t_rest.w_chan = (size_t)k_h * k_w * rest_depth;
  const size_t x_next = (size_t)params->stride_w * in_c; /* input step between output pixels */
  /* Whole filter, one group, no column dilation: a row of taps is contiguous in the input as
   * in the filter, so it is one dot product of cols * depth (a 3x3x3 stem: 9, not 3x3). */
  const int merge_cols = rest_depth == 0 && groups == 1 && params->dilation_w == 1;

  for (int32_t b = 0; b < output_dims->n; ++b) {
    const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * params->stride_h - params->pad_h;
      int32_t ky_begin, ky_end;
      tt_window_range(y0, params->dilation_h, k_h, in_h, &ky_begin, &ky_end);
      t.rows = t_rest.rows = ky_end - ky_begin;
      const int32_t iy = y0 + ky_begin * params->dilation_h;
      int8_t *out_row = output + ((size_t)b * out_h + oy) * out_w * out_c;
      int32_t ox = 0;
      while (ox < out_w) {
        const int32_t x0 = ox * params->stride_w - params->pad_w;
        int32_t kx_begin, kx_end;
        tt_window_range(x0, params->dilation_w, k_w, in_w, &kx_begin, &kx_end);
        /* Two pixels at once when the next one has the same valid taps. */
        int32_t pair = 0;
        if (ox + 1 < out_w) {
          int32_t nb, ne;
          tt_window_range(x0 + params->stride_w, params->dilation_w, k_w, in_w, &nb, &ne);
          pair = nb == kx_begin && ne == kx_end;
        }
        t.cols = t_rest.cols = kx_end - kx_begin;
        t.depth = split;
        if (merge_cols) {
          t.depth = t.cols * split;
          t.cols = 1;
        }
        const int32_t ix = x0 + kx_begin * params->dilation_w;
        const int8_t *x_pix = in_batch + ((size_t)iy * in_w + ix) * in_c;
        const size_t tap = (size_t)ky_begin * k_w + kx_begin; /* first valid tap */
        int8_t *out = out_row + (size_t)ox * out_c;
        for (int32_t g = 0; g < groups; ++g) {
          const int8_t *x = x_pix + (size_t)g * f_c;
          const int32_t oc_end = (g + 1) * per_group;
          int32_t oc = g * per_group;
          for (; oc + 4 <= oc_end; oc += 4) {
            const int8_t *w = filter->slice + (size_t)oc * t.w_chan + tap * split;
            int32_t acc[8];
            if (pair) {
              tt_conv_dot_2x4(&t, x, x_next, w, acc);
            } else {
              tt_conv_dot_1x4(&t, x, w, acc);
            }
            if (rest_depth > 0) {
              const int8_t *wr = filter->rest + (size_t)oc * t_rest.w_chan + tap * rest_depth;
              int32_t more[8];
              if (pair) {
                tt_conv_dot_2x4(&t_rest, x + split, x_next, wr, more);
              } else {
                tt_conv_dot_1x4(&t_rest, x + split, wr, more);
              }
              for (int32_t k = 0; k < 8; ++k) acc[k] += more[k];
            }
            tt_conv_requantize_4(params, quant, bias, oc, acc, pair ? 2 : 1, out + oc,
                                 (size_t)out_c);
          }
          for (; oc < oc_end; ++oc) {
            const int8_t *w = filter->slice + (size_t)oc * t.w_chan + tap * split;
            int32_t a = tt_conv_dot_1x1(&t, x, w);
            int32_t a_next = pair ? tt_conv_dot_1x1(&t, x + x_next, w) : 0;
            if (rest_depth > 0) {
              const int8_t *wr = filter->rest + (size_t)oc * t_rest.w_chan + tap * rest_depth;
              a += tt_conv_dot_1x1(&t_rest, x + split, wr);
              if (pair) a_next += tt_conv_dot_1x1(&t_rest, x + split + x_next, wr);
            }
            out[oc] = tt_conv_requantize(params, quant, bias, oc, a);
            if (pair) out[out_c + oc] = tt_conv_requantize(params, quant, bias, oc, a_next);
          }
        }
        ox += pair ? 2 : 1;
      }
    }
  }
  return TT_OK;
}

void tt_conv_2d_multiplier(float input_scale, float filter_scale, float output_scale,
                           int32_t *multiplier, int32_t *shift) {
  const double real = (double)input_scale * (double)filter_scale / (double)output_scale;
  tt_quantize_multiplier(real, multiplier, shift);
}
