/* Vision functionals (torch.nn.functional): conv3d, max_unpool1d/2d, adaptive
 * avg/max pooling in 1-d and max in 2-d, interpolate (nearest, nearest-exact, linear,
 * bilinear), pixel_shuffle / pixel_unshuffle.
 *
 * All are COMPOSITE: built from differentiable public ops, so gradients and higher
 * derivatives come free.
 *  - conv3d stacks the kd depth taps of the (depth-padded) input into channels
 *    ([N*Do, C*kd, H, W]) and runs one conv2d (im2col + batched GEMM) with the weight
 *    viewed as [O, C/g*kd, kh, kw]: the depth windows become channels of a 2-d conv.
 *  - max_unpool is a scatter into zeros; adaptive max pooling gathers every window
 *    (padded to the widest one by repeating its first element) and takes max_dim.
 *  - interpolate is separable: one index_select (nearest) or two index_selects and a
 *    weighted sum (linear) per spatial dim, innermost dim first, which is also the
 *    order of ATen's CPU kernel, so float32 results round the same way.
 * float16 / bfloat16: conv3d, adaptive max pooling and interpolate run in float32 on
 * the widened operands, rounded once (CT_VIA_F32); max_unpool scatters them as they are. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ops/nn_common.h"
#include "ctorch/nn.h"
#include "ops/compose.h"


/* ============================== conv3d ============================== */
static const ct_conv3d_opts C3_DEFAULTS;

static ct_tensor *conv3d_impl(const ct_tensor *x, const ct_tensor *w, const ct_tensor *b, const ct_conv3d_opts *o) {
    const char *op = "conv3d";
    int64_t N = x->sizes[0], C = x->sizes[1], D = x->sizes[2], H = x->sizes[3], W = x->sizes[4];
    int64_t O = w->sizes[0], Cg = w->sizes[1], kd = w->sizes[2], kh = w->sizes[3], kw = w->sizes[4];
    int64_t G = ct__or1(o->groups);
    int64_t s[3], d[3], p[3];
    for (int i = 0; i < 3; i++) {
        if (o->stride[i] < 0) return ct__err(CT_ERR_ARG, "%s: non-positive stride is not supported", op);
        if (o->dilation[i] < 0) return ct__err(CT_ERR_ARG, "%s: dilation should be greater than zero", op);
        if (o->padding[i] < 0) return ct__err(CT_ERR_ARG, "%s: negative padding is not supported", op);
        s[i] = ct__or1(o->stride[i]), d[i] = ct__or1(o->dilation[i]), p[i] = o->padding[i];
    }
    if (o->groups < 0) return ct__err(CT_ERR_ARG, "%s: non-positive groups is not supported", op);
    if (O % G != 0)
        return ct__err(CT_ERR_SHAPE, "%s: Given groups=%lld, expected weight to be divisible by %lld at dimension 0, "
                       "but got weight of size %s instead", op, (long long)G, (long long)G, CT_SHAPESTR(w));
    if (Cg * G != C)
        return ct__err(CT_ERR_SHAPE, "%s: Given groups=%lld, weight of size %s, expected input%s to have %lld channels, "
                       "but got %lld channels instead", op, (long long)G, CT_SHAPESTR(w), CT_SHAPESTR(x),
                       (long long)(Cg * G), (long long)C);
    if (b && (b->ndim != 1 || b->sizes[0] != O))
        return ct__err(CT_ERR_SHAPE, "%s: Given weight of size %s, expected bias to be 1-dimensional with %lld elements, "
                       "but got bias of size %s instead", op, CT_SHAPESTR(w), (long long)O, CT_SHAPESTR(b));
    const ct_tensor *xin = x;
    int64_t k[3] = {kd, kh, kw}, sz[3] = {D, H, W};
    if (o->padding_mode && strcmp(o->padding_mode, "valid") == 0) {
        p[0] = p[1] = p[2] = 0;
    } else if (o->padding_mode && strcmp(o->padding_mode, "same") == 0) {
        if (s[0] != 1 || s[1] != 1 || s[2] != 1)
            return ct__err(CT_ERR_ARG, "%s: padding='same' is not supported for strided convolutions", op);
        int64_t extra[3];
        bool odd = false;
        for (int i = 0; i < 3; i++) {
            int64_t t = d[i] * (k[i] - 1);
            p[i] = t / 2, extra[i] = t % 2, odd |= extra[i] != 0;
        }
        if (odd) { /* odd total: the extra plane goes at the end, as PyTorch */
            xin = ct_pad(x, 6, (int64_t[]){0, extra[2], 0, extra[1], 0, extra[0]}, "constant", 0.0);
            if (!xin) return NULL;
            for (int i = 0; i < 3; i++) sz[i] += extra[i];
        }
    } else if (o->padding_mode) {
        return ct__err(CT_ERR_ARG, "%s: Invalid padding string '%s'", op, o->padding_mode);
    }
    for (int i = 0; i < 3; i++)
        if (sz[i] + 2 * p[i] < d[i] * (k[i] - 1) + 1)
            return ct__err(CT_ERR_SHAPE, "%s: Calculated padded input size per channel: (%lld x %lld x %lld). Kernel "
                           "size: (%lld x %lld x %lld). Kernel size can't be greater than actual input size", op,
                           (long long)(sz[0] + 2 * p[0]), (long long)(sz[1] + 2 * p[1]), (long long)(sz[2] + 2 * p[2]),
                           (long long)(d[0] * (kd - 1) + 1), (long long)(d[1] * (kh - 1) + 1),
                           (long long)(d[2] * (kw - 1) + 1));
    int64_t Do = (sz[0] + 2 * p[0] - d[0] * (kd - 1) - 1) / s[0] + 1;
    /* depth taps: xp [N, Dp, C, H, W] (a view), tap t = planes t*dd + j*sd, j < Do */
    const ct_tensor *xp = p[0] ? ct_pad(xin, 6, (int64_t[]){0, 0, 0, 0, p[0], p[0]}, "constant", 0.0) : xin;
    xp = ct_transpose(xp, 1, 2);
    if (!xp) return NULL;
    ct_tensor *taps_buf[64];
    ct_tensor **taps = kd <= 64 ? taps_buf : malloc(sizeof(ct_tensor *) * (size_t)kd);
    if (!taps) return ct__err(CT_ERR_OOM, "%s: out of memory", op);
    for (int64_t t = 0; t < kd; t++) taps[t] = ct_slice(xp, 1, t * d[0], t * d[0] + (Do - 1) * s[0] + 1, s[0]);
    /* [N, Do, C, kd, H, W] -> [N*Do, C*kd, H, W] */
    ct_tensor *st = ct_stack((int)kd, (const ct_tensor *const *)taps, 3);
    if (taps != taps_buf) free(taps);
    st = ct_reshape(st, 4, (int64_t[]){N * Do, C * kd, sz[1], sz[2]});
    ct_tensor *w2 = ct_reshape(w, 4, (int64_t[]){O, Cg * kd, kh, kw});
    ct_conv_opts o2 = {.stride = {s[1], s[2]}, .padding = {p[1], p[2]}, .dilation = {d[1], d[2]}, .groups = G};
    ct_tensor *y = ct_nn_conv2d(st, w2, NULL, &o2);
    if (!y) return NULL;
    int64_t Ho = y->sizes[2], Wo = y->sizes[3];
    y = ct_contiguous(ct_transpose(ct_reshape(y, 5, (int64_t[]){N, Do, O, Ho, Wo}), 1, 2));
    if (b) y = ct_add(y, ct_reshape(b, 5, (int64_t[]){1, O, 1, 1, 1}));
    return y;
}

CT_API ct_tensor *ct_nn_conv3d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv3d_opts *opts) {
    CT_CHECK_ARG("conv3d", input);
    CT_CHECK_ARG("conv3d", weight);
    const ct_conv3d_opts *o = opts ? opts : &C3_DEFAULTS;
    if (input->ndim != 4 && input->ndim != 5)
        return ct__err(CT_ERR_SHAPE, "conv3d: Expected 4D (unbatched) or 5D (batched) input to conv3d, but got input "
                       "of size: %s", CT_SHAPESTR(input));
    if (weight->ndim != 5)
        return ct__err(CT_ERR_SHAPE, "conv3d: Expected 5-dimensional weight for conv3d, but got %d-dimensional weight "
                       "of size %s", weight->ndim, CT_SHAPESTR(weight));
    if (ct__check_float("conv3d", input)) return NULL;
    if (weight->dtype != input->dtype || (bias && bias->dtype != input->dtype))
        return ct__err(CT_ERR_DTYPE, "conv3d: Input type (%s) and weight type (%s) should be the same",
                       ct__scalar_type_name(input->dtype),
                       ct__scalar_type_name(weight->dtype != input->dtype ? weight->dtype : bias->dtype));
    if (ct__is_half(input->dtype)) { /* in float32 on the widened operands, rounded once */
        CT_COMPOSE_BEGIN
        ct_tensor *wf = ct_to_dtype(weight, CT_FLOAT32), *bf = bias ? ct_to_dtype(bias, CT_FLOAT32) : NULL;
        if (wf && (!bias || bf)) r_ = CT_VIA_F32(input, xf, ct_nn_conv3d(xf, wf, bf, opts), (void)0);
        CT_COMPOSE_END
    }
    CT_COMPOSE_BEGIN
    if (input->ndim == 4) r_ = ct_squeeze_dim(conv3d_impl(ct_unsqueeze(input, 0), weight, bias, o), 0);
    else r_ = conv3d_impl(input, weight, bias, o);
    CT_COMPOSE_END
}

/* ============================== pooling ============================== */
static int check_pool_input(const char *op, const ct_tensor *x, int spatial, bool any_dtype) {
    if (x->ndim != spatial + 1 && x->ndim != spatial + 2)
        return ct__errs(CT_ERR_SHAPE, "%s: Expected %dD or %dD (batch mode) tensor with optional 0 dim batch size for "
                        "input, but got: %s", op, spatial + 1, spatial + 2, CT_SHAPESTR(x));
    if (!any_dtype && ct__check_float(op, x)) return CT_ERR_DTYPE;
    for (int d = x->ndim - spatial; d < x->ndim; d++)
        if (x->sizes[d] == 0)
            return ct__errs(CT_ERR_SHAPE, "%s: Expected input to have non-zero size for non-batch dimensions, but input "
                            "has sizes %s", op, CT_SHAPESTR(x));
    return 0;
}

/* max_unpool over a batched [N, C, *spatial] input, spatial 1 or 2 */
static ct_tensor *unpool_impl(const char *op, int sp, const ct_tensor *x, const ct_tensor *idx, const int64_t *k,
                              const int64_t *st, const int64_t *pd, const int64_t *osz) {
    if (idx->dtype != CT_INT64)
        return ct__err(CT_ERR_DTYPE, "%s: elements in indices should be type int64 but got: %s", op,
                       ct__scalar_type_name(idx->dtype));
    if (idx->ndim != x->ndim || memcmp(idx->sizes, x->sizes, sizeof(int64_t) * (size_t)x->ndim))
        return ct__err(CT_ERR_SHAPE, "%s: Expected shape of indices to be same as that of the input tensor (%s) but got "
                       "indices tensor with shape: %s", op, CT_SHAPESTR(x), CT_SHAPESTR(idx));
    int64_t out[2], n_out = 1;
    for (int i = 0; i < sp; i++) {
        if (k[i] <= 0) return ct__err(CT_ERR_ARG, "%s: kernel_size must be positive", op);
        int64_t s = st && st[i] ? st[i] : k[i], p = pd ? pd[i] : 0;
        if (s < 0 || p < 0) return ct__err(CT_ERR_ARG, "%s: stride and padding must be non-negative", op);
        int64_t in = x->sizes[x->ndim - sp + i];
        int64_t def = (in - 1) * s - 2 * p + k[i];
        out[i] = def;
        if (osz) {
            if (osz[i] <= def - s || osz[i] >= def + s)
                return ct__err(CT_ERR_ARG, "%s: invalid output_size (dim %d must be between %lld and %lld, got %lld)", op,
                               i, (long long)(def - s), (long long)(def + s), (long long)osz[i]);
            out[i] = osz[i];
        }
        if (out[i] <= 0)
            return ct__err(CT_ERR_SHAPE, "%s: output size must be positive, got %lld", op, (long long)out[i]);
        n_out *= out[i];
    }
    /* every index must land in the output plane */
    int64_t n = idx->numel;
    if (n) {
        int64_t *v = malloc(sizeof(int64_t) * (size_t)n);
        if (!v) return ct__err(CT_ERR_OOM, "%s: out of memory", op);
        if (ct_copy_to_buffer(idx, v, sizeof(int64_t) * (size_t)n, CT_INT64)) { free(v); return NULL; }
        for (int64_t i = 0; i < n; i++)
            if (v[i] < 0 || v[i] >= n_out) {
                long long bad = (long long)v[i];
                free(v);
                if (sp == 2)
                    return ct__err(CT_ERR_INDEX, "%s: Found an invalid max index: %lld (output volumes are of size "
                                   "%lldx%lld)", op, bad, (long long)out[0], (long long)out[1]);
                return ct__err(CT_ERR_INDEX, "%s: Found an invalid max index: %lld (output volumes are of size %lld)",
                               op, bad, (long long)out[0]);
            }
        free(v);
    }
    int64_t N = x->sizes[0], C = x->sizes[1];
    ct_tensor *z = ct_zeros(3, (int64_t[]){N, C, n_out}, x->dtype);
    ct_tensor *y = ct_scatter(z, 2, ct_reshape(idx, 3, (int64_t[]){N, C, -1}), ct_reshape(x, 3, (int64_t[]){N, C, -1}));
    int64_t shp[4] = {N, C, out[0], out[1]};
    return ct_reshape(y, 2 + sp, shp);
}

static ct_tensor *unpool(const char *op, int sp, const ct_tensor *x, const ct_tensor *idx, const int64_t *k,
                         const int64_t *st, const int64_t *pd, const int64_t *osz) {
    if (check_pool_input(op, x, sp, false)) return NULL;
    CT_COMPOSE_BEGIN
    if (x->ndim == sp + 1)
        r_ = ct_squeeze_dim(unpool_impl(op, sp, ct_unsqueeze(x, 0), ct_unsqueeze(idx, 0), k, st, pd, osz), 0);
    else
        r_ = unpool_impl(op, sp, x, idx, k, st, pd, osz);
    CT_COMPOSE_END
}

CT_API ct_tensor *ct_nn_max_unpool2d(const ct_tensor *input, const ct_tensor *indices, const int64_t kernel[2],
                                     const int64_t stride[2], const int64_t padding[2], const int64_t output_size[2]) {
    CT_CHECK_ARG("max_unpool2d", input);
    CT_CHECK_ARG("max_unpool2d", indices);
    if (!kernel) return ct__err(CT_ERR_ARG, "max_unpool2d: kernel_size is required");
    return unpool("max_unpool2d", 2, input, indices, kernel, stride, padding, output_size);
}

CT_API ct_tensor *ct_nn_max_unpool1d(const ct_tensor *input, const ct_tensor *indices, int64_t kernel, int64_t stride,
                                     int64_t padding, int64_t output_size) {
    CT_CHECK_ARG("max_unpool1d", input);
    CT_CHECK_ARG("max_unpool1d", indices);
    return unpool("max_unpool1d", 1, input, indices, &kernel, &stride, &padding, output_size ? &output_size : NULL);
}

CT_API ct_tensor *ct_nn_adaptive_avg_pool1d(const ct_tensor *input, int64_t output_size) {
    CT_CHECK_ARG("adaptive_avg_pool1d", input);
    if (check_pool_input("adaptive_avg_pool1d", input, 1, false)) return NULL;
    if (output_size <= 0)
        return ct__err(CT_ERR_ARG, "adaptive_avg_pool1d: elements of output_size must be greater than or equal to 1");
    CT_COMPOSE_BEGIN
    r_ = ct_squeeze_dim(ct_nn_adaptive_avg_pool2d(ct_unsqueeze(input, -2), (int64_t[]){1, output_size}), -2);
    CT_COMPOSE_END
}

/* Start and end of window i of n over size (PyTorch's adaptive rule). */
static int64_t win_start(int64_t i, int64_t size, int64_t n) { return i * size / n; }
static int64_t win_end(int64_t i, int64_t size, int64_t n) { return ((i + 1) * size + n - 1) / n; }

/* batched [N, C, H, W] -> values; *ind the flat indices */
static ct_tensor *adaptive_max_impl(const ct_tensor *x, int64_t Ho, int64_t Wo, ct_tensor **ind) {
    int64_t N = x->sizes[0], C = x->sizes[1], H = x->sizes[2], W = x->sizes[3];
    int64_t mh = 0, mw = 0;
    for (int64_t i = 0; i < Ho; i++) {
        int64_t e = win_end(i, H, Ho) - win_start(i, H, Ho);
        if (e > mh) mh = e;
    }
    for (int64_t j = 0; j < Wo; j++) {
        int64_t e = win_end(j, W, Wo) - win_start(j, W, Wo);
        if (e > mw) mw = e;
    }
    int64_t K = mh * mw, L = Ho * Wo;
    ct_tensor *tab = ct_empty(2, (int64_t[]){L, K}, CT_INT64);
    if (!tab) return NULL;
    int64_t *t = ct_data_ptr(tab);
    /* window (i, j): its positions in scan order (rows, then columns), padded with its
     * first position, which neither changes the max nor the first index of it */
    for (int64_t i = 0; i < Ho; i++)
        for (int64_t j = 0; j < Wo; j++) {
            int64_t h0 = win_start(i, H, Ho), h1 = win_end(i, H, Ho), w0 = win_start(j, W, Wo), w1 = win_end(j, W, Wo);
            int64_t *row = t + (i * Wo + j) * K, m = 0;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) row[m++] = h * W + w;
            for (; m < K; m++) row[m] = row[0];
        }
    ct_tensor *flat = ct_reshape(x, 3, (int64_t[]){N, C, H * W});
    ct_tensor *gi = ct_expand(ct_reshape(tab, 3, (int64_t[]){1, 1, L * K}), 3, (int64_t[]){N, C, L * K});
    ct_tensor *g = ct_reshape(ct_gather(flat, 2, gi), 4, (int64_t[]){N, C, L, K});
    ct_tensor *arg = NULL;
    ct_tensor *v = ct_max_dim(g, 3, false, &arg);
    if (!v) return NULL;
    if (ind) {
        /* flat index = tab[l, arg] */
        ct_tensor *ti = ct_expand(ct_reshape(tab, 3, (int64_t[]){1, L, K}), 3, (int64_t[]){N * C, L, K});
        ct_tensor *sel = ct_gather(ti, 2, ct_reshape(arg, 3, (int64_t[]){N * C, L, 1}));
        *ind = ct_reshape(sel, 4, (int64_t[]){N, C, Ho, Wo});
        if (!*ind) return NULL;
    }
    return ct_reshape(v, 4, (int64_t[]){N, C, Ho, Wo});
}

static ct_tensor *adaptive_max(const char *op, int sp, const ct_tensor *x, const int64_t *osz, ct_tensor **indices) {
    if (indices) *indices = NULL;
    if (check_pool_input(op, x, sp, false)) return NULL;
    for (int i = 0; i < sp; i++)
        if (osz[i] <= 0)
            return ct__err(CT_ERR_ARG, "%s: elements of output_size must be greater than or equal to 1", op);
    if (ct__is_half(x->dtype)) { /* in float32 (the gradient's sums rounded once) */
        ct_tensor *r = CT_VIA_F32(x, xf, adaptive_max(op, sp, xf, osz, indices), if (indices) *indices = ct_keep(*indices));
        if (!r && indices) *indices = NULL;
        return r;
    }
    CT_COMPOSE_BEGIN
    bool batched = x->ndim == sp + 2;
    const ct_tensor *x4 = batched ? x : ct_unsqueeze(x, 0);
    if (sp == 1) x4 = ct_unsqueeze(x4, 2);
    ct_tensor *ind = NULL;
    int64_t Ho = sp == 2 ? osz[0] : 1, Wo = osz[sp - 1];
    r_ = x4 ? adaptive_max_impl(x4, Ho, Wo, indices ? &ind : NULL) : NULL;
    if (sp == 1) r_ = ct_squeeze_dim(r_, 2), ind = ind ? ct_squeeze_dim(ind, 2) : NULL;
    if (!batched) r_ = ct_squeeze_dim(r_, 0), ind = ind ? ct_squeeze_dim(ind, 0) : NULL;
    if (r_ && indices) *indices = ct_keep(ind);
    CT_COMPOSE_END
}

CT_API ct_tensor *ct_nn_adaptive_max_pool2d(const ct_tensor *input, const int64_t output_size[2], ct_tensor **indices) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG("adaptive_max_pool2d", input);
    if (!output_size) return ct__err(CT_ERR_ARG, "adaptive_max_pool2d: output_size is required");
    return adaptive_max("adaptive_max_pool2d", 2, input, output_size, indices);
}

CT_API ct_tensor *ct_nn_adaptive_max_pool1d(const ct_tensor *input, int64_t output_size, ct_tensor **indices) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG("adaptive_max_pool1d", input);
    return adaptive_max("adaptive_max_pool1d", 1, input, &output_size, indices);
}

/* ============================== interpolate ============================== */
enum { M_NEAREST, M_NEAREST_EXACT, M_LINEAR, M_BILINEAR, M_TRILINEAR, M_BICUBIC, M_AREA };

/* Nearest source indices (ATen's nearest_idx / nearest_exact_idx: float scale). */
static void nearest_indices(int64_t *idx, int64_t in, int64_t out, bool has_scale, double scale, bool exact) {
    float sc = has_scale && scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    for (int64_t i = 0; i < out; i++) {
        int64_t s;
        if (!exact && out == in) s = i;
        else if (!exact && out == 2 * in) s = i >> 1;
        else if (!exact) s = (int64_t)floorf((float)i * sc);
        else s = (int64_t)floorf((float)(((double)i + 0.5) * (double)sc));
        idx[i] = s < in - 1 ? s : in - 1;
    }
}

/* Linear source indices and weights (area_pixel_compute_scale / _source_index and
 * guard_index_and_lambda) in T, the op-math type: float for float32, double for float64. */
#define LINEAR_WEIGHTS(NAME, T, FLOOR)                                                                        \
    static void NAME(int64_t *i0, int64_t *i1, double *l0, double *l1, int64_t in, int64_t out, bool align,   \
                     bool has_scale, double scale) {                                                          \
        T sc;                                                                                                 \
        if (align) sc = out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;                                          \
        else sc = has_scale && scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out;                                 \
        for (int64_t i = 0; i < out; i++) {                                                                   \
            T src;                                                                                            \
            if (align) src = sc * (T)i;                                                                       \
            else {                                                                                            \
                src = sc * ((T)i + (T)0.5) - (T)0.5;                                                          \
                if (src < (T)0) src = (T)0;                                                                   \
            }                                                                                                 \
            int64_t k = (int64_t)FLOOR(src);                                                                  \
            if (k > in - 1) k = in - 1;                                                                       \
            T lam = src - (T)k;                                                                               \
            if (lam < (T)0) lam = (T)0;                                                                       \
            if (lam > (T)1) lam = (T)1;                                                                       \
            i0[i] = k, i1[i] = k + (k < in - 1 ? 1 : 0);                                                      \
            l0[i] = (double)((T)1 - lam), l1[i] = (double)lam;                                                \
        }                                                                                                     \
    }
LINEAR_WEIGHTS(linear_weights_f32, float, floorf)
LINEAR_WEIGHTS(linear_weights_f64, double, floor)

/* Bicubic taps (source index without the clamp at 0, floor, then the 4 neighbours
 * clamped to the input) and weights (cubic convolution, A = -0.75), in T. */
#define CUBIC_WEIGHTS(NAME, T, FLOOR)                                                                         \
    static void NAME(int64_t *idx, double *wt, int64_t in, int64_t out, bool align, bool has_scale,           \
                     double scale) {                                                                          \
        T sc;                                                                                                 \
        if (align) sc = out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;                                          \
        else sc = has_scale && scale > 0 ? (T)(1.0 / scale) : (T)in / (T)out;                                 \
        const T A = (T)-0.75;                                                                                 \
        for (int64_t i = 0; i < out; i++) {                                                                   \
            T src = align ? sc * (T)i : sc * ((T)i + (T)0.5) - (T)0.5;                                        \
            int64_t k = (int64_t)FLOOR(src);                                                                  \
            if (k > in - 1) k = in - 1;                                                                       \
            T t = src - (T)k;                                                                                 \
            if (t < (T)0) t = (T)0;                                                                           \
            if (t > (T)1) t = (T)1;                                                                           \
            T x1 = t + (T)1, x2 = (T)1 - t, x3 = x2 + (T)1;                                                   \
            T c[4] = {((A * x1 - (T)5 * A) * x1 + (T)8 * A) * x1 - (T)4 * A,                                  \
                      ((A + (T)2) * t - (A + (T)3)) * t * t + (T)1,                                           \
                      ((A + (T)2) * x2 - (A + (T)3)) * x2 * x2 + (T)1,                                        \
                      ((A * x3 - (T)5 * A) * x3 + (T)8 * A) * x3 - (T)4 * A};                                 \
            for (int j = 0; j < 4; j++) {                                                                     \
                int64_t q = k - 1 + j;                                                                        \
                idx[j * out + i] = q < 0 ? 0 : q > in - 1 ? in - 1 : q;                                       \
                wt[j * out + i] = (double)c[j];                                                               \
            }                                                                                                 \
        }                                                                                                     \
    }
CUBIC_WEIGHTS(cubic_weights_f32, float, floorf)
CUBIC_WEIGHTS(cubic_weights_f64, double, floor)

/* Resamples x along dim from in to out. */
static ct_tensor *resample_dim(const ct_tensor *x, int dim, int64_t out, int mode, bool align, bool has_scale,
                               double scale) {
    int64_t in = x->sizes[dim];
    ct_tensor *ia = ct_empty(1, (int64_t[]){out}, CT_INT64);
    if (!ia) return NULL;
    if (mode == M_NEAREST || mode == M_NEAREST_EXACT) {
        nearest_indices(ct_data_ptr(ia), in, out, has_scale, scale, mode == M_NEAREST_EXACT);
        return ct_index_select(x, dim, ia);
    }
    int64_t shp[CT_MAX_DIMS];
    int nd = x->ndim - dim;
    shp[0] = out;
    for (int i = 1; i < nd; i++) shp[i] = 1;
    if (mode == M_BICUBIC) {
        ct_tensor *ix = ct_empty(1, (int64_t[]){4 * out}, CT_INT64);
        ct_tensor *wx = ct_empty(1, (int64_t[]){4 * out}, CT_FLOAT64);
        if (!ix || !wx) return NULL;
        if (x->dtype == CT_FLOAT32)
            cubic_weights_f32(ct_data_ptr(ix), ct_data_ptr(wx), in, out, align, has_scale, scale);
        else
            cubic_weights_f64(ct_data_ptr(ix), ct_data_ptr(wx), in, out, align, has_scale, scale);
        ct_tensor *wc = ct_to_dtype(wx, x->dtype), *y = NULL;
        for (int j = 0; j < 4; j++) { /* ((x0 w0 + x1 w1) + x2 w2) + x3 w3, as ATen accumulates */
            ct_tensor *tj = ct_mul(ct_index_select(x, dim, ct_narrow(ix, 0, j * out, out)),
                                   ct_reshape(ct_narrow(wc, 0, j * out, out), nd, shp));
            y = j ? ct_add(y, tj) : tj;
        }
        return y;
    }
    ct_tensor *ib = ct_empty(1, (int64_t[]){out}, CT_INT64);
    ct_tensor *wa = ct_empty(1, (int64_t[]){out}, CT_FLOAT64), *wb = ct_empty(1, (int64_t[]){out}, CT_FLOAT64);
    if (!ib || !wa || !wb) return NULL;
    if (x->dtype == CT_FLOAT32)
        linear_weights_f32(ct_data_ptr(ia), ct_data_ptr(ib), ct_data_ptr(wa), ct_data_ptr(wb), in, out, align,
                           has_scale, scale);
    else
        linear_weights_f64(ct_data_ptr(ia), ct_data_ptr(ib), ct_data_ptr(wa), ct_data_ptr(wb), in, out, align,
                           has_scale, scale);
    ct_tensor *l0 = ct_reshape(ct_to_dtype(wa, x->dtype), nd, shp);
    ct_tensor *l1 = ct_reshape(ct_to_dtype(wb, x->dtype), nd, shp);
    return ct_add(ct_mul(ct_index_select(x, dim, ia), l0), ct_mul(ct_index_select(x, dim, ib), l1));
}

CT_API ct_tensor *ct_nn_interpolate(const ct_tensor *input, const int64_t *size, const double *scale_factor,
                                    const char *mode, int align_corners, bool recompute_scale_factor) {
    CT_CHECK_ARG("interpolate", input);
    const char *ms = mode ? mode : "nearest";
    int m;
    if (strcmp(ms, "nearest") == 0) m = M_NEAREST;
    else if (strcmp(ms, "nearest-exact") == 0) m = M_NEAREST_EXACT;
    else if (strcmp(ms, "linear") == 0) m = M_LINEAR;
    else if (strcmp(ms, "bilinear") == 0) m = M_BILINEAR;
    else if (strcmp(ms, "trilinear") == 0) m = M_TRILINEAR;
    else if (strcmp(ms, "bicubic") == 0) m = M_BICUBIC;
    else if (strcmp(ms, "area") == 0) m = M_AREA;
    else
        return ct__err(CT_ERR_ARG, "interpolate: Input Error: Only 3D, 4D and 5D input Tensors supported (got %dD) for "
                       "the modes: nearest | linear | bilinear | nearest-exact (got %s)", input->ndim, ms);
    bool linear = m == M_LINEAR || m == M_BILINEAR || m == M_TRILINEAR || m == M_BICUBIC;
    if (!linear && align_corners >= 0)
        return ct__err(CT_ERR_ARG, "interpolate: align_corners option can only be set with the interpolating modes: "
                       "linear | bilinear | bicubic | trilinear");
    if (input->ndim < 3 || input->ndim > 5)
        return ct__err(CT_ERR_SHAPE, "interpolate: Input Error: Only 3D, 4D and 5D input Tensors supported (got %dD) "
                       "for the modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact (got %s)", input->ndim, ms);
    if (m == M_LINEAR && input->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "interpolate: Got %dD input, but linear mode needs 3D input", input->ndim);
    if (m == M_BILINEAR && input->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "interpolate: Got %dD input, but bilinear mode needs 4D input", input->ndim);
    if (m == M_BICUBIC && input->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "interpolate: Got %dD input, but bicubic mode needs 4D input", input->ndim);
    if (m == M_TRILINEAR && input->ndim != 5)
        return ct__err(CT_ERR_SHAPE, "interpolate: Got %dD input, but trilinear mode needs 5D input", input->ndim);
    if (m == M_AREA && input->ndim == 5)
        return ct__err(CT_ERR_ARG, "interpolate: mode 'area' on 5D input (adaptive_avg_pool3d) is not supported");
    if (!((m == M_NEAREST || m == M_NEAREST_EXACT) && input->dtype == CT_UINT8) && ct__check_float("interpolate", input))
        return NULL; /* (torch's nearest kernels also take uint8 images) */
    if (ct__is_half(input->dtype))
        return CT_VIA_F32(input, xf, ct_nn_interpolate(xf, size, scale_factor, mode, align_corners, recompute_scale_factor),
                          (void)0);
    if (size && scale_factor) return ct__err(CT_ERR_ARG, "interpolate: only one of size or scale_factor should be defined");
    if (!size && !scale_factor) return ct__err(CT_ERR_ARG, "interpolate: either size or scale_factor should be defined");
    if (size && recompute_scale_factor)
        return ct__err(CT_ERR_ARG, "interpolate: recompute_scale_factor is not meaningful with an explicit size.");
    int sp = input->ndim - 2;
    int64_t out[3];
    for (int i = 0; i < sp; i++) {
        int64_t in = input->sizes[2 + i];
        if (size) out[i] = size[i];
        else {
            double v = floor((double)in * scale_factor[i]);
            if (!(v >= 0) || v > 9.2e18)
                return ct__err(CT_ERR_ARG, "interpolate: invalid scale_factor %g", scale_factor[i]);
            out[i] = (int64_t)v;
        }
    }
    for (int i = 0; i < sp; i++)
        if (input->sizes[2 + i] <= 0 || out[i] <= 0) {
            static const char *nm[3][3] = {{"W"}, {"H", "W"}, {"D", "H", "W"}};
            char a[96] = "", b[96] = "";
            int ka = 0, kb = 0;
            for (int j = 0; j < sp; j++) {
                ka += snprintf(a + ka, sizeof a - (size_t)ka, "%s%s: %lld", j ? ", " : "", nm[sp - 1][j],
                               (long long)input->sizes[2 + j]);
                kb += snprintf(b + kb, sizeof b - (size_t)kb, "%s%s: %lld", j ? ", " : "", nm[sp - 1][j],
                               (long long)out[j]);
            }
            return ct__err(CT_ERR_SHAPE, "interpolate: Input and output sizes should be greater than 0, but got input "
                           "(%s) output (%s)", a, b);
        }
    bool has_scale = scale_factor && !recompute_scale_factor && m != M_AREA; /* area: torch recomputes */
    bool align = align_corners > 0;
    if (m == M_AREA)
        return sp == 1 ? ct_nn_adaptive_avg_pool1d(input, out[0]) : ct_nn_adaptive_avg_pool2d(input, out);
    CT_COMPOSE_BEGIN
    ct_tensor *y = (ct_tensor *)input;
    for (int i = sp - 1; i >= 0 && y; i--) /* innermost dim first, as ATen's kernel nests */
        y = resample_dim(y, 2 + i, out[i], m, align, has_scale, has_scale ? scale_factor[i] : 0.0);
    r_ = y == input ? ct_clone(y) : y;
    CT_COMPOSE_END
}

/* ============================== pixel shuffle ============================== */
static ct_tensor *shuffle(const char *op, const ct_tensor *x, int64_t r, bool up) {
    CT_CHECK_ARG(op, x);
    if (x->ndim < 3)
        return ct__err(CT_ERR_SHAPE, "%s expects input to have at least 3 dimensions, but got input with %d "
                       "dimension(s)", op, x->ndim);
    if (r <= 0)
        return ct__err(CT_ERR_ARG, "%s expects a positive %s, but got %lld", op,
                       up ? "upscale_factor" : "downscale_factor", (long long)r);
    int nd = x->ndim;
    int64_t C = x->sizes[nd - 3], H = x->sizes[nd - 2], W = x->sizes[nd - 1], B = 1;
    for (int d = 0; d < nd - 3; d++) B *= x->sizes[d];
    if (up && C % (r * r))
        return ct__err(CT_ERR_SHAPE, "%s expects its input's 'channel' dimension to be divisible by the square of "
                       "upscale_factor, but input.size(-3)=%lld is not divisible by %lld", op, (long long)C,
                       (long long)(r * r));
    if (!up && H % r)
        return ct__err(CT_ERR_SHAPE, "%s expects height to be divisible by downscale_factor, but input.size(-2)=%lld "
                       "is not divisible by %lld", op, (long long)H, (long long)r);
    if (!up && W % r)
        return ct__err(CT_ERR_SHAPE, "%s expects width to be divisible by downscale_factor, but input.size(-1)=%lld "
                       "is not divisible by %lld", op, (long long)W, (long long)r);
    int64_t shp[CT_MAX_DIMS];
    memcpy(shp, x->sizes, sizeof(int64_t) * (size_t)nd);
    CT_COMPOSE_BEGIN
    ct_tensor *y;
    if (up) { /* [B, c, r, r, H, W] -> [B, c, H, r, W, r] */
        int64_t c = C / (r * r);
        y = ct_reshape(x, 6, (int64_t[]){B, c, r, r, H, W});
        y = ct_permute(y, 6, (int[]){0, 1, 4, 2, 5, 3});
        shp[nd - 3] = c, shp[nd - 2] = H * r, shp[nd - 1] = W * r;
    } else { /* [B, C, h, r, w, r] -> [B, C, r, r, h, w] */
        y = ct_reshape(x, 6, (int64_t[]){B, C, H / r, r, W / r, r});
        y = ct_permute(y, 6, (int[]){0, 1, 3, 5, 2, 4});
        shp[nd - 3] = C * r * r, shp[nd - 2] = H / r, shp[nd - 1] = W / r;
    }
    r_ = ct_reshape(ct_contiguous(y), nd, shp);
    CT_COMPOSE_END
}

CT_API ct_tensor *ct_nn_pixel_shuffle(const ct_tensor *input, int64_t upscale_factor) {
    return shuffle("pixel_shuffle", input, upscale_factor, true);
}

CT_API ct_tensor *ct_nn_pixel_unshuffle(const ct_tensor *input, int64_t downscale_factor) {
    return shuffle("pixel_unshuffle", input, downscale_factor, false);
}
