/* A GEMM cut into row (or column) blocks over sc_parallel_for, each block
 * one single-threaded OpenBLAS call. OpenBLAS's own threads split a GEMM
 * statically and busy-wait for each other between calls, so one of them
 * descheduled by another process stalls every layer (with two busy
 * neighbours on 2 cores, DeepFM training at 2 threads ran 12x slower than
 * at 1); here a block left unclaimed by a slow thread is taken by another.
 * The per-element sums are those of one OpenBLAS call (blocks split M or N,
 * never K, and stay above OpenBLAS's small-matrix size), so the bits equal
 * a single-threaded cblas_sgemm's. */
#ifndef SC_NN_GEMM_MT_H
#define SC_NN_GEMM_MT_H

/* C = alpha * op(A) op(B) + beta * C, row-major, op = transpose when ta/tb,
 * on up to n_threads threads. OpenBLAS must be single-threaded
 * (sc_nn_set_threads does that). */
void sc_gemm_mt(int n_threads, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *Bm, int ldb, float beta, float *C, int ldc);

#endif
