/* What the CLI tells a user about bad flags and bad input files, and the
 * numbers and log lines it prints: serve's --watch/--drain and --host
 * messages; predict on a CSV with an unterminated quote, none of the model's
 * columns, a UTF-8 byte-order mark, UTF-16; eval's scoring time and the log
 * of an MSD model; the learning-rate line after the epoch it follows. */
#include <signal.h>
#include <sys/stat.h>

#include "test_cli_util.h"
#include "test_serve_fixture.h"

static void write_bytes(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

Test(cli_messages, serve_says_what_is_wrong_with_a_flag_and_where_it_listens) {
    char model[700];
    snprintf(model, sizeof model, "%s/a.model", fx_dir());
    /* these exited 2 with no message */
    cr_assert_eq(tcli_semctr("serve --model m=%s --watch -1", model), 2);
    cr_assert(strstr(tcli_out(), "--watch -1: give a number of seconds, 0 or more"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("serve --model m=%s --drain -1", model), 2);
    cr_assert(strstr(tcli_out(), "--drain -1"), "%s", tcli_out());
    /* an IPv6 address is printed as itself, in brackets (it was printed as [::]) */
    char dir[] = "/tmp/sc_cli_msg_XXXXXX";
    cr_assert(mkdtemp(dir));
    cr_assert_eq(fx_sh("cd %s && ('%s' serve --model m=%s --host ::1 --port 0 --port-file port > log 2>&1 & echo $! > pid); "
                       "for i in $(seq 100); do test -s port && break; grep -q 'cannot listen' log && break; sleep 0.05; done",
                       dir, fx_bin(), model), 0);
    char log[800];
    snprintf(log, sizeof log, "%s/log", dir);
    int no_ipv6 = fx_sh("grep -q 'cannot listen' '%s'", log) == 0;
    int said = fx_sh("grep -q \"listening on http://\\[::1\\]:$(cat '%s/port') \" '%s'", dir, log) == 0;
    fx_sh("kill $(cat '%s/pid') 2>/dev/null; sleep 0.2; rm -rf '%s'", dir, dir);
    if (no_ipv6) cr_skip("no IPv6 loopback here");
    cr_assert(said, "the listening line does not name [::1] and the port");
}

/* predict on CSV files that are not what it expects */
Test(cli_messages, predict_names_what_is_wrong_with_its_input) {
    char dir[] = "/tmp/sc_cli_predict_XXXXXX", p[700];
    cr_assert(mkdtemp(dir));
    const char *model = fx_dir();
    /* reported as "-1 columns" */
    snprintf(p, sizeof p, "%s/quote.csv", dir);
    write_text(p, "user_id,item_id\n196,242\n186,\"302\n");
    cr_assert_eq(tcli_semctr("predict --model %s/a.model --input %s --output %s/out.csv", model, p, dir), 1);
    cr_assert(strstr(tcli_out(), "quote.csv:3: a quoted cell is not closed"), "%s", tcli_out());
    /* scored silently as rows of missing values */
    snprintf(p, sizeof p, "%s/tsv.csv", dir);
    write_text(p, "user_id\titem_id\n196\t242\n");
    cr_assert_eq(tcli_semctr("predict --model %s/a.model --input %s --output %s/out.csv", model, p, dir), 1);
    cr_assert(strstr(tcli_out(), "none of its columns ('user_id\titem_id') is one the model reads (") &&
                  strstr(tcli_out(), "--delimiter"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("predict --model %s/a.model --input %s --output %s/out.csv --delimiter '\t'", model, p, dir),
                 0, "%s", tcli_out());
    /* a UTF-8 byte-order mark (as spreadsheets write) is not part of the first column's name */
    char want[64], got[64];
    FILE *f;
    snprintf(p, sizeof p, "%s/out.csv", dir);
    f = fopen(p, "r");
    cr_assert(f && fgets(want, sizeof want, f) && fgets(want, sizeof want, f));
    fclose(f);
    snprintf(p, sizeof p, "%s/bom.csv", dir);
    write_text(p, "\xef\xbb\xbfuser_id,item_id\n196,242\n");
    cr_assert_eq(tcli_semctr("predict --model %s/a.model --input %s --output %s/bom.out", model, p, dir), 0, "%s", tcli_out());
    snprintf(p, sizeof p, "%s/bom.out", dir);
    f = fopen(p, "r");
    cr_assert(f && fgets(got, sizeof got, f) && fgets(got, sizeof got, f));
    fclose(f);
    cr_assert_str_eq(got, want, "with the mark %s, without %s", got, want);
    /* UTF-16 gets a hint, not "not valid UTF-8" or columns nobody wrote */
    static const char u16[] = "\xff\xfeu\0s\0e\0r\0_\0i\0d\0\n\0" "1\0\n\0";
    snprintf(p, sizeof p, "%s/u16.csv", dir);
    write_bytes(p, u16, sizeof u16 - 1);
    cr_assert_eq(tcli_semctr("predict --model %s/a.model --input %s --output %s/out.csv", model, p, dir), 1);
    cr_assert(strstr(tcli_out(), "UTF-16") && strstr(tcli_out(), "iconv"), "%s", tcli_out());
    fx_sh("rm -rf '%s'", dir);
}

/* A tiny dataset with one text column on the item (6 items, 10 users), so
 * an MSD model trains in a second with the default encoder. */
static void tiny_dataset(const char *dir) {
    char p[700];
    snprintf(p, sizeof p, "%s/clicks.csv", dir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fprintf(f, "user_id,item_id,click\n");
    unsigned x = 7;
    for (int i = 0; i < 400; i++) {
        x = x * 1103515245u + 12345u;
        int u = (int)(x >> 16) % 10 + 1, it = (int)(x >> 8) % 6 + 1;
        fprintf(f, "u%d,%d,%d\n", u, it, (int)((x >> 4) % 10) < (it % 2 ? 7 : 3));
    }
    fclose(f);
    snprintf(p, sizeof p, "%s/items.csv", dir);
    const char *items = "1,Heat (1995)\n2,Toy Story (1995)\n3,Fargo (1996)\n4,Alien (1979)\n5,Babe (1995)\n6,Casino (1995)\n";
    write_text(p, items);
    snprintf(p, sizeof p, "%s/tiny.yaml", dir);
    const char *cfg = "name: tiny\ninput: {path: clicks.csv, format: csv, header: true}\nlabel: click\n"
                      "joins:\n  - {name: item, path: items.csv, key: item_id, columns: [item_id, title]}\n"
                      "fields:\n  - {name: user_id, type: categorical}\n  - {name: item_id, type: categorical}\n"
                      "text:\n  - {name: title, column: item.title}\n"
                      "split: {method: random, fractions: [0.8, 0.1, 0.1]}\n";
    write_text(p, cfg);
    cr_assert_eq(tcli_semctr("prepare --config %s/tiny.yaml --out %s/data", dir, dir), 0, "%s", tcli_out());
}

/* MSD's log said "ELEC: ... distinct texts" and `eval --json` reported a
 * scoring time of 0 for an MSD model. */
Test(cli_messages, msd_logs_as_itself_and_eval_times_its_scoring) {
    char dir[] = "/tmp/sc_cli_msd_XXXXXX";
    cr_assert(mkdtemp(dir));
    tiny_dataset(dir);
    char args[2000];
    snprintf(args, sizeof args, "train --method msd --msd-levels item --data %s/data --model lr --out %s/m.model --epochs 1 "
             "--threads 1", dir, dir);
    static char out[1 << 16];
    cr_assert_eq(tcli_run("", args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "distinct texts") && !strstr(out, "ELEC"), "%s", out);
    cr_assert_eq(tcli_semctr("eval --model %s/m.model --data %s/data --json", dir, dir), 0, "%s", tcli_out());
    cr_assert_gt(tcli_json_number(tcli_out(), "score_ms_per_1000"), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m.model --data %s/data", dir, dir), 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "ms per 1,000 rows") && strstr(tcli_out(), "MSD "), "%s", tcli_out());
    fx_sh("rm -rf '%s'", dir);
}

/* "validation AUC did not improve: learning rate now ..." printed before
 * the epoch line it refers to: it must follow an epoch that did not improve. */
Test(cli_messages, the_learning_rate_line_follows_its_epoch) {
    char dir[] = "/tmp/sc_cli_lr_XXXXXX";
    cr_assert(mkdtemp(dir));
    tiny_dataset(dir);
    char args[2000];
    snprintf(args, sizeof args, "train --data %s/data --model deepfm --embed-dim 4 --hidden 8 --out %s/m.model --epochs 6 "
             "--patience 6 --threads 1", dir, dir);
    static char out[1 << 16];
    cr_assert_eq(tcli_run("", args, out, sizeof out), 0, "%s", out);
    int decays = 0;
    const char *prev = NULL;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "did not improve: learning rate now")) {
            cr_assert(prev && !strncmp(prev, "epoch ", 6) && !strstr(prev, "best so far"), "'%s' after '%s'", line,
                      prev ? prev : "(nothing)");
            decays++;
        }
        if (!strncmp(line, "epoch ", 6) || strstr(line, "learning rate now")) prev = line;
    }
    cr_assert_gt(decays, 0, "no epoch failed to improve in 6: the test proves nothing");
    fx_sh("rm -rf '%s'", dir);
}
