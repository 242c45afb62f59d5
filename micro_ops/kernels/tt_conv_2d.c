/* CONV_2D int8 kernel: int32 accumulation of filter * (input + input_offset), bias, per-channel
 * requantization, output offset, clamp. Same bits as TFLite's ConvPerChannel. */
#include "tt_conv_2d.h"

#include "tt_fixedpoint.h"

/* First tap index k in [0, size) with 0 <= origin + k * dilation < limit, and one past the last. */
static void tt_tap_range(int32_t origin, int32_t dilation, int32_t size, int32_t limit,
                         int32_t *begin, int32_t *end) {
  int32_t b = 0, e = size;
  while (b < e && origin + b * dilation < 0) ++b;
  while (e > b && origin + (e - 1) * dilation >= limit) --e;
  *begin = b;
  *end = e;
}

tt_status tt_conv_2d(const tt_conv_2d_params *params, const tt_per_channel_quant *quant,
                     const tt_dims *input_dims, const int8_t *input, const tt_dims *filter_dims,
                     const int8_t *filter, const int32_t *bias, const tt_dims *output_dims,
                     int8_t *output) {
  if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !output_dims ||
      !output) {
    return TT_ERR_ARG;
  }
  const int32_t in_h = input_dims->h, in_w = input_dims->w, in_c = input_dims->c;
  const int32_t k_h = filter_dims->h, k_w = filter_dims->w, f_c = filter_dims->c;
  const int32_t out_h = output_dims->h, out_w = output_dims->w, out_c = output_dims->c;
  if (f_c <= 0 || in_c % f_c != 0 || filter_dims->n != out_c || input_dims->n != output_dims->n) {
    return TT_ERR_SHAPE;
  }
  const int32_t groups = in_c / f_c;
  if (out_c % groups != 0) return TT_ERR_SHAPE;
  const int32_t per_group = out_c / groups;

  for (int32_t b = 0; b < output_dims->n; ++b) {
    const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * params->stride_h - params->pad_h;
      int32_t ky_begin, ky_end;
      tt_tap_range(y0, params->dilation_h, k_h, in_h, &ky_begin, &ky_end);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * params->stride_w - params->pad_w;
        int32_t kx_begin, kx_end;
        tt_tap_range(x0, params->dilation_w, k_w, in_w, &kx_begin, &kx_end);
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t c_base = (oc / per_group) * f_c;
          const int8_t *w_oc = filter + (size_t)oc * k_h * k_w * f_c;
          int32_t acc = 0;
          /* Taps outside the image are skipped: zero padding in real units. */
          for (int32_t ky = ky_begin; ky < ky_end; ++ky) {
            const int32_t iy = y0 + ky * params->dilation_h;
            for (int32_t kx = kx_begin; kx < kx_end; ++kx) {
              const int32_t ix = x0 + kx * params->dilation_w;
              const int8_t *x = in_batch + ((size_t)iy * in_w + ix) * in_c + c_base;
              const int8_t *w = w_oc + ((size_t)ky * k_w + kx) * f_c;
              for (int32_t ic = 0; ic < f_c; ++ic) {
                acc += (int32_t)w[ic] * ((int32_t)x[ic] + params->input_offset);
              }
            }
          }
          if (bias) acc += bias[oc];
          acc = tt_multiply_by_quantized_multiplier(acc, quant->multiplier[oc], quant->shift[oc]);
          acc += params->output_offset;
          acc = tt_clamp(acc, params->activation.min, params->activation.max);
          output[(((size_t)b * out_h + oy) * out_w + ox) * out_c + oc] = (int8_t)acc;
        }
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
