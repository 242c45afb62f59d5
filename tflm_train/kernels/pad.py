"""PAD / PADV2 reference kernel (TFLite reference_ops::Pad): constant padding of a tensor of
rank <= 4, padding leading dims with 1 as TFLM does.

Mirrors ``micro_ops/kernels/tt_pad.c``: ``pad(params, input)`` ↔
``tt_pad(&params, &input_dims, input, &output_dims, output)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PadParams:
    """tt_pad_params: padding before/after each of the 4 (N, H, W, C) dims."""

    before: tuple[int, int, int, int]
    after: tuple[int, int, int, int]
    pad_value: int           # int8: the output zero point (PAD) or the constant (PADV2)


def pad_params(paddings: np.ndarray, pad_value: int) -> PadParams:
    """paddings: the int32 [rank, 2] tensor; leading dims of a rank < 4 tensor get 0."""
    p = np.asarray(paddings, dtype=np.int64).reshape(-1, 2)
    if len(p) > 4:
        raise ValueError(f"PAD supports rank <= 4, got {len(p)}")
    lead = 4 - len(p)
    before = (0,) * lead + tuple(int(v) for v in p[:, 0])
    after = (0,) * lead + tuple(int(v) for v in p[:, 1])
    return PadParams(before, after, int(pad_value))


def pad(params: PadParams, input: np.ndarray) -> np.ndarray:
    x = np.asarray(input)
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)
    y = np.pad(x4, list(zip(params.before, params.after)), constant_values=params.pad_value)
    return y.reshape(y.shape[4 - x.ndim:]).astype(x.dtype)
