/* semctr prepare --config FILE --out DIR [--bad-rows skip|fail] */
#include <stdio.h>

#include "base/util.h"
#include "cli/cli.h"
#include "data/prepare.h"
#include "data/schema.h"

static const char *USAGE =
    "usage: semctr prepare --config FILE --out DIR [--bad-rows skip|fail]\n\n"
    "Turn a click log (CSV/TSV, joins with side tables) into a binary dataset:\n"
    "DIR/train.scd, valid.scd, test.scd (columnar, mmap'able), DIR/schema.scs\n"
    "(fields, vocabularies from train only, join and text tables, the config)\n"
    "and DIR/meta.json. The config format is described in docs/data.md.\n\n"
    "  --config FILE      dataset config (YAML), e.g. configs/ml-100k.yaml\n"
    "  --out DIR          output folder, replaced as a whole when the new dataset is complete\n"
    "                     (other files in it are kept); readers refuse files of two runs\n"
    "  --bad-rows MODE    skip: drop bad rows and report them per reason;\n"
    "                     fail: stop at the first one (default: the config's bad_rows, else skip)\n";

int cmd_prepare(int argc, char **argv) {
    const char *config = NULL, *out = NULL, *bad = NULL;
    const cli_opt opts[] = {
        CLI_STR("--config", &config),
        CLI_STR("--out", &out),
        CLI_STR("--bad-rows", &bad),
    };
    int code = cli_parse("prepare", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!config || !out) {
        fprintf(stderr, "semctr prepare: --config and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    static const char *const MODES[] = {"skip", "fail", NULL}; /* bad_rows 0, 1 */
    int bad_rows = -1;                                         /* not given: the config's */
    if (cli_choice("prepare", "--bad-rows", bad, MODES, &bad_rows)) return EXIT_USAGE;
    sc_install_signal_handlers();
    sc_error err = {0};
    sc_prepare_stats st;
    if (sc_prepare_file(config, out, bad_rows, &st, &err)) return cli_fail("prepare", &err);
    int64_t total = st.rows[0] + st.rows[1] + st.rows[2];
    int64_t pos = st.positives[0] + st.positives[1] + st.positives[2];
    printf("prepared %s -> %s in %.2f s\n", config, out, st.seconds);
    static const char *const sn[3] = {"train", "valid", "test"};
    for (int k = 0; k < 3; k++)
        printf("  %-5s %10lld rows  %9lld positives (%.2f%%)\n", sn[k], (long long)st.rows[k],
               (long long)st.positives[k], st.rows[k] ? 100.0 * (double)st.positives[k] / (double)st.rows[k] : 0.0);
    printf("  all   %10lld rows  %9lld positives (%.2f%%)\n", (long long)total, (long long)pos,
           total ? 100.0 * (double)pos / (double)total : 0.0);
    sc_schema *s;
    if (sc_schema_load(&s, out, &err) == 0) {
        int nf;
        const sc_field_info *f = sc_schema_fields(s, &nf);
        static const char *const kinds[] = {"categorical", "numeric", "multi", "sequence"};
        printf("  %d fields:\n", nf);
        for (int i = 0; i < nf; i++) {
            printf("    %-22s %-11s", f[i].name, kinds[f[i].kind]);
            if (f[i].kind != SC_FIELD_NUMERIC) printf(" vocab %lld", (long long)f[i].vocab_size);
            if (f[i].width > 1) printf(" width %d", f[i].width);
            if (f[i].share_with >= 0) printf(" (shares %s)", f[i].share_with < nf ? f[f[i].share_with].name : "?");
            printf("\n");
        }
        for (int t = 0; t < sc_schema_n_text(s); t++)
            printf("    text %-17s from %s, %lld distinct\n", sc_schema_text_name(s, t), sc_schema_text_entity(s, t),
                   (long long)sc_schema_text_count(s, t));
        sc_schema_free(s);
    }
    for (int j = 0; j < st.n_joins; j++) {
        const sc_join_stats *js = &st.joins[j];
        printf("  join %-17s %lld rows; %lld input rows (%.2f%%) have no match", js->name, (long long)js->rows,
               (long long)js->unmatched, total ? 100.0 * (double)js->unmatched / (double)total : 0.0);
        if (js->unmatched) printf(" (first: %s)", js->first);
        printf("\n");
    }
    int any = 0;
    for (int r = 0; r < SC_BAD_COUNT; r++)
        if (st.bad[r]) {
            if (!any) printf("  bad rows skipped:\n");
            any = 1;
            printf("    %-22s %lld (first: %s)\n", sc_bad_reason_name(r), (long long)st.bad[r], st.bad_first[r]);
        }
    return 0;
}
