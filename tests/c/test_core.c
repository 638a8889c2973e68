/* Core smoke tests: ownership, scopes, errors, views, autograd. Plain C, no framework:
 * each CHECK failure is printed; the exit code is the number of failures. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

static void test_errors(void) {
    ct_clear_error();
    ct_scope_begin();
    ct_tensor *a = ct_ones(CT_SHAPE(2, 3), CT_FLOAT32), *b = ct_ones(CT_SHAPE(4), CT_FLOAT32);
    ct_tensor *c = ct_add(a, b);
    CHECK(c == NULL);
    CHECK(ct_last_status() == CT_ERR_SHAPE);
    CHECK(strstr(ct_last_error(), "add") && strstr(ct_last_error(), "[2, 3]") && strstr(ct_last_error(), "[4]"));
    /* NULL propagates and keeps the first message */
    char first[256];
    snprintf(first, sizeof first, "%s", ct_last_error());
    CHECK(ct_mul(c, a) == NULL);
    CHECK(strcmp(first, ct_last_error()) == 0);
    ct_clear_error();
    CHECK(ct_mul(NULL, a) == NULL && ct_last_status() == CT_ERR_NULL);
    ct_clear_error();
    CHECK(ct_view(a, CT_SHAPE(4)) == NULL && ct_last_status() == CT_ERR_SHAPE);
    ct_clear_error();
    CHECK(ct_select(a, 5, 0) == NULL && ct_last_status() == CT_ERR_INDEX);
    ct_clear_error();
    ct_scope_end();
}

static void test_scopes(void) {
    int64_t live0 = ct_live_tensors();
    ct_tensor *kept = NULL;
    ct_scope_begin();
    for (int i = 0; i < 100; i++) {
        ct_tensor *x = ct_ones(CT_SHAPE(10), CT_FLOAT32);
        ct_tensor *y = ct_mul(ct_add(x, x), x);
        if (i == 99) kept = ct_keep(y);
    }
    ct_scope_end();
    CHECK(ct_live_tensors() == live0 + 1);
    ct_tensor *total = ct_sum(kept); /* no scope open: the result is ours to release */
    CHECK(kept && NEAR(ct_item(total), 20.0));
    ct_release(total);
    ct_release(kept);
    CHECK(ct_scope_end() != 0); /* no scope open */
    ct_clear_error();
}

static void test_views(void) {
    ct_scope_begin();
    ct_tensor *x = ct_arange(0, 24, 1, CT_FLOAT32);
    ct_tensor *m = ct_view(x, CT_SHAPE(2, 3, 4));
    CHECK(ct_shares_storage(x, m));
    ct_tensor *t = ct_transpose(m, 0, 2); /* [4, 3, 2] */
    CHECK(ct_size(t, 0) == 4 && !ct_is_contiguous(t));
    CHECK(ct_get(t, (int64_t[]){3, 2, 1}) == 23);
    ct_tensor *s = ct_slice(m, 2, 1, 4, 2); /* [2, 3, 2]: cols 1, 3 */
    CHECK(ct_get(s, (int64_t[]){1, 2, 1}) == 23 && ct_get(s, (int64_t[]){0, 0, 0}) == 1);
    ct_tensor *c = ct_contiguous(t);
    CHECK(!ct_shares_storage(c, t) && ct_is_contiguous(c));
    ct_tensor *c2 = ct_contiguous(m);
    CHECK(c2 == m || ct_shares_storage(c2, m));
    ct_tensor *d = ct_diagonal(ct_view(x, CT_SHAPE(4, 6)), 1, 0, 1);
    CHECK(ct_numel(d) == 4 && ct_get(d, (int64_t[]){3}) == 22);
    ct_tensor *e = ct_expand(ct_view(x, CT_SHAPE(1, 24)), CT_SHAPE(3, -1));
    CHECK(ct_size(e, 0) == 3 && ct_stride(e, 0) == 0);
    ct_scope_end();
}

static void test_autograd(void) {
    ct_scope_begin();
    ct_tensor *a = ct_from_data((float[]){1, 2, 3}, CT_SHAPE(3), CT_FLOAT32);
    ct_tensor *b = ct_from_data((float[]){4, 5, 6}, CT_SHAPE(3), CT_FLOAT32);
    ct_set_requires_grad(a, true);
    ct_set_requires_grad(b, true);
    ct_tensor *y = ct_sum(ct_mul(ct_add(a, b), a)); /* sum((a+b)*a) */
    CHECK(y && strcmp(ct_grad_fn_name(y), "SumBackward0") == 0);
    CHECK(ct_backward(y, NULL, false, false) == 0);
    /* dy/da = 2a + b, dy/db = a */
    CHECK(ct_grad(a) && NEAR(ct_get(ct_grad(a), (int64_t[]){2}), 12.0));
    CHECK(ct_grad(b) && NEAR(ct_get(ct_grad(b), (int64_t[]){1}), 2.0));
    /* a second backward without retain_graph fails cleanly */
    CHECK(ct_backward(y, NULL, false, false) != 0);
    ct_clear_error();
    /* modified by an inplace operation */
    ct_tensor *h = ct_mul(a, a);
    ct_tensor *z = ct_sum(ct_mul(h, h));
    CHECK(ct_mul_(h, ct_float(2.0)) == 0);
    CHECK(ct_backward(z, NULL, false, false) != 0 && strstr(ct_last_error(), "modified by an inplace operation"));
    ct_clear_error();
    /* leaf in-place is an error under grad mode */
    CHECK(ct_add_(a, b) != 0 && strstr(ct_last_error(), "leaf Variable"));
    ct_clear_error();
    /* broadcasting gradient is reduced to the input's shape */
    ct_tensor *w = ct_ones(CT_SHAPE(2, 3), CT_FLOAT32);
    ct_set_requires_grad(w, true);
    ct_tensor *bias = ct_zeros(CT_SHAPE(3), CT_FLOAT32);
    ct_set_requires_grad(bias, true);
    CHECK(ct_backward(ct_sum(ct_add(w, bias)), NULL, false, false) == 0);
    CHECK(ct_grad(bias) && ct_ndim(ct_grad(bias)) == 1 && NEAR(ct_get(ct_grad(bias), (int64_t[]){0}), 2.0));
    /* views: gradient of a slice lands in the right place */
    ct_tensor *v = ct_zeros(CT_SHAPE(4, 5), CT_FLOAT64);
    ct_set_requires_grad(v, true);
    CHECK(ct_backward(ct_sum(ct_slice(ct_transpose(v, 0, 1), 0, 1, 5, 3)), NULL, false, false) == 0);
    CHECK(ct_grad(v) && ct_get(ct_grad(v), (int64_t[]){2, 1}) == 1 && ct_get(ct_grad(v), (int64_t[]){2, 4}) == 1 &&
          ct_get(ct_grad(v), (int64_t[]){2, 2}) == 0);
    ct_scope_end();
}

/* A leaf's AccumulateGrad node outlives the graphs that used it (parked in the leaf,
 * taken up again by the next op) without keeping the leaf alive: graphs made and freed
 * over the same leaf, a leaf released while a graph still needs it, and a leaf whose
 * last graph goes first. Under the sanitizer build, a node or leaf left behind or freed
 * twice fails this test. */
static void test_grad_accumulator_reuse(void) {
    ct_scope_begin();
    ct_tensor *x = ct_from_data((double[]){1, 2, 3}, CT_SHAPE(3), CT_FLOAT64);
    ct_set_requires_grad(x, true);
    for (int it = 0; it < 3; it++) { /* graph made, freed without backward, made again */
        ct_scope_begin();
        ct_tensor *y = ct_mul(x, x);
        CHECK(y && ct_requires_grad(y));
        ct_scope_end();
    }
    for (int it = 1; it <= 3; it++) { /* backward through the taken-up node accumulates */
        CHECK(ct_backward(ct_sum(ct_mul(x, x)), NULL, false, false) == 0);
        CHECK(ct_grad(x) && NEAR(at(ct_grad(x), 2), 6.0 * it)); /* d/dx sum(x^2) = 2x, it times */
    }
    /* the only owner lets go of a leaf while a graph still reaches it: the graph keeps it */
    ct_tensor *w = ct_from_data((double[]){4, 5}, CT_SHAPE(2), CT_FLOAT64);
    ct_set_requires_grad(w, true);
    ct_tensor *w2 = ct_keep(ct_mul(w, ct_float(3.0))); /* kept out of the scope */
    ct_tensor *wref = ct_retain(w);
    ct_scope_end(); /* x and the scope's reference to w go */
    ct_tensor *s = ct_sum(w2), *g = NULL; /* no scope open: these references are ours */
    CHECK(ct_backward(s, NULL, false, false) == 0);
    CHECK((g = ct_grad(wref)) && NEAR(at(g, 1), 3.0)); /* borrowed */
    ct_release(s);
    ct_release(w2);   /* the graph goes first: its node is parked in w ... */
    ct_release(wref); /* ... and freed with w */
}

/* In-place writes through views of tensors in a graph (CopySlices): the base's
 * gradient sees the write, and a view taken earlier follows the new history. */
static void test_inplace_views(void) {
    ct_scope_begin();
    ct_tensor *a = ct_ones(CT_SHAPE(2, 3), CT_FLOAT64);
    ct_set_requires_grad(a, true);
    ct_tensor *x = ct_mul_scalar(a, 2.0);
    ct_tensor *col = ct_select(x, 1, 0);           /* taken before the write */
    CHECK(ct_mul_(ct_select(x, 0, 1), ct_float(3.0)) == 0);
    CHECK(ct_get(x, (int64_t[]){1, 0}) == 6.0);
    /* loss = sum(x) + sum(col): d/da = 2 * (3 in row 1, else 1) + 2 * [col 0, with row 1 x3] */
    CHECK(ct_backward(ct_add(ct_sum(x), ct_sum(col)), NULL, false, false) == 0);
    ct_tensor *g = ct_grad(a);
    CHECK(g && ct_get(g, (int64_t[]){0, 0}) == 4.0 && ct_get(g, (int64_t[]){1, 0}) == 12.0 &&
          ct_get(g, (int64_t[]){1, 1}) == 6.0 && ct_get(g, (int64_t[]){0, 2}) == 2.0);
    /* a view of a leaf that requires grad cannot be written in place */
    CHECK(ct_fill_(ct_select(a, 0, 0), 1.0) != 0 && strstr(ct_last_error(), "view of a leaf"));
    ct_clear_error();
    ct_scope_end();
}

static ct_tensor *f_mul_sum(int n, ct_tensor *const *in, void *user) {
    (void)n; (void)user;
    return ct_sum_dim(ct_mul(ct_div(in[0], in[1]), in[0]), 1, (int64_t[]){1}, false, CT_NUM_DTYPES);
}

static void test_gradcheck(void) {
    ct_scope_begin();
    ct_tensor *x = ct_from_data((double[]){0.5, -1.2, 2.0, 0.3, 1.1, -0.7}, CT_SHAPE(2, 3), CT_FLOAT64);
    ct_tensor *y = ct_from_data((double[]){1.5, 2.2, -1.0}, CT_SHAPE(3), CT_FLOAT64);
    ct_set_requires_grad(x, true);
    ct_set_requires_grad(y, true);
    ct_tensor *ins[2] = {x, y};
    CHECK(ct_gradcheck(f_mul_sum, 2, ins, NULL, 1e-6, 1e-5, 1e-3) == 1);
    CHECK(ct_gradgradcheck(f_mul_sum, 2, ins, NULL, 1e-6, 1e-5, 1e-3) == 1);
    ct_scope_end();
}

int main(void) {
    test_errors();
    test_scopes();
    test_views();
    test_autograd();
    test_grad_accumulator_reuse();
    test_inplace_views();
    test_gradcheck();
    printf("test_core: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
