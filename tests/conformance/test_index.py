"""Gathering and scattering vs PyTorch: gather, scatter / scatter_value / scatter_,
scatter_add(_), scatter_reduce (all reductions, include_self), index_select,
index_add(_), index_copy(_), index_fill, advanced indexing (index), index_put(_),
masked_fill(_), masked_scatter, masked_select, nonzero, take, take_along_dim.
Values, gradients vs torch.autograd, ctorch gradcheck / gradgradcheck, errors."""
import ctypes

import pytest
import torch

from _legacy import P, assert_close, call, cases, ct, lib, rand, raises, to_torch
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import mat_gradcheck as gradcheck
from harness import case

I64 = ctypes.c_int64
D = ctypes.c_double
B = ctypes.c_bool


def tarr(ts):
    ts = list(ts)
    arr = (P * max(1, len(ts)))(*[None if t is None else t.p for t in ts])
    arr._keep = ts  # the ctorch tensors must outlive the call
    return arr


def check(op, ct_fn, torch_fn, inputs, diff=None, noncontig=False):
    """One case under op: ct_fn(*ct_inputs) vs torch_fn(*inputs); gradients for the
    inputs flagged in diff."""
    with cases(op):
        if diff is None:
            diff = [t.dtype.is_floating_point or t.dtype.is_complex for t in inputs]
        cin = [ct(t, noncontig=noncontig, requires_grad=d) for t, d in zip(inputs, diff)]
        got = ct_fn(*cin)
        tin = [t.detach().clone().requires_grad_(d) for t, d in zip(inputs, diff)]
        want = torch_fn(*tin)
        assert_close(to_torch(got), want.detach())
        if any(diff) and want.numel() and want.requires_grad:
            g = torch.randn(want.shape, dtype=want.dtype)
            want.backward(g)
            assert lib.ct_backward(got, ct(g), False, False) == 0, lib.ct_last_error()
            for c, t, d in zip(cin, tin, diff):
                if not d or t.grad is None:
                    continue
                gp = lib.ct_grad(c.p)
                assert gp, "missing gradient"
                assert_close(to_torch(gp), t.grad)
        return got


FLOAT_DT = [torch.float32, torch.float64]
ALL_DT = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.uint8,
          torch.bool, torch.complex64]


def idx_for(shape, high, dim=None):
    return torch.randint(0, high, shape, dtype=torch.int64)


def perm_index(shape, dim, size):
    """An index of the given shape whose entries along dim are distinct (deterministic scatter)."""
    out = torch.empty(shape, dtype=torch.int64)
    n = shape[dim]
    if out.numel() == 0:
        return out
    flat = out.movedim(dim, -1).reshape(-1, n)
    for r in range(flat.shape[0]):
        flat[r] = torch.randperm(size)[:n]
    return flat.reshape(out.movedim(dim, -1).shape).movedim(-1, dim).contiguous()


# ---------------------------------- gather ----------------------------------
@pytest.mark.parametrize("dtype", ALL_DT)
@pytest.mark.parametrize("xs,is_,dim", [((3, 4), (3, 5), 1), ((3, 4), (2, 4), 0), ((3, 4), (2, 2), -1),
                                        ((2, 3, 4), (2, 3, 1), 2), ((5,), (7,), 0), ((3, 4), (0, 4), 0),
                                        ((2, 3, 4), (1, 5, 3), 1)])
def test_gather(dtype, xs, is_, dim):
    x = rand(xs, dtype)
    i = idx_for(is_, xs[dim])
    check("gather", lambda a, b: call("ct_gather", a, dim, b), lambda a, b: torch.gather(a, dim, b), [x, i])


def test_gather_noncontig_and_0dim():
    x, i = rand((4, 3)), idx_for((6, 3), 4)
    check("gather", lambda a, b: call("ct_gather", a, 0, b), lambda a, b: torch.gather(a, 0, b), [x, i], noncontig=True)
    x0, i0 = torch.tensor(2.5, dtype=torch.float64), torch.tensor(0)
    check("gather", lambda a, b: call("ct_gather", a, 0, b), lambda a, b: torch.gather(a, 0, b), [x0, i0])


def test_gather_grad_checks():
    x, i = rand((3, 4)), idx_for((3, 6), 4)
    ci = ct(i)
    gradcheck("gather", lambda a: call("ct_gather", a, 1, ci), [x])
    gradcheck("gather", lambda a: call("ct_gather", a, 1, ci), [x], second=True)


def test_gather_errors():
    x = ct(rand((2, 3)))
    raises("ct_gather", x, 1, ct(torch.tensor([[5]])), match="index 5 is out of bounds for dimension 1 with size 3")
    raises("ct_gather", x, 1, ct(torch.tensor([[-1]])), match="index -1 is out of bounds for dimension 1 with size 3")
    raises("ct_gather", x, 1, ct(torch.tensor([[1.0]])), match="gather(): Expected dtype int64 for index")
    raises("ct_gather", x, 1, ct(torch.tensor([1])), match="same number of dimensions")
    raises("ct_gather", x, 1, ct(torch.zeros(3, 1, dtype=torch.int64)), match="Size does not match at dimension 0")
    raises("ct_gather", x, 2, ct(torch.zeros(2, 1, dtype=torch.int64)), match="Dimension out of range")
    with pytest.raises(RuntimeError, match="index 5 is out of bounds for dimension 1 with size 3"):
        torch.gather(torch.zeros(2, 3), 1, torch.tensor([[5]]))


# ---------------------------------- scatter ----------------------------------
@pytest.mark.parametrize("dtype", ALL_DT)
@pytest.mark.parametrize("xs,ss,is_,dim", [((3, 5), (3, 4), (3, 3), 1), ((4, 3), (4, 3), (2, 3), 0),
                                           ((2, 3, 4), (2, 3, 4), (2, 2, 3), -1), ((5,), (3,), (0,), 0)])
def test_scatter(dtype, xs, ss, is_, dim):
    x, s = rand(xs, dtype), rand(ss, dtype)
    i = perm_index(is_, dim, xs[dim])
    # torch gives src a gradient only when src has the index's shape
    check("scatter", lambda a, b, c: call("ct_scatter", a, dim, b, c), lambda a, b, c: torch.scatter(a, dim, b, c),
          [x, i, s],
          diff=[x.dtype.is_floating_point or x.dtype.is_complex, False, False])
    s2 = rand(is_, dtype)
    check("scatter", lambda a, b, c: call("ct_scatter", a, dim, b, c), lambda a, b, c: torch.scatter(a, dim, b, c),
          [x, i, s2])
    check("scatter", lambda a, b: call("ct_scatter_value", a, dim, b, D(1.0)),
          lambda a, b: torch.scatter(a, dim, b, 1.0), [x, i])


def test_scatter_grads():
    x, s = rand((3, 5)), rand((3, 3))
    i = perm_index((3, 3), 1, 5)
    ci = ct(i)
    gradcheck("scatter", lambda a, b: call("ct_scatter", a, 1, ci, b), [x, s])
    gradcheck("scatter", lambda a, b: call("ct_scatter", a, 1, ci, b), [x, s], second=True)
    gradcheck("scatter", lambda a: call("ct_scatter_value", a, 1, ci, D(2.0)), [x])
    check("scatter", lambda a, b, c: call("ct_scatter", a, 1, b, c), lambda a, b, c: torch.scatter(a, 1, b, c),
          [rand((5, 3)).t(), i, s], noncontig=True)


@pytest.mark.parametrize("dtype", ALL_DT)
def test_scatter_add(dtype):
    x, s = rand((3, 5), dtype), rand((3, 4), dtype)
    i = idx_for((3, 4), 5)
    if dtype == torch.bool:
        want = torch.scatter_add(x.int(), 1, i, s.int()).bool()
        with case("scatter_add"):
            got = to_torch(call("ct_scatter_add", ct(x), 1, ct(i), ct(s)))
            assert torch.equal(got, want)
        return
    if dtype in (torch.float16, torch.bfloat16):  # accumulation order may differ: compare in float32
        x, s = x.round(), s.round()
    check("scatter_add", lambda a, b, c: call("ct_scatter_add", a, 1, b, c),
          lambda a, b, c: torch.scatter_add(a, 1, b, c), [x, i, s])


def test_scatter_add_grads_and_inplace():
    x, s, i = rand((4, 3)), rand((5, 3)), idx_for((5, 3), 4)
    ci = ct(i)
    gradcheck("scatter_add", lambda a, b: call("ct_scatter_add", a, 0, ci, b), [x, s])
    gradcheck("scatter_add", lambda a, b: call("ct_scatter_add", a, 0, ci, b), [x, s], second=True)
    with case("scatter_add_"):
        c = ct(x)
        assert lib.ct_scatter_add_(c, 0, ci, ct(s)) == 0
        assert_close(to_torch(c), x.clone().scatter_add_(0, i, s))
    c = ct(x)
    ip = perm_index((2, 3), 0, 4)
    with case("scatter_"):
        assert lib.ct_scatter_(c, 0, ct(ip), ct(s)) == 0
        assert_close(to_torch(c), x.clone().scatter_(0, ip, s))


def test_scatter_add_large_parallel():
    x, s = torch.zeros(64, 2048), torch.randn(64, 4096)
    i = torch.randint(0, 2048, (64, 4096))
    with case("scatter_add"):
        got = to_torch(call("ct_scatter_add", ct(x), 1, ct(i), ct(s)))
        torch.testing.assert_close(got, torch.scatter_add(x, 1, i, s), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int32])
def test_scatter_reduce(reduce, include_self, dtype):
    x, s = rand((4, 5), dtype), rand((4, 6), dtype)
    i = idx_for((4, 6), 5)
    check("scatter_reduce", lambda a, b, c: call("ct_scatter_reduce", a, 1, b, c, reduce.encode(), B(include_self)),
          lambda a, b, c: torch.scatter_reduce(a, 1, b, c, reduce, include_self=include_self), [x, i, s])


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_gradcheck(reduce, include_self):
    x, s = rand((3, 4)), rand((3, 5))
    i = idx_for((3, 5), 4)
    ci = ct(i)
    gradcheck("scatter_reduce", lambda a, b: call("ct_scatter_reduce", a, 1, ci, b, reduce.encode(), B(include_self)),
              [x, s])


def test_scatter_reduce_nan_and_errors():
    x = torch.tensor([1.0, 2.0, 3.0])
    s = torch.tensor([float("nan"), 5.0])
    i = torch.tensor([0, 1])
    for red in ("amax", "amin"):
        with case("scatter_reduce"):
            got = to_torch(call("ct_scatter_reduce", ct(x), 0, ct(i), ct(s), red.encode(), B(True)))
            assert_close(got, torch.scatter_reduce(x, 0, i, s, red))
    raises("ct_scatter_reduce", ct(x), 0, ct(i), ct(s), b"max", B(True), match="reduce argument must be either")
    raises("ct_scatter", ct(x), 0, ct(i), ct(s.double()), match="Expected self.dtype to be equal to src.dtype")
    raises("ct_scatter_add", ct(x), 0, ct(torch.tensor([3])), ct(s), match="index 3 is out of bounds for dimension 0 with size 3")
    raises("ct_scatter_add", ct(x), 0, ct(torch.tensor([0, 1, 1])), ct(s), match="to be no larger size than src")
    raises("ct_scatter", ct(x), 0, ct(i.int()), ct(s), match="Expected dtype int64 for index")


# ---------------------------------- index_select / add / copy / fill ----------------------------------
@pytest.mark.parametrize("dtype", ALL_DT)
@pytest.mark.parametrize("xs,dim,n", [((4, 3), 0, 6), ((4, 3), 1, 2), ((2, 3, 4), 1, 0), ((5,), 0, 3), ((2, 3, 4), -1, 5)])
def test_index_select(dtype, xs, dim, n):
    x = rand(xs, dtype)
    i = torch.randint(0, xs[dim], (n,))
    check("index_select", lambda a, b: call("ct_index_select", a, dim, b), lambda a, b: torch.index_select(a, dim, b),
          [x, i])
    check("index_select", lambda a, b: call("ct_index_select", a, dim, b), lambda a, b: torch.index_select(a, dim, b),
          [x, i.int()])


def test_index_select_misc():
    x = rand((4, 5))
    i = torch.tensor([3, 0, 3])
    check("index_select", lambda a, b: call("ct_index_select", a, 1, b), lambda a, b: torch.index_select(a, 1, b),
          [x, i], noncontig=True)
    check("index_select", lambda a, b: call("ct_index_select", a, 0, b), lambda a, b: torch.index_select(a, 0, b),
          [x, torch.tensor(2)])
    ci = ct(i)
    gradcheck("index_select", lambda a: call("ct_index_select", a, 0, ci), [x])
    gradcheck("index_select", lambda a: call("ct_index_select", a, 0, ci), [x], second=True)
    raises("ct_index_select", ct(x), 0, ct(torch.tensor([4])), match="index 4 is out of bounds for dimension 0 with size 4")
    raises("ct_index_select", ct(x), 0, ct(torch.tensor([[1]])), match="Index is supposed to be a vector")
    raises("ct_index_select", ct(x), 0, ct(torch.tensor([1.0])), match="Expected dtype int32/int64 for index")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.complex64])
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_index_add(dtype, alpha):
    x, s = rand((5, 3), dtype), rand((4, 3), dtype)
    i = torch.tensor([4, 0, 4, 2])
    check("index_add", lambda a, b, c: call("ct_index_add", a, 0, b, c, D(alpha)),
          lambda a, b, c: torch.index_add(a, 0, b, c, alpha=alpha), [x, i, s])
    x2, s2 = rand((3, 5), dtype), rand((3, 2), dtype)
    check("index_add", lambda a, b, c: call("ct_index_add", a, 1, b, c, D(alpha)),
          lambda a, b, c: torch.index_add(a, 1, b, c, alpha=alpha), [x2, torch.tensor([1, 3]), s2])


def test_index_add_copy_fill_misc():
    x, s = rand((5, 3)), rand((2, 3))
    i = torch.tensor([3, 1])
    ci = ct(i)
    gradcheck("index_add", lambda a, b: call("ct_index_add", a, 0, ci, b, D(1.5)), [x, s])
    gradcheck("index_copy", lambda a, b: call("ct_index_copy", a, 0, ci, b), [x, s])
    gradcheck("index_fill", lambda a: call("ct_index_fill", a, 0, ci, D(2.0)), [x])
    for dtype in (torch.float32, torch.int64, torch.bool):
        xd, sd = rand((5, 3), dtype), rand((2, 3), dtype)
        check("index_copy", lambda a, b, c: call("ct_index_copy", a, 0, b, c),
              lambda a, b, c: torch.index_copy(a, 0, b, c), [xd, i, sd])
        check("index_fill", lambda a, b: call("ct_index_fill", a, 1, b, D(-1.0)),
              lambda a, b: torch.index_fill(a, 1, b, -1.0),
              [xd, torch.tensor([0, -1])])
    with case("index_add_"):
        c = ct(x)
        assert lib.ct_index_add_(c, 0, ci, ct(s), D(2.0)) == 0
        assert_close(to_torch(c), x.clone().index_add_(0, i, s, alpha=2.0))
    with case("index_copy_"):
        c = ct(x)
        assert lib.ct_index_copy_(c, 0, ci, ct(s)) == 0
        assert_close(to_torch(c), x.clone().index_copy_(0, i, s))
    raises("ct_index_add", ct(x), 0, ct(torch.tensor([5, 0])), ct(s), D(1.0), match="out of bounds")
    raises("ct_index_add", ct(x), 0, ct(torch.tensor([1, 0, 2])), ct(s), D(1.0), match="Number of indices")
    raises("ct_index_add", ct(x), 0, ct(i), ct(rand((2, 4))), D(1.0), match="same slice shapes")
    raises("ct_index_copy", ct(x), 0, ct(i), ct(s.float()), match="must have the same scalar type")


# ---------------------------------- advanced indexing ----------------------------------
def ct_index_fn(pattern):
    """pattern: list of 'T' (a tensor index taken from the inputs) or None (a ':' slice)."""
    def f(x, *idx):
        it = iter(idx)
        lst = [next(it) if p == "T" else None for p in pattern]
        return call("ct_index", x, len(lst), tarr(lst))
    return f


def torch_index_fn(pattern):
    def f(x, *idx):
        it = iter(idx)
        return x[tuple(next(it) if p == "T" else slice(None) for p in pattern)]
    return f


_G = torch.Generator().manual_seed(0)  # module-level masks: independent of other files' use of the global RNG
INDEX_CASES = [
    ((5, 4), ["T"], [torch.tensor([0, 4, -1, 2])]),
    ((5, 4), [None, "T"], [torch.tensor([[0, 3], [1, 1]])]),
    ((5, 4, 3), ["T", "T"], [torch.tensor([0, 4]), torch.tensor([3, -4])]),
    ((5, 4, 3), [None, "T", "T"], [torch.tensor([[0], [3]]), torch.tensor([1, 2, 0])]),  # adjacent, broadcast
    ((5, 4, 3), ["T", None, "T"], [torch.tensor([0, 4]), torch.tensor([2, 1])]),          # separated -> front
    ((2, 5, 4, 3), [None, "T", None, "T"], [torch.tensor([1, 2]), torch.tensor([0, 2])]),
    ((5, 4), ["T"], [torch.tensor([True, False, True, True, False])]),
    ((5, 4), ["T"], [torch.rand(5, 4, generator=_G) > 0.5]),
    ((5, 4, 3), [None, "T"], [torch.rand(4, 3, generator=_G) > 0.3]),
    ((5, 4), ["T", "T"], [torch.tensor([True, False, True, False, False]), torch.tensor([1, 3])]),
    ((5, 4), ["T"], [torch.tensor(3)]),
    ((5, 4), ["T"], [torch.tensor([], dtype=torch.int64)]),
    ((5, 4), ["T"], [torch.zeros(5, dtype=torch.bool)]),
    ((0, 4), [None, "T"], [torch.tensor([1, 2])]),
    ((5, 4), ["T"], [torch.tensor([1, 3], dtype=torch.int32)]),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.float16, torch.complex64])
@pytest.mark.parametrize("case", range(len(INDEX_CASES)))
def test_index(dtype, case):
    shape, pattern, idx = INDEX_CASES[case]
    x = rand(shape, dtype)
    check("index", ct_index_fn(pattern), torch_index_fn(pattern), [x] + idx)
    if len(shape) >= 2:
        check("index", ct_index_fn(pattern), torch_index_fn(pattern), [x] + idx, noncontig=True)


def test_index_grads_and_errors():
    x = rand((5, 4, 3))
    i0, i1 = ct(torch.tensor([0, 4, 0])), ct(torch.tensor([[1], [2]]))
    f = lambda a: call("ct_index", a, 3, tarr([i0, None, ct_i2]))
    ct_i2 = ct(torch.tensor([2, 0, 2]))
    gradcheck("index", f, [x])
    gradcheck("index", f, [x], second=True)
    m = ct(torch.rand(5, 4) > 0.5)
    gradcheck("index", lambda a: call("ct_index", a, 1, tarr([m])), [x])
    cx = ct(x)
    raises("ct_index", cx, 1, tarr([ct(torch.tensor([5]))]), match="index 5 is out of bounds for dimension 0 with size 5")
    raises("ct_index", cx, 2, tarr([None, ct(torch.tensor([-5]))]), match="index -5 is out of bounds for dimension 1 with size 4")
    raises("ct_index", cx, 4, tarr([None, None, None, ct(torch.tensor([0]))]), match="too many indices for tensor of dimension 3")
    raises("ct_index", cx, 1, tarr([ct(torch.tensor([True, False]))]), match="The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [5, 4, 3] at index 0")
    raises("ct_index", cx, 1, tarr([ct(torch.tensor([1.0]))]), match="tensors used as indices must be long, int, byte or bool tensors")
    raises("ct_index", cx, 2, tarr([ct(torch.tensor([0, 1])), ct(torch.tensor([0, 1, 2]))]), match="shape mismatch")
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 5"):
        torch.zeros(5, 4, 3)[torch.tensor([5])]


def test_index_bool_scalar():
    x = rand((3, 2))
    for v in (True, False):
        with case("index"):
            got = to_torch(call("ct_index", ct(x), 1, tarr([ct(torch.tensor(v))])))
            assert_close(got, x[torch.tensor(v)])


def ct_index_put_fn(pattern, accumulate):
    def f(x, v, *idx):
        it = iter(idx)
        lst = [next(it) if p == "T" else None for p in pattern]
        return call("ct_index_put", x, len(lst), tarr(lst), v, B(accumulate))
    return f


def torch_index_put_fn(pattern, accumulate):
    def f(x, v, *idx):
        it = iter(idx)
        lst = tuple(next(it) if p == "T" else slice(None) for p in pattern)
        if all(p == "T" for p in pattern):
            return torch.index_put(x, lst, v, accumulate=accumulate)
        r = x.clone()
        if accumulate:
            r[lst] += v
        else:
            r[lst] = v
        return r
    return f


PUT_CASES = [
    ((5, 4), ["T"], [torch.tensor([0, 4, -1])], (3, 4)),
    ((5, 4), ["T"], [torch.tensor([0, 4, 2])], (4,)),
    ((5, 4, 3), ["T", "T"], [torch.tensor([0, 4]), torch.tensor([3, -4])], (2, 3)),
    ((5, 4, 3), [None, "T"], [torch.tensor([1, 2])], (5, 2, 3)),
    ((5, 4, 3), ["T", None, "T"], [torch.tensor([0, 4]), torch.tensor([2, 1])], (2, 4)),
    ((5, 4), ["T"], [torch.rand(5, 4, generator=_G) > 0.5], ()),
    ((5, 4), ["T"], [torch.tensor([True, False, True, False, True])], (1, 4)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.float16])
@pytest.mark.parametrize("case", range(len(PUT_CASES)))
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(dtype, case, accumulate):
    shape, pattern, idx, vs = PUT_CASES[case]
    x, v = rand(shape, dtype), rand(vs, dtype)
    check("index_put", ct_index_put_fn(pattern, accumulate), torch_index_put_fn(pattern, accumulate), [x, v] + idx)


def test_index_put_accumulate_duplicates_and_grads():
    x, v = rand((4, 3)), rand((5, 3))
    i = torch.tensor([1, 1, 3, 1, 0])
    check("index_put", ct_index_put_fn(["T"], True), torch_index_put_fn(["T"], True), [x, v, i])
    ci = ct(i)
    gradcheck("index_put", lambda a, b: call("ct_index_put", a, 1, tarr([ci]), b, B(True)), [x, v])
    gradcheck("index_put", lambda a, b: call("ct_index_put", a, 1, tarr([ci]), b, B(True)), [x, v], second=True)
    cu = ct(torch.tensor([2, 0]))
    gradcheck("index_put", lambda a, b: call("ct_index_put", a, 1, tarr([cu]), b, B(False)), [x, rand((2, 3))])
    with case("index_put_"):
        c = ct(x)
        assert lib.ct_index_put_(c, 1, tarr([ci]), ct(v), B(True)) == 0
        assert_close(to_torch(c), x.clone().index_put_((i,), v, accumulate=True))
    raises("ct_index_put", ct(x), 1, tarr([ci]), ct(rand((2, 3))), B(False), match="shape mismatch: value tensor of shape [2, 3] cannot be broadcast to indexing result of shape [5, 3]")
    raises("ct_index_put", ct(x), 1, tarr([ci]), ct(v.float()), B(False), match="Index put requires the source and destination dtypes match")
    raises("ct_index_put", ct(x), 1, tarr([ct(torch.tensor([4]))]), ct(v[:1]), B(True), match="index 4 is out of bounds for dimension 0 with size 4")


# ---------------------------------- masked ops ----------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize("xs,ms", [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((), ()), ((0, 2), (2,))])
def test_masked_fill_select(dtype, xs, ms):
    x, m = rand(xs, dtype), torch.rand(ms) > 0.5
    val = torch.tensor(1.5 if dtype.is_floating_point else 1, dtype=torch.float64 if dtype.is_floating_point else torch.int64)
    check("masked_fill", lambda a, b, c: call("ct_masked_fill", a, b, c), lambda a, b, c: torch.masked_fill(a, b, c),
          [x, m, val],
          diff=[dtype.is_floating_point or dtype.is_complex, False, False])
    check("masked_select", lambda a, b: call("ct_masked_select", a, b), lambda a, b: torch.masked_select(a, b), [x, m])


def test_masked_fill_grads_inplace_errors():
    x, m = rand((3, 4)), torch.rand(3, 4) > 0.5
    v = torch.tensor(2.0, dtype=torch.float64)
    check("masked_fill", lambda a, b, c: call("ct_masked_fill", a, b, c), lambda a, b, c: torch.masked_fill(a, b, c),
          [x, m, v],
          diff=[True, False, True])
    cm = ct(m)
    cv = ct(v)  # created outside the callback: gradcheck's scope would own it otherwise
    gradcheck("masked_fill", lambda a: call("ct_masked_fill", a, cm, cv), [x])
    gradcheck("masked_select", lambda a: call("ct_masked_select", a, cm), [x])
    gradcheck("masked_select", lambda a: call("ct_masked_select", a, cm), [x], second=True)
    with case("masked_fill_"):
        c = ct(x)
        assert lib.ct_masked_fill_(c, cm, ct(v)) == 0
        assert_close(to_torch(c), x.clone().masked_fill_(m, 2.0))
    raises("ct_masked_fill", ct(x), ct(m.int()), ct(v), match="masked_fill_ only supports boolean masks, but got mask with dtype int32")
    raises("ct_masked_fill", ct(x), cm, ct(torch.ones(2)), match="masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 dimension(s).")
    raises("ct_masked_select", ct(x), ct(torch.ones(2, dtype=torch.bool)), match="must match")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_masked_scatter(dtype):
    x, m, s = rand((3, 4), dtype), torch.rand(3, 4) > 0.5, rand((15,), dtype)
    check("masked_scatter", lambda a, b, c: call("ct_masked_scatter", a, b, c),
          lambda a, b, c: torch.masked_scatter(a, b, c), [x, m, s],
          diff=[dtype.is_floating_point, False, dtype.is_floating_point])
    m2 = torch.rand(4) > 0.5
    s2 = rand((3, 5), dtype)
    check("masked_scatter", lambda a, b, c: call("ct_masked_scatter", a, b, c),
          lambda a, b, c: torch.masked_scatter(a, b, c), [x, m2, s2],
          diff=[dtype.is_floating_point, False, dtype.is_floating_point])


def test_masked_scatter_grad_errors():
    x, m, s = rand((3, 4)), torch.rand(3, 4) > 0.5, rand((13,))
    cm = ct(m)
    gradcheck("masked_scatter", lambda a, b: call("ct_masked_scatter", a, cm, b), [x, s])
    raises("ct_masked_scatter", ct(x), ct(torch.ones(3, 4, dtype=torch.bool)), ct(rand((5,))), match="Number of elements of source")
    raises("ct_masked_scatter", ct(x), cm, ct(s.float()), match="same dtypes")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64, torch.float16])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (), (0, 3)])
def test_nonzero(dtype, shape):
    x = rand(shape, dtype)
    if dtype.is_floating_point:
        x = x * (torch.rand(shape) > 0.5)
        if x.numel():
            x.view(-1)[0] = -0.0
    check("nonzero", lambda a: call("ct_nonzero", a), lambda a: torch.nonzero(a), [x], diff=[False])


# ---------------------------------- take / take_along_dim ----------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool])
def test_take(dtype):
    x = rand((3, 4), dtype)
    for i in (torch.tensor([0, 11, -1, 5]), torch.tensor([[2, 3], [4, -12]]), torch.tensor(7)):
        check("take", lambda a, b: call("ct_take", a, b), lambda a, b: torch.take(a, b), [x, i])
        check("take", lambda a, b: call("ct_take", a, b), lambda a, b: torch.take(a, b), [x, i], noncontig=True)


def test_take_grad_errors():
    x, i = rand((3, 4)), torch.tensor([0, 11, 11, 5])
    ci = ct(i)
    gradcheck("take", lambda a: call("ct_take", a, ci), [x])
    gradcheck("take", lambda a: call("ct_take", a, ci), [x], second=True)
    raises("ct_take", ct(x), ct(torch.tensor([12])), match="out of bounds")
    raises("ct_take", ct(x), ct(torch.tensor([1.0])), match="take(): Expected a long tensor for index")


@pytest.mark.parametrize("xs,is_,dim", [((3, 4), (3, 2), 1), ((3, 4), (1, 4), 0), ((3, 1, 5), (1, 4, 2), 2),
                                        ((3, 4), (2, 2), None)])
def test_take_along_dim(xs, is_, dim):
    x = rand(xs)
    hi = x.numel() if dim is None else xs[dim]
    i = torch.randint(0, hi, is_)
    cdim = -(2 ** 31) if dim is None else dim
    check("take_along_dim", lambda a, b: call("ct_take_along_dim", a, b, cdim),
          lambda a, b: torch.take_along_dim(a, b, dim), [x, i])
    ci = ct(i)
    gradcheck("take_along_dim", lambda a: call("ct_take_along_dim", a, ci, cdim), [x])


def test_take_along_dim_errors():
    x = ct(rand((3, 4)))
    raises("ct_take_along_dim", x, ct(torch.tensor([1])), 0, match="should have the same number of dimensions")
    raises("ct_take_along_dim", x, ct(torch.tensor([[1.0]])), 0, match="dtype of indices should be Long")
    raises("ct_take_along_dim", x, ct(torch.zeros(2, 4, dtype=torch.int64)), 1, match="must match the size")


def test_no_leaks():
    with cases(("index", "index_put", "gather")):
        before = lib.ct_live_tensors()
        x = ct(rand((4, 5)))
        i = ct(torch.tensor([1, 3]))
        for _ in range(3):
            r = call("ct_index", x, 2, tarr([None, i]))
            r = call("ct_index_put", x, 1, tarr([i]), ct(rand((2, 5))), B(True))
            r = call("ct_gather", x, 0, ct(torch.zeros(2, 5, dtype=torch.int64)))
            del r
        del x, i
        assert lib.ct_live_tensors() == before


def test_scatter_reduce_prod_gradient_with_zeros():
    """prod's gradient where factors are zero: the product of the other factors (one zero
    in a group gives that position the product of the rest; two give zeros), as torch."""
    import ctorch
    from harness import check
    f = ctorch.lib.declare("ct_scatter_reduce", "T(T,i,T,T,s,b)")
    self_ = torch.tensor([[1.5, 0.0, 2.0, -1.0], [0.5, 3.0, 0.0, 2.0]], dtype=torch.float64)
    src = torch.tensor([[0.0, 2.0, 3.0, 0.0, 1.5], [4.0, 0.0, 0.5, 2.0, 0.0]], dtype=torch.float64)
    idx = torch.tensor([[0, 0, 1, 2, 2], [3, 1, 1, 0, 2]])
    for include_self in (True, False):
        check("scatter_reduce", lambda a, b: f(a, 1, idx, b, "prod", include_self),
              lambda a, b: torch.scatter_reduce(a, 1, idx, b, "prod", include_self=include_self), [self_, src])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int32, torch.complex64])
def test_index_add_rows_large(dtype):
    """index_add's row kernel on shapes that run on several threads (dim 0 with repeated
    indices, a middle dim, the last dim), non-contiguous operands, and index_add_ in place
    (self written directly when nothing needs a gradient)."""
    x, s = rand((2000, 48), dtype), rand((5000, 48), dtype)
    i = torch.randint(0, 2000, (5000,))
    i[:50] = 7
    for alpha in (1.0, 2.0):
        check("index_add", lambda a, b, c: call("ct_index_add", a, 0, b, c, D(alpha)),
              lambda a, b, c: torch.index_add(a, 0, b, c, alpha=alpha), [x, i, s])
    x3, s3, i3 = rand((3, 700, 20), dtype), rand((3, 900, 20), dtype), torch.randint(0, 700, (900,))
    check("index_add", lambda a, b, c: call("ct_index_add", a, 1, b, c, D(1.0)),
          lambda a, b, c: torch.index_add(a, 1, b, c), [x3, i3, s3])
    check("index_add", lambda a, b, c: call("ct_index_add", a, 2, b, c, D(1.0)),
          lambda a, b, c: torch.index_add(a, 2, b, c), [x3.transpose(1, 2).contiguous(), i3, s3.transpose(1, 2)])
    check("index_add", lambda a, b, c: call("ct_index_add", a, 0, b, c, D(1.0)),
          lambda a, b, c: torch.index_add(a, 0, b, c), [x.t().contiguous().t(), i, s.t().contiguous().t()])
    with case("index_add_"):
        c = ct(x)
        assert lib.ct_index_add_(c, 0, ct(i), ct(s), D(2.0)) == 0
        assert_close(to_torch(c), x.clone().index_add_(0, i, s, alpha=2.0))
        c = ct(x3)
        assert lib.ct_index_add_(c, 1, ct(i3.int()), ct(s3), D(1.0)) == 0
        assert_close(to_torch(c), x3.clone().index_add_(1, i3, s3))


def test_index_add_scalar_and_grad():
    x0, s0 = torch.tensor(1.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    check("index_add", lambda a, b: call("ct_index_add", a, 0, ct(torch.tensor([0])), b, D(3.0)),
          lambda a, b: torch.index_add(a, 0, torch.tensor([0]), b, alpha=3.0), [x0, s0])
    x, s = rand((6, 4)), rand((5, 4))
    ci = ct(torch.tensor([5, 0, 5, 2, 1]))
    gradcheck("index_add", lambda a, b: call("ct_index_add", a, 0, ci, b, D(1.0)), [x, s], second=True)
    x2, s2 = rand((4, 6)), rand((4, 3))
    ci2 = ct(torch.tensor([5, 0, 5]))
    gradcheck("index_add", lambda a, b: call("ct_index_add", a, 1, ci2, b, D(-0.5)), [x2, s2], second=True)
