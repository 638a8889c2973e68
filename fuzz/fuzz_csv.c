/* libFuzzer target for the CSV reader: any input gives a [rows, cols] tensor or an
 * error, never a crash, a leak or an allocation beyond the input's size. The first byte
 * picks the options (delimiter, header, dtype, comment), the rest is the text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t k = data[0];
    static const char delims[] = {',', ';', '\t', ' '};
    static const ct_dtype dtypes[] = {CT_FLOAT32, CT_FLOAT64, CT_INT32, CT_INT64};
    ct_csv_opts o = {delims[k & 3], (k >> 2) & 1, dtypes[(k >> 3) & 3], (k >> 5) & 1, (k >> 6) & 1 ? '#' : 0};
    char **names = NULL;
    int64_t n = 0;
    ct_tensor *t = ct_data_read_csv_buffer(data + 1, size - 1, &o, &names, &n);
    if (t) {
        /* the shape accounts for every value: rows * cols numbers were parsed */
        if (ct_ndim(t) != 2) abort();
        ct_release(t);
    }
    ct_data_csv_names_free(names, n);
    ct_clear_error();
    return 0;
}
