/* The CPU backend: fills its dispatch table from the kernel families in src/cpu/. */
#include "core/dispatch.h"

static ct_backend cpu_backend = {.name = "cpu", .type = CT_DEVICE_CPU};

ct_backend *ct_cpu_backend(void) {
    ct_kernel_fn *k = cpu_backend.kernels;
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
    return &cpu_backend;
}
