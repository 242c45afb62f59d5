/* MEAN, int8: TFLite reference_ops::QuantizedMeanOrSum (sum in int32, subtract
 * zero_point * count, one requantization with 1/count folded into the multiplier). */
#include "tt_mean.h"

#include "tt_fixedpoint.h"

tt_status tt_mean(const tt_mean_params *params, const tt_dims *input_dims, const int8_t *input,
                  const tt_dims *output_dims, int8_t *output) {
  const int32_t in_d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  int32_t stride[4];
  int32_t span[4]; /* how many input indices one output index covers along each dim */
  int32_t o[4], r[4];
  int i;
  stride[3] = 1;
  for (i = 2; i >= 0; --i) stride[i] = stride[i + 1] * in_d[i + 1];
  for (i = 0; i < 4; ++i) {
    if (out_d[i] != in_d[i] && out_d[i] != 1) return TT_ERR_SHAPE;
    span[i] = out_d[i] == in_d[i] ? 1 : in_d[i];
  }
  for (o[0] = 0; o[0] < out_d[0]; ++o[0]) {
    for (o[1] = 0; o[1] < out_d[1]; ++o[1]) {
      for (o[2] = 0; o[2] < out_d[2]; ++o[2]) {
        for (o[3] = 0; o[3] < out_d[3]; ++o[3]) {
          int32_t sum = 0; /* wraps around like the reference's int32 accumulator */
          int32_t shifted, y;
          for (r[0] = 0; r[0] < span[0]; ++r[0]) {
            for (r[1] = 0; r[1] < span[1]; ++r[1]) {
              for (r[2] = 0; r[2] < span[2]; ++r[2]) {
                const int8_t *p = input + (ptrdiff_t)(o[0] + r[0]) * stride[0] +
                                  (ptrdiff_t)(o[1] + r[1]) * stride[1] +
                                  (ptrdiff_t)(o[2] + r[2]) * stride[2] + o[3];
                for (r[3] = 0; r[3] < span[3]; ++r[3]) sum = tt_wrap_add(sum, p[r[3]]);
              }
            }
          }
          shifted = tt_wrap_sub(sum, (int32_t)((uint32_t)params->input_zero_point *
                                                (uint32_t)params->count));
          y = tt_multiply_by_quantized_multiplier(shifted, params->multiplier, params->shift) +
              params->output_zero_point;
          *output++ = (int8_t)tt_clamp(y, -128, 127);
        }
      }
    }
  }
  return TT_OK;
}

void tt_mean_prepare(float input_scale, int32_t input_zero_point, float output_scale,
                     int32_t output_zero_point, int32_t count, tt_mean_params *params) {
  int32_t multiplier, shift;
  tt_quantize_multiplier((double)input_scale / (double)output_scale, &multiplier, &shift);
  if (count > 0) {
    int32_t extra = 0; /* floor(log2(count)), clamped as the reference does */
    while (((int64_t)count >> (extra + 1)) != 0) ++extra;
    if (extra > 32) extra = 32;
    if (extra > 31 + shift) extra = 31 + shift;
    multiplier = (int32_t)(((int64_t)multiplier << extra) / count);
    shift -= extra;
  }
  params->input_zero_point = input_zero_point;
  params->output_zero_point = output_zero_point;
  params->multiplier = multiplier;
  params->shift = shift;
  params->count = count;
}
