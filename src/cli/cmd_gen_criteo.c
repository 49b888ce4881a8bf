/* semctr gen-criteo --rows N --out FILE [--seed S] */
#include <stdio.h>

#include "base/util.h"
#include "cli/cli.h"
#include "data/gen_criteo.h"

static const char *USAGE =
    "usage: semctr gen-criteo --rows N --out FILE [--seed S]\n\n"
    "Write N rows of Criteo-shaped synthetic clicks in the Kaggle TSV layout\n"
    "(label, I1..I13, C1..C26), power-law category frequencies, a learnable\n"
    "label (~25% clicks). Prepare it with configs/criteo.yaml.\n";

int cmd_gen_criteo(int argc, char **argv) {
    const char *rows_s = NULL, *out = NULL, *seed_s = NULL;
    const cli_opt opts[] = {
        CLI_STR("--rows", &rows_s),
        CLI_STR("--out", &out),
        CLI_STR("--seed", &seed_s),
    };
    int code = cli_parse("gen-criteo", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!rows_s || !out) {
        fprintf(stderr, "semctr gen-criteo: --rows and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    long rows, seed = 42;
    if (cli_int("gen-criteo", "--rows", rows_s, 0, 2000000000L, &rows)) return EXIT_USAGE;
    if (seed_s && cli_int("gen-criteo", "--seed", seed_s, 0, 0x7fffffffL, &seed)) return EXIT_USAGE;
    sc_install_signal_handlers();
    sc_error err = {0};
    int64_t pos = 0;
    double t0 = sc_now();
    if (sc_gen_criteo(out, rows, (uint64_t)seed, &pos, &err)) return cli_fail("gen-criteo", &err);
    printf("wrote %ld rows to %s in %.2f s (%lld clicks, %.2f%%)\n", rows, out, sc_now() - t0, (long long)pos,
           rows ? 100.0 * (double)pos / (double)rows : 0.0);
    return 0;
}
