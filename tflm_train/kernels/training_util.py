"""Channel-slice save and gradient accumulation of the training graph.

Same names and bits as micro_ops/kernels/tt_training_util.c (TT_SAVE_SLICE,
TT_GRAD_ACCUMULATE in docs/train-format.md).
"""
from __future__ import annotations

import numpy as np

from ..quant import rounding_divide_by_pot
from .gradient import requantize_pow2

GRAD_NONE = -(1 << 31)  # exponent of an absent gradient (no label): INT32_MIN


def save_slice(x: np.ndarray, channels: int) -> np.ndarray:
    """The first ``channels`` channels of an NHWC int8 tensor (a copy)."""
    return np.ascontiguousarray(np.asarray(x)[..., :channels])


def _align_down(g: np.ndarray, shift: int) -> np.ndarray:
    if shift > 31:
        return np.zeros(g.shape, dtype=np.int64)
    return rounding_divide_by_pot(g.astype(np.int64), shift)


def grad_accumulate(g1: np.ndarray, e1: int, g2: np.ndarray, e2: int) -> tuple[np.ndarray, int]:
    """(g1, e1) + (g2, e2) → (int8 gradient, exponent); an absent one (GRAD_NONE) is skipped."""
    g1, g2 = np.asarray(g1, dtype=np.int8), np.asarray(g2, dtype=np.int8)
    e1, e2 = int(e1), int(e2)
    if e1 == GRAD_NONE or e2 == GRAD_NONE:
        if e1 == GRAD_NONE and e2 == GRAD_NONE:
            return np.zeros_like(g1), GRAD_NONE
        return (g2.copy(), e2) if e1 == GRAD_NONE else (g1.copy(), e1)
    e = max(e1, e2)
    acc = _align_down(g1, e - e1) + _align_down(g2, e - e2)
    q, e_out = requantize_pow2(acc, e)
    return q.reshape(g1.shape), e_out
