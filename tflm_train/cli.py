"""The ``tflm-train`` command line."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from .errors import TflmTrainError


def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)[iI]?[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (e.g. 256KB, 1MB, 65536)")
    mult = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def _is_trainable(path) -> bool:
    from .compiler import METADATA_NAME, read_metadata
    from .tflite_io import read_model

    return read_metadata(read_model(path), METADATA_NAME) is not None


def _inspect_trainable(args) -> int:
    from .schemes import resolve
    from .trainable import load_trainable

    tm = load_trainable(args.model)
    rep = tm.memory_report()
    if args.plot:
        rep.plot(args.plot)
    if args.json:
        d = rep.to_dict()
        d["metadata"] = tm.metadata
        d["arena_bytes"] = rep.arena + rep.parameters + rep.state + (rep.engine or 0)
        from .tflm_arena import tflm_arena_bytes
        d["tflm_arena_bytes"] = tflm_arena_bytes(tm.bytes)  # MicroInterpreter's arena
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(f"trainable model: {args.model}")
    print(f"source {tm.metadata.get('source')}, classes {tm.num_classes}, lr {tm.lr:g}, "
          f"QAS {'on' if tm.metadata.get('qas') else 'off'}, seed {tm.metadata.get('seed')}")
    print(resolve(tm.scheme, tm.graph).summary())
    print(rep.format())
    from .tflm_arena import format_line
    print(format_line(tm.bytes))  # what a TFLM user gives MicroInterpreter (docs/tflm.md)
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _cmd_inspect(args) -> int:
    from . import ir
    from .summary import format_summary, summarize

    if _is_trainable(args.model):
        return _inspect_trainable(args)
    graph = ir.load(args.model)
    arena = None
    arena_error = None
    try:
        from .engine_c import CEngine
        arena = CEngine(Path(args.model).read_bytes()).arena_bytes
    except TflmTrainError as e:  # still describe a model the engine cannot run
        arena_error = str(e)
    s = summarize(graph, arena)
    if arena_error:
        s["arena_error"] = arena_error
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print(format_summary(s, args.model))
        if arena_error:
            print(f"inference arena: unavailable ({arena_error})")
    return 0


def _cmd_run(args) -> int:
    from .interpreter import Interpreter

    x = np.load(args.input)
    interp = Interpreter(args.model, backend=args.backend)
    y = interp.invoke(x)
    outs = y if isinstance(y, list) else [y]
    for i, o in enumerate(outs):
        print(f"output {i}: {o.dtype.name} {list(o.shape)}")
        print(np.array2string(o, threshold=64))
        if o.ndim >= 1 and o.size > 1:
            print(f"argmax: {int(np.argmax(o.reshape(o.shape[0], -1)[0]))}")
    if args.output:
        np.save(args.output, outs[0] if len(outs) == 1 else np.array(outs, dtype=object))
        print(f"saved {args.output}")
    return 0


def _cmd_convert(args) -> int:
    from .compiler import SGD
    from .trainable import convert

    scheme = args.update
    tm = convert(args.model, update=scheme, num_classes=args.num_classes,
                 optimizer=SGD(args.lr, momentum=args.momentum), seed=args.seed,
                 qas=not args.no_qas)
    rep = tm.memory_report()
    from .schemes import resolve
    print(resolve(tm.scheme, tm.graph).summary())
    print(rep.format(args.sram_budget))
    if args.sram_budget and rep.peak_sram > args.sram_budget:
        smallest = convert(args.model, update="classifier", num_classes=args.num_classes,
                           optimizer=SGD(args.lr), seed=args.seed).memory_report().peak_sram
        print(f"tflm-train: error: peak SRAM {rep.peak_sram / 1024:.1f} KB exceeds the budget of "
              f"{args.sram_budget / 1024:.1f} KB; the smallest achievable peak (classifier only) "
              f"is {smallest / 1024:.1f} KB", file=sys.stderr)
        return 2
    tm.save(args.output)
    print(f"wrote {args.output} ({len(tm.bytes)} bytes)")
    return 0


def _load_xy(spec: str, trainer):
    from .data import fit_to_input, load_data

    x, y = load_data(spec)
    return fit_to_input(x, trainer.image), y


def _cmd_fit(args) -> int:
    from .trainer import Trainer

    tr = Trainer(args.model, backend=args.backend)
    if args.lr is not None:
        tr.lr = args.lr
    x, y = _load_xy(args.data, tr)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    val = None
    if args.val:
        vx, vy = _load_xy(args.val, tr)
        val = (vx, vy)
        print(f"accuracy before: {tr.evaluate(vx, vy):.1%} on {len(vy)} samples of {args.val}")
    curve = []
    for epoch in range(args.epochs):
        h = tr.fit(x, y, epochs=1, shuffle_seed=args.shuffle_seed + epoch)
        line = f"epoch {epoch + 1}: mean loss {h[0]:.4f}"
        if val is not None:
            acc = tr.evaluate(*val)
            line += f", accuracy {acc:.1%}"
            curve.append((h[0], acc))
        else:
            curve.append((h[0], None))
        print(line)
    if args.plot:
        _plot_curve(curve, args.plot)
        print(f"wrote {args.plot}")
    out = args.output or args.model
    tr.save(out)
    print(f"wrote {out}")
    return 0


def _plot_curve(curve, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ep = range(1, len(curve) + 1)
    ax.plot(ep, [c[0] for c in curve], "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats)")
    if any(c[1] is not None for c in curve):
        ax2 = ax.twinx()
        ax2.plot(ep, [c[1] for c in curve], "s-", color="tab:green", label="accuracy")
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0, 1)
    ax.set_title("on-device training (host simulation)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cmd_evaluate(args) -> int:
    from .data import fit_to_input, load_data

    x, y = load_data(args.data)
    if _is_trainable(args.model):
        from .trainer import Trainer

        tr = Trainer(args.model, backend=args.backend)
        acc = tr.evaluate(fit_to_input(x, tr.image), y, progress=True)
    else:
        from .interpreter import Interpreter

        interp = Interpreter(args.model, backend=args.backend)
        xq = fit_to_input(x, interp.graph.input_tensors()[0])
        acc = float(np.mean([np.argmax(np.asarray(interp.invoke(xi)).reshape(-1)) == yi
                             for xi, yi in zip(xq, y)]))
    print(f"accuracy: {acc:.2%} on {len(y)} samples")
    return 0


def _cmd_import_mit(args) -> int:
    from .converters.mit import main_import

    s = main_import(args.model, args.output, num_classes=args.num_classes, seed=args.seed,
                    padding=args.padding)
    print(f"wrote {args.output} ({s['bytes']} bytes): {s['ops']} ops, {s['layers'] - 1} layers "
          f"+ the classifier ({s['classes']} classes), int8 input [1, 128, 128, 3]")
    return 0


def _cmd_export(args) -> int:
    from .trainer import Trainer

    tr = Trainer(args.model, backend="numpy")
    data = tr.export(args.output)
    print(f"wrote {args.output} ({len(data)} bytes): plain int8 TFLite, no custom ops")
    return 0


def _cmd_firmware(args) -> int:
    from . import firmware as fw
    from .trainable import load_trainable

    tm = load_trainable(args.model)
    if args.profile and not args.run:
        print("tflm-train: error: --profile needs --run", file=sys.stderr)
        return 2
    f = fw.build_firmware(tm, cpu=args.cpu, steps=args.steps, data=args.data,
                          out_dir=args.output, inferences=args.inferences, seed=args.seed,
                          profile=args.profile)
    print(f"built {f.elf} for {f.cpu}: {f.steps} training steps, {f.inferences} inferences")
    print(f"arm-none-eabi-size: text {f.text} data {f.data} bss {f.bss} "
          f"(flash {f.flash / 1024:.1f} of {fw.FLASH_BYTES // 1024} KB, RAM {f.ram / 1024:.1f} of "
          f"{fw.RAM_BYTES // 1024} KB with the {fw.STACK_BYTES // 1024} KB stack; arena "
          f"{f.arena_bytes} B, model {f.model_bytes} B)")
    if not args.run:
        print(f"run it: {' '.join(fw.qemu_command(f.elf, f.cpu))}")
        return 0
    r = f.run(timeout=args.timeout)
    print(f"{fw.QEMU} -M {r.machine} -icount shift=0: exit status {r.exit_code}")
    if not r.ok:
        print(r.output.rstrip())
        print(f"tflm-train: error: the firmware failed (exit status {r.exit_code})", file=sys.stderr)
        return 2
    per_tick = r.instructions_per_tick
    macs = fw.step_macs(tm.graph)
    print(f"instruction counter: {per_tick} instructions per SysTick tick (calibrated on "
          f"{2 * r.calibration_loops} instructions)")
    for i, (loss, n) in enumerate(zip(r.loss_values, r.step_instructions)):
        print(f"step {i}: loss {loss:.4f}, {n} instructions")
    for i, (c, n) in enumerate(zip(r.predictions, r.inference_instructions)):
        print(f"inference {i}: class {c}, {n} instructions")
    if r.step_instructions:
        step = int(np.median(r.step_instructions))
        print(f"per training step: {step} instructions, {step / macs['total']:.2f} per MAC "
              f"({macs['forward']} forward + {macs['backward']} backward MACs)")
    if r.inference_instructions:
        inf = int(np.median(r.inference_instructions))
        print(f"per inference: {inf} instructions, {inf / max(macs['forward'], 1):.2f} per MAC")
    print(f"parameter checksum (FNV-1a of {r.variables} variable tensors, {r.variable_bytes} B): "
          f"0x{r.checksum:08x}")
    print(f"arena used on the device {r.arena_used} B of {r.arena_static} B; stack "
          f"{r.stack_used} of {fw.STACK_BYTES} B")
    if args.profile:
        _print_op_profile(tm.graph, r.op_instructions, args.profile_top)
    return 0


def _print_op_profile(graph, per_op: list[float], top: int) -> None:
    """The costliest ops of a training step, with their share and MACs."""
    from .summary import grad_op_macs, op_macs

    total = sum(per_op) or 1.0
    order = sorted(range(len(per_op)), key=lambda i: -per_op[i])
    print(f"per op (instructions per training step, the {min(top, len(order))} costliest of "
          f"{len(order)} ops; the whole step: {total:.0f}):")
    print(f"{'op':>4}  {'opcode':<30} {'output':<34} {'instructions':>13} {'share':>6} "
          f"{'per MAC':>8}")
    for i in order[:top]:
        op = graph.ops[i]
        out = graph.tensors[op.outputs[0]].name if len(op.outputs) and op.outputs[0] >= 0 else ""
        macs = op_macs(graph, op) + grad_op_macs(graph, op)
        per_mac = f"{per_op[i] / macs:.2f}" if macs else ""
        print(f"{i:>4}  {op.opcode.removeprefix('CUSTOM:'):<30} {out[-34:]:<34} "
              f"{per_op[i]:>13.0f} {per_op[i] / total:>6.1%} {per_mac:>8}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tflm-train",
        description="On-device training for TensorFlow Lite Micro: inspect and run int8 .tflite "
                    "models bit-exactly (numpy reference engine or the portable C engine).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    pi = sub.add_parser("inspect", help="list ops, parameters, MACs and the inference arena",
                        description="Describe a .tflite model: inputs/outputs with quantization, "
                                    "every op with its output shape, parameters and MACs, and "
                                    "the arena the C engine needs to run it.")
    pi.add_argument("model", help="path to a .tflite file")
    pi.add_argument("--json", action="store_true", help="print machine-readable JSON")
    pi.add_argument("--plot", metavar="FILE.png",
                    help="(trainable models) plot the planned memory over one training step")
    pi.set_defaults(func=_cmd_inspect)

    pr = sub.add_parser("run", help="run one inference on an input array",
                        description="Run one inference. The input .npy must match the model's "
                                    "input dtype and shape (the batch dimension may be omitted).")
    pr.add_argument("model", help="path to a .tflite file")
    pr.add_argument("--input", required=True, metavar="X.npy", help="input array (.npy)")
    pr.add_argument("--backend", choices=("numpy", "c"), default="c",
                    help="engine to run on (default: c)")
    pr.add_argument("-o", "--output", metavar="Y.npy", help="save the output array")
    pr.set_defaults(func=_cmd_run)

    pc = sub.add_parser("convert", help="make a trainable *.train.tflite from an int8 model",
                        description="Compile the training graph: forward ops saving only what "
                                    "backward reads, integer softmax cross-entropy, the pruned "
                                    "backward pass and in-place QAS updates; plans memory.",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="update specs: classifier | bias | full | last-K | "
                               "sparse:bias=N,IDX=RATIO,... | paper:n_bias=N,idx=I:I,ratio=R:R | "
                               "published:MODEL/BUDGET | @scheme.json")
    pc.add_argument("model", help="int8 .tflite")
    pc.add_argument("-o", "--output", required=True, metavar="OUT.train.tflite")
    pc.add_argument("--update", default="last-2", metavar="SPEC",
                    help="which parameters train (default: last-2)")
    pc.add_argument("--num-classes", type=int, help="replace the classifier with a new one")
    pc.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    pc.add_argument("--momentum", type=float, default=0.0,
                    help="SGD momentum in [0, 1) (default 0; adds an int32 velocity per "
                         "trainable element to SRAM)")
    pc.add_argument("--seed", type=int, default=0, help="PRNG / classifier init seed")
    pc.add_argument("--no-qas", action="store_true",
                    help="ablation: plain int8 SGD without Quantization-Aware Scaling")
    pc.add_argument("--sram-budget", type=_parse_bytes, metavar="SIZE",
                    help="fail if peak SRAM exceeds SIZE (e.g. 256KB)")
    pc.set_defaults(func=_cmd_convert)

    data_help = ("DATA: file.npz (x, y) | folder of class folders | fashion-mnist[:test] | "
                 "digits; suffix #A-B keeps classes A..B (relabelled from 0), @N keeps N per class")
    pf = sub.add_parser("fit", help="train a *.train.tflite on data (host simulation)",
                        description="Train one sample at a time, exactly as the device does.",
                        epilog=data_help)
    pf.add_argument("model", help="*.train.tflite")
    pf.add_argument("--data", required=True, help="training data (see below)")
    pf.add_argument("--val", help="data to report accuracy on after each epoch")
    pf.add_argument("--epochs", type=int, default=1)
    pf.add_argument("--lr", type=float, help="override the learning rate")
    pf.add_argument("--limit", type=int, help="use only the first N samples")
    pf.add_argument("--shuffle-seed", type=int, default=0)
    pf.add_argument("--backend", choices=("numpy", "c"), default="c")
    pf.add_argument("-o", "--output", help="write the trained model here (default: in place)")
    pf.add_argument("--plot", metavar="curve.png", help="plot loss (and accuracy) per epoch")
    pf.set_defaults(func=_cmd_fit)

    pe = sub.add_parser("evaluate", help="top-1 accuracy of a model on data", epilog=data_help)
    pe.add_argument("model", help=".tflite or *.train.tflite")
    pe.add_argument("--data", required=True)
    pe.add_argument("--backend", choices=("numpy", "c"), default="c")
    pe.set_defaults(func=_cmd_evaluate)

    px = sub.add_parser("export", help="plain int8 .tflite with the trained weights",
                        description="Write the forward graph with the trained parameters: no "
                                    "custom ops, runs in stock TFLM and LiteRT.")
    px.add_argument("model", help="*.train.tflite")
    px.add_argument("-o", "--output", required=True, metavar="OUT.tflite")
    px.set_defaults(func=_cmd_export)

    pm = sub.add_parser("import-mit", help="int8 .tflite from a tiny-training .pkl model",
                        description="Import one of tiny-training's int8 models (mcunet-5fps, "
                                    "mbv2-w0.35, proxyless-w0.3 .pkl; torch is not needed) as an "
                                    "int8 TFLite model with the same layers, in the same order "
                                    "(their published sparse-update schemes apply unchanged).")
    pm.add_argument("model", help="tiny-training .pkl")
    pm.add_argument("-o", "--output", required=True, metavar="OUT.tflite")
    pm.add_argument("--num-classes", type=int, help="replace the 1000-way ImageNet classifier "
                                                     "with a new seeded one")
    pm.add_argument("--seed", type=int, default=0, help="seed of the new classifier")
    pm.add_argument("--padding", choices=("exact", "same"), default="exact",
                    help="stride-2 padding: exact = PyTorch's (default), same = TFLite SAME")
    pm.set_defaults(func=_cmd_import_mit)

    pw = sub.add_parser("firmware", help="bare-metal Cortex-M firmware that trains the model "
                                         "(QEMU run with --run)",
                        description="Generate and cross-build (arm-none-eabi-gcc) a firmware "
                                    "with the model in flash, N samples and a main() that runs N "
                                    "training steps, inferences and a parameter checksum in a "
                                    "static arena; the link fails if it needs more than 256 KB "
                                    "of RAM. --run executes it under qemu-system-arm -icount "
                                    "shift=0 and reports losses and instructions.",
                        epilog=data_help)
    pw.add_argument("model", help="*.train.tflite")
    pw.add_argument("--cpu", required=True, choices=("cortex-m4", "cortex-m7", "cortex-m3"),
                    help="core (QEMU board: mps2-an386 / mps2-an500 / mps2-an385)")
    pw.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    pw.add_argument("--inferences", type=int, default=2,
                    help="inferences after training (default 2)")
    pw.add_argument("--data", help="samples (default: deterministic random int8 images and "
                                   "labels); an .npz of int8 x matching the input is used as is")
    pw.add_argument("--seed", type=int, default=0, help="seed of the random samples")
    pw.add_argument("--run", action="store_true", help="run it under QEMU and report")
    pw.add_argument("--profile", action="store_true",
                    help="with --run: time every op of the training steps and print the "
                         "costliest (instructions per step, share, per MAC)")
    pw.add_argument("--profile-top", type=int, default=15, metavar="N",
                    help="ops listed by --profile (default 15)")
    pw.add_argument("--timeout", type=float, default=600.0, help="QEMU time limit (s)")
    pw.add_argument("-o", "--output", metavar="DIR", help="build directory (default: a temp dir)")
    pw.set_defaults(func=_cmd_firmware)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TflmTrainError as e:
        print(f"tflm-train: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"tflm-train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
