/* semctr generate: greedy text generation with a Llama-family GGUF model.
 *
 *   semctr generate --prompt TEXT [--model FILE.gguf] [--max-tokens N]
 *
 * --model defaults to $SEMCTR_GGUF, else the cached SmolLM2-135M-Instruct
 * (${SEMCTR_CACHE:-~/.cache/semctr}/models/SmolLM2-135M-Instruct.Q4_1.gguf,
 * fetched by scripts/fetch_gguf.sh). Special tokens written in the prompt
 * (e.g. "<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n") are
 * parsed. The generated text (not the prompt) goes to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli/cli.h"
#include "lm/llama.h"

static void usage(void) {
    fprintf(stderr, "usage: semctr generate --prompt TEXT [--model FILE.gguf] [--max-tokens N]\n");
}

int cmd_generate(int argc, char **argv) {
    const char *prompt = NULL, *model = getenv("SEMCTR_GGUF");
    long max_tokens = 64;
    char defpath[4096];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--prompt") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(a, "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--max-tokens") && i + 1 < argc) {
            char *end;
            max_tokens = strtol(argv[++i], &end, 10);
            if (*end || max_tokens < 1 || max_tokens > 1000000) {
                fprintf(stderr, "semctr generate: --max-tokens must be a positive integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "semctr generate: unknown or incomplete argument '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (!prompt) {
        usage();
        return 2;
    }
    if (!model || !model[0]) {
        const char *cache = getenv("SEMCTR_CACHE");
        if (cache && cache[0]) snprintf(defpath, sizeof defpath, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
        else snprintf(defpath, sizeof defpath, "%s/.cache/semctr/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                      getenv("HOME") ? getenv("HOME") : ".");
        model = defpath;
    }
    sc_error err;
    sc_llama *m;
    if (sc_llama_load(&m, model, 0, &err) != SC_OK) {
        fprintf(stderr, "semctr generate: %s\n", err.msg);
        return 1;
    }
    char *text;
    int rc = sc_llama_generate(m, prompt, (int)max_tokens, &text, &err);
    sc_llama_free(m);
    if (rc != SC_OK) {
        fprintf(stderr, "semctr generate: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", text);
    sc_free(text);
    return 0;
}
