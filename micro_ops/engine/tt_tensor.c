/* The tt_op.h tensor helpers that depend only on tt_tensor's shape, shared by the C engine
 * (tt_engine.c) and the TFLM adapter (micro_ops/tflm/), which each implement the rest of
 * tt_op.h over their own tensors. */
#include "tt_op.h"

int64_t tt_tensor_elements(const tt_tensor *t) {
  int64_t count = 1;
  for (int32_t d = 0; d < t->rank; ++d) count *= t->dims[d];
  return count;
}

tt_dims tt_tensor_dims4(const tt_tensor *t) {
  int32_t d[4] = {1, 1, 1, 1};
  for (int32_t k = 0; k < t->rank; ++k) {
    int32_t slot = k + 4 - t->rank;
    if (slot <= 0) d[0] *= t->dims[k]; /* rank 5: leading dims fold into n */
    else d[slot] = t->dims[k];
  }
  tt_dims out = {d[0], d[1], d[2], d[3]};
  return out;
}
