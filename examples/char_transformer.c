/* A character-level language model: a small decoder-only Transformer (GPT-like) trained
 * on English text, then sampled.
 *
 *   example_char_transformer [--data PATH] [--steps N] [--batch B] [--ctx T] [--dim D]
 *                            [--layers L] [--heads H] [--lr LR] [--eval-every N]
 *                            [--sample N] [--seed S] [--threads T]
 *
 * --data is a text file, or a directory whose regular files are concatenated (default
 * /usr/share/common-licenses: the licence texts every Debian system has, ~250 KB). The
 * last 10% of the text is held out for validation.
 *
 * The model, in PyTorch terms:
 *     tok = nn.Embedding(vocab, D); pos = nn.Embedding(T, D)
 *     enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, 4 * D, dropout=0.1,
 *               activation="gelu", batch_first=True, norm_first=True), L, nn.LayerNorm(D))
 *     head = nn.Linear(D, vocab)
 *     logits = head(enc(tok(x) + pos(arange(T)), mask=causal_mask, is_causal=True))
 * trained with AdamW on next-character cross-entropy.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <ctorch.h>

/* ---- data ---- */

static int append_file(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *nb = realloc(*buf, *len + n + 1);
        if (!nb) break;
        *buf = nb;
        memcpy(*buf + *len, chunk, n);
        *len += n;
    }
    fclose(f);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The text at path: a file, or the regular files of a directory in name order (symbolic
 * links skipped: in common-licenses they are duplicates such as GPL -> GPL-3). */
static char *read_text(const char *path, size_t *len) {
    char *buf = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    if (!S_ISDIR(st.st_mode)) {
        append_file(path, &buf, len);
        return buf;
    }
    DIR *d = opendir(path);
    if (!d) return NULL;
    char *names[1024];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 1024;) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) names[n++] = strdup(full);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        append_file(names[i], &buf, len);
        free(names[i]);
    }
    return buf;
}

/* ---- the model: a user-defined module (see ctorch/module.h) ---- */

typedef struct {
    int64_t ctx;
} lm_ctx;

/* idx [B, T] int64 -> logits [B, T, vocab] */
static ct_tensor *lm_forward(ct_module *self, ct_tensor *idx) {
    int64_t T = ct_size(idx, 1);
    ct_tensor *pos = ct_arange(0, (double)T, 1, CT_INT64);
    ct_tensor *x = ct_add(ct_module_forward(ct_module_child(self, "tok_emb"), idx),
                          ct_module_forward(ct_module_child(self, "pos_emb"), pos)); /* [B,T,D] + [T,D] */
    ct_tensor *mask = ct_nn_generate_square_subsequent_mask(T, CT_FLOAT32);
    ct_tensor *h = ct_nn_transformer_encoder_forward(ct_module_child(self, "encoder"), x, mask, NULL, 1);
    return ct_module_forward(ct_module_child(self, "head"), h);
}
static const ct_module_type CHAR_LM = {.name = "CharLM", .forward = lm_forward, .free_ctx = free};

static ct_module *char_lm_new(int64_t vocab, int64_t ctx, int64_t dim, int64_t layers, int64_t heads) {
    lm_ctx *c = malloc(sizeof *c);
    c->ctx = ctx;
    ct_module *m = ct_module_new(&CHAR_LM, c);
    ct_transformer_opts o = ct_transformer_default_opts();
    o.dim_feedforward = 4 * dim;
    o.dropout = 0.1;
    o.activation = "gelu";
    o.batch_first = true;
    o.norm_first = true; /* pre-norm: trains stably without warm-up */
    if (ct_module_add_module(m, "tok_emb", ct_nn_embedding_new(vocab, dim, CT_NO_PADDING_IDX)) ||
        ct_module_add_module(m, "pos_emb", ct_nn_embedding_new(ctx, dim, CT_NO_PADDING_IDX)) ||
        ct_module_add_module(m, "encoder",
                             ct_nn_transformer_encoder_new(ct_nn_transformer_encoder_layer_new(dim, heads, &o), layers,
                                                           ct_nn_layer_norm_new(1, &dim, 1e-5, true))) ||
        ct_module_add_module(m, "head", ct_nn_linear_new(dim, vocab, true))) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- batches ---- */

/* x = text[o : o+T], y = text[o+1 : o+T+1] for B offsets o (scope-owned tensors). */
static void make_batch(const int64_t *tok, const int64_t *offsets, int64_t B, int64_t T, ct_tensor **x, ct_tensor **y) {
    int64_t *bx = malloc(sizeof(int64_t) * (size_t)(B * T)), *by = malloc(sizeof(int64_t) * (size_t)(B * T));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            bx[b * T + t] = tok[offsets[b] + t];
            by[b * T + t] = tok[offsets[b] + t + 1];
        }
    *x = ct_from_data(bx, 2, (int64_t[]){B, T}, CT_INT64);
    *y = ct_from_data(by, 1, (int64_t[]){B * T}, CT_INT64);
    free(bx);
    free(by);
}

/* Mean next-character loss over the held-out text [start, end), in windows of T. */
static double evaluate(ct_module *lm, const int64_t *tok, int64_t start, int64_t end, int64_t B, int64_t T) {
    ct_module_eval(lm);
    bool prev = ct_set_grad_enabled(false);
    double total = 0;
    int64_t count = 0;
    int64_t *offs = malloc(sizeof(int64_t) * (size_t)B);
    for (int64_t o = start; o + T + 1 <= end;) {
        int64_t nb = 0;
        for (; nb < B && o + T + 1 <= end; nb++, o += T) offs[nb] = o;
        ct_scope_begin();
        ct_tensor *x, *y;
        make_batch(tok, offs, nb, T, &x, &y);
        ct_tensor *logits = ct_module_forward(lm, x);
        ct_tensor *loss = ct_nn_cross_entropy(ct_reshape(logits, 2, (int64_t[]){nb * T, -1}), y, NULL, -100,
                                              CT_REDUCTION_SUM, 0.0);
        total += ct_item(loss);
        count += nb * T;
        ct_scope_end();
    }
    free(offs);
    ct_set_grad_enabled(prev);
    ct_module_train(lm, true);
    return count ? total / (double)count : NAN;
}

/* Generates n characters after prompt, sampling at temperature 0.8. */
static void sample(ct_module *lm, const char *prompt, int n, int64_t T, const unsigned char *itos, const int *stoi,
                   int64_t vocab) {
    ct_module_eval(lm);
    bool prev = ct_set_grad_enabled(false);
    int64_t len = (int64_t)strlen(prompt), cap = len + n;
    int64_t *seq = malloc(sizeof(int64_t) * (size_t)cap);
    for (int64_t i = 0; i < len; i++) seq[i] = stoi[(unsigned char)prompt[i]] >= 0 ? stoi[(unsigned char)prompt[i]] : 0;
    printf("%s", prompt);
    float *p = malloc(sizeof(float) * (size_t)vocab);
    for (int i = 0; i < n; i++) {
        ct_scope_begin();
        int64_t t = len < T ? len : T;
        ct_tensor *x = ct_from_data(seq + len - t, 2, (int64_t[]){1, t}, CT_INT64);
        ct_tensor *logits = ct_select(ct_select(ct_module_forward(lm, x), 0, 0), 0, t - 1); /* [vocab] */
        ct_tensor *probs = ct_softmax(ct_div_scalar(logits, 0.8), 0, CT_NUM_DTYPES);
        ct_copy_to_buffer(probs, p, sizeof(float) * (size_t)vocab, CT_FLOAT32);
        double u = ct_item(ct_rand(1, (int64_t[]){1}, CT_FLOAT64, NULL)), acc = 0;
        int64_t c = vocab - 1;
        for (int64_t k = 0; k < vocab; k++)
            if ((acc += p[k]) > u) {
                c = k;
                break;
            }
        seq[len++] = c;
        putchar(itos[c]);
        ct_scope_end();
    }
    printf("\n");
    free(p);
    free(seq);
    ct_set_grad_enabled(prev);
    ct_module_train(lm, true);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *data = "/usr/share/common-licenses";
    int steps = 600, eval_every = 100, n_sample = 400, threads = 0;
    int64_t B = 32, T = 64, D = 96, L = 2, H = 4;
    double lr = 2e-3;
    unsigned long long seed = 1337;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !v) {
            printf("usage: %s [--data PATH] [--steps N] [--batch B] [--ctx T] [--dim D] [--layers L] [--heads H]\n"
                   "          [--lr LR] [--eval-every N] [--sample N] [--seed S] [--threads T]\n", argv[0]);
            return strcmp(a, "--help") && strcmp(a, "-h") ? 2 : 0;
        }
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoll(v);
        else if (!strcmp(a, "--ctx")) T = atoll(v);
        else if (!strcmp(a, "--dim")) D = atoll(v);
        else if (!strcmp(a, "--layers")) L = atoll(v);
        else if (!strcmp(a, "--heads")) H = atoll(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--eval-every")) eval_every = atoi(v);
        else if (!strcmp(a, "--sample")) n_sample = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (threads > 0) ct_set_num_threads(threads);
    ct_manual_seed(seed);

    /* text -> character ids */
    size_t n_chars;
    char *text = read_text(data, &n_chars);
    if (!text || n_chars < (size_t)(4 * T)) {
        fprintf(stderr, "cannot read enough text from %s (pass --data FILE_OR_DIR)\n", data);
        return 1;
    }
    int stoi[256];
    unsigned char itos[256];
    int64_t vocab = 0;
    for (int c = 0; c < 256; c++) stoi[c] = -1;
    for (size_t i = 0; i < n_chars; i++) stoi[(unsigned char)text[i]] = 1;
    for (int c = 0; c < 256; c++)
        if (stoi[c] == 1) itos[vocab] = (unsigned char)c, stoi[c] = (int)vocab++;
    int64_t *tok = malloc(sizeof(int64_t) * n_chars);
    for (size_t i = 0; i < n_chars; i++) tok[i] = stoi[(unsigned char)text[i]];
    int64_t n = (int64_t)n_chars, n_train = n * 9 / 10;
    printf("data: %s, %lld characters (%lld train, %lld validation), vocabulary %lld\n", data, (long long)n,
           (long long)n_train, (long long)(n - n_train), (long long)vocab);

    ct_module *lm = char_lm_new(vocab, T, D, L, H);
    if (!lm) {
        fprintf(stderr, "model: %s\n", ct_last_error());
        return 1;
    }
    printf("model: %lld layers, d_model %lld, %lld heads, context %lld: %lld parameters\n", (long long)L, (long long)D,
           (long long)H, (long long)T, (long long)ct_module_num_parameters(lm, false));
    ct_dict *params = ct_module_named_parameters(lm);
    ct_optimizer *opt = ct_optim_adamw_new(params, lr, 0.9, 0.99, 1e-8, 0.01, false, false);
    ct_scheduler *sched = ct_sched_cosine_annealing_lr_new(opt, steps, lr / 10);

    double loss0 = evaluate(lm, tok, n_train, n, B, T);
    printf("step %5d  val loss %.4f  (uniform guess: %.4f)\n", 0, loss0, log((double)vocab));
    double t0 = seconds(), running = 0;
    int64_t *offs = malloc(sizeof(int64_t) * (size_t)B);
    int log_every = eval_every / 5 > 0 ? eval_every / 5 : 1;
    for (int step = 1; step <= steps; step++) {
        ct_scope_begin(); /* everything of this step is released at its end */
        ct_tensor *o = ct_randint(0, n_train - T - 1, 1, &B, CT_INT64, NULL);
        ct_copy_to_buffer(o, offs, sizeof(int64_t) * (size_t)B, CT_INT64);
        ct_tensor *x, *y;
        make_batch(tok, offs, B, T, &x, &y);
        ct_tensor *logits = ct_module_forward(lm, x);
        ct_tensor *loss = ct_nn_cross_entropy(ct_reshape(logits, 2, (int64_t[]){B * T, vocab}), y, NULL, -100,
                                              CT_REDUCTION_MEAN, 0.0);
        if (!loss || ct_backward(loss, NULL, false, false)) {
            fprintf(stderr, "step %d: %s\n", step, ct_last_error());
            return 1;
        }
        ct_nn_utils_clip_grad_norm_(params, 1.0, 2.0, false);
        ct_optim_step(opt);
        ct_optim_zero_grad(opt, true);
        ct_sched_step(sched);
        running += ct_item(loss);
        ct_scope_end();
        if (step % log_every == 0) {
            printf("step %5d  train loss %.4f  %.1f s\n", step, running / log_every, seconds() - t0);
            fflush(stdout);
            running = 0;
        }
        if (step % eval_every == 0 || step == steps) {
            double vl = evaluate(lm, tok, n_train, n, B, T);
            printf("step %5d  val loss %.4f  perplexity %.2f\n", step, vl, exp(vl));
            fflush(stdout);
        }
    }
    double train_s = seconds() - t0;
    double vl = evaluate(lm, tok, n_train, n, B, T);
    printf("done: %d steps in %.1f s (%.0f ms/step); validation loss %.4f, perplexity %.2f\n\n", steps, train_s,
           1e3 * train_s / steps, vl, exp(vl));
    sample(lm, "The ", n_sample, T, itos, stoi, vocab);

    free(offs);
    ct_sched_free(sched);
    ct_optim_free(opt);
    ct_dict_free(params);
    ct_module_free(lm);
    free(tok);
    free(text);
    return 0;
}
