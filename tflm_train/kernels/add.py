"""ADD int8 reference kernel (TFLite reference_integer_ops::Add / BroadcastAdd), vectorised.

Mirrors ``micro_ops/kernels/tt_add.c``: ``add(params, input1, input2)`` ↔
``tt_add(&params, &input1_dims, input1, &input2_dims, input2, &output_dims, output)``.
Broadcasting is numpy's (size-1 dims stretch), which is what TFLM's 4-D/6-D slow broadcast
computes element by element.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass
class AddParams:
    """tt_add_params (TFLite ArithmeticParams for the int8 path)."""

    input1_offset: int        # -input1 zero point
    input2_offset: int        # -input2 zero point
    output_offset: int        # output zero point
    left_shift: int           # 20 for int8: headroom before the rescale
    input1_multiplier: int
    input1_shift: int         # <= 0
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    activation: tuple[int, int]


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp: 0 < real < 1, shift <= 0."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    m, s = quantize_multiplier(real)
    if s > 0:
        raise ValueError(f"multiplier {real} quantizes to a positive shift {s}")
    return m, s


def add_params(input1_scale: float, input1_zero_point: int, input2_scale: float,
               input2_zero_point: int, output_scale: float, output_zero_point: int,
               activation: tuple[int, int]) -> AddParams:
    """TFLM add_common.cc CalculateOpDataAdd for int8 (scales are float32 values)."""
    left_shift = 20
    s1, s2, so = (float(np.float32(s)) for s in (input1_scale, input2_scale, output_scale))
    twice_max_input_scale = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max_input_scale)
    m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max_input_scale)
    mo, sho = quantize_multiplier_smaller_than_one(
        twice_max_input_scale / ((1 << left_shift) * so))
    return AddParams(-int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
                     left_shift, m1, sh1, m2, sh2, mo, sho, tuple(activation))


def add(params: AddParams, input1: np.ndarray, input2: np.ndarray) -> np.ndarray:
    """int8 + int8 → int8 with numpy broadcasting."""
    p = params
    a = (np.asarray(input1, dtype=np.int64) + p.input1_offset) << p.left_shift
    b = (np.asarray(input2, dtype=np.int64) + p.input2_offset) << p.left_shift
    a = multiply_by_quantized_multiplier(a, p.input1_multiplier, p.input1_shift)
    b = multiply_by_quantized_multiplier(b, p.input2_multiplier, p.input2_shift)
    y = multiply_by_quantized_multiplier(a + b, p.output_multiplier, p.output_shift)
    y = y + p.output_offset
    return np.clip(y, p.activation[0], p.activation[1]).astype(np.int8)
