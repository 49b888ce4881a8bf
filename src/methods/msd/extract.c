/* Knowledge extraction with a teacher LLM; see extract.h. */
#include "methods/msd/extract.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "data/dataset.h"
#include "data/entity.h"
#include "data/schema.h"
#include "data/strmap.h"
#include "text/chat.h"
#include "text/template.h"


char *sc_tsv_escape(const char *s) {
    sc_strbuf b = {0};
    sc_strbuf_add(&b, "", 0);
    for (; *s; s++) {
        switch (*s) {
        case '\t': sc_strbuf_str(&b, "\\t"); break;
        case '\n': sc_strbuf_str(&b, "\\n"); break;
        case '\r': sc_strbuf_str(&b, "\\r"); break;
        case '\\': sc_strbuf_str(&b, "\\\\"); break;
        default: sc_strbuf_add(&b, s, 1);
        }
    }
    if (b.oom) {
        sc_free(b.s);
        return NULL;
    }
    return b.s;
}

int sc_tsv_unescape(const char *s, size_t n, char **out) {
    sc_strbuf b = {0};
    sc_strbuf_add(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            sc_strbuf_add(&b, s + i, 1);
            continue;
        }
        char c = i + 1 < n ? s[++i] : 0;
        const char *r = c == 't' ? "\t" : c == 'n' ? "\n" : c == 'r' ? "\r" : c == '\\' ? "\\" : NULL;
        if (!r) {
            sc_free(b.s);
            *out = NULL;
            return -1;
        }
        sc_strbuf_add(&b, r, 1);
    }
    *out = b.oom ? (sc_free(b.s), NULL) : b.s;
    return *out ? 0 : -2;
}

/* ---- answer parsing ---- */

/* Value of field f in the answer lines of text (the rendered prompt): a line
 * of the prompt's format copied back as the answer is not knowledge. */
static int copied_from(const char *prompt, const char *field, const char *v, size_t vl) {
    size_t fl = strlen(field);
    for (const char *p = prompt; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncasecmp(p, field, fl) || p[fl] != ':') continue;
        const char *q = p + fl + 1;
        while (*q == ' ') q++;
        const char *e = strchr(q, '\n');
        size_t ql = e ? (size_t)(e - q) : strlen(q);
        while (ql && isspace((unsigned char)q[ql - 1])) ql--;
        if (ql == vl && !strncasecmp(q, v, vl)) return 1;
    }
    return 0;
}

int sc_extract_parse(const char *answer, const char *const *fields, int n_fields, int truncated, char **out) {
    return sc_extract_parse_against(answer, NULL, fields, n_fields, truncated, out);
}

int sc_extract_parse_against(const char *answer, const char *prompt, const char *const *fields, int n_fields, int truncated,
                             char **out) {
    const char *val[64] = {0};
    size_t vlen[64] = {0};
    if (n_fields > 64) n_fields = 64;
    int kept = 0;
    for (const char *line = answer; *line;) {
        const char *eol = strchr(line, '\n');
        int complete = eol != NULL;
        if (!eol) eol = line + strlen(line);
        if (complete || !truncated) {
            const char *p = line;
            /* list markers and emphasis: "- ", "* ", "1. ", "**" */
            while (p < eol && (isspace((unsigned char)*p) || *p == '-' || *p == '*' || *p == '#' || isdigit((unsigned char)*p) ||
                               (*p == '.' && p > line && isdigit((unsigned char)p[-1]))))
                p++;
            for (int f = 0; f < n_fields; f++) {
                size_t fl = strlen(fields[f]);
                if ((size_t)(eol - p) <= fl || strncasecmp(p, fields[f], fl)) continue;
                const char *q = p + fl;
                while (q < eol && *q == '*') q++;
                if (q >= eol || *q != ':') continue;
                q++;
                while (q < eol && (*q == '*' || isspace((unsigned char)*q))) q++;
                const char *e = eol;
                while (e > q && (isspace((unsigned char)e[-1]) || e[-1] == '*' || e[-1] == ',' || e[-1] == ';')) e--;
                /* "1) x" / "2. x": an enumeration inside the value */
                if (q + 2 < e && isdigit((unsigned char)q[0]) && (q[1] == ')' || q[1] == '.') && q[2] == ' ') q += 3;
                /* a value without a letter or a year-like number ("1", "--") is no knowledge */
                int letter = 0, digits = 0, run = 0;
                for (const char *c = q; c < e && !letter; c++) {
                    letter = isalpha((unsigned char)*c) || (unsigned char)*c >= 0x80;
                    run = isdigit((unsigned char)*c) ? run + 1 : 0;
                    if (run > digits) digits = run;
                }
                if (!letter && digits < 3) q = e;
                /* a value of only dots or ellipses is the template echoed back */
                const char *d = q;
                while (d < e && (*d == '.' || *d == ' ' || !strncmp(d, "\u2026", 3))) d += *d == '.' || *d == ' ' ? 1 : 3;
                if (d < e && !val[f] && !(prompt && copied_from(prompt, fields[f], q, (size_t)(e - q)))) {
                    val[f] = q;
                    vlen[f] = (size_t)(e - q);
                    kept++;
                }
                break;
            }
        }
        line = complete ? eol + 1 : eol;
    }
    sc_strbuf b = {0};
    sc_strbuf_add(&b, "", 0);
    for (int f = 0, first = 1; f < n_fields; f++) {
        if (!val[f]) continue;
        if (!first) sc_strbuf_str(&b, "\n");
        first = 0;
        sc_strbuf_str(&b, fields[f]);
        sc_strbuf_str(&b, ": ");
        sc_strbuf_add(&b, val[f], vlen[f]);
    }
    *out = b.oom ? (sc_free(b.s), NULL) : b.s;
    return kept;
}

/* ---- user histories from the train split ---- */

typedef struct history {
    sc_schema *schema;
    sc_strmap users;   /* user key -> index */
    int32_t *ring;     /* (n_users, K) title string indices, ring buffers */
    int32_t *count;    /* (n_users) items seen (the ring holds the last K) */
    int K, text_t;
} history;

static void history_free(history *h) {
    sc_schema_free(h->schema);
    sc_strmap_free(&h->users);
    sc_free(h->ring);
    sc_free(h->count);
}

static int history_load(history *h, const char *data_dir, const char *key_field, const char *column, int K, sc_error *err) {
    memset(h, 0, sizeof *h);
    sc_strmap_init(&h->users);
    h->K = K;
    int rc = sc_schema_load(&h->schema, data_dir, err);
    if (rc) return rc;
    int f = sc_schema_field_index(h->schema, key_field);
    h->text_t = sc_schema_text_index(h->schema, column);
    if (f < 0) return sc_fail(err, SC_ENOTFOUND, "%s: the dataset has no field '%s' (the entity's key)", data_dir, key_field);
    if (h->text_t < 0)
        return sc_fail(err, SC_ENOTFOUND, "%s: the dataset has no text column '%s' (extract.history_column)", data_dir, column);
    char path[4200];
    snprintf(path, sizeof path, "%s/train.scd", data_dir);
    sc_dataset ds;
    if ((rc = sc_dataset_open(&ds, path, err))) return rc;
    int st = -1;
    for (int t = 0; t < sc_dataset_n_text(&ds); t++)
        if (!strcmp(sc_dataset_text_name(&ds, t), column)) st = t;
    if (st < 0 || !ds.ids[f]) {
        sc_dataset_close(&ds);
        return sc_fail(err, SC_EFORMAT, "%s: no id column '%s' or text column '%s'", path, key_field, column);
    }
    const int32_t *uid = ds.ids[f], *title = sc_dataset_text(&ds, st);
    int W = ds.fields[f].width;
    int64_t cap = 0;
    /* rows are in time order within the split (prepare sorts a time split), so
     * the last K rows of a user are the most recent */
    for (int64_t r = 0; r < ds.n_rows && rc == SC_OK; r++) {
        const char *key = sc_schema_id_string(h->schema, f, uid[r * W]);
        if (!key || title[r] < 0) continue;
        int ins;
        int64_t u = sc_strmap_insert(&h->users, key, strlen(key), 0, &ins);
        if (u < 0) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        else if (u >= cap) {
            int64_t nc = cap ? cap * 2 : 1024;
            int32_t *nr = sc_realloc(h->ring, (size_t)(nc * (K ? K : 1)) * sizeof(int32_t));
            if (nr) h->ring = nr;
            int32_t *nn = sc_realloc(h->count, (size_t)nc * sizeof(int32_t));
            if (nn) h->count = nn;
            if (!nr || !nn) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            else {
                memset(h->count + cap, 0, (size_t)(nc - cap) * sizeof(int32_t));
                cap = nc;
            }
        }
        if (rc == SC_OK && K > 0) {
            h->ring[u * K + h->count[u] % K] = title[r];
            h->count[u]++;
        }
    }
    sc_dataset_close(&ds);
    return rc;
}

/* Titles of the user's last K train items, most recent first, "; "-joined. */
static void history_text(const history *h, const char *key, sc_strbuf *out) {
    int64_t u = sc_strmap_find(&h->users, key, strlen(key));
    if (u < 0 || h->K == 0 || h->count[u] == 0) {
        sc_strbuf_str(out, "(none)");
        return;
    }
    int n = h->count[u] < h->K ? h->count[u] : h->K;
    for (int i = 0; i < n; i++) {
        int32_t idx = h->ring[u * h->K + ((h->count[u] - 1 - i) % h->K)];
        const char *s = sc_schema_text(h->schema, h->text_t, idx);
        if (i) sc_strbuf_str(out, "; ");
        sc_strbuf_str(out, s ? s : "?");
    }
}

/* ---- template lookup over an entity row (+ {history}) ---- */

typedef struct row_ctx {
    const sc_entity_table *t;
    int64_t row;
    const char *history; /* NULL: no {history} */
} row_ctx;

static int lookup_row(void *ctx, const char *name, size_t len, const char **val, size_t *val_len) {
    const row_ctx *r = ctx;
    if (r->history && len == 7 && !memcmp(name, "history", 7)) {
        *val = r->history;
        *val_len = strlen(r->history);
        return 0;
    }
    int c = sc_entity_table_col(r->t, name, len);
    if (c < 0) return -1;
    *val = r->t->cells[r->row * r->t->n_cols + c];
    *val_len = strlen(*val);
    return 0;
}

/* ---- meta.json ---- */

static int model_identity(const char *path, cJSON *obj, sc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sc_fail(err, SC_EIO, "%s: %s", path, strerror(errno));
    unsigned char *buf = sc_malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, 1 << 20, f);
    struct stat stt;
    int ok = fstat(fileno(f), &stt) == 0;
    fclose(f);
    if (!ok) return sc_fail(err, SC_EIO, "%s: cannot stat", path);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(buf, n));
    sc_free(buf);
    const char *base = strrchr(path, '/');
    cJSON_AddStringToObject(obj, "file", base ? base + 1 : path);
    cJSON_AddNumberToObject(obj, "bytes", (double)stt.st_size);
    cJSON_AddStringToObject(obj, "xxh3_first_mib", hex);
    return SC_OK;
}

/* Compare the stored meta with the new one; SC_EINVAL naming the first
 * differing key. */
static int meta_compare(const char *path, const cJSON *now, sc_error *err) {
    char *text;
    size_t len;
    int rc = sc_read_file(path, &text, &len, err);
    if (rc) return rc;
    cJSON *old = cJSON_ParseWithLength(text, len);
    sc_free(text);
    if (!old) return sc_fail(err, SC_EFORMAT, "%s: not valid JSON; remove it or use --force", path);
    rc = SC_OK;
    for (const cJSON *c = now->child; c && rc == SC_OK; c = c->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, c->string);
        if (!o || !cJSON_Compare(o, c, 1)) {
            char *a = o ? cJSON_PrintUnformatted(o) : NULL, *b = cJSON_PrintUnformatted(c);
            rc = sc_fail(err, SC_EINVAL,
                         "%s: this run's '%s' (%.120s) differs from the stored one (%.120s); use the same parameters "
                         "to resume, another --out, or --force to start afresh",
                         path, c->string, b ? b : "?", a ? a : "absent");
            cJSON_free(a);
            cJSON_free(b);
        }
    }
    cJSON_Delete(old);
    return rc;
}

static int write_text_file(const char *path, const char *s, sc_error *err) {
    sc_atomic_file f;
    int rc = sc_atomic_open(&f, path, err);
    if (rc) return rc;
    if ((rc = sc_atomic_write(&f, s, strlen(s), err))) {
        sc_atomic_abort(&f);
        return rc;
    }
    return sc_atomic_commit(&f, err);
}

/* ---- the output file: resume ---- */

static const char HEADER[] = "key\tstatus\ttext\n";

/* Read what an earlier run wrote: keys into done, fallbacks counted; a torn
 * last line is cut off (the file is truncated to its last newline). */
static int resume_scan(const char *path, sc_strmap *done, int64_t *n_fallback, int64_t *torn, sc_error *err) {
    if (!sc_file_exists(path)) return write_text_file(path, HEADER, err);
    char *text;
    size_t len;
    int rc = sc_read_file(path, &text, &len, err);
    if (rc) return rc;
    size_t hl = sizeof HEADER - 1;
    if (len < hl || memcmp(text, HEADER, hl)) {
        sc_free(text);
        return sc_fail(err, SC_EFORMAT, "%s: does not start with the header 'key<TAB>status<TAB>text'", path);
    }
    size_t pos = hl;
    int line = 2;
    while (pos < len && rc == SC_OK) {
        char *eol = memchr(text + pos, '\n', len - pos);
        if (!eol) { /* torn: killed mid-line */
            if (truncate(path, (off_t)pos) != 0) rc = sc_fail(err, SC_EIO, "%s: cannot cut the torn last line: %s", path, strerror(errno));
            (*torn)++;
            break;
        }
        char *t1 = memchr(text + pos, '\t', (size_t)(eol - (text + pos)));
        char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(eol - (t1 + 1))) : NULL;
        int st_ok = t2 && t2 - t1 - 1 == 2 && !memcmp(t1 + 1, "ok", 2);
        int st_fb = t2 && t2 - t1 - 1 == 8 && !memcmp(t1 + 1, "fallback", 8);
        if (!t1 || t1 == text + pos || (!st_ok && !st_fb)) {
            rc = sc_fail(err, SC_EFORMAT, "%s:%d: not 'key<TAB>ok|fallback<TAB>text'", path, line);
            break;
        }
        int ins;
        if (sc_strmap_insert(done, text + pos, (size_t)(t1 - (text + pos)), 0, &ins) < 0) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        else if (st_fb && ins) (*n_fallback)++;
        pos = (size_t)(eol - text) + 1;
        line++;
    }
    sc_free(text);
    return rc;
}

/* ---- asking ---- */

/* Every kept value the same (3+ of them): the model repeated itself. */
static int degenerate(const char *kept) {
    const char *first = NULL;
    size_t fl = 0;
    int n = 0;
    for (const char *l = kept; *l;) {
        const char *e = strchr(l, '\n');
        if (!e) e = l + strlen(l);
        const char *v = memchr(l, ':', (size_t)(e - l));
        if (v) {
            v += 2;
            size_t vl = e > v ? (size_t)(e - v) : 0;
            if (!first) first = v, fl = vl;
            else if (vl != fl || strncasecmp(first, v, vl)) return 0;
            n++;
        }
        l = *e ? e + 1 : e;
    }
    return n >= 3;
}

/* ---- entities in flight ----
 *
 * Up to --batch entities are asked at once: each step builds every busy
 * slot's next prompt, sc_generate_batch runs them together (the weights are
 * read once per token for all), and each slot takes its answer. Each slot
 * has its own KV cache and prompt cache, so an entity's text is the one it
 * gets alone (--batch 1 or any other batch size: the same texts). Lines are
 * written in the order of the table, an entity's once those before it are
 * written, so the files do not depend on --batch either, nor on how many
 * MPI ranks shared the work.
 *
 * ask: fields fills in a form: the transcript grows "Field1:" → the model's
 * line → "\nField2:" ..., each line generated up to a newline with its own
 * share of the token budget; the prompt cache makes each step cost its new
 * tokens only. The answer gets the lines as "Field: value" (values the model
 * left unfinished are dropped). ask: once generates one answer. */

typedef struct slot {
    int busy;
    int64_t r;                /* table row */
    char *user;               /* the filled template (the user turn) */
    sc_strbuf full;           /* the chat prompt (+ prefix for ask: once) */
    sc_strbuf hist;           /* {history} text */
    int attempt, field, truncated;
    uint64_t seed;            /* of this attempt */
    sc_strbuf tr;             /* ask: fields: the transcript of this attempt */
    sc_strbuf ans;            /* the answer of this attempt */
    sc_gen_params g;          /* this step's parameters */
    sc_llama_kv *kv;
    sc_gen_cache cache;
    int64_t w;                /* its place in the work list */
    sc_strbuf rec;            /* its record so far: the prompt line, NUL, the answer-log lines */
} slot;

static void slot_clear(slot *sl) {
    sc_free(sl->user);
    sc_free(sl->full.s);
    sc_free(sl->hist.s);
    sc_free(sl->tr.s);
    sc_free(sl->ans.s);
    sc_free(sl->rec.s);
    sl->user = NULL;
    memset(&sl->rec, 0, sizeof sl->rec);
    memset(&sl->full, 0, sizeof sl->full);
    memset(&sl->hist, 0, sizeof sl->hist);
    memset(&sl->tr, 0, sizeof sl->tr);
    memset(&sl->ans, 0, sizeof sl->ans);
    sl->busy = 0;
}

/* Set up the next generation step of sl: its prompt (sl->tr.s or
 * sl->full.s, returned) and parameters. */
static const char *slot_step(slot *sl, const sc_extract_prompt_cfg *p, const sc_gen_params *g0) {
    sl->g = *g0;
    sl->g.seed = sl->seed;
    if (p->ask_once) {
        sl->cache.extend = 0;
        return sl->full.s;
    }
    if (sl->field == 0) {
        sl->tr.len = 0;
        sc_strbuf_str(&sl->tr, sl->full.s);
    } else {
        sc_strbuf_str(&sl->tr, "\n");
    }
    sc_strbuf_str(&sl->tr, p->fields[sl->field]);
    sc_strbuf_str(&sl->tr, ":");
    sl->g.stops[0] = "\n";
    sl->g.n_stops = 1;
    sl->g.max_tokens = (g0->max_tokens + p->n_fields - 1) / p->n_fields;
    if (sl->g.max_tokens < 8) sl->g.max_tokens = 8;
    sl->g.seed = sl->seed + (uint64_t)sl->field * 0xD1B54A32D192ED03ull;
    /* the first field starts from aligned prompt chunks (as a resumed run
     * does), the later ones extend this entity's own transcript */
    sl->cache.extend = sl->field > 0;
    return sl->tr.s;
}

/* Take the step's result; 1 when the attempt's answer is complete. */
static int slot_take(slot *sl, const sc_extract_prompt_cfg *p, const sc_gen_result *res) {
    if (p->ask_once) {
        if (p->prefix) sc_strbuf_str(&sl->ans, p->prefix);
        sc_strbuf_add(&sl->ans, res->text, res->len);
        sl->truncated = res->end == SC_GEN_END_LENGTH;
        return 1;
    }
    sc_strbuf_add(&sl->tr, res->text, res->len);
    if (res->end != SC_GEN_END_LENGTH) {
        sc_strbuf_str(&sl->ans, p->fields[sl->field]);
        sc_strbuf_str(&sl->ans, ":");
        sc_strbuf_add(&sl->ans, res->text, res->len);
        sc_strbuf_str(&sl->ans, "\n");
    }
    /* the model ended its turn: the rest stays empty */
    return res->end == SC_GEN_END_EOS || ++sl->field == p->n_fields;
}

/* ---- the run ---- */

static const sc_extract_prompt_cfg *find_prompt(const sc_dcfg *cfg, const char *entity, sc_error *err) {
    char names[512] = "";
    for (int i = 0; i < cfg->extract.n_prompts; i++) {
        if (!strcmp(cfg->extract.prompts[i].entity, entity)) return &cfg->extract.prompts[i];
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, cfg->extract.prompts[i].entity, sizeof names - strlen(names) - 1);
    }
    if (!cfg->extract.line) sc_fail(err, SC_ENOTFOUND, "%s: no 'extract:' section (see docs/extract.md)", cfg->source);
    else sc_fail(err, SC_ENOTFOUND, "%s: 'extract.prompts' has no entry for entity '%s' (it has: %s)", cfg->source, entity, names);
    return NULL;
}

/* The fallback text: the config's fallback template, else "name: value" of
 * every column the prompt template uses. */
static int fallback_text(const sc_extract_prompt_cfg *p, row_ctx *rc_, char **out, sc_error *err) {
    if (p->fallback) return sc_template_render(p->fallback, lookup_row, rc_, out, err);
    sc_strbuf b = {0};
    sc_strbuf_add(&b, "", 0);
    const sc_entity_table *t = rc_->t;
    for (int c = 0; c < t->n_cols; c++) {
        char ph[80];
        snprintf(ph, sizeof ph, "{%s}", t->col_names[c]);
        const char *v = t->cells[rc_->row * t->n_cols + c];
        if (!strstr(p->template, ph) || !v[0]) continue;
        if (b.len) sc_strbuf_str(&b, "\n");
        sc_strbuf_str(&b, t->col_names[c]);
        sc_strbuf_str(&b, ": ");
        sc_strbuf_str(&b, v);
    }
    if (b.oom) {
        sc_free(b.s);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    *out = b.s;
    return SC_OK;
}

/* Append "a<TAB>b<TAB>esc(c)[<TAB>esc(d)]\n" to out. */
static int add_line(sc_strbuf *out, const char *a, const char *b, const char *c, const char *d, sc_error *err) {
    char *ec = sc_tsv_escape(c), *ed = d ? sc_tsv_escape(d) : NULL;
    int bad = !ec || (d && !ed);
    if (!bad) {
        sc_strbuf_str(out, a);
        sc_strbuf_str(out, "\t");
        sc_strbuf_str(out, b);
        sc_strbuf_str(out, "\t");
        sc_strbuf_str(out, ec);
        if (d) {
            sc_strbuf_str(out, "\t");
            sc_strbuf_str(out, ed);
        }
        sc_strbuf_str(out, "\n");
        bad = out->oom;
    }
    sc_free(ec);
    sc_free(ed);
    return bad ? sc_fail(err, SC_ENOMEM, "out of memory") : SC_OK;
}

/* ---- records ----
 *
 * A finished entity is one record: its prompt line, its answer-log lines
 * and its output line, each part ended by a NUL (the lines are escaped, so
 * they hold none). Records travel between ranks as they are. */

typedef struct out_files {
    FILE *out, *plog, *alog;
    const char *path, *ppath, *lpath;
    int64_t written;
    sc_progress *bar;
    const sc_extract_stats *st; /* for the progress bar's figures */
} out_files;

/* Write records rec[0..n) (n bytes): prompt lines, then answer-log lines,
 * then output lines, each file flushed, so a crash leaves every output line
 * after its prompt line. Counts the records in *n_rec. */
static int write_records(out_files *f, const char *rec, size_t n, int64_t *n_rec, sc_error *err) {
    *n_rec = 0;
    for (size_t at = 0; at < n;) {
        const char *part[3];
        for (int k = 0; k < 3; k++) {
            const char *z = at < n ? memchr(rec + at, '\0', n - at) : NULL;
            if (!z) return sc_fail(err, SC_EINTERNAL, "a torn extraction record (%zu bytes at %zu)", n - at, at);
            part[k] = rec + at;
            at = (size_t)(z - rec) + 1;
        }
        FILE *fp[3] = {f->plog, f->alog, f->out};
        const char *nm[3] = {f->ppath, f->lpath, f->path};
        for (int k = 0; k < 3; k++)
            if (fputs(part[k], fp[k]) < 0 || fflush(fp[k]) != 0 || ferror(fp[k]))
                return sc_fail(err, SC_EIO, "%s: write failed: %s", nm[k], strerror(errno));
        (*n_rec)++;
    }
    return SC_OK;
}

/* Where finished records go: the files (one process), or this rank's
 * buffer for rank 0 (ranks). */
typedef struct sink {
    out_files *files; /* NULL: buf */
    sc_strbuf *buf;
} sink;

static int sink_put(sink *k, const char *rec, size_t n, sc_error *err) {
    if (!k->files) {
        sc_strbuf_add(k->buf, rec, n);
        return k->buf->oom ? sc_fail(err, SC_ENOMEM, "out of memory") : SC_OK;
    }
    int64_t nr;
    int rc = write_records(k->files, rec, n, &nr, err);
    k->files->written += nr;
    if (!rc && k->files->bar) {
        char extra[96];
        const sc_extract_stats *st = k->files->st;
        snprintf(extra, sizeof extra, "fallback %lld, %.1f tok/s", (long long)st->fallback,
                 st->gen_s > 0 ? st->tokens / st->gen_s : 0.0);
        sc_progress_update(k->files->bar, k->files->written, extra);
    }
    return rc;
}

/* What every rank needs to ask the model. */
typedef struct asker {
    const sc_extract_opts *o;
    const sc_extract_prompt_cfg *p;
    const sc_dcfg *cfg;
    const sc_entity_table *tab;
    const history *hist;
    int uses_history;
    const char *tmpl;
    char *const *ekeys; /* keys as written in the file (escaped), per table row */
    sc_llama *m;
    slot *slots;
    sc_gen_job *jobs;
    int *busy, B;
    sc_extract_stats *st;
} asker;

/* Extract the entities of table rows rows[0..n), up to B at once, and put
 * their records into k in the order of rows. Stops starting entities once
 * sc_interrupted() (*stopped = 1); the ones in flight are finished and put.
 * On an error, records not yet put are lost (a rerun redoes them). */
static int ask_rows(asker *a, const int64_t *rows, int64_t n, sink *k, int *stopped, sc_error *err) {
    const sc_extract_opts *o = a->o;
    const sc_extract_prompt_cfg *p = a->p;
    const sc_entity_table *tab = a->tab;
    sc_extract_stats *st = a->st;
    char **rec = sc_calloc((size_t)(n ? n : 1), sizeof *rec); /* finished, not yet put */
    size_t *rlen = sc_calloc((size_t)(n ? n : 1), sizeof *rlen);
    int rc = rec && rlen ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
    int64_t next = 0, front = 0;
    int stopping = 0, B = a->B;
    while (rc == SC_OK) {
        stopping = stopping || sc_interrupted();
        /* fill free slots with the next entities */
        for (int i = 0; i < B && rc == SC_OK && !stopping; i++) {
            slot *sl = &a->slots[i];
            if (sl->busy || next >= n) continue;
            int64_t r = rows[next];
            const char *key = tab->cells[r * tab->n_cols + tab->key_col];
            sl->w = next++;
            sl->r = r;
            sl->busy = 1;
            sl->attempt = sl->field = 0;
            sl->seed = XXH3_64bits_withSeed(key, strlen(key), o->gen.seed);
            sc_strbuf_add(&sl->hist, "", 0);
            if (a->uses_history) history_text(a->hist, key, &sl->hist);
            row_ctx rx = {tab, r, a->uses_history ? sl->hist.s : NULL};
            char *chat = NULL;
            rc = sc_template_render(p->template, lookup_row, &rx, &sl->user, err);
            if (!rc) rc = sc_chat_format(a->tmpl, a->cfg->extract.system, sl->user, &chat, err);
            if (!rc) {
                sc_strbuf_str(&sl->full, chat);
                if (p->prefix && p->ask_once) sc_strbuf_str(&sl->full, p->prefix);
                sc_strbuf_add(&sl->ans, "", 0);
                if (sl->full.oom || sl->hist.oom || sl->ans.oom) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            }
            sc_free(chat);
            if (!rc) rc = add_line(&sl->rec, a->ekeys[r], "0", sl->full.s, NULL, err);
            if (!rc) sc_strbuf_add(&sl->rec, "", 1); /* the prompt part ends */
        }
        int nb = 0;
        for (int i = 0; i < B; i++)
            if (a->slots[i].busy) a->busy[nb++] = i;
        if (rc || nb == 0) break;
        for (int j = 0; j < nb; j++) {
            slot *sl = &a->slots[a->busy[j]];
            const char *prompt = slot_step(sl, p, &o->gen);
            if (sl->tr.oom) {
                rc = sc_fail(err, SC_ENOMEM, "out of memory");
                break;
            }
            a->jobs[j] = (sc_gen_job){.prompt = prompt, .params = &sl->g, .kv = sl->kv, .cache = &sl->cache};
        }
        if (rc) break;
        int failed;
        double t0 = sc_now();
        if ((rc = sc_generate_batch(a->m, a->jobs, nb, &failed, err))) {
            if (failed >= 0)
                sc_fail_prefix(err, "entity '%s': ", tab->cells[a->slots[a->busy[failed]].r * tab->n_cols + tab->key_col]);
            break;
        }
        st->gen_s += sc_now() - t0;
        for (int j = 0; j < nb && rc == SC_OK; j++) {
            slot *sl = &a->slots[a->busy[j]];
            st->tokens += a->jobs[j].res.n_generated;
            int complete = slot_take(sl, p, &a->jobs[j].res);
            sc_gen_result_free(&a->jobs[j].res);
            if (!complete) continue;
            /* the attempt's answer: keep it, retry or fall back */
            const char *ekey = a->ekeys[sl->r];
            char *kept = NULL, *text = NULL;
            int nk = sl->ans.oom || sl->tr.oom ? -1
                                               : sc_extract_parse_against(sl->ans.s, sl->user, (const char *const *)p->fields,
                                                                          p->n_fields, sl->truncated, &kept);
            if (nk < 0 || !kept) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            int ok = !rc && nk >= p->min_fields && !degenerate(kept);
            char an[16], nf[16];
            snprintf(an, sizeof an, "%d", sl->attempt);
            snprintf(nf, sizeof nf, "%d", nk);
            if (!rc) rc = add_line(&sl->rec, ekey, an, nf, sl->ans.s, err);
            if (!rc && !ok && sl->attempt < o->retries) { /* another seed */
                sl->attempt++;
                sl->field = 0;
                sl->seed += 0x9E3779B97F4A7C15ull;
                sl->ans.len = 0;
                sl->ans.s[0] = 0;
                st->retries++;
                sc_free(kept);
                continue;
            }
            row_ctx rx = {tab, sl->r, a->uses_history ? sl->hist.s : NULL};
            if (!rc && !ok) rc = fallback_text(p, &rx, &text, err);
            if (!rc) {
                sc_strbuf_add(&sl->rec, "", 1); /* the answer-log part ends */
                rc = add_line(&sl->rec, ekey, ok ? "ok" : "fallback", ok ? kept : text, NULL, err);
                sc_strbuf_add(&sl->rec, "", 1);
                if (!rc && sl->rec.oom) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            }
            if (!rc) {
                st->done++;
                if (ok) st->ok++;
                else st->fallback++, st->fallback_total++;
                rec[sl->w] = sl->rec.s; /* the record moves out of the slot */
                rlen[sl->w] = sl->rec.len;
                memset(&sl->rec, 0, sizeof sl->rec);
            }
            sc_free(kept);
            sc_free(text);
            slot_clear(sl);
            /* put every finished record that has no unfinished one before it */
            for (; rc == SC_OK && front < n && rec[front]; front++) {
                rc = sink_put(k, rec[front], rlen[front], err);
                sc_free(rec[front]);
                rec[front] = NULL;
            }
        }
    }
    for (int i = 0; i < B; i++)
        if (a->slots[i].busy) slot_clear(&a->slots[i]); /* after an error */
    for (int64_t i = 0; rec && i < n; i++) sc_free(rec[i]);
    sc_free(rec);
    sc_free(rlen);
    *stopped = stopping && next < n;
    return rc;
}

/* Rank 0's side of the run: the output folder, its lock, meta.json (compared
 * with an earlier run's), what is already done, the files opened for
 * appending, and the table rows still to do (in table order, a key once). */
static int open_output(const sc_extract_opts *o, const cJSON *meta, char *const *ekeys,
                       int *lockfd, sc_strmap *done, out_files *f, char *path, char *ppath, char *lpath, int64_t **todo,
                       int64_t *n_todo, sc_extract_stats *st, sc_error *err) {
    char mpath[4200], lkpath[4200];
    int rc = sc_mkdirs(o->out_dir, err);
    if (rc) return rc;
    /* one writer per DIR and entity: a second run would interleave lines */
    snprintf(lkpath, sizeof lkpath, "%s/%s.lock", o->out_dir, o->entity);
    *lockfd = open(lkpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*lockfd < 0) return sc_fail(err, SC_EIO, "%s: %s", lkpath, strerror(errno));
    if (flock(*lockfd, LOCK_EX | LOCK_NB) != 0)
        return sc_fail(err, SC_EINVAL, "%s: another semctr extract is writing '%s' in this folder", lkpath, o->entity);
    snprintf(path, 4200, "%s/%s.tsv", o->out_dir, o->entity);
    snprintf(ppath, 4200, "%s/%s.prompts.tsv", o->out_dir, o->entity);
    snprintf(lpath, 4200, "%s/%s.log.tsv", o->out_dir, o->entity);
    snprintf(mpath, sizeof mpath, "%s/%s.meta.json", o->out_dir, o->entity);
    if (sc_file_exists(mpath)) {
        sc_error e2;
        if (meta_compare(mpath, meta, &e2) != SC_OK) {
            if (!o->force) {
                if (err) *err = e2;
                return e2.code;
            }
            sc_info("extract: --force: %s differs; starting %s afresh", mpath, path);
            remove(path);
            remove(ppath);
            remove(lpath);
        }
    } else if (sc_file_exists(path)) {
        return sc_fail(err, SC_EINVAL, "%s exists without %s: remove it or choose another --out", path, mpath);
    }
    char *mtext = cJSON_Print(meta);
    if (!mtext) return sc_fail(err, SC_ENOMEM, "out of memory");
    rc = write_text_file(mpath, mtext, err);
    cJSON_free(mtext);
    if (!rc) rc = resume_scan(path, done, &st->fallback_total, &st->torn, err);
    if (rc) return rc;
    f->out = fopen(path, "a");
    f->plog = fopen(ppath, "a");
    f->alog = fopen(lpath, "a");
    if (!f->out || !f->plog || !f->alog)
        return sc_fail(err, SC_EIO, "%s: cannot open for appending: %s", o->out_dir, strerror(errno));
    *todo = sc_malloc((size_t)(st->total + 1) * sizeof **todo);
    if (!*todo) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int64_t r = 0; r < st->total; r++) {
        const char *ekey = ekeys[r];
        int ins;
        if (sc_strmap_find(done, ekey, strlen(ekey)) >= 0) {
            st->skipped++;
            continue;
        }
        /* duplicate keys in the table run once */
        if (sc_strmap_insert(done, ekey, strlen(ekey), 0, &ins) < 0) return sc_fail(err, SC_ENOMEM, "out of memory");
        (*todo)[(*n_todo)++] = r;
    }
    return SC_OK;
}

int sc_extract_run(const sc_extract_opts *o, sc_extract_stats *st, sc_error *err) {
    memset(st, 0, sizeof *st);
    sc_dist *dist = o->dist;
    const int root = sc_dist_rank(dist) == 0, ranks = sc_dist_size(dist);
    sc_dcfg *cfg = NULL;
    sc_entity_table tab = {0};
    history hist = {0};
    sc_llama *m = NULL;
    slot *slots = NULL;
    sc_gen_job *jobs = NULL;
    int *busy = NULL, n_slots = 0;
    char *tmpl = NULL;
    cJSON *meta = NULL;
    sc_strmap done;
    sc_strmap_init(&done);
    out_files files = {0};
    char **ekeys = NULL;
    int64_t ekeys_n = 0, *todo = NULL, n_todo = 0;
    sc_strbuf mine = {0};
    unsigned char *all = NULL;
    int lockfd = -1;
    char path[4200], ppath[4200], lpath[4200];
    int rc = sc_gen_params_check(&o->gen, err);
    if (rc) return rc;
    if (o->retries < 0 || o->limit < 0) return sc_fail(err, SC_EINVAL, "retries and limit must not be negative");
    if ((rc = sc_dcfg_load(&cfg, o->config_path, err))) return rc;
    const sc_extract_prompt_cfg *p = find_prompt(cfg, o->entity, err);
    if (!p) {
        rc = err ? err->code : SC_ENOTFOUND;
        goto done;
    }
    if ((rc = sc_template_check(p->template, err))) {
        sc_fail_prefix(err, "%s:%d: extract template of '%s': ", o->config_path, p->line, o->entity);
        goto done;
    }
    int uses_history = strstr(p->template, "{history}") != NULL;
    if (uses_history && !o->data_dir) {
        rc = sc_fail(err, SC_EINVAL, "the '%s' template uses {history}: give --data DIR (a prepared dataset)", o->entity);
        goto done;
    }
    if ((rc = sc_entity_table_load(&tab, o->config_path, o->entity, err))) goto done;
    if (uses_history && (rc = history_load(&hist, o->data_dir, tab.col_names[tab.key_col],
                                           cfg->extract.history_column, cfg->extract.history, err)))
        goto done;
    /* every placeholder must resolve: render the first row once */
    if (tab.n_rows > 0) {
        row_ctx r0 = {&tab, 0, uses_history ? "" : NULL};
        char *probe = NULL;
        rc = sc_template_render(p->template, lookup_row, &r0, &probe, err);
        sc_free(probe);
        if (rc) {
            sc_fail_prefix(err, "%s:%d: extract template of '%s': ", o->config_path, p->line, o->entity);
            goto done;
        }
    }
    if ((rc = sc_chat_template_from_gguf(o->model_path, &tmpl, err))) goto done;
    int family;
    if (!tmpl) {
        rc = sc_fail(err, SC_ENOTFOUND, "%s has no tokenizer.chat_template; extraction needs an instruction model", o->model_path);
        goto done;
    }
    if ((rc = sc_chat_family(tmpl, &family, err))) goto done;
    /* meta */
    meta = cJSON_CreateObject();
    cJSON *mo = cJSON_AddObjectToObject(meta, "model");
    if ((rc = model_identity(o->model_path, mo, err))) goto done;
    cJSON_AddStringToObject(meta, "format", "semctr-extract 1");
    cJSON_AddStringToObject(meta, "entity", o->entity);
    cJSON_AddStringToObject(meta, "chat_family", sc_chat_family_name(family));
    cJSON_AddStringToObject(meta, "system", cfg->extract.system ? cfg->extract.system : "");
    cJSON_AddStringToObject(meta, "template", p->template);
    cJSON_AddStringToObject(meta, "ask", p->ask_once ? "once" : "fields");
    cJSON_AddStringToObject(meta, "prefix", p->prefix ? p->prefix : "");
    cJSON_AddStringToObject(meta, "fallback", p->fallback ? p->fallback : "");
    cJSON *fa = cJSON_AddArrayToObject(meta, "fields");
    for (int i = 0; i < p->n_fields; i++) cJSON_AddItemToArray(fa, cJSON_CreateString(p->fields[i]));
    cJSON_AddNumberToObject(meta, "min_fields", p->min_fields);
    cJSON_AddNumberToObject(meta, "history", uses_history ? cfg->extract.history : 0);
    cJSON_AddStringToObject(meta, "history_column", uses_history ? cfg->extract.history_column : "");
    cJSON_AddNumberToObject(meta, "max_tokens", o->gen.max_tokens);
    cJSON_AddNumberToObject(meta, "temperature", (double)o->gen.temperature);
    cJSON_AddNumberToObject(meta, "top_p", (double)o->gen.top_p);
    cJSON_AddNumberToObject(meta, "top_k", o->gen.top_k);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->gen.seed);
    cJSON_AddStringToObject(meta, "seed", seed);
    cJSON_AddNumberToObject(meta, "retries", o->retries);
    st->total = o->limit && o->limit < tab.n_rows ? o->limit : tab.n_rows;
    /* keys as written in the file (escaped) */
    ekeys = sc_calloc((size_t)st->total + 1, sizeof *ekeys);
    if (!ekeys) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
        goto done;
    }
    ekeys_n = st->total;
    for (int64_t r = 0; r < st->total && rc == SC_OK; r++)
        if (!(ekeys[r] = sc_tsv_escape(tab.cells[r * tab.n_cols + tab.key_col]))) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    /* rank 0 owns the output; the other ranks learn the rows to do (the same checks failed the same way on
       every rank above; what fails on rank 0 alone here fails every rank) */
    if (!rc && root)
        rc = open_output(o, meta, ekeys, &lockfd, &done, &files, path, ppath, lpath, &todo, &n_todo, st, err);
    rc = sc_dist_agree(dist, rc, err);
    if (rc) goto done;
    if (ranks > 1) {
        int64_t hdr[2] = {st->skipped, n_todo};
        rc = sc_dist_bcast(dist, hdr, sizeof hdr, err);
        if (!rc && !root) {
            st->skipped = hdr[0];
            n_todo = hdr[1];
            todo = sc_malloc((size_t)(n_todo + 1) * sizeof *todo);
            if (!todo) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        }
        rc = sc_dist_agree(dist, rc, err);
        if (!rc) rc = sc_dist_bcast(dist, todo, (size_t)n_todo * sizeof *todo, err);
        for (int64_t i = 0; i < n_todo && !rc; i++)
            if (todo[i] < 0 || todo[i] >= st->total) rc = sc_fail(err, SC_EINTERNAL, "row %lld from rank 0 out of range", (long long)todo[i]);
    }
    if (rc || n_todo == 0) goto done;
    int B = o->batch > 0 ? o->batch : 1;
    /* over ranks, a round gives each rank up to 16 batches' worth of entities, then rank 0 writes the round */
    const int64_t round = ranks > 1 ? (int64_t)16 * B * ranks : n_todo;
    if (B > n_todo) B = (int)n_todo;
    rc = sc_llama_load(&m, o->model_path, 0, err);
    if (!rc) {
        slots = sc_calloc((size_t)B, sizeof *slots);
        jobs = sc_calloc((size_t)B, sizeof *jobs);
        busy = sc_calloc((size_t)B, sizeof *busy);
        if (!slots || !jobs || !busy) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        else n_slots = B;
    }
    for (int i = 0; i < n_slots && rc == SC_OK; i++) rc = sc_llama_kv_new(m, 0, &slots[i].kv, err);
    rc = sc_dist_agree(dist, rc, err);
    if (rc) goto done;
    asker a = {o, p, cfg, &tab, &hist, uses_history, tmpl, ekeys, m, slots, jobs, busy, B, st};
    sc_progress bar;
    sc_progress_begin(&bar, o->entity, n_todo, "entities");
    if (!o->progress) bar.enabled = 0;
    files.path = path;
    files.ppath = ppath;
    files.lpath = lpath;
    files.bar = &bar;
    files.st = st;
    int stopped = 0;
    double t0 = sc_now();
    for (int64_t g = 0; g < n_todo && rc == SC_OK && !stopped; g += round) {
        int64_t mcount = n_todo - g < round ? n_todo - g : round, lo, hi;
        if (ranks == 1) { /* straight into the files */
            sink k = {&files, NULL};
            rc = ask_rows(&a, todo + g, mcount, &k, &stopped, err);
            continue;
        }
        /* this rank's slice of the round, then rank 0 writes every rank's records in order */
        sc_dist_slice(dist, mcount, &lo, &hi);
        mine.len = 0;
        sc_strbuf_add(&mine, "", 0);
        sink k = {NULL, &mine};
        rc = ask_rows(&a, todo + g + lo, hi - lo, &k, &stopped, err);
        rc = sc_dist_agree(dist, rc, err);
        double flag = stopped;
        if (!rc) rc = sc_dist_sum(dist, &flag, 1, err);
        stopped = flag > 0;
        int64_t n_all = 0, nr = 0;
        if (!rc) rc = sc_dist_gather_bytes(dist, mine.s, (int64_t)mine.len, &all, &n_all, err);
        if (!rc && root) {
            rc = write_records(&files, (const char *)all, (size_t)n_all, &nr, err);
            files.written += nr;
            sc_progress_update(&bar, files.written, NULL);
        }
        sc_free(all);
        all = NULL;
        rc = sc_dist_agree(dist, rc, err); /* a write error on rank 0 stops every rank */
    }
    sc_progress_end(&bar);
    if (ranks > 1 && (rc == SC_OK || stopped)) {
        /* the job's figures: sums over ranks; the seconds are rank 0's wall time of the rounds */
        double v[5] = {(double)st->done, (double)st->ok, (double)st->fallback, (double)st->retries, (double)st->tokens};
        int src = sc_dist_sum(dist, v, 5, err);
        if (src) rc = src;
        st->fallback_total += (int64_t)v[2] - st->fallback;
        st->done = (int64_t)v[0];
        st->ok = (int64_t)v[1];
        st->fallback = (int64_t)v[2];
        st->retries = (int64_t)v[3];
        st->tokens = (int64_t)v[4];
        st->gen_s = sc_now() - t0;
    }
    if (rc == SC_OK && stopped)
        rc = sc_fail(err, SC_EINTERRUPTED, "interrupted after %lld entities; rerun the same command to continue",
                     (long long)st->done);
done:
    if (lockfd >= 0) close(lockfd); /* releases the lock */
    if (files.out) fclose(files.out);
    if (files.plog) fclose(files.plog);
    if (files.alog) fclose(files.alog);
    for (int i = 0; i < n_slots; i++) {
        slot_clear(&slots[i]);
        sc_gen_cache_free(&slots[i].cache);
        sc_llama_kv_free(slots[i].kv);
    }
    sc_free(slots);
    sc_free(jobs);
    sc_free(busy);
    sc_free(todo);
    sc_free(mine.s);
    sc_llama_free(m);
    sc_free(tmpl);
    cJSON_Delete(meta);
    sc_strmap_free(&done);
    for (int64_t i = 0; i < ekeys_n; i++) sc_free(ekeys[i]);
    sc_free(ekeys);
    history_free(&hist);
    sc_entity_table_free(&tab);
    sc_dcfg_free(cfg);
    return rc;
}
