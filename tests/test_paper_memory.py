"""benchmarks/paper_memory.py and its fp32 twins (benchmarks/float_baseline.py).

- the float twin of each tiny-training model has the int8 graph's activation shapes at every op
  (PyTorch and Keras) and the pickle's parameter count (original kernels, 10-class head);
- exactly the scheme's weights and biases are trainable in the twins, and the counts of
  ``trainable_counts`` match the int8 scheme (weight slices) and the frameworks (whole tensors);
- an op the twin cannot express is rejected with its name;
- the peak-RSS reset the measurement relies on works, and a PyTorch measurement in a fresh
  process reports a positive step peak for the scheme's trainable parameters;
- the BENCHMARKS.md section is replaced in place, other sections kept; each model's
  99kb-class scheme is one of its published schemes.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_model

sys.path.insert(0, str(ROOT / "benchmarks"))

import float_baseline as fb  # noqa: E402
import paper_memory as pm  # noqa: E402

MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch not installed (pip install -e '.[bench]')")
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="tensorflow not installed")


@pytest.fixture(scope="module")
def mit():
    """name -> (pickle dict, exact int8 graph, same-padding int8 graph) with a 10-class head."""
    from tflm_train import ir
    from tflm_train.converters.mit import import_mit, load_mit

    cache = {}

    def get(name):
        if name not in cache:
            d = load_mit(shared_model(f"mit/{name}.pkl"))
            cache[name] = (d, ir.load(import_mit(d, num_classes=10)),
                           ir.load(import_mit(d, num_classes=10, padding="same")))
        return cache[name]
    return get


def _pickle_param_count(d: dict, classes: int) -> int:
    """Weights + biases of the pickle's convs, with a ``classes``-way head."""
    from tflm_train.converters.mit import _walk

    n = 0
    for kind, item in _walk(d):
        if kind == "classifier":
            n += classes * item.p["weight"].shape[1] + classes
        elif kind == "conv":
            n += item.p["weight"].size + item.p["bias"].size
    return n


def _scheme(spec_text, graph):
    from tflm_train.schemes import parse_spec

    return parse_spec(spec_text).resolve(graph)


def _expected_shapes(exact_graph) -> dict:
    return {op.outputs[0]: [int(s) for s in exact_graph.tensors[op.outputs[0]].shape]
            for op in exact_graph.ops}


@pytest.mark.parametrize("name", MODELS)
def test_spec_counts_match_pickle_and_scheme(name, mit):
    d, exact, same = mit(name)
    spec = fb.float_spec(same, _scheme(f"published:{name}/{pm.PAPER[name].class_99}", same))
    counts = fb.trainable_counts(spec)
    assert counts["total"] == _pickle_param_count(d, 10)
    w, b = _scheme(f"published:{name}/{pm.PAPER[name].class_99}", same).trainable_params()
    assert counts["int8_trainable"] == w + b
    # the published schemes train some weights on a slice: the float twin trains them whole
    assert counts["float_trainable"] > counts["int8_trainable"]
    # the twin mirrors the benchmarked (exact-padding) graph op for op
    assert [n["op"] for n in spec["nodes"]] == [op.opcode for op in exact.ops]


@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_torch_twin_shapes_and_trainable_set(name, mit):
    import torch

    d, exact, same = mit(name)
    resolved = _scheme(f"published:{name}/{pm.PAPER[name].class_99}", same)
    spec = fb.float_spec(same, resolved)
    model = fb.build_torch(spec)
    record = {}
    with torch.no_grad():
        out = model(fb.torch_input(spec), record=record)
    assert list(out.shape) == [1, 10]
    assert record == _expected_shapes(exact)
    assert sum(p.numel() for p in model.parameters()) == _pickle_param_count(d, 10)
    flags = {}
    for n in spec["nodes"]:
        if "layer" in n:
            m = model.layers[str(n["index"])]
            flags[n["layer"]] = (m.weight.requires_grad, m.bias.requires_grad)
    for u in resolved.layers:
        assert flags[u.layer.index] == (u.update_weights, u.update_bias), u.layer.describe()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == fb.trainable_counts(spec)["float_trainable"]


@needs_tf
def test_keras_twin_shapes_and_trainable_set(mit):
    name = "mcunet-5fps"
    d, exact, same = mit(name)
    resolved = _scheme("published:mcunet-5fps/49kb", same)
    spec = fb.float_spec(same, resolved)
    record = {}
    model = fb.build_keras(spec, record=record)
    assert record == _expected_shapes(exact)
    assert model.count_params() == _pickle_param_count(d, 10)
    trainable = sum(math.prod(v.shape) for v in model.trainable_variables)
    assert trainable == fb.trainable_counts(spec)["float_trainable"]
    n_vars = sum(u.update_weights + u.update_bias for u in resolved.layers)
    assert len(model.trainable_variables) == n_vars


def test_unsupported_op_is_named():
    from tflm_train import ir

    t = [ir.Tensor(0, "x", (1, 4), np.dtype(np.float32)),
         ir.Tensor(1, "y", (1, 4), np.dtype(np.float32))]
    g = ir.Graph(tensors=t, ops=[ir.Op(0, "SOFTMAX", [0], [1], {})], inputs=[0], outputs=[1])
    with pytest.raises(fb.TwinError, match=r"op 0 \(SOFTMAX\) is not supported"):
        fb.float_spec(g)


def test_peak_rss_reset():
    base = fb._status()["VmRSS"]
    a = np.ones(64 * 1024 * 1024 // 8)   # 64 MB touched
    del a
    assert fb._status()["VmHWM"] >= base + 60 * 1024 * 1024
    fb._reset_peak()
    assert fb._status()["VmHWM"] < base + 32 * 1024 * 1024


@needs_torch
def test_torch_measurement_in_fresh_process(mit, tmp_path):
    _, _, same = mit("mcunet-5fps")
    spec = fb.float_spec(same, _scheme("published:mcunet-5fps/49kb", same))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "float_baseline.py"),
                        "--framework", "torch", "--spec", str(path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["trainable"] == fb.trainable_counts(spec)["float_trainable"]
    # the step keeps at least its trainable gradients and momentum buffers (fp32)
    assert m["step1"] >= 2 * 4 * m["trainable"]
    assert m["peak1"] == m["rss_base"] + m["step1"]
    assert all(math.isfinite(v) for v in m["loss"])


def test_update_benchmarks_keeps_other_sections(tmp_path):
    p = tmp_path / "BENCHMARKS.md"
    p.write_text("# Benchmarks\n\n## A\n\na text\n\n" + pm.HEADING + "\n\nold\n\n## B\n\nb text\n")
    pm.update_benchmarks(p, pm.HEADING + "\n\nnew table\n")
    text = p.read_text()
    assert "old" not in text and "new table" in text
    assert text.index("## A") < text.index(pm.HEADING) < text.index("## B")
    assert "a text" in text and "b text" in text
    q = tmp_path / "other.md"
    q.write_text("# Benchmarks\n\n## A\n\na text\n")
    pm.update_benchmarks(q, pm.HEADING + "\n\nnew table\n")
    assert q.read_text().endswith(pm.HEADING + "\n\nnew table\n")
    assert "a text" in q.read_text()


def test_paper_figures_match_published_schemes():
    from tflm_train.schemes import PUBLISHED_SCHEMES

    for model, paper in pm.PAPER.items():
        budgets = {p.budget for p in PUBLISHED_SCHEMES if p.model == model}
        assert paper.class_99 in budgets
        assert set(paper.by_budget) <= budgets
        assert pm.paper_figure(model, paper.class_99) == (paper.sparse, paper.reorder, "sparse")
        assert pm.paper_figure(model, "full")[0] == paper.full
        assert pm.paper_figure(model, "bias-only") is None


def test_last_blocks_k_counts_present_convs():
    conv = {"params": {}}
    d = {"blocks": [{"pointwise1": conv, "depthwise": conv, "pointwise2": conv},
                    {"pointwise1": None, "depthwise": conv, "pointwise2": conv},
                    {"pointwise1": conv, "depthwise": conv, "pointwise2": conv}],
         "feature_mix": None}
    assert pm.last_blocks_k(d) == 5
    assert pm.last_blocks_k(dict(d, feature_mix=conv)) == 6
