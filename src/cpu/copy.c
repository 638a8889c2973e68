/* CPU COPY (broadcasting, casting between any two dtypes) and FILL kernels. */
#include <omp.h>
#include <stdlib.h>

#include "core/dispatch.h"
#include "core/elem_access.h"
#include "core/iter.h"
#include "cpu/loops.h"

#define AI static inline __attribute__((always_inline))

AI bool is_int(ct_dtype d) { return d <= CT_INT64; } /* bool and integers */
AI bool is_cplx(ct_dtype d) { return d >= CT_COMPLEX64; }

/* One element from src (dtype sd) to dst (dtype dd); sd and dd are constants after
 * inlining, and so are the element accessors' switches (core/elem_access.h): every
 * branch but one folds away (through the out-of-line accessors, the two casts around a
 * [4096, 1024] bfloat16 softmax took about 13 of its 14.4 ms on two threads). */
AI void conv(char *dst, ct_dtype dd, const char *src, ct_dtype sd) {
    if (dd == CT_BOOL) {
        if (is_cplx(sd)) *(bool *)dst = ct__load_c128_inl(src, sd) != 0;
        else if (is_int(sd)) *(bool *)dst = ct__load_i64_inl(src, sd) != 0;
        else *(bool *)dst = ct__load_f64_inl(src, sd) != 0;
    } else if (is_int(dd) && is_int(sd)) {
        ct__store_i64_inl(dst, dd, ct__load_i64_inl(src, sd));
    } else if (is_cplx(dd) || is_cplx(sd)) {
        ct__store_c128_inl(dst, dd, ct__load_c128_inl(src, sd));
    } else if (is_int(sd) && dd != CT_FLOAT64) { /* integer -> float32/16/bf16: one rounding, via float */
        float f = (float)ct__load_i64_inl(src, sd);
        ct__store_f64_inl(dst, dd, (double)f);
    } else if (is_int(dd)) {
        double v = ct__load_f64_inl(src, sd);
        ct__store_i64_inl(dst, dd, (v != v || v >= 9.2233720368547758e18 || v < -9.2233720368547758e18) ? INT64_MIN : (int64_t)v);
    } else if (sd == CT_FLOAT32 && dd == CT_FLOAT32) {
        *(float *)dst = *(const float *)src;
    } else {
        ct__store_f64_inl(dst, dd, ct__load_f64_inl(src, sd));
    }
}

/* Contiguous runs: float32 <-> bfloat16 / float16 through the vector row conversions
 * (cpu/loops.h ct__bf16_widen_row / ct__f16_narrow_row...); to bfloat16 from float16 or
 * float64 through float32 blocks rounded by ct__bf16_narrow (the same bits as conv's
 * ct_float_to_bf16, which as a per-element store kept the loop scalar). Compiled for
 * the baseline ISA only: per-ISA clones of the 144 loops ran a bfloat16 softmax's casts
 * 8 % faster for 260 KB of library. */
#define CAST_LOOP(DE, dct, dsn, SE, sct, ssn)                                                       \
    static void cast_##dsn##_##ssn(char **d, const int64_t *s, int64_t n, void *ctx) {              \
        (void)ctx;                                                                                  \
        char *o = d[0];                                                                             \
        const char *in = d[1];                                                                      \
        if (s[0] == (int64_t)sizeof(dct) && s[1] == (int64_t)sizeof(sct)) {                          \
            if (DE == CT_BFLOAT16 && SE == CT_FLOAT32)                                              \
                ct__bf16_narrow_row((ct_bf16 *)o, (const float *)in, n);                            \
            else if (DE == CT_FLOAT32 && SE == CT_BFLOAT16)                                         \
                ct__bf16_widen_row((float *)o, (const ct_bf16 *)in, n);                             \
            else if (DE == CT_FLOAT16 && SE == CT_FLOAT32)                                          \
                ct__f16_narrow_row((ct_half *)o, (const float *)in, n);                             \
            else if (DE == CT_FLOAT32 && SE == CT_FLOAT16)                                          \
                ct__f16_widen_row((float *)o, (const ct_half *)in, n);                              \
            else if (DE == CT_BFLOAT16 && (SE == CT_FLOAT16 || SE == CT_FLOAT64))                   \
                CT_BF16_BLOCKS((ct_bf16 *)o, n, (float)ct__load_f64_inl(in + i * (int64_t)sizeof(sct), SE)); \
            else                                                                                    \
                for (int64_t i = 0; i < n; i++) conv(o + i * (int64_t)sizeof(dct), DE, in + i * (int64_t)sizeof(sct), SE); \
        } else {                                                                                    \
            for (int64_t i = 0; i < n; i++) conv(o + i * s[0], DE, in + i * s[1], SE);              \
        }                                                                                           \
    }
#define CAST_FROM(DE, dct, dsn)                                                                     \
    CAST_LOOP(DE, dct, dsn, CT_BOOL, bool, b) CAST_LOOP(DE, dct, dsn, CT_UINT8, uint8_t, u8)        \
    CAST_LOOP(DE, dct, dsn, CT_INT8, int8_t, i8) CAST_LOOP(DE, dct, dsn, CT_INT16, int16_t, i16)    \
    CAST_LOOP(DE, dct, dsn, CT_INT32, int32_t, i32) CAST_LOOP(DE, dct, dsn, CT_INT64, int64_t, i64) \
    CAST_LOOP(DE, dct, dsn, CT_FLOAT16, ct_half, f16) CAST_LOOP(DE, dct, dsn, CT_BFLOAT16, ct_bf16, bf16) \
    CAST_LOOP(DE, dct, dsn, CT_FLOAT32, float, f32) CAST_LOOP(DE, dct, dsn, CT_FLOAT64, double, f64) \
    CAST_LOOP(DE, dct, dsn, CT_COMPLEX64, ct_c64, c64) CAST_LOOP(DE, dct, dsn, CT_COMPLEX128, ct_c128, c128)
CT_FOR_ALL_DTYPES(CAST_FROM)

#define TABLE_ROW(DE, dct, dsn) [DE] = { \
    [CT_BOOL] = cast_##dsn##_b, [CT_UINT8] = cast_##dsn##_u8, [CT_INT8] = cast_##dsn##_i8, \
    [CT_INT16] = cast_##dsn##_i16, [CT_INT32] = cast_##dsn##_i32, [CT_INT64] = cast_##dsn##_i64, \
    [CT_FLOAT16] = cast_##dsn##_f16, [CT_BFLOAT16] = cast_##dsn##_bf16, [CT_FLOAT32] = cast_##dsn##_f32, \
    [CT_FLOAT64] = cast_##dsn##_f64, [CT_COMPLEX64] = cast_##dsn##_c64, [CT_COMPLEX128] = cast_##dsn##_c128},
static const ct_loop_fn cast_table[CT_NUM_DTYPES][CT_NUM_DTYPES] = {CT_FOR_ALL_DTYPES(TABLE_ROW)};

/* A contiguous run whose destination lies just past its source modulo 4 KiB (a view of
 * a power-of-two-wide tensor copied a few elements over: cat of column slices, roll):
 * copied vector by vector, every load would match the low address bits of a store just
 * issued, and the CPU holds each load until that store is done (4K aliasing; 10x
 * slower: cat of [4096, 5] and [4096, 1019] slices of a [4096, 1024] tensor took 5.7 ms
 * against 0.56 with contiguous parts). Blocks of 256 bytes are loaded whole before
 * they are stored, so only a block's first load can meet a pending store (roll by 5 of
 * [4096, 1024]: 0.6 of the time of a back-to-front copy, which kept the loads away
 * from the stores with 16-byte moves). The same blocks for runs whose two ends are not
 * 32-byte aligned to each other: glibc 2.36's memmove ran those at 0.6-0.7 of the speed
 * on an AMD EPYC (Zen 4) host (x[:, 3:].contiguous() of a [4096, 1024] float32 on two
 * threads: 520 -> 355 us). Other runs: memmove. */
CT_LOOP_ATTR static void copy_run(char *dst, const char *src, size_t bytes) {
    uintptr_t ahead = ((uintptr_t)dst - (uintptr_t)src) & 4095;
    if (bytes < 1024 || ahead == 0 || (ahead >= 512 && ahead % 32 == 0) ||
        (dst < src + bytes && src < dst + bytes)) {
        memmove(dst, src, bytes);
        return;
    }
    size_t i = 0;
    typedef char v32 __attribute__((vector_size(32)));
    for (; i + 256 <= bytes; i += 256) {
        v32 v[8];
        for (int k = 0; k < 8; k++) v[k] = LOADV(v32, src + i + 32 * k);
        for (int k = 0; k < 8; k++) memcpy(dst + i + 32 * k, &v[k], 32);
    }
    memcpy(dst + i, src + i, bytes - i);
}

static void copy_same(char **d, const int64_t *s, int64_t n, void *ctx) {
    size_t es = *(size_t *)ctx;
    if (s[0] == (int64_t)es && s[1] == (int64_t)es) { copy_run(d[0], d[1], (size_t)n * es); return; }
    switch (es) {
    case 1: for (int64_t i = 0; i < n; i++) *(uint8_t *)(d[0] + i * s[0]) = *(uint8_t *)(d[1] + i * s[1]); break;
    case 2: for (int64_t i = 0; i < n; i++) *(uint16_t *)(d[0] + i * s[0]) = *(uint16_t *)(d[1] + i * s[1]); break;
    case 4: for (int64_t i = 0; i < n; i++) *(uint32_t *)(d[0] + i * s[0]) = *(uint32_t *)(d[1] + i * s[1]); break;
    case 8: for (int64_t i = 0; i < n; i++) *(uint64_t *)(d[0] + i * s[0]) = *(uint64_t *)(d[1] + i * s[1]); break;
    default: for (int64_t i = 0; i < n; i++) memcpy(d[0] + i * s[0], d[1] + i * s[1], es); break;
    }
}

/* ---- transposed copies ----
 * A copy where the output's last dim is contiguous in dst but strided in src, and
 * another dim is contiguous in src (x.t().contiguous(), permute(0, 2, 1), NHWC <->
 * NCHW): element by element one side jumps a whole row per element, each touching a
 * new cache line. Done in square tiles, a strip of tile rows at a time. 4- and 8-byte
 * elements on AVX-512 or AVX2 CPUs: tiles of 64 bytes a side (16 x 16 float32, 8 x 8
 * float64), so that every line read or written is used whole, transposed in registers
 * (AVX2: four 8 x 8 or 4 x 4 quarters): x.t().contiguous() of a [2048, 1024] float32 on
 * two threads 1.5-1.9 -> 0.54-0.66 ms, of [64, 784] 15 -> 4.4 us. The edges, 2-byte
 * elements and other CPUs: 8 x 8 tiles element by element, 8 lines of each side live
 * at once, which fit the L1's 8 ways even when the row strides are powers of two
 * (element-wise tiles of 16 and 32 measured 1.2 and 1.7x slower there). */
#define TILE 8
#define TRANSPOSE_PLANE(NAME, T)                                                                    \
    static void NAME(char *dst, const char *src, int64_t rows, int64_t cols, int64_t drow,          \
                     int64_t scol, int64_t r0, int64_t c0) {                                        \
        int64_t r1 = r0 + TILE < rows ? r0 + TILE : rows, c1 = c0 + TILE < cols ? c0 + TILE : cols; \
        for (int64_t r = r0; r < r1; r++) {                                                         \
            T *o = (T *)dst + r * drow;                                                             \
            const T *in = (const T *)src + r;                                                       \
            for (int64_t c = c0; c < c1; c++) o[c] = in[c * scol];                                  \
        }                                                                                           \
    }
TRANSPOSE_PLANE(tile_2, uint16_t)
TRANSPOSE_PLANE(tile_4, uint32_t)
TRANSPOSE_PLANE(tile_8, uint64_t)
typedef void (*tile_fn)(char *, const char *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CT_TRANSPOSE_X86 1
/* One 64-byte tile: d[j * ld_d + i] = s[i * ld_s + j] (ld in bytes), 16 x 16 4-byte or
 * 8 x 8 8-byte elements. The rows are unpacked in pairs, then quadruples, then 128-bit
 * lanes are gathered by two shuffles (after the unpacks, b[4k + m] holds in its lane L
 * column 4L + m of rows 4k..4k+3). */
__attribute__((target("avx512f"))) static void tile64_4_v512(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    __m512i r[16], a[16], b[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512((const void *)(s + i * ld_s));
    for (int k = 0; k < 8; k++) {
        a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        b[4 * k] = _mm512_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 1] = _mm512_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 2] = _mm512_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
        b[4 * k + 3] = _mm512_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
    }
    for (int m = 0; m < 4; m++) {
        __m512i c0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44), c1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xee);
        __m512i d0 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44), d1 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xee);
        _mm512_storeu_si512((void *)(d + m * ld_d), _mm512_shuffle_i32x4(c0, d0, 0x88));
        _mm512_storeu_si512((void *)(d + (4 + m) * ld_d), _mm512_shuffle_i32x4(c0, d0, 0xdd));
        _mm512_storeu_si512((void *)(d + (8 + m) * ld_d), _mm512_shuffle_i32x4(c1, d1, 0x88));
        _mm512_storeu_si512((void *)(d + (12 + m) * ld_d), _mm512_shuffle_i32x4(c1, d1, 0xdd));
    }
}
/* 8 x 8 8-byte elements: after the unpacks a[2k + m] holds in lane L column 2L + m of
 * rows 2k, 2k + 1 */
__attribute__((target("avx512f"))) static void tile64_8_v512(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    __m512i r[8], a[8];
    for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_si512((const void *)(s + i * ld_s));
    for (int k = 0; k < 4; k++) {
        a[2 * k] = _mm512_unpacklo_epi64(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm512_unpackhi_epi64(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 2; m++) {
        __m512i c0 = _mm512_shuffle_i64x2(a[m], a[2 + m], 0x44), c1 = _mm512_shuffle_i64x2(a[m], a[2 + m], 0xee);
        __m512i d0 = _mm512_shuffle_i64x2(a[4 + m], a[6 + m], 0x44), d1 = _mm512_shuffle_i64x2(a[4 + m], a[6 + m], 0xee);
        _mm512_storeu_si512((void *)(d + m * ld_d), _mm512_shuffle_i64x2(c0, d0, 0x88));
        _mm512_storeu_si512((void *)(d + (2 + m) * ld_d), _mm512_shuffle_i64x2(c0, d0, 0xdd));
        _mm512_storeu_si512((void *)(d + (4 + m) * ld_d), _mm512_shuffle_i64x2(c1, d1, 0x88));
        _mm512_storeu_si512((void *)(d + (6 + m) * ld_d), _mm512_shuffle_i64x2(c1, d1, 0xdd));
    }
}
/* AVX2: an 8 x 8 4-byte or 4 x 4 8-byte quarter (b[4k + m] holds in lane L column
 * 4L + m of rows 4k..4k+3; a[m] and a[2 + m] column m and 2 + m of rows 0-1, 2-3) */
__attribute__((target("avx2"))) static void tile32_4_v256(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    __m256i r[8], a[8], b[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_si256((const __m256i *)(s + i * ld_s));
    for (int k = 0; k < 4; k++) {
        a[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        b[4 * k] = _mm256_unpacklo_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 1] = _mm256_unpackhi_epi64(a[4 * k], a[4 * k + 2]);
        b[4 * k + 2] = _mm256_unpacklo_epi64(a[4 * k + 1], a[4 * k + 3]);
        b[4 * k + 3] = _mm256_unpackhi_epi64(a[4 * k + 1], a[4 * k + 3]);
    }
    for (int m = 0; m < 4; m++) {
        _mm256_storeu_si256((__m256i *)(d + m * ld_d), _mm256_permute2x128_si256(b[m], b[4 + m], 0x20));
        _mm256_storeu_si256((__m256i *)(d + (4 + m) * ld_d), _mm256_permute2x128_si256(b[m], b[4 + m], 0x31));
    }
}
__attribute__((target("avx2"))) static void tile32_8_v256(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    __m256i r[4], a[4];
    for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_si256((const __m256i *)(s + i * ld_s));
    a[0] = _mm256_unpacklo_epi64(r[0], r[1]);
    a[1] = _mm256_unpackhi_epi64(r[0], r[1]);
    a[2] = _mm256_unpacklo_epi64(r[2], r[3]);
    a[3] = _mm256_unpackhi_epi64(r[2], r[3]);
    for (int m = 0; m < 2; m++) {
        _mm256_storeu_si256((__m256i *)(d + m * ld_d), _mm256_permute2x128_si256(a[m], a[2 + m], 0x20));
        _mm256_storeu_si256((__m256i *)(d + (2 + m) * ld_d), _mm256_permute2x128_si256(a[m], a[2 + m], 0x31));
    }
}
__attribute__((target("avx2"))) static void tile64_4_v256(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    for (int q = 0; q < 4; q++) /* quarter (qi, qj): rows 8 qi of s, columns 8 qj */
        tile32_4_v256(d + (q & 1) * 8 * ld_d + (q >> 1) * 32, ld_d, s + (q >> 1) * 8 * ld_s + (q & 1) * 32, ld_s);
}
__attribute__((target("avx2"))) static void tile64_8_v256(char *d, int64_t ld_d, const char *s, int64_t ld_s) {
    for (int q = 0; q < 4; q++)
        tile32_8_v256(d + (q & 1) * 4 * ld_d + (q >> 1) * 32, ld_d, s + (q >> 1) * 4 * ld_s + (q & 1) * 32, ld_s);
}
#endif

/* The rows [r0, r0 + n) of a plane, every column: whole 64-byte tiles through `vec`
 * (NULL: none), the rest element by element. */
typedef void (*tile64_fn)(char *, int64_t, const char *, int64_t);
static void transpose_strip(char *dp, const char *sp, int64_t rows, int64_t cols, int64_t drow, int64_t scol,
                            int64_t r0, size_t es, tile64_fn vec, tile_fn scalar) {
    const int64_t B = vec ? 64 / (int64_t)es : TILE, r1 = r0 + B < rows ? r0 + B : rows;
    int64_t c0 = 0;
    if (vec && r1 - r0 == B)
        for (; c0 + B <= cols; c0 += B)
            vec(dp + (r0 * drow + c0) * (int64_t)es, drow * (int64_t)es, sp + (c0 * scol + r0) * (int64_t)es,
                scol * (int64_t)es);
    for (int64_t r = r0; r < r1; r += TILE)
        for (int64_t c = c0; c < cols; c += TILE) scalar(dp, sp, r1, cols, drow, scol, r, c);
}

/* dst[..., r, ..., c] = src[...] with dst's dim i (c) contiguous, src's dim j (r)
 * contiguous; the other dims are walked as an outer index. Returns false (nothing
 * done) for any other layout. */
static bool transpose_copy(ct_tensor *dst, const ct_tensor *src) {
    size_t es = ct_dtype_size(dst->dtype);
    if (dst->dtype != src->dtype || (es != 2 && es != 4 && es != 8) || dst->ndim != src->ndim || dst->ndim < 2 ||
        dst->numel < 1024 || !ct__is_contiguous(dst))
        return false;
    int nd = dst->ndim, i = -1, j = -1;
    for (int d = 0; d < nd; d++)
        if (dst->sizes[d] != src->sizes[d]) return false; /* broadcasting */
    for (int d = nd - 1; d >= 0 && i < 0; d--)
        if (dst->sizes[d] > 1) i = d; /* dst's contiguous dim */
    if (i < 0 || src->strides[i] == 1) return false;
    for (int d = 0; d < nd; d++)
        if (d != i && dst->sizes[d] > 1 && src->strides[d] == 1) j = d;
    if (j < 0 || dst->sizes[i] < 2 || dst->sizes[j] < 8) return false;
    const int64_t rows = dst->sizes[j], cols = dst->sizes[i], drow = dst->strides[j], scol = src->strides[i];
    tile_fn scalar = es == 2 ? tile_2 : es == 4 ? tile_4 : tile_8;
    tile64_fn vec = NULL;
#ifdef CT_TRANSPOSE_X86
    if (es != 2 && ct__cpu_isa() == CT_ISA_AVX512) vec = es == 4 ? tile64_4_v512 : tile64_8_v512;
    else if (es != 2 && ct__cpu_isa() == CT_ISA_AVX2) vec = es == 4 ? tile64_4_v256 : tile64_8_v256;
#endif
    const int64_t B = vec ? 64 / (int64_t)es : TILE;
    const int64_t outer = dst->numel / (rows * cols), tr = (rows + B - 1) / B;
    char *dp = ct__data(dst);
    const char *sp = ct__data(src);
    CT_PARALLEL_IF(dst->numel >= CT_GRAIN, {
        int64_t last = -1, doff = 0, soff = 0;
        _Pragma("omp for schedule(static)")
        for (int64_t w = 0; w < outer * tr; w++) { /* a strip of B rows, tile by tile */
            int64_t o = w / tr, r0 = (w % tr) * B;
            if (o != last) { /* the outer index over the dims other than i and j, once per plane */
                int64_t rem = o;
                doff = soff = 0;
                for (int d = nd - 1; d >= 0; d--) {
                    if (d == i || d == j) continue;
                    int64_t q = rem % dst->sizes[d];
                    rem /= dst->sizes[d];
                    doff += q * dst->strides[d];
                    soff += q * src->strides[d];
                }
                last = o;
            }
            transpose_strip(dp + doff * (int64_t)es, sp + soff * (int64_t)es, rows, cols, drow, scol, r0, es, vec,
                            scalar);
        }
    });
    return true;
}

static int cpu_copy(const ct_kernel_args *a) {
    if (transpose_copy(a->out[0], a->in[0])) return 0;
    ct_iter it;
    const ct_tensor *ops[2] = {a->out[0], a->in[0]};
    if (ct__iter_build_any_order(&it, 2, 1, ops)) return ct_last_status();
    ct_dtype dd = a->out[0]->dtype, sd = a->in[0]->dtype;
    if (dd == sd) {
        size_t es = ct_dtype_size(dd);
        ct__iter_run(&it, copy_same, &es, 0);
    } else {
        ct__iter_run(&it, cast_table[dd][sd], NULL, 0);
    }
    return 0;
}

/* CT_OP_CAT: the output, viewed as [outer, row] bytes, is the inputs' [outer, seg[k]]
 * blocks side by side. Written in one pass in output order, the bytes split evenly
 * between threads (a thread's share may start or end inside a block): a copy per input
 * into its slice of the output wrote each output row once per input, and for roll by 5
 * along the last dim of [4096, 1024] float32 (a cat of a 5- and a 1019-wide slice)
 * the one pass took 0.7 of the time on two threads. */
#define CAT_MAX_STACK 16
static void cat_range(char *out, int n, const char *const *src, const int64_t *seg, const int64_t *ostride,
                      int64_t row, int64_t b, int64_t e) {
    int64_t o = b / row, r = b % row; /* output row and offset in it */
    while (b < e) {
        int64_t off = 0; /* where input k's block starts in the row */
        for (int k = 0; k < n && b < e; off += seg[k], k++) {
            if (r >= off + seg[k]) continue;
            int64_t len = off + seg[k] - r < e - b ? off + seg[k] - r : e - b;
            copy_run(out + b, src[k] + o * ostride[k] + (r - off), (size_t)len);
            b += len, r += len;
        }
        o++, r = 0;
    }
}

static int cpu_cat(const ct_kernel_args *a) {
    const ct_tensor *out = a->out[0];
    int d = (int)a->i[0], n = a->n_tv;
    int64_t es = (int64_t)ct_dtype_size(out->dtype), inner = es, outer = 1;
    for (int k = 0; k < out->ndim; k++)
        if (k < d) outer *= out->sizes[k];
        else if (k > d) inner *= out->sizes[k];
    /* per input: its block's bytes in a row, the distance between its blocks, its data */
    int64_t buf_s[2 * CAT_MAX_STACK];
    const char *src_s[CAT_MAX_STACK];
    int64_t *seg = n <= CAT_MAX_STACK ? buf_s : malloc(2 * sizeof(int64_t) * (size_t)n);
    const char **src = n <= CAT_MAX_STACK ? src_s : malloc(sizeof(char *) * (size_t)n);
    if (!seg || !src) {
        if (seg != buf_s) free(seg);
        if (src != src_s) free(src);
        return ct__errs(CT_ERR_OOM, "cat: out of memory");
    }
    int64_t *ostride = seg + n, row = 0;
    for (int k = 0; k < n; k++) {
        const ct_tensor *t = a->tv[k];
        seg[k] = 0, ostride[k] = 0, src[k] = NULL; /* an empty input adds nothing */
        if (!t->numel) continue;
        if (!ct__blocks_contiguous(t, d, &ostride[k])) { /* the caller checked */
            if (seg != buf_s) free(seg);
            if (src != src_s) free(src);
            return ct__errs(CT_ERR_RUNTIME, "cat: internal error: input %d is not a contiguous block per row", k);
        }
        seg[k] = t->sizes[d] * inner;
        ostride[k] *= es;
        src[k] = ct__data(t);
        row += seg[k];
    }
    char *dst = ct__data(out);
    int64_t total = outer * row;
    /* on the calling thread (thread 0 of 1) the share is the whole output */
    CT_PARALLEL_IF(total >= 2 * CT_GRAIN * 4 && ct__num_threads() > 1, {
        int t = omp_get_thread_num(), nth = omp_get_num_threads();
        int64_t per = ((total + nth - 1) / nth + 63) / 64 * 64; /* whole cache lines; per * nth >= total */
        int64_t b = per * t < total ? per * t : total, e = per * (t + 1) < total ? per * (t + 1) : total;
        cat_range(dst, n, src, seg, ostride, row, b, e);
    });
    if (seg != buf_s) free(seg);
    if (src != src_s) free(src);
    return 0;
}

typedef struct { unsigned char bytes[16]; size_t es; bool bytewise; /* every byte the same */ } fill_ctx;
static void fill_loop(char **d, const int64_t *s, int64_t n, void *ctx) {
    const fill_ctx *f = ctx;
    if (s[0] == (int64_t)f->es) {
        /* a contiguous run: memset when every byte of the value is the same (zeros, the
         * common case; glibc streams large runs past the cache), else a unit-stride
         * loop the compiler vectorises */
        if (f->bytewise) { memset(d[0], f->bytes[0], (size_t)n * f->es); return; }
        switch (f->es) {
        case 2: { uint16_t v, *o = (uint16_t *)d[0]; memcpy(&v, f->bytes, 2); for (int64_t i = 0; i < n; i++) o[i] = v; } return;
        case 4: { uint32_t v, *o = (uint32_t *)d[0]; memcpy(&v, f->bytes, 4); for (int64_t i = 0; i < n; i++) o[i] = v; } return;
        case 8: { uint64_t v, *o = (uint64_t *)d[0]; memcpy(&v, f->bytes, 8); for (int64_t i = 0; i < n; i++) o[i] = v; } return;
        default: break;
        }
    }
    switch (f->es) {
    case 1: { uint8_t v; memcpy(&v, f->bytes, 1); for (int64_t i = 0; i < n; i++) *(uint8_t *)(d[0] + i * s[0]) = v; } break;
    case 2: { uint16_t v; memcpy(&v, f->bytes, 2); for (int64_t i = 0; i < n; i++) *(uint16_t *)(d[0] + i * s[0]) = v; } break;
    case 4: { uint32_t v; memcpy(&v, f->bytes, 4); for (int64_t i = 0; i < n; i++) *(uint32_t *)(d[0] + i * s[0]) = v; } break;
    case 8: { uint64_t v; memcpy(&v, f->bytes, 8); for (int64_t i = 0; i < n; i++) *(uint64_t *)(d[0] + i * s[0]) = v; } break;
    default: for (int64_t i = 0; i < n; i++) memcpy(d[0] + i * s[0], f->bytes, f->es); break;
    }
}

static int cpu_fill(const ct_kernel_args *a) {
    ct_tensor *t = a->out[0];
    fill_ctx f;
    f.es = ct_dtype_size(t->dtype);
    memset(f.bytes, 0, sizeof f.bytes);
    if (ct_dtype_is_complex(t->dtype)) ct__store_c128(f.bytes, t->dtype, a->d[0] + a->d[1] * I);
    else if (ct_dtype_is_integral(t->dtype, false)) {
        double v = a->d[0];
        ct__store_i64(f.bytes, t->dtype, (v != v || v >= 9.2233720368547758e18 || v < -9.2233720368547758e18) ? INT64_MIN : (int64_t)v);
    } else ct__store_f64(f.bytes, t->dtype, a->d[0]);
    f.bytewise = true;
    for (size_t k = 1; k < f.es; k++) f.bytewise &= f.bytes[k] == f.bytes[0];
    ct_iter it;
    const ct_tensor *ops[1] = {t};
    if (ct__iter_build_any_order(&it, 1, 1, ops)) return ct_last_status();
    ct__iter_run(&it, fill_loop, &f, 0);
    return 0;
}

void ct_cpu_register_copy(ct_kernel_fn *k) {
    k[CT_OP_COPY] = cpu_copy;
    k[CT_OP_FILL] = cpu_fill;
    k[CT_OP_CAT] = cpu_cat;
}
