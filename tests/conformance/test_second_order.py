"""Second-order gradients for the representative set the core issue names (mul, div,
exp, tanh, matmul, softmax, log_softmax, sum, mean, pow): ct_gradgradcheck in float64,
and the Hessian-vector product through create_graph compared with torch's."""
import pytest
import torch

import ctorch
from harness import assert_same, case, gradgradcheck, need

L = ctorch.lib
mul, div, pow_ = L.binary("ct_mul"), L.binary("ct_div"), L.binary("ct_pow")
exp, tanh, sum_ = L.unary("ct_exp"), L.unary("ct_tanh"), L.unary("ct_sum")
matmul = L.binary("ct_matmul")
softmax = L.declare("ct_softmax", "T(T,i,dt)")
log_softmax = L.declare("ct_log_softmax", "T(T,i,dt)")


def _mean():
    need("ct_mean")
    return L.unary("ct_mean")


def x64(*shape, positive=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, dtype=torch.float64, generator=g)
    return x.abs() + 0.5 if positive else x


CASES = {
    "mul": (lambda a, b: mul(a, b), lambda a, b: a * b, [x64(3, 4), x64(4, seed=1)]),
    "div": (lambda a, b: div(a, b), lambda a, b: a / b, [x64(3, 4), x64(3, 4, positive=True, seed=1)]),
    "exp": (lambda a: exp(a), torch.exp, [x64(2, 5)]),
    "tanh": (lambda a: tanh(a), torch.tanh, [x64(2, 5)]),
    "matmul": (lambda a, b: matmul(a, b), torch.matmul, [x64(2, 3, 4), x64(4, 2, seed=1)]),
    "softmax": (lambda a: softmax(a, 1, None), lambda a: torch.softmax(a, 1), [x64(3, 5)]),
    "log_softmax": (lambda a: log_softmax(a, -1, None), lambda a: torch.log_softmax(a, -1), [x64(3, 5)]),
    "sum": (lambda a: mul(sum_(mul(a, a)), sum_(a)), lambda a: (a * a).sum() * a.sum(), [x64(3, 4)]),
    "mean": (lambda a: mul(_mean()(mul(a, a)), _mean()(a)), lambda a: (a * a).mean() * a.mean(), [x64(3, 4)]),
    "pow": (lambda a, b: pow_(a, b), torch.pow, [x64(3, 4, positive=True), x64(3, 4, seed=1)]),
}


@pytest.mark.parametrize("op", list(CASES))
def test_gradgradcheck(op):
    ct_fn, _, inputs = CASES[op]
    gradgradcheck(op, ct_fn, inputs)


@pytest.mark.parametrize("op", list(CASES))
def test_hessian_vector_product_matches_torch(op):
    """d/dx <grad f(x), v> through create_graph, against torch.autograd.grad."""
    ct_fn, t_fn, inputs = CASES[op]
    with case(op):
        xs = [x.clone().requires_grad_(True) for x in inputs]
        out = t_fn(*xs)
        g_out = torch.randn_like(out)
        grads = torch.autograd.grad(out, xs, g_out, create_graph=True)
        vs = [torch.randn_like(x) for x in xs]
        s = sum((g * v).sum() for g, v in zip(grads, vs))
        want = torch.autograd.grad(s, xs)

        cx = [ctorch.from_torch(x.detach()).requires_grad_() for x in xs]
        cout = ct_fn(*cx)
        cout.backward(ctorch.from_torch(g_out), create_graph=True)
        cs = None
        for c, v in zip(cx, vs):
            term = sum_(mul(c.grad, ctorch.from_torch(v)))
            cs = term if cs is None else L.binary("ct_add")(cs, term)
        for c in cx:  # second backward accumulates into .grad: start from zero
            L.ct_set_grad(c, None)
        cs.backward()
        for c, w in zip(cx, want):
            assert_same(c.grad.torch(), w, what="second-order gradient")
