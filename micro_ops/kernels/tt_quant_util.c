/* Prepare-time quantization helpers (double precision, run once at load). */
#include <math.h>

#include "tt_fixedpoint.h"

/* Round half away from zero (TfLiteRound / std::round). */
static double tt_round_away(double x) { return x >= 0.0 ? floor(x + 0.5) : ceil(x - 0.5); }
static float tt_roundf_away(float x) { return x >= 0.0f ? floorf(x + 0.5f) : ceilf(x - 0.5f); }

void tt_frexp_multiplier(double real, int32_t *multiplier, int32_t *shift) {
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exp = 0;
  const double q = frexp(real, &exp);
  int64_t q_fixed = (int64_t)tt_round_away(q * (double)(1LL << 31));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++exp;
  }
  *multiplier = (int32_t)q_fixed;
  *shift = exp;
}

void tt_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift) {
  tt_frexp_multiplier(real, multiplier, shift);
  if (*shift < -31) { /* flush tiny multipliers to zero, as TFLite does */
    *multiplier = 0;
    *shift = 0;
  }
}

static int32_t tt_quantize_value(float scale, int32_t zero_point, float f) {
  return zero_point + (int32_t)tt_roundf_away(f / scale);
}

tt_status tt_activation_range(int32_t act, float out_scale, int32_t out_zero_point,
                              tt_activation *range) {
  int32_t lo = -128, hi = 127;
  switch (act) {
    case TT_ACT_NONE:
      break;
    case TT_ACT_RELU:
      lo = tt_quantize_value(out_scale, out_zero_point, 0.0f);
      break;
    case TT_ACT_RELU6:
      lo = tt_quantize_value(out_scale, out_zero_point, 0.0f);
      hi = tt_quantize_value(out_scale, out_zero_point, 6.0f);
      break;
    case TT_ACT_RELU_N1_TO_1:
      lo = tt_quantize_value(out_scale, out_zero_point, -1.0f);
      hi = tt_quantize_value(out_scale, out_zero_point, 1.0f);
      break;
    default:
      return TT_ERR_UNSUPPORTED;
  }
  range->min = lo > -128 ? lo : -128;
  range->max = hi < 127 ? hi : 127;
  return TT_OK;
}

tt_status tt_compute_padding(int32_t padding, int32_t in_size, int32_t filter_size,
                             int32_t stride, int32_t dilation, int32_t *out_size,
                             int32_t *pad_before) {
  if (in_size < 0 || filter_size <= 0 || stride <= 0 || dilation <= 0) return TT_ERR_MODEL;
  const int64_t eff = (int64_t)(filter_size - 1) * dilation + 1;
  int64_t out;
  if (padding == TT_PADDING_SAME) {
    out = ((int64_t)in_size + stride - 1) / stride;
  } else if (padding == TT_PADDING_VALID) {
    out = ((int64_t)in_size - eff + stride) / stride;
  } else {
    return TT_ERR_UNSUPPORTED;
  }
  if (out <= 0) return TT_ERR_SHAPE;
  int64_t total = (out - 1) * stride + eff - in_size;
  if (total < 0) total = 0;
  *out_size = (int32_t)out;
  *pad_before = (int32_t)(total / 2);
  return TT_OK;
}
