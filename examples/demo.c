/* demo: trains a small multilayer perceptron on Fashion-MNIST with ctorch and
 * reports test accuracy. This is the "make demo" job until the nn/optim issue lands
 * its CNN; it uses only core ops: matmul, relu, log_softmax, gather, mean, backward.
 *
 *   example_demo [--data DIR] [--epochs N] [--hidden H] [--batch B] [--lr LR] [--limit N]
 *
 * DIR holds train-images-idx3-ubyte.gz etc. (Debian: dataset-fashion-mnist). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <ctorch.h>

static unsigned char *read_idx(const char *dir, const char *name, int *n_out, int *item_size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) { fprintf(stderr, "demo: cannot open %s\n", path); return NULL; }
    unsigned char hdr[16];
    if (gzread(f, hdr, 8) != 8) { gzclose(f); return NULL; }
    int ndim = hdr[3];
    int n = (hdr[4] << 24) | (hdr[5] << 16) | (hdr[6] << 8) | hdr[7];
    int item = 1;
    for (int d = 1; d < ndim; d++) {
        unsigned char b[4];
        if (gzread(f, b, 4) != 4) { gzclose(f); return NULL; }
        item *= (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    }
    size_t bytes = (size_t)n * (size_t)item;
    unsigned char *buf = malloc(bytes);
    if (!buf || gzread(f, buf, (unsigned)bytes) != (int)bytes) { free(buf); gzclose(f); fprintf(stderr, "demo: short read in %s\n", path); return NULL; }
    gzclose(f);
    *n_out = n;
    *item_size = item;
    return buf;
}

/* images [n, 784] float32 in [0, 1] normalised like torchvision (mean 0.2860, std 0.3530 for Fashion-MNIST) */
static ct_tensor *to_images(const unsigned char *px, int n) {
    float *f = malloc(sizeof(float) * (size_t)n * 784);
    for (size_t i = 0; i < (size_t)n * 784; i++) f[i] = ((float)px[i] / 255.0f - 0.2860f) / 0.3530f;
    ct_tensor *t = ct_from_data(f, CT_SHAPE(n, 784), CT_FLOAT32);
    free(f);
    return t;
}

static ct_tensor *to_labels(const unsigned char *lb, int n) {
    int64_t *v = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = lb[i];
    ct_tensor *t = ct_from_data(v, CT_SHAPE(n, 1), CT_INT64);
    free(v);
    return t;
}

/* PyTorch's nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
static ct_tensor *param(int64_t rows, int64_t cols, int64_t fan_in) {
    double bound = 1.0 / sqrt((double)fan_in);
    ct_tensor *p = cols ? ct_empty(CT_SHAPE(rows, cols), CT_FLOAT32) : ct_empty(CT_SHAPE(rows), CT_FLOAT32);
    ct_uniform_(p, -bound, bound, NULL);
    ct_set_requires_grad(p, true);
    return p;
}

static ct_tensor *forward(ct_tensor *x, ct_tensor *w1, ct_tensor *b1, ct_tensor *w2, ct_tensor *b2) {
    ct_tensor *h = ct_relu(ct_add(ct_matmul(x, ct_t(w1)), b1));
    return ct_log_softmax(ct_add(ct_matmul(h, ct_t(w2)), b2), 1, CT_NUM_DTYPES);
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    int epochs = 10, hidden = 256, batch = 64, limit = 0;
    double lr = 0.1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden")) hidden = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lr")) lr = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--limit")) limit = atoi(argv[i + 1]);
        else { fprintf(stderr, "demo: unknown option %s\n", argv[i]); return 2; }
    }
    int ntr, nte, isz, lsz;
    unsigned char *trx = read_idx(dir, "train-images-idx3-ubyte.gz", &ntr, &isz);
    unsigned char *try_ = read_idx(dir, "train-labels-idx1-ubyte.gz", &ntr, &lsz);
    unsigned char *tex = read_idx(dir, "t10k-images-idx3-ubyte.gz", &nte, &isz);
    unsigned char *tey = read_idx(dir, "t10k-labels-idx1-ubyte.gz", &nte, &lsz);
    if (!trx || !try_ || !tex || !tey || isz != 784) { fprintf(stderr, "demo: could not read Fashion-MNIST from %s\n", dir); return 1; }
    if (limit > 0 && limit < ntr) ntr = limit;
    printf("ctorch %s: MLP 784-%d-10 on Fashion-MNIST (%d train / %d test images), batch %d, SGD lr %.3g, %d epochs\n",
           ct_version(), hidden, ntr, nte, batch, lr, epochs);
    ct_manual_seed(0);
    ct_tensor *xtr = to_images(trx, ntr), *ytr = to_labels(try_, ntr);
    ct_tensor *xte = to_images(tex, nte), *yte = to_labels(tey, nte);
    ct_tensor *w1 = param(hidden, 784, 784), *b1 = param(hidden, 0, 784);
    ct_tensor *w2 = param(10, hidden, hidden), *b2 = param(10, 0, hidden);
    ct_tensor *params[4] = {w1, b1, w2, b2};
    int steps = ntr / batch;
    for (int ep = 0; ep < epochs; ep++) {
        ct_tensor *perm = ct_randperm(ntr, CT_INT64, NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        double loss_sum = 0;
        for (int s = 0; s < steps; s++) {
            ct_scope_begin();
            ct_tensor *idx = ct_narrow(perm, 0, (int64_t)s * batch, batch);
            ct_tensor *x = ct_index_select(xtr, 0, idx), *y = ct_index_select(ytr, 0, idx);
            ct_tensor *logp = forward(x, w1, b1, w2, b2);
            ct_tensor *loss = ct_neg(ct_mean(ct_gather(logp, 1, y)));
            if (!loss || ct_backward(loss, NULL, false, false)) { fprintf(stderr, "demo: %s\n", ct_last_error()); return 1; }
            loss_sum += ct_item(loss);
            bool prev = ct_set_grad_enabled(false);
            for (int k = 0; k < 4; k++) {
                ct_sub_(params[k], ct_mul_scalar(ct_grad(params[k]), lr));
                ct_set_grad(params[k], NULL);
            }
            ct_set_grad_enabled(prev);
            ct_scope_end();
            if ((s + 1) % 50 == 0 || s + 1 == steps) {
                clock_gettime(CLOCK_MONOTONIC, &t1);
                double el = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
                double ips = (double)(s + 1) * batch / el;
                int w = 30, done = (int)((double)(s + 1) / steps * w);
                printf("\repoch %d/%d [%.*s%*s] %5d/%d  loss %.4f  %7.0f img/s  ETA %4.0fs", ep + 1, epochs, done,
                       "##############################", w - done, "", s + 1, steps, loss_sum / (s + 1), ips,
                       (double)(steps - s - 1) * batch / ips);
                fflush(stdout);
            }
        }
        printf("\n");
        ct_release(perm);
    }
    /* evaluate */
    bool prev = ct_set_grad_enabled(false);
    ct_scope_begin();
    ct_tensor *pred = ct_argmax(forward(xte, w1, b1, w2, b2), 1, true);
    double acc = ct_item(ct_mean(ct_to_dtype(ct_eq(pred, yte), CT_FLOAT32)));
    ct_scope_end();
    ct_set_grad_enabled(prev);
    if (!(acc >= 0)) { fprintf(stderr, "demo: evaluation failed: %s\n", ct_last_error()); return 1; }
    printf("test accuracy: %.2f%% on %d Fashion-MNIST test images\n", 100 * acc, nte);
    for (int k = 0; k < 4; k++) ct_release(params[k]);
    ct_release(xtr); ct_release(ytr); ct_release(xte); ct_release(yte);
    free(trx); free(try_); free(tex); free(tey);
    return 0;
}
