/* libFuzzer target for the .npz reader (zip archive of .npy entries, stored or
 * deflated): any input gives a dict or an error; a loaded dict saves again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_dict *d = ct_io_load_npz_buffer(data, size);
    if (d) {
        void *out = NULL;
        size_t n = 0;
        if (ct_io_save_npz_buffer(d, size & 1, &out, &n) == 0) {
            ct_dict *e = ct_io_load_npz_buffer(out, n);
            if (!e || ct_dict_size(e) != ct_dict_size(d)) abort();
            ct_dict_free(e);
            free(out);
        }
        ct_dict_free(d);
    }
    ct_clear_error();
    return 0;
}
