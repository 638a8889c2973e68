/* CPU kernels for convolution and pooling: im2col / col2im (the unfold and fold of
 * torch.nn.functional, and the core of conv2d and its gradients) and 2-D max / average
 * pooling. Tensors are contiguous NCHW; work is split over the N*C planes. */
#include <math.h>

#include "cpu/loops.h"

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
#pragma omp parallel for schedule(static) if (planes > 1 && planes * csz >= CT_GRAIN)
    for (int64_t p = 0; p < planes; p++) {
        char *xi = ip + (size_t)(p * psz) * es, *ci = cp + (size_t)(p * csz) * es;
        if (unfold) {
            if (f32) im2col_f32((const float *)xi, (float *)ci, H, W, &g);
            else im2col_f64((const double *)xi, (double *)ci, H, W, &g);
        } else {
            if (f32) col2im_f32((const float *)ci, (float *)xi, H, W, &g);
            else col2im_f64((const double *)ci, (double *)xi, H, W, &g);
        }
    }
    return 0;
}

/* ---- pooling ---- */
/* Max over each window; NaN wins (as PyTorch). The common 2x2/stride-2 unpadded case
 * gets a branch-light path. */
#define MAXPOOL(NAME, T)                                                                                     \
    static void NAME(const T *x, T *o, int64_t *ix, int64_t H, int64_t W, const geom *g) {                   \
        if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->dh == 1 &&  \
            g->dw == 1 && 2 * g->Ho <= H && 2 * g->Wo <= W) {                                                 \
            for (int64_t oh = 0; oh < g->Ho; oh++) {                                                         \
                const T *r0 = x + 2 * oh * W, *r1 = r0 + W;                                                  \
                for (int64_t ow = 0; ow < g->Wo; ow++) {                                                     \
                    int64_t c = 2 * ow, b = 2 * oh * W + c;                                                  \
                    T best = r0[c];                                                                          \
                    int64_t bi = b;                                                                          \
                    if (!(best != best)) {                                                                   \
                        if (r0[c + 1] > best || r0[c + 1] != r0[c + 1]) best = r0[c + 1], bi = b + 1;        \
                        if (!(best != best) && (r1[c] > best || r1[c] != r1[c])) best = r1[c], bi = b + W;   \
                        if (!(best != best) && (r1[c + 1] > best || r1[c + 1] != r1[c + 1]))                 \
                            best = r1[c + 1], bi = b + W + 1;                                                \
                    }                                                                                        \
                    o[oh * g->Wo + ow] = best;                                                               \
                    ix[oh * g->Wo + ow] = bi;                                                                \
                }                                                                                            \
            }                                                                                                \
            return;                                                                                          \
        }                                                                                                    \
        for (int64_t oh = 0; oh < g->Ho; oh++)                                                               \
            for (int64_t ow = 0; ow < g->Wo; ow++) {                                                         \
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
                            if (v != v) goto done_##NAME;                                                    \
                        }                                                                                    \
                    }                                                                                        \
                }                                                                                            \
            done_##NAME:                                                                                     \
                o[oh * g->Wo + ow] = best;                                                                   \
                ix[oh * g->Wo + ow] = bi;                                                                    \
            }                                                                                                \
    }
MAXPOOL(maxpool_f32, float)
MAXPOOL(maxpool_f64, double)

#define AVGPOOL(NAME, T)                                                                                     \
    static void NAME(const T *x, T *o, int64_t H, int64_t W, const geom *g, bool incl, int64_t divisor) {    \
        for (int64_t oh = 0; oh < g->Ho; oh++)                                                               \
            for (int64_t ow = 0; ow < g->Wo; ow++) {                                                         \
                int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;                                    \
                int64_t h1 = h0 + g->kh < H + g->ph ? h0 + g->kh : H + g->ph;                                \
                int64_t w1 = w0 + g->kw < W + g->pw ? w0 + g->kw : W + g->pw;                                \
                int64_t pool = (h1 - h0) * (w1 - w0);                                                        \
                if (h0 < 0) h0 = 0;                                                                          \
                if (w0 < 0) w0 = 0;                                                                          \
                if (h1 > H) h1 = H;                                                                          \
                if (w1 > W) w1 = W;                                                                          \
                double s = 0;                                                                                \
                for (int64_t ih = h0; ih < h1; ih++)                                                         \
                    for (int64_t iw = w0; iw < w1; iw++) s += x[ih * W + iw];                                \
                int64_t div = divisor ? divisor : incl ? pool : (h1 - h0) * (w1 - w0);                       \
                o[oh * g->Wo + ow] = (T)(div ? s / (double)div : NAN);                                       \
            }                                                                                                \
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
#pragma omp parallel for schedule(static) if (planes > 1 && planes * psz >= CT_GRAIN)
    for (int64_t p = 0; p < planes; p++) {
        const char *xi = xp + (size_t)(p * psz) * es;
        char *oi = op + (size_t)(p * osz) * es;
        if (is_max) {
            if (f32) maxpool_f32((const float *)xi, (float *)oi, ip + p * osz, H, W, &g);
            else maxpool_f64((const double *)xi, (double *)oi, ip + p * osz, H, W, &g);
        } else {
            if (f32) avgpool_f32((const float *)xi, (float *)oi, H, W, &g, incl, divisor);
            else avgpool_f64((const double *)xi, (double *)oi, H, W, &g, incl, divisor);
        }
    }
    return 0;
}

void ct_cpu_register_conv(ct_kernel_fn *k) {
    k[CT_OP_UNFOLD] = cpu_unfold_fold;
    k[CT_OP_FOLD] = cpu_unfold_fold;
    k[CT_OP_MAX_POOL2D] = cpu_pool2d;
    k[CT_OP_AVG_POOL2D] = cpu_pool2d;
}
