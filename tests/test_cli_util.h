/* Running the semctr binary from tests: $SEMCTR_BIN, which `make test` sets. */
#ifndef SC_TESTS_CLI_UTIL_H
#define SC_TESTS_CLI_UTIL_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* `env semctr args` through the shell (env: assignments such as
 * "SEMCTR_QUIET=1", or ""), stdout and stderr into out (NUL-terminated, at
 * most cap - 1 bytes); the exit status, -1 when killed by a signal. */
static inline int tcli_run(const char *env, const char *args, char *out, size_t cap) {
    static char cmd[16384];
    const char *bin = getenv("SEMCTR_BIN");
    cr_assert(bin, "SEMCTR_BIN not set (run through make test)");
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>&1", env, bin, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of the last tcli_semctr (a function: a static array here would
 * be an unused variable in every test that does not call it). */
static inline char *tcli_out(void) {
    static char out[1 << 16];
    return out;
}

/* `semctr ARGS` (printf-style) without info lines; output in tcli_out(). */
static inline int tcli_semctr(const char *fmt, ...) {
    static char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return tcli_run("SEMCTR_QUIET=1", args, tcli_out(), 1 << 16);
}

/* The number after "key": in a JSON text (the first occurrence). */
static inline double tcli_json_number(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    cr_assert(p, "no '%s' in %s", key, json);
    return strtod(p + strlen(pat), NULL);
}

#endif
