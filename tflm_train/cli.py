"""The ``tflm-train`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import TflmTrainError


def _cmd_inspect(args) -> int:
    from . import ir
    from .summary import format_summary, summarize

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
