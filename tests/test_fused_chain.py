"""TT_FUSED_CHAIN: frozen convolution chains run row by row through line buffers.

Properties: a fused model's logits equal the tflite-micro interpreter's on the original model
(bit-exact) in both engines; training steps are identical with and without fusion; the C
engine runs the in-place plan (the output over the consumed input, the image included) with
dead memory poisoned and still gives the same bits; the forward peak drops to the input image
plus line buffers; export restores the builtin ops byte for byte; a malformed fused op is
rejected with a message naming it.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_model, tflm_invoke
from flatbuffers import flexbuffers

import tflm_train as tt
from tflm_train import ir, tflite_io
from tflm_train.errors import TflmTrainError
from tflm_train.firmware import step_macs
from tflm_train.fusion import plan_chains
from tflm_train.kernels.fused_chain import fused_chain_in_place, fused_chain_scratch_size
from tflm_train.ops.fused_chain import FusedChain
from tflm_train.memory import memory_report
from tflm_train.planner import check_no_overlap, plan
from tflm_train.summary import op_macs

engine_c = pytest.importorskip("tflm_train.engine_c")


def _keras_model(variant: str, seed: int = 0):
    """A MobileNet-like stem and blocks; variants cover kernel sizes, strides, padding and
    depth multipliers. (The converter lowers dilated depthwise convolutions to
    SPACE_TO_BATCH_ND, which is not fused: dilated stages are not exercised here.)"""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    pad = "valid" if variant == "valid" else "same"
    k1, k2 = (5, 7) if variant == "wide" else (3, 5)
    dm = 2 if variant == "multiplier" else 1
    x = inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, 3, strides=2, padding=pad, activation="relu6")(x)
    x = layers.DepthwiseConv2D(k1, padding=pad, depth_multiplier=dm, activation="relu6")(x)
    x = layers.Conv2D(8, 1)(x)
    x = layers.Conv2D(24, 1, activation="relu6")(x)
    x = layers.DepthwiseConv2D(k2, strides=2, padding=pad, activation="relu")(x)
    x = layers.Conv2D(12, 1)(x)
    y = layers.Conv2D(36, 1, activation="relu6")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = layers.Conv2D(12, 1)(y)
    x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(10)(x)
    return keras.Model(inp, out)


_MODELS: dict = {}


def _int8(variant: str) -> bytes:
    if variant not in _MODELS:
        from tflm_train.converters.keras import to_int8_tflite

        rep = np.random.default_rng(1).uniform(-1, 1, (32, 32, 32, 3)).astype(np.float32)
        _MODELS[variant] = to_int8_tflite(_keras_model(variant), rep)
    return _MODELS[variant]


VARIANTS = ["same", "valid", "wide", "multiplier"]


def _fused_ops(tm) -> list:
    return [op for op in tm.graph.ops if op.opcode == "CUSTOM:TT_FUSED_CHAIN"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_logits_equal_tflm_on_the_original_model(variant, rng):
    src = _int8(variant)
    tm = tt.convert(src, update="classifier")
    assert _fused_ops(tm), "the stem chain should be fused"
    g = ir.load(src)
    eng = engine_c.CEngine(tm.bytes, poison=True)
    tn = tt.Trainer(tm, "numpy")
    for _ in range(5):
        x = rng.integers(-128, 128, size=g.tensors[g.inputs[0]].shape, dtype=np.int8)
        ref = tflm_invoke(src, [x])[0]
        assert np.array_equal(tn.logits(x).reshape(ref.shape), ref)
        logits = eng.invoke([x, np.array([-1], np.int32)])[0]
        assert np.array_equal(logits.reshape(ref.shape), ref)


@pytest.mark.parametrize("variant", ["same", "multiplier"])
def test_training_is_identical_with_and_without_fusion(variant, rng):
    src = _int8(variant)
    fused = tt.convert(src, update="last-2", num_classes=4)
    plain = tt.convert(src, update="last-2", num_classes=4, fuse=False)
    assert _fused_ops(fused) and not _fused_ops(plain)
    runs = [tt.Trainer(fused, "c"), tt.Trainer(plain, "c"), tt.Trainer(fused, "numpy")]
    shape = ir.load(src).tensors[0].shape
    for step in range(6):
        x = rng.integers(-128, 128, size=(1,) + tuple(shape[1:]), dtype=np.int8)
        losses = [r.train_step(x, step % 4) for r in runs]
        assert losses[0] == losses[1] == losses[2]
    exports = [r.export() for r in runs]
    assert exports[0] == exports[1] == exports[2]
    # the chain's MACs are counted (Cortex-M "instructions per MAC" divides by them)
    macs = step_macs(fused.graph)
    assert macs == step_macs(plain.graph)
    assert sum(op_macs(fused.graph, op) for op in _fused_ops(fused)) > 0
    # the export is a plain model: builtin ops only, run by TFLM like ours
    g = ir.load(exports[0])
    assert not any(op.opcode.startswith("CUSTOM") for op in g.ops)


def test_fusion_lowers_the_peak_and_streams_in_place():
    src = _int8("same")
    fused = tt.convert(src, update="classifier")
    plain = tt.convert(src, update="classifier", fuse=False)
    p = plan(fused.graph)
    check_no_overlap(p)
    stem = _fused_ops(fused)[0]
    x, y = stem.inputs[0], stem.outputs[0]
    assert x == fused.graph.inputs[0]          # the image itself is consumed...
    assert p.offsets[x] == p.offsets[y]        # ...and overwritten by the stem's output
    assert memory_report(fused, engine_bytes=None).arena < \
        memory_report(plain, engine_bytes=None).arena
    # the C engine uses the very plan (in place included)
    eng = engine_c.CEngine(fused.bytes)
    assert eng.tensor_offset(x) == eng.tensor_offset(y) == p.offsets[x]


def test_scratch_and_in_place_rule():
    """The scratch is the line buffers; in place holds when the output never overtakes the
    input rows the schedule still reads."""
    src = _int8("same")
    tm = tt.convert(src, update="classifier")
    op = _fused_ops(tm)[0]
    k = FusedChain(tm.graph, op)
    rows = [s.window for s in k.stages[1:]]
    sizes = [s.out_shape[1] * s.out_shape[2] for s in k.stages]
    expect = sum(-(-r * b // 4) * 4 for r, b in zip(rows, sizes[:-1]))
    assert k.scratch_bytes == fused_chain_scratch_size(k.stages) == expect
    assert tm.graph.tensors[op.outputs[1]].nbytes == expect
    x_shape = tm.graph.tensors[op.inputs[0]].shape
    assert fused_chain_in_place(k.stages, x_shape)
    # an expanding single stage (the block's pointwise 8 → 24 at 16x16) cannot run in place:
    # its first output row is wider than the input row it may overwrite
    block = FusedChain(tm.graph, _fused_ops(tm)[1])
    expand = block.stages[0]
    assert expand.out_shape == (16, 16, 24)
    assert not fused_chain_in_place([expand], (1, 16, 16, 8))
    assert fused_chain_in_place(block.stages, (1, 16, 16, 8))   # with its stride-2 depthwise


def test_chains_never_include_trained_or_saved_tensors():
    src = _int8("same")
    tm = tt.convert(src, update="full")
    # everything trains: nothing may be fused
    assert not _fused_ops(tm)
    tm = tt.convert(src, update="last-2")
    for op in _fused_ops(tm):
        for t in op.inputs[1:]:
            if t >= 0:
                assert tm.graph.tensors[t].is_constant


def _with_fused_option(tm, key, value) -> bytes:
    model = tflite_io.read_model(tm.bytes)
    sg = model.subgraphs[0]
    for op in sg.operators:
        if tflite_io.opcode_name(model, op.opcodeIndex) == "CUSTOM:TT_FUSED_CHAIN":
            o = flexbuffers.Loads(bytes(op.customOptions))
            o[key] = value
            op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(o)), dtype=np.uint8)
            break
    return tflite_io.write_model(model)


@pytest.mark.parametrize("key,value,words", [
    ("stages", 9, "stages"),
    ("s0_stride_h", 0, "strides"),
    ("s1_kind", 7, "kind"),
    ("s0_c", 5, "filter"),
])
def test_malformed_fused_op_is_rejected_by_both_engines(key, value, words):
    tm = tt.convert(_int8("same"), update="classifier")
    bad = _with_fused_option(tm, key, value)
    with pytest.raises(TflmTrainError, match=f"TT_FUSED_CHAIN.*{words}"):
        engine_c.CEngine(bad)
    with pytest.raises(TflmTrainError):
        tt.Trainer(tt.load_trainable(bad), "numpy")


@pytest.mark.parametrize("name,scheme", [("mcunet-5fps", "99kb"), ("mbv2-w0.35", "99kb"),
                                         ("proxyless-w0.3", "98kb")])
def test_paper_models_forward_peak_is_the_image_plus_line_buffers(name, scheme):
    from tflm_train.converters.mit import import_mit

    tm = tt.convert(import_mit(shared_model(f"mit/{name}.pkl"), num_classes=10),
                    update=f"published:{name}/{scheme}")
    r = memory_report(tm, engine_bytes=None)
    first = _fused_ops(tm)[0]
    image = tm.graph.tensors[tm.graph.inputs[0]].nbytes
    scratch = tm.graph.tensors[first.outputs[1]].nbytes
    # op 0 (the stem chain) is the largest forward op: image + its line buffers + the label
    forward_ops = [i for i, op in enumerate(tm.graph.ops) if op.opcode == "CUSTOM:TT_SOFTMAX_XENT"][0]
    assert max(r.live_per_op[:forward_ops]) <= image + scratch + 16
    assert r.live_per_op[0] <= image + scratch + 16
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 128, 128, 3), dtype=np.int8)
    a = tt.Trainer(tm, "numpy").logits(x)
    b = engine_c.CEngine(tm.bytes, poison=True).invoke([x, np.array([-1], np.int32)])[0]
    assert np.array_equal(a.ravel(), b.ravel())
