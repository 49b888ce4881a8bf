/* Training with the embedding tables sharded over ranks by id
 * (train --shard-embeddings; docs/distributed.md).
 *
 * Every id table of the model (the embedding of an id field, with its
 * first-order weight where the backbone has one) is split by row: rank
 * id % N holds row id and its optimizer state (dist/shard.h). The dense
 * layers and the one-row tables of numeric fields stay replicated and
 * data-parallel as in sc_train. Each step, a rank looks up the rows its
 * slice of the batch uses, runs the network on a model whose tables hold
 * just those rows, and returns their gradients to the owners, which add
 * them up in rank order and update their rows.
 *
 * What is the same as sc_train: the loop (sc_fit), the optimizer's
 * arithmetic, validation, early stopping, checkpoints and their format (a
 * checkpoint of either resumes in the other), and the model file, which is
 * a plain model file (rank 0 writes each table as its rows arrive from their
 * owners, never holding it whole): eval, export, predict and serve read it
 * as any other. What differs: embedding rows
 * start from their own seeds (seed, parameter, id), so that the start does
 * not depend on the number of ranks and no rank draws a whole table; the
 * network's other weights start from the step model's draws. So 1, 2 or N
 * ranks train the same model (up to the order of float additions), which
 * is not bit for bit the model of sc_train with the same seed. */
#ifndef SC_TRAIN_SHARDED_H
#define SC_TRAIN_SHARDED_H

#include "ctr/model.h"
#include "train/trainer.h"

/* The step model: the network sc_model_create(cfg, fields, ...) would make,
 * except that each id table holds the rows one batch can use,
 * min(vocabulary, batch_size x ids per row), instead of the vocabulary. */
int sc_sharded_model_create(sc_model **out, const sc_model_config *cfg, const sc_field_info *fields, int n_fields,
                            int batch_size, uint64_t seed, sc_error *err);

/* sc_train with the id tables sharded over cfg->dist's ranks (NULL or one
 * rank: one shard holding every row). model: from sc_sharded_model_create
 * with cfg->batch_size and train's fields. On return every rank's model
 * holds the best epoch's dense weights (its tables, the last batch's rows). */
int sc_train_sharded(sc_model *model, const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                     const sc_train_config *cfg, const char *out_path, sc_train_result *res, sc_error *err);

#endif
