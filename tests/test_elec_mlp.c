/* The MLP used by ELEC (adapter, projection): gradients against central
 * finite differences of a scalar loss L = sum(out * g) for fixed random g. */
#include <criterion/criterion.h>
#include <math.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/mlp.h"

static double loss_of(sc_mlp *m, const float *x, const float *g, int B) {
    const float *out;
    cr_assert_eq(sc_mlp_forward(m, x, B, &out, NULL), SC_OK);
    double s = 0;
    for (int i = 0; i < B * m->dims[m->n_layers]; i++) s += (double)out[i] * g[i];
    return s;
}

static void check(int relu_last) {
    int dims[4] = {7, 9, 5, 3}, B = 4;
    sc_mlp *m;
    cr_assert_eq(sc_mlp_create(&m, "t", dims, 3, relu_last, 11, NULL), SC_OK);
    sc_rng r;
    sc_rng_seed(&r, 5);
    float x[4 * 7], g[4 * 3], dx[4 * 7] = {0};
    for (int i = 0; i < B * 7; i++) x[i] = sc_rng_normal(&r);
    for (int i = 0; i < B * 3; i++) g[i] = sc_rng_normal(&r);
    loss_of(m, x, g, B);
    sc_mlp_backward(m, g, dx);
    int np;
    sc_param *p = sc_mlp_params(m, &np);
    const float eps = 1e-3f;
    for (int k = 0; k < np; k++)
        for (int64_t i = 0; i < p[k].size; i++) {
            float keep = p[k].data[i];
            p[k].data[i] = keep + eps;
            double lp = loss_of(m, x, g, B);
            p[k].data[i] = keep - eps;
            double lm = loss_of(m, x, g, B);
            p[k].data[i] = keep;
            double num = (lp - lm) / (2 * eps), ana = p[k].grad[i];
            cr_assert(fabs(num - ana) <= 1e-2 * fmax(1.0, fabs(num)), "%s[%lld]: numeric %g analytic %g", p[k].name,
                      (long long)i, num, ana);
        }
    for (int i = 0; i < B * 7; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss_of(m, x, g, B);
        x[i] = keep - eps;
        double lm = loss_of(m, x, g, B);
        x[i] = keep;
        double num = (lp - lm) / (2 * eps);
        cr_assert(fabs(num - dx[i]) <= 1e-2 * fmax(1.0, fabs(num)), "dx[%d]: numeric %g analytic %g", i, num, dx[i]);
    }
    sc_mlp_free(m);
}

Test(mlp, gradients_match_finite_differences) { check(0); }
Test(mlp, gradients_with_relu_after_last_layer) { check(1); }

Test(mlp, rejects_bad_shapes) {
    int dims[2] = {0, 3};
    sc_mlp *m;
    sc_error e;
    cr_assert_eq(sc_mlp_create(&m, "bad", dims, 1, 0, 1, &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "bad"));
}
