/* Backward of MEAN: g * round(2^23 / count), one power-of-two requantization, broadcast. */
#include "tt_mean_backward.h"

#include "tt_fixedpoint.h"

enum { TT_MEAN_RECIP_BITS = 23 }; /* 127 * 2^23 < 2^31 */

tt_status tt_mean_backward(const tt_dims *output_dims, const int8_t *output_grad,
                           int32_t output_grad_exponent, const tt_dims *input_dims,
                           int8_t *input_grad, int32_t *input_grad_exponent) {
  const int32_t in_d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  int32_t out_stride[4]; /* 0 along reduced dims: every input there reads the same output */
  int32_t count = 1, recip, i[4], d, s = 0, max_abs = 0, n_out = 1;
  for (d = 0; d < 4; ++d) {
    if (out_d[d] != in_d[d] && out_d[d] != 1) return TT_ERR_SHAPE;
    if (out_d[d] != in_d[d]) count *= in_d[d];
    n_out *= out_d[d];
  }
  if (count <= 0) return TT_ERR_SHAPE;
  out_stride[3] = 1;
  for (d = 2; d >= 0; --d) out_stride[d] = out_stride[d + 1] * out_d[d + 1];
  for (d = 0; d < 4; ++d) {
    if (out_d[d] != in_d[d]) out_stride[d] = 0;
  }
  recip = (((int32_t)1 << TT_MEAN_RECIP_BITS) + count / 2) / count;
  /* The shift tt_requantize_pow2 would pick for the int32 values g * recip. */
  for (d = 0; d < n_out; ++d) {
    const int32_t a = output_grad[d] < 0 ? -output_grad[d] : output_grad[d];
    if (a > max_abs) max_abs = a;
  }
  while (((max_abs * recip) >> s) > 127) ++s;
  for (i[0] = 0; i[0] < in_d[0]; ++i[0]) {
    for (i[1] = 0; i[1] < in_d[1]; ++i[1]) {
      for (i[2] = 0; i[2] < in_d[2]; ++i[2]) {
        const int8_t *g = output_grad + (ptrdiff_t)i[0] * out_stride[0] +
                          (ptrdiff_t)i[1] * out_stride[1] + (ptrdiff_t)i[2] * out_stride[2];
        for (i[3] = 0; i[3] < in_d[3]; ++i[3]) {
          const int32_t v = tt_rounding_divide_by_pot(g[i[3] * out_stride[3]] * recip, s);
          *input_grad++ = (int8_t)tt_clamp(v, -127, 127);
        }
      }
    }
  }
  *input_grad_exponent = output_grad_exponent - TT_MEAN_RECIP_BITS + s;
  return TT_OK;
}
