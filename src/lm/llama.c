/* Llama-family, Gemma 3 and Qwen2 forward pass, llm.c style.
 *
 * Dimension letters: T tokens in the batch, P = n_past + T positions in the
 * cache, C model width, NH query heads, NKV key/value heads, HS head size
 * (NH*HS may differ from C: Gemma 3 270M has C 640, NH 4, HS 256), F
 * feed-forward width, V vocabulary. Weight matrices are row-major
 * [out, in] (ggml's ne[0] is the input dimension), so y = x W^T. Matrix
 * weights stay in their GGUF type inside the mapped file (lm/qmatmul.h). */
#include "lm/llama.h"

#include <cblas.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/quant.h"
#include "text/tokutil.h"

/* ---- layers (stateless) ---- */

/* out[t] = x[t] / rms(x[t]) * w */
static void rmsnorm_forward(float *out, const float *x, const float *w, int T, int C, float eps) {
    enum { L = 8 };
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        /* the sum of squares in double, 8 running lanes (i mod 8) added
         * pairwise at the end: a fixed order the compiler vectorises (one
         * running double sum was a dependency chain, 6% of a prompt) */
        double lane[L] = {0};
        int i = 0;
        for (; i + L <= C; i += L)
            for (int l = 0; l < L; l++) lane[l] += (double)xt[i + l] * xt[i + l];
        for (; i < C; i++) lane[i % L] += (double)xt[i] * xt[i];
        for (int n = L / 2; n > 0; n /= 2)
            for (int l = 0; l < n; l++) lane[l] += lane[l + n];
        float s = 1.0f / sqrtf((float)(lane[0] / C) + eps);
        for (i = 0; i + 16 <= C; i += 16)
            for (int l = 0; l < 16; l++) ot[i + l] = xt[i + l] * s * w[i + l];
        for (; i < C; i++) ot[i] = xt[i] * s * w[i];
    }
}

/* Rotary positions of x[T, nh, HS], row t at position pos[t], as
 * ggml_rope_ext: dimension pair k of rope_dim/2 turns by
 * pos * base^(-2k/rope_dim). llama.cpp's "norm" rope pairs (2k, 2k+1); the
 * NeoX rope (Gemma) pairs (k, k + rope_dim/2). Dimensions past rope_dim are
 * untouched. */
/* cs[t][k] = {cos, sin} of pair k's angle at position pos[t]: computed once
 * per forward pass and base, not per layer and head (sincosf and powf were
 * 4% of a prompt) */
static void rope_table(float *cs, int T, int rope_dim, float base, const int *pos) {
    int half = rope_dim / 2;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < half; k++) {
            float theta = (float)pos[t] * powf(base, -(float)(2 * k) / (float)rope_dim);
            cs[((size_t)t * half + k) * 2] = cosf(theta);
            cs[((size_t)t * half + k) * 2 + 1] = sinf(theta);
        }
}

static void rope_forward(float *x, int T, int nh, int HS, int rope_dim, const float *cs, int neox) {
    int half = rope_dim / 2;
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < half; k++) {
            float c = cs[((size_t)t * half + k) * 2], s = cs[((size_t)t * half + k) * 2 + 1];
            int i0 = neox ? k : 2 * k, i1 = neox ? k + half : 2 * k + 1;
            for (int h = 0; h < nh; h++) {
                float *v = x + ((size_t)t * nh + h) * HS;
                float a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

/* sum a[i] b[i] in 16 running lanes (i mod 16), then the lanes pairwise: a
 * fixed order the compiler turns into vector instructions (a single running
 * sum cannot be, without reassociating), the same on every run */
static float dot_lanes(const float *a, const float *b, int n) {
    enum { L = 16 };
    float lane[L] = {0};
    int i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; l++) lane[l] += a[i + l] * b[i + l];
    for (; i < n; i++) lane[i % L] += a[i] * b[i];
    for (int w = L / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) lane[l] += lane[l + w];
    return lane[0];
}

/* y += a x, in blocks of 16 the compiler turns into vector instructions
 * (the same arithmetic per element as a plain loop) */
static void axpy(float *restrict y, float a, const float *restrict x, int n) {
    enum { L = 16 };
    int i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; l++) y[i + l] += a * x[i + l];
    for (; i < n; i++) y[i] += a * x[i];
}

/* Causal attention of query head h over its key/value head: out[T, NH*HS].
 * q[T, NH*HS]; kc/vc: position p's HS keys / values at kc + p * ld (the
 * head's columns of the cache), positions 0..pos0+T-1; att is scratch
 * [P]. Scores are scaled by scale; window > 0 (sliding-window layer):
 * position pos sees keys p with pos - p < window (llama.cpp's
 * LLAMA_SWA_TYPE_STANDARD). */
static void attention_forward(float *out, const float *q, const float *kc, const float *vc, size_t ld, float *att, int T,
                              int pos0, int NH, int HS, float scale, int window, int h) {
    for (int t = 0; t < T; t++) {
        int P = pos0 + t + 1, p0 = window > 0 && P > window ? P - window : 0;
        {
            const float *qh = q + ((size_t)t * NH + h) * HS;
            float mx = -INFINITY;
            for (int p = p0; p < P; p++) {
                const float *k = kc + (size_t)p * ld;
                float s = dot_lanes(qh, k, HS) * scale;
                att[p] = s;
                if (s > mx) mx = s;
            }
            float sum = 0;
            for (int p = p0; p < P; p++) {
                att[p] = expf(att[p] - mx);
                sum += att[p];
            }
            float *oh = out + ((size_t)t * NH + h) * HS;
            memset(oh, 0, (size_t)HS * sizeof(float));
            for (int p = p0; p < P; p++) {
                const float *v = vc + (size_t)p * ld;
                axpy(oh, att[p] / sum, v, HS);
            }
        }
    }
}

/* Attention of T > 1 queries through sgemm, for head h: query blocks of
 * QB rows, scores S[QB, P] = Q K^T (all P cached positions, the causal
 * part masked afterwards), softmax, O = S V. att is scratch [QB, P]. Same
 * result as attention_forward up to float summation order; for long prompts
 * it keeps attention (T^2) from dominating the forward pass. */
enum { ATT_QB = 64 };
static void attention_gemm(float *out, const float *q, const float *kc, const float *vc, size_t ld, float *att, int T,
                           int pos0, int NH, int HS, float scale, int window, int h) {
    int QD = NH * HS;
    for (int t0 = 0; t0 < T; t0 += ATT_QB) {
        int tb = T - t0 < ATT_QB ? T - t0 : ATT_QB, P = pos0 + t0 + tb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tb, P, HS, scale, q + (size_t)t0 * QD + (size_t)h * HS, QD,
                    kc, (int)ld, 0.0f, att, P);
        for (int i = 0; i < tb; i++) {
            float *a = att + (size_t)i * P;
            int n = pos0 + t0 + i + 1; /* causal: positions p0..n-1 */
            int p0 = window > 0 && n > window ? n - window : 0;
            float mx = -INFINITY, sum = 0;
            for (int p = p0; p < n; p++) mx = a[p] > mx ? a[p] : mx;
            for (int p = p0; p < n; p++) sum += (a[p] = expf(a[p] - mx));
            for (int p = p0; p < n; p++) a[p] /= sum;
            for (int p = 0; p < p0; p++) a[p] = 0;
            for (int p = n; p < P; p++) a[p] = 0;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tb, HS, P, 1.0f, att, P, vc, (int)ld, 0.0f,
                    out + (size_t)t0 * QD + (size_t)h * HS, QD);
    }
}

/* A batch of the forward pass: T rows in n_seg segments; segment s is rows
 * seg[s] .. seg[s+1]-1, consecutive tokens of sequence kvs[s] from position
 * pos0[s]. Each segment is computed exactly as a forward pass of it alone
 * (sc_qmatmul_seg, attention per segment), so batching sequences changes
 * no bits, only how often the weights are read. */
typedef struct fwd_batch {
    int T, n_seg;
    const int32_t *tokens;   /* [T] */
    const int *seg;          /* [n_seg + 1] */
    sc_llama_kv *const *kvs; /* [n_seg] */
    const int *pos0;         /* [n_seg] */
    const int *pos;          /* [T] position of each row */
    const size_t *att_off;   /* [n_seg + 1] attention scratch of each segment's heads */
} fwd_batch;

/* attention scratch of one head of a segment of T rows ending at position P */
static size_t att_scratch(int T, int P) { return (size_t)(T < ATT_QB ? T : ATT_QB) * P; }

/* one (segment, head) per task */
typedef struct attn_job {
    const fwd_batch *b;
    float *out, *att;
    const float *q;
    int layer, NH, NKV, HS;
    float scale;
    int window;
    atomic_int failed; /* scratch for an F16 cache could not be allocated */
} attn_job;

static void attention_task(void *ctx, int task) {
    attn_job *j = ctx;
    const fwd_batch *b = j->b;
    int s = task / j->NH, h = task % j->NH, t0 = b->seg[s], T = b->seg[s + 1] - t0, pos0 = b->pos0[s];
    float *att = j->att + b->att_off[s] + (size_t)h * att_scratch(T, pos0 + T);
    const sc_llama_kv *kv = b->kvs[s];
    int HS = j->HS, kh = h / (j->NH / j->NKV), P = pos0 + T;
    size_t off = (size_t)j->layer * kv->max_ctx * kv->kd + (size_t)kh * HS, qd = (size_t)j->NH * HS;
    const float *q = j->q + t0 * qd, *kc, *vc;
    float *out = j->out + t0 * qd, *kvf = NULL;
    size_t ld = (size_t)kv->kd;
    if (kv->type == SC_KV_F16) { /* this head's P keys and values widened to float [P, HS] */
        if (!(kvf = sc_malloc(2 * (size_t)P * HS * sizeof(float)))) {
            j->failed = 1;
            return;
        }
        for (int p = 0; p < P; p++) {
            sc_f16_widen(kv->kh + off + (size_t)p * ld, (size_t)HS, kvf + (size_t)p * HS);
            sc_f16_widen(kv->vh + off + (size_t)p * ld, (size_t)HS, kvf + (size_t)(P + p) * HS);
        }
        kc = kvf;
        vc = kvf + (size_t)P * HS;
        ld = (size_t)HS;
    } else {
        kc = kv->k + off;
        vc = kv->v + off;
    }
    if (T == 1)
        attention_forward(out, q, kc, vc, ld, att, 1, pos0, j->NH, HS, j->scale, j->window, h);
    else
        attention_gemm(out, q, kc, vc, ld, att, T, pos0, j->NH, HS, j->scale, j->window, h);
    sc_free(kvf);
}

/* x[t] += bias for each of T rows of n; nothing when bias is NULL */
static void add_bias(float *x, const float *bias, int T, int n) {
    if (!bias) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) x[(size_t)t * n + i] += bias[i];
}

/* x = cap * tanh(x / cap) */
static void softcap_forward(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

/* ---- KV caches ---- */

static int kv_positions(const sc_llama *m, int max_ctx) {
    const sc_llama_config *c = &m->cfg;
    return max_ctx > 0 ? max_ctx : (c->ctx_train < 2048 ? c->ctx_train : 2048);
}

size_t sc_llama_kv_bytes(const sc_llama *m, int max_ctx) {
    const sc_llama_config *c = &m->cfg;
    size_t n = (size_t)c->n_layers * kv_positions(m, max_ctx) * c->n_kv_heads * c->head_dim;
    return 2 * n * (m->kv_type == SC_KV_F16 ? sizeof(uint16_t) : sizeof(float));
}

static void kv_release(sc_llama_kv *kv) {
    sc_free(kv->k);
    sc_free(kv->v);
    sc_free(kv->kh);
    sc_free(kv->vh);
    kv->k = kv->v = NULL;
    kv->kh = kv->vh = NULL;
}

static int kv_init(const sc_llama *m, sc_llama_kv *kv, int max_ctx, sc_error *err) {
    const sc_llama_config *c = &m->cfg;
    memset(kv, 0, sizeof *kv);
    kv->model = m;
    kv->max_ctx = kv_positions(m, max_ctx);
    kv->kd = c->n_kv_heads * c->head_dim;
    kv->type = m->kv_type;
    /* not zeroed (sc_calloc writes every page): a forward pass stores a
     * position's keys and values before attention reads them and reads no
     * position past the ones stored, so pages past the positions a sequence
     * reaches are never touched (a 1,024-position F32 cache of Gemma 3 270M
     * is 36 MiB, a 256-token prompt touches 9) */
    size_t n = (size_t)c->n_layers * kv->max_ctx * kv->kd, es = kv->type == SC_KV_F16 ? sizeof(uint16_t) : sizeof(float), nb;
    if (sc_mul_size(n, es, &nb)) nb = SIZE_MAX; /* fails below */
    int ok;
    if (kv->type == SC_KV_F16) {
        kv->kh = sc_malloc(nb);
        kv->vh = sc_malloc(nb);
        ok = kv->kh && kv->vh;
    } else {
        kv->k = sc_malloc(nb);
        kv->v = sc_malloc(nb);
        ok = kv->k && kv->v;
    }
    if (!ok) {
        kv_release(kv);
        return sc_fail(err, SC_ENOMEM, "%s: out of memory for a KV cache of %d positions", m->path, kv->max_ctx);
    }
    return SC_OK;
}

int sc_llama_kv_type_parse(const char *name) {
    if (name && !strcmp(name, "f32")) return SC_KV_F32;
    if (name && !strcmp(name, "f16")) return SC_KV_F16;
    return -1;
}

int sc_llama_set_kv_type(sc_llama *m, int type, sc_error *err) {
    if (type != SC_KV_F32 && type != SC_KV_F16) return sc_fail(err, SC_EINVAL, "KV cache type %d (f32 or f16)", type);
    int old = m->kv_type;
    sc_llama_kv kv;
    m->kv_type = type;
    if (kv_init(m, &kv, m->kv.max_ctx, err) != SC_OK) {
        m->kv_type = old;
        return SC_ENOMEM;
    }
    kv_release(&m->kv);
    m->kv = kv;
    return SC_OK;
}

int sc_llama_kv_new(const sc_llama *m, int max_ctx, sc_llama_kv **out, sc_error *err) {
    *out = sc_malloc(sizeof **out);
    if (!*out) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = kv_init(m, *out, max_ctx, err);
    if (rc != SC_OK) {
        sc_llama_kv_free(*out);
        *out = NULL;
    }
    return rc;
}

void sc_llama_kv_free(sc_llama_kv *kv) {
    if (!kv) return;
    kv_release(kv);
    sc_free(kv);
}

/* ---- loading ---- */

static int load_tensor(sc_gguf *g, const char *name, int64_t ne0, int64_t ne1, float **out, sc_error *err) {
    const sc_gguf_tensor *t = sc_gguf_tensor_find(g, name);
    if (!t) return sc_fail(err, SC_ENOTFOUND, "%s: tensor '%s' missing", g->name, name);
    if ((int64_t)t->ne[0] != ne0 || (int64_t)t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", g->name, name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0, (long long)ne1);
    float *f = sc_aligned_alloc((size_t)t->nelem * sizeof(float));
    if (!f) return sc_fail(err, SC_ENOMEM, "%s: out of memory for tensor '%s'", g->name, name);
    int rc = sc_dequant(t->type, t->data, f, (size_t)t->nelem, name, err);
    if (rc != SC_OK) {
        sc_free(f);
        return sc_fail_prefix(err, "%s: ", g->name);
    }
    *out = f;
    return SC_OK;
}

/* blk.<layer>.<name>.bias [n] into *out when the file has it; absent: *out
 * stays NULL, an error when required */
static int load_bias(sc_gguf *g, int layer, const char *name, int64_t n, int required, float **out, sc_error *err) {
    char key[64];
    snprintf(key, sizeof key, "blk.%d.%s.bias", layer, name);
    if (!required && !sc_gguf_tensor_find(g, key)) return SC_OK;
    return load_tensor(g, key, n, 1, out, err);
}

/* a matrix [ne1 rows, ne0 cols] left in its GGUF type, pointing into the map */
static int load_matrix(sc_gguf *g, const char *name, int64_t ne0, int64_t ne1, sc_qtensor *out, sc_error *err) {
    const sc_gguf_tensor *t = sc_gguf_tensor_find(g, name);
    if (!t) return sc_fail(err, SC_ENOTFOUND, "%s: tensor '%s' missing", g->name, name);
    if ((int64_t)t->ne[0] != ne0 || (int64_t)t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", g->name, name,
                       (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0, (long long)ne1);
    return sc_qtensor_from_gguf(out, t, g->name, err);
}

static int get_int(sc_gguf *g, const char *key, int lo, int hi, int *out, sc_error *err) {
    uint64_t u;
    int rc = sc_gguf_get_u64(g, key, &u, err);
    if (rc != SC_OK) return rc;
    if (u < (uint64_t)lo || u > (uint64_t)hi)
        return sc_fail(err, SC_EFORMAT, "%s: key '%s' = %llu outside [%d, %d]", g->name, key, (unsigned long long)u, lo, hi);
    *out = (int)u;
    return SC_OK;
}

void sc_llama_free(sc_llama *m) {
    if (!m) return;
    sc_llama_weights *w = &m->w;
    if (w->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            sc_llama_layer *y = &w->layers[l];
            sc_free(y->attn_norm); sc_free(y->ffn_norm);
            sc_free(y->bq); sc_free(y->bk); sc_free(y->bv); sc_free(y->bo);
            sc_free(y->q_norm); sc_free(y->k_norm); sc_free(y->post_attn_norm); sc_free(y->post_ffn_norm);
        }
        sc_free(w->layers);
    }
    sc_free(w->out_norm);
    kv_release(&m->kv);
    sc_bpe_free(m->bpe);
    sc_spm_free(m->spm);
    sc_pool_free(m->pool);
    sc_gguf_close(&m->gguf);
    sc_free(m);
}

int sc_llama_set_threads(sc_llama *m, int n_threads, sc_error *err) {
    if (n_threads < 1) n_threads = 1;
    if (m->pool && sc_pool_threads(m->pool) == n_threads) return SC_OK;
    sc_pool_free(m->pool);
    m->pool = NULL;
    m->n_threads = 1;
    if (n_threads > 1 && !(m->pool = sc_pool_new(n_threads)))
        return sc_fail(err, SC_ENOMEM, "%s: cannot start %d threads", m->path, n_threads);
    m->n_threads = sc_pool_threads(m->pool);
    return SC_OK;
}

/* "<arch>.<suffix>" */
static const char *akey(const sc_llama_config *c, const char *suffix) {
    static _Thread_local char k[128];
    static const char *names[] = {"llama", "gemma3", "qwen2"};
    snprintf(k, sizeof k, "%s.%s", names[c->arch], suffix);
    return k;
}

static int opt_f32(sc_gguf *g, const char *key, float *v, sc_error *err) {
    return sc_gguf_find(g, key) ? sc_gguf_get_f32(g, key, v, err) : SC_OK;
}

/* Hyper-parameters from "<arch>.*" keys, with llama.cpp's defaults. */
static int read_config(sc_gguf *g, sc_llama_config *c, sc_error *err) {
    int rc;
    if ((rc = get_int(g, akey(c, "embedding_length"), 1, 1 << 16, &c->dim, err)) ||
        (rc = get_int(g, akey(c, "block_count"), 1, 1024, &c->n_layers, err)) ||
        (rc = get_int(g, akey(c, "attention.head_count"), 1, 1024, &c->n_heads, err)) ||
        (rc = get_int(g, akey(c, "feed_forward_length"), 1, 1 << 18, &c->hidden, err)) ||
        (rc = get_int(g, akey(c, "context_length"), 1, 1 << 24, &c->ctx_train, err)))
        return rc;
    c->n_kv_heads = c->n_heads;
    if (sc_gguf_find(g, akey(c, "attention.head_count_kv")) &&
        (rc = get_int(g, akey(c, "attention.head_count_kv"), 1, c->n_heads, &c->n_kv_heads, err)))
        return rc;
    if (c->n_heads % c->n_kv_heads)
        return sc_fail(err, SC_EFORMAT, "%s: %d heads are not a multiple of %d kv heads", g->name, c->n_heads, c->n_kv_heads);
    c->head_dim = c->dim / c->n_heads;
    if (sc_gguf_find(g, akey(c, "attention.key_length"))) {
        if ((rc = get_int(g, akey(c, "attention.key_length"), 2, 4096, &c->head_dim, err))) return rc;
    } else if (c->dim % c->n_heads) {
        return sc_fail(err, SC_EFORMAT, "%s: %d heads do not divide width %d", g->name, c->n_heads, c->dim);
    }
    if (sc_gguf_find(g, akey(c, "attention.value_length"))) {
        int vl;
        if ((rc = get_int(g, akey(c, "attention.value_length"), 1, 4096, &vl, err))) return rc;
        if (vl != c->head_dim)
            return sc_fail(err, SC_EFORMAT, "%s: key '%s' = %d differs from the key length %d (unsupported)", g->name,
                           akey(c, "attention.value_length"), vl, c->head_dim);
    }
    c->rope_dim = c->head_dim;
    if (sc_gguf_find(g, akey(c, "rope.dimension_count")) &&
        (rc = get_int(g, akey(c, "rope.dimension_count"), 2, c->head_dim, &c->rope_dim, err)))
        return rc;
    if (c->rope_dim % 2)
        return sc_fail(err, SC_EFORMAT, "%s: key '%s' = %d is odd (rope rotates pairs)", g->name,
                       akey(c, "rope.dimension_count"), c->rope_dim);
    c->rope_base = 10000.0f;
    c->rope_base_local = 10000.0f;
    c->eps = 1e-5f;
    if ((rc = opt_f32(g, akey(c, "rope.freq_base"), &c->rope_base, err)) ||
        (rc = opt_f32(g, akey(c, "attention.layer_norm_rms_epsilon"), &c->eps, err)))
        return rc;
    c->embd_scale = 1.0f;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    c->rope_neox = c->arch == SC_ARCH_QWEN2; /* llama.cpp: LLAMA_ROPE_TYPE_NEOX */
    if (c->arch == SC_ARCH_GEMMA3) {
        c->rope_neox = 1;
        c->embd_scale = sqrtf((float)c->dim);
        c->geglu = c->qk_norm = c->post_norms = 1;
        /* llama.cpp (after gemma_pytorch): 27B (62 layers) scales by C/NH, the others by key_length */
        if (c->n_layers == 62) c->attn_scale = 1.0f / sqrtf((float)(c->dim / c->n_heads));
        if (sc_gguf_find(g, akey(c, "attention.sliding_window")) &&
            (rc = get_int(g, akey(c, "attention.sliding_window"), 0, 1 << 24, &c->swa_window, err)))
            return rc;
        if ((rc = opt_f32(g, akey(c, "rope.freq_base_swa"), &c->rope_base_local, err)) ||
            (rc = opt_f32(g, akey(c, "final_logit_softcapping"), &c->final_softcap, err)))
            return rc;
        if (c->final_softcap < 0)
            return sc_fail(err, SC_EFORMAT, "%s: key '%s' = %g is negative", g->name, akey(c, "final_logit_softcapping"),
                           (double)c->final_softcap);
    }
    return SC_OK;
}

/* Which layers use sliding-window attention: <arch>.attention.sliding_window_pattern
 * as a bool array, or as n (every n-th layer global: il % n == n - 1), default
 * n = 6 (llama.cpp's set_swa_pattern for Gemma 3). */
static int read_swa_layers(sc_gguf *g, sc_llama *m, sc_error *err) {
    sc_llama_config *c = &m->cfg;
    if (c->swa_window <= 0) return SC_OK;
    const char *key = akey(c, "attention.sliding_window_pattern");
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    if (kv && kv->type == SC_GGUF_ARRAY) {
        if (kv->arr_type != SC_GGUF_BOOL || kv->arr_n != (uint64_t)c->n_layers)
            return sc_fail(err, SC_EFORMAT, "%s: key '%s' is not a bool array of %d layers", g->name, key, c->n_layers);
        for (int l = 0; l < c->n_layers; l++) m->w.layers[l].local = kv->arr[l] != 0;
        return SC_OK;
    }
    int n = 6, rc;
    if (kv && (rc = get_int(g, key, 0, 1 << 20, &n, err))) return rc;
    for (int l = 0; l < c->n_layers; l++) m->w.layers[l].local = n == 0 || l % n < n - 1;
    return SC_OK;
}

int sc_llama_load(sc_llama **out, const char *path, int max_ctx, sc_error *err) {
    *out = NULL;
    sc_llama *m = sc_calloc(1, sizeof *m);
    if (!m) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = sc_gguf_open(&m->gguf, path, err);
    if (rc != SC_OK) {
        sc_free(m);
        return rc;
    }
    sc_gguf g = m->gguf; /* a view: closed once, by sc_llama_free */
    snprintf(m->path, sizeof m->path, "%s", path);
    char *arch = NULL, *tmodel = NULL;
    sc_llama_config *c = &m->cfg;
    if ((rc = sc_gguf_get_str(&g, "general.architecture", &arch, err)) != SC_OK) goto done;
    if (!strcmp(arch, "llama")) {
        c->arch = SC_ARCH_LLAMA;
    } else if (!strcmp(arch, "gemma3")) {
        c->arch = SC_ARCH_GEMMA3;
    } else if (!strcmp(arch, "qwen2")) {
        c->arch = SC_ARCH_QWEN2;
    } else {
        rc = sc_fail(err, SC_EFORMAT, "%s: general.architecture is '%s'; supported: 'llama', 'gemma3', 'qwen2'", path, arch);
        goto done;
    }
    if ((rc = read_config(&g, c, err)) != SC_OK) goto done;
    if ((rc = sc_gguf_get_str(&g, "tokenizer.ggml.model", &tmodel, err)) != SC_OK) goto done;
    if (!strcmp(tmodel, "llama")) {
        if ((rc = sc_spm_from_gguf(&m->spm, &g, err)) != SC_OK) goto done;
        c->n_vocab = sc_spm_vocab_size(m->spm);
    } else {
        if ((rc = sc_bpe_from_gguf(&m->bpe, &g, err)) != SC_OK) goto done;
        c->n_vocab = sc_bpe_vocab_size(m->bpe);
    }
    int C = c->dim, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim, F = c->hidden, V = c->n_vocab;
    int HS = c->head_dim;
    sc_llama_weights *w = &m->w;
    if ((rc = load_matrix(&g, "token_embd.weight", C, V, &w->tok_embd, err)) ||
        (rc = load_tensor(&g, "output_norm.weight", C, 1, &w->out_norm, err)))
        goto done;
    if (sc_gguf_tensor_find(&g, "output.weight")) {
        if ((rc = load_matrix(&g, "output.weight", C, V, &w->output, err))) goto done;
    } else {
        w->output = w->tok_embd;
        w->tied = 1;
    }
    w->layers = sc_calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!w->layers) { rc = sc_fail(err, SC_ENOMEM, "out of memory"); goto done; }
    for (int l = 0; l < c->n_layers; l++) {
        sc_llama_layer *y = &w->layers[l];
        char n[13][64];
        const char *sfx[13] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                               "ffn_up", "ffn_down", "attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"};
        for (int i = 0; i < 13; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, sfx[i]);
        if ((rc = load_tensor(&g, n[0], C, 1, &y->attn_norm, err)) || (rc = load_matrix(&g, n[1], C, QD, &y->wq, err)) ||
            (rc = load_matrix(&g, n[2], C, KD, &y->wk, err)) || (rc = load_matrix(&g, n[3], C, KD, &y->wv, err)) ||
            (rc = load_matrix(&g, n[4], QD, C, &y->wo, err)) || (rc = load_tensor(&g, n[5], C, 1, &y->ffn_norm, err)) ||
            (rc = load_matrix(&g, n[6], C, F, &y->w_gate, err)) || (rc = load_matrix(&g, n[7], C, F, &y->w_up, err)) ||
            (rc = load_matrix(&g, n[8], F, C, &y->w_down, err)))
            goto done;
        if (c->qk_norm &&
            ((rc = load_tensor(&g, n[9], HS, 1, &y->q_norm, err)) || (rc = load_tensor(&g, n[10], HS, 1, &y->k_norm, err))))
            goto done;
        if (c->post_norms && ((rc = load_tensor(&g, n[11], C, 1, &y->post_attn_norm, err)) ||
                              (rc = load_tensor(&g, n[12], C, 1, &y->post_ffn_norm, err))))
            goto done;
        /* biases: required by qwen2 on Q/K/V, taken wherever present */
        int need = c->arch == SC_ARCH_QWEN2;
        if ((rc = load_bias(&g, l, "attn_q", QD, need, &y->bq, err)) || (rc = load_bias(&g, l, "attn_k", KD, need, &y->bk, err)) ||
            (rc = load_bias(&g, l, "attn_v", KD, need, &y->bv, err)) || (rc = load_bias(&g, l, "attn_output", C, 0, &y->bo, err)))
            goto done;
    }
    if ((rc = read_swa_layers(&g, m, err)) != SC_OK) goto done;
    if ((rc = kv_init(m, &m->kv, max_ctx, err))) goto done;
    {
        /* SEMCTR_QMM overrides the matmul path (benchmarks, debugging) */
        static const char *qmm_names[] = {"auto", "int", "sgemm", "int+sgemm", "int+bf16", "int+vnni"};
        const char *qmm = getenv("SEMCTR_QMM");
        m->qmm_mode = SC_QMM_AUTO;
        if (qmm && qmm[0]) {
            m->qmm_mode = -1;
            for (int i = 0; i < 6; i++) /* the names in SC_QMM_* order */
                if (!strcmp(qmm, qmm_names[i])) m->qmm_mode = i;
            if (m->qmm_mode < 0) {
                rc = sc_fail(err, SC_EINVAL, "SEMCTR_QMM='%s': expected auto, int, sgemm, int+sgemm, int+bf16 or int+vnni", qmm);
                goto done;
            }
        }
        const char *env = getenv("SEMCTR_THREADS");
        int nt = env && atoi(env) > 0 ? atoi(env) : sc_default_threads();
        rc = sc_llama_set_threads(m, nt > 8 ? 8 : nt, err);
    }
done:
    sc_free(arch);
    sc_free(tmodel);
    if (rc != SC_OK) {
        sc_llama_free(m);
        return rc;
    }
    *out = m;
    return SC_OK;
}

void sc_llama_reset(sc_llama *m) { m->kv.n_past = 0; }

/* ---- forward ---- */

/* The forward pass of batch b: appends each row's key and value to its
 * cache at its position. hidden (may be NULL): [T, C] final-normed states.
 * logits[s] (may be NULL): [V] of segment s's last row. The caller checked
 * token ids and cache room. */
static int forward(sc_llama *m, const fwd_batch *b, float *const *logits, float *hidden, sc_error *err) {
    const sc_llama_config *c = &m->cfg;
    int T = b->T, C = c->dim, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim, F = c->hidden, V = c->n_vocab;
    int QD = NH * HS, KD = NKV * HS, n_logits = 0, mode = m->qmm_mode;
    for (int s = 0; s < b->n_seg; s++) n_logits += logits[s] != NULL;
    size_t TC = (size_t)T * C, TQ = (size_t)T * QD, TK = (size_t)T * KD;
    float *x = sc_malloc(TC * sizeof(float)), *xn = sc_malloc(TC * sizeof(float));
    float *q = sc_malloc(TQ * sizeof(float)), *ao = sc_malloc(TQ * sizeof(float));
    float *kt = sc_malloc(TK * sizeof(float)), *vt = sc_malloc(TK * sizeof(float));
    float *g = sc_malloc((size_t)T * F * sizeof(float)), *u = sc_malloc((size_t)T * F * sizeof(float));
    float *att = sc_malloc(b->att_off[b->n_seg] * sizeof(float));
    float *rope_cs = sc_malloc((2 * (size_t)T * c->rope_dim + 2) * sizeof(float)); /* [global, local][T][rope_dim / 2][2] */
    float *sel = NULL, *lo = NULL;
    int rc = SC_OK;
    if (!x || !xn || !q || !ao || !kt || !vt || !g || !u || !att || !rope_cs) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for activations of %d tokens", T);
        goto done;
    }
    for (int t = 0; t < T; t++) {
        float *xt = x + (size_t)t * C;
        sc_qtensor_row(&m->w.tok_embd, b->tokens[t], xt);
        if (c->embd_scale != 1.0f)
            for (int i = 0; i < C; i++) xt[i] *= c->embd_scale;
    }
    rope_table(rope_cs, T, c->rope_dim, c->rope_base, b->pos);
    if (c->rope_base_local != c->rope_base) rope_table(rope_cs + (size_t)T * c->rope_dim, T, c->rope_dim, c->rope_base_local, b->pos);
    /* the sgemm tiles run inside our threads: OpenBLAS itself single-threaded */
    openblas_set_num_threads(1);
    for (int l = 0; l < c->n_layers; l++) {
        const sc_llama_layer *y = &m->w.layers[l];
        rmsnorm_forward(xn, x, y->attn_norm, T, C, c->eps);
        float *qkv[3] = {q, kt, vt};
        const sc_qtensor *wqkv[3] = {&y->wq, &y->wk, &y->wv};
        if ((rc = sc_qmatmul_seg(3, qkv, wqkv, xn, b->seg, b->n_seg, m->pool, mode, err))) goto done;
        add_bias(q, y->bq, T, QD);
        add_bias(kt, y->bk, T, KD);
        add_bias(vt, y->bv, T, KD);
        if (c->qk_norm) { /* per head: rows of HS */
            rmsnorm_forward(q, q, y->q_norm, T * NH, HS, c->eps);
            rmsnorm_forward(kt, kt, y->k_norm, T * NKV, HS, c->eps);
        }
        const float *cs = rope_cs + (y->local && c->rope_base_local != c->rope_base ? (size_t)T * c->rope_dim : 0);
        rope_forward(q, T, NH, HS, c->rope_dim, cs, c->rope_neox);
        rope_forward(kt, T, NKV, HS, c->rope_dim, cs, c->rope_neox);
        for (int s = 0; s < b->n_seg; s++) { /* into the caches, before attention reads them */
            const sc_llama_kv *kv = b->kvs[s];
            size_t at = ((size_t)l * kv->max_ctx + b->pos0[s]) * KD, n = (size_t)(b->seg[s + 1] - b->seg[s]) * KD;
            if (kv->type == SC_KV_F16) {
                sc_f16_round(kt + (size_t)b->seg[s] * KD, n, kv->kh + at);
                sc_f16_round(vt + (size_t)b->seg[s] * KD, n, kv->vh + at);
            } else {
                memcpy(kv->k + at, kt + (size_t)b->seg[s] * KD, n * sizeof(float));
                memcpy(kv->v + at, vt + (size_t)b->seg[s] * KD, n * sizeof(float));
            }
        }
        attn_job aj = {b, ao, att, q, l, NH, NKV, HS, c->attn_scale, y->local ? c->swa_window : 0, 0};
        sc_pool_run(m->pool, b->n_seg * NH, attention_task, &aj);
        if (aj.failed) {
            rc = sc_fail(err, SC_ENOMEM, "out of memory widening the F16 KV cache of %d positions", b->pos[T - 1] + 1);
            goto done;
        }
        const sc_qtensor *wo = &y->wo;
        if ((rc = sc_qmatmul_seg(1, &xn, &wo, ao, b->seg, b->n_seg, m->pool, mode, err))) goto done;
        add_bias(xn, y->bo, T, C);
        if (c->post_norms) rmsnorm_forward(xn, xn, y->post_attn_norm, T, C, c->eps);
        for (size_t i = 0; i < TC; i++) x[i] += xn[i];
        rmsnorm_forward(xn, x, y->ffn_norm, T, C, c->eps);
        float *gu[2] = {g, u};
        const sc_qtensor *wgu[2] = {&y->w_gate, &y->w_up};
        if ((rc = sc_qmatmul_seg(2, gu, wgu, xn, b->seg, b->n_seg, m->pool, mode, err))) goto done;
        sc_glu(g, u, (size_t)T * F, c->geglu); /* SwiGLU, or GeGLU */
        const sc_qtensor *wd = &y->w_down;
        if ((rc = sc_qmatmul_seg(1, &xn, &wd, g, b->seg, b->n_seg, m->pool, mode, err))) goto done;
        if (c->post_norms) rmsnorm_forward(xn, xn, y->post_ffn_norm, T, C, c->eps);
        for (size_t i = 0; i < TC; i++) x[i] += xn[i];
    }
    rmsnorm_forward(xn, x, m->w.out_norm, T, C, c->eps);
    if (hidden) memcpy(hidden, xn, TC * sizeof(float));
    if (n_logits) {
        /* the output matrix is the largest: only the last row of each
         * segment that wants logits, each a one-row segment */
        sel = sc_malloc((size_t)n_logits * C * sizeof(float));
        lo = sc_malloc((size_t)n_logits * V * sizeof(float));
        int *lseg = sc_malloc((size_t)(n_logits + 1) * sizeof *lseg);
        if (!sel || !lo || !lseg) {
            sc_free(lseg);
            rc = sc_fail(err, SC_ENOMEM, "out of memory for the logits of %d sequences", n_logits);
            goto done;
        }
        for (int s = 0, i = 0; s < b->n_seg; s++)
            if (logits[s]) {
                lseg[i] = i;
                memcpy(sel + (size_t)i++ * C, xn + (size_t)(b->seg[s + 1] - 1) * C, (size_t)C * sizeof(float));
            }
        lseg[n_logits] = n_logits;
        const sc_qtensor *wout = &m->w.output;
        rc = sc_qmatmul_seg(1, &lo, &wout, sel, lseg, n_logits, m->pool, mode, err);
        sc_free(lseg);
        if (rc) goto done;
        for (int s = 0, i = 0; s < b->n_seg; s++) {
            if (!logits[s]) continue;
            memcpy(logits[s], lo + (size_t)i++ * V, (size_t)V * sizeof(float));
            if (c->final_softcap > 0) softcap_forward(logits[s], (size_t)V, c->final_softcap);
        }
    }
done:
    sc_free(x); sc_free(xn); sc_free(q); sc_free(ao); sc_free(kt); sc_free(vt); sc_free(g); sc_free(u); sc_free(att);
    sc_free(rope_cs);
    sc_free(sel); sc_free(lo);
    return rc;
}

/* Check the segments and run them; hidden only for one segment. */
static int forward_segments(sc_llama *m, const sc_llama_seg *segs, int n_seg, float *hidden, sc_error *err) {
    if (n_seg < 1) return sc_fail(err, SC_EINVAL, "%s: empty batch", m->path);
    int T = 0, rc = SC_OK;
    for (int s = 0; s < n_seg; s++) {
        const sc_llama_seg *g = &segs[s];
        if (g->n <= 0) return sc_fail(err, SC_EINVAL, "%s: sequence %d of the batch has no tokens", m->path, s);
        if (g->kv->model != m) return sc_fail(err, SC_EINVAL, "%s: sequence %d: a KV cache made for another model", m->path, s);
        for (int t = 0; t < g->n; t++)
            if (g->tokens[t] < 0 || g->tokens[t] >= m->cfg.n_vocab)
                return sc_fail(err, SC_EINVAL, "%s: token id %d at %d outside the vocabulary of %d", m->path, g->tokens[t], t,
                               m->cfg.n_vocab);
        T += g->n;
    }
    int32_t *tokens = sc_malloc((size_t)T * sizeof *tokens);
    int *seg = sc_malloc((size_t)(n_seg + 1) * sizeof *seg), *pos0 = sc_malloc((size_t)n_seg * sizeof *pos0);
    int *pos = sc_malloc((size_t)T * sizeof *pos);
    size_t *att_off = sc_malloc((size_t)(n_seg + 1) * sizeof *att_off);
    sc_llama_kv **kvs = sc_malloc((size_t)n_seg * sizeof *kvs);
    float **logits = sc_malloc((size_t)n_seg * sizeof *logits);
    if (!tokens || !seg || !pos0 || !pos || !att_off || !kvs || !logits) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    seg[0] = 0;
    att_off[0] = 0;
    for (int s = 0; s < n_seg; s++) {
        const sc_llama_seg *g = &segs[s];
        /* segments of one sequence take its positions in order */
        pos0[s] = g->kv->n_past;
        for (int r = 0; r < s; r++)
            if (segs[r].kv == g->kv) pos0[s] += segs[r].n;
        if (g->n > g->kv->max_ctx - pos0[s]) {
            rc = sc_fail(err, SC_EINVAL, "%s: %d + %d tokens exceed the context of %d", m->path, pos0[s], g->n, g->kv->max_ctx);
            goto done;
        }
        seg[s + 1] = seg[s] + g->n;
        memcpy(tokens + seg[s], g->tokens, (size_t)g->n * sizeof *tokens);
        for (int t = 0; t < g->n; t++) pos[seg[s] + t] = pos0[s] + t;
        att_off[s + 1] = att_off[s] + (size_t)m->cfg.n_heads * att_scratch(g->n, pos0[s] + g->n);
        kvs[s] = g->kv;
        logits[s] = g->logits;
    }
    fwd_batch b = {T, n_seg, tokens, seg, kvs, pos0, pos, att_off};
    if ((rc = forward(m, &b, logits, hidden, err)) == SC_OK)
        for (int s = 0; s < n_seg; s++) segs[s].kv->n_past += segs[s].n;
done:
    sc_free(tokens); sc_free(seg); sc_free(pos0); sc_free(pos); sc_free(att_off); sc_free(kvs); sc_free(logits);
    return rc;
}

int sc_llama_forward_batch(sc_llama *m, const sc_llama_seg *segs, int n_seg, sc_error *err) {
    return forward_segments(m, segs, n_seg, NULL, err);
}

int sc_llama_forward_kv(sc_llama *m, sc_llama_kv *kv, const int32_t *tokens, int T, float *logits, float *hidden,
                        sc_error *err) {
    sc_llama_seg g = {kv, tokens, T, logits};
    return forward_segments(m, &g, 1, hidden, err);
}

int sc_llama_forward(sc_llama *m, const int32_t *tokens, int T, float *logits, float *hidden, sc_error *err) {
    return sc_llama_forward_kv(m, &m->kv, tokens, T, logits, hidden, err);
}

/* ---- tokenizer (one interface over byte-level BPE and SentencePiece BPE) ---- */

int sc_llama_tokenize(const sc_llama *m, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                      sc_error *err) {
    return m->spm ? sc_spm_encode(m->spm, text, len, parse_special, ids, n, err)
                  : sc_bpe_encode(m->bpe, text, len, parse_special, ids, n, err);
}

int sc_llama_token_piece(const sc_llama *m, int32_t id, char *buf, size_t cap) {
    return m->spm ? sc_spm_piece(m->spm, id, buf, cap) : sc_bpe_piece(m->bpe, id, buf, cap);
}

int32_t sc_llama_token_find(const sc_llama *m, const char *s) {
    return m->spm ? sc_spm_find(m->spm, s) : sc_bpe_find(m->bpe, s);
}

int32_t sc_llama_eos(const sc_llama *m) { return m->spm ? sc_spm_eos(m->spm) : sc_bpe_eos(m->bpe); }
int32_t sc_llama_bos(const sc_llama *m) { return m->spm ? sc_spm_bos(m->spm) : sc_bpe_bos(m->bpe); }
int sc_llama_add_bos(const sc_llama *m) {
    return m->spm ? sc_spm_add_bos(m->spm) && sc_spm_bos(m->spm) >= 0 : sc_bpe_add_bos(m->bpe);
}

int sc_llama_is_eog(const sc_llama *m, int32_t id) {
    if (id < 0) return 0;
    if (id == sc_llama_eos(m)) return 1;
    for (int i = 0; sc_tok_eog_texts[i]; i++)
        if (id == sc_llama_token_find(m, sc_tok_eog_texts[i])) return 1;
    return 0;
}

int sc_llama_tokenize_bos(const sc_llama *m, const char *text, int parse_special, int32_t **ids, int *n, sc_error *err) {
    int rc = sc_llama_tokenize(m, text, strlen(text), parse_special, ids, n, err);
    if (rc != SC_OK || !sc_llama_add_bos(m)) return rc;
    int32_t bos = sc_llama_bos(m);
    if (*n > 0 && (*ids)[0] == bos) return SC_OK;
    int32_t *v = sc_realloc(*ids, (size_t)(*n + 1) * sizeof *v);
    if (!v) {
        sc_free(*ids);
        *ids = NULL;
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    memmove(v + 1, v, (size_t)*n * sizeof *v);
    v[0] = bos;
    *ids = v;
    (*n)++;
    return SC_OK;
}

int sc_llama_embed(sc_llama *m, const char *text, float *out, sc_error *err) {
    int32_t *ids;
    int n, C = m->cfg.dim;
    int rc = sc_llama_tokenize_bos(m, text, 0, &ids, &n, err);
    if (rc != SC_OK) return rc;
    if (n == 0) {
        sc_free(ids);
        return sc_fail(err, SC_EINVAL, "empty text has no tokens to pool");
    }
    if (n > m->kv.max_ctx) n = m->kv.max_ctx; /* truncate long texts to the cache */
    float *h = sc_malloc((size_t)n * C * sizeof(float));
    if (!h) {
        sc_free(ids);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    sc_llama_reset(m);
    rc = sc_llama_forward(m, ids, n, NULL, h, err);
    if (rc == SC_OK) {
        for (int i = 0; i < C; i++) out[i] = 0;
        for (int t = 0; t < n; t++)
            for (int i = 0; i < C; i++) out[i] += h[(size_t)t * C + i];
        for (int i = 0; i < C; i++) out[i] /= (float)n;
    }
    sc_llama_reset(m);
    sc_free(h);
    sc_free(ids);
    return rc;
}
