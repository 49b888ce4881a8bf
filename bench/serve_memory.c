/* Memory of N scoring contexts on one loaded model, by the library's own
 * count of live bytes (base/alloc: every allocation of libsemctr goes
 * through it), through the public API only: load with max_concurrency N,
 * then N threads released at once each score a call of R rows, so every
 * call finds the other contexts busy and the pool makes up to N contexts
 * (how many it made is read from the scorer and printed). Prints one JSON
 * line. Built by bench/bench_serve.py against the libsemctr.a
 * beside each semctr binary (so an earlier build is measured the same way).
 *
 * Usage: serve_memory MODEL CSV N ROWS */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semctr.h"

int64_t sc_alloc_live_bytes(void); /* base/alloc.h, in libsemctr.a */
/* serve/scorer.h: contexts made so far; a semctr_model holds its sc_scorer
 * first (serve/api.c, the same in earlier builds) */
int sc_scorer_contexts(void *scorer);

static semctr_model *model;
static const char *cols[3] = {"user_id", "item_id", "history"};
static char **cells;
static int rows;
static pthread_barrier_t go;

static void *caller(void *arg) {
    (void)arg;
    float *p = malloc(sizeof *p * (size_t)rows);
    semctr_error err;
    pthread_barrier_wait(&go);
    if (!p || semctr_score(model, rows, 3, cols, (const char *const *)cells, p, &err)) fprintf(stderr, "score failed\n");
    free(p);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) return fprintf(stderr, "usage: serve_memory MODEL CSV N ROWS\n"), 2;
    int n = atoi(argv[3]);
    rows = atoi(argv[4]);
    FILE *f = fopen(argv[2], "r");
    char line[8192];
    if (!f || !fgets(line, sizeof line, f) || n < 1 || n > 64 || rows < 1) return 2;
    cells = calloc((size_t)rows * 3, sizeof *cells);
    for (int r = 0; r < rows && fgets(line, sizeof line, f); r++) {
        line[strcspn(line, "\r\n")] = 0;
        char *s = strdup(line);
        for (int c = 0; c < 3; c++) {
            char *e = strchr(s, ',');
            if (e) *e = 0;
            cells[r * 3 + c] = s;
            s = e ? e + 1 : s + strlen(s);
        }
    }
    int64_t live0 = sc_alloc_live_bytes();
    semctr_options o;
    semctr_options_init(&o);
    o.max_concurrency = n;
    semctr_error err;
    if (semctr_load(&model, argv[1], &o, &err)) return fprintf(stderr, "%s\n", err.message), 1;
    int64_t loaded = sc_alloc_live_bytes();
    pthread_t th[64];
    /* one call first: the load's context grows to the rows of a call */
    pthread_barrier_init(&go, NULL, 1);
    caller(NULL);
    pthread_barrier_destroy(&go);
    int64_t one = sc_alloc_live_bytes();
    pthread_barrier_init(&go, NULL, (unsigned)n);
    for (int t = 0; t < n; t++) pthread_create(&th[t], NULL, caller, NULL);
    for (int t = 0; t < n; t++) pthread_join(th[t], NULL);
    int64_t all = sc_alloc_live_bytes();
    int made = sc_scorer_contexts(*(void **)model);
    printf("{\"contexts_made\":%d,\"contexts_asked\":%d,\"rows\":%d,\"model_and_first_context_bytes\":%lld,\"after_one_call_bytes\":%lld,"
           "\"after_%d_callers_bytes\":%lld,\"per_further_context_bytes\":%.0f}\n",
           made, n, rows, (long long)(loaded - live0), (long long)(one - live0), n, (long long)(all - live0),
           made > 1 ? (double)(all - one) / (made - 1) : 0.0);
    semctr_free(model);
    return 0;
}
