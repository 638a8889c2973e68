/* Ordered name -> tensor dictionaries with string metadata (include/ctorch/dict.h).
 * Entries live in insertion order in an array; an open-addressing hash index over
 * the keys keeps lookups O(1), so loading a state dict of n entries is O(n). */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/dict.h"

typedef struct {
    char *key;
    ct_tensor *t;
} entry;

typedef struct {
    char *key, *value;
} meta_entry;

struct ct_dict {
    entry *e;
    int64_t n, cap;
    int64_t *slots;    /* hash index: entry number + 1, 0 = empty; size nslots (power of 2) */
    int64_t nslots;
    meta_entry *m;
    int64_t nm, capm;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Rebuilds the hash index for the current entries with at least 2n slots. */
static int reindex(ct_dict *d, int64_t want) {
    int64_t ns = 16;
    while (ns < 2 * want) ns *= 2;
    int64_t *s = calloc((size_t)ns, sizeof *s);
    if (!s) return ct__errs(CT_ERR_OOM, "dict: out of memory");
    for (int64_t i = 0; i < d->n; i++) {
        uint64_t h = hash_str(d->e[i].key) & (uint64_t)(ns - 1);
        while (s[h]) h = (h + 1) & (uint64_t)(ns - 1);
        s[h] = i + 1;
    }
    free(d->slots);
    d->slots = s;
    d->nslots = ns;
    return 0;
}

static int64_t find(const ct_dict *d, const char *key) {
    if (!d->nslots) return -1;
    uint64_t h = hash_str(key) & (uint64_t)(d->nslots - 1);
    while (d->slots[h]) {
        int64_t i = d->slots[h] - 1;
        if (strcmp(d->e[i].key, key) == 0) return i;
        h = (h + 1) & (uint64_t)(d->nslots - 1);
    }
    return -1;
}

CT_API ct_dict *ct_dict_new(void) {
    ct_dict *d = calloc(1, sizeof *d);
    if (!d) return ct__err(CT_ERR_OOM, "dict: out of memory");
    return d;
}

CT_API void ct_dict_free(ct_dict *d) {
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) {
        free(d->e[i].key);
        ct_release(d->e[i].t);
    }
    for (int64_t i = 0; i < d->nm; i++) {
        free(d->m[i].key);
        free(d->m[i].value);
    }
    free(d->e);
    free(d->m);
    free(d->slots);
    free(d);
}

CT_API int ct_dict_set(ct_dict *d, const char *key, ct_tensor *t) {
    if (!d || !key || !*key) return ct__errs(CT_ERR_ARG, "dict_set: NULL dict or empty key");
    CT_CHECK_ARG_S("dict_set", t);
    int64_t i = find(d, key);
    if (i >= 0) {
        ct_retain(t);
        ct_release(d->e[i].t);
        d->e[i].t = t;
        return 0;
    }
    if (d->n == d->cap) {
        int64_t cap = d->cap ? 2 * d->cap : 16;
        entry *e = realloc(d->e, (size_t)cap * sizeof *e);
        if (!e) return ct__errs(CT_ERR_OOM, "dict_set: out of memory");
        d->e = e;
        d->cap = cap;
    }
    char *k = strdup(key);
    if (!k) return ct__errs(CT_ERR_OOM, "dict_set: out of memory");
    d->e[d->n].key = k;
    d->e[d->n].t = ct_retain(t);
    d->n++;
    if (2 * d->n > d->nslots) {
        if (reindex(d, d->n) != 0) {
            d->n--;
            free(k);
            ct_release(t);
            return ct_last_status();
        }
    } else {
        uint64_t h = hash_str(k) & (uint64_t)(d->nslots - 1);
        while (d->slots[h]) h = (h + 1) & (uint64_t)(d->nslots - 1);
        d->slots[h] = d->n;
    }
    return 0;
}

CT_API ct_tensor *ct_dict_get(const ct_dict *d, const char *key) {
    if (!d || !key) return ct__err(CT_ERR_ARG, "dict_get: NULL dict or key");
    int64_t i = find(d, key);
    if (i < 0) return ct__err(CT_ERR_KEY, "dict_get: no entry named '%s'", key);
    return ct__ret(ct_retain(d->e[i].t));
}

CT_API bool ct_dict_contains(const ct_dict *d, const char *key) {
    return d && key && find(d, key) >= 0;
}

CT_API int ct_dict_remove(ct_dict *d, const char *key) {
    if (!d || !key) return ct__errs(CT_ERR_ARG, "dict_remove: NULL dict or key");
    int64_t i = find(d, key);
    if (i < 0) return ct__errs(CT_ERR_KEY, "dict_remove: no entry named '%s'", key);
    free(d->e[i].key);
    ct_release(d->e[i].t);
    memmove(d->e + i, d->e + i + 1, (size_t)(d->n - i - 1) * sizeof *d->e);
    d->n--;
    return reindex(d, d->n);
}

CT_API int64_t ct_dict_size(const ct_dict *d) { return d ? d->n : 0; }

CT_API const char *ct_dict_key(const ct_dict *d, int64_t i) {
    if (!d || i < 0 || i >= d->n)
        return ct__err(CT_ERR_INDEX, "dict_key: index %lld out of range for %lld entries",
                       (long long)i, (long long)ct_dict_size(d));
    return d->e[i].key;
}

CT_API ct_tensor *ct_dict_value(const ct_dict *d, int64_t i) {
    if (!d || i < 0 || i >= d->n)
        return ct__err(CT_ERR_INDEX, "dict_value: index %lld out of range for %lld entries",
                       (long long)i, (long long)ct_dict_size(d));
    return ct__ret(ct_retain(d->e[i].t));
}

CT_API ct_dict *ct_dict_copy(const ct_dict *d) {
    if (!d) return ct__err(CT_ERR_ARG, "dict_copy: NULL dict");
    ct_dict *c = ct_dict_new();
    if (!c) return NULL;
    for (int64_t i = 0; i < d->n; i++)
        if (ct_dict_set(c, d->e[i].key, d->e[i].t) != 0) goto fail;
    for (int64_t i = 0; i < d->nm; i++)
        if (ct_dict_set_meta(c, d->m[i].key, d->m[i].value) != 0) goto fail;
    return c;
fail:
    ct_dict_free(c);
    return NULL;
}

/* ---- metadata ---- */
static int64_t find_meta(const ct_dict *d, const char *key) {
    for (int64_t i = 0; i < d->nm; i++)
        if (strcmp(d->m[i].key, key) == 0) return i;
    return -1;
}

CT_API int ct_dict_set_meta(ct_dict *d, const char *key, const char *value) {
    if (!d || !key || !*key || !value)
        return ct__errs(CT_ERR_ARG, "dict_set_meta: NULL dict, key or value, or empty key");
    char *v = strdup(value);
    if (!v) return ct__errs(CT_ERR_OOM, "dict_set_meta: out of memory");
    int64_t i = find_meta(d, key);
    if (i >= 0) {
        free(d->m[i].value);
        d->m[i].value = v;
        return 0;
    }
    if (d->nm == d->capm) {
        int64_t cap = d->capm ? 2 * d->capm : 8;
        meta_entry *m = realloc(d->m, (size_t)cap * sizeof *m);
        if (!m) {
            free(v);
            return ct__errs(CT_ERR_OOM, "dict_set_meta: out of memory");
        }
        d->m = m;
        d->capm = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return ct__errs(CT_ERR_OOM, "dict_set_meta: out of memory");
    }
    d->m[d->nm].key = k;
    d->m[d->nm].value = v;
    d->nm++;
    return 0;
}

CT_API const char *ct_dict_meta(const ct_dict *d, const char *key) {
    if (!d || !key) return NULL;
    int64_t i = find_meta(d, key);
    return i >= 0 ? d->m[i].value : NULL;
}

CT_API int64_t ct_dict_meta_size(const ct_dict *d) { return d ? d->nm : 0; }

CT_API const char *ct_dict_meta_key(const ct_dict *d, int64_t i) {
    if (!d || i < 0 || i >= d->nm) return ct__err(CT_ERR_INDEX, "dict_meta_key: index %lld out of range", (long long)i);
    return d->m[i].key;
}

CT_API const char *ct_dict_meta_value(const ct_dict *d, int64_t i) {
    if (!d || i < 0 || i >= d->nm) return ct__err(CT_ERR_INDEX, "dict_meta_value: index %lld out of range", (long long)i);
    return d->m[i].value;
}
