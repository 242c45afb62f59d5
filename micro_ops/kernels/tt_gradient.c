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

int32_t tt_pow2_stream_scratch_size(int32_t n) {
  return (int32_t)sizeof(uint32_t) * ((n + TT_POW2_STREAM_BLOCK - 1) / TT_POW2_STREAM_BLOCK);
}

void tt_pow2_stream_init(tt_pow2_stream *st, int8_t *out, void *scratch) {
  st->out = out;
  st->codes = (uint32_t *)scratch;
  st->n = 0;
  st->fill = 0;
  st->shift = 0;
  st->start[0] = 0;
}

void tt_pow2_stream_flush(tt_pow2_stream *st) {
  const int32_t m = st->fill, base = st->n;
  int8_t *out = st->out + base;
  int32_t s = st->shift, j;
  uint32_t word, bits;
  for (;;) { /* store at the running shift; again at a larger one if the block needs it */
    word = 0;
    bits = 0; /* OR of the magnitudes: same bit length as their max */
    if (s == 0) {
      for (j = 0; j < m; ++j) {
        const int32_t acc = st->block[j];
        bits |= acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc; /* no overflow at INT32_MIN */
        out[j] = (int8_t)acc;
      }
    } else {
      for (j = 0; j < m; ++j) {
        const int32_t acc = st->block[j];
        /* the s bits shifted out, at the top: `half` is bit 31; `sticky` is bit 30 or any
         * bit under it. The code enters at bits 31..30 and moves 2 bits down per element. */
        const uint32_t t = (uint32_t)acc << (32 - s);
        bits |= acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
        out[j] = (int8_t)(acc >> s);
        word = (word >> 2) | (t & 0x80000000u) | ((t << 1) != 0 ? 0x40000000u : 0u);
      }
    }
    if ((bits >> s) <= 127u) break;
    while ((bits >> s) > 127u) st->start[++s] = base;
  }
  st->codes[base / TT_POW2_STREAM_BLOCK] = s > 0 ? word >> (2 * (TT_POW2_STREAM_BLOCK - m)) : 0u;
  st->n = base + m;
  st->fill = 0;
  st->shift = s;
}

void tt_pow2_stream_finish(tt_pow2_stream *st, int32_t e_acc, int32_t *e_out) {
  int32_t base, j, s = 0; /* the shift of the block at base */
  if (st->fill > 0) tt_pow2_stream_flush(st);
  for (base = 0; base < st->n; base += TT_POW2_STREAM_BLOCK) {
    const int32_t m = st->n - base < TT_POW2_STREAM_BLOCK ? st->n - base : TT_POW2_STREAM_BLOCK;
    uint32_t word = st->codes[base / TT_POW2_STREAM_BLOCK];
    int8_t *out = st->out + base;
    int32_t k;
    while (s < st->shift && st->start[s + 1] <= base) ++s;
    k = st->shift - s;
    /* tt_rounding_divide_by_pot rounds up when remainder > half - 1 + (x < 0) */
    if (k == 0) {
      for (j = 0; j < m; ++j, word >>= 2) {
        const int32_t v = out[j];
        const int32_t up = (int32_t)((word >> 1) & ((uint32_t)(v >= 0) | word) & 1u);
        out[j] = (int8_t)tt_clamp(v + up, -127, 127);
      }
    } else { /* k more bits move below: the new half is v's bit k-1, the rest is sticky */
      const int32_t under = (1 << (k - 1)) - 1;
      for (j = 0; j < m; ++j, word >>= 2) {
        const int32_t v = out[j];
        const int32_t half = (v >> (k - 1)) & 1;
        const int32_t up = half & ((v >= 0) | ((v & under) != 0) | ((word & 3u) != 0));
        out[j] = (int8_t)((v >> k) + up); /* |v >> k| <= 64: no clamp */
      }
    }
  }
  *e_out = e_acc + st->shift;
}

uint64_t tt_prng_seed(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return z ? z : 0x9E3779B97F4A7C15ULL;
}
