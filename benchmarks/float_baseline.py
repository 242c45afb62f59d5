"""Float32 twins of an int8 graph in PyTorch and TensorFlow/Keras, and the peak memory of one
fp32 training step, for the framework baselines of ``paper_memory.py``.

Twin
    ``float_spec(graph, resolved)`` describes the int8 graph as plain data (JSON-able): every
    CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED becomes a float layer with the same kernel,
    stride, padding, dilation, channels and fused activation (ReLU / ReLU6) and a bias (BN is
    folded, as in the int8 model); ADD, AVERAGE_POOL_2D, MAX_POOL_2D and a flattening RESHAPE
    follow. Weights are random (memory does not depend on values). Every tensor has the int8
    graph's shape (NHWC in Keras, NCHW in PyTorch); ``tests/test_paper_memory.py`` checks it.

Trainable set
    Exactly the scheme's layers: a layer's weight is trainable when the scheme updates it, its
    bias when the scheme updates that bias; every other parameter is frozen (requires_grad=False /
    trainable=False), so the frameworks prune the backward pass themselves. A weight trained on a
    slice of its input channels (ratio < 1) is made trainable whole: neither framework can hold
    a gradient for part of a tensor, so the gradient and the momentum buffer are full size.
    ``trainable_counts`` gives both counts; the difference is what a slice-aware float engine
    could save at most (small next to the activations).

Measurement (``measure``, run in a fresh process by ``paper_memory.py``)
    Baseline = VmRSS after the interpreter, numpy and the framework are imported, the model is
    built (weights allocated), the optimizer object exists (no state yet) and the input is made.
    The kernel's peak-RSS counter (VmHWM) is then reset (``/proc/self/clear_refs``) and one
    training step runs (batch 1, softmax cross-entropy, SGD with momentum): step 1 = VmHWM minus
    the baseline, i.e. everything the first step allocates (activations kept for backward,
    gradients, momentum buffers, and the framework's one-time work: TF's graph tracing,
    oneDNN primitive caches). The counter is reset again and a second step runs: step 2 = its
    VmHWM minus the same baseline (the steady state). Threads: 1 by default (intra and inter op).
    TensorFlow runs the step as a ``tf.function`` (what Keras ``fit`` does); PyTorch eagerly.

Run directly only as the child of ``paper_memory.py``:
    python float_baseline.py --framework torch|tensorflow --spec SPEC.json [--threads N]
prints one JSON line with the measurement.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys

LAYER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
OTHER_OPS = ("ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE")
ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}   # TFLite fused_activation_function values
FRAMEWORKS = ("torch", "tensorflow")


class TwinError(ValueError):
    """The int8 graph has something the float twin cannot express."""


# ----------------------------------------------------------------------------------- the spec

def _same_pads(size: int, out: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite/TF SAME padding (before, after) along one axis."""
    k_eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + k_eff - size, 0)
    return total // 2, total - total // 2


def float_spec(graph, resolved=None) -> dict:
    """The graph as data for ``build_torch`` / ``build_keras``; ``resolved`` (a ResolvedScheme of
    this graph) marks which weights and biases train (none when omitted)."""
    from tflm_train.schemes import trainable_layers

    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TwinError(f"float twin: the graph must have one input and one output, has "
                        f"{len(graph.inputs)} and {len(graph.outputs)}")
    layers = {L.op_index: L for L in trainable_layers(graph)}
    updates = {u.layer.index: u for u in resolved.layers} if resolved is not None else {}
    shape = lambda t: [int(d) for d in graph.tensors[t].shape]  # noqa: E731
    nodes = []
    for op in graph.ops:
        where = f"op {op.index} ({op.opcode})"
        if op.opcode not in LAYER_OPS + OTHER_OPS:
            raise TwinError(f"float twin: {where} is not supported; supported ops: "
                            f"{', '.join(LAYER_OPS + OTHER_OPS)}")
        o = op.options or {}
        act = int(o.get("fused_activation_function", 0))
        if act not in ACTIVATIONS:
            raise TwinError(f"float twin: {where} has fused activation {act}; supported: "
                            f"NONE (0), RELU (1), RELU6 (3)")
        x_shape, y_shape = shape(op.inputs[0]), shape(op.outputs[0])
        node = {"op": op.opcode, "index": op.index, "inputs": [int(op.inputs[0])],
                "output": int(op.outputs[0]), "in_shape": x_shape, "out_shape": y_shape,
                "act": ACTIVATIONS[act]}
        if op.opcode in LAYER_OPS:
            L = layers[op.index]
            u = updates.get(L.index)
            train_b = bool(u is not None and u.update_bias)
            node.update(layer=L.index, cin=L.in_channels, cout=L.out_channels,
                        weight_shape=[int(d) for d in L.weight_shape],
                        bias=L.bias is not None or train_b,   # the compiler adds a zero bias
                        train_weight=bool(u is not None and u.update_weights),
                        train_bias=train_b, ic_count=int(u.ic_count) if u is not None else 0)
            if op.opcode != "FULLY_CONNECTED":
                if len(x_shape) != 4:
                    raise TwinError(f"float twin: {where} input {x_shape} is not NHWC")
                kh, kw = L.weight_shape[1], L.weight_shape[2]
                s = [int(o.get("stride_h", 1)), int(o.get("stride_w", 1))]
                d = [int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))]
                node.update(kernel=[int(kh), int(kw)], stride=s, dilation=d,
                            padding="same" if int(o.get("padding", 0)) == 0 else "valid")
            elif len(x_shape) != 2:
                raise TwinError(f"float twin: {where} input {x_shape} is not [batch, features]")
        elif op.opcode == "ADD":
            if shape(op.inputs[1]) != x_shape:
                raise TwinError(f"float twin: {where} broadcasts {x_shape} + "
                                f"{shape(op.inputs[1])}; only equal shapes are supported")
            node["inputs"].append(int(op.inputs[1]))
        elif op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            node.update(kernel=[int(o["filter_height"]), int(o["filter_width"])],
                        stride=[int(o["stride_h"]), int(o["stride_w"])], dilation=[1, 1],
                        padding="same" if int(o.get("padding", 0)) == 0 else "valid")
        elif op.opcode == "RESHAPE":
            if len(y_shape) != 2 or y_shape[0] != x_shape[0]:
                raise TwinError(f"float twin: {where} reshapes {x_shape} to {y_shape}; only a "
                                f"flatten to [batch, features] is supported")
        if "padding" in node:
            pads = []
            for ax in (1, 2):
                if node["padding"] == "same":
                    pads.append(_same_pads(x_shape[ax], y_shape[ax], node["kernel"][ax - 1],
                                           node["stride"][ax - 1], node["dilation"][ax - 1]))
                else:
                    pads.append((0, 0))
            node["pads"] = [list(p) for p in pads]          # [[top, bottom], [left, right]]
        nodes.append(node)
    inp = graph.inputs[0]
    return {"input": int(inp), "input_shape": shape(inp), "output": int(graph.outputs[0]),
            "nodes": nodes}


def _weight_count(node: dict) -> int:
    """Float weight elements of a layer node (TFLite layouts: conv [O,kh,kw,I], depthwise
    [1,kh,kw,C*m], FC [O,I]; the same counts in PyTorch / Keras layouts)."""
    return math.prod(node["weight_shape"])


def trainable_counts(spec: dict) -> dict:
    """Parameter counts: total, trainable in the float twin (whole tensors), and what the int8
    scheme actually trains (weight slices of ic_count / cin input channels)."""
    total = float_trainable = int8_trainable = 0
    for n in spec["nodes"]:
        if "layer" not in n:
            continue
        w, b = _weight_count(n), (n["cout"] if n["bias"] else 0)
        total += w + b
        if n["train_weight"]:
            float_trainable += w
            int8_trainable += w * n["ic_count"] // n["cin"]
        if n["train_bias"]:
            float_trainable += n["cout"]
            int8_trainable += n["cout"]
    return {"total": total, "float_trainable": float_trainable, "int8_trainable": int8_trainable}


def _last_uses(spec: dict) -> dict[int, int]:
    """Tensor id → index of the last node reading it (so the forward can drop it after)."""
    last = {}
    for i, n in enumerate(spec["nodes"]):
        for t in n["inputs"]:
            last[t] = i
    return last


# ----------------------------------------------------------------------------------- PyTorch

def build_torch(spec: dict):
    """A torch.nn.Module computing the twin in NCHW; ``forward(x, record=None)`` fills
    ``record`` (a dict) with each tensor id's NHWC shape when given."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    nodes = spec["nodes"]
    last = _last_uses(spec)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleDict()
            for n in nodes:
                if "layer" not in n:
                    continue
                if n["op"] == "FULLY_CONNECTED":
                    m = nn.Linear(n["cin"], n["cout"], bias=n["bias"])
                else:
                    (t, b), (lft, r) = n["pads"]
                    depthwise = n["op"] == "DEPTHWISE_CONV_2D"
                    m = nn.Conv2d(n["cin"], n["cout"], tuple(n["kernel"]), tuple(n["stride"]),
                                  padding=(t, lft) if (t == b and lft == r) else 0,
                                  dilation=tuple(n["dilation"]),
                                  groups=n["cin"] if depthwise else 1, bias=n["bias"])
                m.weight.requires_grad_(n["train_weight"])
                if m.bias is not None:
                    m.bias.requires_grad_(n["train_bias"])
                self.layers[str(n["index"])] = m

        def forward(self, x, record=None):
            env = {spec["input"]: x}
            for i, n in enumerate(nodes):
                a = env[n["inputs"][0]]
                op = n["op"]
                if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                    (t, b), (lft, r) = n["pads"]
                    if t != b or lft != r:      # asymmetric SAME padding: pad explicitly
                        a = F.pad(a, (lft, r, t, b))
                    y = self.layers[str(n["index"])](a)
                elif op == "FULLY_CONNECTED":
                    y = self.layers[str(n["index"])](a)
                elif op == "ADD":
                    y = a + env[n["inputs"][1]]
                elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                    (t, b), (lft, r) = n["pads"]
                    if t or b or lft or r:
                        a = F.pad(a, (lft, r, t, b))
                    pool = F.avg_pool2d if op == "AVERAGE_POOL_2D" else F.max_pool2d
                    y = pool(a, tuple(n["kernel"]), tuple(n["stride"]))
                else:  # RESHAPE (flatten), in NHWC order as TFLite does
                    y = a.permute(0, 2, 3, 1).reshape(n["out_shape"]) if a.dim() == 4 \
                        else a.reshape(n["out_shape"])
                if n["act"] == "relu6":
                    y = F.relu6(y, inplace=True)
                elif n["act"] == "relu":
                    y = F.relu(y, inplace=True)
                for t in n["inputs"]:   # drop what no later node reads
                    if last[t] == i:
                        env.pop(t, None)
                env[n["output"]] = y
                if record is not None:
                    record[n["output"]] = list(y.permute(0, 2, 3, 1).shape) if y.dim() == 4 \
                        else list(y.shape)
            return env[spec["output"]]

    return Twin()


def torch_input(spec: dict):
    import torch

    n, h, w, c = spec["input_shape"]
    return torch.randn(n, c, h, w)


# ----------------------------------------------------------------------------------- Keras

def build_keras(spec: dict, record: dict | None = None):
    """A keras.Model (TensorFlow backend, NHWC) computing the twin, trainable flags set per
    variable; ``record`` (a dict) gets each tensor id's shape when given."""
    import keras

    x = keras.Input(shape=tuple(spec["input_shape"][1:]), batch_size=spec["input_shape"][0])
    env = {spec["input"]: x}
    trainable = []
    for n in spec["nodes"]:
        a = env[n["inputs"][0]]
        op, name = n["op"], f"op{n['index']}_{n['op'].lower()}"
        act = n["act"]
        if op == "CONV_2D":
            layer = keras.layers.Conv2D(n["cout"], tuple(n["kernel"]), tuple(n["stride"]),
                                        padding=n["padding"], dilation_rate=tuple(n["dilation"]),
                                        use_bias=n["bias"], activation=act, name=name)
        elif op == "DEPTHWISE_CONV_2D":
            layer = keras.layers.DepthwiseConv2D(tuple(n["kernel"]), tuple(n["stride"]),
                                                 padding=n["padding"],
                                                 depth_multiplier=n["cout"] // n["cin"],
                                                 dilation_rate=tuple(n["dilation"]),
                                                 use_bias=n["bias"], activation=act, name=name)
        elif op == "FULLY_CONNECTED":
            layer = keras.layers.Dense(n["cout"], use_bias=n["bias"], activation=act, name=name)
        elif op == "ADD":
            layer = None
            y = keras.layers.Add(name=name)([a, env[n["inputs"][1]]])
            if act:
                y = keras.layers.Activation(act, name=name + "_act")(y)
        elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            cls = keras.layers.AveragePooling2D if op == "AVERAGE_POOL_2D" \
                else keras.layers.MaxPooling2D
            layer = cls(tuple(n["kernel"]), tuple(n["stride"]), padding=n["padding"], name=name)
        else:  # RESHAPE
            layer = keras.layers.Reshape(tuple(n["out_shape"][1:]), name=name)
        if layer is not None:
            y = layer(a)
        if "layer" in n:
            trainable.append((layer, n))
        env[n["output"]] = y
        if record is not None:
            record[n["output"]] = [int(d) for d in y.shape]
    model = keras.Model(x, env[spec["output"]])
    for layer, n in trainable:
        layer.kernel.trainable = n["train_weight"]
        if n["bias"]:
            layer.bias.trainable = n["train_bias"]
    return model


def keras_input(spec: dict):
    import numpy as np

    return np.random.default_rng(0).standard_normal(spec["input_shape"]).astype(np.float32)


# ----------------------------------------------------------------------------------- measuring

def _status() -> dict:
    """VmRSS and VmHWM of this process in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) * 1024
    return out


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: '5' in /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(framework: str, spec: dict, threads: int = 1, lr: float = 0.01,
            momentum: float = 0.9) -> dict:
    """Peak RSS of the first and the second fp32 training step above the baseline (module
    docstring). Meant for a fresh process: what was imported before counts in the baseline."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    rss_python = _status()["VmRSS"]
    if framework == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        model = build_torch(spec)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
        x, y = torch_input(spec), torch.zeros(1, dtype=torch.long)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return float(loss)

        prepare = None
        version = torch.__version__
        n_trainable = sum(p.numel() for p in params)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        model = build_keras(spec)
        variables = list(model.trainable_variables)
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
        x, y = tf.constant(keras_input(spec)), tf.constant([0])

        @tf.function
        def _step(x, y):
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y, logits, from_logits=True))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        def step():
            return float(_step(x, y))

        def prepare():  # momentum buffers: training state, so inside the measured step
            opt.build(variables)

        version = f"{tf.__version__} (Keras {keras.__version__})"
        n_trainable = sum(int(math.prod(v.shape)) for v in variables)
    gc.collect()
    base = _status()["VmRSS"]
    _reset_peak()
    if prepare is not None:
        prepare()
    loss1 = step()
    peak1 = _status()["VmHWM"]
    _reset_peak()
    loss2 = step()
    peak2 = _status()["VmHWM"]
    if not (math.isfinite(loss1) and math.isfinite(loss2)):
        raise RuntimeError(f"{framework}: non-finite loss {loss1}, {loss2}")
    return {"framework": framework, "version": version, "threads": threads,
            "rss_python": rss_python, "rss_base": base, "peak1": peak1, "peak2": peak2,
            "step1": peak1 - base, "step2": peak2 - base, "trainable": n_trainable,
            "loss": [loss1, loss2]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="child process of paper_memory.py")
    ap.add_argument("--framework", choices=FRAMEWORKS, required=True)
    ap.add_argument("--spec", required=True, help="JSON file from float_spec")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--momentum", type=float, default=0.9)
    args = ap.parse_args(argv)
    with open(args.spec) as f:
        spec = json.load(f)
    print(json.dumps(measure(args.framework, spec, args.threads, momentum=args.momentum)))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
