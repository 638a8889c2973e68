/* Unary math and activation essentials: values, dtype rules, errors, gradcheck and
 * gradgradcheck of every differentiable op, SLEEF/scalar path agreement, no leaks. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"


static void test_values(void) {
    ct_scope_begin();
    ct_tensor *x = f64(5, (const double[]){-2.5, -0.5, 0.0, 0.5, 2.5});
    ct_tensor *r = ct_round(x);
    CHECK(r && at(r, 0) == -2 && at(r, 1) == -0.0 && at(r, 3) == 0 && at(r, 4) == 2); /* half to even */
    ct_tensor *rd = ct_round_decimals(f64(2, (const double[]){1.2345, -12.5}), 2);
    CHECK(rd && NEAR(at(rd, 0), 1.23) && NEAR(at(rd, 1), -12.5));
    ct_tensor *rn = ct_round_decimals(f64(1, (const double[]){1250}), -2);
    CHECK(rn && at(rn, 0) == 1200);
    ct_tensor *ei = ct_exp(i64(2, (const int64_t[]){0, 1}));
    CHECK(ei && ct_get_dtype(ei) == CT_FLOAT32 && NEAR(at(ei, 1), (float)M_E));
    ct_tensor *ai = ct_abs(i64(2, (const int64_t[]){-3, 4}));
    CHECK(ai && ct_get_dtype(ai) == CT_INT64 && at(ai, 0) == 3);
    ct_tensor *fi = ct_floor(i64(1, (const int64_t[]){-3}));
    CHECK(fi && ct_get_dtype(fi) == CT_INT64 && at(fi, 0) == -3);
    ct_tensor *c = ct_complex(3, 4);
    ct_tensor *ac = ct_abs(c);
    CHECK(ac && ct_get_dtype(ac) == CT_FLOAT64 && NEAR(at(ac, 0), 5)); /* wrapped complex is complex128 */
    ct_tensor *an = ct_angle(f64(3, (const double[]){-1, 0, NAN}));
    CHECK(an && NEAR(at(an, 0), M_PI) && at(an, 1) == 0 && isnan(at(an, 2)));
    ct_tensor *nn = ct_nan_to_num(f64(3, (const double[]){NAN, INFINITY, -INFINITY}), 0.5, NAN, -7);
    CHECK(nn && at(nn, 0) == 0.5 && at(nn, 1) == 1.7976931348623157e308 && at(nn, 2) == -7);
    ct_tensor *isn = ct_isnan(f64(2, (const double[]){NAN, 1}));
    CHECK(isn && ct_get_dtype(isn) == CT_BOOL && at(isn, 0) == 1 && at(isn, 1) == 0);
    ct_tensor *fin = ct_isfinite(i64(1, (const int64_t[]){5}));
    CHECK(fin && at(fin, 0) == 1);
    ct_tensor *pinf = ct_isposinf(f64(2, (const double[]){INFINITY, -INFINITY}));
    CHECK(pinf && at(pinf, 0) == 1 && at(pinf, 1) == 0);
    ct_tensor *ev = ct_erfinv(f64(3, (const double[]){0.5, -0.999, 1}));
    CHECK(ev && fabs(at(ev, 0) - 0.4769362762044699) < 1e-14 && fabs(at(ev, 1) + 2.326753765513525) < 1e-12 &&
          isinf(at(ev, 2)));
    ct_tensor *dg = ct_digamma(f64(3, (const double[]){1, 0.5, -1.5}));
    CHECK(dg && fabs(at(dg, 0) + 0.5772156649015329) < 1e-13 && fabs(at(dg, 1) + 1.9635100260214235) < 1e-13 &&
          fabs(at(dg, 2) - 0.7031566406452432) < 1e-12);
    ct_tensor *sq = ct_square(ct_bool(true));
    CHECK(sq && ct_get_dtype(sq) == CT_INT64);
    /* softmax rows sum to one; all -inf gives NaN like torch */
    ct_tensor *m = ct_from_data((const double[]){1, 2, 3, -INFINITY, -INFINITY, -INFINITY}, 2,
                                (const int64_t[]){2, 3}, CT_FLOAT64);
    ct_tensor *sm = ct_flatten(ct_softmax(m, 1, CT_NUM_DTYPES), 0, -1);
    CHECK(sm && NEAR(at(sm, 0) + at(sm, 1) + at(sm, 2), 1) && isnan(at(sm, 3)));
    ct_tensor *ls = ct_flatten(ct_log_softmax(m, -1, CT_FLOAT32), 0, -1);
    CHECK(ls && ct_get_dtype(ls) == CT_FLOAT32 && fabs(at(ls, 2) - (3 - log(exp(1) + exp(2) + exp(3)))) < 1e-6);
    ct_tensor *sm0 = ct_flatten(ct_softmax(m, 0, CT_NUM_DTYPES), 0, -1); /* strided (inner > 1) path */
    CHECK(sm0 && isnan(at(sm0, 0)) == 0 && NEAR(at(sm0, 0), 1.0));
    ct_tensor *g = ct_glu(f64(4, (const double[]){1, 2, 0, 100}), 0);
    CHECK(g && NEAR(at(g, 0), 0.5) && NEAR(at(g, 1), 2.0));
    ct_tensor *rl = ct_relu(i64(2, (const int64_t[]){-1, 4}));
    CHECK(rl && ct_get_dtype(rl) == CT_INT64 && at(rl, 0) == 0 && at(rl, 1) == 4);
    ct_tensor *inp = f64(3, (const double[]){-1, 2, -3});
    CHECK(ct_relu_(inp) == 0 && at(inp, 0) == 0 && at(inp, 1) == 2);
    CHECK(ct_exp_(inp) == 0 && NEAR(at(inp, 1), exp(2)));
    ct_scope_end();
}

static void test_errors(void) {
    ct_scope_begin();
    ct_tensor *b = ct_from_data((const bool[]){true, false}, 1, (const int64_t[]){2}, CT_BOOL);
    ct_tensor *i = i64(2, (const int64_t[]){1, 2});
    ct_clear_error();
    CHECK(ct_abs(b) == NULL && ct_last_status() == CT_ERR_DTYPE);
    ct_clear_error();
    CHECK(ct_relu(b) == NULL && strstr(ct_last_error(), "Boolean"));
    ct_clear_error();
    CHECK(ct_sign(ct_complex(1, 1)) == NULL && strstr(ct_last_error(), "sgn"));
    ct_clear_error();
    CHECK(ct_imag(i) == NULL);
    ct_clear_error();
    CHECK(ct_exp_(i) < 0); /* float result can't be written into int64 */
    ct_clear_error();
    CHECK(ct_frac(i) == NULL && ct_gelu(i, false) == NULL);
    ct_clear_error();
    CHECK(ct_glu(f64(3, (const double[]){1, 2, 3}), 0) == NULL && strstr(ct_last_error(), "must be even"));
    ct_clear_error();
    CHECK(ct_softmax(i, 0, CT_NUM_DTYPES) == NULL);
    ct_clear_error();
    CHECK(ct_softmax(i, 2, CT_FLOAT32) == NULL && ct_last_status() == CT_ERR_INDEX);
    ct_clear_error();
    CHECK(ct_celu(f64(1, (const double[]){1}), 0.0) == NULL);
    ct_clear_error();
    CHECK(ct_exp(NULL) == NULL && ct_last_status() == CT_ERR_NULL);
    ct_clear_error();
    ct_scope_end();
}

/* every differentiable op through gradcheck and gradgradcheck */
typedef ct_tensor *(*un_fn)(const ct_tensor *);
static ct_tensor *apply1(int n, ct_tensor *const *in, void *user) { (void)n; return ((un_fn)user)(in[0]); }

static ct_tensor *gelu_t(const ct_tensor *x) { return ct_gelu(x, true); }
static ct_tensor *gelu_e(const ct_tensor *x) { return ct_gelu(x, false); }
static ct_tensor *leaky(const ct_tensor *x) { return ct_leaky_relu(x, 0.2); }
static ct_tensor *elu2(const ct_tensor *x) { return ct_elu(x, 1.5); }
static ct_tensor *celu2(const ct_tensor *x) { return ct_celu(x, 0.7); }
static ct_tensor *softplus2(const ct_tensor *x) { return ct_softplus(x, 2.0, 3.0); }
static ct_tensor *hardtanh2(const ct_tensor *x) { return ct_hardtanh(x, -0.5, 0.8); }
static ct_tensor *sm1(const ct_tensor *x) { return ct_softmax(x, 1, CT_NUM_DTYPES); }
static ct_tensor *lsm0(const ct_tensor *x) { return ct_log_softmax(x, 0, CT_NUM_DTYPES); }
static ct_tensor *glu1(const ct_tensor *x) { return ct_glu(x, 1); }
static ct_tensor *n2n(const ct_tensor *x) { return ct_nan_to_num(x, 0, NAN, NAN); }

static void test_grads(void) {
    struct { const char *name; un_fn f; int domain; bool gg; } ops[] = {
        /* domain: 0 any, 1 positive, 2 (-1, 1), 3 > 1 */
        {"sqrt", ct_sqrt, 1, true}, {"rsqrt", ct_rsqrt, 1, true}, {"reciprocal", ct_reciprocal, 1, true},
        {"square", ct_square, 0, true}, {"exp", ct_exp, 0, true}, {"exp2", ct_exp2, 0, true},
        {"expm1", ct_expm1, 0, true}, {"log", ct_log, 1, true}, {"log2", ct_log2, 1, true},
        {"log10", ct_log10, 1, true}, {"log1p", ct_log1p, 1, true}, {"sin", ct_sin, 0, true},
        {"cos", ct_cos, 0, true}, {"tan", ct_tan, 2, true}, {"asin", ct_asin, 2, true}, {"acos", ct_acos, 2, true},
        {"atan", ct_atan, 0, true}, {"sinh", ct_sinh, 0, true}, {"cosh", ct_cosh, 0, true},
        {"tanh", ct_tanh, 0, true}, {"asinh", ct_asinh, 0, true}, {"acosh", ct_acosh, 3, true},
        {"atanh", ct_atanh, 2, true}, {"sigmoid", ct_sigmoid, 0, true}, {"erf", ct_erf, 0, true},
        {"erfc", ct_erfc, 0, true}, {"erfinv", ct_erfinv, 2, true}, {"lgamma", ct_lgamma, 1, true},
        {"digamma", ct_digamma, 1, false}, {"abs", ct_abs, 0, true}, {"frac", ct_frac, 1, true},
        {"floor", ct_floor, 1, true}, {"sgn", ct_sgn, 0, true}, {"nan_to_num", n2n, 0, true},
        {"relu", ct_relu, 0, true}, {"relu6", ct_relu6, 0, true}, {"leaky_relu", leaky, 0, true},
        {"elu", elu2, 0, true}, {"selu", ct_selu, 0, true}, {"celu", celu2, 0, true}, {"gelu", gelu_e, 0, true},
        {"gelu_tanh", gelu_t, 0, true}, {"silu", ct_silu, 0, true}, {"mish", ct_mish, 0, true},
        {"softplus", softplus2, 0, true}, {"softsign", ct_softsign, 0, true}, {"hardtanh", hardtanh2, 0, true},
        {"hardsigmoid", ct_hardsigmoid, 0, true}, {"hardswish", ct_hardswish, 0, true},
        {"logsigmoid", ct_logsigmoid, 0, true}, {"softmax", sm1, 0, true}, {"log_softmax", lsm0, 0, true},
        {"glu", glu1, 0, true},
    };
    /* values away from kinks (0, +-3, clamp bounds) so finite differences are valid */
    const double base[12] = {-2.7, -1.31, -0.63, -0.27, 0.21, 0.44, 0.93, 1.37, 2.11, 3.6, -4.2, 1.73};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        ct_scope_begin();
        double v[12];
        for (int j = 0; j < 12; j++) {
            double b = base[j];
            switch (ops[k].domain) {
            case 1: v[j] = fabs(b) + 0.15; break;
            case 2: v[j] = b / 4.5; break;
            case 3: v[j] = fabs(b) + 1.2; break;
            default: v[j] = b;
            }
        }
        ct_tensor *x = ct_from_data(v, 2, (const int64_t[]){3, 4}, CT_FLOAT64);
        ct_set_requires_grad(x, true);
        int ok = ct_gradcheck(apply1, 1, &x, (void *)ops[k].f, -1, -1, -1);
        if (ok != 1) fprintf(stderr, "gradcheck %s: %s\n", ops[k].name, ct_last_error());
        CHECK(ok == 1);
        if (ops[k].gg) {
            ok = ct_gradgradcheck(apply1, 1, &x, (void *)ops[k].f, -1, -1, -1);
            if (ok != 1) fprintf(stderr, "gradgradcheck %s: %s\n", ops[k].name, ct_last_error());
            CHECK(ok == 1);
        }
        ct_clear_error();
        ct_scope_end();
    }
}

/* The vector (contiguous) and scalar (strided) paths agree to a few ulp in float32. */
static void test_paths(void) {
    ct_scope_begin();
    ct_tensor *x = ct_linspace(-8, 8, 2003, CT_FLOAT32);
    ct_tensor *xs = ct_slice(ct_reshape(ct_stack(2, (const ct_tensor *[]){x, x}, 1), 1, (const int64_t[]){-1}), 0, 0,
                             4006, 2); /* same values, stride 2 */
    un_fn fs[] = {ct_exp, ct_tanh, ct_sigmoid, ct_sin, ct_cos, ct_silu, ct_mish, gelu_e, gelu_t, ct_erf, ct_atan};
    for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
        ct_tensor *a = fs[k](x), *b = fs[k](xs);
        CHECK(a && b && ct_is_contiguous(x) && !ct_is_contiguous(xs));
        if (!a || !b) continue;
        double worst = 0;
        for (int64_t i = 0; i < 2003; i++) {
            double u = at(a, i), w = at(b, i);
            double err = fabs(u - w) / (1 + fabs(w)); /* mixed: cancellation near 0 is inherent */
            if (err > worst) worst = err;
        }
        if (worst >= 3e-7) fprintf(stderr, "path mismatch for function %zu: %g\n", k, worst);
        CHECK(worst < 3e-7);
    }
    ct_scope_end();
}

int main(void) {
    int64_t live = ct_live_tensors();
    test_values();
    test_errors();
    test_grads();
    test_paths();
    CHECK(ct_live_tensors() == live);
    printf("test_unary: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
