/* Essentials of the indexing / ordering ops: gather + scatter_add (and backward),
 * advanced indexing with a bool mask and int indices, index_put accumulate, sort with
 * NaN, topk, unique, searchsorted, and error reporting. Runs under ASan. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctorch.h"

static int fails = 0;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #c, ct_last_error()); \
            fails++;                                                          \
        }                                                                     \
    } while (0)

static bool values_are(const ct_tensor *t, int n, const double *want) {
    if (!t || ct_numel(t) != n) return false;
    double buf[64];
    if (ct_copy_to_buffer(t, buf, sizeof buf, CT_FLOAT64)) return false;
    for (int i = 0; i < n; i++)
        if (!(buf[i] == want[i] || (isnan(buf[i]) && isnan(want[i])))) return false;
    return true;
}

static void test_gather_scatter(void) {
    ct_scope_begin();
    double xd[] = {1, 2, 3, 4, 5, 6};
    ct_tensor *x = ct_from_data(xd, CT_SHAPE(2, 3), CT_FLOAT64);
    int64_t id[] = {2, 0, 1, 1};
    ct_tensor *idx = ct_from_data(id, CT_SHAPE(2, 2), CT_INT64);
    ct_set_requires_grad(x, true);
    ct_tensor *g = ct_gather(x, 1, idx);
    CHECK(values_are(g, 4, (double[]){3, 1, 5, 5}));
    CHECK(ct_backward(ct_sum(g), NULL, false, false) == 0);
    CHECK(values_are(ct_grad(x), 6, (double[]){1, 0, 1, 0, 2, 0}));
    /* scatter_add with duplicate indices */
    ct_tensor *z = ct_zeros(CT_SHAPE(2, 3), CT_FLOAT64);
    ct_tensor *s = ct_scatter_add(z, 1, idx, ct_ones(CT_SHAPE(2, 2), CT_FLOAT64));
    CHECK(values_are(s, 6, (double[]){1, 0, 1, 0, 2, 0}));
    ct_tensor *m = ct_scatter_reduce(ct_detach(x), 1, idx, ct_full(CT_SHAPE(2, 2), 10, CT_FLOAT64), "amax", false);
    CHECK(values_are(m, 6, (double[]){10, 2, 10, 4, 10, 6}));
    /* out of bounds */
    int64_t bad[] = {5};
    CHECK(ct_gather(x, 1, ct_from_data(bad, CT_SHAPE(1, 1), CT_INT64)) == NULL);
    CHECK(strstr(ct_last_error(), "index 5 is out of bounds for dimension 1 with size 3") != NULL);
    CHECK(ct_gather(x, 1, ct_zeros(CT_SHAPE(1, 1), CT_FLOAT32)) == NULL);
    CHECK(strstr(ct_last_error(), "gather(): Expected dtype int64 for index") != NULL);
    ct_scope_end();
}

static void test_advanced(void) {
    ct_scope_begin();
    ct_tensor *x = ct_arange(0, 12, 1, CT_FLOAT64);
    x = ct_reshape(x, CT_SHAPE(3, 4));
    bool md[] = {true, false, true};
    ct_tensor *mask = ct_from_data(md, CT_SHAPE(3), CT_BOOL);
    int64_t cd[] = {3, -1};
    ct_tensor *cols = ct_from_data(cd, CT_SHAPE(2), CT_INT64);
    /* x[mask, cols] -> rows 0,2 with cols 3,3 */
    ct_tensor *r = ct_index(x, 2, (const ct_tensor *[]){mask, cols});
    CHECK(values_are(r, 2, (double[]){3, 11}));
    /* x[:, cols] */
    r = ct_index(x, 2, (const ct_tensor *[]){NULL, cols});
    CHECK(r && ct_ndim(r) == 2 && ct_size(r, 0) == 3 && ct_size(r, 1) == 2);
    CHECK(values_are(r, 6, (double[]){3, 3, 7, 7, 11, 11}));
    /* index_put accumulate with duplicates */
    int64_t dd[] = {1, 1, 0};
    ct_tensor *z = ct_zeros(CT_SHAPE(3), CT_FLOAT64);
    ct_tensor *p = ct_index_put(z, 1, (const ct_tensor *[]){ct_from_data(dd, CT_SHAPE(3), CT_INT64)},
                                ct_ones(CT_SHAPE(3), CT_FLOAT64), true);
    CHECK(values_are(p, 3, (double[]){1, 2, 0}));
    int64_t oob[] = {4};
    CHECK(ct_index(x, 1, (const ct_tensor *[]){ct_from_data(oob, CT_SHAPE(1), CT_INT64)}) == NULL);
    CHECK(strstr(ct_last_error(), "index 4 is out of bounds for dimension 0 with size 3") != NULL);
    ct_tensor *nz = ct_nonzero(mask);
    CHECK(nz && ct_size(nz, 0) == 2 && ct_size(nz, 1) == 1 && values_are(nz, 2, (double[]){0, 2}));
    ct_scope_end();
}

static void test_ordering(void) {
    ct_scope_begin();
    double xd[] = {3, NAN, -1, 3, 2};
    ct_tensor *x = ct_from_data(xd, CT_SHAPE(5), CT_FLOAT64);
    ct_tensor *idx = NULL;
    ct_tensor *s = ct_sort(x, 0, false, true, &idx);
    CHECK(values_are(s, 5, (double[]){-1, 2, 3, 3, NAN}));
    CHECK(values_are(idx, 5, (double[]){2, 4, 0, 3, 1}));
    s = ct_sort(x, 0, true, true, &idx);
    CHECK(values_are(s, 5, (double[]){NAN, 3, 3, 2, -1}));
    CHECK(values_are(idx, 5, (double[]){1, 0, 3, 4, 2}));
    ct_tensor *ti = NULL;
    ct_tensor *t = ct_topk(x, 2, 0, false, true, &ti);
    CHECK(values_are(t, 2, (double[]){-1, 2}) && values_are(ti, 2, (double[]){2, 4}));
    int64_t ud[] = {2, 1, 2, 5, 1};
    ct_tensor *inv = NULL, *cnt = NULL;
    ct_tensor *u = ct_unique(ct_from_data(ud, CT_SHAPE(5), CT_INT64), true, CT_ALL_DIMS, &inv, &cnt);
    CHECK(values_are(u, 3, (double[]){1, 2, 5}));
    CHECK(values_are(inv, 5, (double[]){1, 0, 1, 2, 0}));
    CHECK(values_are(cnt, 3, (double[]){2, 2, 1}));
    double bd[] = {1, 3, 5};
    double vd[] = {0, 3, 6};
    ct_tensor *b = ct_from_data(bd, CT_SHAPE(3), CT_FLOAT64), *v = ct_from_data(vd, CT_SHAPE(3), CT_FLOAT64);
    CHECK(values_are(ct_searchsorted(b, v, false, false), 3, (double[]){0, 1, 3}));
    CHECK(values_are(ct_searchsorted(b, v, true, true), 3, (double[]){0, 2, 3}));
    CHECK(ct_topk(x, 6, 0, true, true, NULL) == NULL);
    ct_scope_end();
}

int main(void) {
    int64_t live = ct_live_tensors();
    test_gather_scatter();
    test_advanced();
    test_ordering();
    CHECK(ct_live_tensors() == live);
    if (fails) fprintf(stderr, "test_index: %d failure(s)\n", fails);
    else printf("test_index: ok\n");
    return fails != 0;
}
