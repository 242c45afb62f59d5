"""Softmax cross-entropy on int8 logits, integer only (docs/training-numerics.md, "Loss").

Mirrors ``micro_ops/kernels/tt_loss.c``: ``softmax_cross_entropy(params, logits, label)`` ↔
``tt_softmax_cross_entropy(&params, depth, logits, label, &loss, grad, &grad_exponent,
scratch)``; ``softmax_cross_entropy_params(input_scale)`` ↔
``tt_softmax_cross_entropy_prepare(input_scale, &params)``.

- exp(s_z·(z_i − z_max)) in Q0.31 with the int8 SOFTMAX kernel's fixed point (beta 1, Q5.26
  differences, terms below ``diff_min`` are exactly 0), their sum S in Q12.19 (S ≥ 1: the
  maximum contributes exactly 2^19).
- p_i = exp_i / S in Q0.31 through the softmax reciprocal; gradient p − onehot in Q0.31
  (fits int32: p_y − 2^31 ≥ −2^31), 0 where it would push a logit at an int8 bound (−128 / 127)
  further out (the one-sided derivative of the int8 clamp), requantized to int8 with exponent
  ``s − 31``.
- Loss −ln p_y = ln S − s_z·(z_y − z_max) in Q16.16: ln S from an integer log2 (count leading
  zeros, then one squaring per fraction bit) times ln 2; the logit term by a fixed-point
  multiplier of s_z·2^16. This form stays exact when p_y underflows Q0.31.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import (INT32_MAX, INT32_MIN, _wrap32, exp_on_negative_values, get_reciprocal,
                     multiply_by_quantized_multiplier, quantize_multiplier,
                     rounding_divide_by_pot, saturating_rounding_doubling_high_mul)
from .gradient import requantize_pow2
from .softmax import ACCUMULATION_INTEGER_BITS, SCALED_DIFF_INTEGER_BITS, softmax_params

LOG2_FRACTION_BITS = 24          # integer log2 result: Q7.24
LN2_Q31 = 1488522236             # round(ln 2 · 2^31)
MAX_DEPTH = 4095                 # a Q12.19 sum of up to 4095 terms ≤ 1 stays below 2^31


@dataclass
class SoftmaxCrossEntropyParams:
    """tt_softmax_cross_entropy_params."""

    input_multiplier: int    # exp argument: s_z · 2^26 (as the SOFTMAX kernel, beta 1)
    input_left_shift: int
    diff_min: int            # differences below this have exp exactly 0
    logit_multiplier: int    # s_z · 2^16: a logit difference → Q16.16 nats
    logit_shift: int         # <= 23, so |diff| ≤ 255 shifted left stays in int32


def softmax_cross_entropy_scratch_size(depth: int) -> int:
    """Bytes of int32 scratch of the C kernel (the Q0.31 probabilities, one per class)."""
    return 4 * int(depth) if depth > 0 else 0


def softmax_cross_entropy_params(input_scale: float) -> SoftmaxCrossEntropyParams:
    """Prepare time: the softmax constants for beta 1 and the Q16.16 logit multiplier."""
    sp = softmax_params(1.0, input_scale)
    m, s = quantize_multiplier(float(np.float32(input_scale)) * 65536.0)
    if s > 23:
        raise ValueError(f"logit scale {input_scale} too large for a Q16.16 loss (must be < 128)")
    return SoftmaxCrossEntropyParams(sp.input_multiplier, sp.input_left_shift, sp.diff_min,
                                     int(m), int(s))


def log2_fixed(x: int, fraction_bits: int) -> int:
    """log2 of a positive int32 fixed-point value with ``fraction_bits`` fraction bits, as a
    Q7.24 int32: leading-zero normalisation to a Q1.30 mantissa in [1, 2), then 24 rounds of
    squaring (truncated) — each square ≥ 2 sets the next result bit and halves the mantissa."""
    x = int(x)
    if x <= 0:
        raise ValueError("log2 of a non-positive value")
    msb = x.bit_length() - 1
    m = x << (30 - msb)                      # Q1.30 in [2^30, 2^31)
    result = (msb - fraction_bits) << LOG2_FRACTION_BITS
    for k in range(1, LOG2_FRACTION_BITS + 1):
        m = (m * m) >> 30
        if m >= 1 << 31:
            m >>= 1
            result += 1 << (LOG2_FRACTION_BITS - k)
    return result


def _round_shift_right64(v: int, shift: int) -> int:
    """Signed right shift rounding half away from zero (as the C helper does)."""
    half = 1 << (shift - 1)
    return (v + half) >> shift if v >= 0 else -((-v + half) >> shift)


def _exps(params: SoftmaxCrossEntropyParams, logits: np.ndarray):
    """(exp_i in Q0.31 with 0 below diff_min, diff_i = z_i − z_max)."""
    z = np.asarray(logits, dtype=np.int64).reshape(-1)
    diff = z - z.max()
    used = diff >= params.diff_min
    scaled = saturating_rounding_doubling_high_mul(
        _wrap32(diff << params.input_left_shift), params.input_multiplier)
    exp = exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS)
    return np.where(used, exp, 0), diff


def softmax_cross_entropy_probabilities(params: SoftmaxCrossEntropyParams,
                                        logits: np.ndarray) -> tuple[np.ndarray, int]:
    """(p_i in Q0.31 as int64, S in Q12.19): the probabilities the loss and gradient use."""
    exp, _ = _exps(params, logits)
    total = int(rounding_divide_by_pot(exp, ACCUMULATION_INTEGER_BITS).sum())
    reciprocal, num_bits_over_unit = get_reciprocal(total, ACCUMULATION_INTEGER_BITS)
    p = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exp),
                               int(num_bits_over_unit))
    return p.astype(np.int64), total


def softmax_cross_entropy(params: SoftmaxCrossEntropyParams, logits: np.ndarray,
                          label: int) -> tuple[int, np.ndarray, int]:
    """int8 logits [C] (or [1, C]) and a label → (loss in Q16.16, int8 gradient, exponent)."""
    z = np.asarray(logits)
    depth = z.size
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"softmax cross-entropy supports 1..{MAX_DEPTH} classes, got {depth}")
    label = int(label)
    if not 0 <= label < depth:
        raise ValueError(f"label {label} out of range for {depth} classes (0 <= label < {depth})")
    _, diff = _exps(params, z)
    p, total = softmax_cross_entropy_probabilities(params, z)
    g = p.copy()
    g[label] -= 1 << 31                      # ≥ INT32_MIN since p ≥ 0
    zf = z.reshape(-1)
    g[((zf == 127) & (g < 0)) | ((zf == -128) & (g > 0))] = 0   # can't move past an int8 bound
    grad, e = requantize_pow2(g, -31)
    ln_s = _round_shift_right64(log2_fixed(total, 31 - ACCUMULATION_INTEGER_BITS) * LN2_Q31,
                                LOG2_FRACTION_BITS + 31 - 16)
    logit_term = int(multiply_by_quantized_multiplier(int(diff[label]), params.logit_multiplier,
                                                      params.logit_shift))
    loss = min(max(ln_s - logit_term, INT32_MIN), INT32_MAX)
    return int(loss), grad.reshape(z.shape), e
