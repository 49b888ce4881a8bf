/* semctr eval --cold N: metrics on the cold-start slice (rows whose item has
 * at most N interactions in the train split), its row count checked against
 * a count from the raw u.data; the library functions behind it
 * (sc_cold_rows, sc_metrics_on_rows) on hand-made inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "train/metrics.h"
#include "test_cli_util.h"

typedef struct rating {
    int item, rating;
    long ts;
    int idx;
} rating;

static int cmp_ts(const void *a, const void *b) {
    const rating *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->idx - y->idx;
}

/* Rows (and positives) of the split [r0, r1) of u.data in time order whose
 * item occurs at most max times in the first 80% (the train split). */
static void raw_cold_count(int r0, int r1, int max, int *rows, int *pos) {
    const char *data = getenv("SEMCTR_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/ml-100k/u.data", data && *data ? data : "../shared/data");
    FILE *fp = fopen(path, "r");
    cr_assert(fp, "cannot open %s", path);
    rating *r = calloc(100000, sizeof *r);
    int n = 0, user;
    while (n < 100000 && fscanf(fp, "%d %d %d %ld", &user, &r[n].item, &r[n].rating, &r[n].ts) == 4) r[n].idx = n, n++;
    fclose(fp);
    cr_assert_eq(n, 100000);
    qsort(r, (size_t)n, sizeof *r, cmp_ts);
    static int count[4096];
    memset(count, 0, sizeof count);
    for (int i = 0; i < 80000; i++) count[r[i].item]++;
    *rows = *pos = 0;
    for (int i = r0; i < r1; i++)
        if (count[r[i].item] <= max) ++*rows, *pos += r[i].rating >= 4;
    free(r);
}

static char g_dir[64];

/* ml-100k prepared in DIR/data and a logistic regression trained on it (DIR/m). */
static void setup(void) {
    strcpy(g_dir, "/tmp/sc_eval_cold_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", g_dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model lr --out %s/m --epochs 1 --seed 1 --threads 1", g_dir, g_dir),
                 0, "%s", tcli_out());
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(eval_cold_cli, .init = setup, .fini = teardown, .timeout = 300);

Test(eval_cold_cli, slice_rows_match_raw_counts) {
    int rows, pos;
    raw_cold_count(90000, 100000, 5, &rows, &pos);
    cr_assert(rows > 0 && rows < 10000, "%d", rows);
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split test --json --cold 5", g_dir, g_dir), 0, "%s",
                 tcli_out());
    const char *cold = strstr(tcli_out(), "\"cold\"");
    cr_assert(cold, "%s", tcli_out());
    cr_assert_eq(tcli_json_number(cold, "rows"), rows, "%s", tcli_out());
    cr_assert_eq(tcli_json_number(cold, "positives"), pos, "%s", tcli_out());
    cr_assert_eq(tcli_json_number(cold, "max_train_interactions"), 5);
    double auc = tcli_json_number(cold, "auc");
    cr_assert(auc > 0.3 && auc < 0.9, "cold AUC %f", auc);
    cr_assert(tcli_json_number(cold, "logloss") > 0);

    /* N = 0 on the valid split: the items never seen in train */
    raw_cold_count(80000, 90000, 0, &rows, &pos);
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split valid --json --cold 0 --item-field item_id",
                             g_dir, g_dir),
                 0, "%s", tcli_out());
    cr_assert_eq(tcli_json_number(strstr(tcli_out(), "\"cold\""), "rows"), rows, "%s", tcli_out());

    /* a threshold above every count: the slice is the whole split, with the same metrics */
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --json --cold 1000000", g_dir, g_dir), 0, "%s",
                 tcli_out());
    cold = strstr(tcli_out(), "\"cold\"");
    cr_assert_eq(tcli_json_number(cold, "rows"), 10000);
    cr_assert_eq(tcli_json_number(cold, "auc"), tcli_json_number(tcli_out(), "auc"));
    cr_assert_eq(tcli_json_number(cold, "logloss"), tcli_json_number(tcli_out(), "logloss"));

    /* without --json: one line */
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --cold 5", g_dir, g_dir), 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "cold     AUC") && strstr(tcli_out(), "item_id with <= 5 train"), "%s", tcli_out());
}

/* eval's calibration: the reliability diagram covers every row and agrees with ECE, mean_pred and ctr
 * (the metric itself is checked against scikit-learn in test_train_metrics.c). */
Test(eval_cold_cli, calibration_is_reported_and_consistent) {
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split test --json", g_dir, g_dir), 0, "%s",
                 tcli_out());
    const char *out = tcli_out(), *cal = strstr(out, "\"calibration\"");
    cr_assert(cal, "%s", out);
    double n = tcli_json_number(out, "n"), ece = tcli_json_number(out, "ece");
    cr_assert_float_eq(tcli_json_number(out, "ctr"), tcli_json_number(out, "positives") / n, 1e-9);
    double rows = 0, pos = 0, pred = 0, ece_bins = 0;
    const char *p = cal;
    for (int k = 0; k < 10; k++) {
        p = strstr(p, "{\"lo\"");
        cr_assert(p, "bin %d missing: %s", k, cal);
        double r = tcli_json_number(p, "rows");
        if (r > 0) {
            double bp = tcli_json_number(p, "mean_pred"), bc = tcli_json_number(p, "ctr");
            rows += r;
            pos += r * bc;
            pred += r * bp;
            ece_bins += r / n * fabs(bc - bp);
        }
        p++;
    }
    cr_assert_eq(rows, n);
    cr_assert(fabs(pos - tcli_json_number(out, "positives")) < 1e-2, "%f", pos);
    cr_assert(fabs(pred / n - tcli_json_number(out, "mean_pred")) < 1e-5);
    cr_assert(fabs(ece_bins - ece) < 1e-5, "ece %f, from the bins %f", ece, ece_bins);
    cr_assert(ece > 0 && ece < 0.5, "%f", ece);
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data", g_dir, g_dir), 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "ECE      ") && strstr(tcli_out(), "observed CTR"), "%s", tcli_out());
}

Test(eval_cold_cli, bad_item_field_is_an_error_naming_it) {
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --json --cold 5 --item-field nosuch", g_dir, g_dir), 1);
    cr_assert(strstr(tcli_out(), "'nosuch'") && strstr(tcli_out(), "item_id"), "%s", tcli_out());
    cr_assert_null(strstr(tcli_out(), "\"auc\""), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --cold 5 --item-field genres", g_dir, g_dir), 1);
    cr_assert(strstr(tcli_out(), "'genres'") && strstr(tcli_out(), "not categorical"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --item-field item_id", g_dir, g_dir), 2);
    cr_assert(strstr(tcli_out(), "--cold"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --cold -1", g_dir, g_dir), 2, "%s", tcli_out());
}

/* A one-field split of categorical ids (vocabulary V) over n rows. */
static sc_dataset one_field(sc_field_info *fi, const int32_t **col, const int32_t *ids, int64_t n, int64_t V) {
    *fi = (sc_field_info){.name = "item", .kind = SC_FIELD_CATEGORICAL, .width = 1, .vocab_size = V, .share_with = -1};
    *col = ids;
    return (sc_dataset){.n_rows = n, .n_fields = 1, .fields = fi, .ids = col};
}

Test(eval_cold, cold_rows_count_train_interactions_oov_as_zero) {
    /* train: id 2 three times, id 3 once, id 1 (OOV) twice; ids 4, 5 never */
    static const int32_t tr[] = {2, 2, 3, 1, 2, 1}, ev[] = {2, 3, 4, 1, 0, 5, 2};
    sc_field_info f1, f2;
    const int32_t *c1, *c2;
    sc_dataset train = one_field(&f1, &c1, tr, 6, 6), ds = one_field(&f2, &c2, ev, 7, 6);
    uint8_t keep[7];
    int64_t n = -1;
    sc_error err;
    cr_assert_eq(sc_cold_rows(&train, &ds, "item", 1, keep, &n, &err), SC_OK, "%s", err.msg);
    static const uint8_t want1[] = {0, 1, 1, 1, 1, 1, 0};
    cr_assert_arr_eq(keep, want1, 7);
    cr_assert_eq(n, 5);
    cr_assert_eq(sc_cold_rows(&train, &ds, "item", 0, keep, &n, &err), SC_OK);
    cr_assert_eq(n, 4); /* 4, OOV, padding, 5 */
    cr_assert_eq(sc_cold_rows(&train, &ds, "item", 3, keep, &n, &err), SC_OK);
    cr_assert_eq(n, 7);
    cr_assert_eq(sc_cold_rows(&train, &ds, "user", 3, keep, &n, &err), SC_ENOTFOUND);
    cr_assert(strstr(err.msg, "'user'") && strstr(err.msg, "item"), "%s", err.msg);
    f2.vocab_size = 7;
    cr_assert_eq(sc_cold_rows(&train, &ds, "item", 3, keep, &n, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "'item'"), "%s", err.msg);
}

Test(eval_cold, metrics_on_rows_equal_metrics_of_the_subset) {
    static const float lab[] = {1, 0, 1, 0, 1, 0, 0, 1}, prob[] = {.9f, .2f, .4f, .6f, .7f, .1f, .5f, .3f};
    static const int32_t grp[] = {1, 1, 2, 2, 1, 2, 1, 2};
    static const uint8_t keep[] = {1, 0, 1, 1, 0, 1, 1, 0}; /* rows 0, 2, 3, 5, 6 */
    static const float slab[] = {1, 1, 0, 0, 0}, sprob[] = {.9f, .4f, .6f, .1f, .5f};
    static const int32_t sgrp[] = {1, 2, 2, 2, 1};
    sc_metrics a, b;
    sc_error err;
    cr_assert_eq(sc_metrics_on_rows(lab, prob, grp, keep, 8, &a, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(sc_metrics_compute(slab, sprob, sgrp, 5, &b, &err), SC_OK);
    cr_assert_eq(a.n, 5);
    cr_assert_eq(a.n_pos, 2);
    cr_assert_float_eq(a.auc, b.auc, 1e-12);
    cr_assert_float_eq(a.gauc, b.gauc, 1e-12);
    cr_assert_float_eq(a.logloss, b.logloss, 1e-12);
    /* no row kept: not an error, NaN metrics */
    static const uint8_t none[8] = {0};
    cr_assert_eq(sc_metrics_on_rows(lab, prob, grp, none, 8, &a, &err), SC_OK);
    cr_assert(a.n == 0 && isnan(a.auc) && isnan(a.gauc) && isnan(a.logloss));
    /* one class kept: AUC undefined */
    static const uint8_t neg[] = {0, 1, 0, 1, 0, 1, 1, 0};
    cr_assert_eq(sc_metrics_on_rows(lab, prob, NULL, neg, 8, &a, &err), SC_OK);
    cr_assert(a.n == 4 && isnan(a.auc) && a.logloss > 0);
}
