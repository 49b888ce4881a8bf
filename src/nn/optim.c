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

/* restrict: the four spans never overlap, so the loops vectorise (the same
 * IEEE operations per element, so the same bits as the scalar loop) */
static void update_span(const upd_consts *k, float *restrict w, const float *restrict g, float *restrict s1,
                        float *restrict s2, int64_t n) {
    if (k->kind == SC_OPTIM_ADAM) {
        const float b1 = k->b1, b2 = k->b2, wd = k->wd, lr = k->lr, c1 = k->c1, c2 = k->c2, eps = k->eps;
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] + wd * w[j];
            float m = b1 * s1[j] + (1.0f - b1) * gj;
            float v = b2 * s2[j] + (1.0f - b2) * gj * gj;
            s1[j] = m;
            s2[j] = v;
            /* PyTorch: w -= lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) */
            w[j] -= lr * (m / c1) / (sqrtf(v) / c2 + eps);
        }
    } else {
        const float wd = k->wd, lr = k->lr, eps = k->eps;
        for (int64_t j = 0; j < n; j++) {
            float gj = g[j] + wd * w[j];
            float a = s1[j] + gj * gj;
            s1[j] = a;
            w[j] -= lr * gj / (sqrtf(a) + eps);
        }
    }
}

/* One step's work as one stream of values: every dense parameter's values,
 * then every sparse parameter's touched rows (row r of the list: values
 * r*cols .. of its gradient), cut into spans of SPAN values over
 * sc_parallel_for. Every value's update is independent of the others, so
 * the cut and the threads never change the result. */
enum { SPAN = 16384 };

typedef struct {
    const sc_optim *o;
    const upd_consts *k; /* per parameter (weight decay differs) */
    const int64_t *start; /* (n_params + 1) first value of each parameter in the stream */
    int64_t total;
    int tasks;
} step_ctx;

static void update_range(const sc_optim *o, const upd_consts *k, int i, int64_t lo, int64_t hi) {
    const sc_param *p = &o->params[i];
    int per = o->cfg.kind == SC_OPTIM_ADAM ? 2 : 1;
    float *s1 = o->states[i * per].data;
    float *s2 = per == 2 ? o->states[i * per + 1].data : NULL;
    if (!p->sparse) {
        update_span(k, p->data + lo, p->grad + lo, s1 + lo, s2 ? s2 + lo : NULL, hi - lo);
        return;
    }
    int C = p->cols;
    while (lo < hi) { /* a piece of touched row r at a time */
        int64_t r = lo / C, c = lo % C, n = C - c < hi - lo ? C - c : hi - lo;
        int64_t off = (int64_t)p->touched[r] * C + c;
        update_span(k, p->data + off, p->grad + lo, s1 + off, s2 ? s2 + off : NULL, n);
        lo += n;
    }
}

static void step_task(void *vc, int t) {
    const step_ctx *c = vc;
    int64_t lo = c->total * t / c->tasks, hi = c->total * (t + 1) / c->tasks;
    for (int i = 0; i < c->o->n_params && lo < hi; i++) {
        int64_t a = c->start[i], b = c->start[i + 1];
        if (b <= lo) continue;
        int64_t e = b < hi ? b : hi;
        update_range(c->o, &c->k[i], i, lo - a, e - a);
        lo = e;
    }
}

int sc_optim_step(sc_optim *o, float lr, sc_error *err) {
    if (!isfinite(lr) || lr < 0) return sc_fail(err, SC_EINVAL, "optimizer: bad learning rate %g", lr);
    o->step++;
    upd_consts k0 = {o->cfg.kind, lr, o->cfg.beta1, o->cfg.beta2, o->cfg.eps, 0, 1, 1};
    if (o->cfg.kind == SC_OPTIM_ADAM) {
        k0.c1 = 1.0f - (float)pow(o->cfg.beta1, (double)o->step);
        k0.c2 = (float)sqrt(1.0 - pow(o->cfg.beta2, (double)o->step));
    }
    upd_consts k_small[16];
    int64_t start_small[17];
    upd_consts *k = o->n_params <= 16 ? k_small : sc_malloc((size_t)o->n_params * sizeof *k);
    int64_t *start = o->n_params <= 16 ? start_small : sc_malloc((size_t)(o->n_params + 1) * sizeof *start);
    if (!k || !start) {
        if (k != k_small) sc_free(k);
        if (start != start_small) sc_free(start);
        return sc_fail(err, SC_ENOMEM, "optimizer: out of memory");
    }
    int64_t total = 0;
    for (int i = 0; i < o->n_params; i++) {
        sc_param *p = &o->params[i];
        k[i] = k0;
        k[i].wd = p->weight_decay ? o->cfg.weight_decay : 0.0f;
        start[i] = total;
        if (!p->grad) continue;
        if (p->sparse) {
            for (int64_t r = 0; r < p->n_touched; r++)
                if (p->touched[r] < 0 || p->touched[r] >= p->rows) {
                    int32_t row = p->touched[r];
                    if (k != k_small) sc_free(k);
                    if (start != start_small) sc_free(start);
                    return sc_fail(err, SC_EINTERNAL, "optimizer: '%s' touched row %lld out of range", p->name,
                                   (long long)row);
                }
            total += p->n_touched * p->cols;
        } else {
            total += p->size;
        }
    }
    start[o->n_params] = total;
    int64_t tasks = (total + SPAN - 1) / SPAN;
    int nt = o->cfg.n_threads < 1 ? 1 : o->cfg.n_threads;
    if (nt == 1 || tasks < 2) tasks = 1;
    step_ctx c = {o, k, start, total, (int)(tasks < (1 << 20) ? tasks : (1 << 20))};
    sc_parallel_for(c.tasks, nt, step_task, &c);
    if (k != k_small) sc_free(k);
    if (start != start_small) sc_free(start);
    return SC_OK;
}
