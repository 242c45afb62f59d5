"""PAD (and PADV2) glue: TFLM's PadPrepare (pad_common.cc) for int8."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..kernels.pad import pad, pad_params
from . import _checks
from .base import OpKernel


class Pad(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, (2, 3))
        inp, paddings_t, out = self.input(0), self.input(1), self.output(0)
        _checks.int8_tensor(self, inp, "input")
        _checks.int8_tensor(self, out, "output")
        paddings = _checks.constant_int32(self, paddings_t, "paddings")
        rank = len(inp.shape)
        if rank > 4 or len(out.shape) != rank:
            raise self.unsupported(f"input {list(inp.shape)} / output {list(out.shape)}: "
                                   "only equal ranks <= 4 are supported")
        if len(paddings) != 2 * rank:
            raise _checks.shape_error(self, f"paddings has {len(paddings)} values, expected "
                                            f"{2 * rank}")
        p = paddings.reshape(rank, 2)
        if np.any(p < 0) or tuple(int(d) for d in np.asarray(inp.shape) + p.sum(axis=1)) \
                != tuple(out.shape):
            raise _checks.shape_error(self, f"input {list(inp.shape)} padded by "
                                            f"{p.tolist()} is not the output {list(out.shape)}")
        self.constant = None
        if len(op.inputs) == 3:   # PADV2: the constant shares the output's quantization
            c = self.input(2)
            _checks.int8_tensor(self, c, "constant_values")
            if _checks.elements(c.shape) != 1 or c.zero_point != out.zero_point \
                    or np.float32(c.scale) != np.float32(out.scale):
                raise self.unsupported(f"constant_values {_checks.desc(c)} must be a scalar "
                                       "quantized like the output")
            self.constant = True
        self.params = pad_params(p, out.zero_point)

    def eval(self, inputs):
        params = self.params
        if self.constant:
            params = replace(params, pad_value=int(np.asarray(inputs[2]).reshape(-1)[0]))
        return [pad(params, inputs[0])]
