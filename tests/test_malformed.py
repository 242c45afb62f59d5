"""Malformed models are rejected with a clear error and never read out of bounds.

The C engine is built with AddressSanitizer + UndefinedBehaviorSanitizer into a small driver
(micro_ops/tools/tt_run.c) that holds the model and the arena in heap blocks of exactly their
size, then fed truncated, corrupted and randomly mutated copies of a real model. Every run must
end with an engine status (nonzero for the hand-made cases) and no sanitizer report. The same
hand-made cases must raise a TflmTrainError subclass from both Python backends.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SHARED_MODELS

import tflm_train
from tflm_train.errors import TflmTrainError

STATUS = {"TT_OK": 0, "TT_ERR_MODEL": 1, "TT_ERR_UNSUPPORTED": 2, "TT_ERR_ARENA": 3}
ARENA = 4 << 20
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "UndefinedBehaviorSanitizer",
                     "LeakSanitizer")
SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:exitcode=99",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=98"}


# ---- a minimal flatbuffer navigator, to corrupt specific fields of a real model ----

def _u32(b, p):
    return struct.unpack_from("<I", b, p)[0]


def _field(b, table, field):
    """Absolute position of a table field, or None if absent."""
    vt = table - struct.unpack_from("<i", b, table)[0]
    vt_size = struct.unpack_from("<H", b, vt)[0]
    slot = 4 + 2 * field
    if slot + 2 > vt_size:
        return None
    off = struct.unpack_from("<H", b, vt + slot)[0]
    return table + off if off else None


def _deref(b, pos):
    return pos + _u32(b, pos)


def _vector(b, table, field):
    """(position of the length word, length) of a vector field."""
    p = _deref(b, _field(b, table, field))
    return p, _u32(b, p)


def _elem_table(b, table, field, i):
    vec, _ = _vector(b, table, field)
    return _deref(b, vec + 4 + 4 * i)


def _root(b):
    return _u32(b, 0)


# Field indices in tensorflow/lite/schema/schema.fbs.
MODEL_OPCODES, MODEL_SUBGRAPHS, MODEL_BUFFERS = 1, 2, 4
SG_TENSORS, SG_OPERATORS = 0, 3
TENSOR_SHAPE, TENSOR_BUFFER = 0, 2
OP_OPCODE_INDEX, OP_INPUTS = 0, 1
OPCODE_DEPRECATED, OPCODE_BUILTIN = 0, 3
BUFFER_DATA = 0


def _subgraph(b):
    return _elem_table(b, _root(b), MODEL_SUBGRAPHS, 0)


def _patch(b, pos, fmt, value):
    out = bytearray(b)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def _constant_tensor(b):
    """(tensor table, buffer index, data vector position) of the first constant tensor."""
    sg = _subgraph(b)
    _, ntensors = _vector(b, sg, SG_TENSORS)
    for i in range(ntensors):
        t = _elem_table(b, sg, SG_TENSORS, i)
        bp = _field(b, t, TENSOR_BUFFER)
        if bp is None:
            continue
        idx = _u32(b, bp)
        buf = _elem_table(b, _root(b), MODEL_BUFFERS, idx)
        if _field(b, buf, BUFFER_DATA) is not None and _vector(b, buf, BUFFER_DATA)[1] > 0:
            return t, idx, _vector(b, buf, BUFFER_DATA)[0]
    raise AssertionError("model has no constant tensor")


def data_regions(b):
    """[start, end) of every buffer's data bytes (mutating weights is uninteresting)."""
    regions = []
    vec, n = _vector(b, _root(b), MODEL_BUFFERS)
    for i in range(n):
        buf = _deref(b, vec + 4 + 4 * i)
        if _field(b, buf, BUFFER_DATA) is not None:
            p, length = _vector(b, buf, BUFFER_DATA)
            regions.append((p + 4, p + 4 + length))
    return regions


def hand_made_cases(b: bytes) -> dict[str, tuple[bytes, str]]:
    """name → (model bytes, a word the error message must contain)."""
    root, sg = _root(b), _subgraph(b)
    cases = {}
    cases["empty"] = (b"", "")
    cases["wrong_identifier"] = (b[:4] + b"TFL2" + b[8:], "identifier")
    cases["root_offset_out_of_range"] = (_patch(b, 0, "<I", len(b) + 100), "root")
    cases["root_offset_huge"] = (_patch(b, 0, "<I", 0xFFFFFFF0), "root")
    cases["vtable_offset_out_of_range"] = (_patch(b, root, "<i", -0x7FFFFFF0), "vtable")
    tv, _ = _vector(b, sg, SG_TENSORS)
    cases["tensor_vector_length_huge"] = (_patch(b, tv, "<I", 0x7FFFFFFF), "truncated")
    ov, _ = _vector(b, sg, SG_OPERATORS)
    cases["operator_vector_length_huge"] = (_patch(b, ov, "<I", 0x3FFFFFFF), "truncated")
    sv, _ = _vector(b, root, MODEL_SUBGRAPHS)
    cases["no_subgraphs"] = (_patch(b, sv, "<I", 0), "subgraph")
    bv, _ = _vector(b, root, MODEL_BUFFERS)
    cases["buffers_emptied"] = (_patch(b, bv, "<I", 0), "buffer")
    t0 = _elem_table(b, sg, SG_TENSORS, 0)
    cases["tensor_buffer_index_out_of_range"] = (
        _patch(b, _field(b, t0, TENSOR_BUFFER), "<I", 99999), "buffer 99999")
    shape, _ = _vector(b, t0, TENSOR_SHAPE)
    cases["negative_dimension"] = (_patch(b, shape + 4, "<i", -3), "dimension")
    cases["rank_too_large"] = (_patch(b, shape, "<I", 9), "")
    ct, _, data_vec = _constant_tensor(b)
    cases["constant_buffer_too_short"] = (_patch(b, data_vec, "<I", _u32(b, data_vec) - 1),
                                          "bytes")
    _, nops = _vector(b, sg, SG_OPERATORS)
    op0 = _elem_table(b, sg, SG_OPERATORS, 0)
    # opcode_index 0 is a default the writer may omit: corrupt an op that stores it.
    stored = [_field(b, _elem_table(b, sg, SG_OPERATORS, i), OP_OPCODE_INDEX) for i in range(nops)]
    stored = [p for p in stored if p is not None]
    cases["opcode_index_out_of_range"] = (_patch(b, stored[0], "<I", 7777), "opcode")
    ins, _ = _vector(b, op0, OP_INPUTS)
    cases["op_input_index_out_of_range"] = (_patch(b, ins + 4, "<i", 5000), "tensor 5000")
    cases["op_input_vector_huge"] = (_patch(b, ins, "<I", 0x7FFFFFF0), "truncated")
    return cases


def requant_cases(b: bytes) -> dict[str, tuple[bytes, str]]:
    """The model with a "tt_requant" table (flash requantization constants), corrupted:
    name → (model bytes, a word the C engine's error must contain). The numpy engine ignores
    the table, so these are C-only."""
    from tflm_train import ir, tflite_io
    from tflm_train.compiler import REQUANT_NAME, add_metadata, requant_table

    m = tflite_io.read_model(b)
    table = requant_table(ir.from_model(m))
    add_metadata(m, REQUANT_NAME, table)
    good = tflite_io.write_model(m)
    at = good.find(table)
    assert at > 0 and good.find(table, at + 1) < 0
    count = _u32(good, at + 4)
    entry = at + 8  # entry 0: op, channels, multiplier offset, shift offset
    mult = at + _u32(good, entry + 8)
    cases = {"requant_valid": (good, "")}  # must load: checked separately
    cases["requant_version"] = (_patch(good, at, "<i", 2), "version")
    cases["requant_count_huge"] = (_patch(good, at + 4, "<I", 0x7FFFFFFF), "entries")
    cases["requant_op_out_of_range"] = (_patch(good, entry, "<i", 99999), "op 99999")
    cases["requant_ops_not_ascending"] = (
        _patch(good, entry + 16, "<i", _u32(good, entry)) if count > 1 else
        _patch(good, entry, "<i", -1), "ascending")
    cases["requant_channels_negative"] = (_patch(good, entry + 4, "<i", -5), "channels")
    cases["requant_channels_wrong"] = (_patch(good, entry + 4, "<i", _u32(good, entry + 4) - 1),
                                       "channel count")
    cases["requant_offset_out_of_bounds"] = (_patch(good, entry + 8, "<I", 0xFFFFFFF0), "within")
    cases["requant_offset_misaligned"] = (_patch(good, entry + 12, "<I",
                                                 _u32(good, entry + 12) + 4), "aligned")
    cases["requant_value_mismatch"] = (_patch(good, mult, "<i", _u32(good, mult) ^ 1), "differs")
    cases["requant_shift_mismatch"] = (_patch(good, at + _u32(good, entry + 12), "<i", 7),
                                       "differs")
    return cases


# ---- fixtures ----

@pytest.fixture(scope="session")
def base_model() -> bytes:
    p = SHARED_MODELS / "mlcommons" / "kws_dscnn_int8.tflite"
    if p.is_file():
        return p.read_bytes()
    import tensorflow as tf
    from converters.keras import to_int8_tflite

    rng = np.random.default_rng(0)
    m = tf.keras.Sequential([tf.keras.Input((12, 12, 3)),
                             tf.keras.layers.Conv2D(8, 3, activation="relu"),
                             tf.keras.layers.DepthwiseConv2D(3),
                             tf.keras.layers.GlobalAveragePooling2D(),
                             tf.keras.layers.Dense(4), tf.keras.layers.Softmax()])
    return to_int8_tflite(m, rng.uniform(-1, 1, (16, 12, 12, 3)).astype(np.float32))


@pytest.fixture(scope="session")
def tt_run(tmp_path_factory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found")
    out = tmp_path_factory.mktemp("tt_run")
    flags = ["-std=c99", "-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    probe = out / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    r = subprocess.run([gcc, *flags, str(probe), "-o", str(out / "probe")], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"gcc cannot build with -fsanitize=address,undefined: {r.stderr[-300:]}")
    mo = ROOT / "micro_ops"
    sources = sorted([*mo.glob("kernels/*.c"), *mo.glob("engine/*.c"), *mo.glob("engine/ops/*.c"),
                      mo / "tools" / "tt_run.c"])
    exe = out / "tt_run"
    r = subprocess.run([gcc, *flags, "-Wall", "-Wextra", f"-I{mo / 'include'}",
                        *map(str, sources), "-lm", "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return exe


def _run(exe: Path, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **SAN_ENV})


def _assert_clean(r: subprocess.CompletedProcess, what: str) -> None:
    report = r.stdout + r.stderr
    assert not any(m in report for m in SANITIZER_MARKERS), f"{what}: sanitizer report:\n{report[-4000:]}"
    assert r.returncode in STATUS.values(), f"{what}: exit {r.returncode}\n{report[-2000:]}"


# ---- tests ----

def test_original_model_runs_clean(tt_run, base_model, tmp_path):
    """The unmodified model loads and runs under the sanitizers (guards the test itself)."""
    p = tmp_path / "model.tflite"
    p.write_bytes(base_model)
    r = _run(tt_run, [str(p), str(ARENA)])
    _assert_clean(r, "original")
    assert r.returncode == 0, r.stdout
    assert "arena_used" in r.stdout and "checksum" in r.stdout


def test_hand_made_cases_rejected_by_c_engine(tt_run, base_model, tmp_path):
    for name, (data, word) in hand_made_cases(base_model).items():
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(data)
        r = _run(tt_run, [str(p), str(ARENA)])
        _assert_clean(r, name)
        assert r.returncode != 0, f"{name}: accepted\n{r.stdout}"
        assert word.lower() in r.stdout.lower(), f"{name}: unclear message: {r.stdout}"


def test_truncated_models_rejected(tt_run, base_model, tmp_path):
    n = len(base_model)
    cuts = sorted({0, 1, 4, 7, 8, 12, 16, 31, 64, 100, n // 3, n // 2, n - 16, n - 4, n - 1,
                   *np.random.default_rng(7).integers(8, n, 40).tolist()})
    files = []
    for c in cuts:
        p = tmp_path / f"cut_{c}.tflite"
        p.write_bytes(base_model[:c])
        files.append(str(p))
    r = _run(tt_run, ["--each", str(ARENA), *files])
    _assert_clean(r, "truncated")
    lines = r.stdout.splitlines()
    assert len(lines) == len(files), r.stdout[-2000:]
    for line in lines:
        assert " create TT_ERR_" in line, f"truncated model accepted: {line}"


def test_random_bytes_rejected(tt_run, tmp_path):
    rng = np.random.default_rng(11)
    files = []
    for k, size in enumerate([8, 9, 64, 1000, 5000, 20000]):
        data = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        if k % 2:
            data[4:8] = b"TFL3"  # get past the identifier check
            data[0:4] = struct.pack("<I", int(rng.integers(8, size // 2 + 9)) & ~3)
        p = tmp_path / f"random_{k}.tflite"
        p.write_bytes(bytes(data))
        files.append(str(p))
    r = _run(tt_run, ["--each", str(ARENA), *files])
    _assert_clean(r, "random bytes")
    for line in r.stdout.splitlines():
        assert " create TT_ERR_" in line, line


def test_random_mutations_never_read_out_of_bounds(tt_run, base_model, tmp_path):
    """Seeded byte mutations, mostly in the flatbuffer structure (not in weight bytes)."""
    rng = np.random.default_rng(2024)
    regions = data_regions(base_model)
    in_data = np.zeros(len(base_model), dtype=bool)
    for a, z in regions:
        in_data[a:z] = True
    structure = np.flatnonzero(~in_data)
    specials = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE]
    files = []
    for k in range(300):
        data = bytearray(base_model)
        for _ in range(int(rng.integers(1, 5))):
            pos = int(rng.choice(structure)) if rng.random() < 0.85 else int(rng.integers(len(data)))
            data[pos] = specials[int(rng.integers(len(specials)))] if rng.random() < 0.5 \
                else int(rng.integers(256))
        p = tmp_path / f"mut_{k:03d}.tflite"
        p.write_bytes(bytes(data))
        files.append(str(p))
    outcomes = {}
    for chunk in range(0, len(files), 100):
        r = _run(tt_run, ["--each", str(ARENA), *files[chunk:chunk + 100]], timeout=600)
        _assert_clean(r, f"mutations {chunk}..: last printed {r.stdout.splitlines()[-1:]}")
        for line in r.stdout.splitlines():
            key = "ok" if line.endswith(": ok") else line.split(": ")[1].split(":")[0]
            outcomes[key] = outcomes.get(key, 0) + 1
    assert sum(outcomes.values()) == len(files)
    # The corpus must actually exercise the checks, not only harmless bytes.
    assert sum(v for k, v in outcomes.items() if k != "ok") >= 50, outcomes


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_hand_made_cases_raise_clear_python_errors(backend, base_model):
    if backend == "c":
        from tflm_train.engine_c import CEngine, _library

        try:
            _library()
        except TflmTrainError as e:
            pytest.skip(str(e))
    for name, (data, word) in hand_made_cases(base_model).items():
        with pytest.raises(TflmTrainError) as info:
            if backend == "numpy":
                from tflm_train.engine_numpy import NumpyEngine

                NumpyEngine(tflm_train.load(data))
            else:
                CEngine(data)
        msg = str(info.value)
        assert len(msg) > 10, f"{name}: message too short: {msg!r}"
        if backend == "c":
            assert word.lower() in msg.lower(), f"{name}: unclear message: {msg}"


def test_corrupted_requant_table_rejected(tt_run, base_model, tmp_path):
    """Bounds, alignment and every value of the flash requantization table are checked: a
    corrupted table is rejected (TT_ERR_MODEL / UNSUPPORTED) under the sanitizers, never used."""
    from tflm_train.engine_c import CEngine

    for name, (data, word) in requant_cases(base_model).items():
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(data)
        r = _run(tt_run, [str(p), str(ARENA)])
        _assert_clean(r, name)
        if name == "requant_valid":
            assert r.returncode == 0, r.stdout
            CEngine(data)
            continue
        assert r.returncode in (STATUS["TT_ERR_MODEL"], STATUS["TT_ERR_UNSUPPORTED"]), \
            f"{name}: exit {r.returncode}\n{r.stdout}"
        assert word.lower() in r.stdout.lower() and "tt_requant" in r.stdout, \
            f"{name}: unclear message: {r.stdout}"
        with pytest.raises(TflmTrainError, match="tt_requant"):
            CEngine(data)
