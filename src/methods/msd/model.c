/* A loaded MSD model file: the adapted-vector tables by vocabulary id, the
 * item frequencies, the fusion and the adaptors, checked against each
 * other; semantic fields of a batch by table lookups (methods/msd/msd.h).
 * Dimension letters: B batch, D embedding size, S encoder size, V table
 * rows, W history width, K semantic fields. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/textvec.h"
#include "methods/elec/text.h"
#include "methods/msd/msd.h"

static const char *LEVEL[2] = {"item", "user"};

void sc_msd_model_free(sc_msd_model *m) {
    sc_mlp_free(m->adaptor[0]);
    sc_mlp_free(m->adaptor[1]);
    sc_free(m->lora_w);
    memset(m, 0, sizeof *m);
}

uint64_t sc_msd_table_version(sc_mlp *adaptor, const sc_param *lora, int n_lora) {
    int np;
    sc_param *p = sc_mlp_params(adaptor, &np);
    const float **t = sc_malloc((size_t)(np + n_lora) * sizeof *t);
    int64_t *sz = sc_malloc((size_t)(np + n_lora) * sizeof *sz);
    uint64_t h = 0;
    if (t && sz) {
        for (int k = 0; k < np + n_lora; k++) {
            const sc_param *q = k < np ? &p[k] : &lora[k - np];
            t[k] = q->data;
            sz[k] = q->size;
        }
        h = sc_msd_weights_hash(t, sz, np + n_lora);
    }
    sc_free(t);
    sc_free(sz);
    return h;
}

/* The LoRA weights of the file's "msd.lora" section into m (m->lora.rank 0
 * when the file has none). The tensors, in training's order, are listed in
 * *params (the caller's, sc_free) for the tables' version check. */
static int load_lora(sc_msd_model *m, const sc_container *c, const cJSON *ms, sc_param **params, int *n_params,
                     sc_error *err) {
    *params = NULL;
    *n_params = 0;
    const cJSON *lj = cJSON_GetObjectItemCaseSensitive(ms, "lora");
    if (!lj) return SC_OK;
    static const char *KEY[5] = {"rank", "layers", "first_layer", "hidden", "intermediate"};
    int v[5];
    for (int k = 0; k < 5; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(lj, KEY[k]);
        if (!cJSON_IsNumber(x) || x->valuedouble != (int)x->valuedouble || x->valuedouble < (k == 2 ? 0 : 1) ||
            x->valuedouble > 1 << 20)
            return sc_fail(err, SC_EFORMAT, "%s: MSD lora.%s is missing or not a valid integer", c->path, KEY[k]);
        v[k] = (int)x->valuedouble;
    }
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(lj, "scale"), *en = cJSON_GetObjectItemCaseSensitive(lj, "encoder");
    if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble) || !cJSON_IsString(en))
        return sc_fail(err, SC_EFORMAT, "%s: MSD lora.scale or lora.encoder is missing", c->path);
    if (v[1] > SC_LORA_MAX_LAYERS || v[3] != m->S || v[0] > v[3])
        return sc_fail(err, SC_EFORMAT, "%s: MSD lora: %d layers of rank %d on a %d-wide encoder (encoder_dim %d)",
                       c->path, v[1], v[0], v[3], m->S);
    sc_lora *lo = &m->lora;
    lo->rank = v[0];
    lo->n = v[1];
    lo->first = v[2];
    lo->scale = (float)sc->valuedouble;
    m->lora_hidden = v[3];
    m->lora_intermediate = v[4];
    snprintf(m->lora_encoder, sizeof m->lora_encoder, "%s", en->valuestring);
    sc_bert_config bc = {.hidden = v[3], .intermediate = v[4]};
    int64_t total = 0;
    for (int p = 0; p < SC_LORA_PROJ; p++) {
        int K, D;
        sc_lora_proj_dims(&bc, p, &K, &D);
        total += (int64_t)lo->rank * (K + D);
    }
    m->lora_w = sc_malloc((size_t)(total * lo->n) * sizeof(float));
    *params = sc_calloc((size_t)(2 * SC_LORA_PROJ * lo->n), sizeof **params);
    if (!m->lora_w || !*params) return sc_fail(err, SC_ENOMEM, "out of memory");
    float *w = m->lora_w;
    for (int i = 0; i < lo->n; i++)
        for (int p = 0; p < SC_LORA_PROJ; p++) {
            int K, D;
            sc_lora_proj_dims(&bc, p, &K, &D);
            for (int ab = 0; ab < 2; ab++) {
                sc_param *q = &(*params)[(*n_params)++];
                snprintf(q->name, sizeof q->name, "msd/lora.%d.%s.%s", lo->first + i, SC_LORA_PROJ_NAME[p], ab ? "B" : "A");
                q->size = (int64_t)lo->rank * (ab ? D : K);
                const sc_container_entry *e = sc_container_find(c, q->name);
                if (!e || !e->is_f32 || e->bytes != (uint64_t)q->size * sizeof(float))
                    return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or not of %lld floats", c->path, q->name,
                                   (long long)q->size);
                memcpy(w, e->data, e->bytes);
                q->data = w;
                if (ab) lo->B[i][p] = w;
                else lo->A[i][p] = w;
                w += q->size;
            }
        }
    return SC_OK;
}

/* Adaptor of level l from "msd/<level>.adaptor/<param>"; dims from the
 * entries' sizes (S -> D, or S -> H -> D). */
static int load_adaptor(sc_msd_model *m, const sc_container *c, int l, int layers, sc_error *err) {
    char name[128];
    int dims[3] = {m->S, m->D, m->D};
    if (layers == 2) {
        snprintf(name, sizeof name, "msd/%s.adaptor/%s.0.bias", LEVEL[l], LEVEL[l]);
        const sc_container_entry *e = sc_container_find(c, name);
        if (!e) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' is missing", c->path, name);
        dims[1] = (int)(e->bytes / sizeof(float));
    }
    int rc = sc_mlp_create(&m->adaptor[l], LEVEL[l], dims, layers, 0, 0, err);
    if (rc) return rc;
    int np;
    sc_param *p = sc_mlp_params(m->adaptor[l], &np);
    for (int k = 0; k < np; k++) {
        snprintf(name, sizeof name, "msd/%s.adaptor/%s", LEVEL[l], p[k].name);
        const sc_container_entry *e = sc_container_find(c, name);
        if (!e || !e->is_f32 || e->bytes != (uint64_t)p[k].size * sizeof(float))
            return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or not of %lld floats", c->path, name,
                           (long long)p[k].size);
        memcpy(p[k].data, e->data, e->bytes);
    }
    return SC_OK;
}

int sc_msd_model_load(sc_msd_model *m, const sc_model_bundle *b, sc_error *err) {
    memset(m, 0, sizeof *m);
    const sc_container *c = &b->file;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(c->header, "msd");
    if (strcmp(b->method, "msd") || !cJSON_IsObject(ms))
        return sc_fail(err, SC_EFORMAT, "%s: not an MSD model (method '%s')", c->path, b->method);
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(ms, "levels");
    const cJSON *D = cJSON_GetObjectItemCaseSensitive(ms, "embed_dim");
    const cJSON *S = cJSON_GetObjectItemCaseSensitive(ms, "encoder_dim");
    const cJSON *fu = cJSON_GetObjectItemCaseSensitive(ms, "fusion");
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(ms, "encoder");
    const cJSON *tabs = cJSON_GetObjectItemCaseSensitive(ms, "tables");
    if (!cJSON_IsString(lv) || !cJSON_IsNumber(D) || !cJSON_IsNumber(S) || cJSON_GetArraySize(fu) != 2 ||
        D->valuedouble < 1 || D->valuedouble > 4096 || S->valuedouble < 0 || S->valuedouble > 65536)
        return sc_fail(err, SC_EFORMAT, "%s: the MSD section lacks levels, embed_dim, encoder_dim or fusion", c->path);
    int rc = sc_msd_parse_levels(lv->valuestring, &m->levels, err);
    if (rc) return sc_fail_prefix(err, "%s: ", c->path);
    m->K = sc_msd_n_fields(m->levels);
    m->D = (int)D->valuedouble;
    m->S = (int)S->valuedouble;
    m->ab[0] = (float)cJSON_GetArrayItem(fu, 0)->valuedouble;
    m->ab[1] = (float)cJSON_GetArrayItem(fu, 1)->valuedouble;
    snprintf(m->encoder, sizeof m->encoder, "%s", cJSON_IsString(enc) ? enc->valuestring : "");
    sc_model *net = sc_model_bundle_network(b, "main");
    const sc_model_config *nc = net ? sc_model_get_config(net) : NULL;
    if (!nc || nc->extra_dim != m->K * m->D || (m->K && nc->extra_mode != SC_EXTRA_FIELDS) || nc->embed_dim != m->D)
        return sc_fail(err, SC_EFORMAT, "%s: network 'main' does not take the %d MSD fields of size %d", c->path, m->K,
                       m->D);
    static const char *FKEY[3] = {"item_field", "user_field", "history_field"};
    int nf;
    const sc_field_info *fi = sc_schema_fields(b->schema, &nf);
    for (int f = 0; f < 3; f++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(ms, FKEY[f]);
        m->field[f] = cJSON_IsString(x) ? sc_schema_field_index(b->schema, x->valuestring) : -1;
        if (cJSON_IsString(x) && m->field[f] < 0)
            return sc_fail(err, SC_EFORMAT, "%s: MSD %s '%s' is not a field of the schema", c->path, FKEY[f],
                           x->valuestring);
    }
    sc_param *lora_p = NULL;
    int n_lora_p = 0;
    if ((rc = load_lora(m, c, ms, &lora_p, &n_lora_p, err))) goto fail;
    int need[2] = {!!(m->levels & (SC_MSD_ITEM | SC_MSD_FUSION)), !!(m->levels & SC_MSD_USER)};
    if ((m->levels & SC_MSD_FUSION) &&
        (m->field[2] < 0 || fi[m->field[2]].kind != SC_FIELD_SEQUENCE || fi[m->field[2]].share_with != m->field[0])) {
        rc = sc_fail(err, SC_EFORMAT, "%s: MSD fusion needs a history field of item ids", c->path);
        goto fail;
    }
    m->W = m->field[2] >= 0 ? fi[m->field[2]].width : 0;
    for (int l = 0; l < 2; l++) {
        if (!need[l]) continue;
        if (m->field[l] < 0) {
            rc = sc_fail(err, SC_EFORMAT, "%s: MSD %s level without its id field", c->path, LEVEL[l]);
            goto fail;
        }
        const cJSON *tj = cJSON_GetObjectItemCaseSensitive(tabs, LEVEL[l]);
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(tj, "adaptor_version");
        const cJSON *nl = cJSON_GetObjectItemCaseSensitive(tj, "adaptor_layers");
        char name[96];
        snprintf(name, sizeof name, "msd/%s.table", LEVEL[l]);
        if (!cJSON_IsString(ver) || !cJSON_IsNumber(nl) || (nl->valueint != 1 && nl->valueint != 2)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: MSD table '%s' has no adaptor version", c->path, name);
            goto fail;
        }
        m->V[l] = fi[m->field[l]].vocab_size;
        const sc_container_entry *e = sc_container_find(c, name);
        if (!e || !e->is_f32 || e->bytes != (uint64_t)m->V[l] * m->D * sizeof(float)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: MSD table '%s' missing or not (%lld, %d) floats", c->path, name,
                         (long long)m->V[l], m->D);
            goto fail;
        }
        m->table[l] = (const float *)e->data;
        if ((rc = load_adaptor(m, c, l, nl->valueint, err))) goto fail;
        /* the table must come from these adaptor (and LoRA) weights */
        char have[24];
        snprintf(have, sizeof have, "%016llx", (unsigned long long)sc_msd_table_version(m->adaptor[l], lora_p, n_lora_p));
        if (strcmp(have, ver->valuestring)) {
            rc = sc_fail(err, SC_EFORMAT,
                         "%s: MSD table '%s' was made by adaptor version %s, but the file's %s adaptor is version %s: "
                         "the table and the adaptor do not belong together (retrain or re-export the model)",
                         c->path, name, ver->valuestring, LEVEL[l], have);
            goto fail;
        }
    }
    sc_free(lora_p);
    lora_p = NULL;
    if (need[0]) {
        const sc_container_entry *e = sc_container_find(c, "msd/item.freq");
        if (!e || !e->is_f32 || e->bytes != (uint64_t)m->V[0] * sizeof(float)) {
            rc = sc_fail(err, SC_EFORMAT, "%s: MSD tensor 'msd/item.freq' missing or not %lld floats", c->path,
                         (long long)m->V[0]);
            goto fail;
        }
        m->item_freq = (const float *)e->data;
    }
    return SC_OK;
fail:
    sc_free(lora_p);
    sc_msd_model_free(m);
    return rc;
}

int sc_msd_model_extra(const sc_msd_model *m, const sc_batch *b, const float *const *item_override,
                       const float *const *user_override, float *extra, int64_t *n_unknown, sc_error *err) {
    int B = b->n, W = m->W, D = m->D;
    if (!m->K || B == 0) return SC_OK;
    const float **iv = sc_malloc((size_t)B * sizeof *iv), **uv = sc_malloc((size_t)B * sizeof *uv);
    const float **hv = sc_malloc((size_t)B * (W ? W : 1) * sizeof *hv);
    float *lf = sc_malloc((size_t)B * (W ? W : 1) * sizeof *lf);
    int rc = SC_OK;
    int64_t unk = 0;
    if (!iv || !uv || !hv || !lf) {
        rc = sc_fail(err, SC_ENOMEM, "MSD: out of memory for %d rows", B);
        goto done;
    }
    for (int i = 0; i < B; i++) {
        iv[i] = uv[i] = NULL;
        if (m->levels & SC_MSD_ITEM) {
            int32_t id = b->ids[m->field[0]][i];
            if (item_override && item_override[i]) iv[i] = item_override[i];
            else if (id >= 2 && id < m->V[0]) iv[i] = m->table[0] + (int64_t)id * D;
            else unk++;
        }
        if (m->levels & SC_MSD_USER) {
            int32_t id = b->ids[m->field[1]][i];
            if (user_override && user_override[i]) uv[i] = user_override[i];
            else if (id >= 2 && id < m->V[1]) uv[i] = m->table[1] + (int64_t)id * D;
            else unk++;
        }
        if (m->levels & SC_MSD_FUSION) {
            const int32_t *h = b->ids[m->field[2]] + (int64_t)i * W;
            for (int j = 0; j < W; j++) {
                int ok = h[j] >= 2 && h[j] < m->V[0];
                hv[i * W + j] = ok ? m->table[0] + (int64_t)h[j] * D : NULL;
                lf[i * W + j] = ok ? log1pf(m->item_freq[h[j]]) : -1.0f;
            }
        }
    }
    rc = sc_msd_compose(m->levels, D, B, W, iv, uv, hv, lf, m->ab, extra, NULL, err);
done:
    sc_free(iv);
    sc_free(uv);
    sc_free(hv);
    sc_free(lf);
    if (n_unknown) *n_unknown += unk;
    return rc;
}

/* The adapted vectors of the new entities of ds (ids out of the vocabulary,
 * with a raw entity text): nv[l] (distinct texts, D), row_new[l] (N) the
 * row's index in it or -1. */
static int encode_new(sc_msd_model *m, const sc_schema *schema, const sc_dataset *ds, const char *encoder_dir,
                      int n_threads, float *nv[2], int32_t *row_new[2], int64_t *n_encoded, sc_error *err) {
    const sc_dataset *split[3] = {ds, NULL, NULL};
    sc_elec_texts et;
    int rc = sc_elec_textualize(schema, split, SC_ELEC_ENTITY, NULL, &et, err);
    if (rc) return sc_fail_prefix(err, "MSD new entities: ");
    sc_textvec enc = {0};
    int enc_open = 0;
    for (int l = 0; l < 2 && !rc; l++) {
        int used = l == 0 ? !!(m->levels & SC_MSD_ITEM) : !!(m->levels & SC_MSD_USER);
        int p = -1;
        for (int q = 0; q < et.n_parts; q++)
            if (!strcmp(et.part_name[q], LEVEL[l])) p = q;
        if (!used || p < 0 || !m->adaptor[l]) continue;
        int64_t N = ds->n_rows, T = et.n_texts[p], n = 0;
        int32_t *map = sc_malloc((size_t)(T + 1) * sizeof(int32_t));
        const char **texts = sc_malloc((size_t)(T + 1) * sizeof(char *));
        row_new[l] = sc_malloc((size_t)(N + 1) * sizeof(int32_t));
        if (!map || !texts || !row_new[l]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        for (int64_t k = 0; k < T && !rc; k++) map[k] = -1;
        for (int64_t r = 0; r < N && !rc; r++) {
            int32_t k = et.index[0][p][r], id = ds->ids[m->field[l]][r];
            row_new[l][r] = -1;
            if (id >= 2 || k < 0) continue;
            if (map[k] < 0) {
                map[k] = (int32_t)n;
                texts[n++] = et.texts[p][k];
            }
            row_new[l][r] = map[k];
        }
        if (!rc && n > 0) {
            if (!enc_open) {
                rc = sc_textvec_open(&enc, encoder_dir, n_threads, err);
                if (!rc) {
                    enc_open = 1;
                    sc_textvec_set_normalize(&enc, 0); /* as in training: the pooled state, not normalised */
                    if (enc.dim != m->S)
                        rc = sc_fail(err, SC_EINVAL, "MSD: the encoder %s gives %d-d vectors, the model's adaptors take %d (%s)",
                                     encoder_dir, enc.dim, m->S, m->encoder);
                }
            }
            float *x = rc ? NULL : sc_malloc((size_t)n * m->S * sizeof(float));
            nv[l] = rc ? NULL : sc_malloc((size_t)n * m->D * sizeof(float));
            if (!rc && (!x || !nv[l])) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            for (int64_t i = 0; i < n && !rc; i += 256) {
                int c = (int)(n - i < 256 ? n - i : 256);
                rc = sc_msd_model_encode_texts(m, &enc, texts + i, c, x + i * m->S, err);
                if (!rc) rc = sc_msd_model_adapt_items_level(m, l, x + i * m->S, c, nv[l] + i * m->D, err);
            }
            sc_free(x);
            *n_encoded += n;
        }
        sc_free(map);
        sc_free(texts);
    }
    if (enc_open) sc_textvec_close(&enc);
    sc_elec_texts_free(&et);
    return rc;
}

int sc_msd_model_extra_dataset(sc_msd_model *m, const sc_schema *schema, const sc_dataset *ds,
                               const char *encoder_dir, int n_threads, float **extra, int64_t *n_unknown,
                               int64_t *n_encoded, sc_error *err) {
    *extra = NULL;
    if (!m->K) return SC_OK;
    int64_t N = ds->n_rows, KD = (int64_t)m->K * m->D, enc_count = 0;
    float *nv[2] = {NULL, NULL};
    int32_t *row_new[2] = {NULL, NULL};
    int rc = encoder_dir ? encode_new(m, schema, ds, encoder_dir, n_threads, nv, row_new, &enc_count, err) : SC_OK;
    if (n_encoded) *n_encoded = enc_count;
    float *x = rc ? NULL : sc_malloc((size_t)(N ? N : 1) * KD * sizeof(float));
    if (!rc && !x) rc = sc_fail(err, SC_ENOMEM, "MSD: out of memory for %lld rows", (long long)N);
    enum { CH = 4096 };
    sc_batch b = {0};
    if (!rc) rc = sc_batch_alloc(&b, ds->fields, ds->n_fields, CH, err);
    int64_t rows[CH];
    const float *ov[2][CH];
    for (int64_t s = 0; s < N && !rc; s += CH) {
        int n = (int)(N - s < CH ? N - s : CH);
        for (int i = 0; i < n; i++) {
            rows[i] = s + i;
            for (int l = 0; l < 2; l++)
                ov[l][i] = row_new[l] && row_new[l][s + i] >= 0 ? nv[l] + (int64_t)row_new[l][s + i] * m->D : NULL;
        }
        sc_batch_gather(&b, ds, rows, n);
        rc = sc_msd_model_extra(m, &b, ov[0], ov[1], x + s * KD, n_unknown, err);
    }
    sc_batch_free(&b);
    for (int l = 0; l < 2; l++) {
        sc_free(nv[l]);
        sc_free(row_new[l]);
    }
    if (rc) sc_free(x);
    else *extra = x;
    return rc;
}

int sc_msd_model_encode_texts(const sc_msd_model *m, sc_textvec *enc, const char *const *texts, int n, float *out,
                              sc_error *err) {
    if (!m->lora.rank) return sc_textvec_encode(enc, texts, n, out, err);
    const sc_bert *b = enc->enc ? sc_encoder_bert(enc->enc) : NULL;
    if (!b || strcmp(enc->name, m->lora_encoder) || b->cfg.hidden != m->lora_hidden ||
        b->cfg.intermediate != m->lora_intermediate || b->cfg.layers != m->lora.first + m->lora.n)
        return sc_fail(err, SC_EINVAL,
                       "MSD: the model's encoder adapters (LoRA) were trained on %s (%d layers, width %d); the encoder "
                       "%s is another model: pass that encoder", m->lora_encoder, m->lora.first + m->lora.n,
                       m->lora_hidden, enc->name);
    return sc_msd_lora_encode(&m->lora, enc->enc, texts, n, out, err);
}

int sc_msd_model_adapt_items_level(sc_msd_model *m, int l, const float *x, int n, float *out, sc_error *err) {
    if (!m->adaptor[l]) return sc_fail(err, SC_EINVAL, "MSD: this model has no %s adaptor", LEVEL[l]);
    const float *o;
    int rc = sc_mlp_forward(m->adaptor[l], x, n, &o, err);
    if (!rc) memcpy(out, o, (size_t)n * m->D * sizeof(float));
    return rc;
}

int sc_msd_bundle_predict(const sc_model_bundle *b, sc_model *net, const sc_dataset *ds, const char *encoder_dir,
                          int n_threads, float *prob, int64_t *n_unknown, int64_t *n_encoded, sc_error *err) {
    sc_msd_model msd;
    float *extra = NULL;
    int64_t unknown = 0, encoded = 0;
    int rc = sc_msd_model_load(&msd, b, err);
    if (rc) return rc;
    rc = sc_msd_model_extra_dataset(&msd, b->schema, ds, encoder_dir, n_threads, &extra, &unknown, &encoded, err);
    if (!rc) rc = sc_predict_dataset(net, ds, extra, 4096, prob, err);
    if (n_unknown) *n_unknown = unknown;
    if (n_encoded) *n_encoded = encoded;
    sc_free(extra);
    sc_msd_model_free(&msd);
    return rc;
}
