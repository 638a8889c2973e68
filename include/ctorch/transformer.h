/* ctorch/transformer.h — attention and Transformers (torch.nn.functional.
 * scaled_dot_product_attention, multi_head_attention_forward, nn.MultiheadAttention,
 * nn.TransformerEncoderLayer / DecoderLayer / Encoder / Decoder / Transformer).
 *
 * Everything is composed of differentiable ops (batched matmul, softmax, where, ...):
 * gradients and second derivatives come free. Tensors are borrowed, results are new
 * references (scope rules of ctorch/core.h); NULL with an error naming the op and the
 * shapes on bad input. Modules follow ctorch/module.h: constructors return a module the
 * caller owns; parameter names, initialisation (same seed, same numbers) and reprs are
 * PyTorch's, so state dicts move between the two libraries unchanged.
 *
 * MASK CONVENTIONS (as PyTorch — note they differ):
 *   scaled_dot_product_attention: a bool attn_mask is True where attention is ALLOWED.
 *   MultiheadAttention / Transformer*: a bool mask (attn_mask, key_padding_mask) is
 *   True where attention is NOT allowed. In both, a float mask is ADDED to the scores.
 *
 * A DECODER-ONLY LANGUAGE MODEL (see examples/char_transformer.c)
 *
 *     ct_transformer_opts o = ct_transformer_default_opts();
 *     o.dim_feedforward = 4 * d; o.batch_first = true; o.norm_first = true;
 *     ct_module *enc = ct_nn_transformer_encoder_new(
 *         ct_nn_transformer_encoder_layer_new(d, heads, &o), n_layers, NULL);
 *     ct_tensor *mask = ct_nn_generate_square_subsequent_mask(T, CT_FLOAT32);
 *     ct_tensor *h = ct_nn_transformer_encoder_forward(enc, x, mask, NULL, 1);
 */
#ifndef CTORCH_TRANSFORMER_H
#define CTORCH_TRANSFORMER_H

#include "ctorch/core.h"
#include "ctorch/module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- functional ---- */

/* torch.nn.functional.scaled_dot_product_attention:
 *   softmax(query @ key^T * scale + bias) @ value
 * query [..., L, E], key [..., S, E], value [..., S, Ev] (batch dims broadcast) -> [..., L, Ev].
 * attn_mask (may be NULL) broadcasts to [..., L, S]: bool (True = take part in attention)
 * or floating (added to the scores). is_causal: the mask is the lower triangle of ones
 * [L, S] (an error together with attn_mask, as PyTorch). scale <= 0 or NaN: 1/sqrt(E).
 * enable_gqa: key/value may have fewer heads (dim -3) than query, a divisor of them
 * (grouped-query attention: each key/value head serves a group of query heads).
 * dropout_p > 0 drops attention weights (always, like PyTorch: pass 0 in eval).
 * A row whose every key is masked gives zeros (PyTorch's math kernel), not NaN.
 * New reference, or NULL with an error. */
CT_API ct_tensor *ct_nn_scaled_dot_product_attention(const ct_tensor *query, const ct_tensor *key,
                                                     const ct_tensor *value, const ct_tensor *attn_mask,
                                                     double dropout_p, bool is_causal, double scale,
                                                     bool enable_gqa);

/* torch.nn.Transformer.generate_square_subsequent_mask(sz): [sz, sz] float mask with
 * -inf above the diagonal and 0 elsewhere (dtype floating; CT_NUM_DTYPES: the default
 * dtype). New reference, or NULL with an error. */
CT_API ct_tensor *ct_nn_generate_square_subsequent_mask(int64_t sz, ct_dtype dtype);

/* The weights of torch.nn.functional.multi_head_attention_forward. Packed projection
 * (in_proj_weight [3E, E]) or, when in_proj_weight is NULL, separate q/k/v projection
 * weights ([E, E], [E, kdim], [E, vdim]); biases may be NULL. */
typedef struct ct_mha_params {
    const ct_tensor *in_proj_weight, *in_proj_bias;   /* [3E, E], [3E] */
    const ct_tensor *q_proj_weight, *k_proj_weight, *v_proj_weight;
    const ct_tensor *bias_k, *bias_v;                 /* [1, 1, E] or NULL */
    const ct_tensor *out_proj_weight, *out_proj_bias; /* [E, E], [E] */
    bool add_zero_attn;
    double dropout_p;  /* applied only when training */
    bool training;
    bool average_attn_weights; /* weights averaged over heads (torch's default True) */
    bool is_causal;            /* hint that attn_mask is causal (torch: needs attn_mask) */
} ct_mha_params;

/* torch.nn.functional.multi_head_attention_forward with sequence-first inputs:
 * query [L, N, E] (or unbatched [L, E]), key [S, N, kdim], value [S, N, vdim].
 * key_padding_mask [N, S] (or [S]) and attn_mask [L, S] or [N*num_heads, L, S]: bool
 * (True = masked out) or float (added), either may be NULL. Returns attn_output
 * [L, N, E] (new reference) or NULL. attn_weights: NULL for torch's need_weights=False;
 * otherwise receives a new reference to the weights [N, L, S] (averaged) or
 * [N, num_heads, L, S]. */
CT_API ct_tensor *ct_nn_multi_head_attention_forward(const ct_tensor *query, const ct_tensor *key,
                                                     const ct_tensor *value, int64_t embed_dim_to_check,
                                                     int64_t num_heads, const ct_mha_params *params,
                                                     const ct_tensor *key_padding_mask,
                                                     const ct_tensor *attn_mask, ct_tensor **attn_weights);

/* ---- MultiheadAttention ---- */

/* Options of nn.MultiheadAttention; ct_mha_default_opts() gives PyTorch's defaults
 * (a NULL opts pointer means the same). The last three are torch's forward() options
 * used by ct_module_forward_n. */
typedef struct ct_mha_opts {
    double dropout;          /* 0.0 */
    bool bias;               /* true: in_proj_bias and out_proj.bias */
    bool add_bias_kv;        /* false: bias_k, bias_v [1, 1, E] */
    bool add_zero_attn;      /* false */
    int64_t kdim, vdim;      /* 0: embed_dim */
    bool batch_first;        /* false: inputs [L, N, E] */
    bool need_weights;       /* true: second output = attention weights */
    bool average_attn_weights; /* true */
    bool is_causal;          /* false */
} ct_mha_opts;
CT_API ct_mha_opts ct_mha_default_opts(void);

/* nn.MultiheadAttention(embed_dim, num_heads, ...). Parameters (torch's names and
 * initialisation): in_proj_weight [3E, E] (xavier_uniform_) or q_proj_weight /
 * k_proj_weight / v_proj_weight when kdim/vdim differ from E; in_proj_bias [3E] (zeros);
 * out_proj (a Linear, printed as NonDynamicallyQuantizableLinear; bias zeroed);
 * bias_k / bias_v (xavier_normal_). ct_module_forward_n inputs: (query, key, value,
 * key_padding_mask, attn_mask), the masks optional (NULL or absent; a missing key is
 * the query and a missing value the key: self-attention); outputs
 * (attn_output, attn_weights) — the second is NULL when need_weights is off.
 * Caller owns the module. NULL on error. */
CT_API ct_module *ct_nn_multihead_attention_new(int64_t embed_dim, int64_t num_heads, const ct_mha_opts *opts);

/* The module's forward with torch's per-call options. attn_weights may be NULL
 * (need_weights=False); else it receives a new reference. Returns attn_output. */
CT_API ct_tensor *ct_nn_multihead_attention_forward(ct_module *mha, const ct_tensor *query, const ct_tensor *key,
                                                    const ct_tensor *value, const ct_tensor *key_padding_mask,
                                                    const ct_tensor *attn_mask, bool average_attn_weights,
                                                    bool is_causal, ct_tensor **attn_weights);

/* ---- Transformer layers ---- */

/* Options of nn.TransformerEncoderLayer / DecoderLayer / Transformer;
 * ct_transformer_default_opts() gives PyTorch's defaults (NULL opts: the same). */
typedef struct ct_transformer_opts {
    int64_t dim_feedforward;   /* 2048 */
    double dropout;            /* 0.1 */
    const char *activation;    /* "relu" (default) or "gelu" */
    double layer_norm_eps;     /* 1e-5 */
    bool batch_first;          /* false: [S, N, E] */
    bool norm_first;           /* false: post-norm */
    bool bias;                 /* true: Linear and LayerNorm biases */
    int64_t num_encoder_layers, num_decoder_layers; /* Transformer only: 6, 6 */
} ct_transformer_opts;
CT_API ct_transformer_opts ct_transformer_default_opts(void);

/* nn.TransformerEncoderLayer(d_model, nhead, ...): children self_attn, linear1, dropout,
 * linear2, norm1, norm2, dropout1, dropout2. forward_n inputs (src, src_mask,
 * src_key_padding_mask), one output. Caller owns. */
CT_API ct_module *ct_nn_transformer_encoder_layer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts);
/* nn.TransformerDecoderLayer: children self_attn, multihead_attn, linear1, dropout,
 * linear2, norm1, norm2, norm3, dropout1, dropout2, dropout3. forward_n inputs (tgt,
 * memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask). */
CT_API ct_module *ct_nn_transformer_decoder_layer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts);

/* nn.TransformerEncoder(encoder_layer, num_layers, norm): "layers" is a ModuleList of
 * num_layers deep copies of encoder_layer (same initial values in each, as torch's
 * _get_clones; no random numbers drawn), then the optional final norm (NULL: none).
 * Takes over the references to encoder_layer and norm (also on failure). forward_n
 * inputs (src, mask, src_key_padding_mask); is_causal is detected from the mask as
 * torch does with is_causal=None. Caller owns. */
CT_API ct_module *ct_nn_transformer_encoder_new(ct_module *encoder_layer, int64_t num_layers, ct_module *norm);
/* nn.TransformerDecoder(decoder_layer, num_layers, norm), the same way. forward_n inputs
 * (tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask). */
CT_API ct_module *ct_nn_transformer_decoder_new(ct_module *decoder_layer, int64_t num_layers, ct_module *norm);
/* nn.Transformer(d_model, nhead, ...): encoder (num_encoder_layers layers + LayerNorm)
 * and decoder (num_decoder_layers + LayerNorm); then every parameter with more than one
 * dim is re-drawn with xavier_uniform_, in parameters() order, as torch does. forward_n
 * inputs (src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask,
 * tgt_key_padding_mask, memory_key_padding_mask). Caller owns. */
CT_API ct_module *ct_nn_transformer_new(int64_t d_model, int64_t nhead, const ct_transformer_opts *opts);

/* Forwards with torch's keyword arguments. Masks may be NULL. A tri-state is_causal
 * is 1 (True), 0 (False) or -1 (torch's None: detect a causal float mask). Each returns
 * a new reference or NULL with an error. */
CT_API ct_tensor *ct_nn_transformer_encoder_layer_forward(ct_module *layer, const ct_tensor *src,
                                                          const ct_tensor *src_mask,
                                                          const ct_tensor *src_key_padding_mask, bool is_causal);
CT_API ct_tensor *ct_nn_transformer_decoder_layer_forward(ct_module *layer, const ct_tensor *tgt,
                                                          const ct_tensor *memory, const ct_tensor *tgt_mask,
                                                          const ct_tensor *memory_mask,
                                                          const ct_tensor *tgt_key_padding_mask,
                                                          const ct_tensor *memory_key_padding_mask,
                                                          bool tgt_is_causal, bool memory_is_causal);
CT_API ct_tensor *ct_nn_transformer_encoder_forward(ct_module *encoder, const ct_tensor *src, const ct_tensor *mask,
                                                    const ct_tensor *src_key_padding_mask, int is_causal);
CT_API ct_tensor *ct_nn_transformer_decoder_forward(ct_module *decoder, const ct_tensor *tgt, const ct_tensor *memory,
                                                    const ct_tensor *tgt_mask, const ct_tensor *memory_mask,
                                                    const ct_tensor *tgt_key_padding_mask,
                                                    const ct_tensor *memory_key_padding_mask, int tgt_is_causal,
                                                    bool memory_is_causal);
CT_API ct_tensor *ct_nn_transformer_forward(ct_module *transformer, const ct_tensor *src, const ct_tensor *tgt,
                                            const ct_tensor *src_mask, const ct_tensor *tgt_mask,
                                            const ct_tensor *memory_mask, const ct_tensor *src_key_padding_mask,
                                            const ct_tensor *tgt_key_padding_mask,
                                            const ct_tensor *memory_key_padding_mask, int src_is_causal,
                                            int tgt_is_causal, bool memory_is_causal);

#ifdef __cplusplus
}
#endif

#endif
