"""FULLY_CONNECTED glue: TFLM's FullyConnectedPrepare / CalculateOpDataFullyConnected."""
from __future__ import annotations

import numpy as np

from ..kernels.fully_connected import (FullyConnectedParams, PerChannelQuant, fully_connected,
                                       fully_connected_multiplier)
from ..quant import ACT_NONE
from . import _mac
from .base import OpKernel


class FullyConnected(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _mac.check_arity(self)
        inp, flt, bias, out = self.input(0), self.input(1), self.input(2), self.output(0)
        _mac.check_int8_activation_tensor(self, inp, "input")
        _mac.check_int8_activation_tensor(self, out, "output")
        opts = op.options
        act = int(opts.get("fused_activation_function", ACT_NONE))
        _mac.check_activation(self, act)
        if int(opts.get("weights_format", 0)) != 0:
            raise self.unsupported(f"weights_format {opts['weights_format']} is not supported "
                                   "(supported: DEFAULT)")
        if len(flt.shape) != 2:
            raise _mac.shape_error(self, f"filter {_mac.tensor_desc(flt)} has shape "
                                         f"{list(flt.shape)}, expected [units, depth]")
        units, accum = flt.shape
        # As TFLM: the input is read as [batches, accum] whatever its rank, and the output
        # as [batches, units] (keep_num_dims only changes the output's declared shape).
        in_size = int(np.prod(inp.shape, dtype=np.int64))
        out_size = int(np.prod(out.shape, dtype=np.int64))
        if len(out.shape) < 1 or out.shape[-1] != units or accum <= 0 or in_size % accum \
                or in_size // accum * units != out_size:
            raise _mac.shape_error(self, f"input {list(inp.shape)}, filter {list(flt.shape)} and "
                                         f"output {list(out.shape)} do not match")
        scales, per_channel = _mac.check_weights(self, inp, flt, bias, out, units)
        if per_channel:
            pairs = [fully_connected_multiplier(inp.scale, sc, out.scale) for sc in scales]
        else:
            # GetQuantizedConvolutionMultipler also checks that the bias scale agrees with
            # input scale * filter scale (within 2% of an output step).
            if bias is not None:
                bias_scale = bias.scale if bias.quant is not None else 0.0
                product = float(np.float32(inp.scale)) * float(scales[0])
                if not abs(product - bias_scale) / float(np.float32(out.scale)) <= 0.02:
                    raise self.unsupported(
                        f"bias {_mac.tensor_desc(bias)} scale {bias_scale} differs from input "
                        f"scale * filter scale {product}")
            pairs = [fully_connected_multiplier(inp.scale, scales[0], out.scale)]
        m, s = zip(*pairs)
        _mac.check_shifts(self, s)
        self.quant = PerChannelQuant(np.array(m, dtype=np.int32), np.array(s, dtype=np.int32))
        self.params = FullyConnectedParams(
            input_offset=-inp.zero_point, output_offset=out.zero_point,
            per_channel=int(per_channel),
            activation=_mac.activation(self, act, out))

    def eval(self, inputs):
        x, f, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        return [fully_connected(self.params, self.quant, x, f, b)]
