"""Flatbuffer I/O and IR: every shared model loads; load → save → load is lossless; saved
buffers are 16-byte aligned; the saved file still runs identically in the TFLM interpreter."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_MODELS, shared_model, shared_tflite_models, tflm_invoke

from ai_edge_litert import schema_py_generated as schema
from tflm_train import ir, tflite_io
from tflm_train.errors import ModelFormatError

MODELS = shared_tflite_models() or ["mlcommons/resnet8_cifar10_int8.tflite"]


def _buffer_data_offsets(data: bytes) -> list[int]:
    root = schema.Model.GetRootAs(data, 0)
    offs = []
    for i in range(root.BuffersLength()):
        b = root.Buffers(i)
        if b.DataLength():
            offs.append(b._tab.Vector(b._tab.Offset(4)))
    return offs


@pytest.mark.parametrize("rel", MODELS)
def test_round_trip_is_lossless_and_aligned(rel, rng):
    path = shared_model(rel)
    original = path.read_bytes()
    g1 = ir.load(path)
    saved = tflite_io.write_model(tflite_io.read_model(original))
    g2 = ir.load(saved)

    assert saved[4:8] == b"TFL3"
    assert all(off % 16 == 0 for off in _buffer_data_offsets(saved))
    assert [(o.opcode, o.inputs, o.outputs, o.options) for o in g1.ops] == \
           [(o.opcode, o.inputs, o.outputs, o.options) for o in g2.ops]
    for a, b in zip(g1.tensors, g2.tensors):
        assert (a.name, a.shape, a.dtype) == (b.name, b.shape, b.dtype)
        if a.data is not None:
            np.testing.assert_array_equal(a.data, b.data)
        if a.quant is not None:
            np.testing.assert_array_equal(a.quant.scale, b.quant.scale)
            np.testing.assert_array_equal(a.quant.zero_point, b.quant.zero_point)
    # a second round trip is byte-identical (the writer is deterministic)
    assert tflite_io.write_model(tflite_io.read_model(saved)) == saved

    t_in = g1.input_tensors()[0]
    for _ in range(3):
        x = rng.integers(-128, 128, size=t_in.shape, dtype=np.int8)
        np.testing.assert_array_equal(tflm_invoke(original, [x])[0], tflm_invoke(saved, [x])[0])


def test_person_detect_bias_axis_beyond_rank_is_accepted():
    """person_detect has quantized_dimension=3 on 1-D per-channel biases: TFLM accepts it."""
    g = ir.load(shared_model("tflm/person_detect_int8.tflite"))
    raw = tflite_io.read_model(SHARED_MODELS / "tflm/person_detect_int8.tflite")
    odd = [t for t in raw.subgraphs[0].tensors
           if t.quantization is not None and t.quantization.quantizedDimension == 3
           and len(t.shape) == 1]
    assert len(odd) == 14
    names = {t.name.decode() for t in odd}
    for t in g.tensors:
        if t.name in names:
            assert t.quant.axis == 0 and t.quant.per_channel


def test_ir_options_use_schema_names_and_enum_values():
    g = ir.load(shared_model("mlcommons/resnet8_cifar10_int8.tflite"))
    conv = next(o for o in g.ops if o.opcode == "CONV_2D")
    assert set(conv.options) >= {"padding", "stride_w", "stride_h", "fused_activation_function",
                                 "dilation_w_factor", "dilation_h_factor"}
    assert conv.options["padding"] in (0, 1)


@pytest.mark.parametrize("data, match", [
    (b"", "too short"),
    (b"\x00" * 64, "identifier"),
    (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 32, "outside the file"),
])
def test_malformed_headers_are_rejected(data, match):
    with pytest.raises(ModelFormatError, match=match):
        tflite_io.read_model(data)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        ir.load(tmp_path / "nope.tflite")
