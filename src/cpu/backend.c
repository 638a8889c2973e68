/* The CPU backend: fills its dispatch table from the kernel families in src/cpu/. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "cpu/loops.h"

static ct_backend cpu_backend = {.name = "cpu", .type = CT_DEVICE_CPU};

static ct_cpu_isa cpu_isa = CT_ISA_BASELINE, cpu_isa_hw = CT_ISA_BASELINE;

ct_cpu_isa ct__cpu_isa(void) { return cpu_isa; }
ct_cpu_isa ct__cpu_isa_hw(void) { return cpu_isa_hw; }

static size_t llc_bytes = (size_t)8 << 20;

bool ct__stream_worthwhile(size_t bytes) { return bytes > llc_bytes / 2; }

/* the last-level cache's size (cpu/loops.h, ct__stream_worthwhile), or the environment
 * variable CTORCH_LLC_BYTES's (the tests force the streaming paths with it) */
static void detect_llc(void) {
    const char *env = getenv("CTORCH_LLC_BYTES");
    long c = env ? atol(env) : -1;
    if (c > 0) {
        llc_bytes = (size_t)c;
        return;
    }
#ifdef _SC_LEVEL3_CACHE_SIZE
    c = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
    if (c <= 0) c = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    if (c > 0) llc_bytes = (size_t)c;
}

/* The CPU's vector ISA, capped by the environment variable CTORCH_CPU_ISA ("avx2" or
 * "baseline"; "avx512" or anything else: no cap) so that every path of the kernels
 * that dispatch on it can be run, and compared, on one machine. Kernels compiled as
 * GCC target clones pick their clone by the CPU alone. */
static void detect_isa(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    /* AVX-512: F and BW (every AVX-512 CPU since Skylake-SP; the kernels use byte and
     * word instructions, e.g. the bfloat16 conversions) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) cpu_isa = CT_ISA_AVX512;
    else {
        /* AVX2 with FMA and F16C (every AVX2 CPU has both; F16C read from CPUID leaf 1,
         * ECX bit 29: clang 14's __builtin_cpu_supports does not know "f16c") */
        unsigned ea, eb, ec, ed;
        bool f16c = __get_cpuid(1, &ea, &eb, &ec, &ed) && (ec & (1u << 29));
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) cpu_isa = CT_ISA_AVX2;
    }
#endif
    cpu_isa_hw = cpu_isa;
    const char *cap = getenv("CTORCH_CPU_ISA");
    if (cap && strcmp(cap, "avx2") == 0 && cpu_isa > CT_ISA_AVX2) cpu_isa = CT_ISA_AVX2;
    else if (cap && strcmp(cap, "baseline") == 0) cpu_isa = CT_ISA_BASELINE;
}

ct_backend *ct_cpu_backend(void) {
    ct_kernel_fn *k = cpu_backend.kernels;
    detect_isa(); /* first: the register functions below may ask */
    detect_llc();
    ct_cpu_register_copy(k);
    ct_cpu_register_unary(k);
    ct_cpu_register_binary(k);
    ct_cpu_register_reduce(k);
    ct_cpu_register_linalg(k);
    ct_cpu_register_index(k);
    ct_cpu_register_random(k);
    ct_cpu_register_conv(k);
    ct_cpu_register_batchnorm(k);
    ct_cpu_register_norm(k);
    ct_cpu_register_rnn(k);
    ct_cpu_register_attention(k);
    return &cpu_backend;
}
