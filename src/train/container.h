/* The container file format behind model files and training checkpoints:
 * a JSON header plus named binary entries, mmap-able, written atomically.
 *
 *   offset 0   magic "SCTRMODL" (8 bytes)
 *   8          u32 format version (SC_CONTAINER_VERSION), u32 reserved = 0
 *   16         u64 header length H
 *   24         H bytes of UTF-8 JSON: {"entries": [{"name", "dtype", "offset", "bytes"}...], ...}
 *   ...        zero padding to a multiple of 64: the data section starts here
 *   data       entries, each at a 64-byte aligned offset relative to the data section
 *   end - 16   u64 XXH3-64 of every byte before it (offset 0 to end - 16),
 *              then the end magic "SCTREND\0"
 *
 * The trailer makes a truncated or corrupted file fail to open with a message
 * instead of loading garbage weights: the checksum covers the header too, so
 * an edited entry offset or network config is refused like a flipped weight.
 * Version 1 files (before the header was covered: their checksum is of the
 * data section alone) still open; `semctr export` rewrites one as version 2.
 * dtype is "f32" (little-endian float32) or "bytes". Everything but
 * "entries" in the header belongs to the caller. */
#ifndef SC_TRAIN_CONTAINER_H
#define SC_TRAIN_CONTAINER_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/file.h"

#define SC_CONTAINER_VERSION 2 /* written; 1 is still read */
#define SC_CONTAINER_MAX_ENTRIES 4096

/* A streamed entry's source: the next bytes of the entry (*data valid until
 * the next call; at least one byte, at most what is left). */
typedef int (*sc_container_next_fn)(void *ctx, const void **data, uint64_t *bytes, sc_error *err);

typedef struct sc_container_entry {
    char name[128];
    int is_f32;          /* 1: float32 tensor, 0: raw bytes */
    const void *data;
    uint64_t bytes;
    sc_container_next_fn next; /* writer only: NULL, or where the bytes come from as they are written */
    void *next_ctx;
} sc_container_entry;

/* Writer: entries point at caller memory that must stay valid until commit. */
typedef struct sc_container_writer {
    sc_container_entry *entries;
    int n, cap;
} sc_container_writer;

void sc_container_writer_init(sc_container_writer *w);
int sc_container_add(sc_container_writer *w, const char *name, int is_f32, const void *data,
                     uint64_t bytes, sc_error *err);
/* An entry of `bytes` bytes that next(ctx, ...) produces piece by piece
 * while the file is written, so that the writer never holds it whole (a
 * table gathered from MPI ranks). */
int sc_container_add_stream(sc_container_writer *w, const char *name, int is_f32, uint64_t bytes,
                            sc_container_next_fn next, void *ctx, sc_error *err);
/* Write header (caller's JSON object, which gets an "entries" array added and
 * stays owned by the caller) and entries to path atomically. */
int sc_container_write(sc_container_writer *w, const char *path, cJSON *header, sc_error *err);
void sc_container_writer_free(sc_container_writer *w);

/* Reader: the file stays mmap'ed; entry data points into it. */
typedef struct sc_container {
    sc_mmap map;
    cJSON *header;               /* owned; parsed JSON header */
    sc_container_entry *entries; /* owned array */
    int n;
    char path[512];
} sc_container;

/* Validate magic, version, checksum, header and every entry's bounds. */
int sc_container_open(sc_container *c, const char *path, sc_error *err);
void sc_container_close(sc_container *c);
/* NULL when absent. */
const sc_container_entry *sc_container_find(const sc_container *c, const char *name);

#endif
