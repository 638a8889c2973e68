/* One element of any dtype read or written as double, int64 or complex: the bodies of
 * ct__load_f64 and its kin (core/internal.h, defined out of line in core/dtype.c), for
 * the loops that call them with a dtype fixed at compile time (cpu/copy.c's casts),
 * where inlining folds the switch to the one conversion. Internal. */
#ifndef CT_CORE_ELEM_ACCESS_H
#define CT_CORE_ELEM_ACCESS_H

#include "core/internal.h"

static inline double ct__load_f64_inl(const void *p, ct_dtype dt) {
    switch (dt) {
    case CT_BOOL: return *(const bool *)p;
    case CT_UINT8: return *(const uint8_t *)p;
    case CT_INT8: return *(const int8_t *)p;
    case CT_INT16: return *(const int16_t *)p;
    case CT_INT32: return *(const int32_t *)p;
    case CT_INT64: return (double)*(const int64_t *)p;
    case CT_FLOAT16: return ct_half_to_float(*(const ct_half *)p);
    case CT_BFLOAT16: return ct_bf16_to_float(*(const ct_bf16 *)p);
    case CT_FLOAT32: return *(const float *)p;
    case CT_FLOAT64: return *(const double *)p;
    case CT_COMPLEX64: return crealf(*(const ct_c64 *)p);
    case CT_COMPLEX128: return creal(*(const ct_c128 *)p);
    default: return 0;
    }
}
static inline ct_c128 ct__load_c128_inl(const void *p, ct_dtype dt) {
    if (dt == CT_COMPLEX64) return *(const ct_c64 *)p;
    if (dt == CT_COMPLEX128) return *(const ct_c128 *)p;
    return ct__load_f64_inl(p, dt);
}
static inline int64_t ct__load_i64_inl(const void *p, ct_dtype dt) {
    switch (dt) {
    case CT_INT64: return *(const int64_t *)p;
    case CT_INT32: return *(const int32_t *)p;
    case CT_INT16: return *(const int16_t *)p;
    case CT_INT8: return *(const int8_t *)p;
    case CT_UINT8: return *(const uint8_t *)p;
    case CT_BOOL: return *(const bool *)p;
    default: { double v = ct__load_f64_inl(p, dt); return (v != v) ? INT64_MIN : (v >= 9.2233720368547758e18 || v < -9.2233720368547758e18) ? INT64_MIN : (int64_t)v; }
    }
}
static inline void ct__store_f64_inl(void *p, ct_dtype dt, double v) {
    switch (dt) {
    case CT_BOOL: *(bool *)p = v != 0; break;
    case CT_UINT8: *(uint8_t *)p = (uint8_t)(int64_t)v; break;
    case CT_INT8: *(int8_t *)p = (int8_t)(int64_t)v; break;
    case CT_INT16: *(int16_t *)p = (int16_t)(int64_t)v; break;
    case CT_INT32: *(int32_t *)p = (int32_t)(int64_t)v; break;
    case CT_INT64: *(int64_t *)p = (int64_t)v; break;
    case CT_FLOAT16: *(ct_half *)p = ct_float_to_half((float)v); break;
    case CT_BFLOAT16: *(ct_bf16 *)p = ct_float_to_bf16((float)v); break;
    case CT_FLOAT32: *(float *)p = (float)v; break;
    case CT_FLOAT64: *(double *)p = v; break;
    case CT_COMPLEX64: *(ct_c64 *)p = (float)v; break;
    case CT_COMPLEX128: *(ct_c128 *)p = v; break;
    default: break;
    }
}
static inline void ct__store_c128_inl(void *p, ct_dtype dt, ct_c128 v) {
    if (dt == CT_COMPLEX64) *(ct_c64 *)p = (ct_c64)v;
    else if (dt == CT_COMPLEX128) *(ct_c128 *)p = v;
    else if (dt == CT_BOOL) *(bool *)p = v != 0;
    else ct__store_f64_inl(p, dt, creal(v));
}
static inline void ct__store_i64_inl(void *p, ct_dtype dt, int64_t v) {
    switch (dt) {
    case CT_INT64: *(int64_t *)p = v; break;
    case CT_INT32: *(int32_t *)p = (int32_t)v; break;
    case CT_INT16: *(int16_t *)p = (int16_t)v; break;
    case CT_INT8: *(int8_t *)p = (int8_t)v; break;
    case CT_UINT8: *(uint8_t *)p = (uint8_t)v; break;
    case CT_BOOL: *(bool *)p = v != 0; break;
    default: ct__store_f64_inl(p, dt, (double)v); break;
    }
}

#endif
