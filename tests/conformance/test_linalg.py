"""Matrix products vs PyTorch: mm, bmm, mv, dot, vdot, outer, addmm, baddbmm, addmv,
matmul (every case), matmul_out, einsum. Values, gradients (backward with a random
grad_output, compared with torch.autograd), ctorch's own gradcheck / gradgradcheck in
float64, dtype coverage and error cases.

Talks to the library through the plain ctypes helpers of _legacy.py (section B); each
check is recorded as a case under its op's PyTorch name."""
import ctypes
import functools

import pytest
import torch

from _legacy import CtError, P, T, assert_close, call, check_op, ct, lib, op_of, rand, raises, to_torch
from _legacy import seed_each_test  # noqa: F401  (autouse fixture: seeds torch per test)
from _legacy import mat_gradcheck as gradcheck
from harness import case


def _b(fn):
    return lambda *a: call(fn, *a)


# ------------------------------------------------------------------------------------
FLOATS = [torch.float32, torch.float64, torch.complex64, torch.complex128]
ALL_MM = FLOATS + [torch.float16, torch.bfloat16, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


@pytest.mark.parametrize("dtype", ALL_MM)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((1, 4), (4, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3)),
                                    ((5, 1), (1, 7)), ((17, 33), (33, 9))])
def test_mm(dtype, shapes):
    a, b = rand(shapes[0], dtype), rand(shapes[1], dtype)
    check_op("mm", _b("ct_mm"), torch.mm, [a, b])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("nc", [(True, False), (False, True), (True, True)])
def test_mm_noncontiguous(dtype, nc):
    a, b = rand((6, 4), dtype), rand((4, 5), dtype)
    with case("mm"):
        ca, cb = ct(a, noncontig=nc[0], requires_grad=True), ct(b, noncontig=nc[1], requires_grad=True)
        assert_close(to_torch(call("ct_mm", ca, cb)), a @ b)
    # a strided (every other column) operand that BLAS cannot take directly
    big = rand((6, 8), dtype)
    with case("mm"):
        cbig = ct(big)
        lib.ct_slice.restype = P
        lib.ct_slice.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
        sl = T(lib.ct_slice(cbig, 1, 0, 8, 2))
        assert_close(to_torch(call("ct_mm", sl, cb)), big[:, ::2] @ b)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_mm_grad_of_transposed_operand(dtype, which):
    """mm(x, w.t()) as in a linear layer: the gradients (complex too) equal PyTorch's, and
    a transposed leaf's gradient comes back contiguous (mm_mat1/mat2_backward's layout)."""
    lib.ct_t.restype = P
    lib.ct_t.argtypes = [P]
    lib.ct_is_contiguous.argtypes = [P]
    lib.ct_is_contiguous.restype = ctypes.c_bool
    ta, tb = which in ("a", "both"), which in ("b", "both")
    a = rand((5, 6) if ta else (6, 5), dtype)
    b = rand((7, 5) if tb else (5, 7), dtype)
    with case("mm"):
        ca, cb = ct(a, requires_grad=True), ct(b, requires_grad=True)
        got = call("ct_mm", T(lib.ct_t(ca)) if ta else ca, T(lib.ct_t(cb)) if tb else cb)
        xa, xb = a.clone().requires_grad_(), b.clone().requires_grad_()
        want = torch.mm(xa.t() if ta else xa, xb.t() if tb else xb)
        assert_close(to_torch(got), want.detach())
        g = rand(tuple(want.shape), dtype)
        want.backward(g)
        assert lib.ct_backward(got, ct(g), False, False) == 0, lib.ct_last_error()
        for c, t in ((ca, xa), (cb, xb)):
            gp = lib.ct_grad(c)
            assert gp and lib.ct_is_contiguous(gp)
            assert_close(to_torch(gp), t.grad)


@pytest.mark.parametrize("dtype", FLOATS + [torch.int64, torch.float16])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 4, 5)), ((1, 1, 1), (1, 1, 1)), ((0, 2, 3), (0, 3, 4)),
                                    ((3, 0, 2), (3, 2, 2)), ((70, 3, 4), (70, 4, 2))])
def test_bmm(dtype, shapes):
    check_op("bmm", _b("ct_bmm"), torch.bmm, [rand(shapes[0], dtype), rand(shapes[1], dtype)])


# bfloat16 products go through oneDNN's matmul (float32 accumulation, one rounding) when
# the library has it: larger shapes, transposed and strided operands, batches with a
# broadcast side, and the gradients (products of transposed views themselves)
BF16_MM = [((64, 96), (96, 80), False, False), ((33, 70), (70, 17), True, False), ((40, 24), (24, 56), False, True),
           ((3, 20, 48), (3, 48, 36), True, True), ((5, 16, 32), (32, 8), False, False),
           ((16, 32), (4, 32, 8), False, False)]


@pytest.mark.parametrize("k", range(len(BF16_MM)))
def test_matmul_bfloat16(k):
    sa, sb, ta, tb = BF16_MM[k]
    a, b = rand(sa, torch.bfloat16), rand(sb, torch.bfloat16)
    if ta:  # the same values, stored transposed
        a = a.transpose(-1, -2).contiguous().transpose(-1, -2)
    if tb:
        b = b.transpose(-1, -2).contiguous().transpose(-1, -2)
    check_op("matmul", _b("ct_matmul"), torch.matmul, [a, b])
    with case("matmul"):  # every other column of a wider matrix: a strided operand
        wide = rand((sa[-2], 2 * sa[-1]), torch.bfloat16)
        lib.ct_slice.restype = P
        lib.ct_slice.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
        cw = ct(wide)
        sl = T(lib.ct_slice(cw, 1, 0, 2 * sa[-1], 2))
        b2 = b if b.dim() == 2 else b[0]
        assert_close(to_torch(call("ct_matmul", sl, ct(b2))), wide[:, ::2] @ b2)


@pytest.mark.parametrize("dtype", FLOATS + [torch.int32])
def test_mv_dot_vdot_outer(dtype):
    check_op("mv", _b("ct_mv"), torch.mv, [rand((4, 3), dtype), rand((3,), dtype)])
    check_op("mv", _b("ct_mv"), torch.mv, [rand((4, 3), dtype), rand((3,), dtype)], noncontig=True)
    check_op("dot", _b("ct_dot"), torch.dot, [rand((7,), dtype), rand((7,), dtype)])
    check_op("dot", _b("ct_dot"), torch.dot, [rand((0,), dtype), rand((0,), dtype)], grad=False)
    check_op("vdot", _b("ct_vdot"), torch.vdot, [rand((5,), dtype), rand((5,), dtype)])
    check_op("outer", _b("ct_outer"), torch.outer, [rand((4,), dtype), rand((3,), dtype)])


def test_outer_promotes():
    check_op("outer", _b("ct_outer"), torch.outer, [rand((4,), torch.int64), rand((3,), torch.float32)], grad=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, -2.0), (0.0, 1.5)])
@pytest.mark.parametrize("inshape", [(3, 5), (5,), (1, 1), (3, 1)])
def test_addmm(dtype, beta, alpha, inshape):
    ext = (ctypes.c_double(beta), ctypes.c_double(alpha))
    check_op("addmm", lambda i, a, b: call("ct_addmm", i, a, b, *ext),
             lambda i, a, b: torch.addmm(i, a, b, beta=beta, alpha=alpha),
             [rand(inshape, dtype), rand((3, 4), dtype), rand((4, 5), dtype)])


@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, -2.0), (0.0, 1.5)])
def test_baddbmm_addmv(beta, alpha):
    ext = (ctypes.c_double(beta), ctypes.c_double(alpha))
    check_op("baddbmm", lambda i, a, b: call("ct_baddbmm", i, a, b, *ext),
             lambda i, a, b: torch.baddbmm(i, a, b, beta=beta, alpha=alpha),
             [rand((1, 3, 5)), rand((2, 3, 4)), rand((2, 4, 5))])
    check_op("addmv", lambda i, a, b: call("ct_addmv", i, a, b, *ext),
             lambda i, a, b: torch.addmv(i, a, b, beta=beta, alpha=alpha),
             [rand((3,)), rand((3, 4)), rand((4,))])


def test_beta_zero_ignores_nan():
    i = torch.full((2, 2), float("nan"))
    a, b = rand((2, 3), torch.float32), rand((3, 2), torch.float32)
    with case("addmm"):
        assert_close(to_torch(call("ct_addmm", ct(i), ct(a), ct(b), ctypes.c_double(0.0), ctypes.c_double(1.0))),
                     torch.addmm(i, a, b, beta=0))
    v = torch.full((2,), float("nan"))
    with case("addmv"):
        assert_close(to_torch(call("ct_addmv", ct(v), ct(a), ct(b[:, 0].contiguous()), ctypes.c_double(0.0),
                                   ctypes.c_double(1.0))), torch.addmv(v, a, b[:, 0], beta=0))


# float32 products go to oneDNN's sgemm or OpenBLAS's by a fixed shape rule
# (src/cpu/linalg.c, sgemm_prefers_openblas; all to oneDNN where OpenBLAS does not know
# the CPU): shapes on both sides of each boundary, in the three layouts the kernels pass
# (NN; A transposed, as weight gradients; B transposed, as linear layers' forward).
# Against float64, within float32 sums of K terms.
GEMM_ROUTES = [  # (M, K, N, layout)
    (16, 256, 1024, "nn"), (15, 256, 1024, "nn"), (16, 255, 1024, "nn"),  # N % 512 == 0, thin M
    (300, 512, 512, "nn"), (300, 511, 512, "nn"), (513, 512, 512, "nn"),  # N = 512
    (1024, 300, 200, "tn"), (1024, 300, 100, "tn"), (1024, 300, 200, "nn"),  # TN, M % 1024 == 0
    (256, 1024, 1024, "nn"), (257, 1024, 1024, "nn"), (2048, 256, 256, "tn"), (2048, 256, 256, "nt"),
]


@pytest.mark.parametrize("k", range(len(GEMM_ROUTES)))
def test_mm_float32_gemm_routes(k):
    M, K, N, lay = GEMM_ROUTES[k]
    g = torch.Generator().manual_seed(40 + k)
    a = torch.randn((K, M) if lay == "tn" else (M, K), generator=g)
    b = torch.randn((N, K) if lay == "nt" else (K, N), generator=g)
    lib.ct_t.restype = P
    lib.ct_t.argtypes = [P]
    with case("mm"):
        ca, cb = ct(a), ct(b)
        if lay == "tn":
            ca, a = T(lib.ct_t(ca)), a.t()
        if lay == "nt":
            cb, b = T(lib.ct_t(cb)), b.t()
        got = to_torch(call("ct_mm", ca, cb))
        want = (a.double() @ b.double()).float()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * K)


# float32 products split into blocks fixed by the shape, one single-threaded BLAS call a
# block (src/cpu/linalg.c): of 2^17..2^20 multiply-adds in some layouts, two row blocks
# through OpenBLAS ("rows": sgemm_splits, where OpenBLAS runs its AVX-512 kernels), and
# A @ B^T with N >= 256, K >= 32 and M <= 512 or N <= 256, K >= 1024 in an even number
# of column blocks of 128-256 through oneDNN ("cols": sgemm_nt_blocks, on AVX-512 CPUs); elsewhere, and for
# the shapes just outside the rules (None), the rule above. Block sizes with odd and tiny
# last blocks, A and B as column slices (leading dimensions past their widths), addmm's
# beta, and batches whose products run inside the batch loop's parallel region (all
# blocks on one thread there). Where a rule applies, its blocks are fixed by the shape,
# so one thread and two give the same bits (the libraries' own threading need not).
ROW_BLOCKS = [  # (M, K, N, layout, rule)
    (64, 64, 64, "nn", "rows"), (17, 128, 100, "nn", "rows"), (100, 64, 64, "nn", "rows"),
    (64, 10, 256, "nn", "rows"), (16, 256, 256, "nn", "rows"), (64, 256, 64, "nn", "rows"),
    (127, 64, 64, "nn", "rows"), (64, 31, 64, "nn", None), (64, 64, 257, "nn", None),
    (128, 32, 64, "tn", "rows"), (256, 64, 48, "tn", "rows"), (129, 33, 100, "tn", "rows"),
    (128, 31, 64, "tn", None),
    (64, 256, 10, "nt", "rows"), (40, 128, 30, "nt", "rows"), (24, 256, 64, "nt", "rows"),
    (200, 100, 16, "nt", "rows"), (64, 64, 65, "nt", None),
    (64, 784, 256, "nt", "cols"), (8, 256, 300, "nt", "cols"), (128, 32, 1000, "nt", "cols"),
    (16, 2048, 256, "nt", "cols"), (3, 100, 511, "nt", "cols"), (300, 64, 256, "nt", "cols"),
    (1, 512, 1000, "nt", "cols"), (4, 300, 383, "nt", "cols"),
    (512, 40, 384, "nt", "cols"), (513, 1024, 256, "nt", "cols"), (600, 2048, 200, "nt", None),
    (513, 1023, 256, "nt", None), (513, 1024, 257, "nt", None), (64, 31, 256, "nt", None),
    (64, 64, 255, "nt", None),
]


def _view_sigs():
    """ctypes signatures of the calls the block tests make directly."""
    for fn, args in (("ct_t", [P]), ("ct_narrow", [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]),
                     ("ct_addmm", [P, P, P, ctypes.c_double, ctypes.c_double])):
        getattr(lib, fn).restype = P
        getattr(lib, fn).argtypes = args


@functools.lru_cache(maxsize=None)
def _rule_applies(rule):
    """Whether linalg.c's rule is on here: "rows" where OpenBLAS runs its AVX-512
    kernels (its core name, as openblas_kernels() reads it), "cols" on an AVX-512 CPU
    with ctorch linked to oneDNN (mapped into this process)."""
    if rule == "rows":
        try:
            f = ctypes.CDLL("libopenblas.so.0").openblas_get_corename
        except (OSError, AttributeError):
            return False
        f.restype = ctypes.c_char_p
        return (f() or b"").decode().lower() in ("skylakex", "cooperlake", "sapphirerapids")
    if rule == "cols":
        with open("/proc/cpuinfo") as fh:
            flags = next((ln.split() for ln in fh if ln.startswith("flags")), [])
        with open("/proc/self/maps") as fh:
            dnnl = "libdnnl" in fh.read()
        return "avx512f" in flags and "avx512bw" in flags and dnnl
    return False


@pytest.mark.parametrize("k", range(len(ROW_BLOCKS)))
def test_mm_float32_row_blocks(k):
    M, K, N, lay, rule = ROW_BLOCKS[k]
    g = torch.Generator().manual_seed(70 + k)
    wide_a = torch.randn((K, M + 3) if lay == "tn" else (M, K + 3), generator=g)
    wide_b = torch.randn((N, K + 5) if lay == "nt" else (K, N + 5), generator=g)
    inp = torch.randn(M, N, generator=g)
    _view_sigs()
    old = lib.ct_get_num_threads()
    try:
        with case("mm"):
            cwa, cwb = ct(wide_a), ct(wide_b)
            ca = T(lib.ct_narrow(cwa, 1, 0, M if lay == "tn" else K))  # rows K+3 (M+3) floats apart
            cb = T(lib.ct_narrow(cwb, 1, 0, K if lay == "nt" else N))
            a = wide_a[:, :M] if lay == "tn" else wide_a[:, :K]
            b = wide_b[:, :K] if lay == "nt" else wide_b[:, :N]
            if lay == "tn":
                ca, a = T(lib.ct_t(ca)), a.t()
            if lay == "nt":
                cb, b = T(lib.ct_t(cb)), b.t()
            want = a.double() @ b.double()
            got = {}
            for threads in (1, 2):
                lib.ct_set_num_threads(threads)
                got[threads] = to_torch(call("ct_mm", ca, cb))
                torch.testing.assert_close(got[threads], want.float(), rtol=1e-5, atol=1e-6 * K)
            if _rule_applies(rule):
                assert torch.equal(got[1], got[2]), "one thread and two give other bits"
        with case("addmm"):
            r = to_torch(T(lib.ct_addmm(ct(inp), ca, cb, ctypes.c_double(0.5), ctypes.c_double(-2.0))))
            torch.testing.assert_close(r, (0.5 * inp.double() - 2.0 * want).float(), rtol=1e-5, atol=2e-6 * K)
        with case("bmm"):  # four products, one a thread inside the batch loop's region
            a3 = torch.stack([a * (i + 1) for i in range(4)])
            b3 = b.expand(4, K, N)
            lib.ct_set_num_threads(2)
            got3 = to_torch(call("ct_bmm", ct(a3.contiguous()), ct(b3.contiguous())))
            for i in range(4):
                torch.testing.assert_close(got3[i], (a3[i].double() @ b.double()).float(), rtol=1e-5,
                                           atol=1e-6 * K * (i + 1))
    finally:
        lib.ct_set_num_threads(old)


# A training step's x @ W, W a [K, N] float32 leaf that requires grad, in grad mode: K is
# cut in two halves, one a thread, and the two partial products added (src/cpu/linalg.c,
# sgemm_ksplit: M <= 256, N >= 32, M * N * K >= 2^18, K >= 512 or K >= 256 with
# N <= 256), so each thread reads the rows of W an elementwise update of W writes on it.
# Shapes on both sides of the rule (False: outside it), odd K, M and N, A plain, as a
# column slice (rows past its width) and transposed; addmm's alpha and beta; the
# gradients through the product. The halves are fixed by K, so one thread and two give
# the same bits; the product of the same operands without the hint is as close to the
# float64 one.
TRAINED_W = [  # (M, K, N, layout of A, rule applies)
    (64, 784, 256, "n", True), (64, 784, 256, "t", True), (16, 256, 64, "s", True), (1, 1024, 1024, "n", True),
    (33, 513, 100, "s", True), (256, 257, 256, "t", True), (7, 4096, 40, "n", True), (200, 1000, 300, "n", True),
    (8, 256, 64, "n", False), (64, 1024, 16, "n", False), (257, 784, 256, "n", False),
    (128, 256, 257, "n", False), (64, 200, 64, "n", False),
]


@pytest.mark.parametrize("k", range(len(TRAINED_W)))
def test_mm_float32_trained_weight(k):
    M, K, N, lay, rule = TRAINED_W[k]
    g = torch.Generator().manual_seed(90 + k)
    wide_a = torch.randn((K, M) if lay == "t" else (M, K + 3), generator=g)
    w = torch.randn(K, N, generator=g) / K ** 0.5
    inp = torch.randn(M, N, generator=g)
    _view_sigs()
    old = lib.ct_get_num_threads()
    try:
        with case("mm"):
            if lay == "t":  # A^T's rows M floats apart
                ca, a = T(lib.ct_t(ct(wide_a))), wide_a.t()
            elif lay == "s":  # rows K + 3 floats apart
                ca, a = T(lib.ct_narrow(ct(wide_a), 1, 0, K)), wide_a[:, :K]
            else:
                a = wide_a[:, :K].contiguous()
                ca = ct(a)
            cw_plain, cw = ct(w), ct(w, requires_grad=True)
            want = a.double() @ w.double()
            got = {}
            for threads in (1, 2):
                lib.ct_set_num_threads(threads)
                got[threads] = to_torch(call("ct_mm", ca, cw))
                torch.testing.assert_close(got[threads], want.float(), rtol=1e-5, atol=1e-6 * K ** 0.5)
            plain = to_torch(call("ct_mm", ca, cw_plain))
            torch.testing.assert_close(plain, want.float(), rtol=1e-5, atol=1e-6 * K ** 0.5)
            if rule:
                assert torch.equal(got[1], got[2]), "one thread and two give other bits"
        with case("addmm"):
            r = to_torch(T(lib.ct_addmm(ct(inp), ca, cw, ctypes.c_double(0.5), ctypes.c_double(-2.0))))
            torch.testing.assert_close(r, (0.5 * inp.double() - 2.0 * want).float(), rtol=1e-5,
                                       atol=2e-6 * K ** 0.5)
        with case("backward"):  # d/dW sum(x @ W * G) = x^T G, d/dx = G W^T
            gt = torch.randn(M, N, generator=g)
            ta = a.clone().requires_grad_(True)
            tw = w.clone().requires_grad_(True)
            ((ta.double() @ tw.double()) * gt.double()).sum().backward()
            cx = ct(a, requires_grad=True)
            loss = call("ct_sum", call("ct_mul", call("ct_mm", cx, cw), ct(gt)))
            assert lib.ct_backward(loss, None, False, False) == 0
            # sums over M (N) float32 products: within their rounding
            torch.testing.assert_close(to_torch(lib.ct_grad(cw)), tw.grad.float(), rtol=1e-5, atol=1e-6 * M)
            torch.testing.assert_close(to_torch(lib.ct_grad(cx)), ta.grad.float(), rtol=1e-5, atol=1e-6 * N)
    finally:
        lib.ct_set_num_threads(old)


# Small float32/float64 products run a direct kernel (src/cpu/linalg.c, gemm_is_small:
# N and K up to 32, M * N * K up to 8192, or 32768 when N is a multiple of 8): B's rows
# W = 8/16/32 wide, C's rows R at a time (R = 8, 4, 2 or 1 by W and dtype) and the rows
# left one by one. Shapes on both sides of those cuts (remainder rows, partial vectors,
# shapes that stay with the BLAS), each operand plain, transposed or strided (B's copy
# into the padded block), batched (parallel above 32768 multiply-adds), with alpha and
# beta (beta = 0 ignoring NaN in the input). Against float64, within the sums' rounding.
SMALL_MNK = [(1, 1, 1), (3, 5, 7), (9, 4, 8), (8, 3, 8), (3, 7, 16), (5, 32, 16), (17, 16, 9), (4, 32, 32),
             (32, 32, 32), (16, 20, 20), (12, 24, 24), (2, 2, 31), (33, 16, 8), (40, 32, 32), (6, 33, 4)]


def _small_ref(a, b, dtype):
    return (a.double() @ b.double()).to(dtype)


def _small_close(got, want, K):
    tol = dict(rtol=1e-5, atol=1e-6 * K) if want.dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13 * K)
    torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["nn", "tn", "nt", "strided"])
@pytest.mark.parametrize("mkn", SMALL_MNK)
def test_small_products(mkn, layout, dtype):
    M, K, N = mkn
    a = torch.randn((K, M) if layout == "tn" else (M, K), dtype=dtype)
    b = torch.randn((N, K) if layout == "nt" else (K, 2 * N if layout == "strided" else N), dtype=dtype)
    lib.ct_t.restype = P
    lib.ct_t.argtypes = [P]
    lib.ct_slice.restype = P
    lib.ct_slice.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    with case("mm"):
        ca, cb = ct(a), ct(b)
        if layout == "tn":
            ca, a = T(lib.ct_t(ca)), a.t()
        if layout == "nt":
            cb, b = T(lib.ct_t(cb)), b.t()
        if layout == "strided":
            cb, b = T(lib.ct_slice(cb, 1, 0, 2 * N, 2)), b[:, ::2]
        _small_close(to_torch(call("ct_mm", ca, cb)), _small_ref(a, b, dtype), K)


# A fresh product of contiguous matrices whose N fills the kernel's width (8 for float64,
# 16 or 32) takes a specialised copy of the kernel on AVX-512 (SMALL_DENSE); the same
# values with A's columns strided take the general one. Both add the same products in the
# same order, so they must agree bit for bit (and with the float64 product within rounding).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mkn", [(1, 16, 16), (9, 16, 16), (16, 16, 16), (3, 32, 32), (7, 5, 32), (13, 20, 8),
                                 (17, 3, 16), (5, 9, 8)])
def test_small_dense_same_bits(mkn, dtype):
    M, K, N = mkn
    a2, b = torch.randn(M, 2 * K, dtype=dtype), torch.randn(K, N, dtype=dtype)
    a = a2[:, ::2].contiguous()
    lib.ct_slice.restype = P
    lib.ct_slice.argtypes = [P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    with case("mm"):
        dense = to_torch(call("ct_mm", ct(a), ct(b)))
        strided = to_torch(call("ct_mm", T(lib.ct_slice(ct(a2), 1, 0, 2 * K, 2)), ct(b)))
        assert torch.equal(dense, strided)
        _small_close(dense, _small_ref(a, b, dtype), K)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb,mkn", [(3, (9, 4, 8)), (70, (9, 8, 17)), (64, (10, 10, 10)), (5, (32, 32, 32)),
                                    (2, (40, 32, 32))])
def test_small_batched_products_alpha_beta(nb, mkn, dtype):
    M, K, N = mkn
    a, b = torch.randn(nb, M, K, dtype=dtype), torch.randn(nb, K, N, dtype=dtype)
    inp = torch.randn(nb, M, N, dtype=dtype)
    with case("bmm"):
        _small_close(to_torch(call("ct_bmm", ct(a), ct(b))), _small_ref(a, b, dtype), K)
    with case("baddbmm"):
        got = to_torch(call("ct_baddbmm", ct(inp), ct(a), ct(b), ctypes.c_double(0.5), ctypes.c_double(-2.0)))
        _small_close(got, (0.5 * inp.double() - 2.0 * (a.double() @ b.double())).to(dtype), K)
    with case("baddbmm"):  # beta = 0: the input's NaN never reaches the result
        nan = torch.full((nb, M, N), float("nan"), dtype=dtype)
        got = to_torch(call("ct_baddbmm", ct(nan), ct(a), ct(b), ctypes.c_double(0.0), ctypes.c_double(1.5)))
        _small_close(got, (1.5 * (a.double() @ b.double())).to(dtype), K)


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3,)),
                 ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)),
                 ((1, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)), ((4, 1, 2, 3), (1, 6, 3, 2)),
                 ((0, 2, 3), (3, 4)), ((2, 0, 3), (2, 3, 4)), ((2, 3, 0), (0, 4)), ((2, 1, 4), (1, 2, 4, 2))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_matmul(shapes, dtype):
    check_op("matmul", _b("ct_matmul"), torch.matmul, [rand(shapes[0], dtype), rand(shapes[1], dtype)])


@pytest.mark.parametrize("shapes", MATMUL_SHAPES[:12])
def test_matmul_noncontig_int(shapes):
    check_op("matmul", _b("ct_matmul"), torch.matmul, [rand(shapes[0]), rand(shapes[1])], noncontig=True)
    check_op("matmul", _b("ct_matmul"), torch.matmul, [rand(shapes[0], torch.int64), rand(shapes[1], torch.int64)])


def test_matmul_out():
    a, b = rand((2, 3, 4)), rand((4, 5))
    with case("matmul"):  # out=
        out = ct(torch.zeros(1, dtype=torch.float64))
        lib.ct_matmul_out.argtypes = [P, P, P]
        assert lib.ct_matmul_out(out, ct(a), ct(b)) == 0, lib.ct_last_error()
        assert_close(to_torch(out), a @ b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.int64, torch.bfloat16])
@pytest.mark.parametrize("m,k,n", [(16, 16, 16), (5, 7, 3), (64, 33, 17), (3, 0, 4)])
def test_matmul_out_direct(m, k, n, dtype):
    """Two matrices into a contiguous out of the product's shape and dtype: the product is
    written into out's own memory (its data pointer kept, its version bumped), with the
    values of torch.matmul(a, b, out=out); the cases that go through a result and a copy
    (a transposed out, an out that is an operand, a requires-grad operand, a resize) keep
    torch's behaviour."""
    lib.ct_matmul_out.argtypes = [P, P, P]
    lib.ct_data_ptr.restype = ctypes.c_void_p
    lib.ct_data_ptr.argtypes = [P]
    lib.ct_version_counter.restype = ctypes.c_int64
    lib.ct_version_counter.argtypes = [P]
    a, b = rand((m, k), dtype), rand((k, n), dtype)
    want = torch.matmul(a, b, out=torch.full((m, n), 7, dtype=dtype))
    with case("matmul"):
        out = ct(torch.full((m, n), 7, dtype=dtype))
        ptr, ver = lib.ct_data_ptr(out), lib.ct_version_counter(out)
        assert lib.ct_matmul_out(out, ct(a), ct(b)) == 0, lib.ct_last_error()
        assert lib.ct_data_ptr(out) == ptr
        assert lib.ct_version_counter(out) == ver + 1
        assert_close(to_torch(out), want)
        # a transposed out: written through its strides, its memory kept
        out_t = ct(torch.zeros((m, n), dtype=dtype), noncontig=True)
        ptr = lib.ct_data_ptr(out_t)
        assert lib.ct_matmul_out(out_t, ct(a), ct(b)) == 0, lib.ct_last_error()
        assert lib.ct_data_ptr(out_t) == ptr
        assert_close(to_torch(out_t), want)


def test_matmul_out_fallbacks():
    lib.ct_matmul_out.argtypes = [P, P, P]
    lib.ct_set_requires_grad.argtypes = [P, ctypes.c_bool]
    a, b = rand((4, 4)), rand((4, 4))
    with case("matmul"):
        # out is an operand: the product of the old values, as torch computes it
        x = ct(a)
        assert lib.ct_matmul_out(x, x, ct(b)) == 0, lib.ct_last_error()
        assert_close(to_torch(x), a @ b)
        # a wrong shape is resized (torch warns and resizes out)
        out = ct(torch.zeros((2, 3), dtype=torch.float64))
        assert lib.ct_matmul_out(out, ct(a), ct(b)) == 0, lib.ct_last_error()
        assert_close(to_torch(out), a @ b)
        # another dtype: torch refuses an out whose dtype differs from the product's
        for shape in ((4, 4), (2, 3)):
            with pytest.raises(RuntimeError, match="Expected out tensor to have dtype double, but got float"):
                torch.matmul(a, b, out=torch.zeros(shape, dtype=torch.float32))
            assert lib.ct_matmul_out(ct(torch.zeros(shape, dtype=torch.float32)), ct(a), ct(b)) != 0
            assert lib.ct_last_error() == b"Expected out tensor to have dtype double, but got float instead"
        # a requires-grad operand: out= does not support autograd
        ag = ct(a)
        lib.ct_set_requires_grad(ag, True)
        out = ct(torch.zeros((4, 4), dtype=torch.float64))
        assert lib.ct_matmul_out(out, ag, ct(b)) != 0
        assert b"don't support automatic differentiation" in lib.ct_last_error()
        # NULL operands propagate as an error, not a crash
        assert lib.ct_matmul_out(out, None, ct(b)) != 0


@pytest.mark.parametrize("fn,args", [
    ("ct_mm", [lambda: ct(rand((2, 3))), lambda: ct(rand((4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((2, 3))), lambda: ct(rand((4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((2, 2, 3))), lambda: ct(rand((2, 4, 5)))]),
    ("ct_matmul", [lambda: ct(rand((3, 2, 3))), lambda: ct(rand((2, 3, 5)))]),
    ("ct_matmul", [lambda: ct(torch.tensor(1.0)), lambda: ct(rand((3,)))]),
    ("ct_matmul", [lambda: ct(rand((3,))), lambda: ct(rand((4,)))]),
    ("ct_mm", [lambda: ct(rand((2, 3), torch.float32)), lambda: ct(rand((3, 2)))]),
    ("ct_matmul", [lambda: ct(rand((2, 2, 3), torch.float32)), lambda: ct(rand((3, 2)))]),
    ("ct_mm", [lambda: ct(rand((3,))), lambda: ct(rand((3, 2)))]),
    ("ct_bmm", [lambda: ct(rand((2, 2, 3))), lambda: ct(rand((3, 3, 2)))]),
    ("ct_mv", [lambda: ct(rand((2, 3))), lambda: ct(rand((4,)))]),
    ("ct_dot", [lambda: ct(rand((3,))), lambda: ct(rand((3,), torch.float32))]),
    ("ct_dot", [lambda: ct(rand((3, 1))), lambda: ct(rand((3,)))]),
    ("ct_mm", [lambda: ct(rand((2, 2), torch.bool)), lambda: ct(rand((2, 2), torch.bool))]),
])
def test_errors(fn, args):
    targs = []
    cargs = [f() for f in args]
    for c in cargs:
        targs.append(to_torch(c))
    tfn = {"ct_mm": torch.mm, "ct_matmul": torch.matmul, "ct_bmm": torch.bmm, "ct_mv": torch.mv,
           "ct_dot": torch.dot}[fn]
    with case(op_of(fn)):
        with pytest.raises(RuntimeError) as te:
            tfn(*targs)
        with pytest.raises(CtError) as ce:
            call(fn, *cargs)
        msg = str(ce.value)
        # the shape message names the same shapes as PyTorch where PyTorch names them as "AxB"
        if "cannot be multiplied" in str(te.value):
            assert str(te.value) in msg, (msg, str(te.value))
        if "same dtype" in str(te.value):
            assert str(te.value) in msg, (msg, str(te.value))


EINSUM = [("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
          ("ii", [(3, 3)]), ("ii->i", [(3, 3)]), ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("i,i->", [(4,), (4,)]),
          ("i,j->ij", [(2,), (3,)]), ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]), ("...j,j", [(2, 3, 4), (4,)]),
          ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]), ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
          ("iij->j", [(3, 3, 2)]), ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]), ("ij,ij->ij", [(2, 3), (2, 3)]),
          ("i,i,i->i", [(3,), (3,), (3,)]), ("ba", [(2, 3)]), ("Ab,bA->A", [(2, 3), (3, 2)]),
          ("ij,kj->ik", [(1, 3), (4, 3)]), ("...", [(2, 3)]), ("i...->...", [(2, 3, 4)]),
          ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("ij,jk->ik", [(0, 3), (3, 4)])]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum(eq, shapes):
    lib.ct_einsum.restype = P
    ins = [rand(s) for s in shapes]

    def cfn(*cs):
        arr = (P * len(cs))(*[c.p for c in cs])
        return call("ct_einsum", eq.encode(), len(cs), arr)

    check_op("einsum", cfn, lambda *ts: torch.einsum(eq, *ts), ins)


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(2, 3), (4, 5)]), ("ij,jk->ik", [(2, 3)]),
                                       ("ij->iij", [(2, 3)]), ("ijk->i", [(2, 3)]), ("ii", [(2, 3)]),
                                       ("i->j", [(2,)]), ("i1->i", [(2, 3)])])
def test_einsum_errors(eq, shapes):
    ins = [rand(s) for s in shapes]
    with pytest.raises(Exception):
        torch.einsum(eq, *ins)
    cs = [ct(t) for t in ins]
    arr = (P * len(cs))(*[c.p for c in cs])
    raises("ct_einsum", eq.encode(), len(cs), arr)


GC = [("ct_mm", [(3, 4), (4, 2)]), ("ct_bmm", [(2, 3, 4), (2, 4, 2)]), ("ct_mv", [(3, 4), (4,)]),
      ("ct_dot", [(4,), (4,)]), ("ct_matmul", [(2, 1, 3, 4), (3, 4, 2)]), ("ct_matmul", [(3,), (2, 3, 4)]),
      ("ct_outer", [(3,), (2,)])]


@pytest.mark.parametrize("fn,shapes", GC)
def test_gradcheck(fn, shapes):
    ins = [rand(s) for s in shapes]
    gradcheck(op_of(fn), lambda *ps: call(fn, *ps), ins)
    gradcheck(op_of(fn), lambda *ps: call(fn, *ps), ins, second=True)


def test_gradcheck_add_forms():
    ext = (ctypes.c_double(0.7), ctypes.c_double(-1.3))
    gradcheck("addmm", lambda i, a, b: call("ct_addmm", i, a, b, *ext), [rand((3,)), rand((2, 4)), rand((4, 3))],
              second=True)
    gradcheck("baddbmm", lambda i, a, b: call("ct_baddbmm", i, a, b, *ext),
              [rand((2, 1, 3)), rand((2, 2, 4)), rand((2, 4, 3))], second=True)
    gradcheck("addmv", lambda i, a, b: call("ct_addmv", i, a, b, *ext), [rand((2,)), rand((2, 4)), rand((4,))],
              second=True)


def test_gradcheck_einsum():
    def f(a, b):
        arr = (P * 2)(a, b)
        return call("ct_einsum", b"bij,jk->bki", 2, arr)
    gradcheck("einsum", f, [rand((2, 3, 4)), rand((4, 2))], second=True)

    def g(a):
        arr = (P * 1)(a)
        return call("ct_einsum", b"iij->ij", 1, arr)
    # linear in its input: first order only (ct_gradgradcheck needs a gradient that depends on the input)
    gradcheck("einsum", g, [rand((3, 3, 2))])


def test_no_leaks():
    with case("matmul"):
        before = lib.ct_live_tensors()
        for shapes in MATMUL_SHAPES:
            r = call("ct_matmul", ct(rand(shapes[0]), requires_grad=True), ct(rand(shapes[1])))
            del r
        assert lib.ct_live_tensors() == before
