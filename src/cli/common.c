#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_fail(const char *cmd, const sc_error *err) {
    fprintf(stderr, "semctr %s: error: %s\n", cmd, err && err->msg[0] ? err->msg : sc_strerror(err ? err->code : -1));
    return 1;
}

int cli_take(cli_args *a, const char *name, const char **val) {
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '=') {
        *val = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "semctr: option %s needs a value\n", name);
        return -1;
    }
    *val = a->argv[++a->i];
    return 1;
}

int cli_flag(cli_args *a, const char *name) { return strcmp(a->argv[a->i], name) == 0; }

int cli_int(const char *cmd, const char *name, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "semctr %s: %s must be an integer in [%ld, %ld], got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *name, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "semctr %s: %s must be a number, got '%s'\n", cmd, name, s);
        return -1;
    }
    *out = v;
    return 0;
}
