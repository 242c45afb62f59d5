"""Shared fixtures: paths to ../shared models, the TFLM reference interpreter, Keras models."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TFLM_TRAIN_SHARED", ROOT.parent / "shared"))
SHARED_MODELS = SHARED / "models"


def shared_model(rel: str) -> Path:
    """Path of a model in ../shared/models, or skip the test with the reason."""
    p = SHARED_MODELS / rel
    if not p.is_file():
        pytest.skip(f"{p} not present (../shared is only in CI and developer checkouts)")
    return p


def shared_tflite_models() -> list[str]:
    if not SHARED_MODELS.is_dir():
        return []
    return sorted(str(p.relative_to(SHARED_MODELS)) for p in SHARED_MODELS.glob("*/*.tflite"))


def tflm_invoke(model_bytes: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the real TFLM interpreter (tflite-micro from PyPI): the bit-exactness reference."""
    import tflite_micro

    from tflm_train import tflite_io

    n_out = len(tflite_io.read_model(bytes(model_bytes)).subgraphs[0].outputs)
    interp = tflite_micro.runtime.Interpreter.from_bytes(bytes(model_bytes))
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return [np.array(interp.get_output(i)) for i in range(n_out)]


def random_input(tensor, rng: np.random.Generator) -> np.ndarray:
    """A random array for an IR input tensor (int8 full range, or floats in [-1, 1))."""
    if tensor.dtype == np.int8:
        return rng.integers(-128, 128, size=tensor.shape, dtype=np.int8)
    if tensor.dtype == np.float32:
        return rng.uniform(-1, 1, size=tensor.shape).astype(np.float32)
    raise TypeError(f"no random input for {tensor.dtype}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
