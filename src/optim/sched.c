/* Learning-rate schedulers (torch.optim.lr_scheduler) and gradient clipping
 * (torch.nn.utils). Schedulers reproduce PyTorch's get_lr() formulas, including the
 * recursive (chainable) forms, so the learning rates match step for step. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/optim.h"

typedef enum { S_STEP, S_MULTISTEP, S_EXP, S_COSINE, S_LINEAR, S_LAMBDA, S_POLY, S_WARM, S_PLATEAU, S_CYCLIC,
               S_ONECYCLE, S_SEQUENTIAL } skind;

/* optim.c */
const char *ct__optim_momentum_option(const ct_optimizer *opt);
int ct__optim_set_unchecked(ct_optimizer *opt, int group, const char *name, double value);

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
    /* CyclicLR and OneCycleLR: per-group max / min lrs and momentum bounds; the
     * momentum option moved ("momentum" or "beta1"), NULL when not cycling */
    double *max_lrs, *min_lrs, *base_mom, *max_mom;
    const char *mom_opt;
    double total_size, step_ratio; /* CyclicLR */
    int cyc_mode;                  /* 0 triangular, 1 triangular2, 2 exp_range */
    double (*scale_fn)(double, void *);
    bool scale_iterations;
    int64_t total_steps; /* OneCycleLR */
    int n_phases;
    struct {
        double end;
        int lr0, lr1, m0, m1; /* lr: 0 initial, 1 max, 2 min; momentum: 0 max, 1 base */
    } phase[3];
    bool anneal_linear;
    /* SequentialLR: owned children and milestones (n_milestones = n_children - 1) */
    ct_scheduler **children;
    int n_children;
};

static double anneal(const ct_scheduler *s, double start, double end, double pct) {
    if (s->anneal_linear) return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

static double cyc_scale(const ct_scheduler *s, double x) {
    if (s->scale_fn) return s->scale_fn(x, s->user);
    if (s->cyc_mode == 1) return 1 / pow(2.0, x - 1);
    if (s->cyc_mode == 2) return pow(s->gamma, x);
    return 1.0;
}

/* CyclicLR's lr (and momentum when mom != NULL) of group g at last_epoch. */
static double cyclic_lr(const ct_scheduler *s, int g, double *mom) {
    double e = (double)s->last_epoch;
    double cycle = floor(1 + e / s->total_size);
    double x = 1.0 + e / s->total_size - cycle;
    double scale = x <= s->step_ratio ? x / s->step_ratio : (x - 1) / (s->step_ratio - 1);
    double f = cyc_scale(s, s->scale_iterations ? e : cycle);
    if (mom) *mom = s->max_mom[g] - (s->max_mom[g] - s->base_mom[g]) * scale * f;
    return s->base[g] + (s->max_lrs[g] - s->base[g]) * scale * f;
}

/* OneCycleLR's lr (and momentum) of group g at last_epoch. */
static double onecycle_lr(const ct_scheduler *s, int g, double *mom) {
    double step = (double)s->last_epoch, start = 0.0;
    double lrs[3] = {s->base[g], s->max_lrs[g], s->min_lrs[g]}, moms[2] = {s->max_mom[g], s->base_mom[g]};
    for (int i = 0; i < s->n_phases; i++) {
        double end = s->phase[i].end;
        if (step <= end || i == s->n_phases - 1) {
            double pct = (step - start) / (end - start);
            if (mom) *mom = anneal(s, moms[s->phase[i].m0], moms[s->phase[i].m1], pct);
            return anneal(s, lrs[s->phase[i].lr0], lrs[s->phase[i].lr1], pct);
        }
        start = end;
    }
    return lrs[0]; /* not reached: the last phase always matches */
}

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
    case S_SEQUENTIAL:
        return lr;
    case S_CYCLIC:
        return cyclic_lr(s, g, NULL);
    case S_ONECYCLE:
        return onecycle_lr(s, g, NULL);
    }
    return lr;
}

/* torch's _get_closed_form_lr at the current last_epoch (what SequentialLR's switch to
 * a scheduler, _update_lr(0), computes); get_lr() for the kinds without one. */
static double closed_form_lr(const ct_scheduler *s, int g) {
    double base = s->base[g];
    int64_t e = s->last_epoch;
    switch (s->k) {
    case S_STEP:
        return base * pow(s->gamma, (double)(e / s->step_size));
    case S_MULTISTEP: {
        int hits = 0;
        for (int i = 0; i < s->n_milestones; i++) hits += s->milestones[i] <= e;
        return base * pow(s->gamma, hits);
    }
    case S_EXP:
        return base * pow(s->gamma, (double)e);
    case S_COSINE:
        return s->eta_min + (base - s->eta_min) * (1 + cos(M_PI * (double)e / (double)s->T_max)) / 2;
    case S_LINEAR:
        return base * (s->start_factor + (s->end_factor - s->start_factor) *
                                             (double)(s->total_iters < e ? s->total_iters : e) / (double)s->total_iters);
    case S_POLY:
        return base * pow(1.0 - (double)(s->total_iters < e ? s->total_iters : e) / (double)s->total_iters, s->power);
    default:
        return next_lr(s, g);
    }
}

/* Sets every group's lr (and cycled momentum) from lr_of; records the last lrs. */
static int apply_with(ct_scheduler *s, double (*lr_of)(const ct_scheduler *, int)) {
    if (s->k == S_ONECYCLE && s->last_epoch > s->total_steps)
        return ct__errs(CT_ERR_ARG, "Tried to step %lld times. The specified number of total steps is %lld",
                        (long long)s->last_epoch, (long long)s->total_steps);
    for (int g = 0; g < s->n; g++) {
        double lr = lr_of(s, g);
        int st = ct__optim_set_unchecked(s->opt, g, "lr", lr);
        if (!st && s->mom_opt) {
            double m = 0;
            if (s->k == S_CYCLIC) cyclic_lr(s, g, &m);
            else onecycle_lr(s, g, &m);
            st = ct__optim_set_unchecked(s->opt, g, s->mom_opt, m);
        }
        if (st) return st;
        s->last[g] = lr;
    }
    return 0;
}
static int apply(ct_scheduler *s) { return apply_with(s, next_lr); }

/* A scheduler of kind k on opt with base lrs from the groups' initial_lr (set to the
 * current lr where no scheduler has set it yet: torch's setdefault), before its
 * initial step. */
static ct_scheduler *alloc_sched(skind k, ct_optimizer *opt, ct_scheduler proto) {
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
    for (int g = 0; g < s->n; g++) {
        double il = ct_optim_get_option(opt, g, "initial_lr");
        if (isnan(il)) {
            il = ct_optim_get_lr(opt, g);
            ct_optim_set_option(opt, g, "initial_lr", il);
        }
        s->base[g] = il;
    }
    return s;
}

/* The initial step (last_epoch 0). Frees s and returns NULL on failure. */
static ct_scheduler *start(ct_scheduler *s) {
    if (!s) return NULL;
    s->last_epoch = 0;
    if (apply(s)) {
        ct_sched_free(s);
        return NULL;
    }
    return s;
}

static ct_scheduler *make(skind k, ct_optimizer *opt, ct_scheduler proto) { return start(alloc_sched(k, opt, proto)); }

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

/* Per-group values from a list of 1 (for all groups) or n_groups values (torch's
 * _format_param). A malloc'd array or NULL with an error. */
static double *per_group(const char *sched, const char *what, int n, int nv, const double *v) {
    if (!v || (nv != 1 && nv != n))
        return ct__err(CT_ERR_ARG, "%s: expected 1 or %d values for %s, got %d", sched, n, what, v ? nv : 0);
    double *a = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!a) return ct__err(CT_ERR_OOM, "%s: out of memory", sched);
    for (int g = 0; g < n; g++) a[g] = v[nv == 1 ? 0 : g];
    return a;
}

/* Momentum cycling set-up shared by CyclicLR and OneCycleLR: checks the optimizer has a
 * momentum, sets it to max_momentum in every group. */
static int setup_momentum(ct_scheduler *s, const char *name, double base_momentum, double max_momentum) {
    s->mom_opt = ct__optim_momentum_option(s->opt);
    if (!s->mom_opt)
        return ct__errs(CT_ERR_ARG, "%s: optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
                        name);
    s->base_mom = per_group(name, "base_momentum", s->n, 1, &base_momentum);
    s->max_mom = per_group(name, "max_momentum", s->n, 1, &max_momentum);
    if (!s->base_mom || !s->max_mom) return ct_last_status();
    for (int g = 0; g < s->n; g++) {
        int st = ct_optim_set_option(s->opt, g, s->mom_opt, max_momentum);
        if (st) return st;
    }
    return 0;
}

CT_API ct_scheduler *ct_sched_cyclic_lr_new(ct_optimizer *opt, int n_lrs, const double *base_lr, const double *max_lr,
                                            const ct_cyclic_lr_opts *o) {
    ct_cyclic_lr_opts d = CT_CYCLIC_LR_DEFAULTS;
    if (!o) o = &d;
    if (!opt) return ct__err(CT_ERR_ARG, "CyclicLR: NULL optimizer");
    int mode = !o->mode || strcmp(o->mode, "triangular") == 0 ? 0
               : strcmp(o->mode, "triangular2") == 0          ? 1
               : strcmp(o->mode, "exp_range") == 0            ? 2
                                                              : -1;
    if (mode < 0 && !o->scale_fn) return ct__err(CT_ERR_ARG, "CyclicLR: mode is invalid and scale_fn is None");
    if (o->step_size_up <= 0 || o->step_size_down < 0)
        return ct__err(CT_ERR_ARG, "CyclicLR: step_size_up must be positive and step_size_down non-negative");
    int n = ct_optim_num_groups(opt);
    double *bases = per_group("CyclicLR", "base_lr", n, n_lrs, base_lr);
    if (!bases) return NULL;
    /* torch sets each group's lr to base_lr before the base-class set-up */
    for (int g = 0; g < n; g++)
        if (ct_optim_set_lr(opt, g, bases[g])) {
            free(bases);
            return NULL;
        }
    double up = (double)o->step_size_up, down = o->step_size_down > 0 ? (double)o->step_size_down : up;
    ct_scheduler *s = alloc_sched(S_CYCLIC, opt, (ct_scheduler){
        .total_size = up + down, .step_ratio = up / (up + down), .cyc_mode = mode < 0 ? 0 : mode, .gamma = o->gamma,
        .scale_fn = o->scale_fn, .user = o->scale_fn_user,
        .scale_iterations = o->scale_fn ? o->scale_mode_iterations : mode == 2});
    if (!s) {
        free(bases);
        return NULL;
    }
    s->max_lrs = per_group("CyclicLR", "max_lr", n, n_lrs, max_lr);
    if (!s->max_lrs || (o->cycle_momentum && setup_momentum(s, "CyclicLR", o->base_momentum, o->max_momentum))) {
        free(bases);
        ct_sched_free(s);
        return NULL;
    }
    /* torch's initial step uses base_lrs = the groups' initial_lr; base_lr replaces them after */
    s = start(s);
    if (!s) {
        free(bases);
        return NULL;
    }
    free(s->base);
    s->base = bases;
    return s;
}

CT_API ct_scheduler *ct_sched_one_cycle_lr_new(ct_optimizer *opt, int n_lrs, const double *max_lr, int64_t total_steps,
                                               const ct_one_cycle_lr_opts *o) {
    ct_one_cycle_lr_opts d = CT_ONE_CYCLE_LR_DEFAULTS;
    if (!o) o = &d;
    if (!opt) return ct__err(CT_ERR_ARG, "OneCycleLR: NULL optimizer");
    if (total_steps <= 0)
        return ct__err(CT_ERR_ARG, "Expected positive integer total_steps, but got %lld", (long long)total_steps);
    if (!(o->pct_start >= 0 && o->pct_start <= 1))
        return ct__err(CT_ERR_ARG, "Expected float between 0 and 1 pct_start, but got %g", o->pct_start);
    bool linear = o->anneal_strategy && strcmp(o->anneal_strategy, "linear") == 0;
    if (o->anneal_strategy && !linear && strcmp(o->anneal_strategy, "cos") != 0)
        return ct__err(CT_ERR_ARG, "anneal_strategy must be one of 'cos' or 'linear', instead got %s",
                       o->anneal_strategy);
    int n = ct_optim_num_groups(opt);
    double *maxs = per_group("OneCycleLR", "max_lr", n, n_lrs, max_lr);
    if (!maxs) return NULL;
    /* torch overwrites initial_lr = max_lr / div_factor (min_lr = initial_lr / final_div_factor) */
    for (int g = 0; g < n; g++)
        if (ct_optim_set_option(opt, g, "initial_lr", maxs[g] / o->div_factor)) {
            free(maxs);
            return NULL;
        }
    double T = (double)total_steps, p = o->pct_start;
    ct_scheduler proto = {.total_steps = total_steps, .anneal_linear = linear};
    if (o->three_phase) {
        proto.n_phases = 3;
        proto.phase[0] = (typeof(proto.phase[0])){p * T - 1, 0, 1, 0, 1};
        proto.phase[1] = (typeof(proto.phase[0])){2 * p * T - 2, 1, 0, 1, 0};
        proto.phase[2] = (typeof(proto.phase[0])){T - 1, 0, 2, 0, 0};
    } else {
        proto.n_phases = 2;
        proto.phase[0] = (typeof(proto.phase[0])){p * T - 1, 0, 1, 0, 1};
        proto.phase[1] = (typeof(proto.phase[0])){T - 1, 1, 2, 1, 0};
    }
    ct_scheduler *s = alloc_sched(S_ONECYCLE, opt, proto);
    if (!s) {
        free(maxs);
        return NULL;
    }
    s->max_lrs = maxs;
    s->min_lrs = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!s->min_lrs) {
        ct_sched_free(s);
        return ct__err(CT_ERR_OOM, "OneCycleLR: out of memory");
    }
    for (int g = 0; g < n; g++) s->min_lrs[g] = s->base[g] / o->final_div_factor;
    if (o->cycle_momentum && setup_momentum(s, "OneCycleLR", o->base_momentum, o->max_momentum)) {
        ct_sched_free(s);
        return NULL;
    }
    return start(s);
}

/* SequentialLR's "undo" of its children's initial steps. */
static void undo(ct_scheduler *s) {
    if (s->k == S_SEQUENTIAL)
        for (int i = 0; i < s->n_children; i++) undo(s->children[i]);
    else
        s->last_epoch--;
}

/* A child's initial step after the undo (torch's _initial_step: step() from last_epoch -1). */
static int initial_step(ct_scheduler *s) {
    if (s->k == S_WARM) {
        s->T_i = s->T_0;
        s->T_cur = 0;
        s->last_epoch = 0;
        return apply(s);
    }
    return ct_sched_step(s);
}

static int64_t bisect_right(const int64_t *a, int n, int64_t v) {
    int i = 0;
    while (i < n && a[i] <= v) i++;
    return i;
}

CT_API ct_scheduler *ct_sched_sequential_lr_new(ct_optimizer *opt, int n, ct_scheduler **schedulers,
                                                const int64_t *milestones) {
    const char *err = NULL;
    if (!opt) err = "SequentialLR: NULL optimizer";
    else if (n < 1 || !schedulers) err = "SequentialLR expects at least one scheduler, but got no scheduler.";
    for (int i = 0; !err && i < n; i++) {
        if (!schedulers[i]) err = "SequentialLR: a scheduler is NULL";
        else if (schedulers[i]->k == S_PLATEAU)
            err = "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs to be "
                  "specified when calling `step`";
        else if (schedulers[i]->opt != opt) err = "SequentialLR expects all schedulers to belong to the same optimizer";
    }
    if (!err && n > 1 && !milestones) err = "SequentialLR: NULL milestones";
    int64_t *ms = err ? NULL : malloc(sizeof(int64_t) * (size_t)n);
    ct_scheduler **kids = err ? NULL : malloc(sizeof *kids * (size_t)n);
    ct_scheduler *s = err || !ms || !kids ? NULL : alloc_sched(S_SEQUENTIAL, opt, (ct_scheduler){0});
    if (!err && (!ms || !kids || !s)) err = ct_last_status() ? NULL : "SequentialLR: out of memory";
    if (err || !s) {
        if (err) ct__errs(CT_ERR_ARG, "%s", err);
        for (int i = 0; schedulers && i < n; i++) ct_sched_free(schedulers[i]);
        free(ms), free(kids);
        ct_sched_free(s);
        return NULL;
    }
    for (int i = 0; i < n; i++) kids[i] = schedulers[i];
    for (int i = 0; i + 1 < n; i++) ms[i] = milestones[i];
    s->children = kids, s->n_children = n;
    s->milestones = ms, s->n_milestones = n - 1;
    s->last_epoch = 0;
    int st = 0;
    for (int g = 0; g < s->n && !st; g++) st = ct_optim_set_lr(opt, g, s->base[g]); /* back to initial_lr */
    undo(s);
    s->last_epoch = 0; /* undo() touches only the children */
    ct_scheduler *first = kids[bisect_right(ms, n - 1, 0)];
    if (!st) st = initial_step(first);
    for (int g = 0; g < s->n && !st; g++) s->last[g] = first->last[g];
    if (st) {
        ct_sched_free(s);
        return NULL;
    }
    return s;
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
    if (s->k == S_SEQUENTIAL) {
        s->last_epoch++;
        int64_t idx = bisect_right(s->milestones, s->n_milestones, s->last_epoch);
        ct_scheduler *c = s->children[idx];
        int st;
        if (idx > 0 && s->milestones[idx - 1] == s->last_epoch) {
            c->last_epoch = 0; /* torch's _update_lr(0): the closed form at epoch 0 */
            st = apply_with(c, closed_form_lr);
        } else {
            st = ct_sched_step(c);
        }
        for (int g = 0; g < s->n && !st; g++) s->last[g] = c->last[g];
        return st;
    }
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
    /* SequentialLR: each child's state under "_schedulers.<i>." */
    for (int i = 0; i < s->n_children && !st; i++) {
        ct_dict *c = ct_sched_state_dict(s->children[i]);
        if (!c) st = ct_last_status();
        char ck[192];
        for (int64_t j = 0; c && j < ct_dict_size(c) && !st; j++) {
            snprintf(ck, sizeof ck, "_schedulers.%d.%s", i, ct_dict_key(c, j));
            st = ct_dict_set(d, ck, ct_dict_value(c, j));
        }
        ct_dict_free(c);
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
    for (int i = 0; i < s->n_children && !st; i++) {
        ct_dict *c = ct_dict_new();
        if (!c) st = ct_last_status();
        char pre[32];
        int np = snprintf(pre, sizeof pre, "_schedulers.%d.", i);
        for (int64_t j = 0; c && j < ct_dict_size(state) && !st; j++)
            if (strncmp(ct_dict_key(state, j), pre, (size_t)np) == 0)
                st = ct_dict_set(c, ct_dict_key(state, j) + np, ct_dict_value(state, j));
        if (!st) st = ct_sched_load_state_dict(s->children[i], c);
        ct_dict_free(c);
    }
    ct_scope_end();
    return st;
}

CT_API void ct_sched_free(ct_scheduler *s) {
    if (!s) return;
    free(s->base);
    free(s->last);
    free(s->milestones);
    free(s->max_lrs), free(s->min_lrs), free(s->base_mom), free(s->max_mom);
    for (int i = 0; i < s->n_children; i++) ct_sched_free(s->children[i]);
    free(s->children);
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
    int64_t np = ct_dict_size(params);
    ct_tensor **norms = malloc(sizeof(ct_tensor *) * (size_t)(np ? np : 1));
    int k = 0;
    double total = 0;
    int st = norms ? 0 : ct__errs(CT_ERR_OOM, "clip_grad_norm_: out of memory");
    for (int64_t i = 0; i < np && !st; i++) {
        ct_tensor *g = ct_grad(ct_dict_value(params, i));
        if (!g) continue;
        if (!(norms[k++] = ct_norm(g, norm_type, 0, NULL, false))) st = ct_last_status();
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
    free(norms);
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
