/* The roofline behind bench/results/train-throughput*: GFLOP/s of the training
 * GEMMs of DeepFM and DCNv2 on Criteo-shaped rows (X = 39 fields * D 16 = 624,
 * DNN 256,128) in float (sc_gemm: OpenBLAS) and bfloat16 (sc_gemm_bf16), at
 * batch 256 and 4096, plus a 2048^3 square GEMM as each path's attainable
 * peak. Median of 5 timed repetitions (after one warm-up), each long enough
 * to be timed (>= 20 ms). Writes bench/results/train-throughput-gemm.{json,md}.
 *
 *   make BUILD=build && cc -O2 -march=native -std=c11 -D_GNU_SOURCE -Isrc \
 *     bench/bench_train_gemm.c build/libsemctr.a -lopenblas -lm -lpthread -o build/bench_train_gemm
 *   flock /tmp/semctr-bench.lock build/bench_train_gemm [threads] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* GFLOP/s of C (M,N) = op(A) op(B) (+C), median of 5 */
static double rate(int bf16, int ta, int tb, int M, int N, int K, int threads) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    float *A = sc_aligned_alloc(sizeof(float) * (size_t)M * K), *Bm = sc_aligned_alloc(sizeof(float) * (size_t)K * N),
          *C = sc_aligned_alloc(sizeof(float) * (size_t)M * N);
    uint32_t *s = sc_aligned_alloc(sizeof(uint32_t) * (size_t)sc_gemm_bf16_scratch(M, N, K));
    for (int64_t i = 0; i < (int64_t)M * K; i++) A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int64_t i = 0; i < (int64_t)K * N; i++) Bm[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    memset(C, 0, sizeof(float) * (size_t)M * N);
    sc_nn_set_threads(threads);
    double flop = 2.0 * M * N * K, t[5];
    int reps = (int)(2e-2 * 50e9 / flop) + 1; /* ~20 ms at 50 GFLOP/s */
    for (int r = -1; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) {
            if (bf16)
                sc_gemm_bf16(ta, tb, M, N, K, A, lda, Bm, ldb, 1.0f, C, N, s, threads);
            else
                sc_gemm(ta, tb, M, N, K, 1.0f, A, lda, Bm, ldb, 1.0f, C, N);
        }
        if (r >= 0) t[r] = (now() - t0) / reps;
    }
    qsort(t, 5, sizeof t[0], cmp);
    sc_free(A), sc_free(Bm), sc_free(C), sc_free(s);
    return flop / t[2] / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    struct {
        const char *name;
        int ta, tb, M, N, K;
    } cs[] = {
        {"square 2048^3 (attainable peak)", 0, 0, 2048, 2048, 2048},
        {"DNN layer 1 forward, batch 256 (out = x W^T)", 0, 1, 256, 256, 624},
        {"DNN layer 1 dW, batch 256 (dout^T x)", 1, 0, 256, 624, 256},
        {"DNN layer 1 dx, batch 256 (dout W)", 0, 0, 256, 624, 256},
        {"DCNv2 cross forward, batch 256", 0, 1, 256, 624, 624},
        {"DCNv2 cross dW, batch 256", 1, 0, 624, 624, 256},
        {"DNN layer 1 forward, batch 4096", 0, 1, 4096, 256, 624},
        {"DNN layer 1 dW, batch 4096", 1, 0, 256, 624, 4096},
        {"DNN layer 1 dx, batch 4096", 0, 0, 4096, 624, 256},
        {"DCNv2 cross forward, batch 4096", 0, 1, 4096, 624, 624},
        {"DCNv2 cross dW, batch 4096", 1, 0, 624, 624, 4096},
    };
    int n = (int)(sizeof cs / sizeof cs[0]);
    char path[] = "bench/results/train-throughput-gemm.json", mdp[] = "bench/results/train-throughput-gemm.md";
    FILE *js = fopen(path, "w"), *md = fopen(mdp, "w");
    if (!js || !md) {
        fprintf(stderr, "cannot write %s / %s (run from the repository root)\n", path, mdp);
        return 1;
    }
    fprintf(js, "{\"name\": \"train-throughput-gemm\", \"threads\": %d, \"bf16_kernel\": %s, \"rows\": [\n", threads,
            sc_linear_bf16_available() ? "true" : "false");
    fprintf(md, "# Training GEMMs: float (OpenBLAS) vs bfloat16 (sc_gemm_bf16), %d threads\n\n"
                "GFLOP/s, median of 5 (bench/bench_train_gemm.c). bf16 kernel compiled: %s.\n\n"
                "| GEMM | M | N | K | f32 GFLOP/s | bf16 GFLOP/s | bf16 / f32 |\n|---|---|---|---|---|---|---|\n",
            threads, sc_linear_bf16_available() ? "yes" : "no (plain fallback)");
    for (int i = 0; i < n; i++) {
        double f = rate(0, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, threads);
        double h = rate(1, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, threads);
        printf("%-48s f32 %7.1f  bf16 %7.1f GFLOP/s  (%.2fx)\n", cs[i].name, f, h, h / f);
        fprintf(js, " {\"case\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"f32_gflops\": %.1f, \"bf16_gflops\": %.1f}%s\n",
                cs[i].name, cs[i].M, cs[i].N, cs[i].K, f, h, i + 1 < n ? "," : "");
        fprintf(md, "| %s | %d | %d | %d | %.1f | %.1f | %.2fx |\n", cs[i].name, cs[i].M, cs[i].N, cs[i].K, f, h, h / f);
        fflush(stdout);
    }
    fprintf(js, "]}\n");
    fclose(js);
    fclose(md);
    return 0;
}
