"""Sparse-update schemes: layer numbering, constructors, JSON, CLI specs, validation errors.

Properties protected: layers are numbered like tiny-training (so their published schemes mean
the same layers here), the classifier is always trained and never counted in N, every malformed
or ill-fitting scheme is rejected with a message naming the layer and the valid range.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_model

import tflm_train
from tflm_train.ir import Graph, Op, Quantization, Tensor
from tflm_train.schemes import (ALL, PUBLISHED_LAYER_COUNTS, PUBLISHED_SCHEMES, SPEC_FORMS,
                                SchemeError, UpdateScheme, parse_spec, published_scheme,
                                trainable_layers)

# --------------------------------------------------------------------------- graphs

# Layer structure of tiny-training's three models (from their .pkl files): c = CONV_2D,
# d = DEPTHWISE_CONV_2D, f = the classifier (FULLY_CONNECTED); IN-OUT channels.
MIT_LAYERS = {
    "mcunet-5fps": (
        "c3-16 d16-16 c16-8 c8-32 d32-32 c32-16 c16-48 d48-48 c48-16 c16-48 d48-48 c48-24 c24-120 "
        "d120-120 c120-24 c24-120 d120-120 c120-40 c40-160 d160-160 c160-40 c40-160 d160-160 "
        "c160-48 c48-144 d144-144 c144-48 c48-192 d192-192 c192-48 c48-240 d240-240 c240-96 "
        "c96-384 d384-384 c384-96 c96-384 d384-384 c384-96 c96-576 d576-576 c576-160 f160-1000"),
    "mbv2-w0.35": (
        "c3-16 d16-16 c16-8 c8-48 d48-48 c48-8 c8-48 d48-48 c48-8 c8-48 d48-48 c48-16 c16-96 "
        "d96-96 c96-16 c16-96 d96-96 c96-16 c16-96 d96-96 c96-24 c24-144 d144-144 c144-24 "
        "c24-144 d144-144 c144-24 c24-144 d144-144 c144-24 c24-144 d144-144 c144-32 c32-192 "
        "d192-192 c192-32 c32-192 d192-192 c192-32 c32-192 d192-192 c192-56 c56-336 d336-336 "
        "c336-56 c56-336 d336-336 c336-56 c56-336 d336-336 c336-112 f112-1000"),
    "proxyless-w0.3": (
        "c3-16 d16-16 c16-8 c8-24 d24-24 c24-16 c16-48 d48-48 c48-16 c16-48 d48-48 c48-16 c16-48 "
        "d48-48 c48-16 c16-48 d48-48 c48-16 c16-48 d48-48 c48-16 c16-96 d96-96 c96-24 c24-72 "
        "d72-72 c72-24 c24-72 d72-72 c72-24 c24-72 d72-72 c72-24 c24-144 d144-144 c144-32 c32-96 "
        "d96-96 c96-32 c32-96 d96-96 c96-32 c32-96 d96-96 c96-32 c32-192 d192-192 c192-64 "
        "c64-384 d384-384 c384-64 c64-192 d192-192 c192-64 c64-192 d192-192 c192-64 c64-384 "
        "d384-384 c384-96 f96-1000"),
}


def chain_graph(spec: str, hw: int = 4) -> Graph:
    """A plain IR chain of int8 layers; a RESHAPE between the last conv and the classifier
    and a SOFTMAX at the end, so non-layer ops are present too."""
    tensors, ops = [], []

    def tensor(shape, dtype=np.int8, data=False):
        t = Tensor(index=len(tensors), name=f"t{len(tensors)}", shape=tuple(shape),
                   dtype=np.dtype(dtype),
                   quant=Quantization(np.ones(1, np.float32), np.zeros(1, np.int64)),
                   data=np.zeros(shape, dtype) if data else None)
        tensors.append(t)
        return t.index

    def op(opcode, inputs, outputs, **options):
        ops.append(Op(index=len(ops), opcode=opcode, inputs=inputs, outputs=outputs,
                      options=options))

    x = tensor((1, hw, hw, int(spec.split()[0][1:].split("-")[0])))
    inp = x
    for item in spec.split():
        kind, (cin, cout) = item[0], map(int, item[1:].split("-"))
        if kind == "f":
            flat = tensor((1, cin))
            op("RESHAPE", [x], [flat], new_shape=[1, cin])
            w, b, y = tensor((cout, cin), data=True), tensor((cout,), np.int32, True), \
                tensor((1, cout))
            op("FULLY_CONNECTED", [flat, w, b], [y])
        elif kind == "d":
            w, b, y = tensor((1, 3, 3, cout), data=True), tensor((cout,), np.int32, True), \
                tensor((1, hw, hw, cout))
            op("DEPTHWISE_CONV_2D", [x, w, b], [y], padding=0, stride_w=1, stride_h=1,
               depth_multiplier=cout // cin)
        else:
            w, b, y = tensor((cout, 1, 1, cin), data=True), tensor((cout,), np.int32, True), \
                tensor((1, hw, hw, cout))
            op("CONV_2D", [x, w, b], [y], padding=0, stride_w=1, stride_h=1)
        x = y
    out = tensor(tensors[x].shape)
    op("SOFTMAX", [x], [out], beta=1.0)
    return Graph(tensors=tensors, ops=ops, inputs=[inp], outputs=[out])


@pytest.fixture(scope="module")
def kws():
    return tflm_train.load(shared_model("mlcommons/kws_dscnn_int8.tflite"))


@pytest.fixture(scope="module")
def small():
    # 5 layers: 0 conv 3->8, 1 dw 8, 2 conv 8->16, 3 conv 16->12, classifier 4 (FC 12->5)
    return chain_graph("c3-8 d8-8 c8-16 c16-12 f12-5")


# --------------------------------------------------------------------------- layers

@pytest.mark.parametrize("rel, n, classifier_op, classifier_opcode, cls_in, cls_out", [
    ("mlcommons/resnet8_cifar10_int8.tflite", 10, 14, "FULLY_CONNECTED", 64, 10),
    ("mlcommons/kws_dscnn_int8.tflite", 10, 11, "FULLY_CONNECTED", 64, 12),
    ("mlcommons/vww_mobilenetv1_96_int8.tflite", 28, 29, "FULLY_CONNECTED", 256, 2),
    ("tflm/person_detect_int8.tflite", 28, 28, "CONV_2D", 256, 2),
])
def test_real_model_layers(rel, n, classifier_op, classifier_opcode, cls_in, cls_out):
    g = tflm_train.load(shared_model(rel))
    layers = trainable_layers(g)
    assert len(layers) == n
    assert [L.index for L in layers] == list(range(n))
    ops = [o.index for o in g.ops if o.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                    "FULLY_CONNECTED")]
    assert [L.op_index for L in layers] == ops          # execution order
    cls = layers[-1]
    assert (cls.op_index, cls.opcode, cls.in_channels, cls.out_channels) == \
        (classifier_op, classifier_opcode, cls_in, cls_out)
    for L in layers:
        op = g.ops[L.op_index]
        assert (L.weight, L.bias, L.input, L.output) == \
            (op.inputs[1], op.inputs[2], op.inputs[0], op.outputs[0])
        assert g.tensors[L.weight].is_constant and g.tensors[L.bias].dtype == np.int32
    r = UpdateScheme.classifier_only().resolve(g)
    assert r.classifier == n - 1 and r.n_layers == n - 1
    assert r.first_trainable == n - 1 and r.first_trainable_op == classifier_op


def test_depthwise_channels_with_multiplier():
    # person_detect's first op is a depthwise conv with depth multiplier 8 on a 1-channel input
    layers = trainable_layers(tflm_train.load(shared_model("tflm/person_detect_int8.tflite")))
    assert layers[0].is_depthwise and (layers[0].in_channels, layers[0].out_channels) == (1, 8)
    assert (layers[1].in_channels, layers[1].out_channels) == (8, 8)


@pytest.fixture(scope="module")
def keras_graph():
    tf = pytest.importorskip("tensorflow")
    from converters.keras import to_int8_tflite

    L = tf.keras.layers
    inp = tf.keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(12, 1, activation="relu")(x)
    x = L.MaxPooling2D()(x)
    x = L.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10, activation="relu")(x)
    out = L.Dense(4)(x)
    model = tf.keras.Model(inp, out)
    rep = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    return tflm_train.load(to_int8_tflite(model, rep))


def test_keras_model_layers(keras_graph):
    layers = trainable_layers(keras_graph)
    assert [L.opcode for L in layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "CONV_2D",
                                          "FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert [(L.in_channels, L.out_channels) for L in layers] == \
        [(3, 8), (8, 8), (8, 12), (12, 16), (16, 10), (10, 4)]
    r = UpdateScheme.last_k(1).resolve(keras_graph)
    assert r.bias_layers() == [4, 5] and r.weight_layers() == {4: 1.0, 5: 1.0}
    r = UpdateScheme.explicit(4, {1: 0.25, 2: 0.5}).resolve(keras_graph)
    assert r.weight_layers() == {1: 0.25, 2: 0.5, 5: 1.0}
    assert [u.ic_count for u in r.layers] == [0, 2, 4, 0, 0, 10]
    assert r.first_trainable == 1


# --------------------------------------------------------------------------- constructors

def test_classifier_only(small):
    r = UpdateScheme.classifier_only().resolve(small)
    assert r.bias_layers() == [4] and r.weight_layers() == {4: 1.0}
    assert r.first_trainable == 4 and not r.needs_input_grad(4)
    assert UpdateScheme.last_k(0) == UpdateScheme.classifier_only()


def test_bias_only(small):
    r = UpdateScheme.bias_only().resolve(small)
    assert r.bias_layers() == [0, 1, 2, 3, 4]
    assert r.weight_layers() == {4: 1.0}     # the classifier's weights are always trained
    assert r.first_trainable == 0
    assert r.trainable_params() == (12 * 5, 8 + 8 + 16 + 12 + 5)


def test_last_k_does_not_count_the_classifier(small):
    r = UpdateScheme.last_k(1).resolve(small)
    assert r.bias_layers() == [3, 4] and r.weight_layers() == {3: 1.0, 4: 1.0}
    r = UpdateScheme.last_k(3).resolve(small)
    assert r.bias_layers() == [1, 2, 3, 4] and r.weight_layers() == {1: 1, 2: 1, 3: 1, 4: 1}
    assert r.first_trainable == 1
    assert [r.needs_input_grad(i) for i in range(5)] == [False, False, True, True, True]
    assert UpdateScheme.last_k(4).resolve(small).weight_layers() == \
        UpdateScheme.full().resolve(small).weight_layers()


def test_full(small):
    r = UpdateScheme.full().resolve(small)
    assert r.bias_layers() == [0, 1, 2, 3, 4]
    assert r.weight_layers() == {i: 1.0 for i in range(5)}
    assert [u.ic_count for u in r.layers] == [3, 8, 8, 16, 12]
    w, b = r.trainable_params()
    assert w == sum(int(np.prod(small.tensors[L.weight].shape)) for L in trainable_layers(small))


def test_explicit_ratios_and_ic_count(small):
    r = UpdateScheme.explicit(4, {0: 0.5, 1: "1/4", 2: 0.125, 3: 1}).resolve(small)
    # ceil(C * ratio), at least 1: 3 * 1/2 -> 2, 8 * 1/4 -> 2, 8 * 1/8 -> 1
    assert [u.ic_count for u in r.layers] == [2, 2, 1, 16, 12]
    assert [u.ratio for u in r.layers] == [0.5, 0.25, 0.125, 1.0, 1.0]
    dw = r.layers[1]
    assert dw.layer.is_depthwise and dw.trainable_weight_count == 9 * 2
    assert r.layers[2].trainable_weight_count == 16 * 1
    r = UpdateScheme.explicit(3, {3: 0.125}).resolve(small)   # 16 / 8 -> 2
    assert r.layers[3].ic_count == 2 and r.first_trainable == 1
    r = UpdateScheme.explicit(ALL, {0: 0.125}).resolve(small)  # 3 / 8 -> at least 1
    assert r.layers[0].ic_count == 1


def test_depthwise_ratio_on_real_model(kws):
    r = UpdateScheme.explicit(4, {7: 0.25, 8: 0.5}).resolve(kws)
    assert r.layers[7].layer.opcode == "DEPTHWISE_CONV_2D"
    assert (r.layers[7].ic_count, r.layers[7].trainable_weight_count) == (16, 9 * 16)
    assert (r.layers[8].ic_count, r.layers[8].trainable_weight_count) == (32, 64 * 32)
    assert r.bias_layers() == [5, 6, 7, 8, 9] and r.first_trainable == 5
    assert "classifier" in r.summary() and "16/64 ch" in r.summary()


def test_paper_form(small):
    s = UpdateScheme.paper(3, [1, 2, 3], [0, 0.25, 1])
    assert s == UpdateScheme.explicit(3, {2: 0.25, 3: 1})    # ratio 0: weights not updated
    assert UpdateScheme.paper(3, "2-3") == UpdateScheme.explicit(3, {2: 1, 3: 1})
    assert UpdateScheme.paper(2, [], None) == UpdateScheme.explicit(2)
    assert hash(s) == hash(UpdateScheme.explicit(3, {3: 1, 2: 0.25}))
    r = s.resolve(small)
    assert r.bias_layers() == [1, 2, 3, 4] and r.weight_layers() == {2: 0.25, 3: 1.0, 4: 1.0}


# --------------------------------------------------------------------------- JSON

ROUND_TRIP = [UpdateScheme.classifier_only(), UpdateScheme.bias_only(), UpdateScheme.full(),
              UpdateScheme.last_k(2), UpdateScheme.explicit(3, {1: 0.5, 3: 0.125}),
              UpdateScheme.paper(20, [23, 24, 27], [0, 0.25, 0.5])]


@pytest.mark.parametrize("scheme", ROUND_TRIP, ids=lambda s: s.to_json())
def test_json_round_trip(scheme, tmp_path, small):
    text = scheme.to_json()
    assert UpdateScheme.from_json(text) == scheme
    assert UpdateScheme.from_json(json.loads(text)) == scheme
    f = tmp_path / "s.json"
    f.write_text(scheme.to_json(indent=2))
    assert UpdateScheme.from_json(f) == scheme and UpdateScheme.from_json(str(f)) == scheme
    assert parse_spec(f"@{f}") == scheme


def test_json_schema():
    assert json.loads(UpdateScheme.explicit(20, {23: 1, 24: 0.25}).to_json()) == \
        {"bias_last": 20, "weights": {"23": 1, "24": 0.25}}
    assert json.loads(UpdateScheme.full().to_json()) == \
        {"bias_last": "all", "weights": {}, "weights_last": "all"}
    paper = {"n_bias_update": 20, "manual_weight_idx": [23, 24, 27],
             "weight_update_ratio": [0, 0.25, 0.5]}
    assert UpdateScheme.from_json(paper) == UpdateScheme.explicit(20, {24: 0.25, 27: 0.5})
    assert UpdateScheme.from_json({"n_bias_update": 20, "manual_weight_idx": "23-24"}) == \
        UpdateScheme.explicit(20, {23: 1, 24: 1})
    assert UpdateScheme.from_json({"bias_last": 4, "weights": {"3": "1/8"}}) == \
        UpdateScheme.explicit(4, {3: 0.125})


@pytest.mark.parametrize("src, message", [
    ({"bias": 3}, "unknown keys ['bias']"),
    ({"weights": {}}, "missing 'bias_last'"),
    ({"bias_last": 3, "extra": 1}, "unknown keys ['extra']"),
    ({"manual_weight_idx": [1]}, "paper form needs 'n_bias_update'"),
    ({"bias_last": -1}, "bias_last must be an integer >= 0 or 'all', got -1"),
    ({"bias_last": "some"}, "bias_last must be an integer >= 0 or 'all'"),
    ({"bias_last": 3, "weights": {"x": 1}}, "layer index 'x' is not an integer"),
    ({"bias_last": 3, "weights": {"2": 0.3}}, "weights of layer 2: ratio 0.3 is not allowed"),
    ({"n_bias_update": 3, "manual_weight_idx": [1, 2], "weight_update_ratio": [1]},
     "2 weight layers"),
    ("[1, 2]", "expected a JSON object"),
    ("{not json", "invalid JSON"),
])
def test_json_errors(src, message):
    with pytest.raises(SchemeError, match=None) as e:
        UpdateScheme.from_json(src)
    assert message in str(e.value)


def test_json_missing_file(tmp_path):
    with pytest.raises(SchemeError, match="cannot read scheme file .*nope.json"):
        UpdateScheme.from_json(tmp_path / "nope.json")


# --------------------------------------------------------------------------- CLI specs

@pytest.mark.parametrize("spec, expected", [
    ("classifier", UpdateScheme.classifier_only()),
    ("bias", UpdateScheme.bias_only()),
    ("Bias-Only", UpdateScheme.bias_only()),
    ("full", UpdateScheme.full()),
    ("last-2", UpdateScheme.last_k(2)),
    ("last-0", UpdateScheme.classifier_only()),
    ("sparse:bias=4,3=1/8,2=0.5", UpdateScheme.explicit(4, {3: 0.125, 2: 0.5})),
    ("sparse: bias=all, 0=1", UpdateScheme.explicit(ALL, {0: 1})),
    ("paper:n_bias=20,idx=23:24:27,ratio=0:0.25:0.5",
     UpdateScheme.explicit(20, {24: 0.25, 27: 0.5})),
    ("paper:n_bias=5,idx=3:4", UpdateScheme.explicit(5, {3: 1, 4: 1})),
    ("published:mcunet-5fps/49kb", UpdateScheme.paper(20, [23, 24, 27, 30, 33, 39],
                                                      [0, 0.25, 0.5, 0.5, 0, 0])),
    ('{"bias_last": 2}', UpdateScheme.explicit(2)),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec, detail", [
    ("everything", ""),
    ("", "empty"),
    ("last-x", "last-K needs an integer K >= 0"),
    ("last--1", "last-K needs an integer K >= 0"),
    ("sparse:3=1", "sparse needs bias=N"),
    ("sparse:bias=3,w=1", "sparse takes bias=N and LAYER=RATIO pairs"),
    ("sparse:bias=3,2=0.3", "ratio 0.3 is not allowed"),
    ("sparse:bias=3,2", "expected KEY=VALUE"),
    ("paper:idx=3", "paper takes n_bias=N"),
    ("paper:n_bias=3,idx=1:2,ratio=1", "2 weight layers"),
    ("published:mcunet-5fps", "published needs MODEL/BUDGET"),
    ("published:mcunet-5fps/1kb", "available: mcunet-5fps/49kb"),
])
def test_parse_spec_errors(spec, detail):
    with pytest.raises(SchemeError) as e:
        parse_spec(spec)
    msg = str(e.value)
    assert detail in msg
    assert "Accepted forms" in msg and all(form in msg for form in SPEC_FORMS)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("scheme, message", [
    (UpdateScheme.explicit(4, {5: 1}), "weights: layer 5 does not exist; the graph has layers "
                                       "0..4 (classifier = 4)"),
    (UpdateScheme.explicit(2, {1: 1}), "weights: layer 1 (op 1 DEPTHWISE_CONV_2D, 8->8 channels) "
                                       "is outside the bias-updated set: with bias_last=2 biases "
                                       "are updated for layers 2..3 (+ classifier 4)"),
    (UpdateScheme.paper(1, [2], [0.5]), "layer 2 (op 2 CONV_2D, 8->16 channels) is outside"),
    (UpdateScheme.explicit(5), "bias_last=5 is larger than the number of layers before the "
                               "classifier (4); valid range 0..4"),
    (UpdateScheme.last_k(5), "bias_last=5 is larger"),
    (UpdateScheme(bias_last=4, weights_last=5),
     "weights_last=5 is larger than the number of layers before the classifier (4); "
     "valid range 0..4"),
    (UpdateScheme(bias_last=1, weights_last=2), "weights_last=2 exceeds bias_last=1"),
    (UpdateScheme.explicit(2, {4: 0.5}), "layer 4 is the classifier, which is always fully "
                                         "updated; ratio 0.5 is not allowed"),
])
def test_resolve_errors(small, scheme, message):
    with pytest.raises(SchemeError) as e:
        scheme.resolve(small)
    assert message in str(e.value)


@pytest.mark.parametrize("make, message", [
    (lambda: UpdateScheme.explicit(3, {2: 0.3}), "weights of layer 2: ratio 0.3 is not allowed; "
                                                 "allowed: 1, 1/2, 1/4, 1/8"),
    (lambda: UpdateScheme.explicit(3, {2: 0}), "ratio 0 is not allowed"),
    (lambda: UpdateScheme.explicit(3, {2: 2}), "ratio 2 is not allowed"),
    (lambda: UpdateScheme.explicit(3, {-1: 1}), "layer index -1 is negative"),
    (lambda: UpdateScheme.paper(3, [2], [0.75]), "paper scheme, weights of layer 2: ratio 0.75"),
    (lambda: UpdateScheme.paper(3, [2, 2], [1, 1]), "repeats a layer"),
    (lambda: UpdateScheme.last_k(-1), "last_k(k) must be an integer >= 0"),
    (lambda: UpdateScheme(bias_last=True), "bias_last must be an integer"),
])
def test_construction_errors(make, message):
    with pytest.raises(SchemeError) as e:
        make()
    assert message in str(e.value)


def test_graph_without_layers():
    g = chain_graph("c3-4 f4-2")
    g.ops = [o for o in g.ops if o.opcode in ("RESHAPE", "SOFTMAX")]
    with pytest.raises(SchemeError, match="no CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED"):
        UpdateScheme.full().resolve(g)


def test_allowed_ratio_every_value_resolves(kws):
    for r in (1, 0.5, 0.25, 0.125):
        u = UpdateScheme.explicit(1, {8: r}).resolve(kws).layers[8]
        assert u.ic_count == int(64 * r) and u.update_weights and u.update_bias


# --------------------------------------------------------------------------- published schemes

def test_published_table_matches_anchors():
    assert len(PUBLISHED_SCHEMES) == 11
    p = published_scheme("mcunet-5fps", "49kb")
    assert (p.n_bias_update, p.manual_weight_idx, p.weight_update_ratio) == \
        (20, (23, 24, 27, 30, 33, 39), (0, 0.25, 0.5, 0.5, 0, 0))
    assert published_scheme("mbv2-w0.35", "138kb").weight_update_ratio == (1.0,) * 8
    for p in PUBLISHED_SCHEMES:
        assert len(p.manual_weight_idx) == len(p.weight_update_ratio)


@pytest.mark.parametrize("model", sorted(MIT_LAYERS))
def test_synthetic_graphs_match_layer_counts(model):
    layers = trainable_layers(chain_graph(MIT_LAYERS[model]))
    assert len(layers) - 1 == PUBLISHED_LAYER_COUNTS[model]
    assert len(layers) >= 43 and layers[-1].opcode == "FULLY_CONNECTED"


@pytest.mark.parametrize("p", PUBLISHED_SCHEMES, ids=lambda p: f"{p.model}/{p.budget}")
def test_published_schemes_validate(p):
    g = chain_graph(MIT_LAYERS[p.model])
    r = p.scheme().resolve(g)
    n = r.n_layers
    # n_bias_update convs plus the classifier (DESIGN.md: the 49kb scheme trains 21 biases)
    assert r.bias_layers() == list(range(n - p.n_bias_update, n + 1))
    nonzero = {i: x for i, x in zip(p.manual_weight_idx, p.weight_update_ratio) if x}
    assert r.weight_layers() == {**nonzero, n: 1.0}
    # their device engine has no depthwise weight update, yet one published row asks for one
    # (mbv2 49kb, layer 49 at 1/8): our engines must support it to run every row
    dw = [i for i in nonzero if r.layers[i].layer.is_depthwise]
    assert dw == ([49] if (p.model, p.budget) == ("mbv2-w0.35", "49kb") else [])
    assert r.first_trainable == n - p.n_bias_update
    for i, x in nonzero.items():
        assert r.layers[i].ic_count == int(r.layers[i].layer.in_channels * x)


def test_mcunet_49kb_details():
    r = published_scheme("mcunet-5fps", "49kb").scheme().resolve(chain_graph(MIT_LAYERS[
        "mcunet-5fps"]))
    assert len(r.bias_layers()) == 21 and r.first_trainable == 22
    # 24: 48->144 at 1/4, 27: 48->192 at 1/2, 30: 48->240 at 1/2, classifier 160->1000
    assert {i: r.layers[i].ic_count for i in r.weight_layers()} == {24: 12, 27: 24, 30: 24, 42: 160}
    # one bias layer fewer than the weights need -> rejected
    with pytest.raises(SchemeError, match="layer 21 .* is outside the bias-updated set"):
        UpdateScheme.paper(19, [21], [1]).resolve(chain_graph(MIT_LAYERS["mcunet-5fps"]))
