/* The data-parallel layer without ranks (tests/mpi_tests.sh runs it over
 * 1-3 ranks): the union of sparse rows, the arithmetic it relies on (slices'
 * mean-loss gradients weighted by their share of the batch add up to the
 * batch's gradient, dense and sparse), and the one-process meaning of every
 * call. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
#include "dist/dist.h"
#include "nn/layers.h"
#include "nn/optim.h"

Test(dist, union_sums_rows_in_order_of_first_appearance) {
    sc_row_union u;
    cr_assert_eq(sc_row_union_init(&u, 10, 2, NULL), 0);
    sc_row_union_begin(&u);
    int32_t a[3] = {4, 0, 7}, b[2] = {7, 2};
    float ga[6] = {1, 2, 3, 4, 5, 6}, gb[4] = {10, 20, 30, 40};
    cr_assert_eq(sc_row_union_add(&u, a, ga, 3, NULL), 0);
    cr_assert_eq(sc_row_union_add(&u, b, gb, 2, NULL), 0);
    cr_assert_eq(u.n, 4);
    int32_t want_ids[4] = {4, 0, 7, 2};
    float want[8] = {1, 2, 3, 4, 15, 26, 30, 40};
    for (int i = 0; i < 4; i++) cr_assert_eq(u.ids[i], want_ids[i]);
    for (int i = 0; i < 8; i++) cr_assert_float_eq(u.grad[i], want[i], 0, "grad[%d] = %g", i, u.grad[i]);
    /* a new step forgets the old union */
    sc_row_union_begin(&u);
    cr_assert_eq(sc_row_union_add(&u, b, gb, 2, NULL), 0);
    cr_assert_eq(u.n, 2);
    cr_assert_float_eq(u.grad[0], 10, 0);
    sc_row_union_free(&u);
}

Test(dist, union_grows_and_rejects_rows_outside_the_table) {
    sc_row_union u;
    cr_assert_eq(sc_row_union_init(&u, 5000, 1, NULL), 0);
    sc_row_union_begin(&u);
    int32_t ids[3000];
    float g[3000];
    for (int i = 0; i < 3000; i++) {
        ids[i] = 4999 - i;
        g[i] = (float)i;
    }
    cr_assert_eq(sc_row_union_add(&u, ids, g, 3000, NULL), 0);
    cr_assert_eq(sc_row_union_add(&u, ids, g, 3000, NULL), 0);
    cr_assert_eq(u.n, 3000);
    cr_assert_float_eq(u.grad[2999], 2 * 2999.0f, 0);
    sc_error err = {0};
    int32_t bad[2] = {3, 5000};
    cr_assert_eq(sc_row_union_add(&u, bad, g, 2, &err), SC_EFORMAT);
    cr_assert(strstr(err.msg, "5000") && strstr(err.msg, "5000 rows"), "%s", err.msg);
    bad[1] = -1;
    cr_assert_eq(sc_row_union_add(&u, bad, g, 2, &err), SC_EFORMAT);
    sc_row_union_free(&u);
    cr_assert_eq(sc_row_union_init(&u, 0, 4, &err), SC_EINVAL);
}

/* ---- slices of a batch add up to the batch ---- */

enum { NF = 4, B = 11 };

static void fields(sc_field_info *f) {
    memset(f, 0, sizeof(sc_field_info) * NF);
    const char *names[NF] = {"user", "item", "genres", "age"};
    int kinds[NF] = {SC_FIELD_CATEGORICAL, SC_FIELD_CATEGORICAL, SC_FIELD_MULTI, SC_FIELD_NUMERIC};
    int widths[NF] = {1, 1, 3, 1};
    int64_t vocab[NF] = {9, 14, 8, 1};
    for (int i = 0; i < NF; i++) {
        snprintf(f[i].name, sizeof f[i].name, "%s", names[i]);
        f[i].kind = kinds[i];
        f[i].width = widths[i];
        f[i].vocab_size = vocab[i];
        f[i].pooling = kinds[i] == SC_FIELD_MULTI ? SC_POOL_MEAN : 0;
        f[i].share_with = -1;
    }
}

/* rows [lo, hi) of the batch all (a view, no copy) */
static sc_batch slice(const sc_batch *all, const sc_field_info *f, int32_t **ids, float **vals, int lo, int hi) {
    sc_batch s = *all;
    for (int i = 0; i < NF; i++) {
        ids[i] = all->ids[i] ? all->ids[i] + lo * f[i].width : NULL;
        vals[i] = all->values[i] ? all->values[i] + lo : NULL;
    }
    s.ids = ids;
    s.values = vals;
    s.label = all->label + lo;
    s.n = s.cap = hi - lo;
    return s;
}

static void backward(sc_model *m, const sc_batch *b) {
    float logits[B], dl[B];
    cr_assert_eq(sc_model_forward(m, b, 1, logits, NULL), 0);
    sc_bce_logits_backward(dl, logits, b->label, b->n, 1.0f); /* the slice's mean loss */
    cr_assert_eq(sc_model_backward(m, b, dl, NULL, NULL, NULL), 0);
}

Test(dist, slice_gradients_weighted_by_share_are_the_batch_gradient) {
    sc_field_info f[NF];
    fields(f);
    sc_rng r;
    sc_rng_seed(&r, 7);
    int32_t user[B], item[B], genres[B * 3];
    float age[B], label[B];
    for (int b = 0; b < B; b++) {
        user[b] = 1 + (int32_t)sc_rng_below(&r, 7);
        item[b] = 1 + (int32_t)sc_rng_below(&r, 12);
        for (int w = 0; w < 3; w++) genres[b * 3 + w] = w && sc_rng_uniform(&r) < 0.3 ? 0 : 1 + (int32_t)sc_rng_below(&r, 6);
        age[b] = sc_rng_normal(&r);
        label[b] = (float)(sc_rng_uniform(&r) < 0.4);
    }
    int32_t *ids[NF] = {user, item, genres, NULL};
    float *vals[NF] = {NULL, NULL, NULL, age};
    sc_batch all = {.n = B, .cap = B, .n_fields = NF, .label = label, .ids = ids, .values = vals};

    sc_model_config mc;
    sc_model_config_default(&mc, SC_BB_DEEPFM);
    mc.embed_dim = 4;
    mc.hidden[0] = 8;
    mc.hidden[1] = 4;
    mc.n_threads = 1;
    sc_model *m;
    cr_assert_eq(sc_model_create(&m, &mc, f, NF, 3, NULL), 0);
    int np;
    sc_param *p = sc_model_params(m, &np);

    /* the whole batch: reference gradients */
    backward(m, &all);
    float *ref_dense[64] = {0};
    sc_row_union ref[64];
    cr_assert(np <= 64);
    for (int k = 0; k < np; k++) {
        if (p[k].sparse) {
            cr_assert_eq(sc_row_union_init(&ref[k], p[k].rows, p[k].cols, NULL), 0);
            sc_row_union_begin(&ref[k]);
            cr_assert_eq(sc_row_union_add(&ref[k], p[k].touched, p[k].grad, p[k].n_touched, NULL), 0);
        } else {
            ref_dense[k] = sc_malloc(sizeof(float) * (size_t)p[k].size);
            memcpy(ref_dense[k], p[k].grad, sizeof(float) * (size_t)p[k].size);
        }
    }
    /* three uneven slices, one of them empty, as sc_dist_optim_step adds them */
    int cut[4] = {0, 4, 4, B};
    float *sum_dense[64] = {0};
    sc_row_union sum[64];
    for (int k = 0; k < np; k++) {
        if (p[k].sparse) {
            cr_assert_eq(sc_row_union_init(&sum[k], p[k].rows, p[k].cols, NULL), 0);
            sc_row_union_begin(&sum[k]);
        } else {
            sum_dense[k] = sc_calloc((size_t)p[k].size, sizeof(float));
        }
    }
    for (int s = 0; s < 3; s++) {
        int32_t *sids[NF];
        float *svals[NF];
        sc_batch sb = slice(&all, f, sids, svals, cut[s], cut[s + 1]);
        backward(m, &sb);
        float share = (float)(cut[s + 1] - cut[s]) / B;
        for (int k = 0; k < np; k++) {
            if (!p[k].sparse) {
                for (int64_t j = 0; j < p[k].size; j++) sum_dense[k][j] += p[k].grad[j] * share;
                continue;
            }
            int64_t nv = p[k].n_touched * p[k].cols;
            float *g = sc_malloc(sizeof(float) * (size_t)(nv ? nv : 1));
            for (int64_t j = 0; j < nv; j++) g[j] = p[k].grad[j] * share;
            cr_assert_eq(sc_row_union_add(&sum[k], p[k].touched, g, p[k].n_touched, NULL), 0);
            sc_free(g);
        }
    }
    for (int k = 0; k < np; k++) {
        if (!p[k].sparse) {
            for (int64_t j = 0; j < p[k].size; j++)
                cr_assert_float_eq(sum_dense[k][j], ref_dense[k][j], 1e-6, "%s[%lld]: %g vs %g", p[k].name,
                                   (long long)j, sum_dense[k][j], ref_dense[k][j]);
            sc_free(sum_dense[k]);
            sc_free(ref_dense[k]);
            continue;
        }
        cr_assert_eq(sum[k].n, ref[k].n, "%s: %lld rows vs %lld", p[k].name, (long long)sum[k].n, (long long)ref[k].n);
        for (int64_t i = 0; i < ref[k].n; i++) {
            int32_t id = ref[k].ids[i];
            cr_assert_eq(sum[k].stamp[id], sum[k].epoch, "%s: row %d missing from the slices' union", p[k].name, id);
            const float *a = sum[k].grad + (int64_t)sum[k].slot[id] * p[k].cols, *e = ref[k].grad + i * p[k].cols;
            for (int c = 0; c < p[k].cols; c++)
                cr_assert_float_eq(a[c], e[c], 1e-6, "%s row %d col %d: %g vs %g", p[k].name, id, c, a[c], e[c]);
        }
        sc_row_union_free(&sum[k]);
        sc_row_union_free(&ref[k]);
    }
    sc_model_free(m);
}

/* ---- one process ---- */

Test(dist, one_process_is_the_plain_optimizer) {
    sc_dist *d;
    cr_assert_eq(sc_dist_init(&d, NULL, NULL, NULL), 0);
    sc_dist *both[2] = {NULL, d}; /* NULL and a job of one rank mean the same */
    for (int i = 0; i < 2; i++) {
        sc_dist *x = both[i];
        cr_assert_eq(sc_dist_rank(x), 0);
        cr_assert_eq(sc_dist_size(x), 1);
        int64_t lo, hi;
        sc_dist_slice(x, 37, &lo, &hi);
        cr_assert(lo == 0 && hi == 37);
        cr_assert_eq(sc_dist_agree(x, SC_EIO, NULL), SC_EIO);
        cr_assert_eq(sc_dist_agree(x, SC_OK, NULL), SC_OK);
        double v[2] = {1.5, -2};
        cr_assert_eq(sc_dist_sum(x, v, 2, NULL), 0);
        cr_assert(v[0] == 1.5 && v[1] == -2);
        cr_assert_eq(sc_dist_bcast(x, v, sizeof v, NULL), 0);
        cr_assert_eq(sc_dist_interrupted(x), 0);

        /* sc_dist_optim_step is sc_optim_step, bit for bit */
        float w1[4] = {1, 2, 3, 4}, w2[4] = {1, 2, 3, 4}, g[4] = {0.5f, -1, 0.25f, 2};
        sc_param p1 = {.name = "w", .data = w1, .size = 4, .rows = 1, .cols = 4, .grad = g};
        sc_param p2 = p1;
        p2.data = w2;
        sc_optim_config oc;
        sc_optim_config_default(&oc, SC_OPTIM_ADAM);
        sc_optim *o1, *o2;
        cr_assert_eq(sc_optim_create(&o1, &oc, &p1, 1, NULL), 0);
        cr_assert_eq(sc_optim_create(&o2, &oc, &p2, 1, NULL), 0);
        for (int s = 0; s < 3; s++) {
            cr_assert_eq(sc_optim_step(o1, 0.01f, NULL), 0);
            cr_assert_eq(sc_dist_optim_step(x, o2, &p2, 1, 0.01f, NULL), 0);
        }
        cr_assert_eq(memcmp(w1, w2, sizeof w1), 0);
        cr_assert_eq(sc_dist_bcast_state(x, &p2, 1, o2, NULL), 0);
        cr_assert_eq(sc_dist_check_replicas(x, &p2, 1, "test", NULL), 0);
        sc_optim_free(o1);
        sc_optim_free(o2);
    }
    sc_dist_stats st;
    sc_dist_get_stats(d, &st);
    cr_assert(st.steps == 0 && st.dense_bytes == 0, "one process communicates nothing");
    sc_dist_finalize(d);
    sc_dist_finalize(NULL);
}
