"""``FloatGraph``, the float baseline of benchmarks/paper_accuracy.py: it computes the int8
model's function (up to quantization error), its gradients are the derivatives of its loss,
and SGD touches only the scheme's trainable slices."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from tflm_train import ir
from tflm_train.engine_c import CEngine
from tflm_train.float_graph import FloatGraph

BASE = ROOT / "examples/models/fashion5_cnn_int8.tflite"


@pytest.fixture(scope="module")
def images():
    """Fashion-MNIST test images quantized for the bundled model (plus labels 0..4)."""
    from tflm_train.data import fit_to_input
    from tflm_train.datasets import fashion_mnist

    x, y = fashion_mnist("test")
    g = ir.load(BASE)
    return fit_to_input(x[:100].astype(np.float32)[..., None] / 255.0,
                        g.tensors[g.inputs[0]]), y[:100] % 5


def test_forward_tracks_the_int8_model(images):
    xq, _ = images
    g = ir.load(BASE)
    out = g.tensors[g.outputs[0]]
    eng = CEngine(BASE.read_bytes())
    zq = np.stack([eng.invoke([x[None]])[0].reshape(-1) for x in xq])
    z_int8 = (zq.astype(np.float64) - out.zero_point) * out.scale
    fg = FloatGraph(g, "full")
    z = fg.forward(fg.dequantize_input(xq))
    assert np.corrcoef(z.ravel(), z_int8.ravel())[0, 1] > 0.99
    assert np.mean(z.argmax(1) == z_int8.argmax(1)) >= 0.9


def test_gradients_equal_finite_differences(images):
    xq, y = images
    fg = FloatGraph(BASE, "full", dtype=np.float64)
    x = fg.dequantize_input(xq[:3])
    _, grads = fg.gradients(x, y[:3])
    assert set(grads) == set(fg.trainable()) and len(grads) == 16
    rng = np.random.default_rng(0)
    eps = 1e-6
    for k in fg.trainable():
        p = fg.params[k]
        g = grads[k]
        # the largest-gradient element and a random one of every parameter
        for idx in (np.unravel_index(np.argmax(np.abs(g)), g.shape),
                    tuple(int(rng.integers(0, s)) for s in p.shape)):
            old = p[idx]
            p[idx] = old + eps
            lp, _ = fg.gradients(x, y[:3])
            p[idx] = old - eps
            lm, _ = fg.gradients(x, y[:3])
            p[idx] = old
            assert g[idx] == pytest.approx((lp - lm) / (2 * eps), rel=1e-5, abs=1e-8), (k, idx)


def test_step_updates_only_the_trainable_slices(images):
    xq, y = images
    # biases of layers 4..6, weights of layer 6 on half its 32 input channels, + classifier
    fg = FloatGraph(BASE, "sparse:bias=3,6=1/2")
    before = {k: v.copy() for k, v in fg.params.items()}
    for i in range(5):
        fg.train_step(fg.dequantize_input(xq[i]), int(y[i]), lr=0.01, momentum=0.9)
    changed = {k for k in fg.params if not np.array_equal(before[k], fg.params[k])}
    assert changed == set(fg.trainable())
    w6 = fg.resolved.layers[6].layer.weight
    np.testing.assert_array_equal(fg.params[w6][..., 16:], before[w6][..., 16:])
    assert not np.array_equal(fg.params[w6][..., :16], before[w6][..., :16])


def test_training_lowers_the_loss(images):
    xq, y = images
    fg = FloatGraph(BASE, "last-2")
    x = fg.dequantize_input(xq[:32])
    start, _ = fg.gradients(x, y[:32])
    for _ in range(5):
        for i in range(32):
            fg.train_step(x[i], int(y[i]), lr=0.005, momentum=0.9)
    end, _ = fg.gradients(x, y[:32])
    assert end < 0.7 * start
