/* Gradient tensors and the training PRNG (docs/training-numerics.md).
 * A gradient is int8 values q plus an int32 exponent e: real = q * 2^e. */
#ifndef TT_GRADIENT_H
#define TT_GRADIENT_H

#include "tt_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Smallest right shift s >= 0 with (max|acc| >> s) <= 127. */
int32_t tt_gradient_shift(const int32_t *acc, int32_t n);

/* int32 accumulators with exponent e_acc → int8 gradient and its exponent (rounding half away
 * from zero). acc and out may not alias. */
void tt_requantize_pow2(const int32_t *acc, int32_t n, int32_t e_acc, int8_t *out, int32_t *e_out);

/* Streaming tt_requantize_pow2: a kernel pushes its int32 accumulators one at a time, in
 * output order, and gets the same int8 values and exponent without holding them. Blocks of
 * TT_POW2_STREAM_BLOCK elements are stored at the shift of the running max after the block:
 * element i as floor(acc / 2^s_i) in out[i], plus 2 bits in the scratch: the bit below the
 * kept ones (half) and whether any bit under that one is set (sticky). With them, finish
 * rounds every element to the final shift exactly as tt_rounding_divide_by_pot would from the
 * int32 value: half away from zero rounds a positive value up on `half` but a negative one only
 * on `half && sticky`, so neither bit alone suffices. The running shift only grows; start[]
 * records where each shift begins. */
enum {
  TT_GRADIENT_MAX_SHIFT = 25, /* tt_gradient_shift of |INT32_MIN| */
  TT_POW2_STREAM_BLOCK = 16   /* elements whose 2-bit codes fill one scratch word */
};

typedef struct {
  int8_t *out;      /* n int8: floor(acc / 2^s_i), rounded in place by finish */
  uint32_t *codes;  /* the scratch: 2 bits per element (half << 1 | sticky), 16 per word */
  int32_t n;        /* elements stored (a multiple of the block until finish) */
  int32_t fill;     /* elements waiting in block */
  int32_t shift;    /* tt_gradient_shift of the elements so far */
  int32_t start[TT_GRADIENT_MAX_SHIFT + 1]; /* first element stored at each shift */
  int32_t block[TT_POW2_STREAM_BLOCK];
} tt_pow2_stream;

/* Bytes of scratch for n elements: 2 bits each, whole int32 words. */
int32_t tt_pow2_stream_scratch_size(int32_t n);

/* out receives the n int8 gradient values as they are pushed (so it may not overlap what the
 * kernel still reads); scratch, int32-aligned, holds tt_pow2_stream_scratch_size(n) bytes and
 * need not be zeroed. The struct itself lives on the caller's stack (188 bytes on Cortex-M). */
void tt_pow2_stream_init(tt_pow2_stream *st, int8_t *out, void *scratch);

/* Stores the waiting block (called by push and finish). */
void tt_pow2_stream_flush(tt_pow2_stream *st);

static inline void tt_pow2_stream_push(tt_pow2_stream *st, int32_t acc) {
  st->block[st->fill] = acc;
  if (++st->fill == TT_POW2_STREAM_BLOCK) tt_pow2_stream_flush(st);
}

/* Rounds the elements pushed to the final shift s (clamped to [-127, 127]) and sets
 * *e_out = e_acc + s: what tt_requantize_pow2 gives over all of them. */
void tt_pow2_stream_finish(tt_pow2_stream *st, int32_t e_acc, int32_t *e_out);

/* xorshift64* (Vigna): state must be non-zero; returns the next 64 random bits. */
static inline uint64_t tt_prng_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* A seed (any value) → a valid non-zero state (splitmix64 finaliser). */
uint64_t tt_prng_seed(uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif /* TT_GRADIENT_H */
