/* Sliding-window geometry shared by the conv / depthwise kernels, forward and backward.
 * An output o with tap k reads input position o * stride + k * dilation - pad. */
#ifndef TT_WINDOW_H
#define TT_WINDOW_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* [begin, end): the k in [0, count) with 0 <= origin + k * step < limit. Forward: the taps of
 * one output (origin = o * stride - pad, step = dilation); weight gradients: the outputs one
 * tap reaches (origin = k * dilation - pad, step = stride). */
static inline void tt_window_range(int32_t origin, int32_t step, int32_t count, int32_t limit,
                                   int32_t *begin, int32_t *end) {
  int32_t b = 0, e = count;
  while (b < e && origin + b * step < 0) ++b;
  while (e > b && origin + (e - 1) * step >= limit) --e;
  *begin = b;
  *end = e;
}

/* Input gradients: the output o whose tap k reads input position i (o * stride + k *
 * dilation - pad == i), or -1 when there is none. stride >= 1. */
static inline int32_t tt_window_source(int32_t i, int32_t k, int32_t stride, int32_t dilation,
                                       int32_t pad, int32_t out_size) {
  const int32_t t = i + pad - k * dilation;
  if (t < 0 || t % stride != 0) return -1;
  return t / stride < out_size ? t / stride : -1;
}

#ifdef __cplusplus
}
#endif
#endif /* TT_WINDOW_H */
