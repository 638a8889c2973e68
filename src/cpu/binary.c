/* CPU kernels for binary and ternary elementwise ops. Inputs arrive in the compute
 * dtype; the output has the compute dtype or bool (comparisons, logical ops).
 * Integer arithmetic wraps like PyTorch's (done in unsigned 64-bit, no C overflow). */
#include "cpu/cmath.h"
#include "cpu/loops.h"
#include "cpu/bf16_vec.h"

#include "cpu/sleef_x86.h"

#include <complex.h>

/* type-generic libm calls for the compute types (float for f16/bf16/f32) */
#define G_TRUNC(x) _Generic((x), float: truncf, default: trunc)(x)
#define G_FLOOR(x) _Generic((x), float: floorf, default: floor)(x)
#define G_FMOD(x, y) _Generic((x), float: fmodf, default: fmod)((x), (y))
#define G_POW(x, y) _Generic((x), float: powf, double: pow, ct_c64: cpowf, ct_c128: cpow)((x), (y))
#define G_ATAN2(x, y) _Generic((x), float: atan2f, default: atan2)((x), (y))
#define G_HYPOT(x, y) _Generic((x), float: hypotf, default: hypot)((x), (y))
#define G_LOG(x) _Generic((x), float: logf, default: log)(x)
#define G_LOG1P(x) _Generic((x), float: log1pf, default: log1p)(x)
#define G_EXP(x) _Generic((x), float: expf, default: exp)(x)
#define G_EXP2(x) _Generic((x), float: exp2f, default: exp2)(x)
#define G_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#define G_ABS(x) _Generic((x), float: fabsf, double: fabs, ct_c64: cabsf, ct_c128: cabs)(x)
#define G_COPYSIGN(x, y) _Generic((x), float: copysignf, default: copysign)((x), (y))
#define WRAP(T, e) ((T)(uint64_t)(e)) /* modular result of unsigned 64-bit arithmetic */

/* ---- add / sub carry alpha in p[0] ---- */
CT_BINARY_FLOATS(add, a + (__typeof__(a))p[0] * b)
CT_BINARY_INTS(add, WRAP(__typeof__(a), (uint64_t)a + (uint64_t)(int64_t)p[0] * (uint64_t)b))
CT_BINARY_COMPLEX(add, a + p[0] * b)
CT_BINARY_BOOL(add, a || (p[0] != 0 && b))
CT_BINARY_FLOATS(sub, a - (__typeof__(a))p[0] * b)
CT_BINARY_INTS(sub, WRAP(__typeof__(a), (uint64_t)a - (uint64_t)(int64_t)p[0] * (uint64_t)b))
CT_BINARY_COMPLEX(sub, a - p[0] * b)
CT_BINARY_FLOATS(mul, a * b)
CT_BINARY_INTS(mul, WRAP(__typeof__(a), (uint64_t)a * (uint64_t)b))
CT_BINARY_COMPLEX(mul, a * b)
CT_BINARY_BOOL(mul, a && b)
CT_BINARY_FLOATS(div, a / b)

/* float16/bfloat16 mul and div by a single value b: PyTorch takes b as a float32 of its
 * original value (the op layer passes it in p[0] with p[1] = 1: ct__binary_raw), not
 * rounded to the half type first as the cast input would have it; then d[2] is unused. */
#define HALF_BY_SCALAR(fname, T, LD, STO, OP)                                                       \
    static void fname##_scal(char **d, const int64_t *s, int64_t n, void *ctx) {                   \
        const double *p = ctx;                                                                     \
        if (!p || p[1] != 1.0) {                                                                   \
            fname(d, s, n, ctx);                                                                   \
            return;                                                                                \
        }                                                                                          \
        const float b = (float)p[0];                                                               \
        for (int64_t i = 0; i < n; i++) {                                                          \
            float a = LD(*(const T *)(d[1] + i * s[1]));                                           \
            *(T *)(d[0] + i * s[0]) = STO(a OP b);                                                 \
        }                                                                                          \
    }
HALF_BY_SCALAR(mul_f16, ct_half, LD_F16, ST_F16, *)
HALF_BY_SCALAR(div_f16, ct_half, LD_F16, ST_F16, /)
HALF_BY_SCALAR(mul_bf16, ct_bf16, LD_BF16, ST_BF16, *)
HALF_BY_SCALAR(div_bf16, ct_bf16, LD_BF16, ST_BF16, /)

/* bfloat16 and float16 add/sub/mul/div over contiguous operands (or a broadcast second
 * one) on AVX-512/AVX2: the float32 expression above (alpha * b, then the add: no fused
 * multiply-add, as the scalar loop under -ffp-contract=off) between the vector
 * conversions of cpu/bf16_vec.h, so the same bits as the loops above (float16 through
 * its float32 blocks before: 1M values 1.3-1.4x PyTorch's time, now in registers). */
#ifdef CT_BF16_VEC
static int bin_isa; /* 0: scalar, 1: AVX2+FMA, 2: AVX-512 (F and BW) */
/* o = EXPR(a, b) over n values of T (ct_bf16 or ct_half), 2 W a step (two vectors of
 * type VT, cpu/bf16_vec.h's pairs); b = y[i] (ys != 0) or the value yv; the tail
 * through zero-padded blocks */
#define BF16_BIN_FN(fname, ATTR, T, W, VT, SET1, LOAD2, STORE2, EXPR)                                           \
    ATTR static void fname(T *o, const T *x, const T *y, int64_t ys, int64_t n, float al, float yv) {           \
        const VT alpha = SET1(al);                                                                              \
        (void)alpha;                                                                                            \
        T xb[2 * W], yb[2 * W], ob[2 * W];                                                                      \
        for (int64_t i = 0; i < n; i += 2 * W) {                                                                \
            const int64_t c = n - i < 2 * W ? n - i : 2 * W;                                                    \
            const T *xp = x + i, *yp = ys ? y + i : y;                                                          \
            if (c < 2 * W) {                                                                                    \
                memset(xb, 0, sizeof xb), memset(yb, 0, sizeof yb);                                             \
                memcpy(xb, xp, sizeof(T) * (size_t)c);                                                          \
                if (ys) memcpy(yb, yp, sizeof(T) * (size_t)c);                                                  \
                xp = xb;                                                                                        \
                if (ys) yp = yb;                                                                                \
            }                                                                                                   \
            VT a0, a1, b0 = SET1(yv), b1 = b0, a, b;                                                            \
            LOAD2(xp, &a0, &a1);                                                                                \
            if (ys) LOAD2(yp, &b0, &b1);                                                                        \
            a = a0, b = b0;                                                                                     \
            const VT r0 = EXPR;                                                                                 \
            a = a1, b = b1;                                                                                     \
            const VT r1 = EXPR;                                                                                 \
            if (c == 2 * W) STORE2(o + i, r0, r1);                                                              \
            else STORE2(ob, r0, r1), memcpy(o + i, ob, sizeof(T) * (size_t)c);                                  \
        }                                                                                                       \
    }
/* pre##_##H##_vec for H = bf16 (type ct_bf16, converter ct_bf16_to_float) or f16 (ct_half,
 * ct_half_to_float) */
#define HALF_BIN(pre, H, T, TO_FLOAT, E512, E256, SCALAR_OK, FALLBACK)                                          \
    BF16_BIN_FN(pre##_##H##_v512, __attribute__((target("avx512f,avx512bw"), noinline)), T, 16, __m512,         \
                _mm512_set1_ps, ct_##H##x32_load2, ct_##H##x32_store2, E512)                                    \
    BF16_BIN_FN(pre##_##H##_v256, __attribute__((target("avx2,fma,f16c"), noinline)), T, 8, __m256,             \
                _mm256_set1_ps, ct_##H##x16_load2, ct_##H##x16_store2, E256)                                    \
    static void pre##_##H##_vec(char **d, const int64_t *s, int64_t n, void *ctx) {                             \
        const int64_t e = (int64_t)sizeof(T);                                                                   \
        const double *p = ctx;                                                                                  \
        const bool scal = SCALAR_OK && p && p[1] == 1.0; /* mul/div by a float32 value (HALF_BY_SCALAR) */      \
        if (bin_isa && s[0] == e && s[1] == e && (scal || s[2] == e || s[2] == 0)) {                            \
            const float al = p ? (float)p[0] : 1.0f;                                                            \
            const int64_t ys = scal ? 0 : s[2];                                                                 \
            const float yv = scal ? (float)p[0] : ys ? 0.0f : TO_FLOAT(*(const T *)d[2]);                        \
            if (bin_isa == 2)                                                                                   \
                pre##_##H##_v512((T *)d[0], (const T *)d[1], (const T *)d[2], ys, n, al, yv);                   \
            else                                                                                                \
                pre##_##H##_v256((T *)d[0], (const T *)d[1], (const T *)d[2], ys, n, al, yv);                   \
            return;                                                                                             \
        }                                                                                                       \
        FALLBACK(d, s, n, ctx);                                                                                 \
    }
#define BF16_BIN(pre, E512, E256, SCALAR_OK, FALLBACK_BF16, FALLBACK_F16)                                       \
    HALF_BIN(pre, bf16, ct_bf16, ct_bf16_to_float, E512, E256, SCALAR_OK, FALLBACK_BF16)                       \
    HALF_BIN(pre, f16, ct_half, ct_half_to_float, E512, E256, SCALAR_OK, FALLBACK_F16)
BF16_BIN(add, _mm512_add_ps(a, _mm512_mul_ps(alpha, b)), _mm256_add_ps(a, _mm256_mul_ps(alpha, b)), false, add_bf16,
         add_f16)
BF16_BIN(sub, _mm512_sub_ps(a, _mm512_mul_ps(alpha, b)), _mm256_sub_ps(a, _mm256_mul_ps(alpha, b)), false, sub_bf16,
         sub_f16)
BF16_BIN(mul, _mm512_mul_ps(a, b), _mm256_mul_ps(a, b), true, mul_bf16_scal, mul_f16_scal)
BF16_BIN(div, _mm512_div_ps(a, b), _mm256_div_ps(a, b), true, div_bf16_scal, div_f16_scal)
#endif
CT_BINARY_COMPLEX(div, a / b)

/* ---- rounding divisions and remainders ---- */
/* Integer helpers in int64 (exact for every narrower type; b == 0 is rejected before
 * the loop runs; b == -1 avoids the INT_MIN / -1 trap and wraps like PyTorch). */
static inline int64_t i_tdiv(int64_t a, int64_t b) { return b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b; }
static inline int64_t i_fdiv(int64_t a, int64_t b) {
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    int64_t q = a / b, r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t i_fmod(int64_t a, int64_t b) { return b == -1 ? 0 : a % b; }
static inline int64_t i_rem(int64_t a, int64_t b) {
    if (b == -1) return 0;
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
/* PyTorch's floor division for floating types (div_floor_floating). */
#define DEF_FDIV(name, T, FMOD, FLOOR, COPYSIGN)                    \
    static inline T name(T a, T b) {                                \
        if (b == 0) return a / b;                                   \
        T mod = FMOD(a, b), div = (a - mod) / b;                    \
        if (mod != 0 && (b < 0) != (mod < 0)) div -= (T)1;          \
        if (div != 0) {                                             \
            T fl = FLOOR(div);                                      \
            if (div - fl > (T)0.5) fl += (T)1;                      \
            return fl;                                              \
        }                                                           \
        return COPYSIGN((T)0, a / b);                               \
    }
DEF_FDIV(f_fdivf, float, fmodf, floorf, copysignf)
DEF_FDIV(f_fdivd, double, fmod, floor, copysign)
#define G_FDIV(x, y) _Generic((x), float: f_fdivf, default: f_fdivd)((x), (y))
#define F_REM(a, b) ({ __typeof__(a) m_ = G_FMOD(a, b); (m_ != 0 && ((b) < 0) != (m_ < 0)) ? m_ + (b) : m_; })

CT_BINARY_FLOATS(div_trunc, G_TRUNC(a / b))
CT_BINARY_INTS(div_trunc, (__typeof__(a))i_tdiv(a, b))
CT_BINARY_FLOATS(div_floor, G_FDIV(a, b))
CT_BINARY_INTS(div_floor, (__typeof__(a))i_fdiv(a, b))
CT_BINARY_FLOATS(fmod, G_FMOD(a, b))
CT_BINARY_INTS(fmod, (__typeof__(a))i_fmod(a, b))
CT_BINARY_FLOATS(remainder, F_REM(a, b))
CT_BINARY_INTS(remainder, (__typeof__(a))i_rem(a, b))

/* ---- pow ---- */
static inline int64_t i_pow(int64_t a, int64_t b) {
    if (b < 0) {
        if (a == 1) return 1;
        if (a == -1) return (b & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, base = (uint64_t)a;
    while (b) {
        if (b & 1) r *= base;
        base *= base;
        b >>= 1;
    }
    return (int64_t)r;
}
CT_BINARY_FLOATS(powg, G_POW(a, b))
CT_BINARY_INTS(pow, (__typeof__(a))i_pow(a, b))
CT_BINARY_COMPLEX(pow, G_POW(a, b))
CT_BINARY_BOOL(pow, a || !b)
/* A broadcast exponent of 2, 3, 0.5, -0.5, -1 or -2 takes PyTorch's exact shortcuts. */
#define POW_FAST(fname, T, gen)                                                                   \
    static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {                         \
        if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T) && s[2] == 0) {              \
            T *o = (T *)d[0];                                                                     \
            const T *x = (const T *)d[1];                                                         \
            T e = *(const T *)d[2];                                                               \
            if (e == 2) { for (int64_t i = 0; i < n; i++) o[i] = x[i] * x[i]; return; }           \
            if (e == 3) { for (int64_t i = 0; i < n; i++) o[i] = x[i] * x[i] * x[i]; return; }    \
            if (e == (T)0.5) { for (int64_t i = 0; i < n; i++) o[i] = G_SQRT(x[i]); return; }     \
            if (e == (T)-0.5) { for (int64_t i = 0; i < n; i++) o[i] = 1 / G_SQRT(x[i]); return; } \
            if (e == -1) { for (int64_t i = 0; i < n; i++) o[i] = 1 / x[i]; return; }             \
            if (e == -2) { for (int64_t i = 0; i < n; i++) o[i] = 1 / (x[i] * x[i]); return; }    \
        }                                                                                         \
        gen(d, s, n, ctx);                                                                        \
    }

/* ---- atan2, hypot, xlogy ---- */
CT_BINARY_FLOATS(atan2, G_ATAN2(a, b))
CT_BINARY_FLOATS(hypot, G_HYPOT(a, b))
CT_BINARY_FLOATS(xlogy, (b != b) ? b : (a == 0 ? (__typeof__(a))0 : a * G_LOG(b)))
/* logaddexp(2): PyTorch's formula, log(e^a + e^b) = m + log1p(e^-|a - b|), m the larger
 * (a when a is NaN), and a itself when a == b is infinite (inf - inf would be NaN) */
#define LOGADDEXP(a, b, EXPF, SCALE)                                                                      \
    ({                                                                                                    \
        __typeof__(a) m_ = (a) < (b) ? (b) : (a);                                                         \
        (isinf(a) && (a) == (b)) ? (a) : m_ + G_LOG1P(EXPF(-G_ABS((a) - (b)))) * (__typeof__(a))(SCALE);  \
    })
CT_BINARY_FLOATS(logaddexp, LOGADDEXP(a, b, G_EXP, 1.0))
/* complex (PyTorch's _log_add_exp_helper): NaN + NaN i if either has a NaN part; else
 * with min, max the operands ordered by real part (b first on a tie), log1p(e^(min -
 * max)) + max, except where both real parts are the same infinity: -inf gives min (the
 * angle of a zero is undefined), +inf log(e^min + e^max). In double, rounded once. */
static inline ct_c128 c_logaddexp(ct_c128 x, ct_c128 y) {
    if (isnan(creal(x)) || isnan(cimag(x)) || isnan(creal(y)) || isnan(cimag(y))) return CMPLX(NAN, NAN);
    const bool xlo = creal(x) < creal(y);
    const ct_c128 mn = xlo ? x : y, mx = xlo ? y : x;
    if (!isfinite(creal(mn)) && creal(mn) == creal(mx)) return creal(mn) < 0 ? mn : clog(cexp(mn) + cexp(mx));
    return ct__c_log1p(cexp(mn - mx)) + mx;
}
#define CLOGADDEXP(a, b) ((__typeof__(a))c_logaddexp((ct_c128)(a), (ct_c128)(b)))
CT_BINARY_COMPLEX(logaddexp, CLOGADDEXP(a, b))
CT_BINARY_FLOATS(logaddexp2, LOGADDEXP(a, b, G_EXP2, 1.4426950408889634))
CT_BINARY_FLOATS(copysign, G_COPYSIGN(a, b))

/* ---- atan2, hypot, pow, fmod, remainder and floor division through SLEEF ----
 * Contiguous float32 / float64 runs (an operand may also be one broadcast value) on
 * AVX-512 and AVX2 CPUs, and float16 / bfloat16 through float32 blocks: the functions
 * PyTorch's own vectorised kernels call (atan2 and pow within 1 ulp, hypot 0.5, fmod
 * exact), where the libm calls element by element were 2-14x slower than PyTorch
 * (1M float32 on two threads: atan2 11.2 -> 0.87-0.93 ms, PyTorch 0.74-0.76; fmod 9.1 ->
 * 0.52-0.71, PyTorch 0.98-1.0; remainder 9.2 -> 0.56, PyTorch 1.1-1.2; pow 4.6 -> 1.85,
 * PyTorch 1.8; floor_divide of 64K float32 on one core 2.7 ms -> 116 us, PyTorch 0.2).
 * The remainder is fmod's result moved into the divisor's sign (F_REM). */
#if defined(CT_BF16_VEC) && defined(CT_HAVE_SLEEF_X86)
enum { SL_ATAN2, SL_HYPOT, SL_POW, SL_FMOD, SL_REM, SL_FDIV, SL_LAE, SL_LAE2 };
/* logaddexp(2) as PyTorch's vector kernel: max + log1p(exp(-|a - b|)) (exp2, times
 * 1 / ln 2), a where a == b is infinite (INFFIX); a NaN operand makes the log1p term NaN,
 * so the NaN-ignoring fmax does not hide it. 1M float32 on two threads 12 ms (the libm
 * loop) -> 0.99 ms, PyTorch 0.92; the half types through float32 blocks. */
#define SL_LAE_BODY(a, b, SUF, ISA, EXPF, SCALE, INFFIX)                                                        \
    INFFIX(Sleef_fmax##SUF##_##ISA(a, b) +                                                                      \
               Sleef_log1p##SUF##_u10##ISA(EXPF##SUF##_u10##ISA(-Sleef_fabs##SUF##_##ISA((a) - (b)))) *         \
                   (__typeof__((a)[0]))(SCALE),                                                                 \
           a, b)
#define SL_BODY(f, a, b, SUF, ISA, MODFIX, INFFIX)                                                              \
    (f == SL_ATAN2 ? Sleef_atan2##SUF##_u10##ISA(a, b)                                                          \
     : f == SL_HYPOT ? Sleef_hypot##SUF##_u05##ISA(a, b)                                                        \
     : f == SL_POW   ? Sleef_pow##SUF##_u10##ISA(a, b)                                                          \
     : f == SL_FMOD  ? Sleef_fmod##SUF##_##ISA(a, b)                                                            \
     : f == SL_LAE   ? SL_LAE_BODY(a, b, SUF, ISA, Sleef_exp, 1.0, INFFIX)                                      \
     : f == SL_LAE2  ? SL_LAE_BODY(a, b, SUF, ISA, Sleef_exp2, 1.4426950408889634, INFFIX)                      \
                     : MODFIX(f, Sleef_fmod##SUF##_##ISA(a, b), a, b))
/* From m = fmod(a, b): the remainder (F_REM: m + b where m != 0 and the signs of m and b
 * differ; NaN lanes stay NaN) or the floor division (DEF_FDIV's steps as selects:
 * q = (a - m) / b, less 1 where the remainder would add b, rounded to the nearest integer
 * below or above by floor and a comparison with 0.5; copysign(0, a / b) where q is 0,
 * a / b where b is 0, and a / b where it overflows for a finite a: there SLEEF's fmod
 * gives NaN, libm's the exact remainder, and the quotient is +-inf either way, as
 * PyTorch's floor division, which takes libm's fmod, gives it. fmod and remainder keep
 * SLEEF's NaN there, as PyTorch's vectorised fmod and remainder do). */
#define MODFIX512(f, m, a, b, PS, MASK, EPI, SIGN)                                                              \
    ({                                                                                                          \
        __typeof__(m) m_ = (m), z_ = _mm512_setzero_##PS(), one_ = _mm512_set1_##PS(1.0); /* m: once */         \
        MASK fix_ = _mm512_cmp_##PS##_mask(m_, z_, _CMP_NEQ_OQ) &                                               \
                    (_mm512_cmp_##PS##_mask(m_, z_, _CMP_LT_OQ) ^ _mm512_cmp_##PS##_mask(b, z_, _CMP_LT_OQ));   \
        __typeof__(m) r_;                                                                                       \
        if (f == SL_REM) {                                                                                      \
            r_ = _mm512_mask_add_##PS(m_, fix_, m_, b);                                                         \
        } else {                                                                                                \
            __typeof__(m) q_ = _mm512_div_##PS(_mm512_sub_##PS(a, m_), b), ab_ = _mm512_div_##PS(a, b);        \
            q_ = _mm512_mask_sub_##PS(q_, fix_, q_, one_);                                                      \
            __typeof__(m) fl_ = _mm512_roundscale_##PS(q_, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);          \
            fl_ = _mm512_mask_add_##PS(fl_, _mm512_cmp_##PS##_mask(_mm512_sub_##PS(q_, fl_),                    \
                                                                   _mm512_set1_##PS(0.5), _CMP_GT_OQ), fl_, one_); \
            MASK neg_ = _mm512_test_##EPI##_mask(_mm512_cast##PS##_si512(ab_), _mm512_set1_##EPI(SIGN));        \
            __typeof__(m) zs_ = _mm512_mask_blend_##PS(neg_, z_, _mm512_set1_##PS(-0.0));                      \
            r_ = _mm512_mask_blend_##PS(_mm512_cmp_##PS##_mask(q_, z_, _CMP_NEQ_UQ), zs_, fl_);                \
            const __typeof__(m) inf_ = _mm512_set1_##PS(INFINITY), ninf_ = _mm512_set1_##PS(-INFINITY);       \
            MASK ovf_ = (_mm512_cmp_##PS##_mask(ab_, inf_, _CMP_EQ_OQ) | _mm512_cmp_##PS##_mask(ab_, ninf_, _CMP_EQ_OQ)) & \
                        _mm512_cmp_##PS##_mask(a, inf_, _CMP_NEQ_OQ) & _mm512_cmp_##PS##_mask(a, ninf_, _CMP_NEQ_OQ); \
            r_ = _mm512_mask_blend_##PS(ovf_ | _mm512_cmp_##PS##_mask(b, z_, _CMP_EQ_OQ), r_, ab_);            \
        }                                                                                                       \
        r_;                                                                                                     \
    })
#define MODFIX256(f, m, a, b, PS)                                                                               \
    ({                                                                                                          \
        __typeof__(m) m_ = (m), z_ = _mm256_setzero_##PS(), one_ = _mm256_set1_##PS(1.0);                      \
        __typeof__(m) fix_ = _mm256_and_##PS(_mm256_cmp_##PS(m_, z_, _CMP_NEQ_OQ),                              \
                                             _mm256_xor_##PS(_mm256_cmp_##PS(m_, z_, _CMP_LT_OQ),                \
                                                             _mm256_cmp_##PS(b, z_, _CMP_LT_OQ)));              \
        __typeof__(m) r_;                                                                                       \
        if (f == SL_REM) {                                                                                      \
            r_ = _mm256_blendv_##PS(m_, _mm256_add_##PS(m_, b), fix_);                                          \
        } else {                                                                                                \
            __typeof__(m) q_ = _mm256_div_##PS(_mm256_sub_##PS(a, m_), b), ab_ = _mm256_div_##PS(a, b);        \
            q_ = _mm256_blendv_##PS(q_, _mm256_sub_##PS(q_, one_), fix_);                                       \
            __typeof__(m) fl_ = _mm256_round_##PS(q_, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);               \
            fl_ = _mm256_blendv_##PS(fl_, _mm256_add_##PS(fl_, one_),                                           \
                                     _mm256_cmp_##PS(_mm256_sub_##PS(q_, fl_), _mm256_set1_##PS(0.5), _CMP_GT_OQ)); \
            __typeof__(m) zs_ = _mm256_and_##PS(ab_, _mm256_set1_##PS(-0.0));                                  \
            r_ = _mm256_blendv_##PS(zs_, fl_, _mm256_cmp_##PS(q_, z_, _CMP_NEQ_UQ));                            \
            const __typeof__(m) inf_ = _mm256_set1_##PS(INFINITY), ninf_ = _mm256_set1_##PS(-INFINITY);       \
            __typeof__(m) ovf_ = _mm256_and_##PS(                                                               \
                _mm256_or_##PS(_mm256_cmp_##PS(ab_, inf_, _CMP_EQ_OQ), _mm256_cmp_##PS(ab_, ninf_, _CMP_EQ_OQ)),  \
                _mm256_and_##PS(_mm256_cmp_##PS(a, inf_, _CMP_NEQ_OQ), _mm256_cmp_##PS(a, ninf_, _CMP_NEQ_OQ))); \
            r_ = _mm256_blendv_##PS(r_, ab_, _mm256_or_##PS(ovf_, _mm256_cmp_##PS(b, z_, _CMP_EQ_OQ)));         \
        }                                                                                                       \
        r_;                                                                                                     \
    })
/* r, or a where a == b and |a| is infinite */
#define INFFIX512(r, a, b, PS)                                                                                  \
    _mm512_mask_blend_##PS(_mm512_cmp_##PS##_mask(a, b, _CMP_EQ_OQ) &                                           \
                               _mm512_cmp_##PS##_mask(_mm512_abs_##PS(a), _mm512_set1_##PS(INFINITY), _CMP_EQ_OQ), \
                           r, a)
#define INFFIX256(r, a, b, PS)                                                                                  \
    _mm256_blendv_##PS(r, a,                                                                                    \
                       _mm256_and_##PS(_mm256_cmp_##PS(a, b, _CMP_EQ_OQ),                                       \
                                       _mm256_cmp_##PS(_mm256_andnot_##PS(_mm256_set1_##PS(-0.0), a),           \
                                                       _mm256_set1_##PS(INFINITY), _CMP_EQ_OQ)))
#define INFFIX_F16(r, a, b) INFFIX512(r, a, b, ps)
#define INFFIX_D8(r, a, b) INFFIX512(r, a, b, pd)
#define INFFIX_F8(r, a, b) INFFIX256(r, a, b, ps)
#define INFFIX_D4(r, a, b) INFFIX256(r, a, b, pd)
#define MODFIX_F16(f, m, a, b) MODFIX512(f, m, a, b, ps, __mmask16, epi32, (int)0x80000000u)
#define MODFIX_D8(f, m, a, b) MODFIX512(f, m, a, b, pd, __mmask8, epi64, (long long)0x8000000000000000ull)
#define MODFIX_F8(f, m, a, b) MODFIX256(f, m, a, b, ps)
#define MODFIX_D4(f, m, a, b) MODFIX256(f, m, a, b, pd)
/* o[i] = f(x[i * xs], y[i * ys]) for i < n, xs and ys 1 or 0 (a broadcast value) */
#define SL_FN512(NAME, T, V, L, MASKT, SET1, LOAD, STORE, SUF, MODFIX, INFFIX)                                  \
    __attribute__((target("avx512f"))) static void NAME(int f, T *o, const T *x, int64_t xs, const T *y,        \
                                                        int64_t ys, int64_t n) {                                \
        const V xb = SET1(x[0]), yb = SET1(y[0]);                                                               \
        for (int64_t i = 0; i < n; i += L) {                                                                    \
            MASKT m = n - i >= L ? (MASKT)-1 : (MASKT)((1u << (n - i)) - 1u);                                   \
            V a = xs ? LOAD(m, x + i) : xb, b = ys ? LOAD(m, y + i) : yb;                                       \
            STORE(o + i, m, SL_BODY(f, a, b, SUF, avx512f, MODFIX, INFFIX));                                    \
        }                                                                                                       \
    }
#define SL_FN256(NAME, T, V, L, SET1, LOADU, STOREU, SUF, MODFIX, INFFIX)                                       \
    __attribute__((target("avx2,fma"))) static void NAME(int f, T *o, const T *x, int64_t xs, const T *y,       \
                                                         int64_t ys, int64_t n) {                               \
        const V xb = SET1(x[0]), yb = SET1(y[0]);                                                               \
        for (int64_t i = 0; i < n; i += L) {                                                                    \
            T xt[L], yt[L], ot[L];                                                                              \
            int64_t c = n - i < L ? n - i : L;                                                                  \
            V a = xb, b = yb;                                                                                   \
            if (c < L) { /* the tail through zero-padded copies */                                             \
                for (int64_t j = 0; j < L; j++) xt[j] = j < c ? x[xs * (i + j)] : 0, yt[j] = j < c ? y[ys * (i + j)] : 1; \
                a = LOADU(xt), b = LOADU(yt);                                                                   \
            } else {                                                                                            \
                if (xs) a = LOADU(x + i);                                                                       \
                if (ys) b = LOADU(y + i);                                                                       \
            }                                                                                                   \
            V r = SL_BODY(f, a, b, SUF, avx2, MODFIX, INFFIX);                                                  \
            if (c < L) {                                                                                        \
                STOREU(ot, r);                                                                                  \
                memcpy(o + i, ot, sizeof(T) * (size_t)c);                                                       \
            } else STOREU(o + i, r);                                                                            \
        }                                                                                                       \
    }
SL_FN512(sl_v512_f32, float, __m512, 16, __mmask16, _mm512_set1_ps, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
         f16, MODFIX_F16, INFFIX_F16)
SL_FN512(sl_v512_f64, double, __m512d, 8, __mmask8, _mm512_set1_pd, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
         d8, MODFIX_D8, INFFIX_D8)
SL_FN256(sl_v256_f32, float, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, f8, MODFIX_F8, INFFIX_F8)
SL_FN256(sl_v256_f64, double, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, d4, MODFIX_D4, INFFIX_D4)

/* The kernels: the vector functions where the layout allows, else the scalar loops */
#define SL_CONTIG(s, E) ((s)[0] == (E) && ((s)[1] == (E) || (s)[1] == 0) && ((s)[2] == (E) || (s)[2] == 0))
#define SL_KERNELS(pre, F)                                                                                      \
    SL_FULL(pre, F, f32, float)                                                                                 \
    SL_FULL(pre, F, f64, double)                                                                                \
    SL_HALF(pre, F, f16, ct_half, CT_FLOAT16)                                                                   \
    SL_HALF(pre, F, bf16, ct_bf16, CT_BFLOAT16)
#define SL_FULL(pre, F, SFX, T)                                                                                 \
    static void pre##_##SFX##v(char **d, const int64_t *s, int64_t n, void *ctx) {                              \
        if (bin_isa && n > 0 && SL_CONTIG(s, (int64_t)sizeof(T))) {                                             \
            (bin_isa == 2 ? sl_v512_##SFX : sl_v256_##SFX)(F, (T *)d[0], (const T *)d[1], s[1] != 0,            \
                                                           (const T *)d[2], s[2] != 0, n);                      \
            return;                                                                                             \
        }                                                                                                       \
        pre##_##SFX(d, s, n, ctx);                                                                              \
    }
/* float16 / bfloat16: blocks widened into float32, the float32 function, rounded back */
#define SL_HALF(pre, F, SFX, HT, DT)                                                                            \
    static void pre##_##SFX##v(char **d, const int64_t *s, int64_t n, void *ctx) {                              \
        if (bin_isa && n > 0 && SL_CONTIG(s, 2)) {                                                              \
            const HT *x = (const HT *)d[1], *y = (const HT *)d[2];                                              \
            float xa[CT_F16_BLOCK], ya[CT_F16_BLOCK], t[CT_F16_BLOCK];                                          \
            if (!s[1]) ct__half_widen(DT, xa, x, 1);                                                            \
            if (!s[2]) ct__half_widen(DT, ya, y, 1);                                                            \
            for (int64_t b = 0; b < n; b += CT_F16_BLOCK) {                                                     \
                int64_t m = n - b < CT_F16_BLOCK ? n - b : CT_F16_BLOCK;                                        \
                if (s[1]) ct__half_widen(DT, xa, x + b, m);                                                     \
                if (s[2]) ct__half_widen(DT, ya, y + b, m);                                                     \
                (bin_isa == 2 ? sl_v512_f32 : sl_v256_f32)(F, t, xa, s[1] != 0, ya, s[2] != 0, m);              \
                ct__half_narrow(DT, (HT *)d[0] + b, t, m);                                                      \
            }                                                                                                   \
            return;                                                                                             \
        }                                                                                                       \
        pre##_##SFX(d, s, n, ctx);                                                                              \
    }
SL_KERNELS(atan2, SL_ATAN2)
SL_KERNELS(hypot, SL_HYPOT)
SL_KERNELS(logaddexp, SL_LAE)
SL_KERNELS(logaddexp2, SL_LAE2)
SL_KERNELS(powg, SL_POW)
SL_KERNELS(fmod, SL_FMOD)
SL_KERNELS(remainder, SL_REM)
SL_KERNELS(div_floor, SL_FDIV)
POW_FAST(pow_f32, float, powg_f32v)
POW_FAST(pow_f64, double, powg_f64v)
#define pow_f16 powg_f16v
#define pow_bf16 powg_bf16v
#define SL_SET(op, pre)                                                                                         \
    (tab[op][CT_FLOAT32] = pre##_f32v, tab[op][CT_FLOAT64] = pre##_f64v, tab[op][CT_FLOAT16] = pre##_f16v,      \
     tab[op][CT_BFLOAT16] = pre##_bf16v)
#else
POW_FAST(pow_f32, float, powg_f32)
POW_FAST(pow_f64, double, powg_f64)
#define pow_f16 powg_f16
#define pow_bf16 powg_bf16
#endif

/* ---- maximum / minimum (NaN propagates), fmax / fmin (NaN ignored) ---- */
CT_BINARY_FLOATS(maximum, (a > b || a != a) ? a : b)
CT_BINARY_INTS(maximum, a > b ? a : b)
CT_BINARY_BOOL(maximum, a || b)
CT_BINARY_FLOATS(minimum, (a < b || a != a) ? a : b)
CT_BINARY_INTS(minimum, a < b ? a : b)
CT_BINARY_BOOL(minimum, a && b)
#ifdef CT_BF16_VEC
/* the half types' maximum/minimum in registers (HALF_BIN): the loops' expression as a
 * compare mask and a blend, so the same bits; 1M bfloat16 1.2-1.3x PyTorch's time before */
#define VMAXMIN512(CMP) ({ __mmask16 m_ = _mm512_cmp_ps_mask(a, b, CMP) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); \
                           _mm512_mask_blend_ps(m_, b, a); })
#define VMAXMIN256(CMP) _mm256_blendv_ps(b, a, _mm256_or_ps(_mm256_cmp_ps(a, b, CMP), _mm256_cmp_ps(a, a, _CMP_UNORD_Q)))
BF16_BIN(maximum, VMAXMIN512(_CMP_GT_OQ), VMAXMIN256(_CMP_GT_OQ), false, maximum_bf16, maximum_f16)
BF16_BIN(minimum, VMAXMIN512(_CMP_LT_OQ), VMAXMIN256(_CMP_LT_OQ), false, minimum_bf16, minimum_f16)
#endif
CT_BINARY_FLOATS(fmax, (a > b || b != b) ? a : b)
CT_BINARY_FLOATS(fmin, (a < b || b != b) ? a : b)
/* threshold_backward(grad a, self b): zero where self <= threshold (a NaN self passes
 * the gradient, as PyTorch's relu backward) */
CT_BINARY_FLOATS(threshold_bwd, b <= (__typeof__(a))p[0] ? (__typeof__(a))0 : a)
CT_BINARY_INTS(threshold_bwd, b <= (__typeof__(a))p[0] ? (__typeof__(a))0 : a)

/* ---- comparisons and logical ops: any input dtype, bool output ---- */
#define CT_BOOL_OUT_ALL(pre, EXPR)                                                                 \
    CT_BINARY_LOOP(pre##_b, bool, bool, LD_ID, ST_ID, bool, ST_ID, EXPR)                           \
    CT_BINARY_LOOP(pre##_u8, uint8_t, uint8_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                    \
    CT_BINARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                      \
    CT_BINARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                   \
    CT_BINARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                   \
    CT_BINARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, bool, ST_ID, EXPR)                   \
    CT_BINARY_LOOP(pre##_f16, ct_half, float, LD_F16, ST_F16, bool, ST_ID, EXPR)                   \
    CT_BINARY_LOOP(pre##_bf16, ct_bf16, float, LD_BF16, ST_BF16, bool, ST_ID, EXPR)                \
    CT_BINARY_LOOP(pre##_f32, float, float, LD_ID, ST_ID, bool, ST_ID, EXPR)                       \
    CT_BINARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, bool, ST_ID, EXPR)
#define CT_BOOL_OUT_COMPLEX(pre, EXPR)                                                             \
    CT_BINARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, bool, ST_ID, EXPR)                     \
    CT_BINARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, bool, ST_ID, EXPR)
#define SET_BOOL_OUT_ALL(tab, pre) \
    (tab)[CT_BOOL] = pre##_b, CT_SET_INTS(tab, pre), CT_SET_FLOATS(tab, pre)

CT_BOOL_OUT_ALL(eq, a == b) CT_BOOL_OUT_COMPLEX(eq, a == b)
CT_BOOL_OUT_ALL(ne, a != b) CT_BOOL_OUT_COMPLEX(ne, a != b)
CT_BOOL_OUT_ALL(lt, a < b)
CT_BOOL_OUT_ALL(le, a <= b)
CT_BOOL_OUT_ALL(gt, a > b)
CT_BOOL_OUT_ALL(ge, a >= b)
/* float16 comparisons and logical ops on the bits (the per-element conversion to
 * float32 kept GCC from vectorising them: 1M values 1.5 ms against PyTorch's 0.6-1.1): h as a signed 16-bit
 * integer, NaN when its magnitude bits exceed infinity's 0x7c00, and the key
 * h < 0 ? -(h & 0x7fff) : h orders the others as their values (+0 and -0 both 0),
 * computed without branches (with them, random signs cost 3.4 ms). */
#define F16_NAN(h) (((h) & 0x7fff) > 0x7c00)
#define F16_KEY(h) ((((h) & 0x7fff) ^ ((h) >> 15)) - ((h) >> 15)) /* branch-free: negated when h < 0 */
#define F16_CMP(a, b, OP) ((!F16_NAN(a) & !F16_NAN(b) & (F16_KEY(a) OP F16_KEY(b))) != 0)
CT_BINARY_LOOP(eq_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_CMP(a, b, ==))
CT_BINARY_LOOP(ne_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, !F16_CMP(a, b, ==))
CT_BINARY_LOOP(lt_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_CMP(a, b, <))
CT_BINARY_LOOP(le_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_CMP(a, b, <=))
CT_BINARY_LOOP(gt_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_CMP(a, b, >))
CT_BINARY_LOOP(ge_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_CMP(a, b, >=))
/* logical and/or/xor: x != 0 is (h & 0x7fff) != 0 (NaN is true, both zeros false) */
#define F16_TRUE(h) (((h) & 0x7fff) != 0)
CT_BINARY_LOOP(land_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_TRUE(a) & F16_TRUE(b))
CT_BINARY_LOOP(lor_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_TRUE(a) | F16_TRUE(b))
CT_BINARY_LOOP(lxor_f16_bits, int16_t, int16_t, LD_ID, ST_ID, bool, ST_ID, F16_TRUE(a) ^ F16_TRUE(b))
CT_BOOL_OUT_ALL(land, (a != 0) && (b != 0)) CT_BOOL_OUT_COMPLEX(land, (a != 0) && (b != 0))
CT_BOOL_OUT_ALL(lor, (a != 0) || (b != 0)) CT_BOOL_OUT_COMPLEX(lor, (a != 0) || (b != 0))
CT_BOOL_OUT_ALL(lxor, (a != 0) != (b != 0)) CT_BOOL_OUT_COMPLEX(lxor, (a != 0) != (b != 0))

/* ---- bitwise ops (integers and bool); shifts like PyTorch for any shift amount ---- */
CT_BINARY_INTS(band, a & b) CT_BINARY_BOOL(band, a & b)
CT_BINARY_INTS(bor, a | b) CT_BINARY_BOOL(bor, a | b)
CT_BINARY_INTS(bxor, a ^ b) CT_BINARY_BOOL(bxor, a ^ b)
#define NBITS(a) ((int64_t)sizeof(a) * 8)
/* out of range for a shift (functions keep -Wtype-limits quiet for unsigned types) */
static inline bool shift_oob(int64_t b, int64_t bits) { return b < 0 || b >= bits; }
static inline int64_t sign_fill(int64_t a) { return a < 0 ? -1 : 0; }
CT_BINARY_INTS(lshift, shift_oob(b, NBITS(a)) ? (__typeof__(a))0 : WRAP(__typeof__(a), (uint64_t)a << (int64_t)b))
CT_BINARY_INTS(rshift, shift_oob(b, NBITS(a)) ? (__typeof__(a))sign_fill(a) : (__typeof__(a))(a >> (int64_t)b))

/* ---- ternary loops: out = f(a, b, c) ----
 * Compiled per instruction set like the unary and binary loops (CT_LOOP_ATTR), so the
 * contiguous runs vectorise (lerp of 1M float32 on two threads: 2.6 -> 0.34 ms, PyTorch
 * 0.36-0.42; they were built for the baseline only). */
#define CT_TERNARY_LOOP(fname, ST, CT, LD, STO, EXPR)                                                \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {               \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        const int64_t E = (int64_t)sizeof(ST);                                                       \
        ST *o = (ST *)d[0];                                                                          \
        const ST *x = (const ST *)d[1], *y = (const ST *)d[2], *z = (const ST *)d[3];                \
        if (s[0] == E && s[1] == E && s[2] == E && s[3] == E) {                                      \
            for (int64_t i = 0; i < n; i++) { CT a = LD(x[i]), b = LD(y[i]), c = LD(z[i]); o[i] = STO(EXPR); } \
        } else if (s[0] == E && s[1] == E && s[2] == 0 && s[3] == 0) {                               \
            CT b = LD(y[0]), c = LD(z[0]);                                                           \
            for (int64_t i = 0; i < n; i++) { CT a = LD(x[i]); o[i] = STO(EXPR); }                   \
        } else if (s[0] == E && s[1] == E && s[2] == E && s[3] == 0) {                               \
            CT c = LD(z[0]);                                                                         \
            for (int64_t i = 0; i < n; i++) { CT a = LD(x[i]), b = LD(y[i]); o[i] = STO(EXPR); }     \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                CT a = LD(*(const ST *)(d[1] + i * s[1])), b = LD(*(const ST *)(d[2] + i * s[2])),   \
                   c = LD(*(const ST *)(d[3] + i * s[3]));                                           \
                *(ST *)(d[0] + i * s[0]) = STO(EXPR);                                                \
            }                                                                                        \
        }                                                                                            \
    }
/* float16 / bfloat16 (DT): contiguous runs, each input also possibly one broadcast
 * value, through float32 blocks (the row conversions, as CT_BINARY_LOOP_F16); the
 * element by element conversions kept these loops scalar (1M float16 on two threads:
 * addcmul 7.1 -> 0.21-0.28 ms, lerp 8.8 -> 0.24-0.36, clamp 7.3 -> 0.19-0.29; PyTorch
 * 0.15-0.22, 0.18-0.27, 0.19-0.29) */
#define CT_TERNARY_LOOP_HALF(fname, ST, DT, LD, STO, EXPR)                                           \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {               \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        if (n > 0 && s[0] == 2 && (s[1] == 2 || s[1] == 0) && (s[2] == 2 || s[2] == 0) &&            \
            (s[3] == 2 || s[3] == 0)) {                                                              \
            const ST *x = (const ST *)d[1], *y = (const ST *)d[2], *z = (const ST *)d[3];            \
            ST *o = (ST *)d[0];                                                                      \
            float xa_[CT_F16_BLOCK], ya_[CT_F16_BLOCK], za_[CT_F16_BLOCK], t_[CT_F16_BLOCK];         \
            for (int j_ = 0; j_ < CT_F16_BLOCK; j_++) /* a broadcast operand's one value */          \
                xa_[j_] = s[1] ? 0.f : LD(x[0]), ya_[j_] = s[2] ? 0.f : LD(y[0]),                    \
                za_[j_] = s[3] ? 0.f : LD(z[0]);                                                     \
            for (int64_t b_ = 0; b_ < n; b_ += CT_F16_BLOCK) {                                       \
                int64_t m_ = n - b_ < CT_F16_BLOCK ? n - b_ : CT_F16_BLOCK;                          \
                if (s[1]) ct__half_widen(DT, xa_, x + b_, m_);                                       \
                if (s[2]) ct__half_widen(DT, ya_, y + b_, m_);                                       \
                if (s[3]) ct__half_widen(DT, za_, z + b_, m_);                                       \
                for (int64_t j_ = 0; j_ < m_; j_++) {                                                \
                    float a = xa_[j_], b = ya_[j_], c = za_[j_];                                     \
                    t_[j_] = (EXPR);                                                                 \
                }                                                                                    \
                ct__half_narrow(DT, o + b_, t_, m_);                                                 \
            }                                                                                        \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                float a = LD(*(const ST *)(d[1] + i * s[1])), b = LD(*(const ST *)(d[2] + i * s[2])), \
                      c = LD(*(const ST *)(d[3] + i * s[3]));                                        \
                *(ST *)(d[0] + i * s[0]) = STO(EXPR);                                                \
            }                                                                                        \
        }                                                                                            \
    }
#define CT_TERNARY_FLOATS(pre, EXPR)                                        \
    CT_TERNARY_LOOP_HALF(pre##_f16, ct_half, CT_FLOAT16, LD_F16, ST_F16, EXPR) \
    CT_TERNARY_LOOP_HALF(pre##_bf16, ct_bf16, CT_BFLOAT16, LD_BF16, ST_BF16, EXPR) \
    CT_TERNARY_LOOP(pre##_f32, float, float, LD_ID, ST_ID, EXPR)             \
    CT_TERNARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, EXPR)
#define CT_TERNARY_INTS(pre, EXPR)                                   \
    CT_TERNARY_LOOP(pre##_u8, uint8_t, uint8_t, LD_ID, ST_ID, EXPR)   \
    CT_TERNARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, EXPR)     \
    CT_TERNARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, EXPR)  \
    CT_TERNARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, EXPR)  \
    CT_TERNARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, EXPR)
#define CT_TERNARY_COMPLEX(pre, EXPR)                                \
    CT_TERNARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, EXPR)    \
    CT_TERNARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, EXPR)

/* lerp(start a, end b, weight c), PyTorch's two-sided formula */
#define LERP_EXPR (G_ABS(c) < (__typeof__(G_ABS(c)))0.5 ? a + c * (b - a) : b - (b - a) * (1 - c))
CT_TERNARY_FLOATS(lerp, LERP_EXPR)
CT_TERNARY_COMPLEX(lerp, LERP_EXPR)
/* addcmul / addcdiv: a + value * b * c, a + value * b / c (value in p[0]) */
CT_TERNARY_FLOATS(addcmul, a + (__typeof__(a))p[0] * b * c)
CT_TERNARY_INTS(addcmul, WRAP(__typeof__(a), (uint64_t)a + (uint64_t)(int64_t)p[0] * (uint64_t)b * (uint64_t)c))
CT_TERNARY_COMPLEX(addcmul, a + p[0] * b * c)
CT_TERNARY_FLOATS(addcdiv, a + (__typeof__(a))p[0] * b / c)
CT_TERNARY_COMPLEX(addcdiv, a + p[0] * b / c)
/* clamp(x a, min b, max c): NaN in any operand propagates; min > max gives max */
#define CLAMP_F ({ __typeof__(a) m_ = (a > b || a != a) ? a : b; (m_ < c || m_ != m_) ? m_ : c; })
CT_TERNARY_FLOATS(clamp, CLAMP_F)
CT_TERNARY_INTS(clamp, ({ __typeof__(a) m_ = a > b ? a : b; m_ < c ? m_ : c; }))

static ct_loop_fn tab[CT_OP_COUNT][CT_NUM_DTYPES];

static int cpu_binary(const ct_kernel_args *a) { return ct__cpu_run_loop(a, tab[a->op], a->d); }

/* Integer division-like ops: a zero divisor is an error (PyTorch's ZeroDivisionError). */
typedef struct {
    int64_t size;
    atomic_int found;
} zero_scan;
static void scan_zero(char **d, const int64_t *s, int64_t n, void *ctx) {
    zero_scan *z = ctx;
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *e = (const unsigned char *)(d[0] + i * s[0]);
        bool zero = true;
        for (int64_t k = 0; k < z->size; k++) zero &= e[k] == 0;
        if (zero) { atomic_store(&z->found, 1); return; }
    }
}
static int cpu_int_div(const ct_kernel_args *a) {
    const ct_tensor *b = a->in[1];
    if (ct_dtype_is_integral(b->dtype, true) && b->numel > 0 && a->out[0]->numel > 0) {
        ct_iter it;
        if (ct__iter_build(&it, 1, 1, (const ct_tensor *[]){b})) return ct_last_status();
        zero_scan z = {.size = (int64_t)ct_dtype_size(b->dtype)};
        atomic_init(&z.found, 0);
        ct__iter_run(&it, scan_zero, &z, 0);
        if (atomic_load(&z.found)) return ct__errs(CT_ERR_RUNTIME, "%s: ZeroDivisionError", ct__op_name(a->op));
    }
    return cpu_binary(a);
}

/* where(cond, a, b): selection by element size, as a bit mask (m = 0 - cond: all ones or
 * zero) so the contiguous loops vectorise; a `c ? x : y` with conditional loads
 * compiles to a branch, and a random mask makes every other one mispredict. */
#define WHERE_SEL(c, xv, yv, T) (((xv) & ((T)0 - (T)(c))) | ((yv) & ~((T)0 - (T)(c))))
#define WHERE_LOOP(fname, T)                                                                        \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {              \
        (void)ctx;                                                                                  \
        const int64_t E = (int64_t)sizeof(T);                                                       \
        T *restrict o = (T *)d[0];                                                                  \
        const uint8_t *restrict c = (const uint8_t *)d[1];                                          \
        const T *restrict x = (const T *)d[2], *restrict y = (const T *)d[3];                       \
        if (s[0] == E && s[1] == 1 && s[2] == E && s[3] == E) {                                     \
            for (int64_t i = 0; i < n; i++) o[i] = WHERE_SEL(c[i] != 0, x[i], y[i], T);             \
        } else if (s[0] == E && s[1] == 1 && s[2] == E && s[3] == 0) { /* where(m, g, 0) */         \
            const T yv = y[0];                                                                      \
            for (int64_t i = 0; i < n; i++) o[i] = WHERE_SEL(c[i] != 0, x[i], yv, T);               \
        } else if (s[0] == E && s[1] == 1 && s[2] == 0 && s[3] == E) {                              \
            const T xv = x[0];                                                                      \
            for (int64_t i = 0; i < n; i++) o[i] = WHERE_SEL(c[i] != 0, xv, y[i], T);               \
        } else if (s[0] == E && s[1] == 1 && s[2] == 0 && s[3] == 0) { /* dropout: where(m, v, 0) */ \
            const T xv = x[0], yv = y[0];                                                           \
            for (int64_t i = 0; i < n; i++) o[i] = WHERE_SEL(c[i] != 0, xv, yv, T);                 \
        } else {                                                                                    \
            for (int64_t i = 0; i < n; i++)                                                         \
                *(T *)(d[0] + i * s[0]) = *(const bool *)(d[1] + i * s[1]) ? *(const T *)(d[2] + i * s[2]) \
                                                                            : *(const T *)(d[3] + i * s[3]); \
        }                                                                                           \
    }
WHERE_LOOP(where_1, uint8_t)
WHERE_LOOP(where_2, uint16_t)
WHERE_LOOP(where_4, uint32_t)
WHERE_LOOP(where_8, uint64_t)

typedef struct { uint64_t lo, hi; } u128_t;
static void where_16(char **d, const int64_t *s, int64_t n, void *ctx) {
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        *(u128_t *)(d[0] + i * s[0]) = *(const bool *)(d[1] + i * s[1]) ? *(const u128_t *)(d[2] + i * s[2])
                                                                        : *(const u128_t *)(d[3] + i * s[3]);
}

static int cpu_where(const ct_kernel_args *a) {
    ct_loop_fn fn;
    switch (ct_dtype_size(a->out[0]->dtype)) {
    case 1: fn = where_1; break;
    case 2: fn = where_2; break;
    case 4: fn = where_4; break;
    case 8: fn = where_8; break;
    case 16: fn = where_16; break;
    default: return ct__errs(CT_ERR_DTYPE, "where: not implemented for '%s'", ct_dtype_name(a->out[0]->dtype));
    }
    if (a->out[0]->numel == 0) return 0;
    ct_iter it;
    if (ct__iter_build_any_order(&it, 4, 1, (const ct_tensor *[]){a->out[0], a->in[0], a->in[1], a->in[2]})) return ct_last_status();
    ct__iter_run(&it, fn, NULL, 0);
    return 0;
}

void ct_cpu_register_binary(ct_kernel_fn *k) {
    CT_SET_FLOATS(tab[CT_OP_ADD], add); CT_SET_INTS(tab[CT_OP_ADD], add); CT_SET_COMPLEX(tab[CT_OP_ADD], add);
    tab[CT_OP_ADD][CT_BOOL] = add_b;
    CT_SET_FLOATS(tab[CT_OP_SUB], sub); CT_SET_INTS(tab[CT_OP_SUB], sub); CT_SET_COMPLEX(tab[CT_OP_SUB], sub);
    CT_SET_FLOATS(tab[CT_OP_MUL], mul); CT_SET_INTS(tab[CT_OP_MUL], mul); CT_SET_COMPLEX(tab[CT_OP_MUL], mul);
    tab[CT_OP_MUL][CT_BOOL] = mul_b;
    CT_SET_FLOATS(tab[CT_OP_DIV], div); CT_SET_COMPLEX(tab[CT_OP_DIV], div);
    tab[CT_OP_MUL][CT_FLOAT16] = mul_f16_scal;
    tab[CT_OP_DIV][CT_FLOAT16] = div_f16_scal;
    tab[CT_OP_MUL][CT_BFLOAT16] = mul_bf16_scal;
    tab[CT_OP_DIV][CT_BFLOAT16] = div_bf16_scal;
#ifdef CT_BF16_VEC
    bin_isa = ct__cpu_isa() == CT_ISA_AVX512 ? 2 : ct__cpu_isa() == CT_ISA_AVX2 ? 1 : 0;
    tab[CT_OP_ADD][CT_BFLOAT16] = add_bf16_vec;
    tab[CT_OP_SUB][CT_BFLOAT16] = sub_bf16_vec;
    tab[CT_OP_MUL][CT_BFLOAT16] = mul_bf16_vec;
    tab[CT_OP_DIV][CT_BFLOAT16] = div_bf16_vec;
    tab[CT_OP_ADD][CT_FLOAT16] = add_f16_vec;
    tab[CT_OP_SUB][CT_FLOAT16] = sub_f16_vec;
    tab[CT_OP_MUL][CT_FLOAT16] = mul_f16_vec;
    tab[CT_OP_DIV][CT_FLOAT16] = div_f16_vec;
#endif
    CT_SET_FLOATS(tab[CT_OP_DIV_TRUNC], div_trunc); CT_SET_INTS(tab[CT_OP_DIV_TRUNC], div_trunc);
    CT_SET_FLOATS(tab[CT_OP_DIV_FLOOR], div_floor); CT_SET_INTS(tab[CT_OP_DIV_FLOOR], div_floor);
    CT_SET_FLOATS(tab[CT_OP_FMOD], fmod); CT_SET_INTS(tab[CT_OP_FMOD], fmod);
    CT_SET_FLOATS(tab[CT_OP_REMAINDER], remainder); CT_SET_INTS(tab[CT_OP_REMAINDER], remainder);
    CT_SET_FLOATS(tab[CT_OP_POW], pow); CT_SET_INTS(tab[CT_OP_POW], pow); CT_SET_COMPLEX(tab[CT_OP_POW], pow);
    tab[CT_OP_POW][CT_BOOL] = pow_b;
    CT_SET_FLOATS(tab[CT_OP_ATAN2], atan2);
    CT_SET_FLOATS(tab[CT_OP_HYPOT], hypot);
#if defined(CT_BF16_VEC) && defined(CT_HAVE_SLEEF_X86)
    SL_SET(CT_OP_ATAN2, atan2);
    SL_SET(CT_OP_HYPOT, hypot);
    SL_SET(CT_OP_FMOD, fmod);
    SL_SET(CT_OP_REMAINDER, remainder);
    SL_SET(CT_OP_DIV_FLOOR, div_floor);
#endif
    CT_SET_FLOATS(tab[CT_OP_XLOGY], xlogy);
    CT_SET_FLOATS(tab[CT_OP_LOGADDEXP], logaddexp); CT_SET_COMPLEX(tab[CT_OP_LOGADDEXP], logaddexp);
    CT_SET_FLOATS(tab[CT_OP_LOGADDEXP2], logaddexp2);
    CT_SET_FLOATS(tab[CT_OP_COPYSIGN], copysign);
#if defined(CT_BF16_VEC) && defined(CT_HAVE_SLEEF_X86)
    SL_SET(CT_OP_LOGADDEXP, logaddexp);
    SL_SET(CT_OP_LOGADDEXP2, logaddexp2);
#endif
    CT_SET_FLOATS(tab[CT_OP_MAXIMUM], maximum); CT_SET_INTS(tab[CT_OP_MAXIMUM], maximum);
    tab[CT_OP_MAXIMUM][CT_BOOL] = maximum_b;
    CT_SET_FLOATS(tab[CT_OP_MINIMUM], minimum); CT_SET_INTS(tab[CT_OP_MINIMUM], minimum);
#ifdef CT_BF16_VEC
    tab[CT_OP_MAXIMUM][CT_BFLOAT16] = maximum_bf16_vec, tab[CT_OP_MAXIMUM][CT_FLOAT16] = maximum_f16_vec;
    tab[CT_OP_MINIMUM][CT_BFLOAT16] = minimum_bf16_vec, tab[CT_OP_MINIMUM][CT_FLOAT16] = minimum_f16_vec;
#endif
    tab[CT_OP_MINIMUM][CT_BOOL] = minimum_b;
    /* fmax/fmin on integers and bool are maximum/minimum */
    CT_SET_FLOATS(tab[CT_OP_FMAX], fmax); CT_SET_INTS(tab[CT_OP_FMAX], maximum); tab[CT_OP_FMAX][CT_BOOL] = maximum_b;
    CT_SET_FLOATS(tab[CT_OP_FMIN], fmin); CT_SET_INTS(tab[CT_OP_FMIN], minimum); tab[CT_OP_FMIN][CT_BOOL] = minimum_b;
    CT_SET_FLOATS(tab[CT_OP_THRESHOLD_BACKWARD], threshold_bwd); CT_SET_INTS(tab[CT_OP_THRESHOLD_BACKWARD], threshold_bwd);
    SET_BOOL_OUT_ALL(tab[CT_OP_EQ], eq); CT_SET_COMPLEX(tab[CT_OP_EQ], eq);
    SET_BOOL_OUT_ALL(tab[CT_OP_NE], ne); CT_SET_COMPLEX(tab[CT_OP_NE], ne);
    SET_BOOL_OUT_ALL(tab[CT_OP_LT], lt);
    SET_BOOL_OUT_ALL(tab[CT_OP_LE], le);
    SET_BOOL_OUT_ALL(tab[CT_OP_GT], gt);
    SET_BOOL_OUT_ALL(tab[CT_OP_GE], ge);
    tab[CT_OP_EQ][CT_FLOAT16] = eq_f16_bits, tab[CT_OP_NE][CT_FLOAT16] = ne_f16_bits;
    tab[CT_OP_LT][CT_FLOAT16] = lt_f16_bits, tab[CT_OP_LE][CT_FLOAT16] = le_f16_bits;
    tab[CT_OP_GT][CT_FLOAT16] = gt_f16_bits, tab[CT_OP_GE][CT_FLOAT16] = ge_f16_bits;
    SET_BOOL_OUT_ALL(tab[CT_OP_LOGICAL_AND], land); CT_SET_COMPLEX(tab[CT_OP_LOGICAL_AND], land);
    SET_BOOL_OUT_ALL(tab[CT_OP_LOGICAL_OR], lor); CT_SET_COMPLEX(tab[CT_OP_LOGICAL_OR], lor);
    SET_BOOL_OUT_ALL(tab[CT_OP_LOGICAL_XOR], lxor); CT_SET_COMPLEX(tab[CT_OP_LOGICAL_XOR], lxor);
    tab[CT_OP_LOGICAL_AND][CT_FLOAT16] = land_f16_bits, tab[CT_OP_LOGICAL_OR][CT_FLOAT16] = lor_f16_bits;
    tab[CT_OP_LOGICAL_XOR][CT_FLOAT16] = lxor_f16_bits;
    CT_SET_INTS(tab[CT_OP_BITWISE_AND], band); tab[CT_OP_BITWISE_AND][CT_BOOL] = band_b;
    CT_SET_INTS(tab[CT_OP_BITWISE_OR], bor); tab[CT_OP_BITWISE_OR][CT_BOOL] = bor_b;
    CT_SET_INTS(tab[CT_OP_BITWISE_XOR], bxor); tab[CT_OP_BITWISE_XOR][CT_BOOL] = bxor_b;
    CT_SET_INTS(tab[CT_OP_BITWISE_LSHIFT], lshift);
    CT_SET_INTS(tab[CT_OP_BITWISE_RSHIFT], rshift);
    CT_SET_FLOATS(tab[CT_OP_LERP], lerp); CT_SET_COMPLEX(tab[CT_OP_LERP], lerp);
    CT_SET_FLOATS(tab[CT_OP_ADDCMUL], addcmul); CT_SET_INTS(tab[CT_OP_ADDCMUL], addcmul);
    CT_SET_COMPLEX(tab[CT_OP_ADDCMUL], addcmul);
    CT_SET_FLOATS(tab[CT_OP_ADDCDIV], addcdiv); CT_SET_COMPLEX(tab[CT_OP_ADDCDIV], addcdiv);
    CT_SET_FLOATS(tab[CT_OP_CLAMP], clamp); CT_SET_INTS(tab[CT_OP_CLAMP], clamp);
    for (int op = 0; op < CT_OP_COUNT; op++)
        for (int d = 0; d < CT_NUM_DTYPES; d++)
            if (tab[op][d]) { k[op] = cpu_binary; break; }
    k[CT_OP_DIV_TRUNC] = k[CT_OP_DIV_FLOOR] = k[CT_OP_FMOD] = k[CT_OP_REMAINDER] = cpu_int_div;
    k[CT_OP_WHERE] = cpu_where;
}
