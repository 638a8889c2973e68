/* The simple layers as modules: Identity, Linear, Flatten, Unflatten, Dropout and the
 * activations. Each is a ct_module_type (name, forward, extra_repr) plus a constructor
 * that registers parameters under PyTorch's names and initialises them as PyTorch. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "nn/module_internal.h"

/* ---- Identity ---- */
static ct_tensor *identity_forward(ct_module *self, ct_tensor *x) { return ct__ret(ct_retain(x)); }
static const ct_module_type IDENTITY = {.name = "Identity", .forward = identity_forward};
CT_API ct_module *ct_nn_identity_new(void) { return ct_module_new(&IDENTITY, NULL); }

/* ---- Linear ---- */
typedef struct {
    int64_t in, out;
} linear_ctx;

static ct_tensor *linear_forward(ct_module *self, ct_tensor *x) {
    ct_tensor *w = ct__mod_param(self, 0), *b = ct__mod_param(self, 1);
    if (x->ndim == 2 && b) return ct_addmm(b, x, ct_t(w), 1.0, 1.0);
    ct_tensor *y = ct_matmul(x, ct_t(w));
    return b ? ct_add(y, b) : y;
}
static void linear_repr(const ct_module *self, char *buf, size_t n) {
    const linear_ctx *c = ct_module_ctx(self);
    snprintf(buf, n, "in_features=%lld, out_features=%lld, bias=%s", (long long)c->in, (long long)c->out,
             ct__pybool(ct__mod_param(self, 1) != NULL));
}
static const ct_module_type LINEAR = {.name = "Linear", .forward = linear_forward, .extra_repr = linear_repr, .free_ctx = free};

CT_API ct_module *ct_nn_linear_new(int64_t in_features, int64_t out_features, bool bias) {
    if (in_features < 0 || out_features < 0)
        return ct__err(CT_ERR_ARG, "Linear: in_features and out_features must be non-negative, got %lld and %lld",
                       (long long)in_features, (long long)out_features);
    linear_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "Linear: out of memory");
    *c = (linear_ctx){in_features, out_features};
    ct_module *m = ct_module_new(&LINEAR, c);
    if (!m) {
        free(c);
        return NULL;
    }
    /* torch: kaiming_uniform_(w, a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)); then the
     * bias from the same bound. Same draws from the default generator, in the same order. */
    double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0.0;
    if (ct__mod_weight_bias(m, 2, (int64_t[]){out_features, in_features}, out_features, bias, bound)) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

int ct__mod_uniform_param(ct_module *m, const char *name, int nd, const int64_t *sizes, double bound) {
    ct_scope_begin();
    ct_tensor *t = ct_empty(nd, sizes, CT_FLOAT32);
    int st = t ? ct_uniform_(t, -bound, bound, NULL) : ct_last_status();
    if (!st) st = ct_module_register_parameter(m, name, t);
    ct_scope_end();
    return st;
}

int ct__mod_weight_bias(ct_module *m, int nd, const int64_t *wshape, int64_t bias_n, bool bias, double bound) {
    ct_scope_begin();
    int st = ct__mod_uniform_param(m, "weight", nd, wshape, bound);
    if (!st) st = bias ? ct__mod_uniform_param(m, "bias", 1, (int64_t[]){bias_n}, bound)
                       : ct_module_register_parameter(m, "bias", NULL);
    ct_scope_end();
    return st;
}

int ct__mod_affine_params(ct_module *m, bool affine, bool with_bias, int nd, const int64_t *shape) {
    ct_scope_begin();
    int st = ct_module_register_parameter(m, "weight", affine ? ct_ones(nd, shape, CT_FLOAT32) : NULL);
    if (!st && with_bias) st = ct_module_register_parameter(m, "bias", affine ? ct_zeros(nd, shape, CT_FLOAT32) : NULL);
    ct_scope_end();
    return st;
}

/* ---- Flatten / Unflatten ---- */
typedef struct {
    int64_t a, b;
    int n;
    int64_t sizes[CT_MAX_DIMS];
} shape_ctx;

static ct_tensor *flatten_forward(ct_module *self, ct_tensor *x) {
    const shape_ctx *c = ct_module_ctx(self);
    return ct_flatten(x, (int)c->a, (int)c->b);
}
static void flatten_repr(const ct_module *self, char *buf, size_t n) {
    const shape_ctx *c = ct_module_ctx(self);
    snprintf(buf, n, "start_dim=%lld, end_dim=%lld", (long long)c->a, (long long)c->b);
}
static const ct_module_type FLATTEN = {.name = "Flatten", .forward = flatten_forward, .extra_repr = flatten_repr, .free_ctx = free};

static ct_tensor *unflatten_forward(ct_module *self, ct_tensor *x) {
    const shape_ctx *c = ct_module_ctx(self);
    return ct_unflatten(x, (int)c->a, c->n, c->sizes);
}
static void unflatten_repr(const ct_module *self, char *buf, size_t n) {
    const shape_ctx *c = ct_module_ctx(self);
    char t[512];
    snprintf(buf, n, "dim=%lld, unflattened_size=%s", (long long)c->a, ct__pytuple(c->n, c->sizes, t, sizeof t));
}
static const ct_module_type UNFLATTEN = {.name = "Unflatten", .forward = unflatten_forward, .extra_repr = unflatten_repr, .free_ctx = free};

static ct_module *shape_module(const ct_module_type *type, int64_t a, int64_t b, int n, const int64_t *sizes) {
    shape_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", type->name);
    c->a = a, c->b = b, c->n = n;
    if (n) memcpy(c->sizes, sizes, (size_t)n * sizeof *sizes);
    ct_module *m = ct_module_new(type, c);
    if (!m) free(c);
    return m;
}
CT_API ct_module *ct_nn_flatten_new(int64_t start_dim, int64_t end_dim) {
    return shape_module(&FLATTEN, start_dim, end_dim, 0, NULL);
}
CT_API ct_module *ct_nn_unflatten_new(int64_t dim, int n, const int64_t *sizes) {
    if (n < 1 || n > CT_MAX_DIMS || !sizes)
        return ct__err(CT_ERR_ARG, "Unflatten: unflattened_size must be a non-empty tuple of at most %d ints", CT_MAX_DIMS);
    return shape_module(&UNFLATTEN, dim, 0, n, sizes);
}

/* ---- activations and dropout: one parameter block, one forward switch ---- */
typedef enum {
    A_RELU, A_RELU6, A_LEAKY, A_ELU, A_SELU, A_CELU, A_GELU, A_SILU, A_MISH, A_SIGMOID, A_TANH, A_SOFTPLUS,
    A_SOFTSIGN, A_HARDTANH, A_HARDSIGMOID, A_HARDSWISH, A_LOGSIGMOID, A_SOFTMAX, A_LOG_SOFTMAX, A_GLU, A_DROPOUT
} act_kind;

typedef struct {
    act_kind kind;
    double d0, d1;
    int64_t dim;
    bool flag;
} act_ctx;

static ct_tensor *act_forward(ct_module *self, ct_tensor *x) {
    const act_ctx *c = ct_module_ctx(self);
    switch (c->kind) {
    case A_RELU: return ct_relu(x);
    case A_RELU6: return ct_relu6(x);
    case A_LEAKY: return ct_leaky_relu(x, c->d0);
    case A_ELU: return ct_elu(x, c->d0);
    case A_SELU: return ct_selu(x);
    case A_CELU: return ct_celu(x, c->d0);
    case A_GELU: return ct_gelu(x, c->flag);
    case A_SILU: return ct_silu(x);
    case A_MISH: return ct_mish(x);
    case A_SIGMOID: return ct_sigmoid(x);
    case A_TANH: return ct_tanh(x);
    case A_SOFTPLUS: return ct_softplus(x, c->d0, c->d1);
    case A_SOFTSIGN: return ct_softsign(x);
    case A_HARDTANH: return ct_hardtanh(x, c->d0, c->d1);
    case A_HARDSIGMOID: return ct_hardsigmoid(x);
    case A_HARDSWISH: return ct_hardswish(x);
    case A_LOGSIGMOID: return ct_logsigmoid(x);
    case A_SOFTMAX: return ct_softmax(x, (int)c->dim, CT_NUM_DTYPES);
    case A_LOG_SOFTMAX: return ct_log_softmax(x, (int)c->dim, CT_NUM_DTYPES);
    case A_GLU: return ct_glu(x, (int)c->dim);
    case A_DROPOUT: return ct_dropout(x, c->d0, ct_module_is_training(self), NULL);
    }
    return ct__err(CT_ERR_RUNTIME, "activation: unknown kind");
}

static void act_repr(const ct_module *self, char *buf, size_t n) {
    const act_ctx *c = ct_module_ctx(self);
    char a[64], b[64];
    switch (c->kind) {
    case A_LEAKY: snprintf(buf, n, "negative_slope=%s", ct__pyfloat(c->d0, a, sizeof a)); break;
    case A_ELU:
    case A_CELU: snprintf(buf, n, "alpha=%s", ct__pyfloat(c->d0, a, sizeof a)); break;
    case A_GELU: snprintf(buf, n, "approximate='%s'", c->flag ? "tanh" : "none"); break;
    case A_SOFTPLUS:
        snprintf(buf, n, "beta=%s, threshold=%s", ct__pyfloat(c->d0, a, sizeof a), ct__pyfloat(c->d1, b, sizeof b));
        break;
    case A_HARDTANH:
        snprintf(buf, n, "min_val=%s, max_val=%s", ct__pyfloat(c->d0, a, sizeof a), ct__pyfloat(c->d1, b, sizeof b));
        break;
    case A_SOFTMAX:
    case A_LOG_SOFTMAX:
    case A_GLU: snprintf(buf, n, "dim=%lld", (long long)c->dim); break;
    case A_DROPOUT: snprintf(buf, n, "p=%s, inplace=False", ct__pyfloat(c->d0, a, sizeof a)); break;
    default: buf[0] = 0;
    }
}

#define ACT_TYPE(var, tname) \
    static const ct_module_type var = {.name = tname, .forward = act_forward, .extra_repr = act_repr, .free_ctx = free}
ACT_TYPE(T_RELU, "ReLU"); ACT_TYPE(T_RELU6, "ReLU6"); ACT_TYPE(T_LEAKY, "LeakyReLU"); ACT_TYPE(T_ELU, "ELU");
ACT_TYPE(T_SELU, "SELU"); ACT_TYPE(T_CELU, "CELU"); ACT_TYPE(T_GELU, "GELU"); ACT_TYPE(T_SILU, "SiLU");
ACT_TYPE(T_MISH, "Mish"); ACT_TYPE(T_SIGMOID, "Sigmoid"); ACT_TYPE(T_TANH, "Tanh"); ACT_TYPE(T_SOFTPLUS, "Softplus");
ACT_TYPE(T_SOFTSIGN, "Softsign"); ACT_TYPE(T_HARDTANH, "Hardtanh"); ACT_TYPE(T_HARDSIGMOID, "Hardsigmoid");
ACT_TYPE(T_HARDSWISH, "Hardswish"); ACT_TYPE(T_LOGSIGMOID, "LogSigmoid"); ACT_TYPE(T_SOFTMAX, "Softmax");
ACT_TYPE(T_LOG_SOFTMAX, "LogSoftmax"); ACT_TYPE(T_GLU, "GLU"); ACT_TYPE(T_DROPOUT, "Dropout");

bool ct__mod_is_relu(const ct_module *m) { return m && m->type == &T_RELU; }

double ct__mod_dropout_p(const ct_module *m) {
    return m && m->type == &T_DROPOUT ? ((const act_ctx *)m->ctx)->d0 : -1.0;
}

static ct_module *act_new(const ct_module_type *type, act_ctx v) {
    act_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", type->name);
    *c = v;
    ct_module *m = ct_module_new(type, c);
    if (!m) free(c);
    return m;
}

CT_API ct_module *ct_nn_relu_new(void) { return act_new(&T_RELU, (act_ctx){.kind = A_RELU}); }
CT_API ct_module *ct_nn_relu6_new(void) { return act_new(&T_RELU6, (act_ctx){.kind = A_RELU6}); }
CT_API ct_module *ct_nn_leaky_relu_new(double s) { return act_new(&T_LEAKY, (act_ctx){.kind = A_LEAKY, .d0 = s}); }
CT_API ct_module *ct_nn_elu_new(double alpha) { return act_new(&T_ELU, (act_ctx){.kind = A_ELU, .d0 = alpha}); }
CT_API ct_module *ct_nn_selu_new(void) { return act_new(&T_SELU, (act_ctx){.kind = A_SELU}); }
CT_API ct_module *ct_nn_celu_new(double alpha) { return act_new(&T_CELU, (act_ctx){.kind = A_CELU, .d0 = alpha}); }
CT_API ct_module *ct_nn_gelu_new(const char *approximate) {
    bool tanh_ = approximate && strcmp(approximate, "tanh") == 0;
    if (approximate && !tanh_ && strcmp(approximate, "none") != 0)
        return ct__err(CT_ERR_ARG, "GELU: approximate must be 'none' or 'tanh', got '%s'", approximate);
    return act_new(&T_GELU, (act_ctx){.kind = A_GELU, .flag = tanh_});
}
CT_API ct_module *ct_nn_silu_new(void) { return act_new(&T_SILU, (act_ctx){.kind = A_SILU}); }
CT_API ct_module *ct_nn_mish_new(void) { return act_new(&T_MISH, (act_ctx){.kind = A_MISH}); }
CT_API ct_module *ct_nn_sigmoid_new(void) { return act_new(&T_SIGMOID, (act_ctx){.kind = A_SIGMOID}); }
CT_API ct_module *ct_nn_tanh_new(void) { return act_new(&T_TANH, (act_ctx){.kind = A_TANH}); }
CT_API ct_module *ct_nn_softplus_new(double beta, double threshold) {
    return act_new(&T_SOFTPLUS, (act_ctx){.kind = A_SOFTPLUS, .d0 = beta, .d1 = threshold});
}
CT_API ct_module *ct_nn_softsign_new(void) { return act_new(&T_SOFTSIGN, (act_ctx){.kind = A_SOFTSIGN}); }
CT_API ct_module *ct_nn_hardtanh_new(double min_val, double max_val) {
    if (max_val <= min_val) return ct__err(CT_ERR_ARG, "Hardtanh: max_val must be greater than min_val");
    return act_new(&T_HARDTANH, (act_ctx){.kind = A_HARDTANH, .d0 = min_val, .d1 = max_val});
}
CT_API ct_module *ct_nn_hardsigmoid_new(void) { return act_new(&T_HARDSIGMOID, (act_ctx){.kind = A_HARDSIGMOID}); }
CT_API ct_module *ct_nn_hardswish_new(void) { return act_new(&T_HARDSWISH, (act_ctx){.kind = A_HARDSWISH}); }
CT_API ct_module *ct_nn_logsigmoid_new(void) { return act_new(&T_LOGSIGMOID, (act_ctx){.kind = A_LOGSIGMOID}); }
CT_API ct_module *ct_nn_softmax_new(int64_t dim) { return act_new(&T_SOFTMAX, (act_ctx){.kind = A_SOFTMAX, .dim = dim}); }
CT_API ct_module *ct_nn_log_softmax_new(int64_t dim) {
    return act_new(&T_LOG_SOFTMAX, (act_ctx){.kind = A_LOG_SOFTMAX, .dim = dim});
}
CT_API ct_module *ct_nn_glu_new(int64_t dim) { return act_new(&T_GLU, (act_ctx){.kind = A_GLU, .dim = dim}); }
CT_API ct_module *ct_nn_dropout_new(double p) {
    if (p < 0 || p > 1 || isnan(p))
        return ct__err(CT_ERR_ARG, "dropout probability has to be between 0 and 1, but got %g", p);
    return act_new(&T_DROPOUT, (act_ctx){.kind = A_DROPOUT, .d0 = p});
}
