/* Thread-local error record. The first error of a chain is kept: an op that receives
 * a NULL tensor (the result of an earlier failure) does not overwrite it. */
#include <stdio.h>

#include "core/internal.h"
#include "ct_version_gen.h"

static _Thread_local struct {
    ct_status status;
    char msg[1024];
} err;

static ct_error_handler handler;
static void *handler_user;

CT_API const char *ct_version(void) { return CT_VERSION_STRING_GEN; }
CT_API const char *ct_last_error(void) { return err.msg; }
CT_API ct_status ct_last_status(void) { return err.status; }
CT_API void ct_clear_error(void) { err.status = CT_OK; err.msg[0] = 0; }
CT_API void ct_set_error_handler(ct_error_handler h, void *user) { handler = h; handler_user = user; }

CT_API const char *ct_status_str(ct_status s) {
    switch (s) {
    case CT_OK: return "ok";
    case CT_ERR_ARG: return "invalid argument";
    case CT_ERR_SHAPE: return "shape mismatch";
    case CT_ERR_DTYPE: return "unsupported dtype";
    case CT_ERR_DEVICE: return "device mismatch";
    case CT_ERR_INDEX: return "index out of range";
    case CT_ERR_OOM: return "out of memory";
    case CT_ERR_AUTOGRAD: return "autograd error";
    case CT_ERR_RUNTIME: return "runtime error";
    case CT_ERR_NULL: return "NULL argument";
    case CT_ERR_IO: return "I/O error";
    case CT_ERR_FORMAT: return "malformed data";
    case CT_ERR_KEY: return "key not found";
    }
    return "unknown status";
}

static void record(ct_status st, const char *fmt, va_list ap) {
    err.status = st;
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    if (handler) handler(st, err.msg, handler_user);
}

void *ct__err(ct_status st, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); record(st, fmt, ap); va_end(ap);
    return NULL;
}
int ct__errs(ct_status st, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt); record(st, fmt, ap); va_end(ap);
    return st;
}
CT_API int ct_set_error(ct_status st, const char *fmt, ...) {
    if (st == CT_OK) {
        ct_clear_error();
        return CT_OK;
    }
    va_list ap; va_start(ap, fmt); record(st, fmt ? fmt : "", ap); va_end(ap);
    return st;
}
void *ct__null_arg(const char *op) {
    if (err.status == CT_OK) ct__err(CT_ERR_NULL, "%s: got a NULL tensor argument", op);
    return NULL;
}

char *ct__shape_str(int ndim, const int64_t *sizes, char *buf, size_t n) {
    size_t k = 0;
    if (n == 0) return buf;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)sizes[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}
CT_API char *ct_shape_str(const ct_tensor *t, char *buf, size_t n) {
    if (!t) { if (n) snprintf(buf, n, "NULL"); return buf; }
    return ct__shape_str(t->ndim, t->sizes, buf, n);
}
