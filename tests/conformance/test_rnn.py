"""Recurrent layers against torch.nn: RNN (tanh/relu), LSTM (with proj_size), GRU and
their cells. Same seed -> same weights (names, order, values) and reprs; torch's weights
loaded into ctorch -> same outputs, final states and gradients w.r.t. the input, the
initial states and every parameter, for 1/2 layers x uni/bidirectional x batch_first,
unbatched inputs, dropout in training mode (same mask from the same seed); the
functional forms against torch.lstm / torch.lstm_cell & co; errors; gradcheck and
gradgradcheck in float64."""
import ctypes
import itertools

import pytest
import torch

import ctorch
from harness import assert_same, case, check, check_error, gradcheck, gradgradcheck, second_order_against_torch

nn = torch.nn
L = ctorch.lib
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
P = ctypes.c_void_p
seed = L.declare("ct_manual_seed", "v(i64)")
grad_of = L.declare("ct_grad", "T&(T)")

# ---- bindings of the new functions (declared here, not in python/ctorch) ----
_fwd_n = ctorch._raw("ct_module_forward_n", ctypes.c_int, P, ctypes.c_int, ctypes.POINTER(P), ctypes.c_int,
                     ctypes.POINTER(P))


class RnnOpts(ctypes.Structure):
    _fields_ = [("num_layers", ctypes.c_int64), ("bidirectional", ctypes.c_bool), ("batch_first", ctypes.c_bool),
                ("train", ctypes.c_bool), ("dropout", ctypes.c_double)]


rnn_tanh_cell = L.declare("ct_nn_rnn_tanh_cell", "T(T,T,T,T,T,T)")
rnn_relu_cell = L.declare("ct_nn_rnn_relu_cell", "T(T,T,T,T,T,T)")
lstm_cell = L.declare("ct_nn_lstm_cell", "T(T,T,T,T,T,T,T,T*)")
gru_cell = L.declare("ct_nn_gru_cell", "T(T,T,T,T,T,T)")
_rnn_tanh = L.declare("ct_nn_rnn_tanh", "T(T,T,Tn,p,T*)")
_rnn_relu = L.declare("ct_nn_rnn_relu", "T(T,T,Tn,p,T*)")
_lstm = L.declare("ct_nn_lstm", "T(T,T,T,Tn,p,T*,T*)")
_gru = L.declare("ct_nn_gru", "T(T,T,Tn,p,T*)")


def opts(num_layers=1, bidirectional=False, batch_first=False, train=False, dropout=0.0):
    return RnnOpts(num_layers, bidirectional, batch_first, train, dropout)


def functional(kind, x, h0, c0, params, o):
    """ct_nn_<kind>(...) -> [output, h_n(, c_n)]"""
    a = ctypes.addressof(o)
    if kind == "lstm":
        return list(_lstm(x, h0, c0, params, a))
    f = {"rnn_tanh": _rnn_tanh, "rnn_relu": _rnn_relu, "gru": _gru}[kind]
    return list(f(x, h0, params, a))


def forward_n(m, inputs, n_out):
    """ct_module_forward_n(m, inputs (None = NULL), n_out) -> list of Tensors."""
    ins = [ctorch.as_tensor(x) for x in inputs]
    ai = (P * max(1, len(ins)))(*[t._p if t is not None else None for t in ins])
    ao = (P * max(1, n_out))()
    ctorch._clear_error()
    rc = _fwd_n(m._p, len(ins), ai, n_out, ao)
    outs = [ctorch.Tensor(p) if p else None for p in ao[:n_out]]
    if rc < 0:
        raise ctorch._error(rc)
    return outs[:rc]


# ---- module pairs ----
def make_layer(kind, i, h, layers=1, bias=True, batch_first=False, dropout=0.0, bidi=False, proj=0):
    """(torch module, ctorch module), both constructed right after the same seed."""
    torch.manual_seed(1234)
    seed(1234)
    if kind == "lstm":
        tm = nn.LSTM(i, h, layers, bias, batch_first, dropout, bidi, proj)
        cm = ctorch.module("ct_nn_lstm_new", i, h, layers, bias, batch_first, dropout, bidi, proj)
    elif kind == "gru":
        tm = nn.GRU(i, h, layers, bias, batch_first, dropout, bidi)
        cm = ctorch.module("ct_nn_gru_new", i, h, layers, bias, batch_first, dropout, bidi)
    else:
        nl = kind[4:]
        tm = nn.RNN(i, h, layers, nl, bias, batch_first, dropout, bidi)
        cm = ctorch.module("ct_nn_rnn_new", i, h, layers, nl, bias, batch_first, dropout, bidi)
    return tm, cm


def make_cell(kind, i, h, bias=True):
    torch.manual_seed(99)
    seed(99)
    if kind == "lstm":
        return nn.LSTMCell(i, h, bias), ctorch.module("ct_nn_lstm_cell_new", i, h, bias)
    if kind == "gru":
        return nn.GRUCell(i, h, bias), ctorch.module("ct_nn_gru_cell_new", i, h, bias)
    nl = kind[4:]
    return nn.RNNCell(i, h, bias, nl), ctorch.module("ct_nn_rnn_cell_new", i, h, bias, nl)


def assert_same_weights(tm, cm):
    sd = cm.state_dict().torch()
    want = tm.state_dict()
    assert list(sd) == list(want)
    for k, v in want.items():
        assert torch.equal(sd[k], v), k


def torch_outputs(kind, out):
    """torch's (output, h_n) / (output, (h_n, c_n)) / cell results as a flat list."""
    if isinstance(out, torch.Tensor):
        return [out]
    a, b = out
    return [a] + (list(b) if isinstance(b, tuple) else [b])


def compare_run(name, tm, cm, kind, inputs, *, train=False, dropout_seed=None, cell=False):
    """Runs torch and ctorch on the same inputs (x, h0[, c0]; None = omitted); compares
    outputs, then backward with the same random grad_outputs and compares the grads of
    every input given and of every parameter."""
    with case(name):
        tm.train(train), cm.train(train)
        t_in = [None if v is None else v.detach().clone().requires_grad_() for v in inputs]
        c_in = [None if v is None else ctorch.from_torch(v, requires_grad=True) for v in inputs]
        x, states = t_in[0], t_in[1:]
        if dropout_seed is not None:
            torch.manual_seed(dropout_seed)
        if all(s is None for s in states):
            want = tm(x)
        elif kind == "lstm":
            want = tm(x, tuple(states))
        else:
            want = tm(x, states[0])
        wl = torch_outputs(kind, want)
        if dropout_seed is not None:
            seed(dropout_seed)
        got = forward_n(cm, c_in, len(wl))
        assert len(got) == len(wl)
        for k, (g, w) in enumerate(zip(got, wl)):
            assert_same(g, w, what=f"{name} output {k}")
        gen = torch.Generator().manual_seed(7)
        gos = [torch.randn(w.shape, dtype=w.dtype, generator=gen) for w in wl]
        tm.zero_grad()
        torch.autograd.backward(wl, gos)
        cm.zero_grad()
        for k, (g, go) in enumerate(zip(got, gos)):
            g.backward(ctorch.from_torch(go), retain_graph=k < len(got) - 1)
        for k, (c, t) in enumerate(zip(c_in, t_in)):
            if t is not None:
                assert c.grad is not None, f"{name}: input {k} got no gradient"
                assert_same(c.grad, t.grad, what=f"{name} grad of input {k}")
        params = dict(cm.named_parameters().items())
        assert list(params) == [n for n, _ in tm.named_parameters()]
        for n, p in tm.named_parameters():
            assert_same(grad_of(params[n]), p.grad, what=f"{name} grad of {n}")


KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


# ---- init, names, reprs ----
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers,bidi,bias,batch_first,dropout", [
    (1, False, True, False, 0.0), (2, True, True, True, 0.5), (3, False, False, False, 0.25), (2, True, False, True, 0.0)])
def test_layer_init_names_repr(kind, layers, bidi, bias, batch_first, dropout):
    with pytest.warns(UserWarning) if dropout and layers == 1 else _nullctx():
        tm, cm = make_layer(kind, 6, 5, layers, bias, batch_first, dropout, bidi)
    with case(f"nn.{type(tm).__name__} init"):
        assert repr(cm) == repr(tm)
        assert_same_weights(tm, cm)
        assert cm.num_parameters() == sum(p.numel() for p in tm.parameters())


@pytest.mark.parametrize("layers,bidi,bias", [(1, False, True), (2, True, True), (2, False, False), (3, True, False)])
def test_lstm_proj_init_names_repr(layers, bidi, bias):
    tm, cm = make_layer("lstm", 6, 5, layers, bias, False, 0.0, bidi, proj=3)
    with case("nn.LSTM init"):
        assert repr(cm) == repr(tm)
        assert_same_weights(tm, cm)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_init_names_repr(kind, bias):
    tm, cm = make_cell(kind, 4, 6, bias)
    with case(f"nn.{type(tm).__name__} init"):
        assert repr(cm) == repr(tm)
        assert_same_weights(tm, cm)


def test_init_same_seed_same_numbers_big():
    # the LSTM of examples/seq_rnn.c followed by its head: one stream of draws
    torch.manual_seed(0)
    t_lstm, t_fc = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)
    seed(0)
    c_lstm = ctorch.module("ct_nn_lstm_new", 28, 128, 1, True, True, 0.0, False, 0)
    c_fc = ctorch.module("ct_nn_linear_new", 128, 10, True)
    with case("nn.LSTM init"):
        assert_same_weights(t_lstm, c_lstm)
        assert_same_weights(t_fc, c_fc)


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ---- forward and backward against torch ----
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidi", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_layer_matches_torch(kind, layers, bidi, batch_first, with_h0):
    T, B, I, H = 5, 3, 4, 6
    tm, cm = make_layer(kind, I, H, layers, True, batch_first, 0.0, bidi)
    seed(5)  # other weights in ctorch first: the load must replace them all
    cm = ctorch.module("ct_nn_lstm_new" if kind == "lstm" else "ct_nn_gru_new" if kind == "gru" else "ct_nn_rnn_new",
                       *((I, H, layers, True, batch_first, 0.0, bidi, 0) if kind == "lstm" else
                         (I, H, layers, True, batch_first, 0.0, bidi) if kind == "gru" else
                         (I, H, layers, kind[4:], True, batch_first, 0.0, bidi)))
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-0.6, 0.6)
    cm.load_state_dict(tm.state_dict())
    g = torch.Generator().manual_seed(11)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    D = 2 if bidi else 1
    ins = [x]
    if with_h0:
        ins.append(torch.randn(layers * D, B, H, generator=g))
        if kind == "lstm":
            ins.append(torch.randn(layers * D, B, H, generator=g))
    compare_run(f"nn.{type(tm).__name__}", tm, cm, kind, ins)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H", [300, 7])
def test_lstm_fused_cell_rows_in_parallel(dtype, H):
    """The fused cell kernel runs a step's rows on several threads from B * H = 4096 on:
    16 x 300 does (and its rows end in a partial SIMD vector), 16 x 7 does not. Values,
    h_n, c_n and every gradient against torch, over 12 steps."""
    T, B, I = 12, 16, 5
    tm, cm = make_layer("lstm", I, H, 1, True, False, 0.0, False)
    tm.to(dtype), cm.to(dtype)
    g = torch.Generator().manual_seed(21)
    x = torch.randn(T, B, I, dtype=dtype, generator=g)
    h0 = torch.randn(1, B, H, dtype=dtype, generator=g)
    c0 = torch.randn(1, B, H, dtype=dtype, generator=g)
    compare_run("nn.LSTM", tm, cm, "lstm", [x, h0, c0])


def f64_layer_inputs(kind, I, H, B, T, layers, bidi, seed):
    """float64 weights of a fresh torch layer (make_layer) and x [T, B, I], h0 and c0
    [layers * directions, B, H] drawn in that order from a generator seeded with seed."""
    tm, _ = make_layer(kind, I, H, layers, True, False, 0.0, bidi)
    tm.double()
    ps = [p.detach().clone() for p in tm._flat_weights]
    g = torch.Generator().manual_seed(seed)
    n = layers * (2 if bidi else 1)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=g)
    h0 = torch.randn(n, B, H, dtype=torch.float64, generator=g)
    c0 = torch.randn(n, B, H, dtype=torch.float64, generator=g)
    return ps, x, h0, c0


def test_lstm_fused_cell_strided_c0():
    """c0 given as a transposed view: the cell kernels read a contiguous copy of it,
    forward and backward."""
    T, B, I, H = 3, 4, 2, 5
    tm, cm = make_layer("lstm", I, H, 1, True, False, 0.0, False)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(T, B, I, generator=g)
    h0 = torch.randn(1, B, H, generator=g)
    c0 = torch.randn(1, H, B, generator=g).transpose(1, 2)
    assert not c0[0].is_contiguous()
    compare_run("nn.LSTM", tm, cm, "lstm", [x, h0, c0])


def test_lstm_layer_gradgradcheck_all_inputs():
    """Second derivatives through the fused cell with c0 and every weight differentiated
    (the two-layer check below leaves them out)."""
    ps, x, h0, c0 = f64_layer_inputs("lstm", 2, 3, 2, 3, 1, False, 4)
    o = opts(1, False)

    def f(x, h0, c0, *ps):
        out, hn, cn = functional("lstm", x, h0, c0, list(ps), o)
        r = ctorch.call("ct_add", ctorch.call("ct_sum", ctorch.call("ct_mul", out, out)), ctorch.call("ct_sum", hn))
        return ctorch.call("ct_add", r, ctorch.call("ct_sum", ctorch.call("ct_sin", cn)))
    gradcheck("lstm", f, [x, h0, c0] + ps)
    gradgradcheck("lstm", f, [x, h0, c0] + ps)


def test_lstm_double_backward_against_torch():
    """Gradients taken with create_graph (the fused cell's backward in differentiable ops)
    against torch's, then d/d(everything) of the sum of their squares against torch:
    gradgradcheck alone would not see create_graph gradients that are consistently wrong."""
    ps, x, h0, c0 = f64_layer_inputs("lstm", 3, 5, 4, 6, 1, False, 8)
    ins = [t.requires_grad_() for t in [x, h0, c0] + ps]
    x, h0, c0, ps = ins[0], ins[1], ins[2], ins[3:]
    gy = torch.randn(6, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(18))
    with case("lstm"):
        out = torch.lstm(x, (h0, c0), ps, True, 1, 0.0, False, False, False)[0]
        second_order_against_torch("lstm", lambda *c: functional("lstm", c[0], c[1], c[2], list(c[3:]), opts(1, False))[0],
                                   out, ins, gy)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T", [1, 2, 7, 9])  # 9: W_hh^T copied contiguous (from 8 steps)
@pytest.mark.parametrize("layers,bidi", [(1, False), (2, True)])
def test_lstm_without_grad_same_bits(dtype, T, layers, bidi):
    """Without a graph the layer keeps only the current step's activations and two cell
    states (alternating buffers) instead of the whole sequence's: the outputs and final
    states are bit-equal to the recorded run's, and match torch's."""
    B, I, H = 3, 4, 5
    tm, cm = make_layer("lstm", I, H, layers, True, False, 0.0, bidi)
    tm.to(dtype), cm.to(dtype)
    g = torch.Generator().manual_seed(31)
    D = layers * (2 if bidi else 1)
    x, h0, c0 = (torch.randn(*s, dtype=dtype, generator=g) for s in ((T, B, I), (D, B, H), (D, B, H)))
    with case("nn.LSTM without grad"):
        recorded = forward_n(cm, [x, h0, c0], 3)
        assert ctorch.call("ct_requires_grad", recorded[0])
        with ctorch.no_grad():
            plain = forward_n(cm, [x, h0, c0], 3)
        assert not ctorch.call("ct_requires_grad", plain[0])
        want = torch_outputs("lstm", tm(x, (h0, c0)))
        for k, (p, r, w) in enumerate(zip(plain, recorded, want)):
            assert torch.equal(p.torch(), r.torch()), f"output {k}: not the recorded run's bits"
            assert_same(p, w.detach(), what=f"output {k}")


def test_lstm_final_states_are_own_tensors():
    """h_n and c_n are tensors of their own (PyTorch's are): writing into them after the
    forward leaves the output and the saved states alone, and backward gives torch's
    gradients."""
    T, B, I, H = 4, 2, 3, 5
    tm, cm = make_layer("lstm", I, H, 1, True, False, 0.0, False)
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(5))
    with case("nn.LSTM h_n / c_n written in place"):
        tx = x.clone().requires_grad_()
        ty, (thn, tcn) = tm(tx)
        cx = ctorch.from_torch(x, requires_grad=True)
        cy, chn, ccn = forward_n(cm, [cx], 3)
        y_before = cy.torch().clone()
        with ctorch.no_grad():
            ctorch.call("ct_zero_", chn)
            ctorch.call("ct_zero_", ccn)
        assert torch.equal(cy.torch(), y_before)
        gy = torch.randn(T, B, H, generator=torch.Generator().manual_seed(6))
        ty.backward(gy)
        cy.backward(ctorch.from_torch(gy))
        assert_same(cx.grad, tx.grad, what="grad of x")
        params = dict(cm.named_parameters().items())
        for n, p in tm.named_parameters():
            assert_same(grad_of(params[n]), p.grad, what=f"grad of {n}")


@pytest.mark.parametrize("bidi", [False, True])
def test_lstm_recurrent_weight_grad_over_runs(bidi):
    """W_hh's gradient is formed by one collector node from what every step deposits in
    backward: a graph kept and run twice accumulates it twice; a run that asks only for
    the input's gradient (autograd.grad) leaves nothing behind for the next backward; a
    backward from the first steps' outputs alone sums only their deposits."""
    ps, x, h0, c0 = f64_layer_inputs("lstm", 3, 5, 4, 6, 1, bidi, 21)
    gy = torch.randn(6, 4, 10 if bidi else 5, dtype=torch.float64, generator=torch.Generator().manual_seed(22))
    ins = [t.clone().requires_grad_() for t in [x, h0, c0] + ps]
    out = torch.lstm(ins[0], (ins[1], ins[2]), ins[3:], True, 1, 0.0, False, bidi, False)[0]
    want = torch.autograd.grad(out, ins, gy, retain_graph=True)
    want_first = torch.autograd.grad(out[:2], ins, gy[:2])
    with case("lstm"):
        c_in = [ctorch.from_torch(t, requires_grad=True) for t in [x, h0, c0] + ps]
        cout = functional("lstm", c_in[0], c_in[1], c_in[2], c_in[3:], opts(1, bidi))[0]
        cgy = ctorch.from_torch(gy)
        ctorch.autograd_grad([cout], [c_in[0]], [cgy], retain_graph=True)  # the input only
        cout.backward(cgy, retain_graph=True)
        for k, (c, t) in enumerate(zip(c_in, want)):
            assert_same(c.grad.torch(), t, what=f"lstm gradient {k} after an input-only run")
        cout.backward(cgy, retain_graph=True)
        for k, (c, t) in enumerate(zip(c_in, want)):
            assert_same(c.grad.torch(), 2 * t, what=f"lstm gradient {k} after two runs")
        first = ctorch.call("ct_narrow", cout, 0, 0, 2)
        got = ctorch.autograd_grad([first], c_in, [ctorch.from_torch(gy[:2].contiguous())])
        for k, (c, t) in enumerate(zip(got, want_first)):
            assert_same(c, t, what=f"lstm gradient {k} from the first two steps")


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidi", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_proj_matches_torch(layers, bidi, batch_first, bias):
    T, B, I, H, Pj = 4, 2, 3, 6, 4
    tm, cm = make_layer("lstm", I, H, layers, bias, batch_first, 0.0, bidi, proj=Pj)
    g = torch.Generator().manual_seed(3)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    D = 2 if bidi else 1
    h0 = torch.randn(layers * D, B, Pj, generator=g)
    c0 = torch.randn(layers * D, B, H, generator=g)
    compare_run("nn.LSTM proj_size", tm, cm, "lstm", [x, h0, c0])
    compare_run("nn.LSTM proj_size", tm, cm, "lstm", [x])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [False])
def test_layer_no_bias(kind, bias):
    tm, cm = make_layer(kind, 3, 4, 2, bias, False, 0.0, True)
    x = torch.randn(4, 2, 3)
    compare_run(f"nn.{type(tm).__name__}", tm, cm, kind, [x])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidi", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_layer_unbatched(kind, bidi, batch_first, with_h0):
    T, I, H, layers = 4, 3, 5, 2
    tm, cm = make_layer(kind, I, H, layers, True, batch_first, 0.0, bidi, proj=2 if kind == "lstm" and bidi else 0)
    D = 2 if bidi else 1
    Hr = 2 if kind == "lstm" and bidi else H
    g = torch.Generator().manual_seed(8)
    ins = [torch.randn(T, I, generator=g)]
    if with_h0:
        ins.append(torch.randn(layers * D, Hr, generator=g))
        if kind == "lstm":
            ins.append(torch.randn(layers * D, H, generator=g))
    compare_run(f"nn.{type(tm).__name__} unbatched", tm, cm, kind, ins)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_float64_and_batch_of_one_step(kind):
    tm, cm = make_layer(kind, 3, 4, 2, True, False, 0.0, True)
    tm.double(), cm.to(torch.float64)
    x = torch.randn(1, 2, 3, dtype=torch.float64)
    compare_run(f"nn.{type(tm).__name__} float64", tm, cm, kind, [x])
    x = torch.randn(6, 1, 3, dtype=torch.float64)
    compare_run(f"nn.{type(tm).__name__} float64", tm, cm, kind, [x])


@pytest.mark.parametrize("kind", KINDS)
def test_layer_empty_batch(kind):
    tm, cm = make_layer(kind, 3, 4, 2, True, False, 0.0, True)
    x = torch.randn(5, 0, 3)
    with case(f"nn.{type(tm).__name__} empty batch"):
        got = forward_n(cm, [x], 3)
        want = torch_outputs(kind, tm(x))
        for g, w in zip(got, want):
            assert_same(g, w)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidi", [False, True])
def test_layer_dropout_training_matches_torch(kind, bidi):
    # training mode, dropout between layers: the same seed gives torch's masks
    tm, cm = make_layer(kind, 4, 5, 3, True, False, 0.4, bidi)
    x = torch.randn(6, 3, 4)
    compare_run(f"nn.{type(tm).__name__} dropout", tm, cm, kind, [x], train=True, dropout_seed=21)
    # eval mode: no dropout
    compare_run(f"nn.{type(tm).__name__} dropout", tm, cm, kind, [x], train=False)


def test_one_tensor_forward_returns_output():
    tm, cm = make_layer("lstm", 3, 4, 2, True, True, 0.0, True)
    x = torch.randn(2, 5, 3)
    with case("nn.LSTM forward"):
        assert_same(cm(ctorch.from_torch(x)), tm(x)[0])
    tc, cc = make_cell("lstm", 3, 4)
    with case("nn.LSTMCell forward"):
        assert_same(cc(ctorch.from_torch(x[:, 0])), tc(x[:, 0])[0])


# ---- cells ----
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_h", [False, True])
def test_cell_matches_torch(kind, bias, batched, with_h):
    I, H, B = 4, 5, 3
    tm, cm = make_cell(kind, I, H, bias)
    g = torch.Generator().manual_seed(2)
    shape = (B,) if batched else ()
    ins = [torch.randn(*shape, I, generator=g)]
    if with_h:
        ins.append(torch.randn(*shape, H, generator=g))
        if kind == "lstm":
            ins.append(torch.randn(*shape, H, generator=g))
    compare_run(f"nn.{type(tm).__name__}", tm, cm, kind, ins, cell=True)


def test_cell_chain_over_a_sequence():
    # a cell applied step by step equals the full layer
    I, H, B, T = 3, 4, 2, 5
    torch.manual_seed(0)
    layer = nn.GRU(I, H)
    cc = ctorch.module("ct_nn_gru_cell_new", I, H, True)
    cc.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(T, B, I)
    with case("nn.GRUCell"):
        h = None
        for t in range(T):
            h = forward_n(cc, [x[t], h], 1)[0]
        assert_same(h, layer(x)[1][0])


# functional cells against torch's functional cells (batched; torch's need 2-D)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_functional_cells(kind, bias):
    I, H, B = 3, 4, 2
    G = {"lstm": 4, "gru": 3}.get(kind, 1)
    g = torch.Generator().manual_seed(4)
    x, h, c = torch.randn(B, I, generator=g), torch.randn(B, H, generator=g), torch.randn(B, H, generator=g)
    w_ih, w_hh = torch.randn(G * H, I, generator=g), torch.randn(G * H, H, generator=g)
    b_ih, b_hh = (torch.randn(G * H, generator=g), torch.randn(G * H, generator=g)) if bias else (None, None)
    name = {"lstm": "lstm_cell", "gru": "gru_cell"}.get(kind, kind + "_cell")
    if kind == "lstm":
        def ct_fn(x, h, c, wi, wh, bi=None, bh=None):
            hy, cy = lstm_cell(x, h, c, wi, wh, bi, bh)
            return hy, cy

        def t_fn(x, h, c, wi, wh, bi=None, bh=None):
            return torch.lstm_cell(x, (h, c), wi, wh, bi, bh)
        ins = [x, h, c, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])
    else:
        cf = {"rnn_tanh": rnn_tanh_cell, "rnn_relu": rnn_relu_cell, "gru": gru_cell}[kind]
        tf = {"rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell, "gru": torch.gru_cell}[kind]

        def ct_fn(x, h, wi, wh, bi=None, bh=None):
            return cf(x, h, wi, wh, bi, bh)

        def t_fn(x, h, wi, wh, bi=None, bh=None):
            return tf(x, h, wi, wh, bi, bh)
        ins = [x, h, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])
    check(name, ct_fn, t_fn, ins)


# functional layers against torch.lstm / torch.gru / torch.rnn_tanh / torch.rnn_relu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers,bidi,batch_first", [(1, False, False), (2, True, True), (2, False, True)])
def test_functional_layers(kind, layers, bidi, batch_first):
    I, H, B, T = 3, 4, 2, 5
    tm, _ = make_layer(kind, I, H, layers, True, batch_first, 0.0, bidi)
    params = [p.detach() for p in tm._flat_weights]
    D = 2 if bidi else 1
    g = torch.Generator().manual_seed(6)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    h0 = torch.randn(layers * D, B, H, generator=g)
    c0 = torch.randn(layers * D, B, H, generator=g)
    o = opts(layers, bidi, batch_first)
    n = len(params)
    if kind == "lstm":
        def ct_fn(x, h0, c0, *ps):
            return tuple(functional("lstm", x, h0, c0, list(ps), o))

        def t_fn(x, h0, c0, *ps):
            out, h, c = torch.lstm(x, (h0, c0), list(ps), True, layers, 0.0, False, bidi, batch_first)
            return out, h, c
        check("lstm", ct_fn, t_fn, [x, h0, c0] + params)
    else:
        tf = {"rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu, "gru": torch.gru}[kind]

        def ct_fn(x, h0, *ps):
            return tuple(functional(kind, x, h0, None, list(ps), o))

        def t_fn(x, h0, *ps):
            return tuple(tf(x, h0, list(ps), True, layers, 0.0, False, bidi, batch_first))
        check(kind, ct_fn, t_fn, [x, h0] + params)
    assert n == len(params)


# ---- errors ----
def test_constructor_errors():
    bad = [
        (lambda: nn.LSTM(3, 4, 2, dropout=1.5), ("ct_nn_lstm_new", 3, 4, 2, True, False, 1.5, False, 0), "dropout"),
        (lambda: nn.LSTM(3, 4, 2, dropout=-0.1), ("ct_nn_lstm_new", 3, 4, 2, True, False, -0.1, False, 0), "dropout"),
        (lambda: nn.GRU(0, 4), ("ct_nn_gru_new", 0, 4, 1, True, False, 0.0, False), "input_size"),
        (lambda: nn.GRU(3, 0), ("ct_nn_gru_new", 3, 0, 1, True, False, 0.0, False), "hidden_size"),
        (lambda: nn.RNN(3, 4, 0), ("ct_nn_rnn_new", 3, 4, 0, None, True, False, 0.0, False), "num_layers"),
        (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), ("ct_nn_rnn_new", 3, 4, 1, "sigmoid", True, False, 0.0, False),
         "nonlinearity"),
        (lambda: nn.LSTM(3, 4, proj_size=4), ("ct_nn_lstm_new", 3, 4, 1, True, False, 0.0, False, 4), "proj_size"),
        (lambda: nn.LSTM(3, 4, proj_size=-1), ("ct_nn_lstm_new", 3, 4, 1, True, False, 0.0, False, -1), "proj_size"),
        (lambda: nn.LSTMCell(-1, 4), ("ct_nn_lstm_cell_new", -1, 4, True), None),
    ]
    for tf, (ctor, *args), word in bad:
        with case("nn.RNN constructor errors"):
            with pytest.raises((ValueError, RuntimeError)) as te:
                tf()
            with pytest.raises(ctorch.CtorchError) as ce:
                ctorch.module(ctor, *args)
            if word:
                assert word in str(ce.value)
                assert str(te.value) in str(ce.value)
    with case("nn.RNN constructor errors"):
        with pytest.raises(ctorch.CtorchError, match="nonlinearity"):
            ctorch.module("ct_nn_rnn_cell_new", 3, 4, True, "sigmoid")


@pytest.mark.parametrize("kind", KINDS)
def test_layer_forward_errors(kind):
    tm, cm = make_layer(kind, 3, 4, 2, True, False, 0.0, True)
    name = type(tm).__name__
    ln = kind == "lstm"

    def run_t(x, h=None, c=None):
        if h is None:
            return tm(x)
        return tm(x, (h, c)) if ln else tm(x, h)

    def run_c(x, h=None, c=None):
        return forward_n(cm, [x, h, c] if ln else [x, h], 3 if ln else 2)

    cases = [
        ([torch.randn(5, 2, 2)], "input.size(-1) must be equal to input_size. Expected 3, got 2"),
        ([torch.randn(5, 2, 3, 1)], "Expected input to be 2D or 3D, got 4D"),
        ([torch.randn(5)], "Expected input to be 2D or 3D, got 1D"),
        ([torch.randn(0, 2, 3)], "Expected sequence length to be larger than 0"),
        ([torch.randn(5, 2, 3, dtype=torch.float64)], "does not match weight dtype"),
        ([torch.randn(5, 2, 3), torch.randn(3, 2, 4), torch.randn(4, 2, 4)],
         "Expected hidden[0] size (4, 2, 4), got [3, 2, 4]" if ln else "Expected hidden size (4, 2, 4), got [3, 2, 4]"),
        ([torch.randn(5, 2, 3), torch.randn(4, 3, 4), torch.randn(4, 3, 4)],
         "Expected hidden[0] size (4, 2, 4), got [4, 3, 4]" if ln else "Expected hidden size (4, 2, 4), got [4, 3, 4]"),
        ([torch.randn(5, 2, 3), torch.randn(4, 2, 5), torch.randn(4, 2, 4)], "size (4, 2, 4), got [4, 2, 5]"),
        ([torch.randn(5, 2, 3), torch.randn(4, 4), torch.randn(4, 4)], "For batched 3-D input, hx"),
        ([torch.randn(5, 3), torch.randn(4, 2, 4), torch.randn(4, 2, 4)], "For unbatched 2-D input, hx"),
    ]
    if ln:
        cases.append(([torch.randn(5, 2, 3), torch.randn(4, 2, 4), torch.randn(4, 2, 5)],
                      "Expected hidden[1] size (4, 2, 4), got [4, 2, 5]"))
    for ins, msg in cases:
        check_error(f"nn.{name}", lambda *a: run_c(*a), lambda *a: run_t(*a), ins, names=[name], match=msg)
    with case(f"nn.{name}"):  # too many inputs, NULL input
        with pytest.raises(ctorch.CtorchError, match="inputs"):
            forward_n(cm, [torch.randn(5, 2, 3)] * 4, 1)
        with pytest.raises(ctorch.CtorchError):
            forward_n(cm, [None], 1)


@pytest.mark.parametrize("kind", KINDS)
def test_cell_forward_errors(kind):
    tm, cm = make_cell(kind, 3, 4)
    name = type(tm).__name__
    ln = kind == "lstm"

    def run_t(x, h=None, c=None):
        if h is None:
            return tm(x)
        return tm(x, (h, c)) if ln else tm(x, h)

    def run_c(x, h=None, c=None):
        return forward_n(cm, [x, h, c] if ln else [x, h], 2 if ln else 1)

    cases = [
        ([torch.randn(2, 5)], "input has inconsistent input_size: got 5 expected 3"),
        ([torch.randn(2, 3, 3)], "Expected input to be 1D or 2D, got 3D instead"),
        ([torch.randn(2, 3), torch.randn(3, 4), torch.randn(3, 4)], "Input batch size 2 doesn't match hidden0 batch size 3"),
        ([torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 4)], "hidden0 has inconsistent hidden_size: got 5, expected 4"),
        ([torch.randn(3), torch.randn(2, 4), torch.randn(2, 4)], "Expected 2D hidden0 (batch x hidden_size), but got 3D"),
        ([torch.randn(2, 3), torch.randn(4), torch.randn(4)], "Expected 2D hidden0 (batch x hidden_size), but got 1D"),
        ([torch.randn(2, 3), torch.randn(2, 2, 4), torch.randn(2, 4)],
         "Expected hx[0] to be 1D or 2D, got 3D" if ln else "Expected hidden to be 1D or 2D, got 3D"),
        ([torch.randn(2, 3, dtype=torch.float64)], "dtype"),
    ]
    if ln:
        cases.append(([torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 5)],
                      "hidden1 has inconsistent hidden_size: got 5, expected 4"))
    for ins, msg in cases:
        check_error(f"nn.{name}", lambda *a: run_c(*a), lambda *a: run_t(*a), ins, names=[name],
                    match=None if msg == "dtype" else msg)


def test_functional_errors():
    I, H = 3, 4
    tm, _ = make_layer("lstm", I, H, 2, True, False, 0.0, False)
    ps = [p.detach() for p in tm._flat_weights]
    x = torch.randn(5, 2, I)
    with case("lstm"):
        for bad_ps, o, msg in [
            (ps[:7], opts(2), "multiple of 2"),                   # 7 weights for 2 layers
            (ps, opts(3), "multiple of 3"),                       # 8 weights for 3 layers
            (ps[:4], opts(2), "2 or 4 weights"),                  # 2 per layer: fine, then layer 1's w_ih is wrong
            (ps, opts(2, dropout=2.0), "dropout"),
            (ps, opts(-1), "num_layers"),
            ([ps[0], ps[1], ps[2], ps[3][:5], *ps[4:]], opts(2), "bias_hh_l0"),
            ([ps[4], ps[5], ps[6], ps[7], *ps[:4]], opts(2), "input_size"),
        ]:
            with pytest.raises(ctorch.CtorchError, match=None if "2 or 4" in msg else msg):
                functional("lstm", x, None, None, bad_ps, o)
        with pytest.raises(ctorch.CtorchError, match="2 or 4 weights"):  # a projection on a GRU
            functional("gru", x, None, None, ps[:3] + ps[4:7], opts(2))
        with pytest.raises(ctorch.CtorchError):  # NULL weight
            functional("gru", x, None, None, [None] * 4, opts(1))
        with pytest.raises(ctorch.CtorchError):  # NULL input
            functional("gru", None, None, None, ps[:4], opts(1))
        with pytest.raises(ctorch.CtorchError, match="both biases"):
            gru_cell(torch.randn(2, I), None, torch.randn(3 * H, I), torch.randn(3 * H, H), torch.randn(3 * H), None)
        with pytest.raises(ctorch.CtorchError, match="weight_hh"):
            gru_cell(torch.randn(2, I), None, torch.randn(3 * H, I), torch.randn(4 * H, H), None, None)
        with pytest.raises(ctorch.CtorchError):
            lstm_cell(torch.randn(2, I).long(), None, None, torch.randn(4 * H, I), torch.randn(4 * H, H), None, None)


# ---- gradcheck (float64, tiny sizes) ----
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batched", [True, False])
def test_cell_gradcheck(kind, batched):
    I, H = 2, 3
    G = {"lstm": 4, "gru": 3}.get(kind, 1)
    g = torch.Generator().manual_seed(1)
    d = lambda *s: torch.randn(*s, dtype=torch.float64, generator=g) * 0.7  # noqa: E731
    shape = (2,) if batched else ()
    x, h, c = d(*shape, I), d(*shape, H), d(*shape, H)
    w = [d(G * H, I), d(G * H, H), d(G * H), d(G * H)]
    if kind == "rnn_relu":  # keep pre-activations away from relu's kink
        w[2] = w[2] + 3.0
    if kind == "lstm":
        def f(x, h, c, *w):
            hy, cy = lstm_cell(x, h, c, *w)
            return ctorch.call("ct_add", hy, ctorch.call("ct_mul_scalar", cy, 0.5, sig="T(T,d)"))
        ins = [x, h, c] + w
    else:
        cf = {"rnn_tanh": rnn_tanh_cell, "rnn_relu": rnn_relu_cell, "gru": gru_cell}[kind]

        def f(x, h, *w):
            return cf(x, h, *w)
        ins = [x, h] + w
    name = {"lstm": "lstm_cell", "gru": "gru_cell"}.get(kind, kind + "_cell")
    gradcheck(name, f, ins)
    gradgradcheck(name, f, ins)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_two_layer_bidirectional_gradcheck(kind):
    ps, x, h0, c0 = f64_layer_inputs(kind, 2, 2, 2, 3, 2, True, 9)
    o = opts(2, True)

    def total(out, hn, cn=None):  # one output depending on all three results
        r = ctorch.call("ct_add", ctorch.call("ct_sum", out), ctorch.call("ct_sum", ctorch.call("ct_mul", hn, hn)))
        return r if cn is None else ctorch.call("ct_add", r, ctorch.call("ct_sum", ctorch.call("ct_sin", cn)))

    if kind == "lstm":
        def f(x, h0, c0, *ps):
            return total(*functional("lstm", x, h0, c0, list(ps), o))
        ins = [x, h0, c0] + ps
    else:
        def f(x, h0, *ps):
            return total(*functional("gru", x, h0, None, list(ps), o))
        ins = [x, h0] + ps
    gradcheck(kind, f, ins)
    gradgradcheck(kind, lambda *a: f(*a), ins[:2] + [p for p in ins[2:]], requires_grad=[True, True] + [False] * (len(ins) - 2))


def test_gradcheck_proj_and_dropout_fixed_seed():
    I, H, Pj = 2, 3, 2
    tm, _ = make_layer("lstm", I, H, 2, True, True, 0.3, False, proj=Pj)
    tm.double()
    ps = [p.detach().clone() for p in tm._flat_weights]
    x = torch.randn(2, 3, I, dtype=torch.float64)
    o = opts(2, False, True, train=True, dropout=0.3)

    def f(x, *ps):
        seed(17)  # the same dropout mask on every call
        out, hn, cn = functional("lstm", x, None, None, list(ps), o)
        return ctorch.call("ct_add", ctorch.call("ct_sum", out), ctorch.call("ct_sum", cn))
    gradcheck("lstm", f, [x] + ps)
