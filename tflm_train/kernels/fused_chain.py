"""FUSED_CHAIN: a chain of int8 convolutions run row by row through line buffers.

Mirrors ``micro_ops/kernels/tt_fused_chain.c``. A chain is CONV_2D / DEPTHWISE_CONV_2D stages
where each stage reads only the previous stage's output (e.g. pointwise expand → depthwise →
pointwise project). Its values are exactly those of the stages run one after the other (this
reference does just that, reusing the conv kernels); what fusion changes is memory: the device
keeps only the rows of each intermediate map that the next stage's window still needs
(``fused_chain_scratch_size``), and the output may overwrite the input as it is consumed
(``fused_chain_in_place``), so neither the expanded map nor a second full-size activation is
ever materialised.

Schedule (the C kernel's, simulated here for the sizes): output rows are produced in order;
producing row j of stage k first produces, in order, the rows of stage k-1 that j's window
reads; stage k-1 keeps the last ``window`` rows (the next stage's dilated kernel height). The
last stage's row goes to a row buffer, then to the output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv_2d import Conv2DParams, PerChannelQuant, conv_2d
from .depthwise_conv_2d import DepthwiseConv2DParams, depthwise_conv_2d

CONV, DEPTHWISE = 0, 1   # FusedStage.kind (the C enum TT_FUSED_CONV / TT_FUSED_DEPTHWISE)
MAX_STAGES = 5   # 1 + 4·5 inputs + 2 outputs: within the C engine's 24 tensor views per op


@dataclass
class FusedStage:
    """One stage: its kernel params, requantization, filter geometry and output shape."""

    kind: int
    params: Conv2DParams | DepthwiseConv2DParams
    quant: PerChannelQuant
    kernel_h: int
    kernel_w: int
    out_shape: tuple[int, int, int]      # (h, w, c)

    @property
    def window(self) -> int:
        """Input rows one output row reads (dilated kernel height)."""
        return (self.kernel_h - 1) * self.params.dilation_h + 1

    def rows(self, j: int, in_h: int) -> tuple[int, int]:
        """[lo, hi) input rows output row j reads (clipped to the input)."""
        top = j * self.params.stride_h - self.params.pad_h
        return max(0, top), min(in_h, top + self.window)


def fused_chain_validate(stages: list[FusedStage], input_shape) -> str | None:
    """None if the chain is well formed for this input (tt_fused_chain_validate), else why:
    strides and dilations >= 1, padding >= 0, and every output row and column reads at least
    one input row and column."""
    if not 1 <= len(stages) <= MAX_STAGES or int(input_shape[0]) != 1:
        return f"1..{MAX_STAGES} stages on a batch of 1"
    h, w = int(input_shape[1]), int(input_shape[2])
    for i, s in enumerate(stages):
        p = s.params
        oh, ow, oc = s.out_shape
        if min(p.stride_h, p.stride_w, p.dilation_h, p.dilation_w) < 1 or \
                min(p.pad_h, p.pad_w) < 0 or min(oh, ow, oc) < 1:
            return f"stage {i}: strides and dilations must be >= 1, padding >= 0"
        kw_eff = (s.kernel_w - 1) * p.dilation_w + 1
        if s.window <= p.pad_h or kw_eff <= p.pad_w or (oh - 1) * p.stride_h - p.pad_h >= h \
                or (ow - 1) * p.stride_w - p.pad_w >= w:
            return f"stage {i}: strides, padding or output size leave rows or columns without input"
        h, w = oh, ow
    return None


def fused_chain(stages: list[FusedStage], input: np.ndarray, filters, biases) -> np.ndarray:
    """input (1,H,W,C) int8 → output (1, h, w, c) of the last stage, bit-exact with the stages
    run one by one."""
    x = input
    for s, f, b in zip(stages, filters, biases):
        shape = (x.shape[0],) + tuple(s.out_shape)
        if s.kind == CONV:
            x = conv_2d(s.params, s.quant, x, f, b, shape)
        else:
            x = depthwise_conv_2d(s.params, s.quant, x, f, b, shape)
    return x


def _row_bytes(shape) -> int:
    return int(shape[1]) * int(shape[2])


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def fused_chain_scratch_size(stages: list[FusedStage]) -> int:
    """Line buffers (stage k < n-1 keeps stage k+1's window rows of its output), each 4-byte
    aligned; a one-stage chain, which reads its input while it writes, needs one output row
    instead (longer chains write each row straight into the output)."""
    total = 0
    for k in range(len(stages) - 1):
        total += _align4(stages[k + 1].window * _row_bytes(stages[k].out_shape))
    if len(stages) == 1:
        total += _align4(_row_bytes(stages[0].out_shape))
    return total


def fused_chain_in_place(stages: list[FusedStage], input_shape) -> bool:
    """True if the output may start at the input's address: every output row is written only
    over input rows the schedule no longer reads."""
    in_h = int(input_shape[1])
    in_row = int(input_shape[2]) * int(input_shape[3])
    out_row = _row_bytes(stages[-1].out_shape)
    heights = [in_h] + [int(s.out_shape[0]) for s in stages]
    produced = [0] * len(stages)

    def produce(k: int, upto: int) -> None:
        while produced[k] < upto:
            lo, hi = stages[k].rows(produced[k], heights[k])
            if k > 0:
                produce(k - 1, hi)
            produced[k] += 1

    for r in range(heights[-1]):
        produce(len(stages) - 1, r + 1)
        # the input rows still to be read: those of stage 0's next row, if any
        j = produced[0]
        need = stages[0].rows(j, in_h)[0] if j < heights[1] else in_h
        if (r + 1) * out_row > need * in_row:
            return False
    return True


__all__ = ["CONV", "DEPTHWISE", "MAX_STAGES", "FusedStage", "fused_chain", "fused_chain_validate",
           "fused_chain_scratch_size", "fused_chain_in_place"]
