/* CPU kernels for binary elementwise ops. Inputs arrive in the compute dtype; the
 * output has the compute dtype or bool (comparisons). */
#include "cpu/loops.h"

/* add / sub carry alpha in p[0] */
CT_BINARY_FLOATS(add, a + (__typeof__(a))p[0] * b)
CT_BINARY_INTS(add, a + (int64_t)p[0] * b)
CT_BINARY_COMPLEX(add, a + p[0] * b)
CT_BINARY_BOOL(add, a || (p[0] != 0 && b))
CT_BINARY_FLOATS(sub, a - (__typeof__(a))p[0] * b)
CT_BINARY_INTS(sub, a - (int64_t)p[0] * b)
CT_BINARY_COMPLEX(sub, a - p[0] * b)
CT_BINARY_FLOATS(mul, a * b)
CT_BINARY_INTS(mul, a * b)
CT_BINARY_COMPLEX(mul, a * b)
CT_BINARY_BOOL(mul, a && b)
CT_BINARY_FLOATS(div, a / b)
CT_BINARY_COMPLEX(div, a / b)


static ct_loop_fn tab[CT_OP_COUNT][CT_NUM_DTYPES];

static int cpu_binary(const ct_kernel_args *a) { return ct__cpu_run_loop(a, tab[a->op], a->d); }

void ct_cpu_register_binary(ct_kernel_fn *k) {
    CT_SET_FLOATS(tab[CT_OP_ADD], add); CT_SET_INTS(tab[CT_OP_ADD], add); CT_SET_COMPLEX(tab[CT_OP_ADD], add);
    tab[CT_OP_ADD][CT_BOOL] = add_b;
    CT_SET_FLOATS(tab[CT_OP_SUB], sub); CT_SET_INTS(tab[CT_OP_SUB], sub); CT_SET_COMPLEX(tab[CT_OP_SUB], sub);
    CT_SET_FLOATS(tab[CT_OP_MUL], mul); CT_SET_INTS(tab[CT_OP_MUL], mul); CT_SET_COMPLEX(tab[CT_OP_MUL], mul);
    tab[CT_OP_MUL][CT_BOOL] = mul_b;
    CT_SET_FLOATS(tab[CT_OP_DIV], div); CT_SET_COMPLEX(tab[CT_OP_DIV], div);
    for (int op = 0; op < CT_OP_COUNT; op++)
        for (int d = 0; d < CT_NUM_DTYPES; d++)
            if (tab[op][d]) { k[op] = cpu_binary; break; }
}
