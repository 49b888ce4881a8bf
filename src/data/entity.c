#include "data/entity.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "data/config.h"
#include "data/csv.h"

#define MAX_COLS 1024

void sc_entity_table_free(sc_entity_table *t) {
    if (t->cells)
        for (int64_t i = 0; i < t->n_rows * t->n_cols; i++) sc_free(t->cells[i]);
    if (t->col_names)
        for (int c = 0; c < t->n_cols; c++) sc_free(t->col_names[c]);
    sc_free(t->cells);
    sc_free(t->col_names);
    memset(t, 0, sizeof *t);
}

int sc_entity_table_col(const sc_entity_table *t, const char *name, size_t len) {
    for (int c = 0; c < t->n_cols; c++)
        if (strlen(t->col_names[c]) == len && !memcmp(t->col_names[c], name, len)) return c;
    return -1;
}

/* The raw column of text column x for this table, or -1: "entity.col" or a
 * bare column name of the table. */
static int text_source(const sc_entity_table *t, int n_raw, const sc_text_cfg *x) {
    const char *col = x->column;
    size_t en = strlen(t->name);
    if (!strncmp(col, t->name, en) && col[en] == '.') col += en + 1;
    else if (strchr(col, '.')) return -1;
    for (int c = 0; c < n_raw; c++)
        if (!strcmp(t->col_names[c], col)) return c;
    return -1;
}

int sc_entity_table_load(sc_entity_table *t, const char *config_path, const char *entity, sc_error *err) {
    memset(t, 0, sizeof *t);
    sc_dcfg *cfg = NULL;
    int rc = sc_dcfg_load(&cfg, config_path, err);
    if (rc) return rc;
    const sc_table_cfg *tab = NULL;
    char names[512] = "";
    for (int j = 0; j < cfg->n_joins; j++) {
        if (!strcmp(cfg->joins[j].name, entity)) tab = &cfg->joins[j];
        strncat(names, j ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, cfg->joins[j].name, sizeof names - strlen(names) - 1);
    }
    if (!tab) {
        rc = sc_fail(err, SC_ENOTFOUND, "%s: no join named '%s' (joins: %s)", config_path, entity,
                     cfg->n_joins ? names : "none");
        sc_dcfg_free(cfg);
        return rc;
    }
    snprintf(t->name, sizeof t->name, "%s", entity);
    sc_cell *cells = sc_malloc(MAX_COLS * sizeof *cells);
    char *utf8 = NULL;
    size_t utf8_cap = 0;
    int64_t cap = 0;
    int n_raw = tab->columns ? tab->n_columns : -1;
    /* derived text columns of this entity: a column of the table, or flags that are all columns of it */
    int text_of[64], n_text = 0;
    if (!cells) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    for (int p = 0; p < tab->n_paths && !rc; p++) {
        sc_line_reader r;
        rc = sc_line_reader_open(&r, tab->paths[p], err);
        if (rc) break;
        char *line;
        size_t len;
        int got;
        while (!rc && (got = sc_line_reader_next(&r, &line, &len, err)) == 1) {
            if (tab->latin1) {
                if (utf8_cap < 2 * len + 1) {
                    sc_free(utf8);
                    utf8_cap = 2 * len + 1;
                    utf8 = sc_malloc(utf8_cap);
                    if (!utf8) {
                        rc = sc_fail(err, SC_ENOMEM, "out of memory");
                        break;
                    }
                }
                len = sc_latin1_to_utf8(line, len, utf8);
                line = utf8;
            }
            if (len == 0) continue;
            int nc = sc_csv_split(line, len, tab->delim, (size_t)tab->dlen, tab->quote, cells, MAX_COLS);
            if (nc < 0 || nc > MAX_COLS) {
                rc = sc_fail(err, SC_EINVAL, "%s:%lld: cannot split the line into cells", tab->paths[p],
                             (long long)r.line_no);
                break;
            }
            if (!t->col_names) {
                /* the columns: from the config, or this header line */
                int header = tab->header && !tab->columns;
                n_raw = header ? nc : n_raw;
                if (n_raw < 1) {
                    rc = sc_fail(err, SC_EINVAL, "%s: join '%s' has neither columns nor a header", config_path, entity);
                    break;
                }
                for (int x = 0; x < cfg->n_texts && n_text < 64; x++) text_of[n_text++] = x;
                t->col_names = sc_calloc((size_t)n_raw + (size_t)n_text, sizeof *t->col_names);
                if (!t->col_names) {
                    rc = sc_fail(err, SC_ENOMEM, "out of memory");
                    break;
                }
                for (int c = 0; c < n_raw; c++) {
                    t->col_names[c] = header ? sc_malloc(cells[c].len + 1) : sc_strdup(tab->columns[c]);
                    if (header && t->col_names[c]) {
                        memcpy(t->col_names[c], cells[c].p, cells[c].len);
                        t->col_names[c][cells[c].len] = '\0';
                    }
                }
                t->n_cols = n_raw;
                /* keep only the text columns of this entity */
                int k = 0;
                for (int i = 0; i < n_text; i++) {
                    const sc_text_cfg *x = &cfg->texts[text_of[i]];
                    int ok = x->n_flags ? 1 : text_source(t, n_raw, x) >= 0;
                    for (int f = 0; f < x->n_flags && ok; f++) ok = sc_entity_table_col(t, x->flags[f], strlen(x->flags[f])) >= 0;
                    if (ok && sc_entity_table_col(t, x->name, strlen(x->name)) < 0) {
                        text_of[k++] = text_of[i];
                        t->col_names[t->n_cols++] = sc_strdup(x->name);
                    }
                }
                n_text = k;
                t->key_col = sc_entity_table_col(t, tab->key, strlen(tab->key));
                if (t->key_col < 0) {
                    rc = sc_fail(err, SC_EINVAL, "%s: join '%s' has no key column '%s'", config_path, entity, tab->key);
                    break;
                }
                if (header) continue;
            }
            if (nc != n_raw) {
                rc = sc_fail(err, SC_EINVAL, "%s:%lld: %d cells, the config names %d columns", tab->paths[p],
                             (long long)r.line_no, nc, n_raw);
                break;
            }
            if (t->n_rows == cap) {
                cap = cap ? cap * 2 : 1024;
                char **nc2 = sc_realloc(t->cells, (size_t)cap * t->n_cols * sizeof *nc2);
                if (!nc2) {
                    rc = sc_fail(err, SC_ENOMEM, "out of memory");
                    break;
                }
                t->cells = nc2;
            }
            char **row = t->cells + t->n_rows * t->n_cols;
            for (int c = 0; c < t->n_cols; c++) row[c] = NULL;
            t->n_rows++;
            for (int c = 0; c < n_raw && !rc; c++) {
                row[c] = sc_malloc(cells[c].len + 1);
                if (!row[c]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
                else {
                    memcpy(row[c], cells[c].p, cells[c].len);
                    row[c][cells[c].len] = '\0';
                }
            }
            for (int i = 0; i < n_text && !rc; i++) {
                const sc_text_cfg *x = &cfg->texts[text_of[i]];
                char buf[4096] = "";
                if (x->n_flags) {
                    for (int f = 0; f < x->n_flags; f++) {
                        int c = sc_entity_table_col(t, x->flags[f], strlen(x->flags[f]));
                        if (strcmp(row[c], "1")) continue;
                        if (buf[0]) strncat(buf, x->joiner[0] ? x->joiner : ", ", sizeof buf - strlen(buf) - 1);
                        strncat(buf, x->flags[f], sizeof buf - strlen(buf) - 1);
                    }
                } else if (x->sep[0]) { /* "Crime|Drama" -> "Crime, Drama", as prepare writes it */
                    const char *cell = row[text_source(t, n_raw, x)];
                    size_t len = strlen(cell);
                    char *v = sc_malloc(sc_split_join_cap(len, x->sep, x->joiner));
                    if (!v) rc = sc_fail(err, SC_ENOMEM, "out of memory");
                    else v[sc_split_join(cell, len, x->sep, x->joiner, v)] = '\0';
                    row[n_raw + i] = v;
                    continue;
                } else {
                    snprintf(buf, sizeof buf, "%s", row[text_source(t, n_raw, x)]);
                }
                row[n_raw + i] = sc_strdup(buf);
                if (!row[n_raw + i]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            }
        }
        if (!rc && got < 0) rc = got;
        sc_line_reader_close(&r);
    }
    if (!rc && t->n_rows == 0) rc = sc_fail(err, SC_EINVAL, "%s: join '%s' has no rows", config_path, entity);
    sc_free(cells);
    sc_free(utf8);
    sc_dcfg_free(cfg);
    if (rc) sc_entity_table_free(t);
    return rc;
}
