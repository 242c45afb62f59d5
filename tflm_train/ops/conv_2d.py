"""CONV_2D glue: TFLM's ConvPrepare / CalculateOpDataConv, then the int8 kernel."""
from __future__ import annotations

from ..kernels.conv_2d import conv_2d, conv_2d_multiplier
from . import _mac
from .base import OpKernel


class Conv2D(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _mac.check_arity(self)
        inp, flt, bias, out = self.input(0), self.input(1), self.input(2), self.output(0)
        _mac.check_int8_activation_tensor(self, inp, "input")
        _mac.check_int8_activation_tensor(self, out, "output")
        window = _mac.window_options(self, op.options)
        for t, role in ((inp, "input"), (flt, "filter"), (out, "output")):
            if len(t.shape) != 4:
                raise _mac.shape_error(self, f"{role} {_mac.tensor_desc(t)} has shape "
                                             f"{list(t.shape)}, expected rank 4")
        cin, (oc, _, _, fc) = inp.shape[3], flt.shape
        if fc <= 0 or cin % fc or oc % (cin // fc):
            raise _mac.shape_error(self, f"input depth {cin} and filter {list(flt.shape)} do not "
                                         "form whole convolution groups")
        pad_w, pad_h = _mac.window_geometry(self, window, inp, flt, out, oc)
        scales, _ = _mac.check_weights(self, inp, flt, bias, out, oc)
        self.quant, self.params = _mac.conv_constants(self, conv_2d_multiplier, window, inp, out,
                                                      scales, pad_w, pad_h)
        self.output_shape = tuple(out.shape)

    def eval(self, inputs):
        x, f, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
        return [conv_2d(self.params, self.quant, x, f, b, self.output_shape)]
