/* Thread-local error record. The first error of a chain is kept: an op that receives
 * a NULL tensor (the result of an earlier failure) does not overwrite it.
 *
 * The message buffer is allocated by a thread's first error (and freed when the thread
 * ends), not kept in thread-local storage: the library's hot thread-locals use the
 * initial-exec model, which makes its whole TLS block come from the static TLS surplus
 * glibc keeps for libraries loaded with dlopen (Python's ctypes, plugins); a 1 KiB
 * message buffer there left room for one copy of the library and little else (a second
 * copy failed to load: "cannot allocate memory in static TLS block"). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"
#include "ct_version_gen.h"

#define ERR_MSG_SIZE 1024
static _Thread_local ct_status err_status;
static _Thread_local char *err_msg;
static pthread_key_t err_key;
static pthread_once_t err_once = PTHREAD_ONCE_INIT;

static void err_free(void *p) {
    free(p);
    err_msg = NULL; /* an error recorded by a later destructor of this thread allocates anew */
}
static void err_key_init(void) { (void)pthread_key_create(&err_key, err_free); }

/* this thread's message buffer, or NULL when it cannot be allocated */
static char *err_buf(void) {
    if (!err_msg && (err_msg = calloc(1, ERR_MSG_SIZE))) {
        pthread_once(&err_once, err_key_init);
        pthread_setspecific(err_key, err_msg);
    }
    return err_msg;
}

static ct_error_handler handler;
static void *handler_user;

CT_API const char *ct_version(void) { return CT_VERSION_STRING_GEN; }
CT_API const char *ct_last_error(void) { return err_msg ? err_msg : ""; }
CT_API ct_status ct_last_status(void) { return err_status; }
CT_API void ct_clear_error(void) {
    err_status = CT_OK;
    if (err_msg) err_msg[0] = 0;
}
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
    err_status = st;
    char *b = err_buf();
    if (b) vsnprintf(b, ERR_MSG_SIZE, fmt, ap);
    if (handler) handler(st, b ? b : "(no memory for the error message)", handler_user);
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
    if (err_status == CT_OK) ct__err(CT_ERR_NULL, "%s: got a NULL tensor argument", op);
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
