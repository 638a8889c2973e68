/* Matrix products: mm, bmm, mv, dot (one GEMM kernel underneath), their add* forms,
 * and the composites matmul, vdot, outer, einsum.
 *
 * mm/bmm/mv/dot/addmm/baddbmm/addmv record one node each (gradients with public ops:
 * grad_a = g @ b^H, grad_b = a^H @ g). matmul and einsum are compositions of views,
 * reductions and these products, so their autograd comes from the pieces. Matrix
 * products do not promote dtypes (PyTorch's rule). */
#include <stdio.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "core/iter.h"

/* PyTorch's C++ type names, as in "expected m1 and m2 to have the same dtype, but got: float != double". */
static const char *cpp_name(ct_dtype d) {
    static const char *n[] = {"bool", "unsigned char", "signed char", "short int", "int", "long int", "c10::Half",
                              "c10::BFloat16", "float", "double", "c10::complex<float>", "c10::complex<double>"};
    return (unsigned)d < CT_NUM_DTYPES ? n[d] : "?";
}
#define st_name ct__scalar_type_name

typedef enum { K_MM = 0, K_BMM = 1, K_MV = 2, K_DOT = 3 } gemm_kind;

static ct_tensor *adjoint(const ct_tensor *x) { return ct_conj(ct_transpose(x, -2, -1)); }

static ct_tensor *scale(ct_tensor *t, double alpha) { return (t && alpha != 1.0) ? ct_mul_scalar(t, alpha) : t; }

/* Whether saved operand `slot` is a 2-D matrix laid out column by column (the
 * transpose of a contiguous one); only its layout is read, not its values. */
static bool col_major(const ct_node *n, int slot) {
    const ct_tensor *t = slot < n->n_saved && n->saved ? n->saved[slot].t : NULL;
    return t && t->ndim == 2 && t->strides[0] == 1 && t->strides[1] == t->sizes[0];
}

/* inputs: 0 = added input (optional), 1 = a, 2 = b. i[0] kind; d[0] alpha, d[1] beta. */
static int gemm_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    gemm_kind kind = (gemm_kind)n->i[0];
    double alpha = n->d[0], beta = n->d[1];
    ct_tensor *g = go[0];
    if (ct__node_needs(n, 0)) {
        gi[0] = beta == 1.0 ? ct__pass(g) : ct_mul_scalar(g, beta);
        if (!gi[0]) return ct_last_status();
    }
    if (ct__node_needs(n, 1)) {
        ct_tensor *b = ct__unpack(n, 1);
        if (!b) return ct_last_status();
        ct_tensor *r = NULL;
        switch (kind) {
        case K_MM: /* a column-major a (a transposed view) gets its gradient in that layout,
                    * (conj(b) g^T)^T, as PyTorch's mm_mat1_backward; so a transposed leaf's
                    * gradient arrives contiguous */
            r = col_major(n, 0) ? ct_t(ct_mm(ct_conj(b), ct_t(g))) : ct_mm(g, adjoint(b));
            break;
        case K_BMM: r = ct_bmm(g, adjoint(b)); break;
        case K_MV: r = ct_outer(g, ct_conj(b)); break;
        case K_DOT: r = ct_mul(g, ct_conj(b)); break;
        }
        if (!(gi[1] = scale(r, alpha))) return ct_last_status();
    }
    if (ct__node_needs(n, 2)) {
        ct_tensor *a = ct__unpack(n, 0);
        if (!a) return ct_last_status();
        ct_tensor *r = NULL;
        switch (kind) {
        case K_MM: /* likewise b (W^T of a linear layer): (g^T conj(a))^T, mm_mat2_backward */
            r = col_major(n, 1) ? ct_t(ct_mm(ct_t(g), ct_conj(a))) : ct_mm(adjoint(a), g);
            break;
        case K_BMM: r = ct_bmm(adjoint(a), g); break;
        case K_MV: r = ct_mv(adjoint(a), g); break;
        case K_DOT: r = ct_mul(g, ct_conj(a)); break;
        }
        if (!(gi[2] = scale(r, alpha))) return ct_last_status();
    }
    return 0;
}

/* A 3-D view [B, r, c] of a 2-D / 1-D / 3-D operand in a header the caller holds (the
 * kernel's operands: no heap header, no count, gone with the call). */
static ct_tensor *as3(ct_tensor *dst, const ct_tensor *t, int64_t b, int64_t r, int64_t c, int64_t sb, int64_t sr,
                      int64_t sc) {
    /* the geometry stored field by field: from arrays on the stack GCC copied it with
     * 16-byte loads of 8-byte stores, a store-forwarding stall each */
    ct__alias_borrowed(dst, t, 0, NULL, NULL, t->offset);
    dst->ndim = 3;
    dst->sizes[0] = b, dst->sizes[1] = r, dst->sizes[2] = c;
    dst->strides[0] = sb, dst->strides[1] = sr, dst->strides[2] = sc;
    dst->numel = b * r * c;
    return dst;
}

/* The product into out (shaped [M, N], [B, M, N], [M] or [] by kind; any strides):
 * out = alpha * a @ b + beta * input, input copied into out first (NULL: beta unused).
 * b_param: b is a parameter being trained (a hint the backend may use to read it
 * where its update will write it). Shapes/dtypes already checked. 0 or a status. */
static int gemm_into(ct_tensor *out, gemm_kind kind, const ct_tensor *input, const ct_tensor *a, const ct_tensor *b,
                     double beta, double alpha, bool b_param) {
    ct_tensor hA, hB, hC; /* the kernel's 3-D views (see as3) */
    const ct_tensor *A3, *B3;
    ct_tensor *C3;
    switch (kind) {
    case K_MM:
        A3 = as3(&hA, a, 1, a->sizes[0], a->sizes[1], 0, a->strides[0], a->strides[1]);
        B3 = as3(&hB, b, 1, b->sizes[0], b->sizes[1], 0, b->strides[0], b->strides[1]);
        C3 = as3(&hC, out, 1, out->sizes[0], out->sizes[1], 0, out->strides[0], out->strides[1]);
        break;
    case K_BMM:
        A3 = a;
        B3 = b;
        C3 = out;
        break;
    case K_MV:
        A3 = as3(&hA, a, 1, a->sizes[0], a->sizes[1], 0, a->strides[0], a->strides[1]);
        B3 = as3(&hB, b, 1, b->sizes[0], 1, 0, b->strides[0], 1);
        C3 = as3(&hC, out, 1, out->sizes[0], 1, 0, out->strides[0], 1);
        break;
    default:
        A3 = as3(&hA, a, 1, 1, a->sizes[0], 0, 1, a->strides[0]);
        B3 = as3(&hB, b, 1, b->sizes[0], 1, 0, b->strides[0], 1);
        C3 = as3(&hC, out, 1, 1, 1, 0, 1, 1);
        break;
    }
    if (input && beta != 0) {
        int rc = ct__copy_raw(out, input);
        if (rc) return rc;
    } else beta = 0;
    ct_kernel_args k = {.op = CT_OP_GEMM, .n_out = 1, .n_in = 2, .out = {C3}, .in = {A3, B3}, .d = {alpha, beta},
                        .i = {b_param}};
    return ct__dispatch(&k);
}

/* The shared forward: shapes/dtypes already checked. input may be NULL (beta unused). */
static ct_tensor *gemm_forward(const char *name, const char *node_name, gemm_kind kind, const ct_tensor *input,
                               const ct_tensor *a, const ct_tensor *b, double beta, double alpha) {
    int ond;
    int64_t osz[3] = {0, 0, 0};
    switch (kind) {
    case K_MM: ond = 2; osz[0] = a->sizes[0]; osz[1] = b->sizes[1]; break;
    case K_BMM: ond = 3; osz[0] = a->sizes[0]; osz[1] = a->sizes[1]; osz[2] = b->sizes[2]; break;
    case K_MV: ond = 1; osz[0] = a->sizes[0]; break;
    default: ond = 0; break;
    }
    ct_tensor *out = ct__empty_raw(ond, osz, a->dtype);
    /* a leaf that requires grad, with grad mode on: a weight in a training step's forward */
    const bool b_param = kind == K_MM && b->requires_grad && ct__grad_enabled();
    int rc = out ? gemm_into(out, kind, input, a, b, beta, alpha, b_param) : -1;
    if (rc) { ct_release(out); return NULL; }
    const ct_tensor *ins[3] = {input, a, b};
    if (ct__needs_grad(3, ins)) {
        ct_node *n = ct__node_new(node_name, gemm_backward, 3);
        if (!n || ct__node_set_next(n, 0, input) || ct__node_set_next(n, 1, a) || ct__node_set_next(n, 2, b) ||
            ct__save(n, a) < 0 || ct__save(n, b) < 0) {
            if (n) ct__node_release(n);
            ct_release(out);
            return NULL;
        }
        n->i[0] = kind;
        n->d[0] = alpha;
        n->d[1] = beta;
        ct__set_history(out, n, 0);
    }
    (void)name;
    return ct__ret(out);
}

static bool same_dtype_mm(const ct_tensor *a, const ct_tensor *b) {
    if (a->dtype != b->dtype) {
        ct__err(CT_ERR_DTYPE, "expected m1 and m2 to have the same dtype, but got: %s != %s", cpp_name(a->dtype),
                cpp_name(b->dtype));
        return false;
    }
    if (a->dtype == CT_BOOL) {
        ct__err(CT_ERR_DTYPE, "\"addmm_impl_cpu_\" not implemented for 'Bool'");
        return false;
    }
    return true;
}

/* input must broadcast to the product's shape (it is expanded, never the reverse). */
static bool check_input(const char *op, const ct_tensor *input, int ond, const int64_t *osz, ct_dtype dt) {
    if (input->dtype != dt) {
        ct__err(CT_ERR_DTYPE, "%s: expected self and mat2 to have the same dtype, but got: %s != %s", op,
                cpp_name(input->dtype), cpp_name(dt));
        return false;
    }
    if (input->ndim > ond) goto bad;
    for (int i = 0; i < input->ndim; i++) {
        int64_t have = input->sizes[input->ndim - 1 - i], want = osz[ond - 1 - i];
        if (have != want && have != 1) goto bad;
    }
    return true;
bad:
    ct__err(CT_ERR_SHAPE, "%s: The expanded size of the tensor cannot match: input of shape %s does not broadcast to "
                          "%s", op, CT_SHAPESTR(input), CT_SIZESSTR(ond, osz));
    return false;
}

static bool check_mm(const char *op, const ct_tensor *a, const ct_tensor *b) {
    if (a->ndim != 2) { ct__err(CT_ERR_SHAPE, "%s: self must be a matrix (got %s)", op, CT_SHAPESTR(a)); return false; }
    if (b->ndim != 2) { ct__err(CT_ERR_SHAPE, "%s: mat2 must be a matrix (got %s)", op, CT_SHAPESTR(b)); return false; }
    if (a->sizes[1] != b->sizes[0]) {
        ct__err(CT_ERR_SHAPE, "%s: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)", op,
                (long long)a->sizes[0], (long long)a->sizes[1], (long long)b->sizes[0], (long long)b->sizes[1]);
        return false;
    }
    return same_dtype_mm(a, b);
}

static bool check_bmm(const char *op, const ct_tensor *a, const ct_tensor *b) {
    if (a->ndim != 3) { ct__err(CT_ERR_SHAPE, "%s: batch1 must be a 3D tensor (got %s)", op, CT_SHAPESTR(a)); return false; }
    if (b->ndim != 3) { ct__err(CT_ERR_SHAPE, "%s: batch2 must be a 3D tensor (got %s)", op, CT_SHAPESTR(b)); return false; }
    if (b->sizes[0] != a->sizes[0] || b->sizes[1] != a->sizes[2]) {
        ct__err(CT_ERR_SHAPE, "%sExpected size for first two dimensions of batch2 tensor to be: [%lld, %lld] but got: "
                              "[%lld, %lld].", strcmp(op, "bmm") ? "baddbmm: " : "", (long long)a->sizes[0], (long long)a->sizes[2],
                (long long)b->sizes[0], (long long)b->sizes[1]);
        return false;
    }
    return same_dtype_mm(a, b);
}

static bool check_mv(const char *op, const ct_tensor *input, const ct_tensor *a, const ct_tensor *v) {
    if (a->ndim != 2 || v->ndim != 1 || (input && input->ndim > 1)) {
        ct__err(CT_ERR_SHAPE, "%s: vector + matrix @ vector expected, got %d, %d, %d", op, input ? input->ndim : 1,
                a->ndim, v->ndim);
        return false;
    }
    if (a->sizes[1] != v->sizes[0] || (input && input->ndim == 1 && input->sizes[0] != 1 && input->sizes[0] != a->sizes[0])) {
        ct__err(CT_ERR_SHAPE, "%ssize mismatch, got input (%lld), mat (%lldx%lld), vec (%lld)", input ? "addmv: " : "",
                (long long)(input && input->ndim ? input->sizes[0] : a->sizes[0]), (long long)a->sizes[0],
                (long long)a->sizes[1], (long long)v->sizes[0]);
        return false;
    }
    return same_dtype_mm(a, v);
}

CT_API ct_tensor *ct_mm(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("mm", a);
    CT_CHECK_ARG("mm", b);
    if (!check_mm("mm", a, b)) return NULL;
    return gemm_forward("mm", "MmBackward0", K_MM, NULL, a, b, 0, 1);
}

CT_API ct_tensor *ct_bmm(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("bmm", a);
    CT_CHECK_ARG("bmm", b);
    if (!check_bmm("bmm", a, b)) return NULL;
    return gemm_forward("bmm", "BmmBackward0", K_BMM, NULL, a, b, 0, 1);
}

CT_API ct_tensor *ct_mv(const ct_tensor *a, const ct_tensor *v) {
    CT_CHECK_ARG("mv", a);
    CT_CHECK_ARG("mv", v);
    if (!check_mv("mv", NULL, a, v)) return NULL;
    return gemm_forward("mv", "MvBackward0", K_MV, NULL, a, v, 0, 1);
}

CT_API ct_tensor *ct_dot(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("dot", a);
    CT_CHECK_ARG("dot", b);
    if (a->ndim != 1 || b->ndim != 1)
        return ct__err(CT_ERR_SHAPE, "1D tensors expected, but got %dD and %dD tensors", a->ndim, b->ndim);
    if (a->dtype != b->dtype)
        return ct__err(CT_ERR_DTYPE, "dot : expected both vectors to have same dtype, but found %s and %s",
                       st_name(a->dtype), st_name(b->dtype));
    if (a->sizes[0] != b->sizes[0])
        return ct__err(CT_ERR_SHAPE, "inconsistent tensor size, expected tensor [%lld] and src [%lld] to have the same "
                                     "number of elements, but got %lld and %lld elements respectively",
                       (long long)a->sizes[0], (long long)b->sizes[0], (long long)a->sizes[0], (long long)b->sizes[0]);
    if (a->dtype == CT_BOOL) return ct__err(CT_ERR_DTYPE, "\"dot\" not implemented for 'Bool'");
    return gemm_forward("dot", "DotBackward0", K_DOT, NULL, a, b, 0, 1);
}

CT_API ct_tensor *ct_vdot(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("vdot", a);
    CT_CHECK_ARG("vdot", b);
    if (a->ndim != 1 || b->ndim != 1)
        return ct__err(CT_ERR_SHAPE, "1D tensors expected, but got %dD and %dD tensors", a->ndim, b->ndim);
    if (a->dtype != b->dtype)
        return ct__err(CT_ERR_DTYPE, "vdot : expected both vectors to have same dtype, but found %s and %s",
                       st_name(a->dtype), st_name(b->dtype));
    if (!ct_dtype_is_complex(a->dtype)) return ct_dot(a, b);
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_keep(ct_dot(ct_conj(a), b));
    ct_scope_end();
    return r;
}

CT_API ct_tensor *ct_outer(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("outer", a);
    CT_CHECK_ARG("outer", b);
    if (a->ndim != 1 || b->ndim != 1)
        return ct__err(CT_ERR_SHAPE, "outer: expected 1D tensors, but got %dD and %dD tensors", a->ndim, b->ndim);
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_keep(ct_mul(ct_unsqueeze(a, 1), b));
    ct_scope_end();
    return r;
}

CT_API ct_tensor *ct_addmm(const ct_tensor *input, const ct_tensor *m1, const ct_tensor *m2, double beta, double alpha) {
    CT_CHECK_ARG("addmm", input);
    CT_CHECK_ARG("addmm", m1);
    CT_CHECK_ARG("addmm", m2);
    if (!check_mm("addmm", m1, m2)) return NULL;
    int64_t osz[2] = {m1->sizes[0], m2->sizes[1]};
    if (!check_input("addmm", input, 2, osz, m1->dtype)) return NULL;
    return gemm_forward("addmm", "AddmmBackward0", K_MM, input, m1, m2, beta, alpha);
}

CT_API ct_tensor *ct_baddbmm(const ct_tensor *input, const ct_tensor *b1, const ct_tensor *b2, double beta,
                             double alpha) {
    CT_CHECK_ARG("baddbmm", input);
    CT_CHECK_ARG("baddbmm", b1);
    CT_CHECK_ARG("baddbmm", b2);
    if (!check_bmm("baddbmm", b1, b2)) return NULL;
    int64_t osz[3] = {b1->sizes[0], b1->sizes[1], b2->sizes[2]};
    if (!check_input("baddbmm", input, 3, osz, b1->dtype)) return NULL;
    return gemm_forward("baddbmm", "BaddbmmBackward0", K_BMM, input, b1, b2, beta, alpha);
}

CT_API ct_tensor *ct_addmv(const ct_tensor *input, const ct_tensor *m, const ct_tensor *v, double beta, double alpha) {
    CT_CHECK_ARG("addmv", input);
    CT_CHECK_ARG("addmv", m);
    CT_CHECK_ARG("addmv", v);
    if (!check_mv("addmv", input, m, v)) return NULL;
    int64_t osz[1] = {m->sizes[0]};
    if (!check_input("addmv", input, 1, osz, m->dtype)) return NULL;
    return gemm_forward("addmv", "AddmvBackward0", K_MV, input, m, v, beta, alpha);
}

/* ---- matmul ---- */
static ct_tensor *matmul_impl(const ct_tensor *a, const ct_tensor *b) {
    int da = a->ndim, db = b->ndim;
    if (da == 0 || db == 0)
        return ct__err(CT_ERR_SHAPE, "both arguments to matmul need to be at least 1D, but they are %dD and %dD", da, db);
    if (da == 1 && db == 1) return ct_dot(a, b);
    if (da == 2 && db == 1) return ct_mv(a, b);
    if (da == 1 && db == 2) return ct_squeeze_dim(ct_mm(ct_unsqueeze(a, 0), b), 0);
    if (da == 2 && db == 2) return ct_mm(a, b);
    int64_t ka = a->sizes[da - 1], kb = db == 1 ? b->sizes[0] : b->sizes[db - 2];
    if (da >= 3 && db <= 2) {
        int64_t rows0 = 1;
        for (int i = 0; i < da - 1; i++) rows0 *= a->sizes[i];
        if (ka != kb)
            return ct__err(CT_ERR_SHAPE, "mm: mat1 and mat2 shapes cannot be multiplied (%lldx%lld and %lldx%lld)",
                           (long long)rows0, (long long)ka, (long long)kb, (long long)(db == 1 ? 1 : b->sizes[1]));
        /* fold a's batch dims into the rows of one mm */
        int64_t osz[CT_MAX_DIMS];
        int ond = 0;
        for (int i = 0; i < da - 1; i++) osz[ond++] = a->sizes[i];
        if (db == 2) osz[ond++] = b->sizes[1];
        int64_t rows = 1;
        for (int i = 0; i < da - 1; i++) rows *= a->sizes[i];
        ct_tensor *a2 = ct_reshape(a, 2, (int64_t[]){rows, ka});
        ct_tensor *r = db == 2 ? ct_mm(a2, b) : ct_mv(a2, b);
        return ct_reshape(r, ond, osz);
    }
    /* general batched case with broadcast batch dims */
    const ct_tensor *a2 = da == 1 ? ct_unsqueeze(a, 0) : a;
    const ct_tensor *b2 = db == 1 ? ct_unsqueeze(b, 1) : b;
    if (!a2 || !b2) return NULL;
    int na = a2->ndim - 2, nb = b2->ndim - 2;
    int64_t bsh[CT_MAX_DIMS];
    int nbat = ct__broadcast_shapes("matmul", na, a2->sizes, nb, b2->sizes, bsh);
    if (nbat < 0) return NULL;
    int64_t n = a2->sizes[a2->ndim - 2], m = b2->sizes[b2->ndim - 1], B = 1;
    for (int i = 0; i < nbat; i++) B *= bsh[i];
    if (a->dtype != b->dtype)
        return ct__err(CT_ERR_DTYPE, "expected scalar type %s but found %s", st_name(a->dtype), st_name(b->dtype));
    if (ka != kb)
        return ct__err(CT_ERR_SHAPE, "Expected size for first two dimensions of batch2 tensor to be: [%lld, %lld] but "
                                     "got: [%lld, %lld].", (long long)B, (long long)ka, (long long)B, (long long)kb);
    int64_t esz[CT_MAX_DIMS];
    memcpy(esz, bsh, sizeof(int64_t) * (size_t)nbat);
    esz[nbat] = n; esz[nbat + 1] = ka;
    ct_tensor *ae = ct_reshape(ct_expand(a2, nbat + 2, esz), 3, (int64_t[]){B, n, ka});
    esz[nbat] = ka; esz[nbat + 1] = m;
    ct_tensor *be = ct_reshape(ct_expand(b2, nbat + 2, esz), 3, (int64_t[]){B, ka, m});
    ct_tensor *r = ct_bmm(ae, be);
    int64_t osz[CT_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < nbat; i++) osz[ond++] = bsh[i];
    if (da > 1) osz[ond++] = n;
    if (db > 1) osz[ond++] = m;
    return ct_reshape(r, ond, osz);
}

CT_API ct_tensor *ct_matmul(const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG("matmul", a);
    CT_CHECK_ARG("matmul", b);
    /* one op and no temporaries: no scope of its own (its cost shows on small products) */
    if (a->ndim == 2 && b->ndim == 2) return ct_mm(a, b);
    if (a->ndim == 2 && b->ndim == 1) return ct_mv(a, b);
    if (a->ndim == 1 && b->ndim == 1) return ct_dot(a, b);
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_keep(matmul_impl(a, b));
    ct_scope_end();
    return r;
}

CT_API int ct_matmul_out(ct_tensor *out, const ct_tensor *a, const ct_tensor *b) {
    CT_CHECK_ARG_S("matmul", out);
    CT_CHECK_ARG_S("matmul", a);
    CT_CHECK_ARG_S("matmul", b);
    /* Two matrices into a contiguous out of the product's shape and dtype on their
     * device, sharing memory with neither, no gradient involved: the product is written
     * straight into out (a 16^3 float32 product 440 -> 185 ns, the result and its copy
     * saved). Anything else goes through ct_matmul and a copy, which gives every error. */
    const ct_device da = a->storage->device, db = b->storage->device, dout = out->storage->device;
    if (a->ndim == 2 && b->ndim == 2 && out->ndim == 2 && a->sizes[1] == b->sizes[0] &&
        out->sizes[0] == a->sizes[0] && out->sizes[1] == b->sizes[1] && a->dtype == b->dtype &&
        out->dtype == a->dtype && a->dtype != CT_BOOL && ct__is_contiguous(out) && out->storage != a->storage &&
        out->storage != b->storage && da.type == db.type && da.index == db.index && da.type == dout.type &&
        da.index == dout.index && !ct__needs_grad(3, (const ct_tensor *[]){out, a, b})) {
        int rc = gemm_into(out, K_MM, NULL, a, b, 0, 1, false);
        if (!rc) ct__bump_version(out);
        return rc;
    }
    if (ct_scope_begin()) return ct_last_status();
    ct_tensor *r = ct_matmul(a, b);
    int rc;
    if (r && r->dtype != out->dtype) /* PyTorch's matmul casts no result into out */
        rc = ct__errs(CT_ERR_DTYPE, "Expected out tensor to have dtype %s, but got %s instead", cpp_name(r->dtype),
                      cpp_name(out->dtype));
    else
        rc = ct__commit_out("matmul", out, r);
    ct_scope_end();
    return rc;
}

/* ---- einsum ----
 * Labels: 0..51 for A-Z a-z, 52 + j for the j-th dim covered by "..." (right-aligned
 * across operands). Every operand is brought (diagonals for repeated labels, permute,
 * size-1 dims for absent labels) to one global order: output labels first, then the
 * contracted ones. Operands are then contracted left to right, each pair as one bmm
 * (batch / left-only / right-only / contracted dims), dims used by no later operand
 * and not in the output being summed as early as possible. */
#define EIN_NL (52 + CT_MAX_DIMS)

static int ein_label(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
    return -1;
}
static char ein_char(int l) { return l < 26 ? (char)('A' + l) : (char)('a' + l - 26); }

/* Contracts two aligned operands (L dims each); keep[d]: dim d is needed later. */
static ct_tensor *ein_pair(ct_tensor *A, ct_tensor *B, int L, const bool *keep) {
    int64_t sumA[CT_MAX_DIMS], sumB[CT_MAX_DIMS];
    int nsa = 0, nsb = 0;
    for (int d = 0; d < L; d++) {
        if (keep[d]) continue;
        if (A->sizes[d] != 1 && B->sizes[d] == 1) sumA[nsa++] = d;
        else if (B->sizes[d] != 1 && A->sizes[d] == 1) sumB[nsb++] = d;
    }
    if (nsa) A = ct_sum_dim(A, nsa, sumA, true, CT_NUM_DTYPES);
    if (nsb) B = ct_sum_dim(B, nsb, sumB, true, CT_NUM_DTYPES);
    if (!A || !B) return NULL;
    int bd[CT_MAX_DIMS], md[CT_MAX_DIMS], nd[CT_MAX_DIMS], kd[CT_MAX_DIMS];
    int nb = 0, nm = 0, nn = 0, nk = 0;
    int64_t Bp = 1, Mp = 1, Np = 1, Kp = 1;
    for (int d = 0; d < L; d++) {
        int64_t sa = A->sizes[d], sb = B->sizes[d];
        if (!keep[d]) { kd[nk++] = d; Kp *= sa; }
        else if (sa == sb) { bd[nb++] = d; Bp *= sa; }
        else if (sb == 1) { md[nm++] = d; Mp *= sa; }
        else { nd[nn++] = d; Np *= sb; }
    }
    int pa[CT_MAX_DIMS], pb[CT_MAX_DIMS], ord[CT_MAX_DIMS], k = 0;
    for (int i = 0; i < nb; i++) pa[k++] = bd[i];
    for (int i = 0; i < nm; i++) pa[k++] = md[i];
    for (int i = 0; i < nk; i++) pa[k++] = kd[i];
    for (int i = 0; i < nn; i++) pa[k++] = nd[i];
    k = 0;
    for (int i = 0; i < nb; i++) pb[k++] = bd[i];
    for (int i = 0; i < nk; i++) pb[k++] = kd[i];
    for (int i = 0; i < nn; i++) pb[k++] = nd[i];
    for (int i = 0; i < nm; i++) pb[k++] = md[i];
    ct_tensor *a3 = ct_reshape(ct_permute(A, L, pa), 3, (int64_t[]){Bp, Mp, Kp});
    ct_tensor *b3 = ct_reshape(ct_permute(B, L, pb), 3, (int64_t[]){Bp, Kp, Np});
    ct_tensor *r = ct_bmm(a3, b3);
    if (!r) return NULL;
    int64_t sz[CT_MAX_DIMS];
    k = 0;
    for (int i = 0; i < nb; i++) { ord[k] = bd[i]; sz[k++] = A->sizes[bd[i]]; }
    for (int i = 0; i < nm; i++) { ord[k] = md[i]; sz[k++] = A->sizes[md[i]]; }
    for (int i = 0; i < nn; i++) { ord[k] = nd[i]; sz[k++] = B->sizes[nd[i]]; }
    for (int i = 0; i < nk; i++) { ord[k] = kd[i]; sz[k++] = 1; }
    r = ct_reshape(r, L, sz);
    int perm[CT_MAX_DIMS];
    for (int j = 0; j < L; j++) perm[ord[j]] = j;
    return ct_permute(r, L, perm);
}

static ct_tensor *einsum_impl(const char *eq, int n, const ct_tensor *const *ops) {
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    /* parse the operand terms */
    int labels[64][CT_MAX_DIMS + 1], nlab[64];
    int term = 0, cnt = 0;
    bool ell_seen = false;
    int ell_nd[64];
    int count[EIN_NL] = {0};
    if (n > 64) return ct__err(CT_ERR_ARG, "einsum(): at most 64 operands are supported");
    for (size_t i = 0; i <= lhs_len; i++) {
        char c = i < lhs_len ? eq[i] : ',';
        if (c == ' ') continue;
        if (c == ',') {
            if (term >= n) return ct__err(CT_ERR_ARG, "einsum(): fewer operands were provided than specified in the equation");
            nlab[term] = cnt;
            term++;
            cnt = 0;
            ell_seen = false;
            continue;
        }
        if (term >= n) return ct__err(CT_ERR_ARG, "einsum(): fewer operands were provided than specified in the equation");
        if (c == '.') {
            if (ell_seen || i + 2 >= lhs_len || eq[i + 1] != '.' || eq[i + 2] != '.')
                return ct__err(CT_ERR_ARG, "einsum(): found '.' for operand %d that is not part of any ellipsis", term);
            ell_seen = true;
            i += 2;
            if (cnt > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "einsum(): too many subscripts");
            labels[term][cnt++] = -1;
            continue;
        }
        int l = ein_label(c);
        if (l < 0) return ct__err(CT_ERR_ARG, "einsum(): invalid subscript given at index %zu in the equation string, "
                                              "subscripts must be in [a-zA-Z]", i);
        if (cnt > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "einsum(): too many subscripts");
        labels[term][cnt++] = l;
    }
    if (term != n) return ct__err(CT_ERR_ARG, "einsum(): more operands were provided than specified in the equation");
    int ell_max = 0;
    for (int k = 0; k < n; k++) {
        int letters = 0;
        bool has_ell = false;
        for (int j = 0; j < nlab[k]; j++) (labels[k][j] < 0 ? (void)(has_ell = true) : (void)letters++);
        if (has_ell) {
            if (letters > ops[k]->ndim)
                return ct__err(CT_ERR_SHAPE, "einsum(): the number of subscripts in the equation (%d) is more than the "
                                             "number of dimensions (%d) for operand %d", letters, ops[k]->ndim, k);
            ell_nd[k] = ops[k]->ndim - letters;
        } else {
            if (letters != ops[k]->ndim)
                return ct__err(CT_ERR_SHAPE, "einsum(): the number of subscripts in the equation (%d) does not match the "
                                             "number of dimensions (%d) for operand %d and no ellipsis was given",
                               letters, ops[k]->ndim, k);
            ell_nd[k] = 0;
        }
        if (ell_nd[k] > ell_max) ell_max = ell_nd[k];
    }
    /* per-operand dim labels */
    int dl[64][CT_MAX_DIMS];
    for (int k = 0; k < n; k++) {
        int d = 0;
        for (int j = 0; j < nlab[k]; j++) {
            if (labels[k][j] >= 0) { dl[k][d++] = labels[k][j]; count[labels[k][j]]++; }
            else
                for (int e = 0; e < ell_nd[k]; e++) { dl[k][d] = 52 + ell_max - ell_nd[k] + e; count[dl[k][d]]++; d++; }
        }
    }
    /* output labels */
    int out[EIN_NL], nout = 0;
    bool in_out[EIN_NL] = {0};
    if (arrow) {
        const char *r = arrow + 2;
        bool oell = false;
        for (size_t i = 0; r[i]; i++) {
            char c = r[i];
            if (c == ' ') continue;
            if (c == '.') {
                if (oell || r[i + 1] != '.' || r[i + 2] != '.')
                    return ct__err(CT_ERR_ARG, "einsum(): found '.' for output that is not part of any ellipsis");
                oell = true;
                i += 2;
                for (int e = 0; e < ell_max; e++) { out[nout++] = 52 + e; in_out[52 + e] = true; }
                continue;
            }
            int l = ein_label(c);
            if (l < 0) return ct__err(CT_ERR_ARG, "einsum(): invalid subscript given at index %zu in the equation string, "
                                                  "subscripts must be in [a-zA-Z]", (size_t)(r - eq) + i);
            if (!count[l]) return ct__err(CT_ERR_ARG, "einsum(): output subscript %c does not appear in the equation for "
                                                      "any input operand", c);
            if (in_out[l]) return ct__err(CT_ERR_ARG, "einsum(): output subscript %c appears more than once in the output", c);
            in_out[l] = true;
            out[nout++] = l;
        }
    } else {
        for (int e = 0; e < ell_max; e++) { out[nout++] = 52 + e; in_out[52 + e] = true; }
        for (int l = 0; l < 52; l++)
            if (count[l] == 1) { out[nout++] = l; in_out[l] = true; }
    }
    /* global order */
    int pos[EIN_NL], L = 0;
    for (int l = 0; l < EIN_NL; l++) pos[l] = -1;
    for (int i = 0; i < nout; i++) pos[out[i]] = L++;
    for (int l = 0; l < 52 + ell_max; l++)
        if (count[l] && pos[l] < 0) pos[l] = L++;
    if (L > CT_MAX_DIMS) return ct__err(CT_ERR_ARG, "einsum(): too many distinct subscripts");
    /* global sizes (with broadcasting of size-1 dims) */
    int64_t gsz[CT_MAX_DIMS];
    for (int d = 0; d < L; d++) gsz[d] = 1;
    for (int k = 0; k < n; k++)
        for (int d = 0; d < ops[k]->ndim; d++) {
            int g = pos[dl[k][d]];
            int64_t s = ops[k]->sizes[d];
            if (s == 1) continue;
            if (gsz[g] != 1 && gsz[g] != s) {
                int l = dl[k][d];
                if (l < 52)
                    return ct__err(CT_ERR_SHAPE, "einsum(): operands do not broadcast with remapped shapes: subscript %c "
                                                 "has size %lld for operand %d which does not broadcast with previously "
                                                 "seen size %lld", ein_char(l), (long long)s, k, (long long)gsz[g]);
                return ct__err(CT_ERR_SHAPE, "einsum(): operands do not broadcast with remapped shapes: ellipsis dim of "
                                             "size %lld for operand %d does not broadcast with previously seen size %lld",
                               (long long)s, k, (long long)gsz[g]);
            }
            gsz[g] = s;
        }
    /* align operands */
    ct_tensor *al[64];
    bool present[64][CT_MAX_DIMS];
    for (int k = 0; k < n; k++) {
        ct_tensor *t = (ct_tensor *)ops[k];
        int lab[CT_MAX_DIMS], tn = t->ndim;
        memcpy(lab, dl[k], sizeof(int) * (size_t)tn);
        for (bool again = true; again;) {
            again = false;
            for (int i = 0; i < tn && !again; i++)
                for (int j = i + 1; j < tn && !again; j++)
                    if (lab[i] == lab[j]) {
                        if (t->sizes[i] != t->sizes[j])
                            return ct__err(CT_ERR_SHAPE, "einsum(): subscript %c is repeated for operand %d but the sizes "
                                                         "don't match, %lld != %lld", ein_char(lab[i]), k,
                                           (long long)t->sizes[i], (long long)t->sizes[j]);
                        t = ct_diagonal(t, 0, i, j);
                        if (!t) return NULL;
                        int l = lab[i], m = 0;
                        for (int q = 0; q < tn; q++)
                            if (q != i && q != j) lab[m++] = lab[q];
                        lab[m++] = l;
                        tn = m;
                        again = true;
                    }
        }
        int perm[CT_MAX_DIMS], np = 0;
        int64_t sz[CT_MAX_DIMS];
        for (int d = 0; d < L; d++) { sz[d] = 1; present[k][d] = false; }
        for (int g = 0; g < L; g++)
            for (int i = 0; i < tn; i++)
                if (pos[lab[i]] == g) { perm[np++] = i; sz[g] = t->sizes[i]; present[k][g] = true; }
        t = ct_reshape(ct_permute(t, tn, perm), L, sz);
        if (!t) return NULL;
        al[k] = t;
    }
    ct_tensor *cur = al[0];
    for (int k = 1; k < n; k++) {
        bool keep[CT_MAX_DIMS];
        for (int d = 0; d < L; d++) {
            keep[d] = d < nout;
            for (int j = k + 1; j < n && !keep[d]; j++) keep[d] = present[j][d];
        }
        cur = ein_pair(cur, al[k], L, keep);
        if (!cur) return NULL;
    }
    int64_t sd[CT_MAX_DIMS];
    int ns = 0;
    for (int d = nout; d < L; d++)
        if (cur->sizes[d] != 1) sd[ns++] = d;
    if (ns) cur = ct_sum_dim(cur, ns, sd, true, CT_NUM_DTYPES);
    if (!cur) return NULL;
    /* output dims keep the broadcast size */
    int64_t osz[CT_MAX_DIMS];
    for (int i = 0; i < nout; i++) osz[i] = cur->sizes[i];
    (void)gsz;
    return ct_reshape(cur, nout, osz);
}

CT_API ct_tensor *ct_einsum(const char *equation, int n, const ct_tensor *const *operands) {
    if (!equation) return ct__err(CT_ERR_ARG, "einsum(): equation is NULL");
    if (n < 1 || !operands) return ct__err(CT_ERR_ARG, "einsum(): must provide at least one operand");
    for (int k = 0; k < n; k++) CT_CHECK_ARG("einsum", operands[k]);
    if (ct_scope_begin()) return NULL;
    ct_tensor *r = ct_keep(einsum_impl(equation, n, operands));
    ct_scope_end();
    return r;
}
