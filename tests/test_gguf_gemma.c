/* lm: Gemma 3 270M (Q4_K_M GGUF, general.architecture "gemma3") against
 * llama.cpp (fixtures made by tests/fixtures/gguf/gen_llama_fixture.py gemma3
 * through llama-cpp-python): SentencePiece token ids identical on >1,000
 * strings, last-token logits of 50 prompts within tolerance with the same
 * argmax, mean-pooled embeddings at cosine >= 0.999; the KV cache path
 * equals the batched one; sliding-window layers and generation behave. */
#include <criterion/criterion.h>
#include <sys/wait.h>

#include "test_gguf_util.h"

/* Against llama.cpp running an F32 copy of the same weights (F32 KV cache):
 * what is left is float summation order and ggml's GELU, which looks x up in
 * a table of f16 values (measured max |diff|: see docs/llm.md). Against the
 * Q4_K_M file as is, llama.cpp also rounds activations to 8 bits for its
 * quantised dot products. */
#define GEMMA_TOL_F32 0.03f
#define GEMMA_TOL_Q 2.0f

static sc_llama *load(int ctx) {
    sc_llama *m;
    sc_error e;
    cr_assert_eq(sc_llama_load(&m, ggt_gemma_path(), ctx, &e), SC_OK, "%s", e.msg);
    return m;
}

Test(gguf_gemma, tokenizer_matches_llama_cpp, .timeout = 120) {
    ggt_tok t = ggt_tok_load(ggt_gemma_path());
    cr_assert(t.spm, "Gemma's tokenizer.ggml.model is 'llama' (SentencePiece)");
    int n = ggt_check_tokens(t, "tests/fixtures/gguf/gemma_tokens.txt");
    cr_assert_geq(n, 1000);
    /* special tokens: control ones parsed only when asked, user-defined always */
    int32_t *ids;
    int k;
    sc_error e;
    cr_assert_eq(sc_spm_encode(t.spm, "<start_of_turn>user", 19, 1, &ids, &k, &e), SC_OK);
    cr_assert(k == 2 && ids[0] == sc_spm_find(t.spm, "<start_of_turn>"), "k=%d", k);
    sc_free(ids);
    cr_assert_eq(sc_spm_encode(t.spm, "<start_of_turn>user", 19, 0, &ids, &k, &e), SC_OK);
    cr_assert_gt(k, 2);
    sc_free(ids);
    cr_assert_eq(sc_spm_encode(t.spm, "a<table>b", 9, 0, &ids, &k, &e), SC_OK);
    cr_assert(k == 3 && ids[1] == sc_spm_find(t.spm, "<table>"), "k=%d", k);
    sc_free(ids);
    /* a lone 0xff byte reads as U+FFFD (text/tokutil.h), not as <0xFF> */
    cr_assert_eq(sc_spm_encode(t.spm, "\xff", 1, 0, &ids, &k, &e), SC_OK);
    int32_t *fffd;
    int kf;
    cr_assert_eq(sc_spm_encode(t.spm, "\xEF\xBF\xBD", 3, 0, &fffd, &kf, &e), SC_OK);
    cr_assert(k == kf && !memcmp(ids, fffd, (size_t)k * sizeof *ids));
    sc_free(fffd);
    sc_free(ids);
    /* a byte token decodes to its byte */
    char b[8];
    cr_assert(sc_spm_piece(t.spm, sc_spm_find(t.spm, "<0xFF>"), b, sizeof b) == 1 && (unsigned char)b[0] == 0xff);
    cr_assert_eq(sc_spm_add_bos(t.spm), 1);
    cr_assert_eq(sc_spm_piece(t.spm, sc_spm_bos(t.spm), b, sizeof b), 0);
    cr_assert_eq(sc_spm_piece(t.spm, 1 << 30, b, sizeof b), -1);
    ggt_tok_free(t);
}

Test(gguf_gemma, logits_match_llama_cpp_f32, .timeout = 240) {
    sc_llama *m = load(256);
    m->qmm_mode = SC_QMM_SGEMM; /* dequantise-then-float: what llama.cpp runs on the F32 copy */
    ggt_check_logits(m, "tests/fixtures/gguf/gemma_logits_f32.txt", GEMMA_TOL_F32, SAN_BUILD ? 2 : 50, 1);
    ggt_check_embed(m, "tests/fixtures/gguf/gemma_embed.txt", 0.999, SAN_BUILD ? 2 : 100);
    sc_llama_free(m);
}

Test(gguf_gemma, logits_match_llama_cpp_q4_k_m, .timeout = 240) {
    sc_llama *m = load(256);
    ggt_check_logits(m, "tests/fixtures/gguf/gemma_logits.txt", GEMMA_TOL_Q, SAN_BUILD ? 2 : 50, 0);
    /* llama.cpp on the quantised file rounds activations to 8 bits: looser */
    ggt_check_embed(m, "tests/fixtures/gguf/gemma_embed_q.txt", 0.99, SAN_BUILD ? 2 : 100);
    sc_llama_free(m);
}

/* The configuration read from the file; batched prompt = token by token
 * through the KV cache, also past the sliding window (a tiny window makes
 * local layers drop early keys). */
Test(gguf_gemma, config_kv_cache_and_sliding_window, .timeout = 240) {
    sc_llama *m = load(64);

    const sc_llama_config *c = &m->cfg;
    cr_assert_eq(c->arch, SC_ARCH_GEMMA3);
    cr_assert(c->dim == 640 && c->n_layers == 18 && c->n_heads == 4 && c->n_kv_heads == 1 && c->head_dim == 256);
    cr_assert(c->n_vocab == 262144 && c->hidden == 2048 && c->swa_window == 512 && c->rope_neox && c->geglu);
    cr_assert(c->rope_base == 1000000.0f && c->rope_base_local == 10000.0f);
    /* every 6th layer global (llama.cpp's default pattern for Gemma 3) */
    for (int l = 0; l < c->n_layers; l++) cr_assert_eq(m->w.layers[l].local, l % 6 != 5, "layer %d", l);
    cr_assert(fabsf(c->embd_scale - sqrtf(640.0f)) < 1e-5f && fabsf(c->attn_scale - 1.0f / 16) < 1e-7f);
    cr_assert_eq(sc_llama_add_bos(m), 1);
    cr_assert_eq(sc_llama_bos(m), 2);
    cr_assert_eq(sc_llama_eos(m), 1);
    cr_assert(sc_llama_is_eog(m, sc_llama_token_find(m, "<end_of_turn>")));
    char b[32];
    int n = sc_llama_token_piece(m, sc_llama_token_find(m, "▁Paris"), b, sizeof b);
    cr_assert(n == 6 && !memcmp(b, " Paris", 6));
        int C = m->cfg.dim, T = 8;
    m->cfg.swa_window = 3;
    m->qmm_mode = SC_QMM_SGEMM; /* one path for both: the int path (1 token) adds 8-bit activation noise */
    int32_t toks[8] = {2, 818, 5279, 529, 7001, 563, 9079, 236761};
    float *hb = malloc((size_t)T * C * 4), *h1 = malloc((size_t)C * 4), *full = malloc((size_t)T * C * 4);
    sc_error e;
    cr_assert_eq(sc_llama_forward(m, toks, T, NULL, hb, &e), SC_OK, "%s", e.msg);
    sc_llama_reset(m);
    for (int t = 0; t < T; t++) {
        cr_assert_eq(sc_llama_forward(m, toks + t, 1, NULL, h1, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < C; i++)
            cr_assert(fabsf(h1[i] - hb[(size_t)t * C + i]) < 2e-3f * (1 + fabsf(hb[(size_t)t * C + i])),
                      "token %d dim %d: %f vs %f", t, i, h1[i], hb[(size_t)t * C + i]);
    }
    /* the window matters: with it wide open the last positions change */
    m->cfg.swa_window = 512;
    sc_llama_reset(m);
    cr_assert_eq(sc_llama_forward(m, toks, T, NULL, full, &e), SC_OK, "%s", e.msg);
    double d_first = 0, d_last = 0;
    for (int i = 0; i < C; i++) {
        d_first += fabs(full[i] - hb[i]) + fabs(full[2 * C + i] - hb[2 * C + i]);
        d_last += fabs(full[(size_t)(T - 1) * C + i] - hb[(size_t)(T - 1) * C + i]);
    }
    cr_assert_lt(d_first, 1e-2, "positions inside the window must not change");
    cr_assert_gt(d_last, 1.0, "positions past the window must change");
    free(hb); free(h1); free(full);
    sc_llama_free(m);
}

/* sc_llama_generate / sc_llama_embed, and `semctr generate|embed --model
 * gemma.gguf` giving the same. */
Test(gguf_gemma, generate_and_embed_library_and_cli, .timeout = 300) {
    sc_llama *m = load(128);
    sc_error e;
    char *gen;
    cr_assert_eq(sc_llama_generate(m, "Paris is the capital of", 3, &gen, &e), SC_OK, "%s", e.msg);
    cr_assert(strstr(gen, "France"), "generated '%s'", gen);
    int C = m->cfg.dim;
    float *a = malloc((size_t)C * 4), *b = malloc((size_t)C * 4), *c = malloc((size_t)C * 4);
    cr_assert_eq(sc_llama_embed(m, "A funny animated movie about toys", a, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_llama_embed(m, "An animated comedy film about toys", b, &e), SC_OK);
    cr_assert_eq(sc_llama_embed(m, "Quarterly tax filing deadlines", c, &e), SC_OK);
    double ab = 0, ac = 0, na = 0, nb = 0, nc = 0;
    for (int i = 0; i < C; i++) {
        ab += a[i] * b[i]; ac += a[i] * c[i]; na += a[i] * a[i]; nb += b[i] * b[i]; nc += c[i] * c[i];
    }
    cr_assert_gt(ab / sqrt(na * nb), ac / sqrt(na * nc));
    static char out[1 << 16], args[8192];
    snprintf(args, sizeof args, "generate --raw --model '%s' --prompt 'Paris is the capital of' --max-tokens 3", ggt_gemma_path());
    cr_assert_eq(ggt_run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, gen), "CLI '%s' vs library '%s'", out, gen);
    snprintf(args, sizeof args, "embed --model '%s' --text 'A funny animated movie about toys'", ggt_gemma_path());
    cr_assert_eq(ggt_run_cli(args, out, sizeof out), 0, "%s", out);
    int k = 0;
    for (char *p = out, *end; k < C; p = end, k++) { /* the CLI prints the L2-normalised vector */
        float got = strtof(p, &end);
        cr_assert(end != p, "only %d numbers: %.200s", k, out);
        cr_assert(fabsf(got - a[k] / (float)sqrt(na)) < 1e-5f, "dim %d: %f vs %f", k, got, a[k] / sqrt(na));
    }
    sc_free(gen);
    free(a); free(b); free(c);
    sc_llama_free(m);
}

/* The prompt paths and the F16 KV cache against the exact path
 * (SC_QMM_SGEMM, F32 cache: dequantised weights x float activations, what
 * matches llama.cpp's F32 copy to 0.009), all 262,144 logits of the fixture
 * prompts: the 8-bit integer tiles (SC_QMM_INT_VNNI, llama.cpp's
 * arithmetic for Q8_0/Q5_0 weights) stay as close as the per-row integer
 * dot products (SC_QMM_INT) that compute the same sums; the F16 cache moves
 * the logits by its rounding only. A wrong tile kernel (an offset, a scale,
 * a block dropped) moves them by far more. Prints every distance;
 * docs/llm.md quotes them. */
Test(gguf_gemma, prompt_paths_and_f16_kv_against_float, .timeout = 600) {
    sc_llama *m = load(256);
    FILE *f = fopen("tests/fixtures/gguf/gemma_logits.txt", "r");
    cr_assert(f, "gemma_logits.txt fixture missing");
    static char line[65536], prompt[32768];
    enum { NV = 6 };
    const char *names[NV] = {"float (reference)", "bfloat16 tiles", "8-bit integer tiles", "8-bit per-row dots",
                             "float, F16 KV cache", "8-bit integer tiles, F16 KV cache"};
    int modes[NV] = {SC_QMM_SGEMM, SC_QMM_INT_BF16, SC_QMM_INT_VNNI, SC_QMM_INT, SC_QMM_SGEMM, SC_QMM_INT_VNNI};
    int kvs[NV] = {SC_KV_F32, SC_KV_F32, SC_KV_F32, SC_KV_F32, SC_KV_F16, SC_KV_F16};
    int V = m->cfg.n_vocab, n = 0, max_prompts = SAN_BUILD ? 2 : 50, same_argmax[NV] = {0};
    float *lg[NV];
    for (int i = 0; i < NV; i++) lg[i] = malloc((size_t)V * 4);
    double worst[NV] = {0}, mean[NV] = {0};
    sc_error e;
    while (n < max_prompts && fgets(line, sizeof line, f)) {
        if (line[0] != 'P') continue;
        size_t pl = ggt_unhex(line + 2, strcspn(line + 2, "\n"), prompt);
        int32_t *ids;
        int k;
        ggt_prompt_ids(m, prompt, pl, &ids, &k);
        for (int i = 0; i < NV; i++) {
            m->qmm_mode = modes[i];
            if (m->kv_type != kvs[i]) cr_assert_eq(sc_llama_set_kv_type(m, kvs[i], &e), SC_OK, "%s", e.msg);
            sc_llama_reset(m);
            cr_assert_eq(sc_llama_forward(m, ids, k, lg[i], NULL, &e), SC_OK, "%s", e.msg);
        }
        sc_free(ids);
        int best0 = 0;
        for (int v = 1; v < V; v++) best0 = lg[0][v] > lg[0][best0] ? v : best0;
        for (int i = 1; i < NV; i++) {
            int best = 0;
            for (int v = 0; v < V; v++) {
                double d = fabs(lg[i][v] - lg[0][v]);
                worst[i] = fmax(worst[i], d);
                mean[i] += d / V;
                best = lg[i][v] > lg[i][best] ? v : best;
            }
            same_argmax[i] += best == best0;
        }
        n++;
    }
    fclose(f);
    for (int i = 1; i < NV; i++)
        fprintf(stderr, "gemma prompt logits vs the float path, %d prompts: %s max %.3f mean %.4f, same argmax %d\n", n,
                names[i], worst[i], mean[i] / n, same_argmax[i]);
    /* the tiles: as near as the per-row dots of the same 8-bit activations */
    cr_assert_lt(worst[2], 1.0, "8-bit integer tiles moved a logit by %f", worst[2]);
    cr_assert_lt(mean[2], 1.5 * mean[3], "8-bit integer tiles (mean %f) farther than the per-row dots (%f)", mean[2] / n,
                 mean[3] / n);
    /* the F16 cache alone: a small fraction of 8-bit activations' effect */
    cr_assert_lt(worst[4], 0.25, "the F16 KV cache moved a logit by %f", worst[4]);
    cr_assert_lt(mean[4], 0.5 * mean[3], "the F16 KV cache (mean %f) vs 8-bit activations (%f)", mean[4] / n, mean[3] / n);
    cr_assert_lt(worst[5], 1.0, "integer tiles + F16 KV cache moved a logit by %f", worst[5]);
    for (int i = 0; i < NV; i++) free(lg[i]);
    sc_llama_free(m);
}

/* With an F16 cache, a batched prompt == the same tokens one by one through
 * the cache (both read the rounded keys and values); the cache takes half
 * the bytes; switching the type empties the model's own cache; the CLI's
 * --kv-cache. */
Test(gguf_gemma, f16_kv_cache_batch_equals_steps, .timeout = 240) {
    sc_llama *m = load(64);
    sc_error e;
    size_t b32 = sc_llama_kv_bytes(m, 64);
    cr_assert_eq(b32, (size_t)2 * 18 * 64 * 256 * 4);
    cr_assert_eq(sc_llama_set_kv_type(m, 7, &e), SC_EINVAL);
    int32_t toks[8] = {2, 818, 5279, 529, 7001, 563, 9079, 236761};
    cr_assert_eq(sc_llama_forward(m, toks, 3, NULL, NULL, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_llama_set_kv_type(m, SC_KV_F16, &e), SC_OK, "%s", e.msg);
    cr_assert(m->kv.n_past == 0 && m->kv.type == SC_KV_F16 && m->kv.kh && !m->kv.k && m->kv.max_ctx == 64);
    cr_assert_eq(sc_llama_kv_bytes(m, 64), b32 / 2);
    cr_assert_eq(sc_llama_kv_type_parse("f16"), SC_KV_F16);
    cr_assert_eq(sc_llama_kv_type_parse("f32"), SC_KV_F32);
    cr_assert_eq(sc_llama_kv_type_parse("q8_0"), -1);
    int C = m->cfg.dim, T = 8;
    m->qmm_mode = SC_QMM_SGEMM; /* one path for both */
    float *hb = malloc((size_t)T * C * 4), *h1 = malloc((size_t)C * 4);
    cr_assert_eq(sc_llama_forward(m, toks, T, NULL, hb, &e), SC_OK, "%s", e.msg);
    sc_llama_reset(m);
    for (int t = 0; t < T; t++) {
        cr_assert_eq(sc_llama_forward(m, toks + t, 1, NULL, h1, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < C; i++)
            cr_assert(fabsf(h1[i] - hb[(size_t)t * C + i]) < 2e-3f * (1 + fabsf(hb[(size_t)t * C + i])),
                      "token %d dim %d: %f vs %f", t, i, h1[i], hb[(size_t)t * C + i]);
    }
    /* a second sequence's cache takes the model's type */
    sc_llama_kv *kv;
    cr_assert_eq(sc_llama_kv_new(m, 16, &kv, &e), SC_OK, "%s", e.msg);
    cr_assert(kv->type == SC_KV_F16 && kv->kh && kv->vh && !kv->v);
    sc_llama_kv_free(kv);
    /* semctr generate --kv-cache f16; an unknown type is a usage error */
    static char out[1 << 16], args[8192];
    snprintf(args, sizeof args, "generate --raw --model '%s' --prompt 'Paris is the capital of' --max-tokens 3 --kv-cache f16",
             ggt_gemma_path());
    cr_assert_eq(ggt_run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "France"), "%s", out);
    snprintf(args, sizeof args, "generate --raw --model '%s' --prompt 'Paris' --kv-cache q8_0", ggt_gemma_path());
    cr_assert_eq(ggt_run_cli(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--kv-cache 'q8_0': use f32 or f16"), "%s", out);
    free(hb); free(h1);
    sc_llama_free(m);
}
