/* data: `semctr init` drafts a config that `semctr prepare` accepts as it
 * is, for every dataset in ../shared/data (MovieLens-100K with its side
 * tables, the Criteo and Avazu samples, the three format samples, Amazon's
 * reviews once converted to TSV) and for MovieLens in the layout of its
 * newer releases (tests/fixtures/movielens-latest); what it drafts is what
 * the data is (label, time split, joins, multi-valued and text columns);
 * it never overwrites a config without --force; bad arguments name what is
 * wrong. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "test_cli_util.h"

static char dir[64];
static const char *data;

static void setup(void) {
    strcpy(dir, "/tmp/sc_init_XXXXXX");
    cr_assert(mkdtemp(dir));
    data = getenv("SEMCTR_DATA");
    if (!data || !*data) data = "../shared/data";
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(data_init, .init = setup, .fini = teardown, .timeout = 120);

static char *read_text(const char *path) {
    char *t;
    size_t n;
    cr_assert_eq(sc_read_file(path, &t, &n, NULL), SC_OK, "%s", path);
    return t;
}

/* init ARGS --out DIR/NAME.yaml, then prepare it into DIR/NAME; returns the config text (sc_free). */
static char *init_and_prepare(const char *name, const char *args, long want_rows) {
    cr_assert_eq(tcli_semctr("init %s --out %s/%s.yaml", args, dir, name), 0, "%s: %s", name, tcli_out());
    cr_assert_eq(tcli_semctr("prepare --config %s/%s.yaml --out %s/%s", dir, name, dir, name), 0, "%s: %s", name,
                 tcli_out());
    long all = 0;
    const char *p = strstr(tcli_out(), "  all ");
    cr_assert(p && sscanf(p, "  all %ld", &all) == 1, "%s", tcli_out());
    cr_assert_eq(all, want_rows, "%s: %ld rows prepared", name, all);
    cr_assert(!strstr(tcli_out(), "bad rows"), "%s: %s", name, tcli_out());
    char path[256];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    return read_text(path);
}

static void has(const char *text, const char *want, const char *what) {
    cr_assert(strstr(text, want), "%s: no '%s' in\n%s", what, want, text);
}

Test(data_init, movielens_100k_with_its_side_tables) {
    char args[1024];
    snprintf(args, sizeof args, "--input %s/ml-100k/u.data --join item=%s/ml-100k/u.item:1 --join user=%s/ml-100k/u.user:1",
             data, data, data);
    char *y = init_and_prepare("ml", args, 100000);
    has(y, "columns: [user_id, item_id, rating, timestamp]", "names from the joins and the values");
    has(y, "label: \"rating >= 4\"", "label");
    has(y, "encoding: latin1", "u.item is Latin-1");
    has(y, "method: time", "split");
    has(y, "column: timestamp", "split");
    has(y, "max_len: 6\n    flags: [item.item_c6,", "the 19 genre flags, at most 6 per movie");
    has(y, "of: item_id\n    by: user_id", "history");
    has(y, "group: user_id", "group");
    has(y, "item.item_c5: URLs", "URLs left out");
    /* the same split as configs/ml-100k.yaml: 80,000 / 10,000 / 10,000, 44,072 train positives */
    cr_assert(strstr(tcli_out(), "train      80000 rows      44072 positives"), "%s", tcli_out());
    sc_free(y);
}

Test(data_init, movielens_latest_layout) {
    char args[1024];
    snprintf(args, sizeof args,
             "--input tests/fixtures/movielens-latest/ratings.csv --join movie=tests/fixtures/movielens-latest/movies.csv:movieId");
    char *y = init_and_prepare("mll", args, 6584);
    has(y, "quote: '\"'", "CSV quoting (titles hold commas)");
    has(y, "key: movieId", "join");
    has(y, "{name: genres, column: movie.genres, type: multi, separator: \"|\", max_len: 6}", "genres");
    has(y, "{name: genres, column: movie.genres, separator: \"|\", joiner: \", \"}", "genres as text");
    has(y, "{name: title, column: movie.title}", "title as text");
    has(y, "of: movieId\n    by: userId", "history by the user field");
    sc_free(y);
}

Test(data_init, criteo_and_avazu_samples) {
    char args[1024];
    snprintf(args, sizeof args, "--input %s/criteo-sample/train_10000.txt", data);
    char *y = init_and_prepare("criteo", args, 10000);
    has(y, "format: criteo", "Criteo's raw layout");
    sc_free(y);
    snprintf(args, sizeof args, "--input %s/avazu-sample/train_9999.csv", data);
    y = init_and_prepare("avazu", args, 9999);
    has(y, "label: click", "label");
    has(y, "method: sequential", "no time column");
    has(y, "#   id: a different value in every row", "the row id left out");
    cr_assert(!strstr(y, "group:"), "no user column, no group:\n%s", y);
    sc_free(y);
}

Test(data_init, format_samples) {
    static const struct {
        const char *file, *label;
        long rows;
    } samples[] = {
        {"criteo_sample.txt", "label: label", 200},
        {"avazu_sample.txt", "label: click", 100},
        {"movielens_sample.txt", "label: \"rating >= 4\"", 200},
    };
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        char args[512], name[16];
        snprintf(args, sizeof args, "--input %s/samples/%s", data, samples[i].file);
        snprintf(name, sizeof name, "s%zu", i);
        char *y = init_and_prepare(name, args, samples[i].rows);
        has(y, samples[i].label, samples[i].file);
        if (i == 2) has(y, "type: multi, separator: \"|\"", "genres");
        sc_free(y);
    }
}

Test(data_init, amazon_reviews_json_then_tsv) {
    char args[1024];
    snprintf(args, sizeof args, "--input %s/amazon-musical-instruments/reviews_Musical_Instruments_5.json", data);
    cr_assert_eq(tcli_semctr("init %s --out %s/amz.yaml", args, dir), 1, "%s", tcli_out());
    has(tcli_out(), "JSON, not a delimited table", "json");
    has(tcli_out(), "scripts/prepare_amazon_mi.py", "json");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 scripts/prepare_amazon_mi.py --input %s/amazon-musical-instruments/reviews_Musical_Instruments_5.json "
             "--out %s/amz-src > /dev/null 2>&1",
             data, dir);
    if (system(cmd) != 0) cr_skip_test("python3 scripts/prepare_amazon_mi.py did not run");
    snprintf(args, sizeof args, "--input %s/amz-src/interactions.tsv --join item=%s/amz-src/items.tsv:item_id "
                                "--join user=%s/amz-src/users.tsv:user_id", dir, dir, dir);
    char *y = init_and_prepare("amz", args, 7183);
    has(y, "label: \"overall >= 5\"", "the cut configs/amazon-mi.yaml uses");
    has(y, "{name: item_reviews, column: item.reviews}", "item text");
    has(y, "{name: user_reviews, column: user.reviews}", "user text");
    sc_free(y);
}

Test(data_init, never_overwrites_without_force) {
    char path[256], args[512];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *fp = fopen(path, "w");
    fputs("mine\n", fp);
    fclose(fp);
    snprintf(args, sizeof args, "--input tests/fixtures/movielens-latest/ratings.csv");
    cr_assert_eq(tcli_semctr("init %s --out %s", args, path), 2, "%s", tcli_out());
    has(tcli_out(), "exists; give --force", "refusal");
    char *t = read_text(path);
    cr_assert_str_eq(t, "mine\n");
    sc_free(t);
    cr_assert_eq(tcli_semctr("init %s --out %s --force", args, path), 0, "%s", tcli_out());
    t = read_text(path);
    has(t, "label: \"rating >= 4\"", "replaced");
    /* the same files give the same draft */
    cr_assert_eq(tcli_semctr("init %s --out %s/again.yaml", args, dir), 0, "%s", tcli_out());
    snprintf(path, sizeof path, "%s/again.yaml", dir);
    char *t2 = read_text(path);
    cr_assert_str_eq(t, t2);
    sc_free(t);
    sc_free(t2);
}

Test(data_init, bad_arguments_say_what_is_wrong) {
    const char *in = "--input tests/fixtures/movielens-latest/ratings.csv";
    cr_assert_eq(tcli_semctr("init %s --out %s/x.yaml --join movie", in, dir), 2);
    has(tcli_out(), "NAME=FILE:KEY", "join syntax");
    cr_assert_eq(tcli_semctr("init %s --out %s/x.yaml --join movie=tests/fixtures/movielens-latest/movies.csv:nosuch", in, dir), 1);
    has(tcli_out(), "'nosuch' is not a column", "key");
    has(tcli_out(), "movieId, title, genres", "the columns");
    cr_assert_eq(tcli_semctr("init %s --out %s/x.yaml --label stars", in, dir), 1);
    has(tcli_out(), "'stars' is not a column", "label");
    /* no label in sight: the message says how to give one */
    char path[256];
    snprintf(path, sizeof path, "%s/nolabel.csv", dir);
    FILE *fp = fopen(path, "w");
    fputs("user,item,price\nu1,i1,3.5\nu2,i2,17.25\nu1,i3,120.0\nu3,i1,3.75\n", fp);
    fclose(fp);
    cr_assert_eq(tcli_semctr("init --input %s --out %s/x.yaml", path, dir), 1);
    has(tcli_out(), "--label", "hint");
    cr_assert_eq(tcli_semctr("init --input %s --out %s/x.yaml --label 'price > 10'", path, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("prepare --config %s/x.yaml --out %s/x", dir, dir), 0, "%s", tcli_out());
    /* names YAML must escape (a C1 control from Latin-1, a quote, a tab) or that `label:` cannot hold (an
     * operator), and a UTF-8 byte order mark: the draft still reads back and prepares */
    snprintf(path, sizeof path, "%s/odd.csv", dir);
    fp = fopen(path, "wb");
    fputs("\xef\xbb\xbfuser_id,\"it\"\"em\",\"a\tb\",c>=d,click\n", fp);
    for (int i = 0; i < 40; i++) fprintf(fp, "u%d,i%d,x%d,%d,%d\n", i % 7, i % 5, i % 3, i % 2, (i / 2) % 2);
    fclose(fp);
    cr_assert_eq(tcli_semctr("init --input %s --out %s/odd.yaml", path, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("prepare --config %s/odd.yaml --out %s/odd", dir, dir), 0, "%s", tcli_out());
    snprintf(path, sizeof path, "%s/odd.yaml", dir);
    char *y = read_text(path);
    has(y, "label: click", "the operator-named 0/1 column is not the label");
    has(y, "\"it\\\"em\"", "a quote escaped");
    has(y, "byte order mark", "the BOM noted");
    sc_free(y);
    snprintf(path, sizeof path, "%s/latin1.csv", dir);
    fp = fopen(path, "wb");
    fputs("user_id,mov\x80\xffie,click\n1,a,1\n2,b,0\n3,a,1\n", fp);
    fclose(fp);
    cr_assert_eq(tcli_semctr("init --input %s --out %s/l1.yaml", path, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("prepare --config %s/l1.yaml --out %s/l1", dir, dir), 0, "%s", tcli_out());
    /* not a table */
    snprintf(path, sizeof path, "%s/utf16.csv", dir);
    fp = fopen(path, "wb");
    fwrite("\xff\xfeu\0,\0", 1, 6, fp);
    fclose(fp);
    cr_assert_eq(tcli_semctr("init --input %s --out %s/x.yaml --force", path, dir), 1);
    has(tcli_out(), "UTF-16", "utf16");
}
