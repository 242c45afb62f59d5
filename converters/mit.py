"""Import tiny-training's int8 models (``mcunet-5fps.pkl``, ``mbv2-w0.35.pkl``,
``proxyless-w0.3.pkl``, mit-han-lab/tiny-training) as int8 TFLite models.

The pickles
    ``torch.save`` zip archives (``archive/data.pkl``) of a nested dict; the arrays inside are
    numpy arrays (tensors stored as torch storages are read too). ``load_mit`` reads them with a
    restricted unpickler: no torch, and no class outside a short whitelist is ever imported.
    Layout: ``first_conv``, ``blocks[]`` (``pointwise1`` / ``depthwise`` / ``pointwise2`` each a
    conv dict or None, ``residual`` None or {x_scale, x_zero, y_scale, y_zero}, ``se`` None),
    ``feature_mix`` (None in all three), ``classifier`` (a 1x1 conv dict). A conv dict has
    ``kernel_size``, ``stride``, ``groups``, ``in_shape``/``out_shape`` and ``params`` = int8
    ``weight`` [Co, Ci/groups, kh, kw], int32 ``bias``, float ``w_scales`` [Co] and per-tensor
    ``x_scale``/``x_zero``/``y_scale``/``y_zero``. ``act`` is None everywhere.

Their semantics (``run_mit_reference``, from tiny-training's ``quantized_ops_diff.py``)
    conv: y = clamp(round(float32(conv(x - x_zero, w) + bias) * float32(s_x*s_w/s_y)) + y_zero,
    -128, 127), zero padding (k-1)//2 on every side (PyTorch), round half to even. No activation
    op: the ReLU6 lives in the output quantization (y_zero = -128, y_scale <= 6/255), so the int8
    clamp *is* the activation. Residual add in float: round(((a-za)*sa + (b-zb)*sb)/sy) + zy,
    clamped. Global average pool: round(mean) of the raw int8 values, same quantization. The
    classifier is a 1x1 conv on the pooled [C] vector, int8 logits.

The TFLite model (``import_mit``)
    int8 input [1, 128, 128, 3] (their first conv's x_scale 2/255, zero point 0), then in
    execution order: CONV_2D (first conv), per block CONV_2D (expand) -> DEPTHWISE_CONV_2D ->
    CONV_2D (project) [-> ADD with the block input], AVERAGE_POOL_2D over the whole map,
    RESHAPE [1, C], FULLY_CONNECTED classifier (per-channel weights), int8 logits [1, classes].
    Layer index (CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED in order) therefore equals
    tiny-training's ``manual_weight_idx``: 42 / 51 / 60 layers + the classifier.
    Weights are per-channel symmetric int8 (conv [Co,kh,kw,Ci], depthwise [1,kh,kw,C]); biases
    int32 at scale s_x*s_w[c]. Fused activation RELU6 where y_zero = -128 (TFLite's clamp is then
    [-128, min(127, -128 + round(6/s_y))] = [-128, 127] since s_y <= 6/255: exactly their int8
    clamp), NONE elsewhere.

Padding of stride-2 layers
    PyTorch pads (k-1)//2 on each side; TFLite SAME pads one pixel less at the top/left when the
    input size is even (128, 64, 32, 16), which would shift every window by one pixel. Rather
    than an explicit PAD op (an extra padded copy of the layer's input in SRAM), the kernel is
    grown by one row and column of zero weights (3x3 -> 4x4, 5x5 -> 6x6, 7x7 -> 8x8): TFLite
    SAME then pads exactly (k-1)//2 at the top/left and the windows equal PyTorch's. The extra
    taps are zero (exact; stride-2 layers cost 16/9 .. 64/49 more MACs). ``padding="same"``
    keeps the original kernels with plain SAME padding instead (not the same function).

Dead channels
    Some channels carry bias -2^31 and a w_scale of ~4e-9 (pruned during their training), a
    few others only the tiny w_scale. Under their semantics such a channel outputs a constant
    whatever the input (-128, real 0, for the bias -2^31 ones; e.g. -120 for mcunet's
    blocks.0.depthwise channel 8, whose input channel is dead). In TFLite the int32
    accumulator acc + bias would wrap around, and the tiny scale gives a zero requantization
    multiplier and a denormal bias scale. The importer computes the channel's output over the
    whole possible accumulator range; when it is constant (every such channel of the three
    models), the channel's weights become 0, its w_scale the median of the layer's live scales,
    and its bias the value that yields the same constant (0 when the constant is the zero
    point). The function is unchanged, the int32 bias scale and the fixed-point multiplier are
    ordinary, and the channel can be trained again. A pruned-looking channel whose output is
    not constant raises an error.

Requantization differs
    Theirs is float32, ours TFLite fixed-point: outputs differ by one LSB here and there;
    ``tests/test_mit.py`` measures the top-1 agreement and logit correlation.

``num_classes``
    Replaces the 1000-way classifier by a new seeded head with the same recipe as
    ``tflm_train.convert(num_classes=...)`` (Glorot-uniform, per-channel int8 with 3x head room,
    zero bias, logits scale 16/255, zero point 0). ``convert`` can do it too; doing it here keeps
    the 160 KB ImageNet head out of the file.
"""
from __future__ import annotations

import io
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ai_edge_litert import schema_py_generated as schema

from tflm_train import ir, tflite_io
from tflm_train.errors import ModelFormatError, TflmTrainError

INT32_MIN = -(1 << 31)
DEAD_W_SCALE = 1e-7          # below this a w_scale is "pruned" (theirs are ~4e-9)
INPUT_SIZE = 128
PADDINGS = ("exact", "same")
_MODEL_KEYS = ("first_conv", "blocks", "classifier")


# ----------------------------------------------------------------------------- reading pickles

class _Storage:
    """A torch storage from the zip archive, as a flat numpy array."""

    def __init__(self, data: np.ndarray):
        self.data = data


_TORCH_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "IntStorage": np.int32, "LongStorage": np.int64, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def _rebuild_tensor(storage, offset, size, stride, *_):
    flat = storage.data if isinstance(storage, _Storage) else np.asarray(storage)
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=tuple(size),
                                           strides=tuple(s * item for s in stride))
    return np.array(view)


def _rebuild_parameter(data, *_):
    return data


class _MitUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, plain containers and torch tensors (as numpy); nothing else."""

    def __init__(self, file, archive: zipfile.ZipFile | None, prefix: str, where: str):
        super().__init__(file)
        self.archive, self.prefix, self.where = archive, prefix, where

    def find_class(self, module, name):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and \
                name in ("_reconstruct", "scalar"):
            return getattr(np._core.multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "numpy.dtypes" and name.endswith("DType"):   # numpy >= 1.25 dtype classes
            return getattr(np.dtypes, name)
        if module == "_codecs" and name == "encode":
            import codecs
            return codecs.encode
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
            return {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex}[name]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _TORCH_STORAGE_DTYPES:
            return _TORCH_STORAGE_DTYPES[name]
        raise ModelFormatError(f"{self.where}: the pickle refers to {module}.{name}, which is not "
                               f"allowed (only numpy arrays, plain containers and torch tensors "
                               f"are read)")

    def persistent_load(self, pid):
        # torch.save: ('storage', storage type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise ModelFormatError(f"{self.where}: unknown persistent id {pid!r}")
        if self.archive is None:
            raise ModelFormatError(f"{self.where}: tensor storage outside a zip archive")
        dtype = pid[1]
        if not isinstance(dtype, type):
            dtype = getattr(dtype, "dtype", np.float32)
        name = f"{self.prefix}data/{pid[2]}"
        try:
            raw = self.archive.read(name)
        except KeyError:
            raise ModelFormatError(f"{self.where}: storage {name} missing from the archive")
        return _Storage(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).copy())


def load_mit(path) -> dict:
    """The nested dict of a tiny-training ``.pkl`` (torch zip archive or plain pickle)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    where = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith("data.pkl")]
                if not names:
                    raise ModelFormatError(f"{where}: zip archive without data.pkl (not a "
                                           f"torch.save file)")
                prefix = names[0][:-len("data.pkl")]
                model = _MitUnpickler(io.BytesIO(z.read(names[0])), z, prefix, where).load()
        else:
            with open(path, "rb") as f:
                model = _MitUnpickler(f, None, "", where).load()
    except ModelFormatError:
        raise
    except Exception as e:
        raise ModelFormatError(f"{where}: cannot read the pickle ({type(e).__name__}: {e})")
    if not isinstance(model, dict) or any(k not in model for k in _MODEL_KEYS):
        raise ModelFormatError(f"{where}: not a tiny-training model (expected a dict with "
                               f"{', '.join(_MODEL_KEYS)})")
    return model


# ----------------------------------------------------------------------------- model walk

@dataclass
class _Conv:
    name: str
    cfg: dict

    @property
    def p(self) -> dict:
        return self.cfg["params"]

    @property
    def kernel(self) -> tuple[int, int]:
        k = self.cfg.get("kernel_size", 1)
        return (k, k) if isinstance(k, int) else (int(k[0]), int(k[1]))

    @property
    def stride(self) -> int:
        s = self.cfg.get("stride", 1)
        return int(s if isinstance(s, int) else s[0])

    @property
    def depthwise(self) -> bool:
        g = int(self.cfg.get("groups", 1))
        w = self.p["weight"]
        if g == 1:
            return False
        if g == w.shape[0] and w.shape[1] == 1:
            return True
        raise TflmTrainError(f"{self.name}: groups={g} with weight {list(w.shape)} is neither a "
                             f"plain nor a depthwise conv")


def _walk(model: dict):
    """Execution order: ('conv', _Conv) | ('block_start',) | ('add', residual, block name)."""
    yield "conv", _Conv("first_conv", model["first_conv"])
    for i, blk in enumerate(model["blocks"]):
        if blk.get("se") is not None:
            raise TflmTrainError(f"blocks.{i}: squeeze-excite blocks are not supported")
        res = blk.get("residual")
        if res is not None and "kernel_size" in res:
            raise TflmTrainError(f"blocks.{i}: a residual conv is not supported")
        yield "block_start", i
        for k in ("pointwise1", "depthwise", "pointwise2"):
            if blk.get(k) is not None:
                yield "conv", _Conv(f"blocks.{i}.{k}", blk[k])
        if res is not None:
            yield "add", (res["params"], f"blocks.{i}.residual")
    if model.get("feature_mix") is not None:
        yield "conv", _Conv("feature_mix", model["feature_mix"])
    yield "pool", None
    yield "classifier", _Conv("classifier", model["classifier"])


def _eff_scale32(p: dict, w_scales: np.ndarray) -> np.ndarray:
    """Their effective scale: double product, then float32 (torch buffer)."""
    return (np.float64(p["x_scale"]) * w_scales.astype(np.float64) /
            np.float64(p["y_scale"])).astype(np.float32)


def _requant_ref(acc: np.ndarray, p: dict, w_scales: np.ndarray) -> np.ndarray:
    """Their conv tail: float32(acc + bias) * float32 scale, round half even, + y_zero, clamp."""
    out = acc.astype(np.float32) + p["bias"].astype(np.float32)
    out = np.rint(out * _eff_scale32(p, w_scales))
    return np.clip(out + np.float32(p["y_zero"]), -128, 127)


def _dead_channels(conv: _Conv) -> dict[int, int]:
    """{channel: constant int8 output} for pruned channels (bias -2^31 or tiny w_scale)."""
    p = conv.p
    w_scales = np.asarray(p["w_scales"], dtype=np.float64)
    bias = np.asarray(p["bias"]).astype(np.int64)
    dead = np.nonzero((bias == INT32_MIN) | (w_scales < DEAD_W_SCALE))[0]
    out = {}
    w = np.asarray(p["weight"]).astype(np.int64)
    xmax = max(abs(-128 - int(p["x_zero"])), abs(127 - int(p["x_zero"])))
    for c in dead:
        a = int(np.abs(w[c]).sum()) * xmax
        ends = _requant_ref(np.array([-a, 0, a]), {**p, "bias": np.repeat(bias[c], 3)},
                            np.repeat(np.float32(w_scales[c]), 3))
        if not (ends[0] == ends[1] == ends[2]):
            raise TflmTrainError(f"{conv.name}: channel {c} looks pruned (bias {bias[c]}, w_scale "
                                 f"{w_scales[c]:.3g}) but its output is not constant "
                                 f"({int(ends[0])}..{int(ends[2])})")
        out[int(c)] = int(ends[1])
    return out


# ----------------------------------------------------------------------------- reference

def _conv_ref(x: np.ndarray, conv: _Conv) -> np.ndarray:
    """Their QuantizedConv2d on NHWC int arrays (exact integer accumulation)."""
    p = conv.p
    w = np.asarray(p["weight"]).astype(np.float64)            # [Co, Ci/g, kh, kw]
    kh, kw = conv.kernel
    s = conv.stride
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    xz = x.astype(np.float64) - float(p["x_zero"])
    n, h, wd, c = xz.shape
    ho, wo = (h + 2 * ph - kh) // s + 1, (wd + 2 * pw - kw) // s + 1
    xp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c))
    xp[:, ph:ph + h, pw:pw + wd, :] = xz
    co = w.shape[0]
    acc = np.zeros((n, ho, wo, co))
    dw = conv.depthwise
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s, :]
            if dw:
                acc += patch * w[:, 0, i, j]
            else:
                acc += patch @ w[:, :, i, j].T
    return _requant_ref(acc, p, np.asarray(p["w_scales"], dtype=np.float32))


def _add_ref(a, b, res: dict, proj: dict) -> np.ndarray:
    f32 = np.float32
    x1 = (a.astype(f32) - f32(res["x_zero"])) * f32(res["x_scale"])
    x2 = (b.astype(f32) - f32(proj["y_zero"])) * f32(proj["y_scale"])
    out = np.rint((x1 + x2) / f32(res["y_scale"])) + f32(res["y_zero"])
    return np.clip(out, -128, 127)


def run_mit_reference(model: dict | str | Path, x_int8: np.ndarray) -> np.ndarray:
    """Their float-requantization forward pass (tiny-training's quantized_ops_diff semantics).

    ``x_int8``: [N, H, W, 3] or [H, W, 3] int8 (NHWC, as the TFLite model's input).
    Returns int8 logits [N, classes]."""
    if not isinstance(model, dict):
        model = load_mit(model)
    x = np.asarray(x_int8)
    if x.ndim == 3:
        x = x[None]
    block_in = None
    last_proj = None
    for kind, item in _walk(model):
        if kind == "block_start":
            block_in = x
        elif kind == "conv":
            x = _conv_ref(x, item)
            last_proj = item.p
        elif kind == "add":
            x = _add_ref(block_in, x, item[0], last_proj)
        elif kind == "pool":
            x = np.rint(x.astype(np.float32).mean(axis=(1, 2), keepdims=True, dtype=np.float32))
        else:
            x = _conv_ref(x, item)
    return x.reshape(x.shape[0], -1).astype(np.int8)


# ----------------------------------------------------------------------------- TFLite builder

class _Builder:
    """Tensors, buffers, operator codes and ops of a one-subgraph schema ModelT."""

    def __init__(self, description: str):
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.description = description.encode()
        self.model.buffers = [schema.BufferT()]
        self.model.operatorCodes = []
        self.sg = schema.SubGraphT()
        self.sg.tensors, self.sg.operators = [], []
        self.sg.name = b"main"
        self.model.subgraphs = [self.sg]

    def tensor(self, name, shape, dtype, scale=None, zero_point=None, axis=0, data=None) -> int:
        t = schema.TensorT()
        t.name = name.encode()
        t.shape = np.array(shape, dtype=np.int32)
        t.type = ir.DTYPE_TO_TENSOR_TYPE[np.dtype(dtype)]
        t.buffer = 0
        if data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(),
                                   dtype=np.uint8).copy()
            self.model.buffers.append(b)
            t.buffer = len(self.model.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = np.asarray(scale, dtype=np.float32).ravel()
            zp = np.zeros(len(q.scale)) if zero_point is None else zero_point
            q.zeroPoint = np.asarray(zp, dtype=np.int64).ravel()
            q.quantizedDimension = int(axis)
            t.quantization = q
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def op(self, builtin: int, inputs, outputs, options_type: int, options) -> None:
        codes = self.model.operatorCodes
        idx = next((i for i, oc in enumerate(codes) if oc.builtinCode == builtin), None)
        if idx is None:
            oc = schema.OperatorCodeT()
            oc.builtinCode = builtin
            oc.deprecatedBuiltinCode = min(builtin, 127)
            oc.version = 1
            codes.append(oc)
            idx = len(codes) - 1
        o = schema.OperatorT()
        o.opcodeIndex = idx
        o.inputs = np.array(inputs, dtype=np.int32)
        o.outputs = np.array(outputs, dtype=np.int32)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.sg.operators.append(o)


def _activation(y_scale: float, y_zero: int) -> int:
    """RELU6 when the output quantization starts at real 0 (their ReLU6), else NONE; either way
    the int8 clamp equals their [-128, 127] clamp."""
    AF = schema.ActivationFunctionType
    if int(y_zero) != -128:
        return AF.NONE
    top = -128 + int(round(6.0 / float(np.float32(y_scale))))
    return AF.RELU6 if top >= 127 else AF.RELU


def _same_top_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """(output size, top padding) of TFLite SAME padding."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2


def _tflite_kernel(conv: _Conv, in_size: int, padding: str) -> tuple[int, int]:
    """Kernel (kh, kw) to emit so that TFLite SAME padding equals PyTorch's (k-1)//2."""
    out = []
    for k in conv.kernel:
        s = conv.stride
        want_out = (in_size + 2 * ((k - 1) // 2) - k) // s + 1
        got_out, top = _same_top_pad(in_size, k, s)
        if got_out != want_out:
            raise TflmTrainError(f"{conv.name}: kernel {k} stride {s} on {in_size} gives "
                                 f"{want_out} outputs in PyTorch, {got_out} with SAME padding")
        if padding == "same" or top == (k - 1) // 2:
            out.append(k)
            continue
        got_out2, top2 = _same_top_pad(in_size, k + 1, s)
        if got_out2 != want_out or top2 != (k - 1) // 2:
            raise TflmTrainError(f"{conv.name}: cannot express padding {(k - 1) // 2} of a "
                                 f"{k}x{k} stride-{s} conv on {in_size} with SAME padding")
        out.append(k + 1)
    return out[0], out[1]


def _new_head(conv: _Conv, num_classes: int, seed: int) -> _Conv:
    """A seeded num_classes-way head (the recipe of tflm_train.convert(num_classes=...))."""
    fan_in = int(conv.p["weight"].shape[1])
    rng = np.random.default_rng(seed)
    limit = math.sqrt(6.0 / (fan_in + num_classes))
    wf = rng.uniform(-limit, limit, size=(num_classes, fan_in, 1, 1))
    s_w = np.full(num_classes, 3.0 * limit / 127.0, dtype=np.float32)
    wq = np.clip(np.round(wf / s_w.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
    p = dict(conv.p, weight=wq, bias=np.zeros(num_classes, np.int32), w_scales=s_w,
             y_scale=16.0 / 255.0, y_zero=0)
    return _Conv(conv.name, dict(conv.cfg, out_channel=num_classes, params=p))


def _check_link(name: str, p: dict, scale: float, zero: int) -> None:
    """The consumer's x quantization must be the producer's y quantization (one tensor)."""
    if int(p["x_zero"]) != int(zero) or not math.isclose(float(p["x_scale"]), float(scale),
                                                         rel_tol=1e-6):
        raise TflmTrainError(f"{name}: input quantization ({p['x_scale']}, {p['x_zero']}) differs "
                             f"from its producer's output ({scale}, {zero})")


def import_mit(path, num_classes: int | None = None, seed: int = 0,
               padding: str = "exact") -> bytes:
    """A tiny-training ``.pkl`` (path or the dict of ``load_mit``) as an int8 .tflite model.

    ``num_classes`` replaces the classifier by a new seeded head; ``padding`` "exact" (default,
    PyTorch's padding via zero-grown stride-2 kernels) or "same" (TFLite SAME, shifted windows).
    See the module docstring for the layout, the dead-channel handling and the numerics."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    where = str(path) if not isinstance(path, dict) else "<model dict>"
    model = path if isinstance(path, dict) else load_mit(path)
    name = Path(where).stem if not isinstance(path, dict) else "mit"
    b = _Builder(f"tflm-train import-mit {name}")
    BO, BOT = schema.BuiltinOperator, schema.BuiltinOptions

    first = model["first_conv"]["params"]
    size = int(model["first_conv"].get("in_shape", INPUT_SIZE))
    channels = int(model["first_conv"]["params"]["weight"].shape[1])
    x = b.tensor("input", (1, size, size, channels), np.int8, [first["x_scale"]], [first["x_zero"]])
    b.sg.inputs = np.array([x], dtype=np.int32)
    cur = dict(t=x, size=size, ch=channels, scale=float(first["x_scale"]),
               zero=int(first["x_zero"]))
    block_in = None
    for kind, item in _walk(model):
        if kind == "block_start":
            block_in = dict(cur)
            continue
        if kind == "add":
            res, rname = item
            _check_link(rname, res, block_in["scale"], block_in["zero"])
            if block_in["size"] != cur["size"] or block_in["ch"] != cur["ch"]:
                raise TflmTrainError(f"{rname}: residual shapes differ ({block_in['size']}x"
                                     f"{block_in['ch']} vs {cur['size']}x{cur['ch']})")
            y = b.tensor(rname, (1, cur["size"], cur["size"], cur["ch"]), np.int8,
                         [res["y_scale"]], [res["y_zero"]])
            opts = schema.AddOptionsT()
            opts.fusedActivationFunction = schema.ActivationFunctionType.NONE
            b.op(BO.ADD, [block_in["t"], cur["t"]], [y], BOT.AddOptions, opts)
            cur.update(t=y, scale=float(res["y_scale"]), zero=int(res["y_zero"]))
            continue
        if kind == "pool":
            y = b.tensor("avg_pool", (1, 1, 1, cur["ch"]), np.int8, [cur["scale"]], [cur["zero"]])
            opts = schema.Pool2DOptionsT()
            opts.padding = schema.Padding.VALID
            opts.strideW = opts.strideH = 1
            opts.filterWidth = opts.filterHeight = cur["size"]
            opts.fusedActivationFunction = schema.ActivationFunctionType.NONE
            b.op(BO.AVERAGE_POOL_2D, [cur["t"]], [y], BOT.Pool2DOptions, opts)
            shape = b.tensor("flatten/shape", (2,), np.int32, data=np.array([1, cur["ch"]]))
            flat = b.tensor("flatten", (1, cur["ch"]), np.int8, [cur["scale"]], [cur["zero"]])
            opts = schema.ReshapeOptionsT()
            opts.newShape = np.array([1, cur["ch"]], dtype=np.int32)
            b.op(BO.RESHAPE, [y, shape], [flat], BOT.ReshapeOptions, opts)
            cur.update(t=flat, size=1)
            continue
        conv = item
        if kind == "classifier" and num_classes is not None:
            conv = _new_head(conv, num_classes, seed)
        p = conv.p
        _check_link(conv.name, p, cur["scale"], cur["zero"])
        w = np.asarray(p["weight"]).astype(np.int8).copy()          # [Co, Ci/g, kh, kw]
        bias = np.asarray(p["bias"]).astype(np.int64).copy()
        w_scales = np.asarray(p["w_scales"], dtype=np.float64).copy()
        co = w.shape[0]
        if w.shape[1] * (co if conv.depthwise else 1) != cur["ch"] and not conv.depthwise:
            raise TflmTrainError(f"{conv.name}: weight {list(w.shape)} does not take "
                                 f"{cur['ch']} input channels")
        dead = _dead_channels(conv) if kind != "classifier" or num_classes is None else {}
        live = np.setdiff1d(np.arange(co), list(dead))
        if dead:
            sane = float(np.median(w_scales[live])) if len(live) else 1.0 / 127
            for c, const in dead.items():
                w[c] = 0
                w_scales[c] = sane
                m = float(p["x_scale"]) * sane / float(p["y_scale"])
                bias[c] = int(np.clip(round((const - int(p["y_zero"])) / m), -(1 << 30), 1 << 30))
        s_y, z_y = float(p["y_scale"]), int(p["y_zero"])
        act = _activation(s_y, z_y) if kind != "classifier" else \
            schema.ActivationFunctionType.NONE
        b_scale = (np.float64(np.float32(cur["scale"])) *
                   w_scales.astype(np.float32).astype(np.float64))
        bt = b.tensor(f"{conv.name}/bias", (co,), np.int32, b_scale, np.zeros(co), 0,
                      data=bias.astype(np.int32))
        if kind == "classifier":
            if conv.kernel != (1, 1) or cur["size"] != 1:
                raise TflmTrainError(f"{conv.name}: the classifier must be a 1x1 conv on the "
                                     f"pooled vector")
            wt = b.tensor(f"{conv.name}/weight", (co, w.shape[1]), np.int8, w_scales,
                          np.zeros(co), 0, data=w[:, :, 0, 0])
            y = b.tensor("logits", (1, co), np.int8, [s_y], [z_y])
            opts = schema.FullyConnectedOptionsT()
            opts.fusedActivationFunction = act
            b.op(BO.FULLY_CONNECTED, [cur["t"], wt, bt], [y], BOT.FullyConnectedOptions, opts)
            b.sg.outputs = np.array([y], dtype=np.int32)
            continue
        kh, kw = _tflite_kernel(conv, cur["size"], padding)
        if (kh, kw) != conv.kernel:  # zero taps at the bottom/right: PyTorch's windows
            grown = np.zeros((co, w.shape[1], kh, kw), np.int8)
            grown[:, :, :conv.kernel[0], :conv.kernel[1]] = w
            w = grown
        out_size = (cur["size"] + conv.stride - 1) // conv.stride
        y = b.tensor(conv.name, (1, out_size, out_size, co), np.int8, [s_y], [z_y])
        if conv.depthwise:
            if co != cur["ch"]:
                raise TflmTrainError(f"{conv.name}: depthwise with {co} outputs on {cur['ch']} "
                                     f"channels")
            wt = b.tensor(f"{conv.name}/weight", (1, kh, kw, co), np.int8, w_scales,
                          np.zeros(co), 3, data=w[:, 0].transpose(1, 2, 0))
            opts = schema.DepthwiseConv2DOptionsT()
            opts.depthMultiplier = 1
            code, otype = BO.DEPTHWISE_CONV_2D, BOT.DepthwiseConv2DOptions
        else:
            wt = b.tensor(f"{conv.name}/weight", (co, kh, kw, w.shape[1]), np.int8, w_scales,
                          np.zeros(co), 0, data=w.transpose(0, 2, 3, 1))
            opts = schema.Conv2DOptionsT()
            code, otype = BO.CONV_2D, BOT.Conv2DOptions
        opts.padding = schema.Padding.SAME
        opts.strideW = opts.strideH = conv.stride
        opts.dilationWFactor = opts.dilationHFactor = 1
        opts.fusedActivationFunction = act
        b.op(code, [cur["t"], wt, bt], [y], otype, opts)
        cur.update(t=y, size=out_size, ch=co, scale=s_y, zero=z_y)
    return tflite_io.write_model(b.model)


def main_import(src, dst, num_classes: int | None = None, seed: int = 0,
                padding: str = "exact") -> dict:
    """CLI helper: import ``src`` to ``dst``; returns a small summary."""
    data = import_mit(src, num_classes=num_classes, seed=seed, padding=padding)
    Path(dst).write_bytes(data)
    g = ir.load(data)
    from tflm_train.schemes import trainable_layers
    layers = trainable_layers(g)
    return {"ops": len(g.ops), "layers": len(layers), "bytes": len(data),
            "classes": int(g.tensors[g.outputs[0]].shape[-1])}
