#include "report/curves.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

typedef struct {
    float score;
    float label;
} row;

/* Descending by score: walking the thresholds from the highest down. */
static int cmp_desc(const void *a, const void *b) {
    float x = ((const row *)a)->score, y = ((const row *)b)->score;
    return (x < y) - (x > y);
}

/* Append (x, y) to a curve being thinned: kept when it moved at least step
 * from the last kept point along x or (unless x_only) along y, or when force
 * (an end); else dropped. A ROC curve is monotone in both, so it keeps at
 * most 2 / step + 2 points; precision is not monotone (it jumps about at low
 * recall, over few positives), so a PR curve is thinned along recall alone:
 * at most 1 / step + 2 points. cap (>= 2 / step + 4) is thus never reached;
 * should it be, the last point is replaced rather than memory overrun. */
static void push(sc_curve_point *p, int *n, int cap, double x, double y, double step, int force, int x_only) {
    if (*n > 0 && !force && fabs(x - p[*n - 1].x) < step && (x_only || fabs(y - p[*n - 1].y) < step)) return;
    if (*n > 0 && p[*n - 1].x == x && p[*n - 1].y == y) return;
    if (*n >= cap) (*n)--;
    p[(*n)++] = (sc_curve_point){x, y};
}

int sc_curves_compute(const float *label, const float *prob, int64_t n, int max_points, sc_curves *out,
                      sc_error *err) {
    memset(out, 0, sizeof *out);
    out->average_precision = NAN;
    if (max_points < 16) max_points = 16;
    if (n <= 0) return sc_fail(err, SC_EINVAL, "curves: no rows");
    row *r = sc_malloc((size_t)n * sizeof *r);
    int cap = 2 * max_points + 4;
    out->roc = sc_malloc((size_t)cap * sizeof *out->roc);
    out->pr = sc_malloc((size_t)cap * sizeof *out->pr);
    if (!r || !out->roc || !out->pr) {
        sc_free(r);
        sc_curves_free(out);
        return sc_fail(err, SC_ENOMEM, "curves: out of memory for %lld rows", (long long)n);
    }
    int64_t P = 0;
    for (int64_t i = 0; i < n; i++) {
        r[i] = (row){prob[i], label[i]};
        P += label[i] == 1.0f;
    }
    int64_t N = n - P;
    qsort(r, (size_t)n, sizeof *r, cmp_desc);
    double step = 1.0 / max_points;
    int64_t tp = 0, fp = 0;
    double ap = 0, last_recall = 0;
    if (P > 0 && N > 0) push(out->roc, &out->n_roc, cap, 0, 0, step, 1, 0);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && r[j].score == r[i].score) { /* one threshold: ties move together */
            tp += r[j].label == 1.0f;
            fp += r[j].label != 1.0f;
            j++;
        }
        int last = j == n;
        if (P > 0 && N > 0) push(out->roc, &out->n_roc, cap, (double)fp / N, (double)tp / P, step, last, 0);
        if (P > 0) {
            double recall = (double)tp / P, precision = (double)tp / (double)(tp + fp);
            ap += (recall - last_recall) * precision;
            last_recall = recall;
            push(out->pr, &out->n_pr, cap, recall, precision, step, out->n_pr == 0 || last, 1);
        }
        i = j;
    }
    if (P > 0) out->average_precision = ap;
    sc_free(r);
    return SC_OK;
}

double sc_curve_area(const sc_curve_point *p, int n) {
    double a = 0;
    for (int i = 1; i < n; i++) a += (p[i].x - p[i - 1].x) * 0.5 * (p[i].y + p[i - 1].y);
    return a;
}

void sc_curves_free(sc_curves *c) {
    sc_free(c->roc);
    sc_free(c->pr);
    c->roc = c->pr = NULL;
    c->n_roc = c->n_pr = 0;
}
