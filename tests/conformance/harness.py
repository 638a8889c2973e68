"""Conformance harness: run an op in ctorch and in PyTorch on the same inputs and
compare values, dtypes, shapes, gradients and errors. Every check is recorded as a
case under an op name; conftest.py writes the table to build/conformance.json.

    import pytest, torch, ctorch
    from harness import check, check_error, gradcheck, samples, describe

    add = ctorch.lib.binary("ct_add")

    @pytest.mark.parametrize("inputs", samples("binary"), ids=describe)
    def test_add(inputs):
        check("add", add, torch.add, inputs)

    def test_add_scalar():
        check("add", add, torch.add, [torch.randn(3), 2.5])   # numbers -> wrapped scalars

    def test_add_errors():
        check_error("add", add, torch.add, [torch.randn(2), torch.randn(3)])

    def test_add_gradcheck():
        gradcheck("add", add, [torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)])

ct_fn receives ctorch Tensors (built from the torch inputs with the same layout:
transposed / strided / expanded inputs stay views) and non-tensor inputs unchanged;
torch_fn receives the torch inputs. Both may return a tensor or a tuple of tensors
(e.g. values and indices). Declare C functions with ctorch.lib.declare (signature codes
are listed in python/ctorch/__init__.py), e.g.
    sort = ctorch.lib.declare("ct_sort", "T(T,i,b,b,T*)")   # -> (values, indices)
    check("sort", lambda x: sort(x, -1, False, True),
          lambda x: torch.sort(x, dim=-1, stable=True), [make((3, 4))])
Other helpers: case(op) records a custom check, need(*symbols) skips until the library
has them, make(shape, dtype, layout) builds one input, assert_same(got, want) compares.
In-place ops: pass inputs_unchanged=False and make torch_fn work on a clone.
"""
import contextlib
import ctypes
import itertools
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

import ctorch

ALL_DTYPES = list(ctorch.DTYPES)
BOOL = [torch.bool]
INTEGRAL = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
FLOATING = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
COMPLEX = [torch.complex64, torch.complex128]
DIFFERENTIABLE = FLOATING + COMPLEX

# ---- case table: op name -> {"cases": N, "passed": M} ----
RESULTS = {}


def count(op_name, kind):
    """Counts a passed check of one kind ("grad", "error", "gradcheck", "gradgradcheck")
    under op_name, so build/conformance.json shows what each op's cases cover."""
    r = RESULTS.setdefault(op_name, {"cases": 0, "passed": 0})
    r[kind] = r.get(kind, 0) + 1


def record(op_name, passed):
    r = RESULTS.setdefault(op_name, {"cases": 0, "passed": 0})
    r["cases"] += 1
    r["passed"] += int(bool(passed))


@contextlib.contextmanager
def case(op_name):
    """Records one case for op_name: passed unless the block raises. Use it for custom
    checks: `with case("sort"): assert ...`. pytest.skip inside it records nothing."""
    try:
        yield
    except pytest.skip.Exception:
        raise
    except BaseException:
        record(op_name, False)
        raise
    record(op_name, True)


def need(*names):
    """Skips the test unless the library exports every C function named."""
    missing = [n for n in names if not ctorch.has(n)]
    if missing:
        pytest.skip("not in libctorch yet: " + ", ".join(missing))


# ---- inputs ----
_SHORT = {torch.bool: "b8", torch.uint8: "u8", torch.int8: "i8", torch.int16: "i16", torch.int32: "i32",
          torch.int64: "i64", torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32",
          torch.float64: "f64", torch.complex64: "c64", torch.complex128: "c128"}


def describe(inputs):
    """Short id of a sample for pytest: 'f32[3,4]T-f32[4]' (T: non-contiguous)."""
    if isinstance(inputs, torch.Tensor):
        nc = "" if inputs.is_contiguous() else "T"
        return f"{_SHORT[inputs.dtype]}[{','.join(map(str, inputs.shape))}]{nc}"
    if isinstance(inputs, (list, tuple)):
        return "-".join(describe(x) for x in inputs)
    return repr(inputs)


def is_diff(x):
    return isinstance(x, torch.Tensor) and (x.dtype.is_floating_point or x.dtype.is_complex)


def make(shape, dtype=torch.float32, layout="contiguous", low=None, high=None, generator=None):
    """A test tensor. Values: bool 0/1; integers in [-9, 9] ([0, 9] for uint8); floats and
    complex standard normal, or uniform in [low, high) when given (ints: randint range).
    layout: "contiguous"; "transposed" (last two dims swapped, >= 2-D); "strided" (every
    other element of the last dim, starting at offset 1); "expanded" (dim 0 broadcast
    from size 1, stride 0)."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    shape = tuple(shape)
    if layout == "transposed":
        assert len(shape) >= 2, "transposed layout needs >= 2 dims"
        return make(shape[:-2] + (shape[-1], shape[-2]), dtype, "contiguous", low, high, g).transpose(-1, -2)
    if layout == "strided":
        assert len(shape) >= 1, "strided layout needs >= 1 dim"
        big = make(shape[:-1] + (2 * shape[-1] + 1,), dtype, "contiguous", low, high, g)
        return big[..., 1::2]
    if layout == "expanded":
        assert len(shape) >= 1, "expanded layout needs >= 1 dim"
        return make((1,) + shape[1:], dtype, "contiguous", low, high, g).expand(shape)
    assert layout == "contiguous", layout
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if not (dtype.is_floating_point or dtype.is_complex):
        lo = (0 if dtype == torch.uint8 else -9) if low is None else int(low)
        hi = 10 if high is None else int(high)
        return torch.randint(lo, hi, shape, generator=g).to(dtype)
    real = torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32
    if low is not None or high is not None:
        lo, hi = (-3.0 if low is None else low), (3.0 if high is None else high)
        x = torch.rand(shape, dtype=real, generator=g) * (hi - lo) + lo
        if dtype.is_complex:
            x = torch.complex(x, torch.rand(shape, dtype=real, generator=g) * (hi - lo) + lo)
    else:
        x = torch.randn(shape, dtype=real, generator=g)
        if dtype.is_complex:
            x = torch.complex(x, torch.randn(shape, dtype=real, generator=g))
    return x.to(dtype)


# (shape, layout) per input
_UNARY = [((), "contiguous"), ((1,), "contiguous"), ((5,), "contiguous"), ((0,), "contiguous"),
          ((2, 0), "contiguous"), ((3, 4), "contiguous"), ((2, 3, 4), "contiguous"),
          ((3, 4), "transposed"), ((3, 4), "strided"), ((3, 4), "expanded"), ((2, 3, 4), "transposed")]
_BINARY = [
    [((3, 4), "contiguous"), ((3, 4), "contiguous")],
    [((3, 1), "contiguous"), ((1, 4), "contiguous")],          # broadcasting both ways
    [((2, 3, 4), "contiguous"), ((4,), "contiguous")],
    [((4,), "contiguous"), ((2, 3, 4), "contiguous")],
    [((), "contiguous"), ((3, 4), "contiguous")],              # 0-dim with dimensioned
    [((3, 4), "contiguous"), ((), "contiguous")],
    [((), "contiguous"), ((), "contiguous")],
    [((5,), "contiguous"), ((1,), "contiguous")],
    [((0, 4), "contiguous"), ((4,), "contiguous")],            # empty
    [((0,), "contiguous"), ((1,), "contiguous")],
    [((3, 4), "transposed"), ((3, 4), "contiguous")],          # non-contiguous
    [((3, 4), "contiguous"), ((3, 4), "strided")],
    [((3, 4), "expanded"), ((3, 4), "transposed")],
    [((2, 3, 4), "transposed"), ((3, 1), "contiguous")],
]
_TERNARY = [
    [((3, 4), "contiguous")] * 3,
    [((3, 1), "contiguous"), ((1, 4), "contiguous"), ((4,), "contiguous")],
    [((), "contiguous"), ((3, 4), "contiguous"), ((), "contiguous")],
    [((0, 4), "contiguous"), ((4,), "contiguous"), ((1,), "contiguous")],
    [((3, 4), "transposed"), ((3, 4), "strided"), ((3, 4), "contiguous")],
]


def samples(kind="unary", dtypes=None, *, low=None, high=None, seed=0):
    """Standard inputs (a list of tuples of torch tensors), deterministic for a seed:
      "unary"     one tensor: 0-dim, 1-element, 1-D, empty, 2-D, 3-D, transposed,
                  step-sliced with an offset, expanded (stride 0)
      "binary"    two tensors of one dtype: equal shapes, broadcasting both ways,
                  0-dim with dimensioned, empty, non-contiguous mixes
      "ternary"   three tensors of one dtype, likewise
      "promotion" two tensors of every ordered pair of `dtypes` (default: all 12), as
                  [3] x [3], [3] x 0-dim and 0-dim x [3] (except float16 with a 0-dim
                  complex, whose torch result complex32 has no ctorch dtype)
    dtypes: the dtypes to cover (each sample repeated for each); default float32 and
    float64 (all 12 for "promotion")."""
    g = torch.Generator().manual_seed(seed)
    out = []
    if kind == "promotion":
        dts = ALL_DTYPES if dtypes is None else list(dtypes)
        for da, db in itertools.product(dts, dts):
            for sa, sb in [((3,), (3,)), ((3,), ()), ((), (3,))]:
                a = make(sa, da, low=low, high=high, generator=g)
                b = make(sb, db, low=low, high=high, generator=g)
                if torch.result_type(a, b) in ALL_DTYPES:  # not complex32, which ctorch lacks
                    out.append((a, b))
        return out
    table = {"unary": [[s] for s in _UNARY], "binary": _BINARY, "ternary": _TERNARY}[kind]
    for dt in (torch.float32, torch.float64) if dtypes is None else dtypes:
        for spec in table:
            out.append(tuple(make(shape, dt, layout, low, high, g) for shape, layout in spec))
    return out


# ---- comparing ----
def _as_list(x):
    if isinstance(x, (tuple, list)):
        return list(x), True
    return [x], False


def _to_torch(x):
    return x.torch() if isinstance(x, ctorch.Tensor) else x


def assert_same(got, want, *, atol=None, rtol=None, what="output"):
    """got (ctorch Tensor or torch tensor) equals want: same dtype, same shape, values
    within torch.testing.assert_close's tolerances for the dtype (exact for integers and
    bool), NaN where want has NaN. Non-tensor results must be equal."""
    got = _to_torch(got)
    if not isinstance(want, torch.Tensor):
        assert not isinstance(got, torch.Tensor) and got == want, f"{what}: got {got!r}, want {want!r}"
        return
    assert isinstance(got, torch.Tensor), f"{what}: got {type(got).__name__}, want a tensor"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, torch gives {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {list(got.shape)}, torch gives {list(want.shape)}"
    if atol is not None and rtol is None:
        rtol = 0.0
    if rtol is not None and atol is None:
        atol = 0.0
    torch.testing.assert_close(got, want.detach(), atol=atol, rtol=rtol, equal_nan=True,
                               msg=lambda m: f"{what}: {m}")


def _compare_outputs(op_name, got, want, atol, rtol, where):
    gl, gt = _as_list(got)
    wl, wt = _as_list(want)
    assert len(gl) == len(wl), f"{op_name}{where}: {len(gl)} outputs, torch gives {len(wl)}"
    for k, (g, w) in enumerate(zip(gl, wl)):
        assert_same(g, w, atol=atol, rtol=rtol, what=f"{op_name}{where} output {k}")
    return gl, wl


def _seed(op_name, where):
    return zlib.crc32((op_name + where).encode())


def check(op_name, ct_fn, torch_fn, inputs, *, grad=True, atol=None, rtol=None, grad_atol=None,
          grad_rtol=None, inputs_unchanged=True):
    """One case: ct_fn(*ctorch inputs) must match torch_fn(*inputs).
    - If torch raises (other than TypeError, which means torch_fn was called wrongly),
      ctorch must raise CtorchError with a non-empty message.
    - Values: dtype, shape and values (assert_close; atol/rtol override the dtype defaults).
    - inputs_unchanged: the ctorch inputs still hold their values afterwards.
    - grad: if some tensor input is floating/complex and torch's output requires grad,
      both run backward with the same random grad_output per differentiable output and
      every input's gradient is compared (grad_atol/grad_rtol, default atol/rtol).
    Records the case (pass/fail) under op_name; raises AssertionError on a mismatch."""
    inputs = list(inputs)
    with case(op_name):
        where = f" [{describe(inputs)}]"
        c_in = [ctorch.from_torch(x, requires_grad=False) if isinstance(x, torch.Tensor) else x for x in inputs]
        try:
            with torch.no_grad():
                want = torch_fn(*inputs)
        except TypeError:  # torch's argument parsing: a mistake in the test, not an error case
            raise
        except Exception as e:  # torch refuses: ctorch must refuse too
            try:
                ct_fn(*c_in)
            except ctorch.CtorchError as ce:
                assert str(ce), f"{op_name}{where}: ctorch failed with an empty message"
                count(op_name, "error")
                return
            raise AssertionError(f"{op_name}{where}: ctorch succeeded where torch raised {type(e).__name__}: {e}")
        try:
            got = ct_fn(*c_in)
        except ctorch.CtorchError as ce:
            raise AssertionError(f"{op_name}{where}: ctorch raised '{ce}' where torch succeeded") from None
        _compare_outputs(op_name, got, want, atol, rtol, where)
        if inputs_unchanged:
            for k, (c, t) in enumerate(zip(c_in, inputs)):
                if isinstance(t, torch.Tensor):
                    assert_same(c, t, what=f"{op_name}{where} input {k} after the call")
        if grad and any(is_diff(x) for x in inputs):
            _check_grad(op_name, ct_fn, torch_fn, inputs, where, atol if grad_atol is None else grad_atol,
                        rtol if grad_rtol is None else grad_rtol, atol, rtol)


def _check_grad(op_name, ct_fn, torch_fn, inputs, where, gatol, grtol, atol, rtol):
    t_in = [x.detach().requires_grad_() if is_diff(x) else x for x in inputs]
    want = torch_fn(*t_in)
    wl, _ = _as_list(want)
    diff_out = [k for k, w in enumerate(wl) if isinstance(w, torch.Tensor) and w.requires_grad]
    if not diff_out:
        return
    c_in = [ctorch.from_torch(x, requires_grad=is_diff(x)) if isinstance(x, torch.Tensor) else x for x in t_in]
    try:
        got = ct_fn(*c_in)
    except ctorch.CtorchError as ce:
        raise AssertionError(f"{op_name}{where}: with inputs requiring grad, ctorch raised '{ce}'") from None
    gl, _ = _compare_outputs(op_name, got, want, atol, rtol, where + " (grad mode)")
    g = torch.Generator().manual_seed(_seed(op_name, where))
    gos = [torch.randn(wl[k].shape, dtype=wl[k].dtype, generator=g) for k in diff_out]
    leaves = [x for x in t_in if is_diff(x)]
    t_grads = torch.autograd.grad([wl[k] for k in diff_out], leaves, gos, allow_unused=True)
    for n, (k, go) in enumerate(zip(diff_out, gos)):
        out = gl[k]
        assert isinstance(out, ctorch.Tensor) and out.requires_grad, \
            f"{op_name}{where}: output {k} does not require grad in ctorch (torch: {wl[k].grad_fn.name()})"
        try:
            out.backward(ctorch.from_torch(go), retain_graph=n < len(diff_out) - 1)
        except ctorch.CtorchError as ce:
            raise AssertionError(f"{op_name}{where}: backward of output {k} failed: {ce}") from None
    c_leaves = [c for c, x in zip(c_in, t_in) if is_diff(x)]
    idx = [k for k, x in enumerate(t_in) if is_diff(x)]
    for k, c, tg in zip(idx, c_leaves, t_grads):
        cg = c.grad
        if tg is None:  # unreachable in torch: ctorch may leave no grad or zeros
            assert cg is None or not cg.torch().any(), f"{op_name}{where}: input {k} got a nonzero gradient, torch none"
            continue
        assert cg is not None, f"{op_name}{where}: input {k} got no gradient in ctorch"
        assert_same(cg, tg, atol=gatol, rtol=grtol, what=f"{op_name}{where} grad of input {k}")
    count(op_name, "grad")


def check_error(op_name, ct_fn, torch_fn, inputs, *, names=None, match=None):
    """One case: torch_fn(*inputs) raises and ct_fn(*ctorch inputs) raises CtorchError
    with a non-empty message that names the op (op_name, or any of `names`; case
    insensitive) and contains `match` if given. Returns ctorch's message."""
    inputs = list(inputs)
    names = [op_name] if names is None else ([names] if isinstance(names, str) else list(names))
    with case(op_name):
        where = f" [{describe(inputs)}]"
        c_in = [ctorch.from_torch(x, requires_grad=False) if isinstance(x, torch.Tensor) else x for x in inputs]
        try:
            torch_fn(*inputs)
        except TypeError:  # torch's argument parsing: a mistake in the test
            raise
        except Exception:
            pass
        else:
            raise AssertionError(f"{op_name}{where}: torch does not raise; not an error case")
        try:
            ct_fn(*c_in)
        except ctorch.CtorchError as ce:
            msg = str(ce)
        else:
            raise AssertionError(f"{op_name}{where}: ctorch succeeded where torch raised")
        assert msg, f"{op_name}{where}: empty error message"
        assert any(n.lower() in msg.lower() for n in names), f"{op_name}{where}: message '{msg}' does not name {names}"
        if match is not None:
            assert match in msg, f"{op_name}{where}: message '{msg}' lacks '{match}'"
        count(op_name, "error")
        return msg


# ---- gradcheck through the C API ----
_GCFN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)


def _c_gradcheck(cname, op_name, ct_fn, inputs, requires_grad, eps, atol, rtol):
    need(cname)
    f = ctorch.lib.declare(cname, ctypes.c_int, [_GCFN, "i", ctypes.POINTER(ctypes.c_void_p), "p", "d", "d", "d"])
    with case(op_name):
        inputs = list(inputs)
        if requires_grad is None:
            requires_grad = [True] * len(inputs)
        for x in inputs:
            assert isinstance(x, torch.Tensor) and x.dtype in (torch.float64, torch.complex128), \
                f"{cname} inputs must be float64 or complex128 tensors (close over other arguments in ct_fn)"
        c_in = [ctorch.from_torch(x, requires_grad=r) for x, r in zip(inputs, requires_grad)]
        failure = []
        results = []  # Python-side references to the outputs, alive until gradcheck returns

        def callback(n, ptrs, user):
            try:
                args = [ctorch.Tensor.borrowed(ptrs[i]) for i in range(n)]
                out = ct_fn(*args)
                if not isinstance(out, ctorch.Tensor):
                    raise TypeError(f"ct_fn must return one ctorch.Tensor, got {type(out).__name__}")
                # the caller borrows the result from its scope: hand it a scope-owned reference
                r = ctorch.lib.ct_to_dtype(out, out.dtype)
                results.append(r)
                return r.ptr
            except ctorch.CtorchError:
                return None  # the error record stays set for gradcheck to report
            except BaseException as e:  # never unwind through C
                failure.append(e)
                return None

        cb = _GCFN(callback)
        arr = (ctypes.c_void_p * len(c_in))(*[c.ptr for c in c_in])
        ctorch.lib.ct_clear_error()
        rc = f(cb, len(c_in), arr, None, eps, atol, rtol)
        msg = ctorch.lib.ct_last_error()
        ctorch.lib.ct_clear_error()
        if failure:
            raise failure[0]
        assert rc == 1, f"{op_name}: {cname} {'failed' if rc == 0 else f'error {rc}'}: {msg}"
        count(op_name, cname[3:])


def gradcheck(op_name, ct_fn, inputs, *, requires_grad=None, eps=1e-6, atol=1e-5, rtol=1e-3):
    """One case: ct_gradcheck (analytic vs finite-difference Jacobian, in C) of
    ct_fn(*tensors) -> Tensor at float64 torch inputs (requires_grad: per input, default
    all). Non-float64 arguments must be closed over in ct_fn."""
    _c_gradcheck("ct_gradcheck", op_name, ct_fn, inputs, requires_grad, eps, atol, rtol)


def gradgradcheck(op_name, ct_fn, inputs, *, requires_grad=None, eps=1e-6, atol=1e-5, rtol=1e-3):
    """One case: ct_gradgradcheck (second derivatives through create_graph) of ct_fn."""
    _c_gradcheck("ct_gradgradcheck", op_name, ct_fn, inputs, requires_grad, eps, atol, rtol)


def second_order_against_torch(what, ct_fn, torch_out, inputs, grad_out):
    """create_graph gradients of ct_fn(*inputs) against torch's (torch_out: torch's output
    computed from `inputs`, which require grad), then the gradients of the sum of their
    squares: gradgradcheck alone would pass create_graph gradients that are consistently
    wrong. ct_fn takes ctorch tensors; grad_out is the first backward's output gradient."""
    tg = torch.autograd.grad(torch_out, inputs, grad_out, create_graph=True)
    want = torch.autograd.grad(sum((t * t).sum() for t in tg), inputs)
    c_in = [ctorch.from_torch(t.detach(), requires_grad=True) for t in inputs]
    cg = ctorch.autograd_grad([ct_fn(*c_in)], c_in, [ctorch.from_torch(grad_out)], create_graph=True)
    for i, (c, t) in enumerate(zip(cg, tg)):
        assert_same(c, t.detach(), what=f"{what} create_graph gradient {i}")
    loss = None
    for c in cg:
        sq = ctorch.call("ct_sum", ctorch.call("ct_mul", c, c))
        loss = sq if loss is None else ctorch.call("ct_add", loss, sq)
    for i, (c, t) in enumerate(zip(ctorch.autograd_grad([loss], c_in), want)):
        assert_same(c, t, what=f"{what} second-order gradient {i}")


# ---- the CPU's vector paths ----
def isas():
    """The vector paths ctorch's hand dispatch can take on this machine (CTORCH_CPU_ISA
    caps it): "baseline", and "avx2" and "avx512" when the CPU has them."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    have = ["baseline"]
    if " avx2" in flags and " fma" in flags:
        have.append("avx2")
    if " avx512f" in flags and " avx512bw" in flags:
        have.append("avx512")
    return have


def isa_in_effect():
    """The path ctorch's hand dispatch takes in this process: the CPU's best, or lower
    when CTORCH_CPU_ISA caps it ("avx2", "baseline")."""
    best = isas()[-1]
    cap = os.environ.get("CTORCH_CPU_ISA")
    order = ["baseline", "avx2", "avx512"]
    return cap if cap in order and order.index(cap) < order.index(best) else best


def rerun_capped(path, isa, ignore=()):
    """Runs the tests under path (a file or the suite's folder) in a child pytest with
    ctorch capped to isa (CTORCH_CPU_ISA), leaving out the files in ignore: the kernels
    with a form per vector path are tested in the parent run on the CPU's best form
    only. Skips when this process is itself capped, or when isa is not below the CPU's
    best (the parent run took it)."""
    if os.environ.get("CTORCH_CPU_ISA"):
        pytest.skip("a capped run (a child) already")
    have = isas()
    if isa not in have or have[-1] == isa:
        pytest.skip(f"the run itself took the {have[-1]} path, the best this CPU has")
    rerun_with_env(path, {"CTORCH_CPU_ISA": isa}, ignore=ignore)


def rerun_with_env(path, env_extra, ignore=(), deselect=None):
    """Runs the tests under path in a child pytest with the environment variables
    env_extra set (read by ctorch when it loads), leaving out the files in ignore and
    the tests whose names match the -k expression `not deselect`; fails unless every
    test there passes."""
    env = dict(os.environ, CTORCH_CONFORMANCE_CHILD="1", **env_extra)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
    cmd += [f"--ignore={f}" for f in ignore]
    if deselect:
        cmd += ["-k", f"not {deselect}"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    label = " ".join(f"{k}={v}" for k, v in env_extra.items())
    assert p.returncode == 0, f"{label}:\n" + p.stdout[-6000:] + p.stderr[-2000:]
    assert " passed" in p.stdout.strip().splitlines()[-1]
