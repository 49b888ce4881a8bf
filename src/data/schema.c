/* sc_schema: encoding of rows, reverse lookups, (de)serialisation. */
#include "data/schema_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "data/datadir.h"

sc_schema *sc_schema_new(void) {
    sc_schema *s = sc_calloc(1, sizeof *s);
    if (s) {
        s->group = -1;
        s->label_idx = -1;
    }
    return s;
}

static void free_flags(char (*flags)[SC_NAME_MAX], sc_src *src) {
    sc_free(flags);
    sc_free(src);
}

void sc_schema_free(sc_schema *s) {
    if (!s) return;
    sc_free(s->config_text);
    sc_free(s->main_cols);
    sc_free((void *)s->main_col_ptrs);
    for (int j = 0; j < s->n_joins; j++) {
        sc_jtable *t = &s->joins[j];
        sc_free(t->cols);
        sc_strmap_free(&t->keys);
        sc_strmap_free(&t->strings);
        sc_free(t->cell);
    }
    sc_free(s->joins);
    for (int f = 0; f < s->n_fields; f++) {
        sc_fenc *e = &s->fenc[f];
        sc_free(e->bounds);
        free_flags(e->flags, e->flag_src);
        sc_free(e->pattern);
        if (e->re) pcre2_code_free(e->re);
        sc_strmap_free(&e->vocab);
        if (e->bucket_names)
            for (int k = 0; k <= e->n_bounds; k++) sc_free(e->bucket_names[k]);
        sc_free(e->bucket_names);
    }
    sc_free(s->fenc);
    sc_free(s->infos);
    for (int t = 0; t < s->n_text; t++) {
        sc_tenc *e = &s->tenc[t];
        free_flags(e->flags, e->flag_src);
        sc_free(e->pattern);
        if (e->re) pcre2_code_free(e->re);
        sc_strmap_free(&e->strings);
    }
    sc_free(s->tenc);
    sc_free(s);
}

/* ------------------------------------------------------------ accessors */

const sc_field_info *sc_schema_fields(const sc_schema *s, int *n) {
    if (n) *n = s->n_fields;
    return s->infos;
}

int sc_schema_field_index(const sc_schema *s, const char *name) {
    for (int f = 0; f < s->n_fields; f++)
        if (!strcmp(s->fenc[f].info.name, name)) return f;
    return -1;
}

int sc_schema_group_field(const sc_schema *s) { return s->group; }
const char *sc_schema_label_name(const sc_schema *s) { return s->label_col; }
const char *sc_schema_label_rule(const sc_schema *s) { return s->label_rule; }
const char *sc_schema_config_text(const sc_schema *s) { return s->config_text ? s->config_text : ""; }

const char *const *sc_schema_input_columns(const sc_schema *s, int *n) {
    if (n) *n = s->n_main;
    return s->main_col_ptrs;
}

int sc_schema_n_text(const sc_schema *s) { return s->n_text; }
const char *sc_schema_text_name(const sc_schema *s, int t) { return t >= 0 && t < s->n_text ? s->tenc[t].name : NULL; }
const char *sc_schema_text_entity(const sc_schema *s, int t) {
    if (t < 0 || t >= s->n_text) return NULL;
    const sc_tenc *e = &s->tenc[t];
    int table = e->n_flags ? e->flag_src[0].table : e->src.table;
    return table < 0 ? "input" : s->joins[table].name;
}
int sc_schema_text_index(const sc_schema *s, const char *name) {
    for (int t = 0; t < s->n_text; t++)
        if (!strcmp(s->tenc[t].name, name)) return t;
    return -1;
}
const char *sc_schema_text(const sc_schema *s, int t, int32_t idx) {
    if (t < 0 || t >= s->n_text || idx < 0 || (size_t)idx >= s->tenc[t].strings.n) return NULL;
    return s->tenc[t].strings.key[idx];
}
int64_t sc_schema_text_count(const sc_schema *s, int t) {
    return t >= 0 && t < s->n_text ? (int64_t)s->tenc[t].strings.n : 0;
}

const char *sc_schema_id_string(const sc_schema *s, int field, int64_t id) {
    if (field < 0 || field >= s->n_fields || id < 2) return NULL;
    const sc_fenc *e = &s->fenc[field];
    if (e->transform == SC_TR_SEQUENCE) e = &s->fenc[e->of];
    if (e->transform == SC_TR_BUCKET) return id - 2 <= e->n_bounds && e->bucket_names ? e->bucket_names[id - 2] : NULL;
    if (e->hash_buckets || e->transform == SC_TR_NUMERIC) return NULL;
    if ((uint64_t)(id - 2) >= e->vocab.n) return NULL;
    return e->vocab.key[id - 2];
}

/* ------------------------------------------------------------- encoding */

int sc_scratch_init(sc_encscratch *sc, sc_error *err) {
    memset(sc, 0, sizeof *sc);
    sc->md = pcre2_match_data_create(8, NULL);
    sc->text_cap = 4096;
    sc->text = sc_malloc(sc->text_cap);
    if (!sc->md || !sc->text) {
        sc_scratch_free(sc);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    return SC_OK;
}

void sc_scratch_free(sc_encscratch *sc) {
    if (sc->md) pcre2_match_data_free(sc->md);
    sc_free(sc->text);
    memset(sc, 0, sizeof *sc);
}

void sc_rowview_join(const sc_schema *s, sc_rowview *v) {
    for (int j = 0; j < s->n_joins; j++) {
        sc_cell k = v->main[s->joins[j].on_idx];
        v->jrow[j] = k.p ? sc_strmap_find(&s->joins[j].keys, k.p, k.len) : -1;
    }
}

sc_cell sc_rowview_cell(const sc_schema *s, const sc_rowview *v, sc_src src) {
    sc_cell none = {NULL, 0};
    if (src.table < 0) return v->main[src.col];
    int64_t r = v->jrow[src.table];
    if (r < 0) return none;
    const sc_jtable *t = &s->joins[src.table];
    uint32_t idx = t->cell[(size_t)r * (size_t)t->n_cols + (size_t)src.col];
    sc_cell c = {t->strings.key[idx], t->strings.len[idx]};
    return c;
}

int sc_apply_pattern(pcre2_code *re, sc_encscratch *sc, sc_cell in, sc_cell *out) {
    *out = in;
    if (!re) return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR)in.p, in.len, 0, 0, sc->md, NULL);
    if (rc < 0) return 1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
    int g = rc >= 2 && ov[2] != PCRE2_UNSET ? 1 : 0;
    out->p = in.p + ov[2 * g];
    out->len = (uint32_t)(ov[2 * g + 1] - ov[2 * g]);
    return 0;
}

static int is_one(sc_cell c) {
    while (c.len && (c.p[0] == ' ')) c.p++, c.len--;
    while (c.len && (c.p[c.len - 1] == ' ')) c.len--;
    return c.len == 1 && c.p[0] == '1';
}

int sc_field_number(const sc_schema *s, const sc_fenc *f, const sc_rowview *v, sc_encscratch *sc, double *out) {
    sc_cell c = sc_rowview_cell(s, v, f->src);
    if (!c.p) return 1;
    if (sc_apply_pattern(f->re, sc, c, &c)) return 1;
    int blank = 1;
    for (uint32_t i = 0; i < c.len; i++) blank &= c.p[i] == ' ';
    if (blank) return 1;
    return sc_parse_double(c.p, c.len, out) ? -1 : 0;
}

int sc_field_strings(const sc_schema *s, const sc_fenc *f, const sc_rowview *v, sc_encscratch *sc, sc_cell *vals,
                     int max) {
    if (f->transform == SC_TR_MULTI && f->n_flags) {
        int k = 0, any = 0;
        for (int i = 0; i < f->n_flags; i++) {
            sc_cell c = sc_rowview_cell(s, v, f->flag_src[i]);
            any |= c.p != NULL;
            if (c.p && is_one(c) && k < max) {
                vals[k].p = f->flags[i];
                vals[k].len = (uint32_t)strlen(f->flags[i]);
                k++;
            }
        }
        return any ? k : -2;
    }
    if (f->transform == SC_TR_LOG2) {
        double x;
        int rc = sc_field_number(s, f, v, sc, &x);
        if (rc < 0) return -1;
        if (rc == 1) {
            sc_cell c = sc_rowview_cell(s, v, f->src);
            if (!c.p) return -2;
            vals[0].p = "";
            vals[0].len = 0;
            return 1;
        }
        double y = x > 2 ? floor(log(x) * log(x)) : floor(x);
        if (y > 1e15) y = 1e15;
        if (y < -1e15) y = -1e15;
        int n = snprintf(sc->num, sizeof sc->num, "%lld", (long long)y);
        vals[0].p = sc->num;
        vals[0].len = (uint32_t)n;
        return 1;
    }
    sc_cell c = sc_rowview_cell(s, v, f->src);
    if (!c.p) return -2;
    if (sc_apply_pattern(f->re, sc, c, &c)) return -2;
    if (f->transform != SC_TR_MULTI) {
        vals[0] = c;
        return 1;
    }
    /* multi: split at the separator, skip empty pieces */
    int k = 0;
    size_t sl = strlen(f->sep);
    const char *p = c.p, *end = c.p + c.len;
    while (p <= end && k < max) {
        const char *q = p;
        while (q < end && !((size_t)(end - q) >= sl && memcmp(q, f->sep, sl) == 0)) q++;
        if (q > p) {
            vals[k].p = p;
            vals[k].len = (uint32_t)(q - p);
            k++;
        }
        p = q + sl;
    }
    return k;
}

static int32_t lookup(const sc_fenc *f, sc_cell v) {
    if (f->hash_buckets) return (int32_t)(2 + XXH64(v.p, v.len, 0) % (uint64_t)f->hash_buckets);
    int64_t i = sc_strmap_find(&f->vocab, v.p, v.len);
    return i < 0 ? 1 : (int32_t)(i + 2);
}

static int32_t bucket_of(const sc_fenc *f, double x) {
    int lo = 0, hi = f->n_bounds; /* first boundary > x */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (f->bounds[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return 2 + lo;
}

static float normalize(const sc_fenc *f, double x) {
    switch (f->normalize) {
    case SC_NORM_STANDARD: return (float)((x - f->p0) / (f->p1 > 0 ? f->p1 : 1));
    case SC_NORM_MINMAX: return (float)(f->p1 > f->p0 ? (x - f->p0) / (f->p1 - f->p0) : 0);
    case SC_NORM_LOG: return (float)log1p(x > 0 ? x : 0);
    default: return (float)x;
    }
}

void sc_encode_fields(const sc_schema *s, const sc_rowview *v, sc_encscratch *sc, sc_batch *b, int i) {
    sc_cell vals[256];
    for (int fi = 0; fi < s->n_fields; fi++) {
        const sc_fenc *f = &s->fenc[fi];
        switch (f->transform) {
        case SC_TR_CATEGORICAL:
        case SC_TR_LOG2: {
            int k = sc_field_strings(s, f, v, sc, vals, 1);
            b->ids[fi][i] = k == 1 ? lookup(f, vals[0]) : 1;
            break;
        }
        case SC_TR_BUCKET:
        case SC_TR_NUMERIC: {
            double x;
            int rc = sc_field_number(s, f, v, sc, &x);
            if (f->transform == SC_TR_BUCKET) b->ids[fi][i] = rc == 0 ? bucket_of(f, x) : 1;
            else b->values[fi][i] = normalize(f, rc == 0 ? x : f->fill);
            break;
        }
        case SC_TR_MULTI: {
            int W = f->info.width;
            int32_t *dst = b->ids[fi] + (size_t)i * W;
            int k = sc_field_strings(s, f, v, sc, vals, W < 256 ? W : 256);
            int j = 0;
            for (; j < k; j++) dst[j] = lookup(f, vals[j]);
            for (; j < W; j++) dst[j] = 0;
            break;
        }
        default: break;
        }
    }
}

void sc_encode_sequence_cell(const sc_schema *s, int fi, sc_cell c, sc_batch *b, int i) {
    const sc_fenc *f = &s->fenc[fi];
    const sc_fenc *of = &s->fenc[f->of];
    int W = f->info.width, k = 0;
    int32_t *dst = b->ids[fi] + (size_t)i * W;
    if (c.p) {
        size_t sl = strlen(f->sep);
        const char *p = c.p, *end = c.p + c.len;
        while (p <= end && k < W) {
            const char *q = p;
            while (q < end && !((size_t)(end - q) >= sl && memcmp(q, f->sep, sl) == 0)) q++;
            if (q > p) {
                sc_cell v = {p, (uint32_t)(q - p)};
                dst[k++] = lookup(of, v);
            }
            p = q + sl;
        }
    }
    for (; k < W; k++) dst[k] = 0;
}

int sc_text_value(const sc_schema *s, const sc_tenc *t, const sc_rowview *v, sc_encscratch *sc, sc_cell *out) {
    if (t->n_flags) {
        size_t w = 0, jl = strlen(t->joiner);
        int any = 0;
        for (int i = 0; i < t->n_flags; i++) {
            sc_cell c = sc_rowview_cell(s, v, t->flag_src[i]);
            any |= c.p != NULL;
            if (!c.p || !is_one(c)) continue;
            size_t nl = strlen(t->flags[i]);
            if (w + jl + nl + 1 > sc->text_cap) break; /* 4 KiB of flag names is plenty */
            if (w) memcpy(sc->text + w, t->joiner, jl), w += jl;
            memcpy(sc->text + w, t->flags[i], nl);
            w += nl;
        }
        if (!any) return 1;
        out->p = sc->text;
        out->len = (uint32_t)w;
        return 0;
    }
    sc_cell c = sc_rowview_cell(s, v, t->src);
    if (!c.p) return 1;
    if (sc_apply_pattern(t->re, sc, c, &c)) return 1;
    if (t->sep[0]) { /* "Crime|Drama" -> "Crime, Drama" */
        size_t need = sc_split_join_cap(c.len, t->sep, t->joiner);
        if (need > sc->text_cap) {
            char *nb = sc_realloc(sc->text, need);
            if (!nb) return -1;
            sc->text = nb;
            sc->text_cap = need;
        }
        c.len = (uint32_t)sc_split_join(c.p, c.len, t->sep, t->joiner, sc->text);
        c.p = sc->text;
    }
    *out = c;
    return 0;
}

int sc_label_value(const sc_schema *s, sc_cell c, float *y) {
    double x;
    if (!c.p || sc_parse_double(c.p, c.len, &x)) return -1;
    switch (s->label_op) {
    case SC_OP_GE: *y = x >= s->label_value; break;
    case SC_OP_GT: *y = x > s->label_value; break;
    case SC_OP_LE: *y = x <= s->label_value; break;
    case SC_OP_LT: *y = x < s->label_value; break;
    case SC_OP_EQ: *y = x == s->label_value; break;
    case SC_OP_NE: *y = x != s->label_value; break;
    default:
        if (x != 0 && x != 1) return -1;
        *y = (float)x;
    }
    return 0;
}

int sc_schema_encode(const sc_schema *s, int n_rows, int n_cols, const char *const *col_names,
                     const char *const *cells, sc_batch *out, sc_error *err) {
    if (n_rows < 0 || n_rows > out->cap || n_cols < 0 || out->n_fields != s->n_fields)
        return sc_fail(err, SC_EINVAL, "encode: %d rows into a batch of %d rows and %d fields (schema has %d)", n_rows,
                       out->cap, out->n_fields, s->n_fields);
    for (int f = 0; f < s->n_fields; f++)
        if ((s->infos[f].kind == SC_FIELD_NUMERIC ? (void *)out->values[f] : (void *)out->ids[f]) == NULL)
            return sc_fail(err, SC_EINVAL, "encode: the batch has no buffer for field '%s'", s->infos[f].name);
    int rc = SC_OK;
    int *map = sc_calloc((size_t)s->n_main + 1, sizeof *map);
    sc_cell *main = sc_calloc((size_t)s->n_main + 1, sizeof *main);
    int64_t *jrow = sc_calloc((size_t)s->n_joins + 1, sizeof *jrow);
    sc_encscratch sc;
    memset(&sc, 0, sizeof sc);
    if (!map || !main || !jrow || sc_scratch_init(&sc, err)) {
        rc = sc_fail(err, SC_ENOMEM, "encode: out of memory");
        goto done;
    }
    for (int m = 0; m < s->n_main; m++) {
        map[m] = -1;
        for (int c = 0; c < n_cols; c++)
            if (col_names[c] && !strcmp(col_names[c], s->main_cols[m])) map[m] = c;
    }
    sc_rowview v = {main, jrow};
    for (int r = 0; r < n_rows; r++) {
        for (int m = 0; m < s->n_main; m++) {
            const char *p = map[m] >= 0 ? cells[(size_t)r * (size_t)n_cols + (size_t)map[m]] : NULL;
            main[m].p = p;
            main[m].len = p ? (uint32_t)strlen(p) : 0;
        }
        sc_rowview_join(s, &v);
        sc_encode_fields(s, &v, &sc, out, r);
        for (int f = 0; f < s->n_fields; f++)
            if (s->fenc[f].transform == SC_TR_SEQUENCE) {
                sc_cell none = {NULL, 0};
                sc_encode_sequence_cell(s, f, s->fenc[f].seq_col >= 0 ? main[s->fenc[f].seq_col] : none, out, r);
            }
        float y = 0;
        if (s->label_idx < 0 || sc_label_value(s, main[s->label_idx], &y)) y = 0;
        out->label[r] = y;
        out->group[r] = s->group >= 0 && s->fenc[s->group].info.kind != SC_FIELD_NUMERIC ? out->ids[s->group][(size_t)r * s->fenc[s->group].info.width] : 0;
    }
    out->n = n_rows;
done:
    sc_scratch_free(&sc);
    sc_free(map);
    sc_free(main);
    sc_free(jrow);
    return rc;
}

/* ------------------------------------------------------ compile / finish */

static int compile_one(const char *pattern, pcre2_code **re, const char *what, sc_error *err) {
    if (!pattern) return SC_OK;
    int code;
    PCRE2_SIZE off;
    *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    if (!*re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return sc_fail(err, SC_EINVAL, "%s: bad pattern '%s' at offset %zu: %s", what, pattern, (size_t)off, (char *)msg);
    }
    return SC_OK;
}

int sc_schema_compile(sc_schema *s, sc_error *err) {
    char what[128];
    for (int f = 0; f < s->n_fields; f++) {
        snprintf(what, sizeof what, "field '%s'", s->fenc[f].info.name);
        if (compile_one(s->fenc[f].pattern, &s->fenc[f].re, what, err)) return err ? err->code : SC_EINVAL;
    }
    for (int t = 0; t < s->n_text; t++) {
        snprintf(what, sizeof what, "text column '%s'", s->tenc[t].name);
        if (compile_one(s->tenc[t].pattern, &s->tenc[t].re, what, err)) return err ? err->code : SC_EINVAL;
    }
    return SC_OK;
}

int sc_schema_finish(sc_schema *s, sc_error *err) {
    sc_free(s->infos);
    s->infos = sc_calloc((size_t)s->n_fields + 1, sizeof *s->infos);
    sc_free((void *)s->main_col_ptrs);
    s->main_col_ptrs = sc_calloc((size_t)s->n_main + 1, sizeof *s->main_col_ptrs);
    if (!s->infos || !s->main_col_ptrs) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int f = 0; f < s->n_fields; f++) s->infos[f] = s->fenc[f].info;
    for (int m = 0; m < s->n_main; m++) s->main_col_ptrs[m] = s->main_cols[m];
    for (int f = 0; f < s->n_fields; f++) {
        sc_fenc *e = &s->fenc[f];
        if (e->transform != SC_TR_BUCKET || e->bucket_names) continue;
        e->bucket_names = sc_calloc((size_t)e->n_bounds + 1, sizeof *e->bucket_names);
        if (!e->bucket_names) return sc_fail(err, SC_ENOMEM, "out of memory");
        for (int k = 0; k <= e->n_bounds; k++) {
            char buf[96];
            if (k == 0) snprintf(buf, sizeof buf, "< %g", e->bounds[0]);
            else if (k == e->n_bounds) snprintf(buf, sizeof buf, ">= %g", e->bounds[k - 1]);
            else snprintf(buf, sizeof buf, "[%g, %g)", e->bounds[k - 1], e->bounds[k]);
            e->bucket_names[k] = sc_strdup(buf);
            if (!e->bucket_names[k]) return sc_fail(err, SC_ENOMEM, "out of memory");
        }
    }
    return SC_OK;
}

/* --------------------------------------------------------- serialisation */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf;

static void w_bytes(wbuf *w, const void *src, size_t n) {
    if (w->oom) return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + n) cap *= 2;
        uint8_t *np = sc_realloc(w->p, cap);
        if (!np) {
            w->oom = 1;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    if (n) memcpy(w->p + w->n, src, n);
    w->n += n;
}
static void w_u32(wbuf *w, uint32_t v) { w_bytes(w, &v, 4); }
static void w_i32(wbuf *w, int32_t v) { w_bytes(w, &v, 4); }
static void w_i64(wbuf *w, int64_t v) { w_bytes(w, &v, 8); }
static void w_f64(wbuf *w, double v) { w_bytes(w, &v, 8); }
static void w_strn(wbuf *w, const char *s, size_t n) {
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}
static void w_str(wbuf *w, const char *s) { w_strn(w, s ? s : "", s ? strlen(s) : 0); }
static void w_optstr(wbuf *w, const char *s) {
    w_u32(w, s ? 1 : 0);
    if (s) w_str(w, s);
}
static void w_map(wbuf *w, const sc_strmap *m) {
    w_u32(w, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) w_strn(w, m->key[i], m->len[i]);
}
static void w_src(wbuf *w, sc_src s) {
    w_i32(w, s.table);
    w_i32(w, s.col);
}

int sc_schema_serialize(const sc_schema *s, uint8_t **buf, size_t *len, sc_error *err) {
    wbuf w = {0};
    w_bytes(&w, SC_SCHEMA_MAGIC, 8);
    w_u32(&w, SC_SCHEMA_VERSION);
    w_str(&w, s->config_text);
    w_str(&w, s->label_col);
    w_i32(&w, s->label_op);
    w_f64(&w, s->label_value);
    w_str(&w, s->label_rule);
    w_i32(&w, s->label_idx);
    w_i32(&w, s->group);
    w_u32(&w, (uint32_t)s->n_main);
    for (int m = 0; m < s->n_main; m++) w_str(&w, s->main_cols[m]);
    w_u32(&w, (uint32_t)s->n_joins);
    for (int j = 0; j < s->n_joins; j++) {
        const sc_jtable *t = &s->joins[j];
        w_str(&w, t->name);
        w_str(&w, t->on);
        w_i32(&w, t->on_idx);
        w_u32(&w, (uint32_t)t->n_cols);
        for (int c = 0; c < t->n_cols; c++) w_str(&w, t->cols[c]);
        w_map(&w, &t->keys);
        w_map(&w, &t->strings);
        w_bytes(&w, t->cell, t->keys.n * (size_t)t->n_cols * 4);
    }
    w_u32(&w, (uint32_t)s->n_fields);
    for (int f = 0; f < s->n_fields; f++) {
        const sc_fenc *e = &s->fenc[f];
        w_str(&w, e->info.name);
        w_i32(&w, e->info.kind);
        w_i32(&w, e->info.width);
        w_i64(&w, e->info.vocab_size);
        w_i32(&w, e->info.pooling);
        w_i32(&w, e->info.share_with);
        w_i32(&w, e->transform);
        w_src(&w, e->src);
        w_i32(&w, e->min_count);
        w_i64(&w, e->hash_buckets);
        w_i32(&w, e->normalize);
        w_f64(&w, e->fill);
        w_f64(&w, e->p0);
        w_f64(&w, e->p1);
        w_u32(&w, (uint32_t)e->n_bounds);
        for (int k = 0; k < e->n_bounds; k++) w_f64(&w, e->bounds[k]);
        w_i32(&w, e->quantiles);
        w_str(&w, e->sep);
        w_u32(&w, (uint32_t)e->n_flags);
        for (int k = 0; k < e->n_flags; k++) {
            w_str(&w, e->flags[k]);
            w_src(&w, e->flag_src[k]);
        }
        w_optstr(&w, e->pattern);
        w_map(&w, &e->vocab);
        w_i32(&w, e->of);
        w_src(&w, e->by);
        w_i32(&w, e->seq_col);
    }
    w_u32(&w, (uint32_t)s->n_text);
    for (int t = 0; t < s->n_text; t++) {
        const sc_tenc *e = &s->tenc[t];
        w_str(&w, e->name);
        w_src(&w, e->src);
        w_u32(&w, (uint32_t)e->n_flags);
        for (int k = 0; k < e->n_flags; k++) {
            w_str(&w, e->flags[k]);
            w_src(&w, e->flag_src[k]);
        }
        w_str(&w, e->joiner);
        w_optstr(&w, e->pattern);
        w_map(&w, &e->strings);
    }
    w_bytes(&w, "SCEND\0\0\0", 8);
    if (w.oom) {
        sc_free(w.p);
        return sc_fail(err, SC_ENOMEM, "schema: out of memory while serialising");
    }
    *buf = w.p;
    *len = w.n;
    return SC_OK;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n, off;
    sc_error *err;
    int bad;
} rbuf;

static int r_bytes(rbuf *r, void *dst, size_t n) {
    if (r->bad || n > r->n - r->off) {
        if (!r->bad) sc_fail(r->err, SC_EFORMAT, "schema: truncated at byte %zu (needs %zu more)", r->off, n);
        r->bad = 1;
        if (dst && n) memset(dst, 0, n);
        return -1;
    }
    if (dst && n) memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}
static uint32_t r_u32(rbuf *r) { uint32_t v = 0; r_bytes(r, &v, 4); return v; }
static int32_t r_i32(rbuf *r) { int32_t v = 0; r_bytes(r, &v, 4); return v; }
static int64_t r_i64(rbuf *r) { int64_t v = 0; r_bytes(r, &v, 8); return v; }
static double r_f64(rbuf *r) { double v = 0; r_bytes(r, &v, 8); return v; }
static int r_bad(rbuf *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int r_bad(rbuf *r, const char *fmt, ...) {
    if (!r->bad) {
        char msg[800];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        sc_fail(r->err, SC_EFORMAT, "schema: %s (at byte %zu)", msg, r->off);
    }
    r->bad = 1;
    return -1;
}
/* A string into a fixed buffer (cap includes the NUL). */
static int r_strfix(rbuf *r, char *dst, size_t cap, const char *what) {
    uint32_t n = r_u32(r);
    if (r->bad) return -1;
    if (n >= cap) return r_bad(r, "%s is %u bytes, at most %zu", what, n, cap - 1);
    if (r_bytes(r, dst, n)) return -1;
    dst[n] = 0;
    if (memchr(dst, 0, n)) return r_bad(r, "%s holds a NUL byte", what);
    return 0;
}
static char *r_strdup(rbuf *r, const char *what) {
    uint32_t n = r_u32(r);
    if (r->bad) return NULL;
    if (n > r->n - r->off) {
        r_bad(r, "%s: %u bytes past the end", what, n);
        return NULL;
    }
    char *s = sc_malloc((size_t)n + 1);
    if (!s) {
        r_bad(r, "out of memory");
        return NULL;
    }
    r_bytes(r, s, n);
    s[n] = 0;
    return s;
}
static int r_map(rbuf *r, sc_strmap *m, const char *what) {
    uint32_t n = r_u32(r);
    if (r->bad) return -1;
    if ((size_t)n > (r->n - r->off) / 4) return r_bad(r, "%s: %u entries cannot fit", what, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = r_u32(r);
        if (r->bad) return -1;
        if (l > r->n - r->off) return r_bad(r, "%s: entry %u runs past the end", what, i);
        int ins;
        if (sc_strmap_insert(m, (const char *)r->p + r->off, l, 0, &ins) < 0) return r_bad(r, "out of memory");
        if (!ins) return r_bad(r, "%s: entry %u is a duplicate", what, i);
        r->off += l;
    }
    return 0;
}
static sc_src r_src(rbuf *r) {
    sc_src s;
    s.table = r_i32(r);
    s.col = r_i32(r);
    return s;
}
static int src_ok(const sc_schema *s, sc_src src) {
    if (src.table < -1 || src.table >= s->n_joins) return 0;
    if (src.table < 0) return src.col >= 0 && src.col < s->n_main;
    return src.col >= 0 && src.col < s->joins[src.table].n_cols;
}
static int r_flags(rbuf *r, const sc_schema *s, int *n_flags, char (**flags)[SC_NAME_MAX], sc_src **fsrc,
                   const char *what) {
    uint32_t n = r_u32(r);
    if (r->bad) return -1;
    if (n > SC_MAX_FLAGS) return r_bad(r, "%s: %u flag columns", what, n);
    *flags = sc_calloc((size_t)n + 1, SC_NAME_MAX);
    *fsrc = sc_calloc((size_t)n + 1, sizeof **fsrc);
    if (!*flags || !*fsrc) return r_bad(r, "out of memory");
    *n_flags = (int)n;
    for (uint32_t k = 0; k < n; k++) {
        if (r_strfix(r, (*flags)[k], SC_NAME_MAX, "flag name")) return -1;
        (*fsrc)[k] = r_src(r);
        if (!r->bad && !src_ok(s, (*fsrc)[k])) return r_bad(r, "%s: flag column %u points nowhere", what, k);
    }
    return r->bad ? -1 : 0;
}

int sc_schema_deserialize(sc_schema **out, const uint8_t *buf, size_t len, sc_error *err) {
    *out = NULL;
    rbuf rb = {buf, len, 0, err, 0}, *r = &rb;
    char magic[8];
    if (len < 12 || (r_bytes(r, magic, 8), memcmp(magic, SC_SCHEMA_MAGIC, 8)))
        return sc_fail(err, SC_EFORMAT, "schema: bad magic, not a semctr schema");
    uint32_t version = r_u32(r);
    if (version != SC_SCHEMA_VERSION)
        return sc_fail(err, SC_EVERSION, "schema: version %u, this build reads version %d; rerun `semctr prepare`",
                       version, SC_SCHEMA_VERSION);
    sc_schema *s = sc_schema_new();
    if (!s) return sc_fail(err, SC_ENOMEM, "out of memory");
    s->config_text = r_strdup(r, "config text");
    r_strfix(r, s->label_col, sizeof s->label_col, "label column");
    s->label_op = r_i32(r);
    s->label_value = r_f64(r);
    r_strfix(r, s->label_rule, sizeof s->label_rule, "label rule");
    s->label_idx = r_i32(r);
    s->group = r_i32(r);
    uint32_t nm = r_u32(r);
    if (r->bad) goto fail;
    if (s->label_op < SC_OP_NONE || s->label_op > SC_OP_NE || !isfinite(s->label_value)) {
        r_bad(r, "bad label rule");
        goto fail;
    }
    if (nm > 100000) {
        r_bad(r, "%u input columns", nm);
        goto fail;
    }
    s->main_cols = sc_calloc((size_t)nm + 1, SC_NAME_MAX);
    if (!s->main_cols) goto oom;
    s->n_main = (int)nm;
    for (uint32_t m = 0; m < nm; m++)
        if (r_strfix(r, s->main_cols[m], SC_NAME_MAX, "input column")) goto fail;
    if (s->label_idx < -1 || s->label_idx >= s->n_main) {
        r_bad(r, "label column index %d out of range", s->label_idx);
        goto fail;
    }
    uint32_t nj = r_u32(r);
    if (r->bad) goto fail;
    if (nj > SC_MAX_JOINS) {
        r_bad(r, "%u joins", nj);
        goto fail;
    }
    s->joins = sc_calloc((size_t)nj + 1, sizeof *s->joins);
    if (!s->joins) goto oom;
    for (uint32_t j = 0; j < nj; j++) {
        sc_jtable *t = &s->joins[j];
        s->n_joins = (int)j + 1;
        r_strfix(r, t->name, sizeof t->name, "join name");
        r_strfix(r, t->on, sizeof t->on, "join column");
        t->on_idx = r_i32(r);
        uint32_t nc = r_u32(r);
        if (r->bad) goto fail;
        if (t->on_idx < 0 || t->on_idx >= s->n_main || nc > 4096) {
            r_bad(r, "join '%s': bad layout", t->name);
            goto fail;
        }
        t->cols = sc_calloc((size_t)nc + 1, SC_NAME_MAX);
        if (!t->cols) goto oom;
        t->n_cols = (int)nc;
        for (uint32_t c = 0; c < nc; c++)
            if (r_strfix(r, t->cols[c], SC_NAME_MAX, "join column name")) goto fail;
        if (r_map(r, &t->keys, "join keys") || r_map(r, &t->strings, "join strings")) goto fail;
        size_t cells;
        if (sc_mul_size(t->keys.n, nc, &cells) || cells > (r->n - r->off) / 4) {
            r_bad(r, "join '%s': cells past the end", t->name);
            goto fail;
        }
        t->cell = sc_calloc(cells + 1, 4);
        if (!t->cell) goto oom;
        r_bytes(r, t->cell, cells * 4);
        for (size_t i = 0; i < cells; i++)
            if (t->cell[i] >= t->strings.n) {
                r_bad(r, "join '%s': cell %zu points outside its strings", t->name, i);
                goto fail;
            }
    }
    uint32_t nf = r_u32(r);
    if (r->bad) goto fail;
    if (nf < 1 || nf > SC_MAX_FIELDS) {
        r_bad(r, "%u fields", nf);
        goto fail;
    }
    s->fenc = sc_calloc(nf, sizeof *s->fenc);
    if (!s->fenc) goto oom;
    for (uint32_t f = 0; f < nf; f++) {
        sc_fenc *e = &s->fenc[f];
        s->n_fields = (int)f + 1;
        r_strfix(r, e->info.name, sizeof e->info.name, "field name");
        e->info.kind = r_i32(r);
        e->info.width = r_i32(r);
        e->info.vocab_size = r_i64(r);
        e->info.pooling = r_i32(r);
        e->info.share_with = r_i32(r);
        e->transform = r_i32(r);
        e->src = r_src(r);
        e->min_count = r_i32(r);
        e->hash_buckets = r_i64(r);
        e->normalize = r_i32(r);
        e->fill = r_f64(r);
        e->p0 = r_f64(r);
        e->p1 = r_f64(r);
        uint32_t nb = r_u32(r);
        if (r->bad) goto fail;
        if (nb > 100000 || (size_t)nb * 8 > r->n - r->off) {
            r_bad(r, "field '%s': %u bucket boundaries", e->info.name, nb);
            goto fail;
        }
        e->bounds = sc_calloc((size_t)nb + 1, sizeof(double));
        if (!e->bounds) goto oom;
        e->n_bounds = (int)nb;
        for (uint32_t k = 0; k < nb; k++) {
            e->bounds[k] = r_f64(r);
            if (!isfinite(e->bounds[k]) || (k && !(e->bounds[k] > e->bounds[k - 1]))) {
                r_bad(r, "field '%s': boundaries not ascending", e->info.name);
                goto fail;
            }
        }
        e->quantiles = r_i32(r);
        r_strfix(r, e->sep, sizeof e->sep, "separator");
        if (r_flags(r, s, &e->n_flags, &e->flags, &e->flag_src, e->info.name)) goto fail;
        if (r_u32(r)) e->pattern = r_strdup(r, "pattern");
        if (r_map(r, &e->vocab, "vocabulary")) goto fail;
        e->of = r_i32(r);
        e->by = r_src(r);
        e->seq_col = r_i32(r);
        if (r->bad) goto fail;
        /* consistency of the field */
        const sc_field_info *fi = &e->info;
        int W1 = fi->width == 1, ok = 1;
        int64_t V = fi->vocab_size;
        int64_t vn = (int64_t)e->vocab.n;
        switch (e->transform) {
        case SC_TR_CATEGORICAL:
            ok = fi->kind == SC_FIELD_CATEGORICAL && W1 && src_ok(s, e->src) &&
                 (e->hash_buckets ? (e->hash_buckets < INT32_MAX - 2 && V == e->hash_buckets + 2 && vn == 0) : V == vn + 2);
            break;
        case SC_TR_LOG2: ok = fi->kind == SC_FIELD_CATEGORICAL && W1 && src_ok(s, e->src) && !e->hash_buckets && V == vn + 2; break;
        case SC_TR_BUCKET: ok = fi->kind == SC_FIELD_CATEGORICAL && W1 && src_ok(s, e->src) && nb >= 1 && V == (int64_t)nb + 3; break;
        case SC_TR_NUMERIC:
            ok = fi->kind == SC_FIELD_NUMERIC && W1 && src_ok(s, e->src) && V == 1 && e->normalize >= 0 &&
                 e->normalize <= SC_NORM_LOG && isfinite(e->fill) && isfinite(e->p0) && isfinite(e->p1);
            break;
        case SC_TR_MULTI:
            ok = fi->kind == SC_FIELD_MULTI && fi->width >= 1 && fi->width <= SC_MAX_WIDTH &&
                 (e->n_flags || src_ok(s, e->src)) && e->sep[0] &&
                 (e->hash_buckets ? (e->hash_buckets < INT32_MAX - 2 && V == e->hash_buckets + 2) : V == vn + 2);
            break;
        case SC_TR_SEQUENCE:
            ok = fi->kind == SC_FIELD_SEQUENCE && fi->width >= 1 && fi->width <= SC_MAX_WIDTH && e->of >= 0 &&
                 (uint32_t)e->of < f && s->fenc[e->of].transform == SC_TR_CATEGORICAL && !s->fenc[e->of].hash_buckets &&
                 V == s->fenc[e->of].info.vocab_size && (fi->share_with == -1 || fi->share_with == e->of) &&
                 e->seq_col >= -1 && e->seq_col < s->n_main && e->sep[0];
            break;
        default: ok = 0;
        }
        if (ok && e->transform != SC_TR_SEQUENCE) ok = fi->share_with == -1;
        if (ok) ok = V >= 1 && V <= INT32_MAX && (fi->pooling == SC_POOL_MEAN || fi->pooling == SC_POOL_SUM);
        if (!ok) {
            r_bad(r, "field '%s' is inconsistent (kind %d, transform %d, width %d, vocabulary %lld)", fi->name, fi->kind,
                  e->transform, fi->width, (long long)fi->vocab_size);
            goto fail;
        }
    }
    if (s->group < -1 || s->group >= s->n_fields) {
        r_bad(r, "group field %d out of range", s->group);
        goto fail;
    }
    uint32_t nt = r_u32(r);
    if (r->bad) goto fail;
    if (nt > SC_MAX_FIELDS) {
        r_bad(r, "%u text columns", nt);
        goto fail;
    }
    s->tenc = sc_calloc((size_t)nt + 1, sizeof *s->tenc);
    if (!s->tenc) goto oom;
    for (uint32_t t = 0; t < nt; t++) {
        sc_tenc *e = &s->tenc[t];
        s->n_text = (int)t + 1;
        r_strfix(r, e->name, sizeof e->name, "text name");
        e->src = r_src(r);
        if (r_flags(r, s, &e->n_flags, &e->flags, &e->flag_src, e->name)) goto fail;
        r_strfix(r, e->joiner, sizeof e->joiner, "joiner");
        if (r_u32(r)) e->pattern = r_strdup(r, "pattern");
        if (r_map(r, &e->strings, "text strings")) goto fail;
        if (!e->n_flags && !src_ok(s, e->src)) {
            r_bad(r, "text column '%s' points nowhere", e->name);
            goto fail;
        }
    }
    char end[8];
    if (r_bytes(r, end, 8) || memcmp(end, "SCEND\0\0\0", 8) || r->off != r->n) {
        r_bad(r, "bad end marker or trailing bytes");
        goto fail;
    }
    if (sc_schema_compile(s, err) || sc_schema_finish(s, err)) {
        sc_schema_free(s);
        return err ? err->code : SC_EFORMAT;
    }
    *out = s;
    return SC_OK;
oom:
    sc_schema_free(s);
    return sc_fail(err, SC_ENOMEM, "schema: out of memory");
fail:
    sc_schema_free(s);
    if (err && err->code == SC_OK) err->code = SC_EFORMAT;
    return err ? err->code : SC_EFORMAT;
}

int sc_schema_load(sc_schema **out, const char *dataset_dir, sc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dataset_dir, SC_SCHEMA_FILE);
    sc_mmap m;
    *out = NULL;
    int rc = sc_mmap_open(&m, path, err);
    if (rc) return rc;
    /* the schema must be the one the folder's manifest lists, as the splits must */
    rc = sc_datadir_check_file(path, XXH3_64bits(m.data ? (const void *)m.data : "", m.size), err);
    if (!rc) {
        rc = sc_schema_deserialize(out, m.data, m.size, err);
        if (rc) sc_fail_prefix(err, "%s: ", path);
    }
    sc_mmap_close(&m);
    return rc;
}

/* ------------------------------------------------------------ csv chunks */

struct sc_csv_chunks {
    sc_line_reader lr;
    char delim[16];
    int n_cols;
    char **names;         /* (n_cols) */
    const char **cells;   /* (cap_rows, n_cols) into arena */
    int cap_rows;
    char *arena;
    size_t arena_cap;
    sc_cell *tmp;
};

int sc_csv_chunks_open(sc_csv_chunks **out, const char *path, const char *delimiter, sc_error *err) {
    *out = NULL;
    sc_csv_chunks *r = sc_calloc(1, sizeof *r);
    if (!r) return sc_fail(err, SC_ENOMEM, "out of memory");
    snprintf(r->delim, sizeof r->delim, "%s", delimiter && *delimiter ? delimiter : ",");
    int rc = sc_line_reader_open(&r->lr, path, err);
    if (rc) {
        sc_free(r);
        return rc;
    }
    char *line;
    size_t len;
    rc = sc_line_reader_next(&r->lr, &line, &len, err);
    if (rc <= 0) {
        sc_csv_chunks_close(r);
        return rc < 0 ? rc : sc_fail(err, SC_EINVAL, "%s: empty file, expected a header row", path);
    }
    sc_cell cells[4096];
    int n = sc_csv_split(line, len, r->delim, strlen(r->delim), '"', cells, 4096);
    if (n < 1 || n > 4096) {
        sc_csv_chunks_close(r);
        return sc_fail(err, SC_EINVAL, "%s:1: bad header row", path);
    }
    r->n_cols = n;
    r->names = sc_calloc((size_t)n, sizeof *r->names);
    r->tmp = sc_calloc((size_t)n + 1, sizeof *r->tmp);
    if (!r->names || !r->tmp) {
        sc_csv_chunks_close(r);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int c = 0; c < n; c++) {
        r->names[c] = sc_malloc(cells[c].len + 1);
        if (!r->names[c]) {
            sc_csv_chunks_close(r);
            return sc_fail(err, SC_ENOMEM, "out of memory");
        }
        memcpy(r->names[c], cells[c].p, cells[c].len);
        r->names[c][cells[c].len] = 0;
    }
    *out = r;
    return SC_OK;
}

int sc_csv_chunks_next(sc_csv_chunks *r, int max_rows, int *n_rows, int *n_cols, const char *const **col_names,
                       const char *const **cells, sc_error *err) {
    *n_rows = 0;
    *n_cols = r->n_cols;
    *col_names = (const char *const *)r->names;
    if (max_rows < 1) return sc_fail(err, SC_EINVAL, "csv: max_rows must be positive");
    if (max_rows > r->cap_rows) {
        sc_free((void *)r->cells);
        r->cells = sc_calloc((size_t)max_rows * (size_t)r->n_cols, sizeof *r->cells);
        if (!r->cells) return sc_fail(err, SC_ENOMEM, "out of memory");
        r->cap_rows = max_rows;
    }
    size_t used = 0;
    int rows = 0;
    /* rows are copied into the arena; offsets are fixed up once it stops moving */
    size_t *offs = sc_calloc((size_t)max_rows * (size_t)r->n_cols, sizeof *offs);
    if (!offs) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = SC_OK;
    while (rows < max_rows) {
        char *line;
        size_t len;
        int k = sc_line_reader_next(&r->lr, &line, &len, err);
        if (k < 0) {
            rc = k;
            break;
        }
        if (k == 0) break;
        if (len == 0) continue;
        int n = sc_csv_split(line, len, r->delim, strlen(r->delim), '"', r->tmp, r->n_cols);
        if (n < 0) {
            rc = sc_fail(err, SC_EINVAL, "%s:%lld: a quoted cell is not closed, or text follows its closing quote",
                         r->lr.path, (long long)r->lr.line_no);
            break;
        }
        if (n != r->n_cols) {
            rc = sc_fail(err, SC_EINVAL, "%s:%lld: %d columns, the header has %d", r->lr.path, (long long)r->lr.line_no,
                         n, r->n_cols);
            break;
        }
        if (!sc_utf8_valid(line, len, NULL)) {
            rc = sc_fail(err, SC_EINVAL, "%s:%lld: not valid UTF-8", r->lr.path, (long long)r->lr.line_no);
            break;
        }
        size_t need = used + len + (size_t)r->n_cols + 1;
        if (need > r->arena_cap) {
            size_t cap = r->arena_cap ? r->arena_cap : 65536;
            while (cap < need) cap *= 2;
            char *na = sc_realloc(r->arena, cap);
            if (!na) {
                rc = sc_fail(err, SC_ENOMEM, "out of memory");
                break;
            }
            r->arena = na;
            r->arena_cap = cap;
        }
        for (int c = 0; c < n; c++) {
            size_t o = (size_t)rows * r->n_cols + c;
            if (r->tmp[c].len == 0) {
                offs[o] = SIZE_MAX;
                continue;
            }
            memcpy(r->arena + used, r->tmp[c].p, r->tmp[c].len);
            r->arena[used + r->tmp[c].len] = 0;
            offs[o] = used;
            used += r->tmp[c].len + 1;
        }
        rows++;
    }
    for (size_t o = 0; o < (size_t)rows * r->n_cols; o++) r->cells[o] = offs[o] == SIZE_MAX ? NULL : r->arena + offs[o];
    sc_free(offs);
    if (rc) return rc;
    *n_rows = rows;
    *cells = r->cells;
    return SC_OK;
}

void sc_csv_chunks_close(sc_csv_chunks *r) {
    if (!r) return;
    sc_line_reader_close(&r->lr);
    if (r->names)
        for (int c = 0; c < r->n_cols; c++) sc_free(r->names[c]);
    sc_free(r->names);
    sc_free((void *)r->cells);
    sc_free(r->arena);
    sc_free(r->tmp);
    sc_free(r);
}
