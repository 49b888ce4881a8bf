/* The training loop for one CTR network (plain backbones): epochs over the
 * mmap'ed training split in shuffled batches, BCE loss, an optimizer with
 * lazy sparse embedding updates, validation AUC after every epoch,
 * learning-rate decay on plateau, early stopping, the best model written to
 * disk as soon as it is found, and a resumable checkpoint after each epoch.
 *
 * Memory does not grow with the number of rows beyond one int64 per row for
 * the shuffle order: the split stays mmap'ed and batches are gathered. */
#ifndef SC_TRAIN_TRAINER_H
#define SC_TRAIN_TRAINER_H

#include <stdio.h>

#include "ctr/model.h"
#include "dist/dist.h"
#include "nn/optim.h"
#include "data/dataset.h"
#include "train/metrics.h"
#include "train/modelfile.h"

enum sc_optimizer_kind { SC_OPT_ADAM = 0, SC_OPT_ADAGRAD = 1 };

/* What picks the best epoch, decays the learning rate and stops early. */
enum sc_monitor_kind { SC_MONITOR_AUC = 0, SC_MONITOR_LOGLOSS = 1 };

typedef struct sc_train_config {
    int epochs;            /* maximum epochs (default 10) */
    int batch_size;        /* default 256 */
    float lr;              /* initial learning rate (default 1e-3) */
    int optimizer;         /* enum sc_optimizer_kind (default Adam) */
    float l2_embed;        /* L2 on touched embedding rows (default 1e-5, DeepCTR's l2_reg_embedding) */
    int monitor;           /* enum sc_monitor_kind: the validation metric that picks the best epoch (default AUC;
                              logloss when the predicted probability itself matters, e.g. bidding) */
    int patience;          /* stop after this many epochs without a better monitored metric (default 2) */
    float lr_decay;        /* multiply lr by this on a plateau (default 0.1; 1 = never) */
    int lr_patience;       /* epochs without improvement before decaying (default 1) */
    uint64_t seed;         /* weights init, shuffle order, dropout (default 2026) */
    int n_threads;         /* default: all cores */
    int shuffle;           /* default 1 */
    int64_t max_steps;     /* stop after this many batches in all (0 = no limit), for benchmarks */
    const char *log_path;  /* JSON-lines metrics log, or NULL */
    const char *ckpt_path; /* resumable checkpoint, or NULL */
    int resume;            /* continue from ckpt_path when it exists */
    sc_dist *dist;         /* NULL: one process; else data-parallel over its ranks (docs/distributed.md):
                              each rank steps on its slice of every batch, rank 0 validates and writes */
} sc_train_config;

void sc_train_config_default(sc_train_config *c);

/* "auc" or "logloss" (the checkpoint records it). */
const char *sc_monitor_name(int monitor);

typedef struct sc_train_result {
    int epochs_run;
    int best_epoch;        /* 1-based */
    sc_metrics best_valid;
    double samples_per_s;  /* training throughput, excluding evaluation */
    int64_t steps;
    int stopped_early;
    int interrupted;
} sc_train_result;

/* What a training method plugs into the shared loop (sc_fit): how to take
 * one step, how to measure the validation AUC that picks the best epoch, and
 * how to keep, save, checkpoint and restore its networks. The plain trainer
 * (one backbone) and ELEC (a gain and a vanilla network) both run on it. */
typedef struct sc_fit_task {
    void *ctx;
    /* One optimisation step on batch b (its dataset rows are rows[0..b->n)). */
    int (*step)(void *ctx, const sc_batch *b, const int64_t *rows, float lr, double *loss, sc_error *err);
    /* Metrics on the validation split; m->auc or m->logloss (cfg->monitor) picks the best epoch. */
    int (*validate)(void *ctx, sc_metrics *m, sc_error *err);
    /* This epoch is the best so far: snapshot the weights and write the model file. */
    int (*save_best)(void *ctx, sc_error *err);
    /* Put the best weights back into the live networks. from_file: they are
     * on disk only (after a resume), not in memory. */
    int (*restore_best)(void *ctx, int from_file, sc_error *err);
    /* Checkpoint: add weights and optimizer state to w / read them from c. */
    int (*stage_checkpoint)(void *ctx, sc_container_writer *w, cJSON *header, sc_error *err);
    int (*load_checkpoint)(void *ctx, const sc_container *c, sc_error *err);
    /* Data-parallel tasks only (NULL otherwise; such a task is refused over
     * more than one rank): the weights and optimizer every rank keeps
     * identical. Their step sums gradients with sc_dist_optim_step; sc_fit
     * broadcasts rank 0's state at the start and after restore_best, and
     * checks the replicas after every epoch. Only rank 0 calls validate,
     * save_best, restore_best and the checkpoint callbacks. */
    sc_param *params;
    int n_params;
    sc_optim *opt;
    /* 1: every rank calls validate, save_best, restore_best and the
     * checkpoint callbacks, because rank 0 alone does not hold the model
     * (embedding tables sharded over ranks); rank 0 still writes the files.
     * stage_checkpoint gets w = header = NULL on the other ranks, and
     * load_checkpoint c = NULL. */
    int collective;
} sc_fit_task;

/* The shared loop: epochs of shuffled batches of train, validation after
 * each epoch, best epoch saved, LR decay on plateau, early stopping,
 * checkpoint and resume, Ctrl-C. cfg->batch_size rows per step: with
 * cfg->dist, rows over all ranks (each steps on its sc_dist_slice). */
int sc_fit(const sc_dataset *train, const sc_train_config *cfg, const sc_fit_task *task, sc_train_result *res,
           sc_error *err);

/* Rows are visited in blocks of SC_SHUFFLE_BLOCK: the full blocks in a
 * random order (a short last block stays last), the rows within each block
 * shuffled. An epoch thus reads the split block by block and a finished
 * block's pages can leave memory, so a split larger than RAM trains with a
 * bounded resident set; splits up to one block are shuffled as a whole.
 * order (n) receives a permutation of 0..n-1 (identity when !shuffle). */
#define SC_SHUFFLE_BLOCK ((int64_t)1 << 20)
void sc_shuffle_order(int64_t *order, int64_t n, int shuffle, uint64_t seed);

/* Train `model` (already created for the schema's fields) on train, pick the
 * epoch by valid AUC, and write the best weights to out_path as a plain
 * model file with `schema`. On return the model holds the best weights.
 * Ctrl-C / SIGTERM stop after the current batch with SC_EINTERRUPTED; the
 * model file and checkpoint on disk stay the last good ones. */
int sc_train(sc_model *model, const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
             const sc_train_config *cfg, const char *out_path, sc_train_result *res, sc_error *err);

/* Score every row of ds (batches of batch_size); prob (N) out. extra
 * (N, extra_dim): the rows' dense side input for a model that takes one
 * (ELEC's gain network), else NULL. */
int sc_predict_dataset(sc_model *model, const sc_dataset *ds, const float *extra, int batch_size, float *prob,
                       sc_error *err);

/* Median time (ms, of 7) to score the first min(1000, N) rows of ds as one
 * batch, per 1,000 rows: gather + forward + sigmoid, no I/O. */
int sc_time_scoring(sc_model *model, const sc_dataset *ds, double *ms_per_1000, sc_error *err);

/* Score ds and compute AUC, gAUC (by the split's group column), logloss. */
int sc_evaluate(sc_model *model, const sc_dataset *ds, const float *extra, int batch_size, sc_metrics *out,
                sc_error *err);

/* Checkpoint entries of a parameter list: "<prefix>/<param>", and, when o
 * is not NULL, its optimizer state as "<prefix>.optim/<tensor>". Load
 * checks every entry's presence and size. */
int sc_checkpoint_stage(sc_container_writer *w, const char *prefix, sc_param *p, int np, sc_optim *o,
                        sc_error *err);
int sc_checkpoint_load(const sc_container *c, const char *prefix, sc_param *p, int np, sc_optim *o,
                       sc_error *err);

/* An optimizer as cfg says (kind, L2 on embedding rows, threads). */
int sc_train_optim_create(sc_optim **out, const sc_train_config *cfg, sc_param *params, int n, sc_error *err);

#endif
