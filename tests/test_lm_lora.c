/* lm: LoRA training of a BERT encoder's top layers (lm/bert_train.h) and MSD's
 * use of it (methods/msd/lora.h): every backward against finite differences
 * on a small random BERT (each layer function, then the adapted layers +
 * pooling with respect to every A and B); with B = 0 the adapted path gives
 * bit for bit the frozen encoder's vectors (all-MiniLM-L6-v2, the fixture
 * texts); the training state's vectors, gradient accumulation and step; the
 * frozen layers' disk cache. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "lm/bert.h"
#include "lm/bert_train.h"
#include "lm/encoder.h"
#include "methods/msd/lora.h"
#include "nn/optim.h"
#include "test_lm_util.h"
#include "test_nn_gradcheck.h"

/* Test buffers, freed together at the end of each test (tfree). */
static void *tbuf[512];
static int n_tbuf;

static void *talloc(size_t bytes) {
    cr_assert_lt(n_tbuf, 512);
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert(p);
    return tbuf[n_tbuf++] = p;
}

static void tfree(void) {
    while (n_tbuf) free(tbuf[--n_tbuf]);
}

static float *rnd(int64_t n, float scale, sc_rng *r) {
    float *x = talloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = scale * sc_rng_normal(r);
    return x;
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* ---------------- stateless layers ---------------- */

enum { LN = 5, LK = 12, LD = 10, LR = 3 };

typedef struct {
    float *out, *u, *inp, *A, *B, *base, *r;
} lora_ctx;

static double lora_loss(void *vc) {
    lora_ctx *c = vc;
    memcpy(c->out, c->base, sizeof(float) * LN * LD);
    float AT[LK * LR], BT[LR * LD];
    sc_lora_forward(c->out, LD, c->u, c->inp, LK, c->A, c->B, 0.7f, LN, LK, LD, LR, AT, BT);
    return dot(c->out, c->r, LN * LD);
}

Test(lm_lora, lora_projection_gradients_match_finite_differences) {
    sc_rng g;
    sc_rng_seed(&g, 1);
    lora_ctx c = {talloc(sizeof(float) * LN * LD), talloc(sizeof(float) * LN * LR), rnd(LN * LK, 1, &g),
                  rnd(LR * LK, 0.5f, &g), rnd(LD * LR, 0.5f, &g), rnd(LN * LD, 1, &g), rnd(LN * LD, 1, &g)};
    float *W = rnd(LD * LK, 0.3f, &g);
    float *dA = talloc(LR * LK * sizeof(float)), *dB = talloc(LD * LR * sizeof(float));
    float *dinp = talloc(LN * LK * sizeof(float)), *du = talloc(sizeof(float) * LN * LR);
    lora_loss(&c);
    sc_lora_backward(dinp, dA, dB, du, c.r, LD, c.inp, LK, c.u, c.A, c.B, 0.7f, LN, LK, LD, LR);
    gc_stats st = {0};
    gradcheck(&st, "A", lora_loss, &c, c.A, dA, LR * LK, 40, 1e-2f);
    gradcheck(&st, "B", lora_loss, &c, c.B, dB, LD * LR, 40, 1e-2f);
    gradcheck(&st, "inp", lora_loss, &c, c.inp, dinp, LN * LK, 40, 1e-2f);
    cr_assert_eq(st.failed, 0, "%d of %d failed", st.failed, st.checked);
    cr_assert_geq(st.checked, 90);
    /* the frozen projection's input gradient: d(sum r . inp W^T)/dinp = r W */
    float *d2 = talloc(LN * LK * sizeof(float));
    sc_linear_backward_input(d2, LK, c.r, LD, W, LN, LK, LD);
    for (int i = 0; i < LN; i++)
        for (int k = 0; k < LK; k++) {
            double want = 0;
            for (int d = 0; d < LD; d++) want += (double)c.r[i * LD + d] * W[d * LK + k];
            cr_assert(fabs(d2[i * LK + k] - want) < 1e-5, "(%d, %d): %g vs %g", i, k, d2[i * LK + k], want);
        }
    tfree();
}

enum { NC = 16 };

typedef struct {
    float *x, *y, *w, *b, *r;
    int64_t n;
    int mode;
} elem_ctx;

static double ln_loss(void *vc) {
    elem_ctx *c = vc;
    sc_layernorm_forward(c->y, c->x, c->w, c->b, c->n, NC, 1e-5f);
    return dot(c->y, c->r, c->n * NC);
}

static double gelu_loss(void *vc) {
    elem_ctx *c = vc;
    memcpy(c->y, c->x, sizeof(float) * (size_t)c->n);
    sc_gelu_forward(c->y, c->n);
    return dot(c->y, c->r, c->n);
}

static double pool_loss(void *vc) {
    elem_ctx *c = vc;
    sc_pool_forward(c->y, c->x, (int)c->n, NC, (sc_lm_pooling)c->mode);
    return dot(c->y, c->r, NC);
}

Test(lm_lora, layernorm_gelu_and_pooling_gradients_match_finite_differences) {
    sc_rng g;
    sc_rng_seed(&g, 2);
    gc_stats st = {0};
    float *dx = talloc(sizeof(float) * 7 * NC);
    elem_ctx c = {rnd(7 * NC, 2, &g), talloc(sizeof(float) * 7 * NC), rnd(NC, 1, &g), rnd(NC, 1, &g),
                  rnd(7 * NC, 1, &g), 7, 0};
    sc_layernorm_backward(dx, c.r, c.x, c.w, 7, NC, 1e-5f);
    gradcheck(&st, "layernorm", ln_loss, &c, c.x, dx, 7 * NC, 60, 1e-2f);
    c.n = 7 * NC;
    sc_gelu_backward(dx, c.r, c.x, c.n);
    gradcheck(&st, "gelu", gelu_loss, &c, c.x, dx, c.n, 60, 1e-2f);
    c.n = 7;
    for (int mode = SC_LM_POOL_MEAN; mode <= SC_LM_POOL_MAX; mode++) {
        c.mode = mode;
        pool_loss(&c);
        sc_pool_backward(dx, c.r, c.x, 7, NC, (sc_lm_pooling)mode);
        gradcheck(&st, "pool", pool_loss, &c, c.x, dx, 7 * NC, 7 * NC, 1e-3f);
    }
    cr_assert_eq(st.failed, 0, "%d of %d failed", st.failed, st.checked);
    cr_assert_geq(st.checked, 300, "%d checked, %d skipped", st.checked, st.skipped);
    tfree();
}

enum { AT = 6, AHS = 8, ALD = 3 * AHS };

typedef struct {
    float *qkv, *b3, *out, *r, *scratch;
} att_ctx;

static double att_loss(void *vc) {
    att_ctx *c = vc;
    sc_attention_head_ref(c->out, c->qkv, c->qkv + AHS, c->qkv + 2 * AHS, c->b3, c->b3 + AHS, c->b3 + 2 * AHS, AT, AHS,
                          ALD, AHS, c->scratch);
    return dot(c->out, c->r, AT * AHS);
}

Test(lm_lora, attention_gradients_match_finite_differences) {
    sc_rng g;
    sc_rng_seed(&g, 3);
    att_ctx c = {rnd(AT * ALD, 1, &g), rnd(3 * AHS, 0.5f, &g), talloc(sizeof(float) * AT * AHS), rnd(AT * AHS, 1, &g),
                 talloc(sizeof(float) * (size_t)sc_attention_head_backward_scratch(AT, AHS))};
    float *dqkv = talloc(sizeof(float) * AT * ALD);
    sc_attention_head_backward(dqkv, dqkv + AHS, dqkv + 2 * AHS, c.r, AHS, c.qkv, c.qkv + AHS, c.qkv + 2 * AHS, c.b3,
                               c.b3 + AHS, c.b3 + 2 * AHS, AT, AHS, ALD, c.scratch);
    gc_stats st = {0};
    gradcheck(&st, "qkv", att_loss, &c, c.qkv, dqkv, AT * ALD, AT * ALD, 1e-2f);
    cr_assert_eq(st.failed, 0, "%d of %d failed", st.failed, st.checked);
    cr_assert_geq(st.checked, AT * ALD - 5, "%d checked, %d skipped", st.checked, st.skipped);
    tfree();
}

/* ---------------- the adapted layers of a small random BERT ---------------- */

enum { BC = 32, BNH = 4, BF = 48, BL = 3, BR = 4 };

typedef struct {
    sc_bert m;
    sc_lora lo;
    sc_bert_top top;
    float *x0, *pooled, *r, *wmem;
    int len[3], B;
    int64_t N;
} top_ctx;

static double top_loss(void *vc) {
    top_ctx *c = vc;
    sc_error e;
    cr_assert_eq(sc_bert_top_forward(&c->m, &c->lo, c->x0, c->len, c->B, &c->top, &e), SC_OK, "%s", e.msg);
    for (int b = 0; b < c->B; b++)
        sc_pool_forward(c->pooled + b * BC, c->top.out + c->top.off[b] * BC, c->len[b], BC, SC_LM_POOL_MEAN);
    return dot(c->pooled, c->r, c->B * BC);
}

/* A random 3-layer BERT (C 32, 4 heads, F 48) with LoRA of rank 4 on its top n layers. */
static void small_bert(top_ctx *c, int n, sc_rng *g) {
    memset(c, 0, sizeof *c);
    sc_bert_config *cf = &c->m.cfg;
    cf->hidden = BC;
    cf->heads = BNH;
    cf->intermediate = BF;
    cf->layers = BL;
    cf->ln_eps = 1e-5f;
    c->m.n_threads = 2;
    c->m.w.layer = talloc(BL * sizeof *c->m.w.layer);
    for (int l = 0; l < BL; l++) {
        sc_bert_layer *L = &c->m.w.layer[l];
        L->wqkv = rnd(3 * BC * BC, 0.25f, g);
        L->bq = rnd(BC, 0.1f, g);
        L->bk = rnd(BC, 0.1f, g);
        L->bv = rnd(BC, 0.1f, g);
        L->wo = rnd(BC * BC, 0.2f, g);
        L->bo = rnd(BC, 0.1f, g);
        L->wi = rnd(BF * BC, 0.2f, g);
        L->bi = rnd(BF, 0.1f, g);
        L->wf = rnd(BC * BF, 0.2f, g);
        L->bf = rnd(BC, 0.1f, g);
        float *w1 = rnd(BC, 0.1f, g), *w2 = rnd(BC, 0.1f, g);
        for (int k = 0; k < BC; k++) w1[k] += 1.0f, w2[k] += 1.0f;
        L->ln1_w = w1;
        L->ln2_w = w2;
        L->ln1_b = rnd(BC, 0.1f, g);
        L->ln2_b = rnd(BC, 0.1f, g);
    }
    c->lo.rank = BR;
    c->lo.first = BL - n;
    c->lo.n = n;
    c->lo.scale = 0.5f;
    int64_t total = 0;
    for (int p = 0; p < SC_LORA_PROJ; p++) {
        int K, D;
        sc_lora_proj_dims(cf, p, &K, &D);
        total += (int64_t)BR * (K + D);
    }
    c->wmem = rnd(2 * n * total, 0.3f, g); /* B random too: with B = 0 every dA is zero */
    float *w = c->wmem, *gr = talloc((size_t)(2 * n * total) * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int p = 0; p < SC_LORA_PROJ; p++) {
            int K, D;
            sc_lora_proj_dims(cf, p, &K, &D);
            c->lo.A[i][p] = w, c->lo.dA[i][p] = gr, w += BR * K, gr += BR * K;
            c->lo.B[i][p] = w, c->lo.dB[i][p] = gr, w += D * BR, gr += D * BR;
        }
    c->B = 3;
    c->len[0] = 5, c->len[1] = 1, c->len[2] = 7;
    c->N = 13;
    c->x0 = rnd(c->N * BC, 1, g);
    c->pooled = talloc(sizeof(float) * 3 * BC);
    c->r = rnd(3 * BC, 1, g);
    sc_error e;
    cr_assert_eq(sc_bert_top_reserve(&c->top, cf, &c->lo, c->N, c->B, 7, 2, &e), SC_OK, "%s", e.msg);
}

static void check_top(int n) {
    sc_rng g;
    sc_rng_seed(&g, 10 + n);
    top_ctx c;
    small_bert(&c, n, &g);
    top_loss(&c);
    float *dout = talloc(sizeof(float) * c.N * BC);
    for (int b = 0; b < c.B; b++)
        sc_pool_backward(dout + c.top.off[b] * BC, c.r + b * BC, c.top.out + c.top.off[b] * BC, c.len[b], BC,
                         SC_LM_POOL_MEAN);
    sc_error e;
    cr_assert_eq(sc_bert_top_backward(&c.m, &c.lo, &c.top, dout, c.len, c.B, &e), SC_OK, "%s", e.msg);
    gc_stats st = {0};
    int nonzero = 0;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < SC_LORA_PROJ; p++) {
            int K, D;
            sc_lora_proj_dims(&c.m.cfg, p, &K, &D);
            char what[32];
            snprintf(what, sizeof what, "layer %d %s.A", c.lo.first + i, SC_LORA_PROJ_NAME[p]);
            gradcheck(&st, what, top_loss, &c, c.lo.A[i][p], c.lo.dA[i][p], BR * K, 12, 1e-2f);
            snprintf(what, sizeof what, "layer %d %s.B", c.lo.first + i, SC_LORA_PROJ_NAME[p]);
            gradcheck(&st, what, top_loss, &c, c.lo.B[i][p], c.lo.dB[i][p], D * BR, 12, 1e-2f);
            for (int k = 0; k < BR * K; k++) nonzero += c.lo.dA[i][p][k] != 0;
        }
    cr_assert_eq(st.failed, 0, "%d of %d failed", st.failed, st.checked);
    cr_assert_geq(st.checked, n * SC_LORA_PROJ * 2 * 11, "%d checked, %d skipped", st.checked, st.skipped);
    cr_assert_gt(nonzero, n * 100);
    sc_bert_top_free(&c.top);
    tfree();
}

Test(lm_lora, top_layer_and_pooling_gradients_match_finite_differences) { check_top(1); }
Test(lm_lora, two_adapted_layers_gradients_match_finite_differences) { check_top(2); }

Test(lm_lora, bad_chunks_are_refused) {
    sc_rng g;
    sc_rng_seed(&g, 5);
    top_ctx c;
    small_bert(&c, 1, &g);
    sc_error e;
    int bad[1] = {8}; /* longer than the buffers were sized for */
    cr_assert_eq(sc_bert_top_forward(&c.m, &c.lo, c.x0, bad, 1, &c.top, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "8 tokens"), "%s", e.msg);
    c.lo.first = 0; /* not the top layers */
    cr_assert_eq(sc_bert_top_forward(&c.m, &c.lo, c.x0, c.len, c.B, &c.top, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "layers 0..0"), "%s", e.msg);
    sc_bert_top_free(&c.top);
    tfree();
}

/* ---------------- the real encoder: B = 0 is the frozen encoder, bit for bit ---------------- */

static char **fixture_texts(int *n_out) {
    FILE *f = fopen(lmt_fixture("embed_minilm.txt"), "r");
    cr_assert(f);
    char **t = talloc(1024 * sizeof *t);
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && n < 1024) {
        size_t hl = strcspn(line, "\n");
        t[n] = talloc(hl / 2 + 1);
        lmt_unhex(line, hl, t[n]);
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return t;
}

Test(lm_lora, zero_B_gives_the_frozen_encoders_vectors_bit_for_bit, .timeout = 600) {
    int n;
    char **texts = fixture_texts(&n);
    n = n > 120 ? 120 : n;
    sc_error e;
    sc_encoder *enc;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 2, &e), SC_OK, "%s", e.msg);
    sc_encoder_set_normalize(enc, 0); /* MSD's vectors: pooled, not normalised */
    const int C = sc_encoder_dim(enc);
    float *frozen = talloc(sizeof(float) * (size_t)n * C), *got = talloc(sizeof(float) * (size_t)n * C);
    cr_assert_eq(sc_encoder_encode(enc, (const char *const *)texts, n, frozen, &e), SC_OK, "%s", e.msg);
    for (int layers = 1; layers <= 2; layers++) {
        /* the MSD training state: the base (frozen layers once), vectors under A random, B = 0 */
        sc_msd_lora_base base;
        cr_assert_eq(sc_msd_lora_base_build(&base, lmt_model_dir(), (const char *const *)texts, n, layers, 2, NULL, &e),
                     SC_OK, "%s", e.msg);
        cr_assert_eq(base.first, 6 - layers);
        sc_msd_lora *l;
        cr_assert_eq(sc_msd_lora_create(&l, &base, 8, 7, 2, &e), SC_OK, "%s", e.msg);
        cr_assert_eq(sc_msd_lora_all_vectors(l, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < n; i++)
            cr_assert(!memcmp(sc_msd_lora_vec(l, i), frozen + (int64_t)i * C, sizeof(float) * C),
                      "layers %d, text %d: the adapted path differs from the frozen encoder", layers, i);
        /* the serving path (new texts encoded with the adapters) */
        cr_assert_eq(sc_msd_lora_encode(&l->lo, enc, (const char *const *)texts, n, got, &e), SC_OK, "%s", e.msg);
        cr_assert(!memcmp(got, frozen, sizeof(float) * (size_t)n * C), "layers %d: serving differs", layers);
        /* B != 0 moves every text, and serving follows the training state */
        for (int i = 0; i < l->lo.n; i++)
            for (int p = 0; p < SC_LORA_PROJ; p++) {
                int K, D;
                sc_lora_proj_dims(&sc_encoder_bert(enc)->cfg, p, &K, &D);
                for (int k = 0; k < D * 8; k++) l->lo.B[i][p][k] = 0.01f * (float)((k * 7 + p) % 11 - 5);
            }
        sc_msd_lora_changed(l);
        cr_assert_eq(sc_msd_lora_all_vectors(l, &e), SC_OK, "%s", e.msg);
        cr_assert_eq(sc_msd_lora_encode(&l->lo, enc, (const char *const *)texts, n, got, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < n; i++) {
            cr_assert(memcmp(sc_msd_lora_vec(l, i), frozen + (int64_t)i * C, sizeof(float) * C), "text %d", i);
            for (int k = 0; k < C; k++)
                cr_assert(fabsf(sc_msd_lora_vec(l, i)[k] - got[(int64_t)i * C + k]) < 1e-5f, "text %d [%d]", i, k);
        }
        sc_msd_lora_free(l);
        sc_msd_lora_base_free(&base);
    }
    sc_encoder_free(enc);
    tfree();
}

/* The training state: summed gradients, one step moves the weights the way
 * the summed gradient says, and the vectors follow the new weights. */
Test(lm_lora, accumulated_gradients_step_the_weights_and_refresh_the_vectors, .timeout = 600) {
    const char *texts[4] = {"a comedy about a dog", "a dark thriller", "an old western with horses", "a comedy about a dog"};
    sc_error e;
    sc_msd_lora_base base;
    cr_assert_eq(sc_msd_lora_base_build(&base, lmt_model_dir(), texts, 4, 1, 2, NULL, &e), SC_OK, "%s", e.msg);
    sc_msd_lora *l;
    cr_assert_eq(sc_msd_lora_create(&l, &base, 4, 3, 2, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(l->n_params, 2 * SC_LORA_PROJ);
    cr_assert_str_eq(l->params[0].name, "lora.5.q.A");
    cr_assert_str_eq(l->params[11].name, "lora.5.down.B");
    int32_t u[3] = {0, 2, 0};
    cr_assert_eq(sc_msd_lora_vectors(l, u, 3, &e), SC_OK, "%s", e.msg);
    float before[384], g[384];
    memcpy(before, sc_msd_lora_vec(l, 2), sizeof before);
    /* loss = sum of text 2's vector, its gradient added twice (two steps): the summed gradient is 2 */
    for (int k = 0; k < 384; k++) g[k] = 1.0f;
    sc_msd_lora_add_grad(l, 2, g);
    sc_msd_lora_add_grad(l, 2, g);
    cr_assert_eq(l->n_touched, 1);
    sc_optim_config oc;
    sc_optim_config_default(&oc, SC_OPTIM_ADAM);
    sc_optim *opt;
    cr_assert_eq(sc_optim_create(&opt, &oc, l->params, l->n_params, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_msd_lora_step(l, opt, 1e-3f, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(l->n_touched, 0);
    double nb = 0;
    for (int k = 0; k < l->params[1].size; k++) nb += fabs(l->params[1].data[k]);
    cr_assert_gt(nb, 0, "B moved off zero");
    cr_assert_eq(sc_msd_lora_vectors(l, u + 1, 1, &e), SC_OK, "%s", e.msg);
    double s0 = 0, s1 = 0;
    for (int k = 0; k < 384; k++) s0 += before[k], s1 += sc_msd_lora_vec(l, 2)[k];
    cr_assert_lt(s1, s0, "a descent step lowers the loss: %g -> %g", s0, s1);
    sc_optim_free(opt);
    sc_msd_lora_free(l);
    sc_msd_lora_base_free(&base);
    /* a decoder or too many layers are refused, naming the setting */
    cr_assert_eq(sc_msd_lora_base_build(&base, lmt_model_dir(), texts, 4, 7, 2, NULL, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "--msd-lora-layers 7") && strstr(e.msg, "6 layers"), "%s", e.msg);
}

/* The frozen layers' states are cached on disk: a second run reads them back
 * bit for bit; other texts, another layer or a damaged file are recomputed. */
Test(lm_lora, base_cache_is_reused_only_for_the_same_texts_and_layer, .timeout = 600) {
    const char *texts[3] = {"a comedy about a dog", "a dark thriller", "an old western with horses"};
    char dir[] = "/tmp/sc_lora_cache_XXXXXX", path[128];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/base", dir);
    sc_error e;
    sc_msd_lora_base a, b;
    cr_assert_eq(sc_msd_lora_base_build(&a, lmt_model_dir(), texts, 3, 1, 2, path, &e), SC_OK, "%s", e.msg);
    cr_assert(sc_file_exists(path));
    const int64_t N = a.off[3];
    cr_assert_eq(sc_msd_lora_base_build(&b, lmt_model_dir(), texts, 3, 1, 2, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(b.off[3], N);
    cr_assert_eq(b.max_len, a.max_len);
    cr_assert(!memcmp(a.len, b.len, 3 * sizeof *a.len) && !memcmp(a.x0, b.x0, (size_t)N * 384 * sizeof(float)));
    sc_msd_lora_base_free(&b);
    /* another list of texts: not the cached states */
    const char *other[3] = {"a comedy about a cat", "a dark thriller", "an old western with horses"};
    cr_assert_eq(sc_msd_lora_base_build(&b, lmt_model_dir(), other, 3, 1, 2, path, &e), SC_OK, "%s", e.msg);
    cr_assert(memcmp(a.x0, b.x0, (size_t)a.len[0] * 384 * sizeof(float)), "the old texts' states were reused");
    sc_msd_lora_base_free(&b);
    /* another layer: the states entering layer 4, not 5 */
    cr_assert_eq(sc_msd_lora_base_build(&b, lmt_model_dir(), texts, 3, 2, 2, path, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(b.first, 4);
    cr_assert(memcmp(a.x0, b.x0, (size_t)N * 384 * sizeof(float)));
    sc_msd_lora_base_free(&b);
    /* a truncated file is recomputed, not read */
    cr_assert_eq(sc_msd_lora_base_build(&b, lmt_model_dir(), texts, 3, 1, 2, path, &e), SC_OK, "%s", e.msg);
    sc_msd_lora_base_free(&b);
    cr_assert_eq(truncate(path, 400), 0);
    cr_assert_eq(sc_msd_lora_base_build(&b, lmt_model_dir(), texts, 3, 1, 2, path, &e), SC_OK, "%s", e.msg);
    cr_assert(!memcmp(a.x0, b.x0, (size_t)N * 384 * sizeof(float)));
    sc_msd_lora_base_free(&b);
    sc_msd_lora_base_free(&a);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A text's vector does not depend on the texts it shares a chunk with (what
 * makes a resumed run end as an uninterrupted one: they compute the same
 * vectors in other groupings). */
Test(lm_lora, a_texts_vector_does_not_depend_on_its_chunk, .timeout = 600) {
    int n;
    char **texts = fixture_texts(&n);
    n = n > 120 ? 120 : n;
    sc_error e;
    sc_msd_lora_base base;
    cr_assert_eq(sc_msd_lora_base_build(&base, lmt_model_dir(), (const char *const *)texts, n, 1, 2, NULL, &e), SC_OK,
                 "%s", e.msg);
    sc_msd_lora *l;
    cr_assert_eq(sc_msd_lora_create(&l, &base, 8, 7, 2, &e), SC_OK, "%s", e.msg);
    sc_rng g;
    sc_rng_seed(&g, 9);
    for (int k = 0; k < l->n_params; k++) /* trained-looking weights: B too */
        for (int64_t i = 0; i < l->params[k].size; i++) l->params[k].data[i] = 0.05f * sc_rng_normal(&g);
    sc_msd_lora_changed(l);
    cr_assert_eq(sc_msd_lora_all_vectors(l, &e), SC_OK, "%s", e.msg);
    float *all = talloc(sizeof(float) * (size_t)n * 384);
    memcpy(all, l->vec, sizeof(float) * (size_t)n * 384);
    /* the same texts again, a few at a time, in another order */
    sc_msd_lora_changed(l);
    for (int s = n - 1; s >= 0; s -= 7) {
        int32_t u[7];
        int k = 0;
        for (int i = s; i >= 0 && k < 7; i--) u[k++] = i;
        cr_assert_eq(sc_msd_lora_vectors(l, u, k, &e), SC_OK, "%s", e.msg);
    }
    for (int i = 0; i < n; i++)
        cr_assert(!memcmp(sc_msd_lora_vec(l, i), all + (int64_t)i * 384, sizeof(float) * 384), "text %d", i);
    sc_msd_lora_free(l);
    sc_msd_lora_base_free(&base);
    tfree();
}
