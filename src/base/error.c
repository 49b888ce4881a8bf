#include "base/error.h"

#include <stdio.h>
#include <string.h>

int sc_fail(sc_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int sc_fail_prefix(sc_error *err, const char *fmt, ...) {
    if (!err) return SC_EINTERNAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof err->msg) n = sizeof err->msg - 1;
    memcpy(err->msg, prefix, n);
    size_t room = sizeof err->msg - 1 - n, m = strlen(old);
    if (m > room) m = room;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = '\0';
    return err->code;
}

const char *sc_strerror(int code) {
    switch (code) {
    case SC_OK: return "ok";
    case SC_EINVAL: return "invalid input";
    case SC_EIO: return "I/O error";
    case SC_ENOMEM: return "out of memory";
    case SC_EFORMAT: return "malformed file";
    case SC_ENOTFOUND: return "not found";
    case SC_EVERSION: return "unsupported version";
    case SC_EINTERRUPTED: return "interrupted";
    case SC_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}
