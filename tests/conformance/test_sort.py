"""Ordering ops vs PyTorch: sort (stable, descending, NaN), argsort, topk, kthvalue,
unique (sorted, inverse, counts, dim), unique_consecutive, bucketize, searchsorted.
Values, indices, gradients vs torch.autograd, ctorch gradcheck / gradgradcheck, errors."""
import ctypes

import pytest
import torch

from _legacy import T, assert_close, call, ct, lib, rand, raises, to_torch
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import mat_gradcheck as gradcheck
from harness import case

B = ctypes.c_bool
I64 = ctypes.c_int64
ALL_DIMS = -(2 ** 31)

REAL_DT = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8,
           torch.uint8, torch.bool]


def out_ptr():
    return ctypes.c_void_p()


def take(p):
    return T(p.value) if p.value else None


def with_nans(x):
    if x.dtype.is_floating_point and x.numel() > 2:
        x = x.clone()
        x.view(-1)[:: max(1, x.numel() // 3)] = float("nan")
    return x


def sort_ct(x, dim, desc, stable=True):
    ip = out_ptr()
    v = call("ct_sort", x, dim, B(desc), B(stable), ctypes.byref(ip))
    return v, take(ip)


@pytest.mark.parametrize("dtype", REAL_DT)
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 6), 1), ((4, 6), 0), ((2, 3, 5), -2), ((), 0), ((0, 3), 1),
                                       ((3, 0), 1)])
@pytest.mark.parametrize("desc", [False, True])
def test_sort_values_indices(dtype, shape, dim, desc):
    x = rand(shape, dtype, low=-3, high=3)  # small integer range: many ties, stable order matters
    x = with_nans(x)
    with case("sort"):
        v, i = sort_ct(ct(x), dim, desc)
        wv, wi = torch.sort(x, dim=dim, descending=desc, stable=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
    with case("argsort"):
        ai = call("ct_argsort", ct(x), dim, B(desc), B(True))
        assert torch.equal(to_torch(ai), torch.argsort(x, dim=dim, descending=desc, stable=True))


def test_sort_noncontig_large_and_grad():
    x = rand((50, 40))
    with case("sort"):
        v, i = sort_ct(ct(x, noncontig=True), 0, False)
        wv, wi = torch.sort(x, dim=0, stable=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
    big = torch.randn(300, 500)
    with case("sort"):
        v, i = sort_ct(ct(big), 1, True)
        wv, wi = torch.sort(big, dim=1, descending=True, stable=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
    xs = rand((4, 5))
    # inside gradcheck callbacks the indices output is not requested (it would belong to gradcheck's scope)
    gradcheck("sort", lambda a: call("ct_sort", a, 1, B(False), B(True), None), [xs])
    gradcheck("sort", lambda a: call("ct_sort", a, 0, B(True), B(True), None), [xs], second=True)
    # gradient vs torch
    with case("sort"):
        c = ct(xs, requires_grad=True)
        v, _ = sort_ct(c, 1, False)
        g = torch.randn(4, 5, dtype=torch.float64)
        assert lib.ct_backward(v, ct(g), False, False) == 0
        t = xs.clone().requires_grad_()
        torch.sort(t, 1)[0].backward(g)
        assert_close(to_torch(lib.ct_grad(c.p)), t.grad)


def test_sort_errors():
    raises("ct_sort", ct(torch.zeros(3, dtype=torch.complex64)), 0, B(False), B(True), None, match="non-complex")
    raises("ct_sort", ct(torch.zeros(3)), 1, B(False), B(True), None, match="Dimension out of range")


# ---------------------------------- topk / kthvalue ----------------------------------
def topk_ct(x, k, dim, largest):
    ip = out_ptr()
    v = call("ct_topk", x, I64(k), dim, B(largest), B(True), ctypes.byref(ip))
    return v, take(ip)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int16, torch.uint8])
@pytest.mark.parametrize("shape,k,dim", [((10,), 3, 0), ((4, 6), 6, 1), ((4, 6), 0, 1), ((5, 3), 2, 0), ((), 1, 0)])
@pytest.mark.parametrize("largest", [True, False])
def test_topk(dtype, shape, k, dim, largest):
    x = torch.randperm(max(1, torch.Size(shape).numel())).reshape(shape).to(dtype) if dtype != torch.uint8 \
        else torch.randperm(max(1, torch.Size(shape).numel())).reshape(shape).to(dtype)
    with case("topk"):
        v, i = topk_ct(ct(x), k, dim, largest)
        wv, wi = torch.topk(x, k, dim, largest=largest, sorted=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)


def test_topk_grad_nan_errors():
    x = rand((4, 7))
    gradcheck("topk", lambda a: call("ct_topk", a, I64(3), 1, B(True), B(True), None), [x])
    gradcheck("topk", lambda a: call("ct_topk", a, I64(2), 0, B(False), B(True), None), [x], second=True)
    xn = torch.tensor([1.0, float("nan"), 3.0, 2.0])
    with case("topk"):
        v, i = topk_ct(ct(xn), 2, 0, True)
        wv, wi = torch.topk(xn, 2)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
    raises("ct_topk", ct(x), I64(8), 1, B(True), B(True), None, match="selected index k out of range")


# topk takes the k best through a heap when k <= size / 8 (src/cpu/sort.c), the whole
# sort otherwise; either way the result is the stable sort's first k (ties by index,
# NaN the largest), which is what these compare with: PyTorch's own topk picks tied
# indices in no documented order.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.int16,
                                   torch.uint8])
@pytest.mark.parametrize("shape,k,dim", [((7, 200), 5, 1), ((300, 3), 10, 0), ((2, 3, 97), 1, 2), ((50,), 6, 0),
                                         ((6, 64), 8, 1), ((6, 64), 9, 1)])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_ties_nan_and_layouts(dtype, shape, k, dim, largest):
    x = torch.randint(0, 20, shape).to(dtype)
    if dtype.is_floating_point:
        x = x + torch.randn(shape).to(dtype) * (torch.rand(shape) < 0.5)  # ties and distinct values
        x.view(-1)[::17] = float("nan")
    sv, si = torch.sort(x, stable=True, dim=dim, descending=largest)
    wv, wi = sv.narrow(dim, 0, k), si.narrow(dim, 0, k)
    with case("topk"):
        v, i = topk_ct(ct(x), k, dim, largest)
        torch.testing.assert_close(to_torch(v), wv, equal_nan=True, rtol=0, atol=0)
        assert torch.equal(to_torch(i), wi)
    with case("topk"):  # the same values in a transposed (strided) layout
        v, i = topk_ct(ct(x, noncontig=True), k, dim, largest)
        torch.testing.assert_close(to_torch(v), wv, equal_nan=True, rtol=0, atol=0)
        assert torch.equal(to_torch(i), wi)


def test_topk_heap_path_grad():
    x = rand((4, 40))
    gradcheck("topk", lambda a: call("ct_topk", a, I64(3), 1, B(True), B(True), None), [x], second=True)
    gradcheck("topk", lambda a: call("ct_topk", a, I64(4), 0, B(False), B(True), None), [rand((40, 3))])


def kth_ct(x, k, dim, keepdim):
    ip = out_ptr()
    v = call("ct_kthvalue", x, I64(k), dim, B(keepdim), ctypes.byref(ip))
    return v, take(ip)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("shape,k,dim", [((9,), 4, 0), ((4, 6), 1, 1), ((4, 6), 4, 0), ((2, 3, 5), 5, -1), ((), 1, 0)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue(dtype, shape, k, dim, keepdim):
    n = max(1, torch.Size(shape).numel())
    x = torch.randperm(n).reshape(shape).to(dtype)
    with case("kthvalue"):
        v, i = kth_ct(ct(x), k, dim, keepdim)
        wv, wi = torch.kthvalue(x, k, dim, keepdim)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)


def test_kthvalue_grad_errors():
    x = rand((4, 5))
    gradcheck("kthvalue", lambda a: call("ct_kthvalue", a, I64(2), 1, B(False), None), [x])
    gradcheck("kthvalue", lambda a: call("ct_kthvalue", a, I64(3), 0, B(True), None), [x], second=True)
    raises("ct_kthvalue", ct(x), I64(6), 1, B(False), None, match="kthvalue(): selected number k out of range for dimension 1")
    raises("ct_kthvalue", ct(x), I64(0), 1, B(False), None, match="out of range")


# ---------------------------------- unique ----------------------------------
def unique_ct(fn, x, dim, *pre):
    ip, cp = out_ptr(), out_ptr()
    v = call(fn, x, *pre, dim, ctypes.byref(ip), ctypes.byref(cp))
    return v, take(ip), take(cp)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32, torch.bool, torch.uint8,
                                   torch.float16])
@pytest.mark.parametrize("shape", [(12,), (3, 5), (0,), (), (2, 3, 4)])
def test_unique_flat(dtype, shape):
    x = rand(shape, dtype, low=-3, high=3)
    if dtype.is_floating_point:
        x = x.round()
    with case("unique"):
        v, i, c = unique_ct("ct_unique", ct(x), ALL_DIMS, B(True))
        wv, wi, wc = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
        assert torch.equal(to_torch(c), wc)
    with case("unique_consecutive"):
        v, i, c = unique_ct("ct_unique_consecutive", ct(x), ALL_DIMS)
        wv, wi, wc = torch.unique_consecutive(x, return_inverse=True, return_counts=True)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
        assert torch.equal(to_torch(c), wc)


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64])
@pytest.mark.parametrize("shape,dim", [((6, 3), 0), ((3, 6), 1), ((4, 2, 3), 1), ((5,), 0), ((4, 3), -1)])
def test_unique_dim(dtype, shape, dim):
    x = torch.randint(0, 2, shape).to(dtype)
    with case("unique"):
        v, i, c = unique_ct("ct_unique", ct(x), dim, B(True))
        wv, wi, wc = torch.unique(x, sorted=True, return_inverse=True, return_counts=True, dim=dim)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
        assert torch.equal(to_torch(c), wc)
    with case("unique_consecutive"):
        v, i, c = unique_ct("ct_unique_consecutive", ct(x), dim)
        wv, wi, wc = torch.unique_consecutive(x, return_inverse=True, return_counts=True, dim=dim)
        assert_close(to_torch(v), wv)
        assert torch.equal(to_torch(i), wi)
        assert torch.equal(to_torch(c), wc)


def test_unique_noncontig_and_optional_outputs():
    x = torch.randint(0, 4, (5, 6)).double()
    with case("unique"):
        v = call("ct_unique", ct(x, noncontig=True), B(True), ALL_DIMS, None, None)
        assert_close(to_torch(v), torch.unique(x))
    raises("ct_unique", ct(x), B(True), 2, None, None, match="Dimension out of range")


# ---------------------------------- searchsorted / bucketize ----------------------------------
@pytest.mark.parametrize("sdt,vdt", [(torch.float32, torch.float32), (torch.float64, torch.float32),
                                     (torch.int64, torch.int64), (torch.int32, torch.float64)])
@pytest.mark.parametrize("right", [False, True])
@pytest.mark.parametrize("out_int32", [False, True])
def test_searchsorted(sdt, vdt, right, out_int32):
    seq = torch.sort(torch.randint(-5, 5, (9,)).to(sdt))[0]
    vals = torch.randint(-6, 6, (3, 4)).to(vdt)
    with case("searchsorted"):
        got = call("ct_searchsorted", ct(seq), ct(vals), B(out_int32), B(right))
        assert torch.equal(to_torch(got), torch.searchsorted(seq, vals, out_int32=out_int32, right=right))
    seq2 = torch.sort(torch.randint(-5, 5, (3, 6)).to(sdt), 1)[0]
    with case("searchsorted"):
        got = call("ct_searchsorted", ct(seq2), ct(vals), B(out_int32), B(right))
        assert torch.equal(to_torch(got), torch.searchsorted(seq2, vals, out_int32=out_int32, right=right))
    with case("bucketize"):
        got = call("ct_bucketize", ct(vals), ct(seq), B(out_int32), B(right))
        assert torch.equal(to_torch(got), torch.bucketize(vals, seq, out_int32=out_int32, right=right))


def test_searchsorted_edge_and_errors():
    seq = torch.tensor([1.0, 2.0, 2.0, 3.0])
    for vals in (torch.tensor([]), torch.tensor(2.0), torch.tensor([[0.5, 2.0, 9.0]])):
        for right in (False, True):
            with case("searchsorted"):
                got = call("ct_searchsorted", ct(seq), ct(vals), B(False), B(right))
                assert torch.equal(to_torch(got), torch.searchsorted(seq, vals, right=right))
    empty = torch.tensor([])
    with case("searchsorted"):
        got = call("ct_searchsorted", ct(empty), ct(torch.tensor([1.0, 2.0])), B(False), B(False))
        assert torch.equal(to_torch(got), torch.searchsorted(empty, torch.tensor([1.0, 2.0])))
    raises("ct_searchsorted", ct(torch.zeros(2, 3)), ct(torch.zeros(3, 3)), B(False), B(False),
           match="boundaries tensor should be 1 dimension or the first N-1 dimensions")
    raises("ct_bucketize", ct(torch.zeros(3)), ct(torch.zeros(2, 3)), B(False), B(False),
           match="boundaries tensor must be 1 dimension, but got dim(2)")
