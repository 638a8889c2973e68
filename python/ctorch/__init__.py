"""ctorch: a thin ctypes binding of libctorch.

The shared library is the one named by the environment variable CTORCH_LIB, else
``build/libctorch.so`` at the root of the source tree this package sits in.

    import ctorch, torch
    x = ctorch.from_torch(torch.randn(3, 4))
    y = ctorch.call("ct_add", x, 2.5)            # Python numbers become wrapped scalars
    mm = ctorch.lib.declare("ct_mm", "T", ["T", "T"])
    s = ctorch.call("ct_sum_dim", y, [1], False, None, sig="T(T,shape,b,dt)")
    y.torch()                                     # back to torch, exact

Ownership: a :class:`Tensor` owns one reference to its ``ct_tensor`` and releases it
when collected. Results of C calls are new references; if a ctorch scope happens to
be open (e.g. inside a gradcheck callback) the scope keeps its own reference and the
Tensor takes an extra one, so a Tensor is always valid until it is collected.

Errors: a NULL result (or a negative status) raises :class:`CtorchError` carrying
``ct_last_error()``; the error record is cleared before every call and after raising.
"""
import ctypes
import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["CtorchError", "Tensor", "lib", "call", "from_torch", "from_numpy", "tensor", "has",
           "no_grad", "DTYPES", "to_ct_dtype", "to_torch_dtype", "unbind", "autograd_grad",
           "live_tensors", "promote_types"]

ROOT = Path(__file__).resolve().parents[2]

# ---- dtypes: enum order of include/ctorch/core.h ----
DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
          torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128]
NUM_DTYPES = len(DTYPES)  # CT_NUM_DTYPES: "default" in dtype arguments
CT_BFLOAT16 = DTYPES.index(torch.bfloat16)
_NUMPY = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, None, np.float32,
          np.float64, np.complex64, np.complex128]


def to_ct_dtype(dt):
    """ct_dtype enum value of a torch dtype, numpy dtype, name ("float32") or int;
    None gives CT_NUM_DTYPES (the C API's "default dtype")."""
    if dt is None:
        return NUM_DTYPES
    if isinstance(dt, torch.dtype):
        return DTYPES.index(dt)
    if isinstance(dt, int):
        return dt
    if isinstance(dt, str):
        return DTYPES.index(getattr(torch, dt))
    return _NUMPY.index(np.dtype(dt).type)


def to_torch_dtype(code):
    return DTYPES[code]


class CtorchError(RuntimeError):
    """A ctorch call failed; ``status`` is the ct_status code."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


# ---- loading ----
def _library_path():
    env = os.environ.get("CTORCH_LIB")
    if env:
        p = Path(env)
        if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
            p = ROOT / p
        return str(p)
    return str(ROOT / "build" / "libctorch.so")


_cdll = ctypes.CDLL(_library_path())
_P = ctypes.c_void_p
_I64P = ctypes.POINTER(ctypes.c_int64)


def _raw(name, restype, *argtypes):
    """A fresh ctypes function object (CDLL[name] is not cached, so declarations made
    elsewhere on the same library, e.g. by other test files, do not interfere)."""
    f = _cdll[name]
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


# The functions the binding itself needs (plain ctypes, no conversions).
_last_error = _raw("ct_last_error", ctypes.c_char_p)
_last_status = _raw("ct_last_status", ctypes.c_int)
_clear_error = _raw("ct_clear_error", None)
_retain = _raw("ct_retain", _P, _P)
_release = _raw("ct_release", None, _P)
_scope_depth = _raw("ct_scope_depth", ctypes.c_int)
_ndim = _raw("ct_ndim", ctypes.c_int, _P)
_sizes = _raw("ct_sizes", _I64P, _P)
_strides = _raw("ct_strides", _I64P, _P)
_numel = _raw("ct_numel", ctypes.c_int64, _P)
_storage_offset = _raw("ct_storage_offset", ctypes.c_int64, _P)
_get_dtype = _raw("ct_get_dtype", ctypes.c_int, _P)
_from_data = _raw("ct_from_data", _P, _P, ctypes.c_int, _I64P, ctypes.c_int)
_copy_to_buffer = _raw("ct_copy_to_buffer", ctypes.c_int, _P, _P, ctypes.c_size_t, ctypes.c_int)
_as_strided = _raw("ct_as_strided", _P, _P, ctypes.c_int, _I64P, _I64P, ctypes.c_int64)
_set_requires_grad = _raw("ct_set_requires_grad", ctypes.c_int, _P, ctypes.c_bool)
_set_grad_enabled = _raw("ct_set_grad_enabled", ctypes.c_bool, ctypes.c_bool)
_wrap_float = _raw("ct_float", _P, ctypes.c_double)
_wrap_int = _raw("ct_int", _P, ctypes.c_int64)
_wrap_bool = _raw("ct_bool", _P, ctypes.c_bool)
_wrap_complex = _raw("ct_complex", _P, ctypes.c_double, ctypes.c_double)


def _error(status=None):
    msg = (_last_error() or b"").decode(errors="replace")
    st = _last_status() if status is None else status
    _clear_error()
    return CtorchError(msg or f"ctorch call failed (status {st})", st)


def _int64s(seq):
    seq = [int(s) for s in seq]
    return (ctypes.c_int64 * max(1, len(seq)))(*seq)


# ---- tensors ----
class Tensor:
    """Owns one reference to a ct_tensor. Build with from_torch / from_numpy / tensor, or
    get one from a C call."""

    __slots__ = ("_p", "__weakref__")

    def __init__(self, ptr):
        """Takes over a NEW reference returned by a C call (raises CtorchError if NULL)."""
        if not ptr:
            raise _error()
        if _scope_depth() > 0:  # the open scope owns the returned reference: take our own
            ptr = _retain(ptr)
        self._p = ptr

    @classmethod
    def borrowed(cls, ptr):
        """Wraps a borrowed pointer (e.g. ct_grad's) by adding a reference; None if NULL."""
        if not ptr:
            return None
        t = cls.__new__(cls)
        t._p = _retain(ptr)
        return t

    def __del__(self):
        p, self._p = getattr(self, "_p", None), None
        if p and _release is not None:
            _release(p)

    @property
    def _as_parameter_(self):  # lets a Tensor be passed straight to ctypes functions
        return _P(self._p)

    @property
    def ptr(self):
        return self._p

    # -- properties --
    @property
    def ndim(self):
        return _ndim(self._p)

    def dim(self):
        return self.ndim

    @property
    def shape(self):
        s = _sizes(self._p)
        return torch.Size([s[i] for i in range(self.ndim)])

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def stride(self, dim=None):
        s = _strides(self._p)
        st = tuple(s[i] for i in range(self.ndim))
        return st if dim is None else st[dim]

    def numel(self):
        return _numel(self._p)

    def storage_offset(self):
        return _storage_offset(self._p)

    @property
    def ct_dtype(self):
        return _get_dtype(self._p)

    @property
    def dtype(self):
        return DTYPES[self.ct_dtype]

    def is_contiguous(self):
        return bool(lib.ct_is_contiguous(self))

    def shares_storage(self, other):
        return bool(lib.ct_shares_storage(self, other))

    def data_ptr(self):
        return lib.ct_data_ptr(self) or 0

    # -- autograd --
    @property
    def requires_grad(self):
        return bool(lib.ct_requires_grad(self))

    def requires_grad_(self, requires_grad=True):
        lib.ct_set_requires_grad(self, requires_grad)
        return self

    @property
    def is_leaf(self):
        return bool(lib.ct_is_leaf(self))

    @property
    def grad(self):
        return lib.ct_grad(self)

    @grad.setter
    def grad(self, g):
        lib.ct_set_grad(self, g)

    @property
    def grad_fn_name(self):
        return lib.ct_grad_fn_name(self)

    def retain_grad(self):
        lib.ct_retain_grad(self)

    def backward(self, grad=None, retain_graph=False, create_graph=False):
        lib.ct_backward(self, grad, retain_graph, create_graph)

    def detach(self):
        return lib.ct_detach(self)

    # -- conversions --
    def contiguous(self):
        return lib.ct_contiguous(self)

    def clone(self):
        return lib.ct_clone(self)

    def to(self, dtype):
        return lib.ct_to_dtype(self, dtype)

    def item(self):
        return self.torch().item()

    def torch(self):
        """A new torch tensor (contiguous) with exactly the same values and dtype."""
        out = torch.empty(tuple(self.shape), dtype=self.dtype)
        if out.numel():
            rc = _copy_to_buffer(self._p, _P(out.data_ptr()), out.numel() * out.element_size(), self.ct_dtype)
            if rc < 0:
                raise _error(rc)
        return out

    def numpy(self):
        """A numpy copy; bfloat16 (which numpy lacks) comes back exactly as float32."""
        if self.ct_dtype == CT_BFLOAT16:
            return self.torch().float().numpy()
        return self.torch().numpy()

    def tolist(self):
        return self.torch().tolist()

    def __repr__(self):
        if not has("ct_to_string"):
            return f"ctorch.Tensor(shape={list(self.shape)}, dtype={self.dtype})"
        s = _to_string(self._p)
        if not s:
            raise _error()
        try:
            return ctypes.string_at(s).decode()
        finally:
            _free_string(s)

    def __bool__(self):  # as torch: only a one-element tensor has a truth value
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} elements is ambiguous")
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # -- a few operators, for convenience (need the op to exist in the library) --
    def __add__(self, o): return call("ct_add", self, o)
    def __radd__(self, o): return call("ct_add", o, self)
    def __sub__(self, o): return call("ct_sub", self, o)
    def __rsub__(self, o): return call("ct_sub", o, self)
    def __mul__(self, o): return call("ct_mul", self, o)
    def __rmul__(self, o): return call("ct_mul", o, self)
    def __truediv__(self, o): return call("ct_div", self, o)
    def __rtruediv__(self, o): return call("ct_div", o, self)
    def __pow__(self, o): return call("ct_pow", self, o)
    def __matmul__(self, o): return call("ct_matmul", self, o)
    def __neg__(self): return call("ct_neg", self)


def _from_contiguous(t):
    """ctorch copy of a contiguous torch tensor (any dtype, 0-dim and empty included)."""
    keep = t.contiguous()
    return Tensor(_from_data(_P(keep.data_ptr()) if keep.numel() else None, keep.dim(),
                             _int64s(keep.shape), DTYPES.index(keep.dtype)))


def from_torch(t, requires_grad=None):
    """ctorch copy of torch tensor t with the SAME layout: a non-contiguous t (transposed,
    sliced with a step, expanded, offset) becomes an as_strided view of a contiguous
    copy of the storage span t covers. requires_grad (default: t.requires_grad) makes
    the result a leaf that requires grad."""
    if requires_grad is None:
        requires_grad = t.requires_grad
    t = t.detach().resolve_conj().resolve_neg()
    if t.is_contiguous() or t.numel() == 0:
        r = _from_contiguous(t)
    else:
        extent = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
        span = t.as_strided((extent,), (1,), t.storage_offset())
        base = _from_contiguous(span)
        prev = _set_grad_enabled(False)
        try:
            r = Tensor(_as_strided(base._p, t.dim(), _int64s(t.shape), _int64s(t.stride()), 0))
        finally:
            _set_grad_enabled(prev)
    if requires_grad:
        rc = _set_requires_grad(r._p, True)
        if rc < 0:
            raise _error(rc)
    return r


def from_numpy(a, requires_grad=False):
    """ctorch copy of a numpy array (C-contiguous copy; values and dtype as given)."""
    a = np.ascontiguousarray(a)
    return from_torch(torch.from_numpy(a), requires_grad=requires_grad)


def tensor(data, dtype=None, requires_grad=False):
    """Like torch.tensor(data, dtype=dtype), as a ctorch tensor."""
    return from_torch(torch.tensor(data, dtype=dtype), requires_grad=requires_grad)


def wrap_number(v):
    """A Python number as a ctorch wrapped number (ct_bool / ct_int / ct_float / ct_complex)."""
    if isinstance(v, (bool, np.bool_)):
        return Tensor(_wrap_bool(bool(v)))
    if isinstance(v, (int, np.integer)):
        return Tensor(_wrap_int(int(v)))
    if isinstance(v, (float, np.floating)):
        return Tensor(_wrap_float(float(v)))
    if isinstance(v, (complex, np.complexfloating)):
        return Tensor(_wrap_complex(v.real, v.imag))
    raise TypeError(f"cannot pass {type(v).__name__} as a ctorch tensor")


def as_tensor(v):
    """Tensor argument conversion: Tensor as is, torch / numpy arrays copied (layout kept),
    Python numbers wrapped, None stays None (a NULL argument)."""
    if v is None or isinstance(v, Tensor):
        return v
    if isinstance(v, torch.Tensor):
        return from_torch(v, requires_grad=False)
    if isinstance(v, np.ndarray):
        return from_numpy(v)
    return wrap_number(v)


# ---- declaring C functions: a small signature language ----
# Argument codes (one Python argument each, except out-parameters which take none):
#   T      const ct_tensor*   Tensor, torch/numpy array, Python number (wrapped) or None
#   Tn     int n, const ct_tensor *const *   a list of tensor-likes
#   shape  int ndim, const int64_t *         a sequence of ints (also dim lists)
#   dims   int ndim, const int *             a sequence of ints (permute)
#   i64[]  const int64_t *                   a sequence of ints
#   i i64 d b   int, int64_t, double, bool;  s  const char* (str or None)
#   dt     ct_dtype (torch/numpy dtype, name, int; None = CT_NUM_DTYPES);  p  void*
#   T*     ct_tensor ** out-parameter: no Python argument, its tensor (or None) is
#          returned after the result: (result, out1, ...)
# Result codes: T (new reference; NULL raises), T& (borrowed: retained, NULL -> None),
#   st (int status: negative raises, else returned), i i64 d b p, s (const char* -> str
#   or None), v (void); for these plain codes an error recorded by the call raises.
#   A ctypes type may stand for any code: passed through as is, with no error check.
_SIMPLE = {"i": ctypes.c_int, "i64": ctypes.c_int64, "d": ctypes.c_double, "b": ctypes.c_bool,
           "p": _P, "dt": ctypes.c_int, "s": ctypes.c_char_p}


def _parse_sig(sig):
    """'T(T,shape,dt)' -> ('T', ['T', 'shape', 'dt'])."""
    ret, _, rest = sig.replace(" ", "").partition("(")
    rest = rest.rstrip(")")
    return ret, [a for a in rest.split(",") if a]


class CFunction:
    """A declared C function: converts Python arguments by the signature codes, checks
    errors, wraps tensors."""

    def __init__(self, name, restype, argtypes):
        self.name = name
        self.restype, self.argtypes = restype, list(argtypes)
        c_args = []
        for a in self.argtypes:
            if not isinstance(a, str):
                c_args.append(a)
            elif a in ("T", "p"):
                c_args.append(_P)
            elif a == "T*":
                c_args.append(ctypes.POINTER(_P))
            elif a in ("Tn",):
                c_args += [ctypes.c_int, ctypes.POINTER(_P)]
            elif a == "shape":
                c_args += [ctypes.c_int, _I64P]
            elif a == "dims":
                c_args += [ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            elif a == "i64[]":
                c_args.append(_I64P)
            elif a in _SIMPLE:
                c_args.append(_SIMPLE[a])
            else:
                raise ValueError(f"{name}: unknown argument code {a!r}")
        if not isinstance(restype, str):
            res = restype  # a ctypes type (or None for void)
        elif restype in ("T", "T&", "st", "v"):
            res = {"T": _P, "T&": _P, "st": ctypes.c_int, "v": None}[restype]
        elif restype in _SIMPLE:
            res = _SIMPLE[restype]
        else:
            raise ValueError(f"{name}: unknown result code {restype!r}")
        self._f = _raw(name, res, *c_args)
        self.n_py_args = sum(1 for a in self.argtypes if a != "T*")

    def __repr__(self):
        return f"<ctorch C function {self.restype}({', '.join(map(str, self.argtypes))}) {self.name}>"

    def __call__(self, *args):
        if len(args) != self.n_py_args:
            raise TypeError(f"{self.name} takes {self.n_py_args} arguments ({self}), got {len(args)}")
        keep, c_args, outs = [], [], []
        it = iter(args)
        for code in self.argtypes:
            if code == "T*":
                o = _P()
                outs.append(o)
                c_args.append(ctypes.byref(o))
                continue
            v = next(it)
            if not isinstance(code, str):
                c_args.append(v)
            elif code == "T":
                t = as_tensor(v)
                keep.append(t)
                c_args.append(t._p if t is not None else None)
            elif code == "Tn":
                ts = [as_tensor(x) for x in v]
                keep.append(ts)
                c_args += [len(ts), (_P * max(1, len(ts)))(*[t._p if t is not None else None for t in ts])]
            elif code == "shape":
                c_args += [len(v), _int64s(v)]
            elif code == "dims":
                c_args += [len(v), (ctypes.c_int * max(1, len(v)))(*[int(d) for d in v])]
            elif code == "i64[]":
                c_args.append(_int64s(v))
            elif code == "dt":
                c_args.append(to_ct_dtype(v))
            elif code == "s":
                c_args.append(None if v is None else v.encode())
            else:
                c_args.append(v)
        inspect = self.name in _ERROR_API
        if not inspect:
            _clear_error()
        r = self._f(*c_args)
        out_tensors = [Tensor(o.value) if o.value else None for o in outs]  # owned even if r failed
        ret = self.restype
        if ret == "T":
            r = Tensor(r)  # raises on NULL
        elif ret == "st":
            if r < 0:
                raise _error(r)
        elif isinstance(ret, str) and not inspect and _last_status() != 0:
            # plain values (ct_item's NAN, ct_size's -1, ...) signal failure through the record;
            # a ctypes restype means "raw": the caller reads the record itself
            raise _error()
        elif ret == "T&":
            r = Tensor.borrowed(r)
        elif ret == "s" and r is not None:
            r = r.decode()
        return (r, *out_tensors) if outs else r


_ERROR_API = {"ct_last_error", "ct_last_status", "ct_clear_error", "ct_status_str", "ct_set_error_handler"}


class Library:
    """The loaded libctorch: ``lib.declare(name, restype, argtypes)`` gives a callable
    CFunction; declared functions are also attributes (``lib.ct_zeros``)."""

    def __init__(self, cdll):
        self.cdll = cdll
        self._fns = {}

    def has(self, name):
        return hasattr(self.cdll, name)

    def declare(self, name, restype, argtypes=None):
        """restype/argtypes are signature codes (see above) or ctypes types; restype may
        also be a whole signature string 'T(T,T)' with argtypes omitted."""
        if argtypes is None:
            restype, argtypes = _parse_sig(restype)
        f = CFunction(name, restype, argtypes)
        self._fns[name] = f
        return f

    def unary(self, name):
        """ct_tensor *name(const ct_tensor *)"""
        return self.declare(name, "T", ["T"])

    def binary(self, name):
        """ct_tensor *name(const ct_tensor *, const ct_tensor *)"""
        return self.declare(name, "T", ["T", "T"])

    def fn(self, name):
        return self._fns[name]

    def __getattr__(self, name):
        fns = self.__dict__.get("_fns", {})
        if name in fns:
            return fns[name]
        raise AttributeError(f"{name} is not declared; use ctorch.lib.declare({name!r}, restype, argtypes)")


lib = Library(_cdll)


def has(name):
    """True if the library exports this symbol."""
    return lib.has(name)


def call(name, *args, sig=None):
    """Calls C function `name`. sig: a signature string such as 'T(T,shape,dt)'; without
    it the function's declaration is used, or, if it was never declared, every argument
    is a tensor and the result a tensor (ct_add(t, 2.5) works)."""
    if sig is not None:
        f = lib._fns.get(name)
        ret, argtypes = _parse_sig(sig)
        if f is None or f.restype != ret or f.argtypes != argtypes:
            f = lib.declare(name, ret, argtypes)
    elif name in lib._fns:
        f = lib._fns[name]
    else:
        f = CFunction(name, "T", ["T"] * len(args))
    return f(*args)


# Declarations of the core API (core.h, tensor.h, autograd.h) present in the library.
_CORE = """
s ct_version()
s ct_dtype_name(dt)
i64 ct_dtype_size(dt)
b ct_dtype_is_floating(dt)
b ct_dtype_is_complex(dt)
b ct_dtype_is_integral(dt,b)
i ct_promote_types(dt,dt)
i ct_get_default_dtype()
st ct_set_default_dtype(dt)
s ct_last_error()
i ct_last_status()
v ct_clear_error()
s ct_status_str(i)
st ct_scope_begin()
st ct_scope_end()
i ct_scope_depth()
v ct_set_num_threads(i)
i ct_get_num_threads()
i64 ct_memory_allocated()
i64 ct_memory_peak()
v ct_memory_reset_peak()
i64 ct_memory_cached()
v ct_empty_cache()
i64 ct_live_tensors()
i ct_ndim(T)
i64 ct_size(T,i)
i64 ct_stride(T,i)
i64 ct_numel(T)
i64 ct_storage_offset(T)
i ct_get_dtype(T)
b ct_is_contiguous(T)
p ct_data_ptr(T)
b ct_shares_storage(T,T)
i64 ct_version_counter(T)
T ct_empty(shape,dt)
T ct_empty_strided(shape,i64[],dt)
T ct_zeros(shape,dt)
T ct_ones(shape,dt)
T ct_full(shape,d,dt)
T ct_empty_like(T)
T ct_zeros_like(T)
T ct_ones_like(T)
T ct_full_like(T,d)
T ct_scalar_tensor(d,dt)
T ct_float(d)
T ct_int(i64)
T ct_bool(b)
T ct_complex(d,d)
T ct_arange(d,d,d,dt)
T ct_linspace(d,d,i64,dt)
T ct_logspace(d,d,i64,d,dt)
T ct_eye(i64,i64,dt)
d ct_item(T)
d ct_get(T,i64[])
T ct_to_dtype(T,dt)
T ct_clone(T)
T ct_contiguous(T)
st ct_copy_(T,T)
st ct_fill_(T,d)
st ct_zero_(T)
T ct_view(T,shape)
T ct_reshape(T,shape)
T ct_as_strided(T,shape,i64[],i64)
T ct_permute(T,dims)
T ct_transpose(T,i,i)
T ct_t(T)
T ct_expand(T,shape)
T ct_expand_as(T,T)
T ct_narrow(T,i,i64,i64)
T ct_select(T,i,i64)
T ct_slice(T,i,i64,i64,i64)
T ct_squeeze(T)
T ct_squeeze_dim(T,i)
T ct_unsqueeze(T,i)
T ct_flatten(T,i,i)
T ct_unflatten(T,i,shape)
T ct_diagonal(T,i64,i,i)
T ct_movedim(T,i,i)
T ct_view_as_real(T)
T ct_view_as_complex(T)
st ct_print(T)
st ct_set_requires_grad(T,b)
b ct_requires_grad(T)
b ct_is_leaf(T)
T& ct_grad(T)
st ct_set_grad(T,T)
s ct_grad_fn_name(T)
st ct_retain_grad(T)
T ct_detach(T)
st ct_detach_(T)
st ct_backward(T,T,b,b)
b ct_is_grad_enabled()
b ct_set_grad_enabled(b)
"""
for _line in _CORE.strip().splitlines():
    _ret, _, _rest = _line.partition(" ")
    _name, _, _args = _rest.partition("(")
    if lib.has(_name):
        lib.declare(_name, _ret, [a for a in _args.rstrip(")").split(",") if a])

if lib.has("ct_to_string"):
    _to_string = _raw("ct_to_string", _P, _P)
    _free_string = _raw("ct_free_string", None, _P)


def unbind(t, dim=0):
    """ct_unbind: a list of views."""
    t = as_tensor(t)
    n = t.shape[dim] if t.ndim else 0
    arr = (_P * max(1, n))()
    f = _raw("ct_unbind", ctypes.c_int64, _P, ctypes.c_int, ctypes.POINTER(_P), ctypes.c_int64)
    _clear_error()
    got = f(t._p, dim, arr, n)
    if got < 0:
        raise _error()
    return [Tensor(arr[i]) for i in range(got)]


def autograd_grad(outputs, inputs, grad_outputs=None, retain_graph=False, create_graph=False,
                  allow_unused=False):
    """ct_autograd_grad (torch.autograd.grad): a list of gradients (None where unused)."""
    outputs, inputs = [as_tensor(o) for o in outputs], [as_tensor(i) for i in inputs]
    gos = None if grad_outputs is None else [as_tensor(g) for g in grad_outputs]
    f = _raw("ct_autograd_grad", ctypes.c_int, ctypes.c_int, ctypes.POINTER(_P), ctypes.POINTER(_P),
             ctypes.c_int, ctypes.POINTER(_P), ctypes.POINTER(_P), ctypes.c_bool, ctypes.c_bool, ctypes.c_bool)
    o_arr = (_P * len(outputs))(*[o._p for o in outputs])
    g_arr = None if gos is None else (_P * len(gos))(*[g._p if g is not None else None for g in gos])
    i_arr = (_P * len(inputs))(*[i._p for i in inputs])
    res = (_P * len(inputs))()
    _clear_error()
    rc = f(len(outputs), o_arr, g_arr, len(inputs), i_arr, res, retain_graph, create_graph, allow_unused)
    if rc < 0:
        raise _error(rc)
    return [Tensor(res[i]) if res[i] else None for i in range(len(inputs))]


class no_grad:
    """Context manager: ctorch grad mode off (thread-local, like torch.no_grad)."""

    def __enter__(self):
        self._prev = _set_grad_enabled(False)

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)


def live_tensors():
    return lib.ct_live_tensors()


def promote_types(a, b):
    return DTYPES[lib.ct_promote_types(a, b)]


# ---- dicts and modules (dict.h, module.h) ----
__all__ += ["Dict", "Module", "module"]


class Dict:
    """Owns a ct_dict (ordered name -> tensor, plus string metadata)."""

    def __init__(self, ptr=None):
        if ptr is None:
            ptr = _raw("ct_dict_new", _P)()
        if not ptr:
            raise _error()
        self._p = ptr

    def __del__(self):
        p, self._p = getattr(self, "_p", None), None
        if p and _raw is not None:
            _raw("ct_dict_free", None, _P)(p)

    @property
    def _as_parameter_(self):
        return self._p

    @classmethod
    def from_torch(cls, tensors, meta=None):
        """A ct_dict holding copies of a {name: torch.Tensor} mapping (in its order)."""
        d = cls()
        for k, v in tensors.items():
            t = from_torch(v.detach() if isinstance(v, torch.Tensor) else v)
            if _raw("ct_dict_set", ctypes.c_int, _P, ctypes.c_char_p, _P)(d._p, k.encode(), t._p) < 0:
                raise _error()
        for k, v in (meta or {}).items():
            if _raw("ct_dict_set_meta", ctypes.c_int, _P, ctypes.c_char_p, ctypes.c_char_p)(d._p, k.encode(),
                                                                                            v.encode()) < 0:
                raise _error()
        return d

    def __len__(self):
        return _raw("ct_dict_size", ctypes.c_int64, _P)(self._p)

    def keys(self):
        f = _raw("ct_dict_key", ctypes.c_char_p, _P, ctypes.c_int64)
        return [f(self._p, i).decode() for i in range(len(self))]

    def __getitem__(self, key):
        _clear_error()
        return Tensor(_raw("ct_dict_get", _P, _P, ctypes.c_char_p)(self._p, key.encode()))

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def meta(self):
        n = _raw("ct_dict_meta_size", ctypes.c_int64, _P)(self._p)
        fk = _raw("ct_dict_meta_key", ctypes.c_char_p, _P, ctypes.c_int64)
        fv = _raw("ct_dict_meta_value", ctypes.c_char_p, _P, ctypes.c_int64)
        return {fk(self._p, i).decode(): fv(self._p, i).decode() for i in range(n)}

    def torch(self):
        """{name: torch.Tensor} copies, in order."""
        return {k: v.torch() for k, v in self.items()}


class Module:
    """Owns one reference to a ct_module."""

    def __init__(self, ptr):
        if not ptr:
            raise _error()
        self._p = ptr

    def __del__(self):
        p, self._p = getattr(self, "_p", None), None
        if p and _raw is not None:
            _raw("ct_module_free", None, _P)(p)

    @property
    def _as_parameter_(self):
        return self._p

    def __call__(self, x):
        _clear_error()
        t = as_tensor(x)  # keep the wrapper (and its tensor) alive across the call
        return Tensor(_raw("ct_module_forward", _P, _P, _P)(self._p, t._p))

    def take(self):
        """Gives up this object's reference (for C calls that take modules over)."""
        p, self._p = self._p, None
        return p

    def _dict(self, fname):
        _clear_error()
        return Dict(_raw(fname, _P, _P)(self._p))

    def state_dict(self):
        return self._dict("ct_module_state_dict")

    def named_parameters(self):
        return self._dict("ct_module_named_parameters")

    def named_buffers(self):
        return self._dict("ct_module_named_buffers")

    def load_state_dict(self, sd, strict=True):
        """sd: a Dict or a {name: torch.Tensor} mapping. Raises CtorchError on failure."""
        d = sd if isinstance(sd, Dict) else Dict.from_torch(sd)
        _clear_error()
        rc = _raw("ct_module_load_state_dict", ctypes.c_int, _P, _P, ctypes.c_bool, _P)(self._p, d._p, strict, None)
        if rc < 0:
            raise _error(rc)

    def train(self, mode=True):
        _raw("ct_module_train", ctypes.c_int, _P, ctypes.c_bool)(self._p, mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        _raw("ct_module_zero_grad", ctypes.c_int, _P, ctypes.c_bool)(self._p, set_to_none)

    def to(self, dtype):
        if _raw("ct_module_to_dtype", ctypes.c_int, _P, ctypes.c_int)(self._p, to_ct_dtype(dtype)) < 0:
            raise _error()
        return self

    def num_parameters(self, trainable_only=False):
        return _raw("ct_module_num_parameters", ctypes.c_int64, _P, ctypes.c_bool)(self._p, trainable_only)

    def __repr__(self):
        f = _raw("ct_module_repr", ctypes.c_void_p, _P)
        p = f(self._p)
        if not p:
            raise _error()
        s = ctypes.string_at(p).decode()
        _libc_free(p)
        return s

    def summary(self, shape, dtype=torch.float32):
        f = _raw("ct_module_summary", ctypes.c_void_p, _P, ctypes.c_int, _I64P, ctypes.c_int)
        _clear_error()
        p = f(self._p, len(shape), _int64s(shape), to_ct_dtype(dtype))
        if not p:
            raise _error()
        s = ctypes.string_at(p).decode()
        _libc_free(p)
        return s


_libc_free = ctypes.CDLL(None).free
_libc_free.argtypes = [ctypes.c_void_p]


def module(ctor, *args):
    """Calls a module constructor (e.g. module("ct_nn_linear_new", (ctypes.c_int64, 4), ...)) —
    or, simpler, with plain Python values: ints -> int64, floats -> double, bools -> bool,
    str -> char*, None -> NULL pointer; pass (ctypes_type, value) to force a type."""
    types, vals = [], []
    for a in args:
        if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], type):
            types.append(a[0]); vals.append(a[1])
        elif isinstance(a, bool):
            types.append(ctypes.c_bool); vals.append(a)
        elif isinstance(a, int):
            types.append(ctypes.c_int64); vals.append(a)
        elif isinstance(a, float):
            types.append(ctypes.c_double); vals.append(a)
        elif isinstance(a, str):
            types.append(ctypes.c_char_p); vals.append(a.encode())
        elif a is None:
            types.append(_P); vals.append(None)
        elif isinstance(a, (Module, Tensor, Dict)):
            types.append(_P); vals.append(a._p)
        else:
            types.append(type(a)); vals.append(a)
    _clear_error()
    return Module(_raw(ctor, _P, *types)(*vals))
