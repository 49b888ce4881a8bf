/* Encoder throughput driver for bench/bench_embed.py: loads the model once,
 * encodes the texts of FILE (one per line) `reps` times and prints one JSON
 * line per run, plus the model's GEMM FLOPs and the machine's measured sgemm
 * peak on the same threads. PRECISION (f32, default, or bf16) is the
 * encoder's (lm/bert.h); OUT, when given, receives the last run's vectors
 * as raw float32, (texts, dim) row-major, for the accuracy comparison.
 *   bench_embed MODEL_DIR FILE THREADS BATCH REPS [PRECISION [OUT]] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "lm/bert.h"
#include "lm/encoder.h"

/* sgemm FLOP/s on large square matrices with OpenBLAS's own threads. */
static double sgemm_peak(int threads) {
    const int n = 2048;
    float *a = sc_aligned_alloc((size_t)n * n * 4), *b = sc_aligned_alloc((size_t)n * n * 4),
          *c = sc_aligned_alloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 0;
    for (int r = 0; r < 4; r++) {
        double t0 = sc_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double f = 2.0 * n * n * n / (sc_now() - t0);
        if (f > best) best = f;
    }
    sc_free(a), sc_free(b), sc_free(c);
    return best;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 8 || (argc > 6 && strcmp(argv[6], "f32") && strcmp(argv[6], "bf16"))) {
        fprintf(stderr, "usage: bench_embed MODEL_DIR FILE THREADS BATCH REPS [f32|bf16 [OUT]]\n");
        return 2;
    }
    int threads = atoi(argv[3]), batch = atoi(argv[4]), reps = atoi(argv[5]);
    sc_error err;
    sc_encoder *enc;
    if (sc_encoder_load(&enc, argv[1], threads, &err) != SC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sc_encoder_set_batch(enc, batch);
    if (argc > 6 && sc_bert_set_precision(sc_encoder_bert(enc), strcmp(argv[6], "bf16") ? SC_BERT_F32 : SC_BERT_BF16,
                                          &err) != SC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char *buf;
    size_t len;
    if (sc_read_file(argv[2], &buf, &len, &err) != SC_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int n = 0;
    char **texts = malloc(sizeof(char *) * (len + 1));
    for (char *s = buf; *s;) {
        char *e = strchr(s, '\n');
        if (e) *e = '\0';
        texts[n++] = s;
        if (!e) break;
        s = e + 1;
    }
    /* GEMM FLOPs of one pass: per token and layer 2 * (4 C^2 + 2 C F), plus
     * attention 4 * T * C per token (scores and weighted sum). */
    double flops = 0;
    int ids[1024], nt;
    long tokens = 0;
    const double C = sc_encoder_dim(enc), F = 4 * C, L = 6;
    for (int i = 0; i < n; i++) {
        sc_encoder_tokenize(enc, texts[i], ids, 1024, &nt, &err);
        tokens += nt;
        flops += L * nt * (2 * (4 * C * C + 2 * C * F) + 4.0 * nt * C);
    }
    float *out = malloc(sizeof(float) * (size_t)n * (size_t)C);
    for (int r = 0; r < reps; r++) {
        double t0 = sc_now();
        if (sc_encoder_encode(enc, (const char *const *)texts, n, out, &err) != SC_OK) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double dt = sc_now() - t0;
        printf("{\"texts\": %d, \"tokens\": %ld, \"seconds\": %.6f, \"flops\": %.6e}\n", n, tokens, dt, flops);
        fflush(stdout);
    }
    if (argc > 7) {
        FILE *f = fopen(argv[7], "wb");
        if (!f || fwrite(out, sizeof(float) * (size_t)C, (size_t)n, f) != (size_t)n || fclose(f)) {
            fprintf(stderr, "bench_embed: cannot write %s\n", argv[7]);
            return 1;
        }
    }
    printf("{\"sgemm_peak_flops\": %.6e}\n", sgemm_peak(threads));
    free(out);
    free(texts);
    sc_free(buf);
    sc_encoder_free(enc);
    return 0;
}
