/* data: bad input gives the expected status and a message naming the file,
 * line, key or field; failures leave the output folder as it was. Also the
 * CSV splitter, path expansion and gen-criteo -> prepare. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/config.h"
#include "data/csv.h"
#include "data/dataset.h"
#include "data/gen_criteo.h"
#include "data/prepare.h"

static char dir[64];

static void setup(void) {
    sc_log_level = SC_LOG_QUIET;
    strcpy(dir, "/tmp/sc_bad_XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(data_bad, .init = setup, .fini = teardown, .timeout = 60);

static void write_file(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    cr_assert(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char *cfg_tmpl =
    "input:\n"
    "  path: log.csv\n"
    "  header: true\n"
    "label: click\n"
    "fields:\n"
    "  - {name: user, type: categorical}\n"
    "  - {name: price, type: numeric, normalize: standard}\n"
    "split: {method: sequential, fractions: [0.5, 0.25, 0.25]}\n";

static int run(const char *cfg_text, int bad_rows, sc_prepare_stats *st, sc_error *e) {
    write_file("c.yaml", cfg_text);
    char cfgp[256], out[256];
    snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    return sc_prepare_file(cfgp, out, bad_rows, st, e);
}

static const char *good_log = "user,price,click\nu1,1.5,1\nu2,2.5,0\nu1,3,0\nu3,4,1\n";

Test(data_bad, skip_counts_each_reason_fail_names_line) {
    write_file("log.csv", "user,price,click\n"
                          "u1,1.5,1\n"
                          "u2,2.5\n"           /* line 3: column count */
                          "u3,abc,0\n"         /* line 4: not a number */
                          "u\xff,1,0\n"        /* line 5: bad UTF-8 */
                          "u4,2,\n"            /* line 6: missing label */
                          "u4,2,7\n"           /* line 7: label not 0/1 */
                          "u5,2,0\nu6,3,1\nu7,4,0\n");
    sc_prepare_stats st;
    sc_error e;
    cr_assert_eq(run(cfg_tmpl, 0, &st, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(st.rows[0] + st.rows[1] + st.rows[2], 4);
    cr_assert_eq(st.bad[SC_BAD_COLUMNS], 1);
    cr_assert_eq(st.bad[SC_BAD_NUMBER], 1);
    cr_assert_eq(st.bad[SC_BAD_UTF8], 1);
    cr_assert_eq(st.bad[SC_BAD_LABEL], 2);
    cr_assert(strstr(st.bad_first[SC_BAD_COLUMNS], "log.csv:3"), "%s", st.bad_first[SC_BAD_COLUMNS]);
    cr_assert(strstr(st.bad_first[SC_BAD_NUMBER], "log.csv:4"), "%s", st.bad_first[SC_BAD_NUMBER]);
    cr_assert(strstr(st.bad_first[SC_BAD_NUMBER], "price"), "%s", st.bad_first[SC_BAD_NUMBER]);
    cr_assert(strstr(st.bad_first[SC_BAD_UTF8], "log.csv:5"), "%s", st.bad_first[SC_BAD_UTF8]);
    cr_assert(strstr(st.bad_first[SC_BAD_LABEL], "log.csv:6"), "%s", st.bad_first[SC_BAD_LABEL]);
    /* fail mode: the first bad row, with file, line and column */
    cr_assert_eq(run(cfg_tmpl, 1, &st, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "log.csv:3") && strstr(e.msg, "columns"), "%s", e.msg);
    write_file("log.csv", "user,price,click\nu1,1.5,1\nu3,abc,0\n");
    cr_assert_eq(run(cfg_tmpl, 1, &st, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "log.csv:3") && strstr(e.msg, "price") && strstr(e.msg, "abc"), "%s", e.msg);
}

Test(data_bad, config_errors_name_key_and_line) {
    write_file("log.csv", good_log);
    sc_error e;
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%scolour: red\n", cfg_tmpl); /* unknown top-level key, line 9 */
    cr_assert_eq(run(cfg, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:9") && strstr(e.msg, "colour"), "%s", e.msg);
    snprintf(cfg, sizeof cfg, "%s", cfg_tmpl);
    char *p = strstr(cfg, "type: numeric");
    memcpy(p, "tipe: numeric", 13);
    cr_assert_eq(run(cfg, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:7") && strstr(e.msg, "tipe"), "%s", e.msg);
    cr_assert_eq(run("input: [\n", 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "YAML"), "%s", e.msg);
    snprintf(cfg, sizeof cfg, "%s", cfg_tmpl);
    p = strstr(cfg, "{name: user,");
    memcpy(p, "{name: usr, ", 12);
    cr_assert_eq(run(cfg, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "usr") && strstr(e.msg, "unknown column"), "%s", e.msg);
    snprintf(cfg, sizeof cfg, "%s", cfg_tmpl);
    p = strstr(cfg, "label: click");
    memcpy(p, "label: 'x >'", 12);
    cr_assert_eq(run(cfg, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "label"), "%s", e.msg);
}

Test(data_bad, empty_and_missing_input) {
    sc_error e;
    write_file("log.csv", "user,price,click\n");
    cr_assert_eq(run(cfg_tmpl, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "no data rows"), "%s", e.msg);
    write_file("log.csv", "");
    cr_assert_eq(run(cfg_tmpl, 0, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "log.csv") && strstr(e.msg, "empty"), "%s", e.msg);
    unlink(strcat(strcpy((char[256]){0}, dir), "/log.csv"));
    cr_assert_eq(run(cfg_tmpl, 0, NULL, &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "log.csv"), "%s", e.msg);
}

Test(data_bad, failure_keeps_previous_output) {
    write_file("log.csv", good_log);
    sc_error e;
    cr_assert_eq(run(cfg_tmpl, 0, NULL, &e), SC_OK, "%s", e.msg);
    char p[256], *before, *after;
    size_t nb, na;
    snprintf(p, sizeof p, "%s/out/train.scd", dir);
    cr_assert_eq(sc_read_file(p, &before, &nb, &e), SC_OK);
    /* a late failure: the last row is bad and bad_rows is fail */
    write_file("log.csv", "user,price,click\nu9,1,1\nu8,2,0\nu7,3,0\nu6,4,1\nu5,x,1\n");
    cr_assert_eq(run(cfg_tmpl, 1, NULL, &e), SC_EINVAL);
    cr_assert_eq(sc_read_file(p, &after, &na, &e), SC_OK);
    cr_assert_eq(nb, na);
    cr_assert_eq(memcmp(before, after, nb), 0);
    sc_free(before);
    sc_free(after);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ls %s/out | grep -c tmp", dir);
    FILE *fp = popen(cmd, "r");
    int n = -1;
    cr_assert_eq(fscanf(fp, "%d", &n), 1);
    pclose(fp);
    cr_assert_eq(n, 0, "no temporary files left behind");
}

Test(data_bad, csv_split_cases) {
    sc_cell c[8];
    char a[] = "a::b::::c";
    cr_assert_eq(sc_csv_split(a, strlen(a), "::", 2, 0, c, 8), 4);
    cr_assert_eq(c[2].len, 0);
    cr_assert_eq(c[3].len, 1);
    cr_assert_eq(c[3].p[0], 'c');
    char b[] = "\"x,\"\"y\"\",z\",2,";
    cr_assert_eq(sc_csv_split(b, strlen(b), ",", 1, '"', c, 8), 3);
    cr_assert_eq(c[0].len, 7);
    cr_assert_eq(memcmp(c[0].p, "x,\"y\",z", 7), 0);
    cr_assert_eq(c[2].len, 0);
    char d[] = "\"open,1";
    cr_assert_eq(sc_csv_split(d, strlen(d), ",", 1, '"', c, 8), -1);
    char u[] = "caf\xc3\xa9";
    cr_assert(sc_utf8_valid(u, strlen(u), NULL));
    cr_assert(!sc_utf8_valid("\xc0\xaf", 2, NULL)); /* overlong */
    cr_assert(!sc_utf8_valid("\xed\xa0\x80", 3, NULL)); /* surrogate */
    char l1[] = "Mis\xe9rables", out[32];
    size_t n = sc_latin1_to_utf8(l1, strlen(l1), out);
    cr_assert_eq(n, 11);
    cr_assert_eq(memcmp(out, "Mis\xc3\xa9rables", 11), 0);
}

Test(data_bad, path_expansion) {
    sc_error e;
    setenv("SC_TEST_VAR", "/data", 1);
    unsetenv("SC_TEST_UNSET");
    char *p = sc_expand_path("${SC_TEST_VAR}/x.csv", "/cfg", "t", &e);
    cr_assert_str_eq(p, "/data/x.csv");
    sc_free(p);
    p = sc_expand_path("${SC_TEST_UNSET:-${SC_TEST_VAR:-no}/a}/b", "/cfg", "t", &e);
    cr_assert_str_eq(p, "/data/a/b");
    sc_free(p);
    p = sc_expand_path("${SC_TEST_UNSET:-rel}/b", "/cfg", "t", &e);
    cr_assert_str_eq(p, "/cfg/rel/b");
    sc_free(p);
    cr_assert_null(sc_expand_path("${SC_TEST_UNSET}/b", "/cfg", "cfg.yaml:3", &e));
    cr_assert(strstr(e.msg, "SC_TEST_UNSET") && strstr(e.msg, "cfg.yaml:3"), "%s", e.msg);
}

Test(data_bad, gen_criteo_then_prepare) {
    char path[256], out[256];
    snprintf(path, sizeof path, "%s/gen.txt", dir);
    snprintf(out, sizeof out, "%s/cr", dir);
    sc_error e;
    int64_t pos;
    cr_assert_eq(sc_gen_criteo(path, 20000, 7, &pos, &e), SC_OK, "%s", e.msg);
    cr_assert(pos > 20000 * 0.15 && pos < 20000 * 0.35, "click rate %lld / 20000", (long long)pos);
    char *a, *b;
    size_t na, nb;
    cr_assert_eq(sc_read_file(path, &a, &na, &e), SC_OK);
    cr_assert_eq(sc_gen_criteo(path, 20000, 7, NULL, &e), SC_OK);
    cr_assert_eq(sc_read_file(path, &b, &nb, &e), SC_OK);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "same seed, same bytes");
    sc_free(b);
    /* every line: 40 tab-separated cells, C fields empty or 8 hex digits */
    int lines = 0;
    for (char *l = a; *l; lines++) {
        char *nl = strchr(l, '\n');
        cr_assert(nl);
        int tabs = 0;
        for (char *q = l; q < nl; q++) tabs += *q == '\t';
        cr_assert_eq(tabs, 39);
        l = nl + 1;
    }
    cr_assert_eq(lines, 20000);
    sc_free(a);
    setenv("SEMCTR_CRITEO", path, 1);
    sc_prepare_stats st;
    cr_assert_eq(sc_prepare_file("configs/criteo.yaml", out, -1, &st, &e), SC_OK, "%s", e.msg);
    unsetenv("SEMCTR_CRITEO");
    cr_assert_eq(st.rows[0], 16000);
    cr_assert_eq(st.rows[1], 2000);
    cr_assert_eq(st.rows[2], 2000);
    cr_assert_eq(st.positives[0] + st.positives[1] + st.positives[2], pos);
    sc_dataset ds;
    snprintf(path, sizeof path, "%s/cr/valid.scd", dir);
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(ds.n_fields, 39);
    cr_assert_null(ds.group);
    sc_dataset_close(&ds);
}
