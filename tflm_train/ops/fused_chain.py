"""TT_FUSED_CHAIN glue (C twin: micro_ops/engine/ops/tt_op_fused_chain.c).

Inputs: x, then per stage (filter, bias or -1, multiplier int32[c], shift int32[c]).
Outputs: y, scratch (the line buffers, ``fused_chain_scratch_size``).
Options (FlexBuffer ints): ``stages`` and per stage i the keys of ``STAGE_KEYS`` prefixed
``s{i}_``. The op's intermediates are the stages' output tensors, kept with shape [0] for
their quantization (TFLite's convention): ``export`` rebuilds the builtin ops from them.
"""
from __future__ import annotations

import numpy as np

from ..kernels.conv_2d import Conv2DParams, PerChannelQuant
from ..kernels.depthwise_conv_2d import DepthwiseConv2DParams
from ..kernels.fused_chain import (CONV, DEPTHWISE, MAX_STAGES, FusedStage, fused_chain,
                                   fused_chain_scratch_size, fused_chain_validate)
from .training import TrainingOp

# per-stage option keys; padding/activation are the builtin enums, kept for export
STAGE_KEYS = ("kind", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_h", "pad_w",
              "depth_multiplier", "input_offset", "output_offset", "act_min", "act_max",
              "h", "w", "c", "padding", "activation")


def stage_options(i: int, values: dict) -> dict:
    return {f"s{i}_{k}": int(values[k]) for k in STAGE_KEYS}


class FusedChain(TrainingOp):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        n = self.opt("stages")
        if not 1 <= n <= MAX_STAGES or len(op.inputs) != 1 + 4 * n or len(op.outputs) != 2:
            raise self.unsupported(f"{n} stages with {len(op.inputs)} inputs and "
                                   f"{len(op.outputs)} outputs; expected 1..{MAX_STAGES} stages, "
                                   "1 + 4 per stage inputs, 2 outputs")
        self.stages: list[FusedStage] = []
        c_in = int(self.input(0).shape[-1])
        for i in range(n):
            o = {k: self.opt(f"s{i}_{k}") for k in STAGE_KEYS}
            w = self.input(1 + 4 * i)
            mult, shift = self.input(3 + 4 * i), self.input(4 + 4 * i)
            if w is None or mult is None or shift is None or w.data is None \
                    or mult.data is None or shift.data is None:
                raise self.unsupported(f"stage {i}: filter and requantization constants must "
                                       "be constant tensors")
            act = (o["act_min"], o["act_max"])
            if o["kind"] == CONV:
                if int(w.shape[3]) != c_in or int(w.shape[0]) != o["c"]:
                    raise self.unsupported(f"stage {i}: filter {list(w.shape)} does not map "
                                           f"{c_in} to {o['c']} channels")
                p = Conv2DParams(o["input_offset"], o["output_offset"], o["stride_w"],
                                 o["stride_h"], o["dilation_w"], o["dilation_h"], o["pad_w"],
                                 o["pad_h"], act)
            elif o["kind"] == DEPTHWISE:
                if int(w.shape[3]) != o["c"] or o["c"] != c_in * o["depth_multiplier"]:
                    raise self.unsupported(f"stage {i}: depthwise filter {list(w.shape)} does "
                                           f"not map {c_in} to {o['c']} channels")
                p = DepthwiseConv2DParams(o["input_offset"], o["output_offset"], o["stride_w"],
                                          o["stride_h"], o["dilation_w"], o["dilation_h"],
                                          o["pad_w"], o["pad_h"], o["depth_multiplier"], act)
            else:
                raise self.unsupported(f"stage {i}: kind {o['kind']} (0 conv, 1 depthwise)")
            q = PerChannelQuant(np.asarray(mult.data, np.int32), np.asarray(shift.data, np.int32))
            self.stages.append(FusedStage(o["kind"], p, q, int(w.shape[1]), int(w.shape[2]),
                                          (o["h"], o["w"], o["c"])))
            c_in = o["c"]
        why = fused_chain_validate(self.stages, self.input(0).shape)
        if why:
            raise self.unsupported(why)
        y = self.output(0)
        if tuple(y.shape[1:]) != self.stages[-1].out_shape:
            raise self.unsupported(f"output {list(y.shape)} differs from the last stage's "
                                   f"{list(self.stages[-1].out_shape)}")
        self.scratch_bytes = fused_chain_scratch_size(self.stages)

    def eval(self, inputs):
        filters = inputs[1::4]
        biases = inputs[2::4]
        return [fused_chain(self.stages, inputs[0], filters, biases), self.scratch(1)]
