"""tflm-train: on-device training for TensorFlow Lite Micro."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (EngineError, ModelFormatError, ShapeError, TflmTrainError,  # noqa: F401
                     UnsupportedOpError)
from .ir import Graph, load  # noqa: F401


def __getattr__(name):
    # Lazy: importing the package must not load the C library or numpy engine eagerly.
    if name == "Interpreter":
        from .interpreter import Interpreter
        return Interpreter
    raise AttributeError(name)
