/* Delimited text: a buffered line reader, a row splitter (any delimiter,
 * multi-character ones such as "::" included, optional double-quote
 * quoting), Latin-1 to UTF-8 conversion and UTF-8 validation.
 *
 * Quoting follows RFC 4180 within one line: a cell that starts with the
 * quote character runs to the matching quote, "" inside it stands for one
 * quote. Quoted cells cannot span lines (click logs do not need that). */
#ifndef SC_DATA_CSV_H
#define SC_DATA_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct sc_cell {
    const char *p; /* not NUL-terminated */
    uint32_t len;
} sc_cell;

/* Reads a file line by line through one growing buffer (no allocation per
 * line). Lines are returned without their "\n" or "\r\n"; the returned
 * bytes stay valid and writable until the next call. */
typedef struct sc_line_reader {
    int fd;
    char path[4096];
    char *buf;
    size_t cap, start, end;
    int eof;
    int64_t line_no;   /* 1-based number of the line last returned */
    int64_t bytes_read;
} sc_line_reader;

int sc_line_reader_open(sc_line_reader *r, const char *path, sc_error *err);
/* 1 and a line, 0 at the end of the file, or a negative status. */
int sc_line_reader_next(sc_line_reader *r, char **line, size_t *len, sc_error *err);
void sc_line_reader_close(sc_line_reader *r);

/* Split line[0..len) at delim (dlen >= 1 bytes). quote is the quote byte or
 * 0 for none; quoted cells are unquoted in place, so line must be
 * writable. Fills up to max_cells cells and returns the number of cells in
 * the line (which may exceed max_cells), or -1 for an unterminated quote
 * or text after a closing quote. */
int sc_csv_split(char *line, size_t len, const char *delim, size_t dlen, char quote, sc_cell *cells, int max_cells);

/* Latin-1 to UTF-8: dst needs 2 * len bytes; returns the bytes written. */
size_t sc_latin1_to_utf8(const char *src, size_t len, char *dst);
/* 1 when p[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF), else 0; *bad_at gets the offset of the first
 * bad byte when non-NULL. */
int sc_utf8_valid(const char *p, size_t len, size_t *bad_at);

/* The values of src[0..len) split at sep, empty ones dropped, joined by
 * joiner into dst ("Crime|Drama||Horror" -> "Crime, Drama, Horror"); returns
 * the bytes written. dst needs sc_split_join_cap(len, sep, joiner) bytes. */
size_t sc_split_join(const char *src, size_t len, const char *sep, const char *joiner, char *dst);
size_t sc_split_join_cap(size_t len, const char *sep, const char *joiner);

/* Strict number parsing of a cell (surrounding spaces allowed, nothing
 * else): 0 and *out, or -1. Empty cells are not numbers. */
int sc_parse_double(const char *p, size_t len, double *out);

#endif
