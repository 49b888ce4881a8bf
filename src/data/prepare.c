/* The prepare pipeline (see prepare.h). Dimension letters: N rows of a
 * split, F fields, T text columns, W ids per row, B rows per batch. */
#include "data/prepare.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "data/datadir.h"
#include "data/schema_impl.h"

#define BATCH_ROWS 4096
#define RESERVOIR 100000

static const char *const bad_names[SC_BAD_COUNT] = {"wrong column count", "bad UTF-8", "missing or bad label",
                                                    "not a number"};
const char *sc_bad_reason_name(int r) { return r >= 0 && r < SC_BAD_COUNT ? bad_names[r] : "?"; }

/* Columns of one delimited table as found in its file. */
typedef struct tcols {
    int n;
    char (*name)[SC_NAME_MAX];
} tcols;

typedef struct fitstat {
    sc_strmap counts;     /* value -> count (vocabulary fields) */
    double n, mean, m2, lo, hi;
    double *res;          /* reservoir for quantiles */
    int64_t n_res, seen;
} fitstat;

typedef struct history {
    sc_strmap users;      /* user -> slot */
    int32_t *ring;        /* (users, W) */
    int32_t *count;       /* (users) items seen */
    size_t cap;
} history;

typedef struct rowrec {
    int64_t off, line_no;
    uint32_t len;
    int32_t file;
    double time;
    int32_t split;
} rowrec;

typedef struct prep {
    const sc_dcfg *cfg;
    sc_schema *s;
    sc_error *err;
    int fail_bad;
    sc_prepare_stats *st;
    tcols mainc;
    tcols *joinc;
    int *main_file_idx;   /* (n_main) */
    int time_idx;         /* main_cols index of the split column, -1 */
    sc_cell *cells;       /* (SC_MAX_COLUMNS) */
    sc_cell *main;        /* (n_main) */
    int64_t *jrow;
    char *conv;
    size_t conv_cap;
    sc_encscratch sc;
    fitstat *fit;         /* (F) */
    history *hist;        /* (F) */
    sc_strmap groups;
    /* in-memory mode */
    char **files;
    int n_files;
    rowrec *rows;
    int64_t n_rows;
    char *linebuf;
    size_t linebuf_cap;
    char colbuf[600];     /* column_list's message buffer */
    uint64_t split_sum[3], schema_sum; /* checksums for the manifest in meta.json */
} prep;

static int oom(prep *p) { return sc_fail(p->err, SC_ENOMEM, "prepare: out of memory"); }

/* ---------------------------------------------------------------- columns */

static int read_header(prep *p, const sc_table_cfg *t, tcols *out) {
    if (t->n_columns) {
        out->n = t->n_columns;
        out->name = sc_calloc((size_t)t->n_columns, SC_NAME_MAX);
        if (!out->name) return oom(p);
        for (int i = 0; i < t->n_columns; i++) snprintf(out->name[i], SC_NAME_MAX, "%s", t->columns[i]);
        return SC_OK;
    }
    const char *path = t->paths ? t->paths[0] : p->cfg->split_files[0];
    sc_line_reader lr;
    int rc = sc_line_reader_open(&lr, path, p->err);
    if (rc) return rc;
    char *line;
    size_t len;
    rc = sc_line_reader_next(&lr, &line, &len, p->err);
    if (rc <= 0) {
        sc_line_reader_close(&lr);
        return rc < 0 ? rc : sc_fail(p->err, SC_EINVAL, "%s: empty file (expected a header row)", path);
    }
    int n = sc_csv_split(line, len, t->delim, (size_t)t->dlen, t->quote, p->cells, SC_MAX_COLUMNS);
    if (n < 1 || n > SC_MAX_COLUMNS) {
        sc_line_reader_close(&lr);
        return sc_fail(p->err, SC_EINVAL, "%s:1: cannot read the header row", path);
    }
    out->n = n;
    out->name = sc_calloc((size_t)n, SC_NAME_MAX);
    if (!out->name) {
        sc_line_reader_close(&lr);
        return oom(p);
    }
    for (int i = 0; i < n; i++) {
        sc_cell c = p->cells[i];
        if (c.len >= SC_NAME_MAX || c.len == 0) {
            sc_line_reader_close(&lr);
            return sc_fail(p->err, SC_EINVAL, "%s:1: column %d of the header is empty or longer than %d bytes", path,
                           i + 1, SC_NAME_MAX - 1);
        }
        memcpy(out->name[i], c.p, c.len);
    }
    sc_line_reader_close(&lr);
    return SC_OK;
}

/* "a, b, c": the columns of a table, for messages (cut at cap). */
static const char *column_list(const tcols *t, char *buf, size_t cap) {
    size_t w = 0;
    buf[0] = 0;
    for (int i = 0; i < t->n && w < cap; i++)
        w += (size_t)snprintf(buf + w, cap - w, "%s%s", i ? ", " : "", t->name[i]);
    if (w >= cap && cap > 4) strcpy(buf + cap - 4, "...");
    return buf;
}

static int col_index(const tcols *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name)) return i;
    return -1;
}

/* Index of name in schema main_cols, adding it (it must be a column of the main file). */
static int main_col(prep *p, const char *name) {
    sc_schema *s = p->s;
    for (int m = 0; m < s->n_main; m++)
        if (!strcmp(s->main_cols[m], name)) return m;
    int fi = col_index(&p->mainc, name);
    if (fi < 0 || strlen(name) >= SC_NAME_MAX) return -1;
    void *nc = sc_realloc(s->main_cols, (size_t)(s->n_main + 1) * SC_NAME_MAX);
    void *ni = sc_realloc(p->main_file_idx, (size_t)(s->n_main + 1) * sizeof(int));
    if (nc) s->main_cols = nc;
    if (ni) p->main_file_idx = ni;
    if (!nc || !ni) return -2;
    memcpy(s->main_cols[s->n_main], name, strlen(name) + 1);
    p->main_file_idx[s->n_main] = fi;
    return s->n_main++;
}

static int join_col(prep *p, int j, const char *name) {
    sc_jtable *t = &p->s->joins[j];
    for (int c = 0; c < t->n_cols; c++)
        if (!strcmp(t->cols[c], name)) return c;
    if (col_index(&p->joinc[j], name) < 0 || strlen(name) >= SC_NAME_MAX) return -1;
    void *nc = sc_realloc(t->cols, (size_t)(t->n_cols + 1) * SC_NAME_MAX);
    if (!nc) return -2;
    t->cols = nc;
    memcpy(t->cols[t->n_cols], name, strlen(name) + 1);
    return t->n_cols++;
}

/* Resolve "col" or "table.col" to a source; what/line name the config entry. */
static int resolve(prep *p, const char *ref, sc_src *out, const char *what, int line) {
    const sc_dcfg *cfg = p->cfg;
    const char *dot = strchr(ref, '.');
    char table[SC_NAME_MAX] = "", col[2 * SC_NAME_MAX];
    snprintf(col, sizeof col, "%s", ref);
    if (dot && (size_t)(dot - ref) < sizeof table) {
        memcpy(table, ref, (size_t)(dot - ref));
        table[dot - ref] = 0;
        int known = !strcmp(table, "input");
        for (int j = 0; j < cfg->n_joins; j++) known |= !strcmp(table, cfg->joins[j].name);
        if (known) snprintf(col, sizeof col, "%s", dot + 1);
        else table[0] = 0; /* a dot inside a plain column name */
    }
    if (!table[0] || !strcmp(table, "input")) {
        int m = main_col(p, col);
        if (m == -2) return oom(p);
        if (m >= 0) {
            out->table = -1;
            out->col = m;
            return SC_OK;
        }
        if (table[0]) goto unknown;
    }
    int found = -1;
    for (int j = 0; j < cfg->n_joins; j++) {
        if (table[0] && strcmp(table, cfg->joins[j].name)) continue;
        if (col_index(&p->joinc[j], col) < 0) continue;
        if (found >= 0)
            return sc_fail(p->err, SC_EINVAL, "%s:%d: %s: column '%s' is in joins '%s' and '%s'; write '%s.%s'",
                           cfg->source, line, what, col, cfg->joins[found].name,
                           cfg->joins[j].name, cfg->joins[found].name, col);
        found = j;
    }
    if (found >= 0) {
        int c = join_col(p, found, col);
        if (c < 0) return oom(p);
        out->table = found;
        out->col = c;
        return SC_OK;
    }
unknown:
    return sc_fail(p->err, SC_EINVAL, "%s:%d: %s: unknown column '%s' (not in the input%s; input columns: %s)",
                   cfg->source, line, what, ref, cfg->n_joins ? " nor in any join" : "",
                   column_list(&p->mainc, p->colbuf, sizeof p->colbuf));
}

/* Where a field's or a text column's value comes from: one column, or (with
 * flags) the flag columns whose names become the values; *src is the first. */
static int resolve_source(prep *p, const char *column, char **cfg_flags, int n_flags, const char *what, int line,
                          sc_src *src, char (**flags)[SC_NAME_MAX], sc_src **flag_src, int *n_out) {
    if (!n_flags) return resolve(p, column, src, what, line);
    *n_out = n_flags;
    *flags = sc_calloc((size_t)n_flags, SC_NAME_MAX);
    *flag_src = sc_calloc((size_t)n_flags, sizeof **flag_src);
    if (!*flags || !*flag_src) return oom(p);
    for (int k = 0; k < n_flags; k++) {
        snprintf((*flags)[k], SC_NAME_MAX, "%s", cfg_flags[k]);
        int rc = resolve(p, cfg_flags[k], &(*flag_src)[k], what, line);
        if (rc) return rc;
    }
    *src = (*flag_src)[0];
    return SC_OK;
}

/* A sequence field's `by`: a field (its column's raw values name the user),
 * or else a column, as `of` and `group` name fields. */
static int resolve_by(prep *p, const sc_field_cfg *fc, sc_src *out) {
    const sc_dcfg *cfg = p->cfg;
    char what[320];
    for (int j = 0; j < cfg->n_fields; j++) {
        const sc_field_cfg *u = &cfg->fields[j];
        if (strcmp(u->name, fc->by)) continue;
        if (u->transform == SC_TR_MULTI || u->transform == SC_TR_SEQUENCE)
            return sc_fail(p->err, SC_EINVAL, "%s:%d: sequence field '%s': 'by: %s' names a %s field; name the field "
                           "(or column) that holds one user per row", cfg->source, fc->line, fc->name, fc->by,
                           u->transform == SC_TR_MULTI ? "multi" : "sequence");
        snprintf(what, sizeof what, "sequence field '%s' (by: field '%s')", fc->name, u->name);
        return resolve(p, u->column, out, what, fc->line);
    }
    snprintf(what, sizeof what, "sequence field '%s': 'by: %s' names no field, and as a column", fc->name, fc->by);
    return resolve(p, fc->by, out, what, fc->line);
}

/* Build the schema skeleton: columns, joins' used columns, field encoders. */
static int build_schema(prep *p) {
    const sc_dcfg *cfg = p->cfg;
    sc_schema *s = p->s;
    int rc;
    if ((rc = read_header(p, &cfg->input, &p->mainc))) return rc;
    p->joinc = sc_calloc((size_t)cfg->n_joins + 1, sizeof *p->joinc);
    s->joins = sc_calloc((size_t)cfg->n_joins + 1, sizeof *s->joins);
    if (!p->joinc || !s->joins) return oom(p);
    s->n_joins = cfg->n_joins;
    for (int j = 0; j < cfg->n_joins; j++) {
        if ((rc = read_header(p, &cfg->joins[j], &p->joinc[j]))) return rc;
        sc_jtable *t = &s->joins[j];
        snprintf(t->name, sizeof t->name, "%s", cfg->joins[j].name);
        snprintf(t->on, sizeof t->on, "%s", cfg->joins[j].on);
        if (col_index(&p->joinc[j], cfg->joins[j].key) < 0)
            return sc_fail(p->err, SC_EINVAL, "%s:%d: join '%s': key column '%s' is not a column of %s",
                           cfg->source, cfg->joins[j].line, t->name, cfg->joins[j].key, cfg->joins[j].paths[0]);
        t->on_idx = main_col(p, t->on);
        if (t->on_idx == -2) return oom(p);
        if (t->on_idx < 0)
            return sc_fail(p->err, SC_EINVAL, "%s:%d: join '%s': 'on: %s' is not a column of the input (its columns: %s)",
                           cfg->source, cfg->joins[j].line, t->name, t->on,
                           column_list(&p->mainc, p->colbuf, sizeof p->colbuf));
    }
    /* label */
    snprintf(s->label_col, sizeof s->label_col, "%s", cfg->label_column);
    s->label_op = cfg->label_op;
    s->label_value = cfg->label_value;
    static const char *const opn[] = {"", ">=", ">", "<=", "<", "==", "!="};
    if (cfg->label_op) snprintf(s->label_rule, sizeof s->label_rule, "%s %s %g", cfg->label_column, opn[cfg->label_op], cfg->label_value);
    else snprintf(s->label_rule, sizeof s->label_rule, "%s (0 or 1)", cfg->label_column);
    s->label_idx = main_col(p, cfg->label_column);
    if (s->label_idx == -2) return oom(p);
    if (s->label_idx < 0)
        return sc_fail(p->err, SC_EINVAL, "%s:%d: label column '%s' is not a column of the input (its columns: %s)", cfg->source,
                       cfg->label_line, cfg->label_column, column_list(&p->mainc, p->colbuf, sizeof p->colbuf));
    p->time_idx = -1;
    if (cfg->split == SC_SPLIT_TIME) {
        p->time_idx = main_col(p, cfg->split_column);
        if (p->time_idx == -2) return oom(p);
        if (p->time_idx < 0)
            return sc_fail(p->err, SC_EINVAL, "%s:%d: split column '%s' is not a column of the input (its columns: %s)", cfg->source,
                           cfg->split_line, cfg->split_column, column_list(&p->mainc, p->colbuf, sizeof p->colbuf));
    }
    /* fields */
    s->fenc = sc_calloc((size_t)cfg->n_fields, sizeof *s->fenc);
    if (!s->fenc) return oom(p);
    s->n_fields = cfg->n_fields;
    for (int f = 0; f < cfg->n_fields; f++) {
        const sc_field_cfg *fc = &cfg->fields[f];
        sc_fenc *e = &s->fenc[f];
        char what[128];
        snprintf(what, sizeof what, "field '%s'", fc->name);
        snprintf(e->info.name, sizeof e->info.name, "%s", fc->name);
        e->info.width = 1;
        e->info.vocab_size = 1;
        e->info.share_with = -1;
        e->info.pooling = fc->pooling;
        e->transform = fc->transform;
        e->min_count = fc->min_count;
        e->hash_buckets = fc->hash_buckets;
        e->normalize = fc->normalize;
        e->fill = fc->fill;
        e->quantiles = fc->quantiles;
        e->of = -1;
        e->by.table = -1;
        e->by.col = -1;
        e->seq_col = -1;
        snprintf(e->sep, sizeof e->sep, "%s", fc->sep);
        if (fc->pattern && !(e->pattern = sc_strdup(fc->pattern))) return oom(p);
        if (fc->n_boundaries) {
            e->bounds = sc_calloc((size_t)fc->n_boundaries, sizeof(double));
            if (!e->bounds) return oom(p);
            memcpy(e->bounds, fc->boundaries, (size_t)fc->n_boundaries * sizeof(double));
            e->n_bounds = fc->n_boundaries;
        }
        switch (fc->transform) {
        case SC_TR_NUMERIC: e->info.kind = SC_FIELD_NUMERIC; break;
        case SC_TR_MULTI: e->info.kind = SC_FIELD_MULTI, e->info.width = fc->max_len; break;
        case SC_TR_SEQUENCE: e->info.kind = SC_FIELD_SEQUENCE, e->info.width = fc->max_len; break;
        default: e->info.kind = SC_FIELD_CATEGORICAL;
        }
        if (fc->transform == SC_TR_SEQUENCE) {
            e->of = sc_schema_field_index(s, fc->of);
            if (e->of < 0 || e->of >= f)
                return sc_fail(p->err, SC_EINVAL, "%s:%d: sequence field '%s': 'of: %s' must name a field listed before it",
                               cfg->source, fc->line, fc->name, fc->of);
            if (fc->share) e->info.share_with = e->of;
            if ((rc = resolve_by(p, fc, &e->by))) return rc;
            continue;
        }
        rc = resolve_source(p, fc->column, fc->flags, fc->n_flags, what, fc->line, &e->src, &e->flags, &e->flag_src,
                            &e->n_flags);
        if (rc) return rc;
    }
    if (cfg->group[0]) s->group = sc_schema_field_index(s, cfg->group);
    if (s->group >= 0 && s->fenc[s->group].info.kind == SC_FIELD_NUMERIC)
        return sc_fail(p->err, SC_EINVAL, "%s:%d: group field '%s' must not be numeric", cfg->source, cfg->group_line,
                       cfg->group);
    /* text columns */
    s->tenc = sc_calloc((size_t)cfg->n_texts + 1, sizeof *s->tenc);
    if (!s->tenc) return oom(p);
    s->n_text = cfg->n_texts;
    for (int t = 0; t < cfg->n_texts; t++) {
        const sc_text_cfg *tc = &cfg->texts[t];
        sc_tenc *e = &s->tenc[t];
        char what[128];
        snprintf(what, sizeof what, "text column '%s'", tc->name);
        snprintf(e->name, sizeof e->name, "%s", tc->name);
        snprintf(e->joiner, sizeof e->joiner, "%s", tc->joiner);
        snprintf(e->sep, sizeof e->sep, "%s", tc->sep);
        if (tc->pattern && !(e->pattern = sc_strdup(tc->pattern))) return oom(p);
        rc = resolve_source(p, tc->column, tc->flags, tc->n_flags, what, tc->line, &e->src, &e->flags, &e->flag_src,
                            &e->n_flags);
        if (rc) return rc;
    }
    /* sequence cells for encode: a main column named like the field, if any */
    for (int f = 0; f < s->n_fields; f++)
        if (s->fenc[f].transform == SC_TR_SEQUENCE) {
            int m = -1;
            for (int k = 0; k < s->n_main; k++)
                if (!strcmp(s->main_cols[k], s->fenc[f].info.name)) m = k;
            if (m < 0) {
                void *nc = sc_realloc(s->main_cols, (size_t)(s->n_main + 1) * SC_NAME_MAX);
                void *ni = sc_realloc(p->main_file_idx, (size_t)(s->n_main + 1) * sizeof(int));
                if (nc) s->main_cols = nc;
                if (ni) p->main_file_idx = ni;
                if (!nc || !ni) return oom(p);
                snprintf(s->main_cols[s->n_main], SC_NAME_MAX, "%s", s->fenc[f].info.name);
                p->main_file_idx[s->n_main] = -1; /* not in the file: prepare builds histories itself */
                m = s->n_main++;
            }
            s->fenc[f].seq_col = m;
        }
    if ((rc = sc_schema_compile(s, p->err))) return rc;
    p->main = sc_calloc((size_t)s->n_main + 1, sizeof *p->main);
    p->jrow = sc_calloc((size_t)s->n_joins + 1, sizeof *p->jrow);
    if (!p->main || !p->jrow) return oom(p);
    return SC_OK;
}

/* ------------------------------------------------------------- bad rows */

static int bad_row(prep *p, int reason, int count, const char *path, int64_t line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int bad_row(prep *p, int reason, int count, const char *path, int64_t line, const char *fmt, ...) {
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (p->fail_bad)
        return sc_fail(p->err, SC_EINVAL, "%s:%lld: %s (bad_rows: fail; use --bad-rows skip to drop such rows)", path,
                       (long long)line, detail);
    if (count) {
        if (!p->st->bad[reason]) snprintf(p->st->bad_first[reason], sizeof p->st->bad_first[reason], "%s:%lld: %s", path, (long long)line, detail);
        p->st->bad[reason]++;
    }
    return 0;
}

/* Convert, check and split a line of a table; fills p->cells. Returns 1
 * when the row is good, 0 when it was skipped as bad, < 0 on error. */
static int split_line(prep *p, const sc_table_cfg *t, int ncols, char **line, size_t *len, const char *path,
                      int64_t line_no, int count) {
    if (t->latin1) {
        if (2 * *len + 1 > p->conv_cap) {
            size_t cap = 2 * *len + 1024;
            char *nb = sc_realloc(p->conv, cap);
            if (!nb) return oom(p);
            p->conv = nb;
            p->conv_cap = cap;
        }
        *len = sc_latin1_to_utf8(*line, *len, p->conv);
        *line = p->conv;
    } else {
        size_t at;
        if (!sc_utf8_valid(*line, *len, &at))
            return bad_row(p, SC_BAD_UTF8, count, path, line_no, "not valid UTF-8 at byte %zu (set 'encoding: latin1' if the file is Latin-1)", at + 1);
    }
    int n = sc_csv_split(*line, *len, t->delim, (size_t)t->dlen, t->quote, p->cells, SC_MAX_COLUMNS);
    if (n < 0) return bad_row(p, SC_BAD_COLUMNS, count, path, line_no, "unterminated quote");
    if (n != ncols) return bad_row(p, SC_BAD_COLUMNS, count, path, line_no, "%d columns, expected %d", n, ncols);
    return 1;
}

/* A main-table line: split, fill p->main, check label, numbers, time. */
static int parse_main(prep *p, char *line, size_t len, const char *path, int64_t line_no, int count, double *time,
                      float *label) {
    const sc_dcfg *cfg = p->cfg;
    sc_schema *s = p->s;
    int rc = split_line(p, &cfg->input, p->mainc.n, &line, &len, path, line_no, count);
    if (rc <= 0) return rc;
    for (int m = 0; m < s->n_main; m++) {
        int fi = p->main_file_idx[m];
        if (fi >= 0) p->main[m] = p->cells[fi];
        else p->main[m].p = NULL, p->main[m].len = 0;
    }
    sc_cell lc = p->main[s->label_idx];
    if (lc.len == 0) return bad_row(p, SC_BAD_LABEL, count, path, line_no, "label column '%s' is empty", s->label_col);
    if (sc_label_value(s, lc, label))
        return bad_row(p, SC_BAD_LABEL, count, path, line_no, "label column '%s' holds '%.*s'%s", s->label_col,
                       (int)(lc.len > 40 ? 40 : lc.len), lc.p, s->label_op ? ", not a number" : ", expected 0 or 1");
    sc_rowview v = {p->main, p->jrow};
    for (int f = 0; f < s->n_fields; f++) {
        const sc_fenc *e = &s->fenc[f];
        if (e->src.table >= 0 || (e->transform != SC_TR_NUMERIC && e->transform != SC_TR_BUCKET && e->transform != SC_TR_LOG2))
            continue;
        double x;
        if (sc_field_number(s, e, &v, &p->sc, &x) < 0) {
            sc_cell c = p->main[e->src.col];
            return bad_row(p, SC_BAD_NUMBER, count, path, line_no, "field '%s' (column '%s'): '%.*s' is not a number",
                           e->info.name, s->main_cols[e->src.col], (int)(c.len > 40 ? 40 : c.len), c.p);
        }
    }
    if (time) {
        sc_cell c = p->main[p->time_idx];
        if (sc_parse_double(c.p, c.len, time))
            return bad_row(p, SC_BAD_NUMBER, count, path, line_no, "time column '%s': '%.*s' is not a number",
                           s->main_cols[p->time_idx], (int)(c.len > 40 ? 40 : c.len), c.p);
    }
    sc_rowview_join(s, &v);
    return 1;
}

/* --------------------------------------------------------------- joins */

static int load_join(prep *p, int j) {
    const sc_table_cfg *t = &p->cfg->joins[j];
    sc_jtable *jt = &p->s->joins[j];
    int key = col_index(&p->joinc[j], t->key);
    int *ci = sc_calloc((size_t)jt->n_cols + 1, sizeof *ci);
    if (!ci) return oom(p);
    for (int c = 0; c < jt->n_cols; c++) ci[c] = col_index(&p->joinc[j], jt->cols[c]);
    size_t cap = 0;
    int rc = SC_OK;
    for (int f = 0; f < t->n_paths && !rc; f++) {
        sc_line_reader lr;
        if ((rc = sc_line_reader_open(&lr, t->paths[f], p->err))) break;
        char *line;
        size_t len;
        int k;
        while ((k = sc_line_reader_next(&lr, &line, &len, p->err)) > 0) {
            if (t->header && lr.line_no == 1) continue;
            if (!len) continue;
            int ok = split_line(p, t, p->joinc[j].n, &line, &len, t->paths[f], lr.line_no, 1);
            if (ok < 0) {
                rc = ok;
                break;
            }
            if (!ok) continue;
            int ins;
            int64_t row = sc_strmap_insert(&jt->keys, p->cells[key].p, p->cells[key].len, 0, &ins);
            if (row < 0) {
                rc = oom(p);
                break;
            }
            if (!ins) {
                rc = sc_fail(p->err, SC_EINVAL, "%s:%lld: join '%s': key '%.*s' appears twice", t->paths[f],
                             (long long)lr.line_no, jt->name, (int)(p->cells[key].len > 60 ? 60 : p->cells[key].len),
                             p->cells[key].p);
                break;
            }
            if ((size_t)(row + 1) * (size_t)jt->n_cols > cap) {
                size_t nc = cap ? cap * 2 : 1024;
                while (nc < (size_t)(row + 1) * (size_t)jt->n_cols) nc *= 2;
                uint32_t *cell = sc_realloc(jt->cell, nc * sizeof *cell);
                if (!cell) {
                    rc = oom(p);
                    break;
                }
                jt->cell = cell;
                cap = nc;
            }
            for (int c = 0; c < jt->n_cols; c++) {
                sc_cell v = p->cells[ci[c]];
                int64_t si = sc_strmap_insert(&jt->strings, v.p, v.len, 0, NULL);
                if (si < 0) {
                    rc = oom(p);
                    break;
                }
                jt->cell[(size_t)row * (size_t)jt->n_cols + (size_t)c] = (uint32_t)si;
            }
            if (rc) break;
        }
        if (k < 0 && !rc) rc = k;
        sc_line_reader_close(&lr);
    }
    sc_free(ci);
    if (!rc && jt->keys.n == 0) rc = sc_fail(p->err, SC_EINVAL, "join '%s': %s has no rows", jt->name, t->paths[0]);
    if (!rc && !jt->cell && jt->n_cols) rc = oom(p);
    return rc;
}

/* --------------------------------------------------------- row sources */

/* The files read in order, with the split each belongs to (-1: by rule). */
typedef struct srcfile {
    const char *path;
    int split;
} srcfile;

typedef struct iter {
    prep *p;
    srcfile files[64];
    int n_files, fi;
    sc_line_reader lr;
    int open;
    int64_t ordinal;     /* data rows returned so far (streaming) */
    int64_t cut[2];      /* sequential: train rows, train + valid rows */
    int64_t k;           /* in-memory position */
} iter;

static int split_of(const prep *p, const iter *it, int file_split, int64_t ordinal) {
    if (file_split >= 0) return file_split;
    if (p->cfg->split == SC_SPLIT_SEQUENTIAL) return ordinal < it->cut[0] ? 0 : ordinal < it->cut[1] ? 1 : 2;
    /* random: a hash of the row's ordinal, so every pass agrees */
    uint64_t h = XXH64(&ordinal, sizeof ordinal, p->cfg->seed);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return u < p->cfg->fractions[0] ? 0 : u < p->cfg->fractions[0] + p->cfg->fractions[1] ? 1 : 2;
}

static void iter_init(iter *it, prep *p) {
    memset(it, 0, sizeof *it);
    it->p = p;
    const sc_dcfg *cfg = p->cfg;
    if (cfg->split == SC_SPLIT_FILES) {
        for (int s = 0; s < 3; s++)
            if (cfg->split_files[s]) it->files[it->n_files++] = (srcfile){cfg->split_files[s], s};
    } else {
        for (int f = 0; f < cfg->input.n_paths && f < 64; f++) it->files[it->n_files++] = (srcfile){cfg->input.paths[f], -1};
    }
}

/* Next raw data line (streaming): 1, 0 at the end, < 0 on error. */
static int iter_next_line(iter *it, char **line, size_t *len, const char **path, int *split) {
    prep *p = it->p;
    for (;;) {
        if (!it->open) {
            if (it->fi >= it->n_files) return 0;
            int rc = sc_line_reader_open(&it->lr, it->files[it->fi].path, p->err);
            if (rc) return rc;
            it->open = 1;
        }
        int k = sc_line_reader_next(&it->lr, line, len, p->err);
        if (k < 0) return k;
        if (k == 0) {
            sc_line_reader_close(&it->lr);
            it->open = 0;
            it->fi++;
            continue;
        }
        if (p->cfg->input.header && it->lr.line_no == 1) continue;
        if (!*len) continue;
        *path = it->files[it->fi].path;
        *split = split_of(p, it, it->files[it->fi].split, it->ordinal);
        it->ordinal++;
        return 1;
    }
}

static void iter_close(iter *it) {
    if (it->open) sc_line_reader_close(&it->lr);
    it->open = 0;
}

/* Where n rows are cut: train is [0, cut[0]), valid [cut[0], cut[1]), test
 * the rest. The cuts are cumulative, floor(n * f0) and floor(n * (f0 + f1)),
 * so that equal valid and test fractions get sizes at most one row apart
 * (100,837 rows at 0.8/0.1/0.1: 80,669 / 10,084 / 10,084). The 1e-7 keeps
 * 0.7 + 0.2 = 0.8999999999999999 from losing a row to floating point. */
static void split_cuts(int64_t n, const double fr[3], int64_t cut[2]) {
    cut[0] = (int64_t)floor((double)n * fr[0] + 1e-7);
    cut[1] = (int64_t)floor((double)n * (fr[0] + fr[1]) + 1e-7);
    if (cut[0] > n) cut[0] = n;
    if (cut[1] > n) cut[1] = n;
    if (cut[1] < cut[0]) cut[1] = cut[0];
}

/* Pass 0: rows per split (streaming), or load, check and sort (time). */
static int count_rows(prep *p, iter *it, int64_t cap[3]) {
    const sc_dcfg *cfg = p->cfg;
    cap[0] = cap[1] = cap[2] = 0;
    if (cfg->split != SC_SPLIT_TIME) {
        char *line;
        size_t len;
        const char *path;
        int split, k;
        int64_t total = 0;
        /* the sequential cut needs the total first: count with the cut at infinity */
        it->cut[0] = it->cut[1] = INT64_MAX;
        while ((k = iter_next_line(it, &line, &len, &path, &split)) > 0) {
            cap[split]++;
            total++;
        }
        iter_close(it);
        if (k < 0) return k;
        if (cfg->split == SC_SPLIT_SEQUENTIAL) {
            split_cuts(total, cfg->fractions, it->cut);
            cap[0] = it->cut[0];
            cap[1] = it->cut[1] - it->cut[0];
            cap[2] = total - it->cut[1];
        }
        return SC_OK;
    }
    /* split by time: every file in memory, rows checked, then sorted */
    p->files = sc_calloc((size_t)it->n_files + 1, sizeof *p->files);
    if (!p->files) return oom(p);
    size_t rcap = 0;
    for (int f = 0; f < it->n_files; f++) {
        size_t flen;
        int rc = sc_read_file(it->files[f].path, &p->files[f], &flen, p->err);
        if (rc) return rc;
        p->n_files = f + 1;
        char *buf = p->files[f];
        int64_t line_no = 0;
        for (size_t off = 0; off < flen;) {
            char *nl = memchr(buf + off, '\n', flen - off);
            size_t end = nl ? (size_t)(nl - buf) : flen, len = end - off;
            line_no++;
            size_t start = off;
            off = end + 1;
            if (len && buf[start + len - 1] == '\r') len--;
            if ((cfg->input.header && line_no == 1) || !len) continue;
            /* parse a copy: quotes are undone in place */
            if (len + 1 > p->linebuf_cap) {
                char *nb = sc_realloc(p->linebuf, len + 1024);
                if (!nb) return oom(p);
                p->linebuf = nb;
                p->linebuf_cap = len + 1024;
            }
            memcpy(p->linebuf, buf + start, len);
            double t;
            float y;
            int ok = parse_main(p, p->linebuf, len, it->files[f].path, line_no, 1, &t, &y);
            if (ok < 0) return ok;
            if (!ok) continue;
            if ((size_t)p->n_rows == rcap) {
                rcap = rcap ? rcap * 2 : 65536;
                rowrec *nr = sc_realloc(p->rows, rcap * sizeof *nr);
                if (!nr) return oom(p);
                p->rows = nr;
            }
            p->rows[p->n_rows++] = (rowrec){(int64_t)start, line_no, (uint32_t)len, f, t, 0};
        }
    }
    return SC_OK;
}

static int cmp_time(const void *a, const void *b) {
    const rowrec *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Next good row in processing order; p->main / p->jrow filled. */
static int next_row(prep *p, iter *it, int pass, int *split, float *label, const char **path, int64_t *line_no) {
    if (p->cfg->split == SC_SPLIT_TIME) {
        for (;;) {
            if (it->k >= p->n_rows) return 0;
            rowrec *r = &p->rows[it->k++];
            if (pass == 1 && r->split != 0) return 0; /* train rows come first */
            memcpy(p->linebuf, p->files[r->file] + r->off, r->len);
            int ok = parse_main(p, p->linebuf, r->len, it->files[r->file].path, r->line_no, 0, NULL, label);
            if (ok < 0) return ok;
            if (!ok) return sc_fail(p->err, SC_EINTERNAL, "row checked in pass 0 failed later");
            *split = r->split;
            *path = it->files[r->file].path;
            *line_no = r->line_no;
            return 1;
        }
    }
    for (;;) {
        char *line;
        size_t len;
        int k = iter_next_line(it, &line, &len, path, split);
        if (k <= 0) return k;
        if (pass == 1 && *split != 0) {
            if (p->cfg->split == SC_SPLIT_SEQUENTIAL) return 0; /* train rows come first */
            continue;
        }
        *line_no = it->lr.line_no;
        int ok = parse_main(p, line, len, *path, *line_no, pass == 2, NULL, label);
        if (ok < 0) return ok;
        if (ok) return 1;
    }
}

/* ------------------------------------------------------------------ fit */

static int fit_row(prep *p) {
    sc_schema *s = p->s;
    sc_rowview v = {p->main, p->jrow};
    sc_cell vals[256];
    for (int f = 0; f < s->n_fields; f++) {
        sc_fenc *e = &s->fenc[f];
        fitstat *fs = &p->fit[f];
        switch (e->transform) {
        case SC_TR_CATEGORICAL:
        case SC_TR_LOG2:
        case SC_TR_MULTI: {
            if (e->hash_buckets) break;
            int max = e->transform == SC_TR_MULTI ? (e->info.width < 256 ? e->info.width : 256) : 1;
            int k = sc_field_strings(s, e, &v, &p->sc, vals, max);
            for (int i = 0; i < k; i++) {
                int64_t idx = sc_strmap_insert(&fs->counts, vals[i].p, vals[i].len, 0, NULL);
                if (idx < 0) return oom(p);
                fs->counts.val[idx]++;
            }
            break;
        }
        case SC_TR_NUMERIC:
        case SC_TR_BUCKET: {
            double x;
            if (sc_field_number(s, e, &v, &p->sc, &x) != 0) break;
            if (fs->n == 0) fs->lo = fs->hi = x;
            fs->n++;
            double d = x - fs->mean;
            fs->mean += d / fs->n;
            fs->m2 += d * (x - fs->mean);
            if (x < fs->lo) fs->lo = x;
            if (x > fs->hi) fs->hi = x;
            if (e->transform == SC_TR_BUCKET && e->quantiles) {
                if (!fs->res) {
                    fs->res = sc_malloc(RESERVOIR * sizeof(double));
                    if (!fs->res) return oom(p);
                }
                if (fs->n_res < RESERVOIR) fs->res[fs->n_res++] = x;
                else {
                    /* deterministic reservoir: the slot comes from a hash of the count */
                    uint64_t h = XXH64(&fs->seen, sizeof fs->seen, 7) % (uint64_t)(fs->seen + 1);
                    if (h < RESERVOIR) fs->res[h] = x;
                }
                fs->seen++;
            }
            break;
        }
        default: break;
        }
    }
    return SC_OK;
}

static const fitstat *g_sort_fs;
static int cmp_count(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int64_t cx = g_sort_fs->counts.val[x], cy = g_sort_fs->counts.val[y];
    if (cx != cy) return cx > cy ? -1 : 1;
    return x < y ? -1 : x > y;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Vocabularies (count >= min_count, most frequent first, ties by first
 * appearance), numeric statistics, quantile boundaries. */
static int fit_finish(prep *p) {
    sc_schema *s = p->s;
    for (int f = 0; f < s->n_fields; f++) {
        sc_fenc *e = &s->fenc[f];
        fitstat *fs = &p->fit[f];
        switch (e->transform) {
        case SC_TR_CATEGORICAL:
        case SC_TR_LOG2:
        case SC_TR_MULTI:
            if (e->hash_buckets) {
                e->info.vocab_size = e->hash_buckets + 2;
                break;
            }
            {
                size_t n = fs->counts.n, k = 0;
                int64_t *ord = sc_malloc((n + 1) * sizeof *ord);
                if (!ord) return oom(p);
                for (size_t i = 0; i < n; i++)
                    if (fs->counts.val[i] >= e->min_count) ord[k++] = (int64_t)i;
                g_sort_fs = fs;
                qsort(ord, k, sizeof *ord, cmp_count);
                for (size_t i = 0; i < k; i++)
                    if (sc_strmap_insert(&e->vocab, fs->counts.key[ord[i]], fs->counts.len[ord[i]], 0, NULL) < 0) {
                        sc_free(ord);
                        return oom(p);
                    }
                sc_free(ord);
                e->info.vocab_size = (int64_t)e->vocab.n + 2;
                if (e->info.vocab_size > INT32_MAX) return sc_fail(p->err, SC_EINVAL, "field '%s': vocabulary too large", e->info.name);
            }
            sc_strmap_free(&fs->counts);
            break;
        case SC_TR_NUMERIC:
            if (e->normalize == SC_NORM_STANDARD) {
                e->p0 = fs->mean;
                e->p1 = fs->n > 1 ? sqrt(fs->m2 / fs->n) : 1;
            } else if (e->normalize == SC_NORM_MINMAX) {
                e->p0 = fs->lo;
                e->p1 = fs->hi;
            }
            break;
        case SC_TR_BUCKET:
            if (e->quantiles) {
                if (fs->n_res == 0) return sc_fail(p->err, SC_EINVAL, "field '%s': no numbers in the train split to take quantiles of", e->info.name);
                qsort(fs->res, (size_t)fs->n_res, sizeof(double), cmp_double);
                e->bounds = sc_calloc((size_t)e->quantiles, sizeof(double));
                if (!e->bounds) return oom(p);
                e->n_bounds = 0;
                for (int q = 1; q < e->quantiles; q++) {
                    double b = fs->res[(int64_t)((double)q / e->quantiles * (double)(fs->n_res - 1))];
                    if (e->n_bounds == 0 || b > e->bounds[e->n_bounds - 1]) e->bounds[e->n_bounds++] = b;
                }
                if (e->n_bounds == 0) e->bounds[e->n_bounds++] = fs->res[0];
            }
            e->info.vocab_size = e->n_bounds + 3;
            break;
        default: break;
        }
    }
    for (int f = 0; f < s->n_fields; f++)
        if (s->fenc[f].transform == SC_TR_SEQUENCE) s->fenc[f].info.vocab_size = s->fenc[s->fenc[f].of].info.vocab_size;
    return SC_OK;
}

/* ---------------------------------------------------------------- encode */

typedef struct out_split {
    sc_split_writer *w;
    sc_batch b;
    int32_t *text; /* (B, T) */
} out_split;

static int hist_row(prep *p, int f, sc_batch *b, int i) {
    sc_schema *s = p->s;
    sc_fenc *e = &s->fenc[f];
    history *h = &p->hist[f];
    int W = e->info.width;
    int32_t *dst = b->ids[f] + (size_t)i * W;
    sc_rowview v = {p->main, p->jrow};
    sc_cell u = sc_rowview_cell(s, &v, e->by);
    if (!u.p) {
        for (int k = 0; k < W; k++) dst[k] = 0;
        return SC_OK;
    }
    int ins;
    int64_t slot = sc_strmap_insert(&h->users, u.p, u.len, 0, &ins);
    if (slot < 0) return oom(p);
    if ((size_t)slot >= h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        int32_t *ring = sc_realloc(h->ring, cap * (size_t)W * sizeof *ring);
        if (ring) h->ring = ring;
        int32_t *cnt = sc_realloc(h->count, cap * sizeof *cnt);
        if (cnt) h->count = cnt;
        if (!ring || !cnt) return oom(p);
        h->cap = cap;
    }
    if (ins) h->count[slot] = 0;
    int32_t *ring = h->ring + (size_t)slot * W;
    int32_t n = h->count[slot];
    int have = n < W ? n : W;
    for (int k = 0; k < have; k++) dst[k] = ring[((n - 1 - k) % W + W) % W]; /* most recent first */
    for (int k = have; k < W; k++) dst[k] = 0;
    ring[n % W] = b->ids[e->of][i];
    h->count[slot] = n + 1 == INT32_MAX ? W : n + 1;
    return SC_OK;
}

/* Count the row in every join that lacks its key. */
static void count_unmatched(prep *p, const char *path, int64_t line_no) {
    sc_schema *s = p->s;
    for (int j = 0; j < s->n_joins; j++) {
        if (p->jrow[j] >= 0) continue;
        sc_join_stats *js = &p->st->joins[j];
        if (!js->unmatched++) {
            sc_cell k = p->main[s->joins[j].on_idx];
            snprintf(js->first, sizeof js->first, "%s:%lld: %s '%.*s'", path, (long long)line_no, s->joins[j].on,
                     (int)(k.len > 60 ? 60 : k.len), k.p ? k.p : "");
        }
    }
}

static int encode_row(prep *p, out_split *o, float label, int split) {
    sc_schema *s = p->s;
    sc_batch *b = &o->b;
    int i = b->n;
    sc_rowview v = {p->main, p->jrow};
    sc_encode_fields(s, &v, &p->sc, b, i);
    for (int f = 0; f < s->n_fields; f++)
        if (s->fenc[f].transform == SC_TR_SEQUENCE) {
            int rc = hist_row(p, f, b, i);
            if (rc) return rc;
        }
    b->label[i] = label;
    b->group[i] = 0;
    if (s->group >= 0) {
        sc_cell vals[1];
        int k = sc_field_strings(s, &s->fenc[s->group], &v, &p->sc, vals, 1);
        if (k == 1) {
            int64_t g = sc_strmap_insert(&p->groups, vals[0].p, vals[0].len, 0, NULL);
            if (g < 0) return oom(p);
            b->group[i] = (int32_t)g;
        } else b->group[i] = -1;
    }
    for (int t = 0; t < s->n_text; t++) {
        sc_cell c;
        int32_t idx = -1;
        int got = sc_text_value(s, &s->tenc[t], &v, &p->sc, &c);
        if (got < 0) return oom(p);
        if (got == 0) {
            int64_t k = sc_strmap_insert(&s->tenc[t].strings, c.p, c.len, 0, NULL);
            if (k < 0) return oom(p);
            idx = (int32_t)k;
        }
        o->text[(size_t)i * s->n_text + t] = idx;
    }
    b->n++;
    p->st->rows[split]++;
    p->st->positives[split] += label > 0.5f;
    if (b->n == b->cap) {
        int rc = sc_split_writer_append(o->w, b, o->text, p->err);
        b->n = 0;
        return rc;
    }
    return SC_OK;
}

/* ------------------------------------------------------------- outputs */

static int write_bytes_atomic(const char *path, const void *buf, size_t n, sc_atomic_file *f, sc_error *err) {
    int rc = sc_atomic_open(f, path, err);
    if (rc) return rc;
    rc = sc_atomic_write(f, buf, n, err);
    if (rc) sc_atomic_abort(f);
    return rc;
}

static char *meta_json(prep *p) {
    sc_schema *s = p->s;
    cJSON *root = cJSON_CreateObject();
    static const char *const sn[3] = {"train", "valid", "test"};
    cJSON_AddStringToObject(root, "format", "semctr dataset");
    cJSON_AddNumberToObject(root, "version", SC_SCD_VERSION);
    cJSON_AddStringToObject(root, "name", p->cfg->name);
    cJSON_AddStringToObject(root, "label", s->label_rule);
    static const char *const methods[] = {"time", "random", "sequential", "files"};
    cJSON_AddStringToObject(root, "split", methods[p->cfg->split]);
    cJSON *rows = cJSON_AddObjectToObject(root, "rows");
    cJSON *pos = cJSON_AddObjectToObject(root, "positives");
    cJSON *rate = cJSON_AddObjectToObject(root, "positive_rate");
    for (int k = 0; k < 3; k++) {
        cJSON_AddNumberToObject(rows, sn[k], (double)p->st->rows[k]);
        cJSON_AddNumberToObject(pos, sn[k], (double)p->st->positives[k]);
        cJSON_AddNumberToObject(rate, sn[k], p->st->rows[k] ? (double)p->st->positives[k] / (double)p->st->rows[k] : 0);
    }
    static const char *const kinds[] = {"categorical", "numeric", "multi", "sequence"};
    cJSON *fields = cJSON_AddArrayToObject(root, "fields");
    for (int f = 0; f < s->n_fields; f++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->fenc[f].info.name);
        cJSON_AddStringToObject(o, "kind", kinds[s->fenc[f].info.kind]);
        cJSON_AddNumberToObject(o, "width", s->fenc[f].info.width);
        cJSON_AddNumberToObject(o, "vocab_size", (double)s->fenc[f].info.vocab_size);
        if (s->fenc[f].info.share_with >= 0) cJSON_AddStringToObject(o, "share_with", s->fenc[s->fenc[f].info.share_with].info.name);
        cJSON_AddItemToArray(fields, o);
    }
    cJSON *texts = cJSON_AddArrayToObject(root, "text");
    for (int t = 0; t < s->n_text; t++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->tenc[t].name);
        cJSON_AddStringToObject(o, "entity", sc_schema_text_entity(s, t));
        cJSON_AddNumberToObject(o, "distinct", (double)s->tenc[t].strings.n);
        cJSON_AddItemToArray(texts, o);
    }
    if (s->group >= 0) cJSON_AddStringToObject(root, "group", s->fenc[s->group].info.name);
    cJSON *joins = cJSON_AddObjectToObject(root, "joins");
    for (int j = 0; j < p->st->n_joins; j++) {
        const sc_join_stats *js = &p->st->joins[j];
        cJSON *o = cJSON_AddObjectToObject(joins, js->name);
        cJSON_AddNumberToObject(o, "rows", (double)js->rows);
        cJSON_AddNumberToObject(o, "unmatched", (double)js->unmatched);
        if (js->unmatched) cJSON_AddStringToObject(o, "first_unmatched", js->first);
    }
    cJSON *bad = cJSON_AddObjectToObject(root, "bad_rows");
    for (int r = 0; r < SC_BAD_COUNT; r++) {
        if (!p->st->bad[r]) continue;
        cJSON *o = cJSON_AddObjectToObject(bad, bad_names[r]);
        cJSON_AddNumberToObject(o, "count", (double)p->st->bad[r]);
        cJSON_AddStringToObject(o, "first", p->st->bad_first[r]);
    }
    /* the manifest (data/datadir.h): which files belong to this dataset */
    cJSON_AddStringToObject(root, "config", p->cfg->source);
    cJSON *files = cJSON_AddObjectToObject(root, "files");
    const char *names[4] = {SC_SCHEMA_FILE, "train.scd", "valid.scd", "test.scd"};
    const uint64_t sums[4] = {p->schema_sum, p->split_sum[0], p->split_sum[1], p->split_sum[2]};
    for (int k = 0; k < 4; k++) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sums[k]);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(files, names[k]), "checksum", hex);
    }
    char *txt = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return txt;
}

static void prep_free(prep *p) {
    sc_free(p->mainc.name);
    if (p->joinc)
        for (int j = 0; j < p->cfg->n_joins; j++) sc_free(p->joinc[j].name);
    sc_free(p->joinc);
    sc_free(p->main_file_idx);
    sc_free(p->cells);
    sc_free(p->main);
    sc_free(p->jrow);
    sc_free(p->conv);
    sc_scratch_free(&p->sc);
    if (p->fit)
        for (int f = 0; f < p->s->n_fields; f++) {
            sc_strmap_free(&p->fit[f].counts);
            sc_free(p->fit[f].res);
        }
    sc_free(p->fit);
    if (p->hist)
        for (int f = 0; f < p->s->n_fields; f++) {
            sc_strmap_free(&p->hist[f].users);
            sc_free(p->hist[f].ring);
            sc_free(p->hist[f].count);
        }
    sc_free(p->hist);
    sc_strmap_free(&p->groups);
    for (int f = 0; f < p->n_files; f++) sc_free(p->files[f]);
    sc_free(p->files);
    sc_free(p->rows);
    sc_free(p->linebuf);
}

int sc_prepare(const sc_dcfg *cfg, const char *out_dir, int bad_rows, sc_prepare_stats *stats, sc_error *err) {
    double t0 = sc_now();
    sc_prepare_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    prep P, *p = &P;
    memset(p, 0, sizeof P);
    p->cfg = cfg;
    p->err = err;
    p->st = stats;
    p->fail_bad = bad_rows < 0 ? cfg->bad_rows_fail : bad_rows;
    out_split outs[3];
    memset(outs, 0, sizeof outs);
    sc_atomic_file fschema = {0}, fmeta = {0};
    char final[4096], stage[4096];
    int staged = 0;
    uint8_t *sbuf = NULL;
    char *meta = NULL;
    int rc;
    if (cfg->split == SC_SPLIT_FILES && cfg->input.n_paths)
        return sc_fail(err, SC_EINVAL, "config: with 'split: files' give the files under split.files, not input.path");
    if (cfg->split != SC_SPLIT_FILES && !cfg->input.n_paths) return sc_fail(err, SC_EINVAL, "config: 'input' needs 'path'");
    p->s = sc_schema_new();
    p->cells = sc_calloc(SC_MAX_COLUMNS, sizeof *p->cells);
    if (!p->s || !p->cells) {
        sc_schema_free(p->s);
        sc_free(p->cells);
        return sc_fail(err, SC_ENOMEM, "prepare: out of memory");
    }
    if ((rc = sc_scratch_init(&p->sc, err))) goto done;
    if (!(p->s->config_text = sc_strdup(cfg->text ? cfg->text : ""))) {
        rc = oom(p);
        goto done;
    }
    if ((rc = build_schema(p))) goto done;
    stats->n_joins = cfg->n_joins;
    for (int j = 0; j < cfg->n_joins; j++) {
        if ((rc = load_join(p, j))) goto done;
        snprintf(stats->joins[j].name, sizeof stats->joins[j].name, "%s", cfg->joins[j].name);
        stats->joins[j].rows = (int64_t)p->s->joins[j].keys.n;
    }
    sc_info("prepare: reading %s%s", cfg->split == SC_SPLIT_FILES ? cfg->split_files[0] : cfg->input.paths[0],
            (cfg->split == SC_SPLIT_FILES || cfg->input.n_paths > 1) ? " and more" : "");

    /* pass 0: rows per split */
    iter it;
    iter_init(&it, p);
    int64_t cap[3];
    if ((rc = count_rows(p, &it, cap))) goto done;
    int64_t cut0 = it.cut[0], cut1 = it.cut[1];
    if (cfg->split == SC_SPLIT_TIME) {
        /* stable sort by time (ties keep file order), then cut by fractions */
        qsort(p->rows, (size_t)p->n_rows, sizeof *p->rows, cmp_time);
        int64_t n = p->n_rows, cut[2];
        split_cuts(n, cfg->fractions, cut);
        int64_t c0 = cut[0], c1 = cut[1];
        for (int64_t r = 0; r < n; r++) p->rows[r].split = r < c0 ? 0 : r < c1 ? 1 : 2;
        cap[0] = c0, cap[1] = c1 - c0, cap[2] = n - c1;
    }
    if (cap[0] + cap[1] + cap[2] == 0) {
        rc = sc_fail(err, SC_EINVAL, "prepare: %s has no data rows", it.n_files ? it.files[0].path : "the input");
        goto done;
    }
    if (cap[0] == 0) {
        rc = sc_fail(err, SC_EINVAL, "prepare: the train split is empty (%lld rows in all)", (long long)(cap[0] + cap[1] + cap[2]));
        goto done;
    }

    /* pass 1: fit on train rows */
    p->fit = sc_calloc((size_t)p->s->n_fields, sizeof *p->fit);
    p->hist = sc_calloc((size_t)p->s->n_fields, sizeof *p->hist);
    if (!p->fit || !p->hist) {
        rc = oom(p);
        goto done;
    }
    iter_init(&it, p);
    it.cut[0] = cut0, it.cut[1] = cut1;
    {
        int split;
        float y;
        const char *path;
        int64_t ln, n_fit = 0;
        int k;
        while ((k = next_row(p, &it, 1, &split, &y, &path, &ln)) > 0) {
            if ((rc = fit_row(p))) break;
            n_fit++;
        }
        iter_close(&it);
        if (k < 0) rc = k;
        if (rc) goto done;
        if (n_fit == 0) {
            rc = sc_fail(err, SC_EINVAL, "prepare: no good rows in the train split (all %lld were bad; see --bad-rows)", (long long)cap[0]);
            goto done;
        }
    }
    if ((rc = fit_finish(p))) goto done;
    if ((rc = sc_schema_finish(p->s, err))) goto done;

    /* pass 2: encode and write, into a private folder that replaces out_dir at the end (data/datadir.h) */
    if ((rc = sc_datadir_begin(out_dir, final, stage, sizeof stage, err))) goto done;
    staged = 1;
    {
        static const char *const sn[3] = {"train.scd", "valid.scd", "test.scd"};
        const char **tn = sc_calloc((size_t)p->s->n_text + 1, sizeof *tn);
        if (!tn) {
            rc = oom(p);
            goto done;
        }
        for (int t = 0; t < p->s->n_text; t++) tn[t] = p->s->tenc[t].name;
        for (int k = 0; k < 3 && !rc; k++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", stage, sn[k]);
            rc = sc_split_writer_open(&outs[k].w, path, p->s->infos, p->s->n_fields, p->s->group >= 0, p->s->n_text, tn,
                                      cap[k], err);
            if (!rc) rc = sc_batch_alloc(&outs[k].b, p->s->infos, p->s->n_fields, BATCH_ROWS, err);
            if (!rc && !(outs[k].text = sc_calloc((size_t)BATCH_ROWS * (size_t)(p->s->n_text + 1), sizeof(int32_t)))) rc = oom(p);
        }
        sc_free(tn);
        if (rc) goto done;
    }
    iter_init(&it, p);
    it.cut[0] = cut0, it.cut[1] = cut1;
    {
        int split;
        float y;
        const char *path;
        int64_t ln, done_rows = 0;
        int k;
        sc_progress prog;
        sc_progress_begin(&prog, "prepare", cap[0] + cap[1] + cap[2], "rows");
        while ((k = next_row(p, &it, 2, &split, &y, &path, &ln)) > 0) {
            count_unmatched(p, path, ln);
            if ((rc = encode_row(p, &outs[split], y, split))) break;
            if ((++done_rows & 0xFFFF) == 0) {
                sc_progress_update(&prog, done_rows, NULL);
                if (sc_interrupted()) {
                    rc = sc_fail(err, SC_EINTERRUPTED, "prepare: interrupted; nothing was written");
                    break;
                }
            }
        }
        sc_progress_end(&prog);
        iter_close(&it);
        if (k < 0) rc = k;
        if (rc) goto done;
        for (int s = 0; s < 3 && !rc; s++) {
            rc = sc_split_writer_append(outs[s].w, &outs[s].b, outs[s].text, err);
            outs[s].b.n = 0;
        }
        if (rc) goto done;
    }
    if (stats->rows[0] == 0) {
        rc = sc_fail(err, SC_EINVAL, "prepare: no good rows in the train split");
        goto done;
    }

    /* the splits, the schema, then meta.json with their checksums; then the folder replaces out_dir */
    {
        for (int s = 0; s < 3 && !rc; s++) {
            rc = sc_split_writer_commit(outs[s].w, &p->split_sum[s], err);
            outs[s].w = NULL;
        }
        if (rc) goto done;
        sc_fault_point("prepare.splits");
        char path[sizeof stage + 32];
        size_t slen;
        if ((rc = sc_schema_serialize(p->s, &sbuf, &slen, err))) goto done;
        p->schema_sum = XXH3_64bits(sbuf, slen);
        snprintf(path, sizeof path, "%s/%s", stage, SC_SCHEMA_FILE);
        if ((rc = write_bytes_atomic(path, sbuf, slen, &fschema, err)) || (rc = sc_atomic_commit(&fschema, err)))
            goto done;
        for (int f = 0; f < p->s->n_fields; f++) stats->vocab_total += p->s->fenc[f].info.share_with < 0 && p->s->fenc[f].info.kind != SC_FIELD_NUMERIC ? p->s->fenc[f].info.vocab_size : 0;
        stats->seconds = sc_now() - t0;
        meta = meta_json(p);
        if (!meta) {
            rc = oom(p);
            goto done;
        }
        snprintf(path, sizeof path, "%s/%s", stage, SC_META_FILE);
        if ((rc = write_bytes_atomic(path, meta, strlen(meta), &fmeta, err)) || (rc = sc_atomic_commit(&fmeta, err)))
            goto done;
        sc_fault_point("prepare.staged");
        if ((rc = sc_datadir_commit(stage, final, err))) goto done;
        staged = 0;
    }
done:
    if (fschema.fp) sc_atomic_abort(&fschema);
    if (fmeta.fp) sc_atomic_abort(&fmeta);
    if (staged) sc_datadir_discard(stage, final);
    for (int s = 0; s < 3; s++) {
        sc_split_writer_abort(outs[s].w);
        sc_batch_free(&outs[s].b);
        sc_free(outs[s].text);
    }
    sc_free(sbuf);
    if (meta) cJSON_free(meta);
    prep_free(p);
    sc_schema_free(p->s);
    stats->seconds = sc_now() - t0;
    return rc;
}

int sc_prepare_file(const char *config_path, const char *out_dir, int bad_rows, sc_prepare_stats *stats, sc_error *err) {
    sc_dcfg *cfg;
    int rc = sc_dcfg_load(&cfg, config_path, err);
    if (rc) return rc;
    rc = sc_prepare(cfg, out_dir, bad_rows, stats, err);
    sc_dcfg_free(cfg);
    return rc;
}
