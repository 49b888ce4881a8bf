/* MSD: the semantic fields in the backbone (gradients into the extra input),
 * the frequency-adaptive fusion and the adaptor chain (finite differences),
 * the extraction-file reader, and end to end with the real `semctr` on
 * MovieLens-100K: training learns, eval/predict score by table lookups, a
 * table from other adaptor weights is refused, bad input is reported; with
 * LoRA on the small encoder: it trains, the file round-trips, new texts are
 * encoded with the adapters (tests/test_lm_lora.c has its gradients). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "ctr/mlp.h"
#include "ctr/model.h"
#include "methods/msd/layers.h"
#include "nn/layers.h"
#include "semctr.h"
#include "train/container.h"
#include "methods/msd/msd.h"
#include "test_cli_util.h"
#include "test_nn_gradcheck.h"

/* ---------------- the backbone with K dense fields ---------------- */

enum { NF = 3, D = 4, K = 3, B = 6 };

typedef struct {
    sc_model *m;
    sc_batch *b;
    float *logits, *r;
} mctx;

static double model_loss(void *vc) {
    mctx *c = vc;
    sc_error err;
    cr_assert_eq(sc_model_forward(c->m, c->b, 1, c->logits, &err), 0, "%s", err.msg);
    double s = 0;
    for (int i = 0; i < c->b->n; i++) s += (double)c->r[i] * c->logits[i];
    return s;
}

static void check_fields_backbone(sc_backbone bb) {
    sc_field_info f[NF];
    memset(f, 0, sizeof f);
    const char *names[NF] = {"user", "item", "hist"};
    int kinds[NF] = {SC_FIELD_CATEGORICAL, SC_FIELD_CATEGORICAL, SC_FIELD_SEQUENCE};
    int widths[NF] = {1, 1, 3};
    for (int i = 0; i < NF; i++) {
        snprintf(f[i].name, sizeof f[i].name, "%s", names[i]);
        f[i].kind = kinds[i];
        f[i].width = widths[i];
        f[i].vocab_size = 9;
        f[i].share_with = -1;
    }
    f[2].share_with = 1;
    sc_model_config cfg;
    sc_model_config_default(&cfg, bb);
    cfg.embed_dim = D;
    if (cfg.n_hidden) cfg.hidden[0] = 5, cfg.hidden[1] = 3;
    cfg.att_layers = 1;
    cfg.att_heads = 2;
    cfg.att_dim = 2;
    cfg.extra_dim = K * D;
    cfg.extra_mode = SC_EXTRA_FIELDS;
    cfg.n_threads = 1;
    sc_model *m;
    sc_error err;
    cr_assert_eq(sc_model_create(&m, &cfg, f, NF, 7, &err), 0, "%s", err.msg);
    /* bigger weights than the default init so that the extra fields matter */
    int np;
    sc_param *P = sc_model_params(m, &np);
    sc_rng rng;
    sc_rng_seed(&rng, 3);
    for (int k = 0; k < np; k++)
        for (int64_t i = 0; i < P[k].size; i++) P[k].data[i] = 0.4f * sc_rng_normal(&rng);
    sc_batch b;
    cr_assert_eq(sc_batch_alloc(&b, f, NF, B, &err), 0);
    b.n = B;
    float extra[B * K * D], r[B], logits[B], dl[B], dextra[B * K * D];
    for (int i = 0; i < B; i++) {
        b.ids[0][i] = 2 + i % 5;
        b.ids[1][i] = 2 + (i * 3) % 6;
        for (int j = 0; j < 3; j++) b.ids[2][i * 3 + j] = j == 2 ? 0 : 2 + (i + j) % 6;
        b.label[i] = (float)(i % 2);
        r[i] = sc_rng_normal(&rng);
        dl[i] = r[i];
    }
    for (int i = 0; i < B * K * D; i++) extra[i] = sc_rng_normal(&rng);
    b.extra = extra;
    cr_assert_eq(sc_model_forward(m, &b, 1, logits, &err), 0, "%s", err.msg);
    cr_assert_eq(sc_model_backward(m, &b, dl, NULL, dextra, &err), 0, "%s", err.msg);
    float g[B * K * D];
    memcpy(g, dextra, sizeof g);
    double norm = 0;
    for (int i = 0; i < B * K * D; i++) norm += fabs(g[i]);
    cr_assert(norm > 1e-4, "%s: no gradient reaches the semantic fields", sc_backbone_name(bb));
    mctx c = {m, &b, logits, r};
    gc_stats st = {0};
    gradcheck(&st, sc_backbone_name(bb), model_loss, &c, extra, g, B * K * D, B * K * D, 3e-3f);
    cr_assert_eq(st.failed, 0, "%s: %d mismatches", sc_backbone_name(bb), st.failed);
    cr_assert(st.checked > 4 * st.skipped, "%s: %d skipped of %d", sc_backbone_name(bb), st.skipped, st.checked);
    sc_batch_free(&b);
    sc_model_free(m);
}

Test(msd, semantic_fields_get_gradients_in_every_backbone) {
    sc_backbone bbs[] = {SC_BB_LR, SC_BB_FM, SC_BB_DEEPFM, SC_BB_DCN, SC_BB_DCNV2, SC_BB_AUTOINT, SC_BB_WIDEDEEP};
    for (size_t i = 0; i < sizeof bbs / sizeof *bbs; i++) check_fields_backbone(bbs[i]);
}

Test(msd, fields_mode_needs_a_multiple_of_embed_dim) {
    sc_field_info f = {.name = "x", .kind = SC_FIELD_CATEGORICAL, .width = 1, .vocab_size = 4, .share_with = -1};
    sc_model_config cfg;
    sc_model_config_default(&cfg, SC_BB_DEEPFM);
    cfg.embed_dim = 4;
    cfg.extra_dim = 6;
    cfg.extra_mode = SC_EXTRA_FIELDS;
    sc_model *m = NULL;
    sc_error err;
    cr_assert_neq(sc_model_create(&m, &cfg, &f, 1, 1, &err), 0);
    cr_assert(strstr(err.msg, "multiple of embed_dim"), "%s", err.msg);
}

/* ---------------- adaptor -> fusion chain ---------------- */

enum { S = 5, T = 7, W = 4, FB = 3 };

typedef struct {
    sc_mlp *ad;
    float X[T * S], lf[FB * W], ab[2], r[FB * D];
    int slot[FB * W]; /* entity of each history slot, -1 empty */
    float V[FB * W * D], w[FB * W], wsum[FB], P[FB * D];
} fctx;

/* V = adaptor(X[slot]) per slot, P = fusion; loss = sum r . P */
static double fusion_loss(void *vc) {
    fctx *c = vc;
    const float *A;
    sc_error err;
    cr_assert_eq(sc_mlp_forward(c->ad, c->X, T, &A, &err), 0);
    for (int j = 0; j < FB * W; j++) {
        if (c->slot[j] >= 0) memcpy(c->V + j * D, A + c->slot[j] * D, D * sizeof(float));
        else memset(c->V + j * D, 0, D * sizeof(float));
    }
    sc_msd_fuse_forward(c->P, c->w, c->wsum, c->V, c->lf, c->ab, FB, W, D);
    double s = 0;
    for (int i = 0; i < FB * D; i++) s += (double)c->r[i] * c->P[i];
    return s;
}

Test(msd, fusion_and_adaptor_gradients_match_finite_differences) {
    fctx c;
    memset(&c, 0, sizeof c);
    int dims[3] = {S, 6, D};
    sc_error err;
    cr_assert_eq(sc_mlp_create(&c.ad, "item", dims, 2, 0, 5, &err), 0);
    sc_rng rng;
    sc_rng_seed(&rng, 11);
    for (int i = 0; i < T * S; i++) c.X[i] = sc_rng_normal(&rng);
    for (int i = 0; i < FB * D; i++) c.r[i] = sc_rng_normal(&rng);
    c.ab[0] = -0.7f;
    c.ab[1] = 0.9f;
    for (int j = 0; j < FB * W; j++) {
        c.slot[j] = (j % 5 == 4) ? -1 : (int)sc_rng_below(&rng, T);
        c.lf[j] = c.slot[j] >= 0 ? log1pf((float)sc_rng_below(&rng, 50)) : -1.0f;
    }
    for (int j = 0; j < W; j++) c.slot[2 * W + j] = -1, c.lf[2 * W + j] = -1; /* a row with an empty history */
    fusion_loss(&c);
    cr_assert_eq(c.wsum[2], 0.0f);
    for (int d = 0; d < D; d++) cr_assert_eq(c.P[2 * D + d], 0.0f, "an empty history pools to zeros");
    /* analytic: fusion backward, scatter into the entities, adaptor backward */
    float dV[FB * W * D], dab[2] = {0, 0}, dA[T * D];
    sc_msd_fuse_backward(dV, dab, c.r, c.P, c.w, c.wsum, c.V, c.lf, FB, W, D);
    memset(dA, 0, sizeof dA);
    for (int j = 0; j < FB * W; j++)
        if (c.slot[j] >= 0)
            for (int d = 0; d < D; d++) dA[c.slot[j] * D + d] += dV[j * D + d];
    sc_mlp_backward(c.ad, dA, NULL);
    gc_stats st = {0};
    gradcheck(&st, "fusion.ab", fusion_loss, &c, c.ab, dab, 2, 2, 1e-3f);
    int np;
    sc_param *p = sc_mlp_params(c.ad, &np);
    for (int k = 0; k < np; k++) {
        float *g = sc_malloc((size_t)p[k].size * sizeof(float));
        memcpy(g, p[k].grad, (size_t)p[k].size * sizeof(float));
        gradcheck(&st, p[k].name, fusion_loss, &c, p[k].data, g, p[k].size, 20, 1e-3f);
        sc_free(g);
    }
    cr_assert_eq(st.failed, 0, "%d mismatches", st.failed);
    cr_assert(st.checked > 4 * st.skipped && st.checked > 30, "%d checked, %d skipped", st.checked, st.skipped);
    /* rare items weigh more at the initial parameters */
    float lf2[2] = {log1pf(1), log1pf(100)}, V2[2 * D] = {0}, w2[2], s2, P2[D], ab0[2] = {SC_MSD_FUSION_A0, SC_MSD_FUSION_B0};
    sc_msd_fuse_forward(P2, w2, &s2, V2, lf2, ab0, 1, 2, D);
    cr_assert(w2[0] > 2 * w2[1], "w(1) = %g, w(100) = %g", w2[0], w2[1]);
    sc_mlp_free(c.ad);
}

/* ---------------- extraction files ---------------- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(msd, tsv_reader_unescapes_and_names_bad_lines) {
    char dir[] = "/tmp/sc_msd_tsv_XXXXXX", path[128];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/item.tsv", dir);
    write_text(path, "key\tstatus\ttext\n1\tok\tA film.\\tWith a tab\\nand a line \\\\ end\n2\tfallback\tTitle is X.\n\n");
    sc_msd_tsv t;
    sc_error err;
    cr_assert_eq(sc_msd_tsv_read(path, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(t.n, 2);
    cr_assert_str_eq(t.keys[0], "1");
    cr_assert_str_eq(t.texts[0], "A film.\tWith a tab\nand a line \\ end");
    cr_assert_eq(t.ok[0], 1);
    cr_assert_eq(t.ok[1], 0);
    sc_msd_tsv_free(&t);
    write_text(path, "key\tstatus\ttext\n1\tok\tfine\n2 no tabs here\n");
    cr_assert_neq(sc_msd_tsv_read(path, &t, &err), 0);
    cr_assert(strstr(err.msg, "item.tsv:3"), "%s", err.msg);
    write_text(path, "key\tstatus\ttext\n1\tmaybe\tx\n");
    cr_assert_neq(sc_msd_tsv_read(path, &t, &err), 0);
    cr_assert(strstr(err.msg, ":2") && strstr(err.msg, "maybe"), "%s", err.msg);
    write_text(path, "key\tstatus\ttext\n1\tok\tfine\n2\tok\tC:\\q is no escape\\x\n");
    cr_assert_eq(sc_msd_tsv_read(path, &t, &err), SC_EFORMAT);
    cr_assert(strstr(err.msg, "item.tsv:3") && strstr(err.msg, "backslash") && strstr(err.msg, "text"), "%s", err.msg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---------------- end to end ---------------- */

/* Stand-in extraction files (not LLM outputs): short texts keep the
 * encoder's work small under sanitizers; a few entities are left out so the
 * raw-text fallback is exercised. */
static void stand_in_texts(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/item.tsv", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "key\tstatus\ttext\n");
    static const char *kinds[] = {"a comedy", "a drama", "an action film", "a thriller", "a romance"};
    for (int i = 1; i <= 1682; i++)
        if (i % 97) fprintf(f, "%d\t%s\tIt is %s.\n", i, i % 13 ? "ok" : "fallback", kinds[i % 5]);
    fclose(f);
    snprintf(path, sizeof path, "%s/user.tsv", dir);
    f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "key\tstatus\ttext\n");
    for (int i = 1; i <= 943; i++) fprintf(f, "%d\tok\tLikes %s.\n", i, kinds[i % 5]);
    fclose(f);
}

Test(msd, end_to_end_learns_serves_by_lookup_and_refuses_a_foreign_table, .timeout = 900) {
    char d[] = "/tmp/sc_msd_XXXXXX";
    cr_assert(mkdtemp(d));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", d), 0, "%s", tcli_out());
    char tx[128];
    snprintf(tx, sizeof tx, "%s/texts", d);
    cr_assert_eq(sc_mkdirs(tx, NULL), 0);
    stand_in_texts(tx);
    /* the levels forced: this test is about the semantic fields, not their selection (test_methods_guard.c) */
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item,user,fusion --msd-texts %s --data %s/data --model deepfm --out %s/m --epochs 2 "
                        "--seed 3 --json",
                        tx, d, d),
                 0, "%s", tcli_out());
    const char *test = strstr(tcli_out(), "\"test\"");
    cr_assert(test, "%s", tcli_out());
    double auc = tcli_json_number(strstr(test, "\"all\""), "auc");
    cr_assert(auc > 0.68, "test AUC %g\n%s", auc, tcli_out());
    cr_assert(tcli_json_number(strstr(test, "\"cold\""), "rows") > 50, "%s", tcli_out());
    /* texts: extracted for the listed entities, the raw text for the others */
    const char *item = strstr(tcli_out(), "\"item\":{");
    cr_assert(item, "%s", tcli_out());
    cr_assert(tcli_json_number(item, "extracted") > 1500 && tcli_json_number(item, "raw_entity_text") >= 17, "%s", item);
    cr_assert(tcli_json_number(item, "extracted_status_fallback") > 100, "%s", item);
    /* eval by table lookups, and with new entities encoded: the training-time test AUC */
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --json", d, d), 0, "%s", tcli_out());
    cr_assert(tcli_json_number(tcli_out(), "auc") > 0.6 && tcli_json_number(tcli_out(), "msd_unknown_ids") > 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --json --encoder %s/.cache/semctr/models/all-MiniLM-L6-v2", d,
                        d, getenv("HOME")),
                 0, "%s", tcli_out());
    cr_assert(fabs(tcli_json_number(tcli_out(), "auc") - auc) < 1e-4, "eval %g vs train %g", tcli_json_number(tcli_out(), "auc"), auc);
    /* predict on raw rows: an unknown item id scores (zeros, counted) */
    char csv[128];
    snprintf(csv, sizeof csv, "%s/rows.csv", d);
    write_text(csv, "user_id,item_id\n1,1\n2,50\n7,999999\n");
    cr_assert_eq(tcli_semctr("predict --model %s/m --input %s --output %s/p.csv", d, csv, d), 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "not in the model's semantic tables"), "%s", tcli_out());
    /* the C API / server: known entities by lookup; a new item with item_text is encoded with --encoder */
    {
        char mp[128], enc[512];
        snprintf(mp, sizeof mp, "%s/m", d);
        snprintf(enc, sizeof enc, "%s/.cache/semctr/models/all-MiniLM-L6-v2", getenv("HOME"));
        semctr_options o;
        semctr_options_init(&o);
        semctr_model *plain, *withenc;
        semctr_error e;
        cr_assert_eq(semctr_load(&plain, mp, &o, &e), 0, "%s", e.message);
        o.encoder = enc;
        cr_assert_eq(semctr_load(&withenc, mp, &o, &e), 0, "%s", e.message);
        const char *cols[3] = {"user_id", "item_id", "item_text"};
        const char *cells[9] = {"1", "1", NULL, "1", "new-a", "It is a comedy.", "1", "new-b", "It is a thriller."};
        float p0[3], p1[3];
        cr_assert_eq(semctr_score(plain, 3, 3, cols, cells, p0, &e), 0, "%s", e.message);
        cr_assert_eq(semctr_score(withenc, 3, 3, cols, cells, p1, &e), 0, "%s", e.message);
        for (int i = 0; i < 3; i++) cr_assert(isfinite(p0[i]) && isfinite(p1[i]));
        cr_assert_eq(p0[0], p1[0], "a known item is a lookup either way");
        cr_assert_eq(p0[1], p0[2], "without an encoder both new items get zeros");
        cr_assert_neq(p1[1], p1[2], "with the encoder the new items' texts matter");
        /* a recurring new item comes from the new-item cache: the same scores */
        float p2[3];
        cr_assert_eq(semctr_score(withenc, 3, 3, cols, cells, p2, &e), 0, "%s", e.message);
        for (int i = 0; i < 3; i++) cr_assert_eq(p1[i], p2[i], "row %d: %g vs %g", i, p1[i], p2[i]);
        semctr_free(plain);
        semctr_free(withenc);
    }
    /* a table next to other adaptor weights is refused, naming the table */
    char path[128], bad[128];
    snprintf(path, sizeof path, "%s/m", d);
    snprintf(bad, sizeof bad, "%s/bad", d);
    sc_container c;
    sc_error err;
    cr_assert_eq(sc_container_open(&c, path, &err), 0, "%s", err.msg);
    sc_container_writer w;
    sc_container_writer_init(&w);
    float *copy = NULL;
    for (int i = 0; i < c.n; i++) {
        const sc_container_entry *e = &c.entries[i];
        const void *data = e->data;
        if (!strcmp(e->name, "msd/item.adaptor/item.0.bias")) {
            copy = sc_malloc(e->bytes);
            memcpy(copy, e->data, e->bytes);
            copy[0] += 0.5f;
            data = copy;
        }
        cr_assert_eq(sc_container_add(&w, e->name, e->is_f32, data, e->bytes, &err), 0);
    }
    cr_assert(copy);
    cJSON *h = cJSON_Duplicate(c.header, 1);
    cJSON_DeleteItemFromObject(h, "entries");
    cr_assert_eq(sc_container_write(&w, bad, h, &err), 0, "%s", err.msg);
    cJSON_Delete(h);
    sc_container_writer_free(&w);
    sc_container_close(&c);
    sc_free(copy);
    cr_assert_eq(tcli_semctr("eval --model %s --data %s/data", bad, d), 1, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "msd/item.table") && strstr(tcli_out(), "adaptor version"), "%s", tcli_out());
    /* bad settings and texts fail before training */
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item,colour --data %s/data --model dnn --out %s/x", d, d), 2,
                 "%s", tcli_out());
    write_text(csv, "key\tstatus\ttext\n1\tok\n");
    char tx2[128], p2[160];
    snprintf(tx2, sizeof tx2, "%s/texts2", d);
    cr_assert_eq(sc_mkdirs(tx2, NULL), 0);
    snprintf(p2, sizeof p2, "%s/item.tsv", tx2);
    write_text(p2, "key\tstatus\ttext\n1\tok\n");
    cr_assert_eq(tcli_semctr("train --method msd --msd-texts %s --data %s/data --model dnn --out %s/x", tx2, d, d), 1,
                 "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "item.tsv:2"), "%s", tcli_out());
    /* a directory without extraction files is an error, not a silent raw-text run */
    cr_assert_eq(tcli_semctr("train --method msd --msd-texts %s/no-such-dir --data %s/data --model dnn --out %s/x", d, d, d), 1,
                 "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "neither item.tsv nor user.tsv"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --method msd --msd-history genres --data %s/data --model dnn --out %s/x", d, d), 1,
                 "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "genres"), "%s", tcli_out());
    snprintf(tx, sizeof tx, "rm -rf '%s'", d);
    cr_assert_eq(system(tx), 0);
}

/* ---------------- LoRA on the small encoder ---------------- */

/* A file without LoRA is versioned as before LoRA existed: the tables' hash
 * is the adaptor's alone, so files written by older semctr keep loading. */
Test(msd, table_version_without_lora_is_the_adaptor_hash) {
    int dims[2] = {6, 4};
    sc_mlp *ad;
    sc_error err;
    cr_assert_eq(sc_mlp_create(&ad, "item", dims, 1, 0, 5, &err), SC_OK, "%s", err.msg);
    int np;
    sc_param *p = sc_mlp_params(ad, &np);
    const float *t[2] = {p[0].data, p[1].data};
    int64_t sz[2] = {p[0].size, p[1].size};
    cr_assert_eq(sc_msd_table_version(ad, NULL, 0), sc_msd_weights_hash(t, sz, 2));
    float a[3] = {1, 2, 3};
    sc_param lora = {.data = a, .size = 3};
    cr_assert_neq(sc_msd_table_version(ad, &lora, 1), sc_msd_weights_hash(t, sz, 2), "LoRA weights enter the version");
    sc_mlp_free(ad);
}

/* Training with LoRA: the adapters train (B leaves zero), the file round-trips
 * (eval with the encoder reproduces the training run's test metrics, which
 * encode new entities with the adapters), serving a new item's text goes
 * through the adapters (another encoder is refused), the adapters are part of
 * the tables' version, a resumed run ends as an uninterrupted one, and bad
 * LoRA settings are refused naming the flag. */
Test(msd, lora_trains_round_trips_and_serves_new_texts_with_the_adapters, .timeout = 900) {
    char d[] = "/tmp/sc_msd_lora_XXXXXX";
    cr_assert(mkdtemp(d));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", d), 0, "%s", tcli_out());
    char tx[128], enc[512];
    snprintf(tx, sizeof tx, "%s/texts", d);
    snprintf(enc, sizeof enc, "%s/.cache/semctr/models/all-MiniLM-L6-v2", getenv("HOME"));
    cr_assert_eq(sc_mkdirs(tx, NULL), 0);
    stand_in_texts(tx);
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item,user,fusion --msd-texts %s --data %s/data --model deepfm "
                             "--out %s/m --epochs 1 --seed 3 --json --msd-lora-rank 4 --msd-lora-every 50 --msd-lora-lr 0.01",
                             tx, d, d),
                 0, "%s", tcli_out());
    const char *lj = strstr(tcli_out(), "\"lora\":{");
    cr_assert(lj, "%s", tcli_out());
    cr_assert_eq(tcli_json_number(lj, "rank"), 4);
    cr_assert_geq(tcli_json_number(lj, "lora_steps"), 6, "313 steps, a LoRA step every 50 and one at the epoch's end");
    const char *test = strstr(tcli_out(), "\"test\"");
    cr_assert(test, "%s", tcli_out());
    double auc = tcli_json_number(strstr(test, "\"all\""), "auc"), ll = tcli_json_number(strstr(test, "\"all\""), "logloss");
    cr_assert(auc > 0.68, "test AUC %g", auc);
    /* the adapters moved off zero and are stored with the model */
    char path[160];
    snprintf(path, sizeof path, "%s/m", d);
    sc_model_bundle b;
    sc_error err;
    cr_assert_eq(sc_model_bundle_load(&b, path, 1, &err), SC_OK, "%s", err.msg);
    sc_msd_model m;
    cr_assert_eq(sc_msd_model_load(&m, &b, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(m.lora.rank, 4);
    cr_assert_eq(m.lora.first, 5);
    cr_assert_eq(m.lora.n, 1);
    double nb = 0;
    for (int k = 0; k < 384 * 4; k++) nb += fabsf(m.lora.B[0][SC_LORA_Q][k]);
    cr_assert_gt(nb, 0, "LoRA B of the query projection is still zero");
    /* a new text through the adapters differs from the frozen encoder's vector */
    sc_textvec tv;
    cr_assert_eq(sc_textvec_open(&tv, enc, 1, &err), SC_OK, "%s", err.msg);
    sc_textvec_set_normalize(&tv, 0);
    const char *nt = "It is a western with horses.";
    float xl[384], xf[384];
    cr_assert_eq(sc_msd_model_encode_texts(&m, &tv, &nt, 1, xl, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(sc_textvec_encode(&tv, &nt, 1, xf, &err), SC_OK, "%s", err.msg);
    cr_assert(memcmp(xl, xf, sizeof xl), "the adapters do not change the new text's vector");
    sc_textvec_close(&tv);
    sc_msd_model_free(&m);
    sc_model_bundle_free(&b);
    /* eval with the encoder (new entities through the adapters) = the training run's in-memory test scores */
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --json --encoder %s", d, d, enc), 0, "%s", tcli_out());
    cr_assert(fabs(tcli_json_number(tcli_out(), "auc") - auc) < 1e-6 && fabs(tcli_json_number(tcli_out(), "logloss") - ll) < 1e-6,
              "eval %g / %g vs train %g / %g", tcli_json_number(tcli_out(), "auc"), tcli_json_number(tcli_out(), "logloss"),
              auc, ll);
    /* serving: a new item's text is encoded with the adapters; an encoder they were not trained on is refused */
    {
        char other[200];
        snprintf(other, sizeof other, "%s/other-encoder", d);
        cr_assert_eq(symlink(enc, other), 0);
        const char *cols[3] = {"user_id", "item_id", "item_text"};
        const char *cells[6] = {"1", "1", NULL, "1", "new-a", "It is a western with horses."};
        float p[2];
        semctr_options o;
        semctr_options_init(&o);
        semctr_model *sm;
        semctr_error e;
        o.encoder = enc;
        cr_assert_eq(semctr_load(&sm, path, &o, &e), 0, "%s", e.message);
        cr_assert_eq(semctr_score(sm, 2, 3, cols, cells, p, &e), 0, "%s", e.message);
        cr_assert(isfinite(p[0]) && isfinite(p[1]));
        semctr_free(sm);
        o.encoder = other;
        cr_assert_eq(semctr_load(&sm, path, &o, &e), 0, "%s", e.message);
        cr_assert_neq(semctr_score(sm, 2, 3, cols, cells, p, &e), 0);
        cr_assert(strstr(e.message, "LoRA") && strstr(e.message, "other-encoder"), "%s", e.message);
        semctr_free(sm);
    }
    /* the adapters are part of the tables' version: a changed LoRA tensor is refused, naming the table */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad", d);
    sc_container c;
    cr_assert_eq(sc_container_open(&c, path, &err), 0, "%s", err.msg);
    sc_container_writer w;
    sc_container_writer_init(&w);
    float *copy = NULL;
    for (int i = 0; i < c.n; i++) {
        const sc_container_entry *e = &c.entries[i];
        const void *data = e->data;
        if (!strcmp(e->name, "msd/lora.5.up.B")) {
            copy = sc_malloc(e->bytes);
            memcpy(copy, e->data, e->bytes);
            copy[0] += 0.5f;
            data = copy;
        }
        cr_assert_eq(sc_container_add(&w, e->name, e->is_f32, data, e->bytes, &err), 0);
    }
    cr_assert(copy, "no msd/lora.5.up.B in the file");
    cJSON *h = cJSON_Duplicate(c.header, 1);
    cJSON_DeleteItemFromObject(h, "entries");
    cr_assert_eq(sc_container_write(&w, bad, h, &err), 0, "%s", err.msg);
    cJSON_Delete(h);
    sc_container_writer_free(&w);
    sc_container_close(&c);
    sc_free(copy);
    cr_assert_eq(tcli_semctr("eval --model %s --data %s/data", bad, d), 1, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "msd/item.table") && strstr(tcli_out(), "adaptor version"), "%s", tcli_out());
    /* resumed after its first epoch, a LoRA run ends where an uninterrupted one does (deterministic for a seed) */
    const char *TRAIN = "train --method msd --msd-levels item,user,fusion --msd-texts %s --data %s/data --model deepfm "
                        "--out %s/%s --epochs 2 --seed 3 --json --msd-lora-rank 4 --msd-lora-every 50 --msd-lora-lr 0.01 %s";
    cr_assert_eq(tcli_semctr(TRAIN, tx, d, d, "m", "--resume"), 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "\"lora\":{"), "%s", tcli_out());
    double resumed = tcli_json_number(strstr(strstr(tcli_out(), "\"test\""), "\"all\""), "auc");
    cr_assert_eq(tcli_semctr(TRAIN, tx, d, d, "m2", ""), 0, "%s", tcli_out());
    double whole = tcli_json_number(strstr(strstr(tcli_out(), "\"test\""), "\"all\""), "auc");
    cr_assert_eq(resumed, whole, "resumed %.9f, uninterrupted %.9f", resumed, whole);
    /* bad LoRA settings: usage errors naming the flag; more layers than the encoder has: an error naming it */
    static const char *BAD[] = {"--msd-lora-rank -1", "--msd-lora-layers 0", "--msd-lora-lr 0", "--msd-lora-lr nan",
                                "--msd-lora-every 0"};
    for (size_t i = 0; i < sizeof BAD / sizeof *BAD; i++) {
        cr_assert_eq(tcli_semctr("train --method msd --msd-texts %s --data %s/data --model dnn --out %s/x %s", tx, d, d,
                                 BAD[i]),
                     2, "%s: %s", BAD[i], tcli_out());
        char flag[32];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(BAD[i], " "), BAD[i]);
        cr_assert(strstr(tcli_out(), flag), "%s: %s", BAD[i], tcli_out());
    }
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item --msd-texts %s --data %s/data --model dnn --out %s/x "
                             "--msd-lora-rank 4 --msd-lora-layers 7",
                             tx, d, d),
                 1, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "--msd-lora-layers 7") && strstr(tcli_out(), "6 layers"), "%s", tcli_out());
    snprintf(tx, sizeof tx, "rm -rf '%s'", d);
    cr_assert_eq(system(tx), 0);
}
