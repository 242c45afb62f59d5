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
