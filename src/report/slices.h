/* Slices of an evaluated split for `semctr report`: cold-start vs warm and
 * activity buckets, of items and of users, by how many rows each row's item
 * (user) has in the train split (train/metrics.h: sc_train_interactions, the
 * count behind `semctr eval --cold` and MSD's and ELEC's cold slices). */
#ifndef SC_REPORT_SLICES_H
#define SC_REPORT_SLICES_H

#include <stdint.h>

#include "data/dataset.h"

typedef struct sc_slice {
    char name[96];   /* "items: cold (<= 5 train rows)" */
    char label[48];  /* the same, short, for a chart's axis: "cold", "6-20" */
    char entity[16]; /* "items" / "users" */
    int64_t lo, hi;  /* the rows whose id has lo..hi train interactions; hi < 0: no upper bound */
    uint8_t *keep;   /* (ds->n_rows) 1 = in the slice; owned */
    int64_t rows;
} sc_slice;

typedef struct sc_slices {
    sc_slice *s; /* (n) owned */
    int n;
} sc_slices;

/* Append to out the slices of ds by `field` (a categorical field of both
 * splits; entity names it in the slices' names: "items"): cold (at most
 * cold_max train interactions), warm (more), then one bucket per range that
 * `edges` (n_edges ascending upper bounds, e.g. 0, 5, 20, 100) cut: 0..e0,
 * e0+1..e1, ..., > e_last. Errors name the field (sc_train_interactions') or
 * the edges (not ascending, negative). */
int sc_slices_add(sc_slices *out, const sc_dataset *train, const sc_dataset *ds, const char *field,
                  const char *entity, int64_t cold_max, const int64_t *edges, int n_edges, sc_error *err);

void sc_slices_free(sc_slices *s);

#endif
