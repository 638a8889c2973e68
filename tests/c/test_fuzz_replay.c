/* Replays the fuzz targets' seed corpora (fuzz/corpus/<target>/) and the kept crash
 * inputs (fuzz/regressions/) through the same readers the libFuzzer targets call, so
 * `make test` and `make test-asan` exercise them without clang: every seed must load
 * (and save and load again), every regression input must fail cleanly or load, and
 * nothing may leak. The repository is found from this file's path. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

typedef struct {
    const char *dir;
    bool (*run)(const unsigned char *b, size_t n); /* true if it loaded */
} target;

static bool run_dict(ct_dict *d, ct_dict *(*load)(const void *, size_t), int (*save)(const ct_dict *, void **, size_t *)) {
    if (!d) return false;
    void *out = NULL;
    size_t n = 0;
    if (save(d, &out, &n) == 0) {
        ct_dict *e = load(out, n);
        CHECK(e && ct_dict_size(e) == ct_dict_size(d));
        ct_dict_free(e);
        free(out);
    }
    ct_dict_free(d);
    return true;
}
static int save_pt(const ct_dict *d, void **o, size_t *n) { return ct_io_save_pt_buffer(d, o, n); }
static int save_npz(const ct_dict *d, void **o, size_t *n) { return ct_io_save_npz_buffer(d, true, o, n); }
static bool run_pt(const unsigned char *b, size_t n) { return run_dict(ct_io_load_pt_buffer(b, n), ct_io_load_pt_buffer, save_pt); }
static bool run_npz(const unsigned char *b, size_t n) { return run_dict(ct_io_load_npz_buffer(b, n), ct_io_load_npz_buffer, save_npz); }
static bool run_st(const unsigned char *b, size_t n) {
    return run_dict(ct_safetensors_load_buffer(b, n), ct_safetensors_load_buffer, ct_safetensors_save_buffer);
}
static bool run_tensor(ct_tensor *t) {
    if (!t) return false;
    ct_release(t);
    return true;
}
static bool run_npy(const unsigned char *b, size_t n) { return run_tensor(ct_npy_load_buffer(b, n)); }
static bool run_idx(const unsigned char *b, size_t n) { return run_tensor(ct_data_read_idx_buffer(b, n)); }

/* as fuzz/fuzz_csv.c: the first byte picks the options, the rest is the text */
static bool run_csv(const unsigned char *b, size_t n) {
    if (n < 1) return false;
    static const char delims[] = {',', ';', '\t', ' '};
    static const ct_dtype dtypes[] = {CT_FLOAT32, CT_FLOAT64, CT_INT32, CT_INT64};
    unsigned char k = b[0];
    ct_csv_opts o = {delims[k & 3], (k >> 2) & 1, dtypes[(k >> 3) & 3], (k >> 5) & 1, (k >> 6) & 1 ? '#' : 0};
    char **names = NULL;
    int64_t nn = 0;
    bool ok = run_tensor(ct_data_read_csv_buffer(b + 1, n - 1, &o, &names, &nn));
    ct_data_csv_names_free(names, nn);
    return ok;
}

static const target TARGETS[] = {{"pt", run_pt},   {"npz", run_npz},         {"idx", run_idx},
                                 {"npy", run_npy}, {"safetensors", run_st}, {"csv", run_csv}};
#define N_TARGETS (int)(sizeof TARGETS / sizeof TARGETS[0])

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = b && sz >= 0 ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    return b;
}

/* calls fn on every regular file of dir; returns how many files there were */
static int each_file(const char *dir, void (*fn)(const char *path, void *ctx), void *ctx) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        fn(p, ctx);
        n++;
    }
    closedir(d);
    return n;
}

static void seed(const char *path, void *ctx) {
    const target *t = ctx;
    size_t n;
    unsigned char *b = slurp(path, &n);
    CHECK(b != NULL);
    ct_clear_error();
    bool ok = b && t->run(b, n);
    if (!ok) fprintf(stderr, "seed %s does not load: %s\n", path, ct_last_error());
    CHECK(ok);
    free(b);
    ct_clear_error();
}

static void regression(const char *path, void *ctx) {
    (void)ctx;
    size_t n;
    unsigned char *b = slurp(path, &n);
    CHECK(b != NULL);
    for (int i = 0; b && i < N_TARGETS; i++) { /* any reader, any input: an error or a value, nothing worse */
        ct_clear_error();
        if (!TARGETS[i].run(b, n)) CHECK(ct_last_status() == CT_ERR_FORMAT || ct_last_status() == CT_ERR_OOM);
    }
    free(b);
    ct_clear_error();
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    char root[4096];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *s = strstr(root, "tests/c/test_fuzz_replay.c");
    if (!s) {
        printf("test_fuzz_replay: cannot locate the repository from %s; skipped\n", __FILE__);
        return 77;
    }
    *s = 0;
    char dir[4200];
    for (int i = 0; i < N_TARGETS; i++) {
        snprintf(dir, sizeof dir, "%sfuzz/corpus/%s", root, TARGETS[i].dir);
        int n = each_file(dir, seed, (void *)&TARGETS[i]);
        CHECK(n > 0);
    }
    snprintf(dir, sizeof dir, "%sfuzz/regressions", root);
    CHECK(each_file(dir, regression, NULL) >= 0);
    CHECK(ct_live_tensors() == live0);
    printf("test_fuzz_replay: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
