"""Pooling against torch.nn.functional: max_pool1d/2d (with indices), avg_pool1d/2d
(ceil_mode, count_include_pad, divisor_override), adaptive_avg_pool2d; values,
gradients, errors, gradcheck and gradgradcheck."""
import ctypes

import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import check, check_error, gradcheck, gradgradcheck

I2 = ctypes.c_int64 * 2


class PoolOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("ceil_mode", ctypes.c_bool),
                ("count_include_pad_false", ctypes.c_bool), ("divisor_override", ctypes.c_int64)]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def popts(kw):
    return PoolOpts(I2(*pair(kw.get("stride", 0))), I2(*pair(kw.get("padding", 0))), I2(*pair(kw.get("dilation", 0))),
                    kw.get("ceil_mode", False), not kw.get("count_include_pad", True), kw.get("divisor_override") or 0)


def popts1(kw):
    return PoolOpts(I2(kw.get("stride", 0), 0), I2(kw.get("padding", 0), 0), I2(kw.get("dilation", 0), 0),
                    kw.get("ceil_mode", False), not kw.get("count_include_pad", True), kw.get("divisor_override") or 0)


_max2 = ctorch._raw("ct_nn_max_pool2d", ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64),
                    ctypes.POINTER(PoolOpts), ctypes.POINTER(ctypes.c_void_p))
_avg2 = ctorch._raw("ct_nn_avg_pool2d", ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64),
                    ctypes.POINTER(PoolOpts))
_max1 = ctorch._raw("ct_nn_max_pool1d", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(PoolOpts),
                    ctypes.POINTER(ctypes.c_void_p))
_avg1 = ctorch._raw("ct_nn_avg_pool1d", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(PoolOpts))


def max2(x, k, o, with_idx=False):
    ctorch.lib.ct_clear_error()
    idx = ctypes.c_void_p()
    r = ctorch.Tensor(_max2(x.ptr, I2(*k), ctypes.byref(o), ctypes.byref(idx) if with_idx else None))
    return (r, ctorch.Tensor(idx.value)) if with_idx else r


def avg2(x, k, o):
    ctorch.lib.ct_clear_error()
    return ctorch.Tensor(_avg2(x.ptr, I2(*k), ctypes.byref(o)))


MAXP = [((2, 3, 8, 7), 2, {}), ((2, 3, 9, 9), 3, dict(stride=2, padding=1)), ((3, 7, 8), (2, 3), dict(ceil_mode=True)),
        ((1, 2, 10, 9), 3, dict(stride=2, dilation=2, padding=1, ceil_mode=True)), ((2, 2, 5, 5), 5, {})]


@pytest.mark.parametrize("k", range(len(MAXP)))
def test_max_pool2d(k):
    xs, ks, kw = MAXP[k]
    x = torch.randn(xs, dtype=torch.float64)
    o = popts(kw)
    check("max_pool2d", lambda a: max2(a, pair(ks), o, True),
          lambda a: F.max_pool2d(a, ks, return_indices=True, **kw), [x])
    check("max_pool2d", lambda a: max2(a, pair(ks), o), lambda a: F.max_pool2d(a, ks, **kw), [x.float()])
    gradcheck("max_pool2d", lambda a: max2(a, pair(ks), o), [x])
    gradgradcheck("max_pool2d", lambda a: max2(a, pair(ks), o), [x])


@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_nan_and_ties(k, dtype):
    """NaN wins and a window's last NaN gives the index; ties keep the first maximum
    (the 2x2 fast path and the general loop)."""
    xs, ks, kw = MAXP[k]
    x = torch.randn(xs, dtype=dtype)
    x.view(-1)[::7] = float("nan")
    x.view(-1)[3::11] = 0.5  # ties
    x.view(-1)[4::11] = 0.5
    o = popts(kw)
    check("max_pool2d", lambda a: max2(a, pair(ks), o, True),
          lambda a: F.max_pool2d(a, ks, return_indices=True, **kw), [x], grad=False)


@pytest.mark.parametrize("w", [2, 3, 14, 15, 28, 31, 32, 33, 34, 64, 66, 95])
@pytest.mark.parametrize("k,kw", [(2, {}), (3, dict(stride=2, padding=1)), (3, dict(stride=1, padding=1, dilation=2)),
                                  (2, dict(stride=1, ceil_mode=True))])
def test_max_pool2d_row_widths(w, k, kw):
    """Rows at widths around the vector steps: the 2x2/stride-2 rows (one masked 16-window
    step, full steps, full plus a masked tail) and the general windows' inner columns
    (padded edge columns apart), float32 with NaN, ties and -inf."""
    if (k - 1) * kw.get("dilation", 1) + 1 > w + 2 * kw.get("padding", 0):
        pytest.skip("window wider than the padded row")
    x = torch.randn(2, 3, 5, w)
    x.view(-1)[::7] = float("nan")
    x.view(-1)[3::11] = 0.5
    x.view(-1)[4::11] = 0.5
    x.view(-1)[5::13] = float("-inf")
    o = popts(kw)
    check("max_pool2d", lambda a: max2(a, (k, k), o, True),
          lambda a: F.max_pool2d(a, k, return_indices=True, **kw), [x], grad=False)


AVGP = [((2, 3, 8, 7), 2, {}), ((2, 3, 9, 9), 3, dict(stride=2, padding=1)),
        ((2, 3, 9, 9), 3, dict(stride=2, padding=1, count_include_pad=False)),
        ((3, 7, 8), (2, 3), dict(ceil_mode=True)), ((1, 2, 10, 9), 3, dict(stride=2, padding=1, ceil_mode=True)),
        ((1, 2, 10, 9), 3, dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
        ((2, 2, 6, 6), 2, dict(divisor_override=3)), ((2, 2, 7, 7), 3, dict(stride=3)),
        # column sums per output row: large and non-square windows, rows wider than a
        # vector, padding on one side only through ceil_mode, enough planes for threads
        ((4, 16, 56, 56), 7, {}), ((2, 3, 13, 40), (5, 2), dict(stride=(3, 1), padding=(2, 1))),
        ((1, 3, 11, 37), (4, 6), dict(stride=(2, 5), ceil_mode=True, count_include_pad=False)),
        ((2, 64, 16, 16), 3, dict(stride=1, padding=1))]


@pytest.mark.parametrize("k", range(len(AVGP)))
def test_avg_pool2d(k):
    xs, ks, kw = AVGP[k]
    x = torch.randn(xs, dtype=torch.float64)
    o = popts(kw)
    check("avg_pool2d", lambda a: avg2(a, pair(ks), o), lambda a: F.avg_pool2d(a, ks, **kw), [x])
    check("avg_pool2d", lambda a: avg2(a, pair(ks), o), lambda a: F.avg_pool2d(a, ks, **kw), [x.float()])
    if x.numel() <= 2000:  # gradcheck's Jacobian is numel x outputs
        gradcheck("avg_pool2d", lambda a: avg2(a, pair(ks), o), [x])


def test_pool1d():
    x = torch.randn(2, 3, 11, dtype=torch.float64)
    for kw in ({}, dict(stride=2, padding=1), dict(ceil_mode=True, stride=2)):
        o = popts1(kw)

        def mx(a, o=o):
            ctorch.lib.ct_clear_error()
            return ctorch.Tensor(_max1(a.ptr, 3, ctypes.byref(o), None))

        def av(a, o=o):
            ctorch.lib.ct_clear_error()
            return ctorch.Tensor(_avg1(a.ptr, 3, ctypes.byref(o)))
        check("max_pool1d", mx, lambda a: F.max_pool1d(a, 3, **kw), [x])
        check("avg_pool1d", av, lambda a: F.avg_pool1d(a, 3, **kw), [x])
        gradcheck("max_pool1d", mx, [x])
        gradcheck("avg_pool1d", av, [x])


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 2), (4, 4)])
def test_adaptive_avg_pool2d(size):
    f = ctorch.lib.declare("ct_nn_adaptive_avg_pool2d", "T(T,i64[])")
    x = torch.randn(2, 3, 8, 7, dtype=torch.float64)
    check("adaptive_avg_pool2d", lambda a: f(a, size), lambda a: F.adaptive_avg_pool2d(a, size), [x])
    gradcheck("adaptive_avg_pool2d", lambda a: f(a, size), [x])


def test_adaptive_avg_pool2d_global():
    """output (1, 1): each plane's mean, through the row reduction (3-D and 4-D, float32)"""
    f = ctorch.lib.declare("ct_nn_adaptive_avg_pool2d", "T(T,i64[])")
    for shape in ((4, 16, 56, 56), (5, 9, 9), (2, 512, 7, 7)):
        x = torch.randn(shape)
        check("adaptive_avg_pool2d", lambda a: f(a, (1, 1)), lambda a: F.adaptive_avg_pool2d(a, (1, 1)), [x])


def test_pool_errors():
    x = torch.randn(1, 2, 4, 4)
    o = popts(dict(padding=2))
    check_error("max_pool2d", lambda a: max2(a, (2, 2), o), lambda a: F.max_pool2d(a, 2, padding=2), [x])
    o = popts({})
    check_error("max_pool2d", lambda a: max2(a, (5, 5), o), lambda a: F.max_pool2d(a, 5), [x])
    check_error("avg_pool2d", lambda a: avg2(a, (2, 2), o), lambda a: F.avg_pool2d(a, 2), [torch.randn(4)])
