/* YAML dataset config -> sc_dcfg, through libyaml's document API so every
 * node keeps its line for error messages. */
#include "data/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/alloc.h"
#include "base/file.h"
#include "data/dataset.h"

typedef struct ctx {
    yaml_document_t doc;
    const char *name;
    const char *base_dir;
    sc_error *err;
    sc_dcfg *cfg;
} ctx;

static int line_of(yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

#define FAILN(c, n, ...) cfg_fail((c), (n), __VA_ARGS__)
__attribute__((format(printf, 3, 4))) static int cfg_fail(ctx *c, yaml_node_t *n, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sc_fail(c->err, SC_EINVAL, "%s:%d: %s", c->name, line_of(n), msg);
}

static yaml_node_t *node(ctx *c, int i) { return yaml_document_get_node(&c->doc, i); }

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_str(ctx *c, yaml_node_t *n, const char *key, char *out, size_t cap) {
    const char *s = scalar(n);
    if (!s) return FAILN(c, n, "'%s' must be a string", key);
    if (strlen(s) >= cap) return FAILN(c, n, "'%s' is too long (at most %zu bytes)", key, cap - 1);
    if (memchr(s, 0, n->data.scalar.length)) return FAILN(c, n, "'%s' holds a NUL byte", key);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int get_strdup(ctx *c, yaml_node_t *n, const char *key, char **out) {
    const char *s = scalar(n);
    if (!s) return FAILN(c, n, "'%s' must be a string", key);
    sc_free(*out);
    *out = sc_strdup(s);
    if (!*out) return sc_fail(c->err, SC_ENOMEM, "out of memory");
    return 0;
}

static int get_int(ctx *c, yaml_node_t *n, const char *key, long long lo, long long hi, long long *out) {
    const char *s = scalar(n);
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi)
        return FAILN(c, n, "'%s' must be an integer in [%lld, %lld], got '%s'", key, lo, hi, s ? s : "(not a scalar)");
    *out = v;
    return 0;
}

static int get_double(ctx *c, yaml_node_t *n, const char *key, double *out) {
    const char *s = scalar(n);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || !isfinite(v)) return FAILN(c, n, "'%s' must be a number, got '%s'", key, s ? s : "(not a scalar)");
    *out = v;
    return 0;
}

static int get_bool(ctx *c, yaml_node_t *n, const char *key, int *out) {
    const char *s = scalar(n);
    if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1"))) *out = 1;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0"))) *out = 0;
    else return FAILN(c, n, "'%s' must be true or false, got '%s'", key, s ? s : "(not a scalar)");
    return 0;
}

static int get_enum(ctx *c, yaml_node_t *n, const char *key, const char *const *names, int *out) {
    const char *s = scalar(n);
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    char all[300] = "";
    for (int i = 0; names[i]; i++) {
        strncat(all, i ? ", " : "", sizeof all - strlen(all) - 1);
        strncat(all, names[i], sizeof all - strlen(all) - 1);
    }
    return FAILN(c, n, "'%s' must be one of %s, got '%s'", key, all, s ? s : "(not a scalar)");
}

/* A list of strings: a sequence of scalars, or one scalar (a list of one). */
static int get_strlist(ctx *c, yaml_node_t *n, const char *key, char ***out, int *count) {
    int cnt = n->type == YAML_SEQUENCE_NODE ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    if (n->type == YAML_MAPPING_NODE) return FAILN(c, n, "'%s' must be a list of strings", key);
    if (cnt > 100000) return FAILN(c, n, "'%s' has too many entries", key);
    for (int i = 0; i < *count; i++) sc_free((*out)[i]);
    sc_free(*out);
    *out = sc_calloc((size_t)cnt + 1, sizeof **out);
    *count = 0;
    if (!*out) return sc_fail(c->err, SC_ENOMEM, "out of memory");
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE ? node(c, n->data.sequence.items.start[i]) : n;
        const char *s = scalar(it);
        if (!s) return FAILN(c, it, "'%s' must be a list of strings", key);
        (*out)[i] = sc_strdup(s);
        if (!(*out)[i]) return sc_fail(c->err, SC_ENOMEM, "out of memory");
        *count = i + 1;
    }
    return 0;
}

/* Iterate the pairs of a mapping; fails on keys not in allowed (NULL-ended). */
typedef struct pair_it {
    yaml_node_pair_t *p, *end;
} pair_it;

static int check_map(ctx *c, yaml_node_t *n, const char *what, const char *const *allowed) {
    if (!n || n->type != YAML_MAPPING_NODE) return FAILN(c, n, "%s must be a mapping (key: value)", what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        const char *ks = scalar(k);
        if (!ks) return FAILN(c, k, "%s: keys must be strings", what);
        int ok = 0;
        for (int i = 0; allowed[i]; i++) ok |= !strcmp(ks, allowed[i]);
        if (!ok) {
            char all[600] = "";
            for (int i = 0; allowed[i]; i++) {
                strncat(all, i ? ", " : "", sizeof all - strlen(all) - 1);
                strncat(all, allowed[i], sizeof all - strlen(all) - 1);
            }
            return FAILN(c, k, "unknown key '%s' in %s (known: %s)", ks, what, all);
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            const char *qs = scalar(node(c, q->key));
            if (qs && !strcmp(qs, ks)) return FAILN(c, k, "duplicate key '%s' in %s", ks, what);
        }
    }
    return 0;
}

#define FOR_PAIRS(c, n, K, V)                                                                      \
    for (yaml_node_pair_t *pp_ = (n)->data.mapping.pairs.start; pp_ < (n)->data.mapping.pairs.top; pp_++) \
        for (int once_ = 1; once_;)                                                                \
            for (const char *K = scalar(node(c, pp_->key)); once_; once_ = 0)                      \
                for (yaml_node_t *V = node(c, pp_->value); once_; once_ = 0)

/* ---- paths ---- */

/* Expand s[0..n) into buf at *w; ${VAR:-default} may nest in the default.
 * Returns 0, or -1 with err set. */
static int expand_into(const char *s, size_t n, char *buf, size_t cap, size_t *w, const char *orig, const char *where,
                       sc_error *err, int depth) {
    if (depth > 8) return sc_fail(err, SC_EINVAL, "%s: ${...} nested too deep in path '%s'", where, orig), -1;
    for (size_t i = 0; i < n;) {
        if (s[i] == '$' && i + 1 < n && s[i + 1] == '{') {
            size_t j = i + 2;
            int d = 1;
            for (; j < n; j++) {
                if (s[j] == '{') d++;
                else if (s[j] == '}' && --d == 0) break;
            }
            if (j >= n) return sc_fail(err, SC_EINVAL, "%s: unterminated ${ in path '%s'", where, orig), -1;
            const char *body = s + i + 2;
            size_t bl = j - (i + 2), vl = bl;
            const char *def = NULL;
            for (size_t k = 0; k + 1 < bl; k++)
                if (body[k] == ':' && body[k + 1] == '-') {
                    vl = k;
                    def = body + k + 2;
                    break;
                }
            char var[256];
            if (vl >= sizeof var) vl = sizeof var - 1;
            memcpy(var, body, vl);
            var[vl] = 0;
            const char *val = getenv(var);
            if (val && *val) {
                size_t l = strlen(val);
                if (*w + l >= cap) return sc_fail(err, SC_EINVAL, "%s: path too long: '%.200s'", where, orig), -1;
                memcpy(buf + *w, val, l);
                *w += l;
            } else if (def) {
                if (expand_into(def, (size_t)(body + bl - def), buf, cap, w, orig, where, err, depth + 1)) return -1;
            } else {
                return sc_fail(err, SC_EINVAL, "%s: environment variable %s in path '%s' is not set", where, var, orig), -1;
            }
            i = j + 1;
            continue;
        }
        if (*w + 1 >= cap) return sc_fail(err, SC_EINVAL, "%s: path too long: '%.200s'", where, orig), -1;
        buf[(*w)++] = s[i++];
    }
    return 0;
}

char *sc_expand_path(const char *s, const char *base_dir, const char *where, sc_error *err) {
    char buf[4096];
    size_t w = 0;
    if (expand_into(s, strlen(s), buf, sizeof buf, &w, s, where, err, 0)) return NULL;
    buf[w] = 0;
    if (buf[0] != '/' && base_dir && *base_dir) {
        size_t bl = strlen(base_dir);
        if (bl + 1 + w >= sizeof buf) {
            sc_fail(err, SC_EINVAL, "%s: path too long: '%.200s'", where, s);
            return NULL;
        }
        memmove(buf + bl + 1, buf, w + 1);
        memcpy(buf, base_dir, bl);
        buf[bl] = '/';
    }
    char *r = sc_strdup(buf);
    if (!r) sc_fail(err, SC_ENOMEM, "out of memory");
    return r;
}

/* ---- sections ---- */

static int parse_delim(ctx *c, yaml_node_t *v, sc_table_cfg *t) {
    char d[16];
    if (get_str(c, v, "delimiter", d, sizeof d)) return -1;
    /* accept the escapes people write: \t and \\t */
    if (!strcmp(d, "\\t") || !strcmp(d, "tab")) strcpy(d, "\t");
    if (!d[0]) return FAILN(c, v, "'delimiter' must not be empty");
    strcpy(t->delim, d);
    t->dlen = (int)strlen(d);
    return 0;
}

static int parse_table(ctx *c, yaml_node_t *n, sc_table_cfg *t, int is_join) {
    static const char *const keys_main[] = {"path", "paths", "format", "delimiter", "header", "columns", "encoding", "quote", NULL};
    static const char *const keys_join[] = {"name", "path", "paths", "format", "delimiter", "header", "columns",
                                            "encoding", "quote", "key", "on", NULL};
    if (check_map(c, n, is_join ? "a join" : "'input'", is_join ? keys_join : keys_main)) return -1;
    t->line = line_of(n);
    strcpy(t->delim, ",");
    t->dlen = 1;
    t->quote = '"';
    int has_delim = 0, has_header = 0, has_quote = 0;
    /* format first: it sets defaults the other keys override */
    FOR_PAIRS(c, n, k, v) {
        if (strcmp(k, "format")) continue;
        static const char *const fmts[] = {"csv", "tsv", "criteo", NULL};
        int f;
        if (get_enum(c, v, "format", fmts, &f)) return -1;
        if (f == 1) strcpy(t->delim, "\t"), t->quote = 0;
        if (f == 2) {
            strcpy(t->delim, "\t");
            t->quote = 0;
            t->header = 0;
            t->columns = sc_calloc(40, sizeof *t->columns);
            if (!t->columns) return sc_fail(c->err, SC_ENOMEM, "out of memory");
            char nm[16];
            for (int i = 0; i < 40; i++) {
                if (i == 0) snprintf(nm, sizeof nm, "label");
                else if (i <= 13) snprintf(nm, sizeof nm, "I%d", i);
                else snprintf(nm, sizeof nm, "C%d", i - 13);
                t->columns[i] = sc_strdup(nm);
                if (!t->columns[i]) return sc_fail(c->err, SC_ENOMEM, "out of memory");
                t->n_columns = i + 1;
            }
        }
        t->dlen = 1;
    }
    FOR_PAIRS(c, n, k, v) {
        if (!strcmp(k, "name")) {
            if (get_str(c, v, k, t->name, sizeof t->name)) return -1;
        } else if (!strcmp(k, "path") || !strcmp(k, "paths")) {
            char **raw = NULL;
            int nr = 0;
            if (t->paths) return FAILN(c, v, "give either 'path' or 'paths'");
            if (get_strlist(c, v, k, &raw, &nr)) {
                for (int i = 0; i < nr; i++) sc_free(raw[i]);
                sc_free(raw);
                return -1;
            }
            t->paths = raw;
            t->n_paths = nr;
            char where[300];
            snprintf(where, sizeof where, "%s:%d", c->name, line_of(v));
            for (int i = 0; i < nr; i++) {
                char *p = sc_expand_path(raw[i], c->base_dir, where, c->err);
                if (!p) return -1;
                sc_free(raw[i]);
                raw[i] = p;
            }
            if (nr == 0) return FAILN(c, v, "'%s' lists no file", k);
        } else if (!strcmp(k, "delimiter")) {
            if (parse_delim(c, v, t)) return -1;
            has_delim = 1;
        } else if (!strcmp(k, "header")) {
            if (get_bool(c, v, k, &t->header)) return -1;
            has_header = 1;
        } else if (!strcmp(k, "columns")) {
            if (get_strlist(c, v, k, &t->columns, &t->n_columns)) return -1;
            if (t->n_columns < 1 || t->n_columns > SC_MAX_COLUMNS)
                return FAILN(c, v, "'columns' needs 1 to %d names", SC_MAX_COLUMNS);
            for (int i = 0; i < t->n_columns; i++) {
                if (!t->columns[i][0] || strlen(t->columns[i]) >= SC_NAME_MAX)
                    return FAILN(c, v, "column name '%s' must have 1 to %d bytes", t->columns[i], SC_NAME_MAX - 1);
                for (int j = 0; j < i; j++)
                    if (!strcmp(t->columns[i], t->columns[j])) return FAILN(c, v, "column '%s' listed twice", t->columns[i]);
            }
        } else if (!strcmp(k, "encoding")) {
            static const char *const enc[] = {"utf-8", "latin1", "utf8", "latin-1", "iso-8859-1", NULL};
            int e;
            if (get_enum(c, v, k, enc, &e)) return -1;
            t->latin1 = e == 1 || e >= 3;
        } else if (!strcmp(k, "quote")) {
            char q[4];
            if (get_str(c, v, k, q, sizeof q)) return -1;
            if (strlen(q) > 1) return FAILN(c, v, "'quote' must be one character or empty");
            t->quote = q[0];
            has_quote = 1;
        } else if (!strcmp(k, "key")) {
            if (get_str(c, v, k, t->key, sizeof t->key)) return -1;
        } else if (!strcmp(k, "on")) {
            if (get_str(c, v, k, t->on, sizeof t->on)) return -1;
        }
    }
    (void)has_delim;
    (void)has_quote;
    if (!t->paths) return FAILN(c, n, "%s needs 'path'", is_join ? "a join" : "'input'");
    if (t->n_columns == 0 && !t->header)
        return FAILN(c, n, "%s has neither 'columns' nor 'header: true'", is_join ? "a join" : "'input'");
    if (t->n_columns && has_header && t->header == 1) { /* header present but columns given: columns win, header skipped */ }
    if (is_join) {
        if (!t->name[0]) return FAILN(c, n, "a join needs 'name'");
        if (!t->key[0]) return FAILN(c, n, "join '%s' needs 'key' (its key column)", t->name);
        if (!t->on[0]) strcpy(t->on, t->key);
    } else {
        strcpy(t->name, "input");
    }
    return 0;
}

static int parse_label(ctx *c, yaml_node_t *v) {
    sc_dcfg *cfg = c->cfg;
    const char *s = scalar(v);
    if (!s) return FAILN(c, v, "'label' must be a column name or 'column OP number' (e.g. 'rating >= 4')");
    static const char *const ops[] = {">=", "<=", "==", "!=", ">", "<", NULL};
    static const int codes[] = {SC_OP_GE, SC_OP_LE, SC_OP_EQ, SC_OP_NE, SC_OP_GT, SC_OP_LT};
    const char *opp = NULL;
    int op = SC_OP_NONE;
    size_t oplen = 0;
    for (int i = 0; ops[i] && !opp; i++) {
        const char *p = strstr(s, ops[i]);
        if (p) opp = p, op = codes[i], oplen = strlen(ops[i]);
    }
    size_t cl = opp ? (size_t)(opp - s) : strlen(s);
    while (cl && s[cl - 1] == ' ') cl--;
    const char *cs = s;
    while (*cs == ' ' && cl) cs++, cl--;
    if (!cl || cl >= sizeof cfg->label_column) return FAILN(c, v, "'label': bad column name in '%s'", s);
    memcpy(cfg->label_column, cs, cl);
    cfg->label_column[cl] = 0;
    cfg->label_op = op;
    if (opp) {
        char *end;
        const char *num = opp + oplen;
        double x = strtod(num, &end);
        while (*end == ' ') end++;
        if (end == num || *end || !isfinite(x)) return FAILN(c, v, "'label': '%s' must be 'column OP number'", s);
        cfg->label_value = x;
    }
    return 0;
}

static const char *const kind_names[] = {"categorical", "numeric", "multi", "sequence", NULL};

/* The keys of a field and the types they apply to (bit 1 << enum
 * sc_field_kind). A key given to a type it does not apply to is an error,
 * never silently ignored. Finer rules (bucketing, flags, hash_buckets) follow
 * in key_misplaced. */
#define K_C (1 << SC_FIELD_CATEGORICAL)
#define K_N (1 << SC_FIELD_NUMERIC)
#define K_M (1 << SC_FIELD_MULTI)
#define K_S (1 << SC_FIELD_SEQUENCE)
static const struct field_key {
    const char *key;
    int kinds;
    const char *applies; /* for the message */
} field_keys[] = {
    {"name", K_C | K_N | K_M | K_S, ""},
    {"names", K_C | K_N | K_M | K_S, ""},
    {"type", K_C | K_N | K_M | K_S, ""},
    {"column", K_C | K_N | K_M, "categorical, numeric and multi fields (a sequence field takes 'of' and 'by')"},
    {"pattern", K_C | K_N | K_M, "categorical, numeric and multi fields"},
    {"min_count", K_C | K_N | K_M, "fields with a vocabulary: categorical, multi, numeric with 'bucketize: log2'"},
    {"hash_buckets", K_C | K_M, "categorical and multi fields"},
    {"normalize", K_N, "numeric fields"},
    {"fill", K_N, "numeric fields"},
    {"buckets", K_N, "numeric fields"},
    {"quantiles", K_N, "numeric fields"},
    {"bucketize", K_N, "numeric fields"},
    {"separator", K_M | K_S, "multi and sequence fields"},
    {"max_len", K_M | K_S, "multi and sequence fields"},
    {"pooling", K_M | K_S, "multi and sequence fields"},
    {"flags", K_M, "multi fields"},
    {"of", K_S, "sequence fields"},
    {"by", K_S, "sequence fields"},
    {"share_embedding", K_S, "sequence fields"},
    {NULL, 0, NULL},
};
#define FIELD_KEY_MAX 32 /* > the entries above */

static int field_key_index(const char *k) {
    for (int i = 0; field_keys[i].key; i++)
        if (!strcmp(field_keys[i].key, k)) return i;
    return -1;
}

/* NULL when the given keys suit field f of this kind, else the message. */
static const char *key_misplaced(const sc_field_cfg *f, int kind, const int *given, char *msg, size_t cap) {
    for (int i = 0; field_keys[i].key; i++)
        if (given[i] && !(field_keys[i].kinds & (1 << kind))) {
            snprintf(msg, cap, "field '%s': '%s' applies to %s, not to a %s field", f->name, field_keys[i].key,
                     field_keys[i].applies, kind_names[kind]);
            return msg;
        }
    int bucketed = f->transform == SC_TR_BUCKET, log2 = f->transform == SC_TR_LOG2;
    const char *why = NULL;
    if (given[field_key_index("min_count")] && kind == SC_FIELD_NUMERIC && !log2)
        why = "'min_count' applies to a numeric field only with 'bucketize: log2' (the others have no vocabulary)";
    else if (given[field_key_index("min_count")] && f->hash_buckets)
        why = "'min_count' and 'hash_buckets' exclude each other (hashed fields have no vocabulary)";
    else if (given[field_key_index("fill")] && (bucketed || log2))
        why = "'fill' applies to plain numeric fields (bucketed: a missing cell is OOV; log2: the category \"\")";
    else if (f->n_flags && given[field_key_index("column")])
        why = "give 'column' or 'flags', not both";
    else if (f->n_flags && given[field_key_index("separator")])
        why = "'separator' splits a cell; a field from 'flags' has none";
    else if (f->n_flags && given[field_key_index("pattern")])
        why = "'pattern' applies to a cell; a field from 'flags' has none";
    if (!why) return NULL;
    snprintf(msg, cap, "field '%s': %s", f->name, why);
    return msg;
}

static int parse_field(ctx *c, yaml_node_t *n, sc_field_cfg *f, const char *name) {
    f->line = line_of(n);
    f->min_count = 1;
    strcpy(f->sep, "|");
    f->pooling = SC_POOL_MEAN;
    int kind = -1, bucketize = 0;
    int given[FIELD_KEY_MAX] = {0};
    if (name) snprintf(f->name, sizeof f->name, "%s", name);
    FOR_PAIRS(c, n, k, v) {
        int ki = field_key_index(k);
        if (ki >= 0) given[ki] = 1; /* check_map let only known keys through */
        if (!strcmp(k, "name")) {
            if (get_str(c, v, k, f->name, sizeof f->name)) return -1;
        } else if (!strcmp(k, "names")) {
            /* handled by the caller */
        } else if (!strcmp(k, "column")) {
            if (get_str(c, v, k, f->column, sizeof f->column)) return -1;
        } else if (!strcmp(k, "type")) {
            if (get_enum(c, v, k, kind_names, &kind)) return -1;
        } else if (!strcmp(k, "min_count")) {
            long long x;
            if (get_int(c, v, k, 1, INT32_MAX, &x)) return -1;
            f->min_count = (int)x;
        } else if (!strcmp(k, "hash_buckets")) {
            long long x;
            if (get_int(c, v, k, 1, INT32_MAX - 2, &x)) return -1;
            f->hash_buckets = x;
        } else if (!strcmp(k, "normalize")) {
            static const char *const norms[] = {"none", "standard", "minmax", "log", NULL};
            if (get_enum(c, v, k, norms, &f->normalize)) return -1;
        } else if (!strcmp(k, "fill")) {
            if (get_double(c, v, k, &f->fill)) return -1;
        } else if (!strcmp(k, "buckets")) {
            if (v->type != YAML_SEQUENCE_NODE) return FAILN(c, v, "'buckets' must be a list of numbers");
            int cnt = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt < 1 || cnt > 100000) return FAILN(c, v, "'buckets' needs 1 to 100000 boundaries");
            sc_free(f->boundaries);
            f->boundaries = sc_calloc((size_t)cnt, sizeof(double));
            if (!f->boundaries) return sc_fail(c->err, SC_ENOMEM, "out of memory");
            for (int i = 0; i < cnt; i++) {
                if (get_double(c, node(c, v->data.sequence.items.start[i]), k, &f->boundaries[i])) return -1;
                if (i && f->boundaries[i] <= f->boundaries[i - 1]) return FAILN(c, v, "'buckets' must be strictly ascending");
            }
            f->n_boundaries = cnt;
            bucketize = 1;
        } else if (!strcmp(k, "quantiles")) {
            long long x;
            if (get_int(c, v, k, 2, 10000, &x)) return -1;
            f->quantiles = (int)x;
            bucketize = 1;
        } else if (!strcmp(k, "bucketize")) {
            static const char *const bz[] = {"log2", NULL};
            int b;
            if (get_enum(c, v, k, bz, &b)) return -1;
            bucketize = 2;
        } else if (!strcmp(k, "separator")) {
            if (get_str(c, v, k, f->sep, sizeof f->sep)) return -1;
            if (!f->sep[0]) return FAILN(c, v, "'separator' must not be empty");
        } else if (!strcmp(k, "max_len")) {
            long long x;
            if (get_int(c, v, k, 1, SC_MAX_WIDTH, &x)) return -1;
            f->max_len = (int)x;
        } else if (!strcmp(k, "pooling")) {
            static const char *const pl[] = {"mean", "sum", NULL};
            if (get_enum(c, v, k, pl, &f->pooling)) return -1;
        } else if (!strcmp(k, "flags")) {
            if (get_strlist(c, v, k, &f->flags, &f->n_flags)) return -1;
            if (f->n_flags < 1 || f->n_flags > SC_MAX_FLAGS) return FAILN(c, v, "'flags' needs 1 to %d columns", SC_MAX_FLAGS);
        } else if (!strcmp(k, "pattern")) {
            if (get_strdup(c, v, k, &f->pattern)) return -1;
        } else if (!strcmp(k, "of")) {
            if (get_str(c, v, k, f->of, sizeof f->of)) return -1;
        } else if (!strcmp(k, "by")) {
            if (get_str(c, v, k, f->by, sizeof f->by)) return -1;
        } else if (!strcmp(k, "share_embedding")) {
            const char *s = scalar(v);
            if (s && strcmp(s, "true") && strcmp(s, "false") && strcmp(s, "yes") && strcmp(s, "no")) {
                /* a field name: must be the same as `of` */
                if (strlen(s) >= sizeof f->of) return FAILN(c, v, "'share_embedding' is too long");
                if (f->of[0] && strcmp(f->of, s)) return FAILN(c, v, "'share_embedding' must name the field in 'of'");
                strcpy(f->of, s);
                f->share = 1;
            } else if (get_bool(c, v, k, &f->share)) return -1;
        }
    }
    if (!f->name[0]) return FAILN(c, n, "a field needs 'name'");
    if (kind < 0) return FAILN(c, n, "field '%s' needs 'type' (categorical, numeric, multi, sequence)", f->name);
    if (!f->column[0]) snprintf(f->column, sizeof f->column, "%s", f->name);
    switch (kind) {
    case SC_FIELD_CATEGORICAL: f->transform = SC_TR_CATEGORICAL; break;
    case SC_FIELD_NUMERIC:
        f->transform = bucketize == 1 ? SC_TR_BUCKET : bucketize == 2 ? SC_TR_LOG2 : SC_TR_NUMERIC;
        if (bucketize && f->normalize) return FAILN(c, n, "field '%s': 'normalize' and bucketing exclude each other", f->name);
        if (f->n_boundaries && f->quantiles) return FAILN(c, n, "field '%s': give 'buckets' or 'quantiles', not both", f->name);
        break;
    case SC_FIELD_MULTI:
        f->transform = SC_TR_MULTI;
        if (!f->max_len) return FAILN(c, n, "multi field '%s' needs 'max_len'", f->name);
        break;
    case SC_FIELD_SEQUENCE:
        f->transform = SC_TR_SEQUENCE;
        if (!f->max_len) return FAILN(c, n, "sequence field '%s' needs 'max_len'", f->name);
        if (!f->of[0]) return FAILN(c, n, "sequence field '%s' needs 'of' (the field whose values it collects)", f->name);
        if (!f->by[0]) return FAILN(c, n, "sequence field '%s' needs 'by' (the field or column naming the user)", f->name);
        break;
    }
    char msg[300];
    if (key_misplaced(f, kind, given, msg, sizeof msg)) return FAILN(c, n, "%s", msg);
    return 0;
}

static int parse_fields(ctx *c, yaml_node_t *n) {
    sc_dcfg *cfg = c->cfg;
    if (n->type != YAML_SEQUENCE_NODE) return FAILN(c, n, "'fields' must be a list");
    int total = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *fn = node(c, *it);
        const char *keys[FIELD_KEY_MAX + 1];
        int nk = 0;
        while (field_keys[nk].key) keys[nk] = field_keys[nk].key, nk++;
        keys[nk] = NULL;
        if (check_map(c, fn, "a field", keys)) return -1;
        int cnt = 1;
        FOR_PAIRS(c, fn, k, v) {
            if (!strcmp(k, "names")) {
                if (v->type != YAML_SEQUENCE_NODE) return FAILN(c, v, "'names' must be a list");
                cnt = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
                if (cnt < 1) return FAILN(c, v, "'names' is empty");
            }
        }
        total += cnt;
        if (total > SC_MAX_FIELDS) return FAILN(c, fn, "more than %d fields", SC_MAX_FIELDS);
    }
    cfg->fields = sc_calloc((size_t)total + 1, sizeof *cfg->fields);
    if (!cfg->fields) return sc_fail(c->err, SC_ENOMEM, "out of memory");
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *fn = node(c, *it), *names = NULL;
        FOR_PAIRS(c, fn, k, v) if (!strcmp(k, "names")) names = v;
        if (names) {
            for (yaml_node_item_t *ni = names->data.sequence.items.start; ni < names->data.sequence.items.top; ni++) {
                yaml_node_t *nn = node(c, *ni);
                char nm[SC_NAME_MAX];
                if (get_str(c, nn, "names", nm, sizeof nm)) return -1;
                sc_field_cfg *f = &cfg->fields[cfg->n_fields++];
                int has_name = 0, has_col = 0;
                FOR_PAIRS(c, fn, k, v) has_name |= !strcmp(k, "name"), has_col |= !strcmp(k, "column"), (void)v;
                if (has_name || has_col) return FAILN(c, fn, "'names' excludes 'name' and 'column'");
                if (parse_field(c, fn, f, nm)) return -1;
            }
        } else {
            if (parse_field(c, fn, &cfg->fields[cfg->n_fields++], NULL)) return -1;
        }
    }
    if (!cfg->n_fields) return FAILN(c, n, "'fields' is empty");
    for (int i = 0; i < cfg->n_fields; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(cfg->fields[i].name, cfg->fields[j].name))
                return sc_fail(c->err, SC_EINVAL, "%s:%d: field '%s' defined twice (first at line %d)", c->name,
                               cfg->fields[i].line, cfg->fields[i].name, cfg->fields[j].line);
    return 0;
}

static int parse_texts(ctx *c, yaml_node_t *n) {
    sc_dcfg *cfg = c->cfg;
    if (n->type != YAML_SEQUENCE_NODE) return FAILN(c, n, "'text' must be a list");
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > SC_MAX_FIELDS) return FAILN(c, n, "too many text columns");
    cfg->texts = sc_calloc((size_t)cnt + 1, sizeof *cfg->texts);
    if (!cfg->texts) return sc_fail(c->err, SC_ENOMEM, "out of memory");
    for (int i = 0; i < cnt; i++) {
        yaml_node_t *tn = node(c, n->data.sequence.items.start[i]);
        static const char *const keys[] = {"name", "column", "flags", "separator", "joiner", "pattern", NULL};
        if (check_map(c, tn, "a text column", keys)) return -1;
        sc_text_cfg *t = &cfg->texts[cfg->n_texts++];
        t->line = line_of(tn);
        strcpy(t->joiner, ", ");
        int has_column = 0, has_joiner = 0;
        FOR_PAIRS(c, tn, k, v) {
            if (!strcmp(k, "name")) {
                if (get_str(c, v, k, t->name, sizeof t->name)) return -1;
            } else if (!strcmp(k, "column")) {
                if (get_str(c, v, k, t->column, sizeof t->column)) return -1;
                has_column = 1;
            } else if (!strcmp(k, "flags")) {
                if (get_strlist(c, v, k, &t->flags, &t->n_flags)) return -1;
                if (t->n_flags < 1 || t->n_flags > SC_MAX_FLAGS)
                    return FAILN(c, v, "'flags' needs 1 to %d columns", SC_MAX_FLAGS);
            } else if (!strcmp(k, "separator")) {
                if (get_str(c, v, k, t->sep, sizeof t->sep)) return -1;
                if (!t->sep[0]) return FAILN(c, v, "'separator' must not be empty");
            } else if (!strcmp(k, "joiner")) {
                if (get_str(c, v, k, t->joiner, sizeof t->joiner)) return -1;
                has_joiner = 1;
            } else if (!strcmp(k, "pattern")) {
                if (get_strdup(c, v, k, &t->pattern)) return -1;
            }
        }
        if (!t->name[0]) return FAILN(c, tn, "a text column needs 'name'");
        const char *nm = t->name;
        if (has_column && t->n_flags) return FAILN(c, tn, "text column '%s': give 'column' or 'flags', not both", nm);
        if (t->n_flags && t->sep[0])
            return FAILN(c, tn, "text column '%s': 'separator' splits a cell; text from 'flags' has none", nm);
        if (t->n_flags && t->pattern)
            return FAILN(c, tn, "text column '%s': 'pattern' applies to a cell; text from 'flags' has none", nm);
        if (has_joiner && !t->n_flags && !t->sep[0])
            return FAILN(c, tn, "text column '%s': 'joiner' joins the values of 'flags' or of a cell split at "
                                "'separator'; give one of them", nm);
        if (!t->column[0] && !t->n_flags) snprintf(t->column, sizeof t->column, "%s", t->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(cfg->texts[j].name, t->name)) return FAILN(c, tn, "text column '%s' defined twice", t->name);
    }
    return 0;
}

static int parse_split(ctx *c, yaml_node_t *n) {
    sc_dcfg *cfg = c->cfg;
    static const char *const keys[] = {"method", "column", "fractions", "seed", "files", NULL};
    if (check_map(c, n, "'split'", keys)) return -1;
    int has_method = 0, has_fr = 0;
    FOR_PAIRS(c, n, k, v) {
        if (!strcmp(k, "method")) {
            static const char *const m[] = {"time", "random", "sequential", "files", NULL};
            if (get_enum(c, v, k, m, &cfg->split)) return -1;
            has_method = 1;
        } else if (!strcmp(k, "column")) {
            if (get_str(c, v, k, cfg->split_column, sizeof cfg->split_column)) return -1;
            cfg->split_line = line_of(v);
        } else if (!strcmp(k, "seed")) {
            long long x;
            if (get_int(c, v, k, 0, INT64_MAX, &x)) return -1;
            cfg->seed = (uint64_t)x;
        } else if (!strcmp(k, "fractions")) {
            if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 3)
                return FAILN(c, v, "'fractions' must be a list of three numbers (train, valid, test)");
            double sum = 0;
            for (int i = 0; i < 3; i++) {
                if (get_double(c, node(c, v->data.sequence.items.start[i]), k, &cfg->fractions[i])) return -1;
                if (cfg->fractions[i] < 0) return FAILN(c, v, "'fractions' must not be negative");
                sum += cfg->fractions[i];
            }
            if (fabs(sum - 1) > 1e-6) return FAILN(c, v, "'fractions' must sum to 1, they sum to %g", sum);
            if (cfg->fractions[0] <= 0) return FAILN(c, v, "the train fraction must be positive");
            has_fr = 1;
        } else if (!strcmp(k, "files")) {
            static const char *const fk[] = {"train", "valid", "test", NULL};
            if (check_map(c, v, "'split.files'", fk)) return -1;
            FOR_PAIRS(c, v, k2, v2) {
                int s = !strcmp(k2, "train") ? 0 : !strcmp(k2, "valid") ? 1 : 2;
                char *raw = NULL;
                if (get_strdup(c, v2, k2, &raw)) return -1;
                char where[300];
                snprintf(where, sizeof where, "%s:%d", c->name, line_of(v2));
                cfg->split_files[s] = sc_expand_path(raw, c->base_dir, where, c->err);
                sc_free(raw);
                if (!cfg->split_files[s]) return -1;
            }
        }
    }
    if (!has_method) return FAILN(c, n, "'split' needs 'method' (time, random, sequential, files)");
    if (cfg->split == SC_SPLIT_TIME && !cfg->split_column[0]) return FAILN(c, n, "split by time needs 'column'");
    if (cfg->split == SC_SPLIT_FILES && !cfg->split_files[0])
        return FAILN(c, n, "split 'files' needs 'files: {train: ..., valid: ..., test: ...}'");
    if (cfg->split != SC_SPLIT_FILES && cfg->split_files[0]) return FAILN(c, n, "'files' belongs to method 'files'");
    if (!has_fr) cfg->fractions[0] = 0.8, cfg->fractions[1] = 0.1, cfg->fractions[2] = 0.1;
    return 0;
}

static int parse_extract(ctx *c, yaml_node_t *n) {
    sc_extract_cfg *x = &c->cfg->extract;
    static const char *const keys[] = {"system", "history", "history_column", "prompts", NULL};
    if (check_map(c, n, "'extract'", keys)) return -1;
    x->line = line_of(n);
    x->history = 10;
    strcpy(x->history_column, "title");
    int has_prompts = 0;
    FOR_PAIRS(c, n, k, v) {
        if (!strcmp(k, "system")) {
            if (get_strdup(c, v, k, &x->system)) return -1;
        } else if (!strcmp(k, "history")) {
            long long h;
            if (get_int(c, v, k, 0, 1000, &h)) return -1;
            x->history = (int)h;
        } else if (!strcmp(k, "history_column")) {
            if (get_str(c, v, k, x->history_column, sizeof x->history_column)) return -1;
        } else if (!strcmp(k, "prompts")) {
            if (v->type != YAML_SEQUENCE_NODE) return FAILN(c, v, "'extract.prompts' must be a list");
            int cnt = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt < 1 || cnt > 64) return FAILN(c, v, "'extract.prompts' must have 1 to 64 entries");
            x->prompts = sc_calloc((size_t)cnt, sizeof *x->prompts);
            if (!x->prompts) return sc_fail(c->err, SC_ENOMEM, "out of memory");
            for (int i = 0; i < cnt; i++) {
                yaml_node_t *pn = node(c, v->data.sequence.items.start[i]);
                static const char *const pk[] = {"entity", "template", "fallback", "prefix", "fields", "min_fields", "ask", NULL};
                if (check_map(c, pn, "an extract prompt", pk)) return -1;
                sc_extract_prompt_cfg *p = &x->prompts[x->n_prompts++];
                p->line = line_of(pn);
                p->min_fields = -1;
                FOR_PAIRS(c, pn, k2, v2) {
                    if (!strcmp(k2, "entity")) {
                        if (get_str(c, v2, k2, p->entity, sizeof p->entity)) return -1;
                    } else if (!strcmp(k2, "template")) {
                        if (get_strdup(c, v2, k2, &p->template)) return -1;
                    } else if (!strcmp(k2, "fallback")) {
                        if (get_strdup(c, v2, k2, &p->fallback)) return -1;
                    } else if (!strcmp(k2, "prefix")) {
                        if (get_strdup(c, v2, k2, &p->prefix)) return -1;
                    } else if (!strcmp(k2, "fields")) {
                        if (get_strlist(c, v2, k2, &p->fields, &p->n_fields)) return -1;
                    } else if (!strcmp(k2, "ask")) {
                        static const char *const asks[] = {"fields", "once", NULL};
                        if (get_enum(c, v2, k2, asks, &p->ask_once)) return -1;
                    } else if (!strcmp(k2, "min_fields")) {
                        long long mf;
                        if (get_int(c, v2, k2, 1, 1000, &mf)) return -1;
                        p->min_fields = (int)mf;
                    }
                }
                if (!p->entity[0] || !p->template || !p->n_fields)
                    return FAILN(c, pn, "an extract prompt needs 'entity', 'template' and 'fields'");
                for (int f = 0; f < p->n_fields; f++)
                    if (!p->fields[f][0] || strchr(p->fields[f], ':') || strchr(p->fields[f], '\n'))
                        return FAILN(c, pn, "extract prompt '%s': field %d must be a non-empty name without ':' or newline",
                                     p->entity, f + 1);
                if (p->min_fields < 0) p->min_fields = (p->n_fields + 1) / 2;
                if (p->min_fields > p->n_fields)
                    return FAILN(c, pn, "extract prompt '%s': min_fields %d exceeds its %d fields", p->entity,
                                 p->min_fields, p->n_fields);
                for (int j = 0; j < i; j++)
                    if (!strcmp(x->prompts[j].entity, p->entity))
                        return FAILN(c, pn, "extract prompt for '%s' defined twice", p->entity);
            }
            has_prompts = 1;
        }
    }
    if (!has_prompts) return FAILN(c, n, "'extract' needs 'prompts'");
    return 0;
}

static int parse_root(ctx *c) {
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    if (!root) return sc_fail(c->err, SC_EINVAL, "%s: the config is empty", c->name);
    static const char *const keys[] = {"name", "input", "label", "joins", "fields", "text", "split", "group", "bad_rows", "extract", NULL};
    if (check_map(c, root, "the config", keys)) return -1;
    sc_dcfg *cfg = c->cfg;
    int has[8] = {0};
    FOR_PAIRS(c, root, k, v) {
        if (!strcmp(k, "name")) {
            if (get_str(c, v, k, cfg->name, sizeof cfg->name)) return -1;
        } else if (!strcmp(k, "input")) {
            if (parse_table(c, v, &cfg->input, 0)) return -1;
            has[0] = 1;
        } else if (!strcmp(k, "label")) {
            if (parse_label(c, v)) return -1;
            cfg->label_line = line_of(v);
            has[1] = 1;
        } else if (!strcmp(k, "joins")) {
            if (v->type != YAML_SEQUENCE_NODE) return FAILN(c, v, "'joins' must be a list");
            int cnt = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (cnt > SC_MAX_JOINS) return FAILN(c, v, "at most %d joins", SC_MAX_JOINS);
            cfg->joins = sc_calloc((size_t)cnt + 1, sizeof *cfg->joins);
            if (!cfg->joins) return sc_fail(c->err, SC_ENOMEM, "out of memory");
            for (int i = 0; i < cnt; i++) {
                cfg->n_joins = i + 1;
                yaml_node_t *jn = node(c, v->data.sequence.items.start[i]);
                if (parse_table(c, jn, &cfg->joins[i], 1)) return -1;
                if (!strcmp(cfg->joins[i].name, "input")) return FAILN(c, jn, "a join cannot be named 'input'");
                for (int j = 0; j < i; j++)
                    if (!strcmp(cfg->joins[j].name, cfg->joins[i].name))
                        return FAILN(c, jn, "join '%s' defined twice", cfg->joins[i].name);
            }
        } else if (!strcmp(k, "fields")) {
            if (parse_fields(c, v)) return -1;
            has[2] = 1;
        } else if (!strcmp(k, "text")) {
            if (parse_texts(c, v)) return -1;
        } else if (!strcmp(k, "split")) {
            if (parse_split(c, v)) return -1;
            has[3] = 1;
        } else if (!strcmp(k, "group")) {
            if (get_str(c, v, k, cfg->group, sizeof cfg->group)) return -1;
            cfg->group_line = line_of(v);
        } else if (!strcmp(k, "bad_rows")) {
            static const char *const br[] = {"skip", "fail", NULL};
            if (get_enum(c, v, k, br, &cfg->bad_rows_fail)) return -1;
        } else if (!strcmp(k, "extract")) {
            if (parse_extract(c, v)) return -1;
        }
    }
    if (!has[0]) return FAILN(c, root, "the config needs 'input'");
    if (!has[1]) return FAILN(c, root, "the config needs 'label'");
    if (!has[2]) return FAILN(c, root, "the config needs 'fields'");
    if (!has[3]) return FAILN(c, root, "the config needs 'split'");
    if (cfg->group[0]) {
        int found = 0;
        for (int i = 0; i < cfg->n_fields; i++) found |= !strcmp(cfg->fields[i].name, cfg->group);
        if (!found) return FAILN(c, root, "'group: %s' names no field", cfg->group);
    }
    for (int i = 0; i < cfg->n_fields; i++) {
        sc_field_cfg *f = &cfg->fields[i];
        if (f->transform != SC_TR_SEQUENCE) continue;
        int of = -1;
        for (int j = 0; j < cfg->n_fields; j++)
            if (!strcmp(cfg->fields[j].name, f->of)) of = j;
        if (of < 0) return sc_fail(c->err, SC_EINVAL, "%s:%d: sequence field '%s': 'of: %s' names no field", c->name, f->line, f->name, f->of);
        int t = cfg->fields[of].transform;
        if (t != SC_TR_CATEGORICAL || cfg->fields[of].hash_buckets)
            return sc_fail(c->err, SC_EINVAL, "%s:%d: sequence field '%s': '%s' must be a categorical field with a vocabulary",
                           c->name, f->line, f->name, f->of);
    }
    return 0;
}

void sc_dcfg_free(sc_dcfg *c) {
    if (!c) return;
    sc_table_cfg *tabs[SC_MAX_JOINS + 1];
    int nt = 0;
    tabs[nt++] = &c->input;
    for (int i = 0; i < c->n_joins && nt < SC_MAX_JOINS + 1; i++) tabs[nt++] = &c->joins[i];
    for (int t = 0; t < nt; t++) {
        for (int i = 0; i < tabs[t]->n_paths; i++) sc_free(tabs[t]->paths[i]);
        sc_free(tabs[t]->paths);
        for (int i = 0; i < tabs[t]->n_columns; i++) sc_free(tabs[t]->columns[i]);
        sc_free(tabs[t]->columns);
    }
    sc_free(c->joins);
    if (c->fields)
        for (int i = 0; i < c->n_fields + 1; i++) {
            sc_free(c->fields[i].boundaries);
            for (int j = 0; j < c->fields[i].n_flags; j++) sc_free(c->fields[i].flags[j]);
            sc_free(c->fields[i].flags);
            sc_free(c->fields[i].pattern);
        }
    sc_free(c->fields);
    if (c->texts)
        for (int i = 0; i < c->n_texts + 1; i++) {
            for (int j = 0; j < c->texts[i].n_flags; j++) sc_free(c->texts[i].flags[j]);
            sc_free(c->texts[i].flags);
            sc_free(c->texts[i].pattern);
        }
    sc_free(c->texts);
    for (int i = 0; i < 3; i++) sc_free(c->split_files[i]);
    for (int i = 0; i < c->extract.n_prompts; i++) {
        sc_extract_prompt_cfg *p = &c->extract.prompts[i];
        sc_free(p->template);
        sc_free(p->fallback);
        sc_free(p->prefix);
        for (int j = 0; j < p->n_fields; j++) sc_free(p->fields[j]);
        sc_free(p->fields);
    }
    sc_free(c->extract.prompts);
    sc_free(c->extract.system);
    sc_free(c->text);
    sc_free(c->base_dir);
    sc_free(c);
}

/* Nesting deeper than this is refused before the document is built: a real
 * config nests 5 levels, and libyaml's scanner takes time quadratic in the
 * depth of flow collections (100,000 '[' took 22 s before its error). */
#define YAML_MAX_DEPTH 64

static int yaml_syntax_error(sc_error *err, const char *name, const yaml_parser_t *parser) {
    return sc_fail(err, SC_EINVAL, "%s:%d: YAML syntax error: %s%s%s", name, (int)parser->problem_mark.line + 1,
                   parser->problem ? parser->problem : "unknown", parser->context ? " " : "",
                   parser->context ? parser->context : "");
}

/* One pass over the events (no document built) that stops at the first
 * collection nested deeper than YAML_MAX_DEPTH: linear in the text up to
 * that point. */
static int check_depth(const char *text, size_t len, const char *name, sc_error *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return sc_fail(err, SC_ENOMEM, "out of memory (YAML parser)");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0, rc = SC_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_syntax_error(err, name, &parser);
            break;
        }
        yaml_event_type_t type = ev.type;
        int line = (int)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            if (++depth > YAML_MAX_DEPTH) {
                rc = sc_fail(err, SC_EINVAL, "%s:%d: lists and mappings nested deeper than %d levels", name, line,
                             YAML_MAX_DEPTH);
                break;
            }
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (type == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

int sc_dcfg_parse(sc_dcfg **out, const char *text, size_t len, const char *name, const char *base_dir, sc_error *err) {
    *out = NULL;
    ctx c = {.name = name ? name : "config", .base_dir = base_dir, .err = err};
    sc_dcfg *cfg = sc_calloc(1, sizeof *cfg);
    if (!cfg) return sc_fail(err, SC_ENOMEM, "out of memory");
    c.cfg = cfg;
    snprintf(cfg->source, sizeof cfg->source, "%s", c.name);
    cfg->text = sc_malloc(len + 1);
    cfg->base_dir = sc_strdup(base_dir ? base_dir : "");
    if (!cfg->text || !cfg->base_dir) {
        sc_dcfg_free(cfg);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    memcpy(cfg->text, text, len);
    cfg->text[len] = 0;
    int drc = check_depth(text, len, c.name, err);
    if (drc) {
        sc_dcfg_free(cfg);
        return drc;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        sc_dcfg_free(cfg);
        return sc_fail(err, SC_ENOMEM, "out of memory (YAML parser)");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &c.doc)) {
        int rc = yaml_syntax_error(err, c.name, &parser);
        yaml_parser_delete(&parser);
        sc_dcfg_free(cfg);
        return rc;
    }
    yaml_parser_delete(&parser);
    int rc = parse_root(&c);
    yaml_document_delete(&c.doc);
    if (rc) {
        if (err && err->code == SC_OK) err->code = SC_EINVAL;
        sc_dcfg_free(cfg);
        return err ? err->code : SC_EINVAL;
    }
    *out = cfg;
    return SC_OK;
}

int sc_dcfg_load(sc_dcfg **out, const char *path, sc_error *err) {
    char *text;
    size_t len;
    *out = NULL;
    int rc = sc_read_file(path, &text, &len, err);
    if (rc) return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    rc = sc_dcfg_parse(out, text, len, path, dir, err);
    sc_free(text);
    return rc;
}
