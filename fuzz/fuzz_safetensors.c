/* libFuzzer target for the safetensors reader: any input must give a dict or an error,
 * never a crash, a leak or an unbounded allocation. Build: see fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_dict *d = ct_safetensors_load_buffer(data, size);
    if (d) { /* a loaded file must save again */
        void *out = NULL;
        size_t n = 0;
        if (ct_safetensors_save_buffer(d, &out, &n) == 0) free(out);
        ct_dict_free(d);
    }
    ct_clear_error();
    return 0;
}
