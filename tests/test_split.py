"""``tflm_train.split``: a model cut at one activation is the same model. Prefix then suffix
gives the whole model's outputs bit for bit, and training the suffix on cached prefix outputs
gives the same losses, parameters and PRNG state as training the whole model with a frozen
prefix. Cuts that a residual branch crosses are refused with a clear error."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, shared_model

import tflm_train as tt
from tflm_train import ir
from tflm_train.engine_c import CEngine
from tflm_train.errors import TflmTrainError
from tflm_train.schemes import parse_spec
from tflm_train.split import (blocks, crossing_tensors, cut_before_layer, last_blocks_scheme,
                              split_at)

BASE = ROOT / "examples/models/fashion5_cnn_int8.tflite"


def _train_both(model, scheme, cut, images, labels, optimizer):
    """Losses and final parameters of the whole model and of prefix-cache + suffix."""
    split = split_at(model, cut)
    whole = tt.Trainer(tt.convert(model, update=scheme, optimizer=optimizer, seed=3), "c")
    part = tt.Trainer(tt.convert(split.suffix, update=split.scheme(scheme),
                                 optimizer=optimizer, seed=3), "c")
    prefix = CEngine(split.prefix)
    for x, y in zip(images, labels):
        cached = prefix.invoke([x[None]])[0]
        assert whole.train_step(x, int(y)) == part.train_step(cached[0], int(y))
    return whole.parameters(), part.parameters()


def _assert_same_training(pw, ps):
    assert pw.keys() == ps.keys()
    for k in pw:
        np.testing.assert_array_equal(pw[k], ps[k], err_msg=k)


def test_prefix_then_suffix_is_the_model(rng):
    data = BASE.read_bytes()
    g = ir.load(data)
    whole = CEngine(data)
    for cut in (18, 21, 22, 26):
        split = split_at(g, cut)
        prefix, suffix = CEngine(split.prefix), CEngine(split.suffix)
        for _ in range(3):
            x = rng.integers(-128, 128, size=g.tensors[g.inputs[0]].shape, dtype=np.int8)
            np.testing.assert_array_equal(suffix.invoke(prefix.invoke([x]))[0],
                                          whole.invoke([x])[0])


def test_cut_inside_a_residual_block_is_refused():
    g = ir.load(BASE)
    # op 6's input 23 is live together with the block input 22 (read by the ADD, op 7)
    assert crossing_tensors(g, 6) == [22, 23]
    with pytest.raises(TflmTrainError, match=r"22 .*also crosses the cut"):
        split_at(g, 23)
    # the latest valid cut before layer 6 (op 6) is the block input
    assert cut_before_layer(g, 6) == 22


def test_scheme_that_trains_the_prefix_is_refused():
    split = split_at(BASE, 22)
    with pytest.raises(TflmTrainError, match="in the prefix"):
        split.scheme("last-4")


@pytest.mark.parametrize("spec", ["last-2", "sparse:bias=3,5=1/2,6=1"])
def test_training_the_suffix_is_training_the_model(spec, rng):
    g = ir.load(BASE)
    cut = cut_before_layer(g, parse_spec(spec).resolve(g).first_trainable)
    n = 24
    images = rng.integers(-128, 128, size=(n,) + g.tensors[g.inputs[0]].shape[1:], dtype=np.int8)
    labels = rng.integers(0, 5, size=n)
    pw, ps = _train_both(BASE.read_bytes(), spec, cut, images, labels, tt.SGD(0.05, 0.9))
    initial = tt.Trainer(tt.convert(BASE, update=spec), "numpy").parameters()
    assert any(not np.array_equal(pw[k], initial[k]) for k in pw if k != "tt_state")
    _assert_same_training(pw, ps)


def test_mcunet_last_two_blocks():
    from tflm_train.converters.mit import import_mit

    model = import_mit(shared_model("mit/mcunet-5fps.pkl"), num_classes=10)
    g = ir.load(model)
    assert len(blocks(g)) == 14 and blocks(g)[-1] == [39, 40, 41]
    scheme = last_blocks_scheme(g, 2)
    assert scheme == tt.UpdateScheme.last_k(6)
    cut = cut_before_layer(g, scheme.resolve(g).first_trainable)
    assert g.tensors[cut].name == "blocks.11.residual"
    rng = np.random.default_rng(7)
    images = rng.integers(-128, 128, size=(4, 128, 128, 3), dtype=np.int8)
    _assert_same_training(*_train_both(model, scheme, cut, images, [1, 3, 5, 7],
                                       tt.SGD(0.01, 0.9)))
