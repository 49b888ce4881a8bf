/* Helpers for the GGUF tests: where the fetched model files are, and the
 * checks against llama.cpp fixtures that every decoder model gets (made by
 * tests/fixtures/gguf/gen_llama_fixture.py through llama-cpp-python). */
#ifndef SC_TESTS_GGUF_UTIL_H
#define SC_TESTS_GGUF_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "lm/gguf.h"
#include "lm/llama.h"
#include "text/bpe.h"
#include "text/spm.h"
#include "text/tokutil.h"
#include "test_cli_util.h"

/* Fewer prompts under AddressSanitizer keep the sanitizer run short; the
 * plain run checks them all. */
#if defined(__SANITIZE_ADDRESS__)
#define SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN_BUILD 1
#endif
#endif
#ifndef SAN_BUILD
#define SAN_BUILD 0
#endif

/* $env, else file in the cache that scripts/fetch_gguf.sh fills */
static inline const char *ggt_cache_path(const char *env_name, const char *file, char *p, size_t cap) {
    const char *env = getenv(env_name);
    if (env && env[0]) return env;
    const char *cache = getenv("SEMCTR_CACHE");
    if (cache && cache[0]) snprintf(p, cap, "%s/models/%s", cache, file);
    else snprintf(p, cap, "%s/.cache/semctr/models/%s", getenv("HOME") ? getenv("HOME") : ".", file);
    return p;
}

/* SmolLM2-135M-Instruct: $SEMCTR_GGUF, else the cache. */
static inline const char *ggt_model_path(void) {
    static char p[4096];
    return ggt_cache_path("SEMCTR_GGUF", "SmolLM2-135M-Instruct.Q4_1.gguf", p, sizeof p);
}

/* Gemma 3 270M: $SEMCTR_GEMMA_GGUF, else the cache. */
static inline const char *ggt_gemma_path(void) {
    static char p[4096];
    return ggt_cache_path("SEMCTR_GEMMA_GGUF", "gemma-3-270m-q4_k_m.gguf", p, sizeof p);
}

/* stdout+stderr of `semctr ARGS` ($SEMCTR_BIN) into out; the exit status */
static inline int ggt_run_cli(const char *args, char *out, size_t cap) { return tcli_run("", args, out, cap); }

/* `semctr generate ARGS` with the SmolLM2 fixture model as the default */
static inline int ggt_run_generate(const char *args, char *out, size_t cap) {
    char a[8192];
    setenv("SEMCTR_GGUF", ggt_model_path(), 1);
    snprintf(a, sizeof a, "generate %s", args);
    return ggt_run_cli(a, out, cap);
}

static inline size_t ggt_unhex(const char *h, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        char two[3] = {h[i], h[i + 1], 0};
        out[k++] = (char)strtoul(two, NULL, 16);
    }
    out[k] = 0;
    return k;
}

/* The tokenizer of a GGUF file alone (no weights): whichever kind it has. */
typedef struct ggt_tok {
    sc_bpe *bpe;
    sc_spm *spm;
} ggt_tok;

static inline ggt_tok ggt_tok_load(const char *path) {
    sc_gguf g;
    sc_error e;
    ggt_tok t = {0};
    cr_assert_eq(sc_gguf_open(&g, path, &e), SC_OK, "%s", e.msg);
    char *model;
    cr_assert_eq(sc_gguf_get_str(&g, "tokenizer.ggml.model", &model, &e), SC_OK, "%s", e.msg);
    if (!strcmp(model, "llama")) cr_assert_eq(sc_spm_from_gguf(&t.spm, &g, &e), SC_OK, "%s", e.msg);
    else cr_assert_eq(sc_bpe_from_gguf(&t.bpe, &g, &e), SC_OK, "%s", e.msg);
    sc_free(model);
    sc_gguf_close(&g);
    return t;
}

static inline int ggt_encode(ggt_tok t, const char *s, size_t n, int special, int32_t **ids, int *k, sc_error *e) {
    return t.spm ? sc_spm_encode(t.spm, s, n, special, ids, k, e) : sc_bpe_encode(t.bpe, s, n, special, ids, k, e);
}

static inline int ggt_piece(ggt_tok t, int32_t id, char *buf, size_t cap) {
    return t.spm ? sc_spm_piece(t.spm, id, buf, cap) : sc_bpe_piece(t.bpe, id, buf, cap);
}

static inline void ggt_tok_free(ggt_tok t) {
    sc_bpe_free(t.bpe);
    sc_spm_free(t.spm);
}

/* Token ids identical to llama.cpp on every fixture line of valid UTF-8; decoding gives the
 * text back (SentencePiece: unless the text itself holds "▁" or invalid
 * UTF-8, which do not round-trip). Returns the number of lines. */
static inline int ggt_check_tokens(ggt_tok t, const char *fixture) {
    FILE *f = fopen(fixture, "r");
    cr_assert(f, "%s fixture missing", fixture);
    static char line[65536], text[32768], back[32768];
    int n_lines = 0, bad = 0;
    sc_error e;
    while (fgets(line, sizeof line, f)) {
        int special = line[0] == '*';
        char *h = line + special, *tab = strchr(h, '\t');
        cr_assert(tab, "%s line %d has no tab", fixture, n_lines + 1);
        size_t tl = ggt_unhex(h, (size_t)(tab - h), text);
        int32_t want[4096];
        int nw = 0;
        for (char *p = tab + 1; *p && *p != '\n' && nw < 4096;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[nw++] = (int32_t)v;
            p = end;
        }
        int32_t *ids;
        int n;
        cr_assert_eq(ggt_encode(t, text, tl, special, &ids, &n, &e), SC_OK, "%s", e.msg);
        /* invalid UTF-8 reads as U+FFFD (text/tokutil.h, tested in
         * test_text_utf8.c), where llama.cpp's SentencePiece keeps the bytes */
        char *fixed;
        size_t fl;
        cr_assert_eq(sc_utf8_replace_invalid(text, tl, &fixed, &fl), 0);
        int utf8_ok = !fixed;
        sc_free(fixed);
        if (utf8_ok && !(n == nw && (n == 0 || memcmp(ids, want, (size_t)n * 4) == 0))) {
            bad++;
            fprintf(stderr, "%s: tokenizer mismatch on line %d '%s': %d vs %d ids\n", fixture, n_lines + 1, text, n, nw);
        }
        if (!special && utf8_ok && !(t.spm && strstr(text, "\xE2\x96\x81"))) {
            size_t bl = 0;
            for (int i = 0; i < n; i++) bl += (size_t)ggt_piece(t, ids[i], back + bl, sizeof back - bl);
            cr_assert(bl == tl && memcmp(back, text, tl) == 0, "%s: decode(encode('%s')) differs", fixture, text);
        }
        sc_free(ids);
        n_lines++;
    }
    fclose(f);
    cr_assert_eq(bad, 0, "%s: %d of %d strings tokenised differently from llama.cpp", fixture, bad, n_lines);
    return n_lines;
}

/* Ids of a prompt as llama.cpp's tokenize(add_bos=True, special=True). */
static inline void ggt_prompt_ids(const sc_llama *m, const char *p, size_t pl, int32_t **ids, int *n) {
    sc_error e;
    int32_t *raw;
    int k;
    cr_assert_eq(sc_llama_tokenize(m, p, pl, 1, &raw, &k, &e), SC_OK, "%s", e.msg);
    int bos = sc_llama_add_bos(m);
    *ids = sc_malloc((size_t)(k + 1) * sizeof(int32_t));
    if (bos) (*ids)[0] = sc_llama_bos(m);
    memcpy(*ids + bos, raw, (size_t)k * sizeof(int32_t));
    *n = k + bos;
    sc_free(raw);
}

/* Last-token logits of at most max_prompts fixture prompts within tol of
 * llama.cpp's. exact_argmax: the same argmax; else (llama.cpp on a quantised
 * file rounds activations, so near-ties may flip) semctr's argmax must be a
 * token llama.cpp scores within tol of its best. Returns the largest |diff|. */
static inline float ggt_check_logits(sc_llama *m, const char *fixture, float tol, int max_prompts, int exact_argmax) {
    FILE *f = fopen(fixture, "r");
    cr_assert(f, "%s fixture missing", fixture);
    static char line[65536], prompt[32768];
    float *lg = malloc((size_t)m->cfg.n_vocab * sizeof(float));
    int prompts = 0, have = 0, want_best = -1, got_best = -1, flips = 0;
    float worst = 0, want_best_v = -INFINITY, want_of_got = -INFINITY;
    sc_error e;
    for (;;) {
        char *r = fgets(line, sizeof line, f);
        if (!r || line[0] == 'P') {
            if (have) {
                if (exact_argmax || got_best != want_best) {
                    cr_assert(!exact_argmax || got_best == want_best, "%s prompt %d: argmax %d vs llama.cpp %d", fixture,
                              prompts, got_best, want_best);
                    cr_assert_geq(want_of_got, want_best_v - tol, "%s prompt %d: argmax %d, which llama.cpp scores %f < its best %f - %f",
                                  fixture, prompts, got_best, want_of_got, want_best_v, tol);
                    flips += got_best != want_best;
                }
                prompts++;
            }
            if (!r || prompts >= max_prompts) break;
            size_t pl = ggt_unhex(line + 2, strcspn(line + 2, "\n"), prompt);
            int32_t *ids;
            int n;
            ggt_prompt_ids(m, prompt, pl, &ids, &n);
            sc_llama_reset(m);
            cr_assert_eq(sc_llama_forward(m, ids, n, lg, NULL, &e), SC_OK, "%s", e.msg);
            sc_free(ids);
            got_best = 0;
            for (int v = 1; v < m->cfg.n_vocab; v++)
                if (lg[v] > lg[got_best]) got_best = v;
            want_best = -1;
            want_best_v = -INFINITY;
            want_of_got = -INFINITY;
            have = 1;
            continue;
        }
        int id;
        float v;
        cr_assert_eq(sscanf(line, "I %d %f", &id, &v), 2);
        cr_assert(id >= 0 && id < m->cfg.n_vocab);
        float d = fabsf(lg[id] - v);
        if (d > worst) worst = d;
        cr_assert_leq(d, tol, "%s prompt %d token %d: %f vs llama.cpp %f", fixture, prompts, id, lg[id], v);
        if (v > want_best_v) {
            want_best_v = v;
            want_best = id;
        }
        if (id == got_best) want_of_got = v;
    }
    fclose(f);
    fprintf(stderr, "%s: %d prompts, max |diff| vs llama.cpp %.6f, argmax differs on %d (near-ties)\n", fixture, prompts,
            worst, flips);
    cr_assert_geq(prompts, 1);
    free(lg);
    return worst;
}

/* Mean-pooled embeddings at cosine >= min_cos to llama.cpp's. Returns the
 * lowest cosine. */
static inline double ggt_check_embed(sc_llama *m, const char *fixture, double min_cos, int max_texts) {
    FILE *f = fopen(fixture, "r");
    cr_assert(f, "%s fixture missing", fixture);
    static char line[1 << 20], text[32768];
    int C = m->cfg.dim, texts = 0;
    float *got = malloc((size_t)C * sizeof(float));
    double lowest = 1;
    sc_error e;
    while (texts < max_texts && fgets(line, sizeof line, f)) {
        cr_assert_eq(line[0], 'E', "%s: expected an E line", fixture);
        ggt_unhex(line + 2, strcspn(line + 2, "\n"), text);
        cr_assert(fgets(line, sizeof line, f), "%s: vector missing", fixture);
        cr_assert_eq(sc_llama_embed(m, text, got, &e), SC_OK, "%s", e.msg);
        double dot = 0, na = 0, nb = 0;
        char *p = line;
        for (int i = 0; i < C; i++) {
            char *end;
            double w = strtod(p, &end);
            cr_assert(end != p, "%s: vector of '%s' has %d < %d values", fixture, text, i, C);
            p = end;
            dot += w * got[i];
            na += w * w;
            nb += (double)got[i] * got[i];
        }
        double cs = dot / sqrt(na * nb);
        if (cs < lowest) lowest = cs;
        cr_assert_geq(cs, min_cos, "%s: '%s' cosine %f to llama.cpp", fixture, text, cs);
        texts++;
    }
    fclose(f);
    free(got);
    fprintf(stderr, "%s: %d texts, lowest cosine to llama.cpp %.6f\n", fixture, texts, lowest);
    cr_assert_geq(texts, 1);
    return lowest;
}

#endif
