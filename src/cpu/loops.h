/* Macros that stamp out CPU elementwise loops for every dtype from one expression.
 *
 * An expression sees `a` (and `b`, `c`) in the COMPUTE type of the dtype (float for
 * float16/bfloat16, the type itself otherwise) and `p` (const double *params). The
 * loops have a contiguous fast path the compiler vectorises, and a strided path. */
#ifndef CT_CPU_LOOPS_H
#define CT_CPU_LOOPS_H

#include <math.h>
#include <string.h>

#include "core/dispatch.h"
#include "core/iter.h"

/* Every stamped loop is compiled for AVX-512, AVX2 and the baseline, and the CPU picks
 * one at load time (GCC function multiversioning); the library itself is built for the
 * baseline so it runs anywhere. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(CT_NO_MULTIVERSION)
#define CT_LOOP_ATTR __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CT_LOOP_ATTR
#endif

/* The vector instruction sets the hand-written x86 kernels may use (AVX2 means AVX2
 * with FMA and F16C), read once when the CPU backend registers, before any kernel runs
 * (src/cpu/backend.c); CT_ISA_BASELINE on other architectures. */
typedef enum { CT_ISA_BASELINE, CT_ISA_AVX2, CT_ISA_AVX512 } ct_cpu_isa;
ct_cpu_isa ct__cpu_isa(void);
/* the CPU's own, before CTORCH_CPU_ISA's cap (for choices about other libraries' kernels) */
ct_cpu_isa ct__cpu_isa_hw(void);

/* Streaming (non-temporal) stores for kernels whose output will not stay in the caches:
 * ct__stream_worthwhile(bytes) is true when an op touches (reads and writes) more than
 * half the last-level cache (sysconf's L3, else L2, else 8 MiB, or CTORCH_LLC_BYTES;
 * read once at backend registration), where its output would be evicted before the
 * next op reads it and a normal store's read-for-ownership of each output line is
 * wasted memory traffic. ct__stream_copy copies n bytes to dst with such stores where
 * the CPU has them (x86: 16-byte movntps on the aligned middle, plain stores at the
 * ends; elsewhere memcpy); a thread calls ct__stream_fence() after its last one, before
 * the data is handed to another thread. [4096, 1024] float32 layer_norm on two threads
 * (16 MB in, 16 MB out): median 1.42 -> 1.17 ms. */
bool ct__stream_worthwhile(size_t bytes);
void ct__stream_copy(void *dst, const void *src, size_t n);
void ct__stream_fence(void);

/* GCC/Clang vector types for kernels that keep several independent accumulators in
 * registers (the reductions, layer_norm's row sums), and an unaligned load into one.
 * Macros and locals only: a function taking or returning a 32- or 64-byte vector would
 * change its calling convention between the ISA clones. */
typedef float ct_v16f __attribute__((vector_size(64)));
typedef float ct_v8f __attribute__((vector_size(32)));
typedef float ct_v4f __attribute__((vector_size(16)));
typedef double ct_v8d __attribute__((vector_size(64)));
typedef double ct_v4d __attribute__((vector_size(32)));
typedef double ct_v2d __attribute__((vector_size(16)));
#define LOADV(T, p) ({ T v_; memcpy(&v_, (p), sizeof(T)); v_; })

/* Row-major C = alpha * op(A) @ op(B) + beta * C, float32 or float64 (src/cpu/linalg.c):
 * oneDNN's sgemm when built with it, else OpenBLAS. Single-threaded inside a parallel
 * region, BLAS's threads outside one. */
void ct__cpu_gemm(ct_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void *A,
                  int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* o[0..n) = op(x[0..n)) for a parameterless unary op (SIGMOID, TANH, EXP...) over
 * contiguous runs of dtype dt (src/cpu/unary.c): the loop the op itself runs, so a fused
 * kernel built on it gives the op's numbers. No threads of its own. */
void ct__cpu_unary_contig(ct_op op, ct_dtype dt, void *o, const void *x, int64_t n);

#ifdef CT_HAVE_DNNL
/* CONV2D / CONV2D_BWD_INPUT / CONV2D_BWD_WEIGHT on float32 through oneDNN
 * (src/cpu/conv_dnnl.c): 0 done, < 0 failed (message set), > 0 declined (the caller
 * runs its own kernel). keep_grad (CONV2D_BWD_INPUT): the weight gradient of the same
 * grad follows through oneDNN, which may then reuse this call's reordered grad. */
int ct__dnnl_conv(const ct_kernel_args *a, bool keep_grad);
/* C = A @ B over [B, M, K] x [B, K, N] bfloat16 operands through oneDNN
 * (src/cpu/matmul_dnnl.c); same return convention. */
int ct__dnnl_matmul(const ct_tensor *A, const ct_tensor *B, ct_tensor *C, double alpha, double beta);
#endif

/* storage type, compute type, load, store for each dtype */
#define LD_ID(x) (x)
#define ST_ID(x) (x)
#define LD_F16(x) ct_half_to_float(x)
#define ST_F16(x) ct_float_to_half(x)
#define LD_BF16(x) ct_bf16_to_float(x)
#define ST_BF16(x) ct_float_to_bf16(x)

/* bfloat16 outputs of the contiguous loops: EXPR's float32 values for a block of up to
 * CT_BF16_BLOCK elements first (the loop the compiler vectorises as float32 code), then
 * the block rounded to bfloat16 by ct__bf16_narrow: the bits of ct_float_to_bf16, with
 * the NaN case a select in 32-bit lanes instead of an early return, so that this loop
 * vectorises too (one loop doing both, per element, stayed scalar or mixed 16- and
 * 32-bit lanes badly: relu of 1M bfloat16 on one thread 460 us). Inlined into each
 * ISA's clone of the loop that calls it. */
#define CT_BF16_BLOCK 256
__attribute__((always_inline)) static inline void ct__bf16_narrow(ct_bf16 *restrict o, const float *restrict t,
                                                                  int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        uint32_t x;
        memcpy(&x, &t[j], 4);
        uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
        o[j].x = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : r);
    }
}
/* n bfloat16 values widened into float32 (exact), and n float32 values rounded to
 * bfloat16 as ct__bf16_narrow: in order, with hand-written AVX-512 / AVX2 loops picked
 * by ct__cpu_isa() (src/cpu/loops.c). */
void ct__bf16_widen_row(float *o, const ct_bf16 *x, int64_t n);
void ct__bf16_narrow_row(ct_bf16 *o, const float *x, int64_t n);
/* the same for float16 (the CPU's conversions: AVX-512F, or F16C beside AVX2), the bits
 * of ct_half_to_float / ct_float_to_half */
void ct__f16_widen_row(float *o, const ct_half *x, int64_t n);
void ct__f16_narrow_row(ct_half *o, const float *x, int64_t n);
/* n float16 / bfloat16 values (dt) widened into float32 (exact), and float32 values
 * rounded back once: the row conversions of the half-type row kernels (softmax,
 * layer_norm, sums, max/min). */
__attribute__((always_inline)) static inline void ct__half_widen(ct_dtype dt, float *restrict o, const void *x,
                                                                 int64_t n) {
    if (dt == CT_BFLOAT16) ct__bf16_widen_row(o, (const ct_bf16 *)x, n);
    else ct__f16_widen_row(o, (const ct_half *)x, n);
}
__attribute__((always_inline)) static inline void ct__half_narrow(ct_dtype dt, void *o, const float *restrict t,
                                                                  int64_t n) {
    if (dt == CT_BFLOAT16) ct__bf16_narrow_row((ct_bf16 *)o, t, n);
    else ct__f16_narrow_row((ct_half *)o, t, n);
}
/* o[i] (bfloat16) = VALUE(i) over contiguous outputs, a block at a time (VALUE reads the
 * inputs at i and yields a float) */
#define CT_BF16_BLOCKS(o, n, VALUE)                                                                  \
    do {                                                                                             \
        float t_[CT_BF16_BLOCK];                                                                     \
        for (int64_t b_ = 0; b_ < (n); b_ += CT_BF16_BLOCK) {                                        \
            int64_t m_ = (n) - b_ < CT_BF16_BLOCK ? (n) - b_ : CT_BF16_BLOCK;                        \
            for (int64_t j_ = 0; j_ < m_; j_++) {                                                    \
                int64_t i = b_ + j_;                                                                 \
                t_[j_] = (VALUE);                                                                    \
            }                                                                                        \
            ct__bf16_narrow((o) + b_, t_, m_);                                                       \
        }                                                                                            \
    } while (0)

/* How a contiguous run of outputs is written: RUN(o, n, OSTO, VALUE) stores OSTO(VALUE)
 * at o[i] for i in [0, n), VALUE an expression of i: element by element, or for bfloat16
 * outputs through float32 blocks (CT_BF16_BLOCKS) */
#define CT_RUN_EACH(o, n, OSTO, VALUE)                                                               \
    for (int64_t i = 0; i < (n); i++) (o)[i] = OSTO(VALUE);
#define CT_RUN_BF16(o, n, OSTO, VALUE) CT_BF16_BLOCKS(o, n, VALUE);

#define CT_UNARY_LOOP_RUN(fname, ST, CT, LD, OT, OSTO, EXPR, RUN)                                    \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {                \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(ST)) {                            \
            OT *o = (OT *)d[0];                                                                      \
            const ST *x = (const ST *)d[1];                                                          \
            RUN(o, n, OSTO, ({ CT a = LD(x[i]); EXPR; }))                                            \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                CT a = LD(*(const ST *)(d[1] + i * s[1]));                                           \
                *(OT *)(d[0] + i * s[0]) = OSTO(EXPR);                                               \
            }                                                                                        \
        }                                                                                            \
    }
#define CT_UNARY_LOOP(fname, ST, CT, LD, STO, OT, OSTO, EXPR)                                        \
    CT_UNARY_LOOP_RUN(fname, ST, CT, LD, OT, OSTO, EXPR, CT_RUN_EACH)
/* bfloat16 in and out, EXPR in float32 */
#define CT_UNARY_LOOP_BF16(fname, EXPR)                                                              \
    CT_UNARY_LOOP_RUN(fname, ct_bf16, float, LD_BF16, ct_bf16, ST_BF16, EXPR, CT_RUN_BF16)

#define CT_BINARY_LOOP_RUN(fname, ST, CT, LD, OT, OSTO, EXPR, RUN)                                   \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {                \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        OT *o = (OT *)d[0];                                                                          \
        const ST *x = (const ST *)d[1], *y = (const ST *)d[2];                                       \
        if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(ST) && s[2] == (int64_t)sizeof(ST)) { \
            RUN(o, n, OSTO, ({ CT a = LD(x[i]), b = LD(y[i]); EXPR; }))                              \
        } else if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(ST) && s[2] == 0) {        \
            CT b = LD(y[0]);                                                                         \
            RUN(o, n, OSTO, ({ CT a = LD(x[i]); EXPR; }))                                            \
        } else if (s[0] == (int64_t)sizeof(OT) && s[1] == 0 && s[2] == (int64_t)sizeof(ST)) {        \
            CT a = LD(x[0]);                                                                         \
            RUN(o, n, OSTO, ({ CT b = LD(y[i]); EXPR; }))                                            \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                CT a = LD(*(const ST *)(d[1] + i * s[1])), b = LD(*(const ST *)(d[2] + i * s[2]));   \
                *(OT *)(d[0] + i * s[0]) = OSTO(EXPR);                                               \
            }                                                                                        \
        }                                                                                            \
    }
#define CT_BINARY_LOOP(fname, ST, CT, LD, STO, OT, OSTO, EXPR)                                       \
    CT_BINARY_LOOP_RUN(fname, ST, CT, LD, OT, OSTO, EXPR, CT_RUN_EACH)
/* bfloat16 operands and result, EXPR in float32 */
#define CT_BINARY_LOOP_BF16(fname, EXPR)                                                             \
    CT_BINARY_LOOP_RUN(fname, ct_bf16, float, LD_BF16, ct_bf16, ST_BF16, EXPR, CT_RUN_BF16)

/* float16 operands and result, EXPR in float32: contiguous runs (an operand may also be
 * one broadcast value) through float32 blocks, the inputs widened and the results
 * rounded by the row conversions (ct__f16_widen_row / ct__f16_narrow_row: the CPU's
 * conversions, the bits of ct_half_to_float / ct_float_to_half), strided runs element
 * by element. Element by element, the branchy software conversions kept these loops
 * scalar: add of 1M float16 values 6.9 ms on two threads, PyTorch's 0.14. */
#define CT_F16_BLOCK 256
/* o[b_ + j_] (float16) = VALUE for the blocks [b_, b_ + m_) of [0, n): WIDEN first fills
 * the block's float32 inputs, VALUE reads them at j_ */
#define CT_F16_BLOCKS(o, n, WIDEN, VALUE)                                                            \
    do {                                                                                             \
        float t_[CT_F16_BLOCK];                                                                      \
        for (int64_t b_ = 0; b_ < (n); b_ += CT_F16_BLOCK) {                                         \
            int64_t m_ = (n) - b_ < CT_F16_BLOCK ? (n) - b_ : CT_F16_BLOCK;                          \
            WIDEN;                                                                                   \
            for (int64_t j_ = 0; j_ < m_; j_++) t_[j_] = (VALUE);                                    \
            ct__f16_narrow_row((o) + b_, t_, m_);                                                    \
        }                                                                                            \
    } while (0)
#define CT_UNARY_LOOP_F16(fname, EXPR)                                                               \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {                \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        if (s[0] == 2 && s[1] == 2) {                                                                \
            const ct_half *x = (const ct_half *)d[1];                                                \
            float xa_[CT_F16_BLOCK];                                                                 \
            CT_F16_BLOCKS((ct_half *)d[0], n, ct__f16_widen_row(xa_, x + b_, m_),                    \
                          ({ float a = xa_[j_]; EXPR; }));                                           \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                float a = LD_F16(*(const ct_half *)(d[1] + i * s[1]));                               \
                *(ct_half *)(d[0] + i * s[0]) = ST_F16(EXPR);                                        \
            }                                                                                        \
        }                                                                                            \
    }
#define CT_BINARY_LOOP_F16(fname, EXPR)                                                              \
    CT_LOOP_ATTR static void fname(char **d, const int64_t *s, int64_t n, void *ctx) {                \
        const double *p = ctx;                                                                       \
        (void)p;                                                                                     \
        if (n > 0 && s[0] == 2 && (s[1] == 2 || s[1] == 0) && (s[2] == 2 || s[2] == 0)) {            \
            const ct_half *x = (const ct_half *)d[1], *y = (const ct_half *)d[2];                    \
            float xa_[CT_F16_BLOCK], ya_[CT_F16_BLOCK];                                              \
            for (int j_ = 0; j_ < CT_F16_BLOCK; j_++) /* a broadcast operand's one value */          \
                xa_[j_] = s[1] ? 0.f : LD_F16(x[0]), ya_[j_] = s[2] ? 0.f : LD_F16(y[0]);           \
            CT_F16_BLOCKS((ct_half *)d[0], n,                                                        \
                          (s[1] ? ct__f16_widen_row(xa_, x + b_, m_) : (void)0,                      \
                           s[2] ? ct__f16_widen_row(ya_, y + b_, m_) : (void)0),                     \
                          ({ float a = xa_[j_], b = ya_[j_]; EXPR; }));                              \
        } else {                                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                        \
                float a = LD_F16(*(const ct_half *)(d[1] + i * s[1]));                               \
                float b = LD_F16(*(const ct_half *)(d[2] + i * s[2]));                               \
                *(ct_half *)(d[0] + i * s[0]) = ST_F16(EXPR);                                        \
            }                                                                                        \
        }                                                                                            \
    }

/* Same-typed result, for the dtypes in a family:
 *   CT_BINARY_FLOATS(prefix, EXPR)  -> prefix_f16, _bf16, _f32, _f64
 *   CT_BINARY_INTS(prefix, EXPR)    -> prefix_u8, _i8, _i16, _i32, _i64
 *   CT_BINARY_COMPLEX(prefix, EXPR) -> prefix_c64, _c128                    */
#define CT_BINARY_FLOATS(pre, EXPR)                                                \
    CT_BINARY_LOOP_F16(pre##_f16, EXPR)                                              \
    CT_BINARY_LOOP_BF16(pre##_bf16, EXPR)                                            \
    CT_BINARY_LOOP(pre##_f32, float, float, LD_ID, ST_ID, float, ST_ID, EXPR)   \
    CT_BINARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, double, ST_ID, EXPR)
#define CT_BINARY_INTS(pre, EXPR)                                                  \
    CT_BINARY_LOOP(pre##_u8, uint8_t, uint8_t, LD_ID, ST_ID, uint8_t, ST_ID, EXPR) \
    CT_BINARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, int8_t, ST_ID, EXPR)    \
    CT_BINARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, int16_t, ST_ID, EXPR) \
    CT_BINARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, int32_t, ST_ID, EXPR) \
    CT_BINARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, int64_t, ST_ID, EXPR)
#define CT_BINARY_COMPLEX(pre, EXPR)                                               \
    CT_BINARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, ct_c64, ST_ID, EXPR)   \
    CT_BINARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, ct_c128, ST_ID, EXPR)
#define CT_BINARY_BOOL(pre, EXPR) CT_BINARY_LOOP(pre##_b, bool, bool, LD_ID, ST_ID, bool, ST_ID, EXPR)

#define CT_UNARY_FLOATS(pre, EXPR)                                                 \
    CT_UNARY_LOOP_F16(pre##_f16, EXPR)                                              \
    CT_UNARY_LOOP_BF16(pre##_bf16, EXPR)                                            \
    CT_UNARY_LOOP(pre##_f32, float, float, LD_ID, ST_ID, float, ST_ID, EXPR)    \
    CT_UNARY_LOOP(pre##_f64, double, double, LD_ID, ST_ID, double, ST_ID, EXPR)
#define CT_UNARY_INTS(pre, EXPR)                                                   \
    CT_UNARY_LOOP(pre##_u8, uint8_t, uint8_t, LD_ID, ST_ID, uint8_t, ST_ID, EXPR)  \
    CT_UNARY_LOOP(pre##_i8, int8_t, int8_t, LD_ID, ST_ID, int8_t, ST_ID, EXPR)     \
    CT_UNARY_LOOP(pre##_i16, int16_t, int16_t, LD_ID, ST_ID, int16_t, ST_ID, EXPR) \
    CT_UNARY_LOOP(pre##_i32, int32_t, int32_t, LD_ID, ST_ID, int32_t, ST_ID, EXPR) \
    CT_UNARY_LOOP(pre##_i64, int64_t, int64_t, LD_ID, ST_ID, int64_t, ST_ID, EXPR)
#define CT_UNARY_COMPLEX(pre, EXPR)                                                \
    CT_UNARY_LOOP(pre##_c64, ct_c64, ct_c64, LD_ID, ST_ID, ct_c64, ST_ID, EXPR)    \
    CT_UNARY_LOOP(pre##_c128, ct_c128, ct_c128, LD_ID, ST_ID, ct_c128, ST_ID, EXPR)

/* Table rows: fill loops[dtype] for a family. */
#define CT_SET_FLOATS(tab, pre) \
    (tab)[CT_FLOAT16] = pre##_f16, (tab)[CT_BFLOAT16] = pre##_bf16, (tab)[CT_FLOAT32] = pre##_f32, (tab)[CT_FLOAT64] = pre##_f64
#define CT_SET_INTS(tab, pre) \
    (tab)[CT_UINT8] = pre##_u8, (tab)[CT_INT8] = pre##_i8, (tab)[CT_INT16] = pre##_i16, (tab)[CT_INT32] = pre##_i32, \
    (tab)[CT_INT64] = pre##_i64
#define CT_SET_COMPLEX(tab, pre) (tab)[CT_COMPLEX64] = pre##_c64, (tab)[CT_COMPLEX128] = pre##_c128

/* Runs loop over (out, in...) with params; loops[dtype of in[0]] must be set, else an
 * error "<op>: not implemented for '<dtype>'". */
int ct__cpu_run_loop(const ct_kernel_args *a, ct_loop_fn const *loops, const double *params);

#endif
