"""Op glue for the numpy reference engine: one small class per TFLite builtin op.

Each class validates the op and computes its integer constants once at construction
(TFLM's Prepare), and ``eval`` runs the matching pure kernel in ``tflm_train.kernels``
(TFLM's Eval). The C engine's glue in ``micro_ops/engine/`` mirrors these classes.
"""
from __future__ import annotations

import importlib

from .base import OpKernel

# builtin op name → (module in this package, class name)
_REGISTRY = {
    "CONV_2D": ("conv_2d", "Conv2D"),
    "DEPTHWISE_CONV_2D": ("depthwise_conv_2d", "DepthwiseConv2D"),
    "FULLY_CONNECTED": ("fully_connected", "FullyConnected"),
    "ADD": ("add", "Add"),
    "AVERAGE_POOL_2D": ("pooling", "AveragePool2D"),
    "MAX_POOL_2D": ("pooling", "MaxPool2D"),
    "MEAN": ("mean", "Mean"),
    "RESHAPE": ("reshape", "Reshape"),
    "SOFTMAX": ("softmax", "Softmax"),
    "PAD": ("pad", "Pad"),
    "QUANTIZE": ("quantize", "Quantize"),
    "DEQUANTIZE": ("dequantize", "Dequantize"),
}
# training custom ops (docs/train-format.md), keyed as ir.Op.opcode spells them
_TRAINING = {
    "TT_ACT_MASK": "ActMask",
    "TT_SAVE_SLICE": "SaveSlice",
    "TT_SOFTMAX_XENT": "SoftmaxXent",
    "TT_CONV_2D_GRAD": "Conv2DGrad",
    "TT_DEPTHWISE_CONV_2D_GRAD": "DepthwiseConv2DGrad",
    "TT_FULLY_CONNECTED_GRAD": "FullyConnectedGrad",
    "TT_ADD_GRAD": "AddGrad",
    "TT_AVERAGE_POOL_2D_GRAD": "AveragePool2DGrad",
    "TT_MEAN_GRAD": "MeanGrad",
    "TT_MAX_POOL_2D_GRAD": "MaxPool2DGrad",
    "TT_PAD_GRAD": "PadGrad",
    "TT_GRAD_ACCUMULATE": "GradAccumulate",
    "TT_CONV_2D": "SplitConv2D",
    "TT_DEPTHWISE_CONV_2D": "SplitDepthwiseConv2D",
    "TT_FULLY_CONNECTED": "SplitFullyConnected",
}
_REGISTRY.update({f"CUSTOM:{code}": ("training", cls) for code, cls in _TRAINING.items()})
# forward custom ops the compiler emits to save memory (docs/train-format.md)
_REGISTRY["CUSTOM:TT_FUSED_CHAIN"] = ("fused_chain", "FusedChain")
TRAINING_OPS = tuple(_TRAINING) + ("TT_FUSED_CHAIN",)
SUPPORTED_OPS = tuple(k for k in _REGISTRY if not k.startswith("CUSTOM:"))


def kernel_class(opcode: str) -> type[OpKernel] | None:
    """The OpKernel class for a builtin op name, or None if unsupported."""
    entry = _REGISTRY.get(opcode)
    if entry is None:
        return None
    module = importlib.import_module(f"{__name__}.{entry[0]}")
    return getattr(module, entry[1])


__all__ = ["OpKernel", "SUPPORTED_OPS", "TRAINING_OPS", "kernel_class"]
