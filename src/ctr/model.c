/* CTR backbones over a shared feature-embedding layer, following
 * DeepCTR-Torch 0.3 (models/{deepfm,wdl,dcn,autoint}.py, layers/core.py, layers/interaction.py);
 * docs/models.md lists every structure, default and difference.
 *
 * Dimension letters: B batch, F dataset fields, Fe = F (+1 with an extra
 * field, +K = E / D with SC_EXTRA_FIELDS), D embedding size, E extra_dim, X = width of the DNN / cross input
 * (Fe*D, + E with SC_EXTRA_CONCAT), L layer, A attention width (heads *
 * att_dim), Hh width of the final hidden representation. */
#include "ctr/model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"

static const char *bb_names[SC_BB_COUNT] = {"lr",     "fm",  "dnn",   "widedeep",
                                            "deepfm", "dcn", "dcnv2", "autoint"};

const char *sc_backbone_name(sc_backbone b) {
    return (b >= 0 && b < SC_BB_COUNT) ? bb_names[b] : "unknown";
}

int sc_backbone_parse(const char *name, sc_backbone *out) {
    for (int i = 0; i < SC_BB_COUNT; i++)
        if (name && strcmp(name, bb_names[i]) == 0) {
            *out = (sc_backbone)i;
            return 0;
        }
    return -1;
}

void sc_model_config_default(sc_model_config *cfg, sc_backbone backbone) {
    memset(cfg, 0, sizeof *cfg);
    cfg->backbone = backbone;
    cfg->embed_dim = 16;
    /* DeepFM, WDL, AutoInt (and our DNN): dnn_hidden_units=(256, 128);
     * DCN (vector and matrix): (128, 128). LR and FM have no tower. */
    if (backbone == SC_BB_DCN || backbone == SC_BB_DCNV2) {
        cfg->n_hidden = 2;
        cfg->hidden[0] = 128;
        cfg->hidden[1] = 128;
    } else if (backbone != SC_BB_LR && backbone != SC_BB_FM) {
        cfg->n_hidden = 2;
        cfg->hidden[0] = 256;
        cfg->hidden[1] = 128;
    }
    cfg->dropout = 0.0f;
    cfg->n_cross = 2;
    cfg->att_layers = 3;
    cfg->att_heads = 2;
    cfg->att_dim = cfg->embed_dim / cfg->att_heads;
    cfg->att_residual = 1;
    cfg->att_scaling = 0;
    cfg->extra_dim = 0;
    cfg->extra_mode = SC_EXTRA_FIELD;
    cfg->n_threads = sc_default_threads();
}

/* One embedding table, used by one or more fields (share_with). */
typedef struct table {
    int owner;        /* field that declared it */
    int64_t V;        /* rows */
    int numeric;      /* one row, scaled by the value */
    int64_t max_ids;  /* ids per row over all its fields (sum of W) */
    sc_sparse_rows rows;
    int p_emb, p_lin; /* param indices or -1 */
    float *g_emb, *g_lin; /* (rows.cap, D), (rows.cap, 1) */
} table;

enum { MAXL = SC_MAX_LAYERS };

/* The activations of a forward pass: the model's own (training, eval) or a
 * scoring workspace's (sc_infer_ws), so one read-only model can run many
 * forwards at once. */
typedef struct fwd_acts {
    float *E_buf;        /* (B, Fe, D) */
    float *scale;        /* (F, B) pooling factor per field and row */
    float *lin;          /* (B) linear-part logit */
    float *x0;           /* (B, X): == E_buf unless concat */
    float *fmv;          /* (B, D) */
    float *dnn_a[MAXL];  /* (B, hidden[l]) after ReLU */
    float *dnn_m[MAXL];  /* (B, hidden[l]) dropout masks */
    float *dnn_h[MAXL];  /* (B, hidden[l]) after dropout (== dnn_a without dropout) */
    float *cx[MAXL + 1]; /* (B, X): cx[0] = x0 */
    float *cs[MAXL];     /* (B) vector: s; */
    float *cu[MAXL];     /* (B, X) matrix: u */
    float *ax[MAXL + 1]; /* ax[0] = E_buf (B, Fe, D); ax[l+1] (B, Fe, A) */
    sc_att_buffers ab[MAXL];
    float *hid;          /* (B, Hh) when hid_concat */
    const float *hidden; /* points at the hidden representation */
    uint32_t *bf;        /* bfloat16 layers: a layer's inputs as pairs, (B, ceil(max C / 2)) */
    uint32_t *bfg;       /* training in bfloat16 (cfg.bf16): the GEMMs' packed operands, or NULL */
} fwd_acts;

struct sc_model {
    sc_model_config cfg;
    int F, Fe, D, E;
    sc_field_info *fields; /* (F) */
    int *field_table;      /* (F) */
    table *tables;
    int n_tables;

    /* which parts the backbone has */
    int use_lin, use_fm, use_dnn, use_cross, cross_matrix, use_att, use_out;
    int extra_field, extra_concat, extra_lin;
    int n_xf; /* K dense fields taken as they are (SC_EXTRA_FIELDS) */
    int X;  /* DNN / cross input width */
    int A;  /* attention width */
    int Hh; /* hidden width */
    int hid_concat; /* hidden is [cross|att, dnn] assembled in a buffer */

    /* parameters: one allocation for all values, one for dense gradients */
    sc_param *params;
    int n_params;
    float *wblock, *gblock;
    int64_t wblock_n, gblock_n;
    int p_bias, p_out, p_xw, p_xb, p_xlin;
    int p_dw[MAXL], p_db[MAXL], p_cw[MAXL], p_cb[MAXL];
    int p_aq[MAXL], p_ak[MAXL], p_av[MAXL], p_ar[MAXL];

    sc_rng rng; /* dropout */

    /* activations, for cap rows (the forward's in a, as a scoring workspace holds them) */
    int cap;
    float *act_block;
    fwd_acts a;
    /* serving (sc_model_pack): dense weights packed for the inference kernel */
    float *pk_block;
    const float *pk_dw[MAXL], *pk_cw[MAXL];
    int64_t pk_n;
    int pk_bf16;         /* the pack is in bfloat16 (sc_linear_packed_bf16_forward) */
    /* backward scratch */
    float *dE;           /* (B, Fe, D) */
    float *dx0;          /* (B, X), == dE unless concat */
    float *dhid;         /* (B, max(Hh, D)) */
    float *g1, *g2;      /* (B, maxw) ping-pong */
    float *gd;           /* (B, X) cross/dnn part scratch */
    float *dlin;         /* (B) */
    sc_att_scratch as;
    int last_B, last_training;
};

/* ---------------- creation ---------------- */

static int check_config(const sc_model_config *c, sc_error *err) {
    if (c->backbone < 0 || c->backbone >= SC_BB_COUNT)
        return sc_fail(err, SC_EINVAL, "model config: unknown backbone %d", (int)c->backbone);
    if (c->embed_dim < 1 || c->embed_dim > 4096)
        return sc_fail(err, SC_EINVAL, "model config: embed_dim %d not in [1, 4096]", c->embed_dim);
    if (c->n_hidden < 0 || c->n_hidden > SC_MAX_LAYERS)
        return sc_fail(err, SC_EINVAL, "model config: n_hidden %d not in [0, %d]", c->n_hidden,
                       SC_MAX_LAYERS);
    for (int l = 0; l < c->n_hidden; l++)
        if (c->hidden[l] < 1 || c->hidden[l] > 65536)
            return sc_fail(err, SC_EINVAL, "model config: hidden[%d] = %d not in [1, 65536]", l,
                           c->hidden[l]);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return sc_fail(err, SC_EINVAL, "model config: dropout %g not in [0, 1)", c->dropout);
    if (c->n_cross < 0 || c->n_cross > SC_MAX_LAYERS)
        return sc_fail(err, SC_EINVAL, "model config: n_cross %d not in [0, %d]", c->n_cross,
                       SC_MAX_LAYERS);
    if (c->att_layers < 0 || c->att_layers > SC_MAX_LAYERS)
        return sc_fail(err, SC_EINVAL, "model config: att_layers %d not in [0, %d]", c->att_layers,
                       SC_MAX_LAYERS);
    if (c->backbone == SC_BB_AUTOINT && c->att_layers > 0 &&
        (c->att_heads < 1 || c->att_dim < 1 || (int64_t)c->att_heads * c->att_dim > 65536))
        return sc_fail(err, SC_EINVAL, "model config: att_heads %d and att_dim %d must be >= 1",
                       c->att_heads, c->att_dim);
    if (c->extra_dim < 0 || c->extra_dim > (1 << 20))
        return sc_fail(err, SC_EINVAL, "model config: extra_dim %d not in [0, 2^20]", c->extra_dim);
    if (c->extra_mode != SC_EXTRA_FIELD && c->extra_mode != SC_EXTRA_CONCAT && c->extra_mode != SC_EXTRA_FIELDS)
        return sc_fail(err, SC_EINVAL, "model config: unknown extra_mode %d", c->extra_mode);
    if (c->extra_mode == SC_EXTRA_FIELDS && c->embed_dim > 0 && c->extra_dim % c->embed_dim)
        return sc_fail(err, SC_EINVAL, "model config: extra_mode fields needs extra_dim (%d) a multiple of embed_dim (%d)",
                       c->extra_dim, c->embed_dim);
    if (c->n_threads < 0 || c->n_threads > 256)
        return sc_fail(err, SC_EINVAL, "model config: n_threads %d not in [0, 256]", c->n_threads);
    switch (c->backbone) {
    case SC_BB_DNN:
    case SC_BB_WIDEDEEP:
    case SC_BB_DEEPFM:
        if (c->n_hidden < 1)
            return sc_fail(err, SC_EINVAL, "model config: %s needs n_hidden >= 1",
                           sc_backbone_name(c->backbone));
        break;
    case SC_BB_DCN:
    case SC_BB_DCNV2:
        if (c->n_hidden + c->n_cross < 1)
            return sc_fail(err, SC_EINVAL, "model config: %s needs n_hidden or n_cross >= 1",
                           sc_backbone_name(c->backbone));
        break;
    case SC_BB_AUTOINT:
        if (c->n_hidden + c->att_layers < 1)
            return sc_fail(err, SC_EINVAL, "model config: autoint needs n_hidden or att_layers >= 1");
        break;
    default:
        break;
    }
    return SC_OK;
}

static int check_fields(const sc_field_info *fs, int F, sc_error *err) {
    if (F < 1 || F > 100000 || !fs)
        return sc_fail(err, SC_EINVAL, "model: need between 1 and 100000 fields, got %d", F);
    for (int f = 0; f < F; f++) {
        const sc_field_info *fi = &fs[f];
        if (fi->kind < SC_FIELD_CATEGORICAL || fi->kind > SC_FIELD_SEQUENCE)
            return sc_fail(err, SC_EINVAL, "model: field %d '%.64s' has unknown kind %d", f, fi->name,
                           fi->kind);
        if (fi->width < 1 || fi->width > 65536 ||
            ((fi->kind == SC_FIELD_CATEGORICAL || fi->kind == SC_FIELD_NUMERIC) && fi->width != 1))
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' has bad width %d", fi->name,
                           fi->width);
        if (fi->kind != SC_FIELD_NUMERIC && (fi->vocab_size < 1 || fi->vocab_size > INT32_MAX))
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' has bad vocab_size %lld", fi->name,
                           (long long)fi->vocab_size);
        if (fi->pooling != SC_POOL_MEAN && fi->pooling != SC_POOL_SUM)
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' has unknown pooling %d", fi->name,
                           fi->pooling);
        if (fi->share_with >= 0) {
            int o = fi->share_with;
            if (o >= F || o == f || fs[o].share_with >= 0 || fs[o].kind == SC_FIELD_NUMERIC ||
                fi->kind == SC_FIELD_NUMERIC)
                return sc_fail(err, SC_EINVAL,
                               "model: field '%.64s' shares the table of field %d, which is not an "
                               "id field owning its table",
                               fi->name, o);
            if (fi->vocab_size > fs[o].vocab_size)
                return sc_fail(err, SC_EINVAL,
                               "model: field '%.64s' has vocab_size %lld, larger than the %lld of "
                               "the table it shares ('%.64s')",
                               fi->name, (long long)fi->vocab_size, (long long)fs[o].vocab_size,
                               fs[o].name);
        } else if (fi->share_with != -1) {
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' has bad share_with %d", fi->name,
                           fi->share_with);
        }
    }
    return SC_OK;
}

/* Parameter initialisers, as DeepCTR-Torch / PyTorch. */
enum { INIT_ZERO, INIT_NORMAL, INIT_UNIFORM };

typedef struct pspec {
    char name[64];
    int64_t rows;
    int cols;
    int sparse, wd;
    int init;
    float a; /* std or bound */
} pspec;

static int add_spec(pspec *sp, int *n, const char *name, int64_t rows, int cols, int sparse,
                    int init, float a) {
    pspec *s = &sp[*n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%.63s", name);
    s->rows = rows;
    s->cols = cols;
    s->sparse = sparse;
    s->wd = sparse;
    s->init = init;
    s->a = a;
    return (*n)++;
}

static void free_acts(sc_model *m) {
    sc_free(m->act_block);
    m->act_block = NULL;
    sc_free(m->a.bfg);
    m->a.bfg = NULL;
    m->cap = 0;
}

void sc_model_free(sc_model *m) {
    if (!m) return;
    free_acts(m);
    if (m->tables)
        for (int t = 0; t < m->n_tables; t++) {
            sc_sparse_rows_free(&m->tables[t].rows);
            sc_free(m->tables[t].g_emb);
            sc_free(m->tables[t].g_lin);
        }
    sc_free(m->tables);
    sc_free(m->field_table);
    sc_free(m->fields);
    sc_free(m->params);
    sc_free(m->wblock);
    sc_free(m->gblock);
    sc_free(m->pk_block);
    sc_free(m);
}

const sc_model_config *sc_model_get_config(const sc_model *m) { return &m->cfg; }

int sc_model_hidden_dim(const sc_model *m) { return m->Hh; }

static int64_t round16(int64_t n) { return (n + 15) & ~(int64_t)15; }

int sc_model_create(sc_model **out, const sc_model_config *cfg_in, const sc_field_info *fields,
                    int n_fields, uint64_t seed, sc_error *err) {
    *out = NULL;
    int rc = check_config(cfg_in, err);
    if (rc) return rc;
    rc = check_fields(fields, n_fields, err);
    if (rc) return rc;
    sc_model *m = sc_calloc(1, sizeof *m);
    if (!m) return sc_fail(err, SC_ENOMEM, "model: out of memory");
    m->cfg = *cfg_in;
    sc_model_config *c = &m->cfg;
    if (c->n_threads == 0) c->n_threads = sc_default_threads();
    sc_backbone bb = c->backbone;
    m->F = n_fields;
    m->D = c->embed_dim;
    m->E = c->extra_dim;
    int L = 0;

    /* Which parts the backbone has (DeepCTR-Torch: every model but our DNN
     * has the linear part; LR and FM have no output Linear). */
    m->use_lin = bb != SC_BB_DNN;
    m->use_fm = bb == SC_BB_FM || bb == SC_BB_DEEPFM;
    m->use_dnn = c->n_hidden > 0 && bb != SC_BB_LR && bb != SC_BB_FM;
    m->use_cross = (bb == SC_BB_DCN || bb == SC_BB_DCNV2) && c->n_cross > 0;
    m->cross_matrix = bb == SC_BB_DCNV2;
    m->use_att = bb == SC_BB_AUTOINT && c->att_layers > 0;
    m->use_out = bb != SC_BB_LR && bb != SC_BB_FM;
    if (!m->use_dnn) c->n_hidden = 0;
    if (!m->use_cross) c->n_cross = 0;
    if (!m->use_att) c->att_layers = 0;
    if (m->E > 0) {
        int consumer = c->extra_mode != SC_EXTRA_CONCAT ? (bb != SC_BB_LR)
                                                        : (m->use_dnn || m->use_cross);
        m->extra_field = consumer && c->extra_mode == SC_EXTRA_FIELD;
        m->n_xf = consumer && c->extra_mode == SC_EXTRA_FIELDS ? m->E / m->D : 0;
        m->extra_concat = consumer && c->extra_mode == SC_EXTRA_CONCAT;
        m->extra_lin = !consumer; /* LR, or FM with concat: a linear term */
    }
    m->Fe = m->F + (m->extra_field ? 1 : 0) + m->n_xf;
    m->X = m->Fe * m->D + (m->extra_concat ? m->E : 0);
    m->A = m->use_att ? c->att_heads * c->att_dim : 0;
    int dnn_out = m->use_dnn ? c->hidden[c->n_hidden - 1] : 0;
    if (bb == SC_BB_FM)
        m->Hh = m->D;
    else if (bb == SC_BB_LR)
        m->Hh = 0;
    else
        m->Hh = dnn_out + (m->use_cross ? m->X : 0) + (m->use_att ? m->Fe * m->A : 0);
    m->hid_concat = (m->use_cross || m->use_att) && m->use_dnn;

    m->fields = sc_calloc((size_t)m->F, sizeof *m->fields);
    m->field_table = sc_calloc((size_t)m->F, sizeof(int));
    m->tables = sc_calloc((size_t)m->F, sizeof(table));
    int n_specs_max = 2 * m->F + 8 + 4 * MAXL * 2 + 8;
    pspec *sp = sc_calloc((size_t)n_specs_max, sizeof(pspec));
    if (!m->fields || !m->field_table || !m->tables || !sp) {
        sc_free(sp);
        sc_model_free(m);
        return sc_fail(err, SC_ENOMEM, "model: out of memory");
    }
    memcpy(m->fields, fields, sizeof(sc_field_info) * (size_t)m->F);
    for (int f = 0; f < m->F; f++) {
        if (m->fields[f].share_with >= 0) continue;
        table *t = &m->tables[m->n_tables];
        t->owner = f;
        t->numeric = m->fields[f].kind == SC_FIELD_NUMERIC;
        t->V = t->numeric ? 1 : m->fields[f].vocab_size;
        t->p_emb = t->p_lin = -1;
        m->field_table[f] = m->n_tables++;
    }
    for (int f = 0; f < m->F; f++) {
        if (m->fields[f].share_with >= 0) m->field_table[f] = m->field_table[m->fields[f].share_with];
        m->tables[m->field_table[f]].max_ids += m->fields[f].width;
    }

    /* Parameter list, in file order. */
    int n = 0;
    char nm[128];
    int need_emb = bb != SC_BB_LR;
    const float init_std = 1e-4f; /* DeepCTR init_std */
    if (need_emb)
        for (int t = 0; t < m->n_tables; t++) {
            snprintf(nm, sizeof nm, "emb.%.58s", m->fields[m->tables[t].owner].name);
            m->tables[t].p_emb = add_spec(sp, &n, nm, m->tables[t].V, m->D, 1, INIT_NORMAL, init_std);
        }
    if (m->use_lin)
        for (int t = 0; t < m->n_tables; t++) {
            snprintf(nm, sizeof nm, "lin.%.58s", m->fields[m->tables[t].owner].name);
            m->tables[t].p_lin = add_spec(sp, &n, nm, m->tables[t].V, 1, 1, INIT_NORMAL, init_std);
        }
    m->p_xw = m->p_xb = m->p_xlin = -1;
    if (m->E > 0) {
        float bound = 1.0f / sqrtf((float)m->E); /* nn.Linear default */
        if (m->extra_field) {
            /* The projected side vector is one more field: it starts at the
             * scale of the embeddings (N(0, init_std), zero bias) so that it
             * does not swamp the ID fields before they have learned anything. */
            m->p_xw = add_spec(sp, &n, "extra.proj.weight", m->D, m->E, 0, INIT_NORMAL, init_std);
            m->p_xb = add_spec(sp, &n, "extra.proj.bias", 1, m->D, 0, INIT_ZERO, 0);
        }
        if (m->extra_lin) m->p_xlin = add_spec(sp, &n, "extra.lin.weight", 1, m->E, 0, INIT_UNIFORM, bound);
    }
    int in = m->X;
    for (L = 0; L < c->n_hidden; L++) {
        /* DeepCTR DNN: weights N(0, init_std), biases nn.Linear default U(+-1/sqrt(in)). */
        snprintf(nm, sizeof nm, "dnn.%d.weight", L);
        m->p_dw[L] = add_spec(sp, &n, nm, c->hidden[L], in, 0, INIT_NORMAL, init_std);
        snprintf(nm, sizeof nm, "dnn.%d.bias", L);
        m->p_db[L] = add_spec(sp, &n, nm, 1, c->hidden[L], 0, INIT_UNIFORM, 1.0f / sqrtf((float)in));
        in = c->hidden[L];
    }
    for (L = 0; L < c->n_cross; L++) {
        /* xavier_normal_ of (K, 1) or (K, K); zero bias. */
        int K = m->X;
        snprintf(nm, sizeof nm, "cross.%d.weight", L);
        if (m->cross_matrix)
            m->p_cw[L] = add_spec(sp, &n, nm, K, K, 0, INIT_NORMAL, sqrtf(2.0f / (2.0f * K)));
        else
            m->p_cw[L] = add_spec(sp, &n, nm, 1, K, 0, INIT_NORMAL, sqrtf(2.0f / (K + 1.0f)));
        snprintf(nm, sizeof nm, "cross.%d.bias", L);
        m->p_cb[L] = add_spec(sp, &n, nm, 1, K, 0, INIT_ZERO, 0);
    }
    for (L = 0; L < c->att_layers; L++) {
        int din = L == 0 ? m->D : m->A;
        const char *wn[4] = {"W_query", "W_key", "W_value", "W_res"};
        int *pi[4] = {&m->p_aq[L], &m->p_ak[L], &m->p_av[L], &m->p_ar[L]};
        for (int k = 0; k < 4; k++) {
            *pi[k] = -1;
            if (k == 3 && !c->att_residual) continue;
            snprintf(nm, sizeof nm, "att.%d.%s", L, wn[k]);
            *pi[k] = add_spec(sp, &n, nm, din, m->A, 0, INIT_NORMAL, 0.05f);
        }
    }
    m->p_out = -1;
    if (m->use_out)
        m->p_out = add_spec(sp, &n, "out.weight", 1, m->Hh, 0, INIT_UNIFORM,
                            1.0f / sqrtf((float)(m->Hh > 0 ? m->Hh : 1)));
    m->p_bias = add_spec(sp, &n, "bias", 1, 1, 0, INIT_ZERO, 0);
    m->n_params = n;

    /* One allocation for all values, one for the dense gradients. */
    int64_t wn_total = 0, gn_total = 0;
    for (int i = 0; i < n; i++) {
        int64_t sz = sp[i].rows * sp[i].cols;
        if (sp[i].rows > 0 && sz / sp[i].rows != sp[i].cols) sz = -1;
        if (sz <= 0 || sz > ((int64_t)1 << 40)) {
            sc_free(sp);
            sc_model_free(m);
            return sc_fail(err, SC_EINVAL, "model: parameter '%s' has an impossible size", sp[i].name);
        }
        wn_total += round16(sz);
        if (!sp[i].sparse) gn_total += round16(sz);
    }
    m->params = sc_calloc((size_t)n, sizeof(sc_param));
    size_t wbytes, gbytes;
    if (!m->params || sc_mul_size((size_t)wn_total, sizeof(float), &wbytes) ||
        sc_mul_size((size_t)(gn_total > 0 ? gn_total : 16), sizeof(float), &gbytes) ||
        !(m->wblock = sc_aligned_alloc(wbytes)) || !(m->gblock = sc_aligned_alloc(gbytes))) {
        sc_free(sp);
        sc_model_free(m);
        return sc_fail(err, SC_ENOMEM, "model: out of memory for %lld weights", (long long)wn_total);
    }
    m->wblock_n = wn_total;
    m->gblock_n = gn_total;
    sc_rng init_rng;
    sc_rng_seed(&init_rng, seed);
    sc_rng_seed(&m->rng, seed ^ 0x9e3779b97f4a7c15ULL);
    int64_t wo = 0, go = 0;
    for (int i = 0; i < n; i++) {
        sc_param *p = &m->params[i];
        snprintf(p->name, sizeof p->name, "%.63s", sp[i].name);
        p->rows = sp[i].rows;
        p->cols = sp[i].cols;
        p->size = sp[i].rows * sp[i].cols;
        p->sparse = sp[i].sparse;
        p->weight_decay = sp[i].wd;
        p->data = m->wblock + wo;
        wo += round16(p->size);
        if (!p->sparse) {
            p->grad = m->gblock + go;
            go += round16(p->size);
        }
        for (int64_t j = 0; j < p->size; j++) {
            float v = 0.0f;
            if (sp[i].init == INIT_NORMAL) v = sp[i].a * sc_rng_normal(&init_rng);
            else if (sp[i].init == INIT_UNIFORM)
                v = sp[i].a * (float)(2.0 * sc_rng_uniform(&init_rng) - 1.0);
            p->data[j] = v;
        }
    }
    memset(m->gblock, 0, gbytes);
    sc_free(sp);
    for (int t = 0; t < m->n_tables; t++) {
        if (sc_sparse_rows_init(&m->tables[t].rows, m->tables[t].V) != 0) {
            sc_model_free(m);
            return sc_fail(err, SC_ENOMEM, "model: out of memory for the table of '%.64s'",
                           m->fields[m->tables[t].owner].name);
        }
    }
    *out = m;
    return SC_OK;
}

/* ---------------- activations ---------------- */

static int ensure_capacity(sc_model *m, int B, sc_error *err) {
    if (B <= m->cap) return SC_OK;
    free_acts(m);
    int64_t cap = B, D = m->D, Fe = m->Fe, X = m->X;
    const sc_model_config *c = &m->cfg;
    int64_t maxw = X;
    for (int l = 0; l < c->n_hidden; l++)
        if (c->hidden[l] > maxw) maxw = c->hidden[l];
    if (Fe * m->A > maxw) maxw = Fe * m->A;
    if (Fe * D > maxw) maxw = Fe * D;
    int64_t hd = m->Hh > D ? m->Hh : D;
    /* Sizes (floats per row) of every buffer, in carving order. */
    int64_t sizes[64 + 8 * MAXL];
    int ns = 0;
    sizes[ns++] = Fe * D;                     /* E_buf */
    sizes[ns++] = m->F;                       /* scale */
    sizes[ns++] = 1;                          /* lin */
    sizes[ns++] = m->extra_concat ? X : 0;    /* x0 */
    sizes[ns++] = m->use_fm ? D : 0;          /* fmv */
    for (int l = 0; l < c->n_hidden; l++) {
        sizes[ns++] = c->hidden[l];                           /* a */
        sizes[ns++] = c->dropout > 0 ? c->hidden[l] : 0;      /* m */
        sizes[ns++] = c->dropout > 0 ? c->hidden[l] : 0;      /* h */
    }
    for (int l = 0; l < c->n_cross; l++) {
        sizes[ns++] = X;                       /* cx[l+1] */
        sizes[ns++] = m->cross_matrix ? 0 : 1; /* cs */
        sizes[ns++] = m->cross_matrix ? X : 0; /* cu */
    }
    for (int l = 0; l < c->att_layers; l++) {
        sizes[ns++] = Fe * m->A;                          /* ax[l+1] */
        sizes[ns++] = 3 * Fe * m->A;                      /* q k v */
        sizes[ns++] = (int64_t)c->att_heads * Fe * Fe;    /* p */
    }
    sizes[ns++] = m->hid_concat ? m->Hh : 0;  /* hid */
    sizes[ns++] = Fe * D;                     /* dE */
    sizes[ns++] = m->extra_concat ? X : 0;    /* dx0 */
    sizes[ns++] = hd;                         /* dhid */
    sizes[ns++] = maxw;                       /* g1 */
    sizes[ns++] = maxw;                       /* g2 */
    sizes[ns++] = maxw;                       /* gd */
    sizes[ns++] = 1;                          /* dlin */
    sizes[ns++] = m->use_att ? 4 * Fe * m->A : 0; /* att scratch */
    int64_t total = 0;
    for (int i = 0; i < ns; i++) total += round16(sizes[i] * cap);
    size_t bytes;
    if (sc_mul_size((size_t)total, sizeof(float), &bytes) || !(m->act_block = sc_aligned_alloc(bytes)))
        return sc_fail(err, SC_ENOMEM, "model: out of memory for activations of %d rows", B);
    memset(m->act_block, 0, bytes);
    float *p = m->act_block;
    int k = 0;
#define CARVE() (p += round16(sizes[k] * cap), p - round16(sizes[k++] * cap))
    m->a.E_buf = CARVE();
    m->a.scale = CARVE();
    m->a.lin = CARVE();
    m->a.x0 = CARVE();
    if (!m->extra_concat) m->a.x0 = m->a.E_buf;
    m->a.fmv = CARVE();
    for (int l = 0; l < c->n_hidden; l++) {
        m->a.dnn_a[l] = CARVE();
        m->a.dnn_m[l] = CARVE();
        m->a.dnn_h[l] = CARVE();
        if (!(c->dropout > 0)) m->a.dnn_h[l] = m->a.dnn_a[l];
    }
    m->a.cx[0] = m->a.x0;
    for (int l = 0; l < c->n_cross; l++) {
        m->a.cx[l + 1] = CARVE();
        m->a.cs[l] = CARVE();
        m->a.cu[l] = CARVE();
    }
    m->a.ax[0] = m->a.E_buf;
    for (int l = 0; l < c->att_layers; l++) {
        m->a.ax[l + 1] = CARVE();
        float *q = CARVE();
        m->a.ab[l].q = q;
        m->a.ab[l].k = q + cap * Fe * m->A;
        m->a.ab[l].v = q + 2 * cap * Fe * m->A;
        m->a.ab[l].p = CARVE();
    }
    m->a.hid = CARVE();
    m->dE = CARVE();
    m->dx0 = CARVE();
    if (!m->extra_concat) m->dx0 = m->dE;
    m->dhid = CARVE();
    m->g1 = CARVE();
    m->g2 = CARVE();
    m->gd = CARVE();
    m->dlin = CARVE();
    float *as = CARVE();
    m->as.dq = as;
    m->as.dk = as + cap * Fe * m->A;
    m->as.dv = as + 2 * cap * Fe * m->A;
    m->as.dz = as + 3 * cap * Fe * m->A;
#undef CARVE
    if (c->bf16 && (m->use_dnn || (m->use_cross && m->cross_matrix))) {
        /* bfloat16 training GEMMs: room for the largest layer's packed operands */
        int64_t need = 0, in = X;
        for (int l = 0; l < c->n_hidden && m->use_dnn; l++) {
            int64_t s = sc_linear_bf16_scratch((int)cap, (int)in, c->hidden[l]);
            if (s > need) need = s;
            in = c->hidden[l];
        }
        if (m->use_cross && m->cross_matrix && c->n_cross > 0) {
            int64_t s = sc_linear_bf16_scratch((int)cap, (int)X, (int)X);
            if (s > need) need = s;
        }
        if (!(m->a.bfg = sc_aligned_alloc(sizeof(uint32_t) * (size_t)need))) goto oom;
    }
    /* Sparse gradient rows: at most every id of the batch, at most V. */
    for (int t = 0; t < m->n_tables; t++) {
        table *tb = &m->tables[t];
        int64_t need = tb->numeric ? 1 : tb->max_ids * cap;
        if (sc_sparse_rows_reserve(&tb->rows, need) != 0) goto oom;
        int64_t rc = tb->rows.cap;
        if (tb->p_emb >= 0) {
            sc_free(tb->g_emb);
            if (!(tb->g_emb = sc_aligned_alloc(sizeof(float) * (size_t)(rc * m->D)))) goto oom;
            m->params[tb->p_emb].grad = tb->g_emb;
        }
        if (tb->p_lin >= 0) {
            sc_free(tb->g_lin);
            if (!(tb->g_lin = sc_aligned_alloc(sizeof(float) * (size_t)rc))) goto oom;
            m->params[tb->p_lin].grad = tb->g_lin;
        }
    }
    m->cap = B;
    return SC_OK;
oom:
    free_acts(m);
    return sc_fail(err, SC_ENOMEM, "model: out of memory for sparse gradients of %d rows", B);
}

/* ---------------- forward ---------------- */

static int check_batch(const sc_model *m, const sc_batch *b, sc_error *err) {
    if (!b) return sc_fail(err, SC_EINVAL, "model: NULL batch");
    if (b->n < 0 || b->n > (1 << 24))
        return sc_fail(err, SC_EINVAL, "model: batch has %d rows", b->n);
    if (b->n_fields != m->F)
        return sc_fail(err, SC_EINVAL, "model: batch has %d fields, the model %d", b->n_fields, m->F);
    if (m->E > 0 && b->n > 0 && !b->extra)
        return sc_fail(err, SC_EINVAL, "model: extra_dim is %d but the batch has no extra input",
                       m->E);
    for (int f = 0; f < m->F; f++) {
        const sc_field_info *fi = &m->fields[f];
        if (fi->kind == SC_FIELD_NUMERIC) {
            if (b->n > 0 && (!b->values || !b->values[f]))
                return sc_fail(err, SC_EINVAL, "model: numeric field '%.64s' has no values", fi->name);
            continue;
        }
        if (b->n > 0 && (!b->ids || !b->ids[f]))
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' has no ids", fi->name);
        int64_t V = m->tables[m->field_table[f]].V;
        int64_t bad = b->n > 0 ? sc_embedding_check_ids(b->ids[f], (int64_t)b->n * fi->width, V) : -1;
        if (bad >= 0)
            return sc_fail(err, SC_EINVAL, "model: field '%.64s' row %lld has id %d outside [0, %lld)",
                           fi->name, (long long)(bad / fi->width), b->ids[f][bad], (long long)V);
    }
    return SC_OK;
}

typedef struct {
    const sc_model *m;
    fwd_acts *A;
    const sc_batch *b;
    int tasks;
} emb_ctx;

/* Embedding gather + pooling and the linear part for a chunk of rows. */
static void emb_fwd_task(void *vc, int t) {
    emb_ctx *c = vc;
    const sc_model *m = c->m;
    fwd_acts *A = c->A;
    int B = c->b->n, D = m->D, Fe = m->Fe;
    int lo = (int)((int64_t)B * t / c->tasks), hi = (int)((int64_t)B * (t + 1) / c->tasks);
    int n = hi - lo;
    if (n <= 0) return;
    if (m->use_lin) memset(A->lin + lo, 0, sizeof(float) * n);
    for (int f = 0; f < m->F; f++) {
        const sc_field_info *fi = &m->fields[f];
        const table *tb = &m->tables[m->field_table[f]];
        float *sc = A->scale + (int64_t)f * B + lo;
        float *out = A->E_buf + (int64_t)lo * Fe * D + (int64_t)f * D;
        if (fi->kind == SC_FIELD_NUMERIC) {
            const float *v = c->b->values[f] + lo;
            if (tb->p_emb >= 0) sc_embedding_numeric_forward(out, Fe * D, m->params[tb->p_emb].data, v, n, D);
            if (tb->p_lin >= 0) {
                float w = m->params[tb->p_lin].data[0];
                for (int i = 0; i < n; i++) A->lin[lo + i] += w * v[i];
            }
            continue;
        }
        int W = fi->width, mean = fi->kind != SC_FIELD_CATEGORICAL && fi->pooling == SC_POOL_MEAN;
        const int32_t *ids = c->b->ids[f] + (int64_t)lo * W;
        if (tb->p_emb >= 0)
            sc_embedding_pool_forward(out, Fe * D, sc, m->params[tb->p_emb].data, ids, n, W, D, mean);
        if (tb->p_lin >= 0) {
            /* Linear part: the same pooling over 1-wide weights (DeepCTR's
             * linear embedding with embedding_dim 1). */
            const float *lw = m->params[tb->p_lin].data;
            for (int i = 0; i < n; i++) {
                const int32_t *r = ids + (int64_t)i * W;
                float s = 0.0f;
                int len = 0;
                for (int w = 0; w < W; w++)
                    if (r[w]) {
                        s += lw[r[w]];
                        len++;
                    }
                float k = mean ? (len ? 1.0f / len : 0.0f) : 1.0f;
                sc[i] = k;
                A->lin[lo + i] += s * k;
            }
        }
    }
}

static int n_tasks_for(int B, int n_threads) {
    int t = B / 64;
    if (t > n_threads) t = n_threads;
    return t < 1 ? 1 : t;
}

/* The packed dense layer over row chunks (sc_linear_packed_forward); each
 * chunk is independent, so the bits do not depend on the threads. */
typedef struct {
    const float *pk, *inp, *x0, *xl;
    float *out;
    uint32_t *bf; /* bfloat16 pack: the inputs' scratch, else NULL */
    int B, C, O, epi, tasks;
} packed_ctx;

static void packed_task(void *vc, int t) {
    packed_ctx *c = vc;
    int lo = (int)((int64_t)c->B * t / c->tasks), hi = (int)((int64_t)c->B * (t + 1) / c->tasks);
    if (hi <= lo) return;
    int64_t ai = (int64_t)lo * c->C, ao = (int64_t)lo * c->O;
    if (c->bf)
        sc_linear_packed_bf16_forward(c->out + ao, c->O, c->inp + ai, c->C, c->bf + (int64_t)lo * ((c->C + 1) / 2),
                                      c->pk, hi - lo, c->C, c->O, c->epi, c->x0 ? c->x0 + ao : NULL,
                                      c->xl ? c->xl + ao : NULL);
    else
        sc_linear_packed_forward(c->out + ao, c->O, c->inp + ai, c->C, c->pk, hi - lo, c->C, c->O, c->epi,
                                 c->x0 ? c->x0 + ao : NULL, c->xl ? c->xl + ao : NULL);
}

static void packed_forward(const float *pk, uint32_t *bf, float *out, const float *inp, int B, int C, int O,
                           int epi, const float *x0, const float *xl, int nt) {
    packed_ctx pc = {pk, inp, x0, xl, out, bf, B, C, O, epi, n_tasks_for(B, nt)};
    sc_parallel_for(pc.tasks, nt, packed_task, &pc);
}

/* The forward pass into the activations A (the model's or a workspace's,
 * holding at least B rows); the model is only read. rng: dropout's, used
 * when training. */
static int forward_acts(const sc_model *m, fwd_acts *A, const sc_batch *b, int training, sc_rng *rng,
                        int packed, float *logits) {
    const sc_model_config *c = &m->cfg;
    int B = b->n, D = m->D, Fe = m->Fe, X = m->X, E = m->E, nt = c->n_threads;
    A->hidden = NULL;
    if (B == 0) return SC_OK;
    sc_nn_set_threads(nt);
    const sc_param *P = m->params;

    emb_ctx ec = {m, A, b, n_tasks_for(B, nt)};
    sc_parallel_for(ec.tasks, nt, emb_fwd_task, &ec);

    if (m->extra_field) {
        /* extra (B, E) -> Linear -> field F of E_buf, written in place (row stride Fe*D). */
        float *dst = A->E_buf + (int64_t)m->F * D;
        const float *bias = P[m->p_xb].data;
        for (int i = 0; i < B; i++) memcpy(dst + (int64_t)i * Fe * D, bias, sizeof(float) * D);
        sc_gemm(0, 1, B, D, E, 1.0f, b->extra, E, P[m->p_xw].data, E, 1.0f, dst, Fe * D);
    }
    if (m->n_xf)
        /* extra (B, K*D) -> the last K fields of E_buf, as they are */
        for (int i = 0; i < B; i++)
            memcpy(A->E_buf + (int64_t)i * Fe * D + (int64_t)(Fe - m->n_xf) * D, b->extra + (int64_t)i * E,
                   sizeof(float) * E);
    if (m->extra_concat)
        for (int i = 0; i < B; i++) {
            memcpy(A->x0 + (int64_t)i * X, A->E_buf + (int64_t)i * Fe * D, sizeof(float) * Fe * D);
            memcpy(A->x0 + (int64_t)i * X + Fe * D, b->extra + (int64_t)i * E, sizeof(float) * E);
        }

    float bias = P[m->p_bias].data[0];
    for (int i = 0; i < B; i++) logits[i] = bias + (m->use_lin ? A->lin[i] : 0.0f);
    if (m->extra_lin)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, B, E, 1.0f, b->extra, E, P[m->p_xlin].data, 1, 1.0f,
                    logits, 1);

    if (m->use_fm) {
        sc_fm_forward(A->fmv, A->E_buf, B, Fe, D, nt);
        if (c->backbone == SC_BB_DEEPFM || c->backbone == SC_BB_FM)
            for (int i = 0; i < B; i++) {
                float s = 0.0f;
                for (int d = 0; d < D; d++) s += A->fmv[(int64_t)i * D + d];
                logits[i] += s;
            }
    }

    /* DNN tower: Linear -> ReLU -> Dropout per layer. */
    const float *h = A->x0;
    int hin = X;
    for (int l = 0; l < c->n_hidden; l++) {
        int O = c->hidden[l];
        if (packed && (m->pk_bf16 || sc_linear_packed_same_as_blas(B, hin, O))) {
            packed_forward(m->pk_dw[l], m->pk_bf16 ? A->bf : NULL, A->dnn_a[l], h, B, hin, O, SC_EPI_RELU, NULL,
                           NULL, nt);
        } else {
            if (!packed && A->bfg)
                sc_linear_forward_bf16(A->dnn_a[l], h, P[m->p_dw[l]].data, P[m->p_db[l]].data, B, hin, O, A->bfg,
                                       nt);
            else
                sc_linear_forward(A->dnn_a[l], h, P[m->p_dw[l]].data, P[m->p_db[l]].data, B, hin, O);
            sc_relu_forward(A->dnn_a[l], A->dnn_a[l], (int64_t)B * O, nt);
        }
        if (c->dropout > 0 && A->dnn_h[l] != A->dnn_a[l]) {
            float p = training ? c->dropout : 0.0f;
            sc_dropout_forward(A->dnn_h[l], A->dnn_m[l], A->dnn_a[l], (int64_t)B * O, p, rng);
        }
        h = A->dnn_h[l];
        hin = O;
    }

    for (int l = 0; l < c->n_cross; l++) {
        if (m->cross_matrix && packed && (m->pk_bf16 || sc_linear_packed_same_as_blas(B, X, X)))
            packed_forward(m->pk_cw[l], m->pk_bf16 ? A->bf : NULL, A->cx[l + 1], A->cx[l], B, X, X, SC_EPI_CROSS,
                           A->x0, A->cx[l], nt);
        else if (m->cross_matrix)
            sc_cross2_forward_bf16(A->cx[l + 1], A->cu[l], A->x0, A->cx[l], P[m->p_cw[l]].data,
                                   P[m->p_cb[l]].data, B, X, packed ? NULL : A->bfg, nt);
        else
            sc_cross_forward(A->cx[l + 1], A->cs[l], A->x0, A->cx[l], P[m->p_cw[l]].data,
                             P[m->p_cb[l]].data, B, X, nt);
    }

    for (int l = 0; l < c->att_layers; l++) {
        int din = l == 0 ? D : m->A;
        sc_attention_forward(A->ax[l + 1], &A->ab[l], A->ax[l], P[m->p_aq[l]].data,
                             P[m->p_ak[l]].data, P[m->p_av[l]].data,
                             m->p_ar[l] >= 0 ? P[m->p_ar[l]].data : NULL, B, Fe, din, m->A,
                             c->att_heads, c->att_scaling, nt);
    }

    /* The final hidden representation. */
    if (c->backbone == SC_BB_FM) {
        A->hidden = A->fmv;
    } else if (m->hid_concat) {
        /* [cross out | attention out flattened, DNN out], as DeepCTR's stack_out. */
        int first = m->use_cross ? X : Fe * m->A;
        const float *fp = m->use_cross ? A->cx[c->n_cross] : A->ax[c->att_layers];
        int last = c->hidden[c->n_hidden - 1];
        for (int i = 0; i < B; i++) {
            memcpy(A->hid + (int64_t)i * m->Hh, fp + (int64_t)i * first, sizeof(float) * first);
            memcpy(A->hid + (int64_t)i * m->Hh + first, h + (int64_t)i * last, sizeof(float) * last);
        }
        A->hidden = A->hid;
    } else if (m->use_dnn) {
        A->hidden = h;
    } else if (m->use_cross) {
        A->hidden = A->cx[c->n_cross];
    } else if (m->use_att) {
        A->hidden = A->ax[c->att_layers];
    }
    if (m->use_out)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, B, m->Hh, 1.0f, A->hidden, m->Hh, P[m->p_out].data,
                    1, 1.0f, logits, 1);
    return SC_OK;
}

int sc_model_forward(sc_model *m, const sc_batch *b, int training, float *logits, sc_error *err) {
    int rc = check_batch(m, b, err);
    if (rc) return rc;
    if ((rc = ensure_capacity(m, b->n, err))) return rc;
    m->last_B = b->n;
    m->last_training = 0;
    rc = forward_acts(m, &m->a, b, training, &m->rng, 0, logits);
    m->last_training = training;
    return rc;
}

/* ---------------- serving: shared weights, per-caller workspaces ---------------- */

int sc_model_pack(sc_model *m, int bf16, sc_error *err) {
    const sc_model_config *c = &m->cfg;
    if (bf16 && !sc_linear_bf16_available())
        return sc_fail(err, SC_EINVAL, "model: precision bf16 needs a build for a CPU with AVX512_BF16 (this one has none)");
    int64_t (*floats)(int, int) = bf16 ? sc_linear_packed_bf16_floats : sc_linear_packed_floats;
    void (*pack)(float *, const float *, const float *, int, int) = bf16 ? sc_linear_pack_bf16 : sc_linear_pack;
    int64_t n = 0, in = m->X;
    for (int l = 0; l < c->n_hidden; l++) {
        n += round16(floats((int)in, c->hidden[l]));
        in = c->hidden[l];
    }
    if (m->cross_matrix)
        for (int l = 0; l < c->n_cross; l++) n += round16(floats(m->X, m->X));
    sc_free(m->pk_block);
    m->pk_block = NULL;
    m->pk_n = 0;
    m->pk_bf16 = bf16 && n > 0;
    if (n == 0) return SC_OK;
    size_t bytes;
    if (sc_mul_size((size_t)n, sizeof(float), &bytes) || !(m->pk_block = sc_aligned_alloc(bytes)))
        return sc_fail(err, SC_ENOMEM, "model: out of memory for %lld packed weights", (long long)n);
    float *p = m->pk_block;
    const sc_param *P = m->params;
    in = m->X;
    for (int l = 0; l < c->n_hidden; l++) {
        pack(p, P[m->p_dw[l]].data, P[m->p_db[l]].data, (int)in, c->hidden[l]);
        m->pk_dw[l] = p;
        p += round16(floats((int)in, c->hidden[l]));
        in = c->hidden[l];
    }
    if (m->cross_matrix)
        for (int l = 0; l < c->n_cross; l++) {
            pack(p, P[m->p_cw[l]].data, P[m->p_cb[l]].data, m->X, m->X);
            m->pk_cw[l] = p;
            p += round16(floats(m->X, m->X));
        }
    m->pk_n = n;
    return SC_OK;
}

int64_t sc_model_weight_bytes(const sc_model *m) {
    return (int64_t)sizeof(float) * (m->wblock_n + m->pk_n);
}

struct sc_infer_ws {
    int cap;
    int packed;      /* made for the packed model: no DCNv2 u buffers; 2: bfloat16 pack (input pairs) */
    float *block;
    int64_t bytes;
    fwd_acts a;
};

/* Floats per row of each forward buffer, in carving order (only what a
 * forward without dropout reads or writes). */
static int ws_sizes(const sc_model *m, int packed, int64_t *sizes) {
    const sc_model_config *c = &m->cfg;
    int64_t D = m->D, Fe = m->Fe, X = m->X;
    int ns = 0;
    sizes[ns++] = Fe * D;                  /* E_buf */
    sizes[ns++] = m->F;                    /* scale */
    sizes[ns++] = 1;                       /* lin */
    sizes[ns++] = m->extra_concat ? X : 0; /* x0 */
    sizes[ns++] = m->use_fm ? D : 0;       /* fmv */
    for (int l = 0; l < c->n_hidden; l++) sizes[ns++] = c->hidden[l];
    for (int l = 0; l < c->n_cross; l++) {
        sizes[ns++] = X;                                   /* cx[l+1] */
        sizes[ns++] = m->cross_matrix ? 0 : 1;             /* cs */
        sizes[ns++] = m->cross_matrix && !packed ? X : 0;  /* cu */
    }
    for (int l = 0; l < c->att_layers; l++) {
        sizes[ns++] = Fe * m->A;                       /* ax[l+1] */
        sizes[ns++] = 3 * Fe * m->A;                   /* q k v */
        sizes[ns++] = (int64_t)c->att_heads * Fe * Fe; /* p */
    }
    sizes[ns++] = m->hid_concat ? m->Hh : 0; /* hid */
    int64_t maxc = c->n_hidden || m->cross_matrix ? X : 0;
    for (int l = 0; l + 1 < c->n_hidden; l++)
        if (c->hidden[l] > maxc) maxc = c->hidden[l];
    sizes[ns++] = packed == 2 ? (maxc + 1) / 2 : 0; /* bf */
    return ns;
}

static int ws_carve(const sc_model *m, sc_infer_ws *ws, int cap, sc_error *err) {
    const sc_model_config *c = &m->cfg;
    int64_t sizes[16 + 4 * MAXL];
    int ns = ws_sizes(m, ws->packed, sizes);
    int64_t total = 0;
    for (int i = 0; i < ns; i++) total += round16(sizes[i] * cap);
    size_t bytes;
    float *blk = NULL;
    if (sc_mul_size((size_t)(total > 0 ? total : 16), sizeof(float), &bytes) || !(blk = sc_aligned_alloc(bytes)))
        return sc_fail(err, SC_ENOMEM, "model: out of memory for a scoring workspace of %d rows", cap);
    memset(blk, 0, bytes);
    sc_free(ws->block);
    ws->block = blk;
    ws->bytes = (int64_t)bytes;
    ws->cap = cap;
    fwd_acts *A = &ws->a;
    memset(A, 0, sizeof *A);
    float *p = blk;
    int k = 0;
#define CARVE() (p += round16(sizes[k] * cap), p - round16(sizes[k++] * cap))
    A->E_buf = CARVE();
    A->scale = CARVE();
    A->lin = CARVE();
    A->x0 = CARVE();
    if (!m->extra_concat) A->x0 = A->E_buf;
    A->fmv = CARVE();
    for (int l = 0; l < c->n_hidden; l++) A->dnn_h[l] = A->dnn_a[l] = CARVE();
    A->cx[0] = A->x0;
    for (int l = 0; l < c->n_cross; l++) {
        A->cx[l + 1] = CARVE();
        A->cs[l] = CARVE();
        A->cu[l] = CARVE();
    }
    A->ax[0] = A->E_buf;
    for (int l = 0; l < c->att_layers; l++) {
        A->ax[l + 1] = CARVE();
        float *q = CARVE();
        A->ab[l].q = q;
        A->ab[l].k = q + (int64_t)cap * m->Fe * m->A;
        A->ab[l].v = q + 2 * (int64_t)cap * m->Fe * m->A;
        A->ab[l].p = CARVE();
    }
    A->hid = CARVE();
    A->bf = (uint32_t *)CARVE();
#undef CARVE
    return SC_OK;
}

int sc_infer_ws_create(sc_infer_ws **out, const sc_model *m, int cap, sc_error *err) {
    *out = NULL;
    if (cap < 1 || cap > (1 << 24)) return sc_fail(err, SC_EINVAL, "model: workspace of %d rows", cap);
    sc_infer_ws *ws = sc_calloc(1, sizeof *ws);
    if (!ws) return sc_fail(err, SC_ENOMEM, "model: out of memory for a scoring workspace");
    ws->packed = m->pk_block ? (m->pk_bf16 ? 2 : 1) : 0;
    int rc = ws_carve(m, ws, cap, err);
    if (rc) {
        sc_free(ws);
        return rc;
    }
    *out = ws;
    return SC_OK;
}

void sc_infer_ws_free(sc_infer_ws *ws) {
    if (!ws) return;
    sc_free(ws->block);
    sc_free(ws);
}

int64_t sc_infer_ws_bytes(const sc_infer_ws *ws) { return ws ? (int64_t)sizeof *ws + ws->bytes : 0; }

int sc_model_infer(const sc_model *m, sc_infer_ws *ws, const sc_batch *b, float *logits, sc_error *err) {
    int rc = check_batch(m, b, err);
    if (rc) return rc;
    /* a workspace made before sc_model_pack (or after copy_weights dropped
     * the pack) runs the unpacked layers */
    int packed = m->pk_block != NULL && ws->packed == (m->pk_bf16 ? 2 : 1);
    if (b->n > ws->cap && (rc = ws_carve(m, ws, b->n, err))) return rc;
    return forward_acts(m, &ws->a, b, 0, NULL, packed, logits);
}

const float *sc_model_hidden(const sc_model *m, int *H) {
    if (H) *H = m->Hh;
    return m->a.hidden;
}

/* ---------------- backward ---------------- */

typedef struct {
    sc_model *m;
    const sc_batch *b;
    int fail;
} sgrad_ctx;

/* Sparse gradients of one table (one task per table: fields sharing it are
 * processed in field order, so accumulation order is fixed). */
static void sgrad_task(void *vc, int t) {
    sgrad_ctx *c = vc;
    sc_model *m = c->m;
    table *tb = &m->tables[t];
    int B = c->b->n, D = m->D, Fe = m->Fe;
    sc_sparse_rows_begin(&tb->rows);
    if (tb->numeric) {
        tb->rows.touched[0] = 0;
        tb->rows.slot[0] = 0;
        tb->rows.n_touched = 1;
    } else {
        for (int f = 0; f < m->F; f++)
            if (m->field_table[f] == t &&
                sc_sparse_rows_add(&tb->rows, c->b->ids[f], (int64_t)B * m->fields[f].width) != 0)
                c->fail = 1; /* cannot happen: capacity covers every id of the batch */
    }
    int64_t nt = tb->rows.n_touched;
    if (tb->g_emb) memset(tb->g_emb, 0, sizeof(float) * (size_t)(nt * D));
    if (tb->g_lin) memset(tb->g_lin, 0, sizeof(float) * (size_t)nt);
    for (int f = 0; f < m->F; f++) {
        if (m->field_table[f] != t) continue;
        const sc_field_info *fi = &m->fields[f];
        const float *sc = m->a.scale + (int64_t)f * B;
        if (fi->kind == SC_FIELD_NUMERIC) {
            if (tb->g_emb)
                sc_embedding_numeric_backward(tb->g_emb, m->dE + (int64_t)f * D, Fe * D,
                                              c->b->values[f], B, D);
            if (tb->g_lin)
                sc_embedding_numeric_backward(tb->g_lin, m->dlin, 1, c->b->values[f], B, 1);
            continue;
        }
        if (tb->g_emb)
            sc_embedding_pool_backward(tb->g_emb, &tb->rows, m->dE + (int64_t)f * D, Fe * D, sc,
                                       c->b->ids[f], B, fi->width, D);
        if (tb->g_lin)
            sc_embedding_pool_backward(tb->g_lin, &tb->rows, m->dlin, 1, sc, c->b->ids[f], B,
                                       fi->width, 1);
    }
    for (int k = 0; k < 2; k++) {
        int pi = k == 0 ? tb->p_emb : tb->p_lin;
        if (pi < 0) continue;
        m->params[pi].touched = tb->rows.touched;
        m->params[pi].n_touched = nt;
    }
}

/* dst (B, w) = columns [off, off + w) of src (B, ld). */
static void copy_cols(float *dst, const float *src, int B, int ld, int off, int w) {
    for (int i = 0; i < B; i++)
        memcpy(dst + (int64_t)i * w, src + (int64_t)i * ld + off, sizeof(float) * w);
}

int sc_model_backward(sc_model *m, const sc_batch *b, const float *dlogits, const float *dhidden,
                      float *dextra, sc_error *err) {
    if (!b || b->n != m->last_B || !m->last_training)
        return sc_fail(err, SC_EINVAL,
                       "model backward: needs the batch of the last training forward (%d rows)",
                       m->last_B);
    if (b->n_fields != m->F)
        return sc_fail(err, SC_EINVAL, "model backward: batch has %d fields, the model %d",
                       b->n_fields, m->F);
    const sc_model_config *c = &m->cfg;
    int B = b->n, D = m->D, Fe = m->Fe, X = m->X, E = m->E, nt = c->n_threads;
    sc_param *P = m->params;
    memset(m->gblock, 0, sizeof(float) * (size_t)m->gblock_n);
    if (dextra && E > 0) memset(dextra, 0, sizeof(float) * (size_t)B * E);
    if (B == 0) {
        for (int t = 0; t < m->n_tables; t++) {
            sc_sparse_rows_begin(&m->tables[t].rows);
            if (m->tables[t].p_emb >= 0) P[m->tables[t].p_emb].n_touched = 0;
            if (m->tables[t].p_lin >= 0) P[m->tables[t].p_lin].n_touched = 0;
        }
        return SC_OK;
    }
    sc_nn_set_threads(nt);
    memset(m->dE, 0, sizeof(float) * (size_t)B * Fe * D);
    if (m->extra_concat) memset(m->dx0, 0, sizeof(float) * (size_t)B * X);

    float gb = 0.0f;
    for (int i = 0; i < B; i++) gb += dlogits[i];
    P[m->p_bias].grad[0] = gb;
    memcpy(m->dlin, dlogits, sizeof(float) * B);
    if (m->extra_lin) {
        /* logit += extra . w: dw += extra^T dlogits, dextra += dlogits w. */
        cblas_sgemv(CblasRowMajor, CblasTrans, B, E, 1.0f, b->extra, E, dlogits, 1, 1.0f,
                    P[m->p_xlin].grad, 1);
        if (dextra) sc_gemm(0, 0, B, E, 1, 1.0f, dlogits, 1, P[m->p_xlin].data, E, 1.0f, dextra, E);
    }

    /* Gradient at the hidden representation. */
    int Hh = m->Hh;
    if (c->backbone == SC_BB_FM) {
        for (int i = 0; i < B; i++)
            for (int d = 0; d < D; d++) m->dhid[(int64_t)i * D + d] = dlogits[i];
    } else if (m->use_out) {
        cblas_sgemv(CblasRowMajor, CblasTrans, B, Hh, 1.0f, m->a.hidden, Hh, dlogits, 1, 1.0f,
                    P[m->p_out].grad, 1);
        sc_gemm(0, 0, B, Hh, 1, 1.0f, dlogits, 1, P[m->p_out].data, Hh, 0.0f, m->dhid, Hh);
    }
    if (dhidden && Hh > 0)
        for (int64_t i = 0; i < (int64_t)B * Hh; i++) m->dhid[i] += dhidden[i];

    if (m->use_fm) {
        if (c->backbone == SC_BB_DEEPFM) {
            /* FM term enters the logit directly. */
            for (int i = 0; i < B; i++)
                for (int d = 0; d < D; d++) m->g1[(int64_t)i * D + d] = dlogits[i];
            sc_fm_backward(m->dE, m->g1, m->a.E_buf, B, Fe, D, nt);
        } else {
            sc_fm_backward(m->dE, m->dhid, m->a.E_buf, B, Fe, D, nt);
        }
    }

    /* Split dhid into [cross | attention] and DNN parts. */
    int first = m->use_cross ? X : m->use_att ? Fe * m->A : 0;
    if (m->use_dnn) {
        int last = c->hidden[c->n_hidden - 1];
        float *g = m->g1, *gn = m->g2;
        if (m->hid_concat)
            copy_cols(g, m->dhid, B, Hh, first, last);
        else
            memcpy(g, m->dhid, sizeof(float) * (size_t)B * last);
        for (int l = c->n_hidden - 1; l >= 0; l--) {
            int O = c->hidden[l];
            int64_t nO = (int64_t)B * O;
            if (c->dropout > 0)
                for (int64_t i = 0; i < nO; i++) g[i] *= m->a.dnn_m[l][i];
            sc_relu_backward(g, g, m->a.dnn_a[l], nO, nt);
            int in = l == 0 ? X : c->hidden[l - 1];
            const float *inp = l == 0 ? m->a.x0 : m->a.dnn_h[l - 1];
            float *dinp = l == 0 ? m->dx0 : gn;
            if (l > 0) memset(gn, 0, sizeof(float) * (size_t)B * in);
            if (m->a.bfg)
                sc_linear_backward_bf16(dinp, P[m->p_dw[l]].grad, P[m->p_db[l]].grad, g, inp,
                                        P[m->p_dw[l]].data, B, in, O, m->a.bfg, nt);
            else
                sc_linear_backward(dinp, P[m->p_dw[l]].grad, P[m->p_db[l]].grad, g, inp,
                                   P[m->p_dw[l]].data, B, in, O);
            float *tmp = g;
            g = gn;
            gn = tmp;
        }
    }
    if (m->use_cross) {
        float *g = m->g1, *gn = m->g2;
        if (m->hid_concat)
            copy_cols(g, m->dhid, B, Hh, 0, X);
        else
            memcpy(g, m->dhid, sizeof(float) * (size_t)B * X);
        for (int l = c->n_cross - 1; l >= 0; l--) {
            float *dxl = l == 0 ? m->dx0 : gn;
            if (l > 0) memset(gn, 0, sizeof(float) * (size_t)B * X);
            if (m->cross_matrix)
                sc_cross2_backward_bf16(m->dx0, dxl, P[m->p_cw[l]].grad, P[m->p_cb[l]].grad, g, m->a.cu[l],
                                        m->a.x0, m->a.cx[l], P[m->p_cw[l]].data, B, X, m->gd, m->a.bfg, nt);
            else
                sc_cross_backward(m->dx0, dxl, P[m->p_cw[l]].grad, P[m->p_cb[l]].grad, g, m->a.cs[l],
                                  m->a.x0, m->a.cx[l], P[m->p_cw[l]].data, B, X, m->gd, nt);
            float *tmp = g;
            g = gn;
            gn = tmp;
        }
    }
    if (m->use_att) {
        int w = Fe * m->A;
        float *g = m->g1, *gn = m->g2;
        if (m->hid_concat)
            copy_cols(g, m->dhid, B, Hh, 0, w);
        else
            memcpy(g, m->dhid, sizeof(float) * (size_t)B * w);
        for (int l = c->att_layers - 1; l >= 0; l--) {
            int din = l == 0 ? D : m->A;
            float *dX = l == 0 ? m->dE : gn;
            if (l > 0) memset(gn, 0, sizeof(float) * (size_t)B * w);
            sc_attention_backward(dX, P[m->p_aq[l]].grad, P[m->p_ak[l]].grad, P[m->p_av[l]].grad,
                                  m->p_ar[l] >= 0 ? P[m->p_ar[l]].grad : NULL, g, m->a.ax[l + 1],
                                  &m->a.ab[l], m->a.ax[l], P[m->p_aq[l]].data, P[m->p_ak[l]].data,
                                  P[m->p_av[l]].data, m->p_ar[l] >= 0 ? P[m->p_ar[l]].data : NULL,
                                  B, Fe, din, m->A, c->att_heads, c->att_scaling, &m->as, nt);
            float *tmp = g;
            g = gn;
            gn = tmp;
        }
    }

    if (m->extra_concat) {
        for (int i = 0; i < B; i++) {
            const float *src = m->dx0 + (int64_t)i * X;
            float *dst = m->dE + (int64_t)i * Fe * D;
            for (int j = 0; j < Fe * D; j++) dst[j] += src[j];
            if (dextra)
                for (int j = 0; j < E; j++) dextra[(int64_t)i * E + j] += src[Fe * D + j];
        }
    }
    if (m->extra_field) {
        const float *g = m->dE + (int64_t)m->F * D; /* (B, D) at row stride Fe*D */
        sc_gemm(1, 0, D, E, B, 1.0f, g, Fe * D, b->extra, E, 1.0f, P[m->p_xw].grad, E);
        float *gbias = P[m->p_xb].grad;
        for (int i = 0; i < B; i++)
            for (int d = 0; d < D; d++) gbias[d] += g[(int64_t)i * Fe * D + d];
        if (dextra) sc_gemm(0, 0, B, E, D, 1.0f, g, Fe * D, P[m->p_xw].data, E, 1.0f, dextra, E);
    }

    if (m->n_xf && dextra)
        for (int i = 0; i < B; i++) {
            const float *g = m->dE + (int64_t)i * Fe * D + (int64_t)(Fe - m->n_xf) * D;
            float *dst = dextra + (int64_t)i * E;
            for (int j = 0; j < E; j++) dst[j] += g[j];
        }

    sgrad_ctx sc = {m, b, 0};
    sc_parallel_for(m->n_tables, nt, sgrad_task, &sc);
    if (sc.fail) return sc_fail(err, SC_EINTERNAL, "model backward: sparse gradient capacity exceeded");
    return SC_OK;
}

sc_param *sc_model_params(sc_model *m, int *n_params) {
    if (n_params) *n_params = m->n_params;
    return m->params;
}

double sc_model_flops_per_sample(const sc_model *m) {
    const sc_model_config *c = &m->cfg;
    double f = 0.0, D = m->D, Fe = m->Fe, X = m->X, A = m->A;
    if (m->extra_field) f += 2.0 * m->E * D;
    if (m->extra_lin) f += 2.0 * m->E;
    if (m->use_fm) f += 3.0 * Fe * D;
    double in = X;
    for (int l = 0; l < c->n_hidden; l++) {
        f += 2.0 * in * c->hidden[l];
        in = c->hidden[l];
    }
    for (int l = 0; l < c->n_cross; l++) f += m->cross_matrix ? 2.0 * X * X + 3.0 * X : 5.0 * X;
    for (int l = 0; l < c->att_layers; l++) {
        double din = l == 0 ? D : A;
        f += (c->att_residual ? 4.0 : 3.0) * 2.0 * Fe * din * A; /* projections */
        f += 2.0 * 2.0 * Fe * Fe * A;                            /* scores and weighted sum */
    }
    if (m->use_out) f += 2.0 * m->Hh;
    return f;
}

int sc_model_copy_weights(sc_model *dst, const sc_model *src, sc_error *err) {
    if (dst == src) return SC_OK;
    if (dst->n_params != src->n_params || dst->wblock_n != src->wblock_n)
        return sc_fail(err, SC_EINVAL, "model copy: the two models have different shapes");
    for (int i = 0; i < dst->n_params; i++)
        if (dst->params[i].size != src->params[i].size ||
            strcmp(dst->params[i].name, src->params[i].name) != 0)
            return sc_fail(err, SC_EINVAL, "model copy: parameter %d is '%s' (%lld) vs '%s' (%lld)", i,
                           dst->params[i].name, (long long)dst->params[i].size, src->params[i].name,
                           (long long)src->params[i].size);
    memcpy(dst->wblock, src->wblock, sizeof(float) * (size_t)src->wblock_n);
    /* a packed copy of the old weights is stale: drop it (sc_model_infer then runs unpacked) */
    sc_free(dst->pk_block);
    dst->pk_block = NULL;
    dst->pk_n = 0;
    dst->pk_bf16 = 0;
    return SC_OK;
}

int sc_model_n_tables(const sc_model *m) { return m->n_tables; }

void sc_model_get_table(const sc_model *m, int t, sc_model_table *out) {
    const table *tb = &m->tables[t];
    *out = (sc_model_table){tb->owner, tb->numeric, tb->V, tb->p_emb, tb->p_lin};
}

int sc_model_field_table(const sc_model *m, int f) { return m->field_table[f]; }
