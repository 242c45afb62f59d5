"""MAC training kernels (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): input gradients and the
fused weight/bias gradient + in-place QAS update, numpy vs C bit for bit, against float64
references, and the numeric properties of docs/training-numerics.md."""
from __future__ import annotations

import math

import numpy as np
import pytest

import _backward_mac_ctypes as cb
from tflm_train.kernels.conv_2d import Conv2DParams
from tflm_train.kernels.conv_2d_backward import (conv_2d_backward_input,
                                                 conv_2d_backward_input_prepare, conv_2d_update,
                                                 conv_2d_weight_grad)
from tflm_train.kernels.depthwise_conv_2d import DepthwiseConv2DParams
from tflm_train.kernels.depthwise_conv_2d_backward import (
    depthwise_conv_2d_backward_input, depthwise_conv_2d_backward_input_prepare,
    depthwise_conv_2d_update, depthwise_conv_2d_weight_grad)
from tflm_train.kernels.fully_connected import FullyConnectedParams
from tflm_train.kernels.fully_connected_backward import (
    fully_connected_backward_input, fully_connected_backward_input_prepare,
    fully_connected_update, fully_connected_weight_grad)
from tflm_train.kernels.gradient import prng_next, prng_seed
from tflm_train.kernels.update import (UpdateParams, backward_input_prepare, momentum_q15,
                                       sgd_delta, sgd_deltas, sgd_momentum_delta,
                                       sgd_steps_q16, update_factor, update_factors, update_lr,
                                       update_multiplier)
from tflm_train.quant import compute_padding

INT32_MAX, INT32_MIN = (1 << 31) - 1, -(1 << 31)
OPS = ("conv_2d", "depthwise_conv_2d", "fully_connected")


@pytest.fixture(scope="module")
def lib():
    return cb.load_lib()


# --------------------------------------------------------------------------- helpers

def _quantize_grad(g: np.ndarray) -> tuple[np.ndarray, int]:
    """Float gradient → int8 + power-of-two exponent (max |q| <= 127)."""
    m = float(np.max(np.abs(g)))
    if m == 0.0:
        return np.zeros(g.shape, np.int8), 0
    e = math.ceil(math.log2(m / 127.0))
    return np.clip(np.round(g / 2.0 ** e), -127, 127).astype(np.int8), e


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _conv_params(stride, dil, pad, zp_in, dm=None):
    sh, sw = stride
    dh, dw = dil
    ph, pw = pad
    if dm is None:
        return Conv2DParams(-zp_in, 0, sw, sh, dw, dh, pw, ph, (-128, 127))
    return DepthwiseConv2DParams(-zp_in, 0, sw, sh, dw, dh, pw, ph, dm, (-128, 127))


def _random_case(rng, op, full_slice=False, kernel=(1, 4), size=(1, 9)):
    """Random layer: (params, x (saved, compact slice), filter, bias, grad, s_x, s_w, Ci);
    kernel and spatial sizes drawn from [lo, hi)."""
    zp = int(rng.integers(-128, 128))
    if op == "fully_connected":
        b, depth, units = (int(v) for v in (rng.integers(1, 4), rng.integers(1, 40),
                                            rng.integers(1, 20)))
        ic = depth if full_slice else int(rng.integers(1, depth + 1))
        params = FullyConnectedParams(-zp, 0, 1, (-128, 127))
        x = rng.integers(-128, 128, (b, ic), dtype=np.int8)
        f = rng.integers(-127, 128, (units, depth), dtype=np.int8)
        g_shape = (b, units)
        n_ch = units
        full_in = (b, depth)
    else:
        n = int(rng.integers(1, 3))
        h, w = (int(v) for v in rng.integers(*size, 2))
        kh, kw = (int(v) for v in rng.integers(*kernel, 2))
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        dil = tuple(int(v) for v in rng.integers(1, 3, 2))
        padding = int(rng.integers(0, 2))
        oh, ph = compute_padding(padding, h, kh, stride[0], dil[0])
        ow, pw = compute_padding(padding, w, kw, stride[1], dil[1])
        if oh <= 0 or ow <= 0:
            return None
        ci = int(rng.integers(1, 6))
        ic = ci if full_slice else int(rng.integers(1, ci + 1))
        if op == "conv_2d":
            co = int(rng.integers(1, 6))
            params = _conv_params(stride, dil, (ph, pw), zp)
            f = rng.integers(-127, 128, (co, kh, kw, ci), dtype=np.int8)
            n_ch = co
        else:
            dm = int(rng.integers(1, 3))
            co = ci * dm
            params = _conv_params(stride, dil, (ph, pw), zp, dm)
            f = rng.integers(-127, 128, (1, kh, kw, co), dtype=np.int8)
            n_ch = co
        x = rng.integers(-128, 128, (n, h, w, ic), dtype=np.int8)
        g_shape = (n, oh, ow, co)
        full_in = (n, h, w, ci)
    grad = rng.integers(-127, 128, g_shape, dtype=np.int8)
    bias = rng.integers(-5000, 5000, n_ch, dtype=np.int32)
    s_x = float(rng.uniform(0.005, 0.1))
    s_w = rng.uniform(0.001, 0.05, n_ch).astype(np.float32)
    return params, x, f, bias, grad, s_x, s_w, full_in


def _prepare(op, s_w, f, params):
    if op == "conv_2d":
        return conv_2d_backward_input_prepare(s_w, f.shape)
    if op == "depthwise_conv_2d":
        return depthwise_conv_2d_backward_input_prepare(s_w, f.shape, params.depth_multiplier)
    return fully_connected_backward_input_prepare(s_w, f.shape)


def _backward_input(op, params, q, grad, e, f, in_shape):
    if op == "conv_2d":
        return conv_2d_backward_input(params, q, grad, e, f, in_shape)
    if op == "depthwise_conv_2d":
        return depthwise_conv_2d_backward_input(params, q, grad, e, f, in_shape)
    return fully_connected_backward_input(params, q, grad, e, f)


def _update(op, params, up, x, grad, e, f, bias, state, wv=None, bv=None):
    fn = {"conv_2d": conv_2d_update, "depthwise_conv_2d": depthwise_conv_2d_update,
          "fully_connected": fully_connected_update}[op]
    return fn(params, up, x, grad, e, f, bias, state, weight_velocity=wv, bias_velocity=bv)


def _weight_grad(op, params, x, grad, f):
    if op == "conv_2d":
        return conv_2d_weight_grad(params, x, grad, f.shape[1:3])
    if op == "depthwise_conv_2d":
        return depthwise_conv_2d_weight_grad(params, x, grad, f.shape[1:3])
    return fully_connected_weight_grad(params, x, grad)


def _update_params(s_x, s_w, n_ch, lr, qas=True, weights=1, bias=1):
    wf, bf = update_factors(s_x, s_w, n_ch, qas)
    return UpdateParams(wf, bf, update_lr(lr), weights, bias)


def _check_update_bits(lib, op, params, up, x, grad, e, f, bias, seed):
    """numpy and C update from the same state: same filter, bias and final state."""
    fn, bn = f.copy(), None if bias is None else bias.copy()
    fc, bc = f.copy(), None if bias is None else bias.copy()
    st0 = prng_seed(seed)
    sn = _update(op, params, up, x, grad, e, fn, bn, st0)
    status, sc = cb.update(lib, op, params, up, x, grad, e, fc, bc, st0)
    assert status == 0
    np.testing.assert_array_equal(fn, fc)
    if bias is not None:
        np.testing.assert_array_equal(bn, bc)
    assert sn == sc
    return fn, bn, sn


# --------------------------------------------------------------------------- update primitive

def test_sgd_delta_numpy_matches_c(lib):
    """Random accumulators across every path (|acc| >= 2^31 pre-shift, R > 62 cap, R <= 0 exact
    left shift and its saturation): same delta and PRNG state in numpy and C."""
    rng = np.random.default_rng(11)
    state = prng_seed(3)
    paths = {"pre": 0, "cap": 0, "left": 0, "sat": 0, "frac": 0}
    for t in range(4000):
        acc = int(rng.integers(-(1 << 62), 1 << 62)) >> int(rng.integers(0, 63))
        if t % 5 == 0:
            acc = int(rng.integers(-300, 301))
        e = int(rng.integers(-40, 10))
        m = int(rng.integers(0, 1 << 31))
        s = int(rng.integers(-60, 40))
        if t % 5 == 1:  # R <= 0 without saturation: small acc and multiplier
            m = int(rng.integers(0, 1 << 12))
            s = 31 - e + int(rng.integers(0, 12))
        dn, sn = sgd_delta(acc, e, m, s, state)
        dc, sc = cb.sgd_delta(lib, acc, e, m, s, state)
        assert (dn, sn) == (dc, sc), (acc, e, m, s)
        k = max(0, abs(acc).bit_length() - 31)
        r = 31 - s - e - k
        paths["pre"] += k > 0
        paths["cap"] += r > 62
        paths["left"] += r <= 0 and abs(dn) < INT32_MAX
        paths["sat"] += abs(dn) == INT32_MAX
        paths["frac"] += 0 < r <= 62 and dn != 0
        state = sn
    assert min(paths.values()) > 30, paths  # every path exercised
    for acc in (0, 1, -1, (1 << 63) - 1, -(1 << 63), (1 << 31), -(1 << 31)):
        for m, s in ((1 << 30, 0), ((1 << 31) - 1, 31), (1, -70)):
            assert sgd_delta(acc, 0, m, s, 99) == cb.sgd_delta(lib, acc, 0, m, s, 99)


def test_sgd_delta_exact_values():
    """Exact cases: a representable step is exact whatever the draw; R <= 0 is a left shift;
    the pre-shift of a 41-bit accumulator joins the exponent; saturation at ±INT32_MAX;
    sign symmetry."""
    for seed in range(20):
        st = prng_seed(seed)
        # t = 3·2^30, R = 29 → exactly 6
        assert sgd_delta(3, 0, 1 << 30, 2, st)[0] == 6
        assert sgd_delta(-3, 0, 1 << 30, 2, st)[0] == -6
        # R = 31 - 35 = -4: 5 << 4
        assert sgd_delta(5, 0, 1, 35, st)[0] == 80
        # 2^40 · 2^30 · 2^(-29 - 31) = 1024 (k = 10)
        assert sgd_delta(1 << 40, 0, 1 << 30, -29, st)[0] == 1024
        assert sgd_delta(1 << 40, 0, (1 << 31) - 1, 40, st)[0] == INT32_MAX
        assert sgd_delta(-(1 << 40), 0, (1 << 31) - 1, 40, st)[0] == -INT32_MAX
        assert sgd_delta(0, -100, (1 << 31) - 1, 100, st)[0] == 0
        # one draw per call, whatever the path
        assert sgd_delta(5, 0, 1, 35, st)[1] == sgd_delta(0, 0, 0, 0, st)[1]
        a = int(np.random.default_rng(seed).integers(1, 1 << 40))
        assert sgd_delta(-a, -9, 1 << 30, -3, st)[0] == -sgd_delta(a, -9, 1 << 30, -3, st)[0]


def test_stochastic_rounding_is_unbiased():
    """E[Δ] over seeds = t / 2^R for sub-LSB steps (truncation or round-to-nearest would give
    0 for 0.25 LSB), including beyond the R = 62 cap. 4000 seeds: the standard error of a
    Bernoulli(0.25) mean is 0.007, tolerance 0.03 (> 4 sigma)."""
    n = 4000
    states = [prng_seed(s) for s in range(n)]
    bits = np.array([prng_next(st)[1] for st in states], dtype=np.uint64)
    # the vectorised form used below is the scalar sgd_delta
    assert sgd_delta(1, 0, 1 << 30, -1, states[7])[0] == \
        sgd_deltas([1], 0, 1 << 30, -1, bits[7:8])[0]
    cases = [  # (acc, e, multiplier, shift) → expected mean
        ((1, 0, 1 << 30, -1), 0.25),             # 2^30 · 2^-32, R = 32
        ((-1, 0, 1 << 30, -1), -0.25),
        ((3, -4, 1 << 30, 0), 3 * 2.0 ** -5),    # 0.09375
        ((5, 0, 1 << 30, -1), 1.25),
        (((1 << 31) - 1, 0, (1 << 31) - 1, -31), ((1 << 31) - 1) ** 2 * 2.0 ** -62),  # R = 62
        (((1 << 31) - 1, 0, 1 << 30, -32), ((1 << 31) - 1) * 2.0 ** -33),      # R = 63 → cap
        ((1 << 33, 0, 1 << 30, -35), 2.0 ** 33 * 2.0 ** -36),                  # pre-shift k = 3
    ]
    for (acc, e, m, s), expected in cases:
        d = sgd_deltas(np.full(n, acc), e, m, s, bits)   # one draw per seed
        assert abs(d.mean() - expected) < 0.03, (acc, e, m, s, d.mean(), expected)
        # only the two neighbouring integers occur
        assert set(np.unique(d)) <= {math.floor(expected), math.ceil(expected)}
    # a 0.25 LSB weight step moves the weight by one LSB about 25% of the time
    d = sgd_deltas(np.ones(n, np.int64), 0, 1 << 30, -1, bits)
    assert 0.22 < (d == 1).mean() < 0.28


def test_update_constants_numpy_matches_c(lib):
    rng = np.random.default_rng(2)
    for _ in range(300):
        real = float(10.0 ** rng.uniform(-14, 8))
        assert update_factor(real) == cb.update_factor(lib, real)
        assert update_lr(real) == cb.update_lr(lib, real)
        m, s = update_factor(real)
        assert (1 << 30) <= m < (1 << 31) and abs(m * 2.0 ** (s - 31) / real - 1) < 2 ** -30
        fm, fs, lm, ls = (int(rng.integers(0, 1 << 31)), int(rng.integers(-40, 40)),
                          int(rng.integers(0, 1 << 31)), int(rng.integers(-40, 10)))
        assert update_multiplier(fm, fs, lm, ls) == cb.update_multiplier(lib, fm, fs, lm, ls)
    assert update_factor(0.0) == (0, 0)
    for qas in (True, False):
        for n_scales in (1, 7):
            s_x = float(rng.uniform(0.001, 0.5))
            s_w = rng.uniform(1e-4, 0.1, n_scales).astype(np.float32)
            wf, bf = update_factors(s_x, s_w, 7, qas)
            c = cb.update_factors(lib, s_x, s_w, 7, qas)
            for a, b in zip((wf.multiplier, wf.shift, bf.multiplier, bf.shift), c):
                np.testing.assert_array_equal(a, b)
            # the pairs represent the documented reals
            sx, sw = float(np.float32(s_x)), np.broadcast_to(s_w.astype(np.float64), 7)
            w_real = wf.multiplier * 2.0 ** (wf.shift - 31.0)
            b_real = bf.multiplier * 2.0 ** (bf.shift - 31.0)
            np.testing.assert_allclose(w_real, sx / sw if qas else sx * sw, rtol=1e-9)
            np.testing.assert_allclose(b_real, 1 / (sx * sw) if qas else sx * sw, rtol=1e-9)


def test_backward_input_prepare_numpy_matches_c(lib):
    rng = np.random.default_rng(4)
    for op in OPS:
        for n_scales in (1, 6):
            s_w = rng.uniform(1e-4, 0.1, n_scales).astype(np.float32)
            shape = {"conv_2d": (6, 3, 3, 5), "depthwise_conv_2d": (1, 3, 3, 6),
                     "fully_connected": (6, 40)}[op]
            params = _conv_params((1, 1), (1, 1), (0, 0), 0, 2)
            q = _prepare(op, s_w, np.zeros(shape, np.int8), params)
            c = cb.backward_input_prepare(lib, op, s_w, shape, 2)
            np.testing.assert_array_equal(q.r, c.r)
            assert (q.s_e, q.p) == (c.s_e, c.p)
            assert np.all((q.r >= 0) & (q.r < (1 << 15)))
            assert 2.0 ** (q.s_e - 1) <= s_w.max() < 2.0 ** q.s_e
    # r_c just below 2^15 after rounding is clamped; p grows with the fan-out
    q = backward_input_prepare(np.float32([1.0 - 2 ** -20]), 1, 1)
    assert q.r[0] == (1 << 15) - 1 and q.s_e == 0
    assert backward_input_prepare([0.01], 1, 1).p == 0
    assert backward_input_prepare([0.01], 1, 3 * 3 * 64).p == 9


# --------------------------------------------------------------------------- numpy == C

@pytest.mark.parametrize("op", OPS)
def test_backward_input_numpy_matches_c(lib, op):
    rng = np.random.default_rng(hash(op) % 1000)
    checked = 0
    while checked < 40:
        case = _random_case(rng, op, full_slice=True)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, in_shape = case
        q = _prepare(op, s_w, f, params)
        e = int(rng.integers(-20, 0))
        if checked == 0:
            grad = np.zeros_like(grad)
        yn, en = _backward_input(op, params, q, grad, e, f, in_shape)
        yc, ec = cb.backward_input(lib, op, params, q, grad, e, f, in_shape)
        np.testing.assert_array_equal(yn, yc)
        assert en == ec and yn.shape == tuple(in_shape)
        if checked == 0:  # zero gradient: zero input gradient, exponent e_acc
            assert not yn.any() and en == e + q.s_e - 15 + q.p
        checked += 1


@pytest.mark.parametrize("op", ("conv_2d", "depthwise_conv_2d"))
def test_large_kernels_numpy_matches_c(lib, op):
    """Kernels of 14..20 rows / columns: the C kernels cache the source row / column of the
    first 16 taps of each axis and compute the others: same input gradient and update."""
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 8:
        case = _random_case(rng, op, full_slice=checked % 2 == 0, kernel=(14, 21), size=(14, 24))
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, in_shape = case
        q = _prepare(op, s_w, f, params)
        yn, en = _backward_input(op, params, q, grad, -9, f, in_shape)
        yc, ec = cb.backward_input(lib, op, params, q, grad, -9, f, in_shape)
        np.testing.assert_array_equal(yn, yc)
        assert en == ec and yn.any()
        up = _update_params(s_x, s_w, len(s_w), 0.5)
        _check_update_bits(lib, op, params, up, x, grad, -7, f, bias, checked)
        checked += 1


@pytest.mark.parametrize("op", OPS)
def test_update_numpy_matches_c(lib, op):
    """Random layers, partial slices, either flag off, QAS on/off: same bits and state."""
    rng = np.random.default_rng(17 + len(op))
    checked = changed = 0
    while checked < 40:
        case = _random_case(rng, op)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, _ = case
        flags = [(1, 1), (1, 0), (0, 1)][checked % 3]
        lr = float(10.0 ** rng.uniform(-1.5, 0.5))
        up = _update_params(s_x, s_w, len(s_w), lr, qas=checked % 4 != 3, weights=flags[0],
                            bias=flags[1])
        e = int(rng.integers(-9, -4))
        fn, bn, _ = _check_update_bits(lib, op, params, up, x, grad, e, f, bias, checked)
        if flags[0]:
            changed += bool((fn != f).any())
        else:
            np.testing.assert_array_equal(fn, f)
        if not flags[1]:
            np.testing.assert_array_equal(bn, bias)
        checked += 1
    assert changed >= 20  # of the 27 weight updates: the test compares real updates


def _advance(state: int, n: int) -> int:
    for _ in range(n):
        state, _ = prng_next(state)
    return state


@pytest.mark.parametrize("op", OPS)
def test_bias_only_update_without_input(lib, op):
    """update_weights = 0: no saved input (None / NULL). numpy == C bit for bit, the weights
    are untouched, one draw per channel (every channel, depthwise included), and the result
    equals the bias-only update given the input."""
    rng = np.random.default_rng(41 + len(op))
    checked = changed = 0
    while checked < 15:
        case = _random_case(rng, op)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, _ = case
        up = _update_params(s_x, s_w, len(s_w), float(10.0 ** rng.uniform(-1, 0.5)),
                            qas=checked % 4 != 3, weights=0, bias=1)
        e = int(rng.integers(-9, -4))
        fn, bn, sn = _check_update_bits(lib, op, params, up, None, grad, e, f, bias, checked)
        np.testing.assert_array_equal(fn, f)
        assert sn == _advance(prng_seed(checked), len(bias))
        bx = bias.copy()
        assert _update(op, params, up, x, grad, e, f.copy(), bx, prng_seed(checked)) == sn
        np.testing.assert_array_equal(bn, bx)
        changed += bool((bn != bias).any())
        checked += 1
    assert changed >= 10  # of the 12 QAS cases (plain SGD steps may round to zero)


@pytest.mark.parametrize("op", OPS)
def test_weight_update_requires_input(lib, op):
    """The weight path still needs the saved input: numpy ValueError, C TT_ERR_ARG (4),
    nothing written."""
    rng = np.random.default_rng(3)
    case = None
    while case is None:
        case = _random_case(rng, op)
    params, x, f, bias, grad, s_x, s_w, _ = case
    up = _update_params(s_x, s_w, len(s_w), 0.5, weights=1, bias=1)
    fn, bn = f.copy(), bias.copy()
    with pytest.raises(ValueError, match="needs the saved input"):
        _update(op, params, up, None, grad, -6, fn, bn, prng_seed(1))
    status, st = cb.update(lib, op, params, up, None, grad, -6, fn, bn, prng_seed(1))
    assert status == 4 and st == prng_seed(1)
    np.testing.assert_array_equal(fn, f)
    np.testing.assert_array_equal(bn, bias)


# --------------------------------------------------------------------------- properties

def _fc_single(x_val, g_val, batches, copies, s_x, s_w, lr, qas, seed, bias_val=0, w_val=0,
               zp=3):
    """FC with one unit and `copies` identical inputs: every weight gets the same accW."""
    params = FullyConnectedParams(-zp, 0, 1, (-128, 127))
    x = np.full((batches, copies), x_val, np.int8)
    g = np.full((batches, 1), g_val, np.int8)
    f = np.full((1, copies), w_val, np.int8)
    b = np.array([bias_val], np.int32)
    up = _update_params(s_x, [s_w], 1, lr, qas)
    fully_connected_update(params, up, x, g, -10, f, b, prng_seed(seed))
    return f.astype(np.int64) - w_val, int(b[0]) - bias_val


def test_qas_update_matches_float_sgd():
    """QAS: E[ΔW̄]·s_w equals the float SGD step −lr·G_W (E[Δb̄]·s_x·s_w equals −lr·G_b).
    Mean over 400 seeds × 8 identical elements: standard error ≤ 0.5/sqrt(3200) = 0.009 LSB,
    tolerance 0.04 LSB (4 sigma); the bias (one element per seed) 0.025 LSB, tolerance 0.1;
    plus 1e-6 relative for the 31-bit constants.
    Without QAS the per-lr update is smaller by s_w² (weights) and (s_x·s_w)² (bias)."""
    s_x, s_w, zp = 0.05, 0.37, 3
    x_val, g_val, batches, e_g = 40, -25, 4, -10
    acc_w = batches * g_val * (x_val - zp)
    acc_b = batches * g_val
    gw_real = acc_w * 2.0 ** e_g * np.float32(s_x)
    gb_real = acc_b * 2.0 ** e_g
    sx32, sw32 = float(np.float32(s_x)), float(np.float32(s_w))

    def mean_steps(lr, qas):
        dws, dbs = [], []
        for seed in range(400):
            dw, db = _fc_single(x_val, g_val, batches, 8, s_x, s_w, lr, qas, seed, zp=zp)
            dws.append(dw.mean())
            dbs.append(db)
        return float(np.mean(dws)), float(np.mean(dbs))

    lr = 5.3   # ≈ 2.6 LSB weight step, ≈ 28 LSB bias step
    w_on, b_on = mean_steps(lr, True)
    assert abs(w_on * sw32 - (-lr * gw_real)) < 0.04 * sw32 + 1e-6 * abs(lr * gw_real)
    assert abs(b_on * sx32 * sw32 - (-lr * gb_real)) < 0.1 * sx32 * sw32 + 1e-6 * abs(lr * gb_real)
    assert abs(w_on) > 1  # not a trivial 0 == 0
    # QAS off, lrs chosen so both updates are a few LSB: per-lr ratio s_w² and (s_x·s_w)²
    lr_w, lr_b = lr / sw32 ** 2, lr / (sx32 * sw32) ** 2
    w_off, _ = mean_steps(lr_w, False)
    _, b_off = mean_steps(lr_b, False)
    assert abs((w_off / lr_w) / (w_on / lr) - sw32 ** 2) < 0.02 * sw32 ** 2
    assert abs((b_off / lr_b) / (b_on / lr) - (sx32 * sw32) ** 2) < 0.02 * (sx32 * sw32) ** 2


def test_quarter_lsb_update_moves_weight_a_quarter_of_the_time():
    """Through the full kernel: a 0.25 LSB step (QAS) moves the weight by one LSB in ~25% of
    draws; the mean is 0.25 (truncation would never move it)."""
    s_x, s_w, zp = 0.05, 0.02, 3
    x_val, g_val, batches, e_g = 20, 16, 1, -10
    gw = batches * g_val * (x_val - zp) * 2.0 ** e_g * float(np.float32(s_x))
    lr = 0.25 * float(np.float32(s_w)) / gw          # ΔW̄ = lr·G_W/s_w = 0.25
    moves = np.concatenate([_fc_single(x_val, g_val, batches, 16, s_x, s_w, lr, True, seed,
                                       zp=zp)[0].ravel() for seed in range(250)])
    assert set(np.unique(moves)) <= {-1, 0}
    assert abs((moves == -1).mean() - 0.25) < 0.03


@pytest.mark.parametrize("op", OPS)
def test_saturation(lib, op):
    """Weights saturate at ±127 (never −128), biases at the int32 limits; numpy == C."""
    rng = np.random.default_rng(8)
    case = None
    while case is None:
        case = _random_case(rng, op, full_slice=True)
    params, x, f, bias, grad, s_x, s_w, _ = case
    grad = np.full_like(grad, 127)
    up = _update_params(s_x, s_w, len(s_w), 1e6)      # huge steps
    # positive x - zp everywhere so every weight gradient is positive → W decreases
    params.input_offset = 128
    x = np.full_like(x, 100)
    for sign in (1, -1):
        g = (sign * grad).astype(np.int8)
        bias = np.full(len(s_w), INT32_MIN + 5 if sign == 1 else INT32_MAX - 5, np.int32)
        fn, bn, _ = _check_update_bits(lib, op, params, up, x, g, -5, f, bias, 1)
        sl = fn[..., :x.shape[-1]] if op != "depthwise_conv_2d" else fn
        expected = -127 if sign == 1 else 127
        assert np.all(sl == expected)
        # bias gradient sign = sign: b − Δb moves towards −sign·∞
        np.testing.assert_array_equal(bn, np.full_like(bn, INT32_MIN if sign == 1 else INT32_MAX))


@pytest.mark.parametrize("op", OPS)
def test_partial_slice_updates_only_the_slice(lib, op):
    """Weights: only the slice changes. Biases: all channels, including (depthwise) the
    channels outside the weight slice."""
    rng = np.random.default_rng(21)
    checked = changed = bias_outside = 0
    while checked < 10:
        case = _random_case(rng, op)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, full_in = case
        ci = full_in[-1]
        if op == "depthwise_conv_2d":
            ci *= params.depth_multiplier
        ic = x.shape[-1] * (params.depth_multiplier if op == "depthwise_conv_2d" else 1)
        if ic == ci:
            continue
        up = _update_params(s_x, s_w, len(s_w), 0.5)
        fn, bn, sn = _check_update_bits(lib, op, params, up, x, grad, -6, f, bias, checked)
        np.testing.assert_array_equal(fn[..., ic:], f[..., ic:])
        changed += bool((fn[..., :ic] != f[..., :ic]).any())
        # biases: every channel (also depthwise channels outside the weight slice), drawn
        # after the slice's weights: a bias-only update from the state after the weight draws
        # gives the same biases
        n_w = f[..., :ic].size
        assert sn == _advance(prng_seed(checked), n_w + len(bias))
        bo = bias.copy()
        bias_only = _update_params(s_x, s_w, len(s_w), 0.5, weights=0)
        _update(op, params, bias_only, None, grad, -6, f.copy(), bo,
                _advance(prng_seed(checked), n_w))
        np.testing.assert_array_equal(bn, bo)
        if op == "depthwise_conv_2d":
            bias_outside += bool((bn[ic:] != bias[ic:]).any())
        checked += 1
    assert changed >= 7
    if op == "depthwise_conv_2d":
        assert bias_outside >= 7


# --------------------------------------------------------------------------- float64 reference

def _float_reference(op, params, x, f, g_real, s_x, s_w, in_shape):
    """float64 input gradient and weight gradient of the dequantized op."""
    if op == "fully_connected":
        w = f.astype(np.float64) * s_w[:, None]
        xr = (x.astype(np.float64) + params.input_offset) * s_x
        return g_real @ w, g_real.T @ xr
    n, h, wd, ci = in_shape
    _, oh, ow, co = g_real.shape
    kh, kw = f.shape[1:3]
    sh, sw, dh, dw = params.stride_h, params.stride_w, params.dilation_h, params.dilation_w
    xr = (x.astype(np.float64) + params.input_offset) * s_x
    gx = np.zeros(in_shape)
    if op == "conv_2d":
        w = f.astype(np.float64) * s_w[:, None, None, None]
        gw = np.zeros((co, kh, kw, x.shape[-1]))
    else:
        w = f[0].astype(np.float64) * s_w
        dm = params.depth_multiplier
        gw = np.zeros((kh, kw, co))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                iy = oy * sh - params.pad_h + ky * dh
                if not 0 <= iy < h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - params.pad_w + kx * dw
                    if not 0 <= ix < wd:
                        continue
                    gv = g_real[:, oy, ox, :]                     # (n, co)
                    if op == "conv_2d":
                        gx[:, iy, ix, :] += gv @ w[:, ky, kx, :]
                        gw[:, ky, kx, :] += gv.T @ xr[:, iy, ix, :]
                    else:
                        gx[:, iy, ix, :] += (gv * w[ky, kx]).reshape(n, ci, dm).sum(-1)
                        gw[ky, kx, :] += (gv * np.repeat(xr[:, iy, ix, :], dm, -1)).sum(0)
    return gx, gw


def _gradient_check(op, params, x, f, s_x, s_w, g_real, in_shape):
    """Quantize the float output gradient, run the int kernels, compare with float64.
    Tolerance cosine >= 0.99: the only errors are the int8 quantization of the output and
    input gradients (relative step 1/127 of the max, i.e. ~0.5% rms for dense tensors) and
    r_c's 15 bits, which together stay well inside 1%."""
    q_g, e_g = _quantize_grad(g_real)
    g_used = q_g.astype(np.float64) * 2.0 ** e_g
    ref_gx, ref_gw = _float_reference(op, params, x, f, g_real, s_x, s_w.astype(np.float64),
                                      in_shape)
    q = _prepare(op, s_w, f, params)
    gx, ex = _backward_input(op, params, q, q_g, e_g, f, in_shape)
    assert _cos(gx.astype(np.float64) * 2.0 ** ex, ref_gx) >= 0.99
    acc_w, acc_b = _weight_grad(op, params, x, q_g, f)
    assert _cos(acc_w * 2.0 ** e_g * s_x, ref_gw) >= 0.99
    red = tuple(range(g_real.ndim - 1))
    assert _cos(acc_b * 2.0 ** e_g, g_real.sum(axis=red)) >= 0.99
    # the real value of the integer weight gradient is exact for the quantized ḡ
    _, ref_gw_used = _float_reference(op, params, x, f, g_used, s_x, s_w.astype(np.float64),
                                      in_shape)
    np.testing.assert_allclose(acc_w * 2.0 ** e_g * s_x, ref_gw_used, rtol=1e-9, atol=1e-12)
    return q_g, e_g, q


@pytest.mark.parametrize("op", OPS)
def test_gradients_vs_float64_random(op):
    rng = np.random.default_rng(31)
    checked = 0
    while checked < 12:
        case = _random_case(rng, op, full_slice=True)
        if case is None or case[4].size < 8:
            continue
        params, x, f, bias, grad, s_x, s_w, in_shape = case
        g_real = rng.normal(0, 1e-3, grad.shape)
        _gradient_check(op, params, x, f, s_x, s_w, g_real, in_shape)
        checked += 1


# --------------------------------------------------------------------------- real models

def _run_collect(graph, x):
    """NumpyEngine's loop, keeping every tensor value (the saved activations)."""
    from tflm_train.engine_numpy import NumpyEngine

    eng = NumpyEngine(graph)
    values = {graph.inputs[0]: x}
    for op, kernel in zip(graph.ops, eng.kernels):
        args = [None if i < 0 else values.get(i, graph.tensors[i].data) for i in op.inputs]
        for i, y in zip(op.outputs, kernel.eval(args)):
            values[i] = np.asarray(y).reshape(graph.tensors[i].shape)
    return eng, values


@pytest.fixture(scope="module")
def real_layers():
    """(op name, kernel params, saved input, weights, bias, s_x, s_w, output shape) of every
    MAC layer in resnet8 and kws ds-cnn (their inputs from a random image)."""
    from conftest import shared_model

    import tflm_train

    layers = []
    rng = np.random.default_rng(0)
    for rel in ("mlcommons/resnet8_cifar10_int8.tflite", "mlcommons/kws_dscnn_int8.tflite"):
        graph = tflm_train.load(shared_model(rel))
        t_in = graph.tensors[graph.inputs[0]]
        x = rng.integers(-128, 128, t_in.shape, dtype=np.int8)
        eng, values = _run_collect(graph, x)
        for op, kernel in zip(graph.ops, eng.kernels):
            name = op.opcode.lower()
            if name not in OPS:
                continue
            xin = values[op.inputs[0]]
            w = graph.tensors[op.inputs[1]]
            b = graph.tensors[op.inputs[2]].data if op.inputs[2] >= 0 else None
            s_x = float(graph.tensors[op.inputs[0]].quant.scale[0])
            s_w = np.asarray(w.quant.scale, dtype=np.float32)
            out_shape = graph.tensors[op.outputs[0]].shape
            if name == "fully_connected":
                xin = xin.reshape(-1, w.shape[-1])
                out_shape = (xin.shape[0], w.shape[0])
            layers.append((name, kernel.params, xin, w.data.copy(), None if b is None
                           else b.astype(np.int32).copy(), s_x, s_w, tuple(out_shape)))
    assert {l[0] for l in layers} == set(OPS)
    return layers


def test_real_layers_numpy_c_and_float64(lib, real_layers):
    """Every MAC layer of resnet8 and kws: input gradient and update numpy == C, and the
    gradients agree with the float64 reference (cosine >= 0.99, see _gradient_check)."""
    rng = np.random.default_rng(5)
    for k, (op, params, x, f, bias, s_x, s_w, out_shape) in enumerate(real_layers):
        n_ch = f.shape[-1] if op == "depthwise_conv_2d" else f.shape[0]
        g_real = rng.normal(0, 1e-2, out_shape) * (rng.random(out_shape) < 0.7)
        q_g, e_g, q = _gradient_check(op, params, x, f, s_x, s_w, g_real, x.shape)
        yn, en = _backward_input(op, params, q, q_g, e_g, f, x.shape)
        yc, ec = cb.backward_input(lib, op, params, q, q_g, e_g, f, x.shape)
        np.testing.assert_array_equal(yn, yc)
        assert en == ec
        # update of a trainable slice (half the input channels for every other layer)
        ic = x.shape[-1] if k % 2 == 0 else max(1, x.shape[-1] // 2)
        xs = np.ascontiguousarray(x[..., :ic])
        up = _update_params(s_x, s_w, n_ch, 0.05, qas=True, bias=int(bias is not None))
        fn, _, _ = _check_update_bits(lib, op, params, up, xs, q_g, e_g, f, bias, k)
        cut = ic * (params.depth_multiplier if op == "depthwise_conv_2d" else 1)
        np.testing.assert_array_equal(fn[..., cut:], f[..., cut:])


# --------------------------------------------------------------------------- momentum

Q16 = 1 << 16


def _weight_slice_size(op, params, x, f):
    ic = x.shape[-1]
    if op == "depthwise_conv_2d":
        return f.shape[1] * f.shape[2] * ic * params.depth_multiplier
    return f.shape[0] * (f.shape[1] * f.shape[2] if op == "conv_2d" else 1) * ic


def _weight_channels(op, params, x, f):
    """Output channel of every element of the compact weight slice, in draw order."""
    ic = x.shape[-1]
    if op == "conv_2d":
        return np.repeat(np.arange(f.shape[0]), f.shape[1] * f.shape[2] * ic)
    if op == "fully_connected":
        return np.repeat(np.arange(f.shape[0]), ic)
    return np.tile(np.arange(ic * params.depth_multiplier), f.shape[1] * f.shape[2])


def _scalar_reference(op, params, up, x, grad, e, f, bias, state, wv, bv):
    """Element by element with the scalar primitive, in the documented draw order: returns
    (filter, bias, weight velocity, bias velocity, state) without touching the inputs."""
    f, bias = f.copy(), None if bias is None else bias.copy()
    wv = None if wv is None else wv.copy()
    bv = None if bv is None else bv.copy()
    mu = up.momentum_q15
    if up.update_weights:
        acc_w, _ = _weight_grad(op, params, x, grad, f)
        chan = _weight_channels(op, params, x, f)
        ws = f[..., :acc_w.shape[-1]] if op != "depthwise_conv_2d" else \
            f[0, :, :, :acc_w.shape[-1]]
        new_w = ws.astype(np.int64).ravel()
        for j, (a, c) in enumerate(zip(acc_w.ravel(), chan)):
            m, sh = update_multiplier(up.weight_factor.multiplier[c], up.weight_factor.shift[c],
                                      *up.lr)
            d, v, state = sgd_momentum_delta(int(a), e, m, sh, mu, 0 if wv is None
                                             else int(wv.flat[j]), state)
            if wv is not None and mu:
                wv.flat[j] = v
            new_w[j] = min(127, max(-127, new_w[j] - d))
        ws[...] = new_w.reshape(ws.shape)
    if up.update_bias:
        acc_b = grad.reshape(-1, grad.shape[-1]).astype(np.int64).sum(axis=0)
        for c, a in enumerate(acc_b):
            m, sh = update_multiplier(up.bias_factor.multiplier[c], up.bias_factor.shift[c],
                                      *up.lr)
            d, v, state = sgd_momentum_delta(int(a), e, m, sh, mu, 0 if bv is None
                                             else int(bv[c]), state)
            if bv is not None and mu:
                bv[c] = v
            bias[c] = min(INT32_MAX, max(INT32_MIN, int(bias[c]) - d))
    return f, bias, wv, bv, state


def test_momentum_q15_numpy_matches_c(lib):
    rng = np.random.default_rng(6)
    for mu in list(rng.random(200)) + [0.0, 0.5, 0.9, 0.99, 1 - 2 ** -17, 1 - 1e-12]:
        q = momentum_q15(mu)
        assert q == cb.momentum_q15(lib, mu)
        # half away from zero, except that μ within 2^-16 of 1 is clamped to 2^15 − 1
        assert 0 <= q < (1 << 15) and abs(q - mu * 2 ** 15) <= (0.5 if q < 32767 else 1)
    assert momentum_q15(0.0) == 0 and momentum_q15(0.9) == 29491
    for bad in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError):
            momentum_q15(bad)
        assert cb.momentum_q15(lib, bad) == -1


def test_sgd_momentum_delta_numpy_matches_c(lib):
    """Random accumulators, constants, momenta and velocities (every path of the Q16.16 step:
    rounding right shift, exact left shift, saturation; decayed velocity and its saturation):
    same Δ, velocity and PRNG state in numpy and C. μ = 0 is tt_sgd_delta with the velocity
    untouched, also with velocity NULL."""
    rng = np.random.default_rng(12)
    state = prng_seed(5)
    paths = {"right": 0, "left": 0, "s_sat": 0, "v_sat": 0, "mu0": 0}
    for t in range(4000):
        acc = int(rng.integers(-(1 << 62), 1 << 62)) >> int(rng.integers(0, 63))
        if t % 5 == 0:
            acc = int(rng.integers(-300, 301))
        e = int(rng.integers(-40, 10))
        m = int(rng.integers(0, 1 << 31))
        s = int(rng.integers(-60, 40))
        if t % 5 == 1:  # R - 16 <= 0 without saturation
            m = int(rng.integers(0, 1 << 8))
            s = 31 - e - 16 + int(rng.integers(0, 8))
        v = int(rng.integers(INT32_MIN, INT32_MAX + 1)) >> int(rng.integers(0, 32))
        mu = 0 if t % 7 == 0 else int(rng.integers(1, 1 << 15))
        dn, vn, sn = sgd_momentum_delta(acc, e, m, s, mu, v, state)
        dc, vc, sc = cb.sgd_momentum_delta(lib, acc, e, m, s, mu, v, state)
        assert (dn, vn, sn) == (dc, vc, sc), (acc, e, m, s, mu, v)
        step = int(sgd_steps_q16([acc], e, m, s)[0])
        assert step == cb.sgd_step_q16(lib, acc, e, m, s)
        if mu == 0:
            assert (dn, vn, sn) == (*sgd_delta(acc, e, m, s, state)[:1], v,
                                    sgd_delta(acc, e, m, s, state)[1])
            assert cb.sgd_momentum_delta(lib, acc, e, m, s, 0, None, state) == (dn, None, sn)
            paths["mu0"] += 1
        else:
            assert abs(dn) <= 1 << 15 and abs(vn) <= INT32_MAX and sn == prng_next(state)[0]
            k = max(0, abs(acc).bit_length() - 31)
            r = 31 - s - e - k
            paths["right"] += r > 16 and step != 0
            paths["left"] += r <= 16 and 0 < abs(step) < INT32_MAX
            paths["s_sat"] += abs(step) == INT32_MAX
            paths["v_sat"] += abs(vn) == INT32_MAX
        state = sn
    assert min(paths.values()) > 30, paths


def test_sgd_momentum_delta_exact_values():
    """Hand-computed values: an exact step goes through Q16.16 unchanged; the decay rounds half
    away from zero; the step rounds half away from zero at 2^-17 LSB; saturation at
    ±INT32_MAX (Δ then 2^15 or 2^15 − 1); sign symmetry for the same draw."""
    half = 1 << 14
    for seed in range(20):
        st = prng_seed(seed)
        # t = 3·2^30 with R = 29: a step of exactly 6 LSB → v = 6·2^16, Δ = 6 whatever the draw
        assert sgd_momentum_delta(3, 0, 1 << 30, 2, half, 0, st)[:2] == (6, 6 * Q16)
        # v = rdbp(0.5·6·2^16) + 6·2^16 = 9·2^16 → Δ = 9
        assert sgd_momentum_delta(3, 0, 1 << 30, 2, half, 6 * Q16, st)[:2] == (9, 9 * Q16)
        assert sgd_momentum_delta(-3, 0, 1 << 30, 2, half, -6 * Q16, st)[:2] == (-9, -9 * Q16)
        # decay: 1/2^15 · 2^14 = 0.5 → 1 (half away from zero), −0.5 → −1
        assert sgd_momentum_delta(0, 0, 1 << 30, 0, 1, half, st)[1] == 1
        assert sgd_momentum_delta(0, 0, 1 << 30, 0, 1, -half, st)[1] == -1
        assert sgd_momentum_delta(0, 0, 1 << 30, 0, 1, half - 1, st)[1] == 0
        # step 2^-17 LSB (t = 2^30, R = 47) → 1 (half away); 2^-18 → 0; −2^-17 → −1
        assert sgd_momentum_delta(1, 0, 1 << 30, -16, 100, 0, st)[1] == 1
        assert sgd_momentum_delta(1, 0, 1 << 30, -17, 100, 0, st)[1] == 0
        assert sgd_momentum_delta(-1, 0, 1 << 30, -16, 100, 0, st)[1] == -1
        # saturation of the step and of the velocity
        assert sgd_momentum_delta(1 << 40, 0, (1 << 31) - 1, 40, 100, 0, st)[1] == INT32_MAX
        d, v, _ = sgd_momentum_delta(1, 0, 1 << 30, 2, 32767, INT32_MAX, st)
        assert v == INT32_MAX and d in (1 << 15, (1 << 15) - 1)
        d, v, _ = sgd_momentum_delta(-1, 0, 1 << 30, 2, 32767, INT32_MIN, st)
        assert v == -INT32_MAX and d in (-(1 << 15), -(1 << 15) + 1)
        a = int(np.random.default_rng(seed).integers(1, 1 << 40))
        vv = int(np.random.default_rng(seed + 1).integers(-(1 << 30), 1 << 30))
        pos = sgd_momentum_delta(a, -9, 1 << 30, -3, 29491, vv, st)
        neg = sgd_momentum_delta(-a, -9, 1 << 30, -3, 29491, -vv, st)
        assert (neg[0], neg[1], neg[2]) == (-pos[0], -pos[1], pos[2])


def _velocities(rng, op, params, x, f, bias, fill=None):
    n_w = _weight_slice_size(op, params, x, f)
    if fill is not None:
        return np.full(n_w, fill, np.int32), np.full(len(bias), fill, np.int32)
    return (rng.integers(-(1 << 22), 1 << 22, n_w, dtype=np.int32),
            rng.integers(-(1 << 24), 1 << 24, len(bias), dtype=np.int32))


@pytest.mark.parametrize("op", OPS)
def test_momentum_zero_is_plain_sgd(lib, op):
    """μ = 0: numpy with and without velocity arrays, and C with NULL and with arrays, give
    the plain-SGD bits (the scalar sgd_delta in draw order); the velocities are not touched."""
    rng = np.random.default_rng(51 + len(op))
    checked = 0
    while checked < 12:
        case = _random_case(rng, op)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, _ = case
        flags = [(1, 1), (1, 0), (0, 1)][checked % 3]
        up = _update_params(s_x, s_w, len(s_w), float(10.0 ** rng.uniform(-1.5, 0.5)),
                            qas=checked % 4 != 3, weights=flags[0], bias=flags[1])
        assert up.momentum_q15 == 0
        e = int(rng.integers(-9, -4))
        wv, bv = _velocities(rng, op, params, x, f, bias)
        ref = _scalar_reference(op, params, up, x, grad, e, f, bias, prng_seed(checked),
                                None, None)
        outs = []
        for with_v in (False, True):
            fn, bn, wvn, bvn = f.copy(), bias.copy(), wv.copy(), bv.copy()
            sn = _update(op, params, up, x, grad, e, fn, bn, prng_seed(checked),
                         *((wvn, bvn) if with_v else (None, None)))
            fc, bc, wvc, bvc = f.copy(), bias.copy(), wv.copy(), bv.copy()
            status, sc = cb.update(lib, op, params, up, x, grad, e, fc, bc, prng_seed(checked),
                                   *((wvc, bvc) if with_v else (None, None)))
            assert status == 0
            for a, b in ((wvn, wv), (bvn, bv), (wvc, wv), (bvc, bv)):
                np.testing.assert_array_equal(a, b)
            outs += [(fn, bn, sn), (fc, bc, sc)]
        for fo, bo, so in outs:
            np.testing.assert_array_equal(fo, ref[0])
            np.testing.assert_array_equal(bo, ref[1])
            assert so == ref[4]
        checked += 1


@pytest.mark.parametrize("op", OPS)
def test_momentum_update_numpy_matches_c(lib, op):
    """Random layers and momenta, 4 steps with everything carried (weights, biases, both
    velocities, PRNG state) and a fresh gradient each step: numpy == C every bit, and (first
    cases) == the scalar primitive in the documented draw order."""
    rng = np.random.default_rng(61 + len(op))
    checked = moved = 0
    while checked < 12:
        case = _random_case(rng, op)
        if case is None:
            continue
        params, x, f, bias, grad, s_x, s_w, _ = case
        flags = [(1, 1), (1, 1), (1, 0), (0, 1)][checked % 4]
        up = _update_params(s_x, s_w, len(s_w), float(10.0 ** rng.uniform(-2, 0)),
                            qas=checked % 5 != 4, weights=flags[0], bias=flags[1])
        up.momentum_q15 = momentum_q15(float(rng.choice([0.5, 0.9, 0.99, rng.random()])))
        wv, bv = _velocities(rng, op, params, x, f, bias, fill=0 if checked % 2 else None)
        fn, bn, wvn, bvn, sn = f.copy(), bias.copy(), wv.copy(), bv.copy(), prng_seed(checked)
        fc, bc, wvc, bvc, sc = f.copy(), bias.copy(), wv.copy(), bv.copy(), sn
        for step in range(4):
            g = rng.integers(-127, 128, grad.shape, dtype=np.int8)
            e = int(rng.integers(-9, -4))
            if checked < 4:
                ref = _scalar_reference(op, params, up, x, g, e, fn, bn, sn, wvn, bvn)
            sn = _update(op, params, up, x, g, e, fn, bn, sn, wvn, bvn)
            status, sc = cb.update(lib, op, params, up, x, g, e, fc, bc, sc, wvc, bvc)
            assert status == 0 and sn == sc
            for a, b in ((fn, fc), (bn, bc), (wvn, wvc), (bvn, bvc)):
                np.testing.assert_array_equal(a, b)
            if checked < 4:
                for a, b in zip((fn, bn, wvn, bvn), ref[:4]):
                    np.testing.assert_array_equal(a, b)
                assert sn == ref[4]
        if not flags[0]:
            np.testing.assert_array_equal(fn, f)
            np.testing.assert_array_equal(wvn, wv)
        if not flags[1]:
            np.testing.assert_array_equal(bn, bias)
            np.testing.assert_array_equal(bvn, bv)
        moved += bool((wvn != wv).any() or (bvn != bv).any())
        checked += 1
    assert moved == 12


@pytest.mark.parametrize("op", OPS)
def test_momentum_argument_errors(lib, op):
    """Momentum without a velocity (for a tensor being updated) or momentum_q15 outside
    [0, 2^15): numpy ValueError, C TT_ERR_ARG (4), nothing written, no draw."""
    rng = np.random.default_rng(71)
    case = None
    while case is None:
        case = _random_case(rng, op)
    params, x, f, bias, grad, s_x, s_w, _ = case
    wv, bv = _velocities(rng, op, params, x, f, bias, fill=0)
    for mu, wvi, bvi in ((100, None, bv), (100, wv, None), (-1, wv, bv), (1 << 15, wv, bv)):
        up = _update_params(s_x, s_w, len(s_w), 0.5)
        up.momentum_q15 = mu
        fn, bn = f.copy(), bias.copy()
        with pytest.raises(ValueError):
            _update(op, params, up, x, grad, -6, fn, bn, prng_seed(1), wvi, bvi)
        status, st = cb.update(lib, op, params, up, x, grad, -6, fn, bn, prng_seed(1), wvi, bvi)
        assert status == 4 and st == prng_seed(1)
        np.testing.assert_array_equal(fn, f)
        np.testing.assert_array_equal(bn, bias)
        assert not wv.any() and not bv.any()
    # a velocity is needed only for a tensor that is updated
    up = _update_params(s_x, s_w, len(s_w), 0.5, weights=0)
    up.momentum_q15 = 100
    status, _ = cb.update(lib, op, params, up, None, grad, -6, f.copy(), bias.copy(),
                          prng_seed(1), None, bv.copy())
    assert status == 0
    _update(op, params, up, None, grad, -6, f.copy(), bias.copy(), prng_seed(1), None, bv.copy())


def test_momentum_mean_matches_float_recursion():
    """Constant gradient, k = 10 steps, μ = 0.9, a 0.3 LSB weight step τ (QAS): the mean total
    weight change after every step j matches the float recursion −Σ_{i≤j} v_i, v_i = μ·v_{i−1} + τ
    (= −Σ_i Σ_{l<i} μ^l τ). Mean over 200 seeds × 8 identical weights: each Δ has variance
    ≤ 1/4 and the draws are independent, so the sum of j ≤ 10 steps has standard error
    ≤ sqrt(10/4/1600) = 0.04 LSB; tolerance 0.2 LSB (5 sigma) plus 1e-3 relative for μ in
    Q15, the 31-bit constants and the Q16.16 roundings (each ≤ 2^-16 LSB a step). The velocity
    itself is deterministic: v_k / 2^16 matches the float v_k within 1e-3 relative."""
    s_x, s_w, zp, e_g = 0.05, 0.02, 3, -10
    x_val, g_val, copies, k, mu = 20, 16, 8, 10, 0.9
    gw = g_val * (x_val - zp) * 2.0 ** e_g * float(np.float32(s_x))
    tau = 0.3
    lr = tau * float(np.float32(s_w)) / gw
    params = FullyConnectedParams(-zp, 0, 1, (-128, 127))
    x = np.full((1, copies), x_val, np.int8)
    g = np.full((1, 1), g_val, np.int8)
    up = _update_params(s_x, [s_w], 1, lr, True, bias=0)
    up.momentum_q15 = momentum_q15(mu)
    totals = np.zeros((200, k))
    for seed in range(200):
        f = np.zeros((1, copies), np.int8)
        wv = np.zeros(copies, np.int32)
        st = prng_seed(seed)
        for j in range(k):
            st = fully_connected_update(params, up, x, g, e_g, f, None, st, wv)
            totals[seed, j] = f.astype(np.float64).mean()
        assert len(set(wv.tolist())) == 1   # the velocity is deterministic
    v, vs = 0.0, []
    for j in range(k):
        v = mu * v + tau
        vs.append(v)
    expected = -np.cumsum(vs)
    # the closed form Σ_{l<i} μ^l τ of the same recursion
    np.testing.assert_allclose(vs, [tau * (1 - mu ** (i + 1)) / (1 - mu) for i in range(k)],
                               rtol=1e-12)
    mean = totals.mean(axis=0)
    assert np.all(np.abs(mean - expected) < 0.2 + 1e-3 * np.abs(expected)), (mean, expected)
    assert abs(wv[0] / Q16 - v) < 1e-3 * v
    assert mean[-1] < 2.5 * (-k * tau)   # far from plain SGD's k·τ = 3 LSB (here ≈ 20.5)


@pytest.mark.parametrize("op", OPS)
def test_momentum_velocity_saturation(lib, op):
    """Huge steps: the Q16.16 step and the velocity saturate at ±INT32_MAX (also from an
    INT32_MIN start), so a bias moves by at most 2^15 LSB a step and weights clamp at ±127;
    numpy == C."""
    rng = np.random.default_rng(9)
    case = None
    while case is None:
        case = _random_case(rng, op, full_slice=True)
    params, x, f, bias, grad, s_x, s_w, _ = case
    up = _update_params(s_x, s_w, len(s_w), 1e6)
    up.momentum_q15 = momentum_q15(0.9)
    params.input_offset = 128
    x = np.full_like(x, 100)
    for sign in (1, -1):
        g = np.full_like(grad, 127 * sign)
        wv, bv = _velocities(rng, op, params, x, f, bias, fill=INT32_MIN)
        b0 = np.zeros(len(s_w), np.int32)
        fn, bn, wvn, bvn, sn = f.copy(), b0.copy(), wv.copy(), bv.copy(), prng_seed(2)
        fc, bc, wvc, bvc, sc = f.copy(), b0.copy(), wv.copy(), bv.copy(), sn
        for step in range(3):
            before = bn.astype(np.int64)
            sn = _update(op, params, up, x, g, -5, fn, bn, sn, wvn, bvn)
            status, sc = cb.update(lib, op, params, up, x, g, -5, fc, bc, sc, wvc, bvc)
            assert status == 0 and sn == sc
            for a, b in ((fn, fc), (bn, bc), (wvn, wvc), (bvn, bvc)):
                np.testing.assert_array_equal(a, b)
            if step > 0 or sign == -1:   # from INT32_MIN a positive step first lands near 0
                np.testing.assert_array_equal(wvn, np.full_like(wvn, sign * INT32_MAX))
                np.testing.assert_array_equal(bvn, np.full_like(bvn, sign * INT32_MAX))
                assert np.all(np.isin(sign * (before - bn), [(1 << 15) - 1, 1 << 15]))
        assert np.all(fn == -127 * sign)
