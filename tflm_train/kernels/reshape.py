"""RESHAPE reference kernel: the data is unchanged, only the shape (a copy; the C engine
may alias the output to the input). Mirrors ``micro_ops/kernels/tt_reshape.c``."""
from __future__ import annotations

import numpy as np


def reshape(input: np.ndarray, output_shape) -> np.ndarray:
    return np.array(input, copy=True).reshape(tuple(int(d) for d in output_shape))
