/* Llama-family decoder LLM from a GGUF file (SmolLM2, TinyLlama, Llama 3.x):
 * token embedding, RMSNorm, rotary positions (llama.cpp's "norm" rope: the
 * converter already permuted Q/K), grouped-query attention with a KV cache,
 * SwiGLU feed-forward, final norm, output projection (tied to the token
 * embedding when the file has no output.weight). Weights are dequantised to
 * float at load; GEMMs go through OpenBLAS. */
#ifndef SC_LM_LLAMA_H
#define SC_LM_LLAMA_H

#include <stdint.h>

#include "base/error.h"
#include "lm/gguf.h"
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
    float *attn_norm;        /* [C] */
    float *wq, *wk, *wv, *wo; /* [NH*HS,C] [NKV*HS,C] [NKV*HS,C] [C,NH*HS], row = output */
    float *ffn_norm;         /* [C] */
    float *w_gate, *w_up;    /* [F,C] */
    float *w_down;           /* [C,F] */
} sc_llama_layer;

typedef struct sc_llama_weights {
    float *tok_embd;   /* [V,C] */
    sc_llama_layer *layers;
    float *out_norm;   /* [C] */
    float *output;     /* [V,C]; == tok_embd when tied */
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
} sc_llama;

/* Load a Llama-family GGUF (general.architecture "llama"); max_ctx bounds
 * the KV cache (0: min(2048, context_length)). */
int sc_llama_load(sc_llama **out, const char *path, int max_ctx, sc_error *err);
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

/* ---- tokenizer access (the same declarations as wt-gemma's branch; the
 * implementation at the end of llama.c is a thin wrapper over sc_bpe) ---- */

/* Token ids of text[0..len) (no BOS added); parse_special: control tokens
 * written in the text become their ids. *ids is sc_malloc'ed. */
int sc_llama_tokenize(const sc_llama *m, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                      sc_error *err);
/* Bytes of token id into buf (cap bytes; control tokens give ""); returns
 * the byte count or -1 for an id outside the vocabulary. */
int sc_llama_token_piece(const sc_llama *m, int32_t id, char *buf, size_t cap);
/* Id of an exact token string, -1 if absent. */
int32_t sc_llama_token_find(const sc_llama *m, const char *s);
int32_t sc_llama_eos(const sc_llama *m);
int32_t sc_llama_bos(const sc_llama *m);

/* Greedy generation: tokenise prompt (special tokens parsed), then emit up to
 * max_tokens tokens, stopping at EOS / end-of-turn. The text (no prompt) is
 * returned in *out (sc_free). Defined in lm/generate.c, which also has
 * sampling, stop strings and streaming (sc_generate). */
int sc_llama_generate(sc_llama *m, const char *prompt, int max_tokens, char **out, sc_error *err);

#endif
