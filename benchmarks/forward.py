"""Forward (inference) benchmark: our C engine vs the TFLM interpreter, per shared model.

Prints, per model: arena bytes of our C engine vs TFLM's (RecordingMicroAllocator total), and
the median time per inference of both, measured in this process with the runs interleaved,
as a ratio (ours / TFLM).
Both run the same reference-style int8 kernels on the host; the ratio is what matters, not
the milliseconds. Also checks that both give identical outputs on the timed input.

    python benchmarks/forward.py [--repeat N] [--markdown]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from _util import SHARED_MODELS, median_times, tflm_arena_bytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="timed inferences per engine")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()

    import tflite_micro

    from tflm_train import ir
    from tflm_train.engine_c import CEngine

    models = sorted(SHARED_MODELS.glob("*/*.tflite"))
    if not models:
        print(f"no models under {SHARED_MODELS}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    rows = []
    for path in models:
        data = path.read_bytes()
        g = ir.load(data)
        t = g.input_tensors()[0]
        x = rng.integers(-128, 128, size=t.shape, dtype=np.int8)

        ours = CEngine(data)
        tflm = tflite_micro.runtime.Interpreter.from_bytes(data)

        def run_tflm():
            tflm.set_input(x, 0)
            tflm.invoke()
            return tflm.get_output(0)

        same = np.array_equal(ours.invoke([x])[0], run_tflm())
        t_ours, t_tflm = median_times([lambda: ours.invoke([x]), run_tflm], args.repeat)
        rows.append((path.relative_to(SHARED_MODELS).as_posix(), ours.arena_bytes,
                     tflm_arena_bytes(data), t_ours * 1e3, t_tflm * 1e3, same))

    if args.markdown:
        print("| model | our arena (B) | TFLM arena (B) | ours/TFLM arena | our ms | TFLM ms "
              "| time ratio | outputs equal |")
        print("|---|---|---|---|---|---|---|---|")
        for name, a, b, to, tt, same in rows:
            print(f"| {name} | {a} | {b} | {a / b:.2f} | {to:.2f} | {tt:.2f} | {to / tt:.2f} "
                  f"| {same} |")
    else:
        print(f"{'model':<42} {'arena':>8} {'TFLM':>8} {'ratio':>6} {'ms':>8} {'TFLM ms':>8} "
              f"{'ratio':>6} equal")
        for name, a, b, to, tt, same in rows:
            print(f"{name:<42} {a:>8} {b:>8} {a / b:>6.2f} {to:>8.2f} {tt:>8.2f} {to / tt:>6.2f} "
                  f"{same}")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
