"""Memory report of a training graph: peak SRAM (planned arena + SRAM-resident parameters +
training state + engine bookkeeping) and flash, by category and by layer, with a plot."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .planner import plan
from .schemes import trainable_layers

CATEGORIES = ("activations", "saved activations", "masks", "gradients", "scratch")


def category(name: str) -> str:
    for prefix, cat in (("grad/", "gradients"), ("grad_exp/", "gradients"), ("mask/", "masks"),
                        ("saved/", "saved activations"), ("scratch/", "scratch")):
        if name.startswith(prefix):
            return cat
    return "activations"


@dataclass
class MemoryReport:
    arena: int                  # planned region: activations, gradients, masks, scratch
    parameters: int             # trainable weights and biases held in SRAM (variables)
    state: int                  # training state (lr, PRNG) and momentum velocities
    engine: int | None          # C engine bookkeeping (its tables, op data); None if unknown
    flash: int                  # the model file (frozen weights, graph, constants)
    peak_op: int                # op with the most live planned bytes
    at_peak: dict = field(default_factory=dict)      # category → live bytes at peak_op
    by_layer: list = field(default_factory=list)     # per trainable layer: SRAM parameter bytes
    live_per_op: list = field(default_factory=list)  # live planned bytes after each op

    @property
    def peak_sram(self) -> int:
        return self.arena + self.parameters + self.state + (self.engine or 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_sram"] = self.peak_sram
        return d

    def format(self, budget: int | None = None) -> str:
        kb = lambda n: f"{n / 1024:8.1f} KB"  # noqa: E731
        lines = [
            f"peak SRAM            {kb(self.peak_sram)}"
            + (f"   (budget {budget / 1024:.0f} KB: "
               f"{'fits' if self.peak_sram <= budget else 'OVER'})" if budget else ""),
            f"  planned arena      {kb(self.arena)}",
        ]
        for c in CATEGORIES:
            if self.at_peak.get(c):
                lines.append(f"    {c:<17}{kb(self.at_peak[c])}   (live at op {self.peak_op})")
        lines += [f"  trainable params   {kb(self.parameters)}",
                  f"  training state     {kb(self.state)}   (lr, PRNG, momentum velocities)",
                  f"  engine bookkeeping {kb(self.engine) if self.engine is not None else '     n/a'}",
                  f"flash                {kb(self.flash)}"]
        if self.by_layer:
            lines.append("trainable layers (SRAM bytes): "
                         + ", ".join(f"{d['layer']}:{d['op']}={d['bytes']}" for d in self.by_layer))
        return "\n".join(lines)

    def plot(self, path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
        a1.plot(np.arange(len(self.live_per_op)), np.array(self.live_per_op) / 1024, lw=1.5)
        a1.axvline(self.peak_op, color="tab:red", ls="--", lw=1)
        a1.set_xlabel("op (execution order: forward, loss, backward)")
        a1.set_ylabel("live planned KB")
        a1.set_title("planned arena over one training step")
        parts = {"arena": self.arena, "parameters": self.parameters, "state": self.state,
                 "engine": self.engine or 0}
        bottom = 0.0
        for k, v in parts.items():
            a2.bar([0], [v / 1024], bottom=bottom, label=k)
            bottom += v / 1024
        a2.set_xticks([])
        a2.set_ylabel("KB")
        a2.set_title(f"peak SRAM {self.peak_sram / 1024:.1f} KB")
        a2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def memory_report(trainable, engine_bytes: int | None = -1) -> MemoryReport:
    """Report for a TrainableModel. ``engine_bytes`` = -1 asks the C engine (if built) for its
    bookkeeping bytes: everything in its arena but the planned region, the trainable
    parameters and the training state (its tables and op data, alignment, and the planner's
    creation-time memory where it exceeds the planned region). The engine's arena layout has
    no pointers, so this is the Cortex-M figure too. Pass None to skip."""
    g = trainable.graph
    p = plan(g)
    n_ops = len(g.ops)
    live = []
    for k in range(n_ops):
        by_root: dict[int, int] = {}   # in-place groups count their largest live member
        for t in p.live_at(k):
            r = p.alias.get(t, t)
            by_root[r] = max(by_root.get(r, 0), p.sizes[t])
        live.append(int(sum(by_root.values())))
    peak_op = int(np.argmax(live)) if live else 0
    at_peak: dict[str, int] = {}
    for t in p.live_at(peak_op):
        c = category(g.tensors[t].name)
        at_peak[c] = at_peak.get(c, 0) + p.sizes[t]
    params = sum(g.tensors[i].nbytes for i in trainable.parameter_indices())
    state = g.tensors[trainable.tensor_index("tt_state")].nbytes + sum(
        g.tensors[i].nbytes for i in trainable.optimizer_state_indices())
    by_layer = []
    var = set(trainable.parameter_indices())
    for L in trainable_layers(g):
        b = sum(g.tensors[i].nbytes for i in (L.weight, L.bias) if i is not None and i in var)
        if b:
            by_layer.append({"layer": L.index, "op": L.opcode, "bytes": int(b)})
    engine = None
    if engine_bytes == -1:
        try:
            from .engine_c import CEngine
            e = CEngine(trainable.bytes)
            engine = int(e.arena_bytes) - int(e.planned_bytes) - params - state
        except Exception:  # the C library may be unbuilt; the report still stands
            engine = None
    elif engine_bytes is not None:
        engine = int(engine_bytes)
    return MemoryReport(arena=int(p.peak), parameters=int(params), state=int(state),
                        engine=engine, flash=len(trainable.bytes), peak_op=peak_op,
                        at_peak=at_peak, by_layer=by_layer, live_per_op=live)
