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
