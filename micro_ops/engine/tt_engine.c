/* The C engine: creation (load, validate, resolve, prepare, plan), invoke, and the op-glue
 * accessors of tt_op.h.
 *
 * Arena layout (all offsets from the 16-byte aligned base):
 *   tt_engine | uint32 op data offset per op | uint8 registration id per operator code |
 *   tt_located per variable / online-planned tensor | variables | op persistent data |
 *   planned region (activations, gradients, masks, kernel scratch)
 * Tensor views and op contexts are never stored: an op's context, with a view per input and
 * output built on first use, lives on the stack for one prepare or eval call. */
#include <string.h>

#include "tt_engine_internal.h"

static size_t align_size(size_t x, size_t a) { return (x + (a - 1u)) & ~(a - 1u); }

void tt_engine_model(const tt_engine *e, tt_model *m) {
  m->fb.buf = e->model_bytes.p;
  m->fb.size = e->model_size;
  m->fb.why = NULL;
  m->opcodes = e->opcodes;
  m->buffers = e->buffers;
  m->tensors = e->tensors;
  m->operators = e->operators;
  m->inputs = e->inputs;
  m->outputs = e->outputs;
}

void *tt_engine_alloc(tt_engine *e, size_t bytes, size_t align) {
  size_t start = align_size(e->persistent, align);
  if (start > e->capacity || bytes > e->capacity - start) return NULL;
  e->persistent = (uint32_t)(start + bytes); /* <= capacity */
  return tt_engine_base(e) + start;
}

const char *tt_status_name(tt_status status) {
  switch (status) {
    case TT_OK: return "TT_OK";
    case TT_ERR_MODEL: return "TT_ERR_MODEL";
    case TT_ERR_UNSUPPORTED: return "TT_ERR_UNSUPPORTED";
    case TT_ERR_ARENA: return "TT_ERR_ARENA";
    case TT_ERR_ARG: return "TT_ERR_ARG";
    case TT_ERR_SHAPE: return "TT_ERR_SHAPE";
  }
  return "TT_ERR_UNKNOWN";
}

/* ---- tensors: views rebuilt from the model, memory from the plan ---- */

static uint32_t *op_data_table(const tt_engine *e) {
  return (uint32_t *)(void *)(tt_engine_base(e) + e->op_data);
}

tt_located *tt_engine_located(const tt_engine *e, int32_t t) {
  tt_located *l = (tt_located *)(void *)(tt_engine_base(e) + e->located);
  uint32_t lo = 0, hi = e->num_located;
  while (lo < hi) { /* ascending tensor indices */
    uint32_t mid = lo + (hi - lo) / 2;
    if (l[mid].tensor == (uint32_t)t) return &l[mid];
    if (l[mid].tensor < (uint32_t)t) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

/* The offline plan's offset of tensor t (-1: none; only validated for used tensors). */
static int32_t offline_offset(const tt_engine *e, const tt_model *m, int32_t t) {
  if (e->offline.len == 0) return -1;
  return (int32_t)tt_fb_u32(&m->fb, e->offline.pos + 4u * (uint32_t)t);
}

/* A non-constant, non-variable tensor takes its offset from the offline plan when it has one
 * there (validated at creation for every used tensor with bytes), else from `located`. */
static int offline_placed(const tt_engine *e, const tt_model *m, int32_t t, uint32_t bytes) {
  return bytes > 0 && offline_offset(e, m, t) != -1;
}

uint32_t tt_engine_planned_offset(const tt_engine *e, const tt_model *m, const tt_tensor *v) {
  if (offline_placed(e, m, v->index, v->bytes)) return (uint32_t)offline_offset(e, m, v->index);
  const tt_located *l = tt_engine_located(e, v->index);
  return l != NULL ? l->offset : TT_NO_OFFSET;
}

int tt_engine_tensor_used(const tt_engine *e, const tt_model *m, int32_t t) {
  for (uint32_t k = 0; k < m->inputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &m->inputs, k) == t) return 1;
  for (uint32_t k = 0; k < m->outputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &m->outputs, k) == t) return 1;
  tt_model mm = *m;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    tt_model_opinfo op;
    if (!tt_model_op_view(&mm, (uint32_t)i, &op)) continue;
    for (uint32_t k = 0; k < op.inputs.len; ++k)
      if (tt_fb_vec_i32(&mm.fb, &op.inputs, k) == t) return 1;
    for (uint32_t k = 0; k < op.outputs.len; ++k)
      if (tt_fb_vec_i32(&mm.fb, &op.outputs, k) == t) return 1;
  }
  return 0;
}

/* View of tensor t with its data: the model's bytes for a constant, the arena for the rest
 * (NULL for a planned tensor before planning, or an unused one when `check_used`). */
static int view_of(const tt_engine *e, tt_model *m, int32_t t, tt_tensor *v, int check_used) {
  if (t < 0 || !tt_model_tensor_view(m, (uint32_t)t, v)) return 0;
  if (v->is_constant) return 1;
  uint8_t *base = tt_engine_base(e);
  v->data = NULL;
  if (v->is_variable) {
    const tt_located *l = tt_engine_located(e, t);
    if (l != NULL && l->offset != TT_NO_OFFSET) v->data = base + l->offset;
  } else if (e->phase == TT_PHASE_READY && (!check_used || tt_engine_tensor_used(e, m, t))) {
    const uint32_t off = tt_engine_planned_offset(e, m, v);
    if (off != TT_NO_OFFSET) v->data = base + e->region + off;
  }
  return 1;
}

/* ---- op context: on the stack for one prepare or eval call ---- */

struct tt_op_ctx {
  tt_engine *engine;
  tt_model *model;
  const tt_op_registration *reg;
  int32_t index;
  tt_fb_vector inputs, outputs; /* int32 tensor indices in the model, validated */
  uint32_t options_pos;         /* builtin options table, 0 if absent (defaults apply) */
  tt_fb_vector custom_options;  /* CUSTOM op: FlexBuffer map validated at load, len 0: none */
  /* problems the accessors cannot return, reported by the engine after the call */
  const char *message;
  size_t alloc_failed;          /* bytes of a failed tt_op_alloc_persistent, 0 if none */
  int32_t option_malformed;     /* 1 + field index of a malformed option, 0 if none */
  const char *custom_malformed; /* key of a bad custom option, NULL if none */
  int32_t bad_data;             /* tt_op_set_data given memory not from the arena */
  uint32_t built;               /* bit k: view[k] holds position k (inputs, then outputs) */
  tt_tensor view[TT_MAX_OP_TENSORS];
};

/* Re-reads op i (validated at creation). 0 if the model no longer reads as it did. */
static int start_ctx(tt_engine *e, tt_model *m, int32_t i, tt_op_ctx *ctx) {
  tt_model_opinfo info;
  ctx->engine = e;
  ctx->model = m;
  ctx->index = i;
  ctx->message = NULL;
  ctx->alloc_failed = 0;
  ctx->option_malformed = 0;
  ctx->custom_malformed = NULL;
  ctx->bad_data = 0;
  ctx->built = 0;
  if (!tt_model_op_view(m, (uint32_t)i, &info) || info.opcode_index >= e->opcodes.len) return 0;
  uint8_t options_type;
  const uint8_t *ids = tt_engine_base(e) + e->op_reg;
  ctx->reg = tt_registration(ids[info.opcode_index], &options_type);
  if (ctx->reg == NULL || info.inputs.len + info.outputs.len > TT_MAX_OP_TENSORS) return 0;
  ctx->inputs = info.inputs;
  ctx->outputs = info.outputs;
  ctx->options_pos = 0;
  ctx->custom_options.pos = ctx->custom_options.len = 0;
  if (ctx->reg->builtin_code == TT_BUILTIN_CUSTOM) {
    ctx->custom_options = info.custom_options;
  } else if (info.has_options && options_type != 0 && info.options_type == options_type) {
    /* As TFLM: options of another union type read as absent (defaults). */
    ctx->options_pos = info.options.pos;
  }
  return 1;
}

/* "op N (NAME): message" into err. */
static tt_status op_failed(const tt_op_ctx *ctx, tt_status s, const char *phase, char *err,
                           size_t n) {
  if (s == TT_OK) s = TT_ERR_ARG;
  if (ctx->message != NULL)
    tt_format(err, n, "op %d (%s): %s", ctx->index, ctx->reg->name, ctx->message);
  else
    tt_format(err, n, "op %d (%s): %s failed with %s", ctx->index, ctx->reg->name, phase,
              tt_status_name(s));
  return s;
}

static tt_status op_changed(int32_t i, char *err, size_t n) {
  tt_format(err, n, "op %d no longer reads as at creation: the model bytes changed", i);
  return TT_ERR_MODEL;
}

/* ---- creation ---- */

/* What creation learns from the model before it touches the arena. */
typedef struct {
  uint32_t num_located;
  tt_fb_vector requant, offline;
} load_info;

/* Validates every tensor and op of subgraph 0 (model errors come before arena errors) and
 * counts the `located` entries: variables, and the tensors the offline plan does not place. */
static tt_status load_graph(tt_model *m, load_info *li, char *err, size_t n) {
  if (m->tensors.len > TT_MAX_TENSORS) {
    tt_format(err, n, "model has %u tensors; at most %u are supported", m->tensors.len,
              TT_MAX_TENSORS);
    return TT_ERR_UNSUPPORTED;
  }
  tt_status s = tt_model_requant_table(m, &li->requant, err, n);
  if (s == TT_OK) s = tt_plan_offline_table(m, &li->offline, err, n);
  if (s != TT_OK) return s;
  li->num_located = 0;
  for (uint32_t i = 0; i < m->tensors.len; ++i) {
    tt_tensor t;
    s = tt_model_tensor(m, i, &t, err, n);
    if (s != TT_OK) return s;
    const int32_t off = li->offline.len ? (int32_t)tt_fb_u32(&m->fb, li->offline.pos + 4u * i) : -1;
    if (t.is_variable || (!t.is_constant && (t.bytes == 0 || off == -1))) ++li->num_located;
  }
  for (uint32_t k = 0; k < m->inputs.len; ++k) {
    tt_tensor t;
    const int32_t index = tt_fb_vec_i32(&m->fb, &m->inputs, k);
    if (tt_model_tensor(m, (uint32_t)index, &t, err, n) != TT_OK) return TT_ERR_MODEL;
    if (t.is_constant) {
      tt_format(err, n, "graph input %u is tensor %d, which is constant", k, index);
      return TT_ERR_MODEL;
    }
  }
  for (uint32_t i = 0; i < m->operators.len; ++i) {
    tt_model_opinfo info;
    s = tt_model_op(m, i, &info, err, n);
    if (s != TT_OK) return s;
    const char *code = (const char *)m->fb.buf + info.custom_code.pos;
    uint8_t options_type;
    const tt_op_registration *reg =
        tt_registration(tt_resolve(info.builtin_code, code, info.custom_code.len), &options_type);
    if (reg == NULL) {
      char name[64], supported[400];
      if (info.custom_code.len > 0) tt_format(name, sizeof name, "CUSTOM:%.40s", code);
      else if (tt_builtin_name(info.builtin_code) != NULL)
        tt_format(name, sizeof name, "%s", tt_builtin_name(info.builtin_code));
      else tt_format(name, sizeof name, "builtin %d", info.builtin_code);
      if (info.builtin_code == TT_BUILTIN_CUSTOM) {
        tt_supported_custom_ops(supported, sizeof supported);
        tt_format(err, n, "op %u (%s) is not supported; supported custom ops: %s", i, name,
                  supported);
      } else {
        tt_supported_ops(supported, sizeof supported);
        tt_format(err, n, "op %u (%s) is not supported; supported: %s", i, name, supported);
      }
      return TT_ERR_UNSUPPORTED;
    }
    if (info.inputs.len + info.outputs.len > TT_MAX_OP_TENSORS) {
      tt_format(err, n, "op %u (%s) has %u inputs and outputs; at most %d are supported", i,
                reg->name, info.inputs.len + info.outputs.len, TT_MAX_OP_TENSORS);
      return TT_ERR_UNSUPPORTED;
    }
    /* Custom options are validated once here; the accessors then cannot read out of bounds. */
    tt_flex_map custom;
    if (info.custom_options.len > 0 &&
        !tt_flex_map_open(&custom, m->fb.buf + info.custom_options.pos, info.custom_options.len)) {
      tt_format(err, n, "op %u (%s): %s", i, reg->name, custom.why);
      return TT_ERR_MODEL;
    }
    /* Constants are read in place from the (read-only) model: nothing may write them. */
    for (uint32_t k = 0; k < info.outputs.len; ++k) {
      tt_tensor t;
      const int32_t index = tt_fb_vec_i32(&m->fb, &info.outputs, k);
      if (tt_model_tensor(m, (uint32_t)index, &t, err, n) != TT_OK) return TT_ERR_MODEL;
      if (t.is_constant) {
        tt_format(err, n, "op %u (%s) writes tensor %d, which is constant", i, reg->name, index);
        return TT_ERR_MODEL;
      }
    }
  }
  return TT_OK;
}

/* Fills the registration id of every operator code an op uses, and the `located` entries
 * (offsets unknown yet). The model was validated by load_graph. */
static void fill_tables(tt_engine *e, tt_model *m) {
  uint8_t *ids = tt_engine_base(e) + e->op_reg;
  for (uint32_t i = 0; i < m->operators.len; ++i) {
    tt_model_opinfo info;
    tt_model_op(m, i, &info, NULL, 0);
    ids[info.opcode_index] = tt_resolve(info.builtin_code, (const char *)m->fb.buf +
                                        info.custom_code.pos, info.custom_code.len);
  }
  tt_located *l = (tt_located *)(void *)(tt_engine_base(e) + e->located);
  uint32_t k = 0;
  for (uint32_t i = 0; i < m->tensors.len && k < e->num_located; ++i) {
    tt_tensor t;
    tt_model_tensor_view(m, i, &t);
    if (t.is_variable || (!t.is_constant && !offline_placed(e, m, (int32_t)i, t.bytes))) {
      l[k].tensor = i;
      l[k].offset = TT_NO_OFFSET;
      ++k;
    }
  }
}

/* Persistent arena memory for every variable, holding its initial value. */
static tt_status create_variables(tt_engine *e, tt_model *m, char *err, size_t n) {
  tt_located *l = (tt_located *)(void *)(tt_engine_base(e) + e->located);
  for (uint32_t k = 0; k < e->num_located; ++k) {
    tt_tensor v;
    tt_model_tensor_view(m, l[k].tensor, &v);
    if (!v.is_variable) continue;
    uint8_t *p = (uint8_t *)tt_engine_alloc(e, v.bytes ? v.bytes : 1u, 16);
    if (p == NULL) {
      tt_format(err, n, "arena too small: variable tensor %u needs %lu bytes with %lu of %lu in "
                "use", l[k].tensor, (unsigned long)v.bytes, (unsigned long)(e->persistent + e->pad),
                (unsigned long)(e->capacity + e->pad));
      return TT_ERR_ARENA;
    }
    l[k].offset = (uint32_t)(p - tt_engine_base(e));
    if (v.data != NULL) memcpy(p, v.data, v.bytes); /* initial value in the model */
    else memset(p, 0, v.bytes);
  }
  return TT_OK;
}

static tt_status prepare_ops(tt_engine *e, tt_model *m, char *err, size_t n) {
  tt_op_ctx ctx;
  e->phase = TT_PHASE_PREPARE;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    if (!start_ctx(e, m, i, &ctx)) return op_changed(i, err, n);
    const tt_op_registration *reg = ctx.reg;
    tt_status s = reg->prepare ? reg->prepare(&ctx) : TT_OK;
    if (ctx.alloc_failed) {
      tt_format(err, n, "arena too small: op %d (%s) asked for %lu more persistent bytes with "
                "%lu of %lu in use", i, reg->name, (unsigned long)ctx.alloc_failed,
                (unsigned long)(e->persistent + e->pad), (unsigned long)(e->capacity + e->pad));
      return TT_ERR_ARENA;
    }
    if (ctx.option_malformed) {
      tt_format(err, n, "op %d (%s): builtin option field %d: %s", i, reg->name,
                ctx.option_malformed - 1, m->fb.why ? m->fb.why : "malformed");
      return TT_ERR_MODEL;
    }
    if (ctx.custom_malformed != NULL) {
      tt_format(err, n, "op %d (%s): custom option '%.40s' is not an int32 integer", i, reg->name,
                ctx.custom_malformed);
      return TT_ERR_MODEL;
    }
    if (ctx.bad_data) {
      tt_format(err, n, "op %d (%s): tt_op_set_data needs memory from tt_op_alloc_persistent", i,
                reg->name);
      return TT_ERR_ARG;
    }
    if (s != TT_OK) return op_failed(&ctx, s, "prepare", err, n);
  }
  return TT_OK;
}

static tt_status fail_create(tt_status s, const char *msg, char *err, size_t n) {
  if (err != NULL && n > 0 && msg != err) tt_format(err, n, "%s", msg);
  return s;
}

tt_status tt_engine_create(const uint8_t *model, size_t model_size, uint8_t *arena,
                           size_t arena_size, tt_engine **out, char *err, size_t err_size) {
  char msg[TT_ERR_LEN];
  if (out == NULL) return fail_create(TT_ERR_ARG, "out is NULL", err, err_size);
  *out = NULL;
  if (err != NULL && err_size > 0) err[0] = 0;
  if (model == NULL) return fail_create(TT_ERR_ARG, "model is NULL", err, err_size);
  if (arena == NULL) return fail_create(TT_ERR_ARG, "arena is NULL", err, err_size);

  /* Validate the whole model before touching the arena: model errors come first. */
  tt_model m;
  load_info li;
  tt_status s = tt_model_open(&m, model, model_size, msg, sizeof msg);
  if (s == TT_OK) s = load_graph(&m, &li, msg, sizeof msg);
  if (s != TT_OK) return fail_create(s, msg, err, err_size);

  size_t pad = (size_t)((16u - ((uintptr_t)arena & 15u)) & 15u);
  const size_t num_ops = m.operators.len;
  /* The engine's own tables; everything else is allocated (and checked) as it comes. */
  const size_t tables = align_size(sizeof(tt_engine), 8) + align_size(num_ops * 4u, 8) +
                        align_size(m.opcodes.len, 8) + (size_t)li.num_located * sizeof(tt_located);
  if (arena_size < pad || arena_size - pad < tables) {
    tt_format(msg, sizeof msg, "arena too small: need at least %lu bytes for the engine's "
              "tables, have %lu", (unsigned long)(pad + tables), (unsigned long)arena_size);
    return fail_create(TT_ERR_ARENA, msg, err, err_size);
  }
  tt_engine *e = (tt_engine *)(void *)(arena + pad);
  memset(e, 0, sizeof *e);
  e->model_bytes.bits = 0;
  e->model_bytes.p = model;
  e->model_size = (uint32_t)model_size; /* < 2 GB: checked by tt_model_open */
  e->opcodes = m.opcodes;
  e->buffers = m.buffers;
  e->tensors = m.tensors;
  e->operators = m.operators;
  e->inputs = m.inputs;
  e->outputs = m.outputs;
  e->requant = li.requant;
  e->offline = li.offline;
  e->pad = (uint32_t)pad;
  e->capacity = (uint32_t)(arena_size - pad > TT_MAX_BYTES ? TT_MAX_BYTES : arena_size - pad);
  e->persistent = sizeof(tt_engine);
  e->num_tensors = (int32_t)m.tensors.len;
  e->num_ops = (int32_t)num_ops;
  uint8_t *base = tt_engine_base(e);
  /* Fit by the bound above. */
  e->op_data = (uint32_t)((uint8_t *)tt_engine_alloc(e, num_ops * 4u, 8) - base);
  e->op_reg = (uint32_t)((uint8_t *)tt_engine_alloc(e, m.opcodes.len, 8) - base);
  e->located = (uint32_t)((uint8_t *)tt_engine_alloc(e, li.num_located * sizeof(tt_located), 8) -
                          base);
  e->num_located = li.num_located;
  memset(base + e->op_data, 0, num_ops * 4u);
  memset(base + e->op_reg, 0, m.opcodes.len);
  fill_tables(e, &m);
  s = create_variables(e, &m, msg, sizeof msg);
  if (s == TT_OK) s = prepare_ops(e, &m, msg, sizeof msg);
  size_t temp_bytes = tt_plan_temp_bytes(e->num_tensors, e->num_ops);
  if (s == TT_OK) {
    /* The planner's working memory is the free tail of the arena: where the planned region
     * will be, so it costs nothing unless it is larger than the region (then it counts in
     * tt_engine_arena_used). */
    size_t start = align_size(e->persistent, 16);
    if (start > e->capacity || temp_bytes > e->capacity - start) {
      tt_format(msg, sizeof msg, "arena too small: need at least %lu bytes, have %lu",
                (unsigned long)(pad + start + temp_bytes), (unsigned long)arena_size);
      s = TT_ERR_ARENA;
    } else {
      size_t planned = 0;
      void *temp = base + ((e->capacity - temp_bytes) & ~(size_t)7u);
      s = tt_plan(e, temp, &planned, msg, sizeof msg);
      e->planned = (uint32_t)planned;
    }
  }
  if (s != TT_OK) return fail_create(s, msg, err, err_size);
  size_t start = align_size(e->persistent, 16);
  e->used = (uint32_t)(pad + start + (e->planned > temp_bytes ? e->planned : temp_bytes));
  e->phase = TT_PHASE_READY;
  *out = e;
  return TT_OK;
}

size_t tt_engine_arena_used(const tt_engine *e) { return e ? e->used : 0; }
size_t tt_engine_arena_persistent(const tt_engine *e) {
  return e ? e->pad + align_size(e->persistent, 16) : 0;
}
size_t tt_engine_arena_planned(const tt_engine *e) { return e ? e->planned : 0; }

int32_t tt_engine_num_inputs(const tt_engine *e) { return e ? (int32_t)e->inputs.len : 0; }
int32_t tt_engine_num_outputs(const tt_engine *e) { return e ? (int32_t)e->outputs.len : 0; }

static tt_tensor *io_tensor(tt_engine *e, const tt_fb_vector *v, int32_t i, tt_tensor *view) {
  if (e == NULL || view == NULL || i < 0 || (uint32_t)i >= v->len) return NULL;
  tt_model m;
  tt_engine_model(e, &m);
  return view_of(e, &m, tt_fb_vec_i32(&m.fb, v, (uint32_t)i), view, 0) ? view : NULL;
}
tt_tensor *tt_engine_input(tt_engine *e, int32_t i, tt_tensor *view) {
  return e ? io_tensor(e, &e->inputs, i, view) : NULL;
}
tt_tensor *tt_engine_output(tt_engine *e, int32_t i, tt_tensor *view) {
  return e ? io_tensor(e, &e->outputs, i, view) : NULL;
}

tt_status tt_engine_invoke(tt_engine *e) {
  return tt_engine_invoke_ops(e, 0, e ? e->num_ops : 0);
}

int32_t tt_engine_num_ops(const tt_engine *e) { return e ? e->num_ops : 0; }

tt_status tt_engine_invoke_ops(tt_engine *e, int32_t first, int32_t count) {
  if (e == NULL || e->phase != TT_PHASE_READY || first < 0 || count < 0 ||
      count > e->num_ops - first) {
    return TT_ERR_ARG;
  }
  e->err[0] = 0;
  tt_model m;
  tt_op_ctx ctx;
  tt_engine_model(e, &m);
  for (int32_t i = first; i < first + count; ++i) {
    if (!start_ctx(e, &m, i, &ctx)) return op_changed(i, e->err, sizeof e->err);
    tt_status s = ctx.reg->eval(&ctx);
    if (s != TT_OK) return op_failed(&ctx, s, "eval", e->err, sizeof e->err);
    if (e->poison) tt_plan_poison_after(e, i);
  }
  return TT_OK;
}

tt_status tt_engine_reset(tt_engine *e) {
  if (e == NULL || e->phase != TT_PHASE_READY) return TT_ERR_ARG;
  tt_model m;
  tt_engine_model(e, &m);
  const tt_located *l = (const tt_located *)(const void *)(tt_engine_base(e) + e->located);
  for (uint32_t k = 0; k < e->num_located; ++k) {
    tt_tensor init;
    /* The model was validated at creation and is unchanged: this re-reads it. */
    if (!tt_model_tensor_view(&m, l[k].tensor, &init)) {
      tt_format(e->err, sizeof e->err, "tensor %u no longer reads as at creation",
                l[k].tensor);
      return TT_ERR_MODEL;
    }
    if (!init.is_variable) continue;
    uint8_t *p = tt_engine_base(e) + l[k].offset;
    if (init.data != NULL) memcpy(p, init.data, init.bytes);
    else memset(p, 0, init.bytes);
  }
  return TT_OK;
}

int32_t tt_engine_num_tensors(const tt_engine *e) { return e ? e->num_tensors : 0; }

tt_tensor *tt_engine_tensor(tt_engine *e, int32_t i, tt_tensor *view) {
  if (e == NULL || view == NULL || i < 0 || i >= e->num_tensors) return NULL;
  tt_model m;
  tt_engine_model(e, &m);
  if (!view_of(e, &m, i, view, 1) || view->is_constant) return NULL;
  return view;
}

const char *tt_engine_tensor_name(const tt_engine *e, int32_t i) {
  const char *name = "";
  if (e == NULL || i < 0 || i >= e->num_tensors) return name;
  tt_model m;
  tt_engine_model(e, &m);
  tt_model_tensor_name(&m, (uint32_t)i, &name);
  return name;
}

int32_t tt_engine_find_tensor(const tt_engine *e, const char *name) {
  if (e == NULL || name == NULL) return -1;
  for (int32_t i = 0; i < e->num_tensors; ++i)
    if (strcmp(tt_engine_tensor_name(e, i), name) == 0) return i;
  return -1;
}

int64_t tt_engine_tensor_offset(const tt_engine *e, int32_t i) {
  if (e == NULL || i < 0 || i >= e->num_tensors || e->phase != TT_PHASE_READY) return -1;
  return tt_plan_offset(e, i);
}

void tt_engine_set_poison(tt_engine *e, int enabled) {
  if (e != NULL) e->poison = enabled != 0;
}

const char *tt_engine_error(const tt_engine *e) { return e ? e->err : "no engine"; }

/* ---- tt_op.h: tensors ---- */

float tt_tensor_scale(const tt_tensor *t, int32_t i) {
  if (t->num_quant == 0) return 0.0f;
  if (i < 0 || i >= t->num_quant) i = 0;
  const uint8_t *p = t->scale_vec + 4 + 4 * (size_t)i;
  uint32_t bits = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                  ((uint32_t)p[3] << 24);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

int32_t tt_tensor_zero_point(const tt_tensor *t, int32_t i) {
  if (t->num_quant == 0 || t->zero_point_vec == NULL) return 0;
  const uint8_t *v = t->zero_point_vec;
  uint32_t len = (uint32_t)v[0] | ((uint32_t)v[1] << 8) | ((uint32_t)v[2] << 16) |
                 ((uint32_t)v[3] << 24);
  if (i < 0 || (uint32_t)i >= len) i = 0; /* one zero point shared by all channels */
  const uint8_t *p = v + 4 + 8 * (size_t)i;
  uint64_t u = 0;
  for (int k = 7; k >= 0; --k) u = (u << 8) | p[k];
  return (int32_t)(int64_t)u;
}

/* tt_tensor_elements and tt_tensor_dims4 (independent of the engine) are in tt_tensor.c. */

/* ---- tt_op.h: op context ---- */

int32_t tt_op_index(const tt_op_ctx *ctx) { return ctx->index; }
int32_t tt_op_num_inputs(const tt_op_ctx *ctx) { return (int32_t)ctx->inputs.len; }
int32_t tt_op_num_outputs(const tt_op_ctx *ctx) { return (int32_t)ctx->outputs.len; }

/* The view of position k (inputs first, then outputs), built on first use in this call. */
static tt_tensor *ctx_view(tt_op_ctx *ctx, uint32_t k, int32_t t) {
  tt_tensor *v = &ctx->view[k];
  if (ctx->built & (1u << k)) return v;
  if (!view_of(ctx->engine, ctx->model, t, v, 0)) return NULL;
  ctx->built |= 1u << k;
  return v;
}

tt_tensor *tt_op_input(tt_op_ctx *ctx, int32_t i) {
  if (i < 0 || (uint32_t)i >= ctx->inputs.len) return NULL;
  int32_t t = tt_fb_vec_i32(&ctx->model->fb, &ctx->inputs, (uint32_t)i);
  return t < 0 ? NULL : ctx_view(ctx, (uint32_t)i, t);
}

tt_tensor *tt_op_output(tt_op_ctx *ctx, int32_t i) {
  if (i < 0 || (uint32_t)i >= ctx->outputs.len) return NULL;
  return ctx_view(ctx, ctx->inputs.len + (uint32_t)i,
                  tt_fb_vec_i32(&ctx->model->fb, &ctx->outputs, (uint32_t)i));
}

/* The builtin options table of the op: 1 present (*t set), 0 absent (defaults apply). */
static int op_options(const tt_op_ctx *ctx, tt_fb_table *t) {
  if (ctx->options_pos == 0) return 0;
  /* Validated at load (tt_model_op), so re-opening succeeds. */
  return tt_fb_table_at(&ctx->model->fb, ctx->options_pos, t);
}

/* A malformed option is reported after prepare returns (the accessor cannot fail). */
static void option_malformed(const tt_op_ctx *ctx, int32_t field) {
  tt_op_ctx *c = (tt_op_ctx *)(uintptr_t)ctx;
  if (c->option_malformed == 0) c->option_malformed = field + 1;
}

int32_t tt_op_option_i8(const tt_op_ctx *ctx, int32_t field, int32_t dflt) {
  uint8_t v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_u8(&ctx->model->fb, &t, field, (uint8_t)dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return (int8_t)v;
}

int32_t tt_op_option_i32(const tt_op_ctx *ctx, int32_t field, int32_t dflt) {
  int32_t v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_i32(&ctx->model->fb, &t, field, dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return v;
}

float tt_op_option_f32(const tt_op_ctx *ctx, int32_t field, float dflt) {
  float v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_f32(&ctx->model->fb, &t, field, dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return v;
}

int32_t tt_op_option_i32_vector(const tt_op_ctx *ctx, int32_t field, int32_t *out, int32_t max) {
  tt_fb_vector v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return -1;
  int r = tt_fb_read_vector(&ctx->model->fb, &t, field, 4, &v);
  if (r < 0) option_malformed(ctx, field);
  if (r <= 0) return -1;
  if (v.len > (uint32_t)INT32_MAX) return -1;
  for (uint32_t k = 0; k < v.len && (int64_t)k < (int64_t)max; ++k)
    out[k] = tt_fb_vec_i32(&ctx->model->fb, &v, k);
  return (int32_t)v.len;
}

void *tt_op_alloc_persistent(tt_op_ctx *ctx, size_t bytes) {
  tt_engine *e = ctx->engine;
  if (e->phase != TT_PHASE_PREPARE) return NULL;
  void *p = tt_engine_alloc(e, bytes, 8);
  if (p == NULL && ctx->alloc_failed == 0) ctx->alloc_failed = bytes ? bytes : 1;
  return p;
}

int tt_op_flash_quant(tt_op_ctx *ctx, int32_t channels, const int32_t **multiplier,
                      const int32_t **shift) {
  const tt_engine *e = ctx->engine;
  const tt_fb *fb = &ctx->model->fb;
  const tt_fb_vector *t = &e->requant;
  if (t->len == 0) return 0;
  /* Entries were validated at load: ascending op indices, arrays inside the table. */
  uint32_t lo = 0, hi = tt_fb_u32(fb, t->pos + 4);
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const size_t entry = t->pos + 8u + 16u * (size_t)mid;
    const int32_t op = (int32_t)tt_fb_u32(fb, entry);
    if (op < ctx->index) {
      lo = mid + 1;
    } else if (op > ctx->index) {
      hi = mid;
    } else {
      if ((int32_t)tt_fb_u32(fb, entry + 4) != channels) {
        tt_op_fail(ctx, TT_ERR_MODEL, "tt_requant metadata entry has the wrong channel count");
        return -1;
      }
      *multiplier = (const int32_t *)(const void *)(fb->buf + t->pos + tt_fb_u32(fb, entry + 8));
      *shift = (const int32_t *)(const void *)(fb->buf + t->pos + tt_fb_u32(fb, entry + 12));
      return 1;
    }
  }
  return 0;
}

void tt_op_set_data(tt_op_ctx *ctx, void *data) {
  tt_engine *e = ctx->engine;
  uint8_t *base = tt_engine_base(e), *p = (uint8_t *)data;
  if (p != NULL && (p <= base || p >= base + e->persistent)) {
    ctx->bad_data = 1; /* not arena memory: it could not be found again at eval */
    return;
  }
  op_data_table(e)[ctx->index] = p != NULL ? (uint32_t)(p - base) : 0u;
}

void *tt_op_data(const tt_op_ctx *ctx) {
  const uint32_t off = op_data_table(ctx->engine)[ctx->index];
  return off ? tt_engine_base(ctx->engine) + off : NULL;
}

static tt_scratch *scratch_of(const tt_engine *e, int32_t op) {
  for (uint32_t at = e->scratch; at != 0;) {
    tt_scratch *s = (tt_scratch *)(void *)(tt_engine_base(e) + at);
    if (s->op == (uint32_t)op) return s;
    at = s->next;
  }
  return NULL;
}

tt_status tt_op_request_scratch(tt_op_ctx *ctx, size_t bytes) {
  tt_engine *e = ctx->engine;
  if (e->phase != TT_PHASE_PREPARE)
    return tt_op_fail(ctx, TT_ERR_ARG, "scratch can only be requested in prepare");
  if (bytes > TT_MAX_BYTES) return tt_op_fail(ctx, TT_ERR_ARENA, "scratch request too large");
  tt_scratch *s = scratch_of(e, ctx->index);
  if (s == NULL) {
    s = (tt_scratch *)tt_engine_alloc(e, sizeof *s, 4);
    if (s == NULL) {
      if (ctx->alloc_failed == 0) ctx->alloc_failed = sizeof *s;
      return TT_ERR_ARENA;
    }
    s->op = (uint32_t)ctx->index;
    s->bytes = s->offset = 0;
    s->next = e->scratch;
    e->scratch = (uint32_t)((uint8_t *)s - tt_engine_base(e));
  }
  if (bytes > s->bytes) s->bytes = (uint32_t)bytes;
  return TT_OK;
}

void *tt_op_scratch(const tt_op_ctx *ctx) {
  const tt_engine *e = ctx->engine;
  const tt_scratch *s = e->phase == TT_PHASE_READY ? scratch_of(e, ctx->index) : NULL;
  return s != NULL && s->bytes ? tt_engine_base(e) + e->region + s->offset : NULL;
}

int tt_op_custom_find_i32(const tt_op_ctx *ctx, const char *key, int32_t *out) {
  int64_t v;
  tt_flex_map m; /* the lookup records failure reasons in the map */
  const tt_fb_vector *opts = &ctx->custom_options;
  if (opts->len == 0) return 0;
  /* Validated at load, so the header is all there is to re-read. */
  if (!tt_flex_map_reopen(&m, ctx->model->fb.buf + opts->pos, opts->len)) return -1;
  int r = tt_flex_map_int(&m, key, &v);
  if (r == 0) return 0;
  if (r < 0 || v < INT32_MIN || v > INT32_MAX) {
    tt_op_ctx *c = (tt_op_ctx *)(uintptr_t)ctx;
    if (c->custom_malformed == NULL) c->custom_malformed = key;
    return -1;
  }
  *out = (int32_t)v;
  return 1;
}

int32_t tt_op_custom_i32(const tt_op_ctx *ctx, const char *key, int32_t dflt) {
  int32_t v = dflt;
  return tt_op_custom_find_i32(ctx, key, &v) == 1 ? v : dflt;
}

tt_status tt_op_fail(tt_op_ctx *ctx, tt_status code, const char *message) {
  ctx->message = message;
  return code;
}
