/* semctr report: one self-contained HTML page (inline SVG, no script, no
 * network) comparing model files on a split of a prepared dataset. The
 * collecting and drawing live in src/report/ (report/report.h); this file
 * reads the command line. docs/report.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "report/report.h"

static const char *USAGE =
    "usage: semctr report --model FILE [--label NAME] [--log FILE] [--network NAME]\n"
    "                     [--model FILE ...] --data DIR [--split test] --out FILE.html\n"
    "                     [--cold N] [--buckets A,B,...] [--item-field NAME] [--user-field NAME]\n"
    "                     [--encoder DIR] [--threads N]\n"
    "\n"
    "  --model FILE      a model file to compare (repeat, up to 16); the options below it\n"
    "                    up to the next --model are its own:\n"
    "    --label NAME    its name in the page (the file's name)\n"
    "    --log FILE      its training log (`semctr train --log FILE`): the training curves\n"
    "    --network NAME  which network of a multi-network file (ELEC: vanilla by default)\n"
    "  --data DIR        the prepared dataset the models were trained on\n"
    "  --split NAME      train | valid | test (test)\n"
    "  --out FILE        the HTML page, written atomically (temporary file, then rename)\n"
    "  --cold N          cold-start: an item (user) with at most N rows in the train split (5)\n"
    "  --buckets LIST    activity buckets: ascending upper bounds of train rows (0,5,20,100)\n"
    "  --item-field NAME the item field of the slices (item_id; absent: no item slices)\n"
    "  --user-field NAME the user field of the slices (user_id; absent: no user slices)\n"
    "  --encoder DIR     MSD models: encode new users/items from their text (as eval --encoder)\n"
    "  --threads N       threads for scoring (all cores)\n";

enum { MAX_MODELS = 16, MAX_EDGES = 32 };

typedef struct model_arg {
    const char *path, *label, *log, *network;
} model_arg;

/* "0,5,20,100" into edges; -1 after the message. */
static int parse_buckets(const char *s, int64_t *edges, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || (*end && *end != ',') || *n == MAX_EDGES ||
            (*n > 0 && v <= edges[*n - 1])) {
            fprintf(stderr,
                    "semctr report: --buckets must be up to %d ascending counts >= 0 separated by commas, got '%s'\n",
                    MAX_EDGES, s);
            return -1;
        }
        edges[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        fprintf(stderr, "semctr report: --buckets needs at least one count, got '%s'\n", s);
        return -1;
    }
    return 0;
}

int cmd_report(int argc, char **argv) {
    cli_list per_model = {0};
    const char *data = NULL, *split = "test", *out = NULL, *buckets = "0,5,20,100", *item_field = NULL,
               *user_field = NULL, *encoder = NULL;
    long cold = 5, threads = sc_default_threads();
    const cli_opt opts[] = {
        CLI_LIST("--model", &per_model),
        CLI_LIST("--label", &per_model),
        CLI_LIST("--log", &per_model),
        CLI_LIST("--network", &per_model),
        CLI_STR("--data", &data),
        CLI_STR("--split", &split),
        CLI_STR("--out", &out),
        CLI_INT("--cold", &cold, 0, INT32_MAX),
        CLI_STR("--buckets", &buckets),
        CLI_STR("--item-field", &item_field),
        CLI_STR("--user-field", &user_field),
        CLI_STR("--encoder", &encoder),
        CLI_INT("--threads", &threads, 1, 256),
    };
    int code = cli_parse("report", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (per_model.n > CLI_LIST_MAX) {
        fprintf(stderr, "semctr report: too many --model/--label/--log/--network options (%d)\n", per_model.n);
        return EXIT_USAGE;
    }
    /* each --label / --log / --network belongs to the --model before it */
    model_arg models[MAX_MODELS];
    int n_models = 0;
    for (int i = 0; i < per_model.n; i++) {
        const char *opt = per_model.opt[i], *val = per_model.val[i];
        if (!strcmp(opt, "--model")) {
            if (n_models == MAX_MODELS) {
                fprintf(stderr, "semctr report: at most %d --model files in one report\n", MAX_MODELS);
                return EXIT_USAGE;
            }
            models[n_models++] = (model_arg){val, NULL, NULL, NULL};
            continue;
        }
        if (!n_models) {
            fprintf(stderr, "semctr report: %s %s comes before any --model: it belongs after the --model it is for\n",
                    opt, val);
            return EXIT_USAGE;
        }
        model_arg *m = &models[n_models - 1];
        const char **slot = !strcmp(opt, "--label") ? &m->label : !strcmp(opt, "--log") ? &m->log : &m->network;
        if (*slot) {
            fprintf(stderr, "semctr report: two %s for --model %s ('%s' and '%s')\n", opt, m->path, *slot, val);
            return EXIT_USAGE;
        }
        *slot = val;
    }
    if (!n_models || !data || !out) {
        fprintf(stderr, "semctr report: --model, --data and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    static const char *const SPLITS[] = {"train", "valid", "test", NULL};
    int split_k;
    if (cli_choice("report", "--split", split, SPLITS, &split_k)) return EXIT_USAGE;
    int64_t edges[MAX_EDGES];
    int n_edges;
    if (parse_buckets(buckets, edges, &n_edges)) return EXIT_USAGE;

    sc_report_options o = {
        .data_dir = data,
        .split = split,
        .item_field = item_field ? item_field : "item_id",
        .user_field = user_field ? user_field : "user_id",
        .fields_given = (item_field ? 1 : 0) | (user_field ? 2 : 0),
        .cold_max = cold,
        .edges = edges,
        .n_edges = n_edges,
        .encoder = encoder,
        .threads = (int)threads,
        .generator = "semctr " SEMCTR_VERSION,
    };
    sc_error err = {0};
    sc_report r;
    int rc = sc_report_open(&r, &o, &err);
    for (int i = 0; i < n_models && !rc; i++) {
        rc = sc_report_add_model(&r, models[i].path, models[i].network, models[i].label, models[i].log, &err);
        if (!rc)
            sc_info("%s: AUC %.6f, gAUC %.6f, logloss %.6f on %s (%lld rows)", models[i].path, r.models[i].all.auc,
                    r.models[i].all.gauc, r.models[i].all.logloss, split, (long long)r.models[i].all.n);
    }
    if (!rc) rc = sc_report_write(&r, out, &err);
    if (!rc) sc_info("report written to %s", out);
    sc_report_close(&r); /* safe after a failed open too: it leaves r zeroed */
    return rc ? cli_fail("report", &err) : 0;
}
