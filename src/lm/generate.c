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

/* Candidates come in descending logit, then ascending id: a total order,
 * so the candidate list (and therefore the sample) does not depend on how
 * it is produced. A binary heap yields them one by one: sampling usually
 * needs the first few of V (a full sort of the vocabulary took a fifth of
 * an extraction's time). */
static int before(const float *l, int32_t i, int32_t j) { return l[i] > l[j] || (l[i] == l[j] && i < j); }

static void sift_down(int32_t *h, int n, int i, const float *l) {
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && before(l, h[c + 1], h[c])) c++;
        if (!before(l, h[c], h[i])) return;
        int32_t t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

/* the next candidate: removes the heap's top (h[0..*n)) into h[*n - 1] */
static int32_t heap_pop(int32_t *h, int *n, const float *l) {
    int32_t top = h[0];
    h[0] = h[--*n];
    h[*n] = top;
    sift_down(h, *n, 0, l);
    return top;
}

/* pop the next candidate and replace its logit by its weight exp((l - max) / T) */
static int32_t next_candidate(int32_t *h, int *n, float *logits, float lmax, float temperature) {
    int32_t id = heap_pop(h, n, logits);
    logits[id] = expf((logits[id] - lmax) / temperature);
    return id;
}

int32_t sc_sample_token(float *logits, int V, const sc_gen_params *p, sc_rng *rng, int32_t *order) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (p->temperature <= 0.0f) return best;
    /* softmax over the candidates in order, then top-k and top-p cuts. The
     * heap keeps the unpopped ids in order[0..hn); the V - hn popped ones
     * gather at the end in candidate order from order[V-1] down, their
     * logit replaced by their weight (the heap never reads a popped one). */
    float lmax = logits[best];
    int K = p->top_k > 0 && p->top_k < V ? p->top_k : V, hn = V;
    for (int v = 0; v < V; v++) order[v] = v;
    for (int i = V / 2 - 1; i >= 0; i--) sift_down(order, V, i, logits);
    double sum = 0;
    if (K < V) { /* the K best */
        for (int k = 0; k < K; k++) sum += logits[next_candidate(order, &hn, logits, lmax, p->temperature)];
    } else {
        for (int v = 0; v < V; v++) sum += expf((logits[v] - lmax) / p->temperature);
    }
    if (p->top_p < 1.0f) {
        double cum = 0, target = (double)p->top_p * sum;
        int k = 0;
        while (k < K) {
            cum += logits[k < V - hn ? order[V - 1 - k] : next_candidate(order, &hn, logits, lmax, p->temperature)];
            k++;
            if (cum >= target) break;
        }
        K = k;
        sum = cum;
    }
    double u = sc_rng_uniform(rng) * sum, acc = 0;
    for (int k = 0; k < K; k++) {
        int32_t id = k < V - hn ? order[V - 1 - k] : next_candidate(order, &hn, logits, lmax, p->temperature);
        acc += logits[id];
        if (u < acc) return id;
    }
    return order[V - K]; /* u rounded up to the sum: the last candidate */
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
    sc_gen_job job = {.prompt = prompt, .params = p, .cache = cache, .emit = emit, .ctx = ctx};
    int rc = sc_generate_batch(m, &job, 1, NULL, err);
    *res = job.res;
    return rc;
}

/* A job in flight: its tokens, logits, sampler. */
typedef struct gen_state {
    sc_llama_kv *kv;
    int32_t *ids;        /* prompt tokens */
    int n, keep;         /* prompt length; positions kept from the cache */
    float *logits;       /* [V] */
    int32_t *order;      /* [V] sampling scratch */
    sc_rng rng;
    size_t cap, emitted, maxstop;
    int32_t next;        /* the token to run next */
    int active, stop_early;
} gen_state;

/* Sample the next token of job j and decide whether it goes on (st->active). */
static int gen_step(sc_llama *m, sc_gen_job *j, gen_state *st, sc_error *err) {
    const sc_gen_params *p = j->params;
    sc_gen_result *res = &j->res;
    int32_t tok = sc_sample_token(st->logits, m->cfg.n_vocab, p, &st->rng, st->order);
    res->n_generated++;
    st->active = 0;
    if (sc_llama_is_eog(m, tok)) { /* EOS or an end-of-turn marker of the chat families */
        res->end = SC_GEN_END_EOS;
        return SC_OK;
    }
    char piece[512];
    int pn = sc_llama_token_piece(m, tok, piece, sizeof piece);
    size_t before = res->len;
    if (pn > 0 && append(res, &st->cap, piece, (size_t)pn)) return sc_fail(err, SC_ENOMEM, "out of memory");
    /* a stop may begin up to maxstop-1 bytes before the new piece */
    long hit = p->n_stops ? sc_stop_find(res->text, res->len, before > st->maxstop ? before - st->maxstop : 0, p->stops,
                                         p->n_stops)
                          : -1;
    if (hit >= 0) {
        res->len = (size_t)hit;
        res->text[res->len] = 0;
        res->end = SC_GEN_END_STOP;
        return SC_OK;
    }
    size_t safe = res->len - sc_stop_holdback(res->text, res->len, p->stops, p->n_stops);
    if (j->emit && safe > st->emitted) {
        st->stop_early = j->emit(j->ctx, res->text + st->emitted, safe - st->emitted);
        st->emitted = safe;
        if (st->stop_early) return SC_OK;
    }
    if (res->n_generated == p->max_tokens) return SC_OK;
    if (st->kv->n_past >= st->kv->max_ctx) {
        res->end = SC_GEN_END_CONTEXT;
        return SC_OK;
    }
    st->next = tok;
    st->active = 1;
    return SC_OK;
}

/* Tokenise job j's prompt, choose what its prompt cache keeps. */
static int gen_begin(sc_llama *m, sc_gen_job *j, gen_state *st, sc_error *err) {
    const sc_gen_params *p = j->params;
    sc_gen_cache *cache = j->cache;
    sc_gen_result *res = &j->res;
    int rc = sc_gen_params_check(p, err);
    if (rc != SC_OK) return rc;
    st->kv = j->kv ? j->kv : &m->kv;
    if ((rc = sc_llama_tokenize_bos(m, j->prompt, 1, &st->ids, &st->n, err)) != SC_OK) return rc;
    int n = st->n;
    if (n == 0) return sc_fail(err, SC_EINVAL, "empty prompt");
    if (n >= st->kv->max_ctx)
        return sc_fail(err, SC_EINVAL, "%s: the prompt has %d tokens; the context holds %d", m->path, n, st->kv->max_ctx);
    for (int i = 0; i < p->n_stops; i++)
        if (strlen(p->stops[i]) > st->maxstop) st->maxstop = strlen(p->stops[i]);
    st->cap = 256;
    res->text = sc_malloc(st->cap);
    st->logits = sc_malloc((size_t)m->cfg.n_vocab * sizeof(float));
    st->order = sc_malloc((size_t)m->cfg.n_vocab * sizeof(int32_t));
    if (!res->text || !st->logits || !st->order) return sc_fail(err, SC_ENOMEM, "out of memory");
    res->text[0] = 0;
    res->n_prompt = n;
    res->end = SC_GEN_END_LENGTH;
    sc_rng_seed(&st->rng, p->seed);
    /* The prompt runs in chunks that start at multiples of SC_GEN_CHUNK, and
     * the cache keeps only whole chunks that were computed as prompt chunks:
     * the float of a forward pass depends on how tokens are batched (one
     * token takes the 8-bit integer path, a batch float tiles), so this makes
     * a cached run compute exactly what a cold one does: same text. */
    int keep = 0;
    if (cache && cache->n <= st->kv->n_past)
        while (keep < (cache->extend ? cache->n : cache->n_canon) && keep < n - 1 && cache->toks[keep] == st->ids[keep])
            keep++;
    if (!cache || !cache->extend || keep < cache->n_canon) keep -= keep % SC_GEN_CHUNK;
    st->kv->n_past = keep;
    st->keep = keep;
    if (cache) {
        cache->n = keep;
        if (cache->n_canon > keep) cache->n_canon = keep;
    }
    return SC_OK;
}

int sc_generate_batch(sc_llama *m, sc_gen_job *jobs, int n_jobs, int *failed, sc_error *err) {
    int rc = SC_OK, fail_at = -1, n_segs = 0;
    gen_state *st = sc_calloc((size_t)(n_jobs > 0 ? n_jobs : 1), sizeof *st);
    sc_llama_seg *segs = NULL;
    if (failed) *failed = -1;
    if (!st) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int i = 0; i < n_jobs; i++) memset(&jobs[i].res, 0, sizeof jobs[i].res);
    for (int i = 0; i < n_jobs && rc == SC_OK; i++) {
        for (int k = 0; k < i; k++)
            if ((jobs[k].kv ? jobs[k].kv : &m->kv) == (jobs[i].kv ? jobs[i].kv : &m->kv))
                rc = sc_fail(err, SC_EINVAL, "jobs %d and %d share a KV cache", k, i);
        if (rc == SC_OK) rc = gen_begin(m, &jobs[i], &st[i], err);
        if (rc != SC_OK) fail_at = i;
        n_segs += (st[i].n - st[i].keep + SC_GEN_CHUNK - 1) / SC_GEN_CHUNK;
    }
    if (rc == SC_OK && !(segs = sc_malloc((size_t)(n_segs > n_jobs ? n_segs : n_jobs) * sizeof *segs)))
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
    /* every prompt's chunks in one pass (chunk boundaries as each alone) */
    double t0 = sc_now();
    if (rc == SC_OK) {
        int ns = 0;
        for (int i = 0; i < n_jobs; i++)
            for (int c0 = st[i].keep; c0 < st[i].n; c0 += SC_GEN_CHUNK) {
                int c1 = c0 + SC_GEN_CHUNK < st[i].n ? c0 + SC_GEN_CHUNK : st[i].n;
                segs[ns++] = (sc_llama_seg){st[i].kv, st[i].ids + c0, c1 - c0, c1 == st[i].n ? st[i].logits : NULL};
            }
        rc = sc_llama_forward_batch(m, segs, ns, err);
    }
    double prompt_s = sc_now() - t0;
    for (int i = 0; i < n_jobs && rc == SC_OK; i++) {
        sc_gen_cache *cache = jobs[i].cache;
        jobs[i].res.prompt_s = prompt_s;
        if (cache_push(cache, st[i].ids + st[i].keep, st[i].n - st[i].keep)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        /* chunks as a cold run computes them */
        else if (cache && st[i].keep % SC_GEN_CHUNK == 0 && cache->n_canon == st[i].keep) cache->n_canon = cache->n;
    }
    /* then one token of every unfinished job per pass */
    t0 = sc_now();
    for (int i = 0; i < n_jobs && rc == SC_OK; i++)
        if ((rc = gen_step(m, &jobs[i], &st[i], err)) != SC_OK) fail_at = i;
    while (rc == SC_OK) {
        int ns = 0;
        for (int i = 0; i < n_jobs; i++)
            if (st[i].active) segs[ns++] = (sc_llama_seg){st[i].kv, &st[i].next, 1, st[i].logits};
        if (!ns) break;
        if ((rc = sc_llama_forward_batch(m, segs, ns, err))) break;
        double now = sc_now();
        for (int i = 0; i < n_jobs && rc == SC_OK; i++) {
            if (!st[i].active) continue;
            if (cache_push(jobs[i].cache, &st[i].next, 1)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            else if ((rc = gen_step(m, &jobs[i], &st[i], err)) != SC_OK) fail_at = i;
            if (!st[i].active) jobs[i].res.gen_s = now - t0;
        }
    }
    for (int i = 0; i < n_jobs; i++) {
        sc_gen_job *j = &jobs[i];
        if (rc == SC_OK && j->emit && !st[i].stop_early && j->res.len > st[i].emitted)
            j->emit(j->ctx, j->res.text + st[i].emitted, j->res.len - st[i].emitted);
        if (rc != SC_OK) {
            sc_gen_result_free(&j->res);
            if (j->cache) j->cache->n = j->cache->n_canon = 0; /* the KV cache may hold a partial batch */
        }
        sc_free(st[i].ids);
        sc_free(st[i].logits);
        sc_free(st[i].order);
    }
    if (failed) *failed = fail_at;
    sc_free(st);
    sc_free(segs);
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
