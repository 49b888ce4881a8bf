/* ELEC's textualisation and its frozen-LLM vectors.
 *
 * Each row's raw text columns (data/schema.h: e.g. the user's gender, age and
 * occupation, the movie's title, release date and genres) become text in the
 * ELEC form "Gender is M. Occupation is writer. Title is Kolya (1996). ..."
 * at one of two granularities:
 *   sample: one text per row (faithful to the paper; one LLM call per
 *           distinct row text);
 *   entity: one text per entity of each join (user, item), encoded once and
 *           concatenated per row (cheap: 943 + 1,682 texts for MovieLens-100K).
 * Identical texts are encoded once; vectors are cached in a vector store
 * keyed by a hash of the text, so a rerun encodes nothing. */
#ifndef SC_METHODS_ELEC_TEXT_H
#define SC_METHODS_ELEC_TEXT_H

#include "data/dataset.h"
#include "data/schema.h"
#include "dist/dist.h"
#include "methods/elec/elec.h"

enum sc_elec_granularity { SC_ELEC_SAMPLE = 0, SC_ELEC_ENTITY = 1 };

typedef struct sc_elec_texts {
    int n_parts;              /* 1 (sample) or the number of entities (at most 2) */
    char part_name[2][64];    /* "sample", or the entity ("user", "item") */
    int64_t n_texts[2];       /* distinct texts per part */
    char **texts[2];          /* (n_texts[p]) owned */
    int32_t *index[3][2];     /* per split s, per part p: (N_s) text index, -1 = no text */
    int64_t n_rows[3];
    const char *method;       /* names the caller in log lines and messages: "ELEC" (set by
                                 sc_elec_textualize); NULL (another method's hand-built set): none */
} sc_elec_texts;

/* Build the texts of the three splits (test may be NULL). columns: comma-
 * separated text column names to include, in that order, or NULL for every
 * text column of the schema. A name that is not a text column is an error
 * naming it and listing the available ones. */
int sc_elec_textualize(const sc_schema *schema, const sc_dataset *const split[3], int granularity,
                       const char *columns, sc_elec_texts *out, sc_error *err);
void sc_elec_texts_free(sc_elec_texts *t);

/* The ELEC text of row r of split s, part p (NULL when the row has none). */
const char *sc_elec_text(const sc_elec_texts *t, int s, int p, int64_t r);

/* Encode every distinct text with the encoder in model_dir (mean-pooled last
 * hidden state, no normalisation, as ELEC uses), through the vector store
 * cache_path (created or extended; NULL = no cache); tables[p] (n_texts[p],
 * dim) are the caller's (sc_free). *dim gets the vector size. The store must
 * come from the same model: another model's store is an error.
 *
 * dist (NULL: one process): over more than one rank every rank calls this
 * with the same texts and loads the model; rank 0 reads the cache and says
 * which texts are missing, each rank encodes its contiguous slice of every
 * chunk of them, and rank 0 gathers the vectors, writes the cache and gets
 * the tables; the other ranks get tables[p] = NULL. A text's vector does not
 * depend on the texts batched with it, so rank 0's tables and the cache are
 * those of one process, bit for bit. A rank that fails fails every rank. */
int sc_elec_encode_texts(const sc_elec_texts *t, const char *model_dir, const char *cache_path, int n_threads,
                         sc_dist *dist, float *tables[2], int *dim, char *model_name, size_t model_name_cap,
                         sc_error *err);

/* Time (ms, median of 3) the language model takes for the texts of the
 * first 1,000 rows of split s (every part: per sample one text, per entity
 * one per entity): what a gain network would add at request time for rows
 * whose texts are not cached. */
int sc_elec_time_llm(const sc_elec_texts *t, int s, const char *model_dir, int n_threads, double *ms,
                     sc_error *err);

/* Wire texts and tables into the three splits' sc_elec_vectors. */
void sc_elec_vectors_from_texts(const sc_elec_texts *t, float *const tables[2], int dim, sc_elec_vectors vec[3]);

#endif
