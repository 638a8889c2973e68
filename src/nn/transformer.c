/* Attention and Transformer modules: MultiheadAttention, TransformerEncoderLayer,
 * TransformerDecoderLayer, TransformerEncoder, TransformerDecoder, Transformer.
 * PyTorch's parameter names and order, initialisation (the same draws from the default
 * generator in the same order), reprs and forward semantics (torch's slow path, which
 * its fast paths match numerically). The math is in src/ops/attention.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch.h"
#include "nn/module_internal.h"

/* ---- private init helpers (torch.nn.init formulas, default generator) ---- */

/* fan_in, fan_out as torch's _calculate_fan_in_and_fan_out. */
static void fans(const ct_tensor *t, double *fan_in, double *fan_out) {
    double rf = 1;
    for (int i = 2; i < t->ndim; i++) rf *= (double)t->sizes[i];
    *fan_in = (double)t->sizes[1] * rf;
    *fan_out = (double)t->sizes[0] * rf;
}
static int xavier_uniform(ct_tensor *t) {
    double fi, fo;
    fans(t, &fi, &fo);
    double a = sqrt(3.0) * sqrt(2.0 / (fi + fo));
    bool prev = ct_set_grad_enabled(false);
    int st = ct_uniform_(t, -a, a, NULL);
    ct_set_grad_enabled(prev);
    return st;
}
static int xavier_normal(ct_tensor *t) {
    double fi, fo;
    fans(t, &fi, &fo);
    bool prev = ct_set_grad_enabled(false);
    int st = ct_normal_(t, 0.0, sqrt(2.0 / (fi + fo)), NULL);
    ct_set_grad_enabled(prev);
    return st;
}
/* Registers an uninitialised float32 parameter (filled later, as torch's empty()). */
static int empty_param(ct_module *m, const char *name, int nd, const int64_t *sizes) {
    ct_scope_begin();
    ct_tensor *t = ct_zeros(nd, sizes, CT_FLOAT32);
    int st = t ? ct_module_register_parameter(m, name, t) : ct_last_status();
    ct_scope_end();
    return st;
}

/* torch's _canonical_mask: a bool mask becomes a float one (-inf where True). */
static ct_tensor *canonical(const ct_tensor *mask, const char *name, ct_dtype dt) {
    if (!mask) return NULL;
    if (mask->dtype == CT_BOOL)
        return ct_where(mask, ct_scalar_tensor(-INFINITY, dt), ct_scalar_tensor(0.0, dt));
    if (!ct_dtype_is_floating(mask->dtype))
        return ct__err(CT_ERR_DTYPE, "only bool and floating types of %s are supported", name);
    return (ct_tensor *)mask;
}

/* ---- NonDynamicallyQuantizableLinear (MultiheadAttention.out_proj) ---- */
typedef struct {
    int64_t in, out;
} ndq_ctx;
static ct_tensor *ndq_forward(ct_module *self, ct_tensor *x) {
    return ct_nn_linear(x, ct__mod_param(self, 0), ct__mod_param(self, 1));
}
static void ndq_repr(const ct_module *self, char *buf, size_t n) {
    const ndq_ctx *c = ct_module_ctx(self);
    snprintf(buf, n, "in_features=%lld, out_features=%lld, bias=%s", (long long)c->in, (long long)c->out,
             ct__pybool(ct__mod_param(self, 1) != NULL));
}
static const ct_module_type NDQ_LINEAR = {
    .name = "NonDynamicallyQuantizableLinear", .forward = ndq_forward, .extra_repr = ndq_repr, .free_ctx = free};

static ct_module *ndq_linear_new(int64_t in, int64_t out, bool bias) {
    ndq_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "Linear: out of memory");
    *c = (ndq_ctx){in, out};
    ct_module *m = ct_module_new(&NDQ_LINEAR, c);
    if (!m) {
        free(c);
        return NULL;
    }
    double bound = in > 0 ? 1.0 / sqrt((double)in) : 0.0; /* Linear's reset_parameters */
    if (ct__mod_weight_bias(m, 2, (int64_t[]){out, in}, out, bias, bound)) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- MultiheadAttention ---- */
enum { P_IN_W, P_Q_W, P_K_W, P_V_W, P_IN_B, P_BIAS_K, P_BIAS_V };

typedef struct {
    int64_t E, H;
    ct_mha_opts o;
} mha_ctx;

CT_API ct_mha_opts ct_mha_default_opts(void) {
    return (ct_mha_opts){.dropout = 0.0, .bias = true, .need_weights = true, .average_attn_weights = true};
}

/* The module forward with explicit options (inputs may be batch-first). */
static int mha_run(ct_module *self, const ct_tensor *query, const ct_tensor *key, const ct_tensor *value,
                   const ct_tensor *kpm, const ct_tensor *attn_mask, bool need_weights, bool average, bool is_causal,
                   ct_tensor **out, ct_tensor **weights) {
    const mha_ctx *c = ct_module_ctx(self);
    *out = NULL;
    if (weights) *weights = NULL;
    CT_CHECK_ARG_S("MultiheadAttention", query);
    CT_CHECK_ARG_S("MultiheadAttention", key);
    CT_CHECK_ARG_S("MultiheadAttention", value);
    ct_dtype dt = query->dtype;
    if (kpm && !(kpm = canonical(kpm, "key_padding_mask", dt))) return ct_last_status();
    if (attn_mask && !(attn_mask = canonical(attn_mask, "attn_mask", dt))) return ct_last_status();
    bool batched = query->ndim == 3;
    const ct_tensor *q = query, *k = key, *v = value;
    if (c->o.batch_first && batched) {
        if (key == value) {
            if (query == key) {
                q = k = v = ct_transpose(query, 1, 0);
            } else {
                q = ct_transpose(query, 1, 0);
                k = v = ct_transpose(key, 1, 0);
            }
        } else {
            q = ct_transpose(query, 1, 0), k = ct_transpose(key, 1, 0), v = ct_transpose(value, 1, 0);
        }
    }
    ct_mha_params p = {
        .in_proj_weight = ct__mod_param(self, P_IN_W),
        .in_proj_bias = ct__mod_param(self, P_IN_B),
        .q_proj_weight = ct__mod_param(self, P_Q_W),
        .k_proj_weight = ct__mod_param(self, P_K_W),
        .v_proj_weight = ct__mod_param(self, P_V_W),
        .bias_k = ct__mod_param(self, P_BIAS_K),
        .bias_v = ct__mod_param(self, P_BIAS_V),
        .add_zero_attn = c->o.add_zero_attn,
        .dropout_p = c->o.dropout,
        .training = ct_module_is_training(self),
        .average_attn_weights = average,
        .is_causal = is_causal,
    };
    ct_module *op = ct_module_child(self, "out_proj");
    if (!op) return ct_last_status();
    p.out_proj_weight = ct__mod_param(op, 0);
    p.out_proj_bias = ct__mod_param(op, 1);
    ct_tensor *w = NULL;
    ct_tensor *o = ct_nn_multi_head_attention_forward(q, k, v, c->E, c->H, &p, kpm, attn_mask, need_weights ? &w : NULL);
    if (!o) return ct_last_status();
    if (c->o.batch_first && batched) o = ct_transpose(o, 1, 0);
    if (!o) return ct_last_status();
    *out = o;
    if (weights) *weights = w;
    return CT_OK;
}

static int mha_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const mha_ctx *c = ct_module_ctx(self);
    if (n_in < 1 || n_in > 5)
        return ct__errs(CT_ERR_ARG, "MultiheadAttention.forward takes (query, key, value, key_padding_mask, attn_mask), got %d inputs", n_in);
    ct_tensor *q = in[0], *k = n_in > 1 ? in[1] : NULL, *v = n_in > 2 ? in[2] : NULL;
    if (!k) k = q;
    if (!v) v = k;
    ct_tensor *o, *w = NULL;
    int st = mha_run(self, q, k, v, n_in > 3 ? in[3] : NULL, n_in > 4 ? in[4] : NULL, c->o.need_weights,
                     c->o.average_attn_weights, c->o.is_causal, &o, &w);
    if (st) return st;
    if (n_out > 0) out[0] = o;
    if (n_out > 1) out[1] = w;
    return n_out < 2 ? n_out : 2;
}

static const ct_module_type MHA = {.name = "MultiheadAttention", .forward_n = mha_forward_n, .free_ctx = free};

CT_API ct_module *ct_nn_multihead_attention_new(int64_t embed_dim, int64_t num_heads, const ct_mha_opts *opts) {
    ct_mha_opts o = opts ? *opts : ct_mha_default_opts();
    if (embed_dim <= 0 || num_heads <= 0)
        return ct__err(CT_ERR_ARG, "MultiheadAttention: embed_dim and num_heads must be greater than 0, got embed_dim=%lld "
                       "and num_heads=%lld instead", (long long)embed_dim, (long long)num_heads);
    if ((embed_dim / num_heads) * num_heads != embed_dim)
        return ct__err(CT_ERR_ARG, "MultiheadAttention: embed_dim must be divisible by num_heads");
    if (o.kdim < 0 || o.vdim < 0 || !(o.dropout >= 0 && o.dropout <= 1))
        return ct__err(CT_ERR_ARG, "MultiheadAttention: bad kdim/vdim (%lld, %lld) or dropout %g", (long long)o.kdim,
                       (long long)o.vdim, o.dropout);
    if (!o.kdim) o.kdim = embed_dim;
    if (!o.vdim) o.vdim = embed_dim;
    mha_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "MultiheadAttention: out of memory");
    *c = (mha_ctx){embed_dim, num_heads, o};
    ct_module *m = ct_module_new(&MHA, c);
    if (!m) {
        free(c);
        return NULL;
    }
    int64_t E = embed_dim;
    bool same = o.kdim == E && o.vdim == E;
    /* Parameters in torch's registration order (absent ones do not show anywhere). */
    int st = same ? empty_param(m, "in_proj_weight", 2, (int64_t[]){3 * E, E})
                  : ct_module_register_parameter(m, "in_proj_weight", NULL);
    if (!st) st = same ? ct_module_register_parameter(m, "q_proj_weight", NULL) : empty_param(m, "q_proj_weight", 2, (int64_t[]){E, E});
    if (!st) st = same ? ct_module_register_parameter(m, "k_proj_weight", NULL) : empty_param(m, "k_proj_weight", 2, (int64_t[]){E, o.kdim});
    if (!st) st = same ? ct_module_register_parameter(m, "v_proj_weight", NULL) : empty_param(m, "v_proj_weight", 2, (int64_t[]){E, o.vdim});
    if (!st) st = o.bias ? empty_param(m, "in_proj_bias", 1, (int64_t[]){3 * E}) : ct_module_register_parameter(m, "in_proj_bias", NULL);
    if (!st) st = o.add_bias_kv ? empty_param(m, "bias_k", 3, (int64_t[]){1, 1, E}) : ct_module_register_parameter(m, "bias_k", NULL);
    if (!st) st = o.add_bias_kv ? empty_param(m, "bias_v", 3, (int64_t[]){1, 1, E}) : ct_module_register_parameter(m, "bias_v", NULL);
    /* out_proj draws first (its Linear init), then _reset_parameters. */
    if (!st) st = ct_module_add_module(m, "out_proj", ndq_linear_new(E, E, o.bias));
    if (!st) {
        if (same) st = xavier_uniform(ct__mod_param(m, P_IN_W));
        else {
            st = xavier_uniform(ct__mod_param(m, P_Q_W));
            if (!st) st = xavier_uniform(ct__mod_param(m, P_K_W));
            if (!st) st = xavier_uniform(ct__mod_param(m, P_V_W));
        }
    }
    if (!st && o.bias) {
        bool prev = ct_set_grad_enabled(false);
        ct_tensor *ob = ct__mod_param(ct_module_child(m, "out_proj"), 1);
        st = ct_zero_(ob);
        ct_set_grad_enabled(prev);
    }
    if (!st && o.add_bias_kv) {
        st = xavier_normal(ct__mod_param(m, P_BIAS_K));
        if (!st) st = xavier_normal(ct__mod_param(m, P_BIAS_V));
    }
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_tensor *ct_nn_multihead_attention_forward(ct_module *mha, const ct_tensor *query, const ct_tensor *key,
                                                    const ct_tensor *value, const ct_tensor *key_padding_mask,
                                                    const ct_tensor *attn_mask, bool average_attn_weights,
                                                    bool is_causal, ct_tensor **attn_weights) {
    if (attn_weights) *attn_weights = NULL;
    if (!mha || !ct_module_is(mha, &MHA))
        return ct__err(CT_ERR_ARG, "MultiheadAttention.forward: not a MultiheadAttention module");
    if (ct_scope_begin()) return NULL;
    ct_tensor *o = NULL, *w = NULL;
    int st = mha_run(mha, query, key, value, key_padding_mask, attn_mask, attn_weights != NULL, average_attn_weights,
                     is_causal, &o, &w);
    if (!st) {
        o = ct_keep(o);
        if (attn_weights) *attn_weights = ct_keep(w);
    }
    ct_scope_end();
    return st ? NULL : o;
}

/* ---- Transformer layers ---- */
CT_API ct_transformer_opts ct_transformer_default_opts(void) {
    return (ct_transformer_opts){.dim_feedforward = 2048, .dropout = 0.1, .activation = "relu",
                                 .layer_norm_eps = 1e-5, .bias = true, .num_encoder_layers = 6,
                                 .num_decoder_layers = 6};
}

typedef struct {
    int64_t d_model, nhead;
    ct_transformer_opts o;
    bool gelu;
    bool decoder;
    int is_causal; /* forward_n's is_causal (layers: 0; stacks: -1 = detect) */
} layer_ctx;

static ct_module *layer_norm(int64_t d, const ct_transformer_opts *o) {
    ct_module *ln = ct_nn_layer_norm_new(1, &d, o->layer_norm_eps, true);
    if (ln && !o->bias && ct_module_register_parameter(ln, "bias", NULL)) {
        ct_module_free(ln);
        return NULL;
    }
    return ln;
}

/* Dropout child `name` applied to x. */
static ct_tensor *child(ct_module *self, const char *name, const ct_tensor *x) {
    return ct_module_forward(ct_module_child(self, name), (ct_tensor *)x);
}

static ct_tensor *sa_block(ct_module *self, const ct_tensor *x, const ct_tensor *mask, const ct_tensor *kpm,
                           bool is_causal) {
    ct_tensor *o;
    if (mha_run(ct_module_child(self, "self_attn"), x, x, x, kpm, mask, false, true, is_causal, &o, NULL)) return NULL;
    return child(self, "dropout1", o);
}
static ct_tensor *ff_block(ct_module *self, const ct_tensor *x, const char *last_dropout) {
    const layer_ctx *c = ct_module_ctx(self);
    ct_tensor *h = child(self, "linear1", x);
    ct_module *drop = ct_module_child(self, "dropout");
    double p = ct__mod_dropout_p(drop);
    if (!c->gelu && p > 0 && p < 1 && ct_module_is_training(drop))
        h = ct__relu_dropout(h, p, NULL); /* PyTorch's values; saves 5 bytes less per element */
    else
        h = child(self, "dropout", c->gelu ? ct_gelu(h, false) : ct_relu(h));
    return child(self, last_dropout, child(self, "linear2", h));
}

static ct_tensor *enc_layer_impl(ct_module *self, const ct_tensor *src, const ct_tensor *mask, const ct_tensor *kpm,
                                 bool is_causal) {
    const layer_ctx *c = ct_module_ctx(self);
    CT_CHECK_ARG("TransformerEncoderLayer", src);
    if (kpm && !(kpm = canonical(kpm, "src_key_padding_mask", src->dtype))) return NULL;
    if (mask && !(mask = canonical(mask, "src_mask", src->dtype))) return NULL;
    ct_tensor *x;
    if (c->o.norm_first) {
        x = ct_add(src, sa_block(self, child(self, "norm1", src), mask, kpm, is_causal));
        x = ct_add(x, ff_block(self, child(self, "norm2", x), "dropout2"));
    } else {
        x = child(self, "norm1", ct_add(src, sa_block(self, src, mask, kpm, is_causal)));
        x = child(self, "norm2", ct_add(x, ff_block(self, x, "dropout2")));
    }
    return x;
}

static ct_tensor *mha_block(ct_module *self, const ct_tensor *x, const ct_tensor *mem, const ct_tensor *mask,
                            const ct_tensor *kpm, bool is_causal) {
    ct_tensor *o;
    if (mha_run(ct_module_child(self, "multihead_attn"), x, mem, mem, kpm, mask, false, true, is_causal, &o, NULL))
        return NULL;
    return child(self, "dropout2", o);
}

static ct_tensor *dec_layer_impl(ct_module *self, const ct_tensor *tgt, const ct_tensor *memory,
                                 const ct_tensor *tgt_mask, const ct_tensor *memory_mask, const ct_tensor *tgt_kpm,
                                 const ct_tensor *mem_kpm, bool tgt_is_causal, bool memory_is_causal) {
    const layer_ctx *c = ct_module_ctx(self);
    CT_CHECK_ARG("TransformerDecoderLayer", tgt);
    CT_CHECK_ARG("TransformerDecoderLayer", memory);
    ct_tensor *x;
    if (c->o.norm_first) {
        x = ct_add(tgt, sa_block(self, child(self, "norm1", tgt), tgt_mask, tgt_kpm, tgt_is_causal));
        x = ct_add(x, mha_block(self, child(self, "norm2", x), memory, memory_mask, mem_kpm, memory_is_causal));
        x = ct_add(x, ff_block(self, child(self, "norm3", x), "dropout3"));
    } else {
        x = child(self, "norm1", ct_add(tgt, sa_block(self, tgt, tgt_mask, tgt_kpm, tgt_is_causal)));
        x = child(self, "norm2", ct_add(x, mha_block(self, x, memory, memory_mask, mem_kpm, memory_is_causal)));
        x = child(self, "norm3", ct_add(x, ff_block(self, x, "dropout3")));
    }
    return x;
}

static const ct_tensor *opt_in(int n_in, ct_tensor *const *in, int i) { return i < n_in ? in[i] : NULL; }

static int enc_layer_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const layer_ctx *c = ct_module_ctx(self);
    if (n_in < 1 || n_in > 3)
        return ct__errs(CT_ERR_ARG, "TransformerEncoderLayer.forward takes (src, src_mask, src_key_padding_mask), got %d inputs", n_in);
    ct_tensor *y = enc_layer_impl(self, in[0], opt_in(n_in, in, 1), opt_in(n_in, in, 2), c->is_causal == 1);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}
static int dec_layer_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const layer_ctx *c = ct_module_ctx(self);
    if (n_in < 2 || n_in > 6)
        return ct__errs(CT_ERR_ARG, "TransformerDecoderLayer.forward takes (tgt, memory, tgt_mask, memory_mask, "
                        "tgt_key_padding_mask, memory_key_padding_mask), got %d inputs", n_in);
    ct_tensor *y = dec_layer_impl(self, in[0], in[1], opt_in(n_in, in, 2), opt_in(n_in, in, 3), opt_in(n_in, in, 4),
                                  opt_in(n_in, in, 5), c->is_causal == 1, false);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}

static const ct_module_type ENC_LAYER = {.name = "TransformerEncoderLayer", .forward_n = enc_layer_forward_n, .free_ctx = free};
static const ct_module_type DEC_LAYER = {.name = "TransformerDecoderLayer", .forward_n = dec_layer_forward_n, .free_ctx = free};

static ct_module *layer_new(bool decoder, int64_t d, int64_t nhead, const ct_transformer_opts *opts) {
    const char *name = decoder ? "TransformerDecoderLayer" : "TransformerEncoderLayer";
    ct_transformer_opts o = opts ? *opts : ct_transformer_default_opts();
    if (!o.activation) o.activation = "relu";
    bool gelu = strcmp(o.activation, "gelu") == 0;
    if (!gelu && strcmp(o.activation, "relu") != 0)
        return ct__err(CT_ERR_ARG, "%s: activation should be relu/gelu, not %s", name, o.activation);
    o.activation = gelu ? "gelu" : "relu"; /* static strings: the ctx outlives the caller's */
    if (o.dim_feedforward <= 0 || !(o.dropout >= 0 && o.dropout <= 1))
        return ct__err(CT_ERR_ARG, "%s: dim_feedforward must be positive and dropout in [0, 1], got %lld and %g", name,
                       (long long)o.dim_feedforward, o.dropout);
    layer_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", name);
    *c = (layer_ctx){d, nhead, o, gelu, decoder, 0};
    ct_module *m = ct_module_new(decoder ? &DEC_LAYER : &ENC_LAYER, c);
    if (!m) {
        free(c);
        return NULL;
    }
    ct_mha_opts mo = ct_mha_default_opts();
    mo.dropout = o.dropout, mo.bias = o.bias, mo.batch_first = o.batch_first;
    int st = ct_module_add_module(m, "self_attn", ct_nn_multihead_attention_new(d, nhead, &mo));
    if (!st && decoder) st = ct_module_add_module(m, "multihead_attn", ct_nn_multihead_attention_new(d, nhead, &mo));
    if (!st) st = ct_module_add_module(m, "linear1", ct_nn_linear_new(d, o.dim_feedforward, o.bias));
    if (!st) st = ct_module_add_module(m, "dropout", ct_nn_dropout_new(o.dropout));
    if (!st) st = ct_module_add_module(m, "linear2", ct_nn_linear_new(o.dim_feedforward, d, o.bias));
    if (!st) st = ct_module_add_module(m, "norm1", layer_norm(d, &o));
    if (!st) st = ct_module_add_module(m, "norm2", layer_norm(d, &o));
    if (!st && decoder) st = ct_module_add_module(m, "norm3", layer_norm(d, &o));
    if (!st) st = ct_module_add_module(m, "dropout1", ct_nn_dropout_new(o.dropout));
    if (!st) st = ct_module_add_module(m, "dropout2", ct_nn_dropout_new(o.dropout));
    if (!st && decoder) st = ct_module_add_module(m, "dropout3", ct_nn_dropout_new(o.dropout));
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

CT_API ct_module *ct_nn_transformer_encoder_layer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts) {
    return layer_new(false, d_model, nhead, opts);
}
CT_API ct_module *ct_nn_transformer_decoder_layer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts) {
    return layer_new(true, d_model, nhead, opts);
}

/* ---- TransformerEncoder / TransformerDecoder ---- */

/* A deep copy of a layer: built with the same options without consuming random numbers
 * (the generator state is restored), then given the layer's values. */
static ct_module *clone_layer(ct_module *layer) {
    const layer_ctx *c = ct_module_ctx(layer);
    int64_t n = ct_generator_get_state(NULL, NULL, 0);
    void *state = n > 0 ? malloc((size_t)n) : NULL;
    if (!state) return ct__err(CT_ERR_OOM, "clone: out of memory");
    ct_generator_get_state(NULL, state, (size_t)n);
    ct_module *m = layer_new(c->decoder, c->d_model, c->nhead, &c->o);
    ct_generator_set_state(NULL, state, (size_t)n);
    free(state);
    if (!m) return NULL;
    ((layer_ctx *)ct_module_ctx(m))->is_causal = c->is_causal;
    ct_dict *sd = ct_module_state_dict(layer);
    int st = sd ? ct_module_load_state_dict(m, sd, true, NULL) : ct_last_status();
    ct_dict_free(sd);
    if (!st) st = ct_module_train(m, ct_module_is_training(layer));
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

typedef struct {
    int64_t num_layers;
    bool decoder;
    int is_causal; /* forward_n's (tgt_)is_causal: -1 detect (torch's None) */
} stack_ctx;

/* torch's _detect_is_causal_mask. */
static int detect_causal(const ct_tensor *mask, int is_causal, int64_t sz) {
    if (is_causal != -1 || !mask) return is_causal == 1;
    if (mask->ndim != 2 || mask->sizes[0] != sz || mask->sizes[1] != sz) return 0;
    ct_tensor *ref = ct_nn_generate_square_subsequent_mask(sz, mask->dtype == CT_BOOL ? CT_FLOAT32 : mask->dtype);
    const ct_tensor *m = mask->dtype == CT_BOOL ? canonical(mask, "mask", CT_FLOAT32) : mask;
    ct_tensor *eq = ct_all(ct_eq(m, ref), 0, NULL, false);
    return eq ? ct_item(eq) != 0 : -2;
}

static int64_t seq_len(const ct_tensor *src, bool batch_first) {
    if (src->ndim == 2) return src->sizes[0];
    return src->sizes[batch_first ? 1 : 0];
}

static ct_tensor *stack_norm(ct_module *self, ct_tensor *x) {
    ct_module *norm = NULL;
    for (int64_t i = 0; i < ct_module_num_children(self); i++)
        if (!strcmp(ct_module_child_name(self, i), "norm")) norm = ct_module_child_at(self, i);
    return norm ? ct_module_forward(norm, x) : x;
}

static ct_tensor *encoder_impl(ct_module *self, const ct_tensor *src, const ct_tensor *mask, const ct_tensor *kpm,
                               int is_causal) {
    const stack_ctx *c = ct_module_ctx(self);
    CT_CHECK_ARG("TransformerEncoder", src);
    if (kpm && !(kpm = canonical(kpm, "src_key_padding_mask", src->dtype))) return NULL;
    if (mask && !(mask = canonical(mask, "mask", src->dtype))) return NULL;
    ct_module *layers = ct_module_child(self, "layers");
    ct_module *first = ct_module_child_at(layers, 0);
    const layer_ctx *lc = ct_module_ctx(first);
    int causal = detect_causal(mask, is_causal, seq_len(src, lc->o.batch_first));
    if (causal < 0) return NULL;
    ct_tensor *x = (ct_tensor *)src;
    /* each layer in a scope of its own: only what autograd saved outlives it (as in
     * PyTorch, where a layer's temporaries die when their last reference does) */
    for (int64_t i = 0; i < c->num_layers && x; i++) {
        if (ct_scope_begin()) return NULL;
        x = ct_keep(enc_layer_impl(ct_module_child_at(layers, i), x, mask, kpm, causal));
        ct_scope_end();
    }
    return x ? stack_norm(self, x) : NULL;
}

static ct_tensor *decoder_impl(ct_module *self, const ct_tensor *tgt, const ct_tensor *memory, const ct_tensor *tgt_mask,
                               const ct_tensor *memory_mask, const ct_tensor *tgt_kpm, const ct_tensor *mem_kpm,
                               int tgt_is_causal, bool memory_is_causal) {
    const stack_ctx *c = ct_module_ctx(self);
    CT_CHECK_ARG("TransformerDecoder", tgt);
    ct_module *layers = ct_module_child(self, "layers");
    const layer_ctx *lc = ct_module_ctx(ct_module_child_at(layers, 0));
    int causal = detect_causal(tgt_mask, tgt_is_causal, seq_len(tgt, lc->o.batch_first));
    if (causal < 0) return NULL;
    ct_tensor *x = (ct_tensor *)tgt;
    for (int64_t i = 0; i < c->num_layers && x; i++) { /* a scope per layer, as in encoder_impl */
        if (ct_scope_begin()) return NULL;
        x = ct_keep(dec_layer_impl(ct_module_child_at(layers, i), x, memory, tgt_mask, memory_mask, tgt_kpm, mem_kpm,
                                   causal, memory_is_causal));
        ct_scope_end();
    }
    return x ? stack_norm(self, x) : NULL;
}

static int encoder_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const stack_ctx *c = ct_module_ctx(self);
    if (n_in < 1 || n_in > 3)
        return ct__errs(CT_ERR_ARG, "TransformerEncoder.forward takes (src, mask, src_key_padding_mask), got %d inputs", n_in);
    ct_tensor *y = encoder_impl(self, in[0], opt_in(n_in, in, 1), opt_in(n_in, in, 2), c->is_causal);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}
static int decoder_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    const stack_ctx *c = ct_module_ctx(self);
    if (n_in < 2 || n_in > 6)
        return ct__errs(CT_ERR_ARG, "TransformerDecoder.forward takes (tgt, memory, tgt_mask, memory_mask, "
                        "tgt_key_padding_mask, memory_key_padding_mask), got %d inputs", n_in);
    ct_tensor *y = decoder_impl(self, in[0], in[1], opt_in(n_in, in, 2), opt_in(n_in, in, 3), opt_in(n_in, in, 4),
                                opt_in(n_in, in, 5), c->is_causal, false);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}

static const ct_module_type ENCODER = {.name = "TransformerEncoder", .forward_n = encoder_forward_n, .free_ctx = free};
static const ct_module_type DECODER = {.name = "TransformerDecoder", .forward_n = decoder_forward_n, .free_ctx = free};

static ct_module *stack_new(bool decoder, ct_module *layer, int64_t num_layers, ct_module *norm) {
    const char *name = decoder ? "TransformerDecoder" : "TransformerEncoder";
    ct_module *m = NULL;
    if (!layer) goto fail; /* the failed constructor's error stands */
    if (!ct_module_is(layer, decoder ? &DEC_LAYER : &ENC_LAYER)) {
        ct__errs(CT_ERR_ARG, "%s: expected a %s, got %s", name, decoder ? "TransformerDecoderLayer" : "TransformerEncoderLayer",
                 ct_module_type_name(layer));
        goto fail;
    }
    if (num_layers < 1) {
        ct__errs(CT_ERR_ARG, "%s: num_layers must be positive, got %lld", name, (long long)num_layers);
        goto fail;
    }
    stack_ctx *c = malloc(sizeof *c);
    if (!c) {
        ct__errs(CT_ERR_OOM, "%s: out of memory", name);
        goto fail;
    }
    *c = (stack_ctx){num_layers, decoder, -1};
    m = ct_module_new(decoder ? &DECODER : &ENCODER, c);
    if (!m) {
        free(c);
        goto fail;
    }
    ct_module *list = ct_nn_module_list_new();
    int st = list ? 0 : ct_last_status();
    for (int64_t i = 0; i < num_layers && !st; i++) st = ct_nn_module_list_append(list, clone_layer(layer));
    if (st) {
        ct_module_free(list);
        goto fail;
    }
    if (ct_module_add_module(m, "layers", list)) goto fail;
    if (norm && ct_module_add_module(m, "norm", norm)) {
        norm = NULL;
        goto fail;
    }
    ct_module_free(layer);
    return m;
fail:
    ct_module_free(m);
    ct_module_free(layer);
    ct_module_free(norm);
    return NULL;
}

CT_API ct_module *ct_nn_transformer_encoder_new(ct_module *encoder_layer, int64_t num_layers, ct_module *norm) {
    return stack_new(false, encoder_layer, num_layers, norm);
}
CT_API ct_module *ct_nn_transformer_decoder_new(ct_module *decoder_layer, int64_t num_layers, ct_module *norm) {
    return stack_new(true, decoder_layer, num_layers, norm);
}

/* ---- Transformer ---- */
typedef struct {
    int64_t d_model, nhead;
    bool batch_first;
} tr_ctx;

static ct_tensor *transformer_impl(ct_module *self, const ct_tensor *src, const ct_tensor *tgt, const ct_tensor *src_mask,
                                   const ct_tensor *tgt_mask, const ct_tensor *memory_mask, const ct_tensor *src_kpm,
                                   const ct_tensor *tgt_kpm, const ct_tensor *mem_kpm, int src_is_causal,
                                   int tgt_is_causal, bool memory_is_causal) {
    const tr_ctx *c = ct_module_ctx(self);
    CT_CHECK_ARG("Transformer", src);
    CT_CHECK_ARG("Transformer", tgt);
    bool batched = src->ndim == 3;
    if (batched && tgt->ndim >= 2 && src->sizes[c->batch_first ? 0 : 1] != tgt->sizes[c->batch_first ? 0 : 1])
        return ct__err(CT_ERR_SHAPE, "Transformer: the batch number of src and tgt must be equal");
    if (src->sizes[src->ndim - 1] != c->d_model || tgt->sizes[tgt->ndim - 1] != c->d_model)
        return ct__err(CT_ERR_SHAPE, "Transformer: the feature number of src and tgt must be equal to d_model");
    ct_tensor *memory = encoder_impl(ct_module_child(self, "encoder"), src, src_mask, src_kpm, src_is_causal);
    if (!memory) return NULL;
    return decoder_impl(ct_module_child(self, "decoder"), tgt, memory, tgt_mask, memory_mask, tgt_kpm, mem_kpm,
                        tgt_is_causal, memory_is_causal);
}

static int transformer_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    if (n_in < 2 || n_in > 8)
        return ct__errs(CT_ERR_ARG, "Transformer.forward takes (src, tgt, src_mask, tgt_mask, memory_mask, "
                        "src_key_padding_mask, tgt_key_padding_mask, memory_key_padding_mask), got %d inputs", n_in);
    ct_tensor *y = transformer_impl(self, in[0], in[1], opt_in(n_in, in, 2), opt_in(n_in, in, 3), opt_in(n_in, in, 4),
                                    opt_in(n_in, in, 5), opt_in(n_in, in, 6), opt_in(n_in, in, 7), -1, -1, false);
    if (!y) return ct_last_status();
    if (n_out > 0) out[0] = y;
    return n_out > 0;
}
static const ct_module_type TRANSFORMER = {.name = "Transformer", .forward_n = transformer_forward_n, .free_ctx = free};

CT_API ct_module *ct_nn_transformer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts) {
    ct_transformer_opts o = opts ? *opts : ct_transformer_default_opts();
    tr_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "Transformer: out of memory");
    *c = (tr_ctx){d_model, nhead, o.batch_first};
    ct_module *m = ct_module_new(&TRANSFORMER, c);
    if (!m) {
        free(c);
        return NULL;
    }
    int st = ct_module_add_module(m, "encoder", ct_nn_transformer_encoder_new(ct_nn_transformer_encoder_layer_new(d_model, nhead, &o),
                                                                              o.num_encoder_layers, layer_norm(d_model, &o)));
    if (!st) st = ct_module_add_module(m, "decoder", ct_nn_transformer_decoder_new(ct_nn_transformer_decoder_layer_new(d_model, nhead, &o),
                                                                                   o.num_decoder_layers, layer_norm(d_model, &o)));
    if (!st) {
        /* _reset_parameters: xavier_uniform_ on every p.dim() > 1, in parameters() order */
        ct_dict *ps = ct_module_named_parameters(m);
        st = ps ? 0 : ct_last_status();
        ct_scope_begin();
        for (int64_t i = 0; ps && !st && i < ct_dict_size(ps); i++) {
            ct_tensor *p = ct_dict_value(ps, i);
            if (!p) st = ct_last_status();
            else if (p->ndim > 1) st = xavier_uniform(p);
        }
        ct_scope_end();
        ct_dict_free(ps);
    }
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- forwards with keyword arguments ---- */
#define RUN_SCOPED(check, expr)                                        \
    do {                                                               \
        if (!(check)) return ct__err(CT_ERR_ARG, "%s", "forward: wrong module type"); \
        if (ct_scope_begin()) return NULL;                             \
        ct_tensor *y_ = (expr);                                        \
        if (y_) y_ = ct_keep(y_);                                      \
        ct_scope_end();                                                \
        return y_;                                                     \
    } while (0)

CT_API ct_tensor *ct_nn_transformer_encoder_layer_forward(ct_module *layer, const ct_tensor *src,
                                                          const ct_tensor *src_mask,
                                                          const ct_tensor *src_key_padding_mask, bool is_causal) {
    RUN_SCOPED(layer && ct_module_is(layer, &ENC_LAYER),
               enc_layer_impl(layer, src, src_mask, src_key_padding_mask, is_causal));
}
CT_API ct_tensor *ct_nn_transformer_decoder_layer_forward(ct_module *layer, const ct_tensor *tgt,
                                                          const ct_tensor *memory, const ct_tensor *tgt_mask,
                                                          const ct_tensor *memory_mask,
                                                          const ct_tensor *tgt_key_padding_mask,
                                                          const ct_tensor *memory_key_padding_mask,
                                                          bool tgt_is_causal, bool memory_is_causal) {
    RUN_SCOPED(layer && ct_module_is(layer, &DEC_LAYER),
               dec_layer_impl(layer, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                              tgt_is_causal, memory_is_causal));
}
CT_API ct_tensor *ct_nn_transformer_encoder_forward(ct_module *encoder, const ct_tensor *src, const ct_tensor *mask,
                                                    const ct_tensor *src_key_padding_mask, int is_causal) {
    RUN_SCOPED(encoder && ct_module_is(encoder, &ENCODER), encoder_impl(encoder, src, mask, src_key_padding_mask, is_causal));
}
CT_API ct_tensor *ct_nn_transformer_decoder_forward(ct_module *decoder, const ct_tensor *tgt, const ct_tensor *memory,
                                                    const ct_tensor *tgt_mask, const ct_tensor *memory_mask,
                                                    const ct_tensor *tgt_key_padding_mask,
                                                    const ct_tensor *memory_key_padding_mask, int tgt_is_causal,
                                                    bool memory_is_causal) {
    RUN_SCOPED(decoder && ct_module_is(decoder, &DECODER),
               decoder_impl(decoder, tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask,
                            tgt_is_causal, memory_is_causal));
}
CT_API ct_tensor *ct_nn_transformer_forward(ct_module *transformer, const ct_tensor *src, const ct_tensor *tgt,
                                            const ct_tensor *src_mask, const ct_tensor *tgt_mask,
                                            const ct_tensor *memory_mask, const ct_tensor *src_key_padding_mask,
                                            const ct_tensor *tgt_key_padding_mask,
                                            const ct_tensor *memory_key_padding_mask, int src_is_causal,
                                            int tgt_is_causal, bool memory_is_causal) {
    RUN_SCOPED(transformer && ct_module_is(transformer, &TRANSFORMER),
               transformer_impl(transformer, src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask,
                                tgt_key_padding_mask, memory_key_padding_mask, src_is_causal, tgt_is_causal,
                                memory_is_causal));
}
