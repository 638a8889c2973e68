/* Thread-safety rules from ctorch/core.h, tested:
 *  - independent threads may run forward (and backward into their own leaves) over shared
 *    read-only parameters, each with its own scopes, errors and grad mode;
 *  - error records and grad mode are per thread;
 *  - the counts are global: ct_live_tensors() (kept per thread, summed) and
 *    ct_memory_allocated() (the caching allocator's) come back to where they were when
 *    every thread has freed what it made, also for tensors made on one thread and freed
 *    on another, after that thread has ended. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

static ct_tensor *W, *B; /* shared, read-only */
static double expected;

typedef struct { int id; int fails; ct_tensor *made; } job;

static double forward_once(void) {
    ct_scope_begin();
    ct_tensor *x = ct_arange(0, 64, 1, CT_FLOAT32);
    x = ct_div_scalar(ct_view(x, CT_SHAPE(8, 8)), 64.0);
    ct_tensor *y = ct_sum(ct_tanh(ct_add(ct_matmul(x, W), B)));
    double v = ct_item(y);
    ct_scope_end();
    return v;
}

static void *worker(void *arg) {
    job *j = arg;
    /* grad mode is thread-local: turning it off here must not affect other threads */
    if (j->id % 2) ct_set_grad_enabled(false);
    for (int it = 0; it < 200; it++) {
        double v = forward_once();
        if (!(fabs(v - expected) <= 1e-6 * fabs(expected))) j->fails++;
        ct_scope_begin();
        /* an error on this thread stays on this thread */
        ct_tensor *bad = ct_add(W, ct_ones(CT_SHAPE(3), CT_FLOAT32));
        if (bad || ct_last_status() != CT_ERR_SHAPE) j->fails++;
        ct_clear_error();
        ct_tensor *p = ct_mul(W, W);
        if ((j->id % 2) ? ct_requires_grad(p) : !ct_requires_grad(p)) j->fails++;
        /* blocks from the caching allocator (beyond a storage's inline bytes), taken and
         * given back by all the threads at once */
        ct_tensor *big = ct_exp(ct_full(CT_SHAPE(64 + it % 5, 64), 0.5, CT_FLOAT32));
        if (!big || fabs(ct_item(ct_mean(big)) - exp(0.5)) > 1e-6) j->fails++;
        ct_scope_end();
    }
    /* left for main to free after this thread has ended */
    j->made = ct_full(CT_SHAPE(256), (double)j->id, CT_FLOAT32);
    return NULL;
}

int main(void) {
    ct_manual_seed(1);
    W = ct_randn(CT_SHAPE(8, 8), CT_FLOAT32, NULL);
    B = ct_randn(CT_SHAPE(8), CT_FLOAT32, NULL);
    ct_set_requires_grad(W, true);
    expected = forward_once();
    int64_t live0 = ct_live_tensors(), bytes0 = ct_memory_allocated();
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) { jobs[i] = (job){i, 0, NULL}; pthread_create(&th[i], NULL, worker, &jobs[i]); }
    int fails = 0;
    for (int i = 0; i < 4; i++) { pthread_join(th[i], NULL); fails += jobs[i].fails; }
    if (!ct_is_grad_enabled()) fails++;
    if (ct_last_status() != CT_OK) fails++;
    /* the ended threads' tensors are still counted until main frees them */
    if (ct_live_tensors() != live0 + 4) { printf("live tensors %lld, expected %lld\n", (long long)ct_live_tensors(), (long long)live0 + 4); fails++; }
    ct_scope_begin();
    for (int i = 0; i < 4; i++)
        if (!jobs[i].made || ct_item(ct_sum(jobs[i].made)) != 256.0 * i) fails++;
    ct_scope_end();
    for (int i = 0; i < 4; i++) ct_release(jobs[i].made);
    if (ct_live_tensors() != live0) { printf("live tensors %lld, expected %lld\n", (long long)ct_live_tensors(), (long long)live0); fails++; }
    if (ct_memory_allocated() != bytes0) { printf("allocated %lld bytes, expected %lld\n", (long long)ct_memory_allocated(), (long long)bytes0); fails++; }
    ct_release(W);
    ct_release(B);
    printf("test_threads: %d failures\n", fails);
    return fails != 0;
}
