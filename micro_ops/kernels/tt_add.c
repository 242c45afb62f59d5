/* ADD, int8: TFLite AddFunc arithmetic (both inputs rescaled to a common 2^-20 grid, summed,
 * rescaled to the output), with stride-0 broadcasting of size-1 dims. */
#include "tt_add.h"

#include "tt_fixedpoint.h"

static int8_t tt_add_one(const tt_add_params *p, int8_t x, int8_t y) {
  /* |x + offset| <= 255, so the shift by 20 stays inside int32. */
  const int32_t a = (x + p->input1_offset) * (1 << p->left_shift);
  const int32_t b = (y + p->input2_offset) * (1 << p->left_shift);
  const int32_t sa = tt_multiply_by_quantized_multiplier(a, p->input1_multiplier, p->input1_shift);
  const int32_t sb = tt_multiply_by_quantized_multiplier(b, p->input2_multiplier, p->input2_shift);
  const int32_t out =
      tt_multiply_by_quantized_multiplier(sa + sb, p->output_multiplier, p->output_shift) +
      p->output_offset;
  return (int8_t)tt_clamp(out, p->activation.min, p->activation.max);
}

/* Element strides of an input read at output coordinates: 0 along broadcast dims. */
static tt_status tt_add_strides(const tt_dims *in, const tt_dims *out, int32_t stride[4]) {
  const int32_t in_d[4] = {in->n, in->h, in->w, in->c};
  const int32_t out_d[4] = {out->n, out->h, out->w, out->c};
  int32_t step = 1;
  int i;
  for (i = 3; i >= 0; --i) {
    if (in_d[i] != out_d[i] && in_d[i] != 1) return TT_ERR_SHAPE;
    stride[i] = in_d[i] == 1 ? 0 : step;
    step *= in_d[i];
  }
  return TT_OK;
}

tt_status tt_add(const tt_add_params *params, const tt_dims *input1_dims, const int8_t *input1,
                 const tt_dims *input2_dims, const int8_t *input2, const tt_dims *output_dims,
                 int8_t *output) {
  int32_t s1[4], s2[4];
  int32_t n, h, w, c;
  if (tt_add_strides(input1_dims, output_dims, s1) != TT_OK ||
      tt_add_strides(input2_dims, output_dims, s2) != TT_OK) {
    return TT_ERR_SHAPE;
  }
  for (n = 0; n < output_dims->n; ++n) {
    for (h = 0; h < output_dims->h; ++h) {
      for (w = 0; w < output_dims->w; ++w) {
        const int8_t *a = input1 + n * s1[0] + h * s1[1] + w * s1[2];
        const int8_t *b = input2 + n * s2[0] + h * s2[1] + w * s2[2];
        for (c = 0; c < output_dims->c; ++c) {
          *output++ = tt_add_one(params, a[c * s1[3]], b[c * s2[3]]);
        }
      }
    }
  }
  return TT_OK;
}

/* TFLite QuantizeMultiplierSmallerThanOneExp. */
static tt_status tt_multiplier_below_one(double real, int32_t *multiplier, int32_t *shift) {
  if (!(real > 0.0 && real < 1.0)) return TT_ERR_UNSUPPORTED;
  tt_quantize_multiplier(real, multiplier, shift);
  return *shift <= 0 ? TT_OK : TT_ERR_UNSUPPORTED;
}

tt_status tt_add_prepare(float input1_scale, int32_t input1_zero_point, float input2_scale,
                         int32_t input2_zero_point, float output_scale,
                         int32_t output_zero_point, tt_add_params *params) {
  const double twice_max_input_scale =
      2.0 * (double)(input1_scale > input2_scale ? input1_scale : input2_scale);
  params->input1_offset = -input1_zero_point;
  params->input2_offset = -input2_zero_point;
  params->output_offset = output_zero_point;
  params->left_shift = 20;
  if (tt_multiplier_below_one((double)input1_scale / twice_max_input_scale,
                              &params->input1_multiplier, &params->input1_shift) != TT_OK ||
      tt_multiplier_below_one((double)input2_scale / twice_max_input_scale,
                              &params->input2_multiplier, &params->input2_shift) != TT_OK ||
      tt_multiplier_below_one(
          twice_max_input_scale / ((double)(1 << params->left_shift) * (double)output_scale),
          &params->output_multiplier, &params->output_shift) != TT_OK) {
    return TT_ERR_UNSUPPORTED;
  }
  return TT_OK;
}
