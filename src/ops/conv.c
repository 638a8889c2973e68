/* Convolutions and unfold/fold (torch.nn.functional).
 *
 * unfold (im2col) and fold (col2im) are kernels (src/cpu/conv.c) and each other's
 * adjoint, so each one's backward is the other and double backward comes free.
 * conv2d is unfold + one batched matrix product (+ bias); conv_transpose2d is a matrix
 * product + fold; the 1-d forms add a height of 1. Autograd flows through those ops. */
#include <string.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "ctorch/nn.h"
#include "ops/nn_common.h"

typedef struct {
    int64_t kh, kw, dh, dw, ph, pw, sh, sw, Ho, Wo;
} geom;


/* Number of sliding blocks along one dim (unfold's L factor); < 1 when the kernel does
 * not fit. */
static int64_t blocks(int64_t size, int64_t k, int64_t d, int64_t p, int64_t s) {
    return (size + 2 * p - d * (k - 1) - 1) / s + 1;
}

static ct_tensor *unfold_raw(const ct_tensor *x4, const geom *g);
static ct_tensor *fold_raw(const ct_tensor *c3, int64_t H, int64_t W, const geom *g);

/* ---- autograd of the two kernels ---- */
static void node_geom(const ct_node *n, geom *g) { memcpy(g, n->ivec, sizeof *g); }

static int unfold_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    geom g;
    node_geom(n, &g);
    const ct_meta *m = &n->in_meta[0];
    gi[0] = ct_nn_fold(go[0], (int64_t[]){m->sizes[2], m->sizes[3]}, (int64_t[]){g.kh, g.kw}, (int64_t[]){g.dh, g.dw},
                       (int64_t[]){g.ph, g.pw}, (int64_t[]){g.sh, g.sw});
    return gi[0] ? 0 : ct_last_status();
}

static int fold_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    geom g;
    node_geom(n, &g);
    gi[0] = ct_nn_unfold(go[0], (int64_t[]){g.kh, g.kw}, (int64_t[]){g.dh, g.dw}, (int64_t[]){g.ph, g.pw},
                         (int64_t[]){g.sh, g.sw});
    return gi[0] ? 0 : ct_last_status();
}

static ct_tensor *record(ct_tensor *out, const char *name, ct_backward_fn fn, const ct_tensor *x, const geom *g) {
    if (!out) return NULL;
    if (ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new(name, fn, 1);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_save_meta(n, 0, x) ||
            ct__node_set_ivec(n, 10, (const int64_t *)g)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

static int fill_geom(const char *op, geom *g, const int64_t kernel[2], const int64_t dilation[2],
                     const int64_t padding[2], const int64_t stride[2]) {
    if (!kernel) return ct__errs(CT_ERR_ARG, "%s: kernel_size is required", op);
    g->kh = kernel[0], g->kw = kernel[1];
    g->dh = dilation ? ct__or1(dilation[0]) : 1, g->dw = dilation ? ct__or1(dilation[1]) : 1;
    g->ph = padding ? padding[0] : 0, g->pw = padding ? padding[1] : 0;
    g->sh = stride ? ct__or1(stride[0]) : 1, g->sw = stride ? ct__or1(stride[1]) : 1;
    if (g->kh <= 0 || g->kw <= 0)
        return ct__errs(CT_ERR_ARG, "%s: kernel size should be greater than zero, but got kernel_size=(%lld, %lld)", op,
                        (long long)g->kh, (long long)g->kw);
    if (g->dh <= 0 || g->dw <= 0 || g->sh <= 0 || g->sw <= 0)
        return ct__errs(CT_ERR_ARG, "%s: dilation and stride should be greater than zero", op);
    if (g->ph < 0 || g->pw < 0) return ct__errs(CT_ERR_ARG, "%s: padding should be non-negative", op);
    return 0;
}

/* ---- unfold / fold ---- */
static ct_tensor *unfold_raw(const ct_tensor *x4, const geom *g) {
    int64_t N = x4->sizes[0], C = x4->sizes[1];
    ct_tensor *xc = ct__contiguous_raw(x4);
    if (!xc) return NULL;
    ct_tensor *out = ct__empty_raw(3, (int64_t[]){N, C * g->kh * g->kw, g->Ho * g->Wo}, x4->dtype);
    if (!out) { ct_release(xc); return NULL; }
    ct_kernel_args a = {.op = CT_OP_UNFOLD, .n_out = 1, .n_in = 1, .out = {out}, .in = {xc}, .iv = (const int64_t *)g,
                        .n_iv = 10};
    int rc = ct__dispatch(&a);
    ct_release(xc);
    if (rc) { ct_release(out); return NULL; }
    return out;
}

static ct_tensor *fold_raw(const ct_tensor *c3, int64_t H, int64_t W, const geom *g) {
    int64_t N = c3->sizes[0], C = c3->sizes[1] / (g->kh * g->kw);
    ct_tensor *cc = ct__contiguous_raw(c3);
    if (!cc) return NULL;
    ct_tensor *out = ct__empty_raw(4, (int64_t[]){N, C, H, W}, c3->dtype);
    if (!out) { ct_release(cc); return NULL; }
    ct_kernel_args a = {.op = CT_OP_FOLD, .n_out = 1, .n_in = 1, .out = {out}, .in = {cc}, .iv = (const int64_t *)g,
                        .n_iv = 10};
    int rc = ct__dispatch(&a);
    ct_release(cc);
    if (rc) { ct_release(out); return NULL; }
    return out;
}

CT_API ct_tensor *ct_nn_unfold(const ct_tensor *input, const int64_t kernel[2], const int64_t dilation[2],
                               const int64_t padding[2], const int64_t stride[2]) {
    CT_CHECK_ARG("unfold", input);
    if (input->ndim != 3 && input->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "unfold: Input Error: Only 3D or 4D input Tensors are supported (got %dD)",
                       input->ndim);
    if (ct__check_float("im2col", input)) return NULL;
    if (ct__is_half(input->dtype))
        return CT_VIA_F32(input, xf, ct_nn_unfold(xf, kernel, dilation, padding, stride), (void)0);
    geom g;
    if (fill_geom("unfold", &g, kernel, dilation, padding, stride)) return NULL;
    bool batched = input->ndim == 4;
    int64_t H = input->sizes[batched + 1], W = input->sizes[batched + 2];
    g.Ho = blocks(H, g.kh, g.dh, g.ph, g.sh), g.Wo = blocks(W, g.kw, g.dw, g.pw, g.sw);
    if (g.Ho < 1 || g.Wo < 1)
        return ct__err(CT_ERR_SHAPE,
                       "unfold: Given input with spatial size (%lld, %lld), kernel_size=(%lld, %lld), dilation=(%lld, "
                       "%lld), padding=(%lld, %lld), calculated shape of the array of sliding blocks as (%lld, %lld), "
                       "but its components must be at least one.",
                       (long long)H, (long long)W, (long long)g.kh, (long long)g.kw, (long long)g.dh, (long long)g.dw,
                       (long long)g.ph, (long long)g.pw, (long long)g.Ho, (long long)g.Wo);
    if (!batched) {
        ct_tensor *r = ct_nn_unfold(ct_unsqueeze(input, 0), kernel, dilation, padding, stride);
        return ct_squeeze_dim(r, 0);
    }
    return record(unfold_raw(input, &g), "Im2ColBackward0", unfold_backward, input, &g);
}

CT_API ct_tensor *ct_nn_fold(const ct_tensor *input, const int64_t output_size[2], const int64_t kernel[2],
                             const int64_t dilation[2], const int64_t padding[2], const int64_t stride[2]) {
    CT_CHECK_ARG("fold", input);
    if (input->ndim != 2 && input->ndim != 3)
        return ct__err(CT_ERR_SHAPE,
                       "fold: Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero "
                       "dimensions for input, but got: %s", CT_SHAPESTR(input));
    if (ct__check_float("col2im", input)) return NULL;
    if (!output_size) return ct__err(CT_ERR_ARG, "fold: output_size is required");
    if (ct__is_half(input->dtype))
        return CT_VIA_F32(input, xf, ct_nn_fold(xf, output_size, kernel, dilation, padding, stride), (void)0);
    geom g;
    if (fill_geom("fold", &g, kernel, dilation, padding, stride)) return NULL;
    if (!(input->ndim == 3)) {
        ct_tensor *r = ct_nn_fold(ct_unsqueeze(input, 0), output_size, kernel, dilation, padding, stride);
        return ct_squeeze_dim(r, 0);
    }
    int64_t H = output_size[0], W = output_size[1], kk = g.kh * g.kw;
    if (H <= 0 || W <= 0) return ct__err(CT_ERR_ARG, "fold: output_size must be positive");
    if (input->sizes[1] % kk != 0)
        return ct__err(CT_ERR_SHAPE,
                       "fold: Expected size of input's dimension 1 to be divisible by the product of kernel_size, but "
                       "got input.size(1)=%lld and kernel_size=(%lld, %lld)",
                       (long long)input->sizes[1], (long long)g.kh, (long long)g.kw);
    g.Ho = blocks(H, g.kh, g.dh, g.ph, g.sh), g.Wo = blocks(W, g.kw, g.dw, g.pw, g.sw);
    if (g.Ho < 1 || g.Wo < 1 || g.Ho * g.Wo != input->sizes[2])
        return ct__err(CT_ERR_SHAPE,
                       "fold: Given output_size=(%lld, %lld), kernel_size=(%lld, %lld), dilation=(%lld, %lld), "
                       "padding=(%lld, %lld), stride=(%lld, %lld), expected size of input's dimension 2 to match the "
                       "calculated number of sliding blocks %lld * %lld = %lld, but got input.size(2)=%lld.",
                       (long long)H, (long long)W, (long long)g.kh, (long long)g.kw, (long long)g.dh, (long long)g.dw,
                       (long long)g.ph, (long long)g.pw, (long long)g.sh, (long long)g.sw, (long long)g.Ho,
                       (long long)g.Wo, (long long)(g.Ho * g.Wo), (long long)input->sizes[2]);
    return record(fold_raw(input, H, W, &g), "Col2ImBackward0", fold_backward, input, &g);
}

/* ---- the three convolution primitives ----
 * conv (x, w) -> y, its input gradient (grad_y, w) -> grad_x (also conv_transpose's
 * forward) and its weight gradient (x, grad_y) -> grad_w are each bilinear, and the
 * derivative of each in either argument is one of the other two, so their backward
 * functions close over the three and every order of derivative comes free. The kernels
 * (src/cpu/conv.c, oneDNN for float32) take contiguous NCHW tensors. */
typedef struct {
    int64_t sh, sw, ph, pw, dh, dw, G;
} cgeom;

static ct_tensor *conv_x(const ct_tensor *x, const ct_tensor *w, const cgeom *g, const char *node);
static ct_tensor *conv_gx(const ct_tensor *gy, const ct_tensor *w, const cgeom *g, int64_t H, int64_t W,
                          const char *node, bool then_gw);
static ct_tensor *conv_gw(const ct_tensor *x, const ct_tensor *gy, const cgeom *g, int64_t kh, int64_t kw,
                          const char *node);

/* Runs one kernel into a new [out] tensor of the given sizes; hint: the kernel's i[0]
 * (CONV2D_BWD_INPUT: the weight gradient of the same grad follows). */
static ct_tensor *conv_raw(ct_op op, const ct_tensor *a, const ct_tensor *b, const ct_tensor *bias,
                           const int64_t out_sizes[4], const cgeom *g, int64_t hint) {
    ct_tensor *ca = ct__contiguous_raw(a), *cb = ca ? ct__contiguous_raw(b) : NULL;
    ct_tensor *cc = cb && bias ? ct__contiguous_raw(bias) : NULL;
    ct_tensor *out = cb && (!bias || cc) ? ct__empty_raw(4, out_sizes, a->dtype) : NULL;
    if (out) {
        ct_kernel_args k = {.op = op, .n_out = 1, .n_in = cc ? 3 : 2, .out = {out}, .in = {ca, cb, cc},
                            .i = {hint}, .iv = (const int64_t *)g, .n_iv = 7};
        if (ct__dispatch(&k)) { ct_release(out); out = NULL; }
    }
    ct_release(ca);
    ct_release(cb);
    ct_release(cc);
    return out;
}

static ct_node *conv_node(const char *name, ct_backward_fn fn, const ct_tensor *a, const ct_tensor *b,
                          const cgeom *g, ct_tensor *out) {
    ct_node *n = ct__node_new(name, fn, 2);
    if (!n || ct__node_set_next(n, 0, a) || ct__node_set_next(n, 1, b) || ct__save(n, a) < 0 || ct__save(n, b) < 0 ||
        ct__node_set_ivec(n, 7, (const int64_t *)g)) {
        if (n) ct__node_release(n);
        ct_release(out);
        return NULL;
    }
    ct__set_history(out, n, 0);
    return n;
}

static void node_cgeom(const ct_node *n, cgeom *g) { memcpy(g, n->ivec, sizeof *g); }

/* the backward node names: the forward conv's, and one level deeper */
#define BWD_NAME "ConvolutionBackward0"
#define BWD2_NAME "ConvolutionBackwardBackward0"

static int conv_x_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    cgeom g;
    node_cgeom(n, &g);
    ct_tensor *x = ct__unpack(n, 0), *w = ct__unpack(n, 1);
    if (!x || !w) return ct_last_status();
    if (ct__node_needs(n, 0) &&
        !(gi[0] = conv_gx(go[0], w, &g, x->sizes[2], x->sizes[3], BWD2_NAME, ct__node_needs(n, 1))))
        return ct_last_status();
    if (ct__node_needs(n, 1) && !(gi[1] = conv_gw(x, go[0], &g, w->sizes[2], w->sizes[3], BWD2_NAME)))
        return ct_last_status();
    return 0;
}

static int conv_gx_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    cgeom g;
    node_cgeom(n, &g);
    ct_tensor *gy = ct__unpack(n, 0), *w = ct__unpack(n, 1);
    if (!gy || !w) return ct_last_status();
    if (ct__node_needs(n, 0) && !(gi[0] = conv_x(go[0], w, &g, BWD2_NAME))) return ct_last_status();
    if (ct__node_needs(n, 1) && !(gi[1] = conv_gw(go[0], gy, &g, w->sizes[2], w->sizes[3], BWD2_NAME)))
        return ct_last_status();
    return 0;
}

static int conv_gw_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    cgeom g;
    node_cgeom(n, &g);
    ct_tensor *x = ct__unpack(n, 0), *gy = ct__unpack(n, 1);
    if (!x || !gy) return ct_last_status();
    if (ct__node_needs(n, 0) && !(gi[0] = conv_gx(gy, go[0], &g, x->sizes[2], x->sizes[3], BWD2_NAME, false)))
        return ct_last_status();
    if (ct__node_needs(n, 1) && !(gi[1] = conv_x(x, go[0], &g, BWD2_NAME))) return ct_last_status();
    return 0;
}


/* y = conv(x, w) (no bias) */
static ct_tensor *conv_x(const ct_tensor *x, const ct_tensor *w, const cgeom *g, const char *node) {
    int64_t sz[4] = {x->sizes[0], w->sizes[0], blocks(x->sizes[2], w->sizes[2], g->dh, g->ph, g->sh),
                     blocks(x->sizes[3], w->sizes[3], g->dw, g->pw, g->sw)};
    ct_tensor *y = conv_raw(CT_OP_CONV2D, x, w, NULL, sz, g, 0);
    if (y && ct__needs_grad(2, (const ct_tensor *[]){x, w}) && !conv_node(node, conv_x_backward, x, w, g, y))
        return NULL;
    return y ? ct__ret(y) : NULL;
}

/* grad_x [N, C, H, W] of y = conv(x, w), from grad_y */
static ct_tensor *conv_gx(const ct_tensor *gy, const ct_tensor *w, const cgeom *g, int64_t H, int64_t W,
                          const char *node, bool then_gw) {
    int64_t sz[4] = {gy->sizes[0], w->sizes[1] * g->G, H, W};
    ct_tensor *x = conv_raw(CT_OP_CONV2D_BWD_INPUT, gy, w, NULL, sz, g, then_gw);
    if (x && ct__needs_grad(2, (const ct_tensor *[]){gy, w}) && !conv_node(node, conv_gx_backward, gy, w, g, x))
        return NULL;
    return x ? ct__ret(x) : NULL;
}

/* grad_w [O, C/G, kh, kw] of y = conv(x, w), from grad_y */
static ct_tensor *conv_gw(const ct_tensor *x, const ct_tensor *gy, const cgeom *g, int64_t kh, int64_t kw,
                          const char *node) {
    int64_t sz[4] = {gy->sizes[1], x->sizes[1] / g->G, kh, kw};
    ct_tensor *w = conv_raw(CT_OP_CONV2D_BWD_WEIGHT, x, gy, NULL, sz, g, 0);
    if (w && ct__needs_grad(2, (const ct_tensor *[]){x, gy}) && !conv_node(node, conv_gw_backward, x, gy, g, w))
        return NULL;
    return w ? ct__ret(w) : NULL;
}

/* conv with bias: the bias rides in the kernel (oneDNN adds it in its output pass) */
static int conv_bias_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int rc = conv_x_backward(n, go, gi);
    if (rc) return rc;
    if (ct__node_needs(n, 2) && !(gi[2] = ct_sum_dim(go[0], 3, (int64_t[]){0, 2, 3}, false, CT_NUM_DTYPES)))
        return ct_last_status();
    return 0;
}

static ct_tensor *conv_xb(const ct_tensor *x, const ct_tensor *w, const ct_tensor *b, const cgeom *g) {
    if (!b) return conv_x(x, w, g, BWD_NAME);
    int64_t sz[4] = {x->sizes[0], w->sizes[0], blocks(x->sizes[2], w->sizes[2], g->dh, g->ph, g->sh),
                     blocks(x->sizes[3], w->sizes[3], g->dw, g->pw, g->sw)};
    ct_tensor *y = conv_raw(CT_OP_CONV2D, x, w, b, sz, g, 0);
    if (y && ct__needs_grad(3, (const ct_tensor *[]){x, w, b})) {
        ct_node *n = ct__node_new(BWD_NAME, conv_bias_backward, 3);
        if (!n || ct__node_set_next(n, 0, x) || ct__node_set_next(n, 1, w) || ct__node_set_next(n, 2, b) ||
            ct__save(n, x) < 0 || ct__save(n, w) < 0 || ct__node_set_ivec(n, 7, (const int64_t *)g)) {
            if (n) ct__node_release(n);
            ct_release(y);
            return NULL;
        }
        ct__set_history(y, n, 0);
    }
    return y ? ct__ret(y) : NULL;
}

/* ---- convolution ---- */
static const ct_conv_opts DEFAULTS;

static bool same_dtype(const char *op, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b) {
    if (w->dtype != x->dtype) {
        ct__err(CT_ERR_DTYPE, "%s: Input type (%s) and weight type (%s) should be the same", op,
                ct__scalar_type_name(x->dtype), ct__scalar_type_name(w->dtype));
        return false;
    }
    if (b && b->dtype != x->dtype) {
        ct__err(CT_ERR_DTYPE, "%s: Input type (%s) and bias type (%s) should be the same", op,
                ct__scalar_type_name(x->dtype), ct__scalar_type_name(b->dtype));
        return false;
    }
    return true;
}

/* float16 / bfloat16: the convolution in float32 on the widened operands (exact), the
 * result rounded once to the half type -- PyTorch's CPU kernels accumulate these types
 * in float32 too. The casts are differentiable, so the gradients come back the same way
 * (computed in float32, rounded once). */
typedef ct_tensor *(*conv_api)(const ct_tensor *, const ct_tensor *, const ct_tensor *, const ct_conv_opts *);
static ct_tensor *conv_half(conv_api fn, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
                            const ct_conv_opts *o) {
    if (ct_scope_begin()) return NULL;
    ct_tensor *xf = ct_to_dtype(x, CT_FLOAT32), *wf = ct_to_dtype(w, CT_FLOAT32);
    ct_tensor *bf = b ? ct_to_dtype(b, CT_FLOAT32) : NULL;
    ct_tensor *r = xf && wf && (!b || bf) ? ct_to_dtype(fn(xf, wf, bf, o), x->dtype) : NULL;
    if (r) r = ct_keep(r);
    ct_scope_end();
    return r;
}

/* conv over a batched 4-d input and 4-d weight (1-d convs arrive with a height of 1);
 * dims: 2 for conv2d, 1 for conv1d (for messages and "same" padding). */
static ct_tensor *conv_nd(const char *op, int dims, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
                          const ct_conv_opts *o) {
    int64_t C = x->sizes[1], H = x->sizes[2], W = x->sizes[3];
    int64_t O = w->sizes[0], Cg = w->sizes[1], kh = w->sizes[2], kw = w->sizes[3];
    int64_t G = ct__or1(o->groups);
    int64_t sh = dims == 2 ? ct__or1(o->stride[0]) : 1, sw = ct__or1(o->stride[dims == 2]);
    int64_t dh = dims == 2 ? ct__or1(o->dilation[0]) : 1, dw = ct__or1(o->dilation[dims == 2]);
    int64_t ph = dims == 2 ? o->padding[0] : 0, pw = o->padding[dims == 2];
    if (o->groups < 0) return ct__err(CT_ERR_ARG, "%s: non-positive groups is not supported", op);
    if (sh <= 0 || sw <= 0 || o->stride[0] < 0 || o->stride[1] < 0)
        return ct__err(CT_ERR_ARG, "%s: non-positive stride is not supported", op);
    if (o->dilation[0] < 0 || o->dilation[1] < 0) return ct__err(CT_ERR_ARG, "%s: dilation should be greater than zero", op);
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
    ct_tensor *xin = (ct_tensor *)x;
    if (o->padding_mode && strcmp(o->padding_mode, "valid") == 0) {
        ph = pw = 0;
    } else if (o->padding_mode && strcmp(o->padding_mode, "same") == 0) {
        if (sh != 1 || sw != 1)
            return ct__err(CT_ERR_ARG, "%s: padding='same' is not supported for strided convolutions", op);
        int64_t th = dh * (kh - 1), tw = dw * (kw - 1);
        ph = th / 2, pw = tw / 2;
        if (th % 2 || tw % 2) { /* odd total: the extra row/column goes at the end, as PyTorch */
            xin = ct_pad(x, 4, (int64_t[]){0, tw % 2, 0, th % 2}, "constant", 0.0);
            if (!xin) return NULL;
            H += th % 2, W += tw % 2;
        }
    } else if (o->padding_mode) {
        return ct__err(CT_ERR_ARG, "%s: Invalid padding string '%s'", op, o->padding_mode);
    }
    if (ph < 0 || pw < 0) return ct__err(CT_ERR_ARG, "%s: negative padding is not supported", op);
    if (H + 2 * ph < dh * (kh - 1) + 1 || W + 2 * pw < dw * (kw - 1) + 1) {
        if (dims == 2)
            return ct__err(CT_ERR_SHAPE, "%s: Calculated padded input size per channel: (%lld x %lld). Kernel size: "
                           "(%lld x %lld). Kernel size can't be greater than actual input size", op,
                           (long long)(H + 2 * ph), (long long)(W + 2 * pw), (long long)(dh * (kh - 1) + 1),
                           (long long)(dw * (kw - 1) + 1));
        return ct__err(CT_ERR_SHAPE, "%s: Calculated padded input size per channel: (%lld). Kernel size: (%lld). "
                       "Kernel size can't be greater than actual input size", op, (long long)(W + 2 * pw),
                       (long long)(dw * (kw - 1) + 1));
    }
    return conv_xb(xin, w, b, &(cgeom){sh, sw, ph, pw, dh, dw, G});
}

/* Runs fn in a private scope and hands its result to the caller's scope. */
#define IN_SCOPE(expr)                                   \
    do {                                                 \
        if (ct_scope_begin()) return NULL;               \
        ct_tensor *r_ = (expr);                          \
        if (r_) r_ = ct_keep(r_);                        \
        ct_scope_end();                                  \
        return r_;                                       \
    } while (0)

CT_API ct_tensor *ct_nn_conv2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv_opts *opts) {
    CT_CHECK_ARG("conv2d", input);
    CT_CHECK_ARG("conv2d", weight);
    const ct_conv_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim != 3 && input->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "conv2d: Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input "
                       "of size: %s", CT_SHAPESTR(input));
    if (weight->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "conv2d: Expected 4-dimensional weight for conv2d, but got %d-dimensional weight "
                       "of size %s", weight->ndim, CT_SHAPESTR(weight));
    if (ct__check_float("conv2d", input) || !same_dtype("conv2d", input, weight, bias)) return NULL;
    if (ct__is_half(input->dtype)) return conv_half(ct_nn_conv2d, input, weight, bias, opts);
    if (input->ndim == 3) IN_SCOPE(ct_squeeze_dim(conv_nd("conv2d", 2, ct_unsqueeze(input, 0), weight, bias, o), 0));
    IN_SCOPE(conv_nd("conv2d", 2, input, weight, bias, o));
}

CT_API ct_tensor *ct_nn_conv1d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                               const ct_conv_opts *opts) {
    CT_CHECK_ARG("conv1d", input);
    CT_CHECK_ARG("conv1d", weight);
    const ct_conv_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim != 2 && input->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "conv1d: Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input "
                       "of size: %s", CT_SHAPESTR(input));
    if (weight->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "conv1d: Expected 3-dimensional weight for conv1d, but got %d-dimensional weight "
                       "of size %s", weight->ndim, CT_SHAPESTR(weight));
    if (ct__check_float("conv1d", input) || !same_dtype("conv1d", input, weight, bias)) return NULL;
    if (ct__is_half(input->dtype)) return conv_half(ct_nn_conv1d, input, weight, bias, opts);
    /* a height of 1: [N, C, 1, L] with a [O, C/g, 1, k] kernel; conv_nd reads the 1-d
     * options from index 0 */
    if (ct_scope_begin()) return NULL;
    ct_tensor *x = input->ndim == 2 ? ct_unsqueeze(input, 0) : (ct_tensor *)input;
    ct_tensor *y = conv_nd("conv1d", 1, ct_unsqueeze(x, 2), ct_unsqueeze(weight, 2), bias, o);
    y = ct_squeeze_dim(y, 2);
    if (input->ndim == 2) y = ct_squeeze_dim(y, 0);
    if (y) y = ct_keep(y);
    ct_scope_end();
    return y;
}

/* conv_transpose over batched 4-d input: weight [C, O/g, kh, kw]. */
static ct_tensor *conv_t_nd(const char *op, int dims, const ct_tensor *x, const ct_tensor *w, const ct_tensor *b,
                            const ct_conv_opts *o) {
    int64_t C = x->sizes[1], H = x->sizes[2], W = x->sizes[3];
    int64_t Og = w->sizes[1], kh = w->sizes[2], kw = w->sizes[3];
    int64_t G = ct__or1(o->groups);
    int i1 = dims == 2;
    int64_t sh = dims == 2 ? ct__or1(o->stride[0]) : 1, sw = ct__or1(o->stride[i1]);
    int64_t dh = dims == 2 ? ct__or1(o->dilation[0]) : 1, dw = ct__or1(o->dilation[i1]);
    int64_t ph = dims == 2 ? o->padding[0] : 0, pw = o->padding[i1];
    int64_t oph = dims == 2 ? o->output_padding[0] : 0, opw = o->output_padding[i1];
    if (o->padding_mode) return ct__err(CT_ERR_ARG, "%s: padding strings are not supported for transposed convolutions", op);
    if (o->groups < 0) return ct__err(CT_ERR_ARG, "%s: non-positive groups is not supported", op);
    if (o->stride[0] < 0 || o->stride[1] < 0) return ct__err(CT_ERR_ARG, "%s: non-positive stride is not supported", op);
    if (ph < 0 || pw < 0) return ct__err(CT_ERR_ARG, "%s: negative padding is not supported", op);
    if (oph < 0 || opw < 0 || (oph >= sh && oph >= dh) || (opw >= sw && opw >= dw))
        return ct__err(CT_ERR_ARG, "%s: output padding must be smaller than either stride or dilation", op);
    if (w->sizes[0] != C)
        return ct__err(CT_ERR_SHAPE, "%s: Given transposed=1, weight of size %s, expected input%s to have %lld channels, "
                       "but got %lld channels instead", op, CT_SHAPESTR(w), CT_SHAPESTR(x), (long long)w->sizes[0],
                       (long long)C);
    if (C % G != 0)
        return ct__err(CT_ERR_SHAPE, "%s: Given groups=%lld, expected weight to be divisible by %lld at dimension 0, "
                       "but got weight of size %s instead", op, (long long)G, (long long)G, CT_SHAPESTR(w));
    int64_t O = Og * G;
    if (b && (b->ndim != 1 || b->sizes[0] != O))
        return ct__err(CT_ERR_SHAPE, "%s: Given transposed=1, weight of size %s, expected bias to be 1-dimensional with "
                       "%lld elements, but got bias of size %s instead", op, CT_SHAPESTR(w), (long long)O, CT_SHAPESTR(b));
    int64_t Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1, Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
    if (Ho <= 0 || Wo <= 0)
        return ct__err(CT_ERR_SHAPE, "%s: Given input size per channel: (%lld x %lld). Calculated output size per "
                       "channel: (%lld x %lld). Output size is too small", op, (long long)H, (long long)W, (long long)Ho,
                       (long long)Wo);
    /* the input gradient of the convolution that maps [N, O, Ho, Wo] to x's shape */
    ct_tensor *y = conv_gx(x, w, &(cgeom){sh, sw, ph, pw, dh, dw, G}, Ho, Wo, BWD_NAME, false);
    if (b) y = ct_add(y, ct_reshape(b, 4, (int64_t[]){1, O, 1, 1}));
    return y;
}

CT_API ct_tensor *ct_nn_conv_transpose2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                                         const ct_conv_opts *opts) {
    CT_CHECK_ARG("conv_transpose2d", input);
    CT_CHECK_ARG("conv_transpose2d", weight);
    const ct_conv_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim != 3 && input->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "conv_transpose2d: Expected 3D (unbatched) or 4D (batched) input to "
                       "conv_transpose2d, but got input of size: %s", CT_SHAPESTR(input));
    if (weight->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "conv_transpose2d: Expected 4-dimensional weight, but got weight of size %s",
                       CT_SHAPESTR(weight));
    if (ct__check_float("conv_transpose2d", input) || !same_dtype("conv_transpose2d", input, weight, bias)) return NULL;
    if (ct__is_half(input->dtype)) return conv_half(ct_nn_conv_transpose2d, input, weight, bias, opts);
    if (input->ndim == 3)
        IN_SCOPE(ct_squeeze_dim(conv_t_nd("conv_transpose2d", 2, ct_unsqueeze(input, 0), weight, bias, o), 0));
    IN_SCOPE(conv_t_nd("conv_transpose2d", 2, input, weight, bias, o));
}

CT_API ct_tensor *ct_nn_conv_transpose1d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                                         const ct_conv_opts *opts) {
    CT_CHECK_ARG("conv_transpose1d", input);
    CT_CHECK_ARG("conv_transpose1d", weight);
    const ct_conv_opts *o = opts ? opts : &DEFAULTS;
    if (input->ndim != 2 && input->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "conv_transpose1d: Expected 2D (unbatched) or 3D (batched) input to "
                       "conv_transpose1d, but got input of size: %s", CT_SHAPESTR(input));
    if (weight->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "conv_transpose1d: Expected 3-dimensional weight, but got weight of size %s",
                       CT_SHAPESTR(weight));
    if (ct__check_float("conv_transpose1d", input) || !same_dtype("conv_transpose1d", input, weight, bias)) return NULL;
    if (ct__is_half(input->dtype)) return conv_half(ct_nn_conv_transpose1d, input, weight, bias, opts);
    if (ct_scope_begin()) return NULL;
    ct_tensor *x = input->ndim == 2 ? ct_unsqueeze(input, 0) : (ct_tensor *)input;
    ct_tensor *y = conv_t_nd("conv_transpose1d", 1, ct_unsqueeze(x, 2), ct_unsqueeze(weight, 2), bias, o);
    y = ct_squeeze_dim(y, 2);
    if (input->ndim == 2) y = ct_squeeze_dim(y, 0);
    if (y) y = ct_keep(y);
    ct_scope_end();
    return y;
}
