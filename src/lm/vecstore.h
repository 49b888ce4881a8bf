/* Vector store: entity id (string) -> float[dim], one file, mmap-able.
 *
 * Layout (little-endian, version 1):
 *   0   magic "SCVSTOR1"           8 bytes
 *   8   version u32, dim u32
 *   16  count u64
 *   24  name_len u32 (bytes 64 .. vec_off: model name, NUL-padded), reserved u32
 *   32  vec_off u64   (vectors, count * dim float32, 64-byte aligned)
 *   40  idx_off u64   (id offsets, (count + 1) u64 into the id bytes; 8-aligned)
 *   48  ids_off u64   (id bytes: each id NUL-terminated)
 *   56  hash_off u64  (hash index: hash_cap u64, then hash_cap u32 slots
 *                      holding row + 1 or 0, linear probing on XXH3_64(id))
 *   64  model name (name_len bytes), then the sections in the order above.
 * The file is written through sc_atomic_file (temporary + rename), so a
 * reader never sees a half-written store. */
#ifndef SC_LM_VECSTORE_H
#define SC_LM_VECSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SC_VECSTORE_MAGIC "SCVSTOR1"
#define SC_VECSTORE_VERSION 1u

typedef struct sc_vecstore_writer sc_vecstore_writer;
typedef struct sc_vecstore sc_vecstore;

/* Start a store at path for vectors of dim floats made by `model`. Vectors
 * stream to a temporary file; ids stay in memory until commit. */
int sc_vecstore_writer_open(sc_vecstore_writer **out, const char *path, const char *model, int dim, sc_error *err);
/* Append one entry. id: non-empty, at most 65535 bytes. A duplicate id is
 * reported at commit, naming the id. */
int sc_vecstore_writer_add(sc_vecstore_writer *w, const char *id, const float *vec, sc_error *err);
/* Write the index and header, fsync, rename into place; frees w whatever
 * the outcome (on failure the previous file at path is untouched). */
int sc_vecstore_writer_commit(sc_vecstore_writer *w, sc_error *err);
/* Discard everything written; frees w. */
void sc_vecstore_writer_abort(sc_vecstore_writer *w);

/* Open and validate a store (magic, version, sizes against the file size,
 * offsets and index in range); errors name the file. If expect_dim > 0, a
 * store of another dimension is an error. */
int sc_vecstore_open(sc_vecstore **out, const char *path, int expect_dim, sc_error *err);
void sc_vecstore_close(sc_vecstore *s);

int sc_vecstore_dim(const sc_vecstore *s);
int64_t sc_vecstore_count(const sc_vecstore *s);
const char *sc_vecstore_model(const sc_vecstore *s); /* NUL-terminated copy */
/* The vector of id, or NULL when absent (points into the mapping). */
const float *sc_vecstore_get(const sc_vecstore *s, const char *id);
/* Row i (0 <= i < count): its id and vector, in insertion order. */
const char *sc_vecstore_id(const sc_vecstore *s, int64_t i);
const float *sc_vecstore_vec(const sc_vecstore *s, int64_t i);

#endif
