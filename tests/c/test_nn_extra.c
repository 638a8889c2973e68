/* nn.init, Bilinear, channel-wise dropout, Embedding max_norm, EmbeddingBag, ctc_loss and
 * the loss modules from C: values on hand-checked cases, gradients, errors, ownership
 * (no leaks, ASan/UBSan clean). The comparisons against torch are in
 * tests/conformance/test_init.py and test_nn_extra.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

static void test_init(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *w = ct_empty(CT_SHAPE(6, 4), CT_FLOAT32);
    ct_set_requires_grad(w, true); /* a parameter: init works without grad */
    CHECK(ct_nn_init_kaiming_uniform_(w, 0.0, "fan_in", "relu", NULL) == 0);
    double bound = sqrt(3.0) * sqrt(2.0) / 2.0; /* gain sqrt(2), fan_in 4 */
    CHECK(ct_item(ct_amax(ct_abs(w), 0, NULL, false)) <= bound);
    CHECK(ct_is_leaf(w) && ct_requires_grad(w));
    CHECK(ct_nn_init_xavier_normal_(w, 1.0, NULL) == 0);
    CHECK(ct_nn_init_trunc_normal_(w, 0.0, 1.0, -0.5, 0.5, NULL) == 0);
    CHECK(ct_item(ct_amax(ct_abs(w), 0, NULL, false)) <= 0.5);
    CHECK(ct_nn_init_trunc_normal_(w, 0.0, 1.0, 2.0, 3.0, NULL) == 0); /* the rejection branch */
    CHECK(ct_item(ct_amin(w, 0, NULL, false)) >= 2.0 && ct_item(ct_amax(w, 0, NULL, false)) <= 3.0);
    /* orthogonal: w^T w = I for rows >= cols, w w^T = I for rows < cols */
    CHECK(ct_nn_init_orthogonal_(w, 1.0, NULL) == 0);
    ct_tensor *g = ct_mm(ct_t(w), w);
    CHECK(ct_item(ct_amax(ct_abs(ct_sub(g, ct_eye(4, 4, CT_FLOAT32))), 0, NULL, false)) < 1e-5);
    ct_tensor *w2 = ct_empty(CT_SHAPE(3, 2, 4), CT_FLOAT64);
    CHECK(ct_nn_init_orthogonal_(w2, 2.0, NULL) == 0);
    ct_tensor *f = ct_reshape(w2, 2, (int64_t[]){3, 8});
    g = ct_mm(f, ct_t(f));
    CHECK(ct_item(ct_amax(ct_abs(ct_sub(g, ct_mul_scalar(ct_eye(3, 3, CT_FLOAT64), 4.0))), 0, NULL, false)) < 1e-12);
    /* the same generator seed gives the same values */
    ct_generator *ga = ct_generator_new(5), *gb = ct_generator_new(5);
    ct_tensor *a = ct_empty(CT_SHAPE(4, 4), CT_FLOAT32), *b = ct_empty(CT_SHAPE(4, 4), CT_FLOAT32);
    CHECK(ct_nn_init_orthogonal_(a, 1.0, ga) == 0 && ct_nn_init_orthogonal_(b, 1.0, gb) == 0);
    CHECK(ct_item(ct_amax(ct_abs(ct_sub(a, b)), 0, NULL, false)) == 0);
    ct_generator_free(ga), ct_generator_free(gb);
    /* eye, dirac, sparse, constant */
    CHECK(ct_nn_init_eye_(a) == 0 && at2(a, 2, 2) == 1 && at2(a, 2, 1) == 0);
    ct_tensor *k = ct_empty(CT_SHAPE(4, 2, 3, 3), CT_FLOAT32);
    CHECK(ct_nn_init_dirac_(k, 2) == 0 && ct_item(ct_sum(k)) == 4);
    CHECK(ct_get(k, (int64_t[]){3, 1, 1, 1}) == 1 && ct_get(k, (int64_t[]){1, 0, 1, 1}) == 0);
    ct_tensor *s = ct_empty(CT_SHAPE(10, 3), CT_FLOAT32);
    CHECK(ct_nn_init_sparse_(s, 0.3, 0.01, NULL) == 0);
    CHECK(ct_item(ct_count_nonzero(s, 0, NULL)) == 21);
    CHECK(ct_nn_init_constant_(s, 0.25) == 0 && at2(s, 9, 2) == 0.25);
    CHECK(fabs(ct_nn_init_calculate_gain("leaky_relu", NAN) - sqrt(2.0 / (1 + 1e-4))) < 1e-15);
    /* errors */
    ct_tensor *v = ct_empty(CT_SHAPE(5), CT_FLOAT32);
    CHECK(ct_nn_init_xavier_uniform_(v, 1.0, NULL) == CT_ERR_SHAPE && strstr(ct_last_error(), "xavier_uniform_"));
    CHECK(ct_nn_init_orthogonal_(v, 1.0, NULL) < 0 && strstr(ct_last_error(), "orthogonal_"));
    CHECK(ct_nn_init_eye_(v) < 0 && ct_nn_init_dirac_(a, 1) < 0);
    CHECK(ct_nn_init_kaiming_normal_(a, 0.0, "fan_avg", NULL, NULL) == CT_ERR_ARG);
    CHECK(ct_nn_init_kaiming_normal_(a, 0.0, NULL, "softmax", NULL) == CT_ERR_ARG);
    CHECK(isnan(ct_nn_init_calculate_gain("softmax", 0)));
    CHECK(ct_nn_init_normal_(NULL, 0, 1, NULL) < 0);
    ct_clear_error();
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

static void test_ctc(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    /* T=1, C=2, target [1]: the only alignment emits label 1 at t=0: loss = -log p */
    ct_tensor *lp = ct_log(ct_from_data((double[]){0.25, 0.75}, 3, (int64_t[]){1, 1, 2}, CT_FLOAT64));
    ct_set_requires_grad(lp, true);
    ct_tensor *tg = ct_from_data((int64_t[]){1}, 2, (int64_t[]){1, 1}, CT_INT64);
    ct_tensor *il = i64(1, (int64_t[]){1}), *tl = i64(1, (int64_t[]){1});
    ct_tensor *loss = ct_nn_ctc_loss(lp, tg, il, tl, 0, CT_REDUCTION_SUM, false);
    CHECK(loss && NEAR(ct_item(loss), -log(0.75)));
    CHECK(ct_backward(loss, NULL, false, false) == 0);
    ct_tensor *gr = ct_grad(lp);
    /* torch's formula: exp(lp) - occupancy = {0.25, 0.75 - 1} */
    CHECK(gr && NEAR(ct_get(gr, (int64_t[]){0, 0, 0}), 0.25) && NEAR(ct_get(gr, (int64_t[]){0, 0, 1}), -0.25));
    /* impossible (two labels in one step): inf, 0 with zero_infinity */
    ct_tensor *tg2 = ct_from_data((int64_t[]){1, 1}, 2, (int64_t[]){1, 2}, CT_INT64);
    ct_tensor *l2 = ct_nn_ctc_loss(lp, tg2, il, i64(1, (int64_t[]){2}), 0, CT_REDUCTION_NONE, false);
    CHECK(l2 && isinf(at(l2, 0)));
    l2 = ct_nn_ctc_loss(lp, tg2, il, i64(1, (int64_t[]){2}), 0, CT_REDUCTION_MEAN, true);
    CHECK(l2 && ct_item(l2) == 0);
    /* errors */
    CHECK(!ct_nn_ctc_loss(lp, tg, il, tl, 5, CT_REDUCTION_SUM, false) && strstr(ct_last_error(), "blank"));
    CHECK(!ct_nn_ctc_loss(lp, tg, i64(1, (int64_t[]){2}), tl, 0, CT_REDUCTION_SUM, false));
    CHECK(!ct_nn_ctc_loss(lp, ct_from_data((int64_t[]){7}, 2, (int64_t[]){1, 1}, CT_INT64), il, tl, 0,
                          CT_REDUCTION_SUM, false));
    CHECK(!ct_nn_ctc_loss(NULL, tg, il, tl, 0, CT_REDUCTION_SUM, false));
    ct_clear_error();
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

static void test_embedding_bag_and_bilinear(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *w = ct_reshape(ct_arange(0, 12, 1, CT_FLOAT32), 2, (int64_t[]){6, 2}); /* row r = {2r, 2r+1} */
    w = ct_clone(w);
    ct_set_requires_grad(w, true);
    ct_tensor *in = i64(5, (int64_t[]){1, 2, 4, 5, 2}), *off = i64(3, (int64_t[]){0, 2, 2});
    ct_tensor *y = ct_nn_embedding_bag(in, w, off, 0, 2, "sum", NULL, false, CT_NO_PADDING_IDX);
    CHECK(y && at2(y, 0, 0) == 2 + 4 && at2(y, 1, 0) == 0 && at2(y, 2, 1) == 9 + 11 + 5);
    y = ct_nn_embedding_bag(in, w, off, 0, 2, "mean", NULL, false, 2);
    CHECK(y && at2(y, 0, 0) == 2 && at2(y, 2, 0) == 9);
    y = ct_nn_embedding_bag(in, w, off, 0, 2, "max", NULL, false, CT_NO_PADDING_IDX);
    CHECK(y && at2(y, 2, 1) == 11 && at2(y, 1, 1) == 0);
    CHECK(ct_backward(ct_sum(y), NULL, false, false) == 0);
    ct_tensor *g = ct_grad(w);
    CHECK(g && at2(g, 5, 0) == 1 && at2(g, 2, 0) == 1 && at2(g, 4, 0) == 0);
    CHECK(!ct_nn_embedding_bag(in, w, off, 0, 2, "median", NULL, false, CT_NO_PADDING_IDX));
    /* max_norm renormalises the looked-up rows in place */
    ct_tensor *w2 = ct_clone(ct_detach(w));
    CHECK(ct_nn_embedding_renorm_(w2, i64(1, (int64_t[]){5}), 1.0, 2.0) == 0);
    CHECK(NEAR(sqrt(at2(w2, 5, 0) * at2(w2, 5, 0) + at2(w2, 5, 1) * at2(w2, 5, 1)), 1.0) && at2(w2, 4, 0) == 8);
    /* modules: EmbeddingBag through forward_n, Bilinear, Dropout2d */
    ct_manual_seed(0);
    ct_module *bag = ct_nn_embedding_bag_new(6, 2, 0, 2, "sum", false, CT_NO_PADDING_IDX);
    ct_tensor *out[1];
    CHECK(ct_module_forward_n(bag, 2, (ct_tensor *[]){in, off}, 1, out) == 1 && ct_size(out[0], 0) == 3);
    char *r = ct_module_repr(bag);
    CHECK(r && !strcmp(r, "EmbeddingBag(6, 2, mode='sum')"));
    free(r);
    ct_module_free(bag);
    ct_module *bil = ct_nn_bilinear_new(2, 3, 4, true);
    ct_tensor *x1 = ct_ones(CT_SHAPE(5, 2), CT_FLOAT32), *x2 = ct_ones(CT_SHAPE(5, 3), CT_FLOAT32);
    CHECK(ct_module_forward_n(bil, 2, (ct_tensor *[]){x1, x2}, 1, out) == 1 && ct_size(out[0], 1) == 4);
    CHECK(ct_module_forward_n(bil, 1, (ct_tensor *[]){x1}, 1, out) < 0);
    ct_module_free(bil);
    ct_module *d2 = ct_nn_dropout2d_new(0.5);
    ct_tensor *yd = ct_module_forward(d2, ct_ones(CT_SHAPE(2, 8, 3, 3), CT_FLOAT32));
    CHECK(yd && ct_keep(yd));
    double s = ct_item(ct_sum(yd));
    CHECK(fmod(s, 18.0) == 0); /* whole 3x3 channels of 2.0 */
    ct_release(yd);
    ct_module_free(d2);
    /* p = 0 returns the input itself: backward from a leaf root (freed its AccumulateGrad
     * node before the graph that still read it) */
    ct_tensor *leaf = ct_ones(CT_SHAPE(2, 3, 2), CT_FLOAT32);
    ct_set_requires_grad(leaf, true);
    ct_tensor *same = ct_nn_dropout1d(leaf, 0.0, true, NULL);
    CHECK(same == leaf && ct_backward(same, ct_ones_like(leaf), false, false) == 0);
    CHECK(ct_grad(leaf) && ct_item(ct_sum(ct_grad(leaf))) == 12);
    ct_clear_error();
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

static void test_loss_modules(void) {
    int64_t live0 = ct_live_tensors();
    ct_scope_begin();
    ct_tensor *wt = f64(3, (double[]){1, 2, 3});
    ct_module *ce = ct_nn_cross_entropy_loss_new(wt, -100, CT_REDUCTION_MEAN, 0.0);
    ct_tensor *logits = ct_zeros(CT_SHAPE(2, 3), CT_FLOAT64), *tgt = i64(2, (int64_t[]){0, 2});
    ct_set_requires_grad(logits, true);
    ct_tensor *out[1];
    CHECK(ct_module_forward_n(ce, 2, (ct_tensor *[]){logits, tgt}, 1, out) == 1 && NEAR(ct_item(out[0]), log(3.0)));
    CHECK(ct_backward(out[0], NULL, false, false) == 0 && ct_grad(logits));
    ct_dict *sd = ct_module_state_dict(ce);
    CHECK(sd && ct_dict_size(sd) == 1);
    ct_dict_free(sd);
    char *r = ct_module_repr(ce);
    CHECK(r && !strcmp(r, "CrossEntropyLoss()"));
    free(r);
    CHECK(ct_module_forward(ce, logits) == NULL && strstr(ct_last_error(), "takes 2 inputs"));
    ct_module_free(ce);
    ct_module *ctc = ct_nn_ctc_loss_new(0, CT_REDUCTION_SUM, false);
    ct_tensor *lp = ct_log_softmax(ct_zeros(CT_SHAPE(3, 1, 2), CT_FLOAT32), 2, CT_NUM_DTYPES);
    ct_tensor *in4[4] = {lp, i64(1, (int64_t[]){1}), i64(1, (int64_t[]){3}), i64(1, (int64_t[]){1})};
    /* 3 steps, one label: alignments 1__, _1_, __1, 11_, _11, 111 -> 6 paths of prob 1/8 */
    CHECK(ct_module_forward_n(ctc, 4, in4, 1, out) == 1 && fabs(ct_item(out[0]) + log(6.0 / 8)) < 1e-6);
    ct_module_free(ctc);
    CHECK(ct_nn_mse_loss_new((ct_reduction)9) == NULL);
    ct_clear_error();
    ct_scope_end();
    CHECK(ct_live_tensors() == live0);
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_init();
    test_ctc();
    test_embedding_bag_and_bilinear();
    test_loss_modules();
    CHECK(ct_live_tensors() == live0);
    printf("test_nn_extra: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
