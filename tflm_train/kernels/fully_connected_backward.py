"""FULLY_CONNECTED training kernels: input gradient and the fused weight/bias gradient +
in-place QAS update. Mirrors micro_ops/kernels/tt_fully_connected_backward.c.

Params are the forward ``FullyConnectedParams`` (only input_offset is used). Per-tensor weight
quantization is handled by the prepare helpers, which broadcast one scale to every unit.
"""
from __future__ import annotations

import numpy as np

from .fully_connected import FullyConnectedParams
from .gradient import pow2_stream_scratch_size, requantize_pow2
from .update import (BackwardInputQuant, UpdateParams, apply_weight_deltas, backward_input_prepare,
                     check_velocity, effective_multipliers, exact_matmul, prng_draws,
                     rounding_divide_by_pot64, update_bias, update_deltas)


def fully_connected_backward_input_prepare(filter_scales, filter_shape) -> BackwardInputQuant:
    """r_c, S_e, p for filter (units, depth): an input element sums `units` products."""
    return backward_input_prepare(filter_scales, filter_shape[0], filter_shape[0])


def fully_connected_backward_input_scratch_size(input_shape) -> int:
    """Bytes of scratch of the C kernel: 2 bits per input element (it streams the int32
    accumulators through tt_pow2_stream instead of holding them)."""
    return pow2_stream_scratch_size(int(np.prod(input_shape)))


def fully_connected_backward_input(params: FullyConnectedParams, quant: BackwardInputQuant,
                                   grad: np.ndarray, grad_exponent: int, filter: np.ndarray
                                   ) -> tuple[np.ndarray, int]:
    """grad (batches, units) int8 with exponent, filter (units, depth) → input gradient
    (batches, depth) int8 and its exponent."""
    units, depth = filter.shape[0], filter.shape[-1]
    hq = grad.reshape(-1, units).astype(np.int64) * quant.r.astype(np.int64)
    acc = exact_matmul(hq, filter.reshape(units, depth), (1 << 22) * 128 * units)
    scratch = rounding_divide_by_pot64(acc, quant.p)
    return requantize_pow2(scratch, grad_exponent + quant.s_e - 15 + quant.p)


def fully_connected_backward_input_split(params: FullyConnectedParams,
                                         quant: BackwardInputQuant, grad: np.ndarray,
                                         grad_exponent: int, filter_slice: np.ndarray,
                                         filter_rest: np.ndarray) -> tuple[np.ndarray, int]:
    """fully_connected_backward_input of the filter stored as its slice (units, k) and frozen
    rest (units, depth-k): same bits as the joined filter."""
    return fully_connected_backward_input(params, quant, grad, grad_exponent,
                                          np.concatenate((filter_slice, filter_rest), axis=-1))


def fully_connected_weight_grad(params: FullyConnectedParams, input: np.ndarray,
                                grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """accW (units, I) and accB (units,) int64 for the saved input (batches, I)."""
    units = grad.shape[-1]
    g = grad.reshape(-1, units)
    x = input.reshape(g.shape[0], -1).astype(np.int64) + params.input_offset
    return exact_matmul(g.T, x, 128 * 256 * g.shape[0]), g.astype(np.int64).sum(axis=0)


def fully_connected_update(params: FullyConnectedParams, update: UpdateParams,
                           input: np.ndarray | None, grad: np.ndarray, grad_exponent: int,
                           filter: np.ndarray, bias: np.ndarray | None, prng_state: int,
                           weight_velocity: np.ndarray | None = None,
                           bias_velocity: np.ndarray | None = None) -> int:
    """In place: filter[:, :I] (I = depth of the saved input (batches, I); a split filter
    passes its slice alone) and bias (units,).
    input may be None when update_weights is 0 (the bias gradient needs only grad).
    Draws: weights row-major (c, i), then biases in c order. Returns the new PRNG state.
    Momentum (update.momentum_q15 > 0): weight_velocity (int32, one per element of the
    trainable slice (units, I), row-major in draw order) and bias_velocity (int32, one
    per bias) are the Q16.16 velocities, read and updated in place; with momentum 0 they are
    ignored (may be None) and the result is plain SGD, bit for bit."""
    units, depth = filter.shape[0], filter.shape[-1]
    batches = grad.size // units
    ic = None if input is None else input.size // batches
    if grad.shape[-1] != units or (ic is not None and ic > depth):
        raise ValueError(f"fully_connected_update: input depth {ic}, filter {filter.shape}, "
                         f"grad {grad.shape}")
    if update.update_weights and input is None:
        raise ValueError("fully_connected_update: update_weights needs the saved input")
    if update.update_bias and bias is None:
        raise ValueError("fully_connected_update: update_bias without a bias tensor")
    mu = update.momentum_q15
    if update.update_bias:  # checked before anything is written
        check_velocity("fully_connected_update", "bias", bias_velocity, units, mu)
    if update.update_weights:
        check_velocity("fully_connected_update", "weight", weight_velocity, units * ic, mu)
        acc_w, _ = fully_connected_weight_grad(params, input, grad)
        m, s = effective_multipliers(update.weight_factor, update.lr)
        bits, prng_state = prng_draws(prng_state, acc_w.size)
        d = update_deltas(acc_w.ravel(), grad_exponent, np.repeat(m, ic), np.repeat(s, ic),
                          bits, mu, weight_velocity).reshape(acc_w.shape)
        w2 = filter.reshape(units, depth)
        w2[:, :ic] = apply_weight_deltas(w2[:, :ic], d)
    if update.update_bias:
        prng_state = update_bias(update, grad, units, grad_exponent, bias, prng_state,
                                 bias_velocity)
    return prng_state
