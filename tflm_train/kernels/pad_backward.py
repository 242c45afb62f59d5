"""Backward of PAD / PADV2: the gradient of the input is the slice of the output gradient
without the padding; the exponent is unchanged (no requantization).

Mirrors ``micro_ops/kernels/tt_pad_backward.c``: ``pad_backward(params, output_grad,
input_shape)`` ↔ ``tt_pad_backward(&params, &output_dims, output_grad, &input_dims,
input_grad)``.
"""
from __future__ import annotations

import numpy as np

from .pad import PadParams


def pad_backward(params: PadParams, output_grad: np.ndarray, input_shape) -> np.ndarray:
    g = np.asarray(output_grad, dtype=np.int8)
    shape = tuple(int(d) for d in input_shape)
    if len(shape) > 4 or g.ndim != len(shape):
        raise ValueError(f"PAD backward: gradient shape {g.shape} and input shape {shape} "
                         "must have the same rank <= 4")
    lead = 4 - len(shape)
    g4 = g.reshape((1,) * lead + g.shape)
    in4 = (1,) * lead + shape
    for d in range(4):
        if g4.shape[d] != in4[d] + params.before[d] + params.after[d]:
            raise ValueError(f"PAD backward: output dim {d} is {g4.shape[d]}, expected "
                             f"{in4[d]} + {params.before[d]} + {params.after[d]}")
    sl = tuple(slice(b, b + n) for b, n in zip(params.before, in4))
    return g4[sl].reshape(shape).copy()
