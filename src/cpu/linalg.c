/* CPU kernels: linalg family. */
#include "cpu/loops.h"

void ct_cpu_register_linalg(ct_kernel_fn *k) { CT_UNUSED(k); }
