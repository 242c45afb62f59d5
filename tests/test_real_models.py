"""Every shared model runs bit-exactly: numpy and C engine outputs equal the TFLM interpreter's
on 20 random inputs each, and person_detect classifies its two sample images correctly."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_model, shared_tflite_models, tflm_invoke

from tflm_train import Interpreter

MODELS = shared_tflite_models() or ["mlcommons/resnet8_cifar10_int8.tflite"]
N_INPUTS = 20


@pytest.fixture(scope="module", params=MODELS)
def model_and_reference(request):
    path = shared_model(request.param)
    data = path.read_bytes()
    interp = Interpreter(data, backend="numpy")
    rng = np.random.default_rng(7)
    t = interp.graph.input_tensors()[0]
    xs = [rng.integers(-128, 128, size=t.shape, dtype=np.int8) for _ in range(N_INPUTS)]
    refs = [tflm_invoke(data, [x])[0] for x in xs]
    return data, interp, xs, refs


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_bit_exact_with_tflm(model_and_reference, backend):
    data, np_interp, xs, refs = model_and_reference
    interp = np_interp if backend == "numpy" else Interpreter(data, backend="c")
    for i, (x, ref) in enumerate(zip(xs, refs)):
        y = interp.invoke(x)
        assert y.dtype == ref.dtype and y.shape == ref.shape
        mismatch = int(np.sum(y != ref))
        assert mismatch == 0, f"input {i}: {mismatch} of {ref.size} outputs differ from TFLM"
    # the outputs are not degenerate (a constant output would pass trivially)
    assert len({r.tobytes() for r in refs}) > 1


def _bmp_int8(name: str) -> np.ndarray:
    raw = (SHARED_MODELS / "tflm" / name).read_bytes()
    offset = int.from_bytes(raw[10:14], "little")
    # BMP rows are stored bottom-up
    img = np.frombuffer(raw, dtype=np.int8, count=96 * 96, offset=offset).reshape(96, 96)
    return np.ascontiguousarray(img[::-1]).reshape(1, 96, 96, 1)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_person_detect_sample_images(backend):
    path = shared_model("tflm/person_detect_int8.tflite")
    interp = Interpreter(path, backend=backend)
    person = interp.invoke(_bmp_int8("person.bmp"))[0]
    no_person = interp.invoke(_bmp_int8("no_person.bmp"))[0]
    assert np.argmax(person) == 1, person
    assert np.argmax(no_person) == 0, no_person
    ref = tflm_invoke(path.read_bytes(), [_bmp_int8("person.bmp")])[0][0]
    np.testing.assert_array_equal(person, ref)
