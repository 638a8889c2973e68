/* Dtype names, sizes, promotion (torch.promote_types / result_type) and the slow
 * per-element load/store used by printing, item() and tests. */
#include "core/internal.h"
#include "core/elem_access.h"

static const struct {
    const char *name;
    size_t size;
} DT[CT_NUM_DTYPES] = {
    [CT_BOOL] = {"bool", 1},         [CT_UINT8] = {"uint8", 1},       [CT_INT8] = {"int8", 1},
    [CT_INT16] = {"int16", 2},       [CT_INT32] = {"int32", 4},       [CT_INT64] = {"int64", 8},
    [CT_FLOAT16] = {"float16", 2},   [CT_BFLOAT16] = {"bfloat16", 2}, [CT_FLOAT32] = {"float32", 4},
    [CT_FLOAT64] = {"float64", 8},   [CT_COMPLEX64] = {"complex64", 8}, [CT_COMPLEX128] = {"complex128", 16},
};

static _Atomic int default_dtype = CT_FLOAT32;

CT_API const char *ct_dtype_name(ct_dtype d) { return (unsigned)d < CT_NUM_DTYPES ? DT[d].name : "invalid"; }
CT_API size_t ct_dtype_size(ct_dtype d) { return (unsigned)d < CT_NUM_DTYPES ? DT[d].size : 0; }
CT_API bool ct_dtype_is_floating(ct_dtype d) { return d >= CT_FLOAT16 && d <= CT_FLOAT64; }
CT_API bool ct_dtype_is_complex(ct_dtype d) { return d == CT_COMPLEX64 || d == CT_COMPLEX128; }
CT_API bool ct_dtype_is_integral(ct_dtype d, bool include_bool) {
    return (d >= CT_UINT8 && d <= CT_INT64) || (include_bool && d == CT_BOOL);
}
CT_API ct_dtype ct_get_default_dtype(void) { return (ct_dtype)default_dtype; }
CT_API int ct_set_default_dtype(ct_dtype d) {
    if (d != CT_FLOAT32 && d != CT_FLOAT64)
        return ct__errs(CT_ERR_DTYPE, "set_default_dtype: only floating point types are supported as the default type, got %s",
                        ct_dtype_name(d));
    default_dtype = d;
    return 0;
}

static int category(ct_dtype d) {
    if (d == CT_BOOL) return 0;
    if (ct_dtype_is_integral(d, false)) return 1;
    if (ct_dtype_is_floating(d)) return 2;
    return 3;
}

static ct_dtype to_complex(ct_dtype d) { return d == CT_FLOAT64 ? CT_COMPLEX128 : CT_COMPLEX64; }

CT_API ct_dtype ct_promote_types(ct_dtype a, ct_dtype b) {
    if (a == b) return a;
    int ca = category(a), cb = category(b);
    if (ca > cb || (ca == cb && a > b)) { ct_dtype t = a; a = b; b = t; int c = ca; ca = cb; cb = c; }
    /* now category(a) <= category(b); within a category a < b */
    if (ca == 0) return b;
    if (ca == 1 && cb == 1) return (a == CT_UINT8 && b == CT_INT8) ? CT_INT16 : b;
    if (cb == 2 && ca == 2) return (a == CT_FLOAT16 && b == CT_BFLOAT16) ? CT_FLOAT32 : b;
    if (cb == 2) return b; /* int with float */
    if (cb == 3 && ca == 3) return b;
    if (ca == 2 && a == CT_FLOAT64) return CT_COMPLEX128; /* float64 with complex64 */
    return b;
}

#define UNDEF ((ct_dtype)-1)
static ct_dtype promote_skip(ct_dtype a, ct_dtype b) {
    if (a == UNDEF) return b;
    if (b == UNDEF) return a;
    return ct_promote_types(a, b);
}
static bool is_f(ct_dtype d) { return d != UNDEF && ct_dtype_is_floating(d); }
static bool is_c(ct_dtype d) { return d != UNDEF && ct_dtype_is_complex(d); }
static ct_dtype combine(ct_dtype higher, ct_dtype lower) {
    if (is_c(higher)) return higher;
    if (is_c(lower)) return is_f(higher) ? to_complex(higher) : lower;
    if (is_f(higher)) return higher;
    if (higher == CT_BOOL || is_f(lower)) return promote_skip(higher, lower);
    if (higher != UNDEF) return higher;
    return lower;
}

ct_dtype ct__result_type(int n, const ct_tensor *const *ts) {
    ct_dtype dim = UNDEF, zero = UNDEF, wrapped = UNDEF;
    for (int i = 0; i < n; i++) {
        const ct_tensor *t = ts[i];
        if (!t) continue;
        ct_dtype cur = t->dtype;
        if (t->is_wrapped_number) {
            if (ct_dtype_is_complex(cur)) cur = to_complex(ct_get_default_dtype());
            else if (ct_dtype_is_floating(cur)) cur = ct_get_default_dtype();
            wrapped = promote_skip(wrapped, cur);
        } else if (t->ndim > 0) dim = promote_skip(dim, cur);
        else zero = promote_skip(zero, cur);
    }
    ct_dtype r = combine(dim, combine(zero, wrapped));
    return r == UNDEF ? ct_get_default_dtype() : r;
}

/* ---- slow per-element access (the bodies: core/elem_access.h) ---- */
double ct__load_f64(const void *p, ct_dtype dt) { return ct__load_f64_inl(p, dt); }
ct_c128 ct__load_c128(const void *p, ct_dtype dt) { return ct__load_c128_inl(p, dt); }
int64_t ct__load_i64(const void *p, ct_dtype dt) { return ct__load_i64_inl(p, dt); }
void ct__store_f64(void *p, ct_dtype dt, double v) { ct__store_f64_inl(p, dt, v); }
void ct__store_c128(void *p, ct_dtype dt, ct_c128 v) { ct__store_c128_inl(p, dt, v); }
void ct__store_i64(void *p, ct_dtype dt, int64_t v) { ct__store_i64_inl(p, dt, v); }

/* PyTorch's ScalarType names ("Float", "Long", ...), used in its error messages. */
const char *ct__scalar_type_name(ct_dtype dt) {
    static const char *n[] = {"Bool", "Byte", "Char", "Short", "Int", "Long", "Half", "BFloat16",
                              "Float", "Double", "ComplexFloat", "ComplexDouble"};
    return (unsigned)dt < CT_NUM_DTYPES ? n[dt] : "Undefined";
}
