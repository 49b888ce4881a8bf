/* Llama-family decoder LLM from a GGUF file (SmolLM2, TinyLlama, Llama 3.x):
 * token embedding, RMSNorm, rotary positions (llama.cpp's "norm" rope: the
 * converter already permuted Q/K), grouped-query attention with a KV cache,
 * SwiGLU feed-forward, final norm, output projection (tied to the token
 * embedding when the file has no output.weight). Matrix weights stay in
 * their GGUF type inside the mmapped file and are multiplied on the
 * quantised blocks (lm/qmatmul.h); norm vectors are copied to float. */
#ifndef SC_LM_LLAMA_H
#define SC_LM_LLAMA_H

#include <stdint.h>

#include "base/error.h"
#include "base/util.h"
#include "lm/gguf.h"
#include "lm/qmatmul.h"
#include "text/bpe.h"

typedef struct sc_llama_config {
    int n_vocab;    /* V */
    int dim;        /* C */
    int n_layers;   /* L */
    int n_heads;    /* NH */
    int n_kv_heads; /* NKV */
    int head_dim;   /* HS = C / NH */
    int hidden;     /* F, feed-forward width */
    int rope_dim;   /* rotated dimensions of each head (<= HS) */
    float rope_base;
    float eps;
    int ctx_train;  /* llama.context_length */
} sc_llama_config;

typedef struct sc_llama_layer {
    float *attn_norm;                /* [C] */
    sc_qtensor wq, wk, wv, wo;       /* [NH*HS,C] [NKV*HS,C] [NKV*HS,C] [C,NH*HS], row = output */
    float *ffn_norm;                 /* [C] */
    sc_qtensor w_gate, w_up;         /* [F,C] */
    sc_qtensor w_down;               /* [C,F] */
} sc_llama_layer;

typedef struct sc_llama_weights {
    sc_qtensor tok_embd; /* [V,C]; rows dequantised as tokens need them */
    sc_llama_layer *layers;
    float *out_norm;     /* [C] */
    sc_qtensor output;   /* [V,C]; a copy of tok_embd when tied */
    int tied;
} sc_llama_weights;

typedef struct sc_llama {
    sc_llama_config cfg;
    sc_llama_weights w;
    sc_bpe *tok;       /* tokenizer from the same file */
    int max_ctx;       /* KV cache length */
    int n_past;        /* tokens in the cache */
    float *k_cache, *v_cache; /* [L, max_ctx, NKV*HS] */
    char path[512];
    sc_gguf gguf;      /* the open file: matrix weights point into its map */
    int n_threads;     /* threads of the matmuls and attention */
    sc_pool *pool;
    int qmm_mode;      /* SC_QMM_* for T > 1 (SC_QMM_AUTO) */
} sc_llama;

/* Load a Llama-family GGUF (general.architecture "llama"); max_ctx bounds
 * the KV cache (0: min(2048, context_length)). The file stays mapped until
 * sc_llama_free. Threads: $SEMCTR_THREADS if set, else the online CPUs
 * (at most 8); change with sc_llama_set_threads. */
int sc_llama_load(sc_llama **out, const char *path, int max_ctx, sc_error *err);

/* Run the forward pass on n_threads threads (< 1: 1). Results do not depend
 * on the thread count. SC_ENOMEM when the threads cannot be set up. */
int sc_llama_set_threads(sc_llama *m, int n_threads, sc_error *err);
void sc_llama_free(sc_llama *m);

/* Forget the KV cache (start a new sequence). */
void sc_llama_reset(sc_llama *m);

/* Run n tokens at positions n_past .. n_past+n-1 in one batch, appending
 * them to the KV cache. logits (may be NULL): [V] of the last token.
 * hidden (may be NULL): [n, C] final-normed hidden states. SC_EINVAL for
 * token ids outside the vocabulary or a full cache. */
int sc_llama_forward(sc_llama *m, const int32_t *tokens, int n, float *logits, float *hidden, sc_error *err);

/* Mean-pooled final hidden state of text (tokenised without special tokens,
 * own sequence: resets the cache) into out[C]; a text longer than the KV
 * cache is truncated to its first max_ctx tokens. */
int sc_llama_embed(sc_llama *m, const char *text, float *out, sc_error *err);

/* Greedy generation: tokenise prompt (special tokens parsed), then emit up to
 * max_tokens tokens, stopping at EOS / end-of-turn. The text (no prompt) is
 * returned in *out (sc_free). */
int sc_llama_generate(sc_llama *m, const char *prompt, int max_tokens, char **out, sc_error *err);

#endif
