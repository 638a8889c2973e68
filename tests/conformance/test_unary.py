"""Conformance of unary elementwise math (include/ctorch/math.h "unary") against PyTorch:
values and dtypes for every dtype family, non-contiguous / 0-dim / empty inputs,
special values, errors where torch raises, in-place and out= forms, gradients vs
torch (incl. complex), gradcheck and gradgradcheck in float64."""
import ctypes
import math
import zlib

import pytest
import torch

from _legacy import L, P, Noncontig, assert_same, check_forward, check_grads, fn, from_ct, last_error, sample, to_ct
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import ew_gradcheck as gradcheck
from harness import case

D = ctypes.c_double
NAN = float("nan")
fn("ct_round_decimals").argtypes = [P, ctypes.c_int]
fn("ct_nan_to_num").argtypes = [P, D, D, D]
fn("ct_nan_to_num_").argtypes = [P, D, D, D]

# name -> (torch function, domain for gradient tests: any / pos / unit / gt1)
UNARY = {
    "neg": (torch.neg, "any"), "abs": (torch.abs, "any"), "sign": (torch.sign, None), "sgn": (torch.sgn, "any"),
    "sqrt": (torch.sqrt, "pos"), "rsqrt": (torch.rsqrt, "pos"), "reciprocal": (torch.reciprocal, "pos"),
    "square": (torch.square, "any"), "exp": (torch.exp, "any"), "exp2": (torch.exp2, "any"),
    "expm1": (torch.expm1, "any"), "log": (torch.log, "pos"), "log2": (torch.log2, "pos"),
    "log10": (torch.log10, "pos"), "log1p": (torch.log1p, "pos"), "sin": (torch.sin, "any"),
    "cos": (torch.cos, "any"), "tan": (torch.tan, "unit"), "asin": (torch.asin, "unit"),
    "acos": (torch.acos, "unit"), "atan": (torch.atan, "any"), "sinh": (torch.sinh, "any"),
    "cosh": (torch.cosh, "any"), "tanh": (torch.tanh, "any"), "asinh": (torch.asinh, "any"),
    "acosh": (torch.acosh, "gt1"), "atanh": (torch.atanh, "unit"), "floor": (torch.floor, None),
    "ceil": (torch.ceil, None), "round": (torch.round, None), "trunc": (torch.trunc, None),
    "frac": (torch.frac, "pos"), "sigmoid": (torch.sigmoid, "any"), "erf": (torch.erf, "any"),
    "erfc": (torch.erfc, "any"), "erfinv": (torch.erfinv, "unit"), "lgamma": (torch.lgamma, "pos"),
    "digamma": (torch.digamma, "pos"), "logical_not": (torch.logical_not, None),
    "bitwise_not": (torch.bitwise_not, None), "conj": (lambda x: torch.conj(x).resolve_conj(), "any"),
    "isnan": (torch.isnan, None), "isinf": (torch.isinf, None), "isfinite": (torch.isfinite, None),
    "isposinf": (torch.isposinf, None), "isneginf": (torch.isneginf, None), "real": (torch.real, "any"),
    "imag": (torch.imag, "any"), "angle": (torch.angle, "any"), "nan_to_num": (torch.nan_to_num, "any"),
}
NO_INPLACE = {"isnan", "isinf", "isfinite", "isposinf", "isneginf", "real", "imag", "angle", "nan_to_num"}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
          torch.uint8, torch.bool, torch.complex64, torch.complex128]
# functions whose half-precision results torch computes differently enough (internal
# precision) that only a looser half tolerance is meaningful
HALF_LOOSE = {"lgamma", "digamma", "erfinv", "tan", "expm1", "exp2", "sinh", "cosh"}


def call_nan_to_num(x):
    return fn("ct_nan_to_num")(x, 0.0, NAN, NAN)


def cfn(name):
    if name == "nan_to_num":
        return call_nan_to_num
    return fn("ct_" + name)


def run_forward(name, x, nc=False):
    """One case under name: ctorch's value (or failure) for x matches torch's."""
    with case(name):
        _run_forward(name, x, nc)


def _run_forward(name, x, nc):
    tfn = UNARY[name][0]
    arg = Noncontig(x) if nc else x
    try:
        ref = tfn(x)
    except Exception:
        h = cfn(name)(to_ct(arg))
        assert not h, f"{name} succeeded for {x.dtype} where torch raised"
        assert last_error()
        return
    h = cfn(name)(to_ct(arg))
    assert h, f"{name} {x.dtype}: {last_error()}"
    out = from_ct(h)
    if x.dtype in (torch.float16, torch.bfloat16) and name in HALF_LOOSE:
        assert out.dtype == ref.dtype
        torch.testing.assert_close(out.float(), ref.float(), equal_nan=True, rtol=2e-2, atol=2e-2)
    else:
        assert_same(out, ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_values(name, dtype):
    torch.manual_seed(zlib.crc32(f"{name}{dtype}".encode()) % 1000)  # (str hash() differs per process)
    run_forward(name, sample(dtype, (5, 7)))
    run_forward(name, sample(dtype, (4, 6), special=False), nc=True)
    run_forward(name, sample(dtype, ()))
    run_forward(name, sample(dtype, (0, 3)))


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "sin", "cos", "expm1", "log1p", "atan", "erf", "erfc",
                                  "asinh", "sinh", "cosh", "log2", "log10", "exp2", "tan"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_vector_path_long(name, dtype):
    """Long contiguous inputs (SLEEF path incl. tails) and wide ranges, with specials."""
    x = torch.linspace(-30, 30, 1037, dtype=dtype)
    if name in ("log", "log2", "log10", "log1p"):
        x = torch.cat([x.abs(), torch.tensor([0.0, -0.0, float("inf"), NAN, 1e-30, 1e30], dtype=dtype)])
    else:
        x = torch.cat([x, torch.tensor([0.0, -0.0, float("inf"), -float("inf"), NAN, 88.5, -104.0], dtype=dtype)])
    for n in (x.numel(), 17, 5, 1):
        run_forward(name, x[:n])


def _bf16_inputs(n, seed):
    """bfloat16 values over a wide range, the special values, and values whose float32
    results land on bfloat16 rounding ties (squares and products of 8-bit significands)"""
    g = torch.Generator().manual_seed(seed)
    special = torch.tensor([0.0, -0.0, NAN, -NAN, float("inf"), float("-inf"), 1e-40, -1e-40, 3.0e38, -3.0e38,
                            1.0, -1.0, 0.5, 255.0, 257.0, 1.0078125])
    x = torch.randn(max(n, len(special)), generator=g)
    x = x * torch.exp2(torch.randint(-20, 20, x.shape, generator=g).float())
    x[: len(special)] = special
    return x[:n].bfloat16()


def test_bf16_generic_loops_round_like_float32():
    """The bfloat16 loops without a fused kernel compute in float32 and round once to
    nearest even through float32 blocks of 256 (loops.h, CT_BF16_BLOCKS): every value is
    the float32 op's on the widened input rounded once (NaN as the quiet NaN 0x7fc0), on
    lengths that end inside and on a block's edge, contiguous and broadcast operands, in
    place too."""
    def same(got, want, what):
        eq = (got.view(torch.int16) == want.view(torch.int16)) | (torch.isnan(got) & torch.isnan(want))
        # every NaN ctorch stores is the quiet NaN 0x7fc0, as its scalar conversion gives
        # (PyTorch's NaN bits differ between its own paths: 0x7fc0, 0x7fff, 0xffff)
        assert (got[torch.isnan(got)].view(torch.int16) == 0x7fc0).all(), f"{what}: NaN bits"
        k = int((~eq).nonzero()[0]) if not eq.all() else 0
        assert eq.all(), f"{what}: {(~eq).sum().item()} values differ, first at {k}: {got[k].item()!r}, " \
                         f"float32 rounded {want[k].item()!r}"
    # ops whose float32 results are correctly rounded (the same on both sides), through the
    # blocks or (square, reciprocal) the fused bfloat16 vector kernels; neg and abs are
    # sign-bit operations on contiguous runs, NaN payloads kept (test_half_abs_neg_bits)
    unary = {"square": torch.square, "sqrt": torch.sqrt, "reciprocal": torch.reciprocal, "floor": torch.floor,
             "trunc": torch.trunc, "relu": torch.relu}
    for n in (1, 255, 256, 3 * 256 + 37):
        x = _bf16_inputs(n, n)
        for name, tf in unary.items():
            with case(name):
                same(from_ct(fn("ct_" + name)(to_ct(x))), tf(x.float()).bfloat16(), f"{name} n={n}")
        with case("relu"):
            h = to_ct(x)
            assert fn("ct_relu_")(h) == 0
            same(from_ct(h), torch.relu(x.float()).bfloat16(), f"relu_ n={n}")
        y = _bf16_inputs(n, n + 1000)
        for name in ("maximum", "minimum", "fmax", "fmin"):  # exact in float32 on both sides
            tf = getattr(torch, name)
            with case(name):
                same(from_ct(fn("ct_" + name)(to_ct(x), to_ct(y))), tf(x.float(), y.float()).bfloat16(),
                     f"{name} n={n}")
                # one operand a broadcast scalar (stride 0 in the loop), either side
                same(from_ct(fn("ct_" + name)(to_ct(x), to_ct(y[-1:]))), tf(x.float(), y[-1:].float()).bfloat16(),
                     f"{name} n={n} scalar right")
                same(from_ct(fn("ct_" + name)(to_ct(y[-1:]), to_ct(x))), tf(y[-1:].float(), x.float()).bfloat16(),
                     f"{name} n={n} scalar left")


def test_special_values():
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.0, NAN, math.inf, -math.inf])
    for name in ("round", "floor", "ceil", "trunc", "frac", "sign", "sgn", "abs", "angle", "isposinf", "isneginf"):
        run_forward(name, x)
    d = torch.tensor([0.0, -0.0, -1.0, -2.5, 1e-8, 30.0, -math.inf, math.inf, NAN], dtype=torch.float64)
    run_forward("digamma", d)
    run_forward("lgamma", d)
    e = torch.tensor([-1.0, 1.0, 0.0, -0.0, 0.999999, -0.5, 1.5, NAN], dtype=torch.float64)
    run_forward("erfinv", e)
    run_forward("erfinv", e.float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_abs_neg_bits(dtype):
    """float16/bfloat16 abs and neg over contiguous runs clear or flip the sign bit of
    every value, NaN payloads and zeros included, as PyTorch's vector kernels (checked
    against them on the values that are not NaN); strided runs give PyTorch's values."""
    g = torch.Generator().manual_seed(3)
    bits = torch.randint(-2 ** 15, 2 ** 15, (4099,), generator=g, dtype=torch.int32)
    special = torch.tensor([0x0000, 0x8000, 0x7FC1, 0xFFC1, 0x7F81, 0xFF81, 0x7C01, 0xFC01, 0x0001, 0x8001],
                           dtype=torch.int32)
    b16 = torch.cat([special, bits]).to(torch.int16)
    x = b16.view(dtype)
    for name, want_bits in (("abs", b16 & 0x7FFF), ("neg", b16 ^ -0x8000)):
        with case(name):
            h = fn("ct_" + name)(to_ct(x))
            assert h, last_error()
            got = from_ct(h)
            assert torch.equal(got.view(torch.int16), want_bits), name
            ref = getattr(torch, name)(x)
            keep = ~torch.isnan(x)
            assert torch.equal(got[keep].view(torch.int16), ref[keep].view(torch.int16)), name
            # strided (a step-3 slice of the same values): PyTorch's values, NaN stays NaN
            xs = x[::3]
            fn("ct_slice").argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
            v = P(fn("ct_slice")(to_ct(x), 0, 0, x.numel(), 3))
            assert v.value, last_error()
            h = fn("ct_" + name)(v)
            assert h, last_error()
            got = from_ct(h)
            ref = getattr(torch, name)(xs)
            keep = ~torch.isnan(xs)
            assert torch.equal(got[keep].view(torch.int16), ref[keep].view(torch.int16)) and torch.isnan(got[~keep]).all()


def test_erfinv_float32_accuracy():
    """float32 erfinv over long runs (the vector form on AVX-512/AVX2: Giles' single-
    precision approximation, src/cpu/unary.c; the scalar form elsewhere): within 4e-7
    relative (about 3 ulp) of the float64 result everywhere in (-1, 1), down to the
    last floats below 1, with +-inf at +-1 and NaN outside, and torch's values within
    the float32 tolerance."""
    x = torch.cat([torch.linspace(-1, 1, 40001), 1 - torch.logspace(-7.2, -1, 500), torch.logspace(-30, -1, 300),
                   torch.tensor([1 - 2 ** -24, -1 + 2 ** -24, 0.0, -0.0, 1.0, -1.0, 1.5, -1.5, NAN, math.inf])]).float()
    with case("erfinv"):
        got = from_ct(fn("ct_erfinv")(to_ct(x)))
        ref = torch.erfinv(x.double())
        fin = torch.isfinite(ref) & (ref != 0)
        rel = ((got.double() - ref).abs() / ref.abs())[fin]
        assert rel.max().item() <= 4e-7, (rel.max().item(), x[fin][rel.argmax()].item())
        assert torch.equal(got[~fin].isnan(), ref[~fin].isnan())
        assert torch.equal(got[~fin & ~ref.isnan()], ref[~fin & ~ref.isnan()].float())  # +-inf, +-0
    run_forward("erfinv", x)


@pytest.mark.parametrize("decimals", [0, 1, 2, 3, -1, -2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64], ids=str)
def test_round_decimals(decimals, dtype):
    x = sample(dtype, (6, 5)) * (100 if dtype.is_floating_point else 1)
    check_forward("ct_round_decimals", lambda t: torch.round(t, decimals=decimals), [x], extra=(decimals,))


@pytest.mark.parametrize("args", [(0.0, None, None), (1.5, 100.0, -100.0), (-2.0, None, 7.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.complex64,
                                   torch.int64, torch.bool], ids=str)
def test_nan_to_num(args, dtype):
    x = sample(dtype, (4, 5))
    if dtype.is_floating_point:
        x.view(-1)[3] = -math.inf
    nan, pos, neg = args
    ref = torch.nan_to_num(x, nan=nan, posinf=pos, neginf=neg)
    with case("nan_to_num"):
        h = fn("ct_nan_to_num")(to_ct(x), nan, NAN if pos is None else pos, NAN if neg is None else neg)
        assert h, last_error()
        assert_same(from_ct(h), ref)
    if dtype.is_floating_point:
        with case("nan_to_num_"):
            t = to_ct(x)
            assert fn("ct_nan_to_num_")(t, nan, NAN if pos is None else pos, NAN if neg is None else neg) == 0
            assert_same(from_ct(t), ref)


INPLACE = sorted(n for n in UNARY if n not in NO_INPLACE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool], ids=str)
@pytest.mark.parametrize("name", INPLACE)
def test_inplace_and_out(name, dtype):
    x = sample(dtype, (3, 4), special=False)
    y = x.clone()
    try:
        getattr(y, "conj_physical_" if name == "conj" else name + "_")()
        torch_ok = True
    except Exception:
        torch_ok = False
    tname = "conj_physical" if name == "conj" else name  # torch's in-place / out= form of conj
    with case(tname + "_"):
        t = to_ct(x)
        rc = fn(f"ct_{name}_")(t)
        if torch_ok:
            assert rc == 0, last_error()
            assert_same(from_ct(t), y)
        else:
            assert rc < 0 and last_error()
    # out=: written into a resized out of the result dtype
    try:
        ref = UNARY[name][0](x)
    except Exception:
        return
    with case(tname):
        out = to_ct(torch.empty(0, dtype=ref.dtype))
        assert fn(f"ct_{name}_out")(out, to_ct(x)) == 0, last_error()
        assert_same(from_ct(out), ref)


def sample_domain(domain, shape, dtype=torch.float64):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(shape, dtype=torch.float64, generator=g)
    if domain == "pos":
        x = x.abs() + 0.2
    elif domain == "unit":
        x = x.clamp(-2, 2) * 0.4
    elif domain == "gt1":
        x = x.abs() + 1.2
    else:
        x = x * 1.5
        x = torch.where(x.abs() < 0.05, x + 0.3, x)  # away from kinks at 0
    return x.to(dtype)


DIFF = sorted(n for n, (_, dom) in UNARY.items() if dom is not None and n not in ("real", "imag", "conj"))


@pytest.mark.parametrize("name", DIFF)
def test_grads(name):
    tfn, dom = UNARY[name]
    x = sample_domain(dom, (3, 4))
    check_grads("ct_" + name if name != "nan_to_num" else "ct_nan_to_num", tfn, [x],
                extra=(0.0, NAN, NAN) if name == "nan_to_num" else ())
    # broadcast-free 0-dim and non-contiguous
    check_grads("ct_" + name if name != "nan_to_num" else "ct_nan_to_num", tfn, [sample_domain(dom, ())],
                extra=(0.0, NAN, NAN) if name == "nan_to_num" else ())


@pytest.mark.parametrize("name", DIFF)
def test_gradcheck(name):
    tfn, dom = UNARY[name]
    x = sample_domain(dom, (2, 3))
    if name == "nan_to_num":
        gradcheck("ct_nan_to_num", [x], extra=(0.0, NAN, NAN), second_order=True)
    else:
        gradcheck("ct_" + name, [x], second_order=name != "digamma")


# holomorphic / complex-aware ops: gradients vs torch with complex inputs
COMPLEX_GRAD = ["neg", "abs", "sgn", "sqrt", "rsqrt", "reciprocal", "square", "exp", "exp2", "expm1", "log", "log2",
                "log10", "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                "acosh", "atanh", "sigmoid", "conj", "real", "imag", "angle"]


@pytest.mark.parametrize("name", COMPLEX_GRAD)
def test_complex_grads(name):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(2, 3, dtype=torch.complex128, generator=g) * 0.6) + (0.3 + 0.2j)
    tfn = UNARY[name][0]
    if name == "conj":
        tfn = torch.conj
    with case(name):
        xt = x.clone().requires_grad_(True)
        ref = tfn(xt)
        cx = to_ct(x, requires_grad=True)
        h = P(fn("ct_" + name)(cx))
        assert h.value, last_error()
        assert_same(from_ct(h), ref.detach().resolve_conj(), rtol=1e-10, atol=1e-12)
        gout = torch.randn(ref.shape, dtype=ref.dtype, generator=g)
        (tg,) = torch.autograd.grad(ref, xt, gout)
        assert L.ct_backward(h, to_ct(gout), False, False) == 0, last_error()
        torch.testing.assert_close(from_ct(L.ct_grad(cx)), tg, rtol=1e-9, atol=1e-12)


def test_errors():
    b = torch.tensor([True, False])
    i = torch.tensor([1, -2, 3])
    for name, x in [("abs", b), ("neg", b), ("frac", i), ("floor", b), ("floor", i.to(torch.complex64)),
                    ("sign", i.to(torch.complex64)), ("imag", i.float()), ("bitwise_not", i.float()),
                    ("erf", i.to(torch.complex64)), ("isposinf", i.to(torch.complex64))]:
        run_forward(name, x)
    with case("exp"):
        assert not fn("ct_exp")(None)
    with case("exp_"):
        x = to_ct(torch.randn(3), requires_grad=True)
        assert fn("ct_exp_")(x) < 0  # a leaf that requires grad can't be modified in place
        assert "leaf" in last_error() or "in-place" in last_error() or "inplace" in last_error()


# ---- polygamma of any order, and the higher derivatives of lgamma / digamma it enables ----
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5])
def test_polygamma_values_and_grad(n):
    import ctorch
    from harness import check, gradcheck
    pg = ctorch.lib.declare("ct_polygamma", "T(i64,T)")
    x = torch.cat([torch.rand(12, dtype=torch.float64) * 6 + 0.05, -torch.rand(4, dtype=torch.float64) * 3 - 0.1])
    x = x[(x - x.round()).abs() > 0.05]  # away from the poles
    # PyTorch's default float64 tolerances: torch's own trigamma is accurate to ~5e-10 relative
    # only (checked against mpmath; ctorch's to ~1e-12), so tighter bounds would test torch
    check("polygamma", lambda a: pg(n, a), lambda a: torch.polygamma(n, a), [x])
    check("polygamma", lambda a: pg(n, a), lambda a: torch.polygamma(n, a), [x.float().abs() + 0.5])
    gradcheck("polygamma", lambda a: pg(n, a), [x.abs() + 0.5])


def test_lgamma_third_derivative():
    import ctorch
    from harness import case, assert_same
    x = torch.tensor([0.7, 1.9, 4.2], dtype=torch.float64, requires_grad=True)
    g1, = torch.autograd.grad(torch.lgamma(x).sum(), x, create_graph=True)
    g2, = torch.autograd.grad(g1.sum(), x, create_graph=True)
    g3, = torch.autograd.grad(g2.sum(), x)
    cx = ctorch.from_torch(x.detach(), requires_grad=True)
    with case("lgamma"):
        y = ctorch.call("ct_sum", ctorch.call("ct_lgamma", cx))
        c1, = ctorch.autograd_grad([y], [cx], create_graph=True)
        c2, = ctorch.autograd_grad([ctorch.call("ct_sum", c1)], [cx], create_graph=True)
        c3, = ctorch.autograd_grad([ctorch.call("ct_sum", c2)], [cx])
        assert_same(c3, g3, rtol=1e-9, atol=1e-10)
