"""Gradient tensors (int8 values + power-of-two exponent) and the training PRNG.

Same names and bits as micro_ops/kernels/tt_gradient.c; see docs/training-numerics.md.
"""
from __future__ import annotations

import numpy as np

from ..quant import rounding_divide_by_pot

_MASK64 = (1 << 64) - 1


def gradient_shift(acc) -> int:
    """Smallest right shift s >= 0 with (max|acc| >> s) <= 127."""
    acc = np.asarray(acc, dtype=np.int64)
    max_abs = int(np.max(np.abs(acc))) if acc.size else 0
    s = 0
    while (max_abs >> s) > 127:
        s += 1
    return s


def requantize_pow2(acc, e_acc: int) -> tuple[np.ndarray, int]:
    """int32 accumulators with exponent e_acc → (int8 gradient, exponent)."""
    acc = np.asarray(acc, dtype=np.int64)
    s = gradient_shift(acc)
    q = np.clip(rounding_divide_by_pot(acc, s), -127, 127).astype(np.int8)
    return q, int(e_acc) + s


def pow2_stream_scratch_size(n: int) -> int:
    """Bytes of scratch of the C kernels' streaming requantize_pow2 (tt_pow2_stream in
    tt_gradient.h) over n accumulators: 2 bits per element, whole int32 words. The kernels
    produce the same int8 values and exponent as requantize_pow2 over all n at once."""
    return 4 * (-(-int(n) // 16))


def prng_next(state: int) -> tuple[int, int]:
    """xorshift64*: (new state, 64 random bits)."""
    x = state
    x ^= x >> 12
    x ^= (x << 25) & _MASK64
    x ^= x >> 27
    return x, (x * 0x2545F4914F6CDD1D) & _MASK64


def prng_seed(seed: int) -> int:
    """A seed (any value) → a valid non-zero state (splitmix64 finaliser)."""
    z = (seed + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return z or 0x9E3779B97F4A7C15
