"""FULLY_CONNECTED int8 reference kernel (TFLite reference_integer_ops::FullyConnected and
FullyConnectedPerChannel). Mirrors ``micro_ops/kernels/tt_fully_connected.c``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import quantize_multiplier
from .conv_2d import PerChannelQuant, requantize  # noqa: F401


@dataclass
class FullyConnectedParams:
    """tt_fully_connected_params."""

    input_offset: int        # -input zero point
    output_offset: int       # output zero point
    per_channel: int         # 0: quant holds one multiplier for every output channel
    activation: tuple[int, int]   # tt_activation {min, max}


def fully_connected_multiplier(input_scale, filter_scale, output_scale,
                               per_channel: bool) -> tuple[int, int]:
    """Requantization constant as TFLM's CalculateOpDataFullyConnected derives it.

    Per-channel widens each float32 scale to double before multiplying; per-tensor
    (GetQuantizedConvolutionMultipler) multiplies input and filter scales in float32 first."""
    s_in, s_w, s_out = np.float32(input_scale), np.float32(filter_scale), np.float32(output_scale)
    if per_channel:
        real = float(s_in) * float(s_w) / float(s_out)
    else:
        real = float(np.float32(s_in * s_w)) / float(s_out)
    return quantize_multiplier(real)


def fully_connected(params: FullyConnectedParams, quant: PerChannelQuant, input: np.ndarray,
                    filter: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """input (..., accum) int8 flattened to (batches, accum), filter (Cout, accum) int8,
    bias (Cout,) int32 or None → output (batches, Cout) int8."""
    out_c, accum = filter.shape[0], filter.shape[-1]
    x = input.reshape(-1, accum).astype(np.float64) + params.input_offset
    # Exact in float64: integer products < 2^15, sums far below 2^53 (see conv_2d).
    acc = (x @ filter.reshape(out_c, accum).astype(np.float64).T).astype(np.int64)
    if bias is not None:
        acc = acc.astype(np.int32).astype(np.int64) + np.asarray(bias, dtype=np.int64)
    if not params.per_channel:
        quant = PerChannelQuant(np.repeat(quant.multiplier[:1], out_c),
                                np.repeat(quant.shift[:1], out_c))
    return requantize(acc, quant, params.output_offset, params.activation)
