"""The compile-time memory plan is the C engine's memory: every byte the engine uses in its
planned region is a tensor of the offline plan (kernel scratch included, as "scratch/..."
op outputs), so the Python memory report's arena and peak SRAM equal the engine's, and
poisoning dead planned memory changes no result."""
from __future__ import annotations

import ctypes
import re

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import ROOT, shared_model

import tflm_train as tt
from tflm_train import ir, tflite_io
from tflm_train.engine_numpy import NumpyEngine
from tflm_train.errors import ModelFormatError
from tflm_train.kernels.add_backward import add_backward_scratch_size
from tflm_train.kernels.gradient import pow2_stream_scratch_size
from tflm_train.kernels.loss import softmax_cross_entropy_scratch_size
from tflm_train.kernels.pooling_backward import (average_pool_2d_backward_scratch_size,
                                                 max_pool_2d_backward_scratch_size)
from tflm_train.planner import plan

engine_c = pytest.importorskip("tflm_train.engine_c")
CEngine = engine_c.CEngine

BASE = ROOT / "examples" / "models" / "fashion5_cnn_int8.tflite"
RESNET8 = "mlcommons/resnet8_cifar10_int8.tflite"
FASHION_SCHEMES = ["classifier", "bias", "last-2", "full", "sparse:bias=4,4=1/2,5=1/4,6=1/8"]
RESNET_SCHEMES = ["classifier", "bias", "last-2", "full", "sparse:bias=5,7=1/2,8=1/4"]
CASES = ([("fashion5", s) for s in FASHION_SCHEMES] + [("resnet8", s) for s in RESNET_SCHEMES])


@pytest.fixture(scope="module", autouse=True)
def _library_built():
    try:
        engine_c._library()
    except Exception as e:  # pragma: no cover - depends on the build
        pytest.skip(str(e))


_CACHE: dict = {}


def _compiled(model: str, spec: str):
    if (model, spec) not in _CACHE:
        if model == "fashion5":
            _CACHE[model, spec] = tt.convert(BASE, update=spec, num_classes=5)
        else:
            _CACHE[model, spec] = tt.convert(shared_model(RESNET8), update=spec, num_classes=10)
    return _CACHE[model, spec]


@pytest.mark.parametrize("model,spec", CASES)
def test_engine_arena_equals_reported_peak(model, spec):
    tm = _compiled(model, spec)
    report = tm.memory_report()
    eng = CEngine(tm.bytes)
    # The planned region: the offline plan's peak, nothing placed around it.
    assert eng.planned_bytes == report.arena
    # The whole arena: persistent (tables, op data, variables, state) + planned region. Both
    # peaks are 16-byte aligned (planner.ALIGN), so no padding separates them; the engine's
    # planner working memory (reused tail) is smaller than the planned region here.
    assert eng.arena_bytes == report.peak_sram
    # every planned tensor sits at the compiler's offset
    p = plan(tm.graph)
    offsets = {i: eng.tensor_offset(i) for i in p.offsets}
    assert offsets == p.offsets
    # and the engine needs no byte more than that: one byte less fails
    with pytest.raises(engine_c.EngineError, match="arena too small"):
        CEngine(tm.bytes, arena_size=eng.arena_bytes - 1)


# The paper's models with their published schemes (128x128 input, 10 classes).
MIT_SCHEMES = [("mcunet-5fps", "99kb"), ("mbv2-w0.35", "99kb"), ("proxyless-w0.3", "98kb")]


def _mit(name: str, scheme: str):
    from tflm_train.converters.mit import import_mit

    if (name, scheme) not in _CACHE:
        g = import_mit(shared_model(f"mit/{name}.pkl"), num_classes=10)
        _CACHE[name, scheme] = tt.convert(g, update=f"published:{name}/{scheme}")
    return _CACHE[name, scheme]


@pytest.mark.parametrize("model,spec", CASES + [("mit", f"{n}/{s}") for n, s in MIT_SCHEMES])
def test_engine_bookkeeping_is_a_few_bytes_per_op(model, spec):
    """The C engine's own SRAM (memory_report().engine: its arena minus the planned region,
    the trainable parameters and the training state) is at most 512 B + 16 B per op + 8 B per
    variable tensor: fixed state, per op a 4-byte op-data offset and a few bytes of op data,
    per variable its location. Nothing per activation or constant tensor: views are rebuilt
    from the model on demand. The planner's creation-time memory fits in the planned region
    (it raises nothing), and the figure has no pointer in it (host == Cortex-M, checked by
    test_cortex_m.py)."""
    tm = _mit(*spec.split("/")) if model == "mit" else _compiled(model, spec)
    g = tm.graph
    report = tm.memory_report()
    eng = CEngine(tm.bytes)
    variables = sum(1 for t in g.tensors if t.is_variable)
    bound = 512 + 16 * len(g.ops) + 8 * variables
    assert report.engine is not None and 0 < report.engine <= bound, (report.engine, bound)
    assert eng.arena_bytes == eng.persistent_bytes + eng.planned_bytes
    assert report.peak_sram == eng.arena_bytes
    if model == "mit":  # the target of the paper-beating work: a few KB for ~150 ops
        assert report.engine <= 6 * 1024, report.engine


def test_training_ops_request_no_online_scratch():
    """Scratch the engine would place around the offline plan breaks the equality above."""
    for f in sorted((ROOT / "micro_ops" / "engine" / "ops").glob("tt_op_train_*.c")):
        assert "tt_op_request_scratch" not in f.read_text(), f.name


@pytest.mark.parametrize("model", ["fashion5", "resnet8"])
def test_scratch_outputs_are_planned_for_their_op_only(model):
    tm = _compiled(model, "full")
    g = tm.graph
    p = plan(g)
    scratch = {t.index for t in g.tensors if t.name.startswith("scratch/")}
    for t in scratch:
        writers = [op for op in g.ops if t in op.outputs]
        assert len(writers) == 1 and not any(t in op.inputs for op in g.ops), g.tensors[t].name
        assert p.lifetimes[t] == (writers[0].index, writers[0].index), g.tensors[t].name
        assert g.tensors[t].dtype == np.int32
    # the ops whose C kernels need scratch each have one
    needs = [op for op in g.ops if op.opcode in ("CUSTOM:TT_SOFTMAX_XENT",
                                                  "CUSTOM:TT_AVERAGE_POOL_2D_GRAD",
                                                  "CUSTOM:TT_MAX_POOL_2D_GRAD")]
    assert needs
    for op in needs:
        assert len(scratch & set(op.outputs)) == 1, op.opcode
    if model == "resnet8":
        assert any("POOL_2D_GRAD" in op.opcode for op in needs)


def _poison_run(tm, poison: bool, steps: int = 10):
    g = tm.graph
    x = g.tensors[g.inputs[0]]
    classes = int(g.tensors[g.outputs[0]].shape[-1])
    rng = np.random.default_rng(7)
    eng = CEngine(tm.bytes, poison=poison)
    losses, logits = [], []
    for s in range(steps):
        img = rng.integers(-128, 128, x.shape).astype(np.int8)
        out = eng.invoke([img, np.array([int(rng.integers(0, classes))], np.int32)])
        logits.append(np.array(out[0]))
        losses.append(int(np.asarray(out[1]).reshape(-1)[0]))
    params = {i: np.array(eng.tensor(i)) for i in tm.parameter_indices()}
    params[-1] = np.array(eng.tensor(tm.tensor_index("tt_state")))
    return losses, logits, params


@pytest.mark.parametrize("model,spec", [("fashion5", "full"), ("fashion5", FASHION_SCHEMES[-1]),
                                        ("resnet8", "full"), ("resnet8", "bias")])
def test_poison_changes_nothing(model, spec):
    """Dead planned memory (scratch after its op, gradients after their consumer) is filled
    with 0xA5 after every op: a kernel reading a byte the plan says is dead would diverge."""
    tm = _compiled(model, spec)
    l0, z0, p0 = _poison_run(tm, False)
    l1, z1, p1 = _poison_run(tm, True)
    assert l0 == l1
    for a, b in zip(z0, z1):
        np.testing.assert_array_equal(a, b)
    initial = CEngine(tm.bytes)
    changed = 0
    for i in p0:
        np.testing.assert_array_equal(p0[i], p1[i], err_msg=str(i))
        if i >= 0:
            changed += not np.array_equal(p0[i], initial.tensor(i))
    assert changed > 0, "no parameter changed: the comparison would be vacuous"


# ---- the Python twins of the C *_scratch_size functions ----

def _lib():
    import importlib.util
    lib = ctypes.CDLL(importlib.util.find_spec("tflm_train._micro_ops").origin)
    for name in ("tt_softmax_cross_entropy_scratch_size",
                 "tt_average_pool_2d_backward_scratch_size",
                 "tt_max_pool_2d_backward_scratch_size", "tt_add_backward_scratch_size"):
        getattr(lib, name).restype = ctypes.c_int32
    return lib


class _Dims(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in "nhwc"]


def _d(shape):
    shape = tuple(int(v) for v in shape)
    return ctypes.byref(_Dims(*((1,) * (4 - len(shape)) + shape)))


def test_scratch_size_twins_equal_c():
    lib = _lib()
    for depth in (1, 5, 10, 4095):
        assert softmax_cross_entropy_scratch_size(depth) == \
            lib.tt_softmax_cross_entropy_scratch_size(depth)
    for shape in [(1, 8, 8, 16), (1, 1, 1, 1), (2, 3, 5, 7)]:
        assert average_pool_2d_backward_scratch_size(shape) == \
            lib.tt_average_pool_2d_backward_scratch_size(_d(shape))
        assert max_pool_2d_backward_scratch_size(shape) == \
            lib.tt_max_pool_2d_backward_scratch_size(_d(shape))
    for s1, s2, out in [((1, 4, 4, 8),) * 3, ((1, 4, 4, 8), (8,), (1, 4, 4, 8)),
                        ((1, 1, 1, 8), (1, 4, 4, 8), (1, 4, 4, 8)),
                        ((1, 4, 1, 8), (1, 1, 4, 1), (1, 4, 4, 8)), ((3,), (2, 3), (2, 3))]:
        assert add_backward_scratch_size(s1, s2, out) == \
            lib.tt_add_backward_scratch_size(_d(s1), _d(s2), _d(out)), (s1, s2, out)


# ---- a broadcast TT_ADD_GRAD: its scratch output, numpy == C ----

def _add_grad_model(scratch_elems: int | None):
    """grad_out [1,3,4,6] (graph input) → grad_in1 [1,3,4,6], grad_in2 [1,1,1,6] (a broadcast
    input: its int32 sums need the scratch output)."""
    m = schema.ModelT()
    m.version = 3
    m.operatorCodes, m.buffers = [], [schema.BufferT()]
    sg = schema.SubGraphT()
    sg.tensors, sg.operators = [], []
    m.subgraphs = [sg]
    from tflm_train.compiler import _ModelEditor
    ed = _ModelEditor(m)
    gy = ed.tensor("grad/y", (1, 3, 4, 6), np.int8)
    ey = ed.tensor("grad_exp/y", (1,), np.int32)
    g1, e1 = ed.tensor("grad/a", (1, 3, 4, 6), np.int8), ed.tensor("grad_exp/a", (1,), np.int32)
    g2, e2 = ed.tensor("grad/b", (1, 1, 1, 6), np.int8), ed.tensor("grad_exp/b", (1,), np.int32)
    outs = [g1, e1, g2, e2]
    if scratch_elems is not None:
        outs.append(ed.tensor("scratch/add", (scratch_elems,), np.int32))
    sg.operators = [ed.custom_op("TT_ADD_GRAD", [gy, ey, -1], outs)]
    sg.inputs = np.array([gy, ey], np.int32)
    sg.outputs = np.array([g1, e1, g2, e2], np.int32)
    return tflite_io.write_model(m)


def test_broadcast_add_grad_scratch_output():
    # the 2-bit stream of the broadcast input's 6 sums: one int32 word
    size = add_backward_scratch_size((1, 3, 4, 6), (1, 1, 1, 6), (1, 3, 4, 6))
    assert size == pow2_stream_scratch_size(6) == 4
    data = _add_grad_model(size // 4)
    eng, ref = CEngine(data), NumpyEngine(ir.from_model(tflite_io.read_model(data)))
    rng = np.random.default_rng(1)
    for _ in range(20):
        g = rng.integers(-127, 128, (1, 3, 4, 6)).astype(np.int8)
        e = np.array([int(rng.integers(-20, 0))], np.int32)
        for a, b in zip(eng.invoke([g, e]), ref.invoke([g, e])):
            np.testing.assert_array_equal(a, b)
    for bad, word in [(None, "scratch output is missing"), (size // 4 - 1, "smaller")]:
        with pytest.raises(ModelFormatError, match=word):
            CEngine(_add_grad_model(bad))


def test_missing_scratch_output_is_a_model_error():
    """A training graph whose loss op lost its scratch output: a clear TT_ERR_MODEL."""
    tm = _compiled("fashion5", "classifier")
    m = tflite_io.read_model(tm.bytes)
    sg = m.subgraphs[0]
    for op in sg.operators:
        cc = m.operatorCodes[op.opcodeIndex].customCode
        if cc in (b"TT_SOFTMAX_XENT", "TT_SOFTMAX_XENT"):
            op.outputs = op.outputs[:3]
    with pytest.raises(ModelFormatError, match=re.escape("TT_SOFTMAX_XENT")):
        CEngine(tflite_io.write_model(m))
