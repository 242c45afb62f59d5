"""Base class of the numpy op glue."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Op, Tensor


class OpKernel:
    """Prepare once from the graph (validate, derive fixed-point constants), eval many times."""

    def __init__(self, graph: Graph, op: Op):
        self.graph = graph
        self.op = op

    # helpers for subclasses
    def input(self, i: int) -> Tensor | None:
        idx = self.op.inputs[i] if i < len(self.op.inputs) else -1
        return None if idx < 0 else self.graph.tensors[idx]

    def output(self, i: int = 0) -> Tensor:
        return self.graph.tensors[self.op.outputs[i]]

    def unsupported(self, detail: str) -> UnsupportedOpError:
        return UnsupportedOpError(self.op.index, self.op.opcode, detail)

    def require_dtype(self, tensor: Tensor, *dtypes) -> None:
        if tensor.dtype not in [np.dtype(d) for d in dtypes]:
            names = "/".join(np.dtype(d).name for d in dtypes)
            raise self.unsupported(f"tensor {tensor.index} '{tensor.name}' is {tensor.dtype.name}, "
                                   f"expected {names}")

    def eval(self, inputs: list) -> list[np.ndarray]:
        """``inputs`` has one array (or None for an absent optional input) per op input."""
        raise NotImplementedError
