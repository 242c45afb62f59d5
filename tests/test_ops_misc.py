"""The non-MAC int8 ops (ADD, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, SOFTMAX, PAD,
QUANTIZE, DEQUANTIZE) are bit-exact with the TFLM interpreter in both engines, on small
converted Keras models covering each option, plus a few models edited in the flatbuffer for
cases the converter never emits (equal-scale MEAN, int8 → int8 QUANTIZE, softmax beta != 1,
fused activation on pooling). The numpy kernels are also checked against independent float
computations (within the stated tolerance)."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from conftest import tflm_invoke

import tflm_train
from tflm_train import quant, tflite_io
from tflm_train.engine_numpy import NumpyEngine
from tflm_train.kernels.add import add, add_params
from tflm_train.kernels.dequantize import DequantizeParams, dequantize
from tflm_train.kernels.mean import mean, mean_params
from tflm_train.kernels.pad import pad, pad_params
from tflm_train.kernels.pooling import PoolParams, average_pool_2d, max_pool_2d
from tflm_train.kernels.quantize import QuantizeParams, quantize, requantize, requantize_params
from tflm_train.kernels.softmax import softmax, softmax_params

N_INPUTS = 20


# --- Keras models -------------------------------------------------------------------------

def _keras_models():
    import tensorflow as tf

    L = tf.keras.layers

    def conv(x, ch=4):   # makes the tensor int8 with a calibrated scale of its own
        return L.Conv2D(ch, 1)(x)

    return {
        # name: (input shape, body, io dtype, opcode under test)
        "add_relu": ((6, 6, 3), lambda x: L.ReLU()(L.Add()([conv(x), conv(x)])), "int8", "ADD"),
        "add_relu6": ((5, 5, 2), lambda x: L.ReLU(6.0)(L.Add()([conv(x), conv(x)])), "int8",
                      "ADD"),
        "add_broadcast": ((6, 6, 3), lambda x: L.Add()([
            conv(x), L.Dense(4)(L.GlobalAveragePooling2D(keepdims=True)(x))]), "int8", "ADD"),
        "avg_pool2_s2_valid": ((7, 7, 3), lambda x: L.AveragePooling2D(2, 2)(conv(x)), "int8",
                               "AVERAGE_POOL_2D"),
        "avg_pool2_s1_same": ((5, 6, 3), lambda x: L.AveragePooling2D(
            2, 1, padding="same")(conv(x)), "int8", "AVERAGE_POOL_2D"),
        "avg_pool3_s2_same": ((7, 8, 3), lambda x: L.AveragePooling2D(
            3, 2, padding="same")(conv(x)), "int8", "AVERAGE_POOL_2D"),
        "avg_pool3_s1_valid": ((6, 6, 3), lambda x: L.AveragePooling2D(3, 1)(conv(x)), "int8",
                               "AVERAGE_POOL_2D"),
        "max_pool2_s2_valid": ((7, 7, 3), lambda x: L.MaxPooling2D(2, 2)(conv(x)), "int8",
                               "MAX_POOL_2D"),
        "max_pool2_s1_same": ((5, 6, 3), lambda x: L.MaxPooling2D(2, 1, padding="same")(conv(x)),
                              "int8", "MAX_POOL_2D"),
        "max_pool3_s2_same": ((7, 8, 3), lambda x: L.MaxPooling2D(3, 2, padding="same")(conv(x)),
                              "int8", "MAX_POOL_2D"),
        "max_pool3_s1_valid": ((6, 6, 3), lambda x: L.MaxPooling2D(3, 1)(conv(x)), "int8",
                               "MAX_POOL_2D"),
        "mean_5x5": ((5, 5, 3), lambda x: L.GlobalAveragePooling2D()(conv(x)), "int8", "MEAN"),
        "mean_4x4_keepdims": ((4, 4, 3), lambda x: L.GlobalAveragePooling2D(keepdims=True)(
            conv(x, 6)), "int8", "MEAN"),
        "mean_12x12": ((12, 12, 2), lambda x: L.GlobalAveragePooling2D()(conv(x)), "int8",
                       "MEAN"),
        "reshape_flatten": ((4, 4, 3), lambda x: L.Flatten()(conv(x)), "int8", "RESHAPE"),
        "reshape": ((4, 4, 3), lambda x: L.Reshape((8, 8))(conv(x)), "int8", "RESHAPE"),
        "softmax": ((4, 4, 3), lambda x: L.Softmax()(L.Dense(10)(L.Flatten()(x))), "int8",
                    "SOFTMAX"),
        "softmax_rows": ((4, 3, 2), lambda x: L.Softmax()(L.Reshape((4, 6))(x)), "int8",
                         "SOFTMAX"),
        "pad_symmetric": ((5, 5, 3), lambda x: L.ZeroPadding2D(1)(conv(x)), "int8", "PAD"),
        "pad_asymmetric": ((5, 4, 3), lambda x: L.ZeroPadding2D(((1, 2), (0, 3)))(conv(x)),
                           "int8", "PAD"),
        "float_io": ((4, 4, 3), lambda x: L.Dense(5)(L.Flatten()(x)), "float32", "QUANTIZE"),
    }


def _convert(name: str) -> bytes:
    import tensorflow as tf

    from converters.keras import to_int8_tflite

    shape, body, io, _ = _keras_models()[name]
    tf.keras.utils.set_random_seed(zlib.crc32(name.encode()) % 1000)
    inp = tf.keras.Input(shape, batch_size=1)
    model = tf.keras.Model(inp, body(inp))
    rep = np.random.default_rng(0).uniform(-1, 1, size=(64,) + shape).astype(np.float32)
    return to_int8_tflite(model, rep, io_dtype=io)


# --- flatbuffer edits for what the converter does not emit ----------------------------------

def _edit(data: bytes, fn) -> bytes:
    model = tflite_io.read_model(data)
    fn(model, model.subgraphs[0])
    return tflite_io.write_model(model)


def _ops(model, sg, name):
    return [op for op in sg.operators if tflite_io.opcode_name(model, op.opcodeIndex) == name]


def _mean_equal_scales(model, sg):
    op = _ops(model, sg, "MEAN")[0]
    src, dst = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
    dst.quantization.scale = list(src.quantization.scale)
    dst.quantization.zeroPoint = list(src.quantization.zeroPoint)


def _int8_quantize(model, sg):
    """Make the float input int8 so that QUANTIZE requantizes int8 → int8."""
    from ai_edge_litert import schema_py_generated as schema

    t = sg.tensors[sg.inputs[0]]
    t.type = schema.TensorType.INT8
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [0.0123], [7]
    t.quantization = q


def _softmax_beta(beta):
    def fn(model, sg):
        _ops(model, sg, "SOFTMAX")[0].builtinOptions.beta = beta
    return fn


def _pool_activation(opname, act):
    def fn(model, sg):
        _ops(model, sg, opname)[0].builtinOptions.fusedActivationFunction = act
    return fn


EDITED = {
    # name: (source model, edit, opcode under test)
    "mean_equal_scales": ("mean_5x5", _mean_equal_scales, "MEAN"),
    "mean_equal_scales_keepdims": ("mean_4x4_keepdims", _mean_equal_scales, "MEAN"),
    "quantize_int8_to_int8": ("float_io", _int8_quantize, "QUANTIZE"),
    "softmax_beta_0.3": ("softmax", _softmax_beta(0.3), "SOFTMAX"),
    "softmax_beta_2.5": ("softmax", _softmax_beta(2.5), "SOFTMAX"),
    "avg_pool_relu6": ("avg_pool3_s2_same", _pool_activation("AVERAGE_POOL_2D", 3),
                       "AVERAGE_POOL_2D"),
    "max_pool_relu_n1_to_1": ("max_pool3_s2_same", _pool_activation("MAX_POOL_2D", 2),
                              "MAX_POOL_2D"),
}


class _ModelCache:
    def __init__(self):
        self._models: dict[str, bytes] = {}

    def __call__(self, name: str) -> bytes:
        if name not in self._models:
            if name in EDITED:
                src, fn, _ = EDITED[name]
                self._models[name] = _edit(self(src), fn)
            else:
                self._models[name] = _convert(name)
        return self._models[name]


@pytest.fixture(scope="session")
def models():
    return _ModelCache()


def _model_names():
    # Names are static; building the dict needs TensorFlow, so list them without calling it.
    return ["add_relu", "add_relu6", "add_broadcast", "avg_pool2_s2_valid", "avg_pool2_s1_same",
            "avg_pool3_s2_same", "avg_pool3_s1_valid", "max_pool2_s2_valid", "max_pool2_s1_same",
            "max_pool3_s2_same", "max_pool3_s1_valid", "mean_5x5", "mean_4x4_keepdims",
            "mean_12x12", "reshape_flatten", "reshape", "softmax", "softmax_rows",
            "pad_symmetric", "pad_asymmetric", "float_io"] + list(EDITED)


def _opcode_under_test(name: str) -> str:
    return EDITED[name][2] if name in EDITED else _keras_models()[name][3]


def _inputs(tensor, rng, n):
    if tensor.dtype == np.float32:   # beyond the calibrated range too, to exercise saturation
        return [rng.uniform(-3, 3, size=tensor.shape).astype(np.float32) for _ in range(n)]
    return [rng.integers(-128, 128, size=tensor.shape, dtype=np.int8) for _ in range(n)]


def _make_engine(kind: str, data: bytes):
    if kind == "numpy":
        return NumpyEngine(tflm_train.load(data))
    try:
        from tflm_train.engine_c import CEngine
    except ImportError as e:   # pragma: no cover - the C engine is part of the package
        pytest.fail(f"C engine unavailable: {e}")
    return CEngine(data)


@pytest.mark.parametrize("engine", ["numpy", "c"])
@pytest.mark.parametrize("name", _model_names())
def test_bit_exact_with_tflm(models, name, engine):
    data = models(name)
    graph = tflm_train.load(data)
    opcodes = [op.opcode for op in graph.ops]
    assert _opcode_under_test(name) in opcodes, opcodes   # the model exercises the op
    eng = _make_engine(engine, data)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    refs = []
    for i, x in enumerate(_inputs(graph.input_tensors()[0], rng, N_INPUTS)):
        want = tflm_invoke(data, [x])
        got = eng.invoke([x])
        assert len(got) == len(want)
        for w, y in zip(want, got):
            assert y.dtype == w.dtype and y.shape == w.shape, (y.dtype, y.shape, w.dtype, w.shape)
            diff = int(np.sum(y != w))
            assert diff == 0, f"{name} input {i}: {diff} of {w.size} outputs differ from TFLM"
        refs.append(want[0].tobytes())
    assert len(set(refs)) > 1, "outputs do not depend on the input: the check is vacuous"


def test_equal_scale_edit_took_effect(models):
    g = tflm_train.load(models("mean_equal_scales"))
    op = next(o for o in g.ops if o.opcode == "MEAN")
    a, b = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    assert a.scale == b.scale and a.zero_point == b.zero_point
    g = tflm_train.load(models("mean_5x5"))
    op = next(o for o in g.ops if o.opcode == "MEAN")
    assert g.tensors[op.inputs[0]].scale != g.tensors[op.outputs[0]].scale


# --- kernels against independent float computations -----------------------------------------

def _round_half_away(v):
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def test_add_kernel_matches_float(rng):
    # Fixed-point rescaling of both inputs (20-bit headroom) and the output rounds three
    # times, so the result may differ from the correctly rounded real sum by 1 LSB.
    s1, z1, s2, z2, so, zo = 0.031, -5, 0.047, 12, 0.06, -3
    p = add_params(s1, z1, s2, z2, so, zo, (-128, 127))
    a = rng.integers(-128, 128, size=(2, 3, 4, 5), dtype=np.int8)
    b = rng.integers(-128, 128, size=(1, 3, 1, 5), dtype=np.int8)   # broadcast
    y = add(p, a, b).astype(np.int64)
    real = np.float32(s1) * (a.astype(np.float64) - z1) + np.float32(s2) * (b - z2)
    expect = np.clip(_round_half_away(real / np.float32(so)) + zo, -128, 127)
    assert y.shape == (2, 3, 4, 5)
    assert np.max(np.abs(y - expect)) <= 1
    assert np.mean(y == expect) > 0.9


def _windows_reference(x, p: PoolParams, out_h, out_w, reduce):
    n, h, w, c = x.shape
    out = np.zeros((n, out_h, out_w, c), dtype=np.float64)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * p.stride_h - p.pad_h, ox * p.stride_w - p.pad_w
            win = x[:, max(y0, 0):min(y0 + p.filter_h, h), max(x0, 0):min(x0 + p.filter_w, w), :]
            out[:, oy, ox, :] = reduce(win.astype(np.float64).reshape(n, -1, c))
    return out


@pytest.mark.parametrize("filt,stride,padding", [(2, 2, quant.PADDING_VALID),
                                                 (3, 1, quant.PADDING_SAME),
                                                 (3, 2, quant.PADDING_SAME)])
def test_pool_kernels_match_float(rng, filt, stride, padding):
    # Integer average with round-half-away equals the rounded float mean exactly (the sums
    # are small integers); max is exact.
    x = rng.integers(-128, 128, size=(2, 7, 6, 3), dtype=np.int8)
    out_h, pad_h = quant.compute_padding(padding, 7, filt, stride, 1)
    out_w, pad_w = quant.compute_padding(padding, 6, filt, stride, 1)
    p = PoolParams(stride, stride, filt, filt, pad_w, pad_h, (-100, 90))
    shape = (2, out_h, out_w, 3)
    avg = _windows_reference(x, p, out_h, out_w, lambda v: v.mean(axis=1))
    mx = _windows_reference(x, p, out_h, out_w, lambda v: v.max(axis=1))
    np.testing.assert_array_equal(average_pool_2d(p, x, shape),
                                  np.clip(_round_half_away(avg), -100, 90))
    np.testing.assert_array_equal(max_pool_2d(p, x, shape), np.clip(mx, -100, 90))


@pytest.mark.parametrize("hw", [(5, 5), (4, 4), (12, 12), (3, 7)])
def test_mean_kernel_matches_float(rng, hw):
    # The 1/count factor is folded into the fixed-point multiplier with an integer division
    # (TFLM's precision loss), so allow 1 LSB.
    s_in, z_in, s_out, z_out = 0.05, 3, 0.021, -7
    x = rng.integers(-128, 128, size=(1,) + hw + (6,), dtype=np.int8)
    p = mean_params(s_in, z_in, s_out, z_out, hw[0] * hw[1])
    y = mean(p, x, (1, 1, 1, 6)).astype(np.int64)
    real = np.float32(s_in) * (x.astype(np.float64) - z_in).mean(axis=(1, 2), keepdims=True)
    expect = np.clip(_round_half_away(real / np.float32(s_out)) + z_out, -128, 127)
    assert np.max(np.abs(y - expect)) <= 1


@pytest.mark.parametrize("beta,scale", [(1.0, 0.1), (1.0, 0.02), (0.5, 0.25), (2.0, 0.05)])
def test_softmax_kernel_matches_float(rng, beta, scale):
    # Q5.26 exp, Q12.19 sum and a Newton-Raphson reciprocal: within 1 LSB of 1/256.
    p = softmax_params(beta, scale)
    x = rng.integers(-128, 128, size=(8, 10), dtype=np.int8)
    x[0] = 5   # a row of ties
    y = softmax(p, x).astype(np.int64)
    z = beta * np.float32(scale) * x.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    expect = np.clip(_round_half_away(e / e.sum(axis=1, keepdims=True) * 256) - 128, -128, 127)
    assert np.max(np.abs(y - expect)) <= 1


def test_fixed_point_exp_and_reciprocal():
    # gemmlowp's exp in Q0.31 is accurate to a few 1e-9 relative; reciprocal likewise.
    a = -np.arange(0, 31 * (1 << 26), 9_999_991, dtype=np.int64)   # Q5.26 in (-31, 0]
    got = quant.exp_on_negative_values(a, 5) / 2.0 ** 31
    np.testing.assert_allclose(got, np.exp(a / 2.0 ** 26), rtol=1e-6, atol=2e-9)
    x = np.arange(1 << 19, 1 << 30, 7_777_777, dtype=np.int64)      # Q12.19 in [1, 2048)
    r, nbits = quant.get_reciprocal(x, 12)
    np.testing.assert_allclose(r / 2.0 ** 31 / 2.0 ** nbits, 2.0 ** 19 / x, rtol=1e-8)


def test_pad_kernel(rng):
    x = rng.integers(-128, 128, size=(5, 4, 3), dtype=np.int8)   # rank 3: leading dims get 1
    p = pad_params(np.array([[1, 0], [2, 3], [0, 1]]), -9)
    y = pad(p, x)
    assert y.shape == (6, 9, 4) and y.dtype == np.int8
    np.testing.assert_array_equal(y[1:, 2:6, :3], x)
    mask = np.ones(y.shape, dtype=bool)
    mask[1:, 2:6, :3] = False
    assert np.all(y[mask] == -9)


def test_quantize_kernels(rng):
    # float → int8: exactly round-half-away(x / scale) + zero point, saturated; ties included.
    scale, zp = np.float32(0.05), -4
    x = np.concatenate([rng.uniform(-10, 10, 1000),
                        (np.arange(-20, 21) + 0.5) * 0.05, [np.inf, -np.inf, 1e30]]
                       ).astype(np.float32)
    y = quantize(QuantizeParams(float(scale), zp), x).astype(np.int64)
    r = [math.floor(abs(float(v)) + 0.5) * (1 if v >= 0 else -1) if math.isfinite(v)
         else math.copysign(1e12, v) for v in (x / scale).astype(np.float32)]
    np.testing.assert_array_equal(y, np.clip(np.array(r) + zp, -128, 127))
    # int8 → int8: within 1 LSB of the float rescale.
    p = requantize_params(0.07, 5, 0.03, -11)
    q = np.arange(-128, 128, dtype=np.int8)
    expect = np.clip(_round_half_away(np.float32(0.07) * (q - 5.0) / np.float32(0.03)) - 11,
                     -128, 127)
    assert np.max(np.abs(requantize(p, q).astype(np.int64) - expect)) <= 1
    # int8 → float32: the double product, rounded once to float32.
    q = np.arange(-128, 128, dtype=np.int8)
    y = dequantize(DequantizeParams(0.0123, 3), q)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, (float(np.float32(0.0123)) * (q.astype(np.float64) - 3))
                                  .astype(np.float32))
