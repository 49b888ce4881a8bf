/* Files: read-only mmap, whole-file reads, and atomic writes.
 *
 * Every file semctr writes goes through sc_atomic_file: bytes go to
 * "<path>.tmp.<pid>", which is fsync'ed and renamed over <path> on commit, so
 * a crash or an error never leaves a half-written artefact, and a file that
 * was there before stays intact until the new one is complete. A writer
 * killed before its rename leaves its temporary behind; the next
 * sc_atomic_open of the same path removes it once its process is gone. */
#ifndef SC_BASE_FILE_H
#define SC_BASE_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

typedef struct sc_mmap {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
} sc_mmap;

int sc_mmap_open(sc_mmap *m, const char *path, sc_error *err);
void sc_mmap_close(sc_mmap *m);

/* Read a whole file into a NUL-terminated buffer (caller frees with sc_free). */
int sc_read_file(const char *path, char **out, size_t *out_len, sc_error *err);

typedef struct sc_atomic_file {
    FILE *fp;          /* write through this */
    char path[4096];   /* final name */
    char tmp[4200];    /* temporary name */
} sc_atomic_file;

int sc_atomic_open(sc_atomic_file *f, const char *path, sc_error *err);
/* Flush, fsync and rename into place. On failure the temporary is removed. */
int sc_atomic_commit(sc_atomic_file *f, sc_error *err);
/* Discard the temporary; the previous file at path (if any) is untouched. */
void sc_atomic_abort(sc_atomic_file *f);
/* fwrite that reports errors with the file's name. */
int sc_atomic_write(sc_atomic_file *f, const void *buf, size_t n, sc_error *err);

/* mkdir -p. */
int sc_mkdirs(const char *path, sc_error *err);
int sc_file_exists(const char *path);

#endif
