/* Checkpoints resume exactly: two epochs straight give the same parameters, bit for
 * bit, as one epoch, save, load into fresh objects, one more epoch (model with batch
 * norm and dropout, Adam, StepLR, shuffling from the default generator). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ctorch.h>

#include "check.h"

static ct_module *net(void) {
    return ct_nn_sequential(CT_MODULES(ct_nn_linear_new(4, 8, true), ct_nn_batch_norm1d_new(8, 1e-5, 0.1, true, true),
                                       ct_nn_relu_new(), ct_nn_dropout_new(0.3), ct_nn_linear_new(8, 3, true)));
}

static void epoch(ct_module *m, ct_optimizer *opt, ct_scheduler *sched, ct_tensor *x, ct_tensor *y) {
    ct_module_train(m, true);
    ct_scope_begin();
    ct_tensor *perm = ct_randperm(64, CT_INT64, NULL);
    for (int64_t i = 0; i < 64; i += 16) {
        ct_tensor *idx = ct_narrow(perm, 0, i, 16);
        ct_tensor *loss = ct_nn_cross_entropy(ct_module_forward(m, ct_index_select(x, 0, idx)), ct_index_select(y, 0, idx),
                                              NULL, -100, CT_REDUCTION_MEAN, 0.0);
        CHECK(loss && ct_optim_zero_grad(opt, true) == 0 && ct_backward(loss, NULL, false, false) == 0 &&
              ct_optim_step(opt) == 0);
    }
    ct_sched_step(sched);
    ct_scope_end();
}

int main(void) {
    int64_t live0 = ct_live_tensors();
    char path[64];
    snprintf(path, sizeof path, "test_checkpoint_%d.safetensors", (int)getpid());
    ct_manual_seed(1);
    ct_tensor *x = ct_randn(CT_SHAPE(64, 4), CT_FLOAT32, NULL), *y = ct_randint(0, 3, CT_SHAPE(64), CT_INT64, NULL);

    /* A: two epochs straight */
    ct_manual_seed(7);
    ct_module *a = net();
    ct_dict *pa = ct_module_named_parameters(a);
    ct_optimizer *oa = ct_optim_adam_new(pa, 1e-2, 0.9, 0.999, 1e-8, 0.0, false, false);
    ct_scheduler *sa = ct_sched_step_lr_new(oa, 1, 0.5);
    epoch(a, oa, sa, x, y);
    epoch(a, oa, sa, x, y);

    /* B: one epoch, checkpoint, fresh objects, load, one epoch */
    ct_manual_seed(7);
    ct_module *b = net();
    ct_dict *pb = ct_module_named_parameters(b);
    ct_optimizer *ob = ct_optim_adam_new(pb, 1e-2, 0.9, 0.999, 1e-8, 0.0, false, false);
    ct_scheduler *sb = ct_sched_step_lr_new(ob, 1, 0.5);
    epoch(b, ob, sb, x, y);
    CHECK(ct_checkpoint_save(path, b, ob, sb, NULL, 1) == 0);
    ct_sched_free(sb), ct_optim_free(ob), ct_dict_free(pb), ct_module_free(b);
    ct_manual_seed(12345); /* different weights and generator state until the load */
    ct_module *c = net();
    ct_dict *pc = ct_module_named_parameters(c);
    ct_optimizer *oc = ct_optim_adam_new(pc, 1e-2, 0.9, 0.999, 1e-8, 0.0, false, false);
    ct_scheduler *sc = ct_sched_step_lr_new(oc, 1, 0.5);
    int64_t ep = -1;
    CHECK(ct_checkpoint_load(path, c, oc, sc, NULL, &ep) == 0 && ep == 1);
    CHECK(ct_optim_get_lr(oc, 0) == 0.005);
    epoch(c, oc, sc, x, y);

    /* bit for bit */
    ct_dict *sda = ct_module_state_dict(a), *sdc = ct_module_state_dict(c);
    CHECK(ct_dict_size(sda) == ct_dict_size(sdc));
    ct_scope_begin();
    for (int64_t i = 0; i < ct_dict_size(sda); i++) {
        ct_tensor *ta = ct_dict_value(sda, i), *tc = ct_dict_get(sdc, ct_dict_key(sda, i));
        CHECK(tc && ct_numel(ta) == ct_numel(tc));
        size_t nb = (size_t)ct_numel(ta) * ct_dtype_size(ct_get_dtype(ta));
        CHECK(tc && memcmp(ct_data_ptr(ct_contiguous(ta)), ct_data_ptr(ct_contiguous(tc)), nb) == 0);
        if (tc && memcmp(ct_data_ptr(ct_contiguous(ta)), ct_data_ptr(ct_contiguous(tc)), nb))
            fprintf(stderr, "differs: %s\n", ct_dict_key(sda, i));
    }
    ct_scope_end();

    /* a missing optimizer section is an error, the file untouched by a failed load */
    ct_clear_error();
    CHECK(ct_checkpoint_load("no/such/file.safetensors", c, oc, sc, NULL, NULL) == CT_ERR_IO);
    ct_clear_error();

    ct_dict_free(sda), ct_dict_free(sdc);
    ct_sched_free(sa), ct_optim_free(oa), ct_dict_free(pa), ct_module_free(a);
    ct_sched_free(sc), ct_optim_free(oc), ct_dict_free(pc), ct_module_free(c);
    ct_release(x), ct_release(y);
    remove(path);
    CHECK(ct_live_tensors() == live0);
    printf("test_checkpoint: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
