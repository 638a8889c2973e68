/* Ownership scopes: a thread-local stack of lists of references. Every tensor an op
 * returns goes through ct__ret(), which files it under the innermost scope. */
#include "core/internal.h"

typedef struct {
    ct_tensor **items;
    size_t n, cap;
} scope_t;

static _Thread_local CT_TLS_HOT scope_t *scopes;
static _Thread_local CT_TLS_HOT int depth, scopes_cap;

CT_API int ct_scope_depth(void) { return depth; }

CT_API int ct_scope_begin(void) {
    if (depth == scopes_cap) {
        int nc = scopes_cap ? scopes_cap * 2 : 8;
        scope_t *ns = realloc(scopes, sizeof *ns * (size_t)nc);
        if (!ns) return ct__errs(CT_ERR_OOM, "scope_begin: out of memory");
        memset(ns + scopes_cap, 0, sizeof *ns * (size_t)(nc - scopes_cap));
        scopes = ns; scopes_cap = nc;
    }
    scopes[depth].n = 0;
    depth++;
    return 0;
}

CT_API int ct_scope_end(void) {
    if (depth == 0) return ct__errs(CT_ERR_ARG, "scope_end: no scope is open");
    scope_t *s = &scopes[depth - 1];
    /* release newest first: results are usually built on earlier ones */
    for (size_t i = s->n; i-- > 0;) ct_release(s->items[i]);
    s->n = 0;
    depth--;
    if (depth == 0) { /* give the memory back when the outermost scope closes */
        for (int i = 0; i < scopes_cap; i++) free(scopes[i].items);
        free(scopes); scopes = NULL; scopes_cap = 0;
    }
    return 0;
}

static int push(scope_t *s, ct_tensor *t) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        ct_tensor **ni = realloc(s->items, sizeof *ni * nc);
        if (!ni) return -1;
        s->items = ni; s->cap = nc;
    }
    s->items[s->n++] = t;
    return 0;
}

ct_tensor *ct__ret(ct_tensor *t) {
    if (!t || depth == 0) return t;
    if (push(&scopes[depth - 1], t)) {
        ct_release(t);
        return ct__err(CT_ERR_OOM, "out of memory registering a tensor in a scope");
    }
    return t;
}

/* Removes one registration of t from scope s; true if found. */
static bool unregister(scope_t *s, ct_tensor *t) {
    for (size_t i = s->n; i-- > 0;)
        if (s->items[i] == t) {
            memmove(s->items + i, s->items + i + 1, (s->n - i - 1) * sizeof *s->items);
            s->n--;
            return true;
        }
    return false;
}

ct_tensor *ct__scope_take(ct_tensor *t) {
    if (!t) return NULL;
    if (depth == 0 || !unregister(&scopes[depth - 1], t)) ct_retain(t);
    return t;
}

CT_API ct_tensor *ct_keep(ct_tensor *t) {
    if (!t) return NULL;
    t = ct__scope_take(t);
    if (depth >= 2) {
        if (push(&scopes[depth - 2], t)) { ct_release(t); return ct__err(CT_ERR_OOM, "keep: out of memory"); }
    }
    return t;
}
