/* bilinear, channel-wise dropout (dropout1d/2d/3d), embedding with max_norm,
 * embedding_bag and ctc_loss (torch.nn.functional). All but ctc_loss are compositions of
 * differentiable ops; ctc_loss has its own node with PyTorch's alpha-beta gradient
 * (computed in float64). */
#include <math.h>

#include "core/autograd_internal.h"
#include "core/internal.h"
#include "ctorch/nn.h"

#include "ops/compose.h"
#define BEGIN CT_COMPOSE_BEGIN
#define END CT_COMPOSE_END

/* ---- bilinear ---- */
CT_API ct_tensor *ct_nn_bilinear(const ct_tensor *x1, const ct_tensor *x2, const ct_tensor *weight,
                                 const ct_tensor *bias) {
    CT_CHECK_ARG("bilinear", x1);
    CT_CHECK_ARG("bilinear", x2);
    CT_CHECK_ARG("bilinear", weight);
    if (weight->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "bilinear(): weight must be 3-D [out, in1, in2], got %s", CT_SHAPESTR(weight));
    if (x1->ndim != x2->ndim)
        return ct__err(CT_ERR_SHAPE, "bilinear(): input dimensions do not match: got %d and %d", x1->ndim, x2->ndim);
    if (x1->ndim < 1) return ct__err(CT_ERR_SHAPE, "bilinear(): inputs must have at least 1 dim, got 0-dim tensors");
    for (int i = 0; i < x1->ndim - 1; i++)
        if (x1->sizes[i] != x2->sizes[i])
            return ct__err(CT_ERR_SHAPE, "bilinear(): input batch dimensions do not match: got %lld and %lld",
                           (long long)x1->sizes[i], (long long)x2->sizes[i]);
    int64_t in1 = weight->sizes[1], in2 = weight->sizes[2], out = weight->sizes[0];
    if (x1->sizes[x1->ndim - 1] != in1)
        return ct__err(CT_ERR_SHAPE, "bilinear(): input1 size does not match weight size: got %lld but expected %lld",
                       (long long)x1->sizes[x1->ndim - 1], (long long)in1);
    if (x2->sizes[x2->ndim - 1] != in2)
        return ct__err(CT_ERR_SHAPE, "bilinear(): input2 size does not match weight size: got %lld but expected %lld",
                       (long long)x2->sizes[x2->ndim - 1], (long long)in2);
    if (bias && (bias->ndim != 1 || bias->sizes[0] != out))
        return ct__err(CT_ERR_SHAPE, "bilinear(): bias size does not match weight size: got %s but expected [%lld]",
                       CT_SHAPESTR(bias), (long long)out);
    int64_t shp[CT_MAX_DIMS];
    for (int i = 0; i < x1->ndim - 1; i++) shp[i] = x1->sizes[i];
    shp[x1->ndim - 1] = out;
    BEGIN
    /* y[b, o] = sum_ij x1[b, i] W[o, i, j] x2[b, j]: (x1 @ W') as [B, out, in2], times x2, summed */
    ct_tensor *a = ct_reshape(x1, 2, (int64_t[]){-1, in1});
    ct_tensor *b = ct_reshape(x2, 2, (int64_t[]){-1, in2});
    ct_tensor *w = ct_reshape(ct_permute(weight, 3, (int[]){1, 0, 2}), 2, (int64_t[]){in1, out * in2});
    ct_tensor *t = ct_reshape(ct_mm(a, w), 3, (int64_t[]){-1, out, in2});
    ct_tensor *y = ct_sum_dim(ct_mul(t, ct_unsqueeze(b, 1)), 1, (int64_t[]){2}, false, CT_NUM_DTYPES);
    if (bias) y = ct_add(y, bias);
    r_ = ct_reshape(y, x1->ndim, shp);
    END
}

/* ---- feature (channel-wise) dropout: torch's _dropout_impl<feature_dropout=true> ---- */
static ct_tensor *feature_dropout(const char *op, const ct_tensor *x, double p, bool training,
                                  struct ct_generator *gen) {
    if (!(p >= 0 && p <= 1))
        return ct__err(CT_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g", op, p);
    if (!training || p == 0 || x->numel == 0) return ct__ret(ct_retain((ct_tensor *)x));
    if (!ct_dtype_is_floating(x->dtype) && !ct_dtype_is_complex(x->dtype))
        return ct__err(CT_ERR_DTYPE, "%s: expected a floating point tensor, got %s", op, ct_dtype_name(x->dtype));
    if (p == 1) {
        BEGIN
        r_ = ct_mul(x, ct_zeros(0, NULL, x->dtype));
        END
    }
    if (x->ndim < 2)
        return ct__err(CT_ERR_SHAPE, "%s: Feature dropout requires at least 2 dimensions in the input, got %s", op,
                       CT_SHAPESTR(x));
    int64_t shp[CT_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shp[d] = d < 2 ? x->sizes[d] : 1;
    BEGIN
    ct_tensor *noise = ct_empty(x->ndim, shp, x->dtype);
    if (noise && !ct_bernoulli_(noise, 1 - p, gen) && !ct_div_(noise, ct_float(1 - p))) r_ = ct_mul(x, noise);
    END
}

/* unbatched inputs get a batch dim around the dropout, as torch's Python wrappers do */
static ct_tensor *feature_dropout_unbatched(const char *op, const ct_tensor *x, double p, bool training,
                                            struct ct_generator *gen, bool batched) {
    if (batched) return feature_dropout(op, x, p, training, gen);
    if (!(p >= 0 && p <= 1))
        return ct__err(CT_ERR_ARG, "%s: dropout probability has to be between 0 and 1, but got %g", op, p);
    BEGIN
    ct_tensor *y = feature_dropout(op, ct_unsqueeze(x, 0), p, training, gen);
    if (y) r_ = ct_squeeze_dim(y, 0);
    END
}

CT_API ct_tensor *ct_nn_dropout1d(const ct_tensor *x, double p, bool training, struct ct_generator *gen) {
    CT_CHECK_ARG("dropout1d", x);
    if (!(p >= 0 && p <= 1))
        return ct__err(CT_ERR_ARG, "dropout1d: dropout probability has to be between 0 and 1, but got %g", p);
    if (x->ndim != 2 && x->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "dropout1d: Expected 2D or 3D input, but received a %dD input. Note that dropout1d "
                       "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel dimension, "
                       "and an optional batch dimension (i.e. 2D or 3D inputs).", x->ndim);
    return feature_dropout_unbatched("dropout1d", x, p, training, gen, x->ndim == 3);
}

CT_API ct_tensor *ct_nn_dropout2d(const ct_tensor *x, double p, bool training, struct ct_generator *gen) {
    CT_CHECK_ARG("dropout2d", x);
    /* torch warns for inputs other than 3-D or 4-D and treats a 3-D one as [N, C, L] */
    return feature_dropout("dropout2d", x, p, training, gen);
}

CT_API ct_tensor *ct_nn_dropout3d(const ct_tensor *x, double p, bool training, struct ct_generator *gen) {
    CT_CHECK_ARG("dropout3d", x);
    return feature_dropout_unbatched("dropout3d", x, p, training, gen, x->ndim == 5);
}

/* ---- embedding with max_norm ---- */
/* the indices as a contiguous int64 copy (scope-owned), checked against num rows */
static ct_tensor *index_vec(const char *op, const ct_tensor *indices, int64_t num) {
    if (indices->dtype != CT_INT64 && indices->dtype != CT_INT32)
        return ct__err(CT_ERR_DTYPE, "%s: Expected tensor for argument #1 'indices' to have one of the following scalar "
                       "types: Long, Int; but got %s instead", op, ct__scalar_type_name(indices->dtype));
    ct_tensor *v = ct_contiguous(ct_to_dtype(ct_reshape(indices, 1, (int64_t[]){-1}), CT_INT64));
    if (!v) return NULL;
    const int64_t *p = ct__data(v);
    for (int64_t k = 0; k < v->numel; k++)
        if (p[k] < 0 || p[k] >= num)
            return ct__err(CT_ERR_INDEX, "%s: index out of range in self (index %lld, %lld rows)", op, (long long)p[k],
                           (long long)num);
    return v;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int renorm(const char *op, ct_tensor *weight, const ct_tensor *idx, double max_norm, double norm_type) {
    int64_t n = idx->numel;
    int64_t *s = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!s) return ct__errs(CT_ERR_OOM, "%s: out of memory", op);
    memcpy(s, ct__data(idx), sizeof(int64_t) * (size_t)n);
    /* sorted unique rows, as torch's embedding_renorm_ visits them */
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    int rc = 0;
    bool prev = ct_set_grad_enabled(false);
    for (int64_t i = 0; i < n && !rc; i++) {
        if (i > 0 && s[i] == s[i - 1]) continue;
        ct_tensor *row = ct_select(weight, 0, s[i]);
        ct_tensor *nrm = row ? ct_norm(row, norm_type, 0, NULL, false) : NULL;
        if (!nrm) {
            rc = ct_last_status();
            break;
        }
        double v = ct_item(nrm);
        if (v > max_norm) rc = ct_mul_(row, ct_float(max_norm / (v + 1e-7)));
    }
    ct_set_grad_enabled(prev);
    free(s);
    return rc;
}

CT_API int ct_nn_embedding_renorm_(ct_tensor *weight, const ct_tensor *indices, double max_norm, double norm_type) {
    CT_CHECK_ARG_S("embedding_renorm_", weight);
    CT_CHECK_ARG_S("embedding_renorm_", indices);
    if (weight->ndim != 2)
        return ct__errs(CT_ERR_SHAPE, "embedding_renorm_: 'weight' must be 2-D, got %s", CT_SHAPESTR(weight));
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *idx = index_vec("embedding_renorm_", indices, weight->sizes[0]);
    int rc = idx ? renorm("embedding_renorm_", weight, idx, max_norm, norm_type) : ct_last_status();
    ct_scope_end();
    return rc;
}

CT_API ct_tensor *ct_nn_embedding_ex(const ct_tensor *indices, ct_tensor *weight, int64_t padding_idx, double max_norm,
                                     double norm_type) {
    CT_CHECK_ARG("embedding", indices);
    CT_CHECK_ARG("embedding", weight);
    if (max_norm > 0 && ct_nn_embedding_renorm_(weight, indices, max_norm, norm_type)) return NULL;
    return ct_nn_embedding(indices, weight, padding_idx);
}

/* ---- embedding_bag ---- */
CT_API ct_tensor *ct_nn_embedding_bag(const ct_tensor *input, ct_tensor *weight, const ct_tensor *offsets,
                                      double max_norm, double norm_type, const char *mode,
                                      const ct_tensor *per_sample_weights, bool include_last_offset,
                                      int64_t padding_idx) {
    const char *op = "embedding_bag";
    CT_CHECK_ARG(op, input);
    CT_CHECK_ARG(op, weight);
    if (!mode) mode = "mean";
    int md = !strcmp(mode, "sum") ? 0 : !strcmp(mode, "mean") ? 1 : !strcmp(mode, "max") ? 2 : -1;
    if (md < 0) return ct__err(CT_ERR_ARG, "embedding_bag: mode has to be one of sum, mean or max, got '%s'", mode);
    if (per_sample_weights && !ct__same_sizes(input->ndim, input->sizes, per_sample_weights->ndim,
                                              per_sample_weights->sizes))
        return ct__err(CT_ERR_SHAPE, "embedding_bag: If per_sample_weights (%s) is not None, then it must have the same "
                       "shape as the input (%s)", CT_SHAPESTR(per_sample_weights), CT_SHAPESTR(input));
    if (weight->ndim != 2)
        return ct__err(CT_ERR_SHAPE, "embedding_bag: weight has to be a 2D Tensor, but got Tensor of dimension %d",
                       weight->ndim);
    if (!ct_dtype_is_floating(weight->dtype))
        return ct__err(CT_ERR_DTYPE, "embedding_bag: weight must be floating point, got %s", ct_dtype_name(weight->dtype));
    int64_t num = weight->sizes[0], D = weight->sizes[1];
    if (padding_idx != CT_NO_PADDING_IDX) {
        if (padding_idx >= num || padding_idx < -num)
            return ct__err(CT_ERR_INDEX, "embedding_bag: padding_idx must be within num_embeddings");
        if (padding_idx < 0) padding_idx += num;
    }
    if (input->ndim == 2) {
        if (offsets)
            return ct__err(CT_ERR_ARG, "embedding_bag: if input is 2D, then offsets has to be None, as input is treated "
                           "is a mini-batch of fixed length sequences");
    } else if (input->ndim == 1) {
        if (!offsets) return ct__err(CT_ERR_ARG, "embedding_bag: offsets has to be a 1D Tensor but got None");
        if (offsets->ndim != 1) return ct__err(CT_ERR_SHAPE, "embedding_bag: offsets has to be a 1D Tensor");
        if (offsets->dtype != CT_INT64 && offsets->dtype != CT_INT32)
            return ct__err(CT_ERR_DTYPE, "embedding_bag: offsets must be Long or Int, got %s",
                           ct_dtype_name(offsets->dtype));
    } else
        return ct__err(CT_ERR_SHAPE, "embedding_bag: input has to be 1D or 2D Tensor, but got Tensor of dimension %d",
                       input->ndim);
    if (md == 2 && per_sample_weights)
        return ct__err(CT_ERR_ARG, "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                       "supported for mode='sum' (got mode='%s'). Please open a feature request on GitHub.", mode);
    if (per_sample_weights && per_sample_weights->dtype != weight->dtype)
        return ct__err(CT_ERR_DTYPE, "embedding_bag: expected per_sample_weights (%s) to have the dtype of weight (%s)",
                       ct_dtype_name(per_sample_weights->dtype), ct_dtype_name(weight->dtype));
    if (ct_scope_begin()) return NULL;
    ct_tensor *r_ = NULL;
    int64_t *keep_idx = NULL, *keep_bag = NULL, *keep_pos = NULL;
    ct_tensor *idx = index_vec(op, input, num);
    if (!idx) goto done;
    if (max_norm > 0 && renorm(op, weight, idx, max_norm, norm_type)) goto done;
    const int64_t *ix = ct__data(idx);
    int64_t n = idx->numel, B;
    const int64_t *off;
    ct_tensor *offv = NULL;
    if (input->ndim == 2) {
        B = input->sizes[0];
        int64_t L = input->sizes[1];
        offv = L > 0 ? ct_arange(0, (double)n, (double)L, CT_INT64) : ct_zeros(CT_SHAPE(B), CT_INT64);
        include_last_offset = false;
    } else {
        offv = ct_contiguous(ct_to_dtype(offsets, CT_INT64));
        B = offsets->sizes[0] - (include_last_offset ? 1 : 0);
        if (B < 0) B = 0;
    }
    if (!offv) goto done;
    off = ct__data(offv);
    if (input->ndim == 1 && offsets->sizes[0] > 0) {
        if (off[0] != 0) {
            ct__err(CT_ERR_ARG, "embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has "
                    "to start from position 0. However, got %lld", (long long)off[0]);
            goto done;
        }
        for (int64_t b = 1; b < offsets->sizes[0]; b++)
            if (off[b] < off[b - 1]) {
                ct__err(CT_ERR_ARG, "embedding_bag: offsets must be non-decreasing, got offsets[%lld] = %lld after %lld",
                        (long long)b, (long long)off[b], (long long)off[b - 1]);
                goto done;
            }
        if (off[offsets->sizes[0] - 1] > n) {
            ct__err(CT_ERR_ARG, "embedding_bag: offsets[-1] can not be greater than input's length %lld but got "
                    "offsets[-1] of %lld", (long long)n, (long long)off[offsets->sizes[0] - 1]);
            goto done;
        }
    }
    keep_idx = malloc(sizeof(int64_t) * (size_t)(n + 1));
    keep_bag = malloc(sizeof(int64_t) * (size_t)(n + 1));
    keep_pos = malloc(sizeof(int64_t) * (size_t)(n + 1));
    ct_tensor *counts = ct_zeros(CT_SHAPE(B, 1), weight->dtype);
    if (!keep_idx || !keep_bag || !keep_pos || !counts) {
        if (counts) ct__err(CT_ERR_OOM, "embedding_bag: out of memory");
        goto done;
    }
    int64_t m = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t s = off[b], e = (b + 1 < B || include_last_offset) ? off[b + 1] : n, c = 0;
        for (int64_t k = s; k < e; k++) {
            if (ix[k] == padding_idx) continue;
            keep_idx[m] = ix[k], keep_bag[m] = b, keep_pos[m] = k, m++, c++;
        }
        ct__store_f64((char *)ct__data(counts) + b * (int64_t)ct_dtype_size(counts->dtype), counts->dtype, (double)c);
    }
    if (md == 2) {
        ct_tensor *wd = ct_contiguous(ct_to_dtype(ct_detach(weight), CT_FLOAT64));
        ct_tensor *mi = ct_zeros(CT_SHAPE(B, D), CT_INT64);
        ct_tensor *empty = ct_zeros(CT_SHAPE(B, 1), CT_BOOL);
        if (!wd || !mi || !empty) goto done;
        const double *w = ct__data(wd);
        int64_t *mip = ct__data(mi);
        bool *ep = ct__data(empty);
        double *cur = malloc(sizeof(double) * (size_t)(D ? D : 1));
        if (!cur) {
            ct__err(CT_ERR_OOM, "embedding_bag: out of memory");
            goto done;
        }
        for (int64_t b = 0; b < B; b++) ep[b] = true;
        for (int64_t k = 0; k < m; k++) {
            int64_t b = keep_bag[k], row = keep_idx[k];
            bool first = ep[b];
            for (int64_t d = 0; d < D; d++) {
                double v = w[row * D + d];
                if (first || v > cur[d]) cur[d] = v, mip[b * D + d] = row;
            }
            ep[b] = false;
        }
        free(cur);
        ct_tensor *g = ct_gather(weight, 0, mi);
        r_ = ct_where(empty, ct_zeros(0, NULL, weight->dtype), g);
    } else {
        ct_tensor *ki = ct_from_data(keep_idx, 1, (int64_t[]){m}, CT_INT64);
        ct_tensor *kb = ct_from_data(keep_bag, 1, (int64_t[]){m}, CT_INT64);
        ct_tensor *rows = ct_index_select(weight, 0, ki);
        if (per_sample_weights) {
            ct_tensor *kp = ct_from_data(keep_pos, 1, (int64_t[]){m}, CT_INT64);
            ct_tensor *psw = ct_reshape(per_sample_weights, 1, (int64_t[]){-1});
            rows = ct_mul(rows, ct_unsqueeze(ct_index_select(psw, 0, kp), 1));
        }
        ct_tensor *out = ct_index_add(ct_zeros(CT_SHAPE(B, D), weight->dtype), 0, kb, rows, 1.0);
        if (md == 1) out = ct_div(out, ct_clamp_scalar(counts, 1.0, INFINITY));
        r_ = out;
    }
done:
    free(keep_idx), free(keep_bag), free(keep_pos);
    if (r_) r_ = ct_keep(r_);
    ct_scope_end();
    return r_;
}

/* ---- ctc_loss ---- */
typedef struct {
    int64_t T, N, C, blank;
    bool zero_infinity;
    int64_t *il, *tl, *toff, *tg; /* input / target lengths, each sample's start in tg, concatenated targets */
} ctc_ctx;

static void ctc_ctx_free(void *p) {
    ctc_ctx *c = p;
    if (!c) return;
    free(c->il), free(c->tl), free(c->toff), free(c->tg);
    free(c);
}

static inline double lse3(double a, double b, double c) {
    double m = fmax(a, fmax(b, c));
    if (m == -INFINITY) m = 0;
    return log(exp(a - m) + exp(b - m) + exp(c - m)) + m;
}

/* log alpha of sample b into la [il][2 S + 1]; returns the negative log likelihood. lp is
 * [T][N][C] float64. */
static double ctc_alpha(const ctc_ctx *c, const double *lp, int64_t b, double *la) {
    int64_t il = c->il[b], S = c->tl[b], L = 2 * S + 1, N = c->N, C = c->C;
    const int64_t *tg = c->tg + c->toff[b];
#define TP(s) ((s) % 2 == 0 ? c->blank : tg[(s) / 2])
#define LP(t, k) lp[((t) * N + b) * C + (k)]
    if (il == 0) return S == 0 ? 0.0 : INFINITY;
    for (int64_t s = 0; s < L; s++) la[s] = -INFINITY;
    la[0] = LP(0, c->blank);
    if (S > 0) la[1] = LP(0, TP(1));
    for (int64_t t = 1; t < il; t++) {
        const double *prev = la + (t - 1) * L;
        double *cur = la + t * L;
        for (int64_t s = 0; s < L; s++) {
            int64_t k = TP(s);
            double a1 = prev[s], a2 = s > 0 ? prev[s - 1] : -INFINITY;
            double a3 = (s > 1 && TP(s - 2) != k) ? prev[s - 2] : -INFINITY;
            cur[s] = lse3(a1, a2, a3) + LP(t, k);
        }
    }
    const double *last = la + (il - 1) * L;
    if (S == 0) return -last[0];
    return -lse3(last[2 * S], last[2 * S - 1], -INFINITY);
}

/* torch's ctc_loss_backward_cpu_template for sample b with grad_out 1: writes g [T][N][C]. */
static void ctc_grad(const ctc_ctx *c, const double *lp, int64_t b, double nll, const double *la, double *lb,
                     double *g) {
    int64_t il = c->il[b], S = c->tl[b], L = 2 * S + 1, N = c->N, C = c->C, T = c->T;
    const int64_t *tg = c->tg + c->toff[b];
#define G(t, k) g[((t) * N + b) * C + (k)]
    for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < C; k++) G(t, k) = t < il ? -INFINITY : 0.0;
    if (c->zero_infinity && nll == INFINITY) {
        for (int64_t t = 0; t < il; t++)
            for (int64_t k = 0; k < C; k++) G(t, k) = 0.0;
        return;
    }
    if (il > 0) {
        double *lbl = lb + (il - 1) * L;
        for (int64_t s = 0; s < L; s++) lbl[s] = -INFINITY;
        lbl[2 * S] = LP(il - 1, c->blank);
        G(il - 1, c->blank) = la[(il - 1) * L + 2 * S] + lbl[2 * S];
        if (S > 0) {
            int64_t k = TP(2 * S - 1);
            lbl[2 * S - 1] = LP(il - 1, k);
            G(il - 1, k) = la[(il - 1) * L + 2 * S - 1] + lbl[2 * S - 1];
        }
    }
    for (int64_t t = il - 2; t >= 0; t--) {
        const double *nx = lb + (t + 1) * L;
        double *cur = lb + t * L;
        for (int64_t s = 2 * S; s >= 0; s--) {
            int64_t k = TP(s);
            double b1 = nx[s], b2 = s < 2 * S ? nx[s + 1] : -INFINITY;
            double b3 = (s < 2 * S - 1 && TP(s + 2) != k) ? nx[s + 2] : -INFINITY;
            cur[s] = lse3(b1, b2, b3) + LP(t, k);
            double lab = la[t * L + s] + cur[s], lcab = G(t, k);
            if (lcab == -INFINITY) G(t, k) = lab;
            else {
                double m = fmax(lcab, lab);
                G(t, k) = log(exp(lcab - m) + exp(lab - m)) + m;
            }
        }
    }
    for (int64_t t = 0; t < il; t++)
        for (int64_t k = 0; k < C; k++) {
            double l = LP(t, k);
            G(t, k) = exp(l) - exp(G(t, k) + nll - l);
        }
#undef G
#undef TP
#undef LP
}

static int ctc_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (!ct__node_needs(n, 0)) return 0;
    ctc_ctx *c = n->ctx;
    ct_tensor *lp_t = ct__unpack(n, 0);
    if (!lp_t) return ct_last_status();
    ct_tensor *lpd = ct_contiguous(ct_to_dtype(ct_detach(lp_t), CT_FLOAT64));
    ct_tensor *nllt = ct_contiguous(ct_to_dtype(ct_detach(ct__unpack(n, 1)), CT_FLOAT64));
    if (!lpd || !nllt) return ct_last_status();
    int64_t maxl = 1, maxil = 1;
    for (int64_t b = 0; b < c->N; b++) {
        if (2 * c->tl[b] + 1 > maxl) maxl = 2 * c->tl[b] + 1;
        if (c->il[b] > maxil) maxil = c->il[b];
    }
    ct_tensor *u = ct_empty(3, (int64_t[]){c->T, c->N, c->C}, CT_FLOAT64);
    double *la = malloc(sizeof(double) * (size_t)(maxl * maxil)), *lb = malloc(sizeof(double) * (size_t)(maxl * maxil));
    if (!u || !la || !lb) {
        free(la), free(lb);
        return u ? ct__errs(CT_ERR_OOM, "ctc_loss backward: out of memory") : ct_last_status();
    }
    const double *lp = ct__data(lpd), *nll = ct__data(nllt);
    for (int64_t b = 0; b < c->N; b++) {
        ctc_alpha(c, lp, b, la);
        ctc_grad(c, lp, b, nll[b], la, lb, ct__data(u));
    }
    free(la), free(lb);
    gi[0] = ct_mul(ct_to_dtype(u, lp_t->dtype), ct_reshape(go[0], 3, (int64_t[]){1, c->N, 1}));
    return gi[0] ? 0 : ct_last_status();
}

/* lengths as an int64 array of n values (malloc'd), or NULL + error */
static int64_t *lengths(const char *what, const ct_tensor *t, int64_t n) {
    if (!ct_dtype_is_integral(t->dtype, false))
        return ct__err(CT_ERR_DTYPE, "ctc_loss: %s must be an integer tensor, got %s", what, ct_dtype_name(t->dtype));
    if (t->ndim > 1 || t->numel != n)
        return ct__err(CT_ERR_SHAPE, "ctc_loss: %s must be of size batch_size (%lld), got %s", what, (long long)n,
                       CT_SHAPESTR(t));
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!v) return ct__err(CT_ERR_OOM, "ctc_loss: out of memory");
    if (n && ct_copy_to_buffer(t, v, sizeof(int64_t) * (size_t)n, CT_INT64)) {
        free(v);
        return NULL;
    }
    return v;
}

/* per-sample negative log likelihoods [N] of lp [T, N, C] (torch's _ctc_loss) */
static ct_tensor *ctc_nll(const ct_tensor *lp, const ct_tensor *targets, const ct_tensor *il_t, const ct_tensor *tl_t,
                          int64_t blank, bool zero_infinity) {
    int64_t T = lp->sizes[0], N = lp->sizes[1], C = lp->sizes[2];
    if (blank < 0 || blank >= C) return ct__err(CT_ERR_ARG, "ctc_loss: blank must be in label range (got %lld for %lld "
                                                "classes)", (long long)blank, (long long)C);
    ctc_ctx *c = calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "ctc_loss: out of memory");
    *c = (ctc_ctx){.T = T, .N = N, .C = C, .blank = blank, .zero_infinity = zero_infinity};
    ct_tensor *out = NULL;
    ct_tensor *tgv = NULL;
    if (!(c->il = lengths("input_lengths", il_t, N)) || !(c->tl = lengths("target_lengths", tl_t, N))) goto fail;
    c->toff = malloc(sizeof(int64_t) * (size_t)(N ? N : 1));
    if (!c->toff) {
        ct__err(CT_ERR_OOM, "ctc_loss: out of memory");
        goto fail;
    }
    int64_t total = 0, maxtl = 0;
    for (int64_t b = 0; b < N; b++) {
        if (c->tl[b] < 0) {
            ct__err(CT_ERR_ARG, "ctc_loss: Expected target_lengths to have value at least 0, but got value %lld",
                    (long long)c->tl[b]);
            goto fail;
        }
        if (c->il[b] < 0 || c->il[b] > T) {
            ct__err(CT_ERR_ARG, "ctc_loss: Expected input_lengths to have value at %s %lld, but got value %lld",
                    c->il[b] < 0 ? "least" : "most", (long long)(c->il[b] < 0 ? 0 : T), (long long)c->il[b]);
            goto fail;
        }
        c->toff[b] = total;
        total += c->tl[b];
        if (c->tl[b] > maxtl) maxtl = c->tl[b];
    }
    if (!ct_dtype_is_integral(targets->dtype, false)) {
        ct__err(CT_ERR_DTYPE, "ctc_loss: targets must be an integer tensor, got %s", ct_dtype_name(targets->dtype));
        goto fail;
    }
    tgv = ct_contiguous(ct_to_dtype(targets, CT_INT64));
    if (!tgv) goto fail;
    c->tg = malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!c->tg) {
        ct__err(CT_ERR_OOM, "ctc_loss: out of memory");
        goto fail;
    }
    const int64_t *tp = ct__data(tgv);
    if (targets->ndim == 1) {
        if (targets->sizes[0] != total) {
            ct__err(CT_ERR_SHAPE, "ctc_loss: Expected tensor to have size %lld at dimension 0, but got size %lld for "
                    "argument #2 'targets' (the sum of target_lengths)", (long long)total, (long long)targets->sizes[0]);
            goto fail;
        }
        memcpy(c->tg, tp, sizeof(int64_t) * (size_t)total);
    } else if (targets->ndim == 2) {
        if (targets->sizes[0] != N) {
            ct__err(CT_ERR_SHAPE, "ctc_loss: Expected tensor to have size %lld at dimension 0, but got size %lld for "
                    "argument #2 'targets'", (long long)N, (long long)targets->sizes[0]);
            goto fail;
        }
        if (targets->sizes[1] < maxtl) {
            ct__err(CT_ERR_SHAPE, "ctc_loss: Expected tensor to have size at least %lld at dimension 1, but got size "
                    "%lld for argument #2 'targets'", (long long)maxtl, (long long)targets->sizes[1]);
            goto fail;
        }
        for (int64_t b = 0; b < N; b++) memcpy(c->tg + c->toff[b], tp + b * targets->sizes[1], sizeof(int64_t) * (size_t)c->tl[b]);
    } else {
        ct__err(CT_ERR_SHAPE, "ctc_loss: targets must be 1-D (concatenated) or 2-D (padded), got %s",
                CT_SHAPESTR(targets));
        goto fail;
    }
    for (int64_t k = 0; k < total; k++)
        if (c->tg[k] < 0 || c->tg[k] >= C) {
            ct__err(CT_ERR_INDEX, "ctc_loss: target %lld out of range for %lld classes", (long long)c->tg[k],
                    (long long)C);
            goto fail;
        }
    ct_tensor *lpd = ct_contiguous(ct_to_dtype(ct_detach(lp), CT_FLOAT64));
    ct_tensor *nll = ct_empty(1, (int64_t[]){N}, CT_FLOAT64);
    int64_t maxl = 2 * maxtl + 1;
    double *la = malloc(sizeof(double) * (size_t)(maxl * (T ? T : 1)));
    if (!lpd || !nll || !la) {
        free(la);
        if (lpd && nll) ct__err(CT_ERR_OOM, "ctc_loss: out of memory");
        goto fail;
    }
    double *nv = ct__data(nll);
    for (int64_t b = 0; b < N; b++) nv[b] = ctc_alpha(c, ct__data(lpd), b, la);
    free(la);
    out = ct_to_dtype(nll, lp->dtype);
    if (out && out == nll) out = ct_clone(nll);
    if (!out) goto fail;
    if (ct__needs_grad(1, (const ct_tensor *[]){lp})) {
        ct_node *nd = ct__node_new("CtcLossBackward0", ctc_backward, 1);
        if (!nd) goto fail;
        nd->ctx = c, nd->ctx_free = ctc_ctx_free;
        c = NULL;
        ct__node_set_next(nd, 0, lp);
        ct__save(nd, lp);
        ct__save_output(nd, out, 0);
        ct__set_history(out, nd, 0);
    }
    ctc_ctx_free(c);
    return out;
fail:
    ctc_ctx_free(c);
    return NULL;
}

CT_API ct_tensor *ct_nn_ctc_loss(const ct_tensor *log_probs, const ct_tensor *targets, const ct_tensor *input_lengths,
                                 const ct_tensor *target_lengths, int64_t blank, ct_reduction reduction,
                                 bool zero_infinity) {
    const char *op = "ctc_loss";
    CT_CHECK_ARG(op, log_probs);
    CT_CHECK_ARG(op, targets);
    CT_CHECK_ARG(op, input_lengths);
    CT_CHECK_ARG(op, target_lengths);
    if (reduction != CT_REDUCTION_MEAN && reduction != CT_REDUCTION_SUM && reduction != CT_REDUCTION_NONE)
        return ct__err(CT_ERR_ARG, "ctc_loss: %d is not a valid value for reduction", (int)reduction);
    if (log_probs->ndim != 2 && log_probs->ndim != 3)
        return ct__err(CT_ERR_SHAPE, "ctc_loss: Expected 3-dimensional tensor, but got %d-dimensional tensor for "
                       "argument #1 'log_probs' (or 2-D unbatched)", log_probs->ndim);
    if (log_probs->dtype != CT_FLOAT32 && log_probs->dtype != CT_FLOAT64)
        return ct__err(CT_ERR_DTYPE, "ctc_loss: \"ctc_loss_cpu\" not implemented for '%s'",
                       ct__scalar_type_name(log_probs->dtype));
    bool batched = log_probs->ndim == 3;
    BEGIN
    ct_tensor *lp = batched ? (ct_tensor *)log_probs : ct_unsqueeze(log_probs, 1);
    ct_tensor *res = lp ? ctc_nll(lp, targets, input_lengths, target_lengths, blank, zero_infinity) : NULL;
    if (res && zero_infinity)
        res = ct_where(ct_eq(res, ct_scalar_tensor(INFINITY, res->dtype)), ct_zeros(0, NULL, res->dtype), res);
    if (res) {
        if (reduction == CT_REDUCTION_MEAN) {
            ct_tensor *tl = ct_clamp_scalar(ct_reshape(ct_to_dtype(target_lengths, res->dtype), 1, (int64_t[]){-1}),
                                            1.0, INFINITY);
            r_ = ct_mean(ct_div(res, tl));
        } else if (reduction == CT_REDUCTION_SUM) r_ = ct_sum(res);
        else r_ = batched ? res : ct_squeeze_dim(res, 0);
    }
    END
}
