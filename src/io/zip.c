/* Zip archives in memory (src/io/zip.h): the reader and writer under .pt and .npz. */
#include "io/zip.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/internal.h"

#define MAX_ENTRIES (1 << 20)
#define MAX_RATIO 1032 /* the most deflate can compress: 258 bytes per 2 bits, plus slack */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

static int bad(const ct__zip *z, const char *msg) {
    return ct__errs(CT_ERR_FORMAT, "%s: %s: %s", z->who, z->what, msg);
}

static int cmp_name(const void *a, const void *b) {
    const ct__zip_entry *x = *(const ct__zip_entry *const *)a, *y = *(const ct__zip_entry *const *)b;
    return strcmp(x->name, y->name);
}

void ct__zip_close(ct__zip *z) {
    if (!z) return;
    for (int64_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL, z->n = 0;
}

int ct__zip_open(ct__zip *z, const void *data, size_t size, const char *who, const char *what) {
    z->data = data, z->size = size, z->e = NULL, z->n = 0, z->who = who, z->what = what;
    const unsigned char *d = data;
    if (size < 22) return bad(z, "not a zip archive (too short for its end record)");
    /* the end of central directory record: the last "PK\5\6" whose comment fits */
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = (size_t)-1;
    for (size_t p = size - 22 + 1; p-- > lo;)
        if (d[p] == 'P' && d[p + 1] == 'K' && d[p + 2] == 5 && d[p + 3] == 6 && p + 22 + rd16(d + p + 20) <= size) {
            eocd = p;
            break;
        }
    if (eocd == (size_t)-1) return bad(z, "not a zip archive (no end of central directory record)");
    uint64_t count = rd16(d + eocd + 10), cd_size = rd32(d + eocd + 12), cd_off = rd32(d + eocd + 16);
    if (rd16(d + eocd + 4) != 0 || rd16(d + eocd + 6) != 0) {
        if (!(rd16(d + eocd + 4) == 0xFFFF || rd16(d + eocd + 6) == 0xFFFF))
            return bad(z, "multi-disk archives are not supported");
    }
    size_t cd_limit = eocd;
    if (eocd >= 20 && rd32(d + eocd - 20) == 0x07064b50) { /* ZIP64 locator */
        uint64_t z64 = rd64(d + eocd - 20 + 8);
        if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || rd32(d + z64) != 0x06064b50)
            return bad(z, "bad ZIP64 end of central directory locator");
        const unsigned char *r = d + z64;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0) return bad(z, "multi-disk archives are not supported");
        uint64_t c64 = rd64(r + 32), s64 = rd64(r + 40), o64 = rd64(r + 48);
        if (count != 0xFFFF && count != c64) return bad(z, "ZIP64 and zip end records disagree on the entry count");
        count = c64, cd_size = s64, cd_off = o64;
        cd_limit = (size_t)z64;
    } else if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        return bad(z, "ZIP64 end record missing");
    }
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off) return bad(z, "central directory lies outside the file");
    if (count > cd_size / 46 || count > MAX_ENTRIES) return bad(z, "entry count does not fit the central directory");
    z->e = calloc((size_t)(count ? count : 1), sizeof *z->e);
    if (!z->e) return ct__errs(CT_ERR_OOM, "%s: out of memory", who);
    const unsigned char *p = d + cd_off, *end = p + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - p < 46 || rd32(p) != 0x02014b50) { ct__zip_close(z); return bad(z, "bad central directory entry"); }
        uint16_t flags = rd16(p + 8), method = rd16(p + 10), nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if ((size_t)(end - p) < 46u + nlen + xlen + clen) { ct__zip_close(z); return bad(z, "central directory entry overruns"); }
        ct__zip_entry *e = &z->e[z->n];
        e->crc = rd32(p + 16), e->csize = rd32(p + 20), e->usize = rd32(p + 24), e->lho = rd32(p + 42);
        e->method = method;
        if (rd16(p + 34) != 0 && rd16(p + 34) != 0xFFFF) { ct__zip_close(z); return bad(z, "multi-disk archives are not supported"); }
        /* ZIP64 extended information: the fields that are 0xFFFFFFFF, in order */
        const unsigned char *x = p + 46 + nlen, *xe = x + xlen;
        bool need_u = e->usize == 0xFFFFFFFFu, need_c = e->csize == 0xFFFFFFFFu, need_o = e->lho == 0xFFFFFFFFu;
        while (xe - x >= 4) {
            uint16_t id = rd16(x), len = rd16(x + 2);
            if (len > xe - x - 4) { ct__zip_close(z); return bad(z, "extra field overruns its entry"); }
            if (id == 1) {
                const unsigned char *f = x + 4, *fe = f + len;
                if (need_u) { if (fe - f < 8) break; e->usize = rd64(f), f += 8, need_u = false; }
                if (need_c) { if (fe - f < 8) break; e->csize = rd64(f), f += 8, need_c = false; }
                if (need_o) { if (fe - f < 8) break; e->lho = rd64(f), f += 8, need_o = false; }
            }
            x += 4 + len;
        }
        if (need_u || need_c || need_o) { ct__zip_close(z); return bad(z, "ZIP64 extra field missing or short"); }
        if (flags & 1) { ct__zip_close(z); return bad(z, "encrypted entries are not supported"); }
        if (method != 0 && method != 8) {
            char m[96];
            snprintf(m, sizeof m, "entry uses compression method %u (only stored and deflate are supported)", method);
            ct__zip_close(z);
            return bad(z, m);
        }
        if (method == 0 && e->csize != e->usize) { ct__zip_close(z); return bad(z, "stored entry with differing sizes"); }
        if (e->lho > cd_off || e->csize > cd_off - e->lho) { ct__zip_close(z); return bad(z, "entry data lies outside the file"); }
        if (nlen == 0 || memchr(p + 46, 0, nlen)) { ct__zip_close(z); return bad(z, "empty or invalid entry name"); }
        e->name = malloc((size_t)nlen + 1);
        if (!e->name) { ct__zip_close(z); return ct__errs(CT_ERR_OOM, "%s: out of memory", who); }
        memcpy(e->name, p + 46, nlen);
        e->name[nlen] = 0;
        e->name_len = nlen;
        z->n++;
        p += 46u + nlen + xlen + clen;
    }
    if (z->n > 1) { /* duplicate names make the archive ambiguous */
        ct__zip_entry **s = malloc(sizeof *s * (size_t)z->n);
        if (!s) { ct__zip_close(z); return ct__errs(CT_ERR_OOM, "%s: out of memory", who); }
        for (int64_t i = 0; i < z->n; i++) s[i] = &z->e[i];
        qsort(s, (size_t)z->n, sizeof *s, cmp_name);
        bool dup = false;
        for (int64_t i = 1; i < z->n && !dup; i++) dup = strcmp(s[i - 1]->name, s[i]->name) == 0;
        free(s);
        if (dup) { ct__zip_close(z); return bad(z, "duplicate entry names"); }
    }
    return 0;
}

int64_t ct__zip_find(const ct__zip *z, const char *name) {
    for (int64_t i = 0; i < z->n; i++)
        if (strcmp(z->e[i].name, name) == 0) return i;
    return -1;
}

int ct__zip_read(const ct__zip *z, int64_t i, unsigned char **out, size_t *n) {
    *out = NULL, *n = 0;
    if (i < 0 || i >= z->n) return bad(z, "no such entry");
    const ct__zip_entry *e = &z->e[i];
    char msg[160];
    const unsigned char *d = z->data;
    if (e->lho > z->size || z->size - e->lho < 30 || rd32(d + e->lho) != 0x04034b50) {
        snprintf(msg, sizeof msg, "entry '%.80s' has a bad local header", e->name);
        return bad(z, msg);
    }
    uint64_t start = e->lho + 30 + rd16(d + e->lho + 26) + rd16(d + e->lho + 28);
    if (start > z->size || e->csize > z->size - start) {
        snprintf(msg, sizeof msg, "entry '%.80s' runs past the end of the file", e->name);
        return bad(z, msg);
    }
    if (e->method == 8 && e->usize > (e->csize + 16) * MAX_RATIO) {
        snprintf(msg, sizeof msg, "entry '%.80s' claims an implausible uncompressed size", e->name);
        return bad(z, msg);
    }
    if (e->usize > (uint64_t)SIZE_MAX - 1) return bad(z, "entry too large");
    unsigned char *b = malloc((size_t)e->usize + 1);
    if (!b) return ct__errs(CT_ERR_OOM, "%s: out of memory (%llu bytes)", z->who, (unsigned long long)e->usize);
    if (e->method == 0) {
        if (e->usize) memcpy(b, d + start, (size_t)e->usize);
    } else {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -MAX_WBITS) != Z_OK) { free(b); return ct__errs(CT_ERR_OOM, "%s: zlib init failed", z->who); }
        const unsigned char *src = d + start;
        uint64_t in_left = e->csize, out_left = e->usize;
        unsigned char *dst = b;
        int r = Z_OK;
        unsigned char spare;
        while (r == Z_OK) {
            unsigned ci = in_left > (1u << 30) ? (1u << 30) : (unsigned)in_left;
            unsigned co = out_left > (1u << 30) ? (1u << 30) : (unsigned)out_left;
            s.next_in = (unsigned char *)(uintptr_t)src, s.avail_in = ci;
            if (co) s.next_out = dst, s.avail_out = co;
            else s.next_out = &spare, s.avail_out = 1; /* detects data beyond the declared size */
            r = inflate(&s, Z_NO_FLUSH);
            size_t used_in = ci - s.avail_in, made = (co ? co : 1) - s.avail_out;
            src += used_in, in_left -= used_in;
            if (!co && made) { r = Z_DATA_ERROR; break; }
            dst += made, out_left -= made;
            if (r == Z_OK && used_in == 0 && made == 0) { r = Z_BUF_ERROR; break; }
        }
        inflateEnd(&s);
        if (r != Z_STREAM_END || out_left != 0) {
            free(b);
            snprintf(msg, sizeof msg, "entry '%.80s': corrupt deflate data or wrong size", e->name);
            return bad(z, msg);
        }
    }
    uLong c = crc32(0L, Z_NULL, 0);
    for (uint64_t at = 0; at < e->usize;) {
        uInt k = e->usize - at > (1u << 30) ? (1u << 30) : (uInt)(e->usize - at);
        c = crc32(c, b + at, k);
        at += k;
    }
    if ((uint32_t)c != e->crc) {
        free(b);
        snprintf(msg, sizeof msg, "entry '%.80s' fails its CRC-32 check", e->name);
        return bad(z, msg);
    }
    *out = b, *n = (size_t)e->usize;
    return 0;
}

/* ---- writer ---- */
static void wput(ct__zipw *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t c = w->cap ? w->cap : 4096;
        while (c < w->n + n) c *= 2;
        unsigned char *x = realloc(w->b, c);
        if (!x) { w->oom = true; return; }
        w->b = x, w->cap = c;
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void w16(ct__zipw *w, unsigned v) { unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)}; wput(w, b, 2); }
static void w32(ct__zipw *w, uint32_t v) { w16(w, v & 0xFFFF); w16(w, v >> 16); }
static void w64(ct__zipw *w, uint64_t v) { w32(w, (uint32_t)v); w32(w, (uint32_t)(v >> 32)); }

static uint32_t crc_of(const void *data, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    const unsigned char *p = data;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k, n -= k;
    }
    return (uint32_t)c;
}

int ct__zipw_add(ct__zipw *w, const char *name, const void *data, size_t n, bool compress) {
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > 0xFFFF) return ct__errs(CT_ERR_ARG, "zip: entry name '%.60s' is empty or too long", name);
    unsigned char *z = NULL;
    size_t zn = n;
    if (compress) {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return ct__errs(CT_ERR_OOM, "zip: zlib init failed");
        size_t cap = (size_t)deflateBound(&s, (uLong)n) + 64;
        if (n > (1u << 30)) cap = n + n / 100 + 4096; /* deflateBound takes a uLong */
        z = malloc(cap);
        if (!z) { deflateEnd(&s); return ct__errs(CT_ERR_OOM, "zip: out of memory"); }
        const unsigned char *src = data;
        size_t left = n;
        s.next_out = z;
        int r = Z_OK;
        while (r == Z_OK || r == Z_BUF_ERROR) {
            unsigned ci = left > (1u << 30) ? (1u << 30) : (unsigned)left;
            s.next_in = (unsigned char *)(uintptr_t)src, s.avail_in = ci;
            size_t room = cap - (size_t)(s.next_out - z);
            s.avail_out = room > (1u << 30) ? (1u << 30) : (unsigned)room;
            r = deflate(&s, ci == left ? Z_FINISH : Z_NO_FLUSH);
            size_t used = ci - s.avail_in;
            src += used, left -= used;
            if (r == Z_STREAM_END) break;
            if (r == Z_BUF_ERROR && s.avail_out == 0) break;
        }
        zn = (size_t)(s.next_out - z);
        deflateEnd(&s);
        if (r != Z_STREAM_END) { free(z); return ct__errs(CT_ERR_RUNTIME, "zip: deflate failed"); }
    }
    if (w->ne == w->ecap) {
        int64_t c = w->ecap ? 2 * w->ecap : 16;
        ct__zip_entry *e = realloc(w->e, sizeof *e * (size_t)c);
        if (!e) { free(z); return ct__errs(CT_ERR_OOM, "zip: out of memory"); }
        w->e = e, w->ecap = c;
    }
    ct__zip_entry *e = &w->e[w->ne];
    e->name = malloc(nlen + 1);
    if (!e->name) { free(z); return ct__errs(CT_ERR_OOM, "zip: out of memory"); }
    memcpy(e->name, name, nlen + 1);
    e->name_len = nlen;
    e->usize = n, e->csize = zn, e->lho = w->n, e->crc = crc_of(data, n), e->method = compress ? 8 : 0;
    w->ne++;
    bool z64 = e->usize >= 0xFFFFFFFFu || e->csize >= 0xFFFFFFFFu;
    size_t xlen = z64 ? 20 : 0;
    size_t pad = 0;
    if (!compress) { /* "FB" extra field of 'Z's so the data starts on a 64-byte boundary */
        size_t at = w->n + 30 + nlen + xlen + 4;
        pad = (64 - at % 64) % 64;
    }
    w32(w, 0x04034b50);
    w16(w, z64 ? 45 : 20), w16(w, 0x0800), w16(w, (unsigned)e->method), w16(w, 0), w16(w, 0x21); /* 1980-01-01 */
    w32(w, e->crc);
    w32(w, z64 ? 0xFFFFFFFFu : (uint32_t)e->csize), w32(w, z64 ? 0xFFFFFFFFu : (uint32_t)e->usize);
    w16(w, (unsigned)nlen), w16(w, (unsigned)(xlen + (compress ? 0 : 4 + pad)));
    wput(w, name, nlen);
    if (z64) w16(w, 1), w16(w, 16), w64(w, e->usize), w64(w, e->csize);
    if (!compress) {
        w16(w, 0x4246), w16(w, (unsigned)pad);
        for (size_t k = 0; k < pad; k++) wput(w, "Z", 1);
    }
    wput(w, compress ? (const void *)z : data, zn);
    free(z);
    return w->oom ? ct__errs(CT_ERR_OOM, "zip: out of memory") : 0;
}

int ct__zipw_finish(ct__zipw *w, void **out, size_t *n) {
    *out = NULL, *n = 0;
    uint64_t cd_off = w->n;
    for (int64_t i = 0; i < w->ne; i++) {
        const ct__zip_entry *e = &w->e[i];
        bool bu = e->usize >= 0xFFFFFFFFu, bc = e->csize >= 0xFFFFFFFFu, bo = e->lho >= 0xFFFFFFFFu;
        unsigned xl = (bu || bc || bo) ? 4u + 8u * (bu + bc + bo) : 0u;
        w32(w, 0x02014b50);
        w16(w, 0x031e), w16(w, xl ? 45 : 20), w16(w, 0x0800), w16(w, (unsigned)e->method), w16(w, 0), w16(w, 0x21);
        w32(w, e->crc);
        w32(w, bc ? 0xFFFFFFFFu : (uint32_t)e->csize), w32(w, bu ? 0xFFFFFFFFu : (uint32_t)e->usize);
        w16(w, (unsigned)e->name_len), w16(w, xl), w16(w, 0), w16(w, 0), w16(w, 0), w32(w, 0x81A40000u); /* -rw-r--r-- */
        w32(w, bo ? 0xFFFFFFFFu : (uint32_t)e->lho);
        wput(w, e->name, e->name_len);
        if (xl) {
            w16(w, 1), w16(w, xl - 4);
            if (bu) w64(w, e->usize);
            if (bc) w64(w, e->csize);
            if (bo) w64(w, e->lho);
        }
    }
    uint64_t cd_size = w->n - cd_off, z64_off = w->n;
    /* ZIP64 end of central directory record and locator (torch's writer always has them) */
    w32(w, 0x06064b50), w64(w, 44), w16(w, 0x031e), w16(w, 45), w32(w, 0), w32(w, 0);
    w64(w, (uint64_t)w->ne), w64(w, (uint64_t)w->ne), w64(w, cd_size), w64(w, cd_off);
    w32(w, 0x07064b50), w32(w, 0), w64(w, z64_off), w32(w, 1);
    bool big = w->ne >= 0xFFFF || cd_size >= 0xFFFFFFFFu || cd_off >= 0xFFFFFFFFu;
    w32(w, 0x06054b50), w16(w, 0), w16(w, 0);
    w16(w, big ? 0xFFFF : (unsigned)w->ne), w16(w, big ? 0xFFFF : (unsigned)w->ne);
    w32(w, big ? 0xFFFFFFFFu : (uint32_t)cd_size), w32(w, big ? 0xFFFFFFFFu : (uint32_t)cd_off), w16(w, 0);
    if (w->oom) { ct__zipw_free(w); return ct__errs(CT_ERR_OOM, "zip: out of memory"); }
    *out = w->b, *n = w->n;
    w->b = NULL, w->n = w->cap = 0;
    ct__zipw_free(w);
    return 0;
}

void ct__zipw_free(ct__zipw *w) {
    for (int64_t i = 0; i < w->ne; i++) free(w->e[i].name);
    free(w->e);
    free(w->b);
    memset(w, 0, sizeof *w);
}
