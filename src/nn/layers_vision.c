/* Vision layer modules: Conv3d, ConvTranspose1d/2d, MaxPool1d, AvgPool1d,
 * MaxUnpool1d/2d, AdaptiveAvgPool1d, AdaptiveMaxPool1d/2d, Upsample,
 * UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle, PixelUnshuffle, Fold,
 * Unfold. PyTorch's parameter names, initialisation (same draws, same order) and
 * reprs; forwards call the functionals of ctorch/nn.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/nn.h"
#include "nn/module_internal.h"

static ct_module *with_ctx(const ct_module_type *type, void *ctx) {
    if (!ctx) return ct__err(CT_ERR_OOM, "%s: out of memory", type->name);
    ct_module *m = ct_module_new(type, ctx);
    if (!m) free(ctx);
    return m;
}

static int64_t or1(int64_t v) { return v ? v : 1; }

/* "(a, b, c)" / "(a,)" */
static const char *tup(int n, const int64_t *v, char *buf, size_t size) { return ct__pytuple(n, v, buf, size); }

/* an int when all n values are equal (torch given an int), else a tuple */
static const char *int_or_tup(int n, const int64_t *v, char *buf, size_t size) {
    bool eq = true;
    for (int i = 1; i < n; i++) eq &= v[i] == v[0];
    if (eq) {
        snprintf(buf, size, "%lld", (long long)v[0]);
        return buf;
    }
    return ct__pytuple(n, v, buf, size);
}

#define ADD(...) k += snprintf(buf + k, (size_t)k < n ? n - (size_t)k : 0, __VA_ARGS__)

/* ============================ Conv3d, ConvTranspose ============================ */
typedef struct {
    int kind; /* 3: Conv3d, 2: ConvTranspose2d, 1: ConvTranspose1d */
    int dims;
    int64_t in, out, k[3], stride[3], padding[3], dilation[3], outpad[3], groups;
    char mode[16], fill[16];
} conv_ctx;

static ct_tensor *conv_forward(ct_module *self, ct_tensor *x) {
    conv_ctx *c = ct_module_ctx(self);
    ct_tensor *w = ct__mod_param(self, 0), *b = ct__mod_param(self, 1);
    if (c->kind == 3) {
        ct_conv3d_opts o = {.groups = c->groups, .padding_mode = c->mode[0] ? c->mode : NULL};
        for (int i = 0; i < 3; i++)
            o.stride[i] = c->stride[i], o.padding[i] = c->padding[i], o.dilation[i] = c->dilation[i];
        if (strcmp(c->fill, "zeros") != 0) { /* nn.Conv3d's padding_mode: pad, then convolve unpadded */
            int64_t pad[6];
            for (int i = 0; i < 3; i++) {
                int64_t lo = c->padding[i], hi = c->padding[i];
                if (strcmp(c->mode, "same") == 0) { /* torch: total//2 before, the rest after */
                    int64_t t = c->dilation[i] * (c->k[i] - 1);
                    lo = t / 2, hi = t - t / 2;
                }
                pad[2 * (2 - i)] = lo, pad[2 * (2 - i) + 1] = hi;
            }
            x = ct_pad(x, 6, pad, c->fill, 0.0);
            memset(o.padding, 0, sizeof o.padding);
            o.padding_mode = NULL;
        }
        return ct_nn_conv3d(x, w, b, &o);
    }
    ct_conv_opts o = {.groups = c->groups};
    for (int i = 0; i < 2; i++)
        o.stride[i] = c->stride[i], o.padding[i] = c->padding[i], o.dilation[i] = c->dilation[i],
        o.output_padding[i] = c->outpad[i];
    return c->kind == 2 ? ct_nn_conv_transpose2d(x, w, b, &o) : ct_nn_conv_transpose1d(x, w, b, &o);
}

/* ConvTranspose's forward(input, output_size): output_size (a 1-d int64 tensor of the
 * spatial sizes, optionally with the batch/channel sizes first) picks the output_padding,
 * as torch's _output_padding does. */
static int convt_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    conv_ctx *c = ct_module_ctx(self);
    const char *tn = ct_module_type_name(self);
    if (n_in < 1 || n_in > 2) return ct__errs(CT_ERR_ARG, "%s.forward takes 1 or 2 inputs, got %d", tn, n_in);
    ct_tensor *x = in[0];
    CT_CHECK_ARG_S(tn, x);
    if (n_in < 2 || !in[1]) {
        ct_tensor *y = conv_forward(self, x);
        if (!y) return ct_last_status();
        if (n_out > 0) out[0] = y;
        return n_out > 0;
    }
    ct_tensor *os = in[1];
    int d = c->dims, nn = x->ndim == d + 2 ? 2 : 1;
    if (x->ndim != d + 1 && x->ndim != d + 2)
        return ct__errs(CT_ERR_SHAPE, "%s: Expected %dD (unbatched) or %dD (batched) input, but got input of size: %s",
                        tn, d + 1, d + 2, CT_SHAPESTR(x));
    if (os->dtype != CT_INT64 || os->ndim != 1 || (os->sizes[0] != d && os->sizes[0] != d + nn))
        return ct__errs(CT_ERR_ARG, "%s: ConvTranspose%dD: for %dD input, output_size must have %d or %d elements", tn,
                        d, x->ndim, d, d + nn);
    int64_t v[8], res[3], mn[3], mx[3];
    if (ct_copy_to_buffer(os, v, sizeof(int64_t) * (size_t)os->sizes[0], CT_INT64)) return ct_last_status();
    const int64_t *req = v + (os->sizes[0] - d);
    bool ok = true;
    for (int i = 0; i < d; i++) {
        mn[i] = (x->sizes[nn + i] - 1) * c->stride[i] - 2 * c->padding[i] + c->dilation[i] * (c->k[i] - 1) + 1;
        mx[i] = mn[i] + c->stride[i] - 1;
        ok &= req[i] >= mn[i] && req[i] <= mx[i];
        res[i] = req[i] - mn[i];
    }
    if (!ok) {
        char a[64], b[64], r[64];
        return ct__errs(CT_ERR_ARG, "%s: requested an output size of %s, but valid sizes range from %s to %s", tn,
                        ct__pytuple(d, req, r, sizeof r), ct__pytuple(d, mn, a, sizeof a), ct__pytuple(d, mx, b, sizeof b));
    }
    ct_conv_opts o = {.groups = c->groups};
    for (int i = 0; i < d; i++)
        o.stride[i] = c->stride[i], o.padding[i] = c->padding[i], o.dilation[i] = c->dilation[i],
        o.output_padding[i] = res[i];
    ct_tensor *w = ct__mod_param(self, 0), *b = ct__mod_param(self, 1);
    ct_tensor *y = d == 2 ? ct_nn_conv_transpose2d(x, w, b, &o) : ct_nn_conv_transpose1d(x, w, b, &o);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}

static bool all_eq(int d, const int64_t *v, int64_t x) {
    for (int i = 0; i < d; i++)
        if (v[i] != x) return false;
    return true;
}

/* torch's _ConvNd.extra_repr */
static void conv_repr(const ct_module *self, char *buf, size_t n) {
    const conv_ctx *c = ct_module_ctx(self);
    int k = 0, d = c->dims;
    char t[96];
    ADD("%lld, %lld, kernel_size=%s", (long long)c->in, (long long)c->out, tup(d, c->k, t, sizeof t));
    ADD(", stride=%s", tup(d, c->stride, t, sizeof t));
    if (c->mode[0]) ADD(", padding=%s", c->mode);
    else if (!all_eq(d, c->padding, 0)) ADD(", padding=%s", tup(d, c->padding, t, sizeof t));
    if (!all_eq(d, c->dilation, 1)) ADD(", dilation=%s", tup(d, c->dilation, t, sizeof t));
    if (c->kind != 3 && !all_eq(d, c->outpad, 0)) ADD(", output_padding=%s", tup(d, c->outpad, t, sizeof t));
    if (c->groups != 1) ADD(", groups=%lld", (long long)c->groups);
    if (!ct__mod_param(self, 1)) ADD(", bias=False");
    if (strcmp(c->fill, "zeros") != 0) ADD(", padding_mode=%s", c->fill);
}

static const ct_module_type CONV3D = {.name = "Conv3d", .forward = conv_forward, .extra_repr = conv_repr, .free_ctx = free};
static const ct_module_type CONVT2D = {.name = "ConvTranspose2d", .forward_n = convt_forward_n,
                                       .extra_repr = conv_repr, .free_ctx = free};
static const ct_module_type CONVT1D = {.name = "ConvTranspose1d", .forward_n = convt_forward_n,
                                       .extra_repr = conv_repr, .free_ctx = free};

/* c filled with kind, dims, in, out, k, stride, padding, dilation, outpad, groups, mode, fill */
static ct_module *conv_build(conv_ctx *c, bool bias) {
    const ct_module_type *t = c->kind == 3 ? &CONV3D : c->kind == 2 ? &CONVT2D : &CONVT1D;
    const char *tn = t->name;
    if (c->in <= 0 || c->out <= 0 || c->groups <= 0) {
        ct__err(CT_ERR_ARG, "%s: in_channels, out_channels and groups must be positive, got %lld, %lld, %lld", tn,
                (long long)c->in, (long long)c->out, (long long)c->groups);
        goto fail;
    }
    if (c->in % c->groups) { ct__err(CT_ERR_ARG, "%s: in_channels must be divisible by groups", tn); goto fail; }
    if (c->out % c->groups) { ct__err(CT_ERR_ARG, "%s: out_channels must be divisible by groups", tn); goto fail; }
    for (int i = 0; i < c->dims; i++) {
        if (c->k[i] <= 0) { ct__err(CT_ERR_ARG, "%s: kernel_size must be positive", tn); goto fail; }
        if (c->stride[i] <= 0 || c->dilation[i] <= 0) {
            ct__err(CT_ERR_ARG, "%s: stride and dilation must be positive", tn);
            goto fail;
        }
        if (c->padding[i] < 0 || c->outpad[i] < 0) { ct__err(CT_ERR_ARG, "%s: padding must be non-negative", tn); goto fail; }
    }
    if (strcmp(c->fill, "zeros") && strcmp(c->fill, "reflect") && strcmp(c->fill, "replicate") &&
        strcmp(c->fill, "circular")) {
        ct__err(CT_ERR_ARG, "%s: padding_mode must be one of 'zeros', 'reflect', 'replicate' or 'circular', got '%s'",
                tn, c->fill);
        goto fail;
    }
    if (c->kind != 3 && strcmp(c->fill, "zeros")) {
        ct__err(CT_ERR_ARG, "%s: Only \"zeros\" padding mode is supported for %s", tn, tn);
        goto fail;
    }
    if (c->mode[0] && c->kind != 3) {
        ct__err(CT_ERR_ARG, "%s: padding strings are not supported for transposed convolutions", tn);
        goto fail;
    }
    if (c->mode[0] && strcmp(c->mode, "same") && strcmp(c->mode, "valid")) {
        ct__err(CT_ERR_ARG, "%s: Invalid padding string '%s', should be one of {'valid', 'same'}", tn, c->mode);
        goto fail;
    }
    if (c->mode[0] && strcmp(c->mode, "same") == 0 && !all_eq(c->dims, c->stride, 1)) {
        ct__err(CT_ERR_ARG, "%s: padding='same' is not supported for strided convolutions", tn);
        goto fail;
    }
    if (c->kind != 3)
        for (int i = 0; i < c->dims; i++)
            if (c->outpad[i] >= c->stride[i] && c->outpad[i] >= c->dilation[i]) {
                ct__err(CT_ERR_ARG, "%s: output padding must be smaller than either stride or dilation", tn);
                goto fail;
            }
    int64_t ks = 1, wshape[5];
    for (int i = 0; i < c->dims; i++) ks *= c->k[i], wshape[2 + i] = c->k[i];
    /* torch: weight [out, in/g, k...] (transposed: [in, out/g, k...]); fan_in = size(1) * prod(k) */
    wshape[0] = c->kind == 3 ? c->out : c->in;
    wshape[1] = c->kind == 3 ? c->in / c->groups : c->out / c->groups;
    int64_t fan_in = wshape[1] * ks, bias_n = c->out;
    ct_module *m = with_ctx(t, c);
    if (!m) return NULL;
    double bound = 1.0 / sqrt((double)fan_in);
    if (ct__mod_weight_bias(m, 2 + c->dims, wshape, bias_n, bias, bound)) {
        ct_module_free(m);
        return NULL;
    }
    return m;
fail:
    free(c);
    return NULL;
}

CT_API ct_module *ct_nn_conv3d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[3],
                                   const ct_conv3d_opts *opts, bool bias) {
    if (!kernel) return ct__err(CT_ERR_ARG, "Conv3d: kernel_size is required");
    conv_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "Conv3d: out of memory");
    c->kind = 3, c->dims = 3, c->in = in_channels, c->out = out_channels;
    c->groups = opts && opts->groups ? opts->groups : 1;
    for (int i = 0; i < 3; i++) {
        c->k[i] = kernel[i];
        c->stride[i] = opts ? or1(opts->stride[i]) : 1;
        c->padding[i] = opts ? opts->padding[i] : 0;
        c->dilation[i] = opts ? or1(opts->dilation[i]) : 1;
    }
    if (opts && opts->padding_mode) snprintf(c->mode, sizeof c->mode, "%s", opts->padding_mode);
    snprintf(c->fill, sizeof c->fill, "%s", opts && opts->padding_fill ? opts->padding_fill : "zeros");
    if (strcmp(c->mode, "valid") == 0) memset(c->padding, 0, sizeof c->padding);
    if (strcmp(c->mode, "same") == 0) /* torch stores the padding it computed for its repr: keep the string */
        memset(c->padding, 0, sizeof c->padding);
    return conv_build(c, bias);
}

static ct_module *convt_new(int dims, int64_t in, int64_t out, const int64_t *k, const ct_conv_opts *o, bool bias) {
    const char *tn = dims == 2 ? "ConvTranspose2d" : "ConvTranspose1d";
    conv_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", tn);
    c->kind = dims, c->dims = dims, c->in = in, c->out = out;
    c->groups = o && o->groups ? o->groups : 1;
    for (int i = 0; i < dims; i++) {
        c->k[i] = k[i];
        c->stride[i] = o ? or1(o->stride[i]) : 1;
        c->padding[i] = o ? o->padding[i] : 0;
        c->dilation[i] = o ? or1(o->dilation[i]) : 1;
        c->outpad[i] = o ? o->output_padding[i] : 0;
    }
    if (o && o->padding_mode) snprintf(c->mode, sizeof c->mode, "%s", o->padding_mode);
    snprintf(c->fill, sizeof c->fill, "%s", o && o->padding_fill ? o->padding_fill : "zeros");
    return conv_build(c, bias);
}

CT_API ct_module *ct_nn_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2],
                                             const ct_conv_opts *opts, bool bias) {
    if (!kernel) return ct__err(CT_ERR_ARG, "ConvTranspose2d: kernel_size is required");
    return convt_new(2, in_channels, out_channels, kernel, opts, bias);
}

CT_API ct_module *ct_nn_conv_transpose1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel,
                                             const ct_conv_opts *opts, bool bias) {
    return convt_new(1, in_channels, out_channels, &kernel, opts, bias);
}

/* ============================ pooling ============================ */
enum { P_MAX1, P_AVG1, P_UNPOOL1, P_UNPOOL2, P_AAVG1, P_AMAX1, P_AMAX2 };

typedef struct {
    int kind;
    int64_t k[2], stride[2], padding[2];
    ct_pool_opts o;
    bool ret_idx;
} pool_ctx;

static int pool_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    pool_ctx *c = ct_module_ctx(self);
    const char *tn = ct_module_type_name(self);
    bool unpool = c->kind == P_UNPOOL1 || c->kind == P_UNPOOL2;
    int want = unpool ? 2 : 1, most = unpool ? 3 : 1;
    if (n_in < want || n_in > most)
        return ct__errs(CT_ERR_ARG, "%s.forward takes %d%s input%s, got %d", tn, want, unpool ? " or 3" : "",
                        want > 1 ? "s" : "", n_in);
    ct_tensor *x = in[0];
    CT_CHECK_ARG_S(tn, x);
    ct_tensor *idx = NULL, *y = NULL;
    ct_tensor **pidx = c->ret_idx && n_out > 1 ? &idx : NULL;
    switch (c->kind) {
    case P_MAX1: y = ct_nn_max_pool1d(x, c->k[0], &c->o, pidx); break;
    case P_AVG1: y = ct_nn_avg_pool1d(x, c->k[0], &c->o); break;
    case P_AAVG1: y = ct_nn_adaptive_avg_pool1d(x, c->k[0]); break;
    case P_AMAX1: y = ct_nn_adaptive_max_pool1d(x, c->k[0], pidx); break;
    case P_AMAX2: y = ct_nn_adaptive_max_pool2d(x, c->k, pidx); break;
    default: {
        CT_CHECK_ARG_S(tn, in[1]);
        int sp = c->kind == P_UNPOOL2 ? 2 : 1;
        int64_t osz[2] = {0, 0};
        bool has_os = n_in > 2 && in[2];
        if (has_os) {
            ct_tensor *os = in[2];
            if (os->dtype != CT_INT64 || os->ndim != 1 || (os->sizes[0] != sp && os->sizes[0] != sp + 1 &&
                                                           os->sizes[0] != sp + 2))
                return ct__errs(CT_ERR_ARG, "%s: output_size must be a 1-d int64 tensor of %d (or %d, %d) sizes", tn,
                                sp, sp + 1, sp + 2);
            int64_t v[4];
            if (ct_copy_to_buffer(os, v, sizeof(int64_t) * (size_t)os->sizes[0], CT_INT64)) return ct_last_status();
            for (int i = 0; i < sp; i++) osz[i] = v[os->sizes[0] - sp + i]; /* torch keeps the trailing sizes */
        }
        if (sp == 2) y = ct_nn_max_unpool2d(x, in[1], c->k, c->stride, c->padding, has_os ? osz : NULL);
        else y = ct_nn_max_unpool1d(x, in[1], c->k[0], c->stride[0], c->padding[0], has_os ? osz[0] : 0);
    }
    }
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    if (pidx) {
        out[1] = idx;
        return 2;
    }
    return n_out > 0 ? 1 : 0;
}

static void pool_repr(const ct_module *self, char *buf, size_t n) {
    const pool_ctx *c = ct_module_ctx(self);
    char a[64], b[64], d[64];
    int k = 0;
    switch (c->kind) {
    case P_MAX1:
        ADD("kernel_size=%lld, stride=%lld, padding=%lld, dilation=%lld, ceil_mode=%s", (long long)c->k[0],
            (long long)(c->o.stride[0] ? c->o.stride[0] : c->k[0]), (long long)c->o.padding[0],
            (long long)or1(c->o.dilation[0]), ct__pybool(c->o.ceil_mode));
        break;
    case P_AVG1: /* AvgPool1d stores _single(...) tuples */
        ADD("kernel_size=(%lld,), stride=(%lld,), padding=(%lld,)", (long long)c->k[0],
            (long long)(c->o.stride[0] ? c->o.stride[0] : c->k[0]), (long long)c->o.padding[0]);
        break;
    case P_UNPOOL1:
    case P_UNPOOL2: {
        int sp = c->kind == P_UNPOOL2 ? 2 : 1;
        ADD("kernel_size=%s, stride=%s, padding=%s", tup(sp, c->k, a, sizeof a), tup(sp, c->stride, b, sizeof b),
            tup(sp, c->padding, d, sizeof d));
        break;
    }
    case P_AAVG1:
    case P_AMAX1: ADD("output_size=%lld", (long long)c->k[0]); break;
    default: ADD("output_size=%s", int_or_tup(2, c->k, a, sizeof a));
    }
}

static const ct_module_type MAXPOOL1 = {.name = "MaxPool1d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                        .free_ctx = free};
static const ct_module_type AVGPOOL1 = {.name = "AvgPool1d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                        .free_ctx = free};
static const ct_module_type UNPOOL1 = {.name = "MaxUnpool1d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                       .free_ctx = free};
static const ct_module_type UNPOOL2 = {.name = "MaxUnpool2d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                       .free_ctx = free};
static const ct_module_type AAVG1 = {.name = "AdaptiveAvgPool1d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                     .free_ctx = free};
static const ct_module_type AMAX1 = {.name = "AdaptiveMaxPool1d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                     .free_ctx = free};
static const ct_module_type AMAX2 = {.name = "AdaptiveMaxPool2d", .forward_n = pool_forward_n, .extra_repr = pool_repr,
                                     .free_ctx = free};

static ct_module *pool_new(int kind, pool_ctx v) {
    static const ct_module_type *types[] = {&MAXPOOL1, &AVGPOOL1, &UNPOOL1, &UNPOOL2, &AAVG1, &AMAX1, &AMAX2};
    const ct_module_type *t = types[kind];
    int sp = kind == P_UNPOOL2 || kind == P_AMAX2 ? 2 : 1;
    for (int i = 0; i < sp; i++) {
        if (v.k[i] <= 0) return ct__err(CT_ERR_ARG, "%s: sizes must be positive", t->name);
        if (v.stride[i] < 0 || v.padding[i] < 0 || v.o.stride[i] < 0 || v.o.padding[i] < 0)
            return ct__err(CT_ERR_ARG, "%s: stride and padding must be non-negative", t->name);
    }
    pool_ctx *c = malloc(sizeof *c);
    if (c) {
        *c = v;
        c->kind = kind;
    }
    return with_ctx(t, c);
}

CT_API ct_module *ct_nn_max_pool1d_new(int64_t kernel, const ct_pool_opts *opts, bool return_indices) {
    pool_ctx v = {.k = {kernel, 1}, .ret_idx = return_indices};
    if (opts) v.o = *opts;
    return pool_new(P_MAX1, v);
}
CT_API ct_module *ct_nn_avg_pool1d_new(int64_t kernel, const ct_pool_opts *opts) {
    pool_ctx v = {.k = {kernel, 1}};
    if (opts) v.o = *opts;
    return pool_new(P_AVG1, v);
}
CT_API ct_module *ct_nn_max_unpool2d_new(const int64_t kernel[2], const int64_t stride[2], const int64_t padding[2]) {
    if (!kernel) return ct__err(CT_ERR_ARG, "MaxUnpool2d: kernel_size is required");
    pool_ctx v = {.k = {kernel[0], kernel[1]}};
    for (int i = 0; i < 2; i++)
        v.stride[i] = stride && stride[i] ? stride[i] : kernel[i], v.padding[i] = padding ? padding[i] : 0;
    return pool_new(P_UNPOOL2, v);
}
CT_API ct_module *ct_nn_max_unpool1d_new(int64_t kernel, int64_t stride, int64_t padding) {
    pool_ctx v = {.k = {kernel, 1}, .stride = {stride ? stride : kernel, 1}, .padding = {padding, 0}};
    return pool_new(P_UNPOOL1, v);
}
CT_API ct_module *ct_nn_adaptive_avg_pool1d_new(int64_t output_size) {
    return pool_new(P_AAVG1, (pool_ctx){.k = {output_size, 1}});
}
CT_API ct_module *ct_nn_adaptive_max_pool1d_new(int64_t output_size, bool return_indices) {
    return pool_new(P_AMAX1, (pool_ctx){.k = {output_size, 1}, .ret_idx = return_indices});
}
CT_API ct_module *ct_nn_adaptive_max_pool2d_new(const int64_t output_size[2], bool return_indices) {
    if (!output_size) return ct__err(CT_ERR_ARG, "AdaptiveMaxPool2d: output_size is required");
    return pool_new(P_AMAX2, (pool_ctx){.k = {output_size[0], output_size[1]}, .ret_idx = return_indices});
}

/* ============================ Upsample ============================ */
typedef struct {
    int n;
    int64_t size[3];
    double scale[3];
    bool has_size;
    char mode[16];
    int align;
    bool recompute;
} up_ctx;

static ct_tensor *up_forward(ct_module *self, ct_tensor *x) {
    up_ctx *c = ct_module_ctx(self);
    int sp = x->ndim - 2;
    int64_t size[3];
    double scale[3];
    if (c->n == 1) {
        for (int i = 0; i < 3; i++) size[i] = c->size[0], scale[i] = c->scale[0];
    } else {
        if (sp != c->n && sp >= 1 && sp <= 3)
            return ct__err(CT_ERR_ARG, "%s: Input and %s must have the same number of spatial dimensions, but got "
                           "input with spatial dimensions of %d and %s with %d values", ct_module_type_name(self),
                           c->has_size ? "output size" : "scale_factor", sp, c->has_size ? "size" : "scale_factor", c->n);
        memcpy(size, c->size, sizeof size);
        memcpy(scale, c->scale, sizeof scale);
    }
    return ct_nn_interpolate(x, c->has_size ? size : NULL, c->has_size ? NULL : scale, c->mode, c->align, c->recompute);
}

static void up_repr(const ct_module *self, char *buf, size_t n) {
    const up_ctx *c = ct_module_ctx(self);
    int k = 0;
    char f[40];
    if (!c->has_size) {
        if (c->n == 1) ADD("scale_factor=%s", ct__pyfloat(c->scale[0], f, sizeof f));
        else {
            ADD("scale_factor=(");
            for (int i = 0; i < c->n; i++) ADD("%s%s", i ? ", " : "", ct__pyfloat(c->scale[i], f, sizeof f));
            ADD(")");
        }
    } else if (c->n == 1) {
        ADD("size=%lld", (long long)c->size[0]);
    } else {
        ADD("size=%s", tup(c->n, c->size, f, sizeof f));
    }
    ADD(", mode='%s'", c->mode);
}

static const ct_module_type UPSAMPLE = {.name = "Upsample", .forward = up_forward, .extra_repr = up_repr, .free_ctx = free};
static const ct_module_type UPNEAREST = {.name = "UpsamplingNearest2d", .forward = up_forward, .extra_repr = up_repr,
                                         .free_ctx = free};
static const ct_module_type UPBILINEAR = {.name = "UpsamplingBilinear2d", .forward = up_forward, .extra_repr = up_repr,
                                          .free_ctx = free};

static ct_module *up_new(const ct_module_type *t, int n, const int64_t *size, const double *scale, const char *mode,
                         int align, bool recompute) {
    if (n < 1 || n > 3) return ct__err(CT_ERR_ARG, "%s: size / scale_factor must have 1 to 3 values", t->name);
    if (!size == !scale) return ct__err(CT_ERR_ARG, "%s: give exactly one of size and scale_factor", t->name);
    const char *m = mode ? mode : "nearest";
    if (strcmp(m, "nearest") && strcmp(m, "nearest-exact") && strcmp(m, "linear") && strcmp(m, "bilinear") &&
        strcmp(m, "bicubic") && strcmp(m, "trilinear") && strcmp(m, "area"))
        return ct__err(CT_ERR_ARG, "%s: unsupported mode '%s' (nearest, nearest-exact, linear, bilinear, bicubic, "
                       "trilinear, area)", t->name, m);
    up_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->n = n, c->has_size = size != NULL, c->align = align < 0 ? CT_ALIGN_CORNERS_NONE : align > 0,
        c->recompute = recompute;
        for (int i = 0; i < n; i++) {
            if (size) c->size[i] = size[i];
            else c->scale[i] = scale[i];
        }
        snprintf(c->mode, sizeof c->mode, "%s", m);
    }
    return with_ctx(t, c);
}

CT_API ct_module *ct_nn_upsample_new(int n, const int64_t *size, const double *scale_factor, const char *mode,
                                     int align_corners, bool recompute_scale_factor) {
    return up_new(&UPSAMPLE, n, size, scale_factor, mode, align_corners, recompute_scale_factor);
}
CT_API ct_module *ct_nn_upsampling_nearest2d_new(int n, const int64_t *size, const double *scale_factor) {
    return up_new(&UPNEAREST, n, size, scale_factor, "nearest", CT_ALIGN_CORNERS_NONE, false);
}
CT_API ct_module *ct_nn_upsampling_bilinear2d_new(int n, const int64_t *size, const double *scale_factor) {
    return up_new(&UPBILINEAR, n, size, scale_factor, "bilinear", 1, false);
}

/* ============================ PixelShuffle, Fold, Unfold ============================ */
typedef struct {
    int kind; /* 0 shuffle, 1 unshuffle, 2 fold, 3 unfold */
    int64_t r, osz[2], k[2], d[2], p[2], s[2];
} misc_ctx;

static ct_tensor *misc_forward(ct_module *self, ct_tensor *x) {
    misc_ctx *c = ct_module_ctx(self);
    switch (c->kind) {
    case 0: return ct_nn_pixel_shuffle(x, c->r);
    case 1: return ct_nn_pixel_unshuffle(x, c->r);
    case 2: return ct_nn_fold(x, c->osz, c->k, c->d, c->p, c->s);
    default: return ct_nn_unfold(x, c->k, c->d, c->p, c->s);
    }
}

static void misc_repr(const ct_module *self, char *buf, size_t n) {
    const misc_ctx *c = ct_module_ctx(self);
    int k = 0;
    char a[48], b[48], d[48], p[48], s[48];
    if (c->kind == 0) ADD("upscale_factor=%lld", (long long)c->r);
    else if (c->kind == 1) ADD("downscale_factor=%lld", (long long)c->r);
    else {
        if (c->kind == 2) ADD("output_size=%s, ", int_or_tup(2, c->osz, a, sizeof a));
        ADD("kernel_size=%s, dilation=%s, padding=%s, stride=%s", int_or_tup(2, c->k, b, sizeof b),
            int_or_tup(2, c->d, d, sizeof d), int_or_tup(2, c->p, p, sizeof p), int_or_tup(2, c->s, s, sizeof s));
    }
}

static const ct_module_type PSHUF = {.name = "PixelShuffle", .forward = misc_forward, .extra_repr = misc_repr,
                                     .free_ctx = free};
static const ct_module_type PUNSHUF = {.name = "PixelUnshuffle", .forward = misc_forward, .extra_repr = misc_repr,
                                       .free_ctx = free};
static const ct_module_type FOLD = {.name = "Fold", .forward = misc_forward, .extra_repr = misc_repr, .free_ctx = free};
static const ct_module_type UNFOLD = {.name = "Unfold", .forward = misc_forward, .extra_repr = misc_repr,
                                      .free_ctx = free};

static ct_module *misc_new(const ct_module_type *t, misc_ctx v) {
    misc_ctx *c = malloc(sizeof *c);
    if (c) *c = v;
    return with_ctx(t, c);
}

CT_API ct_module *ct_nn_pixel_shuffle_new(int64_t upscale_factor) {
    if (upscale_factor <= 0) return ct__err(CT_ERR_ARG, "PixelShuffle: upscale_factor must be positive");
    return misc_new(&PSHUF, (misc_ctx){.kind = 0, .r = upscale_factor});
}
CT_API ct_module *ct_nn_pixel_unshuffle_new(int64_t downscale_factor) {
    if (downscale_factor <= 0) return ct__err(CT_ERR_ARG, "PixelUnshuffle: downscale_factor must be positive");
    return misc_new(&PUNSHUF, (misc_ctx){.kind = 1, .r = downscale_factor});
}

static int fill_fold(const char *tn, misc_ctx *v, const int64_t *k, const int64_t *d, const int64_t *p,
                     const int64_t *s) {
    if (!k) return ct__errs(CT_ERR_ARG, "%s: kernel_size is required", tn);
    for (int i = 0; i < 2; i++) {
        v->k[i] = k[i], v->d[i] = d ? or1(d[i]) : 1, v->p[i] = p ? p[i] : 0, v->s[i] = s ? or1(s[i]) : 1;
        if (v->k[i] <= 0 || v->d[i] <= 0 || v->s[i] <= 0 || v->p[i] < 0)
            return ct__errs(CT_ERR_ARG, "%s: kernel_size, dilation and stride must be positive, padding non-negative",
                            tn);
    }
    return 0;
}

CT_API ct_module *ct_nn_fold_new(const int64_t output_size[2], const int64_t kernel[2], const int64_t dilation[2],
                                 const int64_t padding[2], const int64_t stride[2]) {
    misc_ctx v = {.kind = 2};
    if (!output_size || output_size[0] <= 0 || output_size[1] <= 0)
        return ct__err(CT_ERR_ARG, "Fold: output_size must be positive");
    v.osz[0] = output_size[0], v.osz[1] = output_size[1];
    if (fill_fold("Fold", &v, kernel, dilation, padding, stride)) return NULL;
    return misc_new(&FOLD, v);
}
CT_API ct_module *ct_nn_unfold_new(const int64_t kernel[2], const int64_t dilation[2], const int64_t padding[2],
                                   const int64_t stride[2]) {
    misc_ctx v = {.kind = 3};
    if (fill_fold("Unfold", &v, kernel, dilation, padding, stride)) return NULL;
    return misc_new(&UNFOLD, v);
}
