#include "train/metrics.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/* Sorting indices by score: qsort with a context-free comparator needs the
 * keys beside the index, so sort (score, index) pairs. */
typedef struct {
    double score;
    int64_t idx;
} scored;

static int cmp_scored(const void *a, const void *b) {
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x > y) - (x < y);
}

/* Mann-Whitney: AUC = (Σ ranks of positives − P(P+1)/2) / (P·N), with tied
 * scores given their average rank, which is exactly the trapezoid rule over
 * the ROC curve that scikit-learn integrates. */
static double auc_sorted(const scored *s, const float *label, int64_t n) {
    double rank_sum = 0;
    int64_t n_pos = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        int64_t pos_in_tie = 0;
        while (j < n && s[j].score == s[i].score) {
            pos_in_tie += label[s[j].idx] > 0.5f;
            j++;
        }
        double avg_rank = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
        rank_sum += avg_rank * (double)pos_in_tie;
        n_pos += pos_in_tie;
        i = j;
    }
    int64_t n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) return NAN;
    return (rank_sum - 0.5 * (double)n_pos * (double)(n_pos + 1)) / ((double)n_pos * (double)n_neg);
}

typedef struct {
    int32_t group;
    double score;
    int64_t idx;
} grouped;

static int cmp_grouped(const void *a, const void *b) {
    const grouped *x = a, *y = b;
    if (x->group != y->group) return (x->group > y->group) - (x->group < y->group);
    return (x->score > y->score) - (x->score < y->score);
}

double sc_calibration_bins(const float *label, const float *prob, int64_t n, int n_bins, sc_calib_bin *out) {
    const double width = 1.0 / n_bins; /* numpy.linspace(0, 1, n_bins + 1)'s step */
    double *sum_p = sc_calloc((size_t)n_bins * 2, sizeof *sum_p), *sum_y = sum_p + n_bins;
    for (int b = 0; b < n_bins; b++) out[b] = (sc_calib_bin){.lo = b * width, .hi = b + 1 == n_bins ? 1.0 : (b + 1) * width};
    if (!sum_p) return NAN; /* out of memory for 2 · n_bins doubles: no calibration rather than a wrong one */
    for (int64_t i = 0; i < n; i++) {
        double p = prob[i];
        int b = 0; /* numpy.searchsorted(inner edges, p, side="left"): the inner edges strictly below p */
        while (b + 1 < n_bins && (b + 1) * width < p) b++;
        out[b].n++;
        sum_p[b] += p;
        sum_y[b] += label[i];
    }
    double ece = 0;
    for (int b = 0; b < n_bins; b++) {
        out[b].mean_pred = out[b].n ? sum_p[b] / (double)out[b].n : NAN;
        out[b].ctr = out[b].n ? sum_y[b] / (double)out[b].n : NAN;
        if (out[b].n) ece += (double)out[b].n / (double)n * fabs(out[b].ctr - out[b].mean_pred);
    }
    sc_free(sum_p);
    return ece;
}

int sc_metrics_compute(const float *label, const float *prob, const int32_t *group, int64_t n,
                       sc_metrics *out, sc_error *err) {
    out->auc = out->gauc = out->logloss = out->ece = out->mean_pred = out->ctr = NAN;
    out->n = n;
    out->n_pos = 0;
    out->n_groups_used = 0;
    if (n <= 0) return sc_fail(err, SC_EINVAL, "metrics: no rows to evaluate");
    double ll = 0, sum_p = 0;
    const double eps = DBL_EPSILON;
    for (int64_t i = 0; i < n; i++) {
        if (label[i] != 0.0f && label[i] != 1.0f)
            return sc_fail(err, SC_EINVAL, "metrics: label of row %lld is %g, expected 0 or 1",
                           (long long)i, (double)label[i]);
        double p = prob[i];
        if (!(p >= 0.0 && p <= 1.0))
            return sc_fail(err, SC_EINVAL, "metrics: probability of row %lld is %g, outside [0, 1]",
                           (long long)i, p);
        sum_p += p;
        if (p < eps) p = eps;
        if (p > 1 - eps) p = 1 - eps;
        out->n_pos += label[i] == 1.0f;
        ll -= label[i] == 1.0f ? log(p) : log(1 - p);
    }
    out->logloss = ll / (double)n;
    out->mean_pred = sum_p / (double)n;
    out->ctr = (double)out->n_pos / (double)n;
    sc_calib_bin bins[SC_CALIB_BINS];
    out->ece = sc_calibration_bins(label, prob, n, SC_CALIB_BINS, bins);

    scored *s = sc_malloc((size_t)n * sizeof *s);
    if (!s) return sc_fail(err, SC_ENOMEM, "metrics: out of memory for %lld rows", (long long)n);
    for (int64_t i = 0; i < n; i++) s[i] = (scored){prob[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_scored);
    out->auc = auc_sorted(s, label, n);
    sc_free(s);

    if (!group) return SC_OK;
    grouped *g = sc_malloc((size_t)n * sizeof *g);
    scored *tmp = sc_malloc((size_t)n * sizeof *tmp);
    if (!g || !tmp) {
        sc_free(g);
        sc_free(tmp);
        return sc_fail(err, SC_ENOMEM, "metrics: out of memory for %lld rows", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) g[i] = (grouped){group[i], prob[i], i};
    qsort(g, (size_t)n, sizeof *g, cmp_grouped);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && g[j].group == g[i].group) j++;
        int64_t m = j - i;
        for (int64_t k = 0; k < m; k++) tmp[k] = (scored){g[i + k].score, g[i + k].idx};
        double a = auc_sorted(tmp, label, m); /* already sorted by score within the group */
        if (!isnan(a)) {
            num += (double)m * a;
            den += (double)m;
            out->n_groups_used++;
        }
        i = j;
    }
    out->gauc = den > 0 ? num / den : NAN;
    sc_free(g);
    sc_free(tmp);
    return SC_OK;
}

double sc_relaimpr(double auc_model, double auc_base) {
    return ((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0;
}

int sc_metrics_on_rows(const float *label, const float *prob, const int32_t *group, const uint8_t *keep,
                       int64_t n, sc_metrics *out, sc_error *err) {
    int64_t k = 0;
    if (!keep) return sc_metrics_compute(label, prob, group, n, out, err);
    for (int64_t i = 0; i < n; i++) k += keep[i] != 0;
    if (k == 0) {
        *out = (sc_metrics){.auc = NAN, .gauc = NAN, .logloss = NAN, .ece = NAN, .mean_pred = NAN, .ctr = NAN};
        return SC_OK;
    }
    float *lab = sc_malloc((size_t)k * sizeof *lab), *pr = sc_malloc((size_t)k * sizeof *pr);
    int32_t *grp = group ? sc_malloc((size_t)k * sizeof *grp) : NULL;
    int rc = SC_OK;
    if (!lab || !pr || (group && !grp)) {
        rc = sc_fail(err, SC_ENOMEM, "metrics: out of memory for %lld rows", (long long)k);
    } else {
        for (int64_t i = 0, j = 0; i < n; i++) {
            if (!keep[i]) continue;
            lab[j] = label[i];
            pr[j] = prob[i];
            if (grp) grp[j] = group[i];
            j++;
        }
        rc = sc_metrics_compute(lab, pr, grp, k, out, err);
    }
    sc_free(lab);
    sc_free(pr);
    sc_free(grp);
    return rc;
}

/* *f = the index of the categorical field `field` of ds. */
static int find_id_field(const sc_dataset *ds, const char *field, const char *which, int *f, sc_error *err) {
    for (*f = 0; *f < ds->n_fields; (*f)++) {
        if (strcmp(ds->fields[*f].name, field)) continue;
        if (ds->fields[*f].kind != SC_FIELD_CATEGORICAL)
            return sc_fail(err, SC_EINVAL, "cold-start slice: field '%s' is not categorical (one id per row)", field);
        return SC_OK;
    }
    char names[1024] = "";
    size_t len = 0;
    for (int k = 0; k < ds->n_fields && len + 70 < sizeof names; k++)
        if (ds->fields[k].kind == SC_FIELD_CATEGORICAL)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", ds->fields[k].name);
    return sc_fail(err, SC_ENOTFOUND, "cold-start slice: the %s split has no field '%s' (categorical fields: %s)",
                   which, field, names);
}

int sc_train_interactions(const sc_dataset *train, const sc_dataset *ds, const char *field, int64_t *count,
                          sc_error *err) {
    int ft, fd, rc = find_id_field(train, field, "train", &ft, err);
    if (!rc) rc = find_id_field(ds, field, "evaluated", &fd, err);
    if (rc) return rc;
    int64_t V = train->fields[ft].vocab_size;
    if (ds->fields[fd].vocab_size != V)
        return sc_fail(err, SC_EINVAL,
                       "cold-start slice: field '%s' has %lld ids in the train split but %lld in the evaluated one",
                       field, (long long)V, (long long)ds->fields[fd].vocab_size);
    int64_t *per_id = sc_calloc((size_t)V, sizeof *per_id);
    if (!per_id) return sc_fail(err, SC_ENOMEM, "cold-start slice: out of memory for %lld ids", (long long)V);
    const int32_t *tid = train->ids[ft], *did = ds->ids[fd];
    for (int64_t r = 0; r < train->n_rows; r++) per_id[tid[r]]++;
    for (int64_t r = 0; r < ds->n_rows; r++) count[r] = did[r] >= 2 ? per_id[did[r]] : 0;
    sc_free(per_id);
    return SC_OK;
}

int sc_cold_rows(const sc_dataset *train, const sc_dataset *ds, const char *field, int64_t max_train,
                 uint8_t *keep, int64_t *n_cold, sc_error *err) {
    int64_t *count = sc_malloc(((size_t)ds->n_rows + 1) * sizeof *count);
    if (!count) return sc_fail(err, SC_ENOMEM, "cold-start slice: out of memory for %lld rows", (long long)ds->n_rows);
    int rc = sc_train_interactions(train, ds, field, count, err);
    int64_t n = 0;
    for (int64_t r = 0; r < ds->n_rows && !rc; r++) {
        keep[r] = count[r] <= max_train;
        n += keep[r];
    }
    sc_free(count);
    if (!rc && n_cold) *n_cold = n;
    return rc;
}

void sc_metrics_json(cJSON *o, const char *key, const sc_metrics *m) {
    cJSON *j = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(j, "auc", isnan(m->auc) ? -1 : m->auc);
    cJSON_AddNumberToObject(j, "gauc", isnan(m->gauc) ? -1 : m->gauc);
    cJSON_AddNumberToObject(j, "logloss", isnan(m->logloss) ? -1 : m->logloss);
    cJSON_AddNumberToObject(j, "ece", isnan(m->ece) ? -1 : m->ece);
    cJSON_AddNumberToObject(j, "mean_pred", isnan(m->mean_pred) ? -1 : m->mean_pred);
    cJSON_AddNumberToObject(j, "ctr", isnan(m->ctr) ? -1 : m->ctr);
    cJSON_AddNumberToObject(j, "rows", (double)m->n);
}
