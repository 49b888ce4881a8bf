/* ROC and precision-recall curves of scored rows, thinned for plotting.
 *
 * The area under the ROC curve is not computed here: the report takes it
 * from train/metrics (sc_metrics_compute, checked against scikit-learn), and
 * the tests hold the trapezoid area of these points equal to it, so the
 * drawn curve and the printed AUC cannot disagree. */
#ifndef SC_REPORT_CURVES_H
#define SC_REPORT_CURVES_H

#include <stdint.h>

#include "base/error.h"

typedef struct sc_curve_point {
    double x, y;
} sc_curve_point;

typedef struct sc_curves {
    sc_curve_point *roc; /* (n_roc) (false positive rate, true positive rate), from (0,0) to (1,1) */
    int n_roc;
    sc_curve_point *pr;  /* (n_pr) (recall, precision), recall ascending */
    int n_pr;
    double average_precision; /* Σ (R_k − R_{k−1}) · P_k over thresholds, scikit-learn's
                                 average_precision_score; NAN without positives */
} sc_curves;

/* The curves of n rows (label in {0,1}, prob the scores; inputs as
 * sc_metrics_compute accepts them), one point per distinct score (tied
 * scores move the curve together, as scikit-learn's roc_curve), thinned to
 * about max_points per curve (>= 16) by keeping a point only once the curve
 * has moved 1/max_points since the last kept one (ROC: along either axis;
 * PR: along recall), plus both ends: a straight stretch loses nothing a plot
 * can show. Without both
 * labels the ROC curve is undefined: n_roc = 0 (the PR curve likewise
 * without positives). Allocates; free with sc_curves_free. */
int sc_curves_compute(const float *label, const float *prob, int64_t n, int max_points, sc_curves *out,
                      sc_error *err);

/* The trapezoid area under the points (x ascending): the ROC AUC of roc. */
double sc_curve_area(const sc_curve_point *p, int n);

void sc_curves_free(sc_curves *c);

#endif
