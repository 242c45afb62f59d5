"""Validation shared by the MAC ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), the part of
TFLM's conv_common.cc / depthwise_conv_common.cc / fully_connected_common.cc and kernel_util.cc
they have in common. Mirrored in C by micro_ops/engine/ops/tt_op_mac_common.c."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..kernels.conv_2d import Conv2DParams, PerChannelQuant
from ..quant import (ACT_NONE, ACT_RELU, ACT_RELU6, ACT_RELU_N1_TO_1, PADDING_SAME,
                     PADDING_VALID, activation_range, compute_padding)

ACTIVATIONS = {ACT_NONE: "NONE", ACT_RELU: "RELU", ACT_RELU_N1_TO_1: "RELU_N1_TO_1",
               ACT_RELU6: "RELU6"}
PADDINGS = {PADDING_SAME: "SAME", PADDING_VALID: "VALID"}


def shape_error(kernel, detail: str) -> ShapeError:
    return ShapeError(f"op {kernel.op.index} ({kernel.op.opcode}): {detail}")


def tensor_desc(t) -> str:
    return f"tensor {t.index} '{t.name}'"


def check_arity(kernel, min_inputs: int = 2, max_inputs: int = 3) -> None:
    n_in, n_out = len(kernel.op.inputs), len(kernel.op.outputs)
    if not min_inputs <= n_in <= max_inputs or n_out != 1:
        raise shape_error(kernel, f"has {n_in} inputs and {n_out} outputs, expected "
                                  f"{min_inputs}-{max_inputs} inputs and 1 output")
    if kernel.input(0) is None or kernel.input(1) is None:
        raise shape_error(kernel, "input and filter must be present")


def check_activation(kernel, act: int) -> None:
    if act not in ACTIVATIONS:
        raise kernel.unsupported(f"fused activation {act} is not supported (supported: "
                                 f"{', '.join(ACTIVATIONS.values())})")


def check_int8_activation_tensor(kernel, t, role: str) -> None:
    """Input/output: int8 with per-tensor affine quantization."""
    kernel.require_dtype(t, np.int8)
    if t.quant is None:
        raise kernel.unsupported(f"{role} {tensor_desc(t)} has no quantization parameters "
                                 "(only int8 quantized models are supported)")
    if t.quant.per_channel:
        raise kernel.unsupported(f"{role} {tensor_desc(t)} is quantized per channel; "
                                 "activations must be quantized per tensor")
    zp = int(t.quant.zero_point[0])
    if not -128 <= zp <= 127:
        raise kernel.unsupported(f"{role} {tensor_desc(t)} zero point {zp} is outside int8")


def filter_scales(kernel, flt, channels: int) -> tuple[np.ndarray, bool]:
    """The filter's scale of every output channel (float32) and whether it is per channel.

    As TFLM: one scale (broadcast) or one per output channel along quantized_dimension;
    weights are symmetric, so every zero point must be 0 (the int8 kernels ignore it)."""
    kernel.require_dtype(flt, np.int8)
    q = flt.quant
    if q is None:
        raise kernel.unsupported(f"filter {tensor_desc(flt)} has no quantization parameters")
    n = len(q.scale)
    if n > 1:
        if n != channels or flt.shape[q.axis] != n:
            raise kernel.unsupported(
                f"filter {tensor_desc(flt)} has {n} scales on dimension {q.axis} of shape "
                f"{list(flt.shape)}; expected 1 or one per output channel ({channels})")
    if np.any(q.zero_point != 0):
        raise kernel.unsupported(f"filter {tensor_desc(flt)} has a non-zero zero point; "
                                 "only symmetric int8 weights are supported")
    scales = np.asarray(q.scale, dtype=np.float32)
    return (scales if n > 1 else np.repeat(scales, channels)), n > 1


def check_scales(kernel, inp, filter_scales: np.ndarray, out) -> None:
    """Scales that give a meaningful requantization: input/output finite and positive,
    filter finite and non-negative (the C glue rejects the same; NaN is UB to convert)."""
    for t, role in ((inp, "input"), (out, "output")):
        s = np.float32(t.scale)
        if not (np.isfinite(s) and s > 0):
            raise kernel.unsupported(f"{role} {tensor_desc(t)} scale {s} must be positive")
    if not np.all(np.isfinite(filter_scales) & (filter_scales >= 0)):
        raise kernel.unsupported("filter scales must be finite and >= 0")


def check_shifts(kernel, shifts) -> None:
    """MultiplyByQuantizedMultiplier handles shifts -31..30; a larger left shift overflows
    (only a malformed scale gets there)."""
    shifts = np.asarray(shifts)
    if np.any((shifts < -31) | (shifts > 30)):
        raise kernel.unsupported("requantization scale s_in * s_w / s_out out of range "
                                 "(>= 2^30)")


def activation(kernel, act: int, out) -> tuple[int, int]:
    """Clamp range of the fused activation (TFLite CalculateActivationRangeQuantized)."""
    check_activation(kernel, act)
    # The bounds are 6 / scale (or 1 / scale) output steps: keep them within int32 (as C).
    if act != ACT_NONE and not np.float32(6.0) / np.float32(out.scale) < np.float32(1e9):
        raise kernel.unsupported(f"output scale {out.scale} too small for a fused activation")
    return activation_range(act, out.scale, out.zero_point)


def check_bias(kernel, bias, channels: int) -> None:
    if bias is None:
        return
    kernel.require_dtype(bias, np.int32)
    size = int(np.prod(bias.shape, dtype=np.int64))
    if size != channels:
        raise shape_error(kernel, f"bias {tensor_desc(bias)} has {size} elements, expected "
                                  f"{channels} (output channels)")


def window_options(kernel, opts: dict) -> tuple[int, int, int, int, int, int]:
    """(padding, stride_w, stride_h, dilation_w, dilation_h, activation) from Conv2DOptions /
    DepthwiseConv2DOptions (schema defaults for absent fields)."""
    padding = int(opts.get("padding", PADDING_SAME))
    sw, sh = int(opts.get("stride_w", 0)), int(opts.get("stride_h", 0))
    dw, dh = int(opts.get("dilation_w_factor", 1)), int(opts.get("dilation_h_factor", 1))
    act = int(opts.get("fused_activation_function", ACT_NONE))
    if padding not in PADDINGS:
        raise kernel.unsupported(f"padding {padding} is not supported (supported: SAME, VALID)")
    if sw <= 0 or sh <= 0:
        raise kernel.unsupported(f"stride {sw}x{sh} (w x h) must be positive")
    if dw <= 0 or dh <= 0:
        raise kernel.unsupported(f"dilation {dw}x{dh} (w x h) must be positive")
    check_activation(kernel, act)
    return padding, sw, sh, dw, dh, act


def window_geometry(kernel, window, inp, flt, out, channels: int) -> tuple[int, int]:
    """(pad_w, pad_h) of a rank-4 conv window; checks out is [n, out_h, out_w, channels]."""
    padding, sw, sh, dw, dh, _ = window
    n, h, w, _ = inp.shape
    _, kh, kw, _ = flt.shape
    out_h, pad_h = compute_padding(padding, h, kh, sh, dh)
    out_w, pad_w = compute_padding(padding, w, kw, sw, dw)
    if tuple(out.shape) != (n, out_h, out_w, channels):
        raise shape_error(kernel, f"output shape {list(out.shape)}, expected "
                                  f"{[n, out_h, out_w, channels]}")
    return pad_w, pad_h


def check_weights(kernel, inp, flt, bias, out, channels: int) -> tuple[np.ndarray, bool]:
    """check_bias, filter_scales, check_scales, in that order: filter_scales' result."""
    check_bias(kernel, bias, channels)
    scales, per_channel = filter_scales(kernel, flt, channels)
    check_scales(kernel, inp, scales, out)
    return scales, per_channel


def conv_constants(kernel, multiplier, window, inp, out, scales: np.ndarray, pad_w: int,
                   pad_h: int) -> tuple[PerChannelQuant, Conv2DParams]:
    """What CONV_2D and DEPTHWISE_CONV_2D derive alike: the requantization constants and the
    Conv2DParams fields (offsets, window, padding, activation range); depthwise adds its
    depth multiplier. Mirrors tt_mac_conv_constants."""
    _, sw, sh, dw, dh, act = window
    m, s = zip(*(multiplier(inp.scale, sc, out.scale) for sc in scales))
    check_shifts(kernel, s)
    quant = PerChannelQuant(np.array(m, dtype=np.int32), np.array(s, dtype=np.int32))
    params = Conv2DParams(
        input_offset=-inp.zero_point, output_offset=out.zero_point,
        stride_w=sw, stride_h=sh, dilation_w=dw, dilation_h=dh, pad_w=pad_w, pad_h=pad_h,
        activation=activation(kernel, act, out))
    return quant, params
