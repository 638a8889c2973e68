"""layer_norm's fused path (float32 / float64 row kernel, fused backward) against
torch.nn.functional.layer_norm: values, gradients of input, weight and bias, with and
without weight/bias, multi-dim normalized_shape, non-contiguous inputs, row sizes from 1
to 1024, rows enough for the threaded loops; float64 gradcheck and gradgradcheck (the
differentiable backward used under create_graph), and second derivatives vs torch."""
import os
import subprocess
import sys
import tempfile
import zlib

import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import assert_same, case, check, gradcheck, gradgradcheck, make, rerun_with_env

L = ctorch.lib
f = L.declare("ct_nn_layer_norm", "T(T,shape,T,T,d)")

# (input shape, normalized_shape)
SHAPES = [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((5, 1), (1,)), ((7, 3), (3,)), ((3, 1024), (1024,)),
          ((2, 3, 4), (2, 3, 4)), ((6,), (6,)), ((64, 1024), (1024,)), ((40, 2, 512), (2, 512)),
          # row sums go 32 floats / 16 doubles at a time, then a tail; the last pass in
          # blocks of 64: rows on either side of those sizes
          ((3, 15), (15,)), ((3, 16), (16,)), ((3, 17), (17,)), ((5, 31), (31,)), ((4, 32), (32,)),
          ((3, 33), (33,)), ((3, 64), (64,)), ((9, 65), (65,)), ((2, 100), (100,)), ((200, 129), (129,))]


def ln(ns, eps=1e-5):
    return lambda a, ww=None, bb=None: f(a, ns, ww, bb, eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ns", SHAPES, ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("affine", ["wb", "w", "b", "none"])
def test_layer_norm_values_and_grads(dtype, xs, ns, affine):
    # a stable seed per case: hash() of a tuple with a str changes with every Python process
    g = torch.Generator().manual_seed(zlib.crc32(repr((xs, ns, affine)).encode()) % 1000)
    x = make(xs, dtype, generator=g) * 3 + 1.5
    w, b = make(ns, dtype, generator=g), make(ns, dtype, generator=g)
    tol = {}
    if ns == (1,) and dtype == torch.float32:
        # One element per row: x - mean is exactly 0, but torch's backward forms x * rstd - mean * rstd
        # with a fused multiply-add, leaving a rounding residue of x * rstd (rstd = 1/sqrt(eps) = 316)
        # in the weight's gradient, ~3e-5 where the exact value (ours) is 0.
        tol = dict(grad_atol=1e-3, grad_rtol=1.3e-6)
    if affine == "wb":
        check("layer_norm", lambda a, ww, bb: f(a, ns, ww, bb, 1e-5), lambda a, ww, bb: F.layer_norm(a, ns, ww, bb),
              [x, w, b], **tol)
    elif affine == "w":
        check("layer_norm", lambda a, ww: f(a, ns, ww, None, 1e-5), lambda a, ww: F.layer_norm(a, ns, ww), [x, w],
              **tol)
    elif affine == "b":
        check("layer_norm", lambda a, bb: f(a, ns, None, bb, 1e-5), lambda a, bb: F.layer_norm(a, ns, None, bb),
              [x, b], **tol)
    else:
        check("layer_norm", lambda a: f(a, ns, None, None, 1e-5), lambda a: F.layer_norm(a, ns), [x], **tol)


def _ct_layer_norm_grads(x, w, b, ns, go):
    """ctorch's layer_norm output and the gradients of x, w, b for grad_output go"""
    cx, cw, cb = (ctorch.from_torch(t, requires_grad=True) for t in (x, w, b))
    y = f(cx, ns, cw, cb, 1e-5)
    y.backward(ctorch.from_torch(go))
    return [t.torch() for t in (y, cx.grad, cw.grad, cb.grad)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("xs,ns", [((4, 6), (6,)), ((2, 3, 4, 5), (4, 5)), ((5, 1), (1,)), ((3, 1024), (1024,)),
                                   ((64, 1024), (1024,)), ((200, 129), (129,))], ids=lambda v: "x".join(map(str, v)))
def test_layer_norm_half_types(dtype, xs, ns):
    """float16 / bfloat16 through the fused kernel: each row widened, float32 statistics
    and arithmetic, rounded once (cpu/norm.c layer_norm_half, and the backward's rows):
    forward and all three gradients bit for bit ctorch's float32 results on the widened
    tensors rounded to the half type; PyTorch's values, and gradients at least as close
    to the float64 ones as PyTorch's."""
    g = torch.Generator().manual_seed(zlib.crc32(repr((xs, ns)).encode()) % 1000)
    x = (make(xs, torch.float32, generator=g) * 3 + 1.5).to(dtype)
    w, b = make(ns, torch.float32, generator=g).to(dtype), make(ns, torch.float32, generator=g).to(dtype)
    go = torch.randn(xs, generator=g).to(dtype)
    with case("layer_norm"):
        half = _ct_layer_norm_grads(x, w, b, ns, go)
        wide = _ct_layer_norm_grads(x.float(), w.float(), b.float(), ns, go.float())
        for k, (h, f32) in enumerate(zip(half, wide)):
            assert h.dtype == dtype, k
            want = f32.to(dtype)
            same = h.view(torch.int16) == want.view(torch.int16)
            assert same.all(), f"output {k}: {(~same).sum().item()} values differ from the float32 result rounded"
    # against PyTorch: the values within the half type's tolerance; the gradients no
    # further from the float64 ones than PyTorch's own half-type gradients (plus one
    # rounding): PyTorch rounds the row statistics to the half type before its backward,
    # ctorch keeps them in float32, so its dx, dw, db are the more accurate ones (up to
    # 6x on [64, 1024])
    with case("layer_norm"):
        def torch_grads(dt):
            t = [v.to(dt).detach().requires_grad_() for v in (x, w, b)]
            y = F.layer_norm(t[0], ns, t[1], t[2])
            y.backward(go.to(dt))
            return [y.detach()] + [v.grad for v in t]
        th, t64 = torch_grads(dtype), torch_grads(torch.float64)
        torch.testing.assert_close(half[0], th[0])
        for k in range(1, 4):
            err = (half[k].double() - t64[k]).abs().max().item()
            terr = (th[k].double() - t64[k]).abs().max().item()
            one = torch.finfo(dtype).eps * t64[k].abs().max().item()
            assert err <= terr + one, f"gradient {k}: error {err:.3g} against float64, PyTorch's {terr:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded"])
def test_layer_norm_non_contiguous(dtype, layout):
    g = torch.Generator().manual_seed(3)
    for xs, ns in [((5, 8), (8,)), ((3, 4, 6), (6,)), ((3, 4, 6), (4, 6))]:
        x = make(xs, dtype, layout, generator=g)
        w = make(ns, dtype, "strided", generator=g)  # weight and bias non-contiguous too
        b = make(ns, dtype, generator=g)
        check("layer_norm", lambda a, ww, bb: f(a, ns, ww, bb, 1e-5), lambda a, ww, bb: F.layer_norm(a, ns, ww, bb),
              [x, w, b])


def test_layer_norm_eps_and_constant_rows():
    # constant rows (variance 0) and a large eps
    x = torch.tensor([[2.0, 2.0, 2.0], [1.0, -1.0, 3.0]], dtype=torch.float64)
    w, b = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64), torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64)
    for eps in (1e-5, 0.5):
        for dt in (torch.float32, torch.float64):
            check("layer_norm", lambda a, ww, bb: f(a, (3,), ww, bb, eps),
                  lambda a, ww, bb: F.layer_norm(a, (3,), ww, bb, eps), [x.to(dt), w.to(dt), b.to(dt)])


@pytest.mark.parametrize("xs,ns", [((3, 5), (5,)), ((2, 3, 4), (3, 4)), ((4, 1), (1,)), ((2, 3), (2, 3)),
                                   ((2, 9, 4), (4,))])
@pytest.mark.parametrize("affine", ["wb", "w", "b", "none"])
def test_layer_norm_gradcheck(xs, ns, affine):
    g = torch.Generator().manual_seed(7)
    x = make(xs, torch.float64, generator=g)
    w, b = make(ns, torch.float64, generator=g), make(ns, torch.float64, generator=g)
    if affine == "wb":
        fn, ins = (lambda a, ww, bb: f(a, ns, ww, bb, 1e-5)), [x, w, b]
    elif affine == "w":
        fn, ins = (lambda a, ww: f(a, ns, ww, None, 1e-5)), [x, w]
    elif affine == "b":
        fn, ins = (lambda a, bb: f(a, ns, None, bb, 1e-5)), [x, b]
    else:
        fn, ins = (lambda a: f(a, ns, None, None, 1e-5)), [x]
    gradcheck("layer_norm", fn, ins)
    gradgradcheck("layer_norm", fn, ins)


def test_layer_norm_gradcheck_non_contiguous_and_partial():
    g = torch.Generator().manual_seed(11)
    x = make((5, 4), torch.float64, "transposed", generator=g)
    w, b = make((4,), torch.float64, "strided", generator=g), make((4,), torch.float64, generator=g)
    fn = lambda a, ww, bb: f(a, (4,), ww, bb, 1e-5)  # noqa: E731
    gradcheck("layer_norm", fn, [x, w, b])
    gradgradcheck("layer_norm", fn, [x, w, b])
    # only some inputs require grad
    for rg in ([False, True, True], [True, False, False], [False, True, False], [False, False, True]):
        gradcheck("layer_norm", fn, [x, w, b], requires_grad=rg)
        gradgradcheck("layer_norm", fn, [x, w, b], requires_grad=rg)


def _grads(x, w, b, ns, gy, create_graph):
    """ctorch's grads of layer_norm(x, ns, w, b) for grad_output gy; with create_graph also
    the grads of sum(gx * v) + sum(gw * u) w.r.t. x, w and gy."""
    cx, cw, cb = (ctorch.from_torch(t, requires_grad=True) for t in (x, w, b))
    cg = ctorch.from_torch(gy, requires_grad=True)
    y = f(cx, ns, cw, cb, 1e-5)
    return cx, cw, cb, cg, y, ctorch.autograd_grad([y], [cx, cw, cb], [cg], retain_graph=True,
                                                   create_graph=create_graph)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("xs,ns", [((6, 7), (7,)), ((2, 3, 8), (3, 8)), ((3, 1024), (1024,))])
def test_layer_norm_fused_and_differentiable_backward_agree(dtype, xs, ns):
    """The fused backward (no graph) and the differentiable one (create_graph) give the
    same gradients, both those of torch; and the second derivatives match torch's."""
    g = torch.Generator().manual_seed(5)
    x = make(xs, dtype, generator=g) * 2 - 1
    w, b, gy = make(ns, dtype, generator=g), make(ns, dtype, generator=g), make(xs, dtype, generator=g)
    v, u = make(xs, dtype, generator=g), make(ns, dtype, generator=g)
    tx, tw, tb, tg = (t.clone().requires_grad_() for t in (x, w, b, gy))
    ty = F.layer_norm(tx, ns, tw, tb, 1e-5)
    tgx, tgw, tgb = torch.autograd.grad(ty, [tx, tw, tb], tg, create_graph=True)
    with case("layer_norm"):
        _, _, _, _, _, fused = _grads(x, w, b, ns, gy, False)
        cx, cw, cb, cg, _, comp = _grads(x, w, b, ns, gy, True)
        for k, (a, c, t) in enumerate(zip(fused, comp, (tgx, tgw, tgb))):
            assert_same(a, t, what=f"fused backward, grad {k}")
            assert_same(c, t, what=f"differentiable backward, grad {k}")
        # second order: d/d(x, w, gy) of sum(gx * v) + sum(gw * u)
        cv, cu = ctorch.from_torch(v), ctorch.from_torch(u)
        s = ctorch.call("ct_add", ctorch.call("ct_sum", comp[0] * cv), ctorch.call("ct_sum", comp[1] * cu))
        got = ctorch.autograd_grad([s], [cx, cw, cg])
        want = torch.autograd.grad((tgx * v).sum() + (tgw * u).sum(), [tx, tw, tg])
        tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else {}
        for k, (a, t) in enumerate(zip(got, want)):
            assert_same(a, t, what=f"second derivative {k}", **tol)


def test_layer_norm_grad_of_sum_and_module_dtypes():
    # y.sum() hands backward an expanded (stride 0) grad_output
    x = torch.randn(5, 9, dtype=torch.float32)
    w, b = torch.randn(9), torch.randn(9)
    check("layer_norm", lambda a, ww, bb: ctorch.call("ct_sum", f(a, (9,), ww, bb, 1e-5)),
          lambda a, ww, bb: F.layer_norm(a, (9,), ww, bb).sum(), [x, w, b], atol=1e-4, rtol=1e-5)
    # half types keep the composite path
    for dt in (torch.bfloat16, torch.float16):
        check("layer_norm", lambda a, ww, bb: f(a, (9,), ww, bb, 1e-5), lambda a, ww, bb: F.layer_norm(a, (9,), ww, bb),
              [x.to(dt), w.to(dt), b.to(dt)], grad=False, atol=0.05, rtol=0.02)


STREAM_SHAPES = [((200, 129), (129,)), ((3, 17), (17,)), ((5, 1), (1,)), ((64, 1024), (1024,)),
                 ((2, 3, 4, 5), (4, 5))]


def _stream_outputs():
    """layer_norm forward of STREAM_SHAPES in float32 and float64, with and without
    weight and bias: {name: output}"""
    out = {}
    for dtype in (torch.float32, torch.float64):
        for xs, ns in STREAM_SHAPES:
            g = torch.Generator().manual_seed(zlib.crc32(repr((xs, ns)).encode()) % 1000)
            x = make(xs, dtype, generator=g) * 3 + 1.5
            w, b = make(ns, dtype, generator=g), make(ns, dtype, generator=g)
            for k, (ww, bb) in enumerate([(w, b), (None, None)]):
                y = f(ctorch.from_torch(x), ns, ww if ww is None else ctorch.from_torch(ww),
                      bb if bb is None else ctorch.from_torch(bb), 1e-5)
                out[f"{dtype}-{xs}-{k}"] = y.torch().clone()
    return out


def test_layer_norm_streaming_path():
    """Where a layer_norm's input and output together exceed half the last-level cache,
    the forward writes each row through an L1 scratch row and non-temporal stores
    (cpu/norm.c, cpu/loops.h ct__stream_copy). CTORCH_LLC_BYTES=1 makes every call take
    that path: this file again in a child process with it (values and gradients against
    PyTorch, row sizes on both sides of the 16-byte alignment of the stores), and the
    outputs of a second child bit for bit those of this process's direct path."""
    if os.environ.get("CTORCH_LLC_BYTES"):
        pytest.skip("a child already")
    with case("layer_norm"):
        rerun_with_env(__file__, {"CTORCH_LLC_BYTES": "1"}, deselect="streaming_path")
        with tempfile.TemporaryDirectory() as d:
            script = ("import sys, torch; sys.path[:0] = sys.argv[2:]; import test_layer_norm as t; "
                      "torch.save(t._stream_outputs(), sys.argv[1])")
            here = os.path.dirname(os.path.abspath(__file__))
            root = os.path.dirname(os.path.dirname(here))
            env = dict(os.environ, CTORCH_LLC_BYTES="1")
            p = subprocess.run([sys.executable, "-c", script, os.path.join(d, "y.pt"), here,
                                os.path.join(root, "python")], env=env, capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, p.stderr[-3000:]
            streamed = torch.load(os.path.join(d, "y.pt"))
        direct = _stream_outputs()
        assert streamed.keys() == direct.keys()
        for k in direct:
            assert torch.equal(streamed[k], direct[k]), k
