/* Decoder LLMs from a GGUF file, as llama.cpp runs them:
 *  - "llama" (SmolLM2, TinyLlama, Llama 3.x): token embedding, RMSNorm,
 *    rotary positions (llama.cpp's "norm" rope: the converter already
 *    permuted Q/K), grouped-query attention with a KV cache, SwiGLU
 *    feed-forward, final norm, output projection (tied to the token embedding
 *    when the file has no output.weight).
 *  - "gemma3" (Gemma 3 270M ... 27B): the same skeleton plus the embedding
 *    scaled by sqrt(C), RMSNorm of each head's Q and K, norms after attention
 *    and after the feed-forward (before each residual add), GeGLU (tanh GELU),
 *    NeoX rope, query scaling by 1/sqrt(key_length), sliding-window (local)
 *    layers with their own rope base between global ones, optional final
 *    logit soft-capping. (The converter already stores Gemma's norm weights
 *    as 1 + w.)
 *  - "qwen2" (Qwen2 / Qwen2.5, 0.5B ... 72B): the llama skeleton with biases
 *    on Q, K and V, NeoX rope (base <arch>.rope.freq_base, 1e6 for Qwen2.5)
 *    and a separate or tied output matrix as the file has it.
 * Biases on Q/K/V/O are read wherever a file has them (llama.cpp's llama
 * graph also takes them when present); qwen2 requires the Q/K/V ones.
 * Matrix weights stay in their GGUF type inside the mmapped file and are
 * multiplied on the quantised blocks (lm/qmatmul.h); norm vectors are
 * copied to float.
 * Tokenizer from the same file: byte-level BPE (tokenizer.ggml.model "gpt2")
 * or SentencePiece BPE ("llama"), behind one interface (sc_llama_tokenize...). */
#ifndef SC_LM_LLAMA_H
#define SC_LM_LLAMA_H

#include <stdint.h>

#include "base/error.h"
#include "base/util.h"
#include "lm/gguf.h"
#include "lm/qmatmul.h"
#include "text/bpe.h"
#include "text/spm.h"

typedef enum sc_llama_arch { SC_ARCH_LLAMA = 0, SC_ARCH_GEMMA3 = 1, SC_ARCH_QWEN2 = 2 } sc_llama_arch;

typedef struct sc_llama_config {
    sc_llama_arch arch;
    int n_vocab;    /* V */
    int dim;        /* C */
    int n_layers;   /* L */
    int n_heads;    /* NH */
    int n_kv_heads; /* NKV */
    int head_dim;   /* HS: C / NH, or <arch>.attention.key_length (Gemma: 256 with C = 640) */
    int hidden;     /* F, feed-forward width */
    int rope_dim;   /* rotated dimensions of each head (<= HS) */
    float rope_base;       /* global layers: <arch>.rope.freq_base */
    float rope_base_local; /* sliding-window layers: <arch>.rope.freq_base_swa, default 10000 */
    int rope_neox;         /* 1: rotate pairs (i, i + rope_dim/2) (NeoX: Gemma, Qwen2); 0: (2i, 2i+1) */
    float eps;
    int ctx_train;         /* <arch>.context_length */
    float embd_scale;      /* token embeddings are multiplied by it (Gemma: sqrt(C)) */
    float attn_scale;      /* attention score scale (1/sqrt(HS); Gemma: 1/sqrt(key_length)) */
    int geglu;             /* feed-forward gate: 1 GELU (tanh approximation), 0 SiLU */
    int qk_norm;           /* RMSNorm of each Q/K head (attn_q_norm, attn_k_norm) */
    int post_norms;        /* post_attention_norm, post_ffw_norm before the residual adds */
    int swa_window;        /* sliding window of local layers (0: none): keys at pos - p < window */
    float final_softcap;   /* logits = cap * tanh(logits / cap) when > 0 */
} sc_llama_config;

typedef struct sc_llama_layer {
    float *attn_norm;        /* [C] */
    sc_qtensor wq, wk, wv, wo; /* [NH*HS,C] [NKV*HS,C] [NKV*HS,C] [C,NH*HS], row = output */
    float *bq, *bk, *bv, *bo;  /* [NH*HS] [NKV*HS] [NKV*HS] [C]; NULL where the file has none */
    float *ffn_norm;         /* [C] */
    sc_qtensor w_gate, w_up; /* [F,C] */
    sc_qtensor w_down;       /* [C,F] */
    float *q_norm, *k_norm;  /* [HS], qk_norm only */
    float *post_attn_norm, *post_ffn_norm; /* [C], post_norms only */
    int local;               /* sliding-window attention layer */
} sc_llama_layer;

typedef struct sc_llama_weights {
    sc_qtensor tok_embd; /* [V,C] */
    sc_llama_layer *layers;
    float *out_norm;   /* [C] */
    sc_qtensor output;   /* [V,C]; == tok_embd when tied */
    int tied;
} sc_llama_weights;

struct sc_llama;

/* The keys and values of one token sequence: its KV cache. The model has one
 * of its own (sc_llama_forward); more let several sequences run together
 * (sc_llama_forward_batch). */
/* Element types of a KV cache: float (exact), or fp16 (half the memory,
 * llama.cpp's default; keys and values rounded to nearest even when
 * stored, widened to float when attention reads them). */
enum { SC_KV_F32 = 0, SC_KV_F16 = 1 };

typedef struct sc_llama_kv {
    const struct sc_llama *model; /* the model it was made for */
    int max_ctx;   /* positions it holds */
    int n_past;    /* positions filled */
    int kd;        /* NKV*HS */
    int type;      /* SC_KV_F32: k, v; SC_KV_F16: kh, vh (the other pair NULL) */
    float *k, *v;  /* [L, max_ctx, kd] */
    uint16_t *kh, *vh; /* [L, max_ctx, kd] fp16 bits */
} sc_llama_kv;

typedef struct sc_llama {
    sc_llama_config cfg;
    sc_llama_weights w;
    sc_bpe *bpe;       /* tokenizer from the same file: one of bpe / spm */
    sc_spm *spm;
    sc_llama_kv kv;    /* the model's own sequence (sc_llama_forward) */
    char path[512];
    sc_gguf gguf;      /* the open file: matrix weights point into its map */
    int n_threads;     /* threads of the matmuls and attention */
    sc_pool *pool;
    int qmm_mode;      /* SC_QMM_* for T > 1 (SC_QMM_AUTO) */
    int kv_type;       /* SC_KV_* of the caches made for it (SC_KV_F32) */
} sc_llama;

/* Load a GGUF of general.architecture "llama", "gemma3" or "qwen2"; max_ctx bounds
 * the KV cache (0: min(2048, context_length)). The file stays mapped until
 * sc_llama_free. Threads: $SEMCTR_THREADS if set, else the online CPUs
 * (at most 8); change with sc_llama_set_threads. */
int sc_llama_load(sc_llama **out, const char *path, int max_ctx, sc_error *err);

/* Run the forward pass on n_threads threads (< 1: 1). Results do not depend
 * on the thread count. SC_ENOMEM when the threads cannot be set up. */
int sc_llama_set_threads(sc_llama *m, int n_threads, sc_error *err);
void sc_llama_free(sc_llama *m);

/* The element type of m's KV caches (SC_KV_F32 or SC_KV_F16): the model's
 * own cache is made anew (empty, same length), later sc_llama_kv_new
 * caches take it. SC_EINVAL for another type, SC_ENOMEM (the old cache
 * kept) when the new one cannot be allocated. */
int sc_llama_set_kv_type(sc_llama *m, int type, sc_error *err);
/* "f32" / "f16" -> SC_KV_*; -1 for anything else */
int sc_llama_kv_type_parse(const char *name);
/* Bytes a KV cache of m's type and max_ctx positions allocates (its pages
 * are touched only as far as a sequence reaches). */
size_t sc_llama_kv_bytes(const sc_llama *m, int max_ctx);

/* Forget the model's own KV cache (start a new sequence). */
void sc_llama_reset(sc_llama *m);

/* Run n tokens at positions n_past .. n_past+n-1 in one batch, appending
 * them to the KV cache. logits (may be NULL): [V] of the last token.
 * hidden (may be NULL): [n, C] final-normed hidden states. SC_EINVAL for
 * token ids outside the vocabulary or a full cache. */
int sc_llama_forward(sc_llama *m, const int32_t *tokens, int n, float *logits, float *hidden, sc_error *err);

/* sc_llama_forward on sequence kv instead of the model's own. */
int sc_llama_forward_kv(sc_llama *m, sc_llama_kv *kv, const int32_t *tokens, int n, float *logits, float *hidden,
                        sc_error *err);

/* A KV cache of max_ctx positions (0: as sc_llama_load's default) for m;
 * memory is touched only as far as the sequence grows. Reset by setting
 * n_past = 0. */
int sc_llama_kv_new(const sc_llama *m, int max_ctx, sc_llama_kv **out, sc_error *err);
void sc_llama_kv_free(sc_llama_kv *kv);

/* Tokens of one sequence in a batch (sc_llama_forward_batch). */
typedef struct sc_llama_seg {
    sc_llama_kv *kv;
    const int32_t *tokens;
    int n;            /* >= 1 */
    float *logits;    /* [V] of the last token, or NULL */
} sc_llama_seg;

/* Several sequences in one forward pass: each segment is computed exactly
 * as sc_llama_forward_kv(seg.kv, seg.tokens, seg.n, seg.logits) alone
 * computes it (the same bits), while every weight is read (and decoded)
 * once for the whole batch, and one token of each of 4 sequences goes
 * through a 4-row kernel that unpacks each weight block once: decoding B
 * sequences together costs less than B separate steps (docs/llm.md has the
 * numbers). Segments of the same sequence take its positions
 * in order. SC_EINVAL for a bad token id, a full cache or a cache of another
 * model (then nothing is appended). */
int sc_llama_forward_batch(sc_llama *m, const sc_llama_seg *segs, int n_seg, sc_error *err);

/* Mean-pooled final hidden state of text (tokenised without special tokens,
 * BOS first when the model adds one (sc_llama_add_bos), as llama.cpp's
 * embeddings with mean pooling; own sequence: resets the cache) into out[C];
 * a text longer than the KV cache is truncated to its first max_ctx tokens. */
int sc_llama_embed(sc_llama *m, const char *text, float *out, sc_error *err);

/* Token ids of text with the model's tokenizer; no BOS is added (prepend
 * sc_llama_bos when sc_llama_add_bos says the model wants one). parse_special:
 * control tokens written in the text ("<|im_start|>", "<start_of_turn>")
 * become their ids. *ids is sc_malloc'ed. SC_EINVAL for invalid UTF-8 with a
 * byte-level BPE tokenizer (SentencePiece falls back to byte tokens). */
int sc_llama_tokenize(const sc_llama *m, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                      sc_error *err);
/* Bytes of token id into buf (at most cap, not NUL-terminated): control
 * tokens give 0 bytes. Returns the byte count, or -1 for an id outside the
 * vocabulary. */
int sc_llama_token_piece(const sc_llama *m, int32_t id, char *buf, size_t cap);
/* id of the token whose text is exactly s ("<end_of_turn>"), -1 if absent */
int32_t sc_llama_token_find(const sc_llama *m, const char *s);
/* end-of-sequence / beginning-of-sequence ids from the file, -1 if none */
int32_t sc_llama_eos(const sc_llama *m);
int32_t sc_llama_bos(const sc_llama *m);
/* 1 when the model expects BOS first (tokenizer.ggml.add_bos_token; Gemma) */
int sc_llama_add_bos(const sc_llama *m);
/* sc_llama_tokenize of a whole C string, BOS first when the model wants one
 * and the text does not already start with it: a prompt as llama.cpp feeds it */
int sc_llama_tokenize_bos(const sc_llama *m, const char *text, int parse_special, int32_t **ids, int *n, sc_error *err);
/* 1 when id ends a turn or the text: EOS, or a token llama.cpp counts as
 * end-of-generation by its text (<|im_end|>, <end_of_turn>, <|eot_id|> ...) */
int sc_llama_is_eog(const sc_llama *m, int32_t id);

/* Greedy generation: tokenise prompt (special tokens parsed, BOS first when
 * the model adds one and the prompt does not start with it), then emit up to
 * max_tokens tokens, stopping at an end-of-generation token. The text (no
 * prompt) is returned in *out (sc_free). Defined in lm/generate.c, which also
 * has sampling, stop strings and streaming (sc_generate). */
int sc_llama_generate(sc_llama *m, const char *prompt, int max_tokens, char **out, sc_error *err);

#endif
