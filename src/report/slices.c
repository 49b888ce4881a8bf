#include "report/slices.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "train/metrics.h"

/* One slice more, rows of count in [lo, hi] (hi < 0: unbounded). */
static int add(sc_slices *out, const int64_t *count, int64_t n, const char *entity, const char *what, int64_t lo,
               int64_t hi, sc_error *err) {
    sc_slice *grown = sc_realloc(out->s, (size_t)(out->n + 1) * sizeof *grown);
    if (!grown) return sc_fail(err, SC_ENOMEM, "slices: out of memory");
    out->s = grown;
    sc_slice *s = &out->s[out->n];
    memset(s, 0, sizeof *s);
    if (!(s->keep = sc_malloc((size_t)n + 1))) return sc_fail(err, SC_ENOMEM, "slices: out of memory for %lld rows",
                                                               (long long)n);
    out->n++;
    snprintf(s->entity, sizeof s->entity, "%s", entity);
    s->lo = lo;
    s->hi = hi;
    char range[48];
    if (hi < 0) snprintf(range, sizeof range, "> %lld", (long long)lo - 1);
    else if (lo == hi) snprintf(range, sizeof range, "%lld", (long long)lo);
    else if (lo == 0) snprintf(range, sizeof range, "<= %lld", (long long)hi);
    else snprintf(range, sizeof range, "%lld-%lld", (long long)lo, (long long)hi);
    snprintf(s->label, sizeof s->label, "%s", *what ? what : range);
    snprintf(s->name, sizeof s->name, "%s: %s%s%s train rows%s", entity, what, *what ? " (" : "", range,
             *what ? ")" : "");
    for (int64_t r = 0; r < n; r++) {
        s->keep[r] = count[r] >= lo && (hi < 0 || count[r] <= hi);
        s->rows += s->keep[r];
    }
    return SC_OK;
}

int sc_slices_add(sc_slices *out, const sc_dataset *train, const sc_dataset *ds, const char *field,
                  const char *entity, int64_t cold_max, const int64_t *edges, int n_edges, sc_error *err) {
    for (int k = 0; k < n_edges; k++)
        if (edges[k] < 0 || (k > 0 && edges[k] <= edges[k - 1]))
            return sc_fail(err, SC_EINVAL, "activity buckets: the edges must be ascending counts >= 0 (edge %d is %lld)",
                           k + 1, (long long)edges[k]);
    int64_t *count = sc_malloc(((size_t)ds->n_rows + 1) * sizeof *count);
    if (!count) return sc_fail(err, SC_ENOMEM, "slices: out of memory for %lld rows", (long long)ds->n_rows);
    int rc = sc_train_interactions(train, ds, field, count, err);
    if (!rc) rc = add(out, count, ds->n_rows, entity, "cold", 0, cold_max, err);
    if (!rc) rc = add(out, count, ds->n_rows, entity, "warm", cold_max + 1, -1, err);
    int64_t lo = 0;
    for (int k = 0; k <= n_edges && !rc; k++) {
        int64_t hi = k < n_edges ? edges[k] : -1;
        rc = add(out, count, ds->n_rows, entity, "", lo, hi, err);
        if (k < n_edges) lo = edges[k] + 1;
    }
    sc_free(count);
    return rc;
}

void sc_slices_free(sc_slices *s) {
    for (int i = 0; i < s->n; i++) sc_free(s->s[i].keep);
    sc_free(s->s);
    s->s = NULL;
    s->n = 0;
}
