"""dropout against torch.nn.functional.dropout: the same seed gives the same mask
(ctorch's generator reproduces torch's), so values and gradients match exactly."""
import ctypes

import pytest
import torch

import ctorch
from harness import assert_same, case, check_error, gradcheck, make

L = ctorch.lib
drop = L.declare("ct_dropout", "T(T,d,b,p)")
L.declare("ct_manual_seed", "v", [ctypes.c_uint64])


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_values_and_grad(p, dtype, layout, training):
    x = make((7, 9), dtype, layout)
    with case("dropout"):
        torch.manual_seed(11)
        xt = x.clone().requires_grad_(True) if layout == "contiguous" else x.detach().t().contiguous().t().requires_grad_(True)
        want = torch.nn.functional.dropout(xt, p, training)
        L.ct_manual_seed(11)
        xc = ctorch.from_torch(xt.detach()).requires_grad_()
        got = drop(xc, p, training, None)
        assert_same(got.torch(), want.detach())
        g = torch.randn(want.shape, dtype=dtype)
        want.backward(g)
        got.backward(ctorch.from_torch(g))
        assert_same(xc.grad.torch(), xt.grad)


def test_dropout_empty_and_0dim():
    for shape in [(0, 3), ()]:
        with case("dropout"):
            torch.manual_seed(2)
            x = torch.randn(shape)
            want = torch.nn.functional.dropout(x, 0.5, True)
            L.ct_manual_seed(2)
            assert_same(drop(ctorch.from_torch(x), 0.5, True, None).torch(), want)


def test_dropout_errors():
    for p in [-0.1, 1.5, float("nan")]:
        check_error("dropout", lambda x: drop(x, p, True, None), lambda x: torch.nn.functional.dropout(x, p, True),
                    [torch.randn(3)])


def test_dropout_gradcheck():
    # a fixed seed inside the function makes the mask the same on every call
    def f(x):
        L.ct_manual_seed(5)
        return drop(x, 0.3, True, None)
    gradcheck("dropout", f, [torch.randn(4, 5, dtype=torch.float64)])


def test_dropout_releases_its_mask():
    """Recording dropout and running backward leaves no storage behind: the saved mask
    and scale are freed with the graph (a leaked mask once grew a training loop's memory
    by a quarter of every dropout's input per step)."""
    import gc
    allocated = L.declare("ct_memory_allocated", "i64()")
    x = ctorch.from_torch(torch.randn(64, 33)).requires_grad_()
    g = ctorch.from_torch(torch.randn(64, 33))
    grown = []
    for _ in range(3):  # the first pass may warm caches of the bindings
        x.grad = None
        gc.collect()
        before = allocated()
        y = drop(x, 0.4, True, None)
        y.backward(g)
        del y
        x.grad = None
        gc.collect()
        grown.append(allocated() - before)
    with case("dropout"):
        assert grown[-1] == 0 and grown[-2] == 0, grown
