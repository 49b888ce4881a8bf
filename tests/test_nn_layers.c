/* Layer tests: every forward against an independent reference where the
 * formula is short, every backward against finite differences. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"
#include "test_nn_gradcheck.h"

static void fill(float *x, int64_t n, float scale, uint64_t seed) {
    sc_rng r;
    sc_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) x[i] = scale * sc_rng_normal(&r);
}

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

#define ASSERT_GC(st)                                                                          \
    do {                                                                                       \
        cr_assert_eq((st).failed, 0, "%d gradient mismatches", (st).failed);                   \
        cr_assert((st).checked > 3 * (st).skipped, "too many skipped: %d of %d", (st).skipped, \
                  (st).checked + (st).skipped);                                                \
    } while (0)

/* ---------------- linear ---------------- */

enum { LB = 5, LI = 7, LO = 4 };
typedef struct {
    float inp[LB * LI], w[LO * LI], b[LO], out[LB * LO], r[LB * LO];
} lin_t;

static double lin_loss(void *vc) {
    lin_t *c = vc;
    sc_linear_forward(c->out, c->inp, c->w, c->b, LB, LI, LO);
    return dot(c->out, c->r, LB * LO);
}

Test(nn_layers, linear_forward_and_grad) {
    lin_t c;
    fill(c.inp, LB * LI, 1, 1);
    fill(c.w, LO * LI, 0.5f, 2);
    fill(c.b, LO, 0.5f, 3);
    fill(c.r, LB * LO, 1, 4);
    lin_loss(&c);
    for (int i = 0; i < LB; i++)
        for (int o = 0; o < LO; o++) {
            double s = c.b[o];
            for (int k = 0; k < LI; k++) s += c.inp[i * LI + k] * c.w[o * LI + k];
            cr_assert_float_eq(c.out[i * LO + o], s, 1e-5);
        }
    float di[LB * LI] = {0}, dw[LO * LI] = {0}, db[LO] = {0};
    sc_linear_backward(di, dw, db, c.r, c.inp, c.w, LB, LI, LO);
    gc_stats st = {0};
    gradcheck(&st, "inp", lin_loss, &c, c.inp, di, LB * LI, 100, 1e-2f);
    gradcheck(&st, "w", lin_loss, &c, c.w, dw, LO * LI, 100, 1e-2f);
    gradcheck(&st, "b", lin_loss, &c, c.b, db, LO, 100, 1e-2f);
    ASSERT_GC(st);
    /* accumulation: a second backward doubles the gradients */
    float dw2[LO * LI];
    memcpy(dw2, dw, sizeof dw);
    sc_linear_backward(NULL, dw2, NULL, c.r, c.inp, c.w, LB, LI, LO);
    for (int i = 0; i < LO * LI; i++) cr_assert_float_eq(dw2[i], 2 * dw[i], 1e-5);
}

/* ---------------- activations ---------------- */

enum { AN = 64 };
typedef struct {
    float x[AN], y[AN], r[AN], mask[AN];
    int kind; /* 0 relu, 1 sigmoid, 2 dropout */
} act_t;

static double act_loss(void *vc) {
    act_t *c = vc;
    if (c->kind == 0) sc_relu_forward(c->y, c->x, AN, 2);
    if (c->kind == 1) sc_sigmoid_forward(c->y, c->x, AN);
    if (c->kind == 2)
        for (int i = 0; i < AN; i++) c->y[i] = c->x[i] * c->mask[i]; /* fixed mask */
    return dot(c->y, c->r, AN);
}

Test(nn_layers, relu_sigmoid_dropout_grads) {
    for (int kind = 0; kind < 3; kind++) {
        act_t c;
        c.kind = kind;
        fill(c.x, AN, 1, 10 + kind);
        for (int i = 0; i < AN; i++)
            if (fabsf(c.x[i]) < 0.05f) c.x[i] = 0.3f; /* keep clear of the kink */
        fill(c.r, AN, 1, 20 + kind);
        sc_rng rng;
        sc_rng_seed(&rng, 5);
        if (kind == 2) sc_dropout_forward(c.y, c.mask, c.x, AN, 0.5f, &rng);
        act_loss(&c);
        float d[AN] = {0};
        if (kind == 0) {
            for (int i = 0; i < AN; i++) cr_assert_eq(c.y[i], c.x[i] > 0 ? c.x[i] : 0.0f);
            sc_relu_backward(d, c.r, c.y, AN, 2);
        } else if (kind == 1) {
            for (int i = 0; i < AN; i++) cr_assert_float_eq(c.y[i], 1 / (1 + exp(-c.x[i])), 1e-6);
            sc_sigmoid_backward(d, c.r, c.y, AN);
        } else {
            sc_dropout_backward(d, c.r, c.mask, AN);
        }
        gc_stats st = {0};
        gradcheck(&st, "act", act_loss, &c, c.x, d, AN, AN, 1e-2f);
        ASSERT_GC(st);
    }
}

Test(nn_layers, relu_backward_in_place) {
    float y[4] = {1, 0, 2, 0}, g[4] = {5, 6, 7, 8};
    sc_relu_backward(g, g, y, 4, 1);
    cr_assert(g[0] == 5 && g[1] == 0 && g[2] == 7 && g[3] == 0);
}

Test(nn_layers, dropout_mask_statistics_and_determinism) {
    enum { N = 20000 };
    float *x = sc_malloc(N * sizeof(float)), *y = sc_malloc(N * sizeof(float));
    float *m1 = sc_malloc(N * sizeof(float)), *m2 = sc_malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = 1.0f;
    sc_rng r1, r2;
    sc_rng_seed(&r1, 9);
    sc_rng_seed(&r2, 9);
    sc_dropout_forward(y, m1, x, N, 0.3f, &r1);
    sc_dropout_forward(y, m2, x, N, 0.3f, &r2);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(m1[i], m2[i]);
        cr_assert(m1[i] == 0.0f || fabsf(m1[i] - 1 / 0.7f) < 1e-6);
        zeros += m1[i] == 0.0f;
    }
    cr_assert(fabs(zeros / (double)N - 0.3) < 0.02, "drop fraction %g", zeros / (double)N);
    sc_dropout_forward(y, m1, x, N, 0.0f, &r1);
    for (int i = 0; i < N; i++) cr_assert(m1[i] == 1.0f && y[i] == 1.0f);
    sc_free(x);
    sc_free(y);
    sc_free(m1);
    sc_free(m2);
}

/* ---------------- embeddings ---------------- */

enum { EV = 9, ED = 3, EB = 5, EW = 4 };
typedef struct {
    float table[EV * ED], out[EB * ED], scale[EB], r[EB * ED];
    int32_t ids[EB * EW];
    int mean;
} emb_t;

static double emb_loss(void *vc) {
    emb_t *c = vc;
    sc_embedding_pool_forward(c->out, ED, c->scale, c->table, c->ids, EB, EW, ED, c->mean);
    return dot(c->out, c->r, EB * ED);
}

Test(nn_layers, embedding_pool_sparse_grad) {
    /* duplicates within a row and across rows, padding, an all-padding row */
    int32_t ids[EB * EW] = {2, 3, 0, 0, /**/ 3, 3, 5, 0, /**/ 0, 0, 0, 0, /**/ 1, 8, 2, 7, /**/ 5, 0, 0, 0};
    for (int mean = 0; mean < 2; mean++) {
        emb_t c;
        memcpy(c.ids, ids, sizeof ids);
        c.mean = mean;
        fill(c.table, EV * ED, 1, 30);
        fill(c.r, EB * ED, 1, 31);
        emb_loss(&c);
        /* row 1 = table[3]*2 + table[5], pooled */
        for (int d = 0; d < ED; d++) {
            float s = 2 * c.table[3 * ED + d] + c.table[5 * ED + d];
            cr_assert_float_eq(c.out[1 * ED + d], mean ? s / 3 : s, 1e-5);
            cr_assert_eq(c.out[2 * ED + d], 0.0f);
        }
        sc_sparse_rows rows;
        cr_assert_eq(sc_sparse_rows_init(&rows, EV), 0);
        for (int rep = 0; rep < 2; rep++) { /* second step reuses the stamps */
            sc_sparse_rows_begin(&rows);
            cr_assert_eq(sc_sparse_rows_reserve(&rows, EB * EW), 0);
            cr_assert_eq(sc_sparse_rows_add(&rows, c.ids, EB * EW), 0);
            int32_t expect[] = {2, 3, 5, 1, 8, 7}; /* first appearance, no padding */
            cr_assert_eq(rows.n_touched, 6);
            for (int i = 0; i < 6; i++) cr_assert_eq(rows.touched[i], expect[i]);
        }
        float g[EV * ED] = {0}; /* (n_touched, D) */
        sc_embedding_pool_backward(g, &rows, c.r, ED, c.scale, c.ids, EB, EW, ED);
        /* scatter to a dense gradient for the check; untouched rows get 0 */
        float dense[EV * ED] = {0};
        for (int i = 0; i < rows.n_touched; i++)
            memcpy(dense + rows.touched[i] * ED, g + i * ED, sizeof(float) * ED);
        gc_stats st = {0};
        gradcheck(&st, "table", emb_loss, &c, c.table, dense, EV * ED, 1000, 1e-2f);
        ASSERT_GC(st);
        sc_sparse_rows_free(&rows);
    }
}

Test(nn_layers, embedding_ids_checked_and_capacity) {
    int32_t ids[4] = {0, 3, 9, 2};
    cr_assert_eq(sc_embedding_check_ids(ids, 4, 9), 2);
    cr_assert_eq(sc_embedding_check_ids(ids, 4, 10), -1);
    ids[0] = -1;
    cr_assert_eq(sc_embedding_check_ids(ids, 4, 10), 0);
    sc_sparse_rows rows;
    cr_assert_eq(sc_sparse_rows_init(&rows, 10), 0);
    sc_sparse_rows_begin(&rows);
    cr_assert_eq(sc_sparse_rows_reserve(&rows, 1), 0);
    int32_t two[2] = {4, 5};
    cr_assert_eq(sc_sparse_rows_add(&rows, two, 2), -1); /* over capacity: reported */
    sc_sparse_rows_free(&rows);
}

Test(nn_layers, numeric_embedding_grad) {
    float row[3] = {0.5f, -1, 2}, v[4] = {1, -2, 0.5f, 3}, out[12], r[12], g[3] = {0};
    fill(r, 12, 1, 40);
    sc_embedding_numeric_forward(out, 3, row, v, 4, 3);
    cr_assert_float_eq(out[1 * 3 + 2], -4.0f, 1e-6);
    sc_embedding_numeric_backward(g, r, 3, v, 4, 3);
    for (int d = 0; d < 3; d++) {
        double s = 0;
        for (int b = 0; b < 4; b++) s += v[b] * r[b * 3 + d];
        cr_assert_float_eq(g[d], s, 1e-5);
    }
}

/* ---------------- FM ---------------- */

enum { FB = 4, FF = 5, FD = 3 };
typedef struct {
    float x[FB * FF * FD], out[FB * FD], r[FB * FD];
    int threads;
} fm_t;

static double fm_loss(void *vc) {
    fm_t *c = vc;
    sc_fm_forward(c->out, c->x, FB, FF, FD, c->threads);
    return dot(c->out, c->r, FB * FD);
}

Test(nn_layers, fm_forward_pairwise_and_grad) {
    fm_t c = {.threads = 2};
    fill(c.x, FB * FF * FD, 1, 50);
    fill(c.r, FB * FD, 1, 51);
    fm_loss(&c);
    for (int b = 0; b < FB; b++)
        for (int d = 0; d < FD; d++) {
            double s = 0; /* sum over pairs i < j of v_i v_j */
            for (int i = 0; i < FF; i++)
                for (int j = i + 1; j < FF; j++)
                    s += c.x[(b * FF + i) * FD + d] * c.x[(b * FF + j) * FD + d];
            cr_assert_float_eq(c.out[b * FD + d], s, 1e-4);
        }
    float dx[FB * FF * FD] = {0};
    sc_fm_backward(dx, c.r, c.x, FB, FF, FD, 2);
    gc_stats st = {0};
    gradcheck(&st, "fm", fm_loss, &c, c.x, dx, FB * FF * FD, 1000, 1e-2f);
    ASSERT_GC(st);
}

/* ---------------- cross layers ---------------- */

enum { CB = 4, CK = 6 };
typedef struct {
    float x0[CB * CK], xl[CB * CK], w[CK * CK], b[CK], out[CB * CK], s[CB * CK], r[CB * CK];
    int matrix;
} cross_t;

static double cross_loss(void *vc) {
    cross_t *c = vc;
    if (c->matrix)
        sc_cross2_forward(c->out, c->s, c->x0, c->xl, c->w, c->b, CB, CK, 2);
    else
        sc_cross_forward(c->out, c->s, c->x0, c->xl, c->w, c->b, CB, CK, 2);
    return dot(c->out, c->r, CB * CK);
}

Test(nn_layers, cross_vector_and_matrix) {
    for (int matrix = 0; matrix < 2; matrix++) {
        cross_t c;
        c.matrix = matrix;
        fill(c.x0, CB * CK, 1, 60);
        fill(c.xl, CB * CK, 1, 61);
        fill(c.w, CK * CK, 0.5f, 62);
        fill(c.b, CK, 0.5f, 63);
        fill(c.r, CB * CK, 1, 64);
        cross_loss(&c);
        /* reference: vector x0 * (xl.w) + b + xl; matrix x0 * (W xl + b) + xl */
        for (int i = 0; i < CB; i++)
            for (int k = 0; k < CK; k++) {
                double e;
                if (matrix) {
                    double u = c.b[k];
                    for (int j = 0; j < CK; j++) u += c.w[k * CK + j] * c.xl[i * CK + j];
                    e = c.x0[i * CK + k] * u + c.xl[i * CK + k];
                } else {
                    double s = 0;
                    for (int j = 0; j < CK; j++) s += c.xl[i * CK + j] * c.w[j];
                    e = c.x0[i * CK + k] * s + c.b[k] + c.xl[i * CK + k];
                }
                cr_assert_float_eq(c.out[i * CK + k], e, 1e-4);
            }
        float dx0[CB * CK] = {0}, dxl[CB * CK] = {0}, dw[CK * CK] = {0}, db[CK] = {0},
              scr[CB * CK];
        if (matrix)
            sc_cross2_backward(dx0, dxl, dw, db, c.r, c.s, c.x0, c.xl, c.w, CB, CK, scr, 2);
        else
            sc_cross_backward(dx0, dxl, dw, db, c.r, c.s, c.x0, c.xl, c.w, CB, CK, scr, 2);
        gc_stats st = {0};
        gradcheck(&st, "x0", cross_loss, &c, c.x0, dx0, CB * CK, 100, 1e-2f);
        gradcheck(&st, "xl", cross_loss, &c, c.xl, dxl, CB * CK, 100, 1e-2f);
        gradcheck(&st, "w", cross_loss, &c, c.w, dw, matrix ? CK * CK : CK, 100, 1e-2f);
        gradcheck(&st, "b", cross_loss, &c, c.b, db, CK, 100, 1e-2f);
        ASSERT_GC(st);
    }
}

/* ---------------- attention ---------------- */

enum { TB = 3, TF = 4, TI = 4, TA = 6, TH = 2 };
typedef struct {
    float X[TB * TF * TI], Wq[TI * TA], Wk[TI * TA], Wv[TI * TA], Wr[TI * TA];
    float out[TB * TF * TA], r[TB * TF * TA];
    float q[TB * TF * TA], k[TB * TF * TA], v[TB * TF * TA], p[TB * TH * TF * TF];
    int res, scaling, threads;
} att_t;

static double att_loss(void *vc) {
    att_t *c = vc;
    sc_att_buffers bf = {c->q, c->k, c->v, c->p};
    sc_attention_forward(c->out, &bf, c->X, c->Wq, c->Wk, c->Wv, c->res ? c->Wr : NULL, TB, TF, TI,
                         TA, TH, c->scaling, c->threads);
    return dot(c->out, c->r, TB * TF * TA);
}

/* Independent reference of DeepCTR-Torch's InteractingLayer.forward. */
static void att_reference(const att_t *c, double *out, double *min_abs_pre) {
    *min_abs_pre = INFINITY;
    int hd = TA / TH;
    for (int b = 0; b < TB; b++) {
        double Q[TF][TA], K[TF][TA], V[TF][TA], R[TF][TA];
        for (int f = 0; f < TF; f++)
            for (int a = 0; a < TA; a++) {
                Q[f][a] = K[f][a] = V[f][a] = R[f][a] = 0;
                for (int i = 0; i < TI; i++) {
                    double x = c->X[(b * TF + f) * TI + i];
                    Q[f][a] += x * c->Wq[i * TA + a];
                    K[f][a] += x * c->Wk[i * TA + a];
                    V[f][a] += x * c->Wv[i * TA + a];
                    R[f][a] += c->res ? x * c->Wr[i * TA + a] : 0;
                }
            }
        for (int h = 0; h < TH; h++)
            for (int i = 0; i < TF; i++) {
                double s[TF], z = 0;
                for (int j = 0; j < TF; j++) {
                    s[j] = 0;
                    for (int e = 0; e < hd; e++) s[j] += Q[i][h * hd + e] * K[j][h * hd + e];
                    if (c->scaling) s[j] /= sqrt(hd);
                    z += exp(s[j]);
                }
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = 0; j < TF; j++) o += exp(s[j]) / z * V[j][h * hd + e];
                    R[i][h * hd + e] += o;
                }
            }
        for (int f = 0; f < TF; f++)
            for (int a = 0; a < TA; a++) {
                out[(b * TF + f) * TA + a] = R[f][a] > 0 ? R[f][a] : 0;
                if (fabs(R[f][a]) < *min_abs_pre) *min_abs_pre = fabs(R[f][a]);
            }
    }
}

Test(nn_layers, attention_reference_and_grad) {
    for (int mode = 0; mode < 3; mode++) {
        att_t c;
        c.res = mode != 1;
        c.scaling = mode == 2;
        c.threads = 2;
        double ref[TB * TF * TA], margin = 0;
        /* Draw until no ReLU input sits within 0.02 of the kink, so that
         * finite differences with eps = 1e-3 stay on one side of it. */
        for (uint64_t seed = 70; margin < 0.02; seed += 10) {
            fill(c.X, TB * TF * TI, 1, seed);
            fill(c.Wq, TI * TA, 0.5f, seed + 1);
            fill(c.Wk, TI * TA, 0.5f, seed + 2);
            fill(c.Wv, TI * TA, 0.5f, seed + 3);
            fill(c.Wr, TI * TA, 0.5f, seed + 4);
            fill(c.r, TB * TF * TA, 1, seed + 5);
            att_reference(&c, ref, &margin);
        }
        att_loss(&c);
        for (int i = 0; i < TB * TF * TA; i++) cr_assert_float_eq(c.out[i], ref[i], 1e-4);
        /* one thread gives the same bits */
        float out2[TB * TF * TA];
        memcpy(out2, c.out, sizeof out2);
        c.threads = 1;
        att_loss(&c);
        cr_assert_eq(memcmp(out2, c.out, sizeof out2), 0);
        float dX[TB * TF * TI] = {0}, dq[TI * TA] = {0}, dk[TI * TA] = {0}, dv[TI * TA] = {0},
              dr[TI * TA] = {0};
        float s1[TB * TF * TA], s2[TB * TF * TA], s3[TB * TF * TA], s4[TB * TF * TA];
        sc_att_scratch scr = {s1, s2, s3, s4};
        sc_att_buffers bf = {c.q, c.k, c.v, c.p};
        sc_attention_backward(dX, dq, dk, dv, c.res ? dr : NULL, c.r, c.out, &bf, c.X, c.Wq, c.Wk,
                              c.Wv, c.res ? c.Wr : NULL, TB, TF, TI, TA, TH, c.scaling, &scr, 2);
        gc_stats st = {0};
        gradcheck(&st, "X", att_loss, &c, c.X, dX, TB * TF * TI, 100, 1e-3f);
        gradcheck(&st, "Wq", att_loss, &c, c.Wq, dq, TI * TA, 100, 1e-3f);
        gradcheck(&st, "Wk", att_loss, &c, c.Wk, dk, TI * TA, 100, 1e-3f);
        gradcheck(&st, "Wv", att_loss, &c, c.Wv, dv, TI * TA, 100, 1e-3f);
        if (c.res) gradcheck(&st, "Wr", att_loss, &c, c.Wr, dr, TI * TA, 100, 1e-3f);
        if (st.failed) fprintf(stderr, "attention mode %d\n", mode);
        ASSERT_GC(st);
    }
}

/* ---------------- loss ---------------- */

typedef struct {
    float z[6], y[6];
} bce_t;

static double bce_loss(void *vc) {
    bce_t *c = vc;
    return sc_bce_logits_forward(c->z, c->y, 6);
}

Test(nn_layers, bce_with_logits) {
    bce_t c = {{-3, -0.5f, 0, 0.7f, 4, 50}, {0, 1, 1, 0, 1, 0}};
    double ref = 0;
    for (int i = 0; i < 5; i++) {
        double p = 1 / (1 + exp(-c.z[i]));
        ref -= c.y[i] * log(p) + (1 - c.y[i]) * log(1 - p);
    }
    ref += 50; /* z = 50, y = 0: loss = 50 (+ log1p(e^-50)), finite */
    cr_assert_float_eq(bce_loss(&c), ref / 6, 1e-5);
    float d[6];
    sc_bce_logits_backward(d, c.z, c.y, 6, 1.0f);
    gc_stats st = {0};
    gradcheck(&st, "z", bce_loss, &c, c.z, d, 6, 6, 1e-2f);
    ASSERT_GC(st);
}
