/* Pieces shared by the GGUF tokenizers (byte-level BPE in bpe.c,
 * SentencePiece-style BPE in spm.c): the min-heap of candidate merges,
 * llama.cpp's special-token partition of a text, and token -> id lookup
 * over data/strmap.h. */
#ifndef SC_TEXT_TOKUTIL_H
#define SC_TEXT_TOKUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "data/strmap.h"

/* Candidate merge of adjacent symbols l and r: the heap pops the lowest
 * rank, leftmost (smallest l) on ties; size is the merged byte length so a
 * stale entry (a symbol changed since it was queued) can be recognised. */
typedef struct sc_bigram {
    int32_t rank;
    int l, r;
    size_t size;
} sc_bigram;

typedef struct sc_bigram_heap {
    sc_bigram *p;
    size_t n, cap;
} sc_bigram_heap;

/* 0, or -1 out of memory */
int sc_bigram_push(sc_bigram_heap *h, sc_bigram b);
/* top entry; h->n must be > 0 */
sc_bigram sc_bigram_pop(sc_bigram_heap *h);

/* A piece of a text after special-token partitioning: raw text
 * (id = -1, bytes off..off+len) or one special token (id >= 0). */
typedef struct sc_tok_frag {
    size_t off, len;
    int32_t id;
} sc_tok_frag;

/* llama.cpp's tokenizer_st_partition: each special token in turn, longest
 * first (`special` must be sorted so), splits every raw fragment at its
 * non-overlapping occurrences, left to right. Tokens of type 3 (control) and
 * 2 (unknown), or with SC_TOK_FORCED_CONTROL, take part only when
 * parse_special; 4 (user-defined) always.
 * tokens[id] is the token text, types[id] its tokenizer.ggml.token_type.
 * *out is sc_malloc'ed; 0, or -1 out of memory. */
int sc_tok_partition(const char *text, size_t len, const char *const *tokens, const int32_t *types,
                     const int32_t *special, int n_special, int parse_special, sc_tok_frag **out, size_t *n_out);

/* Sort special-token ids by decreasing text length (ties: increasing id).
 * 0, or -1 out of memory. */
int sc_tok_sort_special(int32_t *special, int n, const char *const *tokens);

/* llama.cpp (llama_vocab::impl::load) marks tokens with these texts control
 * tokens whatever their tokenizer.ggml.token_type says: end-of-generation
 * texts ("<end_of_turn>", "</s>", "<|im_end|>", ...) and fill-in-the-middle
 * markers. They are then parsed from text only with parse_special. */
int sc_tok_forced_control(const char *text);

/* End-of-generation token texts (llama.cpp's special_eog_ids by text), a
 * NULL-terminated list. */
extern const char *const sc_tok_eog_texts[];

/* Bit or-ed into a token type by the tokenizers when sc_tok_forced_control:
 * sc_tok_partition then treats the token as control. */
#define SC_TOK_FORCED_CONTROL 0x100

/* Add token -> id; when the token is present, replace != 0 overwrites its id
 * (llama.cpp's token_to_id: the last duplicate wins), else the first stays.
 * 0, or -1 out of memory. */
int sc_tok_map_put(sc_strmap *m, const char *key, size_t n, int32_t id, int replace);
/* id of the n bytes at key, -1 if absent */
int32_t sc_tok_map_get(const sc_strmap *m, const char *key, size_t n);

/* Growable token-id list: zero-initialise; p is sc_malloc'ed (sc_free). */
typedef struct sc_tok_ids {
    int32_t *p;
    int n, cap;
} sc_tok_ids;
/* Append id; -1 when out of memory (the list is unchanged). */
int sc_tok_ids_push(sc_tok_ids *v, int32_t id);

/* Invalid UTF-8, one rule for all tokenizers (WordPiece, byte-level BPE,
 * SentencePiece): every byte that does not begin a valid sequence (utf8proc's
 * rule: no overlong forms, surrogates or code points above U+10FFFF) reads
 * as U+FFFD, and decoding resumes at the next byte. This is what Hugging Face
 * tokenizers and llama.cpp's BPE do with such text, so a stray byte in a
 * dataset changes one character rather than stopping a run.
 * *out = NULL when the text is valid (use it as is), else an sc_malloc'ed
 * copy of *n_out bytes with the replacements. 0, or -1 out of memory. */
int sc_utf8_replace_invalid(const char *text, size_t len, char **out, size_t *n_out);

#endif
