/* semctr init --input FILE [--join NAME=FILE:KEY ...] --out CONFIG [--label RULE] [--force] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "cli/cli.h"
#include "data/config.h"
#include "data/draft.h"

static const char *USAGE =
    "usage: semctr init --input FILE [--join NAME=FILE:KEY ...] --out CONFIG [--label RULE] [--force]\n\n"
    "Draft a commented dataset config for `semctr prepare` from the files themselves:\n"
    "delimiter, quoting, header, encoding, the label, the time column and split, each\n"
    "column as a field of the type its values suggest, multi-valued columns, text columns\n"
    "for the LLM methods, the user's history and the gAUC group. Every choice carries a\n"
    "comment saying what it was read from; check them, then run prepare. docs/data.md.\n\n"
    "  --input FILE          the click log (CSV, TSV, '|' or '::' separated)\n"
    "  --join NAME=FILE:KEY  a side table joined by its column KEY (a name, or a 1-based\n"
    "                        number when FILE has no header); repeatable\n"
    "  --out CONFIG          the config to write (YAML)\n"
    "  --label RULE          the label when the guess is wrong: COLUMN or 'COLUMN >= N'\n"
    "  --rows N              rows read per file (default 1000000)\n"
    "  --force               replace CONFIG when it exists\n";

int cmd_init(int argc, char **argv) {
    const char *input = NULL, *outp = NULL, *label = NULL;
    int force = 0;
    long rows = 1000000;
    cli_list joins = {0};
    const cli_opt opts[] = {
        CLI_STR("--input", &input),
        CLI_LIST("--join", &joins),
        CLI_STR("--out", &outp),
        CLI_STR("--label", &label),
        CLI_INT("--rows", &rows, 1, 1000000000),
        CLI_FLAG("--force", &force),
    };
    int code = cli_parse("init", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!input || !outp) {
        fprintf(stderr, "semctr init: --input and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    if (joins.n > SC_MAX_JOINS) {
        fprintf(stderr, "semctr init: at most %d --join\n", SC_MAX_JOINS);
        return EXIT_USAGE;
    }
    if (!force && sc_file_exists(outp)) {
        fprintf(stderr, "semctr init: %s exists; give --force to replace it\n", outp);
        return EXIT_USAGE;
    }
    /* NAME=FILE:KEY, split at the first '=' and the last ':' */
    sc_draft_join dj[SC_MAX_JOINS];
    char spec[SC_MAX_JOINS][4096];
    for (int i = 0; i < joins.n; i++) {
        snprintf(spec[i], sizeof spec[i], "%s", joins.val[i]);
        char *eq = strchr(spec[i], '='), *colon = strrchr(spec[i], ':');
        if (!eq || !colon || colon < eq || eq == spec[i] || colon == eq + 1 || !colon[1]) {
            fprintf(stderr, "semctr init: --join must be NAME=FILE:KEY (e.g. item=u.item:1 or movie=movies.csv:movieId), "
                            "got '%s'\n", joins.val[i]);
            return EXIT_USAGE;
        }
        *eq = *colon = 0;
        dj[i] = (sc_draft_join){spec[i], eq + 1, colon + 1};
    }
    sc_draft_opts o = {input, dj, joins.n, outp, label, rows};
    sc_error err = {0};
    char *yaml = NULL;
    int rc = sc_draft_config(&o, &yaml, &err);
    /* the draft must read back as a config (paths resolve against CONFIG's folder) */
    if (!rc) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", outp);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else strcpy(dir, ".");
        sc_dcfg *cfg = NULL;
        rc = sc_dcfg_parse(&cfg, yaml, strlen(yaml), outp, dir, &err);
        if (rc) sc_fail_prefix(&err, "the draft does not parse (a bug in semctr init): ");
        sc_dcfg_free(cfg);
    }
    if (!rc) {
        sc_atomic_file f;
        rc = sc_atomic_open(&f, outp, &err);
        if (!rc && (rc = sc_atomic_write(&f, yaml, strlen(yaml), &err))) sc_atomic_abort(&f);
        if (!rc) rc = sc_atomic_commit(&f, &err);
    }
    sc_free(yaml);
    if (rc) return cli_fail("init", &err);
    printf("wrote %s; check it, then: semctr prepare --config %s --out DIR\n", outp, outp);
    return 0;
}
