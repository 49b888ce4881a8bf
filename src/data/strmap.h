/* An open-addressing hash map from byte strings to int64 values, for
 * vocabularies, join keys and value counts. Keys are copied into an arena
 * owned by the map (one allocation per 1 MiB of keys, never one per key);
 * entries keep their insertion order, so iteration is deterministic.
 * Linear probing, power-of-two capacity, load factor <= 0.5. */
#ifndef SC_DATA_STRMAP_H
#define SC_DATA_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_strmap {
    uint64_t *slots;     /* (cap) low 32 bits: entry index + 1 (0 = empty); high 32: the hash's top bits */
    uint64_t *hash;      /* (n) hash of entry i */
    const char **key;    /* (n) NUL-terminated copies in the arena */
    uint32_t *len;       /* (n) */
    int64_t *val;        /* (n) */
    size_t n, ent_cap, cap;
    char **chunks;       /* arena */
    size_t n_chunks, chunk_used, chunk_size;
} sc_strmap;

/* An empty map; nothing is allocated until the first insert. */
void sc_strmap_init(sc_strmap *m);
void sc_strmap_free(sc_strmap *m);
/* Index of key in insertion order, or -1. */
int64_t sc_strmap_find(const sc_strmap *m, const char *key, size_t len);
/* Index of key, inserting it with value init when absent (*inserted = 1).
 * Returns -1 on allocation failure or when the map holds 2^31 - 1 keys. */
int64_t sc_strmap_insert(sc_strmap *m, const char *key, size_t len, int64_t init, int *inserted);

#endif
