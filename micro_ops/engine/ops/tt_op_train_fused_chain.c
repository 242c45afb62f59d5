/* TT_FUSED_CHAIN glue: a chain of frozen convolutions run row by row (docs/train-format.md).
 * A forward op, named with the training ops because only the training compiler emits it.
 * Inputs: x, then per stage (filter, bias or -1, multiplier int32[c], shift int32[c]);
 * outputs: y, scratch. Options: "stages" and per stage i "s<i>_<key>" (ops/fused_chain.py
 * STAGE_KEYS). Nothing is kept in the arena: eval re-reads the options (integers) and the
 * constants from the model. Python twin: tflm_train/ops/fused_chain.py. */
#include "tt_fused_chain.h"
#include "tt_op_train_common.h"

/* Option `key` of stage i ("s<i>_<key>"; i < 8, so one digit). */
static int stage_opt(tt_op_ctx *ctx, int32_t i, const char *key, int32_t *out) {
  char name[32];
  size_t n = 0;
  name[n++] = 's';
  name[n++] = (char)('0' + i);
  name[n++] = '_';
  while (*key && n + 1 < sizeof name) name[n++] = *key++;
  name[n] = '\0';
  return tt_op_custom_find_i32(ctx, name, out) == 1;
}

static int constant_of(const tt_tensor *t, int32_t type, int32_t elements) {
  return t != NULL && t->is_constant && t->type == type &&
         (elements < 0 || tt_tensor_elements(t) == elements);
}

/* Reads and validates the chain into *p (filters and constants point into the model). */
static tt_status load(tt_op_ctx *ctx, tt_fused_chain_params *p, tt_dims *in_dims) {
  int32_t n = 0;
  if (tt_op_custom_find_i32(ctx, "stages", &n) != 1 || n < 1 || n > TT_FUSED_CHAIN_MAX_STAGES)
    return tt_op_fail(ctx, TT_ERR_MODEL, "option 'stages' must be 1..5");
  if (tt_op_num_inputs(ctx) != 1 + 4 * n || tt_op_num_outputs(ctx) != 2)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects 1 + 4 inputs per stage and 2 outputs");
  const tt_tensor *x = tt_op_input(ctx, 0);
  if (x == NULL || x->type != TT_TYPE_INT8 || x->rank != 4 || x->dims[0] != 1)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "x must be int8 [1, h, w, c]");
  *in_dims = tt_tensor_dims4(x);
  p->num_stages = n;
  int32_t c_in = in_dims->c;
  for (int32_t i = 0; i < n; ++i) {
    tt_fused_stage *s = &p->stage[i];
    int32_t v[17];
    static const char *const keys[17] = {"kind", "stride_h", "stride_w", "dilation_h",
                                         "dilation_w", "pad_h", "pad_w", "depth_multiplier",
                                         "input_offset", "output_offset", "act_min", "act_max",
                                         "h", "w", "c", "padding", "activation"};
    for (int32_t k = 0; k < 17; ++k)
      if (!stage_opt(ctx, i, keys[k], &v[k]))
        return tt_op_fail(ctx, TT_ERR_MODEL, "a stage option s<i>_<key> is missing");
    s->kind = v[0];
    s->params.stride_h = v[1];
    s->params.stride_w = v[2];
    s->params.dilation_h = v[3];
    s->params.dilation_w = v[4];
    s->params.pad_h = v[5];
    s->params.pad_w = v[6];
    s->depth_multiplier = v[7];
    s->params.input_offset = v[8];
    s->params.output_offset = v[9];
    s->params.activation.min = v[10];
    s->params.activation.max = v[11];
    s->output_dims.n = 1;
    s->output_dims.h = v[12];
    s->output_dims.w = v[13];
    s->output_dims.c = v[14];
    if (v[8] < -127 || v[8] > 128 || v[9] < -128 || v[9] > 127 || v[10] < -128 ||
        v[11] > 127 || v[10] > v[11])
      return tt_op_fail(ctx, TT_ERR_MODEL, "a stage's offsets or clamp range are out of int8");
    const int32_t c = v[14];
    const tt_tensor *f = tt_op_input(ctx, 1 + 4 * i), *b = tt_op_input(ctx, 2 + 4 * i);
    const tt_tensor *m = tt_op_input(ctx, 3 + 4 * i), *sh = tt_op_input(ctx, 4 + 4 * i);
    if (!constant_of(f, TT_TYPE_INT8, -1) || f->rank != 4)
      return tt_op_fail(ctx, TT_ERR_MODEL, "a stage's filter must be a constant int8 rank-4 tensor");
    s->filter_dims = tt_tensor_dims4(f);
    if (s->kind == TT_FUSED_CONV) {
      if (s->filter_dims.n != c || s->filter_dims.c != c_in)
        return tt_op_fail(ctx, TT_ERR_SHAPE, "a conv stage's filter is not [c, kh, kw, c_in]");
    } else if (s->kind == TT_FUSED_DEPTHWISE) {
      if (s->filter_dims.n != 1 || s->filter_dims.c != c || s->depth_multiplier < 1 ||
          (int64_t)c_in * s->depth_multiplier != c)
        return tt_op_fail(ctx, TT_ERR_SHAPE,
                          "a depthwise stage's filter is not [1, kh, kw, c_in * multiplier]");
    } else {
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "stage kind must be 0 (conv) or 1 (depthwise)");
    }
    if (b != NULL && !constant_of(b, TT_TYPE_INT32, c))
      return tt_op_fail(ctx, TT_ERR_MODEL, "a stage's bias must be a constant int32 [c]");
    if (!constant_of(m, TT_TYPE_INT32, c) || !constant_of(sh, TT_TYPE_INT32, c))
      return tt_op_fail(ctx, TT_ERR_MODEL,
                        "a stage's multiplier and shift must be constant int32 [c]");
    s->filter = (const int8_t *)f->data;
    s->bias = b != NULL ? (const int32_t *)b->data : NULL;
    s->quant.multiplier = (const int32_t *)m->data;
    s->quant.shift = (const int32_t *)sh->data;
    c_in = c;
  }
  const tt_tensor *y = tt_op_output(ctx, 0);
  const tt_dims *o = &p->stage[n - 1].output_dims;
  if (y->type != TT_TYPE_INT8 || y->rank != 4 || y->dims[0] != 1 || y->dims[1] != o->h ||
      y->dims[2] != o->w || y->dims[3] != o->c)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "y must be int8 with the last stage's shape");
  return TT_OK;
}

static tt_status prepare(tt_op_ctx *ctx) {
  tt_fused_chain_params p;
  tt_dims in;
  tt_status st = load(ctx, &p, &in);
  if (st != TT_OK) return st;
  /* geometry (every output row/column reads the input) and shift ranges, once */
  if (tt_fused_chain_validate(&p, &in) != TT_OK)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "a stage's strides, padding or output size leave "
                      "output rows or columns without input");
  for (int32_t i = 0; i < p.num_stages; ++i) {
    for (int32_t c = 0; c < p.stage[i].output_dims.c; ++c) {
      const int32_t m = p.stage[i].quant.multiplier[c], s = p.stage[i].quant.shift[c];
      if (m < 0 || s < -31 || s > 30)
        return tt_op_fail(ctx, TT_ERR_MODEL, "a stage's requantization constant is out of range");
    }
  }
  const int32_t need = tt_fused_chain_scratch_size(&p);
  if (need < 0) return tt_op_fail(ctx, TT_ERR_SHAPE, "scratch too large");
  return tt_train_scratch_output(ctx, 1, TT_TYPE_INT8, need);
}

static tt_status eval(tt_op_ctx *ctx) {
  tt_fused_chain_params p;
  tt_dims in;
  tt_status st = load(ctx, &p, &in);
  if (st != TT_OK) return st;
  const tt_tensor *x = tt_op_input(ctx, 0), *y = tt_op_output(ctx, 0), *s = tt_op_output(ctx, 1);
  const tt_dims out = tt_tensor_dims4(y);
  st = tt_fused_chain(&p, &in, (const int8_t *)x->data, &out, (int8_t *)y->data,
                      (int8_t *)s->data);
  if (st == TT_ERR_ARG)
    return tt_op_fail(ctx, st, "the output overlaps input rows still to be read (bad plan)");
  return st == TT_OK ? TT_OK : tt_op_fail(ctx, st, "the chain's geometry is not supported");
}

/* output_may_alias_input 2: y may take x's memory even when x is a graph input (the image is
 * consumed); the kernel checks each row it writes. */
const tt_op_registration tt_op_fused_chain = {32 /* CUSTOM */, "TT_FUSED_CHAIN", prepare, eval, 2,
                                              "TT_FUSED_CHAIN"};
