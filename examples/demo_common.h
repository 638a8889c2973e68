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

/* ---- data: IDX files through the library's reader (gzip or plain) ---- */
static inline ct_tensor *read_idx_any(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_tensor *t = ct_data_read_idx(path);
    if (!t) fprintf(stderr, "demo: %s\n", ct_last_error());
    return t;
}

/* images [n, 1, 28, 28] float32, normalised like torchvision (Fashion-MNIST mean/std);
 * labels [n] int64 (caller's references). train: the train-* files, else t10k-*. */
static inline int load_split(const char *dir, bool train, int64_t limit, ct_tensor **x, ct_tensor **y) {
    *x = *y = NULL;
    ct_scope_begin();
    ct_tensor *img = read_idx_any(dir, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
    ct_tensor *lab = img ? read_idx_any(dir, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte") : NULL;
    int rc = -1;
    if (img && lab && ct_ndim(img) == 3 && ct_size(img, 1) == 28 && ct_size(img, 2) == 28 && ct_ndim(lab) == 1 &&
        ct_size(lab, 0) == ct_size(img, 0)) {
        int64_t n = ct_size(img, 0);
        if (limit > 0 && limit < n) n = limit;
        ct_tensor *f = ct_div_scalar(ct_sub_scalar(ct_div_scalar(ct_to_dtype(ct_narrow(img, 0, 0, n), CT_FLOAT32), 255.0),
                                                  0.2860), 0.3530);
        *x = ct_keep(ct_contiguous(ct_reshape(f, CT_SHAPE(n, 1, 28, 28))));
        *y = ct_keep(ct_contiguous(ct_to_dtype(ct_narrow(lab, 0, 0, n), CT_INT64)));
        rc = *x && *y ? 0 : -1;
    }
    ct_scope_end();
    return rc;
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
