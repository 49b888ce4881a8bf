/* Sharded embedding tables (train --shard-embeddings) on one process: the
 * exchange's one-process meaning, and that sharded training is the plain
 * trainer's arithmetic (tests/mpi_tests.sh runs it over 2 and 3 ranks). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "dist/shard.h"
#include "test_cli_util.h"

Test(shard, local_rows_split_ids_by_rank) {
    /* ids 0..9 over 3 ranks: {0,3,6,9} {1,4,7} {2,5,8} */
    cr_assert_eq(sc_shard_local_rows(10, 0, 3), 4);
    cr_assert_eq(sc_shard_local_rows(10, 1, 3), 3);
    cr_assert_eq(sc_shard_local_rows(10, 2, 3), 3);
    cr_assert_eq(sc_shard_local_rows(2, 2, 3), 0); /* a table smaller than the job */
    cr_assert_eq(sc_shard_local_rows(7, 0, 1), 7);
}

/* owner side of the tests below: table t's row r is 100 t + r in every column; gradients are recorded */
typedef struct owner {
    int calls;
    int32_t rows[16];
    float grad[32];
    int n;
} owner;

static void read_rows(void *ctx, int t, const int32_t *rows, int64_t n, float *out) {
    int width = t == 0 ? 2 : 1;
    for (int64_t j = 0; j < n; j++)
        for (int c = 0; c < width; c++) out[j * width + c] = (float)(100 * t + rows[j]);
}

static int add_rows(void *ctx, int t, const int32_t *rows, const float *grad, int64_t n, sc_error *err) {
    owner *o = ctx;
    int width = t == 0 ? 2 : 1;
    o->calls++;
    for (int64_t j = 0; j < n; j++) {
        o->rows[o->n] = rows[j] + 1000 * t;
        o->grad[o->n++] = grad[j * width];
    }
    return SC_OK;
}

Test(shard, lookup_and_gradients_on_one_process) {
    int64_t V[2] = {10, 5};
    int width[2] = {2, 1};
    sc_shard_exchange *x;
    cr_assert_eq(sc_shard_exchange_create(&x, NULL, 2, V, width, NULL), SC_OK);
    int32_t ids0[3] = {7, 2, 9}, ids1[1] = {4};
    const int32_t *ids[2] = {ids0, ids1};
    int64_t n[2] = {3, 1};
    float r0[6], r1[1];
    float *rows[2] = {r0, r1};
    owner o = {0};
    cr_assert_eq(sc_shard_lookup(x, ids, n, rows, read_rows, &o, NULL), SC_OK);
    float want0[6] = {7, 7, 2, 2, 9, 9};
    for (int i = 0; i < 6; i++) cr_assert_float_eq(r0[i], want0[i], 0);
    cr_assert_float_eq(r1[0], 104, 0);
    /* the gradients go back to the rows asked, in the order asked */
    float g0[6] = {0.5f, 0, 1.5f, 0, 2.5f, 0}, g1[1] = {-1};
    const float *grad[2] = {g0, g1};
    cr_assert_eq(sc_shard_push_grads(x, grad, add_rows, &o, NULL), SC_OK);
    cr_assert_eq(o.n, 4);
    int32_t want_rows[4] = {7, 2, 9, 1004};
    float want_grad[4] = {0.5f, 1.5f, 2.5f, -1};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(o.rows[i], want_rows[i]);
        cr_assert_float_eq(o.grad[i], want_grad[i], 0);
    }
    /* an id outside its table is refused by name, not read */
    int32_t bad[1] = {10};
    ids[0] = bad;
    n[0] = 1;
    n[1] = 0;
    sc_error err = {0};
    cr_assert_eq(sc_shard_lookup(x, ids, n, rows, read_rows, &o, &err), SC_EFORMAT);
    cr_assert(strstr(err.msg, "id 10 outside its 10 rows"), "%s", err.msg);
    sc_shard_exchange_free(x);
}

Test(shard, a_table_streams_and_scatters_on_one_process) {
    float local[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
    sc_shard_stream *s;
    cr_assert_eq(sc_shard_stream_open(&s, NULL, local, 3, 2, NULL), SC_OK);
    const void *data;
    uint64_t bytes;
    cr_assert_eq(sc_shard_stream_next(s, &data, &bytes, NULL), SC_OK);
    cr_assert_eq(bytes, sizeof local);
    cr_assert(sc_shard_stream_done(s));
    cr_assert_eq(memcmp(data, local, sizeof local), 0);
    sc_error err = {0};
    cr_assert_eq(sc_shard_stream_next(s, &data, &bytes, &err), SC_EINTERNAL, "read past the end");
    sc_shard_stream_close(s);
    cr_assert_eq(sc_shard_scatter(NULL, local, 3, 2, back, NULL), SC_OK);
    for (int i = 0; i < 6; i++) cr_assert_float_eq(back[i], local[i], 0);
}

/* ---- from the user's side ---- */

static void prepare(char *dir) {
    strcpy(dir, "/tmp/sc_train_sharded_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", dir), 0, "%s", tcli_out());
}

static void cleanup(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static int same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    cr_assert_eq(sc_read_file(a, &x, &nx, NULL), SC_OK, "%s", a);
    cr_assert_eq(sc_read_file(b, &y, &ny, NULL), SC_OK, "%s", b);
    int same = nx == ny && !memcmp(x, y, nx);
    sc_free(x);
    sc_free(y);
    return same;
}

/* Sharded and replicated tables differ only in where rows live: from the same checkpoint (its format is
   shared), two more epochs of either write the same model file, byte for byte. DeepFM on MovieLens has a
   multi-valued field (genres, with padding ids) and first-order weights beside the embeddings. */
Test(train_sharded, resuming_a_plain_checkpoint_sharded_gives_the_plain_model, .timeout = 300) {
    char d[64];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --threads 1 --epochs 1 --out %s/a", d, d), 0, "%s",
                 tcli_out());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s/a %s/b && cp %s/a.ckpt %s/b.ckpt", d, d, d, d);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --threads 1 --epochs 3 --out %s/a --resume", d, d), 0,
                 "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --threads 1 --epochs 3 --out %s/b --resume "
                             "--shard-embeddings",
                             d, d),
                 0, "%s", tcli_out());
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a", d);
    snprintf(b, sizeof b, "%s/b", d);
    cr_assert(same_file(a, b), "the sharded run's model file differs from the plain run's");
    cleanup(d);
}

/* The model file of a sharded run is an ordinary one: eval scores the validation split as training did. */
Test(train_sharded, the_model_file_evaluates_as_training_measured, .timeout = 300) {
    char d[64];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model widedeep --threads 1 --epochs 1 --out %s/m "
                             "--shard-embeddings --json",
                             d, d),
                 0, "%s", tcli_out());
    double trained = tcli_json_number(tcli_out(), "valid_auc");
    cr_assert(trained > 0.6, "valid AUC %g", trained);
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split valid --json", d, d), 0, "%s", tcli_out());
    double evaluated = tcli_json_number(tcli_out(), "auc");
    cr_assert(fabs(trained - evaluated) < 1e-6, "train said %.6f, eval %.6f", trained, evaluated);
    cleanup(d);
}

Test(train_sharded, other_methods_are_refused_by_name) {
    cr_assert_eq(tcli_semctr("train --data /nonexistent --model fm --out /tmp/x --method elec --shard-embeddings"), 2,
                 "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "--shard-embeddings trains --method plain, not elec"), "%s", tcli_out());
}
