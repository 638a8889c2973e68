/* nn.init: in-place parameter initialisation with torch's formulas and draws, so the
 * same seed gives the same values (see ctorch/init.h). Everything runs with grad mode
 * off (torch's no_grad) in a private scope. */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/init.h"

/* runs body with grad off inside a scope; body sets rc */
#define NOGRAD_BEGIN                                  \
    if (ct_scope_begin()) return ct_last_status();    \
    bool prev_ = ct_set_grad_enabled(false);          \
    int rc = 0;
#define NOGRAD_END                                    \
    ct_set_grad_enabled(prev_);                       \
    ct_scope_end();                                   \
    return rc;

static int check_t(const char *op, const ct_tensor *t) {
    CT_CHECK_ARG_S(op, t);
    return 0;
}

static int check_float(const char *op, const ct_tensor *t) {
    if (!ct_dtype_is_floating(t->dtype) && !ct_dtype_is_complex(t->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: expected a floating point tensor, got %s", op, ct_dtype_name(t->dtype));
    return 0;
}

CT_API double ct_nn_init_calculate_gain(const char *nl, double param) {
    if (!nl) {
        ct__errs(CT_ERR_ARG, "calculate_gain: Unsupported nonlinearity None");
        return NAN;
    }
    static const char *linear[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                                   "conv_transpose3d", "sigmoid"};
    for (size_t k = 0; k < sizeof linear / sizeof *linear; k++)
        if (!strcmp(nl, linear[k])) return 1.0;
    if (!strcmp(nl, "tanh")) return 5.0 / 3;
    if (!strcmp(nl, "relu")) return sqrt(2.0);
    if (!strcmp(nl, "leaky_relu")) {
        double s = isnan(param) ? 0.01 : param;
        return sqrt(2.0 / (1 + s * s));
    }
    if (!strcmp(nl, "selu")) return 3.0 / 4;
    ct__errs(CT_ERR_ARG, "calculate_gain: Unsupported nonlinearity %s", nl);
    return NAN;
}

CT_API int ct_nn_init_uniform_(ct_tensor *t, double a, double b, ct_generator *gen) {
    if (check_t("uniform_", t)) return ct_last_status();
    bool prev = ct_set_grad_enabled(false);
    int rc = ct_uniform_(t, a, b, gen);
    ct_set_grad_enabled(prev);
    return rc;
}

CT_API int ct_nn_init_normal_(ct_tensor *t, double mean, double std, ct_generator *gen) {
    if (check_t("normal_", t)) return ct_last_status();
    bool prev = ct_set_grad_enabled(false);
    int rc = ct_normal_(t, mean, std, gen);
    ct_set_grad_enabled(prev);
    return rc;
}

CT_API int ct_nn_init_constant_(ct_tensor *t, double val) {
    if (check_t("constant_", t)) return ct_last_status();
    bool prev = ct_set_grad_enabled(false);
    int rc = ct_fill_(t, val);
    ct_set_grad_enabled(prev);
    return rc;
}
CT_API int ct_nn_init_ones_(ct_tensor *t) { return ct_nn_init_constant_(t, 1.0); }
CT_API int ct_nn_init_zeros_(ct_tensor *t) {
    if (check_t("zeros_", t)) return ct_last_status();
    bool prev = ct_set_grad_enabled(false);
    int rc = ct_zero_(t);
    ct_set_grad_enabled(prev);
    return rc;
}

CT_API int ct_nn_init_eye_(ct_tensor *t) {
    if (check_t("eye_", t)) return ct_last_status();
    if (t->ndim != 2) return ct__errs(CT_ERR_SHAPE, "eye_: Only tensors with 2 dimensions are supported, got %s",
                                      CT_SHAPESTR(t));
    NOGRAD_BEGIN
    rc = ct_copy_(t, ct_eye(t->sizes[0], t->sizes[1], t->dtype));
    NOGRAD_END
}

CT_API int ct_nn_init_dirac_(ct_tensor *t, int64_t groups) {
    if (check_t("dirac_", t)) return ct_last_status();
    int nd = t->ndim;
    if (nd < 3 || nd > 5)
        return ct__errs(CT_ERR_SHAPE, "dirac_: Only tensors with 3, 4, or 5 dimensions are supported, got %s",
                        CT_SHAPESTR(t));
    if (groups <= 0 || t->sizes[0] % groups != 0)
        return ct__errs(CT_ERR_ARG, "dirac_: dim 0 must be divisible by groups (%lld), got %s", (long long)groups,
                        CT_SHAPESTR(t));
    int64_t per = t->sizes[0] / groups, mind = per < t->sizes[1] ? per : t->sizes[1];
    NOGRAD_BEGIN
    rc = ct_zero_(t);
    for (int64_t g = 0; !rc && g < groups; g++)
        for (int64_t d = 0; !rc && d < mind; d++) {
            ct_tensor *e = ct_select(ct_select(t, 0, g * per + d), 0, d);
            for (int k = 2; k < nd && e; k++) e = ct_select(e, 0, t->sizes[k] / 2);
            rc = e ? ct_fill_(e, 1.0) : ct_last_status();
        }
    NOGRAD_END
}

/* torch's _calculate_fan_in_and_fan_out */
static int fans(const char *op, const ct_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim < 2)
        return ct__errs(CT_ERR_SHAPE, "%s: Fan in and fan out can not be computed for tensor with fewer than 2 "
                        "dimensions (got %s)", op, CT_SHAPESTR(t));
    int64_t rf = 1;
    for (int d = 2; d < t->ndim; d++) rf *= t->sizes[d];
    *fan_in = (double)(t->sizes[1] * rf);
    *fan_out = (double)(t->sizes[0] * rf);
    return 0;
}

static int xavier(const char *op, ct_tensor *t, double gain, ct_generator *gen, bool uniform) {
    if (check_t(op, t)) return ct_last_status();
    double fi = 0, fo = 0;
    if (fans(op, t, &fi, &fo)) return ct_last_status();
    if (fi + fo == 0) return ct__errs(CT_ERR_ARG, "%s: float division by zero (fan_in + fan_out is 0 for %s)", op,
                                      CT_SHAPESTR(t));
    double std = gain * sqrt(2.0 / (fi + fo));
    if (uniform) {
        double a = sqrt(3.0) * std;
        return ct_nn_init_uniform_(t, -a, a, gen);
    }
    return ct_nn_init_normal_(t, 0.0, std, gen);
}
CT_API int ct_nn_init_xavier_uniform_(ct_tensor *t, double gain, ct_generator *gen) {
    return xavier("xavier_uniform_", t, gain, gen, true);
}
CT_API int ct_nn_init_xavier_normal_(ct_tensor *t, double gain, ct_generator *gen) {
    return xavier("xavier_normal_", t, gain, gen, false);
}

static int kaiming(const char *op, ct_tensor *t, double a, const char *mode, const char *nl, ct_generator *gen,
                   bool uniform) {
    if (check_t(op, t)) return ct_last_status();
    if (!mode) mode = "fan_in";
    if (!nl) nl = "leaky_relu";
    for (int d = 0; d < t->ndim; d++)
        if (t->sizes[d] == 0) return 0; /* torch: "Initializing zero-element tensors is a no-op" */
    if (strcmp(mode, "fan_in") && strcmp(mode, "fan_out"))
        return ct__errs(CT_ERR_ARG, "%s: Mode %s not supported, please use one of ['fan_in', 'fan_out']", op, mode);
    double fi = 0, fo = 0;
    if (fans(op, t, &fi, &fo)) return ct_last_status();
    double fan = strcmp(mode, "fan_in") ? fo : fi;
    double gain = ct_nn_init_calculate_gain(nl, a);
    if (isnan(gain)) return ct__errs(CT_ERR_ARG, "%s: Unsupported nonlinearity %s", op, nl);
    double std = gain / sqrt(fan);
    if (uniform) {
        double bound = sqrt(3.0) * std;
        return ct_nn_init_uniform_(t, -bound, bound, gen);
    }
    return ct_nn_init_normal_(t, 0.0, std, gen);
}
CT_API int ct_nn_init_kaiming_uniform_(ct_tensor *t, double a, const char *mode, const char *nl, ct_generator *gen) {
    return kaiming("kaiming_uniform_", t, a, mode, nl, gen, true);
}
CT_API int ct_nn_init_kaiming_normal_(ct_tensor *t, double a, const char *mode, const char *nl, ct_generator *gen) {
    return kaiming("kaiming_normal_", t, a, mode, nl, gen, false);
}

/* ---- trunc_normal_: torch 2.x's _no_grad_trunc_normal_, op for op ---- */
static double norm_cdf(double x) { return (1.0 + erf(x / sqrt(2.0))) / 2.0; }

static bool any_true(const ct_tensor *mask) {
    ct_tensor *a = ct_any(mask, 0, NULL, false);
    return a && ct_item(a) != 0;
}

/* log_pdf(c) - log_peak computed in place as torch does:
 * c.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak) */
static ct_tensor *log_pdf(const ct_tensor *c, double mean, double std, double log_peak) {
    ct_tensor *z = ct_div_scalar(ct_sub_scalar(c, mean), std);
    return ct_sub_scalar(ct_mul_scalar(ct_mul(z, z), -0.5), log_peak);
}

CT_API int ct_nn_init_trunc_normal_(ct_tensor *t, double mean, double std, double a, double b, ct_generator *gen) {
    if (check_t("trunc_normal_", t) || check_float("trunc_normal_", t)) return ct_last_status();
    if (ct_dtype_is_complex(t->dtype))
        return ct__errs(CT_ERR_DTYPE, "trunc_normal_: not implemented for %s", ct_dtype_name(t->dtype));
    double p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std);
    NOGRAD_BEGIN
    if (p > 0.3) {
        /* the bounds as the tensor's dtype holds them */
        double lo = ct_item(ct_scalar_tensor(a, t->dtype)), hi = ct_item(ct_scalar_tensor(b, t->dtype));
        rc = ct_normal_(t, mean, std, gen);
        ct_tensor *result = t;
        for (int it = 0; !rc; it++) {
            ct_tensor *mask = ct_logical_or(ct_lt(result, ct_scalar_tensor(lo, t->dtype)),
                                            ct_gt(result, ct_scalar_tensor(hi, t->dtype)));
            if (!mask) { rc = ct_last_status(); break; }
            if (!any_true(mask)) break;
            ct_tensor *fresh = ct_empty_like(result);
            if (!fresh || (rc = ct_normal_(fresh, mean, std, gen))) { rc = rc ? rc : ct_last_status(); break; }
            result = ct_where(mask, fresh, result);
            if (!result) { rc = ct_last_status(); break; }
            if (it > 10000) { rc = ct__errs(CT_ERR_RUNTIME, "trunc_normal_: sampling did not converge"); break; }
        }
        if (!rc && result != t) rc = ct_copy_(t, result);
    } else {
        double mode = fmax(a, fmin(mean, b));
        double log_peak = -0.5 * ((mode - mean) / std) * ((mode - mean) / std);
        ct_tensor *accept = ct_empty_like(t);
        rc = accept ? ct_uniform_(t, a, b, gen) : ct_last_status();
        ct_tensor *cand = rc ? NULL : log_pdf(t, mean, std, log_peak), *pending = NULL;
        if (!rc && cand && !(rc = ct_uniform_(accept, 0.0, 1.0, gen))) pending = ct_gt(ct_log(accept), cand);
        if (!rc && !pending) rc = ct_last_status();
        if (!rc && any_true(pending)) {
            ct_tensor *result = t, *cbuf = ct_empty_like(t);
            for (int it = 0; !rc; it++) {
                if (!cbuf || (rc = ct_uniform_(cbuf, a, b, gen))) { rc = rc ? rc : ct_last_status(); break; }
                result = ct_where(pending, cbuf, result);
                cand = log_pdf(cbuf, mean, std, log_peak);
                if (!cand || (rc = ct_uniform_(accept, 0.0, 1.0, gen))) { rc = rc ? rc : ct_last_status(); break; }
                pending = ct_where(pending, ct_gt(ct_log(accept), cand), pending);
                if (!pending || !result) { rc = ct_last_status(); break; }
                if (!any_true(pending)) break;
                if (it > 100000) { rc = ct__errs(CT_ERR_RUNTIME, "trunc_normal_: sampling did not converge"); break; }
            }
            if (!rc) rc = ct_copy_(t, result);
        }
    }
    NOGRAD_END
}

/* ---- orthogonal_ ---- */
/* Householder QR of the m x n (m >= n) column-major-free row-major matrix A: writes the
 * reduced Q (m x n, row-major) and the diagonal of R (LAPACK's geqrf conventions). */
static void householder_qr(int64_t m, int64_t n, double *A, double *Q, double *rdiag, double *tau, double *v) {
    for (int64_t j = 0; j < n; j++) {
        double alpha = A[j * n + j], xnorm = 0;
        for (int64_t i = j + 1; i < m; i++) xnorm = hypot(xnorm, A[i * n + j]);
        if (xnorm == 0) {
            tau[j] = 0;
            rdiag[j] = alpha;
            for (int64_t i = j; i < m; i++) v[j * m + i] = i == j;
            continue;
        }
        double beta = -copysign(hypot(alpha, xnorm), alpha);
        tau[j] = (beta - alpha) / beta;
        double scale = 1.0 / (alpha - beta);
        v[j * m + j] = 1;
        for (int64_t i = j + 1; i < m; i++) v[j * m + i] = A[i * n + j] * scale;
        rdiag[j] = beta;
        /* A[j:, j+1:] -= tau v (v^T A[j:, j+1:]) */
        for (int64_t c = j + 1; c < n; c++) {
            double s = 0;
            for (int64_t i = j; i < m; i++) s += v[j * m + i] * A[i * n + c];
            s *= tau[j];
            for (int64_t i = j; i < m; i++) A[i * n + c] -= s * v[j * m + i];
        }
    }
    /* Q = H_0 ... H_{n-1} I[:, :n], applied from the last reflector */
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++) Q[i * n + c] = i == c;
    for (int64_t j = n - 1; j >= 0; j--) {
        if (tau[j] == 0) continue;
        for (int64_t c = 0; c < n; c++) {
            double s = 0;
            for (int64_t i = j; i < m; i++) s += v[j * m + i] * Q[i * n + c];
            s *= tau[j];
            for (int64_t i = j; i < m; i++) Q[i * n + c] -= s * v[j * m + i];
        }
    }
}

CT_API int ct_nn_init_orthogonal_(ct_tensor *t, double gain, ct_generator *gen) {
    if (check_t("orthogonal_", t)) return ct_last_status();
    if (t->ndim < 2)
        return ct__errs(CT_ERR_SHAPE, "orthogonal_: Only tensors with 2 or more dimensions are supported, got %s",
                        CT_SHAPESTR(t));
    if (t->dtype != CT_FLOAT32 && t->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "orthogonal_: linalg.qr is not implemented for %s", ct_dtype_name(t->dtype));
    if (t->numel == 0) return 0;
    int64_t rows = t->sizes[0], cols = t->numel / rows;
    bool tr = rows < cols;
    int64_t m = tr ? cols : rows, n = tr ? rows : cols;
    NOGRAD_BEGIN
    double *buf = malloc(sizeof(double) * (size_t)(2 * m * n + 2 * n + m * n));
    double *A = buf, *Q = A + m * n, *rd = Q + m * n, *tau = rd + n, *v = tau + n;
    ct_tensor *flat = ct_empty(2, (int64_t[]){rows, cols}, t->dtype);
    if (!buf) rc = ct__errs(CT_ERR_OOM, "orthogonal_: out of memory");
    else rc = flat ? ct_normal_(flat, 0.0, 1.0, gen) : ct_last_status();
    ct_tensor *f64 = rc ? NULL : ct_contiguous(ct_to_dtype(flat, CT_FLOAT64));
    if (!rc && !f64) rc = ct_last_status();
    if (!rc) {
        const double *src = ct__data(f64);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                if (tr) A[c * n + r] = src[r * cols + c];
                else A[r * n + c] = src[r * cols + c];
            }
        householder_qr(m, n, A, Q, rd, tau, v);
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < n; c++) Q[i * n + c] *= (rd[c] > 0) - (rd[c] < 0);
        ct_tensor *q = ct_from_data(Q, 2, (int64_t[]){m, n}, CT_FLOAT64);
        if (tr) q = ct_t(q);
        q = ct_to_dtype(q, t->dtype); /* torch computes q in t's dtype, then copies and scales */
        ct_tensor *dst = ct_view(t, 2, (int64_t[]){rows, cols});
        rc = dst ? ct_copy_(dst, q) : ct_last_status();
        if (!rc) rc = ct_mul_(t, ct_float(gain));
    }
    free(buf);
    NOGRAD_END
}

CT_API int ct_nn_init_sparse_(ct_tensor *t, double sparsity, double std, ct_generator *gen) {
    if (check_t("sparse_", t)) return ct_last_status();
    if (t->ndim != 2)
        return ct__errs(CT_ERR_SHAPE, "sparse_: Only tensors with 2 dimensions are supported, got %s", CT_SHAPESTR(t));
    int64_t rows = t->sizes[0], cols = t->sizes[1];
    int64_t nz = (int64_t)ceil(sparsity * (double)rows);
    NOGRAD_BEGIN
    rc = ct_normal_(t, 0.0, std, gen);
    for (int64_t c = 0; !rc && c < cols; c++) {
        ct_tensor *perm = ct_randperm(rows, CT_INT64, NULL);
        if (!perm) { rc = ct_last_status(); break; }
        /* row_indices[:num_zeros] with Python's slice rules */
        int64_t k = nz < 0 ? (rows + nz > 0 ? rows + nz : 0) : (nz < rows ? nz : rows);
        if (k == 0) continue;
        ct_tensor *idx = ct_narrow(perm, 0, 0, k);
        ct_tensor *col = ct_select(t, 1, c);
        rc = col && idx ? ct_copy_(col, ct_index_fill(col, 0, idx, 0.0)) : ct_last_status();
    }
    NOGRAD_END
}
