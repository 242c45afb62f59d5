"""AVERAGE_POOL_2D / MAX_POOL_2D int8 reference kernels (TFLite reference_integer_ops
AveragePool / MaxPool), vectorised over the output; one loop over the filter taps.

Mirrors ``micro_ops/kernels/tt_pooling.c``: ``average_pool_2d(params, input, output_shape)`` ↔
``tt_average_pool_2d(&params, &input_dims, input, &output_dims, output)``; same for max.
Taps in the padding are skipped (not zeros): the average divides by the number of real taps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PoolParams:
    """tt_pool_params."""

    stride_w: int
    stride_h: int
    filter_w: int
    filter_h: int
    pad_w: int               # leading (left) padding
    pad_h: int               # leading (top) padding
    activation: tuple[int, int]


def _taps(params: PoolParams, x: np.ndarray, output_shape, fill: int):
    """Yield, for every filter tap, the (N, out_h, out_w, C) input values it reads and the
    (1, out_h, out_w, 1) mask of outputs for which the tap lies inside the input."""
    n, h, w, c = x.shape
    out_h, out_w = int(output_shape[1]), int(output_shape[2])
    need_h = (out_h - 1) * params.stride_h + params.filter_h
    need_w = (out_w - 1) * params.stride_w + params.filter_w
    top, left = params.pad_h, params.pad_w
    bottom, right = max(need_h - h - top, 0), max(need_w - w - left, 0)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    inside = np.pad(np.ones((1, h, w, 1), dtype=bool),
                    ((0, 0), (top, bottom), (left, right), (0, 0)))
    for fy in range(params.filter_h):
        for fx in range(params.filter_w):
            rows = slice(fy, fy + (out_h - 1) * params.stride_h + 1, params.stride_h)
            cols = slice(fx, fx + (out_w - 1) * params.stride_w + 1, params.stride_w)
            yield xp[:, rows, cols, :], inside[:, rows, cols, :]


def average_pool_2d(params: PoolParams, input: np.ndarray, output_shape) -> np.ndarray:
    x = np.asarray(input, dtype=np.int64)
    acc = None
    count = None
    for vals, inside in _taps(params, x, output_shape, 0):
        acc = vals.copy() if acc is None else acc + vals
        count = inside.astype(np.int64) if count is None else count + inside
    count = np.broadcast_to(count, acc.shape)
    if np.any(count == 0):
        raise ValueError("average pool window lies entirely in the padding")
    half = count // 2
    # Round half away from zero; C division truncates toward zero.
    y = np.where(acc > 0, (acc + half) // count, -((half - acc) // count))
    return np.clip(y, params.activation[0], params.activation[1]).astype(np.int8)


def max_pool_2d(params: PoolParams, input: np.ndarray, output_shape) -> np.ndarray:
    x = np.asarray(input, dtype=np.int8)
    # Padding with int8's lowest value equals skipping those taps (the reference starts
    # its running max there).
    y = None
    for vals, _ in _taps(params, x, output_shape, -128):
        y = vals.copy() if y is None else np.maximum(y, vals)
    return np.clip(y, params.activation[0], params.activation[1]).astype(np.int8)
