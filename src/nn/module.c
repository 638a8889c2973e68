/* Modules (include/ctorch/module.h): the nn.Module tree, state dicts, modes, printing
 * and containers. Layer types live beside this file (layers.c and the area files). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn/module_internal.h"

/* ---- small growable string ---- */
void ct__sb_init(ct__sb *b) { b->s = NULL, b->n = 0, b->cap = 0, b->oom = false; }

void ct__sb_add(ct__sb *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= (size_t)k) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s, b->cap = cap;
    }
}

char *ct__sb_take(ct__sb *b) {
    if (b->oom) {
        free(b->s);
        return ct__err(CT_ERR_OOM, "module: out of memory while printing");
    }
    if (!b->s) return strdup("");
    return b->s;
}

/* ---- lifetime ---- */
CT_API ct_module *ct_module_new(const ct_module_type *type, void *ctx) {
    if (!type || !type->name) return ct__err(CT_ERR_ARG, "module_new: a module type with a name is required");
    ct_module *m = calloc(1, sizeof *m);
    if (!m) return ct__err(CT_ERR_OOM, "module_new: out of memory");
    atomic_init(&m->refcount, 1);
    m->type = type;
    m->ctx = ctx;
    m->training = true;
    return m;
}

CT_API ct_module *ct_module_retain(ct_module *m) {
    if (m) atomic_fetch_add(&m->refcount, 1);
    return m;
}

CT_API void ct_module_free(ct_module *m) {
    if (!m || atomic_fetch_sub(&m->refcount, 1) != 1) return;
    for (int64_t i = 0; i < m->n_params; i++) {
        free(m->params[i].name);
        ct_release(m->params[i].t);
    }
    for (int64_t i = 0; i < m->n_buffers; i++) {
        free(m->buffers[i].name);
        ct_release(m->buffers[i].t);
    }
    for (int64_t i = 0; i < m->n_children; i++) {
        free(m->children[i].name);
        ct_module_free(m->children[i].m);
    }
    free(m->params);
    free(m->buffers);
    free(m->children);
    if (m->type->free_ctx) m->type->free_ctx(m->ctx);
    free(m);
}

CT_API void *ct_module_ctx(const ct_module *m) { return m ? m->ctx : NULL; }
CT_API const char *ct_module_type_name(const ct_module *m) { return m ? m->type->name : NULL; }
CT_API bool ct_module_is(const ct_module *m, const ct_module_type *type) { return m && m->type == type; }

/* ---- registration ---- */
static int64_t find_entry(const ct__mod_entry *e, int64_t n, const char *name, size_t len) {
    for (int64_t i = 0; i < n; i++)
        if (strlen(e[i].name) == len && memcmp(e[i].name, name, len) == 0) return i;
    return -1;
}

static int64_t find_child(const ct_module *m, const char *name, size_t len) {
    for (int64_t i = 0; i < m->n_children; i++)
        if (strlen(m->children[i].name) == len && memcmp(m->children[i].name, name, len) == 0) return i;
    return -1;
}

static int check_name(const char *op, const ct_module *m, const char *name, int kind) {
    if (!m) return ct__errs(CT_ERR_ARG, "%s: NULL module", op);
    if (!name || !*name || strchr(name, '.'))
        return ct__errs(CT_ERR_ARG, "%s: module name can't be empty or contain \".\", got: \"%s\"", op,
                        name ? name : "(null)");
    size_t len = strlen(name);
    if (kind != 0 && find_entry(m->params, m->n_params, name, len) >= 0)
        return ct__errs(CT_ERR_ARG, "%s: attribute '%s' already exists as a parameter", op, name);
    if (kind != 1 && find_entry(m->buffers, m->n_buffers, name, len) >= 0)
        return ct__errs(CT_ERR_ARG, "%s: attribute '%s' already exists as a buffer", op, name);
    if (kind != 2 && find_child(m, name, len) >= 0)
        return ct__errs(CT_ERR_ARG, "%s: attribute '%s' already exists as a submodule", op, name);
    return 0;
}

static int put_entry(ct__mod_entry **arr, int64_t *n, int64_t *cap, const char *name, ct_tensor *t, bool persistent) {
    int64_t i = find_entry(*arr, *n, name, strlen(name));
    if (i >= 0) {
        ct_retain(t);
        ct_release((*arr)[i].t);
        (*arr)[i].t = t;
        (*arr)[i].persistent = persistent;
        return 0;
    }
    if (*n == *cap) {
        int64_t c = *cap ? 2 * *cap : 4;
        ct__mod_entry *a = realloc(*arr, (size_t)c * sizeof *a);
        if (!a) return ct__errs(CT_ERR_OOM, "module: out of memory");
        *arr = a, *cap = c;
    }
    char *nm = strdup(name);
    if (!nm) return ct__errs(CT_ERR_OOM, "module: out of memory");
    (*arr)[*n] = (ct__mod_entry){nm, ct_retain(t), persistent};
    (*n)++;
    return 0;
}

CT_API int ct_module_register_parameter(ct_module *m, const char *name, ct_tensor *t) {
    int st = check_name("register_parameter", m, name, 0);
    if (st) return st;
    if (t) {
        if (!ct_is_leaf(t))
            return ct__errs(CT_ERR_AUTOGRAD,
                            "register_parameter: cannot assign a non-leaf tensor (one with a grad_fn) as parameter "
                            "'%s'; detach it first", name);
        if (!ct_requires_grad(t) && (st = ct_set_requires_grad(t, true))) return st;
    }
    return put_entry(&m->params, &m->n_params, &m->cap_params, name, t, true);
}

CT_API int ct_module_register_buffer(ct_module *m, const char *name, ct_tensor *t, bool persistent) {
    int st = check_name("register_buffer", m, name, 1);
    if (st) return st;
    return put_entry(&m->buffers, &m->n_buffers, &m->cap_buffers, name, t, persistent);
}

CT_API int ct_module_add_module(ct_module *m, const char *name, ct_module *child) {
    if (!child) {
        if (ct_last_status() == CT_OK) ct__errs(CT_ERR_NULL, "add_module: got a NULL module for '%s'", name ? name : "");
        return ct_last_status();
    }
    int st = check_name("add_module", m, name, 2);
    if (st) {
        ct_module_free(child);
        return st;
    }
    if (child == m) {
        ct_module_free(child);
        return ct__errs(CT_ERR_ARG, "add_module: a module cannot be its own child");
    }
    int64_t i = find_child(m, name, strlen(name));
    if (i >= 0) {
        ct_module_free(m->children[i].m);
        m->children[i].m = child;
        return 0;
    }
    if (m->n_children == m->cap_children) {
        int64_t c = m->cap_children ? 2 * m->cap_children : 4;
        ct__mod_child *a = realloc(m->children, (size_t)c * sizeof *a);
        if (!a) {
            ct_module_free(child);
            return ct__errs(CT_ERR_OOM, "add_module: out of memory");
        }
        m->children = a, m->cap_children = c;
    }
    char *nm = strdup(name);
    if (!nm) {
        ct_module_free(child);
        return ct__errs(CT_ERR_OOM, "add_module: out of memory");
    }
    m->children[m->n_children++] = (ct__mod_child){nm, child};
    /* a child added to a module in eval mode follows torch: it keeps its own mode */
    return 0;
}

/* ---- access ---- */
/* Walks the dotted prefix of path; returns the module owning the last component and
 * sets *last to it. */
static const ct_module *walk(const ct_module *m, const char *path, const char **last) {
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot) {
            *last = p;
            return m;
        }
        int64_t i = find_child(m, p, (size_t)(dot - p));
        if (i < 0) return NULL;
        m = m->children[i].m;
        p = dot + 1;
    }
}

static ct_tensor *get_tensor(const char *op, const ct_module *m, const char *path, bool param) {
    if (!m || !path) return ct__err(CT_ERR_ARG, "%s: NULL module or name", op);
    const char *last;
    const ct_module *o = walk(m, path, &last);
    if (o) {
        int64_t i = param ? find_entry(o->params, o->n_params, last, strlen(last))
                          : find_entry(o->buffers, o->n_buffers, last, strlen(last));
        ct_tensor *t = i < 0 ? NULL : param ? o->params[i].t : o->buffers[i].t;
        if (t) return ct__ret(ct_retain(t));
    }
    return ct__err(CT_ERR_KEY, "%s: %s has no %s named '%s'", op, m->type->name, param ? "parameter" : "buffer", path);
}

CT_API ct_tensor *ct_module_parameter(const ct_module *m, const char *path) { return get_tensor("module_parameter", m, path, true); }
CT_API ct_tensor *ct_module_buffer(const ct_module *m, const char *path) { return get_tensor("module_buffer", m, path, false); }

CT_API ct_module *ct_module_child(const ct_module *m, const char *path) {
    if (!m || !path) return ct__err(CT_ERR_ARG, "module_child: NULL module or name");
    const ct_module *o = m;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        int64_t i = find_child(o, p, len);
        if (i < 0) return ct__err(CT_ERR_KEY, "module_child: %s has no submodule named '%s'", m->type->name, path);
        o = o->children[i].m;
        if (!dot) return (ct_module *)o;
        p = dot + 1;
    }
}

CT_API int64_t ct_module_num_children(const ct_module *m) { return m ? m->n_children : 0; }
CT_API ct_module *ct_module_child_at(const ct_module *m, int64_t i) {
    if (!m || i < 0 || i >= m->n_children)
        return ct__err(CT_ERR_INDEX, "module_child_at: index %lld is out of range", (long long)i);
    return m->children[i].m;
}
CT_API const char *ct_module_child_name(const ct_module *m, int64_t i) {
    if (!m || i < 0 || i >= m->n_children)
        return ct__err(CT_ERR_INDEX, "module_child_name: index %lld is out of range", (long long)i);
    return m->children[i].name;
}
CT_API int64_t ct_module_num_own_parameters(const ct_module *m) { return m ? m->n_params : 0; }
CT_API ct_tensor *ct_module_own_parameter(const ct_module *m, int64_t i) {
    if (!m || i < 0 || i >= m->n_params)
        return ct__err(CT_ERR_INDEX, "module_own_parameter: index %lld is out of range", (long long)i);
    return m->params[i].t;
}

/* ---- recursive collection ---- */
typedef struct {
    const void **seen;
    int64_t n, cap;
    bool oom;
} ptrset;

/* true if p was already present; adds it otherwise */
static bool seen_add(ptrset *s, const void *p) {
    for (int64_t i = 0; i < s->n; i++)
        if (s->seen[i] == p) return true;
    if (s->n == s->cap) {
        int64_t c = s->cap ? 2 * s->cap : 32;
        const void **a = realloc(s->seen, (size_t)c * sizeof *a);
        if (!a) {
            s->oom = true;
            return true;
        }
        s->seen = a, s->cap = c;
    }
    s->seen[s->n++] = p;
    return false;
}

enum { COLLECT_PARAMS = 1, COLLECT_BUFFERS = 2, COLLECT_PERSISTENT = 4, COLLECT_DETACH = 8 };

/* Visits modules in torch's order (self, then children); each module once (torch's
 * named_modules removes duplicates), each tensor once. */
static int collect(const ct_module *m, const char *prefix, int what, ct_dict *out, ptrset *mods, ptrset *tens) {
    if (seen_add(mods, m)) return mods->oom ? ct__errs(CT_ERR_OOM, "module: out of memory") : 0;
    char name[1024];
    for (int pass = 0; pass < 2; pass++) {
        bool params = pass == 0;
        if (params && !(what & COLLECT_PARAMS)) continue;
        if (!params && !(what & COLLECT_BUFFERS)) continue;
        const ct__mod_entry *e = params ? m->params : m->buffers;
        int64_t n = params ? m->n_params : m->n_buffers;
        for (int64_t i = 0; i < n; i++) {
            if (!e[i].t) continue;
            if (!params && (what & COLLECT_PERSISTENT) && !e[i].persistent) continue;
            if (!(what & COLLECT_DETACH) && seen_add(tens, e[i].t)) {
                if (tens->oom) return ct__errs(CT_ERR_OOM, "module: out of memory");
                continue;
            }
            if (snprintf(name, sizeof name, "%s%s", prefix, e[i].name) >= (int)sizeof name)
                return ct__errs(CT_ERR_ARG, "module: parameter name too long: %s%s", prefix, e[i].name);
            int st;
            if (what & COLLECT_DETACH) {
                ct_scope_begin(); /* the dict keeps its own reference */
                ct_tensor *d = ct_detach(e[i].t);
                st = d ? ct_dict_set(out, name, d) : ct_last_status();
                ct_scope_end();
            } else {
                st = ct_dict_set(out, name, e[i].t);
            }
            if (st) return st;
        }
    }
    for (int64_t i = 0; i < m->n_children; i++) {
        if (snprintf(name, sizeof name, "%s%s.", prefix, m->children[i].name) >= (int)sizeof name)
            return ct__errs(CT_ERR_ARG, "module: submodule name too long");
        int st = collect(m->children[i].m, name, what, out, mods, tens);
        if (st) return st;
    }
    return 0;
}

static ct_dict *collect_dict(const char *op, const ct_module *m, int what) {
    if (!m) return ct__err(CT_ERR_ARG, "%s: NULL module", op);
    ct_dict *d = ct_dict_new();
    if (!d) return NULL;
    ptrset mods = {0}, tens = {0};
    int st = collect(m, "", what, d, &mods, &tens);
    free(mods.seen);
    free(tens.seen);
    if (st) {
        ct_dict_free(d);
        return NULL;
    }
    return d;
}

CT_API ct_dict *ct_module_named_parameters(const ct_module *m) {
    return collect_dict("named_parameters", m, COLLECT_PARAMS);
}
CT_API ct_dict *ct_module_named_buffers(const ct_module *m) {
    return collect_dict("named_buffers", m, COLLECT_BUFFERS);
}
CT_API ct_dict *ct_module_state_dict(const ct_module *m) {
    return collect_dict("state_dict", m, COLLECT_PARAMS | COLLECT_BUFFERS | COLLECT_PERSISTENT | COLLECT_DETACH);
}

/* ---- loading ---- */
CT_API void ct_load_result_free(ct_load_result *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n_missing; i++) free(r->missing_keys[i]);
    for (int64_t i = 0; i < r->n_unexpected; i++) free(r->unexpected_keys[i]);
    free(r->missing_keys);
    free(r->unexpected_keys);
    memset(r, 0, sizeof *r);
}

static char *torch_size(const ct_tensor *t, char *buf, size_t n) {
    int k = snprintf(buf, n, "torch.Size([");
    for (int d = 0; d < t->ndim && (size_t)k < n; d++)
        k += snprintf(buf + k, n - (size_t)k, "%s%lld", d ? ", " : "", (long long)t->sizes[d]);
    if ((size_t)k < n) snprintf(buf + k, n - (size_t)k, "])");
    return buf;
}

static int push_key(char ***arr, int64_t *n, const char *key) {
    char **a = realloc(*arr, (size_t)(*n + 1) * sizeof *a);
    if (!a) return ct__errs(CT_ERR_OOM, "load_state_dict: out of memory");
    *arr = a;
    if (!(a[*n] = strdup(key))) return ct__errs(CT_ERR_OOM, "load_state_dict: out of memory");
    (*n)++;
    return 0;
}

CT_API int ct_module_load_state_dict(ct_module *m, const ct_dict *sd, bool strict, ct_load_result *result) {
    if (result) memset(result, 0, sizeof *result);
    if (!m || !sd) return ct__errs(CT_ERR_ARG, "load_state_dict: NULL module or state dict");
    /* the live tensors (not detached) under their state-dict names */
    ct_dict *own = collect_dict("load_state_dict", m, COLLECT_PARAMS | COLLECT_BUFFERS | COLLECT_PERSISTENT);
    if (!own) return ct_last_status();
    ct_load_result r = {0};
    ct__sb mism;
    ct__sb_init(&mism);
    int st = 0;
    for (int64_t i = 0; i < ct_dict_size(own) && !st; i++) {
        const char *k = ct_dict_key(own, i);
        if (!ct_dict_contains(sd, k)) {
            st = push_key(&r.missing_keys, &r.n_missing, k);
            continue;
        }
        ct_scope_begin();
        ct_tensor *mine = ct_dict_value(own, i), *theirs = ct_dict_get(sd, k);
        if (!ct__same_sizes(mine->ndim, mine->sizes, theirs->ndim, theirs->sizes)) {
            char a[256], b[256];
            ct__sb_add(&mism, "\n\tsize mismatch for %s: copying a param with shape %s from checkpoint, the shape in "
                              "current model is %s.", k, torch_size(theirs, a, sizeof a), torch_size(mine, b, sizeof b));
        }
        ct_scope_end();
    }
    for (int64_t i = 0; i < ct_dict_size(sd) && !st; i++) {
        const char *k = ct_dict_key(sd, i);
        if (!ct_dict_contains(own, k)) st = push_key(&r.unexpected_keys, &r.n_unexpected, k);
    }
    if (!st) {
        bool key_err = strict && (r.n_missing || r.n_unexpected);
        if (key_err || mism.n) {
            ct__sb msg;
            ct__sb_init(&msg);
            ct__sb_add(&msg, "Error(s) in loading state_dict for %s:", m->type->name);
            if (strict && r.n_missing) {
                ct__sb_add(&msg, "\n\tMissing key(s) in state_dict: ");
                for (int64_t i = 0; i < r.n_missing; i++) ct__sb_add(&msg, "%s\"%s\"", i ? ", " : "", r.missing_keys[i]);
                ct__sb_add(&msg, ". ");
            }
            if (strict && r.n_unexpected) {
                ct__sb_add(&msg, "\n\tUnexpected key(s) in state_dict: ");
                for (int64_t i = 0; i < r.n_unexpected; i++)
                    ct__sb_add(&msg, "%s\"%s\"", i ? ", " : "", r.unexpected_keys[i]);
                ct__sb_add(&msg, ". ");
            }
            if (mism.n) ct__sb_add(&msg, "%s", mism.s);
            char *text = ct__sb_take(&msg);
            st = text ? ct__errs(mism.n ? CT_ERR_SHAPE : CT_ERR_KEY, "%s", text) : ct_last_status();
            free(text);
        }
    }
    free(mism.s);
    if (!st) {
        bool prev = ct_set_grad_enabled(false);
        ct_scope_begin();
        for (int64_t i = 0; i < ct_dict_size(own) && !st; i++) {
            const char *k = ct_dict_key(own, i);
            if (!ct_dict_contains(sd, k)) continue;
            st = ct_copy_(ct_dict_value(own, i), ct_dict_get(sd, k));
        }
        ct_scope_end();
        ct_set_grad_enabled(prev);
    }
    ct_dict_free(own);
    if (result && !st)
        *result = r;
    else
        ct_load_result_free(&r);
    return st;
}

/* ---- modes and bulk operations ---- */
static void set_mode(ct_module *m, bool mode) {
    m->training = mode;
    for (int64_t i = 0; i < m->n_children; i++) set_mode(m->children[i].m, mode);
}
CT_API int ct_module_train(ct_module *m, bool mode) {
    if (!m) return ct__errs(CT_ERR_ARG, "train: NULL module");
    set_mode(m, mode);
    return 0;
}
CT_API int ct_module_eval(ct_module *m) { return ct_module_train(m, false); }
CT_API bool ct_module_is_training(const ct_module *m) { return m && m->training; }

CT_API int ct_module_apply(ct_module *m, int (*fn)(ct_module *, void *), void *user) {
    if (!m || !fn) return ct__errs(CT_ERR_ARG, "apply: NULL module or function");
    for (int64_t i = 0; i < m->n_children; i++) {
        int st = ct_module_apply(m->children[i].m, fn, user);
        if (st) return st;
    }
    return fn(m, user);
}

/* Makes t hold src's data (same sizes), keeping t's identity: what torch's
 * `param.data = new` does. */
static void assign_data(ct_tensor *t, const ct_tensor *src) {
    atomic_fetch_add(&src->storage->refcount, 1);
    ct__storage_release(t->storage);
    t->storage = src->storage;
    t->dtype = src->dtype;
    t->offset = src->offset;
    memcpy(t->strides, src->strides, (size_t)t->ndim * sizeof *t->strides);
}

static bool is_float(ct_dtype dt) {
    return dt == CT_FLOAT16 || dt == CT_BFLOAT16 || dt == CT_FLOAT32 || dt == CT_FLOAT64;
}

static int cast_entries(ct__mod_entry *e, int64_t n, ct_dtype dt) {
    for (int64_t i = 0; i < n; i++) {
        ct_tensor *t = e[i].t;
        if (!t || !is_float(t->dtype) || t->dtype == dt) continue;
        ct_scope_begin();
        ct_tensor *c = ct_to_dtype(t, dt);
        ct_tensor *g = t->grad ? ct_to_dtype(t->grad, dt) : NULL;
        if (!c || (t->grad && !g)) {
            ct_scope_end();
            return ct_last_status();
        }
        assign_data(t, c);
        if (g) assign_data(t->grad, g);
        ct_scope_end();
    }
    return 0;
}

static int to_dtype_fn(ct_module *m, void *user) {
    ct_dtype dt = *(ct_dtype *)user;
    int st = cast_entries(m->params, m->n_params, dt);
    return st ? st : cast_entries(m->buffers, m->n_buffers, dt);
}

CT_API int ct_module_to_dtype(ct_module *m, ct_dtype dtype) {
    if (!m) return ct__errs(CT_ERR_ARG, "to: NULL module");
    if (!is_float(dtype))
        return ct__errs(CT_ERR_DTYPE, "nn.Module.to only accepts floating point dtypes, but got desired dtype=%s",
                        ct_dtype_name(dtype));
    return ct_module_apply(m, to_dtype_fn, &dtype);
}

static int zero_grad_fn(ct_module *m, void *user) {
    bool set_to_none = *(bool *)user;
    for (int64_t i = 0; i < m->n_params; i++) {
        ct_tensor *t = m->params[i].t;
        if (!t || !t->grad) continue;
        int st = set_to_none ? ct_set_grad(t, NULL) : ct_zero_(t->grad);
        if (st) return st;
    }
    return 0;
}
CT_API int ct_module_zero_grad(ct_module *m, bool set_to_none) {
    if (!m) return ct__errs(CT_ERR_ARG, "zero_grad: NULL module");
    return ct_module_apply(m, zero_grad_fn, &set_to_none);
}

static int requires_grad_fn(ct_module *m, void *user) {
    for (int64_t i = 0; i < m->n_params; i++)
        if (m->params[i].t) {
            int st = ct_set_requires_grad(m->params[i].t, *(bool *)user);
            if (st) return st;
        }
    return 0;
}
CT_API int ct_module_requires_grad_(ct_module *m, bool requires_grad) {
    if (!m) return ct__errs(CT_ERR_ARG, "requires_grad_: NULL module");
    return ct_module_apply(m, requires_grad_fn, &requires_grad);
}

CT_API int64_t ct_module_num_parameters(const ct_module *m, bool trainable_only) {
    if (!m) {
        ct__errs(CT_ERR_ARG, "num_parameters: NULL module");
        return -1;
    }
    ct_dict *d = ct_module_named_parameters(m);
    if (!d) return -1;
    int64_t n = 0;
    ct_scope_begin();
    for (int64_t i = 0; i < ct_dict_size(d); i++) {
        ct_tensor *t = ct_dict_value(d, i);
        if (!trainable_only || ct_requires_grad(t)) n += ct_numel(t);
    }
    ct_scope_end();
    ct_dict_free(d);
    return n;
}

/* ---- Python-style number formatting for reprs ---- */
const char *ct__pyfloat(double v, char *buf, size_t n) {
    if (isnan(v)) return snprintf(buf, n, "nan"), buf;
    if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf"), buf;
    /* shortest round-trip digits, then Python's choice of notation (repr(float)):
     * fixed for 1e-4 <= |v| < 1e16 (with ".0" for integers), exponent otherwise */
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, n, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    snprintf(buf, n, "%.*e", p - 1, v);
    const char *e = strchr(buf, 'e');
    int exp10 = e ? atoi(e + 1) : 0;
    if (v == 0 || (exp10 >= -4 && exp10 < 16)) {
        int dec = p - 1 - exp10;
        snprintf(buf, n, "%.*f", dec > 0 ? dec : 0, v);
        if (!strchr(buf, '.') && strlen(buf) + 2 < n) strcat(buf, ".0");
    }
    return buf;
}

const char *ct__pytuple(int n, const int64_t *v, char *buf, size_t size) {
    int k = snprintf(buf, size, "(");
    for (int i = 0; i < n && (size_t)k < size; i++)
        k += snprintf(buf + k, size - (size_t)k, "%s%lld", i ? ", " : "", (long long)v[i]);
    if ((size_t)k < size) snprintf(buf + k, size - (size_t)k, n == 1 ? ",)" : ")");
    return buf;
}

/* ---- running, with the summary recorder ---- */
typedef struct {
    const ct_module *m;
    int depth;
    int ndim;
    int64_t sizes[8];
    bool has_out;
} sum_row;

typedef struct {
    sum_row *rows;
    int64_t n, cap;
    int depth;
    bool oom;
} sum_state;

static _Thread_local sum_state *summary;

/* Runs type->forward or type->forward_n under the summary recorder (one row per call,
 * holding the shape of the first output). Returns the number of outputs or a status. */
static int run_forward(ct_module *m, int n_in, ct_tensor *const *in, int n_out, ct_tensor **out) {
    for (int i = 0; i < n_out; i++) out[i] = NULL;
    sum_state *s = summary;
    int64_t row = -1;
    if (s) {
        if (s->n == s->cap) {
            int64_t c = s->cap ? 2 * s->cap : 32;
            sum_row *r = realloc(s->rows, (size_t)c * sizeof *r);
            if (r) s->rows = r, s->cap = c;
            else s->oom = true;
        }
        if (s->n < s->cap) {
            row = s->n++;
            s->rows[row] = (sum_row){.m = m, .depth = s->depth};
        }
        s->depth++;
    }
    /* Forwards are written with scope-managed temporaries (ct_t(w), intermediate
     * activations): run them in a scope of their own and keep only the outputs, so a
     * forward called without an open scope leaks nothing. */
    int got;
    bool scoped = ct_scope_begin() == CT_OK;
    if (m->type->forward_n) {
        got = m->type->forward_n(m, n_in, in, n_out, out);
        if (got > n_out) got = n_out;
        if (got < 0 && ct_last_status() == CT_OK) ct__errs(CT_ERR_RUNTIME, "forward: the module failed");
    } else {
        ct_tensor *y = m->type->forward(m, in[0]);
        if (n_out > 0) out[0] = y;
        got = y ? (n_out > 0 ? 1 : 0) : ct_last_status();
    }
    if (scoped) {
        for (int i = 0; i < n_out; i++) out[i] = out[i] ? ct_keep(out[i]) : NULL;
        ct_scope_end();
    }
    if (s) {
        s->depth--;
        if (row >= 0 && got > 0 && out[0]) {
            sum_row *r = &s->rows[row];
            r->has_out = true;
            r->ndim = out[0]->ndim;
            for (int d = 0; d < out[0]->ndim && d < 8; d++) r->sizes[d] = out[0]->sizes[d];
        }
    }
    return got;
}

static int forward_checks(ct_module *m, int n_in, ct_tensor *const *in, int n_out) {
    if (!m) {
        if (ct_last_status() == CT_OK) ct__errs(CT_ERR_NULL, "forward: got a NULL module");
        return ct_last_status();
    }
    if (!m->type->forward && !m->type->forward_n) {
        ct__err(CT_ERR_RUNTIME, "%s has no forward(): call its children instead", m->type->name);
        return CT_ERR_RUNTIME;
    }
    if (n_in < 0 || n_out < 0 || (n_in > 0 && !in)) {
        ct__err(CT_ERR_ARG, "%s.forward: bad input/output counts (%d, %d)", m->type->name, n_in, n_out);
        return CT_ERR_ARG;
    }
    if (!m->type->forward_n && n_in != 1) {
        ct__err(CT_ERR_ARG, "%s.forward takes 1 input, got %d", m->type->name, n_in);
        return CT_ERR_ARG;
    }
    return CT_OK;
}

CT_API ct_tensor *ct_module_forward(ct_module *m, ct_tensor *input) {
    if (forward_checks(m, 1, &input, 1)) return NULL;
    CT_CHECK_ARG(m->type->name, input);
    ct_tensor *out = NULL;
    int got = run_forward(m, 1, &input, 1, &out);
    if (got <= 0) {
        if (got == 0 && ct_last_status() == CT_OK)
            ct__errs(CT_ERR_RUNTIME, "forward: the module returned no output");
        return NULL;
    }
    return out;
}

CT_API int ct_module_forward_n(ct_module *m, int n_in, ct_tensor *const *inputs, int n_out, ct_tensor **outputs) {
    if (n_out > 0 && !outputs) {
        ct__errs(CT_ERR_NULL, "forward: outputs is NULL");
        return CT_ERR_NULL;
    }
    for (int i = 0; i < n_out; i++) outputs[i] = NULL;
    int st = forward_checks(m, n_in, inputs, n_out);
    if (st) return st;
    if (!m->type->forward_n) CT_CHECK_ARG_S(m->type->name, inputs[0]);
    return run_forward(m, n_in, inputs, n_out, outputs);
}

/* ---- printing ---- */
/* Appends s to b with every line after the first indented by 2 (torch's _addindent). */
static void add_indented(ct__sb *b, const char *s) {
    for (; *s; s++) {
        ct__sb_add(b, "%c", *s);
        if (*s == '\n') ct__sb_add(b, "  ");
    }
}

static char *repr_rec(const ct_module *m);

static int repr_into(ct__sb *b, const ct_module *m) {
    char extra[1024] = "";
    if (m->type->extra_repr) m->type->extra_repr(m, extra, sizeof extra);
    ct__sb_add(b, "%s(", m->type->name);
    bool is_list = strcmp(m->type->name, "ModuleList") == 0;
    if (m->n_children == 0) {
        ct__sb_add(b, "%s)", extra);
        return 0;
    }
    if (*extra) {
        ct__sb_add(b, "\n  ");
        add_indented(b, extra);
    }
    char **reprs = calloc((size_t)m->n_children, sizeof *reprs);
    if (!reprs) return ct__errs(CT_ERR_OOM, "repr: out of memory");
    int st = 0;
    for (int64_t i = 0; i < m->n_children && !st; i++)
        if (!(reprs[i] = repr_rec(m->children[i].m))) st = ct_last_status();
    for (int64_t i = 0; i < m->n_children && !st;) {
        int64_t j = i;
        if (is_list) /* torch's ModuleList folds runs of identical children */
            while (j + 1 < m->n_children && strcmp(reprs[j + 1], reprs[i]) == 0) j++;
        ct__sb_add(b, "\n  ");
        ct__sb sub;
        ct__sb_init(&sub);
        if (j > i)
            ct__sb_add(&sub, "(%lld-%lld): %lld x %s", (long long)i, (long long)j, (long long)(j - i + 1), reprs[i]);
        else
            ct__sb_add(&sub, "(%s): %s", m->children[i].name, reprs[i]);
        char *text = ct__sb_take(&sub);
        if (!text) st = ct_last_status();
        else add_indented(b, text);
        free(text);
        i = j + 1;
    }
    for (int64_t i = 0; i < m->n_children; i++) free(reprs[i]);
    free(reprs);
    ct__sb_add(b, "\n)");
    return st;
}

static char *repr_rec(const ct_module *m) {
    ct__sb b;
    ct__sb_init(&b);
    if (repr_into(&b, m)) {
        free(b.s);
        return NULL;
    }
    return ct__sb_take(&b);
}

CT_API char *ct_module_repr(const ct_module *m) {
    if (!m) return ct__err(CT_ERR_ARG, "repr: NULL module");
    return repr_rec(m);
}

/* name of every module by dotted path (first path found, torch's named_modules) */
typedef struct {
    const ct_module **m;
    char **name;
    int64_t n, cap;
} name_map;

static void map_names(const ct_module *m, const char *path, name_map *nm) {
    for (int64_t i = 0; i < nm->n; i++)
        if (nm->m[i] == m) return;
    if (nm->n == nm->cap) {
        int64_t c = nm->cap ? 2 * nm->cap : 32;
        const ct_module **a = realloc(nm->m, (size_t)c * sizeof *a);
        if (!a) return;
        nm->m = a;
        char **b = realloc(nm->name, (size_t)c * sizeof *b);
        if (!b) return;
        nm->name = b;
        nm->cap = c;
    }
    nm->m[nm->n] = m;
    nm->name[nm->n++] = strdup(path);
    for (int64_t i = 0; i < m->n_children; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%s%s", path, *path ? "." : "", m->children[i].name);
        map_names(m->children[i].m, buf, nm);
    }
}

static int64_t own_param_count(const ct_module *m) {
    int64_t n = 0;
    for (int64_t i = 0; i < m->n_params; i++)
        if (m->params[i].t) n += m->params[i].t->numel;
    return n;
}

static void add_count(ct__sb *b, int64_t v) { /* 1,234,567 */
    char raw[32], out[48];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    int len = (int)strlen(raw), k = 0;
    for (int i = 0; i < len; i++) {
        out[k++] = raw[i];
        if (raw[i] != '-' && (len - i - 1) % 3 == 0 && i != len - 1) out[k++] = ',';
    }
    out[k] = 0;
    ct__sb_add(b, "%s", out);
}

CT_API char *ct_module_summary(ct_module *m, int ndim, const int64_t *input_shape, ct_dtype dtype) {
    if (!m) return ct__err(CT_ERR_ARG, "summary: NULL module");
    if (ndim < 0 || (ndim > 0 && !input_shape)) return ct__err(CT_ERR_ARG, "summary: bad input shape");
    if (summary) return ct__err(CT_ERR_RUNTIME, "summary: already running on this thread");
    /* remember every module's mode, run in eval without grad */
    name_map nm = {0};
    map_names(m, "", &nm);
    bool *modes = calloc((size_t)(nm.n ? nm.n : 1), sizeof *modes);
    if (!modes) return ct__err(CT_ERR_OOM, "summary: out of memory");
    for (int64_t i = 0; i < nm.n; i++) modes[i] = nm.m[i]->training;
    ct_module_eval(m);
    bool prev = ct_set_grad_enabled(false);
    sum_state s = {0};
    summary = &s;
    ct_scope_begin();
    ct_tensor *x = ct_zeros(ndim, input_shape, dtype);
    ct_tensor *y = ct_module_forward(m, x);
    ct_scope_end();
    summary = NULL;
    ct_set_grad_enabled(prev);
    for (int64_t i = 0; i < nm.n; i++) ((ct_module *)nm.m[i])->training = modes[i];
    free(modes);
    char *text = NULL;
    if (y && !s.oom) {
        ct__sb b;
        ct__sb_init(&b);
        ct__sb_add(&b, "%-40s %-24s %15s\n", "Layer (type)", "Output Shape", "Param #");
        for (int i = 0; i < 81; i++) ct__sb_add(&b, "=");
        ct__sb_add(&b, "\n");
        for (int64_t r = 0; r < s.n; r++) {
            const sum_row *row = &s.rows[r];
            const char *name = "";
            for (int64_t i = 0; i < nm.n; i++)
                if (nm.m[i] == row->m) name = nm.name[i] ? nm.name[i] : "";
            char label[256], shape[256];
            snprintf(label, sizeof label, "%*s%s%s%s%s", 2 * row->depth, "", row->m->type->name, *name ? " (" : "",
                     name, *name ? ")" : "");
            ct__shape_str(row->ndim, row->sizes, shape, sizeof shape);
            ct__sb_add(&b, "%-40s %-24s ", label, row->has_out ? shape : "?");
            ct__sb add;
            ct__sb_init(&add);
            add_count(&add, own_param_count(row->m));
            ct__sb_add(&b, "%15s\n", add.s ? add.s : "0");
            free(add.s);
        }
        for (int i = 0; i < 81; i++) ct__sb_add(&b, "=");
        int64_t total = ct_module_num_parameters(m, false), train = ct_module_num_parameters(m, true);
        ct__sb_add(&b, "\nTotal params: ");
        add_count(&b, total);
        ct__sb_add(&b, "\nTrainable params: ");
        add_count(&b, train);
        ct__sb_add(&b, "\nNon-trainable params: ");
        add_count(&b, total - train);
        ct__sb_add(&b, "\n");
        text = ct__sb_take(&b);
    } else if (s.oom) {
        ct__err(CT_ERR_OOM, "summary: out of memory");
    }
    free(s.rows);
    for (int64_t i = 0; i < nm.n; i++) free(nm.name[i]);
    free(nm.m);
    free(nm.name);
    return text;
}

/* ---- containers ---- */
/* Children in order; runs of them that have a fused op (ct__mod_seq_fuse) take it,
 * except while a summary records every module's output. */
static ct_tensor *sequential_forward(ct_module *self, ct_tensor *x) {
    for (int64_t i = 0; i < self->n_children && x; i++) {
        ct_tensor *y;
        int64_t used = summary ? 0 : ct__mod_seq_fuse(self->children + i, self->n_children - i, x, &y);
        if (used > 0) {
            x = y, i += used - 1;
            continue;
        }
        x = ct_module_forward(self->children[i].m, x);
    }
    return x;
}
static const ct_module_type SEQUENTIAL = {.name = "Sequential", .forward = sequential_forward};
static const ct_module_type MODULE_LIST = {.name = "ModuleList"};
static const ct_module_type MODULE_DICT = {.name = "ModuleDict"};

CT_API ct_module *ct_nn_sequential_new(void) { return ct_module_new(&SEQUENTIAL, NULL); }
CT_API ct_module *ct_nn_module_list_new(void) { return ct_module_new(&MODULE_LIST, NULL); }
CT_API ct_module *ct_nn_module_dict_new(void) { return ct_module_new(&MODULE_DICT, NULL); }

static int append(const char *op, ct_module *c, const ct_module_type *type, ct_module *m) {
    if (!c || c->type != type) {
        ct_module_free(m);
        return ct__errs(CT_ERR_ARG, "%s: expected a %s", op, type->name);
    }
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)c->n_children);
    return ct_module_add_module(c, name, m);
}
CT_API int ct_nn_sequential_append(ct_module *seq, ct_module *m) { return append("sequential_append", seq, &SEQUENTIAL, m); }
CT_API int ct_nn_module_list_append(ct_module *l, ct_module *m) { return append("module_list_append", l, &MODULE_LIST, m); }
CT_API int ct_nn_module_dict_set(ct_module *d, const char *name, ct_module *m) {
    if (!d || d->type != &MODULE_DICT) {
        ct_module_free(m);
        return ct__errs(CT_ERR_ARG, "module_dict_set: expected a ModuleDict");
    }
    return ct_module_add_module(d, name, m);
}

CT_API ct_module *ct_nn_sequential(int n, ct_module *const *mods) {
    int bad = -1;
    for (int i = 0; i < n; i++)
        if (!mods[i] && bad < 0) bad = i;
    ct_module *seq = bad < 0 ? ct_nn_sequential_new() : NULL;
    if (!seq) {
        for (int i = 0; i < n; i++) ct_module_free(mods[i]);
        if (bad >= 0 && ct_last_status() == CT_OK) ct__errs(CT_ERR_NULL, "Sequential: module %d is NULL", bad);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (ct_nn_sequential_append(seq, mods[i])) {
            for (int j = i + 1; j < n; j++) ct_module_free(mods[j]);
            ct_module_free(seq);
            return NULL;
        }
    return seq;
}
