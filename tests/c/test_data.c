/* Datasets and loaders from C: batches cover the data once per epoch, drop_last,
 * subsets and random_split, IDX files; no leaks (run under ASan by make test-asan). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ctorch.h>

#include "check.h"

/* A dataset whose get sleeps 2 ms and records how many gets run at once. */
static atomic_int in_flight, max_in_flight;
static int64_t slow_len(const ct_dataset *ds) { (void)ds; return 24; }
static int slow_get(const ct_dataset *ds, int64_t i, ct_tensor **out) {
    (void)ds;
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int m = atomic_load(&max_in_flight);
    while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now)) {
    }
    usleep(2000);
    atomic_fetch_sub(&in_flight, 1);
    if (i == 21) return ct_set_error(CT_ERR_FORMAT, "slow dataset: item %lld is corrupt", (long long)i);
    out[0] = ct_scalar_tensor((double)i, CT_INT64);
    return out[0] ? 0 : ct_last_status();
}
static const ct_dataset_type SLOW = {.name = "Slow", .len = slow_len, .get = slow_get};

static void test_workers(void) {
    int64_t live0 = ct_live_tensors();
    ct_dataset *ds = ct_data_dataset_new(&SLOW, 1, NULL);
    ct_data_loader *l = ct_data_loader_new(ds, &(ct_loader_opts){.batch_size = 4, .num_workers = 3});
    CHECK(l != NULL);
    ct_tensor *b[1];
    int64_t expect = 0;
    int rc, n = 0;
    ct_scope_begin();
    while ((rc = ct_data_loader_next(l, b)) != 0) {
        if (n == 5) { /* batch 5 holds item 21: its error comes back in order, the loader goes on */
            CHECK(rc == CT_ERR_FORMAT && strstr(ct_last_error(), "item 21 is corrupt"));
            expect += 4;
        } else {
            CHECK(rc == 1 && ct_numel(b[0]) == 4);
            for (int64_t i = 0; rc == 1 && i < 4; i++) CHECK(ct_get(b[0], &i) == (double)expect++);
        }
        n++;
    }
    ct_scope_end();
    CHECK(n == 6);
    /* several gets ran at once: the workers load in parallel */
    CHECK(atomic_load(&max_in_flight) >= 2);
    /* freeing mid-epoch, with batches prefetched and workers busy, leaks nothing */
    ct_scope_begin();
    CHECK(ct_data_loader_next(l, b) == 1);
    ct_scope_end();
    ct_data_loader_free(l);
    ct_data_dataset_free(ds);
    ct_clear_error();
    CHECK(ct_live_tensors() == live0);
}

int main(void) {
    test_workers();
    int64_t live0 = ct_live_tensors();
    ct_tensor *x = ct_arange(0, 10, 1, CT_FLOAT32), *y = ct_arange(0, 10, 1, CT_INT64);
    ct_dataset *ds = ct_data_tensor_dataset_new(2, (ct_tensor *[]){x, y});
    ct_release(x), ct_release(y); /* the dataset holds its own references */
    CHECK(ds && ct_data_dataset_len(ds) == 10 && ct_data_dataset_fields(ds) == 2);
    ct_generator *g = ct_generator_new(5);
    ct_data_loader *l = ct_data_loader_new(ds, &(ct_loader_opts){.batch_size = 4, .shuffle = true, .generator = g});
    CHECK(l && ct_data_loader_len(l) == 3);
    for (int epoch = 0; epoch < 2; epoch++) {
        int seen[10] = {0}, batches = 0, rc;
        ct_tensor *b[2];
        ct_scope_begin();
        while ((rc = ct_data_loader_next(l, b)) == 1) {
            batches++;
            CHECK(ct_ndim(b[0]) == 1 && ct_ndim(b[1]) == 1 && ct_numel(b[0]) == ct_numel(b[1]));
            for (int64_t i = 0; i < ct_numel(b[1]); i++) seen[(int)ct_get(b[1], &i)]++;
        }
        ct_scope_end();
        CHECK(rc == 0 && batches == 3);
        for (int i = 0; i < 10; i++) CHECK(seen[i] == 1);
    }
    ct_data_loader_free(l);
    l = ct_data_loader_new(ds, &(ct_loader_opts){.batch_size = 4, .drop_last = true});
    CHECK(ct_data_loader_len(l) == 2);
    ct_data_loader_free(l);
    ct_dataset *parts[2];
    CHECK(ct_data_random_split(ds, 2, (int64_t[]){6, 4}, g, parts) == 0);
    CHECK(ct_data_dataset_len(parts[0]) == 6 && ct_data_dataset_len(parts[1]) == 4);
    ct_data_dataset_free(parts[0]), ct_data_dataset_free(parts[1]);
    ct_clear_error();
    CHECK(ct_data_random_split(ds, 2, (int64_t[]){6, 5}, g, parts + 0) != 0 && ct_data_dataset_len(parts[0]) < 0);
    ct_clear_error();
    CHECK(ct_data_random_split(ds, 2, (int64_t[]){3, 7}, g, parts) == 0);
    ct_tensor *item[2];
    ct_scope_begin();
    CHECK(ct_data_dataset_get(parts[1], -1, item) == 0 && ct_numel(item[0]) == 1);
    CHECK(ct_data_dataset_get(parts[1], 7, item) == CT_ERR_INDEX);
    ct_scope_end();
    ct_clear_error();
    ct_data_dataset_free(parts[0]), ct_data_dataset_free(parts[1]);
    ct_data_dataset_free(ds); /* the subsets held references until now */
    ct_generator_free(g);

    /* IDX: a 2x3 int16 file, big-endian, and a truncated copy */
    char path[64];
    snprintf(path, sizeof path, "test_data_%d.idx", (int)getpid());
    unsigned char f[] = {0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3, 0xFF, 0xFF, 1, 0, 0x7F, 0xFF};
    FILE *fp = fopen(path, "wb");
    fwrite(f, 1, sizeof f, fp);
    fclose(fp);
    ct_tensor *t = ct_data_read_idx(path);
    CHECK(t && ct_get_dtype(t) == CT_INT16 && ct_size(t, 0) == 2 && ct_size(t, 1) == 3);
    CHECK(t && ct_get(t, (int64_t[]){1, 0}) == -1 && ct_get(t, (int64_t[]){1, 1}) == 256 &&
          ct_get(t, (int64_t[]){1, 2}) == 32767);
    ct_release(t);
    fp = fopen(path, "wb");
    fwrite(f, 1, sizeof f - 3, fp);
    fclose(fp);
    ct_clear_error();
    CHECK(ct_data_read_idx(path) == NULL && ct_last_status() == CT_ERR_FORMAT);
    CHECK(ct_data_read_idx("no/such.idx") == NULL);
    ct_clear_error();
    remove(path);
    CHECK(ct_live_tensors() == live0);
    printf("test_data: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
