/* Prepare/eval helpers shared by the training ops' glue (micro_ops/engine/ops/tt_op_train_*.c,
 * docs/train-format.md). Numpy twin: tflm_train/ops/training.py. Each check reports its own
 * error through tt_op_fail. */
#ifndef TT_OP_TRAIN_COMMON_H
#define TT_OP_TRAIN_COMMON_H

#include "tt_op.h"
#include "tt_training_util.h"

/* A required integer custom option: TT_ERR_MODEL with `message` if absent. */
tt_status tt_train_opt(tt_op_ctx *ctx, const char *key, int32_t *out, const char *message);
#define TT_TRAIN_OPT(ctx, key, dst)                                                     \
  do {                                                                                 \
    if (tt_train_opt((ctx), key, (dst), "missing custom option '" key "'") != TT_OK) \
      return TT_ERR_MODEL;                                                             \
  } while (0)

/* Input i present with the given type (TT_ERR_UNSUPPORTED with message otherwise). */
tt_status tt_train_input(tt_op_ctx *ctx, int32_t i, int32_t type, const char *message,
                         tt_tensor **out);
/* Tensor t is a gradient exponent: int32 with one element. */
int tt_train_is_exp(const tt_tensor *t);
static inline int32_t tt_train_exp(const tt_tensor *t) { return *(const int32_t *)t->data; }

/* Output k is the op's scratch (docs/train-format.md): the compiler plans every scratch as an
 * op output, so the offline plan covers it. TT_ERR_MODEL unless it is present, of `type` and at
 * least `need` bytes (the kernel's *_scratch_size). */
tt_status tt_train_scratch_output(tt_op_ctx *ctx, int32_t k, int32_t type, int64_t need);

/* No gradient this invoke: every int32 output gets TT_GRAD_NONE, every other output 0. */
void tt_train_no_gradient(tt_op_ctx *ctx);

/* Shared implementation of TT_CONV_2D_GRAD / TT_DEPTHWISE_CONV_2D_GRAD /
 * TT_FULLY_CONNECTED_GRAD. */
enum { TT_TRAIN_CONV_2D, TT_TRAIN_DEPTHWISE_CONV_2D, TT_TRAIN_FULLY_CONNECTED };
tt_status tt_train_mac_grad_prepare(tt_op_ctx *ctx, int32_t kind);
tt_status tt_train_mac_grad_eval(tt_op_ctx *ctx);

#endif /* TT_OP_TRAIN_COMMON_H */
