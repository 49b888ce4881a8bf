/* MSD's texts and frozen-encoder vectors per level: the extraction files of
 * `semctr extract` (DIR/item.tsv, DIR/user.tsv), ELEC's entity text for an
 * entity they lack, the encoder through the vector-store cache, and where
 * every row, vocabulary id and history slot points.
 * Dimension letters: N rows, T entities of a level, S encoder size, V vocabulary size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "data/strmap.h"
#include "methods/elec/text.h"
#include "methods/msd/extract.h" /* sc_tsv_unescape */
#include "methods/msd/msd.h"

void sc_msd_tsv_free(sc_msd_tsv *t) {
    for (int64_t i = 0; i < t->n; i++) {
        sc_free(t->keys[i]);
        sc_free(t->texts[i]);
    }
    sc_free(t->keys);
    sc_free(t->texts);
    sc_free(t->ok);
    memset(t, 0, sizeof *t);
}

int sc_msd_tsv_read(const char *path, sc_msd_tsv *out, sc_error *err) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    int rc = sc_read_file(path, &buf, &len, err);
    if (rc) return rc;
    int64_t cap = 0, line = 0;
    char *p = buf, *end = buf + len;
    while (p < end && !rc) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (e > p && e[-1] == '\r') e[-1] = '\0';
        *e = '\0'; /* sc_read_file leaves a NUL after the data, so end is writable */
        line++;
        char *s = p;
        p = e + 1;
        if (line == 1 || !*s) continue; /* header, empty lines */
        char *t1 = strchr(s, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) {
            rc = sc_fail(err, SC_EFORMAT, "%s:%lld: expected key<TAB>status<TAB>text", path, (long long)line);
            break;
        }
        *t1 = *t2 = '\0';
        int ok = !strcmp(t1 + 1, "ok");
        if (!ok && strcmp(t1 + 1, "fallback")) {
            rc = sc_fail(err, SC_EFORMAT, "%s:%lld: status '%.32s' is neither ok nor fallback", path,
                         (long long)line, t1 + 1);
            break;
        }
        if (out->n == cap) {
            int64_t nc = cap ? cap * 2 : 1024;
            char **k = sc_realloc(out->keys, (size_t)nc * sizeof *k);
            if (k) out->keys = k;
            char **x = sc_realloc(out->texts, (size_t)nc * sizeof *x);
            if (x) out->texts = x;
            int *o = sc_realloc(out->ok, (size_t)nc * sizeof *o);
            if (o) out->ok = o;
            if (!k || !x || !o) {
                rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
                break;
            }
            cap = nc;
        }
        char *key = NULL, *text = NULL;
        int uk = sc_tsv_unescape(s, strlen(s), &key), ut = uk ? 0 : sc_tsv_unescape(t2 + 1, strlen(t2 + 1), &text);
        if (uk || ut) {
            sc_free(key);
            rc = uk == -2 || ut == -2 ? sc_fail(err, SC_ENOMEM, "%s: out of memory", path)
                                      : sc_fail(err, SC_EFORMAT, "%s:%lld: a backslash other than \\t \\n \\r \\\\ in the %s",
                                                path, (long long)line, uk ? "key" : "text");
            break;
        }
        out->keys[out->n] = key;
        out->texts[out->n] = text;
        out->ok[out->n] = ok;
        out->n++;
    }
    sc_free(buf);
    if (rc) sc_msd_tsv_free(out);
    return rc;
}

void sc_msd_semantics_free(sc_msd_semantics *s) {
    if (s->lora_base) {
        sc_msd_lora_base_free(s->lora_base);
        sc_free(s->lora_base);
    }
    for (int l = 0; l < 2; l++) {
        sc_free(s->text_of[l]);
        sc_free(s->table[l]);
        sc_free(s->id_slot[l]);
        for (int k = 0; k < 3; k++) sc_free(s->slot[k][l]);
    }
    sc_free(s->item_freq);
    memset(s, 0, sizeof *s);
}

/* The history field: the named one, or the first sequence field that
 * shares the item field's embedding table (its ids are item ids). */
static int find_fields(const sc_schema *schema, const sc_msd_config *cfg, int field[3], sc_error *err) {
    int nf;
    const sc_field_info *f = sc_schema_fields(schema, &nf);
    const char *names[2] = {cfg->item_field ? cfg->item_field : "item_id", cfg->user_field ? cfg->user_field : "user_id"};
    for (int l = 0; l < 2; l++) {
        field[l] = sc_schema_field_index(schema, names[l]);
        if (field[l] >= 0 && f[field[l]].kind != SC_FIELD_CATEGORICAL)
            return sc_fail(err, SC_EINVAL, "MSD: field '%s' is not categorical", names[l]);
    }
    field[2] = -1;
    if (cfg->history_field) {
        field[2] = sc_schema_field_index(schema, cfg->history_field);
        if (field[2] < 0 || f[field[2]].kind != SC_FIELD_SEQUENCE)
            return sc_fail(err, SC_EINVAL, "MSD: '%s' is not a sequence field of the dataset", cfg->history_field);
    } else if (field[0] >= 0) {
        for (int i = 0; i < nf && field[2] < 0; i++)
            if (f[i].kind == SC_FIELD_SEQUENCE && f[i].share_with == field[0]) field[2] = i;
    }
    if (field[2] >= 0 && field[0] >= 0 && f[field[2]].share_with != field[0])
        return sc_fail(err, SC_EINVAL, "MSD: history field '%s' does not hold ids of '%s'", f[field[2]].name,
                       f[field[0]].name);
    return SC_OK;
}

int sc_msd_semantics_build(const sc_schema *schema, const sc_dataset *const split[3], const sc_msd_config *cfg,
                           const char *texts_dir, const char *encoder_dir, const char *cache_path, int n_threads,
                           sc_dist *dist, sc_msd_semantics *out, sc_error *err) {
    memset(out, 0, sizeof *out);
    static const char *LEVEL[2] = {"item", "user"};
    int need[2] = {!!(cfg->levels & (SC_MSD_ITEM | SC_MSD_FUSION)), !!(cfg->levels & SC_MSD_USER)};
    int rc = find_fields(schema, cfg, out->field, err);
    if (rc) return rc;
    int auto_levels = cfg->levels == SC_MSD_AUTO; /* every level the dataset can have */
    if (auto_levels)
        for (int l = 0; l < 2; l++) need[l] = out->field[l] >= 0;
    for (int l = 0; l < 2; l++)
        if (need[l] && out->field[l] < 0)
            return sc_fail(err, SC_EINVAL, "MSD: the %s level needs the field '%s' in the dataset", LEVEL[l],
                           l ? (cfg->user_field ? cfg->user_field : "user_id") : (cfg->item_field ? cfg->item_field : "item_id"));
    if ((cfg->levels & SC_MSD_FUSION) && out->field[2] < 0)
        return sc_fail(err, SC_EINVAL, "MSD: fusion needs a behaviour-sequence field of item ids (--msd-history NAME)");
    if (texts_dir) { /* a mistyped directory must not silently train on raw texts */
        char p0[4200], p1[4200];
        snprintf(p0, sizeof p0, "%s/item.tsv", texts_dir);
        snprintf(p1, sizeof p1, "%s/user.tsv", texts_dir);
        if (!sc_file_exists(p0) && !sc_file_exists(p1))
            return sc_fail(err, SC_ENOTFOUND, "MSD: %s has neither item.tsv nor user.tsv (the output of semctr extract)",
                           texts_dir);
    }
    int nf;
    const sc_field_info *fi = sc_schema_fields(schema, &nf);
    for (int l = 0; l < 2; l++) out->V[l] = out->field[l] >= 0 ? fi[out->field[l]].vocab_size : 0;
    /* item frequencies: interactions per item id in the train split */
    if (out->field[0] >= 0) {
        out->item_freq = sc_calloc((size_t)out->V[0], sizeof(float));
        if (!out->item_freq) return sc_fail(err, SC_ENOMEM, "out of memory");
        const int32_t *ids = split[0]->ids[out->field[0]];
        for (int64_t r = 0; r < split[0]->n_rows; r++) out->item_freq[ids[r]] += 1.0f;
    }
    if (auto_levels && sc_schema_n_text(schema) == 0) need[0] = need[1] = 0; /* no text: only the plain backbone */
    if (!need[0] && !need[1]) return SC_OK; /* the plain backbone through the MSD loop */

    /* ELEC's entity texts: one per distinct entity, and each row's entity */
    sc_elec_texts et;
    rc = sc_elec_textualize(schema, split, SC_ELEC_ENTITY, NULL, &et, err);
    if (rc) return sc_fail_prefix(err, "MSD: ");
    sc_elec_texts fin = {0}; /* the texts encoded: extracted, or the ELEC text */
    sc_msd_tsv tsv[2] = {{0}};
    float *vec[2] = {NULL, NULL};
    int part[2] = {-1, -1};
    for (int l = 0; l < 2 && !rc; l++) {
        for (int p = 0; p < et.n_parts; p++)
            if (!strcmp(et.part_name[p], LEVEL[l])) part[l] = p;
        if (need[l] && part[l] < 0 && auto_levels) need[l] = 0;
        else if (need[l] && part[l] < 0)
            rc = sc_fail(err, SC_EINVAL, "MSD: the dataset has no text columns of the '%s' entity", LEVEL[l]);
    }
    out->available = (need[0] ? SC_MSD_ITEM : 0) | (need[1] ? SC_MSD_USER : 0) |
                     (need[0] && out->field[2] >= 0 ? SC_MSD_FUSION : 0);
    for (int l = 0; l < 2 && !rc; l++) {
        if (!need[l]) continue;
        int p = part[l];
        /* One entity per vocabulary id seen in any split (its extracted text is
         * keyed by the raw id), and one per distinct entity text among rows
         * whose id is out of the vocabulary (new entities: only the text is known). */
        int64_t cap = out->V[l] + et.n_texts[p] + 1, T = 0;
        out->id_slot[l] = sc_malloc((size_t)out->V[l] * sizeof(int32_t));
        int32_t *oov_slot = sc_malloc((size_t)(et.n_texts[p] + 1) * sizeof(int32_t));
        char **keys = sc_calloc((size_t)cap, sizeof *keys); /* borrowed from the schema */
        fin.texts[l] = sc_calloc((size_t)cap, sizeof(char *));
        if (!out->id_slot[l] || !keys || !fin.texts[l] || !oov_slot) {
            sc_free(keys);
            sc_free(oov_slot);
            rc = sc_fail(err, SC_ENOMEM, "out of memory");
            break;
        }
        for (int64_t v = 0; v < out->V[l]; v++) out->id_slot[l][v] = -1;
        for (int64_t k = 0; k <= et.n_texts[p]; k++) oov_slot[k] = -1;
        char **raw = (char **)fin.texts[l]; /* first the raw entity text of every slot */
        for (int s = 0; s < 3 && !rc; s++) {
            if (!split[s]) continue;
            int64_t N = split[s]->n_rows;
            out->slot[s][l] = sc_malloc((size_t)(N ? N : 1) * sizeof(int32_t));
            if (!out->slot[s][l]) {
                rc = sc_fail(err, SC_ENOMEM, "out of memory");
                break;
            }
            const int32_t *ids = split[s]->ids[out->field[l]];
            for (int64_t r = 0; r < N; r++) {
                int32_t k = et.index[s][p][r], id = ids[r], *slot;
                if (id >= 2) slot = &out->id_slot[l][id];
                else if (k >= 0) slot = &oov_slot[k];
                else {
                    out->slot[s][l][r] = -1; /* neither a known id nor a text */
                    continue;
                }
                if (*slot < 0) {
                    *slot = (int32_t)T;
                    if (id >= 2) keys[T] = (char *)sc_schema_id_string(schema, out->field[l], id);
                    raw[T] = k >= 0 ? et.texts[p][k] : NULL;
                    T++;
                } else if (!raw[*slot] && k >= 0) {
                    raw[*slot] = et.texts[p][k];
                }
                out->slot[s][l][r] = *slot;
            }
        }
        sc_free(oov_slot);
        out->T[l] = T;
        fin.n_texts[l] = T;
        if (rc) {
            sc_free(keys);
            break;
        }
        /* the extracted texts, by the entity's raw key */
        sc_strmap km;
        sc_strmap_init(&km);
        if (texts_dir) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.tsv", texts_dir, LEVEL[l]);
            if (sc_file_exists(path)) {
                rc = sc_msd_tsv_read(path, &tsv[l], err);
                for (int64_t i = 0; i < tsv[l].n && !rc; i++) {
                    int ins;
                    if (sc_strmap_insert(&km, tsv[l].keys[i], strlen(tsv[l].keys[i]), i, &ins) < 0)
                        rc = sc_fail(err, SC_ENOMEM, "out of memory");
                }
            } else {
                sc_info("MSD: %s not found: every %s gets its raw entity text", path, LEVEL[l]);
            }
        }
        for (int64_t k = 0; k < T && !rc; k++) {
            int64_t i = keys[k] ? sc_strmap_find(&km, keys[k], strlen(keys[k])) : -1;
            if (i >= 0 && tsv[l].texts[i][0]) {
                fin.texts[l][k] = tsv[l].texts[i];
                out->n_extracted[l]++;
                if (!tsv[l].ok[i]) out->n_fallback_status[l]++;
            } else {
                /* the raw entity text (an id with no text at all: its key as the text) */
                if (!fin.texts[l][k]) fin.texts[l][k] = keys[k] ? keys[k] : "unknown";
                out->n_raw[l]++;
            }
        }
        sc_strmap_free(&km);
        sc_free(keys);
        if (!rc)
            sc_info("MSD %s level: %lld entities, %lld with extracted texts (%lld of them status fallback), %lld with "
                    "their raw entity text",
                    LEVEL[l], (long long)T, (long long)out->n_extracted[l], (long long)out->n_fallback_status[l],
                    (long long)out->n_raw[l]);
    }
    /* distinct texts over both levels, encoded once (the vector store keys by text) */
    sc_elec_texts uniq = {0};
    int32_t *which[2] = {NULL, NULL};
    float *uvec[2] = {NULL, NULL};
    sc_strmap um;
    sc_strmap_init(&um);
    if (!rc) {
        uniq.n_parts = 1;
        uniq.texts[0] = sc_malloc((size_t)(fin.n_texts[0] + fin.n_texts[1] + 1) * sizeof(char *));
        if (!uniq.texts[0]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int l = 0; l < 2 && !rc; l++) {
        which[l] = sc_malloc((size_t)(fin.n_texts[l] + 1) * sizeof(int32_t));
        if (!which[l]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        for (int64_t k = 0; k < fin.n_texts[l] && !rc; k++) {
            int ins;
            int64_t u = sc_strmap_insert(&um, fin.texts[l][k], strlen(fin.texts[l][k]), 0, &ins);
            if (u < 0) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            else if (ins) uniq.texts[0][uniq.n_texts[0]++] = fin.texts[l][k];
            which[l][k] = (int32_t)u;
        }
    }
    if (!rc) {
        rc = sc_elec_encode_texts(&uniq, encoder_dir, cache_path, n_threads, dist, uvec, &out->S, out->encoder,
                                  sizeof out->encoder, err);
        if (rc) sc_fail_prefix(err, "MSD: ");
    }
    const int root = sc_dist_rank(dist) == 0; /* the other ranks only helped encode */
    for (int l = 0; l < 2 && !rc && root; l++) {
        vec[l] = sc_malloc((size_t)(fin.n_texts[l] + 1) * out->S * sizeof(float));
        if (!vec[l]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        for (int64_t k = 0; k < fin.n_texts[l] && !rc; k++)
            memcpy(vec[l] + k * out->S, uvec[0] + (int64_t)which[l][k] * out->S, (size_t)out->S * sizeof(float));
    }
    if (!rc && root && cfg->lora.rank > 0) {
        /* LoRA: the frozen lower layers over every distinct text, once; each entity's text among them */
        out->lora_base = sc_calloc(1, sizeof *out->lora_base);
        char lpath[4300];
        if (cache_path) snprintf(lpath, sizeof lpath, "%s.lora%d", cache_path, cfg->lora.layers);
        rc = out->lora_base ? sc_msd_lora_base_build(out->lora_base, encoder_dir, (const char *const *)uniq.texts[0],
                                                     uniq.n_texts[0], cfg->lora.layers, n_threads,
                                                     cache_path ? lpath : NULL, err)
                            : sc_fail(err, SC_ENOMEM, "out of memory");
        for (int l = 0; l < 2 && !rc; l++)
            if (need[l]) {
                out->text_of[l] = which[l];
                which[l] = NULL;
            }
    }
    sc_strmap_free(&um);
    sc_free(uvec[0]);
    sc_free(uvec[1]);
    sc_free(uniq.texts[0]);
    for (int l = 0; l < 2; l++) {
        sc_free(which[l]);
        if (!rc && need[l]) out->table[l] = vec[l];
        else sc_free(vec[l]);
        sc_free(fin.texts[l]); /* the strings are borrowed */
        sc_msd_tsv_free(&tsv[l]);
    }
    sc_elec_texts_free(&et);
    if (rc) sc_msd_semantics_free(out);
    return rc;
}
