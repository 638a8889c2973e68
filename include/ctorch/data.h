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
    /* Worker threads that build batches ahead while the caller computes (torch's
     * num_workers, with threads instead of processes): 0 builds each batch in
     * ct_data_loader_next. With workers, the dataset's get (and collate) run on several
     * threads at once and must be thread-safe; batches still come out in order and are
     * the same as without workers. */
    int num_workers;
    int prefetch_factor;             /* batches prepared ahead per worker; 0: torch's 2 */
    /* Custom collate (torch's collate_fn): turns n_items items (items[j * n_fields + f],
     * borrowed) into collate_outputs tensors written to out (new references, scope
     * rules), returning 0 or a negative status (set the message with ct_set_error).
     * NULL: default_collate, each field stacked along a new dim 0. */
    int (*collate)(int64_t n_items, int n_fields, ct_tensor *const *items, ct_tensor **out, void *user);
    void *collate_user;
    int collate_outputs;             /* outputs of collate (at most 16); 0: n_fields */
} ct_loader_opts;

/* Caller owns (ct_data_loader_free); holds a reference to ds. opts may be NULL. */
CT_API ct_data_loader *ct_data_loader_new(ct_dataset *ds, const ct_loader_opts *opts);
CT_API void ct_data_loader_free(ct_data_loader *l);
/* Batches per epoch (len(DataLoader)). */
CT_API int64_t ct_data_loader_len(const ct_data_loader *l);
/* The next batch of the current epoch: 1 with n_fields (or collate_outputs) new
 * references in batch (each field stacked along dim 0 by default), 0 at the end of the epoch (the next call starts a new
 * epoch, reshuffled), or a negative status. */
CT_API int ct_data_loader_next(ct_data_loader *l, ct_tensor **batch);

/* ---- files ---- */
/* An IDX file (MNIST's format: magic, type code 0x08-0x0E, big-endian sizes and data),
 * plain or gzip-compressed: a tensor of the file's type and shape (caller's reference).
 * Sizes are checked against the data actually present. */
CT_API ct_tensor *ct_data_read_idx(const char *path);

/* CSV: a numeric table as a [rows, cols] tensor (plain or gzip'd file, or a buffer).
 * Every row must have the same number of fields; fields may be quoted; blank lines are
 * skipped; an empty float field is NaN. Errors (CT_ERR_FORMAT) name the line and column.
 * With opts->header the first (non-skipped) line holds column names: if names is not
 * NULL it receives a malloc'd array of n_names malloc'd strings (free with
 * ct_data_csv_names_free). The tensor is the caller's reference. */
typedef struct ct_csv_opts {
    char delimiter;    /* ',' */
    bool header;       /* false */
    ct_dtype dtype;    /* CT_FLOAT32; also CT_FLOAT64, CT_INT32, CT_INT64 */
    int64_t skip_rows; /* lines skipped at the top, before the header: 0 */
    char comment;      /* lines starting with it are skipped; 0: none */
} ct_csv_opts;
#define CT_CSV_DEFAULTS {',', false, CT_FLOAT32, 0, 0}
CT_API ct_tensor *ct_data_read_csv(const char *path, const ct_csv_opts *opts, char ***names, int64_t *n_names);
CT_API ct_tensor *ct_data_read_csv_buffer(const void *data, size_t size, const ct_csv_opts *opts, char ***names,
                                          int64_t *n_names);
CT_API void ct_data_csv_names_free(char **names, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
