/* Optimizers over sc_param lists: Adam and Adagrad, dense and lazy sparse.
 *
 * Sparse parameters (embedding tables) are updated only on the rows listed
 * in param->touched (TensorFlow LazyAdam style): untouched rows keep their
 * values and their moments. L2 regularisation (weight_decay > 0) is added to
 * the gradient of parameters flagged weight_decay, and for sparse tables only
 * on the touched rows: g += weight_decay * w (so weight_decay = 2 * lambda
 * for a loss term lambda * ||w||^2, as DeepCTR-Torch's l2_reg_embedding).
 *
 * The learning rate is an argument of every step: the training loop owns
 * schedules. The state (moments, accumulators, step count) is enumerable so
 * a checkpoint can save and restore it. */
#ifndef SC_NN_OPTIM_H
#define SC_NN_OPTIM_H

#include <stdint.h>

#include "base/error.h"
#include "nn/param.h"

enum sc_optim_kind { SC_OPTIM_ADAM = 0, SC_OPTIM_ADAGRAD = 1 };

typedef struct sc_optim_config {
    int kind;             /* enum sc_optim_kind */
    float beta1, beta2;   /* Adam, default 0.9, 0.999 (PyTorch) */
    float eps;            /* default 1e-8 (Adam), 1e-10 (Adagrad), as PyTorch */
    float weight_decay;   /* L2 on flagged params, default 0 */
    float initial_accumulator; /* Adagrad, default 0 (PyTorch) */
    int n_threads;        /* threads for dense updates, default 1 */
} sc_optim_config;

void sc_optim_config_default(sc_optim_config *cfg, int kind);

typedef struct sc_optim sc_optim;

/* Create optimizer state for params[0..n) (not owned; they must outlive the
 * optimizer and keep their sizes). State is zero (Adagrad: the initial
 * accumulator). */
int sc_optim_create(sc_optim **out, const sc_optim_config *cfg, sc_param *params, int n_params,
                    sc_error *err);
void sc_optim_free(sc_optim *o);

/* One update with learning rate lr from the gradients now in params. */
int sc_optim_step(sc_optim *o, float lr, sc_error *err);

/* Number of updates done so far (Adam's bias correction uses it). */
int64_t sc_optim_get_step(const sc_optim *o);
void sc_optim_set_step(sc_optim *o, int64_t step);

/* State tensors for checkpoints: i in [0, sc_optim_n_states). name is
 * "<param>.adam_m", "<param>.adam_v" or "<param>.adagrad_sum"; data has size
 * floats (same shape as the parameter). Returns 0, or -1 for a bad i. */
int sc_optim_n_states(const sc_optim *o);
int sc_optim_state(sc_optim *o, int i, const char **name, float **data, int64_t *size);

#endif
