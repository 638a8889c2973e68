/* Attention (torch.nn.functional.scaled_dot_product_attention and
 * multi_head_attention_forward), composed from differentiable ops with PyTorch's
 * formulas: gradients and double backward come from autograd.
 *
 * The common path of scaled_dot_product_attention is three passes over the scores:
 * one batched GEMM that also applies the scale and adds the mask (baddbmm), one
 * softmax, one batched GEMM with the values. */
#include <math.h>
#include <string.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "ctorch.h"

#include "ops/compose.h"
#define BEGIN CT_COMPOSE_BEGIN
#define END CT_COMPOSE_END

/* Causal attention with at least CAUSAL_BLOCK_MIN query rows runs in blocks of
 * CAUSAL_BLOCK rows (at most CAUSAL_MAX_BLOCKS blocks). */
#define CAUSAL_BLOCK_MIN 256
#define CAUSAL_BLOCK 128
#define CAUSAL_MAX_BLOCKS 32

/* The fused kernel (CT_OP_SDPA_FLASH) takes float32/float64 attention without a mask or
 * dropout from this many query x key pairs on: measured forward + backward on 2 threads,
 * [64 heads, L, 64], against the batched passes below: causal, L = 96 1.07x slower, 128
 * 0.95, 256 0.78, 1024 0.75 (peak memory at 1024: 84 MB against 344). Without the mask
 * the batched passes waste nothing and the backward's recomputed scores and small-block
 * GEMMs cost more than the scores' memory traffic saves (L = 128 1.22x, 768 1.21x), until
 * the scores outgrow the caches (1024: 0.91-0.98); from there on the fused kernel also
 * keeps memory linear in L (the batched passes hold N x L x S scores twice). */
#define FUSED_MIN_PAIRS_CAUSAL (128 * 128)
#define FUSED_MIN_PAIRS (1024 * 1024)

/* ---- fused attention: one node, the scores never whole ----
 * Forward: the kernel's o and lse (the rows' log-sum-exp). Backward: rowsum(do * o) -
 * dlse, then the kernel (probabilities rebuilt from lse block by block). Outputs: 0 o,
 * 1 lse (an output so that under create_graph the formulas below, which read it, reach
 * this node again); missing gradients stay NULL (keep_missing). Under create_graph the
 * same formulas in differentiable ops, holding the [N, L, S] probabilities as the
 * composed path does. */
static int flash_backward_ops(ct_node *n, ct_tensor **gi, const ct_tensor *q, const ct_tensor *k, const ct_tensor *v,
                              const ct_tensor *lse, const ct_tensor *dO, const ct_tensor *dd) {
    double scale = n->d[0];
    int64_t L = q->sizes[1], S = k->sizes[1];
    ct_tensor *s = ct_mul_scalar(ct_bmm(q, ct_transpose(k, 1, 2)), scale);
    if (n->i[0]) s = ct_add(s, ct_triu(ct_full(2, (int64_t[]){L, S}, -INFINITY, q->dtype), 1));
    ct_tensor *p = ct_exp(ct_sub(s, ct_unsqueeze(lse, -1)));
    ct_tensor *ds = ct_mul(p, ct_sub(ct_bmm(dO, ct_transpose(v, 1, 2)), ct_unsqueeze(dd, -1)));
    if (!ds) return ct_last_status();
    if (ct__node_needs(n, 0) && !(gi[0] = ct_mul_scalar(ct_bmm(ds, k), scale))) return ct_last_status();
    if (ct__node_needs(n, 1) && !(gi[1] = ct_mul_scalar(ct_bmm(ct_transpose(ds, 1, 2), q), scale)))
        return ct_last_status();
    if (ct__node_needs(n, 2) && !(gi[2] = ct_bmm(ct_transpose(p, 1, 2), dO))) return ct_last_status();
    return 0;
}

static int flash_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *q = ct__unpack(n, 0), *k = q ? ct__unpack(n, 1) : NULL, *v = k ? ct__unpack(n, 2) : NULL;
    ct_tensor *o = v ? ct__unpack(n, 3) : NULL, *lse = o ? ct__unpack(n, 4) : NULL;
    if (!lse) return ct_last_status();
    /* dd = rowsum(do * o) - dlse: how much each row's probabilities move together (in
     * ops: differentiable when a graph is being built, plain values otherwise) */
    ct_tensor *dO = go[0] ? go[0] : ct_zeros_like(o);
    ct_tensor *dd = ct_sum_dim(ct_mul(dO, o), 1, (int64_t[]){-1}, false, CT_NUM_DTYPES);
    if (dd && go[1]) dd = ct_sub(dd, go[1]);
    if (!dd) return ct_last_status();
    if (ct__needs_grad(7, (const ct_tensor *[]){q, k, v, o, lse, go[0], go[1]}))
        return flash_backward_ops(n, gi, q, k, v, lse, dO, dd);
    ct_tensor *in[6] = {ct__contiguous_raw(dO), ct__contiguous_raw(q), ct__contiguous_raw(k), ct__contiguous_raw(v),
                        ct__contiguous_raw(lse), ct__contiguous_raw(dd)};
    ct_tensor *out[3] = {ct__empty_raw(3, q->sizes, q->dtype), ct__empty_raw(3, k->sizes, k->dtype),
                         ct__empty_raw(3, v->sizes, v->dtype)};
    int rc = 0;
    for (int i = 0; i < 6 && !rc; i++) rc = in[i] ? 0 : ct_last_status();
    for (int i = 0; i < 3 && !rc; i++) rc = out[i] ? 0 : ct_last_status();
    if (!rc) {
        ct_kernel_args a = {.op = CT_OP_SDPA_FLASH_BWD, .n_out = 3, .n_in = 6, .out = {out[0], out[1], out[2]},
                            .in = {in[0], in[1], in[2], in[3], in[4], in[5]}, .d = {n->d[0]}, .i = {n->i[0]}};
        rc = ct__dispatch(&a);
    }
    for (int i = 0; i < 6; i++) ct_release(in[i]);
    for (int i = 0; i < 3; i++) {
        if (!rc && ct__node_needs(n, i)) gi[i] = ct__ret(out[i]);
        else ct_release(out[i]);
    }
    return rc;
}

/* q [N, L, E], k [N, S, E], v [N, S, Ev] (L, S > 0) -> o [N, L, Ev] (scope-registered) */
static ct_tensor *sdpa_fused(const ct_tensor *q, const ct_tensor *k, const ct_tensor *v, bool causal, double scale) {
    int64_t N = q->sizes[0], L = q->sizes[1], Ev = v->sizes[2];
    ct_tensor *in[3] = {ct__contiguous_raw(q), ct__contiguous_raw(k), ct__contiguous_raw(v)};
    ct_tensor *o = ct__empty_raw(3, (int64_t[]){N, L, Ev}, q->dtype), *lse = ct__empty_raw(2, (int64_t[]){N, L}, q->dtype);
    int rc = in[0] && in[1] && in[2] && o && lse ? 0 : ct_last_status();
    if (!rc) {
        ct_kernel_args a = {.op = CT_OP_SDPA_FLASH, .n_out = 2, .n_in = 3, .out = {o, lse}, .in = {in[0], in[1], in[2]},
                            .d = {scale}, .i = {causal}};
        rc = ct__dispatch(&a);
    }
    for (int i = 0; i < 3; i++) ct_release(in[i]);
    if (!rc && ct__needs_grad(3, (const ct_tensor *[]){q, k, v})) {
        ct_node *n = ct__node_new("ScaledDotProductFlashAttentionForCpuBackward0", flash_backward, 3);
        ct_tensor *outs[2] = {o, lse};
        rc = n ? ct__node_set_outputs(n, 2) : ct_last_status();
        for (int i = 0; i < 3 && !rc; i++) rc = ct__node_set_next(n, i, (const ct_tensor *[]){q, k, v}[i]);
        if (!rc && (ct__save(n, q) < 0 || ct__save(n, k) < 0 || ct__save(n, v) < 0 || ct__save_output(n, o, 0) < 0 ||
                    ct__save_output(n, lse, 1) < 0))
            rc = ct_last_status();
        if (rc) {
            if (n) ct__node_release(n);
        } else {
            n->d[0] = scale;
            n->i[0] = causal;
            n->keep_missing = true;
            ct__set_history_multi(outs, 2, n);
        }
    }
    ct_release(lse);
    if (rc) {
        ct_release(o);
        return NULL;
    }
    return ct__ret(o);
}

/* A 0-dim tensor of dtype dt (scope-owned). */
static ct_tensor *scalar(double v, ct_dtype dt) { return ct_scalar_tensor(v, dt); }

/* Additive float bias for a bool mask: 0 where mask is True, -inf where False. */
static ct_tensor *bool_to_bias(const ct_tensor *mask, ct_dtype dt, bool true_is_masked) {
    ct_tensor *zero = scalar(0.0, dt), *ninf = scalar(-INFINITY, dt);
    return true_is_masked ? ct_where(mask, ninf, zero) : ct_where(mask, zero, ninf);
}

CT_API ct_tensor *ct_nn_generate_square_subsequent_mask(int64_t sz, ct_dtype dtype) {
    if (dtype == CT_NUM_DTYPES) dtype = ct_get_default_dtype();
    if (sz < 0) return ct__err(CT_ERR_ARG, "generate_square_subsequent_mask: sz must be non-negative, got %lld", (long long)sz);
    if (!ct_dtype_is_floating(dtype))
        return ct__err(CT_ERR_ARG, "generate_square_subsequent_mask: dtype must be floating, got %s", ct_dtype_name(dtype));
    BEGIN
    r_ = ct_triu(ct_full(2, (int64_t[]){sz, sz}, -INFINITY, dtype), 1);
    END
}

/* Batch sizes (all dims but the last two) of t. */
static int batch_of(const ct_tensor *t, int64_t *b) {
    int nb = t->ndim - 2;
    for (int i = 0; i < nb; i++) b[i] = t->sizes[i];
    return nb;
}

CT_API ct_tensor *ct_nn_scaled_dot_product_attention(const ct_tensor *query, const ct_tensor *key,
                                                     const ct_tensor *value, const ct_tensor *attn_mask,
                                                     double dropout_p, bool is_causal, double scale,
                                                     bool enable_gqa) {
    static const char *OP = "scaled_dot_product_attention";
    CT_CHECK_ARG(OP, query);
    CT_CHECK_ARG(OP, key);
    CT_CHECK_ARG(OP, value);
    if (query->ndim < 2 || key->ndim < 2 || value->ndim < 2)
        return ct__err(CT_ERR_SHAPE,
                       "%s: Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: %d "
                       "key.dim: %d and value.dim: %d instead.", OP, query->ndim, key->ndim, value->ndim);
    ct_dtype dt = query->dtype;
    if (query->dtype != key->dtype || query->dtype != value->dtype)
        return ct__err(CT_ERR_DTYPE,
                       "%s: Expected query, key, and value to have the same dtype, but got query.dtype: %s key.dtype: "
                       "%s and value.dtype: %s instead.", OP, ct_dtype_name(query->dtype), ct_dtype_name(key->dtype),
                       ct_dtype_name(value->dtype));
    if (!ct_dtype_is_floating(dt))
        return ct__err(CT_ERR_DTYPE, "%s: expected a floating query, got %s", OP, ct_dtype_name(dt));
    if (attn_mask && attn_mask->dtype != CT_BOOL && attn_mask->dtype != CT_FLOAT32 && attn_mask->dtype != dt)
        return ct__err(CT_ERR_DTYPE,
                       "%s: Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                       "attn_mask.dtype: %s and  query.dtype: %s instead.", OP, ct_dtype_name(attn_mask->dtype),
                       ct_dtype_name(dt));
    if (attn_mask && is_causal)
        return ct__err(CT_ERR_ARG, "_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True");
    if (!(dropout_p >= 0 && dropout_p <= 1))
        return ct__err(CT_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g", OP, dropout_p);
    int64_t L = query->sizes[query->ndim - 2], E = query->sizes[query->ndim - 1];
    int64_t S = key->sizes[key->ndim - 2];
    if (!(scale > 0)) scale = 1.0 / sqrt((double)E);

    BEGIN
    const ct_tensor *k = key, *v = value;
    if (enable_gqa && query->ndim >= 3 && key->ndim >= 3 && value->ndim >= 3) {
        int64_t hq = query->sizes[query->ndim - 3], hk = key->sizes[key->ndim - 3], hv = value->sizes[value->ndim - 3];
        if (hk == 0 || hv == 0 || hq % hk || hq % hv) {
            ct__errs(CT_ERR_SHAPE, "%s: Number of heads in key and value must divide the number of heads in query", OP);
            goto done;
        }
        if (hq != hk) k = ct_repeat_interleave_int(key, hq / hk, -3);
        if (hq != hv) v = ct_repeat_interleave_int(value, hq / hv, -3);
    }

    if (!k || !v) goto done;
    /* Fused: no mask, no dropout, float32/float64, q, k, v with the same batch dims */
    if (!attn_mask && dropout_p == 0 && (dt == CT_FLOAT32 || dt == CT_FLOAT64) &&
        L * S >= (is_causal ? FUSED_MIN_PAIRS_CAUSAL : FUSED_MIN_PAIRS) &&
        k->ndim == query->ndim && v->ndim == query->ndim &&
        k->sizes[k->ndim - 1] == E && v->sizes[v->ndim - 2] == S && E > 0 && v->sizes[v->ndim - 1] > 0) {
        int64_t qb[CT_MAX_DIMS], kb[CT_MAX_DIMS], vb[CT_MAX_DIMS];
        int nq = batch_of(query, qb), nk = batch_of(k, kb), nv = batch_of(v, vb);
        bool same = nq == nk && nq == nv;
        for (int i = 0; same && i < nq; i++) same = qb[i] == kb[i] && qb[i] == vb[i];
        int64_t B = ct__prod(nq, qb), Ev = v->sizes[v->ndim - 1];
        if (same && B > 0) {
            ct_tensor *q3 = ct_reshape(query, 3, (int64_t[]){B, L, E}), *k3 = ct_reshape(k, 3, (int64_t[]){B, S, E});
            ct_tensor *v3 = ct_reshape(v, 3, (int64_t[]){B, S, Ev});
            ct_tensor *o = q3 && k3 && v3 ? sdpa_fused(q3, k3, v3, is_causal, scale) : NULL;
            int64_t osz[CT_MAX_DIMS];
            memcpy(osz, qb, sizeof(int64_t) * (size_t)nq);
            osz[nq] = L, osz[nq + 1] = Ev;
            r_ = o ? ct_reshape(o, nq + 2, osz) : NULL;
            goto done;
        }
    }

    /* The additive bias (NULL: none), as torch's reference builds attn_bias. */
    ct_tensor *bias = NULL;
    bool may_mask_rows = false;
    if (is_causal) {
        bias = ct_triu(ct_full(2, (int64_t[]){L, S}, -INFINITY, dt), 1);
    } else if (attn_mask) {
        bias = attn_mask->dtype == CT_BOOL ? bool_to_bias(attn_mask, dt, false)
                                           : (attn_mask->dtype == dt ? (ct_tensor *)attn_mask : ct_to_dtype(attn_mask, dt));
        may_mask_rows = true;
        if (!bias) goto done;
        if (bias->ndim < 2) bias = ct_reshape(bias, 2, (int64_t[]){1, bias->ndim ? bias->sizes[0] : 1});
    }
    if (!k || !v || (is_causal && !bias)) goto done;

    /* Fast path: q, k, v share their batch dims and the bias has no more dims than q:
     * fold the batch into one dim and use two batched GEMMs. */
    int64_t qb[CT_MAX_DIMS], kb[CT_MAX_DIMS], vb[CT_MAX_DIMS];
    int nq = batch_of(query, qb), nk = batch_of(k, kb), nv = batch_of(v, vb);
    bool fast = nq == nk && nq == nv && (!bias || bias->ndim <= query->ndim);
    for (int i = 0; fast && i < nq; i++) fast = qb[i] == kb[i] && qb[i] == vb[i];
    ct_tensor *scores, *bias_used = bias;
    if (fast) {
        int64_t B = ct__prod(nq, qb), Ev = v->sizes[v->ndim - 1];
        if (k->sizes[k->ndim - 1] != E) {
            ct__errs(CT_ERR_SHAPE, "%s: Expected size for first two dimensions of batch2 tensor to be: [%lld, %lld] but got: [%lld, %lld].",
                     OP, (long long)B, (long long)E, (long long)B, (long long)k->sizes[k->ndim - 1]);
            goto done;
        }
        ct_tensor *q3 = ct_reshape(query, 3, (int64_t[]){B, L, E});
        ct_tensor *k3 = ct_reshape(k, 3, (int64_t[]){B, S, E});
        ct_tensor *v3 = ct_reshape(v, 3, (int64_t[]){B, v->sizes[v->ndim - 2], Ev});
        if (!q3 || !k3 || !v3) goto done;
        if (is_causal && L >= CAUSAL_BLOCK_MIN && v3->sizes[1] == S) {
            /* Long causal attention in blocks of query rows: rows [r0, r1) see keys
             * [0, r1) only, so the blocks skip the masked upper triangle (about half the
             * GEMM and softmax work) and never hold the whole [B, L, S] scores. */
            int64_t ch = L / CAUSAL_MAX_BLOCKS + 1 > CAUSAL_BLOCK ? L / CAUSAL_MAX_BLOCKS + 1 : CAUSAL_BLOCK;
            ct_tensor *outs[CAUSAL_MAX_BLOCKS + 1];
            int nblk = 0;
            ct_tensor *kT = ct_transpose(k3, 1, 2);
            for (int64_t r0 = 0; r0 < L; r0 += ch, nblk++) {
                int64_t rows = L - r0 < ch ? L - r0 : ch, keys = r0 + rows < S ? r0 + rows : S;
                ct_tensor *b = ct_narrow(ct_narrow(bias, 0, r0, rows), 1, 0, keys);
                ct_tensor *s = ct_baddbmm(b, ct_narrow(q3, 1, r0, rows), ct_narrow(kT, 2, 0, keys), 1.0, scale);
                ct_tensor *a = ct_softmax(s, -1, CT_NUM_DTYPES);
                if (dropout_p > 0) a = ct_dropout(a, dropout_p, true, NULL);
                outs[nblk] = ct_bmm(a, ct_narrow(v3, 1, 0, keys));
                if (!outs[nblk]) goto done;
            }
            ct_tensor *o = ct_cat(nblk, (const ct_tensor *const *)outs, 1);
            int64_t osz[CT_MAX_DIMS];
            memcpy(osz, qb, sizeof(int64_t) * (size_t)nq);
            osz[nq] = L, osz[nq + 1] = Ev;
            r_ = ct_reshape(o, nq + 2, osz);
            goto done;
        }
        if (bias) {
            int nbb = bias->ndim - 2;
            bool bcast = ct__prod(nbb, bias->sizes) == 1;
            int64_t bl = bias->sizes[bias->ndim - 2], bs = bias->sizes[bias->ndim - 1];
            if (bcast) {
                bias_used = ct_reshape(bias, 2, (int64_t[]){bl, bs});
            } else {
                int64_t full[CT_MAX_DIMS];
                memcpy(full, qb, sizeof(int64_t) * (size_t)nq);
                full[nq] = L, full[nq + 1] = S;
                bias_used = ct_reshape(ct_expand(bias, nq + 2, full), 3, (int64_t[]){B, L, S});
            }
            if (bias_used && bias_used->ndim == 2 && !((bl == L || bl == 1) && (bs == S || bs == 1))) {
                ct__errs(CT_ERR_SHAPE, "%s: attn_mask of shape %s cannot be broadcast to the scores [%lld, %lld]", OP,
                         CT_SHAPESTR(bias), (long long)L, (long long)S);
                goto done;
            }
            scores = ct_baddbmm(bias_used, q3, ct_transpose(k3, 1, 2), 1.0, scale);
        } else {
            scores = ct_baddbmm(scalar(0.0, dt), q3, ct_transpose(k3, 1, 2), 0.0, scale);
        }
        if (!scores) goto done;
        ct_tensor *attn = NULL;
        if (may_mask_rows) {
            /* Rows where every key is masked give zeros (torch's _safe_softmax). Decided
             * from the bias alone, so unmasked inputs pay one small reduction. */
            ct_tensor *dead = ct_all(ct_isneginf(bias_used), 1, (int64_t[]){-1}, true);
            if (!dead) goto done;
            if (ct_item(ct_any(dead, 0, NULL, false)) != 0) {
                ct_tensor *z = scalar(0.0, dt);
                attn = ct_where(dead, z, ct_softmax(ct_where(dead, z, scores), -1, CT_NUM_DTYPES));
            }
        }
        if (!attn) attn = ct_softmax(scores, -1, CT_NUM_DTYPES);
        if (dropout_p > 0) attn = ct_dropout(attn, dropout_p, true, NULL);
        ct_tensor *o = ct_bmm(attn, v3);
        if (!o) goto done;
        int64_t osz[CT_MAX_DIMS];
        memcpy(osz, qb, sizeof(int64_t) * (size_t)nq);
        osz[nq] = L, osz[nq + 1] = Ev;
        r_ = ct_reshape(o, nq + 2, osz);
    } else {
        /* General broadcasting path (torch's reference, op by op). */
        scores = ct_mul_scalar(ct_matmul(query, ct_transpose(k, -2, -1)), scale);
        if (bias) scores = ct_add(scores, bias);
        ct_tensor *attn = NULL;
        if (may_mask_rows && scores) {
            ct_tensor *dead = ct_all(ct_isneginf(bias), 1, (int64_t[]){-1}, true);
            if (!dead) goto done;
            if (ct_item(ct_any(dead, 0, NULL, false)) != 0) {
                ct_tensor *z = scalar(0.0, dt);
                attn = ct_where(dead, z, ct_softmax(ct_where(dead, z, scores), -1, CT_NUM_DTYPES));
            }
        }
        if (!attn) attn = ct_softmax(scores, -1, CT_NUM_DTYPES);
        if (dropout_p > 0) attn = ct_dropout(attn, dropout_p, true, NULL);
        r_ = ct_matmul(attn, v);
    }
done:
    END
}

/* ---- multi_head_attention_forward ---- */

/* torch's _canonical_mask: bool -> float (-inf where True) of dtype dt; floats pass. */
static ct_tensor *canonical_mask(const ct_tensor *mask, const char *name, ct_dtype dt) {
    if (!mask) return NULL;
    if (mask->dtype == CT_BOOL) return bool_to_bias(mask, dt, true);
    if (!ct_dtype_is_floating(mask->dtype))
        return ct__err(CT_ERR_DTYPE, "multi_head_attention_forward: only bool and floating types of %s are supported", name);
    return (ct_tensor *)mask;
}

/* F.pad(x, (0, 1)) on the last dim. */
static ct_tensor *pad_last(const ct_tensor *x) { return ct_pad(x, 2, (int64_t[]){0, 1}, "constant", 0.0); }

static bool same_sizes(const ct_tensor *a, const ct_tensor *b) {
    return ct__same_sizes(a->ndim, a->sizes, b->ndim, b->sizes);
}

CT_API ct_tensor *ct_nn_multi_head_attention_forward(const ct_tensor *query, const ct_tensor *key,
                                                     const ct_tensor *value, int64_t embed_dim_to_check,
                                                     int64_t num_heads, const ct_mha_params *p,
                                                     const ct_tensor *key_padding_mask,
                                                     const ct_tensor *attn_mask, ct_tensor **attn_weights) {
    static const char *OP = "multi_head_attention_forward";
    if (attn_weights) *attn_weights = NULL;
    CT_CHECK_ARG(OP, query);
    CT_CHECK_ARG(OP, key);
    CT_CHECK_ARG(OP, value);
    if (!p) return ct__err(CT_ERR_NULL, "%s: params is NULL", OP);
    CT_CHECK_ARG(OP, p->out_proj_weight);
    bool need_weights = attn_weights != NULL;
    /* _mha_shape_check */
    bool batched;
    if (query->ndim == 3) {
        batched = true;
        if (key->ndim != 3 || value->ndim != 3)
            return ct__err(CT_ERR_SHAPE, "%s: For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                           "%d-D and %d-D tensors respectively", OP, key->ndim, value->ndim);
        if (key_padding_mask && key_padding_mask->ndim != 2)
            return ct__err(CT_ERR_SHAPE, "%s: For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D "
                           "but found %d-D tensor instead", OP, key_padding_mask->ndim);
        if (attn_mask && attn_mask->ndim != 2 && attn_mask->ndim != 3)
            return ct__err(CT_ERR_SHAPE, "%s: For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                           "but found %d-D tensor instead", OP, attn_mask->ndim);
    } else if (query->ndim == 2) {
        batched = false;
        if (key->ndim != 2 || value->ndim != 2)
            return ct__err(CT_ERR_SHAPE, "%s: For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but "
                           "found %d-D and %d-D tensors respectively", OP, key->ndim, value->ndim);
        if (key_padding_mask && key_padding_mask->ndim != 1)
            return ct__err(CT_ERR_SHAPE, "%s: For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or "
                           "1-D but found %d-D tensor instead", OP, key_padding_mask->ndim);
        if (attn_mask && attn_mask->ndim != 2 && attn_mask->ndim != 3)
            return ct__err(CT_ERR_SHAPE, "%s: For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or "
                           "3-D but found %d-D tensor instead", OP, attn_mask->ndim);
        if (attn_mask && attn_mask->ndim == 3 &&
            (attn_mask->sizes[0] != num_heads || attn_mask->sizes[1] != query->sizes[0] ||
             attn_mask->sizes[2] != key->sizes[0]))
            return ct__err(CT_ERR_SHAPE, "%s: Expected `attn_mask` shape to be (%lld, %lld, %lld) but got %s", OP,
                           (long long)num_heads, (long long)query->sizes[0], (long long)key->sizes[0],
                           CT_SHAPESTR(attn_mask));
    } else {
        return ct__err(CT_ERR_SHAPE, "%s: query should be unbatched 2D or batched 3D tensor but received %d-D query "
                       "tensor", OP, query->ndim);
    }
    if (num_heads <= 0) return ct__err(CT_ERR_ARG, "%s: num_heads must be positive, got %lld", OP, (long long)num_heads);
    bool self_attn = query == key && key == value, kv_same = key == value;
    bool is_causal = p->is_causal;
    double dropout_p = p->training ? p->dropout_p : 0.0;
    ct_dtype dt = query->dtype;

    BEGIN
    const ct_tensor *q_in = query, *k_in = key, *v_in = value, *kpm = key_padding_mask;
    if (!batched) {
        q_in = ct_unsqueeze(query, 1);
        k_in = self_attn ? q_in : ct_unsqueeze(key, 1);
        v_in = kv_same ? k_in : ct_unsqueeze(value, 1);
        if (kpm) kpm = ct_unsqueeze(kpm, 0);
        if (!q_in || !k_in || !v_in) goto done;
    }
    int64_t tgt_len = q_in->sizes[0], bsz = q_in->sizes[1], E = q_in->sizes[2], src_len = k_in->sizes[0];
    ct_tensor *mask = NULL;
    if (kpm) {
        kpm = canonical_mask(kpm, "key_padding_mask", dt);
        if (!kpm) goto done;
    }
    if (is_causal && !attn_mask) {
        ct__errs(CT_ERR_ARG, "%s: Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                 "method `generate_square_subsequent_mask` to create this mask.", OP);
        goto done;
    }
    if (is_causal && !kpm && !need_weights) {
        mask = NULL; /* sdpa applies the causal mask itself */
    } else {
        if (attn_mask) {
            mask = canonical_mask(attn_mask, "attn_mask", dt);
            if (!mask) goto done;
        }
        if (kpm) is_causal = false;
    }
    if (E != embed_dim_to_check) {
        ct__errs(CT_ERR_SHAPE, "%s: was expecting embedding dimension of %lld, but got %lld", OP,
                 (long long)embed_dim_to_check, (long long)E);
        goto done;
    }
    int64_t head_dim = E / num_heads;
    if (head_dim * num_heads != E) {
        ct__errs(CT_ERR_SHAPE, "%s: embed_dim %lld not divisible by num_heads %lld", OP, (long long)E, (long long)num_heads);
        goto done;
    }
    bool had_mask = mask != NULL, had_kpm = kpm != NULL;
    bool separate = p->in_proj_weight == NULL;
    if (separate) {
        if (k_in->sizes[0] != v_in->sizes[0] || k_in->sizes[1] != v_in->sizes[1]) {
            ct__errs(CT_ERR_SHAPE, "%s: key's sequence and batch dims %s do not match value's %s", OP,
                     CT_SIZESSTR(2, k_in->sizes), CT_SIZESSTR(2, v_in->sizes));
            goto done;
        }
    } else if (!same_sizes(k_in, v_in)) {
        ct__errs(CT_ERR_SHAPE, "%s: key shape %s does not match value shape %s", OP, CT_SHAPESTR(k_in), CT_SHAPESTR(v_in));
        goto done;
    }

    /* input projections */
    ct_tensor *q, *k, *v;
    const ct_tensor *W = p->in_proj_weight, *b = p->in_proj_bias;
    if (!separate) {
        if (W->ndim != 2 || W->sizes[0] != 3 * E || W->sizes[1] != E) {
            ct__errs(CT_ERR_SHAPE, "%s: expecting in_proj_weight of shape (%lld, %lld), but got %s", OP,
                     (long long)(3 * E), (long long)E, CT_SHAPESTR(W));
            goto done;
        }
        if (self_attn) {
            ct_tensor *proj = ct_nn_linear(q_in, W, b);
            q = ct_narrow(proj, -1, 0, E);
            k = ct_narrow(proj, -1, E, E);
            v = ct_narrow(proj, -1, 2 * E, E);
        } else if (kv_same) {
            q = ct_nn_linear(q_in, ct_narrow(W, 0, 0, E), b ? ct_narrow(b, 0, 0, E) : NULL);
            ct_tensor *kv = ct_nn_linear(k_in, ct_narrow(W, 0, E, 2 * E), b ? ct_narrow(b, 0, E, 2 * E) : NULL);
            k = ct_narrow(kv, -1, 0, E);
            v = ct_narrow(kv, -1, E, E);
        } else {
            q = ct_nn_linear(q_in, ct_narrow(W, 0, 0, E), b ? ct_narrow(b, 0, 0, E) : NULL);
            k = ct_nn_linear(k_in, ct_narrow(W, 0, E, E), b ? ct_narrow(b, 0, E, E) : NULL);
            v = ct_nn_linear(v_in, ct_narrow(W, 0, 2 * E, E), b ? ct_narrow(b, 0, 2 * E, E) : NULL);
        }
    } else {
        if (!p->q_proj_weight || !p->k_proj_weight || !p->v_proj_weight) {
            ct__errs(CT_ERR_ARG, "%s: use_separate_proj_weight is True but q_proj_weight, k_proj_weight or "
                     "v_proj_weight is None", OP);
            goto done;
        }
        q = ct_nn_linear(q_in, p->q_proj_weight, b ? ct_narrow(b, 0, 0, E) : NULL);
        k = ct_nn_linear(k_in, p->k_proj_weight, b ? ct_narrow(b, 0, E, E) : NULL);
        v = ct_nn_linear(v_in, p->v_proj_weight, b ? ct_narrow(b, 0, 2 * E, E) : NULL);
    }
    if (!q || !k || !v) goto done;

    if (mask) {
        if (mask->ndim == 2) {
            if (mask->sizes[0] != tgt_len || mask->sizes[1] != src_len) {
                ct__errs(CT_ERR_SHAPE, "%s: The shape of the 2D attn_mask is %s, but should be (%lld, %lld).", OP,
                         CT_SHAPESTR(mask), (long long)tgt_len, (long long)src_len);
                goto done;
            }
            mask = ct_unsqueeze(mask, 0);
            if (!mask) goto done;
        } else if (mask->ndim == 3) {
            if (mask->sizes[0] != bsz * num_heads || mask->sizes[1] != tgt_len || mask->sizes[2] != src_len) {
                ct__errs(CT_ERR_SHAPE, "%s: The shape of the 3D attn_mask is %s, but should be (%lld, %lld, %lld).", OP,
                         CT_SHAPESTR(mask), (long long)(bsz * num_heads), (long long)tgt_len, (long long)src_len);
                goto done;
            }
        } else {
            ct__errs(CT_ERR_SHAPE, "%s: attn_mask's dimension %d is not supported", OP, mask->ndim);
            goto done;
        }
    }
    if (p->bias_k && p->bias_v) {
        k = ct_cat(2, (const ct_tensor *[]){k, ct_repeat(p->bias_k, 3, (int64_t[]){1, bsz, 1})}, 0);
        v = ct_cat(2, (const ct_tensor *[]){v, ct_repeat(p->bias_v, 3, (int64_t[]){1, bsz, 1})}, 0);
        if (mask) mask = pad_last(mask);
        if (kpm) kpm = pad_last(kpm);
    } else if (p->bias_k || p->bias_v) {
        ct__errs(CT_ERR_ARG, "%s: %s is set but %s is None", OP, p->bias_k ? "bias_k" : "bias_v", p->bias_k ? "bias_v" : "bias_k");
        goto done;
    }
    if (!k || !v || (mask == NULL) != !had_mask || (kpm == NULL) != !had_kpm) goto done;
    int64_t BH = bsz * num_heads;
    q = ct_transpose(ct_reshape(q, 3, (int64_t[]){tgt_len, BH, head_dim}), 0, 1);
    if (!k || !v) goto done;
    k = ct_transpose(ct_reshape(k, 3, (int64_t[]){k->sizes[0], BH, head_dim}), 0, 1);
    v = ct_transpose(ct_reshape(v, 3, (int64_t[]){v->sizes[0], BH, head_dim}), 0, 1);
    if (p->add_zero_attn) {
        ct_tensor *z = ct_zeros(3, (int64_t[]){BH, 1, head_dim}, dt);
        k = ct_cat(2, (const ct_tensor *[]){k, z}, 1);
        v = ct_cat(2, (const ct_tensor *[]){v, z}, 1);
        if (mask) mask = pad_last(mask);
        if (kpm) kpm = pad_last(kpm);
    }
    if (!q || !k || !v || (mask == NULL) != !had_mask || (kpm == NULL) != !had_kpm) goto done;
    src_len = k->sizes[1];
    if (kpm) {
        if (kpm->sizes[0] != bsz || kpm->sizes[1] != src_len) {
            ct__errs(CT_ERR_SHAPE, "%s: Expected key_padded_mask.shape[%d] to be %lld, but got %lld", OP,
                     kpm->sizes[0] != bsz ? 0 : 1, (long long)(kpm->sizes[0] != bsz ? bsz : src_len),
                     (long long)(kpm->sizes[0] != bsz ? kpm->sizes[0] : kpm->sizes[1]));
            goto done;
        }
        ct_tensor *k4 = ct_expand(ct_view(kpm, 4, (int64_t[]){bsz, 1, 1, src_len}), 4, (int64_t[]){-1, num_heads, -1, -1});
        ct_tensor *kp = ct_reshape(k4, 3, (int64_t[]){BH, 1, src_len});
        mask = mask ? ct_add(mask, kp) : kp;
        if (!mask) goto done;
        had_mask = true;
    }

    ct_tensor *out;
    if (need_weights) {
        ct_tensor *q_scaled = ct_mul_scalar(q, sqrt(1.0 / (double)head_dim));
        ct_tensor *w = mask ? ct_baddbmm(mask, q_scaled, ct_transpose(k, 1, 2), 1.0, 1.0)
                            : ct_bmm(q_scaled, ct_transpose(k, 1, 2));
        w = ct_softmax(w, -1, CT_NUM_DTYPES);
        if (dropout_p > 0) w = ct_dropout(w, dropout_p, true, NULL);
        out = ct_bmm(w, v);
        out = ct_reshape(ct_transpose(out, 0, 1), 2, (int64_t[]){tgt_len * bsz, E});
        out = ct_nn_linear(out, p->out_proj_weight, p->out_proj_bias);
        out = ct_view(out, 3, (int64_t[]){tgt_len, bsz, E});
        w = ct_view(w, 4, (int64_t[]){bsz, num_heads, tgt_len, src_len});
        if (p->average_attn_weights) w = ct_mean_dim(w, 1, (int64_t[]){1}, false, CT_NUM_DTYPES);
        if (!batched) {
            out = ct_squeeze_dim(out, 1);
            w = ct_squeeze_dim(w, 0);
        }
        if (!out || !w) goto done;
        *attn_weights = ct_keep(w);
    } else {
        if (mask) {
            if (mask->sizes[0] == 1 && mask->ndim == 3) mask = ct_unsqueeze(mask, 0);
            else mask = ct_view(mask, 4, (int64_t[]){bsz, num_heads, -1, src_len});
        }
        q = ct_reshape(q, 4, (int64_t[]){bsz, num_heads, tgt_len, head_dim});
        k = ct_reshape(k, 4, (int64_t[]){bsz, num_heads, src_len, head_dim});
        v = ct_reshape(v, 4, (int64_t[]){bsz, num_heads, src_len, head_dim});
        if (had_mask && !mask) goto done;
        out = ct_nn_scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal, 0.0, false);
        out = ct_reshape(ct_permute(out, 4, (int[]){2, 0, 1, 3}), 2, (int64_t[]){bsz * tgt_len, E});
        out = ct_nn_linear(out, p->out_proj_weight, p->out_proj_bias);
        out = ct_view(out, 3, (int64_t[]){tgt_len, bsz, E});
        if (!batched) out = ct_squeeze_dim(out, 1);
    }
    r_ = out;
done:
    END
}
