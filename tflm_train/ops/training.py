"""Numpy glue of the training custom ops (docs/train-format.md), one small class per op.

Options come from the op's FlexBuffer map; all constants are integers fixed at compile time.
Gradients travel as (int8 array, int32 [1] exponent); the exponent NO_GRADIENT (INT32_MIN)
means "no label this invoke": backward ops pass it on and update nothing. TT_CONV_2D & co are
the forward MAC ops of partially trainable layers (filter = trainable slice + frozen rest).
The C twins are micro_ops/engine/ops/tt_op_train_*.c.
"""
from __future__ import annotations

import numpy as np
from flatbuffers import flexbuffers

from .. import ir
from ..kernels.add_backward import add_backward
from ..kernels.conv_2d import Conv2DParams, PerChannelQuant, conv_2d_split
from ..kernels.conv_2d_backward import (conv_2d_backward_input, conv_2d_backward_input_split,
                                        conv_2d_update)
from ..kernels.depthwise_conv_2d import DepthwiseConv2DParams, depthwise_conv_2d_split
from ..kernels.depthwise_conv_2d_backward import (depthwise_conv_2d_backward_input,
                                                  depthwise_conv_2d_backward_input_split,
                                                  depthwise_conv_2d_update)
from ..kernels.fully_connected import FullyConnectedParams, fully_connected_split
from ..kernels.fully_connected_backward import (fully_connected_backward_input,
                                                fully_connected_backward_input_split,
                                                fully_connected_update)
from ..kernels.loss import SoftmaxCrossEntropyParams, softmax_cross_entropy
from ..kernels.mask import activation_mask, apply_activation_mask
from ..kernels.mean_backward import mean_backward
from ..kernels.pad import PadParams
from ..kernels.pad_backward import pad_backward
from ..kernels.pooling import PoolParams
from ..kernels.pooling_backward import average_pool_2d_backward, max_pool_2d_backward
from ..kernels.training_util import grad_accumulate, save_slice
from ..errors import ShapeError, UnsupportedOpError
from ..kernels.update import BackwardInputQuant, UpdateParams
from .base import OpKernel
from .conv_2d import Conv2D
from .depthwise_conv_2d import DepthwiseConv2D
from .fully_connected import FullyConnected

NO_GRADIENT = -(1 << 31)


def _exp(value) -> np.ndarray:
    return np.array([value], dtype=np.int32)


class TrainingOp(OpKernel):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        self.opts = flexbuffers.Loads(op.custom_options) if op.custom_options else {}

    def opt(self, key: str, default=None):
        if key not in self.opts and default is None:
            raise self.unsupported(f"missing option '{key}'")
        return int(self.opts.get(key, default))

    def scratch(self, k: int) -> np.ndarray:
        """A dummy for output k, the C kernel's scratch (numpy keeps its accumulators inside)."""
        t = self.graph.tensors[self.op.outputs[k]]
        return np.zeros(t.shape, t.dtype)

    def no_gradient(self) -> list[np.ndarray]:
        """Zero gradients with the NO_GRADIENT exponent on every (grad, exp) output pair."""
        outs = []
        for i in self.op.outputs:
            t = self.graph.tensors[i]
            outs.append(np.full(t.shape, NO_GRADIENT if t.dtype == np.int32 else 0, t.dtype))
        return outs


class ActMask(TrainingOp):
    def eval(self, inputs):
        return [activation_mask(inputs[0], (self.opt("act_min"), self.opt("act_max")))]


class SaveSlice(TrainingOp):
    def eval(self, inputs):
        return [save_slice(inputs[0], self.opt("channels"))]


class SoftmaxXent(TrainingOp):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        self.params = SoftmaxCrossEntropyParams(**{k: int(v) for k, v in self.opts.items()})

    def eval(self, inputs):
        logits, label = inputs
        lab = int(np.asarray(label).reshape(-1)[0])
        if lab < 0:  # no label: inference
            return [np.zeros(1, np.int32), np.zeros_like(logits), _exp(NO_GRADIENT),
                    self.scratch(3)]
        loss, grad, e = softmax_cross_entropy(self.params, logits.reshape(-1), lab)
        return [np.array([loss], np.int32), grad.reshape(logits.shape), _exp(e), self.scratch(3)]


class GradAccumulate(TrainingOp):
    def eval(self, inputs):
        g, e = grad_accumulate(inputs[0], int(inputs[1][0]), inputs[2], int(inputs[3][0]))
        return [g, _exp(e)]


class _MacGrad(TrainingOp):
    """TT_*_GRAD of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: mask, input gradient (from
    the forward weights), then the fused in-place QAS update of the trainable slice."""

    def activation(self) -> tuple[int, int]:
        return self.opt("act_min"), self.opt("act_max")

    def backward_quant(self, r) -> BackwardInputQuant:
        p = self.opt("grad_pre_shift")
        return BackwardInputQuant(np.asarray(r, np.int32), self.opt("grad_exp_offset") + 15 - p, p)

    def eval(self, inputs):
        gy, ey, mask, y, w, b, sx, w_mult, w_shift, b_mult, b_shift, r, state, wv, bv = inputs[:15]
        # a split filter: w is the trainable slice the update writes, w_rest the frozen rest
        w_rest = inputs[15] if len(inputs) > 15 else None
        e = int(ey[0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        g = np.asarray(gy, np.int8)
        if mask is not None:
            g = apply_activation_mask(g, mask)
        elif y is not None:
            g = apply_activation_mask(g, activation_mask(y, self.activation()))
        outs = []
        if r is not None:
            x_shape = self.graph.tensors[self.op.outputs[0]].shape
            gx, ex = self.backward_input(self.backward_quant(r), g, e, w, w_rest, x_shape)
            outs = [gx.reshape(x_shape), _exp(ex), self.scratch(2)]
        uw, ub = self.opt("update_weights"), self.opt("update_bias")
        if uw or ub:
            zero = np.zeros(1, np.int32)
            upd = UpdateParams(
                weight_factor=PerChannelQuant(w_mult if w_mult is not None else zero,
                                              w_shift if w_shift is not None else zero),
                bias_factor=PerChannelQuant(b_mult if b_mult is not None else zero,
                                            b_shift if b_shift is not None else zero),
                lr=(int(state[0]), int(state[1])), update_weights=uw, update_bias=ub,
                momentum_q15=self.opt("momentum_q15", 0))
            prng = (int(state[2]) & 0xFFFFFFFF) | ((int(state[3]) & 0xFFFFFFFF) << 32)
            prng = self.update(upd, sx, g, e, w, b, prng, wv, bv)  # sx is None for bias-only
            state[2] = np.int64(prng & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
            state[3] = np.int64(prng >> 32).astype(np.uint32).view(np.int32)
        return outs


class Conv2DGrad(_MacGrad):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        self.params = Conv2DParams(
            input_offset=self.opt("input_offset"), output_offset=0,
            stride_w=self.opt("stride_w"), stride_h=self.opt("stride_h"),
            dilation_w=self.opt("dilation_w"), dilation_h=self.opt("dilation_h"),
            pad_w=self.opt("pad_w"), pad_h=self.opt("pad_h"), activation=self.activation())

    def backward_input(self, q, g, e, w, w_rest, x_shape):
        if w_rest is not None:
            return conv_2d_backward_input_split(self.params, q, g, e, w, w_rest, x_shape)
        return conv_2d_backward_input(self.params, q, g, e, w, x_shape)

    def update(self, upd, sx, g, e, w, b, prng, wv, bv):
        return conv_2d_update(self.params, upd, sx, g, e, w, b, prng, wv, bv)


class DepthwiseConv2DGrad(Conv2DGrad):
    def __init__(self, graph, op):
        TrainingOp.__init__(self, graph, op)
        self.params = DepthwiseConv2DParams(
            input_offset=self.opt("input_offset"), output_offset=0,
            stride_w=self.opt("stride_w"), stride_h=self.opt("stride_h"),
            dilation_w=self.opt("dilation_w"), dilation_h=self.opt("dilation_h"),
            pad_w=self.opt("pad_w"), pad_h=self.opt("pad_h"),
            depth_multiplier=self.opt("depth_multiplier"), activation=self.activation())

    def backward_input(self, q, g, e, w, w_rest, x_shape):
        if w_rest is not None:
            return depthwise_conv_2d_backward_input_split(self.params, q, g, e, w, w_rest,
                                                          x_shape)
        return depthwise_conv_2d_backward_input(self.params, q, g, e, w, x_shape)

    def update(self, upd, sx, g, e, w, b, prng, wv, bv):
        return depthwise_conv_2d_update(self.params, upd, sx, g, e, w, b, prng, wv, bv)


class FullyConnectedGrad(_MacGrad):
    def __init__(self, graph, op):
        super().__init__(graph, op)
        self.params = FullyConnectedParams(
            input_offset=self.opt("input_offset"), output_offset=0,
            per_channel=1, activation=self.activation())

    def backward_input(self, q, g, e, w, w_rest, x_shape):
        if w_rest is not None:
            return fully_connected_backward_input_split(self.params, q, g, e, w, w_rest)
        return fully_connected_backward_input(self.params, q, g, e, w)

    def update(self, upd, sx, g, e, w, b, prng, wv, bv):
        return fully_connected_update(self.params, upd, sx, g, e, w, b, prng, wv, bv)


class AddGrad(TrainingOp):
    def eval(self, inputs):
        gy, ey, mask = inputs
        e = int(ey[0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        s1 = self.graph.tensors[self.op.outputs[0]].shape
        s2 = self.graph.tensors[self.op.outputs[2]].shape
        g1, e1, g2, e2 = add_backward(gy, e, s1, s2, mask)
        outs = [g1, _exp(e1), g2, _exp(e2)]
        if len(self.op.outputs) == 5:  # only when an input is broadcast: the C kernel's scratch
            outs.append(self.scratch(4))
        return outs


class _ShapeGrad(TrainingOp):
    def input_shape(self):
        return self.graph.tensors[self.op.outputs[0]].shape


class AveragePool2DGrad(_ShapeGrad):
    def pool_params(self) -> PoolParams:
        return PoolParams(stride_w=self.opt("stride_w"), stride_h=self.opt("stride_h"),
                          filter_w=self.opt("filter_w"), filter_h=self.opt("filter_h"),
                          pad_w=self.opt("pad_w"), pad_h=self.opt("pad_h"), activation=(-128, 127))

    def eval(self, inputs):
        e = int(inputs[1][0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        g, ex = average_pool_2d_backward(self.pool_params(), inputs[0], e, self.input_shape())
        return [g, _exp(ex), self.scratch(2)]


class MaxPool2DGrad(AveragePool2DGrad):
    def eval(self, inputs):
        e = int(inputs[1][0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        g, ex = max_pool_2d_backward(self.pool_params(), inputs[0], e, inputs[2])
        return [g, _exp(ex), self.scratch(2)]


class MeanGrad(_ShapeGrad):
    def eval(self, inputs):
        e = int(inputs[1][0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        shape = self.input_shape()
        keep = tuple(1 if d in (1, 2) else n for d, n in enumerate(shape))
        g, ex = mean_backward(np.asarray(inputs[0]).reshape(keep), e, shape)
        return [g, _exp(ex)]


class PadGrad(_ShapeGrad):
    def eval(self, inputs):
        e = int(inputs[1][0])
        if e == NO_GRADIENT:
            return self.no_gradient()
        shape = self.input_shape()
        out_shape = np.asarray(inputs[0]).shape
        rank = len(shape)
        before = [self.opt(f"pad_{d}", 0) for d in range(rank)]
        after = [out_shape[d] - shape[d] - before[d] for d in range(rank)]
        lead = 4 - rank
        params = PadParams(before=tuple([0] * lead + before), after=tuple([0] * lead + after),
                           pad_value=0)
        return [pad_backward(params, inputs[0], shape), inputs[1].copy()]


class _Split:
    """TT_CONV_2D / TT_DEPTHWISE_CONV_2D / TT_FULLY_CONNECTED: the builtin op's glue on a filter
    split along its last axis into the trainable slice (input 1) and the frozen rest (input 2);
    bias is input 3. The custom options are the builtin options (ir's snake_case names). The
    builtin checks run on a view of the op whose filter is the joined tensor."""

    def __init__(self, graph, op):
        n_in = len(op.inputs)
        if not 3 <= n_in <= 4 or len(op.outputs) != 1 or min(op.inputs[:3]) < 0:
            raise ShapeError(f"op {op.index} ({op.opcode}): has {n_in} inputs and "
                             f"{len(op.outputs)} outputs, expected input, filter slice, filter "
                             "rest, optional bias and 1 output")
        self._whole = _joined_filter(graph, op)
        opts = flexbuffers.Loads(op.custom_options) if op.custom_options else {}
        view = ir.Op(op.index, op.opcode, [op.inputs[0], op.inputs[1],
                                           op.inputs[3] if n_in > 3 else -1],
                     list(op.outputs), options=dict(opts))
        super().__init__(graph, view)

    def input(self, i: int):
        return self._whole if i == 1 else super().input(i)


def _joined_filter(graph, op) -> ir.Tensor:
    """The whole filter the two parts form (for the builtin checks): same leading dims, int8,
    quantized alike; per-channel scales on the split axis (depthwise) concatenate. Mirrors
    tt_mac_check_split_filter."""
    s, r = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
    if s.dtype != np.int8 or r.dtype != np.int8:
        raise UnsupportedOpError(op.index, op.opcode, "filter slice and rest must be int8")
    if len(s.shape) < 2 or len(r.shape) != len(s.shape) or s.shape[:-1] != r.shape[:-1] \
            or min(s.shape[-1], r.shape[-1]) < 1:
        raise ShapeError(f"op {op.index} ({op.opcode}): filter slice {list(s.shape)} and rest "
                         f"{list(r.shape)} must differ only in their last dimension")
    if s.quant is None or r.quant is None:
        raise UnsupportedOpError(op.index, op.opcode,
                                 "filter slice and rest need quantization parameters")
    last = len(s.shape) - 1
    concat = s.quant.per_channel and s.quant.axis == last
    if concat != (r.quant.per_channel and r.quant.axis == last) or (
            not concat and not np.array_equal(s.quant.scale, r.quant.scale)):
        raise UnsupportedOpError(op.index, op.opcode, "the filter slice and rest must be "
                                 "quantized alike (same scales, or per channel along the split "
                                 "axis)")
    quant = s.quant
    if concat:
        quant = ir.Quantization(np.concatenate((s.quant.scale, r.quant.scale)),
                                np.concatenate((s.quant.zero_point, r.quant.zero_point)), last)
    shape = tuple(s.shape[:-1]) + (s.shape[-1] + r.shape[-1],)
    return ir.Tensor(index=s.index, name=s.name, shape=shape, dtype=s.dtype, quant=quant)


class SplitConv2D(_Split, Conv2D):
    def eval(self, inputs):
        x, fs, fr = inputs[:3]
        b = inputs[3] if len(inputs) > 3 else None
        return [conv_2d_split(self.params, self.quant, x, fs, fr, b, self.output_shape)]


class SplitDepthwiseConv2D(_Split, DepthwiseConv2D):
    def eval(self, inputs):
        x, fs, fr = inputs[:3]
        b = inputs[3] if len(inputs) > 3 else None
        return [depthwise_conv_2d_split(self.params, self.quant, x, fs, fr, b, self.output_shape)]


class SplitFullyConnected(_Split, FullyConnected):
    def eval(self, inputs):
        x, fs, fr = inputs[:3]
        b = inputs[3] if len(inputs) > 3 else None
        return [fully_connected_split(self.params, self.quant, x, fs, fr, b)]
