/* Fused scaled dot-product attention on the CPU, float32 and float64 (flash-attention
 * style: the [L, S] scores are never held whole, only one block of them at a time).
 *
 * (Which products the front end sends here: FUSED_MIN_PAIRS in src/ops/attention.c.)
 * CT_OP_SDPA_FLASH: in[0] q [N, L, E], in[1] k [N, S, E], in[2] v [N, S, Ev], all
 *   contiguous; d[0] the scale, i[0] causal (query row i sees keys j <= i, PyTorch's
 *   top-left aligned mask). out[0] o [N, L, Ev], out[1] lse [N, L] (each row's
 *   log-sum-exp of its scaled scores, what the backward needs to rebuild the
 *   probabilities). Per block of BR query rows, the keys in blocks of BC: s = scale q k^T
 *   (one GEMM), an online softmax (a row's running max m and sum l; when the max grows
 *   the row's partial output and sum are rescaled by exp(m_old - m_new)), o += p v (one
 *   GEMM); at the end o /= l and lse = m + log(l).
 * CT_OP_SDPA_FLASH_BWD: in[0] do [N, L, Ev], in[1] q, in[2] k, in[3] v, in[4] lse
 *   [N, L], in[5] dd [N, L] = rowsum(do * o) - dlse (computed by the caller). out[0] dq,
 *   out[1] dk, out[2] dv. Per block pair: p = exp(scale q k^T - lse) (recomputed),
 *   dv += p^T do, dp = do v^T, ds = p (dp - dd), dq += scale ds k, dk += scale ds^T q:
 *   five GEMMs, the products written straight into the gradients.
 * The GEMMs are ct__cpu_gemm's (oneDNN's sgemm / OpenBLAS): single-threaded when the
 * blocks run on several threads, BLAS's own threads when there are fewer (query blocks)
 * or batch-heads than threads. The exp is the exp op's own loop. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/loops.h"

enum { BR = 64, BC = 256 }; /* query rows x keys per block: the scores block is 64 KiB in float32 */

/* keys of query row i (absolute) that block [j0, j0 + bc) holds unmasked: [0, lim) */
static inline int64_t row_keys(bool causal, int64_t i, int64_t j0, int64_t bc) {
    if (!causal) return bc;
    int64_t lim = i - j0 + 1;
    return lim < 0 ? 0 : lim > bc ? bc : lim;
}

#define SDPA_KERNELS(T, SFX)                                                                                       \
    /* s[0..n) -= m (the exp follows through the exp op's loop) */                                                     \
    CT_LOOP_ATTR static void shift_##SFX(T *s, int64_t n, T m) {                                                \
        for (int64_t c = 0; c < n; c++) s[c] -= m;                                                              \
    }                                                                                                           \
    CT_LOOP_ATTR static T rowmax_##SFX(const T *s, int64_t n) {                                                 \
        T mx = -INFINITY;                                                                                       \
        for (int64_t c = 0; c < n; c++) mx = s[c] > mx ? s[c] : mx;                                             \
        return mx;                                                                                              \
    }                                                                                                           \
    CT_LOOP_ATTR static T rowsum_##SFX(const T *s, int64_t n) {                                                 \
        T acc = 0;                                                                                              \
        for (int64_t c = 0; c < n; c++) acc += s[c];                                                            \
        return acc;                                                                                             \
    }                                                                                                           \
    CT_LOOP_ATTR static void scale_row_##SFX(T *o, int64_t n, T a) {                                            \
        for (int64_t c = 0; c < n; c++) o[c] *= a;                                                              \
    }                                                                                                           \
    CT_LOOP_ATTR static void zero_row_##SFX(T *o, int64_t n) {                                                  \
        for (int64_t c = 0; c < n; c++) o[c] = 0;                                                               \
    }                                                                                                           \
    /* ds = p * (dp - d) over a row, in place in dp */                                                          \
    CT_LOOP_ATTR static void dsoft_row_##SFX(const T *p, T *dp, int64_t n, T d) {                               \
        for (int64_t c = 0; c < n; c++) dp[c] = p[c] * (dp[c] - d);                                             \
    }                                                                                                           \
    /* One block of query rows [i0, i0 + br) of one batch-head. s: BR * BC scratch. */                          \
    static void fwd_block_##SFX(const T *q, const T *k, const T *v, T *o, T *lse, int64_t S, int64_t E,         \
                                int64_t Ev, int64_t i0, int64_t br, bool causal, double scale, T *s, T *m, T *l) { \
        ct_dtype dt = sizeof(T) == 4 ? CT_FLOAT32 : CT_FLOAT64;                                                 \
        int64_t kend = causal && i0 + br < S ? i0 + br : S;                                                     \
        for (int64_t r = 0; r < br; r++) m[r] = -INFINITY, l[r] = 0, zero_row_##SFX(o + (i0 + r) * Ev, Ev);     \
        for (int64_t j0 = 0; j0 < kend; j0 += BC) {                                                             \
            int64_t bc = kend - j0 < BC ? kend - j0 : BC;                                                       \
            ct__cpu_gemm(dt, false, true, br, bc, E, scale, q + i0 * E, E, k + j0 * E, E, 0.0, s, bc);          \
            for (int64_t r = 0; r < br; r++) {                                                                  \
                T *sr = s + r * bc, *orow = o + (i0 + r) * Ev;                                                  \
                int64_t lim = row_keys(causal, i0 + r, j0, bc);                                                 \
                if (lim == 0) { zero_row_##SFX(sr, bc); continue; } /* every key of the block masked */        \
                T mx = rowmax_##SFX(sr, lim), mn = mx > m[r] ? mx : m[r];                                       \
                shift_##SFX(sr, lim, mn);                                                                       \
                ct__cpu_unary_contig(CT_OP_EXP, dt, sr, sr, lim);                                               \
                zero_row_##SFX(sr + lim, bc - lim);                                                             \
                T a = m[r] == -INFINITY ? (T)0 : (T)exp((double)(m[r] - mn)); /* rescale what came before */  \
                if (a != 1) scale_row_##SFX(orow, Ev, a);                                                       \
                l[r] = l[r] * a + rowsum_##SFX(sr, lim);                                                        \
                m[r] = mn;                                                                                      \
            }                                                                                                   \
            ct__cpu_gemm(dt, false, false, br, Ev, bc, 1.0, s, bc, v + j0 * Ev, Ev, 1.0, o + i0 * Ev, Ev);      \
        }                                                                                                       \
        for (int64_t r = 0; r < br; r++) {                                                                      \
            scale_row_##SFX(o + (i0 + r) * Ev, Ev, (T)1 / l[r]);                                                \
            lse[i0 + r] = m[r] + (T)log((double)l[r]);                                                          \
        }                                                                                                       \
    }                                                                                                           \
    static int fwd_##SFX(const ct_kernel_args *a) {                                                             \
        const ct_tensor *Q = a->in[0], *K = a->in[1], *V = a->in[2];                                            \
        const int64_t N = Q->sizes[0], L = Q->sizes[1], E = Q->sizes[2], S = K->sizes[1], Ev = V->sizes[2];     \
        const T *q = ct__data(Q), *k = ct__data(K), *v = ct__data(V);                                           \
        T *o = ct__data(a->out[0]), *lse = ct__data(a->out[1]);                                                 \
        const bool causal = a->i[0];                                                                            \
        const double scale = a->d[0];                                                                           \
        const int64_t nq = (L + BR - 1) / BR, tasks = N * nq;                                                   \
        int fail = 0;                                                                                           \
        _Pragma("omp parallel if (tasks >= omp_get_max_threads() && tasks > 1) reduction(| : fail)")           \
        {                                                                                                       \
            T *s = malloc(sizeof(T) * (BR * BC + 2 * BR));                                                      \
            if (!s) fail = 1;                                                                                   \
            /* dynamic: with a causal mask the later query blocks have more keys */                            \
            _Pragma("omp for schedule(dynamic, 1)")                                                            \
            for (int64_t t = 0; t < tasks; t++) {                                                               \
                if (!s) continue;                                                                               \
                int64_t b = t / nq, i0 = t % nq * BR, br = L - i0 < BR ? L - i0 : BR;                           \
                fwd_block_##SFX(q + b * L * E, k + b * S * E, v + b * S * Ev, o + b * L * Ev, lse + b * L, S, E, \
                                Ev, i0, br, causal, scale, s, s + BR * BC, s + BR * BC + BR);                   \
            }                                                                                                   \
            free(s);                                                                                            \
        }                                                                                                       \
        return fail ? ct__errs(CT_ERR_OOM, "scaled_dot_product_attention: out of memory") : 0;                  \
    }                                                                                                           \
    /* Backward of one batch-head (its dq, dk, dv are its own: no two threads share one). */                   \
    static void bwd_head_##SFX(const T *dO, const T *q, const T *k, const T *v, const T *lse, const T *dd,       \
                               T *dq, T *dk, T *dv, int64_t L, int64_t S, int64_t E, int64_t Ev, bool causal,    \
                               double scale, T *p, T *dp) {                                                     \
        ct_dtype dt = sizeof(T) == 4 ? CT_FLOAT32 : CT_FLOAT64;                                                 \
        zero_row_##SFX(dq, L * E);                                                                              \
        zero_row_##SFX(dk, S * E);                                                                              \
        zero_row_##SFX(dv, S * Ev);                                                                             \
        for (int64_t i0 = 0; i0 < L; i0 += BR) {                                                                \
            int64_t br = L - i0 < BR ? L - i0 : BR, kend = causal && i0 + br < S ? i0 + br : S;                 \
            for (int64_t j0 = 0; j0 < kend; j0 += BC) {                                                         \
                int64_t bc = kend - j0 < BC ? kend - j0 : BC;                                                   \
                ct__cpu_gemm(dt, false, true, br, bc, E, scale, q + i0 * E, E, k + j0 * E, E, 0.0, p, bc);      \
                for (int64_t r = 0; r < br; r++) {                                                              \
                    T *pr = p + r * bc;                                                                         \
                    int64_t lim = row_keys(causal, i0 + r, j0, bc);                                             \
                    shift_##SFX(pr, lim, lse[i0 + r]);                                                          \
                    ct__cpu_unary_contig(CT_OP_EXP, dt, pr, pr, lim);                                           \
                    zero_row_##SFX(pr + lim, bc - lim);                                                         \
                }                                                                                               \
                /* dv_j += p^T do_i; dp = do_i v_j^T */                                                         \
                ct__cpu_gemm(dt, true, false, bc, Ev, br, 1.0, p, bc, dO + i0 * Ev, Ev, 1.0, dv + j0 * Ev, Ev); \
                ct__cpu_gemm(dt, false, true, br, bc, Ev, 1.0, dO + i0 * Ev, Ev, v + j0 * Ev, Ev, 0.0, dp, bc);  \
                for (int64_t r = 0; r < br; r++) dsoft_row_##SFX(p + r * bc, dp + r * bc, bc, dd[i0 + r]);      \
                /* dq_i += scale ds k_j; dk_j += scale ds^T q_i */                                              \
                ct__cpu_gemm(dt, false, false, br, E, bc, scale, dp, bc, k + j0 * E, E, 1.0, dq + i0 * E, E);   \
                ct__cpu_gemm(dt, true, false, bc, E, br, scale, dp, bc, q + i0 * E, E, 1.0, dk + j0 * E, E);    \
            }                                                                                                   \
        }                                                                                                       \
    }                                                                                                           \
    static int bwd_##SFX(const ct_kernel_args *a) {                                                             \
        const ct_tensor *Q = a->in[1], *K = a->in[2], *V = a->in[3];                                            \
        const int64_t N = Q->sizes[0], L = Q->sizes[1], E = Q->sizes[2], S = K->sizes[1], Ev = V->sizes[2];     \
        const T *dO = ct__data(a->in[0]), *q = ct__data(Q), *k = ct__data(K), *v = ct__data(V);                 \
        const T *lse = ct__data(a->in[4]), *dd = ct__data(a->in[5]);                                            \
        T *dq = ct__data(a->out[0]), *dk = ct__data(a->out[1]), *dv = ct__data(a->out[2]);                      \
        const bool causal = a->i[0];                                                                            \
        const double scale = a->d[0];                                                                           \
        int fail = 0;                                                                                           \
        _Pragma("omp parallel if (N >= omp_get_max_threads() && N > 1) reduction(| : fail)")                   \
        {                                                                                                       \
            T *p = malloc(sizeof(T) * 2 * BR * BC);                                                             \
            if (!p) fail = 1;                                                                                   \
            _Pragma("omp for schedule(dynamic, 1)")                                                            \
            for (int64_t b = 0; b < N; b++) {                                                                   \
                if (!p) continue;                                                                               \
                bwd_head_##SFX(dO + b * L * Ev, q + b * L * E, k + b * S * E, v + b * S * Ev, lse + b * L,      \
                               dd + b * L, dq + b * L * E, dk + b * S * E, dv + b * S * Ev, L, S, E, Ev, causal, \
                               scale, p, p + BR * BC);                                                          \
            }                                                                                                   \
            free(p);                                                                                            \
        }                                                                                                       \
        return fail ? ct__errs(CT_ERR_OOM, "scaled_dot_product_attention backward: out of memory") : 0;         \
    }
SDPA_KERNELS(float, f32)
SDPA_KERNELS(double, f64)

static int cpu_sdpa_flash(const ct_kernel_args *a) {
    switch (a->in[0]->dtype) {
    case CT_FLOAT32: return fwd_f32(a);
    case CT_FLOAT64: return fwd_f64(a);
    default: return ct__errs(CT_ERR_DTYPE, "scaled_dot_product_attention: fused kernel for float32/float64 only, got %s",
                             ct_dtype_name(a->in[0]->dtype));
    }
}

static int cpu_sdpa_flash_backward(const ct_kernel_args *a) {
    switch (a->in[1]->dtype) {
    case CT_FLOAT32: return bwd_f32(a);
    case CT_FLOAT64: return bwd_f64(a);
    default:
        return ct__errs(CT_ERR_DTYPE, "scaled_dot_product_attention backward: fused kernel for float32/float64 only, got %s",
                        ct_dtype_name(a->in[1]->dtype));
    }
}

void ct_cpu_register_attention(ct_kernel_fn *k) {
    k[CT_OP_SDPA_FLASH] = cpu_sdpa_flash;
    k[CT_OP_SDPA_FLASH_BWD] = cpu_sdpa_flash_backward;
}
