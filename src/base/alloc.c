#include "base/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* A 64-byte header in front of each block keeps the size (for counting) and
 * keeps the user pointer 64-byte aligned, so sc_malloc and sc_aligned_alloc
 * share one sc_free. */
#define HDR 64

static _Atomic int64_t live_bytes;

void *sc_malloc(size_t n) {
    if (n > SIZE_MAX - HDR) return NULL;
    unsigned char *p = NULL;
    if (posix_memalign((void **)&p, HDR, n + HDR) != 0) return NULL;
    memcpy(p, &n, sizeof n);
    atomic_fetch_add(&live_bytes, (int64_t)n);
    return p + HDR;
}

void *sc_aligned_alloc(size_t n) { return sc_malloc(n); }

void *sc_calloc(size_t count, size_t size) {
    size_t n;
    if (sc_mul_size(count, size, &n)) return NULL;
    void *p = sc_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void sc_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub(&live_bytes, (int64_t)n);
    free(base);
}

void *sc_realloc(void *p, size_t n) {
    if (!p) return sc_malloc(n);
    size_t old;
    memcpy(&old, (unsigned char *)p - HDR, sizeof old);
    void *q = sc_malloc(n);
    if (!q) return NULL;
    memcpy(q, p, old < n ? old : n);
    sc_free(p);
    return q;
}

char *sc_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sc_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int64_t sc_alloc_live_bytes(void) { return atomic_load(&live_bytes); }

int64_t sc_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

int sc_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

int sc_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}
