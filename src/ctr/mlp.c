#include "ctr/mlp.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "nn/layers.h"

int sc_mlp_create(sc_mlp **out, const char *name, const int *dims, int n_layers, int relu_last, uint64_t seed,
                  sc_error *err) {
    *out = NULL;
    if (n_layers < 1 || n_layers > SC_MAX_LAYERS)
        return sc_fail(err, SC_EINVAL, "mlp %s: %d layers, expected 1..%d", name, n_layers, SC_MAX_LAYERS);
    sc_mlp *m = sc_calloc(1, sizeof *m);
    if (!m) return sc_fail(err, SC_ENOMEM, "out of memory");
    snprintf(m->name, sizeof m->name, "%s", name);
    m->n_layers = n_layers;
    m->relu_last = relu_last;
    int64_t total = 0;
    for (int l = 0; l <= n_layers; l++) {
        if (dims[l] < 1 || dims[l] > (1 << 20)) {
            sc_free(m);
            return sc_fail(err, SC_EINVAL, "mlp %s: layer size %d out of range", name, dims[l]);
        }
        m->dims[l] = dims[l];
    }
    for (int l = 0; l < n_layers; l++) total += (int64_t)dims[l + 1] * dims[l] + dims[l + 1];
    m->weights = sc_calloc((size_t)total, sizeof(float));
    m->grads = sc_calloc((size_t)total, sizeof(float));
    if (!m->weights || !m->grads) {
        sc_mlp_free(m);
        return sc_fail(err, SC_ENOMEM, "out of memory for mlp %s", name);
    }
    sc_rng rng;
    sc_rng_seed(&rng, seed);
    int64_t off = 0;
    for (int l = 0; l < n_layers; l++) {
        int O = dims[l + 1], C = dims[l];
        sc_param *w = &m->params[2 * l], *b = &m->params[2 * l + 1];
        snprintf(w->name, sizeof w->name, "%s.%d.weight", name, l);
        snprintf(b->name, sizeof b->name, "%s.%d.bias", name, l);
        w->data = m->weights + off;
        w->grad = m->grads + off;
        w->size = (int64_t)O * C;
        w->rows = O;
        w->cols = C;
        off += w->size;
        b->data = m->weights + off;
        b->grad = m->grads + off;
        b->size = O;
        b->rows = 1;
        b->cols = O;
        off += O;
        /* Xavier-normal, as PyTorch's nn.init.xavier_normal_ */
        float std = sqrtf(2.0f / (float)(O + C));
        for (int64_t i = 0; i < w->size; i++) w->data[i] = std * sc_rng_normal(&rng);
    }
    *out = m;
    return SC_OK;
}

void sc_mlp_free(sc_mlp *m) {
    if (!m) return;
    sc_free(m->weights);
    sc_free(m->grads);
    for (int l = 0; l <= m->n_layers; l++) sc_free(m->acts[l]);
    sc_free(m->dacts[0]);
    sc_free(m->dacts[1]);
    sc_free(m);
}

static int ensure_cap(sc_mlp *m, int B, sc_error *err) {
    if (B <= m->cap) return SC_OK;
    int maxd = 0;
    for (int l = 0; l <= m->n_layers; l++) maxd = m->dims[l] > maxd ? m->dims[l] : maxd;
    for (int l = 1; l <= m->n_layers; l++) {
        sc_free(m->acts[l]);
        m->acts[l] = sc_malloc((size_t)B * m->dims[l] * sizeof(float));
        if (!m->acts[l]) return sc_fail(err, SC_ENOMEM, "out of memory for mlp %s", m->name);
    }
    for (int i = 0; i < 2; i++) {
        sc_free(m->dacts[i]);
        m->dacts[i] = sc_malloc((size_t)B * maxd * sizeof(float));
        if (!m->dacts[i]) return sc_fail(err, SC_ENOMEM, "out of memory for mlp %s", m->name);
    }
    m->cap = B;
    return SC_OK;
}

int sc_mlp_forward(sc_mlp *m, const float *x, int B, const float **out, sc_error *err) {
    int rc = ensure_cap(m, B, err);
    if (rc) return rc;
    m->input = x;
    m->B = B;
    const float *in = x;
    for (int l = 0; l < m->n_layers; l++) {
        sc_linear_forward(m->acts[l + 1], in, m->params[2 * l].data, m->params[2 * l + 1].data, B, m->dims[l],
                          m->dims[l + 1]);
        if (l + 1 < m->n_layers || m->relu_last)
            sc_relu_forward(m->acts[l + 1], m->acts[l + 1], (int64_t)B * m->dims[l + 1], 1);
        in = m->acts[l + 1];
    }
    *out = in;
    return SC_OK;
}

void sc_mlp_backward(sc_mlp *m, const float *dout, float *dx) {
    int B = m->B, L = m->n_layers;
    int64_t total = 0;
    for (int l = 0; l < L; l++) total += m->params[2 * l].size + m->params[2 * l + 1].size;
    memset(m->grads, 0, (size_t)total * sizeof(float));
    /* d holds dL/d(output of layer l) */
    float *d = m->dacts[0];
    memcpy(d, dout, (size_t)B * m->dims[L] * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        if (l + 1 < L || m->relu_last) sc_relu_backward(d, d, m->acts[l + 1], (int64_t)B * m->dims[l + 1], 1);
        const float *in = l == 0 ? m->input : m->acts[l];
        float *dprev = NULL;
        if (l > 0) {
            dprev = d == m->dacts[0] ? m->dacts[1] : m->dacts[0];
            memset(dprev, 0, (size_t)B * m->dims[l] * sizeof(float));
        } else {
            dprev = dx; /* may be NULL: not needed */
        }
        sc_linear_backward(dprev, m->params[2 * l].grad, m->params[2 * l + 1].grad, d, in, m->params[2 * l].data,
                           B, m->dims[l], m->dims[l + 1]);
        if (l > 0) d = dprev;
    }
}

sc_param *sc_mlp_params(sc_mlp *m, int *n) {
    *n = 2 * m->n_layers;
    return m->params;
}
