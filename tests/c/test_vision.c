/* Vision layers from C: conv3d values and gradients, unpooling round trips, adaptive
 * max pooling indices, interpolate, pixel (un)shuffle, the vision modules (reprs,
 * forward_n with indices, training step), errors and NULL propagation; leak-free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

static double at5(const ct_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e) {
    return ct_get(t, (const int64_t[]){a, b, c, d, e});
}

static void test_conv3d(void) {
    ct_scope_begin();
    /* ones [1, 1, 3, 3, 3] * ones kernel 3x3x3, padding 1: each output counts the
     * in-bounds taps (27 at the centre, 8 at a corner), plus the bias */
    ct_tensor *x = ct_ones(CT_SHAPE(1, 1, 3, 3, 3), CT_FLOAT64);
    ct_tensor *w = ct_ones(CT_SHAPE(2, 1, 3, 3, 3), CT_FLOAT64);
    ct_tensor *b = f64(2, (double[]){0.5, -1});
    ct_set_requires_grad(x, true), ct_set_requires_grad(w, true), ct_set_requires_grad(b, true);
    ct_conv3d_opts o = {.padding = {1, 1, 1}};
    ct_tensor *y = ct_nn_conv3d(x, w, b, &o);
    CHECK(y && ct_ndim(y) == 5 && ct_size(y, 1) == 2 && ct_size(y, 2) == 3);
    CHECK(y && at5(y, 0, 0, 1, 1, 1) == 27.5 && at5(y, 0, 0, 0, 0, 0) == 8.5 && at5(y, 0, 1, 0, 1, 0) == 11);
    CHECK(ct_backward(ct_sum(y), NULL, false, false) == 0);
    /* d sum / d bias = number of outputs; d sum / d x = taps reaching x, times 2 filters */
    CHECK(NEAR(at(ct_grad(b), 0), 27) && NEAR(at(ct_grad(b), 1), 27));
    CHECK(NEAR(at5(ct_grad(x), 0, 0, 1, 1, 1), 54) && NEAR(at5(ct_grad(x), 0, 0, 0, 0, 0), 16));
    CHECK(NEAR(at5(ct_grad(w), 0, 0, 1, 1, 1), 27) && NEAR(at5(ct_grad(w), 1, 0, 0, 0, 0), 8));
    /* 'same' with an even kernel and strides, groups, unbatched */
    ct_conv3d_opts same = {.padding_mode = "same"};
    y = ct_nn_conv3d(ct_ones(CT_SHAPE(2, 4, 5, 3), CT_FLOAT32), ct_ones(CT_SHAPE(3, 2, 2, 2, 2), CT_FLOAT32), NULL,
                     &same);
    CHECK(y && ct_ndim(y) == 4 && ct_size(y, 0) == 3 && ct_size(y, 1) == 4 && ct_size(y, 3) == 3);
    ct_conv3d_opts grp = {.stride = {2, 2, 2}, .groups = 2};
    y = ct_nn_conv3d(ct_ones(CT_SHAPE(1, 4, 5, 5, 5), CT_FLOAT32), ct_ones(CT_SHAPE(4, 2, 3, 3, 3), CT_FLOAT32), NULL,
                     &grp);
    CHECK(y && ct_size(y, 2) == 2 && at5(y, 0, 3, 1, 1, 1) == 54);
    /* errors: values, not crashes */
    CHECK(ct_nn_conv3d(ct_ones(CT_SHAPE(1, 3, 4, 4, 4), CT_FLOAT32), ct_ones(CT_SHAPE(2, 2, 3, 3, 3), CT_FLOAT32),
                       NULL, NULL) == NULL &&
          strstr(ct_last_error(), "conv3d") && strstr(ct_last_error(), "channels"));
    CHECK(ct_nn_conv3d(ct_ones(CT_SHAPE(1, 2, 2, 4, 4), CT_FLOAT32), ct_ones(CT_SHAPE(2, 2, 3, 3, 3), CT_FLOAT32),
                       NULL, NULL) == NULL && strstr(ct_last_error(), "Kernel size"));
    ct_conv3d_opts bad = {.padding_mode = "same", .stride = {2, 1, 1}};
    CHECK(ct_nn_conv3d(ct_ones(CT_SHAPE(1, 2, 4, 4, 4), CT_FLOAT32), ct_ones(CT_SHAPE(2, 2, 3, 3, 3), CT_FLOAT32),
                       NULL, &bad) == NULL && strstr(ct_last_error(), "strided"));
    ct_clear_error();
    CHECK(ct_nn_conv3d(NULL, w, NULL, NULL) == NULL);
    ct_scope_end();
}

static void test_pooling(void) {
    ct_scope_begin();
    ct_tensor *x = ct_reshape(ct_arange(0, 16, 1, CT_FLOAT32), 4, (int64_t[]){1, 1, 4, 4});
    ct_tensor *idx = NULL;
    ct_tensor *v = ct_nn_max_pool2d(x, (int64_t[]){2, 2}, NULL, &idx);
    ct_tensor *u = ct_nn_max_unpool2d(v, idx, (int64_t[]){2, 2}, NULL, NULL, NULL);
    /* the maxima (5, 7, 13, 15) back in place, zeros elsewhere */
    CHECK(u && ct_get(u, (int64_t[]){0, 0, 1, 1}) == 5 && ct_get(u, (int64_t[]){0, 0, 3, 3}) == 15 &&
          ct_get(u, (int64_t[]){0, 0, 0, 0}) == 0);
    CHECK(NEAR(ct_item(ct_sum(u)), 40));
    ct_tensor *bad = ct_add(idx, ct_scalar_tensor(100, CT_INT64));
    CHECK(ct_nn_max_unpool2d(v, bad, (int64_t[]){2, 2}, NULL, NULL, NULL) == NULL &&
          strstr(ct_last_error(), "invalid max index"));
    ct_tensor *ai = NULL;
    ct_tensor *am = ct_nn_adaptive_max_pool2d(x, (int64_t[]){3, 3}, &ai);
    /* windows [0,2) [1,3) [2,4): the max of each is its bottom-right corner */
    CHECK(am && ai && ct_get(am, (int64_t[]){0, 0, 0, 0}) == 5 && ct_get(ai, (int64_t[]){0, 0, 2, 2}) == 15 &&
          ct_get(ai, (int64_t[]){0, 0, 1, 0}) == 9);
    ct_tensor *a1 = ct_nn_adaptive_avg_pool1d(ct_reshape(ct_arange(0, 6, 1, CT_FLOAT64), 2, (int64_t[]){1, 6}), 3);
    CHECK(a1 && at2(a1, 0, 0) == 0.5 && at2(a1, 0, 2) == 4.5);
    ct_tensor *m1i = NULL;
    ct_tensor *m1 = ct_nn_adaptive_max_pool1d(ct_reshape(ct_arange(0, 6, 1, CT_FLOAT64), 2, (int64_t[]){1, 6}), 4,
                                              &m1i);
    CHECK(m1 && m1i && at2(m1, 0, 3) == 5 && at2(m1i, 0, 1) == 2);
    CHECK(ct_nn_adaptive_max_pool2d(ct_ones(CT_SHAPE(4), CT_FLOAT32), (int64_t[]){1, 1}, NULL) == NULL);
    ct_scope_end();
}

static void test_interpolate_and_shuffle(void) {
    ct_scope_begin();
    ct_tensor *x = ct_reshape(f64(2, (double[]){1, 3}), 3, (int64_t[]){1, 1, 2});
    ct_tensor *n = ct_nn_interpolate(x, NULL, (double[]){2.0}, NULL, CT_ALIGN_CORNERS_NONE, false);
    CHECK(n && ct_size(n, 2) == 4 && ct_get(n, (int64_t[]){0, 0, 1}) == 1 && ct_get(n, (int64_t[]){0, 0, 2}) == 3);
    ct_tensor *l = ct_nn_interpolate(x, (int64_t[]){3}, NULL, "linear", 1, false);
    CHECK(l && NEAR(ct_get(l, (int64_t[]){0, 0, 1}), 2));
    ct_tensor *l2 = ct_nn_interpolate(x, (int64_t[]){4}, NULL, "linear", 0, false);
    /* half-pixel centres: 1, 1.5, 2.5, 3 */
    CHECK(l2 && NEAR(ct_get(l2, (int64_t[]){0, 0, 1}), 1.5) && NEAR(ct_get(l2, (int64_t[]){0, 0, 3}), 3));
    CHECK(ct_nn_interpolate(x, (int64_t[]){4}, NULL, "nearest", 1, false) == NULL &&
          strstr(ct_last_error(), "align_corners"));
    CHECK(ct_nn_interpolate(x, (int64_t[]){4, 4}, NULL, "bilinear", 0, false) == NULL &&
          strstr(ct_last_error(), "bilinear"));
    CHECK(ct_nn_interpolate(x, NULL, NULL, NULL, -1, false) == NULL);
    ct_tensor *p = ct_reshape(ct_arange(0, 32, 1, CT_FLOAT32), 4, (int64_t[]){1, 8, 2, 2});
    ct_tensor *s = ct_nn_pixel_shuffle(p, 2);
    CHECK(s && ct_size(s, 1) == 2 && ct_size(s, 2) == 4 && ct_get(s, (int64_t[]){0, 0, 0, 1}) == 4);
    ct_tensor *back = ct_nn_pixel_unshuffle(s, 2);
    CHECK(back && ct_item(ct_all(ct_eq(back, p), 0, NULL, false)) == 1);
    CHECK(ct_nn_pixel_shuffle(ct_ones(CT_SHAPE(5, 2, 2), CT_FLOAT32), 2) == NULL && strstr(ct_last_error(), "divisible"));
    ct_scope_end();
}

static void test_modules(void) {
    ct_manual_seed(0);
    ct_conv3d_opts o = {.padding = {1, 1, 1}, .padding_fill = "replicate"};
    ct_module *net = ct_nn_sequential(CT_MODULES(
        ct_nn_conv3d_new(2, 4, (int64_t[]){3, 3, 3}, &o, true), ct_nn_relu_new(),
        ct_nn_conv_transpose1d_new(4 * 4, 3, 2, &(ct_conv_opts){.stride = {2}}, true)));
    CHECK(net != NULL);
    char *r = ct_module_repr(net);
    CHECK(r && strstr(r, "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), "
                         "padding_mode=replicate)") &&
          strstr(r, "ConvTranspose1d(16, 3, kernel_size=(2,), stride=(2,))"));
    free(r);
    ct_dict *params = ct_module_named_parameters(net);
    ct_scope_begin();
    CHECK(ct_dict_size(params) == 4 && ct_dict_get(params, "2.weight") &&
          ct_size(ct_dict_get(params, "2.weight"), 0) == 16);
    ct_scope_end();
    ct_dict_free(params);
    /* one training step: conv3d -> relu -> flatten depth into channels -> conv_transpose1d */
    ct_scope_begin();
    ct_tensor *x = ct_randn(CT_SHAPE(2, 2, 4, 3, 5), CT_FLOAT32, NULL);
    ct_tensor *h = ct_module_forward(ct_module_child_at(net, 1), ct_module_forward(ct_module_child_at(net, 0), x));
    ct_tensor *y = ct_module_forward(ct_module_child_at(net, 2), ct_reshape(h, 3, (int64_t[]){2, 16, 15}));
    CHECK(y && ct_size(y, 2) == 30);
    CHECK(ct_backward(ct_mean(ct_square(y)), NULL, false, false) == 0);
    ct_tensor *gw = ct_grad(ct_module_own_parameter(ct_module_child_at(net, 0), 0));
    CHECK(gw && ct_ndim(gw) == 5);
    ct_scope_end();
    ct_module_free(net);

    /* return_indices modules: forward_n gives (values, indices) */
    ct_module *amp = ct_nn_adaptive_max_pool2d_new((int64_t[]){2, 2}, true);
    ct_module *unp = ct_nn_max_unpool2d_new((int64_t[]){2, 2}, NULL, NULL);
    r = ct_module_repr(amp);
    CHECK(r && strcmp(r, "AdaptiveMaxPool2d(output_size=2)") == 0);
    free(r);
    r = ct_module_repr(unp);
    CHECK(r && strcmp(r, "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))") == 0);
    free(r);
    ct_scope_begin();
    ct_tensor *img = ct_reshape(ct_arange(0, 16, 1, CT_FLOAT32), 4, (int64_t[]){1, 1, 4, 4});
    ct_tensor *out[2];
    CHECK(ct_module_forward_n(amp, 1, (ct_tensor *[]){img}, 2, out) == 2);
    ct_tensor *u[1];
    CHECK(ct_module_forward_n(unp, 2, (ct_tensor *[]){out[0], out[1]}, 1, u) == 1);
    CHECK(u[0] && ct_get(u[0], (int64_t[]){0, 0, 3, 3}) == 15);
    /* (the outputs belong to the open scope) */
    CHECK(ct_module_forward_n(unp, 1, (ct_tensor *[]){img}, 1, u) < 0);
    ct_scope_end();
    ct_module_free(amp);
    ct_module_free(unp);

    ct_module *up = ct_nn_upsample_new(1, NULL, (double[]){2.0}, "bilinear", 0, false);
    ct_module *ps = ct_nn_pixel_shuffle_new(2);
    ct_module *fo = ct_nn_fold_new((int64_t[]){4, 5}, (int64_t[]){2, 2}, NULL, NULL, NULL);
    r = ct_module_repr(up);
    CHECK(r && strcmp(r, "Upsample(scale_factor=2.0, mode='bilinear')") == 0);
    free(r);
    r = ct_module_repr(fo);
    CHECK(r && strcmp(r, "Fold(output_size=(4, 5), kernel_size=2, dilation=1, padding=0, stride=1)") == 0);
    free(r);
    ct_scope_begin();
    ct_tensor *z = ct_module_forward(ps, ct_module_forward(up, ct_ones(CT_SHAPE(1, 4, 2, 3), CT_FLOAT32)));
    CHECK(z && ct_size(z, 1) == 1 && ct_size(z, 2) == 8 && ct_size(z, 3) == 12);
    ct_scope_end();
    ct_module_free(up);
    ct_module_free(ps);
    ct_module_free(fo);
    /* constructor errors */
    CHECK(ct_nn_conv3d_new(3, 4, (int64_t[]){3, 3, 3}, &(ct_conv3d_opts){.groups = 2}, true) == NULL);
    CHECK(ct_nn_conv_transpose2d_new(4, 4, (int64_t[]){3, 3}, &(ct_conv_opts){.output_padding = {1, 1}}, true) == NULL);
    CHECK(ct_nn_upsample_new(1, NULL, NULL, NULL, -1, false) == NULL);
    CHECK(ct_nn_pixel_unshuffle_new(0) == NULL);
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_conv3d();
    test_pooling();
    test_interpolate_and_shuffle();
    test_modules();
    CHECK(ct_live_tensors() == live0);
    printf("test_vision: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
