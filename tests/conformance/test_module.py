"""Modules against torch.nn: default initialisation under the same seed, reprs,
state_dict names and order, loading torch weights (same outputs and parameter
gradients), load_state_dict errors, dtype conversion, train/eval."""
import ctypes

import pytest
import torch

import ctorch
from ctorch import Module, module
from harness import assert_same, case

nn = torch.nn
seed = ctorch.lib.declare("ct_manual_seed", "v(i64)")
backward = ctorch.lib.declare("ct_backward", "st(T,T,b,b)")
grad_of = ctorch.lib.declare("ct_grad", "T&(T)")


def seq(*mods):
    s = module("ct_nn_sequential_new")
    for m in mods:
        if ctorch.lib.declare("ct_nn_sequential_append", "st(p,p)")(s, m.take()) < 0:
            raise ctorch.CtorchError("append failed")
    return s


ACTIVATIONS = [
    (lambda: module("ct_nn_relu_new"), nn.ReLU()),
    (lambda: module("ct_nn_relu6_new"), nn.ReLU6()),
    (lambda: module("ct_nn_leaky_relu_new", 0.01), nn.LeakyReLU()),
    (lambda: module("ct_nn_leaky_relu_new", 0.2), nn.LeakyReLU(0.2)),
    (lambda: module("ct_nn_elu_new", 1.0), nn.ELU()),
    (lambda: module("ct_nn_selu_new"), nn.SELU()),
    (lambda: module("ct_nn_celu_new", 0.5), nn.CELU(0.5)),
    (lambda: module("ct_nn_gelu_new", None), nn.GELU()),
    (lambda: module("ct_nn_gelu_new", "tanh"), nn.GELU("tanh")),
    (lambda: module("ct_nn_silu_new"), nn.SiLU()),
    (lambda: module("ct_nn_mish_new"), nn.Mish()),
    (lambda: module("ct_nn_sigmoid_new"), nn.Sigmoid()),
    (lambda: module("ct_nn_tanh_new"), nn.Tanh()),
    (lambda: module("ct_nn_softplus_new", 1.0, 20.0), nn.Softplus()),
    (lambda: module("ct_nn_softplus_new", 2.0, 10.0), nn.Softplus(2.0, 10.0)),
    (lambda: module("ct_nn_softsign_new"), nn.Softsign()),
    (lambda: module("ct_nn_hardtanh_new", -1.0, 1.0), nn.Hardtanh()),
    (lambda: module("ct_nn_hardtanh_new", -2.5, 3.0), nn.Hardtanh(-2.5, 3.0)),
    (lambda: module("ct_nn_hardsigmoid_new"), nn.Hardsigmoid()),
    (lambda: module("ct_nn_hardswish_new"), nn.Hardswish()),
    (lambda: module("ct_nn_logsigmoid_new"), nn.LogSigmoid()),
    (lambda: module("ct_nn_softmax_new", 1), nn.Softmax(dim=1)),
    (lambda: module("ct_nn_log_softmax_new", -1), nn.LogSoftmax(dim=-1)),
    (lambda: module("ct_nn_glu_new", -1), nn.GLU()),
    (lambda: module("ct_nn_identity_new"), nn.Identity()),
    (lambda: module("ct_nn_flatten_new", 1, -1), nn.Flatten()),
    (lambda: module("ct_nn_dropout_new", 0.5), nn.Dropout()),
]


@pytest.mark.parametrize("i", range(len(ACTIVATIONS)), ids=lambda i: repr(ACTIVATIONS[i][1]))
def test_simple_module_repr_and_forward(i):
    make, tm = ACTIVATIONS[i]
    m = make()
    name = type(tm).__name__
    with case(f"nn.{name}"):
        assert repr(m) == repr(tm)
        x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
        m.eval(), tm.eval()
        xc = ctorch.from_torch(x.detach()).requires_grad_()
        y = m(xc)
        want = tm(x)
        assert_same(y, want)
        g = torch.randn_like(want)
        want.backward(g)
        backward(y, ctorch.from_torch(g), False, False)
        assert_same(grad_of(xc), x.grad, what="input grad")


@pytest.mark.parametrize("shape", [(5, 3), (1, 1), (64, 784), (10, 0)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_init_matches_torch(shape, bias):
    fan_in, fan_out = shape[1], shape[0]
    with case("nn.Linear init"):
        torch.manual_seed(7)
        tl = nn.Linear(fan_in, fan_out, bias=bias)
        seed(7)
        cl = module("ct_nn_linear_new", fan_in, fan_out, bias)
        assert repr(cl) == repr(tl)
        sd = cl.state_dict().torch()
        assert list(sd) == list(tl.state_dict())
        for k, v in tl.state_dict().items():
            assert torch.equal(sd[k], v), k


def torch_net():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.GELU(), nn.Dropout(0.1),
                                          nn.Linear(16, 8), nn.Tanh())
            self.head = nn.Linear(8, 3, bias=False)

        def forward(self, x):
            return self.head(self.features(x))
    return Net()


def ct_features():
    return seq(module("ct_nn_flatten_new", 1, -1), module("ct_nn_linear_new", 12, 16, True),
               module("ct_nn_gelu_new", None), module("ct_nn_dropout_new", 0.1),
               module("ct_nn_linear_new", 16, 8, True), module("ct_nn_tanh_new"))


def test_sequential_loads_torch_weights_same_outputs_and_grads():
    torch.manual_seed(0)
    tn = torch_net().double()
    tseq = nn.Sequential(tn.features, tn.head)
    cseq = seq(ct_features(), module("ct_nn_linear_new", 8, 3, False))
    with case("nn.Module load_state_dict"):
        cseq.load_state_dict(tseq.state_dict())  # float32 module, float64 weights: cast like torch
        cseq.to(torch.float64)
        assert repr(cseq) == repr(tseq)
        assert cseq.state_dict().keys() == list(tseq.state_dict())
        for mode in ("eval", "train_no_dropout"):
            tseq.eval(), cseq.eval()
            x = torch.randn(5, 3, 4, dtype=torch.float64)
            y, want = cseq(ctorch.from_torch(x)), tseq(x)
            assert_same(y, want)
            g = torch.randn_like(want)
            tseq.zero_grad()
            want.backward(g)
            cseq.zero_grad()
            backward(y, ctorch.from_torch(g), False, False)
            params = dict(cseq.named_parameters().items())
            for k, p in tseq.named_parameters():
                assert_same(grad_of(params[k]), p.grad, what=f"grad of {k}")
        assert cseq.num_parameters() == sum(p.numel() for p in tseq.parameters())


def test_load_state_dict_errors_match_torch():
    tm = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    cm = seq(module("ct_nn_linear_new", 3, 4, True), module("ct_nn_relu_new"), module("ct_nn_linear_new", 4, 2, True))
    sd = dict(tm.state_dict())
    del sd["2.bias"]
    sd["0.weight"] = torch.zeros(5, 3)
    sd["junk"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as te:
        tm.load_state_dict(sd)
    with case("nn.Module load_state_dict errors"):
        with pytest.raises(ctorch.CtorchError) as ce:
            cm.load_state_dict(sd)
        assert str(ce.value) == str(te.value)
        # nothing was modified by the failed load
        assert not torch.equal(cm.state_dict().torch()["0.bias"], sd["0.bias"])
        # strict=False still refuses size mismatches, like torch
        with pytest.raises(RuntimeError) as te2:
            tm.load_state_dict(sd, strict=False)
        with pytest.raises(ctorch.CtorchError) as ce2:
            cm.load_state_dict(sd, strict=False)
        assert str(ce2.value) == str(te2.value)
        sd["0.weight"] = torch.ones(4, 3)
        cm.load_state_dict(sd, strict=False)
        assert torch.equal(cm.state_dict().torch()["0.weight"], torch.ones(4, 3))


def test_module_list_and_nested_repr():
    tl = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.ReLU(), nn.ReLU(),
                        nn.Sequential(nn.Unflatten(1, (2, 5)), nn.Softmax(dim=2))])
    cl = module("ct_nn_module_list_new")
    app = ctorch.lib.declare("ct_nn_module_list_append", "st(p,p)")
    for m in (module("ct_nn_linear_new", 2, 2, True), module("ct_nn_linear_new", 2, 2, True),
              module("ct_nn_relu_new"), module("ct_nn_relu_new"), module("ct_nn_relu_new"),
              seq(module("ct_nn_unflatten_new", (ctypes.c_int64, 1), (ctypes.c_int, 2),
                         (ctypes.c_int64 * 2)(2, 5)), module("ct_nn_softmax_new", 2))):
        app(cl, m.take())
    with case("nn.ModuleList"):
        assert repr(cl) == repr(tl)
        assert cl.state_dict().keys() == list(tl.state_dict())


def test_train_eval_and_dropout():
    cm = seq(module("ct_nn_dropout_new", 0.5))
    x = torch.ones(1000, dtype=torch.float64)
    with case("nn.Module train/eval"):
        y = cm(ctorch.from_torch(x)).torch()
        assert (y == 0).sum() > 300 and set(y.unique().tolist()) <= {0.0, 2.0}
        cm.eval()
        assert torch.equal(cm(ctorch.from_torch(x)).torch(), x)


def test_to_dtype():
    with case("nn.Module to"):
        seed(1)
        cl = module("ct_nn_linear_new", 4, 3, True)
        before = cl.state_dict().torch()
        cl.to(torch.bfloat16)
        after = cl.state_dict().torch()
        for k in before:
            assert after[k].dtype == torch.bfloat16
            assert torch.equal(after[k], before[k].to(torch.bfloat16))
        with pytest.raises(ctorch.CtorchError, match="floating point"):
            cl.to(torch.int32)


def test_summary_counts():
    torch.manual_seed(0)
    cs = seq(ct_features(), module("ct_nn_linear_new", 8, 3, False))
    with case("nn.Module summary"):
        s = cs.summary([2, 3, 4])
        assert "Linear (0.1)" in s and "[2, 16]" in s and "[2, 3]" in s
        total = 12 * 16 + 16 + 16 * 8 + 8 + 8 * 3
        assert f"Total params: {total:,}" in s


# ---- layer modules over nn.h ----
I2 = ctypes.c_int64 * 2


class ConvOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("groups", ctypes.c_int64),
                ("output_padding", I2), ("padding_mode", ctypes.c_char_p), ("padding_fill", ctypes.c_char_p)]


class PoolOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("ceil_mode", ctypes.c_bool),
                ("count_include_pad_false", ctypes.c_bool), ("divisor_override", ctypes.c_int64)]


def conv_opts(stride=(0, 0), padding=(0, 0), dilation=(0, 0), groups=0, mode=None, fill=None):
    return ConvOpts(I2(*stride), I2(*padding), I2(*dilation), groups, I2(0, 0), mode.encode() if mode else None,
                    fill.encode() if fill else None)


OPTS_KEEP = []


def P(o):
    OPTS_KEEP.append(o)
    return ctypes.pointer(o)


LAYERS = [
    (lambda: module("ct_nn_conv2d_new", 3, 8, I2(3, 3), None, True), lambda: nn.Conv2d(3, 8, 3), (2, 3, 9, 8)),
    (lambda: module("ct_nn_conv2d_new", 4, 6, I2(3, 2), P(conv_opts((2, 1), (1, 0), (1, 2), 2)), False),
     lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False), (2, 4, 9, 8)),
    (lambda: module("ct_nn_conv2d_new", 3, 4, I2(3, 3), P(conv_opts(padding=(1, 1), fill="reflect")), True),
     lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), (2, 3, 6, 6)),
    (lambda: module("ct_nn_conv2d_new", 3, 4, I2(3, 3), P(conv_opts(mode="same")), True),
     lambda: nn.Conv2d(3, 4, 3, padding="same"), (2, 3, 6, 6)),
    (lambda: module("ct_nn_conv1d_new", 3, 5, 3, P(conv_opts((2, 0), (1, 0))), True),
     lambda: nn.Conv1d(3, 5, 3, stride=2, padding=1), (2, 3, 10)),
    (lambda: module("ct_nn_max_pool2d_new", I2(2, 2), None), lambda: nn.MaxPool2d(2), (2, 3, 8, 8)),
    (lambda: module("ct_nn_max_pool2d_new", I2(3, 3), P(PoolOpts(I2(2, 2), I2(1, 1), I2(1, 1), True, False, 0))),
     lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 8)),
    (lambda: module("ct_nn_avg_pool2d_new", I2(2, 2), None), lambda: nn.AvgPool2d(2), (2, 3, 8, 8)),
    (lambda: module("ct_nn_adaptive_avg_pool2d_new", I2(1, 1)), lambda: nn.AdaptiveAvgPool2d((1, 1)), (2, 3, 5, 5)),
    (lambda: module("ct_nn_batch_norm2d_new", 3, 1e-5, 0.1, True, True), lambda: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: module("ct_nn_batch_norm1d_new", 6, 1e-3, 0.2, False, True),
     lambda: nn.BatchNorm1d(6, eps=1e-3, momentum=0.2, affine=False), (8, 6)),
    (lambda: module("ct_nn_batch_norm1d_new", 6, 1e-5, 0.1, True, False),
     lambda: nn.BatchNorm1d(6, track_running_stats=False), (8, 6, 3)),
    (lambda: module("ct_nn_layer_norm_new", (ctypes.c_int, 1), (ctypes.c_int64 * 1)(7), 1e-5, True),
     lambda: nn.LayerNorm(7), (3, 4, 7)),
    (lambda: module("ct_nn_layer_norm_new", (ctypes.c_int, 2), (ctypes.c_int64 * 2)(3, 4), 1e-6, False),
     lambda: nn.LayerNorm((3, 4), eps=1e-6, elementwise_affine=False), (2, 3, 4)),
    (lambda: module("ct_nn_group_norm_new", 2, 6, 1e-5, True), lambda: nn.GroupNorm(2, 6), (3, 6, 4, 5)),
    (lambda: module("ct_nn_group_norm_new", 3, 6, 1e-3, False), lambda: nn.GroupNorm(3, 6, eps=1e-3, affine=False), (3, 6, 7)),
    (lambda: module("ct_nn_rms_norm_new", (ctypes.c_int, 1), (ctypes.c_int64 * 1)(5), -1.0, True),
     lambda: nn.RMSNorm(5), (3, 4, 5)),
    (lambda: module("ct_nn_rms_norm_new", (ctypes.c_int, 2), (ctypes.c_int64 * 2)(4, 5), 1e-6, True),
     lambda: nn.RMSNorm((4, 5), eps=1e-6), (3, 4, 5)),
    (lambda: module("ct_nn_instance_norm2d_new", 3, 1e-5, 0.1, False, False), lambda: nn.InstanceNorm2d(3), (2, 3, 5, 6)),
    (lambda: module("ct_nn_instance_norm2d_new", 3, 1e-5, 0.2, True, True),
     lambda: nn.InstanceNorm2d(3, momentum=0.2, affine=True, track_running_stats=True), (2, 3, 5, 6)),
]


@pytest.mark.parametrize("k", range(len(LAYERS)))
def test_layer_modules_match_torch(k):
    make, tmake, xs = LAYERS[k]
    torch.manual_seed(3)
    tm = tmake()
    seed(3)
    cm = make()
    name = type(tm).__name__
    with case(f"nn.{name}"):
        assert repr(cm) == repr(tm)
        # same default initialisation from the same seed
        sd = cm.state_dict().torch()
        assert list(sd) == list(tm.state_dict())
        for key, v in tm.state_dict().items():
            assert torch.equal(sd[key], v), key
        tm.double(), cm.to(torch.float64)
        for mode in ("train", "eval"):
            tm.train(mode == "train"), cm.train(mode == "train")
            x = torch.randn(xs, dtype=torch.float64)
            xt = x.clone().requires_grad_()
            xc = ctorch.from_torch(x).requires_grad_()
            want, got = tm(xt), cm(xc)
            assert_same(got, want)
            g = torch.randn_like(want)
            tm.zero_grad(), cm.zero_grad()
            want.backward(g)
            backward(got, ctorch.from_torch(g), False, False)
            assert_same(grad_of(xc), xt.grad, what="input grad")
            params = dict(cm.named_parameters().items())
            for pk, p in tm.named_parameters():
                assert_same(grad_of(params[pk]), p.grad, what=f"grad of {pk}")
            # buffers (running statistics, num_batches_tracked) follow torch's updates
            csd = cm.state_dict().torch()
            for bk, bv in tm.state_dict().items():
                assert_same(csd[bk], bv, what=bk)


def test_embedding_module():
    torch.manual_seed(5)
    tm = nn.Embedding(10, 4, padding_idx=2)
    seed(5)
    cm = module("ct_nn_embedding_new", 10, 4, 2)
    with case("nn.Embedding"):
        assert repr(cm) == repr(tm)
        assert torch.equal(cm.state_dict().torch()["weight"], tm.weight.detach())
        idx = torch.tensor([[1, 2, 9], [2, 0, 1]])
        assert_same(cm(ctorch.from_torch(idx)), tm(idx))
