/* The training loop's visiting order: a permutation, block-aligned so that
 * finished blocks can be released, deterministic for a seed. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "train/trainer.h"

Test(train_loop, block_shuffle_is_an_aligned_permutation) {
    int64_t n = 2 * SC_SHUFFLE_BLOCK + 12345;
    int64_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    char *seen = calloc(n, 1);
    sc_shuffle_order(a, n, 1, 42);
    sc_shuffle_order(b, n, 1, 42);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(a[i] >= 0 && a[i] < n);
        cr_assert_eq(seen[a[i]], 0, "row %lld twice", (long long)a[i]);
        seen[a[i]] = 1;
        cr_assert_eq(a[i], b[i], "not deterministic at %lld", (long long)i);
        /* position block i holds rows of one block only */
        cr_assert_eq(a[i] / SC_SHUFFLE_BLOCK, a[i / SC_SHUFFLE_BLOCK * SC_SHUFFLE_BLOCK] / SC_SHUFFLE_BLOCK);
    }
    cr_assert_eq(a[n - 1] / SC_SHUFFLE_BLOCK, 2, "the short block must stay last");
    int moved = 0;
    for (int64_t i = 0; i < 1000; i++) moved += a[i] != i;
    cr_assert_gt(moved, 900, "rows were not shuffled");
    sc_shuffle_order(a, 1000, 0, 42);
    for (int64_t i = 0; i < 1000; i++) cr_assert_eq(a[i], i);
    free(a);
    free(b);
    free(seen);
}
