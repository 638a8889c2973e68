/* CPU kernels for the sampling ops (UNIFORM, NORMAL, BERNOULLI, RANDINT), drawing from
 * a ct_generator exactly as PyTorch's CPU kernels do, so that the same seed gives the
 * same values. The argument contract is described at the top of src/core/random.c: the
 * front end holds the generator's lock, passes it in i[5] and fixes the element order
 * in iv (dims fastest-first). The draws are sequential by nature (one Mersenne Twister
 * stream), so these kernels run on one thread.
 *
 * Arithmetic follows torch's compiled code, including the fused multiply-adds GCC
 * forms when it builds torch's AVX2/AVX-512 kernels (x*(to-from)+from and
 * normal*std+mean are single-rounding fmas there); that is what makes the float results
 * bit-identical rather than within an ulp. */
#include <math.h>

#include "core/dispatch.h"
#include "core/random_internal.h"
#include "cpu/loops.h"
#include "ctorch/random.h"

/* The generator interface (src/core/random.c); the caller holds the lock. */

static ct_generator *gen_of(const ct_kernel_args *a) { return (ct_generator *)(intptr_t)a->i[5]; }

/* ---- element order: an odometer over dims in the front end's order ---- */
typedef struct {
    int nd;
    int64_t size[CT_MAX_DIMS + 1], stride[CT_MAX_DIMS + 1], idx[CT_MAX_DIMS + 1]; /* fastest first; bytes */
    char *p;
} walk;

static void walk_init(walk *w, const ct_tensor *t, const ct_tensor *order, const ct_kernel_args *a) {
    size_t es = ct_dtype_size(t->dtype);
    w->nd = 0;
    for (int k = 0; k < a->n_iv; k++) {
        int d = (int)a->iv[k];
        if (order->sizes[d] == 1) continue;
        w->size[w->nd] = order->sizes[d];
        w->stride[w->nd] = t->strides[d] * (int64_t)es;
        w->idx[w->nd] = 0;
        w->nd++;
    }
    w->p = ct__data(t);
}

/* true when the walk visits consecutive elements (fastest dim stride es, each next dim
 * the product of the ones before) */
static bool walk_dense(const walk *w, int64_t es) {
    int64_t want = es;
    for (int d = 0; d < w->nd; d++) {
        if (w->stride[d] != want) return false;
        want *= w->size[d];
    }
    return true;
}

static inline void walk_next(walk *w) {
    for (int d = 0; d < w->nd; d++) {
        w->p += w->stride[d];
        if (++w->idx[d] < w->size[d]) return;
        w->p -= w->stride[d] * w->size[d];
        w->idx[d] = 0;
    }
}

/* ---- uniform numbers as torch's uniform_real_distribution makes them ---- */
static inline float unit_f32(ct_generator *g) { return (float)(ct__gen_random(g) & 0xffffffu) * 0x1p-24f; }
static inline double unit_f64(ct_generator *g) {
    return (double)(ct__gen_random64(g) & 0x1fffffffffffffull) * 0x1p-53;
}

static inline float half_round(float v) { return ct_half_to_float(ct_float_to_half(v)); }
static inline float bf16_round(float v) { return ct_bf16_to_float(ct_float_to_bf16(v)); }
/* static_cast<Half>(double) / <BFloat16>(double): through float */
static inline float round16(ct_dtype dt, double v) { return dt == CT_FLOAT16 ? half_round((float)v) : bf16_round((float)v); }
static inline void store16(void *p, ct_dtype dt, float v) {
    if (dt == CT_FLOAT16) *(ct_half *)p = ct_float_to_half(v);
    else *(ct_bf16 *)p = ct_float_to_bf16(v);
}

static int uniform_kernel(const ct_kernel_args *a) {
    ct_tensor *t = a->out[0];
    ct_generator *g = gen_of(a);
    walk w;
    walk_init(&w, t, t, a);
    int64_t n = t->numel;
    switch (t->dtype) {
    case CT_FLOAT32: {
        float from = (float)a->d[0], range = (float)a->d[1] - from;
        for (int64_t k = 0; k < n; k++, walk_next(&w)) *(float *)w.p = fmaf(unit_f32(g), range, from);
        break;
    }
    case CT_FLOAT64: {
        double from = a->d[0], range = a->d[1] - from;
        for (int64_t k = 0; k < n; k++, walk_next(&w)) *(double *)w.p = fma(unit_f64(g), range, from);
        break;
    }
    case CT_FLOAT16:
    case CT_BFLOAT16: {
        /* torch draws as for float32 and rounds; a value that rounds up to `to` (in the
         * 16-bit type) is replaced by `from`, keeping the range half-open */
        ct_dtype dt = t->dtype;
        float from = (float)a->d[0], range = (float)a->d[1] - from;
        float to16 = round16(dt, a->d[1]), from16 = round16(dt, a->d[0]);
        for (int64_t k = 0; k < n; k++, walk_next(&w)) {
            float v = round16(dt, fmaf(unit_f32(g), range, from));
            store16(w.p, dt, v >= to16 ? from16 : v);
        }
        break;
    }
    default:
        return ct__errs(CT_ERR_DTYPE, "uniform_: not implemented for dtype %s", ct_dtype_name(t->dtype));
    }
    return 0;
}

/* ---- normal ---- */
/* One standard normal in double (torch's normal_distribution<double>): Box-Muller on
 * two float64 uniforms; the sine half is cached in the generator for the next call. */
static double normal_f64(ct_generator *g) {
    double v;
    if (ct__gen_take_normal(g, &v)) return v;
    double u1 = unit_f64(g), u2 = unit_f64(g);
    double r = sqrt(-2.0 * log1p(-u2)), theta = 2.0 * M_PI * u1;
    ct__gen_put_normal(g, r * sin(theta));
    return r * cos(theta);
}

/* PyTorch's AVX2 normal kernel (avx_mathfun.h, Cephes polynomials) evaluated one lane
 * at a time, with the fmas its compiled form uses. */
static float cephes_logf(float x) {
    if (!(x > 0)) return NAN; /* only (0, 1] reaches here */
    if (x < 0x1p-126f) x = 0x1p-126f;
    uint32_t bits;
    memcpy(&bits, &x, 4);
    float e = (float)((int32_t)(bits >> 23) - 0x7f) + 1.0f;
    bits = (bits & ~0x7f800000u) | 0x3f000000u; /* mantissa in [0.5, 1) */
    memcpy(&x, &bits, 4);
    bool below = x < 0.707106781186547524f;
    float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = 7.0376836292e-2f;
    y = fmaf(y, x, -1.1514610310e-1f);
    y = fmaf(y, x, 1.1676998740e-1f);
    y = fmaf(y, x, -1.2420140846e-1f);
    y = fmaf(y, x, 1.4249322787e-1f);
    y = fmaf(y, x, -1.6668057665e-1f);
    y = fmaf(y, x, 2.0000714765e-1f);
    y = fmaf(y, x, -2.4999993993e-1f);
    y = fmaf(y, x, 3.3333331174e-1f);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    return fmaf(e, 0.693359375f, x + y);
}

static void cephes_sincosf(float x, float *s, float *c) {
    uint32_t xb;
    memcpy(&xb, &x, 4);
    uint32_t sign_sin = xb & 0x80000000u;
    xb &= 0x7fffffffu;
    memcpy(&x, &xb, 4);
    int32_t j = (int32_t)(x * 1.27323954473516f); /* 4 / pi */
    j = (j + 1) & ~1;
    float y = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    bool poly_sin = (j & 2) == 0;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = 2.443315711809948e-5f;
    yc = fmaf(yc, z, -1.388731625493765e-3f);
    yc = fmaf(yc, z, 4.166664568298827e-2f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = -1.9515295891e-4f;
    ys = fmaf(ys, z, 8.3321608736e-3f);
    ys = fmaf(ys, z, -1.6666654611e-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    /* torch selects with masks and adds: keep its exact operations (signs of zero) */
    float ys2 = poly_sin ? ys : 0.0f, ys1 = poly_sin ? 0.0f : yc;
    ys = ys - ys2;
    yc = yc - ys1;
    float sv = ys1 + ys2, cv = yc + ys;
    uint32_t b;
    memcpy(&b, &sv, 4);
    b ^= sign_sin;
    memcpy(s, &b, 4);
    memcpy(&b, &cv, 4);
    b ^= sign_cos;
    memcpy(c, &b, 4);
}

static void normal16_f32(float *d, float mean, float std) {
    const float two_pi = (float)(2.0 * M_PI);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float s, c;
        cephes_sincosf(two_pi * u2, &s, &c);
        d[j] = fmaf(radius * c, std, mean);
        d[j + 8] = fmaf(radius * s, std, mean);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_RANDOM_AVX2 1
/* The same kernel eight lanes at a time, for CPUs with AVX2 and FMA (bit-identical to
 * the scalar form above, and to torch's normal_fill_16_AVX2). */
#define PS(v) _mm256_set1_ps(v)
#define PI32(v) _mm256_set1_epi32(v)
__attribute__((target("avx2,fma"))) static __m256 log_avx2(__m256 x) {
    __m256 one = PS(1.0f);
    __m256 invalid = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OS);
    x = _mm256_max_ps(x, _mm256_castsi256_ps(PI32(0x00800000)));
    __m256i imm0 = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    x = _mm256_and_ps(x, _mm256_castsi256_ps(PI32(~0x7f800000)));
    x = _mm256_or_ps(x, PS(0.5f));
    __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(imm0, PI32(0x7f))), one);
    __m256 mask = _mm256_cmp_ps(x, PS(0.707106781186547524f), _CMP_LT_OS);
    __m256 tmp = _mm256_and_ps(x, mask);
    x = _mm256_sub_ps(x, one);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, mask));
    x = _mm256_add_ps(x, tmp);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = PS(7.0376836292e-2f);
    y = _mm256_fmadd_ps(y, x, PS(-1.1514610310e-1f));
    y = _mm256_fmadd_ps(y, x, PS(1.1676998740e-1f));
    y = _mm256_fmadd_ps(y, x, PS(-1.2420140846e-1f));
    y = _mm256_fmadd_ps(y, x, PS(1.4249322787e-1f));
    y = _mm256_fmadd_ps(y, x, PS(-1.6668057665e-1f));
    y = _mm256_fmadd_ps(y, x, PS(2.0000714765e-1f));
    y = _mm256_fmadd_ps(y, x, PS(-2.4999993993e-1f));
    y = _mm256_fmadd_ps(y, x, PS(3.3333331174e-1f));
    y = _mm256_mul_ps(y, x);
    y = _mm256_fmadd_ps(y, z, _mm256_mul_ps(e, PS(-2.12194440e-4f)));
    y = _mm256_fnmadd_ps(z, PS(0.5f), y);
    x = _mm256_fmadd_ps(e, PS(0.693359375f), _mm256_add_ps(x, y));
    return _mm256_or_ps(x, invalid);
}

__attribute__((target("avx2,fma"))) static void sincos_avx2(__m256 x, __m256 *s, __m256 *c) {
    __m256 sign_sin = _mm256_and_ps(x, _mm256_castsi256_ps(PI32((int)0x80000000)));
    x = _mm256_and_ps(x, _mm256_castsi256_ps(PI32(0x7fffffff)));
    __m256i j = _mm256_cvttps_epi32(_mm256_mul_ps(x, PS(1.27323954473516f)));
    j = _mm256_and_si256(_mm256_add_epi32(j, PI32(1)), PI32(~1));
    __m256 y = _mm256_cvtepi32_ps(j);
    __m256 swap_sin = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(j, PI32(4)), 29));
    __m256 poly = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(j, PI32(2)), _mm256_setzero_si256()));
    x = _mm256_fmadd_ps(y, PS(-0.78515625f), x);
    x = _mm256_fmadd_ps(y, PS(-2.4187564849853515625e-4f), x);
    x = _mm256_fmadd_ps(y, PS(-3.77489497744594108e-8f), x);
    __m256 sign_cos = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_andnot_si256(_mm256_sub_epi32(j, PI32(2)), PI32(4)), 29));
    sign_sin = _mm256_xor_ps(sign_sin, swap_sin);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 yc = PS(2.443315711809948e-5f);
    yc = _mm256_fmadd_ps(yc, z, PS(-1.388731625493765e-3f));
    yc = _mm256_fmadd_ps(yc, z, PS(4.166664568298827e-2f));
    yc = _mm256_mul_ps(yc, z);
    yc = _mm256_fmsub_ps(yc, z, _mm256_mul_ps(z, PS(0.5f)));
    yc = _mm256_add_ps(yc, PS(1.0f));
    __m256 ys = PS(-1.9515295891e-4f);
    ys = _mm256_fmadd_ps(ys, z, PS(8.3321608736e-3f));
    ys = _mm256_fmadd_ps(ys, z, PS(-1.6666654611e-1f));
    ys = _mm256_mul_ps(ys, z);
    ys = _mm256_fmadd_ps(ys, x, x);
    __m256 ys2 = _mm256_and_ps(poly, ys), ys1 = _mm256_andnot_ps(poly, yc);
    ys = _mm256_sub_ps(ys, ys2);
    yc = _mm256_sub_ps(yc, ys1);
    *s = _mm256_xor_ps(_mm256_add_ps(ys1, ys2), sign_sin);
    *c = _mm256_xor_ps(_mm256_add_ps(yc, ys), sign_cos);
}

__attribute__((target("avx2,fma"))) static void normal16_f32_avx2(float *d, float mean, float std) {
    __m256 u1 = _mm256_sub_ps(PS(1.0f), _mm256_loadu_ps(d)), u2 = _mm256_loadu_ps(d + 8);
    __m256 radius = _mm256_sqrt_ps(_mm256_mul_ps(PS(-2.0f), log_avx2(u1)));
    __m256 s, c;
    sincos_avx2(_mm256_mul_ps(PS((float)(2.0 * M_PI)), u2), &s, &c);
    _mm256_storeu_ps(d, _mm256_fmadd_ps(_mm256_mul_ps(radius, c), PS(std), PS(mean)));
    _mm256_storeu_ps(d + 8, _mm256_fmadd_ps(_mm256_mul_ps(radius, s), PS(std), PS(mean)));
}
#undef PS
#undef PI32
#endif

typedef void (*normal16_fn)(float *d, float mean, float std);
static normal16_fn pick_normal16(void) {
#ifdef CT_RANDOM_AVX2
    if (ct__cpu_isa() >= CT_ISA_AVX2) return normal16_f32_avx2;
#endif
    return normal16_f32;
}

static void normal16_f64(double *d, double mean, double std) {
    for (int j = 0; j < 8; j++) {
        double u1 = 1 - d[j], u2 = d[j + 8];
        double radius = sqrt(-2 * log(u1)), theta = 2.0 * M_PI * u2;
        d[j] = fma(radius * cos(theta), std, mean);
        d[j + 8] = fma(radius * sin(theta), std, mean);
    }
}

static int normal_kernel(const ct_kernel_args *a) {
    ct_tensor *t = a->out[0];
    ct_generator *g = gen_of(a);
    ct_dtype dt = t->dtype;
    int64_t n = t->numel;
    double mean = a->d[0], std = a->d[1];
    if (dt != CT_FLOAT32 && dt != CT_FLOAT64 && dt != CT_FLOAT16 && dt != CT_BFLOAT16)
        return ct__errs(CT_ERR_DTYPE, "normal_: not implemented for dtype %s", ct_dtype_name(dt));
    if (n >= 16 && ct__is_contiguous(t)) {
        /* torch's normal_fill: all uniforms first, then Box-Muller 16 at a time; a
         * partial last block is recomputed over the last 16 elements from new draws */
        normal16_fn normal16 = pick_normal16();
        if (dt == CT_FLOAT32) {
            float *d = ct__data(t), m = (float)mean, s = (float)std;
            for (int64_t k = 0; k < n; k++) d[k] = unit_f32(g);
            for (int64_t k = 0; k + 16 <= n; k += 16) normal16(d + k, m, s);
            if (n % 16) {
                float *e = d + n - 16;
                for (int k = 0; k < 16; k++) e[k] = unit_f32(g);
                normal16(e, m, s);
            }
        } else if (dt == CT_FLOAT64) {
            double *d = ct__data(t);
            for (int64_t k = 0; k < n; k++) d[k] = unit_f64(g);
            for (int64_t k = 0; k + 16 <= n; k += 16) normal16_f64(d + k, mean, std);
            if (n % 16) {
                double *e = d + n - 16;
                for (int k = 0; k < 16; k++) e[k] = unit_f64(g);
                normal16_f64(e, mean, std);
            }
        } else {
            /* 16-bit: float32's math in a float block of 16, rounded on store; the
             * uniforms are drawn block by block (the last partial block draws 16) */
            float m = (float)mean, s = (float)std, blk[16];
            char *base = ct__data(t);
            for (int64_t k = 0; k + 16 <= n; k += 16) {
                for (int q = 0; q < 16; q++) blk[q] = unit_f32(g);
                normal16(blk, m, s);
                for (int q = 0; q < 16; q++) store16(base + 2 * (k + q), dt, blk[q]);
            }
            if (n % 16) {
                for (int q = 0; q < 16; q++) blk[q] = unit_f32(g);
                normal16(blk, m, s);
                for (int q = 0; q < 16; q++) store16(base + 2 * (n - 16 + q), dt, blk[q]);
            }
        }
        return 0;
    }
    /* element by element in double */
    walk w;
    walk_init(&w, t, t, a);
    for (int64_t k = 0; k < n; k++, walk_next(&w)) {
        double v = fma(normal_f64(g), std, mean);
        switch (dt) {
        case CT_FLOAT32: *(float *)w.p = (float)v; break;
        case CT_FLOAT64: *(double *)w.p = v; break;
        default: store16(w.p, dt, (float)v); break;
        }
    }
    return 0;
}


/* ---- bernoulli ---- */
/* unit_f64(g) < p for m draws at once, from their 2m words (high word first, as
 * ct__gen_random64): with d the low 53 bits of a draw, d * 2^-53 < p exactly when
 * d < T = ceil(p * 2^53) (d and p * 2^53 are exact doubles), an integer compare that
 * vectorises. */
#define BERN_BLOCK 1024
#define BERN(NAME, T_, ONE, ZERO)                                                                          \
    CT_LOOP_ATTR static void NAME(const uint32_t *w, int64_t m, uint64_t T, T_ *o) {                       \
        for (int64_t k = 0; k < m; k++) {                                                                  \
            uint64_t d = (((uint64_t)w[2 * k] << 32) | w[2 * k + 1]) & 0x1fffffffffffffull;               \
            o[k] = d < T ? (ONE) : (ZERO);                                                                 \
        }                                                                                                  \
    }
BERN(bern_f32, float, 1.0f, 0.0f)
BERN(bern_f64, double, 1.0, 0.0)
BERN(bern_u8, uint8_t, 1, 0)
#undef BERN

static int bernoulli_kernel(const ct_kernel_args *a) {
    ct_tensor *t = a->out[0];
    ct_generator *g = gen_of(a);
    ct_dtype dt = t->dtype;
    if (ct_dtype_is_complex(dt))
        return ct__errs(CT_ERR_DTYPE, "bernoulli_: not implemented for dtype %s", ct_dtype_name(dt));
    int64_t n = t->numel;
    walk w;
    walk_init(&w, t, t, a);
    if (a->n_in == 0) {
        /* scalar p: a float64 uniform per element */
        double p = a->d[0];
        if (walk_dense(&w, (int64_t)ct_dtype_size(dt)) && p >= 0 && p <= 1 &&
            (dt == CT_FLOAT32 || dt == CT_FLOAT64 || dt == CT_BOOL || dt == CT_UINT8)) {
            /* dense in draw order (dropout's masks): the draws in bulk, compared in blocks */
            uint32_t words[2 * BERN_BLOCK];
            uint64_t T = (uint64_t)ceil(p * 0x1p53);
            size_t es = ct_dtype_size(dt);
            for (int64_t k = 0; k < n; k += BERN_BLOCK) {
                int64_t m = n - k < BERN_BLOCK ? n - k : BERN_BLOCK;
                ct__gen_fill(g, words, 2 * m);
                char *o = w.p + (size_t)k * es;
                if (dt == CT_FLOAT32) bern_f32(words, m, T, (float *)o);
                else if (dt == CT_FLOAT64) bern_f64(words, m, T, (double *)o);
                else bern_u8(words, m, T, (uint8_t *)o);
            }
            return 0;
        }
        for (int64_t k = 0; k < n; k++, walk_next(&w)) ct__store_i64(w.p, dt, unit_f64(g) < p);
        return 0;
    }
    const ct_tensor *pt = a->in[0];
    walk wp;
    walk_init(&wp, pt, t, a);
    switch (pt->dtype) {
    case CT_FLOAT64:
        for (int64_t k = 0; k < n; k++, walk_next(&w), walk_next(&wp)) ct__store_i64(w.p, dt, unit_f64(g) < *(double *)wp.p);
        break;
    case CT_FLOAT32:
        for (int64_t k = 0; k < n; k++, walk_next(&w), walk_next(&wp)) ct__store_i64(w.p, dt, unit_f32(g) < *(float *)wp.p);
        break;
    case CT_FLOAT16:
        for (int64_t k = 0; k < n; k++, walk_next(&w), walk_next(&wp))
            ct__store_i64(w.p, dt, unit_f32(g) < ct_half_to_float(*(ct_half *)wp.p));
        break;
    case CT_BFLOAT16:
        for (int64_t k = 0; k < n; k++, walk_next(&w), walk_next(&wp))
            ct__store_i64(w.p, dt, unit_f32(g) < ct_bf16_to_float(*(ct_bf16 *)wp.p));
        break;
    default:
        return ct__errs(CT_ERR_DTYPE, "bernoulli: p of dtype %s is not supported", ct_dtype_name(pt->dtype));
    }
    return 0;
}

/* ---- integers: random_(from, to) / randint and random_() ---- */
static int randint_kernel(const ct_kernel_args *a) {
    ct_tensor *t = a->out[0];
    ct_generator *g = gen_of(a);
    ct_dtype dt = t->dtype;
    if (ct_dtype_is_complex(dt))
        return ct__errs(CT_ERR_DTYPE, "random_: not implemented for dtype %s", ct_dtype_name(dt));
    int64_t n = t->numel;
    walk w;
    walk_init(&w, t, t, a);
    if (a->i[0] == 0) {
        uint64_t base = (uint64_t)a->i[1], range = (uint64_t)a->i[2];
        /* 64-bit draws for a range of 2^28 or more (torch >= 2.6; older releases
         * switched at 2^32, and only for int64/double/float/bfloat16) */
        bool wide = range >= (1ull << 28);
        for (int64_t k = 0; k < n; k++, walk_next(&w)) {
            uint64_t v = wide ? ct__gen_random64(g) : ct__gen_random(g);
            ct__store_i64(w.p, dt, (int64_t)(v % range + base));
        }
        return 0;
    }
    /* random_(): [0, max] for integers, [0, 2^digits] for floats, {0, 1} for bool */
    uint64_t mod;
    bool wide = dt == CT_INT64 || dt == CT_FLOAT64;
    switch (dt) {
    case CT_BOOL: mod = 2; break;
    case CT_UINT8: mod = 256; break;
    case CT_INT8: mod = 128; break;
    case CT_INT16: mod = 32768; break;
    case CT_INT32: mod = 1ull << 31; break;
    case CT_INT64: mod = 1ull << 63; break;
    case CT_FLOAT16: mod = (1ull << 11) + 1; break;
    case CT_BFLOAT16: mod = (1ull << 8) + 1; break;
    case CT_FLOAT32: mod = (1ull << 24) + 1; break;
    default: mod = (1ull << 53) + 1; break;
    }
    for (int64_t k = 0; k < n; k++, walk_next(&w)) {
        uint64_t v = wide ? ct__gen_random64(g) : ct__gen_random(g);
        ct__store_i64(w.p, dt, (int64_t)(v % mod));
    }
    return 0;
}

void ct_cpu_register_random(ct_kernel_fn *k) {
    k[CT_OP_UNIFORM] = uniform_kernel;
    k[CT_OP_NORMAL] = normal_kernel;
    k[CT_OP_BERNOULLI] = bernoulli_kernel;
    k[CT_OP_RANDINT] = randint_kernel;
}
