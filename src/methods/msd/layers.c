/* MSD fusion layer and adaptor versioning (see methods/msd/layers.h).
 * Dimension letters: B rows, W history slots, D embedding size. */
#include "methods/msd/layers.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"

static float sigmoidf_(float z) { return z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z)); }

void sc_msd_fuse_forward(float *P, float *w, float *wsum, const float *V, const float *lf, const float *ab, int B,
                         int W, int D) {
    for (int i = 0; i < B; i++) {
        float *p = P + (int64_t)i * D;
        memset(p, 0, sizeof(float) * (size_t)D);
        float s = 0.0f;
        for (int h = 0; h < W; h++) {
            int64_t k = (int64_t)i * W + h;
            if (lf[k] < 0) {
                w[k] = 0.0f;
                continue;
            }
            w[k] = sigmoidf_(ab[0] * lf[k] + ab[1]);
            s += w[k];
            const float *v = V + k * D;
            for (int d = 0; d < D; d++) p[d] += w[k] * v[d];
        }
        wsum[i] = s;
        if (s > 0)
            for (int d = 0; d < D; d++) p[d] /= s;
    }
}

void sc_msd_fuse_backward(float *dV, float *dab, const float *dP, const float *P, const float *w, const float *wsum,
                          const float *V, const float *lf, int B, int W, int D) {
    for (int i = 0; i < B; i++) {
        const float *dp = dP + (int64_t)i * D, *p = P + (int64_t)i * D;
        float s = wsum[i];
        for (int h = 0; h < W; h++) {
            int64_t k = (int64_t)i * W + h;
            float *dv = dV + k * D;
            if (lf[k] < 0 || s <= 0) {
                memset(dv, 0, sizeof(float) * (size_t)D);
                continue;
            }
            /* p = sum w v / s: dp/dv_h = w_h / s; dp/dw_h = (v_h - p) / s */
            const float *v = V + k * D;
            float dw = 0.0f;
            for (int d = 0; d < D; d++) {
                dv[d] = dp[d] * w[k] / s;
                dw += dp[d] * (v[d] - p[d]);
            }
            dw /= s;
            float dz = dw * w[k] * (1.0f - w[k]);
            dab[0] += dz * lf[k];
            dab[1] += dz;
        }
    }
}

uint64_t sc_msd_weights_hash(const float *const *tensors, const int64_t *sizes, int n) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) return 0;
    XXH3_64bits_reset(st);
    for (int i = 0; i < n; i++) {
        XXH3_64bits_update(st, &sizes[i], sizeof sizes[i]);
        XXH3_64bits_update(st, tensors[i], (size_t)sizes[i] * sizeof(float));
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

int sc_msd_n_fields(int levels) {
    return !!(levels & SC_MSD_ITEM) + !!(levels & SC_MSD_USER) + !!(levels & SC_MSD_FUSION);
}

void sc_msd_keep_free(sc_msd_keep *k) {
    sc_free(k->V);
    memset(k, 0, sizeof *k);
}

/* Room for B rows of W slots in k (one allocation). */
static int keep_reserve(sc_msd_keep *k, int B, int W, int D, sc_error *err) {
    k->B = B;
    k->W = W;
    k->D = D;
    int64_t need = (int64_t)B * W * D + 2 * (int64_t)B * W + B + (int64_t)B * D;
    if (need <= k->cap) goto carve;
    sc_free(k->V);
    k->V = sc_malloc((size_t)(need ? need : 1) * sizeof(float));
    if (!k->V) {
        k->cap = 0;
        return sc_fail(err, SC_ENOMEM, "MSD fusion: out of memory for %d rows", B);
    }
    k->cap = need;
carve:
    k->lf = k->V + (int64_t)B * W * D;
    k->w = k->lf + (int64_t)B * W;
    k->wsum = k->w + (int64_t)B * W;
    k->P = k->wsum + B;
    return SC_OK;
}

int sc_msd_compose(int levels, int D, int B, int W, const float *const *item_vec, const float *const *user_vec,
                   const float *const *hist_vec, const float *hist_lf, const float *ab, float *extra,
                   sc_msd_keep *keep, sc_error *err) {
    int K = sc_msd_n_fields(levels), off = 0;
    size_t row = sizeof(float) * (size_t)D;
    if (levels & SC_MSD_ITEM) {
        for (int i = 0; i < B; i++) {
            float *dst = extra + (int64_t)i * K * D + off;
            if (item_vec[i]) memcpy(dst, item_vec[i], row);
            else memset(dst, 0, row);
        }
        off += D;
    }
    if (levels & SC_MSD_USER) {
        for (int i = 0; i < B; i++) {
            float *dst = extra + (int64_t)i * K * D + off;
            if (user_vec[i]) memcpy(dst, user_vec[i], row);
            else memset(dst, 0, row);
        }
        off += D;
    }
    if (levels & SC_MSD_FUSION) {
        sc_msd_keep local = {0}, *k = keep ? keep : &local;
        int rc = keep_reserve(k, B, W, D, err);
        if (rc) return rc;
        for (int64_t j = 0; j < (int64_t)B * W; j++) {
            if (hist_vec[j]) {
                memcpy(k->V + j * D, hist_vec[j], row);
                k->lf[j] = hist_lf[j] < 0 ? 0.0f : hist_lf[j];
            } else {
                memset(k->V + j * D, 0, row);
                k->lf[j] = -1.0f;
            }
        }
        sc_msd_fuse_forward(k->P, k->w, k->wsum, k->V, k->lf, ab, B, W, D);
        for (int i = 0; i < B; i++) memcpy(extra + (int64_t)i * K * D + off, k->P + (int64_t)i * D, row);
        if (!keep) sc_msd_keep_free(&local);
    }
    return SC_OK;
}
