/* MSD's integration module: LoRA on the small encoder's top N layers
 * (lm/bert_train.h), trained end to end with the CTR loss (docs/msd.md).
 *
 * The encoder's lower layers stay frozen, so the token states of every text
 * entering the first adapted layer are computed once per run (the base). A
 * training step needs the pooled vectors of the batch's distinct texts; they
 * are computed by the adapted layers under the current LoRA weights, once per
 * weight version. The gradients of the CTR loss with respect to those vectors
 * are summed per text, and every `every` steps (and at the end of an epoch)
 * one backward pass through the adapted layers of the touched texts turns them
 * into the LoRA weights' gradients for one optimiser step. Between two such
 * steps the LoRA weights do not change, so this is exact gradient
 * accumulation: the step's gradient is the sum of the per-step gradients.
 *
 * Dimension letters: U distinct texts, N tokens, C encoder channels (= S, the
 * pooled vector's size), R rank. */
#ifndef SC_METHODS_MSD_LORA_H
#define SC_METHODS_MSD_LORA_H

#include <stdint.h>

#include "base/error.h"
#include "lm/bert_train.h"
#include "lm/textvec.h"
#include "nn/optim.h"
#include "nn/param.h"

/* Settings (sc_msd_config). rank 0 = no LoRA. */
typedef struct sc_msd_lora_config {
    int rank;     /* R (0: off, the default) */
    int layers;   /* N: the top N layers are adapted (default 1) */
    float lr;     /* learning rate of the LoRA weights (default 0.01), decayed with the backbone's */
    int every;    /* training steps per LoRA step (default 100; 1 = every step) */
} sc_msd_lora_config;

/* LoRA's alpha / R: the scale of the low-rank term (alpha = R). */
#define SC_MSD_LORA_SCALE 1.0f

/* ---- the frozen part, once per run ---- */
typedef struct sc_msd_lora_base {
    sc_textvec enc;   /* the encoder: tokenizer, frozen weights (an sc_encoder) */
    int first;        /* the first adapted layer, L - N */
    int64_t U;        /* distinct texts */
    int *len;         /* (U) tokens of text u (truncated to the encoder's max length) */
    int64_t *off;     /* (U + 1) its first row in x0 */
    float *x0;        /* (off[U], C) token states entering layer `first` */
    int max_len;      /* the longest text, in tokens */
    sc_lm_pooling pooling;
} sc_msd_lora_base;

/* Open the BERT-family encoder in encoder_dir and run its first L - n_layers
 * layers over texts[0..U). With cache_path (may be NULL), the states are read
 * from that file when it holds them for this encoder, layer and list of
 * texts, else computed and written there (a cache of another run is
 * replaced). Errors name the encoder and the setting. */
int sc_msd_lora_base_build(sc_msd_lora_base *b, const char *encoder_dir, const char *const *texts, int64_t U,
                           int n_layers, int n_threads, const char *cache_path, sc_error *err);
void sc_msd_lora_base_free(sc_msd_lora_base *b);

/* ---- the training state ---- */
typedef struct sc_msd_lora {
    const sc_msd_lora_base *base; /* borrowed */
    sc_lora lo;                   /* weights and gradients, carved from w and g */
    float *w, *g;                 /* all A and B, their gradients */
    int64_t n_weights;
    sc_param params[SC_LORA_MAX_LAYERS * 2 * SC_LORA_PROJ]; /* "lora.<layer>.<proj>.A|B", layers and projections in order */
    int n_params;
    int S;                        /* C */
    float *vec;                   /* (U, S) pooled vectors under the current weights */
    uint32_t *stamp;              /* (U) the weight version vec[u] was computed under (0: never) */
    uint32_t version;             /* bumped whenever the weights change */
    float *grad;                  /* (U, S) summed dL/dvec of the touched texts */
    int32_t *touched;             /* (U) texts with a gradient since the last LoRA step */
    uint8_t *is_touched;          /* (U) */
    int64_t n_touched;
    sc_bert_top top;              /* the adapted layers' activations for a chunk */
    float *xin, *dout;            /* (chunk tokens, C) */
    int32_t *todo;                /* (U) scratch */
    int n_threads;
} sc_msd_lora;

/* A on each projection uniform in +-1/sqrt(K) from seed, B zero: the adapted
 * encoder starts as the frozen one. */
int sc_msd_lora_create(sc_msd_lora **out, const sc_msd_lora_base *base, int rank, uint64_t seed, int n_threads,
                       sc_error *err);
void sc_msd_lora_free(sc_msd_lora *l);

/* Make vec[u] current for texts u[0..n) (duplicates allowed, negative entries skipped). */
int sc_msd_lora_vectors(sc_msd_lora *l, const int32_t *u, int64_t n, sc_error *err);
/* ... and for every text. */
int sc_msd_lora_all_vectors(sc_msd_lora *l, sc_error *err);
static inline const float *sc_msd_lora_vec(const sc_msd_lora *l, int64_t u) { return l->vec + u * l->S; }
/* grad[u] += g (S floats). */
void sc_msd_lora_add_grad(sc_msd_lora *l, int32_t u, const float *g);
/* One LoRA step: backward through the adapted layers for every touched text,
 * then opt (over l->params) steps with lr; the gradients are cleared and the
 * vectors go stale. Nothing happens when no text was touched. */
int sc_msd_lora_step(sc_msd_lora *l, sc_optim *opt, float lr, sc_error *err);
/* The weights were changed from outside (restored): the vectors go stale. */
void sc_msd_lora_changed(sc_msd_lora *l);

/* Encode texts with the adapted encoder (serving and eval of new entities):
 * out (n, C), pooled as the encoder pools, not normalised. enc: the same
 * BERT-family encoder the LoRA weights were trained on (its activations are
 * used: not thread-safe on one encoder). */
int sc_msd_lora_encode(const sc_lora *lo, sc_encoder *enc, const char *const *texts, int n, float *out,
                       sc_error *err);

#endif
