/* What a delimited file looks like, read from its first lines: the
 * delimiter and quoting, whether the first line is a header, the encoding,
 * and per column what its values are (numbers, integers, 0/1, empty,
 * distinct values, lengths, values split by '|' ';' ',' inside a cell,
 * years, URLs). `semctr init` (data/draft.h) drafts a dataset config from it.
 *
 * Every count is over the rows read (at most max_rows data rows and 64 MiB),
 * so a column that changes later in a long file is not seen. */
#ifndef SC_DATA_SNIFF_H
#define SC_DATA_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/config.h"
#include "data/strmap.h"

#define SC_SNIFF_SEPS 3       /* separators tried inside a cell: "|", ";", "," */
#define SC_SNIFF_HIST 16      /* numeric values counted one by one (rating scales) */
#define SC_SNIFF_DISTINCT 100000 /* distinct values kept per column */

typedef struct sc_sniff_sep {
    int64_t cells;            /* cells holding the separator */
    int64_t pieces;           /* non-empty values in all non-empty cells */
    int64_t piece_bytes;
    int max_pieces;           /* in one cell */
    sc_strmap distinct;       /* the values; stops growing at 10,000 */
} sc_sniff_sep;

typedef struct sc_sniff_col {
    char name[SC_NAME_MAX];   /* the header's (made unique, at most 63 bytes), else "c1", "c2", ... */
    int64_t filled;           /* non-empty cells */
    int64_t numeric;          /* cells that are numbers */
    int64_t integer;          /* numbers with an integral value */
    int64_t binary;           /* cells "0" or "1" (as numbers) */
    double min, max, sum;     /* of the numbers */
    sc_strmap values;         /* distinct cells, val = count; stops growing at SC_SNIFF_DISTINCT */
    int distinct_capped;      /* more distinct values than kept */
    int64_t bytes;            /* of the non-empty cells */
    int64_t with_space;       /* cells holding a space */
    int64_t with_year;        /* cells holding 18xx, 19xx or 20xx between non-digits */
    int64_t url;              /* cells starting with http:// or https:// */
    int64_t hex8;             /* cells of exactly 8 hex digits (Criteo's hashed categoricals) */
    /* numeric values one by one, while there are at most SC_SNIFF_HIST */
    int n_hist;               /* -1 once there were more */
    double hist_value[SC_SNIFF_HIST];
    int64_t hist_count[SC_SNIFF_HIST];
    sc_sniff_sep sep[SC_SNIFF_SEPS]; /* values inside a cell, per separator "|", ";", "," (not the delimiter) */
} sc_sniff_col;

typedef struct sc_sniff {
    char path[4096];
    char delim[4];            /* "\t", ",", "|", ";" or "::" */
    char quote;               /* '"' or 0 */
    int header;               /* the first line holds column names */
    int latin1;               /* not valid UTF-8: read as Latin-1 */
    int bom;                  /* starts with a UTF-8 byte order mark */
    int n_cols;
    sc_sniff_col *cols;       /* (n_cols) */
    int64_t rows;             /* data rows read */
    int64_t bad_rows;         /* rows with another number of cells (not counted above) */
    int max_ones;             /* the most "1" cells in one row among the columns that hold only 0 and 1 */
    int eof;                  /* the whole file was read */
} sc_sniff;

extern const char *const sc_sniff_seps[SC_SNIFF_SEPS];

/* Read up to max_rows data rows of path. Fails, naming the file, on an
 * empty file, UTF-16, JSON (not a delimited table) or a file in which no
 * delimiter splits the lines into the same number of cells. *out is the
 * caller's (sc_sniff_free) on success. */
int sc_sniff_file(sc_sniff *out, const char *path, int64_t max_rows, sc_error *err);
/* The same over bytes in memory (name is used in messages). */
int sc_sniff_buffer(sc_sniff *out, const char *buf, size_t len, const char *name, int64_t max_rows, sc_error *err);
void sc_sniff_free(sc_sniff *s);

/* Index of the column named name, or -1. */
int sc_sniff_col_index(const sc_sniff *s, const char *name);

#endif
