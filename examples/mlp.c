/* An MLP on Fashion-MNIST through the data API: a TensorDataset, a DataLoader that
 * shuffles with a seed and builds batches on a worker thread while the model trains,
 * SGD with Nesterov momentum under a OneCycleLR schedule, and a checkpoint at the end
 * (model, optimizer, scheduler, RNG state and epoch) from which training can resume.
 *
 *   example_mlp [--data DIR] [--epochs N] [--batch B] [--lr MAX_LR] [--workers W]
 *               [--limit N] [--out DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctorch.h>

#include "demo_common.h"

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist", *out = ".";
    int epochs = 3, batch = 64, workers = 1;
    double max_lr = 0.1;
    int64_t limit = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || !strcmp(a, "--help")) {
            printf("usage: %s [--data DIR] [--epochs N] [--batch B] [--lr MAX_LR] [--workers W] [--limit N] "
                   "[--out DIR]\n", argv[0]);
            return v ? 0 : 2;
        }
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) max_lr = atof(v);
        else if (!strcmp(a, "--workers")) workers = atoi(v);
        else if (!strcmp(a, "--limit")) limit = atoll(v);
        else if (!strcmp(a, "--out")) out = v;
    }
    if (epochs < 1 || batch < 1 || workers < 0) {
        fprintf(stderr, "mlp: bad options\n");
        return 2;
    }
    ct_manual_seed(0);
    ct_tensor *xtr, *ytr, *xte, *yte;
    if (load_split(dir, true, limit, &xtr, &ytr) || load_split(dir, false, 0, &xte, &yte)) {
        fprintf(stderr, "mlp: no Fashion-MNIST under %s (Debian package dataset-fashion-mnist, or --data DIR)\n", dir);
        return 1;
    }
    /* the data: (image, label) pairs, batched by a loader with its own shuffle generator */
    ct_dataset *train = ct_data_tensor_dataset_new(2, (ct_tensor *[]){xtr, ytr});
    ct_generator *shuffle = ct_generator_new(0);
    ct_data_loader *loader = ct_data_loader_new(
        train, &(ct_loader_opts){.batch_size = batch, .shuffle = true, .generator = shuffle, .num_workers = workers});
    /* the model: Flatten -> Linear(784, 256) -> ReLU -> Linear(256, 10) */
    ct_module *net = demo_mlp();
    ct_dict *params = ct_module_named_parameters(net);
    ct_optimizer *opt = ct_optim_sgd_new(params, max_lr, 0.9, 0.0, 5e-4, true, false);
    int64_t steps = ct_data_loader_len(loader) * epochs;
    ct_scheduler *sched = ct_sched_one_cycle_lr_new(opt, 1, &max_lr, steps, NULL); /* per batch, like torch */
    if (!train || !loader || !net || !opt || !sched) {
        fprintf(stderr, "mlp: %s\n", ct_last_error());
        return 1;
    }
    char *repr = ct_module_repr(net);
    printf("%s\n%lld parameters; %lld training images, %d worker thread(s)\n", repr,
           (long long)ct_module_num_parameters(net, false), (long long)ct_size(xtr, 0), workers);
    free(repr);

    double t0 = demo_now(), acc = 0, test_loss = 0;
    for (int ep = 0; ep < epochs; ep++) {
        ct_module_train(net, true);
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", ep + 1, epochs);
        progress bar = {.total = ct_size(xtr, 0), .t0 = demo_now(), .tty = isatty(1), .label = label};
        ct_tensor *b[2];
        int64_t seen = 0;
        double run = 0;
        int rc;
        for (;;) {
            ct_scope_begin(); /* owns the batch and everything computed from it */
            if ((rc = ct_data_loader_next(loader, b)) != 1) {
                ct_scope_end();
                break;
            }
            ct_tensor *loss = ct_nn_cross_entropy(ct_module_forward(net, b[0]), b[1], NULL, -100, CT_REDUCTION_MEAN, 0);
            if (!loss || ct_optim_zero_grad(opt, true) || ct_backward(loss, NULL, false, false) ||
                ct_optim_step(opt) || ct_sched_step(sched)) {
                fprintf(stderr, "\nmlp: %s\n", ct_last_error());
                return 1;
            }
            run = seen ? 0.95 * run + 0.05 * ct_item(loss) : ct_item(loss);
            seen += ct_size(b[1], 0);
            ct_scope_end();
            progress_show(&bar, seen, run, false);
        }
        if (rc < 0) {
            fprintf(stderr, "mlp: loading failed: %s\n", ct_last_error());
            return 1;
        }
        progress_show(&bar, seen, run, true);
        demo_evaluate(net, xte, yte, &acc, &test_loss);
        printf("epoch %d: test loss %.4f, test accuracy %.2f%%, lr now %.5f\n", ep + 1, test_loss, acc,
               ct_sched_get_last_lr(sched, 0));
    }
    printf("mlp: test accuracy %.2f%% after %d epochs in %.1f s\n", acc, epochs, demo_now() - t0);

    char path[1100];
    snprintf(path, sizeof path, "%s/fashion_mlp.ckpt", out);
    if (ct_checkpoint_save(path, net, opt, sched, NULL, epochs))
        fprintf(stderr, "mlp: saving the checkpoint failed: %s\n", ct_last_error());
    else
        printf("saved a checkpoint (model, optimizer, scheduler, RNG, epoch) to %s\n", path);

    ct_sched_free(sched);
    ct_optim_free(opt);
    ct_dict_free(params);
    ct_module_free(net);
    ct_data_loader_free(loader);
    ct_generator_free(shuffle);
    ct_data_dataset_free(train);
    ct_release(xtr), ct_release(ytr), ct_release(xte), ct_release(yte);
    return 0;
}
