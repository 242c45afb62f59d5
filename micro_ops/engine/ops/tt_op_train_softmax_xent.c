/* TT_SOFTMAX_XENT: softmax cross-entropy loss of the int8 logits and its gradient
 * (docs/train-format.md, docs/training-numerics.md "Loss"). A label < 0 means no label: loss
 * 0 and no gradient (exponent TT_GRAD_NONE). Numpy twin: tflm_train/ops/training.py. */
#include "tt_loss.h"
#include "tt_op_train_common.h"

/* Every constant comes from the compiler (numpy: SoftmaxCrossEntropyParams(**options)), read
 * in prepare and in each eval (no arena kept). */
static tt_status params_of(tt_op_ctx *ctx, tt_softmax_cross_entropy_params *p) {
  TT_TRAIN_OPT(ctx, "input_multiplier", &p->input_multiplier);
  TT_TRAIN_OPT(ctx, "input_left_shift", &p->input_left_shift);
  TT_TRAIN_OPT(ctx, "diff_min", &p->diff_min);
  TT_TRAIN_OPT(ctx, "logit_multiplier", &p->logit_multiplier);
  TT_TRAIN_OPT(ctx, "logit_shift", &p->logit_shift);
  return TT_OK;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *logits, *label;
  if (tt_op_num_inputs(ctx) != 2 || tt_op_num_outputs(ctx) != 4)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects inputs logits, label and outputs loss, grad, "
                      "grad_exp, scratch");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "logits must be int8", &logits) != TT_OK ||
      tt_train_input(ctx, 1, TT_TYPE_INT32, "label must be int32 [1]", &label) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  const tt_tensor *loss = tt_op_output(ctx, 0), *grad = tt_op_output(ctx, 1);
  const int64_t depth = tt_tensor_elements(logits);
  if (logits->rank < 1 || logits->dims[logits->rank - 1] != depth)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "logits must be [1, C] (batch 1)");
  if (depth < 1 || depth > TT_SOFTMAX_CROSS_ENTROPY_MAX_DEPTH)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "number of classes out of range");
  if (tt_tensor_elements(label) != 1 || !tt_train_is_exp(loss) ||
      !tt_train_is_exp(tt_op_output(ctx, 2)) || grad->type != TT_TYPE_INT8 ||
      tt_tensor_elements(grad) != depth)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "label, loss, grad_exp must be int32 [1] and grad "
                      "int8 like the logits");
  tt_softmax_cross_entropy_params p;
  if (params_of(ctx, &p) != TT_OK) return TT_ERR_MODEL;
  /* output 3: the int32 Q0.31 probabilities */
  return tt_train_scratch_output(ctx, 3, TT_TYPE_INT32,
                                 tt_softmax_cross_entropy_scratch_size((int32_t)depth));
}

static tt_status eval(tt_op_ctx *ctx) {
  const tt_tensor *logits = tt_op_input(ctx, 0);
  const int32_t label = *(const int32_t *)tt_op_input(ctx, 1)->data;
  int32_t *loss = (int32_t *)tt_op_output(ctx, 0)->data;
  if (label < 0) { /* inference: no gradient */
    tt_train_no_gradient(ctx);
    *loss = 0;
    return TT_OK;
  }
  tt_softmax_cross_entropy_params p;
  if (params_of(ctx, &p) != TT_OK) return TT_ERR_MODEL; /* prepare found them */
  tt_status st = tt_softmax_cross_entropy(
      &p, (int32_t)tt_tensor_elements(logits), (const int8_t *)logits->data, label, loss,
      (int8_t *)tt_op_output(ctx, 1)->data, (int32_t *)tt_op_output(ctx, 2)->data,
      (int32_t *)tt_op_output(ctx, 3)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "label out of range for the logits");
}

const tt_op_registration tt_op_softmax_xent = {32 /* CUSTOM */, "TT_SOFTMAX_XENT", prepare, eval,
                                               0, "TT_SOFTMAX_XENT"};
