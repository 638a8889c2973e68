/* CPU caching allocator: freed blocks are kept in size classes and handed out again,
 * so a training loop that allocates the same shapes every step stops calling malloc
 * (and, for large blocks, stops faulting in fresh pages from mmap). Blocks are
 * 64-byte aligned; blocks of 2 MiB and more are 2 MiB aligned and advised as
 * transparent huge pages (as PyTorch's CPU allocator does): streaming kernels then
 * take far fewer TLB misses and the prefetchers do not stop at every 4 KiB page.
 * The cache is bounded (CTORCH_CACHE_LIMIT_MB, default 1024) and
 * ct_empty_cache() returns it to the system. */
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>

#include "core/internal.h"

#define SMALL_STEP 64
#define SMALL_MAX 4096                       /* classes 64, 128, ..., 4096 */
#define N_SMALL (SMALL_MAX / SMALL_STEP)
#define CLASS_LOG 3                          /* 8 classes per power of two above 4 KiB: */
#define CLASSES (1 << CLASS_LOG)             /* at most 1/8 of a block is rounding */
#define N_LARGE (CLASSES * 48)
#define HUGE ((size_t)2 << 20)               /* transparent huge page size */

typedef struct block { struct block *next; } block;

/* One spin lock guards the bins and the byte counts: what it guards is a list push or
 * pop and a few counts, shorter than a mutex's own lock and unlock, and releasing it is
 * a plain store (an op's output allocated and freed: 2 locked instructions instead of
 * 6). A waiter yields the CPU after a while, in case the holder was descheduled. */
static atomic_bool lock_flag;
static void lock(void) {
    int spins = 0;
    while (atomic_exchange_explicit(&lock_flag, true, memory_order_acquire))
        while (atomic_load_explicit(&lock_flag, memory_order_relaxed)) {
            if (++spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
                spins = 0;
            }
        }
}
static void unlock(void) { atomic_store_explicit(&lock_flag, false, memory_order_release); }

static block *bins[N_SMALL + N_LARGE];
static size_t cached_bytes, cache_limit;
/* written under the lock (plain stores), read anywhere */
static atomic_llong live_bytes, peak_bytes;

static void count_live(long long d) { /* under the lock */
    long long now = atomic_load_explicit(&live_bytes, memory_order_relaxed) + d;
    atomic_store_explicit(&live_bytes, now, memory_order_relaxed);
    if (now > atomic_load_explicit(&peak_bytes, memory_order_relaxed))
        atomic_store_explicit(&peak_bytes, now, memory_order_relaxed);
}

/* Size class of n bytes: its index and the rounded size. */
static int size_class(size_t n, size_t *rounded) {
    if (n <= SMALL_MAX) {
        size_t r = n == 0 ? SMALL_STEP : (n + SMALL_STEP - 1) / SMALL_STEP * SMALL_STEP;
        *rounded = r;
        return (int)(r / SMALL_STEP) - 1;
    }
    int k = 63 - __builtin_clzll((unsigned long long)n); /* 2^k <= n < 2^(k+1) */
    size_t step = (size_t)1 << (k - CLASS_LOG);
    size_t r = (n + step - 1) / step * step;             /* 9/8, 10/8, ..., 16/8 of 2^k */
    if (r >= (size_t)1 << (k + 1)) { k++; r = (size_t)1 << k; }
    int q = (int)(r >> (k - CLASS_LOG)) - CLASSES;       /* 0..CLASSES-1 */
    int idx = N_SMALL + CLASSES * (k - 12) + q;
    *rounded = r;
    return idx < N_SMALL + N_LARGE ? idx : -1;
}

static size_t limit(void) {
    if (!cache_limit) {
        const char *e = getenv("CTORCH_CACHE_LIMIT_MB");
        long mb = e ? atol(e) : 1024;
        cache_limit = mb > 0 ? (size_t)mb << 20 : 1;
    }
    return cache_limit;
}

void *ct__alloc(size_t nbytes) {
    size_t r;
    int c = size_class(nbytes, &r);
    void *p = NULL;
    if (c >= 0) {
        lock();
        if (bins[c]) {
            p = bins[c];
            bins[c] = bins[c]->next;
            cached_bytes -= r;
            count_live((long long)r);
        }
        unlock();
        if (p) return p;
    } else r = (nbytes + CT_ALIGN - 1) / CT_ALIGN * CT_ALIGN;
    if (r < nbytes) return ct__err(CT_ERR_OOM, "out of memory: cannot allocate %zu bytes", nbytes);
    size_t align = r >= HUGE ? HUGE : CT_ALIGN;
    /* posix_memalign: aligned_alloc requires the size to be a multiple of the
     * alignment, which a 2 MiB-aligned block of, say, 7.5 MiB is not */
    if (posix_memalign(&p, align, r)) {
        p = NULL;
        ct_empty_cache(); /* give cached blocks back and try once more */
        if (posix_memalign(&p, align, r)) p = NULL;
    }
    if (!p) return ct__err(CT_ERR_OOM, "out of memory: cannot allocate %zu bytes", nbytes);
#ifdef MADV_HUGEPAGE
    if (align == HUGE) madvise(p, r & ~(HUGE - 1), MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    lock();
    count_live((long long)r);
    unlock();
    return p;
}

void ct__free(void *p, size_t nbytes) {
    if (!p) return;
    size_t r;
    int c = size_class(nbytes, &r);
    if (c < 0) r = (nbytes + CT_ALIGN - 1) / CT_ALIGN * CT_ALIGN;
    block *evicted = NULL;
    size_t lim = limit();
    lock();
    count_live(-(long long)r);
    if (c >= 0 && r <= lim) {
        /* Full: evict cached blocks of other sizes (largest first) rather than dropping
         * this one, so the cache follows the working set (a training step after an
         * evaluation pass with bigger batches keeps its blocks cached). */
        for (int k = N_SMALL + N_LARGE - 1; k >= 0 && cached_bytes + r > lim; k--) {
            if (k == c) continue;
            while (bins[k] && cached_bytes + r > lim) {
                block *b = bins[k];
                bins[k] = b->next;
                size_t kr;
                if (k < N_SMALL) kr = (size_t)(k + 1) * SMALL_STEP;
                else {
                    int e = (k - N_SMALL) / CLASSES + 12, q = (k - N_SMALL) % CLASSES;
                    kr = ((size_t)1 << (e - CLASS_LOG)) * (size_t)(CLASSES + q);
                }
                cached_bytes -= kr;
                b->next = evicted;
                evicted = b;
            }
        }
        if (cached_bytes + r <= lim) {
            block *b = p;
            b->next = bins[c];
            bins[c] = b;
            cached_bytes += r;
            p = NULL;
        }
    }
    unlock();
    while (evicted) {
        block *nx = evicted->next;
        free(evicted);
        evicted = nx;
    }
    free(p);
}

CT_API void ct_empty_cache(void) {
    block *all = NULL; /* unlinked under the lock, freed after it */
    lock();
    for (int i = 0; i < N_SMALL + N_LARGE; i++)
        while (bins[i]) { block *b = bins[i]; bins[i] = b->next; b->next = all; all = b; }
    cached_bytes = 0;
    unlock();
    while (all) { block *nx = all->next; free(all); all = nx; }
}

CT_API int64_t ct_memory_allocated(void) { return atomic_load(&live_bytes); }
CT_API int64_t ct_memory_peak(void) { return atomic_load(&peak_bytes); }
CT_API int64_t ct_memory_cached(void) {
    lock();
    int64_t c = (int64_t)cached_bytes;
    unlock();
    return c;
}
CT_API void ct_memory_reset_peak(void) {
    lock();
    atomic_store_explicit(&peak_bytes, atomic_load_explicit(&live_bytes, memory_order_relaxed), memory_order_relaxed);
    unlock();
}
