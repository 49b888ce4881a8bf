#include "train/guard.h"

#include <math.h>
#include <stddef.h>

#include "train/metrics.h"

int sc_guard_compare(const float *label, const float *p_cand, const float *p_base, int64_t n, double z,
                     sc_guard_verdict *v, sc_error *err) {
    sc_metrics mc, mb;
    int rc = sc_metrics_compute(label, p_cand, NULL, n, &mc, err);
    if (!rc) rc = sc_metrics_compute(label, p_base, NULL, n, &mb, err);
    if (rc) return rc;
    v->auc_candidate = mc.auc;
    v->auc_base = mb.auc;
    v->diff = mc.auc - mb.auc;
    double d[SC_GUARD_BLOCKS], sum = 0, sq = 0;
    int k = 0;
    for (int b = 0; b < SC_GUARD_BLOCKS; b++) {
        int64_t lo = n * b / SC_GUARD_BLOCKS, hi = n * (b + 1) / SC_GUARD_BLOCKS;
        if (hi - lo < 2) continue;
        rc = sc_metrics_compute(label + lo, p_cand + lo, NULL, hi - lo, &mc, err);
        if (!rc) rc = sc_metrics_compute(label + lo, p_base + lo, NULL, hi - lo, &mb, err);
        if (rc) return rc;
        if (isnan(mc.auc) || isnan(mb.auc)) continue;
        d[k] = mc.auc - mb.auc;
        sum += d[k++];
    }
    if (k >= 2) {
        double mean = sum / k;
        for (int i = 0; i < k; i++) sq += (d[i] - mean) * (d[i] - mean);
        v->se = sqrt(sq / (k - 1) / k);
    } else {
        v->se = fabs(v->diff);
    }
    v->pass = !isnan(v->diff) && v->diff > 0 && v->diff > z * v->se;
    return SC_OK;
}
