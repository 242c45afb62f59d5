/* RESHAPE: a copy, skipped when the engine placed the output on the input. */
#include "tt_reshape.h"

#include <string.h>

void tt_reshape(const void *input, void *output, size_t bytes) {
  if (input != output) memmove(output, input, bytes);
}
