"""Attention and Transformers against torch: F.scaled_dot_product_attention (values,
gradients of q, k, v, masks, causal, GQA, scale, errors, gradcheck/gradgradcheck),
nn.MultiheadAttention, TransformerEncoderLayer / DecoderLayer, TransformerEncoder /
Decoder and Transformer: same seed -> same parameters, same repr, and with torch's
state dict loaded the same outputs and the same gradients for the inputs and every
parameter."""
import ctypes
import math

import pytest
import torch
import torch.nn.functional as F

import ctorch
from ctorch import Module, module
from harness import (assert_same, case, check, check_error, count, gradcheck, gradgradcheck,
                     second_order_against_torch)

nn = torch.nn
P = ctypes.c_void_p
seed = ctorch.lib.declare("ct_manual_seed", "v(i64)")

sdpa_c = ctorch.lib.declare("ct_nn_scaled_dot_product_attention", "T(T,T,T,T,d,b,d,b)")
square_mask = ctorch.lib.declare("ct_nn_generate_square_subsequent_mask", "T(i64,dt)")


class MhaOpts(ctypes.Structure):
    _fields_ = [("dropout", ctypes.c_double), ("bias", ctypes.c_bool), ("add_bias_kv", ctypes.c_bool),
                ("add_zero_attn", ctypes.c_bool), ("kdim", ctypes.c_int64), ("vdim", ctypes.c_int64),
                ("batch_first", ctypes.c_bool), ("need_weights", ctypes.c_bool),
                ("average_attn_weights", ctypes.c_bool), ("is_causal", ctypes.c_bool)]


class TrOpts(ctypes.Structure):
    _fields_ = [("dim_feedforward", ctypes.c_int64), ("dropout", ctypes.c_double), ("activation", ctypes.c_char_p),
                ("layer_norm_eps", ctypes.c_double), ("batch_first", ctypes.c_bool), ("norm_first", ctypes.c_bool),
                ("bias", ctypes.c_bool), ("num_encoder_layers", ctypes.c_int64), ("num_decoder_layers", ctypes.c_int64)]


ctorch._raw("ct_mha_default_opts", MhaOpts)
ctorch._raw("ct_transformer_default_opts", TrOpts)
mha_fwd_w = ctorch.lib.declare("ct_nn_multihead_attention_forward", "T(p,T,T,T,T,T,b,b,T*)")
mha_fwd_nw = ctorch.lib.declare("ct_nn_multihead_attention_forward", "T(p,T,T,T,T,T,b,b,p)")
enc_layer_fwd = ctorch.lib.declare("ct_nn_transformer_encoder_layer_forward", "T(p,T,T,T,b)")
dec_layer_fwd = ctorch.lib.declare("ct_nn_transformer_decoder_layer_forward", "T(p,T,T,T,T,T,T,b,b)")
enc_fwd = ctorch.lib.declare("ct_nn_transformer_encoder_forward", "T(p,T,T,T,i)")
dec_fwd = ctorch.lib.declare("ct_nn_transformer_decoder_forward", "T(p,T,T,T,T,T,T,i,b)")
tr_fwd = ctorch.lib.declare("ct_nn_transformer_forward", "T(p,T,T,T,T,T,T,T,T,i,i,b)")
forward_n = ctorch._raw("ct_module_forward_n", ctypes.c_int, P, ctypes.c_int, ctypes.POINTER(P), ctypes.c_int,
                        ctypes.POINTER(P))


def mha_opts(**kw):
    o = ctorch._raw("ct_mha_default_opts", MhaOpts)()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def tr_opts(**kw):
    o = ctorch._raw("ct_transformer_default_opts", TrOpts)()
    for k, v in kw.items():
        setattr(o, k, v.encode() if isinstance(v, str) else v)
    return o


def new_mha(E, H, **kw):
    return module("ct_nn_multihead_attention_new", E, H, ctypes.pointer(mha_opts(**kw)))


def new_layer(kind, d, h, **kw):
    return module(f"ct_nn_transformer_{kind}_layer_new", d, h, ctypes.pointer(tr_opts(**kw)))


def sdpa(q, k, v, mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    return sdpa_c(q, k, v, mask, dropout_p, is_causal, 0.0 if scale is None else scale, enable_gqa)


def tsdpa(q, k, v, mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal,
                                          scale=scale, enable_gqa=enable_gqa)


def rn(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


# ---- scaled_dot_product_attention ----
def _sdpa_cases():
    g = torch.Generator().manual_seed(0)

    def r(*s, dt=torch.float32):
        return torch.randn(*s, generator=g, dtype=dt)

    def bm(*s):
        m = torch.rand(*s, generator=g) > 0.3
        m[..., 0] = True  # every row attends somewhere
        return m

    C = []
    for dt in (torch.float32, torch.float64):
        C += [
            ("L==S", (r(2, 3, 5, 8, dt=dt), r(2, 3, 5, 8, dt=dt), r(2, 3, 5, 8, dt=dt)), {}),
            ("L!=S Ev", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 5, dt=dt)), {}),
            ("3d", (r(4, 7, 16, dt=dt), r(4, 3, 16, dt=dt), r(4, 3, 16, dt=dt)), {}),
            ("2d", (r(7, 4, dt=dt), r(9, 4, dt=dt), r(9, 3, dt=dt)), {}),
            ("bool mask LS", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), bm(4, 6)), {}),
            ("bool mask full", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), bm(2, 3, 4, 6)), {}),
            ("bool mask N1LS", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), bm(2, 1, 4, 6)), {}),
            ("bool mask 1S", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), bm(1, 6)), {}),
            ("float mask", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(4, 6, dt=dt)), {}),
            ("float mask full", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 4, 6, dt=dt)), {}),
            ("causal L==S", (r(2, 2, 6, 8, dt=dt), r(2, 2, 6, 8, dt=dt), r(2, 2, 6, 8, dt=dt)), {"is_causal": True}),
            ("causal L<S", (r(2, 2, 3, 8, dt=dt), r(2, 2, 6, 8, dt=dt), r(2, 2, 6, 8, dt=dt)), {"is_causal": True}),
            ("causal L>S", (r(2, 2, 6, 8, dt=dt), r(2, 2, 3, 8, dt=dt), r(2, 2, 3, 8, dt=dt)), {"is_causal": True}),
            # long causal attention: the fused kernel from 128 x 128 query-key pairs on (the
            # next four), blocks of query rows (>= 256 rows) below that (the first), with
            # dropout and in half types
            ("causal blocks few keys", (r(1, 2, 300, 8, dt=dt), r(1, 2, 40, 8, dt=dt), r(1, 2, 40, 6, dt=dt)),
             {"is_causal": True}),
            ("causal blocks L==S", (r(1, 2, 300, 16, dt=dt), r(1, 2, 300, 16, dt=dt), r(1, 2, 300, 8, dt=dt)),
             {"is_causal": True}),
            ("causal blocks L>S", (r(2, 1, 390, 16, dt=dt), r(2, 1, 200, 16, dt=dt), r(2, 1, 200, 16, dt=dt)),
             {"is_causal": True}),
            ("causal blocks L<S", (r(1, 2, 260, 8, dt=dt), r(1, 2, 400, 8, dt=dt), r(1, 2, 400, 8, dt=dt)),
             {"is_causal": True, "scale": 0.2}),
            ("causal blocks gqa", (r(1, 4, 256, 8, dt=dt), r(1, 2, 256, 8, dt=dt), r(1, 2, 256, 8, dt=dt)),
             {"is_causal": True, "enable_gqa": True}),
            ("scale", (r(2, 3, 4, 8, dt=dt), r(2, 3, 6, 8, dt=dt), r(2, 3, 6, 8, dt=dt)), {"scale": 0.3}),
            ("gqa", (r(2, 6, 4, 8, dt=dt), r(2, 2, 5, 8, dt=dt), r(2, 2, 5, 8, dt=dt)), {"enable_gqa": True}),
            ("gqa causal", (r(2, 4, 5, 8, dt=dt), r(2, 1, 5, 8, dt=dt), r(2, 1, 5, 8, dt=dt)),
             {"enable_gqa": True, "is_causal": True}),
            ("broadcast batch", (r(2, 3, 4, 8, dt=dt), r(1, 3, 5, 8, dt=dt), r(1, 3, 5, 8, dt=dt)), {}),
            ("broadcast heads", (r(2, 3, 4, 8, dt=dt), r(2, 1, 5, 8, dt=dt), r(2, 1, 5, 8, dt=dt)), {}),
        ]
        # causal attention from 128 x 128 query-key pairs on, other attention from 1024 x
        # 1024 (no mask or dropout, float32/float64), runs one fused kernel: query blocks
        # of 64 rows, key blocks of 256, an online softmax; these shapes end mid-block
        C += [
            ("fused no mask", (r(1, 1, 1030, 4, dt=dt), r(1, 1, 1100, 4, dt=dt), r(1, 1, 1100, 3, dt=dt)), {}),
            ("fused L==S", (r(2, 2, 128, 16, dt=dt), r(2, 2, 128, 16, dt=dt), r(2, 2, 128, 16, dt=dt)),
             {"is_causal": True}),
            ("fused L!=S Ev", (r(2, 2, 150, 8, dt=dt), r(2, 2, 140, 8, dt=dt), r(2, 2, 140, 5, dt=dt)),
             {"is_causal": True}),
            ("fused blocks", (r(3, 1, 257, 8, dt=dt), r(3, 1, 513, 8, dt=dt), r(3, 1, 513, 12, dt=dt)),
             {"is_causal": True, "scale": 0.3}),
            ("fused L>S", (r(1, 1, 600, 4, dt=dt), r(1, 1, 70, 4, dt=dt), r(1, 1, 70, 4, dt=dt)), {"is_causal": True}),
            ("fused 2d", (r(130, 4, dt=dt), r(300, 4, dt=dt), r(300, 3, dt=dt)), {"is_causal": True}),
            ("fused gqa", (r(1, 4, 130, 8, dt=dt), r(1, 2, 130, 8, dt=dt), r(1, 2, 130, 8, dt=dt)),
             {"is_causal": True, "enable_gqa": True}),
        ]
    # a row with every key masked gives zeros (values and gradients)
    m = bm(4, 6)
    m[1] = False
    C.append(("masked row bool", (r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 8), m), {}))
    fm = r(4, 6)
    fm[2] = -math.inf
    C.append(("masked row float", (r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 8), fm), {}))
    C.append(("empty batch", (r(0, 3, 4, 8), r(0, 3, 6, 8), r(0, 3, 6, 8)), {}))
    return C


SDPA_CASES = _sdpa_cases()


@pytest.mark.parametrize("i", range(len(SDPA_CASES)), ids=[c[0] for c in SDPA_CASES])
def test_sdpa_values_and_grads(i):
    _, inputs, kw = SDPA_CASES[i]
    # float32: torch's CPU kernel (flash attention, blocked online softmax) sums in another
    # order than our GEMM + softmax; differences reach a few 1e-6 relative, so atol 1e-5
    # and rtol 1e-5 instead of float32's 1.3e-6 (float64 cases keep the defaults).
    tol = {} if inputs[0].dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    check("scaled_dot_product_attention", lambda *a: sdpa(*a, **kw), lambda *a: tsdpa(*a, **kw), list(inputs), **tol)


def test_sdpa_errors():
    q, k, v = rn(2, 3, 4, 8), rn(2, 3, 6, 8), rn(2, 3, 6, 8)
    m = torch.ones(4, 6, dtype=torch.bool)
    op = "scaled_dot_product_attention"
    check_error(op, lambda *a: sdpa(*a, is_causal=True), lambda *a: tsdpa(*a, is_causal=True), [q, k, v, m],
                match="is_causal")
    check_error(op, sdpa, tsdpa, [q[0, 0, 0], k, v], match="at least 2 dimensional")
    check_error(op, sdpa, tsdpa, [q, k.double(), v], match="same dtype")
    check_error(op, sdpa, tsdpa, [q, k, v, torch.ones(4, 6, dtype=torch.int64)], match="attn_mask dtype")
    check_error(op, sdpa, tsdpa, [q, k, v, torch.ones(4, 6, dtype=torch.float64)], match="attn_mask dtype")
    check_error(op, sdpa, tsdpa, [q, k, v, torch.ones(4, 6, dtype=torch.float16)], match="attn_mask dtype")
    # a float32 mask with float64 inputs is allowed (torch's "bool or float")
    check(op, sdpa, tsdpa, [q.double(), k.double(), v.double(), torch.randn(4, 6)])
    check_error(op, lambda *a: sdpa(*a, enable_gqa=True), lambda *a: tsdpa(*a, enable_gqa=True),
                [q, k[:, :2], v[:, :2]], match="must divide")
    check_error(op, sdpa, tsdpa, [q, k[..., :7], v], names=[op, "batch2"])
    # key and value lengths differ: torch's CPU flash kernel does not check this (it reads
    # only S rows of value); its math kernel raises, and so do we
    with pytest.raises(ctorch.CtorchError, match="batch2"):
        sdpa(*[ctorch.from_torch(t) for t in (q, k, v[..., :3, :].contiguous())])
    check_error(op, sdpa, tsdpa, [q, k, v, torch.ones(3, 6)], names=[op, "broadcast", "size"])
    check_error(op, sdpa, tsdpa, [q, k[:, :2], v[:, :2]], names=[op, "size", "broadcast", "batch"])


def test_sdpa_dropout():
    """dropout_p: about p of the weights dropped, the rest scaled by 1/(1-p); p=1 gives zeros."""
    with case("scaled_dot_product_attention"):
        q = rn(1, 1, 64, 8)
        ones = torch.ones(1, 1, 64, 64)
        v = torch.eye(64).reshape(1, 1, 64, 64)
        # q = 0: uniform weights 1/64; with v = identity the output IS the weight matrix
        out = sdpa(torch.zeros(1, 1, 64, 8), rn(1, 1, 64, 8), v, None, 0.25).torch()
        kept = (out != 0).float().mean().item()
        assert 0.65 < kept < 0.85, kept
        torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 1 / 64 / 0.75))
        assert not sdpa(q, q, v[..., :8], None, 1.0).torch().any()
        del ones


def test_sdpa_gradcheck():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 3, 4, dtype=torch.float64, generator=g) for _ in range(3))
    k5, v5 = torch.randn(1, 2, 5, 4, dtype=torch.float64, generator=g), torch.randn(1, 2, 5, 3, dtype=torch.float64, generator=g)
    fm = torch.randn(3, 5, dtype=torch.float64, generator=g)
    bm = ctorch.from_torch(torch.tensor([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool))
    op = "scaled_dot_product_attention"
    for fn, ins in [(lambda a, b, c: sdpa(a, b, c), [q, k, v]),
                    (lambda a, b, c: sdpa(a, b, c, is_causal=True), [q, k, v]),
                    (lambda a, b, c, m: sdpa(a, b, c, m), [q, k5, v5, fm]),
                    (lambda a, b, c: sdpa(a, b, c, bm, scale=0.7), [q, k5, v5]),
                    (lambda a, b, c: sdpa(a, b, c, enable_gqa=True), [q, k[:, :1], v[:, :1]])]:
        gradcheck(op, fn, ins)
        gradgradcheck(op, fn, ins)


def test_sdpa_fused_gradcheck():
    """The fused kernel's first derivatives (its own backward kernel) and second ones
    (the same formulas in differentiable ops, lse an output of the node) in float64."""
    g = torch.Generator().manual_seed(2)
    q, k = (torch.randn(1, 128, 1, dtype=torch.float64, generator=g) for _ in range(2))
    v = torch.randn(1, 128, 2, dtype=torch.float64, generator=g)
    fn = lambda a, b, c: sdpa(a, b, c, is_causal=True)
    gradcheck("scaled_dot_product_attention", fn, [q, k, v])
    gradgradcheck("scaled_dot_product_attention", fn, [q, k, v])


@pytest.mark.parametrize("causal,L,E", [(True, 130, 4), (False, 1024, 2)])
def test_sdpa_fused_double_backward_against_torch(causal, L, E):
    """create_graph gradients of the fused path against torch's, then the gradient of the
    sum of their squares: gradgradcheck alone would pass consistently wrong ones."""
    g = torch.Generator().manual_seed(3)
    ins = [torch.randn(2, L, E, dtype=torch.float64, generator=g).requires_grad_() for _ in range(3)]
    gy = torch.randn(2, L, E, dtype=torch.float64, generator=g)
    with case("scaled_dot_product_attention"):
        # torch's CPU flash kernel has no double backward: its math formulation instead
        q, k, v = ins
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if causal:
            s = s.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), -math.inf)
        second_order_against_torch("sdpa", lambda *c: sdpa(*c, is_causal=causal), torch.softmax(s, -1) @ v, ins, gy)


def test_square_subsequent_mask():
    with case("generate_square_subsequent_mask"):
        for n in (0, 1, 5):
            assert_same(square_mask(n, torch.float32), nn.Transformer.generate_square_subsequent_mask(n))
        assert_same(square_mask(4, torch.float64), nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64))
        with pytest.raises(ctorch.CtorchError):
            square_mask(3, torch.int64)


# ---- modules: helpers ----
def ct_params(m):
    return dict(m.named_parameters().items())


def same_init(cm, tm, what):
    sd_c, sd_t = cm.state_dict(), tm.state_dict()
    assert sd_c.keys() == list(sd_t.keys()), f"{what}: state_dict keys {sd_c.keys()} != {list(sd_t.keys())}"
    for k, v in sd_t.items():
        assert_same(sd_c[k], v, atol=0, rtol=0, what=f"{what} {k}")


def load(cm, tm):
    cm.load_state_dict(tm.state_dict())


def compare_grads(cm, tm, c_inputs, t_inputs, what, atol=None, rtol=None):
    cp = ct_params(cm)
    tp = dict(tm.named_parameters())
    assert list(cp.keys()) == list(tp.keys()), f"{what}: parameter names {list(cp.keys())} != {list(tp.keys())}"
    for k, t in tp.items():
        assert t.grad is not None, k
        assert cp[k].grad is not None, f"{what}: {k} got no gradient"
        assert_same(cp[k].grad, t.grad, atol=atol, rtol=rtol, what=f"{what} grad of {k}")
    for n, (c, t) in enumerate(zip(c_inputs, t_inputs)):
        if t is not None and t.requires_grad:
            assert_same(c.grad, t.grad, atol=atol, rtol=rtol, what=f"{what} grad of input {n}")


def leaf(t):
    return t.detach().clone().requires_grad_()


def cts(*ts):
    return [None if t is None else ctorch.from_torch(t.detach(), requires_grad=t.requires_grad) for t in ts]


# float32 through several GEMMs, softmax and layer norms: errors of a few float32 ulps
# of the largest intermediate add up; 1e-5 absolute/relative (torch's own float32 CPU
# fast paths differ from its slow path by as much).
TOL = {"atol": 2e-5, "rtol": 1e-5}


# ---- MultiheadAttention ----
MHA_CONFIGS = [
    dict(),
    dict(bias=False),
    dict(add_bias_kv=True),
    dict(add_zero_attn=True),
    dict(kdim=5, vdim=3),
    dict(batch_first=True),
    dict(add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=7, batch_first=True),
]


def torch_mha(E, H, **kw):
    return nn.MultiheadAttention(E, H, **kw)


@pytest.mark.parametrize("cfg", MHA_CONFIGS, ids=str)
def test_mha_init_and_repr(cfg):
    with case("MultiheadAttention"):
        seed(7)
        cm = new_mha(8, 2, **cfg)
        torch.manual_seed(7)
        tm = torch_mha(8, 2, **cfg)
        same_init(cm, tm, "MultiheadAttention init")
        assert repr(cm) == repr(tm)
        # the generator advanced by the same amount
        assert_same(ctorch.lib.declare("ct_rand", "T(shape,dt,p)")((3,), torch.float32, None), torch.rand(3))


def _mha_inputs(cfg, self_attn, masks, batched=True):
    E, H, N, L, S = 8, 2, 3, 4, 5
    kd, vd = cfg.get("kdim", E), cfg.get("vdim", E)
    bf = cfg.get("batch_first", False)

    def seqt(n, d):
        if not batched:
            return rn(n, d)
        return rn(N, n, d) if bf else rn(n, N, d)

    q = leaf(seqt(L, E))
    if self_attn:
        k = v = q
        S = L
    else:
        k, v = leaf(seqt(S, kd)), leaf(seqt(S, vd))
    kpm = am = None
    if masks == "bool":
        kpm = torch.rand(N, S) > 0.7 if batched else torch.rand(S) > 0.7
        kpm[..., 0] = False
        am = torch.rand(L, S) > 0.7
        am[:, 0] = False
    elif masks == "float":
        kpm = rn(N, S) if batched else rn(S)
        am = rn(N * H, L, S) if batched else rn(H, L, S)
    elif masks == "causal":
        am = nn.Transformer.generate_square_subsequent_mask(L)[:, :S] if self_attn else None
    return q, k, v, kpm, am


MHA_RUNS = []
for cfg in MHA_CONFIGS:
    for self_attn in (True, False):
        if self_attn and ("kdim" in cfg):
            continue
        for masks in (None, "bool", "float"):
            for need in (True, False):
                MHA_RUNS.append((cfg, self_attn, masks, need, True))
MHA_RUNS += [(dict(), True, "causal", False, False), (dict(batch_first=True), True, "causal", True, False),
             (dict(), True, None, True, "unbatched"), (dict(), False, "float", False, "unbatched"),
             (dict(), False, "bool", True, "per_head")]


@pytest.mark.parametrize("run", MHA_RUNS, ids=str)
def test_mha_forward_backward(run):
    cfg, self_attn, masks, need, extra = run
    with case("MultiheadAttention"):
        torch.manual_seed(3)
        tm = torch_mha(8, 2, **cfg)
        cm = new_mha(8, 2, **cfg)
        load(cm, tm)
        tm.eval(), cm.eval()
        q, k, v, kpm, am = _mha_inputs(cfg, self_attn, masks, batched=extra != "unbatched")
        is_causal = masks == "causal"
        avg = extra != "per_head"
        t_out, t_w = tm(q, k, v, key_padding_mask=kpm, need_weights=need, attn_mask=am,
                        average_attn_weights=avg, is_causal=is_causal)
        cq = ctorch.from_torch(q.detach(), requires_grad=True)
        ck = cq if k is q else ctorch.from_torch(k.detach(), requires_grad=True)
        cv = ck if v is k else ctorch.from_torch(v.detach(), requires_grad=True)
        ckpm, cam = cts(kpm, am)
        if need:
            c_out, c_w = mha_fwd_w(cm, cq, ck, cv, ckpm, cam, avg, is_causal)
            assert_same(c_w, t_w, **TOL, what="attn_weights")
        else:
            c_out = mha_fwd_nw(cm, cq, ck, cv, ckpm, cam, avg, is_causal, None)
            assert t_w is None
        assert_same(c_out, t_out, **TOL)
        go = torch.randn_like(t_out)
        loss_t = (t_out * go).sum() + ((t_w * torch.randn_like(t_w)).sum() if need and False else 0)
        loss_t.backward()
        c_out.backward(ctorch.from_torch(go))
        tin = [q] if self_attn else [q, k, v]
        cin = [cq] if self_attn else [cq, ck, cv]
        compare_grads(cm, tm, cin, tin, "MultiheadAttention", **TOL)


def test_mha_forward_n_and_train_dropout0():
    """forward_n with the module's options; train mode with dropout=0 equals eval."""
    with case("MultiheadAttention"):
        torch.manual_seed(4)
        tm = torch_mha(8, 4, batch_first=True)
        cm = new_mha(8, 4, batch_first=True)
        load(cm, tm)
        x = rn(2, 5, 8)
        want, want_w = tm(x, x, x)
        cx = ctorch.from_torch(x)
        ins = (P * 5)(cx.ptr, cx.ptr, cx.ptr, None, None)
        outs = (P * 2)()
        assert forward_n(cm._p, 5, ins, 2, outs) == 2
        out, w = ctorch.Tensor(outs[0]), ctorch.Tensor(outs[1])
        assert_same(out, want, **TOL)
        assert_same(w, want_w, **TOL)
        # fewer inputs: key and value default to query
        ins1 = (P * 1)(cx.ptr)
        outs1 = (P * 2)()
        assert forward_n(cm._p, 1, ins1, 2, outs1) == 2
        assert_same(ctorch.Tensor(outs1[0]), want, **TOL)
        ctorch.Tensor(outs1[1])


def test_mha_errors():
    with case("MultiheadAttention"):
        with pytest.raises(ctorch.CtorchError, match="divisible"):
            new_mha(8, 3)
        with pytest.raises(ctorch.CtorchError, match="greater than 0"):
            new_mha(0, 1)
        cm = new_mha(8, 2)
        q = ctorch.from_torch(rn(4, 3, 8))
        for args, msg in [((q, ctorch.from_torch(rn(4, 8)), q), "3-D"),
                          ((ctorch.from_torch(rn(4, 3, 6)),) * 3, "embedding dimension"),
                          ((q, q, q, ctorch.from_torch(torch.zeros(3, 4, 1, dtype=torch.bool)), None), "key_padding_mask"),
                          ((q, q, q, None, ctorch.from_torch(torch.zeros(4, 5))), "2D attn_mask"),
                          ((q, q, q, None, ctorch.from_torch(torch.zeros(5, 4, 4))), "3D attn_mask"),
                          ((q, q, q, ctorch.from_torch(torch.zeros(2, 4)), None), "key_padded_mask"),
                          ((q, q, q, None, ctorch.from_torch(torch.zeros(4, 4, dtype=torch.int64))), "only bool and floating")]:
            args = list(args) + [None] * (5 - len(args))
            with pytest.raises(ctorch.CtorchError, match=msg):
                mha_fwd_nw(cm, *args, True, False, None)
        with pytest.raises(ctorch.CtorchError, match="Need attn_mask"):
            mha_fwd_nw(cm, q, q, q, None, None, True, True, None)
        count("MultiheadAttention", "error")


# ---- Transformer layers ----
def torch_layer(kind, d, h, **kw):
    cls = nn.TransformerEncoderLayer if kind == "encoder" else nn.TransformerDecoderLayer
    return cls(d, h, **kw)


LAYER_CFGS = [dict(norm_first=nf, activation=act, batch_first=bf)
              for nf in (False, True) for act in ("relu", "gelu") for bf in (False, True)]
LAYER_CFGS += [dict(bias=False), dict(dim_feedforward=7, layer_norm_eps=1e-3)]


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("cfg", LAYER_CFGS[:1] + LAYER_CFGS[-2:], ids=str)
def test_layer_init_and_repr(kind, cfg):
    with case(f"Transformer{kind.title()}Layer"):
        seed(11)
        cm = new_layer(kind, 8, 2, dim_feedforward=cfg.get("dim_feedforward", 16),
                       **{k: v for k, v in cfg.items() if k != "dim_feedforward"})
        torch.manual_seed(11)
        tm = torch_layer(kind, 8, 2, dim_feedforward=cfg.get("dim_feedforward", 16),
                         **{k: v for k, v in cfg.items() if k != "dim_feedforward"})
        same_init(cm, tm, f"{kind} layer init")
        assert repr(cm) == repr(tm)


def _seq(N, L, E, bf):
    return leaf(rn(N, L, E) if bf else rn(L, N, E))


LAYER_RUNS = []
for cfg in LAYER_CFGS:
    for masks in (None, "masks"):
        LAYER_RUNS.append((cfg, masks, "eval"))
LAYER_RUNS += [(dict(), "masks", "train0"), (dict(norm_first=True, batch_first=True), None, "train0"),
               (dict(), "causal", "eval"), (dict(batch_first=True), "boolmasks", "eval")]


def _masks(kind, masks, N, L, S):
    if masks is None:
        return {}
    if masks == "causal":
        return {"mask": nn.Transformer.generate_square_subsequent_mask(L), "causal": True}
    if masks == "boolmasks":
        kpm = torch.rand(N, L) > 0.7
        kpm[:, 0] = False
        return {"mask": torch.rand(L, L) > 0.8, "kpm": kpm}
    kpm = torch.rand(N, L) > 0.7
    kpm[:, 0] = False
    d = {"mask": nn.Transformer.generate_square_subsequent_mask(L), "kpm": kpm}
    if kind == "decoder":
        mk = torch.rand(N, S) > 0.7
        mk[:, 0] = False
        d.update(mem_mask=rn(L, S), mem_kpm=mk)
    return d


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("run", LAYER_RUNS, ids=str)
def test_layer_forward_backward(kind, run):
    cfg, masks, mode = run
    with case(f"Transformer{kind.title()}Layer"):
        torch.manual_seed(5)
        kw = dict(dim_feedforward=cfg.get("dim_feedforward", 16), dropout=0.0 if mode == "train0" else 0.1,
                  **{k: v for k, v in cfg.items() if k != "dim_feedforward"})
        tm = torch_layer(kind, 8, 2, **kw)
        cm = new_layer(kind, 8, 2, **kw)
        load(cm, tm)
        if mode == "eval":
            tm.eval(), cm.eval()
        bf = cfg.get("batch_first", False)
        N, L, S = 3, 5, 4
        x = _seq(N, L, 8, bf)
        mem = _seq(N, S, 8, bf)
        mk = _masks(kind, masks, N, L, S)
        m, kpm, causal = mk.get("mask"), mk.get("kpm"), mk.get("causal", False)
        cx, cmem = cts(x, mem)
        cmask, ckpm, cmm, cmk = cts(m, kpm, mk.get("mem_mask"), mk.get("mem_kpm"))
        if kind == "encoder":
            want = tm(x, src_mask=m, src_key_padding_mask=kpm, is_causal=causal)
            got = enc_layer_fwd(cm, cx, cmask, ckpm, causal)
            tin, cin = [x], [cx]
        else:
            want = tm(x, mem, tgt_mask=m, memory_mask=mk.get("mem_mask"), tgt_key_padding_mask=kpm,
                      memory_key_padding_mask=mk.get("mem_kpm"), tgt_is_causal=causal)
            got = dec_layer_fwd(cm, cx, cmem, cmask, cmm, ckpm, cmk, causal, False)
            tin, cin = [x, mem], [cx, cmem]
        assert_same(got, want, **TOL)
        go = torch.randn_like(want)
        want.backward(go)
        got.backward(ctorch.from_torch(go))
        compare_grads(cm, tm, cin, tin, f"{kind} layer", **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_two_layers(norm_first):
    """A whole 2-layer TransformerEncoder with a final LayerNorm, torch's weights loaded."""
    with case("TransformerEncoder"):
        torch.manual_seed(21)
        tl = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, norm_first=norm_first, batch_first=True)
        tm = nn.TransformerEncoder(tl, 2, norm=nn.LayerNorm(16), enable_nested_tensor=False)
        seed(21)
        cl = new_layer("encoder", 16, 4, dim_feedforward=32, norm_first=norm_first, batch_first=True)
        ln = module("ct_nn_layer_norm_new", (ctypes.c_int, 1), (ctypes.POINTER(ctypes.c_int64), (ctypes.c_int64 * 1)(16)),
                    1e-5, True)
        cm = module("ct_nn_transformer_encoder_new", cl.take(), 2, ln.take())
        same_init(cm, tm, "TransformerEncoder init")  # clones: same values in each layer
        assert repr(cm) == repr(tm)
        # distinct values per layer, then the same forward/backward
        with torch.no_grad():
            for p in tm.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        load(cm, tm)
        for mode in ("eval", "causal"):
            tm.eval(), cm.eval()
            x = leaf(rn(2, 6, 16))
            mask = nn.Transformer.generate_square_subsequent_mask(6) if mode == "causal" else None
            kpm = None
            if mode == "eval":
                kpm = torch.zeros(2, 6, dtype=torch.bool)
                kpm[1, 4:] = True
            want = tm(x, mask=mask, src_key_padding_mask=kpm)
            cx, cmask, ckpm = cts(x, mask, kpm)
            got = enc_fwd(cm, cx, cmask, ckpm, -1)
            assert_same(got, want, **TOL, what=f"TransformerEncoder output ({mode})")
            go = torch.randn_like(want)
            tm.zero_grad()
            cm.zero_grad()
            want.backward(go)
            got.backward(ctorch.from_torch(go))
            compare_grads(cm, tm, [cx], [x], "TransformerEncoder", **TOL)
        # forward_n (src, mask, src_key_padding_mask) and the module in train mode, dropout 0
        tm.train(), cm.train()
        for mod in tm.modules():
            if isinstance(mod, nn.Dropout):
                mod.p = 0.0
            if isinstance(mod, nn.MultiheadAttention):
                mod.dropout = 0.0
        cm2 = module("ct_nn_transformer_encoder_new",
                     new_layer("encoder", 16, 4, dim_feedforward=32, norm_first=norm_first, batch_first=True,
                               dropout=0.0).take(), 2,
                     module("ct_nn_layer_norm_new", (ctypes.c_int, 1),
                            (ctypes.POINTER(ctypes.c_int64), (ctypes.c_int64 * 1)(16)), 1e-5, True).take())
        load(cm2, tm)
        x = rn(2, 6, 16)
        cx = ctorch.from_torch(x)
        ins = (P * 1)(cx.ptr)
        outs = (P * 1)()
        assert forward_n(cm2._p, 1, ins, 1, outs) == 1
        assert_same(ctorch.Tensor(outs[0]), tm(x), **TOL)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layer_train_with_dropout(kind, activation):
    """Train mode with dropout 0.1: the same seed gives torch's draws (attention weights,
    feed-forward, residual branches, in torch's order), so values and every gradient
    match. With relu, the feed-forward's dropout(relu(h)) is one node that saves only its
    output; the gradients must not change."""
    with case(f"Transformer{kind.title()}Layer train"):
        torch.manual_seed(3)
        kw = dict(dim_feedforward=64, dropout=0.1, activation=activation, batch_first=True)
        tm = torch_layer(kind, 16, 4, **kw)
        cm = new_layer(kind, 16, 4, **kw)
        load(cm, tm)
        tm.train(), cm.train()
        x, mem = leaf(rn(3, 7, 16)), leaf(rn(3, 5, 16))
        cx, cmem = cts(x, mem)
        torch.manual_seed(17)
        want = tm(x) if kind == "encoder" else tm(x, mem)
        seed(17)
        got = enc_layer_fwd(cm, cx, None, None, False) if kind == "encoder" else \
            dec_layer_fwd(cm, cx, cmem, None, None, None, None, False, False)
        assert_same(got, want, **TOL)
        go = torch.randn_like(want)
        want.backward(go)
        got.backward(ctorch.from_torch(go))
        compare_grads(cm, tm, [cx] if kind == "encoder" else [cx, cmem], [x] if kind == "encoder" else [x, mem],
                      f"{kind} layer train", **TOL)


def test_layer_train_dropout_gradcheck():
    """The encoder layer in train mode (dropout 0.1, relu: the fused dropout(relu(h))
    node) in float64: first and second derivatives against finite differences, with the
    seed fixed inside the function so every call draws the same masks."""
    cm = new_layer("encoder", 8, 2, dim_feedforward=16, dropout=0.1, batch_first=True)
    cm.to(torch.float64)
    cm.train()
    x = torch.randn(2, 3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def f(a):
        seed(23)
        return enc_layer_fwd(cm, a, None, None, False)
    gradcheck("TransformerEncoderLayer train", f, [x])
    gradgradcheck("TransformerEncoderLayer train", f, [x])


def test_decoder_and_transformer():
    with case("Transformer"):
        kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16)
        torch.manual_seed(9)
        tm = nn.Transformer(**kw)
        seed(9)
        cm = module("ct_nn_transformer_new", 8, 2,
                    ctypes.pointer(tr_opts(num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16)))
        same_init(cm, tm, "Transformer init (xavier re-init)")
        assert repr(cm) == repr(tm)
        tm.eval(), cm.eval()
        src, tgt = leaf(rn(6, 2, 8)), leaf(rn(5, 2, 8))
        tmask = nn.Transformer.generate_square_subsequent_mask(5)
        skpm = torch.zeros(2, 6, dtype=torch.bool)
        skpm[0, 5] = True
        want = tm(src, tgt, tgt_mask=tmask, src_key_padding_mask=skpm, memory_key_padding_mask=skpm)
        cs, ct_, ctm, ck = cts(src, tgt, tmask, skpm)
        got = tr_fwd(cm, cs, ct_, None, ctm, None, ck, None, ck, -1, -1, False)
        assert_same(got, want, **TOL)
        go = torch.randn_like(want)
        want.backward(go)
        got.backward(ctorch.from_torch(go))
        compare_grads(cm, tm, [cs, ct_], [src, tgt], "Transformer", **TOL)
        # TransformerDecoder on its own
        torch.manual_seed(2)
        tdl = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True, norm_first=True)
        td = nn.TransformerDecoder(tdl, 2)
        seed(2)
        cd = module("ct_nn_transformer_decoder_new",
                    new_layer("decoder", 8, 2, dim_feedforward=16, batch_first=True, norm_first=True).take(), 2, None)
        same_init(cd, td, "TransformerDecoder init")
        assert repr(cd) == repr(td)
        td.eval(), cd.eval()
        x, mem = rn(2, 5, 8), rn(2, 3, 8)
        cx, cmem, cmask = cts(x, mem, tmask)
        assert_same(dec_fwd(cd, cx, cmem, cmask, None, None, None, -1, False), td(x, mem, tgt_mask=tmask), **TOL)


def test_transformer_errors():
    with case("Transformer"):
        cm = module("ct_nn_transformer_new", 8, 2, ctypes.pointer(tr_opts(num_encoder_layers=1, num_decoder_layers=1,
                                                                          dim_feedforward=8)))
        a, b = ctorch.from_torch(rn(4, 2, 8)), ctorch.from_torch(rn(4, 3, 8))
        with pytest.raises(ctorch.CtorchError, match="batch number"):
            tr_fwd(cm, a, b, None, None, None, None, None, None, -1, -1, False)
        c = ctorch.from_torch(rn(4, 2, 6))
        with pytest.raises(ctorch.CtorchError, match="feature number"):
            tr_fwd(cm, a, c, None, None, None, None, None, None, -1, -1, False)
        with pytest.raises(ctorch.CtorchError, match="relu/gelu"):
            new_layer("encoder", 8, 2, activation="tanh")
        with pytest.raises(ctorch.CtorchError, match="TransformerEncoderLayer"):
            module("ct_nn_transformer_encoder_new", new_layer("decoder", 8, 2).take(), 2, None)
        count("Transformer", "error")


class MhaParams(ctypes.Structure):
    _fields_ = [(n, P) for n in ("in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight",
                                 "bias_k", "bias_v", "out_proj_weight", "out_proj_bias")] + \
               [("add_zero_attn", ctypes.c_bool), ("dropout_p", ctypes.c_double), ("training", ctypes.c_bool),
                ("average_attn_weights", ctypes.c_bool), ("is_causal", ctypes.c_bool)]


mha_functional = ctorch.lib.declare("ct_nn_multi_head_attention_forward", "T(T,T,T,i64,i64,p,T,T,T*)")
mha_functional_nw = ctorch.lib.declare("ct_nn_multi_head_attention_forward", "T(T,T,T,i64,i64,p,T,T,p)")


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("need", [False, True])
def test_multi_head_attention_forward_functional(separate, need):
    """F.multi_head_attention_forward with explicit weights (packed or separate)."""
    with case("multi_head_attention_forward"):
        E, H, L, S, N = 8, 2, 4, 6, 3
        g = torch.Generator().manual_seed(8)
        r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
        q, k, v = r(L, N, E), r(S, N, 5), r(S, N, 7)
        w_in, b_in = r(3 * E, E), r(3 * E)
        wq, wk, wv = r(E, E), r(E, 5), r(E, 7)
        bk, bv = r(1, 1, E), r(1, 1, E)
        wo, bo = r(E, E), r(E)
        am = torch.rand(L, S, generator=g) > 0.8
        kpm = torch.rand(N, S, generator=g) > 0.8
        kpm[:, 0] = False
        if not separate:
            k, v = r(S, N, E), r(S, N, E)
        want, want_w = F.multi_head_attention_forward(
            q, k, v, E, H, None if separate else w_in, b_in, bk, bv, False, 0.0, wo, bo, training=False,
            key_padding_mask=kpm, need_weights=need, attn_mask=am, use_separate_proj_weight=separate,
            q_proj_weight=wq, k_proj_weight=wk, v_proj_weight=wv)
        keep = cts(w_in, b_in, wq, wk, wv, bk, bv, wo, bo)
        p = MhaParams(None if separate else keep[0].ptr, keep[1].ptr, keep[2].ptr, keep[3].ptr, keep[4].ptr,
                      keep[5].ptr, keep[6].ptr, keep[7].ptr, keep[8].ptr, False, 0.0, False, True, False)
        cq, ck, cv, cam, ckpm = cts(q, k, v, am, kpm)
        if need:
            got, got_w = mha_functional(cq, ck, cv, E, H, ctypes.addressof(p), ckpm, cam)
            assert_same(got_w, want_w)
        else:
            got = mha_functional_nw(cq, ck, cv, E, H, ctypes.addressof(p), ckpm, cam, None)
        assert_same(got, want)
