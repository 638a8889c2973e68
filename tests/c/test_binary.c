/* Binary/ternary elementwise essentials: values, errors, autograd, no leaks. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"


static void test_values(void) {
    ct_scope_begin();
    ct_tensor *a = f64(4, (const double[]){-7, 7, -7.5, 5}), *b = f64(4, (const double[]){2, -2, 2, 0});
    ct_tensor *r = ct_remainder(a, b), *m = ct_fmod(a, b), *fd = ct_floor_divide(a, b);
    CHECK(r && NEAR(at(r, 0), 1) && NEAR(at(r, 1), -1) && NEAR(at(r, 2), 0.5) && isnan(at(r, 3)));
    CHECK(m && NEAR(at(m, 0), -1) && NEAR(at(m, 1), 1) && NEAR(at(m, 2), -1.5));
    CHECK(fd && NEAR(at(fd, 0), -4) && NEAR(at(fd, 1), -4) && isinf(at(fd, 3)));
    ct_tensor *ia = i64(3, (const int64_t[]){-7, 7, INT64_MIN}), *ib = i64(3, (const int64_t[]){2, -2, -1});
    ct_tensor *q = ct_floor_divide(ia, ib);
    CHECK(q && ct_get_dtype(q) == CT_INT64 && at(q, 0) == -4 && at(q, 1) == -4 && at(q, 2) == (double)INT64_MIN);
    /* integer division by zero is an error, not a crash */
    ct_clear_error();
    CHECK(ct_div_mode(ia, i64(3, (const int64_t[]){1, 0, 1}), "trunc") == NULL && strstr(ct_last_error(), "ZeroDivisionError"));
    ct_clear_error();
    CHECK(ct_div_mode(a, b, "round") == NULL && ct_last_status() == CT_ERR_ARG);
    ct_clear_error();
    CHECK(ct_pow(ia, ct_int(-1)) == NULL && strstr(ct_last_error(), "negative integer powers"));
    ct_clear_error();
    ct_tensor *p = ct_pow(ia, i64(1, (const int64_t[]){-1})); /* tensor exponent: no error */
    CHECK(p && at(p, 0) == 0);
    ct_tensor *z = ct_pow(f64(1, (const double[]){0}), ct_float(0));
    CHECK(z && at(z, 0) == 1);
    /* NaN: maximum propagates, fmax ignores */
    ct_tensor *n1 = f64(2, (const double[]){NAN, 1}), *n2 = f64(2, (const double[]){2, NAN});
    ct_tensor *mx = ct_maximum(n1, n2), *fx = ct_fmax(n1, n2);
    CHECK(mx && isnan(at(mx, 0)) && isnan(at(mx, 1)));
    CHECK(fx && at(fx, 0) == 2 && at(fx, 1) == 1);
    /* comparisons give bool computed in the promoted dtype */
    ct_tensor *e = ct_eq(ia, ct_float(-7.0));
    CHECK(e && ct_get_dtype(e) == CT_BOOL && at(e, 0) == 1 && at(e, 1) == 0);
    ct_tensor *sh = ct_bitwise_left_shift(ia, ct_int(64)), *sr = ct_bitwise_right_shift(ia, ct_int(70));
    CHECK(sh && at(sh, 0) == 0 && sr && at(sr, 0) == -1 && at(sr, 1) == 0);
    ct_clear_error();
    CHECK(ct_lt(ct_complex(1, 1), ct_complex(1, 2)) == NULL);
    ct_clear_error();
    CHECK(ct_bitwise_and(a, b) == NULL && ct_last_status() == CT_ERR_DTYPE);
    ct_clear_error();
    CHECK(ct_addcdiv(ia, ia, ia, 1.0) == NULL);
    ct_clear_error();
    /* where / clamp / lerp */
    ct_tensor *w = ct_where(ct_gt(a, ct_int(0)), a, ct_float(0.5));
    CHECK(w && at(w, 0) == 0.5 && at(w, 1) == 7);
    CHECK(ct_where(ia, a, b) == NULL && ct_last_status() == CT_ERR_DTYPE);
    ct_clear_error();
    ct_tensor *c = ct_clamp_scalar(a, -1, NAN);
    CHECK(c && at(c, 0) == -1 && at(c, 1) == 7);
    ct_tensor *ci = ct_clamp_scalar(ia, 0, 3);
    CHECK(ci && ct_get_dtype(ci) == CT_INT64 && at(ci, 1) == 3);
    ct_tensor *l = ct_lerp(a, b, ct_float(0.25));
    CHECK(l && NEAR(at(l, 0), -7 + 0.25 * 9));
    ct_scope_end();
}

static void test_grads(void) {
    ct_scope_begin();
    ct_tensor *x = f64(3, (const double[]){1, 2, 3}), *y = f64(3, (const double[]){2, 2, 1});
    ct_set_requires_grad(x, true);
    ct_set_requires_grad(y, true);
    ct_tensor *m = ct_maximum(x, y);
    CHECK(m && ct_backward(ct_sum(m), NULL, false, false) == 0);
    ct_tensor *gx = ct_grad(x), *gy = ct_grad(y);
    CHECK(gx && gy && at(gx, 0) == 0 && at(gx, 1) == 0.5 && at(gx, 2) == 1 && at(gy, 0) == 1 && at(gy, 1) == 0.5);
    CHECK(ct_eq(x, y) && !ct_requires_grad(ct_eq(x, y)));
    ct_set_grad(x, NULL);
    ct_tensor *c = ct_clamp_scalar(x, 1.5, 2.5);
    CHECK(c && ct_backward(ct_sum(c), NULL, false, false) == 0);
    gx = ct_grad(x);
    CHECK(gx && at(gx, 0) == 0 && at(gx, 1) == 1 && at(gx, 2) == 0);
    ct_scope_end();
}

int main(void) {
    int64_t live = ct_live_tensors();
    test_values();
    test_grads();
    CHECK(ct_live_tensors() == live);
    printf("test_binary: %d/%d checks passed\n", checks - failures, checks);
    return failures != 0;
}
