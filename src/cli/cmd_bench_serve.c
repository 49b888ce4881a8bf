/* semctr bench-serve: in-process scoring throughput and latency through the
 * public API (include/semctr.h), as an ad server embedding semctr would see
 * it: raw string cells in, probabilities out (encoding included). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "cli/cli.h"
#include "data/schema.h"
#include "semctr.h"

static const char *USAGE =
    "usage: semctr bench-serve --model FILE --input CSV [options]\n"
    "\n"
    "Scores batches of rows of CSV (raw columns) in a loop and prints one JSON\n"
    "line per batch size: rows/s, calls/s and per-call latency p50/p99 (ms).\n"
    "\n"
    "  --batch LIST       batch sizes (1,100,1000)\n"
    "  --threads N        threads inside one call (1)\n"
    "  --callers N        concurrent callers on the one model (1)\n"
    "  --seconds S        time per batch size (1)\n"
    "  --encoder DIR      MSD models: encode new items' item_text with this encoder\n"
    "  --precision P      dense layers in f32 (default) or bf16\n"
    "  --dump-scores FILE score every input row (calls of the first batch size) into FILE, one\n"
    "                     probability a line (%.9g: reads back exactly), instead of timing\n";

typedef struct caller {
    semctr_model *m;
    int n_rows_total, n_cols, batch;
    const char *const *cols;
    const char **cells;
    double until;
    double *lat;
    int cap, n, failed;
} caller;

static void *run(void *arg) {
    caller *c = arg;
    float *p = malloc(sizeof *p * (size_t)c->batch);
    semctr_error err;
    int off = 0;
    while (p && sc_now() < c->until && c->n < c->cap) {
        if (off + c->batch > c->n_rows_total) off = 0;
        double t0 = sc_now();
        if (semctr_score(c->m, c->batch, c->n_cols, c->cols, c->cells + (size_t)off * c->n_cols, p, &err)) c->failed++;
        c->lat[c->n++] = sc_now() - t0;
        off += c->batch;
    }
    free(p);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_bench_serve(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *batches = "1,100,1000", *encoder = NULL, *precision = NULL, *dump = NULL;
    long threads = 1, callers = 1;
    double seconds = 1;
    const cli_opt opts[] = {
        CLI_STR("--model", &model),
        CLI_STR("--input", &input),
        CLI_STR("--batch", &batches),
        CLI_STR("--encoder", &encoder),
        CLI_STR("--precision", &precision),
        CLI_STR("--dump-scores", &dump),
        CLI_INT("--threads", &threads, 1, 256),
        CLI_INT("--callers", &callers, 1, 256),
        CLI_FLOAT("--seconds", &seconds),
    };
    int code = cli_parse("bench-serve", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (seconds <= 0) return EXIT_USAGE;
    if (!model || !input) {
        fprintf(stderr, "semctr bench-serve: --model and --input are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    sc_error err = {0};
    sc_csv_chunks *csv;
    if (sc_csv_chunks_open(&csv, input, ",", &err)) return cli_fail("bench-serve", &err);
    int n_rows, n_cols;
    const char *const *names, *const *cells;
    if (sc_csv_chunks_next(csv, 1 << 20, &n_rows, &n_cols, &names, &cells, &err)) {
        sc_csv_chunks_close(csv);
        return cli_fail("bench-serve", &err);
    }
    semctr_options o;
    semctr_options_init(&o);
    o.threads_per_call = (int)threads;
    o.max_concurrency = (int)callers;
    o.encoder = encoder;
    o.precision = precision;
    semctr_model *m;
    semctr_error e;
    if (semctr_load(&m, model, &o, &e)) {
        sc_csv_chunks_close(csv);
        fprintf(stderr, "semctr bench-serve: error: %s\n", e.message);
        return 1;
    }
    char list[256];
    snprintf(list, sizeof list, "%s", batches);
    int rc = 0;
    if (dump) {
        int B = atoi(list) > 0 ? atoi(list) : 100;
        float *p = malloc(sizeof *p * (size_t)n_rows);
        FILE *f = fopen(dump, "w");
        for (int r0 = 0; p && f && r0 < n_rows && !rc; r0 += B) {
            int n = n_rows - r0 < B ? n_rows - r0 : B;
            if (semctr_score(m, n, n_cols, names, cells + (size_t)r0 * n_cols, p + r0, &e)) {
                fprintf(stderr, "semctr bench-serve: error: %s\n", e.message);
                rc = 1;
            }
        }
        for (int r = 0; p && f && !rc && r < n_rows; r++) fprintf(f, "%.9g\n", p[r]);
        if (!p || !f || (f && fclose(f))) {
            fprintf(stderr, "semctr bench-serve: cannot write %s\n", dump);
            rc = 1;
        }
        free(p);
        semctr_free(m);
        sc_csv_chunks_close(csv);
        return rc;
    }
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        int B = atoi(t);
        if (B < 1 || B > n_rows) {
            fprintf(stderr, "semctr bench-serve: batch %s not in [1, %d rows of the input]\n", t, n_rows);
            rc = EXIT_USAGE;
            break;
        }
        caller cs[256];
        pthread_t th[256];
        /* warm up: contexts created, caches warm */
        float *p = malloc(sizeof *p * (size_t)B);
        for (int w = 0; w < 20 && p; w++) semctr_score(m, B, n_cols, names, cells, p, &e);
        free(p);
        int64_t live0 = sc_alloc_live_bytes(); /* the model and one context */
        double t0 = sc_now(), until = t0 + seconds;
        for (int c = 0; c < callers; c++) {
            cs[c] = (caller){m, n_rows, n_cols, B, names, (const char **)cells, until, NULL, 2000000, 0, 0};
            cs[c].lat = sc_malloc(sizeof(double) * (size_t)cs[c].cap);
            pthread_create(&th[c], NULL, run, &cs[c]);
        }
        int total = 0, failed = 0;
        for (int c = 0; c < callers; c++) {
            pthread_join(th[c], NULL);
            total += cs[c].n;
            failed += cs[c].failed;
        }
        double dt = sc_now() - t0;
        double *all = sc_malloc(sizeof(double) * (size_t)(total ? total : 1));
        int k = 0;
        for (int c = 0; c < callers; c++) {
            memcpy(all + k, cs[c].lat, sizeof(double) * (size_t)cs[c].n);
            k += cs[c].n;
            sc_free(cs[c].lat);
        }
        qsort(all, (size_t)total, sizeof *all, cmp_d);
        printf("{\"model\":\"%s\",\"backbone\":\"%s\",\"batch\":%d,\"threads\":%ld,\"callers\":%ld,\"calls\":%d,"
               "\"failed\":%d,\"rows_per_s\":%.1f,\"calls_per_s\":%.1f,\"p50_ms\":%.5f,\"p99_ms\":%.5f,"
               "\"live_bytes_one_context\":%lld,\"live_bytes\":%lld,\"peak_rss_bytes\":%lld}\n",
               model, semctr_model_backbone(m), B, threads, callers, total, failed, total * (double)B / dt, total / dt,
               total ? all[total / 2] * 1e3 : 0, total ? all[(int)(total * 0.99)] * 1e3 : 0, (long long)live0,
               (long long)sc_alloc_live_bytes(), (long long)sc_peak_rss_bytes());
        fflush(stdout);
        sc_free(all);
        if (failed) rc = 1;
    }
    semctr_free(m);
    sc_csv_chunks_close(csv);
    return rc;
}
