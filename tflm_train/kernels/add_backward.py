"""Backward of ADD: the output gradient passes to both inputs (real-valued sum), masked by
the fused activation; an input broadcast along some dims gets the sum over them.

Mirrors ``micro_ops/kernels/tt_add_backward.c``:
``add_backward(output_grad, output_grad_exponent, input1_shape, input2_shape, output_mask)``
↔ ``tt_add_backward(&output_dims, output_grad, output_grad_exponent, output_mask,
&input1_dims, input1_grad, &input1_grad_exponent, &input2_dims, input2_grad,
&input2_grad_exponent, scratch)``.

Shapes have rank <= 4 and are padded with leading 1s (as the forward). An input whose padded
shape equals the output's gets the masked gradient unchanged (same exponent); a broadcast one
gets the int32 sum over its broadcast dims requantized with ``requantize_pow2`` (exponent
``e_g`` before the shift). ``output_mask`` is the output's packed activation mask (mask.py)
or None when ADD has no clamp to account for.
"""
from __future__ import annotations

import numpy as np

from .gradient import pow2_stream_scratch_size, requantize_pow2
from .mask import apply_activation_mask

MAX_BROADCAST_ELEMENTS = 1 << 24   # 127 · 2^24 < 2^31: the int32 sums cannot overflow


def _dims4(shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) > 4:
        raise ValueError(f"ADD backward supports rank <= 4, got shape {shape}")
    return (1,) * (4 - len(shape)) + shape


def add_backward_scratch_size(input1_shape, input2_shape, output_shape) -> int:
    """Bytes of scratch of the C kernel: 2 bits per element of the larger broadcast input
    (the streaming requantization of its sums, tt_pow2_stream); 0 when neither input is
    broadcast."""
    out4 = _dims4(output_shape)
    sizes = [int(np.prod(s)) for s in (input1_shape, input2_shape) if _dims4(s) != out4]
    return pow2_stream_scratch_size(max(sizes, default=0))


def _input_grad(g4: np.ndarray, e: int, input_shape) -> tuple[np.ndarray, int]:
    in4 = _dims4(input_shape)
    if in4 == g4.shape:
        return g4.reshape(input_shape).astype(np.int8), int(e)
    if any(i not in (1, o) for i, o in zip(in4, g4.shape)):
        raise ValueError(f"ADD input shape {tuple(input_shape)} does not broadcast to the "
                         f"output shape {g4.shape}")
    if g4.size > MAX_BROADCAST_ELEMENTS:
        raise ValueError(f"ADD backward broadcast over {g4.size} elements (max "
                         f"{MAX_BROADCAST_ELEMENTS})")
    axes = tuple(d for d in range(4) if in4[d] != g4.shape[d])
    acc = g4.astype(np.int64).sum(axis=axes, keepdims=True)
    q, e_in = requantize_pow2(acc, int(e))
    return q.reshape(input_shape), e_in


def add_backward(output_grad: np.ndarray, output_grad_exponent: int, input1_shape,
                 input2_shape, output_mask=None):
    """→ (input1_grad, input1_exponent, input2_grad, input2_exponent)."""
    g = np.asarray(output_grad, dtype=np.int8)
    if output_mask is not None:
        g = apply_activation_mask(g, output_mask)
    g4 = g.reshape(_dims4(g.shape))
    g1, e1 = _input_grad(g4, output_grad_exponent, input1_shape)
    g2, e2 = _input_grad(g4, output_grad_exponent, input2_shape)
    return g1, e1, g2, e2
