#include "methods/elec/elec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/mlp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "train/guard.h"

void sc_elec_config_default(sc_elec_config *c) {
    c->alpha = 1.0f;
    c->beta = 1.0f;
    c->temperature = 1.0f;
    c->score_loss = SC_KD_BCE;
    c->schedule = SC_ELEC_JOINT;
    c->adapter_hidden = 256;
    c->repr_dim = 64;
    c->adapter_epochs = 10;
    c->adapter_lr = 1e-3f;
    c->adapter_tune = 0;
    c->folds = 5;
    c->guard = 1;
    c->item_field = "item_id";
    c->cold_max = 5;
}

enum phase { PHASE_ADAPTER, PHASE_JOINT, PHASE_GAIN, PHASE_VANILLA };
static const char *PHASE_NAMES[] = {"adapter", "joint", "gain", "vanilla"};

typedef struct elec_ctx {
    const sc_elec_config *e;
    const sc_train_config *t;
    const sc_schema *schema;
    const sc_dataset *split[3];
    const sc_elec_vectors *vec;
    int d, R, cap; /* LLM vector size, representation size, batch capacity */
    int phase;
    /* adapted LLM: transformation MLP (d -> hidden -> R) and prediction layer (R -> 1) */
    sc_mlp *transform, *head;
    sc_param adapter_params[4 * SC_MAX_LAYERS];
    int n_adapter_params;
    sc_optim *opt_adapter, *opt_transform; /* the latter: transformation MLP alone, when tuned with the gain network */
    float *adapter_best; /* snapshot of all adapter weights */
    float *adapter_init; /* the adapter's initial weights: every fold's adapter starts from them */
    int64_t adapter_size;
    sc_train_config acfg; /* the adapter's training settings */
    /* cross-fitting: fold_of[r] (N_train) is row r's fold; while an adapter is
     * fitted, rows of fold `fold` are held out (-1: none) */
    uint8_t *fold_of;
    int fold;
    int64_t *kept;   /* (cap) the rows of a batch the adapter trains on */
    float *kept_lab; /* (cap) their labels */
    float *repr[3]; /* (N_s, R) the transformation output of every row */
    /* the pseudo-siamese pair; proj maps the vanilla representation to the gain one when sizes differ */
    sc_model *gain, *van, *gain_best, *van_best;
    sc_model *base;   /* the plain backbone trained alone (the guard's reference), or NULL */
    float *base_prob; /* (N_valid) its validation probabilities, scored once */
    sc_mlp *proj;
    sc_optim *opt_gain, *opt_van, *opt_proj;
    int Hg, Hv;
    /* per-batch buffers */
    float *x, *extra, *zg, *zv, *dzg, *dzv, *dhv, *dp, *dextra;
    const char *out_path;
    cJSON *info;
} elec_ctx;

/* x (n, d) = the LLM vectors of rows of split s. */
static void gather_llm(const sc_elec_vectors *v, const int64_t *rows, int n, float *x) {
    int pd = v->part_dim, d = v->n_parts * pd;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < v->n_parts; p++) {
            int32_t k = v->index[p][rows[i]];
            float *dst = x + (int64_t)i * d + p * pd;
            if (k < 0) memset(dst, 0, (size_t)pd * sizeof(float));
            else memcpy(dst, v->table[p] + (int64_t)k * pd, (size_t)pd * sizeof(float));
        }
}

static void gather_repr(const float *repr, int R, const int64_t *rows, int n, float *out) {
    for (int i = 0; i < n; i++) memcpy(out + (int64_t)i * R, repr + rows[i] * R, (size_t)R * sizeof(float));
}

static float sigmoid(float z) { return z >= 0 ? 1 / (1 + expf(-z)) : expf(z) / (1 + expf(z)); }

/* ---- adapted LLM ---- */

static int adapter_forward(elec_ctx *c, const float *x, int n, const float **r, const float **z, sc_error *err) {
    int rc = sc_mlp_forward(c->transform, x, n, r, err);
    if (!rc) rc = sc_mlp_forward(c->head, *r, n, z, err);
    return rc;
}

/* Probabilities (N) of the adapted LLM on split s; also fills repr[s] when
 * keep_repr, for the rows of fold `only_fold` of the training split (-1: all rows). */
static int adapter_predict_fold(elec_ctx *c, int s, float *prob, int keep_repr, int only_fold, sc_error *err) {
    const sc_dataset *ds = c->split[s];
    int64_t rows[256];
    int rc = SC_OK;
    for (int64_t start = 0; start < ds->n_rows && !rc; start += 256) {
        int n = (int)(ds->n_rows - start < 256 ? ds->n_rows - start : 256);
        for (int i = 0; i < n; i++) rows[i] = start + i;
        gather_llm(&c->vec[s], rows, n, c->x);
        const float *r, *z;
        rc = adapter_forward(c, c->x, n, &r, &z, err);
        for (int i = 0; i < n && !rc; i++) {
            if (only_fold >= 0 && c->fold_of[start + i] != only_fold) continue;
            if (prob) prob[start + i] = sigmoid(z[i]);
            if (keep_repr) memcpy(c->repr[s] + (start + i) * c->R, r + (int64_t)i * c->R, (size_t)c->R * sizeof(float));
        }
    }
    return rc;
}

static int adapter_predict(elec_ctx *c, int s, float *prob, int keep_repr, sc_error *err) {
    return adapter_predict_fold(c, s, prob, keep_repr, -1, err);
}

static int eval_adapter(elec_ctx *c, int s, sc_metrics *m, sc_error *err) {
    const sc_dataset *ds = c->split[s];
    float *prob = sc_malloc((size_t)ds->n_rows * sizeof *prob);
    if (!prob) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = adapter_predict(c, s, prob, 0, err);
    if (!rc) rc = sc_metrics_compute(ds->label, prob, ds->group, ds->n_rows, m, err);
    sc_free(prob);
    return rc;
}

/* Copy all adapter weights into buf (restore = 0) or back from it. */
static void adapter_copy(elec_ctx *c, float *buf, int restore) {
    int64_t off = 0;
    for (int k = 0; k < c->n_adapter_params; k++) {
        sc_param *p = &c->adapter_params[k];
        float *dst = restore ? p->data : buf + off, *src = restore ? buf + off : p->data;
        memcpy(dst, src, (size_t)p->size * sizeof(float));
        off += p->size;
    }
}

/* Metrics of a network on split s; the gain network reads repr[s]. */
static int eval_net(elec_ctx *c, sc_model *m, int s, int with_repr, sc_metrics *out, sc_error *err) {
    return sc_evaluate(m, c->split[s], with_repr ? c->repr[s] : NULL, c->cap, out, err);
}

/* ---- the fit task, one per phase ---- */

static int step(void *ctx, const sc_batch *b0, const int64_t *rows, float lr, double *loss, sc_error *err) {
    elec_ctx *c = ctx;
    const sc_elec_config *e = c->e;
    int n = b0->n, rc;
    if (c->phase == PHASE_ADAPTER) {
        int m = 0; /* the rows outside the held-out fold */
        for (int i = 0; i < n; i++)
            if (c->fold < 0 || c->fold_of[rows[i]] != c->fold) {
                c->kept[m] = rows[i];
                c->kept_lab[m++] = b0->label[i];
            }
        *loss = 0;
        if (!m) return SC_OK;
        gather_llm(&c->vec[0], c->kept, m, c->x);
        const float *r, *z;
        rc = adapter_forward(c, c->x, m, &r, &z, err);
        if (rc) return rc;
        *loss = sc_bce_logits_forward(z, c->kept_lab, m);
        sc_bce_logits_backward(c->dzg, z, c->kept_lab, m, 1.0f);
        memset(c->dp, 0, (size_t)m * c->R * sizeof(float));
        sc_mlp_backward(c->head, c->dzg, c->dp);
        sc_mlp_backward(c->transform, c->dp, NULL);
        return sc_optim_step(c->opt_adapter, lr, err);
    }
    sc_batch bg = *b0;
    int tune = c->e->adapter_tune && c->phase != PHASE_VANILLA;
    if (tune) {
        /* the representation comes from the live transformation MLP, which learns with the gain network */
        const float *r;
        gather_llm(&c->vec[0], rows, n, c->x);
        rc = sc_mlp_forward(c->transform, c->x, n, &r, err);
        if (rc) return rc;
        bg.extra = r;
    } else {
        gather_repr(c->repr[0], c->R, rows, n, c->extra);
        bg.extra = c->extra;
    }
    *loss = 0;
    if (c->phase == PHASE_JOINT || c->phase == PHASE_GAIN) {
        rc = sc_model_forward(c->gain, &bg, 1, c->zg, err);
        if (rc) return rc;
        *loss += sc_bce_logits_forward(c->zg, b0->label, n);
        sc_bce_logits_backward(c->dzg, c->zg, b0->label, n, 1.0f);
    } else {
        /* staged, second stage: the trained gain network is a fixed teacher */
        rc = sc_model_forward(c->gain, &bg, 0, c->zg, err);
        if (rc) return rc;
    }
    if (c->phase == PHASE_JOINT || c->phase == PHASE_VANILLA) {
        rc = sc_model_forward(c->van, b0, 1, c->zv, err);
        if (rc) return rc;
        *loss += sc_bce_logits_forward(c->zv, b0->label, n);
        sc_bce_logits_backward(c->dzv, c->zv, b0->label, n, 1.0f);
        if (e->alpha > 0)
            *loss += e->alpha * sc_kd_score(c->zv, c->zg, n, e->score_loss, e->temperature, e->alpha, c->dzv);
        const float *dhv = NULL;
        if (e->beta > 0 && c->Hv > 0 && c->Hg > 0) {
            int Hg, Hv;
            const float *hg = sc_model_hidden(c->gain, &Hg), *hv = sc_model_hidden(c->van, &Hv);
            memset(c->dhv, 0, (size_t)n * Hv * sizeof(float));
            if (c->proj) {
                const float *p;
                rc = sc_mlp_forward(c->proj, hv, n, &p, err);
                if (rc) return rc;
                memset(c->dp, 0, (size_t)n * Hg * sizeof(float));
                *loss += e->beta * sc_kd_repr(p, hg, n, Hg, e->beta, c->dp);
                sc_mlp_backward(c->proj, c->dp, c->dhv);
            } else {
                *loss += e->beta * sc_kd_repr(hv, hg, n, Hv, e->beta, c->dhv);
            }
            dhv = c->dhv;
        }
        rc = sc_model_backward(c->van, b0, c->dzv, dhv, NULL, err);
        if (!rc) rc = sc_optim_step(c->opt_van, lr, err);
        if (!rc && c->proj && dhv) rc = sc_optim_step(c->opt_proj, lr, err);
        if (rc) return rc;
    }
    if (c->phase == PHASE_JOINT || c->phase == PHASE_GAIN) {
        rc = sc_model_backward(c->gain, &bg, c->dzg, NULL, tune ? c->dextra : NULL, err);
        if (!rc) rc = sc_optim_step(c->opt_gain, lr, err);
        if (!rc && tune) {
            sc_mlp_backward(c->transform, c->dextra, NULL);
            rc = sc_optim_step(c->opt_transform, lr, err);
        }
    }
    return rc;
}

static int validate(void *ctx, sc_metrics *m, sc_error *err) {
    elec_ctx *c = ctx;
    if (c->phase == PHASE_ADAPTER) return eval_adapter(c, 1, m, err);
    if (c->e->adapter_tune && c->phase != PHASE_VANILLA) {
        int rc = adapter_predict(c, 1, NULL, 1, err);
        if (rc) return rc;
    }
    if (c->phase == PHASE_GAIN) return eval_net(c, c->gain, 1, 1, m, err);
    if (c->phase == PHASE_JOINT && sc_log_level >= SC_LOG_INFO) {
        sc_metrics g;
        int rc = eval_net(c, c->gain, 1, 1, &g, err);
        if (rc) return rc;
        sc_info("  gain network: valid AUC %.5f", g.auc);
    }
    return eval_net(c, c->van, 1, 0, m, err);
}

/* Write the model file: gain, vanilla, and the adapter's weights. */
static int write_model(elec_ctx *c, sc_error *err) {
    sc_model_bundle b = {0};
    b.schema = (sc_schema *)c->schema;
    snprintf(b.method, sizeof b.method, "elec");
    b.n_networks = 2;
    snprintf(b.networks[0].name, sizeof b.networks[0].name, "gain");
    b.networks[0].model = c->gain_best;
    snprintf(b.networks[1].name, sizeof b.networks[1].name, "vanilla");
    b.networks[1].model = c->van_best;
    b.info = c->info;
    sc_container_writer w;
    sc_container_writer_init(&w);
    cJSON *h = cJSON_CreateObject();
    uint8_t *schema_buf = NULL;
    int rc = sc_model_bundle_stage(&b, &w, h, &schema_buf, err);
    int64_t off = 0;
    for (int k = 0; k < c->n_adapter_params && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "adapter/%s", c->adapter_params[k].name);
        rc = sc_container_add(&w, name, 1, c->adapter_best + off, (uint64_t)c->adapter_params[k].size * 4, err);
        off += c->adapter_params[k].size;
    }
    if (!rc) rc = sc_container_write(&w, c->out_path, h, err);
    cJSON_Delete(h);
    sc_free(schema_buf);
    sc_container_writer_free(&w);
    return rc;
}

static int save_best(void *ctx, sc_error *err) {
    elec_ctx *c = ctx;
    if (c->phase == PHASE_ADAPTER) {
        adapter_copy(c, c->adapter_best, 0);
        return SC_OK;
    }
    int rc = SC_OK;
    if (c->e->adapter_tune && c->phase != PHASE_VANILLA) adapter_copy(c, c->adapter_best, 0);
    if (c->phase != PHASE_VANILLA) rc = sc_model_copy_weights(c->gain_best, c->gain, err);
    if (!rc && c->phase != PHASE_GAIN) rc = sc_model_copy_weights(c->van_best, c->van, err);
    if (!rc) rc = write_model(c, err);
    return rc;
}

static int restore_best(void *ctx, int from_file, sc_error *err) {
    elec_ctx *c = ctx;
    if (c->phase == PHASE_ADAPTER) {
        adapter_copy(c, c->adapter_best, 1);
        return SC_OK;
    }
    int rc = SC_OK;
    if (from_file) {
        sc_model_bundle prev;
        rc = sc_model_bundle_load(&prev, c->out_path, c->t->n_threads, err);
        if (rc) return sc_fail_prefix(err, "reloading the best model: ");
        sc_model *g = sc_model_bundle_network(&prev, "gain"), *v = sc_model_bundle_network(&prev, "vanilla");
        rc = g && v ? sc_model_copy_weights(c->gain_best, g, err) : sc_fail(err, SC_EFORMAT, "%s: not an ELEC model", c->out_path);
        if (!rc) rc = sc_model_copy_weights(c->van_best, v, err);
        sc_model_bundle_free(&prev);
        if (rc) return rc;
    }
    if (c->e->adapter_tune && c->phase != PHASE_VANILLA) adapter_copy(c, c->adapter_best, 1);
    if (c->phase != PHASE_VANILLA) rc = sc_model_copy_weights(c->gain, c->gain_best, err);
    if (!rc && c->phase != PHASE_GAIN) rc = sc_model_copy_weights(c->van, c->van_best, err);
    return rc;
}

static int stage_checkpoint(void *ctx, sc_container_writer *w, cJSON *header, sc_error *err) {
    elec_ctx *c = ctx;
    cJSON_AddStringToObject(header, "phase", PHASE_NAMES[c->phase]);
    int np, rc = sc_checkpoint_stage(w, "adapter", c->adapter_params, c->n_adapter_params, NULL, err);
    sc_param *p = sc_model_params(c->gain, &np);
    if (!rc) rc = sc_checkpoint_stage(w, "gain", p, np, c->phase == PHASE_VANILLA ? NULL : c->opt_gain, err);
    p = sc_model_params(c->van, &np);
    if (!rc) rc = sc_checkpoint_stage(w, "vanilla", p, np, c->opt_van, err);
    if (!rc && c->proj) {
        p = sc_mlp_params(c->proj, &np);
        rc = sc_checkpoint_stage(w, "proj", p, np, c->opt_proj, err);
    }
    return rc;
}

static int load_checkpoint(void *ctx, const sc_container *ck, sc_error *err) {
    elec_ctx *c = ctx;
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(ck->header, "phase");
    if (!cJSON_IsString(ph) || strcmp(ph->valuestring, PHASE_NAMES[c->phase]))
        return sc_fail(err, SC_EFORMAT, "%s: checkpoint of another ELEC stage ('%s', expected '%s')", ck->path,
                       cJSON_IsString(ph) ? ph->valuestring : "?", PHASE_NAMES[c->phase]);
    int np, rc;
    sc_param *p = sc_model_params(c->gain, &np);
    rc = sc_checkpoint_load(ck, "gain", p, np, c->phase == PHASE_VANILLA ? NULL : c->opt_gain, err);
    p = sc_model_params(c->van, &np);
    if (!rc) rc = sc_checkpoint_load(ck, "vanilla", p, np, c->opt_van, err);
    if (!rc && c->proj) {
        p = sc_mlp_params(c->proj, &np);
        rc = sc_checkpoint_load(ck, "proj", p, np, c->opt_proj, err);
    }
    return rc;
}

/* The adapter's weights from a checkpoint of the pair, so that a resumed run
 * does not retrain it (and gets the same representations). */
static int adapter_from_checkpoint(elec_ctx *c, const char *path, sc_error *err) {
    sc_container ck;
    int rc = sc_container_open(&ck, path, err);
    if (rc) return rc;
    rc = sc_checkpoint_load(&ck, "adapter", c->adapter_params, c->n_adapter_params, NULL, err);
    sc_container_close(&ck);
    if (!rc) adapter_copy(c, c->adapter_best, 0);
    return rc;
}

static void free_ctx(elec_ctx *c) {
    sc_mlp_free(c->transform);
    sc_mlp_free(c->head);
    sc_mlp_free(c->proj);
    if (c->opt_adapter) sc_optim_free(c->opt_adapter);
    if (c->opt_transform) sc_optim_free(c->opt_transform);
    if (c->opt_gain) sc_optim_free(c->opt_gain);
    if (c->opt_van) sc_optim_free(c->opt_van);
    if (c->opt_proj) sc_optim_free(c->opt_proj);
    sc_model *ms[5] = {c->gain, c->van, c->gain_best, c->van_best, c->base};
    for (int i = 0; i < 5; i++)
        if (ms[i]) sc_model_free(ms[i]);
    for (int s = 0; s < 3; s++) sc_free(c->repr[s]);
    sc_free(c->fold_of);
    sc_free(c->kept);
    sc_free(c->base_prob);
    float *bufs[] = {c->adapter_best, c->adapter_init, c->kept_lab, c->x, c->extra, c->zg, c->zv, c->dzg, c->dzv, c->dhv, c->dp, c->dextra};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) sc_free(bufs[i]);
}

/* Median time (ms) of scoring the first n rows of split s as one batch with
 * the vanilla network (gain = 0) or with adapter + gain network (gain = 1). */
static int time_scoring(elec_ctx *c, int s, int gain, double *ms, sc_error *err) {
    const sc_dataset *ds = c->split[s];
    int n = ds->n_rows < 1000 ? (int)ds->n_rows : 1000;
    sc_batch b;
    int rc = sc_batch_alloc(&b, ds->fields, ds->n_fields, n, err);
    if (rc) return rc;
    int64_t *rows = sc_malloc((size_t)n * sizeof *rows);
    double t[7];
    if (!rows) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) rows[i] = i;
    for (int k = 0; k < 7 && !rc; k++) {
        double t0 = sc_now();
        sc_batch_gather(&b, ds, rows, n);
        if (gain) {
            const float *r, *z;
            gather_llm(&c->vec[s], rows, n, c->x);
            rc = adapter_forward(c, c->x, n, &r, &z, err);
            b.extra = r;
            if (!rc) rc = sc_model_forward(c->gain, &b, 0, c->zg, err);
        } else {
            rc = sc_model_forward(c->van, &b, 0, c->zv, err);
        }
        t[k] = (sc_now() - t0) * 1000.0 * 1000.0 / n;
    }
    *ms = sc_median(t, 7);
    sc_free(rows);
    sc_batch_free(&b);
    return rc;
}

/* Fit the adapted LLM from its initial weights on the training rows outside
 * fold `fold` (-1: on all of them), early stopped on validation AUC. */
static int fit_adapter(elec_ctx *c, const sc_fit_task *task, int fold, sc_error *err) {
    adapter_copy(c, c->adapter_init, 1);
    if (c->opt_adapter) sc_optim_free(c->opt_adapter);
    c->opt_adapter = NULL;
    int rc = sc_train_optim_create(&c->opt_adapter, &c->acfg, c->adapter_params, c->n_adapter_params, err);
    if (rc) return rc;
    c->phase = PHASE_ADAPTER;
    c->fold = fold;
    sc_train_result res;
    rc = sc_fit(c->split[0], &c->acfg, task, &res, err);
    c->fold = -1;
    return rc;
}

/* Cross-fitting: the training rows fall into K folds of equal size (a
 * seeded permutation); each fold's representations come from an adapter
 * fitted on the other folds, all adapters starting from the same weights so
 * that their representations stay comparable. */
static int cross_fit(elec_ctx *c, const sc_fit_task *task, int K, sc_error *err) {
    int64_t N = c->split[0]->n_rows;
    c->fold_of = sc_malloc((size_t)N + 1);
    int64_t *perm = sc_malloc(((size_t)N + 1) * sizeof *perm);
    int rc = c->fold_of && perm ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory for the folds");
    if (!rc) {
        sc_rng r;
        sc_rng_seed(&r, c->t->seed + 31);
        for (int64_t i = 0; i < N; i++) perm[i] = i;
        sc_shuffle_i64(perm, N, &r);
        for (int64_t i = 0; i < N; i++) c->fold_of[perm[i]] = (uint8_t)(i % K);
    }
    sc_free(perm);
    for (int f = 0; f < K && !rc; f++) {
        sc_info("ELEC: cross-fitting the adapted LLM, fold %d/%d held out", f + 1, K);
        rc = fit_adapter(c, task, f, err);
        if (!rc) rc = adapter_predict_fold(c, 0, NULL, 1, f, err);
    }
    return rc;
}

/* The guard's reference: the plain backbone trained exactly as `semctr
 * train` trains it (same config, seed and loop), its file a temporary. */
static int train_base(elec_ctx *c, const sc_model_config *model_cfg, sc_error *err) {
    sc_model_config bc = *model_cfg;
    bc.extra_dim = 0;
    const sc_dataset *train = c->split[0];
    int rc = sc_model_create(&c->base, &bc, train->fields, train->n_fields, c->t->seed, err);
    if (rc) return rc;
    sc_train_config t = *c->t;
    t.ckpt_path = NULL;
    t.resume = 0;
    t.log_path = NULL;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.base.tmp", c->out_path);
    sc_info("ELEC guard: training the plain backbone, the student without a teacher");
    sc_train_result res;
    rc = sc_train(c->base, c->schema, train, c->split[1], &t, tmp, &res, err);
    remove(tmp);
    const sc_dataset *valid = c->split[1];
    if (!rc) c->base_prob = sc_malloc(((size_t)valid->n_rows + 1) * sizeof *c->base_prob);
    if (!rc && !c->base_prob) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    if (!rc) rc = sc_predict_dataset(c->base, valid, NULL, c->cap, c->base_prob, err);
    return rc;
}

/* The guard's verdict on network m (the gain network reads extra) against
 * the plain backbone, on validation. */
static int judge(elec_ctx *c, sc_model *m, const float *extra, sc_guard_verdict *v, sc_error *err) {
    const sc_dataset *ds = c->split[1];
    float *p = sc_malloc(((size_t)ds->n_rows + 1) * sizeof *p);
    int rc = p ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
    if (!rc) rc = sc_predict_dataset(m, ds, extra, c->cap, p, err);
    if (!rc) rc = sc_guard_compare(ds->label, p, c->base_prob, ds->n_rows, SC_GUARD_Z, v, err);
    sc_free(p);
    return rc;
}

static void verdict_json(cJSON *g, const char *key, const sc_guard_verdict *v) {
    cJSON *o = cJSON_AddObjectToObject(g, key);
    cJSON_AddNumberToObject(o, "valid_auc", v->auc_candidate);
    cJSON_AddNumberToObject(o, "base_valid_auc", v->auc_base);
    cJSON_AddNumberToObject(o, "diff", v->diff);
    cJSON_AddNumberToObject(o, "se", v->se);
    cJSON_AddBoolToObject(o, "pass", v->pass);
}

static void guard_json(cJSON *info, const sc_elec_config *e, int folds, int teacher_ok, const char *served, const char *reason,
                       const sc_guard_verdict *teacher, const sc_guard_verdict *vanilla /* NULL: not trained */) {
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(info, "elec");
    if (!sec) sec = cJSON_AddObjectToObject(info, "elec");
    cJSON_DeleteItemFromObject(sec, "guard");
    cJSON *g = cJSON_AddObjectToObject(sec, "guard");
    cJSON_AddBoolToObject(g, "enabled", e->guard);
    cJSON_AddNumberToObject(g, "folds", folds); /* the folds used: 1 when there was no adapter to cross-fit */
    if (e->guard) {
        cJSON_AddBoolToObject(g, "teacher_accepted", teacher_ok);
        verdict_json(g, "teacher", teacher);
        if (vanilla) verdict_json(g, "vanilla", vanilla);
    }
    cJSON_AddStringToObject(g, "served", served);
    cJSON_AddStringToObject(g, "reason", reason);
}

/* info.test_cold: every network on the test rows of the cold-start slice
 * (nothing when the dataset has no item field of that name). */
static int cold_json(elec_ctx *c, cJSON *info, int vanilla_trained, sc_error *err) {
    const sc_dataset *ds = c->split[2];
    uint8_t *keep = sc_malloc((size_t)ds->n_rows + 1);
    float *p = sc_malloc(((size_t)ds->n_rows + 1) * sizeof *p);
    int64_t n_cold = 0;
    sc_error no_slice = {0};
    int rc = keep && p ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
    if (!rc && !sc_cold_rows(c->split[0], ds, c->e->item_field, c->e->cold_max, keep, &n_cold, &no_slice)) {
        struct { const char *name; sc_model *m; const float *extra; } nets[4] = {
            {"gain", c->gain, c->repr[2]}, {"vanilla", vanilla_trained ? c->van : NULL, NULL},
            {"base", c->base, NULL}, {"served", c->van_best, NULL}};
        cJSON *o = cJSON_AddObjectToObject(info, "test_cold");
        for (int k = 0; k < 4 && !rc; k++) {
            if (!nets[k].m) continue;
            sc_metrics m;
            rc = sc_predict_dataset(nets[k].m, ds, nets[k].extra, c->cap, p, err);
            if (!rc) rc = sc_metrics_on_rows(ds->label, p, ds->group, keep, ds->n_rows, &m, err);
            if (!rc) sc_metrics_json(o, nets[k].name, &m);
        }
    }
    sc_free(keep);
    sc_free(p);
    return rc;
}

int sc_elec_train(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                  const sc_dataset *test, const sc_elec_vectors vec[3], const sc_model_config *model_cfg,
                  const sc_train_config *tcfg, const sc_elec_config *ecfg, cJSON *info, const char *out_path,
                  sc_elec_report *vrep, sc_elec_report *trep, sc_error *err) {
    elec_ctx c = {.e = ecfg, .t = tcfg, .schema = schema, .split = {train, valid, test}, .vec = vec,
                  .out_path = out_path, .info = info};
    c.d = vec[0].n_parts * vec[0].part_dim;
    c.R = ecfg->repr_dim;
    c.cap = tcfg->batch_size > 4096 ? tcfg->batch_size : 4096;
    int rc = SC_OK;
    for (int s = 0; s < 3; s++)
        if (c.split[s] && vec[s].n_rows != c.split[s]->n_rows)
            return sc_fail(err, SC_EINVAL, "ELEC: %lld LLM vectors for a split of %lld rows", (long long)vec[s].n_rows,
                           (long long)c.split[s]->n_rows);

    /* the adapted LLM */
    int tdims[3] = {c.d, ecfg->adapter_hidden, c.R}, hdims[2] = {c.R, 1};
    rc = sc_mlp_create(&c.transform, "transform", tdims, 2, 0, tcfg->seed + 11, err);
    if (!rc) rc = sc_mlp_create(&c.head, "head", hdims, 1, 0, tcfg->seed + 12, err);
    if (rc) goto done;
    int nt, nh;
    sc_param *pt = sc_mlp_params(c.transform, &nt), *ph = sc_mlp_params(c.head, &nh);
    memcpy(c.adapter_params, pt, (size_t)nt * sizeof *pt);
    memcpy(c.adapter_params + nt, ph, (size_t)nh * sizeof *ph);
    c.n_adapter_params = nt + nh;
    for (int k = 0; k < c.n_adapter_params; k++) c.adapter_size += c.adapter_params[k].size;
    size_t B = (size_t)c.cap;
    c.adapter_best = sc_malloc((size_t)c.adapter_size * sizeof(float));
    c.adapter_init = sc_malloc((size_t)c.adapter_size * sizeof(float));
    c.kept = sc_malloc(B * sizeof *c.kept);
    c.kept_lab = sc_malloc(B * sizeof(float));
    c.fold = -1;
    c.x = sc_malloc(B * (size_t)c.d * sizeof(float));
    c.extra = sc_malloc(B * (size_t)c.R * sizeof(float));
    c.zg = sc_malloc(B * sizeof(float));
    c.zv = sc_malloc(B * sizeof(float));
    c.dzg = sc_malloc(B * sizeof(float));
    c.dzv = sc_malloc(B * sizeof(float));
    c.dextra = sc_malloc(B * (size_t)c.R * sizeof(float));
    for (int s = 0; s < 3; s++)
        if (c.split[s]) c.repr[s] = sc_malloc((size_t)c.split[s]->n_rows * c.R * sizeof(float) + 1);
    if (!c.adapter_best || !c.adapter_init || !c.kept || !c.kept_lab || !c.x || !c.extra || !c.zg || !c.zv || !c.dzg || !c.dzv || !c.dextra || !c.repr[0] || !c.repr[1] ||
        (test && !c.repr[2])) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for ELEC buffers");
        goto done;
    }

    /* the pair (created before the adapter trains so a checkpoint can be checked early) */
    sc_model_config gcfg = *model_cfg, vcfg = *model_cfg;
    gcfg.extra_dim = c.R;
    vcfg.extra_dim = 0;
    rc = sc_model_create(&c.gain, &gcfg, train->fields, train->n_fields, tcfg->seed, err);
    if (!rc) rc = sc_model_create(&c.van, &vcfg, train->fields, train->n_fields, tcfg->seed + 1, err);
    if (!rc) rc = sc_model_create(&c.gain_best, &gcfg, train->fields, train->n_fields, tcfg->seed, err);
    if (!rc) rc = sc_model_create(&c.van_best, &vcfg, train->fields, train->n_fields, tcfg->seed + 1, err);
    if (rc) goto done;
    c.Hg = sc_model_hidden_dim(c.gain);
    c.Hv = sc_model_hidden_dim(c.van);
    if (c.Hg != c.Hv && c.Hg > 0 && c.Hv > 0) {
        int pdims[2] = {c.Hv, c.Hg};
        rc = sc_mlp_create(&c.proj, "proj", pdims, 1, 0, tcfg->seed + 13, err);
        if (rc) goto done;
    }
    int Hmax = c.Hg > c.Hv ? c.Hg : c.Hv;
    if (c.R > Hmax) Hmax = c.R;
    c.dhv = sc_malloc(B * (size_t)(c.Hv > 0 ? c.Hv : 1) * sizeof(float));
    c.dp = sc_malloc(B * (size_t)(Hmax > 0 ? Hmax : 1) * sizeof(float));
    if (!c.dhv || !c.dp) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for ELEC buffers");
        goto done;
    }
    c.acfg = *tcfg;
    c.acfg.epochs = ecfg->adapter_epochs;
    c.acfg.lr = ecfg->adapter_lr;
    c.acfg.ckpt_path = NULL;
    c.acfg.resume = 0;
    c.acfg.log_path = NULL;
    c.acfg.l2_embed = 0;
    rc = sc_train_optim_create(&c.opt_adapter, &c.acfg, c.adapter_params, c.n_adapter_params, err);
    if (!rc && ecfg->adapter_tune) rc = sc_train_optim_create(&c.opt_transform, tcfg, pt, nt, err);
    if (rc) goto done;
    int np;
    sc_param *p = sc_model_params(c.gain, &np);
    rc = sc_train_optim_create(&c.opt_gain, tcfg, p, np, err);
    p = sc_model_params(c.van, &np);
    if (!rc) rc = sc_train_optim_create(&c.opt_van, tcfg, p, np, err);
    if (!rc && c.proj) {
        p = sc_mlp_params(c.proj, &np);
        rc = sc_train_optim_create(&c.opt_proj, tcfg, p, np, err);
    }
    if (!rc && ecfg->guard) rc = train_base(&c, model_cfg, err);
    if (rc) goto done;

    sc_fit_task task = {&c, step, validate, save_best, restore_best, stage_checkpoint, load_checkpoint,
                        NULL, 0, NULL /* one process: not data-parallel */, 0};
    sc_train_result res;
    char ckpt_gain[4300];
    snprintf(ckpt_gain, sizeof ckpt_gain, "%s.gain", tcfg->ckpt_path ? tcfg->ckpt_path : "");
    const char *resume_from = NULL;
    if (tcfg->resume && tcfg->ckpt_path) {
        if (sc_file_exists(tcfg->ckpt_path)) resume_from = tcfg->ckpt_path;
        else if (ecfg->schedule == SC_ELEC_STAGED && sc_file_exists(ckpt_gain)) resume_from = ckpt_gain;
    }
    /* the representations of the training rows: out of fold, unless the
     * adapter is tuned with the gain network (then they come from the live MLP) */
    int K = ecfg->adapter_tune || ecfg->adapter_epochs == 0 ? 1 : ecfg->folds;
    if (K != ecfg->folds)
        sc_info("ELEC: no cross-fitting (%s)", ecfg->adapter_tune ? "--adapter-tune: the representation comes from the "
                                                                    "live transformation MLP" : "--adapter-epochs 0");
    adapter_copy(&c, c.adapter_init, 0);
    if (K >= 2) rc = cross_fit(&c, &task, K, err);
    if (rc) goto done;
    if (resume_from) {
        rc = adapter_from_checkpoint(&c, resume_from, err);
        if (rc) goto done;
        sc_info("ELEC: adapter restored from %s", resume_from);
    } else if (ecfg->adapter_epochs > 0) {
        sc_info("ELEC: training the adapted LLM (%d -> %d -> %d -> 1) on frozen LLM vectors%s", c.d,
                ecfg->adapter_hidden, c.R, K >= 2 ? ", all training rows (validation, test, serving)" : "");
        rc = fit_adapter(&c, &task, -1, err);
        if (rc) goto done;
    }
    for (int s = K >= 2 ? 1 : 0; s < 3 && !rc; s++)
        if (c.split[s]) rc = adapter_predict(&c, s, NULL, 1, err);
    if (rc) goto done;

    sc_elec_report vr, tr;
    memset(&vr, 0, sizeof vr);
    memset(&tr, 0, sizeof tr);
    if (c.base) rc = sc_metrics_compute(valid->label, c.base_prob, valid->group, valid->n_rows, &vr.base, err);
    if (rc) goto done;
    int teacher_ok = 1, vanilla_trained = 1, teacher_judged = 0;
    sc_guard_verdict teacher_v = {0}, vanilla_v = {0};
    if (ecfg->schedule == SC_ELEC_JOINT) {
        c.phase = PHASE_JOINT;
        sc_info("ELEC: training gain and vanilla networks jointly (alpha %g, beta %g)", ecfg->alpha, ecfg->beta);
        rc = sc_fit(train, tcfg, &task, &res, err);
    } else {
        int stage2_started = resume_from == tcfg->ckpt_path && resume_from;
        sc_train_config g = *tcfg;
        g.ckpt_path = tcfg->ckpt_path ? ckpt_gain : NULL;
        if (!stage2_started) {
            c.phase = PHASE_GAIN;
            sc_info("ELEC staged: 1/2 the gain network");
            rc = sc_fit(train, &g, &task, &res, err);
            if (rc) goto done;
        }
        for (int s = 0; s < 3 && !rc && ecfg->adapter_tune; s++)
            if (c.split[s]) rc = adapter_predict(&c, s, NULL, 1, err);
        if (!rc && c.base) rc = judge(&c, c.gain, c.repr[1], &teacher_v, err);
        teacher_judged = c.base != NULL;
        if (!rc && c.base) teacher_ok = teacher_v.diff > 0;
        if (rc) goto done;
        if (teacher_ok) {
            c.phase = PHASE_VANILLA;
            sc_info("ELEC staged: 2/2 the vanilla network from the frozen gain network (alpha %g, beta %g)",
                    ecfg->alpha, ecfg->beta);
            rc = sc_fit(train, tcfg, &task, &res, err);
        } else {
            vanilla_trained = 0;
        }
    }
    if (rc) goto done;

    /* final metrics of every network with the best weights, written into the model file */
    for (int s = 0; s < 3 && ecfg->adapter_tune; s++)
        if (c.split[s] && (rc = adapter_predict(&c, s, NULL, 1, err))) goto done;
    rc = eval_adapter(&c, 1, &vr.adapter, err);
    if (!rc) rc = eval_net(&c, c.gain, 1, 1, &vr.gain, err);
    vr.vanilla.auc = vr.vanilla.gauc = vr.vanilla.logloss = NAN;
    if (!rc && vanilla_trained) rc = eval_net(&c, c.van, 1, 0, &vr.vanilla, err);
    if (rc) goto done;

    /* the guard: distil only from a teacher that beats the plain backbone on
     * validation, and serve the distilled network only if it beats it too */
    const char *served = "distilled vanilla network", *why = "guard off";
    char reason[256];
    int serve_distilled = 1;
    if (c.base) {
        if (!teacher_judged) rc = judge(&c, c.gain, c.repr[1], &teacher_v, err);
        if (!rc && vanilla_trained) rc = judge(&c, c.van, NULL, &vanilla_v, err);
        if (rc) goto done;
        teacher_ok = teacher_v.diff > 0; /* a teacher must beat its student; what is served must beat it by more than noise */
        serve_distilled = teacher_ok && vanilla_trained && vanilla_v.pass;
        if (!teacher_ok)
            snprintf(reason, sizeof reason, "the teacher (gain network) does not beat the plain backbone on validation "
                     "(AUC %+.5f ± %.5f): distillation refused", teacher_v.diff, teacher_v.se);
        else if (!serve_distilled)
            snprintf(reason, sizeof reason, "the distilled vanilla network does not beat the plain backbone on "
                     "validation (AUC %+.5f ± %.5f)", vanilla_v.diff, vanilla_v.se);
        else
            snprintf(reason, sizeof reason, "the teacher (AUC %+.5f ± %.5f) and the distilled vanilla network "
                     "(%+.5f ± %.5f) beat the plain backbone on validation", teacher_v.diff, teacher_v.se,
                     vanilla_v.diff, vanilla_v.se);
        why = reason;
        if (!serve_distilled) served = "plain backbone";
        sc_info("ELEC guard: serving the %s: %s", served, why);
    }
    rc = sc_model_copy_weights(c.van_best, serve_distilled ? c.van : c.base, err);
    if (rc) goto done;
    vr.served = serve_distilled ? vr.vanilla : vr.base;
    rc = time_scoring(&c, 1, 0, &vr.vanilla_ms_per_1000, err);
    if (!rc) rc = time_scoring(&c, 1, 1, &vr.gain_ms_per_1000, err);
    if (!rc && test) {
        tr.vanilla_ms_per_1000 = vr.vanilla_ms_per_1000;
        tr.gain_ms_per_1000 = vr.gain_ms_per_1000;
        tr.vanilla.auc = tr.vanilla.gauc = tr.vanilla.logloss = NAN;
        rc = eval_adapter(&c, 2, &tr.adapter, err);
        if (!rc) rc = eval_net(&c, c.gain, 2, 1, &tr.gain, err);
        if (!rc && vanilla_trained) rc = eval_net(&c, c.van, 2, 0, &tr.vanilla, err);
        if (!rc && c.base) rc = eval_net(&c, c.base, 2, 0, &tr.base, err);
        if (!rc) rc = eval_net(&c, c.van_best, 2, 0, &tr.served, err);
    }
    if (rc) goto done;
    if (vrep) *vrep = vr;
    if (trep && test) *trep = tr;
    if (info) {
        cJSON_DeleteItemFromObject(info, "valid");
        cJSON_DeleteItemFromObject(info, "test");
        const sc_elec_report *reps[2] = {&vr, &tr};
        for (int k = 0; k < (test ? 2 : 1); k++) {
            cJSON *o = cJSON_AddObjectToObject(info, k ? "test" : "valid");
            sc_metrics_json(o, "adapter", &reps[k]->adapter);
            sc_metrics_json(o, "gain", &reps[k]->gain);
            if (vanilla_trained) sc_metrics_json(o, "vanilla", &reps[k]->vanilla);
            else cJSON_AddNullToObject(o, "vanilla");
            if (c.base) sc_metrics_json(o, "base", &reps[k]->base);
            sc_metrics_json(o, "served", &reps[k]->served);
        }
        cJSON *l = cJSON_AddObjectToObject(info, "latency_ms_per_1000");
        cJSON_AddNumberToObject(l, "vanilla", vr.vanilla_ms_per_1000);
        cJSON_AddNumberToObject(l, "gain_given_llm_vectors", vr.gain_ms_per_1000);
        guard_json(info, ecfg, K, teacher_ok, served, why, &teacher_v, vanilla_trained ? &vanilla_v : NULL);
        cJSON_DeleteItemFromObject(info, "test_cold");
        if (test) rc = cold_json(&c, info, vanilla_trained, err);
        if (rc) goto done;
    }
    rc = sc_model_copy_weights(c.gain_best, c.gain, err);
    if (!rc) rc = write_model(&c, err);
done:
    free_ctx(&c);
    return rc;
}
