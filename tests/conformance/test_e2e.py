"""Whole models against PyTorch, end to end: the demo's CNN (Conv-BN-ReLU-MaxPool x2,
Flatten, Linear-ReLU-Dropout-Linear) with PyTorch's weights moved through a safetensors
file that PyTorch wrote: the same logits and the same gradients for the input and
every parameter (float32, PyTorch's tolerances, train and eval mode), the same running
statistics, the same parameters after five SGD steps, and the reverse direction (a
file ctorch wrote loads into PyTorch and gives the same outputs)."""
import ctypes

import pytest
import torch
from safetensors.torch import load_file, save_file

import ctorch
from ctorch import module
from harness import assert_same, case

nn = torch.nn
P = ctypes.c_void_p
backward = ctorch.lib.declare("ct_backward", "st(T,T,b,b)")
grad_of = ctorch.lib.declare("ct_grad", "T&(T)")
ce = ctorch.lib.declare("ct_nn_cross_entropy", "T(T,T,T,i64,i,d)")
st_load = ctorch._raw("ct_safetensors_load", P, ctypes.c_char_p)
st_save = ctorch._raw("ct_safetensors_save", ctypes.c_int, P, ctypes.c_char_p)
I2 = ctypes.c_int64 * 2


class ConvOpts(ctypes.Structure):
    _fields_ = [("stride", I2), ("padding", I2), ("dilation", I2), ("groups", ctypes.c_int64),
                ("output_padding", I2), ("padding_mode", ctypes.c_char_p), ("padding_fill", ctypes.c_char_p)]


def torch_cnn(p_drop):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(p_drop), nn.Linear(128, 10))


def ct_cnn(p_drop):
    pad1 = ConvOpts(I2(0, 0), I2(1, 1), I2(0, 0), 0, I2(0, 0), None, None)
    mods = [module("ct_nn_conv2d_new", 1, 32, I2(3, 3), ctypes.pointer(pad1), True),
            module("ct_nn_batch_norm2d_new", 32, 1e-5, 0.1, True, True), module("ct_nn_relu_new"),
            module("ct_nn_max_pool2d_new", I2(2, 2), None),
            module("ct_nn_conv2d_new", 32, 64, I2(3, 3), ctypes.pointer(pad1), True),
            module("ct_nn_batch_norm2d_new", 64, 1e-5, 0.1, True, True), module("ct_nn_relu_new"),
            module("ct_nn_max_pool2d_new", I2(2, 2), None), module("ct_nn_flatten_new", 1, -1),
            module("ct_nn_linear_new", 64 * 7 * 7, 128, True), module("ct_nn_relu_new"),
            module("ct_nn_dropout_new", p_drop), module("ct_nn_linear_new", 128, 10, True)]
    s = module("ct_nn_sequential_new")
    for m in mods:
        assert ctorch.lib.declare("ct_nn_sequential_append", "st(p,p)")(s, m.take()) == 0
    return s


def load_torch_file(cm, path):
    d = ctorch.Dict(st_load(str(path).encode()))
    cm.load_state_dict(d)


def compare_step(tm, cm, x, y):
    """One forward/backward on both; returns (torch logits, ctorch logits)."""
    xt = x.clone().requires_grad_()
    xc = ctorch.from_torch(x).requires_grad_()
    tl = tm(xt)
    cl = cm(xc)
    assert_same(cl, tl, what="logits")
    tloss = nn.functional.cross_entropy(tl, y)
    closs = ce(cl, ctorch.from_torch(y), None, -100, 0, 0.0)
    assert_same(closs, tloss, what="loss")
    tm.zero_grad(), cm.zero_grad()
    tloss.backward()
    assert backward(closs, None, False, False) == 0
    assert_same(grad_of(xc), xt.grad, what="input grad")
    params = dict(cm.named_parameters().items())
    for k, p in tm.named_parameters():
        assert_same(grad_of(params[k]), p.grad, what=f"grad of {k}")
    return params


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_cnn_end_to_end_same_weights(tmp_path, mode):
    torch.manual_seed(0)
    tm = torch_cnn(0.0 if mode == "train" else 0.25)  # dropout's random mask is not part of the comparison
    path = tmp_path / "cnn.safetensors"
    save_file(tm.state_dict(), str(path))  # written by PyTorch
    cm = ct_cnn(0.0 if mode == "train" else 0.25)
    load_torch_file(cm, path)
    tm.train(mode == "train"), cm.train(mode == "train")
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with case("e2e.cnn"):
        assert repr(cm) == repr(tm)
        compare_step(tm, cm, x, y)
        # running statistics and num_batches_tracked follow torch's updates
        csd = cm.state_dict().torch()
        for k, v in tm.state_dict().items():
            assert_same(csd[k], v, what=k)


def test_cnn_five_sgd_steps_and_back_to_torch(tmp_path):
    torch.manual_seed(1)
    tm = torch_cnn(0.0)
    path = tmp_path / "cnn.safetensors"
    save_file(tm.state_dict(), str(path))
    cm = ct_cnn(0.0)
    load_torch_file(cm, path)
    to = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    cparams = cm.named_parameters()
    co = ctorch._raw("ct_optim_sgd_new", P, P, *([ctypes.c_double] * 4 + [ctypes.c_bool] * 2))(
        cparams._p, 0.05, 0.9, 0.0, 0.0, False, False)
    step = ctorch._raw("ct_optim_step", ctypes.c_int, P)
    with case("e2e.cnn"):
        for i in range(5):
            x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
            compare_step(tm, cm, x, y)
            to.step()
            assert step(co) == 0
        # parameters after 5 steps: float32 rounding of 5 steps of gradients apart
        csd = cm.state_dict().torch()
        for k, v in tm.state_dict().items():
            assert_same(csd[k], v, what=k, atol=1e-4, rtol=1e-4)  # 5 steps compound float32 rounding
        # ctorch -> safetensors -> torch: identical tensors and outputs
        out = tmp_path / "from_ctorch.safetensors"
        assert st_save(cm.state_dict()._p, str(out).encode()) == 0
        t2 = torch_cnn(0.0)
        t2.load_state_dict(load_file(str(out)))
        t2.eval(), cm.eval()
        x = torch.randn(4, 1, 28, 28)
        for k, v in t2.state_dict().items():
            assert torch.equal(v, csd[k]), k
        assert_same(cm(ctorch.from_torch(x)), t2(x), what="logits after the round trip")
    ctorch._raw("ct_optim_free", None, P)(co)
