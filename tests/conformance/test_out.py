"""out= forms of reductions, matrix products and indexing ops against torch's out=:
the same values, out resized to the result's shape, dtype casting rules, and the error
when an input requires grad."""
import pytest
import torch

import ctorch
from harness import assert_same, case

L = ctorch.lib
D = {
    "sum": ("ct_sum_dim_out", "st(T,T,shape,b,dt)", lambda o, x: torch.sum(x, (1,), True, out=o), lambda x: ((1,), True, None)),
    "mean": ("ct_mean_dim_out", "st(T,T,shape,b,dt)", lambda o, x: torch.mean(x, (0,), False, out=o), lambda x: ((0,), False, None)),
    "prod": ("ct_prod_dim_out", "st(T,T,i,b,dt)", lambda o, x: torch.prod(x, 1, False, out=o), lambda x: (1, False, None)),
    "amax": ("ct_amax_out", "st(T,T,shape,b)", lambda o, x: torch.amax(x, (0, 1), False, out=o), lambda x: ((0, 1), False)),
    "amin": ("ct_amin_out", "st(T,T,shape,b)", lambda o, x: torch.amin(x, (1,), True, out=o), lambda x: ((1,), True)),
    "logsumexp": ("ct_logsumexp_out", "st(T,T,shape,b)", lambda o, x: torch.logsumexp(x, (1,), False, out=o), lambda x: ((1,), False)),
    "norm": ("ct_norm_out", "st(T,T,d,shape,b)", lambda o, x: torch.linalg.vector_norm(x, 3.0, (1,), False, out=o), lambda x: (3.0, (1,), False)),
    "cumsum": ("ct_cumsum_out", "st(T,T,i,dt)", lambda o, x: torch.cumsum(x, 1, out=o), lambda x: (1, None)),
    "cumprod": ("ct_cumprod_out", "st(T,T,i,dt)", lambda o, x: torch.cumprod(x, 0, out=o), lambda x: (0, None)),
}


@pytest.mark.parametrize("op", list(D))
@pytest.mark.parametrize("out_shape", [(0,), (3, 4), (7,)])
def test_reduction_out(op, out_shape):
    cname, sig, tfn, args = D[op]
    f = L.declare(cname, sig)
    x = torch.rand(3, 4, dtype=torch.float64) + 0.5
    with case(op):
        want = torch.empty(out_shape, dtype=torch.float64)
        tfn(want, x)
        got = ctorch.from_torch(torch.empty(out_shape, dtype=torch.float64))
        f(got, ctorch.from_torch(x), *args(x))
        assert_same(got.torch(), want)


def test_max_sort_topk_out():
    x = torch.randn(4, 6, dtype=torch.float32)
    maxo = L.declare("ct_max_dim_out", "st(T,T,T,i,b)")
    sorto = L.declare("ct_sort_out", "st(T,T,T,i,b,b)")
    topko = L.declare("ct_topk_out", "st(T,T,T,i64,i,b,b)")
    for name, cfn, tfn in [
        ("max", lambda v, i, c: maxo(v, i, c, 1, True), lambda v, i: torch.max(x, 1, True, out=(v, i))),
        ("sort", lambda v, i, c: sorto(v, i, c, 0, True, True), lambda v, i: torch.sort(x, dim=0, descending=True, stable=True, out=(v, i))),
        ("topk", lambda v, i, c: topko(v, i, c, 3, 1, True, True), lambda v, i: torch.topk(x, 3, 1, True, True, out=(v, i))),
    ]:
        with case(name):
            tv, ti = torch.empty(0), torch.empty(0, dtype=torch.int64)
            tfn(tv, ti)
            cv, ci = ctorch.from_torch(torch.empty(0)), ctorch.from_torch(torch.empty(0, dtype=torch.int64))
            cfn(cv, ci, ctorch.from_torch(x))
            assert_same(cv.torch(), tv)
            assert_same(ci.torch(), ti)


def test_linalg_and_index_out():
    a, b = torch.randn(3, 4), torch.randn(4, 5)
    v = torch.randn(4)
    idx = torch.tensor([[0, 2], [1, 1], [3, 0]])
    mask = a > 0
    cases = [
        ("mm", "st(T,T,T)", (a, b), lambda o: torch.mm(a, b, out=o)),
        ("mv", "st(T,T,T)", (a, v), lambda o: torch.mv(a, v, out=o)),
        ("dot", "st(T,T,T)", (v, v), lambda o: torch.dot(v, v, out=o)),
        ("outer", "st(T,T,T)", (v, v), lambda o: torch.outer(v, v, out=o)),
        ("bmm", "st(T,T,T)", (a[None], b[None]), lambda o: torch.bmm(a[None], b[None], out=o)),
        ("gather", "st(T,T,i,T)", (a, 1, idx), lambda o: torch.gather(a, 1, idx, out=o)),
        ("index_select", "st(T,T,i,T)", (a, 1, idx[0]), lambda o: torch.index_select(a, 1, idx[0], out=o)),
        ("masked_select", "st(T,T,T)", (a, mask), lambda o: torch.masked_select(a, mask, out=o)),
        ("take", "st(T,T,T)", (a, idx), lambda o: torch.take(a, idx, out=o)),
    ]
    for name, sig, args, tfn in cases:
        f = L.declare(f"ct_{name}_out", sig)
        with case(name):
            want = torch.empty(0)
            tfn(want)
            got = ctorch.from_torch(torch.empty(0))
            f(got, *[ctorch.from_torch(t) if isinstance(t, torch.Tensor) else t for t in args])
            assert_same(got.torch(), want)
    with case("addmm"):
        f = L.declare("ct_addmm_out", "st(T,T,T,T,d,d)")
        c = torch.randn(3, 5)
        want = torch.empty(3, 5)
        torch.addmm(c, a, b, beta=0.5, alpha=2.0, out=want)
        got = ctorch.from_torch(torch.empty(3, 5))
        f(got, c, a, b, 0.5, 2.0)
        assert_same(got.torch(), want)
    with case("nonzero"):
        f = L.declare("ct_nonzero_out", "st(T,T)")
        want = torch.empty(0, dtype=torch.int64)
        torch.nonzero(mask, out=want)
        got = ctorch.from_torch(torch.empty(0, dtype=torch.int64))
        f(got, mask)
        assert_same(got.torch(), want)
    for name in ("cat", "stack"):
        f = L.declare(f"ct_{name}_out", "st(T,Tn,i)")
        with case(name):
            want = torch.empty(0)
            getattr(torch, name)([a, a], 0, out=want)
            got = ctorch.from_torch(torch.empty(0))
            f(got, [a, a], 0)
            assert_same(got.torch(), want)


def test_out_errors():
    f = L.declare("ct_sum_dim_out", "st(T,T,shape,b,dt)")
    x = torch.randn(3, 4)
    with case("sum"):  # without a dtype, sum computes in out's dtype (as torch)
        want = torch.empty(0, dtype=torch.int64)
        torch.sum(x, (1,), False, out=want)
        got = ctorch.from_torch(torch.empty(0, dtype=torch.int64))
        f(got, x, (1,), False, None)
        assert_same(got.torch(), want)
    strict_cases = [
        ("amax", "st(T,T,shape,b)", lambda o: torch.amax(x, (1,), False, out=o), lambda c, o: c(o, x, (1,), False)),
        ("mm", "st(T,T,T)", lambda o: torch.mm(x, x.t(), out=o), lambda c, o: c(o, x, x.t().contiguous())),
        ("gather", "st(T,T,i,T)", lambda o: torch.gather(x, 1, torch.zeros(3, 1, dtype=torch.long), out=o),
         lambda c, o: c(o, x, 1, torch.zeros(3, 1, dtype=torch.long))),
        ("logsumexp", "st(T,T,shape,b)", lambda o: torch.logsumexp(x, (1,), False, out=o), lambda c, o: c(o, x, (1,), False)),
        ("cat", "st(T,Tn,i)", lambda o: torch.cat([x, x], 0, out=o), lambda c, o: c(o, [x, x], 0)),
    ]
    for name, sig, tfn, cfn in strict_cases:
        c = L.declare(("ct_%s_out" % name), sig)
        for dt in (torch.int64, torch.float64):
            with case(name):
                try:
                    tfn(torch.empty(0, dtype=dt))
                    torch_ok = True
                except (RuntimeError, TypeError):  # torch.cat's dtype error is a TypeError
                    torch_ok = False
                try:
                    cfn(c, ctorch.from_torch(torch.empty(0, dtype=dt)))
                    ct_ok = True
                except ctorch.CtorchError:
                    ct_ok = False
                assert ct_ok == torch_ok, f"{name} out={dt}: torch {'accepts' if torch_ok else 'raises'}, ctorch differs"
    with case("sum"):  # out= is not differentiable
        xr = x.clone().requires_grad_(True)
        with pytest.raises(RuntimeError):
            torch.sum(xr, (1,), False, out=torch.empty(3))
        with pytest.raises(ctorch.CtorchError, match="out="):
            f(ctorch.from_torch(torch.empty(3)), ctorch.from_torch(x).requires_grad_(), (1,), False, None)
    with case("max"):
        g = L.declare("ct_max_dim_out", "st(T,T,T,i,b)")
        with pytest.raises(RuntimeError):
            torch.max(x, 1, False, out=(torch.empty(0), torch.empty(0)))
        with pytest.raises(ctorch.CtorchError):
            g(ctorch.from_torch(torch.empty(0)), ctorch.from_torch(torch.empty(0)), x, 1, False)


def _agree(name, tfn, cfn, dtypes):
    """For each out dtype: torch and ctorch both accept (same values) or both refuse."""
    for dt in dtypes:
        with case(name):
            want = torch.empty(0, dtype=dt)
            try:
                tfn(want)
                torch_ok = True
            except (RuntimeError, TypeError):
                torch_ok = False
            got = ctorch.from_torch(torch.empty(0, dtype=dt))
            try:
                cfn(got)
                ct_ok = True
            except ctorch.CtorchError:
                ct_ok = False
            assert ct_ok == torch_ok, f"{name} out={dt}: torch {'accepts' if torch_ok else 'raises'}, ctorch differs"
            if ct_ok:
                assert_same(got.torch(), want)


def test_more_single_out():
    x = torch.randn(3, 4)
    m, v, b1, b2 = torch.randn(3, 4), torch.randn(4), torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    seq = torch.arange(5.0)
    dts = (torch.int64, torch.int32, torch.float64, torch.float32)
    var_o = L.declare("ct_var_out", "st(T,T,shape,d,b)")
    std_o = L.declare("ct_std_out", "st(T,T,shape,d,b)")
    tril_o = L.declare("ct_tril_out", "st(T,T,i64)")
    triu_o = L.declare("ct_triu_out", "st(T,T,i64)")
    addmv_o = L.declare("ct_addmv_out", "st(T,T,T,T,d,d)")
    baddbmm_o = L.declare("ct_baddbmm_out", "st(T,T,T,T,d,d)")
    ss_o = L.declare("ct_searchsorted_out", "st(T,T,T,b,b)")
    bk_o = L.declare("ct_bucketize_out", "st(T,T,T,b,b)")
    inp3, inp23 = torch.randn(3), torch.randn(2, 3, 5)
    _agree("var", lambda o: torch.var(x, (1,), correction=1, keepdim=False, out=o), lambda o: var_o(o, x, (1,), 1.0, False), dts)
    _agree("std", lambda o: torch.std(x, (0,), correction=0, keepdim=True, out=o), lambda o: std_o(o, x, (0,), 0.0, True), dts)
    _agree("tril", lambda o: torch.tril(x, 1, out=o), lambda o: tril_o(o, x, 1), dts)
    _agree("triu", lambda o: torch.triu(x, -1, out=o), lambda o: triu_o(o, x, -1), dts)
    _agree("addmv", lambda o: torch.addmv(inp3, m, v, beta=0.5, alpha=2.0, out=o), lambda o: addmv_o(o, inp3, m, v, 0.5, 2.0), dts)
    _agree("baddbmm", lambda o: torch.baddbmm(inp23, b1, b2, beta=0.5, alpha=2.0, out=o),
           lambda o: baddbmm_o(o, inp23, b1, b2, 0.5, 2.0), dts)
    for i32 in (False, True):
        _agree("searchsorted", lambda o: torch.searchsorted(seq, x, out_int32=i32, right=True, out=o),
               lambda o: ss_o(o, seq, x, i32, True), dts)
        _agree("bucketize", lambda o: torch.bucketize(x, seq, out_int32=i32, out=o), lambda o: bk_o(o, x, seq, i32, False), dts)


def test_more_pair_out():
    x = torch.tensor([[3.0, 1.0, 2.0, 1.0], [0.5, 0.5, -1.0, 4.0], [2.0, 2.0, 2.0, 9.0]])
    xd = torch.randperm(12).reshape(3, 4).float()
    cases = [
        # median/kthvalue on distinct values: among equal ones torch's index is unspecified
        ("median", L.declare("ct_median_dim_out", "st(T,T,T,i,b)"), (0, False), lambda o: torch.median(xd, 0, False, out=o)),
        ("mode", L.declare("ct_mode_out", "st(T,T,T,i,b)"), (1, True), lambda o: torch.mode(x, 1, True, out=o)),
        ("cummax", L.declare("ct_cummax_out", "st(T,T,T,i)"), (1,), lambda o: torch.cummax(x, 1, out=o)),
        ("cummin", L.declare("ct_cummin_out", "st(T,T,T,i)"), (0,), lambda o: torch.cummin(x, 0, out=o)),
        ("kthvalue", L.declare("ct_kthvalue_out", "st(T,T,T,i64,i,b)"), (2, 1, False), lambda o: torch.kthvalue(xd, 2, 1, False, out=o)),
    ]
    for name, cf, args, tf in cases:
        with case(name):
            tv, ti = torch.empty(0), torch.empty(0, dtype=torch.int64)
            tf((tv, ti))
            cv, ci = ctorch.from_torch(torch.empty(0)), ctorch.from_torch(torch.empty(0, dtype=torch.int64))
            cf(cv, ci, xd if name in ("median", "kthvalue") else x, *args)
            assert_same(cv.torch(), tv)
            assert_same(ci.torch(), ti)


def _out_cases():
    x = torch.randn(3, 4, dtype=torch.float32)
    xn = x.clone()
    xn[0, 1] = float("nan")
    i = torch.tensor([[0, 1, 2, 0]])
    i0 = torch.tensor([0, 2])
    src2 = torch.randn(2, 4)
    return [
        ("nansum", "st(T,T,shape,b)", lambda o: torch.nansum(xn, (1,), out=o), lambda c, o: c(o, xn, (1,), False)),
        ("nansum", "st(T,T,shape,b)", lambda o: torch.nansum(xn.long(), (0,), True, out=o),
         lambda c, o: c(o, xn.long(), (0,), True)),
        ("nanmean", "st(T,T,shape,b)", lambda o: torch.nanmean(xn, (0,), out=o), lambda c, o: c(o, xn, (0,), False)),
        ("argmax", "st(T,T,i,b)", lambda o: torch.argmax(x, 1, out=o), lambda c, o: c(o, x, 1, False)),
        ("argmin", "st(T,T,i,b)", lambda o: torch.argmin(x, 0, True, out=o), lambda c, o: c(o, x, 0, True)),
        ("all", "st(T,T,shape,b)", lambda o: torch.all(x > -1, 1, out=o), lambda c, o: c(o, x > -1, (1,), False)),
        ("any", "st(T,T,shape,b)", lambda o: torch.any(x > 1, 0, True, out=o), lambda c, o: c(o, x > 1, (0,), True)),
        ("scatter", "st(T,T,i,T,T)", lambda o: torch.scatter(x, 0, i, x, out=o), lambda c, o: c(o, x, 0, i, x)),
        ("scatter_value", "st(T,T,i,T,d)", lambda o: torch.scatter(x, 0, i, 2.5, out=o), lambda c, o: c(o, x, 0, i, 2.5)),
        ("scatter_add", "st(T,T,i,T,T)", lambda o: torch.scatter_add(x, 0, i, x, out=o), lambda c, o: c(o, x, 0, i, x)),
        ("scatter_reduce", "st(T,T,i,T,T,s,b)", lambda o: torch.scatter_reduce(x, 0, i, x, "amax", include_self=False, out=o),
         lambda c, o: c(o, x, 0, i, x, "amax", False)),
        ("index_add", "st(T,T,i,T,T,d)", lambda o: torch.index_add(x, 0, i0, src2, alpha=2.0, out=o),
         lambda c, o: c(o, x, 0, i0, src2, 2.0)),
        ("index_copy", "st(T,T,i,T,T)", lambda o: torch.index_copy(x, 0, i0, src2, out=o), lambda c, o: c(o, x, 0, i0, src2)),
        ("diag", "st(T,T,i64)", lambda o: torch.diag(x, 1, out=o), lambda c, o: c(o, x, 1)),
        ("take_along_dim", "st(T,T,T,i)", lambda o: torch.take_along_dim(x, i, 0, out=o), lambda c, o: c(o, x, i, 0)),
    ]


@pytest.mark.parametrize("k", range(15))
def test_more_out_forms_values_and_dtype_rules(k):
    name, sig, tfn, cfn = _out_cases()[k]
    f = L.declare(f"ct_{name}_out", sig)
    for dt in (torch.float32, torch.float64, torch.int64, torch.bool, torch.uint8):
        for shape in ((0,), (2, 2)):
            with case(name.replace("_value", "")):
                want = torch.empty(shape, dtype=dt)
                try:
                    tfn(want)
                    torch_ok = True
                except RuntimeError:
                    torch_ok = False
                got = ctorch.from_torch(torch.empty(shape, dtype=dt))
                try:
                    cfn(f, got)
                    ct_ok = True
                except ctorch.CtorchError:
                    ct_ok = False
                assert ct_ok == torch_ok, f"{name} out={dt}: torch {'accepts' if torch_ok else 'raises'}"
                if torch_ok:
                    assert_same(got.torch(), want)
