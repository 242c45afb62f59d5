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


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ≈ multiplier * 2^(shift-31)."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, exp = math.frexp(real)
    q_fixed = int(round_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        exp += 1
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
