"""Train the demo's base model: a small CNN on Fashion-MNIST classes 0-4 (the "factory" task),
converted to a full-integer int8 .tflite. The demo later fine-tunes it on the device.

    python examples/train_base_model.py [-o examples/models/fashion5_cnn_int8.tflite]

Deterministic up to TensorFlow's CPU kernels; the committed model is the one the demo uses.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_model(num_classes: int):
    import keras
    from keras import layers

    inp = keras.Input((28, 28, 1))
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)     # 14x14
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(24, 1, activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu6")(x)  # 7x7
    x = layers.Conv2D(32, 1, activation="relu6")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    y = layers.Conv2D(32, 1)(y)
    x = layers.Add()([x, y])                                                        # residual
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(num_classes)(x)
    return keras.Model(inp, out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", default=str(ROOT / "examples/models/fashion5_cnn_int8.tflite"))
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from converters.keras import to_int8_tflite
    from tflm_train.datasets import fashion_mnist

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    x, y = fashion_mnist("train")
    keep = y < 5
    x = (x[keep].astype(np.float32) / 255.0)[..., None]
    y = y[keep]
    model = build_model(5)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=args.epochs, validation_split=0.1, verbose=2)
    tflite = to_int8_tflite(model, x[:200])
    Path(args.output).write_bytes(tflite)
    print(f"wrote {args.output} ({len(tflite)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
