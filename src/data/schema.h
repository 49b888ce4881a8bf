/* The schema of a prepared dataset: its fields and their transforms, the
 * vocabularies (built from the train split only), the join tables carried
 * along (so raw rows can be encoded without the side files), the raw text
 * columns kept for textualisation, and the config text it came from.
 *
 * It is written by `semctr prepare` to <dir>/schema.scs and can be embedded
 * in model files through sc_schema_serialize / sc_schema_deserialize.
 *
 * A schema is immutable once built: every function here that takes a
 * const sc_schema* may be called from several threads at once. */
#ifndef SC_DATA_SCHEMA_H
#define SC_DATA_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/dataset.h"

#define SC_SCHEMA_MAGIC "SCSCHEMA"
#define SC_SCHEMA_VERSION 1
#define SC_SCHEMA_FILE "schema.scs"

/* Load <dataset_dir>/schema.scs, after checking that the folder's meta.json
 * lists it (data/datadir.h). *out is the caller's (sc_schema_free). */
int sc_schema_load(sc_schema **out, const char *dataset_dir, sc_error *err);
void sc_schema_free(sc_schema *s);

/* The F fields, in the order of the split files and of sc_batch. */
const sc_field_info *sc_schema_fields(const sc_schema *s, int *n);
/* Index of the field named name, or -1. */
int sc_schema_field_index(const sc_schema *s, const char *name);
/* Index of the group field (gAUC), or -1 when the dataset has none. */
int sc_schema_group_field(const sc_schema *s);
/* The label column and its rule, e.g. "rating" and "rating >= 4". */
const char *sc_schema_label_name(const sc_schema *s);
const char *sc_schema_label_rule(const sc_schema *s);
/* The YAML config the dataset was prepared from. */
const char *sc_schema_config_text(const sc_schema *s);
/* Names of the columns of the main table that sc_schema_encode reads
 * (field sources, join keys, the label); *n gets their count. */
const char *const *sc_schema_input_columns(const sc_schema *s, int *n);

/* Binary form, with every vocabulary and table: *buf is the caller's
 * (sc_free). deserialize validates everything (the bytes come from a file)
 * and never reads outside buf[0..len). */
int sc_schema_serialize(const sc_schema *s, uint8_t **buf, size_t *len, sc_error *err);
int sc_schema_deserialize(sc_schema **out, const uint8_t *buf, size_t len, sc_error *err);

/* Encode raw rows the way prepare encoded them. cells is (n_rows, n_cols),
 * row-major; cells[r * n_cols + c] is the raw string of column
 * col_names[c] in row r, NULL when missing. Columns not used by the schema
 * are ignored. Per field:
 *   categorical: vocabulary lookup, unseen value -> 1 (OOV), or the hash
 *     bucket; a missing cell (or a join key not in the join table) -> 1;
 *   numeric: the transform fitted on train; missing or not a number -> the
 *     field's fill value, transformed; bucketed numerics: missing -> 1;
 *   multi: split at the separator (or flag columns of a join), each value
 *     looked up, padded with 0; missing -> all 0;
 *   sequence: the cell of the column named like the field, split at the
 *     separator, most recent first, values looked up in the vocabulary of
 *     the field in 'of'; missing -> all 0.
 * Joined fields are looked up through the join tables carried in the schema.
 * label: from the label column when present (rule applied), else 0; group:
 * the id of the group field. Writes rows [0, n_rows) of out (out->n set);
 * n_rows <= out->cap. The batch must come from sc_batch_alloc with this
 * schema's fields. Fails only on bad arguments. */
int sc_schema_encode(const sc_schema *s, int n_rows, int n_cols, const char *const *col_names,
                     const char *const *cells, sc_batch *out, sc_error *err);

/* Reads a CSV file with a header row in chunks, for `semctr predict` and
 * tests: each call fills up to max_rows rows. The arrays stay valid until
 * the next call or close. */
typedef struct sc_csv_chunks sc_csv_chunks;
int sc_csv_chunks_open(sc_csv_chunks **out, const char *path, const char *delimiter, sc_error *err);
/* Next chunk: *n_rows (0 at the end), the column names (n_cols) and the
 * cells (n_rows, n_cols) with NULL for empty cells. */
int sc_csv_chunks_next(sc_csv_chunks *r, int max_rows, int *n_rows, int *n_cols, const char *const **col_names,
                       const char *const **cells, sc_error *err);
void sc_csv_chunks_close(sc_csv_chunks *r);

/* ---- reverse lookups, for textualisation ---- */

/* The raw value behind id of field f: the vocabulary string, or for a
 * bucketed numeric the bucket as "[lo, hi)". NULL for padding (0), OOV (1),
 * hashed fields, numeric fields and ids out of range. Sequence fields use
 * the vocabulary of the field they collect. */
const char *sc_schema_id_string(const sc_schema *s, int field, int64_t id);

/* Raw text columns (not model features). Each split file holds, per text
 * column t, an int32 column (sc_dataset_text) of indices into t's string
 * table here; -1 = the row has no such text (e.g. a join key that is not in
 * the join table). entity is "input" for a column of the main table or the
 * name of the join the text comes from ("item", "user"), so a caller can
 * tell the user's attributes from the item's. */
int sc_schema_n_text(const sc_schema *s);
const char *sc_schema_text_name(const sc_schema *s, int t);
const char *sc_schema_text_entity(const sc_schema *s, int t);
/* Index of the text column named name, or -1. */
int sc_schema_text_index(const sc_schema *s, const char *name);
/* String idx of text column t; NULL when out of range (or idx == -1). */
const char *sc_schema_text(const sc_schema *s, int t, int32_t idx);
/* Number of distinct strings of text column t. */
int64_t sc_schema_text_count(const sc_schema *s, int t);

#endif
