"""The C engine's own SRAM (its bookkeeping) on the paper's models with their published schemes.

For MCUNet-5FPS 99kb, MobileNetV2-w0.35 99kb and ProxylessNAS-w0.3 98kb (128x128, 10 classes,
pickles in ../shared/models/mit), prints the ops, tensors and variable tensors of the training
graph and `memory_report().engine`: the C engine's arena minus its planned region, the trainable
parameters and the training state. The engine stores offsets and fixed-width integers only, so
this figure is the Cortex-M one too (tests/test_cortex_m.py compares the firmware's). "bound" is
512 B + 16 B per op + 8 B per variable tensor, which tests/test_training_memory.py asserts.

    python benchmarks/engine_memory.py [--markdown]
"""
from __future__ import annotations

import argparse
import sys

from _util import SHARED_MODELS

SCHEMES = [("mcunet-5fps", "99kb"), ("mbv2-w0.35", "99kb"), ("proxyless-w0.3", "98kb")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    import tflm_train as tt
    from tflm_train.converters.mit import import_mit

    rows = []
    for name, scheme in SCHEMES:
        pkl = SHARED_MODELS / "mit" / f"{name}.pkl"
        if not pkl.is_file():
            print(f"{pkl} not found", file=sys.stderr)
            return 1
        tm = tt.convert(import_mit(pkl, num_classes=10), update=f"published:{name}/{scheme}")
        g = tm.graph
        variables = sum(1 for t in g.tensors if t.is_variable)
        engine = tm.memory_report().engine
        if engine is None:
            print("the C engine library is not built (make lib)", file=sys.stderr)
            return 1
        rows.append((name, scheme, len(g.ops), len(g.tensors), variables, engine,
                     512 + 16 * len(g.ops) + 8 * variables))
    if args.markdown:
        print("| model | scheme | ops | tensors | variables | engine (B) | bytes / op | bound (B) |")
        print("|---|---|---|---|---|---|---|---|")
        for m, s, ops, tensors, var, eng, bound in rows:
            print(f"| {m} | {s} | {ops} | {tensors} | {var} | {eng} | {eng / ops:.1f} | {bound} |")
    else:
        print(f"{'model':<16} {'scheme':<7} {'ops':>5} {'tensors':>8} {'variables':>10} "
              f"{'engine B':>9} {'B/op':>6} {'bound B':>8}")
        for m, s, ops, tensors, var, eng, bound in rows:
            print(f"{m:<16} {s:<7} {ops:>5} {tensors:>8} {var:>10} {eng:>9} {eng / ops:>6.1f} "
                  f"{bound:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
