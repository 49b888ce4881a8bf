/* semctr's side of bench/bench_llm.py: prompt processing and generation
 * speed of a GGUF decoder, timed inside the process (no start-up).
 *
 *   make && cc -O2 -march=native -std=c11 -D_GNU_SOURCE -Isrc -Iinclude bench/bench_llm.c \
 *     build/libsemctr.a -lopenblas -lyaml -lcjson -lxxhash -lutf8proc -lpcre2-8 -lpthread -lm -o build/bench_llm
 *   build/bench_llm MODEL.gguf THREADS N_PROMPTS GEN_TOKENS LEN [LEN...] [batch B [B...]]
 *
 * Prompt p of length L is the token ids bench_llm.py also feeds llama.cpp
 * (id(p, k) below); each prompt starts a fresh sequence. Generation: a
 * 16-token prompt, then GEN_TOKENS greedy steps (argmax, never stopping at
 * EOS), timing the steps only. Batched generation ("batch B"): B sequences,
 * sequence p with a 16-token prompt of ids id(p, k) (all prompts in one
 * pass), then GEN_TOKENS greedy steps of all B together
 * (sc_llama_forward_batch, one token per sequence per pass); tokens/s over
 * all sequences, steps only. $SEMCTR_KV_CACHE (f32, the default, or f16)
 * picks the KV cache type; kv_bytes = the bytes of the model's own cache
 * (1024 positions) as allocated, kv_bytes_batch = the batched caches'.
 * Prints one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/llama.h"

static int32_t token_id(int p, int k, int V) { return (int32_t)(100 + ((int64_t)1000 + 7919LL * (k + 1) * (p + 3)) % (V - 1100)); }

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_llm MODEL.gguf THREADS N_PROMPTS GEN_TOKENS LEN [LEN...]\n");
        return 2;
    }
    int threads = atoi(argv[2]), n_prompts = atoi(argv[3]), gen = atoi(argv[4]);
    sc_error e;
    sc_llama *m;
    if (sc_llama_load(&m, argv[1], 1024, &e) != SC_OK || sc_llama_set_threads(m, threads, &e) != SC_OK) {
        fprintf(stderr, "bench_llm: %s\n", e.msg);
        return 1;
    }
    const char *kvt = getenv("SEMCTR_KV_CACHE");
    if (kvt && kvt[0]) {
        int type = sc_llama_kv_type_parse(kvt);
        if (type < 0) {
            fprintf(stderr, "bench_llm: SEMCTR_KV_CACHE='%s' (f32 or f16)\n", kvt);
            return 2;
        }
        if (sc_llama_set_kv_type(m, type, &e) != SC_OK) goto fail;
    }
    size_t kv_bytes_batch = 0;
    int V = m->cfg.n_vocab;
    float *logits = sc_malloc((size_t)V * sizeof(float));
    int32_t ids[1024];
    /* warm-up: touch every weight page once */
    for (int k = 0; k < 32; k++) ids[k] = token_id(99, k, V);
    if (sc_llama_forward(m, ids, 32, logits, NULL, &e) != SC_OK) goto fail;
    int n_args = argc; /* the lengths end at "batch" */
    for (int a = 5; a < argc; a++)
        if (!strcmp(argv[a], "batch")) n_args = a;
    printf("{\"threads\": %d, \"pp\": {", threads);
    for (int a = 5; a < n_args; a++) {
        int L = atoi(argv[a]);
        if (L < 1 || L > 1000) { fprintf(stderr, "bench_llm: bad length %d\n", L); return 2; }
        double t0 = sc_now();
        for (int p = 0; p < n_prompts; p++) {
            for (int k = 0; k < L; k++) ids[k] = token_id(p, k, V);
            sc_llama_reset(m);
            if (sc_llama_forward(m, ids, L, logits, NULL, &e) != SC_OK) goto fail;
        }
        double dt = sc_now() - t0;
        printf("%s\"%d\": %.2f", a > 5 ? ", " : "", L, n_prompts * L / dt);
    }
    sc_llama_reset(m);
    for (int k = 0; k < 16; k++) ids[k] = token_id(0, k, V);
    if (sc_llama_forward(m, ids, 16, logits, NULL, &e) != SC_OK) goto fail;
    double t0 = sc_now();
    for (int s = 0; s < gen; s++) {
        int32_t next = argmax(logits, V);
        if (sc_llama_forward(m, &next, 1, logits, NULL, &e) != SC_OK) goto fail;
    }
    double dt = sc_now() - t0;
    printf("}, \"tg\": %.2f, \"tgb\": {", gen / dt);
    for (int a = n_args + 1; a < argc; a++) {
        int B = atoi(argv[a]);
        if (B < 1 || B > 64) { fprintf(stderr, "bench_llm: bad batch %d\n", B); return 2; }
        sc_llama_kv *kv[64];
        sc_llama_seg seg[64];
        int32_t prompt[64][16], next[64];
        float *lg = sc_malloc((size_t)B * V * sizeof(float));
        for (int p = 0; p < B; p++) {
            if (sc_llama_kv_new(m, 16 + gen + 1, &kv[p], &e) != SC_OK) goto fail;
            kv_bytes_batch += sc_llama_kv_bytes(m, 16 + gen + 1);
            for (int k = 0; k < 16; k++) prompt[p][k] = token_id(p, k, V);
            seg[p] = (sc_llama_seg){kv[p], prompt[p], 16, lg + (size_t)p * V};
        }
        if (sc_llama_forward_batch(m, seg, B, &e) != SC_OK) goto fail;
        t0 = sc_now();
        for (int s = 0; s < gen; s++) {
            for (int p = 0; p < B; p++) {
                next[p] = argmax(lg + (size_t)p * V, V);
                seg[p] = (sc_llama_seg){kv[p], &next[p], 1, lg + (size_t)p * V};
            }
            if (sc_llama_forward_batch(m, seg, B, &e) != SC_OK) goto fail;
        }
        dt = sc_now() - t0;
        printf("%s\"%d\": %.2f", a > n_args + 1 ? ", " : "", B, (double)B * gen / dt);
        for (int p = 0; p < B; p++) sc_llama_kv_free(kv[p]);
        sc_free(lg);
    }
    printf("}, \"kv_bytes\": %zu, \"kv_bytes_batch\": %zu, \"peak_rss_mb\": %.1f}\n", sc_llama_kv_bytes(m, 1024), kv_bytes_batch,
           sc_peak_rss_bytes() / 1048576.0);
    sc_free(logits);
    sc_llama_free(m);
    return 0;
fail:
    fprintf(stderr, "bench_llm: %s\n", e.msg);
    return 1;
}
