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

/* ---- torch.save files (.pt) ----
 * The zip format of torch.save (PyTorch 1.6 and later; the legacy format is refused).
 * Loading runs a restricted unpickler that accepts what torch.load(weights_only=True)
 * accepts for state dicts and nothing else: containers, numbers, strings, tensors
 * (_rebuild_tensor_v2 / _rebuild_parameter over torch.<Type>Storage records); any
 * other global (os.system, builtins.eval, ...) or opcode is CT_ERR_FORMAT naming it,
 * and nothing is ever imported or executed. The top-level object must be a dict; it is
 * flattened into the returned dict with dotted keys ("features.0.weight",
 * "state.0.exp_avg", "param_groups.0.lr"): tensors keep their dtype and values (views
 * of one storage stay views of one storage), numbers become 0-d tensors (int64,
 * float64, bool), lists of numbers 1-D tensors, strings metadata, None is skipped. A
 * state dict's _metadata attribute is ignored. Big-endian files are byte-swapped.
 * Every dtype of ctorch is supported. Caller frees the dict (ct_dict_free). */
CT_API ct_dict *ct_io_load_pt(const char *path);
CT_API ct_dict *ct_io_load_pt_buffer(const void *data, size_t size);
/* Writes d as torch.save(OrderedDict(d)) would (protocol 2, little-endian, storages
 * 64-byte aligned), readable by torch.load(path, weights_only=True) and
 * load_state_dict. Tensors sharing a ctorch storage share a torch storage (views stay
 * views); tensors are saved with requires_grad=False; metadata is not saved. Atomic.
 * 0, or CT_ERR_IO / CT_ERR_ARG / CT_ERR_OOM. save_buffer: malloc'd *out (free()). */
CT_API int ct_io_save_pt(const char *path, const ct_dict *d);
CT_API int ct_io_save_pt_buffer(const ct_dict *d, void **out, size_t *size);

/* ---- NumPy .npz archives ----
 * np.savez (stored) and np.savez_compressed (deflate) files: each "<key>.npy" entry
 * becomes the tensor under <key> (the .npy rules above apply). Saves write one .npy per
 * tensor (not bfloat16), deflated when compressed; atomic. Caller frees a loaded dict;
 * save_buffer gives a malloc'd *out (free()). */
CT_API ct_dict *ct_io_load_npz(const char *path);
CT_API ct_dict *ct_io_load_npz_buffer(const void *data, size_t size);
CT_API int ct_io_save_npz(const char *path, const ct_dict *d, bool compressed);
CT_API int ct_io_save_npz_buffer(const ct_dict *d, bool compressed, void **out, size_t *size);

/* ---- IDX (MNIST) from memory ----
 * ct_data_read_idx (ctorch/data.h) on a buffer, plain or gzip-compressed: a new tensor
 * (caller's reference) or NULL with CT_ERR_FORMAT. */
CT_API ct_tensor *ct_data_read_idx_buffer(const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
