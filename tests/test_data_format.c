/* data: the .scd split format — write, open, gather, and rejection of
 * truncated or corrupt files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "data/dataset.h"

static sc_field_info test_fields[3] = {
    {.name = "user", .kind = SC_FIELD_CATEGORICAL, .width = 1, .vocab_size = 10, .share_with = -1},
    {.name = "price", .kind = SC_FIELD_NUMERIC, .width = 1, .vocab_size = 1, .share_with = -1},
    {.name = "hist", .kind = SC_FIELD_SEQUENCE, .width = 3, .vocab_size = 10, .share_with = 0},
};

/* Writes a split of n rows: label i%2, group i, user 2+i%8, price i*0.5,
 * hist (i%10, 0, 1), one text column = i. */
static void write_split(const char *path, int n, int cap) {
    sc_error e;
    sc_split_writer *w;
    const char *tn[] = {"title"};
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
    cr_assert_eq(sc_split_writer_commit(w, &e), SC_OK, "%s", e.msg);
}

Test(data_format, write_open_gather) {
    char path[] = "/tmp/sc_scd_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_split(path, 50, 60); /* cap > N: slack after columns is allowed */
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
    unlink(path);
}

static void corrupt_and_expect(const char *path, long truncate_to, long poke_at, uint8_t poke, int want,
                               const char *needle) {
    char *buf;
    size_t n;
    sc_error e;
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    char bad[64];
    snprintf(bad, sizeof bad, "%s.bad", path);
    FILE *fp = fopen(bad, "wb");
    if (poke_at >= 0) buf[poke_at] = (char)poke;
    fwrite(buf, 1, truncate_to >= 0 ? (size_t)truncate_to : n, fp);
    fclose(fp);
    sc_free(buf);
    sc_dataset ds;
    int rc = sc_dataset_open(&ds, bad, &e);
    cr_assert_eq(rc, want, "rc %d: %s", rc, e.msg);
    cr_assert(strstr(e.msg, bad), "message names the file: %s", e.msg);
    if (needle) cr_assert(strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
    unlink(bad);
}

Test(data_format, rejects_truncated_and_corrupt) {
    char path[] = "/tmp/sc_scd_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_split(path, 100, 100);
    corrupt_and_expect(path, 10, -1, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(path, 300, -1, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(path, 2000, -1, 0, SC_EFORMAT, "truncated");
    corrupt_and_expect(path, -1, 0, 'X', SC_EFORMAT, "magic");
    corrupt_and_expect(path, -1, 8, 9, SC_EVERSION, "version");
    corrupt_and_expect(path, -1, 64 + 2 * 88 + 68, 0, SC_EFORMAT, "hist"); /* width 0 */
    /* an id beyond the vocabulary: first id of field 'user' (header 64 + 3*88 + 64 + 6*16 = 488 -> 512 label,
     * group at 512+448=960, user at 960+448=1408) */
    corrupt_and_expect(path, -1, 1408, 99, SC_EFORMAT, "user");
    sc_dataset ds;
    sc_error e;
    cr_assert_eq(sc_dataset_open(&ds, "/nonexistent/train.scd", &e), SC_ENOTFOUND);
    unlink(path);
}

Test(data_format, writer_abort_leaves_old_file) {
    char path[] = "/tmp/sc_scd_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, "old", 3), 3);
    close(fd);
    sc_error e;
    sc_split_writer *w;
    cr_assert_eq(sc_split_writer_open(&w, path, test_fields, 3, 0, 0, NULL, 10, &e), SC_OK);
    sc_split_writer_abort(w);
    char *buf;
    size_t n;
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    cr_assert_str_eq(buf, "old");
    sc_free(buf);
    unlink(path);
}
