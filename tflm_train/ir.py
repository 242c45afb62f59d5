"""Graph IR: tensors with shapes, dtypes and quantization; ops with their options.

Built from (and written back to) the TFLite schema object tree of ``tflite_io``. Options
are plain dicts with the schema's field names in snake_case and the schema's integer enum
values (``padding`` 0 = SAME, 1 = VALID; ``fused_activation_function`` 0 NONE, 1 RELU,
2 RELU_N1_TO_1, 3 RELU6), the same values the C engine reads from the flatbuffer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ai_edge_litert import schema_py_generated as schema

from . import tflite_io
from .errors import ModelFormatError

# TFLite TensorType → numpy dtype (types the engines can meet; others raise on use).
TENSOR_DTYPES = {
    schema.TensorType.FLOAT32: np.dtype(np.float32),
    schema.TensorType.INT32: np.dtype(np.int32),
    schema.TensorType.UINT8: np.dtype(np.uint8),
    schema.TensorType.INT64: np.dtype(np.int64),
    schema.TensorType.BOOL: np.dtype(np.bool_),
    schema.TensorType.INT16: np.dtype(np.int16),
    schema.TensorType.INT8: np.dtype(np.int8),
}
DTYPE_TO_TENSOR_TYPE = {v: k for k, v in TENSOR_DTYPES.items()}


@dataclass
class Quantization:
    """Affine quantization: real = scale[c] * (q - zero_point[c]) along ``axis``."""

    scale: np.ndarray        # float32, shape [1] (per-tensor) or [channels]
    zero_point: np.ndarray   # int64, same length as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quant: Quantization | None = None
    data: np.ndarray | None = None   # constant contents (weights, biases, shapes)
    buffer: int = 0
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        """Read-only data in the model (weights, shapes); variables hold data but change."""
        return self.data is not None and not self.is_variable

    @property
    def is_parameter(self) -> bool:
        """Weights and biases, frozen (constant) or trainable (variable)."""
        return self.data is not None

    @property
    def scale(self) -> float:
        """Per-tensor scale (first entry for per-channel tensors)."""
        return float(self.quant.scale[0]) if self.quant is not None else 1.0

    @property
    def zero_point(self) -> int:
        return int(self.quant.zero_point[0]) if self.quant is not None else 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass
class Op:
    index: int
    opcode: str                       # builtin name, e.g. "CONV_2D", or "CUSTOM:<code>"
    inputs: list[int]                 # tensor indices, -1 for an absent optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)
    custom_options: bytes | None = None


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    name: str = ""
    model: schema.ModelT | None = None   # the object tree it came from (for writing back)
    subgraph: int = 0

    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    def to_model(self) -> schema.ModelT:
        """Write constant data back into the source object tree and return it."""
        if self.model is None:
            raise ValueError("graph has no source model to write into")
        for t in self.tensors:
            if t.data is not None and t.buffer > 0:
                self.model.buffers[t.buffer].data = np.frombuffer(
                    np.ascontiguousarray(t.data).tobytes(), dtype=np.uint8).copy()
        return self.model

    def save(self, path: str | Path) -> None:
        tflite_io.save_model(self.to_model(), path)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def _options_dict(opts) -> dict:
    if opts is None:
        return {}
    out = {}
    for k, v in vars(opts).items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        out[_snake(k)] = v
    return out


def _quantization(t: schema.TensorT, rank: int) -> Quantization | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = np.asarray(q.scale, dtype=np.float32).reshape(-1)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)),
                    dtype=np.int64).reshape(-1)
    if len(zp) == 1 and len(scale) > 1:
        zp = np.repeat(zp, len(scale))
    axis = int(q.quantizedDimension)
    # person_detect has quantized_dimension=3 on 1-D biases; TFLM accepts it, so do we:
    # an axis beyond the rank can only mean the single existing dimension.
    if axis >= max(rank, 1):
        axis = 0
    return Quantization(scale, zp, axis)


def _name(raw) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def from_model(model: schema.ModelT, subgraph: int = 0, where: str = "<model>") -> Graph:
    """Build the IR of one subgraph of a parsed model."""
    if subgraph >= len(model.subgraphs):
        raise ModelFormatError(f"{where}: no subgraph {subgraph}")
    g = model.subgraphs[subgraph]
    tensors = []
    for i, t in enumerate(g.tensors or []):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        dtype = TENSOR_DTYPES.get(t.type)
        data = None
        buf = model.buffers[t.buffer] if model.buffers and t.buffer < len(model.buffers) else None
        if buf is not None and buf.data is not None and len(buf.data) and dtype is not None:
            raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
            count = int(np.prod(shape, dtype=np.int64))
            if len(raw) != count * dtype.itemsize:
                raise ModelFormatError(
                    f"{where}: tensor {i} '{_name(t.name)}' shape {list(shape)} {dtype.name} needs "
                    f"{count * dtype.itemsize} bytes, buffer {t.buffer} has {len(raw)}")
            data = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        tensors.append(Tensor(
            index=i, name=_name(t.name), shape=shape,
            dtype=dtype if dtype is not None else np.dtype(np.void),
            quant=_quantization(t, len(shape)), data=data, buffer=int(t.buffer),
            is_variable=bool(t.isVariable)))
    ops = []
    for i, o in enumerate(g.operators or []):
        opcode = tflite_io.opcode_name(model, o.opcodeIndex)
        custom = None
        if o.customOptions is not None and len(o.customOptions):
            custom = np.asarray(o.customOptions, dtype=np.uint8).tobytes()
        ops.append(Op(
            index=i, opcode=opcode,
            inputs=[int(x) for x in (o.inputs if o.inputs is not None else [])],
            outputs=[int(x) for x in (o.outputs if o.outputs is not None else [])],
            options=_options_dict(o.builtinOptions), custom_options=custom))
    return Graph(tensors=tensors, ops=ops,
                 inputs=[int(x) for x in (g.inputs if g.inputs is not None else [])],
                 outputs=[int(x) for x in (g.outputs if g.outputs is not None else [])],
                 name=_name(g.name), model=model, subgraph=subgraph)


def load(path_or_bytes, subgraph: int = 0) -> Graph:
    """Read a .tflite file (path or bytes) into the IR."""
    where = str(path_or_bytes) if isinstance(path_or_bytes, (str, Path)) else "<model bytes>"
    return from_model(tflite_io.read_model(path_or_bytes), subgraph, where)
