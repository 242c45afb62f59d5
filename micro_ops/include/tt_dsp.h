/* Cortex-M DSP extension (ARMv7E-M, ARMv8-M Main with DSP): dual 16-bit multiply-accumulate.
 * Kernels use these behind `#if TT_DSP` in the same functions as their portable loops; the
 * products and sums are the same integers, so the bits are the same (tests/test_cortex_m.py
 * compares the device's losses and parameters with the host's on Cortex-M4 and M7).
 *
 * Four int8 values in a word [b0 b1 b2 b3] become two words of int16 pairs: the even pair
 * [b0, b2] and the odd pair [b1, b3] (SXTB16 and SXTB16 of the word rotated by 8), optionally
 * plus an offset in both halves (SXTAB16). SMLAD then adds two products to a 32-bit
 * accumulator: acc + lo*lo + hi*hi, wrapping like int32 addition. Pairing even with even and
 * odd with odd on both operands gives b0*c0 + b2*c2 and b1*c1 + b3*c3. */
#ifndef TT_DSP_H
#define TT_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(TT_NO_DSP)
#define TT_DSP 1
#include <arm_acle.h>

/* A word of 4 int8 from any address (LDR allows unaligned access on these cores). */
static inline uint32_t tt_dsp_load4(const int8_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* An int32 offset in both 16-bit halves (|offset| <= 32767). */
static inline uint32_t tt_dsp_pair(int32_t offset) {
  return ((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16);
}

static inline uint32_t tt_dsp_ror8(uint32_t v) { return (v >> 8) | (v << 24); }

/* [b0, b2] and [b1, b3] sign-extended, plus `pair` (tt_dsp_pair) in each half. */
static inline uint32_t tt_dsp_even(uint32_t v, uint32_t pair) { return __sxtab16(pair, v); }
static inline uint32_t tt_dsp_odd(uint32_t v, uint32_t pair) {
  return __sxtab16(pair, tt_dsp_ror8(v));
}
/* Same without an offset. */
static inline uint32_t tt_dsp_even0(uint32_t v) { return __sxtb16(v); }
static inline uint32_t tt_dsp_odd0(uint32_t v) { return __sxtb16(tt_dsp_ror8(v)); }

/* acc + a.lo * b.lo + a.hi * b.hi */
static inline int32_t tt_dsp_mac2(uint32_t a, uint32_t b, int32_t acc) {
  return __smlad(a, b, acc);
}

/* acc + a.lo * b.lo and acc + a.hi * b.hi: one product, for separate accumulators (channels). */
static inline int32_t tt_dsp_mac_lo(uint32_t a, uint32_t b, int32_t acc) {
  return __smlabb(a, b, acc);
}
static inline int32_t tt_dsp_mac_hi(uint32_t a, uint32_t b, int32_t acc) {
  return __smlatt(a, b, acc);
}
#else
#define TT_DSP 0
#endif

#endif /* TT_DSP_H */
