"""QUANTIZE glue: TFLM's PrepareQuantizeReference for float32 → int8 and int8 → int8."""
from __future__ import annotations

import numpy as np

from ..kernels.quantize import QuantizeParams, quantize, requantize, requantize_params
from . import _checks
from .base import OpKernel


class Quantize(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 1)
        inp, out = self.input(0), self.output(0)
        _checks.int8_tensor(self, out, "output")
        if _checks.elements(inp.shape) != _checks.elements(out.shape):
            raise _checks.shape_error(self, f"input {list(inp.shape)} and output "
                                            f"{list(out.shape)} differ in size")
        if inp.dtype == np.float32:
            self.float_input = True
            self.params = QuantizeParams(float(np.float32(out.scale)), out.zero_point)
        elif inp.dtype == np.int8:
            _checks.int8_tensor(self, inp, "input")
            _checks.scale_ratio(self, inp.scale, out.scale)
            self.float_input = False
            self.params = requantize_params(inp.scale, inp.zero_point, out.scale,
                                            out.zero_point)
        else:
            raise self.unsupported(f"input {_checks.desc(inp)} is {inp.dtype.name}; supported: "
                                   "float32 → int8, int8 → int8")

    def eval(self, inputs):
        f = quantize if self.float_input else requantize
        return [f(self.params, inputs[0])]
