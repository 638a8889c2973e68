/* Pooling (torch.nn.functional): max_pool1d/2d with indices, avg_pool1d/2d,
 * adaptive_avg_pool2d. float16 / bfloat16: max_pool2d, avg_pool2d (which the 1-d forms
 * call) and adaptive_avg_pool2d run in float32 on the widened input, rounded once.
 *
 * Forward passes are kernels (src/cpu/conv.c). Backward passes are differentiable:
 * max pooling scatters the gradient to the argmax indices (scatter_add, whose own
 * gradient is a gather); average pooling is linear, its adjoint is fold() of the
 * gradient divided by each window's divisor. */
#include <math.h>
#include <string.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "ctorch/nn.h"
#include "ops/nn_common.h"

typedef struct {
    int64_t kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, incl, divisor;
} pgeom;

static const ct_pool_opts DEFAULTS;

/* PyTorch's pooling output size, with ceil_mode's rule that the last window must start
 * inside the input or left padding. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) o--;
    return o;
}

static int geom_of(const char *op, pgeom *g, const ct_tensor *x4, const int64_t k[2], const ct_pool_opts *o, bool is_max) {
    g->kh = k[0], g->kw = k[1];
    g->sh = o->stride[0] ? o->stride[0] : k[0], g->sw = o->stride[1] ? o->stride[1] : k[1];
    g->ph = o->padding[0], g->pw = o->padding[1];
    g->dh = is_max && o->dilation[0] ? o->dilation[0] : 1, g->dw = is_max && o->dilation[1] ? o->dilation[1] : 1;
    g->incl = !o->count_include_pad_false;
    g->divisor = o->divisor_override;
    if (g->kh <= 0 || g->kw <= 0)
        return ct__errs(CT_ERR_ARG, "%s: kernel_size must be greater than zero, but got kh: %lld kw: %lld", op,
                        (long long)g->kh, (long long)g->kw);
    if (g->sh <= 0 || g->sw <= 0 || o->stride[0] < 0 || o->stride[1] < 0)
        return ct__errs(CT_ERR_ARG, "%s: stride should be greater than zero, but got dH: %lld dW: %lld", op,
                        (long long)g->sh, (long long)g->sw);
    if (g->dh <= 0 || g->dw <= 0) return ct__errs(CT_ERR_ARG, "%s: dilation should be greater than zero", op);
    if (g->ph < 0 || g->pw < 0 || g->ph > g->kh / 2 || g->pw > g->kw / 2)
        return ct__errs(CT_ERR_ARG, "%s: pad should be at most half of effective kernel size, but got pad=%lld, "
                        "kernel_size=%lld and dilation=%lld", op, (long long)(g->ph > g->kh / 2 ? g->ph : g->pw),
                        (long long)(g->ph > g->kh / 2 ? g->kh : g->kw), (long long)(g->ph > g->kh / 2 ? g->dh : g->dw));
    if (o->divisor_override < 0) return ct__errs(CT_ERR_ARG, "%s: divisor must be not zero", op);
    int64_t H = x4->sizes[2], W = x4->sizes[3];
    g->Ho = out_size(H, g->kh, g->sh, g->ph, g->dh, o->ceil_mode);
    g->Wo = out_size(W, g->kw, g->sw, g->pw, g->dw, o->ceil_mode);
    if (g->Ho < 1 || g->Wo < 1)
        return ct__errs(CT_ERR_SHAPE, "%s: Given input size: (%lldx%lldx%lld). Calculated output size: (%lldx%lldx%lld). "
                        "Output size is too small", op, (long long)x4->sizes[1], (long long)H, (long long)W,
                        (long long)x4->sizes[1], (long long)g->Ho, (long long)g->Wo);
    return 0;
}

static int check_input(const char *op, const ct_tensor *x, int spatial) {
    if (x->ndim != spatial + 1 && x->ndim != spatial + 2)
        return ct__errs(CT_ERR_SHAPE, "%s: Expected %dD or %dD (batch mode) tensor with optional 0 dim batch size for "
                        "input, but got: %s", op, spatial + 1, spatial + 2, CT_SHAPESTR(x));
    return ct__check_float(op, x);
}

/* ---- max pooling ---- */
static int max_pool_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *idx = ct__unpack(n, 0);
    if (!idx) return ct_last_status();
    const ct_meta *m = &n->in_meta[0];
    int64_t N = m->sizes[0], C = m->sizes[1], HW = m->sizes[2] * m->sizes[3];
    if (!ct_is_grad_enabled()) { /* first order: one kernel pass (zero each plane, add at the indices) */
        ct_tensor *g = ct__contiguous_raw(go[0]), *out = g ? ct__empty_raw(m->ndim, m->sizes, go[0]->dtype) : NULL;
        int rc = out ? 0 : ct_last_status();
        if (!rc) {
            ct_kernel_args a = {.op = CT_OP_MAX_POOL2D_BWD, .n_out = 1, .n_in = 2, .out = {out}, .in = {g, idx}};
            rc = ct__dispatch(&a);
        }
        ct_release(g);
        if (rc) { ct_release(out); return rc; }
        gi[0] = ct__ret(out);
        return 0;
    }
    /* create_graph: scatter_add, differentiable in the gradient */
    ct_tensor *z = ct_zeros(3, (int64_t[]){N, C, HW}, go[0]->dtype);
    ct_tensor *g = ct_scatter_add(z, 2, ct_reshape(idx, 3, (int64_t[]){N, C, -1}),
                                  ct_reshape(go[0], 3, (int64_t[]){N, C, -1}));
    gi[0] = ct_reshape(g, m->ndim, m->sizes);
    return gi[0] ? 0 : ct_last_status();
}

int ct__max_pool2d_geometry(const ct_tensor *x, const int64_t k[2], const ct_pool_opts *o, int64_t kv[10]) {
    pgeom g = {0};
    if (geom_of("max_pool2d", &g, x, k, o ? o : &DEFAULTS, true)) return ct_last_status();
    /* the kernel's geometry order: kh kw dh dw ph pw sh sw Ho Wo */
    int64_t v[10] = {g.kh, g.kw, g.dh, g.dw, g.ph, g.pw, g.sh, g.sw, g.Ho, g.Wo};
    memcpy(kv, v, sizeof v);
    return 0;
}

static ct_tensor *max_pool4(const ct_tensor *x, const int64_t k[2], const ct_pool_opts *o, ct_tensor **indices) {
    int64_t kv[10];
    if (ct__max_pool2d_geometry(x, k, o, kv)) return NULL;
    int64_t N = x->sizes[0], C = x->sizes[1];
    ct_tensor *xc = ct__contiguous_raw(x);
    ct_tensor *out = xc ? ct__empty_raw(4, (int64_t[]){N, C, kv[8], kv[9]}, x->dtype) : NULL;
    ct_tensor *idx = out ? ct__empty_raw(4, (int64_t[]){N, C, kv[8], kv[9]}, CT_INT64) : NULL;
    int rc = -1;
    if (idx) {
        ct_kernel_args a = {.op = CT_OP_MAX_POOL2D, .n_out = 2, .n_in = 1, .out = {out, idx}, .in = {xc}, .iv = kv,
                            .n_iv = 10};
        rc = ct__dispatch(&a);
    }
    ct_release(xc);
    if (rc) {
        ct_release(out);
        ct_release(idx);
        return NULL;
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("MaxPool2DWithIndicesBackward0", max_pool_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) || ct__save(n, idx) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            ct_release(idx);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    if (indices) *indices = ct__ret(idx);
    else ct_release(idx);
    return ct__ret(out);
}

CT_API ct_tensor *ct_nn_max_pool2d(const ct_tensor *input, const int64_t kernel[2], const ct_pool_opts *opts,
                                   ct_tensor **indices) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG("max_pool2d", input);
    if (!kernel) return ct__err(CT_ERR_ARG, "max_pool2d: kernel_size is required");
    if (check_input("max_pool2d", input, 2)) return NULL;
    if (ct__is_half(input->dtype)) { /* (indices: the inner call's, kept, or NULL) */
        ct_tensor *r = CT_VIA_F32(input, xf, ct_nn_max_pool2d(xf, kernel, opts, indices),
                                  if (indices) *indices = ct_keep(*indices));
        if (!r && indices) *indices = NULL;
        return r;
    }
    const ct_pool_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim == 4) return max_pool4(input, kernel, o, indices);
    if (ct_scope_begin()) return NULL;
    ct_tensor *idx = NULL;
    ct_tensor *r = ct_squeeze_dim(max_pool4(ct_unsqueeze(input, 0), kernel, o, indices ? &idx : NULL), 0);
    if (indices && r) *indices = ct_keep(ct_squeeze_dim(idx, 0));
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

CT_API ct_tensor *ct_nn_max_pool1d(const ct_tensor *input, int64_t kernel, const ct_pool_opts *opts,
                                   ct_tensor **indices) {
    if (indices) *indices = NULL;
    CT_CHECK_ARG("max_pool1d", input);
    if (check_input("max_pool1d", input, 1)) return NULL;
    const ct_pool_opts *o = opts ? opts : &DEFAULTS;
    ct_pool_opts o2 = {.stride = {1, o->stride[0] ? o->stride[0] : kernel}, .padding = {0, o->padding[0]},
                       .dilation = {1, o->dilation[0]}, .ceil_mode = o->ceil_mode};
    if (ct_scope_begin()) return NULL;
    ct_tensor *idx = NULL;
    ct_tensor *r = ct_squeeze_dim(ct_nn_max_pool2d(ct_unsqueeze(input, -2), (int64_t[]){1, kernel}, &o2,
                                                   indices ? &idx : NULL), -2);
    if (indices && r) *indices = ct_keep(ct_squeeze_dim(idx, -2));
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

/* ---- average pooling ---- */
/* Divisor of each output window (count_include_pad / divisor_override rules). */
static ct_tensor *divisors(const pgeom *g, int64_t H, int64_t W, ct_dtype dt) {
    ct_tensor *d = ct__empty_raw(2, (int64_t[]){g->Ho, g->Wo}, CT_FLOAT64);
    if (!d) return NULL;
    double *p = ct__data(d);
    for (int64_t oh = 0; oh < g->Ho; oh++)
        for (int64_t ow = 0; ow < g->Wo; ow++) {
            int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;
            int64_t h1 = h0 + g->kh < H + g->ph ? h0 + g->kh : H + g->ph;
            int64_t w1 = w0 + g->kw < W + g->pw ? w0 + g->kw : W + g->pw;
            int64_t pool = (h1 - h0) * (w1 - w0);
            if (h0 < 0) h0 = 0;
            if (w0 < 0) w0 = 0;
            if (h1 > H) h1 = H;
            if (w1 > W) w1 = W;
            p[oh * g->Wo + ow] = (double)(g->divisor ? g->divisor : g->incl ? pool : (h1 - h0) * (w1 - w0));
        }
    ct_tensor *r = ct__cast_raw(d, dt);
    ct_release(d);
    return r;
}

static int avg_pool_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    const pgeom *g = (const pgeom *)n->ivec;
    const ct_meta *m = &n->in_meta[0];
    int64_t N = m->sizes[0], C = m->sizes[1], H = m->sizes[2], W = m->sizes[3], L = g->Ho * g->Wo;
    ct_tensor *div = divisors(g, H, W, go[0]->dtype);
    if (!div) return ct_last_status();
    ct__ret(div);
    /* each window's share, repeated over its kh*kw positions, folded back (padding dropped) */
    ct_tensor *share = ct_div(ct_reshape(go[0], 3, (int64_t[]){N * C, 1, L}), ct_reshape(div, 3, (int64_t[]){1, 1, L}));
    ct_tensor *cols = ct_expand(share, 3, (int64_t[]){N * C, g->kh * g->kw, L});
    /* fold onto the largest extent with the same number of windows, so that the last
     * window lies inside it even when it reaches into the right padding (ceil_mode
     * windows may reach past the input, trailing rows may be in none), then crop or
     * zero-pad to the input */
    int64_t Hf = (g->Ho - 1) * g->sh + g->kh - 2 * g->ph + g->sh - 1;
    int64_t Wf = (g->Wo - 1) * g->sw + g->kw - 2 * g->pw + g->sw - 1;
    ct_tensor *f = ct_nn_fold(cols, (int64_t[]){Hf, Wf}, (int64_t[]){g->kh, g->kw}, NULL, (int64_t[]){g->ph, g->pw},
                              (int64_t[]){g->sh, g->sw});
    if (Hf > H) f = ct_slice(f, 2, 0, H, 1);
    if (Wf > W) f = ct_slice(f, 3, 0, W, 1);
    if (Hf < H || Wf < W)
        f = ct_pad(f, 4, (int64_t[]){0, Wf < W ? W - Wf : 0, 0, Hf < H ? H - Hf : 0}, "constant", 0.0);
    gi[0] = ct_reshape(f, 4, (int64_t[]){N, C, H, W});
    return gi[0] ? 0 : ct_last_status();
}

static ct_tensor *avg_pool4(const ct_tensor *x, const int64_t k[2], const ct_pool_opts *o) {
    pgeom g = {0};
    if (geom_of("avg_pool2d", &g, x, k, o, false)) return NULL;
    int64_t N = x->sizes[0], C = x->sizes[1];
    ct_tensor *xc = ct__contiguous_raw(x);
    ct_tensor *out = xc ? ct__empty_raw(4, (int64_t[]){N, C, g.Ho, g.Wo}, x->dtype) : NULL;
    int rc = -1;
    if (out) {
        int64_t kv[12] = {g.kh, g.kw, 1, 1, g.ph, g.pw, g.sh, g.sw, g.Ho, g.Wo, g.incl, g.divisor};
        ct_kernel_args a = {.op = CT_OP_AVG_POOL2D, .n_out = 1, .n_in = 1, .out = {out}, .in = {xc}, .iv = kv,
                            .n_iv = 12};
        rc = ct__dispatch(&a);
    }
    ct_release(xc);
    if (rc) {
        ct_release(out);
        return NULL;
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new("AvgPool2DBackward0", avg_pool_backward, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) ||
            ct__node_set_ivec(n, 12, (const int64_t *)&g)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

CT_API ct_tensor *ct_nn_avg_pool2d(const ct_tensor *input, const int64_t kernel[2], const ct_pool_opts *opts) {
    CT_CHECK_ARG("avg_pool2d", input);
    if (!kernel) return ct__err(CT_ERR_ARG, "avg_pool2d: kernel_size is required");
    if (check_input("avg_pool2d", input, 2)) return NULL;
    if (ct__is_half(input->dtype)) return CT_VIA_F32(input, xf, ct_nn_avg_pool2d(xf, kernel, opts), (void)0);
    const ct_pool_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim == 4) return avg_pool4(input, kernel, o);
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_squeeze_dim(avg_pool4(ct_unsqueeze(input, 0), kernel, o), 0);
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

CT_API ct_tensor *ct_nn_avg_pool1d(const ct_tensor *input, int64_t kernel, const ct_pool_opts *opts) {
    CT_CHECK_ARG("avg_pool1d", input);
    if (check_input("avg_pool1d", input, 1)) return NULL;
    const ct_pool_opts *o = opts ? opts : &DEFAULTS;
    ct_pool_opts o2 = {.stride = {1, o->stride[0] ? o->stride[0] : kernel}, .padding = {0, o->padding[0]},
                       .ceil_mode = o->ceil_mode, .count_include_pad_false = o->count_include_pad_false};
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_squeeze_dim(ct_nn_avg_pool2d(ct_unsqueeze(input, -2), (int64_t[]){1, kernel}, &o2), -2);
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

/* adaptive_avg_pool2d: window i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)); when the
 * windows tile the input evenly it is an ordinary avg_pool2d, otherwise a mean per
 * window built from differentiable slices. */
CT_API ct_tensor *ct_nn_adaptive_avg_pool2d(const ct_tensor *input, const int64_t output_size[2]) {
    CT_CHECK_ARG("adaptive_avg_pool2d", input);
    if (!output_size) return ct__err(CT_ERR_ARG, "adaptive_avg_pool2d: output_size is required");
    if (check_input("adaptive_avg_pool2d", input, 2)) return NULL;
    if (ct__is_half(input->dtype)) return CT_VIA_F32(input, xf, ct_nn_adaptive_avg_pool2d(xf, output_size), (void)0);
    int64_t Ho = output_size[0], Wo = output_size[1];
    if (Ho <= 0 || Wo <= 0)
        return ct__err(CT_ERR_ARG, "adaptive_avg_pool2d: elements of output_size must be greater than or equal to 1");
    int nd = input->ndim;
    int64_t H = input->sizes[nd - 2], W = input->sizes[nd - 1];
    if (H == 0 || W == 0)
        return ct__err(CT_ERR_SHAPE, "adaptive_avg_pool2d: Expected input to have non-zero size for non-batch "
                       "dimensions, but input has sizes %s", CT_SHAPESTR(input));
    /* global average pooling (a ResNet's head): the mean of each plane, a row reduction
     * (the window kernel took 6x PyTorch's time on [16, 64, 56, 56]) */
    if (Ho == 1 && Wo == 1) return ct_mean_dim(input, 2, (int64_t[]){nd - 2, nd - 1}, true, CT_NUM_DTYPES);
    if (H % Ho == 0 && W % Wo == 0)
        return ct_nn_avg_pool2d(input, (int64_t[]){H / Ho, W / Wo}, NULL);
    if (ct_scope_begin()) return NULL;
    ct_tensor *rows[64 * 64];
    ct_tensor *r = NULL;
    if (Ho * Wo <= 64 * 64) {
        int64_t k = 0;
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) {
                int64_t h0 = i * H / Ho, h1 = ((i + 1) * H + Ho - 1) / Ho;
                int64_t w0 = j * W / Wo, w1 = ((j + 1) * W + Wo - 1) / Wo;
                ct_tensor *win = ct_slice(ct_slice(input, nd - 2, h0, h1, 1), nd - 1, w0, w1, 1);
                rows[k++] = ct_mean_dim(win, 2, (int64_t[]){nd - 2, nd - 1}, false, CT_NUM_DTYPES);
            }
        ct_tensor *s = ct_stack(k, (const ct_tensor *const *)rows, -1);
        int64_t shp[4];
        for (int d = 0; d < nd - 2; d++) shp[d] = input->sizes[d];
        shp[nd - 2] = Ho, shp[nd - 1] = Wo;
        r = ct_reshape(s, nd, shp);
    } else {
        ct__err(CT_ERR_ARG, "adaptive_avg_pool2d: output sizes that do not divide the input are limited to 64x64");
    }
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}
