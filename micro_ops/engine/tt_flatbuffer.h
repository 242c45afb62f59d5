/* A small generic flatbuffer reader in which every access is bounds-checked.
 *
 * Nothing here trusts the buffer: offsets are range-checked before they are added, vtables
 * and tables must lie inside the buffer, every field must lie inside its table, vectors and
 * strings inside the buffer, and scalar vectors must be aligned to their element size
 * (relative to the buffer start, as flatbuffers builders lay them out). Reads go through
 * memcpy-free little-endian byte assembly, so the buffer itself may sit at any address.
 * A failed check returns 0 and leaves a static reason in tt_fb.why. */
#ifndef TT_FLATBUFFER_H
#define TT_FLATBUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *buf;
  size_t size;
  const char *why; /* reason of the last failed check (static string) */
} tt_fb;

/* Positions are 32-bit: a flatbuffer is at most 2 GB (checked by tt_fb_root). */
typedef struct {
  uint32_t pos;      /* table start (its soffset to the vtable); never 0 */
  uint32_t vt;       /* vtable start */
  uint16_t vt_size;  /* vtable bytes */
  uint16_t tbl_size; /* inline table bytes */
} tt_fb_table;

typedef struct {
  uint32_t pos; /* first element */
  uint32_t len; /* element count */
} tt_fb_vector;

/* Little-endian loads from a position the caller has range-checked. */
uint8_t tt_fb_u8(const tt_fb *fb, size_t pos);
uint16_t tt_fb_u16(const tt_fb *fb, size_t pos);
uint32_t tt_fb_u32(const tt_fb *fb, size_t pos);
uint64_t tt_fb_u64(const tt_fb *fb, size_t pos);

/* Root table (checks 8 <= size < 2 GB and, if ident != NULL, the 4-byte file identifier). */
int tt_fb_root(tt_fb *fb, const char *ident, tt_fb_table *out);
/* Table at an absolute position (validates its vtable). */
int tt_fb_table_at(tt_fb *fb, size_t pos, tt_fb_table *out);

/* Position of field `field` (0-based) if present and `bytes` wide inside the table.
 * Returns 1 present, 0 absent, -1 malformed (present but outside the table). */
int tt_fb_field_pos(tt_fb *fb, const tt_fb_table *t, int field, size_t bytes, size_t *pos);

/* Scalars with default; return 0 on malformed (value untouched), 1 otherwise. */
int tt_fb_read_u8(tt_fb *fb, const tt_fb_table *t, int field, uint8_t dflt, uint8_t *v);
int tt_fb_read_u32(tt_fb *fb, const tt_fb_table *t, int field, uint32_t dflt, uint32_t *v);
int tt_fb_read_i32(tt_fb *fb, const tt_fb_table *t, int field, int32_t dflt, int32_t *v);
int tt_fb_read_u64(tt_fb *fb, const tt_fb_table *t, int field, uint64_t dflt, uint64_t *v);
int tt_fb_read_f32(tt_fb *fb, const tt_fb_table *t, int field, float dflt, float *v);

/* Offset fields. Returns 1 present (out filled), 0 absent, -1 malformed. */
int tt_fb_read_table(tt_fb *fb, const tt_fb_table *t, int field, tt_fb_table *out);
/* elem_size 1, 2, 4 or 8; the elements must be aligned to elem_size (at most 8). */
int tt_fb_read_vector(tt_fb *fb, const tt_fb_table *t, int field, size_t elem_size,
                      tt_fb_vector *out);
/* String: vector of bytes followed by a NUL inside the buffer. */
int tt_fb_read_string(tt_fb *fb, const tt_fb_table *t, int field, tt_fb_vector *out);
/* Element i (< v->len) of a vector of tables. */
int tt_fb_vector_table(tt_fb *fb, const tt_fb_vector *v, uint32_t i, tt_fb_table *out);

/* Elements of validated scalar vectors (i < len is the caller's duty). */
static inline int32_t tt_fb_vec_i32(const tt_fb *fb, const tt_fb_vector *v, uint32_t i) {
  return (int32_t)tt_fb_u32(fb, v->pos + (size_t)i * 4u);
}

#endif /* TT_FLATBUFFER_H */
