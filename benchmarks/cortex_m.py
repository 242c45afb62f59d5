"""Training on Cortex-M under QEMU: instructions per step / inference / MAC, flash and RAM.

For each model in ../shared/models and each scheme (bias-only: every bias and the classifier;
sparse: biases of the last half of the layers, the two layers before the classifier at 1/2 and
1/4 of their input channels — the same schemes as memory.py), builds the bare-metal firmware
(`tflm_train.firmware`, static arena = the host C engine's arena_bytes, linker script with
FLASH 1 MB / RAM 256 KB) and runs it on `qemu-system-arm -M mps2-an500` (Cortex-M7; --cpu
cortex-m4 for mps2-an386) with `-icount shift=0`. A model whose training plan does not fit in
256 KB fails to link and is reported as "does not fit" with the arena it needs.

Instructions: SysTick ticks x 40 (25 MHz clock, 1 ns per instruction under -icount shift=0;
calibrated by the firmware on a loop of known length, exact to one tick = 40 instructions).
They are instructions, not cycles: a real M7 retires up to 2 per cycle and waits on memory.
Per MAC: training step / (forward + backward MACs of the step), inference / forward MACs.
Flash = text + data of the ELF (code, model, samples); RAM = data + bss (arena + 8 KB stack);
"does not fit (+N B)": the link failed, RAM overflowed by N bytes.
"bits" = the device's losses and parameter checksum equal the host C engine's.
--paper: the paper's own models (../shared/models/mit, imported with a 10-class head) with their
published 99kb-class schemes at 128x128 instead (a step is ~0.4 G instructions: slow in QEMU).
The samples are noise images computed on the device (tflm_train.firmware.synthetic_images),
so MCUNet-5FPS's 863 KB model plus code fit the board's 1 MB of flash.

    python benchmarks/cortex_m.py [--markdown] [--cpu cortex-m7] [--steps 2] [--models GLOB]
                                  [--paper]
"""
from __future__ import annotations

import argparse
import re
import sys

import numpy as np

from _util import SHARED_MODELS

PAPER = ("paper (Lin et al. 2022): MCUNet, 546 ms per step on a 216 MHz Cortex-M7 "
         "= about 118 M cycles per step")


PAPER_SCHEMES = [("mbv2-w0.35", "99kb"), ("proxyless-w0.3", "98kb"), ("mcunet-5fps", "99kb")]


def schemes(n_layers: int) -> dict:
    from tflm_train.schemes import UpdateScheme

    n = n_layers  # layers before the classifier
    return {
        "bias-only": UpdateScheme.bias_only(),
        "sparse": UpdateScheme.explicit(bias_last=max(2, n // 2),
                                        weights={n - 1: 0.5, n - 2: 0.25}),
    }


def measure(tm, cpu: str, steps: int) -> dict:
    from tflm_train import firmware as fw
    from tflm_train.engine_c import CEngine

    arena = CEngine(tm.bytes).arena_bytes
    row = {"arena": arena}
    try:
        f = fw.build_firmware(tm, cpu=cpu, steps=steps, inferences=2)
    except fw.FirmwareDoesNotFit as e:
        row["fits"] = False
        row["error"] = str(e).splitlines()[0]
        m = re.search(r"overflowed by (\d+) bytes", str(e))
        row["over"] = int(m.group(1)) if m else None
        return row
    run = f.run(timeout=1800)
    if not run.ok:
        raise RuntimeError(f"firmware failed on {cpu}:\n{run.output}")
    macs = fw.step_macs(tm.graph)
    host = fw.host_reference(tm, f.images, f.labels, f.inferences, backend="c")
    step = int(np.median(run.step_instructions))
    inf = int(np.median(run.inference_instructions))
    row.update(fits=True, step=step, inference=inf, step_per_mac=step / macs["total"],
               inference_per_mac=inf / max(macs["forward"], 1), macs=macs["total"],
               flash=f.flash, ram=f.ram, arena_used=run.arena_used,
               bits=run.losses == host["losses"] and run.checksum == host["checksum"])
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--cpu", default="cortex-m7", choices=("cortex-m4", "cortex-m7", "cortex-m3"))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--models", default="*/*.tflite")
    ap.add_argument("--paper", action="store_true",
                    help="the paper's models with their published 99kb-class schemes")
    args = ap.parse_args()

    import tflm_train as tt
    from tflm_train import firmware as fw, ir
    from tflm_train.schemes import trainable_layers

    reason = fw.missing_tools()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    rows = []
    if args.paper:
        from tflm_train.converters.mit import import_mit

        for model, budget in PAPER_SCHEMES:
            pkl = SHARED_MODELS / "mit" / f"{model}.pkl"
            if not pkl.exists():
                print(f"{pkl} not found", file=sys.stderr)
                return 1
            tm = tt.convert(import_mit(pkl, num_classes=10), update=f"published:{model}/{budget}")
            rows.append((model, budget, measure(tm, args.cpu, args.steps)))
    else:
        models = sorted(SHARED_MODELS.glob(args.models))
        if not models:
            print(f"no models under {SHARED_MODELS}", file=sys.stderr)
            return 1
        for path in models:
            data = path.read_bytes()
            n = len(trainable_layers(ir.load(data))) - 1
            for name, scheme in schemes(n).items():
                tm = tt.convert(data, update=scheme)
                rows.append((path.stem, name, measure(tm, args.cpu, args.steps)))

    board = fw.QEMU_MACHINES[args.cpu]
    if args.markdown:
        print(f"{args.cpu} (`qemu-system-arm -M {board} -icount shift=0`), {args.steps} steps; "
              f"{PAPER}\n")
        print("| model | scheme | M instr / step | instr / MAC (step) | M instr / inference "
              "| instr / MAC (inference) | flash (KB) | RAM (KB) | arena (KB) | bits = host |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for m, s, r in rows:
            if not r["fits"]:
                over = f" (+{r['over']} B)" if r.get("over") else ""
                flash = "flash" in r["error"]
                print(f"| {m} | {s} | does not fit{over} | | | | {'> 1024' if flash else ''} "
                      f"| {'' if flash else '> 256'} | {r['arena'] / 1024:.1f} | |")
                continue
            print(f"| {m} | {s} | {r['step'] / 1e6:.1f} | {r['step_per_mac']:.2f} "
                  f"| {r['inference'] / 1e6:.1f} | {r['inference_per_mac']:.2f} "
                  f"| {r['flash'] / 1024:.1f} | {r['ram'] / 1024:.1f} | {r['arena'] / 1024:.1f} "
                  f"| {r['bits']} |")
    else:
        print(f"{args.cpu} on qemu-system-arm -M {board} -icount shift=0, {args.steps} steps")
        print(PAPER)
        print(f"{'model':<26} {'scheme':<10} {'Minstr/step':>11} {'/MAC':>6} {'Minstr/inf':>10} "
              f"{'/MAC':>6} {'flash KB':>9} {'RAM KB':>7} {'arena KB':>9} {'bits':>5}")
        for m, s, r in rows:
            if not r["fits"]:
                print(f"{m:<26} {s:<10} does not fit: arena {r['arena'] / 1024:.1f} KB "
                      f"({r['error']})")
                continue
            print(f"{m:<26} {s:<10} {r['step'] / 1e6:>11.1f} {r['step_per_mac']:>6.2f} "
                  f"{r['inference'] / 1e6:>10.1f} {r['inference_per_mac']:>6.2f} "
                  f"{r['flash'] / 1024:>9.1f} {r['ram'] / 1024:>7.1f} {r['arena'] / 1024:>9.1f} "
                  f"{str(r['bits']):>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
