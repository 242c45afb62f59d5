"""Memory planner: tensor lifetimes over op order → arena offsets (peak SRAM of the graph).

Every non-constant, non-variable tensor of subgraph 0 gets an offset: graph inputs live from
the start, graph outputs to the end, every other tensor from the op that writes it to the last
op that reads it. Placement is greedy (largest first, lowest 16-byte-aligned offset that does
not overlap a tensor whose lifetime overlaps). A RESHAPE output shares its input's memory when
the input dies there; so does a TT_FUSED_CHAIN output whose row schedule allows it (the
input, even the graph's image, is overwritten as it is consumed). The plan is written as TFLM's ``OfflineMemoryAllocation`` metadata, so
the C engine (and TFLM) use these very offsets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Graph

ALIGN = 16
OFFLINE_PLAN_NAME = "OfflineMemoryAllocation"


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Plan:
    offsets: dict[int, int]            # tensor index → arena offset
    sizes: dict[int, int]              # tensor index → bytes
    lifetimes: dict[int, tuple[int, int]]
    peak: int                          # bytes of the planned region
    alias: dict[int, int]              # RESHAPE output → the tensor whose memory it shares

    def live_at(self, op_index: int) -> list[int]:
        return [t for t, (a, b) in self.lifetimes.items() if a <= op_index <= b]

    def offline_allocation(self, num_tensors: int) -> np.ndarray:
        """TFLM's OfflineMemoryAllocation buffer: [version 0, subgraph 0, n, offset or -1...]."""
        arr = np.full(3 + num_tensors, -1, dtype=np.int32)
        arr[0], arr[1], arr[2] = 0, 0, num_tensors
        for t, off in self.offsets.items():
            arr[3 + t] = off
        return arr


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    n_ops = len(graph.ops)
    life: dict[int, list[int]] = {}
    planned = {t.index for t in graph.tensors if t.data is None and not t.is_variable}
    for i in graph.inputs:
        if i in planned:
            life[i] = [0, 0]
    for k, op in enumerate(graph.ops):
        for i in list(op.inputs) + list(op.outputs):
            if i in planned:
                a, b = life.get(i, [k, k])
                life[i] = [min(a, k), max(b, k)]
    for i in graph.outputs:
        if i in life:
            life[i][1] = max(n_ops - 1, life[i][1])
    return {t: (a, b) for t, (a, b) in life.items()}


def _streams_in_place(graph: Graph, op) -> bool:
    from .kernels.fused_chain import fused_chain_in_place
    from .ops.fused_chain import FusedChain

    return fused_chain_in_place(FusedChain(graph, op).stages, graph.tensors[op.inputs[0]].shape)


def plan(graph: Graph) -> Plan:
    life = lifetimes(graph)
    sizes = {t: graph.tensors[t].nbytes for t in life}
    io = set(graph.inputs) | set(graph.outputs)
    # RESHAPE in place: output shares the input's buffer when the input dies at the reshape.
    alias: dict[int, int] = {}
    for k, op in enumerate(graph.ops):
        if op.opcode == "RESHAPE" and op.inputs and op.outputs:
            x, y = op.inputs[0], op.outputs[0]
            if x in life and y in life and life[x][1] == k and x not in io and y not in io \
                    and x not in alias.values():
                alias[y] = x
    # ADD element-wise in place: output over input 0 when input 0 dies there and nothing is
    # broadcast (element k is read before it is written; the C engine's ADD allows it).
    for k, op in enumerate(graph.ops):
        if op.opcode == "ADD" and len(op.inputs) == 2 and op.outputs:
            x, y = op.inputs[0], op.outputs[0]
            shapes = {tuple(graph.tensors[i].shape) for i in (*op.inputs, y)}
            if x in life and y in life and life[x][1] == k and x not in io and y not in io \
                    and len(shapes) == 1 and x not in alias.values() and x != op.inputs[1]:
                alias[y] = x
    # A fused chain streams its input: its output may take the input's memory (even the
    # graph input's: the image is consumed) when the row schedule allows it.
    for k, op in enumerate(graph.ops):
        if op.opcode == "CUSTOM:TT_FUSED_CHAIN" and op.inputs and op.outputs:
            x, y = op.inputs[0], op.outputs[0]
            if x in life and y in life and life[x][1] == k and x not in graph.outputs \
                    and x not in alias.values() and _streams_in_place(graph, op):
                alias[y] = x
    root = {}
    for t in life:
        r = t
        while r in alias:
            r = alias[r]
        root[t] = r
    groups: dict[int, list[int]] = {}
    for t, r in root.items():
        groups.setdefault(r, []).append(t)
    g_life = {r: (min(life[t][0] for t in ts), max(life[t][1] for t in ts))
              for r, ts in groups.items()}
    g_size = {r: max(_align(sizes[t]) for t in ts) for r, ts in groups.items()}

    def place(order):
        # Members of a group share its offset but keep their own sizes and lifetimes, so a
        # group whose image shrinks (a streamed chain's output inside its input) frees the rest.
        placed: list[tuple[int, int, int, int]] = []   # (offset, size, first, last) per member
        g_off: dict[int, int] = {}
        for r in order:
            members = [(_align(sizes[t]), life[t][0], life[t][1]) for t in groups[r]]
            clash = [(o, s, m) for o, s, fa, fb in placed for m in members
                     if not (fb < m[1] or fa > m[2])]
            off = 0
            for cand in sorted({0} | {_align(o + s) for o, s, _ in clash}):
                if all(cand + m[0] <= o or cand >= o + s for o, s, m in clash):
                    off = cand
                    break
            g_off[r] = off
            placed.extend((off, size, fa, fb) for size, fa, fb in members)
        return max((o + s for o, s, _, _ in placed), default=0), g_off

    # Greedy first fit in a few orders, keep the lowest peak: largest first (TFLM's order),
    # largest size x lifetime first, longest-lived first (a tiny tensor live for the whole
    # step, e.g. the label, must not end up on top of everything), and in order of birth.
    orders = [sorted(groups, key=lambda r: (-g_size[r], g_life[r][0], r)),
              sorted(groups, key=lambda r: (-g_size[r] * (g_life[r][1] - g_life[r][0] + 1),
                                            g_life[r][0], r)),
              sorted(groups, key=lambda r: (g_life[r][0] - g_life[r][1], -g_size[r], r)),
              sorted(groups, key=lambda r: (g_life[r][0], -g_size[r], r))]
    peak, g_off = min((place(o) for o in orders), key=lambda pg: pg[0])
    offsets = {t: g_off[root[t]] for t in life}
    return Plan(offsets, sizes, life, peak, root)


def check_no_overlap(p: Plan) -> None:
    """Raise if two tensors with overlapping lifetimes overlap in memory (aliases excepted)."""
    items = sorted(p.offsets)
    for i, t in enumerate(items):
        a0, a1 = p.lifetimes[t]
        for u in items[i + 1:]:
            b0, b1 = p.lifetimes[u]
            if a1 < b0 or b1 < a0 or p.alias.get(t, t) == p.alias.get(u, u):
                continue
            if p.offsets[t] < p.offsets[u] + p.sizes[u] and p.offsets[u] < p.offsets[t] + p.sizes[t]:
                raise AssertionError(f"tensors {t} and {u} overlap while both live")
