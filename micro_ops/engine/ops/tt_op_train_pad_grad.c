/* TT_PAD_GRAD: the output gradient of a PAD without its padding; the exponent passes through
 * (docs/train-format.md). Options pad_0 .. pad_{rank-1}: leading pads per dim (default 0). */
#include "tt_op_train_common.h"
#include "tt_pad_backward.h"

/* The kernel's arguments, from the options and shapes in prepare and in each eval (no
 * arena kept). */
typedef struct {
  tt_pad_params params;
  tt_dims out, in;
} pad_grad_data;

/* TT_ERR_SHAPE if the pads do not fit grad_out's and grad_in's shapes. */
static tt_status pads_of(tt_op_ctx *ctx, const tt_tensor *g, const tt_tensor *gx,
                         pad_grad_data *d) {
  static const char *const kKeys[4] = {"pad_0", "pad_1", "pad_2", "pad_3"};
  const int32_t rank = gx->rank, lead = 4 - rank;
  for (int32_t k = 0; k < 4; ++k) d->params.before[k] = d->params.after[k] = 0;
  d->params.pad_value = 0;
  for (int32_t k = 0; k < rank; ++k) {
    int32_t before = tt_op_custom_i32(ctx, kKeys[k], 0);
    int32_t after = g->dims[k] - gx->dims[k] - before;
    if (before < 0 || after < 0)
      return tt_op_fail(ctx, TT_ERR_SHAPE, "pads do not fit grad_out's and grad_in's shapes");
    d->params.before[lead + k] = before;
    d->params.after[lead + k] = after;
  }
  d->out = tt_tensor_dims4(g);
  d->in = tt_tensor_dims4(gx);
  return TT_OK;
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
      gx->type != TT_TYPE_INT8 || gx->rank != g->rank || gx->rank < 1 || gx->rank > 4)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "gradients must be int8 of equal rank <= 4, "
                      "exponents int32 [1]");
  pad_grad_data d;
  return pads_of(ctx, g, gx, &d);
}

static tt_status eval(tt_op_ctx *ctx) {
  const int32_t e = tt_train_exp(tt_op_input(ctx, 1));
  if (e == TT_GRAD_NONE) {
    tt_train_no_gradient(ctx);
    return TT_OK;
  }
  const tt_tensor *g = tt_op_input(ctx, 0), *gx = tt_op_output(ctx, 0);
  pad_grad_data d;
  if (pads_of(ctx, g, gx, &d) != TT_OK) return TT_ERR_SHAPE; /* prepare checked them */
  tt_status st = tt_pad_backward(&d.params, &d.out, (const int8_t *)g->data, &d.in,
                                 (int8_t *)gx->data);
  *(int32_t *)tt_op_output(ctx, 1)->data = e;
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_pad_grad = {32 /* CUSTOM */, "TT_PAD_GRAD", prepare, eval, 0,
                                           "TT_PAD_GRAD"};
