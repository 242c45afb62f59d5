"""MEAN glue: TFLM's PrepareMeanOrSumHelper (reduce_common.cc) for int8.

TFLM runs every int8 MEAN through reference_ops::QuantizedMeanOrSum (no special case for
spatial axes, keep_dims or equal scales), so this does too."""
from __future__ import annotations

from ..kernels.mean import mean, mean_params
from . import _checks
from .base import OpKernel


class Mean(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 2)
        inp, axis_t, out = self.input(0), self.input(1), self.output(0)
        _checks.int8_tensor(self, inp, "input")
        _checks.int8_tensor(self, out, "output")
        axes = _checks.constant_int32(self, axis_t, "axis")
        rank = len(inp.shape)
        if rank > 4:
            raise self.unsupported(f"input rank {rank} > 4 is not supported")
        resolved = []
        for a in axes:   # ResolveAxis: negative axes count from the end, duplicates ignored
            r = int(a) + rank if a < 0 else int(a)
            if not 0 <= r < rank:
                raise _checks.shape_error(self, f"axis {int(a)} is out of range for rank {rank}")
            if r not in resolved:
                resolved.append(r)
        self.reduced_shape = tuple(1 if i in resolved else d for i, d in enumerate(inp.shape))
        if _checks.elements(self.reduced_shape) != _checks.elements(out.shape):
            raise _checks.shape_error(self, f"output {list(out.shape)} does not match input "
                                            f"{list(inp.shape)} reduced over axes {resolved}")
        _checks.scale_ratio(self, inp.scale, out.scale)
        count = _checks.elements(inp.shape) // max(_checks.elements(self.reduced_shape), 1)
        self.params = mean_params(inp.scale, inp.zero_point, out.scale, out.zero_point, count)

    def eval(self, inputs):
        return [mean(self.params, inputs[0], self.reduced_shape)]
