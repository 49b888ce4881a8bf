/* BERT encoder forward pass (post-LN transformer).
 *
 * Dimension letters: B sequences in a batch, T tokens of one sequence,
 * N tokens of the whole packed batch (sum of T), C hidden channels,
 * NH heads, HS = C / NH head size, F intermediate (feed-forward) size,
 * V vocabulary, P positions.
 *
 * GEMMs go through OpenBLAS (its own threads); attention, GELU and the
 * residual + LayerNorm steps are split over sc_parallel_for tasks. */
#if defined(__GNUC__) && !defined(__clang__)
/* The exp/erf/attention loops below are written to vectorise; gcc only does
 * so for loops of unknown trip count at -O3 (clang already does at -O2), and
 * only fuses a*b+c into FMA when contraction is allowed (off in ISO C mode). */
#pragma GCC optimize("O3", "fp-contract=fast")
#endif
#include "lm/bert.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "lm/qmatmul.h" /* the bfloat16 tiles */

/* ---- config and weights ---- */

static int cfg_int(const cJSON *root, const char *key, int dflt, int lo, int hi, int *out, const char *path,
                   sc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) {
        if (dflt < 0) return sc_fail(err, SC_EFORMAT, "%s: field '%s' is missing", path, key);
        *out = dflt;
        return SC_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble || v->valueint < lo || v->valueint > hi)
        return sc_fail(err, SC_EFORMAT, "%s: field '%s' must be an integer in [%d, %d]", path, key, lo, hi);
    *out = v->valueint;
    return SC_OK;
}

static int read_config(sc_bert_config *c, const char *dir, sc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *buf;
    size_t len;
    int rc = sc_read_file(path, &buf, &len, err);
    if (rc != SC_OK) return rc;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    sc_free(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sc_fail(err, SC_EFORMAT, "%s: not a JSON object", path);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    const cJSON *pet = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, "bert") != 0)
        rc = sc_fail(err, SC_EFORMAT, "%s: model_type '%s' is not supported (a BERT-family encoder, 'bert', is)", path,
                     mt->valuestring);
    else if (cJSON_IsString(act) && strcmp(act->valuestring, "gelu") != 0)
        rc = sc_fail(err, SC_EFORMAT, "%s: hidden_act '%s' is not supported ('gelu' is)", path, act->valuestring);
    else if (cJSON_IsString(pet) && strcmp(pet->valuestring, "absolute") != 0)
        rc = sc_fail(err, SC_EFORMAT, "%s: position_embedding_type '%s' is not supported ('absolute' is)", path,
                     pet->valuestring);
    if (rc == SC_OK) rc = cfg_int(root, "vocab_size", -1, 1, 10000000, &c->vocab_size, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "max_position_embeddings", 512, 1, 1 << 20, &c->max_pos, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "type_vocab_size", 2, 1, 1 << 16, &c->type_vocab, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "hidden_size", -1, 1, 1 << 16, &c->hidden, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "num_hidden_layers", -1, 1, 1024, &c->layers, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "num_attention_heads", -1, 1, 1024, &c->heads, path, err);
    if (rc == SC_OK) rc = cfg_int(root, "intermediate_size", -1, 1, 1 << 20, &c->intermediate, path, err);
    if (rc == SC_OK && c->hidden % c->heads != 0)
        rc = sc_fail(err, SC_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                     c->heads);
    c->ln_eps = 1e-12f;
    if (rc == SC_OK && eps) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || eps->valuedouble > 1)
            rc = sc_fail(err, SC_EFORMAT, "%s: layer_norm_eps must be a number in (0, 1]", path);
        else
            c->ln_eps = (float)eps->valuedouble;
    }
    cJSON_Delete(root);
    return rc;
}

static int get(sc_bert *m, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, const float **out,
               sc_error *err) {
    char full[700];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {d0, d1};
    float *p;
    int owned;
    int rc = sc_st_get_f32(&m->st, full, ndim, shape, &p, &owned, err);
    if (rc != SC_OK) return rc;
    if (owned) {
        void **o = sc_realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *o);
        if (!o) {
            sc_free(p);
            return sc_fail(err, SC_ENOMEM, "out of memory loading '%s'", full);
        }
        m->owned = o;
        m->owned[m->n_owned++] = p;
    }
    *out = p;
    return SC_OK;
}

int sc_bert_load(sc_bert *m, const char *dir, int n_threads, sc_error *err) {
    memset(m, 0, sizeof *m);
    m->n_threads = n_threads > 0 ? n_threads : sc_default_threads();
    int rc = read_config(&m->cfg, dir, err);
    if (rc != SC_OK) return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = sc_st_open(&m->st, path, err);
    if (rc != SC_OK) return rc;
    const sc_bert_config *c = &m->cfg;
    const char *pre = sc_st_find(&m->st, "embeddings.word_embeddings.weight") ? "" : "bert.";
    sc_bert_weights *w = &m->w;
    int64_t C = c->hidden, F = c->intermediate;
    w->layer = sc_calloc((size_t)c->layers, sizeof *w->layer);
    if (!w->layer) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    if (rc == SC_OK) rc = get(m, pre, "embeddings.word_embeddings.weight", 2, c->vocab_size, C, &w->wte, err);
    if (rc == SC_OK) rc = get(m, pre, "embeddings.position_embeddings.weight", 2, c->max_pos, C, &w->wpe, err);
    if (rc == SC_OK) rc = get(m, pre, "embeddings.token_type_embeddings.weight", 2, c->type_vocab, C, &w->wtt, err);
    if (rc == SC_OK) rc = get(m, pre, "embeddings.LayerNorm.weight", 1, C, 0, &w->ln_w, err);
    if (rc == SC_OK) rc = get(m, pre, "embeddings.LayerNorm.bias", 1, C, 0, &w->ln_b, err);
    for (int l = 0; l < c->layers && rc == SC_OK; l++) {
        sc_bert_layer *L = &w->layer[l];
        char p[600];
        struct { const char *n; int nd; int64_t d0, d1; const float **dst; } t[] = {
            {"attention.self.query.weight", 2, C, C, &L->wq}, {"attention.self.query.bias", 1, C, 0, &L->bq},
            {"attention.self.key.weight", 2, C, C, &L->wk},   {"attention.self.key.bias", 1, C, 0, &L->bk},
            {"attention.self.value.weight", 2, C, C, &L->wv}, {"attention.self.value.bias", 1, C, 0, &L->bv},
            {"attention.output.dense.weight", 2, C, C, &L->wo}, {"attention.output.dense.bias", 1, C, 0, &L->bo},
            {"attention.output.LayerNorm.weight", 1, C, 0, &L->ln1_w},
            {"attention.output.LayerNorm.bias", 1, C, 0, &L->ln1_b},
            {"intermediate.dense.weight", 2, F, C, &L->wi}, {"intermediate.dense.bias", 1, F, 0, &L->bi},
            {"output.dense.weight", 2, C, F, &L->wf},       {"output.dense.bias", 1, C, 0, &L->bf},
            {"output.LayerNorm.weight", 1, C, 0, &L->ln2_w}, {"output.LayerNorm.bias", 1, C, 0, &L->ln2_b},
        };
        for (size_t i = 0; i < sizeof t / sizeof t[0] && rc == SC_OK; i++) {
            snprintf(p, sizeof p, "encoder.layer.%d.%s", l, t[i].n);
            rc = get(m, pre, p, t[i].nd, t[i].d0, t[i].d1, t[i].dst, err);
        }
    }
    for (int l = 0; l < c->layers && rc == SC_OK; l++) {
        /* One (3C, C) matrix for the three projections: one GEMM instead of three. */
        sc_bert_layer *L = &w->layer[l];
        float *qkv = sc_aligned_alloc((size_t)(3 * C * C) * sizeof(float));
        void **o = qkv ? sc_realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *o) : NULL;
        if (!o) {
            sc_free(qkv);
            rc = sc_fail(err, SC_ENOMEM, "out of memory");
            break;
        }
        m->owned = o;
        m->owned[m->n_owned++] = qkv;
        memcpy(qkv, L->wq, (size_t)(C * C) * sizeof(float));
        memcpy(qkv + C * C, L->wk, (size_t)(C * C) * sizeof(float));
        memcpy(qkv + 2 * C * C, L->wv, (size_t)(C * C) * sizeof(float));
        L->wqkv = qkv;
    }
    if (rc == SC_OK) {
        /* A checkpoint with more layers than config.json says is a mismatch too. */
        char p[128];
        snprintf(p, sizeof p, "%sencoder.layer.%d.attention.self.query.weight", pre, c->layers);
        if (sc_st_find(&m->st, p))
            rc = sc_fail(err, SC_EFORMAT, "%s: has tensor '%s' but config.json says num_hidden_layers = %d", path, p,
                         c->layers);
    }
    if (rc != SC_OK) sc_bert_free(m);
    return rc;
}

static void acts_free(sc_bert_acts *a) {
    sc_free(a->x);
    sc_free(a->qkv);
    sc_free(a->att);
    sc_free(a->h);
    memset(a, 0, sizeof *a);
}

void sc_bert_free(sc_bert *m) {
    if (!m) return;
    acts_free(&m->a);
    sc_free(m->bf16_weights);
    for (int i = 0; i < m->n_owned; i++) sc_free(m->owned[i]);
    sc_free(m->owned);
    sc_free(m->w.layer);
    sc_st_close(&m->st);
    memset(m, 0, sizeof *m);
}

int sc_bert_set_precision(sc_bert *m, int precision, sc_error *err) {
    if (precision != SC_BERT_F32 && precision != SC_BERT_BF16)
        return sc_fail(err, SC_EINVAL, "unknown encoder precision %d", precision);
    if (precision == m->precision) return SC_OK;
    const size_t C = (size_t)m->cfg.hidden, F = (size_t)m->cfg.intermediate;
    const size_t per_layer = 3 * C * C + C * C + F * C + C * F;
    sc_free(m->bf16_weights);
    m->bf16_weights = NULL;
    for (int l = 0; l < m->cfg.layers; l++) {
        sc_bert_layer *L = &m->w.layer[l];
        L->wqkv16 = L->wo16 = L->wi16 = L->wf16 = NULL;
    }
    m->precision = SC_BERT_F32;
    if (precision == SC_BERT_F32) return SC_OK;
    uint16_t *p = sc_aligned_alloc(per_layer * (size_t)m->cfg.layers * sizeof(uint16_t));
    if (!p) return sc_fail(err, SC_ENOMEM, "out of memory for the encoder's bfloat16 weights");
    m->bf16_weights = p;
    for (int l = 0; l < m->cfg.layers; l++) {
        sc_bert_layer *L = &m->w.layer[l];
        const float *src[4] = {L->wqkv, L->wo, L->wi, L->wf};
        const uint16_t **dst[4] = {&L->wqkv16, &L->wo16, &L->wi16, &L->wf16};
        const size_t n[4] = {3 * C * C, C * C, F * C, C * F};
        for (int k = 0; k < 4; k++) {
            sc_bf16_round(src[k], n[k], p);
            *dst[k] = p;
            p += n[k];
        }
    }
    m->precision = SC_BERT_BF16;
    return SC_OK;
}

static int acts_reserve(sc_bert *m, int64_t N, sc_error *err) {
    sc_bert_acts *a = &m->a;
    if (N <= a->cap_tokens) return SC_OK;
    acts_free(a);
    size_t C = (size_t)m->cfg.hidden, F = (size_t)m->cfg.intermediate, n = (size_t)N;
    a->x = sc_aligned_alloc(n * C * sizeof(float));
    a->qkv = sc_aligned_alloc(n * 3 * C * sizeof(float));
    a->att = sc_aligned_alloc(n * C * sizeof(float));
    a->h = sc_aligned_alloc(n * F * sizeof(float));
    if (!a->x || !a->qkv || !a->att || !a->h) {
        acts_free(a);
        return sc_fail(err, SC_ENOMEM, "out of memory for activations of %lld tokens", (long long)N);
    }
    a->cap_tokens = N;
    return SC_OK;
}

/* ---- elementwise kernels ---- */

/* exp for softmax and erf's exp(-x^2): Cephes expf's range reduction and
 * polynomial, branch-free so that loops over it vectorise; within a few ulp
 * of expf on [-87, 88] (a test holds it to expf). */
static inline float exp_approx(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest by the 1.5 * 2^23 trick: floorf would block vectorisation */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r2 + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the same formula
 * PyTorch's vectorised CPU erf uses. */
static inline float erf_approx(float x) {
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float y = 1.061405429f;
    y = y * t - 1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t - 0.284496736f;
    y = y * t + 0.254829592f;
    y = 1.0f - y * t * exp_approx(-ax * ax);
    return x < 0 ? -y : y;
}

void sc_gelu_forward_ref(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void sc_gelu_forward(float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
}

void sc_layernorm_forward(float *out, const float *inp, const float *w, const float *b, int64_t N, int C, float eps) {
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *o = out + i * C;
        float mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= (float)C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= (float)C;
        float rstd = 1.0f / sqrtf(var + eps);
        for (int c = 0; c < C; c++) o[c] = (x[c] - mean) * rstd * w[c] + b[c];
    }
}

float sc_exp_approx(float x) { return exp_approx(x); }

/* ---- the forward pass ----
 * Three parallel stages per layer, each over sc_parallel_for tasks, with
 * OpenBLAS single-threaded inside them (its own spinning threads would fight
 * ours for the cores):
 *   QKV   rows of the batch: [q k v] = x [Wq; Wk; Wv]^T, one GEMM (biases later)
 *   ATTN  (sequence, head) pairs: softmax(q k^T / sqrt(HS)) v
 *   FFN   rows: x = LN(x + att Wo^T + bo); x = LN(x + GELU(x Wi^T + bi) Wf^T + bf)
 * Every row-wise step only needs its own rows, so the whole second half of
 * a layer runs without a barrier. */

typedef struct fwd_ctx {
    sc_bert *m;
    const sc_bert_layer *L;
    const int32_t *ids;
    const int *len;
    const int64_t *off; /* (B + 1) first token of each sequence */
    int B, n_tasks;
    int64_t N;
    int stage;
    float *scratch;     /* per task: attention scores and keys */
    int64_t scratch_per;
    uint16_t *xp;       /* SC_BERT_BF16, per task: packed bfloat16 activations */
    size_t xp_per;      /* uint16_t per task */
    sc_bf16_tile_fn tile;
} fwd_ctx;

enum { ST_EMBED, ST_QKV, ST_ATTN, ST_FFN };

/* out (n, D) = inp (n, K) @ w^T, w (D, K) as PyTorch's Linear stores it. */
static void matmul(float *out, const float *inp, const float *w, int64_t n, int D, int K) {
    if (n > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, D, K, 1.0f, inp, K, w, K, 0.0f, out, D);
}

/* Token rows per bfloat16 tile call: their packed activations (at most
 * 64 x F x 2 bytes, 192 KB for MiniLM) stay in L2 while every block of
 * weight rows streams past them. */
enum { BF16_ROWS = 64 };

/* out (n, D) = inp (n, K) @ w^T in the model's precision: w16 is w's
 * bfloat16 copy (SC_BERT_BF16) or NULL (sgemm on w). */
static void layer_matmul(const fwd_ctx *f, int task, float *out, const float *inp, const float *w,
                         const uint16_t *w16, int64_t n, int D, int K) {
    if (!w16) {
        matmul(out, inp, w, n, D, K);
        return;
    }
    uint16_t *xp = f->xp + f->xp_per * (size_t)task;
    for (int64_t t0 = 0; t0 < n; t0 += BF16_ROWS) {
        int tb = (int)(n - t0 < BF16_ROWS ? n - t0 : BF16_ROWS);
        sc_bf16_pack(inp + t0 * K, tb, K, xp);
        f->tile(xp, tb, w16, D, K, out + t0 * D, (size_t)D);
    }
}

static void rows_of(const fwd_ctx *f, int task, int64_t *r0, int64_t *r1) {
    *r0 = f->N * task / f->n_tasks;
    *r1 = f->N * (task + 1) / f->n_tasks;
}

static int64_t seq_of_token(const fwd_ctx *f, int64_t i) {
    int lo = 0, hi = f->B - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (f->off[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

enum { JB = 16 }; /* floats per vector block */

/* 16 floats, loadable from any 4-byte aligned address; gcc and clang map
 * it to one AVX-512 register or two AVX ones. */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi16 __attribute__((vector_size(64), aligned(4)));

/* The plain attention for one (sequence, head), the reference the tuned
 * kernel below is tested against. q, k, v rows of this sequence are
 * q[i * ld + d] (no bias: bq/bk/bv are added here); out rows are ldo apart. */
void sc_attention_head_ref(float *out, const float *q, const float *k, const float *v, const float *bq,
                           const float *bk, const float *bv, int T, int HS, int64_t ld, int64_t ldo, float *sc) {
    const float scale = 1.0f / sqrtf((float)HS);
    for (int i = 0; i < T; i++) {
        float mx = -INFINITY;
        for (int j = 0; j < T; j++) {
            float s = 0;
            for (int d = 0; d < HS; d++) s += (q[i * ld + d] + bq[d]) * (k[j * ld + d] + bk[d]);
            sc[j] = s * scale;
            mx = sc[j] > mx ? sc[j] : mx;
        }
        float sum = 0;
        for (int j = 0; j < T; j++) {
            sc[j] = expf(sc[j] - mx);
            sum += sc[j];
        }
        for (int d = 0; d < HS; d++) {
            float o = 0;
            for (int j = 0; j < T; j++) o += sc[j] / sum * (v[j * ld + d] + bv[d]);
            out[i * ldo + d] = o;
        }
    }
}

enum { QR = 4 }; /* query rows whose scores are computed together, sharing each load of the keys */

int64_t sc_attention_scratch(int T, int HS) {
    int64_t Tp = (T + 2 * JB - 1) / (2 * JB) * (2 * JB);
    return Tp * (HS + QR) + QR * HS + JB;
}

/* Scores of query rows qs[0..R) (HS apart, scaled, biased) against every key, into sc (R rows, Tp apart):
   each score is the sum over d in order, as one row at a time would make it; R rows share every load of
   kT, the keys transposed (HS, Tp). */
static void attention_scores(float *sc, const float *qs, const float *kT, int R, int HS, int Tp) {
    const v16 zero = {0};
    int j0 = 0;
    if (R == QR)
        for (; j0 + 4 * JB <= Tp; j0 += 4 * JB) { /* 4 rows x 4 key blocks: 16 independent FMA chains */
            v16 s[QR][4];
            for (int r = 0; r < QR; r++) s[r][0] = s[r][1] = s[r][2] = s[r][3] = zero;
            for (int d = 0; d < HS; d++) {
                const float *row = kT + (int64_t)d * Tp + j0;
                const v16 k0 = *(const v16 *)row, k1 = *(const v16 *)(row + JB), k2 = *(const v16 *)(row + 2 * JB),
                          k3 = *(const v16 *)(row + 3 * JB);
                for (int r = 0; r < QR; r++) {
                    const float qv = qs[r * HS + d];
                    s[r][0] += qv * k0;
                    s[r][1] += qv * k1;
                    s[r][2] += qv * k2;
                    s[r][3] += qv * k3;
                }
            }
            for (int r = 0; r < QR; r++)
                for (int c = 0; c < 4; c++) *(v16 *)(sc + (int64_t)r * Tp + j0 + c * JB) = s[r][c];
        }
    for (; j0 < Tp; j0 += 2 * JB) /* the rest (or R < QR): a row at a time, two key blocks */
        for (int r = 0; r < R; r++) {
            v16 s0 = zero, s1 = zero;
            for (int d = 0; d < HS; d++) {
                const float *row = kT + (int64_t)d * Tp + j0;
                s0 += qs[r * HS + d] * *(const v16 *)row;
                s1 += qs[r * HS + d] * *(const v16 *)(row + JB);
            }
            *(v16 *)(sc + (int64_t)r * Tp + j0) = s0;
            *(v16 *)(sc + (int64_t)r * Tp + j0 + JB) = s1;
        }
}

/* softmax of one row of scores in place (pads zeroed); returns 1 / the sum */
static float attention_softmax(float *sc, int T, int Tp) {
    const v16 zero = {0};
    /* the maximum of the T real scores (the pads' are 0 and must not count), JB lanes at a time */
    float mx = sc[0];
    int j0 = 0;
    if (T >= JB) {
        v16 m = *(const v16 *)sc;
        for (j0 = JB; j0 + JB <= T; j0 += JB) {
            const v16 x = *(const v16 *)(sc + j0);
            const vi16 gt = x > m; /* lanes of all ones where x is larger: C has no vector ?: */
            m = (v16)(((vi16)x & gt) | ((vi16)m & ~gt));
        }
        for (int jj = 0; jj < JB; jj++) mx = m[jj] > mx ? m[jj] : mx;
    }
    for (int j = j0; j < T; j++) mx = sc[j] > mx ? sc[j] : mx;
    for (int j = 0; j < T; j++) sc[j] = exp_approx(sc[j] - mx);
    for (int j = T; j < Tp; j++) sc[j] = 0;
    v16 part = zero;
    for (j0 = 0; j0 < Tp; j0 += JB) part += *(const v16 *)(sc + j0);
    float sum = 0;
    for (int jj = 0; jj < JB; jj++) sum += part[jj];
    return 1.0f / sum;
}

/* out row = p @ v + bv for R (1 or 2) rows of probabilities p (Tp apart, times inv[r] at the end), JB
   channels from d0 (two blocks when two): four chains over j mod 4, the same for every row count, so a
   row's sums do not depend on R; the rows share each load of v. */
static void attention_pv(float *out, int64_t ldo, const float *p, int Tp, const float *inv, int R, const float *v,
                         int64_t ld, const float *bv, int T, int d0, int two) {
    const v16 zero = {0};
    v16 e[2][2], f[2][2], g[2][2], h[2][2];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) e[r][c] = f[r][c] = g[r][c] = h[r][c] = zero;
    const int nc = two ? 2 : 1;
    int j = 0;
    for (; j + 3 < T; j += 4) { /* four rows of v at a time: more independent chains */
        const float *va = v + j * ld + d0, *vb = va + ld, *vc = vb + ld, *vd = vc + ld;
        for (int c = 0; c < nc; c++) {
            const v16 a = *(const v16 *)(va + c * JB), b = *(const v16 *)(vb + c * JB), cc = *(const v16 *)(vc + c * JB),
                      dd = *(const v16 *)(vd + c * JB);
            for (int r = 0; r < R; r++) {
                const float *pr = p + (int64_t)r * Tp;
                e[r][c] += pr[j] * a;
                f[r][c] += pr[j + 1] * b;
                g[r][c] += pr[j + 2] * cc;
                h[r][c] += pr[j + 3] * dd;
            }
        }
    }
    for (; j + 1 < T; j += 2) {
        const float *va = v + j * ld + d0, *vb = va + ld;
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < R; r++) {
                e[r][c] += p[(int64_t)r * Tp + j] * *(const v16 *)(va + c * JB);
                f[r][c] += p[(int64_t)r * Tp + j + 1] * *(const v16 *)(vb + c * JB);
            }
    }
    if (j < T)
        for (int c = 0; c < nc; c++)
            for (int r = 0; r < R; r++) e[r][c] += p[(int64_t)r * Tp + j] * *(const v16 *)(v + j * ld + d0 + c * JB);
    /* softmax rows sum to one, so V's bias is added once at the end */
    for (int r = 0; r < R; r++)
        for (int c = 0; c < nc; c++) {
            v16 o = ((e[r][c] + f[r][c]) + (g[r][c] + h[r][c])) * inv[r] + *(const v16 *)(bv + d0 + c * JB);
            memcpy(out + (int64_t)r * ldo + d0 + c * JB, &o, sizeof o);
        }
}

/* Tuned: keys transposed to (HS, Tp) so that scores come out JB at a time in
 * registers, QR query rows at a time; p @ v accumulated in registers JB
 * channels and two rows at a time. Every output is the same sum, in the
 * same order, whatever the grouping. Falls back to the plain kernel when HS
 * is not a multiple of JB. */
void sc_attention_head(float *out, const float *q, const float *k, const float *v, const float *bq, const float *bk,
                       const float *bv, int T, int HS, int64_t ld, int64_t ldo, float *scratch) {
    if (HS % JB != 0) {
        sc_attention_head_ref(out, q, k, v, bq, bk, bv, T, HS, ld, ldo, scratch);
        return;
    }
    const int Tp = (T + 2 * JB - 1) / (2 * JB) * (2 * JB);
    const float scale = 1.0f / sqrtf((float)HS);
    /* (QR, Tp) scores, (HS, Tp) keys, (QR, HS) queries */
    float *sc = scratch, *kT = scratch + (int64_t)QR * Tp, *qs = kT + (int64_t)HS * Tp;
    /* key by key: each key row is read once, contiguously (column by column would touch T cache lines per
       channel); the HS rows of kT being written stay in L1 */
    for (int j = 0; j < T; j++) {
        const float *kr = k + j * ld;
        for (int d = 0; d < HS; d++) kT[(int64_t)d * Tp + j] = kr[d] + bk[d];
    }
    for (int d = 0; d < HS; d++)
        for (int j = T; j < Tp; j++) kT[(int64_t)d * Tp + j] = 0;
    for (int i0 = 0; i0 < T; i0 += QR) {
        const int R = T - i0 < QR ? T - i0 : QR;
        for (int r = 0; r < R; r++)
            for (int d = 0; d < HS; d++) qs[r * HS + d] = (q[(i0 + r) * ld + d] + bq[d]) * scale;
        attention_scores(sc, qs, kT, R, HS, Tp);
        float inv[QR];
        for (int r = 0; r < R; r++) inv[r] = attention_softmax(sc + (int64_t)r * Tp, T, Tp);
        for (int r = 0; r < R; r += 2) {
            const int R2 = R - r < 2 ? R - r : 2;
            for (int d0 = 0; d0 < HS; d0 += 2 * JB)
                attention_pv(out + (int64_t)(i0 + r) * ldo, ldo, sc + (int64_t)r * Tp, Tp, inv + r, R2, v, ld, bv, T,
                             d0, d0 + JB < HS);
        }
    }
}

static void attention_head(const fwd_ctx *f, int b, int h, float *scratch) {
    const sc_bert_config *c = &f->m->cfg;
    const sc_bert_acts *a = &f->m->a;
    const int C = c->hidden, HS = C / c->heads;
    const float *q = a->qkv + f->off[b] * 3 * C + (int64_t)h * HS;
    sc_attention_head(a->att + f->off[b] * C + (int64_t)h * HS, q, q + C, q + 2 * C, f->L->bq + h * HS,
                      f->L->bk + h * HS, f->L->bv + h * HS, f->len[b], HS, 3 * C, C, scratch);
}

/* x = LayerNorm(x + t + bias) for n rows. */
static void residual_ln(float *x, const float *t, const float *bias, const float *w, const float *b, int64_t n, int C,
                        float eps) {
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * C;
        const float *ti = t + i * C;
        for (int c = 0; c < C; c++) xi[c] += ti[c] + bias[c];
    }
    sc_layernorm_forward(x, x, w, b, n, C, eps);
}

static void fwd_task(void *ctx, int task) {
    fwd_ctx *f = ctx;
    sc_bert *m = f->m;
    const sc_bert_config *c = &m->cfg;
    const sc_bert_layer *L = f->L;
    const int C = c->hidden, F = c->intermediate;
    sc_bert_acts *a = &m->a;
    int64_t r0, r1;
    rows_of(f, task, &r0, &r1);
    const int64_t n = r1 - r0;
    switch (f->stage) {
    case ST_EMBED:
        for (int64_t i = r0; i < r1; i++) {
            int64_t b = seq_of_token(f, i);
            int64_t pos = i - f->off[b];
            const float *we = m->w.wte + (int64_t)f->ids[i] * C, *pe = m->w.wpe + pos * C, *te = m->w.wtt;
            float *x = a->x + i * C;
            for (int k = 0; k < C; k++) x[k] = we[k] + pe[k] + te[k];
        }
        sc_layernorm_forward(a->x + r0 * C, a->x + r0 * C, m->w.ln_w, m->w.ln_b, n, C, c->ln_eps);
        break;
    case ST_QKV:
        layer_matmul(f, task, a->qkv + r0 * 3 * C, a->x + r0 * C, L->wqkv, L->wqkv16, n, 3 * C, C);
        break;
    case ST_ATTN:
        /* (sequence, head) pairs, strided: sequences come sorted by length,
         * so each task gets a mix of long and short ones */
        for (int bh = task; bh < f->B * c->heads; bh += f->n_tasks)
            attention_head(f, bh / c->heads, bh % c->heads, f->scratch + f->scratch_per * task);
        break;
    case ST_FFN:
        /* q, k, v are dead once attention is done: their buffer holds the
         * (N, C) projections of this stage */
        layer_matmul(f, task, a->qkv + r0 * C, a->att + r0 * C, L->wo, L->wo16, n, C, C);
        residual_ln(a->x + r0 * C, a->qkv + r0 * C, L->bo, L->ln1_w, L->ln1_b, n, C, c->ln_eps);
        layer_matmul(f, task, a->h + r0 * F, a->x + r0 * C, L->wi, L->wi16, n, F, C);
        for (int64_t i = r0; i < r1; i++) {
            float *hi = a->h + i * F;
            for (int k = 0; k < F; k++) hi[k] += L->bi[k];
            sc_gelu_forward(hi, F);
        }
        layer_matmul(f, task, a->qkv + r0 * C, a->h + r0 * F, L->wf, L->wf16, n, C, F);
        residual_ln(a->x + r0 * C, a->qkv + r0 * C, L->bf, L->ln2_w, L->ln2_b, n, C, c->ln_eps);
        break;
    }
}

static void run_stage(fwd_ctx *f, int stage) {
    f->stage = stage;
    sc_parallel_for(f->n_tasks, f->n_tasks, fwd_task, f);
}

int sc_bert_forward(sc_bert *m, const int32_t *ids, const int *len, int B, sc_error *err) {
    return sc_bert_forward_layers(m, ids, len, B, m->cfg.layers, err);
}

int sc_bert_forward_layers(sc_bert *m, const int32_t *ids, const int *len, int B, int n_layers, sc_error *err) {
    const sc_bert_config *c = &m->cfg;
    if (n_layers < 0 || n_layers > c->layers)
        return sc_fail(err, SC_EINVAL, "the model has %d layers; cannot run the first %d", c->layers, n_layers);
    if (B <= 0) return SC_OK;
    int64_t *off = sc_malloc((size_t)(B + 1) * sizeof *off);
    if (!off) return sc_fail(err, SC_ENOMEM, "out of memory");
    int64_t N = 0;
    int Tmax = 0;
    for (int b = 0; b < B; b++) {
        if (len[b] < 1 || len[b] > c->max_pos) {
            sc_free(off);
            return sc_fail(err, SC_EINVAL, "sequence %d has %d tokens; the model takes 1 to %d", b, len[b], c->max_pos);
        }
        off[b] = N;
        N += len[b];
        Tmax = len[b] > Tmax ? len[b] : Tmax;
    }
    off[B] = N;
    for (int64_t i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size) {
            sc_free(off);
            return sc_fail(err, SC_EINVAL, "token id %d is outside the vocabulary of %d", ids[i], c->vocab_size);
        }
    int rc = acts_reserve(m, N, err);
    const int HS = c->hidden / c->heads;
    fwd_ctx f = {.m = m, .ids = ids, .len = len, .off = off, .B = B, .N = N, .n_tasks = m->n_threads};
    if (f.n_tasks > N) f.n_tasks = (int)N;
    f.scratch_per = (sc_attention_scratch(Tmax, HS) + 15) / 16 * 16;
    f.scratch = rc == SC_OK ? sc_aligned_alloc((size_t)(f.scratch_per * f.n_tasks) * sizeof(float)) : NULL;
    if (rc == SC_OK && !f.scratch) rc = sc_fail(err, SC_ENOMEM, "out of memory for attention scratch");
    if (rc == SC_OK && m->precision == SC_BERT_BF16) {
        int widest = c->intermediate > c->hidden ? c->intermediate : c->hidden;
        f.xp_per = sc_bf16_pack_bytes(BF16_ROWS, widest) / sizeof(uint16_t);
        f.xp = sc_aligned_alloc(f.xp_per * (size_t)f.n_tasks * sizeof(uint16_t));
        f.tile = sc_bf16_tile_get(SC_ISA_AVX512);
        if (!f.tile) f.tile = sc_bf16_tile_get(SC_ISA_PLAIN);
        if (!f.xp) rc = sc_fail(err, SC_ENOMEM, "out of memory for bfloat16 activations");
    }
    if (rc != SC_OK) {
        sc_free(f.scratch);
        sc_free(off);
        return rc;
    }
    /* OpenBLAS runs single-threaded inside our tasks; its setting is global,
     * so the caller's is restored on return. */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    run_stage(&f, ST_EMBED);
    for (int l = 0; l < n_layers; l++) {
        f.L = &m->w.layer[l];
        run_stage(&f, ST_QKV);
        run_stage(&f, ST_ATTN);
        run_stage(&f, ST_FFN);
    }
    openblas_set_num_threads(blas_threads);
    sc_free(f.xp);
    sc_free(f.scratch);
    sc_free(off);
    return SC_OK;
}
