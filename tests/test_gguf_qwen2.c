/* lm: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, general.architecture
 * "qwen2") against llama.cpp (fixtures made by
 * tests/fixtures/gguf/gen_llama_fixture.py qwen2 through llama-cpp-python):
 * byte-level BPE token ids identical on > 2,000 strings (the qwen2
 * pre-tokenizer), last-token logits of 50 prompts within tolerance, mean-
 * pooled embeddings, greedy generations; the bfloat16 prompt path against
 * the float one; the configuration, Q/K/V biases,
 * the KV cache path and the ChatML default system prompt. The 1.5B model's
 * logits on 8 prompts when it was fetched (scripts/fetch_gguf.sh
 * qwen2.5-1.5b). Neither model is needed by `make check`: every test skips,
 * saying why, when its file is absent. */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_gguf_util.h"
#include "text/chat.h"

/* Against llama.cpp on an F32 copy of the same weights (F32 KV cache): float
 * summation order only. Against the Q4_K_M file as is, llama.cpp also rounds
 * activations to 8 bits for its products (measured: docs/llm.md). */
#define QWEN_TOL_F32 1e-3f
#define QWEN_TOL_Q 1.0f
#define QWEN15_TOL_F32 1e-3f

/* $SEMCTR_QWEN_GGUF, else the cache (scripts/fetch_gguf.sh qwen2.5-0.5b) */
static const char *qwen_path(void) {
    static char p[4096];
    return ggt_cache_path("SEMCTR_QWEN_GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", p, sizeof p);
}

/* $SEMCTR_QWEN15_GGUF, else the cache (scripts/fetch_gguf.sh qwen2.5-1.5b) */
static const char *qwen15_path(void) {
    static char p[4096];
    return ggt_cache_path("SEMCTR_QWEN15_GGUF", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", p, sizeof p);
}

/* skip the test, saying why, when the model file is not there */
static void need(const char *path, const char *fetch) {
    if (access(path, R_OK) != 0) cr_skip_test("%s absent: run scripts/fetch_gguf.sh %s to test it", path, fetch);
}

static sc_llama *load(const char *path, int ctx) {
    sc_llama *m;
    sc_error e;
    cr_assert_eq(sc_llama_load(&m, path, ctx, &e), SC_OK, "%s", e.msg);
    return m;
}

Test(gguf_qwen2, tokenizer_matches_llama_cpp, .timeout = 120) {
    need(qwen_path(), "qwen2.5-0.5b");
    ggt_tok t = ggt_tok_load(qwen_path());
    cr_assert(t.bpe, "Qwen2's tokenizer.ggml.model is 'gpt2' (byte-level BPE)");
    int n = ggt_check_tokens(t, "tests/fixtures/gguf/qwen2_tokens.txt");
    cr_assert_geq(n, 2000);
    /* the qwen2 pre-tokenizer splits digits one at a time (llama3's takes 3) */
    int32_t *ids;
    int k;
    sc_error e;
    cr_assert_eq(sc_bpe_encode(t.bpe, "x 12345", 7, 0, &ids, &k, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(k, 7, "'x 12345': %d tokens, expected x, space and 5 digits", k);
    sc_free(ids);
    cr_assert_eq(sc_bpe_encode(t.bpe, "<|im_start|>user", 16, 1, &ids, &k, &e), SC_OK);
    cr_assert(k == 2 && ids[0] == sc_bpe_find(t.bpe, "<|im_start|>"), "k=%d", k);
    sc_free(ids);
    cr_assert_eq(sc_bpe_add_bos(t.bpe), 0, "Qwen adds no BOS");
    ggt_tok_free(t);
}

Test(gguf_qwen2, logits_match_llama_cpp_f32, .timeout = 300) {
    need(qwen_path(), "qwen2.5-0.5b");
    sc_llama *m = load(qwen_path(), 256);
    m->qmm_mode = SC_QMM_SGEMM; /* dequantise-then-float: what llama.cpp runs on the F32 copy */
    ggt_check_logits(m, "tests/fixtures/gguf/qwen2_logits_f32.txt", QWEN_TOL_F32, SAN_BUILD ? 2 : 50, 1);
    ggt_check_embed(m, "tests/fixtures/gguf/qwen2_embed.txt", 0.999, SAN_BUILD ? 2 : 100);
    sc_llama_free(m);
}

Test(gguf_qwen2, logits_match_llama_cpp_q4_k_m, .timeout = 300) {
    need(qwen_path(), "qwen2.5-0.5b");
    sc_llama *m = load(qwen_path(), 256);
    ggt_check_logits(m, "tests/fixtures/gguf/qwen2_logits.txt", QWEN_TOL_Q, SAN_BUILD ? 2 : 50, 0);
    ggt_check_embed(m, "tests/fixtures/gguf/qwen2_embed_q.txt", 0.99, SAN_BUILD ? 2 : 100);
    sc_llama_free(m);
}

/* The configuration read from the file; the biases are used (without them
 * the logits move); batched prompt = token by token through the KV cache. */
Test(gguf_qwen2, config_biases_and_kv_cache, .timeout = 240) {
    need(qwen_path(), "qwen2.5-0.5b");
    sc_llama *m = load(qwen_path(), 64);
    const sc_llama_config *c = &m->cfg;
    cr_assert_eq(c->arch, SC_ARCH_QWEN2);
    cr_assert(c->dim == 896 && c->n_layers == 24 && c->n_heads == 14 && c->n_kv_heads == 2 && c->head_dim == 64);
    cr_assert(c->n_vocab == 151936 && c->hidden == 4864 && c->rope_neox && !c->geglu && !c->qk_norm && !c->post_norms);
    cr_assert(c->rope_base == 1000000.0f && fabsf(c->eps - 1e-6f) < 1e-12f && c->swa_window == 0);
    cr_assert_eq(m->w.tied, 0, "this file has its own output.weight");
    for (int l = 0; l < c->n_layers; l++) {
        const sc_llama_layer *y = &m->w.layers[l];
        cr_assert(y->bq && y->bk && y->bv && !y->bo, "layer %d biases", l);
    }
    cr_assert_eq(sc_llama_add_bos(m), 0);
    cr_assert_eq(sc_llama_eos(m), 151645);
    cr_assert(sc_llama_is_eog(m, sc_llama_token_find(m, "<|im_end|>")));
    cr_assert(sc_llama_is_eog(m, sc_llama_token_find(m, "<|endoftext|>")));

    int C = c->dim, T = 8, V = c->n_vocab;
    m->qmm_mode = SC_QMM_SGEMM; /* one path for both: the int path (1 token) adds 8-bit activation noise */
    int32_t toks[8] = {785, 5700, 21331, 15387, 320, 16, 24, 24};
    float *hb = malloc((size_t)T * C * 4), *h1 = malloc((size_t)C * 4);
    sc_error e;
    cr_assert_eq(sc_llama_forward(m, toks, T, NULL, hb, &e), SC_OK, "%s", e.msg);
    sc_llama_reset(m);
    for (int t = 0; t < T; t++) {
        cr_assert_eq(sc_llama_forward(m, toks + t, 1, NULL, h1, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < C; i++)
            cr_assert(fabsf(h1[i] - hb[(size_t)t * C + i]) < 2e-3f * (1 + fabsf(hb[(size_t)t * C + i])),
                      "token %d dim %d: %f vs %f", t, i, h1[i], hb[(size_t)t * C + i]);
    }
    /* the Q/K/V biases matter: dropping them moves the logits far */
    float *with = malloc((size_t)V * 4), *without = malloc((size_t)V * 4);
    sc_llama_reset(m);
    cr_assert_eq(sc_llama_forward(m, toks, T, with, NULL, &e), SC_OK, "%s", e.msg);
    float *saved = m->w.layers[0].bq;
    m->w.layers[0].bq = NULL;
    sc_llama_reset(m);
    cr_assert_eq(sc_llama_forward(m, toks, T, without, NULL, &e), SC_OK, "%s", e.msg);
    m->w.layers[0].bq = saved;
    double d = 0;
    for (int v = 0; v < V; v++) d = fmax(d, fabs(with[v] - without[v]));
    cr_assert_gt(d, 1.0, "one layer's Q bias moved the logits by only %f", d);
    free(hb); free(h1); free(with); free(without);
    sc_llama_free(m);
    /* $SEMCTR_QMM picks the matmul path; an unknown one is an error naming the known */
    setenv("SEMCTR_QMM", "int+bf16", 1);
    m = load(qwen_path(), 64);
    cr_assert_eq(m->qmm_mode, SC_QMM_INT_BF16);
    sc_llama_free(m);
    setenv("SEMCTR_QMM", "fast", 1);
    cr_assert_eq(sc_llama_load(&m, qwen_path(), 64, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "SEMCTR_QMM='fast'") && strstr(e.msg, "int+bf16"), "%s", e.msg);
    unsetenv("SEMCTR_QMM");
}

/* The prompt paths against the exact one (SC_QMM_SGEMM: dequantised weights
 * x float activations, what matches llama.cpp's F32 copy to 2.5e-5): the
 * bfloat16 tiles (rounding weights and activations to 8 significant bits)
 * stay closer to it than 8-bit activations (SC_QMM_INT, llama.cpp's own
 * arithmetic on the quantised file). Prints both; docs/llm.md quotes them. */
Test(gguf_qwen2, prompt_paths_against_float, .timeout = 600) {
    need(qwen_path(), "qwen2.5-0.5b");
    sc_llama *m = load(qwen_path(), 256);
    FILE *f = fopen("tests/fixtures/gguf/qwen2_logits.txt", "r");
    cr_assert(f, "qwen2_logits.txt fixture missing");
    static char line[65536], prompt[32768];
    int V = m->cfg.n_vocab, n = 0, max_prompts = SAN_BUILD ? 2 : 50;
    int modes[3] = {SC_QMM_SGEMM, SC_QMM_INT_BF16, SC_QMM_INT};
    float *lg[3];
    for (int i = 0; i < 3; i++) lg[i] = malloc((size_t)V * 4);
    double worst[3] = {0}, mean[3] = {0};
    sc_error e;
    while (n < max_prompts && fgets(line, sizeof line, f)) {
        if (line[0] != 'P') continue;
        size_t pl = ggt_unhex(line + 2, strcspn(line + 2, "\n"), prompt);
        int32_t *ids;
        int k;
        ggt_prompt_ids(m, prompt, pl, &ids, &k);
        for (int i = 0; i < 3; i++) {
            m->qmm_mode = modes[i];
            sc_llama_reset(m);
            cr_assert_eq(sc_llama_forward(m, ids, k, lg[i], NULL, &e), SC_OK, "%s", e.msg);
        }
        sc_free(ids);
        for (int i = 1; i < 3; i++)
            for (int v = 0; v < V; v++) {
                double d = fabs(lg[i][v] - lg[0][v]);
                worst[i] = fmax(worst[i], d);
                mean[i] += d / V;
            }
        n++;
    }
    fclose(f);
    fprintf(stderr, "qwen2 prompt logits vs the float path, %d prompts: bfloat16 tiles max %.3f mean %.4f; "
            "8-bit activations max %.3f mean %.4f\n", n, worst[1], mean[1] / n, worst[2], mean[2] / n);
    cr_assert_lt(worst[1], 0.5, "bfloat16 tiles moved a logit by %f", worst[1]);
    cr_assert_lt(mean[1], mean[2], "bfloat16 tiles (mean %f) farther from exact than 8-bit activations (%f)", mean[1] / n,
                 mean[2] / n);
    for (int i = 0; i < 3; i++) free(lg[i]);
    sc_llama_free(m);
}

/* Qwen's ChatML template writes its own system prompt when none is given. */
Test(gguf_qwen2, chat_template_default_system, .timeout = 60) {
    need(qwen_path(), "qwen2.5-0.5b");
    char *tmpl, *out;
    sc_error e;
    cr_assert_eq(sc_chat_template_from_gguf(qwen_path(), &tmpl, &e), SC_OK, "%s", e.msg);
    cr_assert(tmpl);
    cr_assert_eq(sc_chat_format(tmpl, NULL, "Who directed Jaws (1975)?", &out, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                          "<|im_start|>user\nWho directed Jaws (1975)?<|im_end|>\n<|im_start|>assistant\n");
    sc_free(out);
    cr_assert_eq(sc_chat_format(tmpl, "Be brief.", "Hi", &out, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    sc_free(out);
    sc_free(tmpl);
}

/* Greedy generations against llama.cpp's on the quantised file. One token
 * and a prompt take different arithmetic in each (8-bit activations vs
 * float tiles here; llama.cpp's own kernels there), so a near-tie may go
 * the other way and the texts part from there: most, not all, are
 * identical, and where one parts, the token llama.cpp chose must score
 * within QWEN_TOL_Q of semctr's choice at that step (a near-tie, not a
 * wrong model). $SEMCTR_QWEN_GEN_PROMPTS sets how many of the 50 to run
 * (default 8; docs/llm.md reports all 50). */
Test(gguf_qwen2, greedy_generation_matches_llama_cpp, .timeout = 900) {
    need(qwen_path(), "qwen2.5-0.5b");
    const char *env = getenv("SEMCTR_QWEN_GEN_PROMPTS");
    int max_prompts = env && atoi(env) > 0 ? atoi(env) : SAN_BUILD ? 2 : 8;
    sc_llama *m = load(qwen_path(), 512);
    FILE *f = fopen("tests/fixtures/gguf/qwen2_gen.txt", "r");
    cr_assert(f, "qwen2_gen.txt fixture missing");
    static char line[65536], prompt[32768];
    float *lg = malloc((size_t)m->cfg.n_vocab * sizeof(float));
    int n = 0, same = 0, steps_same = 0, steps_want = 0;
    float widest = 0; /* the largest logit gap where a text parted */
    sc_error e;
    while (n < max_prompts && fgets(line, sizeof line, f)) {
        cr_assert_eq(line[0], 'P');
        ggt_unhex(line + 2, strcspn(line + 2, "\n"), prompt);
        cr_assert(fgets(line, sizeof line, f) && line[0] == 'G', "qwen2_gen.txt: G line missing");
        int32_t want[64];
        int nw = 0;
        for (char *p = strchr(line, '\t') + 1, *end; nw < 64; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[nw++] = (int32_t)v;
        }
        /* greedy as sc_generate does it: argmax (lowest id on ties) until an
         * end-of-generation token or 32 tokens */
        int32_t *ids, got[32];
        int np, ng = 0, parted = -1;
        cr_assert_eq(sc_llama_tokenize(m, prompt, strlen(prompt), 1, &ids, &np, &e), SC_OK, "%s", e.msg);
        sc_llama_reset(m);
        cr_assert_eq(sc_llama_forward(m, ids, np, lg, NULL, &e), SC_OK, "%s", e.msg);
        sc_free(ids);
        while (ng < 32) {
            int best = 0;
            for (int v = 1; v < m->cfg.n_vocab; v++)
                if (lg[v] > lg[best]) best = v;
            /* past llama.cpp's last token it chose an end of turn */
            int agree = ng < nw ? best == want[ng] : sc_llama_is_eog(m, best);
            if (parted < 0 && !agree) {
                parted = ng;
                int32_t theirs = ng < nw ? want[ng] : sc_llama_eos(m);
                cr_assert_leq(lg[best] - lg[theirs], QWEN_TOL_Q,
                              "prompt %d step %d: llama.cpp's token %d scores %f here, %f below semctr's %d", n, ng, theirs,
                              lg[theirs], lg[best] - lg[theirs], best);
                widest = fmaxf(widest, lg[best] - lg[theirs]);
            }
            if (sc_llama_is_eog(m, best)) break;
            got[ng++] = best;
            if (ng < 32) cr_assert_eq(sc_llama_forward(m, &got[ng - 1], 1, lg, NULL, &e), SC_OK, "%s", e.msg);
        }
        if (parted < 0) same++;
        else fprintf(stderr, "qwen2_gen.txt prompt %d: parts from llama.cpp's at token %d of %d\n", n, parted, nw);
        steps_same += parted < 0 ? nw : parted;
        steps_want += nw;
        n++;
    }
    fclose(f);
    free(lg);
    fprintf(stderr,
            "qwen2_gen.txt: %d of %d greedy generations identical to llama.cpp's; %d of %d tokens before they part; "
            "where one parts, llama.cpp's token is at most %.3f below semctr's choice\n",
            same, n, steps_same, steps_want, widest);
    cr_assert_eq(n, max_prompts < 50 ? max_prompts : 50);
    cr_assert_gt(2 * same, n, "only %d of %d generations identical to llama.cpp's", same, n);
    sc_llama_free(m);
}

/* The 1.5B model: its logits and embeddings against llama.cpp on an F32
 * copy (8 prompts, 8 texts), and the CLI answering a question with it. */
Test(gguf_qwen2, qwen15_logits_and_cli, .timeout = 600) {
    need(qwen15_path(), "qwen2.5-1.5b");
    sc_llama *m = load(qwen15_path(), 256);
    cr_assert(m->cfg.dim == 1536 && m->cfg.n_layers == 28 && m->cfg.n_heads == 12 && m->cfg.n_kv_heads == 2);
    m->qmm_mode = SC_QMM_SGEMM;
    ggt_check_logits(m, "tests/fixtures/gguf/qwen2_15b_logits_f32.txt", QWEN15_TOL_F32, SAN_BUILD ? 1 : 8, 1);
    ggt_check_embed(m, "tests/fixtures/gguf/qwen2_15b_embed.txt", 0.999, SAN_BUILD ? 1 : 8);
    sc_llama_free(m);
    if (SAN_BUILD) return; /* the CLI run is slow under the sanitizers */
    static char out[1 << 16], args[8192];
    snprintf(args, sizeof args, "generate --model '%s' --prompt 'Who directed Jaws (1975)?' --max-tokens 24", qwen15_path());
    cr_assert_eq(ggt_run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "Spielberg"), "generated '%s'", out);
}
