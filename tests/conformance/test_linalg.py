"""Matrix products vs PyTorch: mm, bmm, mv, dot, vdot, outer, addmm, baddbmm, addmv,
matmul (every case), matmul_out, einsum. Values, gradients (backward with a random
grad_output, compared with torch.autograd), ctorch's own gradcheck / gradgradcheck in
float64, dtype coverage and error cases.

Talks to the library directly through ctypes (CTORCH_LIB, default build/libctorch.so);
test_shape.py imports the helpers below."""
import ctypes
import os

import numpy as np
import pytest
import torch

_LIB = os.environ.get("CTORCH_LIB", os.path.join(os.path.dirname(__file__), "..", "..", "build", "libctorch.so"))
lib = ctypes.CDLL(_LIB)
P = ctypes.c_void_p
I64P = ctypes.POINTER(ctypes.c_int64)

def _sig(name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f

_sig("ct_from_data", P, P, ctypes.c_int, I64P, ctypes.c_int)
_sig("ct_copy_to_buffer", ctypes.c_int, P, P, ctypes.c_size_t, ctypes.c_int)
_sig("ct_ndim", ctypes.c_int, P)
_sig("ct_sizes", I64P, P)
_sig("ct_get_dtype", ctypes.c_int, P)
_sig("ct_release", None, P)
_sig("ct_retain", P, P)
_sig("ct_last_error", ctypes.c_char_p)
_sig("ct_clear_error", None)
_sig("ct_set_requires_grad", ctypes.c_int, P, ctypes.c_bool)
_sig("ct_backward", ctypes.c_int, P, P, ctypes.c_bool, ctypes.c_bool)
_sig("ct_grad", P, P)
_sig("ct_transpose", P, P, ctypes.c_int, ctypes.c_int)
_sig("ct_contiguous", P, P)
_sig("ct_is_contiguous", ctypes.c_bool, P)
_sig("ct_shares_storage", ctypes.c_bool, P, P)
_sig("ct_live_tensors", ctypes.c_int64)
GCFN = ctypes.CFUNCTYPE(P, ctypes.c_int, ctypes.POINTER(P), P)
_sig("ct_gradcheck", ctypes.c_int, GCFN, ctypes.c_int, ctypes.POINTER(P), P, ctypes.c_double, ctypes.c_double,
     ctypes.c_double)
_sig("ct_gradgradcheck", ctypes.c_int, GCFN, ctypes.c_int, ctypes.POINTER(P), P, ctypes.c_double, ctypes.c_double,
     ctypes.c_double)

DT = {torch.bool: 0, torch.uint8: 1, torch.int8: 2, torch.int16: 3, torch.int32: 4, torch.int64: 5,
      torch.float16: 6, torch.bfloat16: 7, torch.float32: 8, torch.float64: 9, torch.complex64: 10,
      torch.complex128: 11}
TD = {v: k for k, v in DT.items()}


class T:
    """An owned ctorch tensor reference."""

    def __init__(self, ptr):
        if not ptr:
            raise CtError(lib.ct_last_error().decode())
        self.p = ptr

    def __del__(self):
        if getattr(self, "p", None):
            lib.ct_release(self.p)
            self.p = None

    @property
    def _as_parameter_(self):
        return P(self.p)


class CtError(RuntimeError):
    pass


def shape_arg(shape):
    shape = list(shape)
    return len(shape), (ctypes.c_int64 * max(1, len(shape)))(*shape)


def ct(t, noncontig=False, requires_grad=False):
    """ctorch copy of torch tensor t; noncontig gives a transposed view with t's values."""
    t = t.detach()
    if noncontig and t.dim() >= 2:
        base = t.transpose(-1, -2).contiguous()
        nd, sz = shape_arg(base.shape)
        b = T(lib.ct_from_data(P(base.data_ptr()), nd, sz, DT[t.dtype]))
        r = T(lib.ct_transpose(b, -1, -2))
        assert not lib.ct_is_contiguous(r) or min(t.shape[-2:]) <= 1
    else:
        c = t.contiguous()
        nd, sz = shape_arg(c.shape)
        r = T(lib.ct_from_data(P(c.data_ptr()), nd, sz, DT[t.dtype]))
    if requires_grad:
        assert lib.ct_set_requires_grad(r, True) == 0, lib.ct_last_error()
    return r


def to_torch(x, borrowed=False):
    p = x.p if isinstance(x, T) else x
    nd = lib.ct_ndim(p)
    s = lib.ct_sizes(p)
    shape = [s[i] for i in range(nd)]
    dt = TD[lib.ct_get_dtype(p)]
    out = torch.empty(shape, dtype=dt)
    nbytes = out.numel() * out.element_size()
    assert lib.ct_copy_to_buffer(p, P(out.data_ptr()), nbytes, DT[dt]) == 0, lib.ct_last_error()
    return out


def call(fn, *args):
    """Calls lib.<fn>(*args) returning a tensor; raises CtError with ctorch's message on NULL."""
    lib.ct_clear_error()
    f = getattr(lib, fn)
    f.restype = P
    p = f(*args)
    if not p:
        raise CtError(lib.ct_last_error().decode())
    return T(p)


def rand(shape, dtype=torch.float64, low=-3, high=3):
    if dtype == torch.bool:
        return torch.randint(0, 2, shape).bool()
    if not dtype.is_floating_point and not dtype.is_complex:
        return torch.randint(0 if dtype == torch.uint8 else low, high, shape, dtype=dtype)
    return torch.randn(shape, dtype=dtype)


def tol(dtype):
    return {torch.float16: (1e-2, 1e-2), torch.bfloat16: (5e-2, 5e-2), torch.float32: (1e-4, 1e-5),
            torch.complex64: (1e-4, 1e-5)}.get(dtype, (1e-10, 1e-12))


def assert_close(got, want):
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
    if not (want.dtype.is_floating_point or want.dtype.is_complex):
        assert torch.equal(got, want), (got, want)
        return
    rtol, atol = tol(want.dtype)
    if want.dtype in (torch.float16, torch.bfloat16):
        got, want = got.float(), want.float()
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol * max(1.0, want.abs().max().item() if want.numel() else 1.0),
                               equal_nan=True)


def check_op(ct_fn, torch_fn, inputs, noncontig=False, grad=True, extra=()):
    """Values (and gradients for float/complex inputs) of ct_fn(*ct_inputs, *extra) vs torch_fn(*inputs)."""
    diff = grad and all(t.dtype.is_floating_point or t.dtype.is_complex for t in inputs)
    cin = [ct(t, noncontig=noncontig, requires_grad=diff) for t in inputs]
    got = ct_fn(*cin)
    tin = [t.detach().clone().requires_grad_(diff) for t in inputs]
    want = torch_fn(*tin)
    assert_close(to_torch(got), want.detach())
    if diff and want.numel():
        g = torch.randn(want.shape, dtype=want.dtype)
        want.backward(g)
        assert lib.ct_backward(got, ct(g), False, False) == 0, lib.ct_last_error()
        for c, t in zip(cin, tin):
            gp = lib.ct_grad(c)
            if t.grad is None:
                continue
            assert gp, "missing gradient"
            assert_close(to_torch(gp), t.grad)


def gradcheck(fn, inputs, second=False):
    """ctorch's own gradcheck (float64 / complex128 inputs); fn(list of T borrowed ptrs) -> T."""
    keep = []

    def cb(n, ptrs, user):
        args = [ptrs[i] for i in range(n)]
        try:
            r = fn(*[P(a) for a in args])
        except CtError:
            return None
        p = lib.ct_retain(r.p)  # hand a new reference to the caller
        return p

    cfn = GCFN(cb)
    keep.append(cfn)
    cin = [ct(t, requires_grad=True) for t in inputs]
    arr = (P * len(cin))(*[c.p for c in cin])
    f = lib.ct_gradgradcheck if second else lib.ct_gradcheck
    rc = f(cfn, len(cin), arr, None, 1e-6, 1e-5, 1e-3)
    assert rc == 1, lib.ct_last_error().decode()


def raises(fn, *args, match=None):
    with pytest.raises(CtError) as e:
        call(fn, *args)
    if match:
        assert match in str(e.value), str(e.value)
    return str(e.value)


def _b(fn):
    return lambda *a: call(fn, *a)

# ------------------------------------------------------------------------------------
FLOATS = [torch.float32, torch.float64, torch.complex64, torch.complex128]
ALL_MM = FLOATS + [torch.float16, torch.bfloat16, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


@pytest.mark.parametrize("dtype", ALL_MM)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((1, 4), (4, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3)),
                                    ((5, 1), (1, 7)), ((17, 33), (33, 9))])
def test_mm(dtype, shapes):
    a, b = rand(shapes[0], dtype), rand(shapes[1], dtype)
    check_op(_b("ct_mm"), torch.mm, [a, b])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("nc", [(True, False), (False, True), (True, True)])
def test_mm_noncontiguous(dtype, nc):
    a, b = rand((6, 4), dtype), rand((4, 5), dtype)
    ca, cb = ct(a, noncontig=nc[0], requires_grad=True), ct(b, noncontig=nc[1], requires_grad=True)
    assert_close(to_torch(call("ct_mm", ca, cb)), a @ b)
    # a strided (every other column) operand that BLAS cannot take directly
    big = rand((6, 8), dtype)
    cbig = ct(big)
    lib.ct_slice.restype = P
    lib.ct_slice.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    sl = T(lib.ct_slice(cbig, 1, 0, 8, 2))
    assert_close(to_torch(call("ct_mm", sl, cb)), big[:, ::2] @ b)


@pytest.mark.parametrize("dtype", FLOATS + [torch.int64, torch.float16])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 4, 5)), ((1, 1, 1), (1, 1, 1)), ((0, 2, 3), (0, 3, 4)),
                                    ((3, 0, 2), (3, 2, 2)), ((70, 3, 4), (70, 4, 2))])
def test_bmm(dtype, shapes):
    check_op(_b("ct_bmm"), torch.bmm, [rand(shapes[0], dtype), rand(shapes[1], dtype)])


@pytest.mark.parametrize("dtype", FLOATS + [torch.int32])
def test_mv_dot_vdot_outer(dtype):
    check_op(_b("ct_mv"), torch.mv, [rand((4, 3), dtype), rand((3,), dtype)])
    check_op(_b("ct_mv"), torch.mv, [rand((4, 3), dtype), rand((3,), dtype)], noncontig=True)
    check_op(_b("ct_dot"), torch.dot, [rand((7,), dtype), rand((7,), dtype)])
    check_op(_b("ct_dot"), torch.dot, [rand((0,), dtype), rand((0,), dtype)], grad=False)
    check_op(_b("ct_vdot"), torch.vdot, [rand((5,), dtype), rand((5,), dtype)])
    check_op(_b("ct_outer"), torch.outer, [rand((4,), dtype), rand((3,), dtype)])


def test_outer_promotes():
    check_op(_b("ct_outer"), torch.outer, [rand((4,), torch.int64), rand((3,), torch.float32)], grad=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, -2.0), (0.0, 1.5)])
@pytest.mark.parametrize("inshape", [(3, 5), (5,), (1, 1), (3, 1)])
def test_addmm(dtype, beta, alpha, inshape):
    ext = (ctypes.c_double(beta), ctypes.c_double(alpha))
    check_op(lambda i, a, b: call("ct_addmm", i, a, b, *ext),
             lambda i, a, b: torch.addmm(i, a, b, beta=beta, alpha=alpha),
             [rand(inshape, dtype), rand((3, 4), dtype), rand((4, 5), dtype)])


@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, -2.0), (0.0, 1.5)])
def test_baddbmm_addmv(beta, alpha):
    ext = (ctypes.c_double(beta), ctypes.c_double(alpha))
    check_op(lambda i, a, b: call("ct_baddbmm", i, a, b, *ext),
             lambda i, a, b: torch.baddbmm(i, a, b, beta=beta, alpha=alpha),
             [rand((1, 3, 5)), rand((2, 3, 4)), rand((2, 4, 5))])
    check_op(lambda i, a, b: call("ct_addmv", i, a, b, *ext),
             lambda i, a, b: torch.addmv(i, a, b, beta=beta, alpha=alpha),
             [rand((3,)), rand((3, 4)), rand((4,))])


def test_beta_zero_ignores_nan():
    i = torch.full((2, 2), float("nan"))
    a, b = rand((2, 3), torch.float32), rand((3, 2), torch.float32)
    assert_close(to_torch(call("ct_addmm", ct(i), ct(a), ct(b), ctypes.c_double(0.0), ctypes.c_double(1.0))),
                 torch.addmm(i, a, b, beta=0))
    v = torch.full((2,), float("nan"))
    assert_close(to_torch(call("ct_addmv", ct(v), ct(a), ct(b[:, 0].contiguous()), ctypes.c_double(0.0),
                               ctypes.c_double(1.0))), torch.addmv(v, a, b[:, 0], beta=0))


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3,)),
                 ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)),
                 ((1, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)), ((4, 1, 2, 3), (1, 6, 3, 2)),
                 ((0, 2, 3), (3, 4)), ((2, 0, 3), (2, 3, 4)), ((2, 3, 0), (0, 4)), ((2, 1, 4), (1, 2, 4, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_matmul(shapes, dtype):
    check_op(_b("ct_matmul"), torch.matmul, [rand(shapes[0], dtype), rand(shapes[1], dtype)])


@pytest.mark.parametrize("shapes", MATMUL_SHAPES[:12])
def test_matmul_noncontig_int(shapes):
    check_op(_b("ct_matmul"), torch.matmul, [rand(shapes[0]), rand(shapes[1])], noncontig=True)
    check_op(_b("ct_matmul"), torch.matmul, [rand(shapes[0], torch.int64), rand(shapes[1], torch.int64)])


def test_matmul_out():
    a, b = rand((2, 3, 4)), rand((4, 5))
    out = ct(torch.zeros(1, dtype=torch.float64))
    lib.ct_matmul_out.argtypes = [P, P, P]
    assert lib.ct_matmul_out(out, ct(a), ct(b)) == 0, lib.ct_last_error()
    assert_close(to_torch(out), a @ b)


@pytest.mark.parametrize("fn,args", [
    ("ct_mm", [lambda: ct(rand((2, 3))), lambda: ct(rand((4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((2, 3))), lambda: ct(rand((4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((2, 2, 3))), lambda: ct(rand((2, 4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((3, 2, 3))), lambda: ct(rand((2, 3, 5)))]),
    ("ct_matmul", [lambda: ct(torch.tensor(1.0)), lambda: ct(rand((3,)))]),
    ("ct_matmul", [lambda: ct(rand((3,))), lambda: ct(rand((4,)))]),
    ("ct_mm", [lambda: ct(rand((2, 3), torch.float32)), lambda: ct(rand((3, 2)))]),
    ("ct_matmul", [lambda: ct(rand((2, 2, 3), torch.float32)), lambda: ct(rand((3, 2)))]),
    ("ct_mm", [lambda: ct(rand((3,))), lambda: ct(rand((3, 2)))]),
    ("ct_bmm", [lambda: ct(rand((2, 2, 3))), lambda: ct(rand((3, 3, 2)))]),
    ("ct_mv", [lambda: ct(rand((2, 3))), lambda: ct(rand((4,)))]),
    ("ct_dot", [lambda: ct(rand((3,))), lambda: ct(rand((3,), torch.float32))]),
    ("ct_dot", [lambda: ct(rand((3, 1))), lambda: ct(rand((3,)))]),
    ("ct_mm", [lambda: ct(rand((2, 2), torch.bool)), lambda: ct(rand((2, 2), torch.bool))]),
])
def test_errors(fn, args):
    targs = []
    cargs = [f() for f in args]
    for c in cargs:
        targs.append(to_torch(c))
    tfn = {"ct_mm": torch.mm, "ct_matmul": torch.matmul, "ct_bmm": torch.bmm, "ct_mv": torch.mv,
           "ct_dot": torch.dot}[fn]
    with pytest.raises(RuntimeError) as te:
        tfn(*targs)
    msg = raises(fn, *cargs)
    # the shape message names the same shapes as PyTorch where PyTorch names them as "AxB"
    if "cannot be multiplied" in str(te.value):
        assert str(te.value) in msg, (msg, str(te.value))
    if "same dtype" in str(te.value):
        assert str(te.value) in msg, (msg, str(te.value))


EINSUM = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
          ("ii", [(3, 3)]), ("ii->i", [(3, 3)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]),
          ("i,j->ij", [(2,), (3,)]), ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]), ("...j,j", [(2, 3, 4), (4,)]),
          ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]), ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
          ("iij->j", [(3, 3, 2)]), ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]), ("ij,ij->ij", [(2, 3), (2, 3)]),
          ("i,i,i->i", [(3,), (3,), (3,)]), ("ba", [(2, 3)]), ("Ab,bA->A", [(2, 3), (3, 2)]),
          ("ij,kj->ik", [(1, 3), (4, 3)]), ("...", [(2, 3)]), ("i...->...", [(2, 3, 4)]),
          ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("ij,jk->ik", [(0, 3), (3, 4)])]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum(eq, shapes):
    lib.ct_einsum.restype = P
    ins = [rand(s) for s in shapes]

    def cfn(*cs):
        arr = (P * len(cs))(*[c.p for c in cs])
        return call("ct_einsum", eq.encode(), len(cs), arr)

    check_op(cfn, lambda *ts: torch.einsum(eq, *ts), ins)


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(2, 3), (4, 5)]), ("ij,jk->ik", [(2, 3)]),
                                       ("ij->iij", [(2, 3)]), ("ijk->i", [(2, 3)]), ("ii", [(2, 3)]),
                                       ("i->j", [(2,)]), ("i1->i", [(2, 3)])])
def test_einsum_errors(eq, shapes):
    ins = [rand(s) for s in shapes]
    with pytest.raises(Exception):
        torch.einsum(eq, *ins)
    cs = [ct(t) for t in ins]
    arr = (P * len(cs))(*[c.p for c in cs])
    raises("ct_einsum", eq.encode(), len(cs), arr)


GC = [("ct_mm", [(3, 4), (4, 2)]), ("ct_bmm", [(2, 3, 4), (2, 4, 2)]), ("ct_mv", [(3, 4), (4,)]),
      ("ct_dot", [(4,), (4,)]), ("ct_matmul", [(2, 1, 3, 4), (3, 4, 2)]), ("ct_matmul", [(3,), (2, 3, 4)]),
      ("ct_outer", [(3,), (2,)])]


@pytest.mark.parametrize("fn,shapes", GC)
def test_gradcheck(fn, shapes):
    ins = [rand(s) for s in shapes]
    gradcheck(lambda *ps: call(fn, *ps), ins)
    gradcheck(lambda *ps: call(fn, *ps), ins, second=True)


def test_gradcheck_add_forms():
    ext = (ctypes.c_double(0.7), ctypes.c_double(-1.3))
    gradcheck(lambda i, a, b: call("ct_addmm", i, a, b, *ext), [rand((3,)), rand((2, 4)), rand((4, 3))], second=True)
    gradcheck(lambda i, a, b: call("ct_baddbmm", i, a, b, *ext), [rand((2, 1, 3)), rand((2, 2, 4)), rand((2, 4, 3))],
              second=True)
    gradcheck(lambda i, a, b: call("ct_addmv", i, a, b, *ext), [rand((2,)), rand((2, 4)), rand((4,))], second=True)


def test_gradcheck_einsum():
    def f(a, b):
        arr = (P * 2)(a, b)
        return call("ct_einsum", b"bij,jk->bki", 2, arr)
    gradcheck(f, [rand((2, 3, 4)), rand((4, 2))], second=True)

    def g(a):
        arr = (P * 1)(a)
        return call("ct_einsum", b"iij->ij", 1, arr)
    # linear in its input: first order only (ct_gradgradcheck needs a gradient that depends on the input)
    gradcheck(g, [rand((3, 3, 2))])


def test_no_leaks():
    before = lib.ct_live_tensors()
    for shapes in MATMUL_SHAPES:
        r = call("ct_matmul", ct(rand(shapes[0]), requires_grad=True), ct(rand(shapes[1])))
        del r
    assert lib.ct_live_tensors() == before
