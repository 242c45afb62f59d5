"""The C engine through its ctypes binding: arena sizing is exact, errors are clear, and
outputs are bit-identical to the TFLM interpreter on real models."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import random_input, shared_model, shared_tflite_models, tflm_invoke

import tflm_train
from tflm_train.errors import EngineError, ShapeError, TflmTrainError, UnsupportedOpError


@pytest.fixture(scope="module")
def CEngine():
    from tflm_train.engine_c import CEngine, _library

    try:
        _library()
    except TflmTrainError as e:
        pytest.skip(str(e))
    return CEngine


@pytest.fixture(scope="session")
def keras_float_io_model() -> bytes:
    """Small model with float I/O: QUANTIZE/DEQUANTIZE edges, ADD, MAX_POOL, MEAN, FC, SOFTMAX."""
    import tensorflow as tf
    from converters.keras import to_int8_tflite

    tf.keras.utils.set_random_seed(3)
    x = inp = tf.keras.Input((10, 10, 3))
    x = tf.keras.layers.ZeroPadding2D(1)(x)
    x = tf.keras.layers.Conv2D(8, 3, activation="relu")(x)
    y = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.Add()([x, y])
    x = tf.keras.layers.MaxPooling2D(2)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(5)(x)
    out = tf.keras.layers.Softmax()(x)
    model = tf.keras.Model(inp, out)
    rep = np.random.default_rng(0).uniform(-1, 1, (32, 10, 10, 3)).astype(np.float32)
    return to_int8_tflite(model, rep, io_dtype="float32")


def _kws() -> bytes:
    return shared_model("mlcommons/kws_dscnn_int8.tflite").read_bytes()


def _assert_matches_tflm(engine, model_bytes: bytes, rng, count: int = 20) -> None:
    graph = tflm_train.load(model_bytes)
    for _ in range(count):
        xs = [random_input(t, rng) for t in graph.input_tensors()]
        got = engine.invoke(xs)
        want = tflm_invoke(model_bytes, xs)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("rel", shared_tflite_models() or ["mlcommons/kws_dscnn_int8.tflite"])
def test_real_model_bit_exact_vs_tflm(CEngine, rel, rng):
    b = shared_model(rel).read_bytes()
    _assert_matches_tflm(CEngine(b), b, rng)


def test_float_io_model_bit_exact_vs_tflm(CEngine, keras_float_io_model, rng):
    _assert_matches_tflm(CEngine(keras_float_io_model), keras_float_io_model, rng)


def test_arena_used_is_exact(CEngine, rng):
    """arena_used is enough for a second engine, and one byte less is refused clearly."""
    b = _kws()
    sized = CEngine(b)
    used = sized.arena_bytes
    assert used == sized.persistent_bytes + sized.planned_bytes
    exact = CEngine(b, arena_size=used)
    assert exact.arena_bytes == used
    x = [random_input(t, rng) for t in tflm_train.load(b).input_tensors()]
    np.testing.assert_array_equal(exact.invoke(x)[0], sized.invoke(x)[0])
    with pytest.raises(EngineError) as info:
        CEngine(b, arena_size=used - 1)
    msg = str(info.value)
    assert "TT_ERR_ARENA" in msg and f"need {used} bytes, have {used - 1}" in msg, msg
    with pytest.raises(EngineError, match="arena too small"):
        CEngine(b, arena_size=1000)


def _with_builtin(b: bytes, builtin_code: int) -> tuple[bytes, int]:
    """The model with operator code 0 turned into another builtin, and the first op using it."""
    u32 = lambda p: struct.unpack_from("<I", b, p)[0]  # noqa: E731

    def field(table, f):
        vt = table - struct.unpack_from("<i", b, table)[0]
        if 4 + 2 * f + 2 > struct.unpack_from("<H", b, vt)[0]:
            return None
        off = struct.unpack_from("<H", b, vt + 4 + 2 * f)[0]
        return table + off if off else None

    def vec(table, f):
        p = field(table, f)
        p += u32(p)
        return p + 4, u32(p)

    root = u32(0)
    codes, _ = vec(root, 1)
    code0 = codes + u32(codes)
    out = bytearray(b)
    builtin = field(code0, 3)
    deprecated = field(code0, 0)
    assert builtin is not None or deprecated is not None
    if builtin is not None:
        struct.pack_into("<i", out, builtin, builtin_code)
    if deprecated is not None:
        struct.pack_into("<b", out, deprecated, min(builtin_code, 127))
    subgraphs, _ = vec(root, 2)
    sg = subgraphs + u32(subgraphs)
    ops, nops = vec(sg, 3)
    for i in range(nops):
        op = ops + 4 * i + u32(ops + 4 * i)
        p = field(op, 0)
        if p is None or u32(p) == 0:
            return bytes(out), i
    raise AssertionError("no op uses operator code 0")


def test_unsupported_op_named(CEngine):
    b, op_index = _with_builtin(_kws(), 18)  # MUL
    with pytest.raises(UnsupportedOpError) as info:
        CEngine(b)
    msg = str(info.value)
    assert f"op {op_index} (MUL) is not supported" in msg, msg
    assert "CONV_2D" in msg and "SOFTMAX" in msg  # lists what is supported
    assert info.value.op_index == op_index and info.value.opcode == "MUL"
    b, _ = _with_builtin(_kws(), 150)  # a builtin the engine cannot name is still clear
    with pytest.raises(UnsupportedOpError, match=r"op \d+ \(\w+\) is not supported"):
        CEngine(b)


def test_op_with_more_tensors_than_the_view_pool_is_rejected(CEngine):
    """An op's context holds one tensor view per input and output on the stack (24 at most):
    an op with more is refused at load, naming the op, not run past the pool."""
    from tflm_train import tflite_io

    m = tflite_io.read_model(_kws())
    op = m.subgraphs[0].operators[0]
    op.inputs = np.concatenate([np.asarray(op.inputs, np.int32), np.full(24, -1, np.int32)])
    with pytest.raises(UnsupportedOpError, match=r"op 0 \(CONV_2D\) has \d+ inputs and outputs; "
                       r"at most 24 are supported"):
        CEngine(tflite_io.write_model(m))


def test_input_checks(CEngine):
    b = _kws()
    eng = CEngine(b)
    (shape, dtype), = eng.input_specs
    with pytest.raises(ShapeError, match="expects int8"):
        eng.invoke([np.zeros(shape, np.float32)])
    with pytest.raises(ShapeError, match="expects"):
        eng.invoke([np.zeros((1, 2), dtype)])
    with pytest.raises(ShapeError, match="1 inputs, got 2"):
        eng.invoke([np.zeros(shape, dtype)] * 2)


def test_invoke_in_op_slices_equals_invoke(CEngine, rng):
    """tt_engine_invoke_ops over consecutive slices (1 op at a time, or 3) is tt_engine_invoke,
    for inference and for training steps (the profiler times ops this way); a range outside
    the graph is refused."""
    import ctypes

    import tflm_train as tt

    tm = tt.convert(_kws(), update="last-2", num_classes=4)
    whole, sliced = CEngine(tm.bytes), CEngine(tm.bytes)
    shape = whole.input_specs[0][0]
    for step in range(3):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        y = np.array([step % 4], np.int32)
        a = whole.invoke([x, y])
        b = sliced.invoke([x, y], op_chunk=1 if step % 2 == 0 else 3)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert whole.num_ops == len(tm.graph.ops) > 3
    lib, n = sliced._lib, sliced.num_ops
    for first, count in ((-1, 1), (0, n + 1), (n, 1), (2, -1)):
        assert lib.tt_engine_invoke_ops(sliced._engine, first, count) != 0, (first, count)
    assert lib.tt_engine_invoke_ops(sliced._engine, n, 0) == 0
    assert lib.tt_engine_invoke_ops(ctypes.c_void_p(), 0, 0) != 0


def test_status_names():
    from tflm_train.engine_c import _library

    try:
        lib = _library()
    except TflmTrainError as e:
        pytest.skip(str(e))
    import ctypes

    lib.tt_status_name.restype = ctypes.c_char_p
    assert [lib.tt_status_name(s).decode() for s in range(6)] == [
        "TT_OK", "TT_ERR_MODEL", "TT_ERR_UNSUPPORTED", "TT_ERR_ARENA", "TT_ERR_ARG", "TT_ERR_SHAPE"]
