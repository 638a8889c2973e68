/* A restricted unpickler for torch.save's data.pkl (src/io/pickle.h).
 *
 * It accepts what torch.load(weights_only=True) accepts for state dicts and nothing
 * else: the opcodes of protocols 2-5 that build containers, strings and numbers, the
 * globals collections.OrderedDict, torch._utils._rebuild_tensor_v2 /
 * _rebuild_parameter and torch.<Type>Storage, and persistent ids
 * ('storage', torch.<Type>Storage, key, location, numel). Any other global or opcode is
 * an error naming it; nothing is ever imported or called. The machine is iterative; its
 * stack, mark stack and memo are bounded by the input's length, every object lives in
 * an arena freed at the end, and the walk that flattens the result has a depth and a
 * work limit (a list may contain itself). */
#include "io/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/io.h"

enum { O_NONE, O_BOOL, O_INT, O_FLOAT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL, O_STORAGE, O_TENSOR };
enum { G_ODICT, G_REBUILD, G_PARAM, G_STORAGE };
static const char *KIND[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};

typedef struct obj {
    int kind;
    int64_t i;   /* int / bool value; global id */
    double f;
    char *s;     /* str (NUL-terminated copy); storage key */
    size_t slen;
    struct obj **v; /* tuple/list items; dict: key, value pairs */
    int64_t n, cap; /* items (dict: pairs) */
    ct_dtype dt;    /* storage global, storage, */
    int64_t numel;  /* storage */
    struct obj *st; /* tensor: storage */
    int64_t off;
    int nd;
    int64_t *geo; /* tensor: sizes then strides */
    bool rg;
} obj;

typedef struct {
    const unsigned char *p, *start, *end;
    obj **stack;
    int64_t sp, scap;
    int64_t *marks;
    int64_t nm, mcap;
    obj **memo;
    int64_t memo_cap, memo_next, memo_limit;
    obj **all;
    int64_t nall, allcap;
    char err[256];
    bool oom;
} up;

static void fail(up *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(up *u, const char *fmt, ...) {
    if (u->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(u->err, sizeof u->err, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < sizeof u->err - 40 && u->p)
        snprintf(u->err + k, sizeof u->err - (size_t)k, " (at byte %td)", u->p - u->start);
}

static bool grow(void **p, int64_t *cap, int64_t need, size_t es) {
    if (need <= *cap) return true;
    int64_t c = *cap ? *cap : 8;
    while (c < need) c *= 2;
    void *x = realloc(*p, (size_t)c * es);
    if (!x) return false;
    *p = x, *cap = c;
    return true;
}

static obj *new_obj(up *u, int kind) {
    if (!grow((void **)&u->all, &u->allcap, u->nall + 1, sizeof(obj *))) { u->oom = true; fail(u, "out of memory"); return NULL; }
    obj *o = calloc(1, sizeof *o);
    if (!o) { u->oom = true; fail(u, "out of memory"); return NULL; }
    o->kind = kind;
    u->all[u->nall++] = o;
    return o;
}

static bool push(up *u, obj *o) {
    if (!o) return false;
    if (u->sp >= (1 << 22)) { fail(u, "stack too deep"); return false; }
    if (!grow((void **)&u->stack, &u->scap, u->sp + 1, sizeof(obj *))) { u->oom = true; fail(u, "out of memory"); return false; }
    u->stack[u->sp++] = o;
    return true;
}
static obj *pop(up *u) {
    int64_t floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp <= floor) { fail(u, "stack underflow"); return NULL; }
    return u->stack[--u->sp];
}
/* the object just below the items of a popped mark (SETITEMS, APPENDS) */
static obj *below(up *u, int64_t from) {
    int64_t floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (from <= floor) { fail(u, "stack underflow"); return NULL; }
    return u->stack[from - 1];
}
static obj *top(up *u) {
    int64_t floor = u->nm ? u->marks[u->nm - 1] : 0;
    if (u->sp <= floor) { fail(u, "stack underflow"); return NULL; }
    return u->stack[u->sp - 1];
}
/* pops to the last mark: items stack[*from .. sp) */
static bool pop_mark(up *u, int64_t *from) {
    if (!u->nm) { fail(u, "no MARK on the stack"); return false; }
    *from = u->marks[--u->nm];
    return true;
}

static bool need(up *u, size_t k) {
    if ((size_t)(u->end - u->p) < k) { fail(u, "truncated pickle"); return false; }
    return true;
}
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }

static obj *make_str(up *u, const unsigned char *s, size_t n) {
    obj *o = new_obj(u, O_STR);
    if (!o) return NULL;
    o->s = malloc(n + 1);
    if (!o->s) { u->oom = true; fail(u, "out of memory"); return NULL; }
    if (n) memcpy(o->s, s, n);
    o->s[n] = 0;
    o->slen = n;
    return o;
}
static obj *make_int(up *u, int kind, int64_t v) {
    obj *o = new_obj(u, kind);
    if (o) o->i = v;
    return o;
}
static obj *make_seq(up *u, int kind, int64_t from) {
    obj *o = new_obj(u, kind);
    if (!o) return NULL;
    int64_t n = u->sp - from;
    if (n) {
        o->v = malloc(sizeof(obj *) * (size_t)n);
        if (!o->v) { u->oom = true; fail(u, "out of memory"); return NULL; }
        memcpy(o->v, u->stack + from, sizeof(obj *) * (size_t)n);
    }
    o->n = o->cap = n;
    u->sp = from;
    return o;
}
static bool seq_add(up *u, obj *l, obj *x) {
    if (!grow((void **)&l->v, &l->cap, l->n + 1, sizeof(obj *))) { u->oom = true; fail(u, "out of memory"); return false; }
    l->v[l->n++] = x;
    return true;
}
/* Items are appended; a key given twice (Python would keep the last value) is refused
 * when the dict is flattened, which keeps SETITEMS linear in the input. */
static bool dict_set(up *u, obj *d, obj *k, obj *v) {
    if (k->kind != O_STR && k->kind != O_INT && k->kind != O_BOOL) {
        fail(u, "dict key of type %s is not supported (str and int keys only)", KIND[k->kind]);
        return false;
    }
    int64_t cap2 = d->cap * 2;
    if (!grow((void **)&d->v, &cap2, 2 * d->n + 2, sizeof(obj *))) { u->oom = true; fail(u, "out of memory"); return false; }
    d->cap = cap2 / 2;
    d->v[2 * d->n] = k, d->v[2 * d->n + 1] = v;
    d->n++;
    return true;
}

static const struct {
    const char *name;
    ct_dtype dt;
} STORAGES[] = {{"FloatStorage", CT_FLOAT32},        {"DoubleStorage", CT_FLOAT64},       {"HalfStorage", CT_FLOAT16},
                {"BFloat16Storage", CT_BFLOAT16},    {"LongStorage", CT_INT64},           {"IntStorage", CT_INT32},
                {"ShortStorage", CT_INT16},          {"CharStorage", CT_INT8},            {"ByteStorage", CT_UINT8},
                {"BoolStorage", CT_BOOL},            {"ComplexFloatStorage", CT_COMPLEX64}, {"ComplexDoubleStorage", CT_COMPLEX128}};
#define N_STORAGES (int)(sizeof STORAGES / sizeof STORAGES[0])

static obj *make_global(up *u, const char *mod, size_t ml, const char *name, size_t nl) {
    int id = -1;
    ct_dtype dt = CT_NUM_DTYPES;
#define IS(s, l, lit) ((l) == sizeof(lit) - 1 && memcmp((s), lit, (l)) == 0)
    if (IS(mod, ml, "collections") && IS(name, nl, "OrderedDict")) id = G_ODICT;
    else if (IS(mod, ml, "torch._utils") && IS(name, nl, "_rebuild_tensor_v2")) id = G_REBUILD;
    else if (IS(mod, ml, "torch._utils") && IS(name, nl, "_rebuild_parameter")) id = G_PARAM;
    else if (IS(mod, ml, "torch"))
        for (int i = 0; i < N_STORAGES; i++)
            if (nl == strlen(STORAGES[i].name) && memcmp(name, STORAGES[i].name, nl) == 0) id = G_STORAGE, dt = STORAGES[i].dt;
#undef IS
    if (id < 0) {
        fail(u, "global '%.*s.%.*s' is not allowed (a weights-only load accepts only tensors, storages and "
                "OrderedDict)", (int)(ml > 80 ? 80 : ml), mod, (int)(nl > 80 ? 80 : nl), name);
        return NULL;
    }
    obj *o = new_obj(u, O_GLOBAL);
    if (o) o->i = id, o->dt = dt;
    return o;
}

static bool is_int(const obj *o) { return o && (o->kind == O_INT); }

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static obj *rebuild_tensor(up *u, obj *a) {
    if (a->n != 6 && a->n != 7) { fail(u, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %lld", (long long)a->n); return NULL; }
    obj *st = a->v[0], *off = a->v[1], *sz = a->v[2], *sd = a->v[3], *rg = a->v[4], *hk = a->v[5];
    if (st->kind != O_STORAGE) { fail(u, "_rebuild_tensor_v2: argument 1 is a %s, not a storage", KIND[st->kind]); return NULL; }
    if (!is_int(off) || off->i < 0) { fail(u, "_rebuild_tensor_v2: bad storage offset"); return NULL; }
    if (sz->kind != O_TUPLE || sd->kind != O_TUPLE || sz->n != sd->n) {
        fail(u, "_rebuild_tensor_v2: size and stride must be tuples of the same length");
        return NULL;
    }
    if (sz->n > CT_MAX_DIMS) { fail(u, "_rebuild_tensor_v2: %lld dimensions (at most %d)", (long long)sz->n, CT_MAX_DIMS); return NULL; }
    if (rg->kind != O_BOOL) { fail(u, "_rebuild_tensor_v2: requires_grad must be a bool"); return NULL; }
    if (hk->kind != O_DICT || hk->n) { fail(u, "_rebuild_tensor_v2: backward hooks must be an empty OrderedDict"); return NULL; }
    if (a->n == 7 && a->v[6]->kind != O_DICT && a->v[6]->kind != O_NONE) { fail(u, "_rebuild_tensor_v2: bad metadata"); return NULL; }
    int nd = (int)sz->n;
    obj *t = new_obj(u, O_TENSOR);
    if (!t) return NULL;
    t->geo = malloc(sizeof(int64_t) * (size_t)(2 * nd + 1));
    if (!t->geo) { u->oom = true; fail(u, "out of memory"); return NULL; }
    /* the view must lie inside its storage: offset + sum (size-1)*stride < numel */
    uint64_t max = (uint64_t)off->i, span = 1;
    bool empty = false;
    for (int k = 0; k < nd; k++) {
        obj *s = sz->v[k], *r = sd->v[k];
        if (!is_int(s) || !is_int(r) || s->i < 0 || r->i < 0 || s->i > ((int64_t)1 << 48) || r->i > ((int64_t)1 << 48)) {
            fail(u, "_rebuild_tensor_v2: sizes and strides must be non-negative integers");
            return NULL;
        }
        t->geo[k] = s->i, t->geo[nd + k] = r->i;
        if (s->i == 0) empty = true;
        else {
            if (r->i && (uint64_t)(s->i - 1) > UINT64_MAX / (uint64_t)r->i) { fail(u, "_rebuild_tensor_v2: geometry overflows"); return NULL; }
            uint64_t step = (uint64_t)(s->i - 1) * (uint64_t)r->i;
            if (max > UINT64_MAX - step) { fail(u, "_rebuild_tensor_v2: geometry overflows"); return NULL; }
            max += step;
        }
        /* the product of the nonzero sizes, so that no element count or contiguous stride
         * computed from these sizes later can overflow, even when one size is 0 */
        if (span > ((uint64_t)1 << 48) / (uint64_t)(s->i ? s->i : 1)) { fail(u, "_rebuild_tensor_v2: implausible size"); return NULL; }
        if (s->i) span *= (uint64_t)s->i;
    }
    if (empty ? (uint64_t)off->i > (uint64_t)st->numel : max >= (uint64_t)st->numel) {
        fail(u, "_rebuild_tensor_v2: the view (offset %lld) reaches past its storage of %lld elements", (long long)off->i,
             (long long)st->numel);
        return NULL;
    }
    t->st = st, t->off = off->i, t->nd = nd, t->rg = rg->i != 0;
    return t;
}

static obj *reduce(up *u, obj *f, obj *a) {
    if (f->kind != O_GLOBAL) { fail(u, "REDUCE of a %s (only allowed globals may be called)", KIND[f->kind]); return NULL; }
    if (a->kind != O_TUPLE) { fail(u, "REDUCE arguments must be a tuple"); return NULL; }
    switch ((int)f->i) {
    case G_ODICT:
        if (a->n != 0) { fail(u, "OrderedDict() takes no arguments here"); return NULL; }
        return new_obj(u, O_DICT);
    case G_REBUILD: return rebuild_tensor(u, a);
    case G_PARAM: /* _rebuild_parameter(data, requires_grad, backward_hooks) */
        if (a->n != 3 || a->v[0]->kind != O_TENSOR || a->v[1]->kind != O_BOOL || a->v[2]->kind != O_DICT || a->v[2]->n) {
            fail(u, "_rebuild_parameter takes (tensor, bool, empty OrderedDict)");
            return NULL;
        }
        a->v[0]->rg = a->v[1]->i != 0;
        return a->v[0];
    default: fail(u, "a storage type cannot be called"); return NULL;
    }
}

/* ('storage', torch.<T>Storage, key, location, numel) */
static obj *persistent(up *u, obj *pid) {
    if (pid->kind != O_TUPLE || pid->n != 5 || pid->v[0]->kind != O_STR || strcmp(pid->v[0]->s, "storage") != 0) {
        fail(u, "persistent id is not a ('storage', type, key, location, numel) tuple");
        return NULL;
    }
    obj *ty = pid->v[1], *key = pid->v[2], *loc = pid->v[3], *n = pid->v[4];
    if (ty->kind != O_GLOBAL || ty->i != G_STORAGE) { fail(u, "persistent id: storage type is not a torch storage class"); return NULL; }
    if (key->kind != O_STR || key->slen == 0 || key->slen > 64 || strlen(key->s) != key->slen || strchr(key->s, '/')) {
        fail(u, "persistent id: bad storage key");
        return NULL;
    }
    if (loc->kind != O_STR) { fail(u, "persistent id: location must be a string"); return NULL; }
    if (!is_int(n) || n->i < 0) { fail(u, "persistent id: bad element count"); return NULL; }
    obj *s = new_obj(u, O_STORAGE);
    if (!s) return NULL;
    s->dt = ty->dt, s->s = key->s, s->slen = key->slen, s->numel = n->i; /* key string is owned by the str object */
    return s;
}

static const struct {
    unsigned char op;
    const char *name;
} REJECTED[] = {{'i', "INST"},           {'o', "OBJ"},          {0x81, "NEWOBJ"},       {0x92, "NEWOBJ_EX"},
                {0x82, "EXT1"},          {0x83, "EXT2"},        {0x84, "EXT4"},         {'S', "STRING"},
                {'T', "BINSTRING"},      {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"},    {'I', "INT"},
                {'L', "LONG"},           {0x8b, "LONG4"},       {'F', "FLOAT"},         {'P', "PERSID"},
                {'g', "GET"},            {'p', "PUT"},          {'d', "DICT"},          {'l', "LIST"},
                {'0', "POP"},            {'1', "POP_MARK"},     {'2', "DUP"},           {'B', "BINBYTES"},
                {'C', "SHORT_BINBYTES"}, {0x8e, "BINBYTES8"},   {0x96, "BYTEARRAY8"},   {0x97, "NEXT_BUFFER"},
                {0x98, "READONLY_BUFFER"}, {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"},     {0x91, "FROZENSET"}};

static bool memo_put(up *u, int64_t idx, obj *o) {
    if (!o) return false;
    if (idx < 0 || idx > u->memo_limit) { fail(u, "memo index %lld out of range", (long long)idx); return false; }
    int64_t old = u->memo_cap;
    if (!grow((void **)&u->memo, &u->memo_cap, idx + 1, sizeof(obj *))) { u->oom = true; fail(u, "out of memory"); return false; }
    if (u->memo_cap > old) memset(u->memo + old, 0, sizeof(obj *) * (size_t)(u->memo_cap - old));
    u->memo[idx] = o;
    return true;
}
static obj *memo_get(up *u, int64_t idx) {
    if (idx < 0 || idx >= u->memo_cap || !u->memo[idx]) { fail(u, "memo index %lld was never stored", (long long)idx); return NULL; }
    return u->memo[idx];
}

/* runs the machine; returns the object STOP returns, or NULL */
static obj *run(up *u) {
    while (!u->err[0]) {
        if (!need(u, 1)) return NULL;
        unsigned char op = *u->p++;
        int64_t from;
        obj *a, *b, *c;
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(u, 1)) return NULL;
            if (*u->p < 2 || *u->p > 5) { fail(u, "unsupported pickle protocol %d", *u->p); return NULL; }
            u->p++;
            break;
        case 0x95: { /* FRAME: a length hint */
            if (!need(u, 8)) return NULL;
            uint64_t fl = (uint64_t)le32(u->p) | ((uint64_t)le32(u->p + 4) << 32);
            u->p += 8;
            if (fl > (uint64_t)(u->end - u->p)) { fail(u, "FRAME longer than the pickle"); return NULL; }
            break;
        }
        case '.': /* STOP */
            a = pop(u);
            if (a && (u->sp || u->nm)) { fail(u, "values left on the stack at STOP"); return NULL; }
            return a;
        case '}': push(u, new_obj(u, O_DICT)); break;
        case ']': push(u, new_obj(u, O_LIST)); break;
        case ')': push(u, new_obj(u, O_TUPLE)); break;
        case 'N': push(u, new_obj(u, O_NONE)); break;
        case 0x88: push(u, make_int(u, O_BOOL, 1)); break;
        case 0x89: push(u, make_int(u, O_BOOL, 0)); break;
        case '(': /* MARK */
            if (!grow((void **)&u->marks, &u->mcap, u->nm + 1, sizeof(int64_t))) { fail(u, "out of memory"); return NULL; }
            u->marks[u->nm++] = u->sp;
            break;
        case 'X': case 0x8c: case 0x8d: { /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
            size_t w = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
            if (!need(u, w)) return NULL;
            uint64_t len = op == 0x8c ? *u->p : op == 'X' ? le32(u->p) : ((uint64_t)le32(u->p) | ((uint64_t)le32(u->p + 4) << 32));
            u->p += w;
            if (len > (uint64_t)(u->end - u->p)) { fail(u, "string runs past the end of the pickle"); return NULL; }
            push(u, make_str(u, u->p, (size_t)len));
            u->p += len;
            break;
        }
        case 'K': if (!need(u, 1)) return NULL; push(u, make_int(u, O_INT, *u->p)); u->p += 1; break;
        case 'M': if (!need(u, 2)) return NULL; push(u, make_int(u, O_INT, u->p[0] | (u->p[1] << 8))); u->p += 2; break;
        case 'J': if (!need(u, 4)) return NULL; push(u, make_int(u, O_INT, (int32_t)le32(u->p))); u->p += 4; break;
        case 0x8a: { /* LONG1: little-endian two's complement */
            if (!need(u, 1)) return NULL;
            int n = *u->p++;
            if (n > 8) { fail(u, "integer of %d bytes is too large", n); return NULL; }
            if (!need(u, (size_t)n)) return NULL;
            uint64_t v = 0;
            for (int k = n - 1; k >= 0; k--) v = (v << 8) | u->p[k];
            if (n && n < 8 && (u->p[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
            u->p += n;
            push(u, make_int(u, O_INT, (int64_t)v));
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if (!need(u, 8)) return NULL;
            uint64_t v = 0;
            for (int k = 0; k < 8; k++) v = (v << 8) | u->p[k];
            u->p += 8;
            obj *o = new_obj(u, O_FLOAT);
            if (o) memcpy(&o->f, &v, 8);
            push(u, o);
            break;
        }
        case 'q': if (!need(u, 1)) return NULL; memo_put(u, *u->p, top(u)); u->p += 1; break;
        case 'r': if (!need(u, 4)) return NULL; memo_put(u, (int64_t)le32(u->p), top(u)); u->p += 4; break;
        case 0x94: memo_put(u, u->memo_next++, top(u)); break; /* MEMOIZE */
        case 'h': if (!need(u, 1)) return NULL; push(u, memo_get(u, *u->p)); u->p += 1; break;
        case 'j': if (!need(u, 4)) return NULL; push(u, memo_get(u, (int64_t)le32(u->p))); u->p += 4; break;
        case 'c': { /* GLOBAL module\nname\n */
            const unsigned char *m = u->p, *nl1 = memchr(m, '\n', (size_t)(u->end - m));
            if (!nl1) { fail(u, "truncated GLOBAL"); return NULL; }
            const unsigned char *nm = nl1 + 1, *nl2 = memchr(nm, '\n', (size_t)(u->end - nm));
            if (!nl2) { fail(u, "truncated GLOBAL"); return NULL; }
            u->p = nl2 + 1;
            push(u, make_global(u, (const char *)m, (size_t)(nl1 - m), (const char *)nm, (size_t)(nl2 - nm)));
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            b = pop(u), a = b ? pop(u) : NULL;
            if (!a) return NULL;
            if (a->kind != O_STR || b->kind != O_STR) { fail(u, "STACK_GLOBAL needs two strings"); return NULL; }
            push(u, make_global(u, a->s, a->slen, b->s, b->slen));
            break;
        case 'Q': /* BINPERSID */
            a = pop(u);
            if (!a) return NULL;
            push(u, persistent(u, a));
            break;
        case 't': if (!pop_mark(u, &from)) return NULL; push(u, make_seq(u, O_TUPLE, from)); break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1-3 */
            int k = op - 0x84;
            int64_t floor = u->nm ? u->marks[u->nm - 1] : 0;
            if (u->sp - floor < k) { fail(u, "stack underflow"); return NULL; }
            push(u, make_seq(u, O_TUPLE, u->sp - k));
            break;
        }
        case 'R': /* REDUCE */
            b = pop(u), a = b ? pop(u) : NULL;
            if (!a) return NULL;
            push(u, reduce(u, a, b));
            break;
        case 'b': /* BUILD: only a state dict's attribute dict (its _metadata), ignored */
            b = pop(u), a = b ? top(u) : NULL;
            if (!a) return NULL;
            if (a->kind != O_DICT || (b->kind != O_DICT && b->kind != O_NONE)) {
                fail(u, "BUILD of a %s with a %s state is not supported", KIND[a->kind], KIND[b->kind]);
                return NULL;
            }
            break;
        case 's': /* SETITEM */
            c = pop(u), b = c ? pop(u) : NULL, a = b ? top(u) : NULL;
            if (!a) return NULL;
            if (a->kind != O_DICT) { fail(u, "SETITEM on a %s", KIND[a->kind]); return NULL; }
            dict_set(u, a, b, c);
            break;
        case 'u': /* SETITEMS */
            if (!pop_mark(u, &from)) return NULL;
            if ((u->sp - from) % 2) { fail(u, "SETITEMS with an odd number of items"); return NULL; }
            a = below(u, from);
            if (!a) return NULL;
            if (a->kind != O_DICT) { fail(u, "SETITEMS on a %s", KIND[a->kind]); return NULL; }
            for (int64_t k = from; k < u->sp && !u->err[0]; k += 2) dict_set(u, a, u->stack[k], u->stack[k + 1]);
            u->sp = from;
            break;
        case 'a': /* APPEND */
            b = pop(u), a = b ? top(u) : NULL;
            if (!a) return NULL;
            if (a->kind != O_LIST) { fail(u, "APPEND to a %s", KIND[a->kind]); return NULL; }
            seq_add(u, a, b);
            break;
        case 'e': /* APPENDS */
            if (!pop_mark(u, &from)) return NULL;
            a = below(u, from);
            if (!a) return NULL;
            if (a->kind != O_LIST) { fail(u, "APPENDS to a %s", KIND[a->kind]); return NULL; }
            for (int64_t k = from; k < u->sp && !u->err[0]; k++) seq_add(u, a, u->stack[k]);
            u->sp = from;
            break;
        default: {
            const char *name = NULL;
            for (size_t k = 0; k < sizeof REJECTED / sizeof REJECTED[0]; k++)
                if (REJECTED[k].op == op) name = REJECTED[k].name;
            u->p--;
            if (name) fail(u, "pickle opcode %s (0x%02x) is not allowed in a weights-only load", name, op);
            else fail(u, "unknown pickle opcode 0x%02x", op);
            return NULL;
        }
        }
    }
    return NULL;
}

/* ---- flattening into a ct_dict ---- */
typedef struct {
    const ct__zip *z;
    const char *prefix, *what;
    bool big;
    ct_dict *out;
    struct {
        const char *key;
        ct_dtype dt;
        ct_tensor *t;
    } *cache;
    int64_t nc, ccap;
    int64_t *slots; /* hash index over cache: entry + 1, 0 = empty; nslots a power of 2 */
    int64_t nslots;
    int64_t work, nmeta;
    char err[256];
} flat;

static int ffail(flat *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ffail(flat *f, const char *fmt, ...) {
    if (!f->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->err, sizeof f->err, fmt, ap);
        va_end(ap);
    }
    return CT_ERR_FORMAT;
}

static uint64_t skey_hash(const char *k, ct_dtype dt) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)dt;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h;
}

/* the storage's data as a 1-D tensor (scope-owned), loaded once per key and dtype */
static ct_tensor *storage_tensor(flat *f, const obj *s) {
    uint64_t h = skey_hash(s->s, s->dt);
    for (uint64_t j = f->nslots ? h & (uint64_t)(f->nslots - 1) : 0; f->nslots && f->slots[j]; j = (j + 1) & (uint64_t)(f->nslots - 1)) {
        int64_t i = f->slots[j] - 1;
        if (f->cache[i].dt == s->dt && strcmp(f->cache[i].key, s->s) == 0) return f->cache[i].t;
    }
    char name[160];
    snprintf(name, sizeof name, "%sdata/%s", f->prefix, s->s);
    int64_t e = ct__zip_find(f->z, name);
    if (e < 0) { ffail(f, "storage '%s' has no record %s in the archive", s->s, name); return NULL; }
    size_t es = ct_dtype_size(s->dt);
    if ((uint64_t)s->numel > f->z->e[e].usize / es || f->z->e[e].usize != (uint64_t)s->numel * es) {
        ffail(f, "storage '%s' holds %llu bytes, its %lld %s elements need %llu", s->s,
              (unsigned long long)f->z->e[e].usize, (long long)s->numel, ct_dtype_name(s->dt),
              (unsigned long long)s->numel * es);
        return NULL;
    }
    unsigned char *b;
    size_t n;
    if (ct__zip_read(f->z, e, &b, &n)) return NULL; /* error recorded */
    if (f->big && es > 1) {
        size_t part = ct_dtype_is_complex(s->dt) ? es / 2 : es;
        for (size_t i = 0; i < n / part; i++)
            for (size_t x = 0, y = part - 1; x < y; x++, y--) {
                unsigned char c = b[i * part + x];
                b[i * part + x] = b[i * part + y], b[i * part + y] = c;
            }
    }
    if (s->dt == CT_BOOL)
        for (size_t i = 0; i < n; i++) b[i] = b[i] != 0;
    int64_t numel = s->numel;
    ct_tensor *t = ct_from_data(n ? (const void *)b : (const void *)"", 1, &numel, s->dt);
    free(b);
    if (!t) return NULL;
    if (!grow((void **)&f->cache, &f->ccap, f->nc + 1, sizeof *f->cache)) {
        ct__errs(CT_ERR_OOM, "pt: out of memory");
        return NULL;
    }
    f->cache[f->nc].key = s->s, f->cache[f->nc].dt = s->dt, f->cache[f->nc].t = t;
    f->nc++;
    if (2 * f->nc > f->nslots) { /* rebuild the index with room to spare */
        int64_t ns = f->nslots ? 2 * f->nslots : 16;
        while (ns < 2 * f->nc) ns *= 2;
        int64_t *sl = calloc((size_t)ns, sizeof *sl);
        if (!sl) { ct__errs(CT_ERR_OOM, "pt: out of memory"); return NULL; }
        free(f->slots);
        f->slots = sl, f->nslots = ns;
        for (int64_t i = 0; i < f->nc; i++) {
            uint64_t j = skey_hash(f->cache[i].key, f->cache[i].dt) & (uint64_t)(ns - 1);
            while (sl[j]) j = (j + 1) & (uint64_t)(ns - 1);
            sl[j] = i + 1;
        }
    } else {
        uint64_t j = h & (uint64_t)(f->nslots - 1);
        while (f->slots[j]) j = (j + 1) & (uint64_t)(f->nslots - 1);
        f->slots[j] = f->nc;
    }
    return t;
}

static int put_tensor(flat *f, const char *key, ct_tensor *t) {
    if (!t) return ct_last_status() ? ct_last_status() : CT_ERR_RUNTIME;
    if (!key[0]) return ffail(f, "a value has an empty name");
    if (ct_dict_contains(f->out, key))
        return ffail(f, "two values have the name '%.100s' (a repeated key or a dotted key meeting a nested one)", key);
    return ct_dict_set(f->out, key, t);
}

static int walk(flat *f, const obj *o, char *key, size_t klen, size_t kcap, int depth);

static int walk_child(flat *f, const obj *o, char *key, size_t klen, size_t kcap, int depth, const char *part, size_t plen) {
    size_t nl = klen + (klen ? 1 : 0) + plen;
    if (nl + 1 > kcap) return ffail(f, "a name is longer than %zu bytes", kcap - 1);
    if (memchr(part, 0, plen)) return ffail(f, "a key contains a NUL byte");
    if (klen) key[klen] = '.';
    memcpy(key + klen + (klen ? 1 : 0), part, plen);
    key[nl] = 0;
    int st = walk(f, o, key, nl, kcap, depth + 1);
    key[klen] = 0;
    return st;
}

static int walk(flat *f, const obj *o, char *key, size_t klen, size_t kcap, int depth) {
    if (depth > 32) return ffail(f, "values nested more than 32 deep");
    if (++f->work > (1 << 20)) return ffail(f, "too many values");
    switch (o->kind) {
    case O_NONE: return 0;
    case O_STR:
        if (!klen) return ffail(f, "the file holds a string, not a dict");
        if (strlen(o->s) != o->slen) return ffail(f, "a string value contains a NUL byte");
        if (++f->nmeta > 4096) return ffail(f, "more than 4096 string values");
        if (ct_dict_meta(f->out, key)) return ffail(f, "two string values have the name '%.100s'", key);
        return ct_dict_set_meta(f->out, key, o->s);
    case O_BOOL: return put_tensor(f, key, ct_scalar_tensor((double)o->i, CT_BOOL));
    case O_INT: {
        ct_tensor *t = ct_from_data(&o->i, 0, NULL, CT_INT64);
        return put_tensor(f, key, t);
    }
    case O_FLOAT: return put_tensor(f, key, ct_from_data(&o->f, 0, NULL, CT_FLOAT64));
    case O_TENSOR: {
        ct_tensor *base = storage_tensor(f, o->st);
        if (!base) return f->err[0] ? CT_ERR_FORMAT : ct_last_status();
        ct_tensor *v = ct_as_strided(base, o->nd, o->geo, o->geo + o->nd, o->off);
        if (v && o->rg && ct_set_requires_grad(v, true)) return ct_last_status();
        return put_tensor(f, key, v);
    }
    case O_DICT:
        for (int64_t i = 0; i < o->n; i++) {
            const obj *k = o->v[2 * i];
            char num[32];
            int st;
            if (k->kind == O_STR) st = walk_child(f, o->v[2 * i + 1], key, klen, kcap, depth, k->s, k->slen);
            else {
                int nl = snprintf(num, sizeof num, "%lld", (long long)k->i);
                st = walk_child(f, o->v[2 * i + 1], key, klen, kcap, depth, num, (size_t)nl);
            }
            if (st) return st;
        }
        return 0;
    case O_LIST:
    case O_TUPLE: {
        bool nums = true, any_float = false, all_bool = o->n > 0;
        for (int64_t i = 0; i < o->n; i++) {
            int k = o->v[i]->kind;
            if (k != O_INT && k != O_FLOAT && k != O_BOOL) nums = false;
            if (k == O_FLOAT) any_float = true;
            if (k != O_BOOL) all_bool = false;
        }
        if (nums && klen) { /* a list of numbers: one 1-D tensor */
            ct_dtype dt = all_bool ? CT_BOOL : any_float ? CT_FLOAT64 : CT_INT64;
            int64_t n = o->n;
            ct_tensor *t = ct_empty(1, &n, dt);
            if (!t) return ct_last_status();
            for (int64_t i = 0; i < n; i++) {
                const obj *x = o->v[i];
                if (dt == CT_BOOL) ((bool *)ct__data(t))[i] = x->i != 0;
                else if (dt == CT_INT64) ((int64_t *)ct__data(t))[i] = x->i;
                else ((double *)ct__data(t))[i] = x->kind == O_FLOAT ? x->f : (double)x->i;
            }
            return put_tensor(f, key, t);
        }
        for (int64_t i = 0; i < o->n; i++) {
            char num[32];
            int nl = snprintf(num, sizeof num, "%lld", (long long)i);
            int st = walk_child(f, o->v[i], key, klen, kcap, depth, num, (size_t)nl);
            if (st) return st;
        }
        return 0;
    }
    default: return ffail(f, "a %s cannot be stored in a state dict", KIND[o->kind]);
    }
}

ct_dict *ct__pt_unpickle(const unsigned char *pkl, size_t n, const ct__zip *z, const char *prefix, bool big_endian,
                         const char *what) {
    up u = {.p = pkl, .start = pkl, .end = pkl + n};
    u.memo_limit = (int64_t)n + 256; /* picklers number memo entries consecutively */
    obj *root = run(&u);
    ct_dict *d = NULL;
    if (root && root->kind != O_DICT) fail(&u, "the file holds a %s, not a dict (state dict)", KIND[root->kind]);
    if (!u.err[0] && root) {
        flat f = {.z = z, .prefix = prefix, .what = what, .big = big_endian, .out = ct_dict_new()};
        char *key = malloc(4096);
        int st = f.out && key ? 0 : ct__errs(CT_ERR_OOM, "pt: out of memory");
        if (!st) {
            key[0] = 0;
            ct_scope_begin();
            st = walk(&f, root, key, 0, 4096, 0);
            ct_scope_end();
        }
        free(key);
        free(f.cache);
        free(f.slots);
        if (st) {
            if (f.err[0]) ct__err(CT_ERR_FORMAT, "pt: %s: %s", what, f.err);
            ct_dict_free(f.out);
        } else d = f.out;
    }
    if (u.err[0]) ct__err(u.oom ? CT_ERR_OOM : CT_ERR_FORMAT, "pt: %s: data.pkl: %s", what, u.err);
    for (int64_t i = 0; i < u.nall; i++) {
        obj *o = u.all[i];
        if (o->kind != O_STORAGE) free(o->s);
        free(o->v);
        free(o->geo);
        free(o);
    }
    free(u.all);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    return d;
}
