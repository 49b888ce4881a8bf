/* lm: the vector store round-trips, looks ids up, and rejects damaged files
 * with errors that name the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "lm/vecstore.h"

static void tmpname(char *p) {
    strcpy(p, "/tmp/sc_vs_XXXXXX");
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    close(fd);
}

static void write_store(const char *path, int n, int dim) {
    sc_vecstore_writer *w;
    sc_error e;
    cr_assert_eq(sc_vecstore_writer_open(&w, path, "all-MiniLM-L6-v2", dim, &e), SC_OK, "%s", e.msg);
    float v[16];
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "item-%d", i * 7);
        for (int k = 0; k < dim; k++) v[k] = (float)i + (float)k / 100;
        cr_assert_eq(sc_vecstore_writer_add(w, id, v, &e), SC_OK, "%s", e.msg);
    }
    cr_assert_eq(sc_vecstore_writer_commit(w, &e), SC_OK, "%s", e.msg);
}

Test(lm_vecstore, round_trip_and_lookup) {
    char path[32];
    tmpname(path);
    write_store(path, 1000, 3);
    sc_vecstore *s;
    sc_error e;
    cr_assert_eq(sc_vecstore_open(&s, path, 3, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_vecstore_count(s), 1000);
    cr_assert_eq(sc_vecstore_dim(s), 3);
    cr_assert_str_eq(sc_vecstore_model(s), "all-MiniLM-L6-v2");
    for (int i = 0; i < 1000; i++) {
        char id[32];
        snprintf(id, sizeof id, "item-%d", i * 7);
        const float *v = sc_vecstore_get(s, id);
        cr_assert_not_null(v, "%s", id);
        cr_assert_float_eq(v[0], (float)i, 0);
        cr_assert_float_eq(v[2], (float)i + 0.02f, 0);
        cr_assert_str_eq(sc_vecstore_id(s, i), id);
        cr_assert_eq(sc_vecstore_vec(s, i), v);
    }
    cr_assert_null(sc_vecstore_get(s, "item-1"));
    cr_assert_null(sc_vecstore_get(s, ""));
    cr_assert_null(sc_vecstore_id(s, 1000));
    sc_vecstore_close(s);
    cr_assert_eq(sc_vecstore_open(&s, path, 384, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, path) && strstr(e.msg, "dimension 3"), "%s", e.msg);
    unlink(path);
}

Test(lm_vecstore, empty_store) {
    char path[32];
    tmpname(path);
    write_store(path, 0, 5);
    sc_vecstore *s;
    sc_error e;
    cr_assert_eq(sc_vecstore_open(&s, path, 0, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_vecstore_count(s), 0);
    cr_assert_null(sc_vecstore_get(s, "x"));
    sc_vecstore_close(s);
    unlink(path);
}

Test(lm_vecstore, duplicate_ids_and_abort_keep_old_file) {
    char path[32];
    tmpname(path);
    write_store(path, 3, 2);
    sc_vecstore_writer *w;
    sc_error e;
    float v[2] = {1, 2};
    cr_assert_eq(sc_vecstore_writer_open(&w, path, "m", 2, &e), SC_OK);
    cr_assert_eq(sc_vecstore_writer_add(w, "a", v, &e), SC_OK);
    cr_assert_eq(sc_vecstore_writer_add(w, "", v, &e), SC_EINVAL);
    cr_assert_eq(sc_vecstore_writer_add(w, "a", v, &e), SC_OK);
    cr_assert_eq(sc_vecstore_writer_commit(w, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "'a' appears twice"), "%s", e.msg);
    sc_vecstore *s;
    cr_assert_eq(sc_vecstore_open(&s, path, 2, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_vecstore_count(s), 3); /* the old store is intact */
    sc_vecstore_close(s);
    unlink(path);
}

Test(lm_vecstore, damaged_files) {
    char path[32];
    tmpname(path);
    write_store(path, 50, 4);
    char *buf;
    size_t len;
    sc_error e;
    cr_assert_eq(sc_read_file(path, &buf, &len, &e), SC_OK);
    sc_vecstore *s;
    /* every truncation is rejected */
    for (size_t keep = 0; keep < len; keep += len / 37 + 1) {
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, keep, f);
        fclose(f);
        cr_assert_neq(sc_vecstore_open(&s, path, 0, &e), SC_OK, "truncated to %zu accepted", keep);
        if (keep) cr_assert(strstr(e.msg, path), "%s", e.msg);
    }
    /* bad magic, newer version, corrupt id offsets */
    struct { size_t at; uint8_t byte; int code; const char *want; } edits[] = {
        {0, 'X', SC_EFORMAT, "magic"},
        {8, 9, SC_EVERSION, "version 9"},
        {12, 0, SC_EFORMAT, "dimension"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *c = malloc(len);
        memcpy(c, buf, len);
        c[edits[i].at] = (char)edits[i].byte;
        FILE *f = fopen(path, "wb");
        fwrite(c, 1, len, f);
        fclose(f);
        free(c);
        cr_assert_eq(sc_vecstore_open(&s, path, 0, &e), edits[i].code, "edit %zu", i);
        cr_assert(strstr(e.msg, edits[i].want), "edit %zu: %s", i, e.msg);
    }
    sc_free(buf);
    unlink(path);
}
