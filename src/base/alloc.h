/* Allocation through one wrapper that counts live bytes (as Redis's zmalloc).
 * Returns NULL on failure like malloc; callers report SC_ENOMEM. */
#ifndef SC_BASE_ALLOC_H
#define SC_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sc_malloc(size_t n);
void *sc_calloc(size_t count, size_t size); /* checks count*size for overflow */
void *sc_realloc(void *p, size_t n);
void sc_free(void *p);
char *sc_strdup(const char *s);
/* 64-byte aligned (for SIMD and GEMM); free with sc_free. */
void *sc_aligned_alloc(size_t n);

/* Bytes currently allocated through these functions. */
int64_t sc_alloc_live_bytes(void);
/* Peak resident set size of the process in bytes (from getrusage). */
int64_t sc_peak_rss_bytes(void);

/* Overflow-checked size arithmetic: returns 0 and sets *out, or -1. */
int sc_mul_size(size_t a, size_t b, size_t *out);
int sc_add_size(size_t a, size_t b, size_t *out);

#endif
