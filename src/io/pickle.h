/* Internal: the restricted unpickler and the pickle writer behind torch.save files
 * (src/io/pickle.c, src/io/pt.c). */
#ifndef CT_IO_PICKLE_H
#define CT_IO_PICKLE_H

#include <stdbool.h>
#include <stddef.h>

#include "ctorch/dict.h"
#include "io/zip.h"

/* Unpickles a torch.save data.pkl (n bytes) whose storages are the entries
 * "<prefix>data/<key>" of z, byte-swapping them when big_endian. Only what
 * torch.load(weights_only=True) accepts for state dicts is allowed. The top-level dict
 * is flattened into a new ct_dict (caller frees): nested dicts and lists give dotted
 * keys, numbers give 0-d tensors, lists of numbers 1-D tensors, strings metadata,
 * None nothing. NULL with CT_ERR_FORMAT (message "pt: <what>: ...") on any problem. */
ct_dict *ct__pt_unpickle(const unsigned char *pkl, size_t n, const ct__zip *z, const char *prefix, bool big_endian,
                         const char *what);

#endif
