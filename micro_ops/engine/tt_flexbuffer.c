/* Bounds-checked FlexBuffer map reader (see tt_flexbuffer.h).
 *
 * Layout (FlexBuffers, little-endian): the last byte is the root's width, the byte before it
 * the root's packed type (type << 2 | log2 of the child width), and before that the root
 * value: here an unsigned offset back to the map's value slots. Before the slots sit (each one
 * slot wide) the offset back to the key vector, the key vector's width and the entry count;
 * after the slots, one packed type byte per entry. Inline scalars are read at the slot width;
 * indirect ones sit at an offset back from their slot, at the width of their packed type. */
#include <string.h>

#include "tt_flexbuffer.h"

enum {
  FBT_INT = 1,
  FBT_UINT = 2,
  FBT_INDIRECT_INT = 6,
  FBT_INDIRECT_UINT = 7,
  FBT_MAP = 9,
  FBT_BOOL = 26
};

/* Unsigned little-endian value of `width` bytes at pos (caller checked the range). */
static uint64_t read_uint(const uint8_t *buf, size_t pos, size_t width) {
  uint64_t v = 0;
  for (size_t k = width; k > 0; --k) v = (v << 8) | buf[pos + k - 1];
  return v;
}

static int64_t read_int(const uint8_t *buf, size_t pos, size_t width) {
  uint64_t u = read_uint(buf, pos, width);
  if (width < 8 && (u >> (8 * width - 1)) & 1u) u |= ~(uint64_t)0 << (8 * width); /* sign-extend */
  return (int64_t)u;
}

static int valid_width(uint64_t w) { return w == 1 || w == 2 || w == 4 || w == 8; }

static int fail(tt_flex_map *m, const char *why) {
  m->why = why;
  return 0;
}

/* Target of the offset stored in the `width`-byte slot at pos: pos - offset, if >= 0. */
static int back(const tt_flex_map *m, size_t pos, size_t width, size_t *target) {
  uint64_t off = read_uint(m->buf, pos, width);
  if (off > pos) return 0;
  *target = pos - (size_t)off;
  return 1;
}

const char *tt_flex_map_key(const tt_flex_map *m, uint32_t i) {
  size_t slot = m->keys + (size_t)i * m->key_width, pos = 0;
  back(m, slot, m->key_width, &pos); /* validated by open */
  return (const char *)m->buf + pos;
}

/* The map's header: root, slots, key vector (bounds-checked); not the keys themselves. */
static int open_header(tt_flex_map *m, const uint8_t *buf, size_t size) {
  memset(m, 0, sizeof *m);
  m->buf = buf;
  m->size = size;
  if (buf == NULL || size < 3) return fail(m, "custom options: FlexBuffer shorter than 3 bytes");
  size_t root_width = buf[size - 1];
  if (!valid_width(root_width)) return fail(m, "custom options: bad FlexBuffer root width");
  if (size < 2 + root_width) return fail(m, "custom options: FlexBuffer root truncated");
  uint8_t packed = buf[size - 2];
  if ((packed >> 2) != FBT_MAP) return fail(m, "custom options: FlexBuffer root is not a map");
  size_t width = (size_t)1 << (packed & 3u);
  size_t values;
  if (!back(m, size - 2 - root_width, root_width, &values))
    return fail(m, "custom options: FlexBuffer map offset out of range");
  if (values < 3 * width) return fail(m, "custom options: FlexBuffer map header out of range");
  uint64_t len = read_uint(buf, values - width, width);
  uint64_t key_width = read_uint(buf, values - 2 * width, width);
  if (!valid_width(key_width)) return fail(m, "custom options: bad FlexBuffer key vector width");
  /* value slots then one type byte each, all before the root */
  if (len > (size - values) / (width + 1))
    return fail(m, "custom options: FlexBuffer map length out of range");
  size_t keys;
  if (!back(m, values - 3 * width, width, &keys) || keys < key_width)
    return fail(m, "custom options: FlexBuffer key vector out of range");
  if (read_uint(buf, keys - key_width, key_width) != len)
    return fail(m, "custom options: FlexBuffer key and value counts differ");
  if (len > (size - keys) / key_width)
    return fail(m, "custom options: FlexBuffer key vector out of range");
  m->values = values;
  m->keys = keys;
  m->len = (uint32_t)len; /* < size */
  m->width = (uint8_t)width;
  m->key_width = (uint8_t)key_width;
  return 1;
}

int tt_flex_map_reopen(tt_flex_map *m, const uint8_t *buf, size_t size) {
  return open_header(m, buf, size);
}

int tt_flex_map_open(tt_flex_map *m, const uint8_t *buf, size_t size) {
  if (!open_header(m, buf, size)) return 0;
  const size_t keys = m->keys, values = m->values, width = m->width, key_width = m->key_width;
  const uint64_t len = m->len;
  const char *prev = NULL;
  for (uint32_t i = 0; i < m->len; ++i) {
    size_t kpos;
    if (!back(m, keys + (size_t)i * key_width, key_width, &kpos) ||
        memchr(buf + kpos, 0, size - kpos) == NULL)
      return fail(m, "custom options: FlexBuffer key out of range or not NUL-terminated");
    const char *key = (const char *)buf + kpos;
    if (prev != NULL && strcmp(prev, key) >= 0)
      return fail(m, "custom options: FlexBuffer map keys are not sorted");
    prev = key;
    uint8_t t = buf[values + len * width + i];
    if ((t >> 2) == FBT_INDIRECT_INT || (t >> 2) == FBT_INDIRECT_UINT) {
      size_t target, w = (size_t)1 << (t & 3u);
      if (!back(m, values + (size_t)i * width, width, &target) || w > size - target)
        return fail(m, "custom options: FlexBuffer indirect value out of range");
    }
  }
  return 1;
}

int tt_flex_map_int(tt_flex_map *m, const char *key, int64_t *out) {
  /* binary search over the sorted keys */
  uint32_t lo = 0, hi = m->len;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(tt_flex_map_key(m, mid), key);
    if (c == 0) {
      size_t slot = m->values + (size_t)mid * m->width;
      uint8_t packed = m->buf[m->values + (size_t)m->len * m->width + mid];
      size_t w = (size_t)1 << (packed & 3u), target = 0;
      uint64_t u;
      switch (packed >> 2) {
        case FBT_INT: *out = read_int(m->buf, slot, m->width); return 1;
        case FBT_BOOL: *out = read_uint(m->buf, slot, m->width) != 0; return 1;
        case FBT_UINT: u = read_uint(m->buf, slot, m->width); break;
        case FBT_INDIRECT_INT:
          back(m, slot, m->width, &target); /* checked by open */
          *out = read_int(m->buf, target, w);
          return 1;
        case FBT_INDIRECT_UINT:
          back(m, slot, m->width, &target);
          u = read_uint(m->buf, target, w);
          break;
        default: m->why = "value is not an integer"; return -1;
      }
      if (u > (uint64_t)INT64_MAX) {
        m->why = "unsigned value out of range";
        return -1;
      }
      *out = (int64_t)u;
      return 1;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}
