"""Backward of MEAN: every input element receives its output's gradient divided by the count
of averaged elements (docs/training-numerics.md for the gradient format).

Mirrors ``micro_ops/kernels/tt_mean_backward.c``:
``mean_backward(output_grad, output_grad_exponent, input_shape)`` ↔
``tt_mean_backward(&output_dims, output_grad, output_grad_exponent, &input_dims, input_grad,
&input_grad_exponent)``. ``output_grad`` has the keep_dims layout (the input's rank, 1 on every
reduced axis; reshape a keep_dims=False gradient first, the element order is the same).

Rule: ``g · R`` with ``R = ⌊(2^23 + count/2) / count⌋`` (exact for power-of-two counts),
exponent ``e_g − 23``, requantized with ``requantize_pow2``. Each input takes exactly one
output's value, so the requantization runs on the output-sized array and is broadcast — the
same shift as over the input-sized one. No scratch.
"""
from __future__ import annotations

import numpy as np

from .gradient import requantize_pow2

MEAN_RECIP_BITS = 23     # 127 · 2^23 < 2^31


def mean_backward(output_grad: np.ndarray, output_grad_exponent: int,
                  input_shape) -> tuple[np.ndarray, int]:
    g = np.asarray(output_grad, dtype=np.int64)
    shape = tuple(int(d) for d in input_shape)
    if g.ndim != len(shape) or any(o not in (1, i) for o, i in zip(g.shape, shape)):
        raise ValueError(f"mean gradient shape {g.shape} is not the keep_dims layout of "
                         f"input shape {shape}")
    count = int(np.prod([i for o, i in zip(g.shape, shape) if o != i]))
    if count <= 0:
        raise ValueError(f"mean over an empty axis of input shape {shape}")
    recip = ((1 << MEAN_RECIP_BITS) + count // 2) // count
    q, e = requantize_pow2(g * recip, int(output_grad_exponent) - MEAN_RECIP_BITS)
    return np.broadcast_to(q, shape).copy(), e
