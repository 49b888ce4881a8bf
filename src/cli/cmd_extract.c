/* semctr extract: knowledge extraction per item / user with a decoder LLM
 * (MSD's teacher), cached and resumable. See train/extract.h, docs/extract.md.
 *
 *   semctr extract --config FILE.yaml --entity item|user --out DIR [--data DIR]
 *       [--model FILE.gguf] [--max-tokens N] [--seed S] [--temperature T]
 *       [--top-p P] [--top-k K] [--limit N] [--retries N] [--force] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "train/extract.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: semctr extract --config FILE.yaml --entity NAME --out DIR [--data DIR] [--model FILE.gguf]\n"
            "                      [--max-tokens N] [--seed S] [--temperature T] [--top-p P] [--top-k K]\n"
            "                      [--limit N] [--retries N] [--batch N] [--force]\n"
            "  Prompts come from the config's extract: section; DIR/<entity>.tsv gets key, status (ok|fallback), text.\n"
            "  --data: a prepared dataset (semctr prepare), needed when the template uses {history}.\n"
            "  An interrupted run continues where it stopped when rerun with the same parameters.\n"
            "  --batch N: entities asked together (one pass of the model per token for all; the texts do not\n"
            "  depend on N).\n"
            "  Defaults: --max-tokens 64 --seed 0 --temperature 0.7 --top-p 0.9 --retries 2 --batch 8.\n");
}

int cmd_extract(int argc, char **argv) {
    const char *C = "extract", *v, *model = NULL;
    sc_extract_opts o = {0};
    sc_gen_params_default(&o.gen);
    o.gen.temperature = 0.7f;
    o.gen.top_p = 0.9f;
    o.retries = 2;
    o.batch = 8;
    o.progress = 1;
    cli_args a = {argc, argv, 1};
    for (; a.i < argc; a.i++) {
        int r;
        long x;
        double d;
        if ((r = cli_take(&a, "--config", &v))) {
            if (r < 0) return EXIT_USAGE;
            o.config_path = v;
        } else if ((r = cli_take(&a, "--entity", &v))) {
            if (r < 0) return EXIT_USAGE;
            o.entity = v;
        } else if ((r = cli_take(&a, "--out", &v))) {
            if (r < 0) return EXIT_USAGE;
            o.out_dir = v;
        } else if ((r = cli_take(&a, "--data", &v))) {
            if (r < 0) return EXIT_USAGE;
            o.data_dir = v;
        } else if ((r = cli_take(&a, "--model", &v))) {
            if (r < 0) return EXIT_USAGE;
            model = v;
        } else if ((r = cli_take(&a, "--max-tokens", &v))) {
            if (r < 0 || cli_int(C, "--max-tokens", v, 1, 100000, &x)) return EXIT_USAGE;
            o.gen.max_tokens = (int)x;
        } else if ((r = cli_take(&a, "--seed", &v))) {
            if (r < 0 || cli_int(C, "--seed", v, 0, 0x7fffffffffffffffL, &x)) return EXIT_USAGE;
            o.gen.seed = (uint64_t)x;
        } else if ((r = cli_take(&a, "--temperature", &v))) {
            if (r < 0 || cli_float(C, "--temperature", v, &d)) return EXIT_USAGE;
            if (!(d >= 0 && d <= 100)) {
                fprintf(stderr, "semctr extract: --temperature must be in [0, 100], got '%s'\n", v);
                return EXIT_USAGE;
            }
            o.gen.temperature = (float)d;
        } else if ((r = cli_take(&a, "--top-p", &v))) {
            if (r < 0 || cli_float(C, "--top-p", v, &d)) return EXIT_USAGE;
            if (!(d > 0 && d <= 1)) {
                fprintf(stderr, "semctr extract: --top-p must be in (0, 1], got '%s'\n", v);
                return EXIT_USAGE;
            }
            o.gen.top_p = (float)d;
        } else if ((r = cli_take(&a, "--top-k", &v))) {
            if (r < 0 || cli_int(C, "--top-k", v, 0, 1 << 30, &x)) return EXIT_USAGE;
            o.gen.top_k = (int)x;
        } else if ((r = cli_take(&a, "--limit", &v))) {
            if (r < 0 || cli_int(C, "--limit", v, 1, 0x7fffffffffffffffL, &x)) return EXIT_USAGE;
            o.limit = x;
        } else if ((r = cli_take(&a, "--retries", &v))) {
            if (r < 0 || cli_int(C, "--retries", v, 0, 100, &x)) return EXIT_USAGE;
            o.retries = (int)x;
        } else if ((r = cli_take(&a, "--batch", &v))) {
            if (r < 0 || cli_int(C, "--batch", v, 1, 256, &x)) return EXIT_USAGE;
            o.batch = (int)x;
        } else if (cli_flag(&a, "--force")) {
            o.force = 1;
        } else if (cli_flag(&a, "-h") || cli_flag(&a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "semctr extract: unknown argument '%s'\n", argv[a.i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!o.config_path || !o.entity || !o.out_dir) {
        fprintf(stderr, "semctr extract: --config, --entity and --out are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    char defpath[4096];
    o.model_path = model ? model : cli_default_gguf(defpath, sizeof defpath);
    sc_install_signal_handlers();
    sc_extract_stats st;
    sc_error err;
    int rc = sc_extract_run(&o, &st, &err);
    if (rc == SC_OK || st.done > 0 || st.skipped > 0)
        fprintf(stderr,
            "semctr extract: %s: %lld entities, %lld already done, %lld written (%lld ok, %lld fallback, %lld retries), "
            "%lld torn line(s) redone; %lld tokens in %.1f s (%.1f tokens/s); %lld fallback(s) in the file\n",
            o.entity, (long long)st.total, (long long)st.skipped, (long long)st.done, (long long)st.ok,
            (long long)st.fallback, (long long)st.retries, (long long)st.torn, (long long)st.tokens, st.gen_s,
            st.gen_s > 0 ? st.tokens / st.gen_s : 0.0, (long long)st.fallback_total);
    if (rc == SC_EINTERRUPTED) {
        fprintf(stderr, "semctr extract: %s\n", err.msg);
        return 130;
    }
    return rc ? cli_fail(C, &err) : 0;
}
