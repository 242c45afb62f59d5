"""DEPTHWISE_CONV_2D glue: TFLM's DepthwiseConvPrepare / CalculateOpDataDepthwiseConv."""
from __future__ import annotations

import numpy as np

from ..kernels.depthwise_conv_2d import (DepthwiseConv2DParams, PerChannelQuant,
                                         depthwise_conv_2d, depthwise_conv_2d_multiplier)
from ..quant import compute_padding
from . import _mac
from .base import OpKernel


class DepthwiseConv2D(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _mac.check_arity(self)
        inp, flt, bias, out = self.input(0), self.input(1), self.input(2), self.output(0)
        _mac.check_int8_activation_tensor(self, inp, "input")
        _mac.check_int8_activation_tensor(self, out, "output")
        padding, sw, sh, dw, dh, act = _mac.window_options(self, op.options)
        dm = int(op.options.get("depth_multiplier", 0))
        for t, role in ((inp, "input"), (flt, "filter"), (out, "output")):
            if len(t.shape) != 4:
                raise _mac.shape_error(self, f"{role} {_mac.tensor_desc(t)} has shape "
                                             f"{list(t.shape)}, expected rank 4")
        n, h, w, cin = inp.shape
        one, kh, kw, oc = flt.shape
        # TFLM trusts depth_multiplier from the options; a value that disagrees with the
        # shapes would make it index out of bounds, so reject it.
        if one != 1 or dm <= 0 or oc != cin * dm:
            raise _mac.shape_error(self, f"filter {list(flt.shape)} with depth_multiplier {dm} "
                                         f"does not match input depth {cin}")
        out_h, pad_h = compute_padding(padding, h, kh, sh, dh)
        out_w, pad_w = compute_padding(padding, w, kw, sw, dw)
        if tuple(out.shape) != (n, out_h, out_w, oc):
            raise _mac.shape_error(self, f"output shape {list(out.shape)}, expected "
                                         f"{[n, out_h, out_w, oc]}")
        _mac.check_bias(self, bias, oc)
        scales, _ = _mac.filter_scales(self, flt, oc)
        _mac.check_scales(self, inp, scales, out)
        m, s = zip(*(depthwise_conv_2d_multiplier(inp.scale, sc, out.scale) for sc in scales))
        _mac.check_shifts(self, s)
        self.quant = PerChannelQuant(np.array(m, dtype=np.int32), np.array(s, dtype=np.int32))
        self.params = DepthwiseConv2DParams(
            input_offset=-inp.zero_point, output_offset=out.zero_point,
            stride_w=sw, stride_h=sh, dilation_w=dw, dilation_h=dh, pad_w=pad_w, pad_h=pad_h,
            depth_multiplier=dm, activation=_mac.activation(self, act, out))
        self.output_shape = tuple(out.shape)

    def eval(self, inputs):
        x, f, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        return [depthwise_conv_2d(self.params, self.quant, x, f, b, self.output_shape)]
