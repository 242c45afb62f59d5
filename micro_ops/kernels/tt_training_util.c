/* Channel-slice save and gradient accumulation (see tt_training_util.h). */
#include "tt_training_util.h"

#include <string.h>

#include "tt_fixedpoint.h"

void tt_save_slice(const tt_dims *dims, const int8_t *x, int32_t channels, int8_t *out) {
  const int32_t pixels = dims->n * dims->h * dims->w;
  if (channels == dims->c) {
    if (out != x) memcpy(out, x, (size_t)pixels * (size_t)channels);
    return;
  }
  /* Forward order: out pixel p never lies past in pixel p, so in place works too. */
  for (int32_t p = 0; p < pixels; ++p)
    memmove(out + (size_t)p * channels, x + (size_t)p * dims->c, (size_t)channels);
}

/* x * 2^-shift, rounded; shifts past 31 leave nothing of an int8. */
static int32_t align_down(int32_t x, int64_t shift) {
  return shift > 31 ? 0 : tt_rounding_divide_by_pot(x, (int)shift);
}

void tt_grad_accumulate(const int8_t *g1, int32_t e1, const int8_t *g2, int32_t e2, int32_t n,
                        int8_t *out, int32_t *e_out) {
  if (e1 == TT_GRAD_NONE || e2 == TT_GRAD_NONE) {
    const int8_t *present = e1 == TT_GRAD_NONE ? g2 : g1;
    *e_out = e1 == TT_GRAD_NONE ? e2 : e1;
    if (*e_out == TT_GRAD_NONE) memset(out, 0, (size_t)n);
    else if (out != present) memmove(out, present, (size_t)n);
    return;
  }
  const int32_t e = e1 > e2 ? e1 : e2;
  const int64_t d1 = (int64_t)e - e1, d2 = (int64_t)e - e2; /* one of them is 0 */
  /* Two passes instead of an int32 buffer: the sums are cheap to recompute. Pass 1 finds the
   * shift tt_requantize_pow2 would (|sum| <= 254, no overflow), pass 2 writes element i after
   * its last read, so out may be g1 or g2. */
  int32_t max_abs = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t s = align_down(g1[i], d1) + align_down(g2[i], d2);
    const int32_t a = s < 0 ? -s : s;
    if (a > max_abs) max_abs = a;
  }
  int32_t shift = 0;
  while ((max_abs >> shift) > 127) ++shift;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t s = align_down(g1[i], d1) + align_down(g2[i], d2);
    out[i] = (int8_t)tt_clamp(tt_rounding_divide_by_pot(s, shift), -127, 127);
  }
  *e_out = e + shift;
}
