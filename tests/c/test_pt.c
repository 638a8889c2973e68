#define _GNU_SOURCE /* memmem */
/* torch.save (.pt), .npz and IDX buffers (run under ASan by make test-asan): round trips
 * keep values, dtypes and shared storages; every truncation of a valid file and
 * hostile contents fail cleanly with CT_ERR_FORMAT; nothing leaks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

static bool same(const ct_tensor *a, const ct_tensor *b) {
    if (!a || !b || ct_get_dtype(a) != ct_get_dtype(b) || ct_ndim(a) != ct_ndim(b)) return false;
    for (int d = 0; d < ct_ndim(a); d++)
        if (ct_size(a, d) != ct_size(b, d)) return false;
    ct_scope_begin();
    ct_tensor *x = ct_contiguous(a), *y = ct_contiguous(b);
    bool ok = x && y && memcmp(ct_data_ptr(x), ct_data_ptr(y), (size_t)ct_numel(x) * ct_dtype_size(ct_get_dtype(x))) == 0;
    ct_scope_end();
    return ok;
}

static uint32_t crc32_(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static ct_dict *sample(void) {
    ct_dict *d = ct_dict_new();
    ct_scope_begin();
    ct_tensor *base = ct_arange(0, 12, 1, CT_FLOAT32);
    ct_dict_set(d, "base", base);
    ct_dict_set(d, "view", ct_as_strided(base, 2, (int64_t[]){3, 2}, (int64_t[]){1, 4}, 2)); /* shares base */
    const ct_dtype dts[] = {CT_BOOL, CT_UINT8, CT_INT8, CT_INT16, CT_INT32, CT_INT64, CT_FLOAT16, CT_BFLOAT16,
                            CT_FLOAT64, CT_COMPLEX64, CT_COMPLEX128};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        char k[32];
        snprintf(k, sizeof k, "layer.%zu.w", i);
        ct_dict_set(d, k, ct_to_dtype(ct_reshape(ct_arange(-3, 3, 1, CT_FLOAT64), 2, (int64_t[]){2, 3}), dts[i]));
    }
    ct_dict_set(d, "scalar", ct_scalar_tensor(2.5, CT_FLOAT64));
    ct_dict_set(d, "empty", ct_zeros(2, (int64_t[]){0, 4}, CT_INT32));
    ct_scope_end();
    return d;
}

static bool same_dict(const ct_dict *a, const ct_dict *b, bool skip_bf16) {
    bool ok = true;
    for (int64_t i = 0; i < ct_dict_size(a); i++) {
        ct_tensor *x = ct_dict_value(a, i);
        if (skip_bf16 && ct_get_dtype(x) == CT_BFLOAT16) { ct_release(x); continue; }
        ct_tensor *y = ct_dict_get(b, ct_dict_key(a, i));
        if (!same(x, y)) { fprintf(stderr, "differs: %s\n", ct_dict_key(a, i)); ok = false; }
        ct_release(x);
        ct_release(y);
    }
    return ok;
}

static void every_prefix_fails(ct_dict *(*load)(const void *, size_t), const unsigned char *b, size_t n, const char *what) {
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        ct_clear_error();
        ct_dict *e = load(b, k);
        if (e || ct_last_status() != CT_ERR_FORMAT) bad++;
        ct_dict_free(e);
    }
    if (bad) fprintf(stderr, "%s: %d truncations did not fail cleanly\n", what, bad);
    CHECK(bad == 0);
}

static void test_pt(void) {
    ct_dict *d = sample();
    void *buf = NULL;
    size_t n = 0;
    CHECK(ct_io_save_pt_buffer(d, &buf, &n) == 0);
    ct_dict *e = ct_io_load_pt_buffer(buf, n);
    CHECK(e && ct_dict_size(e) == ct_dict_size(d) && same_dict(d, e, false));
    if (e) { /* the view still shares the base's storage */
        ct_tensor *b = ct_dict_get(e, "base"), *v = ct_dict_get(e, "view");
        CHECK((char *)ct_data_ptr(v) == (char *)ct_data_ptr(b) + 2 * sizeof(float));
        ct_release(b);
        ct_release(v);
    }
    ct_dict_free(e);
    every_prefix_fails(ct_io_load_pt_buffer, buf, n, "pt");

    /* a forbidden global with a correct CRC: refused by name */
    unsigned char *h = malloc(n);
    memcpy(h, buf, n);
    unsigned char *g = memmem(h, n, "collections\nOrderedDict", 23);
    CHECK(g != NULL);
    if (g) {
        memcpy(g, "subprocess\ncheck_output", 23);
        unsigned char *cd = memmem(h, n, "PK\x01\x02", 4); /* first central entry: data.pkl */
        unsigned char *lh = h; /* its local header is the archive's first */
        size_t start = 30 + (size_t)(lh[26] | lh[27] << 8) + (size_t)(lh[28] | lh[29] << 8);
        size_t len = (size_t)(cd[24] | cd[25] << 8 | cd[26] << 16 | (size_t)cd[27] << 24);
        uint32_t c = crc32_(h + start, len);
        for (int k = 0; k < 4; k++) cd[16 + k] = (unsigned char)(c >> (8 * k));
        ct_clear_error();
        CHECK(ct_io_load_pt_buffer(h, n) == NULL && ct_last_status() == CT_ERR_FORMAT);
        CHECK(strstr(ct_last_error(), "subprocess.check_output") && strstr(ct_last_error(), "not allowed"));
    }
    /* every single-byte corruption of the archive fails cleanly or loads */
    for (size_t k = 0; k < n; k += 3) {
        memcpy(h, buf, n);
        h[k] ^= 0x5A;
        ct_clear_error();
        ct_dict *x = ct_io_load_pt_buffer(h, n);
        CHECK(x || ct_last_status() == CT_ERR_FORMAT);
        ct_dict_free(x);
    }
    free(h);
    free(buf);
    ct_dict_free(d);
    ct_clear_error();
    CHECK(ct_io_load_pt_buffer("PK", 2) == NULL && ct_last_status() == CT_ERR_FORMAT);
    ct_clear_error();
    CHECK(ct_io_load_pt("/nonexistent/x.pt") == NULL && ct_last_status() == CT_ERR_IO);
    ct_clear_error();
}

static void test_npz(void) {
    ct_dict *d = sample();
    ct_dict_remove(d, "layer.7.w"); /* bfloat16: NumPy has none */
    for (int comp = 0; comp < 2; comp++) {
        void *buf = NULL;
        size_t n = 0;
        CHECK(ct_io_save_npz_buffer(d, comp, &buf, &n) == 0);
        ct_dict *e = ct_io_load_npz_buffer(buf, n);
        CHECK(e && ct_dict_size(e) == ct_dict_size(d) && same_dict(d, e, true));
        ct_dict_free(e);
        every_prefix_fails(ct_io_load_npz_buffer, buf, n, comp ? "npz (compressed)" : "npz");
        free(buf);
    }
    ct_dict *bf = ct_dict_new();
    ct_tensor *t = ct_zeros(1, (int64_t[]){2}, CT_BFLOAT16);
    ct_dict_set(bf, "b", t);
    ct_release(t);
    void *buf = NULL;
    size_t n = 0;
    ct_clear_error();
    CHECK(ct_io_save_npz_buffer(bf, false, &buf, &n) == CT_ERR_DTYPE && buf == NULL);
    ct_dict_free(bf);
    ct_dict_free(d);
    ct_clear_error();
}

/* fuzz/corpus/idx/images.idx(.gz): 2 x 3 x 3 uint8 images 0..17 */
static const unsigned char IDX_GZ[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63, 0x60, 0xe0,
                                       0x60, 0x66, 0x60, 0x60, 0x60, 0x02, 0x62, 0x66, 0x30, 0x66, 0x64, 0x62, 0x66,
                                       0x61, 0x65, 0x63, 0xe7, 0xe0, 0xe4, 0xe2, 0xe6, 0xe1, 0xe5, 0xe3, 0x17, 0x10,
                                       0x04, 0x00, 0xd3, 0x58, 0x08, 0x02, 0x22, 0x00, 0x00, 0x00};

static void test_idx(void) {
    unsigned char plain[34] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3};
    for (int i = 0; i < 18; i++) plain[16 + i] = (unsigned char)i;
    const unsigned char *bufs[2] = {plain, IDX_GZ};
    size_t lens[2] = {sizeof plain, sizeof IDX_GZ};
    for (int b = 0; b < 2; b++) {
        ct_tensor *t = ct_data_read_idx_buffer(bufs[b], lens[b]);
        CHECK(t && ct_get_dtype(t) == CT_UINT8 && ct_ndim(t) == 3 && ct_size(t, 0) == 2 && ct_numel(t) == 18);
        CHECK(t && ((unsigned char *)ct_data_ptr(t))[17] == 17);
        ct_release(t);
        int bad = 0;
        for (size_t k = 0; k < lens[b]; k++) {
            ct_clear_error();
            ct_tensor *r = ct_data_read_idx_buffer(bufs[b], k);
            if (r || ct_last_status() != CT_ERR_FORMAT) bad++;
            ct_release(r);
        }
        CHECK(bad == 0);
    }
    /* big-endian int32 and a header claiming 2^40 elements */
    const unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 0x11, 0x70};
    ct_tensor *t = ct_data_read_idx_buffer(i32, sizeof i32);
    CHECK(t && ((int32_t *)ct_data_ptr(t))[0] == -1 && ((int32_t *)ct_data_ptr(t))[1] == 70000);
    ct_release(t);
    const unsigned char huge[] = {0, 0, 8, 2, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3};
    ct_clear_error();
    CHECK(ct_data_read_idx_buffer(huge, sizeof huge) == NULL && ct_last_status() == CT_ERR_FORMAT);
    ct_clear_error();
}

/* fuzz/regressions/idx-zero-size-stride-overflow (found by fuzz_idx: UBSan signed
 * overflow computing contiguous strides) and its .npy twin: a size of 0 made the element
 * count 0, so the sizes after it went unchecked and their strides overflowed */
static void test_zero_size_overflow(void) {
    const unsigned char idx[] = {0, 0, 8, 4, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    ct_clear_error();
    CHECK(ct_data_read_idx_buffer(idx, sizeof idx) == NULL && ct_last_status() == CT_ERR_FORMAT);
    char npy[128] = "\x93NUMPY\x01\x00";
    const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776, 1099511627776), }";
    size_t hl = strlen(h), pad = (64 - (10 + hl + 1) % 64) % 64, total = 10 + hl + pad + 1;
    npy[8] = (char)(hl + pad + 1), npy[9] = 0;
    memcpy(npy + 10, h, hl);
    memset(npy + 10 + hl, ' ', pad);
    npy[total - 1] = '\n';
    ct_clear_error();
    CHECK(ct_npy_load_buffer(npy, total) == NULL && ct_last_status() == CT_ERR_FORMAT);
    ct_clear_error();
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    test_pt();
    test_npz();
    test_idx();
    test_zero_size_overflow();
    CHECK(ct_live_tensors() == live0);
    printf("test_pt: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
