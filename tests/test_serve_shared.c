/* Serving with one copy of the weights: sc_model_infer (the packed dense
 * layers, activations in a caller's workspace) gives the same logits, bit for
 * bit, as sc_model_forward (OpenBLAS, the model's own activations) on every
 * backbone with dense layers; N scoring contexts cost N scratch areas, not N
 * copies of the weights (counted by base/alloc); contexts scoring at once
 * agree with one. */
#include <math.h>
#include <pthread.h>

#include "base/alloc.h"
#include "ctr/model.h"
#include "data/schema.h"
#include "nn/layers.h"
#include "semctr.h"
#include "serve/scorer.h"
#include "train/modelfile.h"
#include "test_serve_fixture.h"

/* Models of several backbones beside the fixture (made once per binary). */
static const char *sh_dir(void) {
    static char dir[700];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/shared", fx_dir());
    char probe[800];
    snprintf(probe, sizeof probe, "%s/autoint.model", dir);
    if (access(probe, R_OK) == 0) return dir;
    char tmp[800], cwd[400];
    cr_assert(getcwd(cwd, sizeof cwd));
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dir, (int)getpid());
    const char *b = fx_bin(), *tr = "--epochs 1 --max-steps 20 --seed 3 --threads 1 >/dev/null 2>&1";
    int rc = fx_sh("set -e; rm -rf '%s'; mkdir -p '%s'; cd '%s'; "
                   "SEMCTR_QUIET=1 '%s' prepare --config '%s/configs/ml-100k.yaml' --out data >/dev/null 2>&1; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model dcnv2 --out dcnv2.model %s; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model dcn --out dcn.model %s; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model widedeep --dropout 0.2 --hidden 100,37 --out widedeep.model %s; "
                   "SEMCTR_QUIET=1 '%s' train --data data --model autoint --out autoint.model %s; rm -rf data",
                   tmp, tmp, tmp, b, cwd, b, tr, b, tr, b, tr, b, tr);
    cr_assert_eq(rc, 0, "making the models in %s failed", tmp);
    if (rename(tmp, dir) != 0) fx_sh("rm -rf '%s'", tmp);
    cr_assert_eq(access(probe, R_OK), 0);
    return dir;
}

/* Request rows with a history: user, item and the user's previous items
 * among the fixture rows (most recent first, at most 20). */
static const char *hs_cols[3] = {"user_id", "item_id", "history"};
static char hs_hist[FX_ROWS][20 * 8];
static const char *hs_cells[FX_ROWS * 3];
static void hs_rows(void) {
    fx_load_rows();
    for (int r = 0; r < FX_ROWS; r++) {
        char *h = hs_hist[r];
        h[0] = '\0';
        int n = 0;
        for (int q = r - 1; q >= 0 && n < 20; q--)
            if (!strcmp(fx_buf[q][0], fx_buf[r][0])) {
                snprintf(h + strlen(h), sizeof hs_hist[r] - strlen(h), "%s%s", n ? "|" : "", fx_buf[q][1]);
                n++;
            }
        hs_cells[r * 3] = fx_buf[r][0];
        hs_cells[r * 3 + 1] = fx_buf[r][1];
        hs_cells[r * 3 + 2] = n ? h : NULL;
    }
}

static void infer_equals_forward(const char *path, int threads) {
    sc_model_bundle bu;
    sc_error err = {0};
    cr_assert_eq(sc_model_bundle_load(&bu, path, threads, &err), 0, "%s", err.msg);
    sc_model *net = sc_model_bundle_network(&bu, sc_model_bundle_default_network(&bu));
    cr_assert_not_null(net);
    int nf;
    const sc_field_info *fields = sc_schema_fields(bu.schema, &nf);
    sc_batch b;
    cr_assert_eq(sc_batch_alloc(&b, fields, nf, FX_ROWS, &err), 0);
    cr_assert_eq(sc_schema_encode(bu.schema, FX_ROWS, 3, hs_cols, hs_cells, &b, &err), 0, "%s", err.msg);
    static float want[FX_ROWS], got[FX_ROWS];
    cr_assert_eq(sc_model_forward(net, &b, 0, want, &err), 0, "%s", err.msg);
    cr_assert_eq(sc_model_pack(net, 0, &err), 0, "%s", err.msg);
    sc_infer_ws *ws;
    cr_assert_eq(sc_infer_ws_create(&ws, net, 7, &err), 0, "%s", err.msg); /* grows to 300 rows */
    memset(got, 0, sizeof got);
    cr_assert_eq(sc_model_infer(net, ws, &b, got, &err), 0, "%s", err.msg);
    int distinct = 0;
    for (int i = 0; i < FX_ROWS; i++) {
        cr_assert(memcmp(&got[i], &want[i], sizeof(float)) == 0, "%s, %d threads, row %d: infer %.9g, forward %.9g",
                  path, threads, i, got[i], want[i]);
        distinct += i && got[i] != got[i - 1];
    }
    cr_assert_gt(distinct, 100, "%s: the logits do not depend on the rows", path);
    /* smaller batches through the grown workspace (OpenBLAS's small-matrix
     * kernel below 10^6 multiply-adds a layer: both sides take it) */
    for (int n = 1; n <= 40; n += 13) {
        b.n = n;
        cr_assert_eq(sc_model_forward(net, &b, 0, want, &err), 0, "%s", err.msg);
        cr_assert_eq(sc_model_infer(net, ws, &b, got, &err), 0, "%s", err.msg);
        cr_assert(memcmp(got, want, n * sizeof(float)) == 0, "%s: %d rows differ", path, n);
    }
    sc_infer_ws_free(ws);
    sc_batch_free(&b);
    sc_model_bundle_free(&bu);
}

Test(serve_shared, infer_equals_forward_bit_for_bit) {
    hs_rows();
    char p[900];
    snprintf(p, sizeof p, "%s/a.model", fx_dir());
    infer_equals_forward(p, 1);
    infer_equals_forward(p, 2);
    const char *names[] = {"dcnv2", "dcn", "widedeep", "autoint"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s.model", sh_dir(), names[i]);
        infer_equals_forward(p, 1);
        infer_equals_forward(p, 2);
    }
}

/* The packed kernel: against sc_linear_forward + ReLU / the cross layer
 * (OpenBLAS) wherever sc_linear_packed_same_as_blas says so, on odd shapes
 * (rows not a multiple of 6, outputs not a multiple of 16); below that,
 * against its own definition (fmaf in c order, + bias, epilogue). */
static void packed_case(int B, int C, int O, sc_rng *rng) {
    float *x = sc_malloc(sizeof(float) * B * C), *W = sc_malloc(sizeof(float) * O * C), *bias = sc_malloc(sizeof(float) * O);
    float *want = sc_malloc(sizeof(float) * B * O), *got = sc_malloc(sizeof(float) * B * O);
    float *x0 = sc_malloc(sizeof(float) * B * O), *u = sc_malloc(sizeof(float) * B * O);
    float *pk = sc_aligned_alloc(sizeof(float) * (size_t)sc_linear_packed_floats(C, O));
    for (int i = 0; i < B * C; i++) x[i] = sc_rng_normal(rng);
    for (int i = 0; i < O * C; i++) W[i] = sc_rng_normal(rng) * 0.1f;
    for (int i = 0; i < O; i++) bias[i] = sc_rng_normal(rng);
    for (int i = 0; i < B * O; i++) x0[i] = sc_rng_normal(rng);
    sc_linear_pack(pk, W, bias, C, O);
    int blas = sc_linear_packed_same_as_blas(B, C, O);
    for (int epi = SC_EPI_RELU; epi <= SC_EPI_CROSS; epi++) {
        if (epi == SC_EPI_CROSS && C != O) continue;
        if (blas && epi == SC_EPI_RELU) {
            sc_linear_forward(want, x, W, bias, B, C, O);
            sc_relu_forward(want, want, (int64_t)B * O, 1);
        } else if (blas) {
            sc_cross2_forward(want, u, x0, x, W, bias, B, C, 1);
        } else {
            for (int b = 0; b < B; b++)
                for (int o = 0; o < O; o++) {
                    float acc = 0.0f;
                    for (int c = 0; c < C; c++) acc = fmaf(x[b * C + c], W[o * C + c], acc);
                    float y = acc + bias[o];
                    if (epi == SC_EPI_RELU) y = y > 0.0f ? y : 0.0f;
                    else {
                        float t = x0[b * O + o] * y;
                        y = t + x[b * C + o];
                    }
                    want[b * O + o] = y;
                }
        }
        sc_linear_packed_forward(got, O, x, C, pk, B, C, O, epi, x0, x);
        cr_assert(memcmp(got, want, sizeof(float) * B * O) == 0, "%s %dx%dx%d (%s) differs",
                  epi == SC_EPI_RELU ? "relu" : "cross", B, C, O, blas ? "vs BLAS" : "vs its definition");
    }
    sc_free(x);
    sc_free(W);
    sc_free(bias);
    sc_free(want);
    sc_free(got);
    sc_free(x0);
    sc_free(u);
    sc_free(pk);
}

Test(serve_shared, packed_kernel_equals_blas) {
    const int shapes[][3] = {{100, 144, 256}, {100, 256, 128}, {64, 144, 144}, {101, 128, 100}, {300, 37, 100},
                             {997, 33, 31},   {1, 1, 1},       {5, 3, 17},     {13, 37, 100},   {7, 128, 33}};
    sc_rng rng;
    sc_rng_seed(&rng, 5);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) packed_case(shapes[s][0], shapes[s][1], shapes[s][2], &rng);
    cr_assert(sc_linear_packed_same_as_blas(100, 144, 256) && !sc_linear_packed_same_as_blas(13, 144, 256));
}

typedef struct {
    sc_scorer *s;
    float *out;
    int rounds, failed;
} caller;

static void *score_loop(void *arg) {
    caller *c = arg;
    sc_error err;
    for (int r = 0; r < c->rounds; r++)
        if (sc_scorer_score(c->s, FX_ROWS, 3, hs_cols, hs_cells, c->out, NULL, &err)) c->failed++;
    return NULL;
}

Test(serve_shared, contexts_share_one_copy_of_the_weights) {
    hs_rows();
    const char *paths[2];
    char a[900], d[900];
    snprintf(a, sizeof a, "%s/a.model", fx_dir());
    snprintf(d, sizeof d, "%s/dcnv2.model", sh_dir());
    paths[0] = a;
    paths[1] = d;
    for (int k = 0; k < 2; k++) {
        sc_scorer *s;
        sc_error err = {0};
        sc_scorer_options o = {.max_contexts = 8, .batch_cap = 16};
        cr_assert_eq(sc_scorer_load(&s, paths[k], &o, &err), 0, "%s", err.msg);
        cr_assert_eq(sc_scorer_contexts(s), 1); /* the load's check */
        static float one[FX_ROWS], outs[8][FX_ROWS];
        /* the first context's activations grow to batch_cap rows */
        cr_assert_eq(sc_scorer_score(s, FX_ROWS, 3, hs_cols, hs_cells, one, NULL, &err), 0, "%s", err.msg);
        int64_t live1 = sc_alloc_live_bytes();
        cr_assert_eq(sc_scorer_reserve(s, 8, &err), 0, "%s", err.msg);
        cr_assert_eq(sc_scorer_contexts(s), 8);
        int64_t live8 = sc_alloc_live_bytes(), per = (live8 - live1) / 7, wb = sc_scorer_weight_bytes(s);
        cr_log_info("%s: weights %lld bytes, each further context %lld bytes (batch_cap 16)", paths[k], (long long)wb,
                    (long long)per);
        cr_assert_eq(live8 - live1, 7 * per, "contexts of unequal size: %lld bytes for 7", (long long)(live8 - live1));
        /* a context is scratch for 16 rows; a copy of the weights would be wb bytes or more */
        cr_assert_gt(wb, 500000, "weights %lld bytes", (long long)wb);
        cr_assert_lt(per, wb / 10, "a context takes %lld bytes, the weights %lld: copied?", (long long)per, (long long)wb);
        /* eight callers at once on the eight contexts score as one does */
        caller cs[8];
        pthread_t th[8];
        for (int t = 0; t < 8; t++) {
            cs[t] = (caller){s, outs[t], 20, 0};
            pthread_create(&th[t], NULL, score_loop, &cs[t]);
        }
        for (int t = 0; t < 8; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < 8; t++) {
            cr_assert_eq(cs[t].failed, 0);
            cr_assert(memcmp(outs[t], one, sizeof one) == 0, "caller %d scored differently", t);
        }
        cr_assert_eq(sc_scorer_contexts(s), 8);
        cr_assert_eq(sc_alloc_live_bytes(), live8, "scoring left memory behind");
        sc_scorer_free(s);
    }
}

/* precision bf16: the dense layers on bfloat16 weights and inputs. Not the
 * float bits: the probabilities stay within 2e-3 of float's on these rows
 * (bfloat16 keeps 8 mantissa bits; the sums are in float), and the order of
 * the rows hardly moves. Refused where the build has no kernel for it. */
Test(serve_shared, bf16_scores_within_tolerance_of_f32) {
    hs_rows();
    char a[900], d[900];
    snprintf(a, sizeof a, "%s/a.model", fx_dir());
    snprintf(d, sizeof d, "%s/dcnv2.model", sh_dir());
    const char *paths[2] = {a, d};
    for (int k = 0; k < 2; k++) {
        sc_scorer *f, *h;
        sc_error err = {0};
        sc_scorer_options of = {.max_contexts = 1}, oh = {.max_contexts = 1, .bf16 = 1};
        cr_assert_eq(sc_scorer_load(&f, paths[k], &of, &err), 0, "%s", err.msg);
        int rc = sc_scorer_load(&h, paths[k], &oh, &err);
        if (!sc_linear_bf16_available()) {
            cr_assert_neq(rc, 0);
            cr_assert(strstr(err.msg, "AVX512_BF16"), "%s", err.msg);
            sc_scorer_free(f);
            continue;
        }
        cr_assert_eq(rc, 0, "%s", err.msg);
        static float pf[FX_ROWS], ph[FX_ROWS];
        cr_assert_eq(sc_scorer_score(f, FX_ROWS, 3, hs_cols, hs_cells, pf, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(sc_scorer_score(h, FX_ROWS, 3, hs_cols, hs_cells, ph, NULL, &err), 0, "%s", err.msg);
        double worst = 0, sum = 0;
        int differ = 0, swapped = 0, pairs = 0;
        for (int i = 0; i < FX_ROWS; i++) {
            double e = fabs((double)pf[i] - ph[i]);
            worst = e > worst ? e : worst;
            sum += e;
            differ += pf[i] != ph[i];
            for (int j = 0; j < i; j += 7) /* pairs ordered differently (ties aside) */
                if (pf[i] != pf[j] && ph[i] != ph[j]) {
                    pairs++;
                    swapped += (pf[i] < pf[j]) != (ph[i] < ph[j]);
                }
        }
        cr_log_info("%s: bf16 vs f32 over %d rows: max |dp| %.2e, mean %.2e, %d rows differ, %d of %d pairs reordered",
                    paths[k], FX_ROWS, worst, sum / FX_ROWS, differ, swapped, pairs);
        cr_assert_gt(differ, 0, "bf16 gave the float bits: is it on?");
        cr_assert_lt(worst, 2e-3, "max |dp| %.2e", worst);
        cr_assert_lt(swapped, pairs / 100 + 1, "%d of %d pairs reordered", swapped, pairs);
        sc_scorer_free(f);
        sc_scorer_free(h);
    }
}

/* The precision option through the public API and the server's flag: an
 * unknown value is refused naming the accepted ones; "f32" is the default's
 * bits. */
Test(serve_shared, precision_option_is_checked) {
    hs_rows();
    char a[900];
    snprintf(a, sizeof a, "%s/a.model", fx_dir());
    semctr_options o;
    semctr_options_init(&o);
    semctr_model *m = NULL;
    semctr_error err;
    o.precision = "fp8";
    cr_assert_eq(semctr_load(&m, a, &o, &err), SEMCTR_EINVAL);
    cr_assert_null(m);
    cr_assert(strstr(err.message, "f32") && strstr(err.message, "bf16"), "%s", err.message);
    static float p0[FX_ROWS], p1[FX_ROWS];
    semctr_model *d = NULL;
    cr_assert_eq(semctr_load(&d, a, NULL, &err), 0, "%s", err.message);
    o.precision = "f32";
    cr_assert_eq(semctr_load(&m, a, &o, &err), 0, "%s", err.message);
    cr_assert_eq(semctr_score(d, FX_ROWS, 3, hs_cols, hs_cells, p0, &err), 0, "%s", err.message);
    cr_assert_eq(semctr_score(m, FX_ROWS, 3, hs_cols, hs_cells, p1, &err), 0, "%s", err.message);
    cr_assert(memcmp(p0, p1, sizeof p0) == 0);
    semctr_free(m);
    semctr_free(d);
    cr_assert_eq(fx_sh("'%s' serve --model m='%s' --precision fp8 2>&1 | grep -q 'give f32 or bf16'", fx_bin(), a), 0);
}
