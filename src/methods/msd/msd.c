/* MSD training: backbone + per-level feature adaptors + frequency-adaptive
 * history fusion, end to end on the CTR loss (methods/msd/msd.h, docs/msd.md).
 * Dimension letters: B batch, U distinct items of a batch (current and
 * history), S encoder size, D embedding size, K semantic fields, W history
 * width, T entities of a level, V vocabulary size. */
#include "methods/msd/msd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "train/guard.h"

void sc_msd_config_default(sc_msd_config *c) {
    memset(c, 0, sizeof *c);
    c->levels = SC_MSD_AUTO;
    c->adaptor_hidden = 0;
    c->adaptor_init = 0.0f;
    c->cold_max = 5;
    c->lora.rank = 0;
    c->lora.layers = 1;
    c->lora.lr = 1e-2f;
    c->lora.every = 100;
}

int sc_msd_parse_levels(const char *s, int *levels, sc_error *err) {
    *levels = 0;
    if (!strcmp(s, "none")) return SC_OK;
    if (!strcmp(s, "auto")) {
        *levels = SC_MSD_AUTO;
        return SC_OK;
    }
    if (!strcmp(s, "all")) {
        *levels = SC_MSD_ITEM | SC_MSD_USER | SC_MSD_FUSION;
        return SC_OK;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "item")) *levels |= SC_MSD_ITEM;
        else if (!strcmp(t, "user")) *levels |= SC_MSD_USER;
        else if (!strcmp(t, "fusion")) *levels |= SC_MSD_FUSION;
        else
            return sc_fail(err, SC_EINVAL, "--msd-levels: unknown level '%s' (item, user, fusion, all, none, auto)", t);
    }
    return SC_OK;
}

const char *sc_msd_levels_name(int levels, char *buf, size_t cap) {
    if (levels == SC_MSD_AUTO) {
        snprintf(buf, cap, "auto");
        return buf;
    }
    snprintf(buf, cap, "%s%s%s%s%s", levels & SC_MSD_ITEM ? "item" : "",
             (levels & SC_MSD_ITEM) && (levels & (SC_MSD_USER | SC_MSD_FUSION)) ? "," : "",
             levels & SC_MSD_USER ? "user" : "", (levels & SC_MSD_USER) && (levels & SC_MSD_FUSION) ? "," : "",
             levels & SC_MSD_FUSION ? "fusion" : "");
    if (!levels) snprintf(buf, cap, "none");
    return buf;
}

typedef struct msd_ctx {
    const sc_msd_config *mc;
    const sc_train_config *t;
    const sc_schema *schema;
    const sc_dataset *split[3];
    const sc_msd_semantics *sem;
    int levels, K, D, S, W, cap, item_ad; /* item_ad: the item adaptor is used (item level or fusion) */
    sc_model *model, *best;
    sc_mlp *ad[2];
    float ab[2], gab[2];
    sc_param sp[4 * SC_MAX_LAYERS + 1]; /* adaptors' parameters, then the fusion's */
    int n_sp;
    float *sp_best;
    int64_t sp_size;
    sc_optim *opt_model, *opt_sem;
    /* per-step buffers */
    int32_t *pos;    /* (T_item) position of an item in the batch's distinct items, -1 */
    int32_t *uslot;  /* (cap * (W + 1)) the batch's distinct items */
    float *Xu, *dAu; /* (cap * (W + 1), S), (.., D) */
    float *Xo, *dO;  /* (cap, S), (cap, D): users */
    float *extra, *dextra, *z, *dz, *dP, *dV;
    const float **iv, **uv, **hv;
    float *hlf;
    int32_t *hslot; /* (cap * W) */
    sc_msd_keep keep;
    float *adapted[2]; /* (T, D) per level, with the live adaptors, for evaluation and the model file */
    const char *out_path;
    cJSON *info;
    /* LoRA on the encoder (NULL: off): the encoder vectors come from the adapted encoder */
    sc_msd_lora *lora;
    sc_optim *opt_lora;
    float *lora_best;       /* (n_weights) the best epoch's LoRA weights */
    float *etab[2];         /* (T, S) per level: every entity's encoder vector under the current LoRA weights */
    float *dXu, *dXo;       /* (cap * (W + 1), S), (cap, S): gradients of the adaptors' inputs */
    int32_t *tu, *to;       /* (cap * (W + 1)), (cap): the distinct items' texts, the rows' users' texts */
    int64_t lora_steps;     /* training steps since the last LoRA step */
    float lr;               /* the learning rate of the last step (the LoRA step at the end of an epoch uses it) */
    double lora_s;          /* seconds in LoRA work (vectors, backward, steps) */
} msd_ctx;

static int level_used(const msd_ctx *c, int l) { return l == 0 ? c->item_ad : !!(c->levels & SC_MSD_USER); }

/* The encoder vectors (T, S) of level l's entities: the frozen encoder's, or
 * with LoRA the adapted encoder's (made current by encoder_tables). */
static const float *enc_table(const msd_ctx *c, int l) { return c->lora ? c->etab[l] : c->sem->table[l]; }

/* With LoRA: etab[l] = every entity's vector under the current LoRA weights. */
static int encoder_tables(msd_ctx *c, sc_error *err) {
    if (!c->lora) return SC_OK;
    double t0 = sc_now();
    int rc = sc_msd_lora_all_vectors(c->lora, err);
    for (int l = 0; l < 2 && !rc; l++) {
        if (!level_used(c, l)) continue;
        for (int64_t k = 0; k < c->sem->T[l]; k++)
            memcpy(c->etab[l] + k * c->S, sc_msd_lora_vec(c->lora, c->sem->text_of[l][k]), (size_t)c->S * sizeof(float));
    }
    c->lora_s += sc_now() - t0;
    return rc;
}

/* One LoRA step from the gradients summed since the last one; its learning
 * rate follows the backbone's decay (lr / the initial lr). */
static int lora_step(msd_ctx *c, sc_error *err) {
    c->lora_steps = 0;
    if (!c->lora) return SC_OK;
    double t0 = sc_now();
    int rc = sc_msd_lora_step(c->lora, c->opt_lora, c->mc->lora.lr * (c->lr / c->t->lr), err);
    c->lora_s += sc_now() - t0;
    return rc;
}

/* adapted[l] (T, D) = adaptor l over every entity's encoder vector. */
static int adapt_tables(msd_ctx *c, sc_error *err) {
    int rc = encoder_tables(c, err);
    if (rc) return rc;
    for (int l = 0; l < 2; l++) {
        if (!level_used(c, l)) continue;
        int64_t T = c->sem->T[l];
        for (int64_t i = 0; i < T; i += c->cap) {
            int n = (int)(T - i < c->cap ? T - i : c->cap);
            const float *o;
            int rc = sc_mlp_forward(c->ad[l], enc_table(c, l) + i * c->S, n, &o, err);
            if (rc) return rc;
            memcpy(c->adapted[l] + i * c->D, o, (size_t)n * c->D * sizeof(float));
        }
    }
    return SC_OK;
}

/* History slot j of a row: the entity of item id, or -1. */
static int32_t hist_slot(const msd_ctx *c, int32_t id) {
    return id >= 2 && id < c->sem->V[0] ? c->sem->id_slot[0][id] : -1;
}

/* extra (n, K*D) of rows [start, start + n) of split s from the adapted tables. */
static int split_extra_chunk(msd_ctx *c, int s, int64_t start, int n, float *extra, sc_error *err) {
    const sc_dataset *ds = c->split[s];
    const sc_msd_semantics *sem = c->sem;
    for (int i = 0; i < n; i++) {
        int64_t r = start + i;
        int32_t k = c->item_ad ? sem->slot[s][0][r] : -1;
        c->iv[i] = k >= 0 ? c->adapted[0] + (int64_t)k * c->D : NULL;
        k = (c->levels & SC_MSD_USER) ? sem->slot[s][1][r] : -1;
        c->uv[i] = k >= 0 ? c->adapted[1] + (int64_t)k * c->D : NULL;
        if (c->levels & SC_MSD_FUSION) {
            const int32_t *h = ds->ids[sem->field[2]] + r * c->W;
            for (int j = 0; j < c->W; j++) {
                int32_t q = hist_slot(c, h[j]);
                c->hv[i * c->W + j] = q >= 0 ? c->adapted[0] + (int64_t)q * c->D : NULL;
                c->hlf[i * c->W + j] = q >= 0 ? log1pf(sem->item_freq[h[j]]) : -1.0f;
            }
        }
    }
    return sc_msd_compose(c->levels, c->D, n, c->W, c->iv, c->uv, c->hv, c->hlf, c->ab, extra, NULL, err);
}

/* *out (N, K*D) for split s (NULL when K = 0). */
static int split_extra(msd_ctx *c, int s, float **out, sc_error *err) {
    *out = NULL;
    if (!c->K) return SC_OK;
    int rc = adapt_tables(c, err);
    if (rc) return rc;
    int64_t N = c->split[s]->n_rows;
    float *x = sc_malloc((size_t)(N ? N : 1) * c->K * c->D * sizeof(float));
    if (!x) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int64_t i = 0; i < N && !rc; i += c->cap) {
        int n = (int)(N - i < c->cap ? N - i : c->cap);
        rc = split_extra_chunk(c, s, i, n, x + i * c->K * c->D, err);
    }
    if (rc) sc_free(x);
    else *out = x;
    return rc;
}

static int eval_split(msd_ctx *c, sc_model *m, int s, sc_metrics *out, float **prob_out, sc_error *err) {
    float *extra, *prob = NULL;
    int rc = split_extra(c, s, &extra, err);
    if (rc) return rc;
    const sc_dataset *ds = c->split[s];
    prob = sc_malloc((size_t)(ds->n_rows ? ds->n_rows : 1) * sizeof *prob);
    if (!prob) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    if (!rc) rc = sc_predict_dataset(m, ds, extra, c->cap, prob, err);
    if (!rc) rc = sc_metrics_compute(ds->label, prob, ds->group, ds->n_rows, out, err);
    sc_free(extra);
    if (!rc && prob_out) *prob_out = prob;
    else sc_free(prob);
    return rc;
}

/* ---- one training step ---- */

static int step(void *ctx, const sc_batch *b0, const int64_t *rows, float lr, double *loss, sc_error *err) {
    msd_ctx *c = ctx;
    const sc_msd_semantics *sem = c->sem;
    int n = b0->n, D = c->D, S = c->S, W = c->W, KD = c->K * c->D, rc = SC_OK, U = 0;
    sc_batch b = *b0;
    const float *Au = NULL, *Ao = NULL;
    double t0;
    c->lr = lr;
    if (c->K) {
        /* the batch's distinct items (current and history) through the item adaptor, once each */
        if (c->item_ad) {
            for (int i = 0; i < n; i++) {
                int32_t k = sem->slot[0][0][rows[i]];
                if (k >= 0 && c->pos[k] < 0) {
                    c->pos[k] = U;
                    c->uslot[U++] = k;
                }
                if (c->levels & SC_MSD_FUSION)
                    for (int j = 0; j < W; j++) {
                        int32_t q = hist_slot(c, b0->ids[sem->field[2]][(int64_t)i * W + j]);
                        c->hslot[i * W + j] = q;
                        if (q >= 0 && c->pos[q] < 0) {
                            c->pos[q] = U;
                            c->uslot[U++] = q;
                        }
                    }
            }
            if (c->lora) { /* the distinct items' texts under the current LoRA weights */
                for (int u = 0; u < U; u++) c->tu[u] = sem->text_of[0][c->uslot[u]];
                t0 = sc_now();
                rc = sc_msd_lora_vectors(c->lora, c->tu, U, err);
                c->lora_s += sc_now() - t0;
                if (rc) goto out;
            }
            for (int u = 0; u < U; u++)
                memcpy(c->Xu + (int64_t)u * S,
                       c->lora ? sc_msd_lora_vec(c->lora, c->tu[u]) : sem->table[0] + (int64_t)c->uslot[u] * S,
                       (size_t)S * sizeof(float));
            if (U && (rc = sc_mlp_forward(c->ad[0], c->Xu, U, &Au, err))) goto out;
            for (int i = 0; i < n; i++) {
                int32_t k = sem->slot[0][0][rows[i]];
                c->iv[i] = k >= 0 ? Au + (int64_t)c->pos[k] * D : NULL;
                if (c->levels & SC_MSD_FUSION)
                    for (int j = 0; j < W; j++) {
                        int32_t q = c->hslot[i * W + j];
                        c->hv[i * W + j] = q >= 0 ? Au + (int64_t)c->pos[q] * D : NULL;
                        c->hlf[i * W + j] = q >= 0 ? log1pf(sem->item_freq[b0->ids[sem->field[2]][(int64_t)i * W + j]]) : -1.0f;
                    }
            }
        }
        if (c->levels & SC_MSD_USER) {
            if (c->lora) {
                for (int i = 0; i < n; i++) {
                    int32_t k = sem->slot[0][1][rows[i]];
                    c->to[i] = k >= 0 ? sem->text_of[1][k] : -1;
                }
                t0 = sc_now();
                rc = sc_msd_lora_vectors(c->lora, c->to, n, err);
                c->lora_s += sc_now() - t0;
                if (rc) goto out;
            }
            for (int i = 0; i < n; i++) {
                int32_t k = sem->slot[0][1][rows[i]];
                const float *x = k < 0 ? NULL : c->lora ? sc_msd_lora_vec(c->lora, c->to[i]) : sem->table[1] + (int64_t)k * S;
                if (x) memcpy(c->Xo + (int64_t)i * S, x, (size_t)S * sizeof(float));
                else memset(c->Xo + (int64_t)i * S, 0, (size_t)S * sizeof(float));
            }
            if ((rc = sc_mlp_forward(c->ad[1], c->Xo, n, &Ao, err))) goto out;
            for (int i = 0; i < n; i++) c->uv[i] = sem->slot[0][1][rows[i]] >= 0 ? Ao + (int64_t)i * D : NULL;
        }
        rc = sc_msd_compose(c->levels, D, n, W, c->iv, c->uv, c->hv, c->hlf, c->ab, c->extra, &c->keep, err);
        if (rc) goto out;
        b.extra = c->extra;
    }
    rc = sc_model_forward(c->model, &b, 1, c->z, err);
    if (rc) goto out;
    *loss = sc_bce_logits_forward(c->z, b0->label, n);
    sc_bce_logits_backward(c->dz, c->z, b0->label, n, 1.0f);
    rc = sc_model_backward(c->model, &b, c->dz, NULL, c->K ? c->dextra : NULL, err);
    if (!rc) rc = sc_optim_step(c->opt_model, lr, err);
    if (rc || !c->K) goto out;

    /* back through the fusion and the adaptors */
    int off = 0;
    if (c->item_ad) memset(c->dAu, 0, (size_t)(U ? U : 1) * D * sizeof(float));
    if (c->levels & SC_MSD_ITEM) {
        for (int i = 0; i < n; i++) {
            int32_t k = sem->slot[0][0][rows[i]];
            if (k < 0) continue;
            float *dst = c->dAu + (int64_t)c->pos[k] * D;
            const float *g = c->dextra + (int64_t)i * KD + off;
            for (int d = 0; d < D; d++) dst[d] += g[d];
        }
        off += D;
    }
    if (c->levels & SC_MSD_USER) {
        for (int i = 0; i < n; i++) {
            float *dst = c->dO + (int64_t)i * D;
            if (c->uv[i]) memcpy(dst, c->dextra + (int64_t)i * KD + off, (size_t)D * sizeof(float));
            else memset(dst, 0, (size_t)D * sizeof(float));
        }
        if (c->lora) memset(c->dXo, 0, (size_t)n * S * sizeof(float));
        sc_mlp_backward(c->ad[1], c->dO, c->lora ? c->dXo : NULL);
        for (int i = 0; c->lora && i < n; i++) /* on to the user's text */
            if (c->to[i] >= 0) sc_msd_lora_add_grad(c->lora, c->to[i], c->dXo + (int64_t)i * S);
        off += D;
    }
    c->gab[0] = c->gab[1] = 0.0f;
    if (c->levels & SC_MSD_FUSION) {
        for (int i = 0; i < n; i++)
            memcpy(c->dP + (int64_t)i * D, c->dextra + (int64_t)i * KD + off, (size_t)D * sizeof(float));
        sc_msd_fuse_backward(c->dV, c->gab, c->dP, c->keep.P, c->keep.w, c->keep.wsum, c->keep.V, c->keep.lf, n, W, D);
        for (int64_t j = 0; j < (int64_t)n * W; j++) {
            int32_t q = c->hslot[j];
            if (q < 0) continue;
            float *dst = c->dAu + (int64_t)c->pos[q] * D;
            const float *g = c->dV + j * D;
            for (int d = 0; d < D; d++) dst[d] += g[d];
        }
    }
    if (c->item_ad) {
        if (U) {
            if (c->lora) memset(c->dXu, 0, (size_t)U * S * sizeof(float));
            sc_mlp_backward(c->ad[0], c->dAu, c->lora ? c->dXu : NULL);
            for (int u = 0; c->lora && u < U; u++) /* on to the item's text */
                sc_msd_lora_add_grad(c->lora, c->tu[u], c->dXu + (int64_t)u * S);
        } else {
            int np;
            sc_param *p = sc_mlp_params(c->ad[0], &np);
            for (int k = 0; k < np; k++) memset(p[k].grad, 0, (size_t)p[k].size * sizeof(float));
        }
    }
    rc = sc_optim_step(c->opt_sem, lr, err);
    if (!rc && c->lora && ++c->lora_steps >= c->mc->lora.every) rc = lora_step(c, err);
out:
    for (int u = 0; u < U; u++) c->pos[c->uslot[u]] = -1;
    return rc;
}

static int validate(void *ctx, sc_metrics *m, sc_error *err) {
    msd_ctx *c = ctx;
    /* an epoch ends with a LoRA step over what it left: every epoch's gradients count, and a
       checkpoint never holds half-summed ones */
    int rc = c->lora_steps ? lora_step(c, err) : SC_OK;
    return rc ? rc : eval_split(c, c->model, 1, m, NULL, err);
}

static void sem_snapshot(msd_ctx *c, int restore) {
    int64_t off = 0;
    for (int k = 0; k < c->n_sp; k++) {
        sc_param *p = &c->sp[k];
        if (restore) memcpy(p->data, c->sp_best + off, (size_t)p->size * sizeof(float));
        else memcpy(c->sp_best + off, p->data, (size_t)p->size * sizeof(float));
        off += p->size;
    }
    if (!c->lora) return;
    size_t bytes = (size_t)c->lora->n_weights * sizeof(float);
    if (restore) {
        memcpy(c->lora->w, c->lora_best, bytes);
        sc_msd_lora_changed(c->lora);
    } else {
        memcpy(c->lora_best, c->lora->w, bytes);
    }
}

/* The model file: network "main", and the MSD section (tables by vocabulary
 * id, item frequencies, fusion, adaptors, versions). Written from the live
 * weights, which the callers have set to the best ones. */
static int write_model(msd_ctx *c, sc_error *err) {
    static const char *LEVEL[2] = {"item", "user"};
    const sc_msd_semantics *sem = c->sem;
    sc_model_bundle b = {0};
    b.schema = (sc_schema *)c->schema;
    snprintf(b.method, sizeof b.method, "msd");
    b.n_networks = 1;
    snprintf(b.networks[0].name, sizeof b.networks[0].name, "main");
    b.networks[0].model = c->best;
    b.info = c->info;
    float *tab[2] = {NULL, NULL};
    int rc = adapt_tables(c, err);
    sc_container_writer w;
    sc_container_writer_init(&w);
    cJSON *h = cJSON_CreateObject();
    uint8_t *schema_buf = NULL;
    if (!rc) rc = sc_model_bundle_stage(&b, &w, h, &schema_buf, err);
    cJSON *ms = cJSON_AddObjectToObject(h, "msd");
    char lv[64];
    int nf;
    const sc_field_info *fi = sc_schema_fields(c->schema, &nf);
    cJSON_AddStringToObject(ms, "levels", sc_msd_levels_name(c->levels, lv, sizeof lv));
    cJSON_AddNumberToObject(ms, "embed_dim", c->D);
    cJSON_AddNumberToObject(ms, "encoder_dim", c->S);
    cJSON_AddStringToObject(ms, "encoder", sem->encoder);
    cJSON_AddNumberToObject(ms, "adaptor_hidden", c->mc->adaptor_hidden);
    for (int f = 0; f < 3; f++) {
        static const char *key[3] = {"item_field", "user_field", "history_field"};
        if (sem->field[f] >= 0) cJSON_AddStringToObject(ms, key[f], fi[sem->field[f]].name);
    }
    cJSON *fu = cJSON_AddArrayToObject(ms, "fusion");
    cJSON_AddItemToArray(fu, cJSON_CreateNumber(c->ab[0]));
    cJSON_AddItemToArray(fu, cJSON_CreateNumber(c->ab[1]));
    cJSON *tj = cJSON_AddObjectToObject(ms, "tables");
    for (int l = 0; l < 2 && !rc; l++) {
        if (!level_used(c, l)) continue;
        int64_t V = sem->V[l];
        tab[l] = sc_calloc((size_t)V * c->D, sizeof(float));
        if (!tab[l]) {
            rc = sc_fail(err, SC_ENOMEM, "out of memory");
            break;
        }
        int64_t known = 0;
        for (int64_t v = 0; v < V; v++) {
            int32_t k = sem->id_slot[l][v];
            if (k < 0) continue;
            memcpy(tab[l] + v * c->D, c->adapted[l] + (int64_t)k * c->D, (size_t)c->D * sizeof(float));
            known++;
        }
        char name[96], ver[24];
        snprintf(name, sizeof name, "msd/%s.table", LEVEL[l]);
        rc = sc_container_add(&w, name, 1, tab[l], (uint64_t)V * c->D * sizeof(float), err);
        int np;
        sc_param *p = sc_mlp_params(c->ad[l], &np);
        for (int k = 0; k < np && !rc; k++) {
            snprintf(name, sizeof name, "msd/%s.adaptor/%s", LEVEL[l], p[k].name);
            rc = sc_container_add(&w, name, 1, p[k].data, (uint64_t)p[k].size * sizeof(float), err);
        }
        snprintf(ver, sizeof ver, "%016llx",
                 (unsigned long long)sc_msd_table_version(c->ad[l], c->lora ? c->lora->params : NULL,
                                                          c->lora ? c->lora->n_params : 0));
        cJSON *o = cJSON_AddObjectToObject(tj, LEVEL[l]);
        cJSON_AddNumberToObject(o, "rows", (double)V);
        cJSON_AddNumberToObject(o, "known", (double)known);
        cJSON_AddStringToObject(o, "adaptor_version", ver);
        cJSON_AddNumberToObject(o, "adaptor_layers", c->ad[l]->n_layers);
    }
    if (!rc && sem->item_freq && c->item_ad)
        rc = sc_container_add(&w, "msd/item.freq", 1, sem->item_freq, (uint64_t)sem->V[0] * sizeof(float), err);
    if (c->lora) { /* the encoder's adapters: new entities are encoded with them (sc_msd_model_encode_texts) */
        const sc_bert *bert = sc_encoder_bert(sem->lora_base->enc.enc);
        cJSON *lj = cJSON_AddObjectToObject(ms, "lora");
        cJSON_AddNumberToObject(lj, "rank", c->lora->lo.rank);
        cJSON_AddNumberToObject(lj, "layers", c->lora->lo.n);
        cJSON_AddNumberToObject(lj, "first_layer", c->lora->lo.first);
        cJSON_AddNumberToObject(lj, "scale", c->lora->lo.scale);
        cJSON_AddNumberToObject(lj, "hidden", bert->cfg.hidden);
        cJSON_AddNumberToObject(lj, "intermediate", bert->cfg.intermediate);
        cJSON_AddStringToObject(lj, "encoder", sem->lora_base->enc.name);
        for (int k = 0; k < c->lora->n_params && !rc; k++) {
            char name[96];
            snprintf(name, sizeof name, "msd/%s", c->lora->params[k].name);
            rc = sc_container_add(&w, name, 1, c->lora->params[k].data, (uint64_t)c->lora->params[k].size * sizeof(float),
                                  err);
        }
    }
    if (!rc) rc = sc_container_write(&w, c->out_path, h, err);
    cJSON_Delete(h);
    sc_free(schema_buf);
    sc_free(tab[0]);
    sc_free(tab[1]);
    sc_container_writer_free(&w);
    return rc;
}

static int save_best(void *ctx, sc_error *err) {
    msd_ctx *c = ctx;
    sem_snapshot(c, 0);
    int rc = sc_model_copy_weights(c->best, c->model, err);
    return rc ? rc : write_model(c, err);
}

static int restore_best(void *ctx, int from_file, sc_error *err) {
    msd_ctx *c = ctx;
    if (from_file) {
        sc_model_bundle prev;
        int rc = sc_model_bundle_load(&prev, c->out_path, c->t->n_threads, err);
        if (rc) return sc_fail_prefix(err, "reloading the best model: ");
        sc_model *m = sc_model_bundle_network(&prev, "main");
        rc = m ? sc_model_copy_weights(c->best, m, err) : sc_fail(err, SC_EFORMAT, "%s: no network 'main'", c->out_path);
        /* the adaptors and fusion of the best epoch */
        int64_t off = 0;
        for (int k = 0; k < c->n_sp && !rc; k++) {
            char name[128];
            const sc_param *p = &c->sp[k];
            if (k == c->n_sp - 1) {
                const cJSON *ms = cJSON_GetObjectItemCaseSensitive(prev.file.header, "msd");
                const cJSON *fu = cJSON_GetObjectItemCaseSensitive(ms, "fusion");
                if (cJSON_GetArraySize(fu) == 2) {
                    c->sp_best[off] = (float)cJSON_GetArrayItem(fu, 0)->valuedouble;
                    c->sp_best[off + 1] = (float)cJSON_GetArrayItem(fu, 1)->valuedouble;
                }
                break;
            }
            snprintf(name, sizeof name, "msd/%s.adaptor/%s", k < (c->item_ad ? c->ad[0]->n_layers * 2 : 0) ? "item" : "user",
                     p->name);
            const sc_container_entry *e = sc_container_find(&prev.file, name);
            if (!e || e->bytes != (uint64_t)p->size * sizeof(float))
                rc = sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or of the wrong size", c->out_path, name);
            else memcpy(c->sp_best + off, e->data, e->bytes);
            off += p->size;
        }
        for (int k = 0, at = 0; c->lora && k < c->lora->n_params && !rc; k++) { /* the LoRA weights */
            char name[128];
            const sc_param *p = &c->lora->params[k];
            snprintf(name, sizeof name, "msd/%s", p->name);
            const sc_container_entry *e = sc_container_find(&prev.file, name);
            if (!e || e->bytes != (uint64_t)p->size * sizeof(float))
                rc = sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or of the wrong size", c->out_path, name);
            else memcpy(c->lora_best + at, e->data, e->bytes);
            at += (int)p->size;
        }
        sc_model_bundle_free(&prev);
        if (rc) return rc;
    }
    sem_snapshot(c, 1);
    return sc_model_copy_weights(c->model, c->best, err);
}

/* The optimisers' step counts (Adam's bias correction) live in the checkpoint's header. */
static const char *const OPTIM_STEPS[3] = {"optim_steps", "msd_optim_steps", "msd_lora_optim_steps"};

static int stage_checkpoint(void *ctx, sc_container_writer *w, cJSON *header, sc_error *err) {
    msd_ctx *c = ctx;
    sc_optim *o[3] = {c->opt_model, c->opt_sem, c->opt_lora};
    for (int k = 0; k < 3; k++)
        if (o[k]) cJSON_AddNumberToObject(header, OPTIM_STEPS[k], (double)sc_optim_get_step(o[k]));
    int np, rc;
    sc_param *p = sc_model_params(c->model, &np);
    rc = sc_checkpoint_stage(w, "main", p, np, c->opt_model, err);
    if (!rc && c->n_sp) rc = sc_checkpoint_stage(w, "msd", c->sp, c->n_sp, c->opt_sem, err);
    if (!rc && c->lora) rc = sc_checkpoint_stage(w, "msd_lora", c->lora->params, c->lora->n_params, c->opt_lora, err);
    return rc;
}

static int load_checkpoint(void *ctx, const sc_container *ck, sc_error *err) {
    msd_ctx *c = ctx;
    int np, rc;
    sc_param *p = sc_model_params(c->model, &np);
    rc = sc_checkpoint_load(ck, "main", p, np, c->opt_model, err);
    if (!rc && c->n_sp) rc = sc_checkpoint_load(ck, "msd", c->sp, c->n_sp, c->opt_sem, err);
    if (!rc && c->lora) {
        rc = sc_checkpoint_load(ck, "msd_lora", c->lora->params, c->lora->n_params, c->opt_lora, err);
        sc_msd_lora_changed(c->lora);
    }
    sc_optim *o[3] = {c->opt_model, c->opt_sem, c->opt_lora};
    for (int k = 0; k < 3 && !rc; k++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(ck->header, OPTIM_STEPS[k]);
        if (o[k] && cJSON_IsNumber(s)) sc_optim_set_step(o[k], (int64_t)s->valuedouble);
    }
    return rc;
}

static void free_ctx(msd_ctx *c) {
    if (c->model) sc_model_free(c->model);
    if (c->best) sc_model_free(c->best);
    sc_mlp_free(c->ad[0]);
    sc_mlp_free(c->ad[1]);
    if (c->opt_model) sc_optim_free(c->opt_model);
    if (c->opt_sem) sc_optim_free(c->opt_sem);
    if (c->opt_lora) sc_optim_free(c->opt_lora);
    sc_msd_lora_free(c->lora);
    sc_msd_keep_free(&c->keep);
    void *bufs[] = {c->sp_best, c->pos, c->uslot, c->Xu, c->dAu, c->Xo, c->dO, c->extra, c->dextra, c->z, c->dz,
                    c->dP, c->dV, (void *)c->iv, (void *)c->uv, (void *)c->hv, c->hlf, c->hslot, c->adapted[0],
                    c->adapted[1], c->lora_best, c->etab[0], c->etab[1], c->dXu, c->dXo, c->tu, c->to};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) sc_free(bufs[i]);
}

/* Median time (ms, of 7) to score the first 100 rows of split s as one batch:
 * gather, the MSD fields from the file's tables (lookups) and the forward. */
static int time_100(msd_ctx *c, sc_model *m, int s, int with_msd, double *ms, sc_error *err) {
    const sc_dataset *ds = c->split[s];
    int n = ds->n_rows < 100 ? (int)ds->n_rows : 100;
    sc_batch b;
    int rc = sc_batch_alloc(&b, ds->fields, ds->n_fields, n ? n : 1, err);
    if (rc) return rc;
    int64_t rows[100];
    double t[7];
    for (int i = 0; i < n; i++) rows[i] = i;
    for (int k = 0; k < 7 && !rc; k++) {
        double t0 = sc_now();
        sc_batch_gather(&b, ds, rows, n);
        if (with_msd && c->K) {
            rc = split_extra_chunk(c, s, 0, n, c->extra, err);
            b.extra = c->extra;
        }
        if (!rc) rc = sc_model_forward(m, &b, 0, c->z, err);
        t[k] = (sc_now() - t0) * 1000.0;
    }
    *ms = sc_median(t, 7);
    sc_batch_free(&b);
    return rc;
}

/* Metrics of split s overall and on its cold-start slice. */
static int report_split(msd_ctx *c, int s, sc_msd_report *r, sc_error *err) {
    float *prob = NULL;
    memset(r, 0, sizeof *r);
    r->cold.auc = r->cold.gauc = NAN;
    int rc = eval_split(c, c->model, s, &r->all, &prob, err);
    if (rc) return rc;
    const sc_dataset *ds = c->split[s];
    int f = c->sem->field[0];
    if (f >= 0 && c->sem->item_freq) {
        float *lab = sc_malloc((size_t)(ds->n_rows + 1) * sizeof(float)), *pr = sc_malloc((size_t)(ds->n_rows + 1) * sizeof(float));
        int32_t *grp = ds->group ? sc_malloc((size_t)(ds->n_rows + 1) * sizeof(int32_t)) : NULL;
        if (!lab || !pr || (ds->group && !grp)) rc = sc_fail(err, SC_ENOMEM, "out of memory");
        int64_t n = 0;
        for (int64_t i = 0; i < ds->n_rows && !rc; i++) {
            int32_t id = ds->ids[f][i];
            float fr = id >= 2 ? c->sem->item_freq[id] : 0.0f;
            if (fr > (float)c->mc->cold_max) continue;
            lab[n] = ds->label[i];
            pr[n] = prob[i];
            if (grp) grp[n] = ds->group[i];
            n++;
        }
        if (!rc && n > 0) rc = sc_metrics_compute(lab, pr, grp, n, &r->cold, err);
        r->cold.n = n;
        sc_free(lab);
        sc_free(pr);
        sc_free(grp);
    }
    sc_free(prob);
    return rc;
}

int sc_msd_train(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                 const sc_dataset *test, const sc_msd_semantics *sem, const sc_model_config *model_cfg,
                 const sc_train_config *tcfg, const sc_msd_config *mcfg, cJSON *info, const char *out_path,
                 sc_msd_report *vrep, sc_msd_report *trep, sc_error *err) {
    msd_ctx c = {.mc = mcfg, .t = tcfg, .schema = schema, .split = {train, valid, test}, .sem = sem,
                 .out_path = out_path, .info = info};
    c.levels = mcfg->levels;
    c.K = sc_msd_n_fields(c.levels);
    c.D = model_cfg->embed_dim;
    c.S = sem->S;
    c.item_ad = !!(c.levels & (SC_MSD_ITEM | SC_MSD_FUSION));
    c.W = sem->field[2] >= 0 ? train->fields[sem->field[2]].width : 0;
    c.cap = tcfg->batch_size > 4096 ? tcfg->batch_size : 4096;
    c.ab[0] = SC_MSD_FUSION_A0;
    c.ab[1] = SC_MSD_FUSION_B0;
    int rc = SC_OK;
    for (int l = 0; l < 2; l++)
        if (level_used(&c, l) && (!sem->table[l] || !sem->slot[0][l] || !sem->slot[1][l] || (test && !sem->slot[2][l])))
            return sc_fail(err, SC_EINVAL, "MSD: no semantics for the %s level", l ? "user" : "item");
    if ((c.levels & SC_MSD_FUSION) && c.W <= 0) return sc_fail(err, SC_EINVAL, "MSD: fusion needs a history field");
    const sc_msd_lora_config *lc = &mcfg->lora;
    if (lc->rank > 0 && c.K && (!sem->lora_base || !(lc->lr > 0) || lc->every < 1))
        return sc_fail(err, SC_EINVAL, "MSD LoRA: %s", !sem->lora_base ? "the semantics were built without LoRA"
                                                                        : "the learning rate and steps per LoRA step must be positive");

    sc_model_config cfg = *model_cfg;
    cfg.extra_dim = c.K * c.D;
    cfg.extra_mode = SC_EXTRA_FIELDS;
    rc = sc_model_create(&c.model, &cfg, train->fields, train->n_fields, tcfg->seed, err);
    if (!rc) rc = sc_model_create(&c.best, &cfg, train->fields, train->n_fields, tcfg->seed, err);
    for (int l = 0; l < 2 && !rc; l++) {
        if (!level_used(&c, l)) continue;
        int dims[3] = {c.S, mcfg->adaptor_hidden > 0 ? mcfg->adaptor_hidden : c.D, c.D};
        if (mcfg->adaptor_hidden <= 0) dims[1] = c.D;
        rc = sc_mlp_create(&c.ad[l], l ? "user" : "item", dims, mcfg->adaptor_hidden > 0 ? 2 : 1, 0, tcfg->seed + 21 + l, err);
        if (rc) break;
        int np;
        sc_param *p = sc_mlp_params(c.ad[l], &np);
        /* the output layer's weight is the last but one tensor (then its bias, zero) */
        for (int64_t i = 0; i < p[np - 2].size; i++) p[np - 2].data[i] *= mcfg->adaptor_init;
        memcpy(c.sp + c.n_sp, p, (size_t)np * sizeof *p);
        c.n_sp += np;
        c.adapted[l] = sc_malloc((size_t)(sem->T[l] ? sem->T[l] : 1) * c.D * sizeof(float));
        if (!c.adapted[l]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (!rc && lc->rank > 0 && c.K) {
        rc = sc_msd_lora_create(&c.lora, sem->lora_base, lc->rank, tcfg->seed + 31, tcfg->n_threads, err);
        if (!rc) rc = sc_train_optim_create(&c.opt_lora, tcfg, c.lora->params, c.lora->n_params, err);
        size_t BW = (size_t)(c.cap > 0 ? c.cap : 1) * (size_t)(c.W > 0 ? c.W + 1 : 2);
        if (!rc) {
            c.lora_best = sc_malloc((size_t)c.lora->n_weights * sizeof(float));
            for (int l = 0; l < 2; l++)
                c.etab[l] = sc_malloc((size_t)(sem->T[l] + 1) * c.S * sizeof(float));
            c.dXu = sc_malloc(BW * c.S * sizeof(float));
            c.dXo = sc_malloc((size_t)c.cap * c.S * sizeof(float));
            c.tu = sc_malloc(BW * sizeof(int32_t));
            c.to = sc_malloc((size_t)c.cap * sizeof(int32_t));
            if (!c.lora_best || !c.etab[0] || !c.etab[1] || !c.dXu || !c.dXo || !c.tu || !c.to)
                rc = sc_fail(err, SC_ENOMEM, "out of memory for MSD LoRA buffers");
        }
    }
    if (rc) goto done;
    if (c.K) {
        sc_param *f = &c.sp[c.n_sp++];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "fusion.ab");
        f->data = c.ab;
        f->grad = c.gab;
        f->size = 2;
        f->rows = 1;
        f->cols = 2;
    }
    for (int k = 0; k < c.n_sp; k++) c.sp_size += c.sp[k].size;
    size_t B = (size_t)c.cap, W = (size_t)(c.W > 0 ? c.W : 1), KD = (size_t)(c.K ? c.K * c.D : 1);
    c.sp_best = sc_malloc((size_t)(c.sp_size + 1) * sizeof(float));
    c.pos = sc_malloc((size_t)(sem->T[0] + 1) * sizeof(int32_t));
    c.uslot = sc_malloc(B * (W + 1) * sizeof(int32_t));
    c.Xu = c.item_ad ? sc_malloc(B * (W + 1) * c.S * sizeof(float)) : sc_malloc(1);
    c.dAu = sc_malloc(B * (W + 1) * c.D * sizeof(float));
    c.Xo = (c.levels & SC_MSD_USER) ? sc_malloc(B * c.S * sizeof(float)) : sc_malloc(1);
    c.dO = sc_malloc(B * c.D * sizeof(float));
    c.extra = sc_malloc(B * KD * sizeof(float));
    c.dextra = sc_malloc(B * KD * sizeof(float));
    c.z = sc_malloc(B * sizeof(float));
    c.dz = sc_malloc(B * sizeof(float));
    c.dP = sc_malloc(B * c.D * sizeof(float));
    c.dV = sc_malloc(B * W * c.D * sizeof(float));
    c.iv = sc_malloc(B * sizeof(float *));
    c.uv = sc_malloc(B * sizeof(float *));
    c.hv = sc_malloc(B * W * sizeof(float *));
    c.hlf = sc_malloc(B * W * sizeof(float));
    c.hslot = sc_malloc(B * W * sizeof(int32_t));
    if (!c.sp_best || !c.pos || !c.uslot || !c.Xu || !c.dAu || !c.Xo || !c.dO || !c.extra || !c.dextra || !c.z ||
        !c.dz || !c.dP || !c.dV || !c.iv || !c.uv || !c.hv || !c.hlf || !c.hslot) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for MSD buffers");
        goto done;
    }
    for (int64_t k = 0; k <= sem->T[0]; k++) c.pos[k] = -1;
    for (size_t j = 0; j < B * W; j++) c.hslot[j] = -1;
    int np;
    sc_param *p = sc_model_params(c.model, &np);
    rc = sc_train_optim_create(&c.opt_model, tcfg, p, np, err);
    if (!rc && c.n_sp) rc = sc_train_optim_create(&c.opt_sem, tcfg, c.sp, c.n_sp, err);
    if (rc) goto done;

    char lv[64];
    sc_info("MSD: %s on %s (%d semantic fields of %d, encoder %s, adaptor %s)",
            sc_msd_levels_name(c.levels, lv, sizeof lv), sc_backbone_name(cfg.backbone), c.K, c.D,
            sem->encoder[0] ? sem->encoder : "-", mcfg->adaptor_hidden > 0 ? "MLP" : "Linear");
    if (c.lora)
        sc_info("MSD LoRA: rank %d on the top %d encoder layer(s), learning rate %g, a LoRA step every %d steps",
                lc->rank, c.lora->lo.n, lc->lr, lc->every);
    sc_fit_task task = {&c, step, validate, save_best, restore_best, stage_checkpoint, load_checkpoint,
                        NULL, 0, NULL /* one process: not data-parallel */, 0};
    sc_train_result res;
    double fit_t0 = sc_now();
    rc = sc_fit(train, tcfg, &task, &res, err);
    double fit_s = sc_now() - fit_t0;
    if (rc) goto done;

    sc_msd_report vr, tr;
    rc = report_split(&c, 1, &vr, err);
    sc_model *plain = NULL;
    if (!rc) {
        /* the same backbone without the semantic fields, for the latency comparison (weights do not matter) */
        sc_model_config pc = *model_cfg;
        pc.extra_dim = 0;
        rc = sc_model_create(&plain, &pc, train->fields, train->n_fields, tcfg->seed, err);
    }
    if (!rc) rc = time_100(&c, plain, 1, 0, &vr.plain_ms_per_100, err);
    if (!rc) rc = time_100(&c, c.model, 1, 1, &vr.msd_ms_per_100, err);
    if (plain) sc_model_free(plain);
    if (!rc && test) {
        rc = report_split(&c, 2, &tr, err);
        tr.plain_ms_per_100 = vr.plain_ms_per_100;
        tr.msd_ms_per_100 = vr.msd_ms_per_100;
    }
    if (rc) goto done;
    if (vrep) *vrep = vr;
    if (trep && test) *trep = tr;
    if (info) {
        cJSON_DeleteItemFromObject(info, "valid");
        cJSON_DeleteItemFromObject(info, "test");
        cJSON_DeleteItemFromObject(info, "msd");
        cJSON *v = cJSON_AddObjectToObject(info, "valid");
        sc_metrics_json(v, "all", &vr.all);
        sc_metrics_json(v, "cold", &vr.cold);
        if (test) {
            cJSON *t = cJSON_AddObjectToObject(info, "test");
            sc_metrics_json(t, "all", &tr.all);
            sc_metrics_json(t, "cold", &tr.cold);
        }
        cJSON *m = cJSON_AddObjectToObject(info, "msd");
        cJSON_AddStringToObject(m, "levels", sc_msd_levels_name(c.levels, lv, sizeof lv));
        cJSON_AddNumberToObject(m, "cold_max", mcfg->cold_max);
        cJSON_AddNumberToObject(m, "best_epoch", res.best_epoch);
        cJSON_AddNumberToObject(m, "epochs_run", res.epochs_run);
        /* wall time of the epochs (training and validation), in this process: a resumed run counts its own */
        cJSON_AddNumberToObject(m, "fit_seconds", fit_s);
        if (c.lora) {
            cJSON *lj = cJSON_AddObjectToObject(m, "lora");
            cJSON_AddNumberToObject(lj, "rank", lc->rank);
            cJSON_AddNumberToObject(lj, "layers", c.lora->lo.n);
            cJSON_AddNumberToObject(lj, "lr", lc->lr);
            cJSON_AddNumberToObject(lj, "every", lc->every);
            cJSON_AddNumberToObject(lj, "lora_steps", (double)sc_optim_get_step(c.opt_lora));
            cJSON_AddNumberToObject(lj, "seconds", c.lora_s);
        }
        cJSON *fu = cJSON_AddArrayToObject(m, "fusion");
        cJSON_AddItemToArray(fu, cJSON_CreateNumber(c.ab[0]));
        cJSON_AddItemToArray(fu, cJSON_CreateNumber(c.ab[1]));
        static const char *LEVEL[2] = {"item", "user"};
        for (int l = 0; l < 2; l++) {
            if (!level_used(&c, l)) continue;
            cJSON *o = cJSON_AddObjectToObject(m, LEVEL[l]);
            cJSON_AddNumberToObject(o, "entities", (double)sem->T[l]);
            cJSON_AddNumberToObject(o, "extracted", (double)sem->n_extracted[l]);
            cJSON_AddNumberToObject(o, "extracted_status_fallback", (double)sem->n_fallback_status[l]);
            cJSON_AddNumberToObject(o, "raw_entity_text", (double)sem->n_raw[l]);
        }
        cJSON *l = cJSON_AddObjectToObject(info, "latency_ms_per_100");
        cJSON_AddNumberToObject(l, "plain_backbone", vr.plain_ms_per_100);
        cJSON_AddNumberToObject(l, "msd_lookups", vr.msd_ms_per_100);
    }
    rc = sc_model_copy_weights(c.best, c.model, err);
    if (!rc) rc = write_model(&c, err);
done:
    free_ctx(&c);
    return rc;
}

/* One candidate of sc_msd_train_auto, trained into its own temporary file. */
typedef struct msd_candidate {
    int levels;
    char path[4400];
    cJSON *info;
    sc_msd_report vr, tr;
    int trained;
    float *prob;           /* (N_valid) the written model's validation probabilities */
    double valid_auc;      /* their AUC: what the guard judges and the selection ranks */
    sc_guard_verdict verdict; /* against the plain backbone */
} msd_candidate;

/* Validation probabilities of a written MSD model file, scored as eval and
 * serving score it (semantic fields from the file's tables). */
static int file_valid_prob(const char *path, const sc_dataset *valid, int n_threads, float **prob, sc_error *err) {
    sc_model_bundle b;
    int rc = sc_model_bundle_load(&b, path, n_threads, err);
    if (rc) return rc;
    sc_model *net = sc_model_bundle_network(&b, "main");
    *prob = sc_malloc((size_t)(valid->n_rows + 1) * sizeof **prob);
    rc = !net ? sc_fail(err, SC_EFORMAT, "%s: no network 'main'", path)
              : !*prob ? sc_fail(err, SC_ENOMEM, "out of memory") : SC_OK;
    if (!rc) rc = sc_msd_bundle_predict(&b, net, valid, NULL, n_threads, *prob, NULL, NULL, err);
    sc_model_bundle_free(&b);
    return rc;
}

static int train_candidate(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                           const sc_dataset *test, const sc_msd_semantics *sem, const sc_model_config *model_cfg,
                           const sc_train_config *tcfg, const sc_msd_config *mcfg, const cJSON *info,
                           const char *out_path, msd_candidate *k, sc_error *err) {
    char lv[64];
    sc_msd_config m = *mcfg;
    m.levels = k->levels;
    sc_train_config t = *tcfg;
    t.ckpt_path = NULL;
    t.resume = 0;
    snprintf(k->path, sizeof k->path, "%s.%s.tmp", out_path, sc_msd_levels_name(k->levels, lv, sizeof lv));
    k->info = info ? cJSON_Duplicate(info, 1) : cJSON_CreateObject();
    if (!k->info) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = sc_msd_train(schema, train, valid, test, sem, model_cfg, &t, &m, k->info, k->path, &k->vr, &k->tr, err);
    k->trained = !rc;
    if (!rc) rc = file_valid_prob(k->path, valid, tcfg->n_threads, &k->prob, err);
    sc_metrics vm;
    if (!rc) rc = sc_metrics_compute(valid->label, k->prob, NULL, valid->n_rows, &vm, err);
    if (!rc) k->valid_auc = vm.auc;
    return rc;
}

static int judge_candidate(msd_candidate *k, const msd_candidate *base, const sc_dataset *valid, sc_error *err) {
    char lv[64];
    int rc = sc_guard_compare(valid->label, k->prob, base->prob, valid->n_rows, SC_GUARD_Z, &k->verdict, err);
    if (!rc)
        sc_info("MSD auto: %-18s valid AUC %.5f, %+.5f ± %.5f against the plain backbone: %s",
                sc_msd_levels_name(k->levels, lv, sizeof lv), k->valid_auc, k->verdict.diff, k->verdict.se,
                k->verdict.pass ? "kept" : "dropped");
    return rc;
}

static void report_pair_json(cJSON *o, const char *key, const sc_msd_report *r) {
    cJSON *j = cJSON_AddObjectToObject(o, key);
    sc_metrics_json(j, "all", &r->all);
    sc_metrics_json(j, "cold", &r->cold);
}

int sc_msd_train_auto(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                      const sc_dataset *test, const sc_msd_semantics *sem, const sc_model_config *model_cfg,
                      const sc_train_config *tcfg, const sc_msd_config *mcfg, cJSON *info, const char *out_path,
                      int *chosen_levels, sc_msd_report *vrep, sc_msd_report *trep, sc_error *err) {
    /* base, then each available level alone, then the combination of the kept ones */
    msd_candidate k[5];
    memset(k, 0, sizeof k);
    int n = 0, rc = SC_OK, kept = 0, n_kept = 0;
    static const int SINGLE[3] = {SC_MSD_ITEM, SC_MSD_USER, SC_MSD_FUSION};
    k[n++].levels = 0;
    for (int i = 0; i < 3; i++)
        if (sem->available & SINGLE[i]) k[n++].levels = SINGLE[i];
    char lv[64];
    sc_info("MSD auto: choosing among the levels %s on validation (the plain backbone first)",
            sc_msd_levels_name(sem->available, lv, sizeof lv));
    /* a candidate counts only if it beats the plain backbone by more than validation noise (train/guard.h) */
    int n_single = n;
    for (int i = 0; i < n && !rc; i++) {
        rc = train_candidate(schema, train, valid, test, sem, model_cfg, tcfg, mcfg, info, out_path, &k[i], err);
        if (!rc && i == 0) sc_info("MSD auto: plain backbone     valid AUC %.5f", k[0].valid_auc);
        if (!rc && i > 0) rc = judge_candidate(&k[i], &k[0], valid, err);
        if (!rc && i > 0 && k[i].verdict.pass) {
            kept |= k[i].levels;
            n_kept++;
        }
        if (i == n_single - 1 && n_kept >= 2) k[n++].levels = kept; /* then their combination */
    }
    /* ranked by the scores the guard judged: the written file's, as eval and serving score it */
    int best = 0;
    for (int i = 1; i < n && !rc; i++)
        if (k[i].verdict.pass && (best == 0 || k[i].valid_auc > k[best].valid_auc)) best = i;
    if (!rc && rename(k[best].path, out_path))
        rc = sc_fail(err, SC_EIO, "%s: cannot rename to %s: %s", k[best].path, out_path, strerror(errno));
    if (!rc) {
        *chosen_levels = k[best].levels;
        if (vrep) *vrep = k[best].vr;
        if (trep && test) *trep = k[best].tr;
        sc_info("MSD auto: keeping %s (valid AUC %.5f; plain backbone %.5f)",
                sc_msd_levels_name(k[best].levels, lv, sizeof lv), k[best].valid_auc, k[0].valid_auc);
    }
    if (!rc && info) {
        /* the chosen candidate's info, with the selection and the plain backbone beside it */
        cJSON *src = k[best].info;
        for (cJSON *it = src->child; it; it = it->next) {
            cJSON_DeleteItemFromObject(info, it->string);
            cJSON_AddItemToObject(info, it->string, cJSON_Duplicate(it, 1));
        }
        cJSON_DeleteItemFromObject(info, "base");
        cJSON *m = cJSON_GetObjectItemCaseSensitive(info, "msd");
        if (!m) m = cJSON_AddObjectToObject(info, "msd");
        cJSON_AddStringToObject(m, "requested", "auto");
        cJSON *sel = cJSON_AddArrayToObject(m, "selection");
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "levels", sc_msd_levels_name(k[i].levels, lv, sizeof lv));
            /* the file's validation AUC (new entities get zeros, as eval without --encoder gives them) */
            cJSON_AddNumberToObject(o, "valid_auc", k[i].valid_auc);
            if (i > 0) {
                cJSON_AddNumberToObject(o, "diff_vs_base", k[i].verdict.diff);
                cJSON_AddNumberToObject(o, "se", k[i].verdict.se);
            }
            cJSON_AddBoolToObject(o, "kept", i > 0 && k[i].verdict.pass);
            cJSON_AddBoolToObject(o, "chosen", i == best);
            cJSON_AddItemToArray(sel, o);
        }
        cJSON *b = cJSON_AddObjectToObject(info, "base");
        report_pair_json(b, "valid", &k[0].vr);
        if (test) report_pair_json(b, "test", &k[0].tr);
    }
    for (int i = 0; i < n; i++) {
        if (k[i].trained && (rc || i != best)) remove(k[i].path);
        cJSON_Delete(k[i].info);
        sc_free(k[i].prob);
    }
    return rc;
}
