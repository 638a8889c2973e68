/* Training checkpoints (include/ctorch/io.h): the model, optimizer and scheduler
 * state dicts, the generator state and the epoch in one safetensors file, so that
 * training resumes bit for bit. */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "ctorch/io.h"
#include "ctorch/module.h"
#include "ctorch/optim.h"
#include "ctorch/random.h"

/* Copies src's entries into dst under prefix (tensors shared) and its metadata under
 * prefix too. */
static int merge(ct_dict *dst, const ct_dict *src, const char *prefix) {
    char key[1024];
    for (int64_t i = 0; i < ct_dict_size(src); i++) {
        snprintf(key, sizeof key, "%s%s", prefix, ct_dict_key(src, i));
        ct_scope_begin();
        int st = ct_dict_set(dst, key, ct_dict_value(src, i));
        ct_scope_end();
        if (st) return st;
    }
    for (int64_t i = 0; i < ct_dict_meta_size(src); i++) {
        snprintf(key, sizeof key, "%s%s", prefix, ct_dict_meta_key(src, i));
        int st = ct_dict_set_meta(dst, key, ct_dict_meta_value(src, i));
        if (st) return st;
    }
    return 0;
}

/* The entries of src under prefix, prefix removed (a new dict). */
static ct_dict *split(const ct_dict *src, const char *prefix) {
    ct_dict *d = ct_dict_new();
    size_t pl = strlen(prefix);
    for (int64_t i = 0; d && i < ct_dict_size(src); i++) {
        const char *k = ct_dict_key(src, i);
        if (strncmp(k, prefix, pl) != 0) continue;
        ct_scope_begin();
        int st = ct_dict_set(d, k + pl, ct_dict_value(src, i));
        ct_scope_end();
        if (st) { ct_dict_free(d); return NULL; }
    }
    for (int64_t i = 0; d && i < ct_dict_meta_size(src); i++) {
        const char *k = ct_dict_meta_key(src, i);
        if (strncmp(k, prefix, pl) == 0 && ct_dict_set_meta(d, k + pl, ct_dict_meta_value(src, i))) {
            ct_dict_free(d);
            return NULL;
        }
    }
    return d;
}

CT_API int ct_checkpoint_save(const char *path, const ct_module *model, const ct_optimizer *opt,
                              const ct_scheduler *sched, ct_generator *gen, int64_t epoch) {
    if (!path || !model) return ct__errs(CT_ERR_ARG, "checkpoint_save: NULL path or model");
    ct_dict *all = ct_dict_new(), *part = NULL;
    int st = all ? 0 : ct_last_status();
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)epoch);
    if (!st) st = ct_dict_set_meta(all, "format", "ctorch-checkpoint-1");
    if (!st) st = ct_dict_set_meta(all, "epoch", num);
    if (!st) st = (part = ct_module_state_dict(model)) ? merge(all, part, "model.") : ct_last_status();
    ct_dict_free(part), part = NULL;
    if (!st && opt) st = (part = ct_optim_state_dict(opt)) ? merge(all, part, "optimizer.") : ct_last_status();
    ct_dict_free(part), part = NULL;
    if (!st && sched) st = (part = ct_sched_state_dict(sched)) ? merge(all, part, "scheduler.") : ct_last_status();
    ct_dict_free(part), part = NULL;
    if (!st) {
        int64_t n = ct_generator_get_state(gen, NULL, 0);
        ct_scope_begin();
        ct_tensor *t = n > 0 ? ct_empty(CT_SHAPE(n), CT_UINT8) : NULL;
        if (!t || ct_generator_get_state(gen, ct_data_ptr(t), (size_t)n) != n) st = ct_last_status() ? ct_last_status() : CT_ERR_RUNTIME;
        if (!st) st = ct_dict_set(all, "rng.generator", t);
        ct_scope_end();
    }
    if (!st) st = ct_safetensors_save(all, path);
    ct_dict_free(all);
    return st;
}

CT_API int ct_checkpoint_load(const char *path, ct_module *model, ct_optimizer *opt, ct_scheduler *sched,
                              ct_generator *gen, int64_t *epoch) {
    if (!path || !model) return ct__errs(CT_ERR_ARG, "checkpoint_load: NULL path or model");
    ct_dict *all = ct_safetensors_load(path);
    if (!all) return ct_last_status();
    int st = 0;
    const char *fmt = ct_dict_meta(all, "format"), *ep = ct_dict_meta(all, "epoch");
    if (!fmt || strcmp(fmt, "ctorch-checkpoint-1") != 0 || !ep)
        st = ct__errs(CT_ERR_FORMAT, "checkpoint_load: %s is not a ctorch checkpoint", path);
    ct_dict *m = st ? NULL : split(all, "model."), *o = st ? NULL : split(all, "optimizer."),
            *s = st ? NULL : split(all, "scheduler.");
    if (!st && (!m || !o || !s)) st = ct_last_status();
    if (!st && (ct_dict_size(o) > 0) != (opt != NULL))
        st = ct__errs(CT_ERR_KEY, "checkpoint_load: %s %s optimizer state", path, opt ? "has no" : "has an unexpected");
    if (!st && (ct_dict_size(s) > 0) != (sched != NULL))
        st = ct__errs(CT_ERR_KEY, "checkpoint_load: %s %s scheduler state", path, sched ? "has no" : "has an unexpected");
    if (!st) st = ct_module_load_state_dict(model, m, true, NULL);
    if (!st && opt) st = ct_optim_load_state_dict(opt, o);
    if (!st && sched) st = ct_sched_load_state_dict(sched, s);
    if (!st) {
        ct_scope_begin();
        ct_tensor *g = ct_dict_get(all, "rng.generator");
        st = g ? ct_generator_set_state(gen, ct_data_ptr(g), (size_t)ct_numel(g)) : ct_last_status();
        ct_scope_end();
    }
    if (!st && epoch) *epoch = strtoll(ep, NULL, 10);
    ct_dict_free(m);
    ct_dict_free(o);
    ct_dict_free(s);
    ct_dict_free(all);
    return st;
}
