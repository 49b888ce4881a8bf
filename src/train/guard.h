/* The guard of the LLM methods: does a model that adds a language model's
 * knowledge beat the plain backbone on validation by more than validation
 * noise? (../shared/DESIGN.md, "Never worse than the plain backbone by
 * construction".) ELEC asks it of its teacher and of its distilled network,
 * MSD of each semantic level; a "no" means the plain backbone is used.
 *
 * The noise is measured, not assumed: the validation split is cut into
 * SC_GUARD_BLOCKS contiguous blocks (a time split keeps rows in time order,
 * so a block is a period); the paired AUC difference of the two models on
 * each block gives a standard error of the difference. A candidate passes
 * when its AUC on the whole split beats the plain backbone's by more than
 * `z` standard errors (z = 1 by default: a gain the size of its own noise is
 * not taken). Identical predictions never pass. */
#ifndef SC_TRAIN_GUARD_H
#define SC_TRAIN_GUARD_H

#include <stdint.h>

#include "base/error.h"

#define SC_GUARD_BLOCKS 10
#define SC_GUARD_Z 1.0

typedef struct sc_guard_verdict {
    double auc_candidate, auc_base; /* on the whole split */
    double diff, se;                /* auc_candidate - auc_base; standard error of it (blocks) */
    int pass;                       /* diff > z * se and diff > 0 */
} sc_guard_verdict;

/* label (n), the two models' probabilities p_cand, p_base (n). A block with
 * one class only is left out of the standard error; with fewer than two
 * usable blocks se is the whole difference (nothing passes at z >= 1). */
int sc_guard_compare(const float *label, const float *p_cand, const float *p_base, int64_t n, double z,
                     sc_guard_verdict *v, sc_error *err);

#endif
