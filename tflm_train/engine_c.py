"""ctypes binding of the portable C engine (micro_ops, built into ``tflm_train._micro_ops``).

    from tflm_train.engine_c import CEngine
    eng = CEngine(model_bytes)           # arena sized automatically: eng.arena_bytes
    [y] = eng.invoke([x])

Training models (docs/train-format.md): variable tensors (trainable parameters, ``tt_state``)
persist across invokes; ``reset()`` restores them from the model; ``tensor(i)`` /
``tensor_by_name(name)`` read any non-constant tensor, ``set_tensor`` writes a variable (e.g.
the learning rate in ``tt_state``). ``poison = True`` fills dead planned memory with 0xA5
after each op (a debug check of the memory plan).

The engine reads the model in place and keeps all its state in an arena owned by this object.
Errors carry the engine's own message: TT_ERR_MODEL → ModelFormatError, TT_ERR_UNSUPPORTED →
UnsupportedOpError, anything else → EngineError.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import re

import numpy as np

from .errors import EngineError, ModelFormatError, ShapeError, UnsupportedOpError

TT_OK, TT_ERR_MODEL, TT_ERR_UNSUPPORTED, TT_ERR_ARENA, TT_ERR_ARG, TT_ERR_SHAPE = range(6)
STATUS_NAMES = {TT_OK: "TT_OK", TT_ERR_MODEL: "TT_ERR_MODEL",
                TT_ERR_UNSUPPORTED: "TT_ERR_UNSUPPORTED", TT_ERR_ARENA: "TT_ERR_ARENA",
                TT_ERR_ARG: "TT_ERR_ARG", TT_ERR_SHAPE: "TT_ERR_SHAPE"}
TT_MAX_RANK = 5
# TFLite TensorType → numpy dtype, for the types the engine accepts.
TENSOR_DTYPES = {0: np.dtype(np.float32), 2: np.dtype(np.int32), 3: np.dtype(np.uint8),
                 4: np.dtype(np.int64), 6: np.dtype(np.bool_), 7: np.dtype(np.int16),
                 9: np.dtype(np.int8)}
_ALIGN = 16
# Arena for the first, sizing creation; the engine is then re-created in exactly what it used.
_SIZING_ARENA = 64 << 20
_ERR_LEN = 512


class TtTensor(ctypes.Structure):
    """Mirror of ``tt_tensor`` in micro_ops/include/tt_op.h."""

    _fields_ = [("index", ctypes.c_int32), ("dims", ctypes.c_int32 * TT_MAX_RANK),
                ("bytes", ctypes.c_uint32), ("num_quant", ctypes.c_int32),
                ("type", ctypes.c_uint8), ("rank", ctypes.c_int8), ("is_constant", ctypes.c_int8),
                ("is_variable", ctypes.c_int8), ("quant_axis", ctypes.c_int8),
                ("data", ctypes.c_void_p), ("scale_vec", ctypes.c_void_p),
                ("zero_point_vec", ctypes.c_void_p)]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(self.dims[i]) for i in range(self.rank))


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("tflm_train._micro_ops")
    if spec is None or not spec.origin:
        raise EngineError("the C engine library tflm_train._micro_ops is not built: run "
                          "`pip install -e .` or `make lib` in the repository")
    lib = ctypes.CDLL(spec.origin)
    P = ctypes.c_void_p
    lib.tt_engine_create.argtypes = [P, ctypes.c_size_t, P, ctypes.c_size_t,
                                     ctypes.POINTER(P), ctypes.c_char_p, ctypes.c_size_t]
    lib.tt_engine_create.restype = ctypes.c_int
    for name in ("tt_engine_arena_used", "tt_engine_arena_persistent", "tt_engine_arena_planned"):
        getattr(lib, name).argtypes = [P]
        getattr(lib, name).restype = ctypes.c_size_t
    lib.tt_engine_invoke_ops.argtypes = [P, ctypes.c_int32, ctypes.c_int32]
    lib.tt_engine_invoke_ops.restype = ctypes.c_int
    for name in ("tt_engine_num_inputs", "tt_engine_num_outputs", "tt_engine_num_ops"):
        getattr(lib, name).argtypes = [P]
        getattr(lib, name).restype = ctypes.c_int32
    for name in ("tt_engine_input", "tt_engine_output", "tt_engine_tensor"):
        getattr(lib, name).argtypes = [P, ctypes.c_int32, ctypes.POINTER(TtTensor)]
        getattr(lib, name).restype = ctypes.POINTER(TtTensor)
    lib.tt_engine_invoke.argtypes = [P]
    lib.tt_engine_invoke.restype = ctypes.c_int
    lib.tt_engine_error.argtypes = [P]
    lib.tt_engine_error.restype = ctypes.c_char_p
    lib.tt_engine_reset.argtypes = [P]
    lib.tt_engine_reset.restype = ctypes.c_int
    lib.tt_engine_num_tensors.argtypes = [P]
    lib.tt_engine_num_tensors.restype = ctypes.c_int32
    lib.tt_engine_tensor_name.argtypes = [P, ctypes.c_int32]
    lib.tt_engine_tensor_name.restype = ctypes.c_char_p
    lib.tt_engine_find_tensor.argtypes = [P, ctypes.c_char_p]
    lib.tt_engine_find_tensor.restype = ctypes.c_int32
    lib.tt_engine_tensor_offset.argtypes = [P, ctypes.c_int32]
    lib.tt_engine_tensor_offset.restype = ctypes.c_int64
    lib.tt_engine_set_poison.argtypes = [P, ctypes.c_int]
    lib.tt_engine_set_poison.restype = None
    return lib


def _aligned(nbytes: int) -> np.ndarray:
    """A zeroed uint8 array of nbytes whose data starts on a 16-byte boundary."""
    raw = np.zeros(nbytes + _ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + nbytes]


def _raise(status: int, message: str):
    message = message or STATUS_NAMES.get(status, f"status {status}")
    if status == TT_ERR_MODEL:
        raise ModelFormatError(message)
    if status == TT_ERR_UNSUPPORTED:
        m = re.match(r"op (\d+) \(([^)]*)\)", message)
        raise UnsupportedOpError.from_message(
            message, int(m.group(1)) if m else None, m.group(2) if m else None)
    raise EngineError(f"{STATUS_NAMES.get(status, status)}: {message}")


class CEngine:
    """The C engine on one model: ``invoke(inputs) -> outputs`` with numpy arrays."""

    def __init__(self, model_bytes: bytes, arena_size: int | None = None, poison: bool = False):
        self._lib = _library()
        self._poison = bool(poison)
        data = bytes(model_bytes)
        # The engine reads the model in place (constants through typed pointers): keep an
        # aligned copy alive for the engine's lifetime.
        self._model = _aligned(len(data))
        self._model[:] = np.frombuffer(data, dtype=np.uint8)
        if arena_size is None:
            self._create(_SIZING_ARENA)
            arena_size = self.arena_bytes
        self._create(int(arena_size))

    def _create(self, arena_size: int) -> None:
        if arena_size < 0:
            raise EngineError(f"arena size {arena_size} is negative")
        self._arena = _aligned(max(arena_size, 1))
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        status = self._lib.tt_engine_create(
            self._model.ctypes.data, len(self._model), self._arena.ctypes.data, arena_size,
            ctypes.byref(handle), err, _ERR_LEN)
        if status != TT_OK:
            self._engine = None
            _raise(status, err.value.decode("utf-8", "replace"))
        self._engine = handle
        lib = self._lib
        self.arena_bytes = int(lib.tt_engine_arena_used(handle))
        self.persistent_bytes = int(lib.tt_engine_arena_persistent(handle))
        self.planned_bytes = int(lib.tt_engine_arena_planned(handle))
        # Views filled by the engine (it keeps none); the data addresses never change.
        self._inputs = [self._view(lib.tt_engine_input, i)
                        for i in range(lib.tt_engine_num_inputs(handle))]
        self._outputs = [self._view(lib.tt_engine_output, i)
                         for i in range(lib.tt_engine_num_outputs(handle))]
        lib.tt_engine_set_poison(handle, int(self._poison))

    def _view(self, fn, i: int) -> TtTensor | None:
        view = TtTensor()
        return view if fn(self._engine, i, ctypes.byref(view)) else None

    @staticmethod
    def _dtype(t: TtTensor) -> np.dtype:
        return TENSOR_DTYPES[t.type]

    @property
    def input_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return [(t.shape, self._dtype(t)) for t in self._inputs]

    @property
    def output_specs(self) -> list[tuple[tuple[int, ...], np.dtype]]:
        return [(t.shape, self._dtype(t)) for t in self._outputs]

    @property
    def num_ops(self) -> int:
        return int(self._lib.tt_engine_num_ops(self._engine))

    def invoke(self, inputs: list[np.ndarray], op_chunk: int | None = None) -> list[np.ndarray]:
        """Run the graph; with op_chunk, as consecutive tt_engine_invoke_ops calls of that many
        ops (how a profiler times each op; the same results)."""
        if len(inputs) != len(self._inputs):
            raise ShapeError(f"model has {len(self._inputs)} inputs, got {len(inputs)}")
        for k, (t, x) in enumerate(zip(self._inputs, inputs)):
            x = np.asarray(x)
            dtype = self._dtype(t)
            if x.dtype != dtype or tuple(x.shape) != t.shape:
                raise ShapeError(f"input {k} (tensor {t.index}) expects {dtype.name} "
                                 f"{list(t.shape)}, got {x.dtype.name} {list(x.shape)}")
            x = np.ascontiguousarray(x)
            if t.bytes:
                ctypes.memmove(t.data, x.ctypes.data, t.bytes)
        if op_chunk is None:
            status = self._lib.tt_engine_invoke(self._engine)
        else:
            for first in range(0, self.num_ops, op_chunk):
                count = min(op_chunk, self.num_ops - first)
                status = self._lib.tt_engine_invoke_ops(self._engine, first, count)
                if status != TT_OK:
                    break
        if status != TT_OK:
            _raise(status, self._lib.tt_engine_error(self._engine).decode("utf-8", "replace"))
        outs = []
        for t in self._outputs:
            dtype = self._dtype(t)
            if t.bytes:
                raw = (ctypes.c_uint8 * t.bytes).from_address(t.data)
                y = np.frombuffer(raw, dtype=dtype).reshape(t.shape).copy()
            else:
                y = np.zeros(t.shape, dtype=dtype)
            outs.append(y)
        return outs

    # ---- training: variables, tensor access, debug poisoning ----

    @property
    def poison(self) -> bool:
        """Fill dead planned memory with 0xA5 after each op (debug check of the plan)."""
        return self._poison

    @poison.setter
    def poison(self, enabled: bool) -> None:
        self._poison = bool(enabled)
        self._lib.tt_engine_set_poison(self._engine, int(self._poison))

    def reset(self) -> None:
        """Restore every variable tensor (parameters, training state) from the model."""
        status = self._lib.tt_engine_reset(self._engine)
        if status != TT_OK:
            _raise(status, self._lib.tt_engine_error(self._engine).decode("utf-8", "replace"))

    @property
    def num_tensors(self) -> int:
        return int(self._lib.tt_engine_num_tensors(self._engine))

    def tensor_name(self, i: int) -> str:
        self._check_index(i)
        return self._lib.tt_engine_tensor_name(self._engine, i).decode("utf-8", "replace")

    def tensor_index(self, name: str) -> int:
        """Index of the first tensor called ``name``; KeyError if none."""
        i = int(self._lib.tt_engine_find_tensor(self._engine, name.encode()))
        if i < 0:
            raise KeyError(f"model has no tensor named {name!r}")
        return i

    def tensor_offset(self, i: int) -> int:
        """Offset of tensor i in the planned arena region; -1 if it has no planned memory."""
        self._check_index(i)
        return int(self._lib.tt_engine_tensor_offset(self._engine, i))

    def is_variable(self, i: int) -> bool:
        t = self._held(i)
        return t is not None and bool(t.is_variable)

    def tensor(self, i: int) -> np.ndarray | None:
        """Copy of non-constant tensor i (activations hold what the last invoke left there);
        None for a constant."""
        t = self._held(i)
        if t is None:
            return None
        dtype = self._dtype(t)
        if not t.bytes or not t.data:
            return np.zeros(t.shape, dtype=dtype)
        raw = (ctypes.c_uint8 * t.bytes).from_address(t.data)
        return np.frombuffer(raw, dtype=dtype).reshape(t.shape).copy()

    def tensor_by_name(self, name: str) -> np.ndarray | None:
        return self.tensor(self.tensor_index(name))

    def set_tensor(self, i: int | str, value: np.ndarray) -> None:
        """Overwrite variable tensor i (index or name); dtype and shape must match."""
        if isinstance(i, str):
            i = self.tensor_index(i)
        t = self._held(i)
        if t is None or not t.is_variable:
            raise EngineError(f"tensor {i} ({self.tensor_name(i)!r}) is not a variable tensor")
        dtype = self._dtype(t)
        x = np.asarray(value)
        if x.dtype != dtype or tuple(x.shape) != t.shape:
            raise ShapeError(f"tensor {i} ({self.tensor_name(i)!r}) is {dtype.name} "
                             f"{list(t.shape)}, got {x.dtype.name} {list(x.shape)}")
        x = np.ascontiguousarray(x)
        if t.bytes:
            ctypes.memmove(t.data, x.ctypes.data, t.bytes)

    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.num_tensors:
            raise IndexError(f"tensor index {i} out of range (model has {self.num_tensors})")

    def _held(self, i: int) -> TtTensor | None:
        self._check_index(i)
        return self._view(self._lib.tt_engine_tensor, i)
