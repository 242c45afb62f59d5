/* Power-of-two requantization of gradients and PRNG seeding. */
#include "tt_gradient.h"

#include "tt_fixedpoint.h"

int32_t tt_gradient_shift(const int32_t *acc, int32_t n) {
  uint32_t max_abs = 0;
  for (int32_t i = 0; i < n; ++i) {
    /* |INT32_MIN| computed in uint32 to avoid overflow */
    const uint32_t a = acc[i] < 0 ? 0u - (uint32_t)acc[i] : (uint32_t)acc[i];
    if (a > max_abs) max_abs = a;
  }
  int32_t s = 0;
  while ((max_abs >> s) > 127u) ++s;
  return s;
}

void tt_requantize_pow2(const int32_t *acc, int32_t n, int32_t e_acc, int8_t *out,
                        int32_t *e_out) {
  const int32_t s = tt_gradient_shift(acc, n);
  for (int32_t i = 0; i < n; ++i) {
    /* s <= 25 here, and |rounded| <= 128 only when the max rounds up; clamp keeps int8 range. */
    out[i] = (int8_t)tt_clamp(tt_rounding_divide_by_pot(acc[i], s), -127, 127);
  }
  *e_out = e_acc + s;
}

uint64_t tt_prng_seed(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z ? z : 0x9E3779B97F4A7C15ULL;
}
