"""CONV_2D training kernels: input gradient and the fused weight/bias gradient + in-place QAS
update. Mirrors micro_ops/kernels/tt_conv_2d_backward.c; see docs/training-numerics.md.

Params are the forward ``Conv2DParams`` (stride, dilation, leading padding, input offset; the
output offset and activation are unused: the gradient arrives already masked by the activation
kernel). Groups are not supported (filter depth must equal the input depth).
"""
from __future__ import annotations

import numpy as np

from .conv_2d import Conv2DParams, _windows
from .gradient import pow2_stream_scratch_size, requantize_pow2
from .update import (BackwardInputQuant, UpdateParams, apply_weight_deltas, backward_input_prepare,
                     check_velocity, effective_multipliers, exact_matmul, prng_draws,
                     rounding_divide_by_pot64, update_bias, update_deltas)


def conv_2d_backward_input_prepare(filter_scales, filter_shape) -> BackwardInputQuant:
    """r_c, S_e, p for filter (Co, KH, KW, Ci): an input element sums at most Co·KH·KW
    products."""
    co, kh, kw = filter_shape[0], filter_shape[1], filter_shape[2]
    return backward_input_prepare(filter_scales, co, co * kh * kw)


def conv_2d_backward_input_scratch_size(input_shape) -> int:
    """Bytes of scratch of the C kernel: 2 bits per input element (it streams the int32
    accumulators through tt_pow2_stream instead of holding them)."""
    return pow2_stream_scratch_size(int(np.prod(input_shape)))


def conv_2d_backward_input(params: Conv2DParams, quant: BackwardInputQuant, grad: np.ndarray,
                           grad_exponent: int, filter: np.ndarray, input_shape
                           ) -> tuple[np.ndarray, int]:
    """grad (N,OH,OW,Co) int8 with exponent, filter (Co,KH,KW,Ci) int8 (the forward weights)
    → input gradient (N,H,W,Ci) int8 and its exponent."""
    n, h, w, ci = input_shape
    co, kh, kw, fc = filter.shape
    if fc != ci:
        raise ValueError(f"conv_2d_backward_input: grouped conv (filter depth {fc}, input "
                         f"depth {ci}) is not supported")
    _, oh, ow, _ = grad.shape
    sh, sw, dh, dw = params.stride_h, params.stride_w, params.dilation_h, params.dilation_w
    hq = grad.astype(np.int64) * quant.r.astype(np.int64)          # |h| < 2^22
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, params.pad_h + h)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, params.pad_w + w)
    acc = np.zeros((n, hp, wp, ci), dtype=np.int64)
    flat = hq.reshape(-1, co)
    for ky in range(kh):
        for kx in range(kw):
            contrib = exact_matmul(flat, filter[:, ky, kx, :], (1 << 22) * 128 * co)
            y0, x0 = ky * dh, kx * dw
            acc[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :] += \
                contrib.reshape(n, oh, ow, ci)
    acc = acc[:, params.pad_h:params.pad_h + h, params.pad_w:params.pad_w + w, :]
    scratch = rounding_divide_by_pot64(acc, quant.p)
    return requantize_pow2(scratch, grad_exponent + quant.s_e - 15 + quant.p)


def conv_2d_backward_input_split(params: Conv2DParams, quant: BackwardInputQuant,
                                 grad: np.ndarray, grad_exponent: int, filter_slice: np.ndarray,
                                 filter_rest: np.ndarray, input_shape) -> tuple[np.ndarray, int]:
    """conv_2d_backward_input of the filter stored as its slice (Co,KH,KW,k) and frozen rest
    (Co,KH,KW,Ci-k): same bits as the joined filter."""
    return conv_2d_backward_input(params, quant, grad, grad_exponent,
                                  np.concatenate((filter_slice, filter_rest), axis=-1),
                                  input_shape)


def conv_2d_weight_grad(params: Conv2DParams, input: np.ndarray, grad: np.ndarray,
                        kernel_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """accW (Co, KH, KW, I) and accB (Co,) int64 for the saved input (N,H,W,I) (I = the
    trainable input channels) and grad (N,OH,OW,Co). Padding taps are omitted."""
    kh, kw = kernel_hw
    n, oh, ow, co = grad.shape
    i = input.shape[3]
    x = input.astype(np.int64) + params.input_offset
    win = _windows(x, kh, kw, params, oh, ow).reshape(n * oh * ow, kh * kw * i)
    g = grad.reshape(n * oh * ow, co)
    acc_w = exact_matmul(g.T, win, 128 * 256 * n * oh * ow).reshape(co, kh, kw, i)
    acc_b = g.astype(np.int64).sum(axis=0)
    return acc_w, acc_b


def conv_2d_update(params: Conv2DParams, update: UpdateParams, input: np.ndarray | None,
                   grad: np.ndarray, grad_exponent: int, filter: np.ndarray,
                   bias: np.ndarray | None, prng_state: int,
                   weight_velocity: np.ndarray | None = None,
                   bias_velocity: np.ndarray | None = None) -> int:
    """In place: filter[..., :I] and bias (Co,) updated from the saved input (N,H,W,I), I <=
    Ci the trainable input channels (a split filter passes its slice alone: Ci = I). input
    may be None when update_weights is 0 (the bias gradient needs only grad). Draws: weights
    row-major (c, ky, kx, i), then biases in c order. Returns the new PRNG state.
    Momentum (update.momentum_q15 > 0): weight_velocity (int32, one per element of the
    trainable slice (Co, KH, KW, I), row-major in draw order) and bias_velocity (int32, one
    per bias) are the Q16.16 velocities, read and updated in place; with momentum 0 they are
    ignored (may be None) and the result is plain SGD, bit for bit."""
    co, kh, kw, ci = filter.shape
    if grad.shape[3] != co or (input is not None and input.shape[3] > ci):
        raise ValueError(f"conv_2d_update: input {None if input is None else input.shape}, "
                         f"filter {filter.shape}, grad {grad.shape}")
    if update.update_weights and input is None:
        raise ValueError("conv_2d_update: update_weights needs the saved input")
    if update.update_bias and bias is None:
        raise ValueError("conv_2d_update: update_bias without a bias tensor")
    mu = update.momentum_q15
    if update.update_bias:  # checked before anything is written
        check_velocity("conv_2d_update", "bias", bias_velocity, co, mu)
    if update.update_weights:
        ic = input.shape[3]
        check_velocity("conv_2d_update", "weight", weight_velocity, co * kh * kw * ic, mu)
        acc_w, _ = conv_2d_weight_grad(params, input, grad, (kh, kw))
        m, s = effective_multipliers(update.weight_factor, update.lr)
        bits, prng_state = prng_draws(prng_state, acc_w.size)
        d = update_deltas(acc_w.ravel(), grad_exponent, np.repeat(m, kh * kw * ic),
                          np.repeat(s, kh * kw * ic), bits, mu, weight_velocity
                          ).reshape(acc_w.shape)
        filter[..., :ic] = apply_weight_deltas(filter[..., :ic], d)
    if update.update_bias:
        prng_state = update_bias(update, grad, co, grad_exponent, bias, prng_state,
                                 bias_velocity)
    return prng_state
