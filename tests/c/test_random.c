/* Random sampling against values produced by PyTorch on the CPU (the torch expression
 * that made each one is in the comment beside it; floats are exact, as hex literals),
 * generator state save/restore, the cached Box-Muller normal, draw order on
 * non-contiguous tensors, errors, autograd interplay, the default generator under
 * concurrent use, and no leaked tensors. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>
#include <ctorch/autograd.h>
#include <ctorch/random.h>

#include "check.h"

/* Every element of t (any layout, read in C order as float64) equals want[] exactly. */
static bool equals(const ct_tensor *t, int64_t n, const double *want) {
    if (!t || ct_numel(t) != n) return false;
    double buf[64];
    if (n > 64 || ct_copy_to_buffer(t, buf, sizeof buf, CT_FLOAT64)) return false;
    for (int64_t i = 0; i < n; i++)
        if (buf[i] != want[i] || signbit(buf[i]) != signbit(want[i])) {
            fprintf(stderr, "  element %lld: got %a, want %a\n", (long long)i, buf[i], want[i]);
            return false;
        }
    return true;
}
#define EQUALS(t, ...) equals((t), sizeof((const double[]){__VA_ARGS__}) / sizeof(double), (const double[]){__VA_ARGS__})

static void test_factories(void) {
    ct_scope_begin();
    ct_manual_seed(42);
    CHECK(ct_initial_seed() == 42);
    /* torch.manual_seed(42); torch.rand(5) */
    ct_tensor *r = ct_rand(CT_SHAPE(5), CT_FLOAT32, NULL);
    CHECK(r && ct_get_dtype(r) == CT_FLOAT32);
    CHECK(EQUALS(r, 0x1.c3b8ccp-1f, 0x1.d47b66p-1f, 0x1.880d70p-2f, 0x1.eb2a1cp-1f, 0x1.8fd1a8p-2f));
    /* then torch.randn(3): element by element (Box-Muller in double, one normal cached) */
    CHECK(EQUALS(ct_randn(CT_SHAPE(3), CT_FLOAT32, NULL), 0x1.4d91e6p-2f, -0x1.bc39c2p-1f, 0x1.85ec1ap+0f));
    /* then torch.randn(20): the batched path (16 at a time, the tail block redrawn) */
    ct_tensor *n20 = ct_randn(CT_SHAPE(20), CT_FLOAT32, NULL);
    double first3[3], last3[3];
    ct_tensor *h = ct_slice(n20, 0, 0, 3, 1), *t = ct_slice(n20, 0, 17, 20, 1);
    CHECK(ct_copy_to_buffer(h, first3, sizeof first3, CT_FLOAT64) == 0);
    CHECK(ct_copy_to_buffer(t, last3, sizeof last3, CT_FLOAT64) == 0);
    CHECK(first3[0] == -0x1.354d90p+0f && first3[1] == -0x1.e921a8p-2f && first3[2] == 0x1.0a4ea2p-1f);
    CHECK(last3[0] == -0x1.3c123ap+0f && last3[1] == -0x1.f39fb2p-2f && last3[2] == -0x1.6b05fap+0f);
    /* then torch.randn(1): the normal cached by randn(3) (the batched path leaves it) */
    CHECK(EQUALS(ct_randn(CT_SHAPE(1), CT_NUM_DTYPES, NULL), 0x1.544ef4p-1f));

    /* torch.manual_seed(0); torch.rand(3, dtype=torch.float64) (53-bit uniforms) */
    ct_manual_seed(0);
    CHECK(EQUALS(ct_rand(CT_SHAPE(3), CT_FLOAT64, NULL), 0x1.f0aac97c4aa2fp-1, 0x1.6a675d821ccc0p-1,
                 0x1.d6687b744a5f6p-2));
    /* then torch.randn(17, dtype=torch.float64)[-3:] */
    ct_tensor *n17 = ct_randn(CT_SHAPE(17), CT_FLOAT64, NULL);
    CHECK(EQUALS(ct_slice(n17, 0, 14, 17, 1), 0x1.0bff5e8d733a2p+0, 0x1.3bff1c51bd9a4p-3, -0x1.7ff1c81c48b11p-1));

    /* torch.manual_seed(1); torch.randint(0, 10, (8,)) */
    ct_manual_seed(1);
    ct_tensor *ri = ct_randint(0, 10, CT_SHAPE(8), CT_NUM_DTYPES, NULL);
    CHECK(ri && ct_get_dtype(ri) == CT_INT64);
    CHECK(EQUALS(ri, 5, 9, 4, 8, 3, 3, 1, 1));
    /* then torch.randint(-1000, 1000, (4,), dtype=torch.int32) */
    ct_tensor *ri32 = ct_randint(-1000, 1000, CT_SHAPE(4), CT_INT32, NULL);
    CHECK(ri32 && ct_get_dtype(ri32) == CT_INT32 && EQUALS(ri32, 759, -568, 248, 249));
    /* then torch.randint(-2**40, 2**40, (3,)) (64-bit draws for a range >= 2^28) */
    CHECK(EQUALS(ct_randint(-(1LL << 40), 1LL << 40, CT_SHAPE(3), CT_INT64, NULL), 877839392327.0, -78727841284.0,
                 579543727385.0));

    /* torch.manual_seed(2); torch.randperm(10) */
    ct_manual_seed(2);
    CHECK(EQUALS(ct_randperm(10, CT_NUM_DTYPES, NULL), 8, 7, 1, 5, 6, 9, 0, 4, 2, 3));
    CHECK(ct_numel(ct_randperm(0, CT_INT64, NULL)) == 0);

    /* torch.manual_seed(3); torch.bernoulli(torch.tensor([.1, .5, .9, .5, .5, .2, .7, 0., 1.])) */
    ct_manual_seed(3);
    ct_tensor *p = ct_from_data((const float[]){0.1f, 0.5f, 0.9f, 0.5f, 0.5f, 0.2f, 0.7f, 0.f, 1.f}, CT_SHAPE(9),
                                CT_FLOAT32);
    ct_tensor *b = ct_bernoulli(p, NULL);
    CHECK(b && ct_get_dtype(b) == CT_FLOAT32 && EQUALS(b, 1, 1, 1, 1, 1, 1, 0, 0, 1));
    /* torch.manual_seed(3); torch.empty(12, dtype=torch.uint8).bernoulli_(0.25) */
    ct_manual_seed(3);
    ct_tensor *bu = ct_empty(CT_SHAPE(12), CT_UINT8);
    CHECK(ct_bernoulli_(bu, 0.25, NULL) == 0 && EQUALS(bu, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0));

    /* torch.manual_seed(4); torch.empty(4).normal_(2, 3); torch.empty(32).normal_(-1, 0.5)[:3] */
    ct_manual_seed(4);
    ct_tensor *nm = ct_empty(CT_SHAPE(4), CT_FLOAT32);
    CHECK(ct_normal_(nm, 2, 3, NULL) == 0 &&
          EQUALS(nm, -0x1.686d14p+1f, 0x1.594646p+1f, 0x1.17070cp+3f, 0x1.22ae30p+2f));
    ct_tensor *nm32 = ct_normal(-1, 0.5, CT_SHAPE(32), CT_FLOAT32, NULL);
    CHECK(EQUALS(ct_slice(nm32, 0, 0, 3, 1), -0x1.e1ebf2p-1f, -0x1.634dd8p-1f, -0x1.2714a4p+0f));

    /* torch.manual_seed(5); torch.empty(4).uniform_(-1, 1) */
    ct_manual_seed(5);
    ct_tensor *un = ct_empty(CT_SHAPE(4), CT_FLOAT32);
    CHECK(ct_uniform_(un, -1, 1, NULL) == 0 &&
          EQUALS(un, 0x1.522d8cp-1f, -0x1.7edcc8p-1f, 0x1.a13fbcp-1f, 0x1.479af4p-1f));

    /* torch.manual_seed(6); torch.empty(4, dtype=torch.int16).random_();
     * torch.empty(3, dtype=torch.int64).random_() */
    ct_manual_seed(6);
    ct_tensor *r16 = ct_empty(CT_SHAPE(4), CT_INT16), *r64 = ct_empty(CT_SHAPE(3), CT_INT64);
    CHECK(ct_random_(r16, NULL) == 0 && EQUALS(r16, 31626, 19145, 8419, 10196));
    int64_t v64[3];
    CHECK(ct_random_(r64, NULL) == 0 && ct_copy_to_buffer(r64, v64, sizeof v64, CT_INT64) == 0);
    CHECK(v64[0] == 5925631456464534893LL && v64[1] == 769166998637608298LL && v64[2] == 1985915160172878142LL);

    /* torch.manual_seed(9); torch.randn(20, dtype=torch.float16)[:4] (bits) and then
     * torch.rand(3, dtype=torch.bfloat16) (bits) */
    ct_manual_seed(9);
    uint16_t hb[20], bb[3];
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(20), CT_FLOAT16, NULL), hb, sizeof hb, CT_FLOAT16) == 0);
    CHECK(hb[0] == 0xbc45 && hb[1] == 0xb9bd && hb[2] == 0x3c5c && hb[3] == 0xbe4c);
    CHECK(ct_copy_to_buffer(ct_rand(CT_SHAPE(3), CT_BFLOAT16, NULL), bb, sizeof bb, CT_BFLOAT16) == 0);
    CHECK(bb[0] == 0x3f64 && bb[1] == 0x3f51 && bb[2] == 0x3f3a);

    /* torch.manual_seed(10); torch.view_as_real(torch.randn(2, dtype=torch.complex64)) */
    ct_manual_seed(10);
    ct_tensor *c = ct_randn(CT_SHAPE(2), CT_COMPLEX64, NULL);
    CHECK(c && ct_get_dtype(c) == CT_COMPLEX64);
    CHECK(EQUALS(ct_view_as_real(c), -0x1.b37474p-2f, -0x1.6e7586p-1f, -0x1.b5bb90p-3f, -0x1.bc784ep-1f));

    /* torch.Generator().manual_seed(123); torch.randn(2, generator=g) — and the default
     * generator is untouched */
    ct_manual_seed(7);
    ct_generator *g = ct_generator_new(123);
    CHECK(g && ct_generator_initial_seed(g) == 123);
    CHECK(EQUALS(ct_randn(CT_SHAPE(2), CT_FLOAT32, g), -0x1.c891bep-4f, 0x1.ed01b2p-4f));
    /* torch.manual_seed(7); torch.rand(2, 3).t() */
    ct_tensor *r23 = ct_rand(CT_SHAPE(2, 3), CT_FLOAT32, NULL);
    CHECK(EQUALS(ct_t(r23), 0x1.11e15ep-1f, 0x1.5053ecp-1f, 0x1.972620p-3f, 0x1.dcb218p-3f, 0x1.518432p-1f,
                 0x1.b3434cp-2f));
    ct_generator_free(g);
    ct_scope_end();
}

static void test_order_and_like(void) {
    ct_scope_begin();
    /* x = torch.empty(3, 2).t(); torch.manual_seed(7); x.uniform_(): memory order */
    ct_tensor *x = ct_t(ct_zeros(CT_SHAPE(3, 2), CT_FLOAT32));
    ct_manual_seed(7);
    CHECK(ct_uniform_(x, 0, 1, NULL) == 0);
    CHECK(EQUALS(x, 0x1.11e15ep-1f, 0x1.518432p-1f, 0x1.dcb218p-3f, 0x1.972620p-3f, 0x1.5053ecp-1f, 0x1.b3434cp-2f));
    /* rand_like keeps x's layout, so the values land where torch.rand_like puts them */
    ct_manual_seed(7);
    ct_tensor *rl = ct_rand_like(x, NULL);
    CHECK(rl && ct_stride(rl, 0) == 1 && ct_stride(rl, 1) == 2);
    CHECK(EQUALS(rl, 0x1.11e15ep-1f, 0x1.518432p-1f, 0x1.dcb218p-3f, 0x1.972620p-3f, 0x1.5053ecp-1f, 0x1.b3434cp-2f));
    ct_tensor *il = ct_randint_like(ct_zeros(CT_SHAPE(2, 2), CT_INT16), 0, 5, NULL);
    CHECK(il && ct_get_dtype(il) == CT_INT16 && ct_numel(il) == 4);
    ct_tensor *nl = ct_randn_like(ct_zeros(CT_SHAPE(3), CT_FLOAT64), NULL);
    CHECK(nl && ct_get_dtype(nl) == CT_FLOAT64);
    /* empty tensors draw nothing */
    ct_manual_seed(7);
    CHECK(ct_numel(ct_rand(CT_SHAPE(0, 4), CT_FLOAT32, NULL)) == 0);
    CHECK(EQUALS(ct_rand(CT_SHAPE(1), CT_FLOAT32, NULL), 0x1.11e15ep-1f));
    ct_scope_end();
}

static void test_state(void) {
    ct_scope_begin();
    unsigned char s1[CT_GENERATOR_STATE_SIZE], s2[CT_GENERATOR_STATE_SIZE];
    ct_generator *g = ct_generator_new(2024);
    CHECK(ct_generator_get_state(g, NULL, 0) == CT_GENERATOR_STATE_SIZE);
    ct_randn(CT_SHAPE(1), CT_FLOAT32, g); /* leaves a cached normal */
    ct_rand(CT_SHAPE(700), CT_FLOAT32, g); /* crosses a twister regeneration */
    CHECK(ct_generator_get_state(g, s1, sizeof s1) == CT_GENERATOR_STATE_SIZE);
    double a[6], b[6];
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(6), CT_FLOAT64, g), a, sizeof a, CT_FLOAT64) == 0);
    /* restore: the same normals, starting with the cached one */
    CHECK(ct_generator_set_state(g, s1, sizeof s1) == 0);
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(6), CT_FLOAT64, g), b, sizeof b, CT_FLOAT64) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* into another generator, and a clone */
    ct_generator *h = ct_generator_new(1);
    CHECK(ct_generator_set_state(h, s1, sizeof s1) == 0 && ct_generator_initial_seed(h) == 2024);
    ct_generator *c = ct_generator_clone(h);
    CHECK(c && ct_generator_get_state(c, s2, sizeof s2) == CT_GENERATOR_STATE_SIZE && memcmp(s1, s2, sizeof s1) == 0);
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(6), CT_FLOAT64, c), b, sizeof b, CT_FLOAT64) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* the blob's header is torch's: seed, left, seeded, next */
    uint64_t seed;
    int32_t seeded;
    memcpy(&seed, s1, 8);
    memcpy(&seeded, s1 + 12, 4);
    CHECK(seed == 2024 && seeded == 1);
    /* manual_seed clears the cached normal: two fresh starts agree */
    ct_generator_manual_seed(g, 5);
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(3), CT_FLOAT64, g), a, 3 * sizeof(double), CT_FLOAT64) == 0);
    ct_randn(CT_SHAPE(1), CT_FLOAT64, g);
    ct_generator_manual_seed(g, 5);
    CHECK(ct_copy_to_buffer(ct_randn(CT_SHAPE(3), CT_FLOAT64, g), b, 3 * sizeof(double), CT_FLOAT64) == 0);
    CHECK(memcmp(a, b, 3 * sizeof(double)) == 0);
    /* bad states leave the generator alone */
    CHECK(ct_generator_get_state(g, s2, 100) == CT_ERR_ARG);
    CHECK(ct_generator_set_state(g, s1, 100) == CT_ERR_ARG);
    memcpy(s2, s1, sizeof s1);
    int32_t zero = 0;
    memcpy(s2 + 8, &zero, 4); /* left = 0 */
    CHECK(ct_generator_set_state(g, s2, sizeof s2) == CT_ERR_ARG && strstr(ct_last_error(), "Invalid"));
    /* the default generator: ct_seed reseeds it nondeterministically */
    uint64_t s = ct_seed();
    CHECK(ct_initial_seed() == s && ct_generator_initial_seed(NULL) == s);
    CHECK(ct_default_generator() == ct_default_generator());
    ct_generator_free(ct_default_generator()); /* ignored */
    ct_generator_free(NULL);
    ct_generator_free(c);
    ct_generator_free(h);
    ct_generator_free(g);
    ct_scope_end();
}

static void test_errors(void) {
    ct_scope_begin();
    ct_clear_error();
    CHECK(!ct_rand(CT_SHAPE(3), CT_INT64, NULL) && ct_last_status() == CT_ERR_DTYPE && strstr(ct_last_error(), "rand"));
    CHECK(!ct_randn(CT_SHAPE(-1), CT_FLOAT32, NULL) && strstr(ct_last_error(), "negative"));
    CHECK(!ct_randint(5, 5, CT_SHAPE(3), CT_INT64, NULL) && strstr(ct_last_error(), "from=5 >= to=5"));
    CHECK(!ct_randint(0, 300, CT_SHAPE(3), CT_UINT8, NULL) && strstr(ct_last_error(), "out of bounds"));
    CHECK(!ct_randint(-1, 1, CT_SHAPE(3), CT_BOOL, NULL));
    CHECK(!ct_randperm(-1, CT_INT64, NULL) && strstr(ct_last_error(), "non-negative"));
    CHECK(!ct_randperm(3000, CT_FLOAT16, NULL) && strstr(ct_last_error(), "2049"));
    CHECK(!ct_randperm(200, CT_INT8, NULL));
    CHECK(!ct_randperm(3, CT_BOOL, NULL));
    CHECK(!ct_normal(0, -1, CT_SHAPE(2), CT_FLOAT32, NULL) && strstr(ct_last_error(), "std >= 0.0"));
    CHECK(!ct_normal(0, NAN, CT_SHAPE(2), CT_FLOAT32, NULL));
    ct_tensor *z = ct_zeros(CT_SHAPE(4), CT_FLOAT32);
    CHECK(ct_uniform_(z, 1, 0, NULL) == CT_ERR_ARG && strstr(ct_last_error(), "from=1 > to=0"));
    CHECK(ct_uniform_(z, -1e39, 0, NULL) == CT_ERR_ARG && strstr(ct_last_error(), "out of bounds"));
    CHECK(ct_uniform_(ct_zeros(CT_SHAPE(2), CT_FLOAT16), 0, 1e5, NULL) == CT_ERR_ARG);
    CHECK(ct_bernoulli_(z, 1.5, NULL) == CT_ERR_ARG && strstr(ct_last_error(), "[0, 1]"));
    CHECK(ct_normal_(ct_zeros(CT_SHAPE(2), CT_INT32), 0, 1, NULL) == CT_ERR_DTYPE);
    CHECK(ct_random_(ct_zeros(CT_SHAPE(2), CT_COMPLEX64), NULL) == CT_ERR_DTYPE);
    CHECK(!ct_bernoulli(ct_from_data((const double[]){0.5, 1.5}, CT_SHAPE(2), CT_FLOAT64), NULL));
    CHECK(!ct_bernoulli(ct_zeros(CT_SHAPE(2), CT_INT64), NULL));
    /* writing through an expanded view: several elements share one location */
    ct_tensor *e = ct_expand(ct_zeros(CT_SHAPE(1), CT_FLOAT32), CT_SHAPE(3));
    CHECK(ct_normal_(e, 0, 1, NULL) == CT_ERR_ARG && strstr(ct_last_error(), "single memory location"));
    /* NULL arguments fail quietly */
    ct_clear_error();
    CHECK(ct_uniform_(NULL, 0, 1, NULL) < 0 && !ct_rand_like(NULL, NULL) && !ct_bernoulli(NULL, NULL));
    CHECK(ct_generator_manual_seed(NULL, 1) == CT_ERR_ARG);
    ct_scope_end();
}

static void test_autograd(void) {
    ct_scope_begin();
    ct_tensor *leaf = ct_zeros(CT_SHAPE(3), CT_FLOAT32);
    CHECK(ct_set_requires_grad(leaf, true) == 0);
    CHECK(ct_uniform_(leaf, 0, 1, NULL) == CT_ERR_AUTOGRAD && strstr(ct_last_error(), "leaf"));
    int64_t v = ct_version_counter(leaf);
    ct_tensor *y = ct_mul(leaf, ct_float(2.0));
    CHECK(ct_normal_(y, 0, 1, NULL) == 0 && ct_version_counter(y) > v);
    CHECK(ct_grad_fn_name(y) && strcmp(ct_grad_fn_name(y), "NormalBackward0") == 0);
    /* the old values do not reach y any more: the leaf gets no gradient */
    ct_tensor *s = ct_sum(y);
    if (s) {
        CHECK(ct_backward(s, NULL, false, false) == 0);
        ct_tensor *gr = ct_grad(leaf);
        CHECK(!gr || EQUALS(gr, 0, 0, 0));
    }
    /* bernoulli(p) with p requiring grad: a zero gradient */
    ct_tensor *p = ct_full(CT_SHAPE(2), 0.5, CT_FLOAT64);
    CHECK(ct_set_requires_grad(p, true) == 0);
    ct_tensor *b = ct_bernoulli(p, NULL);
    CHECK(b && ct_grad_fn_name(b) && strcmp(ct_grad_fn_name(b), "BernoulliBackward0") == 0);
    ct_scope_end();
}

/* ---- the default generator from several threads ---- */
#define NTHREADS 4
#define CALLS 50
static void *draw_many(void *arg) {
    (void)arg;
    ct_scope_begin();
    for (int i = 0; i < CALLS; i++) {
        ct_rand(CT_SHAPE(100), CT_FLOAT32, NULL);
        ct_randn(CT_SHAPE(3), CT_FLOAT64, NULL);
    }
    ct_scope_end();
    return NULL;
}

static void test_threads(void) {
    /* every call holds the lock for all its draws: whatever the interleaving, the
     * generator ends where the same calls made one after another leave it */
    unsigned char par[CT_GENERATOR_STATE_SIZE], seq[CT_GENERATOR_STATE_SIZE];
    ct_manual_seed(99);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, draw_many, NULL);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    ct_generator_get_state(NULL, par, sizeof par);
    ct_manual_seed(99);
    for (int i = 0; i < NTHREADS; i++) draw_many(NULL);
    ct_generator_get_state(NULL, seq, sizeof seq);
    /* the twister words, left and next agree; the cached normal may differ by order */
    CHECK(memcmp(par, seq, 5016) == 0);
}

int main(void) {
    int64_t live = ct_live_tensors();
    test_factories();
    test_order_and_like();
    test_state();
    test_errors();
    test_autograd();
    test_threads();
    CHECK(ct_live_tensors() == live);
    printf("test_random: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
