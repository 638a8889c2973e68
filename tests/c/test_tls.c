/* The library's thread-local state: each thread has its own error record (its message
 * buffer allocated by its first error and freed when the thread ends: the ASan build
 * checks for leaks), and the library's thread-local block is small enough that more
 * copies of it load with dlopen (its hot thread-locals use the initial-exec model,
 * whose blocks come from glibc's small static TLS surplus: a 1 KiB message buffer there
 * once made a second dlopen'ed copy fail with "cannot allocate memory in static TLS
 * block"). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ctorch.h>

#include "check.h"

typedef struct {
    int64_t n;      /* the size of the mismatched second operand */
    char msg[256];  /* the message this thread saw */
    ct_status st;
} err_job;

static void *make_error(void *p) {
    err_job *j = p;
    ct_tensor *a = ct_zeros(CT_SHAPE(2, 3), CT_FLOAT32), *b = ct_zeros(CT_SHAPE(j->n), CT_FLOAT32);
    ct_tensor *c = ct_add(a, b);
    j->st = c ? CT_OK : ct_last_status();
    snprintf(j->msg, sizeof j->msg, "%s", ct_last_error());
    ct_release(c);
    ct_release(a);
    ct_release(b);
    return NULL;
}

static void test_per_thread_errors(void) {
    ct_clear_error();
    err_job jobs[4] = {{.n = 4}, {.n = 5}, {.n = 7}, {.n = 9}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, make_error, &jobs[i]) == 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof want, "[%lld]", (long long)jobs[i].n);
        CHECK(jobs[i].st == CT_ERR_SHAPE && strstr(jobs[i].msg, "add") && strstr(jobs[i].msg, want));
    }
    /* the main thread saw none of them */
    CHECK(ct_last_status() == CT_OK && ct_last_error()[0] == 0);
    ct_tensor *a = ct_zeros(CT_SHAPE(3), CT_FLOAT32);
    CHECK(ct_view(a, CT_SHAPE(4)) == NULL && ct_last_status() == CT_ERR_SHAPE && ct_last_error()[0] != 0);
    ct_clear_error();
    CHECK(ct_last_status() == CT_OK && ct_last_error()[0] == 0);
    ct_release(a);
}

/* copies the file at src to a new temporary file; its path in out (empty on failure) */
static void copy_to_temp(const char *src, char *out, size_t n) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/ctorch-tls-XXXXXX", dir && *dir ? dir : P_tmpdir);
    int fd = mkstemp(out);
    FILE *in = fopen(src, "rb");
    bool ok = fd >= 0 && in;
    char buf[1 << 16];
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) ok = write(fd, buf, k) == (ssize_t)k;
    if (in) fclose(in);
    if (fd >= 0) close(fd);
    if (!ok) {
        if (fd >= 0) unlink(out);
        out[0] = 0;
    }
}

static void test_more_copies_load(void) {
    Dl_info info;
    if (!dladdr((void *)ct_version, &info) || !info.dli_fname || !strstr(info.dli_fname, "libctorch.so")) {
        printf("test_tls: the library is not a shared object here; the dlopen check is skipped\n");
        return;
    }
    char path[2][512];
    void *h[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        copy_to_temp(info.dli_fname, path[i], sizeof path[i]);
        CHECK(path[i][0] != 0);
        if (!path[i][0]) continue;
        h[i] = dlopen(path[i], RTLD_NOW | RTLD_LOCAL);
        if (!h[i]) fprintf(stderr, "test_tls: dlopen of a copy: %s\n", dlerror());
        CHECK(h[i] != NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (!h[i]) continue;
        /* each copy works and keeps its own error record */
        ct_tensor *(*zeros)(int, const int64_t *, ct_dtype) = (ct_tensor * (*)(int, const int64_t *, ct_dtype)) dlsym(h[i], "ct_zeros");
        ct_tensor *(*add)(const ct_tensor *, const ct_tensor *) = (ct_tensor * (*)(const ct_tensor *, const ct_tensor *)) dlsym(h[i], "ct_add");
        const char *(*last_error)(void) = (const char *(*)(void))dlsym(h[i], "ct_last_error");
        void (*release)(ct_tensor *) = (void (*)(ct_tensor *))dlsym(h[i], "ct_release");
        CHECK(zeros && add && last_error && release);
        if (!zeros || !add || !last_error || !release) continue;
        ct_tensor *a = zeros(2, (const int64_t[]){2, 3}, CT_FLOAT32), *b = zeros(1, (const int64_t[]){5}, CT_FLOAT32);
        CHECK(a && b && add(a, b) == NULL && strstr(last_error(), "[5]"));
        release(a);
        release(b);
    }
    CHECK(ct_last_status() == CT_OK); /* the linked copy's record is untouched */
    /* the copies stay loaded (the library is linked -z nodelete: its thread-exit
     * destructors must outlive every thread), their files can go */
    for (int i = 0; i < 2; i++)
        if (path[i][0]) unlink(path[i]);
}

int main(void) {
    test_per_thread_errors();
    test_more_copies_load();
    printf("test_tls: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
