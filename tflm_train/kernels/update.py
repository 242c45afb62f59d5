"""The in-place QAS update primitive shared by the MAC training kernels, and their prepare-time
constants. Same names and bits as micro_ops/kernels/tt_update.c; see docs/training-numerics.md.

Run time is integer-only: ``update_multiplier`` combines a compile-time per-channel factor with
the run-time learning rate, ``sgd_delta`` turns an accumulated gradient into a stochastically
rounded int32 step in units of one parameter LSB. The *_prepare / factor helpers use doubles.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quant import INT32_MAX, frexp_multiplier, round_away, saturating_rounding_doubling_high_mul
from .conv_2d import PerChannelQuant
from .gradient import prng_next

R_MAX = 62  # largest number of fractional bits kept before the stochastic rounding
VELOCITY_FRAC_BITS = 16  # velocity: int32 Q16.16 in units of one parameter LSB
MOMENTUM_ONE = 1 << 15   # momentum_q15 is μ·2^15


@dataclass
class UpdateParams:
    """tt_update_params: per-output-channel factors (compile time), lr (run time), flags."""

    weight_factor: PerChannelQuant   # s_x / s_w[c] (QAS) or s_x * s_w[c] (plain SGD)
    bias_factor: PerChannelQuant     # 1 / (s_x * s_w[c]) (QAS) or s_x * s_w[c] (plain SGD)
    lr: tuple[int, int]              # tt_quant_mult {multiplier, shift}
    update_weights: int
    update_bias: int
    momentum_q15: int = 0            # μ·2^15 in [0, 2^15); 0 = plain SGD, no velocity state


@dataclass
class BackwardInputQuant:
    """tt_backward_input_quant: r_c in Q15 (per output channel), S_e and the pre-shift p."""

    r: np.ndarray   # int32, 0 <= r_c < 2^15
    s_e: int
    p: int


# --------------------------------------------------------------------------- prepare time

def update_factor(real: float) -> tuple[int, int]:
    """real >= 0 → (multiplier, shift) with real ≈ multiplier · 2^(shift − 31), multiplier in
    [2^30, 2^31). Like QuantizeMultiplier but tiny values are not flushed to zero: a small
    factor times a small lr must still give a (small) update."""
    real = float(real)
    if not (real >= 0.0 and math.isfinite(real)):
        raise ValueError(f"update factor must be finite and >= 0, got {real}")
    return frexp_multiplier(real)


def update_lr(lr: float) -> tuple[int, int]:
    """Float learning rate → the run-time (multiplier, shift) pair."""
    return update_factor(lr)


def update_factors(input_scale, filter_scales, n_channels: int, qas: bool
                   ) -> tuple[PerChannelQuant, PerChannelQuant]:
    """Per-output-channel (weight factor, bias factor). filter_scales has 1 (per tensor) or
    n_channels entries. QAS: s_x/s_w[c] and 1/(s_x·s_w[c]); plain SGD: s_x·s_w[c] for both.
    float32 scales are widened to double before any arithmetic (as in C)."""
    sx = float(np.float32(input_scale))
    sw = np.asarray(filter_scales, dtype=np.float32).ravel()
    if sw.size not in (1, n_channels):
        raise ValueError(f"{sw.size} filter scales for {n_channels} channels")
    wm, ws, bm, bs = [], [], [], []
    for c in range(n_channels):
        s = float(sw[0] if sw.size == 1 else sw[c])
        if qas:
            w, b = update_factor(sx / s), update_factor(1.0 / (sx * s))
        else:
            w = b = update_factor(sx * s)
        wm.append(w[0]); ws.append(w[1]); bm.append(b[0]); bs.append(b[1])
    as32 = lambda v: np.array(v, dtype=np.int32)  # noqa: E731
    return (PerChannelQuant(as32(wm), as32(ws)), PerChannelQuant(as32(bm), as32(bs)))


def momentum_q15(mu: float) -> int:
    """Momentum μ in [0, 1) → μ·2^15 rounded half away from zero, clamped to 2^15 − 1 (μ just
    below 1 may round up to 2^15). μ = 0 gives 0: plain SGD."""
    mu = float(mu)
    if not (0.0 <= mu < 1.0):
        raise ValueError(f"momentum must be in [0, 1), got {mu}")
    return min(int(round_away(mu * MOMENTUM_ONE)), MOMENTUM_ONE - 1)


def backward_input_prepare(filter_scales, n_channels: int, fan_out: int) -> BackwardInputQuant:
    """r_c = round(2^15 · s_w[c] / 2^S_e) with S_e = floor(log2 max s_w) + 1, and the pre-shift
    p: the smallest with 128·128·(2^15 − 1)·fan_out / 2^p < 2^30, so the rounded accumulator
    value fits int32 with a bit to spare. fan_out = the number of (channel, tap) products
    summed into one input-gradient element (at most)."""
    sw = np.asarray(filter_scales, dtype=np.float32).ravel()
    if sw.size not in (1, n_channels):
        raise ValueError(f"{sw.size} filter scales for {n_channels} channels")
    if fan_out < 1 or not np.all(sw > 0):
        raise ValueError("fan_out must be >= 1 and filter scales > 0")
    s_e = math.frexp(float(sw.max()))[1]   # max = m·2^E, m in [0.5, 1) → floor(log2)+1 = E
    r = []
    for c in range(n_channels):
        s = float(sw[0] if sw.size == 1 else sw[c])
        # s / 2^S_e < 1, but may round up to 2^15: clamp to keep r_c < 2^15.
        r.append(min(int(round_away(math.ldexp(s, 15 - s_e))), (1 << 15) - 1))
    bound = 128 * 128 * ((1 << 15) - 1) * int(fan_out)
    p = max(0, bound.bit_length() - 30)
    return BackwardInputQuant(np.array(r, dtype=np.int32), s_e, p)


# --------------------------------------------------------------------------- run time

def update_multiplier(factor_multiplier: int, factor_shift: int, lr_multiplier: int,
                      lr_shift: int) -> tuple[int, int]:
    """Effective (multiplier, shift) = factor · lr: high-mul of the multipliers, shifts add."""
    m = int(saturating_rounding_doubling_high_mul(int(factor_multiplier), int(lr_multiplier)))
    return m, int(factor_shift) + int(lr_shift)


def sgd_delta(acc: int, e_acc: int, multiplier: int, shift: int, prng_state: int
              ) -> tuple[int, int]:
    """One stochastically rounded update (int32, parameter LSBs) and the new PRNG state.
    Scalar twin of tt_sgd_delta; ``sgd_deltas`` is the vectorised form used by the kernels."""
    state, bits = prng_next(prng_state)
    d = sgd_deltas(np.array([acc], dtype=np.int64), e_acc, np.array([multiplier]),
                   np.array([shift]), np.array([bits], dtype=np.uint64))
    return int(d[0]), state


def _qas_product(acc, e_acc: int, multiplier, shift):
    """Shared head of both update rules: (negative, |t|, R) with |t| = |acc|·|M| after the
    truncating 31-bit pre-shift of |acc| (uint64, < 2^62) and R its fractional bits (int64)."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.broadcast_to(np.asarray(multiplier, dtype=np.int64), acc.shape)
    sh = np.broadcast_to(np.asarray(shift, dtype=np.int64), acc.shape)
    neg = (acc < 0) != (m < 0)
    mag = np.abs(acc).astype(np.uint64)            # |INT64_MIN| wraps to 2^63 in uint64: right
    # Pre-shift |acc| >= 2^31 to 31 bits (truncating the magnitude); k joins the exponent.
    k = np.zeros(acc.shape, dtype=np.int64)
    for j in range(33):
        k += (mag >> np.uint64(31 + j)) != 0
    a32 = mag >> k.astype(np.uint64)
    t = a32 * np.abs(m).astype(np.uint64)          # < 2^62, exact
    return neg, t, 31 - sh - int(e_acc) - k


def _left_shift_sat(t, ls):
    """|t| << ls saturating at INT32_MAX (uint64 in, ls >= 0 int64)."""
    ls = np.clip(ls, 0, 63).astype(np.uint64)
    fits = (ls < np.uint64(32)) & (t <= (np.uint64(INT32_MAX) >> np.minimum(ls, np.uint64(31))))
    return np.where(t == 0, np.uint64(0),
                    np.where(fits, t << np.minimum(ls, np.uint64(31)), np.uint64(INT32_MAX)))


def sgd_deltas(acc, e_acc: int, multiplier, shift, bits) -> np.ndarray:
    """Vectorised sgd_delta: acc int64[n], multiplier/shift broadcast, bits = the n PRNG draws
    (uint64) in order. Returns int64 deltas in int32 range."""
    bits = np.asarray(bits, dtype=np.uint64)
    neg, t, r_bits = _qas_product(acc, e_acc, multiplier, shift)
    # R > 62: drop the extra low bits of |t| (|t| < 2^62, so a shift >= 62 leaves 0).
    extra = np.clip(r_bits - R_MAX, 0, 63).astype(np.uint64)
    t = np.where(r_bits > R_MAX, t >> extra, t)
    r_bits = np.minimum(r_bits, R_MAX)
    # R > 0: floor((|t| + r) / 2^R), r = the top R bits of the draw.
    rp = np.maximum(r_bits, 1).astype(np.uint64)
    r = bits >> (np.uint64(64) - rp)
    d_frac = (t + r) >> rp
    # R <= 0: exact left shift by -R, saturating.
    d_left = _left_shift_sat(t, -r_bits)
    d = np.where(r_bits > 0, np.minimum(d_frac, np.uint64(INT32_MAX)), d_left).astype(np.int64)
    return np.where(neg, -d, d)


def sgd_steps_q16(acc, e_acc: int, multiplier, shift) -> np.ndarray:
    """The exact QAS step t·2^-R rounded half away from zero to Q16.16 LSBs, magnitude
    saturated at INT32_MAX (int64 in int32 range). Momentum path; no PRNG draw."""
    neg, t, r_bits = _qas_product(acc, e_acc, multiplier, shift)
    rs = r_bits - VELOCITY_FRAC_BITS
    # rs > 0: (|t| + 2^(rs-1)) >> rs; |t| < 2^62, so rs >= 63 gives 0 and the sum stays < 2^63.
    rsc = np.clip(rs, 1, 63).astype(np.uint64)
    s_right = np.minimum((t + (np.uint64(1) << (rsc - np.uint64(1)))) >> rsc,
                         np.uint64(INT32_MAX))
    s = np.where(rs > 0, s_right, _left_shift_sat(t, -rs)).astype(np.int64)
    return np.where(neg, -s, s)


def momentum_deltas(step_q16, velocity, momentum_q15: int, bits
                    ) -> tuple[np.ndarray, np.ndarray]:
    """v ← sat(rdbp(μ·v, 15) + s) (sat = ±INT32_MAX, rdbp = half away from zero), then
    Δ = sign(v)·⌊(|v| + (u >> 48)) / 2^16⌋ with u the element's draw. Returns (Δ, new v),
    int64 arrays."""
    v = np.asarray(velocity, dtype=np.int64)
    decayed = rounding_divide_by_pot64(v * int(momentum_q15), 15)   # |μ·v| < 2^46
    v = np.clip(decayed + np.asarray(step_q16, dtype=np.int64), -INT32_MAX, INT32_MAX)
    r = np.asarray(bits, dtype=np.uint64) >> np.uint64(64 - VELOCITY_FRAC_BITS)
    d = ((np.abs(v).astype(np.uint64) + r) >> np.uint64(VELOCITY_FRAC_BITS)).astype(np.int64)
    return np.where(v < 0, -d, d), v


def update_deltas(acc, e_acc: int, multiplier, shift, bits, momentum_q15: int,
                  velocity: np.ndarray | None) -> np.ndarray:
    """The kernels' update rule: momentum_q15 == 0 → sgd_deltas (velocity neither read nor
    written); otherwise the momentum rule, writing the new velocity into `velocity` (int32,
    acc.size elements in the same order) in place."""
    if not momentum_q15:
        return sgd_deltas(acc, e_acc, multiplier, shift, bits)
    flat = velocity.reshape(-1)   # a view for the contiguous arrays the kernels require
    d, v = momentum_deltas(sgd_steps_q16(acc, e_acc, multiplier, shift), flat,
                           momentum_q15, bits)
    flat[:] = v
    return d


def sgd_momentum_delta(acc: int, e_acc: int, multiplier: int, shift: int, momentum_q15: int,
                       velocity: int, prng_state: int) -> tuple[int, int, int]:
    """Scalar twin of tt_sgd_momentum_delta: (Δ, new velocity, new PRNG state). With
    momentum_q15 == 0 it is sgd_delta and the velocity is returned unchanged."""
    state, bits = prng_next(prng_state)
    v = np.array([velocity], dtype=np.int32)
    d = update_deltas(np.array([acc], dtype=np.int64), e_acc, np.array([multiplier]),
                      np.array([shift]), np.array([bits], dtype=np.uint64), momentum_q15, v)
    return int(d[0]), int(v[0]), state


def update_bias(update: UpdateParams, grad: np.ndarray, channels: int, grad_exponent: int,
                bias: np.ndarray, prng_state: int, bias_velocity: np.ndarray | None) -> int:
    """Twin of tt_update_bias, the bias half of every MAC *_update kernel: in place, bias[c]
    less the update of grad summed over all but its last (channel) axis, one draw per channel
    in c order. Returns the new PRNG state."""
    acc_b = grad.reshape(-1, channels).astype(np.int64).sum(axis=0)
    m, s = effective_multipliers(update.bias_factor, update.lr)
    bits, prng_state = prng_draws(prng_state, channels)
    bias[:] = apply_bias_deltas(bias, update_deltas(acc_b, grad_exponent, m, s, bits,
                                                    update.momentum_q15, bias_velocity))
    return prng_state


def check_velocity(name: str, what: str, velocity, n: int, momentum_q15: int) -> None:
    """Kernel argument check: momentum in [0, 2^15); with momentum a C-contiguous int32
    velocity of n elements."""
    if not 0 <= int(momentum_q15) < MOMENTUM_ONE:
        raise ValueError(f"{name}: momentum_q15 {momentum_q15} outside [0, {MOMENTUM_ONE})")
    if not momentum_q15:
        return
    if velocity is None:
        raise ValueError(f"{name}: momentum needs the {what} velocity")
    if (not isinstance(velocity, np.ndarray) or velocity.dtype != np.int32
            or velocity.size != n or not velocity.flags.c_contiguous):
        raise ValueError(f"{name}: {what} velocity must be a C-contiguous int32 array of {n} "
                         f"elements, got {getattr(velocity, 'dtype', type(velocity))} "
                         f"{getattr(velocity, 'shape', '')}")


def prng_draws(state: int, n: int) -> tuple[np.ndarray, int]:
    """The next n xorshift64* outputs (uint64) and the new state."""
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        state, out[i] = prng_next(state)
    return out, state


def apply_weight_deltas(w: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """W̄ ← clamp(W̄ − Δ, −127, 127) (int8)."""
    return np.clip(w.astype(np.int64) - delta, -127, 127).astype(np.int8)


def apply_bias_deltas(b: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """b ← clamp_int32(b − Δb)."""
    return np.clip(b.astype(np.int64) - delta, -(1 << 31), INT32_MAX).astype(np.int32)


def effective_multipliers(factor: PerChannelQuant, lr: tuple[int, int]
                          ) -> tuple[np.ndarray, np.ndarray]:
    """update_multiplier of every channel's factor with the lr: (int64[C], int64[C])."""
    m = saturating_rounding_doubling_high_mul(factor.multiplier.astype(np.int64), int(lr[0]))
    return np.asarray(m, dtype=np.int64), factor.shift.astype(np.int64) + int(lr[1])


def rounding_divide_by_pot64(x, exponent: int) -> np.ndarray:
    """Round-half-away-from-zero right shift of int64 values (the p pre-shift of the scratch)."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    mask = np.int64((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Integer matrix product, int64 result. float64 BLAS is exact when every partial sum is an
    integer below 2^53 (bound = max |a|·max |b|·inner size); otherwise int64 matmul."""
    if bound < (1 << 53):
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)
