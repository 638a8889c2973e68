"""Core conformance against PyTorch: creation, views (storage sharing, strides), contiguous,
dtype properties and promotion, result types with wrapped scalars and 0-dim tensors,
dtype conversion, autograd basics, scopes and errors; plus self-tests showing the
harness detects wrong values, dtypes, gradients and missing errors."""
import ctypes
import gc
import math
import re
import warnings

import pytest
import torch

import ctorch
import harness
from harness import (ALL_DTYPES, FLOATING, INTEGRAL, case, check, check_error, describe, gradcheck, gradgradcheck,
                     make, need, samples)

L = ctorch.lib
INT64_MAX = 2 ** 63 - 1


def dt_id(d):
    return str(d).replace("torch.", "")


# ----------------------------------------------------------------- dtype properties
@pytest.mark.parametrize("dt", ALL_DTYPES, ids=dt_id)
def test_dtype_properties(dt):
    with case("dtype_properties"):
        assert L.ct_dtype_name(dt) == dt_id(dt)
        assert L.ct_dtype_size(dt) == torch.empty((), dtype=dt).element_size()
        assert L.ct_dtype_is_floating(dt) == dt.is_floating_point
        assert L.ct_dtype_is_complex(dt) == dt.is_complex
        integral = not dt.is_floating_point and not dt.is_complex
        assert L.ct_dtype_is_integral(dt, True) == integral
        assert L.ct_dtype_is_integral(dt, False) == (integral and dt != torch.bool)


@pytest.mark.parametrize("a", ALL_DTYPES, ids=dt_id)
def test_promote_types(a):
    for b in ALL_DTYPES:
        with case("promote_types"):
            got = ctorch.promote_types(a, b)
            assert got == torch.promote_types(a, b), f"promote_types({a}, {b}) = {got}, torch {torch.promote_types(a, b)}"


def test_default_dtype():
    with case("default_dtype"):
        assert ctorch.DTYPES[L.ct_get_default_dtype()] == torch.get_default_dtype() == torch.float32
        with pytest.raises(ctorch.CtorchError):
            L.ct_set_default_dtype(torch.int32)
        prev = torch.get_default_dtype()
        try:
            L.ct_set_default_dtype(torch.float64)
            torch.set_default_dtype(torch.float64)
            for ct_fn, t_fn in [(lambda: L.ct_arange(0, 2.5, 0.5, None), lambda: torch.arange(0, 2.5, 0.5)),
                                (lambda: L.ct_linspace(0, 1, 5, None), lambda: torch.linspace(0, 1, 5)),
                                (lambda: L.ct_zeros((2,), L.ct_get_default_dtype()), lambda: torch.zeros(2))]:
                harness.assert_same(ct_fn(), t_fn())
            if ctorch.has("ct_add"):  # int tensor + Python float -> default dtype
                harness.assert_same(ctorch.call("ct_add", torch.arange(3), 2.5), torch.arange(3) + 2.5)
        finally:
            L.ct_set_default_dtype(prev)
            torch.set_default_dtype(prev)


# ----------------------------------------------------------------- creation
SHAPES = [(), (0,), (3,), (2, 3), (2, 0, 3)]


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=dt_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_zeros_ones_full_empty(shape, dt):
    check("zeros", lambda: L.ct_zeros(shape, dt), lambda: torch.zeros(shape, dtype=dt), [])
    check("ones", lambda: L.ct_ones(shape, dt), lambda: torch.ones(shape, dtype=dt), [])
    value = 1.0 if dt == torch.bool else (7.0 if dt == torch.uint8 else -2.5)
    check("full", lambda: L.ct_full(shape, value, dt), lambda: torch.full(shape, value, dtype=dt), [])
    with case("empty"):
        e = L.ct_empty(shape, dt)
        assert e.shape == torch.Size(shape) and e.dtype == dt and e.is_contiguous()
        assert e.stride() == torch.empty(shape, dtype=dt).stride()
    with case("scalar_tensor"):
        harness.assert_same(L.ct_scalar_tensor(value, dt), torch.scalar_tensor(value, dtype=dt))


@pytest.mark.parametrize("shape,strides", [((2, 3), (1, 2)), ((2, 3), (4, 1)), ((3,), (0,)), ((), ()), ((0, 2), (1, 1))],
                         ids=str)
def test_empty_strided(shape, strides):
    with case("empty_strided"):
        e = L.ct_empty_strided(shape, strides, torch.float32)
        w = torch.empty_strided(shape, strides)
        assert e.shape == w.shape and e.stride() == w.stride() and e.dtype == w.dtype
        assert e.is_contiguous() == w.is_contiguous()


def test_sizes_strides():
    x = make((2, 3, 4), torch.float32, "transposed")
    c = ctorch.from_torch(x)
    with case("size"):
        assert c.shape == x.shape and c.stride() == x.stride() and c.numel() == x.numel() and c.ndim == x.dim()
        assert [L.ct_size(c, d) for d in range(-3, 3)] == [x.size(d) for d in range(-3, 3)]
        assert [L.ct_stride(c, d) for d in range(-3, 3)] == [x.stride(d) for d in range(-3, 3)]
    for d in (3, -4):
        check_error("size", lambda t: L.ct_size(t, d), lambda t: t.size(d), [x], names=["size", "dim"])
        check_error("stride", lambda t: L.ct_stride(t, d), lambda t: t.stride(d), [x], names=["stride", "dim"])


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "expanded"])
@pytest.mark.parametrize("dt", [torch.bool, torch.int32, torch.float16, torch.bfloat16, torch.float32,
                                torch.complex128], ids=dt_id)
def test_like(dt, layout):
    x = make((3, 4), dt, layout)
    check("zeros_like", L.ct_zeros_like, torch.zeros_like, [x], grad=False)
    check("ones_like", L.ct_ones_like, torch.ones_like, [x], grad=False)
    check("full_like", lambda c: L.ct_full_like(c, 1.0), lambda t: torch.full_like(t, 1.0), [x], grad=False)
    with case("empty_like"):
        e = L.ct_empty_like(ctorch.from_torch(x))
        assert e.shape == x.shape and e.dtype == dt


ARANGE = [(0, 10, 1, None), (0, 5, 0.5, None), (1, 2.5, 0.3, torch.float64), (10, 0, -1.5, torch.float32),
          (0, 10, 3, torch.int32), (-3, 3, 1, torch.int8), (0, 1, 0.1, torch.float32), (0, 0, 1, None),
          (2, 7, 2, torch.float16), (0, 4, 1, torch.bfloat16), (-5, 5, 2, torch.complex64), (0.5, 3, 1, None)]


@pytest.mark.parametrize("start,end,step,dt", ARANGE, ids=str)
def test_arange(start, end, step, dt):
    check("arange", lambda: L.ct_arange(start, end, step, dt), lambda: torch.arange(start, end, step, dtype=dt), [])


@pytest.mark.parametrize("start,end,step,dt", [(0, 5, 0, None), (0, 5, -1, None), (5, 0, 1, None),
                                               (0, math.inf, 1, None), (0, 3, 1, torch.bool)], ids=str)
def test_arange_errors(start, end, step, dt):
    check_error("arange", lambda: L.ct_arange(start, end, step, dt), lambda: torch.arange(start, end, step, dtype=dt), [])


LINSPACE = [(0, 1, 5, None), (-2, 3, 1, None), (0, 1, 0, torch.float64), (1, 10, 100, torch.float32),
            (0, 10, 5, torch.int64), (-3, 9, 7, torch.int32), (3, -3, 4, torch.float64), (0, 1, 3, torch.bfloat16),
            (0, 1, 11, torch.float16), (0, 2, 5, torch.complex64)]


@pytest.mark.parametrize("start,end,steps,dt", LINSPACE, ids=str)
def test_linspace(start, end, steps, dt):
    check("linspace", lambda: L.ct_linspace(start, end, steps, dt), lambda: torch.linspace(start, end, steps, dtype=dt),
          [])


@pytest.mark.parametrize("start,end,steps,dt", LINSPACE, ids=str)
def test_logspace(start, end, steps, dt):
    for base in (10.0, 2.0):
        check("logspace", lambda: L.ct_logspace(start, end, steps, base, dt),
              lambda: torch.logspace(start, end, steps, base, dtype=dt), [])


def test_linspace_errors():
    check_error("linspace", lambda: L.ct_linspace(0, 1, -1, None), lambda: torch.linspace(0, 1, -1), [])
    check_error("logspace", lambda: L.ct_logspace(0, 1, -1, 10.0, None), lambda: torch.logspace(0, 1, -1), [])


@pytest.mark.parametrize("n,m,dt", [(3, 3, None), (2, 4, torch.float64), (4, 2, torch.int64), (0, 3, None),
                                    (3, 0, torch.bool), (1, 1, torch.complex64), (5, 5, torch.bfloat16)], ids=str)
def test_eye(n, m, dt):
    check("eye", lambda: L.ct_eye(n, m, dt), lambda: torch.eye(n, m, dtype=dt), [])


def test_eye_errors():
    check_error("eye", lambda: L.ct_eye(-1, 2, None), lambda: torch.eye(-1, 2), [])


def special_values(dt):
    """Values that stress a dtype: extremes, -0.0, inf, nan, subnormals."""
    if dt == torch.bool:
        return torch.tensor([True, False, True])
    if not (dt.is_floating_point or dt.is_complex):
        info = torch.iinfo(dt)
        return torch.tensor([info.min, info.max, 0, 1, info.min + 1, info.max - 1], dtype=dt)
    base = dt if dt.is_floating_point else (torch.float32 if dt == torch.complex64 else torch.float64)
    fi = torch.finfo(base)
    v = torch.tensor([0.0, -0.0, 1.0, -1.5, fi.max, fi.min, fi.tiny, fi.tiny / 4, fi.eps, math.inf, -math.inf, math.nan],
                     dtype=base)
    return v if dt.is_floating_point else torch.complex(v, v.flip(0))


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=dt_id)
def test_from_data_roundtrip(dt):
    """ct_from_data and ct_copy_to_buffer are exact for every dtype (bit patterns included)."""
    for x in [special_values(dt), make((2, 3, 4), dt), make((), dt), make((0, 5), dt)]:
        with case("from_data"):
            c = ctorch.from_torch(x)
            got = c.torch()
            assert got.dtype == dt and got.shape == x.shape
            bits = {2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.int64}.get(x.element_size())
            if dt.is_floating_point or dt.is_complex:  # same bits, including NaN payload, -0.0, subnormals
                raw = (lambda t: torch.view_as_real(t) if t.is_complex() else t)
                assert torch.equal(raw(got).contiguous().view(bits), raw(x).contiguous().view(bits))
            else:
                assert torch.equal(got, x)


def test_numpy_conversion():
    np = pytest.importorskip("numpy")
    for dt in ALL_DTYPES:
        with case("from_data"):
            x = make((2, 3), dt)
            c = ctorch.from_torch(x)
            a = c.numpy()
            if dt == torch.bfloat16:
                assert a.dtype == np.float32 and torch.equal(torch.from_numpy(a), x.float())
            else:
                assert torch.equal(torch.from_numpy(a), x)
                harness.assert_same(ctorch.from_numpy(a), x)


def test_wrapped_numbers():
    for ct_fn, v, dt in [(L.ct_float, 2.5, torch.float64), (L.ct_int, -7, torch.int64), (L.ct_bool, True, torch.bool)]:
        with case("wrapped_number"):
            harness.assert_same(ct_fn(v), torch.tensor(v, dtype=dt))
    with case("wrapped_number"):
        harness.assert_same(L.ct_complex(1.5, -2.0), torch.tensor(1.5 - 2j, dtype=torch.complex128))


def test_item_and_get():
    x = make((3, 4), torch.float64, "transposed")
    c = ctorch.from_torch(x)
    with case("item"):
        assert L.ct_item(ctorch.from_torch(torch.tensor([3.25]))) == 3.25
        for idx in [(0, 0), (2, 3), (1, 2)]:
            assert L.ct_get(c, idx) == x[idx].item()
    with case("item"):
        with pytest.raises(ctorch.CtorchError):
            L.ct_item(c)  # more than one element, as torch's item() refuses


# ----------------------------------------------------------------- views
def check_view(op_name, ct_fn, torch_fn, x, grad=True):
    """Values, dtype, shape and gradients equal torch's; the result shares the input's
    storage, with torch's strides (for dims of size > 1) and relative offset."""
    check(op_name, ct_fn, torch_fn, [x], grad=grad)
    with case(op_name):
        cx = ctorch.from_torch(x)
        got, want = ct_fn(cx), torch_fn(x)
        gl, wl = (list(got), list(want)) if isinstance(want, (tuple, list)) else ([got], [want])
        for g, w in zip(gl, wl):
            assert g.shares_storage(cx), f"{op_name} [{describe(x)}]: result does not share storage"
            assert L.ct_version_counter(g) == L.ct_version_counter(cx)
            if w.numel() > 1:
                big = [k for k in range(w.dim()) if w.shape[k] > 1]
                assert [g.stride(k) for k in big] == [w.stride(k) for k in big], \
                    f"{op_name} [{describe(x)}]: strides {g.stride()}, torch {w.stride()}"
            if w.numel() > 0:
                assert g.storage_offset() - cx.storage_offset() == w.storage_offset() - x.storage_offset(), \
                    f"{op_name} [{describe(x)}]: storage offset differs from torch"


X3 = make((2, 3, 4), torch.float64)
XT = make((3, 4), torch.float64, "transposed")
XS = make((3, 4), torch.float64, "strided")
V_INPUTS = {"c3": X3, "t": XT, "s": XS}

VIEW_CASES = [
    ("view", lambda c: L.ct_view(c, (6, 4)), lambda t: t.view(6, 4), "c3"),
    ("view", lambda c: L.ct_view(c, (-1,)), lambda t: t.view(-1), "c3"),
    ("view", lambda c: L.ct_view(c, (2, 1, 12)), lambda t: t.view(2, 1, 12), "c3"),
    ("view", lambda c: L.ct_view(c, (3, 2, 2)), lambda t: t.view(3, 2, 2), "t"),
    ("reshape", lambda c: L.ct_reshape(c, (4, -1)), lambda t: t.reshape(4, -1), "c3"),
    ("as_strided", lambda c: L.ct_as_strided(c, (3, 2), (2, 5), 1), lambda t: t.as_strided((3, 2), (2, 5), 1), "c3"),
    ("as_strided", lambda c: L.ct_as_strided(c, (4,), (0,), 3), lambda t: t.as_strided((4,), (0,), 3), "c3"),
    ("permute", lambda c: L.ct_permute(c, (2, 0, 1)), lambda t: t.permute(2, 0, 1), "c3"),
    ("permute", lambda c: L.ct_permute(c, (-1, 0)), lambda t: t.permute(-1, 0), "s"),
    ("transpose", lambda c: L.ct_transpose(c, 0, 2), lambda t: t.transpose(0, 2), "c3"),
    ("transpose", lambda c: L.ct_transpose(c, -1, -2), lambda t: t.transpose(-1, -2), "t"),
    ("t", L.ct_t, torch.t, "t"),
    ("t", L.ct_t, torch.t, "s"),
    ("expand", lambda c: L.ct_expand(c, (2, 2, 3, 4)), lambda t: t.expand(2, 2, 3, 4), "c3"),
    ("expand", lambda c: L.ct_expand(c, (5, -1, -1)), lambda t: t.expand(5, -1, -1), "t"),
    ("narrow", lambda c: L.ct_narrow(c, 2, 1, 2), lambda t: t.narrow(2, 1, 2), "c3"),
    ("narrow", lambda c: L.ct_narrow(c, -1, 0, 0), lambda t: t.narrow(-1, 0, 0), "t"),
    ("select", lambda c: L.ct_select(c, 1, -1), lambda t: t.select(1, -1), "c3"),
    ("select", lambda c: L.ct_select(c, 0, 2), lambda t: t.select(0, 2), "s"),
    ("slice", lambda c: L.ct_slice(c, 2, 0, INT64_MAX, 2), lambda t: t[:, :, ::2], "c3"),
    ("slice", lambda c: L.ct_slice(c, 1, -2, 100, 1), lambda t: t[:, -2:100], "c3"),
    ("slice", lambda c: L.ct_slice(c, 0, 1, 3, 3), lambda t: t[1:3:3], "t"),
    ("slice", lambda c: L.ct_slice(c, 1, 3, 1, 1), lambda t: t[:, 3:1], "s"),
    ("slice", lambda c: L.ct_slice(c, -1, -100, -1, 2), lambda t: t[..., -100:-1:2], "s"),
    ("squeeze", L.ct_squeeze, torch.squeeze, "c3"),
    ("unsqueeze", lambda c: L.ct_unsqueeze(c, -1), lambda t: t.unsqueeze(-1), "t"),
    ("unsqueeze", lambda c: L.ct_unsqueeze(c, 1), lambda t: t.unsqueeze(1), "c3"),
    ("flatten", lambda c: L.ct_flatten(c, 0, -1), lambda t: t.flatten(), "c3"),
    ("flatten", lambda c: L.ct_flatten(c, 1, 2), lambda t: t.flatten(1, 2), "c3"),
    ("flatten", lambda c: L.ct_flatten(c, 1, 1), lambda t: t.flatten(1, 1), "t"),
    ("unflatten", lambda c: L.ct_unflatten(c, 2, (2, 2)), lambda t: t.unflatten(2, (2, 2)), "c3"),
    ("unflatten", lambda c: L.ct_unflatten(c, -1, (-1, 1)), lambda t: t.unflatten(-1, (-1, 1)), "t"),
    ("unbind", lambda c: tuple(ctorch.unbind(c, 1)), lambda t: t.unbind(1), "c3"),
    ("unbind", lambda c: tuple(ctorch.unbind(c, -1)), lambda t: t.unbind(-1), "s"),
    ("diagonal", lambda c: L.ct_diagonal(c, 0, 0, 1), lambda t: t.diagonal(0, 0, 1), "t"),
    ("diagonal", lambda c: L.ct_diagonal(c, 1, -1, -2), lambda t: t.diagonal(1, -1, -2), "c3"),
    ("diagonal", lambda c: L.ct_diagonal(c, -2, 0, 1), lambda t: t.diagonal(-2, 0, 1), "s"),
    ("diagonal", lambda c: L.ct_diagonal(c, 7, 0, 1), lambda t: t.diagonal(7, 0, 1), "t"),
    ("movedim", lambda c: L.ct_movedim(c, 0, -1), lambda t: t.movedim(0, -1), "c3"),
    ("movedim", lambda c: L.ct_movedim(c, 2, 0), lambda t: t.movedim(2, 0), "c3"),
    ("expand_as", lambda c: L.ct_expand_as(c, torch.empty(3, 3, 4)), lambda t: t.expand_as(torch.empty(3, 3, 4)), "t"),
]


@pytest.mark.parametrize("op,ct_fn,torch_fn,inp", VIEW_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(VIEW_CASES)])
def test_views(op, ct_fn, torch_fn, inp):
    check_view(op, ct_fn, torch_fn, V_INPUTS[inp])


@pytest.mark.parametrize("dt", [torch.bool, torch.int16, torch.bfloat16, torch.complex64], ids=dt_id)
def test_views_dtypes(dt):
    x = make((3, 4), dt, "transposed")
    check_view("transpose", lambda c: L.ct_transpose(c, 0, 1), lambda t: t.transpose(0, 1), x)
    check_view("select", lambda c: L.ct_select(c, 1, 2), lambda t: t.select(1, 2), x)
    check_view("slice", lambda c: L.ct_slice(c, 0, 0, INT64_MAX, 2), lambda t: t[::2], x)


X1 = make((1, 3, 1, 2), torch.float64)
S0 = make((), torch.float64)
SIZE1_CASES = [("squeeze", L.ct_squeeze, torch.squeeze, X1)] + [
    ("squeeze", (lambda d: lambda c: L.ct_squeeze_dim(c, d))(d), (lambda d: lambda t: t.squeeze(d))(d), X1)
    for d in (0, 2, -2, 1)] + [
    ("squeeze", L.ct_squeeze, torch.squeeze, S0),
    ("squeeze", lambda c: L.ct_squeeze_dim(c, 0), lambda t: t.squeeze(0), S0),
    ("unsqueeze", lambda c: L.ct_unsqueeze(c, 0), lambda t: t.unsqueeze(0), S0),
    ("view", lambda c: L.ct_view(c, (1, 1)), lambda t: t.view(1, 1), S0),
    ("view", lambda c: L.ct_view(c, (-1,)), lambda t: t.view(-1), S0),
    ("view", lambda c: L.ct_view(c, ()), lambda t: t.view(()), make((1, 1), torch.float64)),
    ("reshape", lambda c: L.ct_reshape(c, (1,)), lambda t: t.reshape(1), S0),
    ("expand", lambda c: L.ct_expand(c, (2, 3)), lambda t: t.expand(2, 3), S0),
    ("flatten", lambda c: L.ct_flatten(c, 0, -1), lambda t: t.flatten(), S0),
    ("permute", lambda c: L.ct_permute(c, ()), lambda t: t.permute(()), S0),
]


@pytest.mark.parametrize("op,ct_fn,torch_fn,x", SIZE1_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SIZE1_CASES)])
def test_size1_and_0dim_views(op, ct_fn, torch_fn, x):
    check_view(op, ct_fn, torch_fn, x)


Z = make((3, 4), torch.complex128)
R = make((3, 4, 2), torch.float64)


def test_view_as_real_complex():
    check_view("view_as_real", L.ct_view_as_real, torch.view_as_real, Z, grad=False)
    check_view("view_as_complex", L.ct_view_as_complex, torch.view_as_complex, R, grad=False)
    check_error("view_as_complex", L.ct_view_as_complex, torch.view_as_complex, [make((3, 3), torch.float64)])


@pytest.mark.parametrize("op,ct_fn,torch_fn,x", [("view_as_real", L.ct_view_as_real, torch.view_as_real, Z),
                                                 ("view_as_complex", L.ct_view_as_complex, torch.view_as_complex, R)],
                         ids=["view_as_real", "view_as_complex"])
def test_view_as_real_complex_grad(op, ct_fn, torch_fn, x):
    check(op, ct_fn, torch_fn, [x])


RESHAPE_CASES = [("c3", (4, 6)), ("t", (12,)), ("t", (3, 2, 2)), ("t", (4, 3)), ("s", (2, 6)), ("s", (3, 2, 2)),
                 ("c3", (-1,))]


@pytest.mark.parametrize("inp,shape", RESHAPE_CASES, ids=str)
def test_reshape_view_or_copy(inp, shape):
    """reshape views exactly when torch's does (and copies otherwise)."""
    x = V_INPUTS[inp]
    check("reshape", lambda c: L.ct_reshape(c, shape), lambda t: t.reshape(shape), [x])
    with case("reshape"):
        cx = ctorch.from_torch(x)
        r, w = L.ct_reshape(cx, shape), x.reshape(shape)
        torch_views = w.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
        assert r.shares_storage(cx) == torch_views, f"reshape {describe(x)} -> {shape}: view {r.shares_storage(cx)}, torch {torch_views}"


VIEW_ERRORS = [
    ("view", lambda c: L.ct_view(c, (5, -1)), lambda t: t.view(5, -1), "c3"),
    ("view", lambda c: L.ct_view(c, (12,)), lambda t: t.view(12), "t"),
    ("view", lambda c: L.ct_view(c, (4, 1, 3)), lambda t: t.view(4, 1, 3), "t"),
    ("view", lambda c: L.ct_view(c, (-1, -1)), lambda t: t.view(-1, -1), "c3"),
    ("permute", lambda c: L.ct_permute(c, (0, 0, 1)), lambda t: t.permute(0, 0, 1), "c3"),
    ("permute", lambda c: L.ct_permute(c, (0, 1)), lambda t: t.permute(0, 1), "c3"),
    ("transpose", lambda c: L.ct_transpose(c, 0, 3), lambda t: t.transpose(0, 3), "c3"),
    ("expand", lambda c: L.ct_expand(c, (3, 3, 4)), lambda t: t.expand(3, 3, 4), "c3"),
    ("expand", lambda c: L.ct_expand(c, (3,)), lambda t: t.expand(3), "t"),
    ("narrow", lambda c: L.ct_narrow(c, 0, 2, 2), lambda t: t.narrow(0, 2, 2), "t"),
    ("select", lambda c: L.ct_select(c, 0, 2), lambda t: t.select(0, 2), "c3"),
    ("select", lambda c: L.ct_select(c, 5, 0), lambda t: t.select(5, 0), "c3"),
    ("slice", lambda c: L.ct_slice(c, 0, 0, 2, 0), lambda t: t[::0], "t"),
    ("squeeze", lambda c: L.ct_squeeze_dim(c, 3), lambda t: t.squeeze(3), "c3"),
    ("unsqueeze", lambda c: L.ct_unsqueeze(c, 4), lambda t: t.unsqueeze(4), "c3"),
    ("flatten", lambda c: L.ct_flatten(c, 2, 1), lambda t: t.flatten(2, 1), "c3"),
    ("unflatten", lambda c: L.ct_unflatten(c, 2, (3, 2)), lambda t: t.unflatten(2, (3, 2)), "c3"),
    ("diagonal", lambda c: L.ct_diagonal(c, 0, 1, 1), lambda t: t.diagonal(0, 1, 1), "c3"),
    ("movedim", lambda c: L.ct_movedim(c, 3, 0), lambda t: t.movedim(3, 0), "c3"),
    ("t", L.ct_t, torch.t, "c3"),
]


@pytest.mark.parametrize("op,ct_fn,torch_fn,inp", VIEW_ERRORS, ids=[f"{c[0]}-{i}" for i, c in enumerate(VIEW_ERRORS)])
def test_view_errors(op, ct_fn, torch_fn, inp):
    check_error(op, ct_fn, torch_fn, [V_INPUTS[inp]])


def test_unbind_errors():
    check_error("unbind", lambda c: ctorch.unbind(c, 0), lambda t: t.unbind(0), [make((), torch.float32)])


# ----------------------------------------------------------------- contiguous / clone
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided", "expanded"])
def test_contiguous(layout):
    x = make((3, 4), torch.float64, layout)
    check("contiguous", L.ct_contiguous, lambda t: t.contiguous(), [x])
    check("clone", L.ct_clone, torch.clone, [x])
    with case("contiguous"):
        cx = ctorch.from_torch(x)
        assert cx.is_contiguous() == x.is_contiguous()
        r = L.ct_contiguous(cx)
        assert r.is_contiguous()
        if x.is_contiguous():  # no copy: the same tensor
            assert r.ptr == cx.ptr and r.data_ptr() == cx.data_ptr()
        else:
            assert not r.shares_storage(cx)
    with case("clone"):
        c = L.ct_clone(cx)
        assert not c.shares_storage(cx) and c.is_contiguous()


@pytest.mark.parametrize("dt", [torch.float32, torch.int32, torch.float64, torch.int64, torch.complex64,
                                torch.float16, torch.bfloat16, torch.uint8], ids=dt_id)
def test_transposed_copies(dt):
    """contiguous() of transposed and permuted views, bit for bit torch's: the tiled
    transpose (src/cpu/copy.c) takes whole 64-byte tiles in registers for 4- and 8-byte
    elements and the edges element by element, so the shapes straddle the tile sizes (8,
    16) on both sides, and the 3-D permutes walk several planes."""
    g = torch.Generator().manual_seed(7)
    shapes = [(8, 16), (16, 16), (17, 16), (16, 33), (31, 47), (64, 48), (40, 130), (300, 257)]
    for rows, cols in shapes:
        base = (torch.randn(rows, cols, generator=g) * 100).to(dt)
        with case("contiguous"):
            got = L.ct_contiguous(L.ct_transpose(ctorch.from_torch(base), 0, 1)).torch()
            assert torch.equal(got, base.t().contiguous()), (dt, rows, cols)
    for shape, perm in [((3, 20, 35), (0, 2, 1)), ((33, 4, 18), (2, 1, 0)), ((2, 17, 5, 32), (0, 3, 2, 1)),
                        ((16, 3, 16), (1, 2, 0))]:
        base = (torch.randn(*shape, generator=g) * 100).to(dt)
        with case("contiguous"):
            got = L.ct_contiguous(L.ct_permute(ctorch.from_torch(base), perm)).torch()
            assert torch.equal(got, base.permute(*perm).contiguous()), (dt, shape, perm)


def test_is_contiguous_matches_torch():
    for x in [make((3, 4), torch.float32, lay) for lay in ("contiguous", "transposed", "strided", "expanded")] + \
             [make((1, 4), torch.float32, "transposed"), make((3, 1), torch.float32).expand(3, 1),
              make((0, 3), torch.float32), make((), torch.float32), make((2, 1, 3), torch.float32).transpose(0, 1)]:
        with case("is_contiguous"):
            assert ctorch.from_torch(x).is_contiguous() == x.is_contiguous(), describe(x)


# ----------------------------------------------------------------- in-place copy / fill
@pytest.mark.parametrize("src_dt", [torch.float64, torch.int32, torch.bool], ids=dt_id)
@pytest.mark.parametrize("dst_dt", [torch.float32, torch.int64, torch.complex64, torch.float16], ids=dt_id)
def test_copy_fill(dst_dt, src_dt):
    dst, src = make((3, 4), dst_dt, "transposed"), make((4,), src_dt)
    with case("copy_"):
        cd = ctorch.from_torch(dst)
        v0 = L.ct_version_counter(cd)
        L.ct_copy_(cd, ctorch.from_torch(src))
        harness.assert_same(cd, dst.clone().copy_(src))
        assert L.ct_version_counter(cd) > v0
    with case("fill_"):
        cd = ctorch.from_torch(dst)
        L.ct_fill_(cd, 3.0)
        harness.assert_same(cd, torch.full_like(dst, 3.0))
        L.ct_zero_(cd)
        harness.assert_same(cd, torch.zeros_like(dst))
    with case("copy_"):
        with pytest.raises(ctorch.CtorchError):
            L.ct_copy_(ctorch.from_torch(dst), ctorch.from_torch(make((3,), src_dt)))


def test_view_writes_through():
    with case("view"):
        base = ctorch.from_torch(torch.zeros(3, 4))
        row = L.ct_select(base, 0, 1)
        L.ct_fill_(row, 5.0)
        want = torch.zeros(3, 4)
        want[1] = 5.0
        harness.assert_same(base, want)


# ----------------------------------------------------------------- conversion
def conversion_values(src, dst):
    """Source values whose conversion torch defines: real values in dst's range
    (float -> int truncates toward zero), plus inf/nan between floating types."""
    if src == torch.bool:
        return torch.tensor([True, False, True, True])
    if dst == torch.bool or dst.is_floating_point or dst.is_complex:
        lo, hi = -300.0, 300.0
    else:
        info = torch.iinfo(dst)
        lo, hi = max(info.min, -2.0 ** 62), min(info.max, 2.0 ** 62)
    if src.is_floating_point or src.is_complex:
        vals = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.7, 2.7, 0.999, -0.999, 100.25, 1 / 3, 1e-3, 65519.0, 70000.0,
                1.0009765625, 1.00048828125, 1.00146484375, 3.1415926535897931, 1e-5, 6e-8, 2.0 ** -24 * 0.5]
        vals = [v for v in vals if lo <= v <= hi]
        if not src.is_complex:  # keep what src can hold: the values of the source tensor itself
            vals = torch.tensor(vals, dtype=torch.float64).to(src)
        else:
            re = torch.tensor(vals, dtype=torch.float64)
            vals = torch.complex(re, re.flip(0)).to(src)
        if dst.is_floating_point or dst.is_complex or dst == torch.bool:
            extra = torch.tensor([math.inf, -math.inf, math.nan], dtype=torch.float64)
            vals = torch.cat([vals, extra.to(src) if not src.is_complex else torch.complex(extra, extra.flip(0)).to(src)])
        r = torch.Generator().manual_seed(1)
        noise = (torch.randn(32, dtype=torch.float64, generator=r) * 50).clamp(lo, hi)
        noise = noise.to(src) if not src.is_complex else torch.complex(noise, noise.flip(0)).to(src)
        vals = torch.cat([vals, noise])
        if not (dst.is_floating_point or dst.is_complex or dst == torch.bool):  # float -> int: finite, in range
            re = (vals.real if src.is_complex else vals).double()
            vals = vals[re.isfinite() & (re >= lo) & (re <= hi)]
        return vals
    info = torch.iinfo(src)
    vals = [0, 1, -1, 2, 7, 100, 127, 128, 255, 256, 300, -129, -32768, 32767, 65535, 2 ** 31 - 1, -2 ** 31, 2 ** 24 + 1,
            2 ** 53 + 1, 2 ** 62 + 3, info.min, info.max]  # integer -> integer wraps, as in torch
    return torch.tensor([v for v in vals if info.min <= v <= info.max], dtype=src)


@pytest.mark.parametrize("src", ALL_DTYPES, ids=dt_id)
@pytest.mark.parametrize("dst", ALL_DTYPES, ids=dt_id)
def test_to_dtype(src, dst):
    x = conversion_values(src, dst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Casting complex values to real discards the imaginary part"
        check("to_dtype", lambda c: L.ct_to_dtype(c, dst), lambda t: t.to(dst), [x], atol=0, rtol=0)
        xs = x[: 2 * (x.numel() // 2)].view(2, -1).t()  # non-contiguous input
        check("to_dtype", lambda c: L.ct_to_dtype(c, dst), lambda t: t.to(dst), [xs], atol=0, rtol=0)
    with case("to_dtype"):
        c = ctorch.from_torch(x)
        r = L.ct_to_dtype(c, dst)
        if src == dst:
            assert r.ptr == c.ptr  # the same tensor, like torch's .to()


# ----------------------------------------------------------------- result types
SCALARS = [True, 3, -2.5, 1.5 + 2j]


@pytest.mark.parametrize("dt", ALL_DTYPES, ids=dt_id)
@pytest.mark.parametrize("s", SCALARS, ids=repr)
def test_add_wrapped_scalar(dt, s):
    need("ct_add")
    add = L.binary("ct_add")
    x = make((3,), dt)
    for args in ([x, s], [s, x], [make((), dt), s]):
        if torch.result_type(*args) not in ALL_DTYPES:
            continue  # float16 with a complex scalar gives complex32, which ctorch lacks
        check("add", add, torch.add, args)


@pytest.mark.parametrize("inputs", samples("promotion"), ids=describe)
def test_add_promotion(inputs):
    need("ct_add")
    check("add", L.binary("ct_add"), torch.add, inputs)


# ----------------------------------------------------------------- autograd basics
def test_leaf_and_requires_grad():
    with case("requires_grad"):
        x = ctorch.from_torch(torch.randn(3))
        assert not x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn_name is None
        x.requires_grad_()
        assert x.requires_grad and x.is_leaf and x.grad is None
        x.requires_grad_(False)
        assert not x.requires_grad
    for dt in INTEGRAL + [torch.bool]:
        check_error("requires_grad", lambda c: c.requires_grad_(), lambda t: t.requires_grad_(), [make((3,), dt)],
                    names=["requires_grad", "grad"])


def test_backward_simple():
    need("ct_mul", "ct_add", "ct_sum")
    mul, add, s = L.binary("ct_mul"), L.binary("ct_add"), L.unary("ct_sum")
    fn_ct = lambda a, b: s(add(mul(a, a), mul(a, b)))  # noqa: E731
    fn_t = lambda a, b: (a * a + a * b).sum()  # noqa: E731
    for layout in ("contiguous", "transposed", "strided"):
        a, b = make((3, 4), torch.float64, layout), make((4,), torch.float64)
        check("autograd", fn_ct, fn_t, [a, b])
    with case("autograd"):
        ta = torch.randn(3, dtype=torch.float64, requires_grad=True)
        tb = ta * 2.0
        ty = (tb * tb).sum()
        a = ctorch.from_torch(ta)
        b = mul(a, 2.0)
        y = s(mul(b, b))
        assert a.requires_grad and not b.is_leaf and b.requires_grad
        assert b.grad_fn_name == tb.grad_fn.name() and y.grad_fn_name == ty.grad_fn.name()
        b.retain_grad()
        tb.retain_grad()
        y.backward(retain_graph=True)
        ty.backward(retain_graph=True)
        harness.assert_same(a.grad, ta.grad)
        harness.assert_same(b.grad, tb.grad)
        y.backward()  # accumulates
        ty.backward()
        harness.assert_same(a.grad, ta.grad)
    with case("autograd"):  # a freed graph cannot be run again
        with pytest.raises(ctorch.CtorchError):
            y.backward()


def test_backward_errors():
    need("ct_mul")
    mul = L.binary("ct_mul")
    x = torch.randn(3, dtype=torch.float64)
    check_error("backward", lambda c: mul(c.requires_grad_(), 2.0).backward(),
                lambda t: (t.requires_grad_() * 2.0).backward(), [x], names=["backward", "grad"])
    check_error("backward", lambda c: mul(c, 2.0).backward(), lambda t: (t * 2.0).backward(), [x],
                names=["backward", "grad"])
    check_error("backward", lambda c: mul(c.requires_grad_(), 2.0).backward(torch.ones(4, dtype=torch.float64)),
                lambda t: (t.requires_grad_() * 2.0).backward(torch.ones(4, dtype=torch.float64)), [x],
                names=["backward", "grad", "shape"])


def test_inplace_on_saved_tensor_fails():
    need("ct_mul", "ct_sum")
    mul, s = L.binary("ct_mul"), L.unary("ct_sum")

    def ct_fn(c):
        a = mul(c.requires_grad_(), 1.0)
        y = s(mul(a, a))
        L.ct_zero_(a)
        y.backward()

    def t_fn(t):
        a = t.requires_grad_() * 1.0
        y = (a * a).sum()
        a.zero_()
        y.backward()
    check_error("autograd", ct_fn, t_fn, [torch.randn(3, dtype=torch.float64)], names="modified by an inplace operation")


def test_detach_and_no_grad():
    need("ct_mul")
    mul = L.binary("ct_mul")
    with case("detach"):
        x = ctorch.from_torch(torch.randn(3, dtype=torch.float64), requires_grad=True)
        y = mul(x, 3.0)
        d = y.detach()
        assert d.shares_storage(y) and not d.requires_grad and d.is_leaf
        harness.assert_same(d, y.torch())
    with case("no_grad"):
        with ctorch.no_grad():
            assert not L.ct_is_grad_enabled()
            z = mul(x, 3.0)
        assert L.ct_is_grad_enabled()
        assert not z.requires_grad and z.grad_fn_name is None
    with case("detach"):
        L.ct_detach_(y)
        assert not y.requires_grad and y.is_leaf


def test_autograd_grad_and_set_grad():
    need("ct_mul", "ct_sum")
    mul, s = L.binary("ct_mul"), L.unary("ct_sum")
    tx = torch.randn(4, dtype=torch.float64, requires_grad=True)
    tw = torch.randn(4, dtype=torch.float64, requires_grad=True)
    with case("autograd_grad"):
        x, w = ctorch.from_torch(tx), ctorch.from_torch(tw)
        y = s(mul(mul(x, x), w))
        gx, gw = ctorch.autograd_grad([y], [x, w], create_graph=True)
        tgx, tgw = torch.autograd.grad((tx * tx * tw).sum(), [tx, tw], create_graph=True)
        harness.assert_same(gx, tgx)
        harness.assert_same(gw, tgw)
        assert x.grad is None  # autograd_grad does not touch .grad
        (ggx,) = ctorch.autograd_grad([s(gx)], [x])  # second derivative through create_graph
        (tggx,) = torch.autograd.grad(tgx.sum(), [tx])
        harness.assert_same(ggx, tggx)
    with case("set_grad"):
        g = ctorch.from_torch(torch.ones(4, dtype=torch.float64))
        x.grad = g
        harness.assert_same(x.grad, torch.ones(4, dtype=torch.float64))
        x.grad = None
        assert x.grad is None


def test_gradcheck_mul():
    need("ct_mul")
    mul = L.binary("ct_mul")
    a, b = make((3, 4), torch.float64), make((4,), torch.float64, generator=torch.Generator().manual_seed(3))
    gradcheck("mul", mul, [a, b])
    gradgradcheck("mul", mul, [a, b])
    gradcheck("mul", lambda x: mul(x, x), [make((3, 4), torch.float64, "transposed")])
    gradcheck("to_dtype", lambda x: L.ct_to_dtype(L.ct_to_dtype(x, torch.float32), torch.float64), [a],
              atol=1e-3, rtol=1e-2, eps=1e-3)
    gradcheck("transpose", lambda x: L.ct_contiguous(L.ct_transpose(x, 0, 1)), [a])
    gradcheck("expand", lambda x: L.ct_contiguous(L.ct_expand(x, (2, 3, 4))), [a])


# ----------------------------------------------------------------- scopes and errors
def test_scopes():
    with case("scope"):
        gc.collect()
        n0 = ctorch.live_tensors()
        assert L.ct_scope_depth() == 0
        L.ct_scope_begin()
        try:
            assert L.ct_scope_depth() == 1
            a = L.ct_zeros((2, 3), torch.float32)  # the scope holds one reference, `a` another
            b = L.ct_ones((2,), torch.int64)
            assert ctorch.live_tensors() == n0 + 2
            del a
            gc.collect()
            assert ctorch.live_tensors() == n0 + 2  # still owned by the scope
        finally:
            L.ct_scope_end()
        assert L.ct_scope_depth() == 0
        assert ctorch.live_tensors() == n0 + 1  # b survives the scope through its own reference
        harness.assert_same(b, torch.ones(2, dtype=torch.int64))
        del b
        gc.collect()
        assert ctorch.live_tensors() == n0
    with case("scope"):
        with pytest.raises(ctorch.CtorchError) as e:
            L.ct_scope_end()  # none open
        assert e.value.status == -1 and str(e.value)


def test_no_leaks():
    with case("scope"):
        gc.collect()
        n0 = ctorch.live_tensors()
        for dt in ALL_DTYPES:
            x = ctorch.from_torch(make((3, 4), dt, "transposed"))
            ctorch.unbind(x, 0)
            L.ct_to_dtype(L.ct_contiguous(x), torch.float64).torch()
            repr(x)
        with pytest.raises(ctorch.CtorchError):
            L.ct_view(x, (5, 5))
        del x
        gc.collect()
        assert ctorch.live_tensors() == n0


def test_error_record():
    raw_view = ctorch._raw("ct_view", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64))
    raw_t = ctorch._raw("ct_t", ctypes.c_void_p, ctypes.c_void_p)
    x = ctorch.from_torch(torch.zeros(2, 3))
    with case("errors"):
        L.ct_clear_error()
        assert L.ct_last_error() == "" and L.ct_last_status() == 0
        bad = raw_view(x.ptr, 1, (ctypes.c_int64 * 1)(7))
        assert not bad
        first = L.ct_last_error()
        assert "view" in first and L.ct_last_status() < 0
        assert not raw_t(bad)  # a NULL argument fails quietly, keeping the first message
        assert L.ct_last_error() == first
        L.ct_clear_error()
        assert not raw_t(None)  # NULL with no earlier error: CT_ERR_NULL naming the op
        assert L.ct_last_status() == -9 and "t" in L.ct_last_error()
        L.ct_clear_error()
    with case("errors"):
        with pytest.raises(ctorch.CtorchError) as e:
            L.ct_transpose(x, 0, 5)
        assert "transpose" in str(e.value) and e.value.status == -5  # CT_ERR_INDEX
        assert L.ct_last_error() == ""  # the binding clears the record after raising
        assert L.ct_status_str(-2)


def test_version():
    with case("version"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", L.ct_version())


# ----------------------------------------------------------------- the harness itself
SELF = "harness-selftest"


def _expect_failure(fn):
    try:
        with pytest.raises(AssertionError):
            fn()
        assert harness.RESULTS[SELF]["passed"] < harness.RESULTS[SELF]["cases"]
    finally:
        harness.RESULTS.pop(SELF, None)


def test_harness_detects_wrong_values():
    x = make((3, 4), torch.float32)
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t + 1e-3, [x]))
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t.double(), [x]))  # dtype
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t.reshape(4, 3), [x]))  # shape
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t.t(), [make((3, 3), torch.float32)]))  # layout -> values
    _expect_failure(lambda: check(SELF, lambda c: (L.ct_clone(c),), lambda t: (t, t), [x]))  # output count
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t + 1, [make((3,), torch.int64)]))  # ints are exact
    _expect_failure(lambda: check(SELF, L.ct_clone, torch.sqrt, [make((3,), torch.int64)]))  # torch ok, dtype differs
    _expect_failure(lambda: check(SELF, lambda c: L.ct_view(c, (5,)), lambda t: t.reshape(12), [x]))  # ctorch raises


def test_harness_detects_wrong_gradients():
    need("ct_mul")
    mul = L.binary("ct_mul")
    x = make((3,), torch.float64)
    _expect_failure(lambda: check(SELF, lambda c: mul(c, L.ct_detach(c)), lambda t: t * t, [x]))
    _expect_failure(lambda: gradcheck(SELF, lambda c: mul(c, L.ct_detach(c)), [x]))
    _expect_failure(lambda: gradgradcheck(SELF, lambda c: mul(mul(c, c), L.ct_detach(c)), [x]))
    _expect_failure(lambda: check(SELF, lambda c: L.ct_detach(mul(c, 2.0)), lambda t: t * 2.0, [x]))  # no grad_fn


def test_harness_detects_missing_errors():
    x = make((3,), torch.float32)
    _expect_failure(lambda: check_error(SELF, L.ct_clone, lambda t: t.view(5), [x]))  # ctorch does not raise
    _expect_failure(lambda: check_error(SELF, L.ct_clone, torch.clone, [x]))  # torch does not raise
    _expect_failure(lambda: check_error(SELF, lambda c: L.ct_view(c, (5,)), lambda t: t.view(5), [x]))  # op not named
    _expect_failure(lambda: check(SELF, L.ct_clone, lambda t: t.view(5), [x]))  # torch raises, ctorch does not


def test_harness_records_cases():
    try:
        check(SELF, L.ct_clone, torch.clone, [make((2,), torch.float64)])
        check_error(SELF, lambda c: L.ct_view(c, (5,)), lambda t: t.view(5), [make((2,))], names="view")
        gradcheck(SELF, L.ct_clone, [make((2,), torch.float64)])
        assert harness.RESULTS[SELF] == {"cases": 3, "passed": 3, "grad": 1, "error": 1, "gradcheck": 1}
    finally:
        harness.RESULTS.pop(SELF, None)


def test_samples_cover_layouts():
    un = samples("unary", [torch.float32])
    assert any(x.dim() == 0 for (x,) in un) and any(x.numel() == 0 for (x,) in un)
    assert any(not x.is_contiguous() for (x,) in un) and any(0 in x.stride() for (x,) in un if x.dim())
    bi = samples("binary", [torch.int32])
    assert all(a.dtype == b.dtype == torch.int32 for a, b in bi)
    assert any(a.shape != b.shape for a, b in bi)
    assert len(samples("promotion")) > 400


def test_set_flush_denormal():
    """torch.set_flush_denormal: denormals read as zero while it is on."""
    f = ctorch.lib.declare("ct_set_flush_denormal", "b(b)")
    tiny = torch.tensor([1e-40, 1.0], dtype=torch.float32)  # 1e-40 is a float32 denormal
    with case("set_flush_denormal"):
        assert f(True)
        got = ctorch.call("ct_mul", ctorch.from_torch(tiny), 1.0).torch()
        assert got[0].item() == 0.0 and got[1].item() == 1.0
        f(False)
        got = ctorch.call("ct_mul", ctorch.from_torch(tiny), 1.0).torch()
        assert got[0].item() != 0.0
