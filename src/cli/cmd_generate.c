/* semctr generate: text generation with a Llama-family GGUF model.
 *
 *   semctr generate --prompt TEXT | --prompt-file FILE [--model FILE.gguf]
 *       [--max-tokens N] [--seed S] [--temperature T] [--top-p P] [--top-k K]
 *       [--stop STR]... [--system TEXT] [--raw] [--ctx N] [--kv-cache f32|f16] [--stats]
 *
 * --model defaults to $SEMCTR_GGUF, else the cached SmolLM2-135M-Instruct
 * (${SEMCTR_CACHE:-~/.cache/semctr}/models/SmolLM2-135M-Instruct.Q4_1.gguf,
 * fetched by scripts/fetch_gguf.sh). The prompt is wrapped in the model's
 * chat template (text/chat.h) unless --raw; an empty prompt is a usage
 * error on every model. The generated text streams to stdout; a stop string
 * is never printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "cli/cli.h"
#include "lm/generate.h"
#include "text/chat.h"

static const char *USAGE =
    "usage: semctr generate --prompt TEXT | --prompt-file FILE [--model FILE.gguf] [--max-tokens N]\n"
    "                       [--seed S] [--temperature T] [--top-p P] [--top-k K] [--stop STR]...\n"
    "                       [--system TEXT] [--raw] [--ctx N] [--kv-cache f32|f16] [--stats]\n"
    "  --temperature 0 (default) is greedy; same seed and parameters, same text.\n"
    "  --kv-cache f16 keeps keys and values in half precision: half the cache's memory\n"
    "  (f32, the default, is exact).\n"
    "  --raw sends the prompt as is (special tokens such as <|im_start|> parsed);\n"
    "  otherwise the model's chat template wraps it (--system sets the system prompt).\n";

static int emit_stdout(void *ctx, const char *s, size_t n) {
    (void)ctx;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

/* The default decoder model path (shared with semctr extract). */
const char *cli_default_gguf(char *buf, size_t cap) {
    const char *env = getenv("SEMCTR_GGUF");
    if (env && env[0]) return env;
    const char *cache = getenv("SEMCTR_CACHE");
    if (cache && cache[0]) snprintf(buf, cap, "%s/models/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else snprintf(buf, cap, "%s/.cache/semctr/models/SmolLM2-135M-Instruct.Q4_1.gguf", getenv("HOME") ? getenv("HOME") : ".");
    return buf;
}

int cmd_generate(int argc, char **argv) {
    const char *C = "generate";
    const char *prompt = NULL, *prompt_file = NULL, *model = NULL, *system = NULL;
    const char *seed = NULL, *temperature = NULL, *top_p = NULL, *kv_cache = NULL;
    int raw = 0, stats = 0;
    long ctx = 0;
    sc_gen_params p;
    sc_gen_params_default(&p);
    long max_tokens = p.max_tokens, top_k = p.top_k;
    cli_list stops = {0};
    const cli_opt opts[] = {
        CLI_STR("--prompt", &prompt),
        CLI_STR("--prompt-file", &prompt_file),
        CLI_STR("--model", &model),
        CLI_STR("--system", &system),
        CLI_INT("--max-tokens", &max_tokens, 1, 1000000),
        CLI_INT("--ctx", &ctx, 16, 1 << 20),
        CLI_STR("--kv-cache", &kv_cache),
        CLI_STR("--seed", &seed),
        CLI_STR("--temperature", &temperature),
        CLI_STR("--top-p", &top_p),
        CLI_INT("--top-k", &top_k, 0, 1 << 30),
        CLI_LIST("--stop", &stops),
        CLI_FLAG("--raw", &raw),
        CLI_FLAG("--stats", &stats),
    };
    int code = cli_parse(C, "argument", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    p.max_tokens = (int)max_tokens;
    p.top_k = (int)top_k;
    if (seed) {
        char *end;
        unsigned long long s = strtoull(seed, &end, 10);
        if (!*seed || *end || seed[0] == '-') {
            fprintf(stderr, "semctr generate: --seed must be a non-negative integer, got '%s'\n", seed);
            return EXIT_USAGE;
        }
        p.seed = s;
    }
    if (cli_sampling(C, temperature, top_p, &p.temperature, &p.top_p)) return EXIT_USAGE;
    for (int i = 0; i < stops.n; i++) {
        if (i == SC_GEN_MAX_STOPS || !stops.val[i][0]) {
            fprintf(stderr, "semctr generate: --stop must be non-empty, at most %d times\n", SC_GEN_MAX_STOPS);
            return EXIT_USAGE;
        }
        p.stops[p.n_stops++] = stops.val[i];
    }
    if (!prompt == !prompt_file) {
        fprintf(stderr, "semctr generate: give exactly one of --prompt and --prompt-file\n%s", USAGE);
        return EXIT_USAGE;
    }
    int kv_type = kv_cache ? sc_llama_kv_type_parse(kv_cache) : SC_KV_F32;
    if (kv_type < 0) {
        fprintf(stderr, "semctr generate: --kv-cache '%s': use f32 or f16\n", kv_cache);
        return EXIT_USAGE;
    }
    if (raw && system) {
        fprintf(stderr, "semctr generate: --system needs the chat template; it cannot go with --raw\n");
        return EXIT_USAGE;
    }
    sc_error err;
    char *file_text = NULL, *tmpl = NULL, *chat = NULL, defpath[4096];
    if (prompt_file) {
        size_t n;
        if (sc_read_file(prompt_file, &file_text, &n, &err) != SC_OK) return cli_fail(C, &err);
        prompt = file_text;
    }
    /* One rule for every model: with nothing to continue from, a model with a
     * BOS token would generate from BOS alone and one without would have no
     * tokens at all, so an empty prompt is refused before loading either. */
    if (!prompt[0]) {
        fprintf(stderr, "semctr generate: the prompt is empty%s%s\n", prompt_file ? ": " : "",
                prompt_file ? prompt_file : "");
        sc_free(file_text);
        return EXIT_USAGE;
    }
    if (!model) model = cli_default_gguf(defpath, sizeof defpath);
    int rc = 1;
    sc_llama *m = NULL;
    if (!raw) {
        if (sc_chat_template_from_gguf(model, &tmpl, &err) != SC_OK) goto fail;
        if (!tmpl) {
            sc_fail(&err, SC_ENOTFOUND, "%s has no tokenizer.chat_template; use --raw to send the prompt as is", model);
            goto fail;
        }
        if (sc_chat_format(tmpl, system, prompt, &chat, &err) != SC_OK) {
            sc_fail_prefix(&err, "%s: ", model);
            goto fail;
        }
        prompt = chat;
    }
    if (sc_llama_load(&m, model, (int)ctx, &err) != SC_OK) goto fail;
    if (kv_type != SC_KV_F32 && sc_llama_set_kv_type(m, kv_type, &err) != SC_OK) goto fail;
    sc_gen_result res;
    if (sc_generate(m, prompt, &p, emit_stdout, NULL, &res, &err) != SC_OK) goto fail;
    printf("\n");
    fflush(stdout);
    if (stats)
        fprintf(stderr, "semctr generate: %d prompt tokens in %.2f s (%.1f tokens/s), %d generated in %.2f s (%.1f tokens/s), end: %s\n",
                res.n_prompt, res.prompt_s, res.n_prompt / (res.prompt_s > 0 ? res.prompt_s : 1e-9), res.n_generated,
                res.gen_s, res.n_generated / (res.gen_s > 0 ? res.gen_s : 1e-9),
                res.end == SC_GEN_END_EOS ? "eos" : res.end == SC_GEN_END_STOP ? "stop" : res.end == SC_GEN_END_LENGTH ? "length" : "context");
    sc_gen_result_free(&res);
    rc = 0;
    goto out;
fail:
    rc = cli_fail(C, &err);
out:
    sc_llama_free(m);
    sc_free(file_text);
    sc_free(tmpl);
    sc_free(chat);
    return rc;
}
