#include "nn/gemm_mt.h"

#include <cblas.h>
#include <stdint.h>

#include "base/util.h"

/* Blocks stay above this many multiply-adds: OpenBLAS picks its small-matrix
 * kernel (which sums in another order) only at or below 100^3, and a block
 * this big keeps the per-call packing and the hand-over cheap (~30 us). */
#define BLOCK_MACS 1100000.0

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, by_rows, blocks;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_block(void *vc, int t) {
    const gemm_job *j = vc;
    int dim = j->by_rows ? j->M : j->N;
    int lo = (int)((int64_t)dim * t / j->blocks), n = (int)((int64_t)dim * (t + 1) / j->blocks) - lo;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    int M = j->M, N = j->N;
    if (j->by_rows) { /* rows lo.. of C and of op(A) */
        A += j->ta ? (int64_t)lo : (int64_t)lo * j->lda;
        C += (int64_t)lo * j->ldc;
        M = n;
    } else { /* columns lo.. of C and of op(B) */
        B += j->tb ? (int64_t)lo * j->ldb : (int64_t)lo;
        C += lo;
        N = n;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans, M, N, j->K,
                j->alpha, A, j->lda, B, j->ldb, j->beta, C, j->ldc);
}

void sc_gemm_mt(int n_threads, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *Bm, int ldb, float beta, float *C, int ldc) {
    double macs = (double)M * N * K;
    if (n_threads > 1 && macs >= 2 * BLOCK_MACS) {
        gemm_job j = {ta, tb, M, N, K, lda, ldb, ldc, M >= N, 0, alpha, beta, A, Bm, C};
        int dim = j.by_rows ? M : N;
        double per = macs / dim;            /* multiply-adds per row (column) */
        int min_step = (int)(BLOCK_MACS / per) + 1;
        /* as many even blocks as stay big enough (each >= dim / blocks
         * >= min_step rows), up to 4 a thread */
        int blocks = dim / min_step;
        if (blocks > 4 * n_threads) blocks = 4 * n_threads;
        if (blocks >= 2) {
            j.blocks = blocks;
            sc_parallel_for(blocks, n_threads, gemm_block, &j);
            return;
        }
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                lda, Bm, ldb, beta, C, ldc);
}
