"""Conformance of reductions and scans against PyTorch: values, dtypes, keepdim, dim
lists, 0-dim / empty / non-contiguous inputs, integer and reduced-precision dtypes,
NaN handling, errors, gradients (vs torch.autograd), gradcheck and gradgradcheck."""
import math

import pytest
import torch

import ctorch
from harness import (BOOL, COMPLEX, FLOATING, INTEGRAL, assert_same, case, check, check_error, describe,
                     gradcheck, gradgradcheck, make, samples)

D = ctorch.lib.declare
ALL_DIMS = -(2 ** 31)

c_sum = D("ct_sum", "T(T)")
c_sum_dim = D("ct_sum_dim", "T(T,shape,b,dt)")
c_nansum = D("ct_nansum", "T(T,shape,b)")
c_mean = D("ct_mean", "T(T)")
c_mean_dim = D("ct_mean_dim", "T(T,shape,b,dt)")
c_nanmean = D("ct_nanmean", "T(T,shape,b)")
c_prod = D("ct_prod", "T(T)")
c_prod_dim = D("ct_prod_dim", "T(T,i,b,dt)")
c_max = D("ct_max", "T(T)")
c_min = D("ct_min", "T(T)")
c_max_dim = D("ct_max_dim", "T(T,i,b,T*)")
c_min_dim = D("ct_min_dim", "T(T,i,b,T*)")
c_amax = D("ct_amax", "T(T,shape,b)")
c_amin = D("ct_amin", "T(T,shape,b)")
c_argmax = D("ct_argmax", "T(T,i,b)")
c_argmin = D("ct_argmin", "T(T,i,b)")
c_var = D("ct_var", "T(T,shape,d,b)")
c_std = D("ct_std", "T(T,shape,d,b)")
c_var_mean = D("ct_var_mean", "T(T,shape,d,b,T*)")
c_std_mean = D("ct_std_mean", "T(T,shape,d,b,T*)")
c_norm = D("ct_norm", "T(T,d,shape,b)")
c_logsumexp = D("ct_logsumexp", "T(T,shape,b)")
c_all = D("ct_all", "T(T,shape,b)")
c_any = D("ct_any", "T(T,shape,b)")
c_count_nonzero = D("ct_count_nonzero", "T(T,shape)")
c_median = D("ct_median", "T(T)")
c_median_dim = D("ct_median_dim", "T(T,i,b,T*)")
c_nanmedian = D("ct_nanmedian", "T(T)")
c_mode = D("ct_mode", "T(T,i,b,T*)")
c_cumsum = D("ct_cumsum", "T(T,i,dt)")
c_cumprod = D("ct_cumprod", "T(T,i,dt)")
c_cummax = D("ct_cummax", "T(T,i,T*)")
c_cummin = D("ct_cummin", "T(T,i,T*)")
c_logcumsumexp = D("ct_logcumsumexp", "T(T,i)")

def S(*a, **k):
    """One-tensor samples (harness.samples gives 1-tuples)."""
    return [t[0] for t in samples(*a, **k)]


ALL_DT = BOOL + INTEGRAL + FLOATING + COMPLEX
REAL_DT = BOOL + INTEGRAL + FLOATING
UNARY = S("unary")                       # float32 / float64, every layout
UNARY_ALL = S("unary", ALL_DT)
UNARY_REAL = S("unary", REAL_DT)


def dim_lists(x):
    """Dim lists to try for x: all dims ([] / None), one dim, two dims."""
    out = [[]]
    if x.dim() == 0:
        return out + [[0], [-1]]
    out += [[0], [-1]]
    if x.dim() >= 2:
        out += [[0, -1], [1]]
    return out


def single_dims(x):
    return [0, -1] if x.dim() <= 1 else [0, 1, -1]


def with_nans(x, start=0):
    """x (same layout) with NaN at every third element from start (floating dtypes)."""
    if not x.dtype.is_floating_point or x.numel() <= 2:
        return x
    m = torch.zeros(x.numel(), dtype=torch.bool)
    m[start::3] = True
    y = x.clone()
    y.masked_fill_(m.reshape(x.shape), float("nan"))
    return y


def tdim(dims):
    return None if not dims else dims


def _tol(x):
    """Looser tolerances for reduced-precision sums (different summation orders)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return dict(atol=1e-2, rtol=1e-2)
    return {}


# ---------------------------------------------------------------- sum / nansum / mean
@pytest.mark.parametrize("x", UNARY_ALL, ids=describe)
def test_sum(x):
    for dims in dim_lists(x):
        for keep in (False, True):
            if not dims and keep:
                continue
            check("sum", lambda a: c_sum_dim(a, dims, keep, None),
                  lambda a: torch.sum(a, dim=tdim(dims), keepdim=keep) if dims else torch.sum(a), [x], **_tol(x))
    check("sum", c_sum, torch.sum, [x], **_tol(x))


@pytest.mark.parametrize("dt", [torch.float64, torch.int32, torch.float32, torch.complex128])
def test_sum_dtype_arg(dt):
    for src in (torch.int32, torch.bool, torch.float32):
        x = make((3, 5), src)
        # grad=False: torch's autograd refuses float -> int / real -> complex casts here
        check("sum", lambda a: c_sum_dim(a, [1], False, dt), lambda a: torch.sum(a, 1, dtype=dt), [x],
              grad=dt.is_floating_point and not src.is_complex)


def test_sum_large_paths():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4096, 1024, generator=g)
    check("sum", lambda a: c_sum_dim(a, [0], False, None), lambda a: a.sum(0), [x], atol=1e-3, rtol=1e-4, grad=False)
    check("sum", lambda a: c_sum_dim(a, [1], False, None), lambda a: a.sum(1), [x], atol=1e-3, rtol=1e-4, grad=False)
    check("sum", c_sum, torch.sum, [x], atol=1e-2, rtol=1e-4, grad=False)
    y = torch.randn(1 << 20, generator=g, dtype=torch.float64)
    check("sum", c_sum, torch.sum, [y], atol=1e-9, rtol=1e-9, grad=False)
    z = torch.randn(64, 3, 512, generator=g).transpose(0, 2)      # non-contiguous, mixed dims
    check("sum", lambda a: c_sum_dim(a, [0, 2], True, None), lambda a: a.sum((0, 2), keepdim=True), [z],
          atol=1e-3, rtol=1e-4, grad=False)
    check("amax", lambda a: c_amax(a, [0], False), lambda a: a.amax(0), [x], grad=False)
    check("prod", lambda a: c_prod_dim(a, 0, False, None), lambda a: a.prod(0),
          [torch.rand(64, 300, generator=g, dtype=torch.float64) + 0.5], grad=False)
    i = torch.randint(-5, 5, (2048, 64), generator=g)
    check("sum", lambda a: c_sum_dim(a, [0], False, None), lambda a: a.sum(0), [i])
    b = torch.rand(3000, 40, generator=g) > 0.01
    check("all", lambda a: c_all(a, [0], False), lambda a: a.all(0), [b])
    check("any", lambda a: c_any(a, [], False), lambda a: a.any(), [~b])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_sum_half_rows(dtype):
    """float16 / bfloat16 sums of contiguous rows: widened 4096 at a time and summed as
    float32 rows are -- bit for bit ctorch's sum of the widened tensor, rounded once; and
    PyTorch's values (which also accumulate these types in float32)"""
    g = torch.Generator().manual_seed(5)
    for shape, dims in [((4096, 1024), [1]), ((3, 10000), [1]), ((7, 33), [1]), ((2, 3, 5000), [2]),
                        ((9000,), [0]), ((64, 300), [0, 1])]:
        x = (torch.randn(shape, generator=g) * 3 + 0.25).to(dtype)
        with case("sum"):
            got = c_sum_dim(ctorch.from_torch(x), dims, False, None).torch()
            wide = c_sum_dim(ctorch.from_torch(x.float()), dims, False, None).torch().to(dtype)
            assert got.dtype == dtype
            same = got.view(torch.int16) == wide.view(torch.int16)
            assert same.all(), f"{shape} over {dims}: {(~same).sum().item()} sums differ from the float32 sum rounded"
        check("sum", lambda a: c_sum_dim(a, dims, False, None), lambda a: a.sum(dims), [x], grad=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 64, 65])
@pytest.mark.parametrize("cols", [8, 10, 256, 257, 600])
def test_sum_columns_in_order(dtype, rows, cols):
    # a float sum over the leading dim (a bias's gradient) adds rows four at a time; each
    # column must still be the rows added one by one in double, in row order, rounded once
    g = torch.Generator().manual_seed(rows * 1000 + cols)
    # rows of magnitudes 1e-12 .. 1e12, so that the double sums round and another order of
    # addition shows (in float64; for float32 the final rounding to float hides it nearly
    # always: the float32 cases check the values and the rows' bookkeeping)
    scale = 10.0 ** (torch.rand(rows, 1, generator=g, dtype=torch.float64) * 24 - 12)
    x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * scale).to(dtype)
    def in_order(times):
        acc = torch.zeros(cols, dtype=torch.float64)
        for _ in range(times):
            for r in range(rows):
                acc = acc + x[r].double()
        return acc.to(dtype)

    with case("sum"):
        got = c_sum_dim(ctorch.from_torch(x), [0], False, None).torch()
        assert_same(got, in_order(1), atol=0, rtol=0)
        # the same rows through strides: a transposed view (reduced dim 1), and a
        # broadcast [3, rows, cols] reduced over (0, 1): the rows three times over
        got = c_sum_dim(ctorch.from_torch(x.t()), [1], False, None).torch()
        assert_same(got, in_order(1), atol=0, rtol=0)
        got = c_sum_dim(ctorch.from_torch(x.expand(3, rows, cols)), [0, 1], False, None).torch()
        assert_same(got, in_order(3), atol=0, rtol=0)


def test_sum_deterministic():
    x = torch.randn(1 << 21, generator=torch.Generator().manual_seed(3))
    with case("sum"):
        cx = ctorch.from_torch(x)
        vals = {c_sum(cx).item() for _ in range(5)}
        assert len(vals) == 1, vals


@pytest.mark.parametrize("x", S("unary", FLOATING + INTEGRAL + BOOL), ids=describe)
def test_nansum(x):
    x = with_nans(x)
    for dims in dim_lists(x):
        check("nansum", lambda a: c_nansum(a, dims, False), lambda a: torch.nansum(a, dim=tdim(dims)), [x], **_tol(x))
    check("nansum", lambda a: c_nansum(a, [], True), lambda a: torch.nansum(a, dim=None, keepdim=True), [x], **_tol(x))


def test_nansum_nan_grad():
    x = torch.tensor([[1.0, float("nan"), 2.0], [float("nan"), float("nan"), 3.0]], dtype=torch.float64)
    for dims in ([], [0], [1]):
        check("nansum", lambda a: c_nansum(a, dims, False), lambda a: torch.nansum(a, dim=tdim(dims)), [x])
    check_error("nansum", lambda a: c_nansum(a, [], False), lambda a: torch.nansum(a), [make((3,), torch.complex64)])


@pytest.mark.parametrize("x", S("unary", FLOATING + COMPLEX), ids=describe)
def test_mean(x):
    for dims in dim_lists(x):
        for keep in (False, True):
            check("mean", lambda a: c_mean_dim(a, dims, keep, None),
                  lambda a: torch.mean(a, dim=tdim(dims), keepdim=keep), [x], **_tol(x))
    check("mean", c_mean, torch.mean, [x], **_tol(x))


def test_mean_dtypes_errors():
    x = make((3, 4), torch.int64)
    msg = check_error("mean", c_mean, torch.mean, [x])
    assert "Input dtype must be either a floating point or complex dtype. Got: Long" in msg
    msg = check_error("mean", lambda a: c_mean_dim(a, [0], False, torch.int64),
                      lambda a: torch.mean(a, 0, dtype=torch.int64), [make((3, 4))])
    assert "Optional dtype must be either a floating point or complex dtype. Got: Long" in msg
    check("mean", lambda a: c_mean_dim(a, [1], False, torch.float64), lambda a: torch.mean(a, 1, dtype=torch.float64),
          [x])
    check("mean", lambda a: c_mean_dim(a, [1], False, torch.float64), lambda a: torch.mean(a, 1, dtype=torch.float64),
          [make((3, 4))])
    check_error("sum", lambda a: c_sum_dim(a, [0, 0], False, None), lambda a: torch.sum(a, (0, 0)), [make((2, 3))],
                match="multiple times")
    check_error("sum", lambda a: c_sum_dim(a, [2], False, None), lambda a: torch.sum(a, 2), [make((2, 3))])


@pytest.mark.parametrize("x", S("unary", [torch.float32, torch.float64, torch.float16]), ids=describe)
def test_nanmean(x):
    x = with_nans(x, 1)
    for dims in dim_lists(x):
        check("nanmean", lambda a: c_nanmean(a, dims, False), lambda a: torch.nanmean(a, dim=tdim(dims)), [x], **_tol(x))


# ---------------------------------------------------------------- prod
@pytest.mark.parametrize("x", S("unary", ALL_DT, low=0.5, high=1.5), ids=describe)
def test_prod(x):
    check("prod", c_prod, torch.prod, [x], **_tol(x))
    for d in single_dims(x):
        for keep in (False, True):
            check("prod", lambda a: c_prod_dim(a, d, keep, None), lambda a: torch.prod(a, d, keepdim=keep), [x],
                  **_tol(x))


def test_prod_zeros_grad():
    cases = [torch.tensor([2.0, 0.0, 3.0, 4.0]), torch.tensor([0.0, 0.0, 3.0]),
             torch.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 5.0], [0.0, 0.0, 1.0]]), torch.tensor([0.0]),
             torch.tensor(0.0)]
    for x in cases:
        x = x.double()
        check("prod", c_prod, torch.prod, [x])
        for d in ([0, -1] if x.dim() else [0]):
            for keep in (False, True):
                check("prod", lambda a: c_prod_dim(a, d, keep, None), lambda a: torch.prod(a, d, keepdim=keep), [x])
        gradcheck("prod", c_prod, [x])
        if x.dim():
            gradcheck("prod", lambda a: c_prod_dim(a, -1, False, None), [x])
            gradgradcheck("prod", lambda a: c_prod_dim(a, -1, False, None), [x])
        gradgradcheck("prod", c_prod, [x])


def test_prod_dtype():
    x = make((3, 4), torch.int8, low=1, high=3)
    check("prod", c_prod, torch.prod, [x])
    check("prod", lambda a: c_prod_dim(a, 1, False, torch.float64), lambda a: torch.prod(a, 1, dtype=torch.float64), [x])
    check("prod", c_prod, torch.prod, [make((5,), torch.bool)])


# ---------------------------------------------------------------- max / min / amax / amin / arg
@pytest.mark.parametrize("x", UNARY_REAL, ids=describe)
def test_max_min_full(x):
    check("max", c_max, torch.max, [x])
    check("min", c_min, torch.min, [x])


@pytest.mark.parametrize("x", UNARY_REAL, ids=describe)
def test_max_min_dim(x):
    for d in single_dims(x):
        for keep in (False, True):
            check("max", lambda a: c_max_dim(a, d, keep), lambda a: torch.max(a, d, keepdim=keep), [x])
            check("min", lambda a: c_min_dim(a, d, keep), lambda a: torch.min(a, d, keepdim=keep), [x])
            check("argmax", lambda a: c_argmax(a, d, keep), lambda a: torch.argmax(a, d, keepdim=keep), [x])
            check("argmin", lambda a: c_argmin(a, d, keep), lambda a: torch.argmin(a, d, keepdim=keep), [x])
    check("argmax", lambda a: c_argmax(a, ALL_DIMS, False), lambda a: torch.argmax(a), [x])
    check("argmin", lambda a: c_argmin(a, ALL_DIMS, False), lambda a: torch.argmin(a), [x])
    check("argmax", lambda a: c_argmax(a, ALL_DIMS, True), lambda a: torch.argmax(a, keepdim=True), [x])


@pytest.mark.parametrize("x", UNARY_REAL, ids=describe)
def test_amax_amin(x):
    for dims in dim_lists(x):
        for keep in (False, True):
            check("amax", lambda a: c_amax(a, dims, keep), lambda a: torch.amax(a, dim=dims, keepdim=keep), [x])
            check("amin", lambda a: c_amin(a, dims, keep), lambda a: torch.amin(a, dim=dims, keepdim=keep), [x])


def test_minmax_ties_nan():
    x = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [5.0, 5.0, 5.0, 5.0]], dtype=torch.float64)
    for dims in ([], [0], [1], [0, 1]):
        check("amax", lambda a: c_amax(a, dims, False), lambda a: torch.amax(a, dim=dims), [x])
        check("amin", lambda a: c_amin(a, dims, True), lambda a: torch.amin(a, dim=dims, keepdim=True), [x])
    check("max", c_max, torch.max, [x])
    check("min", c_min, torch.min, [x])
    for d in (0, 1):
        check("max", lambda a: c_max_dim(a, d, False), lambda a: torch.max(a, d), [x])
        check("min", lambda a: c_min_dim(a, d, False), lambda a: torch.min(a, d), [x])
        check("argmax", lambda a: c_argmax(a, d, False), lambda a: torch.argmax(a, d), [x])
    n = x.clone()
    n[0, 2] = float("nan")
    n[2, 0] = float("nan")
    n[2, 3] = float("nan")
    for d in (0, 1):
        check("max", lambda a: c_max_dim(a, d, False), lambda a: torch.max(a, d), [n])
        check("min", lambda a: c_min_dim(a, d, True), lambda a: torch.min(a, d, keepdim=True), [n])
        check("argmin", lambda a: c_argmin(a, d, False), lambda a: torch.argmin(a, d), [n])
        check("amax", lambda a: c_amax(a, [d], False), lambda a: torch.amax(a, d), [n])
    check("max", c_max, torch.max, [n])
    check("min", c_min, torch.min, [n])
    check("argmax", lambda a: c_argmax(a, ALL_DIMS, False), lambda a: torch.argmax(a), [n])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_minmax_dim_long_rows_ties_nan(dtype):
    """Contiguous rows longer than a vector block (the two-pass kernel: the extreme, then
    its first position, 64 at a time; the half types widened 4096 at a time): ties across
    blocks, NaN early and late, signed zeros, infinities, and a row of one element; for
    the half types also rows across their 4096-element blocks."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-5, 6, (9, 300), generator=g).to(dtype)
    x[1, 70] = x[1, 250] = 9.0          # tie in two blocks: the first wins
    x[2, 5] = float("nan")              # NaN early
    x[3, 299] = float("nan")            # NaN in the last, partial block
    x[3, 10] = 99.0
    x[4] = 0.0
    x[4, 130] = -0.0
    x[4, 20] = -0.0                     # zeros of both signs only: the first zero
    x[5] = -float("inf")
    x[6, 64] = float("inf")
    x[7] = 2.0                          # all equal: index 0
    for d in (1, -1):
        check("max", lambda a: c_max_dim(a, d, False), lambda a: torch.max(a, d), [x])
        check("min", lambda a: c_min_dim(a, d, True), lambda a: torch.min(a, d, keepdim=True), [x])
        check("argmax", lambda a: c_argmax(a, d, False), lambda a: torch.argmax(a, d), [x])
        check("argmin", lambda a: c_argmin(a, d, False), lambda a: torch.argmin(a, d), [x])
    one = x[:, :1].contiguous()
    check("max", lambda a: c_max_dim(a, 1, False), lambda a: torch.max(a, 1), [one])
    if dtype in (torch.bfloat16, torch.float16):
        y = torch.randint(-5, 6, (6, 9000), generator=g).to(dtype)
        y[0, 100] = y[0, 5000] = 9.0     # tie across the 4096-element blocks: the first wins
        y[1, 8000] = 9.0                 # the extreme in the last block
        y[2, 4095] = y[2, 4096] = -9.0   # the edge of a block (min)
        y[3, 6000] = float("nan")        # NaN in a later block than the maximum
        y[3, 10] = 9.0
        y[4, 4200] = float("nan")
        y[4, 8500] = float("nan")        # the first NaN wins
        for d in (1, -1):
            check("max", lambda a: c_max_dim(a, d, False), lambda a: torch.max(a, d), [y])
            check("min", lambda a: c_min_dim(a, d, False), lambda a: torch.min(a, d), [y])
            check("argmax", lambda a: c_argmax(a, d, False), lambda a: torch.argmax(a, d), [y])


def test_minmax_errors():
    e = make((0, 3))
    msg = check_error("max", c_max, torch.max, [e])
    assert "Expected reduction dim to be specified for input.numel() == 0" in msg
    check_error("min", c_min, torch.min, [e])
    check_error("max", lambda a: c_max_dim(a, 0, False), lambda a: torch.max(a, 0), [e], match="non-zero size")
    check("max", lambda a: c_max_dim(a, 1, False), lambda a: torch.max(a, 1), [e])
    check_error("amax", lambda a: c_amax(a, [0], False), lambda a: torch.amax(a, 0), [e])
    check("amax", lambda a: c_amax(a, [1], False), lambda a: torch.amax(a, 1), [e])
    check_error("argmax", lambda a: c_argmax(a, ALL_DIMS, False), lambda a: torch.argmax(a), [e])
    check_error("max", lambda a: c_max_dim(a, 2, False), lambda a: torch.max(a, 2), [make((2, 3))])
    check_error("max", c_max, torch.max, [make((3,), torch.complex64)])


# ---------------------------------------------------------------- var / std
@pytest.mark.parametrize("x", S("unary", FLOATING + COMPLEX), ids=describe)
def test_var_std(x):
    for dims in dim_lists(x):
        for corr in (1.0, 0.0, 2.0):
            for keep in (False, True):
                check("var", lambda a: c_var(a, dims, corr, keep),
                      lambda a: torch.var(a, dim=tdim(dims), correction=corr, keepdim=keep), [x], **_tol(x))
                check("std", lambda a: c_std(a, dims, corr, keep),
                      lambda a: torch.std(a, dim=tdim(dims), correction=corr, keepdim=keep), [x], **_tol(x))


@pytest.mark.parametrize("x", UNARY, ids=describe)
def test_var_std_mean(x):
    for dims in dim_lists(x):
        check("var_mean", lambda a: c_var_mean(a, dims, 1.0, False),
              lambda a: torch.var_mean(a, dim=tdim(dims), correction=1), [x])
        check("std_mean", lambda a: c_std_mean(a, dims, 0.0, True),
              lambda a: torch.std_mean(a, dim=tdim(dims), correction=0, keepdim=True), [x])


def test_var_edge():
    import warnings
    warnings.simplefilter("ignore")
    for x in (torch.tensor([1.0]), torch.tensor([1.0, 2.0]), torch.tensor([]), torch.tensor([3.0, 3.0, 3.0])):
        for corr in (0.0, 1.0, 3.0):
            check("var", lambda a: c_var(a, [], corr, False), lambda a: torch.var(a, correction=corr), [x])
            check("std", lambda a: c_std(a, [], corr, False), lambda a: torch.std(a, correction=corr), [x])
    check_error("var", lambda a: c_var(a, [], 1.0, False), lambda a: torch.var(a), [make((3,), torch.int64)])
    check_error("std", lambda a: c_std(a, [], 1.0, False), lambda a: torch.std(a), [make((3,), torch.int32)],
                names=["std", "var"])


# var / std over every dim of a contiguous float tensor from 32768 elements: the two
# passes split between threads (var_flat), sums added in thread order; offset inputs
# check the mean's residual correction, a constant tensor a variance of exactly 0.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(300, 200), (40000,), (3, 7, 1601)])
def test_var_std_all_dims_threaded(shape, dtype):
    x = torch.randn(shape, dtype=dtype) * 3 + 1000
    for dims in ([], list(range(len(shape)))):
        for corr in (1.0, 0.0):
            for keep in (False, True):
                check("var", lambda a: c_var(a, dims, corr, keep),
                      lambda a: torch.var(a, dim=tdim(dims), correction=corr, keepdim=keep), [x], grad=False)
                check("std", lambda a: c_std(a, dims, corr, keep),
                      lambda a: torch.std(a, dim=tdim(dims), correction=corr, keepdim=keep), [x], grad=False)
    check("var", lambda a: c_var(a, [], 1.0, False), lambda a: torch.var(a), [torch.full(shape, 2.5, dtype=dtype)])
    check("std", lambda a: c_std(a, [], 1.0, False), lambda a: torch.std(a), [x], atol=0, rtol=2e-6, grad=False)


# amax/amin of float32/float64 over outer dims with the kept innermost dim contiguous
# accumulate in place in the output's own type (col_minmax_float): NaN propagating,
# columns past one 256-wide tile, outer dims reduced together, keepdim.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,dims", [((4096, 300), [0]), ((7, 9, 300), [0, 1]), ((6, 5, 40), [0]),
                                        ((3, 8, 20), [1])])
def test_amax_amin_columns(shape, dims, dtype):
    x = torch.randn(shape, dtype=dtype)
    x.view(-1)[::997] = float("nan")
    for keep in (False, True):
        check("amax", lambda a: c_amax(a, dims, keep), lambda a: torch.amax(a, dim=dims, keepdim=keep), [x])
        check("amin", lambda a: c_amin(a, dims, keep), lambda a: torch.amin(a, dim=dims, keepdim=keep), [x])


# ---------------------------------------------------------------- norm
PS = [2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5, 1.5]


@pytest.mark.parametrize("x", S("unary", [torch.float32, torch.float64, torch.complex64]), ids=describe)
@pytest.mark.parametrize("p", PS, ids=str)
def test_norm(x, p):
    for dims in dim_lists(x):
        for keep in (False, True):
            check("norm", lambda a: c_norm(a, p, dims, keep),
                  lambda a: torch.linalg.vector_norm(a, ord=p, dim=tdim(dims), keepdim=keep), [x])


def test_norm_zero_grad_and_errors():
    z = torch.zeros(3, 4, dtype=torch.float64)
    z[1, 2] = 2.0
    for p in PS:
        if p < 0:
            continue
        check("norm", lambda a: c_norm(a, p, [1], False), lambda a: torch.linalg.vector_norm(a, ord=p, dim=1), [z])
    check("norm", lambda a: c_norm(a, 2.0, [], False), lambda a: torch.linalg.vector_norm(a), [torch.zeros(5)])
    check_error("norm", lambda a: c_norm(a, 2.0, [], False), lambda a: torch.linalg.vector_norm(a),
                [make((3,), torch.int64)], names=["norm"])
    check_error("norm", lambda a: c_norm(a, -1.0, [], False), lambda a: torch.linalg.vector_norm(a, -1),
                [make((0,))], names=["norm"])


# The 2-norm of a contiguous float tensor whose kept dims form one block runs as one
# pass (VAR_ROWS uncentred: four vector accumulators, each lane's 32 squares then
# added in double): rows, columns, a kept middle block, everything (below 32768
# elements; above, the parallel sum), rows around the 32-lane block (4096 float32
# elements) and shorter than one vector step, and a strided input composing ops.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,dims", [((64, 1000), [1]), ((1000, 64), [0]), ((6, 50, 40), [0, 2]),
                                        ((6, 50, 40), []), ((40000,), []), ((7, 9, 5), [2]), ((3, 4095), [1]),
                                        ((3, 4096), [1]), ((2, 9000), [1]), ((5, 31), [1]), ((5, 33), [1])])
def test_norm2_one_pass(shape, dims, dtype):
    x = torch.randn(shape, dtype=dtype) * torch.logspace(-3, 3, shape[-1], dtype=dtype)  # a range of magnitudes
    for keep in (False, True):
        check("norm", lambda a: c_norm(a, 2.0, dims, keep),
              lambda a: torch.linalg.vector_norm(a, ord=2, dim=tdim(dims), keepdim=keep), [x])
    if x.dim() > 1:
        check("norm", lambda a: c_norm(a, 2.0, dims, False),
              lambda a: torch.linalg.vector_norm(a, ord=2, dim=tdim(dims)), [x.transpose(0, 1)])
    if dtype == torch.float32 and len(shape) == 2 and dims == [1]:
        # squares in float as PyTorch: 1e20 overflows to inf, 1e-25 underflows to 0
        for v in (1e20, 1e-25):
            check("norm", lambda a: c_norm(a, 2.0, dims, False),
                  lambda a: torch.linalg.vector_norm(a, ord=2, dim=1), [torch.full(shape, v)], grad=False)


# ---------------------------------------------------------------- logsumexp
@pytest.mark.parametrize("x", S("unary", FLOATING + [torch.int64]), ids=describe)
def test_logsumexp(x):
    for dims in dim_lists(x):
        if not dims and x.dim() > 0:
            dims = list(range(x.dim()))
        for keep in (False, True):
            check("logsumexp", lambda a: c_logsumexp(a, dims, keep),
                  lambda a: torch.logsumexp(a, dim=dims, keepdim=keep), [x], **_tol(x))


def test_logsumexp_inf():
    x = torch.tensor([[-math.inf, -math.inf], [1000.0, 1000.0], [math.inf, 1.0], [-math.inf, 2.0]],
                     dtype=torch.float64)
    check("logsumexp", lambda a: c_logsumexp(a, [1], False), lambda a: torch.logsumexp(a, 1), [x])
    check("logsumexp", lambda a: c_logsumexp(a, [0], True), lambda a: torch.logsumexp(a, 0, keepdim=True), [x[1:3]])


# ---------------------------------------------------------------- all / any / count_nonzero
@pytest.mark.parametrize("x", UNARY_ALL, ids=describe)
def test_all_any_count(x):
    if x.numel() > 1 and x.is_contiguous():
        x = x.clone()
        x.view(-1)[0] = 0
    for dims in dim_lists(x):
        for keep in (False, True):
            if not dims and keep:
                continue
            tall = (lambda a: torch.all(a, dim=dims, keepdim=keep)) if dims else torch.all
            tany = (lambda a: torch.any(a, dim=dims, keepdim=keep)) if dims else torch.any
            check("all", lambda a: c_all(a, dims, keep), tall, [x])
            check("any", lambda a: c_any(a, dims, keep), tany, [x])
        check("count_nonzero", lambda a: c_count_nonzero(a, dims),
              lambda a: torch.count_nonzero(a, dim=dims if dims else None), [x])


# ---------------------------------------------------------------- median / nanmedian / mode
@pytest.mark.parametrize("x", S("unary", [torch.float32, torch.float64, torch.int32, torch.float16]),
                         ids=describe)
def test_median(x):
    check("median", c_median, torch.median, [x])
    check("nanmedian", c_nanmedian, torch.nanmedian, [x])
    # distinct values: the index is unambiguous. Not for expanded inputs: torch.median(x, 0) of a
    # stride-0 dim returns garbage values in torch 2.x on CPU.
    if x.dtype.is_floating_point and 0 not in x.stride():
        for d in single_dims(x):
            for keep in (False, True):
                check("median", lambda a: c_median_dim(a, d, keep), lambda a: torch.median(a, d, keepdim=keep), [x])


def test_median_nan_ties():
    x = torch.tensor([[1.0, float("nan"), 2.0, 0.5], [3.0, 1.0, 2.0, 4.0], [float("nan")] * 4], dtype=torch.float64)
    check("median", c_median, torch.median, [x])
    check("nanmedian", c_nanmedian, torch.nanmedian, [x])
    check("nanmedian", c_nanmedian, torch.nanmedian, [x[:2]])
    check("median", lambda a: c_median_dim(a, 1, False), lambda a: torch.median(a, 1), [x[:2]])
    t = torch.tensor([[1.0, 2, 2, 2, 1], [4, 4, 1, 1, 0]], dtype=torch.float64)
    with case("median"):
        v, i = c_median_dim(ctorch.from_torch(t), 1, False)
        wv, _ = torch.median(t, 1)
        assert_same(v, wv)
        assert torch.equal(t.gather(1, i.torch().unsqueeze(1)).squeeze(1), wv)
    check_error("median", lambda a: c_median_dim(a, 1, False), lambda a: torch.median(a, 1), [make((2, 0))])
    check("median", c_median, torch.median, [make((0,))])


@pytest.mark.parametrize("dt", [torch.int64, torch.int32, torch.float32, torch.float64, torch.uint8, torch.bool])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 9), 1), ((9, 4), 0), ((2, 3, 8), -1), ((), 0), ((3, 0), 0)])
def test_mode(dt, shape, dim):
    x = make(shape, dt, low=0, high=4)
    for keep in (False, True):
        check("mode", lambda a: c_mode(a, dim, keep), lambda a: torch.mode(a, dim, keepdim=keep), [x])


def test_mode_examples():
    x = torch.tensor([[1.0, 2, 2, 1, 3], [5, 5, 4, 4, 4], [3, 1, 3, 1, 2]], dtype=torch.float64)
    check("mode", lambda a: c_mode(a, 1, False), lambda a: torch.mode(a, 1), [x])
    check("mode", lambda a: c_mode(a, 0, True), lambda a: torch.mode(a, 0, keepdim=True), [x.t()])
    check_error("mode", lambda a: c_mode(a, 1, False), lambda a: torch.mode(a, 1), [make((2, 0))])


# ---------------------------------------------------------------- scans
@pytest.mark.parametrize("x", S("unary", ALL_DT, low=0.5, high=1.5), ids=describe)
def test_cumsum_cumprod(x):
    for d in single_dims(x):
        check("cumsum", lambda a: c_cumsum(a, d, None), lambda a: torch.cumsum(a, d), [x], **_tol(x))
        check("cumprod", lambda a: c_cumprod(a, d, None), lambda a: torch.cumprod(a, d), [x], **_tol(x))


def test_scan_dtype_arg():
    x = make((3, 5), torch.int32)
    check("cumsum", lambda a: c_cumsum(a, 1, torch.float64), lambda a: torch.cumsum(a, 1, dtype=torch.float64), [x])
    check("cumprod", lambda a: c_cumprod(a, 0, torch.float32), lambda a: torch.cumprod(a, 0, dtype=torch.float32), [x])
    f = make((3, 5), torch.float32)
    check("cumsum", lambda a: c_cumsum(a, 1, torch.float64), lambda a: torch.cumsum(a, 1, dtype=torch.float64), [f])
    check("cumprod", lambda a: c_cumprod(a, 1, torch.float64), lambda a: torch.cumprod(a, 1, dtype=torch.float64), [f])
    check("cumsum", lambda a: c_cumsum(a, 0, None), lambda a: torch.cumsum(a, 0), [make((4,), torch.bool)])
    check_error("cumsum", lambda a: c_cumsum(a, 2, None), lambda a: torch.cumsum(a, 2), [f])
    big = torch.randn(300, 257, dtype=torch.float64)
    check("cumsum", lambda a: c_cumsum(a, 0, None), lambda a: torch.cumsum(a, 0), [big], grad=False)
    check("cumsum", lambda a: c_cumsum(a, 1, None), lambda a: torch.cumsum(a, 1), [big.t()], grad=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape,dim", [((4096, 1024), 0), ((1003, 300), 0), ((37, 5, 300), 1), ((6, 9, 513), 0),
                                       ((4097, 64), 1), ((7, 3, 1000), 2), ((5, 2), 1), ((3, 2), 0)])
def test_cumsum_cumprod_contiguous_paths(dtype, shape, dim):
    """Contiguous float32/float64 scans: blocks of columns advancing row by row (dim not
    innermost; widths around the 256-column block), four lines in lockstep (innermost;
    line counts not a multiple of four). Each line accumulates in double, in order, as
    PyTorch does: the same bits."""
    g = torch.Generator().manual_seed(sum(shape) + dim)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    check("cumsum", lambda a: c_cumsum(a, dim, None), lambda a: torch.cumsum(a, dim), [x], grad=False, atol=0, rtol=0)
    p = 1 + torch.randn(*shape, generator=g, dtype=dtype) * 0.01
    check("cumprod", lambda a: c_cumprod(a, dim, None), lambda a: torch.cumprod(a, dim), [p], grad=False, atol=0,
          rtol=0)
    small = torch.randn(*shape[:-1], min(shape[-1], 7), generator=g, dtype=torch.float64)
    if small.numel() <= 4096:
        gradcheck("cumsum", lambda a: c_cumsum(a, dim, None), [small])


@pytest.mark.parametrize("x", S("unary", REAL_DT), ids=describe)
def test_cummax_cummin(x):
    for d in single_dims(x):
        check("cummax", lambda a: c_cummax(a, d), lambda a: torch.cummax(a, d), [x])
        check("cummin", lambda a: c_cummin(a, d), lambda a: torch.cummin(a, d), [x])


def test_cummax_ties_nan():
    x = torch.tensor([[1.0, 3, 3, 2, 3, 0], [2.0, float("nan"), 1, float("nan"), 5, 1]], dtype=torch.float64)
    check("cummax", lambda a: c_cummax(a, 1), lambda a: torch.cummax(a, 1), [x])
    check("cummin", lambda a: c_cummin(a, 1), lambda a: torch.cummin(a, 1), [x])
    i = torch.tensor([1, 0, 0, 2, 0, 3])
    check("cummax", lambda a: c_cummax(a, 0), lambda a: torch.cummax(a, 0), [i])
    check("cummin", lambda a: c_cummin(a, 0), lambda a: torch.cummin(a, 0), [i])


@pytest.mark.parametrize("x", S("unary", FLOATING), ids=describe)
def test_logcumsumexp(x):
    for d in single_dims(x):
        check("logcumsumexp", lambda a: c_logcumsumexp(a, d), lambda a: torch.logcumsumexp(a, d), [x], **_tol(x))


def test_logcumsumexp_inf_and_errors():
    x = torch.tensor([[-math.inf, -math.inf, 1.0, -math.inf], [math.inf, 2.0, math.inf, 0.0]], dtype=torch.float64)
    check("logcumsumexp", lambda a: c_logcumsumexp(a, 1), lambda a: torch.logcumsumexp(a, 1), [x], grad=False)
    check_error("logcumsumexp", lambda a: c_logcumsumexp(a, 0), lambda a: torch.logcumsumexp(a, 0),
                [make((3,), torch.int64)])


def test_cumprod_zeros_grad():
    for x in (torch.tensor([2.0, 0.0, 3.0, 4.0]), torch.tensor([[0.0, 2.0, 0.0], [1.0, 2.0, 3.0]]),
              torch.tensor([1.5, 2.0, 0.0])):
        x = x.double()
        check("cumprod", lambda a: c_cumprod(a, -1, None), lambda a: torch.cumprod(a, -1), [x])
        gradcheck("cumprod", lambda a: c_cumprod(a, -1, None), [x])
        gradgradcheck("cumprod", lambda a: c_cumprod(a, -1, None), [x])


# ---------------------------------------------------------------- gradcheck (float64)
def _x(shape, seed=0, low=None, high=None):
    return make(shape, torch.float64, low=low, high=high, generator=torch.Generator().manual_seed(seed))


GRADCHECKS = {
    "sum": lambda a: c_sum_dim(a, [0], False, None),
    "nansum": lambda a: c_nansum(a, [1], True),
    "mean": lambda a: c_mean_dim(a, [0, 1], False, None),
    "nanmean": lambda a: c_nanmean(a, [1], False),
    "prod": lambda a: c_prod_dim(a, 1, False, None),
    "max": lambda a: c_max_dim(a, 1, False)[0],
    "min": lambda a: c_min_dim(a, 0, True)[0],
    "amax": lambda a: c_amax(a, [0, 1], False),
    "amin": lambda a: c_amin(a, [1], True),
    "var": lambda a: c_var(a, [1], 1.0, False),
    "std": lambda a: c_std(a, [0], 0.0, True),
    "var_mean": lambda a: c_var_mean(a, [1], 1.0, False)[0],
    "std_mean": lambda a: c_std_mean(a, [], 1.0, False)[0],
    "logsumexp": lambda a: c_logsumexp(a, [1], False),
    "median": lambda a: c_median_dim(a, 1, False)[0],
    "nanmedian": c_nanmedian,
    "mode": lambda a: c_mode(a, 1, False)[0],
    "cumsum": lambda a: c_cumsum(a, 1, None),
    "cumprod": lambda a: c_cumprod(a, 0, None),
    "cummax": lambda a: c_cummax(a, 1)[0],
    "cummin": lambda a: c_cummin(a, 0)[0],
    "logcumsumexp": lambda a: c_logcumsumexp(a, 1),
}


@pytest.mark.parametrize("op", sorted(GRADCHECKS))
def test_gradcheck(op):
    x = _x((3, 4), seed=hash(op) % 1000, low=0.3, high=2.0)
    gradcheck(op, GRADCHECKS[op], [x])
    gradgradcheck(op, GRADCHECKS[op], [x])


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, -math.inf, 3.0, 0.5, 1.5], ids=str)
def test_norm_gradcheck(p):
    x = _x((3, 4), seed=5)
    gradcheck("norm", lambda a: c_norm(a, p, [1], False), [x])
    gradcheck("norm", lambda a: c_norm(a, p, [], False), [x])
    if p != 0.5:
        gradgradcheck("norm", lambda a: c_norm(a, p, [0], True), [x])


def test_full_reduction_gradcheck():
    x = _x((2, 3), seed=7)
    for name, f in (("max", c_max), ("min", c_min), ("median", c_median), ("prod", c_prod), ("sum", c_sum),
                    ("mean", c_mean)):
        gradcheck(name, f, [x])
    gradcheck("amax", lambda a: c_amax(a, [], False), [_x((), seed=1)])
    gradcheck("logsumexp", lambda a: c_logsumexp(a, [0], False), [_x((), seed=1)])
