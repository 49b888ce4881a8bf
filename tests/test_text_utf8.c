/* text: the one rule for invalid UTF-8 (text/tokutil.h): every byte that does
 * not begin a valid sequence reads as U+FFFD, in all three tokenizers
 * (WordPiece for MiniLM, byte-level BPE for SmolLM2, SentencePiece for
 * Gemma); and `generate` refuses an empty prompt the same way on every
 * model. */
#include "test_gguf_util.h"
#include "test_lm_util.h"
#include "text/tokutil.h"
#include "text/wordpiece.h"

#define FFFD "\xEF\xBF\xBD"

static void check_replace(const char *in, size_t n, const char *want) {
    char *out;
    size_t nout;
    cr_assert_eq(sc_utf8_replace_invalid(in, n, &out, &nout), 0);
    if (!want) {
        cr_assert_null(out, "valid text is used as is");
        cr_assert_eq(nout, n);
        return;
    }
    cr_assert_not_null(out);
    cr_assert_eq(nout, strlen(want));
    cr_assert(!memcmp(out, want, nout), "got '%s', want '%s'", out, want);
    sc_free(out);
}

Test(text_utf8, replace_invalid_bytes) {
    check_replace("caf\xC3\xA9 \xF0\x9F\x98\x80", 10, NULL);
    check_replace("", 0, NULL);
    check_replace("a\0b", 3, NULL); /* NUL is valid UTF-8 */
    check_replace("caf\xE9!", 5, "caf" FFFD "!");                      /* Latin-1 */
    check_replace("\xE2\x82", 2, FFFD FFFD);                          /* truncated: one per byte */
    check_replace("\xC0\x80", 2, FFFD FFFD);                          /* overlong */
    check_replace("\xED\xA0\x80x", 4, FFFD FFFD FFFD "x");            /* a surrogate */
    check_replace("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);        /* above U+10FFFF */
    check_replace("\x80\xE2\x82\xAC", 4, FFFD "\xE2\x82\xAC");        /* stray continuation, then the euro sign */
}

/* The ids of bad text equal those of the same text with U+FFFD written in. */
static const char BAD[] = "caf\xE9 au lait \xFF\xFE costs 3\xE2\x82 euros\xC3";
static const char FIXED[] = "caf" FFFD " au lait " FFFD FFFD " costs 3" FFFD FFFD " euros" FFFD;

static void gguf_same_ids(const char *path) {
    sc_llama *m;
    sc_error e;
    cr_assert_eq(sc_llama_load(&m, path, 64, &e), SC_OK, "%s", e.msg);
    int32_t *a, *b;
    int na, nb;
    cr_assert_eq(sc_llama_tokenize(m, BAD, sizeof BAD - 1, 0, &a, &na, &e), SC_OK, "%s: %s", path, e.msg);
    cr_assert_eq(sc_llama_tokenize(m, FIXED, sizeof FIXED - 1, 0, &b, &nb, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(na, nb, "%s: %d ids for the bad text, %d with U+FFFD", path, na, nb);
    cr_assert(!memcmp(a, b, (size_t)na * sizeof *a), "%s: the ids differ", path);
    sc_free(a);
    sc_free(b);
    sc_llama_free(m);
}

Test(text_utf8, bpe_reads_invalid_bytes_as_fffd, .timeout = 60) { gguf_same_ids(ggt_model_path()); }
Test(text_utf8, spm_reads_invalid_bytes_as_fffd, .timeout = 60) { gguf_same_ids(ggt_gemma_path()); }

Test(text_utf8, wordpiece_reads_invalid_bytes_as_fffd) {
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_load_dir(&wp, lmt_model_dir(), &e), SC_OK, "%s", e.msg);
    sc_tokens a = {0}, b = {0};
    cr_assert_eq(sc_wordpiece_encode(wp, BAD, sizeof BAD - 1, 0, &a, &e), SC_OK);
    cr_assert_eq(sc_wordpiece_encode(wp, FIXED, sizeof FIXED - 1, 0, &b, &e), SC_OK);
    cr_assert_eq(a.n, b.n);
    cr_assert(!memcmp(a.ids, b.ids, (size_t)a.n * sizeof *a.ids));
    sc_tokens_free(&a);
    sc_tokens_free(&b);
    sc_wordpiece_free(wp);
}

Test(text_utf8, generate_refuses_an_empty_prompt_on_every_model, .timeout = 60) {
    static char out[4096], args[4400];
    const char *models[] = {ggt_model_path(), ggt_gemma_path()};
    for (int i = 0; i < 2; i++) {
        for (int raw = 0; raw < 2; raw++) {
            snprintf(args, sizeof args, "generate %s--prompt '' --model '%s'", raw ? "--raw " : "", models[i]);
            cr_assert_eq(ggt_run_cli(args, out, sizeof out), 2, "%s: %s", models[i], out);
            cr_assert(strstr(out, "semctr generate: the prompt is empty"), "%s: %s", models[i], out);
        }
    }
}

/* docs/llm.md's Gemma `generate` example runs and prints what the page shows
 * (the line after the command; greedy decoding is deterministic). */
Test(text_utf8, llm_md_gemma_example_prints_its_output, .timeout = 120) {
    FILE *f = fopen("docs/llm.md", "r");
    cr_assert(f, "docs/llm.md missing");
    static char line[4096], want[4096], args[8192], out[4096];
    const char *cmd = "semctr generate --model ~/.cache/semctr/models/gemma-3-270m-q4_k_m.gguf ";
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, cmd, strlen(cmd)) && fgets(want, sizeof want, f)) found = 1;
    fclose(f);
    cr_assert(found, "docs/llm.md has no Gemma generate example");
    line[strcspn(line, "\n")] = '\0';
    snprintf(args, sizeof args, "generate --model '%s' %s", ggt_gemma_path(), line + strlen(cmd));
    cr_assert_eq(tcli_run("SEMCTR_QUIET=1", args, out, sizeof out), 0, "%s: %s", args, out);
    cr_assert_str_eq(out, want, "docs/llm.md shows '%s', the command prints '%s'", want, out);
}
