"""Vision layers against torch.nn / torch.nn.functional: conv3d, conv_transpose1d/2d
options, max_unpool1d/2d, adaptive avg/max pooling, interpolate (nearest,
nearest-exact, linear, bilinear), pixel_shuffle/unshuffle, and the modules Conv3d,
ConvTranspose1d/2d, MaxPool1d, AvgPool1d, MaxUnpool1d/2d, AdaptiveAvgPool1d,
AdaptiveMaxPool1d/2d, Upsample, UpsamplingNearest2d, UpsamplingBilinear2d,
PixelShuffle, PixelUnshuffle, Fold, Unfold: values, gradients of inputs and parameters,
errors, gradcheck / gradgradcheck in float64, initialisation under the same seed,
state_dict names and reprs."""
import ctypes
import itertools

import pytest
import torch
import torch.nn.functional as F

import ctorch
from ctorch import module
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck

nn = torch.nn
P = ctypes.c_void_p
I64 = ctypes.c_int64
I2 = I64 * 2
I3 = I64 * 3
D3 = ctypes.c_double * 3
I64P = ctypes.POINTER(I64)
DP = ctypes.POINTER(ctypes.c_double)


class Conv3dOpts(ctypes.Structure):
    _fields_ = [("stride", I3), ("padding", I3), ("dilation", I3), ("groups", I64),
                ("padding_mode", ctypes.c_char_p), ("padding_fill", ctypes.c_char_p)]


class ConvOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("groups", I64),
                ("output_padding", I2), ("padding_mode", ctypes.c_char_p), ("padding_fill", ctypes.c_char_p)]


class PoolOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("ceil_mode", ctypes.c_bool),
                ("count_include_pad_false", ctypes.c_bool), ("divisor_override", I64)]


def triple(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


def pair(v):
    return (v,) * 2 if isinstance(v, int) else tuple(v)


def c3opts(kw):
    pad = kw.get("padding", 0)
    mode = pad.encode() if isinstance(pad, str) else None
    pad = (0, 0, 0) if isinstance(pad, str) else triple(pad)
    fill = kw.get("padding_mode")
    return Conv3dOpts(I3(*triple(kw.get("stride", 1))), I3(*pad), I3(*triple(kw.get("dilation", 1))),
                      kw.get("groups", 1), mode, fill.encode() if fill and fill != "zeros" else None)


def c2opts(kw, dims=2):
    f = pair if dims == 2 else (lambda v: (v if isinstance(v, int) else v[0], 0))
    return ConvOpts(I2(*f(kw.get("stride", 1))), I2(*f(kw.get("padding", 0))), I2(*f(kw.get("dilation", 1))),
                    kw.get("groups", 1), I2(*f(kw.get("output_padding", 0))), None, None)


KEEP = []  # ctypes option structs referenced by module constructors until the end


def ptr(o):
    KEEP.append(o)
    return ctypes.pointer(o)


_conv3d = ctorch.lib.declare("ct_nn_conv3d", "T", ["T", "T", "T", ctypes.POINTER(Conv3dOpts)])
_convt2 = ctorch.lib.declare("ct_nn_conv_transpose2d", "T", ["T", "T", "T", ctypes.POINTER(ConvOpts)])
_convt1 = ctorch.lib.declare("ct_nn_conv_transpose1d", "T", ["T", "T", "T", ctypes.POINTER(ConvOpts)])
_unpool2 = ctorch.lib.declare("ct_nn_max_unpool2d", "T", ["T", "T", I64P, I64P, I64P, I64P])
_unpool1 = ctorch.lib.declare("ct_nn_max_unpool1d", "T(T,T,i64,i64,i64,i64)")
_aavg1 = ctorch.lib.declare("ct_nn_adaptive_avg_pool1d", "T(T,i64)")
_amax1 = ctorch.lib.declare("ct_nn_adaptive_max_pool1d", "T(T,i64,T*)")
_amax2 = ctorch.lib.declare("ct_nn_adaptive_max_pool2d", "T(T,i64[],T*)")
_max2 = ctorch.lib.declare("ct_nn_max_pool2d", "T", ["T", I64P, ctypes.POINTER(PoolOpts), "T*"])
_max1 = ctorch.lib.declare("ct_nn_max_pool1d", "T", ["T", I64, ctypes.POINTER(PoolOpts), "T*"])
_interp = ctorch.lib.declare("ct_nn_interpolate", "T", ["T", I64P, DP, "s", ctypes.c_int, "b"])
_shuffle = ctorch.lib.declare("ct_nn_pixel_shuffle", "T(T,i64)")
_unshuffle = ctorch.lib.declare("ct_nn_pixel_unshuffle", "T(T,i64)")
seed = ctorch.lib.declare("ct_manual_seed", "v(i64)")
backward = ctorch.lib.declare("ct_backward", "st(T,T,b,b)")
grad_of = ctorch.lib.declare("ct_grad", "T&(T)")
_fwd_n = ctorch._raw("ct_module_forward_n", ctypes.c_int, P, ctypes.c_int, ctypes.POINTER(P), ctypes.c_int,
                     ctypes.POINTER(P))


def forward_n(m, inputs, n_out):
    """ct_module_forward_n: inputs (ctorch Tensors or None) -> list of outputs."""
    ins = [ctorch.as_tensor(x) if x is not None else None for x in inputs]
    arr = (P * len(ins))(*[x.ptr if x is not None else None for x in ins])
    outs = (P * n_out)()
    ctorch.lib.ct_clear_error()
    rc = _fwd_n(m._p, len(ins), arr, n_out, outs)
    if rc < 0:
        raise ctorch.CtorchError(ctorch.lib.ct_last_error())
    return [ctorch.Tensor(outs[i]) for i in range(rc)]


def conv3d(x, w, b, kw):
    return _conv3d(x, w, b, ctypes.byref(c3opts(kw)))


# ================================ conv3d ================================
CONV3D = [
    ((2, 4, 5, 6, 7), (6, 4, 3, 3, 3), {}),
    ((2, 4, 5, 6, 7), (6, 4, 3, 3, 3), dict(padding=1)),
    ((2, 4, 7, 6, 7), (6, 2, 3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 0, 2), dilation=(1, 2, 1), groups=2)),
    ((1, 3, 6, 5, 6), (4, 3, 2, 3, 2), dict(padding="same")),
    ((1, 3, 6, 5, 6), (4, 3, 2, 2, 3), dict(padding="same", dilation=(2, 1, 2))),
    ((1, 3, 6, 5, 6), (4, 3, 2, 3, 2), dict(padding="valid")),
    ((2, 6, 4, 5, 5), (6, 1, 1, 3, 3), dict(groups=6, stride=2)),
    ((3, 4, 4, 5), (5, 3, 2, 2, 2), dict(stride=(1, 2, 1))),      # unbatched
    ((2, 2, 3, 3, 3), (2, 2, 3, 3, 3), dict(dilation=1)),          # kernel the size of the input
]


@pytest.mark.parametrize("k", range(len(CONV3D)))
@pytest.mark.parametrize("bias", [True, False])
def test_conv3d(k, bias):
    xs, ws, kw = CONV3D[k]
    g = torch.Generator().manual_seed(k)
    x = torch.randn(xs, generator=g)
    w = torch.randn(ws, generator=g)
    b = torch.randn(ws[0], generator=g) if bias else None
    ins = [x, w] + ([b] if bias else [])
    # float32 gradients are sums of up to 420 products with values up to 65: against the float64
    # truth PyTorch's own float32 gradients are off by up to 1.1e-5 and ours by up to 2.8e-5
    # (oneDNN sums in another order, which also changes with the CPU's ISA), so the default atol
    # of 1e-5 between the two is below either's rounding; 1e-4 is 1.5e-6 of the largest value.
    # The float64 run below holds the arithmetic itself to the tight default.
    check("conv3d", lambda a, c, *r: conv3d(a, c, r[0] if r else None, kw),
          lambda a, c, *r: F.conv3d(a, c, r[0] if r else None, **kw), ins, grad_atol=1e-4)
    # float64: the same case with input, weight and bias gradients at double precision
    check("conv3d", lambda a, c, *r: conv3d(a, c, r[0] if r else None, kw),
          lambda a, c, *r: F.conv3d(a, c, r[0] if r else None, **kw), [t.double() for t in ins])


def test_conv3d_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 3, 4, 3, dtype=torch.float64, generator=g)
    w = torch.randn(2, 1, 2, 2, 2, dtype=torch.float64, generator=g)
    b = torch.randn(2, dtype=torch.float64, generator=g)
    kw = dict(stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1), groups=2)
    gradcheck("conv3d", lambda a, c, d: conv3d(a, c, d, kw), [x, w, b])
    gradgradcheck("conv3d", lambda a, c, d: conv3d(a, c, d, kw), [x, w, b])
    kw = dict(padding="same")
    w2 = torch.randn(3, 2, 2, 3, 2, dtype=torch.float64, generator=g)
    gradcheck("conv3d", lambda a, c: conv3d(a, c, None, kw), [x, w2])


def test_conv3d_errors():
    x = torch.randn(1, 4, 5, 5, 5)
    w = torch.randn(6, 4, 3, 3, 3)
    check_error("conv3d", lambda a, c: conv3d(a, c, None, {}), lambda a, c: F.conv3d(a, c), [x, torch.randn(6, 4, 3, 3)])
    check_error("conv3d", lambda a, c: conv3d(a, c, None, {}), lambda a, c: F.conv3d(a, c),
                [torch.randn(1, 3, 5, 5, 5), w])
    check_error("conv3d", lambda a, c: conv3d(a, c, None, {}), lambda a, c: F.conv3d(a, c),
                [torch.randn(1, 4, 2, 5, 5), w])
    check_error("conv3d", lambda a, c: conv3d(a, c, None, {}), lambda a, c: F.conv3d(a, c), [torch.randn(4, 5, 5), w])
    kw = dict(padding="same", stride=2)
    check_error("conv3d", lambda a, c: conv3d(a, c, None, kw), lambda a, c: F.conv3d(a, c, **kw), [x, w])
    kw = dict(groups=4)
    check_error("conv3d", lambda a, c: conv3d(a, c, None, kw), lambda a, c: F.conv3d(a, c, **kw), [x, w])
    check_error("conv3d", lambda a, c, d: conv3d(a, c, d, {}), lambda a, c, d: F.conv3d(a, c, d),
                [x, w, torch.randn(5)])
    with case("conv3d"):
        with pytest.raises(ctorch.CtorchError, match="Invalid padding string"):
            conv3d(ctorch.from_torch(x), ctorch.from_torch(w), None, dict(padding="full"))
        with pytest.raises(ctorch.CtorchError, match="not implemented"):
            conv3d(ctorch.from_torch(x.long()), ctorch.from_torch(w.long()), None, {})


# ============================ conv_transpose options ============================
CONVT2 = [
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 4, 5, 6), (4, 2, 3, 2), dict(stride=(2, 3), output_padding=(1, 2), groups=2)),
    ((1, 6, 4, 4), (6, 1, 3, 3), dict(stride=2, dilation=2, output_padding=1, groups=3, padding=2)),
    ((4, 3, 5), (4, 5, 2, 3), dict(stride=(1, 2), dilation=(2, 1))),
]


@pytest.mark.parametrize("k", range(len(CONVT2)))
def test_conv_transpose2d_options(k):
    xs, ws, kw = CONVT2[k]
    g = torch.Generator().manual_seed(k)
    x, w = torch.randn(xs, dtype=torch.float64, generator=g), torch.randn(ws, dtype=torch.float64, generator=g)
    b = torch.randn(ws[1] * kw.get("groups", 1), dtype=torch.float64, generator=g)
    o = c2opts(kw)
    f = lambda a, c, d: _convt2(a, c, d, ctypes.byref(o))  # noqa: E731
    check("conv_transpose2d", f, lambda a, c, d: F.conv_transpose2d(a, c, d, **kw), [x, w, b])
    check("conv_transpose2d", f, lambda a, c, d: F.conv_transpose2d(a, c, d, **kw), [x.float(), w.float(), b.float()])
    gradcheck("conv_transpose2d", f, [x[..., :3, :3].contiguous(), w, b])


@pytest.mark.parametrize("kw", [dict(stride=3, padding=1, output_padding=2), dict(groups=2, dilation=3),
                                dict(stride=2, output_padding=1, dilation=2, groups=2)])
def test_conv_transpose1d_options(kw):
    x, w = torch.randn(2, 4, 6, dtype=torch.float64), torch.randn(4, 3, 3, dtype=torch.float64)
    b = torch.randn(3 * kw.get("groups", 1), dtype=torch.float64)
    o = c2opts(kw, 1)
    f = lambda a, c, d: _convt1(a, c, d, ctypes.byref(o))  # noqa: E731
    check("conv_transpose1d", f, lambda a, c, d: F.conv_transpose1d(a, c, d, **kw), [x, w, b])
    gradcheck("conv_transpose1d", f, [x, w, b])


def test_conv_transpose_errors():
    x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 3, 3, 3)
    kw = dict(stride=2, output_padding=2)
    o = c2opts(kw)
    check_error("conv_transpose2d", lambda a, c: _convt2(a, c, None, ctypes.byref(o)),
                lambda a, c: F.conv_transpose2d(a, c, **kw), [x, w])
    o2 = c2opts({})
    check_error("conv_transpose2d", lambda a, c: _convt2(a, c, None, ctypes.byref(o2)),
                lambda a, c: F.conv_transpose2d(a, c), [torch.randn(1, 3, 5, 5), w])


# ================================ unpooling ================================
UNPOOL2 = [((2, 3, 8, 6), 2, {}, None), ((2, 3, 8, 7), 2, {}, (8, 7)),
           ((2, 3, 9, 9), 3, dict(stride=2, padding=1), None), ((3, 8, 9), (2, 3), dict(stride=(2, 3)), None),
           ((1, 2, 8, 8), 2, {}, (9, 9)), ((1, 2, 7, 7), 3, dict(stride=2), (8, 8))]


def popts(kw):
    return PoolOpts(I2(*pair(kw.get("stride", 0))), I2(*pair(kw.get("padding", 0))), I2(0, 0), False, False, 0)


@pytest.mark.parametrize("k", range(len(UNPOOL2)))
def test_max_unpool2d(k):
    xs, ks, kw, osz = UNPOOL2[k]
    x = torch.randn(xs, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    v, idx = F.max_pool2d(x, ks, return_indices=True, **kw)
    st = pair(kw.get("stride", ks))
    pd = pair(kw.get("padding", 0))

    def f(a, i):
        return _unpool2(a, i, I2(*pair(ks)), I2(*st), I2(*pd), I2(*osz) if osz else None)
    check("max_unpool2d", f, lambda a, i: F.max_unpool2d(a, i, ks, output_size=osz, **kw), [v, idx])
    check("max_unpool2d", f, lambda a, i: F.max_unpool2d(a, i, ks, output_size=osz, **kw), [v.float(), idx])
    if idx.flatten(2).sort(-1).values.diff(dim=-1).ne(0).all():
        # (overlapping windows can share a maximum: a repeated index keeps one value, its
        # numerical derivative is 0 for the others while torch's and ctorch's are 1)
        gradcheck("max_unpool2d", lambda a: f(a, ctorch.from_torch(idx)), [v])
        gradgradcheck("max_unpool2d", lambda a: f(a, ctorch.from_torch(idx)), [v])
    # round trip through ctorch's own max_pool2d indices
    with case("max_unpool2d"):
        o = popts(kw)
        cv, ci = _max2(ctorch.from_torch(x), I2(*pair(ks)), ctypes.byref(o))
        assert_same(f(cv, ci), F.max_unpool2d(v, idx, ks, output_size=osz, **kw))


@pytest.mark.parametrize("kw,osz", [({}, 0), (dict(stride=2, padding=1), 0), (dict(stride=3), 14)])
def test_max_unpool1d(kw, osz):
    x = torch.randn(2, 3, 13, dtype=torch.float64)
    v, idx = F.max_pool1d(x, 3, return_indices=True, **kw)
    st, pd = kw.get("stride", 0), kw.get("padding", 0)
    f = lambda a, i: _unpool1(a, i, 3, st, pd, osz)  # noqa: E731
    check("max_unpool1d", f, lambda a, i: F.max_unpool1d(a, i, 3, output_size=[osz] if osz else None, **kw), [v, idx])
    check("max_unpool1d", f, lambda a, i: F.max_unpool1d(a, i, 3, output_size=[osz] if osz else None, **kw),
          [v[0], idx[0]])  # unbatched
    if idx.sort(-1).values.diff(dim=-1).ne(0).all():  # no repeated index (see max_unpool2d)
        gradcheck("max_unpool1d", lambda a: f(a, ctorch.from_torch(idx)), [v])


def test_max_unpool_errors():
    v, idx = F.max_pool2d(torch.randn(1, 2, 4, 4), 2, return_indices=True)
    k2 = I2(2, 2)
    check_error("max_unpool2d", lambda a, i: _unpool2(a, i, k2, None, None, None),
                lambda a, i: F.max_unpool2d(a, i, 2), [v, idx + 100])
    check_error("max_unpool2d", lambda a, i: _unpool2(a, i, k2, None, None, None),
                lambda a, i: F.max_unpool2d(a, i, 2), [v, idx[..., :1]])
    check_error("max_unpool2d", lambda a, i: _unpool2(a, i, k2, None, None, I2(9, 4)),
                lambda a, i: F.max_unpool2d(a, i, 2, output_size=(9, 4)), [v, idx])
    check_error("max_unpool2d", lambda a, i: _unpool2(a, i, k2, None, None, None),
                lambda a, i: F.max_unpool2d(a, i, 2), [v, idx.int()])
    check_error("max_unpool1d", lambda a, i: _unpool1(a, i, 2, 0, 0, 0),
                lambda a, i: F.max_unpool1d(a, i, 2), [v.flatten(2), idx.flatten(2) * 10 + 5])


# ================================ adaptive pooling ================================
@pytest.mark.parametrize("xs,osz", [((2, 3, 8, 7), (3, 2)), ((2, 3, 8, 7), (1, 1)), ((2, 3, 8, 7), (4, 7)),
                                    ((3, 5, 5), (3, 3)), ((1, 2, 6, 9), (6, 9)), ((1, 2, 5, 4), (7, 6))])
def test_adaptive_max_pool2d(xs, osz):
    x = torch.randn(xs, dtype=torch.float64)
    check("adaptive_max_pool2d", lambda a: _amax2(a, list(osz)),
          lambda a: F.adaptive_max_pool2d(a, osz, return_indices=True), [x])
    check("adaptive_max_pool2d", lambda a: _amax2(a, list(osz))[0], lambda a: F.adaptive_max_pool2d(a, osz),
          [x.float()])
    gradcheck("adaptive_max_pool2d", lambda a: _amax2(a, list(osz))[0], [x])
    gradgradcheck("adaptive_max_pool2d", lambda a: _amax2(a, list(osz))[0], [x])


@pytest.mark.parametrize("xs,L", [((2, 3, 11), 4), ((2, 3, 11), 1), ((3, 10), 5), ((1, 2, 4), 7)])
def test_adaptive_pool1d(xs, L):
    x = torch.randn(xs, dtype=torch.float64)
    check("adaptive_max_pool1d", lambda a: _amax1(a, L), lambda a: F.adaptive_max_pool1d(a, L, return_indices=True), [x])
    check("adaptive_avg_pool1d", lambda a: _aavg1(a, L), lambda a: F.adaptive_avg_pool1d(a, L), [x])
    check("adaptive_avg_pool1d", lambda a: _aavg1(a, L), lambda a: F.adaptive_avg_pool1d(a, L), [x.float()])
    gradcheck("adaptive_max_pool1d", lambda a: _amax1(a, L)[0], [x])
    gradcheck("adaptive_avg_pool1d", lambda a: _aavg1(a, L), [x])


def test_adaptive_pool_errors():
    check_error("adaptive_max_pool2d", lambda a: _amax2(a, [2, 2]), lambda a: F.adaptive_max_pool2d(a, 2),
                [torch.randn(4, 4)])
    check_error("adaptive_max_pool2d", lambda a: _amax2(a, [2, 2]), lambda a: F.adaptive_max_pool2d(a, 2),
                [torch.randn(1, 2, 0, 4)])
    check_error("adaptive_max_pool1d", lambda a: _amax1(a, 2), lambda a: F.adaptive_max_pool1d(a, 2),
                [torch.randn(1, 2, 3, 4)])
    check_error("adaptive_avg_pool1d", lambda a: _aavg1(a, 2), lambda a: F.adaptive_avg_pool1d(a, 2),
                [torch.randn(5)])
    with case("adaptive_max_pool2d"):
        with pytest.raises(ctorch.CtorchError):
            _amax2(ctorch.from_torch(torch.randn(1, 2, 4, 4)), [0, 2])


# ================================ interpolate ================================
def interp(x, size=None, scale=None, mode="nearest", align=None, recompute=False):
    s = (I64 * len(size))(*size) if size is not None else None
    sc = (ctypes.c_double * len(scale))(*scale) if scale is not None else None
    return _interp(x, s, sc, mode, -1 if align is None else int(align), recompute)


INTERP = []
for _mode, _shape in [("nearest", (2, 3, 7)), ("nearest", (2, 3, 5, 7)), ("nearest", (1, 2, 3, 4, 5)),
                      ("nearest-exact", (2, 3, 7)), ("nearest-exact", (2, 3, 5, 7)), ("nearest-exact", (1, 2, 3, 4, 5)),
                      ("linear", (2, 3, 7)), ("bilinear", (2, 3, 5, 7)), ("bicubic", (2, 3, 5, 7)),
                      ("trilinear", (1, 2, 3, 4, 5)), ("area", (2, 3, 7)), ("area", (2, 3, 5, 7))]:
    _sp = len(_shape) - 2
    for _size, _scale in [((11, 9, 10)[:_sp], None), ((3, 2, 4)[:_sp], None), ((10, 14, 10)[:_sp], None),
                          ((7, 5, 7)[-_sp:] if _sp < 3 else (3, 4, 5), None), ((1, 1, 1)[:_sp], None),
                          (None, (1.7, 2.3, 1.5)[:_sp]), (None, (2.0, 0.5, 3.0)[:_sp]),
                          (None, (0.6, 1.35, 0.8)[:_sp])]:
        aligns = [None] if _mode.startswith("nearest") or _mode == "area" else [None, False, True]
        recs = [False] if _size is not None else [False, True]
        for _al, _rec in itertools.product(aligns, recs):
            INTERP.append((_mode, _shape, _size, _scale, _al, _rec))


def _interp_id(i):
    m, s, sz, sc, al, rec = INTERP[i]
    return f"{m}-{len(s) - 2}d-{'size' + str(sz) if sz else 'scale' + str(sc)}-ac{al}-rc{rec}"


@pytest.mark.parametrize("i", range(len(INTERP)), ids=_interp_id)
def test_interpolate(i):
    mode, shape, size, scale, al, rec = INTERP[i]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(i))
    kw = dict(size=size, scale_factor=scale, mode=mode)
    if al is not None:
        kw["align_corners"] = al
    if rec:
        kw["recompute_scale_factor"] = True
    f = lambda a: interp(a, size, scale, mode, al, rec)  # noqa: E731
    check("interpolate", f, lambda a: F.interpolate(a, **kw), [x])
    check("interpolate", f, lambda a: F.interpolate(a, **kw), [x.double()])


@pytest.mark.parametrize("mode,shape,size,scale,al", [
    ("nearest", (1, 2, 3, 4), (5, 7), None, None), ("nearest-exact", (1, 2, 4), None, (1.6,), None),
    ("linear", (1, 2, 4), (7,), None, False), ("linear", (1, 2, 5), None, (0.7,), True),
    ("bilinear", (1, 2, 3, 4), (5, 6), None, False), ("bilinear", (1, 2, 3, 4), None, (1.5, 0.75), True),
    ("nearest", (1, 1, 2, 3, 2), (3, 4, 3), None, None), ("bicubic", (1, 2, 3, 4), (5, 6), None, False),
    ("bicubic", (1, 1, 4, 3), None, (0.75, 1.5), True), ("trilinear", (1, 1, 2, 3, 2), (3, 2, 4), None, False),
    ("area", (1, 2, 5, 4), (3, 3), None, None), ("area", (1, 2, 6), None, (0.5,), None)])
def test_interpolate_gradcheck(mode, shape, size, scale, al):
    x = torch.randn(shape, dtype=torch.float64)
    f = lambda a: interp(a, size, scale, mode, al)  # noqa: E731
    gradcheck("interpolate", f, [x])
    gradgradcheck("interpolate", f, [x])


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_interpolate_uint8(mode):
    x = torch.randint(0, 255, (2, 3, 5, 7), dtype=torch.uint8)
    check("interpolate", lambda a: interp(a, (9, 4), None, mode), lambda a: F.interpolate(a, size=(9, 4), mode=mode), [x])
    check("interpolate", lambda a: interp(a, None, (1.5, 2.5), mode),
          lambda a: F.interpolate(a, scale_factor=(1.5, 2.5), mode=mode), [x])
    check_error("interpolate", lambda a: interp(a, (9, 4), None, mode), lambda a: F.interpolate(a, size=(9, 4), mode=mode),
                [x.long()])


def test_interpolate_errors():
    x4, x3 = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4)
    cases = [
        (x4, dict(size=(8, 8), mode="nearest", align_corners=False)),
        (x4, dict(size=(8, 8), mode="nearest", align_corners=True)),
        (x3, dict(size=(8, 8), mode="bilinear")),
        (x4, dict(size=(8,), mode="linear")),
        (x4, dict(size=(8, 8), scale_factor=(2.0, 2.0))),
        (x4, dict()),
        (x4, dict(size=(8, 8), recompute_scale_factor=True)),
        (x4, dict(size=(0, 8))),
        (x4, dict(scale_factor=(0.1, 2.0))),
        (torch.randn(4, 4), dict(size=(3,))),
        (x4.long(), dict(size=(8, 8), mode="bilinear")),
        (x4, dict(size=(8, 8), mode="area", align_corners=False)),
        (x4, dict(size=(8, 8, 8), mode="trilinear")),
        (x3, dict(size=(8,), mode="bicubic")),
    ]
    for x, kw in cases:
        size = kw.get("size")
        scale = kw.get("scale_factor")
        al = kw.get("align_corners")
        check_error("interpolate",
                    lambda a, kw=kw, size=size, scale=scale, al=al: interp(
                        a, size, scale, kw.get("mode", "nearest"), al, kw.get("recompute_scale_factor", False)),
                    lambda a, kw=kw: F.interpolate(a, **kw), [x])
    with case("interpolate"):
        with pytest.raises(ctorch.CtorchError, match="got lanczos"):
            interp(ctorch.from_torch(x4), (8, 8), None, "lanczos")


# ================================ pixel shuffle ================================
@pytest.mark.parametrize("shape,r", [((2, 8, 3, 4), 2), ((18, 2, 3), 3), ((2, 3, 4, 2, 5), 1), ((2, 2, 16, 3, 3), 2)])
def test_pixel_shuffle(shape, r):
    x = torch.randn(shape, dtype=torch.float64)
    check("pixel_shuffle", lambda a: _shuffle(a, r), lambda a: F.pixel_shuffle(a, r), [x])
    y = F.pixel_shuffle(x, r)
    check("pixel_unshuffle", lambda a: _unshuffle(a, r), lambda a: F.pixel_unshuffle(a, r), [y])
    check("pixel_shuffle", lambda a: _shuffle(a, r), lambda a: F.pixel_shuffle(a, r), [x.long()])
    gradcheck("pixel_shuffle", lambda a: _shuffle(a, r), [x])
    gradcheck("pixel_unshuffle", lambda a: _unshuffle(a, r), [y])


def test_pixel_shuffle_errors():
    check_error("pixel_shuffle", lambda a: _shuffle(a, 2), lambda a: F.pixel_shuffle(a, 2), [torch.randn(5, 4, 4)])
    check_error("pixel_shuffle", lambda a: _shuffle(a, 2), lambda a: F.pixel_shuffle(a, 2), [torch.randn(8, 4)])
    check_error("pixel_shuffle", lambda a: _shuffle(a, 0), lambda a: F.pixel_shuffle(a, 0), [torch.randn(8, 4, 4)])
    check_error("pixel_unshuffle", lambda a: _unshuffle(a, 2), lambda a: F.pixel_unshuffle(a, 2),
                [torch.randn(2, 5, 4)])
    check_error("pixel_unshuffle", lambda a: _unshuffle(a, 2), lambda a: F.pixel_unshuffle(a, 2),
                [torch.randn(2, 4, 5)])


# ================================ modules ================================
def c3(**kw):
    return ptr(c3opts(kw))


def ct2(dims=2, **kw):
    return ptr(c2opts(kw, dims))


LAYERS = [
    (lambda: module("ct_nn_conv3d_new", 3, 4, I3(3, 3, 3), None, True), lambda: nn.Conv3d(3, 4, 3), (2, 3, 5, 6, 5)),
    (lambda: module("ct_nn_conv3d_new", 4, 6, I3(3, 2, 3), c3(stride=(2, 1, 1), padding=(1, 0, 2), dilation=(1, 2, 1),
                                                              groups=2), False),
     lambda: nn.Conv3d(4, 6, (3, 2, 3), stride=(2, 1, 1), padding=(1, 0, 2), dilation=(1, 2, 1), groups=2, bias=False),
     (2, 4, 6, 6, 5)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(3, 3, 3), c3(padding="same"), True),
     lambda: nn.Conv3d(2, 3, 3, padding="same"), (1, 2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(2, 3, 2), c3(padding="valid"), True),
     lambda: nn.Conv3d(2, 3, (2, 3, 2), padding="valid"), (1, 2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(3, 3, 3), c3(padding=1, padding_mode="reflect"), True),
     lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(3, 3, 3), c3(padding=(1, 2, 1), padding_mode="replicate"), True),
     lambda: nn.Conv3d(2, 3, 3, padding=(1, 2, 1), padding_mode="replicate"), (2, 2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(3, 3, 3), c3(padding=1, stride=2, padding_mode="circular"), True),
     lambda: nn.Conv3d(2, 3, 3, padding=1, stride=2, padding_mode="circular"), (2, 2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(3, 3, 3), None, True), lambda: nn.Conv3d(2, 3, 3), (2, 4, 5, 4)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(2, 3, 4), c3(padding="same", padding_mode="reflect"), True),
     lambda: nn.Conv3d(2, 3, (2, 3, 4), padding="same", padding_mode="reflect"), (2, 2, 4, 5, 6)),
    (lambda: module("ct_nn_conv3d_new", 2, 3, I3(2, 3, 2), c3(padding="valid", padding_mode="circular"), False),
     lambda: nn.Conv3d(2, 3, (2, 3, 2), padding="valid", padding_mode="circular", bias=False), (2, 2, 4, 5, 6)),
    (lambda: module("ct_nn_conv_transpose2d_new", 4, 6, I2(3, 3), None, True), lambda: nn.ConvTranspose2d(4, 6, 3),
     (2, 4, 5, 5)),
    (lambda: module("ct_nn_conv_transpose2d_new", 4, 6, I2(3, 2),
                    ct2(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=(1, 2)), False),
     lambda: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2,
                                bias=False, dilation=(1, 2)), (2, 4, 5, 6)),
    (lambda: module("ct_nn_conv_transpose2d_new", 3, 2, I2(2, 2), ct2(stride=2), True),
     lambda: nn.ConvTranspose2d(3, 2, 2, stride=2), (3, 4, 4)),
    (lambda: module("ct_nn_conv_transpose1d_new", 4, 6, 3, None, True), lambda: nn.ConvTranspose1d(4, 6, 3), (2, 4, 7)),
    (lambda: module("ct_nn_conv_transpose1d_new", 4, 2, 3, ct2(1, stride=2, padding=1, output_padding=1, groups=2,
                                                               dilation=2), True),
     lambda: nn.ConvTranspose1d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=2), (2, 4, 7)),
    (lambda: module("ct_nn_max_pool1d_new", 3, None, False), lambda: nn.MaxPool1d(3), (2, 3, 10)),
    (lambda: module("ct_nn_max_pool1d_new", 3, ptr(PoolOpts(I2(2, 0), I2(1, 0), I2(2, 0), True, False, 0)), False),
     lambda: nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 10)),
    (lambda: module("ct_nn_avg_pool1d_new", 3, None), lambda: nn.AvgPool1d(3), (2, 3, 10)),
    (lambda: module("ct_nn_avg_pool1d_new", 3, ptr(PoolOpts(I2(2, 0), I2(1, 0), I2(0, 0), False, True, 0))),
     lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 10)),
    (lambda: module("ct_nn_adaptive_avg_pool1d_new", 4), lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 10)),
    (lambda: module("ct_nn_adaptive_max_pool1d_new", 4, False), lambda: nn.AdaptiveMaxPool1d(4), (2, 3, 10)),
    (lambda: module("ct_nn_adaptive_max_pool2d_new", I2(3, 3), False), lambda: nn.AdaptiveMaxPool2d(3), (2, 3, 7, 8)),
    (lambda: module("ct_nn_adaptive_max_pool2d_new", I2(2, 3), False), lambda: nn.AdaptiveMaxPool2d((2, 3)),
     (2, 3, 7, 8)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 1), None, D3(2.0), "nearest", (ctypes.c_int, -1), False),
     lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 2), I2(5, 7), None, "bilinear", (ctypes.c_int, 1), False),
     lambda: nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 1), (I64 * 1)(9), None, "linear", (ctypes.c_int, -1), False),
     lambda: nn.Upsample(size=9, mode="linear"), (2, 3, 4)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 2), None, D3(1.5, 2.5), "nearest-exact", (ctypes.c_int, -1),
                    True),
     lambda: nn.Upsample(scale_factor=(1.5, 2.5), mode="nearest-exact", recompute_scale_factor=True), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 1), None, D3(1.5), "bicubic", (ctypes.c_int, 0), False),
     lambda: nn.Upsample(scale_factor=1.5, mode="bicubic", align_corners=False), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsample_new", (ctypes.c_int, 3), I3(3, 5, 4), None, "trilinear", (ctypes.c_int, 1), False),
     lambda: nn.Upsample(size=(3, 5, 4), mode="trilinear", align_corners=True), (1, 2, 2, 3, 4)),
    (lambda: module("ct_nn_upsampling_nearest2d_new", (ctypes.c_int, 1), None, D3(3.0)),
     lambda: nn.UpsamplingNearest2d(scale_factor=3), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsampling_bilinear2d_new", (ctypes.c_int, 2), I2(6, 9), None),
     lambda: nn.UpsamplingBilinear2d(size=(6, 9)), (2, 3, 4, 5)),
    (lambda: module("ct_nn_upsampling_bilinear2d_new", (ctypes.c_int, 1), None, D3(2.0)),
     lambda: nn.UpsamplingBilinear2d(scale_factor=2), (2, 3, 4, 5)),
    (lambda: module("ct_nn_pixel_shuffle_new", 2), lambda: nn.PixelShuffle(2), (2, 8, 3, 4)),
    (lambda: module("ct_nn_pixel_unshuffle_new", 2), lambda: nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    (lambda: module("ct_nn_unfold_new", I2(2, 3), None, None, None), lambda: nn.Unfold((2, 3)), (2, 3, 5, 6)),
    (lambda: module("ct_nn_unfold_new", I2(3, 3), I2(2, 2), I2(1, 1), I2(2, 2)),
     lambda: nn.Unfold(3, dilation=2, padding=1, stride=2), (2, 3, 7, 6)),
    (lambda: module("ct_nn_fold_new", I2(4, 5), I2(2, 2), None, None, None), lambda: nn.Fold((4, 5), 2), (2, 12, 12)),
    (lambda: module("ct_nn_fold_new", I2(6, 6), I2(3, 2), I2(1, 2), I2(1, 0), I2(2, 1)),
     lambda: nn.Fold(6, (3, 2), dilation=(1, 2), padding=(1, 0), stride=(2, 1)), (2, 12, 12)),
]


@pytest.mark.parametrize("k", range(len(LAYERS)))
def test_layer_modules_match_torch(k):
    make, tmake, xs = LAYERS[k]
    torch.manual_seed(7 + k)
    tm = tmake()
    seed(7 + k)
    cm = make()
    name = type(tm).__name__
    with case(f"nn.{name}"):
        assert repr(cm) == repr(tm)
        sd = cm.state_dict().torch()
        assert list(sd) == list(tm.state_dict())
        for key, v in tm.state_dict().items():
            assert torch.equal(sd[key], v), key  # same initialisation from the same seed
        # the next draw of the generator agrees too: as many numbers were drawn
        assert torch.equal(ctorch.lib.declare("ct_rand", "T(shape,dt,p)")([5], torch.float32, None).torch(), torch.rand(5))
        tm.double(), cm.to(torch.float64)
        x = torch.randn(xs, dtype=torch.float64)
        xt = x.clone().requires_grad_()
        xc = ctorch.from_torch(x).requires_grad_()
        want, got = tm(xt), cm(xc)
        assert_same(got, want)
        g = torch.randn_like(want)
        want.backward(g)
        backward(got, ctorch.from_torch(g), False, False)
        assert_same(grad_of(xc), xt.grad, what="input grad")
        params = dict(cm.named_parameters().items())
        for pk, p in tm.named_parameters():
            assert_same(grad_of(params[pk]), p.grad, what=f"grad of {pk}")


def test_return_indices_modules():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    for cmake, tm, xin in [
        (lambda: module("ct_nn_max_pool1d_new", 3, None, True), nn.MaxPool1d(3, return_indices=True), x[:, :, 0]),
        (lambda: module("ct_nn_adaptive_max_pool1d_new", 3, True), nn.AdaptiveMaxPool1d(3, return_indices=True),
         x[:, :, 0]),
        (lambda: module("ct_nn_adaptive_max_pool2d_new", I2(4, 3), True),
         nn.AdaptiveMaxPool2d((4, 3), return_indices=True), x),
    ]:
        cm = cmake()
        with case(f"nn.{type(tm).__name__}"):
            assert repr(cm) == repr(tm)
            v, i = forward_n(cm, [ctorch.from_torch(xin.contiguous())], 2)
            tv, ti = tm(xin)
            assert_same(v, tv)
            assert_same(i, ti)
            assert_same(cm(ctorch.from_torch(xin.contiguous())), tv)  # one-tensor forward: the values


def test_max_unpool_modules():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    v, idx = F.max_pool2d(x, 2, stride=2, return_indices=True)
    for cm, tm in [(module("ct_nn_max_unpool2d_new", I2(2, 2), None, None), nn.MaxUnpool2d(2)),
                   (module("ct_nn_max_unpool2d_new", I2(2, 2), I2(2, 2), I2(0, 0)), nn.MaxUnpool2d((2, 2), stride=2))]:
        with case("nn.MaxUnpool2d"):
            assert repr(cm) == repr(tm)
            (y,) = forward_n(cm, [ctorch.from_torch(v), ctorch.from_torch(idx)], 1)
            assert_same(y, tm(v, idx))
            (y,) = forward_n(cm, [ctorch.from_torch(v), ctorch.from_torch(idx), torch.tensor([9, 9])], 1)
            assert_same(y, tm(v, idx, output_size=[9, 9]))
            (y,) = forward_n(cm, [ctorch.from_torch(v), ctorch.from_torch(idx), torch.tensor([2, 3, 9, 8])], 1)
            assert_same(y, tm(v, idx, output_size=[2, 3, 9, 8]))
            with pytest.raises(ctorch.CtorchError):
                forward_n(cm, [ctorch.from_torch(v)], 1)
    v1, i1 = F.max_pool1d(torch.randn(2, 3, 9, dtype=torch.float64), 3, stride=2, padding=1, return_indices=True)
    cm, tm = module("ct_nn_max_unpool1d_new", 3, 2, 1), nn.MaxUnpool1d(3, stride=2, padding=1)
    with case("nn.MaxUnpool1d"):
        assert repr(cm) == repr(tm)
        (y,) = forward_n(cm, [ctorch.from_torch(v1), ctorch.from_torch(i1)], 1)
        assert_same(y, tm(v1, i1))


def test_conv_transpose_output_size():
    for cm, tm, x, sizes in [
        (module("ct_nn_conv_transpose2d_new", 4, 6, I2(3, 3), ct2(stride=2, padding=1), True),
         nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1), torch.randn(2, 4, 5, 6), [[9, 11], [10, 12], [2, 6, 10, 11]]),
        (module("ct_nn_conv_transpose1d_new", 4, 2, 3, ct2(1, stride=3, groups=2), True),
         nn.ConvTranspose1d(4, 2, 3, stride=3, groups=2), torch.randn(4, 5), [[15], [17], [2, 16]]),
    ]:
        with case(f"nn.{type(tm).__name__}"):
            tm.load_state_dict(cm.state_dict().torch())
            for osz in sizes:
                (y,) = forward_n(cm, [ctorch.from_torch(x), torch.tensor(osz)], 1)
                assert_same(y, tm(x, output_size=osz))
            with pytest.raises(ValueError):
                tm(x, output_size=[99] * len(sizes[0]))
            with pytest.raises(ctorch.CtorchError, match="valid sizes range"):
                forward_n(cm, [ctorch.from_torch(x), torch.tensor([99] * len(sizes[0]))], 1)


def test_module_constructor_errors():
    bad = [
        lambda: module("ct_nn_conv3d_new", 3, 4, I3(3, 0, 3), None, True),
        lambda: module("ct_nn_conv3d_new", 3, 4, I3(3, 3, 3), c3(groups=2), True),
        lambda: module("ct_nn_conv3d_new", 3, 4, I3(3, 3, 3), c3(padding_mode="mirror"), True),
        lambda: module("ct_nn_conv3d_new", 3, 4, I3(3, 3, 3), c3(padding="same", stride=2), True),
        lambda: module("ct_nn_conv_transpose2d_new", 4, 6, I2(3, 3), ct2(stride=2, output_padding=2), True),
        lambda: module("ct_nn_conv_transpose2d_new", 4, 6, I2(3, 3), ct2(groups=4), True),
        lambda: module("ct_nn_max_pool1d_new", 0, None, False),
        lambda: module("ct_nn_adaptive_max_pool2d_new", I2(0, 2), False),
        lambda: module("ct_nn_upsample_new", (ctypes.c_int, 1), (I64 * 1)(4), D3(2.0), "nearest", (ctypes.c_int, -1),
                       False),
        lambda: module("ct_nn_upsample_new", (ctypes.c_int, 1), (I64 * 1)(4), None, "lanczos", (ctypes.c_int, -1),
                       False),
        lambda: module("ct_nn_pixel_shuffle_new", 0),
        lambda: module("ct_nn_fold_new", I2(4, 4), I2(0, 2), None, None, None),
    ]
    with case("nn.vision constructors"):
        for make in bad:
            with pytest.raises(ctorch.CtorchError):
                make()
    # torch refuses the same configurations
    for make in [lambda: nn.Conv3d(3, 4, 3, groups=2), lambda: nn.Conv3d(3, 4, 3, padding="same", stride=2),
                 lambda: nn.Conv3d(3, 4, 3, padding_mode="mirror"),
                 lambda: nn.ConvTranspose2d(4, 6, 3, groups=4)]:
        with pytest.raises((ValueError, RuntimeError)):
            make()


def test_module_forward_errors():
    cm = module("ct_nn_conv3d_new", 3, 4, I3(3, 3, 3), None, True)
    with case("nn.Conv3d"):
        with pytest.raises(ctorch.CtorchError, match="channels"):
            cm(ctorch.from_torch(torch.randn(1, 2, 5, 5, 5)))
    up = module("ct_nn_upsample_new", (ctypes.c_int, 2), I2(5, 7), None, "bilinear", (ctypes.c_int, 1), False)
    with case("nn.Upsample"):
        with pytest.raises(ctorch.CtorchError):
            up(ctorch.from_torch(torch.randn(1, 2, 5)))


# ============ average pooling backward whose last window reaches into the padding ============
_avg2 = ctorch.lib.declare("ct_nn_avg_pool2d", "T", ["T", I64P, ctypes.POINTER(PoolOpts)])


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(stride=2, padding=1, count_include_pad=False),
                                dict(stride=(2, 3), padding=1, ceil_mode=True)])
def test_avg_pool2d_backward_last_window_in_padding(kw):
    # regression (src/ops/pool.c): the gradient of the last row / column was dropped when
    # the last window ends in the right padding (AvgPool1d(3, stride=2, padding=1) on 10)
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64)
    o = PoolOpts(I2(*pair(kw["stride"])), I2(*pair(kw["padding"])), I2(0, 0), kw.get("ceil_mode", False),
                 not kw.get("count_include_pad", True), 0)
    f = lambda a: _avg2(a, I2(3, 3), ctypes.byref(o))  # noqa: E731
    check("avg_pool2d", f, lambda a: F.avg_pool2d(a, 3, **kw), [x])
    gradcheck("avg_pool2d", f, [x[:, :, :6, :7].contiguous()])


def test_noncontiguous_inputs():
    x = torch.randn(2, 3, 6, 5, 4).transpose(2, 4)  # [2, 3, 4, 5, 6], strided
    w = torch.randn(4, 3, 2, 2, 2).transpose(2, 3)
    check("conv3d", lambda a, c: conv3d(a, c, None, dict(padding=1)), lambda a, c: F.conv3d(a, c, padding=1), [x, w])
    x4 = torch.randn(2, 3, 7, 5).transpose(2, 3)
    check("interpolate", lambda a: interp(a, (9, 4), None, "bilinear", False),
          lambda a: F.interpolate(a, size=(9, 4), mode="bilinear", align_corners=False), [x4])
    check("interpolate", lambda a: interp(a, None, (1.5, 2.0), "nearest"),
          lambda a: F.interpolate(a, scale_factor=(1.5, 2.0)), [x4[..., ::2]])
    check("adaptive_max_pool2d", lambda a: _amax2(a, [3, 2]),
          lambda a: F.adaptive_max_pool2d(a, (3, 2), return_indices=True), [x4])
    check("pixel_shuffle", lambda a: _shuffle(a, 2), lambda a: F.pixel_shuffle(a, 2),
          [torch.randn(2, 8, 6, 4).transpose(2, 3)])
    v, idx = F.max_pool2d(torch.randn(2, 3, 8, 6), 2, return_indices=True)
    check("max_unpool2d", lambda a, i: _unpool2(a, i, I2(2, 2), None, None, None),
          lambda a, i: F.max_unpool2d(a, i, 2), [v.transpose(2, 3).contiguous().transpose(2, 3), idx])
