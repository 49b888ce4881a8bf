/* The binary split format (.scd): writer, mmap reader, batches.
 * Layout documented in data/dataset.h. Dimension letters: N rows, F fields,
 * T text columns, W ids per row of a field, B rows in a batch. */
#include "data/dataset.h"

#include <sys/mman.h>
#include <unistd.h>

#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "base/alloc.h"
#include "data/datadir.h"

#define HDR_FIXED 64
#define FIELD_REC 88
#define NAME_LEN 64

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Bytes of the header before the first column, for F fields and T texts. */
static uint64_t header_bytes(uint64_t F, uint64_t T) {
    return HDR_FIXED + F * FIELD_REC + T * NAME_LEN + (2 + F + T) * 16;
}

static int field_is_ids(const sc_field_info *f) { return f->kind != SC_FIELD_NUMERIC; }

/* The checksum of dataset.h: the header (checksum field as 0) then the
 * digest of each column, as little-endian bytes. */
static uint64_t split_checksum(const uint8_t *header, size_t hb, const uint64_t *digest, int n_cols) {
    XXH3_state_t state, *st = &state;
    static const uint8_t zero[8] = {0};
    XXH3_INITSTATE(st);
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, header, 40);
    XXH3_64bits_update(st, zero, 8);
    XXH3_64bits_update(st, header + 48, hb - 48);
    for (int c = 0; c < n_cols; c++) {
        uint8_t b[8];
        put_u64(b, digest[c]);
        XXH3_64bits_update(st, b, 8);
    }
    return XXH3_64bits_digest(st);
}

/* ------------------------------------------------------------------ reader */

static void release_range(const void *p, size_t n);

/* Columns are hashed and checked OPEN_CHUNK bytes at a time, each chunk's
 * pages released once read. */
enum { OPEN_CHUNK = 32 << 20 };

/* XXH3-64 of [p, p + n) (the same value as XXH3_64bits), streamed so that
 * each chunk's mapped pages can leave the resident set once hashed. */
static uint64_t hash_and_release(const void *p, uint64_t n) {
    if (n <= OPEN_CHUNK) {
        uint64_t h = XXH3_64bits(p, n);
        release_range(p, n);
        return h;
    }
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    for (uint64_t o = 0; o < n; o += OPEN_CHUNK) {
        size_t k = n - o < OPEN_CHUNK ? (size_t)(n - o) : OPEN_CHUNK;
        XXH3_64bits_update(&state, (const uint8_t *)p + o, k);
        release_range((const uint8_t *)p + o, k);
    }
    return XXH3_64bits_digest(&state);
}

int sc_dataset_open(sc_dataset *ds, const char *path, sc_error *err) {
    memset(ds, 0, sizeof *ds);
    int rc = sc_mmap_open(&ds->map, path, err);
    if (rc) return rc;
    const uint8_t *d = ds->map.data;
    size_t size = ds->map.size;
    if (size < HDR_FIXED) {
        rc = sc_fail(err, SC_EFORMAT, "%s: truncated split file (%zu bytes, the header alone needs %d)", path,
                     size, HDR_FIXED);
        goto fail;
    }
    if (memcmp(d, SC_SCD_MAGIC, 8) != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: not a semctr split file (bad magic); create it with `semctr prepare`",
                     path);
        goto fail;
    }
    uint32_t version = get_u32(d + 8);
    if (version != SC_SCD_VERSION) {
        rc = sc_fail(err, SC_EVERSION, "%s: split file version %u, this build reads version %d; re-run `semctr prepare`",
                     path, version, SC_SCD_VERSION);
        goto fail;
    }
    ds->checksum = get_u64(d + 40);
    uint32_t F = get_u32(d + 12), T = get_u32(d + 36), flags = get_u32(d + 32);
    int64_t N = (int64_t)get_u64(d + 16), cap = (int64_t)get_u64(d + 24);
    if (F < 1 || F > SC_MAX_FIELDS || T > SC_MAX_FIELDS || N < 0 || cap < N || (flags & ~1u)) {
        rc = sc_fail(err, SC_EFORMAT, "%s: corrupt header (fields %u, texts %u, rows %lld, cap %lld, flags %u)", path,
                     F, T, (long long)N, (long long)cap, flags);
        goto fail;
    }
    uint64_t hb = header_bytes(F, T);
    if (size < hb) {
        rc = sc_fail(err, SC_EFORMAT, "%s: truncated split file (%zu bytes, header needs %llu)", path, size,
                     (unsigned long long)hb);
        goto fail;
    }
    ds->n_rows = N;
    ds->n_fields = (int)F;
    ds->fields = sc_calloc(F, sizeof *ds->fields);
    ds->ids = sc_calloc(F, sizeof *ds->ids);
    ds->values = sc_calloc(F, sizeof *ds->values);
    if (!ds->fields || !ds->ids || !ds->values) {
        rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (uint32_t f = 0; f < F; f++) {
        const uint8_t *r = d + HDR_FIXED + (size_t)f * FIELD_REC;
        sc_field_info *fi = &ds->fields[f];
        memcpy(fi->name, r, NAME_LEN);
        int32_t kind, width, pooling, share;
        memcpy(&kind, r + 64, 4);
        memcpy(&width, r + 68, 4);
        memcpy(&fi->vocab_size, r + 72, 8);
        memcpy(&pooling, r + 80, 4);
        memcpy(&share, r + 84, 4);
        fi->kind = kind;
        fi->width = width;
        fi->pooling = pooling;
        fi->share_with = share;
        int bad = memchr(fi->name, 0, NAME_LEN) == NULL || fi->name[0] == 0 || kind < 0 || kind > SC_FIELD_SEQUENCE ||
                  width < 1 || width > SC_MAX_WIDTH || fi->vocab_size < 1 || fi->vocab_size > INT32_MAX ||
                  (pooling != SC_POOL_MEAN && pooling != SC_POOL_SUM) || share < -1 || share >= (int32_t)F ||
                  share == (int32_t)f;
        if (!bad && (kind == SC_FIELD_CATEGORICAL || kind == SC_FIELD_NUMERIC) && width != 1) bad = 1;
        if (!bad && kind == SC_FIELD_NUMERIC && share != -1) bad = 1;
        if (bad) {
            fi->name[NAME_LEN - 1] = 0;
            rc = sc_fail(err, SC_EFORMAT, "%s: corrupt record of field %u ('%s')", path, f, fi->name);
            goto fail;
        }
    }
    for (uint32_t f = 0; f < F; f++) {
        int s = ds->fields[f].share_with;
        if (s >= 0 && (ds->fields[s].kind == SC_FIELD_NUMERIC || ds->fields[s].share_with != -1 ||
                       ds->fields[s].vocab_size != ds->fields[f].vocab_size)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: field '%s' shares the table of '%s', which cannot be shared", path,
                         ds->fields[f].name, ds->fields[s].name);
            goto fail;
        }
    }
    for (uint32_t t = 0; t < T; t++) {
        const uint8_t *nm = d + HDR_FIXED + (size_t)F * FIELD_REC + (size_t)t * NAME_LEN;
        if (!memchr(nm, 0, NAME_LEN)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: corrupt name of text column %u", path, t);
            goto fail;
        }
    }
    const uint8_t *cols = d + HDR_FIXED + (size_t)F * FIELD_REC + (size_t)T * NAME_LEN;
    uint64_t *digest = sc_calloc(2 + (size_t)F + T, sizeof *digest);
    if (!digest) {
        rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (uint32_t c = 0; c < 2 + F + T; c++) {
        uint64_t off = get_u64(cols + 16 * (size_t)c), bytes = get_u64(cols + 16 * (size_t)c + 8);
        uint64_t w = 1;
        if (c >= 2 && c < 2 + F) w = (uint64_t)ds->fields[c - 2].width;
        uint64_t need = (uint64_t)N * w * 4; /* N < 2^63, w <= 2^16: check below */
        if ((uint64_t)N > UINT64_MAX / 4 / w) need = UINT64_MAX;
        if (c == 1 && !(flags & 1)) need = 0;
        const char *what = c == 0 ? "label" : c == 1 ? "group" : c < 2 + F ? ds->fields[c - 2].name : "text";
        if (need && (off % 64 || off < hb || bytes < need || off > size || bytes > size - off)) {
            rc = sc_fail(err, SC_EFORMAT,
                         "%s: truncated or corrupt split file: column '%s' needs %llu bytes at offset %llu, file has %zu",
                         path, what, (unsigned long long)need, (unsigned long long)off, size);
            sc_free(digest);
            goto fail;
        }
        const void *p = need ? d + off : NULL;
        digest[c] = hash_and_release(p ? p : "", need);
        if (c == 0) ds->label = p;
        else if (c == 1) ds->group = p;
        else if (c < 2 + F) {
            if (field_is_ids(&ds->fields[c - 2])) ds->ids[c - 2] = p;
            else ds->values[c - 2] = p;
        }
    }
    uint64_t sum = split_checksum(d, (size_t)hb, digest, (int)(2 + F + T));
    sc_free(digest);
    if (sum != ds->checksum) {
        rc = sc_fail(err, SC_EFORMAT,
                     "%s: checksum mismatch (header %016llx, contents %016llx): the file was damaged or changed after "
                     "`semctr prepare` wrote it; re-run `semctr prepare`",
                     path, (unsigned long long)ds->checksum, (unsigned long long)sum);
        goto fail;
    }
    if ((rc = sc_datadir_check_file(path, ds->checksum, err))) goto fail;
    /* Ids index embedding tables: check every one once here. */
    for (uint32_t f = 0; f < F; f++) {
        const int32_t *ids = ds->ids[f];
        if (!ids) continue;
        int64_t n = N * ds->fields[f].width;
        uint32_t V = (uint32_t)ds->fields[f].vocab_size;
        uint32_t bad = 0;
        for (int64_t i0 = 0; i0 < n; i0 += OPEN_CHUNK / 4) { /* a chunk's pages leave once checked */
            int64_t i1 = n - i0 < OPEN_CHUNK / 4 ? n : i0 + OPEN_CHUNK / 4;
            for (int64_t i = i0; i < i1; i++) bad |= (uint32_t)ids[i] >= V;
            release_range(ids + i0, (size_t)(i1 - i0) * 4);
        }
        if (bad) {
            for (int64_t i = 0; i < n; i++)
                if ((uint32_t)ids[i] >= V) {
                    rc = sc_fail(err, SC_EFORMAT, "%s: field '%s' row %lld holds id %d outside [0, %lld)", path,
                                 ds->fields[f].name, (long long)(i / ds->fields[f].width), ids[i],
                                 (long long)ds->fields[f].vocab_size);
                    goto fail;
                }
        }
    }
    /* The checks above touched every page and let each chunk's leave the
     * resident set once done (they stay in the page cache), so that opening
     * a split larger than memory costs no memory, even at its peak (a 1.2 GB
     * split held 1.2 GB resident here before); this releases the pages at
     * the chunks' edges. */
    sc_dataset_release_rows(ds, 0, N);
    return SC_OK;
fail:
    sc_dataset_close(ds);
    return rc;
}

void sc_dataset_close(sc_dataset *ds) {
    sc_mmap_close(&ds->map);
    sc_free(ds->fields);
    sc_free((void *)ds->ids);
    sc_free((void *)ds->values);
    memset(ds, 0, sizeof *ds);
}

static const uint8_t *text_record(const sc_dataset *ds, int t, int col) {
    if (!ds->map.data || t < 0) return NULL;
    uint32_t T = get_u32(ds->map.data + 36);
    if ((uint32_t)t >= T) return NULL;
    size_t F = (size_t)ds->n_fields;
    if (col) return ds->map.data + HDR_FIXED + F * FIELD_REC + (size_t)T * NAME_LEN + (2 + F + (size_t)t) * 16;
    return ds->map.data + HDR_FIXED + F * FIELD_REC + (size_t)t * NAME_LEN;
}

int sc_dataset_n_text(const sc_dataset *ds) { return ds->map.data ? (int)get_u32(ds->map.data + 36) : 0; }

const int32_t *sc_dataset_text(const sc_dataset *ds, int t) {
    const uint8_t *r = text_record(ds, t, 1);
    if (!r || ds->n_rows == 0) return NULL;
    return (const int32_t *)(ds->map.data + get_u64(r)); /* validated by open */
}

const char *sc_dataset_text_name(const sc_dataset *ds, int t) { return (const char *)text_record(ds, t, 0); }

/* ----------------------------------------------------------------- batches */

int sc_batch_alloc(sc_batch *b, const sc_field_info *fields, int n_fields, int cap, sc_error *err) {
    memset(b, 0, sizeof *b);
    if (cap < 1 || n_fields < 0) return sc_fail(err, SC_EINVAL, "batch: bad size (cap %d, fields %d)", cap, n_fields);
    b->cap = cap;
    b->n_fields = n_fields;
    b->label = sc_calloc((size_t)cap, sizeof *b->label);
    b->group = sc_calloc((size_t)cap, sizeof *b->group);
    b->ids = sc_calloc((size_t)n_fields + 1, sizeof *b->ids);
    b->values = sc_calloc((size_t)n_fields + 1, sizeof *b->values);
    if (!b->label || !b->group || !b->ids || !b->values) goto oom;
    for (int f = 0; f < n_fields; f++) {
        if (field_is_ids(&fields[f])) {
            b->ids[f] = sc_calloc((size_t)cap * (size_t)fields[f].width, sizeof(int32_t));
            if (!b->ids[f]) goto oom;
        } else {
            b->values[f] = sc_calloc((size_t)cap, sizeof(float));
            if (!b->values[f]) goto oom;
        }
    }
    return SC_OK;
oom:
    sc_batch_free(b);
    return sc_fail(err, SC_ENOMEM, "batch: out of memory (%d rows, %d fields)", cap, n_fields);
}

void sc_batch_free(sc_batch *b) {
    if (b->ids)
        for (int f = 0; f < b->n_fields; f++) sc_free(b->ids[f]);
    if (b->values)
        for (int f = 0; f < b->n_fields; f++) sc_free(b->values[f]);
    sc_free(b->ids);
    sc_free(b->values);
    sc_free(b->label);
    sc_free(b->group);
    memset(b, 0, sizeof *b);
}

void sc_batch_gather(sc_batch *b, const sc_dataset *ds, const int64_t *rows, int n) {
    sc_batch_gather_part(b, ds, rows, 0, n);
}

void sc_batch_gather_part(sc_batch *b, const sc_dataset *ds, const int64_t *rows, int i0, int n) {
    if (n > b->cap) n = b->cap;
    if (i0 < 0) i0 = 0;
    for (int i = i0; i < n; i++) {
        int64_t r = rows[i];
        b->label[i] = ds->label[r];
        b->group[i] = ds->group ? ds->group[r] : 0;
    }
    for (int f = 0; f < ds->n_fields && f < b->n_fields; f++) {
        if (ds->ids[f] && b->ids[f]) {
            int W = ds->fields[f].width;
            const int32_t *src = ds->ids[f];
            int32_t *dst = b->ids[f];
            if (W == 1)
                for (int i = i0; i < n; i++) dst[i] = src[rows[i]];
            else
                for (int i = i0; i < n; i++) memcpy(dst + (size_t)i * W, src + rows[i] * W, (size_t)W * 4);
        } else if (ds->values[f] && b->values[f]) {
            const float *src = ds->values[f];
            for (int i = i0; i < n; i++) b->values[f][i] = src[rows[i]];
        }
    }
    b->n = n;
}

/* ------------------------------------------------------------------ writer */

struct sc_split_writer {
    sc_atomic_file file;
    int fd;
    int n_fields, n_text, has_group;
    sc_field_info *fields;
    char (*text_names)[NAME_LEN];
    int64_t cap, n;
    uint64_t *col_off; /* (2 + F + T) */
    uint64_t *col_bytes;
    XXH3_state_t **hash; /* (2 + F + T) each column's digest so far: columns are appended in row order */
};

/* Write buf at off of column c (hashed into the column's digest). */
static int pwrite_all(sc_split_writer *w, int c, const void *buf, size_t n, uint64_t off, sc_error *err) {
    if (c >= 0) XXH3_64bits_update(w->hash[c], buf, n);
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = pwrite(w->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return sc_fail(err, SC_EIO, "%s: write failed: %s", w->file.path, strerror(errno));
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return SC_OK;
}

int sc_split_writer_open(sc_split_writer **out, const char *path, const sc_field_info *fields, int n_fields,
                         int has_group, int n_text, const char *const *text_names, int64_t cap_rows,
                         sc_error *err) {
    *out = NULL;
    if (n_fields < 1 || n_fields > SC_MAX_FIELDS || n_text < 0 || n_text > SC_MAX_FIELDS || cap_rows < 0)
        return sc_fail(err, SC_EINVAL, "%s: bad split layout (%d fields, %d texts, %lld rows)", path, n_fields,
                       n_text, (long long)cap_rows);
    sc_split_writer *w = sc_calloc(1, sizeof *w);
    if (!w) return sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
    w->n_fields = n_fields;
    w->n_text = n_text;
    w->has_group = has_group != 0;
    w->cap = cap_rows;
    w->fd = -1;
    int nc = 2 + n_fields + n_text;
    w->fields = sc_calloc((size_t)n_fields, sizeof *w->fields);
    w->text_names = sc_calloc((size_t)n_text + 1, NAME_LEN);
    w->col_off = sc_calloc((size_t)nc, sizeof *w->col_off);
    w->col_bytes = sc_calloc((size_t)nc, sizeof *w->col_bytes);
    w->hash = sc_calloc((size_t)nc, sizeof *w->hash);
    int ok = w->fields && w->text_names && w->col_off && w->col_bytes && w->hash;
    for (int c = 0; ok && c < nc; c++) ok = (w->hash[c] = XXH3_createState()) != NULL && XXH3_64bits_reset(w->hash[c]) == XXH_OK;
    if (!ok) {
        sc_split_writer_abort(w);
        return sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
    }
    memcpy(w->fields, fields, (size_t)n_fields * sizeof *fields);
    for (int t = 0; t < n_text; t++) snprintf(w->text_names[t], NAME_LEN, "%s", text_names[t]);
    uint64_t off = align64(header_bytes((uint64_t)n_fields, (uint64_t)n_text));
    for (int c = 0; c < nc; c++) {
        uint64_t W = 1;
        if (c >= 2 && c < 2 + n_fields) W = (uint64_t)fields[c - 2].width;
        uint64_t bytes = (uint64_t)cap_rows * W * 4;
        if (c == 1 && !w->has_group) bytes = 0;
        w->col_off[c] = off;
        w->col_bytes[c] = bytes;
        off = align64(off + bytes);
    }
    int rc = sc_atomic_open(&w->file, path, err);
    if (rc) {
        sc_split_writer_abort(w);
        return rc;
    }
    w->fd = fileno(w->file.fp);
    if (ftruncate(w->fd, (off_t)off) != 0) {
        rc = sc_fail(err, SC_EIO, "%s: cannot size file to %llu bytes: %s", path, (unsigned long long)off,
                     strerror(errno));
        sc_split_writer_abort(w);
        return rc;
    }
    *out = w;
    return SC_OK;
}

int sc_split_writer_append(sc_split_writer *w, const sc_batch *b, const int32_t *text, sc_error *err) {
    int n = b->n;
    if (n <= 0) return SC_OK;
    if (w->n + n > w->cap)
        return sc_fail(err, SC_EINTERNAL, "%s: more rows than reserved (%lld)", w->file.path, (long long)w->cap);
    int rc = pwrite_all(w, 0, b->label, (size_t)n * 4, w->col_off[0] + (uint64_t)w->n * 4, err);
    if (!rc && w->has_group) rc = pwrite_all(w, 1, b->group, (size_t)n * 4, w->col_off[1] + (uint64_t)w->n * 4, err);
    for (int f = 0; !rc && f < w->n_fields; f++) {
        uint64_t W = (uint64_t)w->fields[f].width;
        const void *src = field_is_ids(&w->fields[f]) ? (const void *)b->ids[f] : (const void *)b->values[f];
        rc = pwrite_all(w, 2 + f, src, (size_t)n * W * 4, w->col_off[2 + f] + (uint64_t)w->n * W * 4, err);
    }
    if (w->n_text && !rc) {
        /* text arrives row-major (B, T); the file is column-major */
        int32_t buf[4096];
        for (int t = 0; !rc && t < w->n_text; t++)
            for (int i0 = 0; !rc && i0 < n; i0 += 4096) {
                int m = n - i0 < 4096 ? n - i0 : 4096;
                for (int i = 0; i < m; i++) buf[i] = text ? text[(size_t)(i0 + i) * w->n_text + t] : -1;
                rc = pwrite_all(w, 2 + w->n_fields + t, buf, (size_t)m * 4,
                                w->col_off[2 + w->n_fields + t] + (uint64_t)(w->n + i0) * 4, err);
            }
    }
    if (!rc) w->n += n;
    return rc;
}

int64_t sc_split_writer_rows(const sc_split_writer *w) { return w->n; }

static void writer_free(sc_split_writer *w) {
    if (w->hash)
        for (int c = 0; c < 2 + w->n_fields + w->n_text; c++) XXH3_freeState(w->hash[c]);
    sc_free(w->hash);
    sc_free(w->fields);
    sc_free(w->text_names);
    sc_free(w->col_off);
    sc_free(w->col_bytes);
    sc_free(w);
}

int sc_split_writer_commit(sc_split_writer *w, uint64_t *checksum, sc_error *err) {
    int F = w->n_fields, T = w->n_text, nc = 2 + F + T;
    size_t hb = (size_t)header_bytes((uint64_t)F, (uint64_t)T);
    uint8_t *h = sc_calloc(1, hb);
    if (!h) {
        sc_split_writer_abort(w);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    memcpy(h, SC_SCD_MAGIC, 8);
    put_u32(h + 8, SC_SCD_VERSION);
    put_u32(h + 12, (uint32_t)F);
    put_u64(h + 16, (uint64_t)w->n);
    put_u64(h + 24, (uint64_t)w->cap);
    put_u32(h + 32, w->has_group ? 1u : 0u);
    put_u32(h + 36, (uint32_t)T);
    for (int f = 0; f < F; f++) {
        uint8_t *r = h + HDR_FIXED + (size_t)f * FIELD_REC;
        const sc_field_info *fi = &w->fields[f];
        memcpy(r, fi->name, NAME_LEN);
        r[NAME_LEN - 1] = 0;
        int32_t v[2] = {fi->kind, fi->width};
        memcpy(r + 64, v, 8);
        memcpy(r + 72, &fi->vocab_size, 8);
        int32_t v2[2] = {fi->pooling, fi->share_with};
        memcpy(r + 80, v2, 8);
    }
    for (int t = 0; t < T; t++) memcpy(h + HDR_FIXED + (size_t)F * FIELD_REC + (size_t)t * NAME_LEN, w->text_names[t], NAME_LEN);
    uint8_t *cols = h + HDR_FIXED + (size_t)F * FIELD_REC + (size_t)T * NAME_LEN;
    uint64_t *digest = sc_calloc((size_t)nc, sizeof *digest);
    if (!digest) {
        sc_free(h);
        sc_split_writer_abort(w);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int c = 0; c < nc; c++) {
        put_u64(cols + 16 * (size_t)c, w->col_off[c]);
        put_u64(cols + 16 * (size_t)c + 8, w->col_bytes[c]);
        digest[c] = XXH3_64bits_digest(w->hash[c]);
    }
    uint64_t sum = split_checksum(h, hb, digest, nc);
    sc_free(digest);
    put_u64(h + 40, sum);
    if (checksum) *checksum = sum;
    int rc = pwrite_all(w, -1, h, hb, 0, err);
    sc_free(h);
    if (rc) {
        sc_split_writer_abort(w);
        return rc;
    }
    rc = sc_atomic_commit(&w->file, err);
    writer_free(w);
    return rc;
}

void sc_split_writer_abort(sc_split_writer *w) {
    if (!w) return;
    sc_atomic_abort(&w->file);
    writer_free(w);
}

/* madvise the whole pages inside [p, p + n). */
static void release_range(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void sc_dataset_release_rows(const sc_dataset *ds, int64_t row0, int64_t row1) {
    if (!ds->map.data || row0 >= row1) return;
    size_t n = (size_t)(row1 - row0);
    release_range(ds->label + row0, n * sizeof(float));
    if (ds->group) release_range(ds->group + row0, n * sizeof(int32_t));
    for (int f = 0; f < ds->n_fields; f++) {
        if (ds->ids[f]) release_range(ds->ids[f] + row0 * ds->fields[f].width, n * ds->fields[f].width * sizeof(int32_t));
        else if (ds->values[f]) release_range(ds->values[f] + row0, n * sizeof(float));
    }
}
