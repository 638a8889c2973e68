"""Forward + backward time of one recurrent layer in ctorch and in PyTorch, same weights,
same input, same number of threads (default: one LSTM layer, seq 64, batch 32, input 256,
hidden 256, 2 threads).

    CTORCH_LIB=build/libctorch.so PYTHONPATH=python python3 examples/bench_lstm.py \
        [--kind lstm|gru] [--threads 2] [--seq 64] [--batch 32] [--input 256] [--hidden 256] [--iters 20]

ctorch is driven through ctypes with a handful of calls per iteration (forward_n,
backward, zero_grad), so the Python overhead is negligible next to the layer. Each
iteration: zero the gradients, output = layer(x), output.backward(grad_output). Prints
the median and the best time of each library.
"""
import argparse
import ctypes
import time

import torch

import ctorch

ap = argparse.ArgumentParser()
ap.add_argument("--kind", default="lstm", choices=["lstm", "gru"])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seq", type=int, default=64)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--input", type=int, default=256)
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--iters", type=int, default=20)
a = ap.parse_args()
T, B, I, H = a.seq, a.batch, a.input, a.hidden

torch.set_num_threads(a.threads)
ctorch.lib.declare("ct_set_num_threads", "v(i)")(a.threads)
P = ctypes.c_void_p
forward_n = ctorch._raw("ct_module_forward_n", ctypes.c_int, P, ctypes.c_int, ctypes.POINTER(P), ctypes.c_int,
                        ctypes.POINTER(P))
scope_begin = ctorch._raw("ct_scope_begin", ctypes.c_int)
scope_end = ctorch._raw("ct_scope_end", ctypes.c_int)
backward = ctorch._raw("ct_backward", ctypes.c_int, P, P, ctypes.c_bool, ctypes.c_bool)
zero_grad = ctorch._raw("ct_module_zero_grad", ctypes.c_int, P, ctypes.c_bool)

torch.manual_seed(0)
if a.kind == "lstm":
    tm = torch.nn.LSTM(I, H)
    cm = ctorch.module("ct_nn_lstm_new", I, H, 1, True, False, 0.0, False, 0)
else:
    tm = torch.nn.GRU(I, H)
    cm = ctorch.module("ct_nn_gru_new", I, H, 1, True, False, 0.0, False)
cm.load_state_dict(tm.state_dict())
x = torch.randn(T, B, I, requires_grad=True)
grad_out = torch.randn(T, B, H)
xc = ctorch.from_torch(x, requires_grad=True)
grad_out_c = ctorch.from_torch(grad_out)


def torch_step():
    tm.zero_grad(set_to_none=True)
    x.grad = None
    out, _ = tm(x)
    out.backward(grad_out)


def ctorch_step():
    zero_grad(cm._p, True)
    xc.grad = None
    scope_begin()  # frees the output and the graph at scope_end
    ins, outs = (P * 1)(xc._p), (P * 1)()
    if forward_n(cm._p, 1, ins, 1, outs) != 1 or backward(outs[0], grad_out_c._p, False, False) != 0:
        raise ctorch._error()
    scope_end()


def bench(step):
    for _ in range(3):
        step()
    ts = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return 1e3 * ts[len(ts) // 2], 1e3 * ts[0]


mt, bt = bench(torch_step)
mc, bc = bench(ctorch_step)
print(f"{a.kind.upper()} seq {T}, batch {B}, input {I}, hidden {H}, {a.threads} threads, forward + backward:")
print(f"  torch  {torch.__version__}: median {mt:7.1f} ms, best {bt:7.1f} ms")
print(f"  ctorch {ctorch.lib.declare('ct_version', 's()')()}: median {mc:7.1f} ms, best {bc:7.1f} ms "
      f"({mc / mt:.2f}x torch's median)")
