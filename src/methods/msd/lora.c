/* MSD's LoRA on the small encoder: the frozen base, the pooled vectors under
 * the current weights, gradient accumulation and the LoRA step (lora.h).
 * Dimension letters: U distinct texts, N tokens, C channels, R rank, K / D a
 * projection's input / output size. */
#include "methods/msd/lora.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"

/* Tokens per chunk through the adapted layers: big enough for efficient
 * GEMMs, small enough that the activations stay near 100 MB. */
enum { CHUNK_TOKENS = 2048, LOWER_BATCH = 64 };

static sc_bert *bert_of(const sc_msd_lora_base *b) { return sc_encoder_bert(b->enc.enc); }

/* ---- the frozen base ---- */

void sc_msd_lora_base_free(sc_msd_lora_base *b) {
    if (b->enc.enc || b->enc.llm) sc_textvec_close(&b->enc);
    sc_free(b->len);
    sc_free(b->off);
    sc_free(b->x0);
    memset(b, 0, sizeof *b);
}

/* Token ids of texts[0..n): ids (sum len) packed, len (n). *ids is the caller's. */
static int tokenize(sc_encoder *enc, const char *const *texts, int64_t n, int32_t **ids, int *len, sc_error *err) {
    int cap = sc_encoder_max_length(enc);
    int *buf = sc_malloc((size_t)cap * sizeof *buf);
    int64_t have = 0, room = 0;
    int32_t *out = NULL;
    int rc = buf ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n && !rc; i++) {
        int k = 0;
        rc = sc_encoder_tokenize(enc, texts[i] ? texts[i] : "", buf, cap, &k, err);
        if (rc) break;
        k = k < cap ? k : cap;
        if (have + k > room) {
            room = (have + k) * 2 + 1024;
            int32_t *o = sc_realloc(out, (size_t)room * sizeof *o);
            if (!o) {
                rc = sc_fail(err, SC_ENOMEM, "out of memory for token ids");
                break;
            }
            out = o;
        }
        for (int j = 0; j < k; j++) out[have + j] = buf[j];
        len[i] = k;
        have += k;
    }
    sc_free(buf);
    if (rc) sc_free(out);
    else *ids = out;
    return rc;
}

static int open_bert_encoder(sc_textvec *enc, const char *dir, int n_threads, sc_error *err) {
    int rc = sc_textvec_open(enc, dir, n_threads, err);
    if (rc) return rc;
    if (!enc->enc) {
        sc_textvec_close(enc);
        return sc_fail(err, SC_EINVAL, "MSD LoRA: %s is not a BERT-family encoder (a decoder cannot be adapted)", dir);
    }
    return SC_OK;
}

/* ---- the base's disk cache ----
 * Little-endian, version 1: the header below, then len (U int32), then x0
 * (N, C) float32. It belongs to one encoder (name, width, max length), one
 * first adapted layer and one list of texts (an XXH3 hash of all of them, in
 * order); any other cache file is ignored and replaced. */
#define BASE_MAGIC "SCLORAB1"
typedef struct base_header {
    char magic[8];
    uint32_t version, C, first, max_length;
    uint64_t U, N, texts_hash;
    char model[256];
} base_header;

static uint64_t texts_hash(const char *const *texts, int64_t U) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) return 0;
    XXH3_64bits_reset(st);
    for (int64_t u = 0; u < U; u++) {
        const char *t = texts[u] ? texts[u] : "";
        XXH3_64bits_update(st, t, strlen(t) + 1); /* with its NUL: texts cannot run into each other */
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

static void base_header_fill(base_header *h, const sc_msd_lora_base *b, uint64_t th) {
    memset(h, 0, sizeof *h);
    memcpy(h->magic, BASE_MAGIC, 8);
    h->version = 1;
    h->C = (uint32_t)sc_encoder_dim(b->enc.enc);
    h->first = (uint32_t)b->first;
    h->max_length = (uint32_t)sc_encoder_max_length(b->enc.enc);
    h->U = (uint64_t)b->U;
    h->texts_hash = th;
    snprintf(h->model, sizeof h->model, "%s", b->enc.name);
}

/* The cached len, off and x0 into b when path holds this base; 1 if read. */
static int base_read(sc_msd_lora_base *b, const char *path, uint64_t th) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    base_header want, h;
    base_header_fill(&want, b, th);
    int ok = fread(&h, sizeof h, 1, f) == 1 && !memcmp(h.magic, want.magic, 8) && h.version == want.version &&
             h.C == want.C && h.first == want.first && h.max_length == want.max_length && h.U == want.U &&
             h.texts_hash == want.texts_hash && !strncmp(h.model, want.model, sizeof h.model) &&
             h.N <= (uint64_t)h.U * h.max_length;
    if (ok) ok = fread(b->len, sizeof *b->len, (size_t)b->U, f) == (size_t)b->U;
    int64_t N = 0;
    for (int64_t u = 0; u < b->U && ok; u++) {
        ok = b->len[u] >= 1 && b->len[u] <= (int)h.max_length;
        b->off[u] = N;
        N += b->len[u];
        b->max_len = b->len[u] > b->max_len ? b->len[u] : b->max_len;
    }
    ok = ok && (uint64_t)N == h.N;
    if (ok) {
        b->off[b->U] = N;
        b->x0 = sc_aligned_alloc((size_t)(N ? N : 1) * h.C * sizeof(float));
        ok = b->x0 && fread(b->x0, sizeof(float) * h.C, (size_t)N, f) == (size_t)N && fgetc(f) == EOF;
    }
    fclose(f);
    if (!ok) {
        sc_free(b->x0);
        b->x0 = NULL;
        b->max_len = 0;
    }
    return ok;
}

static int base_write(const sc_msd_lora_base *b, const char *path, uint64_t th, sc_error *err) {
    base_header h;
    base_header_fill(&h, b, th);
    h.N = (uint64_t)b->off[b->U];
    sc_atomic_file f;
    int rc = sc_atomic_open(&f, path, err);
    if (!rc) rc = sc_atomic_write(&f, &h, sizeof h, err);
    if (!rc) rc = sc_atomic_write(&f, b->len, (size_t)b->U * sizeof *b->len, err);
    if (!rc) rc = sc_atomic_write(&f, b->x0, (size_t)h.N * h.C * sizeof(float), err);
    if (!rc) return sc_atomic_commit(&f, err);
    sc_atomic_abort(&f);
    return rc;
}

int sc_msd_lora_base_build(sc_msd_lora_base *b, const char *encoder_dir, const char *const *texts, int64_t U,
                           int n_layers, int n_threads, const char *cache_path, sc_error *err) {
    memset(b, 0, sizeof *b);
    int rc = open_bert_encoder(&b->enc, encoder_dir, n_threads, err);
    if (rc) return rc;
    sc_bert *m = bert_of(b);
    const int L = m->cfg.layers, C = m->cfg.hidden;
    if (n_layers < 1 || n_layers > L || n_layers > SC_LORA_MAX_LAYERS) {
        sc_msd_lora_base_free(b);
        return sc_fail(err, SC_EINVAL, "--msd-lora-layers %d: the encoder %s has %d layers (1 to %d can be adapted)",
                       n_layers, encoder_dir, L, L < SC_LORA_MAX_LAYERS ? L : SC_LORA_MAX_LAYERS);
    }
    b->pooling = sc_encoder_pooling(b->enc.enc);
    b->first = L - n_layers;
    b->U = U;
    b->len = sc_malloc((size_t)(U + 1) * sizeof *b->len);
    b->off = sc_malloc((size_t)(U + 1) * sizeof *b->off);
    int32_t *ids = NULL;
    if (!b->len || !b->off) rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld texts", (long long)U);
    const uint64_t th = texts_hash(texts, U);
    if (!rc && cache_path && base_read(b, cache_path, th)) {
        sc_info("MSD LoRA: %lld texts (%lld tokens) entering layer %d read from %s; layers %d..%d adapted",
                (long long)U, (long long)b->off[U], b->first, cache_path, b->first, L - 1);
        return SC_OK;
    }
    if (!rc) rc = tokenize(b->enc.enc, texts, U, &ids, b->len, err);
    int64_t N = 0;
    for (int64_t u = 0; u < U && !rc; u++) {
        b->off[u] = N;
        N += b->len[u];
        b->max_len = b->len[u] > b->max_len ? b->len[u] : b->max_len;
    }
    if (!rc) {
        b->off[U] = N;
        b->x0 = sc_aligned_alloc((size_t)(N ? N : 1) * C * sizeof(float));
        if (!b->x0) rc = sc_fail(err, SC_ENOMEM, "out of memory for the states of %lld tokens", (long long)N);
    }
    double t0 = sc_now();
    for (int64_t u = 0; u < U && !rc; u += LOWER_BATCH) {
        int n = (int)(U - u < LOWER_BATCH ? U - u : LOWER_BATCH);
        rc = sc_bert_forward_layers(m, ids + b->off[u], b->len + u, n, b->first, err);
        if (!rc)
            memcpy(b->x0 + b->off[u] * C, m->a.x, (size_t)(b->off[u + n] - b->off[u]) * C * sizeof(float));
    }
    sc_free(ids);
    if (!rc) {
        sc_info("MSD LoRA: %lld texts (%lld tokens) through the frozen layers 0..%d of %s in %.1f s; layers %d..%d "
                "adapted", (long long)U, (long long)N, b->first - 1, b->enc.name, sc_now() - t0, b->first, L - 1);
        if (cache_path) rc = base_write(b, cache_path, th, err);
    }
    if (rc) {
        sc_msd_lora_base_free(b);
        return sc_fail_prefix(err, "MSD LoRA: ");
    }
    return SC_OK;
}

/* ---- the training state ---- */

void sc_msd_lora_free(sc_msd_lora *l) {
    if (!l) return;
    sc_bert_top_free(&l->top);
    void *bufs[] = {l->w, l->g, l->vec, l->stamp, l->grad, l->touched, l->is_touched, l->xin, l->dout, l->todo};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) sc_free(bufs[i]);
    sc_free(l);
}

int sc_msd_lora_create(sc_msd_lora **out, const sc_msd_lora_base *base, int rank, uint64_t seed, int n_threads,
                       sc_error *err) {
    *out = NULL;
    const sc_bert_config *c = &bert_of(base)->cfg;
    if (rank < 1 || rank > c->hidden)
        return sc_fail(err, SC_EINVAL, "--msd-lora-rank %d: must be in [1, %d] (the encoder's width)", rank, c->hidden);
    sc_msd_lora *l = sc_calloc(1, sizeof *l);
    if (!l) return sc_fail(err, SC_ENOMEM, "out of memory");
    l->base = base;
    l->S = c->hidden;
    l->n_threads = n_threads > 0 ? n_threads : sc_default_threads();
    sc_lora *lo = &l->lo;
    lo->rank = rank;
    lo->first = base->first;
    lo->n = c->layers - base->first;
    lo->scale = SC_MSD_LORA_SCALE;
    for (int i = 0; i < lo->n; i++)
        for (int p = 0; p < SC_LORA_PROJ; p++) {
            int K, D;
            sc_lora_proj_dims(c, p, &K, &D);
            l->n_weights += (int64_t)rank * (K + D);
        }
    const int64_t U = base->U, S = l->S;
    const int64_t cap = CHUNK_TOKENS > base->max_len ? CHUNK_TOKENS : base->max_len;
    l->w = sc_calloc((size_t)l->n_weights, sizeof(float));
    l->g = sc_calloc((size_t)l->n_weights, sizeof(float));
    l->vec = sc_malloc((size_t)(U + 1) * S * sizeof(float));
    l->stamp = sc_calloc((size_t)(U + 1), sizeof *l->stamp);
    l->grad = sc_malloc((size_t)(U + 1) * S * sizeof(float));
    l->touched = sc_malloc((size_t)(U + 1) * sizeof *l->touched);
    l->is_touched = sc_calloc((size_t)(U + 1), 1);
    l->todo = sc_malloc((size_t)(U + 1) * sizeof *l->todo);
    l->xin = sc_aligned_alloc((size_t)cap * S * sizeof(float));
    l->dout = sc_aligned_alloc((size_t)cap * S * sizeof(float));
    int rc = SC_OK;
    if (!l->w || !l->g || !l->vec || !l->stamp || !l->grad || !l->touched || !l->is_touched || !l->todo || !l->xin ||
        !l->dout)
        rc = sc_fail(err, SC_ENOMEM, "out of memory for LoRA on %lld texts", (long long)U);
    if (!rc) rc = sc_bert_top_reserve(&l->top, c, lo, cap, (int)cap, base->max_len > 0 ? base->max_len : 1,
                                      l->n_threads, err);
    if (rc) {
        sc_msd_lora_free(l);
        return rc;
    }
    /* A uniform in +-1/sqrt(K) (PyTorch's Linear init, as PEFT starts A), B zero */
    sc_rng rng;
    sc_rng_seed(&rng, seed);
    float *w = l->w, *g = l->g;
    for (int i = 0; i < lo->n; i++)
        for (int p = 0; p < SC_LORA_PROJ; p++) {
            int K, D;
            sc_lora_proj_dims(c, p, &K, &D);
            float bound = 1.0f / sqrtf((float)K);
            sc_param *pa = &l->params[l->n_params++], *pb = &l->params[l->n_params++];
            snprintf(pa->name, sizeof pa->name, "lora.%d.%s.A", lo->first + i, SC_LORA_PROJ_NAME[p]);
            snprintf(pb->name, sizeof pb->name, "lora.%d.%s.B", lo->first + i, SC_LORA_PROJ_NAME[p]);
            pa->data = lo->A[i][p] = w;
            pa->grad = lo->dA[i][p] = g;
            pa->size = (int64_t)rank * K;
            pa->rows = rank;
            pa->cols = K;
            for (int64_t k = 0; k < pa->size; k++) w[k] = (float)(2.0 * sc_rng_uniform(&rng) - 1.0) * bound;
            w += pa->size;
            g += pa->size;
            pb->data = lo->B[i][p] = w;
            pb->grad = lo->dB[i][p] = g;
            pb->size = (int64_t)D * rank;
            pb->rows = D;
            pb->cols = rank;
            w += pb->size;
            g += pb->size;
        }
    l->version = 1;
    *out = l;
    return SC_OK;
}

void sc_msd_lora_changed(sc_msd_lora *l) { l->version++; }

/* The adapted layers over texts list[0..n) in chunks; each chunk calls
 * done(l, its texts, their lengths, count) after its forward. */
typedef int (*chunk_fn)(sc_msd_lora *l, const int32_t *u, const int *len, int n, sc_error *err);

static int for_chunks(sc_msd_lora *l, const int32_t *list, int64_t n, chunk_fn done, sc_error *err) {
    const sc_msd_lora_base *b = l->base;
    const sc_bert *m = bert_of(b);
    const int C = l->S;
    const int64_t cap = l->top.cap;
    int lens[CHUNK_TOKENS];
    int rc = SC_OK;
    for (int64_t s = 0; s < n && !rc;) {
        int k = 0;
        int64_t tok = 0;
        /* as many texts as fit (at least one; cap >= the longest text) */
        while (s + k < n && k < CHUNK_TOKENS && tok + b->len[list[s + k]] <= cap) {
            int32_t u = list[s + k];
            memcpy(l->xin + tok * C, b->x0 + b->off[u] * C, (size_t)b->len[u] * C * sizeof(float));
            lens[k++] = b->len[u];
            tok += b->len[u];
        }
        rc = sc_bert_top_forward(m, &l->lo, l->xin, lens, k, &l->top, err);
        if (!rc) rc = done(l, list + s, lens, k, err);
        s += k;
    }
    return rc;
}

static int pool_chunk(sc_msd_lora *l, const int32_t *u, const int *len, int n, sc_error *err) {
    for (int i = 0; i < n; i++)
        sc_pool_forward(l->vec + (int64_t)u[i] * l->S, l->top.out + l->top.off[i] * l->S, len[i], l->S,
                        l->base->pooling);
    return SC_OK;
}

/* Make vec current for texts u[0..n), or for texts 0..n-1 when u is NULL. */
static int refresh(sc_msd_lora *l, const int32_t *u, int64_t n, sc_error *err) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t t = u ? u[i] : (int32_t)i;
        if (t >= 0 && l->stamp[t] != l->version) {
            l->stamp[t] = l->version; /* listed once */
            l->todo[k++] = t;
        }
    }
    int rc = for_chunks(l, l->todo, k, pool_chunk, err);
    if (rc)
        for (int64_t i = 0; i < k; i++) l->stamp[l->todo[i]] = 0;
    return rc;
}

int sc_msd_lora_vectors(sc_msd_lora *l, const int32_t *u, int64_t n, sc_error *err) { return refresh(l, u, n, err); }

int sc_msd_lora_all_vectors(sc_msd_lora *l, sc_error *err) { return refresh(l, NULL, l->base->U, err); }

void sc_msd_lora_add_grad(sc_msd_lora *l, int32_t u, const float *g) {
    float *dst = l->grad + (int64_t)u * l->S;
    if (!l->is_touched[u]) {
        l->is_touched[u] = 1;
        l->touched[l->n_touched++] = u;
        memcpy(dst, g, (size_t)l->S * sizeof(float));
        return;
    }
    for (int c = 0; c < l->S; c++) dst[c] += g[c];
}

static int backward_chunk(sc_msd_lora *l, const int32_t *u, const int *len, int n, sc_error *err) {
    const int C = l->S;
    for (int i = 0; i < n; i++)
        sc_pool_backward(l->dout + l->top.off[i] * C, l->grad + (int64_t)u[i] * C, l->top.out + l->top.off[i] * C,
                         len[i], C, l->base->pooling);
    return sc_bert_top_backward(bert_of(l->base), &l->lo, &l->top, l->dout, len, n, err);
}

int sc_msd_lora_step(sc_msd_lora *l, sc_optim *opt, float lr, sc_error *err) {
    if (!l->n_touched) return SC_OK;
    memset(l->g, 0, (size_t)l->n_weights * sizeof(float));
    /* the forward is recomputed under the weights the vectors were made with (they have not changed) */
    int rc = for_chunks(l, l->touched, l->n_touched, backward_chunk, err);
    if (!rc) rc = sc_optim_step(opt, lr, err);
    for (int64_t i = 0; i < l->n_touched; i++) l->is_touched[l->touched[i]] = 0;
    l->n_touched = 0;
    l->version++;
    return rc;
}

/* ---- encoding new texts with the adapted encoder ---- */

int sc_msd_lora_encode(const sc_lora *lo, sc_encoder *enc, const char *const *texts, int n, float *out,
                       sc_error *err) {
    if (n <= 0) return SC_OK;
    sc_bert *m = sc_encoder_bert(enc);
    const int C = m->cfg.hidden;
    if (lo->first + lo->n != m->cfg.layers)
        return sc_fail(err, SC_EINVAL, "MSD LoRA: adapters for layers %d..%d, but the encoder has %d layers", lo->first,
                       lo->first + lo->n - 1, m->cfg.layers);
    int *len = sc_malloc((size_t)n * sizeof *len);
    int32_t *ids = NULL;
    int rc = len ? tokenize(enc, texts, n, &ids, len, err) : sc_fail(err, SC_ENOMEM, "out of memory");
    sc_bert_top top = {0};
    int64_t at = 0;
    for (int s = 0; s < n && !rc; s += LOWER_BATCH) {
        int k = n - s < LOWER_BATCH ? n - s : LOWER_BATCH, T = 1;
        int64_t N = 0;
        for (int i = 0; i < k; i++) {
            N += len[s + i];
            T = len[s + i] > T ? len[s + i] : T;
        }
        rc = sc_bert_top_reserve(&top, &m->cfg, lo, N, k, T, m->n_threads, err);
        if (!rc) rc = sc_bert_forward_layers(m, ids + at, len + s, k, lo->first, err);
        if (!rc) rc = sc_bert_top_forward(m, lo, m->a.x, len + s, k, &top, err);
        for (int i = 0; i < k && !rc; i++)
            sc_pool_forward(out + (int64_t)(s + i) * C, top.out + top.off[i] * C, len[s + i], C,
                            sc_encoder_pooling(enc));
        at += N;
    }
    sc_bert_top_free(&top);
    sc_free(ids);
    sc_free(len);
    return rc;
}
