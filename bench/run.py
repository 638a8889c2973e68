#!/usr/bin/env python3
"""Benchmark suite: ctorch (build/bench_ctorch) and PyTorch side by side.

    python3 bench/run.py            full run (for people; a few minutes)
    python3 bench/run.py --quick    a subset with few repeats (CI keeps the suite working)

Both sides run the same cases (shapes, dtypes, thread count) with the same timing
policy: `warmup` calls, then the number of calls per repeat is raised until a repeat
lasts at least `target` seconds, then `repeat` timed repeats; a case's time is the
median over the repeats of (repeat time / calls), with min, max and quartiles as the
spread. ctorch runs first (one bench_ctorch process for all cases), then PyTorch in
this process, both with the same number of threads (default: all cores available).

Writes <build>/bench.json, <build>/bench.md and <build>/bench.svg. Timings are never
pass/fail: the exit status is nonzero only if the suite itself broke (a case failed
to run on either side, or bench_ctorch is missing).
"""
import argparse
import datetime
import html
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
M = 1 << 20

# ----------------------------------------------------------------------------- cases

# The targets for ratio = ctorch / PyTorch (lower is better), by group.
TARGETS = {"overhead": 0.1, "elementwise": 1.0, "reduction": 1.0, "training": 0.5, "conv": 1.0,
           "other": 1.0, "size": None, "startup": None, "memory": 0.5}
# ...except where the issue names a case: the ResNet-18 and Transformer steps at most 1.0
CASE_TARGETS = {"resnet18_train": 1.0, "transformer_train": 1.0}


# matmul cases: bench_ctorch's direct sgemm timings (OpenBLAS's, oneDNN's when built
# with it) and the faster of them, the reference for the "within 5% of BLAS"
GEMM_KEYS = ("blas_s", "openblas_s", "onednn_s")

def case_list(quick):
    """Every case of the issue. Cases that need ops ctorch lacks are kept: bench_ctorch
    reports them as unavailable and PyTorch does not run them."""
    cs = []

    def add(group, name, **spec):
        cs.append(dict(group=group, name=name, **spec))

    for n in (1, 100):
        for grad in (0, 1):
            add("overhead", f"add n={n}{' autograd' if grad else ''}", case="add", n=n, grad=grad)
    add("overhead", "chain of 20 ops n=100", case="chain", n=100, grad=0)
    add("overhead", "chain of 20 ops n=100 fwd+bwd", case="chain", n=100, grad=1)

    sizes = (1 * M,) if quick else (1 * M, 16 * M)
    for dt in ("float32", "bfloat16"):
        for n in sizes:
            for op in ("add", "mul", "exp", "tanh", "sigmoid", "gelu"):
                kind = "binary" if op in ("add", "mul") else "unary"
                add("elementwise", f"{op} {n // M}M {dt}", case=kind, op=op, n=n, dtype=dt)

    rows, cols = (1024, 1024) if quick else (4096, 1024)
    for op in ("sum", "mean", "max", "var", "softmax", "log_softmax", "layer_norm"):
        add("reduction", f"{op} [{rows}, {cols}] dim=-1", case="reduce", op=op, rows=rows, cols=cols,
            dtype="float32")
    if not quick:  # a loss's reduction: one value from the whole tensor
        for op in ("sum", "mean", "var"):
            add("reduction", f"{op} [{rows}, {cols}] all dims", case="reduce", op=op, rows=rows, cols=cols,
                dtype="float32", all=1)

    squares = (64, 256, 512) if quick else (64, 128, 256, 512, 1024, 2048)
    for s in squares:
        add("matmul", f"matmul {s}x{s}x{s}", case="matmul", m=s, k=s, n=s, dtype="float32")
    skinny = [(64, 784, 256), (1, 1024, 1024)] if quick else \
        [(64, 784, 256), (1, 1024, 1024), (4096, 64, 4096), (64, 8192, 64), (8192, 256, 16)]
    for m, k, n in skinny:
        add("matmul", f"matmul [{m}, {k}] x [{k}, {n}]", case="matmul", m=m, k=k, n=n, dtype="float32")
    add("matmul", "bmm [32, 128, 64] x [32, 64, 128]", case="matmul", b=32, m=128, k=64, n=128, dtype="float32")
    # small matrices: ctorch's direct kernel instead of a BLAS call (src/cpu/linalg.c)
    add("matmul", "matmul 16x16x16", case="matmul", m=16, k=16, n=16, dtype="float32")
    add("matmul", "bmm [1024, 8, 8] x [1024, 8, 8]", case="matmul", b=1024, m=8, k=8, n=8, dtype="float32")
    if not quick:  # bfloat16 through oneDNN's matmul (the CPU's bf16 dot products where it has them)
        for m, k, n in ((1024, 1024, 1024), (64, 784, 256)):
            add("matmul", f"matmul [{m}, {k}] x [{k}, {n}] bfloat16", case="matmul", m=m, k=k, n=n,
                dtype="bfloat16")

    add("training", "MLP 784-256-10 train step batch 64", case="mlp_train", batch=64, **{"in": 784},
        hidden=256, out=10, lr=0.01)

    # conv2d forward + backward on ResNet-18's 3x3 layer shapes (and its stem), batch 1 and 32
    rn = [(64, 56, 64, 3, 1, 1), (128, 28, 128, 3, 1, 1), (256, 14, 256, 3, 1, 1), (512, 7, 512, 3, 1, 1),
          (3, 224, 64, 7, 2, 3)]
    for bsz in ((1,) if quick else (1, 32)):
        for (ci, h, o, k, st, pd) in (rn[:1] if quick else rn):
            add("conv", f"conv2d fwd+bwd [{bsz}, {ci}, {h}, {h}] k{k} s{st} -> {o}", case="conv2d", n=bsz, c=ci, h=h, o=o,
                k=k, stride=st, pad=pd)
    add("conv", "max_pool2d 3x3 s2 [32, 64, 112, 112]" if not quick else "max_pool2d 3x3 s2 [8, 64, 56, 56]",
        case="max_pool2d", n=32 if not quick else 8, c=64, h=112 if not quick else 56)
    if not quick:
        add("conv", "avg_pool2d 7x7 s7 [16, 64, 56, 56]", case="avg_pool2d", n=16, c=64, h=56, k=7, s=7, p=0)
        add("conv", "avg_pool2d 3x3 s1 p1 [16, 64, 56, 56]", case="avg_pool2d", n=16, c=64, h=56, k=3, s=1, p=1)
    add("conv", "batch_norm2d train [32, 64, 56, 56]" if not quick else "batch_norm2d train [8, 64, 28, 28]",
        case="batch_norm2d", n=32 if not quick else 8, c=64, h=56 if not quick else 28)
    add("other", "embedding [30000, 256] lookup [64, 128] fwd+bwd", case="embedding", vocab=30000, dim=256, batch=64,
        seq=128)
    add("other", "LSTM layer fwd+bwd seq 64 batch 32 input 256 hidden 256", case="lstm", seq=64, batch=32,
        input=256, hidden=256)
    for L in ((128,) if quick else (128, 512, 1024)):
        add("other", f"sdpa causal fwd+bwd [16, 4, {L}, 64]", case="sdpa", batch=16, heads=4, seq=L, dim=64)
    add("training", "Fashion-MNIST CNN train step batch 64 (Adam)", case="cnn_train", batch=64)
    add("training", "ResNet-18 32x32 train step batch 32 (SGD)", case="resnet18_train", batch=32, hw=32)
    tl, ts = (2, 64) if quick else (6, 128)  # quick: a third of the layers, half the sequence
    add("training", f"Transformer encoder {tl} x d256 h4 ff1024, seq {ts} batch 16 train step (Adam)",
        case="transformer_train", layers=tl, d_model=256, heads=4, ff=1024, seq=ts, batch=16)
    add("other", "topk 10 of [4096, 1024] along rows", case="rows", op="topk", rows=4096, cols=1024, k=10)
    if not quick:
        add("other", "group_norm 32 groups [32, 64, 56, 56]", case="group_norm", n=32, c=64, h=56, groups=32)
        add("other", "group_norm 32 groups [32, 64, 56, 56] fwd+bwd", case="group_norm", n=32, c=64, h=56, groups=32,
            backward=1)
    if not quick:
        add("other", "transposed copy [4096, 1024] -> [1024, 4096]", case="rows", op="transpose_copy", rows=4096,
            cols=1024)
        add("other", "2-norm of the rows of [4096, 1024]", case="rows", op="norm2", rows=4096, cols=1024)
        for op, what in (("cumsum0", "cumsum along dim 0 of"), ("cumsum1", "cumsum along dim 1 of"),
                         ("tril", "tril of"), ("roll", "roll by 5 along dim 1 of"), ("flip", "flip along dim 1 of"),
                         ("pixel_shuffle", "pixel_shuffle by 2 of [16, 256, 32, 32] =")):
            add("other", f"{what} [4096, 1024]", case="rows", op=op, rows=4096, cols=1024)
    add("other", "ResNet-18 inference 224x224 batch 1", case="resnet18_infer", batch=1, hw=224)
    add("other", "Adam step, the demo CNN's 12 parameters (422K)", case="optim_step", model="cnn")
    if not quick:
        add("other", "Adam step, the Transformer encoder's 72 parameters (4.7M)", case="optim_step",
            model="transformer", layers=6, d_model=256, heads=4, ff=1024)
    return cs


# ------------------------------------------------------------------- PyTorch side

def torch_demo_cnn(torch):
    """The demo's CNN, the twin of demo_cnn() in examples/demo_common.h (bench_ctorch's)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


def torch_encoder(torch, spec):
    layer = torch.nn.TransformerEncoderLayer(spec["d_model"], spec["heads"], spec["ff"], batch_first=True)
    return torch.nn.TransformerEncoder(layer, spec["layers"], enable_nested_tensor=False)


def torch_resnet18(torch, num_classes):
    """torchvision's ResNet-18 (BasicBlock x [2, 2, 2, 2]) written out, the twin of
    examples/resnet18.h (torchvision is not a dependency)."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, i, o, s):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o)
            self.conv2, self.bn2 = nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o)
            self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, s, bias=False), nn.BatchNorm2d(o)) \
                if s != 1 or i != o else None

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
            self.relu, self.maxpool = nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            w = [64, 128, 256, 512]
            for l in range(4):
                i = w[l - 1] if l else 64
                setattr(self, f"layer{l + 1}", nn.Sequential(Block(i, w[l], 2 if l else 1), Block(w[l], w[l], 1)))
            self.avgpool, self.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))
    return ResNet()


def torch_case(torch, spec):
    """(stmt, globals) for timeit: the PyTorch twin of a bench_ctorch case."""
    F = torch.nn.functional
    kind = spec["case"]
    dt = getattr(torch, spec.get("dtype", "float32"))
    torch.manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape).to(dt)

    g = {"torch": torch, "F": F}
    if kind == "add":
        a, b = randn(spec["n"]), randn(spec["n"])
        if spec["grad"]:
            a.requires_grad_()
            b.requires_grad_()
        g.update(a=a, b=b)
        return "a + b", g
    if kind == "chain":
        x, a, b, c = (randn(spec["n"]) for _ in range(4))
        grad = bool(spec["grad"])
        if grad:
            x.requires_grad_()

        def chain():
            y = x
            for _ in range(5):
                y = y * a
                y = y + b
                y = torch.tanh(y)
                y = y - c
            if grad:
                y.sum().backward()
                x.grad = None
        return chain, g
    if kind in ("unary", "binary"):
        x, y = randn(spec["n"]), randn(spec["n"])
        g.update(x=x, y=y)
        return {"add": "x + y", "mul": "x * y", "exp": "torch.exp(x)", "tanh": "torch.tanh(x)",
                "sigmoid": "torch.sigmoid(x)", "gelu": "F.gelu(x)", "relu": "torch.relu(x)"}[spec["op"]], g
    if kind == "reduce":
        cols = spec["cols"]
        g.update(x=randn(spec["rows"], cols), w=randn(cols), b=randn(cols), shape=(cols,))
        if spec.get("all"):
            return {"sum": "x.sum()", "mean": "x.mean()", "var": "x.var()"}[spec["op"]], g
        return {"sum": "x.sum(-1)", "mean": "x.mean(-1)", "max": "x.max(-1)", "var": "x.var(-1)",
                "softmax": "torch.softmax(x, -1)", "log_softmax": "torch.log_softmax(x, -1)",
                "layer_norm": "F.layer_norm(x, shape, w, b, 1e-5)"}[spec["op"]], g
    if kind == "matmul":
        b, m, k, n = spec.get("b", 0), spec["m"], spec["k"], spec["n"]
        lead = (b,) if b else ()
        g.update(a=randn(*lead, m, k), b=randn(*lead, k, n))
        return "torch.matmul(a, b)", g
    if kind == "mlp_train":
        bs, fin, hid, fout, lr = spec["batch"], spec["in"], spec["hidden"], spec["out"], spec["lr"]
        x = torch.randn(bs, fin)
        y = torch.randint(0, fout, (bs, 1))
        params = []
        for shape, fan_in in (((fin, hid), fin), ((hid,), fin), ((hid, fout), hid), ((fout,), hid)):
            s = 1.0 / math.sqrt(fan_in)   # nn.Linear's init scale, as bench_ctorch
            params.append((torch.rand(*shape) * (2 * s) - s).requires_grad_())
        w1, b1, w2, b2 = params

        def step():
            h = torch.relu(torch.matmul(x, w1) + b1)
            logits = torch.matmul(h, w2) + b2
            lp = torch.log_softmax(logits, 1)
            loss = -(lp.gather(1, y).mean())
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-lr)
                    p.grad = None
        return step, g
    if kind == "conv2d":
        n, ci, h, o, k, st, pd = (spec[x] for x in ("n", "c", "h", "o", "k", "stride", "pad"))
        x, w, b = randn(n, ci, h, h).requires_grad_(), randn(o, ci, k, k).requires_grad_(), randn(o).requires_grad_()
        ho = (h + 2 * pd - k) // st + 1
        gy = randn(n, o, ho, ho)

        def conv_step():
            F.conv2d(x, w, b, stride=st, padding=pd).backward(gy)
            x.grad = w.grad = b.grad = None
        return conv_step, g
    if kind == "max_pool2d":
        g.update(x=randn(spec["n"], spec["c"], spec["h"], spec["h"]))
        return "F.max_pool2d(x, 3, 2, 1)", g
    if kind == "avg_pool2d":
        g.update(x=randn(spec["n"], spec["c"], spec["h"], spec["h"]), k=spec["k"], s=spec["s"], p=spec["p"])
        return "F.avg_pool2d(x, k, s, p)", g
    if kind == "batch_norm2d":
        C = spec["c"]
        g.update(x=randn(spec["n"], C, spec["h"], spec["h"]), rm=torch.zeros(C), rv=torch.ones(C), w=torch.ones(C),
                 b=torch.zeros(C))
        return "F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)", g
    if kind in ("resnet18_train", "resnet18_infer"):
        net = torch_resnet18(torch, 10 if kind == "resnet18_train" else 1000)
        x = torch.randn(spec["batch"], 3, spec["hw"], spec["hw"])
        if kind == "resnet18_infer":
            net.eval()

            def infer():
                with torch.no_grad():
                    net(x)
            return infer, g
        y = torch.randint(0, 10, (spec["batch"],))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

        def resnet_step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()
        return resnet_step, g
    if kind == "lstm":
        lstm = torch.nn.LSTM(spec["input"], spec["hidden"])
        x = randn(spec["seq"], spec["batch"], spec["input"]).requires_grad_()
        gy = randn(spec["seq"], spec["batch"], spec["hidden"])

        def lstm_step():
            lstm(x)[0].backward(gy)
            lstm.zero_grad(set_to_none=True)
            x.grad = None
        return lstm_step, g
    if kind == "sdpa":
        shape = (spec["batch"], spec["heads"], spec["seq"], spec["dim"])
        q, k, v = (randn(*shape).requires_grad_() for _ in range(3))
        gy = randn(*shape)

        def sdpa_step():
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(gy)
            q.grad = k.grad = v.grad = None
        return sdpa_step, g
    if kind == "transformer_train":
        enc = torch_encoder(torch, spec)
        opt = torch.optim.Adam(enc.parameters(), lr=1e-4)
        x, y = randn(spec["batch"], spec["seq"], spec["d_model"]), randn(spec["batch"], spec["seq"], spec["d_model"])

        def tf_step():
            opt.zero_grad(set_to_none=True)
            F.mse_loss(enc(x), y).backward()
            opt.step()
        return tf_step, g
    if kind == "embedding":
        V, D = spec["vocab"], spec["dim"]
        w = randn(V, D).requires_grad_()
        idx = torch.randint(0, V, (spec["batch"], spec["seq"]))
        gy = randn(spec["batch"], spec["seq"], D)

        def emb_step():
            F.embedding(idx, w).backward(gy)
            w.grad = None
        return emb_step, g
    if kind == "cnn_train":
        net = torch_demo_cnn(torch)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x, y = torch.randn(spec["batch"], 1, 28, 28), torch.randint(0, 10, (spec["batch"],))

        def cnn_step():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        return cnn_step, g
    if kind == "group_norm":
        C, H = spec["c"], spec["h"]
        g.update(x=randn(spec["n"], C, H, H), w=randn(C), b=randn(C), G=spec["groups"])
        if not spec.get("backward"):
            return "F.group_norm(x, G, w, b, 1e-5)", g
        x, w, b = (g[k].requires_grad_() for k in "xwb")
        gy = randn(spec["n"], C, H, H)

        def gn_step():
            F.group_norm(x, g["G"], w, b, 1e-5).backward(gy)
            x.grad = w.grad = b.grad = None
        return gn_step, g
    if kind == "rows":
        g.update(x=randn(spec["rows"], spec["cols"]), k=spec.get("k", 10))
        return {"topk": "torch.topk(x, k, 1)", "transpose_copy": "x.t().contiguous()",
                "norm2": "x.norm(2, 1)", "cumsum0": "torch.cumsum(x, 0)", "cumsum1": "torch.cumsum(x, 1)",
                "tril": "torch.tril(x)", "roll": "torch.roll(x, 5, 1)", "flip": "torch.flip(x, (1,))",
                "pixel_shuffle": "F.pixel_shuffle(x.view(-1, 256, 32, 32), 2)"}[spec["op"]], g
    if kind == "optim_step":
        net = torch_demo_cnn(torch) if spec["model"] == "cnn" else torch_encoder(torch, spec)
        for p in net.parameters():
            p.grad = torch.randn_like(p)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)  # PyTorch's default on the CPU: one loop per parameter
        return opt.step, g
    return None, None


def time_timer(timer, warmup, repeat, target, max_number=1_000_000):
    """The policy bench_ctorch's time_case() follows, for a timeit.Timer."""
    for _ in range(warmup):
        timer.timeit(1)
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= target or number >= max_number:
            break
        nxt = math.ceil(number * target / t * 1.05) if t > 0 else number * 10
        number = min(max_number, max(nxt, number * 2))
    return dict(summarize([timer.timeit(number) / number for _ in range(repeat)]), number=number)


def summarize(samples):
    """Median, quartiles and range of per-call seconds (and the sorted samples)."""
    v = sorted(samples)
    return dict(median_s=pct(v, 0.5), min_s=v[0], max_s=v[-1], q1_s=pct(v, 0.25), q3_s=pct(v, 0.75),
                repeats=len(v), samples_s=v)


def pct(v, q):
    """Linear interpolation between closest ranks of sorted v (numpy's default)."""
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


# ----------------------------------------------------------- resident memory (Linux)

def proc_status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def torch_rss_worker(args):
    """Runs one case in a fresh process and prints its peak RSS, measured the way
    bench_ctorch --rss does (VmHWM reset before the case's tensors are made)."""
    import torch
    torch.set_num_threads(args.threads)
    spec = json.loads(args.torch_rss_worker)
    rss0 = proc_status_kb("VmRSS") if reset_hwm() else None
    stmt, g = torch_case(torch, spec)
    r = time_timer(timeit.Timer(stmt, globals=g), args.warmup, args.repeat, args.target)
    hwm = proc_status_kb("VmHWM")
    r["rss_hwm_bytes"] = hwm * 1024 if hwm is not None else None
    r["rss_peak_delta_bytes"] = (hwm - rss0) * 1024 if hwm is not None and rss0 else None
    print(json.dumps(r))


# ------------------------------------------------------------------- ctorch side

def run_ctorch(exe, specs, args, extra=(), repeat=None):
    """Runs the specs through bench_ctorch (JSON list on stdin, JSON lines out). If the
    process dies, the case it died in is recorded as an error and the rest run in a
    new process."""
    results = {}
    pending = list(specs)
    while pending:
        payload = json.dumps([{k: v for k, v in s.items() if k != "group"} for s in pending])
        cmd = [str(exe), "--threads", str(args.threads), "--warmup", str(args.warmup),
               "--repeat", str(repeat or args.repeat), "--target", str(args.target), *extra, "--json", "-"]
        p = subprocess.run(cmd, input=payload, capture_output=True, text=True)
        got = 0
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                results[r["name"]] = r
                got += 1
        if p.returncode == 0 and got == len(pending):
            break
        # the first case without a result is the one the process died in
        done = [s for s in pending if s["name"] in results]
        crashed = pending[len(done)] if len(done) < len(pending) else None
        if crashed is None:
            break
        results[crashed["name"]] = {"name": crashed["name"], "status": "error",
                                    "error": f"bench_ctorch exited with status {p.returncode}: "
                                             f"{p.stderr.strip()[-300:]}"}
        pending = pending[len(done) + 1:]
    return results


def parallel_speedup(exe, args):
    """How much faster a compute-bound kernel (a 1024^3 float32 matmul through ctorch)
    runs on args.threads threads than on one: about the thread count when each thread
    has a core of its own; on a VM whose virtual CPUs share physical cores (or are
    contended) it drops toward 1, and every parallel case with it. Recorded at the start
    and end of a run so that a report says what machine it was measured on."""
    if args.threads < 2:
        return None
    n = 512 if args.quick else 1024  # quick: 512^3, still compute-bound, in a tenth of the time
    spec = {"name": "speedup probe", "case": "matmul", "m": n, "k": n, "n": n, "dtype": "float32"}
    t = {}
    for th in (1, args.threads):
        cmd = [str(exe), "--threads", str(th), "--warmup", "1" if args.quick else "2", "--repeat",
               "3" if args.quick else "5", "--target", "0.01" if args.quick else "0.05", "--json", "-"]
        p = subprocess.run(cmd, input=json.dumps([spec]), capture_output=True, text=True)
        try:
            t[th] = json.loads(p.stdout.strip().splitlines()[-1])["median_s"]
        except (IndexError, KeyError, json.JSONDecodeError):
            return None
    return t[1] / t[args.threads]


def measure_case(exe, spec, args, torch):
    """Times one case on both sides in args.rounds rounds, the sides alternating (ctorch
    first in even rounds, PyTorch first in odd ones), each round a share of the repeats;
    the samples of all rounds are pooled. Measured close together in time, the two sides
    see the same machine: a slow spell of a shared VM no longer lands on one side only.
    Returns (ctorch result, PyTorch result), each with the pooled median and spread."""
    rounds = max(1, args.rounds)
    per = max(1, math.ceil(args.repeat / rounds))
    pre = args.ctorch_done.get(spec["name"]) if rounds == 1 else None  # quick: measured up front
    timer, terr = None, None
    try:
        stmt, g = torch_case(torch, spec)
        timer = timeit.Timer(stmt, globals=g)
    except Exception as ex:
        terr = str(ex)
    cs, ts, blas, c, t = [], [], {}, None, {}
    bs, pairs = [], []  # matmul: the faster GEMM's samples, and ctorch / GEMM repeat by repeat
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            if side == 0:
                c = pre or run_ctorch(exe, [spec], args, repeat=per).get(
                    spec["name"], {"status": "error", "error": "no result from bench_ctorch"})
                if c["status"] != "ok":
                    return c, {}
                cs += c["samples_s"]
                for k in GEMM_KEYS:
                    if k in c:
                        blas.setdefault(k, []).append(c[k])
                if c.get("blas_samples_s"):  # taken in turn with ctorch's: pairs
                    bs += c["blas_samples_s"]
                    pairs += [a / b for a, b in zip(c["samples_s"], c["blas_samples_s"])]
            elif "error" not in t:
                if timer is None:
                    t = {"error": terr}
                    continue
                try:
                    tr = time_timer(timer, args.warmup, per, args.target)
                except Exception as ex:
                    t = {"error": str(ex)}
                    continue
                ts += tr["samples_s"]
                t = tr
    c = dict(c, **summarize(cs))
    for k, v in blas.items():
        c[k] = statistics.median(v)
    if pairs:
        # the faster GEMM's time pooled as ctorch's is, and the ratio as the median of the
        # paired repeats' ratios: a slow spell of the VM inside a round then lands on
        # both members of a pair instead of on whichever side it overlaps most
        c["blas_s"], c["ratio_vs_blas"] = statistics.median(bs), statistics.median(pairs)
    if "error" not in t:
        t = dict(t, **summarize(ts))
    return c, t


# --------------------------------------------------------------- whole process

def startup_times(cmd, runs, warm=True):
    """Wall time from starting the process to its exit after printing one result
    (one unmeasured run first to warm the page cache, unless not warm: the quick run,
    which only keeps the case working)."""
    if warm:
        subprocess.run(cmd, capture_output=True, check=True)
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return dict(median_s=pct(ts, 0.5), min_s=ts[0], max_s=ts[-1], q1_s=pct(ts, 0.25), q3_s=pct(ts, 0.75),
                repeats=runs, number=1)


# ------------------------------------------------------------------------ report

def fmt_time(s):
    if s is None:
        return "-"
    for unit, f in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= f:
            return f"{s / f:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit, f in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if b >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b} B"


def fmt_value(e, side):
    if e.get("unit") == "bytes":
        return fmt_bytes(e.get(f"{side}_bytes"))
    return fmt_time(e.get(f"{side}_s"))


def spread_str(sp):
    if not sp:
        return "-"
    return f"{fmt_time(sp['q1_s'])} – {fmt_time(sp['q3_s'])}"


def write_md(path, meta, entries):
    out = ["# ctorch vs PyTorch benchmark", "",
           f"{meta['date']} · {meta['mode']} run · {meta['threads']} threads · PyTorch {meta['torch_version']} · "
           f"ctorch {meta['ctorch_version']} · {meta['cpu']} ({meta['cores']} cores) · {meta['platform']}", "",
           *([f"Machine check: a compute-bound float32 matmul ran {meta['parallel_speedup_start']:.2f}x (start) and "
              f"{meta['parallel_speedup_end']:.2f}x (end) faster on {meta['threads']} threads than on one "
              f"(about {meta['threads']} when each thread has a core of its own; near 1 when the VM's virtual CPUs "
              f"share a physical core, which slows ctorch's parallel kernels more than PyTorch's).", ""]
             if meta.get("parallel_speedup_start") and meta.get("parallel_speedup_end") else []),
           *([f"**Warning:** the 1-minute load average was {meta['load_average_start']:.2f} when the run "
              f"started: other processes were busy and may have distorted these timings.", ""]
             if (meta.get("load_average_start") or 0) > 0.5 else []),
           "ratio = ctorch / PyTorch (below 1: ctorch is faster or smaller). Times are medians per call; "
           "spread is the interquartile range over the repeats.", "",
           "| group | case | ctorch | PyTorch | ratio | target | ctorch IQR | PyTorch IQR | notes |",
           "|---|---|---:|---:|---:|---:|---|---|---|"]
    for e in entries:
        if e["status"] != "ok":
            continue
        notes = []
        if e.get("blas_s"):
            libs = ", ".join(f"{n} {fmt_time(e[k])}" for k, n in (("openblas_s", "OpenBLAS"), ("onednn_s", "oneDNN"))
                             if e.get(k))
            notes.append(f"fastest sgemm underneath {fmt_time(e['blas_s'])} ({libs}; ctorch/sgemm "
                         f"{e['ratio_vs_blas']:.2f}, the median of paired repeats)")
        if e.get("ctorch_mem_peak_bytes"):
            notes.append(f"ctorch peak {fmt_bytes(e['ctorch_mem_peak_bytes'])}")
        if e.get("note"):
            notes.append(e["note"])
        target = e.get("target")
        out.append(f"| {e['group']} | {e['name']} | {fmt_value(e, 'ctorch')} | {fmt_value(e, 'torch')} | "
                   f"{e['ratio']:.3g} | {'-' if target is None else target} | "
                   f"{spread_str(e.get('ctorch_spread'))} | {spread_str(e.get('torch_spread'))} | "
                   f"{'; '.join(notes)} |")
    skipped = [e for e in entries if e["status"] != "ok"]
    if skipped:
        out += ["", "## Not run", "", "| group | case | status | reason |", "|---|---|---|---|"]
        for e in skipped:
            out.append(f"| {e['group']} | {e['name']} | {e['status']} | {e.get('reason', '')} |")
    path.write_text("\n".join(out) + "\n")


def write_svg(path, meta, entries):
    """Horizontal bars of log10(ratio) from the 1.0 line: green when ctorch wins."""
    rows = [e for e in entries if e["status"] == "ok" and e.get("ratio") and e["ratio"] > 0]
    label_w, plot_w, row_h, top = 330, 560, 18, 58
    lo = min([0.1] + [e["ratio"] for e in rows])
    hi = max([10.0] + [e["ratio"] for e in rows])
    lmin, lmax = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    height = top + row_h * len(rows) + 40
    width = label_w + plot_w + 80

    def x(r):
        return label_w + (math.log10(r) - lmin) / (lmax - lmin) * plot_w

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="10" y="18" font-size="14" font-weight="bold">ctorch / PyTorch '
         f'(log scale; left of 1.0: ctorch faster)</text>',
         f'<text x="10" y="34" fill="#555">{html.escape(meta["date"])} · {meta["threads"]} threads · PyTorch '
         f'{html.escape(meta["torch_version"])} · {html.escape(meta["cpu"])} · {meta["mode"]} run</text>']
    for p in range(lmin, lmax + 1):
        for m in (1, 2, 5):
            r = m * 10 ** p
            if r > 10 ** lmax:
                break
            xx = x(r)
            s.append(f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{top + row_h * len(rows)}" '
                     f'stroke="{"#bbb" if m == 1 else "#eee"}"/>')
            if m == 1 or lmax - lmin <= 3:
                s.append(f'<text x="{xx:.1f}" y="{top - 9}" text-anchor="middle" fill="#555">{r:g}</text>')
    for i, e in enumerate(rows):
        y = top + i * row_h
        r = e["ratio"]
        x0, x1 = sorted((x(1.0), x(r)))
        color = "#2e7d32" if r <= 1.0 else "#c62828"
        s.append(f'<text x="{label_w - 6}" y="{y + row_h * 0.7:.1f}" text-anchor="end">'
                 f'{html.escape(e["name"])}</text>')
        s.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 6}" '
                 f'fill="{color}"><title>{html.escape(e["name"])}: {r:.3g}</title></rect>')
        s.append(f'<text x="{max(x(r), x(1.0)) + 4:.1f}" y="{y + row_h * 0.7:.1f}" fill="#333">{r:.3g}</text>')
    x1 = x(1.0)
    s.append(f'<line x1="{x1:.1f}" y1="{top - 6}" x2="{x1:.1f}" y2="{top + row_h * len(rows)}" '
             f'stroke="black" stroke-width="1.5"/>')
    s.append("</svg>")
    path.write_text("\n".join(s) + "\n")


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                                    "amx_bf16") if f in have]
    except OSError:
        pass
    return []


# -------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a subset of cases with few repeats (CI)")
    ap.add_argument("--build-dir", help="where bench_ctorch and libctorch.so are and results go "
                    "(default: the directory of $CTORCH_LIB, else build/)")
    ap.add_argument("--threads", type=int, help="threads for both sides (default: all cores available)")
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--repeat", type=int)
    ap.add_argument("--target", type=float, help="minimum seconds per repeat")
    ap.add_argument("--rounds", type=int, help="rounds per case, alternating the sides (default 3; quick 1)")
    ap.add_argument("--filter", help="only cases whose name contains this text")
    ap.add_argument("--torch-rss-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is None:
        args.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for k, full, quick in (("warmup", 3, 1), ("repeat", 15, 3), ("target", 0.02, 0.002), ("rounds", 3, 1)):
        if getattr(args, k) is None:
            setattr(args, k, quick if args.quick else full)
    if args.torch_rss_worker:
        return torch_rss_worker(args)

    if args.build_dir:
        build = Path(args.build_dir).resolve()
    elif os.environ.get("CTORCH_LIB"):
        build = Path(os.environ["CTORCH_LIB"]).resolve().parent
    else:
        build = ROOT / "build"
    exe = build / "bench_ctorch"
    if not exe.exists():
        print(f"bench: {exe} does not exist; build first (cmake --build build)", file=sys.stderr)
        return 1
    ctorch_version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()

    t_start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load_start is not None and load_start > 0.5:
        print(f"bench: warning: load average {load_start:.2f} before the run; other processes distort "
              f"the timings", file=sys.stderr)
    cases = case_list(args.quick)
    if args.filter:
        cases = [c for c in cases if args.filter in c["name"]]
    print(f"bench: {len(cases)} cases, {args.threads} threads, {'quick' if args.quick else 'full'} run; "
          f"each case in {args.rounds} round(s) alternating ctorch and PyTorch", flush=True)

    speedup_start = parallel_speedup(exe, args)
    if speedup_start is not None:
        print(f"bench: {args.threads}-thread speedup of a compute-bound matmul: {speedup_start:.2f}x", flush=True)

    # one round (the quick run's default): every ctorch case in one bench_ctorch process,
    # which saves a process start and library load per case; with more rounds each round
    # runs its own process, alternating with PyTorch
    args.ctorch_done = run_ctorch(exe, cases, args) if args.rounds == 1 else {}
    import torch
    torch.set_num_threads(args.threads)
    entries = []
    cres = {}
    failed = False
    for spec in cases:
        name = spec["name"]
        e = {"name": name, "group": spec["group"], "case": spec["case"],
             "params": {k: v for k, v in spec.items() if k not in ("name", "group", "case")},
             "target": CASE_TARGETS.get(spec["case"], TARGETS.get(spec["group"]))}
        if spec["group"] == "matmul":
            e["target"] = None  # the matmul target is relative to BLAS: ratio_vs_blas <= 1.05
        c, t = measure_case(exe, spec, args, torch)
        cres[name] = c
        if c["status"] != "ok":
            e["status"] = c["status"]
            e["reason"] = c.get("reason") or c.get("error")
            failed |= c["status"] == "error"
            entries.append(e)
            print(f"  {name:48s} {c['status']}: {e['reason']}", flush=True)
            continue
        if "error" in t:  # a broken torch case breaks the suite, not the report
            e.update(status="error", reason=f"PyTorch side failed: {t['error']}")
            failed = True
            entries.append(e)
            continue
        e.update(status="ok", unit="s", ctorch_s=c["median_s"], torch_s=t["median_s"],
                 ratio=c["median_s"] / t["median_s"],
                 ctorch_spread={k: c[k] for k in ("min_s", "max_s", "q1_s", "q3_s")},
                 torch_spread={k: t[k] for k in ("min_s", "max_s", "q1_s", "q3_s")},
                 ctorch_calls_per_repeat=c["number"], torch_calls_per_repeat=t["number"],
                 repeats=c["repeats"], rounds=args.rounds, ctorch_mem_peak_bytes=c.get("mem_peak_bytes"), torch_mem_peak_bytes=None)
        if "blas_s" in c:
            e.update({k: c[k] for k in GEMM_KEYS if k in c})
            e["ratio_vs_blas"] = c.get("ratio_vs_blas", c["median_s"] / c["blas_s"])
        notes = [c["note"]] if c.get("note") else []
        if notes:
            e["note"] = "; ".join(notes)
        entries.append(e)
        print(f"  {name:48s} ctorch {fmt_time(e['ctorch_s']):>10s}  torch {fmt_time(e['torch_s']):>10s}  "
              f"ratio {e['ratio']:.3g}", flush=True)

    # ---- whole-process figures ----
    lib = build / "libctorch.so"
    torch_lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    if lib.exists() and torch_lib.exists():
        cb, tb = lib.resolve().stat().st_size, torch_lib.resolve().stat().st_size
        entries.append({"name": "library size (libctorch.so vs libtorch_cpu.so)", "group": "size",
                        "case": "size", "status": "ok", "unit": "bytes", "ctorch_bytes": cb, "torch_bytes": tb,
                        "ratio": cb / tb, "target": None,
                        "note": "issue target: under 10 MB; ctorch also loads OpenBLAS and SLEEF, "
                                "PyTorch also libtorch.so, libc10.so, MKL/oneDNN inside libtorch_cpu.so"})
    runs = 1 if args.quick else 5
    try:
        cs = startup_times([str(exe), "--first-result"], runs, not args.quick)
        ts = startup_times([sys.executable, "-c", "import torch; print((torch.ones(1) + 1).item())"], runs,
                           not args.quick)
        entries.append({"name": "process start to first result", "group": "startup", "case": "startup",
                        "status": "ok", "unit": "s", "ctorch_s": cs["median_s"], "torch_s": ts["median_s"],
                        "ratio": cs["median_s"] / ts["median_s"], "target": None,
                        "ctorch_spread": {k: cs[k] for k in ("min_s", "max_s", "q1_s", "q3_s")},
                        "torch_spread": {k: ts[k] for k in ("min_s", "max_s", "q1_s", "q3_s")},
                        "repeats": runs,
                        "note": "C program vs python3 -c 'import torch; ...'"})
    except subprocess.CalledProcessError as ex:
        entries.append({"name": "process start to first result", "group": "startup", "case": "startup",
                        "status": "error", "reason": str(ex)})
        failed = True
    # peak RSS of the training runs, each side in a fresh process (quick: the first one
    # only; the others take the same path)
    rss_cases = [spec for spec in cases if spec["group"] == "training"]
    for spec in rss_cases[:1] if args.quick else rss_cases:
        if cres.get(spec["name"], {}).get("status") != "ok":
            continue
        name = f"peak RSS: {spec['name']}"
        c = run_ctorch(exe, [spec], args, extra=("--rss",)).get(spec["name"], {})
        w = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--threads", str(args.threads),
                            "--warmup", str(args.warmup), "--repeat", str(args.repeat), "--target",
                            str(args.target), "--torch-rss-worker",
                            json.dumps({k: v for k, v in spec.items() if k != "group"})],
                           capture_output=True, text=True)
        try:
            t = json.loads(w.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            t = {}
        if c.get("rss_peak_delta_bytes") and t.get("rss_peak_delta_bytes"):
            entries.append({"name": name + " (growth during the run)", "group": "memory", "case": spec["case"],
                            "status": "ok", "unit": "bytes", "ctorch_bytes": c["rss_peak_delta_bytes"],
                            "torch_bytes": t["rss_peak_delta_bytes"],
                            "ratio": c["rss_peak_delta_bytes"] / t["rss_peak_delta_bytes"],
                            "target": TARGETS["memory"],
                            "note": f"whole process peak: ctorch {fmt_bytes(c.get('rss_hwm_bytes'))}, "
                                    f"PyTorch {fmt_bytes(t.get('rss_hwm_bytes'))}"})
            # the whole-process figure: the process's peak RSS as `top` shows it
            # (the growth above is the stricter view: it leaves out what each side holds
            # before the run, PyTorch's import above all)
            if c.get("rss_hwm_bytes") and t.get("rss_hwm_bytes"):
                entries.append({"name": name + " (whole process)", "group": "memory", "case": spec["case"],
                                "status": "ok", "unit": "bytes", "ctorch_bytes": c["rss_hwm_bytes"],
                                "torch_bytes": t["rss_hwm_bytes"],
                                "ratio": c["rss_hwm_bytes"] / t["rss_hwm_bytes"], "target": TARGETS["memory"],
                                "note": "C program vs python3 with torch imported"})
        else:
            entries.append({"name": name, "group": "memory", "case": spec["case"], "status": "error",
                            "reason": f"no RSS figures (ctorch: {c.get('error', c.get('status'))}; "
                                      f"torch: {w.stderr.strip()[-200:]})"})
            failed = True

    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full", "threads": args.threads,
            "torch_version": torch.__version__, "ctorch_version": ctorch_version,
            "torch_threads": torch.get_num_threads(), "cpu": cpu_name(), "cpu_flags": cpu_flags(),
            "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "policy": {"warmup": args.warmup, "repeat": args.repeat, "target_s": args.target},
            "torch_blas": "MKL" if torch.backends.mkl.is_available() else "other",
            "duration_s": round(time.perf_counter() - t_start, 1),
            "load_average_start": load_start,
            "parallel_speedup_start": speedup_start, "parallel_speedup_end": parallel_speedup(exe, args),
            "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    try:
        meta["git_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                            text=True).stdout.strip() or None
    except OSError:
        meta["git_commit"] = None
    ok = [e["ratio"] for e in entries if e["status"] == "ok" and e.get("unit") == "s" and e["group"] != "startup"]
    if ok:
        meta["geomean_time_ratio"] = math.exp(statistics.fmean(math.log(r) for r in ok))
    (build / "bench.json").write_text(json.dumps({"meta": meta, "cases": entries}, indent=1) + "\n")
    write_md(build / "bench.md", meta, entries)
    write_svg(build / "bench.svg", meta, entries)
    print(f"bench: wrote {build / 'bench.json'}, bench.md, bench.svg in {meta['duration_s']} s"
          + (f"; geometric mean of time ratios {meta['geomean_time_ratio']:.3g}" if ok else ""))
    if failed:
        print("bench: some cases failed to run (see above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
