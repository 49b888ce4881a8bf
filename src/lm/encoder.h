/* Sentence encoder: a Hugging Face / sentence-transformers model directory
 * (config.json, model.safetensors, tokenizer.json or vocab.txt, and the
 * optional modules.json, 1_Pooling/config.json, sentence_bert_config.json)
 * turned into one float vector per text.
 *
 * encode = tokenize (WordPiece, truncated to the model's max length) ->
 * BERT forward over batches of sequences sorted by length -> pooling (mean
 * over the tokens, CLS or max, as 1_Pooling/config.json says; mean when
 * absent) -> L2 normalisation when modules.json lists a Normalize module. */
#ifndef SC_LM_ENCODER_H
#define SC_LM_ENCODER_H

#include <stddef.h>

#include "base/error.h"

typedef struct sc_encoder sc_encoder;

typedef enum sc_lm_pooling { SC_LM_POOL_MEAN, SC_LM_POOL_CLS, SC_LM_POOL_MAX } sc_lm_pooling;

/* Load the model in model_dir; n_threads <= 0 uses every online CPU. The
 * encoder owns its weights (mmap'ed) and activations; free with
 * sc_encoder_free. Errors name the file and the field or tensor. */
int sc_encoder_load(sc_encoder **out, const char *model_dir, int n_threads, sc_error *err);
void sc_encoder_free(sc_encoder *enc);

int sc_encoder_dim(const sc_encoder *enc);
/* Short model name: the model directory's base name ("all-MiniLM-L6-v2"). */
const char *sc_encoder_name(const sc_encoder *enc);
int sc_encoder_max_length(const sc_encoder *enc);
sc_lm_pooling sc_encoder_pooling(const sc_encoder *enc);
int sc_encoder_normalizes(const sc_encoder *enc);
/* The BERT model inside (its weights and activations are the encoder's): for
 * code that runs some of its layers itself (LoRA training, lm/bert_train.h). */
struct sc_bert *sc_encoder_bert(sc_encoder *enc);

/* Settings: sequences per forward batch (default 32), the token limit
 * (<= the model's max positions; default from sentence_bert_config.json, else
 * the model's limit), L2 normalisation on or off. Return SC_EINVAL when out
 * of range. */
int sc_encoder_set_batch(sc_encoder *enc, int batch);
int sc_encoder_set_max_length(sc_encoder *enc, int max_length);
void sc_encoder_set_normalize(sc_encoder *enc, int on);

/* Called after each forward batch with the number of texts done so far. */
typedef void (*sc_encoder_progress_fn)(void *ctx, int done, int total);
void sc_encoder_set_progress(sc_encoder *enc, sc_encoder_progress_fn fn, void *ctx);

/* Encode n texts (NUL-terminated UTF-8; invalid bytes are read as U+FFFD,
 * which BERT's normaliser then drops) into out, (n, dim) row-major, row i
 * for texts[i]. Texts are tokenised, sorted by length and run in batches;
 * order is restored. Not thread-safe on one encoder (activations are
 * shared); use one encoder per thread. */
int sc_encoder_encode(sc_encoder *enc, const char *const *texts, int n, float *out, sc_error *err);

/* The token ids encode would use for one text ([CLS] ... [SEP], truncated):
 * writes at most cap ids, returns the count in *n_ids. */
int sc_encoder_tokenize(sc_encoder *enc, const char *text, int *ids, int cap, int *n_ids, sc_error *err);

#endif
