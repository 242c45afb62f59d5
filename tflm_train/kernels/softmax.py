"""SOFTMAX int8 → int8 reference kernel (TFLite reference_ops::Softmax, quantized), over the
last axis, vectorised. gemmlowp fixed point: differences to the row maximum in Q5.26, exp in
Q0.31, sum in Q12.19, one reciprocal per row.

Mirrors ``micro_ops/kernels/tt_softmax.c``: ``softmax(params, input)`` ↔
``tt_softmax(&params, outer_size, depth, input, output)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quant import (_wrap32, exp_on_negative_values, get_reciprocal, quantize_multiplier,
                     rounding_divide_by_pot, saturating_rounding_doubling_high_mul)

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


@dataclass
class SoftmaxParams:
    """tt_softmax_params."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int            # differences below this give exactly -128


def softmax_params(beta: float, input_scale: float) -> SoftmaxParams:
    """TFLM softmax_common.cc for int8: PreprocessSoftmaxScaling + CalculateInputRadius."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale))
               * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"beta * input_scale * 2^26 = {real} must exceed 1")
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift))
    return SoftmaxParams(int(multiplier), int(left_shift), -int(radius))


def softmax(params: SoftmaxParams, input: np.ndarray) -> np.ndarray:
    x = np.asarray(input, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    used = diff >= params.diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne; unused entries may wrap, they are masked.
    scaled = saturating_rounding_doubling_high_mul(
        _wrap32(diff << params.input_left_shift), params.input_multiplier)
    exp = exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    # Rescale Q0.31 → Q12.19 (a rounding shift by 12) before accumulating.
    terms = np.where(used, rounding_divide_by_pot(exp, ACCUMULATION_INTEGER_BITS), 0)
    sum_of_exps = _wrap32(terms.sum(axis=-1, keepdims=True))
    reciprocal, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if np.any(exponent > 31):   # a row sum of exps >= 512 (e.g. 512 equal maxima): TFLM aborts
        raise ValueError("softmax row sum out of the Q12.19 range")
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exp), exponent)
    y = np.clip(y - 128, -128, 127)
    return np.where(used, y, -128).astype(np.int8)
