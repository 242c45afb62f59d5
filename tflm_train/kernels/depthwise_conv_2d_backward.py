"""DEPTHWISE_CONV_2D training kernels: input gradient and the fused weight/bias gradient +
in-place QAS update. Mirrors micro_ops/kernels/tt_depthwise_conv_2d_backward.c.

Output channel c = i·dm + m reads input channel i (dm = depth multiplier). The trainable weight
slice is the first ch_count = I·dm channels of W (1, KH, KW, C), where I is the depth of the
saved (compact) input; a bias update covers all C channels.
"""
from __future__ import annotations

import numpy as np

from .depthwise_conv_2d import DepthwiseConv2DParams
from .gradient import pow2_stream_scratch_size, requantize_pow2
from .update import (BackwardInputQuant, UpdateParams, apply_weight_deltas, backward_input_prepare,
                     check_velocity, effective_multipliers, prng_draws, rounding_divide_by_pot64,
                     update_bias, update_deltas)


def depthwise_conv_2d_backward_input_prepare(filter_scales, filter_shape, depth_multiplier
                                             ) -> BackwardInputQuant:
    """r_c, S_e, p for filter (1, KH, KW, C): an input element sums at most dm·KH·KW products."""
    kh, kw, c = filter_shape[1], filter_shape[2], filter_shape[3]
    return backward_input_prepare(filter_scales, c, depth_multiplier * kh * kw)


def depthwise_conv_2d_backward_input_scratch_size(input_shape) -> int:
    """Bytes of scratch of the C kernel: 2 bits per input element (it streams the int32
    accumulators through tt_pow2_stream instead of holding them)."""
    return pow2_stream_scratch_size(int(np.prod(input_shape)))


def _padded_extent(out: int, stride: int, k: int, dil: int, pad: int, size: int) -> int:
    return max((out - 1) * stride + (k - 1) * dil + 1, pad + size)


def depthwise_conv_2d_backward_input(params: DepthwiseConv2DParams, quant: BackwardInputQuant,
                                     grad: np.ndarray, grad_exponent: int, filter: np.ndarray,
                                     input_shape) -> tuple[np.ndarray, int]:
    """grad (N,OH,OW,C) int8 with exponent, filter (1,KH,KW,C) → input gradient (N,H,W,Ci)
    int8 and its exponent."""
    n, h, w, ci = input_shape
    _, kh, kw, c = filter.shape
    dm = params.depth_multiplier
    if c != ci * dm:
        raise ValueError(f"depthwise_conv_2d_backward_input: filter depth {c} != input depth "
                         f"{ci} x depth multiplier {dm}")
    _, oh, ow, _ = grad.shape
    sh, sw, dh, dw = params.stride_h, params.stride_w, params.dilation_h, params.dilation_w
    hq = grad.astype(np.int64) * quant.r.astype(np.int64)
    acc = np.zeros((n, _padded_extent(oh, sh, kh, dh, params.pad_h, h),
                    _padded_extent(ow, sw, kw, dw, params.pad_w, w), ci), dtype=np.int64)
    wk = filter[0].astype(np.int64)
    for ky in range(kh):
        for kx in range(kw):
            contrib = (hq * wk[ky, kx]).reshape(n, oh, ow, ci, dm).sum(axis=-1)
            y0, x0 = ky * dh, kx * dw
            acc[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :] += contrib
    acc = acc[:, params.pad_h:params.pad_h + h, params.pad_w:params.pad_w + w, :]
    scratch = rounding_divide_by_pot64(acc, quant.p)
    return requantize_pow2(scratch, grad_exponent + quant.s_e - 15 + quant.p)


def depthwise_conv_2d_backward_input_split(params: DepthwiseConv2DParams,
                                           quant: BackwardInputQuant, grad: np.ndarray,
                                           grad_exponent: int, filter_slice: np.ndarray,
                                           filter_rest: np.ndarray, input_shape
                                           ) -> tuple[np.ndarray, int]:
    """depthwise_conv_2d_backward_input of the filter stored as its slice (1,KH,KW,k) and
    frozen rest (1,KH,KW,C-k): same bits as the joined filter."""
    return depthwise_conv_2d_backward_input(params, quant, grad, grad_exponent,
                                            np.concatenate((filter_slice, filter_rest), axis=-1),
                                            input_shape)


def depthwise_conv_2d_weight_grad(params: DepthwiseConv2DParams, input: np.ndarray,
                                  grad: np.ndarray, kernel_hw: tuple[int, int]
                                  ) -> tuple[np.ndarray, np.ndarray]:
    """accW (KH, KW, I·dm) (the trainable slice: the first I·dm channels) and accB (C,) (every
    channel) int64 for the saved input (N,H,W,I) and grad (N,OH,OW,C)."""
    kh, kw = kernel_hw
    n, oh, ow, _ = grad.shape
    i = input.shape[3]
    dm = params.depth_multiplier
    cc = i * dm
    sh, sw, dh, dw = params.stride_h, params.stride_w, params.dilation_h, params.dilation_w
    x = input.astype(np.int64) + params.input_offset
    hp = _padded_extent(oh, sh, kh, dh, params.pad_h, x.shape[1])
    wp = _padded_extent(ow, sw, kw, dw, params.pad_w, x.shape[2])
    xp = np.pad(x, ((0, 0), (params.pad_h, hp - params.pad_h - x.shape[1]),
                    (params.pad_w, wp - params.pad_w - x.shape[2]), (0, 0)))
    g = grad[..., :cc].astype(np.int64)
    acc_w = np.empty((kh, kw, cc), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            tap = xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]
            tap = np.repeat(tap, dm, axis=-1)            # channel i·dm + m reads input i
            acc_w[ky, kx] = (g * tap).sum(axis=(0, 1, 2))
    return acc_w, grad.astype(np.int64).sum(axis=(0, 1, 2))


def depthwise_conv_2d_update(params: DepthwiseConv2DParams, update: UpdateParams,
                             input: np.ndarray | None, grad: np.ndarray, grad_exponent: int,
                             filter: np.ndarray, bias: np.ndarray | None, prng_state: int,
                             weight_velocity: np.ndarray | None = None,
                             bias_velocity: np.ndarray | None = None) -> int:
    """In place: filter[0, :, :, :I·dm] and ALL C biases (the sparse-update bias set is whole
    layers); filter (1, KH, KW, F) may hold only the first F <= C channels (a split filter
    passes its slice alone). input may be None when update_weights is 0 (the bias gradient
    needs only grad). Draws: weights row-major over the slice (ky, kx, c), then biases in c
    order. Returns the new PRNG state.
    Momentum (update.momentum_q15 > 0): weight_velocity (int32, one per element of the
    trainable slice (1, KH, KW, I·dm), row-major in draw order) and bias_velocity (int32, one
    per bias) are the Q16.16 velocities, read and updated in place; with momentum 0 they are
    ignored (may be None) and the result is plain SGD, bit for bit."""
    _, kh, kw, fc = filter.shape
    c = grad.shape[3]
    dm = params.depth_multiplier
    if fc > c or (input is not None and input.shape[3] * dm > fc):
        raise ValueError(f"depthwise_conv_2d_update: input "
                         f"{None if input is None else input.shape} x dm {dm}, "
                         f"filter {filter.shape}, grad {grad.shape}")
    if update.update_weights and input is None:
        raise ValueError("depthwise_conv_2d_update: update_weights needs the saved input")
    if update.update_bias and bias is None:
        raise ValueError("depthwise_conv_2d_update: update_bias without a bias tensor")
    mu = update.momentum_q15
    if update.update_bias:  # checked before anything is written
        check_velocity("depthwise_conv_2d_update", "bias", bias_velocity, c, mu)
    if update.update_weights:
        cc = input.shape[3] * dm
        check_velocity("depthwise_conv_2d_update", "weight", weight_velocity, kh * kw * cc, mu)
        acc_w, _ = depthwise_conv_2d_weight_grad(params, input, grad, (kh, kw))
        m, s = effective_multipliers(update.weight_factor, update.lr)
        bits, prng_state = prng_draws(prng_state, acc_w.size)
        d = update_deltas(acc_w.ravel(), grad_exponent, np.tile(m[:cc], kh * kw),
                          np.tile(s[:cc], kh * kw), bits, mu, weight_velocity
                          ).reshape(acc_w.shape)
        filter[0, :, :, :cc] = apply_weight_deltas(filter[0, :, :, :cc], d)
    if update.update_bias:
        prng_state = update_bias(update, grad, c, grad_exponent, bias, prng_state,
                                 bias_velocity)
    return prng_state
