/* safetensors reader; see safetensors.h for the checks made. */
#include "lm/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

static const struct { const char *name; size_t size; } dtypes[SC_DT_COUNT] = {
    [SC_DT_BOOL] = {"BOOL", 1}, [SC_DT_U8] = {"U8", 1},     [SC_DT_I8] = {"I8", 1},
    [SC_DT_I16] = {"I16", 2},   [SC_DT_U16] = {"U16", 2},   [SC_DT_F16] = {"F16", 2},
    [SC_DT_BF16] = {"BF16", 2}, [SC_DT_I32] = {"I32", 4},   [SC_DT_U32] = {"U32", 4},
    [SC_DT_F32] = {"F32", 4},   [SC_DT_F64] = {"F64", 8},   [SC_DT_I64] = {"I64", 8},
    [SC_DT_U64] = {"U64", 8},   [SC_DT_F8_E4M3] = {"F8_E4M3", 1}, [SC_DT_F8_E5M2] = {"F8_E5M2", 1},
};

const char *sc_dtype_name(sc_dtype dt) { return dt < SC_DT_COUNT ? dtypes[dt].name : "?"; }
size_t sc_dtype_size(sc_dtype dt) { return dt < SC_DT_COUNT ? dtypes[dt].size : 0; }

static void free_tensors(sc_safetensors *st) {
    for (int i = 0; i < st->n; i++) sc_free(st->tensors[i].name);
    sc_free(st->tensors);
    st->tensors = NULL;
    st->n = 0;
}

static int cmp_offset(const void *a, const void *b) {
    const sc_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(sc_safetensors *st, const cJSON *item, sc_st_tensor *t, sc_error *err) {
    const char *f = st->path, *name = item->string;
    if (!cJSON_IsObject(item)) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': entry is not a JSON object", f, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt)) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': missing string 'dtype'", f, name);
    int k = -1;
    for (int i = 0; i < SC_DT_COUNT; i++)
        if (strcmp(dt->valuestring, dtypes[i].name) == 0) k = i;
    if (k < 0) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", f, name, dt->valuestring);
    t->dtype = (sc_dtype)k;
    if (!cJSON_IsArray(shape)) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': missing array 'shape'", f, name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > SC_ST_MAX_DIMS)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': %d dimensions, at most %d supported", f, name, nd, SC_ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", f, name, i);
        t->shape[i] = (int64_t)v;
        if (sc_mul_size(numel, (size_t)v, &numel) != 0)
            return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': shape overflows", f, name);
    }
    size_t nbytes;
    if (sc_mul_size(numel, dtypes[k].size, &nbytes) != 0)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': byte size overflows", f, name);
    t->numel = (int64_t)numel;
    uint64_t b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_uint(offs->child, &b) != 0 ||
        json_uint(offs->child->next, &e) != 0)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': 'data_offsets' must be two non-negative integers", f, name);
    if (e < b) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': data_offsets end %llu < begin %llu", f, name,
                              (unsigned long long)e, (unsigned long long)b);
    if (e - b != nbytes)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': data_offsets span %llu bytes but %s%s needs %zu", f, name,
                       (unsigned long long)(e - b), dtypes[k].name, nd ? " of this shape" : " scalar", nbytes);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    return SC_OK;
}

int sc_st_parse(sc_safetensors *st, const uint8_t *buf, size_t size, const char *name, sc_error *err) {
    snprintf(st->path, sizeof st->path, "%s", name ? name : "<safetensors>");
    st->n = 0;
    st->tensors = NULL;
    const char *f = st->path;
    if (size < 8) return sc_fail(err, SC_EFORMAT, "%s: %zu bytes, too short for a safetensors header", f, size);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | buf[i];
    if (hn > SC_ST_MAX_HEADER)
        return sc_fail(err, SC_EFORMAT, "%s: header length %llu exceeds the limit of %llu bytes", f,
                       (unsigned long long)hn, (unsigned long long)SC_ST_MAX_HEADER);
    if (hn > size - 8)
        return sc_fail(err, SC_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes): truncated?",
                       f, (unsigned long long)hn, size);
    if (hn < 2 || buf[8] != '{') return sc_fail(err, SC_EFORMAT, "%s: header is not a JSON object", f);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hn);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sc_fail(err, SC_EFORMAT, "%s: header is not valid JSON", f);
    }
    int rc = SC_OK, count = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (!it->string || strcmp(it->string, "__metadata__") != 0) count++;
    st->tensors = sc_calloc(count ? (size_t)count : 1, sizeof *st->tensors);
    if (!st->tensors) {
        cJSON_Delete(root);
        return sc_fail(err, SC_ENOMEM, "%s: out of memory for %d tensors", f, count);
    }
    const uint8_t *data = buf + 8 + hn;
    size_t data_size = size - 8 - (size_t)hn;
    for (const cJSON *it = root->child; it && rc == SC_OK; it = it->next) {
        if (!it->string) { rc = sc_fail(err, SC_EFORMAT, "%s: header entry without a name", f); break; }
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) rc = sc_fail(err, SC_EFORMAT, "%s: '__metadata__' is not an object", f);
            continue;
        }
        sc_st_tensor *t = &st->tensors[st->n];
        memset(t, 0, sizeof *t);
        rc = parse_tensor(st, it, t, err);
        if (rc != SC_OK) break;
        t->name = sc_strdup(it->string);
        if (!t->name) { rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", f); break; }
        st->n++;
    }
    cJSON_Delete(root);
    if (rc != SC_OK) {
        free_tensors(st);
        return rc;
    }
    /* Duplicate names: cJSON keeps both, the reference rejects them. */
    for (int i = 0; i < st->n && rc == SC_OK; i++)
        for (int j = i + 1; j < st->n; j++)
            if (strcmp(st->tensors[i].name, st->tensors[j].name) == 0) {
                rc = sc_fail(err, SC_EFORMAT, "%s: tensor '%s' appears twice in the header", f, st->tensors[i].name);
                break;
            }
    if (rc == SC_OK) {
        /* The byte ranges must tile [0, data_size) exactly, as in the reference. */
        qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_offset);
        size_t at = 0;
        for (int i = 0; i < st->n && rc == SC_OK; i++) {
            sc_st_tensor *t = &st->tensors[i];
            if (t->begin != at)
                rc = sc_fail(err, SC_EFORMAT, "%s: tensor '%s' starts at byte %zu of the data, expected %zu (offsets must tile the buffer)",
                             f, t->name, t->begin, at);
            else if (t->end > data_size)
                rc = sc_fail(err, SC_EFORMAT, "%s: tensor '%s' ends at byte %zu but the data holds %zu bytes: truncated?",
                             f, t->name, t->end, data_size);
            t->data = data + t->begin;
            at = t->end;
        }
        if (rc == SC_OK && at != data_size)
            rc = sc_fail(err, SC_EFORMAT, "%s: %zu bytes after the last tensor (header says %zu, data holds %zu)", f,
                         data_size - at, at, data_size);
    }
    if (rc != SC_OK) free_tensors(st);
    return rc;
}

int sc_st_open(sc_safetensors *st, const char *path, sc_error *err) {
    memset(st, 0, sizeof *st);
    int rc = sc_mmap_open(&st->map, path, err);
    if (rc != SC_OK) return rc;
    sc_mmap map = st->map;
    rc = sc_st_parse(st, map.data, map.size, path, err);
    st->map = map;
    if (rc != SC_OK) sc_mmap_close(&st->map);
    return rc;
}

void sc_st_close(sc_safetensors *st) {
    if (!st) return;
    free_tensors(st);
    sc_mmap_close(&st->map);
}

const sc_st_tensor *sc_st_find(const sc_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0) return &st->tensors[i];
    return NULL;
}

float sc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

float sc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int sc_st_get_f32(const sc_safetensors *st, const char *name, int ndim, const int64_t *shape, float **out,
                  int *owned, sc_error *err) {
    *out = NULL;
    *owned = 0;
    const sc_st_tensor *t = sc_st_find(st, name);
    if (!t) return sc_fail(err, SC_ENOTFOUND, "%s: tensor '%s' not found", st->path, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128] = "", got[128] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has shape [%s] but config.json implies [%s]", st->path, name,
                       got, want);
    }
    size_t n = (size_t)t->numel;
    if (t->dtype == SC_DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (float *)(uintptr_t)t->data;
        return SC_OK;
    }
    if (t->dtype != SC_DT_F32 && t->dtype != SC_DT_F16 && t->dtype != SC_DT_BF16)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 are supported", st->path,
                       name, sc_dtype_name(t->dtype));
    float *buf = sc_aligned_alloc(n ? n * sizeof(float) : 4);
    if (!buf) return sc_fail(err, SC_ENOMEM, "%s: out of memory converting tensor '%s'", st->path, name);
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == SC_DT_F32) {
            memcpy(&buf[i], t->data + 4 * i, 4);
        } else {
            uint16_t h = (uint16_t)(t->data[2 * i] | (t->data[2 * i + 1] << 8));
            buf[i] = t->dtype == SC_DT_F16 ? sc_f16_to_f32(h) : sc_bf16_to_f32(h);
        }
    }
    *out = buf;
    *owned = 1;
    return SC_OK;
}
