/* Bilinear, Dropout1d/2d/3d, Embedding with max_norm and EmbeddingBag modules: torch's
 * parameter names, initialisation (same draws in the same order) and reprs. */
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

/* ---- Bilinear ---- */
typedef struct {
    int64_t in1, in2, out;
} bil_ctx;

static int bil_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    if (n_in != 2 || !in[0] || !in[1])
        return ct_set_error(CT_ERR_ARG, "Bilinear.forward takes 2 inputs (input1, input2), got %d", n_in);
    if (n_out < 1) return 0;
    out[0] = ct_nn_bilinear(in[0], in[1], ct__mod_param(self, 0), ct__mod_param(self, 1));
    return out[0] ? 1 : ct_last_status();
}
static void bil_repr(const ct_module *self, char *buf, size_t n) {
    const bil_ctx *c = ct_module_ctx(self);
    snprintf(buf, n, "in1_features=%lld, in2_features=%lld, out_features=%lld, bias=%s", (long long)c->in1,
             (long long)c->in2, (long long)c->out, ct__pybool(ct__mod_param(self, 1) != NULL));
}
static const ct_module_type BILINEAR = {.name = "Bilinear", .forward_n = bil_forward_n, .extra_repr = bil_repr,
                                        .free_ctx = free};

CT_API ct_module *ct_nn_bilinear_new(int64_t in1_features, int64_t in2_features, int64_t out_features, bool bias) {
    if (in1_features <= 0 || in2_features <= 0 || out_features <= 0)
        return ct__err(CT_ERR_ARG, "Bilinear: feature sizes must be positive, got %lld, %lld, %lld",
                       (long long)in1_features, (long long)in2_features, (long long)out_features);
    bil_ctx *c = malloc(sizeof *c);
    if (c) *c = (bil_ctx){in1_features, in2_features, out_features};
    ct_module *m = with_ctx(&BILINEAR, c);
    if (!m) return NULL;
    /* torch: bound = 1 / sqrt(weight.size(1)); uniform_ weight then bias */
    double bound = 1.0 / sqrt((double)in1_features);
    if (ct__mod_weight_bias(m, 3, (int64_t[]){out_features, in1_features, in2_features}, out_features, bias, bound)) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- Dropout1d / 2d / 3d ---- */
typedef struct {
    int dims;
    double p;
} fdrop_ctx;

static ct_tensor *fdrop_forward(ct_module *self, ct_tensor *x) {
    fdrop_ctx *c = ct_module_ctx(self);
    bool tr = ct_module_is_training(self);
    return c->dims == 1 ? ct_nn_dropout1d(x, c->p, tr, NULL)
           : c->dims == 2 ? ct_nn_dropout2d(x, c->p, tr, NULL) : ct_nn_dropout3d(x, c->p, tr, NULL);
}
static void fdrop_repr(const ct_module *self, char *buf, size_t n) {
    const fdrop_ctx *c = ct_module_ctx(self);
    char a[32];
    snprintf(buf, n, "p=%s, inplace=False", ct__pyfloat(c->p, a, sizeof a));
}
static const ct_module_type DROP1 = {.name = "Dropout1d", .forward = fdrop_forward, .extra_repr = fdrop_repr, .free_ctx = free};
static const ct_module_type DROP2 = {.name = "Dropout2d", .forward = fdrop_forward, .extra_repr = fdrop_repr, .free_ctx = free};
static const ct_module_type DROP3 = {.name = "Dropout3d", .forward = fdrop_forward, .extra_repr = fdrop_repr, .free_ctx = free};

static ct_module *fdrop_new(int dims, double p) {
    const ct_module_type *t = dims == 1 ? &DROP1 : dims == 2 ? &DROP2 : &DROP3;
    if (!(p >= 0 && p <= 1))
        return ct__err(CT_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g", t->name, p);
    fdrop_ctx *c = malloc(sizeof *c);
    if (c) *c = (fdrop_ctx){dims, p};
    return with_ctx(t, c);
}
CT_API ct_module *ct_nn_dropout1d_new(double p) { return fdrop_new(1, p); }
CT_API ct_module *ct_nn_dropout2d_new(double p) { return fdrop_new(2, p); }
CT_API ct_module *ct_nn_dropout3d_new(double p) { return fdrop_new(3, p); }

/* ---- Embedding (with max_norm) and EmbeddingBag ---- */
typedef struct {
    bool bag, include_last_offset;
    int64_t num, dim, pad;
    double max_norm, norm_type;
    char mode[8];
} embx_ctx;

static ct_tensor *embx_forward(ct_module *self, ct_tensor *x) {
    embx_ctx *c = ct_module_ctx(self);
    return ct_nn_embedding_ex(x, ct__mod_param(self, 0), c->pad, c->max_norm, c->norm_type);
}

static int bag_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    embx_ctx *c = ct_module_ctx(self);
    if (n_in < 1 || n_in > 3 || !in[0])
        return ct_set_error(CT_ERR_ARG, "EmbeddingBag.forward takes 1 to 3 inputs (input, offsets, "
                            "per_sample_weights), got %d", n_in);
    if (n_out < 1) return 0;
    out[0] = ct_nn_embedding_bag(in[0], ct__mod_param(self, 0), n_in > 1 ? in[1] : NULL, c->max_norm, c->norm_type,
                                 c->mode, n_in > 2 ? in[2] : NULL, c->include_last_offset, c->pad);
    return out[0] ? 1 : ct_last_status();
}

static void embx_repr(const ct_module *self, char *buf, size_t n) {
    const embx_ctx *c = ct_module_ctx(self);
    char a[32];
    int k = snprintf(buf, n, "%lld, %lld", (long long)c->num, (long long)c->dim);
#define ADD(...) k += snprintf(buf + k, (size_t)k < n ? n - (size_t)k : 0, __VA_ARGS__)
    if (!c->bag && c->pad != CT_NO_PADDING_IDX) ADD(", padding_idx=%lld", (long long)c->pad);
    if (c->max_norm > 0) ADD(", max_norm=%s", ct__pyfloat(c->max_norm, a, sizeof a));
    if (c->norm_type != 2) ADD(", norm_type=%s", ct__pyfloat(c->norm_type, a, sizeof a));
    if (c->bag) {
        ADD(", mode='%s'", c->mode);
        if (c->pad != CT_NO_PADDING_IDX) ADD(", padding_idx=%lld", (long long)c->pad);
    }
#undef ADD
}

static const ct_module_type EMBX = {.name = "Embedding", .forward = embx_forward, .extra_repr = embx_repr, .free_ctx = free};
static const ct_module_type EMBBAG = {.name = "EmbeddingBag", .forward_n = bag_forward_n, .extra_repr = embx_repr,
                                      .free_ctx = free};

static ct_module *embx_new(embx_ctx v) {
    const ct_module_type *t = v.bag ? &EMBBAG : &EMBX;
    if (v.num <= 0 || v.dim <= 0)
        return ct__err(CT_ERR_ARG, "%s: num_embeddings and embedding_dim must be positive", t->name);
    if (v.pad != CT_NO_PADDING_IDX) {
        if (v.pad >= v.num || v.pad < -v.num)
            return ct__err(CT_ERR_ARG, "%s: padding_idx must be within num_embeddings", t->name);
        if (v.pad < 0) v.pad += v.num;
    }
    embx_ctx *c = malloc(sizeof *c);
    if (c) *c = v;
    ct_module *m = with_ctx(t, c);
    if (!m) return NULL;
    /* torch: normal_(weight), then the padding row zeroed */
    ct_scope_begin();
    ct_tensor *w = ct_empty(CT_SHAPE(v.num, v.dim), CT_FLOAT32);
    int st = w ? ct_normal_(w, 0.0, 1.0, NULL) : ct_last_status();
    if (!st && v.pad != CT_NO_PADDING_IDX) st = ct_zero_(ct_select(w, 0, v.pad));
    if (!st) st = ct_module_register_parameter(m, "weight", w);
    ct_scope_end();
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_embedding_ex_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                                         double max_norm, double norm_type) {
    return embx_new((embx_ctx){.num = num_embeddings, .dim = embedding_dim, .pad = padding_idx,
                               .max_norm = max_norm > 0 ? max_norm : 0, .norm_type = norm_type});
}

CT_API ct_module *ct_nn_embedding_bag_new(int64_t num_embeddings, int64_t embedding_dim, double max_norm,
                                          double norm_type, const char *mode, bool include_last_offset,
                                          int64_t padding_idx) {
    if (!mode) mode = "mean";
    if (strcmp(mode, "sum") && strcmp(mode, "mean") && strcmp(mode, "max"))
        return ct__err(CT_ERR_ARG, "EmbeddingBag: mode has to be one of sum, mean or max, got '%s'", mode);
    embx_ctx v = {.bag = true, .include_last_offset = include_last_offset, .num = num_embeddings,
                  .dim = embedding_dim, .pad = padding_idx, .max_norm = max_norm > 0 ? max_norm : 0,
                  .norm_type = norm_type};
    snprintf(v.mode, sizeof v.mode, "%s", mode);
    return embx_new(v);
}
