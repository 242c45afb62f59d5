/* Activation masks, 1 bit per element (element i -> byte i >> 3, bit i & 7). */
#include "tt_mask.h"

static int tt_mask_inside(int8_t y, const tt_activation *act) {
  return y > act->min && y < act->max;
}

int32_t tt_activation_mask_size(int32_t n) { return n > 0 ? (n + 7) / 8 : 0; }

void tt_activation_mask(const int8_t *output, int32_t n, const tt_activation *act,
                        uint8_t *mask) {
  int32_t i;
  for (i = 0; i < n; i += 8) {
    uint8_t byte = 0;
    int32_t b;
    for (b = 0; b < 8 && i + b < n; ++b) {
      if (tt_mask_inside(output[i + b], act)) byte |= (uint8_t)(1u << b);
    }
    mask[i >> 3] = byte;
  }
}

void tt_apply_activation_mask(int8_t *grad, int32_t n, const uint8_t *mask) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    if (!((mask[i >> 3] >> (i & 7)) & 1u)) grad[i] = 0;
  }
}

void tt_apply_activation_mask_from_output(int8_t *grad, int32_t n, const int8_t *output,
                                          const tt_activation *act) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    if (!tt_mask_inside(output[i], act)) grad[i] = 0;
  }
}
