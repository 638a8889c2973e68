/* libFuzzer target for the torch.save (.pt) reader: zip directory, restricted
 * unpickler, tensor geometry. Any input gives a dict or an error, never a crash, a leak
 * or an unbounded allocation; a loaded dict saves again (when its tensors are small:
 * a stride-0 view may legitimately describe far more elements than the file holds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_dict *d = ct_io_load_pt_buffer(data, size);
    if (d) {
        int64_t total = 0;
        for (int64_t i = 0; i < ct_dict_size(d); i++) {
            ct_tensor *t = ct_dict_value(d, i);
            total += ct_numel(t);
            ct_release(t);
        }
        void *out = NULL;
        size_t n = 0;
        if (total <= (1 << 22) && ct_io_save_pt_buffer(d, &out, &n) == 0) {
            ct_dict *e = ct_io_load_pt_buffer(out, n); /* what we write we read */
            if (!e || ct_dict_size(e) != ct_dict_size(d)) abort();
            ct_dict_free(e);
            free(out);
        }
        ct_dict_free(d);
    }
    ct_clear_error();
    return 0;
}
