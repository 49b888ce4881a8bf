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
 * Prints one JSON object.
 *
 *   build/bench_llm --peak
 * prints one core's peak multiply-add rates (the roofline in docs/llm.md):
 * 12 independent accumulators of vpdpbusd (64 int8 products per zmm),
 * vdpbf16ps (32 bf16) and vfmadd231ps (16 float), best of 5 loops of 2e7. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/llama.h"

static int32_t token_id(int p, int k, int V) { return (int32_t)(100 + ((int64_t)1000 + 7919LL * (k + 1) * (p + 3)) % (V - 1100)); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PEAK __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
/* kind 0: vpdpbusd, 1: vdpbf16ps, 2: vfmadd231ps; multiply-adds per second */
static PEAK double peak_rate(int kind, long n) {
    __m512i x = _mm512_set1_epi8(3);
    double t0 = sc_now();
    if (kind == 0) {
#define DI(i) __m512i a##i = _mm512_set1_epi32(i);
#define OI(i) a##i = _mm512_dpbusd_epi32(a##i, x, x);
#define SI(i) s = _mm512_add_epi32(s, a##i);
        R12(DI)
        for (long k = 0; k < n; k++) {
            R12(OI)
            __asm__ volatile("" : "+v"(x));
        }
        __m512i s = _mm512_setzero_si512();
        R12(SI)
        volatile int sink = _mm512_reduce_add_epi32(s);
        (void)sink;
    } else {
#define DF(i) __m512 f##i = _mm512_set1_ps(i);
#define OB(i) f##i = _mm512_dpbf16_ps(f##i, (__m512bh)x, (__m512bh)x);
#define OF(i) f##i = _mm512_fmadd_ps(f##i, _mm512_castsi512_ps(x), _mm512_castsi512_ps(x));
#define SF(i) s = _mm512_add_ps(s, f##i);
        R12(DF)
        for (long k = 0; k < n; k++) {
            if (kind == 1) { R12(OB) }
            else { R12(OF) }
            __asm__ volatile("" : "+v"(x));
        }
        __m512 s = _mm512_setzero_ps();
        R12(SF)
        volatile float sink = _mm512_reduce_add_ps(s);
        (void)sink;
    }
    return (double)n * 12 * (kind == 0 ? 64 : kind == 1 ? 32 : 16) / (sc_now() - t0);
}
#endif

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--peak")) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bf16")) {
            fprintf(stderr, "bench_llm: --peak needs AVX512_VNNI and AVX512_BF16\n");
            return 2;
        }
        double best[3] = {0};
        for (int r = 0; r < 5; r++)
            for (int k = 0; k < 3; k++) {
                double v = peak_rate(k, 20000000);
                if (v > best[k]) best[k] = v;
            }
        printf("{\"int8_vpdpbusd_gmac_s\": %.1f, \"bf16_vdpbf16ps_gmac_s\": %.1f, \"f32_fma_gmac_s\": %.1f}\n", best[0] / 1e9,
               best[1] / 1e9, best[2] / 1e9);
        return 0;
#else
        fprintf(stderr, "bench_llm: --peak is for x86-64\n");
        return 2;
#endif
    }
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
