/* text: WordPiece against Hugging Face tokenizers (committed fixture of 2,400
 * strings made by tests/fixtures/gen_tokenizer_fixture.py), truncation,
 * vocab.txt loading, bad vocabularies. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "test_lm_util.h"
#include "text/wordpiece.h"

#include <utf8proc.h>

typedef struct fx_case {
    char *text;
    size_t len;
    int *ids;
    int n;
} fx_case;

static fx_case *load_fixture(int *n_out) {
    FILE *f = fopen(lmt_fixture("tokenizer_minilm.tsv"), "r");
    cr_assert(f, "tests/fixtures/tokenizer_minilm.tsv missing");
    fx_case *c = NULL;
    int n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t l;
    while ((l = getline(&line, &lcap, f)) > 0) {
        char *tab = strchr(line, '\t');
        cr_assert(tab);
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            c = realloc(c, (size_t)cap * sizeof *c);
        }
        size_t hl = (size_t)(tab - line);
        c[n].text = malloc(hl / 2 + 1);
        c[n].len = lmt_unhex(line, hl, c[n].text);
        c[n].ids = malloc(sizeof(int) * (size_t)l);
        c[n].n = 0;
        for (char *p = tab + 1; *p && *p != '\n';) {
            char *e;
            c[n].ids[c[n].n++] = (int)strtol(p, &e, 10);
            p = *e == ' ' ? e + 1 : e;
        }
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return c;
}

static void free_fixture(fx_case *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

static int same_ids(const sc_tokens *t, const int *ids, int n) {
    if (t->n != n) return 0;
    for (int i = 0; i < n; i++)
        if (t->ids[i] != ids[i]) return 0;
    return 1;
}

static void check_all(sc_wordpiece *wp, fx_case *c, int n, int limit_cases) {
    sc_tokens t = {0};
    sc_error e;
    int bad = 0, first = -1;
    for (int i = 0; i < n && i < limit_cases; i++) {
        cr_assert_eq(sc_wordpiece_encode(wp, c[i].text, c[i].len, 0, &t, &e), SC_OK);
        if (!same_ids(&t, c[i].ids, c[i].n)) {
            if (first < 0) first = i;
            bad++;
        }
    }
    sc_tokens_free(&t);
    cr_assert_eq(bad, 0, "%d fixture strings tokenised differently from HF tokenizers; first: line %d", bad,
                 first + 1);
}

Test(text_wordpiece, matches_hf_tokenizers_on_fixture) {
    int n;
    fx_case *c = load_fixture(&n);
    cr_assert_geq(n, 2000);
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_load_dir(&wp, lmt_model_dir(), &e), SC_OK, "%s", e.msg);
    check_all(wp, c, n, n);
    sc_wordpiece_free(wp);
    free_fixture(c, n);
}

Test(text_wordpiece, vocab_txt_matches_tokenizer_json) {
    int n;
    fx_case *c = load_fixture(&n);
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.txt", lmt_model_dir());
    sc_wordpiece_opts o = {1, -1, 1, 1, 100};
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_load_vocab(&wp, path, &o, &e), SC_OK, "%s", e.msg);
    check_all(wp, c, n, n);
    sc_wordpiece_free(wp);
    free_fixture(c, n);
}

Test(text_wordpiece, truncation_keeps_cls_and_sep) {
    int n;
    fx_case *c = load_fixture(&n);
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_load_dir(&wp, lmt_model_dir(), &e), SC_OK, "%s", e.msg);
    sc_tokens t = {0};
    int long_ones = 0;
    for (int i = 0; i < n; i++) {
        for (int max = 2; max <= 256; max = max * 2 + 1) {
            cr_assert_eq(sc_wordpiece_encode(wp, c[i].text, c[i].len, max, &t, &e), SC_OK);
            if (c[i].n <= max) {
                cr_assert(same_ids(&t, c[i].ids, c[i].n));
            } else {
                long_ones += max > 100;
                cr_assert_eq(t.n, max, "line %d, max %d: %d tokens", i + 1, max, t.n);
                cr_assert_eq(memcmp(t.ids, c[i].ids, (size_t)(max - 1) * sizeof(int)), 0);
                cr_assert_eq(t.ids[max - 1], 102);
            }
        }
    }
    cr_assert_gt(long_ones, 10, "the fixture should hold texts longer than the limits");
    sc_tokens_free(&t);
    sc_wordpiece_free(wp);
    free_fixture(c, n);
}

Test(text_wordpiece, small_vocab_rules) {
    const char *v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n!\n,\ncafe\n";
    sc_wordpiece_opts o = {1, -1, 1, 1, 10};
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_from_vocab_buf(&wp, v, strlen(v), "v.txt", &o, &e), SC_OK, "%s", e.msg);
    sc_tokens t = {0};
    const char *s = "UnAffable, HELLO!! Café unaffablee [MASK]hello";
    cr_assert_eq(sc_wordpiece_encode(wp, s, strlen(s), 0, &t, &e), SC_OK);
    int want[] = {2, 5, 6, 7, 10, 8, 9, 9, 11, 1, 4, 8, 3};
    cr_assert_eq(t.n, 13);
    for (int i = 0; i < 13; i++) cr_assert_eq(t.ids[i], want[i], "token %d: %d != %d", i, t.ids[i], want[i]);
    /* over max_input_chars_per_word (10): one [UNK] */
    cr_assert_eq(sc_wordpiece_encode(wp, "helloooooooo", 12, 0, &t, &e), SC_OK);
    cr_assert_eq(t.n, 3);
    cr_assert_eq(t.ids[1], 1);
    /* empty and whitespace-only texts: [CLS] [SEP] */
    cr_assert_eq(sc_wordpiece_encode(wp, " \t\n", 3, 0, &t, &e), SC_OK);
    cr_assert_eq(t.n, 2);
    /* invalid UTF-8 is replaced and dropped, the rest stays one word */
    cr_assert_eq(sc_wordpiece_encode(wp, "hel\xfflo", 6, 0, &t, &e), SC_OK);
    cr_assert_eq(t.n, 3);
    cr_assert_eq(t.ids[1], 8);
    sc_tokens_free(&t);
    sc_wordpiece_free(wp);
}

Test(text_wordpiece, vocab_without_unk_is_an_error) {
    const char *v = "[PAD]\n[CLS]\n[SEP]\nhello\n";
    sc_wordpiece_opts o = {1, -1, 1, 1, 100};
    sc_wordpiece *wp = NULL;
    sc_error e;
    cr_assert_eq(sc_wordpiece_from_vocab_buf(&wp, v, strlen(v), "my/vocab.txt", &o, &e), SC_EFORMAT);
    cr_assert_null(wp);
    cr_assert(strstr(e.msg, "my/vocab.txt") && strstr(e.msg, "[UNK]"), "%s", e.msg);
    const char *dup = "[UNK]\n[CLS]\n[SEP]\nx\nx\n";
    cr_assert_eq(sc_wordpiece_from_vocab_buf(&wp, dup, strlen(dup), "d.txt", &o, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'x' appears twice"), "%s", e.msg);
    cr_assert_eq(sc_wordpiece_from_vocab_buf(&wp, "", 0, "e.txt", &o, &e), SC_EFORMAT);
    cr_assert_eq(sc_wordpiece_load_dir(&wp, "/nonexistent-dir", &e), SC_ENOTFOUND);
}

Test(text_wordpiece, unicode_classes) {
    cr_assert(sc_unicode_is_bert_whitespace(0x3000));
    cr_assert(sc_unicode_is_bert_whitespace('\t'));
    cr_assert(!sc_unicode_is_bert_whitespace('a'));
    cr_assert(sc_unicode_is_bert_punct('$'));
    cr_assert(sc_unicode_is_bert_punct(0x2014)); /* em dash */
    cr_assert(!sc_unicode_is_bert_punct(0x2E43)); /* newer than tokenizers' tables: a word char there */
    cr_assert(sc_unicode_is_bert_control(0x200B));
    cr_assert(!sc_unicode_is_bert_control(0x0378)); /* unassigned: kept, as tokenizers does */
    cr_assert(sc_unicode_is_cjk(0x4E2D));
    cr_assert(!sc_unicode_is_cjk(0x3042)); /* hiragana */
}

/* Every code point against tokenizers (tests/fixtures/bert_unicode.tsv, made
 * by gen_unicode_compat.py): its pre-tokenizer class, and what uncased
 * BERT's normaliser (clean_text, CJK spacing, strip_accents, lowercase)
 * makes of it. */
static const char *bert_class(int32_t c) {
    if (c == 0 || c == 0xFFFD || sc_unicode_is_bert_control(c)) return "drop";
    if (sc_unicode_is_bert_whitespace(c)) return "space";
    return sc_unicode_is_bert_punct(c) ? "punct" : "word";
}

Test(text_wordpiece, every_code_point_matches_hf_tokenizers) {
    FILE *f = fopen(lmt_fixture("bert_unicode.tsv"), "r");
    cr_assert(f, "tests/fixtures/bert_unicode.tsv missing");
    const sc_wordpiece_opts o = {1, 1, 1, 1, 100};
    const char *vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    sc_wordpiece *wp;
    sc_error e;
    cr_assert_eq(sc_wordpiece_from_vocab_buf(&wp, vocab, strlen(vocab), "v.txt", &o, &e), SC_OK);
    char line[512], want[256];
    int bad_cls = 0, bad_norm = 0, first_bad = -1;
    int32_t next = 0; /* the rows cover every code point but surrogates, in order */
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        unsigned lo, hi;
        char cls[16], out[400];
        cr_assert_eq(sscanf(line, "%x\t%x\t%15[^\t]\t%399[^\n]", &lo, &hi, cls, out), 4, "%s", line);
        cr_assert_eq((int32_t)lo, next == 0xD800 ? 0xE000 : next, "rows must be contiguous: %s", line);
        next = (int32_t)hi + 1;
        for (int32_t c = (int32_t)lo; c <= (int32_t)hi; c++) {
            char in[8];
            size_t nin = (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)in), n = 0;
            if (!strcmp(out, "=")) memcpy(want, in, n = nin);
            else if (!strcmp(out, "cjk")) { want[0] = ' '; memcpy(want + 1, in, nin); want[nin + 1] = ' '; n = nin + 2; }
            else if (strcmp(out, "-")) {
                for (char *p = out; *p;) {
                    char *end;
                    n += (size_t)utf8proc_encode_char((int32_t)strtol(p, &end, 16), (utf8proc_uint8_t *)want + n);
                    p = *end == ' ' ? end + 1 : end;
                }
            }
            char *got;
            size_t ng;
            cr_assert_eq(sc_wordpiece_normalize(wp, in, nin, &got, &ng, &e), SC_OK);
            int cls_ok = !strcmp(cls, bert_class(c)), norm_ok = ng == n && !memcmp(got, want, n);
            bad_cls += !cls_ok;
            bad_norm += !norm_ok;
            if ((!cls_ok || !norm_ok) && first_bad < 0) first_bad = c;
            sc_free(got);
        }
    }
    fclose(f);
    sc_wordpiece_free(wp);
    cr_assert_eq(next, 0x110000, "the fixture stops at U+%04X", next);
    cr_assert(bad_cls == 0 && bad_norm == 0, "%d classes and %d normalised forms differ from tokenizers; first U+%04X",
              bad_cls, bad_norm, first_bad);
}
