/* Shared tokenizer pieces; see tokutil.h. */
#include "text/tokutil.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/alloc.h"

const char *const sc_tok_eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
    "<eos>", "<turn|>", "<|tool_response>", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~[", NULL};

int sc_tok_forced_control(const char *text) {
    /* the fill-in-the-middle markers of llama.cpp's list (the EOG texts come after) */
    static const char *const fim[] = {
        "<MID>", "<PAD>", "<PRE>", "<REPO>", "<SUF>", "<fim-middle>", "<fim-pad>", "<fim-prefix>", "<fim-repo>",
        "<fim-suffix>", "<fim_middle>", "<fim_pad>", "<fim_prefix>", "<fim_suffix>", "<reponame>", "<|code_middle|>",
        "<|code_prefix|>", "<|code_suffix|>", "<|file_sep|>", "<|fim_middle|>", "<|fim_pad|>", "<|fim_prefix|>",
        "<|fim_repo|>", "<|fim_suffix|>", "<|middle|>", "<|prefix|>", "<|repo_name|>", "<|suffix|>",
        "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
        "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "[PAD]", "\xE2\x96\x81<MID>", "\xE2\x96\x81<PRE>",
        "\xE2\x96\x81<SUF>", NULL};
    if (text[0] != '<' && text[0] != '[' && text[0] != '_' && text[0] != '\xE2') return 0; /* fast path */
    for (int i = 0; sc_tok_eog_texts[i]; i++)
        if (!strcmp(text, sc_tok_eog_texts[i])) return 1;
    for (int i = 0; fim[i]; i++)
        if (!strcmp(text, fim[i])) return 1;
    return 0;
}

int sc_tok_map_put(sc_strmap *m, const char *key, size_t n, int32_t id, int replace) {
    int ins;
    int64_t i = sc_strmap_insert(m, key, n, id, &ins);
    if (i < 0) return -1;
    if (!ins && replace) m->val[i] = id;
    return 0;
}

int32_t sc_tok_map_get(const sc_strmap *m, const char *key, size_t n) {
    int64_t i = sc_strmap_find(m, key, n);
    return i < 0 ? -1 : (int32_t)m->val[i];
}

static int bg_less(const sc_bigram *a, const sc_bigram *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->l < b->l);
}

int sc_bigram_push(sc_bigram_heap *h, sc_bigram b) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        sc_bigram *np = sc_realloc(h->p, nc * sizeof *np);
        if (!np) return -1;
        h->p = np;
        h->cap = nc;
    }
    size_t i = h->n++;
    h->p[i] = b;
    while (i > 0 && bg_less(&h->p[i], &h->p[(i - 1) / 2])) {
        sc_bigram t = h->p[i];
        h->p[i] = h->p[(i - 1) / 2];
        h->p[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return 0;
}

sc_bigram sc_bigram_pop(sc_bigram_heap *h) {
    sc_bigram top = h->p[0];
    h->p[0] = h->p[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && bg_less(&h->p[l], &h->p[m])) m = l;
        if (r < h->n && bg_less(&h->p[r], &h->p[m])) m = r;
        if (m == i) break;
        sc_bigram t = h->p[i];
        h->p[i] = h->p[m];
        h->p[m] = t;
        i = m;
    }
    return top;
}

typedef struct fvec {
    sc_tok_frag *p;
    size_t n, cap;
} fvec;

static int fv_push(fvec *v, size_t off, size_t len, int32_t id) {
    if (id < 0 && len == 0) return 0;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        sc_tok_frag *np = sc_realloc(v->p, nc * sizeof *np);
        if (!np) return -1;
        v->p = np;
        v->cap = nc;
    }
    v->p[v->n++] = (sc_tok_frag){off, len, id};
    return 0;
}

int sc_tok_partition(const char *text, size_t len, const char *const *tokens, const int32_t *types,
                     const int32_t *special, int n_special, int parse_special, sc_tok_frag **out, size_t *n_out) {
    fvec cur = {0}, nxt = {0};
    int rc = fv_push(&cur, 0, len, -1);
    for (int k = 0; k < n_special && !rc; k++) {
        int32_t id = special[k];
        if (!parse_special && ((types[id] & 0xff) == 3 || (types[id] & 0xff) == 2 || (types[id] & SC_TOK_FORCED_CONTROL)))
            continue;
        const char *tok = tokens[id];
        size_t tl = strlen(tok);
        if (!tl) continue;
        nxt.n = 0;
        for (size_t i = 0; i < cur.n && !rc; i++) {
            sc_tok_frag f = cur.p[i];
            if (f.id >= 0) {
                rc = fv_push(&nxt, f.off, f.len, f.id);
                continue;
            }
            size_t at = f.off, end = f.off + f.len;
            while (!rc && at < end) {
                const char *p = memmem(text + at, end - at, tok, tl);
                if (!p) break;
                size_t pos = (size_t)(p - text);
                rc = fv_push(&nxt, at, pos - at, -1);
                if (!rc) rc = fv_push(&nxt, pos, tl, id);
                at = pos + tl;
            }
            if (!rc) rc = fv_push(&nxt, at, end - at, -1);
        }
        fvec t = cur;
        cur = nxt;
        nxt = t;
    }
    sc_free(nxt.p);
    if (rc) {
        sc_free(cur.p);
        return -1;
    }
    *out = cur.p ? cur.p : sc_malloc(sizeof(sc_tok_frag));
    *n_out = cur.n;
    return *out ? 0 : -1;
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int sc_tok_sort_special(int32_t *special, int n, const char *const *tokens) {
    /* key = (~length, id): one integer sort, no shared state (loading may run in threads) */
    uint64_t *key = sc_malloc((size_t)(n ? n : 1) * sizeof *key);
    if (!key) return -1;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(tokens[special[i]]);
        key[i] = ((uint64_t)(0xffffffffu - (uint32_t)(l > 0xffffffffu ? 0xffffffffu : l)) << 32) | (uint32_t)special[i];
    }
    qsort(key, (size_t)n, sizeof *key, u64_cmp);
    for (int i = 0; i < n; i++) special[i] = (int32_t)(key[i] & 0xffffffffu);
    sc_free(key);
    return 0;
}

int sc_tok_ids_push(sc_tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 64;
        int32_t *np = sc_realloc(v->p, (size_t)nc * sizeof *np);
        if (!np) return -1;
        v->p = np;
        v->cap = nc;
    }
    v->p[v->n++] = id;
    return 0;
}

/* Length of the valid sequence at s, or 0 when s[0] does not begin one. */
static size_t utf8_valid_len(const char *s, size_t len) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &c);
    return k > 0 ? (size_t)k : 0;
}

int sc_utf8_replace_invalid(const char *text, size_t len, char **out, size_t *n_out) {
    *out = NULL;
    *n_out = len;
    size_t i = 0, bad = 0;
    for (size_t k; i < len; i += k ? k : 1)
        if (!(k = utf8_valid_len(text + i, len - i))) bad++;
    if (!bad) return 0;
    char *s = sc_malloc(len + 2 * bad + 1); /* each bad byte grows to 3 */
    if (!s) return -1;
    size_t n = 0;
    for (size_t k, j = 0; j < len; j += k ? k : 1) {
        if ((k = utf8_valid_len(text + j, len - j))) {
            memcpy(s + n, text + j, k);
            n += k;
        } else {
            memcpy(s + n, "\xEF\xBF\xBD", 3);
            n += 3;
        }
    }
    s[n] = '\0';
    *out = s;
    *n_out = n;
    return 0;
}
