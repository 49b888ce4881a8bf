/* Byte-level BPE: pre-tokenize with the family's regexes (matches and the
 * gaps between them become words, as llama.cpp's unicode_regex_split), map
 * each word's bytes through the GPT-2 byte-to-unicode table, then merge the
 * lowest-ranked adjacent pair (leftmost on ties) until none is in the merge
 * list, through a heap of candidate pairs. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/bpe.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "text/tokutil.h"

struct sc_bpe {
    int n_vocab;
    char **tokens;  /* NUL-terminated, owned */
    int32_t *types; /* tokenizer.ggml.token_type (1 normal, 3 control, 4 user-defined) */
    sc_strmap vocab;  /* token -> id */
    int n_merges;
    sc_strmap merges; /* "a b" -> rank */
    int32_t bos, eos;
    int add_bos;           /* tokenizer.ggml.add_bos_token, default by pre-tokenizer as llama.cpp */
    pcre2_code *re[2];
    int n_re;
    char byte_enc[256][4]; /* byte -> UTF-8 of its unicode stand-in */
    int byte_dec[512];     /* code point -> byte, -1 */
    int32_t *special;      /* ids of tokens matched in text when parse_special */
    int n_special;
};

static void build_byte_map(sc_bpe *t) {
    int n = 0;
    for (int i = 0; i < 512; i++) t->byte_dec[i] = -1;
    for (int b = 0; b < 256; b++) {
        int cp;
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
        else cp = 256 + n++;
        t->byte_dec[cp] = b;
        char *o = t->byte_enc[b];
        if (cp < 0x80) { o[0] = (char)cp; o[1] = 0; }
        else { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); o[2] = 0; }
    }
}

void sc_bpe_free(sc_bpe *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab && t->tokens; i++) sc_free(t->tokens[i]);
    sc_free(t->tokens);
    sc_free(t->types);
    sc_strmap_free(&t->vocab);
    sc_strmap_free(&t->merges);
    sc_free(t->special);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    sc_free(t);
}

static char *dupn(const char *s, uint64_t n) {
    char *d = sc_malloc((size_t)n + 1);
    if (d) {
        memcpy(d, s, (size_t)n);
        d[n] = 0;
    }
    return d;
}

/* Regexes of llama.cpp's llama_vocab::impl::load for tokenizer.ggml.pre. */
static int pre_regexes(const char *pre, const char **r) {
    static const char *GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
    if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder") || !strcmp(pre, "refact") ||
        !strcmp(pre, "command-r") || !strcmp(pre, "codeshell") || !strcmp(pre, "exaone") || !strcmp(pre, "minerva-7b")) {
        r[0] = "\\p{N}";
        r[1] = GPT2;
        return 2;
    }
    if (!strcmp(pre, "llama3") || !strcmp(pre, "llama-bpe") || !strcmp(pre, "falcon3") || !strcmp(pre, "pixtral")) {
        r[0] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        return 1;
    }
    /* Qwen2: llama3's expression with digits one at a time (\p{N}, not \p{N}{1,3}) */
    if (!strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen") || !strcmp(pre, "stablelm2")) {
        r[0] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        return 1;
    }
    if (!strcmp(pre, "gpt-2") || !strcmp(pre, "default")) {
        r[0] = GPT2;
        return 1;
    }
    return 0;
}

int sc_bpe_from_gguf(sc_bpe **out, const sc_gguf *g, sc_error *err) {
    *out = NULL;
    char *model = NULL, *pre = NULL;
    int rc = sc_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc != SC_OK) return rc;
    if (strcmp(model, "gpt2") != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.model' is '%s'; only 'gpt2' (byte-level BPE) is supported",
                     g->name, model);
        sc_free(model);
        return rc;
    }
    sc_free(model);
    if (sc_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL) != SC_OK) pre = NULL;
    const char *res[2];
    int nre = pre_regexes(pre ? pre : "default", res);
    if (!nre) {
        rc = sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.pre' = '%s' is a pre-tokenizer semctr does not know", g->name, pre);
        sc_free(pre);
        return rc;
    }
    /* llama.cpp: byte-level BPE adds no BOS unless the family does (llama3) or the file says so */
    int add_bos = pre && (!strcmp(pre, "llama3") || !strcmp(pre, "llama-bpe") || !strcmp(pre, "falcon3") ||
                          !strcmp(pre, "pixtral"));
    const sc_gguf_kv *ab = sc_gguf_find(g, "tokenizer.ggml.add_bos_token");
    if (ab && ab->type == SC_GGUF_BOOL) add_bos = ab->u != 0;
    sc_free(pre);
    const sc_gguf_kv *tk = sc_gguf_find(g, "tokenizer.ggml.tokens");
    const sc_gguf_kv *mk = sc_gguf_find(g, "tokenizer.ggml.merges");
    const sc_gguf_kv *ty = sc_gguf_find(g, "tokenizer.ggml.token_type");
    if (!tk || tk->type != SC_GGUF_ARRAY || tk->arr_type != SC_GGUF_STRING || tk->arr_n == 0 || tk->arr_n > (1u << 24))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.tokens' missing or not a string array", g->name);
    if (!mk || mk->type != SC_GGUF_ARRAY || mk->arr_type != SC_GGUF_STRING || mk->arr_n > (1u << 24))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.merges' missing or not a string array", g->name);
    if (ty && (ty->type != SC_GGUF_ARRAY || ty->arr_type != SC_GGUF_I32 || ty->arr_n != tk->arr_n))
        return sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.token_type' is not an i32 array of the vocabulary's size", g->name);
    sc_bpe *t = sc_calloc(1, sizeof *t);
    if (!t) return sc_fail(err, SC_ENOMEM, "out of memory");
    t->n_vocab = (int)tk->arr_n;
    t->tokens = sc_calloc((size_t)t->n_vocab, sizeof(char *));
    t->types = sc_calloc((size_t)t->n_vocab, sizeof(int32_t));
    t->special = sc_calloc((size_t)t->n_vocab, sizeof(int32_t));
    if (!t->tokens || !t->types || !t->special) goto oom;
    for (int i = 0; i < t->n_vocab; i++) {
        const char *s;
        uint64_t n;
        sc_gguf_arr_str(tk, (uint64_t)i, &s, &n);
        if (!(t->tokens[i] = dupn(s, n))) goto oom;
        if (sc_tok_map_put(&t->vocab, s, (size_t)n, i, 0)) goto oom;
        int32_t tt = 1;
        if (ty) memcpy(&tt, ty->arr + 4 * (size_t)i, 4);
        if (sc_tok_forced_control(t->tokens[i])) tt |= SC_TOK_FORCED_CONTROL;
        t->types[i] = tt;
        if (((tt & 0xff) == 2 || (tt & 0xff) == 3 || (tt & 0xff) == 4 || (tt & SC_TOK_FORCED_CONTROL)) && n > 0)
            t->special[t->n_special++] = i;
    }
    t->n_merges = (int)mk->arr_n;
    for (int i = 0; i < t->n_merges; i++) {
        const char *s;
        uint64_t n;
        sc_gguf_arr_str(mk, (uint64_t)i, &s, &n);
        if (!memchr(s, ' ', n)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: key 'tokenizer.ggml.merges' element %d has no space", g->name, i);
            sc_bpe_free(t);
            return rc;
        }
        if (sc_tok_map_put(&t->merges, s, (size_t)n, i, 0)) goto oom;
    }
    const sc_gguf_kv *kv;
    t->bos = (kv = sc_gguf_find(g, "tokenizer.ggml.bos_token_id")) ? (int32_t)kv->u : -1;
    t->eos = (kv = sc_gguf_find(g, "tokenizer.ggml.eos_token_id")) ? (int32_t)kv->u : -1;
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    t->add_bos = add_bos && t->bos >= 0;
    build_byte_map(t);
    if (sc_tok_sort_special(t->special, t->n_special, (const char *const *)t->tokens)) goto oom;
    for (int i = 0; i < nre; i++) {
        int ec;
        PCRE2_SIZE eo;
        t->re[i] = pcre2_compile((PCRE2_SPTR)res[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        if (!t->re[i]) {
            sc_bpe_free(t);
            return sc_fail(err, SC_EINTERNAL, "pre-tokenizer regex %d does not compile (PCRE2 error %d at %zu)", i, ec, (size_t)eo);
        }
        t->n_re = i + 1;
    }
    *out = t;
    return SC_OK;
oom:
    sc_bpe_free(t);
    return sc_fail(err, SC_ENOMEM, "%s: out of memory building the tokenizer", g->name);
}

int sc_bpe_vocab_size(const sc_bpe *t) { return t->n_vocab; }
int32_t sc_bpe_eos(const sc_bpe *t) { return t->eos; }
int32_t sc_bpe_bos(const sc_bpe *t) { return t->bos; }
int sc_bpe_add_bos(const sc_bpe *t) { return t->add_bos; }
int32_t sc_bpe_find(const sc_bpe *t, const char *s) { return sc_tok_map_get(&t->vocab, s, strlen(s)); }

typedef struct sym {
    size_t off, n; /* bytes of the mapped text; n = 0 once merged away */
    int prev, next;
} sym;

/* queue the merge of symbols l and r if the merge list has it */
static int try_pair(const sc_bpe *t, const char *buf, const sym *s, int l, int r, char *key, sc_bigram_heap *h) {
    if (l < 0 || r < 0) return 0;
    size_t a = s[l].n, b = s[r].n;
    memcpy(key, buf + s[l].off, a);
    key[a] = ' ';
    memcpy(key + a + 1, buf + s[r].off, b);
    int32_t rank = sc_tok_map_get(&t->merges, key, a + b + 1);
    if (rank < 0) return 0;
    return sc_bigram_push(h, (sc_bigram){rank, l, r, a + b});
}

/* BPE of one pre-tokenized word (raw bytes): O(n log n) in its length. */
static int bpe_word(const sc_bpe *t, const char *w, size_t n, sc_tok_ids *out) {
    char *buf = sc_malloc(n * 2 + 1), *key = sc_malloc(n * 2 + 2);
    sym *s = sc_malloc((n + 1) * sizeof *s);
    sc_bigram_heap h = {0};
    int rc = 0;
    if (!buf || !key || !s) {
        rc = -1;
        goto done;
    }
    /* one initial symbol per byte (its stand-in character), as byte-level BPE */
    size_t len = 0;
    int ns = (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *e = t->byte_enc[(uint8_t)w[i]];
        size_t el = strlen(e);
        memcpy(buf + len, e, el);
        s[i] = (sym){len, el, (int)i - 1, i + 1 < n ? (int)i + 1 : -1};
        len += el;
    }
    for (int i = 0; i + 1 < ns && !rc; i++) rc = try_pair(t, buf, s, i, i + 1, key, &h);
    while (h.n && !rc) {
        sc_bigram b = sc_bigram_pop(&h);
        if (s[b.l].n == 0 || s[b.r].n == 0 || s[b.l].n + s[b.r].n != b.size || s[b.l].next != b.r) continue;
        s[b.l].n += s[b.r].n;
        s[b.r].n = 0;
        s[b.l].next = s[b.r].next;
        if (s[b.r].next >= 0) s[s[b.r].next].prev = b.l;
        rc = try_pair(t, buf, s, s[b.l].prev, b.l, key, &h);
        if (!rc) rc = try_pair(t, buf, s, b.l, s[b.l].next, key, &h);
    }
    for (int k = ns ? 0 : -1; k >= 0 && !rc; k = s[k].next) {
        int32_t id = sc_tok_map_get(&t->vocab, buf + s[k].off, s[k].n);
        if (id >= 0) {
            rc = sc_tok_ids_push(out, id);
        } else {
            /* llama.cpp: a symbol missing from the vocabulary falls back to its single characters */
            for (size_t p = s[k].off; p < s[k].off + s[k].n && !rc;) {
                size_t cl = ((uint8_t)buf[p] & 0x80) ? 2 : 1;
                int32_t cid = sc_tok_map_get(&t->vocab, buf + p, cl);
                if (cid >= 0) rc = sc_tok_ids_push(out, cid);
                p += cl;
            }
        }
    }
done:
    sc_free(buf);
    sc_free(key);
    sc_free(s);
    sc_free(h.p);
    return rc;
}

/* Fragments: (offset, length) pairs of the text, refined by each regex. */
typedef struct frag {
    size_t off, len;
} frag;

typedef struct frags {
    frag *p;
    size_t n, cap;
} frags;

static int fpush(frags *f, size_t off, size_t len) {
    if (!len) return 0;
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        frag *np = sc_realloc(f->p, nc * sizeof *np);
        if (!np) return -1;
        f->p = np;
        f->cap = nc;
    }
    f->p[f->n++] = (frag){off, len};
    return 0;
}

static int pretok_encode(const sc_bpe *t, const char *text, size_t len, sc_tok_ids *out, sc_error *err) {
    frags cur = {0}, nxt = {0};
    int rc = 0;
    if (fpush(&cur, 0, len)) return sc_fail(err, SC_ENOMEM, "out of memory");
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) { sc_free(cur.p); return sc_fail(err, SC_ENOMEM, "out of memory"); }
    for (int r = 0; r < t->n_re && !rc; r++) {
        nxt.n = 0;
        for (size_t i = 0; i < cur.n && !rc; i++) {
            const char *s = text + cur.p[i].off;
            size_t n = cur.p[i].len, at = 0, prev = 0;
            while (at < n) {
                int m = pcre2_match(t->re[r], (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
                if (m < 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                if (ov[1] == ov[0]) { at = ov[1] + 1; continue; } /* no pattern matches empty; be safe */
                if (fpush(&nxt, cur.p[i].off + prev, ov[0] - prev) || fpush(&nxt, cur.p[i].off + ov[0], ov[1] - ov[0])) rc = -1;
                prev = at = ov[1];
            }
            if (!rc && fpush(&nxt, cur.p[i].off + prev, n - prev)) rc = -1;
        }
        frags tmp = cur; cur = nxt; nxt = tmp;
    }
    for (size_t i = 0; i < cur.n && !rc; i++) rc = bpe_word(t, text + cur.p[i].off, cur.p[i].len, out);
    pcre2_match_data_free(md);
    sc_free(cur.p);
    sc_free(nxt.p);
    return rc ? sc_fail(err, SC_ENOMEM, "out of memory tokenising") : SC_OK;
}

int sc_bpe_encode(const sc_bpe *t, const char *text, size_t len, int parse_special, int32_t **out_ids, int *n_out,
                  sc_error *err) {
    *out_ids = NULL;
    *n_out = 0;
    /* invalid bytes become U+FFFD (tokutil.h), so PCRE2 can skip its check */
    char *fixed;
    if (sc_utf8_replace_invalid(text, len, &fixed, &len)) return sc_fail(err, SC_ENOMEM, "out of memory");
    if (fixed) text = fixed;
    sc_tok_ids v = {0};
    sc_tok_frag *fr;
    size_t nf;
    if (sc_tok_partition(text, len, (const char *const *)t->tokens, t->types, t->special, t->n_special, parse_special,
                         &fr, &nf)) {
        sc_free(fixed);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    int rc = SC_OK;
    for (size_t i = 0; i < nf && rc == SC_OK; i++) {
        if (fr[i].id >= 0) {
            if (sc_tok_ids_push(&v, fr[i].id)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        } else {
            rc = pretok_encode(t, text + fr[i].off, fr[i].len, &v, err);
        }
    }
    sc_free(fr);
    sc_free(fixed);
    if (rc != SC_OK) {
        sc_free(v.p);
        return rc;
    }
    *out_ids = v.p ? v.p : sc_malloc(sizeof(int32_t));
    *n_out = v.n;
    return *out_ids ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
}

int sc_bpe_piece(const sc_bpe *t, int32_t id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab) return -1;
    if ((t->types[id] & 0xff) == 3) return 0;
    const uint8_t *s = (const uint8_t *)t->tokens[id];
    size_t n = 0;
    if ((t->types[id] & 0xff) == 4) { /* user-defined tokens are stored as plain text */
        size_t l = strlen((const char *)s);
        if (l > cap) l = cap;
        memcpy(buf, s, l);
        return (int)l;
    }
    while (*s && n < cap) {
        int cp;
        if (*s < 0x80) cp = *s++;
        else if ((*s & 0xE0) == 0xC0 && s[1]) { cp = ((s[0] & 0x1F) << 6) | (s[1] & 0x3F); s += 2; }
        else { s++; continue; }
        if (cp < 512 && t->byte_dec[cp] >= 0) buf[n++] = (char)t->byte_dec[cp];
    }
    return (int)n;
}
