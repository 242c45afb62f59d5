/* Backward of RESHAPE: a plain copy (memmove: the engine may overlap the buffers). */
#include "tt_reshape_backward.h"

#include <string.h>

void tt_reshape_backward(const int8_t *output_grad, int8_t *input_grad, int32_t n) {
  if (input_grad != output_grad && n > 0) memmove(input_grad, output_grad, (size_t)n);
}
