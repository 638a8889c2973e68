"""Convolutions, unfold/fold against torch.nn.functional: values, gradients of input,
weight and bias, errors, float64 gradcheck and gradgradcheck."""
import ctypes

import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck, isa_in_effect

I2 = ctypes.c_int64 * 2


class ConvOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("groups", ctypes.c_int64),
                ("output_padding", I2), ("padding_mode", ctypes.c_char_p)]


def opts(stride=(0, 0), padding=(0, 0), dilation=(0, 0), groups=0, output_padding=(0, 0), mode=None):
    return ConvOpts(I2(*stride), I2(*padding), I2(*dilation), groups, I2(*output_padding),
                    mode.encode() if mode else None)


def fn(name):
    f = ctorch._raw(name, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ConvOpts))

    def call(x, w, b, o):
        ctorch.lib.ct_clear_error()
        return ctorch.Tensor(f(x.ptr, w.ptr, b.ptr if b is not None else None, ctypes.byref(o)))
    return call


conv2d, conv1d = fn("ct_nn_conv2d"), fn("ct_nn_conv1d")
convt2d, convt1d = fn("ct_nn_conv_transpose2d"), fn("ct_nn_conv_transpose1d")


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


CONV2D = [  # (x shape, w shape, bias, torch kwargs)
    ((2, 3, 7, 6), (4, 3, 3, 3), True, {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), False, dict(stride=2, padding=1)),
    ((1, 4, 9, 8), (6, 2, 3, 3), True, dict(groups=2, dilation=2, padding=(2, 1))),
    ((2, 4, 6, 6), (4, 1, 3, 3), True, dict(groups=4, padding=1)),  # depthwise
    ((3, 5, 5), (2, 3, 2, 2), True, {}),  # unbatched, 1x1-free
    ((2, 3, 5, 6), (4, 3, 1, 1), True, {}),  # 1x1
    ((2, 3, 6, 5), (4, 3, 4, 3), True, dict(padding="same")),  # even kernel: asymmetric
    ((2, 3, 6, 5), (4, 3, 3, 3), True, dict(padding="valid")),
    ((2, 3, 6, 5), (4, 3, 3, 2), True, dict(padding="same", dilation=2)),
]


def ct_opts_of(kw, transposed=False):
    o = dict()
    if "stride" in kw:
        o["stride"] = pair(kw["stride"])
    if "padding" in kw:
        if isinstance(kw["padding"], str):
            o["mode"] = kw["padding"]
        else:
            o["padding"] = pair(kw["padding"])
    if "dilation" in kw:
        o["dilation"] = pair(kw["dilation"])
    if "groups" in kw:
        o["groups"] = kw["groups"]
    if "output_padding" in kw:
        o["output_padding"] = pair(kw["output_padding"])
    return opts(**o)


@pytest.mark.parametrize("k", range(len(CONV2D)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d(k, dtype):
    xs, ws, bias, kw = CONV2D[k]
    x, w = torch.randn(xs, dtype=dtype), torch.randn(ws, dtype=dtype)
    b = torch.randn(ws[0], dtype=dtype) if bias else None
    o = ct_opts_of(kw)
    ins = [x, w] + ([b] if bias else [])
    check("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o),
          lambda *a: F.conv2d(a[0], a[1], a[2] if bias else None, **kw), ins)
    if dtype == torch.float64 and k in (0, 2, 6):
        gradcheck("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o), ins)
        gradgradcheck("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o), ins)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_conv_half_types(dtype):
    """float16 / bfloat16 convolutions run in float32 on the widened operands and round
    once: output and every gradient bit for bit ctorch's float32 result on the widened
    tensors, rounded (gradients of a half-type grad_output); PyTorch's bfloat16 values
    (its CPU kernels also accumulate in float32); and output and gradients no further
    from float64 than PyTorch's."""
    cases = [(conv2d, F.conv2d, xs, ws, bias, kw, ct_opts_of(kw)) for xs, ws, bias, kw in CONV2D[:4]]
    cases += [(conv1d, F.conv1d, (2, 4, 11), (6, 2, 3), True, dict(stride=2, padding=1, groups=2),
               ct_opts_of(dict(stride=(2, 0), padding=(1, 0), groups=2))),
              (convt2d, F.conv_transpose2d, (2, 4, 4, 3), (4, 3, 3, 2), True,
               dict(stride=2, padding=1, output_padding=1, groups=2),
               ct_opts_of(dict(stride=2, padding=1, output_padding=1, groups=2)))]
    g = torch.Generator().manual_seed(11)
    for cf, tf, xs, ws, bias, kw, o in cases:
        x, w = torch.randn(xs, generator=g).to(dtype), torch.randn(ws, generator=g).to(dtype)
        nb = ws[1] * kw.get("groups", 1) if tf is F.conv_transpose2d else ws[0]
        b = torch.randn(nb, generator=g).to(dtype) if bias else None
        with torch.no_grad():
            go = tf(x.float(), w.float(), None if b is None else b.float(), **kw).to(dtype)
        res = []
        for t in (dtype, torch.float32):
            cx, cw = ctorch.from_torch(x.to(t), requires_grad=True), ctorch.from_torch(w.to(t), requires_grad=True)
            cb = ctorch.from_torch(b.to(t), requires_grad=True) if bias else None
            y = cf(cx, cw, cb, o)
            y.backward(ctorch.from_torch(go.to(t)))
            outs = [v.torch() for v in [y, cx.grad, cw.grad] + ([cb.grad] if bias else [])]
            assert all(v.dtype == t for v in outs), (tf.__name__, t, [v.dtype for v in outs])
            res.append([v.to(dtype) for v in outs])
        with case(tf.__name__):
            for k, (h, f32) in enumerate(zip(*res)):
                same = h.view(torch.int16) == f32.view(torch.int16)
                assert same.all(), f"{tf.__name__} {xs} output {k}: {(~same).sum().item()} differ from float32 rounded"
        ins = [x, w] + ([b] if bias else [])
        if dtype == torch.bfloat16:
            check(tf.__name__, lambda *a: cf(a[0], a[1], a[2] if bias else None, o),
                  lambda *a: tf(a[0], a[1], a[2] if bias else None, **kw), ins, grad=False)
        # the output (float16) and the gradients: no further from the float64 ones than
        # PyTorch's half-type results, plus one rounding (its float16 kernels round
        # intermediates to float16: up to 9 % off on small outputs of conv_transpose2d)
        with case(tf.__name__):
            def torch_results(t):
                a = [v.to(t).detach().requires_grad_() for v in ins]
                y = tf(a[0], a[1], a[2] if bias else None, **kw)
                y.backward(go.to(t))
                return [y.detach().double()] + [v.grad.double() for v in a]
            th, t64 = torch_results(dtype), torch_results(torch.float64)
            for k, (ours, tg, ref) in enumerate(zip(res[0], th, t64)):
                err, terr = (ours.double() - ref).abs().max().item(), (tg - ref).abs().max().item()
                one = torch.finfo(dtype).eps * ref.abs().max().item()
                assert err <= terr + one, f"{tf.__name__} {xs} output {k}: error {err:.3g}, PyTorch's {terr:.3g}"


CONV1D = [((2, 3, 9), (4, 3, 3), True, {}), ((2, 4, 11), (6, 2, 3), True, dict(stride=2, padding=1, groups=2)),
          ((3, 8), (2, 3, 2), False, dict(dilation=3)), ((2, 3, 9), (4, 3, 4), True, dict(padding="same"))]


@pytest.mark.parametrize("k", range(len(CONV1D)))
def test_conv1d(k):
    xs, ws, bias, kw = CONV1D[k]
    x, w = torch.randn(xs, dtype=torch.float64), torch.randn(ws, dtype=torch.float64)
    b = torch.randn(ws[0], dtype=torch.float64) if bias else None
    o = ct_opts_of({kk: (v if isinstance(v, str) else (v, 0) if kk != "groups" else v) for kk, v in kw.items()})
    ins = [x, w] + ([b] if bias else [])
    check("conv1d", lambda *a: conv1d(a[0], a[1], a[2] if bias else None, o),
          lambda *a: F.conv1d(a[0], a[1], a[2] if bias else None, **kw), ins)
    gradcheck("conv1d", lambda *a: conv1d(a[0], a[1], a[2] if bias else None, o), ins)


CONVT2D = [((2, 3, 4, 5), (3, 2, 3, 3), True, {}),
           ((2, 4, 4, 3), (4, 3, 3, 2), True, dict(stride=2, padding=1, output_padding=1, groups=2)),
           ((3, 4, 4), (3, 2, 2, 2), False, dict(dilation=2)),
           ((1, 2, 5, 5), (2, 3, 3, 3), True, dict(stride=(2, 1), padding=(0, 1)))]


@pytest.mark.parametrize("k", range(len(CONVT2D)))
def test_conv_transpose2d(k):
    xs, ws, bias, kw = CONVT2D[k]
    x, w = torch.randn(xs, dtype=torch.float64), torch.randn(ws, dtype=torch.float64)
    b = torch.randn(ws[1] * kw.get("groups", 1), dtype=torch.float64) if bias else None
    o = ct_opts_of(kw)
    ins = [x, w] + ([b] if bias else [])
    check("conv_transpose2d", lambda *a: convt2d(a[0], a[1], a[2] if bias else None, o),
          lambda *a: F.conv_transpose2d(a[0], a[1], a[2] if bias else None, **kw), ins)
    gradcheck("conv_transpose2d", lambda *a: convt2d(a[0], a[1], a[2] if bias else None, o), ins)


def test_conv_transpose1d():
    x, w, b = torch.randn(2, 3, 6, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64), \
        torch.randn(2, dtype=torch.float64)
    o = opts(stride=(2, 0), padding=(1, 0), output_padding=(1, 0))
    check("conv_transpose1d", lambda *a: convt1d(a[0], a[1], a[2], o),
          lambda *a: F.conv_transpose1d(*a, stride=2, padding=1, output_padding=1), [x, w, b])
    gradcheck("conv_transpose1d", lambda *a: convt1d(a[0], a[1], a[2], o), [x, w, b])


# float32 runs through oneDNN when the library has it (src/cpu/conv_dnnl.c); float64 through
# the im2col kernels. ResNet-18 shapes (stem, 3x3, strided 3x3, strided 1x1), a stride that
# never reaches the last rows (oneDNN gets a negative right padding), a non-contiguous
# input, an empty batch.
CONV2D_KERNELS = [
    ((2, 3, 32, 32), (8, 3, 7, 7), False, dict(stride=2, padding=3)),
    ((3, 16, 8, 8), (16, 16, 3, 3), False, dict(padding=1)),
    ((2, 16, 8, 8), (32, 16, 3, 3), True, dict(stride=2, padding=1)),
    ((2, 16, 8, 8), (32, 16, 1, 1), False, dict(stride=2)),
    ((2, 3, 9, 9), (4, 3, 2, 2), True, dict(stride=3)),
    ((2, 6, 9, 7), (6, 2, 3, 3), True, dict(stride=(2, 1), dilation=(1, 2), groups=3, padding=(1, 2))),
    ((1, 8, 5, 5), (4, 8, 3, 3), True, dict(padding=4)),
    ((0, 3, 5, 5), (4, 3, 3, 3), True, {}),
    # small images with a batch: the weight gradient is one wide GEMM over all images
    ((5, 8, 6, 6), (12, 8, 3, 3), True, dict(padding=1)),
    ((4, 6, 5, 7), (5, 6, 1, 1), False, {}),  # 1x1: the images are their own columns
    ((6, 4, 9, 9), (7, 4, 3, 3), True, dict(stride=2, dilation=(1, 2), padding=(1, 2))),
    ((4, 32, 1, 1), (32, 32, 3, 3), False, dict(padding=1)),  # ResNet-18's last stage on 32x32 images
    ((4, 16, 2, 2), (32, 16, 3, 3), True, dict(stride=2, padding=1)),
    ((4, 8, 4, 4), (16, 8, 1, 1), False, dict(stride=2)),  # strided 1x1 downsample
]


@pytest.mark.parametrize("k", range(len(CONV2D_KERNELS)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d_kernels(k, dtype):
    xs, ws, bias, kw = CONV2D_KERNELS[k]
    g = torch.Generator().manual_seed(100 + k)  # fixed inputs: the same case on every run
    x, w = torch.randn(xs, dtype=dtype, generator=g), torch.randn(ws, dtype=dtype, generator=g)
    b = torch.randn(ws[0], dtype=dtype, generator=g) if bias else None
    o = ct_opts_of(kw)
    ins = [x, w] + ([b] if bias else [])
    check("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o),
          lambda *a: F.conv2d(a[0], a[1], a[2] if bias else None, **kw), ins)
    if k == 1:  # channels-last input: the kernels get a contiguous copy
        xl = x.to(memory_format=torch.channels_last)
        # PyTorch's channels-last kernel sums the weight gradient's 192 products in another
        # order: float32 differences up to 1.2e-5 were seen (values ~0.5, partial sums ~10),
        # just over the default atol of 1e-5 with random inputs
        tol = dict(grad_atol=5e-5) if dtype == torch.float32 else {}
        check("conv2d", lambda *a: conv2d(a[0], a[1], None, o), lambda *a: F.conv2d(a[0], a[1], None, **kw), [xl, w],
              **tol)
    if dtype == torch.float64 and xs[0] > 0 and k in (2, 4, 5, 8, 10, 11, 12):
        gradgradcheck("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o), ins)


# float32 weight gradients with few columns (K = input channels per group x taps <= 25)
# take their own AVX2 kernel (8 column rows per pass, masked row ends) instead of a GEMM:
# K below, at and past a block of 8 (1, 4, 8, 9, 16, 18, 25), row lengths L = Ho*Wo with
# every tail (L % 8 = 1..7 and L < 8), groups, strides, and batches split over threads.
# The reference is torch in float64 rounded to float32, so the tolerance covers only our
# own float32 sums (up to 8 * 784 products in the last case).
SMALL_K = [
    ((3, 1, 5, 5), (4, 1, 1, 1), True, {}),                 # K = 1, L = 25
    ((2, 1, 4, 4), (3, 1, 2, 2), True, {}),                 # K = 4, L = 9
    ((4, 2, 6, 7), (5, 2, 2, 2), False, dict(padding=1)),   # K = 8, L = 56
    ((3, 1, 9, 11), (6, 1, 3, 3), True, dict(padding=1)),   # K = 9, L = 99
    ((2, 1, 5, 6), (7, 1, 4, 4), True, dict(padding=2)),    # K = 16, L = 42
    ((5, 4, 8, 9), (6, 2, 3, 3), True, dict(groups=2, stride=2, padding=1)),  # K = 18, L = 20
    ((2, 1, 3, 3), (2, 1, 5, 5), True, dict(padding=1)),    # K = 25, L = 1
    ((3, 1, 13, 10), (4, 1, 5, 5), False, dict(stride=(2, 1))),  # K = 25, L = 30
    ((8, 1, 28, 28), (32, 1, 3, 3), True, dict(padding=1)),  # the demo CNN's first layer
]


@pytest.mark.parametrize("k", range(len(SMALL_K)))
def test_conv2d_small_k_weight_grad(k):
    xs, ws, bias, kw = SMALL_K[k]
    g = torch.Generator().manual_seed(300 + k)
    x, w = torch.randn(xs, generator=g), torch.randn(ws, generator=g)
    b = torch.randn(ws[0], generator=g) if bias else None
    o = ct_opts_of(kw)
    ins = [x, w] + ([b] if bias else [])

    def ref(*a):
        return F.conv2d(a[0].double(), a[1].double(), a[2].double() if bias else None, **kw).float()
    # the last case's input gradient (oneDNN's, 288 products per element) and weight
    # gradient (6272 per element) are float32 sums of many terms: 1.5e-5 was seen against
    # the float64 reference (the same bound as the channels-last case above)
    tol = dict(grad_atol=5e-5) if k == len(SMALL_K) - 1 else {}
    if isa_in_effect() == "baseline":
        # no dot kernel here (it needs AVX2): the weight gradient is oneDNN's, with the
        # rounding of a float32 library kernel. Bound: twice PyTorch's own float32 error
        # on the same inputs and a grad_output of the same kind (4.1e-4 on values up to
        # 278 in the last case), the accuracy a PyTorch user gets; the dot kernel's paths
        # keep the bound above.
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
        x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
        gy = torch.randn(F.conv2d(x, w, **kw).shape, generator=g)
        F.conv2d(xg, wg, **kw).backward(gy)
        F.conv2d(x64, w64, **kw).backward(gy.double())
        err = max((xg.grad.double() - x64.grad).abs().max().item(), (wg.grad.double() - w64.grad).abs().max().item())
        tol = dict(grad_atol=max(tol.get("grad_atol", 1e-5), 2 * err))  # never below float32's default atol
    check("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, o), ref, ins, **tol)


# float32 first layers on one-channel images (3x3, stride 1, an even number of output
# channels) take their own AVX-512 kernels, forward and weight gradient (src/cpu/conv.c,
# conv_first_*): output rows in pieces of 16 lanes, so widths below, at and past one and
# several pieces (1, 5, 16, 17, 28, 40, 100), odd and even row counts (two rows per pass),
# padding 0, 1, 2 and unequal, an image smaller than the kernel. Values against PyTorch,
# gradients against float64 (below); the forward must give PyTorch's bits where PyTorch
# runs oneDNN (marked True: it does not for the smallest images), as it sums the taps in
# oneDNN's order.
FIRST_LAYER = [  # (x shape, output channels, padding, bias, PyTorch's bits)
    ((64, 1, 28, 28), 32, (1, 1), True, True),  # the demo CNN's first layer
    ((3, 1, 28, 28), 8, (1, 1), False, True),
    ((2, 1, 7, 40), 4, (0, 0), True, True),
    ((2, 1, 9, 17), 6, (2, 1), True, True),
    ((3, 1, 16, 16), 2, (1, 0), False, True),
    ((1, 1, 11, 100), 4, (1, 2), True, True),
    ((2, 1, 5, 5), 2, (0, 2), True, False),
    ((1, 1, 2, 1), 2, (2, 2), True, False),  # 2x1 image: most taps fall outside
]


@pytest.mark.parametrize("k", range(len(FIRST_LAYER)))
def test_conv2d_first_layer(k):
    xs, o, pad, bias, bits = FIRST_LAYER[k]
    g = torch.Generator().manual_seed(500 + k)
    x, w = torch.randn(xs, generator=g), torch.randn((o, 1, 3, 3), generator=g)
    b = torch.randn(o, generator=g) if bias else None
    co = opts(padding=pad)
    ins = [x, w] + ([b] if bias else [])

    check("conv2d", lambda *a: conv2d(a[0], a[1], a[2] if bias else None, co),
          lambda *a: F.conv2d(a[0], a[1], a[2] if bias else None, padding=pad), ins, grad=False)
    # gradients against float64 (their float32 sums are ours, not PyTorch's), for one
    # grad_output: the input's and the bias's within float32's default tolerance (the
    # input's is oneDNN's: 32 channels x 9 taps per element in the first case, 2.2e-5 seen,
    # as in SMALL_K's last case above); the weight gradient sums N*Ho*Wo products (50176
    # in the first case, partial sums to ~600) and the bias's 50176 values, so their
    # bound is twice PyTorch's own float32 error on the same inputs (the bound SMALL_K's
    # baseline path uses), never below the default
    xc, wc = ctorch.from_torch(x, requires_grad=True), ctorch.from_torch(w, requires_grad=True)
    bc = ctorch.from_torch(b, requires_grad=True) if bias else None
    y = conv2d(xc, wc, bc, co)
    gy = torch.randn(tuple(y.shape), generator=g)
    y.backward(ctorch.from_torch(gy))
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    b64 = b.double().requires_grad_() if bias else None
    F.conv2d(x64, w64, b64, padding=pad).backward(gy.double())
    wt, bt = w.clone().requires_grad_(), b.clone().requires_grad_() if bias else None
    F.conv2d(x, wt, bt, padding=pad).backward(gy)
    assert_same(xc.grad.torch(), x64.grad.float(), atol=5e-5 if k == 0 else 1e-5, rtol=1.3e-6,
                what="conv2d first layer input gradient")
    for what, ours, theirs, exact in (("weight", wc, wt, w64), ("bias", bc, bt, b64)):
        if ours is None or (what == "weight" and isa_in_effect() != "avx512"):
            continue  # below AVX-512 the weight gradient is another kernel's: SMALL_K above tests it
        err = (ours.grad.torch().double() - exact.grad).abs().max().item()
        torch_err = (theirs.grad.double() - exact.grad).abs().max().item()
        assert err <= max(1e-5, 2 * torch_err), f"conv2d first layer {what} gradient: error {err}, PyTorch's {torch_err}"
    if bits:
        got = conv2d(ctorch.from_torch(x), ctorch.from_torch(w), ctorch.from_torch(b) if bias else None, co).torch()
        assert torch.equal(got, F.conv2d(x, w, b, padding=pad)), "conv2d first layer: not PyTorch's bits"


# When a convolution's backward computes both gradients through oneDNN, the input
# gradient's reordered grad_output is handed to the weight gradient (src/cpu/conv_dnnl.c,
# grad_memo): the weight gradient must be bit for bit the one computed alone (input not
# requiring grad), for two different grad_outputs in turn.
def test_conv2d_backward_shares_grad():
    g = torch.Generator().manual_seed(77)
    x, w, b = torch.randn(4, 32, 14, 14, generator=g), torch.randn(48, 32, 3, 3, generator=g), torch.randn(48, generator=g)
    co = opts(padding=(1, 1))
    gys = [torch.randn(4, 48, 14, 14, generator=g) for _ in range(2)]

    def weight_grad(x_grad, gy):
        xc, wc = ctorch.from_torch(x, requires_grad=x_grad), ctorch.from_torch(w, requires_grad=True)
        conv2d(xc, wc, ctorch.from_torch(b), co).backward(gy)
        return wc.grad.torch(), xc.grad.torch() if x_grad else None

    for gy in gys:
        alone, _ = weight_grad(False, ctorch.from_torch(gy))
        paired, gx = weight_grad(True, ctorch.from_torch(gy))
        assert torch.equal(paired, alone), "conv2d weight gradient differs when the input gradient runs first"
        xt, wt = x.clone().requires_grad_(), w.clone().requires_grad_()
        F.conv2d(xt, wt, b, padding=1).backward(gy)
        assert_same(gx, xt.grad, what="conv2d input gradient")
        assert_same(paired, wt.grad, what="conv2d weight gradient")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d_double_backward(dtype):
    """d/d(x, w) of |grad_x|^2 + |grad_w|^2 through create_graph against torch: runs the
    input- and weight-gradient kernels' own backward (each other and the forward)."""
    L = ctorch.lib
    sum_, mul, add = L.unary("ct_sum"), L.binary("ct_mul"), L.binary("ct_add")
    x = torch.randn(2, 4, 7, 6, dtype=dtype, requires_grad=True)
    w = torch.randn(6, 2, 3, 3, dtype=dtype, requires_grad=True)
    gy = torch.randn(2, 6, 4, 6, dtype=dtype)
    kw = dict(stride=(2, 1), padding=1, groups=2)
    o = ct_opts_of(kw)
    with case("conv2d"):
        gx, gw = torch.autograd.grad(F.conv2d(x, w, **kw), (x, w), gy, create_graph=True)
        want = torch.autograd.grad((gx * gx).sum() + (gw * gw).sum(), (x, w))
        cx, cw = (ctorch.from_torch(t.detach()).requires_grad_() for t in (x, w))
        conv2d(cx, cw, None, o).backward(ctorch.from_torch(gy), create_graph=True)
        cgx, cgw = cx.grad, cw.grad
        loss = add(sum_(mul(cgx, cgx)), sum_(mul(cgw, cgw)))
        for c in (cx, cw):  # the second backward accumulates into .grad: start from zero
            L.ct_set_grad(c, None)
        loss.backward()
        tol = dict(atol=1e-3, rtol=1e-4) if dtype == torch.float32 else {}
        for c, wt in zip((cx, cw), want):
            assert_same(c.grad.torch(), wt, what="second-order gradient", **tol)


@pytest.mark.parametrize("k", range(len(CONVT2D)))
def test_conv_transpose2d_float32(k):
    xs, ws, bias, kw = CONVT2D[k]
    x, w = torch.randn(xs), torch.randn(ws)
    b = torch.randn(ws[1] * kw.get("groups", 1)) if bias else None
    o = ct_opts_of(kw)
    ins = [x, w] + ([b] if bias else [])
    check("conv_transpose2d", lambda *a: convt2d(a[0], a[1], a[2] if bias else None, o),
          lambda *a: F.conv_transpose2d(a[0], a[1], a[2] if bias else None, **kw), ins)
    if k == 1:
        x64, w64 = x.double(), w.double()
        gradgradcheck("conv_transpose2d", lambda *a: convt2d(a[0], a[1], None, o), [x64, w64])


def test_conv2d_errors():
    x = torch.randn(2, 3, 5, 5)
    cases = [
        (x, torch.randn(4, 2, 3, 3), {}),          # channels mismatch
        (x, torch.randn(4, 3, 7, 7), {}),          # kernel larger than input
        (torch.randn(5, 5), torch.randn(4, 3, 3, 3), {}),  # rank
        (x, torch.randn(4, 3, 3), {}),             # weight rank
        (x, torch.randn(3, 1, 3, 3), dict(groups=2)),  # groups do not divide
        (x.double(), torch.randn(4, 3, 3, 3), {}),  # dtype mismatch
        (x, torch.randn(4, 3, 3, 3), dict(stride=2, padding="same")),
    ]
    for xx, ww, kw in cases:
        o = ct_opts_of(kw)
        check_error("conv2d", lambda a, b_: conv2d(a, b_, None, o), lambda a, b_: F.conv2d(a, b_, **kw), [xx, ww])


UNFOLD = [((2, 3, 6, 5), dict(kernel_size=3)), ((2, 2, 7, 7), dict(kernel_size=(2, 3), dilation=2, padding=1, stride=2)),
          ((3, 5, 4), dict(kernel_size=2, stride=(1, 2)))]


@pytest.mark.parametrize("k", range(len(UNFOLD)))
def test_unfold_fold(k):
    xs, kw = UNFOLD[k]
    unfold = ctorch.lib.declare("ct_nn_unfold", "T(T,i64[],i64[],i64[],i64[])")
    fold = ctorch.lib.declare("ct_nn_fold", "T(T,i64[],i64[],i64[],i64[],i64[])")
    args = [pair(kw.get("kernel_size")), pair(kw.get("dilation", 1)), pair(kw.get("padding", 0)), pair(kw.get("stride", 1))]
    x = torch.randn(xs, dtype=torch.float64)
    check("unfold", lambda a: unfold(a, *args), lambda a: F.unfold(a, **kw), [x])
    gradcheck("unfold", lambda a: unfold(a, *args), [x])
    cols = F.unfold(x, **kw)
    size = xs[-2:]
    check("fold", lambda a: fold(a, size, *args), lambda a: F.fold(a, size, **kw), [cols])
    gradcheck("fold", lambda a: fold(a, size, *args), [cols])
    check_error("fold", lambda a: fold(a, (size[0] + 5, size[1]), *args),
                lambda a: F.fold(a, (size[0] + 5, size[1]), **kw), [cols])
