/* What an op's glue sees of the engine (the role of TFLM's TfLiteContext/TfLiteNode).
 *
 * Each op has a tt_op_registration with prepare() and eval(), in
 * micro_ops/engine/ops/tt_op_<name>.c. prepare() runs once at engine creation: it reads the
 * builtin options, validates types and shapes, derives fixed-point constants (float/double
 * allowed here, never in eval) and allocates persistent data from the arena: only what eval
 * cannot recompute. eval() re-reads what is cheap in integer arithmetic (options, shapes,
 * zero points) and calls the integer kernel in micro_ops/kernels/tt_<name>.c. */
#ifndef TT_OP_H
#define TT_OP_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_MAX_RANK 5

/* TFLite TensorType values used by the engine. */
enum {
  TT_TYPE_FLOAT32 = 0,
  TT_TYPE_INT32 = 2,
  TT_TYPE_UINT8 = 3,
  TT_TYPE_INT64 = 4,
  TT_TYPE_INT16 = 7,
  TT_TYPE_INT8 = 9
};

/* A view of one tensor, built on demand (the engine and the TFLM adapter keep views only for
 * the duration of one prepare/eval call, never in the arena). */
typedef struct tt_tensor {
  int32_t index; /* tensor index in subgraph 0 */
  int32_t dims[TT_MAX_RANK];
  uint32_t bytes;      /* elements * element size (at most 0x7fffffff) */
  int32_t num_quant;   /* 0 = not quantized, 1 = per tensor, >1 = per channel */
  uint8_t type;        /* TT_TYPE_* */
  int8_t rank;
  int8_t is_constant;  /* data lives in the model */
  /* A variable (is_variable in the model): persistent arena memory initialised from the
   * model's buffer (zeros if none) at creation and by tt_engine_reset; ops may update it in
   * place and it keeps its value across invokes. Never constant, never planned. */
  int8_t is_variable;
  int8_t quant_axis;   /* quantized_dimension (0 when it exceeds the rank, as TFLM tolerates) */
  void *data;          /* arena for activations; model bytes (read-only) for constants */
  /* engine-private: where the scale/zero_point vectors sit in the model bytes */
  const uint8_t *scale_vec;
  const uint8_t *zero_point_vec;
} tt_tensor;

/* Quantization parameters; i < num_quant (checked at load: vectors lie inside the model). */
float tt_tensor_scale(const tt_tensor *t, int32_t i);
int32_t tt_tensor_zero_point(const tt_tensor *t, int32_t i);
int64_t tt_tensor_elements(const tt_tensor *t);
/* NHWC view of a rank<=4 tensor, padding leading dims with 1. */
tt_dims tt_tensor_dims4(const tt_tensor *t);

typedef struct tt_op_ctx tt_op_ctx; /* opaque; owned by the engine */

int32_t tt_op_index(const tt_op_ctx *ctx);
int32_t tt_op_num_inputs(const tt_op_ctx *ctx);
int32_t tt_op_num_outputs(const tt_op_ctx *ctx);
/* Views built on the first request within the current prepare/eval call (the same pointer
 * for the rest of the call, whatever is asked in between): use them within the call, don't
 * store them. A tensor's data address is the same at every eval; in prepare, data is NULL for
 * planned (activation) tensors, whose memory is placed after every op is prepared. */
tt_tensor *tt_op_input(tt_op_ctx *ctx, int32_t i);  /* NULL if absent (-1) or i out of range */
tt_tensor *tt_op_output(tt_op_ctx *ctx, int32_t i); /* NULL if i out of range */

/* Builtin options table of the op. `field` is the field's 0-based index in the TFLite
 * schema table (e.g. Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 fused_activation,
 * 4 dilation_w, 5 dilation_h). Absent field or absent table → default. */
int32_t tt_op_option_i8(const tt_op_ctx *ctx, int32_t field, int32_t dflt);  /* byte/bool */
int32_t tt_op_option_i32(const tt_op_ctx *ctx, int32_t field, int32_t dflt);
float tt_op_option_f32(const tt_op_ctx *ctx, int32_t field, float dflt);
/* Vector of int32: copies up to `max` entries into out; returns the count, or -1 if absent. */
int32_t tt_op_option_i32_vector(const tt_op_ctx *ctx, int32_t field, int32_t *out, int32_t max);

/* Options of a CUSTOM op: a FlexBuffer map of integers (validated when the model is loaded).
 * tt_op_custom_i32: the value of `key`, or dflt if the op has no such option. A value that is
 * not an integer or does not fit int32 fails the op's prepare with TT_ERR_MODEL (reported by
 * the engine after prepare returns, like a malformed builtin option). */
int32_t tt_op_custom_i32(const tt_op_ctx *ctx, const char *key, int32_t dflt);
/* The same, reporting presence: 1 found (*out set), 0 absent (*out untouched), -1 bad value. */
int tt_op_custom_find_i32(const tt_op_ctx *ctx, const char *key, int32_t *out);

/* prepare() only: persistent memory from the arena (8-byte aligned), NULL if it is full. */
void *tt_op_alloc_persistent(tt_op_ctx *ctx, size_t bytes);
/* prepare(): this op's per-channel requantization constants precomputed in the model's
 * "tt_requant" metadata (flash; bounds and alignment checked at load): 1 found (*multiplier
 * and *shift point at `channels` int32 each in the model bytes; the op must verify the values
 * before it uses them), 0 none, -1 the entry's channel count differs (op failed, TT_ERR_MODEL). */
int tt_op_flash_quant(tt_op_ctx *ctx, int32_t channels, const int32_t **multiplier,
                      const int32_t **shift);
/* The op's own data (set in prepare, read in eval): NULL or memory from
 * tt_op_alloc_persistent (the engine stores it as an arena offset). */
void tt_op_set_data(tt_op_ctx *ctx, void *data);
void *tt_op_data(const tt_op_ctx *ctx);
/* prepare(): ask for scratch memory valid during this op's eval only (planned like a tensor). */
tt_status tt_op_request_scratch(tt_op_ctx *ctx, size_t bytes);
void *tt_op_scratch(const tt_op_ctx *ctx); /* eval(): the scratch, or NULL if none requested */

/* Record an error message (a static string); the engine prefixes "op N (NAME): ". Returns code. */
tt_status tt_op_fail(tt_op_ctx *ctx, tt_status code, const char *message);

typedef struct {
  int32_t builtin_code; /* TFLite BuiltinOperator value */
  const char *name;     /* "CONV_2D" */
  tt_status (*prepare)(tt_op_ctx *ctx);
  tt_status (*eval)(tt_op_ctx *ctx);
  /* 1: output 0 may share input 0's memory (RESHAPE; element-wise ops in place); 2: the
   * same even when input 0 is a graph input (a streaming op that checks its own writes). */
  int32_t output_may_alias_input;
  /* CUSTOM ops (builtin_code 32): the model's custom_code this registration handles;
   * NULL for builtin ops. */
  const char *custom_code;
} tt_op_registration;

/* One registration per op, defined in micro_ops/engine/ops/tt_op_<name>.c. */
extern const tt_op_registration tt_op_conv_2d;
extern const tt_op_registration tt_op_depthwise_conv_2d;
extern const tt_op_registration tt_op_fully_connected;
extern const tt_op_registration tt_op_add;
extern const tt_op_registration tt_op_average_pool_2d;
extern const tt_op_registration tt_op_max_pool_2d;
extern const tt_op_registration tt_op_mean;
extern const tt_op_registration tt_op_reshape;
extern const tt_op_registration tt_op_softmax;
extern const tt_op_registration tt_op_pad;
extern const tt_op_registration tt_op_quantize;
extern const tt_op_registration tt_op_dequantize;

/* Training ops (CUSTOM, custom_code "TT_..."; docs/train-format.md), in
 * micro_ops/engine/ops/tt_op_train_<name>.c. */
extern const tt_op_registration tt_op_act_mask;
extern const tt_op_registration tt_op_save_slice;
extern const tt_op_registration tt_op_softmax_xent;
extern const tt_op_registration tt_op_conv_2d_grad;
extern const tt_op_registration tt_op_depthwise_conv_2d_grad;
extern const tt_op_registration tt_op_fully_connected_grad;
extern const tt_op_registration tt_op_add_grad;
extern const tt_op_registration tt_op_average_pool_2d_grad;
extern const tt_op_registration tt_op_mean_grad;
extern const tt_op_registration tt_op_max_pool_2d_grad;
extern const tt_op_registration tt_op_pad_grad;
extern const tt_op_registration tt_op_grad_accumulate;
/* Frozen convolution chains run row by row (CUSTOM TT_FUSED_CHAIN). */
extern const tt_op_registration tt_op_fused_chain;
/* Forward MAC ops of partially trainable layers (filter split in slice + rest), in
 * micro_ops/engine/ops/tt_op_train_split_mac.c. */
extern const tt_op_registration tt_op_split_conv_2d;
extern const tt_op_registration tt_op_split_depthwise_conv_2d;
extern const tt_op_registration tt_op_split_fully_connected;

#ifdef __cplusplus
}
#endif
#endif /* TT_OP_H */
