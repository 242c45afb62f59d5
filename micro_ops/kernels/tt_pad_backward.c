/* Backward of PAD: copy the interior rows of the output gradient. */
#include "tt_pad_backward.h"

#include <string.h>

tt_status tt_pad_backward(const tt_pad_params *params, const tt_dims *output_dims,
                          const int8_t *output_grad, const tt_dims *input_dims,
                          int8_t *input_grad) {
  const int32_t in_d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  int32_t d, n, h, w;
  for (d = 0; d < 4; ++d) {
    if (params->before[d] < 0 || params->after[d] < 0 ||
        out_d[d] != in_d[d] + params->before[d] + params->after[d]) {
      return TT_ERR_SHAPE;
    }
  }
  for (n = 0; n < in_d[0]; ++n) {
    for (h = 0; h < in_d[1]; ++h) {
      for (w = 0; w < in_d[2]; ++w) {
        const ptrdiff_t at = (((ptrdiff_t)(n + params->before[0]) * out_d[1] +
                               (h + params->before[1])) * out_d[2] +
                              (w + params->before[2])) * out_d[3] + params->before[3];
        memcpy(input_grad, output_grad + at, (size_t)in_d[3]);
        input_grad += in_d[3];
      }
    }
  }
  return TT_OK;
}
