/* PAD (and PADV2) glue: TFLM's PadPrepare (pad_common.cc) for int8, then tt_pad.
 * Python twin: tflm_train/ops/pad.py. */
#include "tt_op.h"
#include "tt_op_checks.h"
#include "tt_pad.h"

typedef struct {
  tt_pad_params params;
  tt_dims input_dims, output_dims;
} tt_pad_op_data;

static tt_status tt_pad_prepare(tt_op_ctx *ctx) {
  tt_tensor *in, *paddings, *out;
  const int32_t *p;
  tt_pad_op_data *d;
  int32_t i, lead;
  tt_status st = tt_chk_arity(ctx, 2, 3);
  if (st != TT_OK) return st;
  in = tt_op_input(ctx, 0);
  paddings = tt_op_input(ctx, 1);
  out = tt_op_output(ctx, 0);
  if (!tt_chk_is_int8(in) || !tt_chk_is_int8(out)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input and output must be int8 quantized per tensor (supported: int8)");
  }
  if (in->rank > 4 || out->rank != in->rank) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "only equal input/output ranks <= 4 are supported");
  }
  st = tt_chk_constant_i32(ctx, paddings, "paddings must be a constant int32 tensor", &p);
  if (st != TT_OK) return st;
  if (tt_tensor_elements(paddings) != 2 * (int64_t)in->rank) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "paddings must hold 2 values per dimension");
  }
  d = (tt_pad_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  lead = 4 - in->rank;
  for (i = 0; i < 4; ++i) d->params.before[i] = d->params.after[i] = 0;
  for (i = 0; i < in->rank; ++i) {
    const int32_t before = p[2 * i], after = p[2 * i + 1];
    if (before < 0 || after < 0 || (int64_t)in->dims[i] + before + after != out->dims[i]) {
      return tt_op_fail(ctx, TT_ERR_SHAPE, "input shape plus paddings is not the output shape");
    }
    d->params.before[lead + i] = before;
    d->params.after[lead + i] = after;
  }
  d->params.pad_value = tt_tensor_zero_point(out, 0);
  if (tt_op_num_inputs(ctx) == 3) { /* PADV2: the constant shares the output's quantization */
    const tt_tensor *c = tt_op_input(ctx, 2);
    if (!tt_chk_is_int8(c) || tt_tensor_elements(c) != 1 ||
        tt_tensor_zero_point(c, 0) != tt_tensor_zero_point(out, 0) ||
        tt_tensor_scale(c, 0) != tt_tensor_scale(out, 0)) {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                        "constant_values must be an int8 scalar quantized like the output");
    }
  }
  d->input_dims = tt_tensor_dims4(in);
  d->output_dims = tt_tensor_dims4(out);
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_pad_eval(tt_op_ctx *ctx) {
  const tt_pad_op_data *d = (const tt_pad_op_data *)tt_op_data(ctx);
  tt_pad_params params = d->params;
  tt_status st;
  if (tt_op_num_inputs(ctx) == 3) params.pad_value = *(const int8_t *)tt_op_input(ctx, 2)->data;
  st = tt_pad(&params, &d->input_dims, (const int8_t *)tt_op_input(ctx, 0)->data,
              &d->output_dims, (int8_t *)tt_op_output(ctx, 0)->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

const tt_op_registration tt_op_pad = {34 /* BuiltinOperator_PAD */, "PAD", tt_pad_prepare,
                                      tt_pad_eval, 0, NULL};
