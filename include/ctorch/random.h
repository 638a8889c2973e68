/* ctorch/random.h — random number generators and random sampling, reproducing
 * PyTorch's CPU random numbers bit for bit: with the same seed, ctorch and torch on
 * the CPU give the same tensors.
 *
 *     ct_manual_seed(42);                              // torch.manual_seed(42)
 *     ct_tensor *x = ct_rand(CT_SHAPE(5), CT_FLOAT32, NULL);   // torch.rand(5)
 *
 * GENERATORS
 *   A ct_generator is PyTorch's CPU generator: a Mersenne Twister (mt19937) seeded
 *   with the low 32 bits of the seed, plus a cached second Box-Muller normal (the
 *   element-by-element normal path makes two normals at a time and keeps one for the
 *   next call). Every sampling function takes a generator; NULL means the default
 *   generator, the counterpart of torch's global one (torch.manual_seed seeds it).
 *   Like torch's, the default generator starts from a nondeterministic seed (read from
 *   the operating system) until ct_manual_seed() is called.
 *
 * STATE
 *   ct_generator_get_state() / ct_generator_set_state() exchange a byte blob of
 *   CT_GENERATOR_STATE_SIZE bytes laid out exactly like torch.get_rng_state() /
 *   torch.Generator.get_state() (little-endian machines): a checkpoint written by
 *   either library resumes the same stream in the other.
 *
 * WHAT IS DRAWN (per element, in the order the elements are written; for a tensor
 * that is not contiguous that is the order of its strides, innermost = smallest
 * stride, as PyTorch's TensorIterator visits it)
 *   uniform: float32, float16, bfloat16: one 32-bit draw, 24 random bits, value
 *     x*(to-from)+from in float (16-bit types: rounded, and a value that rounds up to
 *     `to` becomes `from`); float64: one 64-bit draw (two 32-bit draws), 53 bits.
 *   normal: contiguous floating tensors of >= 16 elements take the batched Box-Muller
 *     path (uniforms first, then 16 at a time; a partial last block is redrawn and
 *     recomputed over the last 16 elements). float32/16/bfloat16 use the Cephes-
 *     polynomial log/sin/cos of PyTorch's AVX2 kernel (the one torch runs on x86-64
 *     CPUs with AVX2, AVX-512 ones included), in float; ctorch computes them the same
 *     way on every CPU. float64 uses the C library's log/sin/cos. Smaller or
 *     non-contiguous tensors draw element by element: Box-Muller in double on two
 *     float64 uniforms, the second normal cached in the generator for the next call.
 *   bernoulli_(p): one float64 uniform per element, 1 if u < p. (torch builds with
 *     MKL may take this one from a separate MKL stream on Intel CPUs; elsewhere, e.g.
 *     on AMD CPUs, torch draws it as described.) torch's CPU dropout is
 *     x * empty_like(x).bernoulli_(1 - p).div_(1 - p).
 *   bernoulli(p tensor): float64 p: one float64 uniform; other p dtypes: one float32
 *     uniform (24 bits) compared with (float)p.
 *   randint / random_range_: one 32-bit draw per element (a 64-bit one when the
 *     range is 2^28 or more), value from + draw % range.
 *   randperm(n): n < 214748364: iota then n-1 swaps with 32-bit draws % (n-i);
 *     larger n: inside-out Fisher-Yates with 64-bit draws.
 *
 * THREADS
 *   Every sampling call holds its generator's lock while it draws, so no two calls
 *   interleave their draws and sharing a generator (including the default one) between
 *   threads is memory-safe. Which thread draws first is up to the scheduler, so for
 *   reproducible results give each thread its own generator. ct_generator_free() must
 *   not run while another thread uses that generator.
 *
 * Sampling ops on tensors that require grad: the in-place forms refuse a leaf that
 * requires grad (as in-place ops do); on a non-leaf they cut the history (the result
 * does not depend on the old values: zero gradient), like torch.
 */
#ifndef CTORCH_RANDOM_H
#define CTORCH_RANDOM_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_generator ct_generator;

/* Size in bytes of a generator state blob (torch's CPUGeneratorImplState). */
#define CT_GENERATOR_STATE_SIZE 5056

/* ---- generators ---- */
/* A new generator seeded with seed (torch.Generator().manual_seed(seed)). NULL on OOM.
 * Free it with ct_generator_free(). */
CT_API ct_generator *ct_generator_new(uint64_t seed);
/* Frees g. NULL-safe; the default generator is never freed (ignored). */
CT_API void ct_generator_free(ct_generator *g);
/* A new generator in the same state as g (same future draws). NULL on error. */
CT_API ct_generator *ct_generator_clone(ct_generator *g);
/* Reseeds g (and clears its cached normal), like Generator.manual_seed(seed). The
 * engine uses the low 32 bits; ct_generator_initial_seed() returns all 64.
 * Returns 0, or CT_ERR_ARG if g is NULL. */
CT_API int ct_generator_manual_seed(ct_generator *g, uint64_t seed);
/* Reseeds g from a nondeterministic source and returns that seed (Generator.seed()).
 * g NULL: the default generator. */
CT_API uint64_t ct_generator_seed(ct_generator *g);
/* The seed g was last seeded with (Generator.initial_seed()). g NULL: the default. */
CT_API uint64_t ct_generator_initial_seed(ct_generator *g);
/* Writes g's state (CT_GENERATOR_STATE_SIZE bytes, torch's layout) into buf.
 * Returns the number of bytes written; with buf NULL, just returns the size needed.
 * Negative status: CT_ERR_ARG if n is too small. g NULL: the default generator. */
CT_API int64_t ct_generator_get_state(ct_generator *g, void *buf, size_t n);
/* Restores a state written by ct_generator_get_state() or torch's get_rng_state().
 * Returns 0, or CT_ERR_ARG (wrong size, invalid state: g unchanged). g NULL: default. */
CT_API int ct_generator_set_state(ct_generator *g, const void *buf, size_t n);
/* The default generator (never NULL; do not free). */
CT_API ct_generator *ct_default_generator(void);
/* Seeds the default generator: torch.manual_seed(seed). */
CT_API void ct_manual_seed(uint64_t seed);
/* Reseeds the default generator nondeterministically and returns the seed (torch.seed()). */
CT_API uint64_t ct_seed(void);
/* The default generator's seed (torch.initial_seed()). */
CT_API uint64_t ct_initial_seed(void);

/* ---- sampling into new tensors ----
 * gen NULL: the default generator. A dtype of CT_NUM_DTYPES means torch's default for
 * the function: the default float dtype (ct_get_default_dtype()) for rand, randn and
 * normal; int64 for randint and randperm. */
/* torch.rand(sizes, dtype): uniform on [0, 1). Floating or complex dtypes. */
CT_API ct_tensor *ct_rand(int ndim, const int64_t *sizes, ct_dtype dtype, ct_generator *gen);
/* torch.randn(sizes, dtype): standard normal (complex: variance 1 split over re/im). */
CT_API ct_tensor *ct_randn(int ndim, const int64_t *sizes, ct_dtype dtype, ct_generator *gen);
/* torch.normal(mean, std, sizes, dtype). std >= 0. */
CT_API ct_tensor *ct_normal(double mean, double std, int ndim, const int64_t *sizes, ct_dtype dtype,
                            ct_generator *gen);
/* torch.randint(low, high, sizes, dtype): integers uniform on [low, high), any real
 * dtype (bool included); low < high, both representable in dtype. */
CT_API ct_tensor *ct_randint(int64_t low, int64_t high, int ndim, const int64_t *sizes, ct_dtype dtype,
                             ct_generator *gen);
/* torch.randperm(n, dtype): a random permutation of 0..n-1 (1-D, n >= 0). Any real
 * dtype but bool; float16 needs n <= 2049, float32 n <= 2^24+1. */
CT_API ct_tensor *ct_randperm(int64_t n, ct_dtype dtype, ct_generator *gen);
/* torch.rand_like / randn_like / randint_like(t, low, high): t's sizes and dtype, and
 * t's memory layout (dense, dims in t's stride order, as torch's preserve_format), so
 * that the values match torch's for non-contiguous t too. */
CT_API ct_tensor *ct_rand_like(const ct_tensor *t, ct_generator *gen);
CT_API ct_tensor *ct_randn_like(const ct_tensor *t, ct_generator *gen);
CT_API ct_tensor *ct_randint_like(const ct_tensor *t, int64_t low, int64_t high, ct_generator *gen);
/* torch.bernoulli(p): a tensor of p's sizes and dtype (floating), 1 with probability
 * p[i], else 0. Every p[i] must be in [0, 1]. */
CT_API ct_tensor *ct_bernoulli(const ct_tensor *p, ct_generator *gen);

/* ---- in place: fill t with samples; return 0 or a negative status ---- */
/* t.uniform_(from, to): floating or complex t (complex: re and im each uniform);
 * from <= to, to - from finite in t's dtype. */
CT_API int ct_uniform_(ct_tensor *t, double from, double to, ct_generator *gen);
/* t.normal_(mean, std): floating or complex t (complex: std/sqrt(2) per part); std >= 0. */
CT_API int ct_normal_(ct_tensor *t, double mean, double std, ct_generator *gen);
/* t.bernoulli_(p): any real dtype; 0 <= p <= 1. */
CT_API int ct_bernoulli_(ct_tensor *t, double p, ct_generator *gen);
/* t.random_(): integers uniform on [0, max] where max is the dtype's largest value
 * (int types), 2^mantissa_digits (float types) or 1 (bool). Any real dtype. */
CT_API int ct_random_(ct_tensor *t, ct_generator *gen);
/* t.random_(from, to): integers uniform on [from, to) (from < to, representable in
 * t's dtype). Any real dtype. */
CT_API int ct_random_range_(ct_tensor *t, int64_t from, int64_t to, ct_generator *gen);

#ifdef __cplusplus
}
#endif
#endif
