"""Small training-graph kernels: saving an input-channel slice, summing two gradients.
Same names and bits as micro_ops/kernels/tt_training_util.c."""
from __future__ import annotations

import numpy as np

from ..quant import rounding_divide_by_pot
from .gradient import requantize_pow2

NO_GRADIENT = -(1 << 31)


def save_slice(x: np.ndarray, channels: int) -> np.ndarray:
    """The first ``channels`` entries of the last axis (what a partial weight update reads)."""
    return np.ascontiguousarray(np.asarray(x)[..., :channels])


def grad_accumulate(g1, e1: int, g2, e2: int) -> tuple[np.ndarray, int]:
    """(g1, e1) + (g2, e2): the gradient with the smaller exponent is shifted right (rounding)
    to the larger one, the sum is taken in int32 and requantized to int8."""
    if e1 == NO_GRADIENT:
        return np.array(g2, dtype=np.int8), int(e2)
    if e2 == NO_GRADIENT:
        return np.array(g1, dtype=np.int8), int(e1)
    e = max(int(e1), int(e2))
    a = rounding_divide_by_pot(np.asarray(g1, np.int64), min(e - int(e1), 31))
    b = rounding_divide_by_pot(np.asarray(g2, np.int64), min(e - int(e2), 31))
    return requantize_pow2(a + b, e)
