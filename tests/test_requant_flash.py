"""The forward MAC ops' requantization constants in flash ("tt_requant" metadata).

compile_model writes them; the C engine then reads them from the model bytes instead of its
arena (8 B per output channel), after checking each against its own value. Results must not
change, and a model without the table must behave exactly as before."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, shared_model

import tflm_train as tt
from tflm_train import ir, tflite_io
from tflm_train.compiler import REQUANT_NAME, add_metadata, read_metadata, requant_table
from tflm_train.errors import ModelFormatError

engine_c = pytest.importorskip("tflm_train.engine_c")
CEngine = engine_c.CEngine

FASHION = ROOT / "examples" / "models" / "fashion5_cnn_int8.tflite"
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@pytest.fixture(scope="module", autouse=True)
def _library_built():
    try:
        engine_c._library()
    except Exception as e:  # pragma: no cover - depends on the build
        pytest.skip(str(e))


def _without_table(data: bytes) -> bytes:
    m = tflite_io.read_model(data)
    m.metadata = [md for md in m.metadata if md.name != REQUANT_NAME.encode()]
    return tflite_io.write_model(m)


def _with_table(data: bytes) -> bytes:
    m = tflite_io.read_model(data)
    add_metadata(m, REQUANT_NAME, requant_table(ir.from_model(m)))
    return tflite_io.write_model(m)


def _mac_quant_entries(g: ir.Graph) -> int:
    """Constants the C glue keeps per MAC op: one per output channel (one for a per-tensor FC)."""
    n = 0
    for op in g.ops:
        if op.opcode in MAC_OPS:
            per_tensor_fc = op.opcode == "FULLY_CONNECTED" and \
                len(g.tensors[op.inputs[1]].quant.scale) == 1
            n += 1 if per_tensor_fc else g.tensors[op.outputs[0]].shape[-1]
    return n


def _cases():
    yield "fashion5-bias", lambda: tt.convert(FASHION, update="bias", num_classes=5)
    yield "resnet8-last-2", lambda: tt.convert(
        shared_model("mlcommons/resnet8_cifar10_int8.tflite"), update="last-2", num_classes=10)


@pytest.mark.parametrize("name,make", list(_cases()), ids=[c[0] for c in _cases()])
def test_compiled_models_use_flash_tables_bit_identically(name, make):
    tm = make()
    table = read_metadata(tm.model, REQUANT_NAME)
    assert table is not None and len(table) % 16 == 0
    g = tm.graph
    channels = _mac_quant_entries(g)
    assert channels > 0
    plain = _without_table(tm.bytes)
    with_t, without = CEngine(tm.bytes), CEngine(plain)
    # persistent_bytes is rounded up to 16 bytes, hence the 15.
    assert without.persistent_bytes - with_t.persistent_bytes >= 8 * channels - 15
    # Training steps (forward, backward, in-place updates): every output identical.
    rng = np.random.default_rng(3)
    (xs, xd), (ls, ld) = with_t.input_specs
    for step in range(4):
        x = rng.integers(-128, 128, xs, dtype=np.int64).astype(xd)
        y = np.full(ls, step % 3, dtype=ld)
        a, b = with_t.invoke([x, y]), without.invoke([x, y])
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_inference_model_with_table_is_bit_identical(rng):
    data = shared_model("mlcommons/kws_dscnn_int8.tflite").read_bytes()
    e0, e1 = CEngine(data), CEngine(_with_table(data))
    g = tt.load(data)
    assert e0.persistent_bytes - e1.persistent_bytes >= 8 * _mac_quant_entries(g) - 15
    (shape, dtype), = e0.input_specs
    for _ in range(5):
        x = rng.integers(-128, 128, shape).astype(dtype)
        np.testing.assert_array_equal(e0.invoke([x])[0], e1.invoke([x])[0])


def test_stale_table_is_rejected():
    """A table computed for other scales (here: another model's) is never trusted."""
    tm = tt.convert(FASHION, update="bias", num_classes=5)
    m = tflite_io.read_model(tm.bytes)
    words = np.frombuffer(read_metadata(m, REQUANT_NAME), "<i4").copy()
    first_mult = words[4] // 4
    words[first_mult] ^= 1
    add_metadata(m, REQUANT_NAME, words.tobytes())
    with pytest.raises(ModelFormatError, match="tt_requant"):
        CEngine(tflite_io.write_model(m))
