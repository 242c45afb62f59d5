"""Keras model + representative data → full-integer int8 ``.tflite`` (TensorFlow's converter).

    from tflm_train.converters.keras import to_int8_tflite
    tflite_bytes = to_int8_tflite(keras_model, x_representative)

Inputs and outputs are int8 by default (``io_dtype="int8"``); pass ``io_dtype="float32"`` to
keep float I/O, which puts QUANTIZE / DEQUANTIZE ops at the model edges.
"""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def to_int8_tflite(model, representative, *, io_dtype: str = "int8",
                   per_channel_dense: bool = False, max_samples: int = 100) -> bytes:
    """Convert ``model`` (a built Keras model) to an int8 TFLite flatbuffer.

    ``representative`` is an array of inputs (N, ...) used to calibrate activation ranges.
    ``per_channel_dense`` asks the converter for per-channel FULLY_CONNECTED weights.
    """
    import tensorflow as tf

    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim < 2 or len(rep) == 0:
        raise ValueError("representative data must be a non-empty array of shape (N, ...)")

    def gen():
        for sample in rep[:max_samples]:
            yield [sample[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if per_channel_dense:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = False
    else:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    if io_dtype == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif io_dtype != "float32":
        raise ValueError(f"io_dtype must be 'int8' or 'float32', not {io_dtype!r}")
    return bytes(converter.convert())
