/* Embedding semctr in a program through the public API only (include/semctr.h).
 *
 *   score MODEL COLUMN=VALUE [COLUMN=VALUE ...]
 *       score one row, e.g. `score deepfm.model user_id=196 item_id=242`
 *   score MODEL --stress THREADS CALLS COLUMN=VALUE ...
 *       THREADS threads each score the row (and a batch of 100 copies of it)
 *       CALLS times on the one loaded model, and check that every result equals
 *       the single-threaded one (this is what `make tsan` runs under
 *       ThreadSanitizer).
 *
 * Build: cc score.c $(pkg-config --cflags --libs semctr) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <semctr.h>

#define MAX_COLS 64
#define BATCH 100

typedef struct job {
    semctr_model *model;
    int n_cols, calls;
    const char **cols, **batch_cells; /* (BATCH, n_cols) */
    float expect;
    int bad;
} job;

static void *stress(void *arg) {
    job *j = arg;
    float scores[BATCH];
    semctr_error err;
    for (int i = 0; i < j->calls; i++) {
        int n = i % 2 ? 1 : BATCH; /* alternate single rows and batches */
        if (semctr_score(j->model, n, j->n_cols, j->cols, j->batch_cells, scores, &err)) {
            fprintf(stderr, "score: %s\n", err.message);
            j->bad++;
            continue;
        }
        for (int r = 0; r < n; r++)
            if (scores[r] != j->expect) j->bad++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL [--stress THREADS CALLS] COLUMN=VALUE ...\n", argv[0]);
        return 2;
    }
    int threads = 0, calls = 0, a = 2;
    if (!strcmp(argv[2], "--stress")) {
        if (argc < 5) return 2;
        threads = atoi(argv[3]);
        calls = atoi(argv[4]);
        a = 5;
        if (threads < 1 || threads > 64 || calls < 1) return 2;
    }
    const char *cols[MAX_COLS], *cells[MAX_COLS];
    int n_cols = 0;
    for (; a < argc && n_cols < MAX_COLS; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) {
            fprintf(stderr, "expected COLUMN=VALUE, got '%s'\n", argv[a]);
            return 2;
        }
        *eq = '\0';
        cols[n_cols] = argv[a];
        cells[n_cols++] = eq + 1;
    }
    semctr_options opt;
    semctr_options_init(&opt);
    opt.max_concurrency = threads > 0 ? threads : 1;
    semctr_model *m;
    semctr_error err;
    if (semctr_load(&m, argv[1], &opt, &err)) {
        fprintf(stderr, "load: %s (%s)\n", err.message, semctr_strerror(err.code));
        return 1;
    }
    const char *const *known;
    int nk = semctr_input_columns(m, &known);
    fprintf(stderr, "semctr %s: %s network '%s', %d fields, reads:", semctr_version(), semctr_model_backbone(m),
            semctr_model_network(m), semctr_model_n_fields(m));
    for (int i = 0; i < nk; i++) fprintf(stderr, " %s", known[i]);
    fprintf(stderr, "\n");
    float p;
    if (semctr_score(m, 1, n_cols, cols, cells, &p, &err)) {
        fprintf(stderr, "score: %s\n", err.message);
        semctr_free(m);
        return 1;
    }
    printf("%.9g\n", p);
    int rc = 0;
    if (threads > 0) {
        const char **batch = malloc(sizeof *batch * BATCH * (n_cols ? n_cols : 1));
        job *jobs = calloc((size_t)threads, sizeof *jobs);
        pthread_t *th = calloc((size_t)threads, sizeof *th);
        if (!batch || !jobs || !th) return 1;
        for (int r = 0; r < BATCH; r++) memcpy(batch + r * n_cols, cells, sizeof *cells * n_cols);
        for (int t = 0; t < threads; t++) {
            jobs[t] = (job){m, n_cols, calls, cols, batch, p, 0};
            pthread_create(&th[t], NULL, stress, &jobs[t]);
        }
        int bad = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            bad += jobs[t].bad;
        }
        printf("stress: %d threads x %d calls, %d mismatches\n", threads, calls, bad);
        rc = bad != 0;
        free(batch);
        free(jobs);
        free(th);
    }
    semctr_free(m);
    return rc;
}
