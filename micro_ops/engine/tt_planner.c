/* Arena planner: lifetimes over op order, in-place aliasing, greedy placement.
 *
 * One buffer per non-constant tensor and one per op scratch request. A buffer lives from the
 * op that first writes it (graph inputs: from the start) to the op that last reads it (graph
 * outputs: to the end; scratch: during its op). Buffers are placed largest first, each at the
 * lowest 16-byte aligned offset that does not overlap a placed buffer whose lifetime overlaps.
 * The output of an op that may alias its input shares input 0's buffer when input 0 dies at
 * that op and is not a graph input or output (a streaming op, flag 2, may take a graph
 * input's buffer: TT_FUSED_CHAIN consumes the image).
 *
 * Variables are not planned (persistent memory, see tt_engine.c). When the model carries TFLM's
 * OfflineMemoryAllocation metadata, every tensor with an offset >= 0 is placed there (after
 * validation) and the others are placed greedily around them, as TFLM's planner does. */
#include <string.h>

#include "tt_engine_internal.h"

#define ALIGN 16u
#define FLAG_GRAPH_INPUT 1u
#define FLAG_GRAPH_OUTPUT 2u
#define FLAG_OFFLINE 4u
#define FLAG_PLANNED 8u /* a tensor that gets planned memory: neither constant nor variable */
#define OFFLINE_PLAN_KEY "OfflineMemoryAllocation"

typedef struct {
  uint32_t size, offset;
  int32_t first, last; /* op indices; first = -1: not used */
  int32_t alias;       /* buffer whose memory this one shares, -1 if none */
  uint32_t flags;
} plan_buf;

size_t tt_plan_temp_bytes(int32_t num_tensors, int32_t num_ops) {
  size_t count = (size_t)num_tensors + (size_t)num_ops;
  return count * sizeof(plan_buf) + ((count * sizeof(int32_t) + 7u) & ~(size_t)7u);
}

static uint32_t align_up(uint32_t x) { return (x + (ALIGN - 1u)) & ~(ALIGN - 1u); }

/* Name of the registration of an operator code (for messages). */
static const char *op_name(const tt_engine *e, uint32_t opcode_index) {
  uint8_t options_type;
  const tt_op_registration *reg =
      opcode_index < e->opcodes.len
          ? tt_registration((tt_engine_base(e) + e->op_reg)[opcode_index], &options_type)
          : NULL;
  return reg != NULL ? reg->name : "?";
}

static const tt_scratch *first_scratch(const tt_engine *e) {
  return e->scratch ? (const tt_scratch *)(const void *)(tt_engine_base(e) + e->scratch) : NULL;
}
static const tt_scratch *next_scratch(const tt_engine *e, const tt_scratch *s) {
  return s->next ? (const tt_scratch *)(const void *)(tt_engine_base(e) + s->next) : NULL;
}

/* Lifetimes; TT_ERR_MODEL if an op reads a tensor nothing has written. */
static tt_status lifetimes(tt_engine *e, tt_model *m, plan_buf *b, char *err, size_t n) {
  int32_t last_op = e->num_ops > 0 ? e->num_ops - 1 : 0;
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    tt_tensor v;
    if (tt_model_tensor_view(m, (uint32_t)t, &v) && !v.is_constant && !v.is_variable) {
      b[t].flags |= FLAG_PLANNED;
      b[t].size = v.bytes; /* kept if the tensor turns out used */
    }
  }
  for (uint32_t k = 0; k < m->inputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->inputs, k);
    if (!(b[t].flags & FLAG_PLANNED)) continue;
    b[t].flags |= FLAG_GRAPH_INPUT;
    b[t].first = 0;
    if (b[t].last < 0) b[t].last = 0;
  }
  for (uint32_t k = 0; k < m->outputs.len; ++k)
    b[tt_fb_vec_i32(&m->fb, &m->outputs, k)].flags |= FLAG_GRAPH_OUTPUT;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    tt_model_opinfo op;
    tt_model_op_view(m, (uint32_t)i, &op); /* validated at load */
    for (uint32_t k = 0; k < op.inputs.len; ++k) {
      int32_t t = tt_fb_vec_i32(&m->fb, &op.inputs, k);
      if (t < 0 || !(b[t].flags & FLAG_PLANNED)) continue;
      if (b[t].first < 0) {
        tt_format(err, n, "op %d (%s) reads tensor %d, which no earlier op writes and which is "
                  "not a graph input", i, op_name(e, op.opcode_index), t);
        return TT_ERR_MODEL;
      }
      b[t].last = i;
    }
    for (uint32_t k = 0; k < op.outputs.len; ++k) {
      int32_t t = tt_fb_vec_i32(&m->fb, &op.outputs, k);
      if (!(b[t].flags & FLAG_PLANNED)) continue; /* a variable updated in place */
      if (b[t].first < 0) b[t].first = i;
      if (b[t].last < i) b[t].last = i;
    }
  }
  for (const tt_scratch *s = first_scratch(e); s != NULL; s = next_scratch(e, s)) {
    plan_buf *sb = &b[e->num_tensors + (int32_t)s->op];
    sb->first = sb->last = (int32_t)s->op;
    sb->size = s->bytes;
  }
  for (uint32_t k = 0; k < m->outputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->outputs, k);
    if (!(b[t].flags & FLAG_PLANNED)) continue;
    if (b[t].first < 0) {
      tt_format(err, n, "graph output tensor %d is never written", t);
      return TT_ERR_MODEL;
    }
    b[t].last = last_op;
  }
  for (int32_t t = 0; t < e->num_tensors; ++t)
    if (b[t].first < 0) b[t].size = 0;
  return TT_OK;
}

static int32_t root_of(const plan_buf *b, int32_t i) {
  while (b[i].alias >= 0) i = b[i].alias;
  return i;
}

/* Input 0 and output 0 of op i if its registration lets output 0 share input 0's memory
 * (-1 otherwise, or when it has no input or output). Returns the registration's
 * output_may_alias_input (2: even a graph input's memory), 0 if none. */
static int32_t in_place_io(const tt_engine *e, tt_model *m, int32_t i, int32_t *in,
                           int32_t *out) {
  tt_model_opinfo op;
  uint8_t options_type;
  *in = *out = -1;
  if (!tt_model_op_view(m, (uint32_t)i, &op) || op.opcode_index >= e->opcodes.len) return 0;
  const tt_op_registration *reg =
      tt_registration((tt_engine_base(e) + e->op_reg)[op.opcode_index], &options_type);
  if (reg == NULL || !reg->output_may_alias_input || op.inputs.len < 1 || op.outputs.len < 1)
    return 0;
  *in = tt_fb_vec_i32(&m->fb, &op.inputs, 0);
  *out = tt_fb_vec_i32(&m->fb, &op.outputs, 0);
  return reg->output_may_alias_input;
}

static void alias_in_place(tt_engine *e, tt_model *m, plan_buf *b) {
  for (int32_t i = 0; i < e->num_ops; ++i) {
    int32_t in, out;
    const int32_t kind = in_place_io(e, m, i, &in, &out);
    if (in < 0 || out < 0 || in == out || !(b[in].flags & FLAG_PLANNED) ||
        !(b[out].flags & FLAG_PLANNED))
      continue;
    if ((b[in].flags | b[out].flags) & FLAG_OFFLINE) continue; /* the offline plan decides */
    if ((b[in].flags | b[out].flags) & FLAG_GRAPH_INPUT && kind != 2) continue;
    if (b[in].flags & FLAG_GRAPH_OUTPUT) continue;
    if (b[in].last != i || b[out].first != i || b[out].alias >= 0) continue;
    int32_t root = root_of(b, in);
    /* The shared memory must be dead after op i (another view of it, e.g. a RESHAPE of
     * input 0, may still be read later), and the output no larger than input 0 itself: for
     * an element-wise op that means input 0 is not broadcast, so element k is read at the
     * index it is written. */
    if (b[root].last > i || b[out].size > b[in].size) continue;
    b[out].alias = root;
    if (b[root].last < b[out].last) b[root].last = b[out].last;
  }
}

static int overlaps_in_time(const plan_buf *a, const plan_buf *b) {
  return a->first <= b->last && b->first <= a->last;
}

static int overlaps_in_space(const plan_buf *a, const plan_buf *b) {
  return (uint64_t)a->offset < (uint64_t)b->offset + b->size &&
         (uint64_t)b->offset < (uint64_t)a->offset + a->size;
}

/* In-place sharing the offline plan may express: input 0 of op i dies there and output 0 of
 * op i (no larger, same offset) is born there, and the op allows it. */
static int in_place_pair(const tt_engine *e, tt_model *m, const plan_buf *b, int32_t in,
                         int32_t out) {
  int32_t i = b[in].last;
  if (i < 0 || i >= e->num_ops || b[out].first != i || b[in].offset != b[out].offset ||
      b[out].size > b[in].size)
    return 0;
  int32_t in0, out0;
  const int32_t kind = in_place_io(e, m, i, &in0, &out0);
  return in0 == in && out0 == out &&
         (kind == 2 || !((b[in].flags | b[out].flags) & FLAG_GRAPH_INPUT)) &&
         !(b[in].flags & FLAG_GRAPH_OUTPUT);
}

static const char *tensor_name(tt_model *m, int32_t t) {
  const char *name = "";
  tt_model_tensor_name(m, (uint32_t)t, &name);
  return name;
}

tt_status tt_plan_offline_table(tt_model *m, tt_fb_vector *offsets, char *err, size_t n) {
  tt_fb_vector md;
  offsets->pos = offsets->len = 0;
  int r = tt_model_metadata(m, OFFLINE_PLAN_KEY, &md, err, n);
  if (r <= 0) return r < 0 ? TT_ERR_MODEL : TT_OK;
  const tt_fb *fb = &m->fb;
  if (md.len < 12 || md.len % 4 != 0) {
    tt_format(err, n, OFFLINE_PLAN_KEY " metadata has %u bytes; expected int32 [version, "
              "subgraph, num_tensors, offsets...]", md.len);
    return TT_ERR_MODEL;
  }
  int32_t version = (int32_t)tt_fb_u32(fb, md.pos), subgraph = (int32_t)tt_fb_u32(fb, md.pos + 4);
  int32_t count = (int32_t)tt_fb_u32(fb, md.pos + 8);
  if (version != 0 || subgraph != 0) {
    tt_format(err, n, OFFLINE_PLAN_KEY " version %d, subgraph %d: only version 0 of subgraph 0 "
              "is supported", version, subgraph);
    return TT_ERR_UNSUPPORTED;
  }
  if (count < 0 || (uint32_t)count != m->tensors.len || (md.len - 12) / 4 != m->tensors.len) {
    tt_format(err, n, OFFLINE_PLAN_KEY " has %d offsets (%u bytes) for %u tensors", count,
              md.len, m->tensors.len);
    return TT_ERR_MODEL;
  }
  offsets->pos = md.pos + 12;
  offsets->len = m->tensors.len;
  if (offsets->len == 0) offsets->pos = 0; /* nothing to place: as if absent */
  return TT_OK;
}

/* Validates the offsets of TFLM's OfflineMemoryAllocation (int32 [version 0, subgraph 0,
 * num_tensors, offset per tensor (-1: plan online)], header checked by tt_plan_offline_table).
 * Offsets of tensors that get no planned memory (constants, variables, unused tensors) are
 * ignored, as in TFLM. */
static tt_status offline_plan(tt_engine *e, tt_model *m, plan_buf *b, int32_t *num_offline,
                              char *err, size_t n) {
  *num_offline = 0;
  if (e->offline.len == 0) return TT_OK;
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    int32_t off = (int32_t)tt_fb_u32(&m->fb, e->offline.pos + 4 * (size_t)t);
    if (b[t].first < 0 || b[t].size == 0 || off == -1) continue;
    if (off < 0 || off % (int32_t)ALIGN != 0 ||
        (uint64_t)off + b[t].size > (uint64_t)TT_MAX_BYTES) {
      tt_format(err, n, OFFLINE_PLAN_KEY ": tensor %d '%.40s' has offset %d (%u bytes); offsets "
                "must be -1 or %u-byte aligned and the tensor within %u bytes", t,
                tensor_name(m, t), off, b[t].size, ALIGN, TT_MAX_BYTES);
      return TT_ERR_MODEL;
    }
    b[t].offset = (uint32_t)off;
    b[t].flags |= FLAG_OFFLINE;
    ++*num_offline;
  }
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    if (!(b[t].flags & FLAG_OFFLINE)) continue;
    for (int32_t u = t + 1; u < e->num_tensors; ++u) {
      if (!(b[u].flags & FLAG_OFFLINE) || !overlaps_in_time(&b[t], &b[u]) ||
          !overlaps_in_space(&b[t], &b[u]) || in_place_pair(e, m, b, t, u) ||
          in_place_pair(e, m, b, u, t))
        continue;
      int32_t op = b[t].first > b[u].first ? b[t].first : b[u].first;
      char name_t[48];
      tt_model_opinfo info;
      tt_model_op_view(m, (uint32_t)op, &info);
      tt_format(name_t, sizeof name_t, "%s", tensor_name(m, t));
      tt_format(err, n, OFFLINE_PLAN_KEY ": tensors %d '%.40s' [%u, %u) and %d '%.40s' [%u, %u) "
                "overlap in the arena while both are live at op %d (%s)", t, name_t, b[t].offset,
                b[t].offset + b[t].size, u, tensor_name(m, u), b[u].offset,
                b[u].offset + b[u].size, op, op_name(e, info.opcode_index));
      return TT_ERR_MODEL;
    }
  }
  return TT_OK;
}

tt_status tt_plan(tt_engine *e, void *temp, size_t *peak_out, char *err, size_t n) {
  int32_t count = e->num_tensors + e->num_ops;
  plan_buf *b = (plan_buf *)temp;
  int32_t *order = (int32_t *)(b + count);
  for (int32_t i = 0; i < count; ++i) {
    b[i].size = b[i].offset = 0;
    b[i].first = b[i].last = b[i].alias = -1;
    b[i].flags = 0;
  }
  tt_model m;
  tt_engine_model(e, &m);
  tt_status s = lifetimes(e, &m, b, err, n);
  int32_t fixed = 0;
  if (s == TT_OK) s = offline_plan(e, &m, b, &fixed, err, n);
  if (s != TT_OK) return s;
  alias_in_place(e, &m, b);

  /* Offline-placed buffers first (they are fixed), then the others by size descending, then
   * first use (insertion sort keeps it stable and small). */
  int32_t placed = 0;
  uint64_t peak = 0;
  for (int32_t i = 0; i < count; ++i) {
    if (!(b[i].flags & FLAG_OFFLINE)) continue;
    order[placed++] = i;
    if ((uint64_t)b[i].offset + b[i].size > peak) peak = (uint64_t)b[i].offset + b[i].size;
  }
  for (int32_t i = 0; i < count; ++i) {
    if (b[i].first < 0 || b[i].alias >= 0 || b[i].size == 0 || (b[i].flags & FLAG_OFFLINE))
      continue;
    int32_t j = placed++;
    while (j > fixed && (b[order[j - 1]].size < b[i].size ||
                     (b[order[j - 1]].size == b[i].size && b[order[j - 1]].first > b[i].first))) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = i;
  }
  for (int32_t p = fixed; p < placed; ++p) {
    plan_buf *cur = &b[order[p]];
    uint64_t offset = 0;
    int moved = 1;
    /* Lowest offset clear of every earlier-placed, time-overlapping buffer. Each move goes
     * past a conflicting buffer, and no offset below its end fits, so this is first fit. */
    while (moved) {
      moved = 0;
      for (int32_t q = 0; q < p; ++q) {
        const plan_buf *o = &b[order[q]];
        if (!overlaps_in_time(cur, o)) continue;
        if (offset < (uint64_t)o->offset + o->size && (uint64_t)o->offset < offset + cur->size) {
          offset = align_up(o->offset + o->size);
          moved = 1;
        }
      }
    }
    cur->offset = (uint32_t)offset; /* <= the previous peak, itself <= TT_MAX_BYTES */
    if (offset + cur->size > peak) peak = offset + cur->size;
    if (peak > TT_MAX_BYTES) {
      tt_format(err, n, "planned arena exceeds %u bytes", TT_MAX_BYTES);
      return TT_ERR_ARENA;
    }
  }
  peak = (peak + (ALIGN - 1u)) & ~(uint64_t)(ALIGN - 1u);

  size_t start = (e->persistent + (ALIGN - 1u)) & ~(size_t)(ALIGN - 1u);
  size_t temp_bytes = tt_plan_temp_bytes(e->num_tensors, e->num_ops);
  size_t need = start + ((size_t)peak > temp_bytes ? (size_t)peak : temp_bytes);
  *peak_out = (size_t)peak;
  if (need > e->capacity) {
    tt_format(err, n, "arena too small: need %lu bytes, have %lu (persistent %lu + planned %lu)",
              (unsigned long)(need + e->pad), (unsigned long)(e->capacity + e->pad),
              (unsigned long)start, (unsigned long)peak);
    return TT_ERR_ARENA;
  }
  /* Offline-placed tensors are found in the model's plan; the others get their offset here. */
  tt_located *l = (tt_located *)(void *)(tt_engine_base(e) + e->located);
  for (uint32_t k = 0; k < e->num_located; ++k) {
    const int32_t t = (int32_t)l[k].tensor;
    if (b[t].flags & FLAG_PLANNED)
      l[k].offset = b[t].first >= 0 ? b[root_of(b, t)].offset : TT_NO_OFFSET;
  }
  for (uint32_t at = e->scratch; at != 0;) {
    tt_scratch *sc = (tt_scratch *)(void *)(tt_engine_base(e) + at);
    sc->offset = b[e->num_tensors + (int32_t)sc->op].offset;
    at = sc->next;
  }
  e->region = (uint32_t)start;
  return TT_OK;
}

/* ---- debug poisoning (computed on demand: no arena is spent on lifetimes) ---- */

/* Does op i read (inputs) or write (outputs) tensor t? */
static int op_uses(tt_model *m, int32_t i, int32_t t, int inputs, int outputs) {
  tt_model_opinfo op;
  if (!tt_model_op_view(m, (uint32_t)i, &op)) return 0;
  for (uint32_t k = 0; inputs && k < op.inputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &op.inputs, k) == t) return 1;
  for (uint32_t k = 0; outputs && k < op.outputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &op.outputs, k) == t) return 1;
  return 0;
}

/* Last op that reads or writes t (num_ops for graph outputs: they never die), -1 if none. */
static int32_t last_use(const tt_engine *e, tt_model *m, int32_t t) {
  for (uint32_t k = 0; k < m->outputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &m->outputs, k) == t) return e->num_ops;
  for (int32_t i = e->num_ops - 1; i >= 0; --i)
    if (op_uses(m, i, t, 1, 1)) return i;
  return -1;
}

/* Planned tensor t holds a value after op i: written at or before i (or a graph input) and
 * used after i. */
static int live_after(const tt_engine *e, tt_model *m, int32_t t, int32_t i) {
  if (last_use(e, m, t) <= i) return 0;
  for (uint32_t k = 0; k < m->inputs.len; ++k)
    if (tt_fb_vec_i32(&m->fb, &m->inputs, k) == t) return 1;
  for (int32_t j = 0; j <= i; ++j)
    if (op_uses(m, j, t, 0, 1)) return 1;
  return 0;
}

/* Region range [*a, *a + bytes) of tensor t, which an op uses: 0 if it has none (constant,
 * variable, empty). */
static int planned_range(const tt_engine *e, tt_model *m, int32_t t, size_t *a, size_t *bytes) {
  tt_tensor v;
  if (t < 0 || !tt_model_tensor_view(m, (uint32_t)t, &v) || v.is_constant || v.is_variable ||
      v.bytes == 0)
    return 0;
  const uint32_t off = tt_engine_planned_offset(e, m, &v);
  if (off == TT_NO_OFFSET) return 0;
  *a = off;
  *bytes = v.bytes;
  return 1;
}

/* Fills region bytes [lo, hi) with 0xA5, except those of tensors >= from live after op i. */
static void poison_range(tt_engine *e, tt_model *m, int32_t i, size_t lo, size_t hi,
                         int32_t from) {
  uint8_t *region = tt_engine_base(e) + e->region;
  for (int32_t t = from; t < e->num_tensors && lo < hi; ++t) {
    size_t a, bytes;
    /* an unused tensor's offline offset was never validated: live_after rules it out */
    if (!planned_range(e, m, t, &a, &bytes)) continue;
    size_t z = a + bytes;
    if (z <= lo || a >= hi || !live_after(e, m, t, i)) continue;
    if (a > lo) poison_range(e, m, i, lo, a, t + 1);
    lo = z; /* continue with the part above t */
  }
  if (lo < hi) memset(region + lo, 0xA5, hi - lo);
}

void tt_plan_poison_after(tt_engine *e, int32_t i) {
  tt_model m;
  tt_model_opinfo op;
  tt_engine_model(e, &m);
  if (!tt_model_op_view(&m, (uint32_t)i, &op)) return;
  for (int pass = 0; pass < 2; ++pass) {
    const tt_fb_vector *v = pass ? &op.outputs : &op.inputs;
    for (uint32_t k = 0; k < v->len; ++k) {
      int32_t t = tt_fb_vec_i32(&m.fb, v, k);
      size_t a, bytes;
      if (!planned_range(e, &m, t, &a, &bytes) || last_use(e, &m, t) != i) continue;
      poison_range(e, &m, i, a, a + bytes, 0);
    }
  }
  for (const tt_scratch *s = first_scratch(e); s != NULL; s = next_scratch(e, s))
    if (s->op == (uint32_t)i && s->bytes)
      poison_range(e, &m, i, s->offset, (size_t)s->offset + s->bytes, 0);
}

int64_t tt_plan_offset(const tt_engine *e, int32_t t) {
  tt_model m;
  tt_tensor v;
  tt_engine_model(e, &m);
  if (!tt_engine_tensor_used(e, &m, t) || !tt_model_tensor_view(&m, (uint32_t)t, &v) ||
      v.is_constant || v.is_variable)
    return -1;
  const uint32_t off = tt_engine_planned_offset(e, &m, &v);
  return off == TT_NO_OFFSET ? -1 : (int64_t)off;
}
