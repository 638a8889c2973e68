/* Reduction and scan essentials: values on the row / column / split schedules,
 * indices, dtype rules, errors, autograd through prod with zeros and scans, no leaks. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"


static void test_schedules(void) {
    ct_scope_begin();
    /* x[i, j] = (i % 7) - 3 + j / 1024: exact sums in float32 */
    int64_t R = 4096, C = 1024;
    ct_tensor *x = ct_empty(CT_SHAPE(4096, 1024), CT_FLOAT32);
    float *p = ct_data_ptr(x);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) p[i * C + j] = (float)((i % 7) - 3) + (float)j / 1024.0f;
    double col0 = 0, row5 = 0, total = 0;
    for (int64_t i = 0; i < R; i++) col0 += (double)((i % 7) - 3);
    for (int64_t j = 0; j < C; j++) row5 += (double)((5 % 7) - 3) + j / 1024.0;
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++) total += (double)((i % 7) - 3) + j / 1024.0;
    ct_tensor *s0 = ct_sum_dim(x, 1, (const int64_t[]){0}, false, CT_NUM_DTYPES); /* column schedule */
    CHECK(s0 && ct_numel(s0) == C && NEAR(at(s0, 0), col0) && NEAR(at(s0, 1023), col0 + R * 1023 / 1024.0));
    ct_tensor *s1 = ct_sum_dim(x, 1, (const int64_t[]){1}, true, CT_NUM_DTYPES); /* row schedule */
    CHECK(s1 && ct_ndim(s1) == 2 && NEAR(at2(s1, 5, 0), row5));
    ct_tensor *s = ct_sum(x); /* split schedule, deterministic */
    CHECK(s && NEAR(ct_item(s), total) && ct_item(s) == ct_item(ct_sum(x)));
    ct_tensor *xt = ct_t(x); /* the same through a transposed view */
    ct_tensor *st = ct_sum_dim(xt, 1, (const int64_t[]){1}, false, CT_NUM_DTYPES);
    CHECK(st && NEAR(at(st, 1023), col0 + R * 1023 / 1024.0));
    ct_tensor *mx = ct_amax(x, 1, (const int64_t[]){0}, false);
    CHECK(mx && NEAR(at(mx, 0), 3) && NEAR(at(mx, 512), 3.5));
    ct_scope_end();
}

static void test_values_and_errors(void) {
    ct_scope_begin();
    ct_tensor *a = ct_from_data((const double[]){1, 5, 5, 2, NAN, 0}, CT_SHAPE(2, 3), CT_FLOAT64);
    ct_tensor *idx = NULL;
    ct_tensor *m = ct_max_dim(a, 1, false, &idx);
    CHECK(m && idx && ct_get_dtype(idx) == CT_INT64 && at(idx, 0) == 1 && at(m, 0) == 5 && isnan(at(m, 1)) &&
          at(idx, 1) == 1);
    CHECK(isnan(ct_item(ct_max(a))));
    ct_tensor *am = ct_argmin(a, CT_ALL_DIMS, false);
    CHECK(am && ct_ndim(am) == 0 && ct_item(am) == 4);
    ct_tensor *iv = ct_from_data((const int32_t[]){3, 1, 3, 1, 2, 2}, CT_SHAPE(6), CT_INT32);
    ct_tensor *mi = NULL, *mo = ct_mode(iv, 0, false, &mi);
    CHECK(mo && ct_item(mo) == 1 && ct_item(mi) == 3);
    ct_tensor *ps = ct_prod(iv);
    CHECK(ps && ct_get_dtype(ps) == CT_INT64 && ct_item(ps) == 36);
    ct_tensor *cs = ct_cumsum(iv, 0, CT_NUM_DTYPES);
    CHECK(cs && ct_get_dtype(cs) == CT_INT64 && at(cs, 5) == 12);
    ct_tensor *u8 = ct_from_data((const uint8_t[]){1, 2, 0}, CT_SHAPE(3), CT_UINT8);
    ct_tensor *al = ct_all(u8, 0, NULL, false), *an = ct_any(u8, 0, NULL, false);
    CHECK(al && ct_get_dtype(al) == CT_UINT8 && ct_item(al) == 0 && an && ct_item(an) == 1);
    ct_tensor *cn = ct_count_nonzero(a, 1, (const int64_t[]){1});
    CHECK(cn && ct_get_dtype(cn) == CT_INT64 && at(cn, 0) == 3 && at(cn, 1) == 2);
    ct_tensor *v = ct_var(f64(4, (const double[]){1, 2, 3, 4}), 0, NULL, 1.0, false);
    CHECK(v && NEAR(ct_item(v), 5.0 / 3.0));
    ct_tensor *n = ct_norm(f64(2, (const double[]){3, -4}), 2.0, 0, NULL, false);
    CHECK(n && NEAR(ct_item(n), 5));
    ct_tensor *med = ct_median(f64(4, (const double[]){4, 1, 3, 2}));
    CHECK(med && ct_item(med) == 2);
    ct_tensor *lse = ct_logsumexp(f64(2, (const double[]){-INFINITY, -INFINITY}), 1, (const int64_t[]){0}, false);
    CHECK(lse && isinf(ct_item(lse)) && ct_item(lse) < 0);
    /* errors are values */
    ct_tensor *e = ct_zeros(CT_SHAPE(0, 3), CT_FLOAT32);
    ct_clear_error();
    CHECK(ct_max(e) == NULL && strstr(ct_last_error(), "numel() == 0"));
    ct_clear_error();
    CHECK(ct_mean(iv) == NULL && strstr(ct_last_error(), "Got: Int"));
    ct_clear_error();
    CHECK(ct_sum_dim(a, 2, (const int64_t[]){1, -1}, false, CT_NUM_DTYPES) == NULL && ct_last_status() == CT_ERR_ARG);
    ct_clear_error();
    CHECK(ct_cumsum(a, 2, CT_NUM_DTYPES) == NULL && ct_last_status() == CT_ERR_INDEX);
    ct_clear_error();
    CHECK(ct_sum(NULL) == NULL);
    ct_clear_error();
    ct_scope_end();
}

static void test_autograd(void) {
    ct_scope_begin();
    /* prod with one zero: d/dx_i = product of the others */
    ct_tensor *x = f64(4, (const double[]){2, 0, 3, 4});
    ct_set_requires_grad(x, true);
    CHECK(ct_backward(ct_prod(x), NULL, false, false) == 0);
    ct_tensor *g = ct_grad(x);
    CHECK(g && at(g, 0) == 0 && at(g, 1) == 24 && at(g, 2) == 0 && at(g, 3) == 0);
    /* cumsum: gradient of sum(cumsum(y)) is n - i */
    ct_tensor *y = f64(3, (const double[]){1, 2, 3});
    ct_set_requires_grad(y, true);
    CHECK(ct_backward(ct_sum(ct_cumsum(y, 0, CT_NUM_DTYPES)), NULL, false, false) == 0);
    g = ct_grad(y);
    CHECK(g && at(g, 0) == 3 && at(g, 1) == 2 && at(g, 2) == 1);
    /* amax ties split the gradient evenly */
    ct_tensor *z = f64(3, (const double[]){5, 1, 5});
    ct_set_requires_grad(z, true);
    CHECK(ct_backward(ct_amax(z, 0, NULL, false), NULL, false, false) == 0);
    g = ct_grad(z);
    CHECK(g && at(g, 0) == 0.5 && at(g, 1) == 0 && at(g, 2) == 0.5);
    /* norm at zero: gradient 0, not NaN */
    ct_tensor *w = f64(2, (const double[]){0, 0});
    ct_set_requires_grad(w, true);
    CHECK(ct_backward(ct_norm(w, 2.0, 0, NULL, false), NULL, false, false) == 0);
    g = ct_grad(w);
    CHECK(g && at(g, 0) == 0 && at(g, 1) == 0);
    ct_scope_end();
}

int main(void) {
    int64_t live = ct_live_tensors();
    test_schedules();
    test_values_and_errors();
    test_autograd();
    CHECK(ct_live_tensors() == live);
    printf("test_reduce: %d/%d checks passed\n", checks - failures, checks);
    return failures != 0;
}
