"""Conformance of binary elementwise ops against PyTorch: values, dtypes, broadcasting,
non-contiguous inputs, 0-dim / empty tensors, errors, gradients and gradcheck.

Plain ctypes access to the library through the helpers of _legacy.py (section A); each
check is recorded as a case under its op's PyTorch name."""
import ctypes
import math

import pytest
import torch

from _legacy import L, P, Noncontig, assert_same, check_forward, check_grads, fn, from_ct, last_error, sample, to_ct
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import ew_gradcheck as gradcheck
from harness import assert_same as h_assert_same, case

import ctorch

# ---------------------------------------------------------------- value tests
FLOAT_OPS = {
    "pow": torch.pow, "atan2": torch.atan2, "hypot": torch.hypot, "fmod": torch.fmod, "remainder": torch.remainder,
    "maximum": torch.maximum, "minimum": torch.minimum, "fmax": torch.fmax, "fmin": torch.fmin, "xlogy": torch.xlogy,
    "floor_divide": torch.floor_divide, "logaddexp": torch.logaddexp, "logaddexp2": torch.logaddexp2,
    "copysign": torch.copysign,
}
CMP_OPS = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge}
LOGIC_OPS = {"logical_and": torch.logical_and, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor}
BIT_OPS = {"bitwise_and": torch.bitwise_and, "bitwise_or": torch.bitwise_or, "bitwise_xor": torch.bitwise_xor,
           "bitwise_left_shift": torch.bitwise_left_shift, "bitwise_right_shift": torch.bitwise_right_shift}
ALL_OPS = {**FLOAT_OPS, **CMP_OPS, **LOGIC_OPS, **BIT_OPS}


def test_complex_logaddexp_special_values():
    """Complex logaddexp takes PyTorch's branch (max + log1p(e^(min - max)), so the
    imaginary part is not wrapped to the principal value) and its special cases: a NaN
    in either part of either operand, both real parts -inf (min returned) or +inf."""
    inf, nan = float("inf"), float("nan")
    a = [1 + 2j, 0.5 - 1j, complex(-inf, 1), complex(inf, 0), complex(nan, 0), complex(0, nan), 3 + 0j,
         complex(-inf, 0), 1 + 0j, 2 + 1j, -40 + 3j, complex(inf, 2)]
    b = [0.3 + 0.1j, 2 + 3j, complex(-inf, 2), complex(inf, 1), 1 + 1j, 2 + 0j, complex(-inf, 5), 2 + 0j,
         1 + 3j, 2 + 1j, 40 - 3j, 1 + 1j]
    for dt in (torch.complex64, torch.complex128):
        ta, tb = torch.tensor(a, dtype=dt), torch.tensor(b, dtype=dt)
        check_forward("ct_logaddexp", torch.logaddexp, [ta, tb], rtol=1e-5, atol=1e-6)
        check_forward("ct_logaddexp", torch.logaddexp, [tb, ta], rtol=1e-5, atol=1e-6)


DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
          torch.float32, torch.float64, torch.complex64]


@pytest.mark.parametrize("op", sorted(ALL_OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_same_dtype(op, dtype):
    a = sample(dtype, (3, 5))
    b = sample(dtype, (3, 5), nonzero=True)
    if op in ("bitwise_left_shift", "bitwise_right_shift") and not dtype.is_floating_point and dtype != torch.bool:
        b = torch.randint(0, 8 * a.element_size(), (3, 5)).to(dtype) if dtype != torch.uint8 else torch.randint(0, 8, (3, 5), dtype=dtype)
    check_forward("ct_" + op, ALL_OPS[op], [a, b], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(ALL_OPS))
@pytest.mark.parametrize("pair", [(torch.int64, torch.float32), (torch.bool, torch.int32), (torch.uint8, torch.int8),
                                  (torch.float32, torch.float64), (torch.int32, torch.float16), (torch.float32, torch.complex64)],
                         ids=str)
def test_promotion_broadcast(op, pair):
    a = sample(pair[0], (4, 1, 3))
    b = sample(pair[1], (5, 1), nonzero=True)
    check_forward("ct_" + op, ALL_OPS[op], [a, b], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(ALL_OPS))
@pytest.mark.parametrize("scalar", [2, 2.5, True, -3], ids=str)
@pytest.mark.parametrize("dtype", [torch.int32, torch.float32, torch.bool, torch.uint8], ids=str)
def test_wrapped_scalar(op, scalar, dtype):
    a = sample(dtype, (6,))
    tf = ALL_OPS[op]
    check_forward("ct_" + op, lambda x, s: tf(x, torch.tensor(s) if op in ("hypot", "atan2", "maximum", "minimum",
                  "fmax", "fmin", "logical_and", "logical_or", "logical_xor") else s), [a, scalar], rtol=1e-5, atol=1e-6) \
        if False else _wrapped(op, tf, a, scalar)


def _wrapped(op, tf, a, s):
    # Python scalars (wrapped numbers) in torch; ops without a Scalar overload use
    # torch's own wrapped-number conversion through torch.Tensor dunder paths.
    ref_fn = {"pow": lambda x: torch.pow(x, s), "fmod": lambda x: torch.fmod(x, s),
              "remainder": lambda x: torch.remainder(x, s), "floor_divide": lambda x: torch.floor_divide(x, s),
              "eq": lambda x: x == s, "ne": lambda x: x != s, "lt": lambda x: x < s, "le": lambda x: x <= s,
              "gt": lambda x: x > s, "ge": lambda x: x >= s, "bitwise_and": lambda x: x & s,
              "bitwise_or": lambda x: x | s, "bitwise_xor": lambda x: x ^ s, "bitwise_left_shift": lambda x: x << s,
              "bitwise_right_shift": lambda x: x >> s, "xlogy": lambda x: torch.xlogy(x, s),
              "copysign": lambda x: torch.copysign(x, s)}.get(op)
    if ref_fn is None:
        pytest.skip("torch has no Python-scalar overload for " + op)
    check_forward("ct_" + op, lambda x, _s: ref_fn(x), [a, s], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(ALL_OPS))
def test_noncontiguous_zero_dim_empty(op):
    tf = ALL_OPS[op]
    is_bit = op.startswith("bitwise")
    dt = torch.int32 if is_bit else torch.float64
    a = sample(dt, (4, 3))
    b = sample(dt, (4, 3), nonzero=True)
    if is_bit:
        b = b.abs() % 8
    check_forward("ct_" + op, tf, [Noncontig(a), b])
    check_forward("ct_" + op, tf, [a, Noncontig(b)])
    check_forward("ct_" + op, tf, [a, b[0, 0].clone()])                     # 0-dim tensor operand
    check_forward("ct_" + op, tf, [a[0, 0].clone(), b[1, 1].clone()])      # both 0-dim
    check_forward("ct_" + op, tf, [sample(dt, (0, 3)), b[:1]])            # empty result
    check_forward("ct_" + op, tf, [a, sample(dt, (5,))])                   # broadcast error


def test_float_special_values():
    x = torch.tensor([-7.0, 7.0, -7.5, 5.0, -0.0, 5.0, 0.0, -3.0, float("inf"), -5.0], dtype=torch.float64)
    y = torch.tensor([2.0, -2.0, 2.0, 0.0, 3.0, -0.0, 0.0, 3.0, 2.0, float("inf")], dtype=torch.float64)
    for op in ("floor_divide", "fmod", "remainder", "pow", "atan2", "hypot", "xlogy"):
        check_forward("ct_" + op, FLOAT_OPS[op], [x, y])
    for mode in ("trunc", "floor"):
        check_forward("ct_div_mode", lambda a, b: torch.div(a, b, rounding_mode=mode), [x, y], extra=[mode.encode()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_vector_math_binary_long_runs(dtype):
    """atan2, hypot, pow, fmod, remainder, floor_divide, logaddexp and logaddexp2 over runs that fill whole vectors and leave
    a tail (1003 values; SLEEF's vector functions on AVX-512/AVX2, src/cpu/binary.c, the
    half types through float32 blocks), each operand contiguous or one broadcast value,
    with the special values of test_float_special_values among them. fmod, remainder and
    floor_divide are exact; atan2, hypot and pow within a few ulp of PyTorch's (which
    takes its vector functions too, and libm for the tail)."""
    g = torch.Generator().manual_seed(3)
    n = 1003
    x = (torch.randn(n, generator=g, dtype=torch.float64) * 6)
    y = (torch.randn(n, generator=g, dtype=torch.float64) * 3)
    inf, nan = float("inf"), float("nan")
    sx = [-7.0, 7.0, -7.5, 5.0, -0.0, 5.0, 0.0, -3.0, inf, -5.0, nan, 2.0, inf, -inf, inf, -inf, 90.0]
    sy = [2.0, -2.0, 2.0, 0.0, 3.0, -0.0, 0.0, 3.0, 2.0, inf, 1.0, nan, inf, -inf, -inf, inf, -90.0]
    for k, (a, b) in enumerate(zip(sx, sy)):  # in the vector body and in the tail
        x[10 + k], y[10 + k], x[n - 1 - k], y[n - 1 - k] = a, b, a, b
    x, y = x.to(dtype), y.to(dtype)
    px = x.abs() + 0.5  # pow: positive bases (a negative base to a fractional power is NaN on both sides)
    tol = {} if dtype in (torch.float16, torch.bfloat16) else dict(rtol=4 * torch.finfo(dtype).eps, atol=0)
    for op in ("atan2", "hypot", "fmod", "remainder", "floor_divide", "pow", "logaddexp", "logaddexp2"):
        a0 = px if op == "pow" else x
        exact = op in ("fmod", "remainder", "floor_divide") and dtype in (torch.float32, torch.float64)
        t = tol
        if op.startswith("logaddexp") and tol:
            # m + log1p(e^-|a - b|) cancels where the result is near 0: a few ulp of the
            # terms (|m| < 32 here), which libm's and SLEEF's exp/log1p round differently
            t = dict(tol, atol=4 * torch.finfo(dtype).eps * 32)
        for a, b in [(a0, y), (a0, y[7].clone()), (a0[5].clone(), y)]:
            check_forward("ct_" + op, FLOAT_OPS[op], [a, b], **(dict(rtol=0, atol=0) if exact else t))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_floor_divide_bits(dtype):
    """floor_divide bit for bit PyTorch's, signed zeros included, over every pair of
    special values and random magnitudes, in the vector body and the tail; a quotient
    that overflows for finite operands is +-inf, where SLEEF's fmod gives NaN."""
    nan = float("nan")
    sp = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.0, -3.0, 7.0, -7.0, 1e-30, -1e-30, 1e30, -1e30,
          math.inf, -math.inf, nan, 0.3, -0.3]
    if dtype == torch.float64:
        sp += [1e300, -1e300, 1e-300]
    pairs = [(a, b) for a in sp for b in sp]
    g = torch.Generator().manual_seed(9)
    r = torch.randn(2, 2003, generator=g, dtype=torch.float64) * torch.exp(torch.randn(2, 2003, generator=g) * 4)
    x = torch.cat([torch.tensor([a for a, _ in pairs], dtype=torch.float64), r[0]]).to(dtype)
    y = torch.cat([torch.tensor([b for _, b in pairs], dtype=torch.float64), r[1]]).to(dtype)
    bits = torch.int32 if dtype == torch.float32 else torch.int64
    with case("floor_divide"):
        got = from_ct(fn("ct_floor_divide")(to_ct(x), to_ct(y)))
        want = torch.floor_divide(x, y)
        same = (got.view(bits) == want.view(bits)) | (got.isnan() & want.isnan())
        assert same.all(), [(x[i].item(), y[i].item(), got[i].item(), want[i].item())
                            for i in (~same).nonzero().flatten()[:5].tolist()]


def test_float16_comparisons_every_value():
    """float16 comparisons and logical ops (on the bits) against PyTorch's for every float16 value
    (NaNs with any payload, both zeros, subnormals, infinities) paired with a shuffle of
    them and with a broadcast special on either side, contiguous and strided."""
    allv = torch.arange(-2 ** 15, 2 ** 15, dtype=torch.int32).to(torch.int16).view(torch.float16)
    g = torch.Generator().manual_seed(11)
    other = allv[torch.randperm(allv.numel(), generator=g)]
    specials = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1.0, -6.0e-8, 65504.0]
    for name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
        tf = getattr(torch, name)
        with case(name):
            cases = [(allv, other), (allv[:-1:3], other[2::3]), (allv, allv)]
            cases += [(allv, torch.tensor([v], dtype=torch.float16)) for v in specials]
            cases += [(torch.tensor([v], dtype=torch.float16), allv) for v in specials]
            for a, b in cases:
                got = from_ct(fn("ct_" + name)(to_ct(a), to_ct(b)))
                want = tf(a, b)
                assert torch.equal(got, want), (name, a.shape, b.shape, (got != want).sum().item())
            # a strided view on the ctorch side (a step-2 slice): the loop's strided path
            fn("ct_slice").argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
            va = P(fn("ct_slice")(to_ct(allv), 0, 0, allv.numel(), 2))
            vb = P(fn("ct_slice")(to_ct(other), 0, 1, other.numel(), 2))
            got = from_ct(fn("ct_" + name)(va, vb))
            assert torch.equal(got, tf(allv[::2], other[1::2])), name


def test_pow_scalar_shortcuts():
    x = torch.rand(100, dtype=torch.float64) * 3 + 0.1
    for e in (2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.7, 0.0):
        fn("ct_pow_scalar").argtypes = [P, ctypes.c_double]
        check_forward("ct_pow_scalar", lambda a: torch.pow(a, e), [x], extra=[ctypes.c_double(e)])
        check_forward("ct_pow_scalar", lambda a: torch.pow(a, e), [x.float()], extra=[ctypes.c_double(e)])


def test_integer_edge_cases():
    a = torch.tensor([-7, 7, -(2 ** 63), 2 ** 63 - 1, 0], dtype=torch.int64)
    b = torch.tensor([2, -2, -1, -1, 3], dtype=torch.int64)
    for op in ("floor_divide", "fmod", "remainder", "pow"):
        check_forward("ct_" + op, FLOAT_OPS[op], [a, b])
    # (torch itself traps on INT64_MIN / -1 with rounding_mode="trunc": compare the rest;
    # ctorch wraps to INT64_MIN there, checked below)
    keep = torch.tensor([0, 1, 3, 4])
    for mode in ("trunc", "floor"):
        check_forward("ct_div_mode", lambda x, y: torch.div(x, y, rounding_mode=mode), [a[keep], b[keep]],
                      extra=[mode.encode()])
    with case("div"):
        out = from_ct(fn("ct_div_mode")(to_ct(a[2:3]), to_ct(b[2:3]), b"trunc"))
        assert out.tolist() == [-(2 ** 63)]
    # integer pow: wrapping, negative tensor exponents
    check_forward("ct_pow", torch.pow, [torch.tensor([3, 2, -1, 1, 5]), torch.tensor([40, 63, -3, -2, -1])])
    check_forward("ct_pow", torch.pow, [torch.tensor([2, 3], dtype=torch.int8), torch.tensor([7, 5], dtype=torch.int8)])
    # shifts by any amount, all integer dtypes
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        bits = torch.iinfo(dt).bits
        lo = 0 if dt == torch.uint8 else -100
        x = torch.randint(lo, 100, (40,), dtype=dt)
        s = torch.randint(0 if dt == torch.uint8 else -3, bits + 5, (40,), dtype=dt)
        check_forward("ct_bitwise_left_shift", torch.bitwise_left_shift, [x, s])
        check_forward("ct_bitwise_right_shift", torch.bitwise_right_shift, [x, s])


@pytest.mark.parametrize("op", ["floor_divide", "fmod", "remainder"])
def test_integer_division_by_zero(op):
    a = torch.tensor([5, 6, 7])
    b = torch.tensor([1, 0, 2])
    with case(op):
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            FLOAT_OPS[op](a, b)
        assert not fn("ct_" + op)(to_ct(a), to_ct(b))
        assert "ZeroDivisionError" in last_error()
    for mode in ("trunc", "floor"):
        with case("div"):
            assert not fn("ct_div_mode")(to_ct(a), to_ct(b), mode.encode())
            assert "ZeroDivisionError" in last_error()


def test_errors():
    I = torch.tensor([2, 3, -4])
    B = torch.tensor([True, False, True])
    Z = torch.tensor([1j, 2 + 0j])
    # integers to negative Python-int powers
    with case("pow"):
        assert not fn("ct_pow")(to_ct(I), to_ct(-1))
        assert "Integers to negative integer powers are not allowed." in last_error()
    with case("pow"):
        assert not fn("ct_pow")(to_ct(I[0].clone()), to_ct(-2))
    check_forward("ct_pow", torch.pow, [I, torch.tensor(-1)])    # 0-dim tensor exponent: allowed
    check_forward("ct_pow", torch.pow, [B, B])                    # pow not implemented for bool
    check_forward("ct_pow", lambda x, s: torch.pow(x, s), [B, 2])
    check_forward("ct_floor_divide", torch.floor_divide, [B, B])
    check_forward("ct_fmod", torch.fmod, [B, B])
    check_forward("ct_hypot", torch.hypot, [I, I])
    check_forward("ct_bitwise_left_shift", torch.bitwise_left_shift, [B, B])
    for op in ("maximum", "minimum", "fmax", "fmin", "lt", "le", "gt", "ge", "atan2", "remainder", "hypot"):
        check_forward("ct_" + op, ALL_OPS[op], [Z, Z])
    with case("maximum"):
        assert not fn("ct_maximum")(to_ct(Z), to_ct(Z))
        assert "maximum not implemented for complex tensors." in last_error()
    check_forward("ct_eq", torch.eq, [Z, Z])
    check_forward("ct_ne", torch.ne, [Z, Z.conj()])
    check_forward("ct_logical_and", torch.logical_and, [Z, torch.tensor([0.0, 1.0])])
    with case("div"):
        assert not fn("ct_div_mode")(to_ct(I), to_ct(I), b"round")
        assert "rounding_mode" in last_error()
    # bool subtraction (arith.c) still errors as in torch
    with case("sub"):
        assert not fn("ct_sub")(to_ct(B), to_ct(B))


# ---------------------------------------------------------------- in-place / out=
def test_inplace_and_out():
    a = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    for op in ("pow", "maximum", "fmod", "atan2", "xlogy"):
        with case(op + "_"):
            ha = to_ct(a.abs())
            assert fn("ct_" + op + "_")(ha, to_ct(b)) == 0, last_error()
            assert_same(from_ct(ha), ALL_OPS[op](a.abs(), b))
        with case(op):  # out=
            out = to_ct(torch.empty(0, dtype=torch.float64))
            assert fn("ct_" + op + "_out")(out, to_ct(a.abs()), to_ct(b)) == 0, last_error()
            assert_same(from_ct(out), ALL_OPS[op](a.abs(), b))
    # comparison in place writes 0/1 in self's dtype
    with case("lt_"):
        ha = to_ct(a)
        assert fn("ct_lt_")(ha, to_ct(b)) == 0
        assert_same(from_ct(ha), a.clone().lt_(b))
    # in-place result must be castable: int tensor ^ float is an error
    with case("pow_"):
        hi = to_ct(torch.tensor([1, 2, 3]))
        assert fn("ct_pow_")(hi, to_ct(0.5)) != 0
    # in-place result must keep self's shape
    with case("maximum_"):
        hb = to_ct(b)
        assert fn("ct_maximum_")(hb, to_ct(a)) != 0


# ---------------------------------------------------------------- gradients
GRAD_OPS = ["pow", "atan2", "hypot", "fmod", "remainder", "maximum", "minimum", "fmax", "fmin", "xlogy", "logaddexp",
            "logaddexp2", "copysign"]


@pytest.mark.parametrize("op", GRAD_OPS)
def test_grads_vs_torch(op):
    a = torch.randn(3, 4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    a[0, 1] = b[1]           # a tie
    if op in ("pow", "xlogy", "hypot"):
        a = a.abs() + 0.1 if op == "pow" else a
        b = b.abs() + 0.1 if op == "xlogy" else b
    check_grads("ct_" + op, FLOAT_OPS[op], [a, b])
    check_grads("ct_" + op, FLOAT_OPS[op], [a[0, 0].clone(), b])   # 0-dim + broadcast reduce


@pytest.mark.parametrize("op", ["maximum", "minimum", "fmax", "fmin"])
def test_minmax_grads_nan_ties(op):
    a = torch.tensor([1.0, 2.0, float("nan"), 3.0, float("nan"), 0.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1.0, 2.0, float("nan"), float("nan"), 5.0], dtype=torch.float64)
    check_grads("ct_" + op, FLOAT_OPS[op], [a, b])


def test_pow_grads_special():
    base = torch.tensor([0.0, 0.0, 0.0, 2.0, -1.5, 0.0], dtype=torch.float64)
    expo = torch.tensor([0.0, 1.0, -1.0, 0.0, 2.0, 2.5], dtype=torch.float64)
    check_grads("ct_pow", torch.pow, [base, expo])
    check_grads("ct_pow", lambda x, s: torch.pow(x, s), [base, 0.0])
    check_grads("ct_pow", lambda x, s: torch.pow(x, s), [base, 2.0])
    check_grads("ct_pow", lambda x, s: torch.pow(x, s), [base, 3])
    check_grads("ct_pow", lambda s, x: torch.pow(s, x), [2.0, expo])
    check_grads("ct_pow", lambda s, x: torch.pow(s, x), [0.0, expo])


def test_xlogy_grads_zero():
    x = torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    y = torch.tensor([0.0, -1.0, 2.0, 0.5, float("nan")], dtype=torch.float64)
    check_grads("ct_xlogy", torch.xlogy, [x, y])


@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_mode_grad_is_zero(mode):
    a = torch.randn(5, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64)
    check_grads("ct_div_mode", lambda x, y: torch.div(x, y, rounding_mode=mode), [a, b], extra=[mode.encode()])


def test_floor_divide_backward_not_implemented():
    with case("floor_divide"):
        a = to_ct(torch.randn(3, dtype=torch.float64), requires_grad=True)
        h = P(fn("ct_floor_divide")(a, to_ct(torch.ones(3, dtype=torch.float64))))
        assert h.value
        fn("ct_sum")
        assert L.ct_backward(P(fn("ct_sum")(h)), None, False, False) != 0
        assert "floor_divide" in last_error()


def test_no_grad_for_comparisons_and_logic():
    a = to_ct(torch.randn(3, dtype=torch.float64), requires_grad=True)
    L.ct_requires_grad.restype = ctypes.c_bool
    for op in list(CMP_OPS) + list(LOGIC_OPS):
        with case(op):
            h = P(fn("ct_" + op)(a, a))
            assert h.value and not L.ct_requires_grad(h)


@pytest.mark.parametrize("op", GRAD_OPS)
def test_gradcheck(op):
    torch.manual_seed(3)
    a = torch.randn(2, 3, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64) + 0.05
    if op in ("pow", "xlogy"):
        if op == "pow":
            a = a.abs() + 0.5
        else:
            b = b.abs() + 0.5
    if op in ("fmod", "remainder"):
        # stay away from the discontinuities of the quotient
        a = torch.tensor([[0.3, 1.7, -2.4], [3.3, -0.6, 5.2]], dtype=torch.float64)
        b = torch.tensor([0.7, -1.1, 2.9], dtype=torch.float64)
    gradcheck("ct_" + op, [a, b], second_order=op not in ("maximum", "minimum", "fmax", "fmin", "fmod", "remainder"))


def test_gradcheck_pow_scalar():
    fn("ct_pow_scalar").argtypes = [P, ctypes.c_double]
    a = torch.rand(5, dtype=torch.float64) + 0.5
    for e in (2.0, 0.5, -1.3, 1.0 / 3.0):
        gradcheck("ct_pow_scalar", [a], extra=[ctypes.c_double(e)], second_order=True)


LAYOUT_INPUTS = [
    ("transposed", lambda: (torch.randn(4, 3).t(), torch.randn(3, 4))),
    ("contiguous_then_transposed", lambda: (torch.randn(3, 4), torch.randn(4, 3).t())),
    ("channels_last", lambda: (torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
                               torch.randn(3, 1, 1))),
    ("permuted_broadcast", lambda: (torch.randn(5, 1), torch.randn(2, 3, 4, 5).permute(0, 2, 3, 1))),
    ("sliced", lambda: (torch.randn(4, 8)[:, ::2], torch.randn(4, 4))),
    ("expanded", lambda: (torch.randn(4, 1).expand(4, 3), torch.randn(3, 4).t())),
]


@pytest.mark.parametrize("name", [n for n, _ in LAYOUT_INPUTS])
def test_elementwise_result_layout_matches_torch(name):
    """Results keep the inputs' memory order the way TensorIterator does (same strides)."""
    a, b = dict(LAYOUT_INPUTS)[name]()
    for cname, tfn in (("ct_add", torch.add), ("ct_mul", torch.mul)):
        with case(cname[3:]):
            got = ctorch.call(cname, ctorch.from_torch(a), ctorch.from_torch(b))
            want = tfn(a, b)
            assert got.stride() == want.stride(), (got.stride(), want.stride())
            h_assert_same(got.torch(), want)
    with case("exp"):
        got = ctorch.call("ct_exp", ctorch.from_torch(a))
        assert got.stride() == torch.exp(a).stride()


_permute = ctorch._raw("ct_permute", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int))


def _perm(t, dims):
    return ctorch.Tensor(_permute(t.ptr, len(dims), (ctypes.c_int * len(dims))(*dims)))


@pytest.mark.parametrize("perm", [(1, 0, 2), (2, 1, 0), (0, 2, 1), (2, 0, 1)])
def test_permuted_outputs_in_memory_order(perm):
    """In-place ops and copies into a permuted (non-contiguous but dense) tensor walk it
    in memory order; every element still gets its own inputs: values as torch's, with
    broadcast operands and operands in a third layout."""
    lib = ctorch.lib
    add_, mul_ = lib.declare("ct_add_", "st(T,T)"), lib.declare("ct_mul_", "st(T,T)")
    base, t2 = torch.randn(5, 6, 7), torch.randn(7, 6, 5)
    src = t2.permute(2, 1, 0).permute(*perm)  # same shape as base.permute(perm), another layout
    row = torch.randn(base.permute(*perm).shape[-1])
    with case("add_"):
        want = base.permute(*perm) + row
        view = _perm(ctorch.from_torch(base), perm)
        add_(view, ctorch.from_torch(row))
        h_assert_same(view.torch(), want)
    with case("mul_"):
        want = base.permute(*perm) * src
        view = _perm(ctorch.from_torch(base), perm)
        add_src = _perm(_perm(ctorch.from_torch(t2), (2, 1, 0)), perm)
        mul_(view, add_src)
        h_assert_same(view.torch(), want)
    with case("copy_"):
        cz = ctorch.from_torch(torch.zeros(5, 6, 7))
        lib.ct_copy_(_perm(cz, perm), _perm(_perm(ctorch.from_torch(t2), (2, 1, 0)), perm))
        want = torch.zeros(5, 6, 7)
        want.permute(*perm).copy_(src)
        h_assert_same(cz.torch(), want)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_times_scalar_keeps_the_scalar_in_float(dtype):
    """PyTorch's CPU mul and div of a half-type tensor by one value take that value as a
    float32 of the original (a Python number, a 0-dim float64 tensor, a one-element
    tensor broadcast), not rounded to the half type; add and sub round it. Bit for bit,
    contiguous (the vector kernels) and strided, out of place and in place."""
    D = ctypes.c_double
    for name, args in (("ct_mul_scalar", [P, D]), ("ct_div_scalar", [P, D]), ("ct_add_scalar", [P, D]),
                       ("ct_sub_scalar", [P, D]), ("ct_mul", [P, P]), ("ct_div", [P, P]), ("ct_mul_", [P, P]),
                       ("ct_div_", [P, P])):
        fn(name).argtypes = args
    g = torch.Generator().manual_seed(3)
    base = (torch.randn(4099, generator=g) * 3).to(dtype)
    for x in (base, base[::3]):  # contiguous with a tail, and strided
        for s in (0.3, -1.7, 1e-3, 3.0):
            pairs = [("mul", lambda: fn("ct_mul_scalar")(to_ct(x), s), x * s),
                     ("div", lambda: fn("ct_div_scalar")(to_ct(x), s), x / s),
                     ("add", lambda: fn("ct_add_scalar")(to_ct(x), s), x + s),
                     ("sub", lambda: fn("ct_sub_scalar")(to_ct(x), s), x - s)]
            t64 = torch.tensor(s, dtype=torch.float64)  # a 0-dim tensor of a wider dtype
            pairs += [("mul", lambda: fn("ct_mul")(to_ct(x), to_ct(t64)), x * t64),
                      ("div", lambda: fn("ct_div")(to_ct(x), to_ct(t64)), x / t64)]
            one = torch.tensor([s], dtype=dtype)  # a one-element tensor of the same dtype, broadcast
            pairs += [("mul", lambda: fn("ct_mul")(to_ct(x), to_ct(one)), x * one)]
            for op, run, want in pairs:
                with case(op):
                    h = run()
                    assert h, last_error()
                    got = from_ct(h)
                    assert got.dtype == dtype and torch.equal(got.view(torch.int16), want.view(torch.int16)), \
                        f"{op} {dtype} by {s}: {(got != want).sum().item()} values differ from torch"
            for op, tf in (("mul_", torch.Tensor.mul_), ("div_", torch.Tensor.div_)):
                with case(op):
                    c = x.clone()
                    h = to_ct(c)
                    assert fn("ct_" + op)(h, to_ct(t64)) == 0, last_error()
                    want = tf(x.clone(), t64)
                    assert torch.equal(from_ct(h).view(torch.int16), want.view(torch.int16)), f"{op} {dtype} by {s}"
