/* libFuzzer target for the .npy reader: any input gives a tensor or an error, never a
 * crash, a leak or an unbounded allocation; a loaded tensor saves again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_tensor *t = ct_npy_load_buffer(data, size);
    if (t) {
        void *out = NULL;
        size_t n = 0;
        if (ct_npy_save_buffer(t, &out, &n) == 0) free(out);
        ct_release(t);
    }
    ct_clear_error();
    return 0;
}
