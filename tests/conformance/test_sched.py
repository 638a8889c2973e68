"""CyclicLR, OneCycleLR and SequentialLR against torch.optim.lr_scheduler: the learning
rates and the cycled momentum (SGD's momentum, Adam's beta1) step by step, parameters
after 20 training steps, state_dict round trips and errors."""
import ctypes

import pytest
import torch

import ctorch
from harness import case

P = ctypes.c_void_p
L = ctorch.lib
_raw = ctorch._raw
SCALE_FN = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_void_p)


class CyclicOpts(ctypes.Structure):
    _fields_ = [("step_size_up", ctypes.c_int64), ("step_size_down", ctypes.c_int64), ("mode", ctypes.c_char_p),
                ("gamma", ctypes.c_double), ("scale_fn", SCALE_FN), ("scale_fn_user", ctypes.c_void_p),
                ("scale_mode_iterations", ctypes.c_bool), ("cycle_momentum", ctypes.c_bool),
                ("base_momentum", ctypes.c_double), ("max_momentum", ctypes.c_double)]


class OneCycleOpts(ctypes.Structure):
    _fields_ = [("pct_start", ctypes.c_double), ("anneal_strategy", ctypes.c_char_p), ("cycle_momentum", ctypes.c_bool),
                ("base_momentum", ctypes.c_double), ("max_momentum", ctypes.c_double), ("div_factor", ctypes.c_double),
                ("final_div_factor", ctypes.c_double), ("three_phase", ctypes.c_bool)]


D2 = ctypes.c_double * 2
cyclic_new = _raw("ct_sched_cyclic_lr_new", P, P, ctypes.c_int, ctypes.POINTER(ctypes.c_double),
                  ctypes.POINTER(ctypes.c_double), ctypes.POINTER(CyclicOpts))
onecycle_new = _raw("ct_sched_one_cycle_lr_new", P, P, ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_int64,
                    ctypes.POINTER(OneCycleOpts))
seq_new = _raw("ct_sched_sequential_lr_new", P, P, ctypes.c_int, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_int64))
sched_step = _raw("ct_sched_step", ctypes.c_int, P)
last_lr = _raw("ct_sched_get_last_lr", ctypes.c_double, P, ctypes.c_int)
sched_free = _raw("ct_sched_free", None, P)
get_opt = _raw("ct_optim_get_option", ctypes.c_double, P, ctypes.c_int, ctypes.c_char_p)
opt_step = _raw("ct_optim_step", ctypes.c_int, P)
opt_free = _raw("ct_optim_free", None, P)
sgd_new = _raw("ct_optim_sgd_new", P, P, *([ctypes.c_double] * 4 + [ctypes.c_bool] * 2))
adam_new = _raw("ct_optim_adam_new", P, P, *([ctypes.c_double] * 5 + [ctypes.c_bool] * 2))
add_group = _raw("ct_optim_add_param_group", ctypes.c_int, P, P)
set_opt = _raw("ct_optim_set_option", ctypes.c_int, P, ctypes.c_int, ctypes.c_char_p, ctypes.c_double)
dict_set = _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)
sd_get = _raw("ct_sched_state_dict", P, P)
sd_load = _raw("ct_sched_load_state_dict", ctypes.c_int, P, P)


def make_opts(kind, groups):
    """An optimizer in torch and in ctorch over `groups` one-element parameters, group g
    with lr 0.1 * (g + 1)."""
    tps = [torch.zeros(1, requires_grad=True) for _ in range(groups)]
    if kind == "sgd":
        to = torch.optim.SGD([{"params": [p], "lr": 0.1 * (g + 1)} for g, p in enumerate(tps)], lr=0.1, momentum=0.5)
    else:
        to = torch.optim.Adam([{"params": [p], "lr": 0.1 * (g + 1)} for g, p in enumerate(tps)], lr=0.1)
    keep, co = [], None
    for g in range(groups):
        d = ctorch.Dict()
        w = ctorch.from_torch(torch.zeros(1)).requires_grad_()
        dict_set(d._p, b"w", w.ptr)
        keep += [d, w]
        if g == 0:
            co = sgd_new(d._p, 0.1, 0.5, 0, 0, False, False) if kind == "sgd" else \
                adam_new(d._p, 0.1, 0.9, 0.999, 1e-8, 0, False, False)
            assert co, L.ct_last_error()
        else:
            assert add_group(co, d._p) == g
        assert set_opt(co, g, b"lr", 0.1 * (g + 1)) == 0
    return to, co, keep


def momentum_torch(to, g):
    grp = to.param_groups[g]
    return grp["betas"][0] if "betas" in grp else grp["momentum"]


def trace(to, ts, co, cs, kind, steps):
    mom = b"momentum" if kind == "sgd" else b"beta1"
    groups = len(to.param_groups)
    for i in range(steps + 1):
        if i:
            to.step()
            ts.step()
            assert sched_step(cs) == 0, L.ct_last_error()
        for g in range(groups):
            assert last_lr(cs, g) == pytest.approx(ts.get_last_lr()[g], rel=1e-12, abs=1e-15), (i, g)
            assert get_opt(co, g, b"lr") == pytest.approx(to.param_groups[g]["lr"], rel=1e-12, abs=1e-15)
            assert get_opt(co, g, mom) == pytest.approx(momentum_torch(to, g), rel=1e-12, abs=1e-15), (i, g)


CYCLIC = [dict(step_size_up=3), dict(step_size_up=2, step_size_down=5, mode="triangular2"),
          dict(step_size_up=4, mode="exp_range", gamma=0.9), dict(step_size_up=3, cycle_momentum=False)]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("k", range(len(CYCLIC)))
def test_cyclic_lr(kind, k):
    kw = CYCLIC[k]
    to, co, keep = make_opts(kind, 2)
    ts = torch.optim.lr_scheduler.CyclicLR(to, [0.01, 0.02], [0.1, 0.3], **kw)
    o = CyclicOpts(kw.get("step_size_up", 2000), kw.get("step_size_down", 0) or 0, kw.get("mode", "triangular").encode(),
                   kw.get("gamma", 1.0), SCALE_FN(), None, False, kw.get("cycle_momentum", True), 0.8, 0.9)
    cs = cyclic_new(co, 2, D2(0.01, 0.02), D2(0.1, 0.3), ctypes.byref(o))
    assert cs, L.ct_last_error()
    with case("lr_scheduler.cyclic_lr"):
        if kw.get("cycle_momentum", True):
            trace(to, ts, co, cs, kind, 20)
        else:  # without cycling, only the lrs
            for i in range(21):
                if i:
                    to.step(), ts.step(), sched_step(cs)
                assert last_lr(cs, 1) == pytest.approx(ts.get_last_lr()[1], rel=1e-12)
    sched_free(cs), opt_free(co)


def test_cyclic_lr_custom_scale_fn():
    to, co, keep = make_opts("sgd", 1)
    ts = torch.optim.lr_scheduler.CyclicLR(to, 0.01, 0.1, step_size_up=2, scale_fn=lambda x: 1 / (x + 1),
                                           scale_mode="iterations")
    fn = SCALE_FN(lambda x, u: 1 / (x + 1))
    o = CyclicOpts(2, 0, b"triangular", 1.0, fn, None, True, True, 0.8, 0.9)
    cs = cyclic_new(co, 1, (ctypes.c_double * 1)(0.01), (ctypes.c_double * 1)(0.1), ctypes.byref(o))
    assert cs, L.ct_last_error()
    trace(to, ts, co, cs, "sgd", 12)
    sched_free(cs), opt_free(co)


ONECYCLE = [dict(), dict(anneal_strategy="linear"), dict(three_phase=True, pct_start=0.25),
            dict(pct_start=0.5, div_factor=10.0, final_div_factor=100.0, base_momentum=0.7, max_momentum=0.9)]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("k", range(len(ONECYCLE)))
def test_one_cycle_lr(kind, k):
    kw = ONECYCLE[k]
    to, co, keep = make_opts(kind, 2)
    ts = torch.optim.lr_scheduler.OneCycleLR(to, [0.5, 1.0], total_steps=20, **kw)
    o = OneCycleOpts(kw.get("pct_start", 0.3), kw.get("anneal_strategy", "cos").encode(), True,
                     kw.get("base_momentum", 0.85), kw.get("max_momentum", 0.95), kw.get("div_factor", 25.0),
                     kw.get("final_div_factor", 1e4), kw.get("three_phase", False))
    cs = onecycle_new(co, 2, D2(0.5, 1.0), 20, ctypes.byref(o))
    assert cs, L.ct_last_error()
    with case("lr_scheduler.one_cycle_lr"):
        trace(to, ts, co, cs, kind, 20)
    # one step more than total_steps is an error in both
    assert sched_step(cs) < 0 and "Tried to step 21 times" in L.ct_last_error()
    with pytest.raises(ValueError):
        ts.step()
    sched_free(cs), opt_free(co)


def seq_children(co, which):
    """ctorch children for SequentialLR cases (same construction order as torch)."""
    mk = {
        "linear": lambda: _raw("ct_sched_linear_lr_new", P, P, ctypes.c_double, ctypes.c_double, ctypes.c_int64)(
            co, 0.1, 1.0, 4),
        "cosine": lambda: _raw("ct_sched_cosine_annealing_lr_new", P, P, ctypes.c_int64, ctypes.c_double)(co, 10, 0.001),
        "exp": lambda: _raw("ct_sched_exponential_lr_new", P, P, ctypes.c_double)(co, 0.8),
        "step": lambda: _raw("ct_sched_step_lr_new", P, P, ctypes.c_int64, ctypes.c_double)(co, 2, 0.5),
        "warm": lambda: _raw("ct_sched_cosine_warm_restarts_new", P, P, ctypes.c_int64, ctypes.c_int64,
                             ctypes.c_double)(co, 3, 1, 0.0),
    }
    return [mk[w]() for w in which]


def seq_torch(to, which):
    S = torch.optim.lr_scheduler
    mk = {"linear": lambda: S.LinearLR(to, 0.1, 1.0, 4), "cosine": lambda: S.CosineAnnealingLR(to, 10, 0.001),
          "exp": lambda: S.ExponentialLR(to, 0.8), "step": lambda: S.StepLR(to, 2, 0.5),
          "warm": lambda: S.CosineAnnealingWarmRestarts(to, 3)}
    return [mk[w]() for w in which]


SEQ = [(["linear", "cosine"], [4]), (["exp", "step"], [3]), (["linear", "exp", "cosine"], [2, 7]),
       (["step", "warm"], [5]), (["cosine", "linear"], [6])]


@pytest.mark.parametrize("k", range(len(SEQ)))
def test_sequential_lr(k):
    which, ms = SEQ[k]
    to, co, keep = make_opts("sgd", 2)
    ts = torch.optim.lr_scheduler.SequentialLR(to, seq_torch(to, which), ms)
    kids = seq_children(co, which)
    assert all(kids), L.ct_last_error()
    cs = seq_new(co, len(kids), (P * len(kids))(*kids), (ctypes.c_int64 * len(ms))(*ms))
    assert cs, L.ct_last_error()
    with case("lr_scheduler.sequential_lr"):
        trace(to, ts, co, cs, "sgd", 20)
    sched_free(cs), opt_free(co)


def test_sequential_state_dict_resumes():
    """Save after 7 steps, load into a fresh SequentialLR, continue: same lrs as straight."""
    def build():
        to, co, keep = make_opts("sgd", 1)
        kids = seq_children(co, ["linear", "cosine"])
        return co, seq_new(co, 2, (P * 2)(*kids), (ctypes.c_int64 * 1)(4)), keep
    co, cs, keep = build()
    for _ in range(7):
        sched_step(cs)
    sd = ctorch.Dict(sd_get(cs))
    lr7 = get_opt(co, 0, b"lr")
    straight = []
    for _ in range(8):
        sched_step(cs)
        straight.append(last_lr(cs, 0))
    co2, cs2, keep2 = build()
    assert sd_load(cs2, sd._p) == 0, L.ct_last_error()
    # the optimizer's lr is part of the optimizer's state: carry it over as a checkpoint would
    assert set_opt(co2, 0, b"lr", lr7) == 0
    resumed = []
    for _ in range(8):
        sched_step(cs2)
        resumed.append(last_lr(cs2, 0))
    assert resumed == straight
    for p in (cs, cs2):
        sched_free(p)
    opt_free(co), opt_free(co2)


def test_training_20_steps_adam_onecycle():
    """Parameters after 20 Adam steps under OneCycleLR (beta1 cycling) equal torch's."""
    torch.manual_seed(0)
    X, Y, W0 = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64), \
        torch.randn(5, 3, dtype=torch.float64)
    tw = W0.clone().requires_grad_()
    to = torch.optim.Adam([tw], lr=0.01)
    ts = torch.optim.lr_scheduler.OneCycleLR(to, 0.05, total_steps=20)
    cw = ctorch.from_torch(W0.clone()).requires_grad_()
    d = ctorch.Dict()
    dict_set(d._p, b"w", cw.ptr)
    co = adam_new(d._p, 0.01, 0.9, 0.999, 1e-8, 0, False, False)
    cs = onecycle_new(co, 1, (ctypes.c_double * 1)(0.05), 20, None)
    assert cs, L.ct_last_error()
    mm = L.declare("ct_matmul", "T(T,T)")
    mse = L.declare("ct_nn_mse_loss", "T(T,T,i)")
    backward = L.declare("ct_backward", "st(T,T,b,b)")
    zero = _raw("ct_optim_zero_grad", ctypes.c_int, P, ctypes.c_bool)
    cx, cy = ctorch.from_torch(X), ctorch.from_torch(Y)
    for _ in range(20):
        to.zero_grad()
        torch.nn.functional.mse_loss(X @ tw, Y).backward()
        to.step()
        ts.step()
        zero(co, True)
        backward(mse(mm(cx, cw), cy, 0), None, False, False)
        assert opt_step(co) == 0
        assert sched_step(cs) == 0, L.ct_last_error()
    with case("lr_scheduler.one_cycle_lr"):
        assert torch.allclose(cw.torch(), tw.detach(), rtol=1e-12, atol=1e-14)
    sched_free(cs), opt_free(co)


def test_errors():
    to, co, keep = make_opts("sgd", 2)
    L.ct_clear_error()
    assert not onecycle_new(co, 3, (ctypes.c_double * 3)(1, 2, 3), 10, None)
    assert "expected 1 or 2 values for max_lr" in L.ct_last_error()
    assert not onecycle_new(co, 1, (ctypes.c_double * 1)(1), 0, None)
    assert "total_steps" in L.ct_last_error()
    bad = OneCycleOpts(0.3, b"cosine", True, 0.85, 0.95, 25.0, 1e4, False)
    assert not onecycle_new(co, 1, (ctypes.c_double * 1)(1), 10, ctypes.byref(bad))
    assert "anneal_strategy must be one of" in L.ct_last_error()
    o = CyclicOpts(3, 0, b"sawtooth", 1.0, SCALE_FN(), None, False, True, 0.8, 0.9)
    assert not cyclic_new(co, 1, (ctypes.c_double * 1)(0.1), (ctypes.c_double * 1)(1), ctypes.byref(o))
    assert "mode is invalid" in L.ct_last_error()
    # an optimizer without momentum cannot cycle it
    d = ctorch.Dict()
    w = ctorch.from_torch(torch.zeros(1)).requires_grad_()
    dict_set(d._p, b"w", w.ptr)
    ada = _raw("ct_optim_adagrad_new", P, P, *([ctypes.c_double] * 5 + [ctypes.c_bool]))(d._p, 0.1, 0, 0, 0, 1e-10,
                                                                                              False)
    assert not onecycle_new(ada, 1, (ctypes.c_double * 1)(1), 10, None)
    assert "must support momentum or beta1" in L.ct_last_error()
    # SequentialLR: milestones count, schedulers on another optimizer, plateau
    kids = seq_children(co, ["exp", "step"])
    assert not seq_new(co, 2, (P * 2)(*kids), None)  # takes over (frees) the children on failure too
    other = seq_children(ada, ["exp"]) + seq_children(co, ["step"])
    assert not seq_new(co, 2, (P * 2)(*other), (ctypes.c_int64 * 1)(3))
    assert "same optimizer" in L.ct_last_error()
    assert not seq_new(co, 0, None, None)
    opt_free(co), opt_free(ada)
