/* semctr embed: texts -> sentence vectors with a BERT-family encoder.
 *
 *   semctr embed --text "some text" [--model DIR]        one vector on stdout
 *   semctr embed --input FILE --out STORE [--model DIR] [--batch N]
 *                [--threads N] [--max-length N] [--no-normalize] [--precision P]
 *
 * FILE: one text per line, "id<TAB>text" or plain text (the id is then the
 * line number, from 1). An empty line, an empty id/text or an id seen on an
 * earlier line is an error naming the line(s). Invalid UTF-8 is read as
 * U+FFFD (text/tokutil.h), which BERT's normaliser drops.
 * --model defaults to $SEMCTR_MODEL, else the cached all-MiniLM-L6-v2
 * (${SEMCTR_CACHE:-~/.cache/semctr}/models/all-MiniLM-L6-v2), fetched on first
 * use by scripts/fetch_model.sh. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "cli/cli.h"
#include "data/entity.h"
#include "data/strmap.h"
#include "lm/bert.h"
#include "text/template.h"
#include "lm/encoder.h"
#include "lm/qmatmul.h" /* sc_cpu_has_bf16 */
#include "lm/textvec.h"
#include "lm/vecstore.h"

static const char *USAGE =
    "usage: semctr embed --text TEXT [--model DIR|FILE.gguf]\n"
    "       semctr embed --input FILE --out STORE [--model DIR] [--batch N] [--threads N]\n"
    "                    [--max-length N] [--no-normalize] [--precision auto|f32|bf16]\n"
    "       semctr embed --config YAML --entity JOIN --template T --out STORE [same options]\n"
    "FILE has one text per line: 'id<TAB>text', or plain text (id = line number).\n"
    "With --config, the rows of the dataset config's side table JOIN (e.g. item) become\n"
    "texts through the template T, e.g. \"{title}. Genres: {genres}.\" (names: the table's\n"
    "columns and the config's text columns of that entity); the id is the join key.\n"
    "--precision (encoders): the layers' matrix products in float, or in bfloat16 with float sums\n"
    "(cosine to float >= 0.9999, docs/embed.md); auto (default) = bf16 where the CPU has AVX512_BF16.\n"
    "Over MPI ranks (`make MPI=1`, `mpirun -np N semctr embed --input ...`): each rank encodes its\n"
    "share of the texts, rank 0 writes STORE, the same bytes as one process (docs/distributed.md).\n";

/* The default model directory; fetched with scripts/fetch_model.sh when absent. */
static int default_model(char *dir, size_t cap, sc_error *err) {
    const char *env = getenv("SEMCTR_MODEL");
    if (env && env[0]) {
        snprintf(dir, cap, "%s", env);
        return SC_OK;
    }
    const char *cache = getenv("SEMCTR_CACHE");
    const char *home = getenv("HOME");
    if (cache && cache[0]) snprintf(dir, cap, "%s/models/all-MiniLM-L6-v2", cache);
    else snprintf(dir, cap, "%s/.cache/semctr/models/all-MiniLM-L6-v2", home ? home : ".");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/model.safetensors", dir);
    if (sc_file_exists(probe)) return SC_OK;
    /* scripts/fetch_model.sh next to the binary's source tree (build/semctr -> ../scripts) */
    char exe[PATH_MAX], script[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(script, sizeof script, "%s/../scripts/fetch_model.sh", exe);
        if (sc_file_exists(script)) {
            fprintf(stderr, "semctr embed: default model not found; fetching it with %s\n", script);
            char cmd[PATH_MAX + 128];
            snprintf(cmd, sizeof cmd, "bash '%s' >&2", script);
            if (system(cmd) == 0 && sc_file_exists(probe)) return SC_OK;
        }
    }
    return sc_fail(err, SC_ENOTFOUND, "%s: no model there; run scripts/fetch_model.sh or pass --model DIR", dir);
}

typedef struct prog_ctx {
    sc_progress bar;
    int64_t base;
} prog_ctx;

static void chunk_progress(void *ctx, int done, int total) {
    (void)total;
    prog_ctx *p = ctx;
    sc_progress_update(&p->bar, p->base + done, NULL);
}

typedef struct {
    const sc_entity_table *t;
    int64_t row;
} entity_row;

static int lookup_entity(void *ctx, const char *name, size_t len, const char **val, size_t *val_len) {
    const entity_row *r = ctx;
    int c = sc_entity_table_col(r->t, name, len);
    if (c < 0) return -1;
    *val = r->t->cells[r->row * r->t->n_cols + c];
    *val_len = strlen(*val);
    return 0;
}

/* Render the template for every row of the config's entity table: ids are
 * the join keys, texts are owned by the caller (sc_free each). */
static int entity_texts(const char *config, const char *entity, const char *tmpl, sc_entity_table *t, char ***ids,
                        char ***texts, int64_t *n, sc_error *err) {
    int rc = sc_template_check(tmpl, err);
    if (!rc) rc = sc_entity_table_load(t, config, entity, err);
    if (rc) return rc;
    *ids = sc_calloc((size_t)t->n_rows, sizeof **ids);
    *texts = sc_calloc((size_t)t->n_rows, sizeof **texts);
    if (!*ids || !*texts) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int64_t r = 0; r < t->n_rows; r++) {
        entity_row er = {t, r};
        rc = sc_template_render(tmpl, lookup_entity, &er, &(*texts)[r], err);
        if (rc) {
            char cols[512] = "";
            for (int c = 0; c < t->n_cols; c++) {
                strncat(cols, c ? ", " : "", sizeof cols - strlen(cols) - 1);
                strncat(cols, t->col_names[c], sizeof cols - strlen(cols) - 1);
            }
            return sc_fail_prefix(err, "entity '%s' (columns: %s): ", entity, cols);
        }
        (*ids)[r] = t->cells[r * t->n_cols + t->key_col];
        *n = r + 1;
    }
    return SC_OK;
}

int cmd_embed(int argc, char **argv) {
    const char *text = NULL, *input = NULL, *outp = NULL, *model = NULL;
    const char *config = NULL, *entity = NULL, *tmpl = NULL, *precision = NULL;
    long batch = 32, threads = 0, max_len = 0;
    int no_norm = 0;
    const cli_opt opts[] = {
        CLI_STR("--text", &text),
        CLI_STR("--input", &input),
        CLI_STR("--config", &config),
        CLI_STR("--entity", &entity),
        CLI_STR("--template", &tmpl),
        CLI_STR("--out", &outp),
        CLI_STR("--model", &model),
        CLI_INT("--batch", &batch, 1, 4096),
        CLI_INT("--threads", &threads, 1, 256),
        CLI_INT("--max-length", &max_len, 2, 1 << 20),
        CLI_FLAG("--no-normalize", &no_norm),
        CLI_STR("--precision", &precision),
    };
    int code = cli_parse("embed", "argument", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!!text + !!input + !!config != 1 || ((input || config) && !outp) || (text && outp) ||
        (config && (!entity || !tmpl)) || (!config && (entity || tmpl))) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    sc_error err = {0};
    char dir[4096];
    if (model) snprintf(dir, sizeof dir, "%s", model);
    else if (default_model(dir, sizeof dir, &err) != SC_OK) return cli_fail("embed", &err);
    /* an encoder directory or a decoder .gguf file (sentence vector = L2-normalised mean of its last
     * hidden states; --no-normalize keeps the raw mean) */
    sc_textvec tv;
    if (sc_textvec_open(&tv, dir, (int)threads, &err) != SC_OK) return cli_fail("embed", &err);
    sc_encoder *enc = tv.enc; /* NULL for a decoder */
    sc_textvec_set_normalize(&tv, !no_norm && (enc ? tv.normalize : 1));
    if (enc) sc_encoder_set_batch(enc, (int)batch);
    if (max_len && (!enc || sc_encoder_set_max_length(enc, (int)max_len) != SC_OK)) {
        if (enc)
            fprintf(stderr, "semctr embed: --max-length %lld is beyond %s's limit of %d tokens (its max positions)\n",
                    (long long)max_len, tv.name, sc_encoder_bert(enc)->cfg.max_pos);
        else
            fprintf(stderr, "semctr embed: --max-length applies to encoders only, not to %s\n", tv.name);
        sc_textvec_close(&tv);
        return EXIT_USAGE;
    }
    if (precision && !enc) {
        fprintf(stderr, "semctr embed: --precision applies to encoders only, not to %s (decoders: SEMCTR_QMM, docs/llm.md)\n",
                tv.name);
        sc_textvec_close(&tv);
        return EXIT_USAGE;
    }
    if (enc) {
        int p;
        if (!precision || !strcmp(precision, "auto")) p = sc_cpu_has_bf16() ? SC_BERT_BF16 : SC_BERT_F32;
        else if (!strcmp(precision, "f32")) p = SC_BERT_F32;
        else if (!strcmp(precision, "bf16")) p = SC_BERT_BF16;
        else {
            fprintf(stderr, "semctr embed: --precision '%s': use auto, f32 or bf16\n", precision);
            sc_textvec_close(&tv);
            return EXIT_USAGE;
        }
        if (sc_bert_set_precision(sc_encoder_bert(enc), p, &err) != SC_OK) {
            sc_textvec_close(&tv);
            return cli_fail("embed", &err);
        }
    }
    const int D = tv.dim;
    if (text) {
        float *v = sc_malloc((size_t)D * sizeof *v);
        int rc = v ? sc_textvec_encode(&tv, &text, 1, v, &err) : sc_fail(&err, SC_ENOMEM, "out of memory");
        if (rc == SC_OK)
            for (int i = 0; i < D; i++) printf("%s%.8g", i ? " " : "", v[i]);
        if (rc == SC_OK) printf("\n");
        sc_free(v);
        sc_textvec_close(&tv);
        return rc == SC_OK ? 0 : cli_fail("embed", &err);
    }

    /* Over MPI ranks (make MPI=1, mpirun; docs/distributed.md) each rank encodes its share of every
       chunk of texts and rank 0 writes them all, in order: the store one process writes. */
    sc_dist *dist = NULL;
    if (sc_dist_init(&dist, NULL, NULL, &err) != SC_OK) {
        sc_textvec_close(&tv);
        return cli_fail("embed", &err);
    }
    const int root = sc_dist_rank(dist) == 0;
    if (!root) sc_log_level = SC_LOG_QUIET;

    /* Read and split the input; texts point into buf. */
    char *buf = NULL;
    size_t len = 0;
    int64_t n = 0, cap = 0;
    char **ids = NULL, **texts = NULL;
    char (*numid)[24] = NULL;
    sc_entity_table et = {0};
    sc_strmap seen; /* id -> its 1-based line, to name both lines of a repeated id */
    sc_strmap_init(&seen);
    int rc = config ? entity_texts(config, entity, tmpl, &et, &ids, &texts, &n, &err)
                    : sc_read_file(input, &buf, &len, &err);
    if (config) input = config;
    for (size_t at = 0, line = 1; !config && rc == SC_OK && at < len; line++) {
        char *s = buf + at, *e = memchr(s, '\n', len - at);
        size_t l = e ? (size_t)(e - s) : len - at;
        at += l + 1;
        if (l && s[l - 1] == '\r') l--;
        s[l] = '\0';
        if (memchr(s, '\0', l)) {
            rc = sc_fail(&err, SC_EINVAL, "%s:%zu: NUL byte in the line", input, line);
            break;
        }
        if (l == 0) {
            rc = sc_fail(&err, SC_EINVAL, "%s:%zu: empty line (every line must hold a text)", input, line);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **ni = sc_realloc(ids, (size_t)cap * sizeof *ni);
            if (ni) ids = ni;
            char **nt = sc_realloc(texts, (size_t)cap * sizeof *nt);
            if (nt) texts = nt;
            char(*nn)[24] = sc_realloc(numid, (size_t)cap * sizeof *nn);
            if (nn) numid = nn;
            if (!ni || !nt || !nn) {
                rc = sc_fail(&err, SC_ENOMEM, "out of memory reading %s", input);
                break;
            }
        }
        char *tab = strchr(s, '\t');
        if (tab) {
            *tab = '\0';
            if (tab == s || tab[1] == '\0') {
                rc = sc_fail(&err, SC_EINVAL, "%s:%zu: empty %s before/after the tab", input, line, tab == s ? "id" : "text");
                break;
            }
            ids[n] = s;
            texts[n] = tab + 1;
        } else {
            snprintf(numid[n], sizeof numid[n], "%zu", line);
            ids[n] = NULL; /* the line number, resolved below (numid may move) */
            texts[n] = s;
        }
        const char *id = ids[n] ? ids[n] : numid[n];
        int fresh;
        int64_t k = sc_strmap_insert(&seen, id, strlen(id), (int64_t)line, &fresh);
        if (k < 0) {
            rc = sc_fail(&err, SC_ENOMEM, "out of memory reading %s", input);
            break;
        }
        if (!fresh) {
            rc = sc_fail(&err, SC_EINVAL, "%s:%zu: id '%s' is already the id of line %lld (ids must be unique)", input,
                         line, id, (long long)seen.val[k]);
            break;
        }
        n++;
    }
    if (rc == SC_OK && n == 0) rc = sc_fail(&err, SC_EINVAL, "%s: no texts", input);
    sc_vecstore_writer *w = NULL;
    if (rc == SC_OK && root) rc = sc_vecstore_writer_open(&w, outp, tv.name, D, &err);
    rc = sc_dist_agree(dist, rc, &err);
    /* a decoder embeds one text at a time: smaller chunks keep the progress bar moving */
    const int CHUNK = enc ? 4096 : 64;
    float *vecs = rc == SC_OK ? sc_malloc((size_t)CHUNK * (size_t)D * sizeof(float)) : NULL;
    if (rc == SC_OK && !vecs) rc = sc_fail(&err, SC_ENOMEM, "out of memory");
    prog_ctx pc = {0};
    sc_install_signal_handlers();
    sc_progress_begin(&pc.bar, "embed", n, "texts");
    if (enc) sc_encoder_set_progress(enc, chunk_progress, &pc);
    double t0 = sc_now();
    for (int64_t s = 0; rc == SC_OK && s < n; s += CHUNK) {
        int m = (int)(n - s < CHUNK ? n - s : CHUNK);
        int64_t lo, hi; /* this rank's texts of the chunk */
        sc_dist_slice(dist, m, &lo, &hi);
        pc.base = s + lo;
        if (hi > lo) rc = sc_textvec_encode(&tv, (const char *const *)texts + s + lo, (int)(hi - lo), vecs + lo * D, &err);
        if (rc == SC_OK && sc_interrupted()) rc = sc_fail(&err, SC_EINTERRUPTED, "interrupted; %s not written", outp);
        rc = sc_dist_agree(dist, rc, &err);
        if (rc == SC_OK) rc = sc_dist_gather_slices(dist, vecs, m, D, &err);
        if (!enc) sc_progress_update(&pc.bar, s + m, NULL);
        for (int i = 0; rc == SC_OK && root && i < m; i++)
            rc = sc_vecstore_writer_add(w, ids[s + i] ? ids[s + i] : numid[s + i], vecs + (int64_t)i * D, &err);
    }
    sc_progress_end(&pc.bar);
    double dt = sc_now() - t0;
    if (w) {
        if (rc == SC_OK) rc = sc_vecstore_writer_commit(w, &err);
        else sc_vecstore_writer_abort(w);
    }
    if (rc == SC_OK && root)
        fprintf(stderr, "semctr embed: %lld texts -> %s (%s, dim %d) in %.2fs, %.1f texts/s\n", (long long)n, outp,
                tv.name, D, dt, dt > 0 ? (double)n / dt : 0.0);
    sc_free(vecs);
    sc_free(ids);
    sc_free(numid);
    sc_free(buf);
    if (config)
        for (int64_t i = 0; i < n; i++) sc_free(texts[i]);
    sc_free(texts);
    sc_entity_table_free(&et);
    sc_strmap_free(&seen);
    sc_textvec_close(&tv);
    return cli_dist_finish("embed", dist, rc, &err);
}
