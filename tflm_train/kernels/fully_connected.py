"""FULLY_CONNECTED int8 reference kernel (TFLite reference_integer_ops::FullyConnected and
FullyConnectedPerChannel). Mirrors ``micro_ops/kernels/tt_fully_connected.c``;
``fully_connected_split`` ↔ ``tt_fully_connected_split`` (filter in two parts along depth)."""
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


def fully_connected_multiplier(input_scale, filter_scale, output_scale) -> tuple[int, int]:
    """Requantization constant of one output channel (per channel) or of the whole op (per
    tensor): double(s_in) * double(s_w) / double(s_out).

    The per-tensor path (GetQuantizedConvolutionMultipler) reads in TFLM's kernel_util.cc as a
    float32 product of s_in * s_w, but the pinned tflite-micro interpreter, our bit-exactness
    reference, multiplies in double (its machine code widens both scales before mulsd), and
    tests/test_ops_mac.py shows it on biases chosen to land between the two roundings."""
    real = float(np.float32(input_scale)) * float(np.float32(filter_scale)) \
        / float(np.float32(output_scale))
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


def fully_connected_split(params: FullyConnectedParams, quant: PerChannelQuant,
                          input: np.ndarray, filter_slice: np.ndarray, filter_rest: np.ndarray,
                          bias: np.ndarray | None) -> np.ndarray:
    """fully_connected of the filter stored in two parts along its depth: (Cout, k) and
    (Cout, accum-k). Same bits as the joined filter."""
    return fully_connected(params, quant, input,
                           np.concatenate((filter_slice, filter_rest), axis=-1), bias)
