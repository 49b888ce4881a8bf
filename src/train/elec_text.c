#include "train/elec_text.h"

#include <ctype.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/strmap.h"

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
