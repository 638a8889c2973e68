"""In-place ops through views of tensors in an autograd graph (PyTorch's CopySlices):
gradients must equal torch's; views taken before the write must see the new history;
a view of a leaf that requires grad must be refused."""
import pytest
import torch

import ctorch
from harness import assert_same, case, check_error

L = ctorch.lib
mul, add, sum_ = L.binary("ct_mul"), L.binary("ct_add"), L.unary("ct_sum")
exp = L.unary("ct_exp")
select = L.declare("ct_select", "T(T,i,i64)")
slice_ = L.declare("ct_slice", "T(T,i,i64,i64,i64)")
transpose = L.declare("ct_transpose", "T(T,i,i)")
# status-returning functions ("st": a negative status raises CtorchError); ct_copy_ and
# ct_fill_ are declared by the binding already
L.declare("ct_mul_", "st(T,T)")
L.declare("ct_exp_", "st(T)")


def ok(rc):
    assert rc == 0


def grads_match(build_ct, build_torch, shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    leaves = [torch.randn(*s, dtype=torch.float64, generator=g) for s in shapes]
    tl = [x.clone().requires_grad_(True) for x in leaves]
    out_t = build_torch(*tl)
    go = torch.randn(out_t.shape, dtype=torch.float64, generator=g)
    out_t.backward(go)
    cl = [ctorch.from_torch(x).requires_grad_() for x in leaves]
    out_c = build_ct(*cl)
    assert_same(out_c.torch().detach(), out_t.detach())
    out_c.backward(ctorch.from_torch(go))
    for c, t in zip(cl, tl):
        assert_same(c.grad.torch(), t.grad, what="gradient")


def test_mul_on_row_view():
    def t_fn(a):
        x = a * 2
        x[1].mul_(3)
        return x.exp()

    def c_fn(a):
        x = mul(a, 2.0)
        ok(L.ct_mul_(select(x, 0, 1), ctorch.from_torch(torch.tensor(3.0, dtype=torch.float64))))
        return exp(x)
    with case("mul_"):
        grads_match(c_fn, t_fn, [(3, 4)])


def test_copy_into_slice_from_other_leaf():
    """x[:, 1:3] = w  with x built from a, w a second leaf: both get gradients."""
    def t_fn(a, w):
        x = a * 3
        x[:, 1:3].copy_(w * w)
        return x * a

    def c_fn(a, w):
        x = mul(a, 3.0)
        ok(L.ct_copy_(slice_(x, 1, 1, 3, 1), mul(w, w)))
        return mul(x, a)
    with case("copy_"):
        grads_match(c_fn, t_fn, [(4, 5), (4, 2)])


def test_mul_keeps_only_what_gradients_need():
    """y = x * c with c constant saves c, not x (PyTorch's MulBackward0): x may then be
    modified in place and backward still runs, with torch's gradient; div likewise keeps
    a only for b's gradient. With both operands differentiable, x is saved and the same
    write is refused at backward, as in PyTorch."""
    g = torch.Generator().manual_seed(3)
    a0, c0 = torch.randn(3, 4, dtype=torch.float64, generator=g), torch.randn(3, 4, dtype=torch.float64, generator=g)
    one = torch.ones((), dtype=torch.float64)
    for tname, cop in (("mul", mul), ("div", L.binary("ct_div"))):
        with case(tname):
            ta = a0.clone().requires_grad_(True)
            tx = ta * 2
            ty = getattr(torch, tname)(tx, c0 + 1.5)
            tx.add_(1.0)
            (ty * 3).sum().backward()
            ca = ctorch.from_torch(a0).requires_grad_()
            cx = mul(ca, 2.0)
            cy = cop(cx, ctorch.from_torch(c0 + 1.5))
            ok(L.ct_add_(cx, ctorch.from_torch(one)))
            sum_(mul(cy, 3.0)).backward()
            assert_same(ca.grad.torch(), ta.grad, what="gradient")
    with case("mul"):
        ta, tb = a0.clone().requires_grad_(True), c0.clone().requires_grad_(True)
        tx = ta * 2
        ty = tx * tb
        tx.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            ty.sum().backward()
        ca, cb = ctorch.from_torch(a0).requires_grad_(), ctorch.from_torch(c0).requires_grad_()
        cx = mul(ca, 2.0)
        cy = mul(cx, cb)
        ok(L.ct_add_(cx, ctorch.from_torch(one)))
        with pytest.raises(ctorch.CtorchError, match="modified by an inplace operation"):
            sum_(cy).backward()


def test_write_into_tensor_without_grad():
    """z = zeros; z[0] = w: z starts requiring grad through the view."""
    def t_fn(w):
        z = torch.zeros(3, 4, dtype=torch.float64)
        z[0].copy_(w)
        return z * 2

    def c_fn(w):
        z = ctorch.from_torch(torch.zeros(3, 4, dtype=torch.float64))
        ok(L.ct_copy_(select(z, 0, 0), w))
        return mul(z, 2.0)
    with case("copy_"):
        grads_match(c_fn, t_fn, [(4,)])


def test_stale_view_sees_new_history():
    """v is taken before the base is changed through another view; using v afterwards
    must follow the new history (torch regenerates v's grad_fn)."""
    def t_fn(a):
        x = a * 1.5
        v = x.t()
        x[0].mul_(x[1].detach() + 2)
        return v.exp()

    def c_fn(a):
        x = mul(a, 1.5)
        v = transpose(x, 0, 1)
        row1 = ctorch.from_torch(a.torch().detach()[1] * 1.5 + 2)
        ok(L.ct_mul_(select(x, 0, 0), row1))
        return exp(v)
    with case("mul_"):
        grads_match(c_fn, t_fn, [(2, 3)])


def test_fill_and_exp_inplace_on_views():
    def t_fn(a):
        x = a * a
        x[:, 0].fill_(0.5)
        x[1:].exp_()
        return x

    def c_fn(a):
        x = mul(a, a)
        ok(L.ct_fill_(select(x, 1, 0), 0.5))
        ok(L.ct_exp_(slice_(x, 0, 1, 2**62, 1)))
        return x
    with case("fill_"):
        grads_match(c_fn, t_fn, [(3, 3)])


def test_double_backward_through_copyslices():
    a = torch.randn(3, 3, dtype=torch.float64)
    at = a.clone().requires_grad_(True)
    x = at * at
    x[0].mul_(at[1])
    (gt,) = torch.autograd.grad(x.sum(), at, create_graph=True)
    (ggt,) = torch.autograd.grad((gt * gt).sum(), at)
    with case("mul_"):
        ac = ctorch.from_torch(a).requires_grad_()
        xc = mul(ac, ac)
        ok(L.ct_mul_(select(xc, 0, 0), select(ac, 0, 1)))
        sum_(xc).backward(create_graph=True)
        g = ac.grad
        L.ct_set_grad(ac, None)
        sum_(mul(g, g)).backward()
        assert_same(ac.grad.torch(), ggt, what="second derivative")


def test_view_of_leaf_is_refused():
    def t_fn(a):
        a[0].mul_(2)
        return a

    def c_fn(a):
        a.requires_grad_()
        L.ct_mul_(select(a, 0, 0), ctorch.from_torch(torch.tensor(2.0)))  # raises CtorchError
        return a
    check_error("mul_", c_fn, t_fn, [torch.randn(2, 3).requires_grad_(True)], match="view of a leaf")


# add_/sub_/mul_/div_ and add_(alpha) write straight into self when nothing is recorded
# (src/ops/elementwise.c, ct__inplace_binary_direct); every case here must equal torch's
# in-place result, including the ones that must take the general path (partial overlap,
# promotion to a wider dtype, a non-contiguous self, integer division) or fail.
L.declare("ct_add_", "st(T,T)")
L.declare("ct_sub_", "st(T,T)")
L.declare("ct_div_", "st(T,T)")
L.declare("ct_add_alpha_", "st(T,T,d)")


def _inplace_cases():
    f32, f64 = torch.float32, torch.float64
    g = torch.Generator().manual_seed(7)

    def r(*s, dtype=f32):
        return torch.randn(*s, generator=g, dtype=dtype)
    return [
        ("add_", lambda s: s, r(4, 5), r(4, 5)),
        ("mul_", lambda s: s, r(4, 5), r(5)),                       # broadcast b
        ("sub_", lambda s: s, r(4, 5), r(4, 1)),
        ("div_", lambda s: s, r(4, 5), r(4, 5) + 3),
        ("add_", lambda s: s, r(4, 5), torch.tensor(2.5, dtype=f64)),  # 0-dim: no promotion
        ("add_", lambda s: s, r(4, 5), r(4, 5, dtype=f64)),            # promotes: float64 math
        ("mul_", lambda s: s.t(), r(5, 4), r(4, 5)),                   # non-contiguous self
        ("add_", lambda s: s, torch.arange(20).reshape(4, 5), torch.arange(5)),
        ("div_", lambda s: s, torch.arange(20).reshape(4, 5), torch.arange(1, 6)),  # int / int -> error
    ]


def test_inplace_binary_direct():
    for k, (name, view, x, b) in enumerate(_inplace_cases()):
        with case(name):
            want_x = x.clone()
            try:
                getattr(view(want_x), name)(b)
                want_err = None
            except RuntimeError as e:
                want_err = e
            cx = ctorch.from_torch(x.clone())
            target = cx if view(x) is x else L.unary("ct_t")(cx)
            fn = getattr(L, "ct_" + name)
            if want_err is not None:
                try:
                    fn(target, ctorch.from_torch(b))
                except ctorch.CtorchError:
                    continue
                raise AssertionError(f"{name} case {k}: ctorch succeeded where torch raised {want_err}")
            ok(fn(target, ctorch.from_torch(b)))
            assert_same(cx.torch(), want_x, what=f"{name} case {k}")


def test_inplace_add_overlap_and_alias():
    with case("add_"):
        x = torch.arange(10, dtype=torch.float32)
        cx = ctorch.from_torch(x.clone())
        # self += self: the same elements
        ok(L.ct_add_(cx, cx))
        want = x + x
        assert_same(cx.torch(), want)
    # x[1:] += x[:-1]: a partial overlap, refused as torch refuses it
    x = torch.arange(10, dtype=torch.float32)
    check_error("add_", lambda a: L.ct_add_(slice_(a, 0, 1, 10, 1), slice_(a, 0, 0, 9, 1)),
                lambda a: a[1:].add_(a[:-1]), [x], match="single memory location")
    check_error("mul_", lambda a: L.ct_mul_(slice_(a, 0, 0, 5, 1), slice_(a, 0, 2, 7, 1)),
                lambda a: a[0:5].mul_(a[2:7]), [x], match="single memory location")
    with case("add_"):
        x, b = torch.randn(3, 4), torch.randn(3, 4)
        cx = ctorch.from_torch(x.clone())
        ok(L.ct_add_alpha_(cx, ctorch.from_torch(b), -0.5))
        assert_same(cx.torch(), x.add(b, alpha=-0.5))
