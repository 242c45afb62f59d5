/* Arena planner: lifetimes over op order, in-place aliasing, greedy placement.
 *
 * One buffer per non-constant tensor and one per op scratch request. A buffer lives from the
 * op that first writes it (graph inputs: from the start) to the op that last reads it (graph
 * outputs: to the end; scratch: during its op). Buffers are placed largest first, each at the
 * lowest 16-byte aligned offset that does not overlap a placed buffer whose lifetime overlaps.
 * The output of an op that may alias its input shares input 0's buffer when input 0 dies at
 * that op and is not a graph input or output. */
#include <string.h>

#include "tt_engine_internal.h"

#define ALIGN 16u
#define FLAG_GRAPH_INPUT 1u
#define FLAG_GRAPH_OUTPUT 2u

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

/* Lifetimes; TT_ERR_MODEL if an op reads a tensor nothing has written. */
static tt_status lifetimes(tt_engine *e, plan_buf *b, char *err, size_t n) {
  const tt_model *m = &e->model;
  int32_t last_op = e->num_ops > 0 ? e->num_ops - 1 : 0;
  for (uint32_t k = 0; k < m->inputs.len; ++k) {
    int32_t t = tt_fb_vec_i32(&m->fb, &m->inputs, k);
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
      const tt_tensor *held = t < 0 ? NULL : tt_engine_held(e, t);
      if (held == NULL || held->is_constant) continue;
      if (b[t].first < 0) {
        tt_format(err, n, "op %d (%s) reads tensor %d, which no earlier op writes and which is "
                  "not a graph input", i, op->reg->name, t);
        return TT_ERR_MODEL;
      }
      b[t].last = i;
    }
    for (uint32_t k = 0; k < op->outputs.len; ++k) {
      int32_t t = op_tensor(e, &op->outputs, k);
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
    const tt_tensor *held = tt_engine_held(e, t);
    if (held == NULL || held->is_constant) continue;
    if (b[t].first < 0) {
      tt_format(err, n, "graph output tensor %d is never written", t);
      return TT_ERR_MODEL;
    }
    b[t].last = last_op;
  }
  for (int32_t t = 0; t < e->num_tensors; ++t) {
    const tt_tensor *held = tt_engine_held(e, t);
    if (b[t].first >= 0 && held != NULL && !held->is_constant) b[t].size = (uint32_t)held->bytes;
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
    if (in < 0 || in == out || tt_engine_held(e, in) == NULL) continue;
    if ((b[in].flags | b[out].flags) & FLAG_GRAPH_INPUT) continue;
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
  if (s != TT_OK) return s;
  alias_in_place(e, b);

  /* Order: size descending, then first use (insertion sort keeps it stable and small). */
  int32_t placed = 0;
  for (int32_t i = 0; i < count; ++i) {
    if (b[i].first < 0 || b[i].alias >= 0 || b[i].size == 0) continue;
    int32_t j = placed++;
    while (j > 0 && (b[order[j - 1]].size < b[i].size ||
                     (b[order[j - 1]].size == b[i].size && b[order[j - 1]].first > b[i].first))) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = i;
  }
  uint64_t peak = 0;
  for (int32_t p = 0; p < placed; ++p) {
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
    if (held == NULL || held->is_constant || b[t].first < 0) continue;
    held->data = region + b[root_of(b, t)].offset;
  }
  for (int32_t i = 0; i < e->num_ops; ++i) e->ops[i].scratch_offset = b[e->num_tensors + i].offset;
  e->region = region;
  return TT_OK;
}
