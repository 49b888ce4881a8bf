/* bfloat16 training GEMMs (train --precision bf16): the tuned kernel against
 * its plain version and against float, for every transpose case and odd
 * sizes; the layers built on it against their float twins; and a bf16
 * training run that learns MovieLens-100K.
 *
 * Tolerances. Rounding a float to bfloat16 (8-bit significand, nearest even)
 * moves it by at most u = 2^-8 of its size, so a product of two rounded values
 * is within (1 + u)^2 - 1 = 2^-7 + 2^-16 of the exact one:
 *   |C_bf16 - C_f32| <= 2^-7 * sum_k |a_k b_k| (+ float summation error, far smaller).
 * The tuned kernel and the plain version round the same way and differ only in
 * the order of float additions: within 1e-5 * sum_k |a_k b_k|. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"
#include "test_cli_util.h"

static void fill(float *x, int64_t n, float scale, uint64_t seed) {
    sc_rng r;
    sc_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = scale * sc_rng_normal(&r);
}

static float opv(const float *X, int t, int ld, int i, int j) {
    return t ? X[(int64_t)j * ld + i] : X[(int64_t)i * ld + j];
}

/* One case: C = beta C0 + op(A) op(B) by the tuned kernel (1 and 2 threads),
 * the plain version and float; every element checked against the bounds above. */
static void check_case(int ta, int tb, int M, int N, int K, float beta, uint64_t seed) {
    int lda = ta ? M + 3 : K + 1, ldb = tb ? K + 2 : N + 5, ldc = N + 4; /* strides wider than the rows */
    int64_t na = (int64_t)(ta ? K : M) * lda, nb = (int64_t)(tb ? N : K) * ldb, nc = (int64_t)M * ldc;
    float *A = sc_aligned_alloc(sizeof(float) * na), *Bm = sc_aligned_alloc(sizeof(float) * nb);
    float *C0 = sc_aligned_alloc(sizeof(float) * nc), *c1 = sc_aligned_alloc(sizeof(float) * nc),
          *c2 = sc_aligned_alloc(sizeof(float) * nc), *cp = sc_aligned_alloc(sizeof(float) * nc),
          *cf = sc_aligned_alloc(sizeof(float) * nc);
    int64_t ns = sc_gemm_bf16_scratch(M, N, K);
    uint32_t *s = sc_aligned_alloc(sizeof(uint32_t) * ns + 64);
    fill(A, na, 1.0f, seed);
    fill(Bm, nb, 0.5f, seed + 1);
    fill(C0, nc, 1.0f, seed + 2);
    memcpy(c1, C0, sizeof(float) * nc);
    memcpy(c2, C0, sizeof(float) * nc);
    memcpy(cp, C0, sizeof(float) * nc);
    memcpy(cf, C0, sizeof(float) * nc);
    sc_gemm_bf16(ta, tb, M, N, K, A, lda, Bm, ldb, beta, c1, ldc, s, 1);
    /* scratch that is not 64-byte aligned must work too */
    sc_gemm_bf16(ta, tb, M, N, K, A, lda, Bm, ldb, beta, c2, ldc, s + 1, 2);
    sc_gemm_bf16_plain(ta, tb, M, N, K, A, lda, Bm, ldb, beta, cp, ldc, s);
    sc_gemm(ta, tb, M, N, K, 1.0f, A, lda, Bm, ldb, beta, cf, ldc);
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int64_t at = (int64_t)i * ldc + j;
            double mag = 0.0;
            for (int k = 0; k < K; k++) mag += fabs((double)opv(A, ta, lda, i, k) * opv(Bm, tb, ldb, k, j));
            cr_assert_eq(c1[at], c2[at], "ta %d tb %d (%d,%d,%d): 1 and 2 threads differ at (%d,%d)", ta, tb, M, N,
                         K, i, j);
            double dp = fabs((double)c1[at] - cp[at]), df = fabs((double)c1[at] - cf[at]);
            cr_assert(dp <= 1e-5 * mag + 1e-6, "ta %d tb %d (%d,%d,%d) at (%d,%d): tuned %g plain %g (sum|ab| %g)",
                      ta, tb, M, N, K, i, j, c1[at], cp[at], mag);
            cr_assert(df <= ldexp(mag, -7) + 1e-6, "ta %d tb %d (%d,%d,%d) at (%d,%d): bf16 %g float %g (sum|ab| %g)",
                      ta, tb, M, N, K, i, j, c1[at], cf[at], mag);
            if (mag > 0 && df / mag > worst) worst = df / mag;
        }
    /* outside the N columns of each row (the stride's slack) nothing is written */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) cr_assert_eq(c1[(int64_t)i * ldc + j], C0[(int64_t)i * ldc + j]);
    /* bfloat16 does round: the result is not float's (a kernel that silently ran float would pass the bounds) */
    if (K >= 8) cr_assert(worst > 1e-6, "ta %d tb %d: no rounding visible (worst %g)", ta, tb, worst);
    sc_free(A), sc_free(Bm), sc_free(C0), sc_free(c1), sc_free(c2), sc_free(cp), sc_free(cf), sc_free(s);
}

Test(layers_bf16, gemm_all_transposes_odd_sizes) {
    const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {37, 45, 77}, {64, 16, 32}, {130, 100, 33}, {16, 129, 65}};
    uint64_t seed = 11;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int b = 0; b < 2; b++)
                    check_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], (float)b, seed++);
}

Test(layers_bf16, gemm_training_shapes) {
    /* the three GEMMs of a DNN layer and a DCNv2 cross layer at batch 256 (X = 39 fields * 16) */
    check_case(0, 1, 256, 256, 624, 1.0f, 101); /* forward: out = inp W^T */
    check_case(0, 0, 256, 624, 256, 1.0f, 102); /* dinp += dout W */
    check_case(1, 0, 256, 624, 256, 1.0f, 103); /* dW += dout^T inp (k = batch) */
    check_case(0, 1, 256, 624, 624, 1.0f, 104); /* cross */
}

/* The linear layer's forward and backward in bfloat16 against float, relative
 * to the size of the float result: the layer-level view of the bound above. */
Test(layers_bf16, linear_forward_backward_close_to_float) {
    const int B = 96, C = 70, O = 33;
    float *x = sc_aligned_alloc(sizeof(float) * B * C), *W = sc_aligned_alloc(sizeof(float) * O * C),
          *b = sc_aligned_alloc(sizeof(float) * O), *dy = sc_aligned_alloc(sizeof(float) * B * O);
    float *y[2], *dx[2], *dW[2], *db[2];
    for (int i = 0; i < 2; i++) {
        y[i] = sc_aligned_alloc(sizeof(float) * B * O);
        dx[i] = sc_calloc((size_t)B * C, sizeof(float));
        dW[i] = sc_calloc((size_t)O * C, sizeof(float));
        db[i] = sc_calloc((size_t)O, sizeof(float));
    }
    fill(x, B * C, 1.0f, 1);
    fill(W, O * C, 0.2f, 2);
    fill(b, O, 0.1f, 3);
    fill(dy, B * O, 0.05f, 4);
    uint32_t *s = sc_aligned_alloc(sizeof(uint32_t) * sc_linear_bf16_scratch(B, C, O));
    sc_linear_forward(y[0], x, W, b, B, C, O);
    sc_linear_forward_bf16(y[1], x, W, b, B, C, O, s, 2);
    sc_linear_backward(dx[0], dW[0], db[0], dy, x, W, B, C, O);
    sc_linear_backward_bf16(dx[1], dW[1], db[1], dy, x, W, B, C, O, s, 2);
    struct {
        const char *name;
        float *f, *h;
        int64_t n;
    } t[] = {{"y", y[0], y[1], B * O}, {"dx", dx[0], dx[1], B * C}, {"dW", dW[0], dW[1], O * C}, {"db", db[0], db[1], O}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < t[k].n; i++) {
            num += ((double)t[k].f[i] - t[k].h[i]) * ((double)t[k].f[i] - t[k].h[i]);
            den += (double)t[k].f[i] * t[k].f[i];
        }
        /* normalised RMS error: bfloat16 rounding of both operands gives a few 1e-3 at most; 1e-2 is loose */
        cr_assert(sqrt(num / den) < 1e-2, "%s: relative RMS error %g", t[k].name, sqrt(num / den));
        if (strcmp(t[k].name, "db") == 0) cr_assert(num == 0.0, "the bias gradient stays float");
    }
    for (int i = 0; i < 2; i++) sc_free(y[i]), sc_free(dx[i]), sc_free(dW[i]), sc_free(db[i]);
    sc_free(x), sc_free(W), sc_free(b), sc_free(dy), sc_free(s);
}

/* From the user's side: a bf16 training run learns (test AUC far above
 * chance, near float's ~0.71-0.72 for DeepFM on this split), the same seed
 * gives the same model file, and an unknown precision is refused. */
Test(layers_bf16, bf16_training_learns_movielens, .timeout = 300) {
    char d[64] = "/tmp/sc_bf16_train_XXXXXX";
    cr_assert(mkdtemp(d));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", d), 0, "%s", tcli_out());
    for (int i = 0; i < 2; i++)
        cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --out %s/m%d --epochs 2 --seed 1 --threads 2 "
                                 "--precision bf16", d, d, i), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m0 --data %s/data --split test --json", d, d), 0, "%s", tcli_out());
    double auc = tcli_json_number(tcli_out(), "auc");
    cr_assert(auc > 0.69 && auc < 0.80, "bf16 DeepFM test AUC %f", auc);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cmp -s %s/m0 %s/m1", d, d);
    cr_assert_eq(system(cmd), 0, "two bf16 runs with the same seed wrote different model files");
    cr_assert_eq(tcli_semctr("train --data %s/data --model dcnv2 --out %s/m2 --epochs 1 --max-steps 20 --seed 1 "
                             "--precision bf16", d, d), 0, "%s", tcli_out());
    cr_assert_neq(tcli_semctr("train --data %s/data --model deepfm --out %s/m3 --precision fp8", d, d), 0);
    cr_assert(strstr(tcli_out(), "--precision must be f32 or bf16"), "%s", tcli_out());
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    cr_assert_eq(system(cmd), 0);
}
