/* lm/generate + text/chat: sampling (greedy, seeded temperature/top-k/top-p),
 * stop strings across token boundaries and while streaming, chat templates
 * of the three families against the exact strings their Jinja templates
 * give, and semctr generate's flags. The model is the fetched SmolLM2. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "lm/generate.h"
#include "test_gguf_util.h"
#include "text/chat.h"

static sc_llama *load(void) {
    sc_llama *m;
    sc_error e;
    cr_assert_eq(sc_llama_load(&m, ggt_model_path(), 512, &e), SC_OK, "%s", e.msg);
    return m;
}

static const char *Q = "<|im_start|>user\nWrite one sentence about the sea.<|im_end|>\n<|im_start|>assistant\n";

static char *gen(sc_llama *m, const char *prompt, const sc_gen_params *p, int *end) {
    sc_gen_result r;
    sc_error e;
    cr_assert_eq(sc_generate(m, prompt, p, NULL, NULL, &r, &e), SC_OK, "%s", e.msg);
    if (end) *end = r.end;
    return r.text;
}

/* ---- sampler on synthetic logits (no model) ---- */

Test(lm_generate, sampler_rules) {
    enum { V = 6 };
    int32_t order[V];
    sc_rng rng;
    sc_rng_seed(&rng, 7);
    sc_gen_params p;
    sc_gen_params_default(&p);
    float l[V] = {0.1f, 2.0f, -1.0f, 2.0f, 1.5f, 0.0f};
    float c[V];
    memcpy(c, l, sizeof l);
    cr_assert_eq(sc_sample_token(c, V, &p, &rng, order), 1, "greedy: lowest id among equal maxima");
    p.temperature = 1.0f;
    p.top_k = 1;
    memcpy(c, l, sizeof l);
    cr_assert_eq(sc_sample_token(c, V, &p, &rng, order), 1, "top-k 1 is greedy");
    p.top_k = 0;
    p.top_p = 0.01f;
    memcpy(c, l, sizeof l);
    cr_assert_eq(sc_sample_token(c, V, &p, &rng, order), 1, "tiny top-p keeps the best only");
    /* frequencies follow softmax(l / T): two tokens with odds 3:1 */
    p.top_p = 1.0f;
    int hits = 0, n = 4000;
    for (int i = 0; i < n; i++) {
        float two[2] = {0.0f, logf(3.0f)};
        hits += sc_sample_token(two, 2, &p, &rng, order) == 1;
    }
    cr_assert(fabs(hits / (double)n - 0.75) < 0.03, "P(1) = %f, expected 0.75", hits / (double)n);
    /* top-k 2 of {2, 2, 1.5, ...}: only ids 1 and 3 ever come out */
    p.top_k = 2;
    for (int i = 0; i < 500; i++) {
        memcpy(c, l, sizeof l);
        int32_t t = sc_sample_token(c, V, &p, &rng, order);
        cr_assert(t == 1 || t == 3, "top-k 2 sampled %d", t);
    }
}

Test(lm_generate, stop_helpers) {
    const char *stops[] = {"END", "\n\n"};
    cr_assert_eq(sc_stop_holdback("abcE", 4, stops, 2), 1);
    cr_assert_eq(sc_stop_holdback("abcEN", 5, stops, 2), 2);
    cr_assert_eq(sc_stop_holdback("abc\n", 4, stops, 2), 1);
    cr_assert_eq(sc_stop_holdback("abc", 3, stops, 2), 0);
    cr_assert_eq(sc_stop_find("xxENDyy\n\n", 9, 0, stops, 2), 2);
    cr_assert_eq(sc_stop_find("xxENyy\n\nEND", 11, 0, stops, 2), 6);
    cr_assert_eq(sc_stop_find("xxENDyy", 7, 3, stops, 2), -1);
    sc_gen_params p;
    sc_gen_params_default(&p);
    sc_error e;
    p.top_p = 0;
    cr_assert_eq(sc_gen_params_check(&p, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "top_p"), "%s", e.msg);
    sc_gen_params_default(&p);
    p.stops[0] = "";
    p.n_stops = 1;
    cr_assert_eq(sc_gen_params_check(&p, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "stop"), "%s", e.msg);
}

/* ---- with the model ---- */

Test(lm_generate, greedy_seeds_and_stops, .timeout = 240) {
    sc_llama *m = load();
    sc_gen_params p;
    sc_gen_params_default(&p);
    p.max_tokens = 16;
    /* temperature 0 is the greedy path sc_llama_generate always took */
    char *g = gen(m, Q, &p, NULL), *old;
    sc_error e;
    cr_assert_eq(sc_llama_generate(m, Q, 16, &old, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(g, old);
    cr_assert(strlen(g) > 10, "'%s'", g);
    sc_free(old);
    /* T = 1: the same seed gives the same text; different seeds differ */
    p.temperature = 1.0f;
    p.seed = 42;
    char *a = gen(m, Q, &p, NULL), *b = gen(m, Q, &p, NULL);
    cr_assert_str_eq(a, b, "same seed, different text");
    int differ = 0;
    for (uint64_t s = 1; s <= 3; s++) {
        p.seed = s;
        char *c = gen(m, Q, &p, NULL);
        differ += strcmp(a, c) != 0;
        sc_free(c);
    }
    cr_assert_gt(differ, 1, "seeds 1..3 gave the text of seed 42 %d times", 3 - differ);
    sc_free(a);
    sc_free(b);
    /* a stop string spanning a token boundary: the text after 4 tokens ends
     * inside the greedy text; take 2 bytes on each side of that point */
    p.temperature = 0;
    p.max_tokens = 4;
    char *p4 = gen(m, Q, &p, NULL);
    size_t cut = strlen(p4);
    cr_assert(cut >= 2 && strlen(g) >= cut + 2 && !strncmp(g, p4, cut), "'%s' vs '%s'", p4, g);
    char stop[5];
    memcpy(stop, g + cut - 2, 4);
    stop[4] = 0;
    p.max_tokens = 16;
    p.stops[0] = stop;
    p.n_stops = 1;
    int end;
    char *s = gen(m, Q, &p, &end);
    size_t expect = (size_t)(strstr(g, stop) - g);
    cr_assert_eq(end, SC_GEN_END_STOP);
    cr_assert_eq(strlen(s), expect, "stop '%s': got '%s' from '%s'", stop, s, g);
    cr_assert(!strncmp(s, g, expect));
    sc_free(s);
    sc_free(p4);
    sc_free(g);
    sc_llama_free(m);
}

/* the prompt cache changes the cost, never the text */
Test(lm_generate, prompt_cache_same_text, .timeout = 180) {
    sc_llama *m = load();
    sc_gen_params p;
    sc_gen_params_default(&p);
    p.max_tokens = 6;
    p.temperature = 0.8f;
    p.seed = 9;
    const char *prompts[] = {Q, "<|im_start|>user\nWrite one sentence about the sky.<|im_end|>\n<|im_start|>assistant\n",
                             "<|im_start|>user\nWrite one sentence about the sky.<|im_end|>\n<|im_start|>assistant\nThe"};
    char *plain[3];
    for (int i = 0; i < 3; i++) plain[i] = gen(m, prompts[i], &p, NULL);
    /* from here on only the cache's owner runs the model (the contract) */
    sc_gen_cache c = {0};
    for (int i = 0; i < 3; i++) {
        sc_gen_result r;
        sc_error e;
        /* twice through the cache: cold or partly shared, then warm */
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(sc_generate_cached(m, &c, prompts[i], &p, NULL, NULL, &r, &e), SC_OK, "%s", e.msg);
            cr_assert_str_eq(r.text, plain[i], "prompt %d pass %d", i, k);
            cr_assert_gt(c.n, 0);
            sc_gen_result_free(&r);
        }
        sc_free(plain[i]);
    }
    sc_gen_cache_free(&c);
    sc_llama_free(m);
}

/* generations run together give each the text it gets alone, with prompt
 * caches, stops, greedy and sampled, different lengths */
Test(lm_generate, batch_same_text_as_alone, .timeout = 240) {
    sc_llama *m = load();
    enum { J = 4 };
    const char *prompts[J] = {Q, "<|im_start|>user\nWrite one sentence about the sky.<|im_end|>\n<|im_start|>assistant\n",
                              "<|im_start|>user\nName three fruits.<|im_end|>\n<|im_start|>assistant\n", "Once upon a time"};
    sc_gen_params p[J];
    for (int i = 0; i < J; i++) {
        sc_gen_params_default(&p[i]);
        p[i].max_tokens = 4 + 3 * i;
        p[i].temperature = i % 2 ? 0.8f : 0.0f;
        p[i].seed = 11 + (uint64_t)i;
    }
    p[2].stops[0] = ",";
    p[2].n_stops = 1;
    char *alone[J];
    for (int i = 0; i < J; i++) alone[i] = gen(m, prompts[i], &p[i], NULL);
    sc_llama_kv *kv[J];
    sc_gen_cache cache[J];
    sc_gen_job jobs[J];
    sc_error e;
    memset(cache, 0, sizeof cache);
    for (int i = 0; i < J; i++) cr_assert_eq(sc_llama_kv_new(m, 256, &kv[i], &e), SC_OK);
    for (int pass = 0; pass < 2; pass++) { /* cold caches, then warm ones */
        for (int i = 0; i < J; i++) jobs[i] = (sc_gen_job){.prompt = prompts[i], .params = &p[i], .kv = kv[i], .cache = &cache[i]};
        int failed;
        cr_assert_eq(sc_generate_batch(m, jobs, J, &failed, &e), SC_OK, "%s", e.msg);
        cr_assert_eq(failed, -1);
        for (int i = 0; i < J; i++) {
            cr_assert_str_eq(jobs[i].res.text, alone[i], "job %d pass %d", i, pass);
            sc_gen_result_free(&jobs[i].res);
        }
    }
    /* a bad job is named and nothing is returned */
    sc_gen_params bad = p[0];
    bad.top_p = 2;
    for (int i = 0; i < J; i++) jobs[i] = (sc_gen_job){.prompt = prompts[i], .params = i == 2 ? &bad : &p[i], .kv = kv[i]};
    int failed;
    cr_assert_eq(sc_generate_batch(m, jobs, J, &failed, &e), SC_EINVAL);
    cr_assert_eq(failed, 2);
    cr_assert(strstr(e.msg, "top_p"), "%s", e.msg);
    for (int i = 0; i < J; i++) cr_assert_null(jobs[i].res.text);
    jobs[1].kv = kv[0];
    cr_assert_eq(sc_generate_batch(m, jobs, 2, &failed, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "share a KV cache"), "%s", e.msg);
    for (int i = 0; i < J; i++) {
        sc_free(alone[i]);
        sc_gen_cache_free(&cache[i]);
        sc_llama_kv_free(kv[i]);
    }
    sc_llama_free(m);
}

typedef struct {
    char buf[4096];
    size_t n;
} sink;
static int collect(void *ctx, const char *s, size_t n) {
    sink *k = ctx;
    cr_assert_lt(k->n + n, sizeof k->buf);
    memcpy(k->buf + k->n, s, n);
    k->n += n;
    k->buf[k->n] = 0;
    return 0;
}

Test(lm_generate, streaming_never_prints_a_stop, .timeout = 120) {
    sc_llama *m = load();
    sc_gen_params p;
    sc_gen_params_default(&p);
    p.max_tokens = 24;
    char *g = gen(m, Q, &p, NULL);
    /* stop at the first space-led word of 3+ letters after the start */
    const char *w = strchr(g + 1, ' ');
    cr_assert(w && strlen(w) > 4, "'%s'", g);
    char stop[4] = {w[0], w[1], w[2], 0};
    p.stops[0] = stop;
    p.stops[1] = "zzzz-never";
    p.n_stops = 2;
    sink k = {{0}, 0};
    sc_gen_result r;
    sc_error e;
    cr_assert_eq(sc_generate(m, Q, &p, collect, &k, &r, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(k.buf, r.text, "streamed '%s' vs result '%s'", k.buf, r.text);
    cr_assert_null(strstr(k.buf, stop));
    cr_assert_eq(r.end, SC_GEN_END_STOP);
    sc_gen_result_free(&r);
    sc_free(g);
    sc_llama_free(m);
}

/* ---- chat templates ---- */

/* SmolLM2-135M-Instruct's tokenizer.chat_template, verbatim from the GGUF. */
static const char *SMOL =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n"
    "' + message['content'] + '<|im_end|>' + '\n"
    "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n"
    "' }}{% endif %}";

/* Gemma 3's (Hugging Face google/gemma-3-*-it), abridged to the lines that
 * decide the output for system + user. */
static const char *GEMMA =
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- set first_user_prefix = messages[0]['content'] + "
    "'\\n\\n' -%}\n{%- endif -%}\n{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{%- if add_generation_prompt -%}{{'<start_of_turn>model\\n'}}";

/* Llama 3's. */
static const char *LLAMA3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

static void fmt_eq(const char *tmpl, const char *sys, const char *user, const char *want) {
    char *out;
    sc_error e;
    cr_assert_eq(sc_chat_format(tmpl, sys, user, &out, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(out, want);
    sc_free(out);
}

Test(lm_generate, chat_templates) {
    fmt_eq(SMOL, NULL, "Hi there",
           "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
    fmt_eq(SMOL, "Be brief.", "Hi there",
           "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
    fmt_eq(GEMMA, NULL, " Hi there\n", "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n");
    fmt_eq(GEMMA, "Be brief.", "Hi there",
           "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n");
    fmt_eq(LLAMA3, "Be brief.", "Hi there ",
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
           "<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    fmt_eq(LLAMA3, "", "Hi",
           "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
           "<|end_header_id|>\n\n");
    char *out;
    sc_error e;
    cr_assert_eq(sc_chat_format("{{ '[INST] ' + message['content'] + ' [/INST]' }}", NULL, "x", &out, &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "--raw"), "%s", e.msg);
    /* the template in the real file is the one above */
    char *t;
    cr_assert_eq(sc_chat_template_from_gguf(ggt_model_path(), &t, &e), SC_OK, "%s", e.msg);
    cr_assert_not_null(t);
    cr_assert_str_eq(t, SMOL);
    sc_free(t);
}

/* ---- CLI ---- */

Test(lm_generate, cli, .timeout = 180) {
    static char a[8192], b[8192];
    const char *args = "--prompt 'Name three colours.' --temperature 0.9 --top-p 0.95 --top-k 40 --seed 5 --max-tokens 10";
    cr_assert_eq(ggt_run_generate(args, a, sizeof a), 0, "%s", a);
    cr_assert_eq(ggt_run_generate(args, b, sizeof b), 0, "%s", b);
    cr_assert_str_eq(a, b, "same seed, different text");
    cr_assert_gt(strlen(a), 3);
    /* --raw with the chat format written out = the default chat template */
    cr_assert_eq(ggt_run_generate("--prompt 'What is the capital of France?' --max-tokens 8", a, sizeof a), 0, "%s", a);
    char path[] = "/tmp/semctr-gen-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", f);
    fclose(f);
    char args2[256];
    snprintf(args2, sizeof args2, "--raw --prompt-file %s --max-tokens 8", path);
    cr_assert_eq(ggt_run_generate(args2, b, sizeof b), 0, "%s", b);
    remove(path);
    cr_assert_str_eq(a, b);
    const char *bad[][2] = {{"--prompt x --temperature -1", "--temperature"}, {"--prompt x --top-p 0", "--top-p"},
                            {"--prompt x --top-k -3", "--top-k"},          {"--prompt x --seed abc", "--seed"},
                            {"--prompt x --stop ''", "--stop"},            {"--prompt x --raw --system s", "--system"},
                            {"--prompt x --prompt-file /nonexistent/p.txt", "--prompt"},
                            {"--prompt-file /nonexistent/p.txt", "p.txt"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = ggt_run_generate(bad[i][0], a, sizeof a);
        cr_assert(rc == 2 || rc == 1, "%s: exit %d: %s", bad[i][0], rc, a);
        cr_assert(strstr(a, bad[i][1]), "%s: message '%s' does not name %s", bad[i][0], a, bad[i][1]);
    }
}
