/* The CPU backend: fills its dispatch table from the kernel families in src/cpu/. */
#include <stdlib.h>
#include <string.h>

#include "cpu/loops.h"

static ct_backend cpu_backend = {.name = "cpu", .type = CT_DEVICE_CPU};

static ct_cpu_isa cpu_isa = CT_ISA_BASELINE;

ct_cpu_isa ct__cpu_isa(void) { return cpu_isa; }

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
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) cpu_isa = CT_ISA_AVX2;
#endif
    const char *cap = getenv("CTORCH_CPU_ISA");
    if (cap && strcmp(cap, "avx2") == 0 && cpu_isa > CT_ISA_AVX2) cpu_isa = CT_ISA_AVX2;
    else if (cap && strcmp(cap, "baseline") == 0) cpu_isa = CT_ISA_BASELINE;
}

ct_backend *ct_cpu_backend(void) {
    ct_kernel_fn *k = cpu_backend.kernels;
    detect_isa(); /* first: the register functions below may ask */
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
