/* CTR model tests: end-to-end gradient checks of every backbone (all
 * parameters incl. sparse embedding rows, dextra, injected dhidden),
 * determinism, a planted learnable rule, and input validation. Batches are
 * built by hand (the data module fills them in real use). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "test_nn_gradcheck.h"

enum { NF = 5, XD = 5 };

static void test_fields(sc_field_info *f) {
    memset(f, 0, sizeof(sc_field_info) * NF);
    const char *names[NF] = {"user", "item", "genres", "hist", "age"};
    int kinds[NF] = {SC_FIELD_CATEGORICAL, SC_FIELD_CATEGORICAL, SC_FIELD_MULTI, SC_FIELD_SEQUENCE,
                     SC_FIELD_NUMERIC};
    int widths[NF] = {1, 1, 3, 4, 1};
    int64_t vocab[NF] = {12, 15, 8, 15, 1};
    int pool[NF] = {0, 0, SC_POOL_MEAN, SC_POOL_SUM, 0};
    for (int i = 0; i < NF; i++) {
        snprintf(f[i].name, sizeof f[i].name, "%s", names[i]);
        f[i].kind = kinds[i];
        f[i].width = widths[i];
        f[i].vocab_size = vocab[i];
        f[i].pooling = pool[i];
        f[i].share_with = -1;
    }
    f[3].share_with = 1; /* history shares the item table */
}

typedef struct tbatch {
    sc_batch b;
    int32_t *ids[NF];
    float *vals[NF];
    float *extra;
    float *label;
} tbatch;

/* Random batch; ids of the id fields stay below `used` of their vocab so
 * some rows are never touched; some multi/sequence slots are padding. */
static void make_batch(tbatch *t, const sc_field_info *f, int B, uint64_t seed) {
    sc_rng r;
    sc_rng_seed(&r, seed);
    memset(t, 0, sizeof *t);
    for (int i = 0; i < NF; i++) {
        if (f[i].kind == SC_FIELD_NUMERIC) {
            t->vals[i] = sc_malloc(sizeof(float) * B);
            for (int b = 0; b < B; b++) t->vals[i][b] = sc_rng_normal(&r);
            continue;
        }
        int W = f[i].width;
        t->ids[i] = sc_malloc(sizeof(int32_t) * B * W);
        int64_t used = f[i].vocab_size - 2; /* the last two rows stay untouched */
        for (int b = 0; b < B; b++)
            for (int w = 0; w < W; w++) {
                int32_t id = 1 + (int32_t)sc_rng_below(&r, (uint64_t)used - 1);
                if (w > 0 && sc_rng_uniform(&r) < 0.3) id = 0;
                t->ids[i][b * W + w] = id;
            }
    }
    t->extra = sc_malloc(sizeof(float) * B * XD);
    t->label = sc_malloc(sizeof(float) * B);
    for (int i = 0; i < B * XD; i++) t->extra[i] = sc_rng_normal(&r);
    for (int b = 0; b < B; b++) t->label[b] = (float)(sc_rng_uniform(&r) < 0.5);
    t->b.n = t->b.cap = B;
    t->b.n_fields = NF;
    t->b.ids = t->ids;
    t->b.values = t->vals;
    t->b.extra = t->extra;
    t->b.label = t->label;
}

static void free_batch(tbatch *t) {
    for (int i = 0; i < NF; i++) {
        sc_free(t->ids[i]);
        sc_free(t->vals[i]);
    }
    sc_free(t->extra);
    sc_free(t->label);
}

static void small_config(sc_model_config *c, sc_backbone bb, int extra_mode) {
    sc_model_config_default(c, bb);
    c->embed_dim = 4;
    if (c->n_hidden > 0) {
        c->n_hidden = 2;
        c->hidden[0] = 6;
        c->hidden[1] = 5;
    }
    c->n_cross = 2;
    c->att_layers = 2;
    c->att_heads = 2;
    c->att_dim = 3; /* A = 6 != D: layers of different widths */
    c->extra_dim = extra_mode >= 0 ? XD : 0;
    c->extra_mode = extra_mode >= 0 ? extra_mode : 0;
    c->n_threads = 2;
}

/* ---------------- gradient check ---------------- */

typedef struct {
    sc_model *m;
    tbatch *t;
    float *logits, *r, *q;
} mg_ctx;

static double model_loss(void *vc) {
    mg_ctx *c = vc;
    sc_error err;
    int rc = sc_model_forward(c->m, &c->t->b, 1, c->logits, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    int B = c->t->b.n, H;
    double s = 0;
    for (int b = 0; b < B; b++) s += (double)c->r[b] * c->logits[b];
    const float *h = sc_model_hidden(c->m, &H);
    for (int i = 0; i < B * H; i++) s += (double)c->q[i] * h[i];
    return s;
}

static void check_backbone(sc_backbone bb, int extra_mode) {
    sc_field_info f[NF];
    test_fields(f);
    sc_model_config cfg;
    small_config(&cfg, bb, extra_mode);
    sc_model *m;
    sc_error err;
    cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 42, &err), 0, "%s", err.msg);
    enum { B = 7 };
    tbatch t;
    make_batch(&t, f, B, 7 + bb);
    int np;
    sc_param *P = sc_model_params(m, &np);
    /* Larger weights than the N(0, 1e-4) init, so every path carries signal. */
    sc_rng r;
    sc_rng_seed(&r, 99);
    for (int i = 0; i < np; i++)
        for (int64_t j = 0; j < P[i].size; j++) P[i].data[j] = 0.4f * sc_rng_normal(&r);
    int H = sc_model_hidden_dim(m);
    float logits[B], rr[B], dl[B];
    float *q = sc_calloc((size_t)(B * (H > 0 ? H : 1)), sizeof(float));
    for (int b = 0; b < B; b++) rr[b] = dl[b] = sc_rng_normal(&r);
    for (int i = 0; i < B * H; i++) q[i] = 0.5f * sc_rng_normal(&r);
    mg_ctx c = {m, &t, logits, rr, q};
    model_loss(&c);
    int H2;
    sc_model_hidden(m, &H2);
    cr_assert_eq(H, H2);
    if (bb != SC_BB_LR) cr_assert(H > 0);
    float dextra[B * XD];
    cr_assert_eq(sc_model_backward(m, &t.b, dl, H > 0 ? q : NULL, cfg.extra_dim ? dextra : NULL, &err),
                 0, "%s", err.msg);
    /* Copy gradients: the gradcheck's forward passes do not touch them, but
     * keep the check independent of that. */
    gc_stats st = {0};
    char what[128];
    for (int i = 0; i < np; i++) {
        sc_param *p = &P[i];
        snprintf(what, sizeof what, "%s/%s/%s", sc_backbone_name(bb), p->name,
                 extra_mode < 0 ? "-" : extra_mode == 0 ? "field" : "concat");
        if (!p->sparse) {
            float *g = sc_malloc(sizeof(float) * p->size);
            memcpy(g, p->grad, sizeof(float) * p->size);
            gradcheck(&st, what, model_loss, &c, p->data, g, p->size, 24, 3e-3f);
            sc_free(g);
            continue;
        }
        /* sparse: touched rows against their gradient rows; untouched rows
         * (the last one is never used) must have zero derivative */
        cr_assert(p->n_touched > 0 && p->n_touched <= p->rows, "%s touched %lld", what,
                  (long long)p->n_touched);
        int64_t nt = p->n_touched;
        float *g = sc_malloc(sizeof(float) * nt * p->cols);
        memcpy(g, p->grad, sizeof(float) * nt * p->cols);
        int32_t *rows = sc_malloc(sizeof(int32_t) * nt);
        memcpy(rows, p->touched, sizeof(int32_t) * nt);
        for (int64_t k = 0; k < nt; k++) {
            cr_assert(rows[k] >= 0 && rows[k] < p->rows);
            if (p->rows > 1) cr_assert(rows[k] != 0, "padding row 0 listed as touched");
            for (int64_t k2 = 0; k2 < k; k2++) cr_assert(rows[k2] != rows[k], "duplicate row");
            if (k % 2 == 0 || nt < 6)
                gradcheck(&st, what, model_loss, &c, p->data + (int64_t)rows[k] * p->cols,
                          g + k * p->cols, p->cols, p->cols, 3e-3f);
        }
        if (p->rows > 2) {
            float zero[64] = {0};
            gradcheck(&st, what, model_loss, &c, p->data + (p->rows - 1) * p->cols, zero, p->cols,
                      p->cols, 3e-3f);
        }
        sc_free(g);
        sc_free(rows);
    }
    if (cfg.extra_dim) {
        float dx[B * XD];
        memcpy(dx, dextra, sizeof dx);
        snprintf(what, sizeof what, "%s/dextra", sc_backbone_name(bb));
        gradcheck(&st, what, model_loss, &c, t.extra, dx, B * XD, B * XD, 3e-3f);
    }
    cr_assert_eq(st.failed, 0, "%s: %d gradient mismatches", sc_backbone_name(bb), st.failed);
    cr_assert(st.checked > 4 * st.skipped, "%s: too many kinks skipped (%d of %d)",
              sc_backbone_name(bb), st.skipped, st.checked + st.skipped);
    sc_free(q);
    free_batch(&t);
    sc_model_free(m);
}

#define GRAD_TEST(bb, name)                                                       \
    Test(ctr_model, grad_##name) {                                                \
        for (int mode = -1; mode <= 1; mode++) check_backbone(bb, mode);          \
    }
GRAD_TEST(SC_BB_LR, lr)
GRAD_TEST(SC_BB_FM, fm)
GRAD_TEST(SC_BB_DNN, dnn)
GRAD_TEST(SC_BB_WIDEDEEP, widedeep)
GRAD_TEST(SC_BB_DEEPFM, deepfm)
GRAD_TEST(SC_BB_DCN, dcn)
GRAD_TEST(SC_BB_DCNV2, dcnv2)
GRAD_TEST(SC_BB_AUTOINT, autoint)

/* ---------------- training helpers ---------------- */

/* n_steps of Adam on batch t; returns the mean BCE of the first and last step. */
static void train(sc_model *m, tbatch *t, int n_steps, float lr, float *first, float *last,
                  float *final_logits) {
    int B = t->b.n, np;
    sc_param *P = sc_model_params(m, &np);
    sc_optim_config oc;
    sc_optim_config_default(&oc, SC_OPTIM_ADAM);
    oc.n_threads = sc_model_get_config(m)->n_threads;
    sc_optim *o;
    sc_error err;
    cr_assert_eq(sc_optim_create(&o, &oc, P, np, &err), 0, "%s", err.msg);
    float *logits = sc_malloc(sizeof(float) * B), *dl = sc_malloc(sizeof(float) * B);
    for (int s = 0; s < n_steps; s++) {
        cr_assert_eq(sc_model_forward(m, &t->b, 1, logits, &err), 0, "%s", err.msg);
        float loss = sc_bce_logits_forward(logits, t->label, B);
        if (s == 0 && first) *first = loss;
        if (last) *last = loss;
        sc_bce_logits_backward(dl, logits, t->label, B, 1.0f);
        cr_assert_eq(sc_model_backward(m, &t->b, dl, NULL, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(sc_optim_step(o, lr, &err), 0);
    }
    if (final_logits) cr_assert_eq(sc_model_forward(m, &t->b, 0, final_logits, &err), 0);
    sc_free(logits);
    sc_free(dl);
    sc_optim_free(o);
}

/* Planted rule: label = 1 iff user id is even XOR item id > 7 (needs an
 * interaction) with some noise-free signal from single fields too. */
static void plant_labels(tbatch *t) {
    for (int b = 0; b < t->b.n; b++) {
        int u = t->ids[0][b], it = t->ids[1][b];
        t->label[b] = (float)(((u % 2 == 0) ^ (it > 7)) || t->vals[4][b] > 1.0f);
    }
}

Test(ctr_model, every_backbone_learns_planted_rule) {
    sc_field_info f[NF];
    test_fields(f);
    tbatch t;
    make_batch(&t, f, 512, 3);
    plant_labels(&t);
    for (int bb = 0; bb < SC_BB_COUNT; bb++) {
        sc_model_config cfg;
        sc_model_config_default(&cfg, (sc_backbone)bb);
        cfg.embed_dim = 8;
        if (cfg.n_hidden) cfg.hidden[0] = 32, cfg.hidden[1] = 16;
        cfg.att_dim = 4;
        cfg.n_threads = 2;
        sc_model *m;
        sc_error err;
        cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 1, &err), 0, "%s", err.msg);
        float first, last;
        train(m, &t, 60, 0.02f, &first, &last, NULL);
        /* LR cannot express the XOR: it only has to improve on the start. */
        float target = bb == SC_BB_LR ? 0.95f * first : 0.6f * first;
        cr_assert(last < target, "%s: loss %g -> %g (want < %g)", sc_backbone_name(bb), first, last,
                  target);
        sc_model_free(m);
    }
    free_batch(&t);
}

Test(ctr_model, deterministic_and_thread_count_independent) {
    sc_field_info f[NF];
    test_fields(f);
    tbatch t;
    make_batch(&t, f, 300, 5);
    for (int bb = SC_BB_DEEPFM; bb < SC_BB_COUNT; bb++) {
        float out[3][300];
        int threads[3] = {2, 2, 1};
        for (int run = 0; run < 3; run++) {
            sc_model_config cfg;
            sc_model_config_default(&cfg, (sc_backbone)bb);
            cfg.embed_dim = 8;
            cfg.hidden[0] = 32;
            cfg.hidden[1] = 16;
            cfg.att_dim = 4;
            cfg.dropout = 0.2f;
            cfg.extra_dim = XD;
            cfg.n_threads = threads[run];
            sc_model *m;
            cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 77, NULL), 0);
            train(m, &t, 5, 0.01f, NULL, NULL, out[run]);
            sc_model_free(m);
        }
        cr_assert_eq(memcmp(out[0], out[1], sizeof out[0]), 0, "%s: same seed, different logits",
                     sc_backbone_name(bb));
        for (int i = 0; i < 300; i++)
            cr_assert(fabsf(out[0][i] - out[2][i]) <= 1e-5f * (1 + fabsf(out[0][i])),
                      "%s: 1 vs 2 threads: %g vs %g", sc_backbone_name(bb), out[0][i], out[2][i]);
    }
    free_batch(&t);
}

/* ---------------- interface ---------------- */

Test(ctr_model, defaults_follow_deepctr_torch) {
    sc_model_config c;
    sc_model_config_default(&c, SC_BB_DEEPFM);
    cr_assert(c.embed_dim == 16 && c.n_hidden == 2 && c.hidden[0] == 256 && c.hidden[1] == 128);
    cr_assert(c.dropout == 0.0f);
    sc_model_config_default(&c, SC_BB_DCNV2);
    cr_assert(c.n_cross == 2 && c.hidden[0] == 128 && c.hidden[1] == 128);
    sc_model_config_default(&c, SC_BB_AUTOINT);
    cr_assert(c.att_layers == 3 && c.att_heads == 2 && c.att_dim == 8 && c.att_residual == 1 &&
              c.att_scaling == 0);
    sc_backbone b;
    for (int i = 0; i < SC_BB_COUNT; i++) {
        cr_assert_eq(sc_backbone_parse(sc_backbone_name((sc_backbone)i), &b), 0);
        cr_assert_eq((int)b, i);
    }
    cr_assert_eq(sc_backbone_parse("xgboost", &b), -1);
}

Test(ctr_model, params_named_in_fixed_order_and_init) {
    sc_field_info f[NF];
    test_fields(f);
    sc_model_config cfg;
    sc_model_config_default(&cfg, SC_BB_DEEPFM);
    sc_model *m;
    cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 1, NULL), 0);
    int np;
    sc_param *P = sc_model_params(m, &np);
    const char *expect[] = {"emb.user",     "emb.item",     "emb.genres",   "emb.age",
                            "lin.user",     "lin.item",     "lin.genres",   "lin.age",
                            "dnn.0.weight", "dnn.0.bias",   "dnn.1.weight", "dnn.1.bias",
                            "out.weight",   "bias"};
    cr_assert_eq(np, 14);
    for (int i = 0; i < np; i++) cr_assert_str_eq(P[i].name, expect[i]);
    cr_assert(P[0].sparse && P[0].weight_decay && P[0].rows == 12 && P[0].cols == 16);
    cr_assert(P[8].rows == 256 && P[8].cols == NF * 16 && !P[8].sparse);
    /* embedding N(0, 1e-4); DNN weight N(0, 1e-4); bias 0 */
    double ss = 0;
    for (int64_t j = 0; j < P[1].size; j++) ss += P[1].data[j] * P[1].data[j];
    double sd = sqrt(ss / P[1].size);
    cr_assert(sd > 0.5e-4 && sd < 2e-4, "embedding std %g", sd);
    cr_assert_eq(P[13].data[0], 0.0f);
    cr_assert_gt(sc_model_flops_per_sample(m), 2.0 * 64 * 256 + 2.0 * 256 * 128);
    /* copy weights: identical logits */
    sc_model *m2;
    cr_assert_eq(sc_model_create(&m2, &cfg, f, NF, 2, NULL), 0);
    tbatch t;
    make_batch(&t, f, 9, 1);
    float a[9], b[9];
    cr_assert_eq(sc_model_forward(m, &t.b, 0, a, NULL), 0);
    cr_assert_eq(sc_model_copy_weights(m2, m, NULL), 0);
    cr_assert_eq(sc_model_forward(m2, &t.b, 0, b, NULL), 0);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    sc_model_free(m2);
    cfg.embed_dim = 8;
    cr_assert_eq(sc_model_create(&m2, &cfg, f, NF, 2, NULL), 0);
    sc_error err;
    cr_assert_eq(sc_model_copy_weights(m2, m, &err), SC_EINVAL);
    sc_model_free(m2);
    free_batch(&t);
    sc_model_free(m);
}

Test(ctr_model, batch_capacity_grows_and_empty_batch) {
    sc_field_info f[NF];
    test_fields(f);
    sc_model_config cfg;
    small_config(&cfg, SC_BB_AUTOINT, -1);
    sc_model *m;
    cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 1, NULL), 0);
    tbatch small, big;
    make_batch(&small, f, 3, 1);
    make_batch(&big, f, 40, 1); /* same seed: the first rows are equal */
    float a[40], b[40], dl[40] = {0};
    cr_assert_eq(sc_model_forward(m, &small.b, 0, a, NULL), 0);
    cr_assert_eq(sc_model_forward(m, &big.b, 1, b, NULL), 0);
    cr_assert_eq(sc_model_backward(m, &big.b, dl, NULL, NULL, NULL), 0);
    big.b.n = 0;
    cr_assert_eq(sc_model_forward(m, &big.b, 1, b, NULL), 0);
    cr_assert_eq(sc_model_backward(m, &big.b, dl, NULL, NULL, NULL), 0);
    free_batch(&small);
    free_batch(&big);
    sc_model_free(m);
}

Test(ctr_model, bad_input_is_reported) {
    sc_field_info f[NF];
    test_fields(f);
    sc_model_config cfg;
    small_config(&cfg, SC_BB_DCN, 0);
    sc_model *m;
    sc_error err;
    cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 1, &err), 0);
    tbatch t;
    make_batch(&t, f, 4, 1);
    float lg[4], dl[4] = {0};
    /* backward before a training forward */
    cr_assert_eq(sc_model_backward(m, &t.b, dl, NULL, NULL, &err), SC_EINVAL);
    t.ids[2][5] = 8; /* genres vocab is 8 */
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "genres") && strstr(err.msg, "row 1"), "%s", err.msg);
    t.ids[2][5] = -3;
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), SC_EINVAL);
    t.ids[2][5] = 0;
    t.b.extra = NULL;
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "extra"), "%s", err.msg);
    t.b.extra = t.extra;
    float *age = t.vals[4];
    t.b.values[4] = NULL; /* b.values is t.vals */
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "age"), "%s", err.msg);
    t.b.values[4] = age;
    t.b.n_fields = 4;
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), SC_EINVAL);
    t.b.n_fields = NF;
    cr_assert_eq(sc_model_forward(m, &t.b, 1, lg, &err), 0, "%s", err.msg);
    sc_model_free(m);
    free_batch(&t);

    /* bad configs and schemas */
    sc_model *bad = NULL;
    cfg.embed_dim = 0;
    cr_assert_eq(sc_model_create(&bad, &cfg, f, NF, 1, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "embed_dim"));
    small_config(&cfg, SC_BB_DNN, -1);
    cfg.n_hidden = 0;
    cr_assert_eq(sc_model_create(&bad, &cfg, f, NF, 1, &err), SC_EINVAL);
    small_config(&cfg, SC_BB_DNN, -1);
    cfg.dropout = 1.0f;
    cr_assert_eq(sc_model_create(&bad, &cfg, f, NF, 1, &err), SC_EINVAL);
    small_config(&cfg, SC_BB_DNN, -1);
    f[3].share_with = 4; /* sharing a numeric field's table */
    cr_assert_eq(sc_model_create(&bad, &cfg, f, NF, 1, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "hist"), "%s", err.msg);
    test_fields(f);
    f[2].width = 0;
    cr_assert_eq(sc_model_create(&bad, &cfg, f, NF, 1, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "genres"), "%s", err.msg);
    cr_assert_null(bad);
}
