/* ADD glue: TFLM's AddPrepare / CalculateOpDataAdd for int8, then tt_add.
 * Python twin: tflm_train/ops/add.py. */
#include "tt_add.h"
#include "tt_op.h"
#include "tt_op_checks.h"

enum { OPT_ACTIVATION = 0 }; /* AddOptions (schema.fbs) */

/* Op data is the kernel's params; eval reads the dims from the tensors (less arena). */
typedef tt_add_params tt_add_op_data;

/* Does `t` broadcast to `out` (numpy rules, rank <= 4)? */
static int tt_add_broadcasts(const tt_tensor *t, const tt_tensor *out) {
  int32_t i;
  if (t->rank > out->rank) return 0;
  for (i = 1; i <= t->rank; ++i) {
    const int32_t d = t->dims[t->rank - i];
    if (d != 1 && d != out->dims[out->rank - i]) return 0;
  }
  return 1;
}

static tt_status tt_add_prepare_op(tt_op_ctx *ctx) {
  tt_tensor *a, *b, *out;
  tt_add_op_data *d;
  tt_status st = tt_chk_arity(ctx, 2, 2);
  if (st != TT_OK) return st;
  a = tt_op_input(ctx, 0);
  b = tt_op_input(ctx, 1);
  out = tt_op_output(ctx, 0);
  if (!tt_chk_is_int8(a) || !tt_chk_is_int8(b) || !tt_chk_is_int8(out)) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "inputs and output must be int8 quantized per tensor (supported: int8)");
  }
  if (a->rank > 4 || b->rank > 4 || out->rank > 4) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "rank > 4 is not supported");
  }
  if (!tt_add_broadcasts(a, out) || !tt_add_broadcasts(b, out)) {
    return tt_op_fail(ctx, TT_ERR_SHAPE, "input shapes do not broadcast to the output shape");
  }
  d = (tt_add_op_data *)tt_op_alloc_persistent(ctx, sizeof(*d));
  if (!d) return tt_op_fail(ctx, TT_ERR_ARENA, "arena too small for op data");
  if (tt_add_prepare(tt_tensor_scale(a, 0), tt_tensor_zero_point(a, 0), tt_tensor_scale(b, 0),
                     tt_tensor_zero_point(b, 0), tt_tensor_scale(out, 0),
                     tt_tensor_zero_point(out, 0), d) != TT_OK) {
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED,
                      "input/output scales give a rescale multiplier outside (0, 1)");
  }
  st = tt_chk_activation(ctx, tt_op_option_i8(ctx, OPT_ACTIVATION, TT_ACT_NONE), out,
                         &d->activation);
  if (st != TT_OK) return st;
  tt_op_set_data(ctx, d);
  return TT_OK;
}

static tt_status tt_add_eval(tt_op_ctx *ctx) {
  const tt_add_op_data *d = (const tt_add_op_data *)tt_op_data(ctx);
  const tt_tensor *a = tt_op_input(ctx, 0), *b = tt_op_input(ctx, 1), *out = tt_op_output(ctx, 0);
  const tt_dims a_dims = tt_tensor_dims4(a), b_dims = tt_tensor_dims4(b),
                out_dims = tt_tensor_dims4(out);
  const tt_status st = tt_add(d, &a_dims, (const int8_t *)a->data, &b_dims,
                              (const int8_t *)b->data, &out_dims, (int8_t *)out->data);
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "kernel rejected its arguments");
}

/* In place: tt_add reads element k of each input before it writes output element k, at the
 * same index when that input is not broadcast. The planner aliases only input 0, and only
 * when the output is no larger than it, i.e. when input 0 has the output's shape; input 1 is
 * read through its own buffer (or, as input 0, at the same index). */
const tt_op_registration tt_op_add = {0 /* BuiltinOperator_ADD */, "ADD", tt_add_prepare_op,
                                      tt_add_eval, 1, NULL};
