#include "data/gen_criteo.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"

#define NI 13
#define NC 26

/* Cardinalities of the order of Criteo Kaggle's C1..C26 (scaled down for
 * the largest ones so a few million rows still repeat values). */
static const int64_t card[NC] = {1400,   560,   400000, 250000, 300, 24,    12000,  630,    3,   90000, 5500,   350000, 3200,
                                 27,     14000, 300000, 10,     5600, 2100,  4,      330000, 18,  16,    110000, 100,    80000};
/* Fraction of empty cells per field (Criteo has many in C19..C26 and I1, I10, I12). */
static const double cmiss[NC] = {0,    0,    0.03, 0.03, 0.01, 0.12, 0,    0,    0,    0,    0,    0.03, 0,
                                 0,    0,    0.03, 0,    0,    0.44, 0.44, 0.03, 0.76, 0,    0.03, 0.44, 0.44};
static const double imiss[NI] = {0.45, 0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.77, 0.22};
/* log-normal parameters of the integer features */
static const double imu[NI] = {0.8, 2.0, 2.3, 1.7, 8.0, 4.0, 1.8, 2.4, 3.8, 0.3, 1.0, 0.5, 1.8};
static const double isd[NI] = {1.2, 2.0, 1.3, 1.0, 2.0, 1.7, 1.4, 1.0, 1.4, 0.7, 0.9, 1.2, 1.1};
/* fields whose categories carry hidden weights, and their spread */
static const double cw[NC] = {0.5, 0.4, 0.6, 0, 0.3, 0.4, 0.5, 0, 0.3, 0, 0, 0.6, 0, 0.4, 0, 0, 0.5, 0, 0, 0, 0, 0.3, 0, 0, 0, 0};
static const double iw[NI] = {0.25, 0, 0, 0, 0, 0, -0.2, 0, 0, 0, 0.3, 0, 0};

static double unif(sc_rng *r) { return (double)(sc_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* A weight for category `rank` of field f: approximately N(0, 1) from a hash. */
static double hidden_weight(int f, int64_t rank, uint64_t seed) {
    uint64_t key[2] = {(uint64_t)f, (uint64_t)rank};
    uint64_t h = XXH64(key, sizeof key, seed ^ 0x5eed);
    double s = 0;
    for (int k = 0; k < 4; k++) s += (double)((h >> (16 * k)) & 0xFFFF) / 65535.0;
    return (s - 2.0) * 1.7320508; /* sum of 4 uniforms: variance 1/3 */
}

static const char hexd[] = "0123456789abcdef";

int sc_gen_criteo(const char *path, int64_t rows, uint64_t seed, int64_t *positives, sc_error *err) {
    if (rows < 0) return sc_fail(err, SC_EINVAL, "gen-criteo: rows must not be negative");
    sc_atomic_file f;
    int rc = sc_atomic_open(&f, path, err);
    if (rc) return rc;
    size_t cap = 8u << 20;
    char *buf = sc_malloc(cap);
    if (!buf) {
        sc_atomic_abort(&f);
        return sc_fail(err, SC_ENOMEM, "gen-criteo: out of memory");
    }
    sc_rng rng;
    sc_rng_seed(&rng, seed);
    double lncard[NC];
    for (int c = 0; c < NC; c++) lncard[c] = log((double)card[c] + 1.0);
    /* the bias that puts the click rate near 25% for these weights */
    const double bias = -1.75;
    int64_t pos = 0;
    size_t w = 0;
    sc_progress prog;
    sc_progress_begin(&prog, "gen-criteo", rows, "rows");
    for (int64_t r = 0; r < rows && !rc; r++) {
        char line[640];
        size_t n = 2; /* label written last into line[0] */
        double logit = bias;
        for (int i = 0; i < NI; i++) {
            line[n++] = '\t';
            if (unif(&rng) < imiss[i]) continue;
            /* log-normal through the sum of uniforms (cheap, smooth enough) */
            double z = (unif(&rng) + unif(&rng) + unif(&rng) - 1.5) * 2.0;
            double v = floor(exp(imu[i] + isd[i] * z)) - (i == 1 ? 3 : 0);
            if (iw[i] != 0) logit += iw[i] * (log1p(v > 0 ? v : 0) - imu[i]);
            n += (size_t)snprintf(line + n, 24, "%lld", (long long)v);
        }
        for (int c = 0; c < NC; c++) {
            line[n++] = '\t';
            double u = unif(&rng);
            if (u < cmiss[c]) continue;
            /* Zipf-like rank: P(rank) ~ 1 / (rank + 1) */
            int64_t rank = (int64_t)exp(unif(&rng) * lncard[c]) - 1;
            if (rank >= card[c]) rank = card[c] - 1;
            if (cw[c] != 0) logit += cw[c] * hidden_weight(c, rank, seed);
            uint64_t key[2] = {(uint64_t)c + 1, (uint64_t)rank};
            uint32_t h = (uint32_t)XXH64(key, sizeof key, 0xC417E0);
            for (int k = 7; k >= 0; k--) line[n++] = hexd[(h >> (4 * k)) & 15];
        }
        line[n++] = '\n';
        int y = unif(&rng) < 1.0 / (1.0 + exp(-logit));
        pos += y;
        line[0] = (char)('0' + y);
        line[1] = '\t';
        /* line[0..1] hold the label and the first tab: skip the extra tab at 2 */
        memmove(line + 1, line + 2, n - 2);
        n--;
        if (w + n > cap) {
            rc = sc_atomic_write(&f, buf, w, err);
            w = 0;
        }
        memcpy(buf + w, line, n);
        w += n;
        if ((r & 0xFFFFF) == 0) {
            sc_progress_update(&prog, r, NULL);
            if (sc_interrupted()) rc = sc_fail(err, SC_EINTERRUPTED, "gen-criteo: interrupted; nothing was written");
        }
    }
    sc_progress_end(&prog);
    if (!rc) rc = sc_atomic_write(&f, buf, w, err);
    sc_free(buf);
    if (rc) {
        sc_atomic_abort(&f);
        return rc;
    }
    rc = sc_atomic_commit(&f, err);
    if (!rc && positives) *positives = pos;
    return rc;
}
