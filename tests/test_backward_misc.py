"""Loss, activation masks and the non-MAC backward kernels (docs/training-numerics.md):
numpy == C bit for bit, closeness to a float64 reference, edge cases.

Float tolerances: the kernels emit int8 gradients with a power-of-two scale, so each element
carries up to half an LSB of 1/127 of the tensor's max magnitude — cosine similarity ≥ 0.99
against the float gradient is the bound that error allows with margin (measured ≥ 0.999)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import _backward_misc_ctypes as C
from conftest import shared_model
from tflm_train.kernels import loss as L
from tflm_train.kernels.add_backward import add_backward
from tflm_train.kernels.mask import (activation_mask, activation_mask_size,
                                     apply_activation_mask, apply_activation_mask_from_output)
from tflm_train.kernels.mean_backward import mean_backward
from tflm_train.kernels.pad import PadParams
from tflm_train.kernels.pad_backward import pad_backward
from tflm_train.kernels.pooling import PoolParams
from tflm_train.kernels.pooling_backward import (average_pool_2d_backward,
                                                 average_pool_recip_bits, max_pool_2d_backward)
from tflm_train.kernels.reshape_backward import reshape_backward
from tflm_train.quant import compute_padding

COS_MIN = 0.99


@pytest.fixture(scope="module")
def lib():
    return C.load_lib()


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _grad(rng, shape, lo=-127, hi=128):
    return rng.integers(lo, hi, size=shape).astype(np.int8)


# --------------------------------------------------------------------------- loss

def _float_loss(z, scale, label):
    zf = z.astype(np.float64).ravel() * scale
    zf -= zf.max()
    logp = zf - np.log(np.exp(zf).sum())
    g = np.exp(logp)
    g[label] -= 1.0
    return -logp[label], np.exp(logp), g


def test_loss_matches_c_and_float_reference(lib):
    """Loss within 0.001 nats + 0.1 % of float64 −log softmax (measured error ~2e-5 nats: Q16.16
    output, 24-bit log2); p sums to 1 within 1e-4 and is within 1e-5 of the float p (the
    fixed-point exp's error); gradient cosine ≥ 0.99 wherever the float gradient is resolvable
    in Q0.31 (norm ≥ 1e-4; below that p_y ≈ 1 and the gradient is a few 2^-31 LSBs of
    rounding); numpy == C for loss, gradient, exponent and the Q0.31 scratch."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        depth = int(rng.integers(2, 130))
        scale = float(np.float32(rng.choice([0.01, 0.05, 0.1, 0.3, 1.0]) * rng.uniform(0.5, 2)))
        z = rng.integers(-128, 128, depth).astype(np.int8)
        label = int(np.argmax(z)) if trial % 4 == 0 else int(rng.integers(0, depth))
        params = L.softmax_cross_entropy_params(scale)
        assert C.loss_prepare(lib, scale) == tuple(vars(params).values())
        loss, grad, e = L.softmax_cross_entropy(params, z, label)
        c_loss, c_grad, c_e, c_scratch = C.softmax_cross_entropy(lib, params, z, label)
        assert (loss, e) == (c_loss, c_e) and np.array_equal(grad, c_grad), trial
        p, _ = L.softmax_cross_entropy_probabilities(params, z)
        onehot = np.zeros(depth, np.int64)
        onehot[label] = 1 << 31
        g = p - onehot
        out = ((z == 127) & (g < 0)) | ((z == -128) & (g > 0))   # pushes past an int8 bound
        assert np.array_equal(c_scratch, np.where(out, 0, g))
        ref_loss, ref_p, ref_g = _float_loss(z, scale, label)
        ref_g = np.where(out, 0.0, ref_g)
        assert abs(loss / 65536 - ref_loss) <= 1e-3 + 1e-3 * ref_loss, (trial, loss, ref_loss)
        assert abs(p.sum() / 2**31 - 1) < 1e-4
        assert np.abs(p / 2**31 - ref_p).max() < 1e-5   # fixed-point exp: ~3e-6 relative
        if np.linalg.norm(ref_g) >= 1e-4:
            assert _cos(grad.astype(np.float64) * 2.0**e, ref_g) >= COS_MIN, trial
        assert np.abs(grad * 2.0**e - ref_g).max() <= 2.0**e + 1e-5   # 1 LSB + the p error


def test_loss_gradient_never_pushes_a_logit_past_int8(lib):
    """The one-sided clamp rule: a true class at 127 gets no gradient (it cannot rise), a wrong
    class at -128 none either; the components pulling a saturated logit back pass."""
    params = L.softmax_cross_entropy_params(16 / 255)
    for z, label, zero, kept in (([127, 127, 120, 110], 0, [0], [1, 2, 3]),
                                 ([-128, -128, -125, -126], 2, [0, 1], [2, 3]),
                                 ([-128, 127, 120, 110], 0, [], [0, 1, 2, 3])):
        z = np.array(z, np.int8)
        _, grad, e = L.softmax_cross_entropy(params, z, label)
        assert (grad[zero] == 0).all(), label
        assert (grad[kept] != 0).all(), label
        assert grad[label] <= 0 and (np.delete(grad, label) >= 0).all()
        c_grad = C.softmax_cross_entropy(lib, params, z, label)[1]
        assert np.array_equal(grad, c_grad)


def test_loss_batch_shape_and_extremes(lib):
    """[1, C] logits keep their shape; a label far below the max (p_y under Q0.31) still gets
    the exact loss from ln S − s·(z_y − z_max); equal logits give ln C and gradient 1/C − 1."""
    params = L.softmax_cross_entropy_params(0.5)
    z = np.full((1, 10), -128, np.int8)
    z[0, 3] = 127
    loss, grad, e = L.softmax_cross_entropy(params, z, 0)
    assert grad.shape == (1, 10)
    assert abs(loss / 65536 - 127.5) < 1e-3                      # 255 · 0.5 nats
    assert grad[0, 0] * 2.0**e == -1.0 and grad[0, 3] * 2.0**e == 1.0
    assert C.softmax_cross_entropy(lib, params, z, 0)[0] == loss
    z = np.zeros(10, np.int8)
    loss, grad, e = L.softmax_cross_entropy(params, z, 4)
    assert abs(loss / 65536 - math.log(10)) < 1e-4
    assert np.allclose(grad * 2.0**e, np.eye(10)[4] * -1 + 0.1, atol=2.0**e)


def test_loss_label_out_of_range(lib):
    params = L.softmax_cross_entropy_params(0.1)
    z = np.zeros(10, np.int8)
    for label in (-1, 10, 1000):
        with pytest.raises(ValueError, match=rf"label {label} .*10 classes"):
            L.softmax_cross_entropy(params, z, label)
        with pytest.raises(C.CStatusError) as err:
            C.softmax_cross_entropy(lib, params, z, label)
        assert err.value.status == 4      # TT_ERR_ARG
    with pytest.raises(ValueError, match="too large"):
        L.softmax_cross_entropy_params(200.0)


def test_log2_fixed():
    """Integer log2 within 2^-22 of math.log2 over the whole positive int32 range."""
    rng = np.random.default_rng(3)
    for x in [1, 2, 3, 2**19 - 1, 2**19, 2**31 - 1] + list(rng.integers(1, 2**31, 200)):
        got = L.log2_fixed(int(x), 19) / 2**24
        assert abs(got - math.log2(int(x) / 2**19)) < 2**-22


def test_loss_on_resnet8_logits(lib):
    """Real logits (the FULLY_CONNECTED output feeding SOFTMAX in resnet8): C == numpy and
    close to the float loss."""
    import dataclasses

    import tflm_train
    from tflm_train.engine_numpy import NumpyEngine

    g = tflm_train.load(str(shared_model("mlcommons/resnet8_cifar10_int8.tflite")))
    sm = next(op for op in g.ops if op.opcode == "SOFTMAX")
    t = g.tensors[sm.inputs[0]]
    engine = NumpyEngine(dataclasses.replace(g, outputs=[t.index]))
    scale = float(t.quant.scale[0])
    params = L.softmax_cross_entropy_params(scale)
    rng = np.random.default_rng(11)
    for trial in range(20):
        x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape).astype(np.int8)
        z = engine.invoke([x])[0]
        label = trial % 10
        loss, grad, e = L.softmax_cross_entropy(params, z, label)
        c_loss, c_grad, c_e, _ = C.softmax_cross_entropy(lib, params, z, label)
        assert (loss, e) == (c_loss, c_e) and np.array_equal(grad, c_grad)
        ref_loss, _, ref_g = _float_loss(z, scale, label)
        assert abs(loss / 65536 - ref_loss) <= 1e-3 + 1e-3 * ref_loss
        assert _cos(grad * 2.0**e, ref_g) >= COS_MIN


# --------------------------------------------------------------------------- masks

def test_activation_mask(lib):
    """Bit i&7 of byte i>>3 ⇔ act_min < y < act_max; both apply paths agree in numpy and C."""
    rng = np.random.default_rng(5)
    y = np.array([-128, -5, 0, 3, 127, 6, 7, 5, 1, 0], np.int8)
    m = activation_mask(y, (0, 6))
    assert m.tolist() == [0b10001000, 0b01]   # elements 3, 7 → byte 0; 8 → byte 1 bit 0
    assert activation_mask_size(10) == 2 == lib.tt_activation_mask_size(10)
    for n in (1, 7, 8, 9, 64, 1001):
        act = tuple(sorted(int(v) for v in rng.integers(-128, 128, 2)))
        y = rng.integers(-128, 128, n).astype(np.int8)
        g = _grad(rng, n)
        m = activation_mask(y, act)
        assert np.array_equal(m, C.activation_mask(lib, y, act))
        assert m.size == activation_mask_size(n)
        inside = (y > act[0]) & (y < act[1])
        masked = apply_activation_mask(g, m)
        assert np.array_equal(masked, np.where(inside, g, 0))
        assert np.array_equal(masked, apply_activation_mask_from_output(g, y, act))
        assert np.array_equal(masked, C.apply_activation_mask(lib, g, m))
        assert np.array_equal(masked, C.apply_activation_mask_from_output(lib, g, y, act))
    with pytest.raises(ValueError, match="too small"):
        apply_activation_mask(np.zeros(17, np.int8), np.zeros(2, np.uint8))


# --------------------------------------------------------------------------- pooling

def _random_pool(rng):
    n, h, w, c = 1 + int(rng.integers(0, 2)), *(int(v) for v in rng.integers(1, 9, 2)), \
        int(rng.integers(1, 5))
    fh, fw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    padding = int(rng.integers(0, 2))
    oh, ph = compute_padding(padding, h, fh, sh, 1)
    ow, pw = compute_padding(padding, w, fw, sw, 1)
    if oh <= 0 or ow <= 0:
        return None
    return PoolParams(sw, sh, fw, fh, pw, ph, (-128, 127)), (n, h, w, c), (n, oh, ow, c)


def _windows(p, in_shape, oy, ox):
    y0, x0 = oy * p.stride_h - p.pad_h, ox * p.stride_w - p.pad_w
    ys = range(max(y0, 0), min(y0 + p.filter_h, in_shape[1]))
    xs = range(max(x0, 0), min(x0 + p.filter_w, in_shape[2]))
    return ys, xs


def _float_avg_pool_backward(p, g, in_shape):
    out = np.zeros(in_shape)
    for n in range(g.shape[0]):
        for oy in range(g.shape[1]):
            for ox in range(g.shape[2]):
                ys, xs = _windows(p, in_shape, oy, ox)
                for y in ys:
                    for x in xs:
                        out[n, y, x] += g[n, oy, ox] / (len(ys) * len(xs))
    return out


def _float_max_pool_backward(p, g, x):
    out = np.zeros(x.shape)
    for n in range(g.shape[0]):
        for oy in range(g.shape[1]):
            for ox in range(g.shape[2]):
                ys, xs = _windows(p, x.shape, oy, ox)
                win = x[n, ys.start:ys.stop, xs.start:xs.stop].reshape(-1, x.shape[3])
                first = np.argmax(win, axis=0)          # numpy: first maximum
                for c, k in enumerate(first):
                    out[n, ys.start + k // len(xs), xs.start + k % len(xs), c] += g[n, oy, ox, c]
    return out


def test_average_pool_2d_backward(lib):
    """Random shapes, strides, SAME windows clipped at the borders: numpy == C, cosine ≥ 0.99
    vs the float spread g/count."""
    rng = np.random.default_rng(21)
    done = 0
    while done < 60:
        cfg = _random_pool(rng)
        if cfg is None:
            continue
        p, in_shape, out_shape = cfg
        g = _grad(rng, out_shape)
        e = int(rng.integers(-20, 0))
        q, qe = average_pool_2d_backward(p, g, e, in_shape)
        cq, cqe = C.average_pool_2d_backward(lib, p, g, e, in_shape)
        assert qe == cqe and np.array_equal(q, cq), (p, in_shape)
        ref = _float_avg_pool_backward(p, g * 2.0**e, in_shape)
        if np.any(ref):
            assert _cos(q * 2.0**qe, ref) >= COS_MIN
        done += 1


def test_average_pool_2d_backward_exact_and_zero(lib):
    """Power-of-two counts are exact (2x2 stride 2: every input gets g/4 = g · 2^-2); a zero
    gradient gives zeros with exponent e − K; a window entirely in the padding is an error."""
    rng = np.random.default_rng(2)
    p = PoolParams(2, 2, 2, 2, 0, 0, (-128, 127))
    g = _grad(rng, (1, 3, 4, 5))
    for fn in (average_pool_2d_backward, lambda *a: C.average_pool_2d_backward(lib, *a)):
        q, e = fn(p, g, -7, (1, 6, 8, 5))
        assert e == -9
        assert np.array_equal(q, np.repeat(np.repeat(g, 2, axis=1), 2, axis=2))
        q, e = fn(p, np.zeros_like(g), -7, (1, 6, 8, 5))
        assert not q.any() and e == -7 - average_pool_recip_bits(p)
    # resnet8's global 8x8 pool: count 64, exact too.
    p = PoolParams(8, 8, 8, 8, 0, 0, (-128, 127))
    g = _grad(rng, (1, 1, 1, 64))
    q, e = average_pool_2d_backward(p, g, -5, (1, 8, 8, 64))
    assert e == -11 and np.array_equal(q, np.broadcast_to(g, (1, 8, 8, 64)))
    assert np.array_equal(q, C.average_pool_2d_backward(lib, p, g, -5, (1, 8, 8, 64))[0])
    bad = PoolParams(1, 1, 1, 1, 3, 0, (-128, 127))     # output row 0 reads only padding
    with pytest.raises(ValueError, match="padding"):
        average_pool_2d_backward(bad, np.ones((1, 4, 1, 1), np.int8), 0, (1, 1, 1, 1))
    with pytest.raises(C.CStatusError):
        C.average_pool_2d_backward(lib, bad, np.ones((1, 4, 1, 1), np.int8), 0, (1, 1, 1, 1))


def test_max_pool_2d_backward(lib):
    """Random shapes and windows (overlapping ones add up): numpy == C, cosine ≥ 0.99 vs the
    float routing to the first maximum; inputs drawn from few values to force ties."""
    rng = np.random.default_rng(22)
    done = 0
    while done < 60:
        cfg = _random_pool(rng)
        if cfg is None:
            continue
        p, in_shape, out_shape = cfg
        x = rng.integers(-128, -124 if done % 2 else 128, in_shape).astype(np.int8)
        g = _grad(rng, out_shape)
        q, qe = max_pool_2d_backward(p, g, -3, x)
        cq, cqe = C.max_pool_2d_backward(lib, p, g, -3, x)
        assert qe == cqe and np.array_equal(q, cq), (p, in_shape)
        ref = _float_max_pool_backward(p, g * 2.0**-3, x)
        if np.any(ref):
            assert _cos(q * 2.0**qe, ref) >= COS_MIN
        done += 1


def test_max_pool_2d_backward_ties_and_borders(lib):
    """Ties go to the first position in row-major order; SAME windows clipped at the border
    never route into the padding even when every input is negative."""
    p = PoolParams(2, 2, 3, 3, 1, 1, (-128, 127))       # 3x3 stride 2 SAME on 4x4
    x = np.full((1, 4, 4, 1), -100, np.int8)
    g = np.array([10, 20, 30, 40], np.int8).reshape(1, 2, 2, 1)
    for fn in (max_pool_2d_backward, lambda *a: C.max_pool_2d_backward(lib, *a)):
        q, e = fn(p, g, 0, x)
        assert e == 0
        want = np.zeros((4, 4), np.int64)
        # Windows start at rows/cols -1 and 1: clipped to [0, 2) and [1, 4).
        want[0, 0], want[0, 1], want[1, 0], want[1, 1] = 10, 20, 30, 40
        assert np.array_equal(q.reshape(4, 4), want)
    x[0, 2, 3, 0] = -99                                  # a unique max for the last window
    q, _ = max_pool_2d_backward(p, g, 0, x)
    assert q[0, 2, 3, 0] == 40 and q[0, 1, 1, 0] == 0
    z, ze = max_pool_2d_backward(p, np.zeros_like(g), 4, x)
    assert not z.any() and ze == 4


# --------------------------------------------------------------------------- mean

def test_mean_backward(lib):
    """Reductions over H,W (and other axis sets): numpy == C, cosine ≥ 0.99 vs g/count; power-
    of-two counts are exact; zero gradient stays zero."""
    rng = np.random.default_rng(23)
    for trial in range(60):
        in_shape = tuple(int(v) for v in rng.integers(1, 7, 4))
        reduced = [(1, 2), (1, 2), (3,), (0, 1, 2, 3), (2,)][trial % 5]
        out_shape = tuple(1 if d in reduced else s for d, s in enumerate(in_shape))
        g = _grad(rng, out_shape)
        q, e = mean_backward(g, -6, in_shape)
        cq, ce = C.mean_backward(lib, g, -6, in_shape)
        assert e == ce and np.array_equal(q, cq), (in_shape, reduced)
        count = np.prod(in_shape) // np.prod(out_shape)
        ref = np.broadcast_to(g * 2.0**-6 / count, in_shape)
        if np.any(g):
            assert _cos(q * 2.0**e, ref) >= COS_MIN
    g = _grad(rng, (1, 1, 1, 16))
    q, e = mean_backward(g, 0, (1, 4, 4, 16))
    assert e == -4 and np.array_equal(q, np.broadcast_to(g, (1, 4, 4, 16)))
    q, e = C.mean_backward(lib, np.zeros_like(g), 0, (1, 4, 4, 16))
    assert not q.any() and e == -23
    with pytest.raises(ValueError, match="keep_dims"):
        mean_backward(np.zeros((1, 2, 1, 3), np.int8), 0, (1, 4, 4, 3))
    with pytest.raises(C.CStatusError):
        C.mean_backward(lib, np.zeros((1, 2, 1, 3), np.int8), 0, (1, 4, 4, 3))


# --------------------------------------------------------------------------- add

def test_add_backward(lib):
    """Same-shape and broadcast inputs, with and without an activation mask: numpy == C (also
    with the same-shape gradient written in place over output_grad), cosine ≥ 0.99 vs the float
    masked sums."""
    rng = np.random.default_rng(24)
    for trial in range(60):
        out_shape = tuple(int(v) for v in rng.integers(1, 6, 4))
        shapes = []
        for _ in range(2):
            keep = rng.integers(0, 2, 4) if trial % 3 else np.ones(4, int)
            shapes.append(tuple(s if k else 1 for s, k in zip(out_shape, keep)))
        if trial % 5 == 0:
            shapes[1] = shapes[1][-1:]                    # rank-1 input (leading 1s)
        g = _grad(rng, out_shape)
        y = rng.integers(-128, 128, out_shape).astype(np.int8)
        mask = activation_mask(y, (-10, 127)) if trial % 2 else None
        got = add_backward(g, -5, shapes[0], shapes[1], mask)
        c_got = C.add_backward(lib, g, -5, shapes[0], shapes[1], mask)
        for a, b in zip(got, c_got):
            assert np.array_equal(a, b), (trial, shapes)
        for which in (1, 2):
            if tuple(np.ones(4 - len(shapes[which - 1]), int)) + shapes[which - 1] == out_shape:
                c_in = C.add_backward(lib, g, -5, shapes[0], shapes[1], mask, in_place=which)
                assert all(np.array_equal(a, b) for a, b in zip(got, c_in))
        gm = g * 2.0**-5 * (1 if mask is None else (y > -10) & (y < 127))
        for k, shape in enumerate(shapes):
            s4 = (1,) * (4 - len(shape)) + shape
            ref = gm.sum(axis=tuple(d for d in range(4) if s4[d] != out_shape[d]),
                         keepdims=True).reshape(shape)
            q, e = got[2 * k], got[2 * k + 1]
            assert q.shape == shape
            if np.any(ref):
                assert _cos(q * 2.0**e, ref) >= COS_MIN
            else:
                assert not q.any()


def test_add_backward_edges(lib):
    """Same shape: masked pass-through with e unchanged; zero gradient; a NULL gradient
    pointer skips that input; incompatible shapes are rejected."""
    g = np.array([[5, -7, 127, -127]], np.int8)
    y = np.array([[0, 3, 6, 2]], np.int8)
    m = activation_mask(y, (0, 6))
    g1, e1, g2, e2 = add_backward(g, -9, (1, 4), (1, 1), m)
    assert g1.tolist() == [[0, -7, 0, -127]] and e1 == -9
    assert g2.tolist() == [[-67]] and e2 == -8            # -134 / 2, rounded away from zero
    z = add_backward(np.zeros((2, 3), np.int8), 0, (2, 3), (1, 3))
    assert not z[0].any() and not z[2].any() and z[3] == 0
    with pytest.raises(ValueError, match="broadcast"):
        add_backward(g, 0, (1, 4), (1, 3))
    with pytest.raises(C.CStatusError):
        C.add_backward(lib, g, 0, (1, 4), (1, 3))


# --------------------------------------------------------------------------- pad, reshape

def test_pad_and_reshape_backward(lib):
    rng = np.random.default_rng(25)
    for trial in range(30):
        in_shape = tuple(int(v) for v in rng.integers(1, 5, 4))
        before, after = (tuple(int(v) for v in rng.integers(0, 3, 4)) for _ in range(2))
        p = PadParams(before, after, 0)
        out_shape = tuple(i + b + a for i, b, a in zip(in_shape, before, after))
        g = _grad(rng, out_shape)
        q = pad_backward(p, g, in_shape)
        assert np.array_equal(q, C.pad_backward(lib, p, g, in_shape))
        assert np.array_equal(q, g[tuple(slice(b, b + n) for b, n in zip(before, in_shape))])
    with pytest.raises(ValueError):
        pad_backward(p, g, tuple(d + 1 for d in in_shape))
    with pytest.raises(C.CStatusError):
        C.pad_backward(lib, p, g, tuple(d + 1 for d in in_shape))
    g = _grad(rng, (1, 1, 1, 64))
    q = reshape_backward(g, (1, 64))
    assert q.shape == (1, 64) and np.array_equal(q.ravel(), g.ravel())
    assert np.array_equal(C.reshape_backward(lib, g, (1, 64)), q)


# --------------------------------------------------------------------------- real model

def test_resnet8_add_and_pool_backward(lib):
    """resnet8's ADD (fused ReLU) with the mask of its real output, and its global average
    pool: numpy == C on real activations."""
    import dataclasses

    import tflm_train
    from tflm_train.engine_numpy import NumpyEngine
    from tflm_train.quant import activation_range

    g = tflm_train.load(str(shared_model("mlcommons/resnet8_cifar10_int8.tflite")))
    adds = [op for op in g.ops if op.opcode == "ADD"]
    pool = next(op for op in g.ops if op.opcode == "AVERAGE_POOL_2D")
    outs = [op.outputs[0] for op in adds] + [pool.inputs[0]]
    engine = NumpyEngine(dataclasses.replace(g, outputs=outs))
    rng = np.random.default_rng(12)
    for trial in range(3):
        x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape).astype(np.int8)
        values = engine.invoke([x])
        for op, y in zip(adds, values):
            t = g.tensors[op.outputs[0]]
            act = activation_range(op.options["fused_activation_function"],
                                   float(t.quant.scale[0]), int(t.quant.zero_point[0]))
            m = activation_mask(y, act)
            assert np.array_equal(m, C.activation_mask(lib, y, act))
            grad = _grad(rng, y.shape)
            shapes = [g.tensors[i].shape for i in op.inputs]
            got = add_backward(grad, -8, shapes[0], shapes[1], m)
            c_got = C.add_backward(lib, grad, -8, shapes[0], shapes[1], m)
            assert all(np.array_equal(a, b) for a, b in zip(got, c_got))
            assert np.array_equal(got[0], apply_activation_mask_from_output(grad, y, act))
        o = pool.options
        p = PoolParams(o["stride_w"], o["stride_h"], o["filter_width"], o["filter_height"],
                       0, 0, (-128, 127))
        gp = _grad(rng, g.tensors[pool.outputs[0]].shape)
        in_shape = values[-1].shape
        q = average_pool_2d_backward(p, gp, -4, in_shape)
        cq = C.average_pool_2d_backward(lib, p, gp, -4, in_shape)
        assert q[1] == cq[1] and np.array_equal(q[0], cq[0])
