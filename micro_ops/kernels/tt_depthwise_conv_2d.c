/* DEPTHWISE_CONV_2D int8 kernel. Same bits as TFLite's DepthwiseConvPerChannel. */
#include "tt_depthwise_conv_2d.h"

#include "tt_conv_2d.h"
#include "tt_fixedpoint.h"

tt_status tt_depthwise_conv_2d(const tt_depthwise_conv_2d_params *params,
                               const tt_per_channel_quant *quant, const tt_dims *input_dims,
                               const int8_t *input, const tt_dims *filter_dims,
                               const int8_t *filter, const int32_t *bias,
                               const tt_dims *output_dims, int8_t *output) {
  if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !output_dims ||
      !output) {
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
  for (int32_t b = 0; b < output_dims->n; ++b) {
    const int8_t *in_batch = input + (size_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * params->stride_h - params->pad_h;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * params->stride_w - params->pad_w;
        int8_t *out = output + (((size_t)b * out_h + oy) * out_w + ox) * out_c;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int32_t ic = oc / dm;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < k_h; ++ky) {
            const int32_t iy = y0 + ky * params->dilation_h;
            if (iy < 0 || iy >= in_h) continue; /* zero padding: omitted tap */
            for (int32_t kx = 0; kx < k_w; ++kx) {
              const int32_t ix = x0 + kx * params->dilation_w;
              if (ix < 0 || ix >= in_w) continue;
              const int32_t x = in_batch[((size_t)iy * in_w + ix) * in_c + ic];
              const int32_t w = filter[((size_t)ky * k_w + kx) * out_c + oc];
              acc += w * (x + params->input_offset);
            }
          }
          if (bias) acc += bias[oc];
          acc = tt_multiply_by_quantized_multiplier(acc, quant->multiplier[oc], quant->shift[oc]);
          acc += params->output_offset;
          out[oc] = (int8_t)tt_clamp(acc, params->activation.min, params->activation.max);
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
