/* Internals of sc_schema shared by schema.c and prepare.c. */
#ifndef SC_DATA_SCHEMA_IMPL_H
#define SC_DATA_SCHEMA_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "data/config.h"
#include "data/csv.h"
#include "data/schema.h"
#include "data/strmap.h"

/* A join table: only the columns some field or text column uses. Cells are
 * indices into a pool of distinct strings (no allocation per cell). */
typedef struct sc_jtable {
    char name[SC_NAME_MAX];
    char on[SC_NAME_MAX];     /* main-table column holding the key */
    int on_idx;               /* its index in sc_schema.main_cols */
    int n_cols;               /* C */
    char (*cols)[SC_NAME_MAX];/* (C) */
    sc_strmap keys;           /* key -> row (insertion order = row) */
    uint32_t *cell;           /* (R, C) index into strings */
    sc_strmap strings;
} sc_jtable;

/* Where a value comes from: the main table (table -1) or join `table`. */
typedef struct sc_src {
    int table;
    int col; /* index into sc_schema.main_cols, or into the join's cols */
} sc_src;

typedef struct sc_fenc {
    sc_field_info info;
    int transform;        /* enum sc_transform */
    sc_src src;           /* categorical / numeric / multi (from a cell) */
    int min_count;
    int64_t hash_buckets;
    int normalize;
    double fill;
    double p0, p1;        /* standard: mean, std; minmax: min, max */
    double *bounds;       /* (n_bounds) */
    int n_bounds;
    int quantiles;
    char sep[16];
    int n_flags;
    char (*flags)[SC_NAME_MAX]; /* (n_flags) flag column names */
    sc_src *flag_src;     /* (n_flags) */
    char *pattern;
    pcre2_code *re;
    sc_strmap vocab;      /* value -> index; id = index + 2 */
    int of;               /* sequence: field index */
    sc_src by;            /* sequence: user column (prepare only) */
    int seq_col;          /* sequence: index in main_cols of the column named like the field, for encode */
    char **bucket_names;  /* bucket: "[lo, hi)" per id - 2, built on demand at load */
} sc_fenc;

typedef struct sc_tenc {
    char name[SC_NAME_MAX];
    sc_src src;
    int n_flags;
    char (*flags)[SC_NAME_MAX];
    sc_src *flag_src;
    char sep[16];         /* prepare only (not serialised: the strings below are what a loaded schema has) */
    char joiner[16];
    char *pattern;
    pcre2_code *re;
    sc_strmap strings;
} sc_tenc;

struct sc_schema {
    char *config_text;
    char label_col[2 * SC_NAME_MAX];
    int label_op;
    double label_value;
    char label_rule[300];
    int label_idx;        /* in main_cols */
    int group;            /* field index or -1 */
    int n_main;
    char (*main_cols)[SC_NAME_MAX];
    const char **main_col_ptrs; /* (n_main) for sc_schema_input_columns */
    int n_joins;
    sc_jtable *joins;
    int n_fields;
    sc_fenc *fenc;
    sc_field_info *infos; /* (F) copy for sc_schema_fields */
    int n_text;
    sc_tenc *tenc;
};

/* One row as seen by the encoder: the main cells by main_cols index
 * (p == NULL: missing), the row of each join table (-1: key not found). */
typedef struct sc_rowview {
    const sc_cell *main;
    int64_t *jrow;
} sc_rowview;

/* Per-call scratch of the encoder: regex match data and a text buffer.
 * Not shared between threads. */
typedef struct sc_encscratch {
    pcre2_match_data *md;
    char num[64];
    char *text;
    size_t text_cap;
} sc_encscratch;

int sc_scratch_init(sc_encscratch *sc, sc_error *err);
void sc_scratch_free(sc_encscratch *sc);

/* Fill view->jrow from the join keys in view->main. */
void sc_rowview_join(const sc_schema *s, sc_rowview *v);
/* The cell at src for the row (p NULL when missing). */
sc_cell sc_rowview_cell(const sc_schema *s, const sc_rowview *v, sc_src src);

/* Apply the field's pattern (if any) to a cell: 0 and the value, 1 when
 * the pattern does not match (treated as missing). */
int sc_apply_pattern(pcre2_code *re, sc_encscratch *sc, sc_cell in, sc_cell *out);

/* The string values of field f in a row for vocabulary work (categorical,
 * log2, multi): fills up to max values, returns their count, -1 when the
 * row is bad (a numeric cell that is not a number: *why set), -2 when
 * missing. Values may point into sc->num. */
int sc_field_strings(const sc_schema *s, const sc_fenc *f, const sc_rowview *v, sc_encscratch *sc, sc_cell *vals,
                     int max);
/* Numeric value of field f: 0 ok, 1 missing, -1 not a number. */
int sc_field_number(const sc_schema *s, const sc_fenc *f, const sc_rowview *v, sc_encscratch *sc, double *out);

/* Encode every non-sequence field of a row into row i of b. Sequence
 * fields are left to the caller (prepare: the user's history; encode: a
 * cell). */
void sc_encode_fields(const sc_schema *s, const sc_rowview *v, sc_encscratch *sc, sc_batch *b, int i);
/* Encode sequence field f from a list of raw values (most recent first). */
void sc_encode_sequence_cell(const sc_schema *s, int f, sc_cell cell, sc_batch *b, int i);
/* The text of text column t for a row: 0 and the string (in sc->text or the
 * cell), 1 when missing, -1 when out of memory. */
int sc_text_value(const sc_schema *s, const sc_tenc *t, const sc_rowview *v, sc_encscratch *sc, sc_cell *out);
/* Label of a row from its label cell: 0 and *y, or -1 (missing / bad). */
int sc_label_value(const sc_schema *s, sc_cell cell, float *y);

/* Compile the patterns of fields and texts. */
int sc_schema_compile(sc_schema *s, sc_error *err);
/* Rebuild infos, main_col_ptrs, bucket names after fields changed. */
int sc_schema_finish(sc_schema *s, sc_error *err);
sc_schema *sc_schema_new(void);

#endif
