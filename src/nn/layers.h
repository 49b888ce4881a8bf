/* Stateless neural-network layers with hand-written backward passes
 * (llm.c style). Every forward function has a `_backward` twin beside it.
 *
 * Conventions:
 * - Dimension letters: B batch, F fields, D embedding size, C input features,
 *   O output features, K cross-network width, A attention width (heads *
 *   per-head size), NH heads, W ids per row of a field, V table rows.
 * - Row-major float buffers. A linear layer's weight is (O, C) as PyTorch's
 *   nn.Linear; an attention projection is (C, A) as DeepCTR-Torch's
 *   InteractingLayer (x @ W).
 * - Backward functions ACCUMULATE (+=) into every gradient buffer they are
 *   given (input gradients and weight gradients alike), so callers zero them
 *   once per step and several consumers of one tensor simply add up. A NULL
 *   gradient pointer means "not needed" and is skipped.
 * - n_threads: per-sample work is split over the batch with sc_parallel_for
 *   into fixed chunks, so results never depend on scheduling; GEMMs go to
 *   OpenBLAS, which uses the thread count set by sc_nn_set_threads.
 * - Inputs are trusted here (sizes were validated by the caller, sc_model);
 *   these are inner kernels. */
#ifndef SC_NN_LAYERS_H
#define SC_NN_LAYERS_H

#include <stdint.h>

#include "base/util.h"

/* Set the number of threads OpenBLAS uses for GEMMs (process-wide). */
void sc_nn_set_threads(int n_threads);

/* ---- GEMM wrapper: C (M,N) = alpha * op(A) op(B) + beta * C, row-major.
 * ta/tb: 0 = as stored, 1 = transposed. lda/ldb/ldc are row strides. */
void sc_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
             const float *Bm, int ldb, float beta, float *C, int ldc);

/* ---- linear: out (B, O) = inp (B, C) @ weight^T (C, O) + bias (O).
 * bias may be NULL. */
void sc_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int O);
/* dinp (B, C) += dout @ weight; dweight (O, C) += dout^T @ inp; dbias (O) += colsum(dout). */
void sc_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int O);

/* ---- inference-only dense layer on pre-packed weights (serving).
 * sc_linear_pack: W (O, C) as nn.Linear, bias (O) or NULL, into packed
 * (sc_linear_packed_floats(C, O) floats, 64-byte aligned): panels of 16
 * outputs, each (C, 16), zero-padded, then the bias padded to a multiple of
 * 16. The model's weights are only read, so any number of threads may use
 * one packed copy at once.
 * sc_linear_packed_forward: per output y = sum_c inp[c] * W[o, c] (fused
 * multiply-adds in c order from 0) + bias[o], then
 *   SC_EPI_NONE: out = y;  SC_EPI_RELU: out = y > 0 ? y : 0;
 *   SC_EPI_CROSS: out = x0 * y + xl (DCNv2's cross layer, x0/xl (B, O) at ldo),
 * the same operations in the same order as OpenBLAS's blocked sgemm kernel
 * on bias-initialised output followed by the separate element-wise pass, so
 * the results are the same bits as sc_linear_forward + sc_relu_forward /
 * sc_cross2_forward (tests/test_serve_shared.c checks it) wherever OpenBLAS
 * runs that kernel: sc_linear_packed_same_as_blas(B, C, O). Below
 * B*C*O = 10^6 OpenBLAS (0.3.x, AVX-512 builds) takes its "small matrix"
 * kernel, which sums along C in 16 lanes and then across them: there the
 * callers keep the BLAS call, so that serving and `predict` agree bit for
 * bit at every batch size. Row strides: ldi for inp, ldo for out, x0, xl. */
enum { SC_EPI_NONE = 0, SC_EPI_RELU = 1, SC_EPI_CROSS = 2 };
int64_t sc_linear_packed_floats(int C, int O);
int sc_linear_packed_same_as_blas(int B, int C, int O);
void sc_linear_pack(float *packed, const float *W, const float *bias, int C, int O);
void sc_linear_packed_forward(float *out, int ldo, const float *inp, int ldi, const float *packed, int B,
                              int C, int O, int epi, const float *x0, const float *xl);

/* ---- the same layer in bfloat16 (serving's opt-in precision "bf16"): the
 * weights and the layer's inputs rounded to bfloat16 (nearest even), their
 * products summed in float by vdpbf16ps (pairs of c at a time), then the
 * float bias and epilogue as above. About twice the multiply rate of float
 * on AVX512_BF16 cores, at bfloat16's 8-bit mantissa: not the same bits as
 * the float path (docs/serve.md gives the measured difference).
 * sc_linear_bf16_available: whether this build has the kernel (compiled for
 * a CPU with AVX512_BF16). scratch: B * ceil(C/2) uint32 (the inputs as
 * bfloat16 pairs). */
int sc_linear_bf16_available(void);
int64_t sc_linear_packed_bf16_floats(int C, int O);
void sc_linear_pack_bf16(float *packed, const float *W, const float *bias, int C, int O);
void sc_linear_packed_bf16_forward(float *out, int ldo, const float *inp, int ldi, uint32_t *scratch,
                                   const float *packed, int B, int C, int O, int epi, const float *x0,
                                   const float *xl);

/* ---- bfloat16 GEMMs for training (train --precision bf16; docs/train.md):
 * C (M, N) = beta * C + op(A) op(B), ta/tb and strides as sc_gemm, with
 * every element of op(A) and op(B) rounded to bfloat16 (nearest even) and
 * the products summed in float: vdpbf16ps over pairs of k, k in order from
 * 0, each element of C summed whole by one thread, so the result does not
 * depend on n_threads (deterministic training). About twice the multiply
 * rate of float on AVX512_BF16 cores; the caller keeps float master weights
 * and float gradients. scratch: sc_gemm_bf16_scratch(M, N, K) 32-bit words,
 * overwritten (the packed operands). Builds without AVX512_BF16 run
 * sc_gemm_bf16_plain: the same rounding, then float sgemm (OpenBLAS) on the
 * rounded copies; tests/test_layers_bf16.c holds the two within 1e-5
 * relative of each other and the pair within bfloat16's bound of float. */
int64_t sc_gemm_bf16_scratch(int M, int N, int K);
void sc_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb,
                  float beta, float *C, int ldc, uint32_t *scratch, int n_threads);
void sc_gemm_bf16_plain(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm,
                        int ldb, float beta, float *C, int ldc, uint32_t *scratch);
/* sc_linear_forward / sc_linear_backward with their GEMMs in bfloat16 (the
 * bias and its gradient in float). scratch: sc_linear_bf16_scratch(B, C, O)
 * words, enough for each of the three GEMMs. */
int64_t sc_linear_bf16_scratch(int B, int C, int O);
void sc_linear_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int B, int C,
                            int O, uint32_t *scratch, int n_threads);
void sc_linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, int B, int C, int O, uint32_t *scratch, int n_threads);

/* ---- column sums: out (O) += sum over rows of x (B, O) (fixed order, deterministic). */
void sc_colsum_acc(float *out, const float *x, int B, int O);

/* ---- ReLU, element-wise over N values; out may alias inp. */
void sc_relu_forward(float *out, const float *inp, int64_t N, int n_threads);
/* dinp += dout * (out > 0). dinp == dout is allowed and masks in place
 * (dinp = dout * (out > 0)). */
void sc_relu_backward(float *dinp, const float *dout, const float *out, int64_t N, int n_threads);

/* ---- sigmoid, element-wise. */
void sc_sigmoid_forward(float *out, const float *inp, int64_t N);
/* dinp += dout * out * (1 - out). */
void sc_sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t N);

/* ---- inverted dropout with rate p in [0, 1): mask (N) gets 0 or 1/(1-p)
 * drawn from rng (sequentially, so deterministic for a seed); out = inp * mask.
 * p == 0 writes a mask of ones. out may alias inp. */
void sc_dropout_forward(float *out, float *mask, const float *inp, int64_t N, float p, sc_rng *rng);
/* dinp += dout * mask. */
void sc_dropout_backward(float *dinp, const float *dout, const float *mask, int64_t N);

/* ---- embedding gather + pooling for one field.
 * ids (B, W): 0 = padding (skipped), 1.. = rows of table (V, D).
 * out row b (D floats at out + b*out_stride) = sum (pool_mean=0) or mean
 * (pool_mean=1, over non-padding ids; all-padding rows give zeros) of the
 * rows. scale (B) receives the factor each row was multiplied by (1, 1/len,
 * or 0 for an all-padding mean row), needed by backward; may be NULL for sum.
 * Ids must be in [0, V); sc_embedding_check_ids verifies that beforehand. */
void sc_embedding_pool_forward(float *out, int out_stride, float *scale, const float *table,
                               const int32_t *ids, int B, int W, int D, int pool_mean);
/* Index of the first id outside [0, V), or -1 when all are valid. */
int64_t sc_embedding_check_ids(const int32_t *ids, int64_t n, int64_t V);

/* ---- numeric field: out row b = values[b] * row (D), as FuxiCTR. */
void sc_embedding_numeric_forward(float *out, int out_stride, const float *row,
                                  const float *values, int B, int D);

/* ---- sparse gradient of one embedding table: only the rows touched in a
 * step, each once, in order of first appearance (deterministic), with
 * duplicates accumulated. Bookkeeping costs O(ids in the batch) per step, not
 * O(V): a per-row stamp says whether a row was seen in the current step. */
typedef struct sc_sparse_rows {
    int64_t V;        /* table rows */
    int64_t *stamp;   /* (V) step in which the row was last touched */
    int32_t *slot;    /* (V) its slot in touched[] for that step */
    int32_t *touched; /* (cap) row ids */
    int64_t n_touched;
    int64_t cap;
    int64_t step;     /* current step id, incremented by sc_sparse_rows_begin */
} sc_sparse_rows;

/* 0 ok, -1 out of memory. */
int sc_sparse_rows_init(sc_sparse_rows *s, int64_t V);
void sc_sparse_rows_free(sc_sparse_rows *s);
/* Start a new step: forget the touched set (O(1)). */
void sc_sparse_rows_begin(sc_sparse_rows *s);
/* Register the non-padding ids of (n) ids; returns 0 or -1 when the touched
 * list would need more than its capacity (call sc_sparse_rows_reserve). */
int sc_sparse_rows_add(sc_sparse_rows *s, const int32_t *ids, int64_t n);
/* Grow the touched list to hold at least cap rows; 0 ok, -1 out of memory. */
int sc_sparse_rows_reserve(sc_sparse_rows *s, int64_t cap);

/* grad (n_touched, D) += for each (b, w) with ids != 0: dout[b] * scale[b]
 * into the slot of the id. dout row b is at dout + b*dout_stride. scale NULL
 * means 1. Rows must have been registered with sc_sparse_rows_add. Runs in
 * batch order: deterministic. */
void sc_embedding_pool_backward(float *grad, const sc_sparse_rows *s, const float *dout,
                                int dout_stride, const float *scale, const int32_t *ids, int B,
                                int W, int D);
/* Numeric field: grad row (D) += sum_b values[b] * dout[b]. */
void sc_embedding_numeric_backward(float *grad_row, const float *dout, int dout_stride,
                                   const float *values, int B, int D);

/* ---- FM second-order interaction per dimension:
 * out (B, D) = 0.5 * ((sum_f v_f)^2 - sum_f v_f^2), inp (B, F, D).
 * The FM logit term is the sum of out over D. */
void sc_fm_forward(float *out, const float *inp, int B, int F, int D, int n_threads);
/* dinp (B, F, D) += dout[b,d] * (sum_f v_f[d] - v_f[d]). */
void sc_fm_backward(float *dinp, const float *dout, const float *inp, int B, int F, int D,
                    int n_threads);

/* ---- DCN cross layer (vector): s = xl . w (B), out = x0 * s + b + xl.
 * x0, xl, out (B, K); w, b (K); s (B) saved for backward. */
void sc_cross_forward(float *out, float *s, const float *x0, const float *xl, const float *w,
                      const float *b, int B, int K, int n_threads);
void sc_cross_backward(float *dx0, float *dxl, float *dw, float *db, const float *dout,
                       const float *s, const float *x0, const float *xl, const float *w, int B,
                       int K, float *scratch_ds, int n_threads);

/* ---- DCNv2 cross layer (matrix): u = xl @ W^T + b (B, K), out = x0 * u + xl.
 * W (K, K) as DeepCTR-Torch's kernel (W @ xl per sample); u saved for backward. */
void sc_cross2_forward(float *out, float *u, const float *x0, const float *xl, const float *W,
                       const float *b, int B, int K, int n_threads);
/* scratch_du (B, K) is overwritten. */
void sc_cross2_backward(float *dx0, float *dxl, float *dW, float *db, const float *dout,
                        const float *u, const float *x0, const float *xl, const float *W, int B,
                        int K, float *scratch_du, int n_threads);
/* The same with the GEMMs in bfloat16 (sc_linear_forward_bf16 /
 * sc_linear_backward_bf16; scratch sc_linear_bf16_scratch(B, K, K) words);
 * scratch NULL: float, as above. */
void sc_cross2_forward_bf16(float *out, float *u, const float *x0, const float *xl, const float *W,
                            const float *b, int B, int K, uint32_t *scratch, int n_threads);
void sc_cross2_backward_bf16(float *dx0, float *dxl, float *dW, float *db, const float *dout, const float *u,
                             const float *x0, const float *xl, const float *W, int B, int K, float *scratch_du,
                             uint32_t *scratch, int n_threads);

/* ---- AutoInt interacting layer (DeepCTR-Torch InteractingLayer):
 * Q = X Wq, Kt = X Wk, V = X Wv (B, F, A), per head h of size A/NH:
 * P = softmax_j(Q_i . K_j [/ sqrt(A/NH) if scaling]) (B, NH, F, F),
 * R_i = sum_j P_ij V_j, out = relu(R + X Wr) (Wr NULL: no residual).
 * X (B, F, C); Wq/Wk/Wv/Wr (C, A). q, k, v, p, out are saved for backward. */
typedef struct sc_att_buffers {
    float *q, *k, *v; /* (B, F, A) */
    float *p;         /* (B, NH, F, F) */
} sc_att_buffers;
void sc_attention_forward(float *out, sc_att_buffers *bufs, const float *X, const float *Wq,
                          const float *Wk, const float *Wv, const float *Wr, int B, int F, int C,
                          int A, int NH, int scaling, int n_threads);
/* scratch: dq, dk, dv (B, F, A) and dz (B, F, A), all overwritten. */
typedef struct sc_att_scratch {
    float *dq, *dk, *dv, *dz;
} sc_att_scratch;
void sc_attention_backward(float *dX, float *dWq, float *dWk, float *dWv, float *dWr,
                           const float *dout, const float *out, const sc_att_buffers *bufs,
                           const float *X, const float *Wq, const float *Wk, const float *Wv,
                           const float *Wr, int B, int F, int C, int A, int NH, int scaling,
                           const sc_att_scratch *scratch, int n_threads);

/* ---- binary cross-entropy with logits, mean over B (numerically stable).
 * Returns the mean loss. */
float sc_bce_logits_forward(const float *logits, const float *labels, int B);
/* dlogits (B) = scale * (sigmoid(z) - y) / B (overwritten, not accumulated). */
void sc_bce_logits_backward(float *dlogits, const float *logits, const float *labels, int B,
                            float scale);

#endif
