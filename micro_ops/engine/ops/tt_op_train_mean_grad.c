/* TT_MEAN_GRAD: input gradient of a MEAN over H and W (docs/train-format.md). */
#include "tt_mean_backward.h"
#include "tt_op_train_common.h"

/* The kernel's dims, from grad_in in prepare and in each eval (no arena kept): the mean
 * reduced H and W (kept or not), so grad_out is [n, 1, 1, c]. */
typedef struct {
  tt_dims out, in;
} mean_grad_data;

static mean_grad_data dims_of(const tt_tensor *gx) {
  mean_grad_data d;
  d.in = tt_tensor_dims4(gx);
  d.out.n = d.in.n;
  d.out.h = d.out.w = 1;
  d.out.c = d.in.c;
  return d;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *g;
  if (tt_op_num_inputs(ctx) != 2 || tt_op_num_outputs(ctx) != 2)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects inputs grad_out, grad_out_exp and outputs "
                      "grad_in, grad_in_exp");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "grad_out must be int8", &g) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  const tt_tensor *gx = tt_op_output(ctx, 0);
  if (!tt_train_is_exp(tt_op_input(ctx, 1)) || !tt_train_is_exp(tt_op_output(ctx, 1)) ||
      gx->type != TT_TYPE_INT8 || gx->rank != 4)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "grad_in must be int8 NHWC, exponents int32 [1]");
  const mean_grad_data d = dims_of(gx);
  if (tt_tensor_elements(g) != (int64_t)d.out.n * d.out.c)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "grad_out must have n * c elements of grad_in");
  return TT_OK;
}

static tt_status eval(tt_op_ctx *ctx) {
  const int32_t e = tt_train_exp(tt_op_input(ctx, 1));
  if (e == TT_GRAD_NONE) {
    tt_train_no_gradient(ctx);
    return TT_OK;
  }
  const mean_grad_data dd = dims_of(tt_op_output(ctx, 0)), *d = &dd;
  tt_status st = tt_mean_backward(&d->out, (const int8_t *)tt_op_input(ctx, 0)->data, e, &d->in,
                                  (int8_t *)tt_op_output(ctx, 0)->data,
                                  (int32_t *)tt_op_output(ctx, 1)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_mean_grad = {32 /* CUSTOM */, "TT_MEAN_GRAD", prepare, eval, 0,
                                            "TT_MEAN_GRAD"};
