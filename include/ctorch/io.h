/* ctorch/io.h — reading and writing tensors: safetensors.
 *
 * Files hold a ct_dict (ordered name -> tensor, plus string metadata). Saves are
 * atomic: the data goes to a temporary file in the same directory, is flushed to disk,
 * then renamed over the target, so a crash never leaves a half-written file and a
 * failed save leaves the old file untouched. Loaders validate every length and offset
 * and never allocate more than the file can justify: a malformed, truncated or hostile
 * file gives NULL with CT_ERR_FORMAT and a message naming the file and the problem.
 *
 * Ownership: loaders return a new dict the caller frees with ct_dict_free; its
 * tensors are fresh copies of the file's data.
 */
#ifndef CTORCH_IO_H
#define CTORCH_IO_H

#include <stddef.h>

#include "ctorch/core.h"
#include "ctorch/dict.h"

#ifdef __cplusplus
extern "C" {
#endif

/* safetensors (the Hugging Face format): every ctorch dtype except complex (not in
 * the format: CT_ERR_DTYPE). The dict's metadata becomes "__metadata__"; tensors are
 * written contiguously, little-endian, ordered by element size then name like the
 * reference implementation. 0, or CT_ERR_IO / CT_ERR_DTYPE / CT_ERR_ARG. */
CT_API int ct_safetensors_save(const ct_dict *d, const char *path);
CT_API ct_dict *ct_safetensors_load(const char *path);
/* The same from / to memory. save_buffer returns a malloc'd buffer in *out (free()). */
CT_API ct_dict *ct_safetensors_load_buffer(const void *data, size_t size);
CT_API int ct_safetensors_save_buffer(const ct_dict *d, void **out, size_t *size);

/* .npy (NumPy's format, versions 1-3): one tensor. Every ctorch dtype but bfloat16
 * (NumPy has none: CT_ERR_DTYPE); loads little- and big-endian data and Fortran order.
 * Saves write a version 1.0 file, C order, little-endian; loaders return a new tensor
 * the caller owns (scope rules). */
CT_API int ct_npy_save(const ct_tensor *t, const char *path);
CT_API ct_tensor *ct_npy_load(const char *path);
CT_API ct_tensor *ct_npy_load_buffer(const void *data, size_t size);
CT_API int ct_npy_save_buffer(const ct_tensor *t, void **out, size_t *size);

/* ---- training checkpoints ----
 * One safetensors file holding everything training needs to resume exactly: the
 * model's state dict ("model.*"), the optimizer's ("optimizer.*"), the scheduler's
 * ("scheduler.*"), the generator state ("rng.generator", torch's layout: the default
 * generator when gen is NULL), the epoch and extra metadata. Any of opt, sched may be
 * NULL (then skipped on save and required absent on load). Saves are atomic. */
struct ct_module;
struct ct_optimizer;
struct ct_scheduler;
struct ct_generator;
CT_API int ct_checkpoint_save(const char *path, const struct ct_module *model, const struct ct_optimizer *opt,
                              const struct ct_scheduler *sched, struct ct_generator *gen, int64_t epoch);
/* Loads into existing objects of the same configuration (strict model load). *epoch
 * (may be NULL) receives the saved epoch. 0 or status (CT_ERR_IO, CT_ERR_FORMAT,
 * CT_ERR_KEY, CT_ERR_SHAPE). */
CT_API int ct_checkpoint_load(const char *path, struct ct_module *model, struct ct_optimizer *opt,
                              struct ct_scheduler *sched, struct ct_generator *gen, int64_t *epoch);

#ifdef __cplusplus
}
#endif

#endif
