"""Validation shared by the non-MAC ops' glue (ADD, pooling, MEAN, RESHAPE, SOFTMAX, PAD,
QUANTIZE, DEQUANTIZE). Mirrored in C by micro_ops/engine/ops/tt_op_checks.h."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..quant import ACT_NONE, ACT_RELU, ACT_RELU6, ACT_RELU_N1_TO_1

ACTIVATIONS = {ACT_NONE: "NONE", ACT_RELU: "RELU", ACT_RELU_N1_TO_1: "RELU_N1_TO_1",
               ACT_RELU6: "RELU6"}


def desc(t) -> str:
    return f"tensor {t.index} '{t.name}'"


def shape_error(kernel, detail: str) -> ShapeError:
    return ShapeError(f"op {kernel.op.index} ({kernel.op.opcode}): {detail}")


def arity(kernel, inputs, outputs: int = 1) -> None:
    """inputs: an int or a (min, max) pair; every listed input must be present."""
    lo, hi = (inputs, inputs) if isinstance(inputs, int) else inputs
    n_in, n_out = len(kernel.op.inputs), len(kernel.op.outputs)
    if not lo <= n_in <= hi or n_out != outputs:
        want = f"{lo}" if lo == hi else f"{lo}-{hi}"
        raise shape_error(kernel, f"has {n_in} inputs and {n_out} outputs, expected {want} "
                                  f"inputs and {outputs} output")
    if any(i < 0 for i in kernel.op.inputs):
        raise shape_error(kernel, "an input is absent")


def int8_tensor(kernel, t, role: str) -> None:
    """int8 with per-tensor affine quantization and an int8 zero point."""
    kernel.require_dtype(t, np.int8)
    if t.quant is None:
        raise kernel.unsupported(f"{role} {desc(t)} has no quantization parameters "
                                 "(only int8 quantized models are supported)")
    if t.quant.per_channel:
        raise kernel.unsupported(f"{role} {desc(t)} is quantized per channel; "
                                 "activations must be quantized per tensor")
    zp = int(t.quant.zero_point[0])
    if not -128 <= zp <= 127:
        raise kernel.unsupported(f"{role} {desc(t)} zero point {zp} is outside int8")


def activation(kernel, act: int) -> int:
    if act not in ACTIVATIONS:
        raise kernel.unsupported(f"fused activation {act} is not supported (supported: "
                                 f"{', '.join(ACTIVATIONS.values())})")
    return act


def scale_ratio(kernel, input_scale: float, output_scale: float) -> None:
    """input/output rescale ratio that TFLM's arithmetic represents: finite, > 0, < 2^30."""
    s_in, s_out = float(np.float32(input_scale)), float(np.float32(output_scale))
    ratio = s_in / s_out if s_out != 0 else float("inf")
    if not 0.0 < ratio < float(1 << 30):
        raise kernel.unsupported(f"input/output scale ratio {ratio} must be positive, finite "
                                 "and below 2^30")


def constant_int32(kernel, t, role: str) -> np.ndarray:
    if t.dtype != np.int32:
        raise kernel.unsupported(f"{role} {desc(t)} is {t.dtype.name}, expected int32")
    if t.data is None:
        raise kernel.unsupported(f"{role} {desc(t)} is not a constant; only constant "
                                 f"{role} tensors are supported")
    return np.asarray(t.data, dtype=np.int64).reshape(-1)


def elements(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))
