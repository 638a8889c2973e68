/* L-BFGS (torch.optim.LBFGS): the same two-loop recursion, history handling, stopping
 * tests and strong-Wolfe line search as PyTorch's, step for step. The flat parameter,
 * gradient and direction vectors are kept in double (exact for float64 parameters; for
 * float32 parameters PyTorch computes them in float32, so results agree to float32
 * rounding). Parameters are updated in their own dtype. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dispatch.h"
#include "optim/optim_internal.h"

struct ct__lbfgs_state {
    int64_t n;                     /* total number of elements */
    double func_evals, n_iter;     /* over all steps */
    double *d, *prev_flat_grad;    /* [n]; valid when has_d / has_prev */
    bool has_d, has_prev, has_t;
    double t, H_diag, prev_loss;
    double **old_dirs, **old_stps; /* history, oldest first */
    double *ro;
    int n_old, cap;
    double *al; /* [cap] scratch of the two-loop recursion */
};

void ct__lbfgs_free(struct ct__lbfgs_state *s) {
    if (!s) return;
    free(s->d), free(s->prev_flat_grad), free(s->ro), free(s->al);
    for (int i = 0; i < s->n_old; i++) free(s->old_dirs[i]), free(s->old_stps[i]);
    free(s->old_dirs), free(s->old_stps);
    free(s);
}

static double dot(const double *a, const double *b, int64_t n) {
    double r = 0;
    for (int64_t i = 0; i < n; i++) r += a[i] * b[i];
    return r;
}
static double abs_max(const double *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m || isnan(a[i]) ? fabs(a[i]) : m;
    return m;
}

/* ---- flat views of the parameters ---- */
static int check_params(const ct_optimizer *opt, int64_t *total) {
    *total = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p;
        if (p->dtype != CT_FLOAT32 && p->dtype != CT_FLOAT64)
            return ct__errs(CT_ERR_DTYPE, "LBFGS: float32 and float64 parameters are supported, got %s",
                            ct_dtype_name(p->dtype));
        if (!ct__is_contiguous(p)) return ct__errs(CT_ERR_ARG, "LBFGS: parameters must be contiguous");
        n += p->numel;
    }
    *total = n;
    return 0;
}

/* torch's _gather_flat_grad: gradients (zeros where none), negated when maximizing. */
static int gather_grad(const ct_optimizer *opt, double *out, bool maximize) {
    int64_t off = 0;
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p, *g = ct_grad(p);
        int64_t n = p->numel;
        if (!g) {
            memset(out + off, 0, sizeof(double) * (size_t)n);
        } else {
            if (g->numel != n)
                return ct__errs(CT_ERR_SHAPE, "LBFGS: gradient of size %s does not match parameter of size %s",
                                CT_SHAPESTR(g), CT_SHAPESTR(p));
            ct_tensor *c = ct__empty_raw(p->ndim, p->sizes, CT_FLOAT64);
            if (!c || ct__copy_raw(c, g)) {
                ct_release(c);
                return ct_last_status();
            }
            memcpy(out + off, ct__data(c), sizeof(double) * (size_t)n);
            ct_release(c);
        }
        if (maximize)
            for (int64_t j = 0; j < n; j++) out[off + j] = -out[off + j];
        off += n;
    }
    return 0;
}

/* p += step * update, in each parameter's dtype (torch's _add_grad). */
static void add_grad(ct_optimizer *opt, double step, const double *u) {
    int64_t off = 0;
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p;
        int64_t n = p->numel;
        if (p->dtype == CT_FLOAT32) {
            float *P = ct__data(p), a = (float)step;
            for (int64_t j = 0; j < n; j++) P[j] = P[j] + a * (float)u[off + j];
        } else {
            double *P = ct__data(p);
            for (int64_t j = 0; j < n; j++) P[j] = P[j] + step * u[off + j];
        }
        ct__bump_version(p);
        off += n;
    }
}

/* Parameters to / from a flat double copy (exact for float32 and float64). */
static void get_params(const ct_optimizer *opt, double *x) {
    int64_t off = 0;
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p;
        for (int64_t j = 0; j < p->numel; j++)
            x[off + j] = p->dtype == CT_FLOAT32 ? ((float *)ct__data(p))[j] : ((double *)ct__data(p))[j];
        off += p->numel;
    }
}
static void set_params(ct_optimizer *opt, const double *x) {
    int64_t off = 0;
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p;
        for (int64_t j = 0; j < p->numel; j++) {
            if (p->dtype == CT_FLOAT32) ((float *)ct__data(p))[j] = (float)x[off + j];
            else ((double *)ct__data(p))[j] = x[off + j];
        }
        ct__bump_version(p);
        off += p->numel;
    }
}

/* ---- the closure, with grad mode on and the loss negated when maximizing ---- */
typedef struct {
    ct_optimizer *opt;
    double (*fn)(void *);
    void *user;
    bool maximize;
} closure_t;

static double call(const closure_t *c) {
    bool prev = ct_set_grad_enabled(true);
    ct_clear_error();
    double loss = c->fn(c->user);
    ct_set_grad_enabled(prev);
    if (isnan(loss) && ct_last_status() != CT_OK) return NAN;
    return c->maximize ? -loss : loss;
}

/* torch's _directional_evaluate: loss and gradient at x + t d, parameters restored to x. */
static int dir_eval(const closure_t *c, const double *x, double t, const double *d, double *f, double *g) {
    add_grad(c->opt, t, d);
    *f = call(c);
    int st = isnan(*f) && ct_last_status() != CT_OK ? ct_last_status() : gather_grad(c->opt, g, c->maximize);
    set_params(c->opt, x);
    return st;
}

static double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, const double *bounds) {
    double lo, hi;
    if (bounds) lo = bounds[0], hi = bounds[1];
    else if (x1 <= x2) lo = x1, hi = x2;
    else lo = x2, hi = x1;
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
        double d2 = sqrt(d2_square), min_pos;
        if (x1 <= x2) min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
        else min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        double m = min_pos > lo ? min_pos : lo; /* min(max(min_pos, lo), hi) as Python */
        return m < hi ? m : hi;
    }
    return (lo + hi) / 2.0;
}

/* torch's _strong_wolfe. On entry g is the gradient at x (not modified); on return
 * *f_out, g_out (length n), *t_out and the number of evaluations. */
static int strong_wolfe(const closure_t *c, const double *x, double t, const double *d, double f, const double *g,
                        double gtd, double tolerance_change, int max_ls, int64_t n, double *f_out, double *g_out,
                        double *t_out, int *evals) {
    const double c1 = 1e-4, c2 = 0.9;
    double d_norm = abs_max(d, n);
    size_t bytes = sizeof(double) * (size_t)(n ? n : 1);
    double *g_new = malloc(bytes), *g_prev = malloc(bytes), *bg[2] = {malloc(bytes), malloc(bytes)};
    int st = 0;
    if (!g_new || !g_prev || !bg[0] || !bg[1]) {
        st = ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
        goto out;
    }
    double f_new;
    if ((st = dir_eval(c, x, t, d, &f_new, g_new))) goto out;
    int ls_func_evals = 1;
    double gtd_new = dot(g_new, d, n);
    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    memcpy(g_prev, g, bytes);
    bool done = false;
    int ls_iter = 0, nb = 0;
    double br[2] = {0, 0}, bf[2] = {0, 0}, bgtd[2] = {0, 0};
    while (ls_iter < max_ls) {
        if (f_new > (f + c1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev)) {
            nb = 2, br[0] = t_prev, br[1] = t, bf[0] = f_prev, bf[1] = f_new, bgtd[0] = gtd_prev, bgtd[1] = gtd_new;
            memcpy(bg[0], g_prev, bytes), memcpy(bg[1], g_new, bytes);
            break;
        }
        if (fabs(gtd_new) <= -c2 * gtd) {
            nb = 1, br[0] = t, bf[0] = f_new;
            memcpy(bg[0], g_new, bytes);
            done = true;
            break;
        }
        if (gtd_new >= 0) {
            nb = 2, br[0] = t_prev, br[1] = t, bf[0] = f_prev, bf[1] = f_new, bgtd[0] = gtd_prev, bgtd[1] = gtd_new;
            memcpy(bg[0], g_prev, bytes), memcpy(bg[1], g_new, bytes);
            break;
        }
        double bounds[2] = {t + 0.01 * (t - t_prev), t * 10};
        double tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds);
        t_prev = tmp, f_prev = f_new, gtd_prev = gtd_new;
        memcpy(g_prev, g_new, bytes);
        if ((st = dir_eval(c, x, t, d, &f_new, g_new))) goto out;
        ls_func_evals++;
        gtd_new = dot(g_new, d, n);
        ls_iter++;
    }
    if (ls_iter == max_ls) { /* reached the maximum number of line-search iterations */
        nb = 2, br[0] = 0, br[1] = t, bf[0] = f, bf[1] = f_new;
        memcpy(bg[0], g, bytes), memcpy(bg[1], g_new, bytes);
        /* torch leaves bracket_gtd as it was (or unset); it is only read by the zoom
         * loop below, which does not run when ls_iter == max_ls */
    }
    bool insuf_progress = false;
    int low = 0, high = 1;
    if (nb == 2 && !(bf[0] <= bf[1])) low = 1, high = 0;
    if (nb == 1) low = 0, high = 0;
    while (!done && ls_iter < max_ls) {
        if (fabs(br[1] - br[0]) * d_norm < tolerance_change) break;
        t = cubic_interpolate(br[0], bf[0], bgtd[0], br[1], bf[1], bgtd[1], NULL);
        double bmax = br[0] > br[1] ? br[0] : br[1], bmin = br[0] < br[1] ? br[0] : br[1];
        double eps = 0.1 * (bmax - bmin);
        double near = bmax - t < t - bmin ? bmax - t : t - bmin;
        if (near < eps) {
            if (insuf_progress || t >= bmax || t <= bmin) {
                t = fabs(t - bmax) < fabs(t - bmin) ? bmax - eps : bmin + eps;
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        if ((st = dir_eval(c, x, t, d, &f_new, g_new))) goto out;
        ls_func_evals++;
        gtd_new = dot(g_new, d, n);
        ls_iter++;
        if (f_new > (f + c1 * t * gtd) || f_new >= bf[low]) {
            br[high] = t, bf[high] = f_new, bgtd[high] = gtd_new;
            memcpy(bg[high], g_new, bytes);
            if (bf[0] <= bf[1]) low = 0, high = 1;
            else low = 1, high = 0;
        } else {
            if (fabs(gtd_new) <= -c2 * gtd) {
                done = true;
            } else if (gtd_new * (br[high] - br[low]) >= 0) {
                br[high] = br[low], bf[high] = bf[low], bgtd[high] = bgtd[low];
                memcpy(bg[high], bg[low], bytes);
            }
            br[low] = t, bf[low] = f_new, bgtd[low] = gtd_new;
            memcpy(bg[low], g_new, bytes);
        }
    }
    *t_out = br[low], *f_out = bf[low];
    memcpy(g_out, bg[low], bytes);
    *evals = ls_func_evals;
out:
    free(g_new), free(g_prev), free(bg[0]), free(bg[1]);
    return st;
}

/* Forgets the oldest (y, s) pair of the history (torch's pop(0)). */
static void drop_oldest(struct ct__lbfgs_state *s) {
    free(s->old_dirs[0]), free(s->old_stps[0]);
    memmove(s->old_dirs, s->old_dirs + 1, sizeof(double *) * (size_t)(s->n_old - 1));
    memmove(s->old_stps, s->old_stps + 1, sizeof(double *) * (size_t)(s->n_old - 1));
    memmove(s->ro, s->ro + 1, sizeof(double) * (size_t)(s->n_old - 1));
    s->n_old--;
}

static struct ct__lbfgs_state *state_of(ct_optimizer *opt, int64_t n, int history) {
    struct ct__lbfgs_state *s = opt->lbfgs;
    if (s && s->n == n && s->cap == history) return s;
    if (s && s->n != n) {
        ct__errs(CT_ERR_SHAPE, "LBFGS: the parameters changed size since the last step");
        return NULL;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return ct__err(CT_ERR_OOM, "LBFGS: out of memory");
        s->n = n;
        opt->lbfgs = s;
    }
    /* (re)size the history arrays to history_size, keeping the newest entries */
    while (s->n_old > history) drop_oldest(s);
    size_t c = (size_t)(history > 0 ? history : 1);
    double **a = realloc(s->old_dirs, sizeof(double *) * c), **b = a ? realloc(s->old_stps, sizeof(double *) * c) : NULL;
    if (a) s->old_dirs = a;
    if (b) s->old_stps = b;
    double *ro = b ? realloc(s->ro, sizeof(double) * c) : NULL, *al = ro ? realloc(s->al, sizeof(double) * c) : NULL;
    if (ro) s->ro = ro;
    if (al) s->al = al;
    if (!a || !b || !ro || !al) return ct__err(CT_ERR_OOM, "LBFGS: out of memory");
    s->cap = history;
    return s;
}

double ct__lbfgs_step(ct_optimizer *opt, double (*fn)(void *), void *user) {
    const opts *o = &opt->groups[0];
    closure_t c = {opt, fn, user, o->maximize};
    if (opt->n_params == 0) return call(&c);
    int64_t n = 0;
    if (check_params(opt, &n)) return NAN;
    double lr = o->lr, tolerance_grad = o->tolerance_grad, tolerance_change = o->tolerance_change;
    int max_iter = (int)o->max_iter, max_eval = (int)o->max_eval, history = (int)o->history_size;
    struct ct__lbfgs_state *s = state_of(opt, n, history);
    if (!s) return NAN;
    size_t bytes = sizeof(double) * (size_t)(n ? n : 1);
    double *flat_grad = malloc(bytes), *x_init = o->strong_wolfe ? malloc(bytes) : NULL;
    if (!flat_grad || (o->strong_wolfe && !x_init)) {
        free(flat_grad), free(x_init);
        ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
        return NAN;
    }
    if (!s->d) s->d = malloc(bytes);
    if (!s->prev_flat_grad) s->prev_flat_grad = malloc(bytes);
    double orig_loss = NAN;
    int st = 0;
    if (!s->d || !s->prev_flat_grad) {
        st = ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
        goto out;
    }
    bool prev_grad_mode = ct_set_grad_enabled(false);
    double loss = call(&c);
    orig_loss = o->maximize ? -loss : loss;
    if (isnan(loss) && ct_last_status() != CT_OK) {
        st = ct_last_status();
        goto restore;
    }
    int current_evals = 1;
    s->func_evals += 1;
    if ((st = gather_grad(opt, flat_grad, o->maximize))) goto restore;
    if (abs_max(flat_grad, n) <= tolerance_grad) goto restore; /* optimal already */
    double *d = s->d;
    int n_iter = 0;
    while (n_iter < max_iter) {
        n_iter++;
        s->n_iter += 1;
        if (s->n_iter == 1) {
            for (int64_t i = 0; i < n; i++) d[i] = -flat_grad[i];
            for (int i = 0; i < s->n_old; i++) free(s->old_dirs[i]), free(s->old_stps[i]);
            s->n_old = 0;
            s->H_diag = 1;
            s->has_d = true;
        } else {
            /* y = g - g_prev, s = d t; keep the pair if the curvature condition holds */
            double *y = malloc(bytes), *sv = malloc(bytes);
            if (!y || !sv) {
                free(y), free(sv);
                st = ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
                goto restore;
            }
            for (int64_t i = 0; i < n; i++) y[i] = flat_grad[i] - s->prev_flat_grad[i], sv[i] = d[i] * s->t;
            double ys = dot(y, sv, n);
            if (ys > 1e-10 && s->cap > 0) {
                if (s->n_old == s->cap) drop_oldest(s);
                s->old_dirs[s->n_old] = y, s->old_stps[s->n_old] = sv, s->ro[s->n_old] = 1.0 / ys;
                s->n_old++;
                s->H_diag = ys / dot(y, y, n);
            } else {
                free(y), free(sv);
            }
            /* two-loop recursion: d = -H g */
            int num_old = s->n_old;
            double *q = d; /* d is overwritten by q, then r, as torch's d = r = q * H_diag */
            for (int64_t i = 0; i < n; i++) q[i] = -flat_grad[i];
            for (int i = num_old - 1; i >= 0; i--) {
                s->al[i] = dot(s->old_stps[i], q, n) * s->ro[i];
                for (int64_t j = 0; j < n; j++) q[j] += -s->al[i] * s->old_dirs[i][j];
            }
            for (int64_t j = 0; j < n; j++) q[j] *= s->H_diag;
            for (int i = 0; i < num_old; i++) {
                double be_i = dot(s->old_dirs[i], q, n) * s->ro[i];
                for (int64_t j = 0; j < n; j++) q[j] += (s->al[i] - be_i) * s->old_stps[i][j];
            }
        }
        memcpy(s->prev_flat_grad, flat_grad, bytes);
        s->has_prev = true;
        s->prev_loss = loss;
        /* step length */
        if (s->n_iter == 1) {
            double sum = 0;
            for (int64_t i = 0; i < n; i++) sum += fabs(flat_grad[i]);
            double inv = 1.0 / sum;
            s->t = (1.0 < inv ? 1.0 : inv) * lr;
        } else {
            s->t = lr;
        }
        s->has_t = true;
        double gtd = dot(flat_grad, d, n);
        if (gtd > -tolerance_change) break; /* directional derivative below tolerance */
        int ls_func_evals = 0;
        bool opt_cond = false;
        if (o->strong_wolfe) {
            get_params(opt, x_init);
            double t_new = s->t;
            if ((st = strong_wolfe(&c, x_init, s->t, d, loss, flat_grad, gtd, tolerance_change,
                                   max_eval - current_evals, n, &loss, flat_grad, &t_new, &ls_func_evals)))
                goto restore;
            s->t = t_new;
            add_grad(opt, s->t, d);
            opt_cond = abs_max(flat_grad, n) <= tolerance_grad;
        } else {
            add_grad(opt, s->t, d);
            if (n_iter != max_iter) {
                loss = call(&c);
                if (isnan(loss) && ct_last_status() != CT_OK) {
                    st = ct_last_status();
                    goto restore;
                }
                if ((st = gather_grad(opt, flat_grad, o->maximize))) goto restore;
                opt_cond = abs_max(flat_grad, n) <= tolerance_grad;
                ls_func_evals = 1;
            }
        }
        current_evals += ls_func_evals;
        s->func_evals += ls_func_evals;
        if (n_iter == max_iter) break;
        if (current_evals >= max_eval) break;
        if (opt_cond) break;
        double dmax = 0;
        for (int64_t i = 0; i < n; i++) dmax = fabs(d[i] * s->t) > dmax ? fabs(d[i] * s->t) : dmax;
        if (dmax <= tolerance_change) break;
        if (fabs(loss - s->prev_loss) < tolerance_change) break;
    }
restore:
    ct_set_grad_enabled(prev_grad_mode);
out:
    free(flat_grad), free(x_init);
    return st ? NAN : orig_loss;
}

/* ---- state dict: "state.0.<name>" as torch keeps it on the first parameter ---- */
static int put_vec(ct_dict *d, const char *key, const double *v, int64_t n) {
    ct_tensor *t = ct_from_data(v, 1, (int64_t[]){n}, CT_FLOAT64);
    return t ? ct_dict_set(d, key, t) : ct_last_status();
}
static int put_num(ct_dict *d, const char *key, double v) {
    ct_tensor *t = ct_scalar_tensor(v, CT_FLOAT64);
    return t ? ct_dict_set(d, key, t) : ct_last_status();
}

int ct__lbfgs_state_dict(const ct_optimizer *opt, ct_dict *d) {
    const struct ct__lbfgs_state *s = opt->lbfgs;
    if (!s) return 0;
    ct_scope_begin();
    char key[64];
    int st = put_num(d, "state.0.func_evals", s->func_evals);
    if (!st) st = put_num(d, "state.0.n_iter", s->n_iter);
    if (!st && s->has_d) st = put_vec(d, "state.0.d", s->d, s->n);
    if (!st && s->has_t) st = put_num(d, "state.0.t", s->t);
    if (!st) st = put_num(d, "state.0.H_diag", s->H_diag);
    if (!st && s->has_prev) st = put_vec(d, "state.0.prev_flat_grad", s->prev_flat_grad, s->n);
    if (!st && s->has_prev) st = put_num(d, "state.0.prev_loss", s->prev_loss);
    for (int i = 0; i < s->n_old && !st; i++) {
        snprintf(key, sizeof key, "state.0.old_dirs.%d", i);
        st = put_vec(d, key, s->old_dirs[i], s->n);
        snprintf(key, sizeof key, "state.0.old_stps.%d", i);
        if (!st) st = put_vec(d, key, s->old_stps[i], s->n);
        snprintf(key, sizeof key, "state.0.ro.%d", i);
        if (!st) st = put_num(d, key, s->ro[i]);
    }
    ct_scope_end();
    return st;
}

/* A float64 copy of d[key] with n elements into dst; 0 or status. */
static int get_vec(const ct_dict *d, const char *key, double *dst, int64_t n) {
    ct_tensor *t = ct_dict_get(d, key);
    if (!t) return ct_last_status();
    if (ct_numel(t) != n)
        return ct__errs(CT_ERR_SHAPE, "LBFGS load_state_dict: %s has %lld elements, the parameters %lld", key,
                        (long long)ct_numel(t), (long long)n);
    ct_tensor *c = ct_contiguous(ct_to_dtype(t, CT_FLOAT64));
    if (!c) return ct_last_status();
    memcpy(dst, ct__data(c), sizeof(double) * (size_t)n);
    return 0;
}

int ct__lbfgs_load_state_dict(ct_optimizer *opt, const ct_dict *d) {
    if (!ct_dict_contains(d, "state.0.n_iter")) { /* no step taken yet */
        ct__lbfgs_free(opt->lbfgs);
        opt->lbfgs = NULL;
        return 0;
    }
    int64_t n = 0;
    int st = check_params(opt, &n);
    if (st) return st;
    int hist = 0;
    char key[64];
    for (;; hist++) {
        snprintf(key, sizeof key, "state.0.old_dirs.%d", hist);
        if (!ct_dict_contains(d, key)) break;
    }
    int cap = (int)opt->groups[0].history_size;
    if (hist > cap)
        return ct__errs(CT_ERR_ARG, "LBFGS load_state_dict: %d history pairs, history_size is %d", hist, cap);
    ct__lbfgs_free(opt->lbfgs);
    opt->lbfgs = NULL;
    struct ct__lbfgs_state *s = state_of(opt, n, cap);
    if (!s) return ct_last_status();
    size_t bytes = sizeof(double) * (size_t)(n ? n : 1);
    s->d = malloc(bytes), s->prev_flat_grad = malloc(bytes);
    if (!s->d || !s->prev_flat_grad) return ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
    ct_scope_begin();
    s->func_evals = ct_item(ct_dict_get(d, "state.0.func_evals"));
    s->n_iter = ct_item(ct_dict_get(d, "state.0.n_iter"));
    s->H_diag = ct_dict_contains(d, "state.0.H_diag") ? ct_item(ct_dict_get(d, "state.0.H_diag")) : 1;
    if ((s->has_t = ct_dict_contains(d, "state.0.t"))) s->t = ct_item(ct_dict_get(d, "state.0.t"));
    if ((s->has_d = ct_dict_contains(d, "state.0.d"))) st = get_vec(d, "state.0.d", s->d, n);
    if (!st && (s->has_prev = ct_dict_contains(d, "state.0.prev_flat_grad"))) {
        st = get_vec(d, "state.0.prev_flat_grad", s->prev_flat_grad, n);
        if (!st) s->prev_loss = ct_item(ct_dict_get(d, "state.0.prev_loss"));
    }
    for (int i = 0; i < hist && !st; i++) {
        s->old_dirs[i] = malloc(bytes), s->old_stps[i] = malloc(bytes);
        s->n_old = i + 1;
        if (!s->old_dirs[i] || !s->old_stps[i]) {
            st = ct__errs(CT_ERR_OOM, "LBFGS: out of memory");
            break;
        }
        snprintf(key, sizeof key, "state.0.old_dirs.%d", i);
        st = get_vec(d, key, s->old_dirs[i], n);
        snprintf(key, sizeof key, "state.0.old_stps.%d", i);
        if (!st) st = get_vec(d, key, s->old_stps[i], n);
        snprintf(key, sizeof key, "state.0.ro.%d", i);
        if (!st) s->ro[i] = ct_item(ct_dict_get(d, key));
    }
    ct_scope_end();
    if (st) {
        ct__lbfgs_free(opt->lbfgs);
        opt->lbfgs = NULL;
    }
    return st;
}
