"""Cut an int8 graph at one activation tensor into a prefix model and a suffix model.

Training with a frozen prefix only ever runs the prefix forward, so its output at the cut is a
pure function of the image: compute it once per image (``prefix``, a plain int8 model whose
output is the cut tensor), then train ``suffix`` (a plain int8 model whose input is the cut
tensor) on those cached activations. Both are the original ops, tensors, quantization and
buffers, in the original order, so ``convert(suffix, scheme_for_suffix(...))`` trained on the
cached activations gives the same losses and parameters, bit for bit, as ``convert(model,
scheme)`` trained on the images (tests/test_split.py).

A cut position k (ops[:k] | ops[k:]) is valid when exactly one activation tensor crosses it:
produced before k (or a graph input) and read at or after k. Cutting inside a residual block
would need the block input too, so ``cut_before_layer`` walks back to the block boundary; the
frozen ops between the cut and the first trainable layer stay in the suffix (forward only).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from . import ir, tflite_io
from .errors import TflmTrainError
from .schemes import UpdateScheme, trainable_layers


def _graph(model) -> ir.Graph:
    if isinstance(model, ir.Graph):
        return model
    return ir.load(model)


def _producers(graph: ir.Graph) -> dict[int, int]:
    return {t: op.index for op in graph.ops for t in op.outputs}


def crossing_tensors(graph: ir.Graph, k: int) -> list[int]:
    """Activation tensors live across position k: produced by ops[:k] (or a graph input) and
    read by ops[k:] or a graph output."""
    if not 0 <= k <= len(graph.ops):
        raise ValueError(f"cut position {k} outside 0..{len(graph.ops)}")
    before = set(graph.inputs) | {t for op in graph.ops[:k] for t in op.outputs}
    after = {t for op in graph.ops[k:] for t in op.inputs if t >= 0} | set(graph.outputs)
    return sorted(t for t in before & after if not graph.tensors[t].is_parameter)


def cut_before_layer(graph: ir.Graph, layer: int) -> int:
    """The tensor of the latest valid cut at or before the input of layer ``layer`` (layer
    numbering of ``schemes.trainable_layers``)."""
    layers = trainable_layers(graph)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer {layer} does not exist; the graph has layers 0..{len(layers) - 1}")
    for k in range(layers[layer].op_index, -1, -1):
        crossing = crossing_tensors(graph, k)
        if len(crossing) == 1:
            return crossing[0]
    raise TflmTrainError(f"no single-tensor cut before {layers[layer].describe()}")


def blocks(graph: ir.Graph) -> list[list[int]]:
    """Layer indices grouped into inverted-residual blocks (classifier excluded): a block ends
    at the first CONV_2D after a DEPTHWISE_CONV_2D (its projection); layers before the first
    depthwise (the stem) join the first block."""
    out, cur, seen_dw = [], [], False
    for L in trainable_layers(graph)[:-1]:
        cur.append(L.index)
        if L.is_depthwise:
            seen_dw = True
        elif seen_dw and L.opcode == "CONV_2D":
            out.append(cur)
            cur, seen_dw = [], False
    if cur:
        out.append(cur)
    return out


def last_blocks_scheme(graph: ir.Graph, k: int) -> UpdateScheme:
    """Weights and biases of the layers of the last k blocks, plus the classifier (the paper's
    "last two blocks" setting is k = 2)."""
    bl = blocks(graph)
    if not 1 <= k <= len(bl):
        raise ValueError(f"k={k}: the graph has {len(bl)} blocks")
    return UpdateScheme.last_k(sum(len(b) for b in bl[-k:]))


@dataclass
class Split:
    """A model cut at tensor ``cut``: ``prefix`` (image → cut tensor, None when the cut is
    the model input) and ``suffix`` (cut tensor → the model's outputs), both .tflite bytes."""

    prefix: bytes | None
    suffix: bytes
    cut: int              # index of the cut tensor in the source graph
    cut_name: str
    position: int         # first op of the suffix (source op index)
    layers_before: int    # CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops in the prefix
    layers_total: int

    def scheme(self, scheme) -> UpdateScheme:
        """The update scheme of the whole model, renumbered for the suffix; an error if it
        trains any parameter of the prefix."""
        from .trainable import _scheme

        scheme = _scheme(scheme)
        n = self.layers_total - 1
        bias_n = n if scheme.bias_last == "all" else int(scheme.bias_last)
        weights_k = n if scheme.weights_last == "all" else int(scheme.weights_last)
        if not 0 <= weights_k <= bias_n <= n:
            raise TflmTrainError(f"scheme {scheme.to_json()} does not fit a model with {n} "
                                 f"layers before the classifier")
        weights = {i: 1.0 for i in range(n - weights_k, n)}
        weights.update(scheme.weights)
        first = min([n - bias_n] + list(weights))
        if first < self.layers_before:
            raise TflmTrainError(
                f"scheme trains layer {first}, which is in the prefix: the cut at tensor "
                f"{self.cut} '{self.cut_name}' leaves layers {self.layers_before}..{n} in the "
                f"suffix")
        return UpdateScheme.explicit(bias_n, {i - self.layers_before: r
                                              for i, r in weights.items() if i != n})


def _submodel(model, ops: list[int], inputs: list[int], outputs: list[int]) -> bytes:
    """The source model restricted to ``ops`` with the given graph inputs and outputs; unused
    tensors, buffers and operator codes dropped, metadata and signatures too (they name tensor
    indices of the source)."""
    from .trainable import _prune

    m = copy.deepcopy(model)
    sg = m.subgraphs[0]
    sg.operators = [sg.operators[i] for i in ops]
    sg.inputs = np.array(inputs, dtype=np.int32)
    sg.outputs = np.array(outputs, dtype=np.int32)
    _prune(m)
    m.metadata = None
    m.signatureDefs = None
    return tflite_io.write_model(m)


def split_at(model, tensor: int | str) -> Split:
    """Cut ``model`` (path, bytes or Graph, one subgraph) right after the op producing
    ``tensor`` (index or name). Raises when another activation also crosses that point."""
    graph = _graph(model)
    src = graph.model
    if src is None or len(src.subgraphs) != 1:
        raise TflmTrainError("split_at needs a single-subgraph model")
    if isinstance(tensor, str):
        names = [t.index for t in graph.tensors if t.name == tensor]
        if not names:
            raise KeyError(f"model has no tensor named {tensor!r}")
        tensor = names[0]
    if not 0 <= tensor < len(graph.tensors) or graph.tensors[tensor].is_parameter:
        raise TflmTrainError(f"tensor {tensor} is not an activation of the model")
    producer = _producers(graph).get(tensor)
    if producer is None and tensor not in graph.inputs:
        raise TflmTrainError(f"tensor {tensor} '{graph.tensors[tensor].name}' is neither a "
                             f"graph input nor produced by an op")
    k = 0 if producer is None else producer + 1
    crossing = crossing_tensors(graph, k)
    if crossing != [tensor]:
        others = [f"{t} '{graph.tensors[t].name}'" for t in crossing if t != tensor]
        raise TflmTrainError(
            f"cannot cut after op {k - 1} at tensor {tensor} '{graph.tensors[tensor].name}': "
            f"{', '.join(others)} also crosses the cut (a residual branch?); cut at a block "
            f"boundary (cut_before_layer finds one)")
    if len(graph.inputs) != 1:
        raise TflmTrainError(f"split_at needs a model with one input, this one has "
                             f"{len(graph.inputs)}")
    layers = trainable_layers(graph)
    before = sum(1 for L in layers if L.op_index < k)
    prefix = (_submodel(src, list(range(k)), list(graph.inputs), [tensor]) if k else None)
    suffix = _submodel(src, list(range(k, len(graph.ops))), [tensor], list(graph.outputs))
    return Split(prefix=prefix, suffix=suffix, cut=tensor, cut_name=graph.tensors[tensor].name,
                 position=k, layers_before=before, layers_total=len(layers))


__all__ = ["Split", "blocks", "crossing_tensors", "cut_before_layer", "last_blocks_scheme",
           "split_at"]
