"""Sequential's fused BatchNorm2d -> ReLU (-> MaxPool2d) (one autograd node each:
src/ops/nnf.c, kernels in src/cpu/batchnorm.c) against torch.nn — outputs, running
statistics, input and parameter gradients, second order — and against ctorch's own ops
run one by one, which it must match bit for bit: the fused kernels compute bn's output
and relu with the same arithmetic and pool with the same comparisons. The shapes cover
the 2x2 kernels (AVX-512: full and short steps of sixteen windows; AVX2: of eight; odd
rows and columns left over), the generic path (overlapping, padded, dilated, ceil-mode
windows), no pooling, float32 and float64, train and eval, NaN and ties, negative and
zero bn weights. test_vector_paths.py runs the file again on every lower vector path."""
import ctypes

import pytest
import torch

import ctorch
from ctorch import module
from harness import assert_same, case, gradgradcheck
from test_pool import I2, PoolOpts, max2

nn = torch.nn
L = ctorch.lib
backward = L.declare("ct_backward", "st(T,T,b,b)")
grad_of = L.declare("ct_grad", "T&(T)")
bn_f = L.declare("ct_nn_batch_norm", "T(T,T,T,T,T,b,d,d)")
relu_f = L.unary("ct_relu")
OP = "nn.Sequential(BatchNorm2d, ReLU, MaxPool2d)"

# (kernel, stride, padding, dilation, ceil_mode); stride 0: the kernel size; None: no
# MaxPool2d (BatchNorm2d -> ReLU)
POOLS = [((2, 2), 0, (0, 0), (1, 1), False), ((3, 3), 2, (1, 1), (1, 1), False), None,
         ((2, 2), 0, (0, 0), (1, 1), True), ((2, 3), 1, (1, 0), (1, 1), False), ((2, 2), 2, (0, 0), (2, 2), False),
         ((3, 3), 2, (0, 0), (1, 1), True)]


def fused_name(pool):
    return "BatchNormReluBackward" if pool is None else "BatchNormReluMaxPool2DBackward"
SHAPES = [(4, 3, 28, 28), (3, 5, 14, 14), (2, 3, 9, 11), (2, 2, 32, 34), (5, 2, 2, 2)]


def pool_opts(stride, padding, dilation, ceil_mode):
    return PoolOpts(I2(stride, stride), I2(*padding), I2(*dilation), ceil_mode, False, 0)


def make_pair(C, pool, dtype, affine=True, track=True, seed=0, signed_zeros=False):
    mods = [nn.BatchNorm2d(C, affine=affine, track_running_stats=track), nn.ReLU()]
    if pool is not None:
        k, s, p, d, ceil = pool
        mods.append(nn.MaxPool2d(k, stride=s or None, padding=p, dilation=d, ceil_mode=ceil))
    tseq = nn.Sequential(*mods)
    g = torch.Generator().manual_seed(seed)
    if affine:
        with torch.no_grad():  # weights of both signs and a zero: bn's scale flips or vanishes
            tseq[0].weight.copy_(torch.randn(C, generator=g))
            tseq[0].weight[0] = -abs(tseq[0].weight[0])
            if C > 2:
                tseq[0].weight[2] = 0.0
            tseq[0].bias.copy_(torch.randn(C, generator=g) * 0.5)
            if C > 2 and signed_zeros:  # channel 2's output: x * 0 + (-0), so -0 where x < 0 and +0 elsewhere
                tseq[0].bias[2] = -0.0
    tseq = tseq.to(dtype)
    cseq = ctorch_seq(C, pool, affine, track)
    cseq.load_state_dict(tseq.state_dict())
    cseq.to(dtype)
    return tseq, cseq


def ctorch_seq(C, pool, affine=True, track=True):
    s_ = module("ct_nn_sequential_new")
    mods = [module("ct_nn_batch_norm2d_new", C, 1e-5, 0.1, affine, track), module("ct_nn_relu_new")]
    if pool is not None:
        k, s, p, d, ceil = pool
        mods.append(module("ct_nn_max_pool2d_new", I2(*k), ctypes.pointer(pool_opts(s, p, d, ceil))))
    for m in mods:
        if L.declare("ct_nn_sequential_append", "st(p,p)")(s_, m.take()) < 0:
            raise ctorch.CtorchError("append failed")
    return s_


def inputs(shape, dtype, seed=1, special=False):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=g) * 2 + 0.5).to(dtype)
    if special:  # NaN in a few windows, equal values (ties after bn) in a whole plane
        x[0, 0, 0, 1] = float("nan")
        x[-1, 0, -1, -1] = float("nan")
        x[0, 1] = 0.25
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("pool", POOLS, ids=str)
def test_matches_torch_train_and_eval(dtype, shape, pool):
    N, C, H, W = shape
    tseq, cseq = make_pair(C, pool, dtype)
    # float32 gradients are sums over N*H*W terms with cancellation, added up in another
    # order than torch's: 1e-4 relative (float64: the default tolerances); the bitwise test
    # below holds the kernel to ctorch's own three ops
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else {}
    with case(OP):
        for step in range(2):  # training twice (running statistics updated twice), then eval
            mode = "train" if step < 2 else "eval"
            x = inputs(shape, dtype, seed=step + 1).requires_grad_()
            try:
                want = tseq(x)
            except RuntimeError:  # the window does not fit this image: covered by the error test
                return
            xc = ctorch.from_torch(x.detach()).requires_grad_()
            got = cseq(xc)
            assert got.grad_fn_name == fused_name(pool), f"{mode}: ran {got.grad_fn_name}, not the fused node"
            assert_same(got, want, what=f"{mode} output")
            gy = torch.randn_like(want)
            tseq.zero_grad()
            want.backward(gy)
            cseq.zero_grad()
            backward(got, ctorch.from_torch(gy), False, False)
            assert_same(grad_of(xc), x.grad, what=f"{mode} input grad", **tol)
            params = dict(cseq.named_parameters().items())
            for name, p in tseq.named_parameters():
                assert_same(grad_of(params[name]), p.grad, what=f"{mode} grad of {name}", **tol)
            bufs = dict(cseq.named_buffers().items())
            for name, b in tseq.named_buffers():
                assert_same(bufs[name], b, what=f"{mode} {name}")
        tseq.eval(), cseq.eval()
        x = inputs(shape, dtype, seed=9).requires_grad_()
        want = tseq(x)
        xc = ctorch.from_torch(x.detach()).requires_grad_()
        got = cseq(xc)
        assert_same(got, want, what="eval output")
        gy = torch.randn_like(want)
        want.backward(gy)
        backward(got, ctorch.from_torch(gy), False, False)
        assert_same(grad_of(xc), x.grad, what="eval input grad", **tol)


def same_bits(a, b):
    """equal bit patterns (the sign of zero and NaN included)"""
    a, b = a.contiguous(), b.contiguous()
    view = torch.int64 if a.dtype == torch.float64 else torch.int32
    return a.shape == b.shape and torch.equal(a.view(view), b.view(view))


def unfused(cseq, xc, pool, training=True):
    """ctorch's ops one by one with the Sequential's own parameters and statistics"""
    params, bufs = dict(cseq.named_parameters().items()), dict(cseq.named_buffers().items())
    y = bn_f(xc, bufs["0.running_mean"], bufs["0.running_var"], params["0.weight"], params["0.bias"], training, 0.1,
             1e-5)
    if pool is None:
        return relu_f(y)
    k, s, p, d, ceil = pool
    return max2(relu_f(y), k, pool_opts(s, p, d, ceil))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES[:4], ids=str)
@pytest.mark.parametrize("pool", POOLS[:4], ids=str)
@pytest.mark.parametrize("special", [False, True])
def test_same_bits_as_the_three_ops(dtype, shape, pool, special):
    C = shape[1]
    _, cseq = make_pair(C, pool, dtype, seed=4, signed_zeros=special)
    _, cref = make_pair(C, pool, dtype, seed=4, signed_zeros=special)
    with case(OP):
        x = inputs(shape, dtype, seed=5, special=special)
        xa, xb = ctorch.from_torch(x).requires_grad_(), ctorch.from_torch(x).requires_grad_()
        got, want = cseq(xa), unfused(cref, xb, pool)
        assert got.grad_fn_name == fused_name(pool)
        assert same_bits(got.torch(), want.torch()), "output bits differ"
        gy = ctorch.from_torch(torch.randn(want.shape, dtype=dtype))
        backward(got, gy, False, False)
        backward(want, gy, False, False)
        assert same_bits(grad_of(xa).torch(), grad_of(xb).torch()), "input gradient bits differ"
        pa, pb = dict(cseq.named_parameters().items()), dict(cref.named_parameters().items())
        for name in pa:
            assert same_bits(grad_of(pa[name]).torch(), grad_of(pb[name]).torch()), f"grad of {name}: bits differ"
        ba, bb = dict(cseq.named_buffers().items()), dict(cref.named_buffers().items())
        for name in ("0.running_mean", "0.running_var"):
            assert same_bits(ba[name].torch(), bb[name].torch()), name


@pytest.mark.parametrize("affine,track", [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("pool", [POOLS[0], None], ids=str)
def test_without_affine_or_running_stats(affine, track, pool):
    tseq, cseq = make_pair(3, pool, torch.float64, affine=affine, track=track)
    with case(OP):
        x = inputs((4, 3, 10, 10), torch.float64).requires_grad_()
        xc = ctorch.from_torch(x.detach()).requires_grad_()
        want, got = tseq(x), cseq(xc)
        assert_same(got, want)
        gy = torch.randn_like(want)
        want.backward(gy)
        backward(got, ctorch.from_torch(gy), False, False)
        assert_same(grad_of(xc), x.grad, what="input grad")
        bufs = dict(cseq.named_buffers().items())
        for name, b in tseq.named_buffers():
            assert_same(bufs[name], b, what=name)


@pytest.mark.parametrize("pool", POOLS[:3], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_second_order(pool, training):
    """create_graph runs the differentiable formula: gradgradcheck in x, and the
    gradient of <grad_x, v> in x, weight and bias against torch's"""
    tseq, cseq = make_pair(2, pool, torch.float64, seed=6)
    if not training:
        tseq.eval(), cseq.eval()
    with case(OP):
        gradgradcheck(OP, lambda a: cseq(a), [inputs((2, 2, 4, 6), torch.float64, seed=7)])
        x = inputs((3, 2, 6, 6), torch.float64, seed=8).requires_grad_()
        out = tseq(x)
        gy, v = torch.randn_like(out), torch.randn_like(x)
        (gx,) = torch.autograd.grad(out, x, gy, create_graph=True)
        tseq.zero_grad()
        (gx * v).sum().backward()
        xc = ctorch.from_torch(x.detach()).requires_grad_()
        cout = cseq(xc)
        backward(cout, ctorch.from_torch(gy), False, True)
        s = L.unary("ct_sum")(L.binary("ct_mul")(grad_of(xc), ctorch.from_torch(v)))
        L.ct_set_grad(xc, None)
        cseq.zero_grad()
        backward(s, None, False, False)
        same_or_none(grad_of(xc), x.grad, "second-order gradient in x")
        params = dict(cseq.named_parameters().items())
        for name, p in tseq.named_parameters():
            same_or_none(grad_of(params[name]), p.grad, f"second-order gradient in {name}")


def same_or_none(got, want, what):
    """Off the path of grad_x (bn's bias; x itself in eval, where grad_x is linear in the
    output gradient) torch has zeros and ctorch no gradient, as with bn alone."""
    if got is None:
        assert want is None or not want.any(), f"{what}: none, torch has {want}"
    else:
        assert_same(got, want, what=what)


@pytest.mark.parametrize("pool", [POOLS[0], None], ids=str)
def test_errors_and_fallbacks_are_the_modules(pool):
    """Inputs the fused kernels do not take run the modules one by one, with their errors."""
    tseq, cseq = make_pair(3, pool, torch.float32)
    with case(OP):
        with pytest.raises(ctorch.CtorchError, match="BatchNorm2d: expected 4D input"):
            cseq(ctorch.from_torch(torch.randn(3, 4, 4)))
        if pool is not None:
            with pytest.raises(ctorch.CtorchError, match="max_pool2d"):  # torch: output size is too small
                cseq(ctorch.from_torch(torch.randn(2, 3, 1, 1)))
            with pytest.raises(RuntimeError):
                tseq(torch.randn(2, 3, 1, 1))
        with pytest.raises(ctorch.CtorchError, match="batch_norm"):  # one value per channel
            cseq(ctorch.from_torch(torch.randn(1, 3, 1, 1)))
        x = torch.randn(2, 3, 6, 6)[:, :, ::2, ::2]  # not contiguous: the kernel takes a copy
        got = cseq(ctorch.from_torch(x))
        assert got.grad_fn_name is None or got.grad_fn_name == fused_name(pool)
        assert_same(got, tseq(x).detach())


def test_summary_still_lists_each_module():
    _, cseq = make_pair(4, POOLS[0], torch.float32)
    with case(OP):
        text = cseq.summary((2, 4, 8, 8))
        for name in ("BatchNorm2d", "ReLU", "MaxPool2d"):
            assert name in text, text
