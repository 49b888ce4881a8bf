/* Request bodies -> cell grids; predictions -> JSON. See request.h.
 *
 * The JSON reader is this file's own rather than cJSON's: cJSON builds a
 * node of ~64 bytes per value before anything can be checked, so a 16 MB
 * body of "{}" rows, or one 8M-element array in a cell, took 700 MB and
 * more before the row limit applied. Here nothing is built. Pass 1 checks
 * the syntax, the shape and the limits and counts the rows and numeric
 * cells, refusing at the first value past a limit; the grid is then
 * allocated at its exact size, and pass 2 reads the same body again,
 * decoding each string in place (an escape is never shorter than what it
 * decodes to, so the decoded text ends at or before the closing quote,
 * where its NUL goes) and filling the grid. */
#include "serve/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "serve/scorer.h"

static const char *const KIND_NAMES[SC_REQ_KIND_COUNT] = {
    "none", "bad_json", "bad_shape", "bad_type", "bad_value", "unknown_field", "empty", "too_many_instances", "no_memory",
};

const char *sc_req_error_name(sc_req_error k) {
    return k >= 0 && k < SC_REQ_KIND_COUNT ? KIND_NAMES[k] : "unknown";
}

enum {
    MAX_DEPTH = 64,   /* nesting of a skipped value (an ignored column, signature_name) */
    KEY_CAP = 256,    /* a key is decoded into this much; a longer one names no column */
    NUMBER_CAP = 400, /* characters of a number */
};

typedef struct parser {
    char *s;
    size_t len, i; /* the body and the cursor */
    const char *const *known;
    int n_known;
    const sc_request_limits *lim;
    sc_request *req;
    int fill;          /* 0: check and count; 1: decode strings in place and write cells */
    int n_rows;        /* instances so far (pass 1), or the rows of the grid (pass 2) */
    size_t n_numbers;  /* numeric cells so far */
    int *seen;         /* (n_known) the stamp of the row that last gave each column */
    int stamp;
    /* where the cursor is, for messages */
    int inputs; /* 0: in "instances", 1: in "inputs", -1: at the top level */
    char key[KEY_CAP];
    size_t key_len; /* the decoded key's full length (may exceed KEY_CAP - 1) */
    int key_ok;     /* key holds all of it and no NUL: it can equal a C string */
    sc_req_error *kind;
    sc_error *err;
} parser;

static int refuse(parser *p, sc_req_error k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(parser *p, sc_req_error k, const char *fmt, ...) {
    *p->kind = k;
    int code = k == SC_REQ_NO_MEMORY ? SC_ENOMEM : SC_EINVAL;
    if (p->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
        va_end(ap);
        p->err->code = code;
    }
    return code;
}

static int syntax(parser *p, const char *what) {
    return refuse(p, SC_REQ_BAD_JSON, "the body is not valid JSON: %s at byte %zu of %zu", what, p->i, p->len);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; k++) cp = cp << 6 | (s[k] & 0x3F);
    static const unsigned MIN[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < MIN[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* The key at the cursor as text for a message: at most 100 bytes of it,
 * valid UTF-8 copied, anything else (and control characters) as \xNN. */
static const char *key_text(parser *p, char *out, size_t cap) {
    size_t n = p->key_len < KEY_CAP ? p->key_len : KEY_CAP - 1, o = 0, lim = n < 100 ? n : 100;
    const unsigned char *k = (const unsigned char *)p->key;
    for (size_t i = 0; i < lim && o + 8 < cap;) {
        int l = k[i] >= 0x20 && k[i] != 0x7F ? utf8_seq(k + i, lim - i) : 0;
        if (l) {
            memcpy(out + o, k + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", k[i++]);
        }
    }
    if (p->key_len > lim && o + 4 < cap) o += (size_t)snprintf(out + o, cap - o, "...");
    out[o] = '\0';
    return out;
}

/* "instances[3].user_id"; "inputs.user_id[3]", or "inputs.user_id" for the
 * whole column (row < 0). */
static const char *where(parser *p, int row, char *out, size_t cap) {
    char k[512];
    key_text(p, k, sizeof k);
    if (!p->inputs) snprintf(out, cap, "instances[%d].%s", row, k);
    else if (row >= 0) snprintf(out, cap, "inputs.%s[%d]", k, row);
    else snprintf(out, cap, "inputs.%s", k);
    return out;
}

static int known_list(const parser *p, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int c = 0; c < p->n_known; c++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", c ? ", " : "", p->known[c]);
    }
    return 0;
}

static void ws(parser *p) {
    while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int peek(const parser *p) { return p->i < p->len ? (unsigned char)p->s[p->i] : -1; }

/* The kind of value that starts with c, for messages; NULL if none does. */
static const char *type_name(int c) {
    switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    default: return c == '-' || (c >= '0' && c <= '9') ? "a number" : NULL;
    }
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* The string at the cursor (a '"'), decoded into dst[0..cap) when dst is
 * not NULL (NUL-terminated when it fits; dst may be the string's own first
 * byte: decoding never overtakes reading). *n gets the decoded length and
 * *nul whether it holds U+0000. Bytes of 0x80 and above are taken as they
 * are. Leaves the cursor after the closing quote. */
static int read_string(parser *p, char *dst, size_t cap, size_t *n, int *nul) {
    const char *s = p->s;
    size_t i = p->i + 1, o = 0;
    *nul = 0;
#define PUT(ch) do { if (dst && o < cap) dst[o] = (char)(ch); o++; } while (0)
    for (;;) {
        if (i >= p->len) {
            p->i = i;
            return syntax(p, "a string is not closed");
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"') break;
        if (c < 0x20) {
            p->i = i;
            return syntax(p, "a control character inside a string (write it as an escape)");
        }
        if (c != '\\') {
            PUT(c);
            i++;
            continue;
        }
        if (i + 1 >= p->len) {
            p->i = i;
            return syntax(p, "a string is not closed");
        }
        char e = s[i + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char OUT[] = "\"\\/\b\f\n\r\t";
            PUT(OUT[simple - "\"\\/bfnrt"]);
            i += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || i + 6 > p->len || hex4(s + i + 2, &cp)) {
            p->i = i;
            return syntax(p, "an invalid escape in a string");
        }
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            p->i = i - 6;
            return syntax(p, "an unpaired surrogate escape in a string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > p->len || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                p->i = i - 6;
                return syntax(p, "an unpaired surrogate escape in a string");
            }
            i += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) *nul = 1;
        if (cp < 0x80) {
            PUT(cp);
        } else if (cp < 0x800) {
            PUT(0xC0 | cp >> 6);
            PUT(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            PUT(0xE0 | cp >> 12);
            PUT(0x80 | (cp >> 6 & 0x3F));
            PUT(0x80 | (cp & 0x3F));
        } else {
            PUT(0xF0 | cp >> 18);
            PUT(0x80 | (cp >> 12 & 0x3F));
            PUT(0x80 | (cp >> 6 & 0x3F));
            PUT(0x80 | (cp & 0x3F));
        }
    }
#undef PUT
    if (dst && o < cap) dst[o] = '\0';
    *n = o;
    p->i = i + 1;
    return SC_OK;
}

/* The number at the cursor, by JSON's grammar, passed over; *len gets its length. */
static int scan_number(parser *p, size_t *len) {
    const char *s = p->s;
    size_t i = p->i, n = p->len;
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') i++;
    else if (DIGIT(i)) while (DIGIT(i)) i++;
    else goto bad;
    if (i < n && s[i] == '.') {
        i++;
        if (!DIGIT(i)) goto bad;
        while (DIGIT(i)) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!DIGIT(i)) goto bad;
        while (DIGIT(i)) i++;
    }
#undef DIGIT
    *len = i - p->i;
    p->i = i;
    return SC_OK;
bad:
    p->i = i;
    return syntax(p, "a malformed number");
}

static int literal(parser *p, const char *word) {
    size_t l = strlen(word);
    if (p->len - p->i < l || memcmp(p->s + p->i, word, l)) return syntax(p, "expected a value");
    p->i += l;
    return SC_OK;
}

static int key_is(const parser *p, const char *name) { return p->key_ok && !strcmp(p->key, name); }

/* After a member or element: ',' (*more = 1) or the closing bracket (*more = 0). */
static int next_or_end(parser *p, char close, int *more) {
    ws(p);
    int c = peek(p);
    if (c == ',' || c == close) {
        p->i++;
        *more = c == ',';
        return SC_OK;
    }
    return syntax(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* Any JSON value at the cursor, checked and passed over; nothing is kept. */
static int skip_value(parser *p, int depth) {
    ws(p);
    int c = peek(p), rc;
    size_t n;
    int nul;
    switch (c) {
    case '"': return read_string(p, NULL, 0, &n, &nul);
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    case '{':
    case '[':
        if (depth >= MAX_DEPTH)
            return refuse(p, SC_REQ_BAD_SHAPE, "a value nested deeper than %d levels at byte %zu", MAX_DEPTH, p->i);
        p->i++;
        ws(p);
        if (peek(p) == (c == '{' ? '}' : ']')) {
            p->i++;
            return SC_OK;
        }
        int more;
        do {
            if (c == '{') {
                ws(p);
                if (peek(p) != '"') return syntax(p, "expected a key");
                if ((rc = read_string(p, NULL, 0, &n, &nul))) return rc;
                ws(p);
                if (peek(p) != ':') return syntax(p, "expected ':'");
                p->i++;
            }
            if ((rc = skip_value(p, depth + 1)) || (rc = next_or_end(p, c == '{' ? '}' : ']', &more))) return rc;
        } while (more);
        return SC_OK;
    default:
        if (!type_name(c)) return syntax(p, "expected a value");
        return scan_number(p, &n);
    }
}

/* The key at the cursor (a '"') into p->key, then the ':' after it.
 * Returns the column it names (-1: none; hint is the column to try first). */
static int read_key(parser *p, int hint, int *col) {
    int nul, rc;
    ws(p);
    if (peek(p) != '"') return syntax(p, "expected a key");
    if ((rc = read_string(p, p->key, KEY_CAP, &p->key_len, &nul))) return rc;
    p->key[KEY_CAP - 1] = '\0';
    p->key_ok = !nul && p->key_len < KEY_CAP;
    ws(p);
    if (peek(p) != ':') return syntax(p, "expected ':'");
    p->i++;
    ws(p);
    *col = -1;
    if (!p->key_ok) return SC_OK;
    if (hint >= 0 && hint < p->n_known && !strcmp(p->known[hint], p->key)) *col = hint;
    for (int c = 0; c < p->n_known && *col < 0; c++)
        if (!strcmp(p->known[c], p->key)) *col = c;
    return SC_OK;
}

/* The value of a column the model does not read: skipped whatever it
 * holds (ignore_unknown), or refused. row < 0: a whole column of inputs. */
static int unknown_column(parser *p, int row) {
    if (p->lim->ignore_unknown) return skip_value(p, 1);
    char w[700], list[1024];
    known_list(p, list, sizeof list);
    return refuse(p, SC_REQ_UNKNOWN_FIELD, "%s: the model reads no such column (it reads: %s)", where(p, row, w, sizeof w),
                  list);
}

/* Column col is given for the first time in this row (or in inputs). */
static int first_time(parser *p, int col, int row) {
    char w[700];
    if (p->seen[col] == p->stamp) return refuse(p, SC_REQ_BAD_SHAPE, "%s: the column appears twice", where(p, row, w, sizeof w));
    p->seen[col] = p->stamp;
    return SC_OK;
}

/* The value at the cursor: the cell (row, col) of the grid. */
static int cell(parser *p, int row, int col) {
    char w[700];
    const char **slot = p->fill ? &p->req->cells[(size_t)row * p->req->n_cols + col] : NULL;
    int c = peek(p), rc, nul;
    size_t n;
    if (c == '"') {
        char *dst = p->fill ? p->s + p->i + 1 : NULL;
        if ((rc = read_string(p, dst, p->len, &n, &nul))) return rc;
        if (nul)
            return refuse(p, SC_REQ_BAD_VALUE, "%s: the string holds a NUL character (\\u0000), which no cell can hold",
                          where(p, row, w, sizeof w));
        if (slot) *slot = dst;
        return SC_OK;
    }
    if (c == 'n') return literal(p, "null");
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t start = p->i;
        if ((rc = scan_number(p, &n))) return rc;
        if (n >= NUMBER_CAP)
            return refuse(p, SC_REQ_BAD_VALUE, "%s: a number of %zu characters (at most %d; send long ids as strings)",
                          where(p, row, w, sizeof w), n, NUMBER_CAP - 1);
        char text[NUMBER_CAP];
        memcpy(text, p->s + start, n);
        text[n] = '\0';
        double v = strtod(text, NULL);
        if (!isfinite(v)) return refuse(p, SC_REQ_BAD_VALUE, "%s: the number is out of range", where(p, row, w, sizeof w));
        if (slot) *slot = sc_format_number(v, p->req->numbers + p->n_numbers * 32);
        p->n_numbers++;
        return SC_OK;
    }
    const char *t = type_name(c);
    if (!t) return syntax(p, "expected a value");
    if ((c == 't' || c == 'f') && (rc = literal(p, c == 't' ? "true" : "false"))) return rc;
    /* an array or object is refused where it starts: its contents are never read */
    return refuse(p, SC_REQ_BAD_TYPE, "%s: expected a string, a number or null, got %s", where(p, row, w, sizeof w), t);
}

static int too_many(parser *p) {
    return refuse(p, SC_REQ_TOO_MANY, "the request has more than %d instances: the limit is %d", p->lim->max_instances,
                  p->lim->max_instances);
}

static int parse_instances(parser *p) {
    int c = peek(p), rc, more;
    if (c != '[') {
        if ((rc = skip_value(p, 0))) return rc;
        return refuse(p, SC_REQ_BAD_SHAPE, "\"instances\" must be an array of objects, got %s", type_name(c));
    }
    p->i++;
    ws(p);
    if (peek(p) == ']') {
        p->i++;
        return SC_OK;
    }
    p->inputs = 0;
    for (int r = 0;; r++) {
        if (r >= p->lim->max_instances) return too_many(p);
        ws(p);
        c = peek(p);
        if (c != '{') {
            if ((rc = skip_value(p, 0))) return rc;
            return refuse(p, SC_REQ_BAD_SHAPE, "instances[%d]: expected an object of column: value, got %s", r,
                          type_name(c));
        }
        p->i++;
        p->stamp++;
        ws(p);
        if (peek(p) == '}') {
            p->i++;
        } else {
            int j = 0;
            do {
                int col;
                if ((rc = read_key(p, j++, &col))) return rc;
                rc = col < 0 ? unknown_column(p, r) : first_time(p, col, r);
                if (!rc && col >= 0) rc = cell(p, r, col);
                if (!rc) rc = next_or_end(p, '}', &more);
                if (rc) return rc;
            } while (more);
        }
        if (!p->fill) p->n_rows = r + 1;
        if ((rc = next_or_end(p, ']', &more))) return rc;
        if (!more) return SC_OK;
    }
}

/* The columnar form. The first column the model reads sets the row count
 * (pass 1 refuses it past max_instances); every other one must match it.
 * Columns the model does not read are skipped (ignore_unknown) or refused. */
static int parse_inputs(parser *p) {
    int c = peek(p), rc, more, first = 1;
    if (c != '{') {
        if ((rc = skip_value(p, 0))) return rc;
        return refuse(p, SC_REQ_BAD_SHAPE, "\"inputs\" must be an object of column: [values], got %s", type_name(c));
    }
    p->i++;
    ws(p);
    if (peek(p) == '}') return refuse(p, SC_REQ_EMPTY, "\"inputs\" has no columns");
    p->inputs = 1;
    p->stamp++;
    int j = 0;
    do {
        int col;
        char w[700];
        if ((rc = read_key(p, j++, &col))) return rc;
        if (col < 0) {
            if ((rc = unknown_column(p, -1))) return rc;
        } else {
            if ((rc = first_time(p, col, -1))) return rc;
            c = peek(p);
            if (c != '[') {
                if ((rc = skip_value(p, 0))) return rc;
                return refuse(p, SC_REQ_BAD_SHAPE, "%s: expected an array of values, got %s", where(p, -1, w, sizeof w),
                              type_name(c));
            }
            int limit = first && !p->fill ? p->lim->max_instances : p->n_rows, r = 0;
            p->i++;
            ws(p);
            if (peek(p) == ']') {
                p->i++;
            } else {
                do {
                    if (r >= limit) {
                        if (first) return too_many(p);
                        return refuse(p, SC_REQ_BAD_SHAPE, "%s: has more values than the first column (%d)",
                                      where(p, -1, w, sizeof w), limit);
                    }
                    ws(p);
                    if ((rc = cell(p, r, col)) || (rc = next_or_end(p, ']', &more))) return rc;
                    r++;
                } while (more);
            }
            if (first) p->n_rows = r;
            else if (r != p->n_rows)
                return refuse(p, SC_REQ_BAD_SHAPE, "%s: has %d values, the first column has %d", where(p, -1, w, sizeof w),
                              r, p->n_rows);
            first = 0;
        }
        if ((rc = next_or_end(p, '}', &more))) return rc;
    } while (more);
    return SC_OK;
}

/* One pass over the whole body. */
static int parse_body(parser *p) {
    int rc, more, have = 0; /* 1: instances, 2: inputs */
    p->i = 0;
    p->stamp = 0;
    p->n_numbers = 0;
    memset(p->seen, 0, (size_t)(p->n_known ? p->n_known : 1) * sizeof *p->seen);
    ws(p);
    int c = peek(p);
    if (c < 0) return refuse(p, SC_REQ_BAD_JSON, "the request body is empty: expected a JSON object");
    if (c != '{') {
        if ((rc = skip_value(p, 0))) return rc;
        return refuse(p, SC_REQ_BAD_SHAPE, "expected a JSON object with \"instances\" or \"inputs\", got %s", type_name(c));
    }
    p->i++;
    ws(p);
    if (peek(p) == '}') {
        p->i++;
    } else {
        do {
            int col;
            char k[512];
            p->inputs = -1;
            if ((rc = read_key(p, -1, &col))) return rc;
            int is_inst = key_is(p, "instances"), is_inputs = key_is(p, "inputs");
            if ((is_inst || is_inputs) && have == (is_inst ? 1 : 2))
                return refuse(p, SC_REQ_BAD_SHAPE, "\"%s\" appears twice", p->key);
            if ((is_inst || is_inputs) && have)
                return refuse(p, SC_REQ_BAD_SHAPE, "give either \"instances\" or \"inputs\", not both");
            if (is_inst) {
                have = 1;
                rc = parse_instances(p);
            } else if (is_inputs) {
                have = 2;
                rc = parse_inputs(p);
            } else if (key_is(p, "signature_name")) {
                rc = skip_value(p, 0);
            } else {
                return refuse(p, SC_REQ_BAD_SHAPE, "unexpected key \"%s\" at the top level (expected \"instances\" or \"inputs\")",
                              key_text(p, k, sizeof k));
            }
            if (rc || (rc = next_or_end(p, '}', &more))) return rc;
        } while (more);
    }
    /* trailing white space (and NUL bytes, as a C string's terminator) only */
    for (; p->i < p->len; p->i++) {
        char ch = p->s[p->i];
        if (ch != '\0' && !strchr(" \t\r\n", ch))
            return refuse(p, SC_REQ_BAD_JSON, "the body has bytes after the JSON value (at byte %zu)", p->i);
    }
    if (!have) return refuse(p, SC_REQ_BAD_SHAPE, "the body has neither \"instances\" nor \"inputs\"");
    if (p->n_rows == 0) return refuse(p, SC_REQ_EMPTY, "the request has no instances");
    return SC_OK;
}

void sc_request_free(sc_request *req) {
    if (!req) return;
    sc_free(req->cells);
    sc_free(req->numbers);
    memset(req, 0, sizeof *req);
}

int sc_request_parse(char *body, size_t len, const char *const *known, int n_known, const sc_request_limits *lim,
                     sc_request *req, sc_req_error *kind, sc_error *err) {
    memset(req, 0, sizeof *req);
    sc_req_error kind_local;
    parser p = {0};
    p.s = body;
    p.len = body ? len : 0;
    p.known = known;
    p.n_known = n_known;
    p.lim = lim;
    p.req = req;
    p.kind = kind ? kind : &kind_local;
    p.err = err;
    *p.kind = SC_REQ_OK;
    p.seen = sc_calloc((size_t)(n_known ? n_known : 1), sizeof *p.seen);
    if (!p.seen) return refuse(&p, SC_REQ_NO_MEMORY, "out of memory");
    int rc = parse_body(&p);
    if (!rc) {
        req->n_rows = p.n_rows;
        req->n_cols = n_known;
        req->col_names = known;
        req->cells = sc_calloc((size_t)p.n_rows * (size_t)(n_known ? n_known : 1), sizeof *req->cells);
        req->numbers = sc_malloc((p.n_numbers ? p.n_numbers : 1) * 32);
        if (!req->cells || !req->numbers) rc = refuse(&p, SC_REQ_NO_MEMORY, "out of memory for %d instances", p.n_rows);
    }
    if (!rc) {
        p.fill = 1;
        rc = parse_body(&p);
        if (rc) { /* a bug: both passes read the same bytes with the same rules */
            char first[sizeof p.err->msg];
            snprintf(first, sizeof first, "%s", p.err ? p.err->msg : "");
            rc = refuse(&p, SC_REQ_BAD_JSON, "internal error: the second pass disagrees with the first (%s)", first);
        }
    }
    sc_free(p.seen);
    if (rc) sc_request_free(req);
    return rc;
}

char *sc_predictions_json(const float *probs, int n, size_t *len) {
    size_t cap = 32 + (size_t)n * 18;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t o = (size_t)snprintf(s, cap, "{\"predictions\":[");
    for (int i = 0; i < n; i++) {
        /* %.9g round-trips a float; probabilities are finite by construction */
        int w = snprintf(s + o, cap - o, "%s%.9g", i ? "," : "", (double)probs[i]);
        o += (size_t)w;
    }
    o += (size_t)snprintf(s + o, cap - o, "]}\n");
    if (len) *len = o;
    return s;
}

char *sc_json_quote(const char *text) {
    size_t n = strlen(text), o = 0;
    char *out = malloc(n * 6 + 3); /* "\u00XX" is the longest form of a byte */
    if (!out) return NULL;
    const unsigned char *t = (const unsigned char *)text;
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = t[i];
        int l = c >= 0x80 ? utf8_seq(t + i, n - i) : 1;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else if (!l) { /* not UTF-8: the byte's value, as text */
            o += (size_t)sprintf(out + o, "\\\\x%02x", c);
            l = 1;
        } else {
            memcpy(out + o, t + i, (size_t)l);
            o += (size_t)l;
        }
        i += (size_t)l;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
