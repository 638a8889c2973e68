/* CPU kernels for unary elementwise ops. Input arrives in the compute dtype. */
#include "cpu/loops.h"

CT_UNARY_FLOATS(neg, -a)
CT_UNARY_INTS(neg, -a)
CT_UNARY_COMPLEX(neg, -a)
CT_UNARY_COMPLEX(conj, conj(a))
CT_UNARY_LOOP(real_c64, ct_c64, ct_c64, LD_ID, ST_ID, float, ST_ID, crealf(a))
CT_UNARY_LOOP(real_c128, ct_c128, ct_c128, LD_ID, ST_ID, double, ST_ID, creal(a))

static ct_loop_fn tab[CT_OP_COUNT][CT_NUM_DTYPES];

static int cpu_unary(const ct_kernel_args *a) { return ct__cpu_run_loop(a, tab[a->op], a->d); }

void ct_cpu_register_unary(ct_kernel_fn *k) {
    CT_SET_FLOATS(tab[CT_OP_NEG], neg); CT_SET_INTS(tab[CT_OP_NEG], neg); CT_SET_COMPLEX(tab[CT_OP_NEG], neg);
    CT_SET_COMPLEX(tab[CT_OP_CONJ], conj);
    CT_SET_COMPLEX(tab[CT_OP_REAL], real);
    for (int op = 0; op < CT_OP_COUNT; op++)
        for (int d = 0; d < CT_NUM_DTYPES; d++)
            if (tab[op][d]) { k[op] = cpu_unary; break; }
}
