/* demo_common.h — the pieces the demo and the MNIST training test share: IDX
 * reading (gzip or plain), the demo's models, a progress bar and evaluation. Header-only
 * (static functions), for the examples and tests. */
#ifndef CT_DEMO_COMMON_H
#define CT_DEMO_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <ctorch.h>

/* ---- data: IDX files (gzip or plain, read through zlib) ---- */
static inline unsigned char *read_idx(const char *dir, const char *name, int64_t *n_out, int64_t *item_out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)(strlen(name) - 3), name); /* without .gz */
        f = gzopen(path, "rb");
    }
    if (!f) { fprintf(stderr, "demo: cannot open %s/%s\n", dir, name); return NULL; }
    unsigned char hdr[4];
    if (gzread(f, hdr, 4) != 4 || hdr[0] || hdr[1] || hdr[2] != 0x08 || hdr[3] < 1 || hdr[3] > 3) {
        fprintf(stderr, "demo: %s is not an IDX file of unsigned bytes\n", path);
        gzclose(f);
        return NULL;
    }
    int64_t dims[3] = {1, 1, 1}, item = 1;
    for (int d = 0; d < hdr[3]; d++) {
        unsigned char b[4];
        if (gzread(f, b, 4) != 4) { gzclose(f); return NULL; }
        dims[d] = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        if (d) item *= dims[d];
    }
    if (dims[0] <= 0 || dims[0] > 10000000 || item <= 0 || item > 1 << 20) { gzclose(f); return NULL; }
    size_t bytes = (size_t)dims[0] * (size_t)item;
    unsigned char *buf = malloc(bytes);
    if (!buf || gzread(f, buf, (unsigned)bytes) != (int)bytes) {
        free(buf);
        gzclose(f);
        fprintf(stderr, "demo: short read in %s\n", path);
        return NULL;
    }
    gzclose(f);
    *n_out = dims[0];
    *item_out = item;
    return buf;
}

/* images [n, 1, 28, 28] float32, normalised like torchvision (Fashion-MNIST mean/std);
 * labels [n] int64. train: the train-* files, else t10k-*. */
static inline int load_split(const char *dir, bool train, int64_t limit, ct_tensor **x, ct_tensor **y) {
    int64_t n, item, nl, il;
    unsigned char *px = read_idx(dir, train ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz", &n, &item);
    unsigned char *lb = px ? read_idx(dir, train ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz", &nl, &il)
                           : NULL;
    if (!px || !lb || item != 784 || nl != n) {
        free(px);
        free(lb);
        return -1;
    }
    if (limit > 0 && limit < n) n = limit;
    float *f = malloc(sizeof(float) * (size_t)n * 784);
    int64_t *l = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; f && i < n * 784; i++) f[i] = ((float)px[i] / 255.0f - 0.2860f) / 0.3530f;
    for (int64_t i = 0; l && i < n; i++) l[i] = lb[i];
    *x = f ? ct_from_data(f, CT_SHAPE(n, 1, 28, 28), CT_FLOAT32) : NULL;
    *y = l ? ct_from_data(l, CT_SHAPE(n), CT_INT64) : NULL;
    free(f);
    free(l);
    free(px);
    free(lb);
    return *x && *y ? 0 : -1;
}

/* ---- the models (the same as examples/demo_torch.py) ---- */
static inline ct_module *demo_cnn(void) {
    ct_conv_opts pad1 = {.padding = {1, 1}};
    return ct_nn_sequential(CT_MODULES(
        ct_nn_conv2d_new(1, 32, (int64_t[]){3, 3}, &pad1, true), ct_nn_batch_norm2d_new(32, 1e-5, 0.1, true, true),
        ct_nn_relu_new(), ct_nn_max_pool2d_new((int64_t[]){2, 2}, NULL),
        ct_nn_conv2d_new(32, 64, (int64_t[]){3, 3}, &pad1, true), ct_nn_batch_norm2d_new(64, 1e-5, 0.1, true, true),
        ct_nn_relu_new(), ct_nn_max_pool2d_new((int64_t[]){2, 2}, NULL), ct_nn_flatten_new(1, -1),
        ct_nn_linear_new(64 * 7 * 7, 128, true), ct_nn_relu_new(), ct_nn_dropout_new(0.25),
        ct_nn_linear_new(128, 10, true)));
}

static inline ct_module *demo_mlp(void) {
    return ct_nn_sequential(CT_MODULES(ct_nn_flatten_new(1, -1), ct_nn_linear_new(784, 256, true), ct_nn_relu_new(),
                                       ct_nn_linear_new(256, 10, true)));
}

/* ---- a progress bar: count, %, images/s, loss, ETA; redrawn in place on a terminal ---- */
typedef struct {
    int64_t total;
    double t0, last;
    bool tty;
    const char *label;
} progress;

static inline double demo_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline void progress_show(progress *p, int64_t done, double loss, bool final) {
    double t = demo_now(), el = t - p->t0;
    if (!final && t - p->last < (p->tty ? 0.1 : 10.0)) return;
    p->last = t;
    double rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(p->total - done) / rate : 0;
    int width = 28, fill = p->total ? (int)(width * done / p->total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    printf("%s%s [%s] %6lld/%lld %3d%% | %6.0f img/s | loss %.4f | %s %4.0fs%s", p->tty ? "\r" : "", p->label, bar,
           (long long)done, (long long)p->total, (int)(100 * done / (p->total ? p->total : 1)), rate, loss,
           final ? "took" : "ETA", final ? el : eta, p->tty && !final ? "" : "\n");
    fflush(stdout);
}

/* accuracy (%) and mean loss of model on (x, y), in eval mode without grad */
static inline void demo_evaluate(ct_module *m, ct_tensor *x, ct_tensor *y, double *acc, double *loss) {
    ct_module_eval(m);
    bool prev = ct_set_grad_enabled(false);
    int64_t n = ct_size(x, 0), correct = 0;
    double total = 0;
    for (int64_t i = 0; i < n; i += 1000) {
        ct_scope_begin();
        int64_t len = n - i < 1000 ? n - i : 1000;
        ct_tensor *xb = ct_narrow(x, 0, i, len), *yb = ct_narrow(y, 0, i, len);
        ct_tensor *logits = ct_module_forward(m, xb);
        total += ct_item(ct_nn_cross_entropy(logits, yb, NULL, -100, CT_REDUCTION_SUM, 0.0));
        correct += (int64_t)ct_item(ct_sum(ct_eq(ct_argmax(logits, 1, false), yb)));
        ct_scope_end();
    }
    ct_set_grad_enabled(prev);
    *acc = 100.0 * (double)correct / (double)n;
    *loss = total / (double)n;
}

#endif
