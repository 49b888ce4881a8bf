/* ELEC training (Dong, Ouyang, Liu, SIGIR 2025): an adapted LLM, then a
 * pseudo-siamese pair of CTR networks over one backbone — the gain network
 * (tabular fields + the adapted LLM representation) and the vanilla network
 * (tabular fields only) — with the gain network distilled into the vanilla
 * one at the score and representation levels. Only the vanilla network is
 * served (`semctr export --network vanilla`).
 *
 * The LLM vectors of every row come in as sc_elec_vectors (frozen LLM,
 * computed once by methods/elec/text.c and cached in vector stores). */
#ifndef SC_METHODS_ELEC_H
#define SC_METHODS_ELEC_H

#include "methods/elec/distill.h"
#include "ctr/model.h"
#include "data/schema.h"
#include "train/trainer.h"

enum sc_elec_schedule {
    SC_ELEC_JOINT = 0,  /* gain and vanilla trained together; distillation gradients stop at the gain side */
    SC_ELEC_STAGED = 1, /* gain first, then frozen while the vanilla network learns from it */
};

typedef struct sc_elec_config {
    float alpha;        /* weight of the score-level loss (default 1) */
    float beta;         /* weight of the representation-level loss (default 1) */
    float temperature;  /* soft-target temperature of the BCE score loss (default 1) */
    int score_loss;     /* enum sc_kd_score_kind (default SC_KD_BCE) */
    int schedule;       /* enum sc_elec_schedule (default joint) */
    int adapter_hidden; /* transformation MLP hidden size (default 256) */
    int repr_dim;       /* its output: the "high-level representation" (default 64) */
    int adapter_epochs; /* epochs of the adapted LLM (default 10, early stopped) */
    float adapter_lr;   /* its learning rate (default 1e-3) */
    int adapter_tune;   /* 0: the adapted LLM is frozen after its own training (the paper);
                           1: its transformation MLP keeps learning with the gain network's loss */
    int folds;          /* cross-fitting (default 5): the representation of a training row comes from an
                           adapter fitted on the other K-1 folds, so it carries no memory of the row's own
                           label; validation, test and serving use the adapter fitted on all training rows.
                           1 = in-sample (the adapter's own training rows), as in the paper */
    int guard;          /* never worse than the plain backbone (default 1): the plain backbone is trained
                           with the same seed; the gain network is distilled only if its validation AUC
                           beats it, and the served vanilla network is the distilled one only if that
                           beats it too, else the plain backbone's weights */
    const char *item_field; /* the cold-start slice of the test report: rows whose item (this field,
                               default "item_id") has <= cold_max (5) train interactions */
    int cold_max;
} sc_elec_config;

void sc_elec_config_default(sc_elec_config *c);

/* The frozen LLM's vectors of one split: row r's vector is the
 * concatenation over parts p of table[p][index[p][r]] (a part per entity,
 * e.g. user and item, or one part per sample); index -1 gives zeros. */
typedef struct sc_elec_vectors {
    int n_parts;           /* 1 or 2 */
    int part_dim;          /* d of each part */
    int64_t n_rows;
    const int32_t *index[2]; /* (N) */
    const float *table[2];   /* (U_p, part_dim) */
} sc_elec_vectors;

/* Metrics of every ELEC network on one split. */
typedef struct sc_elec_report {
    sc_metrics adapter, gain, vanilla; /* vanilla: the network as trained (before the guard) */
    sc_metrics base, served;           /* the plain backbone (guard on), and the network served */
    /* scoring time of 1,000 rows (one batch, median of 7), milliseconds:
     * the vanilla network; the gain network with the adapted LLM, given the
     * LLM vectors (the language model's own time is measured by the caller) */
    double vanilla_ms_per_1000, gain_ms_per_1000;
} sc_elec_report;

/* Train the adapted LLM, then the pair, with the shared loop (train->cfg:
 * epochs, lr, early stopping, checkpoints, ...). model_cfg is the backbone
 * config of both networks (the gain one gets extra_dim = repr_dim). The best
 * epoch (by the vanilla network's validation AUC; in staged mode each stage
 * by its own network) is written to out_path with networks "gain" and
 * "vanilla", the adapter's weights, and info (ELEC settings, test metrics
 * when test is given). vec[0..2] are train, valid, test (test may be NULL).
 * With ecfg->guard the file's "vanilla" network is the served one: the
 * distilled network, or the plain backbone's weights when the teacher or the
 * distilled network does not beat the plain backbone on validation; info's
 * "guard" object says which and why. */
int sc_elec_train(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                  const sc_dataset *test, const sc_elec_vectors vec[3], const sc_model_config *model_cfg,
                  const sc_train_config *tcfg, const sc_elec_config *ecfg, cJSON *info, const char *out_path,
                  sc_elec_report *valid_report, sc_elec_report *test_report, sc_error *err);

#endif
