/* Trains the demo's CNN on 8,000 real MNIST digits and checks it reaches at least 95%
 * accuracy on the 2,000 held out (the MNIST test set, 10,000 digits, split 8000/2000).
 *
 *   test_train_mnist [DIR]
 *
 * DIR (or $CTORCH_MNIST_DIR, else ../shared/data/mnist next to the source tree) holds
 * t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]. Without the data the
 * test reports itself skipped (exit 77). */
#include "../../examples/demo_common.h"

#ifndef CT_SOURCE_DIR
#define CT_SOURCE_DIR "."
#endif

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("CTORCH_MNIST_DIR");
    char def[1024];
    if (!dir) {
        snprintf(def, sizeof def, "%s/../shared/data/mnist", CT_SOURCE_DIR);
        dir = def;
    }
    ct_tensor *x, *y;
    if (load_split(dir, false, 0, &x, &y)) {
        printf("SKIPPED: the MNIST test set is not in %s (set CTORCH_MNIST_DIR)\n", dir);
        return 77;
    }
    if (ct_size(x, 0) < 10000) {
        printf("FAILED: expected 10000 digits in %s, got %lld\n", dir, (long long)ct_size(x, 0));
        return 1;
    }
    ct_manual_seed(0);
    ct_tensor *xtr = ct_narrow(x, 0, 0, 8000), *ytr = ct_narrow(y, 0, 0, 8000);
    ct_tensor *xte = ct_narrow(x, 0, 8000, 2000), *yte = ct_narrow(y, 0, 8000, 2000);
    ct_module *net = demo_cnn();
    ct_dict *params = ct_module_named_parameters(net);
    ct_optimizer *opt = ct_optim_adam_new(params, 1e-3, 0.9, 0.999, 1e-8, 0.0, false, false);
    ct_generator *gen = ct_generator_new(0);
    if (!net || !params || !opt || !gen) {
        printf("FAILED: setup: %s\n", ct_last_error());
        return 1;
    }
    double t0 = demo_now();
    for (int ep = 0; ep < 3; ep++) {
        ct_module_train(net, true);
        ct_tensor *perm = ct_randperm(8000, CT_INT64, gen);
        double sum = 0;
        for (int64_t i = 0; i < 8000; i += 64) {
            ct_scope_begin();
            ct_tensor *idx = ct_narrow(perm, 0, i, 8000 - i < 64 ? 8000 - i : 64);
            ct_tensor *loss = ct_nn_cross_entropy(ct_module_forward(net, ct_index_select(xtr, 0, idx)),
                                                  ct_index_select(ytr, 0, idx), NULL, -100, CT_REDUCTION_MEAN, 0.0);
            if (!loss || ct_optim_zero_grad(opt, true) || ct_backward(loss, NULL, false, false) || ct_optim_step(opt)) {
                printf("FAILED: training step: %s\n", ct_last_error());
                return 1;
            }
            sum += ct_item(loss) * (double)ct_numel(idx);
            ct_scope_end();
        }
        ct_release(perm);
        double acc, loss;
        demo_evaluate(net, xte, yte, &acc, &loss);
        printf("epoch %d: train loss %.4f, held-out accuracy %.2f%% (%.1f s)\n", ep + 1, sum / 8000, acc,
               demo_now() - t0);
        if (ep == 2) {
            printf("%s: %.2f%% on the 2000 held-out digits (need >= 95%%)\n", acc >= 95.0 ? "PASSED" : "FAILED", acc);
            ct_generator_free(gen);
            ct_optim_free(opt);
            ct_dict_free(params);
            ct_module_free(net);
            ct_release(xtr), ct_release(ytr), ct_release(xte), ct_release(yte), ct_release(x), ct_release(y);
            return acc >= 95.0 ? 0 : 1;
        }
    }
    return 1;
}
