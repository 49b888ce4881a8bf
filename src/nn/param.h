/* A trainable tensor, shared by the nn optimizers and every model (moved here
 * from ctr/model.h so that nn does not depend on ctr; model.h includes it). */
#ifndef SC_NN_PARAM_H
#define SC_NN_PARAM_H

#include <stdint.h>

/* A trainable tensor. Dense tensors have grad of the same size. Embedding
 * tables are sparse: only the rows touched by the last backward have
 * gradients, listed in rows[0..n_rows_touched) with their gradients in
 * grad (n_rows_touched, cols); the optimizer updates only those rows
 * (lazy sparse update). */
typedef struct sc_param {
    char name[64];      /* "emb.user_id", "dnn.0.weight", ... */
    float *data;        /* (size) = (rows, cols) */
    int64_t size;
    int64_t rows;       /* for embedding tables; 1 row-group otherwise */
    int cols;
    int sparse;         /* 1 for embedding tables */
    int weight_decay;   /* 1 where L2 regularisation applies (embedding tables) */
    float *grad;        /* dense: (size); sparse: (n_rows_touched, cols) */
    int32_t *touched;   /* sparse only: (n_rows_touched) row ids, unique */
    int64_t n_touched;
} sc_param;

#endif
