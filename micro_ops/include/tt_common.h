/* tflm-train micro_ops: shared types. C99, no malloc, no global state.
 * Every public name starts with tt_ / TT_. */
#ifndef TT_COMMON_H
#define TT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TT_OK = 0,
  TT_ERR_MODEL = 1,       /* malformed or truncated flatbuffer */
  TT_ERR_UNSUPPORTED = 2, /* op, type or option not supported */
  TT_ERR_ARENA = 3,       /* arena too small */
  TT_ERR_ARG = 4,         /* bad argument from the caller */
  TT_ERR_SHAPE = 5        /* inconsistent shapes */
} tt_status;

/* NHWC dims; FC uses n = batches, c = depth; filters use n = output channels. */
typedef struct {
  int32_t n, h, w, c;
} tt_dims;

/* Clamp range of the output, in quantized units (fused activation). */
typedef struct {
  int32_t min, max;
} tt_activation;

/* One fixed-point multiplier: real = multiplier * 2^(shift - 31). */
typedef struct {
  int32_t multiplier;
  int32_t shift;
} tt_quant_mult;

/* Per-channel multipliers (length = output channels). */
typedef struct {
  const int32_t *multiplier;
  const int32_t *shift;
} tt_per_channel_quant;

/* An int8 filter stored in two arrays split along its last axis (a partially trainable
 * weight, docs/train-format.md): entries [..., 0:split) in `slice` (the trainable part, in
 * SRAM), [..., split:depth) in `rest` (frozen, in flash), each row-major with its own last
 * dimension (split and depth - split). The *_split kernels take it with the whole filter's
 * dims; split == depth (rest unused, may be NULL) is an ordinary filter. */
typedef struct {
  const int8_t *slice;
  const int8_t *rest;
  int32_t split;
} tt_split_filter;

/* Values of the TFLite schema enums (ActivationFunctionType, Padding). */
enum { TT_ACT_NONE = 0, TT_ACT_RELU = 1, TT_ACT_RELU_N1_TO_1 = 2, TT_ACT_RELU6 = 3 };
enum { TT_PADDING_SAME = 0, TT_PADDING_VALID = 1 };

#ifdef __cplusplus
}
#endif
#endif /* TT_COMMON_H */
