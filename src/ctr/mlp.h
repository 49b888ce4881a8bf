/* A small multi-layer perceptron with its own parameters: Linear layers with
 * ReLU between them (and optionally after the last). ELEC's transformation
 * MLP, its prediction layer and its representation projection are MLPs; so
 * are MSD's feature adaptors.
 *
 * Dimension letters: B batch, dims[0] input, dims[L] output (L layers). */
#ifndef SC_CTR_MLP_H
#define SC_CTR_MLP_H

#include <stdint.h>

#include "base/error.h"
#include "ctr/model.h"

typedef struct sc_mlp {
    char name[32];
    int n_layers;                   /* L */
    int dims[SC_MAX_LAYERS + 1];    /* dims[0] input ... dims[L] output */
    int relu_last;                  /* ReLU after the last layer too */
    sc_param params[2 * SC_MAX_LAYERS]; /* weight (dims[l+1], dims[l]), bias (dims[l+1]) per layer */
    float *weights, *grads;         /* one allocation each; params point into them */
    int cap;                        /* batch capacity of the activations */
    float *acts[SC_MAX_LAYERS + 1]; /* acts[l+1] = output of layer l (B, dims[l+1]) */
    float *dacts[2];                /* ping-pong gradient buffers (B, max dim) */
    const float *input;             /* the last forward's input, for backward */
    int B;
} sc_mlp;

/* dims has n_layers + 1 entries. Weights Xavier-normal, biases zero, from seed. */
int sc_mlp_create(sc_mlp **out, const char *name, const int *dims, int n_layers, int relu_last, uint64_t seed,
                  sc_error *err);
void sc_mlp_free(sc_mlp *m);

/* out (B, dims[L]) points into the MLP's activations, valid until the next
 * forward. x must stay alive until backward. */
int sc_mlp_forward(sc_mlp *m, const float *x, int B, const float **out, sc_error *err);

/* Gradients of the last forward: zeroes the parameter gradients, then
 * writes them; dx (B, dims[0]) += dL/dx when not NULL. */
void sc_mlp_backward(sc_mlp *m, const float *dout, float *dx);

/* Parameters in file order: "<name>.<l>.weight", "<name>.<l>.bias". */
sc_param *sc_mlp_params(sc_mlp *m, int *n);

#endif
