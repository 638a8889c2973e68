/* Loss modules (MSELoss, CrossEntropyLoss, ... CTCLoss): forward_n takes torch's forward
 * arguments ((input, target), (x1, x2, target), (anchor, positive, negative),
 * (input, target, var), (log_probs, targets, input_lengths, target_lengths)) and returns
 * the loss. Class weights are buffers, registered as torch registers them. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/nn.h"
#include "nn/module_internal.h"

typedef enum {
    L_MSE, L_L1, L_SMOOTH_L1, L_HUBER, L_CE, L_NLL, L_BCE, L_BCE_LOGITS, L_KLDIV, L_COSINE, L_MARGIN_RANKING,
    L_HINGE, L_TRIPLET, L_MULTILABEL_SOFT, L_POISSON, L_GAUSSIAN, L_CTC
} loss_kind;

typedef struct {
    loss_kind kind;
    ct_reduction red;
    double a, b, c;  /* beta / delta / label_smoothing / margin / eps, p ... */
    int64_t i;       /* ignore_index, blank */
    bool f1, f2;     /* log_target, swap, log_input, full, zero_infinity */
} loss_ctx;

static const int N_INPUTS[] = {
    [L_MSE] = 2, [L_L1] = 2, [L_SMOOTH_L1] = 2, [L_HUBER] = 2, [L_CE] = 2, [L_NLL] = 2, [L_BCE] = 2,
    [L_BCE_LOGITS] = 2, [L_KLDIV] = 2, [L_COSINE] = 3, [L_MARGIN_RANKING] = 3, [L_HINGE] = 2, [L_TRIPLET] = 3,
    [L_MULTILABEL_SOFT] = 2, [L_POISSON] = 2, [L_GAUSSIAN] = 3, [L_CTC] = 4};

static ct_tensor *buf_or_null(const ct_module *m, int64_t i) { return i < m->n_buffers ? ct__mod_buffer(m, i) : NULL; }

static int loss_forward_n(ct_module *self, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    loss_ctx *c = ct_module_ctx(self);
    int need = N_INPUTS[c->kind];
    if (n_in != need)
        return ct_set_error(CT_ERR_ARG, "%s.forward takes %d inputs, got %d", ct_module_type_name(self), need, n_in);
    for (int k = 0; k < n_in; k++)
        if (!in[k]) {
            if (ct_last_status() != CT_OK) return ct_last_status();
            return ct_set_error(CT_ERR_NULL, "%s.forward: input %d is NULL", ct_module_type_name(self), k);
        }
    if (n_out < 1) return 0;
    ct_tensor *x = in[0], *y = in[1], *w = buf_or_null(self, 0), *r;
    switch (c->kind) {
    case L_MSE: r = ct_nn_mse_loss(x, y, c->red); break;
    case L_L1: r = ct_nn_l1_loss(x, y, c->red); break;
    case L_SMOOTH_L1: r = ct_nn_smooth_l1_loss(x, y, c->red, c->a); break;
    case L_HUBER: r = ct_nn_huber_loss(x, y, c->red, c->a); break;
    case L_CE: r = ct_nn_cross_entropy(x, y, w, c->i, c->red, c->a); break;
    case L_NLL: r = ct_nn_nll_loss(x, y, w, c->i, c->red); break;
    case L_BCE: r = ct_nn_binary_cross_entropy(x, y, w, c->red); break;
    case L_BCE_LOGITS: r = ct_nn_binary_cross_entropy_with_logits(x, y, w, buf_or_null(self, 1), c->red); break;
    case L_KLDIV: r = ct_nn_kl_div(x, y, c->red, c->f1); break;
    case L_COSINE: r = ct_nn_cosine_embedding_loss(x, y, in[2], c->a, c->red); break;
    case L_MARGIN_RANKING: r = ct_nn_margin_ranking_loss(x, y, in[2], c->a, c->red); break;
    case L_HINGE: r = ct_nn_hinge_embedding_loss(x, y, c->a, c->red); break;
    case L_TRIPLET: r = ct_nn_triplet_margin_loss(x, y, in[2], c->a, c->b, c->c, c->f1, c->red); break;
    case L_MULTILABEL_SOFT: r = ct_nn_multilabel_soft_margin_loss(x, y, w, c->red); break;
    case L_POISSON: r = ct_nn_poisson_nll_loss(x, y, c->f1, c->f2, c->a, c->red); break;
    case L_GAUSSIAN: r = ct_nn_gaussian_nll_loss(x, y, in[2], c->f1, c->a, c->red); break;
    case L_CTC: r = ct_nn_ctc_loss(x, y, in[2], in[3], c->i, c->red, c->f1); break;
    default: r = ct__err(CT_ERR_RUNTIME, "loss module: unknown kind");
    }
    out[0] = r;
    return r ? 1 : ct_last_status();
}

#define LOSS_TYPE(var, tname) static const ct_module_type var = {.name = tname, .forward_n = loss_forward_n, .free_ctx = free}
LOSS_TYPE(T_MSE, "MSELoss"); LOSS_TYPE(T_L1, "L1Loss"); LOSS_TYPE(T_SMOOTH_L1, "SmoothL1Loss");
LOSS_TYPE(T_HUBER, "HuberLoss"); LOSS_TYPE(T_CE, "CrossEntropyLoss"); LOSS_TYPE(T_NLL, "NLLLoss");
LOSS_TYPE(T_BCE, "BCELoss"); LOSS_TYPE(T_BCE_LOGITS, "BCEWithLogitsLoss"); LOSS_TYPE(T_KLDIV, "KLDivLoss");
LOSS_TYPE(T_COSINE, "CosineEmbeddingLoss"); LOSS_TYPE(T_MARGIN_RANKING, "MarginRankingLoss");
LOSS_TYPE(T_HINGE, "HingeEmbeddingLoss"); LOSS_TYPE(T_TRIPLET, "TripletMarginLoss");
LOSS_TYPE(T_MULTILABEL_SOFT, "MultiLabelSoftMarginLoss"); LOSS_TYPE(T_POISSON, "PoissonNLLLoss");
LOSS_TYPE(T_GAUSSIAN, "GaussianNLLLoss"); LOSS_TYPE(T_CTC, "CTCLoss");

/* a loss module; weights (n_w of them, names[k], each may be NULL) become buffers */
static ct_module *loss_new(const ct_module_type *t, loss_ctx v, int n_w, const char *const *names,
                           ct_tensor *const *ws) {
    bool batchmean_ok = v.kind == L_KLDIV;
    if (!(v.red == CT_REDUCTION_MEAN || v.red == CT_REDUCTION_SUM || v.red == CT_REDUCTION_NONE ||
          (batchmean_ok && v.red == CT_REDUCTION_BATCHMEAN)))
        return ct__err(CT_ERR_ARG, "%s: %d is not a valid value for reduction", t->name, (int)v.red);
    loss_ctx *c = malloc(sizeof *c);
    if (!c) return ct__err(CT_ERR_OOM, "%s: out of memory", t->name);
    *c = v;
    ct_module *m = ct_module_new(t, c);
    if (!m) {
        free(c);
        return NULL;
    }
    for (int k = 0; k < n_w; k++)
        if (ct_module_register_buffer(m, names[k], ws[k], true)) {
            ct_module_free(m);
            return NULL;
        }
    return m;
}
#define SIMPLE(t, ...) loss_new(t, (loss_ctx){__VA_ARGS__}, 0, NULL, NULL)
static const char *const W[] = {"weight", "pos_weight"};

CT_API ct_module *ct_nn_mse_loss_new(ct_reduction r) { return SIMPLE(&T_MSE, .kind = L_MSE, .red = r); }
CT_API ct_module *ct_nn_l1_loss_new(ct_reduction r) { return SIMPLE(&T_L1, .kind = L_L1, .red = r); }
CT_API ct_module *ct_nn_smooth_l1_loss_new(ct_reduction r, double beta) {
    if (beta < 0) return ct__err(CT_ERR_ARG, "SmoothL1Loss: smooth_l1_loss does not support negative values for beta.");
    return SIMPLE(&T_SMOOTH_L1, .kind = L_SMOOTH_L1, .red = r, .a = beta);
}
CT_API ct_module *ct_nn_huber_loss_new(ct_reduction r, double delta) {
    if (delta <= 0) return ct__err(CT_ERR_ARG, "HuberLoss: huber_loss does not support non-positive values for delta.");
    return SIMPLE(&T_HUBER, .kind = L_HUBER, .red = r, .a = delta);
}
CT_API ct_module *ct_nn_cross_entropy_loss_new(ct_tensor *weight, int64_t ignore_index, ct_reduction r,
                                               double label_smoothing) {
    return loss_new(&T_CE, (loss_ctx){.kind = L_CE, .red = r, .i = ignore_index, .a = label_smoothing}, 1, W,
                    (ct_tensor *[]){weight});
}
CT_API ct_module *ct_nn_nll_loss_new(ct_tensor *weight, int64_t ignore_index, ct_reduction r) {
    return loss_new(&T_NLL, (loss_ctx){.kind = L_NLL, .red = r, .i = ignore_index}, 1, W, (ct_tensor *[]){weight});
}
CT_API ct_module *ct_nn_bce_loss_new(ct_tensor *weight, ct_reduction r) {
    return loss_new(&T_BCE, (loss_ctx){.kind = L_BCE, .red = r}, 1, W, (ct_tensor *[]){weight});
}
CT_API ct_module *ct_nn_bce_with_logits_loss_new(ct_tensor *weight, ct_reduction r, ct_tensor *pos_weight) {
    return loss_new(&T_BCE_LOGITS, (loss_ctx){.kind = L_BCE_LOGITS, .red = r}, 2, W,
                    (ct_tensor *[]){weight, pos_weight});
}
CT_API ct_module *ct_nn_kl_div_loss_new(ct_reduction r, bool log_target) {
    return SIMPLE(&T_KLDIV, .kind = L_KLDIV, .red = r, .f1 = log_target);
}
CT_API ct_module *ct_nn_cosine_embedding_loss_new(double margin, ct_reduction r) {
    return SIMPLE(&T_COSINE, .kind = L_COSINE, .red = r, .a = margin);
}
CT_API ct_module *ct_nn_margin_ranking_loss_new(double margin, ct_reduction r) {
    return SIMPLE(&T_MARGIN_RANKING, .kind = L_MARGIN_RANKING, .red = r, .a = margin);
}
CT_API ct_module *ct_nn_hinge_embedding_loss_new(double margin, ct_reduction r) {
    return SIMPLE(&T_HINGE, .kind = L_HINGE, .red = r, .a = margin);
}
CT_API ct_module *ct_nn_triplet_margin_loss_new(double margin, double p, double eps, bool swap, ct_reduction r) {
    if (margin <= 0) return ct__err(CT_ERR_ARG, "TripletMarginLoss: margin must be greater than 0, got %g", margin);
    return SIMPLE(&T_TRIPLET, .kind = L_TRIPLET, .red = r, .a = margin, .b = p, .c = eps, .f1 = swap);
}
CT_API ct_module *ct_nn_multilabel_soft_margin_loss_new(ct_tensor *weight, ct_reduction r) {
    return loss_new(&T_MULTILABEL_SOFT, (loss_ctx){.kind = L_MULTILABEL_SOFT, .red = r}, 1, W,
                    (ct_tensor *[]){weight});
}
CT_API ct_module *ct_nn_poisson_nll_loss_new(bool log_input, bool full, double eps, ct_reduction r) {
    return SIMPLE(&T_POISSON, .kind = L_POISSON, .red = r, .f1 = log_input, .f2 = full, .a = eps);
}
CT_API ct_module *ct_nn_gaussian_nll_loss_new(bool full, double eps, ct_reduction r) {
    return SIMPLE(&T_GAUSSIAN, .kind = L_GAUSSIAN, .red = r, .f1 = full, .a = eps);
}
CT_API ct_module *ct_nn_ctc_loss_new(int64_t blank, ct_reduction r, bool zero_infinity) {
    if (blank < 0) return ct__err(CT_ERR_ARG, "CTCLoss: blank must be non-negative, got %lld", (long long)blank);
    return SIMPLE(&T_CTC, .kind = L_CTC, .red = r, .i = blank, .f1 = zero_infinity);
}
