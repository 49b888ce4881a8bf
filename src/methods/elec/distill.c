#include "methods/elec/distill.h"

#include <math.h>
#include <stdint.h>

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

/* log(1 + e^x) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

double sc_kd_score(const float *z_s, const float *z_t, int B, int kind, float T, float weight, float *dz_s) {
    double loss = 0;
    for (int i = 0; i < B; i++) {
        if (kind == SC_KD_MSE) {
            double d = (double)z_s[i] - z_t[i];
            loss += d * d;
            if (dz_s) dz_s[i] += (float)(weight * 2 * d / B);
        } else {
            /* cross-entropy of the student's tempered probability against the
             * teacher's: softplus(x) − q·x with x = z_s/T, q = σ(z_t/T); scaled
             * by T² so the gradient size does not shrink with T. */
            double x = z_s[i] / T, q = sigmoid(z_t[i] / T);
            loss += T * T * (softplus(x) - q * x);
            if (dz_s) dz_s[i] += (float)(weight * T * (sigmoid(x) - q) / B);
        }
    }
    return B ? loss / B : 0;
}

double sc_kd_repr(const float *p, const float *h_t, int B, int H, float weight, float *dp) {
    double loss = 0, n = (double)B * H;
    for (int64_t i = 0; i < (int64_t)B * H; i++) {
        double d = (double)p[i] - h_t[i];
        loss += d * d;
        if (dp) dp[i] += (float)(weight * 2 * d / n);
    }
    return n > 0 ? loss / n : 0;
}
