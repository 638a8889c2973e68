/* float32 convolution and its two gradients through oneDNN (Apache-2.0; Debian's
 * libdnnl-dev), what PyTorch itself runs on the CPU.
 *
 * Our tensors stay plain NCHW / OIHW. oneDNN is asked for its preferred layouts
 * (format "any": blocked nChw16c and friends on AVX-512), and each call reorders the
 * inputs into them and the output back, as PyTorch does for NCHW tensors. A primitive
 * (its descriptor, the three reorders, the buffer sizes) is built once per shape and
 * kept in a small cache; executing it is thread-safe because every call brings its own
 * scratchpad and stream. Shapes oneDNN will not take are declined, and the caller runs
 * the im2col kernels in conv.c instead. */
#ifdef CT_HAVE_DNNL
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/dnnl_common.h"

enum { ROLE_SRC, ROLE_WEI, ROLE_DST, N_ROLES };

/* key: op, N C H W, O kh kw, Ho Wo, sh sw ph pw dh dw G, bias */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t user[N_ROLES]; /* plain layouts of our tensors */
    dnnl_memory_desc_t mine[N_ROLES]; /* what the primitive wants */
    dnnl_primitive_t reorder[N_ROLES]; /* user -> mine for inputs, mine -> user for the output; NULL: same layout */
    dnnl_memory_desc_t bias;
} conv_entry;

static void entry_free(conv_entry *e) {
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int r = 0; r < N_ROLES; r++)
        if (e->reorder[r]) dnnl_primitive_destroy(e->reorder[r]);
    free(e);
}

/* which role is the primitive's output, and the queries / exec args of each role */
static int out_role(int64_t op) {
    return op == CT_OP_CONV2D ? ROLE_DST : op == CT_OP_CONV2D_BWD_INPUT ? ROLE_SRC : ROLE_WEI;
}

static dnnl_query_t role_query(int64_t op, int r) {
    switch (r) {
    case ROLE_SRC: return op == CT_OP_CONV2D_BWD_INPUT ? dnnl_query_diff_src_md : dnnl_query_src_md;
    case ROLE_WEI: return op == CT_OP_CONV2D_BWD_WEIGHT ? dnnl_query_diff_weights_md : dnnl_query_weights_md;
    default: return op == CT_OP_CONV2D ? dnnl_query_dst_md : dnnl_query_diff_dst_md;
    }
}

static int role_arg(int64_t op, int r) {
    switch (r) {
    case ROLE_SRC: return op == CT_OP_CONV2D_BWD_INPUT ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC;
    case ROLE_WEI: return op == CT_OP_CONV2D_BWD_WEIGHT ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS;
    default: return op == CT_OP_CONV2D ? DNNL_ARG_DST : DNNL_ARG_DIFF_DST;
    }
}

/* Builds the primitive for key v; NULL when oneDNN declines the shape. */
static void *entry_build(const int64_t *v, void *ctx) {
    (void)ctx;
    dnnl_engine_t engine = ct__dnnl_engine();
    int64_t op = v[0], N = v[1], C = v[2], H = v[3], W = v[4], O = v[5], kh = v[6], kw = v[7], Ho = v[8], Wo = v[9];
    int64_t sh = v[10], sw = v[11], ph = v[12], pw = v[13], dh = v[14], dw = v[15], G = v[16];
    bool has_bias = v[17];
    conv_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    dnnl_memory_desc_t any[N_ROLES];
    dnnl_dims_t sd = {N, C, H, W}, dd = {N, O, Ho, Wo};
    dnnl_dims_t wd = {O, C, kh, kw}, wgd = {G, O / G, C / G, kh, kw};
    bool ok = dnnl_memory_desc_init_by_tag(&e->user[ROLE_SRC], 4, sd, dnnl_f32, dnnl_nchw) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&any[ROLE_SRC], 4, sd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&e->user[ROLE_DST], 4, dd, dnnl_f32, dnnl_nchw) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&any[ROLE_DST], 4, dd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    if (G == 1)
        ok = ok && dnnl_memory_desc_init_by_tag(&e->user[ROLE_WEI], 4, wd, dnnl_f32, dnnl_oihw) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&any[ROLE_WEI], 4, wd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    else
        ok = ok && dnnl_memory_desc_init_by_tag(&e->user[ROLE_WEI], 5, wgd, dnnl_f32, dnnl_goihw) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&any[ROLE_WEI], 5, wgd, dnnl_f32, dnnl_format_tag_any) == dnnl_success;
    ok = ok && dnnl_memory_desc_init_by_tag(&e->bias, 1, (dnnl_dims_t){O}, dnnl_f32, dnnl_a) == dnnl_success;
    if (!ok) { entry_free(e); return NULL; }
    /* oneDNN counts dilation from 0; the right/bottom padding is whatever makes the
     * output size come out (negative when the last rows are never reached) */
    dnnl_dims_t strides = {sh, sw}, dil = {dh - 1, dw - 1}, pl = {ph, pw};
    dnnl_dims_t pr = {(Ho - 1) * sh + (kh - 1) * dh + 1 - H - ph, (Wo - 1) * sw + (kw - 1) * dw + 1 - W - pw};
    dnnl_primitive_attr_t attr = ct__dnnl_attr();
    dnnl_primitive_desc_t fwd = NULL, pd = NULL;
    dnnl_convolution_desc_t fd, bd;
    if (!attr) goto fail;
    if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                                   &any[ROLE_SRC], &any[ROLE_WEI],
                                                   op == CT_OP_CONV2D && has_bias ? &e->bias : NULL, &any[ROLE_DST],
                                                   strides, dil, pl, pr) != dnnl_success ||
        dnnl_primitive_desc_create(&fwd, &fd, attr, engine, NULL) != dnnl_success)
        goto fail;
    if (op == CT_OP_CONV2D) {
        pd = fwd, fwd = NULL;
    } else {
        dnnl_status_t st =
            op == CT_OP_CONV2D_BWD_INPUT
                ? dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &any[ROLE_SRC],
                                                                   &any[ROLE_WEI], &any[ROLE_DST], strides, dil, pl, pr)
                : dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &any[ROLE_SRC],
                                                                      &any[ROLE_WEI], NULL, &any[ROLE_DST], strides,
                                                                      dil, pl, pr);
        if (st != dnnl_success || dnnl_primitive_desc_create(&pd, &bd, attr, engine, fwd) != dnnl_success) goto fail;
    }
    for (int r = 0; r < N_ROLES; r++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, role_query(op, r), 0);
        if (!md) goto fail;
        e->mine[r] = *md;
        if (dnnl_memory_desc_equal(&e->user[r], md)) continue;
        bool is_out = r == out_role(op);
        dnnl_primitive_desc_t rpd = NULL;
        const dnnl_memory_desc_t *from = is_out ? &e->mine[r] : &e->user[r], *to = is_out ? &e->user[r] : &e->mine[r];
        if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, attr) != dnnl_success) goto fail;
        dnnl_status_t st = dnnl_primitive_create(&e->reorder[r], rpd);
        dnnl_primitive_desc_destroy(rpd);
        if (st != dnnl_success) goto fail;
    }
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success) goto fail;
    dnnl_primitive_desc_destroy(pd);
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    dnnl_primitive_attr_destroy(attr);
    return e;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_free(e);
    return NULL;
}

/* grad_output reordered by an input gradient whose weight gradient follows: the two
 * backward calls of one convolution reorder the same grad to the same blocked layout
 * (0.1-0.5 ms each at ResNet-18's and the demo CNN's shapes), so the second takes the
 * first's copy. The slot holds a reference to the grad tensor, so it cannot be freed and
 * its address reused meanwhile; its data pointer and its storage's version at the copy
 * are checked too (defensive: the ops call the two back to back, with nothing in
 * between that could write the grad). Every call takes the slot out: it lives only from
 * that input gradient to the next convolution call of the thread (released at thread
 * exit). */
typedef struct {
    const ct_tensor *src; /* retained */
    const void *data;
    long long version;
    dnnl_memory_desc_t md;
    ct_tensor *copy; /* retained */
} grad_memo;
static pthread_key_t memo_key; /* the thread's slot: heap, not thread-local storage (a
                                  * memory descriptor is large; see tests/c/test_tls.c) */
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;

static void memo_release(grad_memo *m) {
    ct_release((ct_tensor *)m->src);
    ct_release(m->copy);
    *m = (grad_memo){0};
}
static void memo_thread_exit(void *p) {
    memo_release(p);
    free(p);
}
static void memo_key_init(void) { (void)pthread_key_create(&memo_key, memo_thread_exit); }

/* this thread's slot, made on first use when create (NULL without one, or on OOM) */
static grad_memo *memo_slot(bool create) {
    (void)pthread_once(&memo_once, memo_key_init);
    grad_memo *m = pthread_getspecific(memo_key);
    if (!m && create && (m = calloc(1, sizeof *m)) && pthread_setspecific(memo_key, m)) {
        free(m);
        m = NULL;
    }
    return m;
}

int ct__dnnl_conv(const ct_kernel_args *a, bool keep_grad) {
    dnnl_engine_t engine = ct__dnnl_engine();
    if (!engine) return 1;
    int64_t op = a->op;
    const ct_tensor *x, *w, *y;
    switch (a->op) {
    case CT_OP_CONV2D: x = a->in[0], w = a->in[1], y = a->out[0]; break;
    case CT_OP_CONV2D_BWD_INPUT: x = a->out[0], w = a->in[1], y = a->in[0]; break;
    default: x = a->in[0], w = a->out[0], y = a->in[1]; break;
    }
    const ct_tensor *bias = op == CT_OP_CONV2D && a->n_in > 2 ? a->in[2] : NULL;
    const int64_t *iv = a->iv;
    int64_t key[CT_DNNL_KEY] = {op, x->sizes[0], x->sizes[1], x->sizes[2], x->sizes[3], w->sizes[0], w->sizes[2],
                                w->sizes[3], y->sizes[2], y->sizes[3], iv[0], iv[1], iv[2], iv[3], iv[4], iv[5], iv[6],
                                bias != NULL};
    bool owned;
    conv_entry *e = ct__dnnl_cached(key, entry_build, NULL, &owned);
    if (!e) return 1;
    const ct_tensor *t[N_ROLES] = {x, w, y};
    dnnl_memory_t um[N_ROLES] = {0}, mm[N_ROLES] = {0}, bm = NULL;
    ct_tensor *buf[N_ROLES] = {0};
    dnnl_stream_t s = NULL;
    bool ok = dnnl_stream_create(&s, engine, dnnl_stream_default_flags) == dnnl_success;
    int orole = out_role(op);
    grad_memo *slot = memo_slot(false), m = slot ? *slot : (grad_memo){0}; /* taken out: see grad_memo */
    if (slot) *slot = (grad_memo){0};
    bool reuse = op == CT_OP_CONV2D_BWD_WEIGHT && m.src == y && m.data == ct__data(y) && e->reorder[ROLE_DST] &&
                 m.version == (long long)atomic_load(&y->storage->version) &&
                 dnnl_memory_desc_equal(&m.md, &e->mine[ROLE_DST]);
    for (int r = 0; r < N_ROLES && ok; r++) {
        ok = dnnl_memory_create(&um[r], &e->user[r], engine, ct__data(t[r])) == dnnl_success;
        if (!ok || !e->reorder[r]) continue;
        bool copied = reuse && r == ROLE_DST;
        if (copied) buf[r] = ct_retain(m.copy);
        else buf[r] = ct__dnnl_buffer(dnnl_memory_desc_get_size(&e->mine[r]), &ok);
        ok = ok && dnnl_memory_create(&mm[r], &e->mine[r], engine, buf[r] ? ct__data(buf[r]) : NULL) == dnnl_success;
        if (ok && r != orole && !copied)
            ok = ct__dnnl_run(e->reorder[r], s, 2, (dnnl_exec_arg_t[3]){{DNNL_ARG_FROM, um[r]}, {DNNL_ARG_TO, mm[r]}});
    }
    memo_release(&m);
    if (ok && keep_grad && op == CT_OP_CONV2D_BWD_INPUT && buf[ROLE_DST] && dnnl_stream_wait(s) == dnnl_success &&
        (slot = memo_slot(true)))
        *slot = (grad_memo){ct_retain((ct_tensor *)y), ct__data(y), (long long)atomic_load(&y->storage->version),
                            e->mine[ROLE_DST], ct_retain(buf[ROLE_DST])};
    if (ok && bias) ok = dnnl_memory_create(&bm, &e->bias, engine, ct__data(bias)) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[5];
        int n = 0;
        for (int r = 0; r < N_ROLES; r++) args[n++] = (dnnl_exec_arg_t){role_arg(op, r), mm[r] ? mm[r] : um[r]};
        if (bm) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bm};
        ok = ct__dnnl_run(e->prim, s, n, args);
    }
    if (ok && e->reorder[orole])
        ok = ct__dnnl_run(e->reorder[orole], s, 2,
                          (dnnl_exec_arg_t[3]){{DNNL_ARG_FROM, mm[orole]}, {DNNL_ARG_TO, um[orole]}});
    if (ok) ok = dnnl_stream_wait(s) == dnnl_success;
    for (int r = 0; r < N_ROLES; r++) {
        if (um[r]) dnnl_memory_destroy(um[r]);
        if (mm[r]) dnnl_memory_destroy(mm[r]);
        ct_release(buf[r]);
    }
    if (bm) dnnl_memory_destroy(bm);
    if (s) dnnl_stream_destroy(s);
    if (owned) entry_free(e);
    return ok ? 0 : ct__errs(CT_ERR_RUNTIME, "%s: oneDNN failed on input %s, weight %s", ct__op_name(a->op),
                             CT_SHAPESTR(x), CT_SHAPESTR(w));
}
#endif
