/* data: a prepared dataset folder changes as a whole, and its readers refuse
 * files that do not belong together — from the user's side, with the real
 * binary. An interrupted `prepare` is simulated by SIGKILL at each of its
 * fault points (SEMCTR_FAULT, data/datadir.h): every time the folder holds
 * the old dataset or the new one, complete, and `train` accepts it. A folder
 * that mixes two runs' files (a new schema beside old splits, the state the
 * old prepare left when killed between its renames) is refused by train and
 * eval with a message naming the file and `semctr prepare`. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "test_cli_util.h"

static char dir[64];

static void setup(void) {
    strcpy(dir, "/tmp/sc_atomic_XXXXXX");
    cr_assert(mkdtemp(dir));
    /* two configs over the MovieLens-latest fixture that differ in their split: A 80/10/10, B 50/25/25 */
    char fx[4096], path[256];
    cr_assert(realpath("tests/fixtures/movielens-latest", fx), "run from the repository root");
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%c.yaml", dir, "ab"[k]);
        FILE *fp = fopen(path, "w");
        cr_assert(fp);
        fprintf(fp,
                "input: {path: %s/ratings.csv, header: true}\n"
                "label: rating >= 4\n"
                "joins:\n"
                "  - {name: movie, path: %s/movies.csv, header: true, key: movieId}\n"
                "fields:\n"
                "  - {name: user, column: userId, type: categorical}\n"
                "  - {name: item, column: movieId, type: categorical}\n"
                "  - {name: genres, column: movie.genres, type: multi, max_len: 6}\n"
                "split: {method: time, column: timestamp, fractions: %s}\n",
                fx, fx, k ? "[0.5, 0.25, 0.25]" : "[0.8, 0.1, 0.1]");
        fclose(fp);
    }
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(data_atomic, .init = setup, .fini = teardown, .timeout = 120);

/* The train rows meta.json of DIR/sub reports. */
static long train_rows(const char *sub) {
    char path[256], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/%s/meta.json", dir, sub);
    cr_assert_eq(sc_read_file(path, &text, &n, NULL), SC_OK, "%s", path);
    const char *rows = strstr(text, "\"rows\"");
    cr_assert(rows, "%s", text);
    long v = (long)tcli_json_number(rows, "train");
    sc_free(text);
    return v;
}

/* Entries of DIR whose names start with prefix. */
static int count_entries(const char *prefix) {
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

Test(data_atomic, a_killed_prepare_leaves_one_complete_dataset) {
    cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/data", dir, dir), 0, "%s", tcli_out());
    long rows_a = train_rows("data");
    /* files that are not the dataset's (train's LLM caches, notes) belong to the folder and stay */
    char path[256];
    snprintf(path, sizeof path, "%s/data/elec-cache.vec", dir);
    FILE *fp = fopen(path, "w");
    fputs("cache", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/data/notes", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    static const struct {
        const char *point;
        int swapped; /* the kill comes after the new dataset replaced the old one */
    } points[] = {{"prepare.splits", 0}, {"prepare.staged", 0}, {"prepare.exchange", 0}, {"prepare.exchanged", 1}};
    for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
        char env[64], args[512];
        snprintf(env, sizeof env, "SEMCTR_QUIET=1 SEMCTR_FAULT=%s", points[i].point);
        snprintf(args, sizeof args, "prepare --config %s/b.yaml --out %s/data", dir, dir);
        int st = tcli_run(env, args, tcli_out(), 1 << 16);
        cr_assert(st == -1 || st == 128 + 9, "%s: not killed (exit %d): %s", points[i].point, st, tcli_out());
        long rows = train_rows("data");
        long rows_b = (6584 / 2); /* B cuts train at floor(6,584 * 0.5) */
        cr_assert_eq(rows, points[i].swapped ? rows_b : rows_a, "%s: train rows %ld", points[i].point, rows);
        cr_assert_eq(tcli_semctr("train --data %s/data --model lr --epochs 1 --threads 1 --out %s/m", dir, dir), 0,
                     "%s: %s", points[i].point, tcli_out());
        cr_assert_eq(count_entries("data.tmp-"), 1, "%s: the killed run's stage is left", points[i].point);
        /* the next prepare removes what the killed one left, and keeps the folder's other files */
        cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/data", dir, dir), 0, "%s", tcli_out());
        cr_assert_eq(count_entries("data.tmp-"), 0, "%s", points[i].point);
        cr_assert_eq(train_rows("data"), rows_a);
        snprintf(path, sizeof path, "%s/data/elec-cache.vec", dir);
        cr_assert(sc_file_exists(path), "%s: the cache went", points[i].point);
        snprintf(path, sizeof path, "%s/data/notes", dir);
        cr_assert(sc_file_exists(path), "%s: the folder notes/ went", points[i].point);
    }
}

Test(data_atomic, train_and_eval_refuse_files_of_two_runs) {
    cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/a", dir, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("prepare --config %s/b.yaml --out %s/b", dir, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/a --model lr --epochs 1 --threads 1 --out %s/m", dir, dir), 0, "%s",
                 tcli_out());
    /* what the old prepare left when killed between its renames: B's schema and meta.json beside A's splits */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r %s/a %s/mix && cp %s/b/schema.scs %s/b/meta.json %s/mix/", dir, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("train --data %s/mix --model lr --epochs 1 --threads 1 --out %s/m2", dir, dir), 1, "%s",
                 tcli_out());
    char want[256];
    snprintf(want, sizeof want, "%s/mix/train.scd does not belong", dir);
    cr_assert(strstr(tcli_out(), want) && strstr(tcli_out(), "re-run `semctr prepare --config") &&
                  strstr(tcli_out(), "b.yaml --out"),
              "%s", tcli_out());
    snprintf(cmd, sizeof cmd, "%s/m2", dir);
    cr_assert(!sc_file_exists(cmd), "no model from a mixed folder");
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/mix --split valid", dir, dir), 1, "%s", tcli_out());
    snprintf(want, sizeof want, "%s/mix/valid.scd does not belong", dir);
    cr_assert(strstr(tcli_out(), want), "%s", tcli_out());
    /* the other way round: A's meta.json and splits, B's schema */
    snprintf(cmd, sizeof cmd, "cp %s/a/meta.json %s/mix/", dir, dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("train --data %s/mix --model lr --epochs 1 --threads 1 --out %s/m2", dir, dir), 1, "%s",
                 tcli_out());
    snprintf(want, sizeof want, "%s/mix/schema.scs does not belong", dir);
    cr_assert(strstr(tcli_out(), want), "%s", tcli_out());
    /* no meta.json at all */
    snprintf(cmd, sizeof cmd, "rm %s/mix/meta.json", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("train --data %s/mix --model lr --epochs 1 --threads 1 --out %s/m2", dir, dir), 1, "%s",
                 tcli_out());
    cr_assert(strstr(tcli_out(), "meta.json is missing"), "%s", tcli_out());
    /* prepare makes it whole again */
    cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/mix", dir, dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/mix --model lr --epochs 1 --threads 1 --out %s/m2", dir, dir), 0, "%s",
                 tcli_out());
}

/* --out that cannot be replaced as a whole: a file, or the folder the command runs in. */
Test(data_atomic, out_must_be_a_folder_prepare_can_replace) {
    char path[256];
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/file", dir, dir), 1, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "exists and is not a folder"), "%s", tcli_out());
    char args[512];
    snprintf(args, sizeof args, "prepare --config %s/a.yaml --out .", dir);
    char env[300];
    snprintf(env, sizeof env, "cd %s && SEMCTR_QUIET=1", dir);
    cr_assert_eq(tcli_run(env, args, tcli_out(), 1 << 16), 1, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "name the folder"), "%s", tcli_out());
    /* a link to a dataset folder: the folder it points to is replaced, the link stays */
    cr_assert_eq(tcli_semctr("prepare --config %s/a.yaml --out %s/real", dir, dir), 0, "%s", tcli_out());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ln -s %s/real %s/link", dir, dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("prepare --config %s/b.yaml --out %s/link/", dir, dir), 0, "%s", tcli_out());
    struct stat st;
    snprintf(path, sizeof path, "%s/link", dir);
    cr_assert(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    cr_assert_eq(train_rows("real"), 6584 / 2);
}
