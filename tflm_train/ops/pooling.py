"""AVERAGE_POOL_2D / MAX_POOL_2D glue: TFLM's PoolingPrepare (pooling_common.cc)."""
from __future__ import annotations

import numpy as np

from ..kernels.pooling import PoolParams, average_pool_2d, max_pool_2d
from ..quant import ACT_NONE, PADDING_SAME, PADDING_VALID, activation_range, compute_padding
from . import _checks
from .base import OpKernel


class _Pool2D(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        _checks.arity(self, 1)
        inp, out = self.input(0), self.output(0)
        _checks.int8_tensor(self, inp, "input")
        _checks.int8_tensor(self, out, "output")
        if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[0] != out.shape[0] \
                or inp.shape[3] != out.shape[3]:
            raise _checks.shape_error(self, f"input {list(inp.shape)} and output "
                                            f"{list(out.shape)} must be NHWC with equal N and C")
        # As TFLM: input and output share their quantization.
        if abs(float(np.float32(inp.scale) - np.float32(out.scale))) > 1.0e-6 \
                or inp.zero_point != out.zero_point:
            raise self.unsupported(f"input scale/zero point ({inp.scale}, {inp.zero_point}) "
                                   f"differ from the output's ({out.scale}, {out.zero_point})")
        o = op.options
        padding = int(o.get("padding", PADDING_SAME))
        if padding not in (PADDING_SAME, PADDING_VALID):
            raise self.unsupported(f"padding {padding} is not supported (supported: SAME, VALID)")
        stride_w, stride_h = int(o.get("stride_w", 0)), int(o.get("stride_h", 0))
        filter_w, filter_h = int(o.get("filter_width", 0)), int(o.get("filter_height", 0))
        if min(stride_w, stride_h, filter_w, filter_h) <= 0:
            raise _checks.shape_error(self, f"strides ({stride_h}, {stride_w}) and filter "
                                            f"({filter_h}, {filter_w}) must be positive")
        if max(out.shape[1] * stride_h + filter_h, out.shape[2] * stride_w + filter_w) \
                > (1 << 30):
            raise _checks.shape_error(self, "filter or strides too large")
        act = _checks.activation(self, int(o.get("fused_activation_function", ACT_NONE)))
        # TFLM keeps the output tensor's shape; only the leading padding is computed here.
        _, pad_h = compute_padding(padding, inp.shape[1], filter_h, stride_h, 1)
        _, pad_w = compute_padding(padding, inp.shape[2], filter_w, stride_w, 1)
        self.params = PoolParams(stride_w=stride_w, stride_h=stride_h, filter_w=filter_w,
                                 filter_h=filter_h, pad_w=pad_w, pad_h=pad_h,
                                 activation=activation_range(act, out.scale, out.zero_point))
        self.output_shape = tuple(out.shape)


class AveragePool2D(_Pool2D):
    def eval(self, inputs):
        try:
            return [average_pool_2d(self.params, inputs[0], self.output_shape)]
        except ValueError as e:
            raise _checks.shape_error(self, str(e)) from None


class MaxPool2D(_Pool2D):
    def eval(self, inputs):
        return [max_pool_2d(self.params, inputs[0], self.output_shape)]
