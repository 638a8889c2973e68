/* ctorch/optim.h — optimizers (torch.optim), learning-rate schedulers and gradient
 * clipping.
 *
 * Parameters come as a ct_dict (e.g. ct_module_named_parameters()): its tensors, in
 * order, are the parameters; the keys are names only. The optimizer keeps its own
 * references. Updates follow PyTorch's single-tensor update rules exactly (same
 * order of operations, float32 arithmetic for float32 parameters, step counts and bias
 * corrections in double) and run as fused loops under no-grad: SGD, Adam and AdamW in
 * one pass over all parameters shared by the threads, the others one per parameter.
 * Parameters without a gradient are skipped, as in PyTorch.
 *
 *     ct_dict *params = ct_module_named_parameters(net);
 *     ct_optimizer *opt = ct_optim_adam_new(params, 1e-3, 0.9, 0.999, 1e-8, 0.0, false, false);
 *     ... ct_optim_zero_grad(opt, true); ct_backward(loss, ...); ct_optim_step(opt); ...
 *     ct_optim_free(opt);
 *
 * Ownership: constructors return an optimizer the caller frees with ct_optim_free.
 * Errors: NULL / negative status with PyTorch's messages ("Invalid learning rate: -1").
 */
#ifndef CTORCH_OPTIM_H
#define CTORCH_OPTIM_H

#include "ctorch/core.h"
#include "ctorch/dict.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_optimizer ct_optimizer;

/* SGD(lr, momentum, dampening, weight_decay, nesterov, maximize); torch defaults:
 * lr 1e-3, the rest 0 / false. */
CT_API ct_optimizer *ct_optim_sgd_new(const ct_dict *params, double lr, double momentum, double dampening,
                                      double weight_decay, bool nesterov, bool maximize);
/* Adam(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad, maximize). */
CT_API ct_optimizer *ct_optim_adam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                       double weight_decay, bool amsgrad, bool maximize);
/* AdamW: Adam with decoupled weight decay (torch default weight_decay 1e-2). */
CT_API ct_optimizer *ct_optim_adamw_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, bool amsgrad, bool maximize);
/* RMSprop(lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered, maximize). */
CT_API ct_optimizer *ct_optim_rmsprop_new(const ct_dict *params, double lr, double alpha, double eps,
                                          double weight_decay, double momentum, bool centered, bool maximize);
/* Adagrad(lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10, maximize). */
CT_API ct_optimizer *ct_optim_adagrad_new(const ct_dict *params, double lr, double lr_decay, double weight_decay,
                                          double initial_accumulator_value, double eps, bool maximize);

/* Adadelta(lr 1.0, rho 0.9, eps 1e-6, weight_decay 0, maximize). */
CT_API ct_optimizer *ct_optim_adadelta_new(const ct_dict *params, double lr, double rho, double eps,
                                           double weight_decay, bool maximize);
/* Adamax(lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, maximize). */
CT_API ct_optimizer *ct_optim_adamax_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                         double weight_decay, bool maximize);
/* NAdam(lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, momentum_decay 4e-3,
 * decoupled_weight_decay, maximize). */
CT_API ct_optimizer *ct_optim_nadam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, double momentum_decay, bool decoupled_weight_decay,
                                        bool maximize);
/* RAdam(lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, decoupled_weight_decay, maximize). */
CT_API ct_optimizer *ct_optim_radam_new(const ct_dict *params, double lr, double beta1, double beta2, double eps,
                                        double weight_decay, bool decoupled_weight_decay, bool maximize);

/* LBFGS(lr 1, max_iter 20, max_eval (<= 0: max_iter * 5 / 4), tolerance_grad 1e-7,
 * tolerance_change 1e-9, history_size 100, line_search_fn NULL or "strong_wolfe",
 * maximize). One parameter group only. Step it with ct_optim_step_closure: each step
 * re-evaluates the model several times. */
CT_API ct_optimizer *ct_optim_lbfgs_new(const ct_dict *params, double lr, int64_t max_iter, int64_t max_eval,
                                        double tolerance_grad, double tolerance_change, int64_t history_size,
                                        const char *line_search_fn, bool maximize);

CT_API void ct_optim_free(ct_optimizer *opt);
/* One update of every parameter that has a gradient. 0 or status. SGD, Adam and AdamW
 * check every parameter before updating any, so an error (a float16 parameter, a
 * gradient of the wrong size) leaves all of them, their step counts and state as they
 * were; the other optimizers update parameter by parameter and stop at the first one
 * that fails. */
CT_API int ct_optim_step(ct_optimizer *opt);
/* torch's step(closure): closure(user) re-evaluates the model — zero the gradients,
 * run the forward pass, call ct_backward — and returns the loss (NaN with an error set,
 * e.g. by ct_set_error, to abort). It runs with grad mode on. LBFGS calls it as often as
 * its iterations and line search need; the other optimizers once, then step. Returns
 * the loss of the first evaluation, or NaN with an error. */
CT_API double ct_optim_step_closure(ct_optimizer *opt, double (*closure)(void *user), void *user);
/* Clears (set_to_none) or zeroes the gradients of every parameter. */
CT_API int ct_optim_zero_grad(ct_optimizer *opt, bool set_to_none);

/* Parameter groups: group 0 is the constructor's. add_param_group appends a group of
 * new parameters with the optimizer's defaults; options are then changed per group by
 * name ("lr", "weight_decay", "momentum", "dampening", "beta1", "beta2", "eps", "alpha",
 * "lr_decay", "rho", "momentum_decay"; booleans as 0/1: "nesterov", "maximize", "amsgrad",
 * "centered", "decoupled_weight_decay").
 * Returns the group index / 0, or a negative status. */
CT_API int ct_optim_add_param_group(ct_optimizer *opt, const ct_dict *params);
CT_API int ct_optim_num_groups(const ct_optimizer *opt);
CT_API int ct_optim_set_option(ct_optimizer *opt, int group, const char *name, double value);
/* The option's value, or NAN with an error for an unknown name or group. */
CT_API double ct_optim_get_option(const ct_optimizer *opt, int group, const char *name);
CT_API double ct_optim_get_lr(const ct_optimizer *opt, int group);
CT_API int ct_optim_set_lr(ct_optimizer *opt, int group, double lr);

/* PyTorch's optimizer state_dict, flattened with dots: "state.<i>.<name>" (step as a
 * 0-dim float32 tensor, exp_avg, momentum_buffer, ...) and "param_groups.<g>.<option>"
 * (0-dim float64; booleans 0/1) plus "param_groups.<g>.params" (int64 indices). A new
 * dict the caller frees (tensors are copies). */
CT_API ct_dict *ct_optim_state_dict(const ct_optimizer *opt);
/* Restores state and options from such a dict (same optimizer kind and parameter
 * shapes), so training resumes exactly. 0, CT_ERR_KEY / CT_ERR_SHAPE / CT_ERR_ARG. */
CT_API int ct_optim_load_state_dict(ct_optimizer *opt, const ct_dict *state);

/* ---- learning-rate schedulers (torch.optim.lr_scheduler) ----
 * A scheduler sets the lr of every group of its optimizer (which must outlive it).
 * Construction performs PyTorch's initial step (last_epoch 0). ct_sched_step advances
 * one epoch. */
typedef struct ct_scheduler ct_scheduler;
CT_API ct_scheduler *ct_sched_step_lr_new(ct_optimizer *opt, int64_t step_size, double gamma);
CT_API ct_scheduler *ct_sched_multistep_lr_new(ct_optimizer *opt, int n, const int64_t *milestones, double gamma);
CT_API ct_scheduler *ct_sched_exponential_lr_new(ct_optimizer *opt, double gamma);
/* CosineAnnealingLR(T_max, eta_min), PyTorch's recursive form (numbers match it). */
CT_API ct_scheduler *ct_sched_cosine_annealing_lr_new(ct_optimizer *opt, int64_t T_max, double eta_min);
/* LinearLR(start_factor 1/3, end_factor 1.0, total_iters 5). */
CT_API ct_scheduler *ct_sched_linear_lr_new(ct_optimizer *opt, double start_factor, double end_factor,
                                            int64_t total_iters);
/* LambdaLR: lr = base_lr * fn(epoch, user). */
CT_API ct_scheduler *ct_sched_lambda_lr_new(ct_optimizer *opt, double (*fn)(int64_t epoch, void *user), void *user);
/* PolynomialLR(total_iters 5, power 1.0). */
CT_API ct_scheduler *ct_sched_polynomial_lr_new(ct_optimizer *opt, int64_t total_iters, double power);
/* CosineAnnealingWarmRestarts(T_0, T_mult 1, eta_min 0). */
CT_API ct_scheduler *ct_sched_cosine_warm_restarts_new(ct_optimizer *opt, int64_t T_0, int64_t T_mult, double eta_min);
/* ReduceLROnPlateau(mode "min"/"max" as mode_max, factor 0.1, patience 10, threshold 1e-4,
 * threshold_mode "rel"/"abs" as threshold_abs, cooldown 0, min_lr 0, eps 1e-8); step it
 * with ct_sched_step_metric. */
CT_API ct_scheduler *ct_sched_reduce_on_plateau_new(ct_optimizer *opt, bool mode_max, double factor, int64_t patience,
                                                    double threshold, bool threshold_abs, int64_t cooldown,
                                                    double min_lr, double eps);
/* CyclicLR(base_lr, max_lr: n_lrs values, 1 for all groups or one per group; options
 * (NULL: torch's defaults)). Sets each group's lr to base_lr; cycles the momentum
 * ("momentum" of SGD/RMSprop, beta1 of the Adam family) unless cycle_momentum is false. */
typedef struct ct_cyclic_lr_opts {
    int64_t step_size_up;   /* 2000 */
    int64_t step_size_down; /* 0: same as step_size_up */
    const char *mode;       /* "triangular" (NULL), "triangular2", "exp_range" */
    double gamma;           /* 1.0 (exp_range) */
    /* custom scale policy (overrides mode): f(x) with x the cycle number, or the
     * iteration when scale_mode_iterations */
    double (*scale_fn)(double x, void *user);
    void *scale_fn_user;
    bool scale_mode_iterations;
    bool cycle_momentum;    /* true */
    double base_momentum;   /* 0.8 */
    double max_momentum;    /* 0.9 */
} ct_cyclic_lr_opts;
#define CT_CYCLIC_LR_DEFAULTS {2000, 0, "triangular", 1.0, NULL, NULL, false, true, 0.8, 0.9}
CT_API ct_scheduler *ct_sched_cyclic_lr_new(ct_optimizer *opt, int n_lrs, const double *base_lr, const double *max_lr,
                                            const ct_cyclic_lr_opts *opts);
/* OneCycleLR(max_lr (n_lrs values: 1 or one per group), total_steps (torch's
 * epochs * steps_per_epoch), options (NULL: torch's defaults)). Stepping past
 * total_steps is an error, as in torch. */
typedef struct ct_one_cycle_lr_opts {
    double pct_start;            /* 0.3 */
    const char *anneal_strategy; /* "cos" (NULL) or "linear" */
    bool cycle_momentum;         /* true */
    double base_momentum;        /* 0.85 */
    double max_momentum;         /* 0.95 */
    double div_factor;           /* 25 */
    double final_div_factor;     /* 1e4 */
    bool three_phase;            /* false */
} ct_one_cycle_lr_opts;
#define CT_ONE_CYCLE_LR_DEFAULTS {0.3, "cos", true, 0.85, 0.95, 25.0, 1e4, false}
CT_API ct_scheduler *ct_sched_one_cycle_lr_new(ct_optimizer *opt, int n_lrs, const double *max_lr,
                                               int64_t total_steps, const ct_one_cycle_lr_opts *opts);
/* SequentialLR(schedulers[n] on the same optimizer, milestones[n - 1]). TAKES OVER the n
 * schedulers (freed with it, and on failure); do not step or free them yourself. */
CT_API ct_scheduler *ct_sched_sequential_lr_new(ct_optimizer *opt, int n, ct_scheduler **schedulers,
                                                const int64_t *milestones);
CT_API int ct_sched_step(ct_scheduler *s);
/* A step with the monitored metric (ReduceLROnPlateau; other schedulers ignore it). */
CT_API int ct_sched_step_metric(ct_scheduler *s, double metric);
/* The last computed lr of a group (get_last_lr()). */
CT_API double ct_sched_get_last_lr(const ct_scheduler *s, int group);
CT_API int64_t ct_sched_last_epoch(const ct_scheduler *s);
/* state_dict / load: "last_epoch", "base_lrs.<g>", "last_lrs.<g>" (0-dim float64). */
CT_API ct_dict *ct_sched_state_dict(const ct_scheduler *s);
CT_API int ct_sched_load_state_dict(ct_scheduler *s, const ct_dict *state);
CT_API void ct_sched_free(ct_scheduler *s);

/* ---- gradient clipping (torch.nn.utils) ---- */
/* Scales all gradients so their total norm (norm_type; INFINITY for max) is at most
 * max_norm; returns the total norm before clipping (NaN with an error on failure, or if
 * error_if_nonfinite and the norm is not finite). */
CT_API double ct_nn_utils_clip_grad_norm_(const ct_dict *params, double max_norm, double norm_type,
                                          bool error_if_nonfinite);
/* Clamps every gradient element to [-clip_value, clip_value]. 0 or status. */
CT_API int ct_nn_utils_clip_grad_value_(const ct_dict *params, double clip_value);

#ifdef __cplusplus
}
#endif

#endif
