/* Finite-difference gradient checking shared by the nn and ctr tests.
 *
 * gradcheck() perturbs entries of a float array x by +-eps, evaluates the
 * scalar loss f (computed in double from the float forward pass) and compares
 * the central difference with the analytic gradient g. Points where the
 * function is not smooth within eps (a ReLU kink crossed by the perturbation)
 * are recognised by a large second difference and skipped; the caller asserts
 * that few were skipped, so the check cannot pass vacuously. */
#ifndef TEST_NN_GRADCHECK_H
#define TEST_NN_GRADCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

typedef double (*gc_loss_fn)(void *ctx);

typedef struct gc_stats {
    int checked, skipped, failed;
} gc_stats;

/* Check up to max_checks entries of x (spread evenly) against g. */
static inline void gradcheck(gc_stats *st, const char *what, gc_loss_fn f, void *ctx, float *x,
                             const float *g, int64_t n, int max_checks, float eps) {
    int64_t step = n > max_checks ? n / max_checks : 1;
    for (int64_t i = 0; i < n; i += step) {
        float keep = x[i];
        double f0 = f(ctx);
        x[i] = keep + eps;
        double fp = f(ctx);
        x[i] = keep - eps;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / (2.0 * (double)eps);
        double second = fabs(fp - 2.0 * f0 + fm);
        if (second > 0.01 * fabs(fp - fm) + 1e-5) {
            st->skipped++;
            continue;
        }
        st->checked++;
        double a = g[i];
        double tol = 2e-2 * fmax(fabs(a), fabs(num)) + 2e-3;
        if (fabs(a - num) > tol) {
            if (st->failed < 5)
                fprintf(stderr, "gradcheck %s[%lld]: analytic %.6g numeric %.6g\n", what,
                        (long long)i, a, num);
            st->failed++;
        }
    }
}

#endif
