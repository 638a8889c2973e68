/* The README's tiny example: fits y = 3x - 1 by gradient descent. */
#include <ctorch.h>

int main(void) {
    ct_manual_seed(0);
    /* y = 3x - 1; fit w, b by gradient descent */
    ct_tensor *x = ct_randn(CT_SHAPE(64, 1), CT_FLOAT32, NULL);
    ct_tensor *y = ct_add_scalar(ct_mul_scalar(x, 3.0), -1.0);
    ct_tensor *w = ct_zeros(CT_SHAPE(1, 1), CT_FLOAT32), *b = ct_zeros(CT_SHAPE(1), CT_FLOAT32);
    ct_set_requires_grad(w, true);
    ct_set_requires_grad(b, true);
    for (int step = 0; step < 200; step++) {
        ct_scope_begin();                        /* every temporary below is released at scope end */
        ct_tensor *pred = ct_add(ct_matmul(x, w), b);
        ct_tensor *loss = ct_mean(ct_square(ct_sub(pred, y)));
        ct_backward(loss, NULL, false, false);
        bool prev = ct_set_grad_enabled(false);  /* torch.no_grad() */
        ct_sub_(w, ct_mul_scalar(ct_grad(w), 0.1));
        ct_sub_(b, ct_mul_scalar(ct_grad(b), 0.1));
        ct_set_grad(w, NULL);
        ct_set_grad(b, NULL);
        ct_set_grad_enabled(prev);
        ct_scope_end();
    }
    ct_print(w);                                 /* tensor([[3.0000]], requires_grad=True) */
    ct_release(x); ct_release(y); ct_release(w); ct_release(b);
    return 0;
}
