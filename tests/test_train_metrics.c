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
    free(label);
    free(prob);
    free(group);
}

Test(metrics, matches_sklearn_continuous) { check_fixture("continuous.txt"); }
Test(metrics, matches_sklearn_with_ties_and_clipping) { check_fixture("ties.txt"); }
Test(metrics, matches_sklearn_constant_scores) { check_fixture("constant.txt"); }

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
