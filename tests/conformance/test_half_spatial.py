"""float16 / bfloat16 through the pooling, fold/unfold and vision ops, whose kernels
compute in float32 or float64 (PyTorch's CPU kernels take both half types). Each runs
in float32 on the widened input and rounds once: the output, the indices and the input
gradient (of a half-type grad_output) are bit for bit ctorch's float32 results on the
widened tensors, rounded; values that need no arithmetic (maxima, nearest samples,
unfold's copies) and indices are PyTorch's exactly; output and gradient are no further
from the float64 results than PyTorch's half-type ones, plus one rounding."""
import ctypes

import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import case

I64 = ctypes.c_int64
I2 = I64 * 2
I3 = I64 * 3


class PoolOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("ceil_mode", ctypes.c_bool),
                ("count_include_pad_false", ctypes.c_bool), ("divisor_override", I64)]


class Conv3dOpts(ctypes.Structure):
    _fields_ = [("stride", I3), ("padding", I3), ("dilation", I3), ("groups", I64),
                ("padding_mode", ctypes.c_char_p), ("padding_fill", ctypes.c_char_p)]


POP = ctypes.POINTER(PoolOpts)
_max2 = ctorch.lib.declare("ct_nn_max_pool2d", "T", ["T", ctypes.POINTER(I64), POP, "T*"])
_max1 = ctorch.lib.declare("ct_nn_max_pool1d", "T", ["T", I64, POP, "T*"])
_avg2 = ctorch.lib.declare("ct_nn_avg_pool2d", "T", ["T", ctypes.POINTER(I64), POP])
_avg1 = ctorch.lib.declare("ct_nn_avg_pool1d", "T", ["T", I64, POP])
_aavg2 = ctorch.lib.declare("ct_nn_adaptive_avg_pool2d", "T(T,i64[])")
_aavg1 = ctorch.lib.declare("ct_nn_adaptive_avg_pool1d", "T(T,i64)")
_amax2 = ctorch.lib.declare("ct_nn_adaptive_max_pool2d", "T(T,i64[],T*)")
_amax1 = ctorch.lib.declare("ct_nn_adaptive_max_pool1d", "T(T,i64,T*)")
_unfold = ctorch.lib.declare("ct_nn_unfold", "T(T,i64[],i64[],i64[],i64[])")
_fold = ctorch.lib.declare("ct_nn_fold", "T(T,i64[],i64[],i64[],i64[],i64[])")
_interp = ctorch.lib.declare("ct_nn_interpolate", "T", ["T", ctypes.POINTER(I64), ctypes.POINTER(ctypes.c_double),
                                                        "s", ctypes.c_int, "b"])
_conv3d = ctorch.lib.declare("ct_nn_conv3d", "T", ["T", "T", "T", ctypes.POINTER(Conv3dOpts)])
_unpool2 = ctorch.lib.declare("ct_nn_max_unpool2d", "T", ["T", "T", ctypes.POINTER(I64), ctypes.POINTER(I64),
                                                          ctypes.POINTER(I64), ctypes.POINTER(I64)])


def popts(stride=(0, 0), padding=(0, 0), ceil=False, exclude_pad=False):
    return ctypes.byref(PoolOpts(I2(*stride), I2(*padding), I2(0, 0), ceil, exclude_pad, 0))


def interp(mode, size=None, scale=None, align=-1):
    s = (I64 * len(size))(*size) if size else None
    sc = (ctypes.c_double * len(scale))(*scale) if scale else None
    return lambda a: _interp(a, s, sc, mode, align, False)


# name, input shape, ctorch (tensor -> tensor or (tensor, indices)), torch, exact values
CASES = [
    ("max_pool2d", (2, 3, 9, 8), lambda a: _max2(a, I2(3, 3), popts((2, 2), (1, 1))),
     lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True), True),
    ("max_pool1d", (2, 3, 11), lambda a: _max1(a, 3, popts((2, 0))),
     lambda x: F.max_pool1d(x, 3, 2, return_indices=True), True),
    ("avg_pool2d", (2, 3, 9, 8), lambda a: _avg2(a, I2(3, 3), popts((2, 2), (1, 1), ceil=True, exclude_pad=True)),
     lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), False),
    ("avg_pool1d", (2, 3, 11), lambda a: _avg1(a, 3, popts((2, 0))), lambda x: F.avg_pool1d(x, 3, 2), False),
    ("adaptive_avg_pool2d", (2, 3, 7, 5), lambda a: _aavg2(a, [3, 2]), lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
     False),
    ("adaptive_avg_pool2d", (2, 3, 6, 4), lambda a: _aavg2(a, [1, 1]), lambda x: F.adaptive_avg_pool2d(x, 1), False),
    ("adaptive_avg_pool1d", (2, 3, 11), lambda a: _aavg1(a, 4), lambda x: F.adaptive_avg_pool1d(x, 4), False),
    ("adaptive_max_pool2d", (2, 3, 7, 8), lambda a: _amax2(a, [3, 3]),
     lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True), True),
    ("adaptive_max_pool1d", (2, 3, 11), lambda a: _amax1(a, 4),
     lambda x: F.adaptive_max_pool1d(x, 4, return_indices=True), True),
    ("unfold", (2, 3, 7, 6), lambda a: _unfold(a, [3, 3], [1, 1], [1, 1], [2, 2]),
     lambda x: F.unfold(x, 3, padding=1, stride=2), True),
    ("fold", (2, 18, 28), lambda a: _fold(a, [6, 7], [2, 3], [1, 1], [1, 1], [2, 1]),
     lambda x: F.fold(x, (6, 7), (2, 3), padding=1, stride=(2, 1)), False),
    ("interpolate", (2, 3, 5, 4), interp("nearest", size=[7, 9]), lambda x: F.interpolate(x, size=(7, 9)), True),
    ("interpolate", (2, 3, 5, 4), interp("bilinear", scale=[1.7, 2.0], align=0),
     lambda x: F.interpolate(x, scale_factor=(1.7, 2.0), mode="bilinear", align_corners=False), False),
    ("interpolate", (2, 3, 5, 4), interp("bicubic", size=[8, 6], align=1),
     lambda x: F.interpolate(x, size=(8, 6), mode="bicubic", align_corners=True), False),
    ("interpolate", (2, 3, 7), interp("linear", size=[12], align=0),
     lambda x: F.interpolate(x, size=12, mode="linear", align_corners=False), False),
    ("interpolate", (2, 3, 7, 9), interp("area", size=[3, 4]), lambda x: F.interpolate(x, size=(3, 4), mode="area"),
     False),
]


def ct_run(fn, x, go, dtype):
    """ctorch on x in dtype: output, indices or None, and the input gradient of go."""
    cx = ctorch.from_torch(x.to(dtype), requires_grad=True)
    r = fn(cx)
    y, idx = r if isinstance(r, tuple) else (r, None)
    y.backward(ctorch.from_torch(go.to(dtype)))
    return y.torch(), None if idx is None else idx.torch(), cx.grad.torch()


def torch_run(tf, x, go, dtype):
    a = x.to(dtype).detach().requires_grad_()
    r = tf(a)
    y, idx = r if isinstance(r, tuple) else (r, None)
    y.backward(go.to(dtype))
    return y.detach(), idx, a.grad


def same_bits(a, b):
    return a.shape == b.shape and bool((a.view(torch.int16) == b.view(torch.int16)).all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("k", range(len(CASES)))
def test_half_types(k, dtype):
    name, shape, cf, tf, exact = CASES[k]
    g = torch.Generator().manual_seed(k)
    x = (torch.randn(shape, generator=g) * 3).to(dtype)
    if name.startswith("max_pool") or name.startswith("adaptive_max"):
        x.view(-1)[::7] = x.view(-1)[1::7]  # ties in some windows: the first index wins
    with torch.no_grad():
        y32 = tf(x.float())
        go = (torch.randn((y32[0] if isinstance(y32, tuple) else y32).shape, generator=g)).to(dtype)
    with case(name):
        yh, ih, gh = ct_run(cf, x, go, dtype)
        yf, i_f, gf = ct_run(cf, x, go, torch.float32)
        assert yh.dtype == dtype and gh.dtype == dtype, (yh.dtype, gh.dtype)
        assert same_bits(yh, yf.to(dtype)), f"{name}: output differs from float32 rounded"
        assert same_bits(gh, gf.to(dtype)), f"{name}: gradient differs from float32 rounded"
        yt, it, gt = torch_run(tf, x, go, dtype)
        if it is not None:
            assert torch.equal(ih, it) and torch.equal(ih, i_f), f"{name}: indices"
        if exact:
            assert same_bits(yh, yt), f"{name}: values differ from PyTorch's"
        y64, _, g64 = torch_run(tf, x, go, torch.float64)
        for what, ours, theirs, ref in (("output", yh, yt, y64), ("gradient", gh, gt, g64)):
            err = (ours.double() - ref).abs().max().item()
            terr = (theirs.double() - ref).abs().max().item()
            one = torch.finfo(dtype).eps * ref.abs().max().item()
            assert err <= terr + one, f"{name} {what}: error {err:.3g}, PyTorch's {terr:.3g}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_conv3d_half(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 6, 5, generator=g).to(dtype)
    w = torch.randn(6, 2, 3, 2, 3, generator=g).to(dtype)
    b = torch.randn(6, generator=g).to(dtype)
    kw = dict(stride=(2, 1, 1), padding=(1, 0, 1), groups=2)
    o = ctypes.byref(Conv3dOpts(I3(2, 1, 1), I3(1, 0, 1), I3(1, 1, 1), 2, None, None))
    with torch.no_grad():
        go = torch.randn(F.conv3d(x.float(), w.float(), b.float(), **kw).shape, generator=g).to(dtype)
    res = []
    for t in (dtype, torch.float32):
        cx, cw, cb = (ctorch.from_torch(v.to(t), requires_grad=True) for v in (x, w, b))
        y = _conv3d(cx, cw, cb, o)
        y.backward(ctorch.from_torch(go.to(t)))
        res.append([v.torch().to(dtype) for v in (y, cx.grad, cw.grad, cb.grad)])
    with case("conv3d"):
        for k, (h, f32) in enumerate(zip(*res)):
            assert same_bits(h, f32), f"conv3d output {k}: differs from float32 rounded"

        def torch_results(t):
            a = [v.to(t).detach().requires_grad_() for v in (x, w, b)]
            y = F.conv3d(*a, **kw)
            y.backward(go.to(t))
            return [y.detach().double()] + [v.grad.double() for v in a]
        for k, (ours, tg, ref) in enumerate(zip(res[0], torch_results(dtype), torch_results(torch.float64))):
            err, terr = (ours.double() - ref).abs().max().item(), (tg - ref).abs().max().item()
            assert err <= terr + torch.finfo(dtype).eps * ref.abs().max().item(), f"conv3d output {k}: {err:.3g} vs {terr:.3g}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_max_unpool2d_half(dtype):
    """max_unpool scatters the half-type values as they are: PyTorch's bits."""
    x = torch.randn(2, 3, 8, 6).to(dtype)
    v, idx = F.max_pool2d(x, 2, return_indices=True)
    with case("max_unpool2d"):
        got = _unpool2(ctorch.from_torch(v), ctorch.from_torch(idx), I2(2, 2), None, None, None).torch()
        assert same_bits(got, F.max_unpool2d(v, idx, 2))


def test_integer_inputs_refused():
    """Integer inputs stay refused, as PyTorch refuses them."""
    x = torch.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    for name, fn in (("max_pool2d", lambda a: _max2(a, I2(2, 2), None)), ("avg_pool2d", lambda a: _avg2(a, I2(2, 2), None)),
                     ("unfold", lambda a: _unfold(a, [2, 2], [1, 1], [0, 0], [1, 1]))):
        with case(name):
            with pytest.raises(ctorch.CtorchError, match="not implemented for 'Long'"):
                fn(ctorch.from_torch(x))
