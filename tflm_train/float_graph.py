"""The float twin of an int8 graph: dequantized weights, float activations, float SGD.

The baseline that int8 training is measured against (benchmarks/paper_accuracy.py): the same
graph, initial parameters and update scheme, computed in floating point. Weights are
``s_w[c] · W̄``, biases ``s_b[c] · b̄``; activations are real numbers with the op's fused
activation function applied as a float model would (RELU6 = min(max(x, 0), 6)), with no int8
range and no rounding. Backward is exact (hand-written per op) and the optimizer is the int8
engine's in real units: ``v ← μ·v + lr·g``, ``p ← p − v`` on the scheme's trainable slices
(first input channels of a weight, as the device updates them).

Supported: CONV_2D (any stride / padding, dilation 1), DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD
(same shapes), AVERAGE_POOL_2D, MEAN over the spatial axes, RESHAPE; trailing SOFTMAX /
DEQUANTIZE are dropped (the loss is softmax cross-entropy on the logits before them). Batches:
``forward`` takes [B, H, W, C]; training steps are batch 1 like the device but any B works.
"""
from __future__ import annotations

import numpy as np

from . import ir
from .errors import UnsupportedOpError
from .ops import kernel_class
from .schemes import UpdateScheme, parse_spec, trainable_layers

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
             "MEAN", "RESHAPE")
TRAILING = ("SOFTMAX", "DEQUANTIZE")


def _activation(y, act: int):
    """Fused activation and the mask of where its derivative is 1."""
    if act == 0:
        return y, None
    lo, hi = {1: (0.0, np.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}.get(act, (None, None))
    if lo is None:
        raise ValueError(f"fused activation {act} is not supported (NONE, RELU, RELU_N1_TO_1, "
                         f"RELU6)")
    mask = (y > lo) & (y < hi)
    return np.clip(y, lo, hi), mask


def _taps(xp, kh, kw, sh, sw, oh, ow):
    """The (ky, kx) shifted views of a padded input that a window op reads."""
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]


def _pad(x, pad_h, pad_w, need_h, need_w):
    b, h, w, c = x.shape
    out = np.zeros((b, max(need_h, h + pad_h), max(need_w, w + pad_w), c), dtype=x.dtype)
    out[:, pad_h:pad_h + h, pad_w:pad_w + w] = x
    return out


class FloatGraph:
    """Float forward/backward/SGD of an int8 graph (path, bytes or ``ir.Graph``)."""

    def __init__(self, model, scheme="last-2", dtype=np.float32):
        g = model if isinstance(model, ir.Graph) else ir.load(model)
        self.graph = g
        self.dtype = np.dtype(dtype)
        if isinstance(scheme, str):
            scheme = parse_spec(scheme)
        elif isinstance(scheme, dict):
            scheme = UpdateScheme.from_json(scheme)
        self.resolved = scheme.resolve(g)
        layers = {L.op_index: L for L in trainable_layers(g)}
        self.ops = []
        for op in g.ops:
            if op.opcode in TRAILING:
                break
            if op.opcode not in SUPPORTED:
                raise UnsupportedOpError(op.index, op.opcode, "has no float reference",
                                         supported=SUPPORTED)
            self.ops.append(op)
        self.logits = self.ops[-1].outputs[0]
        self.input = g.inputs[0]
        # parameters (float copies), keyed by tensor index; missing trainable biases are zeros
        self.params: dict[int, np.ndarray] = {}
        self.bias_of: dict[int, int] = {}       # op index -> bias key
        self.masks: dict[int, np.ndarray | None] = {}   # trainable key -> update mask (None = all)
        updates = {u.layer.op_index: u for u in self.resolved.layers}
        next_key = -1
        for i, L in layers.items():
            w = g.tensors[L.weight]
            self.params[L.weight] = self._dequantize_weight(w, g.ops[i].opcode)
            if L.bias is not None:
                self.params[L.bias] = (g.tensors[L.bias].data.astype(np.float64)
                                       * g.tensors[L.bias].quant.scale).astype(self.dtype)
                self.bias_of[i] = L.bias
            u = updates[i]
            if u.update_bias:
                if L.bias is None:
                    self.params[next_key] = np.zeros(L.out_channels, self.dtype)
                    self.bias_of[i] = next_key
                    next_key -= 1
                self.masks[self.bias_of[i]] = None
            if u.update_weights:
                self.masks[L.weight] = self._slice_mask(L, u.ic_count, g.ops[i])
        self.velocity = {k: np.zeros_like(self.params[k]) for k in self.masks}
        self._cache: dict | None = None   # op index -> what backward needs (training forward)
        self._geometry = {op.index: kernel_class(op.opcode)(g, op).params for op in self.ops
                          if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D")}

    # -------------------------------------------------------------------------------- set-up
    def _dequantize_weight(self, w, opcode):
        s = np.asarray(w.quant.scale, dtype=np.float64)
        if s.size > 1:
            shape = [1] * len(w.shape)
            shape[w.quant.axis] = s.size
            s = s.reshape(shape)
        return (w.data.astype(np.float64) * s).astype(self.dtype)

    def _slice_mask(self, L, ic: int, op):
        if ic >= L.in_channels:
            return None
        mask = np.zeros(L.weight_shape, dtype=bool)
        if L.opcode == "DEPTHWISE_CONV_2D":
            m = int(op.options.get("depth_multiplier", 1) or 1)
            mask[..., :ic * m] = True
        else:
            mask[..., :ic] = True
        return mask

    def dequantize_input(self, q: np.ndarray) -> np.ndarray:
        t = self.graph.tensors[self.input]
        return ((np.asarray(q, np.float64) - t.zero_point) * t.scale).astype(self.dtype)

    def trainable(self) -> list[int]:
        return sorted(self.masks)

    # ------------------------------------------------------------------------------- forward
    def forward(self, x: np.ndarray, keep: bool = False) -> np.ndarray:
        """Logits [B, classes] of float inputs x [B, ...] (the model input's shape)."""
        vals = {self.input: np.asarray(x, dtype=self.dtype)}
        self._cache = {} if keep else None
        for op in self.ops:
            y = self._forward_op(op, vals)
            vals[op.outputs[0]] = y
        out = vals[self.logits]
        return out.reshape(out.shape[0], -1)

    def _forward_op(self, op, vals):
        g, opc, p = self.graph, op.opcode, self.params
        x = vals[op.inputs[0]]
        act = int(op.options.get("fused_activation_function", 0) or 0)
        if opc in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = p[op.inputs[1]]
            b = p.get(self.bias_of.get(op.index))
            pp = self._geometry[op.index]
            if pp.dilation_h != 1 or pp.dilation_w != 1:
                raise UnsupportedOpError(op.index, opc, "dilation > 1 has no float reference")
            oh, ow = g.tensors[op.outputs[0]].shape[1:3]
            kh, kw = w.shape[1:3]
            xp = _pad(x, pp.pad_h, pp.pad_w, pp.stride_h * (oh - 1) + kh,
                      pp.stride_w * (ow - 1) + kw)
            if opc == "CONV_2D":
                cols = np.stack([v for _, _, v in _taps(xp, kh, kw, pp.stride_h, pp.stride_w,
                                                         oh, ow)], axis=3)  # B,OH,OW,K,I
                y = cols.reshape(-1, kh * kw * x.shape[-1]) @ w.reshape(w.shape[0], -1).T
                y = y.reshape(x.shape[0], oh, ow, w.shape[0])
                saved = (xp.shape, cols)
            else:
                m = w.shape[-1] // x.shape[-1]
                if m > 1:
                    xp = np.repeat(xp, m, axis=-1)
                y = 0
                for ky, kx, v in _taps(xp, kh, kw, pp.stride_h, pp.stride_w, oh, ow):
                    y = y + v * w[0, ky, kx]
                saved = (xp, m)
            if b is not None:
                y = y + b
        elif opc == "FULLY_CONNECTED":
            w = p[op.inputs[1]]
            b = p.get(self.bias_of.get(op.index))
            xf = x.reshape(-1, w.shape[1])
            y = xf @ w.T + (b if b is not None else 0)
            saved = (x.shape, xf)
        elif opc == "ADD":
            a, c = vals[op.inputs[0]], vals[op.inputs[1]]
            if a.shape != c.shape:
                raise UnsupportedOpError(op.index, opc, "broadcasting has no float reference")
            y = a + c
            saved = None
        elif opc == "AVERAGE_POOL_2D":
            pp = self._geometry[op.index]
            oh, ow = g.tensors[op.outputs[0]].shape[1:3]
            xp = _pad(x, pp.pad_h, pp.pad_w, pp.stride_h * (oh - 1) + pp.filter_h,
                      pp.stride_w * (ow - 1) + pp.filter_w)
            ones = _pad(np.ones((1,) + x.shape[1:3] + (1,), self.dtype), pp.pad_h, pp.pad_w,
                        xp.shape[1], xp.shape[2])
            s = sum(v for _, _, v in _taps(xp, pp.filter_h, pp.filter_w, pp.stride_h,
                                           pp.stride_w, oh, ow))
            count = sum(v for _, _, v in _taps(ones, pp.filter_h, pp.filter_w, pp.stride_h,
                                               pp.stride_w, oh, ow))
            y = s / count
            saved = (xp.shape, count, pp)
        elif opc == "MEAN":
            axes = tuple(int(a) % x.ndim for a in np.asarray(g.tensors[op.inputs[1]].data).ravel())
            if 0 in axes:
                raise UnsupportedOpError(op.index, opc, "a mean over the batch axis has no float "
                                         "reference")
            shape = g.tensors[op.outputs[0]].shape
            y = x.mean(axis=axes, keepdims=True).reshape((x.shape[0],) + tuple(shape[1:]))
            saved = (x.shape, axes)
        elif opc == "RESHAPE":
            shape = g.tensors[op.outputs[0]].shape
            y = x.reshape((x.shape[0],) + tuple(shape[1:]))
            saved = x.shape
        y, mask = _activation(y, act) if opc != "RESHAPE" else (y, None)
        if self._cache is not None:
            self._cache[op.index] = (saved, mask)
        return y.astype(self.dtype, copy=False)

    # ------------------------------------------------------------------------------ backward
    def gradients(self, x: np.ndarray, labels) -> tuple[float, dict[int, np.ndarray]]:
        """Mean softmax cross-entropy of the batch and its gradient for every trainable
        parameter (full tensors; masks are applied by ``step``)."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        z = self.forward(x, keep=True).astype(np.float64)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        n = len(labels)
        loss = float(-logp[np.arange(n), labels].mean())
        gz = np.exp(logp)
        gz[np.arange(n), labels] -= 1.0
        grads_t = {self.logits: (gz / n).astype(self.dtype)}
        grads_p: dict[int, np.ndarray] = {}
        first = min(u.layer.op_index for u in self.resolved.layers if u.trainable)
        for op in reversed(self.ops):
            if op.index < first:
                break
            gy = grads_t.pop(op.outputs[0], None)
            if gy is None:
                continue
            for t, gx in self._backward_op(op, gy, grads_p, want_input=op.index > first):
                grads_t[t] = grads_t[t] + gx if t in grads_t else gx
        return loss, {k: grads_p[k] for k in self.masks if k in grads_p}

    def _backward_op(self, op, gy, grads_p, want_input: bool):
        saved, mask = self._cache[op.index]
        if mask is not None:
            gy = gy * mask
        opc = op.opcode
        x = op.inputs[0]
        if opc == "CONV_2D":
            xp_shape, cols = saved
            w = self.params[op.inputs[1]]
            o = w.shape[0]
            gy2 = gy.reshape(-1, o)
            grads_p[op.inputs[1]] = (gy2.T @ cols.reshape(gy2.shape[0], -1)).reshape(w.shape)
            self._bias_grad(op, gy2, grads_p)
            if not want_input:
                return []
            pp = self._geometry[op.index]
            kh, kw = w.shape[1:3]
            b, oh, ow = gy.shape[:3]
            gcols = (gy2 @ w.reshape(o, -1)).reshape(b, oh, ow, kh * kw, -1)
            gxp = np.zeros(xp_shape, self.dtype)
            for k, (ky, kx, v) in enumerate(_taps(gxp, kh, kw, pp.stride_h, pp.stride_w, oh, ow)):
                v += gcols[:, :, :, k]
            return [(x, self._crop(gxp, op, pp))]
        if opc == "DEPTHWISE_CONV_2D":
            xp, m = saved
            w = self.params[op.inputs[1]]
            pp = self._geometry[op.index]
            kh, kw = w.shape[1:3]
            b, oh, ow = gy.shape[:3]
            gw = np.zeros_like(w)
            gxp = np.zeros(xp.shape, self.dtype)
            views = zip(_taps(xp, kh, kw, pp.stride_h, pp.stride_w, oh, ow),
                        _taps(gxp, kh, kw, pp.stride_h, pp.stride_w, oh, ow))
            for (ky, kx, v), (_, _, gv) in views:
                gw[0, ky, kx] = (v * gy).sum(axis=(0, 1, 2))
                if want_input:
                    gv += gy * w[0, ky, kx]
            grads_p[op.inputs[1]] = gw
            self._bias_grad(op, gy.reshape(-1, gy.shape[-1]), grads_p)
            if not want_input:
                return []
            if m > 1:
                gxp = gxp.reshape(gxp.shape[:3] + (-1, m)).sum(axis=-1)
            return [(x, self._crop(gxp, op, pp))]
        if opc == "FULLY_CONNECTED":
            x_shape, xf = saved
            w = self.params[op.inputs[1]]
            grads_p[op.inputs[1]] = gy.T @ xf
            self._bias_grad(op, gy, grads_p)
            return [(x, (gy @ w).reshape(x_shape))] if want_input else []
        if opc == "ADD":
            return [(op.inputs[0], gy), (op.inputs[1], gy)]
        if opc == "AVERAGE_POOL_2D":
            xp_shape, count, pp = saved
            gxp = np.zeros(xp_shape, self.dtype)
            share = gy / count
            for _, _, gv in _taps(gxp, pp.filter_h, pp.filter_w, pp.stride_h, pp.stride_w,
                                  gy.shape[1], gy.shape[2]):
                gv += share
            return [(x, self._crop(gxp, op, pp))]
        if opc == "MEAN":
            shape, axes = saved
            count = int(np.prod([shape[a] for a in axes]))
            gy = gy.reshape(tuple(1 if a in axes else s for a, s in enumerate(shape)))
            return [(x, np.broadcast_to(gy / count, shape).astype(self.dtype))]
        if opc == "RESHAPE":
            return [(x, gy.reshape(saved))]
        raise AssertionError(opc)

    def _crop(self, gxp, op, pp):
        h, w = self.graph.tensors[op.inputs[0]].shape[1:3]
        return gxp[:, pp.pad_h:pp.pad_h + h, pp.pad_w:pp.pad_w + w]

    def _bias_grad(self, op, gy2, grads_p):
        key = self.bias_of.get(op.index)
        if key is not None:
            grads_p[key] = gy2.sum(axis=0)

    # ------------------------------------------------------------------------------- update
    def step(self, grads: dict[int, np.ndarray], lr: float, momentum: float = 0.0) -> None:
        """SGD with momentum in the int8 engine's form: v ← μ·v + lr·g, p ← p − v, on the
        trainable slice of each parameter."""
        for k, g in grads.items():
            mask = self.masks[k]
            if mask is not None:
                g = g * mask
            v = self.velocity[k]
            v *= momentum
            v += lr * g
            self.params[k] -= v

    def train_step(self, x, label: int, lr: float, momentum: float = 0.0) -> float:
        loss, grads = self.gradients(np.asarray(x)[None], [label])
        self.step(grads, lr, momentum)
        return loss

    def predict(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Top-1 classes of float inputs x [N, ...]."""
        out = [np.argmax(self.forward(x[i:i + batch]), axis=1) for i in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)


__all__ = ["FloatGraph"]
