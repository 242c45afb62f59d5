"""Backward of RESHAPE: the same bytes with the input's shape, exponent unchanged (the engine
may treat it as a no-op alias). Mirrors ``micro_ops/kernels/tt_reshape_backward.c``:
``reshape_backward(output_grad, input_shape)`` ↔ ``tt_reshape_backward(output_grad,
input_grad, n)``."""
from __future__ import annotations

import numpy as np


def reshape_backward(output_grad: np.ndarray, input_shape) -> np.ndarray:
    return np.array(output_grad, dtype=np.int8, copy=True).reshape(
        tuple(int(d) for d in input_shape))
