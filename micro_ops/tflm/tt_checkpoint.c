/* Checkpoint header and checksum (tt_checkpoint.h). Python twin of the checksum:
 * micro_ops/tflm/tests/make_test_data.py (fnv1a). */
#include "tt_checkpoint.h"

uint32_t tt_fnv1a(uint32_t h, const void *data, size_t n) {
  const uint8_t *p = (const uint8_t *)data;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

void tt_checkpoint_header(uint32_t count, uint32_t bytes, uint32_t out[TT_CHECKPOINT_HEADER_WORDS]) {
  out[0] = TT_CHECKPOINT_MAGIC;
  out[1] = TT_CHECKPOINT_VERSION;
  out[2] = count;
  out[3] = bytes;
}

int tt_checkpoint_header_matches(const uint32_t h[TT_CHECKPOINT_HEADER_WORDS], uint32_t count,
                                 uint32_t bytes) {
  return h[0] == TT_CHECKPOINT_MAGIC && h[1] == TT_CHECKPOINT_VERSION && h[2] == count &&
         h[3] == bytes;
}
