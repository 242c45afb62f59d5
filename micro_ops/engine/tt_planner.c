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

static int32_t op_tensor(const tt_engine *e, const tt_fb_vector *v, uint32_t k) {
  return tt_fb_vec_i32(&e->model.fb, v, k);
}

/* A tensor that gets planned memory: held, neither constant nor variable. */
static const tt_tensor *planned_tensor(const tt_engine *e, int32_t t) {
  const tt_tensor *h = t < 0 ? NULL : tt_engine_held(e, t);
  return h != NULL && !h->is_constant && !h->is_variable ? h : NULL;
}

/* Lifetimes; TT_ERR_MODEL if an op reads a tensor nothing has written. */
static tt_status lifetimes(tt_engine *e, plan_buf *b, char *err, size_t n) {
  const tt_model *m = &e->model;
  int32_t last_op = e->num_ops > 0 ? e->num_ops - 1 : 0;
  for (uint32_t k = 0; k < m->inputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->inputs, k);
    if (planned_tensor(e, t) == NULL) continue;
    b[t].flags |= FLAG_GRAPH_INPUT;
    b[t].first = 0;
    if (b[t].last < 0) b[t].last = 0;
  }
  for (uint32_t k = 0; k < m->outputs.len; ++k)
    b[tt_fb_vec_i32(&m->fb, &m->outputs, k)].flags |= FLAG_GRAPH_OUTPUT;
  for (int32_t i = 0; i < e->num_ops; ++i) {
    const tt_op_ctx *op = &e->ops[i];
    for (uint32_t k = 0; k < op->inputs.len; ++k) {
      int32_t t = op_tensor(e, &op->inputs, k);
      if (planned_tensor(e, t) == NULL) continue;
      if (b[t].first < 0) {
        tt_format(err, n, "op %d (%s) reads tensor %d, which no earlier op writes and which is "
                  "not a graph input", i, op->reg->name, t);
        return TT_ERR_MODEL;
      }
      b[t].last = i;
    }
    for (uint32_t k = 0; k < op->outputs.len; ++k) {
      int32_t t = op_tensor(e, &op->outputs, k);
      if (planned_tensor(e, t) == NULL) continue; /* a variable updated in place */
      if (b[t].first < 0) b[t].first = i;
      if (b[t].last < i) b[t].last = i;
    }
    if (op->scratch_bytes) {
      plan_buf *s = &b[e->num_tensors + i];
      s->first = s->last = i;
      s->size = op->scratch_bytes;
    }
  }
  for (uint32_t k = 0; k < m->outputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->outputs, k);
    if (planned_tensor(e, t) == NULL) continue;
    if (b[t].first < 0) {
      tt_format(err, n, "graph output tensor %d is never written", t);
      return TT_ERR_MODEL;
    }
    b[t].last = last_op;
  }
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    const tt_tensor *held = planned_tensor(e, t);
    if (b[t].first >= 0 && held != NULL) b[t].size = (uint32_t)held->bytes;
  }
  return TT_OK;
}

static int32_t root_of(const plan_buf *b, int32_t i) {
  while (b[i].alias >= 0) i = b[i].alias;
  return i;
}

static void alias_in_place(tt_engine *e, plan_buf *b) {
  for (int32_t i = 0; i < e->num_ops; ++i) {
    const tt_op_ctx *op = &e->ops[i];
    if (!op->reg->output_may_alias_input || op->inputs.len < 1 || op->outputs.len < 1) continue;
    int32_t in = op_tensor(e, &op->inputs, 0), out = op_tensor(e, &op->outputs, 0);
    if (in < 0 || in == out || planned_tensor(e, in) == NULL || planned_tensor(e, out) == NULL)
      continue;
    if ((b[in].flags | b[out].flags) & FLAG_OFFLINE) continue; /* the offline plan decides */
    if ((b[in].flags | b[out].flags) & FLAG_GRAPH_INPUT && op->reg->output_may_alias_input != 2)
      continue;
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
static int in_place_pair(const tt_engine *e, const plan_buf *b, int32_t in, int32_t out) {
  int32_t i = b[in].last;
  if (i < 0 || i >= e->num_ops || b[out].first != i || b[in].offset != b[out].offset ||
      b[out].size > b[in].size)
    return 0;
  const tt_op_ctx *op = &e->ops[i];
  if (!op->reg->output_may_alias_input || op->inputs.len < 1 || op->outputs.len < 1) return 0;
  const int graph_input_ok = op->reg->output_may_alias_input == 2; /* a streaming op */
  return op_tensor(e, &op->inputs, 0) == in && op_tensor(e, &op->outputs, 0) == out &&
         (graph_input_ok || !((b[in].flags | b[out].flags) & FLAG_GRAPH_INPUT)) &&
         !(b[in].flags & FLAG_GRAPH_OUTPUT);
}

static const char *tensor_name(tt_engine *e, int32_t t) {
  const char *name = "";
  tt_model_tensor_name(&e->model, (uint32_t)t, &name);
  return name;
}

/* Reads and validates TFLM's OfflineMemoryAllocation: int32 [version 0, subgraph 0,
 * num_tensors, offset per tensor (-1: plan online)]. Offsets of tensors that get no planned
 * memory (constants, variables, unused tensors) are ignored, as in TFLM. */
static tt_status offline_plan(tt_engine *e, plan_buf *b, int32_t *num_offline, char *err,
                              size_t n) {
  tt_fb_vector md;
  *num_offline = 0;
  int r = tt_model_metadata(&e->model, OFFLINE_PLAN_KEY, &md, err, n);
  if (r <= 0) return r < 0 ? TT_ERR_MODEL : TT_OK;
  const tt_fb *fb = &e->model.fb;
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
  if (count != e->num_tensors || (md.len - 12) / 4 != (uint32_t)e->num_tensors) {
    tt_format(err, n, OFFLINE_PLAN_KEY " has %d offsets (%u bytes) for %d tensors", count,
              md.len, e->num_tensors);
    return TT_ERR_MODEL;
  }
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    int32_t off = (int32_t)tt_fb_u32(fb, md.pos + 12 + 4 * (size_t)t);
    if (b[t].first < 0 || b[t].size == 0 || off == -1) continue;
    if (off < 0 || off % (int32_t)ALIGN != 0 ||
        (uint64_t)off + b[t].size > (uint64_t)TT_MAX_BYTES) {
      tt_format(err, n, OFFLINE_PLAN_KEY ": tensor %d '%.40s' has offset %d (%u bytes); offsets "
                "must be -1 or %u-byte aligned and the tensor within %u bytes", t,
                tensor_name(e, t), off, b[t].size, ALIGN, TT_MAX_BYTES);
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
          !overlaps_in_space(&b[t], &b[u]) || in_place_pair(e, b, t, u) || in_place_pair(e, b, u, t))
        continue;
      int32_t op = b[t].first > b[u].first ? b[t].first : b[u].first;
      char name_t[48];
      tt_format(name_t, sizeof name_t, "%s", tensor_name(e, t));
      tt_format(err, n, OFFLINE_PLAN_KEY ": tensors %d '%.40s' [%u, %u) and %d '%.40s' [%u, %u) "
                "overlap in the arena while both are live at op %d (%s)", t, name_t, b[t].offset,
                b[t].offset + b[t].size, u, tensor_name(e, u), b[u].offset,
                b[u].offset + b[u].size, op, e->ops[op].reg->name);
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
  tt_status s = lifetimes(e, b, err, n);
  int32_t fixed = 0;
  if (s == TT_OK) s = offline_plan(e, b, &fixed, err, n);
  if (s != TT_OK) return s;
  alias_in_place(e, b);

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
  uint8_t *region = e->base + start;
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    tt_tensor *held = tt_engine_held(e, t);
    if (planned_tensor(e, t) == NULL || b[t].first < 0) continue;
    held->data = region + b[root_of(b, t)].offset;
  }
  for (int32_t i = 0; i < e->num_ops; ++i) e->ops[i].scratch_offset = b[e->num_tensors + i].offset;
  e->region = region;
  return TT_OK;
}

/* ---- debug poisoning (computed on demand: no arena is spent on lifetimes) ---- */

static int is_graph_output(const tt_engine *e, int32_t t) {
  for (uint32_t k = 0; k < e->model.outputs.len; ++k)
    if (tt_fb_vec_i32(&e->model.fb, &e->model.outputs, k) == t) return 1;
  return 0;
}

static int op_uses(const tt_engine *e, int32_t i, int32_t t, int inputs, int outputs) {
  const tt_op_ctx *op = &e->ops[i];
  for (uint32_t k = 0; inputs && k < op->inputs.len; ++k)
    if (op_tensor(e, &op->inputs, k) == t) return 1;
  for (uint32_t k = 0; outputs && k < op->outputs.len; ++k)
    if (op_tensor(e, &op->outputs, k) == t) return 1;
  return 0;
}

/* Last op that reads or writes t (num_ops for graph outputs: they never die). */
static int32_t last_use(const tt_engine *e, int32_t t) {
  if (is_graph_output(e, t)) return e->num_ops;
  for (int32_t i = e->num_ops - 1; i >= 0; --i)
    if (op_uses(e, i, t, 1, 1)) return i;
  return -1;
}

/* Planned tensor t holds a value after op i: written at or before i (or a graph input) and
 * used after i. */
static int live_after(const tt_engine *e, int32_t t, int32_t i) {
  if (last_use(e, t) <= i) return 0;
  for (uint32_t k = 0; k < e->model.inputs.len; ++k)
    if (tt_fb_vec_i32(&e->model.fb, &e->model.inputs, k) == t) return 1;
  for (int32_t j = 0; j <= i; ++j)
    if (op_uses(e, j, t, 0, 1)) return 1;
  return 0;
}

/* Fills region bytes [lo, hi) with 0xA5, except those of tensors >= from live after op i. */
static void poison_range(tt_engine *e, int32_t i, size_t lo, size_t hi, int32_t from) {
  for (int32_t t = from; t < e->num_tensors && lo < hi; ++t) {
    const tt_tensor *h = planned_tensor(e, t);
    if (h == NULL || h->data == NULL || h->bytes == 0) continue;
    size_t a = (size_t)((uint8_t *)h->data - e->region), z = a + h->bytes;
    if (z <= lo || a >= hi || !live_after(e, t, i)) continue;
    if (a > lo) poison_range(e, i, lo, a, t + 1);
    lo = z; /* continue with the part above t */
  }
  if (lo < hi) memset(e->region + lo, 0xA5, hi - lo);
}

void tt_plan_poison_after(tt_engine *e, int32_t i) {
  const tt_op_ctx *op = &e->ops[i];
  for (int pass = 0; pass < 2; ++pass) {
    const tt_fb_vector *v = pass ? &op->outputs : &op->inputs;
    for (uint32_t k = 0; k < v->len; ++k) {
      int32_t t = op_tensor(e, v, k);
      const tt_tensor *h = planned_tensor(e, t);
      if (h == NULL || h->data == NULL || h->bytes == 0 || last_use(e, t) != i) continue;
      size_t a = (size_t)((uint8_t *)h->data - e->region);
      poison_range(e, i, a, a + h->bytes, 0);
    }
  }
  if (op->scratch_bytes)
    poison_range(e, i, op->scratch_offset, (size_t)op->scratch_offset + op->scratch_bytes, 0);
}

int64_t tt_plan_offset(const tt_engine *e, int32_t t) {
  const tt_tensor *h = planned_tensor(e, t);
  if (h == NULL || h->data == NULL) return -1;
  return (int64_t)((uint8_t *)h->data - e->region);
}
