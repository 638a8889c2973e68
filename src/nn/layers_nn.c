/* Layer modules over ctorch/nn.h: Conv1d/2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
 * BatchNorm1d/2d, LayerNorm, Embedding. PyTorch's parameter names, initialisation
 * (same draws in the same order) and reprs. */
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

static void tuple_or_int(char *buf, size_t n, const int64_t v[2], bool as_int) {
    if (as_int && v[0] == v[1]) snprintf(buf, n, "%lld", (long long)v[0]);
    else snprintf(buf, n, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
}

/* ---- Conv1d / Conv2d ---- */
typedef struct {
    int dims;
    int64_t in, out, k[2];
    ct_conv_opts o;
    char mode[16], fill[16];
} conv_ctx;

static ct_tensor *conv_forward(ct_module *self, ct_tensor *x) {
    conv_ctx *c = ct_module_ctx(self);
    ct_tensor *w = ct__mod_param(self, 0), *b = ct__mod_param(self, 1);
    ct_conv_opts o = c->o;
    if (c->fill[0] && strcmp(c->fill, "zeros") != 0) {
        /* nn.Conv's padding_mode: pad explicitly, then convolve without padding */
        int64_t pad[4];
        int np;
        if (c->dims == 2) pad[0] = pad[1] = o.padding[1], pad[2] = pad[3] = o.padding[0], np = 4;
        else pad[0] = pad[1] = o.padding[0], np = 2;
        x = ct_pad(x, np, pad, c->fill, 0.0);
        memset(o.padding, 0, sizeof o.padding);
    }
    return c->dims == 2 ? ct_nn_conv2d(x, w, b, &o) : ct_nn_conv1d(x, w, b, &o);
}

static void conv_repr(const ct_module *self, char *buf, size_t n) {
    const conv_ctx *c = ct_module_ctx(self);
    int k = 0;
#define ADD(...) k += snprintf(buf + k, (size_t)k < n ? n - (size_t)k : 0, __VA_ARGS__)
    int64_t one[2] = {1, 1};
    int64_t st[2] = {c->o.stride[0] ? c->o.stride[0] : 1, c->o.stride[1] ? c->o.stride[1] : 1};
    int64_t dl[2] = {c->o.dilation[0] ? c->o.dilation[0] : 1, c->o.dilation[1] ? c->o.dilation[1] : 1};
    if (c->dims == 2) {
        ADD("%lld, %lld, kernel_size=(%lld, %lld), stride=(%lld, %lld)", (long long)c->in, (long long)c->out,
            (long long)c->k[0], (long long)c->k[1], (long long)st[0], (long long)st[1]);
        if (c->mode[0]) ADD(", padding=%s", c->mode);
        else if (c->o.padding[0] || c->o.padding[1])
            ADD(", padding=(%lld, %lld)", (long long)c->o.padding[0], (long long)c->o.padding[1]);
        if (memcmp(dl, one, sizeof one)) ADD(", dilation=(%lld, %lld)", (long long)dl[0], (long long)dl[1]);
    } else {
        ADD("%lld, %lld, kernel_size=(%lld,), stride=(%lld,)", (long long)c->in, (long long)c->out, (long long)c->k[1],
            (long long)st[0]);
        if (c->mode[0]) ADD(", padding=%s", c->mode);
        else if (c->o.padding[0]) ADD(", padding=(%lld,)", (long long)c->o.padding[0]);
        if (dl[0] != 1) ADD(", dilation=(%lld,)", (long long)dl[0]);
    }
    if (c->o.groups > 1) ADD(", groups=%lld", (long long)c->o.groups);
    if (!ct__mod_param(self, 1)) ADD(", bias=False");
    if (c->fill[0] && strcmp(c->fill, "zeros") != 0) ADD(", padding_mode=%s", c->fill);
#undef ADD
}

static const ct_module_type CONV2D = {.name = "Conv2d", .forward = conv_forward, .extra_repr = conv_repr, .free_ctx = free};
static const ct_module_type CONV1D = {.name = "Conv1d", .forward = conv_forward, .extra_repr = conv_repr, .free_ctx = free};

static ct_module *conv_new(int dims, int64_t in, int64_t out, const int64_t k[2], const ct_conv_opts *opts, bool bias) {
    const char *tn = dims == 2 ? "Conv2d" : "Conv1d";
    int64_t g = opts && opts->groups ? opts->groups : 1;
    if (in <= 0 || out <= 0 || g <= 0)
        return ct__err(CT_ERR_ARG, "%s: in_channels, out_channels and groups must be positive, got %lld, %lld, %lld", tn,
                       (long long)in, (long long)out, (long long)g);
    if (in % g) return ct__err(CT_ERR_ARG, "%s: in_channels must be divisible by groups", tn);
    if (out % g) return ct__err(CT_ERR_ARG, "%s: out_channels must be divisible by groups", tn);
    if (k[0] <= 0 || k[1] <= 0) return ct__err(CT_ERR_ARG, "%s: kernel_size must be positive", tn);
    const char *fill = opts && opts->padding_fill ? opts->padding_fill : "zeros";
    if (strcmp(fill, "zeros") && strcmp(fill, "reflect") && strcmp(fill, "replicate") && strcmp(fill, "circular"))
        return ct__err(CT_ERR_ARG, "%s: padding_mode must be one of 'zeros', 'reflect', 'replicate' or 'circular', got "
                       "'%s'", tn, fill);
    if (opts && opts->padding_mode && strcmp(opts->padding_mode, "same") && strcmp(opts->padding_mode, "valid"))
        return ct__err(CT_ERR_ARG, "%s: Invalid padding string '%s', should be one of {'valid', 'same'}", tn,
                       opts->padding_mode);
    if (opts && opts->padding_mode && strcmp(fill, "zeros"))
        return ct__err(CT_ERR_ARG, "%s: padding strings are supported with padding_mode 'zeros' only", tn);
    conv_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->dims = dims, c->in = in, c->out = out, c->k[0] = k[0], c->k[1] = k[1];
        if (opts) c->o = *opts;
        c->o.groups = g;
        c->o.padding_mode = NULL;
        c->o.padding_fill = NULL;
        if (opts && opts->padding_mode) snprintf(c->mode, sizeof c->mode, "%s", opts->padding_mode);
        snprintf(c->fill, sizeof c->fill, "%s", fill);
        if (c->mode[0]) c->o.padding_mode = c->mode;
    }
    ct_module *m = with_ctx(dims == 2 ? &CONV2D : &CONV1D, c);
    if (!m) return NULL;
    /* torch: kaiming_uniform_(a=sqrt(5)) == U(+-1/sqrt(fan_in)), then the bias likewise */
    int64_t fan_in = (in / g) * k[0] * k[1];
    double bound = 1.0 / sqrt((double)fan_in);
    int st = dims == 2 ? ct__mod_weight_bias(m, 4, (int64_t[]){out, in / g, k[0], k[1]}, out, bias, bound)
                       : ct__mod_weight_bias(m, 3, (int64_t[]){out, in / g, k[1]}, out, bias, bound);
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_conv2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2],
                                   const ct_conv_opts *opts, bool bias) {
    if (!kernel) return ct__err(CT_ERR_ARG, "Conv2d: kernel_size is required");
    return conv_new(2, in_channels, out_channels, kernel, opts, bias);
}

CT_API ct_module *ct_nn_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel, const ct_conv_opts *opts,
                                   bool bias) {
    return conv_new(1, in_channels, out_channels, (int64_t[]){1, kernel}, opts, bias);
}

/* ---- pooling ---- */
typedef struct {
    int kind; /* 0 max, 1 avg, 2 adaptive avg */
    int64_t k[2];
    ct_pool_opts o;
} pool_ctx;

static ct_tensor *pool_forward(ct_module *self, ct_tensor *x) {
    pool_ctx *c = ct_module_ctx(self);
    if (c->kind == 0) return ct_nn_max_pool2d(x, c->k, &c->o, NULL);
    if (c->kind == 1) return ct_nn_avg_pool2d(x, c->k, &c->o);
    return ct_nn_adaptive_avg_pool2d(x, c->k);
}

static void pool_repr(const ct_module *self, char *buf, size_t n) {
    const pool_ctx *c = ct_module_ctx(self);
    char k[48], s[48], p[48], d[48];
    int64_t st[2] = {c->o.stride[0] ? c->o.stride[0] : c->k[0], c->o.stride[1] ? c->o.stride[1] : c->k[1]};
    int64_t dl[2] = {c->o.dilation[0] ? c->o.dilation[0] : 1, c->o.dilation[1] ? c->o.dilation[1] : 1};
    tuple_or_int(k, sizeof k, c->k, true);
    tuple_or_int(s, sizeof s, st, true);
    tuple_or_int(p, sizeof p, c->o.padding, true);
    tuple_or_int(d, sizeof d, dl, true);
    if (c->kind == 0)
        snprintf(buf, n, "kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s", k, s, p, d,
                 ct__pybool(c->o.ceil_mode));
    else if (c->kind == 1)
        snprintf(buf, n, "kernel_size=%s, stride=%s, padding=%s", k, s, p);
    else { /* as torchvision writes it: AdaptiveAvgPool2d((1, 1)) */
        tuple_or_int(k, sizeof k, c->k, false);
        snprintf(buf, n, "output_size=%s", k);
    }
}

static const ct_module_type MAXPOOL = {.name = "MaxPool2d", .forward = pool_forward, .extra_repr = pool_repr, .free_ctx = free};
static const ct_module_type AVGPOOL = {.name = "AvgPool2d", .forward = pool_forward, .extra_repr = pool_repr, .free_ctx = free};
static const ct_module_type ADAPOOL = {.name = "AdaptiveAvgPool2d", .forward = pool_forward, .extra_repr = pool_repr,
                                       .free_ctx = free};

static ct_module *pool_new(int kind, const int64_t k[2], const ct_pool_opts *opts) {
    const ct_module_type *t = kind == 0 ? &MAXPOOL : kind == 1 ? &AVGPOOL : &ADAPOOL;
    if (!k || k[0] <= 0 || k[1] <= 0) return ct__err(CT_ERR_ARG, "%s: sizes must be positive", t->name);
    pool_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = kind, c->k[0] = k[0], c->k[1] = k[1];
        if (opts) c->o = *opts;
    }
    return with_ctx(t, c);
}
CT_API ct_module *ct_nn_max_pool2d_new(const int64_t kernel[2], const ct_pool_opts *opts) { return pool_new(0, kernel, opts); }
CT_API ct_module *ct_nn_avg_pool2d_new(const int64_t kernel[2], const ct_pool_opts *opts) { return pool_new(1, kernel, opts); }
CT_API ct_module *ct_nn_adaptive_avg_pool2d_new(const int64_t output_size[2]) { return pool_new(2, output_size, NULL); }

/* running_mean, running_var, num_batches_tracked (absent unless track), as BatchNorm
 * and InstanceNorm register them */
static int running_stats(ct_module *m, bool track, int64_t C) {
    ct_scope_begin();
    int st = ct_module_register_buffer(m, "running_mean", track ? ct_zeros(CT_SHAPE(C), CT_FLOAT32) : NULL, true);
    if (!st) st = ct_module_register_buffer(m, "running_var", track ? ct_ones(CT_SHAPE(C), CT_FLOAT32) : NULL, true);
    if (!st) st = ct_module_register_buffer(m, "num_batches_tracked", track ? ct_zeros(0, NULL, CT_INT64) : NULL, true);
    ct_scope_end();
    return st;
}

/* ---- BatchNorm ---- */
typedef struct {
    int dims; /* 1 or 2 */
    int64_t C;
    double eps, momentum;
    bool affine, track;
} bn_ctx;

/* what bn's forward passes to batch_norm (num_batches_tracked counted here) */
typedef struct {
    ct_tensor *w, *b, *rm, *rv;
    bool training;
} bn_args;

static bn_args bn_prepare(ct_module *self) {
    bn_ctx *c = ct_module_ctx(self);
    ct_tensor *rm = ct__mod_buffer(self, 0), *rv = ct__mod_buffer(self, 1), *nbt = ct__mod_buffer(self, 2);
    if (self->training && c->track && nbt) {
        bool prev = ct_set_grad_enabled(false);
        ct_add_alpha_(nbt, ct_scalar_tensor(1, CT_INT64), 1.0);
        ct_set_grad_enabled(prev);
    }
    return (bn_args){ct__mod_param(self, 0), ct__mod_param(self, 1), c->track ? rm : NULL, c->track ? rv : NULL,
                     self->training || !c->track};
}

static ct_tensor *bn_forward(ct_module *self, ct_tensor *x) {
    bn_ctx *c = ct_module_ctx(self);
    if (c->dims == 2 ? x->ndim != 4 : (x->ndim != 2 && x->ndim != 3))
        return ct__err(CT_ERR_SHAPE, c->dims == 2 ? "BatchNorm2d: expected 4D input (got %dD input)"
                                                  : "BatchNorm1d: expected 2D or 3D input (got %dD input)", x->ndim);
    bn_args a = bn_prepare(self);
    return ct_nn_batch_norm(x, a.rm, a.rv, a.w, a.b, a.training, c->momentum, c->eps);
}

static void bn_repr(const ct_module *self, char *buf, size_t n) {
    const bn_ctx *c = ct_module_ctx(self);
    char e[32], m[32];
    snprintf(buf, n, "%lld, eps=%s, momentum=%s, affine=%s, bias=%s, track_running_stats=%s", (long long)c->C,
             ct__pyfloat(c->eps, e, sizeof e), ct__pyfloat(c->momentum, m, sizeof m), ct__pybool(c->affine),
             ct__pybool(c->affine), ct__pybool(c->track));
}

static const ct_module_type BN1 = {.name = "BatchNorm1d", .forward = bn_forward, .extra_repr = bn_repr, .free_ctx = free};
static const ct_module_type BN2 = {.name = "BatchNorm2d", .forward = bn_forward, .extra_repr = bn_repr, .free_ctx = free};

static ct_module *bn_new(int dims, int64_t C, double eps, double momentum, bool affine, bool track) {
    const ct_module_type *t = dims == 2 ? &BN2 : &BN1;
    if (C <= 0) return ct__err(CT_ERR_ARG, "%s: num_features must be positive, got %lld", t->name, (long long)C);
    bn_ctx *c = calloc(1, sizeof *c);
    if (c) *c = (bn_ctx){dims, C, eps, momentum, affine, track};
    ct_module *m = with_ctx(t, c);
    if (!m) return NULL;
    int st = ct__mod_affine_params(m, affine, true, 1, (int64_t[]){C});
    if (!st) st = running_stats(m, track, C);
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}
CT_API ct_module *ct_nn_batch_norm1d_new(int64_t C, double eps, double momentum, bool affine, bool track) {
    return bn_new(1, C, eps, momentum, affine, track);
}
CT_API ct_module *ct_nn_batch_norm2d_new(int64_t C, double eps, double momentum, bool affine, bool track) {
    return bn_new(2, C, eps, momentum, affine, track);
}

/* ---- Sequential's fusion (src/nn/module.c) ----
 * BatchNorm2d, ReLU (and MaxPool2d) in a row on a 4-D input run as one node with the
 * modules' values and gradients (ct__nn_batch_norm_relu(_max_pool2d)). */
int64_t ct__mod_seq_fuse(const ct__mod_child *ch, int64_t n, ct_tensor *x, ct_tensor **y) {
    *y = NULL;
    if (n < 2 || x->ndim != 4 || ch[0].m->type != &BN2 || !ct__mod_is_relu(ch[1].m)) return 0;
    const bn_ctx *c = ct_module_ctx(ch[0].m);
    bn_args a = bn_prepare(ch[0].m);
    if (n >= 3 && ch[2].m->type == &MAXPOOL) {
        const pool_ctx *p = ct_module_ctx(ch[2].m);
        *y = ct__nn_batch_norm_relu_max_pool2d(x, a.rm, a.rv, a.w, a.b, a.training, c->momentum, c->eps, p->k, &p->o);
        return 3;
    }
    *y = ct__nn_batch_norm_relu(x, a.rm, a.rv, a.w, a.b, a.training, c->momentum, c->eps);
    return 2;
}

/* ---- LayerNorm ---- */
typedef struct {
    int n;
    int64_t shape[8];
    double eps;
    bool affine;
} ln_ctx;

static ct_tensor *ln_forward(ct_module *self, ct_tensor *x) {
    ln_ctx *c = ct_module_ctx(self);
    return ct_nn_layer_norm(x, c->n, c->shape, ct__mod_param(self, 0), ct__mod_param(self, 1), c->eps);
}
static void ln_repr(const ct_module *self, char *buf, size_t n) {
    const ln_ctx *c = ct_module_ctx(self);
    char t[256], e[32];
    snprintf(buf, n, "%s, eps=%s, elementwise_affine=%s, bias=%s", ct__pytuple(c->n, c->shape, t, sizeof t),
             ct__pyfloat(c->eps, e, sizeof e), ct__pybool(c->affine), ct__pybool(c->affine && ct__mod_param(self, 1) != NULL));
}
static const ct_module_type LN = {.name = "LayerNorm", .forward = ln_forward, .extra_repr = ln_repr, .free_ctx = free};

CT_API ct_module *ct_nn_layer_norm_new(int n, const int64_t *shape, double eps, bool affine) {
    if (n < 1 || n > 8 || !shape) return ct__err(CT_ERR_ARG, "LayerNorm: normalized_shape must have 1 to 8 dims");
    ln_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->n = n, c->eps = eps, c->affine = affine;
        memcpy(c->shape, shape, sizeof(int64_t) * (size_t)n);
    }
    ct_module *m = with_ctx(&LN, c);
    if (!m) return NULL;
    int st = ct__mod_affine_params(m, affine, true, n, shape);
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- Embedding ---- */
typedef struct {
    int64_t num, dim, pad;
} emb_ctx;

static ct_tensor *emb_forward(ct_module *self, ct_tensor *x) {
    emb_ctx *c = ct_module_ctx(self);
    return ct_nn_embedding(x, ct__mod_param(self, 0), c->pad);
}
static void emb_repr(const ct_module *self, char *buf, size_t n) {
    const emb_ctx *c = ct_module_ctx(self);
    if (c->pad == CT_NO_PADDING_IDX) snprintf(buf, n, "%lld, %lld", (long long)c->num, (long long)c->dim);
    else snprintf(buf, n, "%lld, %lld, padding_idx=%lld", (long long)c->num, (long long)c->dim, (long long)c->pad);
}
static const ct_module_type EMB = {.name = "Embedding", .forward = emb_forward, .extra_repr = emb_repr, .free_ctx = free};

CT_API ct_module *ct_nn_embedding_new(int64_t num, int64_t dim, int64_t padding_idx) {
    if (num <= 0 || dim <= 0) return ct__err(CT_ERR_ARG, "Embedding: num_embeddings and embedding_dim must be positive");
    if (padding_idx != CT_NO_PADDING_IDX) {
        if (padding_idx >= num || padding_idx < -num)
            return ct__err(CT_ERR_ARG, "Embedding: Padding_idx must be within num_embeddings");
        if (padding_idx < 0) padding_idx += num;
    }
    emb_ctx *c = malloc(sizeof *c);
    if (c) *c = (emb_ctx){num, dim, padding_idx};
    ct_module *m = with_ctx(&EMB, c);
    if (!m) return NULL;
    ct_scope_begin();
    ct_tensor *w = ct_empty(CT_SHAPE(num, dim), CT_FLOAT32);
    int st = w ? ct_normal_(w, 0.0, 1.0, NULL) : ct_last_status();
    if (!st && padding_idx != CT_NO_PADDING_IDX) st = ct_zero_(ct_select(w, 0, padding_idx));
    if (!st) st = ct_module_register_parameter(m, "weight", w);
    ct_scope_end();
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- GroupNorm, RMSNorm, InstanceNorm2d ---- */
typedef struct {
    int kind; /* 0 group, 1 rms, 2 instance */
    int64_t groups, C;
    int n;
    int64_t shape[8];
    double eps, momentum;
    bool affine, track;
} norm_ctx;

static ct_tensor *norm_forward(ct_module *self, ct_tensor *x) {
    norm_ctx *c = ct_module_ctx(self);
    if (c->kind == 0) return ct_nn_group_norm(x, c->groups, ct__mod_param(self, 0), ct__mod_param(self, 1), c->eps);
    if (c->kind == 1) return ct_nn_rms_norm(x, c->n, c->shape, ct__mod_param(self, 0), c->eps);
    if (x->ndim != 3 && x->ndim != 4)
        return ct__err(CT_ERR_SHAPE, "InstanceNorm2d: expected 3D or 4D input (got %dD input)", x->ndim);
    if (x->ndim == 3) { /* unbatched [C, H, W] */
        if (ct_scope_begin()) return NULL;
        ct_tensor *y = ct_squeeze_dim(norm_forward(self, ct_unsqueeze(x, 0)), 0);
        if (y) y = ct_keep(y);
        ct_scope_end();
        return y;
    }
    bool use_input = self->training || !c->track;
    return ct_nn_instance_norm(x, c->track ? ct__mod_buffer(self, 0) : NULL, c->track ? ct__mod_buffer(self, 1) : NULL,
                               ct__mod_param(self, 0), ct__mod_param(self, 1), use_input, c->momentum, c->eps);
}

static void norm_repr(const ct_module *self, char *buf, size_t n) {
    const norm_ctx *c = ct_module_ctx(self);
    char e[32], m[32], t[256];
    if (c->kind == 0)
        snprintf(buf, n, "%lld, %lld, eps=%s, affine=%s, bias=%s", (long long)c->groups, (long long)c->C,
                 ct__pyfloat(c->eps, e, sizeof e), ct__pybool(c->affine), ct__pybool(c->affine));
    else if (c->kind == 1)
        snprintf(buf, n, "%s, eps=%s, elementwise_affine=%s", ct__pytuple(c->n, c->shape, t, sizeof t),
                 c->eps < 0 ? "None" : ct__pyfloat(c->eps, e, sizeof e), ct__pybool(c->affine));
    else
        snprintf(buf, n, "%lld, eps=%s, momentum=%s, affine=%s, bias=%s, track_running_stats=%s", (long long)c->C,
                 ct__pyfloat(c->eps, e, sizeof e), ct__pyfloat(c->momentum, m, sizeof m), ct__pybool(c->affine),
                 ct__pybool(c->affine), ct__pybool(c->track));
}

static const ct_module_type GROUPNORM = {.name = "GroupNorm", .forward = norm_forward, .extra_repr = norm_repr, .free_ctx = free};
static const ct_module_type RMSNORM = {.name = "RMSNorm", .forward = norm_forward, .extra_repr = norm_repr, .free_ctx = free};
static const ct_module_type INSTNORM = {.name = "InstanceNorm2d", .forward = norm_forward, .extra_repr = norm_repr,
                                        .free_ctx = free};

static ct_module *norm_module(const ct_module_type *t, norm_ctx v, int pn, const int64_t *pshape) {
    norm_ctx *c = malloc(sizeof *c);
    if (c) *c = v;
    ct_module *m = with_ctx(t, c);
    if (!m) return NULL;
    int st = ct__mod_affine_params(m, v.affine, v.kind != 1, pn, pshape);
    if (!st && v.kind == 2) st = running_stats(m, v.track, v.C);
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_group_norm_new(int64_t num_groups, int64_t num_channels, double eps, bool affine) {
    if (num_groups <= 0 || num_channels <= 0 || num_channels % num_groups)
        return ct__err(CT_ERR_ARG, "GroupNorm: num_channels must be divisible by num_groups");
    return norm_module(&GROUPNORM, (norm_ctx){.kind = 0, .groups = num_groups, .C = num_channels, .eps = eps,
                                              .affine = affine}, 1, (int64_t[]){num_channels});
}
CT_API ct_module *ct_nn_rms_norm_new(int n, const int64_t *shape, double eps, bool affine) {
    if (n < 1 || n > 8 || !shape) return ct__err(CT_ERR_ARG, "RMSNorm: normalized_shape must have 1 to 8 dims");
    norm_ctx v = {.kind = 1, .n = n, .eps = eps, .affine = affine};
    memcpy(v.shape, shape, sizeof(int64_t) * (size_t)n);
    return norm_module(&RMSNORM, v, n, shape);
}
CT_API ct_module *ct_nn_instance_norm2d_new(int64_t C, double eps, double momentum, bool affine, bool track) {
    if (C <= 0) return ct__err(CT_ERR_ARG, "InstanceNorm2d: num_features must be positive");
    return norm_module(&INSTNORM, (norm_ctx){.kind = 2, .C = C, .eps = eps, .momentum = momentum, .affine = affine,
                                             .track = track}, 1, (int64_t[]){C});
}
