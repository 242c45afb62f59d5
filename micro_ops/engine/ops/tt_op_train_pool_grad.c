/* TT_AVERAGE_POOL_2D_GRAD and TT_MAX_POOL_2D_GRAD: input gradients of the pooling ops
 * (docs/train-format.md); max pooling routes through the saved forward input. */
#include "tt_op_train_common.h"
#include "tt_pooling_backward.h"

/* The kernel's arguments, from the options and shapes in prepare and in each eval (no
 * arena kept). */
typedef struct {
  tt_pool_params params;
  tt_dims out, in;
} pool_grad_data;

static tt_status pool_of(tt_op_ctx *ctx, pool_grad_data *d) {
  TT_TRAIN_OPT(ctx, "stride_h", &d->params.stride_h);
  TT_TRAIN_OPT(ctx, "stride_w", &d->params.stride_w);
  TT_TRAIN_OPT(ctx, "filter_h", &d->params.filter_h);
  TT_TRAIN_OPT(ctx, "filter_w", &d->params.filter_w);
  TT_TRAIN_OPT(ctx, "pad_h", &d->params.pad_h);
  TT_TRAIN_OPT(ctx, "pad_w", &d->params.pad_w);
  d->params.activation.min = -128;
  d->params.activation.max = 127;
  d->out = tt_tensor_dims4(tt_op_input(ctx, 0));
  d->in = tt_tensor_dims4(tt_op_output(ctx, 0));
  return TT_OK;
}

static tt_status prepare(tt_op_ctx *ctx, int max_pool) {
  tt_tensor *g;
  if (tt_op_num_inputs(ctx) != 2 + max_pool || tt_op_num_outputs(ctx) != 3)
    return tt_op_fail(ctx, TT_ERR_MODEL, max_pool ? "expects inputs grad_out, grad_out_exp, "
                      "saved_x and outputs grad_in, grad_in_exp, scratch" : "expects inputs "
                      "grad_out, grad_out_exp and outputs grad_in, grad_in_exp, scratch");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "grad_out must be int8", &g) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  const tt_tensor *gx = tt_op_output(ctx, 0);
  if (!tt_train_is_exp(tt_op_input(ctx, 1)) || !tt_train_is_exp(tt_op_output(ctx, 1)) ||
      gx->type != TT_TYPE_INT8 || g->rank != 4 || gx->rank != 4)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "gradients must be int8 NHWC, exponents int32 [1]");
  pool_grad_data dd, *d = &dd;
  if (pool_of(ctx, d) != TT_OK) return TT_ERR_MODEL;
  if (d->params.stride_h < 1 || d->params.stride_w < 1 || d->params.filter_h < 1 ||
      d->params.filter_w < 1 || d->params.pad_h < 0 || d->params.pad_w < 0)
    return tt_op_fail(ctx, TT_ERR_MODEL, "strides and filter sizes must be >= 1, pads >= 0");
  if (max_pool) {
    const tt_tensor *x = tt_op_input(ctx, 2);
    if (x == NULL || x->type != TT_TYPE_INT8 || tt_tensor_elements(x) != tt_tensor_elements(gx))
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "saved_x must be int8 shaped like grad_in");
  }
  /* output 2: one pixel's int32 sums and the 2-bit rounding codes (tt_pow2_stream) */
  return tt_train_scratch_output(ctx, 2, TT_TYPE_INT32,
                                 max_pool ? tt_max_pool_2d_backward_scratch_size(&d->in)
                                          : tt_average_pool_2d_backward_scratch_size(&d->in));
}

static tt_status eval(tt_op_ctx *ctx, int max_pool) {
  const int32_t e = tt_train_exp(tt_op_input(ctx, 1));
  if (e == TT_GRAD_NONE) {
    tt_train_no_gradient(ctx);
    return TT_OK;
  }
  pool_grad_data dd;
  const pool_grad_data *d = &dd;
  if (pool_of(ctx, &dd) != TT_OK) return TT_ERR_MODEL; /* prepare found them */
  const int8_t *g = (const int8_t *)tt_op_input(ctx, 0)->data;
  int8_t *gx = (int8_t *)tt_op_output(ctx, 0)->data;
  int32_t *ex = (int32_t *)tt_op_output(ctx, 1)->data;
  int32_t *scratch = (int32_t *)tt_op_output(ctx, 2)->data;
  tt_status st =
      max_pool ? tt_max_pool_2d_backward(&d->params, &d->out, g, e, &d->in,
                                         (const int8_t *)tt_op_input(ctx, 2)->data, gx, ex,
                                         scratch)
               : tt_average_pool_2d_backward(&d->params, &d->out, g, e, &d->in, gx, ex,
                                             scratch);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

static tt_status avg_prepare(tt_op_ctx *ctx) { return prepare(ctx, 0); }
static tt_status avg_eval(tt_op_ctx *ctx) { return eval(ctx, 0); }
static tt_status max_prepare(tt_op_ctx *ctx) { return prepare(ctx, 1); }
static tt_status max_eval(tt_op_ctx *ctx) { return eval(ctx, 1); }

const tt_op_registration tt_op_average_pool_2d_grad = {
    32 /* CUSTOM */, "TT_AVERAGE_POOL_2D_GRAD", avg_prepare, avg_eval, 0,
    "TT_AVERAGE_POOL_2D_GRAD"};
const tt_op_registration tt_op_max_pool_2d_grad = {32 /* CUSTOM */, "TT_MAX_POOL_2D_GRAD",
                                                   max_prepare, max_eval, 0,
                                                   "TT_MAX_POOL_2D_GRAD"};
