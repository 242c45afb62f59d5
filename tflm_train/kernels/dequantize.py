"""DEQUANTIZE reference kernel (TFLite reference_ops::Dequantize): int8 → float32 as
float(double(scale) * (q - zero_point)), the product in double as the reference computes it.

Mirrors ``micro_ops/kernels/tt_dequantize.c``: ``dequantize(params, input)`` ↔
``tt_dequantize(&params, input, output, size)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DequantizeParams:
    """tt_dequantize_params."""

    scale: float             # input scale (float32 value, widened to double)
    zero_point: int


def dequantize(params: DequantizeParams, input: np.ndarray) -> np.ndarray:
    q = np.asarray(input, dtype=np.int64) - params.zero_point
    return (float(np.float32(params.scale)) * q.astype(np.float64)).astype(np.float32)
