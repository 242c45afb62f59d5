/* RESHAPE: the data is unchanged. Numpy twin: tflm_train/kernels/reshape.py. */
#ifndef TT_RESHAPE_H
#define TT_RESHAPE_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copies `bytes` bytes unless output already is input (the engine may alias them). */
void tt_reshape(const void *input, void *output, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* TT_RESHAPE_H */
