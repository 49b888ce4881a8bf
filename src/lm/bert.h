/* BERT-family encoder (BERT, MiniLM, BGE, E5 ...) forward pass, llm.c style:
 * a config, weights carved out of the mmap'ed safetensors file, and
 * activations preallocated for the largest batch seen.
 *
 * Sequences of a batch are packed one after another (no padding): GEMMs run
 * over all N tokens of the batch, attention runs per (sequence, head) over
 * that sequence's own tokens, which is exactly what a padded batch with an
 * attention mask computes for the real tokens. */
#ifndef SC_LM_BERT_H
#define SC_LM_BERT_H

#include <stdint.h>

#include "base/error.h"
#include "lm/safetensors.h"

typedef struct sc_bert_config {
    int vocab_size;   /* V */
    int max_pos;      /* P: max_position_embeddings */
    int type_vocab;   /* token types */
    int hidden;       /* C */
    int layers;       /* L */
    int heads;        /* NH; head size HS = C / NH */
    int intermediate; /* F */
    float ln_eps;
} sc_bert_config;

typedef struct sc_bert_layer {
    const float *wq, *bq, *wk, *bk, *wv, *bv; /* (C, C), (C) */
    const float *wqkv;                        /* (3C, C): wq, wk, wv stacked (a copy) */
    const float *wo, *bo;                     /* (C, C), (C) */
    const float *ln1_w, *ln1_b;               /* (C) */
    const float *wi, *bi;                     /* (F, C), (F) */
    const float *wf, *bf;                     /* (C, F), (C) */
    const float *ln2_w, *ln2_b;               /* (C) */
    /* SC_BERT_BF16 only: wqkv, wo, wi, wf rounded to bfloat16 (same shapes) */
    const uint16_t *wqkv16, *wo16, *wi16, *wf16;
} sc_bert_layer;

typedef struct sc_bert_weights {
    const float *wte;        /* (V, C) */
    const float *wpe;        /* (P, C) */
    const float *wtt;        /* (types, C) */
    const float *ln_w, *ln_b; /* (C) */
    sc_bert_layer *layer;    /* (L) */
} sc_bert_weights;

typedef struct sc_bert_acts {
    int64_t cap_tokens;      /* N the buffers hold */
    float *x;                /* (N, C) residual stream */
    float *qkv;              /* (N, 3C): q, k, v of each token side by side */
    float *att;              /* (N, C) attention output before projection */
    float *h;                /* (N, F) */
} sc_bert_acts;

typedef struct sc_bert {
    sc_bert_config cfg;
    sc_bert_weights w;
    sc_bert_acts a;
    sc_safetensors st;
    void **owned;            /* converted (F16/BF16) tensors to free */
    int n_owned;
    int n_threads;
    int precision;           /* SC_BERT_F32 (default) or SC_BERT_BF16 */
    uint16_t *bf16_weights;  /* SC_BERT_BF16: the layers' bfloat16 copies, one block */
} sc_bert;

/* How the layers' four GEMMs multiply. F32: OpenBLAS sgemm. BF16: weights
 * and activations rounded to bfloat16, products summed in float (the
 * AVX512_BF16 tile kernel of lm/qmatmul.h where the CPU has it, else its
 * plain C twin: same bits, much slower). Attention, LayerNorm, GELU and
 * the residual stream stay float either way. */
enum { SC_BERT_F32 = 0, SC_BERT_BF16 = 1 };

/* Read config.json and model.safetensors of a Hugging Face model directory.
 * Tensor names may carry a "bert." prefix. Errors name the file and the
 * tensor (missing, wrong shape, unsupported dtype) or the config field. */
int sc_bert_load(sc_bert *m, const char *dir, int n_threads, sc_error *err);
void sc_bert_free(sc_bert *m);

/* Switch precision (SC_BERT_F32 / SC_BERT_BF16). BF16 makes bfloat16
 * copies of the layers' matrices (2 bytes per weight; the float ones stay
 * for F32 and for LoRA training); F32 frees them. */
int sc_bert_set_precision(sc_bert *m, int precision, sc_error *err);

/* Forward B packed sequences: ids (N = sum len) token ids, len[b] tokens of
 * sequence b (1 <= len <= max_pos). On return the last hidden state is in
 * m->a.x, (N, C). Fails only on out-of-memory or a bad id/length. */
int sc_bert_forward(sc_bert *m, const int32_t *ids, const int *len, int B, sc_error *err);
/* The same over the embeddings and the first n_layers layers only (0 <= n_layers
 * <= L): m->a.x then holds the hidden states entering layer n_layers (what
 * LoRA training on the top layers caches, lm/bert_train.h). sc_bert_forward is
 * this with n_layers = L. */
int sc_bert_forward_layers(sc_bert *m, const int32_t *ids, const int *len, int B, int n_layers, sc_error *err);

/* ---- stateless layers (exposed for tests) ---- */
/* out = LayerNorm(inp) over C channels for N rows; out may alias inp. */
void sc_layernorm_forward(float *out, const float *inp, const float *w, const float *b, int64_t N, int C, float eps);
/* In-place exact GELU (erf form), x * 0.5 * (1 + erf(x / sqrt 2)). */
void sc_gelu_forward(float *x, int64_t n);
/* Plain and tuned GELU are held equal by a test. */
void sc_gelu_forward_ref(float *x, int64_t n);

/* Attention for one (sequence, head): out = softmax((q+bq)(k+bk)^T / sqrt(HS)) (v+bv)
 * over T tokens; q/k/v rows are ld floats apart, out rows ldo. The tuned kernel needs
 * (T + 31) / 32 * 32 * (HS + 1) + 2 * HS + 16 floats of scratch, the plain one T. */
void sc_attention_head(float *out, const float *q, const float *k, const float *v, const float *bq, const float *bk,
                       const float *bv, int T, int HS, int64_t ld, int64_t ldo, float *scratch);
void sc_attention_head_ref(float *out, const float *q, const float *k, const float *v, const float *bq,
                           const float *bk, const float *bv, int T, int HS, int64_t ld, int64_t ldo, float *scratch);
/* Floats of scratch sc_attention_head needs for T tokens and head size HS. */
int64_t sc_attention_scratch(int T, int HS);
/* The vectorisable exp used by softmax and GELU (exposed for tests). */
float sc_exp_approx(float x);

#endif
