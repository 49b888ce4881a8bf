/* The dataset config (YAML) of `semctr prepare`: which files, how they are
 * delimited, the label, the fields and their transforms, joins with side
 * tables, raw text columns, the split and the group field. Every key is
 * documented in docs/data.md. Unknown keys, wrong types and bad values are
 * errors that name the key and its line in the config. */
#ifndef SC_DATA_CONFIG_H
#define SC_DATA_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SC_NAME_MAX 64
#define SC_MAX_COLUMNS 4096 /* columns of a table */
#define SC_MAX_FLAGS 4096   /* flag columns of a multi field or a text column */
#define SC_MAX_JOINS 64

enum sc_transform {
    SC_TR_CATEGORICAL = 0, /* vocabulary (min_count) or hash buckets */
    SC_TR_NUMERIC,         /* float, normalised */
    SC_TR_BUCKET,          /* numeric -> bucket index by boundaries (explicit or quantiles) */
    SC_TR_LOG2,            /* numeric -> Criteo's floor(ln(v)^2) for v > 2, else v; then a vocabulary */
    SC_TR_MULTI,           /* several ids per row: split a cell, or names of flag columns that are 1 */
    SC_TR_SEQUENCE,        /* the last W values of another field for the same user, most recent first */
};

enum sc_normalize { SC_NORM_NONE = 0, SC_NORM_STANDARD, SC_NORM_MINMAX, SC_NORM_LOG };
enum sc_split_method { SC_SPLIT_TIME = 0, SC_SPLIT_RANDOM, SC_SPLIT_SEQUENTIAL, SC_SPLIT_FILES };
enum sc_label_op { SC_OP_NONE = 0, SC_OP_GE, SC_OP_GT, SC_OP_LE, SC_OP_LT, SC_OP_EQ, SC_OP_NE };

/* One delimited file (or several with the same layout, read in order). */
typedef struct sc_table_cfg {
    char name[SC_NAME_MAX]; /* join name ("item"); "input" for the main table */
    char **paths;           /* (n_paths) resolved: ${VAR} expanded, relative to the config's folder */
    int n_paths;
    char delim[16];
    int dlen;
    char quote;             /* 0 = no quoting */
    int header;             /* first line holds the column names */
    int latin1;             /* encoding: latin1 -> converted to UTF-8 */
    char **columns;         /* (n_columns) from `columns:`; NULL when taken from the header */
    int n_columns;
    char key[SC_NAME_MAX];  /* joins: the key column of this table */
    char on[SC_NAME_MAX];   /* joins: the main table's column matched against key */
    int line;               /* line in the config, for messages */
} sc_table_cfg;

typedef struct sc_field_cfg {
    char name[SC_NAME_MAX];
    char column[2 * SC_NAME_MAX]; /* source column: "col" or "table.col"; default: name */
    int transform;                /* enum sc_transform */
    int min_count;                /* vocabulary: values seen fewer times in train map to OOV (default 1) */
    int64_t hash_buckets;         /* > 0: id = 2 + xxHash64(value, seed 0) % hash_buckets, no vocabulary */
    int normalize;                /* enum sc_normalize (numeric) */
    double fill;                  /* numeric: value of an empty cell (default 0) */
    double *boundaries;           /* (n_boundaries) bucket boundaries, ascending */
    int n_boundaries;
    int quantiles;                /* > 0: boundaries = quantiles of the train values */
    char sep[16];                 /* multi/sequence: separator inside a cell (default "|") */
    int max_len;                  /* multi/sequence: W */
    int pooling;                  /* enum sc_pooling */
    char **flags;                 /* multi from flag columns: ids are the names of the columns that hold 1 */
    int n_flags;
    char *pattern;                /* PCRE2 applied to the cell first; capture group 1 (or the match) is the value */
    char of[SC_NAME_MAX];         /* sequence: the field whose values form the history */
    char by[2 * SC_NAME_MAX];     /* sequence: the column naming whose history it is (the user) */
    int share;                    /* sequence: 1 = use the embedding table of `of` (share_embedding) */
    int line;
} sc_field_cfg;

typedef struct sc_text_cfg {
    char name[SC_NAME_MAX];
    char column[2 * SC_NAME_MAX];
    char **flags;                 /* text = names of the flag columns that hold 1, joined by `joiner` */
    int n_flags;
    char sep[16];                 /* "" or: the cell's values split here, joined by `joiner` ("A|B" -> "A, B") */
    char joiner[16];
    char *pattern;
    int line;
} sc_text_cfg;

/* `extract:` (semctr extract, docs/extract.md): prompt templates that ask a
 * decoder LLM for the knowledge of one entity (a join: "item", "user"). */
typedef struct sc_extract_prompt_cfg {
    char entity[SC_NAME_MAX];     /* the join whose rows are prompted */
    char *template;               /* {column} of the entity table; {history} for users */
    char *fallback;               /* text kept when the answer stays off-format; NULL: the entity's columns */
    char *prefix;                 /* start of the answer written after the assistant prefix; NULL: none */
    char **fields;                /* the answer lines kept: "Field: value" */
    int n_fields;
    int min_fields;               /* answers with fewer kept lines are off-format (default: half, rounded up) */
    int ask_once;                 /* ask: once (one answer, lines parsed) or fields (default: one line per field) */
    int line;
} sc_extract_prompt_cfg;

typedef struct sc_extract_cfg {
    char *system;                 /* system prompt of the chat template; NULL: the model's default */
    int history;                  /* titles of the user's last K train items in {history} (default 10) */
    char history_column[SC_NAME_MAX]; /* text column naming a history item (default "title") */
    sc_extract_prompt_cfg *prompts;
    int n_prompts;
    int line;                     /* 0 when the config has no `extract:` */
} sc_extract_cfg;

typedef struct sc_dcfg {
    char name[SC_NAME_MAX];
    char source[512];             /* the config's file name, for messages */
    char *text;                   /* the config text as given */
    char *base_dir;               /* folder relative paths start from */
    sc_table_cfg input;
    sc_table_cfg *joins;
    int n_joins;
    char label_column[2 * SC_NAME_MAX];
    int label_op;                 /* enum sc_label_op; NONE: the column holds 0 or 1 */
    double label_value;
    int label_line, split_line, group_line; /* lines of `label`, `split.column`, `group`, for messages */
    sc_field_cfg *fields;
    int n_fields;
    sc_text_cfg *texts;
    int n_texts;
    int split;                    /* enum sc_split_method */
    char split_column[2 * SC_NAME_MAX];
    double fractions[3];
    uint64_t seed;
    char *split_files[3];         /* split: files */
    char group[SC_NAME_MAX];      /* field whose value names the gAUC group; "" for none */
    int bad_rows_fail;            /* bad_rows: fail (1) or skip (0, default) */
    sc_extract_cfg extract;       /* `extract:`; extract.line == 0 when absent */
} sc_dcfg;

/* Parse a config from memory. name is used in messages ("configs/x.yaml"),
 * base_dir is where relative paths start (NULL: the current directory).
 * On success *out is owned by the caller (sc_dcfg_free). */
int sc_dcfg_parse(sc_dcfg **out, const char *text, size_t len, const char *name, const char *base_dir,
                  sc_error *err);
/* Read and parse a config file; relative paths start from its folder. */
int sc_dcfg_load(sc_dcfg **out, const char *path, sc_error *err);
void sc_dcfg_free(sc_dcfg *c);

/* Expand ${VAR} and ${VAR:-default} in s; a relative result is joined to
 * base_dir. Returns a new string (sc_free) or NULL with err set. */
char *sc_expand_path(const char *s, const char *base_dir, const char *where, sc_error *err);

#endif
