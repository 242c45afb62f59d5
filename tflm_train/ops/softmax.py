"""SOFTMAX glue: TFLM's SoftmaxPrepare / CalculateSoftmaxParams for int8 → int8."""
from __future__ import annotations

import numpy as np

from ..kernels.softmax import softmax, softmax_params
from . import _checks
from .base import OpKernel


class Softmax(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 1)
        inp, out = self.input(0), self.output(0)
        _checks.int8_tensor(self, inp, "input")
        _checks.int8_tensor(self, out, "output")
        if len(inp.shape) < 1 or tuple(inp.shape) != tuple(out.shape):
            raise _checks.shape_error(self, f"input {list(inp.shape)} and output "
                                            f"{list(out.shape)} must have one equal shape")
        if out.zero_point != -128 or np.float32(out.scale) != np.float32(1.0 / 256):
            raise self.unsupported(f"output {_checks.desc(out)} has scale {out.scale} and zero "
                                   f"point {out.zero_point}; int8 softmax needs 1/256 and -128")
        beta = float(op.options.get("beta", 1.0))
        try:
            self.params = softmax_params(beta, inp.scale)
        except ValueError as e:
            raise self.unsupported(str(e)) from None

    def eval(self, inputs):
        try:
            return [softmax(self.params, inputs[0])]
        except ValueError as e:
            raise _checks.shape_error(self, str(e)) from None
