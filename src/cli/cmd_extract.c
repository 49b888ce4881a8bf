/* semctr extract: knowledge extraction per item / user with a decoder LLM
 * (MSD's teacher), cached and resumable. See methods/msd/extract.h, docs/extract.md.
 *
 *   semctr extract --config FILE.yaml --entity item|user --out DIR [--data DIR]
 *       [--model FILE.gguf] [--max-tokens N] [--seed S] [--temperature T]
 *       [--top-p P] [--top-k K] [--limit N] [--retries N] [--force] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "dist/dist.h"
#include "methods/msd/extract.h"

static const char *USAGE =
    "usage: semctr extract --config FILE.yaml --entity NAME --out DIR [--data DIR] [--model FILE.gguf]\n"
    "                      [--max-tokens N] [--seed S] [--temperature T] [--top-p P] [--top-k K]\n"
    "                      [--limit N] [--retries N] [--batch N] [--force]\n"
    "  Prompts come from the config's extract: section; DIR/<entity>.tsv gets key, status (ok|fallback), text.\n"
    "  --data: a prepared dataset (semctr prepare), needed when the template uses {history}.\n"
    "  An interrupted run continues where it stopped when rerun with the same parameters.\n"
    "  --batch N: entities asked together (one pass of the model per token for all; the texts do not\n"
    "  depend on N).\n"
    "  Defaults: --max-tokens 64 --seed 0 --temperature 0.7 --top-p 0.9 --retries 2 --batch 8.\n"
    "  Over MPI ranks (`make MPI=1`, `mpirun -np N semctr extract ...`): each rank asks its share of the\n"
    "  entities, rank 0 writes DIR, the same files as one process (docs/distributed.md).\n";

int cmd_extract(int argc, char **argv) {
    const char *C = "extract", *model = NULL, *temperature = NULL, *top_p = NULL;
    sc_extract_opts o = {0};
    sc_gen_params_default(&o.gen);
    o.gen.temperature = 0.7f;
    o.gen.top_p = 0.9f;
    o.retries = 2;
    o.batch = 8;
    o.progress = 1;
    long max_tokens = o.gen.max_tokens, seed = (long)o.gen.seed, top_k = o.gen.top_k, limit = 0, retries = o.retries,
         batch = o.batch;
    const cli_opt opts[] = {
        CLI_STR("--config", &o.config_path),
        CLI_STR("--entity", &o.entity),
        CLI_STR("--out", &o.out_dir),
        CLI_STR("--data", &o.data_dir),
        CLI_STR("--model", &model),
        CLI_INT("--max-tokens", &max_tokens, 1, 100000),
        CLI_INT("--seed", &seed, 0, 0x7fffffffffffffffL),
        CLI_STR("--temperature", &temperature),
        CLI_STR("--top-p", &top_p),
        CLI_INT("--top-k", &top_k, 0, 1 << 30),
        CLI_INT("--limit", &limit, 1, 0x7fffffffffffffffL),
        CLI_INT("--retries", &retries, 0, 100),
        CLI_INT("--batch", &batch, 1, 256),
        CLI_FLAG("--force", &o.force),
    };
    int code = cli_parse(C, "argument", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (cli_sampling(C, temperature, top_p, &o.gen.temperature, &o.gen.top_p)) return EXIT_USAGE;
    o.gen.max_tokens = (int)max_tokens;
    o.gen.seed = (uint64_t)seed;
    o.gen.top_k = (int)top_k;
    o.limit = limit;
    o.retries = (int)retries;
    o.batch = (int)batch;
    if (!o.config_path || !o.entity || !o.out_dir) {
        fprintf(stderr, "semctr extract: --config, --entity and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    char defpath[4096];
    o.model_path = model ? model : cli_default_gguf(defpath, sizeof defpath);
    sc_install_signal_handlers();
    sc_extract_stats st;
    sc_error err = {0};
    /* over MPI ranks (make MPI=1, mpirun) the ranks share the entities and rank 0 writes DIR */
    if (sc_dist_init(&o.dist, NULL, NULL, &err) != SC_OK) return cli_fail(C, &err);
    const int root = sc_dist_rank(o.dist) == 0;
    if (!root) {
        sc_log_level = SC_LOG_QUIET; /* rank 0 speaks for the job */
        o.progress = 0;
    }
    int rc = sc_extract_run(&o, &st, &err);
    if (root && (rc == SC_OK || st.done > 0 || st.skipped > 0))
        fprintf(stderr,
            "semctr extract: %s: %lld entities, %lld already done, %lld written (%lld ok, %lld fallback, %lld retries), "
            "%lld torn line(s) redone; %lld tokens in %.1f s (%.1f tokens/s); %lld fallback(s) in the file\n",
            o.entity, (long long)st.total, (long long)st.skipped, (long long)st.done, (long long)st.ok,
            (long long)st.fallback, (long long)st.retries, (long long)st.torn, (long long)st.tokens, st.gen_s,
            st.gen_s > 0 ? st.tokens / st.gen_s : 0.0, (long long)st.fallback_total);
    if (rc == SC_EINTERRUPTED) {
        if (root) fprintf(stderr, "semctr extract: %s\n", err.msg);
        sc_dist_finalize(o.dist);
        return 130;
    }
    return cli_dist_finish(C, o.dist, rc, &err);
}
