"""Losses against torch.nn.functional: every reduction, weights, ignore_index and label
smoothing, class-probability targets, values, gradients, errors, gradcheck."""
import pytest
import torch
import torch.nn.functional as F

import ctorch
from harness import case, check, check_error, gradcheck, gradgradcheck

RED = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}
L = ctorch.lib


def d(*s, lo=None):
    t = torch.randn(*s, dtype=torch.float64)
    return t


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_regression_losses(red):
    x, y = d(4, 5), d(4, 5)
    for name, tf, extra in [("mse_loss", F.mse_loss, ()), ("l1_loss", F.l1_loss, ()),
                            ("smooth_l1_loss", lambda a, b, reduction: F.smooth_l1_loss(a, b, reduction=reduction, beta=0.7), (0.7,)),
                            ("huber_loss", lambda a, b, reduction: F.huber_loss(a, b, reduction=reduction, delta=1.3), (1.3,))]:
        sig = "T(T,T,i" + ",d" * len(extra) + ")"
        f = L.declare(f"ct_nn_{name}", sig)
        check(name, lambda a, b: f(a, b, RED[red], *extra), lambda a, b: tf(a, b, reduction=red), [x, y])
        gradcheck(name, lambda a, b: f(a, b, RED[red], *extra), [x, y])


CE_CASES = [  # (input shape, target kind, weight, ignore_index, label_smoothing)
    ((6, 5), "index", False, -100, 0.0),
    ((6, 5), "index", True, -100, 0.0),
    ((6, 5), "index", True, 2, 0.0),
    ((6, 5), "index", False, 1, 0.1),
    ((6, 5), "index", True, 3, 0.2),
    ((3, 4, 2, 3), "index", True, -100, 0.0),  # K-dimensional
    ((3, 4, 2, 3), "index", False, 0, 0.15),
    ((5,), "index", False, -100, 0.0),  # unbatched
    ((6, 5), "prob", False, -100, 0.0),
    ((6, 5), "prob", True, -100, 0.3),
    ((3, 4, 5), "prob", False, -100, 0.0),
]


def make_target(shape, kind, ignore_index):
    C = shape[0] if len(shape) == 1 else shape[1]
    if kind == "prob":
        return torch.softmax(torch.randn(shape, dtype=torch.float64), dim=0 if len(shape) == 1 else 1)
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = torch.randint(0, C, tshape)
    if ignore_index >= 0 and t.numel() > 1:
        t.view(-1)[0] = ignore_index
    return t


@pytest.mark.parametrize("k", range(len(CE_CASES)))
@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_cross_entropy(k, red):
    shape, kind, weighted, ign, ls = CE_CASES[k]
    C = shape[0] if len(shape) == 1 else shape[1]
    x = d(*shape)
    t = make_target(shape, kind, ign)
    w = torch.rand(C, dtype=torch.float64) + 0.5 if weighted else None
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    # torch has no gradient for the class weights of index targets: close over them there
    pass_w = weighted and kind == "prob"
    ins = [x, t] + ([w] if pass_w else [])
    cw = ctorch.from_torch(w) if weighted and not pass_w else None
    cf = lambda a, b, *ww: f(a, b, ww[0] if ww else cw, ign, RED[red], ls)
    tf = lambda a, b, *ww: F.cross_entropy(a, b, weight=ww[0] if ww else w, ignore_index=ign, reduction=red,
                                           label_smoothing=ls)
    check("cross_entropy", cf, tf, ins)
    if kind == "index":
        gradcheck("cross_entropy", lambda a: cf(a, t), [x])
        nll = L.declare("ct_nn_nll_loss", "T(T,T,T,i64,i)")
        check("nll_loss", lambda a, b: nll(a, b, cw, ign, RED[red]),
              lambda a, b: F.nll_loss(a, b, weight=w, ignore_index=ign, reduction=red),
              [torch.log_softmax(x, dim=0 if len(shape) == 1 else 1), t])


def test_cross_entropy_second_order():
    x, t = d(4, 3), torch.tensor([0, 2, 1, 2])
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    gradgradcheck("cross_entropy", lambda a: f(a, t, None, -100, 0, 0.1), [x])


def bits(t):
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (64, 10), (65, 17), (200, 3), (7, 1000), (0, 4)], ids=str)
@pytest.mark.parametrize("variant", ["plain", "weight", "ignore", "weight+ignore", "int32", "uint8"])
def test_cross_entropy_fused_rows(dtype, shape, variant):
    # [N, C] logits with class indices and no smoothing take one fused node: its per-row
    # losses must be nll_loss(log_softmax(x))'s bits, every reduction too, and values and
    # gradients must match torch's
    N, C = shape
    g = torch.Generator().manual_seed(N * 131 + C)
    x = (torch.randn(N, C, generator=g, dtype=torch.float64) * 4).to(dtype)
    t = torch.randint(0, min(C, 256) if variant == "uint8" else C, (N,), generator=g)
    ign = -100
    if "ignore" in variant and N > 1:
        ign = int(t[0])
        t[N // 2] = ign
    w = torch.rand(C, generator=g, dtype=dtype) + 0.5 if "weight" in variant else None
    tt = t.to({"int32": torch.int32, "uint8": torch.uint8}.get(variant, torch.int64))
    cw = ctorch.from_torch(w) if w is not None else None
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    nll = L.declare("ct_nn_nll_loss", "T(T,T,T,i64,i)")
    lsm = L.declare("ct_log_softmax", "T(T,i,dt)")
    for red in ("none", "sum", "mean"):
        with case("cross_entropy"):
            cx = ctorch.from_torch(x)
            fused = f(cx, ctorch.from_torch(tt), cw, ign, RED[red], 0.0).torch()
            composed = nll(lsm(cx, 1, None), ctorch.from_torch(t), cw, ign, RED[red]).torch()
            assert torch.equal(bits(fused), bits(composed)), f"{red}: {fused} vs {composed}"
        if dtype == torch.float64 or red != "none":
            check("cross_entropy", lambda a: f(a, ctorch.from_torch(tt), cw, ign, RED[red], 0.0),
                  lambda a: F.cross_entropy(a, t, weight=w, ignore_index=ign, reduction=red), [x])


def test_cross_entropy_no_classes():
    # [N, 0] logits stay on the composed path: every target ignored gives torch's values
    # (0 per row, a NaN mean), any other target is out of bounds
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    t = torch.full((2,), -100)
    for red in ("none", "sum", "mean"):
        check("cross_entropy", lambda a: f(a, t, None, -100, RED[red], 0.0),
              lambda a: F.cross_entropy(a, t, reduction=red), [torch.randn(2, 0, dtype=torch.float64)], grad=False)
        nll = L.declare("ct_nn_nll_loss", "T(T,T,T,i64,i)")
        check("nll_loss", lambda a: nll(a, t, None, -100, RED[red]), lambda a: F.nll_loss(a, t, reduction=red),
              [torch.randn(2, 0, dtype=torch.float64)], grad=False)
    check_error("cross_entropy", lambda a: f(a, torch.tensor([-100, 0]), None, -100, 0, 0.0),
                lambda a: F.cross_entropy(a, torch.tensor([-100, 0])), [torch.randn(2, 0)], match="out of bounds")


@pytest.mark.parametrize("variant", ["plain", "weight+ignore"])
def test_cross_entropy_fused_second_order(variant):
    x, t = d(5, 4), torch.tensor([0, 3, 1, 2, 3])
    w = ctorch.from_torch(torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64)) if "weight" in variant else None
    ign = 3 if "ignore" in variant else -100
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    for red in ("mean", "sum", "none"):
        gradcheck("cross_entropy", lambda a: f(a, t, w, ign, RED[red], 0.0), [x])
        gradgradcheck("cross_entropy", lambda a: f(a, t, w, ign, RED[red], 0.0), [x])


def test_cross_entropy_errors():
    f = L.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
    x = torch.randn(4, 3)
    check_error("cross_entropy", lambda a, b: f(a, b, None, -100, 0, 0.0), lambda a, b: F.cross_entropy(a, b),
                [x, torch.tensor([0, 1, 5, 2])], match="Target 5 is out of bounds")  # target out of bounds
    check_error("cross_entropy", lambda a, b: f(a, b, None, 1, 0, 0.0), lambda a, b: F.cross_entropy(a, b, ignore_index=1),
                [x, torch.tensor([1, -2, 0, 1])], match="Target -2 is out of bounds")
    check_error("cross_entropy", lambda a, b: f(a, b, None, -100, 0, 0.0), lambda a, b: F.cross_entropy(a, b),
                [x, torch.tensor([0.0, 1.0, 2.0, 0.0])])  # float target of the wrong shape
    check_error("cross_entropy", lambda a, b: f(a, b, None, -100, 0, 0.0), lambda a, b: F.cross_entropy(a, b),
                [x, torch.tensor([0, 1, 2])])  # batch mismatch
    check_error("cross_entropy", lambda a, b: f(a, b, None, -100, 0, 1.5),
                lambda a, b: F.cross_entropy(a, b, label_smoothing=1.5), [x, torch.tensor([0, 1, 2, 0])])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_binary_losses(red):
    x = torch.rand(4, 3, dtype=torch.float64) * 0.9 + 0.05
    t = torch.rand(4, 3, dtype=torch.float64)
    w = torch.rand(4, 3, dtype=torch.float64)
    pw = torch.rand(3, dtype=torch.float64) + 0.5
    bce = L.declare("ct_nn_binary_cross_entropy", "T(T,T,T,i)")
    cw = ctorch.from_torch(w)  # torch has no gradient for bce's weight: closed over
    check("binary_cross_entropy", lambda a, b: bce(a, b, cw, RED[red]),
          lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=red), [x, t])
    gradcheck("binary_cross_entropy", lambda a: bce(a, t, None, RED[red]), [x])
    bcel = L.declare("ct_nn_binary_cross_entropy_with_logits", "T(T,T,T,T,i)")
    z = d(4, 3) * 3
    cpw = ctorch.from_torch(pw)
    check("binary_cross_entropy_with_logits", lambda a, b: bcel(a, b, cw, cpw, RED[red]),
          lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw, reduction=red), [z, t])
    gradcheck("binary_cross_entropy_with_logits", lambda a: bcel(a, t, None, None, RED[red]), [z])


@pytest.mark.parametrize("red", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(red, log_target):
    x = torch.log_softmax(d(4, 5), 1)
    t = torch.softmax(d(4, 5), 1)
    if log_target:
        t = t.log()
    f = L.declare("ct_nn_kl_div", "T(T,T,i,b)")
    check("kl_div", lambda a, b: f(a, b, RED[red], log_target),
          lambda a, b: F.kl_div(a, b, reduction=red, log_target=log_target), [x, t])
    gradcheck("kl_div", lambda a, b: f(a, b, RED[red], log_target), [x, t])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_embedding_and_ranking_losses(red):
    x1, x2 = d(5, 4), d(5, 4)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    ce = L.declare("ct_nn_cosine_embedding_loss", "T(T,T,T,d,i)")
    check("cosine_embedding_loss", lambda a, b: ce(a, b, y, 0.2, RED[red]),
          lambda a, b: F.cosine_embedding_loss(a, b, y, margin=0.2, reduction=red), [x1, x2])
    gradcheck("cosine_embedding_loss", lambda a, b: ce(a, b, y, 0.2, RED[red]), [x1, x2])
    mr = L.declare("ct_nn_margin_ranking_loss", "T(T,T,T,d,i)")
    s1, s2 = d(5), d(5)
    check("margin_ranking_loss", lambda a, b: mr(a, b, y, 0.5, RED[red]),
          lambda a, b: F.margin_ranking_loss(a, b, y, margin=0.5, reduction=red), [s1, s2])
    he = L.declare("ct_nn_hinge_embedding_loss", "T(T,T,d,i)")
    check("hinge_embedding_loss", lambda a: he(a, y, 1.5, RED[red]),
          lambda a: F.hinge_embedding_loss(a, y, margin=1.5, reduction=red), [s1])
    tm = L.declare("ct_nn_triplet_margin_loss", "T(T,T,T,d,d,d,b,i)")
    for p, swap in ((2.0, False), (1.0, True)):
        check("triplet_margin_loss", lambda a, b, c: tm(a, b, c, 1.0, p, 1e-6, swap, RED[red]),
              lambda a, b, c: F.triplet_margin_loss(a, b, c, p=p, swap=swap, reduction=red), [x1, x2, d(5, 4)])
        gradcheck("triplet_margin_loss", lambda a, b, c: tm(a, b, c, 1.0, p, 1e-6, swap, RED[red]), [x1, x2, d(5, 4)])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_likelihood_losses(red):
    x = d(4, 3)
    yml = (torch.rand(4, 3) > 0.5).double()
    w = torch.rand(3, dtype=torch.float64)
    ml = L.declare("ct_nn_multilabel_soft_margin_loss", "T(T,T,T,i)")
    cw = ctorch.from_torch(w)
    check("multilabel_soft_margin_loss", lambda a: ml(a, yml, cw, RED[red]),
          lambda a: F.multilabel_soft_margin_loss(a, yml, weight=w, reduction=red), [x])
    gradcheck("multilabel_soft_margin_loss", lambda a: ml(a, yml, None, RED[red]), [x])
    pn = L.declare("ct_nn_poisson_nll_loss", "T(T,T,b,b,d,i)")
    cnt = torch.poisson(torch.rand(4, 3, dtype=torch.float64) * 4)
    for log_input, full in ((True, False), (False, True), (True, True)):
        xi = x if log_input else x.abs() + 0.1
        check("poisson_nll_loss", lambda a: pn(a, cnt, log_input, full, 1e-8, RED[red]),
              lambda a: F.poisson_nll_loss(a, cnt, log_input=log_input, full=full, reduction=red), [xi])
        gradcheck("poisson_nll_loss", lambda a: pn(a, cnt, log_input, full, 1e-8, RED[red]), [xi])
    gn = L.declare("ct_nn_gaussian_nll_loss", "T(T,T,T,b,d,i)")
    t = d(4, 3)
    for var in (torch.rand(4, 3, dtype=torch.float64) + 0.1, torch.rand(4, dtype=torch.float64) + 0.1,
                torch.rand(4, 1, dtype=torch.float64) + 0.1, torch.tensor([[1e-9], [0.5], [2.0], [1e-8]], dtype=torch.float64)):
        for full in (False, True):
            check("gaussian_nll_loss", lambda a, v: gn(a, t, v, full, 1e-6, RED[red]),
                  lambda a, v: F.gaussian_nll_loss(a, t, v, full=full, reduction=red), [x, var])
    check_error("gaussian_nll_loss", lambda a, v: gn(a, t, v, False, 1e-6, RED[red]),
                lambda a, v: F.gaussian_nll_loss(a, t, v, reduction=red), [x, d(2, 3).abs()])
