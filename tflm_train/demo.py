"""``make demo``: inspect a bundled int8 model and run it bit-exactly on both engines.

Runs the bundled Fashion-MNIST CNN (examples/models) on test images with the numpy reference
engine, the C engine and the TFLM interpreter, and checks that all three agree bit for bit.
With ../shared present it also runs TFLM's person-detection model on its two sample images.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASE_MODEL = ROOT / "examples/models/fashion5_cnn_int8.tflite"
SHARED_MODELS = Path(os.environ.get("TFLM_TRAIN_SHARED", ROOT.parent / "shared")) / "models"


def _tflm_outputs(model_bytes: bytes, xs: np.ndarray) -> np.ndarray | None:
    try:
        import tflite_micro
    except ImportError:
        return None
    interp = tflite_micro.runtime.Interpreter.from_bytes(model_bytes)
    outs = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0))[0])
    return np.stack(outs)


def run_fashion(n: int = 200) -> bool:
    from tqdm import tqdm

    from . import Interpreter, ir
    from .datasets import FASHION_MNIST_CLASSES, fashion_mnist
    from .quant import quantize_array
    from .summary import format_summary, summarize

    interp_c = Interpreter(BASE_MODEL, backend="c")
    interp_np = Interpreter(BASE_MODEL, backend="numpy")
    print(format_summary(summarize(ir.load(BASE_MODEL), interp_c.arena_bytes),
                         BASE_MODEL.relative_to(ROOT).as_posix()))
    print()
    x, y = fashion_mnist("test")
    keep = y < 5
    x, y = x[keep][:n], y[keep][:n]
    d = interp_c.input_details[0]
    xq = quantize_array(x[..., None] / 255.0, d["scale"], d["zero_point"])
    out_c, out_np = [], []
    for xi in tqdm(xq, desc="inference (C and numpy engines)", unit="img"):
        out_c.append(interp_c.invoke(xi)[0])
        out_np.append(interp_np.invoke(xi)[0])
    out_c, out_np = np.stack(out_c), np.stack(out_np)
    out_tflm = _tflm_outputs(BASE_MODEL.read_bytes(), xq[..., None] if xq.ndim == 3 else xq)
    acc = float(np.mean(out_c.argmax(1) == y))
    print(f"classes: {', '.join(FASHION_MNIST_CLASSES[:5])}")
    print(f"top-1 accuracy on {n} Fashion-MNIST test images (classes 0-4): {acc:.1%}")
    ok = bool(np.array_equal(out_c, out_np))
    print(f"C engine == numpy engine, every bit: {ok}")
    if out_tflm is not None:
        same = bool(np.array_equal(out_c, out_tflm))
        print(f"C engine == TFLM interpreter, every bit: {same}")
        ok = ok and same
    return ok


def run_person_detect() -> bool:
    from . import Interpreter

    model = SHARED_MODELS / "tflm/person_detect_int8.tflite"
    if not model.is_file():
        print("(../shared not present: skipping the person-detection example)")
        return True
    interp = Interpreter(model, backend="c")
    print(f"\nperson_detect_int8.tflite: C engine arena {interp.arena_bytes} bytes")
    ok = True
    for name, expect in (("person.bmp", 1), ("no_person.bmp", 0)):
        raw = (SHARED_MODELS / "tflm" / name).read_bytes()
        offset = int.from_bytes(raw[10:14], "little")
        img = np.frombuffer(raw, dtype=np.int8, count=96 * 96, offset=offset).reshape(96, 96, 1)
        img = np.ascontiguousarray(img[::-1])  # BMP rows are stored bottom-up
        scores = interp.invoke(img)[0]
        label = ["no person", "person"][int(np.argmax(scores))]
        print(f"  {name:<14} scores {scores.tolist()} → {label}")
        ok = ok and int(np.argmax(scores)) == expect
    return ok


def main() -> int:
    ok = run_fashion()
    ok = run_person_detect() and ok
    print("\ndemo", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
