"""Backward of AVERAGE_POOL_2D and MAX_POOL_2D (gradients: int8 + power-of-two exponent,
docs/training-numerics.md). Vectorised over the output, one loop over the filter taps.

Mirrors ``micro_ops/kernels/tt_pooling_backward.c``:
``average_pool_2d_backward(params, output_grad, output_grad_exponent, input_shape)`` ↔
``tt_average_pool_2d_backward(&params, &output_dims, output_grad, output_grad_exponent,
&input_dims, input_grad, &input_grad_exponent, scratch)`` and
``max_pool_2d_backward(params, output_grad, output_grad_exponent, input)`` ↔
``tt_max_pool_2d_backward(&params, &output_dims, output_grad, output_grad_exponent,
&input_dims, input, input_grad, &input_grad_exponent, scratch)``.

Windows are clipped to the input as in the forward kernels. ``params.activation`` is not
read: the caller applies the output's activation mask to ``output_grad`` first.

Average pool rule: every output spreads ``g · R`` over its clipped window, with
``R = ⌊(2^K + count/2) / count⌋`` (exact when count is a power of two) and
``K = 24 − bitlen(⌈fh/sh⌉ · ⌈fw/sw⌉)``; at most ⌈fh/sh⌉·⌈fw/sw⌉ windows cover one input, so
the int32 accumulator cannot overflow (127 · 2^K · windows < 2^31). The accumulator (exponent
``e_g − K``) is requantized with ``requantize_pow2``.
Max pool rule: each output's gradient goes to the first maximum of its clipped window in
row-major order (the forward's strict ``>`` keeps the first), recomputed from the saved int8
input; overlapping windows add in int32; then ``requantize_pow2`` with exponent ``e_g``.
"""
from __future__ import annotations

import numpy as np

from .gradient import pow2_stream_scratch_size, requantize_pow2
from .pooling import PoolParams


def average_pool_recip_bits(params: PoolParams) -> int:
    """K of the average-pool reciprocal: 24 − bitlen(max windows covering one input)."""
    windows = (-(-params.filter_h // params.stride_h)) * (-(-params.filter_w // params.stride_w))
    return 24 - int(windows).bit_length()


def average_pool_2d_backward_scratch_size(input_shape) -> int:
    """Bytes of scratch of the C kernel: the int32 sums of one input pixel (C of them), then
    2 bits per input element for the streaming requantization (tt_pow2_stream)."""
    return 4 * int(input_shape[-1]) + pow2_stream_scratch_size(int(np.prod(input_shape)))


def max_pool_2d_backward_scratch_size(input_shape) -> int:
    """Bytes of scratch of the C kernel: as average_pool_2d_backward_scratch_size."""
    return 4 * int(input_shape[-1]) + pow2_stream_scratch_size(int(np.prod(input_shape)))


def _geometry(params: PoolParams, input_shape, output_grad: np.ndarray):
    n, h, w, c = (int(d) for d in input_shape)
    gn, out_h, out_w, gc = output_grad.shape
    if (gn, gc) != (n, c):
        raise ValueError(f"pool gradient shape {output_grad.shape} does not match input "
                         f"shape {tuple(input_shape)}")
    top, left = params.pad_h, params.pad_w
    bottom = max((out_h - 1) * params.stride_h + params.filter_h - h - top, 0)
    right = max((out_w - 1) * params.stride_w + params.filter_w - w - left, 0)
    inside = np.pad(np.ones((1, h, w, 1), dtype=bool),
                    ((0, 0), (top, bottom), (left, right), (0, 0)))
    taps = []
    for fy in range(params.filter_h):
        for fx in range(params.filter_w):
            taps.append((slice(fy, fy + (out_h - 1) * params.stride_h + 1, params.stride_h),
                         slice(fx, fx + (out_w - 1) * params.stride_w + 1, params.stride_w)))
    return (top, bottom, left, right), inside, taps


def _scatter(pads, inside, taps, contributions, shape):
    """Sum every tap's (N, out_h, out_w, C) contribution into the padded input, then crop."""
    n, h, w, c = shape
    top, _, left, _ = pads
    acc = np.zeros((n,) + inside.shape[1:3] + (c,), dtype=np.int64)
    for (rows, cols), contrib in zip(taps, contributions):
        acc[:, rows, cols, :] += contrib   # one tap touches distinct positions
    return acc[:, top:top + h, left:left + w, :]


def average_pool_2d_backward(params: PoolParams, output_grad: np.ndarray,
                             output_grad_exponent: int, input_shape) -> tuple[np.ndarray, int]:
    g = np.asarray(output_grad, dtype=np.int64)
    shape = tuple(int(d) for d in input_shape)
    pads, inside, taps = _geometry(params, shape, g)
    count = sum(inside[:, r, c, :].astype(np.int64) for r, c in taps)
    if np.any(count == 0):
        raise ValueError("average pool window lies entirely in the padding")
    k = average_pool_recip_bits(params)
    if k < 0:
        raise ValueError("average pool backward: 2^24 or more windows cover one input")
    contrib = g * (((1 << k) + count // 2) // count)
    acc = _scatter(pads, inside, taps, (contrib for _ in taps), shape)
    return requantize_pow2(acc, int(output_grad_exponent) - k)


def max_pool_2d_backward(params: PoolParams, output_grad: np.ndarray,
                         output_grad_exponent: int, input: np.ndarray) -> tuple[np.ndarray, int]:
    x = np.asarray(input, dtype=np.int16)
    g = np.asarray(output_grad, dtype=np.int64)
    pads, inside, taps = _geometry(params, x.shape, g)
    top, bottom, left, right = pads
    # -129 in the padding: never a maximum, so the argmax stays in the clipped window.
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-129)
    best = first = None
    for t, (rows, cols) in enumerate(taps):
        vals = xp[:, rows, cols, :]
        if best is None:
            best, first = vals.copy(), np.zeros(vals.shape, dtype=np.int32)
        else:
            better = vals > best            # strict: ties keep the earlier tap
            best = np.where(better, vals, best)
            first = np.where(better, t, first)
    acc = _scatter(pads, inside, taps, (np.where(first == t, g, 0) for t in range(len(taps))),
                   x.shape)
    return requantize_pow2(acc, int(output_grad_exponent))
