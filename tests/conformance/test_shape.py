"""Joining, splitting and rearranging ops vs PyTorch: cat, stack, hstack, vstack, split,
split_sizes, chunk, flip, fliplr, flipud, roll, rot90, repeat, tile, repeat_interleave,
tril/triu (+ in place), pad (all modes), one_hot, meshgrid, diag, diag_embed, trace.
Values, gradients vs torch.autograd, ctorch gradcheck/gradgradcheck, errors."""
import ctypes

import pytest
import torch
import torch.nn.functional as F

import ctorch

from _legacy import P, T, assert_close, call, check_op, ct, lib, rand, raises, to_torch
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import mat_gradcheck as gradcheck
from harness import case

I64 = ctypes.c_int64


def arr64(v):
    return (I64 * max(1, len(v)))(*v)


def tarr(ts):
    return (P * len(ts))(*[t.p if isinstance(t, T) else t.value for t in ts])


DTYPES = [torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64, torch.float16, torch.uint8]


# ---------------------------------- cat / stack ----------------------------------
def ct_cat(dim):
    return lambda *cs: call("ct_cat", len(cs), tarr(cs), dim)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,dim", [([(2, 3), (2, 4)], 1), ([(2, 3), (1, 3), (0, 3)], 0), ([(2, 3)], -1),
                                        ([(2, 3, 4), (2, 3, 1)], -1), ([(3,), (0,), (2,)], 0),
                                        ([(2, 3), (0,)], 1), ([(0,), (0,)], 0)])
def test_cat(dtype, shapes, dim):
    ins = [rand(s, dtype) for s in shapes]
    check_op("cat", ct_cat(dim), lambda *ts: torch.cat(ts, dim), ins)
    check_op("cat", ct_cat(dim), lambda *ts: torch.cat(ts, dim), ins, noncontig=True)


def _view(c, fn, *args):
    """a ctorch view of ctorch tensor c: ct_narrow / ct_slice with int64 arguments"""
    conv = {"ct_narrow": (ctypes.c_int, I64, I64), "ct_slice": (ctypes.c_int, I64, I64, I64)}[fn]
    return call(fn, c, *[t(a) for t, a in zip(conv, args)])


# Large enough for the one-pass kernel to split the output between threads at byte
# offsets inside the inputs' blocks (cpu/copy.c cpu_cat), in every element size; inputs
# that are slices along dim (contiguous blocks at a stride), an empty legacy 1-D input
# among them, and inputs whose blocks are not evenly spaced (copied one by one instead).
# The result must be torch.cat's, bit for bit.
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.float16, torch.float64, torch.complex128])
@pytest.mark.parametrize("layout", ["slices", "contiguous", "legacy_empty", "strided_blocks", "uneven", "dim0", "3d"])
def test_cat_one_pass_large(dtype, layout):
    with case("cat"):
        lib.ct_set_num_threads(2)
        if layout == "slices":  # roll's two parts: [4096, 5] and [4096, 1019] of one [4096, 1024]
            base = rand((4096, 1024), dtype)
            cb = ct(base)
            cs = [_view(cb, "ct_narrow", 1, 1019, 5), _view(cb, "ct_narrow", 1, 0, 1019)]
            ts, dim = [base[:, 1019:], base[:, :1019]], 1
        elif layout in ("strided_blocks", "uneven"):
            # x[:, :3] of [40, 7, 999] along dim 1: blocks of [3, 999] at a stride of 7 * 999;
            # along dim 2 its [999] rows are not evenly spaced (nor x[:, ::2]'s): copied per input
            base, other = rand((40, 7, 999), dtype), rand((40, 3, 500), dtype)
            cb = ct(base)
            if layout == "strided_blocks":
                cs, ts, dim = [_view(cb, "ct_narrow", 1, 0, 3), ct(base[:, 3:5])], [base[:, :3], base[:, 3:5]], 1
            else:
                cs = [_view(cb, "ct_narrow", 1, 0, 3), ct(other), _view(_view(cb, "ct_slice", 1, 0, 6, 2), "ct_narrow", 2, 0, 500)]
                ts, dim = [base[:, :3], other, base[:, 0:6:2, :500]], 2
        else:
            shapes, dim = {"contiguous": ([(333, 1001), (333, 7), (333, 1)], 1),
                           "legacy_empty": ([(600, 300), (0,), (600, 201)], 1),
                           "dim0": ([(70001,), (3,), (65536,)], 0),
                           "3d": ([(2, 3, 9000), (2, 5, 9000), (2, 0, 9000)], 1)}[layout]
            ts = [rand(sh, dtype) for sh in shapes]
            cs = [ct(t) for t in ts]
        got = to_torch(call("ct_cat", len(cs), tarr(cs), dim))
        want = torch.cat(ts, dim)
        assert got.dtype == want.dtype and got.shape == want.shape
        bits = (lambda t: t.view(torch.float64)) if dtype.is_complex else (lambda t: t)
        assert torch.equal(bits(got), bits(want))


def test_cat_expanded_inputs():
    """Inputs with stride-0 dims before the joined one: a block repeated along one outer
    dim is evenly spaced (stride 0); repeated along an inner outer dim and stepped along
    an outer one it is not, and must be copied element by element."""
    with case("cat"):
        a, b, r = rand((2, 1, 4)), rand((2, 3, 5)), rand((1, 6))
        ca, cb, cr, cb0 = ct(a), ct(b), ct(r), ct(b[0])  # kept alive: tarr takes raw pointers
        ea = call("ct_expand", ca, 3, arr64([2, 3, 4]))
        got = to_torch(call("ct_cat", 2, tarr([ea, cb]), 2))
        assert torch.equal(got, torch.cat([a.expand(2, 3, 4), b], 2))
        er = call("ct_expand", cr, 2, arr64([3, 6]))
        got = to_torch(call("ct_cat", 2, tarr([er, cb0]), 1))
        assert torch.equal(got, torch.cat([r.expand(3, 6), b[0]], 1))


def test_cat_promotes():
    ins = [rand((2, 2), torch.int32), rand((2, 1), torch.float32), rand((2, 1), torch.bool)]
    check_op("cat", ct_cat(1), lambda *ts: torch.cat(ts, 1), ins, grad=False)
    ins = [rand((2, 2), torch.float32), rand((2, 1), torch.float64)]
    check_op("cat", ct_cat(1), lambda *ts: torch.cat(ts, 1), ins)


@pytest.mark.parametrize("shapes,dim,msg", [
    ([(2, 3), (3, 3)], 1, "Sizes of tensors must match except in dimension 1. Expected size 2 but got size 3 for tensor number 1 in the list."),
    ([(2, 3), (2, 3, 1)], 0, "Tensors must have same number of dimensions: got 2 and 3"),
    ([(2, 3)], 2, "Dimension out of range"),
    ([()], 0, "zero-dimensional tensor (at position 0) cannot be concatenated"),
])
def test_cat_errors(shapes, dim, msg):
    ins = [rand(s) for s in shapes]
    with pytest.raises((RuntimeError, IndexError)):
        torch.cat(ins, dim)
    cs = [ct(t) for t in ins]
    raises("ct_cat", len(cs), tarr(cs), dim, match=msg)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    ins = [rand((2, 3)) for _ in range(3)]
    check_op("stack", lambda *cs: call("ct_stack", len(cs), tarr(cs), dim), lambda *ts: torch.stack(ts, dim), ins)
    cs = [ct(rand((2, 3))), ct(rand((2, 4)))]
    raises("ct_stack", 2, tarr(cs), 0, match="stack expects each tensor to be equal size")


@pytest.mark.parametrize("shapes", [[(3,), (2,)], [(2, 3), (2, 1)], [(), ()], [(2, 1, 2), (2, 3, 2)]])
def test_hstack(shapes):
    check_op("hstack", lambda *cs: call("ct_hstack", len(cs), tarr(cs)), lambda *ts: torch.hstack(ts),
             [rand(s) for s in shapes])


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)], [(), ()], [(1, 2, 2), (2, 2, 2)]])
def test_vstack(shapes):
    check_op("vstack", lambda *cs: call("ct_vstack", len(cs), tarr(cs)), lambda *ts: torch.vstack(ts),
             [rand(s) for s in shapes])


# ------------------------------- split / chunk -------------------------------
def _outs(n):
    return (P * n)()


def _collect(ptrs, n):
    return [T(ptrs[i]) for i in range(n)]


@pytest.mark.parametrize("size,split,dim", [((7, 3), 3, 0), ((7, 3), 1, 1), ((6,), 6, 0), ((6,), 10, 0),
                                             ((0, 2), 0, 0), ((0, 2), 3, 0)])
def test_split(size, split, dim):
    x = rand(size)
    want = torch.split(x, split, dim)
    with case("split"):
        cx = ct(x)
        lib.ct_split.argtypes = [P, I64, ctypes.c_int, P, I64]
        lib.ct_split.restype = I64
        out = _outs(64)
        n = lib.ct_split(cx, split, dim, out, 64)
        assert n == len(want), lib.ct_last_error()
        got = _collect(out, n)
        for g, w in zip(got, want):
            assert_close(to_torch(g), w)
            assert lib.ct_shares_storage(g, cx)


def test_split_grad_and_sizes():
    x = rand((5, 3))
    cx = ct(x, requires_grad=True)
    lib.ct_split_sizes.argtypes = [P, ctypes.c_int, P, ctypes.c_int, P]
    lib.ct_split_sizes.restype = I64
    out = _outs(3)
    with case("split_with_sizes"):
        assert lib.ct_split_sizes(cx, 3, arr64([2, 0, 3]), 0, out) == 3
        parts = _collect(out, 3)
        want = torch.split(x, [2, 0, 3], 0)
        for g, w in zip(parts, want):
            assert_close(to_torch(g), w)
    with case("split_with_sizes"):
        lib.ct_clear_error()
        assert lib.ct_split_sizes(cx, 2, arr64([2, 2]), 0, out) == -1
        assert "split_with_sizes expects split_sizes to sum exactly to 5" in lib.ct_last_error().decode()
    # gradient through one part
    with case("split_with_sizes"):
        xt = x.clone().requires_grad_()
        torch.split(xt, [2, 0, 3], 0)[2].sum().backward()
        s = call("ct_sum", parts[2])
        assert lib.ct_backward(s, None, False, False) == 0
        assert_close(to_torch(lib.ct_grad(cx)), xt.grad)


@pytest.mark.parametrize("n,chunks", [(7, 3), (6, 4), (5, 5), (2, 5), (0, 3), (10, 1)])
def test_chunk(n, chunks):
    x = rand((n, 2))
    want = torch.chunk(x, chunks, 0)
    lib.ct_chunk.argtypes = [P, I64, ctypes.c_int, P, I64]
    lib.ct_chunk.restype = I64
    with case("chunk"):
        out = _outs(16)
        k = lib.ct_chunk(ct(x), chunks, 0, out, 16)
        assert k == len(want), (k, len(want), lib.ct_last_error())
        for g, w in zip(_collect(out, k), want):
            assert_close(to_torch(g), w)


# ------------------------------- rearranging -------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dims", [((2, 3, 4), [0]), ((2, 3, 4), [1, 2]), ((2, 3, 4), [-1, 0, 1]),
                                        ((5,), [0]), ((), []), ((0, 3), [1]),
                                        # rows copied whole (last dim kept), reversed rows in vectors
                                        ((9, 70), [0]), ((3, 5, 67), [1]), ((9, 70), [1]), ((4, 3, 130), [0, 2])])
def test_flip(dtype, shape, dims):
    check_op("flip", lambda c: call("ct_flip", c, len(dims), arr64(dims)), lambda t: torch.flip(t, dims),
             [rand(shape, dtype)])
    check_op("flip", lambda c: call("ct_flip", c, len(dims), arr64(dims)), lambda t: torch.flip(t, dims),
             [rand(shape, dtype)], noncontig=True)


def test_fliplr_ud():
    check_op("fliplr", lambda c: call("ct_fliplr", c), torch.fliplr, [rand((3, 4, 2))])
    check_op("flipud", lambda c: call("ct_flipud", c), torch.flipud, [rand((3, 4))])
    raises("ct_fliplr", ct(rand((3,))), match="Input must be >= 2-d.")
    raises("ct_flip", ct(rand((3, 2))), 2, arr64([0, 0]))


@pytest.mark.parametrize("shape,shifts,dims", [((5,), [2], [0]), ((3, 4), [1, -1], [0, 1]), ((3, 4), [7], []),
                                               ((3, 4), [-9], [1]), ((2, 0), [1], [1]), ((2, 3), [3], [1])])
def test_roll(shape, shifts, dims):
    check_op("roll", lambda c: call("ct_roll", c, len(shifts), arr64(shifts), len(dims), arr64(dims)),
             lambda t: torch.roll(t, shifts, dims if dims else None), [rand(shape)])


@pytest.mark.parametrize("k", [0, 1, 2, 3, -1, 5])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (1, 2)])
def test_rot90(k, dims):
    check_op("rot90", lambda c: call("ct_rot90", c, k, dims[0], dims[1]), lambda t: torch.rot90(t, k, dims),
             [rand((2, 3, 4))])


@pytest.mark.parametrize("shape,reps", [((2, 3), [2, 1]), ((2, 3), [1, 2, 3]), ((3,), [0, 2]), ((), [3]),
                                        ((2, 1), [1, 1])])
def test_repeat_tile(shape, reps):
    check_op("repeat", lambda c: call("ct_repeat", c, len(reps), arr64(reps)), lambda t: t.repeat(*reps), [rand(shape)])
    check_op("tile", lambda c: call("ct_tile", c, len(reps), arr64(reps)), lambda t: torch.tile(t, reps), [rand(shape)])
    check_op("tile", lambda c: call("ct_tile", c, 1, arr64(reps[:1])), lambda t: torch.tile(t, reps[:1]), [rand(shape)])


def test_repeat_errors():
    raises("ct_repeat", ct(rand((2, 3))), 1, arr64([2]), match="can not be smaller")


ALL = -2147483648


@pytest.mark.parametrize("shape,r,dim", [((2, 3), 2, 0), ((2, 3), 3, 1), ((2, 3), 2, ALL), ((2, 3), 0, 1),
                                         ((), 3, ALL)])
def test_repeat_interleave_int(shape, r, dim):
    check_op("repeat_interleave", lambda c: call("ct_repeat_interleave_int", c, I64(r), dim),
             lambda t: torch.repeat_interleave(t, r, dim=None if dim == ALL else dim), [rand(shape)])


@pytest.mark.parametrize("shape,reps,dim", [((3, 2), [1, 0, 2], 0), ((2, 3), [2, 1, 3], 1), ((4,), [1, 2, 0, 1], ALL),
                                            ((2, 2), [3], 1), ((2,), [0, 0], 0)])
def test_repeat_interleave_tensor(shape, reps, dim):
    rt = torch.tensor(reps)
    check_op("repeat_interleave", lambda c: call("ct_repeat_interleave", c, ct(rt), dim),
             lambda t: torch.repeat_interleave(t, rt, dim=None if dim == ALL else dim), [rand(shape)])
    if len(reps) > 1:
        raises("ct_repeat_interleave", ct(rand(shape)), ct(torch.tensor(reps + [1])), 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool, torch.complex128])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 3, 4), (0, 3), (6, 2), (2, 40, 33)])
@pytest.mark.parametrize("k", [0, 1, -2, 7, -40, 2**62, -2**62])
def test_tril_triu(dtype, shape, k):
    # each row: one copy of the kept columns and zero fills on either side (diagonals
    # beyond the matrix, even near the int64 limits, keep all or nothing)
    check_op("tril", lambda c: call("ct_tril", c, I64(k)), lambda t: torch.tril(t, k), [rand(shape, dtype)],
             noncontig=True)
    check_op("triu", lambda c: call("ct_triu", c, I64(k)), lambda t: torch.triu(t, k), [rand(shape, dtype)],
             noncontig=True)


def test_tril_inplace_and_errors():
    x = rand((3, 4))
    c = ct(x)
    with case("tril_"):
        lib.ct_tril_.argtypes = [P, I64]
        assert lib.ct_tril_(c, 0) == 0
        assert_close(to_torch(c), torch.tril(x))
    with case("triu_"):
        lib.ct_triu_.argtypes = [P, I64]
        assert lib.ct_triu_(c, 1) == 0
        assert_close(to_torch(c), torch.triu(torch.tril(x), 1))
    raises("ct_tril", ct(rand((3,))), I64(0))


PADS = [((2, 3), [1, 2]), ((2, 3), [1, 0, 0, 2]), ((2, 3, 4), [-1, 2, 1, -1]), ((2, 3), [0, 0]),
        ((1, 2, 5), [2, 3]), ((2, 2, 3, 4), [1, 2, 2, 1]), ((1, 2, 3, 3, 3), [1, 1, 2, 0, 0, 2])]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", PADS)
def test_pad(mode, shape, pad):
    x = rand(shape)
    try:
        want = F.pad(x, pad, mode=mode, value=1.5) if mode == "constant" else F.pad(x, pad, mode=mode)
    except (RuntimeError, NotImplementedError, ValueError):
        raises("ct_pad", ct(x), len(pad), arr64(pad), mode.encode(), ctypes.c_double(1.5))
        return
    kw = dict(value=1.5) if mode == "constant" else {}
    check_op("pad", lambda c: call("ct_pad", c, len(pad), arr64(pad), mode.encode(), ctypes.c_double(1.5)),
             lambda t: F.pad(t, pad, mode=mode, **kw), [x])
    assert want.shape == F.pad(x, pad, mode=mode, **kw).shape


def test_pad_errors():
    raises("ct_pad", ct(rand((2, 3))), 3, arr64([1, 2, 3]), b"constant", ctypes.c_double(0), match="divisible by 2")
    raises("ct_pad", ct(rand((2, 3))), 2, arr64([-2, -2]), b"constant", ctypes.c_double(0),
           match="resulted in a negative output size")
    raises("ct_pad", ct(rand((1, 2, 3))), 2, arr64([3, 0]), b"reflect", ctypes.c_double(0),
           match="Padding size should be less than the corresponding input dimension")
    with pytest.raises(RuntimeError):
        F.pad(rand((1, 2, 3)), [3, 0], mode="reflect")


def test_pad_int_dtype():
    x = rand((2, 3), torch.int64)
    with case("pad"):
        assert_close(to_torch(call("ct_pad", ct(x), 2, arr64([1, 1]), b"constant", ctypes.c_double(7))),
                     F.pad(x, [1, 1], value=7))


@pytest.mark.parametrize("vals,n", [([0, 2, 1], -1), ([[0, 1], [3, 2]], 5), ([], 3)])
def test_one_hot(vals, n):
    x = torch.tensor(vals, dtype=torch.int64)
    with case("one_hot"):
        assert_close(to_torch(call("ct_one_hot", ct(x), I64(n))), F.one_hot(x, n))


def test_one_hot_errors():
    raises("ct_one_hot", ct(torch.tensor([1, -1])), I64(-1), match="non-negative")
    raises("ct_one_hot", ct(torch.tensor([1, 3])), I64(3), match="smaller than num_classes")
    raises("ct_one_hot", ct(torch.tensor([1.0])), I64(3), match="LongTensor")
    raises("ct_one_hot", ct(torch.tensor([], dtype=torch.int64)), I64(-1), match="Can not infer")


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("shapes", [[(3,), (4,)], [(2,), (3,), (4,)], [(3,)], [(), (2,)]])
def test_meshgrid(indexing, shapes):
    ins = [rand(s) for s in shapes]
    want = torch.meshgrid(*ins, indexing=indexing)
    cs = [ct(t, requires_grad=True) for t in ins]
    out = _outs(len(cs))
    lib.ct_meshgrid.argtypes = [ctypes.c_int, P, ctypes.c_char_p, P]
    with case("meshgrid"):
        assert lib.ct_meshgrid(len(cs), tarr(cs), indexing.encode(), out) == 0, lib.ct_last_error()
        got = _collect(out, len(cs))
        for g, w in zip(got, want):
            assert_close(to_torch(g), w)
    with case("meshgrid"):
        assert lib.ct_meshgrid(len(cs), tarr(cs), b"ab", out) != 0


@pytest.mark.parametrize("shape,k", [((4,), 0), ((4,), 2), ((3,), -1), ((3, 4), 0), ((3, 4), 1), ((3, 4), -2),
                                     ((3, 4), 9), ((0,), 1)])
def test_diag(shape, k):
    check_op("diag", lambda c: call("ct_diag", c, I64(k)), lambda t: torch.diag(t, k), [rand(shape)])


@pytest.mark.parametrize("shape,off,d1,d2", [((2, 3), 0, -2, -1), ((2, 3), 1, 0, 2), ((4,), -2, 0, 1),
                                             ((2, 3), -1, 2, 0), ((2, 0), 1, -2, -1)])
def test_diag_embed(shape, off, d1, d2):
    check_op("diag_embed", lambda c: call("ct_diag_embed", c, I64(off), d1, d2),
             lambda t: torch.diag_embed(t, off, d1, d2),
             [rand(shape)])


@pytest.mark.parametrize("dtype", [torch.float64, torch.int32, torch.float32])
@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (4, 1), (0, 2)])
def test_trace(dtype, shape):
    check_op("trace", lambda c: call("ct_trace", c), torch.trace, [rand(shape, dtype)])
    raises("ct_trace", ct(rand((2, 2, 2))), match="expected a matrix")


GC = [
    ("cat", lambda a, b: call("ct_cat", 2, tarr([a, b]), 1), [(2, 3), (2, 2)]),
    ("stack", lambda a, b: call("ct_stack", 2, tarr([a, b]), 1), [(2, 3), (2, 3)]),
    ("flip", lambda a: call("ct_flip", a, 1, arr64([1])), [(2, 3)]),
    ("roll", lambda a: call("ct_roll", a, 1, arr64([1]), 1, arr64([0])), [(3, 2)]),
    ("rot90", lambda a: call("ct_rot90", a, 1, 0, 1), [(2, 3)]),
    ("repeat", lambda a: call("ct_repeat", a, 2, arr64([2, 3])), [(2, 1)]),
    ("repeat_interleave", lambda a: call("ct_repeat_interleave_int", a, I64(2), 0), [(3,)]),
    ("tril", lambda a: call("ct_tril", a, I64(0)), [(3, 3)]),
    ("pad", lambda a: call("ct_pad", a, 2, arr64([1, 2]), b"reflect", ctypes.c_double(0)), [(1, 4)]),
    ("pad", lambda a: call("ct_pad", a, 4, arr64([1, -1, 0, 2]), b"constant", ctypes.c_double(0)), [(2, 3)]),
    ("pad", lambda a: call("ct_pad", a, 2, arr64([1, 2]), b"replicate", ctypes.c_double(0)), [(1, 4)]),
    ("diag_embed", lambda a: call("ct_diag_embed", a, I64(1), 0, 1), [(3,)]),
    ("diag", lambda a: call("ct_diag", a, I64(0)), [(3, 3)]),
    ("trace", lambda a: call("ct_trace", a), [(3, 3)]),
]


@pytest.mark.parametrize("i", range(len(GC)))
def test_gradcheck(i):
    op, fn, shapes = GC[i]
    gradcheck(op, fn, [rand(s) for s in shapes])


def test_gradgradcheck_nonlinear():
    # the shape ops are linear; compose with a product so the gradient depends on the input
    # gradcheck runs fn inside a scope: intermediates stay scope-owned (raw pointers, never released here)
    def raw(fn, *args):
        getattr(lib, fn).restype = P
        return P(getattr(lib, fn)(*args))

    def f(a):
        c = raw("ct_cat", 2, tarr([a, a]), 1)
        fl = raw("ct_flip", c, 1, arr64([0]))
        return call("ct_mul", fl, raw("ct_pad", c, 4, arr64([0, 0, 1, -1]), b"constant", ctypes.c_double(2.0)))
    gradcheck(("cat", "flip", "pad"), f, [rand((3, 2))], second=True)


# ---- float64 gradcheck of the view and shape ops (and add/where), one case each ----
def _gc_views():
    import ctorch as _c
    C = _c.call
    sq = lambda t: C("ct_squeeze_dim", t, 1, sig="T(T,i)")
    return {
        "view": (lambda t: C("ct_view", t, (4, 3), sig="T(T,shape)"), (3, 4)),
        "reshape": (lambda t: C("ct_reshape", C("ct_t", t), (12,), sig="T(T,shape)"), (3, 4)),
        "as_strided": (lambda t: C("ct_as_strided", t, (2, 2), (1, 3), 1, sig="T(T,shape,i64[],i64)"), (3, 4)),
        "permute": (lambda t: C("ct_permute", t, (2, 0, 1), sig="T(T,dims)"), (2, 3, 4)),
        "t": (lambda t: C("ct_t", t), (3, 4)),
        "expand_as": (lambda t: C("ct_expand_as", t, _c.from_torch(torch.zeros(2, 3, 4, dtype=torch.float64))), (3, 1)),
        "narrow": (lambda t: C("ct_narrow", t, 1, 1, 2, sig="T(T,i,i64,i64)"), (3, 4)),
        "select": (lambda t: C("ct_select", t, 0, 2, sig="T(T,i,i64)"), (3, 4)),
        "slice": (lambda t: C("ct_slice", t, 1, 0, 4, 2, sig="T(T,i,i64,i64,i64)"), (3, 4)),
        "squeeze": (lambda t: C("ct_squeeze", t), (3, 1, 2)),
        "squeeze_dim": (sq, (3, 1, 2)),
        "unsqueeze": (lambda t: C("ct_unsqueeze", t, 1, sig="T(T,i)"), (3, 2)),
        "flatten": (lambda t: C("ct_flatten", t, 0, -1, sig="T(T,i,i)"), (2, 3, 2)),
        "unflatten": (lambda t: C("ct_unflatten", t, 1, (2, 2), sig="T(T,i,shape)"), (3, 4)),
        "diagonal": (lambda t: C("ct_diagonal", t, 1, 0, 1, sig="T(T,i64,i,i)"), (3, 4)),
        "movedim": (lambda t: C("ct_movedim", t, 0, 2, sig="T(T,i,i)"), (2, 3, 4)),
        "clone": (lambda t: C("ct_clone", t), (3, 4)),
        "contiguous": (lambda t: C("ct_contiguous", C("ct_t", t)), (3, 4)),
        "unbind": (lambda t: ctorch.unbind(t, 1)[2], (3, 4)),
        "view_as_complex": (lambda t: C("ct_view_as_complex", t), (3, 2)),
        "add": (lambda t: C("ct_add", t, C("ct_mul", t, t)), (3, 4)),
        "where": (lambda t: C("ct_where", _c.from_torch(torch.tensor([True, False, True])), t, C("ct_neg", t)), (3,)),
    }


@pytest.mark.parametrize("name", list(_gc_views()))
def test_view_ops_gradcheck(name):
    from harness import gradcheck
    f, shape = _gc_views()[name]
    gradcheck(name, f, [torch.randn(*shape, dtype=torch.float64)])


def test_view_as_real_gradcheck():
    from harness import gradcheck
    gradcheck("view_as_real", lambda t: ctorch.call("ct_view_as_real", t), [torch.randn(3, dtype=torch.complex128)])


# Copies whose output's last dim is strided in the source and another dim contiguous
# there (x.t().contiguous(), permutes between NCHW and NHWC) run in 8 x 8 tiles
# (src/cpu/copy.c, transpose_copy): 2-, 4- and 8-byte elements, batch dims walked
# outside the planes, sizes off the tile, a source that starts inside its storage,
# output rows of 2 to 7 elements (pixel_shuffle's interleave: [..., W, r] from r planes
# with W contiguous), and layouts that stay with the element loop (16-byte complex,
# planes with fewer than 8 contiguous source elements or a 1-wide output row).
PERMUTE_COPIES = [((64, 48), (1, 0)), ((37, 129), (1, 0)), ((3, 20, 17), (0, 2, 1)), ((2, 9, 11, 10), (0, 2, 3, 1)),
                  ((2, 12, 9, 10), (0, 3, 1, 2)), ((4, 5, 6, 8), (3, 2, 1, 0)), ((7, 300), (1, 0)), ((5, 40), (1, 0)),
                  ((2, 3, 2, 2, 5, 28), (0, 1, 4, 2, 5, 3)), ((4, 3, 3, 9, 11), (0, 1, 3, 4, 2)), ((2, 100), (1, 0)),
                  ((7, 33), (1, 0)), ((3, 1, 40), (0, 2, 1))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int16, torch.int64,
                                   torch.complex64, torch.complex128, torch.uint8])
@pytest.mark.parametrize("shape,perm", PERMUTE_COPIES)
def test_permuted_contiguous_copies(shape, perm, dtype):
    base = (torch.randn((3,) + shape) * 100).to(dtype)
    x = base[1]  # a view starting inside its storage
    want = x.permute(*perm).contiguous()
    permute = ctorch.lib.declare("ct_permute", "T(T,dims)")
    with case("contiguous"):
        cb = ctorch.from_torch(base)
        cx = ctorch.call("ct_select", cb, 0, 1, sig="T(T,i,i64)")
        got = ctorch.call("ct_contiguous", permute(cx, list(perm)))
        assert got.is_contiguous()
        assert torch.equal(got.torch(), want)


# Copies of long contiguous runs whose destination sits just past the source modulo
# 4 KiB go in 256-byte blocks, each loaded whole before it is stored (src/cpu/copy.c,
# copy_run): cat of column slices and roll of power-of-two-wide rows put shifts and
# alignments through it (tensors from 2 MiB up
# are 2 MiB-aligned, so for float32 and float64 the source and the result share their
# 4 KiB offsets and the small shifts and 1000 take that path every time).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int16])
@pytest.mark.parametrize("shift", [1, 3, 5, 8, 100, 1000, -7])
def test_roll_and_cat_of_column_slices(shift, dtype):
    x = (torch.randn(600, 1024) * 1000).to(dtype)
    roll = ctorch.lib.declare("ct_roll", "T(T,shape,shape)")
    with case("roll"):
        assert torch.equal(roll(ctorch.from_torch(x), [shift], [1]).torch(), x.roll(shift, 1))
    k = shift % 1024
    with case("cat"):
        cx = ctorch.from_torch(x)
        parts = [ctorch.call("ct_narrow", cx, 1, k, 1024 - k, sig="T(T,i,i64,i64)"),
                 ctorch.call("ct_narrow", cx, 1, 0, k, sig="T(T,i,i64,i64)")]
        got = ctorch.call("ct_cat", parts, 1, sig="T(Tn,i)")
        assert torch.equal(got.torch(), torch.cat([x[:, k:], x[:, :k]], 1))
