/* A bounds-checked reader for the one FlexBuffer shape custom op options use: a root map
 * (keys sorted) whose values are integers (INT, UINT, BOOL, or INDIRECT_INT / INDIRECT_UINT)
 * of width 1, 2, 4 or 8 bytes.
 *
 * tt_flex_map_open validates the whole map once: root, map header, key vector and every key
 * string lie inside the buffer, keys strictly ascending (byte order, as every FlexBuffer
 * writer sorts them), and every integer value (inline or indirect) inside the buffer. Values
 * of other types are allowed (not read). Nothing is read out of bounds whatever the bytes;
 * a failure leaves a static reason in `why`. */
#ifndef TT_FLEXBUFFER_H
#define TT_FLEXBUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t *buf;
  size_t size;
  size_t values;   /* first value slot */
  size_t keys;     /* first key-offset slot */
  uint32_t len;    /* entries */
  uint8_t width;   /* value slot width */
  uint8_t key_width;
  const char *why; /* reason of the last failure (static string) */
} tt_flex_map;

/* Returns 1 if buf[0..size) is a valid FlexBuffer whose root is a map, else 0 (why set). */
int tt_flex_map_open(tt_flex_map *m, const uint8_t *buf, size_t size);

/* Reopens a map tt_flex_map_open accepted (the same bytes): the header only, without
 * re-validating every key and value. */
int tt_flex_map_reopen(tt_flex_map *m, const uint8_t *buf, size_t size);

/* The integer value of `key`: 1 found (*out set), 0 absent, -1 present but not an integer
 * (INT/UINT/BOOL/INDIRECT_INT/INDIRECT_UINT) or a UINT above INT64_MAX (why set). */
int tt_flex_map_int(tt_flex_map *m, const char *key, int64_t *out);

/* Key of entry i < len (NUL-terminated inside the buffer, checked by open). */
const char *tt_flex_map_key(const tt_flex_map *m, uint32_t i);

#endif /* TT_FLEXBUFFER_H */
