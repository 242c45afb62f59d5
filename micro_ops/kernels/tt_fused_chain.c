/* FUSED_CHAIN int8 kernel: the row schedule of tt_fused_chain.h over the conv kernels. */
#include "tt_fused_chain.h"

#include <string.h>

#include "tt_depthwise_conv_2d.h"

/* Rows of one stage's output held for the next stage: absolute rows [first, first + count). */
typedef struct {
  int8_t *rows;
  int32_t cap, first, count;
  size_t row_bytes;
} tt_fused_window;

typedef struct {
  const tt_fused_chain_params *p;
  const tt_dims *in_dims;
  const int8_t *input;
  tt_fused_window win[TT_FUSED_CHAIN_MAX_STAGES];
  int32_t produced0; /* rows of stage 0 produced so far (the schedule's input cursor) */
  int dry;           /* count rows only (tt_fused_chain_in_place) */
} tt_fused_run;

static size_t align4(size_t n) { return (n + 3u) & ~(size_t)3u; }

static int32_t window_rows(const tt_fused_stage *s) {
  return (s->filter_dims.h - 1) * s->params.dilation_h + 1;
}

static const tt_dims *stage_input_dims(const tt_fused_run *r, int32_t k) {
  return k == 0 ? r->in_dims : &r->p->stage[k - 1].output_dims;
}

/* [lo, hi) input rows that output row j of stage k reads. */
static void input_rows(const tt_fused_run *r, int32_t k, int32_t j, int32_t *lo, int32_t *hi) {
  const tt_fused_stage *s = &r->p->stage[k];
  const int32_t top = j * s->params.stride_h - s->params.pad_h, h = stage_input_dims(r, k)->h;
  *lo = top > 0 ? top : 0;
  *hi = top + window_rows(s) < h ? top + window_rows(s) : h;
}

static tt_status produce(tt_fused_run *r, int32_t k, int32_t j, int8_t *dst);

/* Make stage k's window hold its rows up to `upto` (exclusive), dropping the oldest. */
static tt_status ensure(tt_fused_run *r, int32_t k, int32_t upto) {
  tt_fused_window *w = &r->win[k];
  while (w->first + w->count < upto) {
    if (w->count == w->cap) {
      if (!r->dry) memmove(w->rows, w->rows + w->row_bytes, (size_t)(w->cap - 1) * w->row_bytes);
      ++w->first;
      --w->count;
    }
    int8_t *dst = r->dry ? NULL : w->rows + (size_t)w->count * w->row_bytes;
    tt_status s = produce(r, k, w->first + w->count, dst);
    if (s != TT_OK) return s;
    ++w->count;
  }
  return TT_OK;
}

/* Row j of stage k's output into dst: the stage's kernel on the window of input rows, with
 * the leading padding that window implies. */
static tt_status produce(tt_fused_run *r, int32_t k, int32_t j, int8_t *dst) {
  const tt_fused_stage *s = &r->p->stage[k];
  const tt_dims *in = stage_input_dims(r, k);
  int32_t lo, hi;
  input_rows(r, k, j, &lo, &hi);
  if (hi <= lo) return TT_ERR_SHAPE;
  const int8_t *src;
  if (k == 0) {
    src = r->dry ? NULL : r->input + (size_t)lo * (size_t)in->w * (size_t)in->c;
    r->produced0 = j + 1;
  } else {
    tt_status st = ensure(r, k - 1, hi);
    if (st != TT_OK) return st;
    const tt_fused_window *w = &r->win[k - 1];
    if (lo < w->first) return TT_ERR_SHAPE; /* cannot happen with a window of kernel rows */
    src = r->dry ? NULL : w->rows + (size_t)(lo - w->first) * w->row_bytes;
  }
  if (r->dry) return TT_OK;
  const tt_dims view = {1, hi - lo, in->w, in->c};
  const tt_dims row = {1, 1, s->output_dims.w, s->output_dims.c};
  const int32_t pad_h = lo - (j * s->params.stride_h - s->params.pad_h);
  if (s->kind == TT_FUSED_CONV) {
    tt_conv_2d_params cp = s->params;
    cp.pad_h = pad_h;
    return tt_conv_2d(&cp, &s->quant, &view, src, &s->filter_dims, s->filter, s->bias, &row, dst);
  }
  const tt_depthwise_conv_2d_params dp = {
      s->params.input_offset, s->params.output_offset, s->params.stride_w, s->params.stride_h,
      s->params.dilation_w,   s->params.dilation_h,    s->params.pad_w,    pad_h,
      s->depth_multiplier,    s->params.activation};
  return tt_depthwise_conv_2d(&dp, &s->quant, &view, src, &s->filter_dims, s->filter, s->bias,
                              &row, dst);
}

static size_t dims_row_bytes(const tt_dims *d) { return (size_t)d->w * (size_t)d->c; }

tt_status tt_fused_chain_validate(const tt_fused_chain_params *p, const tt_dims *in) {
  if (p->num_stages < 1 || p->num_stages > TT_FUSED_CHAIN_MAX_STAGES || in->n != 1)
    return TT_ERR_ARG;
  const tt_dims *prev = in;
  for (int32_t k = 0; k < p->num_stages; ++k) {
    const tt_fused_stage *s = &p->stage[k];
    const tt_conv_2d_params *c = &s->params;
    const tt_dims *o = &s->output_dims;
    if (c->stride_h < 1 || c->stride_w < 1 || c->dilation_h < 1 || c->dilation_w < 1 ||
        c->pad_h < 0 || c->pad_w < 0 || o->n != 1 || o->h < 1 || o->w < 1 || o->c < 1 ||
        s->filter_dims.h < 1 || s->filter_dims.w < 1)
      return TT_ERR_SHAPE;
    const int32_t kh = (s->filter_dims.h - 1) * c->dilation_h + 1;
    const int32_t kw = (s->filter_dims.w - 1) * c->dilation_w + 1;
    /* every output row and column reads at least one input row/column */
    if (kh <= c->pad_h || kw <= c->pad_w ||
        (int64_t)(o->h - 1) * c->stride_h - c->pad_h >= prev->h ||
        (int64_t)(o->w - 1) * c->stride_w - c->pad_w >= prev->w)
      return TT_ERR_SHAPE;
    prev = o;
  }
  return TT_OK;
}

int32_t tt_fused_chain_scratch_size(const tt_fused_chain_params *p) {
  size_t total = 0;
  for (int32_t k = 0; k + 1 < p->num_stages; ++k)
    total += align4((size_t)window_rows(&p->stage[k + 1]) * dims_row_bytes(&p->stage[k].output_dims));
  if (p->num_stages == 1) total += align4(dims_row_bytes(&p->stage[0].output_dims));
  return total > 0x7fffffffu ? -1 : (int32_t)total;
}

static void setup(tt_fused_run *r, const tt_fused_chain_params *p, const tt_dims *in,
                  const int8_t *input, int8_t *scratch, int dry) {
  memset(r, 0, sizeof *r);
  r->p = p;
  r->in_dims = in;
  r->input = input;
  r->dry = dry;
  size_t off = 0;
  for (int32_t k = 0; k + 1 < p->num_stages; ++k) {
    tt_fused_window *w = &r->win[k];
    w->cap = window_rows(&p->stage[k + 1]);
    w->row_bytes = dims_row_bytes(&p->stage[k].output_dims);
    w->rows = scratch == NULL ? NULL : scratch + off;
    off += align4((size_t)w->cap * w->row_bytes);
  }
}

/* Byte offset (from the input's start) of the first input row the schedule still reads. */
static size_t input_needed_from(const tt_fused_run *r) {
  int32_t lo = r->in_dims->h, hi;
  if (r->produced0 < r->p->stage[0].output_dims.h) input_rows(r, 0, r->produced0, &lo, &hi);
  return (size_t)lo * dims_row_bytes(r->in_dims);
}

int tt_fused_chain_in_place(const tt_fused_chain_params *p, const tt_dims *in) {
  if (tt_fused_chain_validate(p, in) != TT_OK) return 0;
  tt_fused_run r;
  setup(&r, p, in, NULL, NULL, 1);
  const int32_t last = p->num_stages - 1;
  const size_t out_row = dims_row_bytes(&p->stage[last].output_dims);
  for (int32_t y = 0; y < p->stage[last].output_dims.h; ++y) {
    if (produce(&r, last, y, NULL) != TT_OK) return 0;
    if ((size_t)(y + 1) * out_row > input_needed_from(&r)) return 0;
  }
  return 1;
}

tt_status tt_fused_chain(const tt_fused_chain_params *p, const tt_dims *in, const int8_t *input,
                         const tt_dims *out, int8_t *output, int8_t *scratch) {
  tt_status st = tt_fused_chain_validate(p, in);
  if (st != TT_OK) return st;
  const int32_t last = p->num_stages - 1;
  const tt_dims *o = &p->stage[last].output_dims;
  if (out->n != 1 || out->h != o->h || out->w != o->w || out->c != o->c) return TT_ERR_SHAPE;
  tt_fused_run r;
  setup(&r, p, in, input, scratch, 0);
  const size_t out_row = dims_row_bytes(o), in_bytes = (size_t)in->h * dims_row_bytes(in);
  /* A one-stage chain reads the input while it writes a row: the row goes through the
   * scratch. Longer chains write straight into the output once the row's inputs are in the
   * line buffers. */
  int8_t *row = last == 0 ? scratch : NULL;
  for (int32_t y = 0; y < o->h; ++y) {
    int8_t *dst = output + (size_t)y * out_row;
    if (last > 0) {
      int32_t lo, hi;
      input_rows(&r, last, y, &lo, &hi);
      st = ensure(&r, last - 1, hi);
    } else {
      st = produce(&r, last, y, row);
    }
    if (st != TT_OK) return st;
    /* The row may land on input memory only where the schedule reads no more. */
    const uintptr_t at = (uintptr_t)dst, keep = (uintptr_t)input + input_needed_from(&r);
    const uintptr_t end = (uintptr_t)input + in_bytes;
    if (at < end && at + out_row > keep) return TT_ERR_ARG;
    if (last > 0) {
      st = produce(&r, last, y, dst);
      if (st != TT_OK) return st;
    } else {
      memcpy(dst, row, out_row);
    }
  }
  return TT_OK;
}
