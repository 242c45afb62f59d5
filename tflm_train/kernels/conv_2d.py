"""CONV_2D int8 reference kernel (TFLite reference_integer_ops::ConvPerChannel), vectorised.

Mirrors ``micro_ops/kernels/tt_conv_2d.c``: ``conv_2d(params, quant, input, filter, bias,
output_shape)`` ↔ ``tt_conv_2d(&params, &quant, &input_dims, input, &filter_dims, filter, bias,
&output_dims, output)``; ``conv_2d_split`` ↔ ``tt_conv_2d_split`` (a filter stored as its
trainable slice and frozen rest, split along the last axis).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import multiply_by_quantized_multiplier, quantize_multiplier


@dataclass
class PerChannelQuant:
    """tt_per_channel_quant: one fixed-point multiplier/shift per output channel (int32)."""

    multiplier: np.ndarray
    shift: np.ndarray


@dataclass
class Conv2DParams:
    """tt_conv_2d_params. Offsets are negated/plain zero points as in TFLite's ConvParams."""

    input_offset: int       # -input zero point
    output_offset: int      # output zero point
    stride_w: int
    stride_h: int
    dilation_w: int
    dilation_h: int
    pad_w: int              # leading (left) padding
    pad_h: int              # leading (top) padding
    activation: tuple[int, int]   # tt_activation {min, max} in output units


def conv_2d_multiplier(input_scale, filter_scale, output_scale) -> tuple[int, int]:
    """Per-channel requantization constant, as TFLite's PopulateConvolutionQuantizationParams:
    each float32 scale is widened to double before the product (not a float32 product)."""
    real = float(np.float32(input_scale)) * float(np.float32(filter_scale)) \
        / float(np.float32(output_scale))
    return quantize_multiplier(real)


def requantize(acc: np.ndarray, quant: PerChannelQuant, output_offset: int,
               activation: tuple[int, int]) -> np.ndarray:
    """int32 accumulators (channel last) → int8: multiplier, offset, clamp."""
    acc = np.asarray(acc, dtype=np.int64).astype(np.int32).astype(np.int64)  # C int32 wrap
    y = multiply_by_quantized_multiplier(acc, quant.multiplier.astype(np.int64),
                                         quant.shift.astype(np.int64))
    y = y + output_offset
    return np.clip(y, activation[0], activation[1]).astype(np.int8)


def _windows(x: np.ndarray, kh: int, kw: int, params, out_h: int, out_w: int) -> np.ndarray:
    """x: (N, H, W, C) with the input offset already added (so zero padding = omitted
    taps). Returns the (N, out_h, out_w, kh, kw, C) receptive fields."""
    n, h, w, c = x.shape
    eff_h = (kh - 1) * params.dilation_h + 1
    eff_w = (kw - 1) * params.dilation_w + 1
    need_h = (out_h - 1) * params.stride_h + eff_h
    need_w = (out_w - 1) * params.stride_w + eff_w
    top, left = params.pad_h, params.pad_w
    bottom = max(need_h - h - top, 0)
    right = max(need_w - w - left, 0)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    # Negative padding cannot occur for SAME/VALID, but keep slicing safe.
    xp = xp[:, :need_h, :need_w, :]
    v = np.lib.stride_tricks.sliding_window_view(xp, (eff_h, eff_w), axis=(1, 2))
    # v: (N, need_h-eff_h+1, need_w-eff_w+1, C, eff_h, eff_w)
    v = v[:, ::params.stride_h, ::params.stride_w, :, ::params.dilation_h, ::params.dilation_w]
    v = v[:, :out_h, :out_w]
    return v.transpose(0, 1, 2, 4, 5, 3)


def conv_2d(params: Conv2DParams, quant: PerChannelQuant, input: np.ndarray,
            filter: np.ndarray, bias: np.ndarray | None,
            output_shape: tuple[int, int, int, int]) -> np.ndarray:
    """input (N,H,W,Cin) int8, filter (Cout,KH,KW,Cin/groups) int8, bias (Cout,) int32 or None
    → output int8 of ``output_shape`` (N, OH, OW, Cout). Grouped when Cin > filter depth."""
    n, oh, ow, oc = output_shape
    kh, kw, fc = filter.shape[1], filter.shape[2], filter.shape[3]
    groups = input.shape[3] // fc
    per_group = oc // groups
    x = input.astype(np.float64) + params.input_offset
    win = _windows(x, kh, kw, params, oh, ow)             # (N, OH, OW, KH, KW, Cin)
    acc = np.empty((n, oh, ow, oc), dtype=np.int64)
    for g in range(groups):
        cols = win[..., g * fc:(g + 1) * fc].reshape(n * oh * ow, kh * kw * fc)
        wg = filter[g * per_group:(g + 1) * per_group].reshape(per_group, kh * kw * fc)
        # float64 matmul is exact here: every product is an integer below 2^15 and the sums
        # stay far below 2^53, so BLAS gives the integer result in any summation order.
        prod = cols @ wg.astype(np.float64).T
        acc[..., g * per_group:(g + 1) * per_group] = \
            prod.astype(np.int64).reshape(n, oh, ow, per_group)
    if bias is not None:
        acc = acc.astype(np.int32).astype(np.int64) + np.asarray(bias, dtype=np.int64)
    return requantize(acc, quant, params.output_offset, params.activation)


def conv_2d_split(params: Conv2DParams, quant: PerChannelQuant, input: np.ndarray,
                  filter_slice: np.ndarray, filter_rest: np.ndarray, bias: np.ndarray | None,
                  output_shape: tuple[int, int, int, int]) -> np.ndarray:
    """conv_2d of the filter stored in two parts along its depth: (Cout,KH,KW,k) and
    (Cout,KH,KW,depth-k). Same bits as conv_2d on the joined filter (which it is)."""
    return conv_2d(params, quant, input, np.concatenate((filter_slice, filter_rest), axis=-1),
                   bias, output_shape)
