"""QUANTIZE reference kernels (TFLite reference_ops::AffineQuantize and Requantize).

Mirrors ``micro_ops/kernels/tt_quantize.c``: ``quantize(params, input)`` (float32 → int8) ↔
``tt_quantize(&params, input, output, size)``; ``requantize(params, input)`` (int8 → int8) ↔
``tt_requantize(&params, input, output, size)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass
class QuantizeParams:
    """tt_quantize_params (float32 → int8)."""

    scale: float             # output scale (float32)
    zero_point: int


@dataclass
class RequantizeParams:
    """tt_requantize_params (int8 → int8)."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int          # input_scale / output_scale
    shift: int


def requantize_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int) -> RequantizeParams:
    m, s = quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))
    return RequantizeParams(int(input_zero_point), int(output_zero_point), int(m), int(s))


def round_half_away(r: np.ndarray) -> np.ndarray:
    """roundf (TfLiteRound on float) elementwise, exactly: never adds 0.5 in float."""
    t = np.trunc(r)
    return t + np.where(np.abs(r - t) >= 0.5, np.sign(r), 0).astype(r.dtype)


def quantize(params: QuantizeParams, input: np.ndarray) -> np.ndarray:
    x = np.asarray(input, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        r = round_half_away(x / np.float32(params.scale)).astype(np.float64)
    # float → int32 saturates (as on Arm; NaN → INT32_MIN as x86's conversion does).
    r = np.where(np.isnan(r), -2.0 ** 31, np.clip(r, -2.0 ** 31, 2.0 ** 31 - 1))
    q = r.astype(np.int64) + params.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def requantize(params: RequantizeParams, input: np.ndarray) -> np.ndarray:
    x = np.asarray(input, dtype=np.int64) - params.input_zero_point
    y = multiply_by_quantized_multiplier(x, params.multiplier, params.shift)
    return np.clip(y + params.output_zero_point, -128, 127).astype(np.int8)
