"""Fixed-point arithmetic of the TFLite int8 reference kernels, vectorised in numpy.

Same names and semantics as ``micro_ops/include/tt_fixedpoint.h`` (gemmlowp double
rounding, as TFLM builds it). Run-time helpers take and return int64 arrays holding
int32 values; the prepare-time helpers use Python floats (IEEE double, as C does).
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
PADDING_SAME, PADDING_VALID = 0, 1


def _wrap32(x):
    """Two's-complement wrap of int64 values to int32 range (C's int32 overflow on the target)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b):
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C division truncates toward zero; numpy // floors.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite MultiplyByQuantizedMultiplier; multiplier/shift broadcast against x."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = _wrap32(np.asarray(x, dtype=np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def round_away(x: float) -> float:
    """TfLiteRound / std::round: half away from zero (Python's round() is half-even)."""
    return math.floor(x + 0.5) if x >= 0 else math.ceil(x - 0.5)


def frexp_multiplier(real: float) -> tuple[int, int]:
    """real ≈ multiplier * 2^(shift-31) with |multiplier| in [2^30, 2^31), rounded half away
    from zero; no flushing of tiny values (the update factors rely on that)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, exp = math.frexp(real)
    q_fixed = int(round_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        exp += 1
    return q_fixed, exp


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ≈ multiplier * 2^(shift-31), tiny values flushed to 0."""
    q_fixed, exp = frexp_multiplier(real)
    if exp < -31:
        return 0, 0
    return q_fixed, exp


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vector of QuantizeMultiplier results as int32 arrays (multiplier, shift)."""
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    m = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return m, s


def _quantize_value(scale: float, zero_point: int, f: float) -> int:
    # TFLite computes f / scale in float32, then rounds (roundf).
    v = np.float32(f) / np.float32(scale)
    return int(zero_point) + int(round_away(float(v)))


def activation_range(act: int, out_scale: float, out_zero_point: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for int8 outputs."""
    lo, hi = -128, 127
    if act == ACT_NONE:
        pass
    elif act == ACT_RELU:
        lo = _quantize_value(out_scale, out_zero_point, 0.0)
    elif act == ACT_RELU6:
        lo = _quantize_value(out_scale, out_zero_point, 0.0)
        hi = _quantize_value(out_scale, out_zero_point, 6.0)
    elif act == ACT_RELU_N1_TO_1:
        lo = _quantize_value(out_scale, out_zero_point, -1.0)
        hi = _quantize_value(out_scale, out_zero_point, 1.0)
    else:
        raise ValueError(f"unsupported fused activation {act}")
    return max(lo, -128), min(hi, 127)


def compute_padding(padding: int, in_size: int, filter_size: int, stride: int,
                    dilation: int) -> tuple[int, int]:
    """TFLite ComputePaddingHeightWidth for one dimension → (out_size, pad_before)."""
    eff = (filter_size - 1) * dilation + 1
    if padding == PADDING_SAME:
        out = (in_size + stride - 1) // stride
    elif padding == PADDING_VALID:
        out = (in_size - eff + stride) // stride
    else:
        raise ValueError(f"unsupported padding {padding}")
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


# --- gemmlowp fixed-point exp / reciprocal (softmax; later the integer softmax loss) ---
# Same names and semantics as the tt_* inline functions in tt_fixedpoint.h. Values are int64
# arrays holding int32 raw values of gemmlowp FixedPoint<int32_t, integer_bits> numbers.

def count_leading_zeros32(x):
    """Leading zero bits of non-negative int32 values viewed as uint32 (32 for zero)."""
    x = np.asarray(x, dtype=np.int64)
    _, bits = np.frexp(x.astype(np.float64))   # bit length, exact for |x| < 2^53
    return np.where(x == 0, 32, 32 - bits).astype(np.int64)


def saturating_rounding_multiply_by_pot(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift for
    exponent > 0, rounding (half away from zero) right shift for exponent < 0."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rounding_half_sum(a, b):
    """gemmlowp RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero."""
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    s = s + np.where(s >= 0, 1, -1)
    return np.where(s >= 0, s >> 1, -((-s) >> 1))   # C division truncates toward zero


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """exp(a) for a Q0.31 value a in [-1/4, 0): Taylor series around -1/8."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term = 1895147668       # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883    # 1/3 in Q0.31
    x = _wrap32(np.asarray(a, dtype=np.int64) + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        _wrap32(srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + poly)))


# exp(-2^k) in Q0.31 for k = -2 .. 4 (gemmlowp's barrel-shifter constants).
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int):
    """gemmlowp exp_on_negative_values: a is Q(integer_bits) (a <= 0), result is Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = _wrap32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0,
                              saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:   # below -32 the result is exactly zero
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """1 / (1 + a) for a Q0.31 value a in [0, 1): Newton-Raphson, result Q0.31."""
    srdhm = saturating_rounding_doubling_high_mul
    half_denominator = rounding_half_sum(a, INT32_MAX)
    # Q2.29 constants 48/17 and -32/17.
    x = _wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = _wrap32(one_q2 - half_denominator_times_x)
        x = _wrap32(x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


def get_reciprocal(x, x_integer_digits: int):
    """TFLite GetReciprocal: x (> 0, Q(x_integer_digits)) → (1/x as Q0.31 scaled into
    [0.5, 1), num_bits_over_unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = _wrap32((x << headroom_plus_one) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def quantize_array(x, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """Host-side float → int8 with the tensor's (scale, zero_point), saturating."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)
