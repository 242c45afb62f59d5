"""Partially trainable weights: the trainable slice in SRAM, the frozen rest in flash.

Properties protected:
- A layer trained on a ratio < 1 of its input channels has a variable holding exactly
  W[..., :k] (k = the trainable channels, the first ones) and a constant holding W[..., k:];
  its forward op is the split-filter form (TT_CONV_2D & co) and its gradient op reads both.
- The split changes no forward bit: the converted model's logits equal the original model's in
  the tflite-micro interpreter, and the split kernels equal the whole-filter kernels in C.
- numpy and C train it identically; the export joins the trained slice and the frozen rest
  into a plain int8 model that tflite-micro (and LiteRT) runs with our inference's logits.
- memory_report's parameters count only the slice: the exact bytes of the variables' shapes.
- A split whose parts disagree is rejected by both engines with a clear error.
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from conftest import shared_model, tflm_invoke

import tflm_train as tt
from tflm_train import ir, tflite_io
from tflm_train.memory import memory_report
from tflm_train.schemes import parse_spec, resolve, trainable_layers

# layer 0 conv 4→8 (k=1), 1 depthwise 8→16 with depth multiplier 2 (4 inputs: k=8 filter
# channels), 2 pointwise 16→12 (k=2), 3 fully connected 300→16 (k=75), 4 the classifier (whole)
KERAS_SPEC = "sparse:bias=4,0=1/4,1=1/2,2=1/8,3=1/4"
RESNET8 = "mlcommons/resnet8_cifar10_int8.tflite"
RESNET8_SPEC = "sparse:bias=5,7=1/2,8=1/4"
STEPS = 12


@pytest.fixture(scope="module")
def keras_model() -> bytes:
    import keras
    from keras import layers

    from tflm_train.converters.keras import to_int8_tflite

    keras.utils.set_random_seed(3)
    inp = keras.Input((10, 10, 4), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6")(x)
    x = layers.Conv2D(12, 1, activation="relu")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Reshape((5 * 5 * 12,))(x)
    x = layers.Dense(16, activation="relu")(x)
    out = layers.Dense(4)(x)
    rng = np.random.default_rng(0)
    return to_int8_tflite(keras.Model(inp, out),
                          rng.uniform(0, 1, (32, 10, 10, 4)).astype(np.float32))


def _updates(model: bytes, spec: str):
    """The resolved scheme on the original graph, with each layer's trainable channels k
    (along the weight's last axis) and whether it is split."""
    g = ir.load(model)
    out = []
    for u in resolve(parse_spec(spec), g).layers:
        L = u.layer
        m = int(g.ops[L.op_index].options.get("depth_multiplier", 1)) if L.is_depthwise else 1
        k = u.ic_count * m if u.update_weights else 0
        out.append((u, k, 0 < k < L.weight_shape[-1]))
    return g, out


def _inputs(trainer, n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n,) + trainer.image.shape[1:], dtype=np.int8)


def _logits_model(model: bytes) -> bytes:
    """The original model without a trailing SOFTMAX: the logits, as tflite-micro computes
    them (the training graph drops that SOFTMAX)."""
    m = tflite_io.read_model(model)
    sg = m.subgraphs[0]
    if tflite_io.opcode_name(m, sg.operators[-1].opcodeIndex) == "SOFTMAX":
        sg.outputs = np.array([sg.operators[-1].inputs[0]], dtype=np.int32)
        sg.operators = sg.operators[:-1]
    return tflite_io.write_model(m)


def _expected_parameter_bytes(updates) -> tuple[int, int]:
    """(SRAM parameter bytes with split weights, the same with whole weights) from shapes."""
    split = whole = 0
    for u, k, _ in updates:
        shape = u.layer.weight_shape
        bias = 4 * u.layer.out_channels if u.update_bias else 0
        rows = int(np.prod(shape[:-1]))
        split += rows * k + bias
        whole += (rows * shape[-1] if k else 0) + bias
    return split, whole


# ------------------------------------------------------------------------------- the layout

def test_partial_weights_are_a_variable_slice_and_a_constant_rest(keras_model):
    g0, updates = _updates(keras_model, KERAS_SPEC)
    assert [s for _, _, s in updates] == [True, True, True, True, False]
    tm = tt.convert(keras_model, update=KERAS_SPEC)
    g = tm.graph
    layers = trainable_layers(g)
    assert len(layers) == len(updates)
    grads = {op.inputs[4]: op for op in g.ops if op.opcode.endswith("CONV_2D_GRAD")
             or op.opcode.endswith("FULLY_CONNECTED_GRAD")}
    for (u, k, split), L in zip(updates, layers):
        w0 = g0.tensors[u.layer.weight].data
        assert L.weight_shape == w0.shape and L.opcode == u.layer.opcode
        slice_t = g.tensors[L.weight]
        assert slice_t.is_variable
        if not split:
            assert L.frozen_weight is None and g.ops[L.op_index].opcode == u.layer.opcode
            np.testing.assert_array_equal(slice_t.data, w0)
            continue
        rest_t = g.tensors[L.frozen_weight]
        assert g.ops[L.op_index].opcode == f"CUSTOM:TT_{u.layer.opcode}"
        assert slice_t.shape == w0.shape[:-1] + (k,), (L.describe(), slice_t.shape)
        assert rest_t.is_constant and rest_t.shape == w0.shape[:-1] + (w0.shape[-1] - k,)
        np.testing.assert_array_equal(slice_t.data, w0[..., :k])
        np.testing.assert_array_equal(rest_t.data, w0[..., k:])
        # the gradient op updates the slice and reads the rest for the input gradient
        grad = grads[L.weight]
        assert len(grad.inputs) == 16 and grad.inputs[15] == L.frozen_weight
    # the depthwise layer: per-channel scales split along with the channels
    dw = next(L for L in layers if L.opcode == "DEPTHWISE_CONV_2D")
    s, r = g.tensors[dw.weight].quant, g.tensors[dw.frozen_weight].quant
    w0q = g0.tensors[updates[dw.index][0].layer.weight].quant
    np.testing.assert_array_equal(np.concatenate((s.scale, r.scale)), w0q.scale)


def test_memory_report_counts_only_the_slice(keras_model):
    _, updates = _updates(keras_model, KERAS_SPEC)
    tm = tt.convert(keras_model, update=KERAS_SPEC)
    rep = memory_report(tm, engine_bytes=None)
    split, whole = _expected_parameter_bytes(updates)
    assert rep.parameters == split
    assert whole - split == sum(int(np.prod(u.layer.weight_shape[:-1]))
                                * (u.layer.weight_shape[-1] - k) for u, k, s in updates if s)
    assert rep.parameters < whole
    by_layer = {d["layer"]: d["bytes"] for d in rep.by_layer}
    for u, k, _ in updates:
        rows = int(np.prod(u.layer.weight_shape[:-1]))
        assert by_layer[u.layer.index] == rows * k + 4 * u.layer.out_channels * u.update_bias


# ------------------------------------------------------------------ forward, training, export

def test_forward_equals_the_original_in_tflm(keras_model):
    tm = tt.convert(keras_model, update=KERAS_SPEC)
    a, b = tt.Trainer(tm, backend="numpy"), tt.Trainer(tm, backend="c")
    for x in _inputs(a, 4, seed=1):
        [ref] = tflm_invoke(keras_model, [x[None]])
        np.testing.assert_array_equal(a.logits(x), ref.reshape(-1))
        np.testing.assert_array_equal(b.logits(x), ref.reshape(-1))


def _train_both(tm, steps, seed, classes):
    a, b = tt.Trainer(tm, backend="numpy"), tt.Trainer(tm, backend="c")
    xs = _inputs(a, steps, seed)
    ys = np.random.default_rng(seed + 1).integers(0, classes, steps)
    for i, (x, y) in enumerate(zip(xs, ys)):
        la, lb = a.train_step(x, int(y)), b.train_step(x, int(y))
        assert la == lb, f"step {i}: loss {la} (numpy) != {lb} (C)"
    pa, pb = a.parameters(), b.parameters()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    return a, b


def _check_export(tm, trainer, original: bytes, seed):
    """The export is the builtin model with each weight = trained slice ++ frozen rest, and
    tflite-micro runs it with the trainer's logits."""
    data = trainer.export()
    ge, g0 = ir.load(data), ir.load(original)
    assert not [op.opcode for op in ge.ops if op.opcode.startswith("CUSTOM:")]
    params = trainer.parameters()
    exported = {t.name: t.data for t in ge.tensors if t.data is not None}
    for L in trainable_layers(tm.graph):
        if L.frozen_weight is None:
            continue
        s, r = tm.graph.tensors[L.weight], tm.graph.tensors[L.frozen_weight]
        w = exported[r.name]
        assert w.shape == L.weight_shape
        np.testing.assert_array_equal(w[..., :s.shape[-1]], params[s.name])
        np.testing.assert_array_equal(w[..., s.shape[-1]:], r.data)
        assert r.name in {t.name for t in g0.tensors}  # the weight keeps its name
    for x in _inputs(trainer, 3, seed):
        [ref] = tflm_invoke(data, [x[None]])
        np.testing.assert_array_equal(ref.reshape(-1), trainer.logits(x))
    return data


def test_keras_numpy_equals_c_and_export_runs_in_tflm_and_litert(keras_model, tmp_path):
    tm = tt.convert(keras_model, update=KERAS_SPEC, optimizer=tt.SGD(0.05))
    initial = tt.Trainer(tm).parameters()
    a, b = _train_both(tm, STEPS, seed=2, classes=4)
    changed = {k for k, v in a.parameters().items() if not np.array_equal(v, initial[k])}
    slices = {tm.graph.tensors[L.weight].name for L in trainable_layers(tm.graph)
              if L.frozen_weight is not None}
    assert slices <= changed, slices - changed
    data = _check_export(tm, b, keras_model, seed=3)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # LiteRT with its reference kernels: the same arithmetic as TFLM. (Its default adds the
    # XNNPACK delegate (without it, the builtin kernels match too), whose int8 requantization
    # is not TFLite's reference rounding: one LSB apart here
    # and there, measured on this very model: [116, -7, -90, -128] vs [116, -7, -89, -128].)
    lite = Interpreter(model_content=data,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    lite.allocate_tensors()
    for x in _inputs(b, 2, seed=4):
        lite.set_tensor(lite.get_input_details()[0]["index"], x[None])
        lite.invoke()
        np.testing.assert_array_equal(
            lite.get_tensor(lite.get_output_details()[0]["index"]).reshape(-1), b.logits(x))
    # a saved *.train.tflite resumes from the trained slice
    b.save(tmp_path / "ckpt.train.tflite")
    c = tt.Trainer(tmp_path / "ckpt.train.tflite", backend="c")
    x = _inputs(b, 1, seed=5)[0]
    np.testing.assert_array_equal(c.logits(x), b.logits(x))
    assert c.train_step(x, 1) == b.train_step(x, 1)
    for k, v in b.parameters().items():
        np.testing.assert_array_equal(c.parameters()[k], v, err_msg=k)


def test_momentum_velocity_is_the_slice_and_numpy_equals_c(keras_model):
    tm = tt.convert(keras_model, update=KERAS_SPEC, optimizer=tt.SGD(0.05, momentum=0.9))
    g = tm.graph
    for L in trainable_layers(g):
        if L.frozen_weight is not None:
            w = g.tensors[L.weight]
            assert g.tensors[tm.tensor_index(f"velocity/{w.name.removesuffix('/trainable')}")
                             ].shape == w.shape
    a, _ = _train_both(tm, 6, seed=9, classes=4)
    assert any(np.any(v) for k, v in a.parameters().items() if k.startswith("velocity/"))


def test_resnet8_partial_channels():
    path = shared_model(RESNET8)
    original = path.read_bytes()
    _, updates = _updates(original, RESNET8_SPEC)
    tm = tt.convert(path, update=RESNET8_SPEC, optimizer=tt.SGD(0.02))
    assert sum(s for _, _, s in updates) == 2
    assert memory_report(tm, engine_bytes=None).parameters == _expected_parameter_bytes(updates)[0]
    logits_model = _logits_model(original)
    a = tt.Trainer(tm, backend="c")
    for x in _inputs(a, 2, seed=6):  # before training: the original model's logits
        [ref] = tflm_invoke(logits_model, [x[None]])
        np.testing.assert_array_equal(a.logits(x), ref.reshape(-1))
    _, b = _train_both(tm, 4, seed=7, classes=10)
    _check_export(tm, b, original, seed=8)


# ------------------------------------------------------------------------ bad split models

def test_split_parts_that_disagree_are_rejected(keras_model):
    tm = tt.convert(keras_model, update=KERAS_SPEC)
    conv = next(L for L in trainable_layers(tm.graph)
                if L.opcode == "CONV_2D" and L.frozen_weight is not None)
    model = tflite_io.read_model(tm.bytes)
    q = model.subgraphs[0].tensors[conv.frozen_weight].quantization
    q.scale = np.asarray(q.scale) * 2  # the rest's scales differ from the slice's
    bad = tt.TrainableModel(model)
    with pytest.raises(tt.TflmTrainError, match="quantized alike"):
        tt.Trainer(bad, backend="numpy")
    with pytest.raises(tt.TflmTrainError, match="TT_CONV_2D.*same scales"):
        tt.Trainer(bad, backend="c")


# ------------------------------------------------------------------------- the split kernels

class _SplitFilter(ctypes.Structure):
    _fields_ = [("slice", ctypes.POINTER(ctypes.c_int8)), ("rest", ctypes.POINTER(ctypes.c_int8)),
                ("split", ctypes.c_int32)]


def test_c_split_kernels_equal_the_whole_filter_kernels(rng):
    """tt_*_split (forward) and tt_*_backward_input_split, on random shapes and split points
    (across the C kernels' 4- and 16-channel blocks), equal the numpy kernels on the joined
    filter, bit for bit."""
    import _backward_mac_ctypes as cb

    from tflm_train.kernels.conv_2d import Conv2DParams, PerChannelQuant, conv_2d
    from tflm_train.kernels.conv_2d_backward import (conv_2d_backward_input,
                                                     conv_2d_backward_input_prepare)
    from tflm_train.kernels.depthwise_conv_2d import DepthwiseConv2DParams, depthwise_conv_2d
    from tflm_train.kernels.depthwise_conv_2d_backward import (
        depthwise_conv_2d_backward_input, depthwise_conv_2d_backward_input_prepare)
    from tflm_train.kernels.fully_connected import FullyConnectedParams, fully_connected
    from tflm_train.kernels.fully_connected_backward import (
        fully_connected_backward_input, fully_connected_backward_input_prepare)

    lib = cb.load_lib()
    i8 = ctypes.c_int8
    for trial in range(60):
        kind = ("conv_2d", "depthwise_conv_2d", "fully_connected")[trial % 3]
        n, h, w = 1, int(rng.integers(2, 7)), int(rng.integers(2, 7))
        cin = int(rng.integers(2, 40))
        zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
        if kind == "conv_2d":
            oc, kh, kw = int(rng.integers(1, 11)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
            f = rng.integers(-127, 128, (oc, kh, kw, cin), dtype=np.int8)
            x = rng.integers(-128, 128, (n, h, w, cin), dtype=np.int8)
            p = Conv2DParams(-zi, zo, 1, 1, 1, 1, (kw - 1) // 2, (kh - 1) // 2, (-128, 127))
            out_shape = (n, h, w, oc)
        elif kind == "depthwise_conv_2d":
            dm = int(rng.integers(1, 3))
            oc, kh, kw = cin * dm, 3, 3
            f = rng.integers(-127, 128, (1, kh, kw, oc), dtype=np.int8)
            x = rng.integers(-128, 128, (n, h, w, cin), dtype=np.int8)
            p = DepthwiseConv2DParams(-zi, zo, 1, 1, 1, 1, 1, 1, dm, (-128, 127))
            out_shape = (n, h, w, oc)
        else:
            oc = int(rng.integers(1, 9))
            f = rng.integers(-127, 128, (oc, cin), dtype=np.int8)
            x = rng.integers(-128, 128, (n, cin), dtype=np.int8)
            p = FullyConnectedParams(-zi, zo, 1, (-128, 127))
            out_shape = (n, oc)
        depth = f.shape[-1]
        k = int(rng.integers(1, depth))
        fs, fr = np.ascontiguousarray(f[..., :k]), np.ascontiguousarray(f[..., k:])
        filt = _SplitFilter(cb.ptr(fs, i8), cb.ptr(fr, i8), k)
        fdims = cb.dims(f.shape if kind != "fully_connected" else (oc, depth))
        bias = rng.integers(-5000, 5000, oc, dtype=np.int32)
        q = PerChannelQuant(np.full(oc, 1 << 30, np.int32),
                            rng.integers(-9, -5, oc, dtype=np.int32))
        cq = cb.PerChannel(cb.ptr(q.multiplier, cb.C_I32), cb.ptr(q.shift, cb.C_I32))
        ref = (conv_2d(p, q, x, f, bias, out_shape) if kind == "conv_2d"
               else depthwise_conv_2d(p, q, x, f, bias, out_shape)
               if kind == "depthwise_conv_2d" else fully_connected(p, q, x, f, bias))
        y = np.zeros(out_shape, np.int8)
        st = getattr(lib, f"tt_{kind}_split")(
            ctypes.byref(cb.params_struct(p)), ctypes.byref(cq), ctypes.byref(cb.dims(x.shape)),
            cb.ptr(x, i8), ctypes.byref(fdims), ctypes.byref(filt), cb.ptr(bias, cb.C_I32),
            ctypes.byref(cb.dims(out_shape)), cb.ptr(y, i8))
        assert st == 0
        np.testing.assert_array_equal(y, ref, err_msg=f"{kind} forward, split {k}/{depth}")
        # input gradient from the whole filter
        grad = rng.integers(-128, 128, out_shape, dtype=np.int8)
        scales = rng.uniform(0.001, 0.02, oc)
        bq = (conv_2d_backward_input_prepare(scales, f.shape) if kind == "conv_2d" else
              depthwise_conv_2d_backward_input_prepare(scales, f.shape, p.depth_multiplier)
              if kind == "depthwise_conv_2d" else
              fully_connected_backward_input_prepare(scales, f.shape))
        gx_ref, e_ref = (conv_2d_backward_input(p, bq, grad, -7, f, x.shape)
                         if kind == "conv_2d" else
                         depthwise_conv_2d_backward_input(p, bq, grad, -7, f, x.shape)
                         if kind == "depthwise_conv_2d" else
                         fully_connected_backward_input(p, bq, grad, -7, f))
        r = np.ascontiguousarray(bq.r)
        cbq = cb.CBackwardInputQuant(cb.ptr(r, cb.C_I32), bq.s_e, bq.p)
        scratch = np.zeros(x.size, np.int32)
        gx, e = np.zeros(x.shape, np.int8), cb.C_I32()
        st = getattr(lib, f"tt_{kind}_backward_input_split")(
            ctypes.byref(cb.params_struct(p)), ctypes.byref(cbq), ctypes.byref(cb.dims(grad.shape)),
            cb.ptr(grad, i8), -7, ctypes.byref(fdims), ctypes.byref(filt),
            ctypes.byref(cb.dims(x.shape)), cb.ptr(scratch, cb.C_I32), cb.ptr(gx, i8),
            ctypes.byref(e))
        assert st == 0
        assert e.value == e_ref
        np.testing.assert_array_equal(gx, gx_ref.reshape(x.shape),
                                      err_msg=f"{kind} input gradient, split {k}/{depth}")
