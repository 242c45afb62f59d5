"""DEQUANTIZE glue: TFLM's DequantizePrepare for int8 → float32."""
from __future__ import annotations

import numpy as np

from ..kernels.dequantize import DequantizeParams, dequantize
from . import _checks
from .base import OpKernel


class Dequantize(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 1)
        inp, out = self.input(0), self.output(0)
        _checks.int8_tensor(self, inp, "input")
        if out.dtype != np.float32:
            raise self.unsupported(f"output {_checks.desc(out)} is {out.dtype.name}; "
                                   "supported: int8 → float32")
        if _checks.elements(inp.shape) != _checks.elements(out.shape):
            raise _checks.shape_error(self, f"input {list(inp.shape)} and output "
                                            f"{list(out.shape)} differ in size")
        self.params = DequantizeParams(float(np.float32(inp.scale)), inp.zero_point)

    def eval(self, inputs):
        return [dequantize(self.params, inputs[0])]
