/* PAD / PADV2, int8: every output row along C is pad value, or pad value + input row +
 * pad value. */
#include "tt_pad.h"

#include <string.h>

tt_status tt_pad(const tt_pad_params *params, const tt_dims *input_dims, const int8_t *input,
                 const tt_dims *output_dims, int8_t *output) {
  const int32_t in_d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  const int v = (int8_t)params->pad_value;
  int32_t n, h, w, i;
  for (i = 0; i < 4; ++i) {
    if (params->before[i] < 0 || params->after[i] < 0 ||
        in_d[i] + params->before[i] + params->after[i] != out_d[i]) {
      return TT_ERR_SHAPE;
    }
  }
  for (n = 0; n < out_d[0]; ++n) {
    const int32_t in_n = n - params->before[0];
    for (h = 0; h < out_d[1]; ++h) {
      const int32_t in_h = h - params->before[1];
      for (w = 0; w < out_d[2]; ++w) {
        const int32_t in_w = w - params->before[2];
        if (in_n < 0 || in_n >= in_d[0] || in_h < 0 || in_h >= in_d[1] || in_w < 0 ||
            in_w >= in_d[2]) {
          memset(output, v, (size_t)out_d[3]);
        } else {
          const int8_t *row =
              input + (((ptrdiff_t)in_n * in_d[1] + in_h) * in_d[2] + in_w) * in_d[3];
          memset(output, v, (size_t)params->before[3]);
          memcpy(output + params->before[3], row, (size_t)in_d[3]);
          memset(output + params->before[3] + in_d[3], v, (size_t)params->after[3]);
        }
        output += out_d[3];
      }
    }
  }
  return TT_OK;
}
