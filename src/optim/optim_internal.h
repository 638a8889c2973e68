/* Internal layout of optimizers, shared by src/optim/optim.c and src/optim/lbfgs.c.
 * Not installed. */
#ifndef CT_OPTIM_INTERNAL_H
#define CT_OPTIM_INTERNAL_H

#include "core/internal.h"
#include "ctorch/optim.h"

typedef enum { K_SGD, K_ADAM, K_ADAMW, K_RMSPROP, K_ADAGRAD, K_ADADELTA, K_ADAMAX, K_NADAM, K_RADAM, K_LBFGS } kind;

/* every option any optimizer has; a group holds its own copy */
typedef struct {
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps, alpha, lr_decay, initial_accumulator_value, rho,
        momentum_decay;
    double max_iter, max_eval, tolerance_grad, tolerance_change, history_size; /* LBFGS */
    bool strong_wolfe;                                                        /* LBFGS line search */
    double initial_lr; /* set by the first scheduler (torch's group["initial_lr"]); NaN until then */
    bool nesterov, maximize, amsgrad, centered, decoupled_weight_decay;
} opts;


/* per-parameter state: up to three buffers, named per kind */
#define N_BUF 3
typedef struct {
    ct_tensor *p;       /* strong */
    int group;
    double step;
    float mu_product; /* NAdam: kept in float32 like torch's state tensor */
    bool has_state;
    ct_tensor *buf[N_BUF]; /* strong, NULL until used */
} pstate;

struct ct_optimizer {
    kind k;
    opts defaults;
    opts *groups;
    int n_groups;
    pstate *ps;
    int64_t n_params;
    struct ct__lbfgs_state *lbfgs; /* LBFGS's state (src/optim/lbfgs.c), NULL until its first step */
};


struct ct__lbfgs_state;
/* LBFGS (lbfgs.c): one step (torch's LBFGS.step(closure)); returns the closure's first
 * loss or NaN with an error. */
double ct__lbfgs_step(ct_optimizer *opt, double (*closure)(void *user), void *user);
void ct__lbfgs_free(struct ct__lbfgs_state *st);
/* Adds / restores LBFGS's state as "state.0.<name>" entries. 0 or status. */
int ct__lbfgs_state_dict(const ct_optimizer *opt, ct_dict *d);
int ct__lbfgs_load_state_dict(ct_optimizer *opt, const ct_dict *d);

#endif
