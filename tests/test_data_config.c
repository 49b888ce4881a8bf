/* data: config keys a new dataset needs and the mistakes it invites —
 * `by` naming a field, text split at a separator, keys given to a field type
 * they do not apply to, errors that name file:line, join keys without a
 * match counted, cumulative split cuts, and YAML nested deep enough to make
 * libyaml quadratic (refused fast). The inputs are MovieLens in the layout
 * of its newer releases (tests/fixtures/movielens-latest: ratings.csv with
 * userId/movieId, movies.csv with '|'-separated genres, no user table). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "data/config.h"
#include "data/dataset.h"
#include "data/entity.h"
#include "data/prepare.h"
#include "data/schema.h"

static char dir[64], fixtures[4096];

static void setup(void) {
    sc_log_level = SC_LOG_QUIET;
    strcpy(dir, "/tmp/sc_cfg_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert(realpath("tests/fixtures/movielens-latest", fixtures), "run from the repository root");
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(data_config, .init = setup, .fini = teardown, .timeout = 60);

static void write_file(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    cr_assert(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The config's text with @ replaced by the fixtures' folder; prepared into DIR/out. */
static int run(const char *cfg, sc_prepare_stats *st, sc_error *e) {
    char text[8192], *w = text;
    for (const char *p = cfg; *p && w < text + sizeof text - 4200; p++) {
        if (*p == '@') w += sprintf(w, "%s", fixtures);
        else *w++ = *p;
    }
    *w = 0;
    write_file("c.yaml", text);
    char cfgp[256], out[256];
    snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    return sc_prepare_file(cfgp, out, -1, st, e);
}

/* The MovieLens-latest config; FIELDS and TEXT are spliced in. */
#define ML_HEAD                                                                                                      \
    "input: {path: @/ratings.csv, header: true}\n"                                                                  \
    "label: rating >= 4\n"                                                                                         \
    "joins:\n"                                                                                                     \
    "  - {name: movie, path: @/movies.csv, header: true, key: movieId}\n"
#define ML_SPLIT "split: {method: time, column: timestamp}\n"

/* by names a field (user_id reads the column userId), as of and group do. */
Test(data_config, sequence_by_takes_a_field_name) {
    sc_error e;
    const char *cfg = ML_HEAD
        "fields:\n"
        "  - {name: user_id, column: userId, type: categorical}\n"
        "  - {name: item_id, column: movieId, type: categorical}\n"
        "  - {name: history, type: sequence, of: item_id, by: user_id, max_len: 5, share_embedding: item_id}\n"
        ML_SPLIT "group: user_id\n";
    cr_assert_eq(run(cfg, NULL, &e), SC_OK, "%s", e.msg);
    /* the history of each row holds the items of the same user's earlier rows */
    char path[256];
    snprintf(path, sizeof path, "%s/out/train.scd", dir);
    sc_dataset ds;
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_OK, "%s", e.msg);
    int checked = 0;
    for (int64_t r = 1; r < ds.n_rows; r++) {
        const int32_t *h = ds.ids[2] + r * 5;
        if (!h[0]) continue;
        int64_t prev = r - 1; /* the most recent earlier row of this user */
        while (prev >= 0 && ds.group[prev] != ds.group[r]) prev--;
        cr_assert(prev >= 0, "row %lld has a history but no earlier row of its user", (long long)r);
        cr_assert_eq(h[0], ds.ids[1][prev], "row %lld", (long long)r);
        checked++;
    }
    cr_assert_gt(checked, 4000);
    sc_dataset_close(&ds);
    /* a column still works; a name that is neither is an error naming both */
    char c2[4096];
    snprintf(c2, sizeof c2, "%s", cfg);
    memcpy(strstr(c2, "by: user_id"), "by: userId ", 11);
    cr_assert_eq(run(c2, NULL, &e), SC_OK, "%s", e.msg);
    memcpy(strstr(c2, "by: userId "), "by: usr_id ", 11);
    cr_assert_eq(run(c2, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:8") && strstr(e.msg, "names no field") && strstr(e.msg, "userId"), "%s", e.msg);
    /* by a multi field: not one user per row */
    const char *multi = ML_HEAD
        "fields:\n"
        "  - {name: item_id, column: movieId, type: categorical}\n"
        "  - {name: genres, column: movie.genres, type: multi, max_len: 4}\n"
        "  - {name: history, type: sequence, of: item_id, by: genres, max_len: 5}\n" ML_SPLIT;
    cr_assert_eq(run(multi, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:8") && strstr(e.msg, "multi"), "%s", e.msg);
}

/* separator on a text column: "Crime|Drama" becomes "Crime, Drama" (or the joiner given), in prepare and in
 * the entity tables `semctr embed --entity` reads. */
Test(data_config, text_separator_joins_the_values) {
    sc_error e;
    const char *cfg = ML_HEAD
        "fields:\n"
        "  - {name: item_id, column: movieId, type: categorical}\n"
        "text:\n"
        "  - {name: genres, column: movie.genres, separator: '|'}\n"
        "  - {name: genres_slash, column: movie.genres, separator: '|', joiner: ' / '}\n"
        "  - {name: raw, column: movie.genres}\n" ML_SPLIT;
    cr_assert_eq(run(cfg, NULL, &e), SC_OK, "%s", e.msg);
    sc_schema *s;
    char out[256];
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(sc_schema_load(&s, out, &e), SC_OK, "%s", e.msg);
    int g = sc_schema_text_index(s, "genres"), sl = sc_schema_text_index(s, "genres_slash"),
        raw = sc_schema_text_index(s, "raw");
    int found = 0;
    for (int32_t i = 0; i < sc_schema_text_count(s, raw); i++) {
        if (strcmp(sc_schema_text(s, raw, i), "Animation|Children|Comedy")) continue;
        found = 1;
        cr_assert_str_eq(sc_schema_text(s, g, i), "Animation, Children, Comedy");
        cr_assert_str_eq(sc_schema_text(s, sl, i), "Animation / Children / Comedy");
    }
    cr_assert(found, "Toy Story's genres are in the fixture");
    sc_schema_free(s);
    /* the entity table (embed --entity movie) derives the same text */
    char cfgp[256];
    snprintf(cfgp, sizeof cfgp, "%s/c.yaml", dir);
    sc_entity_table t;
    cr_assert_eq(sc_entity_table_load(&t, cfgp, "movie", &e), SC_OK, "%s", e.msg);
    int col = sc_entity_table_col(&t, "genres_slash", 12);
    cr_assert_geq(col, 0);
    cr_assert_str_eq(t.cells[0 * t.n_cols + col], "Animation / Children / Comedy"); /* movie 1: Toy Story */
    sc_entity_table_free(&t);
}

/* Keys in the wrong place are errors naming the key, the field and the line. */
Test(data_config, misplaced_keys_are_errors) {
    static const struct {
        const char *entry, *want;
    } cases[] = {
        {"  - {name: item_id, column: movieId, type: categorical, max_len: 3}", "'max_len' applies to multi and sequence"},
        {"  - {name: g, column: movie.genres, type: multi, max_len: 3, share_embedding: true}", "'share_embedding' applies to sequence"},
        {"  - {name: r, column: rating, type: numeric, buckets: [2, 4], fill: 3}", "'fill' applies to plain numeric"},
        {"  - {name: r, column: rating, type: numeric, min_count: 2}", "'min_count' applies to a numeric field only with"},
        {"  - {name: item_id, column: movieId, type: categorical, hash_buckets: 9, min_count: 2}", "exclude each other"},
        {"  - {name: item_id, column: movieId, type: categorical, separator: ','}", "'separator' applies to multi"},
        {"  - {name: item_id, column: movieId, type: categorical, pooling: sum}", "'pooling' applies to multi"},
        {"  - {name: h, type: sequence, column: movieId, of: x, by: userId, max_len: 2}", "'column' applies to categorical, numeric and multi"},
        {"  - {name: r, column: rating, type: numeric, of: movieId}", "'of' applies to sequence"},
        {"  - {name: g, column: movie.genres, type: multi, max_len: 3, flags: [a, b]}", "give 'column' or 'flags'"},
    };
    sc_error e;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cfg[2048];
        snprintf(cfg, sizeof cfg, ML_HEAD "fields:\n%s\n" ML_SPLIT, cases[i].entry);
        cr_assert_eq(run(cfg, NULL, &e), SC_EINVAL, "case %zu accepted: %s", i, cases[i].entry);
        cr_assert(strstr(e.msg, "c.yaml:6") && strstr(e.msg, cases[i].want), "case %zu: %s", i, e.msg);
    }
    static const struct {
        const char *entry, *want;
    } texts[] = {
        {"  - {name: g, column: movie.genres, flags: [a, b]}", "give 'column' or 'flags', not both"},
        {"  - {name: g, column: movie.genres, joiner: ' / '}", "'joiner' joins the values of 'flags' or of a cell"},
        {"  - {name: g, flags: [a, b], separator: '|'}", "'separator' splits a cell"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char cfg[2048];
        snprintf(cfg, sizeof cfg, ML_HEAD "fields:\n  - {name: u, column: userId, type: categorical}\ntext:\n%s\n" ML_SPLIT,
                 texts[i].entry);
        cr_assert_eq(run(cfg, NULL, &e), SC_EINVAL, "text case %zu accepted", i);
        cr_assert(strstr(e.msg, "c.yaml:8") && strstr(e.msg, texts[i].want), "text case %zu: %s", i, e.msg);
    }
}

/* A label, split or group column that is not there: file:line and the columns that are. */
Test(data_config, missing_columns_name_file_line_and_the_columns) {
    sc_error e;
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%s", ML_HEAD "fields:\n  - {name: u, column: userId, type: categorical}\n" ML_SPLIT);
    memcpy(strstr(cfg, "label: rating >= 4"), "label: stars >= 4 ", 18);
    cr_assert_eq(run(cfg, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:2: label column 'stars' is not a column of the input") &&
                  strstr(e.msg, "userId, movieId, rating, timestamp"),
              "%s", e.msg);
    snprintf(cfg, sizeof cfg, "%s",
             ML_HEAD "fields:\n  - {name: u, column: userId, type: categorical}\nsplit: {method: time, column: ts}\n");
    cr_assert_eq(run(cfg, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:7: split column 'ts'"), "%s", e.msg);
    snprintf(cfg, sizeof cfg, "%s", ML_HEAD "fields:\n  - {name: r, column: rating, type: numeric}\n" ML_SPLIT "group: r\n");
    cr_assert_eq(run(cfg, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "c.yaml:8: group field 'r' must not be numeric"), "%s", e.msg);
}

/* Rows whose join key has no match: counted per join, with the first one, in the stats and meta.json. */
Test(data_config, unmatched_join_keys_are_counted) {
    write_file("few_movies.csv", "movieId,title,genres\n1,Toy Story (1995),Animation|Children|Comedy\n");
    write_file("log.csv", "userId,movieId,rating,timestamp\n1,1,5,10\n1,99,3,11\n2,1,4,12\n2,,4,13\n3,7,1,14\n");
    const char *cfg = "input: {path: log.csv, header: true}\n"
                      "label: rating >= 4\n"
                      "joins:\n"
                      "  - {name: movie, path: few_movies.csv, header: true, key: movieId}\n"
                      "fields:\n"
                      "  - {name: u, column: userId, type: categorical}\n"
                      "  - {name: g, column: movie.genres, type: multi, max_len: 3}\n"
                      "split: {method: sequential, fractions: [0.6, 0.2, 0.2]}\n";
    sc_prepare_stats st;
    sc_error e;
    cr_assert_eq(run(cfg, &st, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(st.n_joins, 1);
    cr_assert_str_eq(st.joins[0].name, "movie");
    cr_assert_eq(st.joins[0].rows, 1);
    cr_assert_eq(st.joins[0].unmatched, 3); /* 99, the empty key and 7 */
    cr_assert(strstr(st.joins[0].first, "log.csv:3") && strstr(st.joins[0].first, "'99'"), "%s", st.joins[0].first);
    char path[256], *meta;
    size_t n;
    snprintf(path, sizeof path, "%s/out/meta.json", dir);
    cr_assert_eq(sc_read_file(path, &meta, &n, &e), SC_OK);
    cr_assert(strstr(meta, "\"unmatched\":\t3"), "%s", meta);
    sc_free(meta);
}

/* The cuts are cumulative: floor(n * 0.8) and floor(n * 0.9), so valid and test differ by at most a row. */
Test(data_config, split_cuts_are_cumulative) {
    sc_strbuf log = {0};
    sc_strbuf_str(&log, "u,click,t\n");
    for (int i = 0; i < 37; i++) {
        char row[64];
        snprintf(row, sizeof row, "u%d,%d,%d\n", i % 5, i % 2, 1000 - i);
        sc_strbuf_str(&log, row);
    }
    write_file("log.csv", log.s);
    sc_free(log.s);
    const char *methods[] = {"sequential", "time, column: t"};
    for (int m = 0; m < 2; m++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg,
                 "input: {path: log.csv, header: true}\nlabel: click\nfields:\n  - {name: u, type: categorical}\n"
                 "split: {method: %s, fractions: [0.8, 0.1, 0.1]}\n", methods[m]);
        sc_prepare_stats st;
        sc_error e;
        cr_assert_eq(run(cfg, &st, &e), SC_OK, "%s", e.msg);
        /* 37 rows: 29.6 -> 29 train, 33.3 -> 33: 4 valid, 4 test (a cut of each fraction alone gave 29 / 3 / 5) */
        cr_assert_eq(st.rows[0], 29, "%s", methods[m]);
        cr_assert_eq(st.rows[1], 4, "%s", methods[m]);
        cr_assert_eq(st.rows[2], 4, "%s", methods[m]);
    }
    /* 0.7 + 0.2 is 0.8999999999999999 in doubles: 10 rows still cut at 7 and 9 */
    const char *cfg = "input: {path: log.csv, header: true}\nlabel: click\nfields:\n  - {name: u, type: categorical}\n"
                      "split: {method: sequential, fractions: [0.7, 0.2, 0.1]}\n";
    write_file("log.csv", "u,click,t\na,1,1\na,0,2\nb,1,3\nb,0,4\nc,1,5\nc,0,6\nd,1,7\nd,0,8\ne,1,9\ne,0,10\n");
    sc_prepare_stats st;
    sc_error e;
    cr_assert_eq(run(cfg, &st, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(st.rows[0], 7);
    cr_assert_eq(st.rows[1], 2);
    cr_assert_eq(st.rows[2], 1);
}

/* 100,000 nested '[' took libyaml 24 s before its error (quadratic); now refused at level 65. The timeout
 * bounds the time. */
Test(data_config, deep_yaml_is_refused_fast, .timeout = 10) {
    size_t n = 100000;
    char *text = sc_malloc(2 * n + 64);
    size_t w = (size_t)sprintf(text, "name: x\nfields: ");
    memset(text + w, '[', n);
    memset(text + w + n, ']', n);
    text[w + 2 * n] = 0;
    sc_dcfg *cfg;
    sc_error e;
    cr_assert_eq(sc_dcfg_parse(&cfg, text, strlen(text), "deep.yaml", NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "deep.yaml:2") && strstr(e.msg, "nested deeper than 64"), "%s", e.msg);
    /* the same in block style, and mappings */
    sc_strbuf b = {0};
    for (int i = 0; i < 100; i++) {
        char line[256];
        snprintf(line, sizeof line, "%*sk:\n", i, "");
        sc_strbuf_str(&b, line);
    }
    cr_assert_eq(sc_dcfg_parse(&cfg, b.s, b.len, "block.yaml", NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "block.yaml:65") && strstr(e.msg, "nested deeper"), "%s", e.msg);
    sc_free(b.s);
    /* a long list of columns: bounded, with a message */
    sc_strbuf c = {0};
    sc_strbuf_str(&c, "input: {path: x, columns: [");
    for (int i = 0; i < 100000; i++) {
        char col[16];
        snprintf(col, sizeof col, "%sc%d", i ? "," : "", i);
        sc_strbuf_str(&c, col);
    }
    sc_strbuf_str(&c, "]}\n");
    cr_assert_eq(sc_dcfg_parse(&cfg, c.s, c.len, "wide.yaml", NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "wide.yaml:1") && strstr(e.msg, "'columns' needs 1 to 4096"), "%s", e.msg);
    sc_free(c.s);
    sc_free(text);
}

/* configs/ml-latest.yaml, on the fixture by default: the protocol of ml-100k on the newer layout. */
Test(data_config, ml_latest_config_prepares_the_fixture) {
    unsetenv("SEMCTR_ML_LATEST");
    char out[256];
    snprintf(out, sizeof out, "%s/out", dir);
    sc_prepare_stats st;
    sc_error e;
    cr_assert_eq(sc_prepare_file("configs/ml-latest.yaml", out, -1, &st, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(st.rows[0], 5267); /* 6,584 ratings: floor(0.8 n), floor(0.9 n) */
    cr_assert_eq(st.rows[1], 658);
    cr_assert_eq(st.rows[2], 659);
    cr_assert_eq(st.joins[0].unmatched, 0);
    sc_schema *s;
    cr_assert_eq(sc_schema_load(&s, out, &e), SC_OK, "%s", e.msg);
    int g = sc_schema_text_index(s, "genres"), found = 0;
    for (int32_t i = 0; i < sc_schema_text_count(s, g); i++) found |= !strcmp(sc_schema_text(s, g, i), "Animation, Children, Comedy");
    cr_assert(found, "the genres text of Toy Story");
    cr_assert_geq(sc_schema_field_index(s, "year"), 0);
    sc_schema_free(s);
}
