/* CPU kernels for unary elementwise ops and elementwise activations. Input arrives in
 * the compute dtype. float32/float64 contiguous runs of the common transcendental
 * functions use SLEEF's vectorised routines (1.0 ulp), chosen at run time for
 * AVX-512F or AVX2+FMA CPUs, except float32 exp and tanh (and what uses them: sigmoid,
 * silu, gelu, softmax), evaluated inline (below: within 1.3 and 2.4 ulp); everything
 * else uses libm. */
#include "cpu/cmath.h"
#include "cpu/loops.h"

#include "cpu/sleef_x86.h"
#include "cpu/bf16_vec.h"

#include <tgmath.h> /* after sleef.h: type-generic exp/log/... for float, double, complex */

/* Registers the fused softmax kernels (src/cpu/activation.c). */
void ct_cpu_register_activation(ct_kernel_fn *k);

#ifdef CT_HAVE_SLEEF_X86
/* 0: scalar, 1: AVX2+FMA, 2: AVX-512F */
static int isa;
#endif

/* ---- special functions (double; float versions round the double result) ---- */
static double sp_erfinv(double x) {
    if (isnan(x) || x < -1.0 || x > 1.0) return NAN;
    if (x == 1.0) return INFINITY;
    if (x == -1.0) return -INFINITY;
    if (x == 0.0) return x;
    /* Winitzki's closed form (rel. error ~2e-3), then Halley steps on erf(y) - x. */
    const double a = 0.147, two_pi_a = 2.0 / (M_PI * a);
    double l = log1p(-x * x), t = two_pi_a + 0.5 * l;
    double y = copysign(sqrt(sqrt(t * t - l / a) - t), x);
    for (int it = 0; it < 3; it++) {
        double f = erf(y) - x, fp = 1.1283791670955126 * exp(-y * y); /* 2/sqrt(pi) */
        if (fp == 0.0) break;
        double step = f / (fp + y * f);
        y -= step;
        if (fabs(step) <= 1e-17 * fabs(y)) break;
    }
    return y;
}

static double sp_digamma(double x) {
    if (isnan(x)) return x;
    if (x == 0.0) return signbit(x) ? INFINITY : -INFINITY; /* as torch: -inf at +0 */
    double r = 0.0;
    if (x < 0.0) {
        if (x == floor(x)) return NAN;
        /* reflection: psi(x) = psi(1 - x) - pi / tan(pi x) */
        double q = x - floor(x); /* in (0, 1) */
        r = -M_PI / tan(M_PI * q);
        x = 1.0 - x;
    }
    if (isinf(x)) return r + x;
    while (x < 10.0) { r -= 1.0 / x; x += 1.0; }
    double z = 1.0 / (x * x);
    double s = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * (1.0 / 132)))));
    return r + log(x) - 0.5 / x - s;
}

double ct__trigamma(double x);
double ct__trigamma(double x) {
    if (isnan(x)) return x;
    double r = 0.0, sign = 1.0;
    if (x <= 0.0) {
        if (x == floor(x)) return INFINITY;
        /* psi1(x) = -psi1(1 - x) + pi^2 / sin^2(pi x) */
        double s = sin(M_PI * x);
        r = M_PI * M_PI / (s * s);
        sign = -1.0;
        x = 1.0 - x;
    }
    double acc = 0.0;
    while (x < 10.0) { acc += 1.0 / (x * x); x += 1.0; }
    double z = 1.0 / (x * x);
    double tail = 1.0 / x + z / 2.0 + z / x * (1.0 / 6 - z * (1.0 / 30 - z * (1.0 / 42 - z * (1.0 / 30))));
    return r + sign * (acc + tail);
}

/* Hurwitz zeta(s, q) = sum_k (k + q)^-s for s > 1, by Euler-Maclaurin summation: the
 * first terms directly, then the integral and Bernoulli-number corrections. */
static double hurwitz_zeta(double s, double q) {
    if (isnan(s) || isnan(q)) return NAN;
    if (s == 1.0) return INFINITY;
    if (s < 1.0) return NAN;
    if (q <= 0.0) {
        if (q == floor(q)) return INFINITY;
        if (s != floor(s)) return NAN; /* q^-s is not real */
    }
    /* (2j)! / B_2j for j = 1..12 */
    static const double F[] = {12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9,
                               7.47242496e10, -2.950130727918164224e12, 1.1646782814350067249e14,
                               -4.5979787224074726105e15, 1.8152105401943546773e17, -7.1661652561756670113e18};
    double sum = pow(q, -s), a = q, b = 0.0;
    int i = 0;
    while (i < 9 || a <= 9.0) {
        i++;
        a += 1.0;
        b = pow(a, -s);
        sum += b;
        if (fabs(b / sum) < 1.1102230246251565e-16) return sum;
    }
    double w = a, fac = 1.0, k = 0.0;
    sum += b * w / (s - 1.0) - 0.5 * b;
    for (int j = 0; j < 12; j++) {
        fac *= s + k;
        b /= w;
        double t = fac * b / F[j];
        sum += t;
        if (fabs(t / sum) < 1.1102230246251565e-16) break;
        k += 1.0;
        fac *= s + k;
        b /= w;
        k += 1.0;
    }
    return sum;
}

/* polygamma(n, x): digamma for n = 0, trigamma for n = 1, else
 * (-1)^(n+1) n! zeta(n + 1, x) (PyTorch's definition). */
double ct__polygamma(int64_t n, double x);
double ct__polygamma(int64_t n, double x) {
    if (n == 0) return sp_digamma(x);
    if (n == 1) return ct__trigamma(x);
    return ((n % 2) ? 1.0 : -1.0) * exp(lgamma((double)n + 1.0)) * hurwitz_zeta((double)n + 1.0, x);
}
#define CT_POLYGAMMA(a) ((__typeof__(a))ct__polygamma((int64_t)p[0], (double)(a)))

static double lgamma_d(double x) { int s; return lgamma_r(x, &s); }
static float lgamma_f(float x) { int s; return lgammaf_r(x, &s); }
#define CT_LGAMMA(a) _Generic((a), float: lgamma_f, default: lgamma_d)(a)
#define CT_ERFINV(a) ((__typeof__(a))sp_erfinv((double)(a)))
#define CT_DIGAMMA(a) ((__typeof__(a))sp_digamma((double)(a)))
#define CT_TRIGAMMA(a) ((__typeof__(a))ct__trigamma((double)(a)))

/* complex helpers */
static inline ct_c128 c_expm1(ct_c128 z) {
    double a = creal(z), b = cimag(z), sh = sin(0.5 * b);
    return CMPLX(expm1(a) * cos(b) - 2.0 * sh * sh, exp(a) * sin(b));
}
#define CEXPM1(a) ((__typeof__(a))c_expm1((ct_c128)(a)))
#define CLOG1P(a) ((__typeof__(a))ct__c_log1p((ct_c128)(a)))

/* ---- SLEEF vector loops: o[i] = BODY(x[i]) over a contiguous run ---- */
#ifdef CT_HAVE_SLEEF_X86
/* float32: exp and tanh inline instead of SLEEF's calls (SLEEF's
 * 1-ulp tanhf took 94 cycles per 16 lanes on an AVX-512 Xeon, its expf 14-17).
 * exp(a) = 2^n e^r with n = round(a log2 e), r = a - n ln 2 (ln 2 in two parts),
 * e^r = 1 + r + r^2 q(r) with Cephes' expf polynomial (exp measured within 1.3 ulp of
 * the double result over the whole float range).
 * n is rounded by adding and subtracting AS_RND = 1.5 2^23, whose float neighbours are
 * the integers (|a log2 e| < 2^22 here): a log2 e rounded once, to the nearest integer
 * (ties to even), in two operations that any FMA port runs, where a product and
 * roundscale took three, two of them on port 0 of Intel's cores (64K floats in cache,
 * one thread, fastest of 7 runs: exp 14.2 -> 13.8 us, sigmoid 21.3 -> 19.7). */
#define AS_RND 12582912.0
#define AS_EXP_NR(a, n, r)                                                                                \
    __typeof__(a) n = VSUB(VFMA(a, VSET(1.44269504088896341), VSET(AS_RND)), VSET(AS_RND));                \
    __typeof__(a) r = VFNMA(n, VSET(-2.12194440e-4), VFNMA(n, VSET(0.693359375), a))
/* r q(r), so that e^r = fma(r q, r, 1 + r) and e^r - 1 = fma(r q, r, r) */
#define AS_EXP_RQ(r)                                                                                      \
    ({                                                                                                    \
        __typeof__(r) q = VFMA(VSET(1.9875691500e-4), r, VSET(1.3981999507e-3));                          \
        q = VFMA(q, r, VSET(8.3334519073e-3));                                                            \
        q = VFMA(q, r, VSET(4.1665795894e-2));                                                            \
        q = VFMA(q, r, VSET(1.6666665459e-1));                                                            \
        VMUL(VFMA(q, r, VSET(5.0000001201e-1)), r);                                                       \
    })
/* e^r itself, fma(r q, r, 1 + r) (exp and erf's e^(-a^2)) */
#define AS_EXP_ER(r) VFMA(AS_EXP_RQ(r), r, VADD(r, VSET(1.0)))
/* exp over every float: a clamped to [-104, 88.8] (NaN kept: the bound is max/min's first
 * operand), beyond which the result is 0 or inf; VSCALE multiplies by 2^n with one
 * rounding, gradual underflow included. */
#define AS_EXP(a_)                                                                                        \
    ({                                                                                                    \
        __typeof__(a_) a = VMIN(VSET(88.8), VMAX(VSET(-104.0), a_));                                      \
        AS_EXP_NR(a, n, r);                                                                               \
        VSCALE(AS_EXP_ER(r), n);                                                                          \
    })
/* tanh(x) = sign(x) m / (m + 2), m = expm1(2 min(|x|, 9)) = 2^n (e^r - 1) + (2^n - 1):
 * no cancellation near 0, and at 9 the quotient already rounds to 1 (within 2.4 ulp of
 * the double result, the largest errors near |x| = 0.015). NaN passes through: min
 * returns its second operand when either is NaN, and h carries it into m.
 * 2|x| is never formed: the reduction works on h = r / 2 = |x| - n ln2 / 2 and the
 * polynomial's coefficients are scaled by powers of two (H_k = 2^(k+1) q_k in Horner's
 * steps, e^r - 1 = 2 fma(r q, h, h), 2^n (e^r - 1) = 2^(n+1) fma(r q, h, h)), so every
 * intermediate is the unscaled form's times an exact power of two: the same bits with
 * one operation fewer. VPOW2X2(n) is 2^(n+1). */
#define AS_TANH(x_)                                                                                       \
    ({                                                                                                    \
        __typeof__(x_) h = VMIN(VSET(9.0), VABS(x_));                                                     \
        __typeof__(x_) n = VSUB(VFMA(h, VSET(2 * 1.44269504088896341), VSET(AS_RND)), VSET(AS_RND));       \
        h = VFNMA(n, VSET(-2.12194440e-4 / 2), VFNMA(n, VSET(0.693359375 / 2), h));                       \
        __typeof__(x_) q = VFMA(VSET(64 * 1.9875691500e-4), h, VSET(32 * 1.3981999507e-3));               \
        q = VFMA(q, h, VSET(16 * 8.3334519073e-3));                                                       \
        q = VFMA(q, h, VSET(8 * 4.1665795894e-2));                                                        \
        q = VFMA(q, h, VSET(4 * 1.6666665459e-1));                                                        \
        q = VMUL(VFMA(q, h, VSET(2 * 5.0000001201e-1)), h);                                               \
        __typeof__(x_) t2 = VPOW2X2(n);                                                                   \
        __typeof__(x_) m = VFMA(t2, VFMA(q, h, h), VFMA(t2, VSET(0.5), VSET(-1.0)));                      \
        VOR(VSIGN(x_), VDIV(m, VADD(m, VSET(2.0))));                                                      \
    })
/* log, log2 and log10 in float32 (SLEEF's took 2.2x PyTorch's MKL time): x = m 2^k with
 * m in [sqrt(1/2), sqrt(2)) (VFREXP: AVX-512's getmant/getexp, or the exponent bits, subnormals
 * scaled by 2^23 first: the same m and k), f = m - 1 exactly, and
 *   log(m) = y = f - f^2 / 2 + f^3 p(f),
 * p of degree 8 fitted here over [sqrt(1/2) - 1, sqrt(2) - 1) (0.06 ulp with its float
 * coefficients; m below sqrt(2) rather than 1.5 keeps |log2(m)| <= 1/2, so k + log2(m)
 * never cancels more than half: 2.4 -> 1 ulp in log2).
 * The sums keep f apart from the smaller rest y = f^3 p - f^2 / 2 (f times a constant
 * split in two parts, exact in the FMA), which took log2 and log10 from 2.3 and 2.7 ulp
 * to the bounds below: log = k ln2 + f + y (ln2 in two parts, k ln2_hi exact), log2 =
 * k + (f log2(e) + y log2(e)) (k added last: with k inside, a sum near -1 lost an ulp),
 * log10 = k log10(2) + f log10(e) + y log10(e). Within 0.88 (log), 1.06 (log2) and 0.97
 * ulp (log10) of the float64 results (measured over every 97th float and 1M values
 * around 1); negative x -> NaN, +-0 -> -inf, inf -> inf, NaN -> NaN (selects after the
 * formula). */
/* f and the rest of log(m), y = f^2 (f p(f) - 1/2), for x = m 2^k (k set too) */
#define AS_LOG_REST(x_, k, f)                                                                             \
    ({                                                                                                    \
        __typeof__(x_) m;                                                                                 \
        VFREXP(x_, m, k);                                                                                 \
        f = VSUB(m, VSET(1.0));                                                                           \
        __typeof__(x_) q = VFMA(VSET(0.0704091042), f, VSET(-0.115118131));                               \
        q = VFMA(q, f, VSET(0.116743475));                                                                \
        q = VFMA(q, f, VSET(-0.124204665));                                                               \
        q = VFMA(q, f, VSET(0.142496839));                                                                \
        q = VFMA(q, f, VSET(-0.166680485));                                                               \
        q = VFMA(q, f, VSET(0.200006992));                                                                \
        q = VFMA(q, f, VSET(-0.24999994));                                                                \
        q = VFMA(q, f, VSET(0.333333313));                                                                \
        VMUL(VMUL(f, f), VFMA(f, q, VSET(-0.5)));                                                         \
    })
#define AS_LOG_FIX(x, r)                                                                                  \
    VSEL_EQ(x, x, VSEL_LT(x, VSET(0.0), VSET(NAN), VSEL_EQ(x, VSET(0.0), VSET(-INFINITY),                 \
                                                          VSEL_EQ(x, VSET(INFINITY), VSET(INFINITY), r))), \
            x)
#define AS_LOG(x_)                                                                                        \
    ({                                                                                                    \
        __typeof__(x_) k_, f_, y_ = AS_LOG_REST(x_, k_, f_);                                              \
        AS_LOG_FIX(x_, VFMA(k_, VSET(0.693359375), VADD(f_, VFMA(k_, VSET(-2.12194440e-4), y_))));        \
    })
#define AS_LOG2(x_)                                                                                       \
    ({                                                                                                    \
        __typeof__(x_) k_, f_, y_ = AS_LOG_REST(x_, k_, f_);                                              \
        __typeof__(x_) t_ = VFMA(f_, VSET(1.925963033500011e-08), VMUL(y_, VSET(1.4426950408889634)));    \
        AS_LOG_FIX(x_, VADD(k_, VFMA(f_, VSET(1.4426950216293335), t_)));                                 \
    })
#define AS_LOG10(x_)                                                                                      \
    ({                                                                                                    \
        __typeof__(x_) k_, f_, y_ = AS_LOG_REST(x_, k_, f_);                                              \
        __typeof__(x_) t_ = VFMA(y_, VSET(0.43429448190325182), VMUL(k_, VSET(4.605038981195e-6)));       \
        t_ = VFMA(f_, VSET(0.4342944920063019), VFMA(f_, VSET(-1.0103049952192578e-08), t_));             \
        AS_LOG_FIX(x_, VFMA(k_, VSET(0.301025390625), t_));                                               \
    })
/* erf in float32 (PyTorch's comes from MKL; SLEEF's 1-ulp erf took 3x as long):
 * x + x q(x^2) below |x| = 1 (q of degree 6 fitted here, 0.02 ulp with its float
 * coefficients), else sign(x) (1 - erfc(a)), a = min(|x|, 4.5) (erf rounds to 1 from
 * 3.92 on), with
 *   erfc(a) = e^(-a^2) g(t),  t = 1 / (1 + a / 2),
 * g a degree-7 polynomial fitted to erfc(a) e^(a^2) over [1, 4.5] (0.03 ulp; evaluated
 * in float, with t's rounding, within 4.4 ulp of erfc, which 1 - erfc divides by 5 or
 * more), e^(-a^2) from exp's reduction (a^2's rounding, a relative error of a^2 ulp in
 * erfc, is as damped: correcting it with a^2's low part changed no result's error).
 * Within 1.14 ulp of the float64 erf over all floats (PyTorch's 1.0); NaN
 * stays NaN, erf(+-inf) = +-1, zeros and subnormals keep their sign and value
 * (x + x q). erfc keeps SLEEF's 1.5-ulp function: this g near 0 loses up to 6 ulp to
 * the rounding of t. 1M float32 on two threads 1.5 -> 0.38 ms (PyTorch 0.46). */
#define AS_ERF(x_)                                                                                        \
    ({                                                                                                    \
        __typeof__(x_) u = VMUL(x_, x_);                                                                  \
        __typeof__(x_) q = VFMA(VSET(7.80690316e-05), u, VSET(-0.00079978531));                           \
        q = VFMA(q, u, VSET(0.0051871622));                                                               \
        q = VFMA(q, u, VSET(-0.0268533472));                                                              \
        q = VFMA(q, u, VSET(0.112835787));                                                                \
        q = VFMA(q, u, VSET(-0.37612626));                                                                \
        q = VFMA(q, u, VSET(0.128379166));                                                                \
        __typeof__(x_) ax = VABS(x_), a = VMIN(VSET(4.5), ax);                                            \
        __typeof__(x_) t = VDIV(VSET(1.0), VFMA(VSET(0.5), a, VSET(1.0)));                                \
        __typeof__(x_) g = VFMA(VSET(0.115452334), t, VSET(-0.457793385));                                \
        g = VFMA(g, t, VSET(0.543679357));                                                                \
        g = VFMA(g, t, VSET(-0.087856181));                                                               \
        g = VFMA(g, t, VSET(0.340270132));                                                                \
        g = VFMA(g, t, VSET(0.261828363));                                                                \
        g = VFMA(g, t, VSET(0.284577698));                                                                \
        g = VFMA(g, t, VSET(-0.00013194792));                                                             \
        __typeof__(x_) mh = VSUB(VSET(0.0), VMUL(a, a));                                                  \
        AS_EXP_NR(mh, n, r);                                                                              \
        __typeof__(x_) c = VSCALE(VMUL(AS_EXP_ER(r), g), n);                                              \
        VSEL_LT(ax, VSET(1.0), VFMA(x_, q, x_), VOR(VSIGN(x_), VSUB(VSET(1.0), c)));                      \
    })
/* gelu in float32: x Phi(x), Phi the normal distribution function, from
 *   c = erfc(|x| / sqrt 2) / 2 = t P(t) / 2 e^(-x^2 / 2),  t = 1 / (1 + p |x| / sqrt 2)
 * (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 in erfc; the approximation PyTorch's
 * vectorised CPU erf uses too), and Phi = 1 - c for x >= 0, c below. The negative tail
 * is x c itself, with no cancellation in 1 + erf. e^(-x^2/2) = 2^a with a = -k x^2,
 * k = log2(e) / 2: n = round(a) by AS_RND from one fused -k x^2 + AS_RND, then
 * u = k x^2 + n = n - a (one rounding, |u| <= 1/2) and 2^(a - n) = 2^(-u) a degree-5
 * polynomial on [-1/2, 1/2] (relative error 7.5e-8, fitted for this; in -u, so its odd
 * coefficients change sign), times 2^n. x^2 is clamped at 208 (k x^2 > 150: 2^a below
 * half the smallest subnormal, 0). 23 vector operations on AVX-512 (25 before this
 * reduction and the masked 1 - c), where 0.5 x (1 + erf(x / sqrt 2)) took 30.
 * gelu(+inf) = inf, gelu(-inf) = -inf * 0 = NaN (float64's formula gives both), NaN
 * stays NaN (the clamp keeps it: min's second operand). VPHI(x, c) is
 * x >= 0 ? 1 - c : c. */
#define AS_GELU(x_)                                                                                       \
    ({                                                                                                    \
        __typeof__(x_) t = VDIV(VSET(1.0), VFMA(VSET(0.3275911 * M_SQRT1_2), VABS(x_), VSET(1.0)));       \
        __typeof__(x_) x2 = VMIN(VSET(208.0), VMUL(x_, x_));                                              \
        __typeof__(x_) n = VSUB(VFNMA(x2, VSET(0.72134752044448170368), VSET(AS_RND)), VSET(AS_RND));     \
        __typeof__(x_) u = VFMA(x2, VSET(0.72134752044448170368), n);                                     \
        __typeof__(x_) e = VFMA(VFMA(VSET(-1.3276446843519807e-3), u, VSET(9.675533510744572e-3)), u,     \
                                VSET(-5.550713092088699e-2));                                             \
        e = VFMA(VFMA(VFMA(e, u, VSET(0.24022120237350464)), u, VSET(-0.6931469440460205)), u,            \
                 VSET(1.0000001192092896));                                                               \
        __typeof__(x_) p = VFMA(VFMA(VFMA(VFMA(VSET(0.5 * 1.061405429), t, VSET(0.5 * -1.453152027)), t,   \
                                          VSET(0.5 * 1.421413741)), t, VSET(0.5 * -0.284496736)), t,        \
                                VSET(0.5 * 0.254829592));                                                 \
        __typeof__(x_) c = VMUL(VMUL(VSCALE(e, n), t), p);                                                \
        VMUL(x_, VPHI(x_, c));                                                                            \
    })

/* erfinv in float32, M. Giles' single-precision approximation ("Approximating the erfinv
 * function", GPU Computing Gems, 2011): w = -log((1 - x)(1 + x)), then x p(w - 2.5) for
 * w < 5, else x q(sqrt(w) - 3), two degree-8 polynomials (relative error below 3.7e-7,
 * about 3 float ulp; measured 2.6e-7 against the float64 result). Both branches are
 * computed and one kept; |x| = 1 gives +-inf, |x| > 1 and NaN give NaN through the log.
 * The scalar loops (and float64) keep sp_erfinv's float64 Halley iteration, correctly
 * rounded. 64K values on one core: 7.3 ms -> 107 us (PyTorch 58-83 us, its 2 Newton
 * steps in float32 within 6e-8). VSEL_LT(a, b, x, y) is a < b ? x : y, VSEL_EQ likewise. */
#define AS_ERFINV(x_)                                                                                     \
    ({                                                                                                    \
        __typeof__(x_) w = VSUB(VSET(0.0), VLOG(VMUL(VSUB(VSET(1.0), x_), VADD(VSET(1.0), x_))));         \
        __typeof__(x_) u = VSUB(w, VSET(2.5)), t = VSUB(VSQRT(w), VSET(3.0));                              \
        __typeof__(x_) p = VFMA(VSET(2.81022636e-08), u, VSET(3.43273939e-07));                            \
        p = VFMA(p, u, VSET(-3.5233877e-06));                                                             \
        p = VFMA(p, u, VSET(-4.39150654e-06));                                                            \
        p = VFMA(p, u, VSET(0.00021858087));                                                              \
        p = VFMA(p, u, VSET(-0.00125372503));                                                             \
        p = VFMA(p, u, VSET(-0.00417768164));                                                             \
        p = VFMA(p, u, VSET(0.246640727));                                                                \
        p = VFMA(p, u, VSET(1.50140941));                                                                 \
        __typeof__(x_) q = VFMA(VSET(-0.000200214257), t, VSET(0.000100950558));                          \
        q = VFMA(q, t, VSET(0.00134934322));                                                              \
        q = VFMA(q, t, VSET(-0.00367342844));                                                             \
        q = VFMA(q, t, VSET(0.00573950773));                                                              \
        q = VFMA(q, t, VSET(-0.0076224613));                                                              \
        q = VFMA(q, t, VSET(0.00943887047));                                                              \
        q = VFMA(q, t, VSET(1.00167406));                                                                 \
        q = VFMA(q, t, VSET(2.83297682));                                                                 \
        __typeof__(x_) r = VMUL(VSEL_LT(w, VSET(5.0), p, q), x_);                                         \
        VSEL_EQ(VABS(x_), VSET(1.0), VOR(VSIGN(x_), VSET(INFINITY)), r);                                  \
    })
/* elu (and selu, celu): p[0] alpha, p[1] scale, p[2] input_scale; x < 0 ?
 * expm1(x input_scale) alpha scale : x scale, with PyTorch's float coefficients (alpha
 * scale a float product) and its results for zeros (x scale: the sign kept whatever
 * alpha's) and NaN (NaN). expm1 of t <= 0 inline: 2^n (e^r - 1) + (2^n - 1) from exp's
 * reduction and polynomial (no cancellation near 0; t clamped at -88, where it is -1;
 * the sign of t put back so an underflowed -0 gives -0), within 0.83 ulp of the float64
 * result against SLEEF's 1-ulp expm1, which took 4x longer. 1M float32 on two threads
 * 5.7 ms (the scalar loop) -> 0.20 ms, PyTorch 0.85 ms. */
#define AS_EXPM1_NEG(t_)                                                                                  \
    ({                                                                                                    \
        __typeof__(t_) t = VMAX(VSET(-88.0), VMIN(VSET(0.0), t_));                                        \
        AS_EXP_NR(t, n, r);                                                                               \
        __typeof__(t_) p2 = VSCALE(VSET(1.0), n);                                                         \
        VOR(VFMA(p2, VFMA(AS_EXP_RQ(r), r, r), VSUB(p2, VSET(1.0))), VSIGN(t));                           \
    })
#define AS_ELU(v)                                                                                         \
    VSEL_LT(v, VSET(0.0), VMUL(AS_EXPM1_NEG(VMUL(v, VSET(p[2]))), VSET((float)p[0] * (float)p[1])),        \
            VMUL(v, VSET(p[1])))
/* float32-only vector functions (float64 keeps its scalar loop); logsigmoid is PyTorch's
 * min(x, 0) - log1p(exp(-|x|)) (64K values on one core: 1.31 ms -> 124-142 us, PyTorch
 * 136 us) */
#define VEC32_LIST(X)                                                                                     \
    X(erfinv, AS_ERFINV(v)) X(logsigmoid, VSUB(VMIN(v, VSET(0.0)), VLOG1P(VEXP(VSUB(VSET(0.0), VABS(v)))))) \
    X(elu, AS_ELU(v)) X(square, VMUL(v, v)) X(reciprocal, VDIV(VSET(1.0), v)) X(lgamma, VLGAMMA(v))

/* lgamma in float32: SLEEF's u10 function (over the positive floats within 0.83 ulp, over
 * the negative ones within 0.59 ulp where the result is at least 0.5 in magnitude and
 * 1.4e-9 beyond 1 ulp nearer its zeros; glibc's lgammaf_r, the scalar loops', 2.5 and
 * 5.05 ulp, and 1.7e-7; 1M values on two threads 8.6 -> 2.95 ms, PyTorch's MKL 2.86),
 * except that it returns inf from x = 4.04e36 on, where lgamma is finite up to 4.08e36:
 * the lanes above 4e36 take float64's lgamma_r, rounded once (glibc's float one is 1.2
 * ulp off there). BIG(v) is the lanes' bit mask. */
#define VLGAMMA_FN(name, ATTR, VT, W, CALL, BIG, LOAD, STORE)                                             \
    ATTR static inline VT name(VT v) {                                                                    \
        VT r = CALL(v);                                                                                   \
        unsigned big = (unsigned)(BIG(v));                                                                \
        if (CT_UNLIKELY(big)) {                                                                           \
            float xs[W], rs[W];                                                                           \
            STORE(xs, v), STORE(rs, r);                                                                   \
            for (int k = 0; k < W; k++)                                                                   \
                if (big >> k & 1) rs[k] = (float)lgamma_d(xs[k]);                                         \
            r = LOAD(rs);                                                                                 \
        }                                                                                                 \
        return r;                                                                                         \
    }

/* Each configuration defines VEXP.. over vector `v`; VEC_LIST lists (name, BODY). */
#define VEC_LIST(X)                                                                                       \
    X(exp, VEXP(v)) X(exp2, VEXP2(v)) X(expm1, VEXPM1(v)) X(log, VLOG(v)) X(log2, VLOG2(v))              \
    X(log10, VLOG10(v)) X(log1p, VLOG1P(v)) X(sin, VSIN(v)) X(cos, VCOS(v)) X(tan, VTAN(v))              \
    X(asin, VASIN(v)) X(acos, VACOS(v)) X(atan, VATAN(v)) X(sinh, VSINH(v)) X(cosh, VCOSH(v))            \
    X(tanh, VTANH(v)) X(asinh, VASINH(v)) X(acosh, VACOSH(v)) X(atanh, VATANH(v)) X(erf, VERF(v))        \
    X(erfc, VERFC(v))                                                                                     \
    X(sigmoid, VDIV(VSET(1.0), VADD(VSET(1.0), VEXP(VSUB(VSET(0.0), v)))))                               \
    X(silu, VDIV(v, VADD(VSET(1.0), VEXP(VSUB(VSET(0.0), v)))))                                          \
    X(gelu, VGELU(v))                                                                                     \
    X(gelu_tanh, VMUL(VMUL(VSET(0.5), v),                                                                 \
                      VADD(VSET(1.0), VTANH(VMUL(VSET(0.7978845608028654),                                 \
                                                 VADD(v, VMUL(VSET(0.044715), VMUL(v, VMUL(v, v)))))))))   \
    X(mish, VMUL(v, VTANH(VLOG1P(VEXP(v)))))

/* bfloat16 in and out around the same float32 expressions (cpu/bf16_vec.h), in registers
 * instead of through a float32 block (0.6-0.7 of the blocks' time): 2 W values (two
 * vectors of type VT) a step, the tail through a zero-padded block */
#define BF16_VEC_FN(fname, BODY, ATTR, W, VT, LOAD2, STORE2)                                              \
    ATTR static void fname(ct_bf16 *o, const ct_bf16 *x, int64_t n, const double *p) {                    \
        int64_t i = 0; (void)p;                                                                           \
        VT v0, v1;                                                                                        \
        for (; i + 2 * W <= n; i += 2 * W) {                                                              \
            LOAD2(x + i, &v0, &v1);                                                                       \
            { VT v = v0; v0 = BODY; }                                                                     \
            { VT v = v1; v1 = BODY; }                                                                     \
            STORE2(o + i, v0, v1);                                                                        \
        }                                                                                                 \
        if (i < n) {                                                                                      \
            ct_bf16 buf[2 * W] = {{0}};                                                                   \
            memcpy(buf, x + i, sizeof(ct_bf16) * (size_t)(n - i));                                        \
            LOAD2(buf, &v0, &v1);                                                                         \
            { VT v = v0; v0 = BODY; }                                                                     \
            { VT v = v1; v1 = BODY; }                                                                     \
            STORE2(buf, v0, v1);                                                                          \
            memcpy(o + i, buf, sizeof(ct_bf16) * (size_t)(n - i));                                        \
        }                                                                                                 \
    }

/* float32, AVX-512 */
#define V_F512(fn) Sleef_##fn##f16_u10avx512f
#define V_U15(fn) Sleef_##fn##f16_u15avx512f /* erfc: SLEEF has no 1-ulp form */
#define VABS(v) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)))
#define VSIGN(v) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)))
#define VOR(a, b) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFNMA(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define VMAX _mm512_max_ps
#define VMIN _mm512_min_ps
#define VSCALE(e, n) _mm512_scalef_ps(e, n)
/* 2^(n+1) for integral n in the normal range: exact, as the AVX2 path's exponent bits,
 * in one instruction instead of three */
#define VPOW2X2(n) _mm512_scalef_ps(VSET(2.0), n)
#define VGELU(v) AS_GELU(v)
/* x >= 0 ? 1 - c : c as one masked subtraction */
#define VPHI(x, c) _mm512_mask_sub_ps(c, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), VSET(1.0), c)
#define VSQRT _mm512_sqrt_ps
#define VSEL_LT(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x)
#define VSEL_EQ(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), y, x)
#define VEXP(v) V_F512(exp)(v)
#define VEXP2(v) V_F512(exp2)(v)
#define VEXPM1(v) V_F512(expm1)(v)
#define VLOG(v) V_F512(log)(v)
#define VLOG2(v) V_F512(log2)(v)
#define VLOG10(v) V_F512(log10)(v)
#define VLOG1P(v) V_F512(log1p)(v)
#define VSIN(v) V_F512(sin)(v)
#define VCOS(v) V_F512(cos)(v)
#define VTAN(v) V_F512(tan)(v)
#define VASIN(v) V_F512(asin)(v)
#define VACOS(v) V_F512(acos)(v)
#define VATAN(v) V_F512(atan)(v)
#define VSINH(v) V_F512(sinh)(v)
#define VCOSH(v) V_F512(cosh)(v)
#define VTANH(v) V_F512(tanh)(v)
#define VASINH(v) V_F512(asinh)(v)
#define VACOSH(v) V_F512(acosh)(v)
#define VATANH(v) V_F512(atanh)(v)
#define VERF(v) V_F512(erf)(v)
#define VERFC(v) V_U15(erfc)(v)
#define LG_BIG512(v) _mm512_cmp_ps_mask(v, _mm512_set1_ps(4e36f), _CMP_GT_OQ)
VLGAMMA_FN(vlgamma_v512_f32, __attribute__((target("avx512f"), always_inline)), __m512, 16,
           Sleef_lgammaf16_u10avx512f, LG_BIG512, _mm512_loadu_ps, _mm512_storeu_ps)
#undef LG_BIG512
#define VLGAMMA(v) vlgamma_v512_f32(v)
#define VSET(c) _mm512_set1_ps((float)(c))
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VDIV _mm512_div_ps
/* also softmax's exp (exp_shift_sum_v512), so its rows and ct_exp agree */
__attribute__((target("avx512f"), always_inline)) static inline __m512 vexp_v512_f32(__m512 v) { return AS_EXP(v); }
#undef VEXP
#define VEXP(v) vexp_v512_f32(v)
/* m in [sqrt(1/2), sqrt(2)) and k with x = m 2^k, for x > 0 (subnormals included): the
 * mantissa in [1, 2), halved (exactly) from sqrt(2) on */
#define VFREXP(x, m, k)                                                                                   \
    do {                                                                                                  \
        m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);                                  \
        k = _mm512_getexp_ps(x);                                                                          \
        __mmask16 b_ = _mm512_cmp_ps_mask(m, VSET(1.41421354), _CMP_GE_OQ);                               \
        m = _mm512_mask_mul_ps(m, b_, m, VSET(0.5));                                                      \
        k = _mm512_mask_add_ps(k, b_, k, VSET(1.0));                                                      \
    } while (0)
#include "cpu/unary_vec_f32.h"
#define X(name, BODY)                                                                                     \
    __attribute__((target("avx512f"), noinline, noclone)) static void name##_v512_f32(                \
        float *o, const float *x, int64_t n, const double *p) {                                       \
        int64_t i = 0; (void)p;                                                                           \
        for (; i + 32 <= n; i += 32) {                                                                    \
            __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);                        \
            { __m512 v = v0; v0 = BODY; }                                                                 \
            { __m512 v = v1; v1 = BODY; }                                                                 \
            _mm512_storeu_ps(o + i, v0), _mm512_storeu_ps(o + i + 16, v1);                                \
        }                                                                                                 \
        for (; i + 16 <= n; i += 16) { __m512 v = _mm512_loadu_ps(x + i); _mm512_storeu_ps(o + i, BODY); } \
        if (i < n) {                                                                                      \
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                              \
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);                                                   \
            _mm512_mask_storeu_ps(o + i, m, BODY);                                                        \
        }                                                                                                 \
    }
VEC_LIST(X)
VEC32_LIST(X)
#undef X
#define X(name, BODY)                                                                                     \
    BF16_VEC_FN(name##_v512_bf16, BODY, __attribute__((target("avx512f,avx512bw"), noinline, noclone)), 16, \
                __m512, ct_bf16x32_load2, ct_bf16x32_store2)
VEC_LIST(X)
VEC32_LIST(X)
#undef X
#define CT_UNARY_END_F32
#include "cpu/unary_vec_end.h"
/* float64, AVX-512 */
#define V_F512(fn) Sleef_##fn##d8_u10avx512f
#define V_U15(fn) Sleef_##fn##d8_u15avx512f
#define VGELU(v) VMUL(VMUL(VSET(0.5), v), VADD(VSET(1.0), VERF(VMUL(v, VSET(M_SQRT1_2)))))
#define VSET(c) _mm512_set1_pd((double)(c))
#define VADD _mm512_add_pd
#define VSUB _mm512_sub_pd
#define VMUL _mm512_mul_pd
#define VDIV _mm512_div_pd
#define X(name, BODY)                                                                                     \
    __attribute__((target("avx512f"), noinline, noclone)) static void name##_v512_f64(                \
        double *o, const double *x, int64_t n, const double *p) {                                     \
        int64_t i = 0; (void)p;                                                                           \
        for (; i + 8 <= n; i += 8) { __m512d v = _mm512_loadu_pd(x + i); _mm512_storeu_pd(o + i, BODY); } \
        if (i < n) {                                                                                      \
            __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);                                                \
            __m512d v = _mm512_maskz_loadu_pd(m, x + i);                                                  \
            _mm512_mask_storeu_pd(o + i, m, BODY);                                                        \
        }                                                                                                 \
    }
VEC_LIST(X)
#undef X
#include "cpu/unary_vec_end.h"

/* float32, AVX2 (tails through a padded buffer) */
#define V_F512(fn) Sleef_##fn##f8_u10avx2
#define V_U15(fn) Sleef_##fn##f8_u15avx2
#define VABS(v) _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))
#define VSIGN(v) _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)))
#define VOR(a, b) _mm256_or_ps(a, b)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFNMA(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define VMAX _mm256_max_ps
#define VROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2I(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define VMIN _mm256_min_ps
#define VPOW2X2(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(128)), 23))
/* e 2^n for n in [-150, 128] as two exact powers of two: one rounding, as scalef */
#define VSCALE(e, n)                                                                                      \
    ({                                                                                                    \
        __m256 h_ = VROUND(VMUL(n, VSET(0.5)));                                                           \
        VMUL(VMUL(e, VPOW2I(h_)), VPOW2I(VSUB(n, h_)));                                                   \
    })
#define VGELU(v) AS_GELU(v)
#define VPHI(x, c) _mm256_blendv_ps(c, VSUB(VSET(1.0), c), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ))
#define VSQRT _mm256_sqrt_ps
#define VSEL_LT(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ))
#define VSEL_EQ(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ))
#define VSET(c) _mm256_set1_ps((float)(c))
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VDIV _mm256_div_ps
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 vexp_v256_f32(__m256 v) { return AS_EXP(v); }
#undef VEXP
#define VEXP(v) vexp_v256_f32(v)
#define LG_BIG256(v) _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(4e36f), _CMP_GT_OQ))
VLGAMMA_FN(vlgamma_v256_f32, __attribute__((target("avx2,fma"), always_inline)), __m256, 8, Sleef_lgammaf8_u10avx2,
           LG_BIG256, _mm256_loadu_ps, _mm256_storeu_ps)
#undef LG_BIG256
#undef VLGAMMA
#define VLGAMMA(v) vlgamma_v256_f32(v)
/* AVX-512's getmant/getexp from the bits: subnormals scaled by 2^23 first, M in [1, 2),
 * halved (exactly) from sqrt(2) on */
#define VFREXP(x, m, k)                                                                                   \
    do {                                                                                                  \
        __m256 s_ = _mm256_cmp_ps(x, VSET(1.17549435e-38), _CMP_LT_OQ);                                   \
        __m256i i_ = _mm256_castps_si256(_mm256_blendv_ps(x, VMUL(x, VSET(8388608.0)), s_));              \
        k = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(i_, 23), _mm256_set1_epi32(127)));      \
        k = VSUB(k, _mm256_and_ps(s_, VSET(23.0)));                                                       \
        __m256 M_ = _mm256_castsi256_ps(                                                                  \
            _mm256_or_si256(_mm256_and_si256(i_, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000))); \
        __m256 b_ = _mm256_cmp_ps(M_, VSET(1.41421354), _CMP_GE_OQ);                                      \
        m = _mm256_blendv_ps(M_, VMUL(M_, VSET(0.5)), b_);                                                \
        k = VADD(k, _mm256_and_ps(b_, VSET(1.0)));                                                        \
    } while (0)
#include "cpu/unary_vec_f32.h"
#define X(name, BODY)                                                                                     \
    __attribute__((target("avx2,fma"), noinline, noclone)) static void name##_v256_f32(               \
        float *o, const float *x, int64_t n, const double *p) {                                       \
        int64_t i = 0; (void)p;                                                                           \
        for (; i + 16 <= n; i += 16) {                                                                    \
            __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);                          \
            { __m256 v = v0; v0 = BODY; }                                                                 \
            { __m256 v = v1; v1 = BODY; }                                                                 \
            _mm256_storeu_ps(o + i, v0), _mm256_storeu_ps(o + i + 8, v1);                                 \
        }                                                                                                 \
        for (; i + 8 <= n; i += 8) { __m256 v = _mm256_loadu_ps(x + i); _mm256_storeu_ps(o + i, BODY); }  \
        if (i < n) {                                                                                      \
            float buf[8] = {0};                                                                           \
            for (int64_t j = i; j < n; j++) buf[j - i] = x[j];                                            \
            __m256 v = _mm256_loadu_ps(buf);                                                              \
            _mm256_storeu_ps(buf, BODY);                                                                  \
            for (int64_t j = i; j < n; j++) o[j] = buf[j - i];                                            \
        }                                                                                                 \
    }
VEC_LIST(X)
VEC32_LIST(X)
#undef X
#define X(name, BODY)                                                                                     \
    BF16_VEC_FN(name##_v256_bf16, BODY, __attribute__((target("avx2,fma"), noinline, noclone)), 8, __m256, \
                ct_bf16x16_load2, ct_bf16x16_store2)
VEC_LIST(X)
VEC32_LIST(X)
#undef X
#define CT_UNARY_END_F32
#include "cpu/unary_vec_end.h"
/* float64, AVX2 */
#define V_F512(fn) Sleef_##fn##d4_u10avx2
#define V_U15(fn) Sleef_##fn##d4_u15avx2
#define VGELU(v) VMUL(VMUL(VSET(0.5), v), VADD(VSET(1.0), VERF(VMUL(v, VSET(M_SQRT1_2)))))
#define VSET(c) _mm256_set1_pd((double)(c))
#define VADD _mm256_add_pd
#define VSUB _mm256_sub_pd
#define VMUL _mm256_mul_pd
#define VDIV _mm256_div_pd
#define X(name, BODY)                                                                                     \
    __attribute__((target("avx2,fma"), noinline, noclone)) static void name##_v256_f64(               \
        double *o, const double *x, int64_t n, const double *p) {                                     \
        int64_t i = 0; (void)p;                                                                           \
        for (; i + 4 <= n; i += 4) { __m256d v = _mm256_loadu_pd(x + i); _mm256_storeu_pd(o + i, BODY); } \
        if (i < n) {                                                                                      \
            double buf[4] = {0};                                                                          \
            for (int64_t j = i; j < n; j++) buf[j - i] = x[j];                                            \
            __m256d v = _mm256_loadu_pd(buf);                                                             \
            _mm256_storeu_pd(buf, BODY);                                                                  \
            for (int64_t j = i; j < n; j++) o[j] = buf[j - i];                                            \
        }                                                                                                 \
    }
VEC_LIST(X)
#undef X
#include "cpu/unary_vec_end.h"

/* Vectorised exp over a contiguous run, for the softmax kernels. */
void ct__cpu_vexp_f32(float *o, const float *x, int64_t n);
void ct__cpu_vexp_f64(double *o, const double *x, int64_t n);
void ct__cpu_vexp_f32(float *o, const float *x, int64_t n) {
    if (isa == 2) exp_v512_f32(o, x, n, NULL);
    else if (isa == 1) exp_v256_f32(o, x, n, NULL);
    else for (int64_t i = 0; i < n; i++) o[i] = expf(x[i]);
}
void ct__cpu_vexp_f64(double *o, const double *x, int64_t n) {
    if (isa == 2) exp_v512_f64(o, x, n, NULL);
    else if (isa == 1) exp_v256_f64(o, x, n, NULL);
    else for (int64_t i = 0; i < n; i++) o[i] = exp(x[i]);
}

/* softmax's row pass in one: o[i] = exp(x[i] - shift) and their sum. AVX-512 sums in
 * 32 float lanes (as PyTorch's vectorised softmax) and adds the lanes in double; the
 * exps are kept only if `store` (log_softmax needs just the sum). */
__attribute__((target("avx512f"))) static double exp_shift_sum_v512(const float *x, float *o, int64_t n, float shift,
                                                                    bool store) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 e0 = vexp_v512_f32(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        __m512 e1 = vexp_v512_f32(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sh));
        if (store) _mm512_storeu_ps(o + i, e0), _mm512_storeu_ps(o + i + 16, e1);
        acc0 = _mm512_add_ps(acc0, e0), acc1 = _mm512_add_ps(acc1, e1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = vexp_v512_f32(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
        if (store) _mm512_mask_storeu_ps(o + i, m, e);
        acc0 = _mm512_mask_add_ps(acc0, m, acc0, e);
    }
    __m512 acc = _mm512_add_ps(acc0, acc1);
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(acc));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
/* The same pass on AVX2 (8 lanes): four accumulators hold what the AVX-512 pass's two
 * hold (elements 0-7, 8-15 of a 32-block in the first, 16-23, 24-31 in the second), the
 * tail goes in 16-element steps into the first, and the lanes are added in double in
 * the AVX-512 pass's order, so both passes sum the same values the same way. */
__attribute__((target("avx2,fma"))) static double exp_shift_sum_v256(const float *x, float *o, int64_t n, float shift,
                                                                     bool store) {
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 e0 = vexp_v256_f32(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        __m256 e1 = vexp_v256_f32(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), sh));
        __m256 e2 = vexp_v256_f32(_mm256_sub_ps(_mm256_loadu_ps(x + i + 16), sh));
        __m256 e3 = vexp_v256_f32(_mm256_sub_ps(_mm256_loadu_ps(x + i + 24), sh));
        if (store) {
            _mm256_storeu_ps(o + i, e0), _mm256_storeu_ps(o + i + 8, e1);
            _mm256_storeu_ps(o + i + 16, e2), _mm256_storeu_ps(o + i + 24, e3);
        }
        a0 = _mm256_add_ps(a0, e0), a1 = _mm256_add_ps(a1, e1), a2 = _mm256_add_ps(a2, e2), a3 = _mm256_add_ps(a3, e3);
    }
    /* the tail in 8-element steps: even steps into a0, odd into a1 (a 16-step's halves) */
    for (int64_t step = 0; i < n; i += 8, step++) {
        int64_t r = n - i < 8 ? n - i : 8;
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 e = vexp_v256_f32(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), sh));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m)); /* lanes past the end add +0 */
        if (store && r == 8) _mm256_storeu_ps(o + i, e);
        else if (store) { /* not vmaskmov: microcoded on AMD's cores, tens of cycles per store */
            float buf[8];
            _mm256_storeu_ps(buf, e);
            memcpy(o + i, buf, sizeof(float) * (size_t)r);
        }
        if (step % 2 == 0) a0 = _mm256_add_ps(a0, e);
        else a1 = _mm256_add_ps(a1, e);
    }
    __m256 lo = _mm256_add_ps(a0, a2), hi = _mm256_add_ps(a1, a3);
    __m256d l0 = _mm256_cvtps_pd(_mm256_castps256_ps128(lo)), l1 = _mm256_cvtps_pd(_mm256_extractf128_ps(lo, 1));
    __m256d h0 = _mm256_cvtps_pd(_mm256_castps256_ps128(hi)), h1 = _mm256_cvtps_pd(_mm256_extractf128_ps(hi, 1));
    /* the 8 doubles [l0 + h0, l1 + h1] reduced as _mm512_reduce_add_pd does: halves, then pairs */
    __m256d t4 = _mm256_add_pd(_mm256_add_pd(l0, h0), _mm256_add_pd(l1, h1));
    __m128d t2 = _mm_add_pd(_mm256_castpd256_pd128(t4), _mm256_extractf128_pd(t4, 1));
    return _mm_cvtsd_f64(t2) + _mm_cvtsd_f64(_mm_unpackhi_pd(t2, t2));
}
/* The same as three passes (shift, vector exp, sum in double): float64, and float32
 * without AVX2. */
#define EXP_SHIFT_SUM_PASSES(VEXP)                                        \
    do {                                                                  \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) o[i] = x[i] - shift; \
        VEXP(o, o, n);                                                    \
        double s = 0;                                                     \
        _Pragma("omp simd reduction(+ : s)") for (int64_t i = 0; i < n; i++) s += o[i]; \
        return s;                                                         \
    } while (0)
double ct__cpu_exp_shift_sum_f32(const float *x, float *o, int64_t n, float shift, bool store);
double ct__cpu_exp_shift_sum_f32(const float *x, float *o, int64_t n, float shift, bool store) {
    if (isa == 2) return exp_shift_sum_v512(x, o, n, shift, store);
    if (isa == 1) return exp_shift_sum_v256(x, o, n, shift, store);
    EXP_SHIFT_SUM_PASSES(ct__cpu_vexp_f32);
}
double ct__cpu_exp_shift_sum_f64(const double *x, double *o, int64_t n, double shift, bool store);
double ct__cpu_exp_shift_sum_f64(const double *x, double *o, int64_t n, double shift, bool store) {
    (void)store;
    EXP_SHIFT_SUM_PASSES(ct__cpu_vexp_f64);
}

#define VEC_DISPATCH(pre, T, suf)                                                                        \
    if (isa && s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T)) {                               \
        if (isa == 2) pre##_v512_##suf((T *)d[0], (const T *)d[1], n, (const double *)ctx);              \
        else pre##_v256_##suf((T *)d[0], (const T *)d[1], n, (const double *)ctx);                       \
        return;                                                                                          \
    }
/* float16 / bfloat16, contiguous: blocks converted to float32 (float16: the row
 * conversions of cpu/loops.h), the float32 vector kernel, rounded back (what PyTorch
 * computes: the op in float32, one rounding at the end). */
#define HALF_DISPATCH(pre, HT, FROM, TO)                                                                 \
    if (isa && s[0] == (int64_t)sizeof(HT) && s[1] == (int64_t)sizeof(HT)) {                             \
        float buf[512];                                                                                  \
        HT *o_ = (HT *)d[0];                                                                             \
        const HT *x_ = (const HT *)d[1];                                                                 \
        for (int64_t b = 0; b < n; b += 512) {                                                           \
            int64_t c = n - b < 512 ? n - b : 512;                                                       \
            FROM(buf, x_ + b, c);                                                                        \
            if (isa == 2) pre##_v512_f32(buf, buf, c, (const double *)ctx);                              \
            else pre##_v256_f32(buf, buf, c, (const double *)ctx);                                       \
            TO(o_ + b, buf, c);                                                                          \
        }                                                                                                \
        return;                                                                                          \
    }
/* bfloat16, contiguous: the fused kernels above (the same values as the blocks would give) */
#define BF16_DISPATCH(pre)                                                                               \
    if (isa && s[0] == (int64_t)sizeof(ct_bf16) && s[1] == (int64_t)sizeof(ct_bf16)) {                   \
        if (isa == 2) pre##_v512_bf16((ct_bf16 *)d[0], (const ct_bf16 *)d[1], n, (const double *)ctx);   \
        else pre##_v256_bf16((ct_bf16 *)d[0], (const ct_bf16 *)d[1], n, (const double *)ctx);            \
        return;                                                                                          \
    }
#else
#define HALF_DISPATCH(pre, HT, LD, STO)
#define BF16_DISPATCH(pre)
#define VEC_DISPATCH(pre, T, suf)
void ct__cpu_vexp_f32(float *o, const float *x, int64_t n);
void ct__cpu_vexp_f64(double *o, const double *x, int64_t n);
void ct__cpu_vexp_f32(float *o, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = expf(x[i]); }
void ct__cpu_vexp_f64(double *o, const double *x, int64_t n) { for (int64_t i = 0; i < n; i++) o[i] = exp(x[i]); }
double ct__cpu_exp_shift_sum_f32(const float *x, float *o, int64_t n, float shift, bool store);
double ct__cpu_exp_shift_sum_f32(const float *x, float *o, int64_t n, float shift, bool store) {
    (void)store;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (o[i] = expf(x[i] - shift));
    return s;
}
double ct__cpu_exp_shift_sum_f64(const double *x, double *o, int64_t n, double shift, bool store);
double ct__cpu_exp_shift_sum_f64(const double *x, double *o, int64_t n, double shift, bool store) {
    (void)store;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (o[i] = exp(x[i] - shift));
    return s;
}
#endif

/* ct__cpu_exp_shift_sum_f32(x + r * n, o + r * n, n, shift[r], true) for each of `rows`
 * rows of n floats. For n <= 16 on AVX2/AVX-512 (a classifier's logits) one vector exp
 * pass over them all instead of one or two masked steps per row: each row's sum is
 * formed in the order the single-row passes add (AVX2 and AVX-512 agree for n <= 16:
 * lanes q and q + 8 in double, then halves, then pairs), so the results are the same
 * bits. Otherwise (and in builds without the SLEEF x86 kernels) row by row. */
void ct__cpu_exp_shift_sum_rows_f32(const float *x, float *o, int64_t rows, int64_t n, const float *shift,
                                    double *sums);
void ct__cpu_exp_shift_sum_rows_f32(const float *x, float *o, int64_t rows, int64_t n, const float *shift,
                                    double *sums) {
#ifdef CT_HAVE_SLEEF_X86
    if (isa && n <= 16) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) o[r * n + j] = x[r * n + j] - shift[r];
        ct__cpu_vexp_f32(o, o, rows * n);
        for (int64_t r = 0; r < rows; r++) {
            const float *e = o + r * n;
            double d[8];
            for (int q = 0; q < 8; q++) d[q] = (q < n ? (double)e[q] : 0.0) + (q + 8 < n ? (double)e[q + 8] : 0.0);
            sums[r] = ((d[0] + d[4]) + (d[2] + d[6])) + ((d[1] + d[5]) + (d[3] + d[7]));
        }
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) sums[r] = ct__cpu_exp_shift_sum_f32(x + r * n, o + r * n, n, shift[r], true);
}

/* Float family with a SLEEF fast path for contiguous runs: float16/bfloat16 and float32
 * (CT_UNARY_VEC_F32), plus float64 (CT_UNARY_VEC), or float64 through its scalar loop
 * (CT_UNARY_VEC32, for the float32-only vector functions of VEC32_LIST). */
#define CT_UNARY_VEC_F32(pre, EXPR)                                                                      \
    CT_UNARY_LOOP_F16(pre##_f16s, EXPR)                                                                  \
    CT_UNARY_LOOP_BF16(pre##_bf16s, EXPR)                                                                 \
    static void pre##_f16(char **d, const int64_t *s, int64_t n, void *ctx) {                            \
        HALF_DISPATCH(pre, ct_half, ct__f16_widen_row, ct__f16_narrow_row)                               \
        pre##_f16s(d, s, n, ctx);                                                                        \
    }                                                                                                    \
    static void pre##_bf16(char **d, const int64_t *s, int64_t n, void *ctx) {                           \
        BF16_DISPATCH(pre)                                                                               \
        pre##_bf16s(d, s, n, ctx);                                                                       \
    }                                                                                                    \
    CT_UNARY_LOOP(pre##_f32s, float, float, LD_ID, ST_ID, float, ST_ID, EXPR)                            \
    static void pre##_f32(char **d, const int64_t *s, int64_t n, void *ctx) {                            \
        VEC_DISPATCH(pre, float, f32)                                                                    \
        pre##_f32s(d, s, n, ctx);                                                                        \
    }
#define CT_UNARY_VEC(pre, EXPR)                                                                          \
    CT_UNARY_VEC_F32(pre, EXPR)                                                                          \
    CT_UNARY_LOOP(pre##_f64s, double, double, LD_ID, ST_ID, double, ST_ID, EXPR)                         \
    static void pre##_f64(char **d, const int64_t *s, int64_t n, void *ctx) {                            \
        VEC_DISPATCH(pre, double, f64)                                                                   \
        pre##_f64s(d, s, n, ctx);                                                                        \
    }
#define CT_UNARY_VEC32(pre, EXPR)                                                                        \
    CT_UNARY_VEC_F32(pre, EXPR)                                                                          \
    CT_UNARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, double, ST_ID, EXPR)

/* Complex -> real and real-typed outputs */
#define CT_UNARY_TO_REAL_C(pre, EXPR32, EXPR64)                                                          \
    CT_UNARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, float, ST_ID, EXPR32)                         \
    CT_UNARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, double, ST_ID, EXPR64)
/* -> bool, every family */
#define CT_UNARY_BOOL_FLOATS(pre, EXPR)                                                                  \
    CT_UNARY_LOOP(pre##_f16, ct_half, float, LD_F16, ST_F16, bool, ST_ID, EXPR)                          \
    CT_UNARY_LOOP(pre##_bf16, ct_bf16, float, LD_BF16, ST_BF16, bool, ST_ID, EXPR)                       \
    CT_UNARY_LOOP(pre##_f32, float, float, LD_ID, ST_ID, bool, ST_ID, EXPR)                              \
    CT_UNARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, bool, ST_ID, EXPR)
#define CT_UNARY_BOOL_INTS(pre, EXPR)                                                                    \
    CT_UNARY_LOOP(pre##_u8, uint8_t, uint8_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                           \
    CT_UNARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                             \
    CT_UNARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                          \
    CT_UNARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                          \
    CT_UNARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, bool, ST_ID, EXPR)
#define CT_UNARY_BOOL_COMPLEX(pre, EXPR)                                                                 \
    CT_UNARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, bool, ST_ID, EXPR)                            \
    CT_UNARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, bool, ST_ID, EXPR)

/* ---- basic ---- */
CT_UNARY_FLOATS(neg, -a)
/* float16 / bfloat16 neg and abs over contiguous runs: the sign bit flipped or cleared
 * (2.5x faster than through float32 blocks for bfloat16), as PyTorch's vector kernels:
 * NaN payloads kept; strided runs keep the float32 round trip (NaN -> the default NaN
 * in bfloat16, as PyTorch's scalar loop). */
#define HALF_SIGN_BITS(name, OP, fallback)                                                                \
    CT_LOOP_ATTR static void name(char **d, const int64_t *s, int64_t n, void *ctx) {                     \
        if (s[0] == 2 && s[1] == 2) {                                                                     \
            uint16_t *o = (uint16_t *)d[0];                                                               \
            const uint16_t *x = (const uint16_t *)d[1];                                                   \
            for (int64_t i = 0; i < n; i++) o[i] = (uint16_t)(x[i] OP);                                   \
            return;                                                                                       \
        }                                                                                                 \
        fallback(d, s, n, ctx);                                                                           \
    }
HALF_SIGN_BITS(neg_f16_bits, ^ 0x8000u, neg_f16)
HALF_SIGN_BITS(neg_bf16_bits, ^ 0x8000u, neg_bf16)
CT_UNARY_INTS(neg, -a)
CT_UNARY_COMPLEX(neg, -a)
CT_UNARY_COMPLEX(conj, conj(a))
CT_UNARY_LOOP(real_c64, ct_c64, ct_c64, LD_ID, ST_ID, float, ST_ID, crealf(a))
CT_UNARY_LOOP(real_c128, ct_c128, ct_c128, LD_ID, ST_ID, double, ST_ID, creal(a))
CT_UNARY_LOOP(imag_c64, ct_c64, ct_c64, LD_ID, ST_ID, float, ST_ID, cimagf(a))
CT_UNARY_LOOP(imag_c128, ct_c128, ct_c128, LD_ID, ST_ID, double, ST_ID, cimag(a))
CT_UNARY_FLOATS(angle, isnan(a) ? a : (a < 0 ? (__typeof__(a))M_PI : (__typeof__(a))0))
CT_UNARY_TO_REAL_C(angle, cargf(a), carg(a))

CT_UNARY_FLOATS(abs, fabs(a))
HALF_SIGN_BITS(abs_f16_bits, &0x7fffu, abs_f16)
HALF_SIGN_BITS(abs_bf16_bits, &0x7fffu, abs_bf16)
#define CT_UNARY_SINTS(pre, EXPR)                                                                        \
    CT_UNARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, int8_t, ST_ID, EXPR)                           \
    CT_UNARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, int16_t, ST_ID, EXPR)                       \
    CT_UNARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, int32_t, ST_ID, EXPR)                       \
    CT_UNARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, int64_t, ST_ID, EXPR)
CT_UNARY_SINTS(abs, a < 0 ? -a : a)
CT_UNARY_LOOP(abs_u8, uint8_t, uint8_t, LD_ID, ST_ID, uint8_t, ST_ID, a)
CT_UNARY_TO_REAL_C(abs, cabsf(a), cabs(a))
CT_UNARY_FLOATS(sign, (__typeof__(a))((0 < a) - (a < 0)))
CT_UNARY_SINTS(sign, (0 < a) - (a < 0))
CT_UNARY_LOOP(sign_u8, uint8_t, uint8_t, LD_ID, ST_ID, uint8_t, ST_ID, a != 0)
CT_UNARY_LOOP(sign_b, bool, bool, LD_ID, ST_ID, bool, ST_ID, a)
CT_UNARY_COMPLEX(sgn, a == 0 ? (__typeof__(a))0 : a / fabs(a))
CT_UNARY_VEC32(square, a * a)
CT_UNARY_INTS(square, a * a)
CT_UNARY_COMPLEX(square, a * a)

/* ---- floating functions ---- */
CT_UNARY_FLOATS(sqrt, sqrt(a))
CT_UNARY_COMPLEX(sqrt, sqrt(a))
CT_UNARY_FLOATS(rsqrt, 1 / sqrt(a))
CT_UNARY_COMPLEX(rsqrt, 1 / sqrt(a))
CT_UNARY_VEC32(reciprocal, 1 / a)
CT_UNARY_COMPLEX(reciprocal, 1 / a)
CT_UNARY_VEC(exp, exp(a))
CT_UNARY_COMPLEX(exp, exp(a))
CT_UNARY_VEC(exp2, exp2(a))
CT_UNARY_COMPLEX(exp2, exp(a * (__typeof__(a))M_LN2))
CT_UNARY_VEC(expm1, expm1(a))
CT_UNARY_COMPLEX(expm1, CEXPM1(a))
CT_UNARY_VEC(log, log(a))
CT_UNARY_COMPLEX(log, log(a))
CT_UNARY_VEC(log2, log2(a))
CT_UNARY_COMPLEX(log2, log(a) / (__typeof__(a))M_LN2)
CT_UNARY_VEC(log10, log10(a))
CT_UNARY_COMPLEX(log10, log(a) / (__typeof__(a))M_LN10)
CT_UNARY_VEC(log1p, log1p(a))
CT_UNARY_COMPLEX(log1p, CLOG1P(a))
CT_UNARY_VEC(sin, sin(a))
CT_UNARY_COMPLEX(sin, sin(a))
CT_UNARY_VEC(cos, cos(a))
CT_UNARY_COMPLEX(cos, cos(a))
CT_UNARY_VEC(tan, tan(a))
CT_UNARY_COMPLEX(tan, tan(a))
CT_UNARY_VEC(asin, asin(a))
CT_UNARY_COMPLEX(asin, asin(a))
CT_UNARY_VEC(acos, acos(a))
CT_UNARY_COMPLEX(acos, acos(a))
CT_UNARY_VEC(atan, atan(a))
CT_UNARY_COMPLEX(atan, atan(a))
CT_UNARY_VEC(sinh, sinh(a))
CT_UNARY_COMPLEX(sinh, sinh(a))
CT_UNARY_VEC(cosh, cosh(a))
CT_UNARY_COMPLEX(cosh, cosh(a))
CT_UNARY_VEC(tanh, tanh(a))
CT_UNARY_COMPLEX(tanh, tanh(a))
CT_UNARY_VEC(asinh, asinh(a))
CT_UNARY_COMPLEX(asinh, asinh(a))
CT_UNARY_VEC(acosh, acosh(a))
CT_UNARY_COMPLEX(acosh, acosh(a))
CT_UNARY_VEC(atanh, atanh(a))
CT_UNARY_COMPLEX(atanh, atanh(a))
CT_UNARY_VEC(sigmoid, 1 / (1 + exp(-a)))
CT_UNARY_COMPLEX(sigmoid, 1 / (1 + exp(-a)))
CT_UNARY_VEC(erf, erf(a))
CT_UNARY_VEC(erfc, erfc(a))
CT_UNARY_VEC32(erfinv, CT_ERFINV(a))
CT_UNARY_VEC32(lgamma, CT_LGAMMA(a))
CT_UNARY_FLOATS(digamma, CT_DIGAMMA(a))
CT_UNARY_FLOATS(trigamma, CT_TRIGAMMA(a))
CT_UNARY_FLOATS(polygamma, CT_POLYGAMMA(a))

/* ---- rounding: d[0] = decimals for round ---- */
CT_UNARY_FLOATS(floor, floor(a))
CT_UNARY_FLOATS(ceil, ceil(a))
CT_UNARY_FLOATS(trunc, trunc(a))
CT_UNARY_FLOATS(frac, a - trunc(a))
#define ROUND_DEC(a)                                                                                      \
    (p[0] == 0 ? nearbyint(a)                                                                             \
     : p[0] > 0 ? nearbyint((a) * (__typeof__(a))pow(10.0, p[0])) / (__typeof__(a))pow(10.0, p[0])     \
                : nearbyint((a) / (__typeof__(a))pow(10.0, -p[0])) * (__typeof__(a))pow(10.0, -p[0]))
CT_UNARY_FLOATS(round, ROUND_DEC(a))

/* ---- logical / bitwise ---- */
CT_UNARY_BOOL_FLOATS(lnot, !a)
CT_UNARY_BOOL_INTS(lnot, !a)
CT_UNARY_BOOL_COMPLEX(lnot, !a)
CT_UNARY_LOOP(lnot_b, bool, bool, LD_ID, ST_ID, bool, ST_ID, !a)
CT_UNARY_INTS(bnot, ~a)
CT_UNARY_LOOP(bnot_b, bool, bool, LD_ID, ST_ID, bool, ST_ID, !a)

/* ---- classification (floating and complex; the front end answers for integers) ---- */
CT_UNARY_BOOL_FLOATS(isnan, isnan(a))
CT_UNARY_BOOL_COMPLEX(isnan, isnan(creal(a)) || isnan(cimag(a)))
/* d[0]: 0 any inf, 1 +inf only, -1 -inf only */
CT_UNARY_BOOL_FLOATS(isinf, isinf(a) && (p[0] == 0 || (p[0] > 0) == (a > 0)))
CT_UNARY_BOOL_COMPLEX(isinf, isinf(creal(a)) || isinf(cimag(a)))
CT_UNARY_BOOL_FLOATS(isfinite, isfinite(a))
CT_UNARY_BOOL_COMPLEX(isfinite, isfinite(creal(a)) && isfinite(cimag(a)))
/* nan_to_num: d[0] nan, d[1] posinf, d[2] neginf (already the dtype's limits if None) */
#define N2N(a, T) (isnan(a) ? (T)p[0] : isinf(a) ? ((a) > 0 ? (T)p[1] : (T)p[2]) : (a))
CT_UNARY_FLOATS(n2n, N2N(a, __typeof__(a)))
CT_UNARY_LOOP(n2n_c64, ct_c64, ct_c64, LD_ID, ST_ID, ct_c64, ST_ID, CMPLXF(N2N(crealf(a), float), N2N(cimagf(a), float)))
CT_UNARY_LOOP(n2n_c128, ct_c128, ct_c128, LD_ID, ST_ID, ct_c128, ST_ID, CMPLX(N2N(creal(a), double), N2N(cimag(a), double)))

/* ---- activations; parameters in d[] ---- */
/* relu as PyTorch's clamp_min(x, 0): NaN and -0 pass through (relu(-0) is -0) */
#define RELU_F(a) ((a) < 0 ? (__typeof__(a))0 : (a))
CT_UNARY_FLOATS(relu, RELU_F(a))
CT_UNARY_SINTS(relu, a > 0 ? a : 0)
CT_UNARY_LOOP(relu_u8, uint8_t, uint8_t, LD_ID, ST_ID, uint8_t, ST_ID, a)
/* threshold: d[0] threshold, d[1] value, both in x's type as PyTorch (NaN passes) */
CT_UNARY_FLOATS(threshold, a <= (__typeof__(a))p[0] ? (__typeof__(a))p[1] : a)
CT_UNARY_INTS(threshold, a <= (__typeof__(a))p[0] ? (__typeof__(a))p[1] : a)
/* hardtanh: d[0] min, d[1] max (NaN passes through): x < min ? min : x > max ? max : x,
 * as two selects one after the other, which GCC turns into vector blends (nested, the
 * loops stayed scalar: relu6 of 64K float32 on one core 45 -> 7.4 us, abs 6 us) */
#define HARDTANH(x, lo, hi)                                                                              \
    ({                                                                                                    \
        __typeof__(x) x_ = (x), lo_ = (lo), hi_ = (hi), m_ = x_ > hi_ ? hi_ : x_;                         \
        x_ < lo_ ? lo_ : m_;                                                                              \
    })
CT_UNARY_FLOATS(hardtanh, HARDTANH(a, (__typeof__(a))p[0], (__typeof__(a))p[1]))
CT_UNARY_INTS(hardtanh, HARDTANH(a, (__typeof__(a))p[0], (__typeof__(a))p[1]))
CT_UNARY_FLOATS(leaky_relu, a > 0 ? a : a * (__typeof__(a))p[0])
/* elu: d[0] alpha, d[1] scale, d[2] input_scale */
CT_UNARY_VEC32(elu, a < 0 ? expm1(a * (__typeof__(a))p[2]) * ((__typeof__(a))p[0] * (__typeof__(a))p[1])
                          : a * (__typeof__(a))p[1])
CT_UNARY_VEC(gelu, (__typeof__(a))0.5 * a * (1 + erf(a * (__typeof__(a))M_SQRT1_2)))
CT_UNARY_VEC(gelu_tanh, (__typeof__(a))0.5 * a *
                            (1 + tanh((__typeof__(a))0.7978845608028654 * (a + (__typeof__(a))0.044715 * a * a * a))))
CT_UNARY_VEC(silu, a / (1 + exp(-a)))
CT_UNARY_COMPLEX(silu, a / (1 + exp(-a)))
CT_UNARY_VEC(mish, a * tanh(log1p(exp(a))))
/* softplus: d[0] beta, d[1] threshold */
CT_UNARY_FLOATS(softplus, a * (__typeof__(a))p[0] > (__typeof__(a))p[1] ? a
                          : log1p(exp(a * (__typeof__(a))p[0])) / (__typeof__(a))p[0])
CT_UNARY_FLOATS(softsign, a / (1 + fabs(a)))
#define CLAMP06(x) HARDTANH(x, 0, 6) /* NaN passes */
CT_UNARY_FLOATS(hardsigmoid, CLAMP06(a + 3) / 6)
CT_UNARY_FLOATS(hardswish, a * CLAMP06(a + 3) / 6)
CT_UNARY_VEC32(logsigmoid, fmin(a, (__typeof__(a))0) - log1p(exp(-fabs(a))))

static ct_loop_fn tab[CT_OP_COUNT][CT_NUM_DTYPES];

static int cpu_unary(const ct_kernel_args *a) { return ct__cpu_run_loop(a, tab[a->op], a->d); }

void ct__cpu_unary_contig(ct_op op, ct_dtype dt, void *o, const void *x, int64_t n) {
    char *d[2] = {o, (char *)x};
    int64_t es = (int64_t)ct_dtype_size(dt), s[2] = {es, es};
    double params[6] = {0};
    tab[op][dt](d, s, n, params);
}

#define SETF(OP, pre) CT_SET_FLOATS(tab[CT_OP_##OP], pre)
#define SETFC(OP, pre) (CT_SET_FLOATS(tab[CT_OP_##OP], pre), CT_SET_COMPLEX(tab[CT_OP_##OP], pre))

void ct_cpu_register_unary(ct_kernel_fn *k) {
#ifdef CT_HAVE_SLEEF_X86
    isa = ct__cpu_isa() == CT_ISA_AVX512 ? 2 : ct__cpu_isa() == CT_ISA_AVX2 ? 1 : 0;
#endif
    SETFC(NEG, neg); CT_SET_INTS(tab[CT_OP_NEG], neg);
    tab[CT_OP_NEG][CT_FLOAT16] = neg_f16_bits, tab[CT_OP_NEG][CT_BFLOAT16] = neg_bf16_bits;
    CT_SET_COMPLEX(tab[CT_OP_CONJ], conj);
    CT_SET_COMPLEX(tab[CT_OP_REAL], real);
    CT_SET_COMPLEX(tab[CT_OP_IMAG], imag);
    SETFC(ANGLE, angle);
    SETFC(ABS, abs); CT_SET_INTS(tab[CT_OP_ABS], abs);
    tab[CT_OP_ABS][CT_FLOAT16] = abs_f16_bits, tab[CT_OP_ABS][CT_BFLOAT16] = abs_bf16_bits;
    SETF(SIGN, sign); CT_SET_INTS(tab[CT_OP_SIGN], sign); tab[CT_OP_SIGN][CT_BOOL] = sign_b;
    SETF(SGN, sign); CT_SET_INTS(tab[CT_OP_SGN], sign); tab[CT_OP_SGN][CT_BOOL] = sign_b;
    CT_SET_COMPLEX(tab[CT_OP_SGN], sgn);
    SETFC(SQUARE, square); CT_SET_INTS(tab[CT_OP_SQUARE], square);
    SETFC(SQRT, sqrt); SETFC(RSQRT, rsqrt); SETFC(RECIPROCAL, reciprocal);
    SETFC(EXP, exp); SETFC(EXP2, exp2); SETFC(EXPM1, expm1);
    SETFC(LOG, log); SETFC(LOG2, log2); SETFC(LOG10, log10); SETFC(LOG1P, log1p);
    SETFC(SIN, sin); SETFC(COS, cos); SETFC(TAN, tan); SETFC(ASIN, asin); SETFC(ACOS, acos); SETFC(ATAN, atan);
    SETFC(SINH, sinh); SETFC(COSH, cosh); SETFC(TANH, tanh); SETFC(ASINH, asinh); SETFC(ACOSH, acosh);
    SETFC(ATANH, atanh); SETFC(SIGMOID, sigmoid);
    SETF(ERF, erf); SETF(ERFC, erfc); SETF(ERFINV, erfinv); SETF(LGAMMA, lgamma); SETF(DIGAMMA, digamma);
    SETF(TRIGAMMA, trigamma);
    SETF(POLYGAMMA, polygamma);
    SETF(FLOOR, floor); SETF(CEIL, ceil); SETF(TRUNC, trunc); SETF(FRAC, frac); SETF(ROUND, round);
    SETFC(LOGICAL_NOT, lnot); CT_SET_INTS(tab[CT_OP_LOGICAL_NOT], lnot); tab[CT_OP_LOGICAL_NOT][CT_BOOL] = lnot_b;
    CT_SET_INTS(tab[CT_OP_BITWISE_NOT], bnot); tab[CT_OP_BITWISE_NOT][CT_BOOL] = bnot_b;
    SETFC(ISNAN, isnan); SETFC(ISINF, isinf); SETFC(ISFINITE, isfinite); SETFC(NAN_TO_NUM, n2n);
    SETF(RELU, relu); CT_SET_INTS(tab[CT_OP_RELU], relu);
    SETF(HARDTANH, hardtanh); SETF(THRESHOLD, threshold); CT_SET_INTS(tab[CT_OP_THRESHOLD], threshold); CT_SET_INTS(tab[CT_OP_HARDTANH], hardtanh);
    SETF(LEAKY_RELU, leaky_relu); SETF(ELU, elu); SETF(GELU, gelu); SETF(GELU_TANH, gelu_tanh);
    SETFC(SILU, silu); SETF(MISH, mish); SETF(SOFTPLUS, softplus); SETF(SOFTSIGN, softsign);
    SETF(HARDSIGMOID, hardsigmoid); SETF(HARDSWISH, hardswish); SETF(LOGSIGMOID, logsigmoid);
    for (int op = 0; op < CT_OP_COUNT; op++)
        for (int d = 0; d < CT_NUM_DTYPES; d++)
            if (tab[op][d]) { k[op] = cpu_unary; break; }
    ct_cpu_register_activation(k);
}
