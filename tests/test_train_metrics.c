/* Metrics against scikit-learn: fixtures made once by
 * tests/fixtures/metrics/gen_metrics_fixture.py (roc_auc_score, log_loss,
 * and per-group AUC weighted by group size). Tolerance 1e-9. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "train/metrics.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures/metrics"
#endif

/* CASE.calib: the reliability diagram of sklearn's calibration_curve (uniform, 10 bins). */
static void check_calibration(const char *name, const float *label, const float *prob, int64_t n, const sc_metrics *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/%.*s.calib", FIXTURE_DIR, (int)(strlen(name) - 4), name);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    double ece, mean_pred, ctr;
    cr_assert_eq(fscanf(f, "%lf %lf %lf", &ece, &mean_pred, &ctr), 3);
    cr_assert(fabs(m->ece - ece) < 1e-9, "%s: ece %.17g vs reference %.17g", name, m->ece, ece);
    cr_assert(fabs(m->mean_pred - mean_pred) < 1e-9, "%s: mean_pred %.17g vs %.17g", name, m->mean_pred, mean_pred);
    cr_assert(fabs(m->ctr - ctr) < 1e-12, "%s: ctr %.17g vs %.17g", name, m->ctr, ctr);
    sc_calib_bin bins[SC_CALIB_BINS];
    cr_assert(fabs(sc_calibration_bins(label, prob, n, SC_CALIB_BINS, bins) - ece) < 1e-9);
    for (int b = 0; b < SC_CALIB_BINS; b++) {
        long long nb;
        char sp[64], sc[64];
        cr_assert_eq(fscanf(f, "%lld %63s %63s", &nb, sp, sc), 3, "%s: bin %d", path, b);
        cr_assert_eq(bins[b].n, nb, "%s: bin %d holds %lld rows, sklearn's %lld", name, b, (long long)bins[b].n, nb);
        if (nb == 0) {
            cr_assert(isnan(bins[b].mean_pred) && isnan(bins[b].ctr));
            continue;
        }
        cr_assert(fabs(bins[b].mean_pred - atof(sp)) < 1e-9, "%s: bin %d mean_pred", name, b);
        cr_assert(fabs(bins[b].ctr - atof(sc)) < 1e-12, "%s: bin %d ctr", name, b);
    }
    fclose(f);
}

static void check_fixture(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    double auc, gauc, ll;
    cr_assert_eq(fscanf(f, "%lf %lf %lf", &auc, &gauc, &ll), 3);
    int64_t cap = 1 << 14, n = 0;
    float *label = malloc(cap * sizeof *label), *prob = malloc(cap * sizeof *prob);
    int32_t *group = malloc(cap * sizeof *group);
    int y, g;
    float p;
    while (fscanf(f, "%d %f %d", &y, &p, &g) == 3) {
        cr_assert(n < cap);
        label[n] = (float)y;
        prob[n] = p;
        group[n] = g;
        n++;
    }
    fclose(f);
    cr_assert_gt(n, 1000);
    sc_metrics m;
    sc_error e;
    cr_assert_eq(sc_metrics_compute(label, prob, group, n, &m, &e), SC_OK, "%s", e.msg);
    cr_assert(fabs(m.auc - auc) < 1e-9, "%s: auc %.17g vs sklearn %.17g", name, m.auc, auc);
    cr_assert(fabs(m.gauc - gauc) < 1e-9, "%s: gauc %.17g vs reference %.17g", name, m.gauc, gauc);
    cr_assert(fabs(m.logloss - ll) < 1e-9, "%s: logloss %.17g vs sklearn %.17g", name, m.logloss, ll);
    check_calibration(name, label, prob, n, &m);
    free(label);
    free(prob);
    free(group);
}

Test(metrics, matches_sklearn_continuous) { check_fixture("continuous.txt"); }
Test(metrics, matches_sklearn_with_ties_and_clipping) { check_fixture("ties.txt"); }
Test(metrics, matches_sklearn_constant_scores) { check_fixture("constant.txt"); }

/* The bin edges: p = 0.1 (as a double) falls in the first bin, like numpy.searchsorted(side="left");
 * 0 and 1 fall in the first and last bins; a perfectly calibrated bin adds nothing. */
Test(metrics, calibration_bin_edges) {
    float label[6] = {0, 1, 0, 1, 1, 0};
    float prob[6] = {0.0f, 0.5f, 0.5f, 1.0f, 0.95f, 0.15f};
    sc_calib_bin b[SC_CALIB_BINS];
    double ece = sc_calibration_bins(label, prob, 6, SC_CALIB_BINS, b);
    cr_assert_eq(b[0].n, 1);
    cr_assert_eq(b[1].n, 1);
    cr_assert_eq(b[4].n, 2); /* 0.5 is in (0.4, 0.5] */
    cr_assert_eq(b[9].n, 2);
    cr_assert_float_eq(b[4].ctr, 0.5, 1e-12);
    /* |0 - 0| + |0 - 0.15| + 2·|0.5 - 0.5| + 2·|1 - 0.975|, over 6 rows */
    cr_assert(fabs(ece - (0.15f + 2 * (1 - (0.95f + 1.0f) / 2)) / 6) < 1e-7, "ece %.9g", ece);
    float edge_label[1] = {1};
    double x = 0.1;
    float edge_prob[1] = {(float)x}; /* float 0.1 is 0.100000001 > the double edge 0.1: bin 1 */
    sc_calibration_bins(edge_label, edge_prob, 1, SC_CALIB_BINS, b);
    cr_assert_eq(b[1].n, 1);
}

Test(metrics, perfect_and_inverted_ranking) {
    float label[4] = {0, 0, 1, 1}, good[4] = {0.1f, 0.2f, 0.8f, 0.9f}, bad[4] = {0.9f, 0.8f, 0.2f, 0.1f};
    sc_metrics m;
    cr_assert_eq(sc_metrics_compute(label, good, NULL, 4, &m, NULL), SC_OK);
    cr_assert_float_eq(m.auc, 1.0, 1e-12);
    cr_assert(isnan(m.gauc));
    cr_assert_eq(sc_metrics_compute(label, bad, NULL, 4, &m, NULL), SC_OK);
    cr_assert_float_eq(m.auc, 0.0, 1e-12);
}

Test(metrics, one_class_gives_nan_auc) {
    float label[3] = {1, 1, 1}, p[3] = {0.1f, 0.5f, 0.9f};
    sc_metrics m;
    cr_assert_eq(sc_metrics_compute(label, p, NULL, 3, &m, NULL), SC_OK);
    cr_assert(isnan(m.auc));
}

Test(metrics, bad_inputs_are_named) {
    float label[2] = {0, 2}, p[2] = {0.1f, 0.2f};
    sc_metrics m;
    sc_error e;
    cr_assert_eq(sc_metrics_compute(label, p, NULL, 2, &m, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "row 1"), "%s", e.msg);
    label[1] = 1;
    p[0] = NAN;
    cr_assert_eq(sc_metrics_compute(label, p, NULL, 2, &m, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "row 0"), "%s", e.msg);
    cr_assert_eq(sc_metrics_compute(label, p, NULL, 0, &m, &e), SC_EINVAL);
}

Test(metrics, relaimpr) {
    cr_assert_float_eq(sc_relaimpr(0.8, 0.75), 20.0, 1e-9);
    cr_assert_float_eq(sc_relaimpr(0.75, 0.75), 0.0, 1e-12);
}
