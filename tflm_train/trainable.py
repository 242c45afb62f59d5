"""``convert``: int8 model → ``TrainableModel`` (a ``*.train.tflite``), and loading one back."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flatbuffers import flexbuffers

from ai_edge_litert import schema_py_generated as schema

from . import ir, tflite_io
from .compiler import METADATA_NAME, SGD, _ModelEditor, compile_model, read_metadata
from .errors import ModelFormatError
from .schemes import SPLIT_OPCODES, UpdateScheme, parse_spec


def _scheme(update) -> UpdateScheme:
    if isinstance(update, UpdateScheme):
        return update
    if isinstance(update, dict):
        return UpdateScheme.from_json(update)
    if isinstance(update, str):
        return parse_spec(update)
    raise TypeError(f"update must be an UpdateScheme, a dict or a spec string, not "
                    f"{type(update).__name__}")


def _source_model(model) -> tuple[schema.ModelT, str]:
    if isinstance(model, ir.Graph):
        return model.to_model(), model.name
    if isinstance(model, (str, Path)):
        return tflite_io.read_model(model), Path(model).name
    if isinstance(model, (bytes, bytearray)):
        return tflite_io.read_model(bytes(model)), ""
    if isinstance(model, schema.ModelT):
        return model, ""
    raise TypeError(f"model must be a path, bytes or Graph, not {type(model).__name__}")


class TrainableModel:
    """A training graph: ``save`` it as ``*.train.tflite``, train it with ``Trainer``."""

    def __init__(self, model: schema.ModelT, data: bytes | None = None, where: str = ""):
        self.model = model
        self.bytes = data if data is not None else tflite_io.write_model(model)
        self.graph = ir.from_model(tflite_io.read_model(self.bytes), where=where or "<trainable>")
        raw = read_metadata(model, METADATA_NAME)
        if raw is None:
            raise ModelFormatError(f"{where or 'model'}: no '{METADATA_NAME}' metadata: not a "
                                   f"*.train.tflite (use tflm_train.convert first)")
        self.metadata = dict(flexbuffers.Loads(raw))

    @property
    def scheme(self) -> UpdateScheme:
        return UpdateScheme.from_json(self.metadata["scheme"])

    @property
    def num_classes(self) -> int:
        return int(self.metadata["num_classes"])

    @property
    def lr(self) -> float:
        return float(self.metadata["lr"])

    def tensor_index(self, name: str) -> int:
        for t in self.graph.tensors:
            if t.name == name:
                return t.index
        raise KeyError(name)

    def parameter_indices(self) -> list[int]:
        """Variable tensors holding trainable parameters (not the state, not velocities)."""
        return [t.index for t in self.graph.tensors if t.is_variable and t.name != "tt_state"
                and not t.name.startswith("velocity/")]

    def optimizer_state_indices(self) -> list[int]:
        """Momentum velocities (one int32 per trainable element)."""
        return [t.index for t in self.graph.tensors if t.is_variable
                and t.name.startswith("velocity/")]

    def save(self, path) -> None:
        Path(path).write_bytes(self.bytes)

    def memory_report(self):
        from .memory import memory_report
        return memory_report(self)


def convert(model, update="last-2", num_classes: int | None = None,
            optimizer: SGD | None = None, seed: int = 0, qas: bool = True,
            fuse: bool = True) -> TrainableModel:
    """Turn an int8 model into a trainable one.

    update: an ``UpdateScheme``, its JSON dict, or a spec string ("bias", "last-2", "full",
    "sparse:bias=4,7=1/2", "paper:...", "@scheme.json"). num_classes replaces the classifier
    with a new seeded one. qas=False is the ablation without Quantization-Aware Scaling.
    fuse=False keeps every frozen convolution a builtin op (no TT_FUSED_CHAIN: more memory).
    """
    src, name = _source_model(model)
    out, _, _ = compile_model(src, _scheme(update), num_classes, optimizer or SGD(),
                              seed, qas, source=name, fuse=fuse)
    return TrainableModel(out, where=name)


def load_trainable(path) -> TrainableModel:
    where = str(path)
    data = Path(path).read_bytes() if isinstance(path, (str, Path)) else bytes(path)
    return TrainableModel(tflite_io.read_model(data, where), data, where=where)


def export_inference_model(trainable: TrainableModel, variables: dict[int, np.ndarray]) -> bytes:
    """Plain int8 model with the trained parameters: the forward builtin ops of the training
    graph, image in, logits out, every unused tensor and buffer dropped, no custom ops (a
    split-filter op becomes its builtin op again, its two filter parts joined)."""
    import copy

    from .fusion import unfuse

    model = copy.deepcopy(trainable.model)
    unfuse(model)
    sg = model.subgraphs[0]
    for idx, value in variables.items():
        t = sg.tensors[idx]
        t.isVariable = False
        model.buffers[t.buffer].data = np.frombuffer(np.ascontiguousarray(value).tobytes(),
                                                     dtype=np.uint8).copy()
    forward = []
    for op in sg.operators:
        name = tflite_io.opcode_name(model, op.opcodeIndex)
        if name == "CUSTOM:TT_SOFTMAX_XENT":
            break
        if name in SPLIT_OPCODES:
            _join_split_op(model, op, SPLIT_OPCODES[name])
            forward.append(op)
        elif not name.startswith("CUSTOM:"):
            forward.append(op)
    sg.operators = forward
    sg.inputs = np.array(sg.inputs[:1], dtype=np.int32)
    sg.outputs = np.array(sg.outputs[:1], dtype=np.int32)
    _prune(model)
    model.metadata = None
    return tflite_io.write_model(model)


_BUILTIN_OPTIONS = {
    "CONV_2D": (schema.Conv2DOptionsT, schema.BuiltinOptions.Conv2DOptions),
    "DEPTHWISE_CONV_2D": (schema.DepthwiseConv2DOptionsT,
                          schema.BuiltinOptions.DepthwiseConv2DOptions),
    "FULLY_CONNECTED": (schema.FullyConnectedOptionsT, schema.BuiltinOptions.FullyConnectedOptions),
}


def _join_split_op(model: schema.ModelT, op: schema.OperatorT, builtin: str) -> None:
    """A split-filter op (TT_CONV_2D & co) → its builtin op on the joined filter: the frozen
    rest's tensor takes the whole weight (slice then rest along the last axis) under the
    weight's own name; the custom options become the builtin options."""
    sg = model.subgraphs[0]
    x, s_idx, r_idx = (int(i) for i in op.inputs[:3])
    bias = int(op.inputs[3]) if len(op.inputs) > 3 else -1
    s, r = sg.tensors[s_idx], sg.tensors[r_idx]

    def data(t):
        return np.frombuffer(np.asarray(model.buffers[t.buffer].data, np.uint8).tobytes(),
                             np.int8).reshape(tuple(t.shape))

    whole = np.concatenate((data(s), data(r)), axis=-1)
    q = s.quantization
    if len(q.scale) > 1 and q.quantizedDimension == len(s.shape) - 1:  # scales split too
        r.quantization.scale = np.concatenate((q.scale, r.quantization.scale))
        r.quantization.zeroPoint = np.concatenate((q.zeroPoint, r.quantization.zeroPoint))
    r.shape = np.array(whole.shape, dtype=np.int32)
    r.shapeSignature = None
    name = s.name.decode() if isinstance(s.name, bytes) else str(s.name)
    r.name = name.removesuffix("/trainable").encode()
    r.buffer = _ModelEditor(model).buffer(whole)
    cls, kind = _BUILTIN_OPTIONS[builtin]
    opts = cls()
    for key, value in (flexbuffers.Loads(bytes(op.customOptions)) if op.customOptions is not None
                       else {}).items():
        attr = key.split("_")[0] + "".join(w.capitalize() for w in key.split("_")[1:])
        if hasattr(opts, attr):
            setattr(opts, attr, bool(value) if isinstance(getattr(opts, attr), bool) else value)
    op.opcodeIndex = _ModelEditor(model).opcode(builtin=getattr(schema.BuiltinOperator, builtin))
    op.inputs = np.array([x, r_idx] + ([bias] if bias >= 0 else []), dtype=np.int32)
    op.builtinOptionsType = kind
    op.builtinOptions = opts
    op.customOptions = None
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS


def _prune(model: schema.ModelT) -> None:
    """Keep only the tensors, buffers and operator codes subgraph 0 uses (indices remapped)."""
    sg = model.subgraphs[0]
    used = sorted({int(i) for op in sg.operators for i in list(op.inputs) + list(op.outputs)
                   if i >= 0} | {int(i) for i in sg.inputs} | {int(i) for i in sg.outputs})
    remap = {old: new for new, old in enumerate(used)}
    sg.tensors = [sg.tensors[i] for i in used]
    for op in sg.operators:
        op.inputs = np.array([remap[i] if i >= 0 else -1 for i in op.inputs], dtype=np.int32)
        op.outputs = np.array([remap[i] for i in op.outputs], dtype=np.int32)
    sg.inputs = np.array([remap[int(i)] for i in sg.inputs], dtype=np.int32)
    sg.outputs = np.array([remap[int(i)] for i in sg.outputs], dtype=np.int32)
    bufs = sorted({t.buffer for t in sg.tensors} | {0})
    bremap = {old: new for new, old in enumerate(bufs)}
    model.buffers = [model.buffers[b] for b in bufs]
    for t in sg.tensors:
        t.buffer = bremap[t.buffer]
    codes = sorted({op.opcodeIndex for op in sg.operators})
    cremap = {old: new for new, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[c] for c in codes]
    for op in sg.operators:
        op.opcodeIndex = cremap[op.opcodeIndex]


def describe(trainable: TrainableModel) -> str:
    return json.dumps({k: v for k, v in trainable.metadata.items()}, indent=2, default=str)
