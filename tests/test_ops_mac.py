"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: bit-exact with the TFLM interpreter.

Properties protected:
- every option the converter can emit (kernel sizes, strides, SAME/VALID, dilation, depth
  multiplier, fused activations, with/without bias, per-tensor/per-channel FC weights, FC input
  rank > 2 with and without keep_num_dims) gives outputs identical to TFLM, in the numpy engine
  and in the C engine, on 20 random int8 inputs each;
- the requantization constants are double products of the float32 scales, as in the pinned
  tflite-micro interpreter (crafted biases that land between the float32 and double
  roundings tell them apart);
- the numpy kernels agree with an independent float computation within 1 LSB;
- the C kernels and C prepare helpers give the same bits as the numpy ones;
- unsupported options are rejected with an error naming the op.
"""
from __future__ import annotations

import ctypes
import glob
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import tflm_invoke

import tflm_train
from tflm_train import tflite_io
from tflm_train.engine_numpy import NumpyEngine
from tflm_train.errors import ShapeError, TflmTrainError, UnsupportedOpError
from tflm_train.kernels.conv_2d import Conv2DParams, PerChannelQuant, conv_2d, conv_2d_multiplier
from tflm_train.kernels.depthwise_conv_2d import DepthwiseConv2DParams, depthwise_conv_2d
from tflm_train.kernels.fully_connected import (FullyConnectedParams, fully_connected,
                                                fully_connected_multiplier)
from tflm_train.quant import (compute_padding, multiply_by_quantized_multiplier,
                              quantize_multiplier)

N_INPUTS = 20
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
SAME, VALID = 0, 1


# --------------------------------------------------------------------------- models

def _keras_models():
    """name → (build() -> keras model, per_channel_dense). Built lazily, converted once."""
    import tensorflow as tf

    keras = tf.keras
    L = keras.layers
    bias_init = keras.initializers.RandomNormal(stddev=0.3, seed=1)

    def seq(shape, *layers, batch_size=None):
        def build():
            inp = keras.Input(shape, batch_size=batch_size)
            x = inp
            for layer in layers:
                x = layer(x)
            return keras.Model(inp, x)
        return build

    class DilatedConv(L.Layer):
        """tf.nn.conv2d / DepthwiseConv2dNative with dilations: Keras' own layers lower
        dilation to SPACE_TO_BATCH_ND + BATCH_TO_SPACE_ND, these give a dilated TFLite op."""

        def __init__(self, mult, k, rate, padding, depthwise, relu6, **kw):
            super().__init__(**kw)
            self.mult, self.k, self.rate = mult, k, rate
            self.pad, self.depthwise, self.relu6 = padding, depthwise, relu6

        def build(self, shape):
            cin = shape[-1]
            self.w = self.add_weight(shape=(self.k, self.k, cin, self.mult),
                                     initializer="glorot_uniform")
            n_out = cin * self.mult if self.depthwise else self.mult
            self.b = self.add_weight(shape=(n_out,), initializer=bias_init)

        def call(self, x):
            if self.depthwise:
                y = tf.raw_ops.DepthwiseConv2dNative(
                    input=x, filter=self.w, strides=[1, 1, 1, 1], padding=self.pad,
                    dilations=[1, self.rate, self.rate, 1])
            else:
                y = tf.nn.conv2d(x, self.w, 1, self.pad, dilations=self.rate)
            y = y + self.b
            return tf.nn.relu6(y) if self.relu6 else y

    def conv(*a, **kw):
        kw.setdefault("bias_initializer", bias_init)
        return L.Conv2D(*a, **kw)

    def dw(*a, **kw):
        kw.setdefault("bias_initializer", bias_init)
        return L.DepthwiseConv2D(*a, **kw)

    def dense(*a, **kw):
        kw.setdefault("bias_initializer", bias_init)
        return L.Dense(*a, **kw)

    return {
        "conv_1x1_relu": (seq((5, 5, 4), conv(6, 1, activation="relu")), False),
        "conv_3x3_same_relu6": (seq((8, 8, 3), conv(5, 3, padding="same",
                                                    activation="relu6")), False),
        "conv_3x3_same_s2_odd": (seq((9, 7, 2), conv(4, 3, strides=2, padding="same")), False),
        "conv_5x3_valid_s2_nobias": (seq((11, 9, 2), conv(4, (5, 3), strides=2, padding="valid",
                                                          use_bias=False)), False),
        "conv_3x3_valid_s1": (seq((7, 6, 3), conv(3, 3, padding="valid")), False),
        "conv_dilation2_same_relu6": (seq((9, 9, 2), DilatedConv(3, 3, 2, "SAME", False, True)),
                                      False),
        "conv_dilation2_valid": (seq((9, 8, 2), DilatedConv(4, 3, 2, "VALID", False, False)),
                                 False),
        "conv_groups2": (seq((6, 6, 4), conv(4, 3, groups=2, padding="same")), False),
        "dw_dm1_same_relu6": (seq((8, 8, 4), dw(3, padding="same", activation="relu6")), False),
        "dw_dm2_s2_valid": (seq((9, 9, 3), dw(3, strides=2, depth_multiplier=2,
                                              padding="valid")), False),
        "dw_5x3_s2_same_nobias": (seq((10, 9, 3), dw((5, 3), strides=2, padding="same",
                                                     use_bias=False)), False),
        "dw_dm2_dilation2_same_relu6": (seq((9, 9, 2), DilatedConv(2, 3, 2, "SAME", True, True)),
                                        False),
        "dense_per_tensor_bias_relu": (seq((10,), dense(6, activation="relu")), False),
        "dense_per_tensor_nobias": (seq((10,), dense(6, use_bias=False)), False),
        "dense_per_channel_bias": (seq((10,), dense(6)), True),
        "dense_per_channel_nobias_relu6": (seq((10,), dense(6, use_bias=False,
                                                             activation="relu6")), True),
        "dense_rank3_keep_num_dims": (seq((3, 7), dense(5), batch_size=1), False),
        "dense_rank4_per_channel": (seq((2, 3, 7), dense(5), batch_size=1), True),
    }


def _rewrite(model_bytes: bytes, edit) -> bytes:
    m = tflite_io.read_model(model_bytes)
    edit(m, m.subgraphs[0])
    return tflite_io.write_model(m)


def _drop_bias(keep_slot: bool):
    """Remove the (zero) bias the converter adds: input 2 becomes -1, or is dropped."""
    def edit(m, sg):
        op = sg.operators[0]
        op.inputs = np.array(list(op.inputs[:2]) + ([-1] if keep_slot else []), dtype=np.int32)
    return edit


def _set_activation(act: int):
    def edit(m, sg):
        sg.operators[0].builtinOptions.fusedActivationFunction = act
    return edit


def _flatten_fc_output(m, sg):
    """keep_num_dims=False on a rank-3 input: the output is [batches, units]."""
    op = sg.operators[0]
    op.builtinOptions.keepNumDims = False
    out = sg.tensors[op.outputs[0]]
    out.shape = np.array([int(np.prod(out.shape[:-1])), out.shape[-1]], dtype=np.int32)
    out.shapeSignature = None


# Variants TFLM accepts but the converter does not emit: derived by editing a converted model.
DERIVED = {
    "conv_bias_input_absent": ("conv_5x3_valid_s2_nobias", _drop_bias(keep_slot=True)),
    "dw_two_inputs_no_bias": ("dw_5x3_s2_same_nobias", _drop_bias(keep_slot=False)),
    "conv_relu_n1_to_1": ("conv_3x3_same_s2_odd", _set_activation(RELU_N1_TO_1)),
    "dw_relu": ("dw_dm2_s2_valid", _set_activation(RELU)),
    "dense_relu_n1_to_1": ("dense_per_tensor_nobias", _set_activation(RELU_N1_TO_1)),
    "dense_rank3_flattened": ("dense_rank3_keep_num_dims", _flatten_fc_output),
}

# What each model must contain for its name to be true: (opcode, options subset, extra check).
EXPECT = {
    "conv_1x1_relu": ("CONV_2D", {"fused_activation_function": RELU}, "filter_hw=1x1"),
    "conv_3x3_same_relu6": ("CONV_2D", {"padding": SAME, "stride_w": 1,
                                        "fused_activation_function": RELU6}, "bias"),
    "conv_3x3_same_s2_odd": ("CONV_2D", {"padding": SAME, "stride_w": 2, "stride_h": 2}, ""),
    "conv_5x3_valid_s2_nobias": ("CONV_2D", {"padding": VALID, "stride_w": 2},
                                 "filter_hw=5x3 zero_bias"),
    "conv_3x3_valid_s1": ("CONV_2D", {"padding": VALID, "stride_w": 1}, ""),
    "conv_dilation2_same_relu6": ("CONV_2D", {"padding": SAME, "dilation_w_factor": 2,
                                              "dilation_h_factor": 2,
                                              "fused_activation_function": RELU6}, ""),
    "conv_dilation2_valid": ("CONV_2D", {"padding": VALID, "dilation_w_factor": 2}, ""),
    "conv_groups2": ("CONV_2D", {}, "groups=2"),
    "conv_bias_input_absent": ("CONV_2D", {}, "no_bias"),
    "conv_relu_n1_to_1": ("CONV_2D", {"fused_activation_function": RELU_N1_TO_1}, ""),
    "dw_dm1_same_relu6": ("DEPTHWISE_CONV_2D", {"padding": SAME, "depth_multiplier": 1,
                                                "fused_activation_function": RELU6}, "bias"),
    "dw_dm2_s2_valid": ("DEPTHWISE_CONV_2D", {"padding": VALID, "depth_multiplier": 2,
                                              "stride_w": 2}, ""),
    "dw_5x3_s2_same_nobias": ("DEPTHWISE_CONV_2D", {"padding": SAME, "stride_h": 2},
                              "filter_hw=5x3 zero_bias"),
    "dw_dm2_dilation2_same_relu6": ("DEPTHWISE_CONV_2D", {"depth_multiplier": 2,
                                                          "dilation_w_factor": 2,
                                                          "fused_activation_function": RELU6},
                                    ""),
    "dw_two_inputs_no_bias": ("DEPTHWISE_CONV_2D", {}, "no_bias"),
    "dw_relu": ("DEPTHWISE_CONV_2D", {"fused_activation_function": RELU}, ""),
    "dense_per_tensor_bias_relu": ("FULLY_CONNECTED", {"fused_activation_function": RELU},
                                   "bias per_tensor"),
    "dense_per_tensor_nobias": ("FULLY_CONNECTED", {}, "no_bias per_tensor"),
    "dense_per_channel_bias": ("FULLY_CONNECTED", {}, "bias per_channel"),
    "dense_per_channel_nobias_relu6": ("FULLY_CONNECTED", {"fused_activation_function": RELU6},
                                       "no_bias per_channel"),
    "dense_relu_n1_to_1": ("FULLY_CONNECTED", {"fused_activation_function": RELU_N1_TO_1}, ""),
    "dense_rank3_keep_num_dims": ("FULLY_CONNECTED", {"keep_num_dims": True}, "input_rank=3"),
    "dense_rank4_per_channel": ("FULLY_CONNECTED", {}, "input_rank=4 per_channel"),
    "dense_rank3_flattened": ("FULLY_CONNECTED", {"keep_num_dims": False},
                              "input_rank=3 output_rank=2"),
}
MODEL_NAMES = list(EXPECT)


class _ModelCache:
    """Converts each model on first use, once per test session."""

    def __init__(self):
        self._specs = None
        self._bytes: dict[str, bytes] = {}

    def __getitem__(self, name: str) -> bytes:
        if name not in self._bytes:
            if name in DERIVED:
                base, edit = DERIVED[name]
                self._bytes[name] = _rewrite(self[base], edit)
            else:
                import tensorflow as tf

                from converters.keras import to_int8_tflite

                if self._specs is None:
                    self._specs = _keras_models()
                build, per_channel = self._specs[name]
                tf.keras.utils.set_random_seed(7)
                model = build()
                shape = model.inputs[0].shape[1:]
                rep = np.random.default_rng(3).uniform(-1, 1, (32, *shape)).astype(np.float32)
                self._bytes[name] = to_int8_tflite(model, rep, per_channel_dense=per_channel)
        return self._bytes[name]


@pytest.fixture(scope="session")
def mac_models():
    return _ModelCache()


def _random_inputs(graph, seed: int, n: int = N_INPUTS):
    rng = np.random.default_rng(seed)
    t = graph.input_tensors()[0]
    return [rng.integers(-128, 128, size=t.shape, dtype=np.int8) for _ in range(n)]


# --------------------------------------------------------------------------- bit-exact

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_exercises_its_option(mac_models, name):
    """The converted model really contains the op and option the case is named after."""
    g = tflm_train.load(mac_models[name])
    opcode, options, extra = EXPECT[name]
    assert [op.opcode for op in g.ops] == [opcode]
    op = g.ops[0]
    for k, v in options.items():
        assert op.options.get(k) == v, (k, op.options)
    flt = g.tensors[op.inputs[1]]
    bias_idx = op.inputs[2] if len(op.inputs) > 2 else -1
    for item in extra.split():
        if item.startswith("filter_hw="):
            assert "x".join(map(str, flt.shape[1:3])) == item.split("=")[1]
        elif item == "bias":
            assert bias_idx >= 0 and np.any(g.tensors[bias_idx].data != 0)
        elif item == "zero_bias":
            assert bias_idx >= 0 and not np.any(g.tensors[bias_idx].data)
        elif item == "no_bias":
            assert bias_idx < 0
        elif item == "groups=2":
            assert g.tensors[op.inputs[0]].shape[3] == 2 * flt.shape[3]
        elif item == "per_tensor":
            assert len(flt.quant.scale) == 1
        elif item == "per_channel":
            assert len(flt.quant.scale) == flt.shape[0] > 1
        elif item.startswith("input_rank="):
            assert len(g.tensors[op.inputs[0]].shape) == int(item.split("=")[1])
        elif item.startswith("output_rank="):
            assert len(g.tensors[op.outputs[0]].shape) == int(item.split("=")[1])
        else:
            raise AssertionError(f"unknown check {item}")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_numpy_engine_bit_exact_vs_tflm(mac_models, name):
    b = mac_models[name]
    engine = NumpyEngine(tflm_train.load(b))
    for x in _random_inputs(engine.graph, seed=zlib.crc32(name.encode())):
        ours = engine.invoke([x])[0]
        ref = tflm_invoke(b, [x])[0]
        assert ours.dtype == ref.dtype == np.int8
        assert ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_c_engine_bit_exact_vs_tflm(mac_models, name):
    engine_c = pytest.importorskip("tflm_train.engine_c")
    b = mac_models[name]
    engine = engine_c.CEngine(b)
    for x in _random_inputs(tflm_train.load(b), seed=zlib.crc32(name.encode()) + 1):
        ours = engine.invoke([x])[0]
        ref = tflm_invoke(b, [x])[0]
        np.testing.assert_array_equal(np.asarray(ours).reshape(ref.shape), ref)


# --------------------------------------------------------------------------- float vs double

def _crafted_bias_model(mac_models, name: str, real: float):
    """The model with its output scale changed so the effective multiplier is ~`real`, and
    biases chosen so that, with the input at its zero point (accumulator = bias), the output
    differs between TFLM's float32 product s_in*s_w and the double product. Returns
    (model bytes, input, expected output under the float product, under the double product)."""
    g = tflm_train.load(mac_models[name])
    op = g.ops[0]
    inp, flt, out = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    s_in, s_w = np.float32(inp.scale), np.float32(flt.quant.scale[0])
    s_out = np.float32(float(s_in) * float(s_w) / real)
    m_f, sh_f = quantize_multiplier(float(np.float32(s_in * s_w)) / float(s_out))
    m_d, sh_d = quantize_multiplier(float(s_in) * float(s_w) / float(s_out))
    assert (m_f, sh_f) != (m_d, sh_d)
    # Candidates: accumulators whose real output lies near a rounding tie k + 1/2.
    ties = (np.arange(1, 120) + 0.5) / real
    acc = np.unique((ties[:, None].astype(np.int64) + np.arange(-300, 300)).ravel())
    y_f = multiply_by_quantized_multiplier(acc, m_f, sh_f)
    y_d = multiply_by_quantized_multiplier(acc, m_d, sh_d)
    units = out.shape[-1]
    chosen = acc[y_f != y_d][:units]
    assert len(chosen) == units, "no accumulator separates the two multipliers"

    def edit(m, sg):
        o = sg.operators[0]
        sg.tensors[o.outputs[0]].quantization.scale = np.array([s_out], dtype=np.float32)
        m.buffers[sg.tensors[o.inputs[2]].buffer].data = np.frombuffer(
            chosen.astype(np.int32).tobytes(), dtype=np.uint8).copy()
        if len(flt.quant.scale) > 1:  # same scale on every channel: one multiplier for all
            sg.tensors[o.inputs[1]].quantization.scale = np.full(units, s_w, np.float32)

    b = _rewrite(mac_models[name], edit)
    zp_out = out.zero_point
    x = np.full(inp.shape, inp.zero_point, dtype=np.int8)
    as_out = lambda y: np.clip(y + zp_out, -128, 127).astype(np.int8)  # noqa: E731
    sel = np.isin(acc, chosen)
    return b, x, as_out(y_f[sel]), as_out(y_d[sel])


# The pinned tflite-micro interpreter multiplies the float32 scales in double everywhere,
# including per-tensor FULLY_CONNECTED, where TFLM's kernel_util.cc source reads as a float32
# product (GetQuantizedConvolutionMultipler): these cases would catch either choice.
@pytest.mark.parametrize("name", [
    "dense_per_tensor_bias_relu",  # GetQuantizedConvolutionMultipler
    "dense_per_channel_bias",      # CalculateOpDataFullyConnected per channel
    "conv_3x3_same_s2_odd",        # PopulateConvolutionQuantizationParams
    "dw_dm2_s2_valid",
])
def test_multiplier_product_precision_matches_tflm(mac_models, name):
    b, x, y_float, y_double = _crafted_bias_model(mac_models, name, real=1e-7)
    # Input at its zero point: every output position holds requantize(bias[c]).
    ref = tflm_invoke(b, [x])[0].reshape(-1, y_float.shape[0])[0]
    np.testing.assert_array_equal(ref, y_double)
    assert np.any(ref != y_float)   # the crafted case really separates the two
    ours = NumpyEngine(tflm_train.load(b)).invoke([x])[0].reshape(-1, y_float.shape[0])[0]
    np.testing.assert_array_equal(ours, ref)


# --------------------------------------------------------------------------- float reference

def _float_window_op(xr, wr, stride, dilation, pad, out_hw, depthwise, dm=1):
    """Independent float convolution on real values: xr (H,W,C), conv wr (O,KH,KW,C) or
    depthwise wr (KH,KW,C*dm); taps outside the image contribute nothing."""
    h, w, c = xr.shape
    kh, kw = (wr.shape[1:3] if not depthwise else wr.shape[:2])
    oh, ow = out_hw
    oc = wr.shape[0] if not depthwise else wr.shape[2]
    y = np.zeros((oh, ow, oc))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy = oy * stride[0] - pad[0] + ky * dilation[0]
                    ix = ox * stride[1] - pad[1] + kx * dilation[1]
                    if 0 <= iy < h and 0 <= ix < w:
                        if depthwise:
                            y[oy, ox] += np.repeat(xr[iy, ix], dm) * wr[ky, kx]
                        else:
                            y[oy, ox] += wr[:, ky, kx, :] @ xr[iy, ix]
    return y


def _quantize_real(y, s_out, zp_out, act):
    return np.clip(np.round(y / s_out) + zp_out, act[0], act[1]).astype(np.int64)


@pytest.mark.parametrize("op", ["conv_2d", "depthwise_conv_2d", "fully_connected"])
def test_kernels_match_float_reference(op):
    """Dequantize, compute in float64, requantize: the int8 kernels agree within 1 LSB.
    Exact agreement is not expected: the 31-bit fixed-point multiplier approximates the real
    scale ratio, and TFLite rounds twice (rounding doubling high-mul, then rounding shift),
    which can move a value that lies within ~2^-31 of a .5 tie by one step."""
    rng = np.random.default_rng(11)
    total = exact = 0
    for trial in range(12):
        # Scales are float32 in the model; the reference uses the same values.
        s_in, s_out = (float(np.float32(v)) for v in (rng.uniform(0.01, 0.05),
                                                      rng.uniform(0.05, 0.3)))
        zp_in, zp_out = (int(v) for v in rng.integers(-100, 100, 2))
        act = (-128, 127) if trial % 2 else (zp_out, 127)
        cin, oc = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        if op == "fully_connected":
            per_channel = trial % 3 == 0
            x = rng.integers(-128, 128, (3, cin * 4), dtype=np.int8)
            f = rng.integers(-127, 128, (oc, cin * 4), dtype=np.int8)
            s_w = rng.uniform(0.002, 0.02, oc if per_channel else 1).astype(np.float32)
            s_w_c = s_w if per_channel else np.repeat(s_w, oc)
            bias = rng.integers(-3000, 3000, oc, dtype=np.int32)
            pairs = [fully_connected_multiplier(s_in, s, s_out) for s in s_w]
            q = PerChannelQuant(*(np.array(v, dtype=np.int32) for v in zip(*pairs)))
            ours = fully_connected(FullyConnectedParams(-zp_in, zp_out, int(per_channel), act),
                                   q, x, f, bias)
            xr = (x.astype(np.float64) - zp_in) * s_in
            y = xr @ (f.astype(np.float64) * s_w_c[:, None]).T + bias * s_in * s_w_c
        else:
            h, w = (int(v) for v in rng.integers(3, 9, 2))
            kh, kw = (int(v) for v in rng.integers(1, 4, 2))
            stride = tuple(int(v) for v in rng.integers(1, 3, 2))
            dil = tuple(int(v) for v in rng.integers(1, 3, 2))
            padding = int(trial % 2)
            oh, ph = compute_padding(padding, h, kh, stride[0], dil[0])
            ow, pw = compute_padding(padding, w, kw, stride[1], dil[1])
            x = rng.integers(-128, 128, (1, h, w, cin), dtype=np.int8)
            dm = int(rng.integers(1, 3))
            if op == "depthwise_conv_2d":
                oc = cin * dm
                f = rng.integers(-127, 128, (1, kh, kw, oc), dtype=np.int8)
            else:
                f = rng.integers(-127, 128, (oc, kh, kw, cin), dtype=np.int8)
            s_w = rng.uniform(0.002, 0.02, oc).astype(np.float32)
            bias = rng.integers(-3000, 3000, oc, dtype=np.int32)
            pairs = [conv_2d_multiplier(s_in, s, s_out) for s in s_w]
            q = PerChannelQuant(*(np.array(v, dtype=np.int32) for v in zip(*pairs)))
            xr = (x[0].astype(np.float64) - zp_in) * s_in
            if op == "depthwise_conv_2d":
                p = DepthwiseConv2DParams(-zp_in, zp_out, stride[1], stride[0], dil[1], dil[0],
                                          pw, ph, dm, act)
                ours = depthwise_conv_2d(p, q, x, f, bias, (1, oh, ow, oc))
                wr = f[0].astype(np.float64) * s_w
            else:
                p = Conv2DParams(-zp_in, zp_out, stride[1], stride[0], dil[1], dil[0],
                                 pw, ph, act)
                ours = conv_2d(p, q, x, f, bias, (1, oh, ow, oc))
                wr = f.astype(np.float64) * s_w[:, None, None, None]
            y = _float_window_op(xr, wr, stride, dil, (ph, pw), (oh, ow),
                                 op == "depthwise_conv_2d", dm)[None]
            y = y + bias * s_in * s_w.astype(np.float64)
        ref = _quantize_real(y, s_out, zp_out, act)
        diff = np.abs(ours.astype(np.int64) - ref)
        assert diff.max() <= 1, (op, trial)
        total += diff.size
        exact += int((diff == 0).sum())
    assert exact / total > 0.99, exact / total


# --------------------------------------------------------------------------- C kernels

def _micro_ops_lib():
    libs = sorted(glob.glob(str(Path(tflm_train.__file__).parent / "_micro_ops*.so")))
    if not libs:
        pytest.skip("C library not built (python setup.py build_ext --inplace)")
    lib = ctypes.CDLL(libs[0])
    for sym in ("tt_conv_2d", "tt_depthwise_conv_2d", "tt_fully_connected",
                "tt_conv_2d_multiplier", "tt_fully_connected_multiplier"):
        if not hasattr(lib, sym):
            pytest.skip(f"C library has no {sym}; rebuild it")
    return lib


class _Dims(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in "nhwc"]


class _Act(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class _Quant(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.POINTER(ctypes.c_int32)),
                ("shift", ctypes.POINTER(ctypes.c_int32))]


def _params_struct(params):
    """A ctypes struct with the dataclass's fields in order (the C struct's layout)."""
    names = [k for k in vars(params) if k != "activation"]
    cls = type("Params", (ctypes.Structure,),
               {"_fields_": [(k, ctypes.c_int32) for k in names] + [("activation", _Act)]})
    return cls(*(int(getattr(params, k)) for k in names), _Act(*params.activation))


def _ptr(a, ctype):
    return a.ctypes.data_as(ctypes.POINTER(ctype)) if a is not None else None


def test_c_kernels_match_numpy_kernels():
    """Random shapes, strides, dilations, groups, zero points, clamps: same bits in C."""
    lib = _micro_ops_lib()
    rng = np.random.default_rng(5)
    checked = 0
    for trial in range(240):
        kind = trial % 3
        n = int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        sh, sw, dh, dw = (int(v) for v in rng.integers(1, 3, 4))
        padding = int(rng.integers(0, 2))
        oh, ph = compute_padding(padding, h, kh, sh, dh)
        ow, pw = compute_padding(padding, w, kw, sw, dw)
        if kind < 2 and (oh <= 0 or ow <= 0):
            continue  # VALID window larger than the input
        cin = int(rng.integers(1, 6))
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
        zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
        if kind == 0:
            groups = int(rng.integers(1, 3))
            x = rng.integers(-128, 128, (n, h, w, cin * groups), dtype=np.int8)
            oc = groups * int(rng.integers(1, 4))
            f = rng.integers(-127, 128, (oc, kh, kw, cin), dtype=np.int8)
        elif kind == 1:
            x = rng.integers(-128, 128, (n, h, w, cin), dtype=np.int8)
            dm = int(rng.integers(1, 3))
            oc = cin * dm
            f = rng.integers(-127, 128, (1, kh, kw, oc), dtype=np.int8)
        else:
            x = rng.integers(-128, 128, (n, cin), dtype=np.int8)
            oc = int(rng.integers(1, 7))
            f = rng.integers(-127, 128, (oc, cin), dtype=np.int8)
        bias = rng.integers(-5000, 5000, oc, dtype=np.int32) if rng.random() < 0.7 else None
        pairs = [conv_2d_multiplier(rng.uniform(.001, .1), rng.uniform(.001, .05),
                                    rng.uniform(.01, .2)) for _ in range(oc)]
        q = PerChannelQuant(*(np.array(v, dtype=np.int32) for v in zip(*pairs)))
        cq = _Quant(_ptr(q.multiplier, ctypes.c_int32), _ptr(q.shift, ctypes.c_int32))
        args = [ctypes.byref(cq)]
        if kind == 0:
            p = Conv2DParams(-zi, zo, sw, sh, dw, dh, pw, ph, (lo, hi))
            ref = conv_2d(p, q, x, f, bias, (n, oh, ow, oc))
            fn, dims = lib.tt_conv_2d, (x.shape, f.shape, ref.shape)
        elif kind == 1:
            p = DepthwiseConv2DParams(-zi, zo, sw, sh, dw, dh, pw, ph, dm, (lo, hi))
            ref = depthwise_conv_2d(p, q, x, f, bias, (n, oh, ow, oc))
            fn, dims = lib.tt_depthwise_conv_2d, (x.shape, f.shape, ref.shape)
        else:
            p = FullyConnectedParams(-zi, zo, int(rng.integers(0, 2)), (lo, hi))
            ref = fully_connected(p, q, x, f, bias)
            fn, dims = lib.tt_fully_connected, ((n, 1, 1, cin), (oc, 1, 1, cin), (n, 1, 1, oc))
        out = np.zeros_like(ref)
        status = fn(ctypes.byref(_params_struct(p)), *args,
                    ctypes.byref(_Dims(*dims[0])), _ptr(x, ctypes.c_int8),
                    ctypes.byref(_Dims(*dims[1])), _ptr(f, ctypes.c_int8),
                    _ptr(bias, ctypes.c_int32), ctypes.byref(_Dims(*dims[2])),
                    _ptr(out, ctypes.c_int8))
        assert status == 0
        np.testing.assert_array_equal(out, ref, err_msg=f"kind {kind} {p}")
        checked += 1
    assert checked > 150


def test_c_prepare_helpers_match_python():
    """tt_conv_2d_multiplier / tt_depthwise_conv_2d_multiplier / tt_fully_connected_multiplier
    derive the same constants as the Python glue, scales spanning several decades."""
    lib = _micro_ops_lib()
    f32, i32p = ctypes.c_float, ctypes.POINTER(ctypes.c_int32)
    lib.tt_conv_2d_multiplier.argtypes = [f32, f32, f32, i32p, i32p]
    lib.tt_depthwise_conv_2d_multiplier.argtypes = [f32, f32, f32, i32p, i32p]
    lib.tt_fully_connected_multiplier.argtypes = [f32, f32, f32, i32p, i32p]
    rng = np.random.default_rng(9)
    m, s = ctypes.c_int32(), ctypes.c_int32()
    for _ in range(3000):
        a, b, c = (np.float32(v) for v in
                   rng.uniform(0.1, 1, 3) * 10.0 ** rng.integers(-5, 2, 3))
        lib.tt_conv_2d_multiplier(a, b, c, ctypes.byref(m), ctypes.byref(s))
        assert (m.value, s.value) == conv_2d_multiplier(a, b, c)
        lib.tt_depthwise_conv_2d_multiplier(a, b, c, ctypes.byref(m), ctypes.byref(s))
        assert (m.value, s.value) == conv_2d_multiplier(a, b, c)
        lib.tt_fully_connected_multiplier(a, b, c, ctypes.byref(m), ctypes.byref(s))
        assert (m.value, s.value) == fully_connected_multiplier(a, b, c)


# --------------------------------------------------------------------------- rejection

def _load_edited(mac_models, name, edit_graph):
    g = tflm_train.load(mac_models[name])
    edit_graph(g)
    return g


@pytest.mark.parametrize("name,edit,error,words", [
    ("conv_3x3_same_relu6",
     lambda g: g.ops[0].options.update(fused_activation_function=4),
     UnsupportedOpError, ["op 0 (CONV_2D)", "fused activation 4", "RELU6"]),
    ("dw_dm1_same_relu6",
     lambda g: setattr(g.tensors[g.ops[0].inputs[1]].quant, "zero_point",
                       np.full(len(g.tensors[g.ops[0].inputs[1]].quant.scale), 3)),
     UnsupportedOpError, ["op 0 (DEPTHWISE_CONV_2D)", "zero point"]),
    ("dw_dm2_s2_valid",
     lambda g: g.ops[0].options.update(depth_multiplier=1),
     ShapeError, ["op 0 (DEPTHWISE_CONV_2D)", "depth_multiplier 1"]),
    ("dense_per_tensor_nobias",
     lambda g: g.ops[0].options.update(weights_format=1),
     UnsupportedOpError, ["op 0 (FULLY_CONNECTED)", "weights_format"]),
    ("conv_1x1_relu",
     lambda g: g.ops[0].options.update(padding=2),
     UnsupportedOpError, ["op 0 (CONV_2D)", "padding 2"]),
    ("conv_3x3_same_s2_odd",   # s_in * s_w / s_out >= 2^30: the left shift would overflow
     lambda g: setattr(g.tensors[g.ops[0].outputs[0]].quant, "scale",
                       np.array([1e-30], np.float32)),
     UnsupportedOpError, ["op 0 (CONV_2D)", "out of range"]),
    ("dense_per_channel_bias",
     lambda g: setattr(g.tensors[g.ops[0].inputs[0]].quant, "scale",
                       np.array([np.nan], np.float32)),
     UnsupportedOpError, ["op 0 (FULLY_CONNECTED)", "scale"]),
])
def test_numpy_engine_rejects_unsupported(mac_models, name, edit, error, words):
    g = _load_edited(mac_models, name, edit)
    with pytest.raises(error) as info:
        NumpyEngine(g)
    for word in words:
        assert word in str(info.value)


def _set_output_scale(scale: float):
    def edit(m, sg):
        sg.tensors[sg.operators[0].outputs[0]].quantization.scale = np.array([scale], np.float32)
    return edit


@pytest.mark.parametrize("name,edit,words", [
    ("conv_3x3_same_relu6", _set_activation(4), ["CONV_2D", "activation"]),   # TANH
    ("conv_3x3_same_s2_odd", _set_output_scale(1e-30), ["CONV_2D", "out of range"]),
    ("dw_dm2_s2_valid", _set_output_scale(float("nan")), ["DEPTHWISE_CONV_2D", "scale"]),
    ("dense_per_tensor_nobias", _set_output_scale(0.0), ["FULLY_CONNECTED", "scale"]),
])
def test_c_engine_rejects_unsupported(mac_models, name, edit, words):
    engine_c = pytest.importorskip("tflm_train.engine_c")
    with pytest.raises(TflmTrainError) as info:
        engine_c.CEngine(_rewrite(mac_models[name], edit))
    for word in words:
        assert word in str(info.value)
