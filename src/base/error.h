/* Status codes and error messages.
 *
 * Every library function that can fail returns an int status (0 = SC_OK,
 * negative = failure) and, when given a non-NULL sc_error*, leaves a message
 * there that names the file, line, field or tensor at fault. Library code
 * never exits or aborts on bad input; only src/cli turns a status into an
 * exit code. */
#ifndef SC_BASE_ERROR_H
#define SC_BASE_ERROR_H

#include <stdarg.h>

enum {
    SC_OK = 0,
    SC_EINVAL = -1,    /* bad argument or bad input data */
    SC_EIO = -2,       /* a read, write, open or rename failed */
    SC_ENOMEM = -3,    /* an allocation failed */
    SC_EFORMAT = -4,   /* a file is malformed (bad magic, truncated, lies about sizes) */
    SC_ENOTFOUND = -5, /* a file, key, field or tensor does not exist */
    SC_EVERSION = -6,  /* a file has a version this build cannot read */
    SC_EINTERRUPTED = -7, /* stopped by a signal; what was saved stays valid */
    SC_EINTERNAL = -8, /* an invariant broke: a bug in semctr */
};

typedef struct sc_error {
    int code;
    char msg[1024];
} sc_error;

/* Set err (if non-NULL) to code and a printf-style message; returns code so
 * callers can write `return sc_fail(err, SC_EINVAL, "...")`. */
int sc_fail(sc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("reading x.csv: " + old). */
int sc_fail_prefix(sc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short name of a status code ("invalid input", "I/O error", ...). */
const char *sc_strerror(int code);

#endif
