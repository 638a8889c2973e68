"""group_norm's fused path (float32 / float64 kernel over (sample, group) rows, fused
backward) against torch.nn.functional.group_norm: values and the gradients of every
subset of input, weight and bias; 2-D to 5-D inputs, one group and one channel per
group, rows enough for the threaded loops, non-contiguous inputs, inputs far from zero;
float64 gradcheck and gradgradcheck, second derivatives against torch (the
differentiable backward used under create_graph), and the half types' composite path."""
import zlib

import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck, make

L = ctorch.lib
gn = L.declare("ct_nn_group_norm", "T(T,i64,T,T,d)")

# (input shape, groups)
SHAPES = [((8, 32, 16, 16), 8), ((3, 6, 7), 6), ((1, 12, 5, 4, 3), 1), ((2, 4), 2), ((5, 64, 9), 32),
          ((2, 6, 33), 3), ((4, 3, 1, 1), 1), ((16, 8, 40), 4)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("xs,groups", SHAPES, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
@pytest.mark.parametrize("affine", ["wb", "w", "b", "none"])
def test_group_norm_values_and_grads(dtype, xs, groups, affine):
    g = torch.Generator().manual_seed(zlib.crc32(repr((xs, groups, affine)).encode()) % 1000)
    x = make(xs, dtype, generator=g) * 3 + 1.5
    w, b = make((xs[1],), dtype, generator=g), make((xs[1],), dtype, generator=g)
    tol = {} if dtype == torch.float64 else dict(atol=3e-5, rtol=3e-5)
    if affine == "wb":
        check("group_norm", lambda a, ww, bb: gn(a, groups, ww, bb, 1e-5),
              lambda a, ww, bb: F.group_norm(a, groups, ww, bb), [x, w, b], **tol)
    elif affine == "w":
        check("group_norm", lambda a, ww: gn(a, groups, ww, None, 1e-3),
              lambda a, ww: F.group_norm(a, groups, ww, None, 1e-3), [x, w], **tol)
    elif affine == "b":
        check("group_norm", lambda a, bb: gn(a, groups, None, bb, 1e-5),
              lambda a, bb: F.group_norm(a, groups, None, bb), [x, b], **tol)
    else:
        check("group_norm", lambda a: gn(a, groups, None, None, 1e-5), lambda a: F.group_norm(a, groups), [x], **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_group_norm_partial_grads_and_layouts(dtype):
    """Only the weight and bias (the kernel then writes no input gradient), only the
    input; transposed, strided and expanded inputs and a strided weight."""
    g = torch.Generator().manual_seed(3)
    tol = {} if dtype == torch.float64 else dict(atol=3e-5, rtol=3e-5)
    x = make((4, 8, 6, 5), dtype, generator=g)
    w, b = make((8,), dtype, generator=g), make((8,), dtype, generator=g)
    check("group_norm", lambda ww, bb: gn(x, 4, ww, bb, 1e-5), lambda ww, bb: F.group_norm(x, 4, ww, bb), [w, b],
          **tol)
    check("group_norm", lambda a: gn(a, 4, w, b, 1e-5), lambda a: F.group_norm(a, 4, w, b), [x], **tol)
    for layout in ("transposed", "strided", "expanded"):
        xl = make((4, 8, 6, 5), dtype, layout, generator=g)
        wl = make((8,), dtype, "strided", generator=g)
        check("group_norm", lambda a, ww, bb: gn(a, 2, ww, bb, 1e-5), lambda a, ww, bb: F.group_norm(a, 2, ww, bb),
              [xl, wl, b], **tol)


def test_group_norm_constant_groups_and_large_mean():
    """Constant groups (variance 0, rstd = 1/sqrt(eps)); float32 inputs far from zero
    against a float64 reference (the backward sums deviations from the known mean:
    measured 2x closer to the reference than PyTorch's float32 gradients here)."""
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    x[0, :2] = 2.0
    w, b = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    for eps in (1e-5, 0.5):
        check("group_norm", lambda a, ww, bb: gn(a, 2, ww, bb, eps), lambda a, ww, bb: F.group_norm(a, 2, ww, bb, eps),
              [x, w, b])
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 16, 8, 8, generator=g) * 0.1 + 100
    w, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    check("group_norm", lambda a, ww, bb: gn(a, 4, ww, bb, 1e-5),
          lambda a, ww, bb: F.group_norm(a.double(), 4, ww.double(), bb.double()).float(), [x, w, b],
          atol=2e-3, rtol=0, grad_atol=3e-3, grad_rtol=0)


@pytest.mark.parametrize("xs,groups", [((2, 6, 3, 2), 3), ((3, 4, 5), 2), ((2, 4), 4), ((1, 6, 4), 1)])
@pytest.mark.parametrize("affine", ["wb", "w", "none"])
def test_group_norm_gradcheck(xs, groups, affine):
    g = torch.Generator().manual_seed(7)
    x = make(xs, torch.float64, generator=g)
    w, b = make((xs[1],), torch.float64, generator=g), make((xs[1],), torch.float64, generator=g)
    if affine == "wb":
        fn, ins = (lambda a, ww, bb: gn(a, groups, ww, bb, 1e-5)), [x, w, b]
    elif affine == "w":
        fn, ins = (lambda a, ww: gn(a, groups, ww, None, 1e-5)), [x, w]
    else:
        fn, ins = (lambda a: gn(a, groups, None, None, 1e-5)), [x]
    gradcheck("group_norm", fn, ins)
    gradgradcheck("group_norm", fn, ins)
    if affine == "wb":
        for rg in ([False, True, True], [True, False, False], [False, False, True]):
            gradcheck("group_norm", fn, ins, requires_grad=rg)
            gradgradcheck("group_norm", fn, ins, requires_grad=rg)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_group_norm_fused_and_differentiable_backward_agree(dtype):
    """The fused backward (no graph) and the differentiable one (create_graph) give
    torch's gradients; the second derivatives match torch's; the node is PyTorch's."""
    g = torch.Generator().manual_seed(5)
    xs = (3, 6, 4, 5)
    x = make(xs, dtype, generator=g) * 2 - 1
    w, b, gy = make((6,), dtype, generator=g), make((6,), dtype, generator=g), make(xs, dtype, generator=g)
    v, u = make(xs, dtype, generator=g), make((6,), dtype, generator=g)
    tx, tw, tb, tg = (t.clone().requires_grad_() for t in (x, w, b, gy))
    ty = F.group_norm(tx, 3, tw, tb, 1e-5)
    tgx, tgw, tgb = torch.autograd.grad(ty, [tx, tw, tb], tg, create_graph=True)
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else {}
    with case("group_norm"):
        grads = []
        for create_graph in (False, True):
            cx, cw, cb = (ctorch.from_torch(t, requires_grad=True) for t in (x, w, b))
            cg = ctorch.from_torch(gy, requires_grad=True)
            y = gn(cx, 3, cw, cb, 1e-5)
            assert y.grad_fn_name == "NativeGroupNormBackward0"
            grads.append(ctorch.autograd_grad([y], [cx, cw, cb], [cg], retain_graph=True, create_graph=create_graph))
        for k, (a, c, t) in enumerate(zip(grads[0], grads[1], (tgx, tgw, tgb))):
            assert_same(a, t, what=f"fused backward, grad {k}", **tol)
            assert_same(c, t, what=f"differentiable backward, grad {k}", **tol)
        comp = grads[1]
        cv, cu = ctorch.from_torch(v), ctorch.from_torch(u)
        s = ctorch.call("ct_add", ctorch.call("ct_sum", comp[0] * cv), ctorch.call("ct_sum", comp[1] * cu))
        got = ctorch.autograd_grad([s], [cx, cw, cg])
        want = torch.autograd.grad((tgx * v).sum() + (tgw * u).sum(), [tx, tw, tg])
        for k, (a, t) in enumerate(zip(got, want)):
            assert_same(a, t, what=f"second derivative {k}", **tol)


def test_group_norm_half_types_and_empty():
    """float16 / bfloat16 keep the composite (layer_norm over [N, G, L], then the
    affine); an empty batch; torch's refusals."""
    x, w, b = torch.randn(2, 8, 5, 3), torch.randn(8), torch.randn(8)
    for dt in (torch.bfloat16, torch.float16):
        check("group_norm", lambda a, ww, bb: gn(a, 4, ww, bb, 1e-5), lambda a, ww, bb: F.group_norm(a, 4, ww, bb),
              [x.to(dt), w.to(dt), b.to(dt)], grad=False, atol=0.05, rtol=0.02)
    check("group_norm", lambda a, ww, bb: gn(a, 4, ww, bb, 1e-5), lambda a, ww, bb: F.group_norm(a, 4, ww, bb),
          [torch.randn(0, 8, 3), w, b])
    # refused as torch refuses: empty planes, no channels, one value per group
    for xs, groups in (((2, 8, 0), 4), ((0, 8, 0), 4), ((2, 0, 3), 1), ((1, 4), 4), ((1, 4, 1), 4), ((2, 6, 3), 4)):
        check_error("group_norm", lambda a: gn(a, groups, None, None, 1e-5), lambda a: F.group_norm(a, groups),
                    [torch.randn(*xs)])
