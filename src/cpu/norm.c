/* Fused CPU kernels for layer and group normalisation (torch.native_layer_norm,
 * torch.native_group_norm and their backwards).
 *
 * CT_OP_LAYER_NORM: in[0] x contiguous, viewed as [i[0] rows N, i[1] row size M];
 *   in[1] weight, in[2] bias (contiguous [M], either may be NULL); d[0] eps.
 *   out[0] y (contiguous like x), out[1] mean [N], out[2] rstd [N]:
 *   mean = sum(x) / M, rstd = 1 / sqrt(var_biased + eps), y = (x * rstd - mean * rstd) * w + b.
 * CT_OP_LAYER_NORM_BACKWARD: in[0] dy, in[1] x (contiguous [N, M]), in[2] mean, in[3] rstd
 *   ([N]), in[4] weight ([M] or NULL); i[0] N, i[1] M. out[0] dx ([N, M]), out[1] dweight,
 *   out[2] dbias ([M]); each may be NULL (not wanted), so the call has n_out 0 and
 *   dispatches on in[0]'s device.
 * CT_OP_GROUP_NORM / CT_OP_GROUP_NORM_BACKWARD: the same with x [i[0] N, i[1] C, i[2] HxW]
 *   normalised in rows of C / i[3] channels (mean, rstd [N * G]); weight, bias [C].
 * All tensors float32 or float64, one dtype; layer_norm also float16 / bfloat16 (x, y,
 * weight, bias, dy and the gradients of that type, mean and rstd float32), computed row
 * by row in float32 and rounded once, as PyTorch's opmath. Statistics accumulate in
 * the tensor's type (float32 for the half types); the column sums of dweight and dbias
 * in double. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/loops.h"

/* Row sums in four independent vector accumulators of 64 bytes (GCC/Clang vector
 * extensions: one register each on AVX-512, two on AVX2, four halves on SSE), then one
 * accumulator over the remaining whole vectors: a single accumulator (what omp simd
 * reduction gives) makes each add wait for the previous one. The accumulators are added
 * (a0 + a1) + (a2 + a3), its lanes in order, then the tail elements in order: the same
 * result on every ISA clone and thread count. [4096, 1024] float32 forward: 0.87-0.91
 * of the time with single accumulators; 64-byte accumulators instead of 32-byte ones:
 * [128, 1024] in cache on one thread 42.6 -> 34.5 us. */
#define LN_HSUM(T, L, a0, a1, a2, a3)                                                                      \
    ({                                                                                                     \
        __typeof__(a0) a_ = ((a0) + (a1)) + ((a2) + (a3));                                                 \
        T s_ = 0;                                                                                          \
        for (int k_ = 0; k_ < (L); k_++) s_ += a_[k_];                                                     \
        s_;                                                                                                \
    })
#define LN_SUM_KERNELS(T, VT, SFX)                                                                         \
    enum { LN_L_##SFX = 64 / sizeof(T) };                                                                  \
    /* sum of x[j] */                                                                                      \
    __attribute__((always_inline)) static inline T ln_sum_##SFX(const T *x, int64_t M) {                   \
        const int L = LN_L_##SFX;                                                                          \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                                         \
        int64_t j = 0;                                                                                     \
        for (; j + 4 * L <= M; j += 4 * L) {                                                               \
            a0 += LOADV(VT, x + j), a1 += LOADV(VT, x + j + L);                                            \
            a2 += LOADV(VT, x + j + 2 * L), a3 += LOADV(VT, x + j + 3 * L);                                \
        }                                                                                                  \
        for (; j + L <= M; j += L) a0 += LOADV(VT, x + j);                                                 \
        T s = LN_HSUM(T, L, a0, a1, a2, a3);                                                               \
        for (; j < M; j++) s += x[j];                                                                      \
        return s;                                                                                          \
    }                                                                                                      \
    /* sums of d = x[j] - mean and of d * d */                                                             \
    __attribute__((always_inline)) static inline void ln_dev_sums_##SFX(const T *x, T mean, int64_t M,     \
                                                                       T *r_o, T *q_o) {                   \
        const int L = LN_L_##SFX;                                                                          \
        VT r0 = {0}, r1 = {0}, r2 = {0}, r3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};                 \
        int64_t j = 0;                                                                                     \
        for (; j + 4 * L <= M; j += 4 * L) {                                                               \
            VT d0 = LOADV(VT, x + j) - mean, d1 = LOADV(VT, x + j + L) - mean;                             \
            VT d2 = LOADV(VT, x + j + 2 * L) - mean, d3 = LOADV(VT, x + j + 3 * L) - mean;                 \
            r0 += d0, r1 += d1, r2 += d2, r3 += d3;                                                        \
            q0 += d0 * d0, q1 += d1 * d1, q2 += d2 * d2, q3 += d3 * d3;                                    \
        }                                                                                                  \
        for (; j + L <= M; j += L) {                                                                       \
            VT d0 = LOADV(VT, x + j) - mean;                                                               \
            r0 += d0, q0 += d0 * d0;                                                                       \
        }                                                                                                  \
        T r = LN_HSUM(T, L, r0, r1, r2, r3), q = LN_HSUM(T, L, q0, q1, q2, q3);                            \
        for (; j < M; j++) {                                                                               \
            T d = x[j] - mean;                                                                             \
            r += d, q += d * d;                                                                            \
        }                                                                                                  \
        *r_o = r, *q_o = q;                                                                                \
    }                                                                                                      \
    /* sums of g = dy[j] * w[j] (dy[j] without w) and of g * xh, xh = (x[j] - mean) * rstd */              \
    __attribute__((always_inline)) static inline void ln_grad_sums_##SFX(const T *dy, const T *w, const T *x, \
                                                                        T mean, T rstd, int64_t M, T *sg_o, \
                                                                        T *sgx_o) {                        \
        const int L = LN_L_##SFX;                                                                          \
        VT g0 = {0}, g1 = {0}, g2 = {0}, g3 = {0}, p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};                 \
        int64_t j = 0;                                                                                     \
        for (; j + 4 * L <= M; j += 4 * L) {                                                               \
            VT v[4], h[4];                                                                                 \
            for (int u = 0; u < 4; u++) {                                                                  \
                v[u] = LOADV(VT, dy + j + u * L);                                                          \
                if (w) v[u] = v[u] * LOADV(VT, w + j + u * L);                                             \
                h[u] = (LOADV(VT, x + j + u * L) - mean) * rstd;                                           \
            }                                                                                              \
            g0 += v[0], g1 += v[1], g2 += v[2], g3 += v[3];                                                \
            p0 += v[0] * h[0], p1 += v[1] * h[1], p2 += v[2] * h[2], p3 += v[3] * h[3];                    \
        }                                                                                                  \
        for (; j + L <= M; j += L) {                                                                       \
            VT v0 = LOADV(VT, dy + j);                                                                     \
            if (w) v0 = v0 * LOADV(VT, w + j);                                                             \
            g0 += v0, p0 += v0 * ((LOADV(VT, x + j) - mean) * rstd);                                       \
        }                                                                                                  \
        T sg = LN_HSUM(T, L, g0, g1, g2, g3), sgx = LN_HSUM(T, L, p0, p1, p2, p3);                         \
        for (; j < M; j++) {                                                                               \
            T g = w ? dy[j] * w[j] : dy[j];                                                                \
            sg += g, sgx += g * ((x[j] - mean) * rstd);                                                    \
        }                                                                                                  \
        *sg_o = sg, *sgx_o = sgx;                                                                          \
    }
LN_SUM_KERNELS(float, ct_v16f, f32)
LN_SUM_KERNELS(double, ct_v8d, f64)

/* A row's last, elementwise pass in blocks of 64 elements, each block first prefetching
 * PF(j0 + u) for its cache lines: the forward and backward read their rows once from
 * memory in the first (reduction) pass, and without a look-ahead the memory is idle in
 * the last one; fetching the row two ahead (PF2: rows are contiguous, a thread takes
 * consecutive rows; a prefetch past the end does not fault) overlaps the two. [4096,
 * 1024] float32 forward, same-process A/B: one row ahead 0.84-0.90 of the time without
 * a look-ahead, two rows ahead 0.84-0.88 of one row ahead. */
#define PF2(p) __builtin_prefetch((p) + 2 * M + j0 + u)
#define LN_ROW_LOOP(T, M, PF, BODY)                                                                        \
    do {                                                                                                   \
        int64_t j0 = 0;                                                                                    \
        for (; j0 + 64 <= (M); j0 += 64) {                                                                 \
            for (int64_t u = 0; u < 64; u += 64 / (int64_t)sizeof(T)) PF;                                  \
            _Pragma("omp simd") for (int64_t j = j0; j < j0 + 64; j++) BODY;                               \
        }                                                                                                  \
        if (j0 < (M)) {                                                                                    \
            for (int64_t u = 0; u < 64; u += 64 / (int64_t)sizeof(T)) PF;                                  \
            _Pragma("omp simd") for (int64_t j = j0; j < (M); j++) BODY;                                   \
        }                                                                                                  \
    } while (0)

/* One row forward. Two passes: the mean, then the squared deviations corrected by the
 * mean's residual (sum of deviations), which absorbs the rounding of the mean. */
#define LN_FWD_ROW(T, SFX, SQRT)                                                                           \
    __attribute__((always_inline)) static inline void ln_stats_##SFX(const T *x, int64_t M, T eps, T *mean_o, \
                                                                    T *rstd_o) {                           \
        T mean = ln_sum_##SFX(x, M) / (T)M, r, q;                                                          \
        ln_dev_sums_##SFX(x, mean, M, &r, &q);                                                             \
        T var = (q - r * r / (T)M) / (T)M;                                                                 \
        if (var < 0) var = 0;                                                                              \
        *mean_o = mean, *rstd_o = (T)1 / SQRT(var + eps);                                                  \
    }                                                                                                      \
    CT_LOOP_ATTR static void ln_fwd_row_##SFX(const T *x, const T *w, const T *b, T *y, T *mean_o, T *rstd_o, \
                                              int64_t M, T eps) {                                          \
        T mean, rstd;                                                                                      \
        ln_stats_##SFX(x, M, eps, &mean, &rstd);                                                           \
        T nb = -mean * rstd;                                                                               \
        *mean_o = mean, *rstd_o = rstd;                                                                    \
        if (w && b) LN_ROW_LOOP(T, M, PF2(x), y[j] = (x[j] * rstd + nb) * w[j] + b[j]);                    \
        else if (w) LN_ROW_LOOP(T, M, PF2(x), y[j] = (x[j] * rstd + nb) * w[j]);                           \
        else if (b) LN_ROW_LOOP(T, M, PF2(x), y[j] = (x[j] * rstd + nb) + b[j]);                           \
        else LN_ROW_LOOP(T, M, PF2(x), y[j] = x[j] * rstd + nb);                                           \
    }
LN_FWD_ROW(float, f32, sqrtf)
LN_FWD_ROW(double, f64, sqrt)

/* One row backward: with g = dy * w and xh = (x - mean) * rstd,
 * dx = rstd * (g - mean(g) - xh * mean(g * xh)); dw += dy * xh; db += dy. */
#define LN_BWD_ROW(T, SFX)                                                                                 \
    CT_LOOP_ATTR static void ln_bwd_row_##SFX(const T *dy, const T *x, const T *w, T mean, T rstd, int64_t M, \
                                              T *dx, double *dw, double *db) {                             \
        if (dx) {                                                                                          \
            T sg, sgx;                                                                                     \
            ln_grad_sums_##SFX(dy, w, x, mean, rstd, M, &sg, &sgx);                                        \
            T c1 = sg / (T)M, c2 = sgx / (T)M;                                                             \
            if (w)                                                                                         \
                LN_ROW_LOOP(T, M, (PF2(x), PF2(dy)),                                                       \
                            dx[j] = rstd * (dy[j] * w[j] - c1 - ((x[j] - mean) * rstd) * c2));             \
            else                                                                                           \
                LN_ROW_LOOP(T, M, (PF2(x), PF2(dy)), dx[j] = rstd * (dy[j] - c1 - ((x[j] - mean) * rstd) * c2)); \
        }                                                                                                  \
        if (dw) {                                                                                          \
            _Pragma("omp simd")                                                                            \
            for (int64_t j = 0; j < M; j++) dw[j] += (double)(dy[j] * ((x[j] - mean) * rstd));             \
        }                                                                                                  \
        if (db) {                                                                                          \
            _Pragma("omp simd")                                                                            \
            for (int64_t j = 0; j < M; j++) db[j] += (double)dy[j];                                        \
        }                                                                                                  \
    }
LN_BWD_ROW(float, f32)
LN_BWD_ROW(double, f64)

/* Group normalisation (torch.native_group_norm): the (sample, group) row of D channel
 * planes of HW elements takes layer_norm's statistics (ln_stats); each plane's weight
 * and bias fold with them into one scale and shift, y = x * a + s with a = rstd * w[c]
 * and s = b[c] - mean * a, as PyTorch's kernel computes it. The planes are read again
 * right after the statistics (a row of [32, 64, 56, 56] in 32 groups is 25 KB, in L2)
 * while the row two ahead is prefetched, as in layer_norm. */
#define GN_ROWS(T, SFX)                                                                                    \
    CT_LOOP_ATTR static void gn_fwd_row_##SFX(const T *x, const T *w, const T *b, T *y, T *mean_o, T *rstd_o, \
                                              int64_t D, int64_t HW, T eps) {                              \
        const int64_t M = D * HW;                                                                          \
        T mean, rstd;                                                                                      \
        ln_stats_##SFX(x, M, eps, &mean, &rstd);                                                           \
        *mean_o = mean, *rstd_o = rstd;                                                                    \
        for (int64_t c = 0; c < D; c++) {                                                                  \
            const T *xp = x + c * HW;                                                                      \
            T *yp = y + c * HW, a = w ? rstd * w[c] : rstd, sh = (b ? b[c] : (T)0) - mean * a;            \
            LN_ROW_LOOP(T, HW, PF2(xp), yp[j] = xp[j] * a + sh);                                           \
        }                                                                                                  \
    }                                                                                                      \
    /* One row backward. Per plane c: sums[2c] = sum(dy), sums[2c + 1] = sum(dy * (x - mean))          \
     * (deviations from the known mean, not PyTorch's sum(dy * x) - mean * sum(dy), which              \
     * cancels when the mean is large). With sb, sd their w-weighted sums over the row,               \
     * layer_norm's dx = rstd * (g - mean(g) - xh * mean(g * xh)), g = dy * w[c], becomes              \
     * dx = rstd * w[c] * dy - rstd^3 * sd / M * (x - mean) - rstd * sb / M. */                         \
    CT_LOOP_ATTR static void gn_bwd_row_##SFX(const T *dy, const T *x, const T *w, T mean, T rstd, int64_t D, \
                                              int64_t HW, T *dx, double *sums) {                           \
        const int64_t M = D * HW;                                                                          \
        for (int64_t c = 0; c < D; c++) {                                                                  \
            T sg, sgx;                                                                                     \
            ln_grad_sums_##SFX(dy + c * HW, NULL, x + c * HW, mean, (T)1, HW, &sg, &sgx);                  \
            sums[2 * c] = sg, sums[2 * c + 1] = sgx;                                                       \
        }                                                                                                  \
        if (!dx) return;                                                                                   \
        double sb = 0, sd = 0, r = rstd;                                                                   \
        for (int64_t c = 0; c < D; c++) {                                                                  \
            double wc = w ? (double)w[c] : 1.0;                                                            \
            sb += wc * sums[2 * c], sd += wc * sums[2 * c + 1];                                            \
        }                                                                                                  \
        T c2 = (T)(-r * r * r * sd / (double)M), c3 = (T)(-r * sb / (double)M);                            \
        for (int64_t c = 0; c < D; c++) {                                                                  \
            const T *xp = x + c * HW, *gp = dy + c * HW;                                                   \
            T *dp = dx + c * HW, c1 = w ? rstd * w[c] : rstd;                                              \
            LN_ROW_LOOP(T, HW, (PF2(xp), PF2(gp)), dp[j] = c1 * gp[j] + c2 * (xp[j] - mean) + c3);        \
        }                                                                                                  \
    }
GN_ROWS(float, f32)
GN_ROWS(double, f64)

/* One dtype throughout, float32 or float64; for layer_norm also a half type with its
 * row statistics (mean, rstd: the forward's out[1], out[2], the backward's in[2], in[3])
 * in float32. */
static bool ln_dtype_ok(const ct_kernel_args *a) {
    ct_dtype dt = a->in[0]->dtype;
    bool half = ct__is_half(dt) && (a->op == CT_OP_LAYER_NORM || a->op == CT_OP_LAYER_NORM_BACKWARD);
    if (dt != CT_FLOAT32 && dt != CT_FLOAT64 && !half) return false;
    bool bwd = a->op == CT_OP_LAYER_NORM_BACKWARD || a->op == CT_OP_GROUP_NORM_BACKWARD;
    for (int k = 0; k < a->n_in; k++) {
        bool stat = bwd && (k == 2 || k == 3);
        if (a->in[k] && a->in[k]->dtype != (stat && half ? CT_FLOAT32 : dt)) return false;
    }
    for (int k = 0; k < 3; k++) {
        bool stat = !bwd && k > 0;
        if (a->out[k] && a->out[k]->dtype != (stat && half ? CT_FLOAT32 : dt)) return false;
    }
    return true;
}

/* One half-type row forward: the row widened into the scratch t, float32 statistics,
 * then the last pass 256 outputs at a time into a block rounded straight into y (the
 * float32 row kernel's expressions, so the same bits as it on the widened row, rounded
 * once; one pass over a float32 output row fewer). */
#define LN_HALF_BLOCK 256
CT_LOOP_ATTR static void ln_fwd_row_half(ct_dtype dt, const void *x, const float *w, const float *b, void *y,
                                         float *mean_o, float *rstd_o, int64_t M, float eps, float *t) {
    ct__half_widen(dt, t, x, M);
    float mean, rstd;
    ln_stats_f32(t, M, eps, &mean, &rstd);
    float nb = -mean * rstd, blk[LN_HALF_BLOCK];
    *mean_o = mean, *rstd_o = rstd;
    for (int64_t j0 = 0; j0 < M; j0 += LN_HALF_BLOCK) {
        int64_t m = M - j0 < LN_HALF_BLOCK ? M - j0 : LN_HALF_BLOCK;
        const float *tx = t + j0, *wj = w ? w + j0 : NULL, *bj = b ? b + j0 : NULL;
        if (wj && bj) for (int64_t j = 0; j < m; j++) blk[j] = (tx[j] * rstd + nb) * wj[j] + bj[j];
        else if (wj) for (int64_t j = 0; j < m; j++) blk[j] = (tx[j] * rstd + nb) * wj[j];
        else if (bj) for (int64_t j = 0; j < m; j++) blk[j] = (tx[j] * rstd + nb) + bj[j];
        else for (int64_t j = 0; j < m; j++) blk[j] = tx[j] * rstd + nb;
        ct__half_narrow(dt, (char *)y + 2 * j0, blk, m);
    }
}

/* A half-type weight or bias widened once (NULL when absent; *fail set when out of
 * memory). */
static float *half_param(const ct_tensor *t, int64_t M, bool *fail) {
    if (!t) return NULL;
    float *f = malloc(sizeof(float) * (size_t)M);
    if (!f) *fail = true;
    else ct__half_widen(t->dtype, f, ct__data(t), M);
    return f;
}

/* layer_norm forward of a half type: each row through ln_fwd_row_half ([4096, 1024]
 * bfloat16 on two threads: 27.6 ms as the composite of bfloat16 ops, 1.6 ms with a
 * float32 output row and compiler-vectorised conversions, 1.24-1.29 now; PyTorch
 * 1.06-1.3). */
static int layer_norm_half(const ct_kernel_args *a, int64_t N, int64_t M) {
    const ct_tensor *x = a->in[0];
    ct_dtype dt = x->dtype;
    bool fail = false;
    float *wf = half_param(a->in[1], M, &fail), *bf = half_param(a->in[2], M, &fail);
    const char *xd = ct__data(x);
    char *yd = ct__data(a->out[0]);
    float *md = ct__data(a->out[1]), *rd = ct__data(a->out[2]);
    const size_t es = 2;
    if (!fail) {
        CT_PARALLEL_IF(N > 1 && N * M >= CT_GRAIN, {
            float *t = malloc(sizeof(float) * (size_t)M);
            if (!t) {
                _Pragma("omp atomic write")
                fail = true;
            }
            _Pragma("omp for schedule(static)")
            for (int64_t i = 0; i < N; i++) {
                if (!t) continue;
                ln_fwd_row_half(dt, xd + (size_t)(i * M) * es, wf, bf, yd + (size_t)(i * M) * es, md + i, rd + i, M,
                                (float)a->d[0], t);
            }
            free(t);
        });
    }
    free(wf);
    free(bf);
    return fail ? ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op)) : 0;
}

static int ln_refuse(const ct_kernel_args *a) {
    return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(a->in[0]->dtype));
}

static int cpu_layer_norm(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a)) return ln_refuse(a);
    int64_t N = a->i[0], M = a->i[1];
    if (N == 0 || M == 0) return 0;
    const ct_tensor *x = a->in[0], *w = a->in[1], *b = a->in[2];
    ct_tensor *y = a->out[0], *mo = a->out[1], *ro = a->out[2];
    double eps = a->d[0];
    if (ct__is_half(x->dtype)) return layer_norm_half(a, N, M);
    /* each row into y, or, when the op's memory would not stay in the caches anyway,
     * into an L1 scratch row streamed out with non-temporal stores (cpu/loops.h) */
#define LN_FWD_ROWS(T, SFX)                                                                                \
    do {                                                                                                   \
        const T *xd = ct__data(x), *wd = w ? ct__data(w) : NULL, *bd = b ? ct__data(b) : NULL;             \
        T *yd = ct__data(y), *md = ct__data(mo), *rd = ct__data(ro);                                       \
        bool nt = ct__stream_worthwhile(2 * sizeof(T) * (size_t)(N * M));                                  \
        CT_PARALLEL_IF(N > 1 && N * M >= CT_GRAIN, {                                                     \
            T *row = nt ? malloc(sizeof(T) * (size_t)M) : NULL;                                            \
            _Pragma("omp for schedule(static)") for (int64_t i = 0; i < N; i++) {                          \
                ln_fwd_row_##SFX(xd + i * M, wd, bd, row ? row : yd + i * M, md + i, rd + i, M, (T)eps);   \
                if (row) ct__stream_copy(yd + i * M, row, sizeof(T) * (size_t)M);                          \
            }                                                                                              \
            if (row) ct__stream_fence();                                                                   \
            free(row);                                                                                     \
        });                                                                                                \
    } while (0)
    if (x->dtype == CT_FLOAT32) LN_FWD_ROWS(float, f32);
    else LN_FWD_ROWS(double, f64);
#undef LN_FWD_ROWS
    return 0;
}

static int cpu_layer_norm_backward(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a)) return ln_refuse(a);
    int64_t N = a->i[0], M = a->i[1];
    const ct_tensor *dy = a->in[0], *x = a->in[1], *mean = a->in[2], *rstd = a->in[3], *w = a->in[4];
    ct_tensor *dx = a->out[0], *dw = a->out[1], *db = a->out[2];
    ct_dtype dt = x->dtype;
    bool f32 = dt == CT_FLOAT32, half = ct__is_half(dt), fail = false;
    if (M == 0) return 0;
    /* Rows split into one contiguous block per thread; each thread sums its block's
     * dweight / dbias columns into its own double buffer, and the buffers are added in
     * thread order (the same result for the same thread count). */
    int nt = N > 1 && N * M >= CT_GRAIN ? ct__num_threads() : 1;
    if (nt > N) nt = (int)N;
    if (nt < 1) nt = 1;
    double *part = NULL;
    if (dw || db) {
        part = calloc((size_t)nt * 2 * (size_t)M, sizeof(double));
        if (!part) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    }
    /* a half type: the weight widened once, each row's dy and x widened into float32
     * scratch, dx rounded back */
    float *wf = half ? half_param(w, M, &fail) : NULL;
    if (fail) {
        free(part);
        return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    }
    const char *dyd = ct__data(dy), *xd = ct__data(x), *md = ct__data(mean), *rd = ct__data(rstd);
    const char *wd = w ? ct__data(w) : NULL;
    char *dxd = dx ? ct__data(dx) : NULL;
    CT_PARALLEL_NT_IF(nt > 1, nt, {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t r0 = N * t / T, r1 = N * (t + 1) / T;
        double *pw = part && dw ? part + (size_t)t * 2 * (size_t)M : NULL;
        double *pb = part && db ? part + (size_t)t * 2 * (size_t)M + M : NULL;
        float *sc = half ? malloc(sizeof(float) * 3 * (size_t)M) : NULL;
        if (half && !sc) {
            _Pragma("omp atomic write")
            fail = true;
        }
        for (int64_t i = r0; i < r1 && !(half && !sc); i++) {
            if (half) {
                ct__half_widen(dt, sc, dyd + (size_t)(i * M) * 2, M);
                ct__half_widen(dt, sc + M, xd + (size_t)(i * M) * 2, M);
                ln_bwd_row_f32(sc, sc + M, wf, ((const float *)md)[i], ((const float *)rd)[i], M,
                               dxd ? sc + 2 * M : NULL, pw, pb);
                if (dxd) ct__half_narrow(dt, dxd + (size_t)(i * M) * 2, sc + 2 * M, M);
            } else if (f32)
                ln_bwd_row_f32((const float *)dyd + i * M, (const float *)xd + i * M, (const float *)wd,
                               ((const float *)md)[i], ((const float *)rd)[i], M, dxd ? (float *)dxd + i * M : NULL,
                               pw, pb);
            else
                ln_bwd_row_f64((const double *)dyd + i * M, (const double *)xd + i * M, (const double *)wd,
                               ((const double *)md)[i], ((const double *)rd)[i], M,
                               dxd ? (double *)dxd + i * M : NULL, pw, pb);
        }
        free(sc);
    });
    free(wf);
    if (fail) {
        free(part);
        return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    }
    for (int k = 0; k < 2; k++) {
        ct_tensor *o = k ? db : dw;
        if (!o) continue;
        char *od = ct__data(o);
        for (int64_t j = 0; j < M; j++) {
            double s = 0;
            for (int t = 0; t < nt; t++) s += part[(size_t)t * 2 * (size_t)M + (size_t)k * (size_t)M + (size_t)j];
            if (f32) ((float *)od)[j] = (float)s;
            else if (half) ct__store_f64(od + 2 * j, dt, s); /* via float32, rounded once more */
            else ((double *)od)[j] = s;
        }
    }
    free(part);
    return 0;
}

/* CT_OP_GROUP_NORM: rows of N * G (sample, group) pairs, split between threads. */
static int cpu_group_norm(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a)) return ln_refuse(a);
    int64_t N = a->i[0], C = a->i[1], HW = a->i[2], G = a->i[3];
    if (N == 0 || C == 0 || HW == 0) return 0;
    int64_t R = N * G, D = C / G, M = D * HW;
    const char *xd = ct__data(a->in[0]), *wd = a->in[1] ? ct__data(a->in[1]) : NULL;
    const char *bd = a->in[2] ? ct__data(a->in[2]) : NULL;
    char *yd = ct__data(a->out[0]), *md = ct__data(a->out[1]), *rd = ct__data(a->out[2]);
    double eps = a->d[0];
    if (a->in[0]->dtype == CT_FLOAT32) {
        CT_PARALLEL_FOR_IF(R > 1 && R * M >= CT_GRAIN, for (int64_t r = 0; r < R; r++),
                           gn_fwd_row_f32((const float *)xd + r * M, wd ? (const float *)wd + r % G * D : NULL,
                                          bd ? (const float *)bd + r % G * D : NULL, (float *)yd + r * M,
                                          (float *)md + r, (float *)rd + r, D, HW, (float)eps););
    } else {
        CT_PARALLEL_FOR_IF(R > 1 && R * M >= CT_GRAIN, for (int64_t r = 0; r < R; r++),
                           gn_fwd_row_f64((const double *)xd + r * M, wd ? (const double *)wd + r % G * D : NULL,
                                          bd ? (const double *)bd + r % G * D : NULL, (double *)yd + r * M,
                                          (double *)md + r, (double *)rd + r, D, HW, eps););
    }
    return 0;
}

/* CT_OP_GROUP_NORM_BACKWARD: rows split between threads, each keeping its planes' two
 * sums in sums[2 * (n * C + c) ...]; dweight[c] = sum over n of sum(dy * (x - mean)) * rstd
 * and dbias[c] = sum over n of sum(dy), added in sample order (the same bits for every
 * thread count). */
static int cpu_group_norm_backward(const ct_kernel_args *a) {
    if (!ln_dtype_ok(a)) return ln_refuse(a);
    int64_t N = a->i[0], C = a->i[1], HW = a->i[2], G = a->i[3];
    ct_tensor *dx = a->out[0];
    bool f32 = a->in[0]->dtype == CT_FLOAT32;
    int64_t R = N * G, D = G ? C / G : 0, M = D * HW;
    if (C == 0) return 0;
    double *sums = calloc((size_t)(2 * N * C) + 1, sizeof(double));
    if (!sums) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    const char *dyd = ct__data(a->in[0]), *xd = ct__data(a->in[1]), *md = ct__data(a->in[2]);
    const char *rd = ct__data(a->in[3]), *wd = a->in[4] ? ct__data(a->in[4]) : NULL;
    char *dxd = dx ? ct__data(dx) : NULL;
    if (HW > 0) {
        if (f32) {
            CT_PARALLEL_FOR_IF(R > 1 && R * M >= CT_GRAIN, for (int64_t r = 0; r < R; r++),
                               gn_bwd_row_f32((const float *)dyd + r * M, (const float *)xd + r * M,
                                              wd ? (const float *)wd + r % G * D : NULL, ((const float *)md)[r],
                                              ((const float *)rd)[r], D, HW, dxd ? (float *)dxd + r * M : NULL,
                                              sums + 2 * r * D););
        } else {
            CT_PARALLEL_FOR_IF(R > 1 && R * M >= CT_GRAIN, for (int64_t r = 0; r < R; r++),
                               gn_bwd_row_f64((const double *)dyd + r * M, (const double *)xd + r * M,
                                              wd ? (const double *)wd + r % G * D : NULL, ((const double *)md)[r],
                                              ((const double *)rd)[r], D, HW, dxd ? (double *)dxd + r * M : NULL,
                                              sums + 2 * r * D););
        }
    }
    for (int k = 1; k <= 2; k++) {
        ct_tensor *o = a->out[k];
        if (!o) continue;
        char *od = ct__data(o);
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) {
                const double *p = sums + 2 * (n * C + c);
                int64_t r = n * G + c / D;
                s += k == 1 ? p[1] * (f32 ? (double)((const float *)rd)[r] : ((const double *)rd)[r]) : p[0];
            }
            if (f32) ((float *)od)[c] = (float)s;
            else ((double *)od)[c] = s;
        }
    }
    free(sums);
    return 0;
}

void ct_cpu_register_norm(ct_kernel_fn *k) {
    k[CT_OP_LAYER_NORM] = cpu_layer_norm;
    k[CT_OP_LAYER_NORM_BACKWARD] = cpu_layer_norm_backward;
    k[CT_OP_GROUP_NORM] = cpu_group_norm;
    k[CT_OP_GROUP_NORM_BACKWARD] = cpu_group_norm_backward;
}
