/* resnet18.h — torchvision's ResNet-18 as ctorch modules, with torchvision's module
 * names (conv1, bn1, layer1.0.conv1, ..., layer2.0.downsample.0, fc), so a state dict
 * saved from torchvision.models.resnet18() loads with ct_module_load_state_dict.
 * Header-only; an example of user-defined modules (BasicBlock and ResNet below follow
 * the pattern in include/ctorch/module.h). Initialisation is ctorch's per-layer default
 * (torch's reset_parameters), not torchvision's kaiming_normal_ re-initialisation. */
#ifndef CT_EXAMPLE_RESNET18_H
#define CT_EXAMPLE_RESNET18_H

#include <ctorch.h>

/* BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x)) */
static ct_tensor *resnet_block_forward(ct_module *self, ct_tensor *x) {
    ct_tensor *out = ct_relu(ct_module_forward(ct_module_child(self, "bn1"),
                                               ct_module_forward(ct_module_child(self, "conv1"), x)));
    out = ct_module_forward(ct_module_child(self, "bn2"), ct_module_forward(ct_module_child(self, "conv2"), out));
    ct_module *ds = ct_module_num_children(self) > 4 ? ct_module_child_at(self, 4) : NULL;
    ct_tensor *identity = ds ? ct_module_forward(ds, x) : x;
    return ct_relu(ct_add(out, identity));
}
static const ct_module_type RESNET_BLOCK = {.name = "BasicBlock", .forward = resnet_block_forward};

static inline ct_module *resnet_block_new(int64_t in, int64_t out, int64_t stride) {
    ct_conv_opts c1 = {.stride = {stride, stride}, .padding = {1, 1}}, c2 = {.padding = {1, 1}};
    ct_module *b = ct_module_new(&RESNET_BLOCK, NULL);
    if (!b) return NULL;
    int st = ct_module_add_module(b, "conv1", ct_nn_conv2d_new(in, out, (int64_t[]){3, 3}, &c1, false));
    if (!st) st = ct_module_add_module(b, "bn1", ct_nn_batch_norm2d_new(out, 1e-5, 0.1, true, true));
    if (!st) st = ct_module_add_module(b, "conv2", ct_nn_conv2d_new(out, out, (int64_t[]){3, 3}, &c2, false));
    if (!st) st = ct_module_add_module(b, "bn2", ct_nn_batch_norm2d_new(out, 1e-5, 0.1, true, true));
    if (!st && (stride != 1 || in != out)) {
        ct_conv_opts cd = {.stride = {stride, stride}};
        st = ct_module_add_module(b, "downsample", ct_nn_sequential(CT_MODULES(
            ct_nn_conv2d_new(in, out, (int64_t[]){1, 1}, &cd, false), ct_nn_batch_norm2d_new(out, 1e-5, 0.1, true, true))));
    }
    if (st) {
        ct_module_free(b);
        return NULL;
    }
    return b;
}

static ct_tensor *resnet_forward(ct_module *self, ct_tensor *x) {
    static const char *const stem[] = {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                                       "avgpool"};
    for (int i = 0; i < 9 && x; i++) x = ct_module_forward(ct_module_child(self, stem[i]), x);
    return ct_module_forward(ct_module_child(self, "fc"), ct_flatten(x, 1, -1));
}
static const ct_module_type RESNET = {.name = "ResNet", .forward = resnet_forward};

/* ResNet-18 for [N, 3, H, W] images (224x224 in ImageNet; any size >= 32 works) with
 * num_classes outputs. Caller owns (ct_module_free); NULL with an error on failure. */
static inline ct_module *resnet18_new(int64_t num_classes) {
    ct_module *m = ct_module_new(&RESNET, NULL);
    if (!m) return NULL;
    ct_conv_opts stem = {.stride = {2, 2}, .padding = {3, 3}};
    ct_pool_opts mp = {.stride = {2, 2}, .padding = {1, 1}};
    int st = ct_module_add_module(m, "conv1", ct_nn_conv2d_new(3, 64, (int64_t[]){7, 7}, &stem, false));
    if (!st) st = ct_module_add_module(m, "bn1", ct_nn_batch_norm2d_new(64, 1e-5, 0.1, true, true));
    if (!st) st = ct_module_add_module(m, "relu", ct_nn_relu_new());
    if (!st) st = ct_module_add_module(m, "maxpool", ct_nn_max_pool2d_new((int64_t[]){3, 3}, &mp));
    static const int64_t width[4] = {64, 128, 256, 512};
    for (int l = 0; l < 4 && !st; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l + 1);
        int64_t in = l ? width[l - 1] : 64;
        st = ct_module_add_module(m, name, ct_nn_sequential(CT_MODULES(resnet_block_new(in, width[l], l ? 2 : 1),
                                                                       resnet_block_new(width[l], width[l], 1))));
    }
    if (!st) st = ct_module_add_module(m, "avgpool", ct_nn_adaptive_avg_pool2d_new((int64_t[]){1, 1}));
    if (!st) st = ct_module_add_module(m, "fc", ct_nn_linear_new(512, num_classes, true));
    if (st) {
        ct_module_free(m);
        return NULL;
    }
    return m;
}

#endif
