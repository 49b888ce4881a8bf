/* Reading the shape of a delimited file (see sniff.h). */
#include "data/sniff.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/csv.h"

const char *const sc_sniff_seps[SC_SNIFF_SEPS] = {"|", ";", ","};

#define PROBE_LINES 200        /* lines that choose the delimiter and the header */
#define PIECE_DISTINCT 10000   /* distinct values inside cells kept per separator */
#define MAX_HEAD ((size_t)64 << 20) /* bytes read at most, whatever max_rows says */

/* The delimiters tried, with the quoting tried for each. */
static const struct {
    const char *delim;
    char quote;
} dialects[] = {
    {"\t", 0}, {"\t", '"'}, {",", '"'}, {",", 0}, {"|", 0}, {"|", '"'}, {";", '"'}, {"::", 0},
};
#define N_DIALECTS ((int)(sizeof dialects / sizeof *dialects))

typedef struct lines {
    char **p;     /* (n) into the (converted) buffer, NUL-terminated */
    size_t *len;  /* (n) */
    size_t n;
} lines;

/* Cut buf into non-empty lines (in place: '\n' becomes NUL; "\r" dropped). */
static int cut_lines(char *buf, size_t len, lines *ls, sc_error *err) {
    size_t cap = 0;
    ls->n = 0;
    for (size_t off = 0; off < len;) {
        char *nl = memchr(buf + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - buf) : len, n = end - off;
        char *line = buf + off;
        off = end + 1;
        if (n && line[n - 1] == '\r') n--;
        line[n] = 0; /* the '\n' or '\r', or the byte past the buffer that the caller reserved */
        if (!n) continue;
        if (ls->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **np = sc_realloc(ls->p, cap * sizeof *np);
            if (np) ls->p = np;
            size_t *nlen = sc_realloc(ls->len, cap * sizeof *nlen);
            if (nlen) ls->len = nlen;
            if (!np || !nlen) return sc_fail(err, SC_ENOMEM, "out of memory");
        }
        ls->p[ls->n] = line;
        ls->len[ls->n++] = n;
    }
    return SC_OK;
}

/* Split a copy of a line (quotes are undone in place). Returns the cell count or -1. */
static int split_copy(const char *line, size_t len, const char *delim, char quote, char *tmp, sc_cell *cells, int max) {
    memcpy(tmp, line, len);
    return sc_csv_split(tmp, len, delim, strlen(delim), quote, cells, max);
}

static int is_number(sc_cell c, double *x) { return c.len && sc_parse_double(c.p, c.len, x) == 0; }

/* 1 when c holds a year 18xx, 19xx or 20xx not inside a longer number. */
static int holds_year(sc_cell c) {
    for (uint32_t i = 0; i + 4 <= c.len; i++) {
        const char *p = c.p + i;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
            !isdigit((unsigned char)p[3]))
            continue;
        if ((i > 0 && isdigit((unsigned char)p[-1])) || (i + 4 < c.len && isdigit((unsigned char)p[4]))) continue;
        if ((p[0] == '1' && (p[1] == '8' || p[1] == '9')) || (p[0] == '2' && p[1] == '0')) return 1;
    }
    return 0;
}

static int is_hex8(sc_cell c) {
    if (c.len != 8) return 0;
    for (int i = 0; i < 8; i++)
        if (!isxdigit((unsigned char)c.p[i])) return 0;
    return 1;
}

static void col_add(sc_sniff_col *k, sc_cell c, const char *delim) {
    if (!c.len) return;
    k->filled++;
    k->bytes += c.len;
    if (memchr(c.p, ' ', c.len)) k->with_space++;
    if (holds_year(c)) k->with_year++;
    if ((c.len >= 7 && !memcmp(c.p, "http://", 7)) || (c.len >= 8 && !memcmp(c.p, "https://", 8))) k->url++;
    if (is_hex8(c)) k->hex8++;
    if (!k->distinct_capped) {
        int ins;
        int64_t i = k->values.n < SC_SNIFF_DISTINCT ? sc_strmap_insert(&k->values, c.p, c.len, 0, &ins)
                                                    : sc_strmap_find(&k->values, c.p, c.len);
        if (i >= 0) k->values.val[i]++;
        else k->distinct_capped = 1; /* not kept: the count of distinct values is a lower bound */
    }
    double x;
    if (is_number(c, &x)) {
        if (!k->numeric) k->min = k->max = x;
        k->numeric++;
        k->sum += x;
        if (x < k->min) k->min = x;
        if (x > k->max) k->max = x;
        if (x == floor(x) && fabs(x) < 9e15) k->integer++;
        if (x == 0 || x == 1) k->binary++;
        if (k->n_hist >= 0) {
            int h = 0;
            while (h < k->n_hist && k->hist_value[h] != x) h++;
            if (h == k->n_hist) {
                if (h == SC_SNIFF_HIST) k->n_hist = -1;
                else k->hist_value[k->n_hist++] = x;
            }
            if (k->n_hist >= 0) k->hist_count[h]++;
        }
    }
    for (int s = 0; s < SC_SNIFF_SEPS; s++) {
        const char *sep = sc_sniff_seps[s];
        if (!strcmp(sep, delim)) continue;
        int pieces = 0;
        const char *p = c.p, *end = c.p + c.len;
        while (p <= end) {
            const char *q = memchr(p, sep[0], (size_t)(end - p));
            if (!q) q = end;
            if (q > p) {
                pieces++;
                k->sep[s].piece_bytes += q - p;
                if (k->sep[s].distinct.n < PIECE_DISTINCT) sc_strmap_insert(&k->sep[s].distinct, p, (size_t)(q - p), 0, NULL);
            }
            p = q + 1;
        }
        if (pieces > 1 || memchr(c.p, sep[0], c.len)) k->sep[s].cells++;
        k->sep[s].pieces += pieces;
        if (pieces > k->sep[s].max_pieces) k->sep[s].max_pieces = pieces;
    }
}

void sc_sniff_free(sc_sniff *s) {
    for (int i = 0; s->cols && i < s->n_cols; i++) {
        sc_strmap_free(&s->cols[i].values);
        for (int k = 0; k < SC_SNIFF_SEPS; k++) sc_strmap_free(&s->cols[i].sep[k].distinct);
    }
    sc_free(s->cols);
    memset(s, 0, sizeof *s);
}

int sc_sniff_col_index(const sc_sniff *s, const char *name) {
    for (int i = 0; i < s->n_cols; i++)
        if (!strcmp(s->cols[i].name, name)) return i;
    return -1;
}

/* The dialect that splits the probe lines into the same number (>= 2) of
 * cells most often (at least 90% of them); ties go to more cells, then to
 * the order of dialects. -1 when none does; *n_cols gets that number. */
static int pick_dialect(const lines *ls, char *tmp, sc_cell *cells, int *n_cols) {
    int best = -1;
    double best_frac = 0;
    size_t n = ls->n < PROBE_LINES ? ls->n : PROBE_LINES;
    for (int d = 0; d < N_DIALECTS; d++) {
        int counts[PROBE_LINES], mode = 0;
        size_t mode_n = 0;
        for (size_t i = 0; i < n; i++)
            counts[i] = split_copy(ls->p[i], ls->len[i], dialects[d].delim, dialects[d].quote, tmp, cells, SC_MAX_COLUMNS);
        for (size_t i = 0; i < n; i++) {
            if (counts[i] < 2 || counts[i] > SC_MAX_COLUMNS) continue;
            size_t m = 0;
            for (size_t j = 0; j < n; j++) m += counts[j] == counts[i];
            if (m > mode_n || (m == mode_n && counts[i] > mode)) mode = counts[i], mode_n = m;
        }
        if (!mode) continue;
        double frac = (double)mode_n / (double)n;
        if (frac > best_frac + 1e-9 || (fabs(frac - best_frac) < 1e-9 && mode > *n_cols)) {
            best = d;
            best_frac = frac;
            *n_cols = mode;
        }
    }
    return best_frac >= 0.9 ? best : -1;
}

/* The first line is a header when its cells are distinct non-numbers and
 * either some column holds numbers below it, or none of its cells appears
 * again in its column among the probe lines. */
static int looks_like_header(const lines *ls, const char *delim, char quote, int ncols, char *tmp, sc_cell *cells) {
    if (ls->n < 2) return 0;
    char *first = sc_malloc(ls->len[0] + 1);
    sc_cell *fc = sc_malloc((size_t)ncols * sizeof *fc);
    int64_t *nums = sc_calloc((size_t)ncols, sizeof *nums);
    int header = first && fc && nums && split_copy(ls->p[0], ls->len[0], delim, quote, first, fc, ncols) == ncols;
    for (int c = 0; header && c < ncols; c++) {
        double x;
        if (!fc[c].len || is_number(fc[c], &x)) header = 0;
        for (int d = 0; header && d < c; d++)
            if (fc[d].len == fc[c].len && !memcmp(fc[d].p, fc[c].p, fc[c].len)) header = 0;
    }
    if (header) {
        size_t n = ls->n < PROBE_LINES ? ls->n : PROBE_LINES;
        int64_t rows = 0;
        int repeats = 0, numeric_below = 0;
        for (size_t i = 1; i < n; i++) {
            if (split_copy(ls->p[i], ls->len[i], delim, quote, tmp, cells, ncols) != ncols) continue;
            rows++;
            for (int c = 0; c < ncols; c++) {
                double x;
                nums[c] += is_number(cells[c], &x);
                repeats |= cells[c].len == fc[c].len && !memcmp(cells[c].p, fc[c].p, fc[c].len);
            }
        }
        for (int c = 0; c < ncols; c++) numeric_below |= rows && nums[c] * 10 >= rows * 9;
        header = numeric_below || !repeats;
    }
    sc_free(first);
    sc_free(fc);
    sc_free(nums);
    return header;
}

static void name_columns(sc_sniff *s, const sc_cell *first) {
    for (int c = 0; c < s->n_cols; c++) {
        sc_sniff_col *k = &s->cols[c];
        char base[SC_NAME_MAX];
        if (first && first[c].len && first[c].len < SC_NAME_MAX - 8 && !memchr(first[c].p, 0, first[c].len)) {
            memcpy(base, first[c].p, first[c].len);
            base[first[c].len] = 0;
        } else {
            snprintf(base, sizeof base, "c%d", c + 1); /* no header, or a name too long for a field */
        }
        snprintf(k->name, sizeof k->name, "%s", base);
        for (int n = 2; sc_sniff_col_index(s, k->name) < c; n++) /* a repeated name gets _2, _3, ... */
            snprintf(k->name, sizeof k->name, "%.50s_%d", base, n);
    }
}

int sc_sniff_buffer(sc_sniff *s, const char *data, size_t len, const char *name, int64_t max_rows, sc_error *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", name);
    s->eof = 1;
    const unsigned char *u = (const unsigned char *)data;
    if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
        s->bom = 1;
        data += 3, len -= 3;
        u += 3;
    }
    if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF)))
        return sc_fail(err, SC_EINVAL, "%s: UTF-16 text; convert it to UTF-8 first (iconv -f UTF-16 -t UTF-8)", name);
    if (memchr(data, 0, len < 4096 ? len : 4096))
        return sc_fail(err, SC_EINVAL, "%s: holds NUL bytes: a binary file or UTF-16 text, not a delimited table", name);
    size_t i = 0;
    while (i < len && isspace(u[i])) i++;
    if (i == len) return sc_fail(err, SC_EINVAL, "%s: empty file", name);
    if (data[i] == '{' || data[i] == '[')
        return sc_fail(err, SC_EINVAL,
                       "%s: JSON, not a delimited table: convert it to CSV or TSV first (as scripts/prepare_amazon_mi.py "
                       "does for the Amazon reviews)",
                       name);
    /* one private copy, converted to UTF-8 when it is not; +1 for the NUL after the last line */
    size_t bad_at;
    s->latin1 = !sc_utf8_valid(data, len, &bad_at);
    char *buf = sc_malloc((s->latin1 ? 2 * len : len) + 1);
    char *tmp = NULL;
    sc_cell *cells = sc_malloc((SC_MAX_COLUMNS + 1) * sizeof *cells);
    lines ls = {0};
    int rc = SC_OK;
    if (!buf || !cells) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    if (s->latin1) len = sc_latin1_to_utf8(data, len, buf);
    else memcpy(buf, data, len);
    buf[len] = 0;
    if ((rc = cut_lines(buf, len, &ls, err))) goto done;
    size_t longest = 0;
    for (size_t l = 0; l < ls.n; l++) longest = ls.len[l] > longest ? ls.len[l] : longest;
    if (!(tmp = sc_malloc(longest + 1))) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    int d = pick_dialect(&ls, tmp, cells, &s->n_cols);
    if (d < 0) {
        rc = sc_fail(err, SC_EINVAL,
                     "%s: no delimiter (tab, ',', '|', ';', '::') splits the first lines into the same number of cells; "
                     "is it a delimited table?",
                     name);
        goto done;
    }
    snprintf(s->delim, sizeof s->delim, "%s", dialects[d].delim);
    s->quote = dialects[d].quote;
    s->cols = sc_calloc((size_t)s->n_cols, sizeof *s->cols);
    if (!s->cols) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    for (int c = 0; c < s->n_cols; c++) {
        sc_strmap_init(&s->cols[c].values);
        for (int k = 0; k < SC_SNIFF_SEPS; k++) sc_strmap_init(&s->cols[c].sep[k].distinct);
    }
    s->header = looks_like_header(&ls, s->delim, s->quote, s->n_cols, tmp, cells);
    if (s->header) {
        char *first = sc_malloc(ls.len[0] + 1);
        sc_cell *fc = sc_malloc((size_t)s->n_cols * sizeof *fc);
        if (first && fc && split_copy(ls.p[0], ls.len[0], s->delim, s->quote, first, fc, s->n_cols) == s->n_cols)
            name_columns(s, fc);
        else
            name_columns(s, NULL);
        sc_free(first);
        sc_free(fc);
    } else {
        name_columns(s, NULL);
    }
    size_t l0 = s->header ? 1 : 0, l = l0;
    for (; l < ls.n && s->rows < max_rows; l++) {
        int n = split_copy(ls.p[l], ls.len[l], s->delim, s->quote, tmp, cells, SC_MAX_COLUMNS);
        if (n != s->n_cols) {
            s->bad_rows++;
            continue;
        }
        s->rows++;
        for (int c = 0; c < n; c++) col_add(&s->cols[c], cells[c], s->delim);
    }
    /* the most 1s in one row among the columns that hold only 0 and 1 (flag columns) */
    for (size_t r = l0; r < l; r++) {
        if (split_copy(ls.p[r], ls.len[r], s->delim, s->quote, tmp, cells, SC_MAX_COLUMNS) != s->n_cols) continue;
        int ones = 0;
        for (int c = 0; c < s->n_cols; c++)
            ones += s->cols[c].binary == s->rows && cells[c].len == 1 && cells[c].p[0] == '1';
        if (ones > s->max_ones) s->max_ones = ones;
    }
    for (int c = 0; c < s->n_cols; c++)
        if (s->cols[c].values.n == 0 && s->cols[c].filled) s->cols[c].distinct_capped = 1; /* allocation failed */
    if (s->rows == 0) rc = sc_fail(err, SC_EINVAL, "%s: no data rows%s", name, s->header ? " below the header" : "");
    if (l < ls.n) s->eof = 0;
done:
    sc_free(ls.p);
    sc_free(ls.len);
    sc_free(tmp);
    sc_free(cells);
    sc_free(buf);
    if (rc) sc_sniff_free(s);
    return rc;
}

int sc_sniff_file(sc_sniff *s, const char *path, int64_t max_rows, sc_error *err) {
    memset(s, 0, sizeof *s);
    sc_line_reader lr;
    int rc = sc_line_reader_open(&lr, path, err);
    if (rc) return rc;
    /* the first max_rows + 1 lines (a header, maybe), at most MAX_HEAD bytes */
    sc_strbuf head = {0};
    char *line;
    size_t len;
    int k = 0;
    int64_t n = 0;
    while (n <= max_rows && head.len < MAX_HEAD && (k = sc_line_reader_next(&lr, &line, &len, err)) > 0) {
        sc_strbuf_add(&head, line, len);
        sc_strbuf_add(&head, "\n", 1);
        n += len > 0;
    }
    int more = sc_line_reader_next(&lr, &line, &len, NULL) > 0;
    sc_line_reader_close(&lr);
    if (k < 0) rc = k;
    else if (head.oom) rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
    else rc = sc_sniff_buffer(s, head.s ? head.s : "", head.len, path, max_rows, err);
    if (!rc && more) s->eof = 0;
    sc_free(head.s);
    return rc;
}
