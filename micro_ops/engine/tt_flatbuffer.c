/* Bounds-checked flatbuffer reader (see tt_flatbuffer.h). All arithmetic on positions is
 * done as "is there room?" comparisons against the remaining size, so nothing overflows. */
#include "tt_flatbuffer.h"

#include <string.h>

uint8_t tt_fb_u8(const tt_fb *fb, size_t pos) { return fb->buf[pos]; }

uint16_t tt_fb_u16(const tt_fb *fb, size_t pos) {
  const uint8_t *p = fb->buf + pos;
  return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t tt_fb_u32(const tt_fb *fb, size_t pos) {
  const uint8_t *p = fb->buf + pos;
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t tt_fb_u64(const tt_fb *fb, size_t pos) {
  return (uint64_t)tt_fb_u32(fb, pos) | ((uint64_t)tt_fb_u32(fb, pos + 4) << 32);
}

/* [pos, pos + bytes) inside the buffer? */
static int in_buf(const tt_fb *fb, size_t pos, size_t bytes) {
  return pos <= fb->size && bytes <= fb->size - pos;
}

static int fail(tt_fb *fb, const char *why) {
  fb->why = why;
  return 0;
}

int tt_fb_table_at(tt_fb *fb, size_t pos, tt_fb_table *out) {
  if (pos % 4 != 0) return fail(fb, "misaligned table");
  if (!in_buf(fb, pos, 4)) return fail(fb, "table offset outside the buffer");
  /* vtable = table - soffset (signed 32-bit); compute in int64 to avoid wrap-around. */
  int64_t vt = (int64_t)pos - (int64_t)(int32_t)tt_fb_u32(fb, pos);
  if (vt < 0 || vt % 2 != 0 || !in_buf(fb, (size_t)vt, 4))
    return fail(fb, "vtable offset outside the buffer");
  uint16_t vt_size = tt_fb_u16(fb, (size_t)vt);
  uint16_t tbl_size = tt_fb_u16(fb, (size_t)vt + 2);
  if (vt_size < 4 || vt_size % 2 != 0 || !in_buf(fb, (size_t)vt, vt_size))
    return fail(fb, "vtable size outside the buffer");
  if (tbl_size < 4 || !in_buf(fb, pos, tbl_size)) return fail(fb, "table size outside the buffer");
  out->pos = (uint32_t)pos;
  out->vt = (uint32_t)vt;
  out->vt_size = vt_size;
  out->tbl_size = tbl_size;
  return 1;
}

int tt_fb_root(tt_fb *fb, const char *ident, tt_fb_table *out) {
  fb->why = NULL;
  if (fb->buf == NULL || fb->size < 8) return fail(fb, "truncated: shorter than 8 bytes");
  if (fb->size > 0x7fffffffu) return fail(fb, "larger than 2 GB (not a flatbuffer)");
  if (ident != NULL && memcmp(fb->buf + 4, ident, 4) != 0)
    return fail(fb, "wrong file identifier");
  uint32_t root = tt_fb_u32(fb, 0);
  if (!in_buf(fb, root, 4)) return fail(fb, "truncated: root table offset outside the buffer");
  return tt_fb_table_at(fb, root, out);
}

int tt_fb_field_pos(tt_fb *fb, const tt_fb_table *t, int field, size_t bytes, size_t *pos) {
  if (field < 0) return 0;
  size_t slot = 4u + 2u * (size_t)field;
  if (slot + 2 > t->vt_size) return 0; /* older schema: field absent */
  uint16_t off = tt_fb_u16(fb, t->vt + slot);
  if (off == 0) return 0;
  if (off < 4 || bytes > t->tbl_size || off > t->tbl_size - bytes) {
    fb->why = "field lies outside its table";
    return -1;
  }
  *pos = t->pos + off;
  return 1;
}

/* Reads a scalar of `bytes` into *raw (zero-extended); 1 present, 0 absent, -1 malformed. */
static int read_raw(tt_fb *fb, const tt_fb_table *t, int field, size_t bytes, uint64_t *raw) {
  size_t pos;
  int r = tt_fb_field_pos(fb, t, field, bytes, &pos);
  if (r <= 0) return r;
  switch (bytes) {
    case 1: *raw = tt_fb_u8(fb, pos); break;
    case 4: *raw = tt_fb_u32(fb, pos); break;
    default: *raw = tt_fb_u64(fb, pos); break;
  }
  return 1;
}

int tt_fb_read_u8(tt_fb *fb, const tt_fb_table *t, int field, uint8_t dflt, uint8_t *v) {
  uint64_t raw;
  int r = read_raw(fb, t, field, 1, &raw);
  if (r < 0) return 0;
  *v = r ? (uint8_t)raw : dflt;
  return 1;
}

int tt_fb_read_u32(tt_fb *fb, const tt_fb_table *t, int field, uint32_t dflt, uint32_t *v) {
  uint64_t raw;
  int r = read_raw(fb, t, field, 4, &raw);
  if (r < 0) return 0;
  *v = r ? (uint32_t)raw : dflt;
  return 1;
}

int tt_fb_read_i32(tt_fb *fb, const tt_fb_table *t, int field, int32_t dflt, int32_t *v) {
  uint32_t u;
  if (!tt_fb_read_u32(fb, t, field, (uint32_t)dflt, &u)) return 0;
  *v = (int32_t)u;
  return 1;
}

int tt_fb_read_u64(tt_fb *fb, const tt_fb_table *t, int field, uint64_t dflt, uint64_t *v) {
  uint64_t raw;
  int r = read_raw(fb, t, field, 8, &raw);
  if (r < 0) return 0;
  *v = r ? raw : dflt;
  return 1;
}

int tt_fb_read_f32(tt_fb *fb, const tt_fb_table *t, int field, float dflt, float *v) {
  uint64_t raw;
  int r = read_raw(fb, t, field, 4, &raw);
  if (r < 0) return 0;
  if (r) {
    uint32_t bits = (uint32_t)raw;
    memcpy(v, &bits, sizeof bits);
  } else {
    *v = dflt;
  }
  return 1;
}

/* Follows the uoffset stored at `pos` to an absolute position. */
static int follow(tt_fb *fb, size_t pos, size_t *target) {
  if (!in_buf(fb, pos, 4)) return fail(fb, "offset outside the buffer");
  uint32_t off = tt_fb_u32(fb, pos);
  if (off == 0 || !in_buf(fb, pos, off)) return fail(fb, "offset points outside the buffer");
  *target = pos + off;
  return 1;
}

int tt_fb_read_table(tt_fb *fb, const tt_fb_table *t, int field, tt_fb_table *out) {
  size_t pos, target;
  int r = tt_fb_field_pos(fb, t, field, 4, &pos);
  if (r <= 0) return r;
  if (!follow(fb, pos, &target) || !tt_fb_table_at(fb, target, out)) return -1;
  return 1;
}

/* Vector header at `target`: length, then len * elem_size bytes inside the buffer. */
static int vector_at(tt_fb *fb, size_t target, size_t elem_size, size_t extra, tt_fb_vector *out) {
  if (target % 4 != 0) return fail(fb, "misaligned vector");
  if (!in_buf(fb, target, 4)) return fail(fb, "vector outside the buffer");
  uint32_t len = tt_fb_u32(fb, target);
  size_t first = target + 4;
  size_t room = fb->size - first;
  if (room < extra || (room - extra) / elem_size < len)
    return fail(fb, "truncated: vector runs past the end of the buffer");
  size_t align = elem_size > 8 ? 8 : elem_size;
  if (align > 1 && first % align != 0) return fail(fb, "vector elements are misaligned");
  out->pos = (uint32_t)first;
  out->len = len;
  return 1;
}

int tt_fb_read_vector(tt_fb *fb, const tt_fb_table *t, int field, size_t elem_size,
                      tt_fb_vector *out) {
  size_t pos, target;
  int r = tt_fb_field_pos(fb, t, field, 4, &pos);
  if (r <= 0) return r;
  if (elem_size == 0) return fail(fb, "zero element size"), -1;
  if (!follow(fb, pos, &target) || !vector_at(fb, target, elem_size, 0, out)) return -1;
  return 1;
}

int tt_fb_read_string(tt_fb *fb, const tt_fb_table *t, int field, tt_fb_vector *out) {
  size_t pos, target;
  int r = tt_fb_field_pos(fb, t, field, 4, &pos);
  if (r <= 0) return r;
  if (!follow(fb, pos, &target) || !vector_at(fb, target, 1, 1, out)) return -1;
  if (fb->buf[out->pos + out->len] != 0) return fail(fb, "string is not NUL-terminated"), -1;
  return 1;
}

int tt_fb_vector_table(tt_fb *fb, const tt_fb_vector *v, uint32_t i, tt_fb_table *out) {
  size_t target;
  if (i >= v->len) return fail(fb, "vector index out of range");
  if (!follow(fb, v->pos + (size_t)i * 4u, &target)) return 0;
  return tt_fb_table_at(fb, target, out);
}
