/* LoRA training of a BERT encoder's top layers; see bert_train.h.
 *
 * Dimension letters: N tokens of a packed chunk, B sequences, T tokens of one
 * sequence, C channels, NH heads, HS head size, F intermediate size, R rank,
 * K a projection's input size, D its output size.
 *
 * A post-LN BERT layer, as bert.c computes it (LoRA terms added to every
 * projection before its bias):
 *     qkv = x [Wq; Wk; Wv]^T (+ LoRA q, k, v)
 *     att = softmax((q + bq)(k + bk)^T / sqrt(HS)) (v + bv)    per sequence and head
 *     r1  = x + (att Wo^T (+ LoRA o) + bo);           x1 = LayerNorm1(r1)
 *     h   = x1 Wi^T (+ LoRA up) + bi;                  g  = GELU(h)
 *     r2  = x1 + (g Wf^T (+ LoRA down) + bf);         y  = LayerNorm2(r2) */
#if defined(__GNUC__) && !defined(__clang__)
/* the attention backward's loops are written to vectorise, which gcc does at -O3 (as bert.c);
   no fp-contract here: the forward's own arithmetic (residual adds, pooling) stays as bert.c's */
#pragma GCC optimize("O3")
#endif
#include "lm/bert_train.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"

const char *const SC_LORA_PROJ_NAME[SC_LORA_PROJ] = {"q", "k", "v", "o", "up", "down"};

void sc_lora_proj_dims(const sc_bert_config *c, int p, int *K, int *D) {
    *K = p == SC_LORA_DOWN ? c->intermediate : c->hidden;
    *D = p == SC_LORA_UP ? c->intermediate : c->hidden;
}

/* ---- stateless layers ---- */

/* Plain loops, not BLAS: OpenBLAS picks its kernel by the matrix sizes (a
 * "small matrix" kernel for a few rows times R = 8, 16 or 32 columns), so a
 * row's result would depend on how many rows share the call, i.e. on which
 * texts share a chunk. Here every row is computed alone, in one order: a
 * text's vector is the same in any chunk (a resumed run computes the same
 * vectors as an uninterrupted one). The cost is small: R is small. AT and
 * BT are scratch of K * R and R * D floats (A and B transposed). */
void sc_lora_forward(float *out, int64_t ldo, float *u, const float *inp, int64_t ldi, const float *A,
                     const float *B, float scale, int64_t N, int K, int D, int R, float *AT, float *BT) {
    for (int r = 0; r < R; r++) {
        for (int k = 0; k < K; k++) AT[(int64_t)k * R + r] = A[(int64_t)r * K + k];
        for (int d = 0; d < D; d++) BT[(int64_t)r * D + d] = scale * B[(int64_t)d * R + r];
    }
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * ldi;
        float *ui = u + i * R, *o = out + i * ldo;
        for (int r = 0; r < R; r++) ui[r] = 0.0f;
        for (int k = 0; k < K; k++)
            for (int r = 0; r < R; r++) ui[r] += x[k] * AT[(int64_t)k * R + r];
        for (int r = 0; r < R; r++)
            for (int d = 0; d < D; d++) o[d] += ui[r] * BT[(int64_t)r * D + d];
    }
}

void sc_lora_backward(float *dinp, float *dA, float *dB, float *du, const float *dout, int64_t ldo,
                      const float *inp, int64_t ldi, const float *u, const float *A, const float *B, float scale,
                      int64_t N, int K, int D, int R) {
    if (N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, R, (int)N, scale, dout, (int)ldo, u, R, 1.0f, dB, R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, R, D, scale, dout, (int)ldo, B, R, 0.0f, du, R);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, K, (int)N, 1.0f, du, R, inp, (int)ldi, 1.0f, dA, K);
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, K, R, 1.0f, du, R, A, K, 1.0f, dinp, (int)ldi);
}

void sc_linear_backward_input(float *dinp, int64_t ldi, const float *dout, int64_t ldo, const float *W, int64_t N,
                              int K, int D) {
    if (N > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, K, D, 1.0f, dout, (int)ldo, W, K, 1.0f, dinp,
                    (int)ldi);
}

void sc_layernorm_backward(float *dinp, const float *dout, const float *inp, const float *w, int64_t N, int C,
                           float eps) {
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C, *dy = dout + i * C;
        float *dx = dinp + i * C;
        float mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= (float)C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= (float)C;
        float rstd = 1.0f / sqrtf(var + eps);
        /* xhat = (x - mean) rstd, g = dy w: dx = rstd (g - mean(g) - xhat mean(g xhat)) */
        float mg = 0, mgx = 0;
        for (int c = 0; c < C; c++) {
            float g = dy[c] * w[c];
            mg += g;
            mgx += g * (x[c] - mean) * rstd;
        }
        mg /= (float)C;
        mgx /= (float)C;
        for (int c = 0; c < C; c++) dx[c] = rstd * (dy[c] * w[c] - mg - (x[c] - mean) * rstd * mgx);
    }
}

void sc_gelu_backward(float *dx, const float *dout, const float *x, int64_t n) {
    /* GELU(x) = x Phi(x): GELU'(x) = Phi(x) + x phi(x) */
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
        dx[i] = dout[i] * (cdf + x[i] * pdf);
    }
}

int64_t sc_attention_head_backward_scratch(int T, int HS) { return 7 * (int64_t)T * HS + 2 * (int64_t)T; }

void sc_attention_head_backward(float *dq, float *dk, float *dv, const float *datt, int64_t ldd, const float *q,
                                const float *k, const float *v, const float *bq, const float *bk, const float *bv,
                                int T, int HS, int64_t ld, float *scratch) {
    const float scale = 1.0f / sqrtf((float)HS);
    /* contiguous copies, keys and values also transposed, so that every inner loop below runs
       over contiguous floats without a reduction (it vectorises) */
    const int64_t TH = (int64_t)T * HS;
    float *qs = scratch, *ks = qs + TH, *kT = ks + TH, *vT = kT + TH, *gq = vT + TH, *gk = gq + TH, *gv = gk + TH;
    float *p = gv + TH, *dp = p + T;
    for (int j = 0; j < T; j++)
        for (int d = 0; d < HS; d++) {
            qs[j * HS + d] = (q[j * ld + d] + bq[d]) * scale;
            ks[j * HS + d] = k[j * ld + d] + bk[d];
            kT[(int64_t)d * T + j] = ks[j * HS + d];
            vT[(int64_t)d * T + j] = v[j * ld + d] + bv[d];
        }
    memset(gk, 0, (size_t)(2 * TH) * sizeof(float)); /* gk, gv */
    for (int i = 0; i < T; i++) {
        const float *qi = qs + (int64_t)i * HS, *da = datt + i * ldd;
        /* the softmax row of query i, recomputed: p = softmax(qs_i . ks_j) */
        for (int j = 0; j < T; j++) p[j] = 0;
        for (int d = 0; d < HS; d++)
            for (int j = 0; j < T; j++) p[j] += qi[d] * kT[(int64_t)d * T + j];
        float mx = p[0];
        for (int j = 1; j < T; j++) mx = p[j] > mx ? p[j] : mx;
        float sum = 0;
        for (int j = 0; j < T; j++) {
            p[j] = sc_exp_approx(p[j] - mx);
            sum += p[j];
        }
        const float inv = 1.0f / sum;
        /* dp_j = datt_i . v_j; dv_j += p_j datt_i */
        for (int j = 0; j < T; j++) {
            p[j] *= inv;
            dp[j] = 0;
        }
        for (int d = 0; d < HS; d++)
            for (int j = 0; j < T; j++) dp[j] += da[d] * vT[(int64_t)d * T + j];
        for (int j = 0; j < T; j++)
            for (int d = 0; d < HS; d++) gv[(int64_t)j * HS + d] += p[j] * da[d];
        /* through the softmax: ds_j = p_j (dp_j - sum_k p_k dp_k); then the scaled dot products */
        float pdp = 0;
        for (int j = 0; j < T; j++) pdp += p[j] * dp[j];
        float *gqi = gq + (int64_t)i * HS;
        for (int d = 0; d < HS; d++) gqi[d] = 0;
        for (int j = 0; j < T; j++) {
            float ds = p[j] * (dp[j] - pdp);
            for (int d = 0; d < HS; d++) {
                gqi[d] += ds * ks[(int64_t)j * HS + d];
                gk[(int64_t)j * HS + d] += ds * qi[d];
            }
        }
    }
    /* qs carries the scale, ks does not: dq = scale sum ds ks, dk = sum ds qs */
    for (int j = 0; j < T; j++)
        for (int d = 0; d < HS; d++) {
            dq[j * ld + d] = gq[(int64_t)j * HS + d] * scale;
            dk[j * ld + d] = gk[(int64_t)j * HS + d];
            dv[j * ld + d] = gv[(int64_t)j * HS + d];
        }
}

void sc_pool_forward(float *out, const float *h, int T, int C, sc_lm_pooling mode) {
    /* the same operations in the same order as encoder.c's pool() */
    if (mode == SC_LM_POOL_CLS) {
        memcpy(out, h, (size_t)C * sizeof(float));
    } else if (mode == SC_LM_POOL_MAX) {
        memcpy(out, h, (size_t)C * sizeof(float));
        for (int t = 1; t < T; t++)
            for (int c = 0; c < C; c++) out[c] = h[(int64_t)t * C + c] > out[c] ? h[(int64_t)t * C + c] : out[c];
    } else {
        for (int c = 0; c < C; c++) out[c] = 0;
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) out[c] += h[(int64_t)t * C + c];
        for (int c = 0; c < C; c++) out[c] /= (float)T;
    }
}

void sc_pool_backward(float *dh, const float *dout, const float *h, int T, int C, sc_lm_pooling mode) {
    memset(dh, 0, (size_t)T * C * sizeof(float));
    if (mode == SC_LM_POOL_CLS) {
        memcpy(dh, dout, (size_t)C * sizeof(float));
    } else if (mode == SC_LM_POOL_MAX) {
        for (int c = 0; c < C; c++) { /* to the first token holding the maximum, as the forward keeps it */
            int best = 0;
            for (int t = 1; t < T; t++)
                if (h[(int64_t)t * C + c] > h[(int64_t)best * C + c]) best = t;
            dh[(int64_t)best * C + c] = dout[c];
        }
    } else {
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) dh[(int64_t)t * C + c] = dout[c] / (float)T;
    }
}

/* ---- the adapted layers of a chunk ---- */

void sc_bert_top_free(sc_bert_top *a) {
    sc_free(a->mem);
    sc_free(a->off);
    sc_free(a->scratch);
    memset(a, 0, sizeof *a);
}

int sc_bert_top_reserve(sc_bert_top *a, const sc_bert_config *c, const sc_lora *lo, int64_t N, int B, int T,
                        int n_threads, sc_error *err) {
    int n_tasks = n_threads > 0 ? n_threads : 1;
    if (N <= a->cap && B <= a->cap_B && T <= a->cap_T && lo->n <= a->n && lo->rank <= a->R && n_tasks <= a->n_tasks)
        return SC_OK;
    if (lo->n < 1 || lo->n > SC_LORA_MAX_LAYERS)
        return sc_fail(err, SC_EINVAL, "LoRA on %d layers: 1 to %d are supported", lo->n, SC_LORA_MAX_LAYERS);
    N = N > a->cap ? N : a->cap;
    B = B > a->cap_B ? B : a->cap_B;
    T = T > a->cap_T ? T : a->cap_T;
    int n = lo->n > a->n ? lo->n : a->n, R = lo->rank > a->R ? lo->rank : a->R;
    n_tasks = n_tasks > a->n_tasks ? n_tasks : a->n_tasks;
    sc_bert_top_free(a);
    const int64_t C = c->hidden, F = c->intermediate;
    /* per layer: x qkv(3) att r1 x1 r2 = 8 C, h g = 2 F, u = 6 R; then out, 3 d_c, d_qkv(3) = 7 C, d_f = F, d_u = R */
    const int64_t per_layer = 8 * C + 2 * F + SC_LORA_PROJ * R;
    int64_t total = N * (n * per_layer + 7 * C + F + R) + 2 * (C > F ? C : F) * R;
    a->mem = sc_aligned_alloc((size_t)(total ? total : 1) * sizeof(float));
    a->off = sc_malloc((size_t)(B + 1) * sizeof *a->off);
    int64_t fwd = sc_attention_scratch(T, (int)(C / c->heads)), bwd = sc_attention_head_backward_scratch(T, (int)(C / c->heads));
    a->scratch_per = ((fwd > bwd ? fwd : bwd) + 15) / 16 * 16;
    a->scratch = sc_aligned_alloc((size_t)(a->scratch_per * n_tasks) * sizeof(float));
    if (!a->mem || !a->off || !a->scratch) {
        sc_bert_top_free(a);
        return sc_fail(err, SC_ENOMEM, "out of memory for the activations of %lld tokens in %d adapted layers",
                       (long long)N, n);
    }
    float *p = a->mem;
#define CARVE(dst, count) (dst = p, p += (count))
    for (int l = 0; l < n; l++) {
        sc_bert_top_layer *L = &a->layer[l];
        CARVE(L->x, N * C);
        CARVE(L->qkv, N * 3 * C);
        for (int q = 0; q < SC_LORA_PROJ; q++) CARVE(L->u[q], N * R);
        CARVE(L->att, N * C);
        CARVE(L->r1, N * C);
        CARVE(L->x1, N * C);
        CARVE(L->h, N * F);
        CARVE(L->g, N * F);
        CARVE(L->r2, N * C);
    }
    CARVE(a->out, N * C);
    for (int i = 0; i < 3; i++) CARVE(a->d_c[i], N * C);
    CARVE(a->d_f, N * F);
    CARVE(a->d_qkv, N * 3 * C);
    CARVE(a->d_u, N * R);
    CARVE(a->lora_t, 2 * (C > F ? C : F) * R);
#undef CARVE
    a->cap = N;
    a->cap_B = B;
    a->cap_T = T;
    a->n = n;
    a->R = R;
    a->n_tasks = n_tasks;
    return SC_OK;
}

/* Attention over (sequence, head) pairs, strided over the tasks as bert.c does. */
typedef struct att_ctx {
    const sc_bert_config *c;
    const sc_bert_layer *W;
    sc_bert_top *a;
    sc_bert_top_layer *L;
    const int *len;
    int B, backward;
    const float *datt; /* backward: (N, C) */
} att_ctx;

static void att_task(void *ctx, int task) {
    att_ctx *t = ctx;
    const int C = t->c->hidden, NH = t->c->heads, HS = C / NH;
    float *scratch = t->a->scratch + t->a->scratch_per * task;
    for (int bh = task; bh < t->B * NH; bh += t->a->n_tasks) {
        int b = bh / NH, h = bh % NH;
        int64_t o = t->a->off[b];
        const float *q = t->L->qkv + o * 3 * C + (int64_t)h * HS;
        const float *bq = t->W->bq + h * HS, *bk = t->W->bk + h * HS, *bv = t->W->bv + h * HS;
        if (!t->backward) {
            sc_attention_head(t->L->att + o * C + (int64_t)h * HS, q, q + C, q + 2 * C, bq, bk, bv, t->len[b], HS,
                              3 * C, C, scratch);
        } else {
            float *dq = t->a->d_qkv + o * 3 * C + (int64_t)h * HS;
            sc_attention_head_backward(dq, dq + C, dq + 2 * C, t->datt + o * C + (int64_t)h * HS, C, q, q + C,
                                       q + 2 * C, bq, bk, bv, t->len[b], HS, 3 * C, scratch);
        }
    }
}

static void run_attention(const sc_bert_config *c, const sc_bert_layer *W, sc_bert_top *a, sc_bert_top_layer *L,
                          const int *len, int B, const float *datt) {
    att_ctx t = {.c = c, .W = W, .a = a, .L = L, .len = len, .B = B, .backward = datt != NULL, .datt = datt};
    int n_tasks = a->n_tasks < B * c->heads ? a->n_tasks : B * c->heads;
    sc_parallel_for(n_tasks, n_tasks, att_task, &t);
}

/* out (n, D) = inp (n, K) @ w^T, as bert.c's matmul. */
static void matmul(float *out, const float *inp, const float *w, int64_t n, int D, int K) {
    if (n > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, D, K, 1.0f, inp, K, w, K, 0.0f, out, D);
}

/* r = x + (t + bias) (bert.c's residual, in its order), then y = LayerNorm(r). */
static void residual_ln(float *y, float *r, const float *x, const float *t, const float *bias, const float *w,
                        const float *b, int64_t N, int C, float eps) {
    for (int64_t i = 0; i < N; i++)
        for (int c = 0; c < C; c++) r[i * C + c] = x[i * C + c] + (t[i * C + c] + bias[c]);
    sc_layernorm_forward(y, r, w, b, N, C, eps);
}

static int check_chunk(const sc_bert_config *c, const sc_lora *lo, const sc_bert_top *a, const int *len, int B,
                       int64_t *N, sc_error *err) {
    if (lo->first < 0 || lo->n < 1 || lo->first + lo->n != c->layers || lo->n > a->n || lo->rank > a->R)
        return sc_fail(err, SC_EINVAL, "LoRA on layers %d..%d of a %d-layer model, buffers for %d layers of rank %d",
                       lo->first, lo->first + lo->n - 1, c->layers, a->n, a->R);
    if (B > a->cap_B) return sc_fail(err, SC_EINVAL, "%d sequences; the buffers hold %d", B, a->cap_B);
    *N = 0;
    for (int b = 0; b < B; b++) {
        if (len[b] < 1 || len[b] > a->cap_T)
            return sc_fail(err, SC_EINVAL, "sequence %d has %d tokens; the buffers take 1 to %d", b, len[b], a->cap_T);
        a->off[b] = *N;
        *N += len[b];
    }
    a->off[B] = *N;
    if (*N > a->cap) return sc_fail(err, SC_EINVAL, "%lld tokens; the buffers hold %lld", (long long)*N, (long long)a->cap);
    return SC_OK;
}

int sc_bert_top_forward(const sc_bert *m, const sc_lora *lo, const float *x0, const int *len, int B,
                        sc_bert_top *a, sc_error *err) {
    const sc_bert_config *c = &m->cfg;
    const int C = c->hidden, F = c->intermediate, R = lo->rank;
    int64_t N;
    int rc = check_chunk(c, lo, a, len, B, &N, err);
    if (rc || B == 0) return rc;
    memcpy(a->layer[0].x, x0, (size_t)N * C * sizeof(float));
    for (int i = 0; i < lo->n; i++) {
        const sc_bert_layer *W = &m->w.layer[lo->first + i];
        sc_bert_top_layer *L = &a->layer[i];
        float *y = i + 1 < lo->n ? a->layer[i + 1].x : a->out;
        float *const *A = lo->A[i], *const *Bw = lo->B[i];
        float *t = a->d_c[0]; /* a projection's output before its residual */
        matmul(L->qkv, L->x, W->wqkv, N, 3 * C, C);
        float *AT = a->lora_t, *BT = a->lora_t + (int64_t)(C > F ? C : F) * R; /* room for any projection's K, D */
        for (int p = SC_LORA_Q; p <= SC_LORA_V; p++)
            sc_lora_forward(L->qkv + p * C, 3 * C, L->u[p], L->x, C, A[p], Bw[p], lo->scale, N, C, C, R, AT, BT);
        run_attention(c, W, a, L, len, B, NULL);
        matmul(t, L->att, W->wo, N, C, C);
        sc_lora_forward(t, C, L->u[SC_LORA_O], L->att, C, A[SC_LORA_O], Bw[SC_LORA_O], lo->scale, N, C, C, R, AT, BT);
        residual_ln(L->x1, L->r1, L->x, t, W->bo, W->ln1_w, W->ln1_b, N, C, c->ln_eps);
        matmul(L->h, L->x1, W->wi, N, F, C);
        sc_lora_forward(L->h, F, L->u[SC_LORA_UP], L->x1, C, A[SC_LORA_UP], Bw[SC_LORA_UP], lo->scale, N, C, F, R, AT,
                        BT);
        for (int64_t r = 0; r < N; r++)
            for (int k = 0; k < F; k++) L->h[r * F + k] += W->bi[k];
        memcpy(L->g, L->h, (size_t)N * F * sizeof(float));
        sc_gelu_forward(L->g, N * F);
        matmul(t, L->g, W->wf, N, C, F);
        sc_lora_forward(t, C, L->u[SC_LORA_DOWN], L->g, F, A[SC_LORA_DOWN], Bw[SC_LORA_DOWN], lo->scale, N, F, C, R, AT,
                        BT);
        residual_ln(y, L->r2, L->x1, t, W->bf, W->ln2_w, W->ln2_b, N, C, c->ln_eps);
    }
    return SC_OK;
}

int sc_bert_top_backward(const sc_bert *m, sc_lora *lo, sc_bert_top *a, float *dout, const int *len, int B,
                         sc_error *err) {
    const sc_bert_config *c = &m->cfg;
    const int C = c->hidden, F = c->intermediate, R = lo->rank;
    int64_t N;
    int rc = check_chunk(c, lo, a, len, B, &N, err);
    if (rc || B == 0) return rc;
    float *dy = dout, *dr = a->d_c[0], *dx1 = a->d_c[1], *datt = a->d_c[2], *dg = a->d_f, *du = a->d_u;
    for (int i = lo->n - 1; i >= 0; i--) {
        const sc_bert_layer *W = &m->w.layer[lo->first + i];
        sc_bert_top_layer *L = &a->layer[i];
        float *const *A = lo->A[i], *const *Bw = lo->B[i], *const *dA = lo->dA[i], *const *dB = lo->dB[i];
        const float s = lo->scale;
        /* y = LN2(x1 + down(g) + bf): the residual and the down projection both get dr */
        sc_layernorm_backward(dr, dy, L->r2, W->ln2_w, N, C, c->ln_eps);
        memcpy(dx1, dr, (size_t)N * C * sizeof(float));
        memset(dg, 0, (size_t)N * F * sizeof(float));
        sc_linear_backward_input(dg, F, dr, C, W->wf, N, F, C);
        sc_lora_backward(dg, dA[SC_LORA_DOWN], dB[SC_LORA_DOWN], du, dr, C, L->g, F, L->u[SC_LORA_DOWN],
                         A[SC_LORA_DOWN], Bw[SC_LORA_DOWN], s, N, F, C, R);
        sc_gelu_backward(dg, dg, L->h, N * F);
        /* h = up(x1) + bi */
        sc_linear_backward_input(dx1, C, dg, F, W->wi, N, C, F);
        sc_lora_backward(dx1, dA[SC_LORA_UP], dB[SC_LORA_UP], du, dg, F, L->x1, C, L->u[SC_LORA_UP], A[SC_LORA_UP],
                         Bw[SC_LORA_UP], s, N, C, F, R);
        /* x1 = LN1(x + o(att) + bo) */
        sc_layernorm_backward(dr, dx1, L->r1, W->ln1_w, N, C, c->ln_eps);
        memset(datt, 0, (size_t)N * C * sizeof(float));
        sc_linear_backward_input(datt, C, dr, C, W->wo, N, C, C);
        sc_lora_backward(datt, dA[SC_LORA_O], dB[SC_LORA_O], du, dr, C, L->att, C, L->u[SC_LORA_O], A[SC_LORA_O],
                         Bw[SC_LORA_O], s, N, C, C, R);
        run_attention(c, W, a, L, len, B, datt);
        /* qkv = x [Wq; Wk; Wv]^T: the input's gradient only when a layer below is adapted */
        float *dx = i > 0 ? dy : NULL;
        if (dx) {
            memcpy(dx, dr, (size_t)N * C * sizeof(float)); /* the residual */
            sc_linear_backward_input(dx, C, a->d_qkv, 3 * C, W->wqkv, N, C, 3 * C);
        }
        for (int p = SC_LORA_Q; p <= SC_LORA_V; p++)
            sc_lora_backward(dx, dA[p], dB[p], du, a->d_qkv + p * C, 3 * C, L->x, C, L->u[p], A[p], Bw[p], s, N, C,
                             C, R);
    }
    return SC_OK;
}
