/* Thread-safety rules from ctorch/core.h, tested:
 *  - independent threads may run forward (and backward into their own leaves) over shared
 *    read-only parameters, each with its own scopes, errors and grad mode;
 *  - error records and grad mode are per thread. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

static ct_tensor *W, *B; /* shared, read-only */
static double expected;

typedef struct { int id; int fails; } job;

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
        ct_scope_end();
    }
    return NULL;
}

int main(void) {
    ct_manual_seed(1);
    W = ct_randn(CT_SHAPE(8, 8), CT_FLOAT32, NULL);
    B = ct_randn(CT_SHAPE(8), CT_FLOAT32, NULL);
    ct_set_requires_grad(W, true);
    expected = forward_once();
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) { jobs[i] = (job){i, 0}; pthread_create(&th[i], NULL, worker, &jobs[i]); }
    int fails = 0;
    for (int i = 0; i < 4; i++) { pthread_join(th[i], NULL); fails += jobs[i].fails; }
    if (!ct_is_grad_enabled()) fails++;
    if (ct_last_status() != CT_OK) fails++;
    ct_release(W);
    ct_release(B);
    printf("test_threads: %d failures\n", fails);
    return fails != 0;
}
