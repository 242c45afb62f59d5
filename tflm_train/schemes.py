"""Sparse-update schemes: which biases and which weight slices a training step updates.

Layers
    A *layer* is a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED op. Layers are numbered
    0, 1, 2, ... in execution order from the input (``trainable_layers(graph)``). The last layer
    is the *classifier*: it is always trained (weights and bias) and is NOT counted in N. A graph
    with L layers therefore has ``n = L - 1`` countable layers, numbered 0..n-1, and the classifier
    has index n. This is tiny-training's convention (``n_bias_update`` / ``manual_weight_idx``), so
    their published schemes (``PUBLISHED_SCHEMES``) apply unchanged to the imported models.

Scheme (``UpdateScheme``)
    bias_last     biases of the last N countable layers are updated (0..n, or "all" = n).
    weights       {layer index: ratio}: the weights of these layers are updated, restricted to the
                  first ceil(C * ratio) input channels (at least 1), ratio in {1, 1/2, 1/4, 1/8}.
                  For DEPTHWISE_CONV_2D the ratio applies to its channels (input channels; with a
                  depth multiplier m each selected input channel brings its m filters).
    weights_last  the weights (ratio 1) of the last K countable layers (0..n, or "all"); merged
                  with ``weights`` (a layer in both keeps its explicit ratio).
    Every weight layer must lie inside the bias-updated set (index >= n - N), as in the paper.
    Constructors: ``classifier_only()`` (N = 0), ``bias_only()`` (biases of every layer plus the
    classifier, no weights but the classifier's), ``last_k(k)`` (weights and biases of the last k
    countable layers, plus the classifier: ``last_k(0)`` == ``classifier_only()``, ``last_k(1)``
    = the classifier and the layer before it), ``full()``, ``explicit(bias_last, weights)`` and
    ``paper(n_bias_update, manual_weight_idx, weight_update_ratio)`` (tiny-training's form; a
    ratio of 0 means that layer's weights are not updated).

Channel choice
    The trainable slice of a layer is its first ``ic_count`` input channels (what the device
    updates; a compiler that wants other channels permutes them at compile time).

JSON (``UpdateScheme.to_json`` / ``from_json``), one object, either form::

    {"bias_last": 20, "weights": {"23": 1, "24": 0.25}, "weights_last": 0}
        bias_last: int >= 0 or "all" (required); weights: object, keys are layer indices
        (strings or ints), values ratios 1, 0.5, 0.25, 0.125 (optional, default {});
        weights_last: int >= 0 or "all" (optional, default 0).
    {"n_bias_update": 20, "manual_weight_idx": [23, 24, 27], "weight_update_ratio": [0, 0.25, 0.5]}
        tiny-training's form; manual_weight_idx may also be their "23-24-27" string, and
        weight_update_ratio may be omitted (all 1). A ratio of 0 drops that layer's weights.

Command-line spec (``parse_spec``)::

    classifier                  classifier only (weights + bias of the last layer)
    bias                        biases of every layer + the classifier
    full                        every weight and bias
    last-K                      weights and biases of the last K layers + the classifier
    sparse:bias=N,IDX=R,...     N = int or "all"; R = 1, 1/2, 0.5, 1/4, 0.25, 1/8 or 0.125
    paper:n_bias=N,idx=I:I:...,ratio=R:R:...
                                tiny-training's form (ratio optional, 0 = weights not updated)
    published:MODEL/BUDGET      a row of PUBLISHED_SCHEMES, e.g. published:mcunet-5fps/49kb
    @FILE.json                  a JSON file as above (text starting with "{" is read as JSON)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import TflmTrainError

LAYER_OPCODES = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# In a training graph, the forward op of a partially trainable layer: the builtin op with its
# filter split along the last axis into the trainable slice and the frozen rest
# (docs/train-format.md). Inputs: x, filter slice, filter rest, bias (optional).
SPLIT_OPCODES = {"CUSTOM:TT_CONV_2D": "CONV_2D",
                 "CUSTOM:TT_DEPTHWISE_CONV_2D": "DEPTHWISE_CONV_2D",
                 "CUSTOM:TT_FULLY_CONNECTED": "FULLY_CONNECTED"}
ALLOWED_RATIOS = (1.0, 0.5, 0.25, 0.125)
ALL = "all"

SPEC_FORMS = (
    "classifier",
    "bias",
    "full",
    "last-K (K >= 0)",
    "sparse:bias=N,IDX=RATIO,... (N an int or 'all')",
    "paper:n_bias=N,idx=I:I:...,ratio=R:R:...",
    "published:MODEL/BUDGET (e.g. published:mcunet-5fps/49kb)",
    "@FILE.json",
)


class SchemeError(TflmTrainError, ValueError):
    """An update scheme that is malformed or does not fit the graph."""


# ------------------------------------------------------------------------------------------ layers

@dataclass(frozen=True)
class Layer:
    """One trainable-capable op (CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, or its
    split-filter form in a training graph)."""

    index: int            # layer index (0-based, execution order)
    op_index: int         # index of the op in graph.ops
    opcode: str           # the builtin name, also for a split-filter op
    input: int            # activation input tensor
    output: int           # output tensor
    weight: int           # weight tensor (the trainable slice of a split filter)
    bias: int | None      # bias tensor, None when the op has none
    in_channels: int
    out_channels: int
    weight_shape: tuple[int, ...]   # the whole weight's
    frozen_weight: int | None = None  # the frozen rest of a split filter

    @property
    def is_depthwise(self) -> bool:
        return self.opcode == "DEPTHWISE_CONV_2D"

    def describe(self) -> str:
        return f"layer {self.index} (op {self.op_index} {self.opcode}, {self.in_channels}->" \
               f"{self.out_channels} channels)"


def trainable_layers(graph) -> list[Layer]:
    """The CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops (and their split-filter forms,
    SPLIT_OPCODES) in execution order, as Layers. On a training graph, the stages of a
    TT_FUSED_CHAIN (frozen by construction) keep their layer numbers: indices stay those of
    the source model."""
    layers = []
    skipped = 0
    for op in graph.ops:
        if op.opcode == "CUSTOM:TT_FUSED_CHAIN":
            from flatbuffers import flexbuffers
            skipped += int(flexbuffers.Loads(op.custom_options)["stages"])
            continue
        split = op.opcode in SPLIT_OPCODES
        if op.opcode not in LAYER_OPCODES and not split:
            continue
        if len(op.inputs) < 2 + split or min(op.inputs[1:2 + split]) < 0:
            raise SchemeError(f"op {op.index} ({op.opcode}) has no weight tensor")
        opcode = SPLIT_OPCODES.get(op.opcode, op.opcode)
        x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        b = 2 + split
        bias = op.inputs[b] if len(op.inputs) > b and op.inputs[b] >= 0 else None
        ws = tuple(w.shape)
        rest = op.inputs[2] if split else None
        if split:
            ws = ws[:-1] + (ws[-1] + graph.tensors[rest].shape[-1],)
        if opcode == "DEPTHWISE_CONV_2D":
            # weight [1, kh, kw, C*m]; the ratio counts input channels
            cin, cout = int(x.shape[-1]), int(ws[-1])
        else:
            # CONV_2D weight [O, kh, kw, I]; FULLY_CONNECTED weight [O, I]
            cin, cout = int(ws[-1]), int(ws[0])
        layers.append(Layer(index=len(layers) + skipped, op_index=op.index, opcode=opcode,
                            input=op.inputs[0], output=op.outputs[0], weight=op.inputs[1],
                            bias=bias, in_channels=cin, out_channels=cout, weight_shape=ws,
                            frozen_weight=rest))
    return layers


# ------------------------------------------------------------------------------------------ scheme

def _ratio(value, where: str) -> float:
    """A weight ratio as float; raises unless it is one of ALLOWED_RATIOS."""
    try:
        r = float(Fraction(value)) if isinstance(value, str) else float(value)
    except (ValueError, TypeError, ZeroDivisionError):
        raise SchemeError(f"{where}: ratio {value!r} is not a number; allowed: 1, 1/2, 1/4, 1/8")
    if r not in ALLOWED_RATIOS:
        raise SchemeError(f"{where}: ratio {value} is not allowed; allowed: 1, 1/2, 1/4, 1/8 "
                          f"(0 only in the paper form, meaning 'weights not updated')")
    return r


def _count(value, what: str) -> int | str:
    """A layer count: int >= 0 or "all"."""
    if isinstance(value, str) and value.strip().lower() == ALL:
        return ALL
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, str):
                value = int(value.strip())
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError
        except ValueError:
            raise SchemeError(f"{what} must be an integer >= 0 or 'all', got {value!r}")
    if value < 0:
        raise SchemeError(f"{what} must be an integer >= 0 or 'all', got {value}")
    return value


def _layer_index(key, where: str) -> int:
    try:
        if isinstance(key, bool):
            raise ValueError
        i = int(key.strip()) if isinstance(key, str) else key
        if not isinstance(i, int):
            raise ValueError
    except ValueError:
        raise SchemeError(f"{where}: layer index {key!r} is not an integer")
    if i < 0:
        raise SchemeError(f"{where}: layer index {i} is negative; layers are numbered from 0")
    return i


@dataclass(frozen=True)
class UpdateScheme:
    """Which parameters a training step updates (see the module docstring for the semantics)."""

    bias_last: int | str = 0
    weights: dict[int, float] = field(default_factory=dict)
    weights_last: int | str = 0

    def __post_init__(self):
        object.__setattr__(self, "bias_last", _count(self.bias_last, "bias_last"))
        object.__setattr__(self, "weights_last", _count(self.weights_last, "weights_last"))
        if not isinstance(self.weights, dict):
            raise SchemeError(f"weights must be a dict {{layer index: ratio}}, got "
                              f"{type(self.weights).__name__}")
        w = {}
        for k, v in self.weights.items():
            i = _layer_index(k, "weights")
            w[i] = _ratio(v, f"weights of layer {i}")
        object.__setattr__(self, "weights", dict(sorted(w.items())))

    def __hash__(self):
        return hash((self.bias_last, tuple(self.weights.items()), self.weights_last))

    # constructors -----------------------------------------------------------------------------
    @classmethod
    def classifier_only(cls) -> "UpdateScheme":
        """Weights and bias of the classifier (the last layer) only."""
        return cls(bias_last=0)

    @classmethod
    def bias_only(cls) -> "UpdateScheme":
        """Biases of every layer plus the classifier (whose weights are always trained too)."""
        return cls(bias_last=ALL)

    @classmethod
    def last_k(cls, k: int) -> "UpdateScheme":
        """Weights and biases of the last k layers plus the classifier (k does not count the
        classifier: last_k(0) is classifier_only(), last_k(1) adds the layer before it)."""
        k = _count(k, "last_k(k)")
        return cls(bias_last=k, weights_last=k)

    @classmethod
    def full(cls) -> "UpdateScheme":
        """Every weight and bias."""
        return cls(bias_last=ALL, weights_last=ALL)

    @classmethod
    def explicit(cls, bias_last, weights: dict | None = None) -> "UpdateScheme":
        """Biases of the last ``bias_last`` layers, weights {layer index: ratio}."""
        return cls(bias_last=bias_last, weights=dict(weights or {}))

    @classmethod
    def paper(cls, n_bias_update, manual_weight_idx=(), weight_update_ratio=None) -> "UpdateScheme":
        """tiny-training's form. ``manual_weight_idx``: list or "23-24-27"; ratios default to 1;
        a ratio of 0 means that layer's weights are not updated."""
        idx = _paper_idx(manual_weight_idx)
        if weight_update_ratio is None:
            ratios = [1.0] * len(idx)
        else:
            ratios = _paper_ratios(weight_update_ratio)
            if len(ratios) != len(idx):
                raise SchemeError(f"paper scheme: {len(idx)} weight layers (manual_weight_idx "
                                  f"{idx}) but {len(ratios)} ratios (weight_update_ratio {ratios})")
        if len(set(idx)) != len(idx):
            raise SchemeError(f"paper scheme: manual_weight_idx {idx} repeats a layer")
        weights = {}
        for i, r in zip(idx, ratios):
            if r == 0:
                continue
            weights[i] = _ratio(r, f"paper scheme, weights of layer {i}")
        return cls(bias_last=n_bias_update, weights=weights)

    # JSON ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"bias_last": self.bias_last,
             "weights": {str(k): (int(v) if v == 1 else v) for k, v in self.weights.items()}}
        if self.weights_last != 0:
            d["weights_last"] = self.weights_last
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, src) -> "UpdateScheme":
        """From a dict, JSON text (a str starting with "{" or "["), or a path to a JSON file."""
        where = "scheme JSON"
        if isinstance(src, dict):
            d = src
        else:
            if isinstance(src, Path) or (isinstance(src, str)
                                         and not src.lstrip().startswith(("{", "["))):
                where = str(src)
                try:
                    text = Path(src).read_text()
                except OSError as e:
                    raise SchemeError(f"cannot read scheme file {src}: {e.strerror or e}")
            elif isinstance(src, str):
                text = src
            else:
                raise SchemeError(f"from_json takes a dict, a JSON string or a path, "
                                  f"got {type(src).__name__}")
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                raise SchemeError(f"{where}: invalid JSON: {e}")
        if not isinstance(d, dict):
            raise SchemeError(f"{where}: expected a JSON object, got {type(d).__name__}")
        try:
            return cls._from_dict(d)
        except SchemeError as e:
            raise SchemeError(f"{where}: {e}") from None

    @classmethod
    def _from_dict(cls, d: dict) -> "UpdateScheme":
        native, paper = {"bias_last", "weights", "weights_last"}, \
            {"n_bias_update", "manual_weight_idx", "weight_update_ratio"}
        keys = set(d)
        if keys & paper and not keys & native:
            if "n_bias_update" not in d:
                raise SchemeError("paper form needs 'n_bias_update'")
            return cls.paper(d["n_bias_update"], d.get("manual_weight_idx") or (),
                             d.get("weight_update_ratio"))
        unknown = keys - native
        if unknown or "bias_last" not in d:
            problem = (f"unknown keys {sorted(unknown)}" if unknown else "missing 'bias_last'")
            raise SchemeError(
                f"{problem}; expected {{'bias_last': N|'all', 'weights': {{'IDX': RATIO}}, "
                f"'weights_last': K|'all'}} or {{'n_bias_update': N, 'manual_weight_idx': [...], "
                f"'weight_update_ratio': [...]}}")
        return cls(bias_last=d["bias_last"], weights=d.get("weights") or {},
                   weights_last=d.get("weights_last", 0))

    # resolution ---------------------------------------------------------------------------------
    def resolve(self, graph) -> "ResolvedScheme":
        """Apply the scheme to a graph: per-layer flags, validated (SchemeError names the layer
        and the valid range)."""
        layers = trainable_layers(graph)
        if not layers:
            raise SchemeError("the graph has no CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED "
                              "op, so nothing can be trained")
        n = len(layers) - 1       # countable layers; the classifier has index n
        bias_n = n if self.bias_last == ALL else self.bias_last
        weights_k = n if self.weights_last == ALL else self.weights_last
        if bias_n > n:
            raise SchemeError(f"bias_last={bias_n} is larger than the number of layers before "
                              f"the classifier ({n}); valid range 0..{n}")
        if weights_k > n:
            raise SchemeError(f"weights_last={weights_k} is larger than the number of layers "
                              f"before the classifier ({n}); valid range 0..{n}")
        if weights_k > bias_n:
            raise SchemeError(f"weights_last={weights_k} exceeds bias_last={bias_n}: every weight "
                              f"layer must also be inside the bias-updated set; valid range "
                              f"0..{bias_n}")
        first_bias = n - bias_n
        ratios = {i: 1.0 for i in range(n - weights_k, n)}
        for i, r in self.weights.items():
            if i > n:
                raise SchemeError(f"weights: layer {i} does not exist; the graph has layers "
                                  f"0..{n} (classifier = {n})")
            if i == n and r != 1.0:
                raise SchemeError(f"weights: layer {i} is the classifier, which is always fully "
                                  f"updated; ratio {r} is not allowed for it")
            _ratio(r, f"weights of layer {i}")
            ratios[i] = r
        for i in sorted(ratios):
            if i < first_bias and i != n:
                raise SchemeError(
                    f"weights: {layers[i].describe()} is outside the bias-updated set: with "
                    f"bias_last={bias_n} biases are updated for layers {first_bias}..{n - 1} "
                    f"(+ classifier {n}); every weight layer must be in that range")
        ratios[n] = 1.0
        updates = []
        for L in layers:
            r = ratios.get(L.index, 0.0)
            ic = max(1, math.ceil(L.in_channels * r)) if r else 0
            updates.append(LayerUpdate(layer=L, update_bias=L.index >= first_bias,
                                       update_weights=r > 0, ratio=r, ic_count=ic))
        return ResolvedScheme(scheme=self, layers=updates)


def resolve(scheme: UpdateScheme, graph) -> "ResolvedScheme":
    return scheme.resolve(graph)


def _paper_idx(v) -> list[int]:
    if isinstance(v, str):
        v = [p for p in v.replace(":", "-").split("-") if p.strip()]
    if isinstance(v, int):
        v = [v]
    try:
        return [_layer_index(p, "manual_weight_idx") for p in v]
    except TypeError:
        raise SchemeError(f"manual_weight_idx must be a list of layer indices, got {v!r}")


def _paper_ratios(v) -> list:
    if isinstance(v, str):
        v = [p for p in v.replace(":", "-").split("-") if p.strip()]
    if isinstance(v, (int, float)):
        v = [v]
    out = []
    for p in v:
        try:
            out.append(float(Fraction(p.strip())) if isinstance(p, str) else float(p))
        except (ValueError, TypeError, ZeroDivisionError):
            raise SchemeError(f"weight_update_ratio: {p!r} is not a number")
    return out


# ------------------------------------------------------------------------------------------ result

@dataclass(frozen=True)
class LayerUpdate:
    layer: Layer
    update_bias: bool     # for a layer without a bias tensor the compiler adds a zero bias
    update_weights: bool
    ratio: float          # 0 when the weights are frozen
    ic_count: int         # trainable input channels: first ceil(C * ratio), >= 1; 0 if frozen

    @property
    def trainable(self) -> bool:
        return self.update_bias or self.update_weights

    @property
    def trainable_weight_count(self) -> int:
        """Weight elements in the trainable slice."""
        if not self.update_weights:
            return 0
        total = math.prod(self.layer.weight_shape)
        return total * self.ic_count // self.layer.in_channels


@dataclass(frozen=True)
class ResolvedScheme:
    scheme: UpdateScheme
    layers: list[LayerUpdate]

    @property
    def classifier(self) -> int:
        return len(self.layers) - 1

    @property
    def n_layers(self) -> int:
        """Layers before the classifier (the N of 'biases of the last N layers')."""
        return len(self.layers) - 1

    @property
    def first_trainable(self) -> int:
        """The earliest layer with a trainable parameter: backward stops at its input."""
        return next(u.layer.index for u in self.layers if u.trainable)

    @property
    def first_trainable_op(self) -> int:
        return self.layers[self.first_trainable].layer.op_index

    def needs_input_grad(self, index: int) -> bool:
        """Whether layer ``index`` must pass a gradient to its input (an earlier layer trains)."""
        return index > self.first_trainable

    def bias_layers(self) -> list[int]:
        return [u.layer.index for u in self.layers if u.update_bias]

    def weight_layers(self) -> dict[int, float]:
        return {u.layer.index: u.ratio for u in self.layers if u.update_weights}

    def trainable_params(self) -> tuple[int, int]:
        """(weight elements, bias elements) updated per step."""
        w = sum(u.trainable_weight_count for u in self.layers)
        b = sum(u.layer.out_channels for u in self.layers if u.update_bias)
        return w, b

    def summary(self) -> str:
        lines = [f"{'layer':>5} {'op':>4} {'opcode':<18} {'in':>5} {'out':>5} bias weights"]
        for u in self.layers:
            if not u.trainable:
                continue
            L = u.layer
            w = f"{u.ic_count}/{L.in_channels} ch" if u.update_weights else "-"
            tag = " (classifier)" if L.index == self.classifier else ""
            lines.append(f"{L.index:>5} {L.op_index:>4} {L.opcode:<18} {L.in_channels:>5} "
                         f"{L.out_channels:>5} {'yes' if u.update_bias else '-':<4} {w}{tag}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------- published schemes

@dataclass(frozen=True)
class PublishedScheme:
    """A scheme from tiny-training (ANCHORS.md), in their form."""

    model: str
    budget: str                      # their analytic extra-memory estimate label, e.g. "49kb"
    n_bias_update: int
    manual_weight_idx: tuple[int, ...]
    weight_update_ratio: tuple[float, ...]

    def scheme(self) -> UpdateScheme:
        return UpdateScheme.paper(self.n_bias_update, self.manual_weight_idx,
                                  self.weight_update_ratio)


def _pub(model, budget, n, idx, ratios):
    return PublishedScheme(model, budget, n, tuple(idx),
                           tuple(float(r) for r in ratios) if ratios is not None
                           else (1.0,) * len(idx))


PUBLISHED_SCHEMES: tuple[PublishedScheme, ...] = (
    _pub("mcunet-5fps", "49kb", 20, [23, 24, 27, 30, 33, 39], [0, 0.25, 0.5, 0.5, 0, 0]),
    _pub("mcunet-5fps", "74kb", 21, [21, 23, 24, 26, 27, 30], [1, 0, 1, 0, 0.5, 1]),
    _pub("mcunet-5fps", "99kb", 22, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 0.125, 0.25]),
    _pub("mcunet-5fps", "124kb", 24, [21, 24, 27, 30, 33, 39], [0.25, 1, 1, 1, 0.5, 0.5]),
    _pub("mcunet-5fps", "148kb", 23, [21, 24, 27, 30, 36, 39], [1, 1, 1, 1, 1, 0.5]),
    _pub("mbv2-w0.35", "49kb", 16, [36, 39, 40, 41, 42, 45, 48, 49],
         [1, 1, 0, 0.25, 0.125, 0.125, 0.125, 0.125]),
    _pub("mbv2-w0.35", "99kb", 25, [27, 30, 33, 36, 39, 42, 45, 48],
         [1, 1, 1, 1, 1, 0.125, 0.5, 1]),
    _pub("mbv2-w0.35", "138kb", 34, [27, 30, 33, 36, 39, 42, 45, 48], None),
    _pub("proxyless-w0.3", "49kb", 21, [39, 42, 44, 45, 50, 51, 54, 57],
         [0.25, 1, 0, 1, 0, 0.125, 0.25, 0.25]),
    _pub("proxyless-w0.3", "98kb", 25, [36, 39, 42, 45, 48, 51, 54, 57],
         [1, 0.5, 1, 1, 0.25, 0.5, 1, 1]),
    _pub("proxyless-w0.3", "148kb", 45, [36, 39, 42, 45, 48, 51, 54, 57], None),
)

# Layers before the classifier in the three tiny-training models (counted from their .pkl files:
# first conv + inverted-residual blocks' pointwise/depthwise/pointwise convs, no feature-mix layer).
PUBLISHED_LAYER_COUNTS = {"mcunet-5fps": 42, "mbv2-w0.35": 51, "proxyless-w0.3": 60}


def published_scheme(model: str, budget: str) -> PublishedScheme:
    for p in PUBLISHED_SCHEMES:
        if p.model == model and p.budget == budget.lower():
            return p
    rows = ", ".join(f"{p.model}/{p.budget}" for p in PUBLISHED_SCHEMES)
    raise SchemeError(f"no published scheme {model}/{budget}; available: {rows}")


# ------------------------------------------------------------------------------------------ CLI

def _spec_error(text: str, detail: str = "") -> SchemeError:
    forms = "\n  ".join(SPEC_FORMS)
    return SchemeError(f"bad update scheme {text!r}{': ' + detail if detail else ''}. "
                       f"Accepted forms:\n  {forms}")


def _kv_pairs(body: str, text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in body.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise _spec_error(text, f"expected KEY=VALUE, got {part!r}")
        k, v = part.split("=", 1)
        pairs.append((k.strip().lower(), v.strip()))
    return pairs


def parse_spec(text: str) -> UpdateScheme:
    """Parse a command-line scheme spec (grammar in the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise _spec_error(str(text), "empty")
    s = text.strip()
    low = s.lower()
    try:
        if s.startswith("@"):
            return UpdateScheme.from_json(Path(s[1:]))
        if s.startswith("{"):
            return UpdateScheme.from_json(s)
        if low in ("classifier", "classifier-only"):
            return UpdateScheme.classifier_only()
        if low in ("bias", "bias-only"):
            return UpdateScheme.bias_only()
        if low == "full":
            return UpdateScheme.full()
        if low.startswith("last-"):
            k = low[5:]
            if not k.isdigit():
                raise _spec_error(text, f"last-K needs an integer K >= 0, got {k!r}")
            return UpdateScheme.last_k(int(k))
        kind, sep, body = s.partition(":")
        kind = kind.strip().lower()
        if sep and kind == "published":
            model, slash, budget = body.strip().partition("/")
            if not slash:
                raise _spec_error(text, "published needs MODEL/BUDGET")
            return published_scheme(model.strip(), budget.strip()).scheme()
        if sep and kind == "paper":
            kv = dict(_kv_pairs(body, text))
            unknown = set(kv) - {"n_bias", "idx", "ratio"}
            if unknown or "n_bias" not in kv:
                raise _spec_error(text, f"paper takes n_bias=N (required), idx=I:I:..., "
                                        f"ratio=R:R:...; got keys {sorted(kv)}")
            return UpdateScheme.paper(kv["n_bias"], kv.get("idx", ""), kv.get("ratio"))
        if sep and kind == "sparse":
            bias, weights = None, {}
            for k, v in _kv_pairs(body, text):
                if k == "bias":
                    bias = v
                elif k.isdigit():
                    if int(k) in weights:
                        raise _spec_error(text, f"layer {k} given twice")
                    weights[int(k)] = v
                else:
                    raise _spec_error(text, f"sparse takes bias=N and LAYER=RATIO pairs, got {k!r}")
            if bias is None:
                raise _spec_error(text, "sparse needs bias=N")
            return UpdateScheme.explicit(bias, weights)
    except SchemeError as e:
        if str(e).startswith("bad update scheme"):
            raise
        raise _spec_error(text, str(e)) from None
    raise _spec_error(text)
