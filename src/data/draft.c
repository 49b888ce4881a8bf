/* Drafting a dataset config from the files (see draft.h). Each column of
 * each table gets a decision (what it becomes and why), then the YAML is
 * written section by section. */
#include "data/draft.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/csv.h"
#include "data/sniff.h"

#define MAX_TABLES (1 + SC_MAX_JOINS)
#define FLAG_GROUP_MIN 3 /* this many 0/1 columns in a table become one multi field */

enum kind {
    K_SKIP = 0, /* not a field (why says so) */
    K_KEY,      /* a join's key column: the input's id field stands for it */
    K_CAT,
    K_NUM_STD,  /* numeric, standardised */
    K_NUM_QUANT,/* numeric integers, bucketed at quantiles */
    K_MULTI,    /* values split at a separator */
    K_FLAG,     /* one of the table's 0/1 columns: together one multi field */
    K_TEXT,     /* long strings: a text column only */
    K_YEAR,     /* a date: only its year, as a numeric field */
};

typedef struct coldec {
    int kind;
    int sep;        /* K_MULTI: index into sc_sniff_seps */
    int year;       /* also a numeric field of the year found in it */
    int text;       /* also a text column (for the LLM methods) */
    int min_count2; /* many rare values: min_count 2 */
    char why[200];
    char field[SC_NAME_MAX]; /* the name of the field written for it ("" if none) */
} coldec;

typedef struct table {
    sc_sniff sn;
    char name[SC_NAME_MAX]; /* "input" or the join's name */
    int is_join;
    int key, on;            /* join: its key column, the input's column holding the key */
    coldec *dec;            /* (n_cols) */
    char rel[4096];         /* the path as the config writes it */
} table;

typedef struct draft {
    table t[MAX_TABLES];
    int nt;
    int label, time;        /* input columns, -1 for none */
    char label_rule[160];   /* after the column name: "" or " >= 4" */
    char label_why[200];
    int criteo;
    int user, item;         /* input columns of the id fields the sequence uses, -1 */
    sc_strbuf out;
    /* names given so far, to keep field (and text) names unique */
    char (*fnames)[SC_NAME_MAX];
    int nf, fcap;
    char (*tnames)[SC_NAME_MAX];
    int ntx, tcap;
} draft;

/* ------------------------------------------------------------ helpers */

static double frac(int64_t a, int64_t b) { return b ? (double)a / (double)b : 0; }

static int64_t distinct(const sc_sniff_col *k) { return (int64_t)k->values.n; }

/* The column's name says it holds ids: "id", "user_id", "movieId", "asin", "zip"... */
static int id_name(const char *n) {
    size_t l = strlen(n);
    if (!strcasecmp(n, "id") || !strcasecmp(n, "asin") || !strcasecmp(n, "zip") || !strcasecmp(n, "key")) return 1;
    if (l > 2 && (!strcmp(n + l - 2, "Id") || !strcmp(n + l - 2, "ID") || !strcasecmp(n + l - 3, "_id"))) return 1;
    return l > 3 && !strcasecmp(n + l - 3, "_key");
}

static int name_has(const char *n, const char *const *words) {
    char low[SC_NAME_MAX];
    size_t i = 0;
    for (; n[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)n[i]);
    low[i] = 0;
    for (int w = 0; words[w]; w++)
        if (strstr(low, words[w])) return 1;
    return 0;
}

static const char *const LABEL_WORDS[] = {"click", "label", "target", "convert", "purchase", NULL};
static const char *const RATING_WORDS[] = {"rating", "star", "score", "overall", "grade", NULL};
static const char *const TIME_WORDS[] = {"time", "date", "ts", NULL};
static const char *const USER_WORDS[] = {"user", "uid", "member", "customer", "reviewer", "account", "visitor", NULL};

/* The code point of the UTF-8 sequence at p (valid: the sniffer made the
 * text UTF-8, and paths are checked), its length in *len. */
static uint32_t next_cp(const unsigned char *p, int *len) {
    if (p[0] < 0x80) return *len = 1, p[0];
    if (p[0] < 0xE0) return *len = 2, (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    if (p[0] < 0xF0) return *len = 3, (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    return *len = 4, (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 |
                         (p[3] & 0x3F);
}

/* The characters YAML lets a stream hold as they are (YAML 1.1 "printable"). */
static int yaml_printable(uint32_t c) {
    return c == 9 || c == 10 || c == 13 || (c >= 0x20 && c <= 0x7E) || c == 0x85 || (c >= 0xA0 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* A YAML scalar: plain when that reads back as the same string, else
 * double-quoted with escapes for quotes, backslashes and characters YAML
 * does not allow as they are (C0 and C1 controls, U+FFFE, U+FFFF). */
static void yv(sc_strbuf *b, const char *s) {
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", NULL};
    int plain = (isalpha((unsigned char)s[0]) || s[0] == '_') && strlen(s) < 200;
    for (const char *p = s; plain && *p; p++) plain = isalnum((unsigned char)*p) || strchr("_.-/", *p);
    for (int i = 0; plain && reserved[i]; i++) plain = strcasecmp(s, reserved[i]) != 0;
    if (plain) {
        sc_strbuf_str(b, s);
        return;
    }
    sc_strbuf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len;
        uint32_t c = next_cp(p, &len);
        char esc[16];
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", (char)c);
        else if (c == '\t') snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20 || !yaml_printable(c)) snprintf(esc, sizeof esc, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        else memcpy(esc, p, (size_t)len), esc[len] = 0;
        sc_strbuf_str(b, esc);
        p += len;
    }
    sc_strbuf_add(b, "\"", 1);
}

/* s as the text of a comment: a character YAML does not allow, or a line
 * break, becomes '?'. Returns buf. */
static const char *in_comment(const char *s, char *buf, size_t cap) {
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && w + 5 < cap;) {
        int len;
        uint32_t c = next_cp(p, &len);
        if (c < 0x20 || c == 0x85 || !yaml_printable(c)) buf[w++] = '?';
        else memcpy(buf + w, p, (size_t)len), w += (size_t)len;
        p += len;
    }
    buf[w] = 0;
    return buf;
}

__attribute__((format(printf, 2, 3))) static void out(draft *d, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sc_strbuf_str(&d->out, buf);
}

/* A name not given yet (fields and text columns each have their own). */
static void unique_name(char (**names)[SC_NAME_MAX], int *n, int *cap, const char *want, char *got) {
    char base[SC_NAME_MAX];
    snprintf(base, sizeof base, "%s", want);
    snprintf(got, SC_NAME_MAX, "%s", base);
    for (int k = 2;; k++) {
        int seen = 0;
        for (int i = 0; i < *n && !seen; i++) seen = !strcmp((*names)[i], got);
        if (!seen) break;
        snprintf(got, SC_NAME_MAX, "%.50s_%d", base, k);
    }
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        void *p = sc_realloc(*names, (size_t)nc * SC_NAME_MAX);
        if (!p) return; /* the name stays usable; only later uniqueness checks miss it */
        *names = p;
        *cap = nc;
    }
    snprintf((*names)[(*n)++], SC_NAME_MAX, "%s", got);
}

static void field_name(draft *d, const char *want, char *got) { unique_name(&d->fnames, &d->nf, &d->fcap, want, got); }
static void text_name(draft *d, const char *want, char *got) { unique_name(&d->tnames, &d->ntx, &d->tcap, want, got); }

/* Input column c holds the keys of a join. */
static int is_join_on(const draft *d, int c) {
    for (int j = 1; j < d->nt; j++)
        if (d->t[j].on == c) return 1;
    return 0;
}

/* The name a field or text column of column c of t wants: the column's,
 * or "<join>_<column>" when another table has a column of that name. */
static void wanted_name(const draft *d, const table *t, int c, char *want) {
    const char *n = t->sn.cols[c].name;
    int clash = 0;
    for (int i = 0; i < d->nt && t->is_join; i++) clash |= &d->t[i] != t && sc_sniff_col_index(&d->t[i].sn, n) >= 0;
    if (clash) snprintf(want, SC_NAME_MAX, "%.20s_%.40s", t->name, n);
    else snprintf(want, SC_NAME_MAX, "%s", n);
}

/* "col" for the input, "join.col" for a join. */
static void col_ref(const table *t, int c, char *buf, size_t cap) {
    if (t->is_join) snprintf(buf, cap, "%s.%s", t->name, t->sn.cols[c].name);
    else snprintf(buf, cap, "%s", t->sn.cols[c].name);
}

/* Up to three example values, for comments. */
static void examples(const sc_sniff_col *k, char *buf, size_t cap) {
    size_t w = 0;
    buf[0] = 0;
    for (size_t i = 0; i < k->values.n && i < 3 && w + 8 < cap; i++) {
        int l = (int)(k->values.len[i] > 24 ? 24 : k->values.len[i]);
        char v[32];
        int j = 0;
        for (int x = 0; x < l; x++) v[j++] = (char)(isprint((unsigned char)k->values.key[i][x]) ? k->values.key[i][x] : '?');
        v[j] = 0;
        w += (size_t)snprintf(buf + w, cap - w, "%s%s%s", i ? ", " : "", v, k->values.len[i] > 24 ? "..." : "");
    }
}

/* ------------------------------------------------------------ relative paths */

static void rel_path(const char *file, const char *config_path, char *out, size_t cap) {
    char rf[PATH_MAX], dir[PATH_MAX], rd[PATH_MAX];
    if (!realpath(file, rf)) {
        snprintf(out, cap, "%s", file);
        return;
    }
    snprintf(dir, sizeof dir, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    size_t n;
    if (realpath(dir, rd) && (n = strlen(rd)) && !strncmp(rf, rd, n) && rf[n] == '/') snprintf(out, cap, "%s", rf + n + 1);
    else snprintf(out, cap, "%s", rf);
}

/* ------------------------------------------------------------ decisions */

/* The label: a 0/1 column, or a small rating scale cut at the highest
 * value with at least 30% of rows at or above it. */
static void rating_cut(const sc_sniff_col *k, int64_t rows, double *cut, double *pos) {
    *cut = k->max;
    *pos = 0;
    for (int h = 0; h < k->n_hist; h++) {
        double v = k->hist_value[h];
        int64_t above = 0;
        for (int g = 0; g < k->n_hist; g++) above += k->hist_value[g] >= v ? k->hist_count[g] : 0;
        double f = frac(above, rows);
        if (f >= 0.3 && (v > *cut || *pos < 0.3)) *cut = v, *pos = f;
        else if (f >= 0.3 && v == *cut) *pos = f;
    }
}

static int pick_label(draft *d, sc_error *err) {
    table *m = &d->t[0];
    int best = -1;
    double best_score = 0;
    for (int c = 0; c < m->sn.n_cols; c++) {
        const sc_sniff_col *k = &m->sn.cols[c];
        size_t nl = strlen(k->name);
        /* `label:` reads "column OP number": a name holding an operator or edge spaces cannot be written there */
        if (k->filled != m->sn.rows || k->numeric != k->filled || strpbrk(k->name, "<>=!") || k->name[0] == ' ' ||
            k->name[nl - 1] == ' ')
            continue;
        double score = 0;
        int vals = k->n_hist;
        if (k->binary == k->filled && vals == 2) score = name_has(k->name, LABEL_WORDS) ? 3 : 2;
        else if (vals >= 3 && k->min >= 0 && k->max <= 10)
            score = name_has(k->name, RATING_WORDS) ? 2.5 : 1;
        if (score > best_score) best = c, best_score = score;
    }
    if (best < 0)
        return sc_fail(err, SC_EINVAL,
                       "%s: no column looks like a label (only 0 and 1, or a rating scale of at most 16 values); "
                       "name it with --label COLUMN or --label 'COLUMN >= N'",
                       m->sn.path);
    const sc_sniff_col *k = &m->sn.cols[best];
    d->label = best;
    if (k->binary == k->filled) {
        int64_t ones = 0;
        for (int h = 0; h < k->n_hist; h++) ones += k->hist_value[h] == 1 ? k->hist_count[h] : 0;
        snprintf(d->label_why, sizeof d->label_why, "0/1 values, %.1f%% are 1", 100 * frac(ones, m->sn.rows));
    } else {
        double cut, pos;
        rating_cut(k, m->sn.rows, &cut, &pos);
        snprintf(d->label_rule, sizeof d->label_rule, " >= %g", cut);
        snprintf(d->label_why, sizeof d->label_why,
                 "a scale of %d values in [%g, %g]; >= %g makes %.1f%% positive",
                 k->n_hist, k->min, k->max, cut, 100 * pos);
    }
    return SC_OK;
}

/* --label COLUMN or 'COLUMN OP NUMBER': the column must exist. */
static int given_label(draft *d, const char *label, sc_error *err) {
    table *m = &d->t[0];
    char col[SC_NAME_MAX];
    size_t n = strcspn(label, " <>=!");
    if (!n || n >= sizeof col) return sc_fail(err, SC_EINVAL, "--label '%s': expected COLUMN or 'COLUMN >= N'", label);
    memcpy(col, label, n);
    col[n] = 0;
    d->label = sc_sniff_col_index(&m->sn, col);
    if (d->label < 0) return sc_fail(err, SC_EINVAL, "--label: '%s' is not a column of %s", col, m->sn.path);
    snprintf(d->label_rule, sizeof d->label_rule, "%s%s", label[n] && label[n] != ' ' ? " " : "", label + n);
    snprintf(d->label_why, sizeof d->label_why, "given with --label");
    return SC_OK;
}

static int is_time(const sc_sniff_col *k, int64_t rows) {
    if (!k->filled || k->filled * 10 < rows * 9 || k->integer != k->filled || distinct(k) < 2) return 0;
    return (k->min >= 1e8 && k->max <= 4.2e9) || (k->min >= 1e11 && k->max <= 4.2e12); /* unix s or ms, 1973-2103 */
}

static void pick_time(draft *d) {
    table *m = &d->t[0];
    d->time = -1;
    for (int c = 0; c < m->sn.n_cols; c++)
        if (c != d->label && is_time(&m->sn.cols[c], m->sn.rows) &&
            (d->time < 0 || (name_has(m->sn.cols[c].name, TIME_WORDS) && !name_has(m->sn.cols[d->time].name, TIME_WORDS))))
            d->time = c;
}

/* What column c of table t becomes. */
static void decide(draft *d, table *t, int c) {
    const sc_sniff_col *k = &t->sn.cols[c];
    coldec *o = &t->dec[c];
    int64_t rows = t->sn.rows, nd = distinct(k);
    char ex[120];
    examples(k, ex, sizeof ex);
    const char *more = k->distinct_capped ? "+" : "";
    if (!t->is_join && (c == d->label || c == d->time)) {
        o->kind = K_SKIP;
        snprintf(o->why, sizeof o->why, "the %s", c == d->label ? "label" : "time column");
        return;
    }
    if (t->is_join && c == t->key) {
        o->kind = K_KEY;
        snprintf(o->why, sizeof o->why, "the key");
        return;
    }
    if (!k->filled) {
        o->kind = K_SKIP;
        snprintf(o->why, sizeof o->why, "always empty");
        return;
    }
    if (nd == 1 && !k->distinct_capped) {
        o->kind = K_SKIP;
        snprintf(o->why, sizeof o->why, "the same value in every row read (%s)", ex);
        return;
    }
    if (k->url * 2 > k->filled) {
        o->kind = K_SKIP;
        snprintf(o->why, sizeof o->why, "URLs");
        return;
    }
    int numeric = k->numeric == k->filled; /* one "n/a" would make a bad row of a numeric field */
    int is_key = !t->is_join && is_join_on(d, c);
    if (numeric && k->binary == k->numeric && k->n_hist == 2) {
        o->kind = K_FLAG;
        snprintf(o->why, sizeof o->why, "0/1");
        return;
    }
    if (!t->is_join && !is_key && nd >= rows && rows >= 100 && !k->distinct_capped) {
        o->kind = K_SKIP;
        snprintf(o->why, sizeof o->why, "a different value in every row (a row id?): %s", ex);
        return;
    }
    if (is_key || id_name(k->name)) {
        o->kind = K_CAT;
        snprintf(o->why, sizeof o->why, "ids, %lld%s distinct", (long long)nd, more);
    } else if (numeric && k->integer == k->numeric && nd <= 100) {
        o->kind = K_CAT;
        o->text = t->is_join;
        snprintf(o->why, sizeof o->why, "%lld distinct integers in [%g, %g]", (long long)nd, k->min, k->max);
    } else if (numeric) {
        o->kind = k->integer == k->numeric ? K_NUM_QUANT : K_NUM_STD;
        snprintf(o->why, sizeof o->why, "numbers in [%g, %g], %lld%s distinct%s", k->min, k->max, (long long)nd, more,
                 k->filled < rows ? ", some empty" : "");
    } else {
        /* strings: values inside cells, long texts, dates, categories */
        double mean_len = frac(k->bytes, k->filled);
        int best = -1;
        for (int s = 0; s < SC_SNIFF_SEPS; s++) {
            const sc_sniff_sep *sp = &k->sep[s];
            double piece_len = frac(sp->piece_bytes, sp->pieces);
            int64_t pd = (int64_t)sp->distinct.n;
            if (sp->cells * 10 >= k->filled && piece_len <= 30 && pd * 10 <= sp->pieces && (best < 0 || sp->cells > k->sep[best].cells))
                best = s;
        }
        int spaced = k->with_space * 2 >= k->filled;
        int year = k->with_year * 10 >= k->filled * 9;
        if (best >= 0) {
            o->kind = K_MULTI;
            o->sep = best;
            o->text = 1;
            snprintf(o->why, sizeof o->why, "values separated by '%s' (%lld distinct, at most %d in a cell): %s",
                     sc_sniff_seps[best], (long long)k->sep[best].distinct.n, k->sep[best].max_pieces, ex);
        } else if (spaced && (mean_len >= 20 || nd * 2 >= k->filled)) {
            o->kind = K_TEXT;
            o->text = 1;
            o->year = year;
            snprintf(o->why, sizeof o->why, "text, %.0f bytes on average: %s", mean_len, ex);
        } else if (year && !spaced) {
            o->kind = K_YEAR;
            snprintf(o->why, sizeof o->why, "dates: %s", ex);
        } else {
            o->kind = K_CAT;
            o->text = t->is_join;
            snprintf(o->why, sizeof o->why, "%lld%s distinct values: %s", (long long)nd, more, ex);
        }
    }
    if (o->kind == K_CAT && (k->distinct_capped || (nd > 1000 && nd * 2 > k->filled))) o->min_count2 = 1;
}

/* The user and the item of the log: id fields of the input, the user's
 * named so (user_id, userId, reviewerID, or the key of a join named user),
 * the item the next id field. Without a user, no history and no group. */
static void pick_user_item(draft *d) {
    const table *m = &d->t[0];
    d->user = d->item = -1;
    for (int c = 0; c < m->sn.n_cols && d->user < 0; c++) {
        int user_join = 0;
        for (int j = 1; j < d->nt; j++) user_join |= d->t[j].on == c && name_has(d->t[j].name, USER_WORDS);
        if (m->dec[c].kind == K_CAT && (user_join || (id_name(m->sn.cols[c].name) && name_has(m->sn.cols[c].name, USER_WORDS))))
            d->user = c;
    }
    for (int c = 0; c < m->sn.n_cols && d->user >= 0 && d->item < 0; c++)
        if (c != d->user && m->dec[c].kind == K_CAT && (id_name(m->sn.cols[c].name) || is_join_on(d, c))) d->item = c;
}

/* ------------------------------------------------------------ joins */

static int find_key(table *t, const char *key, sc_error *err) {
    char *end;
    long idx = strtol(key, &end, 10);
    if (!t->sn.header && *key && !*end && idx >= 1 && idx <= t->sn.n_cols) return (int)idx - 1;
    int c = sc_sniff_col_index(&t->sn, key);
    if (c >= 0) return c;
    char cols[600] = "";
    for (int i = 0; i < t->sn.n_cols && strlen(cols) < 500; i++)
        snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", i ? ", " : "", t->sn.cols[i].name);
    return sc_fail(err, SC_EINVAL, "--join %s: '%s' is not a column of %s (%s: %s)", t->name, key, t->sn.path,
                   t->sn.header ? "its columns" : "no header; give the key's 1-based number, or one of", cols);
}

/* The input column that holds the join's keys: the one named like the key
 * when both files have a header, else the one (not taken by an earlier
 * join) whose values are most often keys and that holds most of the keys:
 * users 1..943 are all item keys 1..1682 too, but hold only half of them. */
static int find_on(draft *d, table *t, sc_error *err) {
    const table *m = &d->t[0];
    const sc_sniff_col *key = &t->sn.cols[t->key];
    int same = sc_sniff_col_index(&m->sn, key->name);
    if (same >= 0 && t->sn.header && m->sn.header) return same;
    int best = -1;
    double best_f = 0, best_score = 0;
    for (int c = 0; c < m->sn.n_cols; c++) {
        const sc_sniff_col *k = &m->sn.cols[c];
        if (is_join_on(d, c)) continue;
        int64_t hit = 0, n = 0, keys_seen = 0;
        for (size_t i = 0; i < k->values.n; i++) {
            int found = sc_strmap_find(&key->values, k->values.key[i], k->values.len[i]) >= 0;
            n += k->values.val[i];
            hit += found ? k->values.val[i] : 0;
            keys_seen += found;
        }
        double f = frac(hit, n), score = f * frac(keys_seen, (int64_t)key->values.n);
        if (score > best_score) best = c, best_f = f, best_score = score;
    }
    if (best < 0 || best_f < 0.5)
        return sc_fail(err, SC_EINVAL,
                       "--join %s: no column of %s holds the keys of %s's column '%s' (the best, '%s', holds %.0f%% of "
                       "them); check the file and the key",
                       t->name, m->sn.path, t->sn.path, key->name, best >= 0 ? m->sn.cols[best].name : "-", 100 * best_f);
    return best;
}

/* Headerless tables get names from what their columns are: the label
 * "label" or "rating", the time "timestamp", a join key "<join>_id". */
static void rename_col(table *t, int c, const char *want) {
    if (sc_sniff_col_index(&t->sn, want) >= 0) return;
    snprintf(t->sn.cols[c].name, SC_NAME_MAX, "%s", want);
}

/* ------------------------------------------------------------ writing */

/* A flow list "[a, b, c]" of the columns of t that pass keep (all when
 * NULL), as table references when ref, wrapped at about 100 bytes with
 * continuation lines indented by cont spaces. */
static void write_list(draft *d, const table *t, int kind, int ref, int cont) {
    out(d, "[");
    size_t line_start = d->out.len;
    int first = 1;
    char buf[2 * SC_NAME_MAX + 2];
    for (int c = 0; c < t->sn.n_cols; c++) {
        if (kind >= 0 && t->dec[c].kind != kind) continue;
        if (!first) out(d, ",");
        if (!first && d->out.len - line_start > 90) {
            out(d, "\n%*s", cont, "");
            line_start = d->out.len;
        } else if (!first) {
            out(d, " ");
        }
        if (ref) col_ref(t, c, buf, sizeof buf);
        else snprintf(buf, sizeof buf, "%s", t->sn.cols[c].name);
        yv(&d->out, buf);
        first = 0;
    }
    out(d, "]");
}

static void write_table(draft *d, const table *t, const char *indent) {
    const sc_sniff *s = &t->sn;
    out(d, "%spath: ", indent);
    yv(&d->out, t->rel);
    out(d, "\n%sdelimiter: ", indent);
    yv(&d->out, s->delim); /* a tab comes out as "\t" */
    out(d, "\n");
    out(d, "%squote: %s\n", indent, s->quote ? "'\"'" : "\"\"");
    out(d, "%sheader: %s%s\n", indent, s->header ? "true" : "false",
        s->header ? "                  # the first line names the columns (the list below wins)" : "");
    if (s->latin1) out(d, "%sencoding: latin1               # not valid UTF-8\n", indent);
    if (s->bom) out(d, "%s# the file starts with a UTF-8 byte order mark; the names below leave it out\n", indent);
    out(d, "%scolumns: ", indent);
    write_list(d, t, -1, 0, (int)strlen(indent) + 10);
    out(d, "\n");
}

static void write_field(draft *d, const char *name, const char *ref, const char *rest, const char *why) {
    out(d, "  - {name: ");
    yv(&d->out, name);
    if (ref && strcmp(ref, name)) {
        out(d, ", column: ");
        yv(&d->out, ref);
    }
    out(d, "%s}", rest);
    if (why && *why) out(d, "   # %s", why);
    out(d, "\n");
}

static void write_fields(draft *d) {
    out(d, "\n# Model features. Types: categorical (a vocabulary from the train split), numeric,\n"
           "# multi (several values per row), sequence (the user's earlier items). docs/data.md.\nfields:\n");
    char name[SC_NAME_MAX], ref[2 * SC_NAME_MAX + 2], rest[300];
    for (int ti = 0; ti < d->nt; ti++) {
        table *t = &d->t[ti];
        int n_flags = 0;
        for (int c = 0; c < t->sn.n_cols; c++) n_flags += t->dec[c].kind == K_FLAG;
        for (int c = 0; c < t->sn.n_cols; c++) {
            coldec *o = &t->dec[c];
            const sc_sniff_col *k = &t->sn.cols[c];
            char want[SC_NAME_MAX];
            wanted_name(d, t, c, want);
            col_ref(t, c, ref, sizeof ref);
            rest[0] = 0;
            switch (o->kind) {
            case K_CAT:
                if (o->min_count2) snprintf(rest, sizeof rest, ", type: categorical, min_count: 2");
                else snprintf(rest, sizeof rest, ", type: categorical");
                break;
            case K_NUM_STD: snprintf(rest, sizeof rest, ", type: numeric, normalize: standard"); break;
            case K_NUM_QUANT: snprintf(rest, sizeof rest, ", type: numeric, quantiles: 10"); break;
            case K_MULTI: {
                int w = k->sep[o->sep].max_pieces < 64 ? k->sep[o->sep].max_pieces : 64;
                char sep[16] = "";
                sc_strbuf sb = {0};
                yv(&sb, sc_sniff_seps[o->sep]);
                snprintf(sep, sizeof sep, "%s", sb.s ? sb.s : "\"|\"");
                sc_free(sb.s);
                snprintf(rest, sizeof rest, ", type: multi, separator: %s, max_len: %d", sep, w < 1 ? 1 : w);
                break;
            }
            default: break;
            }
            if (rest[0]) {
                field_name(d, want, o->field);
                write_field(d, o->field, ref, rest, o->why);
            }
            if (o->year || o->kind == K_YEAR) {
                char yname[SC_NAME_MAX];
                snprintf(want, sizeof want, "%.50s_year", k->name);
                field_name(d, want, yname);
                write_field(d, yname, ref, ", type: numeric, pattern: '((?:18|19|20)\\d\\d)\\D*$', quantiles: 10",
                            "the last year written in it");
            }
        }
        if (n_flags >= FLAG_GROUP_MIN) {
            char want[SC_NAME_MAX];
            snprintf(want, sizeof want, "%s_flags", t->is_join ? t->name : "input");
            field_name(d, want, name);
            out(d, "  - name: ");
            yv(&d->out, name);
            out(d, "                 # %d columns of 0/1: the names of those holding 1\n    type: multi\n"
                   "    max_len: %d\n    flags: ", n_flags, t->sn.max_ones > 0 ? t->sn.max_ones : 1);
            write_list(d, t, K_FLAG, 1, 11);
            out(d, "\n");
        }
    }
    if (d->time >= 0 && d->user >= 0 && d->item >= 0) {
        const char *by = d->t[0].dec[d->user].field, *of = d->t[0].dec[d->item].field;
        field_name(d, "history", name);
        out(d, "  - name: ");
        yv(&d->out, name);
        char cb[SC_NAME_MAX * 2], co[SC_NAME_MAX * 2];
        out(d, "               # the %s's earlier %ss (by time), most recent first\n    type: sequence\n    of: ",
            in_comment(by, cb, sizeof cb), in_comment(of, co, sizeof co));
        yv(&d->out, of);
        out(d, "\n    by: ");
        yv(&d->out, by);
        out(d, "\n    max_len: 20\n    share_embedding: ");
        yv(&d->out, of);
        out(d, "\n");
    }
}

static void write_texts(draft *d) {
    int any = 0;
    char name[SC_NAME_MAX], ref[2 * SC_NAME_MAX + 2];
    for (int ti = 0; ti < d->nt; ti++) {
        table *t = &d->t[ti];
        int n_flags = 0;
        for (int c = 0; c < t->sn.n_cols; c++) n_flags += t->dec[c].kind == K_FLAG;
        for (int c = 0; c < t->sn.n_cols; c++) {
            const coldec *o = &t->dec[c];
            int flag_group = o->kind == K_FLAG && n_flags >= FLAG_GROUP_MIN;
            if (!o->text && !(flag_group && t->is_join)) continue;
            int earlier = 0; /* the group is written once, at its first column */
            for (int b = 0; flag_group && b < c; b++) earlier |= t->dec[b].kind == K_FLAG;
            if (earlier) continue;
            if (!any) out(d, "\n# Raw strings kept for the LLM methods (ELEC, MSD textualise rows with them).\ntext:\n");
            any = 1;
            char want[SC_NAME_MAX];
            if (flag_group) snprintf(want, sizeof want, "%s_flags", t->name);
            else wanted_name(d, t, c, want);
            text_name(d, want, name);
            out(d, "  - {name: ");
            yv(&d->out, name);
            if (flag_group) {
                out(d, ", joiner: \", \", flags: ");
                write_list(d, t, K_FLAG, 1, 6);
                out(d, "}\n");
                continue;
            }
            col_ref(t, c, ref, sizeof ref);
            out(d, ", column: ");
            yv(&d->out, ref);
            if (o->kind == K_MULTI) {
                out(d, ", separator: ");
                yv(&d->out, sc_sniff_seps[o->sep]);
                out(d, ", joiner: \", \"");
            }
            out(d, "}\n");
        }
    }
}

static void write_criteo(draft *d) {
    out(d, "input:\n  path: ");
    yv(&d->out, d->t[0].rel);
    out(d, "\n  format: criteo                # tab separated, no header: label, I1..I13 (counts), C1..C26 (hashed)\n\n"
           "label: label\n\n"
           "fields:\n"
           "  - names: [I1, I2, I3, I4, I5, I6, I7, I8, I9, I10, I11, I12, I13]\n"
           "    type: numeric\n"
           "    bucketize: log2             # Criteo's transform: floor(ln(x)^2) for x > 2\n"
           "    min_count: 2\n"
           "  - names: [C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15,\n"
           "            C16, C17, C18, C19, C20, C21, C22, C23, C24, C25, C26]\n"
           "    type: categorical\n"
           "    min_count: 2\n\n"
           "split:\n  method: sequential           # no time column: the file's order, first 80%% train\n"
           "  fractions: [0.8, 0.1, 0.1]\n\nbad_rows: skip\n");
}

/* Criteo's raw layout: 40 tab-separated columns, no header, 0/1, 13 numbers, 26 hex hashes. */
static int is_criteo(const sc_sniff *s) {
    if (s->header || s->n_cols != 40 || strcmp(s->delim, "\t")) return 0;
    if (s->cols[0].binary != s->rows) return 0;
    for (int c = 1; c <= 13; c++)
        if (s->cols[c].numeric != s->cols[c].filled) return 0;
    for (int c = 14; c < 40; c++)
        if (s->cols[c].hex8 != s->cols[c].filled) return 0;
    return 1;
}

/* ------------------------------------------------------------ entry */

int sc_draft_config(const sc_draft_opts *o, char **yaml, sc_error *err) {
    *yaml = NULL;
    if (o->n_joins > SC_MAX_JOINS) return sc_fail(err, SC_EINVAL, "at most %d joins", SC_MAX_JOINS);
    draft *d = sc_calloc(1, sizeof *d);
    if (!d) return sc_fail(err, SC_ENOMEM, "out of memory");
    int64_t max_rows = o->max_rows > 0 ? o->max_rows : 1000000;
    int rc = SC_OK;
    d->label = d->time = d->user = d->item = -1;
    /* what the config will hold as it is must be UTF-8 (YAML is) */
    const char *texts[3 * SC_MAX_JOINS + 2] = {o->input, o->config_path};
    int n_texts = 2;
    for (int j = 0; j < o->n_joins; j++) {
        texts[n_texts++] = o->joins[j].name;
        texts[n_texts++] = o->joins[j].path;
        texts[n_texts++] = o->joins[j].key;
    }
    for (int i = 0; i < n_texts && !rc; i++)
        if (!sc_utf8_valid(texts[i], strlen(texts[i]), NULL))
            rc = sc_fail(err, SC_EINVAL, "'%s' is not valid UTF-8, which a YAML config cannot hold; rename it", texts[i]);
    for (int i = 0; i <= o->n_joins && !rc; i++) {
        table *t = &d->t[i];
        const char *path = i ? o->joins[i - 1].path : o->input;
        t->is_join = i > 0;
        snprintf(t->name, sizeof t->name, "%s", i ? o->joins[i - 1].name : "input");
        t->key = t->on = -1;
        rc = sc_sniff_file(&t->sn, path, max_rows, err);
        if (rc) break;
        d->nt = i + 1;
        if (i && !t->sn.header) /* "item_c2": clearer in fields and texts than a bare "c2" */
            for (int c = 0; c < t->sn.n_cols; c++) snprintf(t->sn.cols[c].name, SC_NAME_MAX, "%.50s_c%d", t->name, c + 1);
        rel_path(path, o->config_path, t->rel, sizeof t->rel);
        if (!(t->dec = sc_calloc((size_t)t->sn.n_cols, sizeof *t->dec))) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        for (int j = 1; j < i && !rc; j++)
            if (!strcmp(d->t[j].name, t->name)) rc = sc_fail(err, SC_EINVAL, "--join %s is given twice", t->name);
        if (!rc && i && (!strcmp(t->name, "input") || strchr(t->name, '.') || !t->name[0]))
            rc = sc_fail(err, SC_EINVAL, "--join '%s': a join's name must not be empty, 'input' or hold a '.'", t->name);
    }
    table *m = &d->t[0];
    if (!rc && !o->n_joins && is_criteo(&m->sn)) {
        d->criteo = 1;
    } else if (!rc) {
        for (int j = 1; j < d->nt && !rc; j++) {
            table *t = &d->t[j];
            if ((t->key = find_key(t, o->joins[j - 1].key, err)) < 0) rc = err ? err->code : SC_EINVAL;
            else if ((t->on = find_on(d, t, err)) < 0) rc = err ? err->code : SC_EINVAL;
        }
        if (!rc) rc = o->label ? given_label(d, o->label, err) : pick_label(d, err);
        if (!rc) {
            pick_time(d);
            /* names for headerless tables, from what the columns are */
            if (!m->sn.header) {
                const sc_sniff_col *l = &m->sn.cols[d->label];
                if (!o->label) rename_col(m, d->label, l->binary == l->filled ? "label" : "rating");
                if (d->time >= 0) rename_col(m, d->time, "timestamp");
                for (int j = 1; j < d->nt; j++) {
                    char id[SC_NAME_MAX];
                    if (d->t[j].sn.header) snprintf(id, sizeof id, "%s", d->t[j].sn.cols[d->t[j].key].name);
                    else snprintf(id, sizeof id, "%.55s_id", d->t[j].name);
                    rename_col(m, d->t[j].on, id);
                }
            }
            for (int j = 1; j < d->nt; j++)
                if (!d->t[j].sn.header) rename_col(&d->t[j], d->t[j].key, m->sn.cols[d->t[j].on].name);
            for (int ti = 0; ti < d->nt; ti++) {
                table *t = &d->t[ti];
                int n_flags = 0;
                for (int c = 0; c < t->sn.n_cols; c++) decide(d, t, c), n_flags += t->dec[c].kind == K_FLAG;
                for (int c = 0; c < t->sn.n_cols && n_flags < FLAG_GROUP_MIN; c++)
                    if (t->dec[c].kind == K_FLAG) t->dec[c].kind = K_CAT, t->dec[c].text = t->is_join; /* a lone 0/1 column */
            }
            pick_user_item(d);
        }
    }
    if (!rc) {
        const sc_sniff *s = &m->sn;
        char base[SC_NAME_MAX];
        const char *b = strrchr(o->input, '/') ? strrchr(o->input, '/') + 1 : o->input;
        snprintf(base, sizeof base, "%s", b);
        char *dot = strrchr(base, '.');
        if (dot && dot != base) *dot = 0;
        char cbuf[4200];
        out(d, "# Dataset config drafted by `semctr init` from %s (%lld rows read%s", in_comment(s->path, cbuf, sizeof cbuf),
            (long long)s->rows, s->eof ? ", all of it" : "");
        for (int j = 1; j < d->nt; j++)
            out(d, "; %s: %lld rows", in_comment(d->t[j].sn.path, cbuf, sizeof cbuf), (long long)d->t[j].sn.rows);
        out(d, ").\n# Every choice below says what it was read from: check them, rename what you like.\n"
               "# docs/data.md explains every key; `semctr prepare --config THIS --out DIR` reads it.\n");
        out(d, "name: ");
        yv(&d->out, base);
        out(d, "\n\n");
        if (d->criteo) {
            write_criteo(d);
        } else {
            out(d, "input:\n");
            write_table(d, m, "  ");
            out(d, "\nlabel: ");
            char lab[SC_NAME_MAX + 200];
            snprintf(lab, sizeof lab, "%s%s", s->cols[d->label].name, d->label_rule);
            yv(&d->out, lab);
            out(d, "   # %s\n", d->label_why);
            if (d->nt > 1) out(d, "\n# Side tables, joined to each row by key.\njoins:\n");
            for (int j = 1; j < d->nt; j++) {
                table *t = &d->t[j];
                out(d, "  - name: ");
                yv(&d->out, t->name);
                out(d, "\n");
                write_table(d, t, "    ");
                out(d, "    key: ");
                yv(&d->out, t->sn.cols[t->key].name);
                out(d, "\n");
                if (strcmp(t->sn.cols[t->key].name, s->cols[t->on].name)) {
                    out(d, "    on: ");
                    yv(&d->out, s->cols[t->on].name);
                    out(d, "                  # the input's column holding the key\n");
                }
            }
            write_fields(d);
            write_texts(d);
            out(d, "\nsplit:\n");
            if (d->time >= 0) {
                out(d, "  method: time                  # stable sort by time, then 80/10/10\n  column: ");
                yv(&d->out, s->cols[d->time].name);
                out(d, "\n");
            } else {
                out(d, "  method: sequential            # no time column found: the file's order, first 80%% train\n");
            }
            out(d, "  fractions: [0.8, 0.1, 0.1]\n");
            if (d->user >= 0) {
                out(d, "\ngroup: ");
                yv(&d->out, m->dec[d->user].field);
                out(d, "                   # gAUC groups rows by this field\n");
            }
            out(d, "bad_rows: skip                  # rows that do not parse are counted and dropped\n");
        }
        int listed = 0;
        for (int ti = 0; ti < d->nt && !d->criteo; ti++)
            for (int c = 0; c < d->t[ti].sn.n_cols; c++) {
                if (d->t[ti].dec[c].kind != K_SKIP || (ti == 0 && (c == d->label || c == d->time))) continue;
                if (!listed++) out(d, "\n# Columns left out:\n");
                char ref[2 * SC_NAME_MAX + 2];
                col_ref(&d->t[ti], c, ref, sizeof ref);
                out(d, "#   %s: %s\n", in_comment(ref, cbuf, sizeof cbuf), d->t[ti].dec[c].why);
            }
        if (d->out.oom) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (!rc) {
        *yaml = d->out.s;
        d->out.s = NULL;
    }
    sc_free(d->out.s);
    for (int i = 0; i < d->nt; i++) {
        sc_sniff_free(&d->t[i].sn);
        sc_free(d->t[i].dec);
    }
    sc_free(d->fnames);
    sc_free(d->tnames);
    sc_free(d);
    return rc;
}
