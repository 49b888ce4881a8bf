/* SentencePiece-style BPE, following llama.cpp's llm_tokenizer_spm_session:
 * the text (spaces escaped to "▁") starts as one symbol per UTF-8 character;
 * the adjacent pair whose concatenation is the highest-scoring vocabulary
 * token (leftmost on ties) is merged, until no pair is a token; symbols left
 * that are not tokens are written as byte tokens <0xXX>. Scores are turned
 * into integer ranks at load so the merge heap is the one byte-level BPE uses. */
#include "text/spm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "data/strmap.h"
#include "text/tokutil.h"

struct sc_spm {
    int n_vocab;
    char **tokens;   /* NUL-terminated, owned */
    int32_t *types;  /* tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
    int32_t *rank;   /* 0 = highest score; equal scores share a rank */
    sc_strmap vocab; /* token -> id; the last duplicate wins, as llama.cpp */
    int32_t *special; /* control/user-defined/unknown ids, longest text first */
    int n_special;
    int32_t byte_tok[256]; /* id of <0xXX>, or the unknown token */
    int32_t bos, eos, unk;
    int add_space_prefix, add_bos;
};

void sc_spm_free(sc_spm *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab && t->tokens; i++) sc_free(t->tokens[i]);
    sc_free(t->tokens);
    sc_free(t->types);
    sc_free(t->rank);
    sc_free(t->special);
    sc_strmap_free(&t->vocab);
    sc_free(t);
}

typedef struct score_id {
    float s;
    int32_t id;
} score_id;

static int by_score_desc(const void *a, const void *b) {
    const score_id *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t opt_id(const sc_gguf *g, const char *key, int32_t dflt, int n_vocab) {
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    int64_t v = kv ? (int64_t)kv->u : dflt;
    return v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

static int opt_bool(const sc_gguf *g, const char *key, int dflt) {
    const sc_gguf_kv *kv = sc_gguf_find(g, key);
    return kv && kv->type == SC_GGUF_BOOL ? kv->u != 0 : dflt;
}

int sc_spm_from_gguf(sc_spm **out, const sc_gguf *g, sc_error *err) {
    *out = NULL;
    char *model = NULL;
    int rc = sc_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc != SC_OK) return rc;
    if (strcmp(model, "llama") != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.model' is '%s', not 'llama' (SentencePiece BPE)", g->name,
                     model);
        sc_free(model);
        return rc;
    }
    sc_free(model);
    const sc_gguf_kv *tk = sc_gguf_find(g, "tokenizer.ggml.tokens");
    const sc_gguf_kv *sk = sc_gguf_find(g, "tokenizer.ggml.scores");
    const sc_gguf_kv *ty = sc_gguf_find(g, "tokenizer.ggml.token_type");
    if (!tk || tk->type != SC_GGUF_ARRAY || tk->arr_type != SC_GGUF_STRING || tk->arr_n == 0 || tk->arr_n > (1u << 24))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.tokens' missing or not a string array", g->name);
    if (sk && (sk->type != SC_GGUF_ARRAY || sk->arr_type != SC_GGUF_F32 || sk->arr_n != tk->arr_n))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.scores' is not an f32 array of the vocabulary's size", g->name);
    if (ty && (ty->type != SC_GGUF_ARRAY || ty->arr_type != SC_GGUF_I32 || ty->arr_n != tk->arr_n))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.token_type' is not an i32 array of the vocabulary's size", g->name);
    sc_spm *t = sc_calloc(1, sizeof *t);
    if (!t) return sc_fail(err, SC_ENOMEM, "out of memory");
    int V = t->n_vocab = (int)tk->arr_n;
    t->tokens = sc_calloc((size_t)V, sizeof(char *));
    t->types = sc_calloc((size_t)V, sizeof(int32_t));
    t->rank = sc_calloc((size_t)V, sizeof(int32_t));
    t->special = sc_calloc((size_t)V, sizeof(int32_t));
    score_id *si = sc_malloc((size_t)V * sizeof *si);
    if (!t->tokens || !t->types || !t->rank || !t->special || !si) goto oom;
    for (int i = 0; i < V; i++) {
        const char *s;
        uint64_t n;
        sc_gguf_arr_str(tk, (uint64_t)i, &s, &n);
        char empty[32];
        if (n == 0) { /* llama.cpp renames empty tokens so they never match */
            n = (uint64_t)snprintf(empty, sizeof empty, "[EMPTY_%d]", i);
            s = empty;
        }
        if (!(t->tokens[i] = sc_malloc((size_t)n + 1))) goto oom;
        memcpy(t->tokens[i], s, (size_t)n);
        t->tokens[i][n] = 0;
        if (sc_tok_map_put(&t->vocab, s, (size_t)n, i, 1)) goto oom;
        int32_t tt = 1;
        if (ty) memcpy(&tt, ty->arr + 4 * (size_t)i, 4);
        if (sc_tok_forced_control(t->tokens[i])) tt |= SC_TOK_FORCED_CONTROL;
        t->types[i] = tt;
        if ((tt & 0xff) == 2 || (tt & 0xff) == 3 || (tt & 0xff) == 4 || (tt & SC_TOK_FORCED_CONTROL))
            t->special[t->n_special++] = i;
        float sc = 0;
        if (sk) memcpy(&sc, sk->arr + 4 * (size_t)i, 4);
        si[i] = (score_id){sc, i};
    }
    qsort(si, (size_t)V, sizeof *si, by_score_desc);
    for (int i = 0, r = 0; i < V; i++) {
        if (i > 0 && si[i].s != si[i - 1].s) r = i;
        t->rank[si[i].id] = r;
    }
    sc_free(si);
    si = NULL;
    if (sc_tok_sort_special(t->special, t->n_special, (const char *const *)t->tokens)) goto oom;
    /* llama.cpp's defaults for this tokenizer kind, then the file's keys */
    t->bos = opt_id(g, "tokenizer.ggml.bos_token_id", 1, V);
    t->eos = opt_id(g, "tokenizer.ggml.eos_token_id", 2, V);
    t->unk = opt_id(g, "tokenizer.ggml.unknown_token_id", 0, V);
    t->add_space_prefix = opt_bool(g, "tokenizer.ggml.add_space_prefix", 1);
    t->add_bos = opt_bool(g, "tokenizer.ggml.add_bos_token", 1);
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        t->byte_tok[b] = sc_tok_map_get(&t->vocab, hex, 6);
        if (t->byte_tok[b] < 0) t->byte_tok[b] = t->unk;
        if (t->byte_tok[b] < 0) {
            rc = sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.tokens' has no byte token %s and no unknown token",
                         g->name, hex);
            sc_spm_free(t);
            return rc;
        }
    }
    *out = t;
    return SC_OK;
oom:
    sc_free(si);
    sc_spm_free(t);
    return sc_fail(err, SC_ENOMEM, "%s: out of memory building the tokenizer", g->name);
}

int sc_spm_vocab_size(const sc_spm *t) { return t->n_vocab; }
int32_t sc_spm_bos(const sc_spm *t) { return t->bos; }
int32_t sc_spm_eos(const sc_spm *t) { return t->eos; }
int sc_spm_add_bos(const sc_spm *t) { return t->add_bos; }
int32_t sc_spm_find(const sc_spm *t, const char *s) { return sc_tok_map_get(&t->vocab, s, strlen(s)); }

typedef struct sym {
    size_t off, n; /* bytes of the escaped text; n = 0 once merged away */
    int prev, next;
} sym;

/* queue the merge of symbols l and r if their concatenation is a token */
static int try_pair(const sc_spm *t, const char *buf, const sym *s, int l, int r, sc_bigram_heap *h) {
    if (l < 0 || r < 0) return 0;
    size_t n = s[l].n + s[r].n; /* adjacent symbols are contiguous in buf */
    int32_t id = sc_tok_map_get(&t->vocab, buf + s[l].off, n);
    if (id < 0) return 0;
    return sc_bigram_push(h, (sc_bigram){t->rank[id], l, r, n});
}

/* One raw fragment, already escaped: llama.cpp's llm_tokenizer_spm_session. */
static int spm_fragment(const sc_spm *t, const char *buf, size_t len, sc_tok_ids *out) {
    if (!len) return 0;
    sym *s = sc_malloc(len * sizeof *s);
    sc_bigram_heap h = {0};
    int rc = 0;
    if (!s) return -1;
    /* one symbol per UTF-8 character; the length comes from the lead byte
     * alone (sc_spm_encode has made the text valid UTF-8) */
    static const uint8_t ulen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    int ns = 0;
    for (size_t off = 0; off < len; ns++) {
        size_t n = ulen[(uint8_t)buf[off] >> 4];
        if (n > len - off) n = len - off;
        s[ns] = (sym){off, n, ns - 1, off + n == len ? -1 : ns + 1};
        off += n;
    }
    for (int i = 1; i < ns && !rc; i++) rc = try_pair(t, buf, s, i - 1, i, &h);
    while (h.n && !rc) {
        sc_bigram b = sc_bigram_pop(&h);
        sym *l = &s[b.l], *r = &s[b.r];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.l;
        rc = try_pair(t, buf, s, l->prev, b.l, &h);
        if (!rc) rc = try_pair(t, buf, s, b.l, l->next, &h);
    }
    for (int k = 0; k >= 0 && !rc; k = s[k].next) {
        int32_t id = sc_tok_map_get(&t->vocab, buf + s[k].off, s[k].n);
        if (id >= 0) {
            rc = sc_tok_ids_push(out, id);
        } else { /* byte fallback */
            for (size_t j = 0; j < s[k].n && !rc; j++) rc = sc_tok_ids_push(out, t->byte_tok[(uint8_t)buf[s[k].off + j]]);
        }
    }
    sc_free(s);
    sc_free(h.p);
    return rc;
}

int sc_spm_encode(const sc_spm *t, const char *text, size_t len, int parse_special, int32_t **out_ids, int *n_out,
                  sc_error *err) {
    *out_ids = NULL;
    *n_out = 0;
    /* invalid bytes become U+FFFD (tokutil.h), not byte tokens */
    char *fixed;
    if (sc_utf8_replace_invalid(text, len, &fixed, &len)) return sc_fail(err, SC_ENOMEM, "out of memory");
    if (fixed) text = fixed;
    sc_tok_frag *fr;
    size_t nf;
    if (sc_tok_partition(text, len, (const char *const *)t->tokens, t->types, t->special, t->n_special, parse_special,
                         &fr, &nf)) {
        sc_free(fixed);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    sc_tok_ids v = {0};
    int rc = 0, prev_special = 1; /* the first fragment counts as after a special token */
    char *buf = NULL;
    for (size_t i = 0; i < nf && !rc; i++) {
        if (fr[i].id >= 0) {
            rc = sc_tok_ids_push(&v, fr[i].id);
            prev_special = 1;
            continue;
        }
        /* escape: optional leading space, every ' ' -> U+2581 (3 bytes) */
        const char *p = text + fr[i].off;
        size_t n = fr[i].len, k = 0;
        sc_free(buf);
        if (!(buf = sc_malloc(3 * (n + 1)))) { rc = -1; break; }
        if (t->add_space_prefix && prev_special) { memcpy(buf, "\xE2\x96\x81", 3); k = 3; }
        for (size_t j = 0; j < n; j++) {
            if (p[j] == ' ') { memcpy(buf + k, "\xE2\x96\x81", 3); k += 3; }
            else buf[k++] = p[j];
        }
        rc = spm_fragment(t, buf, k, &v);
        prev_special = 0;
    }
    sc_free(buf);
    sc_free(fr);
    sc_free(fixed);
    if (rc) {
        sc_free(v.p);
        return sc_fail(err, SC_ENOMEM, "out of memory tokenising %zu bytes", len);
    }
    *out_ids = v.p ? v.p : sc_malloc(sizeof(int32_t));
    *n_out = v.n;
    return *out_ids ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
}

int sc_spm_piece(const sc_spm *t, int32_t id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return -1;
    const char *s = t->tokens[id];
    size_t n = 0;
    switch (t->types[id] & 0xff) {
    case 4: /* user-defined: the text as is */
        n = strlen(s);
        if (n > cap) n = cap;
        memcpy(buf, s, n);
        return (int)n;
    case 1: /* normal: "▁" -> ' ' */
        while (*s && n < cap) {
            if (!strncmp(s, "\xE2\x96\x81", 3)) { buf[n++] = ' '; s += 3; }
            else buf[n++] = *s++;
        }
        return (int)n;
    case 6: /* byte: <0xXX> */
        if (cap < 1 || strlen(s) != 6) return 0;
        buf[0] = (char)strtol(s + 3, NULL, 16);
        return 1;
    default: /* control, unknown, unused */
        return 0;
    }
}
