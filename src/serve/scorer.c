/* The scorer: a loaded model bundle and a pool of scoring contexts.
 * Dimension letters: B rows of a call, C columns of a call. */
#include "serve/scorer.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
#include "lm/textvec.h"
#include "train/modelfile.h"
#include "methods/msd/msd.h"

#define SC_SCORER_MAX_CONTEXTS 256

/* One scoring context: scratch only (the network's activations, a batch,
 * logits); every context reads the one copy of the weights in the bundle. */
typedef struct scorer_ctx {
    sc_infer_ws *ws;   /* activations for batch_cap rows */
    sc_batch batch;
    float *logits;     /* (batch_cap) */
    float *extra;      /* MSD: (batch_cap, K*D) semantic fields */
    float *newv;       /* MSD: (batch_cap, D) adapted vectors of new items */
    const float **ov;  /* MSD: (batch_cap) per-row item override */
    int state;         /* 0 not created, 1 free, 2 busy, 3 being created */
} scorer_ctx;

struct sc_scorer {
    sc_model_bundle bundle;
    sc_model *net;     /* the served network inside bundle (read-only after load) */
    char network[32];
    char path[4096];
    int batch_cap, threads;
    int n_ctx;         /* pool size */
    scorer_ctx *ctx;   /* (n_ctx) */
    int created;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* MSD: tables (lookups), and optionally the small encoder for new items */
    int is_msd;
    sc_msd_model msd;
    sc_textvec enc;
    int enc_open;
    pthread_mutex_t enc_mu; /* the encoder and the adaptor keep activations: one call at a time */
    uint64_t *newc_key;     /* (NEW_ITEM_SLOTS) under enc_mu: XXH3 of a new item's text | 1, 0 = empty */
    float *newc_vec;        /* (NEW_ITEM_SLOTS, D): its adapted vector */
    const char **cols;      /* input columns (+ item_text) */
    int n_cols;
    int64_t n_unknown, n_encoded; /* under mu */
};

char *sc_format_number(double v, char *buf) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, 32, "%.0f", v);
        if (!strcmp(buf, "-0")) strcpy(buf, "0");
        return buf;
    }
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, 32, "%.17g", v);
    return buf;
}

/* Build a context into *c (the caller's, not yet in the pool): scratch
 * only, the weights are the bundle's (read-only, shared). */
static int ctx_init(sc_scorer *s, scorer_ctx *c, int cap, sc_error *err) {
    int nf;
    const sc_field_info *fields = sc_schema_fields(s->bundle.schema, &nf);
    /* activations for cap rows; a larger call grows them (at most batch_cap
     * rows), so a context made on demand costs what its calls need */
    int rc = sc_infer_ws_create(&c->ws, s->net, cap, err);
    if (!rc) rc = sc_batch_alloc(&c->batch, fields, nf, s->batch_cap, err);
    if (!rc) {
        c->logits = sc_calloc((size_t)s->batch_cap, sizeof *c->logits);
        if (!c->logits) rc = sc_fail(err, SC_ENOMEM, "scorer: out of memory for %d logits", s->batch_cap);
    }
    if (!rc && s->is_msd && s->msd.K) {
        c->extra = sc_malloc((size_t)s->batch_cap * s->msd.K * s->msd.D * sizeof(float));
        c->newv = sc_malloc((size_t)s->batch_cap * s->msd.D * sizeof(float));
        c->ov = sc_malloc((size_t)s->batch_cap * sizeof *c->ov);
        if (!c->extra || !c->newv || !c->ov) rc = sc_fail(err, SC_ENOMEM, "scorer: out of memory for MSD fields");
    }
    if (rc) {
        sc_infer_ws_free(c->ws);
        sc_batch_free(&c->batch);
        sc_free(c->logits);
        sc_free(c->extra);
        sc_free(c->newv);
        sc_free(c->ov);
        memset(c, 0, sizeof *c);
    }
    return rc;
}

static void ctx_release(scorer_ctx *c) {
    sc_infer_ws_free(c->ws);
    sc_batch_free(&c->batch);
    sc_free(c->logits);
    sc_free(c->extra);
    sc_free(c->newv);
    sc_free(c->ov);
    memset(c, 0, sizeof *c);
}

/* Check a context out: a free one, else create one (activations for cap
 * rows to start with) if the pool is not full, else wait. */
static int ctx_acquire(sc_scorer *s, scorer_ctx **out, int cap, sc_error *err) {
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int fresh = -1;
        for (int i = 0; i < s->n_ctx; i++) {
            if (s->ctx[i].state == 1) {
                s->ctx[i].state = 2;
                pthread_mutex_unlock(&s->mu);
                *out = &s->ctx[i];
                return SC_OK;
            }
            if (s->ctx[i].state == 0 && fresh < 0) fresh = i;
        }
        if (fresh >= 0) {
            s->ctx[fresh].state = 3;
            pthread_mutex_unlock(&s->mu);
            /* Create outside the lock: the other contexts stay usable meanwhile. */
            scorer_ctx made = {0};
            int rc = ctx_init(s, &made, cap, err);
            pthread_mutex_lock(&s->mu);
            if (rc) {
                s->ctx[fresh].state = 0;
                pthread_cond_signal(&s->cv);
                pthread_mutex_unlock(&s->mu);
                return rc;
            }
            made.state = 2;
            s->ctx[fresh] = made;
            s->created++;
            pthread_mutex_unlock(&s->mu);
            *out = &s->ctx[fresh];
            return SC_OK;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static void ctx_give_back(sc_scorer *s, scorer_ctx *c) {
    pthread_mutex_lock(&s->mu);
    c->state = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* In double, as `semctr predict`, so both give the same float. */
static float sigmoid_stable(float z) {
    return (float)(z >= 0 ? 1 / (1 + exp(-(double)z)) : exp((double)z) / (1 + exp((double)z)));
}

/* New items' adapted vectors are remembered by the hash of their text in a
 * 4-way set-associative table (a full set evicts one of its entries, chosen
 * by the hash): an item that is new to the model but recurs across requests
 * is encoded once, not on every request (a lookup instead of ~7 ms of
 * encoder per item). */
enum { NEW_ITEM_SLOTS = 4096, NEW_ITEM_WAYS = 4 };

/* the slot of h: where it is, else an empty one of its set, else a victim */
static size_t new_item_slot(const uint64_t *keys, uint64_t h, int *found) {
    size_t set = (size_t)(h % (NEW_ITEM_SLOTS / NEW_ITEM_WAYS)) * NEW_ITEM_WAYS, empty = SIZE_MAX;
    for (size_t w = 0; w < NEW_ITEM_WAYS; w++) {
        if (keys[set + w] == h) return *found = 1, set + w;
        if (!keys[set + w] && empty == SIZE_MAX) empty = set + w;
    }
    *found = 0;
    return empty != SIZE_MAX ? empty : set + (size_t)(h >> 32) % NEW_ITEM_WAYS;
}

/* Adapted vectors a[n, D] of texts[n] through the cache, encoding the misses
 * (x: scratch of n * (S + D) floats). Called under enc_mu; *n_enc gets the
 * number encoded. */
static int new_item_vectors(sc_scorer *s, const char **texts, int n, float *x, float *a, int *n_enc, sc_error *err) {
    const sc_msd_model *m = &s->msd;
    int D = m->D, k = 0;
    const char **miss = sc_malloc((size_t)n * sizeof *miss);
    int *at = sc_malloc((size_t)n * sizeof *at);
    if (!miss || !at) {
        sc_free(miss);
        sc_free(at);
        return sc_fail(err, SC_ENOMEM, "out of memory for %d new items", n);
    }
    for (int i = 0; i < n; i++) {
        uint64_t h = XXH3_64bits(texts[i], strlen(texts[i])) | 1;
        int found = 0;
        size_t slot = s->newc_key ? new_item_slot(s->newc_key, h, &found) : 0;
        if (found) {
            memcpy(a + (int64_t)i * D, s->newc_vec + slot * D, (size_t)D * sizeof(float));
        } else {
            miss[k] = texts[i];
            at[k++] = i;
        }
    }
    int rc = SC_OK;
    float *am = x + (int64_t)n * m->S; /* the misses' adapted vectors */
    if (k) rc = sc_msd_model_encode_texts(&s->msd, &s->enc, miss, k, x, err); /* with its LoRA adapters, if any */
    if (k && !rc) rc = sc_msd_model_adapt_items_level(&s->msd, 0, x, k, am, err);
    for (int j = 0; j < k && !rc; j++) {
        memcpy(a + (int64_t)at[j] * D, am + (int64_t)j * D, (size_t)D * sizeof(float));
        if (!s->newc_key) continue;
        uint64_t h = XXH3_64bits(miss[j], strlen(miss[j])) | 1;
        int found;
        size_t slot = new_item_slot(s->newc_key, h, &found);
        memcpy(s->newc_vec + slot * D, am + (int64_t)j * D, (size_t)D * sizeof(float));
        s->newc_key[slot] = h;
    }
    *n_enc = rc ? 0 : k;
    sc_free(miss);
    sc_free(at);
    return rc;
}

/* MSD: the semantic fields of the B rows in cx->batch (rows r0.. of the
 * call): table lookups; a row whose item is not in the table and has an
 * item_text cell is encoded with the small encoder through the stored
 * adaptor when an encoder is loaded (new_item_vectors). */
static int msd_fields(sc_scorer *s, scorer_ctx *cx, int r0, int B, int n_cols, const char *const *col_names,
                      const char *const *cells, sc_error *err) {
    const sc_msd_model *m = &s->msd;
    int rc = SC_OK, n_new = 0;
    int64_t unknown = 0;
    for (int i = 0; i < B; i++) cx->ov[i] = NULL;
    int tcol = -1;
    if (s->enc_open && (m->levels & SC_MSD_ITEM))
        for (int c = 0; c < n_cols; c++)
            if (!strcmp(col_names[c], SC_MSD_ITEM_TEXT_COLUMN)) tcol = c;
    if (tcol >= 0) {
        const int32_t *ids = cx->batch.ids[m->field[0]];
        const char **texts = NULL;
        int *rows = NULL;
        for (int i = 0; i < B; i++) {
            const char *t = cells[(size_t)(r0 + i) * n_cols + tcol];
            if (ids[i] < 2 && t && *t) n_new++;
        }
        if (n_new) {
            texts = sc_malloc((size_t)n_new * sizeof *texts);
            rows = sc_malloc((size_t)n_new * sizeof *rows);
            float *x = sc_malloc((size_t)n_new * (m->S + 2 * m->D) * sizeof(float));
            if (!texts || !rows || !x) rc = sc_fail(err, SC_ENOMEM, "out of memory for %d new items", n_new);
            int k = 0;
            for (int i = 0; i < B && !rc; i++) {
                const char *t = cells[(size_t)(r0 + i) * n_cols + tcol];
                if (ids[i] >= 2 || !t || !*t) continue;
                texts[k] = t;
                rows[k++] = i;
            }
            float *a = x ? x + (int64_t)n_new * (m->S + m->D) : NULL;
            int n_enc = 0;
            if (!rc) {
                pthread_mutex_lock(&s->enc_mu);
                rc = new_item_vectors(s, texts, n_new, x, a, &n_enc, err);
                pthread_mutex_unlock(&s->enc_mu);
            }
            for (k = 0; k < n_new && !rc; k++) {
                memcpy(cx->newv + (int64_t)rows[k] * m->D, a + (int64_t)k * m->D, (size_t)m->D * sizeof(float));
                cx->ov[rows[k]] = cx->newv + (int64_t)rows[k] * m->D;
            }
            sc_free(x);
            sc_free(texts);
            sc_free(rows);
            if (!rc) {
                pthread_mutex_lock(&s->mu);
                s->n_encoded += n_enc;
                pthread_mutex_unlock(&s->mu);
            }
        }
    }
    if (!rc) rc = sc_msd_model_extra(m, &cx->batch, cx->ov, NULL, cx->extra, &unknown, err);
    cx->batch.extra = cx->extra;
    if (unknown) {
        pthread_mutex_lock(&s->mu);
        s->n_unknown += unknown;
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

int sc_scorer_score(sc_scorer *s, int n_rows, int n_cols, const char *const *col_names,
                    const char *const *cells, float *probs, int *bad_row, sc_error *err) {
    if (bad_row) *bad_row = -1;
    if (!s) return sc_fail(err, SC_EINVAL, "score: the model is NULL");
    if (n_rows < 0 || n_cols < 0) return sc_fail(err, SC_EINVAL, "score: negative row or column count (%d, %d)", n_rows, n_cols);
    if (n_rows == 0) return SC_OK;
    if ((n_cols > 0 && (!col_names || !cells)) || !probs)
        return sc_fail(err, SC_EINVAL, "score: %s is NULL", !probs ? "scores" : !col_names ? "columns" : "cells");
    for (int c = 0; c < n_cols; c++)
        if (!col_names[c]) return sc_fail(err, SC_EINVAL, "score: column name %d is NULL", c);
    scorer_ctx *cx;
    int rc = ctx_acquire(s, &cx, 1, err);
    if (rc) return rc;
    for (int r0 = 0; r0 < n_rows && !rc; r0 += s->batch_cap) {
        int B = n_rows - r0 < s->batch_cap ? n_rows - r0 : s->batch_cap;
        rc = sc_schema_encode(s->bundle.schema, B, n_cols, col_names,
                              n_cols ? cells + (size_t)r0 * n_cols : cells, &cx->batch, err);
        if (!rc && s->is_msd && s->msd.K) rc = msd_fields(s, cx, r0, B, n_cols, col_names, cells, err);
        if (!rc) rc = sc_model_infer(s->net, cx->ws, &cx->batch, cx->logits, err);
        if (rc) sc_fail_prefix(err, "rows %d..%d: ", r0, r0 + B - 1);
        for (int i = 0; i < B && !rc; i++) {
            probs[r0 + i] = sigmoid_stable(cx->logits[i]);
            /* a NaN or infinite logit is never answered as a probability */
            if (!isfinite(cx->logits[i])) {
                if (bad_row) *bad_row = r0 + i;
                rc = sc_fail(err, SC_EINVAL,
                             "row %d: the network's score is not a number (logit %g): its weights, or a value of "
                             "this row it overflows on", r0 + i, (double)cx->logits[i]);
            }
        }
    }
    ctx_give_back(s, cx);
    return rc;
}

int sc_scorer_load(sc_scorer **out, const char *path, const sc_scorer_options *o, sc_error *err) {
    *out = NULL;
    sc_scorer_options def = {0};
    if (!o) o = &def;
    if (!path) return sc_fail(err, SC_EINVAL, "load: the path is NULL");
    if (o->max_contexts < 0 || o->max_contexts > SC_SCORER_MAX_CONTEXTS)
        return sc_fail(err, SC_EINVAL, "load: max_concurrency %d not in [0, %d]", o->max_contexts, SC_SCORER_MAX_CONTEXTS);
    if (o->batch_cap < 0 || o->batch_cap > (1 << 20))
        return sc_fail(err, SC_EINVAL, "load: max_batch_rows %d not in [0, %d]", o->batch_cap, 1 << 20);
    if (o->threads_per_call < 0 || o->threads_per_call > 256)
        return sc_fail(err, SC_EINVAL, "load: threads_per_call %d not in [0, 256]", o->threads_per_call);
    sc_scorer *s = sc_calloc(1, sizeof *s);
    if (!s) return sc_fail(err, SC_ENOMEM, "load: out of memory");
    s->threads = o->threads_per_call ? o->threads_per_call : 1;
    s->batch_cap = o->batch_cap ? o->batch_cap : 1024;
    s->n_ctx = o->max_contexts ? o->max_contexts : sc_default_threads();
    snprintf(s->path, sizeof s->path, "%s", path);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->enc_mu, NULL);
    int rc = sc_model_bundle_load(&s->bundle, path, s->threads, err);
    if (rc) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->enc_mu);
        sc_free(s);
        return rc;
    }
    const char *name = o->network;
    if (!name) name = sc_model_bundle_default_network(&s->bundle);
    snprintf(s->network, sizeof s->network, "%s", name);
    s->net = sc_model_bundle_network(&s->bundle, name);
    if (!s->net) {
        char names[256] = "";
        for (int i = 0; i < s->bundle.n_networks; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", s->bundle.networks[i].name);
        rc = sc_fail(err, SC_ENOTFOUND, "%s: no network '%s' (it has: %s)", path, name, names);
    } else if (!strcmp(s->bundle.method, "msd")) {
        /* MSD: the semantic fields are lookups in the file's tables */
        rc = sc_msd_model_load(&s->msd, &s->bundle, err);
        s->is_msd = !rc;
        if (!rc && o->encoder && (s->msd.levels & SC_MSD_ITEM)) {
            rc = sc_textvec_open(&s->enc, o->encoder, s->threads, err);
            s->enc_open = !rc;
            if (!rc) sc_textvec_set_normalize(&s->enc, 0); /* as in training */
            if (!rc && s->enc.dim != s->msd.S)
                rc = sc_fail(err, SC_EINVAL, "%s: the encoder %s gives %d-d vectors, the model's adaptor takes %d (%s)",
                             path, o->encoder, s->enc.dim, s->msd.S, s->msd.encoder);
            /* SEMCTR_NEW_ITEM_CACHE=0 turns the cache off (to measure the encoder) */
            const char *nc = getenv("SEMCTR_NEW_ITEM_CACHE");
            if (!rc && !(nc && !strcmp(nc, "0")) && (!(s->newc_key = sc_calloc(NEW_ITEM_SLOTS, sizeof *s->newc_key)) ||
                        !(s->newc_vec = sc_malloc((size_t)NEW_ITEM_SLOTS * s->msd.D * sizeof(float)))))
                rc = sc_fail(err, SC_ENOMEM, "%s: out of memory for the new-item cache", path);
        }
    } else if (sc_model_get_config(s->net)->extra_dim > 0) {
        rc = sc_fail(err, SC_EINVAL,
                     "%s: network '%s' needs language-model vectors at request time and cannot be served; "
                     "serve the 'vanilla' network (the default for ELEC models)", path, name);
    }
    if (!rc) {
        int nc;
        const char *const *sc = sc_schema_input_columns(s->bundle.schema, &nc);
        s->cols = sc_malloc((size_t)(nc + 1) * sizeof *s->cols);
        if (!s->cols) rc = sc_fail(err, SC_ENOMEM, "load: out of memory");
        for (int i = 0; i < nc && !rc; i++) s->cols[i] = sc[i];
        s->n_cols = nc;
        if (!rc && s->is_msd && (s->msd.levels & SC_MSD_ITEM)) s->cols[s->n_cols++] = SC_MSD_ITEM_TEXT_COLUMN;
    }
    /* the dense layers packed for the inference kernel, once: every context
     * reads this one copy */
    if (!rc) rc = sc_model_pack(s->net, o->bf16, err);
    if (rc) sc_fail_prefix(err, "%s: ", path);
    if (!rc) {
        s->ctx = sc_calloc((size_t)s->n_ctx, sizeof *s->ctx);
        if (!s->ctx) rc = sc_fail(err, SC_ENOMEM, "load: out of memory");
    }
    if (!rc) {
        /* The check: one row with every column missing must give a finite
         * probability, so a model that loads but produces NaN never serves. */
        float p = 0;
        int bad;
        rc = sc_scorer_score(s, 1, 0, NULL, NULL, &p, &bad, err);
        if (rc && bad == 0)
            rc = sc_fail(err, SC_EFORMAT, "%s: network '%s' scores a row of missing values as %g: bad weights", path, name, p);
        if (rc) sc_fail_prefix(err, "checking %s: ", path);
    }
    if (rc) {
        sc_scorer_free(s);
        return rc;
    }
    *out = s;
    return SC_OK;
}

void sc_scorer_free(sc_scorer *s) {
    if (!s) return;
    if (s->ctx)
        for (int i = 0; i < s->n_ctx; i++) ctx_release(&s->ctx[i]);
    sc_free(s->ctx);
    sc_free(s->cols);
    if (s->enc_open) sc_textvec_close(&s->enc);
    sc_free(s->newc_key);
    sc_free(s->newc_vec);
    if (s->is_msd) sc_msd_model_free(&s->msd);
    sc_model_bundle_free(&s->bundle);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->enc_mu);
    sc_free(s);
}

const sc_schema *sc_scorer_schema(const sc_scorer *s) { return s->bundle.schema; }
const char *const *sc_scorer_input_columns(const sc_scorer *s, int *n) {
    *n = s->n_cols;
    return s->cols;
}
void sc_scorer_msd_counts(sc_scorer *s, int64_t *unknown, int64_t *encoded) {
    pthread_mutex_lock(&s->mu);
    *unknown = s->n_unknown;
    *encoded = s->n_encoded;
    pthread_mutex_unlock(&s->mu);
}
const char *sc_scorer_network(const sc_scorer *s) { return s->network; }
const char *sc_scorer_backbone(const sc_scorer *s) { return sc_backbone_name(sc_model_get_config(s->net)->backbone); }
const char *sc_scorer_method(const sc_scorer *s) { return s->bundle.method; }
const char *sc_scorer_path(const sc_scorer *s) { return s->path; }
const cJSON *sc_scorer_info(const sc_scorer *s) { return s->bundle.info; }
int sc_scorer_reserve(sc_scorer *s, int n, sc_error *err) {
    if (n > s->n_ctx) n = s->n_ctx;
    scorer_ctx *got[SC_SCORER_MAX_CONTEXTS];
    int k = 0, rc = SC_OK;
    /* check n contexts out at once (creating the missing ones), then give them back */
    while (k < n && !rc) {
        pthread_mutex_lock(&s->mu);
        int n_free = 0;
        for (int i = 0; i < s->n_ctx; i++) n_free += s->ctx[i].state == 0 || s->ctx[i].state == 1;
        pthread_mutex_unlock(&s->mu);
        if (!n_free) break; /* the rest are busy with callers: they exist */
        rc = ctx_acquire(s, &got[k], s->batch_cap, err);
        if (!rc) k++;
    }
    for (int i = 0; i < k; i++) ctx_give_back(s, got[i]);
    return rc;
}

int64_t sc_scorer_weight_bytes(const sc_scorer *s) { return sc_model_weight_bytes(s->net); }

int sc_scorer_contexts(sc_scorer *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->created;
    pthread_mutex_unlock(&s->mu);
    return n;
}
