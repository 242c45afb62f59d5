"""Read and write ``.tflite`` flatbuffers (TFLite schema v3, object API of LiteRT's schema module).

``read_model`` validates what the object API does not (identifier, offsets, buffer indices)
and turns every failure into a ``ModelFormatError`` naming the file. ``write_model`` packs
with every buffer's data 16-byte aligned, which the Python flatbuffers builder does not do.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ai_edge_litert import schema_py_generated as schema

from .errors import ModelFormatError

FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16

BUILTIN_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TENSOR_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _check_structure(buf: bytes, where: str) -> None:
    """Cheap structural checks before the object API walks the buffer."""
    n = len(buf)
    if n < 8:
        raise ModelFormatError(f"{where}: {n} bytes is too short for a TFLite flatbuffer")
    if buf[4:8] != FILE_IDENTIFIER:
        raise ModelFormatError(f"{where}: file identifier is {bytes(buf[4:8])!r}, expected "
                               f"{FILE_IDENTIFIER!r} (not a TFLite model)")
    root = struct.unpack_from("<I", buf, 0)[0]
    if root + 4 > n:
        raise ModelFormatError(f"{where}: root table offset {root} is outside the file ({n} bytes)")


def read_model(data: bytes | bytearray | str | Path, name: str | None = None) -> schema.ModelT:
    """Parse a .tflite file (path or bytes) into the schema object tree."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise ModelFormatError(f"{path}: no such file")
        name = name or str(path)
        data = path.read_bytes()
    where = name or "<model bytes>"
    buf = bytes(data)
    _check_structure(buf, where)
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as e:  # the generated code raises whatever struct/IndexError it hits
        raise ModelFormatError(f"{where}: corrupt flatbuffer ({type(e).__name__}: {e})") from None
    _validate(model, where, len(buf))
    return model


def _validate(model: schema.ModelT, where: str, size: int) -> None:
    if not model.subgraphs:
        raise ModelFormatError(f"{where}: model has no subgraphs")
    nbuf = len(model.buffers or [])
    nops = len(model.operatorCodes or [])
    for si, g in enumerate(model.subgraphs):
        tensors = g.tensors or []
        for ti, t in enumerate(tensors):
            if t.buffer < 0 or t.buffer >= max(nbuf, 1) and t.buffer != 0:
                raise ModelFormatError(f"{where}: subgraph {si} tensor {ti} refers to buffer "
                                       f"{t.buffer}, model has {nbuf} buffers")
        for oi, op in enumerate(g.operators or []):
            if op.opcodeIndex < 0 or op.opcodeIndex >= nops:
                raise ModelFormatError(f"{where}: subgraph {si} op {oi} has opcode index "
                                       f"{op.opcodeIndex}, model has {nops} operator codes")
            for idx in list(op.inputs if op.inputs is not None else []) + \
                    list(op.outputs if op.outputs is not None else []):
                if idx < -1 or idx >= len(tensors):
                    raise ModelFormatError(f"{where}: subgraph {si} op {oi} refers to tensor "
                                           f"{idx}, subgraph has {len(tensors)} tensors")
        for idx in list(g.inputs if g.inputs is not None else []) + \
                list(g.outputs if g.outputs is not None else []):
            if idx < 0 or idx >= len(tensors):
                raise ModelFormatError(f"{where}: subgraph {si} input/output tensor {idx} out of "
                                       f"range ({len(tensors)} tensors)")
    for bi, b in enumerate(model.buffers or []):
        if b.offset and (b.offset > 1 and b.offset + b.size > size):
            raise ModelFormatError(f"{where}: buffer {bi} (offset {b.offset}, size {b.size}) "
                                   f"lies outside the file ({size} bytes)")


def opcode_name(model: schema.ModelT, opcode_index: int) -> str:
    """Builtin op name ('CONV_2D') or 'CUSTOM:<code>'."""
    oc = model.operatorCodes[opcode_index]
    code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
    if code == schema.BuiltinOperator.CUSTOM:
        custom = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
        return f"CUSTOM:{custom}"
    return BUILTIN_OP_NAMES.get(code, f"BUILTIN_{code}")


class _AlignedBufferT(schema.BufferT):
    """BufferT whose data vector starts on a BUFFER_ALIGNMENT boundary."""

    def Pack(self, builder):
        data_off = None
        if self.data is not None and len(self.data):
            raw = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data_off = builder.EndVector()
        schema.BufferStart(builder)
        if data_off is not None:
            schema.BufferAddData(builder, data_off)
        schema.BufferAddOffset(builder, self.offset or 0)
        schema.BufferAddSize(builder, self.size or 0)
        return schema.BufferEnd(builder)


def write_model(model: schema.ModelT) -> bytes:
    """Serialize with the TFL3 identifier and 16-byte aligned buffer data."""
    import flatbuffers

    for i, b in enumerate(model.buffers or []):
        if not isinstance(b, _AlignedBufferT):
            nb = _AlignedBufferT()
            nb.data, nb.offset, nb.size = b.data, b.offset, b.size
            model.buffers[i] = nb
    builder = flatbuffers.Builder(1024)
    root = model.Pack(builder)
    builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    out = bytes(builder.Output())
    return out


def save_model(model: schema.ModelT, path: str | Path) -> None:
    Path(path).write_bytes(write_model(model))
