/* demo: trains a small CNN on Fashion-MNIST (60k training images) with a live progress
 * bar, evaluates on the 10k test images after every epoch, saves the model as
 * safetensors and draws the loss and accuracy curves as an SVG picture.
 * examples/demo_torch.py is the same job in PyTorch (README: "The main job").
 *
 *   example_demo [--data DIR] [--epochs N] [--model cnn|mlp] [--batch B] [--lr LR]
 *                [--limit N] [--seed S] [--threads T] [--out DIR]
 *
 * DIR holds train-images-idx3-ubyte.gz etc. (Debian: dataset-fashion-mnist, or the
 * MNIST files). The model is written to OUT/<model>.safetensors (loadable with
 * safetensors.torch.load_file into the PyTorch twin) and the curves to
 * OUT/<model>_curves.svg. */
#include "curves.h"
#include "demo_common.h"

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist", *model_name = "cnn", *out = ".";
    int epochs = 5, batch = 64, threads = 0;
    int64_t limit = 0;
    uint64_t seed = 0;
    double lr = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !v) {
            printf("usage: %s [--data DIR] [--epochs N] [--model cnn|mlp] [--batch B] [--lr LR] [--limit N] "
                   "[--seed S] [--threads T] [--out DIR]\n", argv[0]);
            return strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0;
        }
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--model")) model_name = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--limit")) limit = atoll(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--out")) out = v;
        else { fprintf(stderr, "demo: unknown option %s\n", a); return 2; }
        i++;
    }
    if (epochs < 1 || batch < 1 || (strcmp(model_name, "cnn") && strcmp(model_name, "mlp"))) {
        fprintf(stderr, "demo: bad options (epochs >= 1, batch >= 1, model cnn or mlp)\n");
        return 2;
    }
    if (threads > 0) ct_set_num_threads(threads);
    ct_manual_seed(seed);

    ct_tensor *xtr, *ytr, *xte, *yte;
    if (load_split(dir, true, limit, &xtr, &ytr) || load_split(dir, false, 0, &xte, &yte)) {
        fprintf(stderr, "demo: could not read the dataset from %s (install the Debian package "
                        "dataset-fashion-mnist or pass --data DIR)\n", dir);
        return 1;
    }
    ct_module *net = strcmp(model_name, "cnn") == 0 ? demo_cnn() : demo_mlp();
    if (!net) { fprintf(stderr, "demo: %s\n", ct_last_error()); return 1; }
    char *repr = ct_module_repr(net);
    printf("ctorch %s, %d threads; %s: %lld parameters\n%s\n", ct_version(), ct_get_num_threads(), model_name,
           (long long)ct_module_num_parameters(net, false), repr);
    free(repr);
    int64_t ntr = ct_size(xtr, 0);
    printf("data: %lld training and %lld test images from %s\n", (long long)ntr, (long long)ct_size(xte, 0), dir);

    ct_dict *params = ct_module_named_parameters(net);
    ct_optimizer *opt = ct_optim_adam_new(params, lr, 0.9, 0.999, 1e-8, 0.0, false, false);
    ct_scheduler *sched = ct_sched_cosine_annealing_lr_new(opt, epochs, 0.0);
    ct_generator *gen = ct_generator_new(seed);
    double *tr_loss = calloc((size_t)epochs, sizeof(double)), *tr_acc = calloc((size_t)epochs, sizeof(double));
    double *te_loss = calloc((size_t)epochs, sizeof(double)), *te_acc = calloc((size_t)epochs, sizeof(double));
    if (!opt || !sched || !gen || !tr_loss || !tr_acc || !te_loss || !te_acc) {
        fprintf(stderr, "demo: %s\n", ct_last_error());
        return 1;
    }
    double t_start = demo_now();
    for (int ep = 0; ep < epochs; ep++) {
        ct_module_train(net, true);
        ct_tensor *perm = ct_randperm(ntr, CT_INT64, gen); /* the epoch's shuffle */
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", ep + 1, epochs);
        progress bar = {.total = ntr, .t0 = demo_now(), .tty = isatty(1), .label = label};
        double sum_loss = 0, run_loss = 0;
        int64_t seen = 0, correct = 0;
        for (int64_t i = 0; i < ntr; i += batch) {
            ct_scope_begin();
            int64_t len = ntr - i < batch ? ntr - i : batch;
            ct_tensor *idx = ct_narrow(perm, 0, i, len);
            ct_tensor *xb = ct_index_select(xtr, 0, idx), *yb = ct_index_select(ytr, 0, idx);
            ct_tensor *logits = ct_module_forward(net, xb);
            ct_tensor *loss = ct_nn_cross_entropy(logits, yb, NULL, -100, CT_REDUCTION_MEAN, 0.0);
            if (!loss || ct_optim_zero_grad(opt, true) || ct_backward(loss, NULL, false, false) || ct_optim_step(opt)) {
                fprintf(stderr, "\ndemo: training failed: %s\n", ct_last_error());
                return 1;
            }
            double l = ct_item(loss);
            sum_loss += l * (double)len;
            run_loss = seen ? 0.95 * run_loss + 0.05 * l : l;
            correct += (int64_t)ct_item(ct_sum(ct_eq(ct_argmax(logits, 1, false), yb)));
            seen += len;
            ct_scope_end();
            progress_show(&bar, seen, run_loss, false);
        }
        progress_show(&bar, seen, sum_loss / (double)seen, true);
        ct_release(perm);
        ct_sched_step(sched);
        tr_loss[ep] = sum_loss / (double)seen;
        tr_acc[ep] = 100.0 * (double)correct / (double)seen;
        demo_evaluate(net, xte, yte, &te_acc[ep], &te_loss[ep]);
        printf("epoch %d: train loss %.4f, train accuracy %.2f%%, test loss %.4f, test accuracy %.2f%%, %.1f s\n",
               ep + 1, tr_loss[ep], tr_acc[ep], te_loss[ep], te_acc[ep], demo_now() - t_start);
    }
    double took = demo_now() - t_start;
    printf("ctorch: test accuracy %.2f%% after %d epochs in %.1f s\n", te_acc[epochs - 1], epochs, took);

    char path[1200];
    snprintf(path, sizeof path, "%s/fashion_%s.safetensors", out, model_name);
    ct_dict *sd = ct_module_state_dict(net);
    ct_dict_set_meta(sd, "model", model_name);
    if (!sd || ct_safetensors_save(sd, path)) fprintf(stderr, "demo: saving %s failed: %s\n", path, ct_last_error());
    else printf("saved the model to %s\n", path);
    ct_dict_free(sd);
    snprintf(path, sizeof path, "%s/fashion_%s_curves.svg", out, model_name);
    char title[160];
    snprintf(title, sizeof title, "ctorch %s on Fashion-MNIST: %.2f%% test accuracy after %d epochs (%.0f s)", model_name,
             te_acc[epochs - 1], epochs, took);
    if (write_training_svg(path, title, epochs, tr_loss, te_loss, tr_acc, te_acc)) perror("demo: writing the curves");
    else printf("drew the loss and accuracy curves in %s\n", path);

    free(tr_loss), free(tr_acc), free(te_loss), free(te_acc);
    ct_generator_free(gen);
    ct_sched_free(sched);
    ct_optim_free(opt);
    ct_dict_free(params);
    ct_module_free(net);
    ct_release(xtr), ct_release(ytr), ct_release(xte), ct_release(yte);
    return 0;
}
