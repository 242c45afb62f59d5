/* TT_ADD_GRAD: the (masked) output gradient of an ADD passed to both inputs; broadcast inputs
 * get the sum over their broadcast dims (docs/train-format.md). */
#include "tt_add_backward.h"
#include "tt_mask.h"
#include "tt_op_train_common.h"

/* The kernel's dims, from the tensors in prepare and in each eval (no arena kept). */
typedef struct {
  tt_dims out, in1, in2;
} add_grad_data;

static add_grad_data dims_of(tt_op_ctx *ctx) {
  add_grad_data d = {tt_tensor_dims4(tt_op_input(ctx, 0)), tt_tensor_dims4(tt_op_output(ctx, 0)),
                     tt_tensor_dims4(tt_op_output(ctx, 2))};
  return d;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *g;
  const int32_t outs = tt_op_num_outputs(ctx);
  if (tt_op_num_inputs(ctx) != 3 || (outs != 4 && outs != 5))
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects inputs grad_out, grad_out_exp, mask and "
                      "outputs grad_in1, exp1, grad_in2, exp2 (and scratch if an input is "
                      "broadcast)");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "grad_out must be int8", &g) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  const tt_tensor *mask = tt_op_input(ctx, 2), *g1 = tt_op_output(ctx, 0),
                  *g2 = tt_op_output(ctx, 2);
  if (!tt_train_is_exp(tt_op_input(ctx, 1)) || !tt_train_is_exp(tt_op_output(ctx, 1)) ||
      !tt_train_is_exp(tt_op_output(ctx, 3)) || g1->type != TT_TYPE_INT8 ||
      g2->type != TT_TYPE_INT8)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "gradients must be int8, exponents int32 [1]");
  if (mask != NULL && (mask->type != TT_TYPE_UINT8 ||
                       tt_tensor_elements(mask) !=
                           tt_activation_mask_size((int32_t)tt_tensor_elements(g))))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "mask must be uint8 [ceil(n/8)] of grad_out");
  const add_grad_data d = dims_of(ctx);
  /* output 4: the scratch of a broadcast input's sums, only when one is broadcast */
  const int32_t need = tt_add_backward_scratch_size(&d.in1, &d.in2, &d.out);
  if (need == 0 && outs == 4) return TT_OK;
  return tt_train_scratch_output(ctx, 4, TT_TYPE_INT32, need);
}

static tt_status eval(tt_op_ctx *ctx) {
  const int32_t e = tt_train_exp(tt_op_input(ctx, 1));
  if (e == TT_GRAD_NONE) {
    tt_train_no_gradient(ctx);
    return TT_OK;
  }
  const tt_tensor *mask = tt_op_input(ctx, 2);
  int32_t *scratch = tt_op_num_outputs(ctx) == 5 ? (int32_t *)tt_op_output(ctx, 4)->data : NULL;
  const add_grad_data dd = dims_of(ctx), *d = &dd;
  tt_status st = tt_add_backward(
      &d->out, (const int8_t *)tt_op_input(ctx, 0)->data, e,
      mask ? (const uint8_t *)mask->data : NULL, &d->in1, (int8_t *)tt_op_output(ctx, 0)->data,
      (int32_t *)tt_op_output(ctx, 1)->data, &d->in2, (int8_t *)tt_op_output(ctx, 2)->data,
      (int32_t *)tt_op_output(ctx, 3)->data, scratch);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_add_grad = {32 /* CUSTOM */, "TT_ADD_GRAD", prepare, eval, 0,
                                           "TT_ADD_GRAD"};
