/* lm: the GGUF reader accepts well-formed v2/v3 images (every metadata type,
 * arrays, alignment) and rejects lying ones with messages naming the key or
 * tensor; the real SmolLM2 file parses with the expected hyperparameters. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/gguf.h"
#include "test_gguf_util.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void pad(buf *b, size_t a) { while (b->n % a) put(b, "", 1); }

/* header; then the caller appends kvs and tensor infos */
static void hdr(buf *b, uint32_t ver, uint64_t nt, uint64_t nkv) {
    put(b, "GGUF", 4);
    u32(b, ver);
    u64(b, nt);
    u64(b, nkv);
}

static int parse(buf *b, sc_error *e) {
    sc_gguf g;
    int rc = sc_gguf_parse(&g, b->p, b->n, "t.gguf", e);
    if (rc == SC_OK) sc_gguf_close(&g);
    free(b->p);
    return rc;
}

Test(gguf_reader, all_types_and_tensor) {
    buf b = {0};
    hdr(&b, 3, 1, 8);
    str(&b, "a.u8"); u32(&b, SC_GGUF_U8); put(&b, "\xff", 1);
    str(&b, "a.i16"); u32(&b, SC_GGUF_I16); int16_t i16 = -5; put(&b, &i16, 2);
    str(&b, "a.f32"); u32(&b, SC_GGUF_F32); float f = 1.5f; put(&b, &f, 4);
    str(&b, "a.str"); u32(&b, SC_GGUF_STRING); str(&b, "hello");
    str(&b, "a.arr"); u32(&b, SC_GGUF_ARRAY); u32(&b, SC_GGUF_STRING); u64(&b, 2); str(&b, "x"); str(&b, "yz");
    str(&b, "a.ai32"); u32(&b, SC_GGUF_ARRAY); u32(&b, SC_GGUF_I32); u64(&b, 3); int32_t v[3] = {1, -2, 3}; put(&b, v, 12);
    str(&b, "a.f64"); u32(&b, SC_GGUF_F64); double d = -2.25; put(&b, &d, 8);
    str(&b, "general.alignment"); u32(&b, SC_GGUF_U32); u32(&b, 64);
    str(&b, "w"); u32(&b, 2); u64(&b, 4); u64(&b, 2); u32(&b, SC_GGML_F32); u64(&b, 0);
    pad(&b, 64);
    float w[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    put(&b, w, sizeof w);
    sc_gguf g;
    sc_error e;
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "t.gguf", &e), SC_OK, "%s", e.msg);
    uint64_t u;
    cr_assert_eq(sc_gguf_get_u64(&g, "a.u8", &u, &e), SC_OK);
    cr_assert_eq(u, 255);
    cr_assert_eq(sc_gguf_find(&g, "a.i16")->i, -5);
    float x;
    cr_assert_eq(sc_gguf_get_f32(&g, "a.f32", &x, &e), SC_OK);
    cr_assert_eq(x, 1.5f);
    cr_assert_eq(sc_gguf_find(&g, "a.f64")->f, -2.25);
    char *s;
    cr_assert_eq(sc_gguf_get_str(&g, "a.str", &s, &e), SC_OK);
    cr_assert_str_eq(s, "hello");
    sc_free(s);
    const sc_gguf_kv *a = sc_gguf_find(&g, "a.arr");
    const char *p;
    uint64_t n;
    cr_assert_eq(sc_gguf_arr_str(a, 1, &p, &n), SC_OK);
    cr_assert(n == 2 && memcmp(p, "yz", 2) == 0);
    cr_assert_neq(sc_gguf_arr_str(a, 2, &p, &n), SC_OK);
    cr_assert_eq(g.alignment, 64);
    const sc_gguf_tensor *t = sc_gguf_tensor_find(&g, "w");
    cr_assert(t && t->ne[0] == 4 && t->ne[1] == 2 && t->nbytes == 32);
    cr_assert_eq(((uintptr_t)(t->data - b.p)) % 64, 0);
    cr_assert_eq(((const float *)t->data)[5], 5.0f);
    cr_assert_eq(sc_gguf_get_u64(&g, "missing", &u, &e), SC_ENOTFOUND);
    cr_assert_eq(sc_gguf_get_u64(&g, "a.str", &u, &e), SC_EFORMAT);
    sc_gguf_close(&g);
    free(b.p);
}

Test(gguf_reader, rejects_bad_images) {
    sc_error e;
    buf b = {0};
    put(&b, "GGUX", 4); u32(&b, 3); u64(&b, 0); u64(&b, 0);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "t.gguf") && strstr(e.msg, "magic"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 1, 0, 0);
    cr_assert_eq(parse(&b, &e), SC_EVERSION);

    memset(&b, 0, sizeof b); hdr(&b, 3, 0, 2);
    str(&b, "k"); u32(&b, SC_GGUF_U8); put(&b, "\1", 1);
    str(&b, "k"); u32(&b, SC_GGUF_U8); put(&b, "\1", 1);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "duplicate key 'k'"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 0, 1);
    str(&b, "k"); u32(&b, 99); put(&b, "\1\1\1\1\1\1\1\1\1\1\1\1\1", 13);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'k'") && strstr(e.msg, "unknown value type"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 0, 1);
    str(&b, "big"); u32(&b, SC_GGUF_ARRAY); u32(&b, SC_GGUF_U64); u64(&b, UINT64_MAX / 4);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'big'"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 0, (uint64_t)1 << 60);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);

    memset(&b, 0, sizeof b); hdr(&b, 3, 1, 0);
    str(&b, "t5"); u32(&b, 5); for (int i = 0; i < 5; i++) u64(&b, 1); u32(&b, 0); u64(&b, 0);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'t5'") && strstr(e.msg, "dimensions"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 1, 0);
    str(&b, "ov"); u32(&b, 2); u64(&b, (uint64_t)1 << 40); u64(&b, (uint64_t)1 << 40); u32(&b, 0); u64(&b, 0);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'ov'") && strstr(e.msg, "overflows"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 1, 0);
    str(&b, "ty"); u32(&b, 1); u64(&b, 32); u32(&b, 77); u64(&b, 0);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'ty'") && strstr(e.msg, "unknown tensor type"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 1, 0);
    str(&b, "out"); u32(&b, 1); u64(&b, 4); u32(&b, SC_GGML_F32); u64(&b, 32);
    pad(&b, 32); put(&b, "0123456789abcdef", 16);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'out'") && strstr(e.msg, "outside"), "%s", e.msg);

    memset(&b, 0, sizeof b); hdr(&b, 3, 1, 0);
    str(&b, "q"); u32(&b, 1); u64(&b, 31); u32(&b, SC_GGML_Q8_0); u64(&b, 0);
    cr_assert_eq(parse(&b, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'q'") && strstr(e.msg, "block size"), "%s", e.msg);

    /* every truncation of a valid image fails cleanly */
    memset(&b, 0, sizeof b); hdr(&b, 2, 1, 1);
    str(&b, "a"); u32(&b, SC_GGUF_ARRAY); u32(&b, SC_GGUF_STRING); u64(&b, 2); str(&b, "x"); str(&b, "yz");
    str(&b, "w"); u32(&b, 1); u64(&b, 4); u32(&b, SC_GGML_F32); u64(&b, 0);
    pad(&b, 32); put(&b, "0123456789abcdef", 16);
    for (size_t n = 0; n < b.n; n++) {
        sc_gguf g;
        cr_assert_neq(sc_gguf_parse(&g, b.p, n, "t.gguf", &e), SC_OK, "prefix %zu accepted", n);
    }
    sc_gguf g;
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "t.gguf", &e), SC_OK, "%s", e.msg);
    sc_gguf_close(&g);
    free(b.p);
}

Test(gguf_reader, missing_file) {
    sc_gguf g;
    sc_error e;
    cr_assert_neq(sc_gguf_open(&g, "/nonexistent/x.gguf", &e), SC_OK);
    cr_assert(strstr(e.msg, "x.gguf"), "%s", e.msg);
}

Test(gguf_reader, smollm2_file) {
    sc_gguf g;
    sc_error e;
    cr_assert_eq(sc_gguf_open(&g, ggt_model_path(), &e), SC_OK, "%s", e.msg);
    cr_assert_eq(g.version, 3);
    cr_assert_eq(g.n_tensors, 272);
    uint64_t u;
    cr_assert_eq(sc_gguf_get_u64(&g, "llama.embedding_length", &u, &e), SC_OK);
    cr_assert_eq(u, 576);
    const sc_gguf_kv *tok = sc_gguf_find(&g, "tokenizer.ggml.tokens");
    cr_assert(tok && tok->arr_n == 49152);
    const char *s;
    uint64_t n;
    cr_assert_eq(sc_gguf_arr_str(tok, 2, &s, &n), SC_OK);
    cr_assert(n == 10 && memcmp(s, "<|im_end|>", 10) == 0);
    const sc_gguf_tensor *t = sc_gguf_tensor_find(&g, "token_embd.weight");
    cr_assert(t && t->type == SC_GGML_Q8_0 && t->ne[0] == 576 && t->ne[1] == 49152);
    sc_gguf_close(&g);
}

/* A GGUF with only a SentencePiece vocabulary: tokens[i] with scores[i]
 * (NULL: no scores key), tokenizer.ggml.model = model, optional
 * add_space_prefix (-1: key absent). */
static buf spm_image(const char *model, const char *const *toks, const float *scores, int n, int space_prefix,
                     int scores_as_i32) {
    buf b = {0};
    hdr(&b, 3, 0, 2 + (scores != NULL) + (space_prefix >= 0));
    str(&b, "tokenizer.ggml.model"); u32(&b, SC_GGUF_STRING); str(&b, model);
    str(&b, "tokenizer.ggml.tokens"); u32(&b, SC_GGUF_ARRAY); u32(&b, SC_GGUF_STRING); u64(&b, (uint64_t)n);
    for (int i = 0; i < n; i++) str(&b, toks[i]);
    if (scores) {
        str(&b, "tokenizer.ggml.scores"); u32(&b, SC_GGUF_ARRAY);
        u32(&b, scores_as_i32 ? SC_GGUF_I32 : SC_GGUF_F32); u64(&b, (uint64_t)n);
        put(&b, scores, 4 * (size_t)n);
    }
    if (space_prefix >= 0) {
        str(&b, "tokenizer.ggml.add_space_prefix"); u32(&b, SC_GGUF_BOOL);
        uint8_t v = (uint8_t)space_prefix;
        put(&b, &v, 1);
    }
    return b;
}

static void spm_ids(const char *const *toks, const float *sc, int n, int space_prefix, const char *text, const int32_t *want,
                    int nw) {
    buf b = spm_image("llama", toks, sc, n, space_prefix, 0);
    sc_gguf g;
    sc_error e;
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "spm.gguf", &e), SC_OK, "%s", e.msg);
    sc_spm *t;
    cr_assert_eq(sc_spm_from_gguf(&t, &g, &e), SC_OK, "%s", e.msg);
    int32_t *ids;
    int k;
    cr_assert_eq(sc_spm_encode(t, text, strlen(text), 0, &ids, &k, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(k, nw, "'%s': %d ids, want %d", text, k, nw);
    for (int i = 0; i < k; i++) cr_assert_eq(ids[i], want[i], "'%s' id %d: %d vs %d", text, i, ids[i], want[i]);
    sc_free(ids);
    sc_spm_free(t);
    sc_gguf_close(&g);
    free(b.p);
}

/* highest score merges first, leftmost on ties, "▁" for spaces (and as the
 * prefix when add_space_prefix), byte fallback, the unknown token for bytes
 * without a <0xXX> token */
Test(gguf_reader, spm_merge_order_on_a_small_vocabulary) {
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab",
                          "aa", "<0x63>"};
    float sc[] = {0, 0, 0, -5, -5, -5, -1, -2, -3, -1, 0};
    int n = (int)(sizeof toks / sizeof *toks);
    spm_ids(toks, sc, n, -1, "ab", (int32_t[]){8}, 1);          /* ▁a (-1) before ab (-2), then ▁ab */
    spm_ids(toks, sc, n, -1, "b a", (int32_t[]){3, 5, 6}, 3);   /* ▁ b ▁a */
    spm_ids(toks, sc, n, 0, "ab", (int32_t[]){7}, 1);           /* no prefix: ab */
    spm_ids(toks, sc, n, 0, "aaa", (int32_t[]){9, 4}, 2);       /* tie: the left pair merges */
    spm_ids(toks, sc, n, 0, "c", (int32_t[]){10}, 1);           /* byte fallback */
    spm_ids(toks, sc, n, 0, "d", (int32_t[]){0}, 1);            /* no <0x64>: unknown */
    spm_ids(toks, sc, n, 0, "", (int32_t[]){0}, 0);
}

Test(gguf_reader, spm_rejects_bad_vocabularies) {
    const char *toks[] = {"<unk>", "a"};
    float sc[] = {0, -1};
    sc_error e;
    sc_gguf g;
    sc_spm *t;
    buf b = spm_image("llama", toks, sc, 2, -1, 1); /* scores stored as i32 */
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "spm.gguf", &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_spm_from_gguf(&t, &g, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "tokenizer.ggml.scores") && strstr(e.msg, "spm.gguf"), "%s", e.msg);
    sc_gguf_close(&g);
    free(b.p);
    b = spm_image("gpt2", toks, sc, 2, -1, 0);
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "spm.gguf", &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_spm_from_gguf(&t, &g, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "tokenizer.ggml.model") && strstr(e.msg, "gpt2"), "%s", e.msg);
    sc_gguf_close(&g);
    free(b.p);
    const char *nounk[] = {"a", "b"}; /* no byte tokens and no unknown token */
    b = spm_image("llama", nounk, sc, 2, -1, 0);
    cr_assert_eq(sc_gguf_parse(&g, b.p, b.n, "spm.gguf", &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_spm_from_gguf(&t, &g, &e), SC_OK, "%s", e.msg); /* unknown id defaults to 0 */
    sc_spm_free(t);
    sc_gguf_close(&g);
    free(b.p);
}
