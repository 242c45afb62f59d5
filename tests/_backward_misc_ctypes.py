"""ctypes mirror of the loss, mask and non-MAC backward kernels' C API (tt_loss.h, tt_mask.h,
tt_pooling_backward.h, tt_mean_backward.h, tt_add_backward.h, tt_pad_backward.h,
tt_reshape_backward.h), for tests. Each wrapper takes the numpy kernel's arguments and returns
what the numpy kernel returns; a non-zero tt_status raises CStatusError."""
from __future__ import annotations

import ctypes
import importlib.util

import numpy as np
import pytest

C_I32 = ctypes.c_int32
P_I32 = ctypes.POINTER(C_I32)
P_I8 = ctypes.POINTER(ctypes.c_int8)
P_U8 = ctypes.POINTER(ctypes.c_uint8)

SYMBOLS = ("tt_softmax_cross_entropy", "tt_softmax_cross_entropy_prepare", "tt_activation_mask",
           "tt_apply_activation_mask", "tt_apply_activation_mask_from_output",
           "tt_average_pool_2d_backward", "tt_max_pool_2d_backward", "tt_mean_backward",
           "tt_add_backward", "tt_pad_backward", "tt_reshape_backward")


class CStatusError(RuntimeError):
    def __init__(self, fn: str, status: int):
        super().__init__(f"{fn} returned tt_status {status}")
        self.status = status


class Dims(ctypes.Structure):
    _fields_ = [(n, C_I32) for n in "nhwc"]


class Act(ctypes.Structure):
    _fields_ = [("min", C_I32), ("max", C_I32)]


class LossParams(ctypes.Structure):
    _fields_ = [(n, C_I32) for n in ("input_multiplier", "input_left_shift", "diff_min",
                                     "logit_multiplier", "logit_shift")]


class PoolParams(ctypes.Structure):
    _fields_ = [(n, C_I32) for n in ("stride_w", "stride_h", "filter_w", "filter_h", "pad_w",
                                     "pad_h")] + [("activation", Act)]


class PadParams(ctypes.Structure):
    _fields_ = [("before", C_I32 * 4), ("after", C_I32 * 4), ("pad_value", C_I32)]


def load_lib() -> ctypes.CDLL:
    spec = importlib.util.find_spec("tflm_train._micro_ops")
    if spec is None or spec.origin is None:
        pytest.skip("C library not built (python setup.py build_ext --inplace)")
    lib = ctypes.CDLL(spec.origin)
    for sym in SYMBOLS:
        if not hasattr(lib, sym):
            pytest.skip(f"C library has no {sym}; rebuild it")
    lib.tt_softmax_cross_entropy_prepare.argtypes = [ctypes.c_float, ctypes.POINTER(LossParams)]
    for name in ("tt_softmax_cross_entropy_scratch_size", "tt_activation_mask_size",
                 "tt_average_pool_2d_backward_scratch_size",
                 "tt_max_pool_2d_backward_scratch_size", "tt_add_backward_scratch_size",
                 "tt_average_pool_recip_bits"):
        getattr(lib, name).restype = C_I32
    return lib


def _p(a, ctype):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctype))


def _dims(shape) -> Dims:
    shape = tuple(int(d) for d in shape)
    return Dims(*((1,) * (4 - len(shape)) + shape))


def _check(fn: str, status: int):
    if status != 0:
        raise CStatusError(fn, status)


def _pool(p) -> PoolParams:
    return PoolParams(p.stride_w, p.stride_h, p.filter_w, p.filter_h, p.pad_w, p.pad_h,
                      Act(*p.activation))


def loss_prepare(lib, input_scale: float) -> tuple[int, ...]:
    lp = LossParams()
    _check("tt_softmax_cross_entropy_prepare",
           lib.tt_softmax_cross_entropy_prepare(float(input_scale), ctypes.byref(lp)))
    return tuple(getattr(lp, n) for n, _ in LossParams._fields_)


def softmax_cross_entropy(lib, params, logits, label):
    """→ (loss, grad, exponent, scratch as int32: the Q0.31 gradient p − onehot)."""
    z = np.ascontiguousarray(logits, dtype=np.int8)
    depth = z.size
    lp = LossParams(*(getattr(params, n) for n, _ in LossParams._fields_))
    loss, e = C_I32(), C_I32()
    grad = np.zeros(depth, dtype=np.int8)
    scratch = np.zeros(max(lib.tt_softmax_cross_entropy_scratch_size(depth) // 4, 1), np.int32)
    _check("tt_softmax_cross_entropy", lib.tt_softmax_cross_entropy(
        ctypes.byref(lp), C_I32(depth), _p(z, ctypes.c_int8), C_I32(int(label)),
        ctypes.byref(loss), _p(grad, ctypes.c_int8), ctypes.byref(e), _p(scratch, C_I32)))
    return loss.value, grad.reshape(z.shape), e.value, scratch[:depth]


def activation_mask(lib, output, activation):
    y = np.ascontiguousarray(output, dtype=np.int8).reshape(-1)
    mask = np.full(lib.tt_activation_mask_size(y.size), 0xAA, dtype=np.uint8)
    lib.tt_activation_mask(_p(y, ctypes.c_int8), C_I32(y.size),
                           ctypes.byref(Act(*activation)), _p(mask, ctypes.c_uint8))
    return mask


def apply_activation_mask(lib, grad, mask):
    g = np.array(grad, dtype=np.int8, copy=True)
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    lib.tt_apply_activation_mask(_p(g, ctypes.c_int8), C_I32(g.size), _p(m, ctypes.c_uint8))
    return g


def apply_activation_mask_from_output(lib, grad, output, activation):
    g = np.array(grad, dtype=np.int8, copy=True)
    y = np.ascontiguousarray(output, dtype=np.int8)
    lib.tt_apply_activation_mask_from_output(_p(g, ctypes.c_int8), C_I32(g.size),
                                             _p(y, ctypes.c_int8), ctypes.byref(Act(*activation)))
    return g


def average_pool_2d_backward(lib, params, output_grad, output_grad_exponent, input_shape,
                             scratch=None):
    """scratch: an int32 array to pass as the kernel's scratch (default: *_scratch_size)."""
    g = np.ascontiguousarray(output_grad, dtype=np.int8)
    in_dims = _dims(input_shape)
    out = np.zeros(input_shape, dtype=np.int8)
    if scratch is None:
        scratch = np.zeros(
            lib.tt_average_pool_2d_backward_scratch_size(ctypes.byref(in_dims)) // 4 + 1,
            dtype=np.int32)
    e = C_I32()
    _check("tt_average_pool_2d_backward", lib.tt_average_pool_2d_backward(
        ctypes.byref(_pool(params)), ctypes.byref(_dims(g.shape)), _p(g, ctypes.c_int8),
        C_I32(int(output_grad_exponent)), ctypes.byref(in_dims), _p(out, ctypes.c_int8),
        ctypes.byref(e), _p(scratch, C_I32)))
    return out, e.value


def max_pool_2d_backward(lib, params, output_grad, output_grad_exponent, input, scratch=None):
    """scratch: an int32 array to pass as the kernel's scratch (default: *_scratch_size)."""
    g = np.ascontiguousarray(output_grad, dtype=np.int8)
    x = np.ascontiguousarray(input, dtype=np.int8)
    in_dims = _dims(x.shape)
    out = np.zeros(x.shape, dtype=np.int8)
    if scratch is None:
        scratch = np.zeros(lib.tt_max_pool_2d_backward_scratch_size(ctypes.byref(in_dims)) // 4
                           + 1, dtype=np.int32)
    e = C_I32()
    _check("tt_max_pool_2d_backward", lib.tt_max_pool_2d_backward(
        ctypes.byref(_pool(params)), ctypes.byref(_dims(g.shape)), _p(g, ctypes.c_int8),
        C_I32(int(output_grad_exponent)), ctypes.byref(in_dims), _p(x, ctypes.c_int8),
        _p(out, ctypes.c_int8), ctypes.byref(e), _p(scratch, C_I32)))
    return out, e.value


def mean_backward(lib, output_grad, output_grad_exponent, input_shape):
    g = np.ascontiguousarray(output_grad, dtype=np.int8)
    out = np.zeros(input_shape, dtype=np.int8)
    e = C_I32()
    _check("tt_mean_backward", lib.tt_mean_backward(
        ctypes.byref(_dims(g.shape)), _p(g, ctypes.c_int8), C_I32(int(output_grad_exponent)),
        ctypes.byref(_dims(input_shape)), _p(out, ctypes.c_int8), ctypes.byref(e)))
    return out, e.value


def add_backward(lib, output_grad, output_grad_exponent, input1_shape, input2_shape,
                 output_mask=None, in_place=None, scratch=None):
    """in_place = 1 or 2: that input's gradient is written over a copy of output_grad.
    scratch: an int32 array to pass as the kernel's scratch (default: *_scratch_size)."""
    g = np.array(output_grad, dtype=np.int8, copy=True)
    d1, d2, do = _dims(input1_shape), _dims(input2_shape), _dims(g.shape)
    g1 = g if in_place == 1 else np.zeros(input1_shape, dtype=np.int8)
    g2 = g if in_place == 2 else np.zeros(input2_shape, dtype=np.int8)
    mask = None if output_mask is None else np.ascontiguousarray(output_mask, dtype=np.uint8)
    size = lib.tt_add_backward_scratch_size(ctypes.byref(d1), ctypes.byref(d2), ctypes.byref(do))
    if scratch is None:
        scratch = np.zeros(size // 4 + 1, dtype=np.int32)
    e1, e2 = C_I32(), C_I32()
    _check("tt_add_backward", lib.tt_add_backward(
        ctypes.byref(do), _p(g, ctypes.c_int8), C_I32(int(output_grad_exponent)),
        _p(mask, ctypes.c_uint8), ctypes.byref(d1), _p(g1, ctypes.c_int8), ctypes.byref(e1),
        ctypes.byref(d2), _p(g2, ctypes.c_int8), ctypes.byref(e2), _p(scratch, C_I32)))
    return (g1.reshape(input1_shape), e1.value, g2.reshape(input2_shape), e2.value)


def pad_backward(lib, params, output_grad, input_shape):
    g = np.ascontiguousarray(output_grad, dtype=np.int8)
    out = np.zeros(input_shape, dtype=np.int8)
    pp = PadParams((C_I32 * 4)(*params.before), (C_I32 * 4)(*params.after), params.pad_value)
    _check("tt_pad_backward", lib.tt_pad_backward(
        ctypes.byref(pp), ctypes.byref(_dims(g.shape)), _p(g, ctypes.c_int8),
        ctypes.byref(_dims(input_shape)), _p(out, ctypes.c_int8)))
    return out


def reshape_backward(lib, output_grad, input_shape):
    g = np.ascontiguousarray(output_grad, dtype=np.int8)
    out = np.zeros(input_shape, dtype=np.int8)
    lib.tt_reshape_backward(_p(g, ctypes.c_int8), _p(out, ctypes.c_int8), C_I32(g.size))
    return out
