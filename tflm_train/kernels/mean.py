"""MEAN int8 reference kernel (TFLite reference_ops::QuantizedMeanOrSum, the path TFLM's
reduce.cc takes for every int8 MEAN, whatever the axes, keep_dims or scales).

Mirrors ``micro_ops/kernels/tt_mean.c``: ``mean(params, input, output_shape)`` ↔
``tt_mean(&params, &input_dims, input, &output_dims, output)``. ``output_shape`` has the
input's rank with 1 on every reduced axis (the keep_dims layout; dropping size-1 dims does
not change the element order, so it also serves keep_dims=False).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass
class MeanParams:
    """tt_mean_params."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int          # input_scale / output_scale / count, folded as TFLM does
    shift: int
    count: int               # input elements per output element


def mean_params(input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int, count: int) -> MeanParams:
    """TFLM's constants: QuantizeMultiplier(s_in / s_out) in Prepare, then Eval folds
    1/count into the multiplier with an integer division (reference/reduce.h)."""
    m, s = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    if count > 0:
        extra = min(count.bit_length() - 1, 32, 31 + s)   # floor(log2(count)), clamped
        m = (m << extra) // count                           # both non-negative: exact floor
        s -= extra
    return MeanParams(int(input_zero_point), int(output_zero_point), int(m), int(s), int(count))


def mean(params: MeanParams, input: np.ndarray, output_shape) -> np.ndarray:
    x = np.asarray(input, dtype=np.int64)
    output_shape = tuple(int(d) for d in output_shape)
    if len(output_shape) != x.ndim:
        raise ValueError(f"output shape {output_shape} must have the input's rank {x.ndim}")
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, output_shape)) if a != b)
    total = x.sum(axis=axes, keepdims=True) - params.input_zero_point * params.count
    total = ((total + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)   # the reference sums in int32
    y = multiply_by_quantized_multiplier(total, params.multiplier, params.shift)
    y = y + params.output_zero_point
    return np.clip(y, -128, 127).astype(np.int8).reshape(output_shape)
