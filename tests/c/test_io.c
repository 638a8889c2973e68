/* File-format readers on inputs the fuzzers found (run under ASan by make test-asan):
 * each must give an error, never a read out of bounds. */
#include <stdio.h>
#include <stdlib.h>

#include <ctorch.h>

#include "check.h"

/* fuzz/regressions/npy-shape-at-header-end: 'shape': is the header's last token */
static const unsigned char NPY_SHAPE_AT_END[] = {147, 78, 85, 77, 80, 89, 1, 47, 118, 0, 123, 123, 39, 100, 39, 39, 100, 101, 115, 99, 114, 39, 58, 32, 39, 60, 105, 56, 39, 36, 32, 39, 102, 111, 114, 116, 114, 97, 110, 95, 111, 114, 100, 101, 114, 39, 58, 32, 84, 114, 117, 101, 44, 48, 39, 115, 104, 97, 32, 125, 32, 32, 39, 58, 32, 64, 39, 115, 104, 97, 112, 101, 39, 58, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32};

int main(void) {
    int64_t live0 = ct_live_tensors();
    ct_clear_error();
    CHECK(ct_npy_load_buffer(NPY_SHAPE_AT_END, sizeof NPY_SHAPE_AT_END) == NULL && ct_last_status() == CT_ERR_FORMAT);
    ct_clear_error();
    /* every prefix of a valid file is refused or loads completely */
    ct_tensor *t = ct_arange(0, 12, 1, CT_FLOAT32);
    void *buf = NULL;
    size_t n = 0;
    CHECK(ct_npy_save_buffer(t, &buf, &n) == 0);
    for (size_t k = 0; k < n; k++) {
        ct_tensor *r = ct_npy_load_buffer(buf, k);
        CHECK(r == NULL);
        ct_clear_error();
    }
    ct_tensor *r = ct_npy_load_buffer(buf, n);
    CHECK(r && ct_numel(r) == 12);
    ct_release(r);
    free(buf);
    ct_dict *d = ct_dict_new();
    ct_dict_set(d, "t", t);
    CHECK(ct_safetensors_save_buffer(d, &buf, &n) == 0);
    for (size_t k = 0; k < n; k++) {
        ct_dict *e = ct_safetensors_load_buffer(buf, k);
        CHECK(e == NULL);
        ct_clear_error();
    }
    free(buf);
    ct_dict_free(d);
    ct_release(t);
    CHECK(ct_live_tensors() == live0);
    printf("test_io: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
