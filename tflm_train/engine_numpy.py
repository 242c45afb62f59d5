"""The numpy reference engine: runs subgraph 0 of the IR op by op with the numpy kernels.

Variable tensors (trainable parameters, training state) are copied from the model at creation,
updated in place by the training ops, persist across invokes and are restored by ``reset``.
"""
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
        self.variables: dict[int, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Restore every variable tensor (trainable parameters, state) from the model."""
        self.variables = {t.index: np.array(t.data, copy=True) for t in self.graph.tensors
                          if t.is_variable and t.data is not None}

    def tensor(self, index: int) -> np.ndarray | None:
        """Current value of a variable tensor (a copy), or None."""
        v = self.variables.get(index)
        return None if v is None else v.copy()

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self.variables[index][...] = value

    def invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise ShapeError(f"model has {len(g.inputs)} inputs, got {len(inputs)}")
        values: dict[int, np.ndarray] = dict(self.variables)  # same arrays: updates persist
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
