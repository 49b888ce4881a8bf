/* Scoring a model file on a prepared split: the part of `semctr eval` that
 * `semctr report` needs too (both call these, so a report's AUC is eval's).
 *
 * A model file may hold several networks (ELEC: gain, vanilla, adapter) and
 * an MSD model gets its semantic fields from the file's tables, not from the
 * split: sc_eval_predict hides that difference from its callers. */
#ifndef SC_REPORT_EVALUATE_H
#define SC_REPORT_EVALUATE_H

#include <stdint.h>

#include "data/dataset.h"
#include "train/modelfile.h"

/* Load the model file at path (n_threads threads) into b and pick its
 * network: `network`, or when NULL the file's default (its only network;
 * ELEC's vanilla). *out points into b. On failure b is freed and the message
 * names the path (and the network it lacks). */
int sc_eval_load(sc_model_bundle *b, const char *path, const char *network, int n_threads, sc_model **out,
                 sc_error *err);

/* The predicted probabilities of `model` (a network of b) on every row of ds:
 * *prob (ds->n_rows, allocated with sc_malloc; the caller frees it). An MSD
 * model looks its semantic fields up in the file's tables; ids not in them
 * get zeros, or (encoder_dir not NULL) vectors the small encoder makes from
 * their raw text; *n_unknown (may be NULL) = those ids, 0 for other methods.
 * An empty split is an error. */
int sc_eval_predict(const sc_model_bundle *b, sc_model *model, const sc_dataset *ds, const char *encoder_dir,
                    int n_threads, float **prob, int64_t *n_unknown, sc_error *err);

#endif
