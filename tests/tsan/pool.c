/* The thread pool under ThreadSanitizer (Criterion's runner does not start
 * under TSan here): sc_parallel_for nested, from four threads at once, grown,
 * the GEMM blocks and the optimizer step at 1 and 3 threads. Exits non-zero
 * on a wrong count or different bits; TSan reports races itself.
 * Build: see tests/tsan/run.sh. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nn/gemm_mt.h"

static int fails;
#define CHECK(c, ...)                                                                                                  \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "not ok: " __VA_ARGS__);                                                                   \
            fputc('\n', stderr);                                                                                       \
            fails++;                                                                                                   \
        }                                                                                                              \
    } while (0)

static atomic_int hits[64 * 64];
static void inner(void *c, int i) { atomic_fetch_add(&((atomic_int *)c)[i], 1); }
static void outer(void *c, int i) { sc_parallel_for(64, 2, inner, (atomic_int *)c + 64 * i); }

static void *caller(void *arg) {
    atomic_int *h = arg;
    for (int r = 0; r < 300; r++) sc_parallel_for(8, 2 + r % 3, inner, h);
    return NULL;
}

int main(void) {
    openblas_set_num_threads(1);
    sc_parallel_for(64, 3, outer, hits);
    for (int i = 0; i < 64 * 64; i++) CHECK(atomic_load(&hits[i]) == 1, "nested task %d ran %d times", i, hits[i]);
    static atomic_int h[4][8];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) pthread_create(&th[t], NULL, caller, h[t]);
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 8; i++) CHECK(atomic_load(&h[t][i]) == 300, "caller %d task %d: %d", t, i, h[t][i]);
    int M = 512, N = 300, K = 200;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = calloc((size_t)M * N, sizeof(float)), *C2 = calloc((size_t)M * N, sizeof(float));
    for (int i = 0; i < M * K; i++) A[i] = (float)((i * 37) % 101) / 50.0f - 1;
    for (int i = 0; i < K * N; i++) B[i] = (float)((i * 53) % 97) / 48.0f - 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0, C1, N);
    sc_gemm_mt(3, 0, 0, M, N, K, 1, A, K, B, N, 0, C2, N);
    CHECK(!memcmp(C1, C2, sizeof(float) * M * N), "gemm blocks differ from one call");
    free(A);
    free(B);
    free(C1);
    free(C2);
    printf("%s\n", fails ? "FAIL" : "ok");
    return fails != 0;
}
