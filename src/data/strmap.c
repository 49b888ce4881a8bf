#include "data/strmap.h"

#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"

void sc_strmap_init(sc_strmap *m) { memset(m, 0, sizeof *m); }

void sc_strmap_free(sc_strmap *m) {
    sc_free(m->slots);
    sc_free(m->hash);
    sc_free((void *)m->key);
    sc_free(m->len);
    sc_free(m->val);
    for (size_t i = 0; i < m->n_chunks; i++) sc_free(m->chunks[i]);
    sc_free(m->chunks);
    memset(m, 0, sizeof *m);
}

static uint64_t hash_bytes(const char *key, size_t len) { return XXH3_64bits(key, len); }

int64_t sc_strmap_find(const sc_strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint64_t h = hash_bytes(key, len);
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    size_t mask = m->cap - 1;
    for (size_t s = (size_t)h & mask;; s = (s + 1) & mask) {
        uint64_t v = m->slots[s];
        if (!v) return -1;
        if ((v & 0xFFFFFFFF00000000ull) != tag) continue;
        uint32_t e = (uint32_t)v - 1;
        if (m->len[e] == len && memcmp(m->key[e], key, len) == 0) return e;
    }
}

static int grow_slots(sc_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *slots = sc_calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t e = 0; e < m->n; e++) {
        size_t s = (size_t)m->hash[e] & (cap - 1);
        while (slots[s]) s = (s + 1) & (cap - 1);
        slots[s] = (m->hash[e] & 0xFFFFFFFF00000000ull) | ((uint64_t)e + 1);
    }
    sc_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

static int grow_entries(sc_strmap *m) {
    size_t cap = m->ent_cap ? m->ent_cap * 2 : 32;
    uint64_t *h = sc_realloc(m->hash, cap * sizeof *h);
    if (!h) return -1;
    m->hash = h;
    const char **k = sc_realloc((void *)m->key, cap * sizeof *k);
    if (!k) return -1;
    m->key = k;
    uint32_t *l = sc_realloc(m->len, cap * sizeof *l);
    if (!l) return -1;
    m->len = l;
    int64_t *v = sc_realloc(m->val, cap * sizeof *v);
    if (!v) return -1;
    m->val = v;
    m->ent_cap = cap;
    return 0;
}

static char *arena_copy(sc_strmap *m, const char *key, size_t len) {
    if (!m->n_chunks || m->chunk_used + len + 1 > m->chunk_size) {
        size_t size = len + 1 > (1u << 20) ? len + 1 : (1u << 20);
        char **ch = sc_realloc(m->chunks, (m->n_chunks + 1) * sizeof *ch);
        if (!ch) return NULL;
        m->chunks = ch;
        ch[m->n_chunks] = sc_malloc(size);
        if (!ch[m->n_chunks]) return NULL;
        m->n_chunks++;
        m->chunk_used = 0;
        m->chunk_size = size;
    }
    char *p = m->chunks[m->n_chunks - 1] + m->chunk_used;
    if (len) memcpy(p, key, len);
    p[len] = 0;
    m->chunk_used += len + 1;
    return p;
}

int64_t sc_strmap_insert(sc_strmap *m, const char *key, size_t len, int64_t init, int *inserted) {
    if (inserted) *inserted = 0;
    if (len > UINT32_MAX) return -1;
    if ((m->n + 1) * 2 > m->cap && grow_slots(m)) return -1;
    uint64_t h = hash_bytes(key, len);
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    size_t mask = m->cap - 1, s;
    for (s = (size_t)h & mask; m->slots[s]; s = (s + 1) & mask) {
        if ((m->slots[s] & 0xFFFFFFFF00000000ull) != tag) continue;
        uint32_t e = (uint32_t)m->slots[s] - 1;
        if (m->len[e] == len && memcmp(m->key[e], key, len) == 0) return e;
    }
    if (m->n >= INT32_MAX - 1) return -1;
    if (m->n == m->ent_cap && grow_entries(m)) return -1;
    char *k = arena_copy(m, key, len);
    if (!k) return -1;
    size_t e = m->n++;
    m->hash[e] = h;
    m->key[e] = k;
    m->len[e] = (uint32_t)len;
    m->val[e] = init;
    m->slots[s] = tag | ((uint64_t)e + 1);
    if (inserted) *inserted = 1;
    return (int64_t)e;
}
