/* Evaluation metrics of a CTR model on (label, score, group) triples.
 *
 * All three match scikit-learn on the same inputs to 1e-9 (tested against a
 * fixture made with scikit-learn, tests/fixtures/metrics):
 *   auc      = sklearn.metrics.roc_auc_score (tied scores count one half)
 *   logloss  = sklearn.metrics.log_loss, probabilities clipped to
 *              [eps, 1 - eps] with eps = DBL_EPSILON as sklearn does for float64
 *   gauc     = Σ_g n_g · AUC_g / Σ_g n_g over groups (users) whose labels are
 *              not all equal (AUC is undefined there), as in ads practice
 *              (Zhou et al., DIN, 2018).
 * Calibration (ads bid on the predicted probability, so a ranking metric is
 * not enough): ece = expected calibration error over SC_CALIB_BINS equal-width
 * bins, Σ_b (n_b / n) · |mean label_b − mean probability_b|, the bins of
 * sklearn.calibration.calibration_curve(strategy="uniform") (bin b holds
 * (edge_b, edge_b+1], the first also 0; edge_k = k · (1 / bins) as
 * numpy.linspace computes it); mean_pred and ctr compare the predicted with
 * the observed click rate over all rows.
 * RelaImpr (Yan et al. 2014) = ((AUC_model − 0.5) / (AUC_base − 0.5) − 1) · 100. */
#ifndef SC_TRAIN_METRICS_H
#define SC_TRAIN_METRICS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/error.h"
#include "data/dataset.h"

typedef struct sc_metrics {
    double auc;      /* NAN when the labels are all equal */
    double gauc;     /* NAN without groups or without any mixed group */
    double logloss;
    double ece;       /* expected calibration error, SC_CALIB_BINS bins */
    double mean_pred; /* mean predicted probability */
    double ctr;       /* observed positive rate, n_pos / n */
    int64_t n;       /* rows */
    int64_t n_pos;   /* positive rows */
    int64_t n_groups_used; /* groups that entered gAUC */
} sc_metrics;

/* label (n) in {0,1}; prob (n) predicted probabilities; group (n) or NULL.
 * Allocates O(n) scratch; returns SC_ENOMEM or SC_EINVAL (n == 0, label not
 * 0/1, probability outside [0,1] or NaN, naming the row). */
int sc_metrics_compute(const float *label, const float *prob, const int32_t *group, int64_t n,
                       sc_metrics *out, sc_error *err);

double sc_relaimpr(double auc_model, double auc_base);

enum { SC_CALIB_BINS = 10 };

/* One bin of a reliability diagram: rows whose probability falls in (lo, hi]. */
typedef struct sc_calib_bin {
    double lo, hi;
    int64_t n;
    double mean_pred; /* NAN when the bin is empty */
    double ctr;       /* observed positive rate; NAN when empty */
} sc_calib_bin;

/* The reliability diagram of n >= 1 rows in n_bins >= 1 equal-width bins
 * (out: n_bins), binned as sc_metrics' ece; returns the ECE. Inputs must
 * already be valid (sc_metrics_compute checks them). */
double sc_calibration_bins(const float *label, const float *prob, int64_t n, int n_bins, sc_calib_bin *out);

/* o[key] = {"auc", "gauc", "logloss", "ece", "mean_pred", "ctr", "rows"}, an
 * undefined value (NAN: one class, an empty slice) written as -1 as every
 * --json of the CLI does. */
void sc_metrics_json(cJSON *o, const char *key, const sc_metrics *m);

/* Metrics of the rows i < n with keep[i] != 0 (keep NULL: every row). Unlike
 * sc_metrics_compute, no kept row is not an error: out->n = 0 and every
 * metric is NAN. Allocates O(kept rows) scratch. */
int sc_metrics_on_rows(const float *label, const float *prob, const int32_t *group, const uint8_t *keep,
                       int64_t n, sc_metrics *out, sc_error *err);

/* Per row of ds, its id's interactions in train: count[i] (ds->n_rows, out)
 * = the rows of train whose `field` holds the id of row i, 0 for ids 0
 * (padding) and 1 (out of vocabulary). The count behind sc_cold_rows and
 * the activity buckets of `semctr report`; errors as sc_cold_rows'. */
int sc_train_interactions(const sc_dataset *train, const sc_dataset *ds, const char *field, int64_t *count,
                          sc_error *err);

/* The cold-start slice of ds: keep[i] (ds->n_rows, out) = 1 when the id of
 * row i in `field` (by name; a categorical field, one id per row) occurs in
 * at most max_train rows of train, else 0; *n_cold (may be NULL) = rows kept.
 * Ids 0 (padding) and 1 (out of vocabulary: unseen in train) count 0
 * interactions, the definition MSD's report uses (item_freq = interactions
 * per id in the train split). Errors name the field: absent from either
 * split (listing the categorical fields there are), not categorical, or
 * with a different vocabulary size in the two splits. */
int sc_cold_rows(const sc_dataset *train, const sc_dataset *ds, const char *field, int64_t max_train,
                 uint8_t *keep, int64_t *n_cold, sc_error *err);

#endif
