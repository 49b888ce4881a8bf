/* SentencePiece-style BPE tokenizer (GGUF tokenizer.ggml.model "llama":
 * Llama 1/2, Gemma, Mistral v0.1 ...) from GGUF metadata, as llama.cpp's
 * llm_tokenizer_spm: tokens with scores, token types, spaces written as
 * U+2581 "▁", an optional space prefix (tokenizer.ggml.add_space_prefix),
 * byte fallback to <0xXX> tokens, and control / user-defined tokens. */
#ifndef SC_TEXT_SPM_H
#define SC_TEXT_SPM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "lm/gguf.h"

typedef struct sc_spm sc_spm;

/* Build from an open GGUF whose tokenizer.ggml.model is "llama" (strings are
 * copied; g may be closed after). SC_EFORMAT names the key at fault. */
int sc_spm_from_gguf(sc_spm **out, const sc_gguf *g, sc_error *err);
void sc_spm_free(sc_spm *t);

/* Token ids of text (any bytes: what is not in the vocabulary falls back to
 * byte tokens), no BOS added, as llama.cpp's tokenize(add_special=false).
 * parse_special: control tokens written in the text (e.g. "<start_of_turn>")
 * become their ids; user-defined tokens always do. *ids is sc_malloc'ed. */
int sc_spm_encode(const sc_spm *t, const char *text, size_t len, int parse_special, int32_t **ids, int *n, sc_error *err);

/* Bytes of token id into buf (at most cap): "▁" becomes a space, byte tokens
 * their byte, user-defined tokens their text, control/unknown/unused tokens
 * "". Returns the byte count, or -1 for an id outside the vocabulary. */
int sc_spm_piece(const sc_spm *t, int32_t id, char *buf, size_t cap);

int sc_spm_vocab_size(const sc_spm *t);
int32_t sc_spm_bos(const sc_spm *t);
int32_t sc_spm_eos(const sc_spm *t);
/* tokenizer.ggml.add_bos_token (default 1 for this tokenizer kind) */
int sc_spm_add_bos(const sc_spm *t);
/* id of an exact token string, -1 if absent */
int32_t sc_spm_find(const sc_spm *t, const char *s);

#endif
