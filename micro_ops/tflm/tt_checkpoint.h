/* Checkpoints of the trainable state (every variable tensor of a *.train.tflite: trainable
 * weights and biases, optimizer velocities, tt_state), independent of TFLM so that any
 * runtime (the TFLM adapter, a host tool) writes and checks the same bytes.
 *
 * Layout (little-endian uint32 words, then raw tensor bytes):
 *   magic "TTCK", version 1, number of variables, total payload bytes,
 *   the payload: each variable tensor's bytes in model tensor order,
 *   FNV-1a 32 of the payload.
 * The checksum is also the "parameter checksum" the tests compare between engines. */
#ifndef TT_CHECKPOINT_H
#define TT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_CHECKPOINT_MAGIC 0x4b435454u /* "TTCK" read as a little-endian uint32 */
#define TT_CHECKPOINT_VERSION 1u
#define TT_CHECKPOINT_HEADER_WORDS 4
#define TT_FNV1A_INIT 0x811c9dc5u

/* FNV-1a 32: continue hash h (start with TT_FNV1A_INIT) over n bytes. */
uint32_t tt_fnv1a(uint32_t h, const void *data, size_t n);

/* The four header words of a checkpoint of `count` variables holding `bytes` in total. */
void tt_checkpoint_header(uint32_t count, uint32_t bytes, uint32_t out[TT_CHECKPOINT_HEADER_WORDS]);
/* 1 if header h is a version-1 checkpoint of exactly `count` variables and `bytes`, else 0. */
int tt_checkpoint_header_matches(const uint32_t h[TT_CHECKPOINT_HEADER_WORDS], uint32_t count,
                                 uint32_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* TT_CHECKPOINT_H */
