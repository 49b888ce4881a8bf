/* Criteo-shaped synthetic click logs of any size, for scale tests and
 * benchmarks: the Kaggle TSV layout (label, I1..I13 integers, C1..C26
 * 8-hex-digit categoricals; any of them may be empty), category
 * frequencies that follow a power law per field (Zipf-like, exponent ~1)
 * with cardinalities of the real data's order, and a label drawn from a
 * logistic function of hidden per-category weights of a few fields and of
 * three numeric fields, so a model has something to learn (~25% clicks).
 * The same seed gives the same bytes. */
#ifndef SC_DATA_GEN_CRITEO_H
#define SC_DATA_GEN_CRITEO_H

#include <stdint.h>

#include "base/error.h"

/* Write rows lines to path (atomically). *positives (may be NULL) gets the
 * number of label-1 rows. */
int sc_gen_criteo(const char *path, int64_t rows, uint64_t seed, int64_t *positives, sc_error *err);

#endif
