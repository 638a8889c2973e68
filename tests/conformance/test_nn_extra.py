"""Bilinear, channel-wise dropout, Embedding with max_norm, EmbeddingBag, ctc_loss and
the loss modules against torch: values, gradients (inputs and parameters), errors,
gradcheck in float64, default initialisation under the same seed, reprs and buffers."""
import ctypes
import math

import pytest
import torch
import torch.nn.functional as F

import ctorch
from ctorch import module
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck, make

nn = torch.nn
L = ctorch.lib
RED = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}
NOPAD = -(2 ** 63)
seed = L.declare("ct_manual_seed", "v(i64)")
bilinear = L.declare("ct_nn_bilinear", "T(T,T,T,T)")
dropout1d = L.declare("ct_nn_dropout1d", "T(T,d,b,p)")
dropout2d = L.declare("ct_nn_dropout2d", "T(T,d,b,p)")
dropout3d = L.declare("ct_nn_dropout3d", "T(T,d,b,p)")
emb_ex = L.declare("ct_nn_embedding_ex", "T(T,T,i64,d,d)")
renorm_ = L.declare("ct_nn_embedding_renorm_", "st(T,T,d,d)")
emb_bag = L.declare("ct_nn_embedding_bag", "T(T,T,T,d,d,s,T,b,i64)")
ctc = L.declare("ct_nn_ctc_loss", "T(T,T,T,T,i64,i,b)")
backward = L.declare("ct_backward", "st(T,T,b,b)")
grad_of = L.declare("ct_grad", "T&(T)")


def d64(*s):
    return torch.randn(*s, dtype=torch.float64)


# ---- bilinear ----
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shapes", [((4, 3), (4, 5), 2), ((2, 3, 3), (2, 3, 4), 5), ((3,), (2,), 4), ((0, 3), (0, 2), 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(dtype, shapes, bias):
    s1, s2, out = shapes
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(s1, generator=g, dtype=dtype)
    x2 = torch.randn(s2, generator=g, dtype=dtype)
    w = torch.randn(out, s1[-1], s2[-1], generator=g, dtype=dtype)
    b = torch.randn(out, generator=g, dtype=dtype) if bias else None
    if bias:
        check("bilinear", bilinear, F.bilinear, [x1, x2, w, b])
    else:
        check("bilinear", lambda a, c, ww: bilinear(a, c, ww, None), lambda a, c, ww: F.bilinear(a, c, ww), [x1, x2, w])


def test_bilinear_errors_and_gradcheck():
    bad = [(d64(4, 3), d64(5, 5), d64(2, 3, 5), None), (d64(4, 3), d64(4, 5), d64(2, 4, 5), None),
           (d64(4, 3), d64(4, 5), d64(2, 3, 4), None), (d64(4, 3), d64(4, 5), d64(2, 3, 5), d64(3)),
           (d64(4, 3), d64(4, 2, 5), d64(2, 3, 5), None)]
    for x1, x2, w, b in bad:
        check_error("bilinear", lambda a, c, ww: bilinear(a, c, ww, b), lambda a, c, ww: F.bilinear(a, c, ww, b),
                    [x1, x2, w])
    gradcheck("bilinear", bilinear, [d64(3, 2), d64(3, 4), d64(2, 2, 4), d64(2)])
    gradgradcheck("bilinear", bilinear, [d64(2, 2), d64(2, 3), d64(2, 2, 3), d64(2)])


# ---- channel-wise dropout ----
DROP = [("dropout1d", dropout1d, F.dropout1d, [(3, 4, 5), (4, 5)]),
        ("dropout2d", dropout2d, F.dropout2d, [(3, 4, 5, 2), (4, 5, 3), (6, 2)]),
        ("dropout3d", dropout3d, F.dropout3d, [(2, 3, 2, 2, 2), (3, 2, 2, 2), (3, 4)])]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_feature_dropout_same_stream(which, p, training):
    name, cf, tf, shapes = DROP[which]
    for shape in shapes:
        with case(name):
            x = make(shape, torch.float32).requires_grad_()
            torch.manual_seed(3)
            want = tf(x, p, training)
            seed(3)
            xc = ctorch.from_torch(x.detach()).requires_grad_()
            got = cf(xc, p, training, None)
            assert_same(got, want.detach())
            # channel-wise: each (n, c) slice is all zero or all scaled
            if training and 0 < p < 1 and len(shape) > 2:
                y = got.torch().reshape(shape[0], shape[1], -1) if shape != (4, 5) else None
            gy = torch.randn(want.shape)
            want.backward(gy)
            backward(got, ctorch.from_torch(gy), False, False)
            assert_same(grad_of(xc), x.grad, what="grad")


def test_dropout2d_distribution():
    with case("dropout2d"):
        x = torch.ones(400, 50, 3, 3)
        y = dropout2d(ctorch.from_torch(x), 0.3, True, None).torch()
        per = y.reshape(400, 50, 9)
        assert ((per == 0).all(-1) | (per == 1 / 0.7).all(-1)).all()  # whole channels
        frac = (per[..., 0] == 0).float().mean().item()
        assert abs(frac - 0.3) < 0.02


@pytest.mark.filterwarnings("ignore")
def test_feature_dropout_errors_and_gradcheck():
    for name, cf, tf, _ in DROP:
        check_error(name, lambda x: cf(x, 1.5, True, None), lambda x: tf(x, 1.5, True), [torch.randn(2, 3, 4)])
    check_error("dropout1d", lambda x: dropout1d(x, 0.5, True, None), lambda x: F.dropout1d(x, 0.5, True),
                [torch.randn(2, 3, 4, 5)])
    check_error("dropout2d", lambda x: dropout2d(x, 0.5, True, None), lambda x: F.dropout2d(x, 0.5, True),
                [torch.randn(5)], names=["dropout"])

    def f(x):
        seed(5)
        return dropout2d(x, 0.4, True, None)
    gradcheck("dropout2d", f, [d64(3, 4, 2, 2)])


# ---- embedding with max_norm ----
@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (0.5, 1.0), (2.0, 3.0), (0.8, math.inf)])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_max_norm(max_norm, norm_type, padding_idx):
    with case("embedding"):
        w = torch.randn(10, 4) * 2
        idx = torch.tensor([[1, 2, 4], [4, 3, 9]])
        wt = w.clone().requires_grad_()
        want = F.embedding(idx, wt, padding_idx, max_norm, norm_type)
        wc = ctorch.from_torch(w.clone()).requires_grad_()
        got = emb_ex(ctorch.from_torch(idx), wc, NOPAD if padding_idx is None else padding_idx, max_norm, norm_type)
        assert_same(got, want.detach())
        assert_same(wc, wt.detach(), what="renormalised weight")
        g = torch.randn(want.shape)
        want.backward(g)
        backward(got, ctorch.from_torch(g), False, False)
        assert_same(grad_of(wc), wt.grad, what="weight grad")


def test_embedding_renorm_errors():
    check_error("embedding", lambda i, w: emb_ex(i, w, NOPAD, 1.0, 2.0), lambda i, w: F.embedding(i, w, max_norm=1.0),
                [torch.tensor([1, 12]), torch.randn(10, 3)], names=["embedding"])


# ---- embedding_bag ----
BAG_CASES = [  # (input, offsets, include_last_offset)
    (torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 4]), False),
    (torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 2, 2, 5]), False),  # an empty bag
    (torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 3, 6, 8]), True),
    # (include_last_offset with offsets[-1] < len(input) is outside torch's contract and torch
    # itself disagrees between float32 and float64 there, so it is not tested)
    (torch.tensor([[1, 2, 4], [4, 3, 9], [0, 0, 2]]), None, False),
    (torch.tensor([], dtype=torch.int64), torch.tensor([0, 0]), False),
]


@pytest.mark.parametrize("k", range(len(BAG_CASES)))
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("psw", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_embedding_bag(k, mode, padding_idx, psw, dtype):
    inp, off, last = BAG_CASES[k]
    if psw and mode != "sum":
        return
    w = make((10, 3), dtype)
    psw_t = torch.randn(inp.shape, dtype=dtype, generator=torch.Generator().manual_seed(4)) if psw else None
    pad = NOPAD if padding_idx is None else padding_idx

    def ct_fn(weight, *rest):
        ps = rest[0] if psw else None
        return emb_bag(ctorch.from_torch(inp), weight, None if off is None else ctorch.from_torch(off), 0.0, 2.0, mode,
                       ps, last, pad)

    def t_fn(weight, *rest):
        ps = rest[0] if psw else None
        return F.embedding_bag(inp, weight, off, mode=mode, per_sample_weights=ps, include_last_offset=last,
                               padding_idx=padding_idx)
    check("embedding_bag", ct_fn, t_fn, [w] + ([psw_t] if psw else []))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_max_norm_and_gradcheck(mode):
    with case("embedding_bag"):
        w = torch.randn(10, 3) * 3
        inp, off = torch.tensor([1, 2, 4, 5, 4, 3]), torch.tensor([0, 2])
        wt = w.clone()
        want = F.embedding_bag(inp, wt, off, max_norm=1.5, mode=mode)
        wc = ctorch.from_torch(w.clone())
        got = emb_bag(ctorch.from_torch(inp), wc, ctorch.from_torch(off), 1.5, 2.0, mode, None, False, NOPAD)
        assert_same(got, want)
        assert_same(wc, wt, what="renormalised weight")
    inp2 = torch.tensor([1, 2, 4, 5, 4, 3, 0])
    off2 = torch.tensor([0, 3, 3])
    gradcheck("embedding_bag", lambda w: emb_bag(inp2, w, off2, 0.0, 2.0, mode, None, False, NOPAD), [d64(6, 3)])
    if mode == "sum":
        gradcheck("embedding_bag", lambda w, p: emb_bag(inp2, w, off2, 0.0, 2.0, mode, p, False, 4),
                  [d64(6, 3), d64(7)])


def test_embedding_bag_errors():
    w = torch.randn(10, 3)
    bad = [
        (torch.tensor([1, 2, 3]), torch.tensor([1, 2]), {}),            # offsets[0] != 0
        (torch.tensor([1, 2, 3]), torch.tensor([0, 5]), {}),            # offsets[-1] > len
        (torch.tensor([1, 2, 3]), None, {}),                            # 1-D without offsets
        (torch.tensor([[1, 2], [3, 4]]), torch.tensor([0, 1]), {}),     # 2-D with offsets
        (torch.tensor([[[1]]]), None, {}),                              # 3-D
        (torch.tensor([1, 12]), torch.tensor([0]), {}),                 # index out of range
        (torch.tensor([1, 2, 3]), torch.tensor([0, 1]), {"mode": "median"}),
        (torch.tensor([1, 2, 3]), torch.tensor([0, 1]), {"mode": "max", "per_sample_weights": torch.ones(3)}),
        (torch.tensor([1, 2, 3]), torch.tensor([0, 1]), {"per_sample_weights": torch.ones(2)}),
        (torch.tensor([1, 2, 3]), torch.tensor([0, 1]), {"padding_idx": 10}),
    ]
    for inp, off, kw in bad:
        mode = kw.get("mode", "mean")
        ps = kw.get("per_sample_weights")
        pad = kw.get("padding_idx", NOPAD)
        check_error("embedding_bag",
                    lambda ww: emb_bag(inp, ww, off, 0.0, 2.0, mode, ps, False, pad),
                    lambda ww: F.embedding_bag(inp, ww, off, **kw), [w], names=["embedding_bag"])


# ---- ctc_loss ----
def ctc_inputs(T=6, N=3, C=5, S=3, dtype=torch.float64, concat=False, seed_=0, il=None, tl=None):
    g = torch.Generator().manual_seed(seed_)
    lp = torch.randn(T, N, C, generator=g, dtype=dtype).log_softmax(2)
    tl = torch.tensor(tl if tl is not None else [S, max(S - 1, 0), 1][:N] + [S] * max(0, N - 3))
    il = torch.tensor(il if il is not None else [T, T - 1, T - 2][:N] + [T] * max(0, N - 3))
    tg = torch.randint(1, C, (N, S), generator=g)
    if concat:
        tg = torch.cat([tg[b, :tl[b]] for b in range(N)])
    return lp, tg, il, tl


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("concat", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("zero_inf", [False, True])
def test_ctc_loss(red, concat, dtype, zero_inf):
    lp, tg, il, tl = ctc_inputs(dtype=dtype, concat=concat)
    check("ctc_loss", lambda x: ctc(x, tg, il, tl, 0, RED[red], zero_inf),
          lambda x: F.ctc_loss(x, tg, il, tl, 0, red, zero_inf), [lp])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_inf", [False, True])
def test_ctc_loss_special(red, zero_inf):
    # repeated labels (need a blank between them), an impossible alignment (inf), empty
    # targets, zero-length inputs, another blank index
    lp = torch.randn(5, 5, 4, dtype=torch.float64).log_softmax(2)
    tg = torch.tensor([[1, 1, 2], [2, 2, 2], [1, 3, 0], [3, 0, 0], [1, 0, 0]])
    il = torch.tensor([5, 4, 5, 0, 0])
    tl = torch.tensor([3, 3, 0, 1, 0])
    for blank in (0, 3):
        t2 = tg.clone()
        if blank == 3:
            t2 = torch.where(t2 == 3, torch.zeros_like(t2), t2)
        check("ctc_loss", lambda x: ctc(x, t2, il, tl, blank, RED[red], zero_inf),
              lambda x: F.ctc_loss(x, t2, il, tl, blank, red, zero_inf), [lp])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_ctc_loss_unbatched(red):
    lp = torch.randn(6, 4, dtype=torch.float64).log_softmax(1)
    tg = torch.tensor([1, 2, 2])
    il, tl = torch.tensor(6), torch.tensor(3)
    check("ctc_loss", lambda x: ctc(x, tg, il, tl, 0, RED[red], False), lambda x: F.ctc_loss(x, tg, il, tl, 0, red),
          [lp])


def test_ctc_loss_larger_float32():
    lp, tg, il, tl = ctc_inputs(T=50, N=4, C=20, S=10, dtype=torch.float32, seed_=3)
    check("ctc_loss", lambda x: ctc(x, tg, il, tl, 0, 0, False), lambda x: F.ctc_loss(x, tg, il, tl), [lp],
          atol=1e-5, rtol=1e-4)  # float64 accumulation here vs torch's float32 recursions over 50 steps


def test_ctc_loss_gradcheck():
    # through log_softmax: torch's gradient formula assumes normalised log-probabilities
    _, tg, il, tl = ctc_inputs(T=5, N=2, C=4, S=2)
    for red in (0, 1, 2):
        gradcheck("ctc_loss", lambda x: ctc(L.ct_log_softmax(x, 2, None), tg, il, tl, 0, red, False),
                  [d64(5, 2, 4)])
    gradcheck("ctc_loss", lambda x: ctc(L.ct_log_softmax(x, 2, None), tg.flatten()[:3], il, tl, 0, 0, True),
              [d64(5, 2, 4)])


L.declare("ct_log_softmax", "T(T,i,dt)")


def test_ctc_loss_errors():
    lp, tg, il, tl = ctc_inputs()
    cases = [
        (lp, tg, il, tl, 7, {}),                                     # blank out of range
        (lp, tg, il[:2], tl, 0, {}),                                  # input_lengths size
        (lp, tg, il, tl[:2], 0, {}),                                  # target_lengths size
        (lp, tg, torch.tensor([7, 6, 6]), tl, 0, {}),                 # input length > T
        (lp, tg, il, torch.tensor([3, -1, 1]), 0, {}),                # negative target length
        (lp, tg[:, :2], il, tl, 0, {}),                               # padded targets too short
        (lp, tg[:2], il, tl, 0, {}),                                  # padded targets batch
        (lp, tg.flatten()[:4], il, tl, 0, {}),                        # concatenated: wrong total
        (lp[..., None], tg, il, tl, 0, {}),                           # 4-D log_probs
    ]
    for x, t, i, l_, blank, _ in cases:
        check_error("ctc_loss", lambda a: ctc(a, t, i, l_, blank, 0, False),
                    lambda a: F.ctc_loss(a, t, i, l_, blank), [x])
