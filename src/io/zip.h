/* Internal zip archive reader and writer for the torch.save (.pt) and .npz formats.
 *
 * Reader: the whole archive is in memory; ct__zip_open parses the central directory
 * (ZIP64 included) with every offset and size checked against the buffer, rejects
 * encrypted entries, methods other than stored (0) and deflate (8), and duplicate
 * names. ct__zip_read extracts one entry into a fresh buffer, checking its local header,
 * its sizes (a deflated entry may not claim more than zlib's maximum ratio allows) and
 * its CRC-32. Errors are CT_ERR_FORMAT with "<who>: <what>: <problem>".
 *
 * Writer: entries are appended to a growing memory buffer. Stored entries have their
 * data 64-byte aligned (padding in a local extra field, as torch's writer does);
 * compressed ones are raw deflate. ZIP64 records are written when sizes or offsets
 * need them, and the ZIP64 end record always (like torch). */
#ifndef CT_IO_ZIP_H
#define CT_IO_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name; /* NUL-terminated copy */
    size_t name_len;
    uint64_t csize, usize, lho; /* compressed size, uncompressed size, local header offset */
    uint32_t crc;
    int method;
} ct__zip_entry;

typedef struct {
    const unsigned char *data;
    size_t size;
    ct__zip_entry *e;
    int64_t n;
    const char *who, *what; /* for messages: format name, file name */
} ct__zip;

/* 0, or CT_ERR_FORMAT / CT_ERR_OOM (message recorded). On failure z needs no close. */
int ct__zip_open(ct__zip *z, const void *data, size_t size, const char *who, const char *what);
void ct__zip_close(ct__zip *z);
/* Index of the entry named name, or -1. */
int64_t ct__zip_find(const ct__zip *z, const char *name);
/* Entry i's contents in a malloc'd buffer *out (size *n, free()). 0 or status. */
int ct__zip_read(const ct__zip *z, int64_t i, unsigned char **out, size_t *n);

typedef struct {
    unsigned char *b;
    size_t n, cap;
    ct__zip_entry *e;
    int64_t ne, ecap;
    bool oom;
} ct__zipw;

/* Appends an entry (stored and 64-byte aligned, or deflated when compress). 0 or
 * CT_ERR_OOM / CT_ERR_RUNTIME. */
int ct__zipw_add(ct__zipw *w, const char *name, const void *data, size_t n, bool compress);
/* Writes the central directory and hands the archive over in *out (free()), resetting w. */
int ct__zipw_finish(ct__zipw *w, void **out, size_t *n);
/* Frees a writer that was not finished. */
void ct__zipw_free(ct__zipw *w);

#endif
