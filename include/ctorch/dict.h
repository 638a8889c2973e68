/* ctorch/dict.h — ordered name -> tensor dictionaries (state dicts) with string metadata.
 *
 * A ct_dict is what PyTorch's state_dict() returns: an ordered map from dotted names
 * ("features.0.weight", "running_mean") to tensors. Modules, optimizers and
 * schedulers produce and consume them, and the file formats (safetensors, torch.save,
 * .npz, checkpoints) read and write them. Besides tensors a dict carries an ordered
 * map of string metadata (safetensors' "__metadata__", checkpoint fields).
 *
 * Ownership: a dict is an opaque object owned by whoever created it (ct_dict_new, or
 * a function documented as returning a new dict) and freed with ct_dict_free. It
 * holds its own reference to every tensor stored in it; tensors returned by
 * ct_dict_get / ct_dict_value are new references (scope rules of ctorch/core.h).
 * Keys are copied. Insertion order is kept; setting an existing key replaces its
 * value in place. A dict is not thread-safe for concurrent writers.
 */
#ifndef CTORCH_DICT_H
#define CTORCH_DICT_H

#include "ctorch/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_dict ct_dict;

/* A new empty dict (caller owns; ct_dict_free). NULL on OOM. */
CT_API ct_dict *ct_dict_new(void);
/* Releases the dict's tensor references and frees it. NULL-safe. */
CT_API void ct_dict_free(ct_dict *d);
/* A new dict with the same keys, the same tensors (shared, not copied) and metadata.
 * Caller owns. NULL on OOM or NULL d. */
CT_API ct_dict *ct_dict_copy(const ct_dict *d);

/* Stores t under key (the dict retains t; an existing key keeps its position).
 * 0, or CT_ERR_ARG for a NULL/empty key or NULL d, CT_ERR_NULL for a NULL t, CT_ERR_OOM. */
CT_API int ct_dict_set(ct_dict *d, const char *key, ct_tensor *t);
/* The tensor under key as a new reference; NULL with CT_ERR_KEY if absent. */
CT_API ct_tensor *ct_dict_get(const ct_dict *d, const char *key);
/* True if key is present (false for NULL arguments). Never sets an error. */
CT_API bool ct_dict_contains(const ct_dict *d, const char *key);
/* Removes key (keeping the order of the rest). 0, or CT_ERR_KEY if absent. */
CT_API int ct_dict_remove(ct_dict *d, const char *key);
/* Number of tensors (0 for NULL). */
CT_API int64_t ct_dict_size(const ct_dict *d);
/* Key of entry i in insertion order (borrowed, valid until the dict changes); NULL
 * with CT_ERR_INDEX if out of range. */
CT_API const char *ct_dict_key(const ct_dict *d, int64_t i);
/* Tensor of entry i as a new reference; NULL with CT_ERR_INDEX if out of range. */
CT_API ct_tensor *ct_dict_value(const ct_dict *d, int64_t i);

/* ---- string metadata (a second ordered map, string -> string) ---- */
/* Stores a copy of value under key (replacing). 0, CT_ERR_ARG or CT_ERR_OOM. */
CT_API int ct_dict_set_meta(ct_dict *d, const char *key, const char *value);
/* The value under key (borrowed, valid until the dict changes), or NULL if absent
 * (no error is recorded: absence is an ordinary answer). */
CT_API const char *ct_dict_meta(const ct_dict *d, const char *key);
CT_API int64_t ct_dict_meta_size(const ct_dict *d);
/* Key / value of metadata entry i (borrowed); NULL with CT_ERR_INDEX if out of range. */
CT_API const char *ct_dict_meta_key(const ct_dict *d, int64_t i);
CT_API const char *ct_dict_meta_value(const ct_dict *d, int64_t i);

#ifdef __cplusplus
}
#endif

#endif
