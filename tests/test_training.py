"""End-to-end training: the compiled graph learns, prunes what no parameter needs, plans memory
without overlap, exports a plain model that TFLM runs identically, and rejects bad input."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, shared_model, tflm_invoke

import tflm_train as tt
from tflm_train import ir
from tflm_train.data import fit_to_input
from tflm_train.datasets import fashion_mnist
from tflm_train.planner import check_no_overlap, plan
from tflm_train.schemes import SchemeError

BASE = ROOT / "examples/models/fashion5_cnn_int8.tflite"


@pytest.fixture(scope="module")
def fashion_new_task():
    """Fashion-MNIST classes 5..9 (the base model was trained on 0..4), relabelled 0..4."""
    x, y = fashion_mnist("train")
    keep = y >= 5
    return x[keep].astype(np.float32)[..., None] / 255.0, y[keep] - 5


def _quantized(trainer, x):
    return fit_to_input(x, trainer.image)


def test_backward_is_pruned_to_the_trainable_layers():
    tm = tt.convert(BASE, update="last-2", num_classes=5)
    codes = [op.opcode for op in tm.graph.ops]
    # layers 5, 6 and the classifier train: their three MAC backward ops exist, nothing earlier
    assert codes.count("CUSTOM:TT_CONV_2D_GRAD") == 1
    assert codes.count("CUSTOM:TT_DEPTHWISE_CONV_2D_GRAD") == 1
    assert codes.count("CUSTOM:TT_FULLY_CONNECTED_GRAD") == 1
    # the earliest trainable layer propagates no input gradient (no scratch output)
    first = next(op for op in tm.graph.ops if op.opcode == "CUSTOM:TT_DEPTHWISE_CONV_2D_GRAD")
    assert first.outputs == []
    classifier_only = tt.convert(BASE, update="classifier", num_classes=5)
    grads = [op.opcode for op in classifier_only.graph.ops if op.opcode.endswith("_GRAD")]
    assert grads == ["CUSTOM:TT_FULLY_CONNECTED_GRAD"]


@pytest.mark.parametrize("spec", ["classifier", "bias", "last-2", "full",
                                  "sparse:bias=4,4=1/2,5=1/4,6=1/8"])
def test_plan_never_overlaps_live_tensors(spec):
    tm = tt.convert(BASE, update=spec, num_classes=5)
    p = plan(tm.graph)
    check_no_overlap(p)
    # the written offline plan is this plan
    from tflm_train.compiler import read_metadata
    raw = np.frombuffer(read_metadata(tm.model, "OfflineMemoryAllocation"), dtype=np.int32)
    assert raw[2] == len(tm.graph.tensors)
    for t, off in p.offsets.items():
        assert raw[3 + t] == off
    rep = tm.memory_report()
    assert rep.arena == p.peak and rep.peak_sram >= rep.arena + rep.parameters


def test_memory_grows_with_the_trainable_set():
    peaks = {s: tt.convert(BASE, update=s, num_classes=5).memory_report().peak_sram
             for s in ("classifier", "last-2", "full")}
    assert peaks["classifier"] < peaks["last-2"] < peaks["full"]


def test_overfits_32_samples(fashion_new_task):
    x, y = fashion_new_task
    x, y = x[:32], y[:32]
    tr = tt.Trainer(tt.convert(BASE, update="last-2", num_classes=5, optimizer=tt.SGD(0.1)))
    xq = _quantized(tr, x)
    for epoch in range(60):
        tr.fit(xq, y, epochs=1, shuffle_seed=epoch, progress=False)
        if tr.evaluate(xq, y) == 1.0:
            break
    assert tr.evaluate(xq, y) == 1.0


def test_inference_changes_no_parameter(fashion_new_task):
    x, _ = fashion_new_task
    tr = tt.Trainer(tt.convert(BASE, update="last-2", num_classes=5))
    before = tr.parameters()
    for xi in _quantized(tr, x[:5]):
        tr.predict(xi)
    after = tr.parameters()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    tr.train_step(_quantized(tr, x[:1])[0], 3)
    changed = tr.parameters()
    assert any(not np.array_equal(before[k], changed[k]) for k in before if k != "tt_state")


def test_export_runs_in_tflm_with_the_same_outputs(fashion_new_task, tmp_path):
    x, y = fashion_new_task
    tr = tt.Trainer(tt.convert(BASE, update="last-2", num_classes=5, optimizer=tt.SGD(0.05)))
    xq = _quantized(tr, x[:60])
    tr.fit(xq, y[:60], epochs=1, progress=False)
    data = tr.export(tmp_path / "trained.tflite")
    g = ir.load(data)
    assert all(not op.opcode.startswith("CUSTOM") for op in g.ops)
    for xi in xq[:20]:
        ref = tflm_invoke(data, [xi[None]])[0].reshape(-1)
        np.testing.assert_array_equal(tr.logits(xi), ref)


def test_save_and_resume(fashion_new_task, tmp_path):
    x, y = fashion_new_task
    tr = tt.Trainer(tt.convert(BASE, update="last-2", num_classes=5))
    xq = _quantized(tr, x[:10])
    tr.fit(xq, y[:10], epochs=1, progress=False)
    tr.save(tmp_path / "m.train.tflite")
    resumed = tt.Trainer(tmp_path / "m.train.tflite")
    for k, v in tr.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)


def test_bad_label_and_bad_scheme_are_clear_errors(fashion_new_task):
    x, _ = fashion_new_task
    tr = tt.Trainer(tt.convert(BASE, update="classifier", num_classes=5))
    with pytest.raises(ValueError, match="label 7 out of range.*5 classes"):
        tr.train_step(_quantized(tr, x[:1])[0], 7)
    with pytest.raises(SchemeError, match="layer 42"):
        tt.convert(BASE, update="sparse:bias=2,42=1")
    with pytest.raises(tt.ShapeError, match="shape"):
        tr.train_step(np.zeros((5, 5), np.int8), 0)


def test_resnet8_finetune_beats_classifier_only():
    """ResNet-8 (CIFAR-10) on Fashion-MNIST, 100 per class, 1 epoch: updating the last two
    conv layers too beats training the classifier alone (both printed)."""
    path = shared_model("mlcommons/resnet8_cifar10_int8.tflite")
    x, y = fashion_mnist("train")
    idx = np.concatenate([np.flatnonzero(y == c)[:100] for c in range(10)])
    xt, yt = fashion_mnist("test")
    tidx = np.arange(500)
    acc = {}
    for spec in ("classifier", "last-2"):
        tr = tt.Trainer(tt.convert(path, update=spec, num_classes=10, optimizer=tt.SGD(0.02)),
                        backend="c" if _c_training() else "numpy")
        xq = fit_to_input(x[idx].astype(np.float32)[..., None] / 255.0, tr.image)
        tr.fit(xq, y[idx], epochs=1, shuffle_seed=0, progress=False)
        xtq = fit_to_input(xt[tidx].astype(np.float32)[..., None] / 255.0, tr.image)
        acc[spec] = tr.evaluate(xtq, yt[tidx])
    print(f"ResNet-8 → Fashion-MNIST: classifier only {acc['classifier']:.1%}, "
          f"last-2 {acc['last-2']:.1%}")
    assert acc["last-2"] > acc["classifier"]


def _c_training() -> bool:
    try:
        from tflm_train.engine_c import CEngine
        CEngine(tt.convert(BASE, update="classifier", num_classes=5).bytes)
        return True
    except Exception:
        return False
