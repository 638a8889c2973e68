/* Shared by the C tests: a CHECK that counts and reports failures (with the library's
 * last error), tolerance comparisons, and small tensor helpers. Each test's main
 * returns failures != 0. Define CHECK_NEAR_TOL before including to change NEAR's
 * relative tolerance. */
#ifndef CT_TEST_CHECK_H
#define CT_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

#include <ctorch.h>

static int failures, checks;

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        checks++;                                                                                       \
        if (!(cond)) {                                                                                  \
            failures++;                                                                                 \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__, __LINE__, #cond,     \
                    ct_last_error());                                                                   \
        }                                                                                               \
    } while (0)

#ifndef CHECK_NEAR_TOL
#define CHECK_NEAR_TOL 1e-6
#endif
#define NEAR(a, b) (fabs((double)(a) - (double)(b)) <= CHECK_NEAR_TOL * (1 + fabs((double)(b))))

static inline ct_tensor *f64(int n, const double *v) { return ct_from_data(v, 1, (const int64_t[]){n}, CT_FLOAT64); }
static inline ct_tensor *i64(int n, const int64_t *v) { return ct_from_data(v, 1, (const int64_t[]){n}, CT_INT64); }
static inline double at(const ct_tensor *t, int64_t i) { return ct_get(t, &i); }
static inline double at2(const ct_tensor *t, int64_t i, int64_t j) { return ct_get(t, (const int64_t[]){i, j}); }

#endif
