/* `semctr init`: a commented dataset config drafted from the files
 * themselves, so a new dataset needs an edit, not a page of reading.
 *
 * From the main table (the click log) and its side tables it writes: the
 * delimiter, quoting, header and column names, the encoding; the label (a
 * 0/1 column, or a rating scale cut where about a third or more is
 * positive); the time column and a split by time (else sequential); each
 * column as a field of the type its values suggest (ids and small integer
 * sets categorical, other numbers numeric, cells holding '|'-separated short
 * values multi, columns of only 0/1 one multi field from flags, years found
 * in dates and titles numeric); text columns for the LLM methods (long
 * strings, the side tables' values); a behaviour sequence (the user's earlier
 * items) and the gAUC group when the log has a user and an item column and
 * a time column. Every choice carries a comment with what it was read from.
 * The draft is accepted by `semctr prepare` as it is. */
#ifndef SC_DATA_DRAFT_H
#define SC_DATA_DRAFT_H

#include <stdint.h>

#include "base/error.h"

typedef struct sc_draft_join {
    const char *name; /* the join's name ("item") */
    const char *path;
    const char *key;  /* its key column: a name, or a 1-based number when the file has no header */
} sc_draft_join;

typedef struct sc_draft_opts {
    const char *input;          /* the main table */
    const sc_draft_join *joins;
    int n_joins;
    const char *config_path;    /* where the config goes: relative paths in it start at its folder */
    const char *label;          /* NULL: guessed; else "column" or "column OP number" */
    int64_t max_rows;           /* rows read per file; <= 0: 1,000,000 */
} sc_draft_opts;

/* The config text (YAML) into *yaml (the caller's, sc_free). Fails with a
 * message naming the file when a file cannot be read as a delimited table,
 * a join key is not a column or matches no column of the input, or no column
 * looks like a label (then --label names it). */
int sc_draft_config(const sc_draft_opts *o, char **yaml, sc_error *err);

#endif
