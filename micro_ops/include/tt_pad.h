/* PAD / PADV2, int8 (TFLite reference_ops::Pad): constant padding of an N,H,W,C tensor.
 * Numpy twin: tflm_train/kernels/pad.py (PadParams, pad, pad_params). */
#ifndef TT_PAD_H
#define TT_PAD_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t before[4]; /* n, h, w, c */
  int32_t after[4];
  int32_t pad_value; /* the output zero point (PAD) or the constant (PADV2) */
} tt_pad_params;

/* output dims must equal input dims + before + after. No scratch. */
tt_status tt_pad(const tt_pad_params *params, const tt_dims *input_dims, const int8_t *input,
                 const tt_dims *output_dims, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif /* TT_PAD_H */
