"""C engine features the training graphs need: custom ops with FlexBuffer options, variable
tensors (persist across invokes, reset restores them), TFLM's OfflineMemoryAllocation plan,
and debug poisoning of dead planned memory.

Test models are built by editing real models with tflm_train.tflite_io (no training compiler
needed). The FlexBuffer reader is checked against flatbuffers' own writer, and fed truncated
and mutated maps under AddressSanitizer + UBSan through micro_ops/tools/tt_run.c.
"""
from __future__ import annotations

import os
import struct
import subprocess

import numpy as np
import pytest
from flatbuffers import flexbuffers

from conftest import ROOT, SHARED_MODELS
from test_malformed import SAN_ENV, SANITIZER_MARKERS, tt_run  # noqa: F401  (session fixture)

from ai_edge_litert import schema_py_generated as schema

from tflm_train import tflite_io
from tflm_train.errors import EngineError, ModelFormatError, ShapeError, UnsupportedOpError
from tflm_train.kernels.training_util import GRAD_NONE, grad_accumulate, save_slice

engine_c = pytest.importorskip("tflm_train.engine_c")
CEngine = engine_c.CEngine

BASE = ROOT / "examples" / "models" / "fashion5_cnn_int8.tflite"
INT32_MIN = -(1 << 31)


@pytest.fixture(scope="module", autouse=True)
def _library_built():
    try:
        engine_c._library()
    except Exception as e:  # pragma: no cover - depends on the build
        pytest.skip(str(e))


# ---- model editing helpers ----

def _buffer(model, data: bytes | None) -> int:
    b = schema.BufferT()
    if data is not None:
        b.data = np.frombuffer(data, dtype=np.uint8).copy()
    model.buffers.append(b)
    return len(model.buffers) - 1


def _tensor(model, name, shape, ttype, data: np.ndarray | None = None, variable=False) -> int:
    sg = model.subgraphs[0]
    t = schema.TensorT()
    t.name = name.encode()
    t.shape = np.array(shape, dtype=np.int32)
    t.type = ttype
    t.buffer = _buffer(model, None if data is None else np.ascontiguousarray(data).tobytes())
    t.isVariable = variable
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _custom_code(model, code: str) -> int:
    for i, oc in enumerate(model.operatorCodes):
        if oc.builtinCode == schema.BuiltinOperator.CUSTOM and oc.customCode in (code, code.encode()):
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode = schema.BuiltinOperator.CUSTOM
    oc.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    oc.customCode = code.encode()
    oc.version = 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _custom_op(model, code, inputs, outputs, options: dict | bytes | None = None):
    op = schema.OperatorT()
    op.opcodeIndex = _custom_code(model, code)
    op.inputs = np.array(inputs, dtype=np.int32)
    op.outputs = np.array(outputs, dtype=np.int32)
    if options is not None:
        raw = options if isinstance(options, bytes) else bytes(flexbuffers.Dumps(options))
        op.customOptions = np.frombuffer(raw, dtype=np.uint8).copy()
    model.subgraphs[0].operators.append(op)
    return op


def _metadata(model, name: str, data: bytes) -> None:
    md = schema.MetadataT()
    md.name = name.encode()
    md.buffer = _buffer(model, data)
    model.metadata = list(model.metadata or []) + [md]


def _empty_model():
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = []
    model.buffers = [schema.BufferT()]  # buffer 0: empty, by convention
    sg = schema.SubGraphT()
    sg.tensors, sg.operators = [], []
    model.subgraphs = [sg]
    return model


I8, I32 = schema.TensorType.INT8, schema.TensorType.INT32


def _training_toy(acc0: np.ndarray, acc_e0: int, x_exp: int, channels: int = 3):
    """x int8 [16] is accumulated into the variable gradient (acc, acc_e) in place by
    TT_GRAD_ACCUMULATE; TT_SAVE_SLICE keeps `channels` channels of y int8 [1, 2, 3, 5]."""
    m = _empty_model()
    x = _tensor(m, "x", [16], I8)
    y = _tensor(m, "y", [1, 2, 3, 5], I8)
    ex = _tensor(m, "x_exp", [1], I32, np.array([x_exp], np.int32))
    acc = _tensor(m, "acc", [16], I8, acc0.astype(np.int8), variable=True)
    acc_e = _tensor(m, "acc_exp", [1], I32, np.array([acc_e0], np.int32), variable=True)
    sl = _tensor(m, "y_slice", [1, 2, 3, channels], I8)
    _custom_op(m, "TT_GRAD_ACCUMULATE", [x, ex, acc, acc_e], [acc, acc_e])
    _custom_op(m, "TT_SAVE_SLICE", [y], [sl], {"channels": channels})
    sg = m.subgraphs[0]
    sg.inputs = np.array([x, y], np.int32)
    sg.outputs = np.array([acc, acc_e, sl], np.int32)
    return m


# ---- FlexBuffer reader ----

def _run(exe, args, timeout=120):
    """tt_run under the sanitizers; keys of mutated maps may hold any byte."""
    r = subprocess.run([str(exe), *args], capture_output=True, timeout=timeout,
                       env={**os.environ, **SAN_ENV})
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    return r


def _random_map(rng: np.random.Generator) -> tuple[bytes, dict]:
    b = flexbuffers.Builder()
    expect = {}
    n = int(rng.integers(0, 14))
    keys = sorted({"".join(rng.choice(list("abcdefgh_xyz"), int(rng.integers(1, 12))))
                   for _ in range(n)})
    rng.shuffle(keys)  # the builder sorts them
    with b.Map():
        for k in keys:
            kind = int(rng.integers(0, 7))
            bits = int(rng.choice([6, 7, 8, 15, 16, 31, 32, 40, 62]))
            v = int(rng.integers(-(1 << bits), 1 << bits))
            if kind == 0:
                b.Int(k, v)
                expect[k] = v
            elif kind == 1:
                b.UInt(k, abs(v))
                expect[k] = abs(v)
            elif kind == 2:
                b.Bool(k, bool(v & 1))
                expect[k] = v & 1
            elif kind == 3:
                b.IndirectInt(k, v)
                expect[k] = v
            elif kind == 4:
                b.IndirectUInt(k, abs(v))
                expect[k] = abs(v)
            elif kind == 5:
                b.Float(k, float(v) / 3)
                expect[k] = "?"
            else:
                b.String(k, "s" * int(rng.integers(0, 20)))
                expect[k] = "?"
    return bytes(b.Finish()), expect


def _parse_flex_line(line: str) -> dict | str:
    if not line.startswith("ok "):
        return line
    parts = line.split()[2:]
    out = {}
    for p in parts:
        k, v = p.rsplit("=", 1)
        out[k] = v if v == "?" else int(v)
    return out


def test_flexbuffer_reader_matches_flatbuffers_writer(tt_run, tmp_path):  # noqa: F811
    rng = np.random.default_rng(5)
    files, expected = [], []
    for k in range(200):
        data, expect = _random_map(rng)
        assert flexbuffers.Loads(data).keys() == expect.keys()
        p = tmp_path / f"map_{k}.flex"
        p.write_bytes(data)
        files.append(str(p))
        expected.append(expect)
    r = _run(tt_run, ["--flex", *files])
    assert not any(m in r.stdout + r.stderr for m in SANITIZER_MARKERS), r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert len(lines) == len(files)
    for line, expect in zip(lines, expected):
        assert "LOOKUP-BUG" not in line
        assert _parse_flex_line(line) == expect, line


def _malformed_maps() -> dict[str, bytes]:
    good = bytes(flexbuffers.Dumps({"ab": 1, "ba": -2, "c": 300}))
    cases = {
        "not_a_map": bytes(flexbuffers.Dumps(5)),
        "vector_root": bytes(flexbuffers.Dumps([1, 2, 3])),
        "too_short": good[-2:],
        "root_width_3": good[:-1] + b"\x03",
        "root_width_huge": good[:-1] + b"\xff",
        "unsorted_keys": good.replace(b"ab\x00", b"zz\x00"),
        "root_offset_past_start": good[:-3] + bytes([250]) + good[-2:],
        "duplicate_keys": good.replace(b"ba\x00", b"ab\x00"),
    }
    # map length word made huge (the slot before the values: find it by re-deriving the layout)
    width = 1 << (good[-2] & 3)
    values = len(good) - 2 - good[-1] - good[len(good) - 2 - good[-1]]
    bad = bytearray(good)
    bad[values - width] = 0xFF
    cases["length_huge"] = bytes(bad)
    bad = bytearray(good)
    bad[values - 2 * width] = 3  # key vector width
    cases["key_width_3"] = bytes(bad)
    bad = bytearray(good)
    bad[values - 3 * width] = 0xFF  # key vector offset
    cases["key_offset_huge"] = bytes(bad)
    return cases


def test_flexbuffer_reader_rejects_malformed_maps_cleanly(tt_run, tmp_path):  # noqa: F811
    cases = _malformed_maps()
    files = []
    for name, data in cases.items():
        p = tmp_path / f"{name}.flex"
        p.write_bytes(data)
        files.append(str(p))
    r = _run(tt_run, ["--flex", *files])
    assert not any(m in r.stdout + r.stderr for m in SANITIZER_MARKERS), r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert len(lines) == len(files)
    for name, line in zip(cases, lines):
        assert line.startswith("bad: custom options:"), f"{name}: {line}"


def test_flexbuffer_reader_survives_truncation_and_mutation(tt_run, tmp_path):  # noqa: F811
    rng = np.random.default_rng(9)
    files = []
    for k in range(40):
        data, _ = _random_map(rng)
        for cut in sorted({0, 1, 2, len(data) // 2, len(data) - 1}):
            p = tmp_path / f"cut_{k}_{cut}.flex"
            p.write_bytes(data[:cut])
            files.append(str(p))
        for j in range(8):
            mutated = bytearray(data)
            for _ in range(int(rng.integers(1, 4))):
                mutated[int(rng.integers(len(mutated)))] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF,
                                                                           int(rng.integers(256))]))
            p = tmp_path / f"mut_{k}_{j}.flex"
            p.write_bytes(bytes(mutated))
            files.append(str(p))
    r = _run(tt_run, ["--flex", *files], timeout=300)
    assert not any(m in r.stdout + r.stderr for m in SANITIZER_MARKERS), r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert len(lines) == len(files)
    assert all(l.startswith(("ok ", "bad: ")) for l in lines)
    assert sum(l.startswith("bad: ") for l in lines) >= 100  # the checks are exercised


# ---- custom ops through the engine ----

def test_unknown_custom_op_names_the_supported_ones():
    m = _training_toy(np.zeros(16), 0, 0)
    m.operatorCodes[m.subgraphs[0].operators[1].opcodeIndex].customCode = b"TT_NOPE"
    with pytest.raises(UnsupportedOpError) as info:
        CEngine(tflite_io.write_model(m))
    msg = str(info.value)
    assert "op 1 (CUSTOM:TT_NOPE) is not supported" in msg
    assert "supported custom ops: TT_ACT_MASK" in msg and "TT_GRAD_ACCUMULATE" in msg


@pytest.mark.parametrize("options,word", [
    ({}, "missing custom option 'channels'"),
    ({"channels": "three"}, "'channels' is not an int32"),
    ({"channels": 1 << 40}, "'channels' is not an int32"),
    ({"channels": 9}, "channels must be in 1.."),
    (b"\x00\x01\x02\x03\x04", "custom options"),
    (bytes(flexbuffers.Dumps([3])), "root is not a map"),
])
def test_bad_custom_options_are_model_errors(options, word):
    m = _training_toy(np.zeros(16), 0, 0)
    op = m.subgraphs[0].operators[1]
    raw = options if isinstance(options, bytes) else bytes(flexbuffers.Dumps(options))
    op.customOptions = np.frombuffer(raw, dtype=np.uint8).copy()
    with pytest.raises(ModelFormatError) as info:
        CEngine(tflite_io.write_model(m))
    assert "op 1 (TT_SAVE_SLICE)" in str(info.value) and word in str(info.value), str(info.value)


# ---- variable tensors ----

@pytest.mark.parametrize("poison", [False, True])
def test_variables_persist_across_invokes_and_reset_restores(poison):
    rng = np.random.default_rng(3)
    acc0 = rng.integers(-127, 128, 16).astype(np.int8)
    eng = CEngine(tflite_io.write_model(_training_toy(acc0, -2, -3)), poison=poison)
    acc_i, acc_e_i = eng.tensor_index("acc"), eng.tensor_index("acc_exp")
    assert eng.is_variable(acc_i) and eng.is_variable(acc_e_i)
    assert eng.tensor_offset(acc_i) == -1  # persistent, not planned
    np.testing.assert_array_equal(eng.tensor(acc_i), acc0)

    xs = [rng.integers(-128, 128, 16).astype(np.int8) for _ in range(6)]
    ys = [rng.integers(-128, 128, (1, 2, 3, 5)).astype(np.int8) for _ in range(6)]
    ref, ref_e = acc0.copy(), -2
    history = []
    for x, y in zip(xs, ys):
        acc, acc_e, sl = eng.invoke([x, y])
        ref, ref_e = grad_accumulate(x, -3, ref, ref_e)
        np.testing.assert_array_equal(acc, ref)
        assert int(acc_e[0]) == ref_e
        np.testing.assert_array_equal(sl, save_slice(y, 3))
        np.testing.assert_array_equal(eng.tensor_by_name("acc"), ref)
        history.append((acc.copy(), int(acc_e[0])))
    assert len({h[0].tobytes() for h in history}) > 1  # it really changes

    eng.reset()
    np.testing.assert_array_equal(eng.tensor(acc_i), acc0)
    assert int(eng.tensor(acc_e_i)[0]) == -2
    acc, acc_e, _ = eng.invoke([xs[0], ys[0]])  # the same trajectory again
    np.testing.assert_array_equal(acc, history[0][0])
    assert int(acc_e[0]) == history[0][1]

    # set_tensor writes a variable; constants and activations refuse
    eng.set_tensor("acc", np.zeros(16, np.int8))
    eng.set_tensor(acc_e_i, np.array([GRAD_NONE], np.int32))  # absent: the sum is x alone
    acc, acc_e, _ = eng.invoke([xs[1], ys[1]])
    np.testing.assert_array_equal(acc, xs[1])
    assert int(acc_e[0]) == -3
    with pytest.raises(EngineError, match="not a variable"):
        eng.set_tensor("x_exp", np.array([0], np.int32))
    with pytest.raises(ShapeError, match="int8"):
        eng.set_tensor("acc", np.zeros(16, np.int32))
    assert eng.tensor(eng.tensor_index("x_exp")) is None  # constants: no engine tensor


def test_variable_with_wrong_sized_initial_value_is_rejected():
    m = _training_toy(np.zeros(16), 0, 0)
    t = m.subgraphs[0].tensors[3]  # acc
    m.buffers[t.buffer].data = np.zeros(15, np.uint8)
    with pytest.raises(ModelFormatError, match="buffer"):
        CEngine(tflite_io.write_model(m))


def test_grad_accumulate_absent_gradients():
    """numpy twin: absent + present = present, absent + absent = absent; C agrees (engine)."""
    rng = np.random.default_rng(4)
    g = rng.integers(-127, 128, 16).astype(np.int8)
    q, e = grad_accumulate(g, GRAD_NONE, np.zeros(16, np.int8), GRAD_NONE)
    assert e == GRAD_NONE and not q.any()
    q, e = grad_accumulate(g, -4, g, GRAD_NONE)
    np.testing.assert_array_equal(q, g) and e == -4
    # present + present at different exponents: the real sum, within one output LSB
    g2 = rng.integers(-127, 128, 16).astype(np.int8)
    q, e = grad_accumulate(g, -4, g2, -7)
    real = g * 2.0 ** -4 + g2 * 2.0 ** -7
    assert np.max(np.abs(q * 2.0 ** e - real)) <= 2.0 ** e
    for e_acc in (GRAD_NONE, 5):
        eng = CEngine(tflite_io.write_model(_training_toy(g2, e_acc, GRAD_NONE)))
        acc, acc_e, _ = eng.invoke([g, np.zeros((1, 2, 3, 5), np.int8)])
        ref, ref_e = grad_accumulate(g, GRAD_NONE, g2, e_acc)
        np.testing.assert_array_equal(acc, ref)
        assert int(acc_e[0]) == ref_e


# ---- offline memory plan ----

@pytest.fixture(scope="module")
def base_bytes() -> bytes:
    return BASE.read_bytes()


def _with_offline_plan(base: bytes, offsets: list[int]) -> bytes:
    m = tflite_io.read_model(base)
    data = struct.pack(f"<{3 + len(offsets)}i", 0, 0, len(offsets), *offsets)
    _metadata(m, "OfflineMemoryAllocation", data)
    return tflite_io.write_model(m)


def _planned(eng) -> list[int]:
    return [i for i in range(eng.num_tensors) if eng.tensor_offset(i) >= 0]


def _inputs(eng, rng, n=4):
    (shape, dtype), = eng.input_specs
    return [rng.integers(-128, 128, shape).astype(dtype) for _ in range(n)]


def test_offline_plan_is_honoured(base_bytes):
    online = CEngine(base_bytes)
    sizes = {i: online.tensor(i).nbytes for i in _planned(online)}
    # a layout unlike the greedy one: every tensor disjoint, in reverse index order
    offsets, pos = [-1] * online.num_tensors, 0
    for i in sorted(sizes, reverse=True):
        offsets[i] = pos
        pos += (sizes[i] + 15) // 16 * 16
    eng = CEngine(_with_offline_plan(base_bytes, offsets), poison=True)
    for i in range(eng.num_tensors):
        assert eng.tensor_offset(i) == offsets[i], i
    assert eng.planned_bytes == pos  # the offline plan's extent
    rng = np.random.default_rng(1)
    for x in _inputs(eng, rng):
        for a, b in zip(eng.invoke([x]), online.invoke([x])):
            np.testing.assert_array_equal(a, b)


def test_offline_plan_mixed_with_online_tensors(base_bytes):
    online = CEngine(base_bytes)
    planned = _planned(online)
    offsets = [-1] * online.num_tensors
    fixed = planned[::2]  # every other tensor offline, each in its own slot; the rest online
    pos = 0
    for i in fixed:
        offsets[i] = pos
        pos += (online.tensor(i).nbytes + 15) // 16 * 16
    eng = CEngine(_with_offline_plan(base_bytes, offsets), poison=True)
    for i in fixed:
        assert eng.tensor_offset(i) == offsets[i]
    assert all(eng.tensor_offset(i) >= 0 for i in planned)
    assert eng.planned_bytes >= pos
    rng = np.random.default_rng(2)
    for x in _inputs(eng, rng):
        for a, b in zip(eng.invoke([x]), online.invoke([x])):
            np.testing.assert_array_equal(a, b)


def test_offline_plan_errors(base_bytes):
    online = CEngine(base_bytes)
    planned = _planned(online)
    n = online.num_tensors
    everything_at_zero = [0 if i in planned else -1 for i in range(n)]
    with pytest.raises(ModelFormatError) as info:
        CEngine(_with_offline_plan(base_bytes, everything_at_zero))
    msg = str(info.value)
    assert "overlap" in msg and "live at op" in msg and msg.count("tensors") >= 1
    names = [online.tensor_name(i) for i in planned]
    assert sum(name[:40] in msg for name in names) >= 2, msg

    misaligned = [-1] * n
    misaligned[planned[0]] = 8
    with pytest.raises(ModelFormatError, match="aligned"):
        CEngine(_with_offline_plan(base_bytes, misaligned))
    with pytest.raises(ModelFormatError, match="offsets"):
        CEngine(_with_offline_plan(base_bytes, [-1] * (n - 1)))
    m = tflite_io.read_model(base_bytes)
    _metadata(m, "OfflineMemoryAllocation", struct.pack("<3i", 1, 0, 0))
    with pytest.raises(UnsupportedOpError, match="version"):
        CEngine(tflite_io.write_model(m))


def test_offline_plan_allows_in_place_pairs():
    """Input 0 and output 0 of an op that may run in place (TT_GRAD_ACCUMULATE) may share one
    offset when input 0 dies there; the same sharing across TT_SAVE_SLICE (not in place) is an
    overlap error."""
    m = _empty_model()
    shape = [1, 2, 2, 8]
    g1, g2 = _tensor(m, "g1", shape, I8), _tensor(m, "g2", shape, I8)
    e1, e2 = _tensor(m, "e1", [1], I32), _tensor(m, "e2", [1], I32)
    s, se = _tensor(m, "s", shape, I8), _tensor(m, "se", [1], I32)
    t, te = _tensor(m, "t", shape, I8), _tensor(m, "te", [1], I32)
    out = _tensor(m, "out", [1, 2, 2, 2], I8)
    _custom_op(m, "TT_GRAD_ACCUMULATE", [g1, e1, g2, e2], [s, se])
    _custom_op(m, "TT_GRAD_ACCUMULATE", [s, se, g2, e2], [t, te])
    _custom_op(m, "TT_SAVE_SLICE", [t], [out], {"channels": 2})
    sg = m.subgraphs[0]
    sg.inputs = np.array([g1, e1, g2, e2], np.int32)
    sg.outputs = np.array([out, te], np.int32)
    base = tflite_io.write_model(m)
    offsets = [-1] * len(sg.tensors)
    offsets[s], offsets[t], offsets[se], offsets[te], offsets[out] = 0, 0, 64, 80, 0
    with pytest.raises(ModelFormatError, match=r"overlap.*live at op 2 \(TT_SAVE_SLICE\)"):
        CEngine(_with_offline_plan(base, offsets))
    offsets[out] = 96
    eng = CEngine(_with_offline_plan(base, offsets), poison=True)
    assert eng.tensor_offset(s) == eng.tensor_offset(t) == 0
    rng = np.random.default_rng(0)
    for _ in range(3):
        a = rng.integers(-127, 128, shape).astype(np.int8)
        b = rng.integers(-127, 128, shape).astype(np.int8)
        got = eng.invoke([a, np.array([-3], np.int32), b, np.array([-5], np.int32)])
        r1, r1e = grad_accumulate(a, -3, b, -5)
        r2, r2e = grad_accumulate(r1, r1e, b, -5)
        np.testing.assert_array_equal(got[0], save_slice(r2, 2))
        assert int(got[1][0]) == r2e


# ---- poisoning ----

def _forward_models():
    paths = [BASE]
    for rel in ("mlcommons/resnet8_cifar10_int8.tflite", "mlcommons/kws_dscnn_int8.tflite"):
        if (SHARED_MODELS / rel).is_file():
            paths.append(SHARED_MODELS / rel)
    return paths


@pytest.mark.parametrize("path", _forward_models(), ids=lambda p: p.name)
def test_poison_does_not_change_forward_results(path):
    data = path.read_bytes()
    plain, poisoned = CEngine(data), CEngine(data, poison=True)
    rng = np.random.default_rng(6)
    for x in _inputs(plain, rng, 3):
        for a, b in zip(plain.invoke([x]), poisoned.invoke([x])):
            np.testing.assert_array_equal(a, b)
    # poisoning really happens: some dead intermediate holds 0xA5 after the invoke, and the
    # same tensor does not without poisoning
    dead = [i for i in _planned(poisoned)
            if (t := poisoned.tensor(i)).size and np.all(t.view(np.uint8) == 0xA5)]
    assert dead, "no tensor was poisoned"
    assert not any(np.all(plain.tensor(i).view(np.uint8) == 0xA5) for i in dead)
    poisoned.poison = False
    assert poisoned.poison is False


# ---- a compiled training graph: C engine == numpy engine, every bit ----

@pytest.mark.parametrize("spec", ["classifier", "full"])
def test_compiled_training_graph_matches_numpy(spec):
    """Every training op's C glue against the numpy glue on a compiled *.train.tflite: logits,
    loss and every variable (weights, biases, tt_state) after a few steps, with poisoning."""
    import tflm_train as tt
    from tflm_train.engine_numpy import NumpyEngine

    data = tt.convert(BASE, update=spec, num_classes=5).bytes
    c, n = CEngine(data, poison=True), NumpyEngine(tt.load(data))
    variables = [i for i in range(c.num_tensors) if c.is_variable(i)]
    assert c.tensor_index("tt_state") in variables and len(variables) >= 3
    rng = np.random.default_rng(8)
    (shape, dtype), _ = c.input_specs
    for step in range(3):
        x = rng.integers(-128, 128, shape).astype(dtype)
        label = np.array([step % 5 if step < 2 else -1], np.int32)  # the last: no label
        for a, b in zip(c.invoke([x, label]), n.invoke([x, label])):
            np.testing.assert_array_equal(a, b)
        for i in variables:
            np.testing.assert_array_equal(c.tensor(i), np.asarray(n.tensor(i)).reshape(c.tensor(i).shape),
                                          err_msg=c.tensor_name(i))
