/* Adam and Adagrad with lazy sparse updates; see optim.h. */
#include "nn/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"

typedef struct optim_state {
    char name[96];
    float *data; /* (size) */
    int64_t size;
} optim_state;

struct sc_optim {
    sc_optim_config cfg;
    sc_param *params;
    int n_params;
    int64_t step;
    optim_state *states; /* Adam: 2 per param (m, v); Adagrad: 1 (sum) */
    int n_states;
};

void sc_optim_config_default(sc_optim_config *cfg, int kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = kind == SC_OPTIM_ADAGRAD ? 1e-10f : 1e-8f;
    cfg->weight_decay = 0.0f;
    cfg->initial_accumulator = 0.0f;
    cfg->n_threads = 1;
}

int sc_optim_create(sc_optim **out, const sc_optim_config *cfg, sc_param *params, int n_params,
                    sc_error *err) {
    *out = NULL;
    if (cfg->kind != SC_OPTIM_ADAM && cfg->kind != SC_OPTIM_ADAGRAD)
        return sc_fail(err, SC_EINVAL, "optimizer: unknown kind %d", cfg->kind);
    if (cfg->kind == SC_OPTIM_ADAM &&
        !(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1))
        return sc_fail(err, SC_EINVAL, "optimizer: Adam betas must be in [0, 1), got %g, %g",
                       cfg->beta1, cfg->beta2);
    if (!(cfg->eps > 0) || !(cfg->weight_decay >= 0) || !(cfg->initial_accumulator >= 0))
        return sc_fail(err, SC_EINVAL,
                       "optimizer: eps must be > 0, weight_decay and initial_accumulator >= 0");
    if (n_params < 0 || (n_params > 0 && !params))
        return sc_fail(err, SC_EINVAL, "optimizer: no parameters");
    sc_optim *o = sc_calloc(1, sizeof *o);
    if (!o) return sc_fail(err, SC_ENOMEM, "optimizer: out of memory");
    o->cfg = *cfg;
    o->params = params;
    o->n_params = n_params;
    int per = cfg->kind == SC_OPTIM_ADAM ? 2 : 1;
    o->n_states = per * n_params;
    o->states = sc_calloc((size_t)(o->n_states > 0 ? o->n_states : 1), sizeof(optim_state));
    if (!o->states) {
        sc_optim_free(o);
        return sc_fail(err, SC_ENOMEM, "optimizer: out of memory");
    }
    for (int i = 0; i < n_params; i++) {
        sc_param *p = &params[i];
        if (p->size <= 0 || !p->data || (p->sparse && (p->cols <= 0 || p->rows * p->cols != p->size))) {
            sc_optim_free(o);
            return sc_fail(err, SC_EINVAL, "optimizer: parameter '%s' has an invalid shape", p->name);
        }
        for (int k = 0; k < per; k++) {
            optim_state *s = &o->states[i * per + k];
            const char *suffix = cfg->kind == SC_OPTIM_ADAGRAD ? "adagrad_sum" : k == 0 ? "adam_m" : "adam_v";
            snprintf(s->name, sizeof s->name, "%s.%s", p->name, suffix);
            s->size = p->size;
            s->data = sc_calloc((size_t)p->size, sizeof(float));
            if (!s->data) {
                sc_optim_free(o);
                return sc_fail(err, SC_ENOMEM, "optimizer: out of memory for state of '%s'", p->name);
            }
            if (cfg->kind == SC_OPTIM_ADAGRAD && cfg->initial_accumulator > 0)
                for (int64_t j = 0; j < p->size; j++) s->data[j] = cfg->initial_accumulator;
        }
    }
    *out = o;
    return SC_OK;
}

void sc_optim_free(sc_optim *o) {
    if (!o) return;
    if (o->states)
        for (int i = 0; i < o->n_states; i++) sc_free(o->states[i].data);
    sc_free(o->states);
    sc_free(o);
}

int64_t sc_optim_get_step(const sc_optim *o) { return o->step; }
void sc_optim_set_step(sc_optim *o, int64_t step) { o->step = step; }
int sc_optim_n_states(const sc_optim *o) { return o->n_states; }

int sc_optim_state(sc_optim *o, int i, const char **name, float **data, int64_t *size) {
    if (i < 0 || i >= o->n_states) return -1;
    if (name) *name = o->states[i].name;
    if (data) *data = o->states[i].data;
    if (size) *size = o->states[i].size;
    return 0;
}

/* Update n contiguous values w with gradients g and state s1 (m or sum), s2 (v). */
typedef struct {
    int kind;
    float lr, b1, b2, eps, wd, c1, c2;
} upd_consts;

static void update_span(const upd_consts *k, float *w, const float *g, float *s1, float *s2,
                        int64_t n) {
    if (k->kind == SC_OPTIM_ADAM) {
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] + k->wd * w[j];
            s1[j] = k->b1 * s1[j] + (1.0f - k->b1) * gj;
            s2[j] = k->b2 * s2[j] + (1.0f - k->b2) * gj * gj;
            /* PyTorch: w -= lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) */
            w[j] -= k->lr * (s1[j] / k->c1) / (sqrtf(s2[j]) / k->c2 + k->eps);
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] + k->wd * w[j];
            s1[j] += gj * gj;
            w[j] -= k->lr * gj / (sqrtf(s1[j]) + k->eps);
        }
    }
}

typedef struct {
    const upd_consts *k;
    sc_param *p;
    float *s1, *s2;
    int tasks;
} dense_ctx;

static void dense_task(void *vc, int t) {
    dense_ctx *c = vc;
    int64_t n = c->p->size, base = n / c->tasks, rem = n % c->tasks;
    int64_t lo = t * base + (t < rem ? t : rem), hi = lo + base + (t < rem ? 1 : 0);
    update_span(c->k, c->p->data + lo, c->p->grad + lo, c->s1 + lo, c->s2 ? c->s2 + lo : NULL,
                hi - lo);
}

int sc_optim_step(sc_optim *o, float lr, sc_error *err) {
    if (!isfinite(lr) || lr < 0) return sc_fail(err, SC_EINVAL, "optimizer: bad learning rate %g", lr);
    o->step++;
    upd_consts k = {o->cfg.kind, lr, o->cfg.beta1, o->cfg.beta2, o->cfg.eps, 0, 1, 1};
    if (o->cfg.kind == SC_OPTIM_ADAM) {
        k.c1 = 1.0f - (float)pow(o->cfg.beta1, (double)o->step);
        k.c2 = (float)sqrt(1.0 - pow(o->cfg.beta2, (double)o->step));
    }
    int per = o->cfg.kind == SC_OPTIM_ADAM ? 2 : 1;
    for (int i = 0; i < o->n_params; i++) {
        sc_param *p = &o->params[i];
        float *s1 = o->states[i * per].data;
        float *s2 = per == 2 ? o->states[i * per + 1].data : NULL;
        k.wd = p->weight_decay ? o->cfg.weight_decay : 0.0f;
        if (!p->grad) continue;
        if (p->sparse) {
            int C = p->cols;
            for (int64_t r = 0; r < p->n_touched; r++) {
                int64_t row = p->touched[r];
                if (row < 0 || row >= p->rows)
                    return sc_fail(err, SC_EINTERNAL, "optimizer: '%s' touched row %lld out of range",
                                   p->name, (long long)row);
                int64_t off = row * C;
                update_span(&k, p->data + off, p->grad + r * C, s1 + off, s2 ? s2 + off : NULL, C);
            }
        } else {
            int tasks = p->size >= (1 << 16) && o->cfg.n_threads > 1 ? o->cfg.n_threads : 1;
            dense_ctx c = {&k, p, s1, s2, tasks};
            sc_parallel_for(tasks, o->cfg.n_threads, dense_task, &c);
        }
    }
    return SC_OK;
}
