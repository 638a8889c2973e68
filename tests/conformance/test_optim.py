"""Optimizers and schedulers against torch.optim: 20 steps on the same model and data
give the same parameters (float64: 1e-12; float32: torch's tolerances), learning rates
match step by step, state_dict round trips resume identically, gradient clipping."""
import ctypes
import math

import pytest
import torch

import ctorch
from harness import assert_same, case

P = ctypes.c_void_p
L = ctorch.lib
_raw = ctorch._raw
backward = L.declare("ct_backward", "st(T,T,b,b)")
grad_of = L.declare("ct_grad", "T&(T)")
mm = L.declare("ct_matmul", "T(T,T)")
mse = L.declare("ct_nn_mse_loss", "T(T,T,i)")

CTORS = {
    "sgd": ("ct_optim_sgd_new", [ctypes.c_double] * 4 + [ctypes.c_bool] * 2),
    "adam": ("ct_optim_adam_new", [ctypes.c_double] * 5 + [ctypes.c_bool] * 2),
    "adamw": ("ct_optim_adamw_new", [ctypes.c_double] * 5 + [ctypes.c_bool] * 2),
    "rmsprop": ("ct_optim_rmsprop_new", [ctypes.c_double] * 5 + [ctypes.c_bool] * 2),
    "adagrad": ("ct_optim_adagrad_new", [ctypes.c_double] * 5 + [ctypes.c_bool]),
    "adadelta": ("ct_optim_adadelta_new", [ctypes.c_double] * 4 + [ctypes.c_bool]),
    "adamax": ("ct_optim_adamax_new", [ctypes.c_double] * 5 + [ctypes.c_bool]),
    "nadam": ("ct_optim_nadam_new", [ctypes.c_double] * 6 + [ctypes.c_bool] * 2),
    "radam": ("ct_optim_radam_new", [ctypes.c_double] * 5 + [ctypes.c_bool] * 2),
}


class Opt:
    def __init__(self, kind, params_dict, *args):
        name, types = CTORS[kind]
        f = _raw(name, P, P, *types)
        L.ct_clear_error()
        self.p = f(params_dict._p, *args)
        if not self.p:
            raise ctorch.CtorchError(L.ct_last_error())

    def step(self):
        assert _raw("ct_optim_step", ctypes.c_int, P)(self.p) == 0, L.ct_last_error()

    def zero_grad(self):
        _raw("ct_optim_zero_grad", ctypes.c_int, P, ctypes.c_bool)(self.p, True)

    def add_group(self, d):
        return _raw("ct_optim_add_param_group", ctypes.c_int, P, P)(self.p, d._p)

    def set(self, g, name, v):
        assert _raw("ct_optim_set_option", ctypes.c_int, P, ctypes.c_int, ctypes.c_char_p, ctypes.c_double)(
            self.p, g, name.encode(), v) == 0, L.ct_last_error()

    def lr(self, g=0):
        return _raw("ct_optim_get_lr", ctypes.c_double, P, ctypes.c_int)(self.p, g)

    def state_dict(self):
        return ctorch.Dict(_raw("ct_optim_state_dict", P, P)(self.p))

    def load(self, d):
        assert _raw("ct_optim_load_state_dict", ctypes.c_int, P, P)(self.p, d._p) == 0, L.ct_last_error()

    def __del__(self):
        if getattr(self, "p", None):
            _raw("ct_optim_free", None, P)(self.p)


def setup(dtype, n_groups=1):
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(5, 3, dtype=dtype, generator=g) for _ in range(2)]
    x = torch.randn(8, 5, dtype=dtype, generator=g)
    y = torch.randn(8, 3, dtype=dtype, generator=g)
    tp = [w.clone().requires_grad_() for w in ws]
    cp = [ctorch.from_torch(w).requires_grad_() for w in ws]
    dicts = [ctorch.Dict() for _ in range(2)]
    for i, c in enumerate(cp):
        d = dicts[0] if n_groups == 1 else dicts[i]
        _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, f"w{i}".encode(), c.ptr)
    return tp, cp, dicts, x, y


def loss_pair(tp, cp, x, y):
    tl = torch.nn.functional.mse_loss((x @ tp[0]) * (x @ tp[1]), y)
    cx, cy = ctorch.from_torch(x), ctorch.from_torch(y)
    cl = mse(ctorch.call("ct_mul", mm(cx, cp[0]), mm(cx, cp[1])), cy, 0)
    return tl, cl


CONFIGS = [
    ("sgd", dict(lr=0.05), (0.05, 0.0, 0.0, 0.0, False, False)),
    ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), (0.05, 0.9, 0.1, 0.01, False, False)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True), (0.05, 0.9, 0.0, 0.0, True, True)),
    ("adam", dict(lr=0.01), (0.01, 0.9, 0.999, 1e-8, 0.0, False, False)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
     (0.01, 0.8, 0.99, 1e-6, 0.1, True, False)),
    ("adam", dict(lr=0.01, maximize=True), (0.01, 0.9, 0.999, 1e-8, 0.0, False, True)),
    ("adamw", dict(lr=0.01), (0.01, 0.9, 0.999, 1e-8, 0.01, False, False)),
    ("adamw", dict(lr=0.02, weight_decay=0.3, amsgrad=True), (0.02, 0.9, 0.999, 1e-8, 0.3, True, False)),
    ("rmsprop", dict(lr=0.01), (0.01, 0.99, 1e-8, 0.0, 0.0, False, False)),
    ("rmsprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5, centered=True),
     (0.01, 0.9, 1e-8, 0.1, 0.5, True, False)),
    ("adagrad", dict(lr=0.1), (0.1, 0.0, 0.0, 0.0, 1e-10, False)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5), (0.1, 0.01, 0.1, 0.5, 1e-10, False)),
    ("adadelta", dict(), (1.0, 0.9, 1e-6, 0.0, False)),
    ("adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, maximize=True), (0.5, 0.8, 1e-5, 0.1, True)),
    ("adamax", dict(), (2e-3, 0.9, 0.999, 1e-8, 0.0, False)),
    ("adamax", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1), (0.01, 0.8, 0.95, 1e-8, 0.1, False)),
    ("nadam", dict(), (2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3, False, False)),
    ("nadam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01), (0.01, 0.9, 0.999, 1e-8, 0.1, 0.01, False, False)),
    ("nadam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), (0.01, 0.9, 0.999, 1e-8, 0.1, 4e-3, True, False)),
    ("radam", dict(), (1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)),
    ("radam", dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1), (0.01, 0.5, 0.6, 1e-8, 0.1, False, False)),
    ("radam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True), (0.01, 0.9, 0.999, 1e-8, 0.1, True, False)),
]
TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
         "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta, "adamax": torch.optim.Adamax,
         "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam}


def run(kind, tkw, cargs, dtype, steps=20, groups=1):
    tp, cp, dicts, x, y = setup(dtype, groups)
    if groups == 1:
        topt = TORCH[kind](tp, **tkw)
        copt = Opt(kind, dicts[0], *cargs)
    else:
        topt = TORCH[kind]([{"params": [tp[0]]}, {"params": [tp[1]], "lr": tkw["lr"] * 3}], **tkw)
        copt = Opt(kind, dicts[0], *cargs)
        assert copt.add_group(dicts[1]) == 1
        copt.set(1, "lr", tkw["lr"] * 3)
    for _ in range(steps):
        topt.zero_grad()
        copt.zero_grad()
        tl, cl = loss_pair(tp, cp, x, y)
        tl.backward()
        backward(cl, None, False, False)
        topt.step()
        copt.step()
    return tp, cp, topt, copt, dicts, x, y


@pytest.mark.parametrize("k", range(len(CONFIGS)))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_optimizer_20_steps(k, dtype):
    kind, tkw, cargs = CONFIGS[k]
    with case(f"optim.{kind}"):
        tp, cp, *_ = run(kind, tkw, cargs, dtype)
        tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else {}
        for t, c in zip(tp, cp):
            assert_same(c, t.detach(), **tol)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_param_groups(kind):
    tkw, cargs = next((t, c) for kk, t, c in CONFIGS if kk == kind)
    with case(f"optim.{kind}"):
        tp, cp, *_ = run(kind, tkw, cargs, torch.float64, groups=2)
        for t, c in zip(tp, cp):
            assert_same(c, t.detach(), atol=1e-12, rtol=1e-12)


# SGD, Adam and AdamW update all parameters in one pass split between the threads once
# the parameters hold CT_GRAIN (32768) elements together: each parameter of that size or
# more cut in its own parts, the smaller ones as one sequence. Sizes here that are not
# multiples of 16, below and above that grain (two large ones, one between small ones),
# in two groups with different options.
MANY = [(3,), (17,), (130, 257), (40, 50), (1,), (5, 3), (100, 90), (170, 201), (7,)]


def many_params(dtype):
    g = torch.Generator().manual_seed(1)
    tp = [torch.randn(*s, dtype=dtype, generator=g).requires_grad_() for s in MANY]
    grads = [[torch.randn(*s, dtype=dtype, generator=g) for s in MANY] for _ in range(4)]
    cp = [ctorch.from_torch(t.detach()).requires_grad_() for t in tp]
    dicts = [ctorch.Dict(), ctorch.Dict()]
    for i, c in enumerate(cp):
        _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(dicts[i % 2]._p, f"p{i}".encode(), c.ptr)
    return tp, cp, grads, dicts


def step_many(kind, tkw, cargs, dtype, threads):
    tp, cp, grads, dicts = many_params(dtype)
    topt = TORCH[kind]([{"params": tp[0::2]}, {"params": tp[1::2], "lr": tkw["lr"] * 3}], **tkw)
    copt = Opt(kind, dicts[0], *cargs)
    assert copt.add_group(dicts[1]) == 1
    copt.set(1, "lr", tkw["lr"] * 3)
    old = L.ct_get_num_threads()
    L.ct_set_num_threads(threads)
    try:
        for gs in grads:
            for t, c, gr in zip(tp, cp, gs):
                t.grad = gr.clone()
                c.grad = ctorch.from_torch(gr)
            topt.step()
            copt.step()
    finally:
        L.ct_set_num_threads(old)
    return tp, [c.torch().clone() for c in cp]


@pytest.mark.parametrize("k", range(8))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_one_pass_over_all_parameters(k, dtype):
    kind, tkw, cargs = CONFIGS[k]
    assert kind in ("sgd", "adam", "adamw")
    with case(f"optim.{kind}"):
        tp, c2 = step_many(kind, tkw, cargs, dtype, 2)
        _, c1 = step_many(kind, tkw, cargs, dtype, 1)
        tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else {}
        for t, a, b in zip(tp, c2, c1):
            assert_same(a, t.detach(), **tol)
            assert torch.equal(a, b)  # the same bits however the pass is cut between threads


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_step_refusing_one_parameter_changes_none(kind):
    """A parameter the step refuses (float16) leaves the others, their step counts and
    their state as they were (PyTorch's loop would have updated those before it)."""
    _, tkw, cargs = CONFIGS[{"sgd": 1, "adam": 3}[kind]]  # SGD with momentum; Adam
    good = ctorch.from_torch(torch.ones(300, 200)).requires_grad_()
    bad = ctorch.from_torch(torch.ones(4, dtype=torch.float16)).requires_grad_()
    d = ctorch.Dict()
    for name, t in (("good", good), ("bad", bad)):
        _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, name.encode(), t.ptr)
    opt = Opt(kind, d, *cargs)
    good.grad = ctorch.from_torch(torch.full((300, 200), 0.5))
    bad.grad = ctorch.from_torch(torch.ones(4, dtype=torch.float16))
    with case(f"optim.{kind}"):
        assert _raw("ct_optim_step", ctypes.c_int, P)(opt.p) != 0
        assert "float32 and float64 parameters are supported, got float16" in L.ct_last_error()
        assert torch.equal(good.torch(), torch.ones(300, 200))
        assert not any(k.startswith("state.") for k in opt.state_dict().keys())
        bad.grad = None
        opt.step()  # now a first step: SGD's momentum buffer starts as the gradient
        tgood = torch.ones(300, 200, requires_grad=True)
        tgood.grad = torch.full((300, 200), 0.5)
        TORCH[kind]([tgood], **tkw).step()
        assert_same(good, tgood.detach())


def test_gradient_sharing_a_parameter_memory_steps_in_order():
    """b's gradient is a's memory: PyTorch updates a first, and b then reads a's new
    values. In one pass on two threads, a would be the last parameter of the first
    thread's range (after x) and b the first of the second's, read long before the
    first thread gets to a: the update must see the overlap and run in order."""
    g = torch.Generator().manual_seed(2)
    ts = [torch.randn(n, generator=g).requires_grad_() for n in (300000, 10000, 10000, 310000)]
    cs = [ctorch.from_torch(t.detach()).requires_grad_() for t in ts]
    for t, c in zip(ts, cs):
        gr = torch.randn(t.shape, generator=g)
        t.grad, c.grad = gr.clone(), ctorch.from_torch(gr)
    ts[2].grad, cs[2].grad = ts[1].detach(), cs[1].detach()
    d = ctorch.Dict()
    for name, c in zip("xaby", cs):
        _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, name.encode(), c.ptr)
    opt = Opt("sgd", d, 0.5, 0.0, 0.0, 0.0, False, False)
    torch.optim.SGD(ts, lr=0.5).step()
    old = L.ct_get_num_threads()
    L.ct_set_num_threads(2)
    try:
        with case("optim.sgd"):
            opt.step()
            for t, c in zip(ts, cs):
                assert_same(c, t.detach())
    finally:
        L.ct_set_num_threads(old)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_state_dict_round_trip_resumes_identically(k):
    kind, tkw, cargs = CONFIGS[k]
    with case(f"optim.{kind} state_dict"):
        tp, cp, topt, copt, dicts, x, y = run(kind, tkw, cargs, torch.float32, steps=5)
        sd = copt.state_dict()
        keys = sd.keys()
        assert "state.0.step" in keys and "param_groups.0.lr" in keys and "param_groups.0.params" in keys
        # a fresh optimizer on the same parameters, loaded, continues exactly like the original
        copt2 = Opt(kind, dicts[0], *cargs)
        copt2.load(sd)
        snap = [c.torch().clone() for c in cp]
        for o in (copt, copt2):
            with ctorch.no_grad():
                for c, s in zip(cp, snap):
                    L.declare("ct_copy_", "st(T,T)")(c, ctorch.from_torch(s))
            for _ in range(3):
                o.zero_grad()
                _, cl = loss_pair(tp, cp, x, y)
                backward(cl, None, False, False)
                o.step()
            if o is copt:
                after1 = [c.torch().clone() for c in cp]
        for a, c in zip(after1, cp):
            assert torch.equal(a, c.torch())


def test_optimizer_errors():
    _, _, dicts, _, _ = setup(torch.float64)
    for kind, args, msg in [("sgd", (-1.0, 0.0, 0.0, 0.0, False, False), "Invalid learning rate"),
                            ("adam", (1e-3, 1.0, 0.999, 1e-8, 0.0, False, False), "Invalid beta parameter at index 0"),
                            ("sgd", (0.1, 0.0, 0.0, 0.0, True, False), "Nesterov momentum requires"),
                            ("adagrad", (0.1, -1.0, 0.0, 0.0, 1e-10, False), "Invalid lr_decay")]:
        with case(f"optim.{kind}"):
            with pytest.raises(ctorch.CtorchError, match=msg):
                Opt(kind, dicts[0], *args)


def lr_trace_torch(make, steps):
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=0.5)
    s = make(o)
    out = [s.get_last_lr()[0]]
    for _ in range(steps):
        o.step()
        s.step()
        out.append(s.get_last_lr()[0])
    return out


SCHEDS = [
    ("ct_sched_step_lr_new", [ctypes.c_int64, ctypes.c_double], (3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
    ("ct_sched_multistep_lr_new", [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_double],
     (3, (ctypes.c_int64 * 3)(2, 5, 5), 0.3), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5, 5], 0.3)),
    ("ct_sched_exponential_lr_new", [ctypes.c_double], (0.9,), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ("ct_sched_cosine_annealing_lr_new", [ctypes.c_int64, ctypes.c_double], (7, 0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.01)),
    ("ct_sched_linear_lr_new", [ctypes.c_double, ctypes.c_double, ctypes.c_int64], (0.25, 1.0, 6),
     lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.25, 1.0, 6)),
    ("ct_sched_polynomial_lr_new", [ctypes.c_int64, ctypes.c_double], (8, 2.0),
     lambda o: torch.optim.lr_scheduler.PolynomialLR(o, 8, 2.0)),
    ("ct_sched_cosine_warm_restarts_new", [ctypes.c_int64, ctypes.c_int64, ctypes.c_double], (3, 2, 0.01),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 3, 2, 0.01)),
    ("ct_sched_cosine_warm_restarts_new", [ctypes.c_int64, ctypes.c_int64, ctypes.c_double], (4, 1, 0.0),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, 4)),
]


@pytest.mark.parametrize("k", range(len(SCHEDS)))
def test_scheduler_matches_torch(k):
    name, types, args, tmake = SCHEDS[k]
    want = lr_trace_torch(tmake, 20)
    d = ctorch.Dict()
    w = ctorch.from_torch(torch.zeros(1)).requires_grad_()
    _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, b"w", w.ptr)
    o = Opt("sgd", d, 0.5, 0.0, 0.0, 0.0, False, False)
    s = _raw(name, P, P, *types)(o.p, *args)
    assert s, L.ct_last_error()
    last = _raw("ct_sched_get_last_lr", ctypes.c_double, P, ctypes.c_int)
    got = [last(s, 0)]
    for _ in range(20):
        _raw("ct_sched_step", ctypes.c_int, P)(s)
        got.append(last(s, 0))
    with case("lr_scheduler." + name[9:-3]):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert o.lr() == pytest.approx(want[-1], rel=1e-12)
    _raw("ct_sched_free", None, P)(s)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm(norm_type):
    tp, cp, dicts, x, y = setup(torch.float64)
    tl, cl = loss_pair(tp, cp, x, y)
    tl.backward()
    backward(cl, None, False, False)
    want = torch.nn.utils.clip_grad_norm_(tp, 0.1, norm_type)
    got = _raw("ct_nn_utils_clip_grad_norm_", ctypes.c_double, P, ctypes.c_double, ctypes.c_double, ctypes.c_bool)(
        dicts[0]._p, 0.1, norm_type, False)
    with case("clip_grad_norm_"):
        assert got == pytest.approx(want.item(), rel=1e-12)
        for t, c in zip(tp, cp):
            assert_same(grad_of(c), t.grad, atol=1e-14, rtol=1e-12)
    torch.nn.utils.clip_grad_value_(tp, 0.01)
    assert _raw("ct_nn_utils_clip_grad_value_", ctypes.c_int, P, ctypes.c_double)(dicts[0]._p, 0.01) == 0
    with case("clip_grad_value_"):
        for t, c in zip(tp, cp):
            assert_same(grad_of(c), t.grad)


def test_clip_grad_norm_many_parameters():
    """5000 parameters (more than any fixed table): the same total norm and scaling as torch."""
    torch.manual_seed(0)
    grads = [torch.randn(3, dtype=torch.float64) for _ in range(5000)]
    tp = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in grads]
    for p, g in zip(tp, grads):
        p.grad = g.clone()
    d = ctorch.Dict()
    keep = []
    set_grad = L.declare("ct_set_grad", "st(T,T)")
    for i, g in enumerate(grads):
        c = ctorch.from_torch(torch.zeros(3, dtype=torch.float64)).requires_grad_()
        assert set_grad(c, ctorch.from_torch(g.clone())) == 0
        _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, f"p{i}".encode(), c.ptr)
        keep.append(c)
    want = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    got = _raw("ct_nn_utils_clip_grad_norm_", ctypes.c_double, P, ctypes.c_double, ctypes.c_double, ctypes.c_bool)(
        d._p, 1.0, 2.0, False)
    with case("clip_grad_norm_"):
        assert got == pytest.approx(want.item(), rel=1e-12)
        for t, c in zip(tp[::500], keep[::500]):
            assert_same(grad_of(c), t.grad, atol=1e-14, rtol=1e-12)


@pytest.mark.parametrize("mode_max,thr_abs,cooldown", [(False, False, 0), (True, True, 2), (False, True, 1)])
def test_reduce_lr_on_plateau(mode_max, thr_abs, cooldown):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.7, 0.71, 0.72, 0.9, 0.95, 0.96]
    if mode_max:
        metrics = [-m for m in metrics]
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=0.5)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(o, "max" if mode_max else "min", factor=0.5, patience=2,
                                                    threshold=0.01, threshold_mode="abs" if thr_abs else "rel",
                                                    cooldown=cooldown, min_lr=0.01)
    want = []
    for m in metrics:
        ts.step(m)
        want.append(o.param_groups[0]["lr"])
    d = ctorch.Dict()
    w = ctorch.from_torch(torch.zeros(1)).requires_grad_()
    _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)(d._p, b"w", w.ptr)
    co = Opt("sgd", d, 0.5, 0.0, 0.0, 0.0, False, False)
    s = _raw("ct_sched_reduce_on_plateau_new", P, P, ctypes.c_bool, ctypes.c_double, ctypes.c_int64, ctypes.c_double,
             ctypes.c_bool, ctypes.c_int64, ctypes.c_double, ctypes.c_double)(co.p, mode_max, 0.5, 2, 0.01, thr_abs,
                                                                                cooldown, 0.01, 1e-8)
    got = []
    for m in metrics:
        assert _raw("ct_sched_step_metric", ctypes.c_int, P, ctypes.c_double)(s, m) == 0
        got.append(co.lr())
    with case("lr_scheduler.reduce_on_plateau"):
        assert got == pytest.approx(want, rel=1e-12)
    _raw("ct_sched_free", None, P)(s)
