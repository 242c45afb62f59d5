/* TT_SAVE_SLICE: keeps the first `channels` channels of a forward activation for the weight
 * gradient of a partially trainable layer (docs/train-format.md). */
#include "tt_op_train_common.h"

/* Re-read in each eval from the input's shape and the options (no arena kept). */
typedef struct {
  tt_dims dims;
  int32_t channels;
} save_slice_data;

static tt_status slice_of(tt_op_ctx *ctx, const tt_tensor *x, save_slice_data *d) {
  TT_TRAIN_OPT(ctx, "channels", &d->channels);
  d->dims = tt_tensor_dims4(x);
  return TT_OK;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_tensor *x;
  if (tt_op_num_inputs(ctx) != 1 || tt_op_num_outputs(ctx) != 1)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects 1 input and 1 output");
  if (tt_train_input(ctx, 0, TT_TYPE_INT8, "x must be int8", &x) != TT_OK) return TT_ERR_UNSUPPORTED;
  save_slice_data dd, *d = &dd;
  if (slice_of(ctx, x, d) != TT_OK) return TT_ERR_MODEL;
  const tt_tensor *out = tt_op_output(ctx, 0);
  if (d->channels < 1 || d->channels > d->dims.c)
    return tt_op_fail(ctx, TT_ERR_MODEL, "channels must be in 1..x's channel count");
  if (out->type != TT_TYPE_INT8 ||
      tt_tensor_elements(out) != (int64_t)d->dims.n * d->dims.h * d->dims.w * d->channels)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "x_slice must be int8 [n, h, w, channels]");
  return TT_OK;
}

static tt_status eval(tt_op_ctx *ctx) {
  const tt_tensor *x = tt_op_input(ctx, 0);
  save_slice_data d;
  if (slice_of(ctx, x, &d) != TT_OK) return TT_ERR_MODEL; /* prepare found it */
  tt_save_slice(&d.dims, (const int8_t *)x->data, d.channels,
                (int8_t *)tt_op_output(ctx, 0)->data);
  return TT_OK;
}

const tt_op_registration tt_op_save_slice = {32 /* CUSTOM */, "TT_SAVE_SLICE", prepare, eval, 0,
                                             "TT_SAVE_SLICE"};
