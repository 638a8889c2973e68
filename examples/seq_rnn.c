/* seq_rnn: a recurrent sequence classifier. Each Fashion-MNIST image is read row by row,
 * as a sequence of 28 steps of 28 pixels, by an LSTM (or a GRU); a Linear layer maps the
 * last hidden state to the 10 classes. Trained with Adam on mini-batches drawn by a
 * DataLoader, evaluated on the 10k test images after every epoch.
 *
 *   example_seq_rnn [--data DIR] [--epochs N] [--limit N] [--cell lstm|gru] [--hidden H]
 *                   [--batch B] [--lr LR] [--seed S] [--threads T]
 *
 * --limit N trains on the first N training images only (a quick run); DIR holds
 * train-images-idx3-ubyte.gz etc. (Debian: dataset-fashion-mnist). The PyTorch model
 * is the same:
 *
 *   class RowRNN(nn.Module):
 *       def __init__(self, hidden=128):
 *           super().__init__()
 *           self.rnn = nn.LSTM(28, hidden, batch_first=True)
 *           self.fc = nn.Linear(hidden, 10)
 *       def forward(self, images):                  # [B, 1, 28, 28]
 *           out, (h_n, c_n) = self.rnn(images.view(-1, 28, 28))
 *           return self.fc(h_n[-1])
 *
 * and since ctorch draws initial weights exactly as PyTorch does, torch.manual_seed(S)
 * followed by RowRNN() gives the same starting weights as --seed S here. */
#include "demo_common.h"

/* ---- the model: a user-defined module with two children, "rnn" and "fc" ---- */
static ct_tensor *row_rnn_forward(ct_module *self, ct_tensor *images) {
    /* [B, 1, 28, 28] -> [B, 28, 28]: batch first, 28 time steps (rows) of 28 features */
    ct_tensor *x = ct_reshape(images, 3, (int64_t[]){ct_size(images, 0), 28, 28});
    /* an LSTM gives (output, h_n, c_n), a GRU (output, h_n); initial states: zeros */
    ct_tensor *outs[3];
    if (ct_module_forward_n(ct_module_child(self, "rnn"), 1, &x, 3, outs) < 0) return NULL;
    ct_tensor *h_n = outs[1]; /* [num_layers, B, hidden] */
    ct_tensor *last = ct_select(h_n, 0, ct_size(h_n, 0) - 1);
    return ct_module_forward(ct_module_child(self, "fc"), last);
}
static const ct_module_type ROW_RNN = {.name = "RowRNN", .forward = row_rnn_forward};

static ct_module *row_rnn_new(bool gru, int64_t hidden) {
    ct_module *m = ct_module_new(&ROW_RNN, NULL);
    ct_module *rnn = gru ? ct_nn_gru_new(28, hidden, 1, true, true, 0.0, false)
                         : ct_nn_lstm_new(28, hidden, 1, true, true, 0.0, false, 0);
    if (ct_module_add_module(m, "rnn", rnn) || ct_module_add_module(m, "fc", ct_nn_linear_new(hidden, 10, true))) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist", *cell = "lstm";
    int epochs = 1, batch = 64, threads = 0;
    int64_t limit = 0, hidden = 128;
    uint64_t seed = 0;
    double lr = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !v) {
            printf("usage: %s [--data DIR] [--epochs N] [--limit N] [--cell lstm|gru] [--hidden H] [--batch B] "
                   "[--lr LR] [--seed S] [--threads T]\n", argv[0]);
            return strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0;
        }
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--limit")) limit = atoll(v);
        else if (!strcmp(a, "--cell")) cell = v;
        else if (!strcmp(a, "--hidden")) hidden = atoll(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else { fprintf(stderr, "seq_rnn: unknown option %s\n", a); return 2; }
        i++;
    }
    if (epochs < 1 || batch < 1 || hidden < 1 || (strcmp(cell, "lstm") && strcmp(cell, "gru"))) {
        fprintf(stderr, "seq_rnn: bad options (epochs, batch, hidden >= 1; cell lstm or gru)\n");
        return 2;
    }
    if (threads > 0) ct_set_num_threads(threads);
    ct_manual_seed(seed);

    /* data: images [n, 1, 28, 28] float32 (normalised), labels [n] int64 */
    ct_tensor *xtr, *ytr, *xte, *yte;
    if (load_split(dir, true, limit, &xtr, &ytr) || load_split(dir, false, 0, &xte, &yte)) {
        fprintf(stderr, "seq_rnn: could not read the dataset from %s (install the Debian package "
                        "dataset-fashion-mnist or pass --data DIR)\n", dir);
        return 1;
    }
    ct_dataset *train_set = ct_data_tensor_dataset_new(2, (ct_tensor *[]){xtr, ytr});
    ct_generator *gen = ct_generator_new(seed); /* the shuffle order */
    ct_data_loader *loader = ct_data_loader_new(train_set, &(ct_loader_opts){.batch_size = batch, .shuffle = true,
                                                                            .generator = gen});

    ct_module *net = row_rnn_new(strcmp(cell, "gru") == 0, hidden);
    if (!net || !loader) { fprintf(stderr, "seq_rnn: %s\n", ct_last_error()); return 1; }
    char *repr = ct_module_repr(net);
    printf("ctorch %s, %d threads; %lld parameters\n%s\n", ct_version(), ct_get_num_threads(),
           (long long)ct_module_num_parameters(net, false), repr);
    free(repr);
    int64_t ntr = ct_size(xtr, 0);
    printf("data: %lld training images (%lld batches of %d), %lld test images, read as 28 steps of 28 pixels\n",
           (long long)ntr, (long long)ct_data_loader_len(loader), batch, (long long)ct_size(xte, 0));

    ct_dict *params = ct_module_named_parameters(net);
    ct_optimizer *opt = ct_optim_adam_new(params, lr, 0.9, 0.999, 1e-8, 0.0, false, false);
    if (!opt) { fprintf(stderr, "seq_rnn: %s\n", ct_last_error()); return 1; }
    double t_start = demo_now(), test_acc = 0, test_loss = 0;
    for (int ep = 0; ep < epochs; ep++) {
        ct_module_train(net, true);
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", ep + 1, epochs);
        progress bar = {.total = ntr, .t0 = demo_now(), .tty = isatty(1), .label = label};
        double sum_loss = 0, run_loss = 0;
        int64_t seen = 0, correct = 0;
        for (;;) {
            ct_scope_begin(); /* everything made for this batch is freed at ct_scope_end */
            ct_tensor *xy[2];
            int got = ct_data_loader_next(loader, xy); /* 1: a batch, 0: end of the epoch */
            if (got <= 0) {
                ct_scope_end();
                if (got < 0) { fprintf(stderr, "\nseq_rnn: %s\n", ct_last_error()); return 1; }
                break;
            }
            ct_tensor *logits = ct_module_forward(net, xy[0]);
            ct_tensor *loss = ct_nn_cross_entropy(logits, xy[1], NULL, -100, CT_REDUCTION_MEAN, 0.0);
            if (!loss || ct_optim_zero_grad(opt, true) || ct_backward(loss, NULL, false, false) || ct_optim_step(opt)) {
                fprintf(stderr, "\nseq_rnn: training failed: %s\n", ct_last_error());
                return 1;
            }
            int64_t len = ct_size(xy[0], 0);
            double l = ct_item(loss);
            sum_loss += l * (double)len;
            run_loss = seen ? 0.95 * run_loss + 0.05 * l : l;
            correct += (int64_t)ct_item(ct_sum(ct_eq(ct_argmax(logits, 1, false), xy[1])));
            seen += len;
            ct_scope_end();
            progress_show(&bar, seen, run_loss, false);
        }
        progress_show(&bar, seen, sum_loss / (double)seen, true);
        demo_evaluate(net, xte, yte, &test_acc, &test_loss); /* eval mode, no grad */
        printf("epoch %d: train loss %.4f, train accuracy %.2f%%, test loss %.4f, test accuracy %.2f%%, %.1f s\n",
               ep + 1, sum_loss / (double)seen, 100.0 * (double)correct / (double)seen, test_loss, test_acc,
               demo_now() - t_start);
    }
    printf("ctorch %s(28, %lld) + Linear: test accuracy %.2f%% after %d epoch%s on %lld images in %.1f s\n",
           strcmp(cell, "gru") ? "LSTM" : "GRU", (long long)hidden, test_acc, epochs, epochs > 1 ? "s" : "",
           (long long)ntr, demo_now() - t_start);

    ct_optim_free(opt);
    ct_dict_free(params);
    ct_module_free(net);
    ct_data_loader_free(loader);
    ct_data_dataset_free(train_set);
    ct_generator_free(gen);
    ct_release(xtr), ct_release(ytr), ct_release(xte), ct_release(yte);
    return 0;
}
