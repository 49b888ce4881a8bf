/* A CTR model: one shared feature-embedding layer and a backbone on top.
 *
 * llm.c style: sc_model holds the configuration, the weights (one allocation,
 * typed pointers into it), their gradients, and the activations of the last
 * forward pass, which backward reuses. Forward and backward are hand-written.
 *
 * Dimension letters: B batch, F fields (+1 when an extra dense field is
 * added, +K with SC_EXTRA_FIELDS), D embedding size, H hidden size. */
#ifndef SC_CTR_MODEL_H
#define SC_CTR_MODEL_H

#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"
#include "nn/param.h"

typedef enum sc_backbone {
    SC_BB_LR = 0,
    SC_BB_FM,
    SC_BB_DNN,
    SC_BB_WIDEDEEP,
    SC_BB_DEEPFM,
    SC_BB_DCN,
    SC_BB_DCNV2,
    SC_BB_AUTOINT,
    SC_BB_COUNT
} sc_backbone;

/* "lr", "fm", "dnn", "widedeep", "deepfm", "dcn", "dcnv2", "autoint" */
const char *sc_backbone_name(sc_backbone b);
int sc_backbone_parse(const char *name, sc_backbone *out); /* 0 ok, -1 unknown */

/* How ELEC's dense side vector enters the network. */
enum sc_extra_mode {
    SC_EXTRA_FIELD = 0,  /* projected to D and added as one more field (FM, cross, attention see it) */
    SC_EXTRA_CONCAT = 1, /* concatenated to the DNN input */
    SC_EXTRA_FIELDS = 2, /* MSD: extra_dim = K * embed_dim, already in the embedding space: K more
                            fields taken as they are (no projection; FM, cross, attention see them) */
};

#define SC_MAX_LAYERS 8

/* Defaults (sc_model_config_default) are DeepCTR-Torch 0.3's defaults for the
 * backbone; see docs/models.md. */
typedef struct sc_model_config {
    sc_backbone backbone;
    int embed_dim;               /* D, default 16 (an argument of feature columns in DeepCTR) */
    int n_hidden;                /* DNN tower depth: 2 (0 for LR and FM) */
    int hidden[SC_MAX_LAYERS];   /* DNN sizes: 256 128; DCN / DCNv2: 128 128 */
    float dropout;               /* DNN dropout rate (after each ReLU), default 0 */
    int n_cross;                 /* DCN / DCNv2 cross layers, default 2 */
    int att_layers;              /* AutoInt interacting layers, default 3 */
    int att_heads;               /* AutoInt heads, default 2 */
    int att_dim;                 /* AutoInt size per head, default D / heads (DeepCTR-Torch
                                    fixes it to that; other values widen the layers) */
    int att_residual;            /* AutoInt residual projection, default 1 */
    int att_scaling;             /* AutoInt scores / sqrt(att_dim), default 0 (DeepCTR-Torch) */
    int extra_dim;               /* size of batch->extra, 0 if none (ELEC gain network) */
    int extra_mode;              /* enum sc_extra_mode (SC_EXTRA_FIELDS: extra_dim a multiple of embed_dim) */
    int n_threads;               /* threads for forward/backward, default all cores */
    int bf16;                    /* training precision: 1 = the DNN and DCNv2 cross layers' GEMMs (forward
                                    and backward) on bfloat16 inputs with float sums (sc_gemm_bf16), float
                                    master weights, gradients and optimizer; 0 = float (default). A run-time
                                    choice, not saved in the model file (serving has its own --precision) */
} sc_model_config;

void sc_model_config_default(sc_model_config *cfg, sc_backbone backbone);

/* sc_param (a trainable tensor: data, grad, sparse touched rows) lives in
 * nn/param.h so the optimizers need not include this header. */

typedef struct sc_model sc_model;

/* Create a model for a dataset's fields with weights initialised from seed
 * (Xavier/Glorot for dense layers, N(0, 1e-4) for embeddings, as DeepCTR). */
int sc_model_create(sc_model **out, const sc_model_config *cfg, const sc_field_info *fields,
                    int n_fields, uint64_t seed, sc_error *err);
void sc_model_free(sc_model *m);
const sc_model_config *sc_model_get_config(const sc_model *m);

/* Forward pass over batch b: logits (B) out. training=1 applies dropout
 * (with the model's RNG) and keeps activations for backward. */
int sc_model_forward(sc_model *m, const sc_batch *b, int training, float *logits, sc_error *err);

/* The final hidden representation of the last forward pass (the input of the
 * output layer; see docs/models.md per backbone): (B, H). H may be 0 (LR). */
const float *sc_model_hidden(const sc_model *m, int *H);

/* Backward pass of the last training forward. dlogits (B): dLoss/dlogit.
 * dhidden (B, H) or NULL: an extra gradient arriving at the final hidden
 * representation (ELEC representation distillation). dextra (B, extra_dim)
 * or NULL: receives dLoss/d(batch->extra). Gradients are overwritten, not
 * accumulated across calls. */
int sc_model_backward(sc_model *m, const sc_batch *b, const float *dlogits, const float *dhidden,
                      float *dextra, sc_error *err);

/* All trainable tensors, in a fixed order (the order of the model file). */
sc_param *sc_model_params(sc_model *m, int *n_params);

/* Dense-layer floating-point operations of one sample's forward pass
 * (2 per multiply-add: DNN, cross, attention, FM, projections); for
 * reporting achieved FLOP/s. Backward costs about twice as much. */
double sc_model_flops_per_sample(const sc_model *m);

/* Copy all weights of src into dst (same config, fields and so shapes; the
 * training loop's "best checkpoint"). Gradients and activations are not
 * copied. */
int sc_model_copy_weights(sc_model *dst, const sc_model *src, sc_error *err);

/* Width H of sc_model_hidden for this model (0 for LR). */
int sc_model_hidden_dim(const sc_model *m);

/* The embedding tables: one per id or numeric field, used also by the
 * fields that share it (share_with); for training that keeps the tables'
 * rows elsewhere (sharded over ranks: train/sharded.c). p_emb, p_lin:
 * indices in sc_model_params, or -1 where the backbone has no such part. */
typedef struct sc_model_table {
    int owner;   /* the field that declares it */
    int numeric; /* one row, scaled by the field's value */
    int64_t rows;
    int p_emb, p_lin;
} sc_model_table;
int sc_model_n_tables(const sc_model *m);
void sc_model_get_table(const sc_model *m, int t, sc_model_table *out);
int sc_model_field_table(const sc_model *m, int f); /* the table field f reads */

/* ---- Serving: one read-only model, any number of forward passes at once.
 * sc_model_pack keeps a copy of the dense layers' weights packed for the
 * inference kernel (sc_linear_packed_forward; DNN layers and DCNv2 cross
 * layers); call it once the weights are final (sc_model_copy_weights into m
 * drops the pack). sc_model_infer then reads m only: its activations live
 * in the caller's workspace (one per concurrent caller, about the
 * activations of cap rows, no weights), and in float (bf16 = 0) it gives
 * the same logits, bit for bit, as sc_model_forward with training = 0. */
/* bf16 = 1 packs the weights in bfloat16 instead (sc_linear_packed_bf16_
 * forward at every batch size: about twice the multiply rate, not the float
 * path's bits; refused where the build has no AVX512_BF16 kernel). */
int sc_model_pack(sc_model *m, int bf16, sc_error *err);
/* Bytes of weights the model holds: its parameters plus the packed copy. */
int64_t sc_model_weight_bytes(const sc_model *m);

typedef struct sc_infer_ws sc_infer_ws;
int sc_infer_ws_create(sc_infer_ws **out, const sc_model *m, int cap, sc_error *err);
void sc_infer_ws_free(sc_infer_ws *ws);
/* Bytes the workspace holds (counted by base/alloc as they are). */
int64_t sc_infer_ws_bytes(const sc_infer_ws *ws);
/* Forward of batch b (any number of rows; a larger batch than the workspace
 * was made for grows it) into logits (B). */
int sc_model_infer(const sc_model *m, sc_infer_ws *ws, const sc_batch *b, float *logits, sc_error *err);

#endif
