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
    uint64_t checksum;       /* the header's, verified against the contents */
} sc_dataset;

/* Open and validate a split file of a prepared dataset folder: magic,
 * version, sizes against the file size, ids against vocabularies, its
 * checksum, and that it belongs with the other files of its folder (the
 * folder's meta.json lists this file with the same checksum, see
 * data/datadir.h). A file of another `prepare` run, or one changed since,
 * is refused with a message that says to re-run `semctr prepare`. */
int sc_dataset_open(sc_dataset *ds, const char *path, sc_error *err);
void sc_dataset_close(sc_dataset *ds);

/* Tell the kernel that rows [row0, row1) of every column will not be read
 * again soon: their pages leave this process's resident set (they stay in
 * the page cache, so reading them again is cheap). Lets a pass over a split
 * larger than memory keep a bounded footprint. */
void sc_dataset_release_rows(const sc_dataset *ds, int64_t row0, int64_t row1);

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
/* The same for rows[i0..n) into batch rows i0..n (rows 0..i0 kept): a batch
 * gathered in two parts, with the pages of the first part's rows released
 * in between (the training loop at a shuffle block's end). */
void sc_batch_gather_part(sc_batch *b, const sc_dataset *ds, const int64_t *rows, int i0, int n);

/* ---- additions (data module): the on-disk format, text columns, writer ----
 *
 * Split file layout (.scd), all little-endian, version 2:
 *
 *   0   char     magic[8] = "SCDSPLIT"
 *   8   uint32   version = 2
 *   12  uint32   F (fields)
 *   16  int64    N (rows)
 *   24  int64    cap (rows reserved per column, >= N; columns may be
 *                followed by unused space when rows were dropped late)
 *   32  uint32   flags (bit 0: has a group column)
 *   36  uint32   T (text columns)
 *   40  uint64   checksum (below)
 *   48  uint64   0 (reserved) x 2
 *   64  F field records of 88 bytes: char name[64], int32 kind, int32 width,
 *       int64 vocab_size, int32 pooling, int32 share_with
 *   ..  T text-column names, char[64] each
 *   ..  (2 + F + T) column records {uint64 offset, uint64 bytes}: label,
 *       group, the F fields, the T text columns
 *   columns, each starting at a multiple of 64 bytes:
 *       label float32 (N); group int32 (N) (bytes = 0 when absent);
 *       field f: int32 (N, W) ids, or float32 (N) values for numeric fields;
 *       text t: int32 (N), an index into text column t's string table in the
 *       schema (see data/schema.h), -1 when the row has no such text.
 *
 * checksum = XXH3-64 of the header's first H bytes (everything before the
 * first column) with the checksum field taken as 0, followed by one 8-byte
 * XXH3-64 digest per column record in order, each over the column's first
 * N * W * 4 bytes (0 bytes for an absent group column). The writer hashes
 * each column as it appends to it; the unused space past N rows is not
 * covered.
 *
 * sc_dataset_open checks the magic, the version, every size and offset
 * against the file size, the field records, the checksum, and that every
 * id lies in [0, vocab_size) so that an embedding lookup can never read out
 * of bounds. Version 1 (no checksum) is refused: re-run `semctr prepare`. */

#define SC_SCD_MAGIC "SCDSPLIT"
#define SC_SCD_VERSION 2
#define SC_MAX_FIELDS 4096
#define SC_MAX_WIDTH 65536

/* Text columns of an open split: T, and the (N) int32 column of text t
 * (string indices, -1 = none). Returns NULL when t is out of range. */
int sc_dataset_n_text(const sc_dataset *ds);
const int32_t *sc_dataset_text(const sc_dataset *ds, int t);
/* Name of text column t as stored in the split (NULL when out of range). */
const char *sc_dataset_text_name(const sc_dataset *ds, int t);

/* Writes one split file. Rows are appended batch by batch; columns go
 * straight to their final offsets (pwrite), the header last, through
 * sc_atomic_file so a failure leaves no partial file behind. cap_rows is an
 * upper bound on the rows that will be appended. */
typedef struct sc_split_writer sc_split_writer;
int sc_split_writer_open(sc_split_writer **w, const char *path, const sc_field_info *fields, int n_fields,
                         int has_group, int n_text, const char *const *text_names, int64_t cap_rows,
                         sc_error *err);
/* Append b->n rows; text is (b->n, n_text) or NULL when n_text == 0. */
int sc_split_writer_append(sc_split_writer *w, const sc_batch *b, const int32_t *text, sc_error *err);
int64_t sc_split_writer_rows(const sc_split_writer *w);
/* Write the header, fsync, rename into place; frees w in every case.
 * *checksum (may be NULL) gets the file's checksum. */
int sc_split_writer_commit(sc_split_writer *w, uint64_t *checksum, sc_error *err);
/* Remove the temporary file; frees w. NULL is fine. */
void sc_split_writer_abort(sc_split_writer *w);

#endif
