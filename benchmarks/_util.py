"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = Path(os.environ.get("TFLM_TRAIN_SHARED", ROOT.parent / "shared")) / "models"


def capture_fd_output(fn) -> str:
    """Run fn() and return what C/C++ code wrote to file descriptors 1 and 2."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            fn()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def tflm_arena_bytes(model_bytes: bytes) -> int:
    """TFLM's own arena total for the model, from RecordingMicroAllocator (print_allocations)."""
    import tflite_micro

    interp = tflite_micro.runtime.Interpreter.from_bytes(model_bytes)
    text = capture_fd_output(interp.print_allocations)
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise RuntimeError(f"could not read TFLM's arena size from: {text[:200]!r}")
    return int(m.group(1))


def median_times(fns, repeat: int, warmup: int = 2) -> list[float]:
    """Median seconds per call of each function, the calls interleaved (a, b, a, b, ...) so
    that a slow spell of the shared host falls on all of them alike: their ratios stay put."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [sorted(ts)[len(ts) // 2] for ts in times]
