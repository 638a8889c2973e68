/* Random number generation: generators (PyTorch's CPU generator: mt19937 plus a cached
 * Box-Muller normal) and the front ends of the sampling ops.
 *
 * Design: the generator is CPU state. A front end checks its arguments, allocates the
 * output, decides the order in which elements are drawn (PyTorch's TensorIterator
 * order: dims sorted by stride, innermost first), takes the generator's lock and
 * dispatches CT_OP_UNIFORM / NORMAL / BERNOULLI / RANDINT. The CPU kernels
 * (src/cpu/random.c) draw from the generator through the ct__gen_* functions below.
 * randperm has no kernel slot: its swap loop is inherently serial and runs here, on a
 * freshly allocated CPU tensor.
 *
 * Kernel arguments (all four ops):
 *   out[0]   the tensor to fill (real dtype, any strides, no two elements aliased)
 *   iv/n_iv  out[0]'s dims from fastest- to slowest-varying: the draw order
 *   i[5]     the generator (ct_generator *, as intptr_t), locked by the caller
 * UNIFORM    d[0] from, d[1] to (floating out)
 * NORMAL     d[0] mean, d[1] std (floating out)
 * BERNOULLI  n_in 0: d[0] = p; n_in 1: in[0] = p tensor (floating, out's sizes)
 * RANDINT    i[0] 0: from + draw % range with i[1] = from, i[2] = range (uint64 bits);
 *            i[0] 1: random_()'s default range for out's dtype */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#include "core/autograd_internal.h"
#include "core/random_internal.h"
#include "core/dispatch.h"
#include "ctorch/random.h"

#define MT_N 624
#define MT_M 397

struct ct_generator {
    pthread_mutex_t lock;
    uint64_t seed;
    int left;      /* draws before the state is regenerated, + 1 */
    uint32_t next; /* index of the next state word */
    uint32_t state[MT_N];
    bool has_normal;  /* cached double normal (the second of a Box-Muller pair) */
    double normal;
    bool has_normal_f; /* float cache: kept for state round trips (torch has one too) */
    float normal_f;
    bool is_default;
};

/* ---- the engine ---- */
static void mt_seed(ct_generator *g, uint64_t seed) {
    g->seed = seed;
    g->state[0] = (uint32_t)seed;
    for (uint32_t j = 1; j < MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + j;
    g->left = 1;
    g->next = 0;
    g->has_normal = g->has_normal_f = false;
    g->normal = 0;
    g->normal_f = 0;
}

static inline uint32_t mt_twist(uint32_t u, uint32_t v) {
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void mt_regenerate(ct_generator *g) {
    uint32_t *s = g->state;
    int j = 0;
    for (; j < MT_N - MT_M; j++) s[j] = s[j + MT_M] ^ mt_twist(s[j], s[j + 1]);
    for (; j < MT_N - 1; j++) s[j] = s[j + MT_M - MT_N] ^ mt_twist(s[j], s[j + 1]);
    s[MT_N - 1] = s[MT_M - 1] ^ mt_twist(s[MT_N - 1], s[0]);
    g->left = MT_N;
    g->next = 0;
}

/* Generator interface for the kernels (the caller holds g's lock). */


/* ct__gen_random's tempering of m state words: a loop the compiler vectorises */
static void mt_temper(const uint32_t *s, uint32_t *out, int64_t m) {
    for (int64_t k = 0; k < m; k++) {
        uint32_t y = s[k];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        out[k] = y ^ (y >> 18);
    }
}

uint32_t ct__gen_random(ct_generator *g) {
    if (--g->left == 0) mt_regenerate(g);
    uint32_t y;
    mt_temper(&g->state[g->next++], &y, 1);
    return y;
}

void ct__gen_fill(ct_generator *g, uint32_t *out, int64_t n) {
    while (n > 0) {
        int64_t m;
        if (g->left == 1) { /* as ct__gen_random: regenerate, and the first draw leaves left at MT_N */
            mt_regenerate(g);
            m = n < MT_N ? n : MT_N;
            mt_temper(g->state, out, m);
            g->left = MT_N - (int)(m - 1);
            g->next = (uint32_t)m;
        } else {
            m = n < g->left - 1 ? n : g->left - 1;
            mt_temper(g->state + g->next, out, m);
            g->left -= (int)m;
            g->next += (uint32_t)m;
        }
        out += m;
        n -= m;
    }
}

uint64_t ct__gen_random64(ct_generator *g) {
    uint64_t hi = ct__gen_random(g);
    uint64_t lo = ct__gen_random(g);
    return (hi << 32) | lo;
}

bool ct__gen_take_normal(ct_generator *g, double *v) {
    if (!g->has_normal) return false;
    *v = g->normal;
    g->has_normal = false;
    return true;
}

void ct__gen_put_normal(ct_generator *g, double v) {
    g->normal = v;
    g->has_normal = true;
}

/* ---- generators ---- */
static uint64_t nondeterministic_seed(void) {
    uint64_t s = 0;
#if defined(__linux__)
    if (getrandom(&s, sizeof s, 0) == (ssize_t)sizeof s) return s;
#endif
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        size_t got = fread(&s, sizeof s, 1, f);
        fclose(f);
        if (got == 1) return s;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&s;
}

static ct_generator default_gen = {.lock = PTHREAD_MUTEX_INITIALIZER, .is_default = true};
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void) { mt_seed(&default_gen, nondeterministic_seed()); }

CT_API ct_generator *ct_default_generator(void) {
    pthread_once(&default_once, default_init);
    return &default_gen;
}

static ct_generator *resolve(ct_generator *g) { return g ? g : ct_default_generator(); }

CT_API ct_generator *ct_generator_new(uint64_t seed) {
    ct_generator *g = calloc(1, sizeof *g);
    if (!g) return ct__err(CT_ERR_OOM, "generator_new: out of memory");
    if (pthread_mutex_init(&g->lock, NULL)) {
        free(g);
        return ct__err(CT_ERR_RUNTIME, "generator_new: cannot create a mutex");
    }
    mt_seed(g, seed);
    return g;
}

CT_API void ct_generator_free(ct_generator *g) {
    if (!g || g->is_default) return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

CT_API ct_generator *ct_generator_clone(ct_generator *g) {
    g = resolve(g);
    ct_generator *c = ct_generator_new(0);
    if (!c) return NULL;
    pthread_mutex_lock(&g->lock);
    c->seed = g->seed;
    c->left = g->left;
    c->next = g->next;
    memcpy(c->state, g->state, sizeof c->state);
    c->has_normal = g->has_normal;
    c->normal = g->normal;
    c->has_normal_f = g->has_normal_f;
    c->normal_f = g->normal_f;
    pthread_mutex_unlock(&g->lock);
    return c;
}

CT_API int ct_generator_manual_seed(ct_generator *g, uint64_t seed) {
    if (!g) return ct__errs(CT_ERR_ARG, "generator_manual_seed: generator is NULL");
    if (g->is_default) pthread_once(&default_once, default_init);
    pthread_mutex_lock(&g->lock);
    mt_seed(g, seed);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

CT_API uint64_t ct_generator_seed(ct_generator *g) {
    g = resolve(g);
    uint64_t s = nondeterministic_seed();
    pthread_mutex_lock(&g->lock);
    mt_seed(g, s);
    pthread_mutex_unlock(&g->lock);
    return s;
}

CT_API uint64_t ct_generator_initial_seed(ct_generator *g) {
    g = resolve(g);
    pthread_mutex_lock(&g->lock);
    uint64_t s = g->seed;
    pthread_mutex_unlock(&g->lock);
    return s;
}

CT_API void ct_manual_seed(uint64_t seed) { ct_generator_manual_seed(ct_default_generator(), seed); }
CT_API uint64_t ct_seed(void) { return ct_generator_seed(NULL); }
CT_API uint64_t ct_initial_seed(void) { return ct_generator_initial_seed(NULL); }

/* The state blob is torch's CPUGeneratorImplState, byte for byte (native endianness):
 *   0 u64 initial seed | 8 i32 left | 12 i32 seeded | 16 u64 next | 24 u64 state[624]
 *   5016 f64 normal_x (unused, 0) | 5024 f64 normal_y: cached double normal
 *   5032 f64 normal_rho (unused, 0) | 5040 i32 normal_y valid | 5044 pad
 *   5048 f32 cached float normal | 5052 u8 float normal valid | 5053 pad to 5056 */
enum {
    ST_SEED = 0, ST_LEFT = 8, ST_SEEDED = 12, ST_NEXT = 16, ST_STATE = 24, ST_NORMAL_Y = 5024,
    ST_NORMAL_VALID = 5040, ST_FLOAT_NORMAL = 5048, ST_FLOAT_VALID = 5052
};
_Static_assert(ST_STATE + 8 * MT_N == 5016, "state layout");

CT_API int64_t ct_generator_get_state(ct_generator *g, void *buf, size_t n) {
    if (!buf) return CT_GENERATOR_STATE_SIZE;
    if (n < CT_GENERATOR_STATE_SIZE)
        return ct__errs(CT_ERR_ARG, "generator_get_state: buffer of %zu bytes is smaller than the %d-byte state", n,
                        CT_GENERATOR_STATE_SIZE);
    g = resolve(g);
    unsigned char *b = buf;
    memset(b, 0, CT_GENERATOR_STATE_SIZE);
    pthread_mutex_lock(&g->lock);
    int32_t left = g->left, seeded = 1, valid = g->has_normal;
    uint64_t next = g->next;
    double ny = g->has_normal ? g->normal : 0.0;
    float nf = g->has_normal_f ? g->normal_f : 0.0f;
    memcpy(b + ST_SEED, &g->seed, 8);
    memcpy(b + ST_LEFT, &left, 4);
    memcpy(b + ST_SEEDED, &seeded, 4);
    memcpy(b + ST_NEXT, &next, 8);
    for (int j = 0; j < MT_N; j++) {
        uint64_t w = g->state[j];
        memcpy(b + ST_STATE + 8 * j, &w, 8);
    }
    memcpy(b + ST_NORMAL_Y, &ny, 8);
    memcpy(b + ST_NORMAL_VALID, &valid, 4);
    memcpy(b + ST_FLOAT_NORMAL, &nf, 4);
    b[ST_FLOAT_VALID] = g->has_normal_f;
    pthread_mutex_unlock(&g->lock);
    return CT_GENERATOR_STATE_SIZE;
}

CT_API int ct_generator_set_state(ct_generator *g, const void *buf, size_t n) {
    if (!buf) return ct__errs(CT_ERR_ARG, "generator_set_state: state buffer is NULL");
    if (n != CT_GENERATOR_STATE_SIZE)
        return ct__errs(CT_ERR_ARG,
                        "generator_set_state: Expected a CPUGeneratorImplState of size %d but found the input RNG "
                        "state size to be %zu",
                        CT_GENERATOR_STATE_SIZE, n);
    const unsigned char *b = buf;
    int32_t left, seeded, valid;
    uint64_t seed, next;
    memcpy(&seed, b + ST_SEED, 8);
    memcpy(&left, b + ST_LEFT, 4);
    memcpy(&seeded, b + ST_SEEDED, 4);
    memcpy(&next, b + ST_NEXT, 8);
    memcpy(&valid, b + ST_NORMAL_VALID, 4);
    /* torch's checks, plus left + next <= 625 so that no draw reads past the state
     * (every state torch or ctorch writes satisfies it) */
    if (!seeded || left < 1 || left > MT_N || next > MT_N || (uint64_t)left + next > MT_N + 1)
        return ct__errs(CT_ERR_ARG, "generator_set_state: Invalid mt19937 state");
    g = resolve(g);
    pthread_mutex_lock(&g->lock);
    g->seed = seed;
    g->left = left;
    g->next = (uint32_t)next;
    for (int j = 0; j < MT_N; j++) {
        uint64_t w;
        memcpy(&w, b + ST_STATE + 8 * j, 8);
        g->state[j] = (uint32_t)w;
    }
    g->has_normal = valid != 0;
    memcpy(&g->normal, b + ST_NORMAL_Y, 8);
    g->has_normal_f = b[ST_FLOAT_VALID] != 0;
    memcpy(&g->normal_f, b + ST_FLOAT_NORMAL, 4);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* ---- helpers for the front ends ---- */
static ct_dtype complex_to_real(ct_dtype dt) { return dt == CT_COMPLEX64 ? CT_FLOAT32 : CT_FLOAT64; }

/* A real view of complex t (torch.view_as_real): trailing dim of 2. Unregistered. */
static ct_tensor *real_alias(const ct_tensor *t) {
    int64_t sizes[CT_MAX_DIMS + 1], strides[CT_MAX_DIMS + 1];
    for (int i = 0; i < t->ndim; i++) {
        sizes[i] = t->sizes[i];
        strides[i] = t->strides[i] * 2;
    }
    sizes[t->ndim] = 2;
    strides[t->ndim] = 1;
    return ct__tensor_new(t->storage, complex_to_real(t->dtype), t->ndim + 1, sizes, strides, t->offset * 2);
}

static ct_dtype floating_default(ct_dtype dt) { return dt == CT_NUM_DTYPES ? ct_get_default_dtype() : dt; }

static bool is_float(ct_dtype dt) {
    return dt == CT_FLOAT16 || dt == CT_BFLOAT16 || dt == CT_FLOAT32 || dt == CT_FLOAT64;
}

static int not_implemented(const char *op, ct_dtype dt) {
    return ct__errs(CT_ERR_DTYPE, "%s: not implemented for dtype %s", op, ct_dtype_name(dt));
}

/* Runs a sampling kernel on t (real dtype, non-empty): checks for aliased elements,
 * fixes the draw order and holds the generator's lock around the dispatch. */
static int run_kernel(const char *op, ct_tensor *t, ct_kernel_args *a, ct_generator *gen) {
    for (int i = 0; i < t->ndim; i++)
        if (t->sizes[i] > 1 && t->strides[i] == 0)
            return ct__errs(CT_ERR_ARG,
                            "%s: unsupported operation: more than one element of the written-to tensor refers to a "
                            "single memory location. Please clone() the tensor before performing the operation.",
                            op);
    int64_t perm[CT_MAX_DIMS + 1];
    ct__dim_order(t->ndim, t->sizes, t->strides, perm);
    gen = resolve(gen);
    a->n_out = 1;
    a->out[0] = t;
    a->iv = perm;
    a->n_iv = t->ndim;
    a->i[5] = (int64_t)(intptr_t)gen;
    pthread_mutex_lock(&gen->lock);
    int rc = ct__dispatch(a);
    pthread_mutex_unlock(&gen->lock);
    return rc;
}

/* As run_kernel for t of any dtype: complex t is filled through its real view. */
static int run_kernel_any(const char *op, ct_tensor *t, ct_kernel_args *a, ct_generator *gen) {
    if (!ct_dtype_is_complex(t->dtype)) return run_kernel(op, t, a, gen);
    ct_tensor *r = real_alias(t);
    if (!r) return ct_last_status();
    int rc = run_kernel(op, r, a, gen);
    ct_release(r);
    return rc;
}



/* ---- uniform ---- */
static double dtype_max(ct_dtype dt) {
    switch (dt) {
    case CT_FLOAT16: return 65504.0;
    case CT_BFLOAT16: return 3.3895313892515355e38;
    case CT_FLOAT32: return 3.4028234663852886e38;
    default: return 1.7976931348623157e308;
    }
}

static int uniform_impl(const char *op, ct_tensor *t, double from, double to, ct_generator *gen) {
    ct_dtype rdt = ct_dtype_is_complex(t->dtype) ? complex_to_real(t->dtype) : t->dtype;
    if (!is_float(rdt)) return not_implemented(op, t->dtype);
    double max = dtype_max(rdt);
    if (!(from >= -max && from <= max))
        return ct__errs(CT_ERR_ARG, "%s: from is out of bounds for %s", op, ct_dtype_name(rdt));
    if (!(to >= -max && to <= max))
        return ct__errs(CT_ERR_ARG, "%s: to is out of bounds for %s", op, ct_dtype_name(rdt));
    if (from > to)
        return ct__errs(CT_ERR_ARG, "%s: uniform_ expects to return a [from, to) range, but found from=%g > to=%g", op,
                        from, to);
    if (to - from > max)
        return ct__errs(CT_ERR_ARG,
                        "%s: uniform_ expects to-from <= the largest %s, but found to=%g and from=%g which result in "
                        "to-from to exceed the limit",
                        op, ct_dtype_name(rdt), to, from);
    if (t->numel == 0) return 0;
    ct_kernel_args a = {.op = CT_OP_UNIFORM, .d = {from, to}};
    return run_kernel_any(op, t, &a, gen);
}

CT_API int ct_uniform_(ct_tensor *t, double from, double to, ct_generator *gen) {
    CT_CHECK_ARG_S("uniform_", t);
    int rc = ct__check_inplace("uniform_", t);
    if (rc || (rc = uniform_impl("uniform_", t, from, to, gen))) return rc;
    return ct__inplace_constant(t, "UniformBackward0");
}

/* ---- normal ---- */
static int normal_impl(const char *op, ct_tensor *t, double mean, double std, ct_generator *gen) {
    if (!(std >= 0.0)) return ct__errs(CT_ERR_ARG, "%s: normal expects std >= 0.0, but found std %g", op, std);
    if (!is_float(t->dtype) && !ct_dtype_is_complex(t->dtype)) return not_implemented(op, t->dtype);
    if (t->numel == 0) return 0;
    /* complex: each part gets half the variance */
    if (ct_dtype_is_complex(t->dtype)) std = std / sqrt(2.0);
    ct_kernel_args a = {.op = CT_OP_NORMAL, .d = {mean, std}};
    return run_kernel_any(op, t, &a, gen);
}

CT_API int ct_normal_(ct_tensor *t, double mean, double std, ct_generator *gen) {
    CT_CHECK_ARG_S("normal_", t);
    int rc = ct__check_inplace("normal_", t);
    if (rc || (rc = normal_impl("normal_", t, mean, std, gen))) return rc;
    return ct__inplace_constant(t, "NormalBackward0");
}

/* ---- bernoulli ---- */
static int bernoulli_scalar_impl(const char *op, ct_tensor *t, double p, ct_generator *gen) {
    if (!(p >= 0 && p <= 1)) return ct__errs(CT_ERR_ARG, "%s: bernoulli_ expects p to be in [0, 1], but got p=%g", op, p);
    if (ct_dtype_is_complex(t->dtype)) return not_implemented(op, t->dtype);
    if (t->numel == 0) return 0;
    ct_kernel_args a = {.op = CT_OP_BERNOULLI, .d = {p}};
    return run_kernel(op, t, &a, gen);
}

CT_API int ct_bernoulli_(ct_tensor *t, double p, ct_generator *gen) {
    CT_CHECK_ARG_S("bernoulli_", t);
    int rc = ct__check_inplace("bernoulli_", t);
    if (rc || (rc = bernoulli_scalar_impl("bernoulli_", t, p, gen))) return rc;
    return ct__inplace_constant(t, "BernoulliBackward2");
}

static int bernoulli_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (!ct__node_needs(n, 0)) return 0;
    gi[0] = ct_zeros_like(go[0]);
    return gi[0] ? 0 : ct_last_status();
}

CT_API ct_tensor *ct_bernoulli(const ct_tensor *p, ct_generator *gen) {
    CT_CHECK_ARG("bernoulli", p);
    if (!is_float(p->dtype))
        return ct__err(CT_ERR_DTYPE, "bernoulli: p must be a floating tensor, got %s", ct_dtype_name(p->dtype));
    ct_tensor *pc = ct__to_cpu_raw(p);
    if (!pc) return NULL;
    /* every p must be a probability (checked before drawing: a bad p uses no draws) */
    {
        int64_t n = pc->numel, idx[CT_MAX_DIMS] = {0};
        const char *base = ct__data(pc);
        size_t es = ct_dtype_size(pc->dtype);
        for (int64_t k = 0; k < n; k++) {
            int64_t off = 0;
            for (int d = 0; d < pc->ndim; d++) off += idx[d] * pc->strides[d];
            double v = ct__load_f64(base + off * (int64_t)es, pc->dtype);
            if (!(v >= 0 && v <= 1)) {
                ct_release(pc);
                return ct__err(CT_ERR_ARG, "bernoulli: every probability must be in [0, 1], but found %g", v);
            }
            for (int d = pc->ndim - 1; d >= 0; d--) {
                if (++idx[d] < pc->sizes[d]) break;
                idx[d] = 0;
            }
        }
    }
    ct_release(pc);
    ct_tensor *out = ct__empty_raw(p->ndim, p->sizes, p->dtype);
    if (!out) return NULL;
    if (out->numel) {
        ct_kernel_args a = {.op = CT_OP_BERNOULLI, .n_in = 1, .in = {p}};
        int rc = run_kernel("bernoulli", out, &a, gen);
        if (rc) { ct_release(out); return NULL; }
    }
    if (ct__needs_grad(1, (const ct_tensor *[]){p})) {
        /* as torch: the samples carry a zero gradient back to p */
        ct_node *n = ct__node_new("BernoulliBackward0", bernoulli_backward, 1);
        if (!n || ct__node_set_next(n, 0, p)) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        ct__set_history(out, n, 0);
    }
    return ct__ret(out);
}

/* ---- random_ / randint ---- */
static int float_digits(ct_dtype dt) {
    switch (dt) {
    case CT_FLOAT16: return 11;
    case CT_BFLOAT16: return 8;
    case CT_FLOAT32: return 24;
    default: return 53;
    }
}

/* An integer value rounded to dtype dt (through float for the 16-bit types, as C++'s
 * static_cast<Half>(int64) does). false if it does not fit an int64. */
static bool round_to_float_dtype(int64_t v, ct_dtype dt, int64_t *out) {
    double r;
    switch (dt) {
    case CT_FLOAT16: r = ct_half_to_float(ct_float_to_half((float)v)); break;
    case CT_BFLOAT16: r = ct_bf16_to_float(ct_float_to_bf16((float)v)); break;
    case CT_FLOAT32: r = (float)v; break;
    default: r = (double)v; break;
    }
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) return false;
    *out = (int64_t)r;
    return true;
}

static int log2_floor(uint64_t v) {
    int n = 0;
    while (v >>= 1) n++;
    return n;
}

/* torch's update_from / update_to: move a bound inwards to the nearest value that
 * stays inside [from, to) after rounding to the floating dtype. */
static int64_t update_from(int64_t from, ct_dtype dt) {
    int64_t fp1;
    if (from == INT64_MAX || !round_to_float_dtype(from + 1, dt, &fp1)) return from;
    if (fp1 < from) {
        int n = log2_floor((uint64_t)llabs(from + 1));
        from = fp1 + ((int64_t)1 << (n - float_digits(dt) + 1));
    }
    return from;
}

static int64_t update_to(int64_t to, ct_dtype dt) {
    int64_t tm1;
    if (to == INT64_MIN || !round_to_float_dtype(to - 1, dt, &tm1)) return to;
    if (tm1 >= to) {
        int n = log2_floor((uint64_t)llabs(to - 1));
        to = tm1 - ((int64_t)1 << (n - float_digits(dt) + 1));
    }
    return to;
}

static void int_bounds(ct_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case CT_BOOL: *lo = 0; *hi = 1; break;
    case CT_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case CT_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case CT_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case CT_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

static int check_in_range(const char *op, int64_t v, const char *name, ct_dtype dt) {
    bool ok;
    if (is_float(dt)) {
        double max = dtype_max(dt);
        ok = (double)v >= -max && (double)v <= max;
    } else {
        int64_t lo, hi;
        int_bounds(dt, &lo, &hi);
        ok = v >= lo && v <= hi;
    }
    return ok ? 0 : ct__errs(CT_ERR_ARG, "%s: %s is out of bounds for %s", op, name, ct_dtype_name(dt));
}

static int random_range_impl(const char *op, ct_tensor *t, int64_t from, int64_t to, ct_generator *gen) {
    if (ct_dtype_is_complex(t->dtype)) return not_implemented(op, t->dtype);
    if (from >= to)
        return ct__errs(CT_ERR_ARG, "%s: random_ expects 'from' to be less than 'to', but got from=%lld >= to=%lld", op,
                        (long long)from, (long long)to);
    if (is_float(t->dtype)) {
        from = update_from(from, t->dtype);
        to = update_to(to, t->dtype);
        if (from >= to)
            return ct__errs(CT_ERR_ARG,
                            "%s: random_ expects 'from' casted to dtype to be less than 'to' casted to dtype, but got "
                            "from=%lld >= to=%lld",
                            op, (long long)from, (long long)to);
    }
    int rc = check_in_range(op, from, "from", t->dtype);
    if (rc || (rc = check_in_range(op, to - 1, "to - 1", t->dtype))) return rc;
    if (t->numel == 0) return 0;
    ct_kernel_args a = {.op = CT_OP_RANDINT, .i = {0, from, (int64_t)((uint64_t)to - (uint64_t)from)}};
    return run_kernel(op, t, &a, gen);
}

CT_API int ct_random_range_(ct_tensor *t, int64_t from, int64_t to, ct_generator *gen) {
    CT_CHECK_ARG_S("random_", t);
    int rc = ct__check_inplace("random_", t);
    if (rc || (rc = random_range_impl("random_", t, from, to, gen))) return rc;
    return ct__inplace_constant(t, "RandomBackward0");
}

CT_API int ct_random_(ct_tensor *t, ct_generator *gen) {
    CT_CHECK_ARG_S("random_", t);
    int rc = ct__check_inplace("random_", t);
    if (rc) return rc;
    if (ct_dtype_is_complex(t->dtype)) return not_implemented("random_", t->dtype);
    if (t->numel) {
        ct_kernel_args a = {.op = CT_OP_RANDINT, .i = {1}};
        if ((rc = run_kernel("random_", t, &a, gen))) return rc;
    }
    return ct__inplace_constant(t, "RandomBackward2");
}

/* ---- factories ---- */
typedef int (*fill_fn)(const char *op, ct_tensor *t, const double *d, const int64_t *i, ct_generator *gen);

static int fill_uniform(const char *op, ct_tensor *t, const double *d, const int64_t *i, ct_generator *gen) {
    CT_UNUSED(i);
    return uniform_impl(op, t, d[0], d[1], gen);
}
static int fill_normal(const char *op, ct_tensor *t, const double *d, const int64_t *i, ct_generator *gen) {
    CT_UNUSED(i);
    return normal_impl(op, t, d[0], d[1], gen);
}
static int fill_randint(const char *op, ct_tensor *t, const double *d, const int64_t *i, ct_generator *gen) {
    CT_UNUSED(d);
    return random_range_impl(op, t, i[0], i[1], gen);
}

/* A new tensor (contiguous, or dense in like's dim order) filled by fill. */
static ct_tensor *make(const char *op, int ndim, const int64_t *sizes, ct_dtype dt, const ct_tensor *like,
                       fill_fn fill, const double *d, const int64_t *i, ct_generator *gen) {
    if ((unsigned)dt >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "%s: invalid dtype %d", op, (int)dt);
    ct_tensor *t;
    if (like) t = ct__empty_like_raw(like, dt);
    else t = ct__empty_raw(ndim, sizes, dt);
    if (!t) return NULL;
    if (fill(op, t, d, i, gen)) {
        ct_release(t);
        return NULL;
    }
    return ct__ret(t);
}

CT_API ct_tensor *ct_rand(int ndim, const int64_t *sizes, ct_dtype dtype, ct_generator *gen) {
    return make("rand", ndim, sizes, floating_default(dtype), NULL, fill_uniform, (const double[]){0, 1}, NULL, gen);
}

CT_API ct_tensor *ct_randn(int ndim, const int64_t *sizes, ct_dtype dtype, ct_generator *gen) {
    return make("randn", ndim, sizes, floating_default(dtype), NULL, fill_normal, (const double[]){0, 1}, NULL, gen);
}

CT_API ct_tensor *ct_normal(double mean, double std, int ndim, const int64_t *sizes, ct_dtype dtype,
                            ct_generator *gen) {
    return make("normal", ndim, sizes, floating_default(dtype), NULL, fill_normal, (const double[]){mean, std}, NULL,
                gen);
}

CT_API ct_tensor *ct_randint(int64_t low, int64_t high, int ndim, const int64_t *sizes, ct_dtype dtype,
                             ct_generator *gen) {
    return make("randint", ndim, sizes, dtype == CT_NUM_DTYPES ? CT_INT64 : dtype, NULL, fill_randint, NULL,
                (const int64_t[]){low, high}, gen);
}

CT_API ct_tensor *ct_rand_like(const ct_tensor *t, ct_generator *gen) {
    CT_CHECK_ARG("rand_like", t);
    return make("rand_like", t->ndim, t->sizes, t->dtype, t, fill_uniform, (const double[]){0, 1}, NULL, gen);
}

CT_API ct_tensor *ct_randn_like(const ct_tensor *t, ct_generator *gen) {
    CT_CHECK_ARG("randn_like", t);
    return make("randn_like", t->ndim, t->sizes, t->dtype, t, fill_normal, (const double[]){0, 1}, NULL, gen);
}

CT_API ct_tensor *ct_randint_like(const ct_tensor *t, int64_t low, int64_t high, ct_generator *gen) {
    CT_CHECK_ARG("randint_like", t);
    return make("randint_like", t->ndim, t->sizes, t->dtype, t, fill_randint, NULL, (const int64_t[]){low, high}, gen);
}

/* ---- randperm ---- */

static void swap_elems(char *data, size_t es, int64_t a, int64_t b) {
    char tmp[8];
    memcpy(tmp, data + a * (int64_t)es, es);
    memcpy(data + a * (int64_t)es, data + b * (int64_t)es, es);
    memcpy(data + b * (int64_t)es, tmp, es);
}

CT_API ct_tensor *ct_randperm(int64_t n, ct_dtype dtype, ct_generator *gen) {
    if (dtype == CT_NUM_DTYPES) dtype = CT_INT64;
    if ((unsigned)dtype >= CT_NUM_DTYPES) return ct__err(CT_ERR_DTYPE, "randperm: invalid dtype %d", (int)dtype);
    if (n < 0) return ct__err(CT_ERR_ARG, "randperm: n must be non-negative, got %lld", (long long)n);
    if (dtype == CT_BOOL || ct_dtype_is_complex(dtype))
        return ct__err(CT_ERR_DTYPE, "randperm: not implemented for dtype %s", ct_dtype_name(dtype));
    if (!is_float(dtype)) {
        int64_t lo, hi;
        int_bounds(dtype, &lo, &hi);
        if (n - 1 > hi)
            return ct__err(CT_ERR_ARG, "randperm: n is too large for result tensor type %s: value cannot be converted "
                           "without overflow", ct_dtype_name(dtype));
    }
    if ((dtype == CT_FLOAT16 && n > 2049) || (dtype == CT_FLOAT32 && n > (1LL << 24) + 1) ||
        (dtype == CT_FLOAT64 && n > (1LL << 53) + 1))
        return ct__err(CT_ERR_ARG, "randperm: n cannot be greater than %s for %s type",
                       dtype == CT_FLOAT16 ? "2049" : dtype == CT_FLOAT32 ? "2^24+1" : "2^53+1", ct_dtype_name(dtype));
    ct_tensor *t = ct__empty_raw(1, &n, dtype);
    if (!t) return NULL;
    if (t->storage->device.type != CT_DEVICE_CPU) {
        ct_release(t);
        return ct__err(CT_ERR_DEVICE, "randperm: needs a CPU tensor");
    }
    char *data = ct__data(t);
    size_t es = ct_dtype_size(dtype);
    ct_generator *g = resolve(gen);
    pthread_mutex_lock(&g->lock);
    if (n < (int64_t)(UINT32_MAX / 20)) {
        for (int64_t i = 0; i < n; i++) ct__store_i64(data + i * (int64_t)es, dtype, i);
        for (int64_t i = 0; i < n - 1; i++) {
            int64_t z = (int64_t)(ct__gen_random(g) % (uint64_t)(n - i));
            swap_elems(data, es, i, z + i);
        }
    } else {
        /* inside-out Fisher-Yates with 64-bit draws (torch's path for huge n) */
        for (int64_t i = 0; i < n; i++) {
            int64_t z = (int64_t)(ct__gen_random64(g) % (uint64_t)(i + 1));
            memcpy(data + i * (int64_t)es, data + z * (int64_t)es, es);
            ct__store_i64(data + z * (int64_t)es, dtype, i);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return ct__ret(t);
}
