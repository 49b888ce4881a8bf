/* Vector store file; the layout is in vecstore.h. */
#include "lm/vecstore.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"

enum { HEADER = 64, MAX_ID = 65535 };

struct sc_vecstore_writer {
    sc_atomic_file f;
    int dim;
    int64_t count;
    char *ids;         /* NUL-terminated ids back to back */
    size_t ids_len, ids_cap;
    uint64_t *id_off;  /* (count + 1) */
    int64_t off_cap;
    uint64_t vec_off;
    int failed;
};

struct sc_vecstore {
    char path[4096];
    sc_mmap map;
    int dim;
    int64_t count;
    char *model;
    const float *vecs;
    const uint64_t *id_off;
    const char *ids;
    uint64_t ids_len;
    const uint32_t *slots;
    uint64_t cap;
};

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int pad_to(sc_vecstore_writer *w, uint64_t *at, uint64_t align, sc_error *err) {
    static const uint8_t zeros[64];
    uint64_t n = (align - *at % align) % align;
    *at += n;
    return n ? sc_atomic_write(&w->f, zeros, (size_t)n, err) : SC_OK;
}

int sc_vecstore_writer_open(sc_vecstore_writer **out, const char *path, const char *model, int dim, sc_error *err) {
    *out = NULL;
    if (dim <= 0 || dim > (1 << 24)) return sc_fail(err, SC_EINVAL, "%s: vector dimension %d is out of range", path, dim);
    size_t nl = strlen(model);
    if (nl > 4096) return sc_fail(err, SC_EINVAL, "%s: model name longer than 4096 bytes", path);
    sc_vecstore_writer *w = sc_calloc(1, sizeof *w);
    if (!w) return sc_fail(err, SC_ENOMEM, "out of memory");
    w->dim = dim;
    int rc = sc_atomic_open(&w->f, path, err);
    if (rc != SC_OK) {
        sc_free(w);
        return rc;
    }
    uint8_t hdr[HEADER] = {0};
    uint64_t at = HEADER + nl;
    rc = sc_atomic_write(&w->f, hdr, HEADER, err); /* rewritten at commit */
    if (rc == SC_OK) rc = sc_atomic_write(&w->f, model, nl, err);
    if (rc == SC_OK) rc = pad_to(w, &at, 64, err);
    if (rc != SC_OK) {
        sc_vecstore_writer_abort(w);
        return rc;
    }
    w->vec_off = at;
    *out = w;
    return SC_OK;
}

int sc_vecstore_writer_add(sc_vecstore_writer *w, const char *id, const float *vec, sc_error *err) {
    size_t l = strlen(id);
    if (l == 0 || l > MAX_ID)
        return sc_fail(err, SC_EINVAL, "%s: id of %zu bytes (must be 1 to %d)", w->f.path, l, MAX_ID);
    if (w->count + 2 > w->off_cap) {
        int64_t cap = w->off_cap ? 2 * w->off_cap : 1024;
        uint64_t *p = sc_realloc(w->id_off, (size_t)cap * sizeof *p);
        if (!p) return sc_fail(err, SC_ENOMEM, "out of memory");
        w->id_off = p;
        w->off_cap = cap;
    }
    if (w->ids_len + l + 1 > w->ids_cap) {
        size_t cap = w->ids_cap ? 2 * w->ids_cap : 4096;
        while (cap < w->ids_len + l + 1) cap *= 2;
        char *p = sc_realloc(w->ids, cap);
        if (!p) return sc_fail(err, SC_ENOMEM, "out of memory");
        w->ids = p;
        w->ids_cap = cap;
    }
    int rc = sc_atomic_write(&w->f, vec, (size_t)w->dim * sizeof(float), err);
    if (rc != SC_OK) {
        w->failed = 1;
        return rc;
    }
    w->id_off[w->count] = w->ids_len;
    memcpy(w->ids + w->ids_len, id, l + 1);
    w->ids_len += l + 1;
    w->count++;
    return SC_OK;
}

void sc_vecstore_writer_abort(sc_vecstore_writer *w) {
    if (!w) return;
    sc_atomic_abort(&w->f);
    sc_free(w->ids);
    sc_free(w->id_off);
    sc_free(w);
}

int sc_vecstore_writer_commit(sc_vecstore_writer *w, sc_error *err) {
    int rc = SC_OK;
    uint32_t *slots = NULL;
    if (w->failed) {
        rc = sc_fail(err, SC_EIO, "%s: an earlier write failed", w->f.path);
        goto fail;
    }
    if (!w->id_off && !(w->id_off = sc_calloc(1, sizeof *w->id_off))) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto fail;
    }
    w->id_off[w->count] = w->ids_len;
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)w->count + 16) cap <<= 1;
    slots = sc_calloc((size_t)cap, sizeof *slots);
    if (!slots) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for the index");
        goto fail;
    }
    for (int64_t i = 0; i < w->count; i++) {
        const char *id = w->ids + w->id_off[i];
        size_t l = (size_t)(w->id_off[i + 1] - w->id_off[i] - 1);
        uint64_t h = XXH3_64bits(id, l) & (cap - 1);
        for (; slots[h]; h = (h + 1) & (cap - 1))
            if (strcmp(w->ids + w->id_off[slots[h] - 1], id) == 0) {
                rc = sc_fail(err, SC_EINVAL, "%s: id '%s' appears twice (rows %lld and %lld)", w->f.path, id,
                             (long long)slots[h] - 1, (long long)i);
                goto fail;
            }
        slots[h] = (uint32_t)(i + 1);
    }
    uint64_t at = w->vec_off + (uint64_t)w->count * (uint64_t)w->dim * 4;
    rc = pad_to(w, &at, 8, err); /* u64 offsets follow */
    uint64_t idx_off = at;
    if (rc == SC_OK) rc = sc_atomic_write(&w->f, w->id_off, (size_t)(w->count + 1) * 8, err);
    at += (uint64_t)(w->count + 1) * 8;
    uint64_t ids_off = at;
    if (rc == SC_OK) rc = sc_atomic_write(&w->f, w->ids, w->ids_len, err);
    at += w->ids_len;
    if (rc == SC_OK) rc = pad_to(w, &at, 8, err);
    uint64_t hash_off = at;
    uint8_t b8[8];
    put64(b8, cap);
    if (rc == SC_OK) rc = sc_atomic_write(&w->f, b8, 8, err);
    if (rc == SC_OK) rc = sc_atomic_write(&w->f, slots, (size_t)cap * 4, err);
    if (rc != SC_OK) goto fail;
    uint8_t hdr[HEADER] = {0};
    memcpy(hdr, SC_VECSTORE_MAGIC, 8);
    put32(hdr + 8, SC_VECSTORE_VERSION);
    put32(hdr + 12, (uint32_t)w->dim);
    put64(hdr + 16, (uint64_t)w->count);
    put32(hdr + 24, (uint32_t)(w->vec_off - HEADER)); /* the name, NUL-padded */
    put64(hdr + 32, w->vec_off);
    put64(hdr + 40, idx_off);
    put64(hdr + 48, ids_off);
    put64(hdr + 56, hash_off);
    if (fflush(w->f.fp) != 0 || fseek(w->f.fp, 0, SEEK_SET) != 0) {
        rc = sc_fail(err, SC_EIO, "%s: cannot seek to write the header", w->f.path);
        goto fail;
    }
    rc = sc_atomic_write(&w->f, hdr, HEADER, err);
    if (rc != SC_OK) goto fail;
    rc = sc_atomic_commit(&w->f, err);
    sc_free(slots);
    sc_free(w->ids);
    sc_free(w->id_off);
    sc_free(w);
    return rc;
fail:
    sc_free(slots);
    sc_vecstore_writer_abort(w);
    return rc;
}

int sc_vecstore_open(sc_vecstore **out, const char *path, int expect_dim, sc_error *err) {
    *out = NULL;
    sc_vecstore *s = sc_calloc(1, sizeof *s);
    if (!s) return sc_fail(err, SC_ENOMEM, "out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    int rc = sc_mmap_open(&s->map, path, err);
    if (rc != SC_OK) {
        sc_free(s);
        return rc;
    }
    const uint8_t *p = s->map.data;
    uint64_t size = s->map.size;
#define BAD(...) do { rc = sc_fail(err, SC_EFORMAT, __VA_ARGS__); goto fail; } while (0)
    if (size < HEADER || memcmp(p, SC_VECSTORE_MAGIC, 8) != 0)
        BAD("%s: not a semctr vector store (bad magic or shorter than its header)", path);
    uint32_t version = get32(p + 8);
    if (version != SC_VECSTORE_VERSION) {
        rc = sc_fail(err, SC_EVERSION, "%s: vector store version %u, this build reads version %u; re-create it with `semctr embed`",
                     path, version, SC_VECSTORE_VERSION);
        goto fail;
    }
    s->dim = (int)get32(p + 12);
    uint64_t count = get64(p + 16), name_len = get32(p + 24);
    uint64_t vec_off = get64(p + 32), idx_off = get64(p + 40), ids_off = get64(p + 48), hash_off = get64(p + 56);
    if (s->dim <= 0 || s->dim > (1 << 24)) BAD("%s: vector dimension %d is out of range", path, s->dim);
    if (expect_dim > 0 && s->dim != expect_dim)
        BAD("%s: vectors have dimension %d, expected %d", path, s->dim, expect_dim);
    if (count > (uint64_t)INT32_MAX) BAD("%s: count %llu is out of range", path, (unsigned long long)count);
    s->count = (int64_t)count;
    uint64_t vec_bytes = count * (uint64_t)s->dim * 4; /* < 2^31 * 2^24 * 4: no overflow */
    if (HEADER + name_len > vec_off || vec_off % 64 || vec_off > size || vec_bytes > size - vec_off ||
        idx_off != (vec_off + vec_bytes + 7) / 8 * 8 || (count + 1) * 8 > size - idx_off || ids_off != idx_off + (count + 1) * 8 ||
        hash_off < ids_off || hash_off > size - 8 || hash_off % 8)
        BAD("%s: section offsets do not fit the file (%llu bytes): truncated or corrupt", path, (unsigned long long)size);
    s->vecs = (const float *)(p + vec_off);
    s->id_off = (const uint64_t *)(p + idx_off);
    s->ids = (const char *)(p + ids_off);
    s->ids_len = hash_off - ids_off;
    s->cap = get64(p + hash_off);
    if (s->cap == 0 || (s->cap & (s->cap - 1)) || s->cap < count || s->cap > (size - hash_off - 8) / 4 ||
        hash_off + 8 + s->cap * 4 != size)
        BAD("%s: hash index does not fit the file: truncated or corrupt", path);
    s->slots = (const uint32_t *)(p + hash_off + 8);
    if (s->id_off[0] != 0) BAD("%s: first id offset is not 0", path);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t a = s->id_off[i], b = s->id_off[i + 1];
        if (b <= a + 1 || b > s->ids_len || s->ids[b - 1] != '\0' || memchr(s->ids + a, '\0', b - a - 1))
            BAD("%s: id %llu is malformed", path, (unsigned long long)i);
    }
    for (uint64_t i = 0; i < s->cap; i++)
        if (s->slots[i] > count) BAD("%s: hash slot %llu points past the last row", path, (unsigned long long)i);
    s->model = sc_malloc(name_len + 1);
    if (!s->model) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(s->model, p + HEADER, name_len);
    s->model[name_len] = '\0';
#undef BAD
    *out = s;
    return SC_OK;
fail:
    sc_mmap_close(&s->map);
    sc_free(s);
    return rc;
}

void sc_vecstore_close(sc_vecstore *s) {
    if (!s) return;
    sc_mmap_close(&s->map);
    sc_free(s->model);
    sc_free(s);
}

int sc_vecstore_dim(const sc_vecstore *s) { return s->dim; }
int64_t sc_vecstore_count(const sc_vecstore *s) { return s->count; }
const char *sc_vecstore_model(const sc_vecstore *s) { return s->model; }
const char *sc_vecstore_id(const sc_vecstore *s, int64_t i) {
    return i >= 0 && i < s->count ? s->ids + s->id_off[i] : NULL;
}
const float *sc_vecstore_vec(const sc_vecstore *s, int64_t i) {
    return i >= 0 && i < s->count ? s->vecs + i * s->dim : NULL;
}

const float *sc_vecstore_get(const sc_vecstore *s, const char *id) {
    uint64_t h = XXH3_64bits(id, strlen(id)) & (s->cap - 1);
    for (uint64_t probes = 0; probes < s->cap; probes++, h = (h + 1) & (s->cap - 1)) {
        uint32_t r = s->slots[h];
        if (!r) return NULL;
        if (strcmp(s->ids + s->id_off[r - 1], id) == 0) return s->vecs + (int64_t)(r - 1) * s->dim;
    }
    return NULL;
}
