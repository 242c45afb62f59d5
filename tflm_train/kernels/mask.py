"""Activation masks: where a fused clamp lets gradient through (docs/training-numerics.md,
"Activation masks"). Element i of the output is strictly inside (act_min, act_max) ⇔ bit
(i & 7) of byte (i >> 3) is 1 (LSB first; unused high bits of the last byte are 0).

Mirrors ``micro_ops/kernels/tt_mask.c``: ``activation_mask(output, activation)`` ↔
``tt_activation_mask(output, n, &activation, mask)``; ``apply_activation_mask(grad, mask)`` ↔
``tt_apply_activation_mask(grad, n, mask)``; ``apply_activation_mask_from_output(grad, output,
activation)`` ↔ ``tt_apply_activation_mask_from_output(grad, n, output, &activation)``. The C
versions update the gradient in place; its exponent is unchanged.
"""
from __future__ import annotations

import numpy as np


def activation_mask_size(n: int) -> int:
    """Bytes of the packed mask of n elements."""
    return (int(n) + 7) // 8


def _inside(output: np.ndarray, activation) -> np.ndarray:
    y = np.asarray(output, dtype=np.int16).reshape(-1)
    return (y > activation[0]) & (y < activation[1])


def activation_mask(output: np.ndarray, activation) -> np.ndarray:
    """int8 output (any shape) and its (act_min, act_max) → packed uint8 mask."""
    return np.packbits(_inside(output, activation), bitorder="little")


def apply_activation_mask(grad: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero the gradient where the mask bit is 0 (grad keeps its shape and exponent)."""
    g = np.asarray(grad, dtype=np.int8)
    mask = np.asarray(mask, dtype=np.uint8).reshape(-1)
    if mask.size < activation_mask_size(g.size):
        raise ValueError(f"mask of {mask.size} bytes is too small for {g.size} elements")
    keep = np.unpackbits(mask, count=g.size, bitorder="little")
    return np.where(keep.reshape(g.shape) != 0, g, 0).astype(np.int8)


def apply_activation_mask_from_output(grad: np.ndarray, output: np.ndarray,
                                      activation) -> np.ndarray:
    """Same as apply_activation_mask(grad, activation_mask(output, activation))."""
    g = np.asarray(grad, dtype=np.int8)
    return np.where(_inside(output, activation).reshape(g.shape), g, 0).astype(np.int8)
