#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/optim.h"

void sc_train_config_default(sc_train_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 10;
    c->batch_size = 256;
    c->lr = 1e-3f;
    c->optimizer = SC_OPT_ADAM;
    c->l2_embed = 1e-5f;
    c->patience = 2;
    c->lr_decay = 0.1f;
    c->lr_patience = 1;
    c->seed = 2026;
    c->n_threads = sc_default_threads();
    c->shuffle = 1;
}

double sc_bce_with_logits(const float *z, const float *y, int B, float *dz) {
    double loss = 0;
    for (int i = 0; i < B; i++) {
        double x = z[i];
        /* log(1 + e^x) - y x, written so that neither branch overflows */
        loss += (x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))) - (double)y[i] * x;
        if (dz) {
            double p = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
            dz[i] = (float)((p - y[i]) / B);
        }
    }
    return B ? loss / B : 0;
}

static float sigmoidf_stable(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

int sc_predict_dataset(sc_model *model, const sc_dataset *ds, int batch_size, float *prob, sc_error *err) {
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
        rc = sc_model_forward(model, &b, 0, prob + start, err);
        for (int i = 0; i < n && !rc; i++) prob[start + i] = sigmoidf_stable(prob[start + i]);
    }
    sc_free(rows);
    sc_batch_free(&b);
    return rc;
}

int sc_evaluate(sc_model *model, const sc_dataset *ds, int batch_size, sc_metrics *out, sc_error *err) {
    if (ds->n_rows == 0) return sc_fail(err, SC_EINVAL, "cannot evaluate an empty split");
    float *prob = sc_malloc((size_t)ds->n_rows * sizeof *prob);
    if (!prob) return sc_fail(err, SC_ENOMEM, "out of memory for %lld scores", (long long)ds->n_rows);
    int rc = sc_predict_dataset(model, ds, batch_size, prob, err);
    if (!rc) rc = sc_metrics_compute(ds->label, prob, ds->group, ds->n_rows, out, err);
    sc_free(prob);
    return rc;
}

/* ---- checkpoints: current weights, optimizer state and loop state ---- */

typedef struct loop_state {
    int epoch;         /* epochs completed */
    int bad_epochs;    /* epochs since the best validation AUC */
    int plateau;       /* epochs since the last improvement or lr decay */
    float lr;
    double best_auc;
    int best_epoch;
    int64_t steps;
} loop_state;

static int save_checkpoint(const char *path, sc_model *model, sc_optim *opt, const loop_state *st,
                           sc_error *err) {
    sc_container_writer w;
    sc_container_writer_init(&w);
    int rc = SC_OK, np, ns;
    sc_param *p = sc_model_params(model, &np);
    for (int k = 0; k < np && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "main/%s", p[k].name);
        rc = sc_container_add(&w, name, 1, p[k].data, (uint64_t)p[k].size * sizeof(float), err);
    }
    sc_optim_tensor *s = sc_optim_state(opt, &ns);
    for (int k = 0; k < ns && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "optim/%s", s[k].name);
        rc = sc_container_add(&w, name, 1, s[k].data, (uint64_t)s[k].size * sizeof(float), err);
    }
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "format", "semctr-checkpoint");
    cJSON_AddItemToObject(h, "config", sc_model_config_to_json(sc_model_get_config(model)));
    cJSON *t = cJSON_AddObjectToObject(h, "loop");
    cJSON_AddNumberToObject(t, "epoch", st->epoch);
    cJSON_AddNumberToObject(t, "bad_epochs", st->bad_epochs);
    cJSON_AddNumberToObject(t, "plateau", st->plateau);
    cJSON_AddNumberToObject(t, "lr", st->lr);
    cJSON_AddNumberToObject(t, "best_auc", st->best_auc);
    cJSON_AddNumberToObject(t, "best_epoch", st->best_epoch);
    cJSON_AddNumberToObject(t, "steps", (double)st->steps);
    cJSON_AddNumberToObject(t, "optim_steps", (double)sc_optim_steps(opt));
    if (!rc) rc = sc_container_write(&w, path, h, err);
    cJSON_Delete(h);
    sc_container_writer_free(&w);
    return rc;
}

static double json_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int load_tensors(const sc_container *c, const char *prefix, const char *name, float *data, int64_t size,
                        sc_error *err) {
    char full[160];
    snprintf(full, sizeof full, "%s/%s", prefix, name);
    const sc_container_entry *e = sc_container_find(c, full);
    if (!e || !e->is_f32 || e->bytes != (uint64_t)size * sizeof(float))
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or of the wrong size for this model", c->path, full);
    memcpy(data, e->data, e->bytes);
    return SC_OK;
}

static int load_checkpoint(const char *path, sc_model *model, sc_optim *opt, loop_state *st, sc_error *err) {
    sc_container c;
    int rc = sc_container_open(&c, path, err);
    if (rc) return rc;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(c.header, "format");
    const cJSON *loop = cJSON_GetObjectItemCaseSensitive(c.header, "loop");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "semctr-checkpoint") || !cJSON_IsObject(loop)) {
        sc_container_close(&c);
        return sc_fail(err, SC_EFORMAT, "%s: not a semctr training checkpoint", path);
    }
    int np, ns;
    sc_param *p = sc_model_params(model, &np);
    for (int k = 0; k < np && !rc; k++) rc = load_tensors(&c, "main", p[k].name, p[k].data, p[k].size, err);
    sc_optim_tensor *s = sc_optim_state(opt, &ns);
    for (int k = 0; k < ns && !rc; k++) rc = load_tensors(&c, "optim", s[k].name, s[k].data, s[k].size, err);
    if (!rc) {
        st->epoch = (int)json_num(loop, "epoch", 0);
        st->bad_epochs = (int)json_num(loop, "bad_epochs", 0);
        st->plateau = (int)json_num(loop, "plateau", 0);
        st->lr = (float)json_num(loop, "lr", st->lr);
        st->best_auc = json_num(loop, "best_auc", -1);
        st->best_epoch = (int)json_num(loop, "best_epoch", 0);
        st->steps = (int64_t)json_num(loop, "steps", 0);
        sc_optim_set_steps(opt, (int64_t)json_num(loop, "optim_steps", 0));
    }
    sc_container_close(&c);
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

int sc_train(sc_model *model, const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
             const sc_train_config *cfg, const char *out_path, sc_train_result *res, sc_error *err) {
    memset(res, 0, sizeof *res);
    if (train->n_rows == 0) return sc_fail(err, SC_EINVAL, "the training split is empty");
    if (valid->n_rows == 0) return sc_fail(err, SC_EINVAL, "the validation split is empty");
    int np, rc;
    sc_param *params = sc_model_params(model, &np);
    sc_optim *opt = NULL;
    sc_model *best = NULL;
    sc_batch b = {0};
    int64_t *order = NULL;
    float *logits = NULL, *dlogits = NULL;
    FILE *log = NULL;
    sc_model_bundle bundle = {0};
    loop_state st = {.lr = cfg->lr, .best_auc = -1};

    rc = sc_optim_create(&opt, cfg->optimizer == SC_OPT_ADAGRAD ? SC_OPTIM_ADAGRAD : SC_OPTIM_ADAM, params, np, err);
    if (rc) goto done;
    rc = sc_model_create(&best, sc_model_get_config(model), train->fields, train->n_fields, cfg->seed, err);
    if (rc) goto done;
    rc = sc_batch_alloc(&b, train->fields, train->n_fields, cfg->batch_size, err);
    if (rc) goto done;
    order = sc_malloc((size_t)train->n_rows * sizeof *order);
    logits = sc_malloc((size_t)cfg->batch_size * sizeof *logits);
    dlogits = sc_malloc((size_t)cfg->batch_size * sizeof *dlogits);
    if (!order || !logits || !dlogits) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld rows", (long long)train->n_rows);
        goto done;
    }
    if (cfg->log_path) {
        log = fopen(cfg->log_path, cfg->resume ? "a" : "w");
        if (!log) {
            rc = sc_fail(err, SC_EIO, "%s: cannot open the metrics log", cfg->log_path);
            goto done;
        }
    }
    bundle.schema = (sc_schema *)schema;
    snprintf(bundle.method, sizeof bundle.method, "plain");
    bundle.n_networks = 1;
    snprintf(bundle.networks[0].name, sizeof bundle.networks[0].name, "main");
    bundle.networks[0].model = best;

    if (cfg->resume && cfg->ckpt_path && sc_file_exists(cfg->ckpt_path)) {
        rc = load_checkpoint(cfg->ckpt_path, model, opt, &st, err);
        if (rc) goto done;
        sc_model_copy_weights(best, model);
        if (st.best_epoch > 0) {
            /* The best weights are those of the model file written at that epoch. */
            sc_model_bundle prev;
            rc = sc_model_bundle_load(&prev, out_path, cfg->n_threads, err);
            if (rc) {
                sc_fail_prefix(err, "resuming needs the best model written so far: ");
                goto done;
            }
            sc_model *pm = sc_model_bundle_network(&prev, "main");
            if (pm) sc_model_copy_weights(best, pm);
            sc_model_bundle_free(&prev);
        }
        sc_info("resuming after epoch %d (best valid AUC %.5f at epoch %d)", st.epoch, st.best_auc, st.best_epoch);
    }

    double train_time = 0;
    int64_t train_samples = 0;
    int stop = st.bad_epochs >= cfg->patience && st.epoch > 0;
    for (int epoch = st.epoch + 1; epoch <= cfg->epochs && !stop; epoch++) {
        for (int64_t i = 0; i < train->n_rows; i++) order[i] = i;
        if (cfg->shuffle) {
            sc_rng r;
            sc_rng_seed(&r, cfg->seed * 1000003ULL + (uint64_t)epoch);
            sc_shuffle_i64(order, train->n_rows, &r);
        }
        char label[32];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, cfg->epochs);
        sc_progress prog;
        sc_progress_begin(&prog, label, train->n_rows, "rows");
        double loss_sum = 0, t0 = sc_now();
        int64_t n_batches = 0, seen = 0;
        for (int64_t start = 0; start < train->n_rows; start += cfg->batch_size) {
            if (sc_interrupted()) {
                rc = sc_fail(err, SC_EINTERRUPTED, "interrupted in epoch %d; %s and %s hold the last complete epoch",
                             epoch, out_path, cfg->ckpt_path ? cfg->ckpt_path : "(no checkpoint)");
                res->interrupted = 1;
                sc_progress_end(&prog);
                goto done;
            }
            if (cfg->max_steps && st.steps >= cfg->max_steps) break;
            int n = (int)(train->n_rows - start < cfg->batch_size ? train->n_rows - start : cfg->batch_size);
            sc_batch_gather(&b, train, order + start, n);
            rc = sc_model_forward(model, &b, 1, logits, err);
            if (rc) goto done;
            loss_sum += sc_bce_with_logits(logits, b.label, n, dlogits);
            rc = sc_model_backward(model, &b, dlogits, NULL, NULL, err);
            if (rc) goto done;
            sc_optim_step(opt, st.lr, cfg->l2_embed);
            n_batches++;
            st.steps++;
            seen += n;
            if ((n_batches & 15) == 0) {
                char extra[48];
                snprintf(extra, sizeof extra, "loss %.4f", loss_sum / (double)n_batches);
                sc_progress_update(&prog, seen, extra);
            }
        }
        double dt = sc_now() - t0;
        train_time += dt;
        train_samples += seen;
        sc_progress_end(&prog);

        sc_metrics m;
        rc = sc_evaluate(model, valid, cfg->batch_size > 4096 ? cfg->batch_size : 4096, &m, err);
        if (rc) goto done;
        int improved = m.auc > st.best_auc;
        st.epoch = epoch;
        if (improved) {
            st.best_auc = m.auc;
            st.best_epoch = epoch;
            st.bad_epochs = 0;
            st.plateau = 0;
            res->best_valid = m;
            sc_model_copy_weights(best, model);
            rc = sc_model_bundle_save(&bundle, out_path, err);
            if (rc) goto done;
        } else {
            st.bad_epochs++;
            st.plateau++;
            if (st.plateau >= cfg->lr_patience && cfg->lr_decay < 1) {
                st.lr *= cfg->lr_decay;
                st.plateau = 0;
                sc_info("validation AUC did not improve: learning rate now %g", st.lr);
            }
        }
        double sps = dt > 0 ? (double)seen / dt : 0;
        sc_info("epoch %d: train loss %.5f, valid AUC %.5f, gAUC %.5f, logloss %.5f, %.0f samples/s%s", epoch,
                n_batches ? loss_sum / (double)n_batches : 0, m.auc, m.gauc, m.logloss, sps,
                improved ? " (best so far, saved)" : "");
        log_epoch(log, epoch, n_batches ? loss_sum / (double)n_batches : 0, &m, st.lr, sps, improved);
        res->epochs_run++;
        if (cfg->ckpt_path) {
            rc = save_checkpoint(cfg->ckpt_path, model, opt, &st, err);
            if (rc) goto done;
        }
        if (st.bad_epochs >= cfg->patience) {
            res->stopped_early = 1;
            stop = 1;
            sc_info("early stop: no better validation AUC for %d epochs", st.bad_epochs);
        }
        if (cfg->max_steps && st.steps >= cfg->max_steps) stop = 1;
    }
    if (st.best_epoch == 0) {
        rc = sc_fail(err, SC_EINVAL, "no epoch was trained (epochs %d already done?)", st.epoch);
        goto done;
    }
    sc_model_copy_weights(model, best);
    res->best_epoch = st.best_epoch;
    res->steps = st.steps;
    if (res->best_valid.n == 0) rc = sc_evaluate(model, valid, 4096, &res->best_valid, err);
    res->samples_per_s = train_time > 0 ? (double)train_samples / train_time : 0;
done:
    if (log) fclose(log);
    sc_free(order);
    sc_free(logits);
    sc_free(dlogits);
    sc_batch_free(&b);
    if (best) sc_model_free(best);
    if (opt) sc_optim_free(opt);
    return rc;
}
