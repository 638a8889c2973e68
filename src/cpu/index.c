/* CPU kernels: index family. */
#include "cpu/loops.h"

void ct_cpu_register_index(ct_kernel_fn *k) { CT_UNUSED(k); }
