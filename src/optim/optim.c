/* Optimizers (include/ctorch/optim.h): SGD, Adam, AdamW, RMSprop, Adagrad with
 * parameter groups and state dicts. Each update is a fused loop that follows PyTorch's
 * single-tensor update (the torch.optim sources) operation by operation in the
 * parameter's precision (SGD and Adam/AdamW: one pass over all parameters, see
 * step_many; the others: one loop per parameter); step counts and bias corrections
 * are doubles as in Python. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <omp.h>

#include "core/dispatch.h"
#include "cpu/loops.h"
#include "optim/optim_internal.h"

static const char *const KIND_NAME[] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
                                        "RAdam", "LBFGS"};

static const struct {
    const char *name;
    size_t off;
    bool is_bool;
} OPTION[] = {
#define D(f) {#f, offsetof(opts, f), false}
#define B(f) {#f, offsetof(opts, f), true}
    D(lr), D(momentum), D(dampening), D(weight_decay), D(beta1), D(beta2), D(eps), D(alpha), D(lr_decay),
    D(initial_accumulator_value), D(rho), D(momentum_decay), D(initial_lr), D(max_iter), D(max_eval), D(tolerance_grad), D(tolerance_change),
    D(history_size), B(strong_wolfe), B(nesterov), B(maximize), B(amsgrad), B(centered),
    B(decoupled_weight_decay),
#undef D
#undef B
};
#define N_OPTION (int)(sizeof OPTION / sizeof OPTION[0])

static const char *const BUF_NAME[][N_BUF] = {
    [K_SGD] = {"momentum_buffer", NULL, NULL},
    [K_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [K_ADAMW] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [K_RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
    [K_ADAGRAD] = {"sum", NULL, NULL},
    [K_ADADELTA] = {"square_avg", "acc_delta", NULL},
    [K_ADAMAX] = {"exp_avg", "exp_inf", NULL},
    [K_NADAM] = {"exp_avg", "exp_avg_sq", NULL},
    [K_RADAM] = {"exp_avg", "exp_avg_sq", NULL},
    [K_LBFGS] = {NULL, NULL, NULL}, /* its state goes through ct__lbfgs_state_dict */
};
_Static_assert(sizeof BUF_NAME / sizeof BUF_NAME[0] == K_LBFGS + 1, "BUF_NAME: a row per optimizer kind");
_Static_assert(sizeof KIND_NAME / sizeof KIND_NAME[0] == K_LBFGS + 1, "KIND_NAME: a name per optimizer kind");

static int check_opts(kind k, const opts *o) {
    if (!(o->lr >= 0)) return ct__errs(CT_ERR_ARG, "Invalid learning rate: %g", o->lr);
    if (!(o->weight_decay >= 0)) return ct__errs(CT_ERR_ARG, "Invalid weight_decay value: %g", o->weight_decay);
    if (k == K_SGD) {
        if (!(o->momentum >= 0)) return ct__errs(CT_ERR_ARG, "Invalid momentum value: %g", o->momentum);
        if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
            return ct__errs(CT_ERR_ARG, "Nesterov momentum requires a momentum and zero dampening");
    }
    if (k == K_ADAM || k == K_ADAMW || k == K_ADAMAX || k == K_NADAM || k == K_RADAM) {
        if (!(o->eps >= 0)) return ct__errs(CT_ERR_ARG, "Invalid epsilon value: %g", o->eps);
        if (!(o->beta1 >= 0 && o->beta1 < 1)) return ct__errs(CT_ERR_ARG, "Invalid beta parameter at index 0: %g", o->beta1);
        if (!(o->beta2 >= 0 && o->beta2 < 1)) return ct__errs(CT_ERR_ARG, "Invalid beta parameter at index 1: %g", o->beta2);
    }
    if (k == K_RMSPROP) {
        if (!(o->eps >= 0)) return ct__errs(CT_ERR_ARG, "Invalid epsilon value: %g", o->eps);
        if (!(o->momentum >= 0)) return ct__errs(CT_ERR_ARG, "Invalid momentum value: %g", o->momentum);
        if (!(o->alpha >= 0)) return ct__errs(CT_ERR_ARG, "Invalid alpha value: %g", o->alpha);
    }
    if (k == K_ADADELTA) {
        if (!(o->rho >= 0 && o->rho <= 1)) return ct__errs(CT_ERR_ARG, "Invalid rho value: %g", o->rho);
        if (!(o->eps >= 0)) return ct__errs(CT_ERR_ARG, "Invalid epsilon value: %g", o->eps);
    }
    if (k == K_NADAM && !(o->momentum_decay >= 0))
        return ct__errs(CT_ERR_ARG, "Invalid momentum_decay value: %g", o->momentum_decay);
    if (k == K_ADAGRAD) {
        if (!(o->lr_decay >= 0)) return ct__errs(CT_ERR_ARG, "Invalid lr_decay value: %g", o->lr_decay);
        if (!(o->initial_accumulator_value >= 0))
            return ct__errs(CT_ERR_ARG, "Invalid initial_accumulator_value value: %g", o->initial_accumulator_value);
        if (!(o->eps >= 0)) return ct__errs(CT_ERR_ARG, "Invalid epsilon value: %g", o->eps);
    }
    return 0;
}

static int add_params(ct_optimizer *opt, const ct_dict *params, int group) {
    int64_t n = ct_dict_size(params);
    if (n == 0) return ct__errs(CT_ERR_ARG, "optimizer got an empty parameter list");
    pstate *ps = realloc(opt->ps, (size_t)(opt->n_params + n) * sizeof *ps);
    if (!ps) return ct__errs(CT_ERR_OOM, "optimizer: out of memory");
    opt->ps = ps;
    for (int64_t i = 0; i < n; i++) {
        ct_scope_begin();
        ct_tensor *t = ct_dict_value(params, i);
        int st = 0;
        if (!t) st = ct_last_status();
        else if (!ct_dtype_is_floating(ct_get_dtype(t)))
            st = ct__errs(CT_ERR_DTYPE, "optimizer can only optimize Tensors of floating point dtype, but one of the "
                          "params is %s", ct_dtype_name(ct_get_dtype(t)));
        else if (!ct_is_leaf(t))
            st = ct__errs(CT_ERR_ARG, "can't optimize a non-leaf Tensor");
        for (int64_t j = 0; j < opt->n_params && !st; j++)
            if (opt->ps[j].p == t)
                st = ct__errs(CT_ERR_ARG, "some parameters appear in more than one parameter group");
        if (!st) {
            opt->ps[opt->n_params] = (pstate){.p = ct_retain(t), .group = group};
            opt->n_params++;
        }
        ct_scope_end();
        if (st) return st;
    }
    return 0;
}

static ct_optimizer *make(kind k, const ct_dict *params, opts o) {
    if (!params) return ct__err(CT_ERR_ARG, "%s: params is NULL", KIND_NAME[k]);
    if (check_opts(k, &o)) return NULL;
    ct_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt) return ct__err(CT_ERR_OOM, "optimizer: out of memory");
    opt->k = k;
    o.initial_lr = NAN;
    opt->defaults = o;
    if (ct_optim_add_param_group(opt, params) < 0) {
        ct_optim_free(opt);
        return NULL;
    }
    return opt;
}

CT_API ct_optimizer *ct_optim_sgd_new(const ct_dict *params, double lr, double momentum, double dampening,
                                      double weight_decay, bool nesterov, bool maximize) {
    return make(K_SGD, params, (opts){.lr = lr, .momentum = momentum, .dampening = dampening,
                                      .weight_decay = weight_decay, .nesterov = nesterov, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_adam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                       double weight_decay, bool amsgrad, bool maximize) {
    return make(K_ADAM, params, (opts){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                       .weight_decay = weight_decay, .amsgrad = amsgrad, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_adamw_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, bool amsgrad, bool maximize) {
    return make(K_ADAMW, params, (opts){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                        .weight_decay = weight_decay, .amsgrad = amsgrad, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_rmsprop_new(const ct_dict *params, double lr, double alpha, double eps,
                                          double weight_decay, double momentum, bool centered, bool maximize) {
    return make(K_RMSPROP, params, (opts){.lr = lr, .alpha = alpha, .eps = eps, .weight_decay = weight_decay,
                                          .momentum = momentum, .centered = centered, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_adagrad_new(const ct_dict *params, double lr, double lr_decay, double weight_decay,
                                          double initial_accumulator_value, double eps, bool maximize) {
    return make(K_ADAGRAD, params, (opts){.lr = lr, .lr_decay = lr_decay, .weight_decay = weight_decay,
                                          .initial_accumulator_value = initial_accumulator_value, .eps = eps,
                                          .maximize = maximize});
}

CT_API ct_optimizer *ct_optim_adadelta_new(const ct_dict *params, double lr, double rho, double eps,
                                           double weight_decay, bool maximize) {
    return make(K_ADADELTA, params, (opts){.lr = lr, .rho = rho, .eps = eps, .weight_decay = weight_decay,
                                           .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_adamax_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                         double weight_decay, bool maximize) {
    return make(K_ADAMAX, params, (opts){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                         .weight_decay = weight_decay, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_nadam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, double momentum_decay, bool decoupled_weight_decay,
                                        bool maximize) {
    return make(K_NADAM, params, (opts){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                        .weight_decay = weight_decay, .momentum_decay = momentum_decay,
                                        .decoupled_weight_decay = decoupled_weight_decay, .maximize = maximize});
}
CT_API ct_optimizer *ct_optim_radam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, bool decoupled_weight_decay, bool maximize) {
    return make(K_RADAM, params, (opts){.lr = lr, .beta1 = beta1, .beta2 = beta2, .eps = eps,
                                        .weight_decay = weight_decay,
                                        .decoupled_weight_decay = decoupled_weight_decay, .maximize = maximize});
}

CT_API ct_optimizer *ct_optim_lbfgs_new(const ct_dict *params, double lr, int64_t max_iter, int64_t max_eval,
                                        double tolerance_grad, double tolerance_change, int64_t history_size,
                                        const char *line_search_fn, bool maximize) {
    if (line_search_fn && strcmp(line_search_fn, "strong_wolfe") != 0)
        return ct__err(CT_ERR_ARG, "LBFGS: only 'strong_wolfe' is supported, got '%s'", line_search_fn);
    if (max_iter < 1 || history_size < 0)
        return ct__err(CT_ERR_ARG, "LBFGS: max_iter must be positive and history_size non-negative");
    if (max_eval <= 0) max_eval = max_iter * 5 / 4;
    return make(K_LBFGS, params, (opts){.lr = lr, .max_iter = (double)max_iter, .max_eval = (double)max_eval,
                                        .tolerance_grad = tolerance_grad, .tolerance_change = tolerance_change,
                                        .history_size = (double)history_size, .strong_wolfe = line_search_fn != NULL,
                                        .maximize = maximize});
}

CT_API double ct_optim_step_closure(ct_optimizer *opt, double (*closure)(void *user), void *user) {
    if (!opt || !closure) {
        ct__errs(CT_ERR_ARG, "step: NULL optimizer or closure");
        return NAN;
    }
    if (opt->k == K_LBFGS) return ct__lbfgs_step(opt, closure, user);
    /* the other optimizers: evaluate once with grad enabled, then step (torch's step(closure)) */
    bool prev = ct_set_grad_enabled(true);
    ct_clear_error();
    double loss = closure(user);
    ct_set_grad_enabled(prev);
    if (isnan(loss) && ct_last_status() != CT_OK) return NAN;
    return ct_optim_step(opt) ? NAN : loss;
}

CT_API void ct_optim_free(ct_optimizer *opt) {
    if (!opt) return;
    ct__lbfgs_free(opt->lbfgs);
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_release(opt->ps[i].p);
        for (int b = 0; b < N_BUF; b++) ct_release(opt->ps[i].buf[b]);
    }
    free(opt->ps);
    free(opt->groups);
    free(opt);
}

CT_API int ct_optim_add_param_group(ct_optimizer *opt, const ct_dict *params) {
    if (!opt || !params) return ct__errs(CT_ERR_ARG, "add_param_group: NULL optimizer or params");
    if (opt->k == K_LBFGS && opt->n_groups == 1)
        return ct__errs(CT_ERR_ARG, "LBFGS doesn't support per-parameter options (parameter groups)");
    opts *g = realloc(opt->groups, (size_t)(opt->n_groups + 1) * sizeof *g);
    if (!g) return ct__errs(CT_ERR_OOM, "optimizer: out of memory");
    opt->groups = g;
    g[opt->n_groups] = opt->defaults;
    int64_t before = opt->n_params;
    int st = add_params(opt, params, opt->n_groups);
    if (st) {
        for (int64_t i = before; i < opt->n_params; i++) ct_release(opt->ps[i].p);
        opt->n_params = before;
        return st;
    }
    return opt->n_groups++;
}

CT_API int ct_optim_num_groups(const ct_optimizer *opt) { return opt ? opt->n_groups : 0; }

static int option_index(const char *name) {
    for (int i = 0; name && i < N_OPTION; i++)
        if (strcmp(OPTION[i].name, name) == 0) return i;
    return -1;
}

/* Sets an option without validating it, as torch's schedulers assign group["lr"] (a
 * linear OneCycleLR goes below zero on its last step; torch does not check). */
int ct__optim_set_unchecked(ct_optimizer *opt, int group, const char *name, double value) {
    if (!opt || group < 0 || group >= opt->n_groups)
        return ct__errs(CT_ERR_INDEX, "set_option: no parameter group %d", group);
    int i = option_index(name);
    if (i < 0) return ct__errs(CT_ERR_KEY, "set_option: unknown option '%s'", name ? name : "(null)");
    char *o = (char *)&opt->groups[group] + OPTION[i].off;
    if (OPTION[i].is_bool) *(bool *)o = value != 0;
    else *(double *)o = value;
    return 0;
}

CT_API int ct_optim_set_option(ct_optimizer *opt, int group, const char *name, double value) {
    if (!opt || group < 0 || group >= opt->n_groups)
        return ct__errs(CT_ERR_INDEX, "set_option: no parameter group %d", group);
    int i = option_index(name);
    if (i < 0) return ct__errs(CT_ERR_KEY, "set_option: unknown option '%s'", name ? name : "(null)");
    opts o = opt->groups[group];
    if (OPTION[i].is_bool) *(bool *)((char *)&o + OPTION[i].off) = value != 0;
    else *(double *)((char *)&o + OPTION[i].off) = value;
    int st = check_opts(opt->k, &o);
    if (!st) opt->groups[group] = o;
    return st;
}

CT_API double ct_optim_get_option(const ct_optimizer *opt, int group, const char *name) {
    if (!opt || group < 0 || group >= opt->n_groups) {
        ct__errs(CT_ERR_INDEX, "get_option: no parameter group %d", group);
        return NAN;
    }
    int i = option_index(name);
    if (i < 0) {
        ct__errs(CT_ERR_KEY, "get_option: unknown option '%s'", name ? name : "(null)");
        return NAN;
    }
    const char *base = (const char *)&opt->groups[group];
    return OPTION[i].is_bool ? (double)*(const bool *)(base + OPTION[i].off) : *(const double *)(base + OPTION[i].off);
}
/* The option a cycling scheduler moves as "momentum": torch's optimizer.defaults has
 * "momentum" (SGD, RMSprop) or "betas" (the Adam family: beta1); NULL for neither. */
const char *ct__optim_momentum_option(const ct_optimizer *opt) {
    switch (opt->k) {
    case K_SGD: case K_RMSPROP: return "momentum";
    case K_ADAM: case K_ADAMW: case K_ADAMAX: case K_NADAM: case K_RADAM: return "beta1";
    default: return NULL;
    }
}
CT_API double ct_optim_get_lr(const ct_optimizer *opt, int group) { return ct_optim_get_option(opt, group, "lr"); }
CT_API int ct_optim_set_lr(ct_optimizer *opt, int group, double lr) { return ct_optim_set_option(opt, group, "lr", lr); }

CT_API int ct_optim_zero_grad(ct_optimizer *opt, bool set_to_none) {
    if (!opt) return ct__errs(CT_ERR_ARG, "zero_grad: NULL optimizer");
    for (int64_t i = 0; i < opt->n_params; i++) {
        ct_tensor *p = opt->ps[i].p, *g = ct_grad(p);
        if (!g) continue;
        int st = set_to_none ? ct_set_grad(p, NULL) : ct_zero_(g);
        if (st) return st;
    }
    return 0;
}

/* ---- the fused updates ---- */
/* SGD and Adam/AdamW, the optimizers of most training loops, as vectorised kernels
 * (AVX-512 / AVX2 / baseline clones) over a range of elements; the options are loop
 * invariants read once, not through the optimizer on every element (where the compiler
 * had to assume the parameter writes could change them). The other optimizers below
 * stay plain loops. */
typedef struct {
    double wd, mom, damp1, lr;                   /* SGD */
    double w1, b2, w2, bc2s, eps, nss, decay;    /* Adam */
    bool maximize, use_wd, use_mom, first, nesterov, decoupled, amsgrad;
} upd;

#define SGD_KERNEL(NAME, T)                                                                          \
    CT_LOOP_ATTR static void NAME(T *restrict p, T *restrict b, const T *restrict gr, int64_t lo,    \
                                  int64_t hi, const upd *u) {                                        \
        const T wd = (T)u->wd, mom = (T)u->mom, damp1 = (T)u->damp1, nlr = (T)(-u->lr);              \
        const T sgn = u->maximize ? (T)-1 : (T)1;                                                    \
        const bool use_wd = u->use_wd, use_mom = u->use_mom, first = u->first, nesterov = u->nesterov; \
        for (int64_t i = lo; i < hi; i++) {                                                          \
            T g = sgn * gr[i];                                                                       \
            if (use_wd) g = g + wd * p[i];                                                           \
            if (use_mom) {                                                                           \
                b[i] = first ? g : b[i] * mom + damp1 * g;                                           \
                g = nesterov ? g + mom * b[i] : b[i];                                                \
            }                                                                                        \
            p[i] = p[i] + nlr * g;                                                                   \
        }                                                                                            \
    }
SGD_KERNEL(sgd_f32, float)
SGD_KERNEL(sgd_f64, double)

#define ADAM_KERNEL(NAME, T, SQRT)                                                                   \
    CT_LOOP_ATTR static void NAME(T *restrict p, T *restrict m, T *restrict v, T *restrict vmax,     \
                                  const T *restrict gr, int64_t lo, int64_t hi, const upd *u) {      \
        const T wd = (T)u->wd, w1 = (T)u->w1, b2 = (T)u->b2, w2 = (T)u->w2, bc2s = (T)u->bc2s,       \
                eps = (T)u->eps, nss = (T)u->nss, decay = (T)u->decay;                               \
        const T sgn = u->maximize ? (T)-1 : (T)1;                                                    \
        const bool use_wd = u->use_wd, decoupled = u->decoupled, amsgrad = u->amsgrad;               \
        for (int64_t i = lo; i < hi; i++) {                                                          \
            T g = sgn * gr[i];                                                                       \
            if (use_wd) {                                                                            \
                if (decoupled) p[i] = p[i] * decay;                                                  \
                else g = g + wd * p[i];                                                              \
            }                                                                                        \
            m[i] = m[i] + w1 * (g - m[i]); /* lerp_(grad, 1 - beta1) */                              \
            v[i] = v[i] * b2 + w2 * g * g; /* mul_(beta2).addcmul_(grad, grad, 1 - beta2) */         \
            T s = v[i];                                                                              \
            if (amsgrad) {                                                                           \
                vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];                                           \
                s = vmax[i];                                                                         \
            }                                                                                        \
            T denom = SQRT(s) / bc2s + eps;                                                          \
            p[i] = p[i] + nss * m[i] / denom; /* addcdiv_(exp_avg, denom, -step_size) */             \
        }                                                                                            \
    }
ADAM_KERNEL(adam_f32, float, sqrtf)
ADAM_KERNEL(adam_f64, double, sqrt)

/* Thread t's range of n elements split between nt threads: the t-th part, its ends
 * rounded down to 16 elements so threads do not share cache lines. */
static inline int64_t part_end(int64_t n, int64_t t, int64_t nt) {
    return t <= 0 ? 0 : t >= nt ? n : (n * t / nt) & ~(int64_t)15;
}

/* Runs CALL over [lo, hi) ranges of n elements: one range, or one per thread. */
#define RUN_RANGES(n, CALL)                                                                          \
    do {                                                                                             \
        if ((n) >= CT_GRAIN) {                                                                       \
            _Pragma("omp parallel")                                                                  \
            {                                                                                        \
                int64_t nt_ = omp_get_num_threads(), t_ = omp_get_thread_num();                      \
                int64_t lo = part_end((n), t_, nt_), hi = part_end((n), t_ + 1, nt_);                 \
                CALL;                                                                                \
            }                                                                                        \
        } else {                                                                                     \
            int64_t lo = 0, hi = (n);                                                                \
            CALL;                                                                                    \
        }                                                                                            \
    } while (0)

#define RMSPROP_LOOP(T)                                                                             \
    {                                                                                               \
        T *p = P, *sq = B0, *buf = B1, *ga = B2;                                                    \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, al = (T)o->alpha, w = (T)(1 - o->alpha), eps = (T)o->eps,  \
                mom = (T)o->momentum, nlr = (T)(-o->lr);                                            \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) g = g + wd * p[i];                                            \
            sq[i] = sq[i] * al + w * g * g;                                                         \
            T avg;                                                                                  \
            if (o->centered) {                                                                      \
                ga[i] = ga[i] + w * (g - ga[i]);                                                    \
                avg = (T)sqrt(sq[i] + (T)(-1) * ga[i] * ga[i]);                                     \
            } else {                                                                                \
                avg = (T)sqrt(sq[i]);                                                               \
            }                                                                                       \
            avg = avg + eps;                                                                        \
            if (o->momentum > 0) {                                                                  \
                buf[i] = buf[i] * mom + g / avg;                                                    \
                p[i] = p[i] + nlr * buf[i];                                                         \
            } else {                                                                                \
                p[i] = p[i] + nlr * g / avg;                                                        \
            }                                                                                       \
        });                                                                                         \
    }

#define ADAGRAD_LOOP(T)                                                                             \
    {                                                                                               \
        T *p = P, *sum = B0;                                                                        \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, eps = (T)o->eps, nclr = (T)(-clr);                         \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) g = g + wd * p[i];                                            \
            sum[i] = sum[i] + (T)1 * g * g;                                                         \
            T sd = (T)sqrt(sum[i]) + eps;                                                           \
            p[i] = p[i] + nclr * g / sd;                                                            \
        });                                                                                         \
    }

#define ADADELTA_LOOP(T)                                                                            \
    {                                                                                               \
        T *p = P, *sq = B0, *acc = B1;                                                              \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, rho = (T)o->rho, w = (T)(1 - o->rho), eps = (T)o->eps,     \
                nlr = (T)(-o->lr);                                                                  \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) g = g + wd * p[i];                                            \
            sq[i] = sq[i] * rho + w * g * g;                                                        \
            T sd = (T)sqrt(sq[i] + eps);                                                            \
            T delta = (T)sqrt(acc[i] + eps) / sd * g;                                               \
            acc[i] = acc[i] * rho + w * delta * delta;                                              \
            p[i] = p[i] + nlr * delta;                                                              \
        });                                                                                         \
    }

#define ADAMAX_LOOP(T)                                                                              \
    {                                                                                               \
        T *p = P, *m = B0, *u = B1;                                                                 \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, w1 = (T)(1 - o->beta1), b2 = (T)o->beta2, eps = (T)o->eps, \
                nclr = (T)(-clr);                                                                   \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) g = g + wd * p[i];                                            \
            m[i] = m[i] + w1 * (g - m[i]);                                                          \
            T a = u[i] * b2, b = (T)fabs((double)g) + eps;                                          \
            u[i] = a > b || a != a ? a : b;                                                         \
            p[i] = p[i] + nclr * m[i] / u[i];                                                       \
        });                                                                                         \
    }

#define NADAM_LOOP(T)                                                                               \
    {                                                                                               \
        T *p = P, *m = B0, *v = B1;                                                                 \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, w1 = (T)(1 - o->beta1), b2 = (T)o->beta2,                  \
                w2 = (T)(1 - o->beta2), bc2 = (T)bias_correction2, eps = (T)o->eps, c1 = (T)coef1,  \
                c2 = (T)coef2, decay = (T)(1 - o->lr * o->weight_decay);                            \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) {                                                             \
                if (o->decoupled_weight_decay) p[i] = p[i] * decay;                                 \
                else g = g + wd * p[i];                                                             \
            }                                                                                       \
            m[i] = m[i] + w1 * (g - m[i]);                                                          \
            v[i] = v[i] * b2 + w2 * g * g;                                                          \
            T denom = (T)sqrt(v[i] / bc2) + eps;                                                    \
            p[i] = p[i] + c1 * g / denom;                                                           \
            p[i] = p[i] + c2 * m[i] / denom;                                                        \
        });                                                                                         \
    }

#define RADAM_LOOP(T)                                                                               \
    {                                                                                               \
        T *p = P, *m = B0, *v = B1;                                                                 \
        const T *gr = G;                                                                            \
        const T wd = (T)o->weight_decay, w1 = (T)(1 - o->beta1), b2 = (T)o->beta2,                  \
                w2 = (T)(1 - o->beta2), bc1 = (T)bias_correction1, lr = (T)o->lr, eps = (T)o->eps,  \
                sbc2 = (T)sqrt(bias_correction2), rc = (T)rect,                                     \
                decay = (T)(1 - o->lr * o->weight_decay);                                           \
        CT_PARALLEL_FOR_IF(n >= CT_GRAIN, for (int64_t i = 0; i < n; i++), {                        \
            T g = o->maximize ? -gr[i] : gr[i];                                                     \
            if (o->weight_decay != 0) {                                                             \
                if (o->decoupled_weight_decay) p[i] = p[i] * decay;                                 \
                else g = g + wd * p[i];                                                             \
            }                                                                                       \
            m[i] = m[i] + w1 * (g - m[i]);                                                          \
            v[i] = v[i] * b2 + w2 * g * g;                                                          \
            T bcm = m[i] / bc1;                                                                     \
            if (rectified) {                                                                        \
                T alr = sbc2 / ((T)sqrt(v[i]) + eps);                                               \
                p[i] = p[i] + (T)(-1) * (bcm * lr * alr * rc);                                      \
            } else {                                                                                \
                p[i] = p[i] + (T)(-1) * (bcm * lr);                                                 \
            }                                                                                       \
        });                                                                                         \
    }

static ct_tensor *state_buf(pstate *s, int b, double fill) {
    if (!s->buf[b]) {
        s->buf[b] = ct__empty_raw(s->p->ndim, s->p->sizes, s->p->dtype);
        if (!s->buf[b] || ct__fill_raw(s->buf[b], fill)) {
            ct_release(s->buf[b]);
            s->buf[b] = NULL;
            return NULL;
        }
    }
    return s->buf[b];
}

/* Checks s's gradient against its parameter and gives it in the parameter's dtype and
 * layout (*g = NULL: no gradient; *own: a copy the caller releases). 0 or status. */
static int param_grad(const ct_optimizer *opt, const pstate *s, ct_tensor **g, bool *own) {
    ct_tensor *grad = ct_grad(s->p);
    *g = NULL;
    *own = false;
    if (!grad) return 0;
    if (!ct__same_sizes(grad->ndim, grad->sizes, s->p->ndim, s->p->sizes))
        return ct__errs(CT_ERR_SHAPE, "%s: gradient of size %s does not match parameter of size %s", KIND_NAME[opt->k],
                        CT_SHAPESTR(grad), CT_SHAPESTR(s->p));
    if (!ct__is_contiguous(s->p))
        return ct__errs(CT_ERR_ARG, "%s: parameters must be contiguous", KIND_NAME[opt->k]);
    if (s->p->dtype != CT_FLOAT32 && s->p->dtype != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "%s: float32 and float64 parameters are supported, got %s", KIND_NAME[opt->k],
                        ct_dtype_name(s->p->dtype));
    if (grad->dtype != s->p->dtype || !ct__is_contiguous(grad)) {
        ct_tensor *c = ct__empty_raw(s->p->ndim, s->p->sizes, s->p->dtype);
        if (!c || ct__copy_raw(c, grad)) { ct_release(c); return ct_last_status(); }
        *own = true;
        grad = c;
    }
    *g = grad;
    return 0;
}

static int step_param(ct_optimizer *opt, pstate *s) {
    const opts *o = &opt->groups[s->group];
    ct_tensor *g;
    bool own;
    int st = param_grad(opt, s, &g, &own);
    if (st || !g) return st;
    bool first = !s->has_state;
    s->has_state = true;
    int64_t n = s->p->numel;
    bool f32 = s->p->dtype == CT_FLOAT32;
    void *P = ct__data(s->p), *G = ct__data(g), *B0 = NULL, *B1 = NULL, *B2 = NULL;
    switch (opt->k) {
    case K_SGD: /* step_many */
    case K_ADAM:
    case K_ADAMW:
        break;
    case K_RMSPROP:
        if (!state_buf(s, 0, 0) || (o->momentum > 0 && !state_buf(s, 1, 0)) || (o->centered && !state_buf(s, 2, 0))) {
            st = ct_last_status();
            break;
        }
        B0 = ct__data(s->buf[0]), B1 = o->momentum > 0 ? ct__data(s->buf[1]) : NULL;
        B2 = o->centered ? ct__data(s->buf[2]) : NULL;
        s->step += 1;
        if (f32) RMSPROP_LOOP(float) else RMSPROP_LOOP(double)
        break;
    case K_ADADELTA:
        if (!state_buf(s, 0, 0) || !state_buf(s, 1, 0)) { st = ct_last_status(); break; }
        B0 = ct__data(s->buf[0]), B1 = ct__data(s->buf[1]);
        s->step += 1;
        if (f32) ADADELTA_LOOP(float) else ADADELTA_LOOP(double)
        break;
    case K_ADAMAX: {
        if (!state_buf(s, 0, 0) || !state_buf(s, 1, 0)) { st = ct_last_status(); break; }
        B0 = ct__data(s->buf[0]), B1 = ct__data(s->buf[1]);
        s->step += 1;
        double clr = o->lr / (1 - pow(o->beta1, s->step));
        if (f32) ADAMAX_LOOP(float) else ADAMAX_LOOP(double)
        break;
    }
    case K_NADAM: {
        if (!state_buf(s, 0, 0) || !state_buf(s, 1, 0)) { st = ct_last_status(); break; }
        B0 = ct__data(s->buf[0]), B1 = ct__data(s->buf[1]);
        if (first) s->mu_product = 1.0f;
        s->step += 1;
        double bias_correction2 = 1 - pow(o->beta2, s->step);
        double mu = o->beta1 * (1.0 - 0.5 * pow(0.96, s->step * o->momentum_decay));
        double mu_next = o->beta1 * (1.0 - 0.5 * pow(0.96, (s->step + 1) * o->momentum_decay));
        s->mu_product = s->mu_product * (float)mu; /* a float32 tensor times a Python float in torch */
        double mp = s->mu_product, mp_next = mp * mu_next;
        double coef1 = -o->lr * (1.0 - mu) / (1.0 - mp), coef2 = (-o->lr * mu_next) / (1.0 - mp_next);
        if (f32) NADAM_LOOP(float) else NADAM_LOOP(double)
        break;
    }
    case K_RADAM: {
        if (!state_buf(s, 0, 0) || !state_buf(s, 1, 0)) { st = ct_last_status(); break; }
        B0 = ct__data(s->buf[0]), B1 = ct__data(s->buf[1]);
        s->step += 1;
        double bias_correction1 = 1 - pow(o->beta1, s->step), bias_correction2 = 1 - pow(o->beta2, s->step);
        double rho_inf = 2 / (1 - o->beta2) - 1;
        double rho_t = rho_inf - 2 * s->step * pow(o->beta2, s->step) / bias_correction2;
        bool rectified = rho_t > 5.0;
        double rect = rectified ? sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : 0;
        if (f32) RADAM_LOOP(float) else RADAM_LOOP(double)
        break;
    }
    case K_LBFGS: /* stepped through ct_optim_step_closure */
        break;
    case K_ADAGRAD: {
        if (!state_buf(s, 0, o->initial_accumulator_value)) { st = ct_last_status(); break; }
        B0 = ct__data(s->buf[0]);
        s->step += 1;
        double clr = o->lr / (1 + (s->step - 1) * o->lr_decay);
        if (f32) ADAGRAD_LOOP(float) else ADAGRAD_LOOP(double)
        break;
    }
    }
    if (own) ct_release(g);
    if (!st) ct__bump_version(s->p);
    return st;
}

/* ---- SGD and Adam/AdamW: one pass over all parameters ----
 * The step first checks every parameter and readies its gradient and state (an error
 * there leaves every parameter, step count and buffer as it was), then updates all of
 * them in one parallel region: each large parameter (CT_GRAIN elements or more) is cut
 * into one contiguous range per thread, as an elementwise op over it would be, and the
 * small ones (biases, norms) are taken as one sequence cut the same way (cuts rounded
 * to 16 elements inside a parameter, so threads do not share cache lines). Thread t
 * thus updates the t-th part of every weight, the part the GEMM kernels read on it in
 * the forward (a trained x @ W's half of K, x W^T's column blocks: src/cpu/linalg.c),
 * so the weights stay in that core's cache between the two; small parameters run on
 * every thread instead of one, and a step opens one region instead of one per
 * parameter. Each element's arithmetic is the per-parameter kernel's, so the bits do
 * not depend on where the cuts fall (the library is built with -ffp-contract=off). */
typedef struct {
    pstate *s;
    ct_tensor *g;          /* the gradient in the parameter's dtype and layout */
    bool own, f32;         /* own: g is a copy to release */
    unsigned char made;    /* bit b: state buffer b was created by this step */
    void *P, *G, *B0, *B1, *B2;
    int64_t n, base;       /* elements; offset in the sequence of the small parameters (-1: a large one) */
    upd u;
} job;

static void run_job(kind k, const job *j, int64_t lo, int64_t hi) {
    if (k == K_SGD) {
        if (j->f32) sgd_f32(j->P, j->B0, j->G, lo, hi, &j->u);
        else sgd_f64(j->P, j->B0, j->G, lo, hi, &j->u);
    } else if (j->f32) {
        adam_f32(j->P, j->B0, j->B1, j->B2, j->G, lo, hi, &j->u);
    } else {
        adam_f64(j->P, j->B0, j->B1, j->B2, j->G, lo, hi, &j->u);
    }
}

/* pos in the sequence of the small parameters, moved down to a multiple of 16 inside
 * its parameter */
static int64_t job_cut(const job *js, int nj, int64_t pos) {
    for (int i = 0; i < nj; i++)
        if (js[i].base >= 0 && pos < js[i].base + js[i].n)
            return pos < js[i].base ? js[i].base : js[i].base + ((pos - js[i].base) & ~(int64_t)15);
    return pos;
}

/* the small parameters' elements [lo, hi) of their sequence */
static void run_span(kind k, const job *js, int nj, int64_t lo, int64_t hi) {
    for (int i = 0; i < nj && lo < hi; i++) {
        if (js[i].base < 0) continue;
        int64_t b = js[i].base, e = b + js[i].n;
        if (e <= lo) continue;
        if (b >= hi) break;
        run_job(k, &js[i], (lo > b ? lo : b) - b, (hi < e ? hi : e) - b);
    }
}

typedef struct {
    uintptr_t lo, hi;
} span;

static int cmp_span(const void *a, const void *b) {
    uintptr_t x = ((const span *)a)->lo, y = ((const span *)b)->lo;
    return x < y ? -1 : x > y;
}

/* Whether the memory of two of the step's tensors (parameters, gradients) overlaps,
 * e.g. a gradient that is another parameter: then the updates run one parameter after
 * another, in order, as PyTorch's per-parameter loop does. Views of one flat buffer
 * that do not overlap stay in the shared pass. */
static bool jobs_overlap(const job *js, int nj) {
    span *v = malloc(sizeof *v * 2 * (size_t)nj);
    if (!v) return true; /* the safe answer */
    int n = 0;
    for (int i = 0; i < nj; i++) {
        if (js[i].n == 0) continue;
        uintptr_t bytes = (uintptr_t)js[i].n * (js[i].f32 ? 4 : 8);
        v[n++] = (span){(uintptr_t)js[i].P, (uintptr_t)js[i].P + bytes};
        v[n++] = (span){(uintptr_t)js[i].G, (uintptr_t)js[i].G + bytes};
    }
    qsort(v, (size_t)n, sizeof *v, cmp_span);
    bool hit = false;
    for (int i = 1; i < n && !hit; i++) hit = v[i].lo < v[i - 1].hi;
    free(v);
    return hit;
}

static void drop_jobs(job *js, int nj, bool undo_state) {
    for (int i = 0; i < nj; i++) {
        if (js[i].own) ct_release(js[i].g);
        for (int b = 0; undo_state && b < N_BUF; b++)
            if (js[i].made & (1u << b)) {
                ct_release(js[i].s->buf[b]);
                js[i].s->buf[b] = NULL;
            }
    }
    free(js);
}

static int step_many(ct_optimizer *opt) {
    const kind k = opt->k;
    job *js = malloc(sizeof *js * (size_t)(opt->n_params > 0 ? opt->n_params : 1));
    if (!js) return ct__errs(CT_ERR_OOM, "%s: out of memory", KIND_NAME[k]);
    int nj = 0, st = 0;
    int64_t total = 0, small = 0; /* all the elements; those of the small parameters */
    /* 1. check and ready everything; nothing the user sees changes */
    for (int64_t i = 0; i < opt->n_params && !st; i++) {
        pstate *s = &opt->ps[i];
        const opts *o = &opt->groups[s->group];
        job *j = &js[nj];
        *j = (job){.s = s};
        if ((st = param_grad(opt, s, &j->g, &j->own)) || !j->g) continue;
        nj++;
        int nbuf = k == K_SGD ? (o->momentum != 0) : 2 + o->amsgrad;
        for (int b = 0; b < nbuf && !st; b++) {
            if (!s->buf[b]) j->made |= (unsigned char)(1u << b);
            if (!state_buf(s, b, 0)) st = ct_last_status();
        }
        j->f32 = s->p->dtype == CT_FLOAT32;
        j->n = s->p->numel;
        j->base = j->n >= CT_GRAIN ? -1 : small;
        if (j->base >= 0) small += j->n;
        total += j->n;
    }
    if (st) {
        drop_jobs(js, nj, true);
        return st;
    }
    /* 2. step counts and each parameter's constants */
    for (int i = 0; i < nj; i++) {
        job *j = &js[i];
        pstate *s = j->s;
        const opts *o = &opt->groups[s->group];
        s->has_state = true;
        s->step += 1;
        j->P = ct__data(s->p);
        j->G = ct__data(j->g);
        if (k == K_SGD) {
            j->B0 = o->momentum != 0 ? ct__data(s->buf[0]) : NULL;
            j->u = (upd){.wd = o->weight_decay, .mom = o->momentum, .damp1 = 1 - o->dampening, .lr = o->lr,
                         .maximize = o->maximize, .use_wd = o->weight_decay != 0, .use_mom = o->momentum != 0,
                         .first = (j->made & 1) != 0, .nesterov = o->nesterov};
        } else {
            j->B0 = ct__data(s->buf[0]);
            j->B1 = ct__data(s->buf[1]);
            j->B2 = o->amsgrad ? ct__data(s->buf[2]) : NULL;
            double bc1 = 1 - pow(o->beta1, s->step), bc2 = 1 - pow(o->beta2, s->step);
            j->u = (upd){.wd = o->weight_decay, .w1 = 1 - o->beta1, .b2 = o->beta2, .w2 = 1 - o->beta2,
                         .bc2s = sqrt(bc2), .eps = o->eps, .nss = -(o->lr / bc1), .decay = 1 - o->lr * o->weight_decay,
                         .maximize = o->maximize, .use_wd = o->weight_decay != 0, .decoupled = k == K_ADAMW,
                         .amsgrad = o->amsgrad};
        }
    }
    /* 3. the updates (one thread: in order, whatever shares memory) */
    if (total < CT_GRAIN) {
        run_span(k, js, nj, 0, total); /* every parameter is small here */
    } else if (jobs_overlap(js, nj)) {
        for (int i = 0; i < nj; i++) RUN_RANGES(js[i].n, run_job(k, &js[i], lo, hi));
    } else {
#pragma omp parallel
        {
            int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
            for (int i = 0; i < nj; i++)
                if (js[i].base < 0) run_job(k, &js[i], part_end(js[i].n, t, nt), part_end(js[i].n, t + 1, nt));
            run_span(k, js, nj, job_cut(js, nj, small * t / nt), job_cut(js, nj, small * (t + 1) / nt));
        }
    }
    for (int i = 0; i < nj; i++) ct__bump_version(js[i].s->p);
    drop_jobs(js, nj, false);
    return 0;
}

CT_API int ct_optim_step(ct_optimizer *opt) {
    if (!opt) return ct__errs(CT_ERR_ARG, "step: NULL optimizer");
    if (opt->k == K_LBFGS) return ct__errs(CT_ERR_ARG, "LBFGS: step needs a closure (ct_optim_step_closure)");
    if (opt->k == K_SGD || opt->k == K_ADAM || opt->k == K_ADAMW) return step_many(opt);
    for (int64_t i = 0; i < opt->n_params; i++) {
        int st = step_param(opt, &opt->ps[i]);
        if (st) return st;
    }
    return 0;
}

/* ---- state dicts ---- */
static int put_scalar(ct_dict *d, const char *key, double v, ct_dtype dt) {
    ct_tensor *t = ct_scalar_tensor(v, dt);
    return t ? ct_dict_set(d, key, t) : ct_last_status();
}

CT_API ct_dict *ct_optim_state_dict(const ct_optimizer *opt) {
    if (!opt) return ct__err(CT_ERR_ARG, "state_dict: NULL optimizer");
    ct_dict *d = ct_dict_new();
    if (!d) return NULL;
    ct_scope_begin();
    int st = ct_dict_set_meta(d, "optimizer", KIND_NAME[opt->k]);
    char key[128];
    for (int64_t i = 0; i < opt->n_params && !st; i++) {
        const pstate *s = &opt->ps[i];
        if (!s->has_state) continue;
        snprintf(key, sizeof key, "state.%lld.step", (long long)i);
        st = put_scalar(d, key, s->step, CT_FLOAT32);
        if (!st && opt->k == K_NADAM) {
            snprintf(key, sizeof key, "state.%lld.mu_product", (long long)i);
            st = put_scalar(d, key, s->mu_product, CT_FLOAT32);
        }
        for (int b = 0; b < N_BUF && !st; b++) {
            if (!s->buf[b]) continue;
            snprintf(key, sizeof key, "state.%lld.%s", (long long)i, BUF_NAME[opt->k][b]);
            ct_tensor *c = ct_clone(s->buf[b]);
            st = c ? ct_dict_set(d, key, c) : ct_last_status();
        }
    }
    if (!st && opt->k == K_LBFGS) st = ct__lbfgs_state_dict(opt, d);
    for (int g = 0; g < opt->n_groups && !st; g++) {
        for (int k = 0; k < N_OPTION && !st; k++) {
            double v = ct_optim_get_option(opt, g, OPTION[k].name);
            if (isnan(v) && strcmp(OPTION[k].name, "initial_lr") == 0) continue; /* no scheduler yet */
            snprintf(key, sizeof key, "param_groups.%d.%s", g, OPTION[k].name);
            st = put_scalar(d, key, v, CT_FLOAT64);
        }
        int64_t cnt = 0;
        for (int64_t i = 0; i < opt->n_params; i++) cnt += opt->ps[i].group == g;
        ct_tensor *ix = st ? NULL : ct_empty(CT_SHAPE(cnt), CT_INT64);
        if (!st && !ix) st = ct_last_status();
        for (int64_t i = 0, j = 0; !st && i < opt->n_params; i++)
            if (opt->ps[i].group == g) ((int64_t *)ct__data(ix))[j++] = i;
        snprintf(key, sizeof key, "param_groups.%d.params", g);
        if (!st) st = ct_dict_set(d, key, ix);
    }
    ct_scope_end();
    if (st) {
        ct_dict_free(d);
        return NULL;
    }
    return d;
}

CT_API int ct_optim_load_state_dict(ct_optimizer *opt, const ct_dict *state) {
    if (!opt || !state) return ct__errs(CT_ERR_ARG, "load_state_dict: NULL optimizer or state");
    const char *kindname = ct_dict_meta(state, "optimizer");
    if (kindname && strcmp(kindname, KIND_NAME[opt->k]) != 0)
        return ct__errs(CT_ERR_ARG, "load_state_dict: state of a %s optimizer given to a %s optimizer", kindname,
                        KIND_NAME[opt->k]);
    char key[128];
    int st = 0;
    ct_scope_begin();
    /* validate first: groups and buffer shapes */
    for (int g = 0; g < opt->n_groups && !st; g++) {
        snprintf(key, sizeof key, "param_groups.%d.params", g);
        ct_tensor *ix = ct_dict_contains(state, key) ? ct_dict_get(state, key) : NULL;
        int64_t cnt = 0;
        for (int64_t i = 0; i < opt->n_params; i++) cnt += opt->ps[i].group == g;
        if (!ix || ct_numel(ix) != cnt)
            st = ct__errs(CT_ERR_SHAPE, "loaded state dict contains a parameter group that doesn't match the size of "
                          "optimizer's group");
    }
    for (int64_t i = 0; i < opt->n_params && !st; i++)
        for (int b = 0; b < N_BUF && !st; b++) {
            if (!BUF_NAME[opt->k][b]) continue;
            snprintf(key, sizeof key, "state.%lld.%s", (long long)i, BUF_NAME[opt->k][b]);
            if (!ct_dict_contains(state, key)) continue;
            ct_tensor *t = ct_dict_get(state, key);
            if (!ct__same_sizes(t->ndim, t->sizes, opt->ps[i].p->ndim, opt->ps[i].p->sizes))
                st = ct__errs(CT_ERR_SHAPE, "load_state_dict: %s has size %s, parameter %lld has size %s", key,
                              CT_SHAPESTR(t), (long long)i, CT_SHAPESTR(opt->ps[i].p));
        }
    /* then restore */
    for (int g = 0; g < opt->n_groups && !st; g++) {
        /* a state dict from torch (ct_io_load_pt) has "betas" as a pair */
        snprintf(key, sizeof key, "param_groups.%d.betas", g);
        if (ct_dict_contains(state, key)) {
            ct_tensor *b = ct_contiguous(ct_to_dtype(ct_dict_get(state, key), CT_FLOAT64));
            if (b && ct_numel(b) == 2) {
                opt->groups[g].beta1 = ((const double *)ct_data_ptr(b))[0];
                opt->groups[g].beta2 = ((const double *)ct_data_ptr(b))[1];
            }
        }
    }
    for (int g = 0; g < opt->n_groups && !st; g++)
        for (int k = 0; k < N_OPTION && !st; k++) {
            snprintf(key, sizeof key, "param_groups.%d.%s", g, OPTION[k].name);
            if (!ct_dict_contains(state, key)) continue;
            opts *o = &opt->groups[g];
            double v = ct_item(ct_dict_get(state, key));
            if (OPTION[k].is_bool) *(bool *)((char *)o + OPTION[k].off) = v != 0;
            else *(double *)((char *)o + OPTION[k].off) = v;
        }
    for (int64_t i = 0; i < opt->n_params && !st; i++) {
        pstate *s = &opt->ps[i];
        snprintf(key, sizeof key, "state.%lld.step", (long long)i);
        s->has_state = ct_dict_contains(state, key);
        s->step = s->has_state ? ct_item(ct_dict_get(state, key)) : 0;
        snprintf(key, sizeof key, "state.%lld.mu_product", (long long)i);
        s->mu_product = ct_dict_contains(state, key) ? (float)ct_item(ct_dict_get(state, key)) : 1.0f;
        for (int b = 0; b < N_BUF && !st; b++) {
            ct_release(s->buf[b]);
            s->buf[b] = NULL;
            if (!BUF_NAME[opt->k][b]) continue;
            snprintf(key, sizeof key, "state.%lld.%s", (long long)i, BUF_NAME[opt->k][b]);
            if (!ct_dict_contains(state, key)) continue;
            ct_tensor *src = ct_dict_get(state, key);
            s->buf[b] = ct__empty_raw(s->p->ndim, s->p->sizes, s->p->dtype);
            if (!s->buf[b] || ct__copy_raw(s->buf[b], src)) st = ct_last_status();
        }
    }
    if (!st && opt->k == K_LBFGS) st = ct__lbfgs_load_state_dict(opt, state);
    ct_scope_end();
    return st;
}
