"""gradcheck / gradgradcheck with complex128 inputs and outputs (real and imaginary parts
checked as separate coordinates, PyTorch's convention for complex gradients), and
complex gradients compared with torch.autograd."""
import pytest
import torch

import ctorch
from harness import assert_same, case, gradcheck, gradgradcheck

C = ctorch.call
backward = ctorch.lib.declare("ct_backward", "st(T,T,b,b)")
grad_of = ctorch.lib.declare("ct_grad", "T&(T)")


def z(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.complex128, generator=g)


def r(*shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, generator=g)


CASES = {
    "mul": (lambda a, b: C("ct_mul", a, b), lambda a, b: a * b, lambda: [z(3), z(3, seed=2)]),
    "div": (lambda a, b: C("ct_div", a, b), lambda a, b: a / b, lambda: [z(3), z(3, seed=2) + 2]),
    "exp": (lambda a: C("ct_exp", a), torch.exp, lambda: [z(4)]),
    "sin": (lambda a: C("ct_sin", a), torch.sin, lambda: [z(4)]),
    "tanh": (lambda a: C("ct_tanh", a), torch.tanh, lambda: [z(4) * 0.5]),
    "sqrt": (lambda a: C("ct_sqrt", a), torch.sqrt, lambda: [z(4) + 3]),
    "log": (lambda a: C("ct_log", a), torch.log, lambda: [z(4) + 3]),
    "reciprocal": (lambda a: C("ct_reciprocal", a), torch.reciprocal, lambda: [z(4) + 3]),
    "abs": (lambda a: C("ct_abs", a), torch.abs, lambda: [z(4)]),  # complex -> real
    "real": (lambda a: C("ct_real", a), torch.real, lambda: [z(4)]),
    "conj_mul": (lambda a: C("ct_mul", C("ct_conj", a), a), lambda a: a.conj() * a, lambda: [z(4)]),
    "mixed_mul": (lambda a, b: C("ct_mul", a, b), lambda a, b: a * b, lambda: [z(3), r(3)]),  # real input, complex out
    "matmul": (lambda a, b: C("ct_matmul", a, b), torch.matmul, lambda: [z(2, 3), z(3, 2, seed=3)]),
    "sum": (lambda a: C("ct_sum", a), torch.sum, lambda: [z(2, 3)]),
    "logaddexp": (lambda a, b: C("ct_logaddexp", a, b), torch.logaddexp, lambda: [z(4), z(4, seed=2)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_complex_gradcheck(name):
    cf, _, mk = CASES[name]
    gradcheck(name, cf, mk())


def test_logaddexp_complex_and_real_gradcheck():
    """A complex and a real operand: the real one's gradient is the real part of its
    complex one. Checked by gradcheck only: PyTorch's own backward of this mix stops
    with an internal check (a complex gradient for a real input), so there is nothing
    to compare with."""
    gradcheck("logaddexp", lambda a, b: C("ct_logaddexp", a, b), [z(3), r(3)])
    gradcheck("logaddexp", lambda a, b: C("ct_logaddexp", a, b), [r(3), z(3)])


@pytest.mark.parametrize("name", ["mul", "div", "exp", "tanh", "matmul", "abs", "logaddexp"])
def test_complex_gradgradcheck(name):
    cf, _, mk = CASES[name]
    gradgradcheck(name, cf, mk())


@pytest.mark.parametrize("name", list(CASES))
def test_complex_gradients_match_torch(name):
    cf, tf, mk = CASES[name]
    ins = mk()
    with case(name):
        tin = [x.clone().requires_grad_() for x in ins]
        cin = [ctorch.from_torch(x, requires_grad=True) for x in ins]
        want = tf(*tin)
        got = cf(*cin)
        assert_same(got, want)
        g = torch.randn_like(want)
        want.backward(g)
        backward(got, ctorch.from_torch(g), False, False)
        for c, t in zip(cin, tin):
            assert_same(grad_of(c), t.grad, what="grad")


def test_gradcheck_catches_wrong_complex_gradient(monkeypatch):
    import harness
    monkeypatch.setattr(harness, "record", lambda op, passed: None)  # a negative control is not an op case
    # a hook that conjugates the gradient makes the analytic Jacobian wrong for
    # non-holomorphic directions: gradcheck must say so
    hook_t = ctorch.lib.declare("ct_register_hook", "i(T,p,p)")
    import ctypes
    HOOK = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    keep = []

    def conj_hook(gptr, user):
        r = C("ct_conj", ctorch.Tensor.borrowed(gptr))
        r = ctorch.lib.ct_to_dtype(C("ct_resolve_conj", r) if ctorch.has("ct_resolve_conj") else r, torch.complex128)
        keep.append(r)
        return r.ptr

    cb = HOOK(conj_hook)

    def f(a):
        y = C("ct_mul", a, a)
        hook_t(y, ctypes.cast(cb, ctypes.c_void_p), None)
        return y

    with pytest.raises(AssertionError, match="Jacobian mismatch"):
        gradcheck("mul", f, [z(3)])
