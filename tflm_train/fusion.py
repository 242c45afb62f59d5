"""Compile-time fusion of frozen convolution chains into TT_FUSED_CHAIN (memory, not speed).

At 128×128 the forward peak of MobileNet-like models sits in the first blocks: the input
image plus a full-resolution expanded map. A chain of CONV_2D / DEPTHWISE_CONV_2D ops whose
intermediate maps feed only the next op, with constant weights (nothing trains or saves
there), runs row by row (``kernels/fused_chain.py``): the intermediates shrink to a few rows,
and the output overwrites the input as the input is consumed. Each maximal chain is split
where that lowers its local peak (a dynamic program over the split points), so an expanded
map's line buffer and the input image are never live together unless that is cheaper.
``unfuse`` restores the builtin ops (export of the plain inference model).
"""
from __future__ import annotations

import functools

import numpy as np
from flatbuffers import flexbuffers

from ai_edge_litert import schema_py_generated as schema

from . import ir
from .kernels.fused_chain import (CONV, DEPTHWISE, MAX_STAGES, FusedStage,
                                  fused_chain_in_place, fused_chain_scratch_size,
                                  fused_chain_validate)
from .ops import kernel_class
from .ops.fused_chain import STAGE_KEYS, stage_options

FUSED_CHAIN = "TT_FUSED_CHAIN"
_KINDS = {"CONV_2D": CONV, "DEPTHWISE_CONV_2D": DEPTHWISE}


def _stage(graph: ir.Graph, op: ir.Op) -> tuple[FusedStage, dict] | None:
    """The op as a chain stage, or None if it cannot be one."""
    if op.opcode not in _KINDS or len(op.outputs) != 1:
        return None
    g = graph
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    y = g.tensors[op.outputs[0]]
    if not w.is_constant or (b is not None and not b.is_constant) or x.is_constant:
        return None
    if len(x.shape) != 4 or x.shape[0] != 1 or x.dtype != np.int8 or y.dtype != np.int8:
        return None
    if op.opcode == "CONV_2D" and int(w.shape[3]) != int(x.shape[3]):
        return None   # grouped convolution: not streamed
    k = kernel_class(op.opcode)(g, op)
    p = k.params
    kind = _KINDS[op.opcode]
    o = {"kind": kind, "stride_h": p.stride_h, "stride_w": p.stride_w,
         "dilation_h": p.dilation_h, "dilation_w": p.dilation_w, "pad_h": p.pad_h,
         "pad_w": p.pad_w, "depth_multiplier": getattr(p, "depth_multiplier", 1),
         "input_offset": p.input_offset, "output_offset": p.output_offset,
         "act_min": p.activation[0], "act_max": p.activation[1],
         "h": y.shape[1], "w": y.shape[2], "c": y.shape[3],
         "padding": op.options.get("padding", 0),
         "activation": op.options.get("fused_activation_function", 0)}
    stage = FusedStage(kind, p, k.quant, int(w.shape[1]), int(w.shape[2]),
                       tuple(int(v) for v in y.shape[1:]))
    if fused_chain_validate([stage], x.shape):
        return None
    return stage, o


def _chains(graph: ir.Graph) -> list[list[int]]:
    """Maximal runs of consecutive stage ops where each output feeds only the next op."""
    consumers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(t, []).append(op.index)
    outputs = set(graph.outputs)
    chains, cur = [], []
    for op in graph.ops:
        ok = _stage(graph, op) is not None
        if ok and cur:
            prev = graph.ops[cur[-1]]
            t = prev.outputs[0]
            if prev.index == op.index - 1 and op.inputs[0] == t and consumers.get(t) == [op.index] \
                    and t not in outputs:
                cur.append(op.index)
                continue
        if cur:
            chains.append(cur)
        cur = [op.index] if ok else []
    if cur:
        chains.append(cur)
    return chains


def plan_chains(graph: ir.Graph) -> list[list[int]]:
    """Segments to fuse (op index lists), chosen per maximal chain to minimise its local peak
    (then the number of segments). A single op is left as it is."""
    consumers: dict[int, int] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                consumers[t] = consumers.get(t, 0) + 1
    outputs = set(graph.outputs)
    stages = {i: _stage(graph, graph.ops[i])[0] for c in _chains(graph) for i in c}
    result = []
    for chain in _chains(graph):
        def cost(a: int, b: int) -> tuple[int, bool]:
            """(local peak, fused) of ops chain[a..b]."""
            ops = chain[a:b + 1]
            x = graph.tensors[graph.ops[ops[0]].inputs[0]]
            y = graph.tensors[graph.ops[ops[-1]].outputs[0]]
            sx, sy = x.nbytes, y.nbytes
            st = [stages[i] for i in ops]
            if len(ops) == 1:
                return sx + sy, False   # a single op runs as itself
            scratch = fused_chain_scratch_size(st)
            dies = consumers.get(x.index, 0) == 1 and x.index not in outputs
            if dies and fused_chain_in_place(st, x.shape):
                return max(sx, sy) + scratch, True
            return sx + sy + scratch, True

        @functools.lru_cache(maxsize=None)
        def best(a: int) -> tuple[tuple[int, int], tuple[int, ...]]:
            """Best split of chain[a:]: ((peak, segments), segment ends)."""
            if a == len(chain):
                return (0, 0), ()
            options = []
            for b in range(a, min(len(chain), a + MAX_STAGES)):
                c, _ = cost(a, b)
                (rest, n), ends = best(b + 1)
                options.append(((max(c, rest), n + 1), (b,) + ends))
            return min(options)

        a = 0
        for b in best(0)[1]:
            if b > a:
                result.append(chain[a:b + 1])
            a = b + 1
    return result


def fuse(model: schema.ModelT) -> int:
    """Replace the chosen chains of subgraph 0 by TT_FUSED_CHAIN ops; returns how many."""
    from .compiler import _ModelEditor

    graph = ir.from_model(model)
    segments = plan_chains(graph)
    if not segments:
        return 0
    ed = _ModelEditor(model)
    sg = ed.sg
    first = {seg[0]: seg for seg in segments}
    skip = {i for seg in segments for i in seg[1:]}
    new_ops = []
    for i, op in enumerate(sg.operators):
        if i in skip:
            continue
        if i not in first:
            new_ops.append(op)
            continue
        seg = first[i]
        inputs = [int(graph.ops[seg[0]].inputs[0])]
        opts = {"stages": len(seg)}
        inter = []
        for k, j in enumerate(seg):
            gop = graph.ops[j]
            stage, o = _stage(graph, gop)
            w = gop.inputs[1]
            b = gop.inputs[2] if len(gop.inputs) > 2 else -1
            name = graph.tensors[w].name
            mult = ed.tensor(f"fused/{name}/mult", (len(stage.quant.multiplier),), np.int32,
                             data=np.asarray(stage.quant.multiplier, np.int32))
            shift = ed.tensor(f"fused/{name}/shift", (len(stage.quant.shift),), np.int32,
                              data=np.asarray(stage.quant.shift, np.int32))
            inputs += [int(w), int(b), mult, shift]
            opts.update(stage_options(k, o))
            if k < len(seg) - 1:
                t = gop.outputs[0]
                sg.tensors[t].shape = np.array([0], dtype=np.int32)  # quantization carrier
                inter.append(int(t))
        y = graph.ops[seg[-1]].outputs[0]
        scratch = ed.tensor(f"scratch/fused/{graph.tensors[y].name}",
                            (fused_chain_scratch_size([_stage(graph, graph.ops[j])[0]
                                                       for j in seg]),), np.int8)
        fop = ed.custom_op(FUSED_CHAIN, inputs, [int(y), scratch], opts)
        fop.intermediates = np.array(inter, dtype=np.int32)
        new_ops.append(fop)
    sg.operators = new_ops
    return len(segments)


def unfuse(model: schema.ModelT) -> None:
    """Turn every TT_FUSED_CHAIN op of subgraph 0 back into its builtin ops, in place."""
    from .compiler import _ModelEditor
    from . import tflite_io

    ed = _ModelEditor(model)
    sg = ed.sg
    out = []
    for op in sg.operators:
        if tflite_io.opcode_name(model, op.opcodeIndex) != f"CUSTOM:{FUSED_CHAIN}":
            out.append(op)
            continue
        o = flexbuffers.Loads(bytes(op.customOptions))
        n = int(o["stages"])
        inter = [int(t) for t in op.intermediates]
        x = int(op.inputs[0])
        for k in range(n):
            s = {key: int(o[f"s{k}_{key}"]) for key in STAGE_KEYS}
            if k < n - 1:
                y = inter[k]
                sg.tensors[y].shape = np.array([1, s["h"], s["w"], s["c"]], dtype=np.int32)
            else:
                y = int(op.outputs[0])
            w, b = int(op.inputs[1 + 4 * k]), int(op.inputs[2 + 4 * k])
            new = schema.OperatorT()
            if s["kind"] == CONV:
                new.opcodeIndex = ed.opcode(builtin=schema.BuiltinOperator.CONV_2D)
                opt = schema.Conv2DOptionsT()
                new.builtinOptionsType = schema.BuiltinOptions.Conv2DOptions
            else:
                new.opcodeIndex = ed.opcode(builtin=schema.BuiltinOperator.DEPTHWISE_CONV_2D)
                opt = schema.DepthwiseConv2DOptionsT()
                opt.depthMultiplier = s["depth_multiplier"]
                new.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
            opt.padding = s["padding"]
            opt.strideH, opt.strideW = s["stride_h"], s["stride_w"]
            opt.dilationHFactor, opt.dilationWFactor = s["dilation_h"], s["dilation_w"]
            opt.fusedActivationFunction = s["activation"]
            new.builtinOptions = opt
            new.inputs = np.array([x, w, b] if b >= 0 else [x, w], dtype=np.int32)
            new.outputs = np.array([y], dtype=np.int32)
            out.append(new)
            x = y
    sg.operators = out


__all__ = ["FUSED_CHAIN", "plan_chains", "fuse", "unfuse"]
