/* bfloat16 matrix products through oneDNN's matmul primitive: bfloat16 operands,
 * float32 accumulation on the CPU's bf16 dot-product instructions (AVX512_BF16, AMX)
 * where it has them, the result rounded once to bfloat16 — what PyTorch does on the
 * CPU. Any strides (transposed views included); a batch stride of 0 is a broadcast.
 * Only out = A @ B (alpha 1, beta 0); other calls are declined and run the generic
 * loop in linalg.c. Primitives are cached per shape and layout (dnnl_common.c). */
#ifdef CT_HAVE_DNNL
#include "cpu/dnnl_common.h"

/* key: tag, dtype, batches of A, B and C, M, N, K, then the strides of A, B and C */
static void *mm_build(const int64_t *k, void *ctx) {
    (void)ctx;
    int64_t M = k[5], N = k[6], K = k[7];
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_primitive_attr_t attr = ct__dnnl_attr();
    if (attr && dnnl_memory_desc_init_by_strides(&a, 3, (dnnl_dims_t){k[2], M, K}, dnnl_bf16, &k[8]) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&b, 3, (dnnl_dims_t){k[3], K, N}, dnnl_bf16, &k[11]) == dnnl_success &&
        dnnl_memory_desc_init_by_strides(&c, 3, (dnnl_dims_t){k[4], M, N}, dnnl_bf16, &k[14]) == dnnl_success &&
        dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &md, attr, ct__dnnl_engine(), NULL) == dnnl_success)
        (void)dnnl_primitive_create(&prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return prim;
}

int ct__dnnl_matmul(const ct_tensor *A, const ct_tensor *B, ct_tensor *C, double alpha, double beta) {
    if (C->dtype != CT_BFLOAT16 || alpha != 1.0 || beta != 0.0 || !ct__dnnl_engine()) return 1;
    int64_t nb = C->sizes[0];
    /* a size-1 dim's stride is arbitrary in our tensors: give oneDNN a dense one */
    int64_t key[CT_DNNL_KEY] = {0x6d6d, C->dtype, A->strides[0] == 0 ? 1 : nb, B->strides[0] == 0 ? 1 : nb, nb,
                                C->sizes[1], C->sizes[2], A->sizes[2]};
    const ct_tensor *ts[3] = {A, B, C};
    for (int t = 0; t < 3; t++) {
        int64_t r = ts[t]->sizes[1], c = ts[t]->sizes[2], *st = &key[8 + 3 * t];
        st[2] = c == 1 ? 1 : ts[t]->strides[2];
        st[1] = r == 1 ? c * st[2] : ts[t]->strides[1];
        st[0] = key[2 + t] == 1 ? r * c : ts[t]->strides[0];
        if (st[1] <= 0 || st[2] <= 0 || st[0] <= 0) return 1;
    }
    bool owned;
    dnnl_primitive_t prim = ct__dnnl_cached(key, mm_build, NULL, &owned);
    if (!prim) return 1;
    dnnl_engine_t eng = ct__dnnl_engine();
    dnnl_memory_t m[3] = {0};
    dnnl_stream_t s = NULL;
    const_dnnl_primitive_desc_t pd;
    static const dnnl_query_t q[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
    bool ok = dnnl_primitive_get_primitive_desc(prim, &pd) == dnnl_success &&
              dnnl_stream_create(&s, eng, dnnl_stream_default_flags) == dnnl_success;
    for (int t = 0; t < 3 && ok; t++)
        ok = dnnl_memory_create(&m[t], dnnl_primitive_desc_query_md(pd, q[t], 0), eng, ct__data(ts[t])) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
        ok = ct__dnnl_run(prim, s, 3, args) && dnnl_stream_wait(s) == dnnl_success;
    }
    for (int t = 0; t < 3; t++)
        if (m[t]) dnnl_memory_destroy(m[t]);
    if (s) dnnl_stream_destroy(s);
    if (owned) dnnl_primitive_destroy(prim);
    return ok ? 0 : ct__errs(CT_ERR_RUNTIME, "matmul: oneDNN failed on %s @ %s", CT_SHAPESTR(A), CT_SHAPESTR(B));
}
#endif
