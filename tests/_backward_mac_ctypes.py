"""ctypes mirror of the MAC training kernels' C API (tt_update.h, tt_*_backward.h), for tests.
Each wrapper takes the numpy kernel's arguments and returns what the numpy kernel returns."""
from __future__ import annotations

import ctypes
import importlib.util
import os

import numpy as np
import pytest

from tflm_train.kernels.update import BackwardInputQuant, UpdateParams

C_I32 = ctypes.c_int32
P_I32 = ctypes.POINTER(C_I32)
P_I8 = ctypes.POINTER(ctypes.c_int8)
P_F32 = ctypes.POINTER(ctypes.c_float)
P_U64 = ctypes.POINTER(ctypes.c_uint64)

SYMBOLS = ("tt_sgd_delta", "tt_update_multiplier", "tt_update_factors", "tt_update_lr",
           "tt_conv_2d_update", "tt_depthwise_conv_2d_update", "tt_fully_connected_update",
           "tt_conv_2d_backward_input", "tt_depthwise_conv_2d_backward_input",
           "tt_fully_connected_backward_input", "tt_sgd_momentum_delta", "tt_sgd_step_q16",
           "tt_momentum_q15")


def load_lib() -> ctypes.CDLL:
    path = os.environ.get("TT_MICRO_OPS_LIB")  # override: a library built elsewhere
    if not path:
        spec = importlib.util.find_spec("tflm_train._micro_ops")
        if spec is None or spec.origin is None:
            pytest.skip("C library not built (python setup.py build_ext --inplace)")
        path = spec.origin
    lib = ctypes.CDLL(path)
    for sym in SYMBOLS:
        if not hasattr(lib, sym):
            pytest.skip(f"C library has no {sym}; rebuild it")
    lib.tt_sgd_delta.restype = C_I32
    lib.tt_sgd_delta.argtypes = [ctypes.c_int64, C_I32, C_I32, C_I32, P_U64]
    lib.tt_sgd_momentum_delta.restype = C_I32
    lib.tt_sgd_momentum_delta.argtypes = [ctypes.c_int64, C_I32, C_I32, C_I32, C_I32, P_I32,
                                          P_U64]
    lib.tt_sgd_step_q16.restype = C_I32
    lib.tt_sgd_step_q16.argtypes = [ctypes.c_int64, C_I32, C_I32, C_I32]
    lib.tt_momentum_q15.restype = C_I32
    lib.tt_momentum_q15.argtypes = [ctypes.c_double]
    lib.tt_update_factor.argtypes = [ctypes.c_double, P_I32, P_I32]
    lib.tt_update_lr.argtypes = [ctypes.c_double, ctypes.POINTER(QuantMult)]
    lib.tt_update_factors.argtypes = [ctypes.c_float, P_F32, C_I32, C_I32, C_I32,
                                      P_I32, P_I32, P_I32, P_I32]
    lib.tt_backward_input_prepare.argtypes = [P_F32, C_I32, C_I32, C_I32, P_I32, P_I32, P_I32]
    for name in ("conv_2d", "depthwise_conv_2d", "fully_connected"):
        getattr(lib, f"tt_{name}_backward_input_scratch_size").restype = C_I32
    return lib


class Dims(ctypes.Structure):
    _fields_ = [(n, C_I32) for n in "nhwc"]


class Act(ctypes.Structure):
    _fields_ = [("min", C_I32), ("max", C_I32)]


class PerChannel(ctypes.Structure):
    _fields_ = [("multiplier", P_I32), ("shift", P_I32)]


class QuantMult(ctypes.Structure):
    _fields_ = [("multiplier", C_I32), ("shift", C_I32)]


class CUpdateParams(ctypes.Structure):
    _fields_ = [("weight_factor", PerChannel), ("bias_factor", PerChannel), ("lr", QuantMult),
                ("update_weights", C_I32), ("update_bias", C_I32), ("momentum_q15", C_I32)]


class CBackwardInputQuant(ctypes.Structure):
    _fields_ = [("r", P_I32), ("s_e", C_I32), ("p", C_I32)]


def ptr(a, ctype):
    return None if a is None else a.ctypes.data_as(ctypes.POINTER(ctype))


def dims(shape) -> Dims:
    s = tuple(int(v) for v in shape)
    if len(s) == 2:          # FC: (batches, depth)
        return Dims(s[0], 1, 1, s[1])
    return Dims(*s)


def params_struct(params):
    """Forward params dataclass → the C struct (int32 fields in order, activation last)."""
    names = [k for k in vars(params) if k != "activation"]
    cls = type("Params", (ctypes.Structure,),
               {"_fields_": [(k, C_I32) for k in names] + [("activation", Act)]})
    return cls(*(int(getattr(params, k)) for k in names), Act(*params.activation))


def update_struct(up: UpdateParams, keep: list):
    arrays = [np.ascontiguousarray(a, dtype=np.int32) for a in
              (up.weight_factor.multiplier, up.weight_factor.shift,
               up.bias_factor.multiplier, up.bias_factor.shift)]
    keep.extend(arrays)
    return CUpdateParams(PerChannel(ptr(arrays[0], C_I32), ptr(arrays[1], C_I32)),
                         PerChannel(ptr(arrays[2], C_I32), ptr(arrays[3], C_I32)),
                         QuantMult(*up.lr), int(up.update_weights), int(up.update_bias),
                         int(up.momentum_q15))


def sgd_delta(lib, acc, e_acc, multiplier, shift, state) -> tuple[int, int]:
    st = ctypes.c_uint64(state)
    d = lib.tt_sgd_delta(int(acc), int(e_acc), int(multiplier), int(shift), ctypes.byref(st))
    return int(d), int(st.value)


def sgd_momentum_delta(lib, acc, e_acc, multiplier, shift, momentum_q15, velocity, state
                       ) -> tuple[int, int, int]:
    """→ (delta, new velocity, new state); velocity None passes NULL (momentum 0 only)."""
    st = ctypes.c_uint64(state)
    v = None if velocity is None else C_I32(velocity)
    d = lib.tt_sgd_momentum_delta(int(acc), int(e_acc), int(multiplier), int(shift),
                                  int(momentum_q15), None if v is None else ctypes.byref(v),
                                  ctypes.byref(st))
    return int(d), None if v is None else int(v.value), int(st.value)


def sgd_step_q16(lib, acc, e_acc, multiplier, shift) -> int:
    return int(lib.tt_sgd_step_q16(int(acc), int(e_acc), int(multiplier), int(shift)))


def momentum_q15(lib, mu) -> int:
    return int(lib.tt_momentum_q15(float(mu)))


def update_multiplier(lib, fm, fs, lm, ls) -> tuple[int, int]:
    m, s = C_I32(), C_I32()
    lib.tt_update_multiplier(C_I32(fm), C_I32(fs), C_I32(lm), C_I32(ls), ctypes.byref(m),
                             ctypes.byref(s))
    return m.value, s.value


def update_factor(lib, real) -> tuple[int, int]:
    m, s = C_I32(), C_I32()
    lib.tt_update_factor(float(real), ctypes.byref(m), ctypes.byref(s))
    return m.value, s.value


def update_lr(lib, lr) -> tuple[int, int]:
    q = QuantMult()
    lib.tt_update_lr(float(lr), ctypes.byref(q))
    return q.multiplier, q.shift


def update_factors(lib, input_scale, filter_scales, n_channels, qas):
    sw = np.ascontiguousarray(np.ravel(filter_scales), dtype=np.float32)
    out = [np.zeros(n_channels, dtype=np.int32) for _ in range(4)]
    st = lib.tt_update_factors(ctypes.c_float(input_scale), ptr(sw, ctypes.c_float), sw.size,
                               n_channels, int(qas), *(ptr(a, C_I32) for a in out))
    assert st == 0
    return out


def backward_input_prepare(lib, op, filter_scales, filter_shape, depth_multiplier=1):
    sw = np.ascontiguousarray(np.ravel(filter_scales), dtype=np.float32)
    fd = dims(filter_shape)
    n_ch = filter_shape[-1] if op == "depthwise_conv_2d" else filter_shape[0]
    r = np.zeros(n_ch, dtype=np.int32)
    s_e, p = C_I32(), C_I32()
    args = [ptr(sw, ctypes.c_float), sw.size, ctypes.byref(fd)]
    if op == "depthwise_conv_2d":
        args.append(depth_multiplier)
    st = getattr(lib, f"tt_{op}_backward_input_prepare")(
        *args, ptr(r, C_I32), ctypes.byref(s_e), ctypes.byref(p))
    assert st == 0
    return BackwardInputQuant(r, s_e.value, p.value)


def backward_input(lib, op, params, quant: BackwardInputQuant, grad, grad_exponent, filter,
                   input_shape, scratch=None):
    """→ (int8 input gradient, exponent), like the numpy kernel. scratch: an int32 array to
    pass as the kernel's scratch (default: exactly *_scratch_size bytes)."""
    grad = np.ascontiguousarray(grad, dtype=np.int8)
    filter = np.ascontiguousarray(filter, dtype=np.int8)
    r = np.ascontiguousarray(quant.r, dtype=np.int32)
    q = CBackwardInputQuant(ptr(r, C_I32), quant.s_e, quant.p)
    idims = dims(input_shape)
    if op == "fully_connected":
        gdims = dims(grad.reshape(-1, grad.shape[-1]).shape)
        fdims = dims(filter.reshape(filter.shape[0], -1).shape)
    else:
        gdims, fdims = dims(grad.shape), dims(filter.shape)
    size = getattr(lib, f"tt_{op}_backward_input_scratch_size")(ctypes.byref(idims))
    if scratch is None:
        scratch = np.zeros(size // 4, dtype=np.int32)
    assert scratch.dtype == np.int32 and scratch.nbytes >= size
    out = np.zeros(input_shape, dtype=np.int8)
    e = C_I32()
    ps = params_struct(params)
    st = getattr(lib, f"tt_{op}_backward_input")(
        ctypes.byref(ps), ctypes.byref(q), ctypes.byref(gdims), ptr(grad, ctypes.c_int8),
        int(grad_exponent), ctypes.byref(fdims), ptr(filter, ctypes.c_int8), ctypes.byref(idims),
        ptr(scratch, C_I32), ptr(out, ctypes.c_int8), ctypes.byref(e))
    assert st == 0, st
    return out, e.value


def update(lib, op, params, up: UpdateParams, input, grad, grad_exponent, filter, bias,
           prng_state, weight_velocity=None, bias_velocity=None) -> tuple[int, int]:
    """In place on filter / bias / velocities (C-contiguous numpy arrays); returns (status,
    new state). input None (bias-only update) passes NULL for both input and input_dims; a
    velocity None passes NULL."""
    for v in (weight_velocity, bias_velocity):
        assert v is None or (v.dtype == np.int32 and v.flags.c_contiguous)
    keep = []
    us = update_struct(up, keep)
    grad = np.ascontiguousarray(grad, dtype=np.int8)
    assert filter.flags.c_contiguous and (bias is None or bias.flags.c_contiguous)
    if op == "fully_connected":
        gdims, fdims = dims(grad.shape), dims(filter.reshape(filter.shape[0], -1).shape)
        in_shape = None if input is None else np.reshape(input, (grad.shape[0], -1)).shape
    else:
        gdims, fdims = dims(grad.shape), dims(filter.shape)
        in_shape = None if input is None else np.shape(input)
    if input is None:
        idims_ref = None
    else:
        input = np.ascontiguousarray(input, dtype=np.int8)
        idims = dims(in_shape)
        idims_ref = ctypes.byref(idims)
    st = ctypes.c_uint64(prng_state)
    ps = params_struct(params)
    status = getattr(lib, f"tt_{op}_update")(
        ctypes.byref(ps), ctypes.byref(us), idims_ref, ptr(input, ctypes.c_int8),
        ctypes.byref(gdims), ptr(grad, ctypes.c_int8), int(grad_exponent), ctypes.byref(fdims),
        ptr(filter, ctypes.c_int8), ptr(bias, C_I32), ptr(weight_velocity, C_I32),
        ptr(bias_velocity, C_I32), ctypes.byref(st))
    return int(status), int(st.value)
