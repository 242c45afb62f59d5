/* The C engine: creation (load, validate, resolve, prepare, plan), invoke, and the op-glue
 * accessors of tt_op.h. All state lives in the caller's arena. */
#include <string.h>

#include "tt_engine_internal.h"

static size_t align_size(size_t x, size_t a) { return (x + (a - 1u)) & ~(a - 1u); }

void *tt_engine_alloc(tt_engine *e, size_t bytes, size_t align) {
  size_t start = align_size(e->persistent, align);
  if (start > e->capacity || bytes > e->capacity - start) return NULL;
  e->persistent = start + bytes;
  return e->base + start;
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

static void op_name(const tt_model_opinfo *info, const tt_fb *fb, char *buf, size_t n) {
  const char *name = tt_builtin_name(info->builtin_code);
  if (info->custom_code.len > 0) {
    tt_format(buf, n, "CUSTOM:%.40s", (const char *)fb->buf + info->custom_code.pos);
  } else if (name != NULL) {
    tt_format(buf, n, "%s", name);
  } else {
    tt_format(buf, n, "builtin %d", info->builtin_code);
  }
}

/* Validates every tensor and op. With fill, also records which tensors are held (activations
 * and constant graph outputs) and fills the held tensors and the op contexts. */
static tt_status load_graph(tt_engine *e, int fill, char *err, size_t n) {
  tt_model *m = &e->model;
  if (m->tensors.len > TT_MAX_TENSORS) {
    tt_format(err, n, "model has %u tensors; at most %u are supported", m->tensors.len,
              TT_MAX_TENSORS);
    return TT_ERR_UNSUPPORTED;
  }
  uint32_t held = 0;
  for (uint32_t i = 0; i < m->tensors.len; ++i) {
    tt_tensor t;
    tt_status s = tt_model_tensor(m, i, &t, err, n);
    if (s != TT_OK) return s;
    if (!fill) continue;
    int is_output = 0;
    for (uint32_t k = 0; k < m->outputs.len; ++k)
      is_output |= tt_fb_vec_i32(&m->fb, &m->outputs, k) == (int32_t)i;
    if (t.is_constant && !is_output) {
      e->slot[i] = TT_LAZY_CONSTANT;
    } else {
      e->slot[i] = (uint16_t)held;
      if (e->tensors != NULL) e->tensors[held] = t;
      ++held;
    }
  }
  for (uint32_t i = 0; i < m->operators.len; ++i) {
    tt_model_opinfo info;
    tt_status s = tt_model_op(m, i, &info, err, n);
    if (s != TT_OK) return s;
    uint8_t options_type = 0;
    const tt_op_registration *reg;
    if (info.builtin_code == TT_BUILTIN_CUSTOM)
      reg = tt_resolve_custom((const char *)m->fb.buf + info.custom_code.pos, info.custom_code.len);
    else
      reg = tt_resolve_builtin(info.builtin_code, &options_type);
    if (reg == NULL) {
      char name[64], supported[400];
      op_name(&info, &m->fb, name, sizeof name);
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
    /* Custom options are validated once here; the accessors then cannot read out of bounds. */
    tt_flex_map custom;
    memset(&custom, 0, sizeof custom);
    if (info.custom_options.len > 0 &&
        !tt_flex_map_open(&custom, m->fb.buf + info.custom_options.pos, info.custom_options.len)) {
      tt_format(err, n, "op %u (%s): %s", i, reg->name, custom.why);
      return TT_ERR_MODEL;
    }
    if (!fill) {
      if ((int32_t)info.inputs.len > e->num_const_view) e->num_const_view = (int32_t)info.inputs.len;
      continue;
    }
    if (e->ops == NULL) continue;
    tt_op_ctx *op = &e->ops[i];
    memset(op, 0, sizeof *op);
    op->engine = e;
    op->reg = reg;
    op->inputs = info.inputs;
    op->outputs = info.outputs;
    if (info.builtin_code == TT_BUILTIN_CUSTOM) {
      op->opt.custom_options = info.custom_options;
    } else if (info.has_options && options_type != 0 && info.options_type == options_type) {
      /* As TFLM: options of another union type read as absent (defaults). */
      op->opt.options_pos = info.options.pos;
    }
  }
  if (!fill) return TT_OK;
  if (e->ops == NULL) { /* counting pass: the caller sizes e->tensors from this */
    e->num_tensors = (int32_t)held;
    return TT_OK;
  }
  e->num_tensors = (int32_t)m->tensors.len;
  /* Constants are read in place from the (read-only) model: nothing may write them. */
  for (uint32_t k = 0; k < m->inputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->inputs, k);
    const tt_tensor *h = tt_engine_held(e, t);
    if (h == NULL || h->is_constant) {
      tt_format(err, n, "graph input %u is tensor %d, which is constant", k, t);
      return TT_ERR_MODEL;
    }
  }
  for (int32_t i = 0; i < e->num_ops; ++i) {
    const tt_op_ctx *op = &e->ops[i];
    for (uint32_t k = 0; k < op->outputs.len; ++k) {
      int32_t t = tt_fb_vec_i32(&m->fb, &op->outputs, k);
      const tt_tensor *h = tt_engine_held(e, t);
      if (h == NULL || h->is_constant) {
        tt_format(err, n, "op %d (%s) writes tensor %d, which is constant", i, op->reg->name, t);
        return TT_ERR_MODEL;
      }
    }
  }
  return TT_OK;
}

/* Message of an op's failure: "op N (NAME): message". */
static tt_status op_failed(tt_engine *e, const tt_op_ctx *op, tt_status s, const char *phase) {
  if (s == TT_OK) s = TT_ERR_ARG;
  if (e->op_message != NULL)
    tt_format(e->err, sizeof e->err, "op %d (%s): %s", tt_op_index(op), op->reg->name, e->op_message);
  else
    tt_format(e->err, sizeof e->err, "op %d (%s): %s failed with %s", tt_op_index(op), op->reg->name,
              phase, tt_status_name(s));
  return s;
}

static tt_status prepare_ops(tt_engine *e) {
  e->phase = TT_PHASE_PREPARE;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    tt_op_ctx *op = &e->ops[i];
    e->op_message = NULL;
    e->op_alloc_failed = 0;
    e->option_malformed = 0;
    e->custom_malformed = NULL;
    tt_status s = op->reg->prepare ? op->reg->prepare(op) : TT_OK;
    if (e->op_alloc_failed) {
      tt_format(e->err, sizeof e->err, "arena too small: op %d (%s) asked for %lu more persistent "
                "bytes with %lu of %lu in use", i, op->reg->name, (unsigned long)e->op_alloc_failed,
                (unsigned long)(e->persistent + e->pad), (unsigned long)(e->capacity + e->pad));
      return TT_ERR_ARENA;
    }
    if (e->option_malformed) {
      tt_format(e->err, sizeof e->err, "op %d (%s): builtin option field %d: %s", i, op->reg->name,
                e->option_malformed - 1, e->model.fb.why ? e->model.fb.why : "malformed");
      return TT_ERR_MODEL;
    }
    if (e->custom_malformed != NULL) {
      tt_format(e->err, sizeof e->err, "op %d (%s): custom option '%.40s' is not an int32 "
                "integer", i, op->reg->name, e->custom_malformed);
      return TT_ERR_MODEL;
    }
    if (s != TT_OK) return op_failed(e, op, s, "prepare");
  }
  return TT_OK;
}

/* Persistent arena memory for every variable, holding its initial value. */
static tt_status create_variables(tt_engine *e) {
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    tt_tensor *v = tt_engine_held(e, t);
    if (v == NULL || !v->is_variable) continue;
    const void *init = v->data;
    v->data = tt_engine_alloc(e, v->bytes ? v->bytes : 1u, 16);
    if (v->data == NULL) {
      tt_format(e->err, sizeof e->err, "arena too small: variable tensor %d needs %lu bytes with "
                "%lu of %lu in use", t, (unsigned long)v->bytes,
                (unsigned long)(e->persistent + e->pad), (unsigned long)(e->capacity + e->pad));
      return TT_ERR_ARENA;
    }
    if (init != NULL) memcpy(v->data, init, v->bytes);
    else memset(v->data, 0, v->bytes);
  }
  return TT_OK;
}

static tt_status fail_create(tt_status s, const char *msg, char *err, size_t n) {
  if (err != NULL && n > 0 && msg != err) tt_format(err, n, "%s", msg);
  return s;
}

tt_status tt_engine_create(const uint8_t *model, size_t model_size, uint8_t *arena,
                           size_t arena_size, tt_engine **out, char *err, size_t err_size) {
  char local[TT_ERR_LEN];
  if (out == NULL) return fail_create(TT_ERR_ARG, "out is NULL", err, err_size);
  *out = NULL;
  if (err != NULL && err_size > 0) err[0] = 0;
  if (model == NULL) return fail_create(TT_ERR_ARG, "model is NULL", err, err_size);
  if (arena == NULL) return fail_create(TT_ERR_ARG, "arena is NULL", err, err_size);

  /* Validate the whole model before touching the arena: model errors come first. */
  tt_engine probe;
  memset(&probe, 0, sizeof probe);
  tt_status s = tt_model_open(&probe.model, model, model_size, local, sizeof local);
  if (s == TT_OK) s = load_graph(&probe, 0, local, sizeof local);
  if (s == TT_OK) s = tt_model_requant_table(&probe.model, &probe.requant, local, sizeof local);
  if (s != TT_OK) return fail_create(s, local, err, err_size);

  size_t pad = (size_t)((16u - ((uintptr_t)arena & 15u)) & 15u);
  size_t num_tensors = probe.model.tensors.len, num_ops = probe.model.operators.len;
  /* Lower bound (as if every tensor were constant) for the engine's own tables. */
  size_t tables = align_size(sizeof(tt_engine), 8) + align_size(num_tensors * sizeof(uint16_t), 8)
                  + num_ops * sizeof(tt_op_ctx);
  if (arena_size < pad || arena_size - pad < tables) {
    tt_format(local, sizeof local, "arena too small: need at least %lu bytes for the engine's "
              "tensor and op tables, have %lu", (unsigned long)(pad + tables),
              (unsigned long)arena_size);
    return fail_create(TT_ERR_ARENA, local, err, err_size);
  }
  tt_engine *e = (tt_engine *)(arena + pad);
  memset(e, 0, sizeof *e);
  e->model = probe.model;
  e->requant = probe.requant;
  e->base = arena + pad;
  e->capacity = arena_size - pad;
  e->pad = pad;
  e->persistent = sizeof(tt_engine);
  e->num_ops = (int32_t)num_ops;
  e->num_const_view = probe.num_const_view;
  /* A first fill pass without tensor/op storage decides which tensors are held and counts
   * them; then the tables are allocated and a second pass fills them. (The bound above
   * guarantees the slot map fits.) */
  e->slot = (uint16_t *)tt_engine_alloc(e, num_tensors * sizeof(uint16_t), 8);
  s = load_graph(e, 1, e->err, sizeof e->err);
  if (s != TT_OK) return fail_create(s, e->err, err, err_size);
  {
    e->tensors = (tt_tensor *)tt_engine_alloc(e, (size_t)e->num_tensors * sizeof(tt_tensor), 8);
    e->const_view = (tt_tensor *)tt_engine_alloc(e, (size_t)e->num_const_view * sizeof(tt_tensor), 8);
    e->ops = (tt_op_ctx *)tt_engine_alloc(e, num_ops * sizeof(tt_op_ctx), 8);
    if (e->tensors == NULL || e->const_view == NULL || e->ops == NULL) {
      tt_format(e->err, sizeof e->err, "arena too small: need at least %lu bytes for the "
                "engine's tensor and op tables, have %lu",
                (unsigned long)(pad + e->persistent + (size_t)e->num_tensors * sizeof(tt_tensor)
                                + (size_t)e->num_const_view * sizeof(tt_tensor)
                                + num_ops * sizeof(tt_op_ctx)),
                (unsigned long)arena_size);
      return fail_create(TT_ERR_ARENA, e->err, err, err_size);
    }
  }
  s = load_graph(e, 1, e->err, sizeof e->err);
  if (s == TT_OK) s = create_variables(e);
  if (s == TT_OK) s = prepare_ops(e);
  if (s == TT_OK) {
    /* The planner's working memory is the free tail of the arena. */
    size_t temp_bytes = tt_plan_temp_bytes(e->num_tensors, e->num_ops);
    size_t start = align_size(e->persistent, 16);
    if (start > e->capacity || temp_bytes > e->capacity - start) {
      tt_format(e->err, sizeof e->err, "arena too small: need at least %lu bytes, have %lu",
                (unsigned long)(pad + start + temp_bytes), (unsigned long)arena_size);
      s = TT_ERR_ARENA;
    } else {
      void *temp = e->base + ((e->capacity - temp_bytes) & ~(size_t)7u);
      s = tt_plan(e, temp, &e->planned, e->err, sizeof e->err);
    }
  }
  if (s != TT_OK) return fail_create(s, e->err, err, err_size);
  size_t start = align_size(e->persistent, 16);
  size_t temp_bytes = tt_plan_temp_bytes(e->num_tensors, e->num_ops);
  e->used = pad + start + (e->planned > temp_bytes ? e->planned : temp_bytes);
  e->phase = TT_PHASE_READY;
  *out = e;
  return TT_OK;
}

size_t tt_engine_arena_used(const tt_engine *e) { return e ? e->used : 0; }
size_t tt_engine_arena_persistent(const tt_engine *e) {
  return e ? e->pad + align_size(e->persistent, 16) : 0;
}
size_t tt_engine_arena_planned(const tt_engine *e) { return e ? e->planned : 0; }

int32_t tt_engine_num_inputs(const tt_engine *e) { return e ? (int32_t)e->model.inputs.len : 0; }
int32_t tt_engine_num_outputs(const tt_engine *e) { return e ? (int32_t)e->model.outputs.len : 0; }

static tt_tensor *io_tensor(tt_engine *e, const tt_fb_vector *v, int32_t i) {
  if (e == NULL || i < 0 || (uint32_t)i >= v->len) return NULL;
  return tt_engine_held(e, tt_fb_vec_i32(&e->model.fb, v, (uint32_t)i)); /* always held */
}
tt_tensor *tt_engine_input(tt_engine *e, int32_t i) {
  return e ? io_tensor(e, &e->model.inputs, i) : NULL;
}
tt_tensor *tt_engine_output(tt_engine *e, int32_t i) {
  return e ? io_tensor(e, &e->model.outputs, i) : NULL;
}

tt_status tt_engine_invoke(tt_engine *e) {
  if (e == NULL || e->phase != TT_PHASE_READY) return TT_ERR_ARG;
  e->err[0] = 0;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    tt_op_ctx *op = &e->ops[i];
    e->op_message = NULL;
    tt_status s = op->reg->eval(op);
    if (s != TT_OK) return op_failed(e, op, s, "eval");
    if (e->poison) tt_plan_poison_after(e, i);
  }
  return TT_OK;
}

tt_status tt_engine_reset(tt_engine *e) {
  if (e == NULL || e->phase != TT_PHASE_READY) return TT_ERR_ARG;
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    tt_tensor *v = tt_engine_held(e, t);
    if (v == NULL || !v->is_variable) continue;
    tt_tensor init;
    /* The model was validated at creation and is unchanged: this re-reads it. */
    if (tt_model_tensor(&e->model, (uint32_t)t, &init, e->err, sizeof e->err) != TT_OK)
      return TT_ERR_MODEL;
    if (init.data != NULL) memcpy(v->data, init.data, v->bytes);
    else memset(v->data, 0, v->bytes);
  }
  return TT_OK;
}

int32_t tt_engine_num_tensors(const tt_engine *e) { return e ? e->num_tensors : 0; }

tt_tensor *tt_engine_tensor(tt_engine *e, int32_t i) {
  if (e == NULL || i < 0 || i >= e->num_tensors) return NULL;
  tt_tensor *t = tt_engine_held(e, i);
  return t != NULL && !t->is_constant ? t : NULL;
}

const char *tt_engine_tensor_name(const tt_engine *e, int32_t i) {
  const char *name = "";
  if (e == NULL || i < 0 || i >= e->num_tensors) return name;
  tt_model m = e->model; /* the reader records failure reasons in its tt_fb */
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

int32_t tt_op_index(const tt_op_ctx *ctx) { return (int32_t)(ctx - ctx->engine->ops); }
int32_t tt_op_num_inputs(const tt_op_ctx *ctx) { return (int32_t)ctx->inputs.len; }
int32_t tt_op_num_outputs(const tt_op_ctx *ctx) { return (int32_t)ctx->outputs.len; }

tt_tensor *tt_op_input(tt_op_ctx *ctx, int32_t i) {
  tt_engine *e = ctx->engine;
  if (i < 0 || (uint32_t)i >= ctx->inputs.len) return NULL;
  int32_t t = tt_fb_vec_i32(&e->model.fb, &ctx->inputs, (uint32_t)i);
  if (t < 0) return NULL;
  tt_tensor *held = tt_engine_held(e, t);
  if (held != NULL) return held;
  /* A constant: rebuild its view from the (already validated, unchanged) model. One view per
   * input position, so an op's inputs never share one; valid until the next op runs. */
  tt_tensor *view = &e->const_view[i];
  return tt_model_tensor(&e->model, (uint32_t)t, view, NULL, 0) == TT_OK ? view : NULL;
}

tt_tensor *tt_op_output(tt_op_ctx *ctx, int32_t i) {
  if (i < 0 || (uint32_t)i >= ctx->outputs.len) return NULL;
  /* Op outputs are never constant (checked at load), so always held. */
  return tt_engine_held(ctx->engine,
                          tt_fb_vec_i32(&ctx->engine->model.fb, &ctx->outputs, (uint32_t)i));
}

/* The builtin options table of the op: 1 present (*t set), 0 absent (defaults apply). */
static int op_options(const tt_op_ctx *ctx, tt_fb_table *t) {
  if (ctx->reg->builtin_code == TT_BUILTIN_CUSTOM || ctx->opt.options_pos == 0) return 0;
  /* Validated at load (tt_model_op), so re-opening succeeds. */
  return tt_fb_table_at(&ctx->engine->model.fb, ctx->opt.options_pos, t);
}

/* A malformed option is reported after prepare returns (the accessor cannot fail). */
static void option_malformed(const tt_op_ctx *ctx, int32_t field) {
  if (ctx->engine->option_malformed == 0) ctx->engine->option_malformed = field + 1;
}

int32_t tt_op_option_i8(const tt_op_ctx *ctx, int32_t field, int32_t dflt) {
  uint8_t v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_u8(&ctx->engine->model.fb, &t, field, (uint8_t)dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return (int8_t)v;
}

int32_t tt_op_option_i32(const tt_op_ctx *ctx, int32_t field, int32_t dflt) {
  int32_t v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_i32(&ctx->engine->model.fb, &t, field, dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return v;
}

float tt_op_option_f32(const tt_op_ctx *ctx, int32_t field, float dflt) {
  float v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return dflt;
  if (!tt_fb_read_f32(&ctx->engine->model.fb, &t, field, dflt, &v)) {
    option_malformed(ctx, field);
    return dflt;
  }
  return v;
}

int32_t tt_op_option_i32_vector(const tt_op_ctx *ctx, int32_t field, int32_t *out, int32_t max) {
  tt_fb_vector v;
  tt_fb_table t;
  if (!op_options(ctx, &t)) return -1;
  int r = tt_fb_read_vector(&ctx->engine->model.fb, &t, field, 4, &v);
  if (r < 0) option_malformed(ctx, field);
  if (r <= 0) return -1;
  if (v.len > (uint32_t)INT32_MAX) return -1;
  for (uint32_t k = 0; k < v.len && (int64_t)k < (int64_t)max; ++k)
    out[k] = tt_fb_vec_i32(&ctx->engine->model.fb, &v, k);
  return (int32_t)v.len;
}

void *tt_op_alloc_persistent(tt_op_ctx *ctx, size_t bytes) {
  tt_engine *e = ctx->engine;
  if (e->phase != TT_PHASE_PREPARE) return NULL;
  void *p = tt_engine_alloc(e, bytes, 8);
  if (p == NULL && e->op_alloc_failed == 0) e->op_alloc_failed = bytes ? bytes : 1;
  return p;
}

int tt_op_flash_quant(tt_op_ctx *ctx, int32_t channels, const int32_t **multiplier,
                      const int32_t **shift) {
  const tt_engine *e = ctx->engine;
  const tt_fb *fb = &e->model.fb;
  const tt_fb_vector *t = &e->requant;
  if (t->len == 0) return 0;
  const int32_t index = tt_op_index(ctx);
  const uint32_t count = tt_fb_u32(fb, t->pos + 4);
  /* Entries were validated at load: ascending op indices, arrays inside the table. */
  for (uint32_t k = 0; k < count; ++k) {
    const size_t entry = t->pos + 8u + 16u * (size_t)k;
    const int32_t op = (int32_t)tt_fb_u32(fb, entry);
    if (op > index) break;
    if (op < index) continue;
    if ((int32_t)tt_fb_u32(fb, entry + 4) != channels) {
      tt_op_fail(ctx, TT_ERR_MODEL, "tt_requant metadata entry has the wrong channel count");
      return -1;
    }
    *multiplier = (const int32_t *)(const void *)(fb->buf + t->pos + tt_fb_u32(fb, entry + 8));
    *shift = (const int32_t *)(const void *)(fb->buf + t->pos + tt_fb_u32(fb, entry + 12));
    return 1;
  }
  return 0;
}

void tt_op_set_data(tt_op_ctx *ctx, void *data) { ctx->data = data; }
void *tt_op_data(const tt_op_ctx *ctx) { return ctx->data; }

tt_status tt_op_request_scratch(tt_op_ctx *ctx, size_t bytes) {
  if (ctx->engine->phase != TT_PHASE_PREPARE)
    return tt_op_fail(ctx, TT_ERR_ARG, "scratch can only be requested in prepare");
  if (bytes > TT_MAX_BYTES) return tt_op_fail(ctx, TT_ERR_ARENA, "scratch request too large");
  if (bytes > ctx->scratch_bytes) ctx->scratch_bytes = (uint32_t)bytes;
  return TT_OK;
}

void *tt_op_scratch(const tt_op_ctx *ctx) {
  return ctx->scratch_bytes ? ctx->engine->region + ctx->scratch_offset : NULL;
}

int tt_op_custom_find_i32(const tt_op_ctx *ctx, const char *key, int32_t *out) {
  int64_t v;
  tt_flex_map m; /* the lookup records failure reasons in the map */
  if (ctx->reg->builtin_code != TT_BUILTIN_CUSTOM) return 0;
  const tt_fb_vector *opts = &ctx->opt.custom_options;
  if (opts->len == 0) return 0;
  /* Validated at load, so this reopening succeeds. */
  if (!tt_flex_map_open(&m, ctx->engine->model.fb.buf + opts->pos, opts->len)) return -1;
  int r = tt_flex_map_int(&m, key, &v);
  if (r == 0) return 0;
  if (r < 0 || v < INT32_MIN || v > INT32_MAX) {
    if (ctx->engine->custom_malformed == NULL) ctx->engine->custom_malformed = key;
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
  ctx->engine->op_message = message;
  return code;
}
