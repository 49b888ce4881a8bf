/* The training loop's visiting order: a permutation, block-aligned so that
 * finished blocks can be released, deterministic for a seed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* --monitor: a scripted validation whose AUC peaks at epoch 3 while its
 * logloss is best at epoch 2; the loop must keep the epoch the monitored
 * metric picks, decay and stop on it, and a resume must refuse the other one. */
typedef struct scripted {
    int epoch, best; /* validations so far, the epoch last saved */
} scripted;

static const double SCRIPT_AUC[] = {0.70, 0.71, 0.73, 0.72, 0.72, 0.72};
static const double SCRIPT_LOGLOSS[] = {0.62, 0.60, 0.61, 0.63, 0.64, 0.65};

static int s_step(void *ctx, const sc_batch *b, const int64_t *rows, float lr, double *loss, sc_error *err) {
    *loss = 0.5;
    return SC_OK;
}
static int s_validate(void *ctx, sc_metrics *m, sc_error *err) {
    scripted *s = ctx;
    int e = s->epoch++;
    *m = (sc_metrics){.auc = SCRIPT_AUC[e], .logloss = SCRIPT_LOGLOSS[e], .gauc = NAN, .n = 10};
    return SC_OK;
}
static int s_save_best(void *ctx, sc_error *err) {
    scripted *s = ctx;
    s->best = s->epoch;
    return SC_OK;
}
static int s_restore(void *ctx, int from_file, sc_error *err) { return SC_OK; }
static int s_stage(void *ctx, sc_container_writer *w, cJSON *h, sc_error *err) { return SC_OK; }
static int s_load(void *ctx, const sc_container *c, sc_error *err) { return SC_OK; }

static int run_scripted(int monitor, int epochs, const char *ckpt, int resume, scripted *s, sc_train_result *res,
                        sc_error *err) {
    static const float label[4] = {0, 1, 0, 1}, x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    static sc_field_info f = {.name = "x", .kind = SC_FIELD_NUMERIC, .width = 1, .vocab_size = 1, .share_with = -1};
    const float *values[1] = {x};
    const int32_t *ids[1] = {NULL};
    sc_dataset ds = {.n_rows = 4, .n_fields = 1, .fields = &f, .label = label, .ids = ids, .values = values};
    sc_train_config cfg;
    sc_train_config_default(&cfg);
    cfg.monitor = monitor;
    cfg.epochs = epochs;
    cfg.n_threads = 1;
    cfg.ckpt_path = ckpt;
    cfg.resume = resume;
    sc_fit_task t = {s, s_step, s_validate, s_save_best, s_restore, s_stage, s_load, NULL, 0, NULL, 0};
    return sc_fit(&ds, &cfg, &t, res, err);
}

Test(train_loop, monitor_picks_the_best_epoch_by_its_metric) {
    sc_train_result res;
    sc_error e = {0};
    scripted s = {0};
    cr_assert_eq(run_scripted(SC_MONITOR_AUC, 6, NULL, 0, &s, &res, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(res.best_epoch, 3);
    cr_assert_eq(s.best, 3);
    cr_assert_eq(res.epochs_run, 5, "AUC stalls after epoch 3: patience 2 stops after epoch 5");
    cr_assert_float_eq(res.best_valid.auc, 0.73, 1e-12);
    s = (scripted){0};
    cr_assert_eq(run_scripted(SC_MONITOR_LOGLOSS, 6, NULL, 0, &s, &res, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(res.best_epoch, 2);
    cr_assert_eq(s.best, 2);
    cr_assert_eq(res.epochs_run, 4, "logloss stalls after epoch 2: patience 2 stops after epoch 4");
    cr_assert_float_eq(res.best_valid.logloss, 0.60, 1e-12);
    cr_assert(res.stopped_early);
}

Test(train_loop, resume_refuses_another_monitor) {
    char ckpt[] = "/tmp/semctr-monitor-XXXXXX";
    int fd = mkstemp(ckpt);
    cr_assert(fd >= 0);
    close(fd);
    unlink(ckpt);
    sc_train_result res;
    sc_error e = {0};
    scripted s = {0};
    cr_assert_eq(run_scripted(SC_MONITOR_LOGLOSS, 2, ckpt, 0, &s, &res, &e), SC_OK, "%s", e.msg);
    /* resuming with the same monitor continues from the recorded best logloss (0.60 at epoch 2): epoch 3 (0.61)
       is not better */
    cr_assert_eq(run_scripted(SC_MONITOR_LOGLOSS, 3, ckpt, 1, &s, &res, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(res.best_epoch, 2);
    cr_assert_neq(run_scripted(SC_MONITOR_AUC, 4, ckpt, 1, &s, &res, &e), SC_OK);
    cr_assert(strstr(e.msg, "monitored logloss") && strstr(e.msg, "--monitor logloss"), "%s", e.msg);
    unlink(ckpt);
}
