/* Learning-rate schedulers (torch.optim.lr_scheduler) and gradient clipping
 * (torch.nn.utils). Schedulers reproduce PyTorch's get_lr() formulas, including the
 * recursive (chainable) forms, so the learning rates match step for step. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/optim.h"

typedef enum { S_STEP, S_MULTISTEP, S_EXP, S_COSINE, S_LINEAR, S_LAMBDA, S_POLY, S_WARM, S_PLATEAU } skind;

struct ct_scheduler {
    skind k;
    ct_optimizer *opt;
    int n;            /* groups */
    double *base, *last;
    int64_t last_epoch;
    int64_t step_size, T_max, total_iters;
    double gamma, eta_min, start_factor, end_factor;
    int64_t *milestones;
    int n_milestones;
    double (*fn)(int64_t, void *);
    void *user;
    /* PolynomialLR */
    double power;
    /* CosineAnnealingWarmRestarts */
    int64_t T_0, T_i, T_cur, T_mult;
    /* ReduceLROnPlateau */
    bool mode_max, threshold_abs;
    double factor, threshold, min_lr, eps, best;
    int64_t patience, cooldown, cooldown_counter, num_bad_epochs;
};

/* The lr of group g for the current last_epoch, from the group's current lr (chainable
 * forms) as PyTorch's get_lr(). */
static double next_lr(const ct_scheduler *s, int g) {
    double lr = ct_optim_get_lr(s->opt, g), base = s->base[g];
    int64_t e = s->last_epoch;
    switch (s->k) {
    case S_STEP:
        if (e == 0 || e % s->step_size != 0) return lr;
        return lr * s->gamma;
    case S_MULTISTEP: {
        int hits = 0;
        for (int i = 0; i < s->n_milestones; i++) hits += s->milestones[i] == e;
        return hits ? lr * pow(s->gamma, hits) : lr;
    }
    case S_EXP:
        return e == 0 ? lr : lr * s->gamma;
    case S_COSINE: {
        double T = (double)s->T_max;
        if (e == 0) return lr;
        if ((e - 1 - s->T_max) % (2 * s->T_max) == 0)
            return lr + (base - s->eta_min) * (1 - cos(M_PI / T)) / 2;
        return (1 + cos(M_PI * (double)e / T)) / (1 + cos(M_PI * (double)(e - 1) / T)) * (lr - s->eta_min) + s->eta_min;
    }
    case S_LINEAR: {
        if (e == 0) return lr * s->start_factor;
        if (e > s->total_iters) return lr;
        double num = s->end_factor - s->start_factor;
        double den = s->total_iters * s->start_factor + (double)(e - 1) * num;
        return lr * (1.0 + num / den);
    }
    case S_LAMBDA:
        return base * s->fn(e, s->user);
    case S_POLY: {
        if (e == 0 || e > s->total_iters) return lr;
        double f = (1.0 - (double)e / (double)s->total_iters) / (1.0 - (double)(e - 1) / (double)s->total_iters);
        return lr * pow(f, s->power);
    }
    case S_WARM:
        return s->eta_min + (base - s->eta_min) * (1 + cos(M_PI * (double)s->T_cur / (double)s->T_i)) / 2;
    case S_PLATEAU:
        return lr;
    }
    return lr;
}

static int apply(ct_scheduler *s) {
    for (int g = 0; g < s->n; g++) {
        double lr = next_lr(s, g);
        int st = ct_optim_set_lr(s->opt, g, lr);
        if (st) return st;
        s->last[g] = lr;
    }
    return 0;
}

static ct_scheduler *make(skind k, ct_optimizer *opt, ct_scheduler proto) {
    if (!opt) return ct__err(CT_ERR_ARG, "scheduler: NULL optimizer");
    ct_scheduler *s = calloc(1, sizeof *s);
    if (!s) return ct__err(CT_ERR_OOM, "scheduler: out of memory");
    *s = proto;
    s->k = k;
    s->opt = opt;
    s->n = ct_optim_num_groups(opt);
    s->base = calloc((size_t)s->n, sizeof *s->base);
    s->last = calloc((size_t)s->n, sizeof *s->last);
    if (!s->base || !s->last) {
        ct_sched_free(s);
        return ct__err(CT_ERR_OOM, "scheduler: out of memory");
    }
    for (int g = 0; g < s->n; g++) s->base[g] = ct_optim_get_lr(opt, g); /* initial_lr */
    s->last_epoch = 0; /* the initial step */
    if (apply(s)) {
        ct_sched_free(s);
        return NULL;
    }
    return s;
}

CT_API ct_scheduler *ct_sched_step_lr_new(ct_optimizer *opt, int64_t step_size, double gamma) {
    if (step_size <= 0) return ct__err(CT_ERR_ARG, "StepLR: step_size must be positive, got %lld", (long long)step_size);
    return make(S_STEP, opt, (ct_scheduler){.step_size = step_size, .gamma = gamma});
}
CT_API ct_scheduler *ct_sched_multistep_lr_new(ct_optimizer *opt, int n, const int64_t *milestones, double gamma) {
    if (n < 0 || (n && !milestones)) return ct__err(CT_ERR_ARG, "MultiStepLR: bad milestones");
    int64_t *m = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!m) return ct__err(CT_ERR_OOM, "MultiStepLR: out of memory");
    if (n) memcpy(m, milestones, sizeof(int64_t) * (size_t)n);
    ct_scheduler *s = make(S_MULTISTEP, opt, (ct_scheduler){.milestones = m, .n_milestones = n, .gamma = gamma});
    if (!s) free(m);
    return s;
}
CT_API ct_scheduler *ct_sched_exponential_lr_new(ct_optimizer *opt, double gamma) {
    return make(S_EXP, opt, (ct_scheduler){.gamma = gamma});
}
CT_API ct_scheduler *ct_sched_cosine_annealing_lr_new(ct_optimizer *opt, int64_t T_max, double eta_min) {
    if (T_max <= 0) return ct__err(CT_ERR_ARG, "CosineAnnealingLR: T_max must be positive, got %lld", (long long)T_max);
    return make(S_COSINE, opt, (ct_scheduler){.T_max = T_max, .eta_min = eta_min});
}
CT_API ct_scheduler *ct_sched_linear_lr_new(ct_optimizer *opt, double start_factor, double end_factor,
                                            int64_t total_iters) {
    if (start_factor > 1.0 || start_factor <= 0)
        return ct__err(CT_ERR_ARG, "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
    if (end_factor > 1.0 || end_factor < 0)
        return ct__err(CT_ERR_ARG, "Ending multiplicative factor expected to be between 0 and 1.");
    return make(S_LINEAR, opt, (ct_scheduler){.start_factor = start_factor, .end_factor = end_factor,
                                              .total_iters = total_iters});
}
CT_API ct_scheduler *ct_sched_lambda_lr_new(ct_optimizer *opt, double (*fn)(int64_t, void *), void *user) {
    if (!fn) return ct__err(CT_ERR_ARG, "LambdaLR: lr_lambda is NULL");
    return make(S_LAMBDA, opt, (ct_scheduler){.fn = fn, .user = user});
}

CT_API ct_scheduler *ct_sched_polynomial_lr_new(ct_optimizer *opt, int64_t total_iters, double power) {
    if (total_iters <= 0) return ct__err(CT_ERR_ARG, "PolynomialLR: total_iters must be positive");
    return make(S_POLY, opt, (ct_scheduler){.total_iters = total_iters, .power = power});
}
CT_API ct_scheduler *ct_sched_cosine_warm_restarts_new(ct_optimizer *opt, int64_t T_0, int64_t T_mult, double eta_min) {
    if (T_0 <= 0) return ct__err(CT_ERR_ARG, "Expected positive integer T_0, but got %lld", (long long)T_0);
    if (T_mult < 1) return ct__err(CT_ERR_ARG, "Expected integer T_mult >= 1, but got %lld", (long long)T_mult);
    return make(S_WARM, opt, (ct_scheduler){.T_0 = T_0, .T_i = T_0, .T_cur = 0, .T_mult = T_mult, .eta_min = eta_min});
}
CT_API ct_scheduler *ct_sched_reduce_on_plateau_new(ct_optimizer *opt, bool mode_max, double factor, int64_t patience,
                                                    double threshold, bool threshold_abs, int64_t cooldown,
                                                    double min_lr, double eps) {
    if (factor >= 1.0) return ct__err(CT_ERR_ARG, "Factor should be < 1.0.");
    return make(S_PLATEAU, opt, (ct_scheduler){.mode_max = mode_max, .factor = factor, .patience = patience,
                                               .threshold = threshold, .threshold_abs = threshold_abs,
                                               .cooldown = cooldown, .min_lr = min_lr, .eps = eps,
                                               .best = mode_max ? -INFINITY : INFINITY});
}

static bool is_better(const ct_scheduler *s, double a) {
    if (!s->mode_max)
        return s->threshold_abs ? a < s->best - s->threshold : a < s->best * (1.0 - s->threshold);
    return s->threshold_abs ? a > s->best + s->threshold : a > s->best * (s->threshold + 1.0);
}

CT_API int ct_sched_step_metric(ct_scheduler *s, double metric) {
    if (!s) return ct__errs(CT_ERR_ARG, "scheduler step: NULL scheduler");
    if (s->k != S_PLATEAU) return ct_sched_step(s);
    s->last_epoch++;
    if (is_better(s, metric)) {
        s->best = metric;
        s->num_bad_epochs = 0;
    } else {
        s->num_bad_epochs++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->num_bad_epochs = 0;
    }
    if (s->num_bad_epochs > s->patience) {
        for (int g = 0; g < s->n; g++) {
            double old = ct_optim_get_lr(s->opt, g), nw = old * s->factor;
            if (nw < s->min_lr) nw = s->min_lr;
            if (old - nw > s->eps) {
                int st = ct_optim_set_lr(s->opt, g, nw);
                if (st) return st;
            }
        }
        s->cooldown_counter = s->cooldown;
        s->num_bad_epochs = 0;
    }
    for (int g = 0; g < s->n; g++) s->last[g] = ct_optim_get_lr(s->opt, g);
    return 0;
}

CT_API int ct_sched_step(ct_scheduler *s) {
    if (!s) return ct__errs(CT_ERR_ARG, "scheduler step: NULL scheduler");
    if (s->k == S_PLATEAU) return ct__errs(CT_ERR_ARG, "ReduceLROnPlateau: step needs a metric (ct_sched_step_metric)");
    s->last_epoch++;
    if (s->k == S_WARM && ++s->T_cur >= s->T_i) {
        s->T_cur -= s->T_i;
        s->T_i *= s->T_mult;
    }
    return apply(s);
}
CT_API double ct_sched_get_last_lr(const ct_scheduler *s, int group) {
    if (!s || group < 0 || group >= s->n) {
        ct__errs(CT_ERR_INDEX, "get_last_lr: no group %d", group);
        return NAN;
    }
    return s->last[group];
}
CT_API int64_t ct_sched_last_epoch(const ct_scheduler *s) { return s ? s->last_epoch : -1; }

CT_API ct_dict *ct_sched_state_dict(const ct_scheduler *s) {
    if (!s) return ct__err(CT_ERR_ARG, "state_dict: NULL scheduler");
    ct_dict *d = ct_dict_new();
    if (!d) return NULL;
    ct_scope_begin();
    char key[64];
    int st = ct_dict_set(d, "last_epoch", ct_scalar_tensor((double)s->last_epoch, CT_INT64));
    /* the state of the stateful schedulers */
    const struct { const char *k; double v; } extra[] = {
        {"T_cur", (double)s->T_cur}, {"T_i", (double)s->T_i}, {"best", s->best},
        {"num_bad_epochs", (double)s->num_bad_epochs}, {"cooldown_counter", (double)s->cooldown_counter}};
    for (int i = 0; i < 5 && !st; i++) st = ct_dict_set(d, extra[i].k, ct_scalar_tensor(extra[i].v, CT_FLOAT64));
    for (int g = 0; g < s->n && !st; g++) {
        snprintf(key, sizeof key, "base_lrs.%d", g);
        st = ct_dict_set(d, key, ct_scalar_tensor(s->base[g], CT_FLOAT64));
        snprintf(key, sizeof key, "last_lrs.%d", g);
        if (!st) st = ct_dict_set(d, key, ct_scalar_tensor(s->last[g], CT_FLOAT64));
    }
    ct_scope_end();
    if (st) {
        ct_dict_free(d);
        return NULL;
    }
    return d;
}

CT_API int ct_sched_load_state_dict(ct_scheduler *s, const ct_dict *state) {
    if (!s || !state) return ct__errs(CT_ERR_ARG, "load_state_dict: NULL scheduler or state");
    ct_scope_begin();
    int st = 0;
    char key[64];
    ct_tensor *e = ct_dict_get(state, "last_epoch");
    if (!e) st = ct_last_status();
    for (int g = 0; g < s->n && !st; g++) {
        snprintf(key, sizeof key, "base_lrs.%d", g);
        ct_tensor *b = ct_dict_get(state, key);
        snprintf(key, sizeof key, "last_lrs.%d", g);
        ct_tensor *l = ct_dict_get(state, key);
        if (!b || !l) st = ct_last_status();
        else s->base[g] = ct_item(b), s->last[g] = ct_item(l);
    }
    if (!st) s->last_epoch = (int64_t)ct_item(e);
    if (!st && ct_dict_contains(state, "T_cur")) {
        s->T_cur = (int64_t)ct_item(ct_dict_get(state, "T_cur"));
        s->T_i = (int64_t)ct_item(ct_dict_get(state, "T_i"));
        s->best = ct_item(ct_dict_get(state, "best"));
        s->num_bad_epochs = (int64_t)ct_item(ct_dict_get(state, "num_bad_epochs"));
        s->cooldown_counter = (int64_t)ct_item(ct_dict_get(state, "cooldown_counter"));
    }
    ct_scope_end();
    return st;
}

CT_API void ct_sched_free(ct_scheduler *s) {
    if (!s) return;
    free(s->base);
    free(s->last);
    free(s->milestones);
    free(s);
}

/* ---- gradient clipping ---- */
CT_API double ct_nn_utils_clip_grad_norm_(const ct_dict *params, double max_norm, double norm_type,
                                          bool error_if_nonfinite) {
    if (!params) {
        ct__errs(CT_ERR_ARG, "clip_grad_norm_: NULL params");
        return NAN;
    }
    ct_scope_begin();
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *norms[4096];
    int k = 0;
    double total = 0;
    int st = 0;
    for (int64_t i = 0; i < ct_dict_size(params) && !st; i++) {
        ct_tensor *g = ct_grad(ct_dict_value(params, i));
        if (!g) continue;
        if (k == 4096) { st = ct__errs(CT_ERR_ARG, "clip_grad_norm_: more than 4096 parameters"); break; }
        norms[k++] = ct_norm(g, norm_type, 0, NULL, false);
    }
    if (!st && k) {
        ct_tensor *all = ct_stack(k, (const ct_tensor *const *)norms, 0);
        total = ct_item(ct_norm(ct_to_dtype(all, CT_FLOAT64), norm_type, 0, NULL, false));
        if (error_if_nonfinite && !isfinite(total))
            st = ct__errs(CT_ERR_RUNTIME, "The total norm of order %g for gradients from `parameters` is non-finite, so "
                          "it cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                          "anyway, set `error_if_nonfinite=False`", norm_type);
        /* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.0 */
        double coef = max_norm / (total + 1e-6);
        if (!st && coef < 1.0)
            for (int64_t i = 0; i < ct_dict_size(params) && !st; i++) {
                ct_tensor *g = ct_grad(ct_dict_value(params, i));
                if (g) st = ct_mul_(g, ct_scalar_tensor(coef, CT_FLOAT64));
            }
    }
    ct_set_grad_enabled(prev);
    ct_scope_end();
    return st ? NAN : total;
}

CT_API int ct_nn_utils_clip_grad_value_(const ct_dict *params, double clip_value) {
    if (!params) return ct__errs(CT_ERR_ARG, "clip_grad_value_: NULL params");
    ct_scope_begin();
    int st = 0;
    for (int64_t i = 0; i < ct_dict_size(params) && !st; i++) {
        ct_tensor *g = ct_grad(ct_dict_value(params, i));
        if (!g) continue;
        ct_tensor *c = ct_clamp_scalar(g, -clip_value, clip_value);
        st = c ? ct_copy_(g, c) : ct_last_status();
    }
    ct_scope_end();
    return st;
}
