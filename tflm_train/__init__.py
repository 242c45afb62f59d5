"""tflm-train: on-device training for TensorFlow Lite Micro."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (EngineError, ModelFormatError, ShapeError, TflmTrainError,  # noqa: F401
                     UnsupportedOpError)
from .ir import Graph, load  # noqa: F401


_LAZY = {
    "Interpreter": ("interpreter", "Interpreter"),
    "convert": ("trainable", "convert"),
    "load_trainable": ("trainable", "load_trainable"),
    "TrainableModel": ("trainable", "TrainableModel"),
    "Trainer": ("trainer", "Trainer"),
    "SGD": ("compiler", "SGD"),
    "UpdateScheme": ("schemes", "UpdateScheme"),
}


def __getattr__(name):
    # Lazy: importing the package must not load TensorFlow-free heavy parts or the C library.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(name)
