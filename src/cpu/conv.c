/* CPU kernels for convolution and pooling: im2col / col2im (the unfold and fold of
 * torch.nn.functional, and the core of conv2d and its gradients) and 2-D max / average
 * pooling, and convolution with its two gradients. Tensors are contiguous NCHW; im2col,
 * col2im and pooling split their work over the N*C planes. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/loops.h"
#include "cpu/pool.h"

typedef struct {
    int64_t kh, kw, dh, dw, ph, pw, sh, sw, Ho, Wo;
} geom;

static geom geom_of(const int64_t *iv) {
    return (geom){iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6], iv[7], iv[8], iv[9]};
}

/* One input plane [H, W] to its kh*kw rows of L = Ho*Wo columns. */
#define IM2COL(NAME, T)                                                                                      \
    static void NAME(const T *x, T *col, int64_t H, int64_t W, const geom *g) {                              \
        int64_t L = g->Ho * g->Wo;                                                                           \
        for (int64_t ki = 0; ki < g->kh; ki++)                                                               \
            for (int64_t kj = 0; kj < g->kw; kj++) {                                                         \
                T *row = col + (ki * g->kw + kj) * L;                                                        \
                for (int64_t oh = 0; oh < g->Ho; oh++) {                                                     \
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                            \
                    T *o = row + oh * g->Wo;                                                                 \
                    if (ih < 0 || ih >= H) {                                                                 \
                        for (int64_t ow = 0; ow < g->Wo; ow++) o[ow] = 0;                                    \
                        continue;                                                                            \
                    }                                                                                        \
                    const T *xr = x + ih * W;                                                                \
                    int64_t off = kj * g->dw - g->pw;                                                        \
                    if (g->sw == 1 && off >= 0 && off + g->Wo <= W) {                                        \
                        for (int64_t ow = 0; ow < g->Wo; ow++) o[ow] = xr[off + ow];                         \
                    } else {                                                                                 \
                        for (int64_t ow = 0; ow < g->Wo; ow++) {                                             \
                            int64_t iw = ow * g->sw + off;                                                   \
                            o[ow] = (iw >= 0 && iw < W) ? xr[iw] : (T)0;                                     \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
    }
IM2COL(im2col_f32, float)
IM2COL(im2col_f64, double)

/* The adjoint: accumulates kh*kw rows of L columns into one plane [H, W]. */
#define COL2IM(NAME, T)                                                                                      \
    static void NAME(const T *col, T *x, int64_t H, int64_t W, const geom *g) {                              \
        int64_t L = g->Ho * g->Wo;                                                                           \
        for (int64_t ki = 0; ki < g->kh; ki++)                                                               \
            for (int64_t kj = 0; kj < g->kw; kj++) {                                                         \
                const T *row = col + (ki * g->kw + kj) * L;                                                  \
                for (int64_t oh = 0; oh < g->Ho; oh++) {                                                     \
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                            \
                    if (ih < 0 || ih >= H) continue;                                                         \
                    const T *c = row + oh * g->Wo;                                                           \
                    T *xr = x + ih * W;                                                                      \
                    int64_t off = kj * g->dw - g->pw;                                                        \
                    for (int64_t ow = 0; ow < g->Wo; ow++) {                                                 \
                        int64_t iw = ow * g->sw + off;                                                       \
                        if (iw >= 0 && iw < W) xr[iw] += c[ow];                                              \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
    }
COL2IM(col2im_f32, float)
COL2IM(col2im_f64, double)

/* The transpose of im2col for one image [C, H, W]: row l = (oh, ow) of rows [L, K] holds
 * the K = C*kh*kw inputs output position l reads, in im2col's order (c, ki, kj), so that
 * rows [L, K] = cols^T. Written row by row, each tap's C values kh*kw apart. */
#define IM2ROW(NAME, T)                                                                                      \
    static void NAME(const T *x, T *rows, int64_t C, int64_t H, int64_t W, const geom *g) {                  \
        const int64_t kk = g->kh * g->kw, K = C * kk, HW = H * W;                                            \
        for (int64_t oh = 0; oh < g->Ho; oh++)                                                               \
            for (int64_t ow = 0; ow < g->Wo; ow++) {                                                         \
                T *row = rows + (oh * g->Wo + ow) * K;                                                       \
                for (int64_t ki = 0; ki < g->kh; ki++)                                                       \
                    for (int64_t kj = 0; kj < g->kw; kj++) {                                                 \
                        const int64_t ih = oh * g->sh - g->ph + ki * g->dh, iw = ow * g->sw - g->pw + kj * g->dw; \
                        T *dst = row + ki * g->kw + kj;                                                      \
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) {                                        \
                            for (int64_t c = 0; c < C; c++) dst[c * kk] = 0;                                 \
                        } else {                                                                             \
                            const T *src = x + ih * W + iw;                                                  \
                            for (int64_t c = 0; c < C; c++) dst[c * kk] = src[c * HW];                       \
                        }                                                                                    \
                    }                                                                                        \
            }                                                                                                \
    }
IM2ROW(im2row_f32, float)
IM2ROW(im2row_f64, double)

static int cpu_unfold_fold(const ct_kernel_args *a) {
    bool unfold = a->op == CT_OP_UNFOLD;
    const ct_tensor *img = unfold ? a->in[0] : a->out[0];
    const ct_tensor *col = unfold ? a->out[0] : a->in[0];
    geom g = geom_of(a->iv);
    int64_t N = img->sizes[0], C = img->sizes[1], H = img->sizes[2], W = img->sizes[3];
    int64_t planes = N * C, psz = H * W, csz = g.kh * g.kw * g.Ho * g.Wo;
    bool f32 = img->dtype == CT_FLOAT32;
    if (img->dtype != CT_FLOAT32 && img->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(img->dtype));
    char *ip = ct__data(img), *cp = ct__data(col);
    size_t es = ct_dtype_size(img->dtype);
    if (!unfold) memset(ip, 0, (size_t)(planes * psz) * es);
    CT_PARALLEL_FOR_IF(planes > 1 && planes * csz >= CT_GRAIN, for (int64_t p = 0; p < planes; p++), {
        char *xi = ip + (size_t)(p * psz) * es, *ci = cp + (size_t)(p * csz) * es;
        if (unfold) {
            if (f32) im2col_f32((const float *)xi, (float *)ci, H, W, &g);
            else im2col_f64((const double *)xi, (double *)ci, H, W, &g);
        } else {
            if (f32) col2im_f32((const float *)ci, (float *)xi, H, W, &g);
            else col2im_f64((const double *)ci, (double *)xi, H, W, &g);
        }
    });
    return 0;
}

/* ---- convolution (CONV2D, CONV2D_BWD_INPUT, CONV2D_BWD_WEIGHT) ----
 * float32 goes to oneDNN when the library is built with it (conv_dnnl.c; it declines
 * shapes it cannot take), except the shapes cpu_conv sends to the kernels below that
 * measured faster (weight gradients of small images or few columns, one-channel first
 * layers); float64, and float32 without oneDNN, take im2col/col2im + GEMM per image and
 * group here. Images are split over the threads (one single-threaded GEMM each) when
 * there are several, else the GEMM uses BLAS's threads. */
typedef struct {
    int64_t N, C, H, W, O, kh, kw, Ho, Wo, G, Cg, Og, K, L;
    geom g; /* im2col geometry of one input plane */
    size_t es;
    bool f32, direct; /* direct: 1x1, stride 1, no padding: the image is its own column matrix */
    bool small_k;     /* the weight gradient takes wgrad_small_f32_avx2 (set by cpu_conv) */
} conv_shape;

static conv_shape conv_shape_of(const ct_kernel_args *a, const ct_tensor *x, const ct_tensor *w, const ct_tensor *y) {
    const int64_t *iv = a->iv;
    conv_shape c = {.N = x->sizes[0], .C = x->sizes[1], .H = x->sizes[2], .W = x->sizes[3], .O = w->sizes[0],
                    .kh = w->sizes[2], .kw = w->sizes[3], .Ho = y->sizes[2], .Wo = y->sizes[3], .G = iv[6]};
    c.Cg = c.C / c.G, c.Og = c.O / c.G, c.K = c.Cg * c.kh * c.kw, c.L = c.Ho * c.Wo;
    c.g = (geom){c.kh, c.kw, iv[4], iv[5], iv[2], iv[3], iv[0], iv[1], c.Ho, c.Wo};
    c.es = ct_dtype_size(x->dtype);
    c.f32 = x->dtype == CT_FLOAT32;
    c.direct = c.kh == 1 && c.kw == 1 && iv[0] == 1 && iv[1] == 1 && iv[2] == 0 && iv[3] == 0;
    return c;
}

/* columns [K, L] of group g of one image (x points at the image) */
static const char *conv_cols(const conv_shape *c, const char *x, int64_t g, char *buf) {
    const char *xg = x + (size_t)(g * c->Cg * c->H * c->W) * c->es;
    if (c->direct) return xg;
    size_t csz = (size_t)(c->kh * c->kw * c->L) * c->es, psz = (size_t)(c->H * c->W) * c->es;
    for (int64_t ch = 0; ch < c->Cg; ch++) {
        if (c->f32) im2col_f32((const float *)(xg + ch * psz), (float *)(buf + ch * csz), c->H, c->W, &c->g);
        else im2col_f64((const double *)(xg + ch * psz), (double *)(buf + ch * csz), c->H, c->W, &c->g);
    }
    return buf;
}

/* Images split over threads when there are at least two and enough work. */
static bool conv_split(const conv_shape *c) { return c->N > 1 && c->N * c->O * c->K * c->L >= CT_GRAIN; }

/* Runs fn for every image, split over threads when conv_split(c) (else one thread and
 * BLAS's own threads); each thread brings its own column buffer (none for the direct 1x1
 * case). Returns 0, or a status when a buffer could not be allocated. */
typedef struct {
    const ct_kernel_args *a;
    const conv_shape *c;
    char *parts; /* weight gradient: per-thread accumulators for threads 1.. */
    size_t wsz;
} conv_job;
typedef void (*conv_image_fn)(const conv_job *j, int64_t n, char *buf);

static int conv_each_image(const conv_job *j, conv_image_fn fn) {
    const conv_shape *c = j->c;
    int rc = 0;
    CT_PARALLEL_IF(conv_split(c), {
        size_t bsz = (size_t)(c->K * c->L) * c->es;
        char *buf = c->direct ? NULL : ct__alloc(bsz);
        if (!c->direct && !buf) {
            _Pragma("omp atomic write")
            rc = 1;
        }
        _Pragma("omp for schedule(static)")
        for (int64_t n = 0; n < c->N; n++)
            if (c->direct || buf) fn(j, n, buf);
        ct__free(buf, bsz);
    });
    return rc ? ct__errs(CT_ERR_OOM, "%s: out of memory for the column buffer", ct__op_name(j->a->op)) : 0;
}

/* byte sizes of one image of x and y, and of one group's weight and output block */
#define CONV_STRIDES(c)                                                                                        \
    size_t xs = (size_t)((c)->C * (c)->H * (c)->W) * (c)->es, ys = (size_t)((c)->O * (c)->L) * (c)->es;      \
    size_t wgs = (size_t)((c)->Og * (c)->K) * (c)->es, ygs = (size_t)((c)->Og * (c)->L) * (c)->es

/* y[n, g] = w_g [Og, K] @ cols [K, L] (+ bias) */
static void conv_forward_image(const conv_job *j, int64_t n, char *buf) {
    const conv_shape *c = j->c;
    const ct_kernel_args *a = j->a;
    CONV_STRIDES(c);
    const char *xp = ct__data(a->in[0]), *wp = ct__data(a->in[1]);
    const char *bp = a->n_in > 2 && a->in[2] ? ct__data(a->in[2]) : NULL;
    char *yp = ct__data(a->out[0]);
    for (int64_t g = 0; g < c->G; g++)
        ct__cpu_gemm(a->in[0]->dtype, false, false, c->Og, c->L, c->K, 1.0, wp + g * wgs, c->K,
                     conv_cols(c, xp + n * xs, g, buf), c->L, 0.0, yp + n * ys + g * ygs, c->L);
    if (!bp) return;
    for (int64_t o = 0; o < c->O; o++) {
        char *yo = yp + n * ys + (size_t)(o * c->L) * c->es;
        if (c->f32) {
            float bv = ((const float *)bp)[o];
            for (int64_t l = 0; l < c->L; l++) ((float *)yo)[l] += bv;
        } else {
            double bv = ((const double *)bp)[o];
            for (int64_t l = 0; l < c->L; l++) ((double *)yo)[l] += bv;
        }
    }
}

/* cols [K, L] = w_g^T [K, Og] @ grad_g [Og, L], folded back into x[n] (1x1 direct: the
 * product is the image) */
static void conv_backward_input_image(const conv_job *j, int64_t n, char *buf) {
    const conv_shape *c = j->c;
    const ct_kernel_args *a = j->a;
    CONV_STRIDES(c);
    size_t csz = (size_t)(c->kh * c->kw * c->L) * c->es, psz = (size_t)(c->H * c->W) * c->es;
    const char *gp = ct__data(a->in[0]), *wp = ct__data(a->in[1]);
    char *xp = ct__data(a->out[0]);
    for (int64_t g = 0; g < c->G; g++) {
        char *xg = xp + n * xs + (size_t)(g * c->Cg) * psz;
        ct__cpu_gemm(a->in[0]->dtype, true, false, c->K, c->L, c->Og, 1.0, wp + g * wgs, c->K, gp + n * ys + g * ygs,
                     c->L, 0.0, c->direct ? xg : buf, c->L);
        if (c->direct) continue;
        for (int64_t ch = 0; ch < c->Cg; ch++) {
            if (c->f32) col2im_f32((const float *)(buf + ch * csz), (float *)(xg + ch * psz), c->H, c->W, &c->g);
            else col2im_f64((const double *)(buf + ch * csz), (double *)(xg + ch * psz), c->H, c->W, &c->g);
        }
    }
}

/* The weight gradient's product grad_w [Og, K] += grad_y [Og, L] @ cols^T [L, K] when K
 * (input channels per group x kernel taps) is small, as in a first layer on 1- or
 * 2-channel images: there the GEMM's N = K is too thin for BLAS (and oneDNN 2.6's
 * kernel for 1 input channel ran at 3% of its peak: 3.5 ms for 29 MFLOP at batch 64,
 * 28x28, 32 channels). float32 with AVX2: each grad_y row is dotted with 8 column rows
 * at once (one load of grad_y per 8 FMAs), eight partial sums per dot in one register,
 * the ragged end of a row by masked loads. Measured faster than oneDNN up to K = 25
 * (1 channel 3x3 and 5x5, 2 channels 3x3); at K = 27 (3 channels 3x3) the two were
 * even, so that stays with oneDNN. Other CPUs and dtypes take the GEMM. */
#define CONV_SMALL_K 25
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_CONV_AVX2 1
__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

__attribute__((target("avx2,fma"))) static void wgrad_small_f32_avx2(const float *restrict gy,
                                                                     const float *restrict cols, float *restrict dw,
                                                                     int64_t O, int64_t K, int64_t L) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(L % 8)), iota);
    const int64_t lv = L - L % 8;
    for (int64_t o = 0; o < O; o++) {
        const float *g = gy + o * L;
        int64_t k0 = 0;
        for (; k0 + 8 <= K; k0 += 8) {
            const float *c = cols + k0 * L;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
#define WG_ROWS(LOAD, l)                                                                                        \
    do {                                                                                                        \
        __m256 v = LOAD(g + (l));                                                                               \
        a0 = _mm256_fmadd_ps(v, LOAD(c + (l)), a0), a1 = _mm256_fmadd_ps(v, LOAD(c + L + (l)), a1);            \
        a2 = _mm256_fmadd_ps(v, LOAD(c + 2 * L + (l)), a2), a3 = _mm256_fmadd_ps(v, LOAD(c + 3 * L + (l)), a3);  \
        a4 = _mm256_fmadd_ps(v, LOAD(c + 4 * L + (l)), a4), a5 = _mm256_fmadd_ps(v, LOAD(c + 5 * L + (l)), a5);  \
        a6 = _mm256_fmadd_ps(v, LOAD(c + 6 * L + (l)), a6), a7 = _mm256_fmadd_ps(v, LOAD(c + 7 * L + (l)), a7);  \
    } while (0)
#define WG_TAIL(p) _mm256_maskload_ps(p, tail)
            for (int64_t l = 0; l < lv; l += 8) WG_ROWS(_mm256_loadu_ps, l);
            if (lv < L) WG_ROWS(WG_TAIL, lv);
#undef WG_TAIL
#undef WG_ROWS
            float *d = dw + o * K + k0;
            d[0] += hsum256(a0), d[1] += hsum256(a1), d[2] += hsum256(a2), d[3] += hsum256(a3);
            d[4] += hsum256(a4), d[5] += hsum256(a5), d[6] += hsum256(a6), d[7] += hsum256(a7);
        }
        for (; k0 < K; k0++) { /* the rows past the last block of 8, one at a time */
            const float *c = cols + k0 * L;
            __m256 a = _mm256_setzero_ps();
            for (int64_t l = 0; l < lv; l += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(g + l), _mm256_loadu_ps(c + l), a);
            if (lv < L) a = _mm256_fmadd_ps(_mm256_maskload_ps(g + lv, tail), _mm256_maskload_ps(c + lv, tail), a);
            dw[o * K + k0] += hsum256(a);
        }
    }
}
#endif

#ifdef CT_CONV_AVX2
/* First layers on one-channel images (3x3 taps, stride 1, no dilation, one group, an
 * even number of output channels; float32 with AVX-512), forward and weight gradient
 * straight from the NCHW tensors. oneDNN reorders the output to its blocked layout and
 * back, which cost the demo CNN's first layer as much as its convolution, and ran its
 * weight gradient far below its peak: at batch 64, 28x28, 32 channels the forward op
 * takes about 200 us against 290, the backward for the weight 215 against 440 (medians
 * of alternating runs). 3-channel images were tried the same way and measured slower
 * than oneDNN (1.43 against 0.86 ms forward at 32x32), so they stay there.
 * Output rows are cut in pieces of 16 lanes (at most CONV_FIRST_PIECES); a tap outside
 * the image is a masked-off lane (a whole row outside: mask 0), so there is no branch on
 * the data and the accumulators stay in registers (adding 0 * w leaves a sum unchanged).
 * Each output sums its taps in the order (ki, kj) by FMA from 0, then adds the bias:
 * oneDNN's order, so PyTorch's bits (tested). */
#define CONV_FIRST_PIECES 64

/* the lanes l of a 16-wide vector with lo <= l < hi */
static inline __mmask16 lanes_between(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo, hi = hi > 16 ? 16 : hi;
    return hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* for each piece p: mk[p][kj] the lanes whose tap kj reads inside the row (0 <= ow - pw
 * + kj < W), mk[p][3] the lanes that are outputs */
static void first_masks(__mmask16 (*mk)[4], int64_t W, int64_t pw, int64_t Wo) {
    for (int64_t p = 0, ow0 = 0; ow0 < Wo; p++, ow0 += 16) {
        int64_t nl = Wo - ow0 < 16 ? Wo - ow0 : 16;
        for (int kj = 0; kj < 3; kj++) {
            int64_t hi = W + pw - kj - ow0;
            mk[p][kj] = lanes_between(pw - kj - ow0, hi < nl ? hi : nl);
        }
        mk[p][3] = lanes_between(0, nl);
    }
}

/* the input row (oh - ph + q) of a piece: its three taps' lanes (mask 0 when the row is
 * outside the image: the loads read nothing and give zeros) */
#define FIRST_ROW(v, xn, mk, p, oh, q)                                                                       \
    do {                                                                                                     \
        const int64_t ih_ = (oh) - ph + (q);                                                                 \
        const bool in_ = ih_ >= 0 && ih_ < H;                                                                \
        const float *r_ = (xn) + ih_ * W + ow0 - pw;                                                         \
        for (int kj = 0; kj < 3; kj++) (v)[kj] = _mm512_maskz_loadu_ps(in_ ? (mk)[p][kj] : 0, r_ + kj);       \
    } while (0)

/* y [O, Ho, Wo] of one image, output channels o0 and o0+1 (their weights in registers),
 * two output rows at a time: the four input rows they read are loaded once (12 vectors
 * for 36 FMAs). A row past Ho is computed from masked loads and not stored. */
__attribute__((target("avx512f"))) static void conv_first_fwd_f32(const float *restrict x, const float *restrict w,
                                                                  const float *restrict b, float *restrict y,
                                                                  int64_t H, int64_t W, int64_t ph, int64_t pw,
                                                                  int64_t Ho, int64_t Wo, int64_t o0,
                                                                  const __mmask16 (*mk)[4]) {
    __m512 wv[2][9], bias[2];
    for (int j = 0; j < 2; j++) {
        for (int t = 0; t < 9; t++) wv[j][t] = _mm512_set1_ps(w[(o0 + j) * 9 + t]);
        bias[j] = _mm512_set1_ps(b ? b[o0 + j] : 0.0f);
    }
    const int64_t L = Ho * Wo;
    for (int64_t oh = 0; oh < Ho; oh += 2)
        for (int64_t p = 0, ow0 = 0; ow0 < Wo; p++, ow0 += 16) {
            __m512 acc[2][2]; /* [output row][channel] */
            for (int r = 0; r < 2; r++)
                for (int j = 0; j < 2; j++) acc[r][j] = _mm512_setzero_ps();
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) { /* input row q feeds output rows q-2 .. q */
                __m512 v[3];
                FIRST_ROW(v, x, mk, p, oh, q);
                _Pragma("GCC unroll 3") for (int kj = 0; kj < 3; kj++)
                    _Pragma("GCC unroll 2") for (int r = 0; r < 2; r++) {
                        if (q - r < 0 || q - r > 2) continue; /* resolved at compile time */
                        for (int j = 0; j < 2; j++) acc[r][j] = _mm512_fmadd_ps(v[kj], wv[j][(q - r) * 3 + kj], acc[r][j]);
                    }
            }
            for (int r = 0; r < 2 && oh + r < Ho; r++)
                for (int j = 0; j < 2; j++)
                    _mm512_mask_storeu_ps(y + (o0 + j) * L + (oh + r) * Wo + ow0, mk[p][3],
                                          _mm512_add_ps(acc[r][j], bias[j]));
        }
}

/* grad_w [O, 1, 3, 3] of output channels o0 and o0+1 over all N images, two output rows
 * at a time: their four grad_y vectors (zero past a row's end, or for a row past Ho)
 * times the input vectors each tap reads, into 18 accumulators kept in registers over
 * one image, then added lane by lane to the totals (fewer terms in each float32 sum) and
 * summed across lanes at the end. The channels' pairs are split over threads, so nothing
 * is added across threads and the result does not depend on their number. */
__attribute__((target("avx512f"))) static void conv_first_wgrad_f32(const float *restrict x, const float *restrict gy,
                                                                    float *restrict dw, int64_t N, int64_t O,
                                                                    int64_t H, int64_t W, int64_t ph, int64_t pw,
                                                                    int64_t Ho, int64_t Wo, int64_t o0,
                                                                    const __mmask16 (*mk)[4]) {
    __m512 tot[2][9];
    for (int j = 0; j < 2; j++)
        for (int t = 0; t < 9; t++) tot[j][t] = _mm512_setzero_ps();
    const int64_t L = Ho * Wo;
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * H * W, *gn = gy + (n * O + o0) * L;
        __m512 acc[2][9];
        for (int j = 0; j < 2; j++)
            for (int t = 0; t < 9; t++) acc[j][t] = _mm512_setzero_ps();
        for (int64_t oh = 0; oh < Ho; oh += 2)
            for (int64_t p = 0, ow0 = 0; ow0 < Wo; p++, ow0 += 16) {
                __m512 g[2][2]; /* [output row][channel] */
                for (int r = 0; r < 2; r++)
                    for (int j = 0; j < 2; j++)
                        g[r][j] = _mm512_maskz_loadu_ps(oh + r < Ho ? mk[p][3] : 0, gn + j * L + (oh + r) * Wo + ow0);
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
                    __m512 v[3];
                    FIRST_ROW(v, xn, mk, p, oh, q);
                    _Pragma("GCC unroll 3") for (int kj = 0; kj < 3; kj++)
                        _Pragma("GCC unroll 2") for (int r = 0; r < 2; r++) {
                            if (q - r < 0 || q - r > 2) continue;
                            for (int j = 0; j < 2; j++)
                                acc[j][(q - r) * 3 + kj] = _mm512_fmadd_ps(g[r][j], v[kj], acc[j][(q - r) * 3 + kj]);
                        }
                }
            }
        for (int j = 0; j < 2; j++)
            for (int t = 0; t < 9; t++) tot[j][t] = _mm512_add_ps(tot[j][t], acc[j][t]);
    }
    for (int j = 0; j < 2; j++)
        for (int t = 0; t < 9; t++) dw[(o0 + j) * 9 + t] = _mm512_reduce_add_ps(tot[j][t]);
}
#undef FIRST_ROW
#endif

/* true when this call (forward or weight gradient) takes the first-layer kernels above */
static bool conv_first_shape(ct_op op, const conv_shape *c) {
#ifdef CT_CONV_AVX2
    const geom *g = &c->g;
    return (op == CT_OP_CONV2D || op == CT_OP_CONV2D_BWD_WEIGHT) && c->f32 && c->C == 1 && c->G == 1 &&
           c->kh == 3 && c->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->ph <= 2 &&
           g->pw <= 2 && c->Wo <= 16 * CONV_FIRST_PIECES && c->O % 2 == 0 && ct__cpu_isa() == CT_ISA_AVX512;
#else
    (void)op, (void)c;
    return false;
#endif
}

/* forward: tasks (image, pair of output channels); weight gradient: the pairs, each over
 * all images */
static int conv_first(const ct_kernel_args *a, const conv_shape *c) {
#ifdef CT_CONV_AVX2
    const int64_t pairs = c->O / 2, ph = c->g.ph, pw = c->g.pw;
    const bool par = c->N * c->O * c->K * c->L >= CT_GRAIN;
    __mmask16 mk[CONV_FIRST_PIECES][4]; /* the same for every image and channel: made once */
    first_masks(mk, c->W, pw, c->Wo);
    const __mmask16(*m)[4] = (const __mmask16(*)[4])mk;
    const float *xp = ct__data(a->in[0]);
    if (a->op == CT_OP_CONV2D) {
        const float *wp = ct__data(a->in[1]), *bp = a->n_in > 2 && a->in[2] ? ct__data(a->in[2]) : NULL;
        float *yp = ct__data(a->out[0]);
        CT_PARALLEL_FOR_IF(par && c->N * pairs > 1, for (int64_t t = 0; t < c->N * pairs; t++), {
            int64_t n = t / pairs;
            conv_first_fwd_f32(xp + n * c->H * c->W, wp, bp, yp + n * c->O * c->L, c->H, c->W, ph, pw, c->Ho, c->Wo,
                               (t % pairs) * 2, m);
        });
    } else {
        const float *gp = ct__data(a->in[1]);
        float *dw = ct__data(a->out[0]);
        CT_PARALLEL_FOR_IF(par && pairs > 1, for (int64_t t = 0; t < pairs; t++), {
            conv_first_wgrad_f32(xp, gp, dw, c->N, c->O, c->H, c->W, ph, pw, c->Ho, c->Wo, t * 2, m);
        });
    }
#else
    (void)a, (void)c;
#endif
    return 0;
}

/* true when this call's weight gradient takes wgrad_small_f32_avx2 */
static bool conv_small_weight_shape(const conv_shape *c) {
#ifdef CT_CONV_AVX2
    return c->f32 && c->K <= CONV_SMALL_K && ct__cpu_isa() >= CT_ISA_AVX2;
#else
    (void)c;
    return false;
#endif
}

/* w_g [Og, K] += grad_g [Og, L] @ cols^T [L, K], into this thread's accumulator */
static void conv_backward_weight_image(const conv_job *j, int64_t n, char *buf) {
    const conv_shape *c = j->c;
    const ct_kernel_args *a = j->a;
    CONV_STRIDES(c);
    int t = omp_get_thread_num();
    char *acc = t == 0 ? ct__data(a->out[0]) : j->parts + (size_t)(t - 1) * j->wsz;
    const char *xp = ct__data(a->in[0]), *gp = ct__data(a->in[1]);
    for (int64_t g = 0; g < c->G; g++) {
        const char *gy = gp + n * ys + g * ygs, *cols = conv_cols(c, xp + n * xs, g, buf);
#ifdef CT_CONV_AVX2
        if (c->small_k) {
            wgrad_small_f32_avx2((const float *)gy, (const float *)cols, (float *)(acc + g * wgs), c->Og, c->K, c->L);
            continue;
        }
#endif
        ct__cpu_gemm(a->in[0]->dtype, false, true, c->Og, c->K, c->L, 1.0, gy, c->L, cols, c->L, 1.0, acc + g * wgs,
                     c->K);
    }
}

static int conv_ref_forward(const ct_kernel_args *a, const conv_shape *c) {
    return conv_each_image(&(conv_job){a, c, NULL, 0}, conv_forward_image);
}

static int conv_ref_backward_input(const ct_kernel_args *a, const conv_shape *c) {
    if (!c->direct) memset(ct__data(a->out[0]), 0, (size_t)(c->N * c->C * c->H * c->W) * c->es);
    return conv_each_image(&(conv_job){a, c, NULL, 0}, conv_backward_input_image);
}

static int conv_ref_backward_weight(const ct_kernel_args *a, const conv_shape *c) {
    size_t wsz = (size_t)(c->O * c->K) * c->es;
    int nth = conv_split(c) ? omp_get_max_threads() : 1;
    /* thread t accumulates its images into part t (part 0 is the output), summed at the end */
    size_t psz = (size_t)(nth - 1) * wsz;
    char *parts = nth > 1 ? ct__alloc(psz) : NULL;
    if (parts) memset(parts, 0, psz);
    if (nth > 1 && !parts) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    memset(ct__data(a->out[0]), 0, wsz);
    int rc = conv_each_image(&(conv_job){a, c, parts, wsz}, conv_backward_weight_image);
    char *wp = ct__data(a->out[0]);
    int64_t total = c->O * c->K;
    for (int t = 1; t < nth && !rc; t++) {
        const char *pt = parts + (size_t)(t - 1) * wsz;
        if (c->f32)
            for (int64_t i = 0; i < total; i++) ((float *)wp)[i] += ((const float *)pt)[i];
        else
            for (int64_t i = 0; i < total; i++) ((double *)wp)[i] += ((const double *)pt)[i];
    }
    ct__free(parts, psz);
    return rc;
}

/* Weight gradient for small images (L = Ho*Wo <= 64) with a batch: one wide GEMM,
 * grad_w [O, K] = grad_y^T [O, N*L] @ cols^T [N*L, K] (cols^T built directly, by
 * im2row), instead of N thin products
 * (or oneDNN 2.6's weight-gradient kernel, 1.8x slower than this at ResNet-18's 512
 * channels at 7x7, batch 32). Whether the shape is one for it. */
static bool conv_wide_weight_shape(const conv_shape *c) {
    if (c->G != 1 || c->L > 64 || c->N < 4 || (double)c->K * (double)(c->N * c->L) * (double)c->es >= 512e6) return false;
#ifdef CT_HAVE_DNNL
    /* float32 against oneDNN, measured at batch 32 (fwd+bwd): this wins at 2x2 images
     * and below (128-512 channels: 0.71-0.94 of oneDNN's time) and at 512 channels up to
     * 7x7 (0.79-0.85); oneDNN wins at 4x4 and 8x8 with 64-256 channels (0.6-0.9 of this) */
    if (c->f32) return c->L <= 4 || c->C >= 512;
#endif
    return true;
}

static int conv_wide_backward_weight(const ct_kernel_args *a, const conv_shape *c) {
    int64_t NL = c->N * c->L;
    size_t es = c->es, row = (size_t)c->L * es;
    size_t rsz = (size_t)(NL * c->K) * es, gsz = (size_t)(c->O * NL) * es;
    char *rows = ct__alloc(rsz), *gt = ct__alloc(gsz);
    if (!rows || !gt) {
        ct__free(rows, rsz);
        ct__free(gt, gsz);
        return ct__errs(CT_ERR_OOM, "%s: out of memory for the column matrix", ct__op_name(a->op));
    }
    const char *xp = ct__data(a->in[0]), *gp = ct__data(a->in[1]);
    size_t xs = (size_t)(c->C * c->H * c->W) * es;
    CT_PARALLEL_FOR_IF(c->N * c->K * c->L >= CT_GRAIN, for (int64_t n = 0; n < c->N; n++), {
        char *r = rows + (size_t)(n * c->L * c->K) * es; /* image n's L rows */
        if (c->f32) im2row_f32((const float *)(xp + n * xs), (float *)r, c->C, c->H, c->W, &c->g);
        else im2row_f64((const double *)(xp + n * xs), (double *)r, c->C, c->H, c->W, &c->g);
        for (int64_t o = 0; o < c->O; o++) /* grad_y [N, O, L] -> [O, N, L] */
            memcpy(gt + ((size_t)(o * NL) + (size_t)(n * c->L)) * es, gp + ((size_t)((n * c->O + o) * c->L)) * es, row);
    });
    /* grad_w [O, K] = gt [O, NL] @ rows [NL, K]: untransposed operands, which oneDNN's
     * sgemm ran faster than gt @ cols^T (512 x 4608 x 1568, ResNet-18's 512 channels at
     * 7x7, batch 32: 33.4 against 36.5 ms) */
    ct__cpu_gemm(a->in[0]->dtype, false, false, c->O, c->K, NL, 1.0, gt, NL, rows, c->K, 0.0, ct__data(a->out[0]),
                 c->K);
    ct__free(rows, rsz);
    ct__free(gt, gsz);
    return 0;
}

static int cpu_conv(const ct_kernel_args *a) {
    const ct_tensor *x, *w, *y;
    switch (a->op) {
    case CT_OP_CONV2D: x = a->in[0], w = a->in[1], y = a->out[0]; break;
    case CT_OP_CONV2D_BWD_INPUT: x = a->out[0], w = a->in[1], y = a->in[0]; break;
    default: x = a->in[0], w = a->out[0], y = a->in[1]; break;
    }
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(x->dtype));
    conv_shape c = conv_shape_of(a, x, w, y);
    if (ct_numel(a->out[0]) == 0) return 0;
    if (c.N == 0 || c.K == 0 || c.L == 0) return ct__fill_raw(a->out[0], 0); /* an empty sum */
    if (a->op == CT_OP_CONV2D_BWD_WEIGHT && conv_wide_weight_shape(&c)) return conv_wide_backward_weight(a, &c);
    if (conv_first_shape(a->op, &c)) return conv_first(a, &c);
    c.small_k = a->op == CT_OP_CONV2D_BWD_WEIGHT && conv_small_weight_shape(&c);
    if (c.small_k) return conv_ref_backward_weight(a, &c);
#ifdef CT_HAVE_DNNL
    if (c.f32) {
        /* the input gradient may keep its reordered grad for the weight gradient when
         * that goes to oneDNN too (not to one of the kernels above) */
        bool keep = a->op == CT_OP_CONV2D_BWD_INPUT && a->i[0] && !conv_wide_weight_shape(&c) &&
                    !conv_small_weight_shape(&c) && !conv_first_shape(CT_OP_CONV2D_BWD_WEIGHT, &c);
        int rc = ct__dnnl_conv(a, keep);
        if (rc <= 0) return rc; /* done, or failed with a message; > 0: declined */
    }
#endif
    if (a->op == CT_OP_CONV2D) return conv_ref_forward(a, &c);
    if (a->op == CT_OP_CONV2D_BWD_INPUT) return conv_ref_backward_input(a, &c);
    return conv_ref_backward_weight(a, &c);
}

/* ---- pooling ---- */
/* Max over each window, visiting it row by row; a value replaces the best so far when
 * it is greater or NaN, so NaN wins and the last NaN's index is kept (as PyTorch). The
 * common 2x2/stride-2 unpadded case is branch-free so it vectorises. */
/* One output row of the 2x2/stride-2 case: bitwise conditions, no branch, so the loop
 * vectorises. */
#define MAXPOOL_ROW2(NAME, T)                                                                                \
    CT_LOOP_ATTR static void NAME(const T *restrict r0, const T *restrict r1, T *restrict orow,              \
                                  int64_t *restrict irow, int64_t Wo, int64_t base, int64_t W) {             \
        for (int64_t ow = 0; ow < Wo; ow++) {                                                                \
            int64_t c = 2 * ow, k = 0;                                                                       \
            T a = r0[c], b = r0[c + 1], d = r1[c], e = r1[c + 1], best = a;                                  \
            int u = (b > best) | (b != b);                                                                   \
            best = u ? b : best, k = u ? 1 : k;                                                              \
            u = (d > best) | (d != d);                                                                       \
            best = u ? d : best, k = u ? 2 : k;                                                              \
            u = (e > best) | (e != e);                                                                       \
            best = u ? e : best, k = u ? 3 : k;                                                              \
            orow[ow] = best;                                                                                 \
            irow[ow] = base + c + (k & 1) + (k >> 1) * W;                                                    \
        }                                                                                                    \
    }
MAXPOOL_ROW2(maxpool_row2_f32, float)
MAXPOOL_ROW2(maxpool_row2_f64, double)
typedef void (*maxpool_row2_f32_fn)(const float *restrict, const float *restrict, float *restrict, int64_t *restrict,
                                    int64_t, int64_t, int64_t);
typedef void (*maxpool_row2_f64_fn)(const double *restrict, const double *restrict, double *restrict,
                                    int64_t *restrict, int64_t, int64_t, int64_t);

#ifdef CT_CONV_AVX2
#define CT_POOL_AVX512 1
/* The float32 row with AVX-512: sixteen windows per step and the short rows of small
 * images (Wo = 14, 7) in one masked step, where the compiler's vector loop leaves a
 * scalar tail with branches. The same comparisons in the same order, so the same
 * values and indices as maxpool_row2_f32. */
__attribute__((target("avx512f"))) static void maxpool_row2_f32_avx512(const float *restrict r0,
                                                                       const float *restrict r1,
                                                                       float *restrict orow, int64_t *restrict irow,
                                                                       int64_t Wo, int64_t base, int64_t W) {
    const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i vW = _mm512_set1_epi64(W), two64 = _mm512_set1_epi64(2), one64 = _mm512_set1_epi64(1);
    for (int64_t ow = 0; ow < Wo; ow += 16) {
        int64_t m = Wo - ow < 16 ? Wo - ow : 16, n2 = 2 * m;
        __mmask16 mlo = n2 >= 16 ? 0xFFFF : (__mmask16)((1u << n2) - 1);
        __mmask16 mhi = n2 <= 16 ? 0 : n2 >= 32 ? 0xFFFF : (__mmask16)((1u << (n2 - 16)) - 1);
        __mmask16 mo = m >= 16 ? 0xFFFF : (__mmask16)((1u << m) - 1);
        const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
        __m512 lo0 = _mm512_maskz_loadu_ps(mlo, p0), hi0 = _mm512_maskz_loadu_ps(mhi, p0 + 16);
        __m512 lo1 = _mm512_maskz_loadu_ps(mlo, p1), hi1 = _mm512_maskz_loadu_ps(mhi, p1 + 16);
        __m512 best;
        __m512i k;
        CT_POOL_PICK16(lo0, hi0, lo1, hi1, best, k);
        _mm512_mask_storeu_ps(orow + ow, mo, best);
        /* index = base + c + (k & 1) + (k >> 1) * W, with c = 2 * (ow + lane) */
        __m512i start = _mm512_add_epi64(_mm512_set1_epi64(base + 2 * ow), lane2);
        for (int h = 0; h < 2; h++) {
            __m512i kh = _mm512_cvtepi32_epi64(h ? _mm512_extracti64x4_epi64(k, 1) : _mm512_castsi512_si256(k));
            __m512i idx = _mm512_add_epi64(start, _mm512_and_si512(kh, one64));
            idx = _mm512_mask_add_epi64(idx, _mm512_test_epi64_mask(kh, two64), idx, vW);
            if (h) idx = _mm512_add_epi64(idx, _mm512_set1_epi64(16));
            _mm512_mask_storeu_epi64(irow + ow + 8 * h, (__mmask8)(h ? mo >> 8 : mo), idx);
        }
    }
}

/* The same with AVX2: eight windows per step, masked loads and stores for the short rows
 * (Wo = 14, 7: the compiler's loop ran them scalar), even and odd columns split with
 * in-lane shuffles and a 64-bit lane permute. Same comparisons, same order, same
 * values and indices as maxpool_row2_f32. */
__attribute__((target("avx2,fma"))) static void maxpool_row2_f32_avx2(const float *restrict r0,
                                                                      const float *restrict r1, float *restrict orow,
                                                                      int64_t *restrict irow, int64_t Wo, int64_t base,
                                                                      int64_t W) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i vW = _mm256_set1_epi64x(W), one64 = _mm256_set1_epi64x(1), lane2 = _mm256_setr_epi64x(0, 2, 4, 6);
    for (int64_t ow = 0; ow < Wo; ow += 8) {
        int64_t m = Wo - ow < 8 ? Wo - ow : 8, n2 = 2 * m;
        __m256i mlo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n2 < 8 ? n2 : 8)), iota);
        __m256i mhi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n2 > 8 ? n2 - 8 : 0)), iota);
        const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
        __m256 lo0 = _mm256_maskload_ps(p0, mlo), hi0 = _mm256_maskload_ps(p0 + 8, mhi);
        __m256 lo1 = _mm256_maskload_ps(p1, mlo), hi1 = _mm256_maskload_ps(p1 + 8, mhi);
        __m256 best;
        __m256i k;
        CT_POOL_PICK4(lo0, hi0, lo1, hi1, best, k);
        /* A short step's results go through a buffer: masked stores (vmaskmov) are
         * microcoded on AMD's cores, tens of cycles each, and took most of this loop's
         * time at Wo = 14 (one full and one short step per row). */
        float ob[8];
        int64_t ib[8];
        float *od = m == 8 ? orow + ow : ob;
        int64_t *id = m == 8 ? irow + ow : ib;
        _mm256_storeu_ps(od, best);
        for (int h = 0; h < 2; h++) {
            __m256i kh = _mm256_cvtepi32_epi64(h ? _mm256_extracti128_si256(k, 1) : _mm256_castsi256_si128(k));
            __m256i idx = _mm256_add_epi64(_mm256_set1_epi64x(base + 2 * ow + 8 * h), lane2);
            idx = _mm256_add_epi64(idx, _mm256_and_si256(kh, one64));
            idx = _mm256_add_epi64(idx, _mm256_and_si256(_mm256_cmpgt_epi64(kh, one64), vW)); /* k >= 2: next row */
            _mm256_storeu_si256((__m256i *)(id + 4 * h), idx);
        }
        if (m < 8) {
            memcpy(orow + ow, ob, sizeof(float) * (size_t)m);
            memcpy(irow + ow, ib, sizeof(int64_t) * (size_t)m);
        }
    }
}
#endif

static maxpool_row2_f32_fn pick_maxpool_row2_f32(void) {
#ifdef CT_POOL_AVX512
    if (ct__cpu_isa() == CT_ISA_AVX512) return maxpool_row2_f32_avx512;
    if (ct__cpu_isa() == CT_ISA_AVX2) return maxpool_row2_f32_avx2;
#endif
    return maxpool_row2_f32;
}

#define MAXPOOL(NAME, T, ROW2)                                                                                     \
    CT_LOOP_ATTR static void NAME(const T *x, T *o, int64_t *ix, int64_t H, int64_t W, const geom *g, ROW2##_fn row2) { \
        if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->dh == 1 &&  \
            g->dw == 1 && 2 * g->Ho <= H && 2 * g->Wo <= W) {                                                 \
            for (int64_t oh = 0; oh < g->Ho; oh++)                                                           \
                row2(x + 2 * oh * W, x + (2 * oh + 1) * W, o + oh * g->Wo, ix + oh * g->Wo, g->Wo, 2 * oh * W, W); \
            return;                                                                                          \
        }                                                                                                    \
        /* columns whose windows lie inside the row: [ow0, ow1) */                                         \
        int64_t ow0 = (g->pw + g->sw - 1) / g->sw;                                                           \
        int64_t ow1 = W - 1 + g->pw - (g->kw - 1) * g->dw >= 0 ? (W - 1 + g->pw - (g->kw - 1) * g->dw) / g->sw + 1 : 0; \
        if (ow1 > g->Wo) ow1 = g->Wo;                                                                        \
        if (ow0 > ow1) ow0 = ow1;                                                                            \
        for (int64_t oh = 0; oh < g->Ho; oh++) {                                                             \
            T *orow = o + oh * g->Wo;                                                                        \
            int64_t *irow = ix + oh * g->Wo;                                                                 \
            bool first = true;                                                                               \
            /* the inner columns tap by tap, branch-free so they vectorise; the first tap of \
             * the first row inside the image starts every window */                                        \
            for (int64_t ki = 0; ki < g->kh && ow0 < ow1; ki++) {                                            \
                int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                                \
                if (ih < 0 || ih >= H) continue;                                                             \
                for (int64_t kj = 0; kj < g->kw; kj++) {                                                     \
                    int64_t off = ih * W - g->pw + kj * g->dw, sw = g->sw;                                   \
                    const T *xs = x + off;                                                                   \
                    if (first) {                                                                             \
                        for (int64_t ow = ow0; ow < ow1; ow++) orow[ow] = xs[ow * sw], irow[ow] = off + ow * sw; \
                        first = false;                                                                       \
                        continue;                                                                            \
                    }                                                                                        \
                    for (int64_t ow = ow0; ow < ow1; ow++) {                                                 \
                        T v = xs[ow * sw], b = orow[ow];                                                     \
                        int u = (v > b) | (v != v);                                                          \
                        orow[ow] = u ? v : b;                                                                \
                        irow[ow] = u ? off + ow * sw : irow[ow];                                             \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
            for (int64_t ow = 0; ow < g->Wo; ow++) {                                                         \
                if (!first && ow == ow0) ow = ow1; /* done above */                                          \
                if (ow >= g->Wo) break;                                                                      \
                T best = -INFINITY;                                                                          \
                int64_t bi = -1;                                                                             \
                for (int64_t ki = 0; ki < g->kh; ki++) {                                                     \
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                            \
                    if (ih < 0 || ih >= H) continue;                                                         \
                    for (int64_t kj = 0; kj < g->kw; kj++) {                                                 \
                        int64_t iw = ow * g->sw - g->pw + kj * g->dw;                                        \
                        if (iw < 0 || iw >= W) continue;                                                     \
                        T v = x[ih * W + iw];                                                                \
                        if (v > best || v != v || bi < 0) {                                                  \
                            best = v;                                                                        \
                            bi = ih * W + iw;                                                                \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
                orow[ow] = best;                                                                             \
                irow[ow] = bi;                                                                               \
            }                                                                                                \
        }                                                                                                    \
    }
MAXPOOL(maxpool_f32, float, maxpool_row2_f32)
MAXPOOL(maxpool_f64, double, maxpool_row2_f64)

void ct__cpu_max_pool_plane(bool f32, const void *x, void *o, int64_t *ix, int64_t H, int64_t W, const int64_t *iv) {
    geom g = geom_of(iv);
    if (f32) maxpool_f32(x, o, ix, H, W, &g, pick_maxpool_row2_f32());
    else maxpool_f64(x, o, ix, H, W, &g, maxpool_row2_f64);
}

/* Average pooling of one plane, an output row at a time: the window rows are first
 * added column by column into cs (W doubles; a vector add per input element), then each
 * output adds its window's columns of cs. Summing each window element by element made
 * every add wait for the last: 7x7 windows ran at 1.5x PyTorch's time. */
#define AVGPOOL(NAME, T)                                                                                     \
    CT_LOOP_ATTR static void NAME(const T *x, T *o, int64_t H, int64_t W, const geom *g, bool incl,          \
                                  int64_t divisor, double *cs) {                                             \
        for (int64_t oh = 0; oh < g->Ho; oh++) {                                                             \
            int64_t h0 = oh * g->sh - g->ph, h1 = h0 + g->kh < H + g->ph ? h0 + g->kh : H + g->ph;           \
            int64_t ph = h1 - h0;                                                                            \
            if (h0 < 0) h0 = 0;                                                                              \
            if (h1 > H) h1 = H;                                                                              \
            for (int64_t iw = 0; iw < W; iw++) cs[iw] = 0;                                                   \
            for (int64_t ih = h0; ih < h1; ih++)                                                             \
                for (int64_t iw = 0; iw < W; iw++) cs[iw] += (double)x[ih * W + iw];                         \
            for (int64_t ow = 0; ow < g->Wo; ow++) {                                                         \
                int64_t w0 = ow * g->sw - g->pw, w1 = w0 + g->kw < W + g->pw ? w0 + g->kw : W + g->pw;       \
                int64_t pool = ph * (w1 - w0);                                                               \
                if (w0 < 0) w0 = 0;                                                                          \
                if (w1 > W) w1 = W;                                                                          \
                double s = 0;                                                                                \
                for (int64_t iw = w0; iw < w1; iw++) s += cs[iw];                                            \
                int64_t div = divisor ? divisor : incl ? pool : (h1 - h0) * (w1 - w0);                       \
                o[oh * g->Wo + ow] = (T)(div ? s / (double)div : NAN);                                       \
            }                                                                                                \
        }                                                                                                    \
    }
AVGPOOL(avgpool_f32, float)
AVGPOOL(avgpool_f64, double)

static int cpu_pool2d(const ct_kernel_args *a) {
    const ct_tensor *x = a->in[0];
    ct_tensor *o = a->out[0];
    geom g = geom_of(a->iv);
    bool is_max = a->op == CT_OP_MAX_POOL2D;
    int64_t N = x->sizes[0], C = x->sizes[1], H = x->sizes[2], W = x->sizes[3];
    int64_t planes = N * C, psz = H * W, osz = g.Ho * g.Wo;
    if (x->dtype != CT_FLOAT32 && x->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(x->dtype));
    bool f32 = x->dtype == CT_FLOAT32, incl = a->n_iv > 10 && a->iv[10];
    int64_t divisor = a->n_iv > 11 ? a->iv[11] : 0;
    const char *xp = ct__data(x);
    char *op = ct__data(o);
    int64_t *ip = is_max ? ct__data(a->out[1]) : NULL;
    size_t es = ct_dtype_size(x->dtype);
    maxpool_row2_f32_fn row2_f32 = pick_maxpool_row2_f32();
    bool oom = false;
    CT_PARALLEL_IF(planes > 1 && planes * psz >= CT_GRAIN, {
        double *cs = is_max ? NULL : malloc((size_t)(W > 0 ? W : 1) * sizeof(double)); /* avg: column sums */
        if (!is_max && !cs) {
            _Pragma("omp atomic write")
            oom = true;
        }
        _Pragma("omp for schedule(static)")
        for (int64_t p = 0; p < planes; p++) {
            const char *xi = xp + (size_t)(p * psz) * es;
            char *oi = op + (size_t)(p * osz) * es;
            if (is_max) {
                if (f32) maxpool_f32((const float *)xi, (float *)oi, ip + p * osz, H, W, &g, row2_f32);
                else maxpool_f64((const double *)xi, (double *)oi, ip + p * osz, H, W, &g, maxpool_row2_f64);
            } else if (cs) {
                if (f32) avgpool_f32((const float *)xi, (float *)oi, H, W, &g, incl, divisor, cs);
                else avgpool_f64((const double *)xi, (double *)oi, H, W, &g, incl, divisor, cs);
            }
        }
        free(cs);
    });
    if (oom) return ct__errs(CT_ERR_OOM, "%s: out of memory", ct__op_name(a->op));
    return 0;
}

/* max_pool2d's input gradient: each plane zeroed, then every output gradient added at
 * its window's index (windows may overlap, so indices may repeat within a plane);
 * planes are independent and split over threads. */
static int cpu_max_pool2d_bwd(const ct_kernel_args *a) {
    const ct_tensor *g = a->in[0], *ix = a->in[1];
    ct_tensor *o = a->out[0];
    int64_t planes = o->sizes[0] * o->sizes[1], psz = o->sizes[2] * o->sizes[3], gsz = g->numel / (planes ? planes : 1);
    if (o->dtype != CT_FLOAT32 && o->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: not implemented for '%s'", ct__op_name(a->op), ct_dtype_name(o->dtype));
    bool f32 = o->dtype == CT_FLOAT32;
    const int64_t *ip = ct__data(ix);
    CT_PARALLEL_FOR_IF(planes > 1 && planes * psz >= CT_GRAIN, for (int64_t p = 0; p < planes; p++), {
        const int64_t *pi = ip + p * gsz;
        if (f32) {
            float *op = (float *)ct__data(o) + p * psz;
            const float *gp = (const float *)ct__data(g) + p * gsz;
            memset(op, 0, sizeof(float) * (size_t)psz);
            for (int64_t i = 0; i < gsz; i++)
                if ((uint64_t)pi[i] < (uint64_t)psz) op[pi[i]] += gp[i];
        } else {
            double *op = (double *)ct__data(o) + p * psz;
            const double *gp = (const double *)ct__data(g) + p * gsz;
            memset(op, 0, sizeof(double) * (size_t)psz);
            for (int64_t i = 0; i < gsz; i++)
                if ((uint64_t)pi[i] < (uint64_t)psz) op[pi[i]] += gp[i];
        }
    });
    return 0;
}

void ct_cpu_register_conv(ct_kernel_fn *k) {
    k[CT_OP_UNFOLD] = cpu_unfold_fold;
    k[CT_OP_FOLD] = cpu_unfold_fold;
    k[CT_OP_CONV2D] = cpu_conv;
    k[CT_OP_CONV2D_BWD_INPUT] = cpu_conv;
    k[CT_OP_CONV2D_BWD_WEIGHT] = cpu_conv;
    k[CT_OP_MAX_POOL2D] = cpu_pool2d;
    k[CT_OP_AVG_POOL2D] = cpu_pool2d;
    k[CT_OP_MAX_POOL2D_BWD] = cpu_max_pool2d_bwd;
}
