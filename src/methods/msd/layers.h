/* MSD (Multi-level Deep Semantic information infused CTR model via
 * Distillation, arXiv 2412.06860): the layers that sit between a frozen
 * small encoder and a CTR backbone.
 *
 * - Feature adaptor per level (item, user): an sc_mlp (ctr/mlp.h) mapping
 *   the encoder's S-dimensional vector of an entity's text into the CTR
 *   embedding space (D). Its output enters the backbone as one field
 *   (sc_model_config.extra_mode = SC_EXTRA_FIELDS).
 * - Frequency-adaptive history fusion: the adapted vectors s_h of the items
 *   in a user's behaviour sequence are pooled with weights
 *       w_h = sigmoid(a * log(1 + freq_h) + b),   p = sum_h w_h s_h / sum_h w_h
 *   (a, b learned; freq_h = the item's interactions in the train split), so
 *   a rare item's semantics, whose ID embedding is weak, can count for more
 *   (a starts negative). p is one more field.
 *
 * llm.c style: stateless forward/backward functions over caller buffers.
 * Dimension letters: B rows, W history slots per row, D embedding size,
 * S encoder size. */
#ifndef SC_METHODS_MSD_LAYERS_H
#define SC_METHODS_MSD_LAYERS_H

#include <stdint.h>

#include "base/error.h"

/* Initial fusion parameters: w = sigmoid(-0.5 log(1 + f) + 1.5), i.e. about
 * 0.82 for an item seen once and 0.17 for one seen 100 times. */
#define SC_MSD_FUSION_A0 (-0.5f)
#define SC_MSD_FUSION_B0 (1.5f)

/* Fusion forward. V (B, W, D): adapted vectors of the history slots; lf
 * (B, W): log(1 + freq) of each slot, or a negative value for an empty or
 * unknown slot (skipped). ab = {a, b}. Out: P (B, D) the pooled vector (zero
 * for a row with no known slot), w (B, W) the slot weights (0 when skipped)
 * and wsum (B), kept for backward. */
void sc_msd_fuse_forward(float *P, float *w, float *wsum, const float *V, const float *lf, const float *ab, int B,
                         int W, int D);

/* Fusion backward: given dP (B, D), dV (B, W, D) is overwritten with
 * dL/dV and dab[0..1] += dL/da, dL/db. P, w, wsum, V, lf as in forward. */
void sc_msd_fuse_backward(float *dV, float *dab, const float *dP, const float *P, const float *w, const float *wsum,
                          const float *V, const float *lf, int B, int W, int D);

/* Which semantic fields a model has (a bit set), in this order in the extra
 * input: the current item's adapted vector, the user's, and the fused
 * history. K = the number of bits set. */
enum { SC_MSD_ITEM = 1, SC_MSD_USER = 2, SC_MSD_FUSION = 4 };
/* Not a level: "choose the levels on validation" (train/msd.h, sc_msd_train_auto). */
enum { SC_MSD_AUTO = 8 };
int sc_msd_n_fields(int levels);

/* Build the extra input (B, K*D) of B rows from per-row vectors:
 * item_vec[i], user_vec[i] (D floats each; NULL gives zeros), and for the
 * fusion field the history slots hist_vec[i*W + h] (NULL = empty or unknown
 * slot) with their log(1 + freq) hist_lf (ignored where hist_vec is NULL).
 * ab = the fusion's {a, b}. Scratch (allocated here) only for fusion; when
 * keep is not NULL the fusion's V, lf, w, wsum, P stay there for backward
 * (the caller frees them with sc_msd_keep_free). */
typedef struct sc_msd_keep {
    int B, W, D, cap;
    float *V, *lf, *w, *wsum, *P; /* (B, W, D), (B, W), (B, W), (B), (B, D) */
} sc_msd_keep;
int sc_msd_compose(int levels, int D, int B, int W, const float *const *item_vec, const float *const *user_vec,
                   const float *const *hist_vec, const float *hist_lf, const float *ab, float *extra,
                   sc_msd_keep *keep, sc_error *err);
void sc_msd_keep_free(sc_msd_keep *k);

/* The "adaptor version": a 64-bit hash (XXH3) of the adaptor's weights and
 * shape, written next to each adapted-vector table in a model file so that a
 * table is never used with other adaptor weights than the ones that made it. */
uint64_t sc_msd_weights_hash(const float *const *tensors, const int64_t *sizes, int n);

#endif
