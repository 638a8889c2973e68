/* Complex helpers shared by the CPU kernels (internal). */
#ifndef CT_CPU_CMATH_H
#define CT_CPU_CMATH_H

#include <complex.h>
#include <math.h>

#include "core/internal.h"

/* log(1 + z) with the real part 0.5 * log1p(2x + x^2 + y^2), accurate for small |z| */
static inline ct_c128 ct__c_log1p(ct_c128 z) {
    double x = creal(z), y = cimag(z);
    return CMPLX(0.5 * log1p(2.0 * x + x * x + y * y), atan2(y, 1.0 + x));
}

#endif
