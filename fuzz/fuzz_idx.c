/* libFuzzer target for the IDX (MNIST) reader, plain and gzip'd buffers: any input
 * gives a tensor or an error, never a crash, a leak or an allocation beyond the data. */
#include <stddef.h>
#include <stdint.h>

#include <ctorch.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_tensor *t = ct_data_read_idx_buffer(data, size);
    ct_release(t);
    ct_clear_error();
    return 0;
}
