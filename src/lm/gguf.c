/* GGUF reader: a bounds-checked cursor over the mapped bytes. */
#include "lm/gguf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

static const struct { int bs, ts; const char *name; } TYPES[SC_GGML_NTYPES] = {
    [SC_GGML_F32] = {1, 4, "F32"},     [SC_GGML_F16] = {1, 2, "F16"},
    [SC_GGML_Q4_0] = {32, 18, "Q4_0"}, [SC_GGML_Q4_1] = {32, 20, "Q4_1"},
    [SC_GGML_Q5_0] = {32, 22, "Q5_0"}, [SC_GGML_Q5_1] = {32, 24, "Q5_1"},
    [SC_GGML_Q8_0] = {32, 34, "Q8_0"}, [SC_GGML_Q8_1] = {32, 36, "Q8_1"},
    [SC_GGML_Q2_K] = {256, 84, "Q2_K"}, [SC_GGML_Q3_K] = {256, 110, "Q3_K"},
    [SC_GGML_Q4_K] = {256, 144, "Q4_K"}, [SC_GGML_Q5_K] = {256, 176, "Q5_K"},
    [SC_GGML_Q6_K] = {256, 210, "Q6_K"}, [SC_GGML_Q8_K] = {256, 292, "Q8_K"},
    [SC_GGML_I8] = {1, 1, "I8"},       [SC_GGML_I16] = {1, 2, "I16"},
    [SC_GGML_I32] = {1, 4, "I32"},     [SC_GGML_I64] = {1, 8, "I64"},
    [SC_GGML_F64] = {1, 8, "F64"},     [SC_GGML_BF16] = {1, 2, "BF16"},
};

int sc_ggml_block_size(int t) { return t >= 0 && t < SC_GGML_NTYPES ? TYPES[t].bs : 0; }
int sc_ggml_type_size(int t) { return t >= 0 && t < SC_GGML_NTYPES ? TYPES[t].ts : 0; }
const char *sc_ggml_type_name(int t) {
    return t >= 0 && t < SC_GGML_NTYPES && TYPES[t].name ? TYPES[t].name : "unknown";
}

/* Byte size of a scalar metadata type; 0 for string/array/unknown. */
static int scalar_size(int t) {
    switch (t) {
    case SC_GGUF_U8: case SC_GGUF_I8: case SC_GGUF_BOOL: return 1;
    case SC_GGUF_U16: case SC_GGUF_I16: return 2;
    case SC_GGUF_U32: case SC_GGUF_I32: case SC_GGUF_F32: return 4;
    case SC_GGUF_U64: case SC_GGUF_I64: case SC_GGUF_F64: return 8;
    default: return 0;
    }
}

typedef struct cur {
    const uint8_t *p;
    size_t size, at;
} cur;

static int need(cur *c, uint64_t n) { return n <= c->size - c->at; }

static int rd(cur *c, void *out, size_t n) {
    if (!need(c, n)) return -1;
    memcpy(out, c->p + c->at, n); /* little-endian host assumed (x86/arm64) */
    c->at += n;
    return 0;
}

static int rd_str(cur *c, const char **s, uint64_t *len) {
    uint64_t n;
    if (rd(c, &n, 8) || !need(c, n)) return -1;
    *s = (const char *)c->p + c->at;
    *len = n;
    c->at += n;
    return 0;
}

/* Read a scalar of type t into the widened fields of kv. */
static void widen(sc_gguf_kv *kv, int t, const uint8_t *b) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
    float f32; uint64_t u64; int64_t i64; double f64;
    switch (t) {
    case SC_GGUF_U8: case SC_GGUF_BOOL: memcpy(&u8, b, 1); kv->u = u8; kv->i = u8; kv->f = u8; break;
    case SC_GGUF_I8: memcpy(&i8, b, 1); kv->i = i8; kv->u = (uint64_t)i8; kv->f = i8; break;
    case SC_GGUF_U16: memcpy(&u16, b, 2); kv->u = u16; kv->i = u16; kv->f = u16; break;
    case SC_GGUF_I16: memcpy(&i16, b, 2); kv->i = i16; kv->u = (uint64_t)i16; kv->f = i16; break;
    case SC_GGUF_U32: memcpy(&u32, b, 4); kv->u = u32; kv->i = u32; kv->f = u32; break;
    case SC_GGUF_I32: memcpy(&i32, b, 4); kv->i = i32; kv->u = (uint64_t)i32; kv->f = i32; break;
    case SC_GGUF_F32: memcpy(&f32, b, 4); kv->f = f32; break;
    case SC_GGUF_U64: memcpy(&u64, b, 8); kv->u = u64; kv->i = (int64_t)u64; kv->f = (double)u64; break;
    case SC_GGUF_I64: memcpy(&i64, b, 8); kv->i = i64; kv->u = (uint64_t)i64; kv->f = (double)i64; break;
    case SC_GGUF_F64: memcpy(&f64, b, 8); kv->f = f64; break;
    default: break;
    }
}

static char *dup_n(const char *s, uint64_t n) {
    char *d = sc_malloc((size_t)n + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)n);
    d[n] = 0;
    return d;
}

void sc_gguf_close(sc_gguf *g) {
    if (!g) return;
    if (g->kv) {
        for (int64_t i = 0; i < g->n_kv; i++) {
            sc_free(g->kv[i].key);
            sc_free(g->kv[i].stroff);
        }
        sc_free(g->kv);
    }
    if (g->tensors) {
        for (int64_t i = 0; i < g->n_tensors; i++) sc_free(g->tensors[i].name);
        sc_free(g->tensors);
    }
    if (g->mapped) sc_mmap_close(&g->map);
    memset(g, 0, sizeof *g);
}

#define FAIL(...) do { rc = sc_fail(err, SC_EFORMAT, __VA_ARGS__); goto fail; } while (0)

static int parse_value(sc_gguf *g, cur *c, sc_gguf_kv *kv, const char *key, sc_error *err) {
    int rc = SC_OK;
    int ss = scalar_size(kv->type);
    if (ss) {
        if (!need(c, ss)) FAIL("%s: key '%s': value truncated", g->name, key);
        widen(kv, kv->type, c->p + c->at);
        c->at += ss;
    } else if (kv->type == SC_GGUF_STRING) {
        if (rd_str(c, &kv->s, &kv->slen)) FAIL("%s: key '%s': string truncated", g->name, key);
    } else if (kv->type == SC_GGUF_ARRAY) {
        uint32_t at;
        if (rd(c, &at, 4) || rd(c, &kv->arr_n, 8)) FAIL("%s: key '%s': array header truncated", g->name, key);
        kv->arr_type = (int)at;
        kv->arr = c->p + c->at;
        int es = scalar_size(kv->arr_type);
        if (es) {
            if (kv->arr_n > (c->size - c->at) / (uint64_t)es)
                FAIL("%s: key '%s': array of %llu elements runs past the end of the file", g->name, key,
                     (unsigned long long)kv->arr_n);
            c->at += (size_t)kv->arr_n * es;
        } else if (kv->arr_type == SC_GGUF_STRING) {
            /* each element has at least an 8-byte length: bounds the count before allocating */
            if (kv->arr_n > (c->size - c->at) / 8)
                FAIL("%s: key '%s': array of %llu strings runs past the end of the file", g->name, key,
                     (unsigned long long)kv->arr_n);
            kv->stroff = sc_calloc(kv->arr_n ? (size_t)kv->arr_n : 1, sizeof(uint64_t));
            if (!kv->stroff) return sc_fail(err, SC_ENOMEM, "%s: key '%s': out of memory", g->name, key);
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                const char *s;
                uint64_t n;
                kv->stroff[k] = (uint64_t)(c->p + c->at - kv->arr);
                if (rd_str(c, &s, &n)) FAIL("%s: key '%s': string %llu truncated", g->name, key, (unsigned long long)k);
            }
        } else {
            /* nested arrays are legal in the spec but no model uses them */
            FAIL("%s: key '%s': unsupported array element type %d", g->name, key, kv->arr_type);
        }
    } else {
        FAIL("%s: key '%s': unknown value type %d", g->name, key, kv->type);
    }
    return SC_OK;
fail:
    return rc;
}

int sc_gguf_parse(sc_gguf *g, const uint8_t *buf, size_t size, const char *name, sc_error *err) {
    int rc = SC_OK;
    int mapped = g->mapped;
    sc_mmap map = g->map;
    memset(g, 0, sizeof *g);
    g->mapped = mapped;
    g->map = map;
    snprintf(g->name, sizeof g->name, "%s", name ? name : "gguf");
    cur c = {buf, size, 0};
    uint32_t magic;
    if (rd(&c, &magic, 4)) FAIL("%s: too short for a GGUF header", g->name);
    if (memcmp(buf, "GGUF", 4) != 0) FAIL("%s: not a GGUF file (bad magic)", g->name);
    uint64_t nt, nkv;
    if (rd(&c, &g->version, 4)) FAIL("%s: truncated header", g->name);
    if (g->version != 2 && g->version != 3) {
        rc = sc_fail(err, SC_EVERSION, "%s: GGUF version %u not supported (2 and 3 are)", g->name, g->version);
        goto fail;
    }
    if (rd(&c, &nt, 8) || rd(&c, &nkv, 8)) FAIL("%s: truncated header", g->name);
    /* a key/value takes at least 8+4+1 bytes, a tensor info at least 8+4+8+4+8 */
    if (nkv > (size - c.at) / 13) FAIL("%s: header claims %llu key/values, more than the file holds", g->name, (unsigned long long)nkv);
    if (nt > (size - c.at) / 32) FAIL("%s: header claims %llu tensors, more than the file holds", g->name, (unsigned long long)nt);
    g->kv = sc_calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = sc_calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) { rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", g->name); goto fail; }
    g->alignment = 32;
    for (uint64_t k = 0; k < nkv; k++) {
        const char *ks;
        uint64_t kl;
        uint32_t t;
        if (rd_str(&c, &ks, &kl)) FAIL("%s: key/value %llu: key truncated", g->name, (unsigned long long)k);
        sc_gguf_kv *kv = &g->kv[k];
        kv->key = dup_n(ks, kl);
        g->n_kv = (int64_t)k + 1;
        if (!kv->key) { rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", g->name); goto fail; }
        if (strlen(kv->key) != kl) FAIL("%s: key/value %llu: key contains a NUL byte", g->name, (unsigned long long)k);
        for (uint64_t j = 0; j < k; j++)
            if (strcmp(g->kv[j].key, kv->key) == 0) FAIL("%s: duplicate key '%s'", g->name, kv->key);
        if (rd(&c, &t, 4)) FAIL("%s: key '%s': type truncated", g->name, kv->key);
        kv->type = (int)t;
        if ((rc = parse_value(g, &c, kv, kv->key, err)) != SC_OK) goto fail;
        if (strcmp(kv->key, "general.alignment") == 0) {
            if (kv->type != SC_GGUF_U32 || kv->u == 0 || (kv->u & (kv->u - 1)) != 0)
                FAIL("%s: key 'general.alignment' must be a u32 power of two", g->name);
            g->alignment = kv->u;
        }
    }
    for (uint64_t k = 0; k < nt; k++) {
        sc_gguf_tensor *t = &g->tensors[k];
        const char *ns;
        uint64_t nl;
        uint32_t nd, ty;
        if (rd_str(&c, &ns, &nl)) FAIL("%s: tensor info %llu: name truncated", g->name, (unsigned long long)k);
        t->name = dup_n(ns, nl);
        g->n_tensors = (int64_t)k + 1;
        if (!t->name) { rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", g->name); goto fail; }
        if (strlen(t->name) != nl) FAIL("%s: tensor info %llu: name contains a NUL byte", g->name, (unsigned long long)k);
        for (uint64_t j = 0; j < k; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0) FAIL("%s: duplicate tensor '%s'", g->name, t->name);
        if (rd(&c, &nd, 4)) FAIL("%s: tensor '%s': truncated", g->name, t->name);
        if (nd == 0 || nd > SC_GGUF_MAX_DIMS) FAIL("%s: tensor '%s': %u dimensions (1 to %d allowed)", g->name, t->name, nd, SC_GGUF_MAX_DIMS);
        t->ndim = (int)nd;
        t->nelem = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (rd(&c, &t->ne[d], 8)) FAIL("%s: tensor '%s': truncated", g->name, t->name);
            if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 48) || t->nelem > ((uint64_t)1 << 62) / t->ne[d])
                FAIL("%s: tensor '%s': dimension %u = %llu is zero or overflows", g->name, t->name, d, (unsigned long long)t->ne[d]);
            t->nelem *= t->ne[d];
        }
        for (int d = (int)nd; d < SC_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        if (rd(&c, &ty, 4) || rd(&c, &t->offset, 8)) FAIL("%s: tensor '%s': truncated", g->name, t->name);
        t->type = (int)ty;
        int bs = sc_ggml_block_size(t->type);
        if (!bs) FAIL("%s: tensor '%s': unknown tensor type %u", g->name, t->name, ty);
        if (t->ne[0] % (uint64_t)bs) FAIL("%s: tensor '%s': row of %llu elements is not a multiple of the %s block size %d",
                                   g->name, t->name, (unsigned long long)t->ne[0], sc_ggml_type_name(t->type), bs);
        t->nbytes = t->nelem / bs * (uint64_t)sc_ggml_type_size(t->type);
        if (t->offset % g->alignment) FAIL("%s: tensor '%s': offset %llu is not aligned to %llu", g->name, t->name,
                                           (unsigned long long)t->offset, (unsigned long long)g->alignment);
    }
    /* data section starts at the next multiple of the alignment */
    uint64_t ds = (c.at + g->alignment - 1) / g->alignment * g->alignment;
    if (nt > 0 && ds > size) FAIL("%s: data section starts past the end of the file", g->name);
    if (ds > size) ds = size;
    g->data = buf + ds;
    uint64_t dsize = size - ds;
    for (uint64_t k = 0; k < nt; k++) {
        sc_gguf_tensor *t = &g->tensors[k];
        if (t->offset > dsize || t->nbytes > dsize - t->offset)
            FAIL("%s: tensor '%s': bytes [%llu, +%llu) lie outside the file's data section (%llu bytes)", g->name, t->name,
                 (unsigned long long)t->offset, (unsigned long long)t->nbytes, (unsigned long long)dsize);
        t->data = g->data + t->offset;
    }
    return SC_OK;
fail:
    g->mapped = 0; /* the caller owns the map on failure */
    sc_gguf_close(g);
    g->mapped = mapped;
    g->map = map;
    return rc;
}

int sc_gguf_open(sc_gguf *g, const char *path, sc_error *err) {
    memset(g, 0, sizeof *g);
    sc_mmap m;
    int rc = sc_mmap_open(&m, path, err);
    if (rc != SC_OK) return rc;
    g->map = m;
    g->mapped = 1;
    rc = sc_gguf_parse(g, m.data, m.size, path, err);
    if (rc != SC_OK) {
        sc_mmap_close(&m);
        memset(g, 0, sizeof *g);
    }
    return rc;
}

const sc_gguf_kv *sc_gguf_find(const sc_gguf *g, const char *key) {
    for (int64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const sc_gguf_tensor *sc_gguf_tensor_find(const sc_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int sc_gguf_get_u64(const sc_gguf *g, const char *key, uint64_t *out, sc_error *err) {
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    if (!kv) return sc_fail(err, SC_ENOTFOUND, "%s: key '%s' missing", g->name, key);
    switch (kv->type) {
    case SC_GGUF_U8: case SC_GGUF_U16: case SC_GGUF_U32: case SC_GGUF_U64: case SC_GGUF_BOOL:
        *out = kv->u; return SC_OK;
    case SC_GGUF_I8: case SC_GGUF_I16: case SC_GGUF_I32: case SC_GGUF_I64:
        if (kv->i < 0) return sc_fail(err, SC_EFORMAT, "%s: key '%s' is negative", g->name, key);
        *out = (uint64_t)kv->i; return SC_OK;
    default:
        return sc_fail(err, SC_EFORMAT, "%s: key '%s' is not an integer (type %d)", g->name, key, kv->type);
    }
}

int sc_gguf_get_f32(const sc_gguf *g, const char *key, float *out, sc_error *err) {
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    if (!kv) return sc_fail(err, SC_ENOTFOUND, "%s: key '%s' missing", g->name, key);
    if (kv->type == SC_GGUF_STRING || kv->type == SC_GGUF_ARRAY)
        return sc_fail(err, SC_EFORMAT, "%s: key '%s' is not a number", g->name, key);
    *out = (float)kv->f;
    return SC_OK;
}

int sc_gguf_get_str(const sc_gguf *g, const char *key, char **out, sc_error *err) {
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    if (!kv) return sc_fail(err, SC_ENOTFOUND, "%s: key '%s' missing", g->name, key);
    if (kv->type != SC_GGUF_STRING) return sc_fail(err, SC_EFORMAT, "%s: key '%s' is not a string", g->name, key);
    *out = dup_n(kv->s, kv->slen);
    return *out ? SC_OK : sc_fail(err, SC_ENOMEM, "%s: out of memory", g->name);
}

int sc_gguf_arr_str(const sc_gguf_kv *kv, uint64_t k, const char **s, uint64_t *len) {
    if (kv->type != SC_GGUF_ARRAY || kv->arr_type != SC_GGUF_STRING || k >= kv->arr_n) return SC_EINVAL;
    const uint8_t *p = kv->arr + kv->stroff[k];
    memcpy(len, p, 8);
    *s = (const char *)p + 8;
    return SC_OK;
}
