"""RESHAPE glue: TFLM's PrepareReshapeReference. The output tensor's static shape is
authoritative (the shape input / new_shape option only produced it)."""
from __future__ import annotations

from ..kernels.reshape import reshape
from . import _checks
from .base import OpKernel


class Reshape(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        if not 1 <= len(op.inputs) <= 2 or len(op.outputs) != 1 or op.inputs[0] < 0:
            raise _checks.shape_error(self, f"has {len(op.inputs)} inputs and "
                                            f"{len(op.outputs)} outputs, expected 1-2 and 1")
        inp, out = self.input(0), self.output(0)
        if inp.dtype != out.dtype:
            raise self.unsupported(f"input is {inp.dtype.name} but output is {out.dtype.name}")
        if any(d < 0 for d in out.shape) or \
                _checks.elements(inp.shape) != _checks.elements(out.shape):
            raise _checks.shape_error(self, f"input {list(inp.shape)} and output "
                                            f"{list(out.shape)} differ in size")
        self.output_shape = tuple(out.shape)

    def eval(self, inputs):
        return [reshape(inputs[0], self.output_shape)]
