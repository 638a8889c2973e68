/* CPU kernels: linalg family (GEMM) and the copy kernels of the shape ops (FLIP, TRIL).
 *
 * GEMM: out[0] = d[0] * in[0] @ in[1] + d[1] * out[0] over 3-D operands [B, M, K] x
 * [B, K, N] -> [B, M, N] (batch strides may be 0). d[1] == 0 ignores out's old values
 * (NaN included), as BLAS and PyTorch do. float32 goes to oneDNN's sgemm when the
 * library is built with it (CT_HAVE_DNNL: its kernels follow the CPU's instruction sets,
 * not its model name), float64/complex (and float32 without oneDNN) to OpenBLAS, each
 * matrix passed as is when its last or second-last stride is 1 (a transposed
 * contiguous matrix becomes a transposed BLAS operand), otherwise copied contiguous.
 * Other dtypes use a blocked loop accumulating in float (float16/bfloat16) or int64. */
#include <cblas.h>
#include <omp.h>
#include <stdatomic.h>
#include <strings.h>
#ifdef CT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include "cpu/loops.h"

/* ---- BLAS path ---- */
typedef struct {
    const char *base; /* element 0 of batch 0 */
    int64_t bstride;  /* batch stride in bytes */
    CBLAS_TRANSPOSE trans;
    int64_t ld;
} blas_mat;

/* Can a [rows, cols] matrix with strides (s0, s1) be given to BLAS directly? */
static bool blas_layout(int64_t rows, int64_t cols, int64_t s0, int64_t s1, CBLAS_TRANSPOSE *tr, int64_t *ld) {
    int64_t mc = cols > 1 ? cols : 1, mr = rows > 1 ? rows : 1;
    if ((s1 == 1 || cols <= 1) && (rows <= 1 || s0 >= mc)) {
        *tr = CblasNoTrans;
        *ld = rows <= 1 ? mc : s0;
        return *ld <= INT32_MAX;
    }
    if ((s0 == 1 || rows <= 1) && (cols <= 1 || s1 >= mr)) {
        *tr = CblasTrans;
        *ld = cols <= 1 ? mr : s1;
        return *ld <= INT32_MAX;
    }
    return false;
}

/* Prepares operand t ([B, rows, cols]); *tmp receives a contiguous copy if one was needed. */
static int blas_prepare(const ct_tensor *t, blas_mat *m, ct_tensor **tmp) {
    *tmp = NULL;
    size_t es = ct_dtype_size(t->dtype);
    if (!blas_layout(t->sizes[1], t->sizes[2], t->strides[1], t->strides[2], &m->trans, &m->ld)) {
        ct_tensor *c = ct__empty_raw(3, t->sizes, t->dtype);
        if (!c) return ct_last_status();
        if (ct__copy_raw(c, t)) { ct_release(c); return ct_last_status(); }
        *tmp = c;
        t = c;
        m->trans = CblasNoTrans;
        m->ld = t->sizes[2] > 1 ? t->sizes[2] : 1;
    }
    m->base = ct__data(t);
    m->bstride = t->strides[0] * (int64_t)es;
    return 0;
}

/* Which kernels OpenBLAS runs: 0.3.21 picks them by CPU model and falls back to its
 * slowest ones on models it does not know (an AVX-512 host of an earlier session), where
 * oneDNN, which picks by instruction set, is the better choice for every shape.
 * 0: unknown model (or a BLAS without the OpenBLAS extension, weak), 1: its AVX2
 * kernels, 2: its AVX-512 ones. */
#pragma weak openblas_get_corename
static int openblas_kernels(void) {
    static atomic_int known = -1; /* -1: not asked yet; threads racing here store the same */
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    if (v < 0) {
        static const struct { const char *name; int kind; } cores[] = {
            {"haswell", 1}, {"zen", 1}, {"skylakex", 2}, {"cooperlake", 2}, {"sapphirerapids", 2}};
        const char *name = openblas_get_corename ? openblas_get_corename() : NULL;
        v = 0;
        for (size_t i = 0; name && !v && i < sizeof cores / sizeof cores[0]; i++)
            if (strcasecmp(name, cores[i].name) == 0) v = cores[i].kind;
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v;
}

/* Whether a product cut in fixed blocks opens its own parallel region for them: not
 * inside one, nor with one thread (the blocks then run in turn, the same calls). */
static inline bool blocks_fork(void) { return !omp_in_parallel() && omp_get_max_threads() > 1; }

/* float32 products that go to OpenBLAS in row blocks, one single-threaded call per
 * thread. OpenBLAS 0.3.21 runs products up to M * N * K = 2^18 on one thread and, with
 * its AVX-512 kernels, through its small-matrix kernels, which skip packing: a product
 * of 2^17..2^20 split in two row blocks runs each half at those kernels' speed on both
 * cores. Measured on an AMD EPYC (Zen 4, two threads; M, N, K in 16..512), split time
 * against the faster of OpenBLAS's and oneDNN's own calls: NN 0.38-0.94 from 2^17 to
 * 2^20 in every shape, most 0.72-0.93 (64^3: 2.9-3.3 against 4.6 and oneDNN's 3.6 us; at
 * 2^16 0.92-1.08, at 2^21 1.1-2x slower: the halves outgrow the small kernels); TN
 * 0.66-0.98 from 2^18 with K >= 32 but 512 x 16 x 32 1.11 (at K = 16, or at 2^17, up to
 * 1.4x slower); NT (a linear layer's x W^T) only with a thin B: N <= 16, N <= 32 with
 * M <= 64, or N <= 64 with M <= 32 (0.47-0.92; wider N up to 1.7x slower). At 2^17 the
 * gain rests on the cost of waking the second thread, 0.6 us here most of the time and
 * 1.0-1.1 in some spells: in a sweep run in such a spell the thin-B NT shapes of 2^17
 * read 1.11-1.16. TT and OpenBLAS's AVX2 kernels (0.3.21 has no small-matrix
 * kernels for them) were not measured and keep the rule below. The two blocks are fixed
 * by the shape and computed one after the other when there is one thread (or inside a
 * parallel region), so a result does not depend on the thread count (one call on all
 * the rows gives other bits in some NT shapes and at 2^20, past OpenBLAS's small-kernel
 * limit of 10^6). */
static bool sgemm_splits(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
    const int64_t mnk = M * N * K;
    if (mnk < (int64_t)1 << 17 || mnk > (int64_t)1 << 20 || M < 16 || (ta && tb) || openblas_kernels() != 2)
        return false;
    if (ta) return mnk >= (int64_t)1 << 18 && K >= 32;
    return !tb || N <= 16 || (N <= 32 && M <= 64) || (N <= 64 && M <= 32);
}

/* rows [r0, r1) of C = alpha * op(A) @ op(B) + beta * C through OpenBLAS */
static void sgemm_rows(bool ta, bool tb, int64_t r0, int64_t r1, int64_t N, int64_t K, float alpha, const float *A,
                       int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (r1 > r0)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)(r1 - r0),
                    (int)N, (int)K, alpha, A + (ta ? r0 : r0 * lda), (int)lda, B, (int)ldb, beta, C + r0 * ldc,
                    (int)ldc);
}

#ifdef CT_HAVE_DNNL
/* float32 A @ B^T (a linear layer's x W^T) with N >= 256 and K >= 32, and M <= 512 or
 * a narrow, deep B (N <= 256, K >= 1024), on an AVX-512 CPU: oneDNN in fixed blocks of
 * 128-256 columns (B's rows), an even number of them, split between the threads in
 * order, each a single-threaded call. oneDNN 2.6's own threading of these shapes with
 * its AVX-512 kernels leaves much of the two cores idle. On an AMD EPYC (Zen 4, two
 * threads) the blocks took, of its time: M 8..128 (N 256..4096, K 10..2048) 0.31-0.96
 * for M >= 16 (64 x 256 x 784 124 against 152 us; K = 1024 or 2048 about a third),
 * about the same at M = 8, and 0.35-0.95 of OpenBLAS's (the rule below chose OpenBLAS
 * for M <= 128, K >= 256), but at K = 10 or 16 some shapes ran slower (up to 1.8x),
 * hence K >= 32; M 1..4 (a batch of one) 0.84-1.08 of oneDNN's time (1.13-1.29 at
 * K = 64, N = 4096, under 10 us), where OpenBLAS took 1.4-13x oneDNN's from K = 256
 * (an odd number of blocks, 7 for N = 1000, left a thread idle for one: 1.12-1.19);
 * M 256..1024 0.54-1.00 (K >= 64); at M = 2048 and 4096 0.61-0.82 with N = 256 and
 * K >= 1024 (a Transformer's feed-forward output, 2048 x 256 x 1024: 6.8 -> 5.1 ms)
 * but 1.02-1.17 for wider N or shallower K. Each thread also reads only its own rows of
 * B, the halves an optimizer's elementwise step over B then writes. With oneDNN held to
 * AVX2 the blocks gained nothing, so other CPUs keep the rule below. The blocks are
 * fixed by N and computed in order on one thread, so a result does not depend on the
 * thread count. */
static bool sgemm_nt_blocks(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
    /* the CPU's ISA, not ct__cpu_isa()'s: CTORCH_CPU_ISA caps ctorch's own kernels, while
     * oneDNN goes on running its AVX-512 ones */
    return !ta && tb && N >= 256 && K >= 32 && (M <= 512 || (N <= 256 && K >= 1024)) &&
           ct__cpu_isa_hw() == CT_ISA_AVX512;
}

/* Where OpenBLAS's sgemm beats oneDNN 2.6's, by kernel family (measured on 2 threads):
 * - AVX-512 kernels (an Ice Lake Xeon): small products, where OpenBLAS's small-matrix
 *   kernels skip packing and oneDNN's threading costs more than the product: OpenBLAS
 *   ran 1.2-3.8x faster in 150 of 216 NN shapes with M, N, K in 16..128, and in nearly
 *   every one with M * N * K <= 2^18 (64^3: 3.0 against 5.3 us), TN likewise; NT for
 *   the smallest (M * N * K <= 2^15). From 96 x 96 x 64 up oneDNN was as fast or up to
 *   2x faster, the large shapes of the AVX2 rule below included (512^3: 1.18 against
 *   1.42 ms), except NT (B transposed: a linear layer's x W^T, an LSTM's h W_hh^T) with
 *   a thin A: OpenBLAS 1.2-1.67x faster for M <= 128 at K >= 256 (32 x 1024 x 256, an
 *   LSTM step: 134 against 220 us); at M = 256 the two tie. On an AMD EPYC (Zen 4),
 *   where 0.3.21 runs its Cooper Lake kernels, the NN threshold held: OpenBLAS was the
 *   faster in 56 of the 61 NN shapes (M, N, K in 16..256) between 2^17 and 2^18. The
 *   row blocks of sgemm_splits and the column blocks of sgemm_nt_blocks (above) come
 *   first: of the NT shapes here, those with N >= 256 and K >= 32 take oneDNN's blocks,
 *   which beat both libraries' own calls on that host.
 * - AVX2 kernels (an AVX2-only AMD EPYC): B (and A when transposed) is read down K with a row
 *   stride of N (of M): when that stride is a multiple of 512 floats and the other side
 *   of the product is thin, oneDNN's packing loses to cache-set conflicts (2 MiB-aligned
 *   operands, oneDNN / OpenBLAS time: NN and TN with N = 1024 or 2048 and M <= 256 at
 *   K >= 256: 1.3-2.2; N = 512, M <= 512, K >= 1024: 1.2-1.4; TN with M = 1024 or 2048
 *   and N = 256: 1.5-1.8 — a Transformer's feed-forward weight gradients; with the
 *   stride padded by 16 floats oneDNN was as fast as OpenBLAS). Elsewhere oneDNN is as
 *   fast or faster: small K (up to 2x), a thin side under 16 rows or, in the TN case,
 *   128 columns (OpenBLAS ran M = 1, N = K = 1024 at 9 GF/s against oneDNN's 30); large
 *   squares (1024^3, 2048^3) went either way by up to 10% from run to run and stay with
 *   oneDNN.
 * A fixed rule, not a timing: a shape always takes the same library on a machine, so
 * results repeat run to run. */
static bool sgemm_prefers_openblas(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
    int kind = openblas_kernels();
    if (kind == 2)
        return tb ? M * N * K <= (int64_t)1 << 15 || (!ta && M <= 128 && K >= 256) : M * N * K <= (int64_t)1 << 18;
    if (kind != 1 || tb || K < 256) return false;
    if (N % 512 == 0 && M >= 16 && (N == 512 ? M <= 512 && K >= 512 : M <= 256)) return true;
    return ta && M % 1024 == 0 && N >= 128 && N <= 256;
}
#endif

/* Row-major C = alpha * op(A) @ op(B) + beta * C for float32/float64 (declared in
 * cpu/loops.h for the other kernel families, e.g. convolution). */
void ct__cpu_gemm(ct_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void *A,
                  int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (dt == CT_FLOAT32) {
        if (sgemm_splits(ta, tb, M, N, K)) {
            /* two row blocks, fixed by the shape: the same calls on one thread or two */
            const float *a = A, *b = B;
            float *c = C;
            const int64_t h = ((M + 1) / 2 + 7) / 8 * 8;
            const float al = (float)alpha, be = (float)beta;
            CT_PARALLEL_NT_IF(blocks_fork(), 2, {
                const int t = omp_get_thread_num(), n = omp_get_num_threads();
                if (t == 0) sgemm_rows(ta, tb, 0, h, N, K, al, a, lda, b, ldb, be, c, ldc);
                if (t == n - 1) sgemm_rows(ta, tb, h, M, N, K, al, a, lda, b, ldb, be, c, ldc);
            });
            return;
        }
#ifdef CT_HAVE_DNNL
        if (sgemm_nt_blocks(ta, tb, M, N, K)) {
            const float *a = A, *b = B;
            float *c = C;
            const int64_t nb = (N / 128) & ~(int64_t)1; /* even: two threads share them evenly */
            const float al = (float)alpha, be = (float)beta;
            CT_PARALLEL_FOR_IF(blocks_fork(), for (int64_t j = 0; j < nb; j++), {
                const int64_t n0 = j * N / nb, n1 = (j + 1) * N / nb;
                if (dnnl_sgemm('N', 'T', M, n1 - n0, K, al, a, lda, b + n0 * ldb, ldb, be, c + n0, ldc) !=
                    dnnl_success)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)(n1 - n0), (int)K, al, a,
                                (int)lda, b + n0 * ldb, (int)ldb, be, c + n0, (int)ldc);
            });
            return;
        }
        /* dnnl_sgemm runs single-threaded inside a parallel region, as OpenBLAS does */
        if (!sgemm_prefers_openblas(ta, tb, M, N, K) &&
            dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, (float)alpha, (const float *)A, lda, (const float *)B,
                       ldb, (float)beta, (float *)C, ldc) == dnnl_success)
            return;
#endif
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, (float)alpha, (const float *)A, (int)lda, (const float *)B, (int)ldb, (float)beta,
                    (float *)C, (int)ldc);
    } else {
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, alpha, (const double *)A, (int)lda, (const double *)B, (int)ldb, beta, (double *)C,
                    (int)ldc);
    }
}

/* A training step's x @ W, W a [K, N] row-major parameter being trained (the GEMM
 * kernel's hint, set by the op in grad mode for a leaf that requires grad): K is cut
 * in two halves, thread t computes op(A)[:, K_t] @ W[K_t, :], and the two partial
 * products are added. Each thread thus reads only the rows of W that it writes when an
 * elementwise step over W (an optimizer's update, cut in halves) runs next: W stays
 * in that core's cache between the two (after oneDNN's own threading of the product
 * the update of the MLP's 784 x 256 W took 27 us in the step, after the split 13; 10
 * alone). The halves are fixed by K and computed in turn on one
 * thread (or inside a parallel region), so the result does not depend on the thread
 * count; it is not the bits of one call over all of K (the sum is cut in two), and
 * the same product outside a training step (no grad, or W not a leaf) keeps the one
 * call. */
static bool sgemm_ksplit(int64_t M, int64_t N, int64_t K) {
    return M <= 256 && N >= 32 && M * N * K >= (int64_t)1 << 18 && (K >= 512 || (K >= 256 && N <= 256));
}

static int sgemm_ksplit_run(bool ta, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    const int64_t h = K / 2;
    const size_t nbytes = (size_t)(M * N) * sizeof(float);
    float *tmp = ct__alloc(nbytes);
    if (!tmp) return ct_last_status();
    CT_PARALLEL_NT_IF(blocks_fork(), 2, {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        if (t == 0) ct__cpu_gemm(CT_FLOAT32, ta, false, M, N, h, alpha, A, lda, B, ldb, beta, C, ldc);
        if (t == n - 1)
            ct__cpu_gemm(CT_FLOAT32, ta, false, M, N, K - h, alpha, A + (ta ? h * lda : h), lda, B + h * ldb, ldb, 0.0,
                         tmp, N);
        _Pragma("omp barrier");
        for (int64_t i = M * t / n; i < M * (t + 1) / n; i++) {
            float *restrict c = C + i * ldc;
            const float *restrict p = tmp + i * N;
            _Pragma("omp simd") for (int64_t j = 0; j < N; j++) c[j] += p[j];
        }
    });
    ct__free(tmp, nbytes);
    return 0;
}

static void blas_call(ct_dtype dt, const blas_mat *A, const blas_mat *B, char *C, int64_t ldc, int64_t M, int64_t N,
                      int64_t K, double alpha, double beta, int64_t b) {
    const char *pa = A->base + b * A->bstride, *pb = B->base + b * B->bstride;
    switch (dt) {
    case CT_FLOAT32:
    case CT_FLOAT64:
        ct__cpu_gemm(dt, A->trans == CblasTrans, B->trans == CblasTrans, M, N, K, alpha, pa, A->ld, pb, B->ld, beta,
                     C, ldc);
        break;
    case CT_COMPLEX64: {
        ct_c64 al = (float)alpha, be = (float)beta;
        cblas_cgemm(CblasRowMajor, A->trans, B->trans, (int)M, (int)N, (int)K, (const void *)&al, (const void *)pa,
                    (int)A->ld, (const void *)pb, (int)B->ld, (const void *)&be, (void *)C, (int)ldc);
        break;
    }
    default: {
        ct_c128 al = alpha, be = beta;
        cblas_zgemm(CblasRowMajor, A->trans, B->trans, (int)M, (int)N, (int)K, (const void *)&al, (const void *)pa,
                    (int)A->ld, (const void *)pb, (int)B->ld, (const void *)&be, (void *)C, (int)ldc);
        break;
    }
    }
}

/* ---- small matrices (float32/float64) ----
 * Products of tiny matrices cost more in a BLAS call's setup than in arithmetic
 * (oneDNN's sgemm: 0.37-0.45 us for 4^3..16^3; OpenBLAS's 0.1-0.6 us), and a batch of
 * them paid that per matrix. Here each row of C is the sum over k, in order, of
 * A[i, k] * B[k, :], accumulated W = 8, 16 or 32 columns wide (fixed at compile time,
 * so the row stays in vector registers), then C = alpha * acc (+ beta * C). B's rows
 * are read in place when they are whole contiguous vectors (N = W), else copied into a
 * zero-padded [K, W] block first. Any strides. */
#define SMALL_N 32 /* N and K at most this */
/* Measured against the BLAS calls they replace, per product on one AVX2 core, in
 * process: float32 faster everywhere up to M * N * K = 8192 (4^3 0.17 against oneDNN's
 * 0.52 us, 8 x 32 x 32 0.39 against 0.77, 20^3 0.87 against 0.96), and up to 32768 when
 * N fills its vectors (32^3 1.09 against 1.38, 32 x 16 x 32 0.65 against 1.01); N = 24
 * (24^3: 1.29 against 0.95, a quarter of each row's vectors padding) and larger M
 * (128 x 32 x 32: 3.9 against 3.3 on two threads) stay with the BLAS. float64 (four
 * lanes a vector) likewise against OpenBLAS (16^3 0.42 against 0.63, 32^3 1.85 against
 * 2.59), except N between 17 and 31 but not a multiple of 8 (20^3: 1.09 against 0.94). */
static bool gemm_is_small(bool f64, int64_t M, int64_t N, int64_t K) {
    if (N > SMALL_N || K > SMALL_N) return false;
    int64_t mnk = M * N * K;
    bool full = N % 8 == 0;
    return (mnk <= 8192 && (!f64 || N <= 16 || full)) || (mnk <= 32768 && full);
}

/* V: a 32-byte vector of T (GCC vector extension; two halves on a baseline build);
 * VU: the same at any address (unaligned loads and stores) */
typedef float ct_v8f __attribute__((vector_size(32)));
typedef double ct_v4d __attribute__((vector_size(32)));
typedef float ct_v8fu __attribute__((vector_size(32), aligned(4), may_alias));
typedef double ct_v4du __attribute__((vector_size(32), aligned(8), may_alias));

/* n <= lanes values of alpha * *a (+ beta * dst) to dst, cs2 apart. Instantiated with
 * its caller's target attributes and always inlined (the vector stays in its register). */
#define SMALL_STORE(NAME, ATTR, T, V, VU)                                                                         \
    ATTR __attribute__((always_inline)) static inline void NAME(const V *a, T *dst, int64_t cs2, int64_t n,       \
                                                                T alpha, T beta) {                                \
        enum { L = (int)(sizeof(V) / sizeof(T)) };                                                                \
        if (cs2 == 1 && beta == 0 && n == L) {                                                                    \
            *(VU *)dst = alpha * *a;                                                                              \
            return;                                                                                               \
        }                                                                                                         \
        T t[L];                                                                                                   \
        *(VU *)t = *a;                                                                                            \
        for (int64_t j = 0; j < n; j++) {                                                                         \
            T x = alpha * t[j];                                                                                   \
            dst[j * cs2] = beta == 0 ? x : x + beta * dst[j * cs2];                                               \
        }                                                                                                         \
    }

/* The rows of C: R at a time (R * W / lanes = 8 accumulators, so that one row's adds
 * do not wait on each other), then the rows left one at a time. MADD(a, b, acc) is
 * acc + a * b: one fused multiply-add on CPUs with FMA (BLAS kernels fuse them too, so
 * a product's last bits depend on the CPU either way), a multiply and an add otherwise
 * (the library is built with -ffp-contract=off). The vector width only changes how
 * many columns one instruction covers: every value of C is the same sum in the same
 * order, so the 32- and 64-byte forms give the same bits. */
#define SMALL_ROWS(NAME, ATTR, T, V, VU, W, STORE, MADD)                                                          \
    ATTR __attribute__((always_inline)) static inline void NAME##_body(                                           \
        const T *A, int64_t as1, int64_t as2, const T *bp, int64_t ldb, T *C, int64_t cs1, int64_t cs2, int64_t M, \
        int64_t N, int64_t K, T alpha, T beta) {                                                                  \
        enum { L = (int)(sizeof(V) / sizeof(T)), NV = W / L, R = 8 / NV };                                        \
        int64_t i = 0;                                                                                            \
        for (; i + R <= M; i += R) {                                                                              \
            V acc[R][NV];                                                                                         \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                   \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = (V){0};                          \
            const T *arow = A + i * as1;                                                                          \
            for (int64_t k = 0; k < K; k++) {                                                                     \
                V b[NV];                                                                                          \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) b[v] = *(const VU *)(bp + k * ldb + v * L);  \
                _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                             \
                    const T av = arow[r * as1 + k * as2];                                                         \
                    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = MADD(av, b[v], acc[r][v]);   \
                }                                                                                                 \
            }                                                                                                     \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                   \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) if (v * L < N)                               \
                    STORE(&acc[r][v], C + (i + r) * cs1 + v * L * cs2, cs2, N - v * L < L ? N - v * L : L, alpha, \
                          beta);                                                                                  \
        }                                                                                                         \
        for (; i < M; i++) {                                                                                      \
            V acc[NV];                                                                                            \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[v] = (V){0};                                 \
            const T *arow = A + i * as1;                                                                          \
            for (int64_t k = 0; k < K; k++) {                                                                     \
                const T av = arow[k * as2];                                                                       \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                              \
                    acc[v] = MADD(av, *(const VU *)(bp + k * ldb + v * L), acc[v]);                               \
            }                                                                                                     \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) if (v * L < N)                                   \
                STORE(&acc[v], C + i * cs1 + v * L * cs2, cs2, N - v * L < L ? N - v * L : L, alpha, beta);       \
        }                                                                                                         \
    }                                                                                                             \
    ATTR static void NAME(const T *A, int64_t as1, int64_t as2, const T *bp, int64_t ldb, T *C, int64_t cs1,      \
                          int64_t cs2, int64_t M, int64_t N, int64_t K, T alpha, T beta) {                        \
        NAME##_body(A, as1, as2, bp, ldb, C, cs1, cs2, M, N, K, alpha, beta);                                     \
    }
#define MADD_PLAIN(a, b, acc) ((acc) + (a) * (b))
#define SMALL_ROWS_ALL(SFX, ATTR, MADD32, MADD64)                                                                 \
    SMALL_STORE(small_store_f32##SFX, ATTR, float, ct_v8f, ct_v8fu)                                               \
    SMALL_STORE(small_store_f64##SFX, ATTR, double, ct_v4d, ct_v4du)                                              \
    SMALL_ROWS(small_rows_f32_8##SFX, ATTR, float, ct_v8f, ct_v8fu, 8, small_store_f32##SFX, MADD32)              \
    SMALL_ROWS(small_rows_f32_16##SFX, ATTR, float, ct_v8f, ct_v8fu, 16, small_store_f32##SFX, MADD32)            \
    SMALL_ROWS(small_rows_f32_32##SFX, ATTR, float, ct_v8f, ct_v8fu, 32, small_store_f32##SFX, MADD32)            \
    SMALL_ROWS(small_rows_f64_8##SFX, ATTR, double, ct_v4d, ct_v4du, 8, small_store_f64##SFX, MADD64)             \
    SMALL_ROWS(small_rows_f64_16##SFX, ATTR, double, ct_v4d, ct_v4du, 16, small_store_f64##SFX, MADD64)           \
    SMALL_ROWS(small_rows_f64_32##SFX, ATTR, double, ct_v4d, ct_v4du, 32, small_store_f64##SFX, MADD64)
SMALL_ROWS_ALL(, , MADD_PLAIN, MADD_PLAIN)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_SMALL_X86 1
#define MADD_F32_FMA(a, b, acc) _mm256_fmadd_ps(_mm256_set1_ps(a), (b), (acc))
#define MADD_F64_FMA(a, b, acc) _mm256_fmadd_pd(_mm256_set1_pd(a), (b), (acc))
SMALL_ROWS_ALL(_fma, __attribute__((target("avx2,fma"))), MADD_F32_FMA, MADD_F64_FMA)
/* AVX-512: 64-byte vectors, for the widths that fill them (float32 16 and 32 columns,
 * float64 8, 16 and 32); float32's 8 columns stay with the 32-byte form. Each multiply-
 * add takes A's value as a broadcast memory operand: one instruction where the 32-byte
 * form needs a broadcast and a multiply-add for half the columns (16^3: 0.23 -> 0.15 us). */
typedef float ct_v16f __attribute__((vector_size(64)));
typedef double ct_v8d __attribute__((vector_size(64)));
typedef float ct_v16fu __attribute__((vector_size(64), aligned(4), may_alias));
typedef double ct_v8du __attribute__((vector_size(64), aligned(8), may_alias));
#define ATTR_512 __attribute__((target("avx512f")))
#define MADD_F32_512(a, b, acc) _mm512_fmadd_ps(_mm512_set1_ps(a), (b), (acc))
#define MADD_F64_512(a, b, acc) _mm512_fmadd_pd(_mm512_set1_pd(a), (b), (acc))
/* The 64-byte store: a masked store for a row's last, partial vector (the generic
 * store's element loop, unrolled sixteen wide for each of eight rows, made the kernel
 * 30 KB and slower than the 32-byte one); the same products and sums, rounded alike. */
#define SMALL_STORE_512(NAME, T, V, MASK, SUF)                                                                    \
    ATTR_512 __attribute__((always_inline)) static inline void NAME(const V *a, T *dst, int64_t cs2, int64_t n,   \
                                                                    T alpha, T beta) {                            \
        if (cs2 != 1) {                                                                                           \
            T t[sizeof(V) / sizeof(T)];                                                                           \
            memcpy(t, a, sizeof t);                                                                               \
            _Pragma("GCC unroll 1") for (int64_t j = 0; j < n; j++) {                                             \
                T x = alpha * t[j];                                                                               \
                dst[j * cs2] = beta == 0 ? x : x + beta * dst[j * cs2];                                           \
            }                                                                                                     \
            return;                                                                                               \
        }                                                                                                         \
        const MASK m = (MASK)(((uint32_t)1 << n) - 1);                                                            \
        V v = _mm512_mul_##SUF(_mm512_set1_##SUF(alpha), *a);                                                     \
        if (beta != 0) v = _mm512_add_##SUF(v, _mm512_mul_##SUF(_mm512_set1_##SUF(beta),                         \
                                                                 _mm512_maskz_loadu_##SUF(m, dst)));              \
        _mm512_mask_storeu_##SUF(dst, m, v);                                                                      \
    }
SMALL_STORE_512(small_store_f32_512, float, ct_v16f, __mmask16, ps)
SMALL_STORE_512(small_store_f64_512, double, ct_v8d, __mmask8, pd)
SMALL_ROWS(small_rows_f32_16_512, ATTR_512, float, ct_v16f, ct_v16fu, 16, small_store_f32_512, MADD_F32_512)
SMALL_ROWS(small_rows_f32_32_512, ATTR_512, float, ct_v16f, ct_v16fu, 32, small_store_f32_512, MADD_F32_512)
SMALL_ROWS(small_rows_f64_8_512, ATTR_512, double, ct_v8d, ct_v8du, 8, small_store_f64_512, MADD_F64_512)
SMALL_ROWS(small_rows_f64_16_512, ATTR_512, double, ct_v8d, ct_v8du, 16, small_store_f64_512, MADD_F64_512)
SMALL_ROWS(small_rows_f64_32_512, ATTR_512, double, ct_v8d, ct_v8du, 32, small_store_f64_512, MADD_F64_512)
#define small_rows_f32_8_512 small_rows_f32_8_fma
/* The same rows for the common case of a fresh product of contiguous matrices (A's and
 * C's rows contiguous, N = W, beta = 0), with those as constants: the strided address
 * arithmetic and the generic store drop out (16^3 float32: 88 -> 79 ns); the same sums
 * in the same order, so the same bits. */
#define SMALL_DENSE(NAME, T, W)                                                                                   \
    ATTR_512 static void NAME##_dense(const T *A, int64_t as1, const T *bp, int64_t ldb, T *C, int64_t cs1,       \
                                      int64_t M, int64_t K, T alpha) {                                            \
        NAME##_body(A, as1, 1, bp, ldb, C, cs1, 1, M, W, K, alpha, 0);                                            \
    }
SMALL_DENSE(small_rows_f32_16_512, float, 16)
SMALL_DENSE(small_rows_f32_32_512, float, 32)
SMALL_DENSE(small_rows_f64_8_512, double, 8)
SMALL_DENSE(small_rows_f64_16_512, double, 16)
SMALL_DENSE(small_rows_f64_32_512, double, 32)
#define small_rows_f32_8_512_dense NULL
#endif

/* isa: 0 portable, 1 AVX2 + FMA, 2 AVX-512 */
#ifdef CT_SMALL_X86
#define SMALL_PICK(isa, name) ((isa) == 2 ? name##_512 : (isa) == 1 ? name##_fma : name)
#define SMALL_DENSE_CALL(isa, T, R8, R16, R32)                                                                    \
    if ((isa) == 2 && N == W && bs[2] == 1 && as[2] == 1 && cs[2] == 1 && beta == 0) {                            \
        void (*dense)(const T *, int64_t, const T *, int64_t, T *, int64_t, int64_t, int64_t, T) =                \
            W == 8 ? R8##_512_dense : W == 16 ? R16##_512_dense : R32##_512_dense;                                \
        if (dense) {                                                                                              \
            dense(A, as[1], B, bs[1], C, cs[1], M, K, alpha);                                                     \
            return;                                                                                               \
        }                                                                                                         \
    }
#else
#define SMALL_PICK(isa, name) name
#define SMALL_DENSE_CALL(isa, T, R8, R16, R32)
#endif
#define SMALL_GEMM(NAME, T, R8, R16, R32)                                                                         \
    static void NAME(int isa, const T *A, const int64_t *as, const T *B, const int64_t *bs, T *C,                 \
                     const int64_t *cs, int64_t M, int64_t N, int64_t K, T alpha, T beta) {                       \
        (void)isa;                                                                                                \
        const int64_t W = N <= 8 ? 8 : N <= 16 ? 16 : 32;                                                         \
        SMALL_DENSE_CALL(isa, T, R8, R16, R32)                                                                    \
        const T *bp = B;                                                                                          \
        int64_t ldb = bs[1];                                                                                      \
        T pack[SMALL_N * SMALL_N];                                                                                \
        if (N != W || bs[2] != 1) { /* B's rows copied W wide, zero padded */                                     \
            for (int64_t k = 0; k < K; k++)                                                                       \
                for (int64_t j = 0; j < W; j++) pack[k * W + j] = j < N ? B[k * bs[1] + j * bs[2]] : 0;           \
            bp = pack;                                                                                            \
            ldb = W;                                                                                              \
        }                                                                                                         \
        if (W == 8) SMALL_PICK(isa, R8)(A, as[1], as[2], bp, ldb, C, cs[1], cs[2], M, N, K, alpha, beta);         \
        else if (W == 16) SMALL_PICK(isa, R16)(A, as[1], as[2], bp, ldb, C, cs[1], cs[2], M, N, K, alpha, beta);  \
        else SMALL_PICK(isa, R32)(A, as[1], as[2], bp, ldb, C, cs[1], cs[2], M, N, K, alpha, beta);               \
    }
SMALL_GEMM(small_gemm_f32, float, small_rows_f32_8, small_rows_f32_16, small_rows_f32_32)
SMALL_GEMM(small_gemm_f64, double, small_rows_f64_8, small_rows_f64_16, small_rows_f64_32)

/* C = alpha * A @ B + beta * C over the batches of 3-D operands */
static void small_gemm(const ct_tensor *A, const ct_tensor *B, ct_tensor *C, double alpha, double beta) {
    const int64_t nb = C->sizes[0], M = C->sizes[1], N = C->sizes[2], K = A->sizes[2];
    const int64_t *as = A->strides, *bs = B->strides, *cs = C->strides;
    const bool f32 = C->dtype == CT_FLOAT32;
    const char *pa = ct__data(A), *pb = ct__data(B);
    char *pc = ct__data(C);
    const int64_t es = f32 ? 4 : 8;
    const ct_cpu_isa cpu = ct__cpu_isa();
    const int isa = cpu == CT_ISA_AVX512 ? 2 : cpu == CT_ISA_AVX2 ? 1 : 0; /* AVX2 implies FMA here */
#define SMALL_BATCH(b)                                                                                            \
    do {                                                                                                          \
        const char *a_ = pa + (b) * as[0] * es, *b_ = pb + (b) * bs[0] * es;                                      \
        char *c_ = pc + (b) * cs[0] * es;                                                                         \
        if (f32)                                                                                                  \
            small_gemm_f32(isa, (const float *)a_, as, (const float *)b_, bs, (float *)c_, cs, M, N, K,           \
                           (float)alpha, (float)beta);                                                            \
        else                                                                                                      \
            small_gemm_f64(isa, (const double *)a_, as, (const double *)b_, bs, (double *)c_, cs, M, N, K, alpha,  \
                           beta);                                                                                 \
    } while (0)
    if (nb > 1 && nb * M * N * K >= CT_GRAIN) {
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < nb; b++) SMALL_BATCH(b);
    } else {
        for (int64_t b = 0; b < nb; b++) SMALL_BATCH(b); /* no OpenMP region: it costs more than a small product */
    }
#undef SMALL_BATCH
}

/* ---- generic loop for the other dtypes ---- */
#define GEN_GEMM(NAME, ST, ACC, LD, STO)                                                                          \
    static void NAME(const ct_tensor *A, const ct_tensor *B, ct_tensor *C, double alpha, double beta) {            \
        const int64_t nb = C->sizes[0], M = C->sizes[1], N = C->sizes[2], K = A->sizes[2];                         \
        const int64_t *as = A->strides, *bs = B->strides, *cs = C->strides;                                        \
        const ST *pa = ct__data(A), *pb = ct__data(B);                                                             \
        ST *pc = ct__data(C);                                                                                      \
        const ACC al = (ACC)alpha, be = (ACC)beta;                                                                 \
        CT_PARALLEL_IF(nb * M * N * K > CT_GRAIN && nb * M > 1, {                                                 \
            ACC *acc = malloc(sizeof(ACC) * (size_t)(N > 0 ? N : 1));                                              \
            _Pragma("omp for schedule(static)")                                                                   \
            for (int64_t r = 0; r < nb * M; r++) {                                                                 \
                int64_t b = r / M, i = r % M;                                                                      \
                const ST *arow = pa + b * as[0] + i * as[1];                                                       \
                const ST *bmat = pb + b * bs[0];                                                                   \
                ST *crow = pc + b * cs[0] + i * cs[1];                                                             \
                for (int64_t j0 = 0; j0 < N; j0 += 256) {                                                          \
                    int64_t j1 = j0 + 256 < N ? j0 + 256 : N;                                                      \
                    ACC local[256];                                                                                \
                    ACC *ac = acc ? acc + j0 : local;                                                              \
                    for (int64_t j = j0; j < j1; j++) ac[j - j0] = 0;                                              \
                    for (int64_t k = 0; k < K; k++) {                                                              \
                        ACC av = LD(arow[k * as[2]]);                                                              \
                        const ST *brow = bmat + k * bs[1];                                                         \
                        if (bs[2] == 1)                                                                            \
                            for (int64_t j = j0; j < j1; j++) ac[j - j0] += av * (ACC)LD(brow[j]);                 \
                        else                                                                                       \
                            for (int64_t j = j0; j < j1; j++) ac[j - j0] += av * (ACC)LD(brow[j * bs[2]]);         \
                    }                                                                                              \
                    for (int64_t j = j0; j < j1; j++) {                                                            \
                        ACC v = al * ac[j - j0];                                                                   \
                        if (be != 0) v += be * (ACC)LD(crow[j * cs[2]]);                                           \
                        crow[j * cs[2]] = STO(v);                                                                  \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
            free(acc);                                                                                             \
        });                                                                                                        \
    }

#define ST_CAST_U8(v) ((uint8_t)(v))
#define ST_CAST_I8(v) ((int8_t)(v))
#define ST_CAST_I16(v) ((int16_t)(v))
#define ST_CAST_I32(v) ((int32_t)(v))
GEN_GEMM(gemm_f16, ct_half, float, LD_F16, ST_F16)
GEN_GEMM(gemm_bf16, ct_bf16, float, LD_BF16, ST_BF16)
GEN_GEMM(gemm_u8, uint8_t, int64_t, LD_ID, ST_CAST_U8)
GEN_GEMM(gemm_i8, int8_t, int64_t, LD_ID, ST_CAST_I8)
GEN_GEMM(gemm_i16, int16_t, int64_t, LD_ID, ST_CAST_I16)
GEN_GEMM(gemm_i32, int32_t, int64_t, LD_ID, ST_CAST_I32)
GEN_GEMM(gemm_i64, int64_t, int64_t, LD_ID, ST_ID)

/* out = beta * out (K == 0: the product is empty) */
static void scale_out(ct_tensor *C, double beta) {
    if (beta == 0) { ct__fill_raw(C, 0); return; }
    if (beta == 1) return;
    size_t es = ct_dtype_size(C->dtype);
    char *p = ct__data(C);
    for (int64_t b = 0; b < C->sizes[0]; b++)
        for (int64_t i = 0; i < C->sizes[1]; i++)
            for (int64_t j = 0; j < C->sizes[2]; j++) {
                char *q = p + (b * C->strides[0] + i * C->strides[1] + j * C->strides[2]) * (int64_t)es;
                if (ct_dtype_is_integral(C->dtype, true)) ct__store_i64(q, C->dtype, ct__load_i64(q, C->dtype) * (int64_t)beta);
                else ct__store_c128(q, C->dtype, ct__load_c128(q, C->dtype) * beta);
            }
}

static int gemm_kernel(const ct_kernel_args *a) {
    ct_tensor *C = a->out[0];
    const ct_tensor *A = a->in[0], *B = a->in[1];
    if (C->ndim != 3 || A->ndim != 3 || B->ndim != 3 || A->dtype != C->dtype || B->dtype != C->dtype)
        return ct__errs(CT_ERR_RUNTIME, "gemm: internal error: expected 3-D operands of one dtype");
    const int64_t nb = C->sizes[0], M = C->sizes[1], N = C->sizes[2], K = A->sizes[2];
    double alpha = a->d[0], beta = a->d[1];
    if (nb == 0 || M == 0 || N == 0) return 0;
    if (K == 0) { scale_out(C, beta); return 0; }
    ct_dtype dt = C->dtype;
    if ((dt == CT_FLOAT32 || dt == CT_FLOAT64) && gemm_is_small(dt == CT_FLOAT64, M, N, K)) {
        small_gemm(A, B, C, alpha, beta);
        return 0;
    }
    if (dt == CT_FLOAT32 || dt == CT_FLOAT64 || dt == CT_COMPLEX64 || dt == CT_COMPLEX128) {
        bool c_ok = (C->strides[2] == 1 || N == 1) && (M == 1 || (C->strides[1] >= N && C->strides[1] <= INT32_MAX)) &&
                    M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX; /* BLAS takes int sizes and strides */
        if (!c_ok) {
            /* compute into a contiguous buffer and copy back */
            ct_tensor *tmp = ct__empty_raw(3, C->sizes, dt);
            if (!tmp) return ct_last_status();
            int rc = 0;
            if (beta != 0) rc = ct__copy_raw(tmp, C);
            if (!rc) {
                ct_kernel_args b2 = *a;
                b2.out[0] = tmp;
                rc = gemm_kernel(&b2);
            }
            if (!rc) rc = ct__copy_raw(C, tmp);
            ct_release(tmp);
            return rc;
        }
        blas_mat bA, bB;
        ct_tensor *tA, *tB;
        if (blas_prepare(A, &bA, &tA)) return ct_last_status();
        if (blas_prepare(B, &bB, &tB)) { ct_release(tA); return ct_last_status(); }
        int64_t ldc = M == 1 ? N : C->strides[1];
        if (ldc < 1) ldc = 1;
        if (a->i[0] && dt == CT_FLOAT32 && nb == 1 && bB.trans == CblasNoTrans && sgemm_ksplit(M, N, K)) {
            int rc = sgemm_ksplit_run(bA.trans == CblasTrans, M, N, K, (float)alpha, (const float *)bA.base, bA.ld,
                                      (const float *)bB.base, bB.ld, (float)beta, ct__data(C), ldc);
            ct_release(tA);
            ct_release(tB);
            return rc;
        }
        size_t es = ct_dtype_size(dt);
        char *pc = ct__data(C);
        int64_t cbs = C->strides[0] * (int64_t)es;
        /* Batches split over the threads, one single-threaded BLAS call each, whenever
         * there are at least as many batches as threads: one parallel region instead of
         * one per call (each BLAS call opening its own region costs milliseconds when
         * the cores are shared, e.g. attention's [batch*heads, L, L] products). Few large
         * matrices go to BLAS's own threads. */
        if (nb == 1 || (nb < omp_get_max_threads() && M * N * K >= 64 * 64 * 64)) {
            for (int64_t b = 0; b < nb; b++) blas_call(dt, &bA, &bB, pc + b * cbs, ldc, M, N, K, alpha, beta, b);
        } else {
            CT_PARALLEL_FOR_IF(nb * M * N * K > CT_GRAIN, for (int64_t b = 0; b < nb; b++),
                               blas_call(dt, &bA, &bB, pc + b * cbs, ldc, M, N, K, alpha, beta, b););
        }
        ct_release(tA);
        ct_release(tB);
        return 0;
    }
#ifdef CT_HAVE_DNNL
    if (dt == CT_BFLOAT16) {
        int rc = ct__dnnl_matmul(A, B, C, alpha, beta);
        if (rc <= 0) return rc; /* done, or failed with a message; > 0: declined */
    }
#endif
    switch (dt) {
    case CT_FLOAT16: gemm_f16(A, B, C, alpha, beta); break;
    case CT_BFLOAT16: gemm_bf16(A, B, C, alpha, beta); break;
    case CT_UINT8: gemm_u8(A, B, C, alpha, beta); break;
    case CT_INT8: gemm_i8(A, B, C, alpha, beta); break;
    case CT_INT16: gemm_i16(A, B, C, alpha, beta); break;
    case CT_INT32: gemm_i32(A, B, C, alpha, beta); break;
    case CT_INT64: gemm_i64(A, B, C, alpha, beta); break;
    default: return ct__errs(CT_ERR_DTYPE, "\"addmm_impl_cpu_\" not implemented for '%s'", ct_dtype_name(dt));
    }
    return 0;
}

/* ---- element copies with a computed source offset ---- */
static inline void copy_elem(char *dst, const char *src, size_t es) {
    switch (es) {
    case 1: memcpy(dst, src, 1); break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, 16); break;
    }
}

/* one output row from src, elements sinner bytes apart (negative: a flipped last dim);
 * the reversed row in the ISA clones' vectors (vector loads and a lane permute), read
 * forward and written backward: read backward, the loads waited on memory (flip of
 * [4096, 1024] float32 on one thread 2.34-2.55 -> 2.23-2.37 ms) */
#define FLIP_ROW_FN(NAME, T)                                                                                      \
    CT_LOOP_ATTR static void NAME(char *dst, const char *src, int64_t inner, int64_t sinner) {                    \
        T *o_ = (T *)dst;                                                                                         \
        if (sinner == -(int64_t)sizeof(T)) {                                                                      \
            const T *s_ = (const T *)src - (inner - 1);                                                           \
            for (int64_t j = 0; j < inner; j++) o_[inner - 1 - j] = s_[j];                                        \
        } else {                                                                                                  \
            for (int64_t j = 0; j < inner; j++) memcpy(&o_[j], src + j * sinner, sizeof(T));                      \
        }                                                                                                         \
    }
FLIP_ROW_FN(flip_row_2, uint16_t)
FLIP_ROW_FN(flip_row_4, uint32_t)
FLIP_ROW_FN(flip_row_8, uint64_t)

/* FLIP: out (contiguous) <- in with the dims flagged in iv reversed. */
static int flip_kernel(const ct_kernel_args *a) {
    ct_tensor *out = a->out[0];
    const ct_tensor *in = a->in[0];
    if (!ct__is_contiguous(out)) return ct__errs(CT_ERR_RUNTIME, "flip: internal error: output must be contiguous");
    const int nd = in->ndim;
    const size_t es = ct_dtype_size(in->dtype);
    int64_t st[CT_MAX_DIMS];
    const char *base = ct__data(in);
    for (int d = 0; d < nd; d++) {
        bool f = d < a->n_iv && a->iv[d];
        st[d] = (f ? -in->strides[d] : in->strides[d]) * (int64_t)es;
        if (f && in->sizes[d] > 0) base += (in->sizes[d] - 1) * in->strides[d] * (int64_t)es;
    }
    if (in->numel == 0) return 0;
    const int64_t inner = nd ? in->sizes[nd - 1] : 1, rows = in->numel / inner;
    const int64_t sinner = nd ? st[nd - 1] : 0;
    char *po = ct__data(out);
    CT_PARALLEL_FOR_IF(in->numel > CT_GRAIN, for (int64_t r = 0; r < rows; r++), {
        int64_t rem = r;
        const char *src = base;
        for (int d = nd - 2; d >= 0; d--) { src += (rem % in->sizes[d]) * st[d]; rem /= in->sizes[d]; }
        char *dst = po + r * inner * (int64_t)es;
        if (sinner == (int64_t)es) { /* the last dim not flipped: a row is one run */
            memcpy(dst, src, (size_t)(inner * (int64_t)es));
            continue;
        }
        switch (es) { /* typed loops (a reversed row becomes vector loads and a permute) */
        case 2: flip_row_2(dst, src, inner, sinner); break;
        case 4: flip_row_4(dst, src, inner, sinner); break;
        case 8: flip_row_8(dst, src, inner, sinner); break;
        default:
            for (int64_t j = 0; j < inner; j++) copy_elem(dst + j * (int64_t)es, src + j * sinner, es);
            break;
        }
    });
    return 0;
}

/* TRIL / TRIU: out (contiguous) <- in with elements outside the triangle zeroed. */
static int tril_kernel(const ct_kernel_args *a) {
    ct_tensor *out = a->out[0];
    const ct_tensor *in = a->in[0];
    if (!ct__is_contiguous(out) || in->ndim < 2) return ct__errs(CT_ERR_RUNTIME, "tril: internal error");
    const int nd = in->ndim;
    const int64_t R = in->sizes[nd - 2], Cn = in->sizes[nd - 1], k = a->i[0];
    const bool upper = a->i[1] != 0;
    const size_t es = ct_dtype_size(in->dtype);
    if (in->numel == 0) return 0;
    const int64_t rows = in->numel / Cn;
    const char *pi = ct__data(in);
    char *po = ct__data(out);
    CT_PARALLEL_FOR_IF(in->numel > CT_GRAIN, for (int64_t r = 0; r < rows; r++), {
        int64_t i = r % R, rem = r / R;
        const char *src = pi + i * in->strides[nd - 2] * (int64_t)es;
        for (int d = nd - 3; d >= 0; d--) { src += (rem % in->sizes[d]) * in->strides[d] * (int64_t)es; rem /= in->sizes[d]; }
        char *dst = po + r * Cn * (int64_t)es;
        const int64_t sc = in->strides[nd - 1] * (int64_t)es;
        /* the row keeps columns [j0, j1) (j - i <= k below, >= k above): one copy and
         * at most two zero fills, a memcpy where the input row is contiguous */
        const int64_t kk = k > Cn ? Cn : k < -R ? -R : k; /* no overflow for any diagonal */
        int64_t j0 = upper ? i + kk : 0, j1 = upper ? Cn : i + kk + 1;
        j0 = j0 < 0 ? 0 : j0 > Cn ? Cn : j0;
        j1 = j1 < j0 ? j0 : j1 > Cn ? Cn : j1;
        memset(dst, 0, (size_t)(j0 * (int64_t)es));
        if (sc == (int64_t)es) memcpy(dst + j0 * (int64_t)es, src + j0 * sc, (size_t)((j1 - j0) * (int64_t)es));
        else
            for (int64_t j = j0; j < j1; j++) copy_elem(dst + j * (int64_t)es, src + j * sc, es);
        memset(dst + j1 * (int64_t)es, 0, (size_t)((Cn - j1) * (int64_t)es));
    });
    return 0;
}

void ct_cpu_register_linalg(ct_kernel_fn *k) {
    k[CT_OP_GEMM] = gemm_kernel;
    k[CT_OP_FLIP] = flip_kernel;
    k[CT_OP_TRIL] = tril_kernel;
}
