"""``Interpreter``: run a .tflite model on the numpy reference engine or the C engine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import ir, tflite_io
from .errors import ShapeError

BACKENDS = ("numpy", "c")


def _model_bytes(model) -> tuple[bytes, ir.Graph]:
    if isinstance(model, ir.Graph):
        data = tflite_io.write_model(model.to_model())
        return data, model
    if isinstance(model, (str, Path)):
        path = Path(model)
        graph = ir.load(path)
        return path.read_bytes(), graph
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        return data, ir.load(data)
    raise TypeError(f"model must be a path, bytes or tflm_train.Graph, not {type(model).__name__}")


class Interpreter:
    """Bit-exact int8 inference, the same on both backends and in the TFLM interpreter.

    >>> interp = Interpreter("model.tflite", backend="c")
    >>> y = interp.invoke(x)          # int8 (or float32 for float-I/O models)
    >>> interp.arena_bytes            # SRAM arena the C engine plans for this model
    """

    def __init__(self, model, backend: str = "numpy", arena_size: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.backend = backend
        self.model_bytes, self.graph = _model_bytes(model)
        self._arena_size = arena_size
        self._c = None
        if backend == "numpy":
            from .engine_numpy import NumpyEngine
            self._engine = NumpyEngine(self.graph)
        else:
            self._engine = self._c_engine()

    def _c_engine(self):
        if self._c is None:
            from .engine_c import CEngine
            self._c = CEngine(self.model_bytes, arena_size=self._arena_size)
        return self._c

    @property
    def arena_bytes(self) -> int:
        """Arena bytes of the C engine's plan (persistent data + peak of planned tensors)."""
        return self._c_engine().arena_bytes

    def _details(self, indices) -> list[dict]:
        out = []
        for i in indices:
            t = self.graph.tensors[i]
            out.append({"index": i, "name": t.name, "shape": t.shape, "dtype": t.dtype,
                        "scale": t.scale if t.quant is not None else None,
                        "zero_point": t.zero_point if t.quant is not None else None})
        return out

    @property
    def input_details(self) -> list[dict]:
        return self._details(self.graph.inputs)

    @property
    def output_details(self) -> list[dict]:
        return self._details(self.graph.outputs)

    def _prepare_input(self, x, tensor) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != tensor.shape and x.shape == tensor.shape[1:] and tensor.shape[:1] == (1,):
            x = x[None]  # allow a single sample without the batch dimension
        if x.shape != tensor.shape:
            raise ShapeError(f"input '{tensor.name}' expects shape {list(tensor.shape)}, "
                             f"got {list(x.shape)}")
        if x.dtype != tensor.dtype:
            if tensor.dtype == np.int8 and np.issubdtype(x.dtype, np.integer) \
                    and x.min(initial=0) >= -128 and x.max(initial=0) <= 127:
                x = x.astype(np.int8)
            elif tensor.dtype == np.float32 and np.issubdtype(x.dtype, np.floating):
                x = x.astype(np.float32)
            else:
                hint = ""
                if tensor.dtype == np.int8 and tensor.quant is not None:
                    hint = (f"; quantize it first: q = round(x / {tensor.scale:g}) + "
                            f"{tensor.zero_point}")
                raise ShapeError(f"input '{tensor.name}' expects {tensor.dtype.name}, "
                                 f"got {x.dtype.name}{hint}")
        return np.ascontiguousarray(x)

    def invoke(self, *inputs):
        """Run one inference. One array per model input; returns one array per output
        (a single array when the model has one output)."""
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        tensors = self.graph.input_tensors()
        if len(inputs) != len(tensors):
            raise ShapeError(f"model has {len(tensors)} input(s), got {len(inputs)}")
        xs = [self._prepare_input(x, t) for x, t in zip(inputs, tensors)]
        outs = self._engine.invoke(xs)
        return outs[0] if len(outs) == 1 else outs
