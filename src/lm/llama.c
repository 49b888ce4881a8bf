/* Llama-family forward pass, llm.c style.
 *
 * Dimension letters: T tokens in the batch, P = n_past + T positions in the
 * cache, C model width, NH query heads, NKV key/value heads, HS head size,
 * F feed-forward width, V vocabulary. Weight matrices are row-major
 * [out, in] (ggml's ne[0] is the input dimension), so y = x W^T. */
#include "lm/llama.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/quant.h"

/* ---- layers (stateless) ---- */

/* out[t] = x[t] / rms(x[t]) * w */
static void rmsnorm_forward(float *out, const float *x, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float s = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int i = 0; i < C; i++) ot[i] = xt[i] * s * w[i];
    }
}

/* out[T,OC] = x[T,IC] W[OC,IC]^T */
static void matmul_forward(float *out, const float *x, const float *w, int T, int IC, int OC) {
    if (T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, IC, 1.0f, w, IC, x, 1, 0.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OC, IC, 1.0f, x, IC, w, IC, 0.0f, out, OC);
}

/* llama.cpp's "norm" rope: pairs (2i, 2i+1) of each head rotated by
 * pos * base^(-2i/rope_dim); dimensions past rope_dim untouched. */
static void rope_forward(float *x, int T, int nh, int HS, int rope_dim, float base, int pos0) {
    for (int t = 0; t < T; t++) {
        int pos = pos0 + t;
        for (int i = 0; i < rope_dim; i += 2) {
            float theta = (float)pos * powf(base, -(float)i / (float)rope_dim);
            float c = cosf(theta), s = sinf(theta);
            for (int h = 0; h < nh; h++) {
                float *v = x + ((size_t)t * nh + h) * HS + i;
                float a = v[0], b = v[1];
                v[0] = a * c - b * s;
                v[1] = a * s + b * c;
            }
        }
    }
}

/* Causal grouped-query attention over the cache: out[T, NH*HS]. q[T, NH*HS];
 * kc/vc [P, NKV*HS] hold positions 0..pos0+T-1; att is scratch [P]. */
static void attention_forward(float *out, const float *q, const float *kc, const float *vc, float *att, int T, int pos0,
                              int NH, int NKV, int HS) {
    float scale = 1.0f / sqrtf((float)HS);
    int group = NH / NKV, KD = NKV * HS;
    for (int t = 0; t < T; t++) {
        int P = pos0 + t + 1;
        for (int h = 0; h < NH; h++) {
            const float *qh = q + ((size_t)t * NH + h) * HS;
            int kh = h / group;
            float mx = -INFINITY;
            for (int p = 0; p < P; p++) {
                const float *k = kc + (size_t)p * KD + (size_t)kh * HS;
                float s = 0;
                for (int i = 0; i < HS; i++) s += qh[i] * k[i];
                s *= scale;
                att[p] = s;
                if (s > mx) mx = s;
            }
            float sum = 0;
            for (int p = 0; p < P; p++) {
                att[p] = expf(att[p] - mx);
                sum += att[p];
            }
            float *oh = out + ((size_t)t * NH + h) * HS;
            memset(oh, 0, (size_t)HS * sizeof(float));
            for (int p = 0; p < P; p++) {
                const float *v = vc + (size_t)p * KD + (size_t)kh * HS;
                float a = att[p] / sum;
                for (int i = 0; i < HS; i++) oh[i] += a * v[i];
            }
        }
    }
}

/* h = silu(g) * u, in place into g */
static void swiglu_forward(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
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
            sc_free(y->attn_norm); sc_free(y->wq); sc_free(y->wk); sc_free(y->wv); sc_free(y->wo);
            sc_free(y->ffn_norm); sc_free(y->w_gate); sc_free(y->w_up); sc_free(y->w_down);
        }
        sc_free(w->layers);
    }
    if (!w->tied) sc_free(w->output);
    sc_free(w->tok_embd);
    sc_free(w->out_norm);
    sc_free(m->k_cache);
    sc_free(m->v_cache);
    sc_bpe_free(m->tok);
    sc_free(m);
}

int sc_llama_load(sc_llama **out, const char *path, int max_ctx, sc_error *err) {
    *out = NULL;
    sc_gguf g;
    int rc = sc_gguf_open(&g, path, err);
    if (rc != SC_OK) return rc;
    sc_llama *m = sc_calloc(1, sizeof *m);
    if (!m) {
        sc_gguf_close(&g);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    char *arch = NULL;
    sc_llama_config *c = &m->cfg;
    if ((rc = sc_gguf_get_str(&g, "general.architecture", &arch, err)) != SC_OK) goto done;
    if (strcmp(arch, "llama") != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: general.architecture is '%s'; only 'llama' is supported", path, arch);
        goto done;
    }
    if ((rc = get_int(&g, "llama.embedding_length", 1, 1 << 16, &c->dim, err)) ||
        (rc = get_int(&g, "llama.block_count", 1, 1024, &c->n_layers, err)) ||
        (rc = get_int(&g, "llama.attention.head_count", 1, 1024, &c->n_heads, err)) ||
        (rc = get_int(&g, "llama.feed_forward_length", 1, 1 << 18, &c->hidden, err)) ||
        (rc = get_int(&g, "llama.context_length", 1, 1 << 24, &c->ctx_train, err)))
        goto done;
    c->n_kv_heads = c->n_heads;
    if (sc_gguf_find(&g, "llama.attention.head_count_kv") &&
        (rc = get_int(&g, "llama.attention.head_count_kv", 1, c->n_heads, &c->n_kv_heads, err)))
        goto done;
    if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads) {
        rc = sc_fail(err, SC_EFORMAT, "%s: %d heads do not divide width %d or are not a multiple of %d kv heads", path,
                     c->n_heads, c->dim, c->n_kv_heads);
        goto done;
    }
    c->head_dim = c->dim / c->n_heads;
    c->rope_dim = c->head_dim;
    if (sc_gguf_find(&g, "llama.rope.dimension_count") &&
        (rc = get_int(&g, "llama.rope.dimension_count", 2, c->head_dim, &c->rope_dim, err)))
        goto done;
    if (c->rope_dim % 2) {
        rc = sc_fail(err, SC_EFORMAT, "%s: key 'llama.rope.dimension_count' = %d is odd (rope rotates pairs)", path, c->rope_dim);
        goto done;
    }
    c->rope_base = 10000.0f;
    if (sc_gguf_find(&g, "llama.rope.freq_base") && (rc = sc_gguf_get_f32(&g, "llama.rope.freq_base", &c->rope_base, err)))
        goto done;
    c->eps = 1e-5f;
    if (sc_gguf_find(&g, "llama.attention.layer_norm_rms_epsilon") &&
        (rc = sc_gguf_get_f32(&g, "llama.attention.layer_norm_rms_epsilon", &c->eps, err)))
        goto done;
    if ((rc = sc_bpe_from_gguf(&m->tok, &g, err)) != SC_OK) goto done;
    c->n_vocab = sc_bpe_vocab_size(m->tok);
    int C = c->dim, KD = c->n_kv_heads * c->head_dim, F = c->hidden, V = c->n_vocab;
    sc_llama_weights *w = &m->w;
    if ((rc = load_tensor(&g, "token_embd.weight", C, V, &w->tok_embd, err)) ||
        (rc = load_tensor(&g, "output_norm.weight", C, 1, &w->out_norm, err)))
        goto done;
    if (sc_gguf_tensor_find(&g, "output.weight")) {
        if ((rc = load_tensor(&g, "output.weight", C, V, &w->output, err))) goto done;
    } else {
        w->output = w->tok_embd;
        w->tied = 1;
    }
    w->layers = sc_calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!w->layers) { rc = sc_fail(err, SC_ENOMEM, "out of memory"); goto done; }
    for (int l = 0; l < c->n_layers; l++) {
        sc_llama_layer *y = &w->layers[l];
        char n[9][64];
        const char *sfx[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
        for (int i = 0; i < 9; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, sfx[i]);
        if ((rc = load_tensor(&g, n[0], C, 1, &y->attn_norm, err)) || (rc = load_tensor(&g, n[1], C, C, &y->wq, err)) ||
            (rc = load_tensor(&g, n[2], C, KD, &y->wk, err)) || (rc = load_tensor(&g, n[3], C, KD, &y->wv, err)) ||
            (rc = load_tensor(&g, n[4], C, C, &y->wo, err)) || (rc = load_tensor(&g, n[5], C, 1, &y->ffn_norm, err)) ||
            (rc = load_tensor(&g, n[6], C, F, &y->w_gate, err)) || (rc = load_tensor(&g, n[7], C, F, &y->w_up, err)) ||
            (rc = load_tensor(&g, n[8], F, C, &y->w_down, err)))
            goto done;
    }
    m->max_ctx = max_ctx > 0 ? max_ctx : (c->ctx_train < 2048 ? c->ctx_train : 2048);
    size_t cache = (size_t)c->n_layers * m->max_ctx * KD;
    m->k_cache = sc_calloc(cache, sizeof(float));
    m->v_cache = sc_calloc(cache, sizeof(float));
    if (!m->k_cache || !m->v_cache) { rc = sc_fail(err, SC_ENOMEM, "%s: out of memory for the KV cache", path); goto done; }
done:
    sc_free(arch);
    sc_gguf_close(&g);
    if (rc != SC_OK) {
        sc_llama_free(m);
        return rc;
    }
    *out = m;
    return SC_OK;
}

void sc_llama_reset(sc_llama *m) { m->n_past = 0; }

/* ---- forward ---- */

int sc_llama_forward(sc_llama *m, const int32_t *tokens, int T, float *logits, float *hidden, sc_error *err) {
    const sc_llama_config *c = &m->cfg;
    int C = c->dim, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim, F = c->hidden, V = c->n_vocab;
    int KD = NKV * HS, pos0 = m->n_past;
    if (T <= 0) return sc_fail(err, SC_EINVAL, "%s: empty token batch", m->path);
    if (T > m->max_ctx - pos0)
        return sc_fail(err, SC_EINVAL, "%s: %d + %d tokens exceed the context of %d", m->path, pos0, T, m->max_ctx);
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= V)
            return sc_fail(err, SC_EINVAL, "%s: token id %d at %d outside the vocabulary of %d", m->path, tokens[t], t, V);
    /* activations */
    size_t TC = (size_t)T * C;
    float *x = sc_malloc(TC * sizeof(float)), *xn = sc_malloc(TC * sizeof(float));
    float *q = sc_malloc(TC * sizeof(float)), *ao = sc_malloc(TC * sizeof(float));
    float *g = sc_malloc((size_t)T * F * sizeof(float)), *u = sc_malloc((size_t)T * F * sizeof(float));
    float *att = sc_malloc((size_t)m->max_ctx * sizeof(float));
    int rc = SC_OK;
    if (!x || !xn || !q || !ao || !g || !u || !att) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for activations of %d tokens", T);
        goto done;
    }
    for (int t = 0; t < T; t++) memcpy(x + (size_t)t * C, m->w.tok_embd + (size_t)tokens[t] * C, (size_t)C * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const sc_llama_layer *y = &m->w.layers[l];
        float *kc = m->k_cache + (size_t)l * m->max_ctx * KD, *vc = m->v_cache + (size_t)l * m->max_ctx * KD;
        rmsnorm_forward(xn, x, y->attn_norm, T, C, c->eps);
        matmul_forward(q, xn, y->wq, T, C, C);
        matmul_forward(kc + (size_t)pos0 * KD, xn, y->wk, T, C, KD);
        matmul_forward(vc + (size_t)pos0 * KD, xn, y->wv, T, C, KD);
        rope_forward(q, T, NH, HS, c->rope_dim, c->rope_base, pos0);
        rope_forward(kc + (size_t)pos0 * KD, T, NKV, HS, c->rope_dim, c->rope_base, pos0);
        attention_forward(ao, q, kc, vc, att, T, pos0, NH, NKV, HS);
        matmul_forward(xn, ao, y->wo, T, C, C);
        for (size_t i = 0; i < TC; i++) x[i] += xn[i];
        rmsnorm_forward(xn, x, y->ffn_norm, T, C, c->eps);
        matmul_forward(g, xn, y->w_gate, T, C, F);
        matmul_forward(u, xn, y->w_up, T, C, F);
        swiglu_forward(g, u, (size_t)T * F);
        matmul_forward(xn, g, y->w_down, T, F, C);
        for (size_t i = 0; i < TC; i++) x[i] += xn[i];
    }
    rmsnorm_forward(xn, x, m->w.out_norm, T, C, c->eps);
    if (hidden) memcpy(hidden, xn, TC * sizeof(float));
    if (logits) matmul_forward(logits, xn + (size_t)(T - 1) * C, m->w.output, 1, C, V);
    m->n_past += T;
done:
    sc_free(x); sc_free(xn); sc_free(q); sc_free(ao); sc_free(g); sc_free(u); sc_free(att);
    return rc;
}

int sc_llama_embed(sc_llama *m, const char *text, float *out, sc_error *err) {
    int32_t *ids;
    int n, C = m->cfg.dim;
    int rc = sc_bpe_encode(m->tok, text, strlen(text), 0, &ids, &n, err);
    if (rc != SC_OK) return rc;
    if (n == 0) {
        sc_free(ids);
        return sc_fail(err, SC_EINVAL, "empty text has no tokens to pool");
    }
    if (n > m->max_ctx) n = m->max_ctx; /* truncate long texts to the cache */
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

/* ---- tokenizer access: thin wrappers over sc_bpe (wt-gemma's branch
 * replaces this block with one that also covers SentencePiece) ---- */

int sc_llama_tokenize(const sc_llama *m, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                      sc_error *err) {
    return sc_bpe_encode(m->tok, text, len, parse_special, ids, n, err);
}

int sc_llama_token_piece(const sc_llama *m, int32_t id, char *buf, size_t cap) { return sc_bpe_piece(m->tok, id, buf, cap); }

int32_t sc_llama_token_find(const sc_llama *m, const char *s) { return sc_bpe_find(m->tok, s); }

int32_t sc_llama_eos(const sc_llama *m) { return sc_bpe_eos(m->tok); }

int32_t sc_llama_bos(const sc_llama *m) { return sc_bpe_bos(m->tok); }
