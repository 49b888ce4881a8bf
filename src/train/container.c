#include "train/container.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/util.h"

static const char MAGIC[8] = {'S', 'C', 'T', 'R', 'M', 'O', 'D', 'L'};
static const char END_MAGIC[8] = {'S', 'C', 'T', 'R', 'E', 'N', 'D', '\0'};
#define ALIGN 64

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

void sc_container_writer_init(sc_container_writer *w) { memset(w, 0, sizeof *w); }

void sc_container_writer_free(sc_container_writer *w) {
    sc_free(w->entries);
    memset(w, 0, sizeof *w);
}

int sc_container_add(sc_container_writer *w, const char *name, int is_f32, const void *data,
                     uint64_t bytes, sc_error *err) {
    if (strlen(name) >= sizeof w->entries[0].name)
        return sc_fail(err, SC_EINVAL, "container entry name too long: %s", name);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name))
            return sc_fail(err, SC_EINTERNAL, "container entry '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        sc_container_entry *e = sc_realloc(w->entries, (size_t)cap * sizeof *e);
        if (!e) return sc_fail(err, SC_ENOMEM, "out of memory");
        w->entries = e;
        w->cap = cap;
    }
    sc_container_entry *e = &w->entries[w->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->is_f32 = is_f32;
    e->data = data;
    e->bytes = bytes;
    return SC_OK;
}

int sc_container_add_stream(sc_container_writer *w, const char *name, int is_f32, uint64_t bytes,
                            sc_container_next_fn next, void *ctx, sc_error *err) {
    int rc = sc_container_add(w, name, is_f32, NULL, bytes, err);
    if (!rc) {
        w->entries[w->n - 1].next = next;
        w->entries[w->n - 1].next_ctx = ctx;
    }
    return rc;
}

int sc_container_write(sc_container_writer *w, const char *path, cJSON *header, sc_error *err) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return sc_fail(err, SC_ENOMEM, "out of memory");
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", w->entries[i].name);
        cJSON_AddStringToObject(o, "dtype", w->entries[i].is_f32 ? "f32" : "bytes");
        cJSON_AddNumberToObject(o, "offset", (double)off);
        cJSON_AddNumberToObject(o, "bytes", (double)w->entries[i].bytes);
        cJSON_AddItemToArray(arr, o);
        off = align_up(off + w->entries[i].bytes);
    }
    cJSON_DeleteItemFromObject(header, "entries");
    cJSON_AddItemToObject(header, "entries", arr);
    char *json = cJSON_PrintUnformatted(header);
    cJSON_DeleteItemFromObject(header, "entries");
    if (!json) return sc_fail(err, SC_ENOMEM, "out of memory");

    sc_atomic_file f;
    int rc = sc_atomic_open(&f, path, err);
    if (rc) {
        free(json);
        return rc;
    }
    uint64_t hlen = strlen(json);
    uint32_t ver[2] = {SC_CONTAINER_VERSION, 0};
    static const uint8_t zeros[ALIGN];
    uint64_t pre = 24 + hlen, pad = align_up(pre) - pre;
    XXH3_state_t *hs = XXH3_createState();
    if (!hs) {
        free(json);
        sc_atomic_abort(&f);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    XXH3_64bits_reset(hs);
    /* every byte before the trailer goes through the checksum */
#define PUT(p, n) do { if (!rc) rc = sc_atomic_write(&f, (p), (n), err); XXH3_64bits_update(hs, (p), (n)); } while (0)
    PUT(MAGIC, 8);
    PUT(ver, 8);
    PUT(&hlen, 8);
    PUT(json, hlen);
    PUT(zeros, pad);
    free(json);
    uint64_t pos = 0;
    for (int i = 0; i < w->n && !rc; i++) {
        const sc_container_entry *e = &w->entries[i];
        if (!e->next) PUT(e->data, e->bytes);
        for (uint64_t left = e->next ? e->bytes : 0; left && !rc;) { /* a streamed entry, as it comes */
            const void *p;
            uint64_t n = 0;
            rc = e->next(e->next_ctx, &p, &n, err);
            if (!rc && (n == 0 || n > left))
                rc = sc_fail(err, SC_EINTERNAL, "container entry '%s': its source gave %llu bytes with %llu left",
                             e->name, (unsigned long long)n, (unsigned long long)left);
            if (!rc) PUT(p, n);
            left -= n;
        }
        pos += w->entries[i].bytes;
        uint64_t p = align_up(pos) - pos;
        if (p && i + 1 < w->n) {
            PUT(zeros, p);
            pos += p;
        }
    }
#undef PUT
    uint64_t sum = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    if (!rc) rc = sc_atomic_write(&f, &sum, 8, err);
    if (!rc) rc = sc_atomic_write(&f, END_MAGIC, 8, err);
    if (rc) {
        sc_atomic_abort(&f);
        return rc;
    }
    return sc_atomic_commit(&f, err);
}

void sc_container_close(sc_container *c) {
    sc_mmap_close(&c->map);
    cJSON_Delete(c->header);
    sc_free(c->entries);
    c->header = NULL;
    c->entries = NULL;
    c->n = 0;
}

int sc_container_open(sc_container *c, const char *path, sc_error *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    int rc = sc_mmap_open(&c->map, path, err);
    if (rc) return rc;
    const uint8_t *d = c->map.data;
    uint64_t size = c->map.size;
#define BAD(...) do { sc_fail(err, SC_EFORMAT, __VA_ARGS__); sc_container_close(c); return SC_EFORMAT; } while (0)
    if (size < 40 || memcmp(d, MAGIC, 8) != 0)
        BAD("%s: not a semctr model file (bad magic number)", path);
    uint32_t ver;
    memcpy(&ver, d + 8, 4);
    if (ver != 1 && ver != SC_CONTAINER_VERSION) {
        sc_fail(err, SC_EVERSION,
                "%s: model file format version %u, this semctr reads versions 1 and %d; retrain or export it with a "
                "matching semctr",
                path, ver, SC_CONTAINER_VERSION);
        sc_container_close(c);
        return SC_EVERSION;
    }
    if (memcmp(d + size - 8, END_MAGIC, 8) != 0) BAD("%s: file is truncated (end marker missing)", path);
    /* The checksum first: nothing the header says is trusted before it
     * matches (version 1 covered the data section only). */
    uint64_t hlen, sum;
    memcpy(&hlen, d + 16, 8);
    memcpy(&sum, d + size - 16, 8);
    if (ver >= 2 && XXH3_64bits(d, size - 16) != sum)
        BAD("%s: checksum mismatch: the file is corrupted or was edited (header or data)", path);
    if (hlen > size - 40) BAD("%s: header length %llu exceeds the file (truncated?)", path, (unsigned long long)hlen);
    uint64_t data_start = align_up(24 + hlen);
    if (data_start > size - 16) BAD("%s: file is truncated (the data section is missing)", path);
    uint64_t data_len = size - 16 - data_start;
    if (ver == 1) {
        if (XXH3_64bits(d + data_start, data_len) != sum) BAD("%s: checksum mismatch: the file is corrupted", path);
        sc_info("%s: model file format version 1: its header is not covered by the checksum "
                "(semctr export rewrites it as version %d)", path, SC_CONTAINER_VERSION);
    }
    c->header = cJSON_ParseWithLength((const char *)d + 24, hlen);
    if (!c->header || !cJSON_IsObject(c->header)) BAD("%s: header is not valid JSON", path);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(c->header, "entries");
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n > SC_CONTAINER_MAX_ENTRIES) BAD("%s: header has no valid 'entries' list", path);
    c->entries = sc_calloc((size_t)(n ? n : 1), sizeof *c->entries);
    if (!c->entries) {
        sc_container_close(c);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    int i = 0;
    cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "dtype");
        cJSON *of = cJSON_GetObjectItemCaseSensitive(o, "offset");
        cJSON *by = cJSON_GetObjectItemCaseSensitive(o, "bytes");
        if (!cJSON_IsString(nm) || !cJSON_IsString(dt) || !cJSON_IsNumber(of) || !cJSON_IsNumber(by))
            BAD("%s: entry %d of the header is malformed", path, i);
        double off = of->valuedouble, bytes = by->valuedouble;
        if (off < 0 || bytes < 0 || off + bytes > (double)data_len || off != (double)(uint64_t)off ||
            bytes != (double)(uint64_t)bytes)
            BAD("%s: entry '%s' lies outside the file", path, nm->valuestring);
        sc_container_entry *e = &c->entries[i];
        snprintf(e->name, sizeof e->name, "%s", nm->valuestring);
        e->is_f32 = !strcmp(dt->valuestring, "f32");
        if (!e->is_f32 && strcmp(dt->valuestring, "bytes")) BAD("%s: entry '%s' has unknown dtype '%s'", path, e->name, dt->valuestring);
        if (e->is_f32 && ((uint64_t)bytes % 4 || (uint64_t)off % 4)) BAD("%s: f32 entry '%s' is misaligned", path, e->name);
        e->data = d + data_start + (uint64_t)off;
        e->bytes = (uint64_t)bytes;
        i++;
    }
    c->n = i;
#undef BAD
    return SC_OK;
}

const sc_container_entry *sc_container_find(const sc_container *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->entries[i].name, name)) return &c->entries[i];
    return NULL;
}
