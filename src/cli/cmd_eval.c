/* semctr eval: AUC, gAUC, logloss (and RelaImpr against a baseline) of a
 * model file on one split of a prepared dataset, and on its cold-start slice. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "cli/cli.h"
#include "data/schema.h"
#include "methods/msd/msd.h"
#include "report/evaluate.h"
#include "train/metrics.h"
#include "train/modelfile.h"
#include "train/trainer.h"

static const char *USAGE =
    "usage: semctr eval --model FILE --data DIR [--split test] [--network NAME]\n"
    "                   [--baseline FILE] [--cold N [--item-field NAME]] [--json] [--threads N]\n"
    "\n"
    "  --split NAME      train | valid | test (test)\n"
    "  --network NAME    which network of a multi-network model (ELEC: gain | vanilla;\n"
    "                    default: main, or vanilla for ELEC)\n"
    "  --baseline FILE   also evaluate FILE and report RelaImpr against it\n"
    "  --cold N          also the cold-start slice: rows whose item has <= N interactions in\n"
    "                    the train split (DIR/train.scd; unseen items count 0)\n"
    "  --item-field NAME the item field of --cold (item_id)\n"
    "  --json            one JSON object on stdout: auc, gauc, logloss, ece, mean_pred, ctr, calibration\n"
    "                    (a reliability diagram), n, (relaimpr), (cold)\n"
    "  --encoder DIR     MSD: encode new users/items (ids not in the vocabulary) from their raw\n"
    "                    entity text with this small encoder (without: zeros); docs/msd.md\n";

/* Metrics of a network on ds, (keep not NULL) on the rows keep marks, and
 * (bins not NULL) its reliability diagram, SC_CALIB_BINS bins. */
static int evaluate(const sc_model_bundle *b, sc_model *model, const sc_dataset *ds, const char *encoder, int threads,
                    const uint8_t *keep, sc_metrics *m, sc_metrics *m_keep, sc_calib_bin *bins, int64_t *n_unknown,
                    sc_error *err) {
    float *prob = NULL;
    int rc = sc_eval_predict(b, model, ds, encoder, threads, &prob, n_unknown, err);
    if (!rc) rc = sc_metrics_compute(ds->label, prob, ds->group, ds->n_rows, m, err);
    if (!rc && bins) sc_calibration_bins(ds->label, prob, ds->n_rows, SC_CALIB_BINS, bins);
    if (!rc && keep) rc = sc_metrics_on_rows(ds->label, prob, ds->group, keep, ds->n_rows, m_keep, err);
    sc_free(prob);
    return rc;
}

/* The rows of ds whose item has at most max interactions in DIR/train.scd. */
static int cold_rows(const char *data, const sc_dataset *ds, const char *field, long max, uint8_t **keep,
                     sc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train.scd", data);
    sc_dataset train = {0};
    int rc = sc_dataset_open(&train, path, err);
    if (!rc && !(*keep = sc_malloc((size_t)ds->n_rows + 1)))
        rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld rows", (long long)ds->n_rows);
    if (!rc) rc = sc_cold_rows(&train, ds, field, max, *keep, NULL, err);
    if (rc) sc_fail_prefix(err, "--cold: ");
    sc_dataset_close(&train);
    return rc;
}

static double nan_to(double x, double v) { return isnan(x) ? v : x; }

/* Milliseconds per 1,000 rows to score the first 1,000 rows of ds in one
 * batch (median of 7). An MSD model looks its semantic fields up in the
 * file's tables on every pass, as `serve` and `predict` do. */
static int time_scoring(const sc_model_bundle *b, sc_model *model, const sc_dataset *ds, double *ms, sc_error *err) {
    if (strcmp(b->method, "msd")) return sc_time_scoring(model, ds, ms, err);
    int n = ds->n_rows < 1000 ? (int)ds->n_rows : 1000;
    sc_msd_model msd = {0};
    sc_batch batch = {0};
    float *extra = NULL, *out = NULL;
    int64_t *rows = NULL, unknown = 0;
    int rc = sc_msd_model_load(&msd, b, err);
    if (!rc) rc = sc_batch_alloc(&batch, ds->fields, ds->n_fields, n, err);
    if (!rc && (!(extra = sc_malloc((size_t)n * (msd.K ? msd.K * msd.D : 1) * sizeof *extra)) ||
                !(out = sc_malloc((size_t)n * sizeof *out)) || !(rows = sc_malloc((size_t)n * sizeof *rows))))
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
    double t[7];
    for (int i = 0; i < n && !rc; i++) rows[i] = i;
    for (int k = 0; k < 7 && !rc; k++) {
        double t0 = sc_now();
        sc_batch_gather(&batch, ds, rows, n);
        rc = sc_msd_model_extra(&msd, &batch, NULL, NULL, extra, &unknown, err);
        batch.extra = extra;
        if (!rc) rc = sc_model_forward(model, &batch, 0, out, err);
        for (int i = 0; i < n && !rc; i++) out[i] = (float)(1 / (1 + exp(-(double)out[i])));
        t[k] = (sc_now() - t0) * 1e6 / n;
    }
    if (!rc) *ms = sc_median(t, 7);
    batch.extra = NULL;
    sc_batch_free(&batch);
    sc_msd_model_free(&msd);
    sc_free(extra);
    sc_free(out);
    sc_free(rows);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *encoder = NULL, *item_field = NULL;
    long cold = -1;
    const char *model_path = NULL, *data = NULL, *split = "test", *network = NULL, *baseline = NULL;
    int json = 0;
    long threads = sc_default_threads();
    const cli_opt opts[] = {
        CLI_STR("--model", &model_path),
        CLI_STR("--data", &data),
        CLI_STR("--split", &split),
        CLI_STR("--network", &network),
        CLI_STR("--baseline", &baseline),
        CLI_STR("--encoder", &encoder),
        CLI_INT("--threads", &threads, 1, 256),
        CLI_INT("--cold", &cold, 0, INT32_MAX),
        CLI_STR("--item-field", &item_field),
        CLI_FLAG("--json", &json),
    };
    int code = cli_parse("eval", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!model_path || !data) {
        fprintf(stderr, "semctr eval: --model and --data are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    if (item_field && cold < 0) {
        fprintf(stderr, "semctr eval: --item-field needs --cold N\n%s", USAGE);
        return EXIT_USAGE;
    }
    if (!item_field) item_field = "item_id";
    static const char *const SPLITS[] = {"train", "valid", "test", NULL};
    int split_k;
    if (cli_choice("eval", "--split", split, SPLITS, &split_k)) return EXIT_USAGE;
    sc_error err = {0};
    sc_model_bundle bundle = {0}, base_bundle = {0};
    sc_model *model = NULL, *base = NULL;
    sc_dataset ds = {0};
    sc_metrics m, mb, mc = {0};
    uint8_t *keep = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.scd", data, split);
    int rc = sc_eval_load(&bundle, model_path, network, (int)threads, &model, &err);
    if (!rc) rc = sc_dataset_open(&ds, path, &err);
    if (!rc) rc = sc_check_dataset_fields(bundle.schema, &ds, &err);
    if (!rc && cold >= 0) rc = cold_rows(data, &ds, item_field, cold, &keep, &err);
    int64_t unknown = 0;
    sc_calib_bin bins[SC_CALIB_BINS];
    if (!rc) rc = evaluate(&bundle, model, &ds, encoder, (int)threads, keep, &m, &mc, bins, &unknown, &err);
    double ms = 0;
    int is_msd = !strcmp(bundle.method, "msd");
    if (!rc) rc = time_scoring(&bundle, model, &ds, &ms, &err);
    if (!rc && is_msd && unknown)
        sc_info("MSD: %lld user/item ids of the split are not in the model's tables (zeros used)", (long long)unknown);
    if (!rc && baseline) {
        rc = sc_eval_load(&base_bundle, baseline, NULL, (int)threads, &base, &err);
        if (!rc) rc = sc_check_dataset_fields(base_bundle.schema, &ds, &err);
        if (!rc) rc = evaluate(&base_bundle, base, &ds, encoder, (int)threads, NULL, &mb, NULL, NULL, NULL, &err);
    }
    if (!rc) {
        if (json) {
            printf("{\"auc\": %.9f, \"gauc\": %.9f, \"logloss\": %.9f, \"n\": %lld, \"positives\": %lld, "
                   "\"split\": \"%s\", \"score_ms_per_1000\": %.4f",
                   m.auc, nan_to(m.gauc, -1), m.logloss, (long long)m.n, (long long)m.n_pos, split, ms);
            printf(", \"ece\": %.9f, \"mean_pred\": %.9f, \"ctr\": %.9f, \"calibration\": [", m.ece, m.mean_pred, m.ctr);
            for (int k = 0; k < SC_CALIB_BINS; k++)
                printf("%s{\"lo\": %.2f, \"hi\": %.2f, \"rows\": %lld, \"mean_pred\": %.6f, \"ctr\": %.6f}", k ? ", " : "",
                       bins[k].lo, bins[k].hi, (long long)bins[k].n, nan_to(bins[k].mean_pred, -1),
                       nan_to(bins[k].ctr, -1));
            printf("]");
            if (baseline)
                printf(", \"baseline_auc\": %.9f, \"relaimpr\": %.6f", mb.auc, sc_relaimpr(m.auc, mb.auc));
            if (is_msd) printf(", \"msd_unknown_ids\": %lld", (long long)unknown);
            if (keep)
                printf(", \"cold\": {\"auc\": %.9f, \"gauc\": %.9f, \"logloss\": %.9f, \"ece\": %.9f, \"rows\": %lld, "
                       "\"positives\": %lld, \"max_train_interactions\": %ld, \"item_field\": \"%s\"}",
                       nan_to(mc.auc, -1), nan_to(mc.gauc, -1), nan_to(mc.logloss, -1), nan_to(mc.ece, -1),
                       (long long)mc.n, (long long)mc.n_pos, cold, item_field);
            printf("}\n");
        } else {
            printf("%s on %s (%lld rows, %lld positive)\n", model_path, split, (long long)m.n, (long long)m.n_pos);
            printf("  AUC      %.6f\n  gAUC     %.6f  (%lld groups with both labels)\n  logloss  %.6f\n", m.auc,
                   m.gauc, (long long)m.n_groups_used, m.logloss);
            printf("  ECE      %.6f  (mean predicted %.4f, observed CTR %.4f; %d bins)\n", m.ece, m.mean_pred, m.ctr,
                   SC_CALIB_BINS);
            printf("  scoring  %.3f ms per 1,000 rows (one batch, median of 7)\n", ms);
            if (is_msd) printf("  MSD      %lld ids not in the semantic tables (zeros)\n", (long long)unknown);
            if (baseline)
                printf("  RelaImpr %+.3f%%  against %s (AUC %.6f)\n", sc_relaimpr(m.auc, mb.auc), baseline, mb.auc);
            if (keep)
                printf("  cold     AUC %.6f  gAUC %.6f  logloss %.6f  (%lld rows, %lld positive, %s with <= %ld train "
                       "interactions)\n",
                       mc.auc, mc.gauc, mc.logloss, (long long)mc.n, (long long)mc.n_pos, item_field, cold);
        }
    }
    sc_free(keep);
    sc_dataset_close(&ds);
    sc_model_bundle_free(&bundle);
    sc_model_bundle_free(&base_bundle);
    return rc ? cli_fail("eval", &err) : 0;
}
