"""ADD glue: TFLM's AddPrepare / CalculateOpDataAdd for int8 (add_common.cc)."""
from __future__ import annotations

from ..kernels.add import add, add_params
from ..quant import ACT_NONE, activation_range
from . import _checks
from .base import OpKernel


class Add(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 2)
        a, b, out = self.input(0), self.input(1), self.output(0)
        _checks.int8_tensor(self, a, "input1")
        _checks.int8_tensor(self, b, "input2")
        _checks.int8_tensor(self, out, "output")
        act = _checks.activation(self, int(op.options.get("fused_activation_function",
                                                          ACT_NONE)))
        if max(len(a.shape), len(b.shape), len(out.shape)) > 4:
            raise self.unsupported(f"rank > 4 is not supported (inputs {list(a.shape)}, "
                                   f"{list(b.shape)}, output {list(out.shape)})")
        rank = len(out.shape)
        for t in (a, b):
            padded = (1,) * (rank - len(t.shape)) + tuple(t.shape)
            if len(t.shape) > rank or any(d not in (1, o) for d, o in zip(padded, out.shape)):
                raise _checks.shape_error(self, f"{_checks.desc(t)} shape {list(t.shape)} does "
                                                f"not broadcast to the output {list(out.shape)}")
        try:
            self.params = add_params(a.scale, a.zero_point, b.scale, b.zero_point, out.scale,
                                     out.zero_point,
                                     activation_range(act, out.scale, out.zero_point))
        except ValueError as e:   # TFLM aborts on these multipliers
            raise self.unsupported(f"scales {a.scale}, {b.scale} → {out.scale}: {e}") from None

    def eval(self, inputs):
        return [add(self.params, inputs[0], inputs[1])]
