/* train/guard: the noise-aware comparison of a candidate with the plain
 * backbone on validation (sc_guard_compare). The whole-split AUCs come from
 * sc_metrics_compute; the standard error is recomputed here independently
 * (AUC by counting pairs over 10 contiguous blocks, sample standard deviation
 * of the paired block differences / sqrt(k)). Data: seeded synthetic labels
 * and scores, label ~ Bernoulli(sigmoid(t)), a score is sigmoid(t + noise). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/guard.h"
#include "train/metrics.h"

/* ---- a seeded generator of its own (the fixture must not move when the library's does) ---- */

static uint64_t g_state;

static uint64_t next_u64(void) { /* splitmix64 */
    uint64_t z = (g_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(void) { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

static double normal(void) { /* Box-Muller */
    double u = uniform01(), v = uniform01();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static float sigm(double x) { return (float)(1.0 / (1.0 + exp(-x))); }

enum { N = 5000 };

typedef struct {
    float label[N], base[N], cand[N];
    double truth[N];
} data;

/* Labels from a latent truth; base = truth + noise sb, candidate = truth + noise sc. */
static data *make(uint64_t seed, double sb, double sc) {
    data *d = calloc(1, sizeof *d);
    cr_assert(d);
    g_state = seed;
    for (int i = 0; i < N; i++) {
        d->truth[i] = 1.5 * normal();
        d->label[i] = uniform01() < sigm(d->truth[i]) ? 1.0f : 0.0f;
        d->base[i] = sigm(d->truth[i] + sb * normal());
        d->cand[i] = sigm(d->truth[i] + sc * normal());
    }
    return d;
}

/* AUC by its definition: over (positive, negative) pairs, 1 when the
 * positive scores higher, 1/2 on a tie; NAN with one class only. */
static double pair_auc(const float *label, const float *p, int64_t n) {
    double wins = 0, pairs = 0;
    for (int64_t i = 0; i < n; i++) {
        if (label[i] != 1.0f) continue;
        for (int64_t j = 0; j < n; j++) {
            if (label[j] != 0.0f) continue;
            wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
            pairs += 1;
        }
    }
    return pairs > 0 ? wins / pairs : NAN;
}

/* The standard error of the paired AUC difference over 10 contiguous blocks
 * of equal size (n a multiple of 10), one-class blocks left out; *k_out the
 * blocks used. */
static double block_se(const float *label, const float *pc, const float *pb, int64_t n, int *k_out) {
    cr_assert_eq(n % 10, 0);
    int64_t m = n / 10;
    double d[10];
    int k = 0;
    for (int b = 0; b < 10; b++) {
        double ac = pair_auc(label + b * m, pc + b * m, m), ab = pair_auc(label + b * m, pb + b * m, m);
        if (isnan(ac) || isnan(ab)) continue;
        d[k++] = ac - ab;
    }
    *k_out = k;
    if (k < 2) return NAN;
    double mean = 0, sq = 0;
    for (int i = 0; i < k; i++) mean += d[i] / k;
    for (int i = 0; i < k; i++) sq += (d[i] - mean) * (d[i] - mean);
    return sqrt(sq / (k - 1)) / sqrt((double)k);
}

static sc_guard_verdict compare(const data *d, const float *cand, const float *base, double z) {
    sc_guard_verdict v;
    memset(&v, 0xff, sizeof v); /* every field must be written */
    sc_error e = {0};
    cr_assert_eq(sc_guard_compare(d->label, cand, base, N, z, &v, &e), SC_OK, "%s", e.msg);
    return v;
}

Test(guard, identical_predictions_never_pass) {
    data *d = make(11, 1.0, 1.0);
    for (int k = 0; k < 2; k++) {
        const float *p = k ? d->cand : d->base;
        double zs[3] = {SC_GUARD_Z, 0.0, -1.0}; /* not even with a threshold at or below zero */
        for (int i = 0; i < 3; i++) {
            sc_guard_verdict v = compare(d, p, p, zs[i]);
            cr_assert_eq(v.diff, 0.0, "diff %.17g", v.diff);
            cr_assert_eq(v.se, 0.0, "se %.17g", v.se);
            cr_assert_eq(v.auc_candidate, v.auc_base);
            cr_assert_eq(v.pass, 0, "identical predictions passed with z = %g", zs[i]);
        }
    }
    free(d);
}

Test(guard, a_clearly_better_candidate_passes_and_diff_is_the_auc_difference) {
    data *d = make(12, 2.0, 0.5); /* same labels; the candidate's scores are far less noisy */
    sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z);
    sc_metrics mc, mb;
    cr_assert_eq(sc_metrics_compute(d->label, d->cand, NULL, N, &mc, NULL), SC_OK);
    cr_assert_eq(sc_metrics_compute(d->label, d->base, NULL, N, &mb, NULL), SC_OK);
    cr_assert_eq(v.auc_candidate, mc.auc, "%.17g vs %.17g", v.auc_candidate, mc.auc);
    cr_assert_eq(v.auc_base, mb.auc, "%.17g vs %.17g", v.auc_base, mb.auc);
    cr_assert_eq(v.diff, mc.auc - mb.auc, "%.17g vs %.17g", v.diff, mc.auc - mb.auc);
    /* and the AUCs are the pair-counting ones */
    cr_assert(fabs(v.auc_candidate - pair_auc(d->label, d->cand, N)) < 1e-12);
    cr_assert(fabs(v.auc_base - pair_auc(d->label, d->base, N)) < 1e-12);
    cr_assert_gt(v.diff, 0.05, "diff %g", v.diff);
    cr_assert_gt(v.se, 0.0);
    cr_assert_gt(v.diff, 3 * v.se, "diff %g, se %g: a clear gain should be several standard errors", v.diff, v.se);
    cr_assert_eq(v.pass, 1, "diff %g, se %g", v.diff, v.se);
    free(d);
}

Test(guard, a_worse_candidate_is_refused) {
    data *d = make(12, 2.0, 0.5);
    sc_guard_verdict better = compare(d, d->cand, d->base, SC_GUARD_Z);
    sc_guard_verdict worse = compare(d, d->base, d->cand, SC_GUARD_Z); /* the roles swapped */
    cr_assert_eq(worse.pass, 0, "diff %g, se %g", worse.diff, worse.se);
    cr_assert_lt(worse.diff, -0.05);
    cr_assert_eq(worse.diff, -better.diff);
    cr_assert(fabs(worse.se - better.se) < 1e-15, "the standard error is symmetric: %.17g vs %.17g", worse.se, better.se);
    /* a worse candidate passes under no threshold */
    for (double z = -5; z <= 5; z += 0.5) cr_assert_eq(compare(d, d->base, d->cand, z).pass, 0, "z = %g", z);
    free(d);
}

/* A candidate that is much better in half of the period and much worse in the
 * other half, a little better overall: a gain smaller than its own noise. */
Test(guard, a_tiny_gain_under_large_noise_is_refused) {
    data *d = make(13, 1.0, 1.0);
    g_state = 1313;
    for (int i = 0; i < N; i++) {
        int block = i / (N / SC_GUARD_BLOCKS);
        double s = block % 2 ? 1.3 : 0.3; /* odd blocks: noisier than the base (1.0), even ones: cleaner */
        d->cand[i] = sigm(d->truth[i] + s * normal());
    }
    sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z);
    /* the fixture: a small positive difference, blocks far apart */
    cr_assert_gt(v.diff, 0.0, "fixture: overall diff %g should be positive", v.diff);
    cr_assert_lt(v.diff, 0.01, "fixture: overall diff %g should be small", v.diff);
    int k;
    double se = block_se(d->label, d->cand, d->base, N, &k);
    cr_assert_eq(k, 10);
    cr_assert(fabs(v.se - se) < 1e-12, "se %.17g, recomputed %.17g", v.se, se);
    cr_assert_lt(v.diff, v.se, "diff %g, se %g", v.diff, v.se);
    cr_assert_eq(v.pass, 0, "a gain of %g with standard error %g passed", v.diff, v.se);
    /* the threshold is z standard errors: just below diff/se it passes, just above it does not */
    double r = v.diff / v.se;
    cr_assert_eq(compare(d, d->cand, d->base, 0.0).pass, 1);
    cr_assert_eq(compare(d, d->cand, d->base, 0.99 * r).pass, 1, "z = %g", 0.99 * r);
    cr_assert_eq(compare(d, d->cand, d->base, 1.01 * r).pass, 0, "z = %g", 1.01 * r);
    /* the other way round it is a small loss: refused whatever the threshold, a negative one too */
    sc_guard_verdict w = compare(d, d->base, d->cand, -1.0);
    cr_assert(w.diff < 0 && w.diff > -w.se, "diff %g, se %g", w.diff, w.se);
    cr_assert_eq(w.pass, 0, "a loss of %g passed", w.diff);
    free(d);
}

Test(guard, se_is_the_standard_error_of_the_block_differences) {
    uint64_t seeds[3] = {21, 22, 23};
    double noise[3][2] = {{1.0, 0.8}, {0.6, 1.4}, {2.0, 0.3}};
    for (int t = 0; t < 3; t++) {
        data *d = make(seeds[t], noise[t][0], noise[t][1]);
        sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z);
        int k;
        double se = block_se(d->label, d->cand, d->base, N, &k);
        cr_assert_eq(k, 10);
        cr_assert(fabs(v.se - se) < 1e-12, "case %d: se %.17g, recomputed %.17g", t, v.se, se);
        cr_assert_eq(v.pass, v.diff > 0 && v.diff > SC_GUARD_Z * v.se, "case %d: pass %d, diff %g, se %g", t, v.pass,
                     v.diff, v.se);
        free(d);
    }
}

Test(guard, one_class_blocks_are_left_out_of_the_standard_error) {
    data *d = make(31, 1.0, 0.7);
    for (int i = 0; i < N / 10; i++) d->label[i] = 0.0f;       /* block 0: negatives only */
    for (int i = 3 * N / 10; i < 4 * N / 10; i++) d->label[i] = 1.0f; /* block 3: positives only */
    sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z);
    int k;
    double se = block_se(d->label, d->cand, d->base, N, &k);
    cr_assert_eq(k, 8);
    cr_assert(isfinite(v.se) && fabs(v.se - se) < 1e-12, "se %.17g, recomputed over 8 blocks %.17g", v.se, se);
    free(d);
}

/* Labels in time order with every block one class: no block measures the
 * noise, so the standard error is the whole difference and even a perfect
 * candidate does not pass. */
Test(guard, without_two_usable_blocks_nothing_passes) {
    data *d = make(41, 2.0, 0.5);
    for (int i = 0; i < N; i++) {
        d->label[i] = i >= N / 2 ? 1.0f : 0.0f;
        d->cand[i] = d->label[i] ? 0.9f : 0.1f; /* perfect */
    }
    sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z);
    cr_assert_eq(v.auc_candidate, 1.0);
    cr_assert_gt(v.diff, 0.0);
    cr_assert_eq(v.se, fabs(v.diff));
    cr_assert_eq(v.pass, 0);
    free(d);
}

Test(guard, one_class_splits_and_bad_input) {
    data *d = make(51, 1.0, 0.5);
    for (int i = 0; i < N; i++) d->label[i] = 1.0f;
    sc_guard_verdict v = compare(d, d->cand, d->base, SC_GUARD_Z); /* AUC undefined: no verdict for the candidate */
    cr_assert(isnan(v.diff));
    cr_assert_eq(v.pass, 0);
    sc_error e = {0};
    cr_assert_neq(sc_guard_compare(d->label, d->cand, d->base, 0, SC_GUARD_Z, &v, &e), SC_OK);
    d->label[7] = 2.0f;
    cr_assert_neq(sc_guard_compare(d->label, d->cand, d->base, N, SC_GUARD_Z, &v, &e), SC_OK);
    cr_assert(strstr(e.msg, "row 7"), "%s", e.msg);
    d->label[7] = 0.0f;
    d->base[9] = NAN;
    cr_assert_neq(sc_guard_compare(d->label, d->cand, d->base, N, SC_GUARD_Z, &v, &e), SC_OK);
    cr_assert(strstr(e.msg, "row 9"), "%s", e.msg);
    /* tiny splits: blocks of fewer than two rows are skipped, the verdict stays consistent */
    float lab[13] = {0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1}, pc[13], pb[13];
    for (int i = 0; i < 13; i++) {
        pc[i] = lab[i] ? 0.6f + 0.01f * i : 0.4f - 0.01f * i;
        pb[i] = 0.5f + 0.02f * (i % 5);
    }
    cr_assert_eq(sc_guard_compare(lab, pc, pb, 13, SC_GUARD_Z, &v, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(v.auc_candidate, 1.0);
    cr_assert(isfinite(v.se) && v.se >= 0, "se %g", v.se);
    cr_assert_eq(v.pass, v.diff > 0 && v.diff > SC_GUARD_Z * v.se);
    free(d);
}
