"""Conformance of ternary ops (where, clamp, lerp, addcmul, addcdiv) against PyTorch:
values, promotion, broadcasting, non-contiguous / 0-dim / empty inputs, errors,
gradients (incl. PyTorch's tie rules for clamp) and gradcheck."""
import ctypes

import pytest
import torch

from _legacy import L, P, Noncontig, assert_same, check_forward, check_grads, fn, from_ct, last_error, sample, to_ct
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import ew_gradcheck as gradcheck
from harness import case

D = ctypes.c_double
NAN = float("nan")
fn("ct_clamp_scalar").argtypes = [P, D, D]
fn("ct_clamp_scalar_").argtypes = [P, D, D]
for _n in ("ct_addcmul", "ct_addcdiv", "ct_addcmul_", "ct_addcdiv_"):
    fn(_n).argtypes = [P, P, P, D]


# ---------------------------------------------------------------- where
@pytest.mark.parametrize("pair", [(torch.float32, torch.float32), (torch.int64, torch.float32), (torch.uint8, torch.int8),
                                  (torch.bool, torch.bool), (torch.float16, torch.float64), (torch.complex64, torch.float32),
                                  (torch.int16, torch.int16)], ids=str)
def test_where_values(pair):
    c = torch.rand(4, 1, 3) > 0.5
    a = sample(pair[0], (5, 1))
    b = sample(pair[1], (3,))
    check_forward("ct_where", torch.where, [c, a, b])
    check_forward("ct_where", torch.where, [Noncontig(c[:, 0, :].clone().expand(4, 3).contiguous()), a[:4, :], b])


def test_where_scalars_and_errors():
    c = torch.tensor([True, False, True])
    I = torch.tensor([2, 3, -4])
    check_forward("ct_where", lambda c_, a, s: torch.where(c_, a, s), [c, I, 2.5])
    check_forward("ct_where", lambda c_, a, s: torch.where(c_, a, s), [c, I, 7])
    check_forward("ct_where", lambda c_, a, s: torch.where(c_, a, s), [c, 1, 2.5])
    check_forward("ct_where", torch.where, [torch.tensor(True), I, I[0].clone()])
    check_forward("ct_where", torch.where, [c[:0], I[:0], I[:0]])
    check_forward("ct_where", torch.where, [I, I, I])                 # non-bool condition
    check_forward("ct_where", torch.where, [c, I, torch.ones(4)])     # broadcast error
    with case("where"):
        assert "boolean" in (last_error() if not fn("ct_where")(to_ct(I), to_ct(I), to_ct(I)) else "")


@pytest.mark.parametrize("dt", [torch.uint8, torch.float16, torch.float32, torch.float64], ids=str)
def test_where_two_scalars(dt):
    """where(mask, v, 0) with both values 0-dim (dropout's noise): every element size,
    a long random mask (the vector loop and its tail)."""
    c = torch.rand(1003, generator=torch.Generator().manual_seed(5)) > 0.3
    v, z = torch.tensor(3, dtype=dt), torch.tensor(0, dtype=dt)
    check_forward("ct_where", torch.where, [c, v, z])
    check_forward("ct_where", torch.where, [c.view(17, 59), z, v])


def test_where_grads():
    c = torch.rand(3, 4) > 0.5
    a = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    check_grads("ct_where", torch.where, [c, a, b])
    gradcheck("ct_where", [c, a, b], second_order=True) if False else _gc_where(c, a, b)


def _gc_where(c, a, b):
    # gradcheck over the differentiable inputs only (the bool condition is fixed)
    hc = to_ct(c)
    f = fn("ct_where")._f  # the raw function: called from inside ct_gradcheck
    GC = ctypes.CFUNCTYPE(P, ctypes.c_int, ctypes.POINTER(P), P)
    cb = GC(lambda n, ins, u: f(hc, P(ins[0]), P(ins[1])))
    with case("where"):
        cin = (P * 2)(to_ct(a, True), to_ct(b, True))
        assert L.ct_gradcheck(cb, 2, cin, None, 1e-6, 1e-5, 1e-3) == 1, last_error()


# ---------------------------------------------------------------- clamp
def clamp_cases():
    x = torch.tensor([0., 1., 2., 3., 0.5, 5., 1., 1., 2., 1.5, NAN, 1., 1.], dtype=torch.float64)
    lo = torch.tensor([1., 1., 1., 1., 2., 2., 1., 2., 2., 2., 1., NAN, 1.], dtype=torch.float64)
    hi = torch.tensor([2., 2., 2., 2., 1., 1., 1., 2., 1., 1., 2., 2., NAN], dtype=torch.float64)
    return x, lo, hi


def test_clamp_tensor_values_and_grads():
    x, lo, hi = clamp_cases()
    check_grads("ct_clamp", torch.clamp, [x, lo, hi])
    check_grads("ct_clamp", lambda a, b, _n: torch.clamp(a, b), [x, lo, None])
    check_grads("ct_clamp", lambda a, _n, b: torch.clamp(a, None, b), [x, None, hi])
    xr = torch.randn(4, 5, dtype=torch.float64)
    check_grads("ct_clamp", torch.clamp, [xr, torch.full((5,), -0.5, dtype=torch.float64), torch.tensor(0.7, dtype=torch.float64)])


@pytest.mark.parametrize("dts", [(torch.int64, torch.float32, torch.float32), (torch.int32, torch.int64, torch.int64),
                                 (torch.float32, torch.float64, torch.float64), (torch.uint8, torch.int8, torch.int8),
                                 (torch.float16, torch.float16, torch.float16), (torch.bfloat16, torch.float32, torch.float32)],
                         ids=str)
def test_clamp_tensor_promotion(dts):
    x = sample(dts[0], (3, 4), special=False)
    lo = sample(dts[1], (4,), special=False)
    hi = lo + 3
    check_forward("ct_clamp", torch.clamp, [x, lo, hi])
    check_forward("ct_clamp", torch.clamp, [Noncontig(x.t().contiguous().t()), lo, None])
    check_forward("ct_clamp", torch.clamp, [x, None, hi[0].clone()])


def test_clamp_errors():
    x = torch.randn(3)
    with case("clamp"):
        assert not fn("ct_clamp")(to_ct(x), None, None)
        assert "At least one of 'min' or 'max'" in last_error()
    z = torch.randn(3, dtype=torch.complex64)
    with case("clamp"):
        assert not fn("ct_clamp")(to_ct(z), to_ct(z), None)
        assert "complex" in last_error()
    check_forward("ct_clamp", torch.clamp, [x, torch.zeros(4), None])  # broadcast error


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32, torch.uint8, torch.bool,
                                   torch.float16], ids=str)
@pytest.mark.parametrize("bounds", [(1.0, 2.0), (1.0, NAN), (NAN, 2.0), (2.0, 1.0), (0.5, 3.5), (-1.0, 0.0)], ids=str)
def test_clamp_scalar(dtype, bounds):
    x = sample(dtype, (4, 5), special=dtype.is_floating_point)
    lo, hi = bounds

    def py(v):  # ctorch treats an integral bound on an integer/bool tensor as a Python int
        if v != v:
            return None
        if (not dtype.is_floating_point) and float(v).is_integer():
            return int(v)
        return v
    check_forward("ct_clamp_scalar", lambda a: torch.clamp(a, py(lo), py(hi)), [x], extra=[D(lo), D(hi)])


def test_clamp_scalar_grads_and_inplace():
    x, _, _ = clamp_cases()
    for lo, hi in [(1.0, 2.0), (1.0, NAN), (NAN, 2.0), (2.0, 1.0)]:
        check_grads("ct_clamp_scalar", lambda a: torch.clamp(a, None if lo != lo else lo, None if hi != hi else hi),
                    [x], extra=[D(lo), D(hi)])
    xr = torch.randn(3, 4, dtype=torch.float64)
    with case("clamp_"):
        h = to_ct(xr)
        assert fn("ct_clamp_scalar_")(h, D(-0.5), D(0.5)) == 0
        assert_same(from_ct(h), xr.clamp(-0.5, 0.5))
    with case("clamp_"):
        hi_ = to_ct(torch.tensor([1, 5, -3]))
        assert fn("ct_clamp_scalar_")(hi_, D(0.5), D(NAN)) != 0   # float result into an int tensor
    with case("clamp_"):
        h = to_ct(xr)
        assert fn("ct_clamp_")(h, to_ct(torch.zeros(4, dtype=torch.float64)), None) == 0
        assert_same(from_ct(h), xr.clamp(min=torch.zeros(4, dtype=torch.float64)))
    gradcheck("ct_clamp_scalar", [torch.tensor([0.3, 1.2, -2.0, 0.9], dtype=torch.float64)], extra=[D(-1.0), D(1.0)])


def test_clamp_gradcheck():
    x = torch.tensor([0.3, 1.2, -2.0, 0.9, 0.1], dtype=torch.float64)
    lo = torch.tensor([-1.0, 0.0, -1.0, 0.95, -0.5], dtype=torch.float64)
    hi = torch.tensor([1.0, 1.0, 1.5, 2.0, 0.05], dtype=torch.float64)
    gradcheck("ct_clamp", [x, lo, hi])


# ---------------------------------------------------------------- lerp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.float16, torch.bfloat16], ids=str)
def test_lerp_values(dtype):
    s = sample(dtype, (3, 4), special=False)
    e = sample(dtype, (4,), special=False)
    w = torch.rand(3, 1).to(dtype) * 1.4 - 0.2   # both branches of the two-sided formula
    check_forward("ct_lerp", torch.lerp, [s, e, w])
    check_forward("ct_lerp", torch.lerp, [Noncontig(s.t().contiguous().t()), e, w[0, 0].clone()])
    check_forward("ct_lerp", lambda a, b, c: torch.lerp(a, b, c), [s, e, 0.75])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_ternary_long_runs(dtype):
    """float16 / bfloat16 lerp, clamp, addcmul and addcdiv over runs longer than the
    kernels' float32 blocks (256 values, src/cpu/binary.c), every input contiguous or one
    broadcast value, with NaN and infinities among them."""
    g = torch.Generator().manual_seed(11)
    n = 1003
    x, y = ((torch.randn(n, generator=g) * 4).to(dtype) for _ in range(2))
    w = (torch.rand(n, generator=g) * 1.4 - 0.2).to(dtype)
    d = (torch.rand(n, generator=g) + 0.5).to(dtype)
    x[5], y[300], w[600], x[900], y[901] = NAN, float("inf"), NAN, float("-inf"), NAN
    lo, hi = (torch.randn(n, generator=g) - 1).to(dtype), (torch.randn(n, generator=g) + 1).to(dtype)
    lo[400], hi[700] = NAN, NAN
    one = lambda t, i: t[i].clone()  # noqa: E731  (a 0-dim operand: broadcast to the run)
    for a, b, c in [(x, y, w), (x, one(y, 7), w), (x, y, one(w, 3)), (x, one(y, 0), one(w, 1)), (one(x, 2), y, w)]:
        check_forward("ct_lerp", torch.lerp, [a, b, c])
    for a, b, c in [(x, lo, hi), (x, one(lo, 0), hi), (x, lo, one(hi, 9)), (one(x, 4), lo, hi)]:
        check_forward("ct_clamp", torch.clamp, [a, b, c])
    for op, c in (("addcmul", w), ("addcdiv", d)):
        tf = getattr(torch, op)
        for a, b, cc in [(x, y, c), (x, one(y, 1), c), (one(x, 6), y, one(c, 2))]:
            check_forward("ct_" + op, lambda p, q, r: tf(p, q, r, value=0.75), [a, b, cc], extra=[D(0.75)])


def test_lerp_errors_and_grads():
    f = torch.randn(3)
    check_forward("ct_lerp", torch.lerp, [f, f.double(), torch.tensor([0.5])])
    check_forward("ct_lerp", torch.lerp, [f, f, torch.tensor([0.5], dtype=torch.float64)])
    check_forward("ct_lerp", torch.lerp, [f, f, torch.tensor(0.5, dtype=torch.float64)])
    check_forward("ct_lerp", lambda a, b, w: torch.lerp(a, b, w), [torch.tensor([1, 2]), torch.tensor([3, 4]), 0.5])
    s = torch.randn(3, 4, dtype=torch.float64)
    e = torch.randn(4, dtype=torch.float64)
    w = torch.rand(3, 1, dtype=torch.float64) * 1.4 - 0.2
    check_grads("ct_lerp", torch.lerp, [s, e, w])
    gradcheck("ct_lerp", [s, e, w], second_order=True)


# ---------------------------------------------------------------- addcmul / addcdiv
@pytest.mark.parametrize("op", ["addcmul", "addcdiv"])
@pytest.mark.parametrize("dts", [(torch.float32,) * 3, (torch.float64,) * 3, (torch.int64, torch.float32, torch.int64),
                                 (torch.int64,) * 3, (torch.int32, torch.int32, torch.int64), (torch.bool,) * 3,
                                 (torch.complex64,) * 3, (torch.float16,) * 3, (torch.float32, torch.int64, torch.int64)],
                         ids=str)
def test_addc_values(op, dts):
    x = sample(dts[0], (3, 4), special=False)
    t1 = sample(dts[1], (4,), special=False)
    t2 = sample(dts[2], (3, 1), nonzero=True, special=False)
    tf = getattr(torch, op)
    value = 2 if not dts[0].is_floating_point and not dts[0].is_complex else 0.75
    check_forward("ct_" + op, lambda a, b, c: tf(a, b, c, value=value), [x, t1, t2], extra=[D(value)])
    check_forward("ct_" + op, lambda a, b, c: tf(a, b, c, value=value), [Noncontig(x.t().contiguous().t()), t1[0].clone(), t2],
                  extra=[D(value)])


@pytest.mark.parametrize("op", ["addcmul", "addcdiv"])
def test_addc_grads_inplace(op):
    x = torch.randn(3, 4, dtype=torch.float64)
    t1 = torch.randn(4, dtype=torch.float64)
    t2 = torch.rand(3, 1, dtype=torch.float64) + 0.5
    tf = getattr(torch, op)
    check_grads("ct_" + op, lambda a, b, c: tf(a, b, c, value=-1.5), [x, t1, t2], extra=[D(-1.5)])
    gradcheck("ct_" + op, [x, t1, t2], extra=[D(0.3)], second_order=True)
    with case(op + "_"):
        h = to_ct(x)
        assert fn("ct_" + op + "_")(h, to_ct(t1), to_ct(t2), D(0.5)) == 0, last_error()
        assert_same(from_ct(h), tf(x, t1, t2, value=0.5))
    with case(op + "_"):
        assert fn("ct_" + op + "_")(to_ct(t1), to_ct(x), to_ct(t2), D(0.5)) != 0    # shape of self can't grow
    check_forward("ct_" + op, lambda a, b, c: tf(a, b, c), [x, t1, torch.ones(5)], extra=[D(1.0)])  # broadcast error
