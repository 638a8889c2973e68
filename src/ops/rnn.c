/* Recurrent layers as functions: the cells (rnn_tanh/rnn_relu/lstm/gru_cell) and the
 * full multi-layer, optionally bidirectional layers (rnn_tanh, rnn_relu, lstm, gru),
 * composed from differentiable ops (addmm, sigmoid, tanh, addcmul, lerp, stack, cat),
 * so gradients and second derivatives come from autograd. One exception: an LSTM step's
 * gate arithmetic in float32/float64 is one fused kernel and node (below), whose backward
 * is written in differentiable ops again when a graph is being built.
 *
 * As PyTorch's CPU implementation does, a layer computes the input projection of the
 * whole sequence with one matmul per layer and direction (W_ih x_t + b for every t) and
 * only the hidden projection per time step. Each step runs in its own scope that keeps
 * only the new state: without autograd the step's temporaries are freed at once. */
#include <math.h>
#include <stdio.h>

#include "core/autograd_internal.h"
#include "core/dispatch.h"
#include "ctorch/rnn.h"

#include "ops/compose.h"

typedef enum { M_TANH, M_RELU, M_LSTM, M_GRU } rnn_mode;

static const char *layer_name(rnn_mode m) { return m == M_LSTM ? "LSTM" : m == M_GRU ? "GRU" : "RNN"; }
static const char *cell_name(rnn_mode m) { return m == M_LSTM ? "LSTMCell" : m == M_GRU ? "GRUCell" : "RNNCell"; }
static int64_t n_gates(rnn_mode m) { return m == M_LSTM ? 4 : m == M_GRU ? 3 : 1; }

/* "torch.float32" as PyTorch prints dtypes in messages. */
static const char *tdt(ct_dtype d, char *buf, size_t n) {
    snprintf(buf, n, "torch.%s", ct_dtype_name(d));
    return buf;
}
#define TDT(d) tdt((d), (char[32]){0}, 32)

/* ---- splitting without per-piece gradient buffers ----
 * narrow / select record one node per piece whose backward embeds the piece's gradient
 * into zeros of the whole input, so taking T steps out of the input projection (or the
 * gates out of a step's pre-activations) would cost T zero-filled copies of the whole
 * and their sum. As PyTorch's unbind / unsafe_chunk do, the pieces here share ONE node
 * whose backward concatenates (stacks) their gradients: one buffer, written once.
 * The pieces are plain aliases (not views: they never reach the caller, and nothing
 * writes into them). Backward is ct_cat / ct_stack, so double backward works. */
static int pieces_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    int dim = (int)n->i[0], k = n->n_outputs;
    gi[0] = n->i[1] ? ct_stack(k, (const ct_tensor *const *)go, dim) : ct_cat(k, (const ct_tensor *const *)go, dim);
    return gi[0] ? 0 : ct_last_status();
}

/* Splits x along dim into k pieces of sizes[i] (squeeze: k pieces of size 1 with dim
 * removed, i.e. unbind). Writes k scope-registered tensors into out; 0 or status. */
static int pieces(const ct_tensor *x, int dim, int k, const int64_t *sizes, bool squeeze, ct_tensor **out) {
    int64_t sz[CT_MAX_DIMS], st[CT_MAX_DIMS], off = x->offset;
    int nd = 0;
    for (int i = 0; i < k; i++) out[i] = NULL;
    for (int i = 0; i < k; i++) {
        nd = 0;
        for (int d = 0; d < x->ndim; d++) {
            if (d == dim && squeeze) continue;
            sz[nd] = d == dim ? sizes[i] : x->sizes[d];
            st[nd++] = x->strides[d];
        }
        out[i] = ct__alias(x, nd, sz, st, off);
        if (!out[i]) break;
        off += (squeeze ? 1 : sizes[i]) * x->strides[dim];
    }
    int rc = out[k - 1] ? 0 : ct_last_status();
    if (!rc && ct__needs_grad(1, (const ct_tensor *[]){x})) {
        ct_node *n = ct__node_new(squeeze ? "UnbindBackward0" : "SplitWithSizesBackward0", pieces_backward, 1);
        rc = n ? ct__node_set_outputs(n, k) : ct_last_status();
        if (!rc) rc = ct__node_set_next(n, 0, x);
        if (rc) {
            if (n) ct__node_release(n);
        } else {
            n->i[0] = dim;
            n->i[1] = squeeze;
            ct__set_history_multi(out, k, n);
        }
    }
    for (int i = 0; i < k; i++) {
        if (rc) ct_release(out[i]), out[i] = NULL;
        else ct__ret(out[i]);
    }
    return rc;
}

/* ---- the LSTM cell's pointwise part, fused ----
 * After the matmuls, a step's cell is ten elementwise ops on [B, H]-sized pieces (PyTorch's
 * CPU cell runs them one by one, each recorded for autograd). For float32 and float64 one
 * kernel does them all (CT_OP_LSTM_CELL) with the ops' own sigmoid and tanh loops, and one
 * node takes their gradients. Outputs: 0 h', 1 c', 2 act = the four gate activations
 * (kept for backward: as an output of the node, so a graph built from it reaches the
 * gates again). Saved: act (output 2), c' (output 1), c. Without a graph to build the
 * backward is one kernel (CT_OP_LSTM_CELL_BWD); under create_graph the same formulas in
 * differentiable ops, so second derivatives work. */
static ct_tensor *one_minus(const ct_tensor *x) { return ct_rsub_scalar(x, 1.0); }

/* x + opt, or x when opt is NULL (no gradient reached it); a NULL x (a failed op) stays NULL */
static ct_tensor *plus_opt(ct_tensor *x, const ct_tensor *opt) { return opt ? ct_add(x, opt) : x; }

/* The cell's backward in differentiable ops (the formulas of CT_OP_LSTM_CELL_BWD, for a
 * graph being built): *dg = dgates [B, 4H] and, if need_c, *dc (scope-registered). dcn
 * and dact may be NULL (no gradient reached c' or act); dh may not. 0 or status. */
static int cell_backward_ops(const ct_tensor *dh, const ct_tensor *dcn, const ct_tensor *dact, const ct_tensor *act,
                             const ct_tensor *c, const ct_tensor *cn, bool need_c, ct_tensor **dg, ct_tensor **dc) {
    int64_t H = c->sizes[1];
    ct_tensor *ig = ct_narrow(act, 1, 0, H), *fg = ct_narrow(act, 1, H, H), *gg = ct_narrow(act, 1, 2 * H, H);
    ct_tensor *og = ct_narrow(act, 1, 3 * H, H), *tc = ct_tanh(cn);
    ct_tensor *d = plus_opt(ct_mul(ct_mul(dh, og), one_minus(ct_mul(tc, tc))), dcn);
    ct_tensor *da[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4 && dact; k++)
        if (!(da[k] = ct_narrow(dact, 1, k * H, H))) return ct_last_status();
    if (!d) return ct_last_status();
    ct_tensor *parts[4] = {
        ct_mul(plus_opt(ct_mul(d, gg), da[0]), ct_mul(ig, one_minus(ig))),
        ct_mul(plus_opt(ct_mul(d, c), da[1]), ct_mul(fg, one_minus(fg))),
        ct_mul(plus_opt(ct_mul(d, ig), da[2]), one_minus(ct_mul(gg, gg))),
        ct_mul(plus_opt(ct_mul(dh, tc), da[3]), ct_mul(og, one_minus(og))),
    };
    *dg = ct_cat(4, (const ct_tensor *const *)parts, 1);
    *dc = need_c ? ct_mul(d, fg) : NULL;
    return *dg && (!need_c || *dc) ? 0 : ct_last_status();
}

static int lstm_cell_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *act = ct__unpack(n, 0), *cn = ct__unpack(n, 1), *c = ct__unpack(n, 2);
    if (!act || !cn || !c) return ct_last_status();
    /* the node keeps missing gradients NULL (act's, as a rule): only dh must exist */
    ct_tensor *dh = go[0] ? go[0] : ct_zeros(c->ndim, c->sizes, c->dtype), *dcn = go[1], *dact = go[2];
    if (!dh) return ct_last_status();
    int64_t H = c->sizes[1];
    bool need_c = ct__node_needs(n, 1);
    if (!ct__needs_grad(6, (const ct_tensor *[]){dh, dcn, dact, act, cn, c})) {
        /* c may be a strided view of the caller's c0 */
        ct_tensor *a[4] = {ct__contiguous_raw(dh), dcn ? ct__contiguous_raw(dcn) : NULL,
                           dact ? ct__contiguous_raw(dact) : NULL, ct__contiguous_raw(c)};
        ct_tensor *dg = ct__empty_raw(2, (int64_t[]){c->sizes[0], 4 * H}, c->dtype);
        ct_tensor *dc = need_c ? ct__empty_raw(2, c->sizes, c->dtype) : NULL;
        int rc = 0;
        if (!a[0] || (dcn && !a[1]) || (dact && !a[2]) || !a[3] || !dg || (need_c && !dc)) rc = ct_last_status();
        else {
            ct_kernel_args k = {.op = CT_OP_LSTM_CELL_BWD, .n_out = 0 /* dc may be NULL */, .n_in = 6,
                                .out = {dg, dc}, .in = {a[0], a[1], a[2], act, a[3], cn}};
            rc = ct__dispatch(&k);
        }
        for (int i = 0; i < 4; i++) ct_release(a[i]);
        if (rc) {
            ct_release(dg);
            ct_release(dc);
            return rc;
        }
        gi[0] = ct__ret(dg);
        gi[1] = dc ? ct__ret(dc) : NULL;
        return 0;
    }
    return cell_backward_ops(dh, dcn, dact, act, c, cn, need_c, &gi[0], &gi[1]);
}

/* gates [B, 4H] (W_ih x + b + W_hh h), c [B, H] -> h' and *c_out = c' (scope-registered),
 * float32 / float64 only. */
static ct_tensor *lstm_cell_fused(const ct_tensor *gates, const ct_tensor *c, int64_t H, ct_tensor **c_out) {
    ct_dtype dt = gates->dtype;
    int64_t B = gates->sizes[0];
    ct_tensor *gc = ct__contiguous_raw(gates), *cc = ct__contiguous_raw(c);
    ct_tensor *hn = ct__empty_raw(2, (int64_t[]){B, H}, dt), *cn = ct__empty_raw(2, (int64_t[]){B, H}, dt);
    ct_tensor *act = ct__empty_raw(2, (int64_t[]){B, 4 * H}, dt);
    int rc = 0;
    if (!gc || !cc || !hn || !cn || !act) rc = ct_last_status();
    else {
        ct_kernel_args k = {.op = CT_OP_LSTM_CELL, .n_out = 3, .n_in = 2, .out = {hn, cn, act}, .in = {gc, cc}};
        rc = ct__dispatch(&k);
    }
    ct_release(gc);
    ct_release(cc);
    if (!rc && ct__needs_grad(2, (const ct_tensor *[]){gates, c})) {
        ct_node *n = ct__node_new("LstmCellBackward", lstm_cell_backward, 2);
        ct_tensor *outs[3] = {hn, cn, act};
        if (!n || ct__node_set_outputs(n, 3) || ct__node_set_next(n, 0, gates) || ct__node_set_next(n, 1, c) ||
            ct__save_output(n, act, 2) < 0 || ct__save_output(n, cn, 1) < 0 || ct__save(n, c) < 0) {
            if (n) ct__node_release(n);
            rc = ct_last_status();
        } else {
            n->keep_missing = true;
            ct__set_history_multi(outs, 3, n);
        }
    }
    if (rc) {
        ct_release(hn);
        ct_release(cn);
        ct_release(act);
        return NULL;
    }
    ct__ret(act);
    *c_out = ct__ret(cn);
    return ct__ret(hn);
}

/* ---- the recurrent weight's gradient as one product ----
 * A step's gates are gi + h @ W_hh^T; recorded as addmm, each step's backward forms its
 * own W_hh^T gradient h^T @ dgates ([H, B] x [B, 4H]: K = B, a thin product at a third of
 * the GEMM's speed) and the engine sums T of them. Here the steps' products are recorded
 * by RecurrentMmBackward nodes that give h and gi their gradients as addmm does, but hand
 * (h, dgates) to one RecurrentWeightBackward node, the only consumer of W_hh^T; it runs
 * after every step (it depends on all of them) and forms the sum as one product,
 * cat(h)^T @ cat(dgates) ([H, T*B] x [T*B, 4H]). Written in differentiable ops, so under
 * create_graph the deposits carry their history and second derivatives work. Outside
 * create_graph a deposit keeps h without history (no reference cycle through the
 * collector while it waits). */
typedef struct {
    int64_t n;          /* steps (slots) */
    ct_tensor **h, **g; /* slot t: step t's h and dgates, between its backward and the collector's */
} rec_deposits;

static void rec_clear(rec_deposits *d) {
    for (int64_t t = 0; t < d->n; t++) {
        ct_release(d->h[t]);
        ct_release(d->g[t]);
        d->h[t] = d->g[t] = NULL;
    }
}
static void rec_free(void *p) {
    rec_deposits *d = p;
    if (!d) return;
    rec_clear(d);
    free(d->h);
    free(d);
}

static int rec_collect_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    /* go[0]: what reached the alias along ordinary edges — zeros in a first backward (no
     * step passes a gradient along its edge), the gradient of the alias's uses inside the
     * steps' backward (g @ W_hh) in a second one */
    rec_deposits *d = n->ctx;
    ct_tensor **hs = malloc(sizeof *hs * (size_t)(2 * d->n)), **gs = hs ? hs + d->n : NULL;
    if (!hs) return ct__errs(CT_ERR_OOM, "RecurrentWeightBackward: out of memory");
    int k = 0;
    for (int64_t t = 0; t < d->n; t++)
        if (d->g[t]) hs[k] = d->h[t], gs[k++] = d->g[t];
    int rc = 0;
    if (ct__node_needs(n, 0)) {
        if (k) {
            ct_tensor *H = ct_cat(k, (const ct_tensor *const *)hs, 0), *G = ct_cat(k, (const ct_tensor *const *)gs, 0);
            gi[0] = ct_add(go[0], ct_mm(ct_t(H), G)); /* [H, 4H]: the gradient of W_hh^T */
        } else {
            gi[0] = ct__pass(go[0]);
        }
        if (!gi[0]) rc = ct_last_status();
    }
    free(hs);
    rec_clear(d);
    return rc;
}

/* The collector for the T steps of one direction: returns an alias of whh_t (W_hh^T)
 * whose history is the collector (scope-registered), or NULL with an error. */
static ct_tensor *rec_collector(const ct_tensor *whh_t, int64_t T) {
    rec_deposits *d = calloc(1, sizeof *d);
    ct_tensor **slots = calloc((size_t)(2 * T), sizeof *slots);
    ct_node *n = d && slots ? ct__node_new("RecurrentWeightBackward", rec_collect_backward, 1) : NULL;
    ct_tensor *alias = n ? ct__alias(whh_t, whh_t->ndim, whh_t->sizes, whh_t->strides, whh_t->offset) : NULL;
    if (!alias || ct__node_set_next(n, 0, whh_t)) {
        ct_release(alias);
        if (n) ct__node_release(n);
        free(slots);
        free(d);
        return ct__err(CT_ERR_OOM, "LSTM: out of memory");
    }
    d->n = T, d->h = slots, d->g = slots + T;
    n->ctx = d;
    n->ctx_free = rec_free;
    ct__set_history(alias, n, 0);
    return ct__ret(alias);
}

static int rec_mm_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    if (ct__node_needs(n, 0)) gi[0] = ct__pass(go[0]);
    if (ct__node_needs(n, 1)) {
        ct_tensor *w = ct__unpack(n, (int)n->i[1]);
        if (!w || !(gi[1] = ct_mm(go[0], ct_t(w)))) return ct_last_status();
    }
    if (ct__node_needs(n, 2)) {
        ct_tensor *h = ct__unpack(n, (int)n->i[0]);
        if (!h) return ct_last_status();
        rec_deposits *d = n->next[2].node->ctx;
        int64_t t = n->i[2];
        bool graph = ct__needs_grad(2, (const ct_tensor *[]){go[0], h});
        ct_tensor *hk = graph ? ct_retain(h) : ct__alias(h, h->ndim, h->sizes, h->strides, h->offset);
        if (!hk) return ct_last_status();
        ct_release(d->h[t]);
        ct_release(d->g[t]);
        d->h[t] = hk;
        d->g[t] = ct_retain(go[0]);
    }
    return 0;
}

/* gates = gi + h @ whh (whh: rec_collector's alias), step t, recorded for the collector */
static ct_tensor *rec_addmm(const ct_tensor *gi, const ct_tensor *h, const ct_tensor *whh, int64_t t) {
    bool prev = ct_set_grad_enabled(false);
    ct_tensor *g = ct_addmm(gi, h, whh, 1.0, 1.0);
    ct_set_grad_enabled(prev);
    if (!g || !ct__needs_grad(3, (const ct_tensor *[]){gi, h, whh})) return g;
    ct_node *n = ct__node_new("RecurrentMmBackward", rec_mm_backward, 3);
    if (!n || ct__node_set_next(n, 0, gi) || ct__node_set_next(n, 1, h) || ct__node_set_next(n, 2, whh) ||
        (n->i[0] = ct__save(n, h)) < 0 || (n->i[1] = ct__save(n, whh)) < 0) {
        if (n) ct__node_release(n);
        return NULL;
    }
    n->i[2] = t;
    ct__set_history(g, n, 0);
    return g;
}

/* ---- one time step (batched, 2-D) ----
 * gi: this step's input projection [B, G*H]: W_ih x + b_ih + b_hh for RNN and LSTM (both
 * biases folded in), W_ih x + b_ih for GRU (whose b_hn sits inside r * (...)).
 * whh_t = W_hh^T [Hr, G*H]; bhh: GRU's b_hh or NULL; whr_t = W_hr^T [H, Hr] or NULL;
 * slot >= 0: an LSTM step t whose recurrent product goes to rec_collector's node.
 * Returns h' and for LSTM *c_out = c' (scope-registered; NULL on error). */
static ct_tensor *step(rnn_mode mode, const ct_tensor *gi, const ct_tensor *h, const ct_tensor *c,
                       const ct_tensor *whh_t, const ct_tensor *bhh, const ct_tensor *whr_t, int64_t H,
                       int64_t slot, ct_tensor **c_out) {
    switch (mode) {
    case M_TANH: return ct_tanh(ct_addmm(gi, h, whh_t, 1.0, 1.0));
    case M_RELU: return ct_relu(ct_addmm(gi, h, whh_t, 1.0, 1.0));
    case M_LSTM: {
        ct_tensor *g = slot >= 0 ? rec_addmm(gi, h, whh_t, slot) : ct_addmm(gi, h, whh_t, 1.0, 1.0), *q[3], *inf[2];
        if (g && (g->dtype == CT_FLOAT32 || g->dtype == CT_FLOAT64)) {
            ct_tensor *hn = lstm_cell_fused(g, c, H, c_out);
            if (hn && whr_t) hn = ct_mm(hn, whr_t);
            return hn;
        }
        if (!g || pieces(g, 1, 3, (int64_t[]){2 * H, H, H}, false, q)) return NULL;
        ct_tensor *in_forget = ct_sigmoid(q[0]); /* i and f in one op */
        if (!in_forget || pieces(in_forget, 1, 2, (int64_t[]){H, H}, false, inf)) return NULL;
        ct_tensor *cell = ct_tanh(q[1]);
        ct_tensor *out = ct_sigmoid(q[2]);
        /* c' = f * c + i * g; h' = o * tanh(c') */
        ct_tensor *cn = ct_addcmul(ct_mul(inf[1], c), inf[0], cell, 1.0);
        ct_tensor *hn = ct_mul(out, ct_tanh(cn));
        if (whr_t) hn = ct_mm(hn, whr_t);
        *c_out = cn;
        return cn ? hn : NULL;
    }
    case M_GRU: {
        ct_tensor *hg = bhh ? ct_addmm(bhh, h, whh_t, 1.0, 1.0) : ct_mm(h, whh_t), *xs[2], *hs[2], *r_z[2];
        const int64_t sz[2] = {2 * H, H};
        if (!hg || pieces(gi, 1, 2, sz, false, xs) || pieces(hg, 1, 2, sz, false, hs)) return NULL;
        /* r and z in one op; n = tanh(x_n + r * (W_hn h + b_hn)); h' = n + z * (h - n) */
        ct_tensor *rz = ct_sigmoid(ct_add(xs[0], hs[0]));
        if (!rz || pieces(rz, 1, 2, (int64_t[]){H, H}, false, r_z)) return NULL;
        ct_tensor *n = ct_tanh(ct_addcmul(xs[1], r_z[0], hs[1], 1.0));
        return ct_lerp(n, h, r_z[1]);
    }
    }
    return ct__err(CT_ERR_RUNTIME, "rnn: unknown mode");
}

/* The bias folded into the input projection (see step): b_ih + b_hh, or b_ih for GRU. */
static ct_tensor *input_bias(rnn_mode mode, const ct_tensor *b_ih, const ct_tensor *b_hh) {
    if (!b_ih) return NULL;
    return mode == M_GRU ? (ct_tensor *)b_ih : ct_add(b_ih, b_hh);
}

/* x [N, In] -> x W^T + b [N, G*H] */
static ct_tensor *linear(const ct_tensor *x, const ct_tensor *w, const ct_tensor *b) {
    return b ? ct_addmm(b, x, ct_t(w), 1.0, 1.0) : ct_mm(x, ct_t(w));
}

/* ---- argument checks shared by cells and layers ---- */
static int check_float(const char *op, const ct_tensor *t, const char *what, ct_dtype dt) {
    if (t->dtype != dt)
        return ct__errs(CT_ERR_DTYPE, "%s: expected %s to have dtype %s like the input, got %s", op, what, TDT(dt),
                        TDT(t->dtype));
    return 0;
}

static int check_shape(const char *op, const ct_tensor *t, const char *what, int nd, const int64_t *sizes) {
    if (!ct__same_sizes(t->ndim, t->sizes, nd, sizes))
        return ct__errs(CT_ERR_SHAPE, "%s: expected %s of shape %s, got %s", op, what, CT_SIZESSTR(nd, sizes),
                        CT_SHAPESTR(t));
    return 0;
}

/* ---- cells ---- */
/* Checks and runs one cell: h' (and *cy). */
static ct_tensor *cell(rnn_mode mode, const ct_tensor *input, const ct_tensor *hx, const ct_tensor *cx,
                       const ct_tensor *w_ih, const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh,
                       ct_tensor **cy) {
    const char *op = cell_name(mode);
    if (cy) *cy = NULL;
    CT_CHECK_ARG(op, input);
    CT_CHECK_ARG(op, w_ih);
    CT_CHECK_ARG(op, w_hh);
    if (!ct_dtype_is_floating(input->dtype))
        return ct__err(CT_ERR_DTYPE, "%s: expected a floating point input, got %s", op, TDT(input->dtype));
    if (input->ndim != 1 && input->ndim != 2)
        return ct__err(CT_ERR_SHAPE, "%s: Expected input to be 1D or 2D, got %dD instead", op, input->ndim);
    const ct_tensor *st[2] = {hx, cx};
    for (int k = 0; k < (mode == M_LSTM ? 2 : 1); k++)
        if (st[k] && st[k]->ndim != 1 && st[k]->ndim != 2) {
            if (mode == M_LSTM) return ct__err(CT_ERR_SHAPE, "%s: Expected hx[%d] to be 1D or 2D, got %dD instead", op, k, st[k]->ndim);
            return ct__err(CT_ERR_SHAPE, "%s: Expected hidden to be 1D or 2D, got %dD instead", op, st[k]->ndim);
        }
    bool batched = input->ndim == 2;
    /* an unbatched input gets a batch dim, and so do its states (torch's unsqueeze(0)) */
    for (int k = 0; k < 2; k++)
        if (st[k] && st[k]->ndim + (batched ? 0 : 1) != 2)
            return ct__err(CT_ERR_SHAPE, "%s: Expected 2D hidden%d (batch x hidden_size), but got %dD tensor", op, k,
                           st[k]->ndim + (batched ? 0 : 1));
    if (w_ih->ndim != 2 || w_hh->ndim != 2)
        return ct__err(CT_ERR_SHAPE, "%s: expected 2-D weights, got weight_ih %s and weight_hh %s", op,
                       CT_SHAPESTR(w_ih), CT_SHAPESTR(w_hh));
    int64_t H = w_hh->sizes[1], G = n_gates(mode), isz = input->sizes[input->ndim - 1];
    int64_t B = batched ? input->sizes[0] : 1;
    if (w_hh->sizes[0] != G * H)
        return ct__err(CT_ERR_SHAPE, "%s: expected weight_hh of shape [%lld, %lld] (%lld gates), got %s", op,
                       (long long)(G * H), (long long)H, (long long)G, CT_SHAPESTR(w_hh));
    if (w_ih->sizes[0] != G * H)
        return ct__err(CT_ERR_SHAPE, "%s: expected weight_ih with %lld rows, got %s", op, (long long)(G * H),
                       CT_SHAPESTR(w_ih));
    if (isz != w_ih->sizes[1])
        return ct__err(CT_ERR_SHAPE, "%s: input has inconsistent input_size: got %lld expected %lld", op, (long long)isz,
                       (long long)w_ih->sizes[1]);
    if ((b_ih == NULL) != (b_hh == NULL))
        return ct__err(CT_ERR_ARG, "%s: give both biases or neither", op);
    if (check_float(op, w_ih, "weight_ih", input->dtype) || check_float(op, w_hh, "weight_hh", input->dtype))
        return NULL;
    if (b_ih && (check_float(op, b_ih, "bias_ih", input->dtype) || check_float(op, b_hh, "bias_hh", input->dtype) ||
                 check_shape(op, b_ih, "bias_ih", 1, (int64_t[]){G * H}) ||
                 check_shape(op, b_hh, "bias_hh", 1, (int64_t[]){G * H})))
        return NULL;
    for (int k = 0; k < 2; k++) {
        if (!st[k]) continue;
        int64_t sb = batched ? st[k]->sizes[0] : 1, sh = st[k]->sizes[st[k]->ndim - 1];
        if (sb != B)
            return ct__err(CT_ERR_SHAPE, "%s: Input batch size %lld doesn't match hidden%d batch size %lld", op,
                           (long long)B, k, (long long)sb);
        if (sh != H)
            return ct__err(CT_ERR_SHAPE, "%s: hidden%d has inconsistent hidden_size: got %lld, expected %lld", op, k,
                           (long long)sh, (long long)H);
        if (check_float(op, st[k], k ? "cx" : "hx", input->dtype)) return NULL;
    }
    if (ct_scope_begin()) return NULL;
    ct_tensor *x = batched ? (ct_tensor *)input : ct_unsqueeze(input, 0);
    ct_tensor *h = hx ? (batched ? (ct_tensor *)hx : ct_unsqueeze(hx, 0)) : ct_zeros(CT_SHAPE(B, H), input->dtype);
    ct_tensor *c = NULL;
    if (mode == M_LSTM)
        c = cx ? (batched ? (ct_tensor *)cx : ct_unsqueeze(cx, 0)) : ct_zeros(CT_SHAPE(B, H), input->dtype);
    ct_tensor *gi = linear(x, w_ih, input_bias(mode, b_ih, b_hh));
    ct_tensor *cn = NULL;
    ct_tensor *hn = gi ? step(mode, gi, h, c, ct_t(w_hh), mode == M_GRU ? b_hh : NULL, NULL, H, -1, &cn) : NULL;
    if (!batched) {
        hn = ct_squeeze_dim(hn, 0);
        if (cn) cn = ct_squeeze_dim(cn, 0);
    }
    hn = hn ? ct_keep(hn) : NULL;
    if (hn && cy && cn) *cy = ct_keep(cn);
    ct_scope_end();
    return hn;
}

CT_API ct_tensor *ct_nn_rnn_tanh_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                      const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh) {
    return cell(M_TANH, input, hx, NULL, w_ih, w_hh, b_ih, b_hh, NULL);
}
CT_API ct_tensor *ct_nn_rnn_relu_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                      const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh) {
    return cell(M_RELU, input, hx, NULL, w_ih, w_hh, b_ih, b_hh, NULL);
}
CT_API ct_tensor *ct_nn_lstm_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *cx,
                                  const ct_tensor *w_ih, const ct_tensor *w_hh, const ct_tensor *b_ih,
                                  const ct_tensor *b_hh, ct_tensor **cy) {
    return cell(M_LSTM, input, hx, cx, w_ih, w_hh, b_ih, b_hh, cy);
}
CT_API ct_tensor *ct_nn_gru_cell(const ct_tensor *input, const ct_tensor *hx, const ct_tensor *w_ih,
                                 const ct_tensor *w_hh, const ct_tensor *b_ih, const ct_tensor *b_hh) {
    return cell(M_GRU, input, hx, NULL, w_ih, w_hh, b_ih, b_hh, NULL);
}

/* ---- full layers ---- */
/* The weights of one layer and direction. */
typedef struct {
    const ct_tensor *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
} dir_params;

/* ---- an LSTM direction as one node (float32/float64, no projection) ----
 * The step-by-step graph above records five nodes per step, and its backward copies every
 * step's gate gradients twice (stacked for the input projection, concatenated for W_hh),
 * zero-fills a gradient for every step's activations and copies each step's input
 * projection before adding the recurrent product. Here one node holds the whole direction,
 * as PyTorch's fused CPU layer does:
 *   forward: G = x W_ih^T + (b_ih + b_hh) for all steps at once, then per step
 *     G_t += h_{t-1} W_hh^T in place and the cell kernel writes h_t, c_t, tanh(c_t) and
 *     the gate activations into whole-sequence buffers (hb: h_0 and every h_t, one block,
 *     so the output is a window of it and the h_{t-1} of every step is another; tanh(c_t)
 *     kept so the backward kernel does not evaluate it again: 2.5 -> 1.3 ms of the
 *     bench's backward);
 *   backward: per step (last first) the cell's backward kernel writes dG_t into one
 *     [T, B, 4H] buffer and dh_{t-1} = dG_t W_hh; then dx = dG W_ih, dW_ih = dG^T x,
 *     dW_hh = dG^T [h_{t-1}], db = the column sums of dG, each one product.
 * Outputs, final states and the gradients of x, W_ih and the biases are the step-by-step
 * graph's bits for fewer than 8 steps (the same kernels in the same order: the GEMM adds
 * the recurrent product to G_t as addmm adds it to its copy); from 8 steps on the
 * recurrent product reads a contiguous copy of W_hh^T, which the GEMM library may block
 * differently (last-bit differences); W_hh's gradient is formed as dG^T h, a [4H, H] product,
 * where the step-by-step graph formed its transpose h^T dG, so it may differ in the last
 * bit (the sums are the same, the BLAS blocks them another way).
 * Outputs: 0 y [T, B, H], 1 h_n, 2 c_n, 3 act [T, B, 4H], 4 cs [T, B, H] (every c_t;
 * outputs so that under create_graph a graph built from them reaches this node again).
 * Missing output gradients stay NULL (keep_missing): no zero-filled [T, B, 4H] buffer.
 * Under create_graph the backward is the same recursion in differentiable ops. */
enum { LS_X, LS_H0, LS_C0, LS_WIH, LS_WHH, LS_Y, LS_ACT, LS_CS, LS_TC, LS_N }; /* saved slots (LS_TC: tanh(c_t)) */

/* A header over rows [r0, r0 + rows) of the [R, ...] contiguous tensor t, seen as 2-D
 * [rows * inner, cols] (inner: the rows' middle size), borrowed: no reference taken. */
static ct_tensor *rows2(ct_tensor *dst, const ct_tensor *t, int64_t r0, int64_t rows) {
    int64_t cols = t->sizes[t->ndim - 1], per = t->strides[0]; /* elements per row of dim 0 */
    int64_t n = rows * (per / (cols ? cols : 1));
    ct__alias_borrowed(dst, t, 2, (int64_t[]){n, cols}, (int64_t[]){cols, 1}, t->offset + r0 * per);
    return dst;
}

/* C = A @ B (+ C when beta is 1) on the GEMM kernel; 2-D operands of any strides */
static int mm_into(const ct_tensor *A, const ct_tensor *B, ct_tensor *C, double beta) {
    ct_tensor a3, b3, c3;
    const ct_tensor *m[3] = {A, B, C};
    ct_tensor *h[3] = {&a3, &b3, &c3};
    for (int k = 0; k < 3; k++)
        ct__alias_borrowed(h[k], m[k], 3, (int64_t[]){1, m[k]->sizes[0], m[k]->sizes[1]},
                           (int64_t[]){0, m[k]->strides[0], m[k]->strides[1]}, m[k]->offset);
    ct_kernel_args k = {.op = CT_OP_GEMM, .n_out = 1, .n_in = 2, .out = {&c3}, .in = {&a3, &b3}, .d = {1.0, beta}};
    return ct__dispatch(&k);
}

/* The transpose of a contiguous 2-D w, borrowed */
static ct_tensor *tr2(ct_tensor *dst, const ct_tensor *w) {
    ct__alias_borrowed(dst, w, 2, (int64_t[]){w->sizes[1], w->sizes[0]}, (int64_t[]){1, w->sizes[1]}, w->offset);
    return dst;
}

/* Backward in differentiable ops (create_graph): the recursion of lstm_layer_backward. */
static int lstm_layer_backward_ops(ct_node *n, ct_tensor *const *go, ct_tensor **gi, ct_tensor *const *sv) {
    const ct_tensor *x = sv[LS_X], *h0 = sv[LS_H0], *c0 = sv[LS_C0], *wih = sv[LS_WIH], *whh = sv[LS_WHH];
    const ct_tensor *y = sv[LS_Y], *act = sv[LS_ACT], *cs = sv[LS_CS];
    const int64_t T = x->sizes[0], B = x->sizes[1], In = x->sizes[2], H = whh->sizes[1], G = 4 * H;
    const bool reverse = n->i[0];
    ct_tensor **dgs = calloc((size_t)T, sizeof *dgs);
    if (!dgs) return ct__errs(CT_ERR_OOM, "LSTM backward: out of memory");
    ct_tensor *dh = go[1], *dc = go[2];
    int rc = 0;
    for (int64_t s = 0; s < T && !rc; s++) {
        int64_t t = reverse ? s : T - 1 - s, tp = reverse ? t + 1 : t - 1; /* tp: the step before t */
        bool first = s == T - 1;
        ct_tensor *dy = go[0] ? ct_select(go[0], 0, t) : NULL, *dcs = go[4] ? ct_select(go[4], 0, t) : NULL;
        ct_tensor *dat = go[3] ? ct_select(go[3], 0, t) : NULL;
        if ((go[0] && !dy) || (go[4] && !dcs) || (go[3] && !dat)) { rc = ct_last_status(); break; }
        ct_tensor *dht = dy && dh ? ct_add(dy, dh) : dy ? dy : dh ? dh : ct_zeros(CT_SHAPE(B, H), x->dtype);
        ct_tensor *dct = dcs && dc ? ct_add(dc, dcs) : dcs ? dcs : dc;
        if (!dht || ((dcs || dc) && !dct)) { rc = ct_last_status(); break; }
        rc = cell_backward_ops(dht, dct, dat, ct_select(act, 0, t), first ? c0 : ct_select(cs, 0, tp), ct_select(cs, 0, t),
                               !first || ct__node_needs(n, LS_C0), &dgs[t], &dc);
        if (!rc && (!first || ct__node_needs(n, LS_H0)) && !(dh = ct_mm(dgs[t], whh))) rc = ct_last_status();
    }
    ct_tensor *dg = rc ? NULL : ct_reshape(ct_stack((int)T, (const ct_tensor *const *)dgs, 0), CT_SHAPE(T * B, G));
    free(dgs);
    if (rc || !dg) return rc ? rc : ct_last_status();
    if (ct__node_needs(n, LS_X) && !(gi[0] = ct_reshape(ct_mm(dg, wih), CT_SHAPE(T, B, In)))) return ct_last_status();
    if (ct__node_needs(n, LS_H0)) gi[1] = ct__pass(dh);
    if (ct__node_needs(n, LS_C0)) gi[2] = ct__pass(dc);
    ct_tensor *dgt = ct_t(dg);
    if (ct__node_needs(n, 3) && !(gi[3] = ct_mm(dgt, ct_reshape(x, CT_SHAPE(T * B, In))))) return ct_last_status();
    if (ct__node_needs(n, 4)) {
        ct_tensor *h0r = ct_unsqueeze(h0, 0), *prev = h0r;
        if (T > 1) {
            ct_tensor *rest = ct_narrow(y, 0, reverse ? 1 : 0, T - 1);
            prev = ct_cat(2, (const ct_tensor *[]){reverse ? rest : h0r, reverse ? h0r : rest}, 0);
        }
        if (!(gi[4] = ct_mm(dgt, ct_reshape(prev, CT_SHAPE(T * B, H))))) return ct_last_status();
    }
    if (ct__node_needs(n, 5) || ct__node_needs(n, 6)) {
        ct_tensor *db = ct_sum_dim(dg, 1, (int64_t[]){0}, false, CT_NUM_DTYPES);
        if (!db) return ct_last_status();
        if (ct__node_needs(n, 5)) gi[5] = ct__pass(db);
        if (ct__node_needs(n, 6)) gi[6] = ct__pass(db);
    }
    return 0;
}

static int lstm_layer_backward(ct_node *n, ct_tensor *const *go, ct_tensor **gi) {
    ct_tensor *sv[LS_N];
    for (int k = 0; k < LS_N; k++)
        if (!(sv[k] = ct__unpack(n, k))) return ct_last_status();
    const ct_tensor *chk[13] = {sv[0], sv[1], sv[2], sv[3], sv[4], sv[5], sv[6], sv[7], go[0], go[1], go[2], go[3], go[4]};
    if (ct__needs_grad(13, chk)) return lstm_layer_backward_ops(n, go, gi, sv);
    const ct_tensor *y = sv[LS_Y], *act = sv[LS_ACT], *cs = sv[LS_CS], *tc = sv[LS_TC];
    const int64_t T = y->sizes[0], B = y->sizes[1], H = y->sizes[2], G = 4 * H, In = sv[LS_X]->sizes[2];
    const ct_dtype dt = y->dtype;
    const bool reverse = n->i[0];
    /* contiguous copies where needed (the kernels take contiguous operands) */
    ct_tensor *own[8] = {0};
    ct_tensor *x = own[0] = ct__contiguous_raw(sv[LS_X]), *c0 = own[1] = ct__contiguous_raw(sv[LS_C0]);
    ct_tensor *wih = own[2] = ct__contiguous_raw(sv[LS_WIH]), *whh = own[3] = ct__contiguous_raw(sv[LS_WHH]);
    ct_tensor *dy = own[4] = go[0] ? ct__contiguous_raw(go[0]) : NULL, *dhn = own[5] = go[1] ? ct__contiguous_raw(go[1]) : NULL;
    ct_tensor *dcn = own[6] = go[2] ? ct__contiguous_raw(go[2]) : NULL, *dact = own[7] = go[3] ? ct__contiguous_raw(go[3]) : NULL;
    ct_tensor *dcs = go[4] ? ct__contiguous_raw(go[4]) : NULL;
    ct_tensor *dg = ct__empty_raw(3, (int64_t[]){T, B, G}, dt);
    ct_tensor *buf = ct__empty_raw(3, (int64_t[]){4, B, H}, dt); /* dh (two), dc (two), alternating */
    int rc = 0;
    if (!x || !c0 || !wih || !whh || (go[0] && !dy) || (go[1] && !dhn) || (go[2] && !dcn) || (go[3] && !dact) ||
        (go[4] && !dcs) || !dg || !buf)
        rc = ct_last_status();
    ct_tensor hdh[2], hdc[2], hy, hcs, hdcs, hact, hdact, hdg, hcp, *dh_in = dhn, *dc_in = dcn;
    if (!rc && !dy && !dhn) rc = ct__fill_raw(rows2(&hdh[1], buf, 1, 1), 0); /* no dh reached the last step */
    if (!rc && !dy && !dhn) dh_in = &hdh[1];
    for (int64_t s = 0; s < T && !rc; s++) {
        int64_t t = reverse ? s : T - 1 - s, tp = reverse ? t + 1 : t - 1;
        bool first = s == T - 1; /* the first step in time order: its c_{t-1} is c0 */
        /* dh_t = dy_t + (dh_{t} from the later step) */
        if (dy) {
            rows2(&hy, dy, t, 1);
            if (dh_in) {
                ct_tensor *o = dh_in == &hdh[0] || dh_in == &hdh[1] ? dh_in : rows2(&hdh[s & 1], buf, s & 1, 1);
                ct_kernel_args k = {.op = CT_OP_ADD, .n_out = 1, .n_in = 2, .out = {o}, .in = {dh_in, &hy}, .d = {1.0}};
                rc = ct__dispatch(&k);
                dh_in = o;
            } else dh_in = &hy;
        }
        if (!rc && dcs) { /* dc_t += the gradient reaching c_t itself */
            rows2(&hdcs, dcs, t, 1);
            if (dc_in) {
                ct_tensor *o = dc_in == &hdc[0] || dc_in == &hdc[1] ? dc_in : rows2(&hdc[s & 1], buf, 2 + (s & 1), 1);
                ct_kernel_args k = {.op = CT_OP_ADD, .n_out = 1, .n_in = 2, .out = {o}, .in = {dc_in, &hdcs}, .d = {1.0}};
                rc = ct__dispatch(&k);
                dc_in = o;
            } else dc_in = &hdcs;
        }
        if (rc) break;
        bool want_dc = !first || ct__node_needs(n, LS_C0), want_dh = !first || ct__node_needs(n, LS_H0);
        ct_tensor *dc_out = want_dc ? rows2(&hdc[(s + 1) & 1], buf, 2 + ((s + 1) & 1), 1) : NULL;
        ct_tensor *cprev = first ? c0 : rows2(&hcp, cs, tp, 1);
        ct_kernel_args k = {.op = CT_OP_LSTM_CELL_BWD, .n_out = 0, .n_in = 6, .out = {rows2(&hdg, dg, t, 1), dc_out},
                            .in = {dh_in, dc_in, dact ? rows2(&hdact, dact, t, 1) : NULL, rows2(&hact, act, t, 1), cprev,
                                   rows2(&hcs, tc, t, 1)},
                            .i = {1}};
        rc = ct__dispatch(&k);
        dc_in = dc_out;
        if (!rc && want_dh) { /* dh_{t-1} = dG_t W_hh */
            ct_tensor *o = rows2(&hdh[(s + 1) & 1], buf, (s + 1) & 1, 1);
            rc = mm_into(&hdg, whh, o, 0.0);
            dh_in = o;
        }
    }
    if (!rc && ct__node_needs(n, LS_H0)) {
        ct_tensor *r = ct__empty_raw(2, (int64_t[]){B, H}, dt);
        rc = r ? ct__copy_raw(r, dh_in) : ct_last_status();
        gi[1] = r;
    }
    if (!rc && ct__node_needs(n, LS_C0)) {
        ct_tensor *r = ct__empty_raw(2, (int64_t[]){B, H}, dt);
        rc = r ? ct__copy_raw(r, dc_in) : ct_last_status();
        gi[2] = r;
    }
    ct_tensor hg2, hx2, hp2;
    rows2(&hg2, dg, 0, T);
    if (!rc && ct__node_needs(n, LS_X)) { /* dx = dG W_ih */
        ct_tensor *r = ct__empty_raw(3, (int64_t[]){T, B, In}, dt);
        rc = r ? mm_into(&hg2, wih, rows2(&hx2, r, 0, T), 0.0) : ct_last_status();
        gi[0] = r;
    }
    /* dG^T copied contiguous once for both weight gradients: the GEMM reads a transposed
     * [4H, T B] operand much slower (dG^T x with T B = 2048, 4H = 1024, In = 256: 5.1-5.7
     * ms through the view, 3.6 ms contiguous; the copy 0.6 ms alone, 1.7 ms in the
     * layer's backward, where dG comes back from memory) */
    ct_tensor dgv, *dgt = NULL;
    if (!rc && (ct__node_needs(n, 3) || ct__node_needs(n, 4))) {
        dgt = ct__empty_raw(2, (int64_t[]){G, T * B}, dt);
        rc = dgt ? ct__copy_raw(dgt, tr2(&dgv, &hg2)) : ct_last_status();
    }
    if (!rc && ct__node_needs(n, 3)) { /* dW_ih = dG^T x */
        ct_tensor *r = ct__empty_raw(2, (int64_t[]){G, In}, dt);
        rc = r ? mm_into(dgt, rows2(&hx2, x, 0, T), r, 0.0) : ct_last_status();
        gi[3] = r;
    }
    if (!rc && ct__node_needs(n, 4)) { /* dW_hh = dG^T [h_{t-1}]: the rows of hb before (after) y's */
        ct_tensor *r = ct__empty_raw(2, (int64_t[]){G, H}, dt);
        ct__alias_borrowed(&hp2, y, 2, (int64_t[]){T * B, H}, (int64_t[]){H, 1}, y->offset + (reverse ? B * H : -B * H));
        rc = r ? mm_into(dgt, &hp2, r, 0.0) : ct_last_status();
        gi[4] = r;
    }
    ct_release(dgt);
    ct_tensor *db = NULL;
    if (!rc && (ct__node_needs(n, 5) || ct__node_needs(n, 6))) {
        db = ct_sum_dim(&hg2, 1, (int64_t[]){0}, false, CT_NUM_DTYPES); /* scope-registered */
        if (!db) rc = ct_last_status();
    }
    for (int k = 0; k < 8; k++) ct_release(own[k]);
    ct_release(dcs);
    ct_release(dg);
    ct_release(buf);
    for (int k = 0; k < 5; k++) {
        if (rc) { ct_release(gi[k]); gi[k] = NULL; }
        else if (gi[k]) ct__ret(gi[k]);
    }
    if (rc) return rc;
    if (ct__node_needs(n, 5)) gi[5] = ct__pass(db);
    if (ct__node_needs(n, 6)) gi[6] = ct__pass(db);
    return 0;
}

/* One LSTM direction over x [T, B, In] (B, In > 0) as one node; returns y
 * [T, B, H] and *h_last, *c_last (scope-registered), or NULL. */
static ct_tensor *lstm_direction(const ct_tensor *x, const dir_params *p, int64_t H, const ct_tensor *h0,
                                 const ct_tensor *c0, bool reverse, ct_tensor **h_last, ct_tensor **c_last) {
    const int64_t T = x->sizes[0], B = x->sizes[1], G = 4 * H;
    const ct_dtype dt = x->dtype;
    const ct_tensor *ins[7] = {x, h0, c0, p->w_ih, p->w_hh, p->b_ih, p->b_hh};
    const bool grad = ct__needs_grad(7, ins);
    ct_tensor *own[5] = {ct__contiguous_raw(p->w_ih), ct__contiguous_raw(p->w_hh), ct__contiguous_raw(h0),
                         ct__contiguous_raw(c0), ct__contiguous_raw(x)};
    ct_tensor *wih = own[0], *whh = own[1], *h0c = own[2], *c0c = own[3], *xc = own[4];
    ct_tensor *gates = ct__empty_raw(3, (int64_t[]){T, B, G}, dt);
    ct_tensor *hb = ct__empty_raw(3, (int64_t[]){T + 1, B, H}, dt);
    /* without a graph only the current step's activations and two cell states are kept */
    ct_tensor *act = ct__empty_raw(3, (int64_t[]){grad ? T : 1, B, G}, dt);
    ct_tensor *cs = ct__empty_raw(3, (int64_t[]){grad ? T : 2, B, H}, dt);
    ct_tensor *tc = grad ? ct__empty_raw(3, (int64_t[]){T, B, H}, dt) : NULL; /* tanh(c_t), for backward */
    ct_tensor *y = NULL, *hn = NULL, *cn = NULL;
    int rc = wih && whh && h0c && c0c && xc && gates && hb && act && cs && (!grad || tc) ? 0 : ct_last_status();
    ct_tensor hw, hx, hg, hh, hh2, hc, hc2, ha, ht, wt;
    /* G = x W_ih^T, then each step G_t += h_{t-1} W_hh^T and the cell kernel adds
     * b = b_ih + b_hh as it reads G_t (filling G with the bias first, for the GEMM to add
     * to, wrote and read back [T, B, 4H] once more: 1.1 ms of a 10 ms forward at
     * T = 64, B = 32, H = 256) */
    ct_tensor *bias = NULL;
    if (!rc && p->b_ih) { /* in the layer's scope */
        bool prev = ct_set_grad_enabled(false);
        if (!(bias = ct_add(p->b_ih, p->b_hh))) rc = ct_last_status();
        ct_set_grad_enabled(prev);
    }
    if (!rc) rc = mm_into(rows2(&hx, xc, 0, T), tr2(&wt, wih), rows2(&hg, gates, 0, T), 0.0);
    if (!rc) rc = ct__copy_raw(rows2(&hh, hb, reverse ? T : 0, 1), h0c);
    /* W_hh^T: from 8 steps on copied contiguous once, so that each step's product reads B
     * untransposed (on an AVX-512 Xeon 32 x 1024 x 256 took 86 us so, against 134-220 us
     * with B transposed; the copy costs about three steps' difference) */
    ct_tensor *whh_t = NULL;
    if (!rc && T >= 8 && !(whh_t = ct__contiguous_raw(tr2(&hw, whh)))) rc = ct_last_status();
    const ct_tensor *wrec = whh_t ? whh_t : whh ? tr2(&hw, whh) : NULL; /* NULL only with rc set */
    for (int64_t s = 0; s < T && !rc; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        int64_t ci = grad ? t : s & 1, cpi = grad ? (reverse ? t + 1 : t - 1) : (s + 1) & 1;
        rows2(&hg, gates, t, 1);
        rc = mm_into(rows2(&hh, hb, reverse ? t + 1 : t, 1), wrec, &hg, 1.0); /* G_t += h_{t-1} W_hh^T */
        ct_kernel_args k = {.op = CT_OP_LSTM_CELL, .n_out = grad ? 4 : 3, .n_in = 3,
                            .out = {rows2(&hh2, hb, reverse ? t : t + 1, 1), rows2(&hc, cs, ci, 1),
                                    rows2(&ha, act, grad ? t : 0, 1), grad ? rows2(&ht, tc, t, 1) : NULL},
                            .in = {&hg, s == 0 ? c0c : rows2(&hc2, cs, cpi, 1), bias}};
        if (!rc) rc = ct__dispatch(&k);
    }
    if (!rc) { /* y: hb without h0; h_n and c_n: copies (their own tensors, as PyTorch's) */
        y = ct__alias(hb, 3, (int64_t[]){T, B, H}, (int64_t[]){B * H, H, 1}, hb->offset + (reverse ? 0 : B * H));
        hn = ct__empty_raw(2, (int64_t[]){B, H}, dt);
        cn = ct__empty_raw(2, (int64_t[]){B, H}, dt);
        rc = y && hn && cn ? 0 : ct_last_status();
        if (!rc) rc = ct__copy_raw(hn, rows2(&hh, hb, reverse ? 0 : T, 1));
        if (!rc) rc = ct__copy_raw(cn, rows2(&hc, cs, grad ? (reverse ? 0 : T - 1) : (T - 1) & 1, 1));
    }
    if (!rc && grad) {
        ct_node *n = ct__node_new("LstmBackward", lstm_layer_backward, 7);
        ct_tensor *outs[5] = {y, hn, cn, act, cs};
        rc = n ? ct__node_set_outputs(n, 5) : ct_last_status();
        for (int i = 0; i < 7 && !rc; i++) rc = ct__node_set_next(n, i, ins[i]);
        for (int i = 0; i < 5 && !rc; i++) rc = ct__save(n, ins[i]) < 0 ? ct_last_status() : 0;
        if (!rc && (ct__save_output(n, y, 0) < 0 || ct__save_output(n, act, 3) < 0 || ct__save_output(n, cs, 4) < 0 ||
                    ct__save(n, tc) < 0))
            rc = ct_last_status();
        if (rc) {
            if (n) ct__node_release(n);
        } else {
            n->i[0] = reverse;
            n->keep_missing = true;
            ct__set_history_multi(outs, 5, n);
        }
    }
    for (int k = 0; k < 5; k++) ct_release(own[k]);
    ct_release(whh_t);
    ct_release(gates);
    ct_release(hb);
    ct_release(act);
    ct_release(cs);
    ct_release(tc);
    if (rc) {
        ct_release(y);
        ct_release(hn);
        ct_release(cn);
        return NULL;
    }
    *h_last = ct__ret(hn);
    *c_last = ct__ret(cn);
    return ct__ret(y);
}

/* One direction of one layer over x [T, B, In] (contiguous). Returns its output
 * [T, B, Hr] and the final states *h_last, *c_last (scope-registered). */
static ct_tensor *run_direction(rnn_mode mode, const ct_tensor *x, const dir_params *p, int64_t H,
                                const ct_tensor *h0, const ct_tensor *c0, bool reverse, ct_tensor **h_last,
                                ct_tensor **c_last) {
    int64_t T = x->sizes[0], B = x->sizes[1], G = n_gates(mode);
    *h_last = *c_last = NULL;
    if (mode == M_LSTM && !p->w_hr && (x->dtype == CT_FLOAT32 || x->dtype == CT_FLOAT64) && B > 0 && x->sizes[2] > 0)
        return lstm_direction(x, p, H, h0, c0, reverse, h_last, c_last);
    /* the input projection of all T steps at once: [T*B, In] x [In, G*H] */
    ct_tensor *xp = ct_view(linear(ct_view(x, CT_SHAPE(T * B, x->sizes[2])), p->w_ih, input_bias(mode, p->b_ih, p->b_hh)),
                            CT_SHAPE(T, B, G * H));
    ct_tensor *whh_t = ct_t(p->w_hh), *whr_t = p->w_hr ? ct_t(p->w_hr) : NULL;
    const ct_tensor *bhh = mode == M_GRU ? p->b_hh : NULL;
    /* LSTM: W_hh's gradient as one product over the steps (rec_collector) */
    bool rec = mode == M_LSTM && whh_t && ct__needs_grad(1, (const ct_tensor *[]){whh_t});
    if (rec) whh_t = rec_collector(whh_t, T);
    if (!xp || !whh_t || (p->w_hr && !whr_t)) return NULL;
    ct_tensor **hs = calloc((size_t)(2 * T), sizeof *hs), **xs = hs ? hs + T : NULL;
    if (!hs) return ct__err(CT_ERR_OOM, "%s: out of memory", layer_name(mode));
    if (pieces(xp, 0, (int)T, NULL, true, xs)) { /* the T steps' projections, one node */
        free(hs);
        return NULL;
    }
    /* The states are held as plain references (hs[t] and c) so that each step's scope can
     * free everything else it made; the previous c is dropped once the next exists. h0
     * and c0 are borrowed from the caller. */
    const ct_tensor *h = h0;
    ct_tensor *c = c0 ? ct_retain((ct_tensor *)c0) : NULL;
    bool ok = true;
    for (int64_t s = 0; s < T && ok; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        if (ct_scope_begin()) {
            ok = false;
            break;
        }
        ct_tensor *cn = NULL;
        ct_tensor *hn = step(mode, xs[t], h, c, whh_t, bhh, whr_t, H, rec ? t : -1, &cn);
        ok = hn != NULL;
        if (ok) {
            hs[t] = ct_retain(hn);
            if (mode == M_LSTM) {
                ct_release(c);
                c = ct_retain(cn);
            }
        }
        ct_scope_end();
        h = hs[t];
    }
    ct_tensor *out = NULL;
    if (ok) {
        out = ct_stack((int)T, (const ct_tensor *const *)hs, 0);
        *h_last = ct__ret(ct_retain(hs[reverse ? 0 : T - 1]));
        if (c) *c_last = ct__ret(ct_retain(c));
    }
    for (int64_t t = 0; t < T; t++) ct_release(hs[t]);
    ct_release(c);
    free(hs);
    return out;
}

/* Checks the arguments of a full layer; fills the per-(layer, direction) weights and
 * the sizes. 0 or status. */
static int check_layer(rnn_mode mode, const ct_tensor *input, const ct_tensor *h0, const ct_tensor *c0, int n_params,
                       const ct_tensor *const *params, const ct_rnn_opts *o, int64_t L, int D, dir_params *dp,
                       int64_t *H_out, int64_t *Hr_out) {
    const char *op = layer_name(mode);
    CT_CHECK_ARG_S(op, input);
    if (input->ndim != 2 && input->ndim != 3)
        return ct__errs(CT_ERR_SHAPE, "%s: Expected input to be 2D or 3D, got %dD%s instead", op, input->ndim,
                        mode == M_LSTM || mode == M_GRU ? "" : " tensor");
    if (!ct_dtype_is_floating(input->dtype))
        return ct__errs(CT_ERR_DTYPE, "%s: expected a floating point input, got %s", op, TDT(input->dtype));
    if (L < 1) return ct__errs(CT_ERR_ARG, "%s: num_layers must be greater than zero", op);
    if (!(o->dropout >= 0 && o->dropout <= 1))
        return ct__errs(CT_ERR_ARG, "%s: dropout should be a number in range [0, 1] representing the probability of "
                                    "an element being zeroed", op);
    if (n_params < 0 || (n_params > 0 && !params) || n_params % (L * D) != 0)
        return ct__errs(CT_ERR_ARG, "%s: expected a multiple of %lld weights (num_layers * directions), got %d", op,
                        (long long)(L * D), n_params);
    int k = n_params / (int)(L * D);
    bool bias = k >= 4, proj = k == 3 || k == 5;
    if (k < 2 || k > 5 || (proj && mode != M_LSTM))
        return ct__errs(CT_ERR_ARG, "%s: expected 2 or 4 weights per layer and direction%s, got %d", op,
                        mode == M_LSTM ? " (3 or 5 with a projection)" : "", k);
    for (int i = 0; i < n_params; i++) CT_CHECK_ARG_S(op, params[i]);
    for (int64_t g = 0; g < L * D; g++) {
        const ct_tensor *const *q = params + g * k;
        dp[g] = (dir_params){q[0], q[1], bias ? q[2] : NULL, bias ? q[3] : NULL, proj ? q[k - 1] : NULL};
    }
    bool batched = input->ndim == 3;
    int64_t G = n_gates(mode), isz = input->sizes[input->ndim - 1];
    int64_t T = batched ? input->sizes[o->batch_first ? 1 : 0] : input->sizes[0];
    int64_t B = batched ? input->sizes[o->batch_first ? 0 : 1] : 1;
    const ct_tensor *w0 = dp[0].w_hh;
    if (w0->ndim != 2 || w0->sizes[0] % G)
        return ct__errs(CT_ERR_SHAPE, "%s: expected weight_hh_l0 of shape [%lld * hidden_size, hidden_size], got %s", op,
                        (long long)G, CT_SHAPESTR(w0));
    if (proj && dp[0].w_hr->ndim != 2)
        return ct__errs(CT_ERR_SHAPE, "%s: expected a 2-D weight_hr_l0, got %s", op, CT_SHAPESTR(dp[0].w_hr));
    int64_t H = w0->sizes[0] / G, Hr = proj ? dp[0].w_hr->sizes[0] : H;
    if (H <= 0) return ct__errs(CT_ERR_SHAPE, "%s: hidden_size must be greater than zero", op);
    if (input->dtype != dp[0].w_ih->dtype)
        return ct__errs(CT_ERR_DTYPE, "%s input dtype (%s) does not match weight dtype (%s). Convert input: input.to(%s), "
                                      "or convert model: model.to(%s)", op, TDT(input->dtype), TDT(dp[0].w_ih->dtype),
                        TDT(dp[0].w_ih->dtype), TDT(input->dtype));
    for (int64_t g = 0; g < L * D; g++) {
        char nm[64];
        int64_t l = g / D;
        const char *sfx = g % D ? "_reverse" : "";
        int64_t in = l == 0 ? isz : D * Hr;
        if (l == 0 && dp[g].w_ih->ndim == 2 && dp[g].w_ih->sizes[1] != isz)
            return ct__errs(CT_ERR_SHAPE, "%s: input.size(-1) must be equal to input_size. Expected %lld, got %lld", op,
                            (long long)dp[g].w_ih->sizes[1], (long long)isz);
        snprintf(nm, sizeof nm, "weight_ih_l%lld%s", (long long)l, sfx);
        if (check_shape(op, dp[g].w_ih, nm, 2, (int64_t[]){G * H, in}) || check_float(op, dp[g].w_ih, nm, input->dtype))
            return ct_last_status();
        snprintf(nm, sizeof nm, "weight_hh_l%lld%s", (long long)l, sfx);
        if (check_shape(op, dp[g].w_hh, nm, 2, (int64_t[]){G * H, Hr}) || check_float(op, dp[g].w_hh, nm, input->dtype))
            return ct_last_status();
        if (bias) {
            snprintf(nm, sizeof nm, "bias_ih_l%lld%s", (long long)l, sfx);
            if (check_shape(op, dp[g].b_ih, nm, 1, (int64_t[]){G * H}) || check_float(op, dp[g].b_ih, nm, input->dtype))
                return ct_last_status();
            snprintf(nm, sizeof nm, "bias_hh_l%lld%s", (long long)l, sfx);
            if (check_shape(op, dp[g].b_hh, nm, 1, (int64_t[]){G * H}) || check_float(op, dp[g].b_hh, nm, input->dtype))
                return ct_last_status();
        }
        if (proj) {
            snprintf(nm, sizeof nm, "weight_hr_l%lld%s", (long long)l, sfx);
            if (check_shape(op, dp[g].w_hr, nm, 2, (int64_t[]){Hr, H}) || check_float(op, dp[g].w_hr, nm, input->dtype))
                return ct_last_status();
        }
    }
    /* states: [L*D, B, Hr] / [L*D, B, H], or 2-D for an unbatched input */
    int want_nd = batched ? 3 : 2;
    if ((h0 && h0->ndim != want_nd) || (c0 && c0->ndim != want_nd)) {
        if (mode == M_LSTM)
            return ct__errs(CT_ERR_SHAPE, "%s: For %s input, hx and cx should also be %d-D but got (%d-D, %d-D) tensors", op,
                            batched ? "batched 3-D" : "unbatched 2-D", want_nd, h0 ? h0->ndim : want_nd,
                            c0 ? c0->ndim : want_nd);
        return ct__errs(CT_ERR_SHAPE, "%s: For %s input, hx should also be %d-D but got %d-D tensor", op,
                        batched ? "batched 3-D" : "unbatched 2-D", want_nd, h0->ndim);
    }
    const ct_tensor *st[2] = {h0, c0};
    for (int s = 0; s < 2; s++) {
        if (!st[s]) continue;
        int64_t want[3] = {L * D, B, s ? H : Hr};
        int64_t got[3] = {st[s]->sizes[0], batched ? st[s]->sizes[1] : 1, st[s]->sizes[st[s]->ndim - 1]};
        if (!ct__same_sizes(3, got, 3, want)) {
            char w[96];
            snprintf(w, sizeof w, "(%lld, %lld, %lld)", (long long)want[0], (long long)want[1], (long long)want[2]);
            if (mode == M_LSTM)
                return ct__errs(CT_ERR_SHAPE, "%s: Expected hidden[%d] size %s, got %s", op, s, w, CT_SIZESSTR(3, got));
            return ct__errs(CT_ERR_SHAPE, "%s: Expected hidden size %s, got %s", op, w, CT_SIZESSTR(3, got));
        }
        if (check_float(op, st[s], s ? "c0" : "h0", input->dtype)) return ct_last_status();
    }
    if (T == 0) return ct__errs(CT_ERR_SHAPE, "%s: Expected sequence length to be larger than 0 in RNN", op);
    *H_out = H, *Hr_out = Hr;
    return 0;
}

static ct_tensor *layer(rnn_mode mode, const ct_tensor *input, const ct_tensor *h0, const ct_tensor *c0, int n_params,
                        const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n, ct_tensor **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    ct_rnn_opts o = opts ? *opts : (ct_rnn_opts){0};
    int64_t L = o.num_layers ? o.num_layers : 1, H = 0, Hr = 0;
    int D = o.bidirectional ? 2 : 1;
    if (L < 1 || L > (1 << 20)) return ct__err(CT_ERR_ARG, "%s: num_layers must be greater than zero", layer_name(mode));
    dir_params *dp = calloc((size_t)(L * D), sizeof *dp);
    if (!dp) return ct__err(CT_ERR_OOM, "%s: out of memory", layer_name(mode));
    if (check_layer(mode, input, h0, c0, n_params, params, &o, L, D, dp, &H, &Hr)) {
        free(dp);
        return NULL;
    }
    if (ct_scope_begin()) {
        free(dp);
        return NULL;
    }
    bool batched = input->ndim == 3;
    /* to [T, B, In], contiguous */
    ct_tensor *x = !batched ? ct_unsqueeze(input, 1) : o.batch_first ? ct_transpose(input, 0, 1) : (ct_tensor *)input;
    x = ct_contiguous(x);
    ct_tensor *h0b = h0 && !batched ? ct_unsqueeze(h0, 1) : (ct_tensor *)h0;
    ct_tensor *c0b = c0 && !batched ? ct_unsqueeze(c0, 1) : (ct_tensor *)c0;
    int64_t B = x ? x->sizes[1] : 0;
    ct_tensor *zh = NULL, *zc = NULL; /* zero states, shared by every layer and direction */
    if (!h0b) zh = ct_zeros(CT_SHAPE(B, Hr), input->dtype);
    if (mode == M_LSTM && !c0b) zc = ct_zeros(CT_SHAPE(B, H), input->dtype);
    ct_tensor **hl = calloc((size_t)(2 * L * D), sizeof *hl), **cl = hl ? hl + L * D : NULL;
    if (!hl) ct__err(CT_ERR_OOM, "%s: out of memory", layer_name(mode));
    bool ok = x && hl && (h0b || zh) && (mode != M_LSTM || c0b || zc);
    for (int64_t l = 0; l < L && ok; l++) {
        ct_tensor *outs[2] = {NULL, NULL};
        for (int d = 0; d < D && ok; d++) {
            int64_t g = l * D + d;
            ct_tensor *hi = h0b ? ct_select(h0b, 0, g) : zh;
            ct_tensor *ci = mode != M_LSTM ? NULL : c0b ? ct_select(c0b, 0, g) : zc;
            outs[d] = hi && (mode != M_LSTM || ci) ? run_direction(mode, x, &dp[g], H, hi, ci, d == 1, &hl[g], &cl[g])
                                                    : NULL;
            ok = outs[d] != NULL;
        }
        if (!ok) break;
        x = D == 2 ? ct_cat(2, (const ct_tensor *const *)outs, 2) : outs[0];
        if (x && o.train && o.dropout > 0 && l < L - 1) x = ct_dropout(x, o.dropout, true, NULL);
        ok = x != NULL;
    }
    ct_tensor *out = NULL, *hn = NULL, *cn = NULL;
    if (ok) {
        out = !batched ? ct_squeeze_dim(x, 1) : o.batch_first ? ct_transpose(x, 0, 1) : x;
        if (h_n) {
            hn = ct_stack((int)(L * D), (const ct_tensor *const *)hl, 0);
            if (!batched) hn = ct_squeeze_dim(hn, 1);
        }
        if (c_n && mode == M_LSTM) {
            cn = ct_stack((int)(L * D), (const ct_tensor *const *)cl, 0);
            if (!batched) cn = ct_squeeze_dim(cn, 1);
        }
        if (!out || (h_n && !hn) || (c_n && mode == M_LSTM && !cn)) out = NULL;
    }
    if (out) {
        out = ct_keep(out);
        if (hn) *h_n = ct_keep(hn);
        if (cn) *c_n = ct_keep(cn);
    }
    ct_scope_end();
    free(hl);
    free(dp);
    return out;
}

CT_API ct_tensor *ct_nn_rnn_tanh(const ct_tensor *input, const ct_tensor *h0, int n_params,
                                 const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n) {
    return layer(M_TANH, input, h0, NULL, n_params, params, opts, h_n, NULL);
}
CT_API ct_tensor *ct_nn_rnn_relu(const ct_tensor *input, const ct_tensor *h0, int n_params,
                                 const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n) {
    return layer(M_RELU, input, h0, NULL, n_params, params, opts, h_n, NULL);
}
CT_API ct_tensor *ct_nn_lstm(const ct_tensor *input, const ct_tensor *h0, const ct_tensor *c0, int n_params,
                             const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n,
                             ct_tensor **c_n) {
    return layer(M_LSTM, input, h0, c0, n_params, params, opts, h_n, c_n);
}
CT_API ct_tensor *ct_nn_gru(const ct_tensor *input, const ct_tensor *h0, int n_params,
                            const ct_tensor *const *params, const ct_rnn_opts *opts, ct_tensor **h_n) {
    return layer(M_GRU, input, h0, NULL, n_params, params, opts, h_n, NULL);
}
