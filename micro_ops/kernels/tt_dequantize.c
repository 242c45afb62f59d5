/* DEQUANTIZE: int8 → float32 (model edge; float by nature). */
#include "tt_dequantize.h"

void tt_dequantize(const tt_dequantize_params *params, const int8_t *input, float *output,
                   size_t size) {
  const double scale = (double)params->scale;
  size_t i;
  for (i = 0; i < size; ++i) {
    output[i] = (float)(scale * (double)(input[i] - params->zero_point));
  }
}
