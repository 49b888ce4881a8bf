/* data: the .scd split format — write, open, gather, the checksum, the
 * folder's manifest (meta.json), and rejection of truncated or corrupt
 * files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "data/dataset.h"

static sc_field_info test_fields[3] = {
    {.name = "user", .kind = SC_FIELD_CATEGORICAL, .width = 1, .vocab_size = 10, .share_with = -1},
    {.name = "price", .kind = SC_FIELD_NUMERIC, .width = 1, .vocab_size = 1, .share_with = -1},
    {.name = "hist", .kind = SC_FIELD_SEQUENCE, .width = 3, .vocab_size = 10, .share_with = 0},
};

static char dir[64];
static void setup(void) {
    strcpy(dir, "/tmp/sc_scd_XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
TestSuite(data_format, .init = setup, .fini = teardown, .timeout = 60);

/* DIR/meta.json listing file name with checksum, as prepare writes it. */
static void write_manifest(const char *d, const char *name, uint64_t sum) {
    char p[128];
    snprintf(p, sizeof p, "%s/meta.json", d);
    FILE *fp = fopen(p, "w");
    cr_assert(fp);
    fprintf(fp, "{\"config\": \"c.yaml\", \"files\": {\"%s\": {\"checksum\": \"%016llx\"}}}\n", name,
            (unsigned long long)sum);
    fclose(fp);
}

/* Writes DIR/name, a split of n rows: label i%2, group i, user 2+i%8, price
 * i*0.5, hist (i%10, 0, 1), one text column = i; and a meta.json listing it.
 * Returns its checksum. */
static uint64_t write_split(const char *name, int n, int cap) {
    sc_error e;
    sc_split_writer *w;
    const char *tn[] = {"title"};
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(sc_split_writer_open(&w, path, test_fields, 3, 1, 1, tn, cap, &e), SC_OK, "%s", e.msg);
    sc_batch b;
    cr_assert_eq(sc_batch_alloc(&b, test_fields, 3, 7, &e), SC_OK);
    int32_t text[7];
    for (int i0 = 0; i0 < n; i0 += 7) {
        int m = n - i0 < 7 ? n - i0 : 7;
        for (int k = 0; k < m; k++) {
            int i = i0 + k;
            b.label[k] = (float)(i % 2);
            b.group[k] = i;
            b.ids[0][k] = 2 + i % 8;
            b.values[1][k] = (float)i * 0.5f;
            b.ids[2][3 * k] = i % 10;
            b.ids[2][3 * k + 1] = 0;
            b.ids[2][3 * k + 2] = 1;
            text[k] = i;
        }
        b.n = m;
        cr_assert_eq(sc_split_writer_append(w, &b, text, &e), SC_OK, "%s", e.msg);
    }
    sc_batch_free(&b);
    uint64_t sum = 0;
    cr_assert_eq(sc_split_writer_commit(w, &sum, &e), SC_OK, "%s", e.msg);
    write_manifest(dir, name, sum);
    return sum;
}

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The checksum as data/dataset.h defines it, written from that text alone
 * (so this test also holds the documentation to the code). */
static uint64_t spec_checksum(const uint8_t *d) {
    uint32_t F, T;
    memcpy(&F, d + 12, 4);
    memcpy(&T, d + 36, 4);
    int64_t N = (int64_t)rd64(d + 16);
    size_t H = 64 + (size_t)F * 88 + (size_t)T * 64 + (2 + (size_t)F + T) * 16;
    uint8_t *buf = malloc(H + 8 * (2 + F + T));
    memcpy(buf, d, H);
    memset(buf + 40, 0, 8);
    const uint8_t *cols = d + 64 + (size_t)F * 88 + (size_t)T * 64;
    for (uint32_t c = 0; c < 2 + F + T; c++) {
        uint64_t W = 1;
        if (c >= 2 && c < 2 + F) {
            int32_t w;
            memcpy(&w, d + 64 + (size_t)(c - 2) * 88 + 68, 4);
            W = (uint64_t)w;
        }
        uint64_t bytes = rd64(cols + 16 * c + 8) ? (uint64_t)N * W * 4 : 0;
        uint64_t h = XXH3_64bits(d + rd64(cols + 16 * c), bytes);
        memcpy(buf + H + 8 * c, &h, 8);
    }
    uint64_t sum = XXH3_64bits(buf, H + 8 * (2 + F + T));
    free(buf);
    return sum;
}

Test(data_format, checksum_follows_the_documented_layout) {
    uint64_t sum = write_split("train.scd", 50, 60);
    char path[128], *buf;
    size_t n;
    sc_error e;
    snprintf(path, sizeof path, "%s/train.scd", dir);
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    cr_assert_eq(rd64((uint8_t *)buf + 40), sum);
    cr_assert_eq(spec_checksum((uint8_t *)buf), sum, "spec %016llx, writer %016llx",
                 (unsigned long long)spec_checksum((uint8_t *)buf), (unsigned long long)sum);
    sc_free(buf);
}

Test(data_format, write_open_gather) {
    write_split("train.scd", 50, 60); /* cap > N: slack after columns is allowed */
    char path[128];
    snprintf(path, sizeof path, "%s/train.scd", dir);
    sc_dataset ds;
    sc_error e;
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(ds.n_rows, 50);
    cr_assert_eq(ds.n_fields, 3);
    cr_assert_str_eq(ds.fields[2].name, "hist");
    cr_assert_eq(ds.fields[2].width, 3);
    cr_assert_eq(ds.fields[2].share_with, 0);
    cr_assert_null(ds.ids[1]);
    cr_assert_not_null(ds.values[1]);
    cr_assert_eq(ds.label[7], 1.0f);
    cr_assert_eq(ds.group[49], 49);
    cr_assert_eq(ds.ids[2][3 * 13], 3);
    cr_assert_eq(sc_dataset_n_text(&ds), 1);
    cr_assert_str_eq(sc_dataset_text_name(&ds, 0), "title");
    cr_assert_eq(sc_dataset_text(&ds, 0)[42], 42);
    cr_assert_null(sc_dataset_text(&ds, 1));
    sc_batch b;
    cr_assert_eq(sc_batch_alloc(&b, ds.fields, ds.n_fields, 4, &e), SC_OK);
    int64_t rows[3] = {49, 0, 17};
    sc_batch_gather(&b, &ds, rows, 3);
    cr_assert_eq(b.n, 3);
    cr_assert_eq(b.ids[0][0], 2 + 49 % 8);
    cr_assert_eq(b.values[1][2], 8.5f);
    cr_assert_eq(b.ids[2][3 * 2], 7);
    cr_assert_eq(b.ids[2][3 * 2 + 2], 1);
    cr_assert_eq(b.label[0], 1.0f);
    cr_assert_eq(b.group[1], 0);
    sc_batch_free(&b);
    sc_dataset_close(&ds);
}

/* Copy DIR/train.scd to DIR/bad/train.scd, cut at truncate_to (-1: whole)
 * and with byte poke_at set to poke (-1: none); list it in DIR/bad/meta.json
 * with the checksum in its header, or (fix_sum) with the header's checksum
 * recomputed first, so that the checks behind the checksum are reached. */
static void corrupt_and_expect(long truncate_to, long poke_at, uint8_t poke, int fix_sum, int want,
                               const char *needle) {
    char *buf, path[128], bad[128];
    size_t n;
    sc_error e;
    snprintf(path, sizeof path, "%s/train.scd", dir);
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    mkdir(bad, 0755);
    if (poke_at >= 0) buf[poke_at] = (char)poke;
    if (fix_sum) {
        uint64_t sum = spec_checksum((uint8_t *)buf);
        memcpy(buf + 40, &sum, 8);
    }
    write_manifest(bad, "train.scd", rd64((uint8_t *)buf + 40));
    strcat(bad, "/train.scd");
    FILE *fp = fopen(bad, "wb");
    fwrite(buf, 1, truncate_to >= 0 ? (size_t)truncate_to : n, fp);
    fclose(fp);
    sc_free(buf);
    sc_dataset ds;
    int rc = sc_dataset_open(&ds, bad, &e);
    cr_assert_eq(rc, want, "rc %d: %s", rc, e.msg);
    cr_assert(strstr(e.msg, bad), "message names the file: %s", e.msg);
    if (needle) cr_assert(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
}

Test(data_format, rejects_truncated_and_corrupt) {
    write_split("train.scd", 100, 100);
    corrupt_and_expect(10, -1, 0, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(300, -1, 0, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(2000, -1, 0, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(-1, 0, 'X', 0, SC_EFORMAT, "magic");
    corrupt_and_expect(-1, 8, 9, 0, SC_EVERSION, "version");
    corrupt_and_expect(-1, 8, 1, 0, SC_EVERSION, "re-run `semctr prepare`"); /* version 1 had no checksum */
    corrupt_and_expect(-1, 64 + 2 * 88 + 68, 0, 0, SC_EFORMAT, "hist"); /* width 0 */
    /* one changed byte anywhere in a column: the checksum. First id of field 'user': header 64 + 3*88 + 64 +
     * 6*16 = 488 -> 512 label, group at 512+448=960, user at 960+448=1408 */
    corrupt_and_expect(-1, 1408, 5, 0, SC_EFORMAT, "checksum mismatch");
    corrupt_and_expect(-1, 960 + 4 * 99, 7, 0, SC_EFORMAT, "checksum mismatch"); /* the last group id */
    corrupt_and_expect(-1, 16, 50, 0, SC_EFORMAT, "checksum mismatch");           /* N in the header: 100 -> 50 */
    /* behind a valid checksum: an id beyond the vocabulary */
    corrupt_and_expect(-1, 1408, 99, 1, SC_EFORMAT, "user");
    sc_dataset ds;
    sc_error e;
    cr_assert_eq(sc_dataset_open(&ds, "/nonexistent/train.scd", &e), SC_ENOTFOUND);
}

/* A split that is not the one its folder's meta.json lists, or a folder
 * without meta.json, is refused with a message naming the file and the
 * command that rebuilds the folder. */
Test(data_format, refuses_a_split_its_folder_does_not_list) {
    uint64_t sum = write_split("train.scd", 20, 20);
    char path[128], meta[128];
    snprintf(path, sizeof path, "%s/train.scd", dir);
    snprintf(meta, sizeof meta, "%s/meta.json", dir);
    sc_dataset ds;
    sc_error e;
    write_manifest(dir, "train.scd", sum ^ 1); /* another run's */
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, path) && strstr(e.msg, "does not belong") && strstr(e.msg, "--config c.yaml"), "%s", e.msg);
    write_manifest(dir, "valid.scd", sum); /* lists another file */
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, path) && strstr(e.msg, "does not list this file"), "%s", e.msg);
    unlink(meta);
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, path) && strstr(e.msg, "meta.json is missing") && strstr(e.msg, "semctr prepare"), "%s",
              e.msg);
    write_manifest(dir, "train.scd", sum);
    cr_assert_eq(sc_dataset_open(&ds, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(ds.checksum, sum);
    sc_dataset_close(&ds);
}

Test(data_format, writer_abort_leaves_old_file) {
    char path[128];
    snprintf(path, sizeof path, "%s/train.scd", dir);
    FILE *fp = fopen(path, "w");
    fputs("old", fp);
    fclose(fp);
    sc_error e;
    sc_split_writer *w;
    cr_assert_eq(sc_split_writer_open(&w, path, test_fields, 3, 0, 0, NULL, 10, &e), SC_OK);
    sc_split_writer_abort(w);
    char *buf;
    size_t n;
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    cr_assert_str_eq(buf, "old");
    sc_free(buf);
}
