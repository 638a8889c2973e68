"""First-order float64 gradcheck for the differentiable ops and in-place forms whose
other suites compare gradients with torch.autograd but do not finite-difference them
(every differentiable op gets at least one ct_gradcheck case)."""
import pytest
import torch

import ctorch
from harness import gradcheck

C = ctorch.call


def inplace(cname, *args, sig="st(T)"):
    """f(t) = op_(clone(t), *args): gradient through an in-place op."""
    def f(t):
        c = C("ct_clone", t)
        C(cname, c, *args, sig=sig)
        return c
    return f


def pos(*s):
    return torch.rand(*s, dtype=torch.float64) + 0.5


def unit(*s):
    return torch.rand(*s, dtype=torch.float64) * 1.6 - 0.8


def rnd(*s):
    return torch.randn(*s, dtype=torch.float64)


def crnd(*s):
    return torch.randn(*s, dtype=torch.complex128)


def cat_fn(name):
    return lambda a, b: C(name, [a, b], sig="T(Tn)")


def split_first(name, *args, sig):
    def f(t):
        return C(name, t, *args, sig=sig)[1]
    return f


IDX2 = torch.tensor([[2, 0], [1, 2]])
IDX1 = torch.tensor([2, 0])

CASES = {
    # matrix products with their scalar forms
    "addmm": (lambda i, a, b: C("ct_addmm", i, a, b, 0.7, -1.3, sig="T(T,T,T,d,d)"), [rnd(3), rnd(2, 4), rnd(4, 3)]),
    "addmv": (lambda i, a, b: C("ct_addmv", i, a, b, 0.7, -1.3, sig="T(T,T,T,d,d)"), [rnd(2), rnd(2, 4), rnd(4)]),
    "baddbmm": (lambda i, a, b: C("ct_baddbmm", i, a, b, 0.7, -1.3, sig="T(T,T,T,d,d)"),
                [rnd(2, 1, 3), rnd(2, 2, 4), rnd(2, 4, 3)]),
    "vdot": (lambda a, b: C("ct_vdot", a, b), [rnd(4), rnd(4)]),
    "sub": (lambda a, b: C("ct_sub", a, b), [rnd(3, 1), rnd(4)]),
    # piecewise constant: zero Jacobians away from the jumps
    "floor": (lambda t: C("ct_floor", t), [unit(5) + 0.5]),
    "ceil": (lambda t: C("ct_ceil", t), [unit(5) + 0.5]),
    "round": (lambda t: C("ct_round", t), [unit(5) + 0.75]),
    "trunc": (lambda t: C("ct_trunc", t), [unit(5) + 0.5]),
    "sign": (lambda t: C("ct_sign", t), [pos(5)]),
    # shape and joining ops
    "tile": (lambda t: C("ct_tile", t, (2, 1, 3), sig="T(T,shape)"), [rnd(2, 3)]),
    "triu": (lambda t: C("ct_triu", t, 1, sig="T(T,i64)"), [rnd(3, 4)]),
    "hstack": (cat_fn("ct_hstack"), [rnd(2, 3), rnd(2, 1)]),
    "vstack": (cat_fn("ct_vstack"), [rnd(3), rnd(2, 3)]),
    "fliplr": (lambda t: C("ct_fliplr", t), [rnd(2, 3)]),
    "flipud": (lambda t: C("ct_flipud", t), [rnd(2, 3)]),
    "chunk": (lambda t: _piece("ct_chunk", t, 3), [rnd(7, 2)]),
    "split": (lambda t: _piece("ct_split", t, 2), [rnd(5, 2)]),
    # in-place forms
    "abs_": (inplace("ct_abs_"), [pos(4)]),
    "acos_": (inplace("ct_acos_"), [unit(4)]),
    "acosh_": (inplace("ct_acosh_"), [pos(4) + 1]),
    "asin_": (inplace("ct_asin_"), [unit(4)]),
    "asinh_": (inplace("ct_asinh_"), [rnd(4)]),
    "atan_": (inplace("ct_atan_"), [rnd(4)]),
    "atanh_": (inplace("ct_atanh_"), [unit(4)]),
    "cos_": (inplace("ct_cos_"), [rnd(4)]),
    "cosh_": (inplace("ct_cosh_"), [rnd(4)]),
    "sin_": (inplace("ct_sin_"), [rnd(4)]),
    "sinh_": (inplace("ct_sinh_"), [rnd(4)]),
    "tan_": (inplace("ct_tan_"), [unit(4)]),
    "tanh_": (inplace("ct_tanh_"), [rnd(4)]),
    "exp_": (inplace("ct_exp_"), [rnd(4)]),
    "exp2_": (inplace("ct_exp2_"), [rnd(4)]),
    "expm1_": (inplace("ct_expm1_"), [rnd(4)]),
    "log_": (inplace("ct_log_"), [pos(4)]),
    "log2_": (inplace("ct_log2_"), [pos(4)]),
    "log10_": (inplace("ct_log10_"), [pos(4)]),
    "log1p_": (inplace("ct_log1p_"), [pos(4)]),
    "sqrt_": (inplace("ct_sqrt_"), [pos(4)]),
    "rsqrt_": (inplace("ct_rsqrt_"), [pos(4)]),
    "square_": (inplace("ct_square_"), [rnd(4)]),
    "reciprocal_": (inplace("ct_reciprocal_"), [pos(4)]),
    "neg_": (inplace("ct_neg_"), [rnd(4)]),
    "sigmoid_": (inplace("ct_sigmoid_"), [rnd(4)]),
    "relu_": (inplace("ct_relu_"), [pos(4) - 1.0]),
    "erf_": (inplace("ct_erf_"), [rnd(4)]),
    "erfc_": (inplace("ct_erfc_"), [rnd(4)]),
    "erfinv_": (inplace("ct_erfinv_"), [unit(4)]),
    "lgamma_": (inplace("ct_lgamma_"), [pos(4)]),
    "digamma_": (inplace("ct_digamma_"), [pos(4)]),
    "frac_": (inplace("ct_frac_"), [unit(4) + 2.5]),
    "sgn_": (inplace("ct_sgn_"), [pos(4)]),
    "sign_": (inplace("ct_sign_"), [pos(4)]),
    "floor_": (inplace("ct_floor_"), [unit(4) + 0.5]),
    "ceil_": (inplace("ct_ceil_"), [unit(4) + 0.5]),
    "round_": (inplace("ct_round_"), [unit(4) + 0.75]),
    "trunc_": (inplace("ct_trunc_"), [unit(4) + 0.5]),
    "triu_": (inplace("ct_triu_", 0, sig="st(T,i64)"), [rnd(3, 3)]),
    "tril_": (inplace("ct_tril_", 0, sig="st(T,i64)"), [rnd(3, 3)]),
    "nan_to_num_": (inplace("ct_nan_to_num_", 0.0, 1.0, -1.0, sig="st(T,d,d,d)"), [rnd(4)]),
    "mul_": (lambda a, b: _inplace2("ct_mul_", a, b), [rnd(4), rnd(4)]),
    "pow_": (lambda a, b: _inplace2("ct_pow_", a, b), [pos(4), rnd(4)]),
    "atan2_": (lambda a, b: _inplace2("ct_atan2_", a, b), [rnd(4), pos(4)]),
    "fmod_": (lambda a, b: _inplace2("ct_fmod_", a, b), [pos(4) * 3, pos(4) + 0.6]),
    "maximum_": (lambda a, b: _inplace2("ct_maximum_", a, b), [rnd(4), rnd(4) + 0.05]),
    "xlogy_": (lambda a, b: _inplace2("ct_xlogy_", a, b), [rnd(4), pos(4)]),
    "clamp_": (lambda a: _clamp_(a), [rnd(6)]),
    "addcmul_": (lambda a, b, c: _inplace3("ct_addcmul_", a, b, c), [rnd(4), rnd(4), rnd(4)]),
    "addcdiv_": (lambda a, b, c: _inplace3("ct_addcdiv_", a, b, c), [rnd(4), rnd(4), pos(4)]),
    # complex
    "conj": (lambda z: C("ct_mul", C("ct_conj", z), z), [crnd(3)]),
    "conj_physical_": (inplace("ct_conj_"), [crnd(3)]),  # torch's name for the in-place conj
    "imag": (lambda z: C("ct_imag", C("ct_mul", z, z)), [crnd(3)]),
    # in-place updates of a clone
    "copy_": (lambda a, b: _inplace2("ct_copy_", a, b), [rnd(2, 3), rnd(3)]),
    "fill_": (inplace("ct_fill_", 2.0, sig="st(T,d)"), [rnd(3)]),
    "masked_fill_": (lambda a: _masked_fill_(a), [rnd(2, 3)]),
    "scatter_": (lambda a, b: _index_inplace("ct_scatter_", a, b, 1, IDX2), [rnd(2, 3), rnd(2, 2)]),
    "scatter_add_": (lambda a, b: _index_inplace("ct_scatter_add_", a, b, 1, IDX2), [rnd(2, 3), rnd(2, 2)]),
    "index_copy_": (lambda a, b: _index_inplace("ct_index_copy_", a, b, 0, IDX1), [rnd(3, 2), rnd(2, 2)]),
    "index_add_": (lambda a, b: _index_add_(a, b), [rnd(3, 2), rnd(2, 2)]),
    "index_put_": (lambda a, b: _index_put_(a, b), [rnd(3, 2), rnd(2, 2)]),
    "split_with_sizes": (lambda t: _split_sizes(t), [rnd(5, 2)]),
    "meshgrid": (lambda a, b: _meshgrid(a, b), [rnd(3), rnd(2)]),
}


def _masked_fill_(a):
    c = C("ct_clone", a)
    m = ctorch.from_torch(torch.tensor([[True, False, True], [False, False, True]]))
    C("ct_masked_fill_", c, m, ctorch.from_torch(torch.tensor(1.5, dtype=torch.float64)), sig="st(T,T,T)")
    return c


def _index_inplace(cname, a, b, dim, idx):
    c = C("ct_clone", a)
    C(cname, c, dim, ctorch.from_torch(idx), b, sig="st(T,i,T,T)")
    return c


def _index_add_(a, b):
    c = C("ct_clone", a)
    C("ct_index_add_", c, 0, ctorch.from_torch(IDX1), b, 1.5, sig="st(T,i,T,T,d)")
    return c


def _index_put_(a, b):
    c = C("ct_clone", a)
    C("ct_index_put_", c, [ctorch.from_torch(IDX1)], b, True, sig="st(T,Tn,T,b)")
    return c


def _split_sizes(t):
    import ctypes
    arr = (ctypes.c_void_p * 4)()
    raw = ctorch._raw("ct_split_sizes", ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                      ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))
    n = raw(t.ptr, 2, (ctypes.c_int64 * 2)(2, 3), 0, arr)
    assert n == 2, ctorch.lib.ct_last_error()
    return [ctorch.Tensor(arr[i]) for i in range(n)][1]


def _meshgrid(a, b):
    import ctypes
    arr = (ctypes.c_void_p * 2)()
    raw = ctorch._raw("ct_meshgrid", ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                      ctypes.POINTER(ctypes.c_void_p))
    rc = raw(2, (ctypes.c_void_p * 2)(a.ptr, b.ptr), b"ij", arr)
    assert rc == 0, ctorch.lib.ct_last_error()
    g = [ctorch.Tensor(arr[i]) for i in range(2)]
    return C("ct_mul", g[0], g[1])


def _piece(name, t, size):
    """The second piece of ct_chunk / ct_split (x, size, dim 0)."""
    import ctypes
    arr = (ctypes.c_void_p * 8)()
    raw = ctorch._raw(name, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int,
                      ctypes.POINTER(ctypes.c_void_p), ctypes.c_int64)
    n = raw(t.ptr, size, 0, arr, 8)
    assert n >= 2, ctorch.lib.ct_last_error()
    pieces = [ctorch.Tensor(arr[i]) for i in range(n)]  # inside gradcheck's scope: Tensor takes its own ref
    return pieces[1]


def _inplace2(cname, a, b):
    c = C("ct_clone", a)
    C(cname, c, b, sig="st(T,T)")
    return c


def _inplace3(cname, a, b, c):
    d = C("ct_clone", a)
    C(cname, d, b, c, 0.5, sig="st(T,T,T,d)")
    return d


def _clamp_(a):
    c = C("ct_clone", a)
    lo = ctorch.from_torch(torch.tensor(-0.5, dtype=torch.float64))
    hi = ctorch.from_torch(torch.tensor(0.7, dtype=torch.float64))
    C("ct_clamp_", c, lo, hi, sig="st(T,T,T)")
    return c


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    f, ins = CASES[name]
    gradcheck(name, f, ins)
