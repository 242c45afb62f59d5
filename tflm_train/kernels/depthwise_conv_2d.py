"""DEPTHWISE_CONV_2D int8 reference kernel (TFLite reference_integer_ops::DepthwiseConvPerChannel).

Mirrors ``micro_ops/kernels/tt_depthwise_conv_2d.c``. Output channel ``ic * depth_multiplier + m``
reads input channel ``ic`` and filter column ``ic * depth_multiplier + m`` (filter (1,KH,KW,Cout)).
``depthwise_conv_2d_split`` ↔ ``tt_depthwise_conv_2d_split`` (filter in two parts along Cout).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv_2d import PerChannelQuant, conv_2d_multiplier, requantize  # noqa: F401


@dataclass
class DepthwiseConv2DParams:
    """tt_depthwise_conv_2d_params."""

    input_offset: int       # -input zero point
    output_offset: int      # output zero point
    stride_w: int
    stride_h: int
    dilation_w: int
    dilation_h: int
    pad_w: int
    pad_h: int
    depth_multiplier: int
    activation: tuple[int, int]   # tt_activation {min, max}


# Same per-channel constant derivation as CONV_2D (PopulateConvolutionQuantizationParams).
depthwise_conv_2d_multiplier = conv_2d_multiplier


def depthwise_conv_2d(params: DepthwiseConv2DParams, quant: PerChannelQuant, input: np.ndarray,
                      filter: np.ndarray, bias: np.ndarray | None,
                      output_shape: tuple[int, int, int, int]) -> np.ndarray:
    """input (N,H,W,Cin) int8, filter (1,KH,KW,Cin*dm) int8, bias (Cout,) int32 or None
    → output int8 of ``output_shape`` (N, OH, OW, Cin*dm)."""
    n, oh, ow, oc = output_shape
    kh, kw = filter.shape[1], filter.shape[2]
    cin = input.shape[3]
    dm = params.depth_multiplier
    sh, sw, dh, dw = params.stride_h, params.stride_w, params.dilation_h, params.dilation_w
    # Zero-pad the offset input: a padded tap then contributes 0, i.e. it is omitted.
    x = input.astype(np.int64) + params.input_offset
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    bottom = max(need_h - x.shape[1] - params.pad_h, 0)
    right = max(need_w - x.shape[2] - params.pad_w, 0)
    xp = np.pad(x, ((0, 0), (params.pad_h, bottom), (params.pad_w, right), (0, 0)))
    w = filter.reshape(kh, kw, cin, dm).astype(np.int64)
    acc = np.zeros((n, oh, ow, cin, dm), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            tap = xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]
            acc += tap[..., None] * w[ky, kx]
    acc = acc.reshape(n, oh, ow, oc)
    if bias is not None:
        acc = acc.astype(np.int32).astype(np.int64) + np.asarray(bias, dtype=np.int64)
    return requantize(acc, quant, params.output_offset, params.activation)


def depthwise_conv_2d_split(params: DepthwiseConv2DParams, quant: PerChannelQuant,
                            input: np.ndarray, filter_slice: np.ndarray, filter_rest: np.ndarray,
                            bias: np.ndarray | None,
                            output_shape: tuple[int, int, int, int]) -> np.ndarray:
    """depthwise_conv_2d of the filter stored in two parts along its channels: (1,KH,KW,k)
    and (1,KH,KW,Cout-k). Same bits as the joined filter."""
    return depthwise_conv_2d(params, quant, input,
                             np.concatenate((filter_slice, filter_rest), axis=-1), bias,
                             output_shape)
