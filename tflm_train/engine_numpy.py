"""The numpy reference engine: runs subgraph 0 of the IR op by op with the numpy kernels."""
from __future__ import annotations

import numpy as np

from .errors import ShapeError, UnsupportedOpError
from .ir import Graph
from .ops import kernel_class


class NumpyEngine:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.kernels = []
        for op in graph.ops:
            cls = kernel_class(op.opcode)
            if cls is None:
                raise UnsupportedOpError(op.index, op.opcode)
            self.kernels.append(cls(graph, op))

    def invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ShapeError(f"model has {len(g.inputs)} inputs, got {len(inputs)}")
        values: dict[int, np.ndarray] = {}
        for idx, x in zip(g.inputs, inputs):
            t = g.tensors[idx]
            x = np.asarray(x)
            if x.dtype != t.dtype or tuple(x.shape) != t.shape:
                raise ShapeError(f"input tensor {idx} '{t.name}' expects {t.dtype.name} "
                                 f"{list(t.shape)}, got {x.dtype.name} {list(x.shape)}")
            values[idx] = x
        for op, kernel in zip(g.ops, self.kernels):
            args = []
            for i in op.inputs:
                if i < 0:
                    args.append(None)
                elif i in values:
                    args.append(values[i])
                else:
                    args.append(g.tensors[i].data)
            outs = kernel.eval(args)
            for i, y in zip(op.outputs, outs):
                t = g.tensors[i]
                values[i] = np.asarray(y, dtype=t.dtype).reshape(t.shape)
        return [values[i] for i in g.outputs]
