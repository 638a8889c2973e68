"""Helpers of the conformance tests written before harness.py existed (test_binary,
test_ternary, test_unary, test_activation: section A; test_linalg, test_shape,
test_index, test_sort: section B). They talk to libctorch through plain ctypes, with
their own CDLL handles on the SAME library file as the ctorch binding (CTORCH_LIB,
else build/libctorch.so of this tree), so tensors pass freely between them.

Every check these helpers make is recorded as a case in harness.RESULTS (written to
build/conformance.json) under the op's PyTorch name: op_of("ct_pow_scalar") == "pow".
Checks written directly in a test body are recorded with `with case("op"): ...`."""
import contextlib
import ctypes
import zlib

import pytest
import torch

import ctorch
from harness import case, count

LIB_PATH = ctorch.lib.cdll._name  # the file the ctorch binding loaded

# C function name -> PyTorch op name, where the two differ beyond the "ct_" prefix and
# an "_out" suffix (in-place forms keep their trailing "_", as torch spells them)
_OP_NAMES = {"pow_scalar": "pow", "div_mode": "div", "clamp_scalar": "clamp", "clamp_scalar_": "clamp_",
             "round_decimals": "round", "mul_scalar": "mul", "scatter_value": "scatter",
             "repeat_interleave_int": "repeat_interleave", "split_sizes": "split_with_sizes"}


def op_of(cname):
    """PyTorch's name of the op a ctorch C function implements: ct_pow_scalar -> pow,
    ct_pow_out -> pow, ct_pow_ -> pow_, ct_div_mode -> div."""
    n = cname[3:] if cname.startswith("ct_") else cname
    if n.endswith("_out"):
        n = n[:-4]
    return _OP_NAMES.get(n, n)


@pytest.fixture(autouse=True)
def seed_each_test(request):
    """Seeds torch's global generator per test (from the file and test name), so the
    random inputs of a test do not depend on which tests or files ran before it.
    Import it into a test module to make it apply there."""
    torch.manual_seed(zlib.crc32(f"{request.module.__name__}::{request.node.name}".encode()))


# =========================================================================================
# Section A: elementwise helpers (were at the top of test_binary.py)
# =========================================================================================
L = ctypes.CDLL(LIB_PATH)
P = ctypes.c_void_p
L.ct_last_error.restype = ctypes.c_char_p
L.ct_clear_error.restype = None
for _n in ["ct_from_data", "ct_float", "ct_int", "ct_bool", "ct_grad", "ct_sizes", "ct_transpose", "ct_detach"]:
    getattr(L, _n).restype = P
L.ct_float.argtypes = [ctypes.c_double]
L.ct_int.argtypes = [ctypes.c_int64]
L.ct_bool.argtypes = [ctypes.c_bool]
L.ct_transpose.argtypes = [P, ctypes.c_int, ctypes.c_int]
L.ct_ndim.restype = ctypes.c_int
L.ct_get_dtype.restype = ctypes.c_int
L.ct_set_requires_grad.argtypes = [P, ctypes.c_bool]
L.ct_backward.argtypes = [P, P, ctypes.c_bool, ctypes.c_bool]
L.ct_copy_to_buffer.argtypes = [P, P, ctypes.c_size_t, ctypes.c_int]
GCFN = ctypes.CFUNCTYPE(P, ctypes.c_int, ctypes.POINTER(P), P)
for _n in ["ct_gradcheck", "ct_gradgradcheck"]:
    getattr(L, _n).argtypes = [GCFN, ctypes.c_int, ctypes.POINTER(P), P, ctypes.c_double, ctypes.c_double, ctypes.c_double]
    getattr(L, _n).restype = ctypes.c_int

DT = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
      torch.float32, torch.float64, torch.complex64, torch.complex128]
_keep = []  # handles live for the test session (released at process exit)


class _Fn:
    """A C function of L whose every call first clears ctorch's error record, so that a
    message read after a failed call is that call's own. Attribute reads and writes
    (argtypes, restype) go to the ctypes function."""
    __slots__ = ("_f",)

    def __init__(self, f):
        object.__setattr__(self, "_f", f)

    def __call__(self, *args):
        L.ct_clear_error()
        return self._f(*args)

    def __getattr__(self, k):
        return getattr(self._f, k)

    def __setattr__(self, k, v):
        setattr(self._f, k, v)


def fn(name, nargs_double=0):
    f = getattr(L, name)
    f.restype = ctypes.c_int if name.endswith("_") or name.endswith("_out") else P
    return _Fn(f)


class Noncontig:
    """Marks a tensor to be passed to ctorch as a transposed (non-contiguous) view."""
    def __init__(self, t):
        self.t = t


def to_ct(t, requires_grad=False):
    if t is None:
        return None
    if isinstance(t, Noncontig):
        base = to_ct(t.t.transpose(0, 1).contiguous())
        v = P(L.ct_transpose(base, 0, 1))
        _keep.append(v)
        return v
    if isinstance(t, bool):
        return P(L.ct_bool(t))
    if isinstance(t, int):
        return P(L.ct_int(t))
    if isinstance(t, float):
        return P(L.ct_float(t))
    tc = t.detach().resolve_conj().contiguous()
    shape = (ctypes.c_int64 * max(1, tc.dim()))(*tc.shape)
    raw = tc.view(torch.int16) if tc.dtype in (torch.float16, torch.bfloat16) else tc
    buf = raw.numpy().tobytes()
    h = P(L.ct_from_data(buf, tc.dim(), shape, DT.index(tc.dtype)))
    assert h.value, L.ct_last_error()
    if requires_grad:
        assert L.ct_set_requires_grad(h, True) == 0
    _keep.append(h)
    return h


def from_ct(h):
    if not h:
        raise RuntimeError(L.ct_last_error().decode())
    h = P(h) if not isinstance(h, P) else h
    nd = L.ct_ndim(h)
    dt = DT[L.ct_get_dtype(h)]
    sz = ctypes.cast(L.ct_sizes(h), ctypes.POINTER(ctypes.c_int64))
    out = torch.empty([sz[i] for i in range(nd)], dtype=dt)
    raw = out.view(torch.int16) if dt in (torch.float16, torch.bfloat16) else out
    assert L.ct_copy_to_buffer(h, raw.numpy().ctypes.data_as(P), out.numel() * out.element_size(), DT.index(dt)) == 0
    return out


def last_error():
    return L.ct_last_error().decode()


def plain(a):
    return a.t if isinstance(a, Noncontig) else a


def assert_same(out, ref, rtol=None, atol=None):
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if ref.dtype in (torch.float16, torch.bfloat16):
        rtol, atol = None, None  # torch's own per-dtype defaults (about one ulp of the half type)
    if (rtol is None) != (atol is None):
        rtol, atol = None, None
    torch.testing.assert_close(out, ref, equal_nan=True, rtol=rtol, atol=atol)


def check_forward(cname, tfn, args, extra=(), op=None, **tol):
    """Runs ctorch's cname and torch's tfn on args; both must fail or both agree.
    One case under op (default op_of(cname))."""
    with case(op or op_of(cname)):
        targs = [plain(a) for a in args]
        try:
            ref = tfn(*targs)
        except Exception as e:  # torch raises: ctorch must return NULL
            h = fn(cname)(*[to_ct(a) for a in args], *extra)
            assert not h, f"{cname} succeeded where torch raised {e}"
            assert last_error()
            count(op or op_of(cname), "error")
            return None
        h = fn(cname)(*[to_ct(a) for a in args], *extra)
        assert h, last_error()
        out = from_ct(h)
        assert_same(out, ref, **tol)
        return out


def check_grads(cname, tfn, args, extra=(), rtol=1e-6, atol=1e-9, op=None):
    """Compares gradients of every floating tensor argument (float64) with torch.
    One case under op (default op_of(cname))."""
    with case(op or op_of(cname)):
        targs = [a.detach().clone().requires_grad_(a.is_floating_point() or a.is_complex())
                 if isinstance(a, torch.Tensor) else a for a in args]  # (None stays None: an absent optional tensor)
        ref = tfn(*targs)
        cargs = [to_ct(a, requires_grad=a.requires_grad) if isinstance(a, torch.Tensor) else to_ct(a) for a in targs]
        h = P(fn(cname)(*cargs, *extra))
        assert h.value, last_error()
        assert_same(from_ct(h), ref.detach(), rtol=rtol, atol=atol)
        g = torch.randn(ref.shape, dtype=ref.dtype)
        diff = [a for a in targs if isinstance(a, torch.Tensor) and a.requires_grad]
        tg = torch.autograd.grad(ref, diff, g, allow_unused=True)
        assert L.ct_backward(h, to_ct(g), False, False) == 0, last_error()
        k = 0
        for a, ca in zip(targs, cargs):
            if isinstance(a, torch.Tensor) and a.requires_grad:
                cg = L.ct_grad(ca)
                want = tg[k] if tg[k] is not None else torch.zeros_like(a)
                got = from_ct(cg) if cg else torch.zeros_like(a)
                torch.testing.assert_close(got, want, equal_nan=True, rtol=rtol, atol=atol, msg=f"grad of input {k}")
                k += 1
        count(op or op_of(cname), "grad")


def ew_gradcheck(cname, args, extra=(), second_order=False, op=None):
    """ct_gradcheck (and ct_gradgradcheck) over the float64 tensor args: one case under
    op (default op_of(cname)) for each."""
    op = op or op_of(cname)
    idx = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    f = fn(cname)._f  # the raw function: called from inside ct_gradcheck

    def call(n, inputs, user):
        full = [None] * len(args)
        for j, i in enumerate(idx):
            full[i] = P(inputs[j])
        for i, a in enumerate(args):
            if full[i] is None:
                full[i] = to_ct(a)
        r = f(*full, *extra)
        return r

    cb = GCFN(call)
    with case(op):
        cin = (P * len(idx))(*[to_ct(args[i], requires_grad=True) for i in idx])
        L.ct_clear_error()
        rc = L.ct_gradcheck(cb, len(idx), cin, None, 1e-6, 1e-5, 1e-3)
        assert rc == 1, last_error()
        count(op, "gradcheck")
    if second_order:
        with case(op):
            L.ct_clear_error()
            rc = L.ct_gradgradcheck(cb, len(idx), cin, None, 1e-6, 1e-5, 1e-3)
            assert rc == 1, last_error()
            count(op, "gradgradcheck")


def sample(dtype, shape, nonzero=False, special=True):
    if dtype == torch.bool:
        return torch.rand(shape) > 0.5
    if dtype.is_floating_point:
        t = (torch.randn(shape) * 3).to(dtype)
        if special and t.numel() > 3:
            f = t.view(-1)
            f[0] = float("nan")
            f[1] = 0.0
            f[2] = float("inf")
        if nonzero:
            t = torch.where(t == 0, torch.ones_like(t), t)
        return t
    if dtype.is_complex:
        return torch.randn(shape, dtype=dtype)
    lo, hi = (0, 20) if dtype == torch.uint8 else (-9, 10)
    t = torch.randint(lo, hi, shape, dtype=dtype)
    if nonzero:
        t = torch.where(t == 0, torch.ones_like(t), t)
    return t


# =========================================================================================
# Section B: owned-reference helpers (were at the top of test_linalg.py)
# =========================================================================================
lib = ctypes.CDLL(LIB_PATH)
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
_sig("ct_gradcheck", ctypes.c_int, GCFN, ctypes.c_int, ctypes.POINTER(P), P, ctypes.c_double, ctypes.c_double,
     ctypes.c_double)
_sig("ct_gradgradcheck", ctypes.c_int, GCFN, ctypes.c_int, ctypes.POINTER(P), P, ctypes.c_double, ctypes.c_double,
     ctypes.c_double)

DT_CODE = {torch.bool: 0, torch.uint8: 1, torch.int8: 2, torch.int16: 3, torch.int32: 4, torch.int64: 5,
           torch.float16: 6, torch.bfloat16: 7, torch.float32: 8, torch.float64: 9, torch.complex64: 10,
           torch.complex128: 11}
CODE_DT = {v: k for k, v in DT_CODE.items()}


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
        b = T(lib.ct_from_data(P(base.data_ptr()), nd, sz, DT_CODE[t.dtype]))
        r = T(lib.ct_transpose(b, -1, -2))
        assert not lib.ct_is_contiguous(r) or min(t.shape[-2:]) <= 1
    else:
        c = t.contiguous()
        nd, sz = shape_arg(c.shape)
        r = T(lib.ct_from_data(P(c.data_ptr()), nd, sz, DT_CODE[t.dtype]))
    if requires_grad:
        assert lib.ct_set_requires_grad(r, True) == 0, lib.ct_last_error()
    return r


def to_torch(x, borrowed=False):
    p = x.p if isinstance(x, T) else x
    nd = lib.ct_ndim(p)
    s = lib.ct_sizes(p)
    shape = [s[i] for i in range(nd)]
    dt = CODE_DT[lib.ct_get_dtype(p)]
    out = torch.empty(shape, dtype=dt)
    nbytes = out.numel() * out.element_size()
    assert lib.ct_copy_to_buffer(p, P(out.data_ptr()), nbytes, DT_CODE[dt]) == 0, lib.ct_last_error()
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


@contextlib.contextmanager
def cases(op):
    """case(op), or one case for each op of a tuple (a check that exercises several)."""
    with contextlib.ExitStack() as stack:
        for o in ((op,) if isinstance(op, str) else op):
            stack.enter_context(case(o))
        yield


def check_op(op, ct_fn, torch_fn, inputs, noncontig=False, grad=True, extra=()):
    """One case under op (or each op of a tuple): values (and gradients for float/complex
    inputs) of ct_fn(*ct_inputs, *extra) vs torch_fn(*inputs)."""
    with cases(op):
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


def mat_gradcheck(op, fn, inputs, second=False):
    """One case under op (or each op of a tuple): ctorch's own gradcheck (or
    gradgradcheck if second) at float64 / complex128 inputs; fn(borrowed ptrs) -> T."""
    keep = []

    def cb(n, ptrs, user):
        args = [ptrs[i] for i in range(n)]
        try:
            r = fn(*[P(a) for a in args])
        except CtError:
            return None
        p = lib.ct_retain(r.p)  # hand a new reference to the caller
        return p

    with cases(op):
        cfn = GCFN(cb)
        keep.append(cfn)
        cin = [ct(t, requires_grad=True) for t in inputs]
        arr = (P * len(cin))(*[c.p for c in cin])
        f = lib.ct_gradgradcheck if second else lib.ct_gradcheck
        lib.ct_clear_error()
        rc = f(cfn, len(cin), arr, None, 1e-6, 1e-5, 1e-3)
        assert rc == 1, lib.ct_last_error().decode()
    for o in (op if isinstance(op, tuple) else (op,)):
        count(o, "gradgradcheck" if second else "gradcheck")


def raises(fn, *args, match=None, op=None):
    """One case under op (default op_of(fn)): lib.<fn>(*args) fails with a message
    containing match."""
    with case(op or op_of(fn)):
        with pytest.raises(CtError) as e:
            call(fn, *args)
        if match:
            assert match in str(e.value), str(e.value)
        return str(e.value)
