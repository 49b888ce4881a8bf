/* Byte-level BPE tokenizer (GGUF "gpt2" model) from GGUF metadata:
 * tokenizer.ggml.tokens / merges / token_type, GPT-2 byte-to-unicode
 * mapping, the pre-tokenizer regexes of the model family (tokenizer.ggml.pre)
 * through PCRE2, and special (control) tokens, as llama.cpp's llm_tokenizer_bpe. */
#ifndef SC_TEXT_BPE_H
#define SC_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "lm/gguf.h"

typedef struct sc_bpe sc_bpe;

/* Build from an open GGUF (strings are copied; g may be closed after). */
int sc_bpe_from_gguf(sc_bpe **out, const sc_gguf *g, sc_error *err);
void sc_bpe_free(sc_bpe *t);

/* Token ids of UTF-8 text (no BOS added). parse_special: control tokens
 * written in the text (e.g. "<|im_start|>") become their ids, as llama.cpp's
 * tokenize(..., parse_special=true). *ids is sc_malloc'ed. SC_EINVAL for
 * invalid UTF-8. */
int sc_bpe_encode(const sc_bpe *t, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                  sc_error *err);

/* Bytes of token id appended to buf (cap bytes); control tokens give "".
 * Returns the byte count, or -1 for an id outside the vocabulary. */
int sc_bpe_piece(const sc_bpe *t, int32_t id, char *buf, size_t cap);

int sc_bpe_vocab_size(const sc_bpe *t);
int32_t sc_bpe_eos(const sc_bpe *t);
int32_t sc_bpe_bos(const sc_bpe *t);
/* 1 when the model expects BOS first: tokenizer.ggml.add_bos_token, else
 * llama.cpp's default for the pre-tokenizer (llama3: yes, most others: no) */
int sc_bpe_add_bos(const sc_bpe *t);
/* id of an exact token string, -1 if absent */
int32_t sc_bpe_find(const sc_bpe *t, const char *s);

#endif
