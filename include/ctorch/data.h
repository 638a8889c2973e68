/* ctorch/data.h — datasets, data loaders and dataset files (torch.utils.data).
 *
 * A dataset is an opaque object with a length and a get(i) that yields a fixed number of
 * tensors (fields, e.g. image and label). A data loader draws batches from it: shuffled
 * with a generator exactly as PyTorch's RandomSampler does (one torch.randperm(n) per
 * epoch, so the same seed gives the same batches as torch.utils.data.DataLoader), each
 * field stacked along a new first dim (default_collate).
 *
 * Ownership: datasets are reference counted (ct_data_dataset_free drops a reference);
 * loaders and subsets hold their own references. Tensors returned through out arrays
 * are new references (scope rules of ctorch/core.h).
 */
#ifndef CTORCH_DATA_H
#define CTORCH_DATA_H

#include "ctorch/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_dataset ct_dataset;
struct ct_generator;

/* What a kind of dataset does (static storage). get writes n_fields new references. */
typedef struct ct_dataset_type {
    const char *name;
    int64_t (*len)(const ct_dataset *ds);
    int (*get)(const ct_dataset *ds, int64_t index, ct_tensor **out);
    void (*free_ctx)(void *ctx);
} ct_dataset_type;

/* A user-defined dataset of n_fields fields over ctx (freed with type->free_ctx).
 * Caller owns (ct_data_dataset_free). */
CT_API ct_dataset *ct_data_dataset_new(const ct_dataset_type *type, int n_fields, void *ctx);
CT_API ct_dataset *ct_data_dataset_retain(ct_dataset *ds);
CT_API void ct_data_dataset_free(ct_dataset *ds);
CT_API void *ct_data_dataset_ctx(const ct_dataset *ds);
CT_API int64_t ct_data_dataset_len(const ct_dataset *ds);
CT_API int ct_data_dataset_fields(const ct_dataset *ds);
/* Item i (negative indexes from the end): n_fields new references into out. */
CT_API int ct_data_dataset_get(const ct_dataset *ds, int64_t index, ct_tensor **out);

/* TensorDataset: item i is (t[0][i], t[1][i], ...); all tensors share their first size. */
CT_API ct_dataset *ct_data_tensor_dataset_new(int n, ct_tensor *const *tensors);
/* Subset(dataset, indices). */
CT_API ct_dataset *ct_data_subset_new(ct_dataset *ds, int64_t n, const int64_t *indices);
/* random_split(dataset, lengths) with PyTorch's algorithm (one randperm of the total
 * from gen, NULL: the default generator): n new subsets into out (caller frees each). */
CT_API int ct_data_random_split(ct_dataset *ds, int n, const int64_t *lengths, struct ct_generator *gen,
                                ct_dataset **out);

/* ---- loading ---- */
typedef struct ct_data_loader ct_data_loader;
typedef struct ct_loader_opts {
    int64_t batch_size;              /* 0: PyTorch's default 1 */
    bool shuffle;
    bool drop_last;
    struct ct_generator *generator;  /* shuffle order; NULL: the default generator */
} ct_loader_opts;

/* Caller owns (ct_data_loader_free); holds a reference to ds. opts may be NULL. */
CT_API ct_data_loader *ct_data_loader_new(ct_dataset *ds, const ct_loader_opts *opts);
CT_API void ct_data_loader_free(ct_data_loader *l);
/* Batches per epoch (len(DataLoader)). */
CT_API int64_t ct_data_loader_len(const ct_data_loader *l);
/* The next batch of the current epoch: 1 with n_fields new references in batch (each
 * field stacked along dim 0), 0 at the end of the epoch (the next call starts a new
 * epoch, reshuffled), or a negative status. */
CT_API int ct_data_loader_next(ct_data_loader *l, ct_tensor **batch);

/* ---- files ---- */
/* An IDX file (MNIST's format: magic, type code 0x08-0x0E, big-endian sizes and data),
 * plain or gzip-compressed: a tensor of the file's type and shape (caller's reference).
 * Sizes are checked against the data actually present. */
CT_API ct_tensor *ct_data_read_idx(const char *path);

#ifdef __cplusplus
}
#endif

#endif
