"""Conformance of activation functions (include/ctorch/activation.h) against PyTorch:
values for float dtypes (and integer dtypes where torch supports or rejects them),
non-contiguous / 0-dim / empty inputs, parameters, errors, gradients vs torch,
gradcheck and gradgradcheck in float64, softmax / log_softmax over every dim with
dtype casts, glu, dropout."""
import ctypes
import math

import pytest
import torch
import torch.nn.functional as F

from _legacy import L, P, Noncontig, assert_same, check_forward, check_grads, fn, from_ct, last_error, sample, to_ct
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import ew_gradcheck as gradcheck
from harness import case

D = ctypes.c_double
I = ctypes.c_int
B = ctypes.c_bool
NAN = float("nan")
fn("ct_leaky_relu").argtypes = [P, D]
fn("ct_elu").argtypes = [P, D]
fn("ct_celu").argtypes = [P, D]
fn("ct_gelu").argtypes = [P, B]
fn("ct_softplus").argtypes = [P, D, D]
fn("ct_hardtanh").argtypes = [P, D, D]
fn("ct_threshold").argtypes = [P, D, D]
fn("ct_threshold_").argtypes = [P, D, D]
fn("ct_threshold_backward").argtypes = [P, P, D]
fn("ct_softmax").argtypes = [P, I, I]
fn("ct_log_softmax").argtypes = [P, I, I]
fn("ct_glu").argtypes = [P, I]
NUM_DTYPES = 12
DTI = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
       torch.float32, torch.float64, torch.complex64, torch.complex128]

# (ctorch name, extra C args, torch function)
ACTS = [
    ("relu", (), torch.relu),
    ("relu6", (), F.relu6),
    ("leaky_relu", (0.01,), lambda x: F.leaky_relu(x, 0.01)),
    ("leaky_relu", (0.3,), lambda x: F.leaky_relu(x, 0.3)),
    ("elu", (1.0,), lambda x: F.elu(x, 1.0)),
    ("elu", (0.4,), lambda x: F.elu(x, 0.4)),
    ("selu", (), F.selu),
    ("celu", (1.0,), lambda x: F.celu(x, 1.0)),
    ("celu", (2.5,), lambda x: F.celu(x, 2.5)),
    ("gelu", (False,), F.gelu),
    ("gelu", (True,), lambda x: F.gelu(x, approximate="tanh")),
    ("silu", (), F.silu),
    ("mish", (), F.mish),
    ("softplus", (1.0, 20.0), F.softplus),
    ("softplus", (2.0, 1.5), lambda x: F.softplus(x, 2.0, 1.5)),
    ("softplus", (-1.0, 20.0), lambda x: F.softplus(x, -1.0, 20.0)),
    ("softsign", (), F.softsign),
    ("hardtanh", (-1.0, 1.0), F.hardtanh),
    ("hardtanh", (-0.5, 2.0), lambda x: F.hardtanh(x, -0.5, 2.0)),
    ("threshold", (1.5, -2.0), lambda x: F.threshold(x, 1.5, -2.0)),
    ("threshold", (0.0, 0.0), lambda x: F.threshold(x, 0.0, 0.0)),
    ("hardsigmoid", (), F.hardsigmoid),
    ("hardswish", (), F.hardswish),
    ("logsigmoid", (), F.logsigmoid),
]
IDS = [f"{n}{e}" for n, e, _ in ACTS]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.bool,
          torch.complex64]


def run(name, extra, tfn, x, nc=False):
    """One case under name: ctorch's value (or failure) for x matches torch's."""
    with case(name):
        _run(name, extra, tfn, x, nc)


def _run(name, extra, tfn, x, nc):
    arg = Noncontig(x) if nc else x
    try:
        ref = tfn(x)
    except Exception:
        h = fn("ct_" + name)(to_ct(arg), *extra)
        assert not h, f"{name} succeeded for {x.dtype} where torch raised"
        assert last_error()
        return
    h = fn("ct_" + name)(to_ct(arg), *extra)
    assert h, f"{name} {x.dtype}: {last_error()}"
    assert_same(from_ct(h), ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_values(act, dtype):
    name, extra, tfn = act
    torch.manual_seed(1)
    x = sample(dtype, (5, 7))
    if name == "gelu" and dtype.is_floating_point and \
            torch.isnan(F.gelu(torch.full((64,), float("inf"), dtype=dtype), approximate="tanh" if extra[0] else "none")).any():
        # torch's vectorised kernel gives gelu(+inf) = nan for some dtypes, depending on the
        # CPU capability it dispatches to (its scalar tail gives inf); ctorch gives the
        # limit, inf. Compare away from +inf where torch's kernel gives nan.
        x = x.nan_to_num(nan=NAN, posinf=7.0)
    run(name, extra, tfn, x)
    run(name, extra, tfn, sample(dtype, (4, 6), special=False), nc=True)
    run(name, extra, tfn, sample(dtype, ()))
    run(name, extra, tfn, sample(dtype, (0, 4)))


@pytest.mark.parametrize("act", ACTS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16], ids=str)
def test_long_and_extremes(act, dtype):
    """Long contiguous runs (vectorised path incl. tails), large magnitudes, specials."""
    name, extra, tfn = act
    x = torch.cat([torch.linspace(-60, 60, 1001, dtype=dtype),
                   torch.tensor([0.0, -0.0, math.inf, -math.inf, NAN, -3.0, 3.0, 6.0, 1e-7, -1e-7], dtype=dtype)])
    if name == "gelu" and torch.isnan(tfn(torch.full((64,), math.inf, dtype=dtype))).any():
        # torch's float32 and bfloat16 CPU kernels give gelu(+inf) = nan (float64: inf);
        # ctorch gives inf
        x = x[~x.isinf()]
    for n in (x.numel(), 13):
        run(name, extra, tfn, x[-n:])


def grad_input(shape):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(shape, dtype=torch.float64, generator=g) * 2.5
    # keep away from kinks (0, +-3, 6, clamp bounds, softplus threshold) for finite differences
    for k in (0.0, 3.0, -3.0, 6.0, -1.0, 1.0, -0.5, 2.0, 0.75, 1.5):
        x = torch.where((x - k).abs() < 0.03, x + 0.07, x)
    return x


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_grads(act):
    name, extra, tfn = act
    check_grads("ct_" + name, tfn, [grad_input((4, 5))], extra=extra)
    check_grads("ct_" + name, tfn, [grad_input(())], extra=extra)


@pytest.mark.parametrize("act", ACTS, ids=IDS)
def test_gradcheck(act):
    name, extra, _ = act
    gradcheck("ct_" + name, [grad_input((3, 4))], extra=extra, second_order=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_relu_signed_zero_and_nan_bits(dtype):
    """relu is PyTorch's clamp_min(x, 0): -0 stays -0, NaN stays NaN, negatives give +0
    (assert_same does not see the sign of zero: compared as bits here)"""
    x = torch.tensor([-0.0, 0.0, -1.5, NAN, 2.0, -NAN, -1e-30], dtype=dtype)
    with case("relu"):
        got, want = from_ct(fn("ct_relu")(to_ct(x))), torch.relu(x)
        view = {torch.float64: torch.int64, torch.float32: torch.int32}.get(dtype, torch.int16)
        assert torch.equal(got.view(view), want.view(view)), f"{got} vs {want}"


def test_relu_inplace():
    x = torch.randn(4, 5)
    with case("relu_"):
        t = to_ct(x)
        assert fn("ct_relu_")(t) == 0
        assert_same(from_ct(t), torch.relu(x))
    # non-leaf in place keeps autograd history
    x64 = torch.randn(6, dtype=torch.float64)
    with case("relu_"):
        xt = x64.clone().requires_grad_(True)
        y = xt * 2
        torch.relu_(y)
        g = torch.randn(6, dtype=torch.float64)
        (tg,) = torch.autograd.grad(y, xt, g)
        cx = to_ct(x64, requires_grad=True)
        L.ct_mul_scalar.restype = P
        L.ct_mul_scalar.argtypes = [P, D]
        cy = P(L.ct_mul_scalar(cx, 2.0))
        assert fn("ct_relu_")(cy) == 0, last_error()
        assert L.ct_backward(cy, to_ct(g), False, False) == 0, last_error()
        torch.testing.assert_close(from_ct(L.ct_grad(cx)), tg)
    # a leaf requiring grad can't be modified in place
    with case("relu_"):
        assert fn("ct_relu_")(to_ct(torch.randn(3), requires_grad=True)) < 0


def test_relu_nan_gradient():
    """relu's gradient at a NaN input passes the incoming gradient (PyTorch's
    threshold_backward: zero only where the result <= 0)."""
    x = torch.tensor([NAN, 1.0, -1.0, 0.0, -0.0, math.inf, -math.inf], dtype=torch.float64)
    check_grads("ct_relu", torch.relu, [x])
    check_grads("ct_relu", torch.relu, [x.float()], rtol=0, atol=0)


TB = torch.ops.aten.threshold_backward


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int32, torch.bool, torch.complex64], ids=str)
def test_threshold_backward_values(dtype):
    torch.manual_seed(3)
    g, s = sample(dtype, (5, 7)), sample(dtype, (5, 7))
    for th in (0.0, 0.5, -1.0):
        with case("threshold_backward"):
            try:
                ref = TB(g, s, th)
            except Exception:
                assert not fn("ct_threshold_backward")(to_ct(g), to_ct(s), th)
                assert last_error()
                continue
            h = fn("ct_threshold_backward")(to_ct(g), to_ct(s), th)
            assert h, last_error()
            assert_same(from_ct(h), ref)
    if dtype.is_floating_point:
        # broadcasting, non-contiguous, long runs with specials in self
        x = torch.cat([torch.linspace(-3, 3, 1001), torch.tensor([NAN, math.inf, -math.inf, 0.0, -0.0])]).to(dtype)
        gl = torch.randn(x.shape).to(dtype)
        for gg, ss in ((gl, x), (gl[:13], x[-13:]), (torch.randn(4, 1).to(dtype), torch.randn(3).to(dtype)),
                       (Noncontig(torch.randn(4, 6).to(dtype)), torch.randn(4, 6).to(dtype))):
            with case("threshold_backward"):
                ref = TB(gg.t if isinstance(gg, Noncontig) else gg, ss, 0.0)
                h = fn("ct_threshold_backward")(to_ct(gg), to_ct(ss), 0.0)
                assert h, last_error()
                assert_same(from_ct(h), ref)


def test_threshold_backward_grads():
    """Differentiable in grad_output (double backward of relu); self gets zeros."""
    g, s = torch.randn(4, 5, dtype=torch.float64), grad_input((4, 5))
    check_grads("ct_threshold_backward", lambda a, b: TB(a, b, 0.3), [g, s], extra=(0.3,))
    gradcheck("ct_threshold_backward", [g, s], extra=(0.3,), second_order=True)


def test_threshold_inplace():
    x = torch.randn(4, 5)
    with case("threshold_"):
        t = to_ct(x)
        assert fn("ct_threshold_")(t, 0.2, 9.0) == 0, last_error()
        assert_same(from_ct(t), F.threshold(x, 0.2, 9.0))
    with case("threshold_"):
        assert fn("ct_threshold_")(to_ct(torch.randn(3), requires_grad=True), 0.0, 0.0) < 0


def test_errors():
    x = torch.randn(3, 4)
    with case("celu"):
        assert not fn("ct_celu")(to_ct(x), 0.0) and "alpha" in last_error()
    with case("relu"):
        assert not fn("ct_relu")(to_ct(torch.tensor([True]))) and "Boolean" in last_error()
    with case("gelu"):
        assert not fn("ct_gelu")(to_ct(torch.tensor([1, 2])), False)
    with case("relu"):
        assert not fn("ct_relu")(None)


# ---------------------------------------------------------------- softmax family
SM_SHAPES = [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 5), (), (0, 3), (3, 0)]


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape", SM_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
def test_softmax_values(log, shape, dtype):
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    x = (torch.randn(shape) * 4).to(dtype)
    nd = max(1, len(shape))
    if log and dtype in (torch.float16, torch.bfloat16):
        # ctorch computes half log_softmax in float32 and rounds once; torch's CPU kernel
        # rounds intermediates to the half type (errors of several half ulps), so the
        # reference here is torch in float32, rounded
        tf = lambda t, d: torch.log_softmax(t.float(), d).to(t.dtype)  # noqa: E731
    for dim in range(-nd, nd):
        check_forward("ct_" + name, lambda t: tf(t, dim), [x], extra=(dim, NUM_DTYPES))
    if len(shape) == 2:
        check_forward("ct_" + name, lambda t: tf(t, 0), [Noncontig(x)], extra=(0, NUM_DTYPES))
        check_forward("ct_" + name, lambda t: tf(t, 1), [Noncontig(x)], extra=(1, NUM_DTYPES))
    # out of range dim
    check_forward("ct_" + name, lambda t: tf(t, nd), [x], extra=(nd, NUM_DTYPES))


@pytest.mark.parametrize("log", [False, True])
def test_softmax_dtype_arg_and_specials(log):
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    i = torch.randint(-5, 5, (3, 4))
    check_forward("ct_" + name, lambda t: tf(t, 1), [i], extra=(1, NUM_DTYPES))  # torch raises for ints
    check_forward("ct_" + name, lambda t: tf(t, 1, dtype=torch.float64), [i], extra=(1, DTI.index(torch.float64)))
    x = torch.randn(3, 4)
    check_forward("ct_" + name, lambda t: tf(t, 0, dtype=torch.float64), [x], extra=(0, DTI.index(torch.float64)))
    s = torch.tensor([[1.0, -math.inf, 2.0], [-math.inf] * 3, [NAN, 1.0, 2.0], [1e30, 1e30, -1e30]])
    check_forward("ct_" + name, lambda t: tf(t, 1), [s], extra=(1, NUM_DTYPES))
    big = torch.randn(7, 301) * 10
    check_forward("ct_" + name, lambda t: tf(t, 1), [big], extra=(1, NUM_DTYPES))
    check_forward("ct_" + name, lambda t: tf(t, 0), [big], extra=(0, NUM_DTYPES))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("cols", [1, 7, 8, 9, 16, 23, 31, 32, 33, 40, 47, 63, 64, 65, 1000, 1024])
def test_softmax_row_lengths(log, cols):
    # the float32 row kernels take 32-element blocks, then 8- or 16-element tail steps
    # into separate accumulators: every tail length against torch, rows of distinct scale
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    x = torch.randn(5, cols) * torch.tensor([[0.1], [1.0], [5.0], [30.0], [80.0]])
    check_forward("ct_" + name, lambda t: tf(t, 1), [x], extra=(1, NUM_DTYPES))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_softmax_half_rows(log, dtype):
    # float16 / bfloat16 along the last axis: each row widened, the float32 row kernel,
    # rounded once (cpu/activation.c softmax_half_row) -- the bits of ctorch's float32
    # softmax of the widened tensor rounded to the half type, on short, long, single-element
    # and threaded ([64, 4096]) rows with special values; and PyTorch's values
    name = "log_softmax" if log else "softmax"
    f = fn("ct_" + name)
    for shape in [(7, 1000), (300, 17), (4, 1), (64, 4096), (3, 5, 33)]:
        x = torch.randn(shape) * 6
        if shape[0] > 3 and shape[-1] > 2:
            x[1] = -math.inf
            x[2, 0], x[3, 1] = NAN, math.inf
        xh = x.to(dtype)
        with case(name):
            got = from_ct(f(to_ct(xh), -1, NUM_DTYPES))
            via32 = from_ct(f(to_ct(xh.float()), -1, NUM_DTYPES)).to(dtype)
            assert got.dtype == dtype and got.shape == xh.shape
            same = (got.view(torch.int16) == via32.view(torch.int16)) | (torch.isnan(got) & torch.isnan(via32))
            assert same.all(), f"{shape}: {(~same).sum().item()} values differ from the float32 result rounded"
            want = (torch.log_softmax if log else torch.softmax)(xh.float(), -1).to(dtype)
            torch.testing.assert_close(got, want, equal_nan=True)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("rows", [1, 63, 64, 65, 200, 5000])
@pytest.mark.parametrize("cols", [1, 2, 10, 16])
def test_softmax_short_rows(log, rows, cols):
    # float32 rows of 16 or fewer are taken 64 at a time (one vector exp pass per chunk,
    # chunks shared between threads from 32K elements): chunk edges, a partial chunk, the
    # threaded case, and special rows inside a chunk
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    x = torch.randn(rows, cols) * torch.tensor([0.1, 1.0, 5.0, 30.0, 80.0]).repeat(rows)[:rows, None]
    if rows > 4 and cols > 1:
        x[1] = -math.inf
        x[2, 0], x[3, 1], x[4, cols - 1] = NAN, math.inf, -math.inf
    check_forward("ct_" + name, lambda t: tf(t, 1), [x], extra=(1, NUM_DTYPES))
    check_forward("ct_" + name, lambda t: tf(t, -1), [Noncontig(x)], extra=(-1, NUM_DTYPES))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_grads(log, dim):
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    x = torch.randn(3, 5, dtype=torch.float64)
    check_grads("ct_" + name, lambda t: tf(t, dim), [x], extra=(dim, NUM_DTYPES))
    gradcheck("ct_" + name, [x], extra=(dim, NUM_DTYPES), second_order=True)
    # dtype cast inside: gradient flows back to the float32 input
    x32 = torch.randn(2, 4)
    check_grads("ct_" + name, lambda t: tf(t, dim, dtype=torch.float64), [x32], extra=(dim, DTI.index(torch.float64)),
                rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_softmax_fused_backward(log, dtype):
    # along the last axis without create_graph the backward is one fused pass per row
    # (CT_OP_SOFTMAX_BACKWARD): against PyTorch on short, long, threaded ([64, 4096]) and
    # 3-d rows, rows with -inf and a large spread; an expanded grad_output; and the same
    # values as the differentiable formula (create_graph) within a few roundings
    name = "log_softmax" if log else "softmax"
    tf = torch.log_softmax if log else torch.softmax
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else {}
    eps = torch.finfo(dtype).eps
    for shape in [(7, 1000), (300, 17), (4, 1), (64, 4096), (3, 5, 33)]:
        x = (torch.randn(shape) * 6).to(dtype)
        if shape[0] > 3 and shape[-1] > 2:
            x[1, ..., 0] = -math.inf
            x[2] *= 30
        if dtype == torch.float64:
            check_grads("ct_" + name, lambda t: tf(t, -1), [x], extra=(-1, NUM_DTYPES))
            continue
        # float32: the row sums of up to 4096 gradients round differently on the two
        # sides (ctorch sums in double, PyTorch in float32), so the reference is float64:
        # ctorch's gradient no further from it than PyTorch's float32 one (measured: 2-4x
        # closer on the long log_softmax rows)
        with case(name):
            go = torch.randn(shape, dtype=dtype)
            cx = to_ct(x, requires_grad=True)
            assert L.ct_backward(P(fn("ct_" + name)(cx, -1, NUM_DTYPES)), to_ct(go), False, False) == 0, last_error()
            got = from_ct(L.ct_grad(cx)).double()
            tx, t64 = x.clone().requires_grad_(), x.double().requires_grad_()
            tf(tx, -1).backward(go)
            tf(t64, -1).backward(go.double())
            err, terr = (got - t64.grad).abs().max().item(), (tx.grad.double() - t64.grad).abs().max().item()
            assert err <= terr + eps * t64.grad.abs().max().item(), f"{shape}: error {err:.3g}, PyTorch's {terr:.3g}"
    with case(name):
        x = (torch.randn(6, 40) * 4).to(dtype)
        gor = torch.randn(1, 40, dtype=dtype)
        grads = []
        for create_graph in (False, True):  # the fused pass, then the differentiable formula
            cx = to_ct(x, requires_grad=True)
            h = P(fn("ct_" + name)(cx, -1, NUM_DTYPES))
            go = to_ct(gor.expand(6, 40))  # an expanded grad_output
            assert L.ct_backward(h, go, False, create_graph) == 0, last_error()
            grads.append(from_ct(L.ct_grad(cx)))
        tx = x.clone().requires_grad_()
        tf(tx, -1).backward(gor.expand(6, 40))
        torch.testing.assert_close(grads[0], tx.grad, **tol)
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(grads[0], grads[1], rtol=4 * eps, atol=8 * eps * gor.abs().max().item())


@pytest.mark.parametrize("shape,dim", [((4, 6), -1), ((4, 6), 0), ((2, 4, 3), 1), ((3, 5), 1), ((), 0), ((0, 4), 1)])
def test_glu(shape, dim):
    x = torch.randn(shape, dtype=torch.float64)
    check_forward("ct_glu", lambda t: F.glu(t, dim), [x], extra=(dim,))
    if x.dim() and x.shape[dim] % 2 == 0 and x.numel():
        check_grads("ct_glu", lambda t: F.glu(t, dim), [x], extra=(dim,))
        gradcheck("ct_glu", [x], extra=(dim,), second_order=True)
    check_forward("ct_glu", lambda t: F.glu(t, dim), [torch.tensor([1, 2, 3, 4])], extra=(0,))
