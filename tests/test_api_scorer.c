/* The public C API (include/semctr.h) from a user's side: load, score raw
 * rows, agree with `semctr predict`, refuse bad input with a message, and
 * score correctly from many threads at once on one loaded model. */
#include <math.h>
#include <pthread.h>

#include "semctr.h"
#include "test_serve_fixture.h"

static semctr_model *load_ok(const char *name, const semctr_options *o) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", fx_dir(), name);
    semctr_model *m = NULL;
    semctr_error err;
    int rc = semctr_load(&m, path, o, &err);
    cr_assert_eq(rc, SEMCTR_OK, "load %s: %s", path, err.message);
    cr_assert_not_null(m);
    return m;
}

Test(api, matches_semctr_predict) {
    fx_load_rows();
    semctr_model *m = load_ok("a.model", NULL);
    float p[FX_ROWS];
    semctr_error err;
    cr_assert_eq(semctr_score(m, FX_ROWS, 4, fx_cols, fx_cells, p, &err), 0, "%s", err.message);
    cr_assert_eq(err.code, 0);
    cr_assert_str_empty(err.message);
    char out[700];
    snprintf(out, sizeof out, "%s/pred.%d.csv", fx_dir(), (int)getpid());
    cr_assert_eq(fx_sh("SEMCTR_QUIET=1 '%s' predict --model '%s/a.model' --input '%s/rows.csv' --output '%s' 2>/dev/null",
                       fx_bin(), fx_dir(), fx_dir(), out), 0);
    FILE *f = fopen(out, "r");
    cr_assert(f);
    char line[64];
    cr_assert(fgets(line, sizeof line, f));
    int distinct = 0;
    for (int i = 0; i < FX_ROWS; i++) {
        cr_assert(fgets(line, sizeof line, f));
        double q = atof(line);
        cr_assert_float_eq(p[i], q, 1e-7, "row %d: api %.9g, predict %.9g", i, p[i], q);
        cr_assert(p[i] > 0 && p[i] < 1);
        if (i && p[i] != p[i - 1]) distinct++;
    }
    fclose(f);
    unlink(out);
    cr_assert_gt(distinct, 100, "the scores do not depend on the rows");
    cr_assert_str_eq(semctr_model_backbone(m), "deepfm");
    cr_assert_str_eq(semctr_model_network(m), "main");
    const char *const *cols;
    int n = semctr_input_columns(m, &cols);
    int has_user = 0;
    for (int i = 0; i < n; i++) has_user |= !strcmp(cols[i], "user_id");
    cr_assert(has_user);
    cr_assert_gt(semctr_model_n_fields(m), 2);
    semctr_free(m);
}

Test(api, typed_values_equal_text_and_missing_is_oov) {
    semctr_model *m = load_ok("a.model", NULL);
    const char *cols[] = {"user_id", "item_id", "not_a_column"};
    const char *cells[] = {"196", "242", "x", "186", "302", "y"};
    semctr_value vals[] = {{SEMCTR_NUMBER, NULL, 196}, {SEMCTR_STRING, "242", 0}, {SEMCTR_MISSING, NULL, 0},
                           {SEMCTR_NUMBER, NULL, 186}, {SEMCTR_NUMBER, NULL, 302.0}, {SEMCTR_STRING, "y", 0}};
    float a[2], b[2], c[2];
    semctr_error err;
    cr_assert_eq(semctr_score(m, 2, 3, cols, cells, a, &err), 0, "%s", err.message);
    cr_assert_eq(semctr_score_values(m, 2, 3, cols, vals, b, &err), 0, "%s", err.message);
    cr_assert_eq(a[0], b[0]);
    cr_assert_eq(a[1], b[1]);
    cr_assert_neq(a[0], a[1]);
    /* an unseen id and a missing one both take the OOV row */
    const char *oov_cells[] = {"no-such-user", "242", NULL, "242"};
    cr_assert_eq(semctr_score(m, 2, 2, cols, oov_cells, c, &err), 0, "%s", err.message);
    cr_assert_eq(c[0], c[1]);
    cr_assert_neq(c[0], a[0]);
    semctr_value nan = {SEMCTR_NUMBER, NULL, NAN};
    cr_assert_eq(semctr_score_values(m, 1, 1, cols, &nan, c, &err), SEMCTR_EINVAL);
    cr_assert(strstr(err.message, "user_id"), "%s", err.message);
    semctr_free(m);
}

Test(api, bad_input_gets_status_and_message) {
    semctr_model *m = (semctr_model *)0x1;
    semctr_error err;
    int rc0 = semctr_load(&m, "/nonexistent/x.model", NULL, &err);
    cr_assert(rc0 == SEMCTR_EIO || rc0 == SEMCTR_ENOTFOUND, "status %d", rc0);
    cr_assert_eq(err.code, rc0);
    cr_assert_null(m);
    cr_assert(strstr(err.message, "/nonexistent/x.model"), "%s", err.message);
    char junk[700];
    snprintf(junk, sizeof junk, "%s/junk.%d.model", fx_dir(), (int)getpid());
    FILE *f = fopen(junk, "w");
    fputs("this is not a model file, not at all, really not", f);
    fclose(f);
    int rc = semctr_load(&m, junk, NULL, &err);
    unlink(junk);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(err.message, junk), "%s", err.message);
    semctr_options o;
    semctr_options_init(&o);
    o.network = "gain";
    char path[700];
    snprintf(path, sizeof path, "%s/a.model", fx_dir());
    cr_assert_eq(semctr_load(&m, path, &o, &err), SEMCTR_ENOTFOUND);
    cr_assert(strstr(err.message, "main"), "lists the networks: %s", err.message);
    semctr_options_init(&o);
    o.max_concurrency = -3;
    cr_assert_eq(semctr_load(&m, path, &o, &err), SEMCTR_EINVAL);
    cr_assert_eq(semctr_load(NULL, path, NULL, &err), SEMCTR_EINVAL);
    m = load_ok("a.model", NULL);
    float p[2];
    const char *cols[] = {"user_id"}, *cells[] = {"1"};
    cr_assert_eq(semctr_score(m, -1, 1, cols, cells, p, &err), SEMCTR_EINVAL);
    cr_assert_eq(semctr_score(m, 1, 1, NULL, cells, p, &err), SEMCTR_EINVAL);
    cr_assert_eq(semctr_score(m, 1, 1, cols, cells, NULL, &err), SEMCTR_EINVAL);
    cr_assert_eq(semctr_score(NULL, 1, 1, cols, cells, p, &err), SEMCTR_EINVAL);
    cr_assert_eq(semctr_score(m, 0, 1, cols, cells, p, NULL), SEMCTR_OK);
    cr_assert_str_eq(semctr_strerror(SEMCTR_EFORMAT), semctr_strerror(-4));
    semctr_free(m);
    semctr_free(NULL);
}

Test(api, long_calls_are_split_into_passes) {
    fx_load_rows();
    semctr_options o;
    semctr_options_init(&o);
    o.max_batch_rows = 7;
    semctr_model *a = load_ok("a.model", NULL), *b = load_ok("a.model", &o);
    float pa[FX_ROWS], pb[FX_ROWS];
    semctr_error err;
    cr_assert_eq(semctr_score(a, FX_ROWS, 4, fx_cols, fx_cells, pa, &err), 0, "%s", err.message);
    cr_assert_eq(semctr_score(b, FX_ROWS, 4, fx_cols, fx_cells, pb, &err), 0, "%s", err.message);
    for (int i = 0; i < FX_ROWS; i++) cr_assert_float_eq(pa[i], pb[i], 1e-6, "row %d", i);
    semctr_free(a);
    semctr_free(b);
}

typedef struct worker {
    semctr_model *m;
    const float *ref;
    int seed, bad, failed;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    unsigned s = (unsigned)w->seed;
    float p[FX_ROWS];
    semctr_error err;
    for (int it = 0; it < 60; it++) {
        s = s * 1103515245u + 12345u;
        int start = (int)(s >> 8) % FX_ROWS;
        int n = 1 + (int)(s >> 4) % (FX_ROWS - start);
        if (semctr_score(w->m, n, 4, fx_cols, fx_cells + start * 4, p, &err)) {
            w->failed++;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (fabsf(p[i] - w->ref[start + i]) > 1e-6f) w->bad++;
    }
    return NULL;
}

Test(api, concurrent_scoring_on_one_model) {
    fx_load_rows();
    semctr_options o;
    semctr_options_init(&o);
    o.max_concurrency = 3; /* fewer contexts than threads: callers wait their turn */
    semctr_model *m = load_ok("a.model", &o);
    float ref[FX_ROWS];
    semctr_error err;
    cr_assert_eq(semctr_score(m, FX_ROWS, 4, fx_cols, fx_cells, ref, &err), 0);
    enum { T = 6 };
    pthread_t th[T];
    worker w[T];
    for (int t = 0; t < T; t++) {
        w[t] = (worker){m, ref, t + 1, 0, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(w[t].failed, 0, "thread %d: %d calls failed", t, w[t].failed);
        cr_assert_eq(w[t].bad, 0, "thread %d: %d wrong scores", t, w[t].bad);
    }
    semctr_free(m);
}
