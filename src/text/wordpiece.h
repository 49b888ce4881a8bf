/* WordPiece tokenizer as Hugging Face `tokenizers` runs it for BERT models.
 *
 * Pipeline (for each piece of the input between special tokens):
 *   1. special tokens ([CLS], [SEP], [MASK], ... the non-normalised added
 *      tokens of tokenizer.json) are matched on the raw text, leftmost-longest;
 *   2. invalid UTF-8 bytes become U+FFFD (so, with clean_text, they vanish);
 *   3. BertNormalizer: clean_text (drop NUL, U+FFFD and control/format/
 *      unassigned/private-use characters, map whitespace to ' '),
 *      handle_chinese_chars (space around CJK ideographs), strip_accents
 *      (Unicode NFD through utf8proc, drop non-spacing marks), lowercase;
 *      character classes follow tokenizers' (older) Unicode tables, checked
 *      for every code point by tests/test_text_wordpiece.c;
 *   4. BertPreTokenizer: split on whitespace, every punctuation character is
 *      its own word;
 *   5. WordPiece: longest match first, "##" continuation, [UNK] for a word
 *      with a piece not in the vocabulary or more than max_input_chars_per_word
 *      characters;
 *   6. [CLS] ... [SEP], truncated to max_len tokens in all. */
#ifndef SC_TEXT_WORDPIECE_H
#define SC_TEXT_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct sc_wordpiece sc_wordpiece;

typedef struct sc_wordpiece_opts {
    int lowercase;          /* BertNormalizer.lowercase */
    int strip_accents;      /* 1 strip, 0 keep, -1 follow lowercase (HF's null) */
    int handle_chinese_chars;
    int clean_text;
    int max_input_chars_per_word; /* 100 in BERT */
} sc_wordpiece_opts;

/* A growable list of token ids; zero-initialise, free with sc_tokens_free. */
typedef struct sc_tokens {
    int32_t *ids;
    int n, cap;
} sc_tokens;
void sc_tokens_free(sc_tokens *t);

/* Load from a Hugging Face model directory: tokenizer.json when present
 * (normaliser options, vocabulary, special tokens), else vocab.txt plus
 * tokenizer_config.json (do_lower_case, strip_accents). */
int sc_wordpiece_load_dir(sc_wordpiece **out, const char *dir, sc_error *err);
/* tokenizer.json of a WordPiece model with a BertNormalizer. */
int sc_wordpiece_load_json(sc_wordpiece **out, const char *path, sc_error *err);
/* vocab.txt (one token a line, id = line number) with explicit options. */
int sc_wordpiece_load_vocab(sc_wordpiece **out, const char *path, const sc_wordpiece_opts *opts, sc_error *err);
/* The same from a buffer (for tests and fuzzing); `name` labels errors. */
int sc_wordpiece_from_vocab_buf(sc_wordpiece **out, const char *buf, size_t len, const char *name,
                                const sc_wordpiece_opts *opts, sc_error *err);
void sc_wordpiece_free(sc_wordpiece *wp);

/* Tokenise len bytes of text (any bytes; need not be NUL-terminated) into
 * out (replacing its contents): [CLS] tokens [SEP], at most max_len ids in all
 * (max_len <= 0: no limit; otherwise >= 2). Only fails on out-of-memory. */
int sc_wordpiece_encode(const sc_wordpiece *wp, const char *text, size_t len, int max_len, sc_tokens *out,
                        sc_error *err);

/* BertNormalizer's output (steps 2-3 above) for len bytes of text, as
 * NUL-terminated UTF-8 in *out (sc_malloc'ed, *n_out bytes). Only fails on
 * out-of-memory. */
int sc_wordpiece_normalize(const sc_wordpiece *wp, const char *text, size_t len, char **out, size_t *n_out,
                           sc_error *err);

/* Vocabulary access: id of a token string or -1; the string of an id or NULL. */
int sc_wordpiece_id(const sc_wordpiece *wp, const char *token);
const char *sc_wordpiece_token(const sc_wordpiece *wp, int id);
int sc_wordpiece_vocab_size(const sc_wordpiece *wp);
int sc_wordpiece_pad_id(const sc_wordpiece *wp);

/* The Unicode helpers the pipeline uses (exposed for tests). */
int sc_unicode_is_bert_whitespace(int32_t c);
int sc_unicode_is_bert_punct(int32_t c);
int sc_unicode_is_bert_control(int32_t c);
int sc_unicode_is_cjk(int32_t c);
int sc_unicode_is_bert_mark(int32_t c);

#endif
