"""``make demo``: on-device training, simulated bit-exactly on the host.

A small CNN pretrained on Fashion-MNIST classes 0-4 (examples/models, trained by
examples/train_base_model.py) is converted for a 256 KB device with a new 5-way head and
fine-tuned, one sample at a time, on classes 5-9 it has never seen. Prints accuracy before and
after, peak SRAM against the budget, checks the numpy and C engines agree bit for bit, exports a
plain int8 model that the TFLM interpreter runs identically, and writes plots to out/.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASE_MODEL = ROOT / "examples/models/fashion5_cnn_int8.tflite"
SHARED_MODELS = Path(os.environ.get("TFLM_TRAIN_SHARED", ROOT.parent / "shared")) / "models"
OUT = ROOT / "out"
BUDGET = 256 * 1024
SCHEME = "last-2"
LR = 0.05
PER_CLASS = 100
EPOCHS = 3


def _tflm_logits(model_bytes: bytes, xs: np.ndarray) -> np.ndarray | None:
    try:
        import tflite_micro
    except ImportError:
        return None
    interp = tflite_micro.runtime.Interpreter.from_bytes(model_bytes)
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)).reshape(-1))
    return np.stack(outs)


def _c_available() -> bool:
    try:
        from .engine_c import CEngine  # noqa: F401
        from .trainable import convert
        CEngine(convert(BASE_MODEL, update="classifier", num_classes=5).bytes)
        return True
    except Exception as e:  # the C library not built, or an engine error: say so
        print(f"(C engine unavailable for training: {e}; using the numpy engine)")
        return False


def main() -> int:
    from . import SGD, Trainer, convert
    from .data import fit_to_input, load_data
    from .schemes import resolve

    OUT.mkdir(exist_ok=True)
    print(f"base model: {BASE_MODEL.relative_to(ROOT)} (Fashion-MNIST classes 0-4)")
    tm = convert(BASE_MODEL, update=SCHEME, num_classes=5, optimizer=SGD(LR), seed=0)
    print(f"\nconverted for the new task (classes 5-9), update scheme '{SCHEME}':")
    print(resolve(tm.scheme, tm.graph).summary())
    rep = tm.memory_report()
    print(rep.format(BUDGET))
    rep.plot(OUT / "demo_memory.png")
    tm.save(OUT / "fashion5to9.train.tflite")
    ok = rep.peak_sram <= BUDGET

    backend = "c" if _c_available() else "numpy"
    trainer = Trainer(tm, backend=backend)
    x, y = load_data(f"fashion-mnist#5-9@{PER_CLASS}")
    xt, yt = load_data("fashion-mnist:test#5-9@100")
    xq, xtq = fit_to_input(x, trainer.image), fit_to_input(xt, trainer.image)

    before = trainer.evaluate(xtq, yt)
    print(f"\naccuracy on {len(yt)} test images before fine-tuning: {before:.1%} "
          f"(new head, chance = 20%)")
    curve = []
    for epoch in range(EPOCHS):
        loss = trainer.fit(xq, y, epochs=1, shuffle_seed=epoch)[0]
        acc = trainer.evaluate(xtq, yt)
        curve.append((loss, acc))
        print(f"epoch {epoch + 1}/{EPOCHS} ({backend} engine): mean loss {loss:.3f}, "
              f"test accuracy {acc:.1%}")
    after = curve[-1][1]
    ok = ok and after > before + 0.2

    from .cli import _plot_curve
    _plot_curve(curve, OUT / "demo_curve.png")

    # the two engines are the same device: replay 20 steps on each and compare every bit
    a, b = Trainer(tm, backend="numpy"), Trainer(tm, backend=backend)
    la = [a.train_step(xi, yi) for xi, yi in zip(xq[:20], y[:20])]
    lb = [b.train_step(xi, yi) for xi, yi in zip(xq[:20], y[:20])]
    same = la == lb and all(np.array_equal(v, b.parameters()[k])
                            for k, v in a.parameters().items())
    print(f"\nnumpy engine == {backend} engine after 20 steps (losses, weights, biases, PRNG): "
          f"{same}")
    ok = ok and same

    exported = trainer.export(OUT / "fashion5to9_int8.tflite")
    ref = _tflm_logits(exported, xtq[:50])
    if ref is not None:
        ours = np.stack([trainer.logits(xi) for xi in xtq[:50]])
        match = bool(np.array_equal(ours, ref))
        print(f"exported plain int8 model runs in the TFLM interpreter with identical logits: "
              f"{match}")
        ok = ok and match
    print(f"\nwrote {OUT.relative_to(ROOT)}/demo_memory.png, demo_curve.png, "
          f"fashion5to9.train.tflite, fashion5to9_int8.tflite")
    print(f"peak SRAM {rep.peak_sram / 1024:.1f} KB of {BUDGET // 1024} KB; accuracy "
          f"{before:.1%} → {after:.1%}")
    print("demo", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
