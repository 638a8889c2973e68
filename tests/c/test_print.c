/* ct_to_string / ct_print against PyTorch's own output.
 * Every expected string below is what PyTorch 2.x prints (repr) for the Python
 * expression in the comment above it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

static int failures = 0, checks = 0;

static void expect(int line, const char *expr, ct_tensor *t, const char *want) {
    checks++;
    char *got = ct_to_string(t);
    if (!got) {
        failures++;
        fprintf(stderr, "test_print.c:%d: %s: ct_to_string failed: %s\n", line, expr, ct_last_error());
        return;
    }
    if (strcmp(got, want) != 0) {
        failures++;
        fprintf(stderr, "test_print.c:%d: %s\n--- want ---\n%s\n--- got ---\n%s\n", line, expr, want, got);
    }
    ct_free_string(got);
}
#define EXPECT(expr, t, want) expect(__LINE__, expr, t, want)

static ct_tensor *f32(int n, const float *v) { return ct_from_data(v, 1, (const int64_t[]){n}, CT_FLOAT32); }

int main(void) {
    ct_scope_begin();

    ct_tensor *x = ct_from_data((const float[]){1, 2}, CT_SHAPE(1, 2), CT_FLOAT32);
    ct_set_requires_grad(x, true);
    EXPECT("torch.tensor([[1., 2.]], requires_grad=True)", x,
           "tensor([[1., 2.]], requires_grad=True)");

    x = ct_from_data((const float[]){1.5f, -2.25f}, CT_SHAPE(1, 2), CT_FLOAT32);
    ct_set_requires_grad(x, true);
    EXPECT("torch.tensor([[1.5, -2.25]], requires_grad=True)", x,
           "tensor([[ 1.5000, -2.2500]], requires_grad=True)");

    EXPECT("torch.tensor([1, 2, 3])", ct_from_data((const int64_t[]){1, 2, 3}, CT_SHAPE(3), CT_INT64),
           "tensor([1, 2, 3])");

    EXPECT("torch.tensor(3.5)", ct_scalar_tensor(3.5, CT_FLOAT32), "tensor(3.5000)");

    EXPECT("torch.empty(0, 3)", ct_empty(CT_SHAPE(0, 3), CT_FLOAT32), "tensor([], size=(0, 3))");

    EXPECT("torch.empty(0, dtype=torch.int64)", ct_empty(CT_SHAPE(0), CT_INT64), "tensor([], dtype=torch.int64)");

    EXPECT("torch.tensor([1., 2.], dtype=torch.float64)",
           ct_from_data((const double[]){1, 2}, CT_SHAPE(2), CT_FLOAT64), "tensor([1., 2.], dtype=torch.float64)");

    EXPECT("torch.tensor([1, -20], dtype=torch.int32)",
           ct_from_data((const int32_t[]){1, -20}, CT_SHAPE(2), CT_INT32), "tensor([  1, -20], dtype=torch.int32)");

    EXPECT("torch.tensor([True, False, True])",
           ct_from_data((const bool[]){true, false, true}, CT_SHAPE(3), CT_BOOL), "tensor([ True, False,  True])");

    /* complex64 stored as (re, im) pairs */
    EXPECT("torch.tensor([1.5+2j, -3-0.25j])",
           ct_from_data((const float[]){1.5f, 2.0f, -3.0f, -0.25f}, CT_SHAPE(2), CT_COMPLEX64),
           "tensor([ 1.5000+2.0000j, -3.0000-0.2500j])");

    EXPECT("torch.tensor([float('nan'), 1., float('inf'), -float('inf')])",
           f32(4, (const float[]){NAN, 1, INFINITY, -INFINITY}), "tensor([nan, 1., inf, -inf])");

    EXPECT("torch.tensor([1e-5, 1., 250.])", f32(3, (const float[]){1e-5f, 1, 250}),
           "tensor([1.0000e-05, 1.0000e+00, 2.5000e+02])");

    EXPECT("torch.tensor([0.1, 12.5, -3.])", f32(3, (const float[]){0.1f, 12.5f, -3}),
           "tensor([ 0.1000, 12.5000, -3.0000])");

    EXPECT("torch.tensor([0.5, 1.0], dtype=torch.float16)",
           ct_to_dtype(f32(2, (const float[]){0.5f, 1}), CT_FLOAT16), "tensor([0.5000, 1.0000], dtype=torch.float16)");

    /* a non-contiguous view */
    EXPECT("torch.arange(6.).reshape(2, 3).t()",
           ct_t(ct_reshape(ct_arange(0, 6, 1, CT_FLOAT32), CT_SHAPE(2, 3))),
           "tensor([[0., 3.],\n"
           "        [1., 4.],\n"
           "        [2., 5.]])");

    EXPECT("torch.arange(8).reshape(2, 2, 2)", ct_reshape(ct_arange(0, 8, 1, CT_INT64), CT_SHAPE(2, 2, 2)),
           "tensor([[[0, 1],\n"
           "         [2, 3]],\n"
           "\n"
           "        [[4, 5],\n"
           "         [6, 7]]])");

    /* line wrapping at 80 columns; arange(0, 7.5, 0.25) holds the same values */
    EXPECT("torch.arange(30.) / 4", ct_arange(0, 7.5, 0.25, CT_FLOAT32),
           "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n"
           "        2.2500, 2.5000, 2.7500, 3.0000, 3.2500, 3.5000, 3.7500, 4.0000, 4.2500,\n"
           "        4.5000, 4.7500, 5.0000, 5.2500, 5.5000, 5.7500, 6.0000, 6.2500, 6.5000,\n"
           "        6.7500, 7.0000, 7.2500])");

    /* summarised (more than 1000 elements) */
    EXPECT("torch.arange(2000.)", ct_arange(0, 2000, 1, CT_FLOAT32),
           "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
           "        1.9990e+03])");

    EXPECT("torch.arange(1100).reshape(100, 11)", ct_reshape(ct_arange(0, 1100, 1, CT_INT64), CT_SHAPE(100, 11)),
           "tensor([[   0,    1,    2,  ...,    8,    9,   10],\n"
           "        [  11,   12,   13,  ...,   19,   20,   21],\n"
           "        [  22,   23,   24,  ...,   30,   31,   32],\n"
           "        ...,\n"
           "        [1067, 1068, 1069,  ..., 1075, 1076, 1077],\n"
           "        [1078, 1079, 1080,  ..., 1086, 1087, 1088],\n"
           "        [1089, 1090, 1091,  ..., 1097, 1098, 1099]])");

    /* a suffix that does not fit on the last line goes on a line of its own */
    EXPECT("torch.arange(12., dtype=torch.float64) * 1000", ct_arange(0, 12000, 1000, CT_FLOAT64),
           "tensor([    0.,  1000.,  2000.,  3000.,  4000.,  5000.,  6000.,  7000.,  8000.,\n"
           "         9000., 10000., 11000.], dtype=torch.float64)");

    x = f32(2, (const float[]){1, 2});
    ct_set_requires_grad(x, true);
    EXPECT("torch.tensor([1., 2.], requires_grad=True) * 2", ct_mul(x, ct_float(2)),
           "tensor([2., 4.], grad_fn=<MulBackward0>)");

    /* ct_print writes the same text and a newline */
    checks++;
    if (ct_print(ct_scalar_tensor(3.5, CT_FLOAT32)) != 0) {
        failures++;
        fprintf(stderr, "ct_print failed: %s\n", ct_last_error());
    }

    /* a NULL tensor is an error, not a crash */
    checks++;
    ct_clear_error();
    if (ct_to_string(NULL) != NULL || ct_last_status() == CT_OK || ct_print(NULL) == 0) {
        failures++;
        fprintf(stderr, "NULL tensor: expected an error\n");
    }
    ct_clear_error();

    ct_scope_end();
    checks++;
    if (ct_live_tensors() != 0) {
        failures++;
        fprintf(stderr, "%lld tensors still alive after the scope closed\n", (long long)ct_live_tensors());
    }

    printf("test_print: %d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
