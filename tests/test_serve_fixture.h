/* Shared by tests/test_api_*.c and tests/test_serve_*.c: small model files
 * trained by the real CLI on ml-100k (a few batches, so seconds), made once
 * per semctr binary and cached under /tmp, plus a CSV of raw rows.
 *
 *   dir/a.model   deepfm, seed 1      dir/b.model   deepfm, seed 7
 *   dir/rows.csv  user_id,item_id,rating,timestamp: the first 300 rows of u.data */
#ifndef TEST_SERVE_FIXTURE_H
#define TEST_SERVE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fx_bin(void) {
    const char *b = getenv("SEMCTR_BIN");
    cr_assert(b && *b, "SEMCTR_BIN is not set (run through make test)");
    return b;
}

/* Run a shell command; returns its exit status. */
static int fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fx_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The fixture directory (static storage), made if absent. */
static const char *fx_dir(void) {
    static char dir[512];
    if (dir[0]) return dir;
    const char *bin = fx_bin();
    const char *data = getenv("SEMCTR_DATA");
    cr_assert(data && *data, "SEMCTR_DATA is not set");
    struct stat st;
    cr_assert_eq(stat(bin, &st), 0, "cannot stat %s", bin);
    /* keyed by the binary, so a rebuilt semctr makes fresh files */
    unsigned long h = 5381;
    for (const char *p = bin; *p; p++) h = h * 33 + (unsigned char)*p;
    snprintf(dir, sizeof dir, "/tmp/semctr-test-serve-%d-%lx-%lld", (int)getuid(), h, (long long)st.st_mtime);
    char probe[600];
    snprintf(probe, sizeof probe, "%s/rows.csv", dir);
    if (access(probe, R_OK) == 0) return dir;
    /* Build in a private directory, then rename: a concurrent test process
     * either wins the rename or finds the finished directory. */
    char tmp[600], cwd[400];
    cr_assert(getcwd(cwd, sizeof cwd), "getcwd failed");
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dir, (int)getpid());
    int rc = fx_sh("set -e; rm -rf '%s'; mkdir -p '%s'; cd '%s'; "
                   "SEMCTR_QUIET=1 '%s' prepare --config '%s/configs/ml-100k.yaml' --out data >/dev/null 2>&1; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model deepfm --out a.model --epochs 1 --max-steps 30 --seed 1 --threads 1 >/dev/null 2>&1; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model deepfm --out b.model --epochs 1 --max-steps 30 --seed 7 --threads 1 >/dev/null 2>&1; "
                   "rm -rf data; (echo user_id,item_id,rating,timestamp; head -n 300 '%s/ml-100k/u.data' | tr '\\t' ',') > rows.csv",
                   tmp, tmp, tmp, bin, cwd, bin, bin, data);
    cr_assert_eq(rc, 0, "making the fixture models in %s failed", tmp);
    if (rename(tmp, dir) != 0) fx_sh("rm -rf '%s'", tmp); /* another process won */
    cr_assert_eq(access(probe, R_OK), 0, "fixture %s missing", probe);
    return dir;
}

/* Read rows.csv into cols (4) and cells (n, 4) (static storage). */
#define FX_ROWS 300
__attribute__((unused)) static const char *fx_cols[4] = {"user_id", "item_id", "rating", "timestamp"};
static char fx_buf[FX_ROWS][4][24];
static const char *fx_cells[FX_ROWS * 4];
__attribute__((unused)) static void fx_load_rows(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/rows.csv", fx_dir());
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[256];
    cr_assert(fgets(line, sizeof line, f));
    for (int r = 0; r < FX_ROWS; r++) {
        cr_assert(fgets(line, sizeof line, f), "rows.csv: row %d missing", r);
        char *save = NULL, *tok = strtok_r(line, ",\n", &save);
        for (int c = 0; c < 4; c++) {
            cr_assert(tok);
            snprintf(fx_buf[r][c], sizeof fx_buf[r][c], "%s", tok);
            fx_cells[r * 4 + c] = fx_buf[r][c];
            tok = strtok_r(NULL, ",\n", &save);
        }
    }
    fclose(f);
}

#endif
