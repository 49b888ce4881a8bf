#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"
#include "nn/optim.h"

void sc_train_config_default(sc_train_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 10;
    c->batch_size = 256;
    c->lr = 1e-3f;
    c->optimizer = SC_OPT_ADAM;
    c->l2_embed = 1e-5f;
    c->monitor = SC_MONITOR_AUC;
    c->patience = 2;
    c->lr_decay = 0.1f;
    c->lr_patience = 1;
    c->seed = 2026;
    c->n_threads = sc_default_threads();
    c->shuffle = 1;
}

static float sigmoidf_stable(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

int sc_predict_dataset(sc_model *model, const sc_dataset *ds, const float *extra, int batch_size, float *prob,
                       sc_error *err) {
    int64_t E = sc_model_get_config(model)->extra_dim;
    sc_batch b;
    int rc = sc_batch_alloc(&b, ds->fields, ds->n_fields, batch_size, err);
    if (rc) return rc;
    int64_t *rows = sc_malloc((size_t)batch_size * sizeof *rows);
    if (!rows) {
        sc_batch_free(&b);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int64_t start = 0; start < ds->n_rows && !rc; start += batch_size) {
        int n = (int)(ds->n_rows - start < batch_size ? ds->n_rows - start : batch_size);
        for (int i = 0; i < n; i++) rows[i] = start + i;
        sc_batch_gather(&b, ds, rows, n);
        b.extra = extra ? extra + start * E : NULL; /* rows are consecutive: no copy */
        rc = sc_model_forward(model, &b, 0, prob + start, err);
        for (int i = 0; i < n && !rc; i++) prob[start + i] = sigmoidf_stable(prob[start + i]);
        /* rows are read once, in order: a large split's scored pages can go */
        if ((start / batch_size) % 16 == 15) sc_dataset_release_rows(ds, 0, start + n);
    }
    sc_free(rows);
    sc_batch_free(&b);
    return rc;
}

int sc_time_scoring(sc_model *model, const sc_dataset *ds, double *ms_per_1000, sc_error *err) {
    int n = ds->n_rows < 1000 ? (int)ds->n_rows : 1000;
    if (n == 0) return sc_fail(err, SC_EINVAL, "cannot time scoring on an empty split");
    sc_batch b;
    int rc = sc_batch_alloc(&b, ds->fields, ds->n_fields, n, err);
    if (rc) return rc;
    int64_t *rows = sc_malloc((size_t)n * sizeof *rows);
    float *out = sc_malloc((size_t)n * sizeof *out);
    if (!rows || !out) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    double t[7];
    for (int i = 0; i < n && !rc; i++) rows[i] = i;
    for (int k = 0; k < 7 && !rc; k++) {
        double t0 = sc_now();
        sc_batch_gather(&b, ds, rows, n);
        rc = sc_model_forward(model, &b, 0, out, err);
        for (int i = 0; i < n && !rc; i++) out[i] = sigmoidf_stable(out[i]);
        t[k] = (sc_now() - t0) * 1e6 / n;
    }
    if (!rc) *ms_per_1000 = sc_median(t, 7);
    sc_free(rows);
    sc_free(out);
    sc_batch_free(&b);
    return rc;
}

int sc_evaluate(sc_model *model, const sc_dataset *ds, const float *extra, int batch_size, sc_metrics *out,
                sc_error *err) {
    if (ds->n_rows == 0) return sc_fail(err, SC_EINVAL, "cannot evaluate an empty split");
    float *prob = sc_malloc((size_t)ds->n_rows * sizeof *prob);
    if (!prob) return sc_fail(err, SC_ENOMEM, "out of memory for %lld scores", (long long)ds->n_rows);
    int rc = sc_predict_dataset(model, ds, extra, batch_size, prob, err);
    if (!rc) rc = sc_metrics_compute(ds->label, prob, ds->group, ds->n_rows, out, err);
    sc_free(prob);
    return rc;
}

/* ---- the shared loop ---- */


void sc_shuffle_order(int64_t *order, int64_t n, int shuffle, uint64_t seed) {
    int64_t nb = (n + SC_SHUFFLE_BLOCK - 1) / SC_SHUFFLE_BLOCK, k = 0;
    int64_t *blocks = nb > 1 ? sc_malloc((size_t)nb * sizeof *blocks) : NULL;
    sc_rng r;
    sc_rng_seed(&r, seed);
    if (nb > 1 && !blocks) nb = 1; /* out of memory for the block list: plain order of blocks */
    for (int64_t b = 0; b < nb; b++) {
        if (blocks) blocks[b] = b;
    }
    /* the last block may be short: it stays last, so block i always fills
     * positions [i·BLOCK, (i+1)·BLOCK) of the order */
    int64_t full = n / SC_SHUFFLE_BLOCK;
    if (shuffle && blocks) sc_shuffle_i64(blocks, full, &r);
    for (int64_t i = 0; i < nb; i++) {
        int64_t b = blocks ? blocks[i] : i;
        int64_t lo = b * SC_SHUFFLE_BLOCK, hi = lo + SC_SHUFFLE_BLOCK < n ? lo + SC_SHUFFLE_BLOCK : n;
        if (nb == 1) {
            lo = 0;
            hi = n;
        }
        for (int64_t row = lo; row < hi; row++) order[k + row - lo] = row;
        if (shuffle) sc_shuffle_i64(order + k, hi - lo, &r);
        k += hi - lo;
    }
    sc_free(blocks);
}

const char *sc_monitor_name(int monitor) { return monitor == SC_MONITOR_LOGLOSS ? "logloss" : "auc"; }

/* The monitored metric as a score where higher is better (NAN: undefined, never an improvement). */
static double monitored(int monitor, const sc_metrics *m) {
    return monitor == SC_MONITOR_LOGLOSS ? -m->logloss : m->auc;
}

typedef struct loop_state {
    int epoch;      /* epochs completed */
    int bad_epochs; /* epochs since the best monitored metric */
    int plateau;    /* epochs since the last improvement or lr decay */
    float lr;
    double best_score; /* the best monitored() so far, -INFINITY before the first epoch */
    int best_epoch;
    int64_t steps;
} loop_state;

/* path NULL: a rank other than 0 of a collective task, which only takes part */
static int save_checkpoint(const char *path, const sc_fit_task *t, const loop_state *st, int monitor, sc_error *err) {
    if (!path) return t->stage_checkpoint(t->ctx, NULL, NULL, err);
    sc_container_writer w;
    sc_container_writer_init(&w);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "format", "semctr-checkpoint");
    cJSON *l = cJSON_AddObjectToObject(h, "loop");
    cJSON_AddNumberToObject(l, "epoch", st->epoch);
    cJSON_AddNumberToObject(l, "bad_epochs", st->bad_epochs);
    cJSON_AddNumberToObject(l, "plateau", st->plateau);
    cJSON_AddNumberToObject(l, "lr", st->lr);
    cJSON_AddStringToObject(l, "monitor", sc_monitor_name(monitor));
    cJSON_AddNumberToObject(l, "best_score", st->best_epoch ? st->best_score : 0);
    cJSON_AddNumberToObject(l, "best_epoch", st->best_epoch);
    cJSON_AddNumberToObject(l, "steps", (double)st->steps);
    int rc = t->stage_checkpoint(t->ctx, &w, h, err);
    if (!rc) rc = sc_container_write(&w, path, h, err);
    cJSON_Delete(h);
    sc_container_writer_free(&w);
    return rc;
}

static double json_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* path NULL: a rank other than 0 of a collective task, which receives its part from rank 0 */
static int load_checkpoint(const char *path, const sc_fit_task *t, loop_state *st, int monitor, sc_dist *d,
                           sc_error *err) {
    if (!path) {
        int rc = sc_dist_agree(d, SC_OK, err); /* rank 0 opened and checked the file */
        return rc ? rc : t->load_checkpoint(t->ctx, NULL, err);
    }
    sc_container c;
    int rc = sc_container_open(&c, path, err), opened = !rc;
    const cJSON *fmt = opened ? cJSON_GetObjectItemCaseSensitive(c.header, "format") : NULL;
    const cJSON *loop = opened ? cJSON_GetObjectItemCaseSensitive(c.header, "loop") : NULL;
    /* checkpoints before --monitor recorded "best_auc" and always monitored AUC */
    const cJSON *mon = cJSON_GetObjectItemCaseSensitive(loop, "monitor");
    const char *was = cJSON_IsString(mon) ? mon->valuestring : "auc";
    if (!rc && (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "semctr-checkpoint") || !cJSON_IsObject(loop)))
        rc = sc_fail(err, SC_EFORMAT, "%s: not a semctr training checkpoint", path);
    else if (!rc && strcmp(was, sc_monitor_name(monitor)))
        rc = sc_fail(err, SC_EINVAL, "%s: the run being resumed monitored %s, this one %s (pass --monitor %s)", path,
                     was, sc_monitor_name(monitor), was);
    if (t->collective) rc = sc_dist_agree(d, rc, err);
    if (!rc) rc = t->load_checkpoint(t->ctx, &c, err);
    if (!rc) {
        st->epoch = (int)json_num(loop, "epoch", 0);
        st->bad_epochs = (int)json_num(loop, "bad_epochs", 0);
        st->plateau = (int)json_num(loop, "plateau", 0);
        st->lr = (float)json_num(loop, "lr", st->lr);
        st->best_epoch = (int)json_num(loop, "best_epoch", 0);
        st->best_score = st->best_epoch ? json_num(loop, cJSON_IsString(mon) ? "best_score" : "best_auc", -INFINITY)
                                        : -INFINITY;
        st->steps = (int64_t)json_num(loop, "steps", 0);
    }
    if (opened) sc_container_close(&c);
    return rc;
}

static void log_epoch(FILE *log, int epoch, double loss, const sc_metrics *m, float lr, double sps, int best) {
    if (!log) return;
    fprintf(log,
            "{\"epoch\": %d, \"train_loss\": %.6f, \"valid_auc\": %.6f, \"valid_gauc\": %.6f, "
            "\"valid_logloss\": %.6f, \"lr\": %g, \"samples_per_s\": %.1f, \"best\": %s}\n",
            epoch, loss, m->auc, isnan(m->gauc) ? -1.0 : m->gauc, m->logloss, lr, sps, best ? "true" : "false");
    fflush(log);
}

int sc_fit(const sc_dataset *train, const sc_train_config *cfg, const sc_fit_task *t, sc_train_result *res,
           sc_error *err) {
    memset(res, 0, sizeof *res);
    if (train->n_rows == 0) return sc_fail(err, SC_EINVAL, "the training split is empty");
    int rc = SC_OK;
    sc_batch b = {0};
    int64_t *order = NULL;
    FILE *log = NULL;
    loop_state st = {.lr = cfg->lr, .best_score = -INFINITY};
    const char *metric = cfg->monitor == SC_MONITOR_LOGLOSS ? "logloss" : "AUC";
    sc_dist *d = cfg->dist;
    int root = sc_dist_rank(d) == 0, ranks = sc_dist_size(d);
    if (ranks > 1 && !t->params)
        return sc_fail(err, SC_EINVAL, "this training method runs on one process, not over %d ranks", ranks);

    rc = sc_batch_alloc(&b, train->fields, train->n_fields, cfg->batch_size, err);
    if (rc) goto done;
    order = sc_malloc((size_t)train->n_rows * sizeof *order);
    if (!order) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld rows", (long long)train->n_rows);
        goto done;
    }
    if (cfg->log_path && root) {
        log = fopen(cfg->log_path, cfg->resume ? "a" : "w");
        if (!log) {
            rc = sc_fail(err, SC_EIO, "%s: cannot open the metrics log", cfg->log_path);
            goto done;
        }
    }
    int resume = root && cfg->resume && cfg->ckpt_path && sc_file_exists(cfg->ckpt_path);
    if (t->collective) rc = sc_dist_bcast(d, &resume, sizeof resume, err);
    if (!rc && resume && (root || t->collective)) {
        rc = load_checkpoint(root ? cfg->ckpt_path : NULL, t, &st, cfg->monitor, d, err);
        if (!rc)
            sc_info("resuming after epoch %d (best valid %s %.5f at epoch %d)", st.epoch, metric,
                    cfg->monitor == SC_MONITOR_LOGLOSS ? -st.best_score : st.best_score, st.best_epoch);
    }
    /* every rank starts from rank 0's weights, optimizer and loop state (the checkpoint may be on its disk only) */
    if (ranks > 1) {
        rc = sc_dist_agree(d, rc, err);
        if (!rc) rc = sc_dist_bcast(d, &st, sizeof st, err);
        if (!rc) rc = sc_dist_bcast_state(d, t->params, t->n_params, t->opt, err);
    }
    if (rc) goto done;

    double train_time = 0;
    int64_t train_samples = 0;
    int stop = st.epoch > 0 && st.bad_epochs >= cfg->patience;
    for (int epoch = st.epoch + 1; epoch <= cfg->epochs && !stop; epoch++) {
        int64_t n_blocks = (train->n_rows + SC_SHUFFLE_BLOCK - 1) / SC_SHUFFLE_BLOCK;
        sc_shuffle_order(order, train->n_rows, cfg->shuffle, cfg->seed * 1000003ULL + (uint64_t)epoch);
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, cfg->epochs);
        sc_progress prog;
        sc_progress_begin(&prog, label, train->n_rows, "rows");
        double loss_sum = 0, t0 = sc_now();
        int64_t n_batches = 0, seen = 0;
        for (int64_t start = 0; start < train->n_rows; start += cfg->batch_size) {
            if (sc_dist_interrupted(d)) {
                sc_progress_end(&prog);
                res->interrupted = 1;
                rc = sc_fail(err, SC_EINTERRUPTED,
                             "interrupted in epoch %d; the model file and %s hold the last complete epoch", epoch,
                             cfg->ckpt_path ? cfg->ckpt_path : "(no checkpoint)");
                goto done;
            }
            if (cfg->max_steps && st.steps >= cfg->max_steps) break;
            int n = (int)(train->n_rows - start < cfg->batch_size ? train->n_rows - start : cfg->batch_size);

            int64_t lo, hi; /* this rank's rows of the batch */
            sc_dist_slice(d, n, &lo, &hi);
            int64_t p0 = start + lo, cut = ((p0 / SC_SHUFFLE_BLOCK) + 1) * SC_SHUFFLE_BLOCK - p0;
            if (n_blocks > 1 && cut < hi - lo) {
                /* the slice reaches the next block: release the finished block's pages before
                 * gathering from the next one, so that one block is resident, never two */
                sc_batch_gather_part(&b, train, order + p0, 0, (int)cut);
                int64_t blk = order[p0] / SC_SHUFFLE_BLOCK;
                sc_dataset_release_rows(train, blk * SC_SHUFFLE_BLOCK, (blk + 1) * SC_SHUFFLE_BLOCK);
                sc_batch_gather_part(&b, train, order + p0, (int)cut, (int)(hi - lo));
            } else {
                sc_batch_gather(&b, train, order + start + lo, (int)(hi - lo));
            }
            double loss;
            rc = t->step(t->ctx, &b, order + start + lo, st.lr, &loss, err);
            if (rc) goto done;
            /* the batch reached the next block: the finished block's pages can go */
            if (n_blocks > 1 && start / SC_SHUFFLE_BLOCK != (start + n) / SC_SHUFFLE_BLOCK) {
                int64_t blk = order[start] / SC_SHUFFLE_BLOCK;
                sc_dataset_release_rows(train, blk * SC_SHUFFLE_BLOCK, (blk + 1) * SC_SHUFFLE_BLOCK);
            }
            loss_sum += loss * ((double)(hi - lo) / n); /* summed over ranks: the batch's mean loss */
            n_batches++;
            st.steps++;
            seen += n;
            if ((n_batches & 15) == 0) {
                char extra[48];
                /* over ranks, rank 0's slices stand for the batch until the epoch's sum */
                snprintf(extra, sizeof extra, "loss %.4f", loss_sum * ranks / (double)n_batches);
                sc_progress_update(&prog, seen, extra);
            }
        }
        double dt = sc_now() - t0;
        /* the last block's pages are not needed during validation */
        if (n_blocks > 1) sc_dataset_release_rows(train, 0, train->n_rows);
        train_time += dt;
        train_samples += seen;
        sc_progress_end(&prog);
        rc = sc_dist_sum(d, &loss_sum, 1, err);
        if (!rc) rc = sc_dist_check_replicas(d, t->params, t->n_params, label, err);
        if (rc) goto done;

        sc_metrics m;
        rc = sc_dist_agree(d, root || t->collective ? t->validate(t->ctx, &m, err) : SC_OK, err);
        if (!rc) rc = sc_dist_bcast(d, &m, sizeof m, err);
        if (rc) goto done;
        double score = monitored(cfg->monitor, &m);
        int improved = score > st.best_score;
        st.epoch = epoch;
        double sps = dt > 0 ? (double)seen / dt : 0, mean_loss = n_batches ? loss_sum / (double)n_batches : 0;
        sc_info("epoch %d: train loss %.5f, valid AUC %.5f, gAUC %.5f, logloss %.5f, %.0f samples/s%s", epoch,
                mean_loss, m.auc, m.gauc, m.logloss, sps, improved ? " (best so far, saved)" : "");
        if (improved) {
            st.best_score = score;
            st.best_epoch = epoch;
            st.bad_epochs = st.plateau = 0;
            res->best_valid = m;
            rc = sc_dist_agree(d, root || t->collective ? t->save_best(t->ctx, err) : SC_OK, err);
            if (rc) goto done;
        } else {
            st.bad_epochs++;
            st.plateau++;
            if (st.plateau >= cfg->lr_patience && cfg->lr_decay < 1) {
                st.lr *= cfg->lr_decay;
                st.plateau = 0;
                sc_info("validation %s did not improve: learning rate now %g", metric, st.lr);
            }
        }
        log_epoch(log, epoch, mean_loss, &m, st.lr, sps, improved);
        res->epochs_run++;
        if (cfg->ckpt_path) {
            if (root || t->collective)
                rc = save_checkpoint(root ? cfg->ckpt_path : NULL, t, &st, cfg->monitor, err);
            rc = sc_dist_agree(d, rc, err);
            if (rc) goto done;
        }
        if (st.bad_epochs >= cfg->patience) {
            res->stopped_early = stop = 1;
            sc_info("early stop: no better validation %s for %d epochs", metric, st.bad_epochs);
        }
        if (cfg->max_steps && st.steps >= cfg->max_steps) stop = 1;
    }
    if (st.best_epoch == 0) {
        rc = sc_fail(err, SC_EINVAL, "no epoch was trained (%d of %d already done)", st.epoch, cfg->epochs);
        goto done;
    }
    /* After a resume the best weights may predate this process: reload them from the model file. */
    if (root || t->collective) {
        rc = t->restore_best(t->ctx, res->best_valid.n == 0, err);
        if (!rc && res->best_valid.n == 0) rc = t->validate(t->ctx, &res->best_valid, err);
    }
    /* every rank ends holding the best weights, as one process does */
    rc = sc_dist_agree(d, rc, err);
    if (!rc) rc = sc_dist_bcast(d, &res->best_valid, sizeof res->best_valid, err);
    if (!rc) rc = sc_dist_bcast_state(d, t->params, t->n_params, NULL, err);
    if (rc) goto done;
    res->best_epoch = st.best_epoch;
    res->steps = st.steps;
    res->samples_per_s = train_time > 0 ? (double)train_samples / train_time : 0;
done:
    if (log) fclose(log);
    sc_free(order);
    sc_batch_free(&b);
    return rc;
}

int sc_train_optim_create(sc_optim **out, const sc_train_config *cfg, sc_param *params, int n, sc_error *err) {
    sc_optim_config oc;
    sc_optim_config_default(&oc, cfg->optimizer == SC_OPT_ADAGRAD ? SC_OPTIM_ADAGRAD : SC_OPTIM_ADAM);
    /* --l2-embed is λ of a loss term λ·||w||² (DeepCTR-Torch's l2_reg_embedding): gradient 2λw */
    oc.weight_decay = 2 * cfg->l2_embed;
    oc.n_threads = cfg->n_threads;
    return sc_optim_create(out, &oc, params, n, err);
}

/* ---- the plain task: one backbone ---- */

typedef struct plain_ctx {
    sc_model *model, *best;
    sc_optim *opt;
    const sc_dataset *valid;
    float *logits, *dlogits; /* (batch) */
    sc_model_bundle bundle; /* wraps best for writing */
    const char *out_path;
    int n_threads;
    sc_dist *dist;
    sc_param *params;
    int n_params;
} plain_ctx;

static int plain_step(void *ctx, const sc_batch *b, const int64_t *rows, float lr, double *loss, sc_error *err) {
    (void)rows;
    plain_ctx *c = ctx;
    int rc = sc_model_forward(c->model, b, 1, c->logits, err);
    if (rc) return rc;
    *loss = sc_bce_logits_forward(c->logits, b->label, b->n);
    sc_bce_logits_backward(c->dlogits, c->logits, b->label, b->n, 1.0f);
    rc = sc_model_backward(c->model, b, c->dlogits, NULL, NULL, err);
    if (rc) return rc;
    return sc_dist_optim_step(c->dist, c->opt, c->params, c->n_params, lr, err);
}

static int plain_validate(void *ctx, sc_metrics *m, sc_error *err) {
    plain_ctx *c = ctx;
    return sc_evaluate(c->model, c->valid, NULL, 4096, m, err);
}

static int plain_save_best(void *ctx, sc_error *err) {
    plain_ctx *c = ctx;
    int rc = sc_model_copy_weights(c->best, c->model, err);
    if (rc) return rc;
    return sc_model_bundle_save(&c->bundle, c->out_path, err);
}

static int plain_restore_best(void *ctx, int from_file, sc_error *err) {
    plain_ctx *c = ctx;
    if (from_file) {
        sc_model_bundle prev;
        int rc = sc_model_bundle_load(&prev, c->out_path, c->n_threads, err);
        if (rc) return sc_fail_prefix(err, "reloading the best model: ");
        sc_model *pm = sc_model_bundle_network(&prev, "main");
        rc = pm ? sc_model_copy_weights(c->best, pm, err)
                : sc_fail(err, SC_EFORMAT, "%s: no network 'main'", c->out_path);
        sc_model_bundle_free(&prev);
        if (rc) return rc;
    }
    return sc_model_copy_weights(c->model, c->best, err);
}

int sc_checkpoint_stage(sc_container_writer *w, const char *prefix, sc_param *p, int np, sc_optim *o,
                        sc_error *err) {
    int ns, rc = SC_OK;
    for (int k = 0; k < np && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "%s/%s", prefix, p[k].name);
        rc = sc_container_add(w, name, 1, p[k].data, (uint64_t)p[k].size * sizeof(float), err);
    }
    ns = o ? sc_optim_n_states(o) : 0;
    for (int k = 0; k < ns && !rc; k++) {
        const char *sname;
        float *data;
        int64_t size;
        sc_optim_state(o, k, &sname, &data, &size);
        char name[160];
        snprintf(name, sizeof name, "%s.optim/%s", prefix, sname);
        rc = sc_container_add(w, name, 1, data, (uint64_t)size * sizeof(float), err);
    }
    return rc;
}

static int load_tensor(const sc_container *c, const char *name, float *data, int64_t size, sc_error *err) {
    const sc_container_entry *e = sc_container_find(c, name);
    if (!e || !e->is_f32 || e->bytes != (uint64_t)size * sizeof(float))
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or of the wrong size for this model", c->path, name);
    memcpy(data, e->data, e->bytes);
    return SC_OK;
}

int sc_checkpoint_load(const sc_container *c, const char *prefix, sc_param *p, int np, sc_optim *o,
                       sc_error *err) {
    int ns, rc = SC_OK;
    for (int k = 0; k < np && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "%s/%s", prefix, p[k].name);
        rc = load_tensor(c, name, p[k].data, p[k].size, err);
    }
    ns = o ? sc_optim_n_states(o) : 0;
    for (int k = 0; k < ns && !rc; k++) {
        const char *sname;
        float *data;
        int64_t size;
        sc_optim_state(o, k, &sname, &data, &size);
        char name[160];
        snprintf(name, sizeof name, "%s.optim/%s", prefix, sname);
        rc = load_tensor(c, name, data, size, err);
    }
    return rc;
}

static int plain_stage_checkpoint(void *ctx, sc_container_writer *w, cJSON *header, sc_error *err) {
    plain_ctx *c = ctx;
    cJSON_AddNumberToObject(header, "optim_steps", (double)sc_optim_get_step(c->opt));
    int np;
    sc_param *p = sc_model_params(c->model, &np);
    return sc_checkpoint_stage(w, "main", p, np, c->opt, err);
}

static int plain_load_checkpoint(void *ctx, const sc_container *ck, sc_error *err) {
    plain_ctx *c = ctx;
    int np;
    sc_param *p = sc_model_params(c->model, &np);
    int rc = sc_checkpoint_load(ck, "main", p, np, c->opt, err);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(ck->header, "optim_steps");
    if (!rc && cJSON_IsNumber(s)) sc_optim_set_step(c->opt, (int64_t)s->valuedouble);
    return rc;
}

int sc_train(sc_model *model, const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
             const sc_train_config *cfg, const char *out_path, sc_train_result *res, sc_error *err) {
    if (valid->n_rows == 0) return sc_fail(err, SC_EINVAL, "the validation split is empty");
    int np, rc;
    sc_param *params = sc_model_params(model, &np);
    plain_ctx c = {.model = model, .valid = valid, .out_path = out_path, .n_threads = cfg->n_threads,
                   .dist = cfg->dist, .params = params, .n_params = np};
    rc = sc_train_optim_create(&c.opt, cfg, params, np, err);
    if (!rc) rc = sc_model_create(&c.best, sc_model_get_config(model), train->fields, train->n_fields, cfg->seed, err);
    if (!rc) {
        c.logits = sc_malloc((size_t)cfg->batch_size * sizeof(float));
        c.dlogits = sc_malloc((size_t)cfg->batch_size * sizeof(float));
        if (!c.logits || !c.dlogits) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (!rc) {
        sc_model_bundle_plain(&c.bundle, schema, c.best);
        sc_fit_task t = {&c, plain_step, plain_validate, plain_save_best, plain_restore_best,
                         plain_stage_checkpoint, plain_load_checkpoint, params, np, c.opt, 0};
        rc = sc_fit(train, cfg, &t, res, err);
    }
    sc_free(c.logits);
    sc_free(c.dlogits);
    if (c.best) sc_model_free(c.best);
    if (c.opt) sc_optim_free(c.opt);
    return rc;
}
