/* Entity tables: the rows of a dataset config's side table (a join such as
 * MovieLens's u.item or u.user), read as the config describes them
 * (delimiter, quoting, Latin-1, column names), with the config's text
 * columns of that entity derived per row (e.g. "genres" from the 19 genre
 * flag columns). `semctr embed --config ... --entity item --template ...`
 * turns them into texts, one vector per entity key. */
#ifndef SC_DATA_ENTITY_H
#define SC_DATA_ENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct sc_entity_table {
    char name[64];      /* the join's name ("item") */
    int n_cols;         /* raw columns, then derived text columns */
    char **col_names;   /* (n_cols) */
    int key_col;        /* index of the join key column */
    int64_t n_rows;
    char **cells;       /* (n_rows, n_cols) UTF-8 strings, "" when empty */
} sc_entity_table;

/* Read the join named entity of the config at config_path. Unknown entity →
 * error listing the joins. Rows with the wrong number of cells → error
 * naming file and line. */
int sc_entity_table_load(sc_entity_table *t, const char *config_path, const char *entity, sc_error *err);
void sc_entity_table_free(sc_entity_table *t);
/* Column index by name, or -1. */
int sc_entity_table_col(const sc_entity_table *t, const char *name, size_t len);

#endif
