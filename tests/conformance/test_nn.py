"""linear, batch_norm (training with running-stat updates, eval), layer_norm and
embedding against torch.nn.functional: values, gradients, errors, gradcheck."""
import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck

L = ctorch.lib


def d(*s):
    return torch.randn(*s, dtype=torch.float64)


@pytest.mark.parametrize("xs", [(4, 3), (2, 5, 3), (3,)])
def test_linear(xs):
    f = L.declare("ct_nn_linear", "T(T,T,T)")
    x, w, b = d(*xs), d(6, 3), d(6)
    check("linear", f, F.linear, [x, w, b])
    check("linear", lambda a, ww: f(a, ww, None), lambda a, ww: F.linear(a, ww), [x, w])
    gradcheck("linear", f, [x, w, b])
    check_error("linear", lambda a, ww: f(a, ww, None), lambda a, ww: F.linear(a, ww), [d(4, 2), w])


@pytest.mark.parametrize("xs", [(8, 3), (4, 3, 5), (4, 3, 5, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_and_running_stats(xs, affine):
    f = L.declare("ct_nn_batch_norm", "T(T,T,T,T,T,b,d,d)")
    C = xs[1]
    x = d(*xs) * 2 + 1
    w, b = (d(C), d(C)) if affine else (None, None)
    rm_t, rv_t = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)
    rm_c, rv_c = ctorch.from_torch(rm_t.clone()), ctorch.from_torch(rv_t.clone())
    with case("batch_norm"):
        want = F.batch_norm(x, rm_t, rv_t, w, b, training=True, momentum=0.1, eps=1e-5)
        got = f(x, rm_c, rv_c, w, b, True, 0.1, 1e-5)
        assert_same(got, want)
        assert_same(rm_c, rm_t, what="running_mean")
        assert_same(rv_c, rv_t, what="running_var")
        # eval with the updated statistics
        want = F.batch_norm(x, rm_t, rv_t, w, b, training=False, eps=1e-5)
        assert_same(f(x, rm_c, rv_c, w, b, False, 0.1, 1e-5), want)
    ins = [x] + ([w, b] if affine else [])
    check("batch_norm", lambda a, *wb: f(a, None, None, *(wb or (None, None)), True, 0.1, 1e-5),
          lambda a, *wb: F.batch_norm(a, None, None, *(wb or (None, None)), training=True), ins)
    gradcheck("batch_norm", lambda a, *wb: f(a, None, None, *(wb or (None, None)), True, 0.1, 1e-5), ins)
    if xs == (4, 3, 5):
        gradgradcheck("batch_norm", lambda a, *wb: f(a, None, None, *(wb or (None, None)), True, 0.1, 1e-5), ins)


# float32/float64 run through the fused kernels (src/cpu/batchnorm.c): statistics and
# gradient sums in double as PyTorch's CPU kernels; the eval-mode backward; a
# channels-last input; create_graph through the differentiable formula.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_fused(dtype, training):
    f = L.declare("ct_nn_batch_norm", "T(T,T,T,T,T,b,d,d)")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 16, 14, 14, generator=g, dtype=dtype) * 3 + 2
    w, b = torch.randn(16, generator=g, dtype=dtype), torch.randn(16, generator=g, dtype=dtype)
    rm_t, rv_t = torch.randn(16, generator=g, dtype=dtype), torch.rand(16, generator=g, dtype=dtype) + 0.5
    rm_c, rv_c = ctorch.from_torch(rm_t.clone()), ctorch.from_torch(rv_t.clone())
    with case("batch_norm"):
        want = F.batch_norm(x, rm_t, rv_t, w, b, training=training, momentum=0.2, eps=1e-3)
        got = f(x, rm_c, rv_c, w, b, training, 0.2, 1e-3)
        assert_same(got, want)
        assert_same(rm_c, rm_t, what="running_mean")
        assert_same(rv_c, rv_t, what="running_var")
    rm2, rv2 = rm_t.clone(), rv_t.clone()
    # torch's float32 eval-mode weight gradient (a sum over 1568 products) is itself off
    # the float64 value by 6.1e-5 here (ctorch's, summed in double: 2.3e-5), more than
    # the default float32 atol of 1e-5: compare the gradients at that precision
    gtol = dict(grad_atol=1e-4, grad_rtol=1e-5) if dtype == torch.float32 and not training else {}
    check("batch_norm", lambda a, ww, bb: f(a, ctorch.from_torch(rm2.clone()), ctorch.from_torch(rv2.clone()), ww, bb,
                                          training, 0.1, 1e-5),
          lambda a, ww, bb: F.batch_norm(a, rm2.clone(), rv2.clone(), ww, bb, training=training), [x, w, b], **gtol)
    if dtype == torch.float32 and not training:  # and ctorch's is the closer one to the float64 value
        wt, w64 = w.clone().requires_grad_(), w.double().requires_grad_()
        gy = torch.randn(x.shape, generator=g)
        F.batch_norm(x, rm2, rv2, wt, b, training=False).backward(gy)
        F.batch_norm(x.double(), rm2.double(), rv2.double(), w64, b.double(), training=False).backward(gy.double())
        cw = ctorch.from_torch(w).requires_grad_()
        f(ctorch.from_torch(x), ctorch.from_torch(rm2), ctorch.from_torch(rv2), cw, ctorch.from_torch(b), False, 0.1,
          1e-5).backward(ctorch.from_torch(gy))
        assert (cw.grad.torch().double() - w64.grad).abs().max() <= (wt.grad.double() - w64.grad).abs().max()
    xl = x.to(memory_format=torch.channels_last)
    check("batch_norm", lambda a: f(a, None, None, None, None, True, 0.1, 1e-5),
          lambda a: F.batch_norm(a, None, None, training=True), [xl])
    if dtype == torch.float64:
        xs = x[:3, :4, :3, :5].contiguous()
        rm3, rv3 = rm_t[:4].clone(), rv_t[:4].clone()
        fn = lambda a, ww, bb: f(a, ctorch.from_torch(rm3.clone()), ctorch.from_torch(rv3.clone()), ww, bb,  # noqa
                                 training, 0.1, 1e-5)
        gradcheck("batch_norm", fn, [xs, w[:4].clone(), b[:4].clone()])
        gradgradcheck("batch_norm", fn, [xs, w[:4].clone(), b[:4].clone()])


def test_batch_norm_errors():
    f = L.declare("ct_nn_batch_norm", "T(T,T,T,T,T,b,d,d)")
    check_error("batch_norm", lambda a: f(a, None, None, None, None, True, 0.1, 1e-5),
                lambda a: F.batch_norm(a, None, None, training=True), [d(1, 3)])


@pytest.mark.parametrize("xs,ns", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((3, 7), (7,))])
def test_layer_norm(xs, ns):
    f = L.declare("ct_nn_layer_norm", "T(T,shape,T,T,d)")
    x, w, b = d(*xs), d(*ns), d(*ns)
    check("layer_norm", lambda a, ww, bb: f(a, ns, ww, bb, 1e-5), lambda a, ww, bb: F.layer_norm(a, ns, ww, bb), [x, w, b])
    check("layer_norm", lambda a: f(a, ns, None, None, 1e-5), lambda a: F.layer_norm(a, ns), [x.float()])
    gradcheck("layer_norm", lambda a, ww, bb: f(a, ns, ww, bb, 1e-5), [x, w, b])
    gradgradcheck("layer_norm", lambda a, ww, bb: f(a, ns, ww, bb, 1e-5), [x, w, b])
    check_error("layer_norm", lambda a: f(a, (9,), None, None, 1e-5), lambda a: F.layer_norm(a, (9,)), [x])


@pytest.mark.parametrize("pad", [None, 2, -1])
def test_embedding(pad):
    f = L.declare("ct_nn_embedding", "T(T,T,i64)")
    w = d(6, 4)
    idx = torch.tensor([[0, 2, 5], [2, 2, 1]])
    none = -(1 << 63)
    check("embedding", lambda ww: f(idx, ww, none if pad is None else pad),
          lambda ww: F.embedding(idx, ww, padding_idx=pad), [w])
    check_error("embedding", lambda ww: f(torch.tensor([1.0]), ww, none), lambda ww: F.embedding(torch.tensor([1.0]), ww),
                [w])


def test_group_rms_instance_norm_functional():
    gn = L.declare("ct_nn_group_norm", "T(T,i64,T,T,d)")
    rms = L.declare("ct_nn_rms_norm", "T(T,shape,T,d)")
    inn = L.declare("ct_nn_instance_norm", "T(T,T,T,T,T,b,d,d)")
    x, w, b = d(3, 6, 4), d(6), d(6)
    check("group_norm", lambda a, ww, bb: gn(a, 3, ww, bb, 1e-5), lambda a, ww, bb: F.group_norm(a, 3, ww, bb), [x, w, b])
    gradcheck("group_norm", lambda a, ww, bb: gn(a, 3, ww, bb, 1e-5), [x, w, b])
    check_error("group_norm", lambda a: gn(a, 4, None, None, 1e-5), lambda a: F.group_norm(a, 4), [x])
    # weight and bias, one, none; 4-D float32, a strided input, an empty batch (more in
    # test_group_norm.py)
    x4 = torch.randn(2, 8, 5, 3)
    for ww, bb in ((torch.randn(8), torch.randn(8)), (torch.randn(8), None), (None, torch.randn(8)), (None, None)):
        check("group_norm", lambda a: gn(a, 4, ww, bb, 1e-5), lambda a: F.group_norm(a, 4, ww, bb), [x4])
        check("group_norm", lambda a: gn(a, 2, ww, bb, 1e-5), lambda a: F.group_norm(a, 2, ww, bb),
              [x4.transpose(2, 3)])
    check("group_norm", lambda a, ww, bb: gn(a, 3, ww, bb, 1e-5), lambda a, ww, bb: F.group_norm(a, 3, ww, bb),
          [d(0, 6, 4), w, b])
    w4 = d(4)
    check("rms_norm", lambda a, ww: rms(a, (4,), ww, -1.0), lambda a, ww: F.rms_norm(a, (4,), ww), [x, w4])
    check("rms_norm", lambda a: rms(a, (4,), None, 1e-3), lambda a: F.rms_norm(a, (4,), eps=1e-3), [x.float()])
    gradcheck("rms_norm", lambda a, ww: rms(a, (4,), ww, 1e-6), [x, w4])
    check("instance_norm", lambda a, ww, bb: inn(a, None, None, ww, bb, True, 0.1, 1e-5),
          lambda a, ww, bb: F.instance_norm(a, weight=ww, bias=bb), [x, w, b])
    gradcheck("instance_norm", lambda a: inn(a, None, None, None, None, True, 0.1, 1e-5), [x])


@pytest.mark.parametrize("pad", [None, 0, 3])
def test_embedding_backward_rows(pad):
    """The weight gradient is one zeroed table with the output gradient's rows added at
    the indices (repeats summed, padding row left at zero): large enough to run on
    several threads, float32 values vs torch; float64 gradcheck and gradgradcheck."""
    f = L.declare("ct_nn_embedding", "T(T,T,i64)")
    none = -(1 << 63)
    p = none if pad is None else pad
    w = torch.randn(3000, 64)
    idx = torch.randint(0, 3000, (32, 128))
    idx[0, :10] = 3  # repeats, some on the padding row
    check("embedding", lambda ww: f(idx, ww, p), lambda ww: F.embedding(idx, ww, padding_idx=pad), [w])
    ws, ids = d(7, 3), torch.tensor([[1, 3, 3], [0, 6, 3]], dtype=torch.int32)
    check("embedding", lambda ww: f(ids, ww, p), lambda ww: F.embedding(ids, ww, padding_idx=pad), [ws])
    # the padding row has no gradient, so the first-order check uses indices without it;
    # the second-order one differentiates the backward itself (padding skipped) through E * E
    gradcheck("embedding", lambda ww: f(ids if pad is None else ids[ids != pad], ww, p), [ws])
    mul = L.binary("ct_mul")
    gradgradcheck("embedding", lambda ww: mul(f(ids, ww, p), f(ids, ww, p)), [ws])


@pytest.mark.parametrize("pad", [None, 3])
def test_embedding_double_backward_wrt_grad_output(pad):
    """The weight gradient as a function of the output gradient (create_graph): its own
    gradient is the gathered rows, zero where the index is padding_idx, as torch."""
    f = L.declare("ct_nn_embedding", "T(T,T,i64)")
    mul, sum_ = L.binary("ct_mul"), L.unary("ct_sum")
    w, ids = d(7, 3), torch.tensor([[1, 3, 3], [0, 6, 3]])
    g, v = d(2, 3, 3), d(7, 3)
    with case("embedding"):
        tw, tg = w.clone().requires_grad_(), g.clone().requires_grad_()
        (gw,) = torch.autograd.grad(F.embedding(ids, tw, padding_idx=pad), tw, tg, create_graph=True)
        (want,) = torch.autograd.grad((gw * v).sum(), tg)
        cw, cg = ctorch.from_torch(w).requires_grad_(), ctorch.from_torch(g).requires_grad_()
        f(ids, cw, -(1 << 63) if pad is None else pad).backward(cg, create_graph=True)
        s = sum_(mul(cw.grad, ctorch.from_torch(v)))
        L.ct_set_grad(cw, None)
        s.backward()
        assert_same(cg.grad.torch(), want, what="gradient of the weight gradient w.r.t. the output gradient")
