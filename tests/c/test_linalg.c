/* Matrix products and shape ops: a few essentials checked by hand (values, gradients,
 * errors, no leaks). The exhaustive comparison with PyTorch is in
 * tests/conformance/test_linalg.py and test_shape.py. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#define CHECK_NEAR_TOL 1e-5
#include "check.h"

static bool all_near(const ct_tensor *t, const double *want, int64_t n) {
    if (!t || ct_numel(t) != n) return false;
    double buf[256];
    if (ct_copy_to_buffer(t, buf, sizeof buf, CT_FLOAT64)) return false;
    for (int64_t i = 0; i < n; i++)
        if (!NEAR(buf[i], want[i])) return false;
    return true;
}

static void test_mm(void) {
    ct_scope_begin();
    /* [2,3] @ [3,2] */
    ct_tensor *a = ct_from_data((float[]){1, 2, 3, 4, 5, 6}, CT_SHAPE(2, 3), CT_FLOAT32);
    ct_tensor *b = ct_from_data((float[]){7, 8, 9, 10, 11, 12}, CT_SHAPE(3, 2), CT_FLOAT32);
    ct_tensor *c = ct_mm(a, b);
    CHECK(all_near(c, (double[]){58, 64, 139, 154}, 4));
    /* transposed operands go to BLAS with transposed flags: same values */
    ct_tensor *at = ct_t(ct_contiguous(ct_t(a)));
    CHECK(!ct_is_contiguous(at) && all_near(ct_mm(at, b), (double[]){58, 64, 139, 154}, 4));
    /* a non-BLAS layout (every other column) is copied first */
    ct_tensor *wide = ct_arange(0, 12, 1, CT_FLOAT64);
    ct_tensor *w = ct_slice(ct_view(wide, CT_SHAPE(2, 6)), 1, 0, 6, 2); /* [[0,2,4],[6,8,10]] */
    ct_tensor *bd = ct_to_dtype(b, CT_FLOAT64);
    CHECK(all_near(ct_mm(w, bd), (double[]){62, 68, 224, 248}, 4));
    /* integer matmul (blocked C loop) */
    ct_tensor *ai = ct_to_dtype(a, CT_INT64), *bi = ct_to_dtype(b, CT_INT64);
    ct_tensor *ci = ct_matmul(ai, bi);
    CHECK(ci && ct_get_dtype(ci) == CT_INT64 && all_near(ci, (double[]){58, 64, 139, 154}, 4));
    /* float16 accumulates in float */
    ct_tensor *ch = ct_mm(ct_to_dtype(a, CT_FLOAT16), ct_to_dtype(b, CT_FLOAT16));
    CHECK(ch && ct_get_dtype(ch) == CT_FLOAT16 && all_near(ch, (double[]){58, 64, 139, 154}, 4));
    /* errors */
    ct_clear_error();
    CHECK(ct_mm(a, a) == NULL && strstr(ct_last_error(), "mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)"));
    ct_clear_error();
    CHECK(ct_mm(a, bd) == NULL && strstr(ct_last_error(), "float != double"));
    ct_clear_error();
    CHECK(ct_matmul(ct_scalar_tensor(1, CT_FLOAT32), a) == NULL && ct_last_status() == CT_ERR_SHAPE);
    ct_clear_error();
    ct_scope_end();
}

static void test_matmul_grad(void) {
    ct_scope_begin();
    ct_tensor *a = ct_arange(0, 24, 1, CT_FLOAT64);
    a = ct_view(a, CT_SHAPE(2, 1, 3, 4));
    ct_tensor *b = ct_ones(CT_SHAPE(3, 4, 2), CT_FLOAT64);
    ct_set_requires_grad(a, true);
    ct_set_requires_grad(b, true);
    ct_tensor *c = ct_matmul(a, b); /* [2, 3, 3, 2] */
    CHECK(c && ct_ndim(c) == 4 && ct_size(c, 1) == 3 && ct_size(c, 3) == 2);
    CHECK(ct_backward(ct_sum(c), NULL, false, false) == 0);
    /* d sum / d a[..., k] = sum over batch(3) and columns(2) of b = 6 */
    CHECK(ct_grad(a) && NEAR(ct_get(ct_grad(a), (int64_t[]){1, 0, 2, 3}), 6.0));
    /* d sum / d b[j, k, m] = sum over the broadcast batch 2 and rows 3 of a[..., k] */
    double want = 0;
    for (int bb = 0; bb < 2; bb++)
        for (int r = 0; r < 3; r++) want += bb * 12 + r * 4 + 1;
    CHECK(ct_grad(b) && NEAR(ct_get(ct_grad(b), (int64_t[]){2, 1, 0}), want));
    /* addmm with beta = 0 ignores NaN in input */
    ct_tensor *in = ct_full(CT_SHAPE(2, 2), NAN, CT_FLOAT32);
    ct_tensor *m1 = ct_ones(CT_SHAPE(2, 3), CT_FLOAT32), *m2 = ct_ones(CT_SHAPE(3, 2), CT_FLOAT32);
    CHECK(all_near(ct_addmm(in, m1, m2, 0.0, 2.0), (double[]){6, 6, 6, 6}, 4));
    /* einsum: batched matrix product and a trace */
    ct_tensor *x = ct_view(ct_arange(0, 12, 1, CT_FLOAT64), CT_SHAPE(2, 2, 3));
    ct_tensor *y = ct_view(ct_arange(0, 12, 1, CT_FLOAT64), CT_SHAPE(2, 3, 2));
    ct_tensor *e1 = ct_einsum("bij,bjk->bik", 2, (const ct_tensor *[]){x, y});
    ct_tensor *e2 = ct_bmm(x, y);
    CHECK(e1 && e2 && all_near(e1, (double[]){10, 13, 28, 40, 172, 193, 244, 274}, 8));
    ct_tensor *sq = ct_view(ct_arange(0, 9, 1, CT_FLOAT64), CT_SHAPE(3, 3));
    CHECK(all_near(ct_einsum("ii", 1, (const ct_tensor *[]){sq}), (double[]){12}, 1));
    ct_scope_end();
}

static void test_shape(void) {
    ct_scope_begin();
    ct_tensor *a = ct_view(ct_arange(0, 6, 1, CT_FLOAT32), CT_SHAPE(2, 3));
    ct_tensor *b = ct_view(ct_arange(6, 10, 1, CT_INT64), CT_SHAPE(2, 2));
    ct_tensor *c = ct_cat(2, (const ct_tensor *[]){a, b}, 1);
    CHECK(c && ct_get_dtype(c) == CT_FLOAT32 && ct_size(c, 1) == 5 && all_near(c, (double[]){0, 1, 2, 6, 7, 3, 4, 5, 8, 9}, 10));
    ct_clear_error();
    CHECK(ct_cat(2, (const ct_tensor *[]){a, ct_ones(CT_SHAPE(3, 2), CT_FLOAT32)}, 1) == NULL &&
          strstr(ct_last_error(), "Sizes of tensors must match except in dimension 1. Expected size 2 but got size 3 "
                                  "for tensor number 1 in the list."));
    ct_clear_error();
    CHECK(all_near(ct_flip(a, 2, (int64_t[]){0, 1}), (double[]){5, 4, 3, 2, 1, 0}, 6));
    CHECK(all_near(ct_roll(a, 1, (int64_t[]){1}, 1, (int64_t[]){1}), (double[]){2, 0, 1, 5, 3, 4}, 6));
    CHECK(all_near(ct_triu(a, 0), (double[]){0, 1, 2, 0, 4, 5}, 6));
    CHECK(all_near(ct_repeat(ct_arange(0, 2, 1, CT_FLOAT32), 2, (int64_t[]){2, 2}), (double[]){0, 1, 0, 1, 0, 1, 0, 1}, 8));
    CHECK(all_near(ct_pad(ct_arange(0, 3, 1, CT_FLOAT32), 2, (int64_t[]){2, -1}, "constant", 9), (double[]){9, 9, 0, 1}, 4));
    ct_tensor *parts[3];
    CHECK(ct_chunk(ct_arange(0, 5, 1, CT_FLOAT32), 3, 0, parts, 3) == 3 && ct_numel(parts[2]) == 1 &&
          ct_shares_storage(parts[0], parts[2]));
    ct_tensor *oh = ct_one_hot(ct_from_data((int64_t[]){0, 2}, CT_SHAPE(2), CT_INT64), -1);
    CHECK(all_near(oh, (double[]){1, 0, 0, 0, 0, 1}, 6));
    /* gradient of cat: a narrow per input */
    ct_tensor *x = ct_ones(CT_SHAPE(2), CT_FLOAT64), *y = ct_ones(CT_SHAPE(3), CT_FLOAT64);
    ct_set_requires_grad(x, true);
    ct_set_requires_grad(y, true);
    ct_tensor *w = ct_arange(1, 6, 1, CT_FLOAT64);
    CHECK(ct_backward(ct_sum(ct_mul(ct_cat(2, (const ct_tensor *[]){x, y}, 0), w)), NULL, false, false) == 0);
    CHECK(all_near(ct_grad(x), (double[]){1, 2}, 2) && all_near(ct_grad(y), (double[]){3, 4, 5}, 3));
    ct_scope_end();
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_mm();
    test_matmul_grad();
    test_shape();
    CHECK(ct_live_tensors() == live0);
    printf("test_linalg: %d checks, %d failures\n", checks, failures);
    return failures;
}
