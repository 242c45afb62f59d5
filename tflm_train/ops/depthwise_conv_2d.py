"""DEPTHWISE_CONV_2D glue: TFLM's DepthwiseConvPrepare / CalculateOpDataDepthwiseConv."""
from __future__ import annotations

from ..kernels.depthwise_conv_2d import (DepthwiseConv2DParams, depthwise_conv_2d,
                                         depthwise_conv_2d_multiplier)
from . import _mac
from .base import OpKernel


class DepthwiseConv2D(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _mac.check_arity(self)
        inp, flt, bias, out = self.input(0), self.input(1), self.input(2), self.output(0)
        _mac.check_int8_activation_tensor(self, inp, "input")
        _mac.check_int8_activation_tensor(self, out, "output")
        window = _mac.window_options(self, op.options)
        dm = int(op.options.get("depth_multiplier", 0))
        for t, role in ((inp, "input"), (flt, "filter"), (out, "output")):
            if len(t.shape) != 4:
                raise _mac.shape_error(self, f"{role} {_mac.tensor_desc(t)} has shape "
                                             f"{list(t.shape)}, expected rank 4")
        cin, (one, _, _, oc) = inp.shape[3], flt.shape
        # TFLM trusts depth_multiplier from the options; a value that disagrees with the
        # shapes would make it index out of bounds, so reject it.
        if one != 1 or dm <= 0 or oc != cin * dm:
            raise _mac.shape_error(self, f"filter {list(flt.shape)} with depth_multiplier {dm} "
                                         f"does not match input depth {cin}")
        pad_w, pad_h = _mac.window_geometry(self, window, inp, flt, out, oc)
        scales, _ = _mac.check_weights(self, inp, flt, bias, out, oc)
        self.quant, common = _mac.conv_constants(self, depthwise_conv_2d_multiplier, window, inp,
                                                 out, scales, pad_w, pad_h)
        self.params = DepthwiseConv2DParams(**vars(common), depth_multiplier=dm)
        self.output_shape = tuple(out.shape)

    def eval(self, inputs):
        x, f, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        return [depthwise_conv_2d(self.params, self.quant, x, f, b, self.output_shape)]
