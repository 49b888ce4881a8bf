/* Optimizer steps against values computed by hand (double precision). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/optim.h"

static sc_param dense_param(const char *name, float *data, float *grad, int n) {
    sc_param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.data = data;
    p.grad = grad;
    p.size = n;
    p.rows = 1;
    p.cols = n;
    return p;
}

Test(nn_optim, adam_dense_two_steps) {
    float w[3] = {1, -2, 0.5f}, g[3] = {0.1f, -0.3f, 2.0f};
    sc_param p = dense_param("w", w, g, 3);
    sc_optim_config cfg;
    sc_optim_config_default(&cfg, SC_OPTIM_ADAM);
    sc_optim *o;
    cr_assert_eq(sc_optim_create(&o, &cfg, &p, 1, NULL), 0);
    double rw[3] = {1, -2, 0.5}, m[3] = {0}, v[3] = {0};
    double lr = 0.01;
    for (int t = 1; t <= 2; t++) {
        cr_assert_eq(sc_optim_step(o, (float)lr, NULL), 0);
        for (int j = 0; j < 3; j++) {
            m[j] = 0.9 * m[j] + 0.1 * g[j];
            v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
            double mh = m[j] / (1 - pow(0.9, t)), vh = v[j] / (1 - pow(0.999, t));
            rw[j] -= lr * mh / (sqrt(vh) + 1e-8);
            cr_assert_float_eq(w[j], rw[j], 1e-6, "t=%d j=%d: %g vs %g", t, j, w[j], rw[j]);
        }
    }
    /* step 1 of Adam moves each weight by lr * sign(g) (bias-corrected) */
    cr_assert_eq(sc_optim_get_step(o), 2);
    cr_assert_eq(sc_optim_n_states(o), 2);
    const char *name;
    float *data;
    int64_t size;
    cr_assert_eq(sc_optim_state(o, 1, &name, &data, &size), 0);
    cr_assert_str_eq(name, "w.adam_v");
    cr_assert_eq(size, 3);
    cr_assert_float_eq(data[2], v[2], 2e-5 * v[2], "%.9g vs %.9g", data[2], v[2]);
    cr_assert_eq(sc_optim_state(o, 2, &name, &data, &size), -1);
    sc_optim_free(o);
}

Test(nn_optim, adam_lazy_sparse_rows_and_l2) {
    enum { R = 5, C = 2 };
    float table[R * C], before[R * C];
    for (int i = 0; i < R * C; i++) table[i] = before[i] = 0.1f * (i + 1);
    float grad[2 * C] = {0.5f, -1.0f, 2.0f, 0.25f};
    int32_t touched[2] = {3, 1};
    sc_param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "emb.x");
    p.data = table;
    p.size = R * C;
    p.rows = R;
    p.cols = C;
    p.sparse = 1;
    p.weight_decay = 1;
    p.grad = grad;
    p.touched = touched;
    p.n_touched = 2;
    sc_optim_config cfg;
    sc_optim_config_default(&cfg, SC_OPTIM_ADAM);
    cfg.weight_decay = 0.1f;
    sc_optim *o;
    cr_assert_eq(sc_optim_create(&o, &cfg, &p, 1, NULL), 0);
    cr_assert_eq(sc_optim_step(o, 0.01f, NULL), 0);
    float *m, *v;
    sc_optim_state(o, 0, NULL, &m, NULL);
    sc_optim_state(o, 1, NULL, &v, NULL);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            int i = r * C + c, slot = r == 3 ? 0 : r == 1 ? 1 : -1;
            if (slot < 0) {
                cr_assert_eq(table[i], before[i], "untouched row %d changed", r);
                cr_assert_eq(m[i], 0.0f);
                continue;
            }
            double g = grad[slot * C + c] + 0.1 * before[i]; /* L2 on touched rows */
            double mm = 0.1 * g, vv = 0.001 * g * g;
            double w = before[i] - 0.01 * (mm / 0.1) / (sqrt(vv / 0.001) + 1e-8);
            cr_assert_float_eq(table[i], w, 1e-6);
            cr_assert_float_eq(m[i], mm, 1e-7);
        }
    /* second step touches only row 1: row 3 keeps its moments (lazy) */
    float m3[C] = {m[3 * C], m[3 * C + 1]}, w3[C] = {table[3 * C], table[3 * C + 1]};
    touched[0] = 1;
    p.n_touched = 1;
    cr_assert_eq(sc_optim_step(o, 0.01f, NULL), 0);
    cr_assert(m[3 * C] == m3[0] && m[3 * C + 1] == m3[1]);
    cr_assert(table[3 * C] == w3[0] && table[3 * C + 1] == w3[1]);
    sc_optim_free(o);
}

Test(nn_optim, adagrad_dense_and_sparse) {
    float w[2] = {1, 2}, g[2] = {0.5f, -2};
    float table[6] = {1, 1, 1, 1, 1, 1}, tg[2] = {3, -4};
    int32_t touched[1] = {2};
    sc_param ps[2];
    ps[0] = dense_param("w", w, g, 2);
    memset(&ps[1], 0, sizeof ps[1]);
    snprintf(ps[1].name, sizeof ps[1].name, "emb.t");
    ps[1].data = table;
    ps[1].size = 6;
    ps[1].rows = 3;
    ps[1].cols = 2;
    ps[1].sparse = 1;
    ps[1].grad = tg;
    ps[1].touched = touched;
    ps[1].n_touched = 1;
    sc_optim_config cfg;
    sc_optim_config_default(&cfg, SC_OPTIM_ADAGRAD);
    cfg.initial_accumulator = 0.1f;
    sc_optim *o;
    cr_assert_eq(sc_optim_create(&o, &cfg, ps, 2, NULL), 0);
    double s[2] = {0.1, 0.1}, rw[2] = {1, 2}, ts[2] = {0.1, 0.1}, tw[2] = {1, 1};
    for (int t = 0; t < 2; t++) {
        cr_assert_eq(sc_optim_step(o, 0.5f, NULL), 0);
        for (int j = 0; j < 2; j++) {
            s[j] += g[j] * g[j];
            rw[j] -= 0.5 * g[j] / (sqrt(s[j]) + 1e-10);
            cr_assert_float_eq(w[j], rw[j], 1e-6);
            ts[j] += tg[j] * tg[j];
            tw[j] -= 0.5 * tg[j] / (sqrt(ts[j]) + 1e-10);
            cr_assert_float_eq(table[4 + j], tw[j], 1e-6);
        }
    }
    for (int i = 0; i < 4; i++) cr_assert_eq(table[i], 1.0f); /* rows 0, 1 untouched */
    const char *name;
    cr_assert_eq(sc_optim_n_states(o), 2);
    sc_optim_state(o, 1, &name, NULL, NULL);
    cr_assert_str_eq(name, "emb.t.adagrad_sum");
    sc_optim_free(o);
}

Test(nn_optim, rejects_bad_config_and_lr) {
    float w[1] = {0}, g[1] = {0};
    sc_param p = dense_param("w", w, g, 1);
    sc_optim_config cfg;
    sc_optim_config_default(&cfg, SC_OPTIM_ADAM);
    cfg.beta1 = 1.0f;
    sc_optim *o = NULL;
    sc_error err;
    cr_assert_eq(sc_optim_create(&o, &cfg, &p, 1, &err), SC_EINVAL);
    cr_assert_null(o);
    cfg.beta1 = 0.9f;
    cfg.kind = 7;
    cr_assert_eq(sc_optim_create(&o, &cfg, &p, 1, &err), SC_EINVAL);
    cfg.kind = SC_OPTIM_ADAM;
    cr_assert_eq(sc_optim_create(&o, &cfg, &p, 1, &err), 0);
    cr_assert_eq(sc_optim_step(o, NAN, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "learning rate") != NULL);
    sc_optim_free(o);
}
