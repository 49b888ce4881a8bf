/* The process-wide pool behind sc_parallel_for (nested and concurrent calls,
 * every task once), the GEMM cut over it (the bits of one single-threaded
 * OpenBLAS call) and the optimizer's step over it (the bits of 1 thread). */
#include <cblas.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nn/gemm_mt.h"
#include "nn/optim.h"

typedef struct {
    atomic_int *hits;
    int inner;
} nest_ctx;

static void inner_task(void *c, int i) { atomic_fetch_add(&((atomic_int *)c)[i], 1); }

static void outer_task(void *vc, int i) {
    nest_ctx *c = vc;
    /* a call from inside a running section runs inline */
    sc_parallel_for(c->inner, 2, inner_task, c->hits + (int64_t)i * c->inner);
}

Test(threads, nested_parallel_for_runs_every_task_once) {
    enum { OUT = 37, IN = 11 };
    atomic_int hits[OUT * IN];
    for (int i = 0; i < OUT * IN; i++) atomic_init(&hits[i], 0);
    nest_ctx c = {hits, IN};
    sc_parallel_for(OUT, 3, outer_task, &c);
    for (int i = 0; i < OUT * IN; i++) cr_assert_eq(atomic_load(&hits[i]), 1, "task %d ran %d times", i, hits[i]);
}

typedef struct {
    atomic_int hits[500];
    int threads;
} conc_ctx;

static void conc_task(void *c, int i) { atomic_fetch_add(&((conc_ctx *)c)->hits[i], 1); }

static void *conc_caller(void *arg) {
    conc_ctx *c = arg;
    for (int r = 0; r < 200; r++) sc_parallel_for(500 / 200 + r % 3 + 1, c->threads, conc_task, c);
    return NULL;
}

Test(threads, concurrent_callers_each_get_all_their_tasks) {
    /* four threads share the pool (one section at a time; the others inline) */
    conc_ctx c[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 500; i++) atomic_init(&c[t].hits[i], 0);
        c[t].threads = 1 + t;
        cr_assert_eq(pthread_create(&th[t], NULL, conc_caller, &c[t]), 0);
    }
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++) {
        int expect[500] = {0};
        for (int r = 0; r < 200; r++)
            for (int i = 0; i < 500 / 200 + r % 3 + 1; i++) expect[i]++;
        for (int i = 0; i < 500; i++) cr_assert_eq(atomic_load(&c[t].hits[i]), expect[i], "caller %d task %d", t, i);
    }
}

Test(threads, parallel_for_more_threads_than_started_grows) {
    atomic_int hits[64];
    for (int i = 0; i < 64; i++) atomic_init(&hits[i], 0);
    sc_parallel_for(64, 2, inner_task, hits);
    sc_parallel_for(64, 6, inner_task, hits);
    sc_parallel_for(64, 1, inner_task, hits);
    for (int i = 0; i < 64; i++) cr_assert_eq(atomic_load(&hits[i]), 3);
}

static void fill(float *a, int64_t n, unsigned seed) {
    sc_rng r;
    sc_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) a[i] = sc_rng_normal(&r);
}

Test(threads, gemm_blocks_give_the_bits_of_one_call) {
    openblas_set_num_threads(1);
    /* shapes of training's layers (batch x in x out, both transposes), big
     * enough to be cut, with ragged edges */
    static const int shapes[][3] = {{256, 400, 400}, {4096, 416, 256}, {256, 128, 256}, {4096, 256, 128},
                                    {131, 517, 33},  {33, 517, 131},   {1000, 8, 1000}, {4096, 16, 32}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
                int lda = ta ? M : K, ldb = tb ? K : N;
                float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N);
                float *C1 = malloc(sizeof(float) * (size_t)M * N), *C2 = malloc(sizeof(float) * (size_t)M * N);
                fill(A, (int64_t)M * K, 1 + (unsigned)s);
                fill(B, (int64_t)K * N, 100 + (unsigned)s);
                fill(C1, (int64_t)M * N, 7);
                memcpy(C2, C1, sizeof(float) * (size_t)M * N);
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                            0.5f, A, lda, B, ldb, 1.0f, C1, N);
                sc_gemm_mt(2, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C2, N);
                cr_assert_eq(memcmp(C1, C2, sizeof(float) * (size_t)M * N), 0, "M %d N %d K %d ta %d tb %d", M, N,
                             K, ta, tb);
                free(A);
                free(B);
                free(C1);
                free(C2);
            }
}

/* 3 dense parameters and 2 sparse tables, stepped 3 times at 1 and at 3 threads */
static void run_steps(int kind, int threads, float *out, int64_t n_out) {
    enum { V = 5000, C = 16, TOUCH = 3000, ND = 70000 };
    float *w = calloc((size_t)n_out, sizeof(float));
    fill(w, n_out, 3);
    float *g = malloc(sizeof(float) * (size_t)n_out);
    int32_t *touched = malloc(sizeof(int32_t) * TOUCH * 2);
    for (int i = 0; i < TOUCH; i++) {
        touched[i] = (int32_t)((i * 7919) % V);
        touched[TOUCH + i] = (int32_t)((i * 104729) % V);
    }
    sc_param p[5];
    memset(p, 0, sizeof p);
    int64_t off = 0;
    const int64_t dense[3] = {ND, 300, 40000};
    for (int i = 0; i < 3; i++) {
        snprintf(p[i].name, sizeof p[i].name, "d%d", i);
        p[i].data = w + off;
        p[i].size = dense[i];
        p[i].rows = 1;
        p[i].cols = (int)dense[i];
        off += dense[i];
    }
    for (int i = 3; i < 5; i++) {
        snprintf(p[i].name, sizeof p[i].name, "e%d", i);
        p[i].data = w + off;
        p[i].size = (int64_t)V * C;
        p[i].rows = V;
        p[i].cols = C;
        p[i].sparse = 1;
        p[i].weight_decay = 1;
        p[i].touched = touched + (i - 3) * TOUCH;
        p[i].n_touched = TOUCH;
        off += (int64_t)V * C;
    }
    cr_assert_eq(off, n_out);
    sc_optim_config cfg;
    sc_optim_config_default(&cfg, kind);
    cfg.weight_decay = 1e-3f;
    cfg.n_threads = threads;
    sc_optim *o;
    cr_assert_eq(sc_optim_create(&o, &cfg, p, 5, NULL), 0);
    for (int step = 0; step < 3; step++) {
        fill(g, n_out, 50 + (unsigned)step);
        int64_t go = 0;
        for (int i = 0; i < 3; i++) {
            p[i].grad = g + go;
            go += p[i].size;
        }
        for (int i = 3; i < 5; i++) {
            p[i].grad = g + go;
            go += (int64_t)TOUCH * C;
        }
        cr_assert_eq(sc_optim_step(o, 0.01f, NULL), 0);
    }
    memcpy(out, w, sizeof(float) * (size_t)n_out);
    sc_optim_free(o);
    free(w);
    free(g);
    free(touched);
}

Test(threads, optimizer_step_same_bits_at_any_threads) {
    int64_t n = 70000 + 300 + 40000 + 2 * 5000 * 16;
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    for (int kind = 0; kind < 2; kind++) {
        run_steps(kind, 1, a, n);
        run_steps(kind, 3, b, n);
        cr_assert_eq(memcmp(a, b, sizeof(float) * (size_t)n), 0, "optimizer kind %d", kind);
    }
    free(a);
    free(b);
}
