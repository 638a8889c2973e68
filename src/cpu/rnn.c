/* Fused CPU kernels for the pointwise part of an LSTM cell (what follows the two
 * matmuls of a step), float32 and float64, every tensor contiguous, rows of B in parallel.
 *
 * CT_OP_LSTM_CELL: in[0] gates [B, 4H] (pre-activations of the input, forget, cell and
 *   output gates, PyTorch's order), in[1] c [B, H], optional in[2] bias [4H] added to
 *   every row of the gates first. out[0] h' [B, H], out[1] c' [B, H],
 *   out[2] act [B, 4H] = (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)).
 *   Optional out[3] [B, H]: tanh(c') kept (for the backward, which then need not
 *   recompute it). c' = f * c + i * g and h' = o * tanh(c'), rounded as PyTorch's CPU cell rounds them
 *   (two products, then the sum; no fused multiply-add), with the sigmoid and tanh loops
 *   of the ops themselves (ct__cpu_unary_contig), so the numbers are ct_sigmoid's and
 *   ct_tanh's.
 * CT_OP_LSTM_CELL_BWD: in[0] dh' [B, H], in[1] dc' [B, H], in[2] dact [B, 4H] (the
 *   gradient reaching act itself: zeros in a first-order backward), in[3] act, in[4] c,
 *   in[5] c' (with i[0] = 1: tanh(c') as the forward kept it); in[1] and in[2] may be NULL
 *   (zeros: no gradient reached c' or act). out[0]
 *   dgates [B, 4H], out[1] dc [B, H] (NULL: not wanted). With
 *   tc = tanh(c'): dc'' = dc' + dh' o (1 - tc^2), and
 *   dgates = ((dc'' g + dact_i) i(1-i), (dc'' c + dact_f) f(1-f), (dc'' i + dact_g)(1-g^2),
 *   (dh' tc + dact_o) o(1-o)); dc = dc'' f. */
#include <omp.h>
#include <stdlib.h>

#include "cpu/loops.h"

#define LSTM_ROWS(T, SFX)                                                                              \
    CT_LOOP_ATTR static void lstm_bias_row_##SFX(T *restrict o, const T *restrict g, const T *restrict b,   \
                                                 int64_t n) {                                                \
        for (int64_t j = 0; j < n; j++) o[j] = g[j] + b[j];                                                  \
    }                                                                                                        \
    CT_LOOP_ATTR static void lstm_fwd_row_##SFX(const T *restrict c, const T *restrict act, T *restrict cn,   \
                                                int64_t H) {                                                 \
        const T *i = act, *f = act + H, *g = act + 2 * H;                                                    \
        for (int64_t j = 0; j < H; j++) {                                                                    \
            T fc = f[j] * c[j], ig = i[j] * g[j];                                                            \
            cn[j] = fc + ig;                                                                                 \
        }                                                                                                    \
    }                                                                                                        \
    CT_LOOP_ATTR static void lstm_out_row_##SFX(const T *restrict o, const T *tc, T *hn, int64_t H) {       \
        for (int64_t j = 0; j < H; j++) hn[j] = o[j] * tc[j];                                                \
    }                                                                                                        \
    CT_LOOP_ATTR static void lstm_bwd_row_##SFX(const T *restrict dh, const T *restrict dcn,                \
                                                const T *restrict dact, const T *restrict act,               \
                                                const T *restrict c, const T *restrict tc, T *restrict dg,   \
                                                T *restrict dc, int64_t H) {                                 \
        const T *i = act, *f = act + H, *g = act + 2 * H, *o = act + 3 * H;                                  \
        for (int64_t j = 0; j < H; j++) {                                                                    \
            T t = tc[j], d = dcn[j] + (dh[j] * o[j]) * ((T)1 - t * t);                                       \
            T di = d * g[j], df = d * c[j], dgg = d * i[j], dob = dh[j] * t;                                 \
            di += dact[j], df += dact[H + j], dgg += dact[2 * H + j], dob += dact[3 * H + j];                \
            dg[j] = di * (i[j] * ((T)1 - i[j]));                                                             \
            dg[H + j] = df * (f[j] * ((T)1 - f[j]));                                                         \
            dg[2 * H + j] = dgg * ((T)1 - g[j] * g[j]);                                                      \
            dg[3 * H + j] = dob * (o[j] * ((T)1 - o[j]));                                                    \
            if (dc) dc[j] = d * f[j];                                                                        \
        }                                                                                                    \
    }
LSTM_ROWS(float, f32)
LSTM_ROWS(double, f64)

/* rows run in parallel once a step has this many hidden units in all */
#define LSTM_GRAIN 4096

#define LSTM_KERNELS(T, SFX)                                                                                     \
    static void lstm_fwd_##SFX(const ct_kernel_args *a, int64_t B, int64_t H) {                              \
        const T *gates = ct__data(a->in[0]), *c = ct__data(a->in[1]);                                        \
        const T *bias = a->n_in > 2 && a->in[2] ? (const T *)ct__data(a->in[2]) : NULL;                      \
        T *hn = ct__data(a->out[0]), *cn = ct__data(a->out[1]), *act = ct__data(a->out[2]);                  \
        T *tcs = a->out[3] ? (T *)ct__data(a->out[3]) : NULL;                                                \
        ct_dtype dt = a->in[0]->dtype;                                                                       \
        _Pragma("omp parallel for schedule(static) if (B * H >= LSTM_GRAIN && B > 1)")                      \
        for (int64_t b = 0; b < B; b++) {                                                                    \
            const T *gr = gates + b * 4 * H;                                                                 \
            T *ar = act + b * 4 * H;                                                                         \
            if (bias) { /* the activations then run in place */                                              \
                lstm_bias_row_##SFX(ar, gr, bias, 4 * H);                                                    \
                gr = ar;                                                                                     \
            }                                                                                                \
            ct__cpu_unary_contig(CT_OP_SIGMOID, dt, ar, gr, 2 * H);                                          \
            ct__cpu_unary_contig(CT_OP_TANH, dt, ar + 2 * H, gr + 2 * H, H);                                 \
            ct__cpu_unary_contig(CT_OP_SIGMOID, dt, ar + 3 * H, gr + 3 * H, H);                              \
            lstm_fwd_row_##SFX(c + b * H, ar, cn + b * H, H);                                                 \
            T *tc = tcs ? tcs + b * H : hn + b * H; /* tanh(c'), kept when asked for */                      \
            ct__cpu_unary_contig(CT_OP_TANH, dt, tc, cn + b * H, H);                                         \
            lstm_out_row_##SFX(ar + 3 * H, tc, hn + b * H, H);                                               \
        }                                                                                                    \
    }                                                                                                        \
    static int lstm_bwd_##SFX(const ct_kernel_args *a, int64_t B, int64_t H) {                               \
        const T *dh = ct__data(a->in[0]);                                                                    \
        const T *dcn = a->in[1] ? (const T *)ct__data(a->in[1]) : NULL;                                      \
        const T *dact = a->in[2] ? (const T *)ct__data(a->in[2]) : NULL;                                     \
        const T *act = ct__data(a->in[3]), *c = ct__data(a->in[4]), *cn = ct__data(a->in[5]);                \
        const T *tcs = a->i[0] ? cn : NULL; /* in[5] is tanh(c') already */                                  \
        T *dg = ct__data(a->out[0]), *dc = a->out[1] ? (T *)ct__data(a->out[1]) : NULL;                      \
        ct_dtype dt = a->in[0]->dtype;                                                                       \
        int fail = 0;                                                                                        \
        _Pragma("omp parallel if (B * H >= LSTM_GRAIN && B > 1) reduction(| : fail)")                       \
        {                                                                                                    \
            /* tc: tanh(c') of a row; then 4H zeros standing in for an absent dc' or dact */                 \
            T *tc = dcn && dact ? malloc(sizeof(T) * (size_t)H) : calloc((size_t)(5 * H), sizeof(T));        \
            if (!tc) fail = 1;                                                                               \
            _Pragma("omp for schedule(static)")                                                             \
            for (int64_t b = 0; b < B; b++) {                                                                \
                if (!tc) continue;                                                                           \
                if (!tcs) ct__cpu_unary_contig(CT_OP_TANH, dt, tc, cn + b * H, H);                           \
                lstm_bwd_row_##SFX(dh + b * H, dcn ? dcn + b * H : tc + H, dact ? dact + b * 4 * H : tc + H, \
                                   act + b * 4 * H, c + b * H, tcs ? tcs + b * H : tc, dg + b * 4 * H,       \
                                   dc ? dc + b * H : NULL, H);                                               \
            }                                                                                                \
            free(tc);                                                                                        \
        }                                                                                                    \
        return fail ? ct__errs(CT_ERR_OOM, "lstm_cell_backward: out of memory") : 0;                         \
    }
LSTM_KERNELS(float, f32)
LSTM_KERNELS(double, f64)

static int cpu_lstm_cell(const ct_kernel_args *a) {
    int64_t B = a->in[1]->sizes[0], H = a->in[1]->sizes[1];
    switch (a->in[0]->dtype) {
    case CT_FLOAT32: lstm_fwd_f32(a, B, H); return 0;
    case CT_FLOAT64: lstm_fwd_f64(a, B, H); return 0;
    default: return ct__errs(CT_ERR_DTYPE, "lstm_cell: expected float32 or float64, got %s", ct_dtype_name(a->in[0]->dtype));
    }
}

static int cpu_lstm_cell_backward(const ct_kernel_args *a) {
    int64_t B = a->in[0]->sizes[0], H = a->in[0]->sizes[1];
    switch (a->in[0]->dtype) {
    case CT_FLOAT32: return lstm_bwd_f32(a, B, H);
    case CT_FLOAT64: return lstm_bwd_f64(a, B, H);
    default:
        return ct__errs(CT_ERR_DTYPE, "lstm_cell_backward: expected float32 or float64, got %s",
                        ct_dtype_name(a->in[0]->dtype));
    }
}

void ct_cpu_register_rnn(ct_kernel_fn *k) {
    k[CT_OP_LSTM_CELL] = cpu_lstm_cell;
    k[CT_OP_LSTM_CELL_BWD] = cpu_lstm_cell_backward;
}
