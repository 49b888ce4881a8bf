/* base: errors, atomic writes, RNG determinism, parallel-for coverage. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/file.h"
#include "base/util.h"

Test(base, fail_sets_message_and_code) {
    sc_error e;
    int rc = sc_fail(&e, SC_EINVAL, "%s:%d: field '%s'", "a.csv", 3, "age");
    cr_assert_eq(rc, SC_EINVAL);
    cr_assert_str_eq(e.msg, "a.csv:3: field 'age'");
    sc_fail_prefix(&e, "prepare: ");
    cr_assert_str_eq(e.msg, "prepare: a.csv:3: field 'age'");
}

Test(base, atomic_abort_keeps_old_file) {
    char path[] = "/tmp/sc_test_atomicXXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "old", 3), 3);
    close(fd);
    sc_atomic_file f;
    sc_error e;
    cr_assert_eq(sc_atomic_open(&f, path, &e), SC_OK);
    cr_assert_eq(sc_atomic_write(&f, "new content", 11, &e), SC_OK);
    sc_atomic_abort(&f);
    char *buf;
    size_t n;
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    cr_assert_str_eq(buf, "old");
    sc_free(buf);
    cr_assert_eq(sc_atomic_open(&f, path, &e), SC_OK);
    cr_assert_eq(sc_atomic_write(&f, "new", 3, &e), SC_OK);
    cr_assert_eq(sc_atomic_commit(&f, &e), SC_OK);
    cr_assert_eq(sc_read_file(path, &buf, &n, &e), SC_OK);
    cr_assert_str_eq(buf, "new");
    sc_free(buf);
    unlink(path);
}

Test(base, missing_file_names_path) {
    sc_mmap m;
    sc_error e;
    cr_assert_eq(sc_mmap_open(&m, "/nonexistent/x.bin", &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "/nonexistent/x.bin"));
}

Test(base, rng_is_deterministic) {
    sc_rng a, b;
    sc_rng_seed(&a, 42);
    sc_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) cr_assert_eq(sc_rng_next(&a), sc_rng_next(&b));
    sc_rng_seed(&b, 43);
    cr_assert_neq(sc_rng_next(&a), sc_rng_next(&b));
}

static void mark(void *ctx, int i) { ((int *)ctx)[i]++; }

Test(base, parallel_for_runs_every_task_once) {
    int hits[1000] = {0};
    sc_parallel_for(1000, 4, mark, hits);
    for (int i = 0; i < 1000; i++) cr_assert_eq(hits[i], 1, "task %d ran %d times", i, hits[i]);
}

Test(base, size_overflow_detected) {
    size_t out;
    cr_assert_eq(sc_mul_size(SIZE_MAX / 2, 3, &out), -1);
    cr_assert_eq(sc_add_size(SIZE_MAX, 1, &out), -1);
    cr_assert_eq(sc_calloc(SIZE_MAX / 2, 3), NULL);
}

Test(base, allocation_is_counted) {
    int64_t before = sc_alloc_live_bytes();
    void *p = sc_malloc(1000);
    cr_assert_eq(sc_alloc_live_bytes() - before, 1000);
    p = sc_realloc(p, 3000);
    cr_assert_eq(sc_alloc_live_bytes() - before, 3000);
    sc_free(p);
    cr_assert_eq(sc_alloc_live_bytes(), before);
}
