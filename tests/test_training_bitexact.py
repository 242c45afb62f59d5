"""The numpy reference and the C engine are the same device: after 50 training steps they give
the same loss at every step and the same weights, biases and PRNG state, every bit."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, shared_model

import tflm_train as tt
from tflm_train.data import fit_to_input
from tflm_train.datasets import fashion_mnist

BASE = ROOT / "examples/models/fashion5_cnn_int8.tflite"
STEPS = 50


def _fashion(n):
    x, y = fashion_mnist("train")
    return x[:n].astype(np.float32)[..., None] / 255.0, y[:n]


def _run_both(tm, x, y):
    a = tt.Trainer(tm, backend="numpy")
    b = tt.Trainer(tm, backend="c")
    xq = fit_to_input(x, a.image)
    for i in range(STEPS):
        la = a.train_step(xq[i], int(y[i]))
        lb = b.train_step(xq[i], int(y[i]))
        assert la == lb, f"step {i}: loss {la} (numpy) != {lb} (C)"
    pa, pb = a.parameters(), b.parameters()
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    initial = tt.Trainer(tm, backend="numpy").parameters()
    changed = [k for k in pa if k != "tt_state" and not np.array_equal(pa[k], initial[k])]
    assert changed, "no parameter changed: the comparison would be vacuous"
    # and inference agrees after training
    for xi in xq[STEPS:STEPS + 5]:
        np.testing.assert_array_equal(a.logits(xi), b.logits(xi))
    return changed


@pytest.mark.parametrize("spec", ["last-2", "sparse:bias=5,7=1/2,8=1/4"])
def test_resnet8_numpy_equals_c(spec):
    path = shared_model("mlcommons/resnet8_cifar10_int8.tflite")
    x, y = _fashion(STEPS + 5)
    changed = _run_both(tt.convert(path, update=spec, num_classes=10, optimizer=tt.SGD(0.02)),
                        x, y)
    assert len(changed) >= 4


def test_depthwise_weights_numpy_equals_c():
    """The bundled model: two depthwise layers with trainable weights, one on half its channels."""
    x, y = _fashion(STEPS + 5)
    y = y % 5
    tm = tt.convert(BASE, update="sparse:bias=5,3=1/2,5=1,6=1", num_classes=5,
                    optimizer=tt.SGD(0.05))
    changed = _run_both(tm, x, y)
    dw = [n for n in changed if "depthwise" in n.lower()]
    assert len(dw) >= 2, changed


def test_momentum_numpy_equals_c_and_keeps_velocities():
    """SGD with momentum: velocities are model state, updated identically by both engines."""
    x, y = _fashion(STEPS + 5)
    tm = tt.convert(BASE, update="sparse:bias=5,3=1/2,5=1,6=1", num_classes=5,
                    optimizer=tt.SGD(0.02, momentum=0.9))
    changed = _run_both(tm, x, y % 5)
    assert sum(n.startswith("velocity/") for n in changed) >= 6, changed
    rep = tm.memory_report()
    plain = tt.convert(BASE, update="sparse:bias=5,3=1/2,5=1,6=1", num_classes=5).memory_report()
    # one int32 velocity per trainable element: weights (compact slices) and biases
    assert rep.state - plain.state == 4 * sum(
        int(np.prod(t.shape)) for t in tm.graph.tensors if t.name.startswith("velocity/"))


def test_kws_depthwise_heavy_numpy_equals_c():
    path = shared_model("mlcommons/kws_dscnn_int8.tflite")
    rng = np.random.default_rng(0)
    tm = tt.convert(path, update="sparse:bias=4,5=1,7=1/2,8=1", optimizer=tt.SGD(0.02))
    a, b = tt.Trainer(tm, backend="numpy"), tt.Trainer(tm, backend="c")
    for i in range(STEPS):
        x = rng.integers(-128, 128, size=a.image.shape, dtype=np.int8)
        label = int(rng.integers(0, 12))
        assert a.train_step(x, label) == b.train_step(x, label), f"step {i}"
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(v, b.parameters()[k], err_msg=k)
