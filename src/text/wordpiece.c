/* WordPiece tokenizer; the pipeline is described in wordpiece.h. Character
 * classes come from utf8proc (categories, NFD, case mapping), never from
 * hand-made tables. */
#include "text/wordpiece.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"

enum { MAX_SPECIALS = 64 };

struct sc_wordpiece {
    sc_wordpiece_opts o;
    int n;              /* vocabulary size (max id + 1) */
    char **tok;         /* id -> token string (NULL for holes in the id range) */
    int32_t *table;     /* open addressing: id or -1 */
    uint32_t mask;
    int unk, cls, sep, pad;
    int n_special;
    char *special[MAX_SPECIALS]; /* matched on the raw text */
    int special_id[MAX_SPECIALS];
};

void sc_tokens_free(sc_tokens *t) {
    sc_free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

/* ---- Unicode classes, as tokenizers' bert normaliser/pre-tokenizer ----
 * The rule is over utf8proc's categories. tokenizers uses older Unicode
 * tables (and never drops unassigned code points), so characters whose class,
 * non-spacing-mark status, lowercase or NFD differs are listed in generated
 * tables that take precedence (tests/test_text_wordpiece.c checks every code
 * point against tokenizers). */
#include "text/bert_unicode_compat.h"

static int range_class(const sc_bert_range *r, int n, int32_t c) {
    if (c < r[0].lo) return 0;
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return r[mid].cls;
    }
    return 0;
}

static int compat_class(int32_t c) { return range_class(sc_bert_compat, SC_BERT_COMPAT_N, c); }

/* Whether strip_accents drops c (a character NFD leaves alone): tokenizers
 * drops non-spacing marks (Mn) by its own, older tables. */
int sc_unicode_is_bert_mark(int32_t c) {
    int mc = range_class(sc_bert_mark_compat, SC_BERT_MARK_COMPAT_N, c);
    if (mc) return mc == SC_BERT_MARK;
    return utf8proc_category(c) == UTF8PROC_CATEGORY_MN;
}

/* Lowercase as tokenizers (single characters; U+0130 is the caller's). */
static int32_t bert_tolower(int32_t c) {
    int lo = 0, hi = SC_BERT_LOWER_COMPAT_N - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < sc_bert_lower_compat[mid].c) hi = mid - 1;
        else if (c > sc_bert_lower_compat[mid].c) lo = mid + 1;
        else return sc_bert_lower_compat[mid].lower;
    }
    return utf8proc_tolower(c);
}

static int bert_nfd_keep(int32_t c) {
    for (int i = 0; i < SC_BERT_NFD_KEEP_N; i++)
        if (sc_bert_nfd_keep[i] == c) return 1;
    return 0;
}

int sc_unicode_is_bert_whitespace(int32_t c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return 1;
    if ((c >= 0x09 && c <= 0x0d) || c == 0x85) return 1; /* Rust char::is_whitespace */
    int cc = compat_class(c);
    if (cc) return cc == SC_BERT_SPACE;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

int sc_unicode_is_bert_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    int cc = compat_class(c);
    if (cc) return cc == SC_BERT_DROP;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

int sc_unicode_is_bert_punct(int32_t c) {
    if (c < 128) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    int cc = compat_class(c);
    if (cc) return cc == SC_BERT_PUNCT;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int sc_unicode_is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ---- vocabulary hash ---- */

static uint32_t hash_bytes(const char *s, size_t n) { return (uint32_t)XXH3_64bits(s, n); }

static int vocab_lookup(const sc_wordpiece *wp, const char *s, size_t n) {
    for (uint32_t h = hash_bytes(s, n) & wp->mask;; h = (h + 1) & wp->mask) {
        int32_t id = wp->table[h];
        if (id < 0) return -1;
        const char *t = wp->tok[id];
        if (strlen(t) == n && memcmp(t, s, n) == 0) return id;
    }
}

int sc_wordpiece_id(const sc_wordpiece *wp, const char *token) { return vocab_lookup(wp, token, strlen(token)); }
const char *sc_wordpiece_token(const sc_wordpiece *wp, int id) { return id >= 0 && id < wp->n ? wp->tok[id] : NULL; }
int sc_wordpiece_vocab_size(const sc_wordpiece *wp) { return wp->n; }
int sc_wordpiece_pad_id(const sc_wordpiece *wp) { return wp->pad; }

void sc_wordpiece_free(sc_wordpiece *wp) {
    if (!wp) return;
    if (wp->tok)
        for (int i = 0; i < wp->n; i++) sc_free(wp->tok[i]);
    sc_free(wp->tok);
    sc_free(wp->table);
    for (int i = 0; i < wp->n_special; i++) sc_free(wp->special[i]);
    sc_free(wp);
}

static sc_wordpiece *wp_new(int n, const sc_wordpiece_opts *o) {
    sc_wordpiece *wp = sc_calloc(1, sizeof *wp);
    if (!wp) return NULL;
    wp->o = *o;
    if (wp->o.max_input_chars_per_word <= 0) wp->o.max_input_chars_per_word = 100;
    if (wp->o.strip_accents < 0) wp->o.strip_accents = wp->o.lowercase;
    wp->n = n;
    wp->tok = sc_calloc(n ? (size_t)n : 1, sizeof *wp->tok);
    if (!wp->tok) {
        sc_free(wp);
        return NULL;
    }
    wp->unk = wp->cls = wp->sep = wp->pad = -1;
    return wp;
}

/* Fill the hash table once every id has its string; duplicates are errors. */
static int build_table(sc_wordpiece *wp, const char *name, sc_error *err) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)wp->n + 16) cap <<= 1;
    wp->table = sc_malloc((size_t)cap * sizeof *wp->table);
    if (!wp->table) return sc_fail(err, SC_ENOMEM, "%s: out of memory for the vocabulary", name);
    memset(wp->table, 0xff, (size_t)cap * sizeof *wp->table);
    wp->mask = cap - 1;
    for (int id = 0; id < wp->n; id++) {
        const char *t = wp->tok[id];
        if (!t) continue;
        size_t n = strlen(t);
        uint32_t h = hash_bytes(t, n) & wp->mask;
        for (; wp->table[h] >= 0; h = (h + 1) & wp->mask)
            if (strcmp(wp->tok[wp->table[h]], t) == 0)
                return sc_fail(err, SC_EFORMAT, "%s: token '%s' appears twice (ids %d and %d)", name, t, wp->table[h], id);
        wp->table[h] = id;
    }
    return SC_OK;
}

static int add_special(sc_wordpiece *wp, const char *s, int id) {
    if (wp->n_special >= MAX_SPECIALS || !s[0]) return 0;
    for (int i = 0; i < wp->n_special; i++)
        if (strcmp(wp->special[i], s) == 0) return 0;
    wp->special[wp->n_special] = sc_strdup(s);
    if (!wp->special[wp->n_special]) return -1;
    wp->special_id[wp->n_special++] = id;
    return 0;
}

/* Resolve [UNK]/[CLS]/[SEP]/[PAD] by name when not set already. */
static int finish(sc_wordpiece *wp, const char *unk_name, const char *name, sc_error *err) {
    int rc = build_table(wp, name, err);
    if (rc != SC_OK) return rc;
    wp->unk = sc_wordpiece_id(wp, unk_name);
    if (wp->unk < 0) return sc_fail(err, SC_EFORMAT, "%s: the vocabulary has no unknown token '%s'", name, unk_name);
    if (wp->cls < 0) wp->cls = sc_wordpiece_id(wp, "[CLS]");
    if (wp->sep < 0) wp->sep = sc_wordpiece_id(wp, "[SEP]");
    if (wp->cls < 0 || wp->sep < 0)
        return sc_fail(err, SC_EFORMAT, "%s: the vocabulary has no '[CLS]' or no '[SEP]' token", name);
    if (wp->pad < 0) wp->pad = sc_wordpiece_id(wp, "[PAD]");
    if (wp->pad < 0) wp->pad = 0;
    return SC_OK;
}

int sc_wordpiece_from_vocab_buf(sc_wordpiece **out, const char *buf, size_t len, const char *name,
                                const sc_wordpiece_opts *opts, sc_error *err) {
    *out = NULL;
    int n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') n++;
    if (len && buf[len - 1] != '\n') n++;
    if (n == 0) return sc_fail(err, SC_EFORMAT, "%s: empty vocabulary", name);
    sc_wordpiece *wp = wp_new(n, opts);
    if (!wp) return sc_fail(err, SC_ENOMEM, "%s: out of memory", name);
    size_t at = 0;
    for (int id = 0; id < n; id++) {
        size_t e = at;
        while (e < len && buf[e] != '\n') e++;
        size_t l = e - at;
        if (l && buf[at + l - 1] == '\r') l--;
        if (memchr(buf + at, '\0', l)) {
            sc_wordpiece_free(wp);
            return sc_fail(err, SC_EFORMAT, "%s:%d: NUL byte in a token", name, id + 1);
        }
        if (l == 0) {
            sc_wordpiece_free(wp);
            return sc_fail(err, SC_EFORMAT, "%s:%d: empty token", name, id + 1);
        }
        wp->tok[id] = sc_malloc(l + 1);
        if (!wp->tok[id]) {
            sc_wordpiece_free(wp);
            return sc_fail(err, SC_ENOMEM, "%s: out of memory", name);
        }
        memcpy(wp->tok[id], buf + at, l);
        wp->tok[id][l] = '\0';
        at = e + 1;
    }
    int rc = finish(wp, "[UNK]", name, err);
    /* BERT's basic tokenizer never splits its special tokens. */
    static const char *specials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; rc == SC_OK && i < 5; i++) {
        int id = sc_wordpiece_id(wp, specials[i]);
        if (id >= 0 && add_special(wp, specials[i], id) != 0) rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", name);
    }
    if (rc != SC_OK) {
        sc_wordpiece_free(wp);
        return rc;
    }
    *out = wp;
    return SC_OK;
}

int sc_wordpiece_load_vocab(sc_wordpiece **out, const char *path, const sc_wordpiece_opts *opts, sc_error *err) {
    char *buf;
    size_t len;
    *out = NULL;
    int rc = sc_read_file(path, &buf, &len, err);
    if (rc != SC_OK) return rc;
    rc = sc_wordpiece_from_vocab_buf(out, buf, len, path, opts, err);
    sc_free(buf);
    return rc;
}

static int json_bool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

int sc_wordpiece_load_json(sc_wordpiece **out, const char *path, sc_error *err) {
    *out = NULL;
    char *buf;
    size_t len;
    int rc = sc_read_file(path, &buf, &len, err);
    if (rc != SC_OK) return rc;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    sc_free(buf);
    if (!root) return sc_fail(err, SC_EFORMAT, "%s: not valid JSON", path);
    sc_wordpiece *wp = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    sc_wordpiece_opts o = {0, 0, 0, 0, 100};
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "WordPiece") != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: model.type is %s, only WordPiece is supported", path,
                     cJSON_IsString(type) ? type->valuestring : "missing");
        goto done;
    }
    if (!cJSON_IsObject(vocab)) {
        rc = sc_fail(err, SC_EFORMAT, "%s: model.vocab is missing or not an object", path);
        goto done;
    }
    if (cJSON_IsObject(norm)) {
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive(norm, "type");
        if (!cJSON_IsString(nt) || strcmp(nt->valuestring, "BertNormalizer") != 0) {
            rc = sc_fail(err, SC_EFORMAT, "%s: normalizer.type %s is not supported (BertNormalizer is)", path,
                         cJSON_IsString(nt) ? nt->valuestring : "missing");
            goto done;
        }
        o.clean_text = json_bool(norm, "clean_text", 1);
        o.handle_chinese_chars = json_bool(norm, "handle_chinese_chars", 1);
        o.lowercase = json_bool(norm, "lowercase", 1);
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(norm, "strip_accents");
        o.strip_accents = cJSON_IsBool(sa) ? cJSON_IsTrue(sa) : -1;
    }
    if (cJSON_IsObject(pre)) {
        const cJSON *pt = cJSON_GetObjectItemCaseSensitive(pre, "type");
        if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "BertPreTokenizer") != 0) {
            rc = sc_fail(err, SC_EFORMAT, "%s: pre_tokenizer.type %s is not supported (BertPreTokenizer is)", path,
                         cJSON_IsString(pt) ? pt->valuestring : "missing");
            goto done;
        }
    }
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    if (cJSON_IsNumber(mc) && mc->valuedouble >= 1 && mc->valuedouble < 1e6) o.max_input_chars_per_word = mc->valueint;
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    if (cJSON_IsString(prefix) && strcmp(prefix->valuestring, "##") != 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: continuing_subword_prefix '%s' is not supported ('##' is)", path,
                     prefix->valuestring);
        goto done;
    }
    int max_id = -1;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e7 || !v->string) {
            rc = sc_fail(err, SC_EFORMAT, "%s: model.vocab entry '%s' has no valid id", path, v->string ? v->string : "");
            goto done;
        }
        if (v->valueint > max_id) max_id = v->valueint;
    }
    if (max_id < 0) {
        rc = sc_fail(err, SC_EFORMAT, "%s: empty vocabulary", path);
        goto done;
    }
    wp = wp_new(max_id + 1, &o);
    if (!wp) {
        rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (wp->tok[v->valueint]) {
            rc = sc_fail(err, SC_EFORMAT, "%s: id %d is given to '%s' and '%s'", path, v->valueint,
                         wp->tok[v->valueint], v->string);
            goto done;
        }
        if (!(wp->tok[v->valueint] = sc_strdup(v->string))) {
            rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    /* [CLS]/[SEP] from the post-processor's template when it has one. */
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
    const cJSON *stoks = cJSON_GetObjectItemCaseSensitive(post, "special_tokens");
    if (cJSON_IsArray(single) && cJSON_GetArraySize(single) >= 2) {
        const cJSON *first = cJSON_GetObjectItemCaseSensitive(single->child, "SpecialToken");
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1),
                                                             "SpecialToken");
        const cJSON *fi = cJSON_GetObjectItemCaseSensitive(first, "id");
        const cJSON *li = cJSON_GetObjectItemCaseSensitive(last, "id");
        const cJSON *fs = cJSON_IsString(fi) ? cJSON_GetObjectItemCaseSensitive(stoks, fi->valuestring) : NULL;
        const cJSON *ls = cJSON_IsString(li) ? cJSON_GetObjectItemCaseSensitive(stoks, li->valuestring) : NULL;
        const cJSON *fids = cJSON_GetObjectItemCaseSensitive(fs, "ids");
        const cJSON *lids = cJSON_GetObjectItemCaseSensitive(ls, "ids");
        if (cJSON_GetArraySize(fids) == 1 && cJSON_IsNumber(fids->child) && fids->child->valueint >= 0 &&
            fids->child->valueint < wp->n && cJSON_GetArraySize(lids) == 1 && cJSON_IsNumber(lids->child) &&
            lids->child->valueint >= 0 && lids->child->valueint < wp->n) {
            wp->cls = fids->child->valueint;
            wp->sep = lids->child->valueint;
        }
    }
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    rc = finish(wp, cJSON_IsString(unk) ? unk->valuestring : "[UNK]", path, err);
    if (rc != SC_OK) goto done;
    /* Added tokens that are matched before normalisation. */
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(c) || !cJSON_IsNumber(id) || id->valueint < 0 || id->valueint >= wp->n) continue;
        if (json_bool(a, "normalized", 1)) continue; /* matched after normalisation: not supported, see docs */
        if (add_special(wp, c->valuestring, id->valueint) != 0) {
            rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (rc != SC_OK) {
        sc_wordpiece_free(wp);
        return rc;
    }
    *out = wp;
    return SC_OK;
}

int sc_wordpiece_load_dir(sc_wordpiece **out, const char *dir, sc_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (sc_file_exists(path)) return sc_wordpiece_load_json(out, path, err);
    sc_wordpiece_opts o = {1, -1, 1, 1, 100};
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (sc_file_exists(path)) {
        char *buf;
        size_t len;
        int rc = sc_read_file(path, &buf, &len, err);
        if (rc != SC_OK) return rc;
        cJSON *root = cJSON_ParseWithLength(buf, len);
        sc_free(buf);
        if (!root) return sc_fail(err, SC_EFORMAT, "%s: not valid JSON", path);
        o.lowercase = json_bool(root, "do_lower_case", 1);
        o.handle_chinese_chars = json_bool(root, "tokenize_chinese_chars", 1);
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(root, "strip_accents");
        o.strip_accents = cJSON_IsBool(sa) ? cJSON_IsTrue(sa) : -1;
        cJSON_Delete(root);
    }
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (!sc_file_exists(path))
        return sc_fail(err, SC_ENOTFOUND, "%s: neither tokenizer.json nor vocab.txt is there", dir);
    return sc_wordpiece_load_vocab(out, path, &o, err);
}

/* ---- encoding ---- */

typedef struct cpbuf {
    int32_t *c;
    size_t n, cap;
} cpbuf;

static int cp_push(cpbuf *b, int32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        int32_t *p = sc_realloc(b->c, cap * sizeof *p);
        if (!p) return -1;
        b->c = p;
        b->cap = cap;
    }
    b->c[b->n++] = c;
    return 0;
}

static int tok_push(sc_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        int32_t *p = sc_realloc(t->ids, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return 0;
}

/* Normalised code points of one piece of raw text (BertNormalizer). */
static int normalize(const sc_wordpiece *wp, const uint8_t *s, size_t len, cpbuf *out) {
    const sc_wordpiece_opts *o = &wp->o;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) { /* invalid UTF-8: one byte becomes U+FFFD */
            c = 0xFFFD;
            k = 1;
        }
        i += (size_t)k;
        if (o->clean_text) {
            if (c == 0 || c == 0xFFFD || sc_unicode_is_bert_control(c)) continue;
            if (sc_unicode_is_bert_whitespace(c)) c = ' ';
        }
        int cjk = o->handle_chinese_chars && sc_unicode_is_cjk(c);
        if (cjk && cp_push(out, ' ')) return -1;
        utf8proc_int32_t dec[32];
        utf8proc_ssize_t nd = 1;
        dec[0] = c;
        if (o->strip_accents && !bert_nfd_keep(c)) {
            int last = 0;
            nd = utf8proc_decompose_char(c, dec, 32, UTF8PROC_DECOMPOSE, &last);
            if (nd < 0 || nd > 32) {
                dec[0] = c;
                nd = 1;
            }
        }
        for (utf8proc_ssize_t j = 0; j < nd; j++) {
            int32_t d = dec[j];
            if (o->strip_accents && sc_unicode_is_bert_mark(d)) continue;
            if (o->lowercase) {
                if (d == 0x130) { /* the one unconditional multi-character lowercase mapping */
                    if (cp_push(out, 'i') || cp_push(out, 0x307)) return -1;
                    continue;
                }
                d = bert_tolower(d);
            }
            if (cp_push(out, d)) return -1;
        }
        if (cjk && cp_push(out, ' ')) return -1;
    }
    return 0;
}

int sc_wordpiece_normalize(const sc_wordpiece *wp, const char *text, size_t len, char **out, size_t *n_out,
                           sc_error *err) {
    *out = NULL;
    *n_out = 0;
    cpbuf cb = {0};
    char *s = NULL;
    if (normalize(wp, (const uint8_t *)text, len, &cb) == 0 && (s = sc_malloc(4 * cb.n + 1))) {
        size_t n = 0;
        for (size_t i = 0; i < cb.n; i++) n += (size_t)utf8proc_encode_char(cb.c[i], (utf8proc_uint8_t *)s + n);
        s[n] = '\0';
        *out = s;
        *n_out = n;
    }
    sc_free(cb.c);
    return s ? SC_OK : sc_fail(err, SC_ENOMEM, "tokenizer: out of memory normalising %zu bytes", len);
}

/* WordPiece over one pre-token (code points w[0..nc)). */
static int wordpiece_word(const sc_wordpiece *wp, const int32_t *w, size_t nc, int limit, sc_tokens *out) {
    if (nc > (size_t)wp->o.max_input_chars_per_word) return out->n < limit ? tok_push(out, wp->unk) : 0;
    /* Words up to 128 characters use the stack; longer ones (a model with
     * max_input_chars_per_word above 128) the heap. */
    char sbytes[2 + 4 * 128 + 8];
    size_t soff[130];
    int32_t sids[130];
    char *bytes = sbytes;
    size_t *off = soff;
    int32_t *ids = sids;
    void *heap = NULL;
    if (nc > 128) {
        heap = sc_malloc(nc * (4 + 2 * sizeof(size_t) + 2 * sizeof(int32_t)) + 16 + 4 * sizeof(size_t));
        if (!heap) return -1;
        off = heap;
        ids = (int32_t *)(off + nc + 2);
        bytes = (char *)(ids + nc + 2);
    }
    size_t nb = 2; /* bytes[0..2) is room for the "##" prefix */
    for (size_t i = 0; i < nc; i++) {
        off[i] = nb;
        nb += (size_t)utf8proc_encode_char(w[i], (utf8proc_uint8_t *)bytes + nb);
    }
    off[nc] = nb;
    int n_ids = 0;
    size_t start = 0;
    while (start < nc) {
        int found = -1;
        size_t end = nc;
        for (; end > start; end--) {
            const char *p = bytes + off[start];
            size_t l = off[end] - off[start];
            if (start > 0) {
                /* write "##" just before the piece; the byte before is the
                 * previous piece's, restored after the lookup */
                char save[2] = {bytes[off[start] - 2], bytes[off[start] - 1]};
                bytes[off[start] - 2] = '#';
                bytes[off[start] - 1] = '#';
                found = vocab_lookup(wp, p - 2, l + 2);
                bytes[off[start] - 2] = save[0];
                bytes[off[start] - 1] = save[1];
            } else {
                found = vocab_lookup(wp, p, l);
            }
            if (found >= 0) break;
        }
        if (found < 0) break;
        ids[n_ids++] = found;
        start = end;
    }
    int rc = 0;
    if (start < nc) { /* a piece is not in the vocabulary: the whole word is [UNK] */
        if (out->n < limit) rc = tok_push(out, wp->unk);
    } else {
        for (int i = 0; i < n_ids && out->n < limit && rc == 0; i++) rc = tok_push(out, ids[i]);
    }
    sc_free(heap);
    return rc;
}

static int encode_piece(const sc_wordpiece *wp, const uint8_t *s, size_t len, int limit, cpbuf *cb, sc_tokens *out) {
    cb->n = 0;
    if (normalize(wp, s, len, cb)) return -1;
    size_t i = 0, n = cb->n;
    const int32_t *c = cb->c;
    while (i < n && out->n < limit) {
        if (sc_unicode_is_bert_whitespace(c[i])) {
            i++;
            continue;
        }
        if (sc_unicode_is_bert_punct(c[i])) {
            if (wordpiece_word(wp, c + i, 1, limit, out)) return -1;
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !sc_unicode_is_bert_whitespace(c[j]) && !sc_unicode_is_bert_punct(c[j])) j++;
        if (wordpiece_word(wp, c + i, j - i, limit, out)) return -1;
        i = j;
    }
    return 0;
}

/* Leftmost (then longest) special token at or after `from`; -1 if none. */
static int next_special(const sc_wordpiece *wp, const char *text, size_t len, size_t from, size_t *at) {
    int best = -1;
    size_t best_at = len, best_len = 0;
    for (int k = 0; k < wp->n_special; k++) {
        size_t sl = strlen(wp->special[k]);
        const char *p = memmem(text + from, len - from, wp->special[k], sl);
        if (!p) continue;
        size_t a = (size_t)(p - text);
        if (a < best_at || (a == best_at && sl > best_len)) {
            best = k;
            best_at = a;
            best_len = sl;
        }
    }
    *at = best_at;
    return best;
}

int sc_wordpiece_encode(const sc_wordpiece *wp, const char *text, size_t len, int max_len, sc_tokens *out,
                        sc_error *err) {
    out->n = 0;
    int limit = max_len > 0 ? (max_len < 2 ? 1 : max_len - 1) : INT_MAX - 1; /* room for [SEP] */
    cpbuf cb = {0};
    int rc = 0;
    if (tok_push(out, wp->cls)) rc = -1;
    size_t pos = 0;
    while (rc == 0 && pos < len && out->n < limit) {
        size_t at;
        int k = wp->n_special ? next_special(wp, text, len, pos, &at) : -1;
        size_t end = k >= 0 ? at : len;
        if (end > pos) rc = encode_piece(wp, (const uint8_t *)text + pos, end - pos, limit, &cb, out);
        if (rc == 0 && k >= 0) {
            if (out->n < limit) rc = tok_push(out, wp->special_id[k]);
            pos = at + strlen(wp->special[k]);
        } else {
            pos = len;
        }
    }
    if (rc == 0) rc = tok_push(out, wp->sep);
    sc_free(cb.c);
    if (rc) return sc_fail(err, SC_ENOMEM, "tokenizer: out of memory on a text of %zu bytes", len);
    return SC_OK;
}
