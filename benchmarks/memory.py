"""Training memory and step time per shared model and update scheme.

For each model in ../shared/models and each scheme (bias-only, last-1, last-2, full, and a
sparse one: biases of the last half of the layers, the two layers before the classifier at 1/2
and 1/4 of their input channels), prints the peak SRAM of one training step (planned arena +
SRAM-resident trainable parameters + training state + C engine bookkeeping), the flash (the
.train.tflite file), and the C engine's time for one training step as a ratio to one inference
of the original model in the same process.

    python benchmarks/memory.py [--markdown] [--repeat N] [--models GLOB]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from _util import SHARED_MODELS, median_times


def schemes(n_layers: int) -> dict:
    from tflm_train.schemes import UpdateScheme

    n = n_layers  # layers before the classifier
    return {
        "bias-only": UpdateScheme.bias_only(),
        "last-1": UpdateScheme.last_k(1),
        "last-2": UpdateScheme.last_k(2),
        "full": UpdateScheme.full(),
        "sparse": UpdateScheme.explicit(bias_last=max(2, n // 2),
                                        weights={n - 1: 0.5, n - 2: 0.25}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default="*/*.tflite")
    args = ap.parse_args()

    import tflm_train as tt
    from tflm_train import ir
    from tflm_train.engine_c import CEngine
    from tflm_train.schemes import trainable_layers

    models = sorted(SHARED_MODELS.glob(args.models))
    if not models:
        print(f"no models under {SHARED_MODELS}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    rows = []
    for path in models:
        data = path.read_bytes()
        g = ir.load(data)
        x = rng.integers(-128, 128, size=g.input_tensors()[0].shape, dtype=np.int8)
        infer = CEngine(data)
        n = len(trainable_layers(g)) - 1
        for name, scheme in schemes(n).items():
            tm = tt.convert(data, update=scheme)
            rep = tm.memory_report()
            tr = tt.Trainer(tm, backend="c")
            # interleaved with the inference it is compared with (host noise hits both)
            t_step, t_inf = median_times([lambda: tr.train_step(x, 0),
                                          lambda: infer.invoke([x])], args.repeat, warmup=1)
            rows.append((path.stem, name, rep.peak_sram, rep.arena, rep.parameters,
                         rep.engine or 0, rep.flash, t_step / t_inf))
    if args.markdown:
        print("| model | scheme | peak SRAM (KB) | arena | trainable params | engine | flash (KB) "
              "| step / inference |")
        print("|---|---|---|---|---|---|---|---|")
        for m, s, peak, arena, params, eng, flash, ratio in rows:
            print(f"| {m} | {s} | {peak / 1024:.1f} | {arena / 1024:.1f} | {params / 1024:.1f} "
                  f"| {eng / 1024:.1f} | {flash / 1024:.1f} | {ratio:.2f} |")
    else:
        print(f"{'model':<28} {'scheme':<10} {'peak KB':>8} {'arena':>8} {'params':>8} "
              f"{'engine':>8} {'flash KB':>9} {'step/inf':>9}")
        for m, s, peak, arena, params, eng, flash, ratio in rows:
            print(f"{m:<28} {s:<10} {peak / 1024:>8.1f} {arena / 1024:>8.1f} "
                  f"{params / 1024:>8.1f} {eng / 1024:>8.1f} {flash / 1024:>9.1f} {ratio:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
