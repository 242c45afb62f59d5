"""The tensor arena a TFLM user must give ``MicroInterpreter`` for a *.train.tflite.

TFLM's arena = a persistent section (its per-tensor and per-op bookkeeping, the kernels' op
data, the variable tensors) + a non-persistent section (the memory plan; while planning,
TFLM's temporary tables). The plan is ours: TFLM's GreedyMemoryPlanner places every tensor
at the offset of the model's OfflineMemoryAllocation metadata, so the non-persistent
section is the extent of our offsets (plus any scratch a builtin kernel requests online).
TFLM's bookkeeping is estimated with 64-bit host struct sizes, which are at least the
32-bit MCU ones, each allocation rounded to 16 bytes as TFLM's arena does, so the figure is
an upper bound on both (docs/tflm.md, "Arena"); the micro_test allocates exactly this many
bytes. ``MicroInterpreter::arena_used_bytes()`` gives the exact figure of one build.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import tflite_io
from .planner import OFFLINE_PLAN_NAME
from .schemes import SPLIT_OPCODES

# Upper bounds of TFLM's structures on a 64-bit host (sizeof rounded up to 16).
FIXED = 2048            # MicroAllocator, GreedyMemoryPlanner, arena allocators, subgraph
                        # tables, the interpreter's input/output TfLiteTensors
PER_TENSOR = 32         # TfLiteEvalTensor (+ dims: TFLM points dims into the model)
PER_OP = 96             # NodeAndRegistration (TfLiteNode + registration pointer)
BUILTIN_OP_DATA = 256   # builtin_data (parsed options) + a reference kernel's OpData
PER_CHANNEL = 8         # conv/depthwise/per-channel FC: output multiplier + shift per channel
TRAINING_OP_DATA = 224  # the adapter's node data + the glue's persistent data
TEMP_PER_TENSOR = 96    # planning tables (AllocationInfo + planner requirements) per tensor
TEMP_TENSOR = 192       # a temporary TfLiteTensor with quantization, during Prepare
MAX_NODE_TENSORS = 24   # the adapter's limit on a node's inputs + outputs


def _align(n: int, a: int = 16) -> int:
    return (int(n) + a - 1) // a * a


@dataclass
class TflmArena:
    planned: int      # extent of the offline plan
    variables: int    # variable tensors (TFLM's persistent section)
    bookkeeping: int  # TFLM's tensors/nodes tables, op data, fixed objects
    temporary: int    # largest transient need (planning tables or Prepare's temp tensors)
    builtins: list[str]

    @property
    def total(self) -> int:
        return _align(self.bookkeeping + self.variables + max(self.planned, self.temporary))


def _tensor_bytes(t) -> int:
    shape = [] if t.shape is None else [int(d) for d in t.shape]
    size = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1}.get(int(t.type), 8)
    return int(np.prod(shape, dtype=np.int64)) * size if shape else size


def estimate(model_bytes: bytes) -> TflmArena:
    model = tflite_io.read_model(model_bytes, "model")
    sg = model.subgraphs[0]
    offsets = None
    for md in model.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        if name == OFFLINE_PLAN_NAME:
            words = np.frombuffer(bytes(model.buffers[md.buffer].data), dtype="<i4")
            offsets = words[3:3 + int(words[2])]
    planned = variables = 0
    for i, t in enumerate(sg.tensors):
        nbytes = _tensor_bytes(t)
        if t.isVariable and (offsets is None or offsets[i] < 0):
            variables += _align(nbytes)
        elif offsets is not None and offsets[i] >= 0:
            planned = max(planned, int(offsets[i]) + nbytes)
    if offsets is None:  # no offline plan: TFLM plans every activation (upper bound: sum)
        planned = sum(_align(_tensor_bytes(t)) for t in sg.tensors
                      if not t.isVariable and not (t.buffer and model.buffers[t.buffer].data
                                                   is not None and len(model.buffers[t.buffer].data)))
    bookkeeping = FIXED + PER_TENSOR * len(sg.tensors)
    builtins: set[str] = set()
    for op in sg.operators:
        name = tflite_io.opcode_name(model, op.opcodeIndex)
        bookkeeping += PER_OP
        if name.startswith("CUSTOM:"):
            bookkeeping += TRAINING_OP_DATA
            if name in SPLIT_OPCODES and op.outputs is not None:  # forward MAC: its constants
                out = sg.tensors[int(op.outputs[0])]
                bookkeeping += _align(PER_CHANNEL * int(out.shape[-1]))
            continue
        builtins.add(name)
        bookkeeping += BUILTIN_OP_DATA
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and op.outputs is not None:
            out = sg.tensors[int(op.outputs[0])]
            bookkeeping += _align(PER_CHANNEL * int(out.shape[-1]))
        if name in ("MEAN", "SUM") and op.outputs is not None:
            # TFLM's int8 MEAN requests an int32 scratch per output element (online)
            planned += _align(4 * int(np.prod(sg.tensors[int(op.outputs[0])].shape)))
    temporary = max(TEMP_PER_TENSOR * len(sg.tensors), TEMP_TENSOR * MAX_NODE_TENSORS)
    return TflmArena(_align(planned), variables, bookkeeping, temporary, sorted(builtins))


def tflm_arena_bytes(model_bytes: bytes) -> int:
    return estimate(model_bytes).total


def format_line(model_bytes: bytes) -> str:
    a = estimate(model_bytes)
    return (f"TFLM: MicroMutableOpResolver<{len(a.builtins)} + tflm_train::kNumTrainingOps> "
            f"(builtins: {', '.join(a.builtins)}); TFLM arena: {a.total} bytes (plan "
            f"{a.planned}, variables {a.variables}, TFLM bookkeeping {a.bookkeeping}; "
            f"docs/tflm.md)")
