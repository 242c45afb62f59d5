"""The training compiler: int8 model + update scheme → training graph (``*.train.tflite``).

It derives the backward graph at compile time (docs/train-format.md): the forward ops stay
builtin ops; the compiler adds what backward reads (1-bit clamp masks, trainable input-channel
slices), the integer softmax cross-entropy, and one backward op per op on the gradient path.
Backward ops are pruned to what a trainable parameter needs: the pass stops at the earliest
trainable layer, and a layer's input gradient exists only if an earlier layer trains. Each MAC
backward op applies its QAS update in place the moment its gradient exists (reordering), so no
weight-gradient buffer outlives its layer. All float-derived constants are fixed-point here.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass

import numpy as np
from flatbuffers import flexbuffers

from ai_edge_litert import schema_py_generated as schema

from . import ir, tflite_io
from .errors import TflmTrainError, UnsupportedOpError
from .kernels.add_backward import add_backward_scratch_size
from .kernels.conv_2d_backward import (conv_2d_backward_input_prepare,
                                       conv_2d_backward_input_scratch_size)
from .kernels.depthwise_conv_2d_backward import (depthwise_conv_2d_backward_input_prepare,
                                                 depthwise_conv_2d_backward_input_scratch_size)
from .kernels.fully_connected_backward import (fully_connected_backward_input_prepare,
                                               fully_connected_backward_input_scratch_size)
from .kernels.gradient import prng_seed
from .kernels.loss import softmax_cross_entropy_params, softmax_cross_entropy_scratch_size
from .kernels.pooling_backward import (average_pool_2d_backward_scratch_size,
                                       max_pool_2d_backward_scratch_size)
from .kernels.update import momentum_q15, update_factors, update_lr
from .ops import kernel_class
from .planner import OFFLINE_PLAN_NAME, plan
from .schemes import SPLIT_OPCODES, ResolvedScheme, UpdateScheme, resolve, trainable_layers

FORMAT_VERSION = 1
METADATA_NAME = "tflm_train"
REQUANT_NAME = "tt_requant"  # forward requantization constants in flash (requant_table)
REQUANT_VERSION = 1
STATE_SIZE = 8  # tt_state: lr_multiplier, lr_shift, prng_lo, prng_hi, step, qas, 0, 0
NO_GRADIENT = -(1 << 31)
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# Ops whose int8 output is clamped (fused activation or int8 saturation): backward masks them.
CLAMPED_OPS = MAC_OPS + ("ADD",)
# Trailing ops the training graph drops: the loss works on the logits before them.
TRAILING_OPS = ("SOFTMAX", "DEQUANTIZE")
TRAINABLE_OPS = MAC_OPS + ("ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "RESHAPE", "PAD")
# builtin MAC op → the custom code of its split-filter form (partially trainable weights)
SPLIT_CODES = {builtin: code.removeprefix("CUSTOM:") for code, builtin in SPLIT_OPCODES.items()}


@dataclass
class SGD:
    """SGD, optionally with momentum (a Q16.16 velocity per trainable element, in SRAM)."""

    lr: float = 0.01
    momentum: float = 0.0

    def __post_init__(self):
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def to_dict(self) -> dict:
        return {"name": "sgd", "lr": self.lr, "momentum": self.momentum}


class _ModelEditor:
    """Adds tensors, buffers, operator codes and ops to a schema ModelT (subgraph 0)."""

    def __init__(self, model: schema.ModelT):
        self.model = model
        self.sg = model.subgraphs[0]
        if self.sg.tensors is None:
            self.sg.tensors = []
        if model.buffers is None or len(model.buffers) == 0:
            model.buffers = [schema.BufferT()]

    def buffer(self, data: np.ndarray | bytes | None) -> int:
        b = schema.BufferT()
        if data is not None:
            raw = data if isinstance(data, (bytes, bytearray)) else np.ascontiguousarray(data).tobytes()
            b.data = np.frombuffer(bytes(raw), dtype=np.uint8).copy()
        self.model.buffers.append(b)
        return len(self.model.buffers) - 1

    def tensor(self, name: str, shape, dtype, data=None, quant=None, variable=False) -> int:
        t = schema.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, dtype=np.int32)
        t.type = ir.DTYPE_TO_TENSOR_TYPE[np.dtype(dtype)]
        t.buffer = self.buffer(np.asarray(data, dtype=dtype)) if data is not None else 0
        t.isVariable = bool(variable)
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale = np.asarray(quant[0], dtype=np.float32).ravel()
            q.zeroPoint = np.asarray(quant[1], dtype=np.int64).ravel()
            q.quantizedDimension = int(quant[2]) if len(quant) > 2 else 0
            t.quantization = q
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def opcode(self, builtin: int | None = None, custom: str | None = None) -> int:
        codes = self.model.operatorCodes
        for i, oc in enumerate(codes):
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            if custom is not None and code == schema.BuiltinOperator.CUSTOM:
                cc = oc.customCode.decode() if isinstance(oc.customCode, bytes) else oc.customCode
                if cc == custom:
                    return i
            elif custom is None and code == builtin:
                return i
        oc = schema.OperatorCodeT()
        if custom is not None:
            oc.builtinCode = schema.BuiltinOperator.CUSTOM
            oc.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
            oc.customCode = custom.encode()
        else:
            oc.builtinCode = builtin
            oc.deprecatedBuiltinCode = min(builtin, 127)
        oc.version = 1
        codes.append(oc)
        return len(codes) - 1

    def custom_op(self, code: str, inputs, outputs, options: dict | None = None):
        op = schema.OperatorT()
        op.opcodeIndex = self.opcode(custom=code)
        op.inputs = np.array(inputs, dtype=np.int32)
        op.outputs = np.array(outputs, dtype=np.int32)
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(options or {})), dtype=np.uint8)
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        return op


def _classifier_tail(graph: ir.Graph, classifier_op: int) -> tuple[int, list[int]]:
    """(logits tensor, kept tail op indices) after the classifier: RESHAPE/QUANTIZE chains
    are kept, trailing SOFTMAX/DEQUANTIZE dropped."""
    tail = list(range(classifier_op + 1, len(graph.ops)))
    kept = []
    for i in tail:
        op = graph.ops[i]
        if op.opcode in TRAILING_OPS:
            continue
        if op.opcode != "RESHAPE":
            raise UnsupportedOpError(op.index, op.opcode, "only RESHAPE, SOFTMAX or DEQUANTIZE may "
                                     "follow the classifier for training", supported=TRAINABLE_OPS)
        kept.append(i)
    logits = graph.ops[kept[-1]].outputs[0] if kept else graph.ops[classifier_op].outputs[0]
    t = graph.tensors[logits]
    if t.dtype != np.int8 or int(np.prod(t.shape)) != t.shape[-1]:
        raise TflmTrainError(f"logits tensor {logits} '{t.name}' must be int8 [1, classes], "
                             f"got {t.dtype.name} {list(t.shape)}")
    return logits, kept


def _replace_classifier(model: schema.ModelT, graph: ir.Graph, layer, num_classes: int,
                        kept_tail: list[int], seed: int) -> None:
    """A new seeded classifier with ``num_classes`` outputs (Glorot-uniform, per-channel int8,
    zero bias; logits scale chosen for a ±8 range). Shapes after it follow."""
    sg = model.subgraphs[0]
    op = graph.ops[layer.op_index]
    w_old = graph.tensors[layer.weight]
    x = graph.tensors[layer.input]
    fan_in = int(np.prod(w_old.shape[1:]))
    rng = np.random.default_rng(seed)
    limit = math.sqrt(6.0 / (fan_in + num_classes))
    wf = rng.uniform(-limit, limit, size=(num_classes,) + tuple(w_old.shape[1:]))
    # int8 weights saturate at ±127·s_w: leave the head room to grow 3× past its init range
    s_w = np.full(num_classes, 3.0 * limit / 127.0, dtype=np.float32)
    wq = np.clip(np.round(wf / s_w.reshape((-1,) + (1,) * (wf.ndim - 1))), -127, 127).astype(np.int8)
    ed = _ModelEditor(model)
    w_idx = ed.tensor(f"{w_old.name}/new_{num_classes}", wq.shape, np.int8, data=wq,
                      quant=(s_w, np.zeros(num_classes), 0))
    b_scale = (np.float64(x.scale) * s_w.astype(np.float64)).astype(np.float32)
    b_idx = ed.tensor(f"{w_old.name}/new_bias_{num_classes}", (num_classes,), np.int32,
                      data=np.zeros(num_classes, np.int32), quant=(b_scale, np.zeros(num_classes), 0))
    ops = sg.operators
    ops[layer.op_index].inputs = np.array([layer.input, w_idx, b_idx], dtype=np.int32)
    # the logits: scale 16/255 (about ±8), zero point 0
    out_t = sg.tensors[op.outputs[0]]
    out_t.shape = np.array(list(out_t.shape[:-1]) + [num_classes], dtype=np.int32)
    out_t.shapeSignature = None
    out_t.quantization.scale = np.array([16.0 / 255.0], dtype=np.float32)
    out_t.quantization.zeroPoint = np.array([0], dtype=np.int64)
    for i in kept_tail:
        t = sg.tensors[graph.ops[i].outputs[0]]
        t.shape = np.array(list(t.shape[:-1]) + [num_classes], dtype=np.int32)
        t.shapeSignature = None
        t.quantization.scale = np.array([16.0 / 255.0], dtype=np.float32)
        t.quantization.zeroPoint = np.array([0], dtype=np.int64)
        o = ops[i]
        if o.builtinOptions is not None and getattr(o.builtinOptions, "newShape", None) is not None:
            o.builtinOptions.newShape = np.array(list(t.shape), dtype=np.int32)
        if len(o.inputs) > 1 and o.inputs[1] >= 0:  # shape tensor input
            st = sg.tensors[o.inputs[1]]
            model.buffers[st.buffer].data = np.frombuffer(
                np.array(list(t.shape), dtype=np.int32).tobytes(), dtype=np.uint8).copy()


class TrainingCompiler:
    """Builds the training subgraph; use ``tflm_train.convert``."""

    def __init__(self, model: schema.ModelT, scheme: UpdateScheme, num_classes: int | None,
                 optimizer: SGD, seed: int, qas: bool, source: str = ""):
        self.model = copy.deepcopy(model)
        self.scheme = scheme
        self.optimizer = optimizer
        self.seed = int(seed)
        self.qas = bool(qas)
        self.source = source
        self.num_classes = num_classes
        if len(self.model.subgraphs) != 1:
            raise TflmTrainError(f"model has {len(self.model.subgraphs)} subgraphs; training "
                                 f"supports single-subgraph models")

    # ------------------------------------------------------------------------------------ build
    def build(self) -> tuple[schema.ModelT, ResolvedScheme, dict]:
        graph = ir.from_model(self.model)
        for op in graph.ops:
            if kernel_class(op.opcode) is None:
                raise UnsupportedOpError(op.index, op.opcode)
        layers = trainable_layers(graph)
        if not layers:
            raise TflmTrainError("model has no CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED "
                                 "layer to train")
        classifier = layers[-1]
        logits, kept_tail = _classifier_tail(graph, classifier.op_index)
        if self.num_classes is not None:
            if self.num_classes < 2:
                raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
            _replace_classifier(self.model, graph, classifier, self.num_classes, kept_tail,
                                self.seed)
            graph = ir.from_model(self.model)
            layers = trainable_layers(graph)
        resolved = resolve(self.scheme, graph)
        self.graph = graph
        self.ed = _ModelEditor(self.model)
        self.resolved = resolved
        self.updates = {u.layer.op_index: u for u in resolved.layers}
        self.split: dict[int, tuple[int, int]] = {}  # op index → (weight slice, frozen rest)
        self.logits = logits
        forward_ops = [i for i in range(len(graph.ops))
                       if i <= classifier.op_index or i in kept_tail]
        info = self._emit(forward_ops)
        return self.model, resolved, info

    def _depends(self, forward_ops) -> tuple[set[int], set[int]]:
        """(ops on the gradient path, activation tensors that need a gradient)."""
        g = self.graph
        trainable_ops = {u.layer.op_index for u in self.resolved.layers if u.trainable}
        depends_t: set[int] = set()
        path_ops: set[int] = set()
        for i in forward_ops:
            op = g.ops[i]
            acts = [t for t in op.inputs if t >= 0 and not g.tensors[t].is_parameter]
            if i in trainable_ops or any(t in depends_t for t in acts):
                path_ops.add(i)
                depends_t.update(op.outputs)
        for i in path_ops:
            if g.ops[i].opcode not in TRAINABLE_OPS:
                raise UnsupportedOpError(i, g.ops[i].opcode, "has no backward kernel",
                                         supported=TRAINABLE_OPS)
        return path_ops, depends_t

    def _emit(self, forward_ops: list[int]) -> dict:
        g, ed, sg = self.graph, self.ed, self.ed.sg
        old_ops = list(sg.operators)
        path_ops, needs_grad = self._depends(forward_ops)

        # graph I/O: image + label in, logits + loss out
        label = ed.tensor("label", (1,), np.int32)
        loss = ed.tensor("loss", (1,), np.int32)
        lr_m, lr_s = update_lr(self.optimizer.lr)
        state0 = prng_seed(self.seed)
        state = ed.tensor("tt_state", (STATE_SIZE,), np.int32, variable=True, data=np.array(
            [lr_m, lr_s, np.int64(state0 & 0xFFFFFFFF).astype(np.uint32).view(np.int32),
             np.int64(state0 >> 32).astype(np.uint32).view(np.int32), 0, int(self.qas), 0, 0],
            dtype=np.int64).astype(np.int32))

        new_ops = []
        masks: dict[int, int] = {}      # op index → mask tensor
        saved: dict[int, int] = {}      # op index → saved input (slice) tensor
        for i in forward_ops:
            op = g.ops[i]
            u = self.updates.get(i)
            if u is not None and u.update_weights:
                saved[i] = self._saved_input(u, new_ops)
            if u is not None and u.trainable:
                self._make_trainable(i, u)
            new_ops.append(old_ops[i])
            if i in path_ops and op.opcode in CLAMPED_OPS and not self._is_plain_logits(i):
                masks[i] = self._mask(i, new_ops)

        # loss
        lt = g.tensors[self.logits]
        C = int(lt.shape[-1])
        p = softmax_cross_entropy_params(lt.scale)
        g_logits = ed.tensor("grad/logits", lt.shape, np.int8)
        e_logits = ed.tensor("grad_exp/logits", (1,), np.int32)
        s_loss = self._scratch("loss", softmax_cross_entropy_scratch_size(C))
        new_ops.append(ed.custom_op("TT_SOFTMAX_XENT", [self.logits, label],
                                    [loss, g_logits, e_logits, s_loss], self._loss_options(p)))
        grads: dict[int, tuple[int, int]] = {self.logits: (g_logits, e_logits)}

        # backward, reverse order, pruned to the gradient path
        for i in sorted(path_ops, reverse=True):
            op = g.ops[i]
            y = op.outputs[0]
            if y not in grads:
                continue  # no gradient reaches this op (e.g. a dead branch)
            gy, ey = grads.pop(y)
            outs = self._backward(i, gy, ey, masks.get(i), saved.get(i), state, needs_grad,
                                  new_ops)
            for x, (gx, ex) in outs.items():
                if x in grads:  # fan-out: sum the two contributions
                    g0, e0 = grads[x]
                    gs = ed.tensor(f"grad/{g.tensors[x].name}/sum{len(new_ops)}",
                                   g.tensors[x].shape, np.int8)
                    es = ed.tensor(f"grad_exp/{g.tensors[x].name}/sum{len(new_ops)}", (1,),
                                   np.int32)
                    new_ops.append(ed.custom_op("TT_GRAD_ACCUMULATE", [g0, e0, gx, ex], [gs, es]))
                    grads[x] = (gs, es)
                else:
                    grads[x] = (gx, ex)

        sg.operators = new_ops
        sg.inputs = np.array([g.inputs[0], label], dtype=np.int32)
        sg.outputs = np.array([self.logits, loss], dtype=np.int32)
        self._check_gradient_consumers()
        return {"masks": masks, "saved": saved, "path_ops": sorted(path_ops)}

    # ------------------------------------------------------------------------------ forward aux
    def _saved_input(self, u, new_ops) -> int:
        """The tensor the weight update reads: the input itself, or its first ic_count channels
        (for depthwise: the input channels whose filters train)."""
        x = self.graph.tensors[u.layer.input]
        if u.ic_count >= int(x.shape[-1]):
            return u.layer.input
        return self._slice(u.layer, x, u.ic_count, new_ops)

    def _slice(self, L, x, k, new_ops) -> int:
        shape = tuple(x.shape[:-1]) + (k,)
        t = self.ed.tensor(f"saved/{x.name}/{k}ch", shape, np.int8,
                           quant=(x.quant.scale, x.quant.zero_point, 0))
        new_ops.append(self.ed.custom_op("TT_SAVE_SLICE", [L.input], [t], {"channels": int(k)}))
        return t

    def _depth_multiplier(self, L) -> int:
        return int(self.graph.ops[L.op_index].options.get("depth_multiplier", 1) or 1)

    def _mask(self, i, new_ops) -> int:
        op = self.graph.ops[i]
        y = self.graph.tensors[op.outputs[0]]
        lo, hi = self._act_range(i)
        n = int(np.prod(y.shape))
        m = self.ed.tensor(f"mask/{y.name}", ((n + 7) // 8,), np.uint8)
        new_ops.append(self.ed.custom_op("TT_ACT_MASK", [op.outputs[0]], [m],
                                         {"act_min": lo, "act_max": hi}))
        return m

    def _is_plain_logits(self, i) -> bool:
        """The classifier without a fused activation: its only clamp is the int8 range. Its
        gradient is not masked (a straight-through estimator): the loss then pulls a saturated
        wrong logit back into range instead of leaving it stuck at ±127 with no gradient."""
        op = self.graph.ops[i]
        last_layer = max(u.layer.op_index for u in self.resolved.layers)
        return i == last_layer and op.options.get("fused_activation_function", 0) == 0

    def _act_range(self, i) -> tuple[int, int]:
        k = kernel_class(self.graph.ops[i].opcode)(self.graph, self.graph.ops[i])
        act = getattr(k.params, "activation", (-128, 127))
        return int(act[0]), int(act[1])

    def _trainable_channels(self, u) -> int:
        """Entries of the weight's last axis the update writes (the first ones): ic_count
        input channels (depthwise: their ic_count * depth_multiplier filter channels)."""
        if not u.update_weights:
            return 0
        m = self._depth_multiplier(u.layer) if u.layer.is_depthwise else 1
        return int(u.ic_count * m)

    def _make_trainable(self, i, u) -> None:
        """Weights (when updated) and bias become variable tensors in SRAM; a missing bias
        that must train is added as a zero variable. Partially trainable weights are split
        (_split_weight): only their trainable slice is a variable."""
        sg = self.ed.sg
        L = u.layer

        def own_variable(idx: int) -> None:
            # a variable gets its own buffer: the converter may share identical constant buffers
            t = sg.tensors[idx]
            t.buffer = self.ed.buffer(np.asarray(self.model.buffers[t.buffer].data, np.uint8))
            t.isVariable = True

        if u.update_weights:
            if self._trainable_channels(u) < L.weight_shape[-1]:
                self._split_weight(i, u)
            else:
                own_variable(L.weight)
        if u.update_bias:
            if L.bias is None:
                w = self.graph.tensors[L.weight]
                x = self.graph.tensors[L.input]
                n = L.out_channels
                ws = np.broadcast_to(w.quant.scale, (n,)).astype(np.float64)
                b = self.ed.tensor(f"{w.name}/bias", (n,), np.int32, data=np.zeros(n, np.int32),
                                   quant=((x.scale * ws).astype(np.float32), np.zeros(n), 0),
                                   variable=True)
                op = sg.operators[i]
                # the IR graph keeps the bias-less op (its kernel prepare needs only tensors it
                # knows); the backward op reads the new bias from the edited operator
                op.inputs = np.array(list(op.inputs[:3 if i in self.split else 2]) + [b],
                                     dtype=np.int32)
            else:
                own_variable(L.bias)

    def _split_weight(self, i, u) -> None:
        """The trainable slice W[..., :k] in SRAM, the frozen rest W[..., k:] in flash: the
        slice becomes a new variable tensor, the rest takes the weight tensor's place (a new
        tensor if another op reads it too), and the op becomes its split-filter form
        (TT_CONV_2D & co, docs/train-format.md) with the builtin options as custom options."""
        ed, sg, L = self.ed, self.ed.sg, u.layer
        w = self.graph.tensors[L.weight]
        k = self._trainable_channels(u)
        q = w.quant
        last = len(w.shape) - 1
        per_axis = q.per_channel and q.axis == last  # depthwise per channel: scales split too

        def quant(part):
            return ((q.scale[part], q.zero_point[part], last) if per_axis
                    else (q.scale, q.zero_point, q.axis))

        data = np.asarray(w.data)
        trainable = ed.tensor(f"{w.name}/trainable", data[..., :k].shape, np.int8,
                              data=data[..., :k], quant=quant(slice(0, k)), variable=True)
        rest = data[..., k:]
        if sum(L.weight in op.inputs for op in self.graph.ops) == 1:
            frozen = L.weight
            t = sg.tensors[frozen]
            t.shape = np.array(rest.shape, dtype=np.int32)
            t.shapeSignature = None
            scale, zp, axis = quant(slice(k, None))
            t.quantization.scale = np.asarray(scale, np.float32)
            t.quantization.zeroPoint = np.asarray(zp, np.int64)
            t.quantization.quantizedDimension = axis
            raw = np.frombuffer(np.ascontiguousarray(rest).tobytes(), dtype=np.uint8).copy()
            if sum(o.buffer == t.buffer for o in sg.tensors) == 1:
                self.model.buffers[t.buffer].data = raw  # no longer holds the whole weight
            else:
                t.buffer = ed.buffer(raw)
        else:
            frozen = ed.tensor(f"{w.name}/frozen", rest.shape, np.int8, data=rest,
                               quant=quant(slice(k, None)))
        op, src = sg.operators[i], self.graph.ops[i]
        bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
        op.opcodeIndex = ed.opcode(custom=SPLIT_CODES[src.opcode])
        op.inputs = np.array([L.input, trainable, frozen] + ([bias] if bias >= 0 else []),
                             dtype=np.int32)
        op.builtinOptionsType = 0
        op.builtinOptions = None
        opts = {key: int(v) for key, v in src.options.items()
                if isinstance(v, (bool, int, np.integer))}
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), dtype=np.uint8)
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
        self.split[i] = (trainable, frozen)

    def _loss_options(self, p) -> dict:
        return {k: int(v) for k, v in vars(p).items()}

    # ------------------------------------------------------------------------------- backward
    def _scratch(self, tag: str, nbytes: int) -> int:
        """A kernel's scratch as an op output nothing reads: the planner gives it memory for
        that op only, so the offline plan covers every byte the engines use. ``nbytes`` comes
        from the Python twin of the C ``*_scratch_size``."""
        assert nbytes > 0 and nbytes % 4 == 0, nbytes
        return self.ed.tensor(f"scratch/{tag}", (nbytes // 4,), np.int32)

    def _check_gradient_consumers(self) -> None:
        """The MAC *_GRAD ops mask grad_out in place (no copy): that needs every int8 gradient
        they read to have them as its only consumer and not be a graph output."""
        sg = self.ed.sg
        readers: dict[int, int] = {}
        for op in sg.operators:
            for t in op.inputs:
                if t >= 0:
                    readers[int(t)] = readers.get(int(t), 0) + 1
        codes = self.model.operatorCodes
        for k, op in enumerate(sg.operators):
            cc = codes[op.opcodeIndex].customCode
            cc = cc.decode() if isinstance(cc, bytes) else (cc or "")
            if cc not in ("TT_CONV_2D_GRAD", "TT_DEPTHWISE_CONV_2D_GRAD",
                          "TT_FULLY_CONNECTED_GRAD"):
                continue
            gy = int(op.inputs[0])
            if readers.get(gy) != 1 or gy in set(int(t) for t in sg.outputs):
                raise TflmTrainError(f"internal: gradient tensor {gy} read by op {k} ({cc}) has "
                                     f"{readers.get(gy)} readers; in-place masking needs one")

    def _grad_pair(self, x: int, tag: str) -> tuple[int, int]:
        t = self.graph.tensors[x]
        gx = self.ed.tensor(f"grad/{t.name}{tag}", t.shape, np.int8)
        ex = self.ed.tensor(f"grad_exp/{t.name}{tag}", (1,), np.int32)
        return gx, ex

    def _backward(self, i, gy, ey, mask, saved_x, state, needs_grad, new_ops) -> dict:
        g, ed = self.graph, self.ed
        op = g.ops[i]
        opc = op.opcode
        x = op.inputs[0]
        want_x = x in needs_grad
        out: dict[int, tuple[int, int]] = {}
        if opc in MAC_OPS:
            return self._backward_mac(i, gy, ey, mask, saved_x, state, want_x, new_ops)
        if opc == "ADD":
            pairs = []
            outs = []
            for k, xi in enumerate(op.inputs[:2]):
                if xi in needs_grad:
                    gx, ex = self._grad_pair(xi, f"/add{i}_{k}")
                    out[xi] = (gx, ex)
                    outs += [gx, ex]
                else:
                    outs += [-1, -1]
                pairs.append(xi)
            # outputs must be real tensors: unused halves get scratch tensors
            for k in range(2):
                if outs[2 * k] < 0:
                    outs[2 * k], outs[2 * k + 1] = self._grad_pair(pairs[k], f"/add{i}_{k}_unused")
            y = g.tensors[op.outputs[0]]
            nbytes = add_backward_scratch_size(g.tensors[pairs[0]].shape,
                                               g.tensors[pairs[1]].shape, y.shape)
            if nbytes:  # the 2-bit rounding codes of a broadcast input's sums
                outs.append(self._scratch(f"{y.name}/add{i}", nbytes))
            new_ops.append(ed.custom_op("TT_ADD_GRAD", [gy, ey, mask if mask is not None else -1],
                                        outs))
            return out
        if not want_x:
            return out
        gx, ex = self._grad_pair(x, f"/op{i}")
        k = kernel_class(opc)(g, op)
        if opc in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            pp = k.params
            opts = {"stride_h": pp.stride_h, "stride_w": pp.stride_w, "filter_h": pp.filter_h,
                    "filter_w": pp.filter_w, "pad_h": pp.pad_h, "pad_w": pp.pad_w}
            code = "TT_AVERAGE_POOL_2D_GRAD" if opc == "AVERAGE_POOL_2D" else "TT_MAX_POOL_2D_GRAD"
            ins = [gy, ey] + ([x] if opc == "MAX_POOL_2D" else [])
            size = (average_pool_2d_backward_scratch_size if opc == "AVERAGE_POOL_2D"
                    else max_pool_2d_backward_scratch_size)(g.tensors[x].shape)
            acc = self._scratch(f"{g.tensors[x].name}/op{i}", size)
            new_ops.append(ed.custom_op(code, ins, [gx, ex, acc],
                                        {k2: int(v) for k2, v in opts.items()}))
        elif opc == "MEAN":
            new_ops.append(ed.custom_op("TT_MEAN_GRAD", [gy, ey], [gx, ex]))
        elif opc == "PAD":
            pads = np.asarray(g.tensors[op.inputs[1]].data).reshape(-1, 2)
            opts = {f"pad_{d}": int(pads[d, 0]) for d in range(pads.shape[0])}
            new_ops.append(ed.custom_op("TT_PAD_GRAD", [gy, ey], [gx, ex], opts))
        elif opc == "RESHAPE":
            # gradient reshape: builtin RESHAPE of the int8 gradient; the exponent is shared
            rop = schema.OperatorT()
            rop.opcodeIndex = ed.opcode(builtin=schema.BuiltinOperator.RESHAPE)
            shape_t = ed.tensor(f"shape/{g.tensors[x].name}", (len(g.tensors[x].shape),),
                                np.int32, data=np.array(g.tensors[x].shape, dtype=np.int32))
            rop.inputs = np.array([gy, shape_t], dtype=np.int32)
            rop.outputs = np.array([gx], dtype=np.int32)
            new_ops.append(rop)
            ex = ey
        out[x] = (gx, ex)
        return out

    def _backward_mac(self, i, gy, ey, mask, saved_x, state, want_x, new_ops) -> dict:
        g, ed = self.graph, self.ed
        op = g.ops[i]
        u = self.updates[i]
        L = u.layer
        x, w = g.tensors[L.input], g.tensors[L.weight]
        k = kernel_class(op.opcode)(g, op)
        pp = k.params
        n_out = L.out_channels
        opts = {"input_offset": int(pp.input_offset),
                "act_min": int(pp.activation[0]), "act_max": int(pp.activation[1]),
                "update_weights": int(u.update_weights), "update_bias": int(u.update_bias)}
        if op.opcode != "FULLY_CONNECTED":
            opts.update(stride_h=pp.stride_h, stride_w=pp.stride_w, pad_h=pp.pad_h,
                        pad_w=pp.pad_w, dilation_h=pp.dilation_h, dilation_w=pp.dilation_w)
        if op.opcode == "DEPTHWISE_CONV_2D":
            opts["depth_multiplier"] = int(pp.depth_multiplier)
        opts["channels"] = self._trainable_channels(u)

        def const_i32(name, arr):
            return ed.tensor(name, (len(arr),), np.int32, data=np.asarray(arr, dtype=np.int32))

        w_mult = w_shift = b_mult = b_shift = -1
        if u.trainable:
            wf, bf = update_factors(x.scale, w.quant.scale, n_out, self.qas)
            if u.update_weights:
                w_mult = const_i32(f"qas/{w.name}/w_mult", wf.multiplier)
                w_shift = const_i32(f"qas/{w.name}/w_shift", wf.shift)
            if u.update_bias:
                b_mult = const_i32(f"qas/{w.name}/b_mult", bf.multiplier)
                b_shift = const_i32(f"qas/{w.name}/b_shift", bf.shift)
        r = -1
        outs: list[int] = []
        result = {}
        if want_x:
            if op.opcode == "CONV_2D":
                q = conv_2d_backward_input_prepare(w.quant.scale, w.shape)
                q_scratch = conv_2d_backward_input_scratch_size
            elif op.opcode == "DEPTHWISE_CONV_2D":
                q = depthwise_conv_2d_backward_input_prepare(w.quant.scale, w.shape,
                                                             int(pp.depth_multiplier))
                q_scratch = depthwise_conv_2d_backward_input_scratch_size
            else:
                q = fully_connected_backward_input_prepare(w.quant.scale, w.shape)
                q_scratch = fully_connected_backward_input_scratch_size
            r = const_i32(f"bwd/{w.name}/r_q15", q.r)
            opts["grad_pre_shift"] = int(q.p)
            opts["grad_exp_offset"] = int(q.s_e - 15 + q.p)
            gx, ex = self._grad_pair(L.input, f"/op{i}")
            # the kernel's 2-bit rounding codes (planned for this op only, see _scratch)
            outs = [gx, ex, self._scratch(f"{x.name}/op{i}", q_scratch(x.shape))]
            result[L.input] = (gx, ex)
        edited = self.ed.sg.operators[i].inputs
        bias = L.bias if L.bias is not None else (
            int(edited[-1]) if len(edited) > (3 if i in self.split else 2) else -1)
        w_vel = b_vel = -1
        mq15 = momentum_q15(self.optimizer.momentum) if self.optimizer.momentum else 0
        if mq15:
            opts["momentum_q15"] = int(mq15)
            if u.update_weights:  # the compact trainable slice of the weights
                shape = tuple(w.shape[:-1]) + (opts["channels"],)
                w_vel = ed.tensor(f"velocity/{w.name}", shape, np.int32, variable=True,
                                  data=np.zeros(shape, np.int32))
            if u.update_bias:
                b_vel = ed.tensor(f"velocity/{w.name}/bias", (n_out,), np.int32, variable=True,
                                  data=np.zeros(n_out, np.int32))
        weights, frozen = self.split.get(i, (L.weight, None))
        inputs = [gy, ey, mask if mask is not None else -1, -1, weights, bias,
                  saved_x if saved_x is not None else -1, w_mult, w_shift, b_mult, b_shift, r,
                  state, w_vel, b_vel] + ([frozen] if frozen is not None else [])
        code = {"CONV_2D": "TT_CONV_2D_GRAD", "DEPTHWISE_CONV_2D": "TT_DEPTHWISE_CONV_2D_GRAD",
                "FULLY_CONNECTED": "TT_FULLY_CONNECTED_GRAD"}[op.opcode]
        new_ops.append(ed.custom_op(code, inputs, outs, opts))
        return result


def metadata_dict(scheme: UpdateScheme, optimizer: SGD, seed: int, qas: bool,
                  num_classes: int, source: str) -> dict:
    return {"format_version": FORMAT_VERSION, "scheme": scheme.to_json(),
            "optimizer": json.dumps(optimizer.to_dict()), "lr": float(optimizer.lr),
            "seed": int(seed), "qas": bool(qas), "num_classes": int(num_classes),
            "source": source}


def add_metadata(model: schema.ModelT, name: str, data: bytes) -> None:
    ed = _ModelEditor(model)
    b = ed.buffer(data)
    for md in model.metadata or []:
        if (md.name.decode() if isinstance(md.name, bytes) else md.name) == name:
            md.buffer = b
            return
    md = schema.MetadataT()
    md.name = name.encode()
    md.buffer = b
    if model.metadata is None:
        model.metadata = []
    model.metadata.append(md)


def read_metadata(model: schema.ModelT, name: str) -> bytes | None:
    for md in model.metadata or []:
        if (md.name.decode() if isinstance(md.name, bytes) else md.name) == name:
            data = model.buffers[md.buffer].data
            return None if data is None else np.asarray(data, dtype=np.uint8).tobytes()
    return None


def requant_table(graph: ir.Graph) -> bytes:
    """The "tt_requant" metadata: the forward MAC ops' requantization constants, for the C
    engine to read from flash instead of computing them into its arena (8 B per channel).

    int32 little-endian: [version 1, n entries, n × (op index, channels, byte offset of the
    multipliers, byte offset of the shifts)], then the arrays, each at a 16-byte aligned offset.
    Values are the numpy glue's (the C prepare helpers' twins); the C engine verifies them."""
    entries = []
    for op in graph.ops:
        if op.opcode in MAC_OPS or op.opcode in SPLIT_OPCODES:
            q = kernel_class(op.opcode)(graph, op).quant
            entries.append((op.index, np.asarray(q.multiplier, np.int32),
                            np.asarray(q.shift, np.int32)))
    words = [REQUANT_VERSION, len(entries)]
    arrays: list[np.ndarray] = []
    pos = -(-4 * (2 + 4 * len(entries)) // 16) * 16
    for index, mult, shift in entries:
        offsets = []
        for a in (mult, shift):
            offsets.append(pos)
            arrays.append((pos, a))
            pos += -(-a.nbytes // 16) * 16
        words += [index, len(mult), *offsets]
    out = bytearray(pos)
    out[:4 * len(words)] = np.array(words, "<i4").tobytes()
    for p, a in arrays:
        out[p:p + a.nbytes] = a.astype("<i4").tobytes()
    return bytes(out)


def compile_model(model: schema.ModelT, scheme: UpdateScheme, num_classes: int | None,
                  optimizer: SGD, seed: int, qas: bool, source: str = "", fuse: bool = True):
    comp = TrainingCompiler(model, scheme, num_classes, optimizer, seed, qas, source)
    out, resolved, info = comp.build()
    if fuse:  # frozen conv chains run row by row (fusion.py): the forward peak shrinks
        from .fusion import fuse as fuse_chains
        info["fused"] = fuse_chains(out)
    classes = int(comp.graph.tensors[comp.logits].shape[-1])
    meta = metadata_dict(scheme, optimizer, seed, qas, classes, source)
    add_metadata(out, METADATA_NAME, bytes(flexbuffers.Dumps(meta)))
    graph = ir.from_model(out)
    p = plan(graph)
    add_metadata(out, OFFLINE_PLAN_NAME, p.offline_allocation(len(graph.tensors)).tobytes())
    add_metadata(out, REQUANT_NAME, requant_table(graph))
    info["plan"] = p
    return out, resolved, info


__all__ = ["SGD", "compile_model", "read_metadata", "add_metadata", "METADATA_NAME",
           "REQUANT_NAME", "requant_table",
           "NO_GRADIENT", "tflite_io"]
