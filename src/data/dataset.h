/* The prepared dataset as the rest of semctr sees it: a schema (fields,
 * vocabularies, join tables, the config it came from), the binary columnar
 * split files (mmap'ed, read-only), and batches gathered from them.
 *
 * Id convention for every id-valued field: 0 = padding (empty slot of a
 * multi-valued or sequence field), 1 = out-of-vocabulary, 2.. = vocabulary
 * entries (or hash buckets). So an embedding table has vocab_size rows and
 * row 0 is never trained.
 *
 * Dimension letters: N rows in a split, B rows in a batch, F fields, W the
 * width of a field (ids per row). */
#ifndef SC_DATA_DATASET_H
#define SC_DATA_DATASET_H

#include <stdint.h>

#include "base/error.h"
#include "base/file.h"

enum sc_field_kind {
    SC_FIELD_CATEGORICAL = 0, /* one id per row */
    SC_FIELD_NUMERIC = 1,     /* one float per row (already normalised); bucketed numerics are categorical */
    SC_FIELD_MULTI = 2,       /* up to W ids per row (e.g. genres), padded with 0 */
    SC_FIELD_SEQUENCE = 3,    /* the last W ids of a behaviour history, most recent first, padded with 0 */
};

enum sc_pooling { SC_POOL_MEAN = 0, SC_POOL_SUM = 1 };

typedef struct sc_field_info {
    char name[64];
    int kind;           /* enum sc_field_kind */
    int width;          /* W: ids per row; 1 for categorical and numeric */
    int64_t vocab_size; /* rows of the embedding table incl. padding and OOV; 1 for numeric */
    int pooling;        /* enum sc_pooling, for multi and sequence fields */
    int share_with;     /* -1, or the index of the field whose embedding table this one uses */
} sc_field_info;

typedef struct sc_schema sc_schema; /* opaque; see data/schema.h */

/* One split file (train.scd, valid.scd, test.scd), mmap'ed. */
typedef struct sc_dataset {
    sc_mmap map;
    int64_t n_rows;          /* N */
    int n_fields;            /* F */
    sc_field_info *fields;   /* (F) owned */
    const float *label;      /* (N) 0 or 1 */
    const int32_t *group;    /* (N) group id per row for gAUC (e.g. the user), or NULL */
    const int32_t **ids;     /* (F) -> (N, W) ids, NULL for numeric fields; owned array */
    const float **values;    /* (F) -> (N) values, NULL for id fields; owned array */
} sc_dataset;

/* Open and validate a split file (magic, version, sizes against the file size). */
int sc_dataset_open(sc_dataset *ds, const char *path, sc_error *err);
void sc_dataset_close(sc_dataset *ds);

/* A batch of rows in contiguous buffers, the input of every model. */
typedef struct sc_batch {
    int n;              /* B: rows filled */
    int cap;            /* rows allocated */
    int n_fields;       /* F */
    float *label;       /* (B) */
    int32_t *group;     /* (B) */
    int32_t **ids;      /* (F) -> (B, W), NULL for numeric fields */
    float **values;     /* (F) -> (B), NULL for id fields */
    const float *extra; /* (B, extra_dim) dense side input (ELEC's LLM vector) or NULL; not owned */
} sc_batch;

int sc_batch_alloc(sc_batch *b, const sc_field_info *fields, int n_fields, int cap, sc_error *err);
void sc_batch_free(sc_batch *b);
/* Copy rows[0..n) of ds into b (n <= b->cap). */
void sc_batch_gather(sc_batch *b, const sc_dataset *ds, const int64_t *rows, int n);

#endif
