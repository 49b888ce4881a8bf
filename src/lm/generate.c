/* Text generation: sampling, stop strings, streaming. See generate.h.
 *
 * Dimension letters: V vocabulary, K candidates kept by top-k / top-p. */
#include "lm/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

void sc_gen_params_default(sc_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 64;
    p->temperature = 0.0f;
    p->top_p = 1.0f;
}

int sc_gen_params_check(const sc_gen_params *p, sc_error *err) {
    if (p->max_tokens < 1) return sc_fail(err, SC_EINVAL, "max_tokens must be >= 1, got %d", p->max_tokens);
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature) || p->temperature > 100.0f)
        return sc_fail(err, SC_EINVAL, "temperature must be in [0, 100], got %g", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) return sc_fail(err, SC_EINVAL, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (p->top_k < 0) return sc_fail(err, SC_EINVAL, "top_k must be >= 0, got %d", p->top_k);
    if (p->n_stops < 0 || p->n_stops > SC_GEN_MAX_STOPS)
        return sc_fail(err, SC_EINVAL, "at most %d stop strings, got %d", SC_GEN_MAX_STOPS, p->n_stops);
    for (int i = 0; i < p->n_stops; i++)
        if (!p->stops[i] || !p->stops[i][0]) return sc_fail(err, SC_EINVAL, "stop string %d is empty", i + 1);
    return SC_OK;
}

/* ---- sampling ---- */

/* Descending logit, then ascending id: a total order, so the candidate list
 * (and therefore the sample) does not depend on the sort's stability. */
static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *l = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (l[i] > l[j]) return -1;
    if (l[i] < l[j]) return 1;
    return (i > j) - (i < j);
}

int32_t sc_sample_token(float *logits, int V, const sc_gen_params *p, sc_rng *rng, int32_t *order) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (p->temperature <= 0.0f) return best;
    /* softmax over the candidates in sorted order, then top-k and top-p cuts */
    for (int v = 0; v < V; v++) order[v] = v;
    qsort_r(order, (size_t)V, sizeof *order, cmp_desc, logits);
    int K = p->top_k > 0 && p->top_k < V ? p->top_k : V;
    float lmax = logits[best];
    double sum = 0;
    for (int k = 0; k < K; k++) {
        float e = expf((logits[order[k]] - lmax) / p->temperature);
        logits[order[k]] = e;
        sum += e;
    }
    if (p->top_p < 1.0f) {
        double cum = 0, target = (double)p->top_p * sum;
        int k = 0;
        while (k < K) {
            cum += logits[order[k++]];
            if (cum >= target) break;
        }
        K = k;
        sum = cum;
    }
    double u = sc_rng_uniform(rng) * sum, acc = 0;
    for (int k = 0; k < K; k++) {
        acc += logits[order[k]];
        if (u < acc) return order[k];
    }
    return order[K - 1]; /* u rounded up to the sum */
}

/* ---- stop strings ---- */

size_t sc_stop_holdback(const char *text, size_t len, const char *const *stops, int n_stops) {
    size_t hold = 0;
    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        for (size_t k = sl - 1 < len ? sl - 1 : len; k > hold; k--)
            if (!memcmp(text + len - k, stops[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}

long sc_stop_find(const char *text, size_t len, size_t from, const char *const *stops, int n_stops) {
    long first = -1;
    for (int i = 0; i < n_stops; i++) {
        if (from >= len) break;
        const char *hit = memmem(text + from, len - from, stops[i], strlen(stops[i]));
        if (hit && (first < 0 || hit - text < first)) first = hit - text;
    }
    return first;
}

/* ---- the loop ---- */

static int append(sc_gen_result *r, size_t *cap, const char *s, size_t n) {
    if (r->len + n + 1 > *cap) {
        size_t nc = (r->len + n + 1) * 2;
        char *t = sc_realloc(r->text, nc);
        if (!t) return -1;
        r->text = t;
        *cap = nc;
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = 0;
    return 0;
}

void sc_gen_result_free(sc_gen_result *res) {
    if (!res) return;
    sc_free(res->text);
    res->text = NULL;
    res->len = 0;
}

void sc_gen_cache_free(sc_gen_cache *c) {
    if (!c) return;
    sc_free(c->toks);
    memset(c, 0, sizeof *c);
}

static int cache_push(sc_gen_cache *c, const int32_t *t, int n) {
    if (!c) return 0;
    if (c->n + n > c->cap) {
        int nc = (c->n + n) * 2;
        int32_t *x = sc_realloc(c->toks, (size_t)nc * sizeof *x);
        if (!x) return -1;
        c->toks = x;
        c->cap = nc;
    }
    memcpy(c->toks + c->n, t, (size_t)n * sizeof *t);
    c->n += n;
    return 0;
}

int sc_generate(sc_llama *m, const char *prompt, const sc_gen_params *p, sc_gen_emit emit, void *ctx,
                sc_gen_result *res, sc_error *err) {
    return sc_generate_cached(m, NULL, prompt, p, emit, ctx, res, err);
}

int sc_generate_cached(sc_llama *m, sc_gen_cache *cache, const char *prompt, const sc_gen_params *p, sc_gen_emit emit,
                       void *ctx, sc_gen_result *res, sc_error *err) {
    memset(res, 0, sizeof *res);
    int rc = sc_gen_params_check(p, err);
    if (rc != SC_OK) return rc;
    int32_t *ids = NULL;
    int n = 0, V = m->cfg.n_vocab;
    if ((rc = sc_llama_tokenize_bos(m, prompt, 1, &ids, &n, err)) != SC_OK) return rc;
    if (n == 0) {
        sc_free(ids);
        return sc_fail(err, SC_EINVAL, "empty prompt");
    }
    if (n >= m->max_ctx) {
        sc_free(ids);
        return sc_fail(err, SC_EINVAL, "%s: the prompt has %d tokens; the context holds %d", m->path, n, m->max_ctx);
    }
    size_t cap = 256, emitted = 0, maxstop = 0;
    for (int i = 0; i < p->n_stops; i++)
        if (strlen(p->stops[i]) > maxstop) maxstop = strlen(p->stops[i]);
    res->text = sc_malloc(cap);
    float *logits = sc_malloc((size_t)V * sizeof(float));
    int32_t *order = sc_malloc((size_t)V * sizeof(int32_t));
    if (!res->text || !logits || !order) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    res->text[0] = 0;
    res->n_prompt = n;
    res->end = SC_GEN_END_LENGTH;
    sc_rng rng;
    sc_rng_seed(&rng, p->seed);
    /* The prompt runs in chunks that start at multiples of SC_GEN_CHUNK, and
     * the cache keeps only whole chunks that were computed as prompt chunks:
     * the float of a forward pass depends on how tokens are batched (one
     * token takes the 8-bit integer path, a batch float tiles), so this makes
     * a cached run compute exactly what a cold one does: same text. */
    int keep = 0;
    if (cache && cache->n <= m->n_past)
        while (keep < (cache->extend ? cache->n : cache->n_canon) && keep < n - 1 && cache->toks[keep] == ids[keep])
            keep++;
    if (!cache || !cache->extend || keep < cache->n_canon) keep -= keep % SC_GEN_CHUNK;
    m->n_past = keep;
    if (cache) {
        cache->n = keep;
        if (cache->n_canon > keep) cache->n_canon = keep;
    }
    int aligned = keep % SC_GEN_CHUNK == 0;
    double t0 = sc_now();
    for (int c0 = keep; c0 < n && rc == SC_OK; c0 += SC_GEN_CHUNK) {
        int c1 = c0 + SC_GEN_CHUNK < n ? c0 + SC_GEN_CHUNK : n;
        rc = sc_llama_forward(m, ids + c0, c1 - c0, c1 == n ? logits : NULL, NULL, err);
    }
    if (rc == SC_OK && cache_push(cache, ids + keep, n - keep)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    if (cache && aligned && cache->n_canon == keep) cache->n_canon = cache->n; /* chunks as a cold run computes them */
    res->prompt_s = sc_now() - t0;
    t0 = sc_now();
    int stop_early = 0;
    for (int k = 0; k < p->max_tokens && rc == SC_OK; k++) {
        int32_t tok = sc_sample_token(logits, V, p, &rng, order);
        res->n_generated++;
        if (sc_llama_is_eog(m, tok)) { /* EOS or an end-of-turn marker of the chat families */
            res->end = SC_GEN_END_EOS;
            break;
        }
        char piece[512];
        int pn = sc_llama_token_piece(m, tok, piece, sizeof piece);
        size_t before = res->len;
        if (pn > 0 && append(res, &cap, piece, (size_t)pn)) {
            rc = sc_fail(err, SC_ENOMEM, "out of memory");
            break;
        }
        /* a stop may begin up to maxstop-1 bytes before the new piece */
        long hit = p->n_stops ? sc_stop_find(res->text, res->len, before > maxstop ? before - maxstop : 0, p->stops, p->n_stops)
                              : -1;
        if (hit >= 0) {
            res->len = (size_t)hit;
            res->text[res->len] = 0;
            res->end = SC_GEN_END_STOP;
            break;
        }
        size_t safe = res->len - sc_stop_holdback(res->text, res->len, p->stops, p->n_stops);
        if (emit && safe > emitted) {
            stop_early = emit(ctx, res->text + emitted, safe - emitted);
            emitted = safe;
            if (stop_early) break;
        }
        if (k + 1 == p->max_tokens) break;
        if (m->n_past >= m->max_ctx) {
            res->end = SC_GEN_END_CONTEXT;
            break;
        }
        rc = sc_llama_forward(m, &tok, 1, logits, NULL, err);
        if (rc == SC_OK && cache_push(cache, &tok, 1)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    res->gen_s = sc_now() - t0;
    if (rc == SC_OK && emit && !stop_early && res->len > emitted) emit(ctx, res->text + emitted, res->len - emitted);
done:
    sc_free(ids);
    sc_free(logits);
    sc_free(order);
    if (rc != SC_OK) {
        sc_gen_result_free(res);
        if (cache) cache->n = cache->n_canon = 0; /* the KV cache may hold a partial batch */
    }
    return rc;
}

int sc_llama_generate(sc_llama *m, const char *prompt, int max_tokens, char **out, sc_error *err) {
    *out = NULL;
    sc_gen_params p;
    sc_gen_params_default(&p);
    p.max_tokens = max_tokens;
    sc_gen_result r;
    int rc = sc_generate(m, prompt, &p, NULL, NULL, &r, err);
    if (rc != SC_OK) return rc;
    *out = r.text;
    return SC_OK;
}
