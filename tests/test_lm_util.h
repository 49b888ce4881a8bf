/* Helpers shared by the text and lm tests: where the fetched model and the
 * committed fixtures are, and hex decoding of fixture lines. */
#ifndef SC_TESTS_LM_TEST_UTIL_H
#define SC_TESTS_LM_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cli_util.h"

/* The default model: $SEMCTR_MODEL, else the cache fetch_model.sh fills. */
static inline const char *lmt_model_dir(void) {
    static char dir[4096];
    const char *env = getenv("SEMCTR_MODEL");
    if (env && env[0]) return env;
    const char *cache = getenv("SEMCTR_CACHE");
    if (cache && cache[0]) snprintf(dir, sizeof dir, "%s/models/all-MiniLM-L6-v2", cache);
    else snprintf(dir, sizeof dir, "%s/.cache/semctr/models/all-MiniLM-L6-v2", getenv("HOME") ? getenv("HOME") : ".");
    return dir;
}

/* tests/fixtures relative to the repository root (tests run from there). */
static inline const char *lmt_fixture(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "tests/fixtures/%s", name);
    return path;
}

/* Decode n hex digits into out (n / 2 bytes, NUL-terminated); returns the length. */
static inline size_t lmt_unhex(const char *hex, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        char two[3] = {hex[i], hex[i + 1], 0};
        v = (unsigned)strtoul(two, NULL, 16);
        out[k++] = (char)v;
    }
    out[k] = '\0';
    return k;
}

/* `semctr embed ARGS` with the fixture encoder as the default model */
static inline int lmt_run_embed(const char *args, char *out, size_t cap) {
    char env[4200];
    snprintf(env, sizeof env, "SEMCTR_MODEL='%s'", lmt_model_dir());
    char a[8192];
    snprintf(a, sizeof a, "embed %s", args);
    return tcli_run(env, a, out, cap);
}

#endif
