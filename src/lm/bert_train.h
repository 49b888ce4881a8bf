/* Training a BERT encoder's top layers with LoRA (Hu et al., arXiv 2106.09685).
 *
 * Each of an adapted layer's six projections (query, key, value, attention
 * output, FFN up, FFN down) becomes
 *     y = x W^T + (alpha / R) (x A^T) B^T
 * with W frozen and A (R, in), B (out, R) trained. B starts at zero, so the
 * adapted encoder starts exactly as the frozen one. Only the top N layers are
 * adapted: the layers below are frozen, so their output for a text never
 * changes and a caller computes it once (sc_bert_forward_layers) and runs only
 * the top layers per training step.
 *
 * llm.c style: stateless layer functions with their _backward twins, and one
 * forward / backward over the adapted layers of a chunk of packed sequences.
 * The forward calls bert.c's inference kernels (GEMM, attention, GELU,
 * LayerNorm) in the same order as sc_bert_forward, so with B = 0 it gives bit
 * for bit what the frozen encoder gives (a test holds it to that). bert.c's
 * inference path itself is untouched.
 *
 * Dimension letters: N tokens of a packed chunk, B sequences, T tokens of one
 * sequence, C channels, NH heads, HS = C / NH head size, F intermediate
 * (feed-forward) size, R rank, K a projection's input size, D its output size. */
#ifndef SC_LM_BERT_TRAIN_H
#define SC_LM_BERT_TRAIN_H

#include <stdint.h>

#include "base/error.h"
#include "lm/bert.h"
#include "lm/encoder.h"

/* The six adapted projections of a layer, in this order everywhere (model files too). */
enum { SC_LORA_Q, SC_LORA_K, SC_LORA_V, SC_LORA_O, SC_LORA_UP, SC_LORA_DOWN, SC_LORA_PROJ };
#define SC_LORA_MAX_LAYERS 48
extern const char *const SC_LORA_PROJ_NAME[SC_LORA_PROJ]; /* "q" "k" "v" "o" "up" "down" */

/* LoRA weights of the top n layers of a model. The caller owns the memory
 * the pointers point to. Index [i][p]: adapted layer first + i, projection p. */
typedef struct sc_lora {
    int rank;                                  /* R */
    int first, n;                              /* adapted layers first .. first + n - 1 = L - 1 */
    float scale;                               /* alpha / R */
    float *A[SC_LORA_MAX_LAYERS][SC_LORA_PROJ];  /* (R, K) */
    float *B[SC_LORA_MAX_LAYERS][SC_LORA_PROJ];  /* (D, R) */
    float *dA[SC_LORA_MAX_LAYERS][SC_LORA_PROJ]; /* gradients, same shapes; NULL when only forward runs */
    float *dB[SC_LORA_MAX_LAYERS][SC_LORA_PROJ];
} sc_lora;

/* K (input) and D (output) of projection p: C -> C, except up C -> F and down F -> C. */
void sc_lora_proj_dims(const sc_bert_config *c, int p, int *K, int *D);

/* ---- stateless layers ---- */

/* LoRA term of one projection: u (N, R) = inp A^T; out (N, D) += scale u B^T.
 * inp rows are ldi floats apart, out rows ldo. u is kept for backward. Each
 * row is computed alone (not by BLAS), so its result does not depend on the
 * other rows of the call. AT, BT: scratch of K * R and R * D floats. */
void sc_lora_forward(float *out, int64_t ldo, float *u, const float *inp, int64_t ldi, const float *A,
                     const float *B, float scale, int64_t N, int K, int D, int R, float *AT, float *BT);
/* Its backward: dB += scale dout^T u; du = scale dout B; dA += du^T inp; and
 * dinp (rows ldi apart) += du A when dinp is not NULL. du (N, R) is scratch. */
void sc_lora_backward(float *dinp, float *dA, float *dB, float *du, const float *dout, int64_t ldo,
                      const float *inp, int64_t ldi, const float *u, const float *A, const float *B, float scale,
                      int64_t N, int K, int D, int R);
/* The frozen projection's input gradient: dinp (N, K) += dout (N, D) W, W (D, K). */
void sc_linear_backward_input(float *dinp, int64_t ldi, const float *dout, int64_t ldo, const float *W, int64_t N,
                              int K, int D);
/* LayerNorm backward (weight w; no gradient for w and b, they are frozen):
 * dinp (N, C) = dL/dinp given dout, from the LayerNorm's input inp. */
void sc_layernorm_backward(float *dinp, const float *dout, const float *inp, const float *w, int64_t N, int C,
                           float eps);
/* GELU (erf form) backward: dx[i] = dout[i] * GELU'(x[i]), x the GELU's input. */
void sc_gelu_backward(float *dx, const float *dout, const float *x, int64_t n);
/* Attention backward for one (sequence, head) of sc_attention_head: given
 * datt (rows ldd apart), writes dq, dk, dv (rows ld apart, the layout of q,
 * k, v; overwritten). The softmax is recomputed from q and k (with bert.c's
 * exp); scratch: sc_attention_head_backward_scratch(T, HS) floats. */
int64_t sc_attention_head_backward_scratch(int T, int HS);
void sc_attention_head_backward(float *dq, float *dk, float *dv, const float *datt, int64_t ldd, const float *q,
                                const float *k, const float *v, const float *bq, const float *bk, const float *bv,
                                int T, int HS, int64_t ld, float *scratch);
/* Pooling of one sequence's T states h (T, C) into out (C) as encoder.c pools
 * (mean, CLS or max; not normalised), and its backward: dh (T, C) = dL/dh. */
void sc_pool_forward(float *out, const float *h, int T, int C, sc_lm_pooling mode);
void sc_pool_backward(float *dh, const float *dout, const float *h, int T, int C, sc_lm_pooling mode);

/* ---- the adapted layers of a chunk ---- */

/* What backward needs of one adapted layer, and its scratch. */
typedef struct sc_bert_top_layer {
    float *x;                  /* (N, C) the layer's input */
    float *qkv;                /* (N, 3C) q, k, v of each token side by side (LoRA in, biases not) */
    float *u[SC_LORA_PROJ];    /* (N, R) inp A^T of each projection */
    float *att;                /* (N, C) attention output, before the output projection */
    float *r1;                 /* (N, C) x + o + bo, the input of LayerNorm 1 */
    float *x1;                 /* (N, C) its output */
    float *h;                  /* (N, F) FFN up + bias, the input of GELU */
    float *g;                  /* (N, F) its output */
    float *r2;                 /* (N, C) x1 + down + bf, the input of LayerNorm 2 */
} sc_bert_top_layer;

typedef struct sc_bert_top {
    int64_t cap;               /* tokens the buffers hold */
    int cap_T, cap_B, n, R;    /* longest sequence, sequences, layers, rank they were sized for */
    sc_bert_top_layer layer[SC_LORA_MAX_LAYERS];
    float *out;                /* (N, C) the last adapted layer's output */
    float *d_c[3], *d_f, *d_qkv, *d_u; /* backward scratch: (N, C) x 3, (N, F), (N, 3C), (N, R) */
    float *lora_t;             /* (2 max(C, F) R) A and B transposed, for sc_lora_forward */
    int64_t *off;              /* (cap_B + 1) first token of each sequence */
    float *scratch;            /* attention scratch per task */
    int64_t scratch_per;
    int n_tasks;
    float *mem;                /* one allocation for all of the above floats */
} sc_bert_top;

/* Buffers for up to N tokens in B sequences of at most T tokens each through
 * lo->n layers; keeps the larger of what was asked before. n_threads tasks. */
int sc_bert_top_reserve(sc_bert_top *a, const sc_bert_config *c, const sc_lora *lo, int64_t N, int B, int T,
                        int n_threads, sc_error *err);
void sc_bert_top_free(sc_bert_top *a);

/* Forward through layers lo->first .. L - 1 of B packed sequences (len[b]
 * tokens each, N = sum) whose states entering layer lo->first are x0 (N, C).
 * The output states are in a->out (N, C); a keeps what backward needs.
 * OpenBLAS runs with its own thread setting; attention over n_threads tasks. */
int sc_bert_top_forward(const sc_bert *m, const sc_lora *lo, const float *x0, const int *len, int B,
                        sc_bert_top *a, sc_error *err);
/* Backward of the last forward from dout (N, C) = dL/d(a->out), which is used
 * as scratch: lo->dA and lo->dB (not NULL) += the gradients. The gradient of
 * x0 is not computed (the layers below are frozen). */
int sc_bert_top_backward(const sc_bert *m, sc_lora *lo, sc_bert_top *a, float *dout, const int *len, int B,
                         sc_error *err);

#endif
