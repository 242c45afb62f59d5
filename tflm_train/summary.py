"""Model summary for ``tflm-train inspect``: ops, parameters, MACs, inference arena."""
from __future__ import annotations

import numpy as np

from .ir import Graph
from .schemes import SPLIT_OPCODES

_OPTION_KEYS = ("padding", "stride_h", "stride_w", "dilation_h_factor", "dilation_w_factor",
                "depth_multiplier", "filter_height", "filter_width", "fused_activation_function",
                "keep_dims", "beta")
_PADDING = {0: "SAME", 1: "VALID"}
_ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT", 6: "SIGMOID"}


def op_macs(graph: Graph, op) -> int:
    """Multiply-accumulates of one op (conv, depthwise, fully connected, also with a split
    filter, and the stages of a fused chain; 0 for the rest)."""
    if op.opcode == "CUSTOM:TT_FUSED_CHAIN":
        return _fused_chain_macs(graph, op)
    opcode = SPLIT_OPCODES.get(op.opcode, op.opcode)
    if opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(op.inputs) < 2:
        return 0
    out = graph.tensors[op.outputs[0]]
    shape = graph.tensors[op.inputs[1]].shape
    if op.opcode in SPLIT_OPCODES:  # the whole filter: slice + rest along the last axis
        shape = shape[:-1] + (shape[-1] + graph.tensors[op.inputs[2]].shape[-1],)
    n_out = int(np.prod(out.shape, dtype=np.int64))
    if opcode == "CONV_2D":
        return n_out * int(np.prod(shape[1:], dtype=np.int64))
    if opcode == "DEPTHWISE_CONV_2D":
        return n_out * int(shape[1] * shape[2])
    return n_out * int(shape[-1])


def grad_op_macs(graph: Graph, op) -> int:
    """Multiply-accumulates of one MAC gradient op (TT_*_GRAD): the weight gradient of its
    trainable channels (when it updates weights) + the input gradient (when it has that
    output); 0 for any other op."""
    from flatbuffers import flexbuffers

    kind = op.opcode.removeprefix("CUSTOM:")
    if kind not in ("TT_CONV_2D_GRAD", "TT_DEPTHWISE_CONV_2D_GRAD", "TT_FULLY_CONNECTED_GRAD"):
        return 0
    opts = flexbuffers.Loads(op.custom_options) if op.custom_options else {}
    shape = graph.tensors[op.inputs[4]].shape
    if len(op.inputs) > 15 and op.inputs[15] >= 0:  # split filter: + its frozen rest
        shape = shape[:-1] + (shape[-1] + graph.tensors[op.inputs[15]].shape[-1],)
    n_out = int(np.prod(graph.tensors[op.inputs[0]].shape, dtype=np.int64))
    if kind == "TT_CONV_2D_GRAD":
        per_out, cin = int(np.prod(shape[1:3])), int(shape[3])
        full = n_out * per_out * cin
        wgrad = n_out * per_out * int(opts.get("channels", cin))
    elif kind == "TT_DEPTHWISE_CONV_2D_GRAD":
        full = n_out * int(shape[1] * shape[2])
        wgrad = full * int(opts.get("channels", shape[3])) // int(shape[3])
    else:
        cin = int(shape[-1])
        full = n_out * cin
        wgrad = n_out * int(opts.get("channels", cin))
    has_input_grad = len(op.outputs) and op.outputs[0] >= 0
    return (wgrad if opts.get("update_weights") else 0) + (full if has_input_grad else 0)


def _fused_chain_macs(graph: Graph, op) -> int:
    """Sum over the chain's stages: stage k's output is [h, w, c] (its options), its filter
    input 1 + 4k (conv [Co, kh, kw, Ci], depthwise [1, kh, kw, C])."""
    from flatbuffers import flexbuffers

    from .kernels.fused_chain import CONV

    o = flexbuffers.Loads(bytes(op.custom_options))
    total = 0
    for k in range(int(o["stages"])):
        n_out = int(o[f"s{k}_h"]) * int(o[f"s{k}_w"]) * int(o[f"s{k}_c"])
        shape = graph.tensors[op.inputs[1 + 4 * k]].shape
        per_out = int(shape[1] * shape[2]) * (int(shape[3]) if int(o[f"s{k}_kind"]) == CONV else 1)
        total += n_out * per_out
    return total


def _options_text(opts: dict) -> str:
    parts = []
    for k in _OPTION_KEYS:
        if k not in opts:
            continue
        v = opts[k]
        if k in ("dilation_h_factor", "dilation_w_factor", "depth_multiplier") and v == 1:
            continue
        if k == "padding":
            v = _PADDING.get(v, v)
        elif k == "fused_activation_function":
            if v == 0:
                continue
            k, v = "act", _ACT.get(v, v)
        parts.append(f"{k}={v}")
    return " ".join(parts)


def summarize(graph: Graph, arena_bytes: int | None = None) -> dict:
    """JSON-serialisable description of the model."""
    ops = []
    const_ids = set()
    for op in graph.ops:
        params = 0
        for i in op.inputs:
            if i >= 0 and graph.tensors[i].is_parameter and op.opcode not in ("RESHAPE", "MEAN",
                                                                             "PAD"):
                params += int(np.prod(graph.tensors[i].shape, dtype=np.int64))
                const_ids.add(i)
        out = graph.tensors[op.outputs[0]] if op.outputs else None
        ops.append({
            "index": op.index, "op": op.opcode,
            "output_shape": list(out.shape) if out is not None else [],
            "params": params, "macs": op_macs(graph, op),
            "options": _options_text(op.options),
        })
    flash = sum(graph.tensors[i].nbytes for i in const_ids)
    io = []
    for kind, idxs in (("input", graph.inputs), ("output", graph.outputs)):
        for i in idxs:
            t = graph.tensors[i]
            io.append({"kind": kind, "name": t.name, "shape": list(t.shape), "dtype": t.dtype.name,
                       "scale": t.scale if t.quant is not None else None,
                       "zero_point": t.zero_point if t.quant is not None else None})
    return {
        "ops": ops, "io": io,
        "num_ops": len(ops),
        "params": sum(o["params"] for o in ops),
        "param_bytes": int(flash),
        "macs": sum(o["macs"] for o in ops),
        "arena_bytes": arena_bytes,
    }


def format_summary(s: dict, name: str = "") -> str:
    lines = []
    if name:
        lines.append(f"model: {name}")
    for d in s["io"]:
        q = f" scale={d['scale']:.6g} zero_point={d['zero_point']}" if d["scale"] is not None else ""
        lines.append(f"{d['kind']:>6}: {d['name']} {d['dtype']} {d['shape']}{q}")
    lines.append(f"{'#':>3}  {'op':<18} {'output':<18} {'params':>8} {'MACs':>10}  options")
    for o in s["ops"]:
        lines.append(f"{o['index']:>3}  {o['op']:<18} {str(o['output_shape']):<18} "
                     f"{o['params']:>8} {o['macs']:>10}  {o['options']}")
    lines.append(f"ops: {s['num_ops']}   parameters: {s['params']} ({s['param_bytes']} bytes in "
                 f"flash)   MACs per inference: {s['macs']}")
    if s.get("arena_bytes") is not None:
        lines.append(f"inference arena (C engine): {s['arena_bytes']} bytes "
                     f"({s['arena_bytes'] / 1024:.1f} KiB)")
    return "\n".join(lines)
