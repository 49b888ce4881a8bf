/* The scorer: a loaded model bundle and a pool of scoring contexts.
 * Dimension letters: B rows of a call, C columns of a call. */
#include "serve/scorer.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
#include "train/modelfile.h"

#define SC_SCORER_MAX_CONTEXTS 256

/* One scoring context: a model with its own activations, a batch, logits. */
typedef struct scorer_ctx {
    sc_model *model;   /* ctx 0 borrows the bundle's network; the others own a copy */
    int owns_model;
    sc_batch batch;
    float *logits;     /* (batch_cap) */
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

/* Build a context into *c (the caller's, not yet in the pool); the first
 * borrows the bundle's network, the others copy its weights. */
static int ctx_init(sc_scorer *s, scorer_ctx *c, int first, sc_error *err) {
    int nf;
    const sc_field_info *fields = sc_schema_fields(s->bundle.schema, &nf);
    int rc = SC_OK;
    if (first) {
        c->model = s->net;
        c->owns_model = 0;
    } else {
        sc_model_config cfg = *sc_model_get_config(s->net);
        rc = sc_model_create(&c->model, &cfg, fields, nf, 0, err);
        if (!rc) c->owns_model = 1;
        if (!rc) rc = sc_model_copy_weights(c->model, s->net, err);
    }
    if (!rc) rc = sc_batch_alloc(&c->batch, fields, nf, s->batch_cap, err);
    if (!rc) {
        c->logits = sc_calloc((size_t)s->batch_cap, sizeof *c->logits);
        if (!c->logits) rc = sc_fail(err, SC_ENOMEM, "scorer: out of memory for %d logits", s->batch_cap);
    }
    if (rc) {
        if (c->owns_model) sc_model_free(c->model);
        sc_batch_free(&c->batch);
        sc_free(c->logits);
        memset(c, 0, sizeof *c);
    }
    return rc;
}

static void ctx_release(scorer_ctx *c) {
    if (c->owns_model) sc_model_free(c->model);
    sc_batch_free(&c->batch);
    sc_free(c->logits);
    memset(c, 0, sizeof *c);
}

/* Check a context out: a free one, else create one if the pool is not
 * full, else wait. */
static int ctx_acquire(sc_scorer *s, scorer_ctx **out, sc_error *err) {
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
            /* Create outside the lock: copying weights takes a while and the
             * other contexts stay usable meanwhile. */
            scorer_ctx made = {0};
            int rc = ctx_init(s, &made, fresh == 0, err);
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

int sc_scorer_score(sc_scorer *s, int n_rows, int n_cols, const char *const *col_names,
                    const char *const *cells, float *probs, sc_error *err) {
    if (!s) return sc_fail(err, SC_EINVAL, "score: the model is NULL");
    if (n_rows < 0 || n_cols < 0) return sc_fail(err, SC_EINVAL, "score: negative row or column count (%d, %d)", n_rows, n_cols);
    if (n_rows == 0) return SC_OK;
    if ((n_cols > 0 && (!col_names || !cells)) || !probs)
        return sc_fail(err, SC_EINVAL, "score: %s is NULL", !probs ? "scores" : !col_names ? "columns" : "cells");
    for (int c = 0; c < n_cols; c++)
        if (!col_names[c]) return sc_fail(err, SC_EINVAL, "score: column name %d is NULL", c);
    scorer_ctx *cx;
    int rc = ctx_acquire(s, &cx, err);
    if (rc) return rc;
    for (int r0 = 0; r0 < n_rows && !rc; r0 += s->batch_cap) {
        int B = n_rows - r0 < s->batch_cap ? n_rows - r0 : s->batch_cap;
        rc = sc_schema_encode(s->bundle.schema, B, n_cols, col_names,
                              n_cols ? cells + (size_t)r0 * n_cols : cells, &cx->batch, err);
        if (!rc) rc = sc_model_forward(cx->model, &cx->batch, 0, cx->logits, err);
        for (int i = 0; i < B && !rc; i++) probs[r0 + i] = sigmoid_stable(cx->logits[i]);
        if (rc) sc_fail_prefix(err, "rows %d..%d: ", r0, r0 + B - 1);
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
    int rc = sc_model_bundle_load(&s->bundle, path, s->threads, err);
    if (rc) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
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
    } else if (sc_model_get_config(s->net)->extra_dim > 0) {
        rc = sc_fail(err, SC_EINVAL,
                     "%s: network '%s' needs language-model vectors at request time and cannot be served; "
                     "serve the 'vanilla' network (the default for ELEC models)", path, name);
    }
    if (!rc) {
        s->ctx = sc_calloc((size_t)s->n_ctx, sizeof *s->ctx);
        if (!s->ctx) rc = sc_fail(err, SC_ENOMEM, "load: out of memory");
    }
    if (!rc) {
        /* The check: one row with every column missing must give a finite
         * probability, so a model that loads but produces NaN never serves. */
        float p = 0;
        rc = sc_scorer_score(s, 1, 0, NULL, NULL, &p, err);
        if (!rc && !isfinite(p))
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
    sc_model_bundle_free(&s->bundle);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    sc_free(s);
}

const sc_schema *sc_scorer_schema(const sc_scorer *s) { return s->bundle.schema; }
const char *const *sc_scorer_input_columns(const sc_scorer *s, int *n) {
    return sc_schema_input_columns(s->bundle.schema, n);
}
const char *sc_scorer_network(const sc_scorer *s) { return s->network; }
const char *sc_scorer_backbone(const sc_scorer *s) { return sc_backbone_name(sc_model_get_config(s->net)->backbone); }
const char *sc_scorer_method(const sc_scorer *s) { return s->bundle.method; }
const char *sc_scorer_path(const sc_scorer *s) { return s->path; }
const cJSON *sc_scorer_info(const sc_scorer *s) { return s->bundle.info; }
int sc_scorer_contexts(sc_scorer *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->created;
    pthread_mutex_unlock(&s->mu);
    return n;
}
