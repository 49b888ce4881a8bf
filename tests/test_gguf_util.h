/* Helpers for the GGUF tests: where the fetched SmolLM2 GGUF file is. */
#ifndef SC_TESTS_GGUF_UTIL_H
#define SC_TESTS_GGUF_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* $SEMCTR_GGUF, else the cache that scripts/fetch_gguf.sh fills. */
static inline const char *ggt_model_path(void) {
    static char p[4096];
    const char *env = getenv("SEMCTR_GGUF");
    if (env && env[0]) return env;
    const char *cache = getenv("SEMCTR_CACHE");
    if (cache && cache[0]) snprintf(p, sizeof p, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else snprintf(p, sizeof p, "%s/.cache/semctr/models/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME") ? getenv("HOME") : ".");
    return p;
}

#endif
