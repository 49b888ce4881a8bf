#include "data/csv.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"

int sc_line_reader_open(sc_line_reader *r, const char *path, sc_error *err) {
    memset(r, 0, sizeof *r);
    r->fd = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->fd = open(path, O_RDONLY);
    if (r->fd < 0)
        return sc_fail(err, errno == ENOENT ? SC_ENOTFOUND : SC_EIO, "%s: cannot open: %s", path, strerror(errno));
    r->cap = 1 << 22;
    r->buf = sc_malloc(r->cap);
    if (!r->buf) {
        close(r->fd);
        r->fd = -1;
        return sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
    }
    return SC_OK;
}

void sc_line_reader_close(sc_line_reader *r) {
    if (r->fd >= 0) close(r->fd);
    sc_free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

int sc_line_reader_next(sc_line_reader *r, char **line, size_t *len, sc_error *err) {
    for (;;) {
        char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
        if (nl || (r->eof && r->end > r->start)) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            *line = r->buf + r->start;
            r->start += n + (nl != NULL);
            if (n && (*line)[n - 1] == '\r') n--;
            *len = n;
            r->line_no++;
            return 1;
        }
        if (r->eof) return 0;
        /* move the partial line to the front, grow when it fills the buffer */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) {
            if (r->cap >= ((size_t)1 << 31))
                return sc_fail(err, SC_EFORMAT, "%s:%lld: line longer than 2 GiB", r->path, (long long)r->line_no + 1);
            char *nb = sc_realloc(r->buf, r->cap * 2);
            if (!nb) return sc_fail(err, SC_ENOMEM, "%s: out of memory", r->path);
            r->buf = nb;
            r->cap *= 2;
        }
        ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (k < 0) {
            if (errno == EINTR) continue;
            return sc_fail(err, SC_EIO, "%s: read failed: %s", r->path, strerror(errno));
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
        r->bytes_read += k;
    }
}

int sc_csv_split(char *line, size_t len, const char *delim, size_t dlen, char quote, sc_cell *cells, int max_cells) {
    int n = 0;
    size_t i = 0;
    char d0 = delim[0];
    for (;;) {
        const char *start;
        size_t clen;
        if (quote && i < len && line[i] == quote) {
            /* quoted cell: unquote in place */
            size_t w = i + 1, r = i + 1;
            start = line + w;
            for (;;) {
                if (r >= len) return -1;
                if (line[r] == quote) {
                    if (r + 1 < len && line[r + 1] == quote) {
                        line[w++] = quote;
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                line[w++] = line[r++];
            }
            clen = w - (i + 1);
            i = r;
            if (i < len && !(len - i >= dlen && memcmp(line + i, delim, dlen) == 0)) return -1;
        } else {
            start = line + i;
            size_t j = i;
            if (dlen == 1) {
                const char *p = memchr(line + i, d0, len - i);
                j = p ? (size_t)(p - line) : len;
            } else {
                for (;;) {
                    const char *p = j < len ? memchr(line + j, d0, len - j) : NULL;
                    if (!p) {
                        j = len;
                        break;
                    }
                    j = (size_t)(p - line);
                    if (len - j >= dlen && memcmp(p, delim, dlen) == 0) break;
                    j++;
                }
            }
            clen = j - i;
            i = j;
        }
        if (n < max_cells) {
            cells[n].p = start;
            cells[n].len = (uint32_t)clen;
        }
        n++;
        if (i >= len) break;
        i += dlen; /* at a delimiter */
        if (i >= len) {
            /* trailing delimiter: one more, empty cell */
            if (n < max_cells) {
                cells[n].p = line + len;
                cells[n].len = 0;
            }
            n++;
            break;
        }
    }
    return n;
}

size_t sc_latin1_to_utf8(const char *src, size_t len, char *dst) {
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x80) dst[w++] = (char)c;
        else {
            dst[w++] = (char)(0xC0 | (c >> 6));
            dst[w++] = (char)(0x80 | (c & 0x3F));
        }
    }
    return w;
}

int sc_utf8_valid(const char *s, size_t len, size_t *bad_at) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            if (v & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else goto bad;
        if (len - i <= n) goto bad;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += n + 1;
    }
    return 1;
bad:
    if (bad_at) *bad_at = i;
    return 0;
}

int sc_parse_double(const char *p, size_t len, double *out) {
    while (len && (*p == ' ' || *p == '\t')) p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    if (!len || len > 63) return -1;
    /* fast path: plain integers */
    size_t i = 0;
    int neg = 0;
    if (p[0] == '-' || p[0] == '+') neg = p[0] == '-', i = 1;
    if (i < len && len - i <= 15) {
        int64_t v = 0;
        size_t j = i;
        while (j < len && p[j] >= '0' && p[j] <= '9') v = v * 10 + (p[j++] - '0');
        if (j == len && j > i) {
            *out = neg ? -(double)v : (double)v;
            return 0;
        }
    }
    char buf[64];
    memcpy(buf, p, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

size_t sc_split_join_cap(size_t len, const char *sep, const char *joiner) {
    size_t sl = strlen(sep), jl = strlen(joiner);
    /* at most len / sl + 1 values, so at most len / sl joiners where separators were */
    return len + 1 + (jl > sl ? len / sl * (jl - sl) : 0);
}

size_t sc_split_join(const char *src, size_t len, const char *sep, const char *joiner, char *dst) {
    size_t sl = strlen(sep), jl = strlen(joiner), w = 0;
    const char *p = src, *end = src + len;
    while (p <= end) {
        const char *q = p;
        while (q < end && !((size_t)(end - q) >= sl && memcmp(q, sep, sl) == 0)) q++;
        if (q > p) {
            if (w) memcpy(dst + w, joiner, jl), w += jl;
            memcpy(dst + w, p, (size_t)(q - p));
            w += (size_t)(q - p);
        }
        p = q + sl;
    }
    return w;
}
