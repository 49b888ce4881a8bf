#include "methods/elec/text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/strmap.h"
#include "lm/textvec.h"
#include "lm/vecstore.h"

/* "release_date" -> "Release date": the field name as a word in a sentence. */
static void field_words(const char *name, char *out, size_t cap) {
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++) out[i] = name[i] == '_' ? ' ' : name[i];
    out[i] = '\0';
    if (out[0]) out[0] = (char)toupper((unsigned char)out[0]);
}

/* A growing string buffer. */
typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s) {
    size_t m = strlen(s);
    if (b->n + m + 1 > b->cap) {
        size_t cap = (b->n + m + 1) * 2;
        char *p = sc_realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, m + 1);
    b->n += m;
    return 0;
}

void sc_elec_texts_free(sc_elec_texts *t) {
    for (int p = 0; p < 2; p++) {
        for (int64_t i = 0; i < t->n_texts[p]; i++) sc_free(t->texts[p][i]);
        sc_free(t->texts[p]);
        for (int s = 0; s < 3; s++) sc_free(t->index[s][p]);
    }
    memset(t, 0, sizeof *t);
}

const char *sc_elec_text(const sc_elec_texts *t, int s, int p, int64_t r) {
    int32_t k = t->index[s][p][r];
    return k < 0 ? NULL : t->texts[p][k];
}

int sc_elec_textualize(const sc_schema *schema, const sc_dataset *const split[3], int granularity,
                       const char *columns, sc_elec_texts *out, sc_error *err) {
    memset(out, 0, sizeof *out);
    out->method = "ELEC";
    int nt = sc_schema_n_text(schema);
    int cols[64], n_cols = 0;
    if (columns && *columns) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", columns);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            while (*tok == ' ') tok++;
            int t = sc_schema_text_index(schema, tok);
            if (t < 0) {
                char avail[512] = "";
                for (int i = 0; i < nt; i++) {
                    strncat(avail, i ? ", " : "", sizeof avail - strlen(avail) - 1);
                    strncat(avail, sc_schema_text_name(schema, i), sizeof avail - strlen(avail) - 1);
                }
                return sc_fail(err, SC_EINVAL, "ELEC text: '%s' is not a text column of the dataset (it has: %s)", tok,
                               nt ? avail : "none; add text columns to the dataset config");
            }
            if (n_cols < 64) cols[n_cols++] = t;
        }
    } else {
        for (int t = 0; t < nt && n_cols < 64; t++) cols[n_cols++] = t;
    }
    if (n_cols == 0)
        return sc_fail(err, SC_EINVAL, "ELEC text: the dataset has no text columns; declare some in its config");

    /* part of each chosen column */
    int part_of[64];
    if (granularity == SC_ELEC_SAMPLE) {
        out->n_parts = 1;
        snprintf(out->part_name[0], sizeof out->part_name[0], "sample");
        for (int i = 0; i < n_cols; i++) part_of[i] = 0;
    } else {
        for (int i = 0; i < n_cols; i++) {
            const char *ent = sc_schema_text_entity(schema, cols[i]);
            int p = -1;
            for (int q = 0; q < out->n_parts; q++)
                if (!strcmp(out->part_name[q], ent)) p = q;
            if (p < 0) {
                if (out->n_parts == 2)
                    return sc_fail(err, SC_EINVAL,
                                   "ELEC text: entity granularity supports two entities (e.g. user and item); "
                                   "column '%s' belongs to a third ('%s'): choose columns with --elec-text",
                                   sc_schema_text_name(schema, cols[i]), ent);
                p = out->n_parts++;
                snprintf(out->part_name[p], sizeof out->part_name[p], "%s", ent);
            }
            part_of[i] = p;
        }
    }
    /* the split files must hold the schema's text columns */
    for (int s = 0; s < 3; s++)
        if (split[s] && sc_dataset_n_text(split[s]) != nt)
            return sc_fail(err, SC_EINVAL, "ELEC text: a split has %d text columns, the schema %d",
                           sc_dataset_n_text(split[s]), nt);

    sc_strmap maps[2];
    sc_strmap_init(&maps[0]);
    sc_strmap_init(&maps[1]);
    int64_t caps[2] = {0, 0};
    strbuf sb = {0};
    int rc = SC_OK;
    for (int s = 0; s < 3 && !rc; s++) {
        if (!split[s]) continue;
        int64_t N = split[s]->n_rows;
        out->n_rows[s] = N;
        for (int p = 0; p < out->n_parts && !rc; p++) {
            out->index[s][p] = sc_malloc((size_t)(N ? N : 1) * sizeof(int32_t));
            if (!out->index[s][p]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        }
        for (int64_t r = 0; r < N && !rc; r++) {
            for (int p = 0; p < out->n_parts && !rc; p++) {
                sb.n = 0;
                if (sb.s) sb.s[0] = '\0';
                for (int i = 0; i < n_cols; i++) {
                    if (part_of[i] != p) continue;
                    const char *v = sc_schema_text(schema, cols[i], sc_dataset_text(split[s], cols[i])[r]);
                    if (!v || !*v) continue;
                    char words[80];
                    field_words(sc_schema_text_name(schema, cols[i]), words, sizeof words);
                    if ((sb.n && sb_add(&sb, " ")) || sb_add(&sb, words) || sb_add(&sb, " is ") || sb_add(&sb, v) ||
                        sb_add(&sb, "."))
                        rc = sc_fail(err, SC_ENOMEM, "out of memory");
                }
                if (rc) break;
                if (sb.n == 0) {
                    out->index[s][p][r] = -1;
                    continue;
                }
                int inserted;
                int64_t k = sc_strmap_insert(&maps[p], sb.s, sb.n, 0, &inserted);
                if (k < 0 || k >= INT32_MAX) {
                    rc = sc_fail(err, SC_ENOMEM, "out of memory for ELEC texts");
                    break;
                }
                if (inserted) {
                    if (k >= caps[p]) {
                        int64_t nc = caps[p] ? caps[p] * 2 : 1024;
                        char **nt2 = sc_realloc(out->texts[p], (size_t)nc * sizeof(char *));
                        if (!nt2) {
                            rc = sc_fail(err, SC_ENOMEM, "out of memory");
                            break;
                        }
                        out->texts[p] = nt2;
                        caps[p] = nc;
                    }
                    out->texts[p][k] = sc_strdup(sb.s);
                    out->n_texts[p] = k + 1;
                    if (!out->texts[p][k]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
                }
                out->index[s][p][r] = (int32_t)k;
            }
        }
    }
    sc_free(sb.s);
    sc_strmap_free(&maps[0]);
    sc_strmap_free(&maps[1]);
    if (rc) sc_elec_texts_free(out);
    return rc;
}

void sc_elec_vectors_from_texts(const sc_elec_texts *t, float *const tables[2], int dim, sc_elec_vectors vec[3]) {
    for (int s = 0; s < 3; s++) {
        memset(&vec[s], 0, sizeof vec[s]);
        vec[s].n_parts = t->n_parts;
        vec[s].part_dim = dim;
        vec[s].n_rows = t->n_rows[s];
        for (int p = 0; p < t->n_parts; p++) {
            vec[s].index[p] = t->index[s][p];
            vec[s].table[p] = tables[p];
        }
    }
}

/* The cache key of a text: 16 hex digits of its XXH3-64 hash. */
static void text_key(const char *text, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)XXH3_64bits(text, strlen(text)));
}

int sc_elec_encode_texts(const sc_elec_texts *t, const char *model_dir, const char *cache_path, int n_threads,
                         sc_dist *dist, float *tables[2], int *dim, char *model_name, size_t model_name_cap,
                         sc_error *err) {
    tables[0] = tables[1] = NULL;
    sc_textvec lm = {0};
    char tag[300];
    sc_vecstore *cache = NULL;
    sc_vecstore_writer *w = NULL;
    const char **missing = NULL;
    float **missing_dst = NULL, *buf = NULL;
    int64_t n_missing = 0, total = t->n_texts[0] + t->n_texts[1], *which = NULL;
    /* Over ranks: rank 0 reads and writes the cache and keeps the tables; every rank encodes its
     * slice of each chunk of missing texts (all ranks load the model). */
    const int root = sc_dist_rank(dist) == 0, ranks = sc_dist_size(dist);
    /* ELEC feeds the mean-pooled last hidden state, not the unit-normalised sentence embedding */
    /* another method (MSD) encodes its own text set through here: the log names the method that asked */
    const char *who = t->method ? t->method : "text encoder", *sep = t->method ? " " : "";
    int rc = sc_textvec_open(&lm, model_dir, n_threads, err);
    if (rc)
        sc_fail_prefix(err, "%s%slanguage model (fetch it with scripts/fetch_model.sh or pass --lm): ",
                       t->method ? t->method : "", sep);
    int D = rc ? 0 : lm.dim;
    if (!rc) {
        sc_textvec_set_normalize(&lm, 0);
        /* the cache records what the vectors are, so another model's or kind's store is refused */
        snprintf(tag, sizeof tag, "%s (%s)", lm.name, lm.llm ? "mean last hidden state" : "pooled, not normalised");
        snprintf(model_name, model_name_cap, "%s", tag);
        *dim = D;
    }
    if (!rc && root && cache_path && sc_file_exists(cache_path)) {
        rc = sc_vecstore_open(&cache, cache_path, 0, err);
        if (!rc && (sc_vecstore_dim(cache) != D || strcmp(sc_vecstore_model(cache), tag)))
            rc = sc_fail(err, SC_EINVAL,
                         "%s: vector store of '%s' (dim %d), but the encoder is '%s' (dim %d); "
                         "delete the store or pass another --elec-cache",
                         cache_path, sc_vecstore_model(cache), sc_vecstore_dim(cache), tag, D);
    }
    if (!rc) {
        missing = sc_malloc((size_t)(total ? total : 1) * sizeof *missing);
        missing_dst = sc_malloc((size_t)(total ? total : 1) * sizeof *missing_dst);
        which = sc_malloc((size_t)(total ? total : 1) * sizeof *which);
        if (!missing || !missing_dst || !which) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int p = 0; p < t->n_parts && !rc && root; p++) {
        tables[p] = sc_malloc((size_t)(t->n_texts[p] ? t->n_texts[p] : 1) * D * sizeof(float));
        if (!tables[p]) {
            rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld vectors", (long long)t->n_texts[p]);
            break;
        }
        for (int64_t i = 0; i < t->n_texts[p]; i++) {
            char key[17];
            text_key(t->texts[p][i], key);
            const float *v = cache ? sc_vecstore_get(cache, key) : NULL;
            float *dst = tables[p] + i * D;
            if (v) {
                memcpy(dst, v, (size_t)D * sizeof(float));
            } else {
                which[n_missing] = (p ? t->n_texts[0] : 0) + i;
                missing[n_missing] = t->texts[p][i];
                missing_dst[n_missing++] = dst;
            }
        }
    }
    /* the other ranks learn which texts are missing (index over both parts' texts) */
    rc = sc_dist_agree(dist, rc, err);
    if (!rc && ranks > 1) rc = sc_dist_bcast(dist, &n_missing, sizeof n_missing, err);
    if (!rc && ranks > 1) rc = sc_dist_bcast(dist, which, (size_t)n_missing * sizeof *which, err);
    for (int64_t k = 0; k < n_missing && !rc && !root; k++) {
        int64_t i = which[k], p = i >= t->n_texts[0];
        if (i < 0 || i >= total) rc = sc_fail(err, SC_EINTERNAL, "text index %lld from rank 0 out of range", (long long)i);
        else missing[k] = t->texts[p][i - (p ? t->n_texts[0] : 0)];
    }
    if (!rc)
        sc_info("%s: %lld distinct texts, %lld cached in %s, %lld to encode with %s%s", who, (long long)total,
                (long long)(total - n_missing), cache_path ? cache_path : "(no cache)", (long long)n_missing, tag,
                ranks > 1 ? " over the ranks" : "");
    if (!rc && n_missing) {
        /* each rank gets about 512 texts of a chunk; a text's vector does not depend on its batch */
        const int64_t CHUNK = 512 * (int64_t)ranks;
        buf = sc_malloc((size_t)CHUNK * D * sizeof(float));
        if (!buf) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        rc = sc_dist_agree(dist, rc, err);
        sc_progress prog;
        sc_progress_begin(&prog, "encoding", n_missing, "texts");
        for (int64_t i = 0; i < n_missing && !rc; i += CHUNK) {
            int n = (int)(n_missing - i < CHUNK ? n_missing - i : CHUNK);
            int64_t lo, hi; /* this rank's texts of the chunk */
            sc_dist_slice(dist, n, &lo, &hi);
            if (sc_interrupted())
                rc = sc_fail(err, SC_EINTERRUPTED, "interrupted while encoding texts; nothing was cached");
            if (!rc && hi > lo) rc = sc_textvec_encode(&lm, missing + i + lo, (int)(hi - lo), buf + lo * D, err);
            rc = sc_dist_agree(dist, rc, err);
            if (!rc) rc = sc_dist_gather_slices(dist, buf, n, D, err);
            for (int k = 0; k < n && !rc && root; k++)
                memcpy(missing_dst[i + k], buf + (int64_t)k * D, (size_t)D * sizeof(float));
            sc_progress_update(&prog, i + n, NULL);
        }
        sc_progress_end(&prog);
        if (!rc && cache_path && root) {
            /* the new store: every old entry plus the new ones */
            rc = sc_vecstore_writer_open(&w, cache_path, tag, D, err);
            for (int64_t i = 0; cache && i < sc_vecstore_count(cache) && !rc; i++)
                rc = sc_vecstore_writer_add(w, sc_vecstore_id(cache, i), sc_vecstore_vec(cache, i), err);
            for (int64_t i = 0; i < n_missing && !rc; i++) {
                char key[17];
                text_key(missing[i], key);
                rc = sc_vecstore_writer_add(w, key, missing_dst[i], err);
            }
            if (!rc) {
                if (cache) sc_vecstore_close(cache);
                cache = NULL;
                rc = sc_vecstore_writer_commit(w, err);
            } else if (w) {
                sc_vecstore_writer_abort(w);
            }
            w = NULL;
        }
        if (ranks > 1) rc = sc_dist_agree(dist, rc, err);
    }
    if (cache) sc_vecstore_close(cache);
    sc_textvec_close(&lm);
    sc_free(missing);
    sc_free(missing_dst);
    sc_free(which);
    sc_free(buf);
    if (rc) {
        sc_free(tables[0]);
        sc_free(tables[1]);
        tables[0] = tables[1] = NULL;
    }
    return rc;
}

int sc_elec_time_llm(const sc_elec_texts *t, int s, const char *model_dir, int n_threads, double *ms,
                     sc_error *err) {
    int64_t rows = t->n_rows[s] < 1000 ? t->n_rows[s] : 1000;
    const char **texts = sc_malloc((size_t)(rows * t->n_parts + 1) * sizeof *texts);
    if (!texts) return sc_fail(err, SC_ENOMEM, "out of memory");
    int n = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int p = 0; p < t->n_parts; p++) {
            const char *x = sc_elec_text(t, s, p, r);
            if (x) texts[n++] = x;
        }
    sc_textvec lm;
    float *out = NULL;
    int rc = sc_textvec_open(&lm, model_dir, n_threads, err);
    if (!rc) sc_textvec_set_normalize(&lm, 0);
    if (!rc) {
        out = sc_malloc((size_t)(n ? n : 1) * lm.dim * sizeof(float));
        if (!out) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    double tm[3];
    for (int k = 0; k < 3 && !rc; k++) {
        double t0 = sc_now();
        rc = sc_textvec_encode(&lm, texts, n, out, err);
        tm[k] = (sc_now() - t0) * 1000.0 * 1000.0 / (double)(rows ? rows : 1);
    }
    if (!rc) *ms = sc_median(tm, 3);
    sc_free(out);
    sc_free(texts);
    sc_textvec_close(&lm);
    return rc;
}
