"""The paper's three models: our training SRAM and flash vs the paper's figures, and vs one fp32
training step in PyTorch and in TensorFlow.

Models: tiny-training's int8 pickles in ../shared/models/mit (MCUNet-5FPS, MobileNetV2-w0.35,
ProxylessNAS-w0.3), imported with a new 10-class head (``import_mit(pkl, num_classes=10)``),
128x128x3 input, batch 1. Schemes per model: its published sparse-update schemes
(``published:MODEL/BUDGET``), bias-only (every bias + the classifier), last-2-blocks (weights
and biases of the layers of the last two inverted-residual blocks + the classifier) and full.

Ours (computed live by ``tt.convert(...).memory_report()``): peak SRAM = planned arena +
trainable parameters held in SRAM + training state + C engine bookkeeping; flash = the
.train.tflite file. Plain SGD as on the device; "ours SGD-M" adds momentum 0.9 (a Q16.16
velocity per trainable element), the optimizer of the fp32 baselines. 1 KB = 1024 B.

Paper (ANCHORS.md; Lin et al. 2022, STM32F746): "sparse -> +reorder" is their sparse update
without and with operator reordering; a model's 99kb-class scheme (mcunet-5fps/99kb,
mbv2-w0.35/99kb, proxyless-w0.3/98kb) is compared with its headline figures (560 -> 173,
335 -> 141, 326 -> 135 KB), full with their full-update figure. MCUNet's other two published
schemes are paired with the paper's other two MCUNet schemes (488 -> 134, 509 -> 160) by rank
of budget (marked *), an assumption: ANCHORS.md records them by accuracy, not by budget label.
ours / paper
is against the +reorder figure (full: the full-update figure). The acceptance test of the
99kb-class rows (fits 256 KB SRAM and 1 MB flash, below the paper's +reorder figure) is printed
at the end; ``--check`` turns it into the exit status.

fp32 baselines (float_baseline.py; each run in a fresh process): the same architecture in
float (random weights), the scheme's parameters trainable (a weight trained on a slice of its
input channels is trainable whole: fp32 frameworks have no partial gradients), SGD with
momentum 0.9, softmax cross-entropy, 1 thread. Step = peak RSS (VmHWM) during the first step
minus the RSS after importing the framework and building the model and optimizer; (step 2) =
the same for the second step. The ratio is fp32 step 1 / ours SGD-M. "process peak" is the
whole process (interpreter + framework + model + step), what the paper's whole-stack figures
(MobileNetV2-w0.35: TensorFlow 652 MB, PyTorch 303 MB) measure. 1 MB = 2^20 B.
The PyTorch column needs torch (``pip install -e ".[bench]"``, a CPU-only build is enough);
a missing framework is reported and its column left empty.

    python benchmarks/paper_memory.py [--markdown] [--models mcunet-5fps,...] [--schemes 99kb,full]
        [--no-fp32] [--frameworks torch,tensorflow] [--plot docs/paper_memory.png]
        [--update-benchmarks] [--check]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from _util import ROOT, SHARED_MODELS

MODELS = ("mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3")
KB, MB = 1024, 1024 * 1024
SRAM_BUDGET, FLASH_BUDGET = 256 * KB, 1024 * KB
HEADING = "## The paper's models: our SRAM vs the paper's, and vs fp32 PyTorch / TensorFlow"
FRAMEWORK_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow"}
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Paper:
    """The paper's peak training memory for one model (KB, STM32F746, 128x128, batch 1)."""

    full: int
    sparse: int                  # sparse update, no reordering
    reorder: int                 # sparse update + operator reordering
    class_99: str                # the published budget its headline figures go with
    by_budget: dict = field(default_factory=dict)  # other budgets: (sparse, reorder), by rank
    stack: dict = field(default_factory=dict)      # whole-stack MB per framework


PAPER = {
    "mcunet-5fps": Paper(3650, 560, 173, "99kb", {"49kb": (488, 134), "74kb": (509, 160)}),
    "mbv2-w0.35": Paper(2939, 335, 141, "99kb", stack={"tensorflow": 652, "torch": 303}),
    "proxyless-w0.3": Paper(2745, 326, 135, "98kb"),
}


@dataclass
class Row:
    model: str
    scheme: str
    report: object               # MemoryReport, plain SGD
    report_m: object             # MemoryReport, SGD with momentum
    paper: tuple | None          # (sparse, reorder, label) in KB, or (full, None, label)
    is_99: bool
    counts: dict
    fp32: dict = field(default_factory=dict)   # framework -> measurement dict or error string


# ---------------------------------------------------------------------------------- schemes

def last_blocks_k(mit_model: dict, blocks: int = 2) -> int:
    """Layers (convs) in the last ``blocks`` blocks of a tiny-training model (+ feature_mix)."""
    k = sum(1 for blk in mit_model["blocks"][-blocks:]
            for key in ("pointwise1", "depthwise", "pointwise2") if blk.get(key) is not None)
    return k + (1 if mit_model.get("feature_mix") is not None else 0)


def model_schemes(model: str, mit_model: dict) -> list[tuple[str, object]]:
    from tflm_train.schemes import PUBLISHED_SCHEMES, UpdateScheme

    rows = [(p.budget, p.scheme()) for p in PUBLISHED_SCHEMES if p.model == model]
    k = last_blocks_k(mit_model)
    rows += [("bias-only", UpdateScheme.bias_only()),
             (f"last-2-blocks (last-{k})", UpdateScheme.last_k(k)),
             ("full", UpdateScheme.full())]
    return rows


def paper_figure(model: str, scheme: str) -> tuple | None:
    p = PAPER[model]
    if scheme == "full":
        return (p.full, None, "full update")
    if scheme == p.class_99:
        return (p.sparse, p.reorder, "sparse")
    if scheme in p.by_budget:
        s, r = p.by_budget[scheme]
        return (s, r, "sparse*")
    return None


# ---------------------------------------------------------------------------------- fp32 runs

def run_fp32(framework: str, spec: dict, threads: int, momentum: float) -> dict | str:
    """float_baseline.measure in a fresh process; the measurement or an error message."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        path = f.name
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES="")
    try:
        r = subprocess.run([sys.executable, str(HERE / "float_baseline.py"), "--framework",
                            framework, "--spec", path, "--threads", str(threads),
                            "--momentum", str(momentum)],
                           capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        return "timed out"
    finally:
        os.unlink(path)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed (exit {r.returncode}): {tail}"
    return json.loads(lines[-1])


def available_frameworks(wanted: list[str]) -> list[str]:
    ok = []
    for fw in wanted:
        if importlib.util.find_spec(fw) is None:
            hint = ('pip install -e ".[bench]"; a CPU-only torch build is enough'
                    if fw == "torch" else 'pip install -e ".[dev]"')
            print(f"note: {FRAMEWORK_NAMES[fw]} is not installed, its column is skipped "
                  f"({hint})", file=sys.stderr)
        else:
            ok.append(fw)
    return ok


# ---------------------------------------------------------------------------------- collect

def collect(args) -> list[Row]:
    import tflm_train as tt
    from tflm_train import ir
    from tflm_train.converters.mit import import_mit, load_mit

    from float_baseline import float_spec, trainable_counts

    frameworks = available_frameworks(args.frameworks) if not args.no_fp32 else []
    rows = []
    for model in args.models:
        pkl = SHARED_MODELS / "mit" / f"{model}.pkl"
        if not pkl.is_file():
            print(f"note: {pkl} not found; {model} skipped", file=sys.stderr)
            continue
        mit_model = load_mit(pkl)
        data = import_mit(mit_model, num_classes=10)
        # the float twins keep the original kernels (import_mit grows stride-2 ones by a zero
        # row/column for PyTorch's padding); same layers, channels and activation shapes
        twin_graph = ir.load(import_mit(mit_model, num_classes=10, padding="same"))
        for name, scheme in model_schemes(model, mit_model):
            if args.schemes and not any(s in name for s in args.schemes):
                continue
            rep = tt.convert(data, update=scheme).memory_report()
            rep_m = tt.convert(data, update=scheme,
                               optimizer=tt.SGD(momentum=args.momentum)).memory_report()
            spec = float_spec(twin_graph, scheme.resolve(twin_graph))
            row = Row(model, name, rep, rep_m, paper_figure(model, name),
                      name == PAPER[model].class_99, trainable_counts(spec))
            for fw in frameworks:
                print(f"  {model} {name}: fp32 {FRAMEWORK_NAMES[fw]} step ...", file=sys.stderr,
                      flush=True)
                row.fp32[fw] = run_fp32(fw, spec, args.threads, args.momentum)
            rows.append(row)
            print(f"{model} {name}: ours {rep.peak_sram / KB:.1f} KB", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------------------- format

def _kb(n) -> str:
    return "n/a" if n is None else f"{n / KB:.1f}"


def _fits(rep) -> str:
    s = "yes" if rep.peak_sram <= SRAM_BUDGET else "no"
    f = "yes" if rep.flash <= FLASH_BUDGET else "no"
    return f"{s} / {f}"


def _paper_cells(row: Row) -> tuple[str, str]:
    if row.paper is None:
        return "-", "-"
    a, b, label = row.paper
    ours = row.report.peak_sram / KB
    if b is None:
        return f"{a} ({label})", f"{ours / a:.2f}"
    star = "*" if label.endswith("*") else ""
    return f"{a} → {b}{star}", f"{ours / b:.2f}"


def _fp32_cells(row: Row, fw: str) -> tuple[str, str]:
    m = row.fp32.get(fw)
    if m is None:
        return "-", "-"
    if isinstance(m, str):
        return m, "-"
    ours = row.report_m.peak_sram
    return f"{m['step1'] / MB:.1f} ({m['step2'] / MB:.1f})", f"{m['step1'] / ours:.0f}"


def memory_table(rows: list[Row]) -> list[list[str]]:
    head = ["model", "scheme", "peak SRAM (KB)", "arena", "params", "state", "engine",
            "flash (KB)", "fits 256 KB / 1 MB", "paper sparse → +reorder (KB)", "ours / paper"]
    out = [head]
    for r in rows:
        rep = r.report
        out.append([r.model, r.scheme, _kb(rep.peak_sram), _kb(rep.arena), _kb(rep.parameters),
                    _kb(rep.state), _kb(rep.engine), _kb(rep.flash), _fits(rep),
                    *_paper_cells(r)])
    return out


def fp32_table(rows: list[Row], frameworks: list[str]) -> list[list[str]]:
    head = ["model", "scheme", "trainable fp32 / int8", "ours SGD-M (KB)"]
    for fw in frameworks:
        head += [f"{FRAMEWORK_NAMES[fw]} step (MB)", f"{FRAMEWORK_NAMES[fw]} / ours"]
    out = [head]
    for r in rows:
        line = [r.model, r.scheme, f"{r.counts['float_trainable']} / {r.counts['int8_trainable']}",
                _kb(r.report_m.peak_sram)]
        for fw in frameworks:
            line += list(_fp32_cells(r, fw))
        out.append(line)
    return out


def stack_table(rows: list[Row], frameworks: list[str]) -> list[list[str]]:
    """Whole-process figures of the 99kb-class rows, next to the paper's whole-stack ones."""
    out = [["model", "scheme", "framework", "import + model (MB)", "process peak (MB)",
            "paper whole stack (MB)"]]
    for r in rows:
        if not r.is_99:
            continue
        for fw in frameworks:
            m = r.fp32.get(fw)
            if not isinstance(m, dict):
                continue
            paper = PAPER[r.model].stack.get(fw)
            out.append([r.model, r.scheme, f"{FRAMEWORK_NAMES[fw]} {m['version']}",
                        f"{m['rss_base'] / MB:.0f}", f"{max(m['peak1'], m['peak2']) / MB:.0f}",
                        str(paper) if paper else "-"])
    return out if len(out) > 1 else []


def verdicts(rows: list[Row]) -> list[tuple[str, bool]]:
    out = []
    for r in rows:
        if not r.is_99:
            continue
        rep, paper = r.report, PAPER[r.model].reorder
        sram, flash = rep.peak_sram <= SRAM_BUDGET, rep.flash <= FLASH_BUDGET
        below = rep.peak_sram / KB < paper
        ok = sram and flash and below
        out.append((f"{r.model} {r.scheme}: peak SRAM {rep.peak_sram / KB:.1f} KB "
                    f"({'fits' if sram else 'OVER'} 256 KB), flash {rep.flash / KB:.1f} KB "
                    f"({'fits' if flash else 'OVER'} 1 MB), paper sparse + reorder {paper} KB: "
                    f"ours/paper {rep.peak_sram / KB / paper:.2f} "
                    f"({'below' if below else 'NOT below'}) -> {'PASS' if ok else 'FAIL'}", ok))
    return out


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(lines)


def text(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in table)


def section(rows: list[Row], frameworks: list[str], plot: str | None,
            missing: list[str] = ()) -> str:
    """The BENCHMARKS.md section; ``missing``: frameworks asked for but not installed."""
    parts = [HEADING, "",
             "`cd benchmarks && python paper_memory.py --markdown --plot ../docs/paper_memory.png "
             "--update-benchmarks` (about 8 minutes on 2 cores; the PyTorch column needs "
             "`pip install -e \".[bench]\"`, `--no-fp32` skips both fp32 columns)",
             "",
             "tiny-training's three int8 models (`../shared/models/mit`, 10-class head, "
             "128×128×3, batch 1) under their published sparse-update schemes and three of ours. "
             "Peak SRAM = planned arena + trainable parameters in SRAM + training state + C engine "
             "bookkeeping (plain SGD, as on the device); flash = the `.train.tflite` file. "
             "Paper: Lin et al. 2022 on an STM32F746, sparse update without → with operator "
             "reordering; each model's 99kb-class scheme (mcunet-5fps/99kb, mbv2-w0.35/99kb, "
             "proxyless-w0.3/98kb) goes with its headline figure, `full` with their full-update "
             "figure; * = MCUNet's other two schemes (488 → 134, 509 → 160 KB) paired with the "
             "49kb/74kb budgets by rank, an assumption (ANCHORS.md records those schemes by "
             "accuracy, 72.0 / 73.4 %, not by budget label). "
             "ours / paper is against the +reorder figure. 1 KB = 1024 B.",
             "", markdown(memory_table(rows)), ""]
    v = verdicts(rows)
    if v:
        parts += ["99kb-class schemes (fit 256 KB SRAM and 1 MB flash, below the paper's "
                  "sparse + reorder figure):", ""]
        parts += [f"- {line}" for line, _ in v] + [""]
    if plot:
        rel = os.path.relpath(Path(plot).resolve(), ROOT)
        parts += [f"![ours vs paper]({rel})", ""]
    if frameworks:
        parts += ["fp32 baselines (`float_baseline.py`): the same architecture in float, only the "
                  "scheme's parameters trainable (a weight trained on a slice of its input "
                  "channels is trainable whole: these frameworks have no partial gradients, so "
                  "its gradient and momentum are full size; \"trainable fp32 / int8\" counts "
                  "both), SGD with momentum 0.9, one thread, each run in a fresh process. Step = "
                  "peak RSS during the first training step minus the RSS after importing the "
                  "framework and building the model and optimizer (in parentheses: the second "
                  "step, same baseline); the ratio is step 1 over ours with momentum 0.9 (a "
                  "Q16.16 velocity per trainable element, \"ours SGD-M\"). 1 MB = 2^20 B.",
                  "", markdown(fp32_table(rows, frameworks)), ""]
        if missing:
            parts += [f"Not measured: {', '.join(FRAMEWORK_NAMES[f] for f in missing)} "
                      f"(not installed).", ""]
        st = stack_table(rows, frameworks)
        if st:
            parts += ["Whole process (interpreter + framework + model + one step; what the "
                      "paper's whole-stack figures measure), 99kb-class schemes:", "",
                      markdown(st), ""]
    return "\n".join(parts)


def update_benchmarks(path: Path, body: str) -> None:
    """Replace (or append) the section under HEADING, keeping every other section."""
    lines = path.read_text().splitlines() if path.is_file() else ["# Benchmarks", ""]
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        new = lines[:start] + body.rstrip("\n").splitlines() + [""] + lines[end:]
    else:
        new = lines + ([""] if lines and lines[-1] else []) + body.rstrip("\n").splitlines()
    path.write_text("\n".join(new).rstrip("\n") + "\n")


def plot(rows: list[Row], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (used as matplotlib.ticker)

    models = [m for m in MODELS if any(r.model == m and r.paper for r in rows)]
    if not models:
        return
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8), squeeze=False)
    for ax, m in zip(axes[0], models):
        sel = [r for r in rows if r.model == m and r.paper]
        xs = range(len(sel))
        ours = [r.report.peak_sram / KB for r in sel]
        paper = [r.paper[1] if r.paper[1] is not None else r.paper[0] for r in sel]
        ax.bar([x - 0.2 for x in xs], ours, 0.4, label="ours")
        ax.bar([x + 0.2 for x in xs], paper, 0.4, label="paper (sparse + reorder / full)")
        no_reorder = [(x, r.paper[0]) for x, r in zip(xs, sel) if r.paper[1] is not None]
        if no_reorder:
            ax.bar([x + 0.2 for x, _ in no_reorder], [v for _, v in no_reorder], 0.4,
                   fill=False, edgecolor="tab:orange", ls="--", label="paper, no reorder")
        ax.axhline(256, color="tab:red", ls="--", lw=1, label="256 KB")
        ax.set_yscale("log")
        ax.set_ylim(bottom=64)
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks([64, 128, 256, 512, 1024, 2048, 4096])
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r.scheme + ("*" if r.paper[2].endswith("*") else "") for r in sel],
                           fontsize=8)
        ax.set_title(m)
        ax.set_ylabel("peak training SRAM (KB)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--markdown", action="store_true", help="print the BENCHMARKS.md section")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    ap.add_argument("--schemes", default="", help="comma-separated substrings of scheme names "
                    "(e.g. 99kb,full); default all")
    ap.add_argument("--no-fp32", action="store_true", help="skip the PyTorch / TF baselines")
    ap.add_argument("--frameworks", default="torch,tensorflow")
    ap.add_argument("--threads", type=int, default=1, help="threads of the fp32 frameworks")
    ap.add_argument("--momentum", type=float, default=0.9,
                    help="momentum of the fp32 baselines and of 'ours SGD-M'")
    ap.add_argument("--plot", help="write a PNG of ours vs the paper per model")
    ap.add_argument("--update-benchmarks", action="store_true",
                    help="write the section into BENCHMARKS.md (other sections kept)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every 99kb-class scheme passes (fits, below the paper)")
    args = ap.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in MODELS]
    if bad:
        print(f"unknown model(s) {bad}; choose from {', '.join(MODELS)}", file=sys.stderr)
        return 2
    args.schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    args.frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    bad = [f for f in args.frameworks if f not in FRAMEWORK_NAMES]
    if bad:
        print(f"unknown framework(s) {bad}; choose from torch, tensorflow", file=sys.stderr)
        return 2

    rows = collect(args)
    if not rows:
        print(f"no model found under {SHARED_MODELS / 'mit'}", file=sys.stderr)
        return 1
    frameworks = [fw for fw in args.frameworks if any(fw in r.fp32 for r in rows)]
    if args.plot:
        plot(rows, args.plot)
    missing = [fw for fw in args.frameworks
               if not args.no_fp32 and importlib.util.find_spec(fw) is None]
    body = section(rows, frameworks, args.plot, missing)
    if args.update_benchmarks:
        update_benchmarks(ROOT / "BENCHMARKS.md", body)
    if args.markdown:
        print(body)
    else:
        print(text(memory_table(rows)))
        print()
        for line, _ in verdicts(rows):
            print(line)
        if frameworks:
            print()
            print(text(fp32_table(rows, frameworks)))
            st = stack_table(rows, frameworks)
            if st:
                print()
                print(text(st))
    return 0 if not args.check or all(ok for _, ok in verdicts(rows)) else 1


if __name__ == "__main__":
    sys.exit(main())
