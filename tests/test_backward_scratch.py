"""Backward kernels' scratch (docs/training-numerics.md, "Input gradients"): the C kernels
stream their int32 accumulators through tt_pow2_stream, which keeps 2 bits per gradient element
instead of the accumulator itself, and still returns exactly requantize_pow2's int8 values and
exponent. Protected here: the C kernels touch no scratch byte past *_scratch_size and need no
zeroed scratch (guard and poison), the rounding of the stream equals requantize_pow2 on
adversarial accumulator sequences (ties of both signs at every shift, shifts that grow along
the tensor), the Python twins equal the C *_scratch_size, and the compiler plans exactly them."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

import _backward_mac_ctypes as cb
import _backward_misc_ctypes as cm
from conftest import ROOT, shared_model
from tflm_train.kernels.add_backward import add_backward, add_backward_scratch_size
from tflm_train.kernels.conv_2d import Conv2DParams
from tflm_train.kernels.conv_2d_backward import (conv_2d_backward_input,
                                                 conv_2d_backward_input_prepare,
                                                 conv_2d_backward_input_scratch_size)
from tflm_train.kernels.depthwise_conv_2d import DepthwiseConv2DParams
from tflm_train.kernels.depthwise_conv_2d_backward import (
    depthwise_conv_2d_backward_input, depthwise_conv_2d_backward_input_prepare,
    depthwise_conv_2d_backward_input_scratch_size)
from tflm_train.kernels.fully_connected import FullyConnectedParams
from tflm_train.kernels.fully_connected_backward import (
    fully_connected_backward_input, fully_connected_backward_input_prepare,
    fully_connected_backward_input_scratch_size)
from tflm_train.kernels.gradient import pow2_stream_scratch_size, requantize_pow2
from tflm_train.kernels.loss import softmax_cross_entropy_scratch_size
from tflm_train.kernels.pooling import PoolParams
from tflm_train.kernels.pooling_backward import (average_pool_2d_backward,
                                                 average_pool_2d_backward_scratch_size,
                                                 max_pool_2d_backward,
                                                 max_pool_2d_backward_scratch_size)
from tflm_train.kernels.update import BackwardInputQuant
from tflm_train.quant import compute_padding

POISON = np.int32(-0x5A5A5A5B)   # 0xA5A5A5A5: the kernels may not rely on zeroed scratch
GUARD_WORDS = 16


@pytest.fixture(scope="module")
def lib():
    lib = cb.load_lib()
    cm.load_lib()  # skips the same way if the misc kernels are missing
    lib.tt_pow2_stream_scratch_size.restype = ctypes.c_int32
    for name in ("average_pool_2d_backward", "max_pool_2d_backward"):
        getattr(lib, f"tt_{name}_scratch_size").restype = ctypes.c_int32
    lib.tt_add_backward_scratch_size.restype = ctypes.c_int32
    return lib


def _guarded(size: int) -> np.ndarray:
    """size bytes of poisoned scratch followed by as many poisoned guard bytes (at least
    GUARD_WORDS words): a kernel using up to twice its stated scratch fails the guard check
    instead of corrupting the heap."""
    assert size % 4 == 0
    return np.full(size // 4 + max(size // 4, GUARD_WORDS), POISON, dtype=np.int32)


def _assert_guard(buf: np.ndarray, size: int, what: str):
    tail = buf[size // 4:]
    assert np.all(tail == POISON), f"{what} wrote past its {size}-byte scratch"


def _dims(shape):
    return ctypes.byref(cm.Dims(*((1,) * (4 - len(shape)) + tuple(int(v) for v in shape))))


# ------------------------------------------------------------------------ the size formula

def test_stream_keeps_two_bits_per_element(lib):
    for n in (0, 1, 15, 16, 17, 12288, 1 << 20):
        size = lib.tt_pow2_stream_scratch_size(n)
        assert size == pow2_stream_scratch_size(n)
        assert size % 4 == 0 and 2 * n <= 8 * size < 2 * n + 32   # 2 bits each, whole words


def test_scratch_size_twins_equal_c(lib):
    for shape in [(1, 8, 8, 192), (1, 1, 1, 1), (2, 3, 5, 7), (1, 16, 16, 48)]:
        n = int(np.prod(shape))
        for name, twin in (("conv_2d", conv_2d_backward_input_scratch_size),
                           ("depthwise_conv_2d", depthwise_conv_2d_backward_input_scratch_size)):
            c = getattr(lib, f"tt_{name}_backward_input_scratch_size")(_dims(shape))
            assert c == twin(shape) == pow2_stream_scratch_size(n)
        for name, twin in (("average_pool_2d_backward", average_pool_2d_backward_scratch_size),
                           ("max_pool_2d_backward", max_pool_2d_backward_scratch_size)):
            c = getattr(lib, f"tt_{name}_scratch_size")(_dims(shape))
            # one pixel of int32 sums, then the stream's 2 bits per element
            assert c == twin(shape) == 4 * shape[-1] + pow2_stream_scratch_size(n)
    for fc_shape in [(1, 1280), (3, 7), (1, 1)]:
        c = lib.tt_fully_connected_backward_input_scratch_size(ctypes.byref(cb.dims(fc_shape)))
        assert c == fully_connected_backward_input_scratch_size(fc_shape) == \
            pow2_stream_scratch_size(int(np.prod(fc_shape)))
    for s1, s2, out in [((1, 4, 4, 8),) * 3, ((1, 1, 1, 8), (1, 4, 4, 8), (1, 4, 4, 8)),
                        ((1, 4, 1, 8), (1, 1, 4, 1), (1, 4, 4, 8))]:
        c = lib.tt_add_backward_scratch_size(_dims(s1), _dims(s2), _dims(out))
        assert c == add_backward_scratch_size(s1, s2, out)


# ------------------------------------------------------- the MAC input-gradient kernels

def _mac_case(rng, op):
    zp = int(rng.integers(-128, 128))
    if op == "fully_connected":
        b, depth, units = (int(v) for v in (rng.integers(1, 4), rng.integers(1, 300),
                                            rng.integers(1, 40)))
        f = rng.integers(-127, 128, (units, depth), dtype=np.int8)
        return (FullyConnectedParams(-zp, 0, 1, (-128, 127)), f, (b, units), (b, depth),
                fully_connected_backward_input_prepare(
                    rng.uniform(0.001, 0.05, units).astype(np.float32), f.shape))
    n, h, w = 1, int(rng.integers(3, 17)), int(rng.integers(3, 17))
    kh = kw = int(rng.choice([1, 3]))
    s = int(rng.integers(1, 3))
    padding = int(rng.integers(0, 2))
    oh, ph = compute_padding(padding, h, kh, s, 1)
    ow, pw = compute_padding(padding, w, kw, s, 1)
    ci = int(rng.integers(1, 24))
    if op == "conv_2d":
        co = int(rng.integers(1, 24))
        f = rng.integers(-127, 128, (co, kh, kw, ci), dtype=np.int8)
        params = Conv2DParams(-zp, 0, s, s, 1, 1, pw, ph, (-128, 127))
        q = conv_2d_backward_input_prepare(rng.uniform(0.001, 0.05, co).astype(np.float32),
                                           f.shape)
    else:
        dm = int(rng.integers(1, 3))
        co = ci * dm
        f = rng.integers(-127, 128, (1, kh, kw, co), dtype=np.int8)
        params = DepthwiseConv2DParams(-zp, 0, s, s, 1, 1, pw, ph, dm, (-128, 127))
        q = depthwise_conv_2d_backward_input_prepare(
            rng.uniform(0.001, 0.05, co).astype(np.float32), f.shape, dm)
    return params, f, (n, oh, ow, co), (n, h, w, ci), q


def _numpy_backward_input(op, params, q, grad, e, f, in_shape):
    if op == "conv_2d":
        return conv_2d_backward_input(params, q, grad, e, f, in_shape)
    if op == "depthwise_conv_2d":
        return depthwise_conv_2d_backward_input(params, q, grad, e, f, in_shape)
    return fully_connected_backward_input(params, q, grad, e, f)


@pytest.mark.parametrize("op", ["conv_2d", "depthwise_conv_2d", "fully_connected"])
def test_mac_input_gradient_stays_in_its_scratch(lib, op):
    """Poisoned scratch of exactly *_scratch_size bytes, poisoned guard words after it: the
    guard is intact and the gradient equals numpy's bit for bit."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        params, f, g_shape, in_shape, q = _mac_case(rng, op)
        # grad magnitudes vary along the tensor, so the running shift grows inside it
        grad = (rng.integers(-127, 128, g_shape) * rng.uniform(0, 1, g_shape) ** 3
                ).astype(np.int8)
        e = int(rng.integers(-30, 0))
        size = getattr(lib, f"tt_{op}_backward_input_scratch_size")(
            ctypes.byref(cb.dims(in_shape)))
        buf = _guarded(size)
        got, got_e = cb.backward_input(lib, op, params, q, grad, e, f, in_shape, scratch=buf)
        _assert_guard(buf, size, op)
        want, want_e = _numpy_backward_input(op, params, q, grad, e, f, in_shape)
        assert got_e == want_e
        np.testing.assert_array_equal(got.reshape(want.shape), want)


# --------------------------------------------- adversarial accumulators through the stream

def _targets(rng) -> list[np.ndarray]:
    """int32 accumulator sequences below 2^27 (the FC construction below) that exercise the
    stream's rounding: ties of both signs at the final shift and at earlier ones, growing
    shifts, boundaries of the int8 range, all zeros."""
    seqs = [np.zeros(7, np.int64), np.array([5]), np.array([-128]), np.array([128, -128])]
    for s in range(1, 20):
        half = 1 << (s - 1)
        m = rng.integers(-127, 127, 40)
        # exact ties (half away from zero: +x.5 up, -x.5 down), and one LSB either side
        seqs.append(np.concatenate([[127 << s], m * (1 << s) + half, m * (1 << s) - half,
                                    m * (1 << s) + half + 1, m * (1 << s) - half - 1]))
        # the same values pushed before the max: they get re-rounded from a smaller shift
        seqs.append(np.concatenate([m * (1 << s) + half, -m * (1 << s) - half, [-(128 << s)]]))
        seqs.append(np.array([(128 << s) - 1, -((128 << s) - 1), 127 << s, -(127 << s)]))
    for _ in range(30):  # magnitudes growing along the tensor: a new shift every few elements
        n = int(rng.integers(2, 200))
        mag = np.exp(np.linspace(0, np.log(2.0 ** int(rng.integers(3, 27))), n))
        v = (mag * rng.uniform(0.5, 1.0, n) * rng.choice([-1, 1], n)).astype(np.int64)
        seqs.append(v)
        seqs.append(v[::-1].copy())
    return seqs


def _fc_for(values: np.ndarray):
    """grad, filter, r with FC input-gradient accumulators (p = 0) equal to `values`:
    A_j = d0 + 2^7·d1 + 2^14·d2 + 2^20·d3, the digits being filter rows, the radixes
    g_c·r_c (r_c < 2^15 as the kernel's bound)."""
    radix = np.array([1, 1 << 7, 1 << 14, 1 << 20], np.int64)
    g = np.array([1, 1, 1, 64], np.int8)
    r = np.array([1, 1 << 7, 1 << 14, 1 << 14], np.int32)
    digits = np.zeros((4, values.size), np.int64)
    rest = values.astype(np.int64).copy()
    for k, base in enumerate((1 << 7, 1 << 7, 1 << 6)):   # balanced digits of each radix
        d = ((rest + base // 2) % base) - base // 2
        digits[k] = d
        rest = (rest - d) // base
    digits[3] = rest
    assert np.all(np.abs(digits) <= 127) and np.array_equal(radix @ digits, values)
    return g.reshape(1, 4), digits.astype(np.int8), r


def test_stream_rounds_like_requantize_pow2(lib):
    rng = np.random.default_rng(5)
    params = FullyConnectedParams(0, 0, 1, (-128, 127))
    for values in _targets(rng):
        g, f, r = _fc_for(values)
        q = BackwardInputQuant(r, 0, 0)   # exponent offset s_e - 15 + p = -15
        want, want_e = requantize_pow2(values, 3 - 15)
        size = lib.tt_fully_connected_backward_input_scratch_size(
            ctypes.byref(cb.dims((1, values.size))))
        buf = _guarded(size)
        got, got_e = cb.backward_input(lib, "fully_connected", params, q, g, 3, f,
                                       (1, values.size), scratch=buf)
        _assert_guard(buf, size, "fully_connected")
        assert got_e == want_e, values
        np.testing.assert_array_equal(got.ravel(), want, err_msg=str(values))
        np_got, np_e = fully_connected_backward_input(params, q, g, 3, f)
        assert np_e == want_e
        np.testing.assert_array_equal(np_got.ravel(), want)


# ------------------------------------------------------------------ pooling and ADD

def _pool_case(rng):
    h, w, c = (int(v) for v in (rng.integers(2, 14), rng.integers(2, 14), rng.integers(1, 20)))
    fh, fw = (int(v) for v in rng.integers(1, 5, 2))
    s = int(rng.integers(1, 4))
    padding = int(rng.integers(0, 2))
    oh, ph = compute_padding(padding, h, fh, s, 1)
    ow, pw = compute_padding(padding, w, fw, s, 1)
    return PoolParams(s, s, fw, fh, pw, ph, (-128, 127)), (1, h, w, c), (1, oh, ow, c)


@pytest.mark.parametrize("kind", ["average", "max"])
def test_pool_backward_stays_in_its_scratch(lib, kind):
    rng = np.random.default_rng(3 if kind == "average" else 4)
    for _ in range(40):
        params, in_shape, out_shape = _pool_case(rng)
        if min(out_shape) <= 0:
            continue
        g = (rng.integers(-127, 128, out_shape) * rng.uniform(0, 1, out_shape) ** 2
             ).astype(np.int8)
        e = int(rng.integers(-20, 5))
        size = getattr(lib, f"tt_{kind}_pool_2d_backward_scratch_size")(_dims(in_shape))
        buf = _guarded(size)
        if kind == "average":
            got = cm.average_pool_2d_backward(lib, params, g, e, in_shape, scratch=buf)
            want = average_pool_2d_backward(params, g, e, in_shape)
        else:
            # few distinct values: ties inside windows exercise the first-maximum rule
            x = rng.integers(-3, 3, in_shape).astype(np.int8)
            got = cm.max_pool_2d_backward(lib, params, g, e, x, scratch=buf)
            want = max_pool_2d_backward(params, g, e, x)
        _assert_guard(buf, size, f"{kind} pool")
        assert got[1] == want[1]
        np.testing.assert_array_equal(got[0], want[0])


def test_add_backward_stays_in_its_scratch(lib):
    rng = np.random.default_rng(9)
    for s1, s2, out in [((1, 1, 1, 8), (1, 6, 5, 8), (1, 6, 5, 8)),
                        ((1, 6, 1, 8), (1, 1, 5, 1), (1, 6, 5, 8)),
                        ((1, 6, 5, 8), (8,), (1, 6, 5, 8)),
                        ((2, 3, 4, 5), (2, 1, 4, 1), (2, 3, 4, 5))]:
        g = rng.integers(-127, 128, out).astype(np.int8)
        mask = rng.integers(0, 256, -(-g.size // 8)).astype(np.uint8)
        size = lib.tt_add_backward_scratch_size(_dims(s1), _dims(s2), _dims(out))
        buf = _guarded(size)
        got = cm.add_backward(lib, g, -7, s1, s2, mask, scratch=buf)
        _assert_guard(buf, size, "add")
        want = add_backward(g, -7, s1, s2, mask)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- what the compiler plans

def _planned_scratch(tm):
    """(opcode, planned bytes, Python-twin bytes, gradient shape) of every scratch output."""
    g = tm.graph
    rows = []
    for op in g.ops:
        outs = [t for t in op.outputs if g.tensors[t].name.startswith("scratch/")]
        kind = op.opcode.removeprefix("CUSTOM:")
        if not outs or kind == "TT_FUSED_CHAIN":  # forward line buffers: test_fused_chain.py
            continue
        (t,) = outs
        gx = g.tensors[op.outputs[0]].shape
        if kind == "TT_CONV_2D_GRAD":
            want = conv_2d_backward_input_scratch_size(gx)
        elif kind == "TT_DEPTHWISE_CONV_2D_GRAD":
            want = depthwise_conv_2d_backward_input_scratch_size(gx)
        elif kind == "TT_FULLY_CONNECTED_GRAD":
            want = fully_connected_backward_input_scratch_size(gx)
        elif kind == "TT_AVERAGE_POOL_2D_GRAD":
            want = average_pool_2d_backward_scratch_size(gx)
        elif kind == "TT_MAX_POOL_2D_GRAD":
            want = max_pool_2d_backward_scratch_size(gx)
        elif kind == "TT_ADD_GRAD":
            want = add_backward_scratch_size(gx, g.tensors[op.outputs[2]].shape,
                                             g.tensors[op.inputs[0]].shape)
        elif kind == "TT_SOFTMAX_XENT":  # outputs loss, grad, exp, scratch
            gx = g.tensors[op.outputs[1]].shape
            want = softmax_cross_entropy_scratch_size(int(gx[-1]))
        else:
            raise AssertionError(f"unexpected scratch on {kind}")
        rows.append((kind, g.tensors[t].nbytes, want, tuple(gx)))
    return rows


def _check_plan(tm):
    rows = _planned_scratch(tm)
    assert any(k.endswith("_GRAD") for k, *_ in rows)
    for kind, planned, want, shape in rows:
        assert planned == want, kind
        if kind != "TT_SOFTMAX_XENT":  # 2 bits per gradient element (+ one pool pixel)
            pixel = 4 * shape[-1] if "POOL" in kind else 0
            assert planned <= int(np.prod(shape)) // 4 + 4 + pixel, kind
    return {k for k, *_ in rows}


def test_compiler_plans_the_stream_scratch():
    import tflm_train as tt
    tm = tt.convert(ROOT / "examples" / "models" / "fashion5_cnn_int8.tflite", update="full",
                    num_classes=5)
    assert "TT_CONV_2D_GRAD" in _check_plan(tm)
    tm = tt.convert(shared_model("mlcommons/resnet8_cifar10_int8.tflite"), update="full",
                    num_classes=10)
    assert "TT_CONV_2D_GRAD" in _check_plan(tm)


def test_mit_model_backward_scratch_is_small():
    """proxyless-w0.3 with its published 98kb scheme: every planned scratch is the formula,
    and the numpy and C engines still agree bit for bit over two training steps."""
    import tflm_train as tt
    from tflm_train.converters.mit import import_mit
    pytest.importorskip("tflm_train.engine_c")
    tm = tt.convert(import_mit(shared_model("mit/proxyless-w0.3.pkl"), num_classes=10),
                    update="published:proxyless-w0.3/98kb")
    assert "TT_DEPTHWISE_CONV_2D_GRAD" in _check_plan(tm)
    a, b = tt.Trainer(tm, backend="numpy"), tt.Trainer(tm, backend="c")
    rng = np.random.default_rng(2)
    shape = tm.graph.tensors[tm.graph.inputs[0]].shape[1:]
    for step in range(2):
        x = rng.integers(-128, 128, shape).astype(np.int8)
        assert a.train_step(x, step + 3) == b.train_step(x, step + 3)
    pa, pb = a.parameters(), b.parameters()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
