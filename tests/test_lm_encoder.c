/* lm: sentence embeddings against sentence-transformers (committed fixture
 * of 323 texts made by tests/fixtures/gen_embed_fixture.py), kernels against
 * their plain versions, and bad model directories. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/bert.h"
#include "lm/encoder.h"
#include "lm/qmatmul.h" /* sc_cpu_has_bf16 */
#include "test_lm_util.h"

static char **load_texts(int *n_out) {
    FILE *f = fopen(lmt_fixture("embed_minilm.txt"), "r");
    cr_assert(f);
    char **t = malloc(1024 * sizeof *t);
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0 && n < 1024) {
        size_t hl = strcspn(line, "\n");
        t[n] = malloc(hl / 2 + 1);
        lmt_unhex(line, hl, t[n]);
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return t;
}

Test(lm_encoder, matches_sentence_transformers, .timeout = 300) {
    int n;
    char **texts = load_texts(&n);
    cr_assert_geq(n, 300);
    sc_encoder *enc;
    sc_error e;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 0, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_encoder_dim(enc), 384);
    cr_assert_eq(sc_encoder_max_length(enc), 256);
    cr_assert_eq(sc_encoder_pooling(enc), SC_LM_POOL_MEAN);
    cr_assert(sc_encoder_normalizes(enc));
    cr_assert_str_eq(sc_encoder_name(enc), "all-MiniLM-L6-v2");
    const int D = 384;
    float *got = malloc(sizeof(float) * (size_t)n * D), *ref = malloc(sizeof(float) * (size_t)n * D);
    FILE *f = fopen(lmt_fixture("embed_minilm.f32"), "rb");
    cr_assert(f);
    cr_assert_eq(fread(ref, sizeof(float), (size_t)n * D, f), (size_t)n * D);
    fclose(f);
    cr_assert_eq(sc_encoder_encode(enc, (const char *const *)texts, n, got, &e), SC_OK, "%s", e.msg);
    double min_cos = 1, max_diff = 0;
    int worst = 0;
    for (int i = 0; i < n; i++) {
        double dot = 0, a = 0, b = 0;
        for (int k = 0; k < D; k++) {
            double x = got[i * D + k], y = ref[i * D + k];
            dot += x * y;
            a += x * x;
            b += y * y;
            if (fabs(x - y) > max_diff) max_diff = fabs(x - y);
        }
        double c = dot / sqrt(a * b);
        if (c < min_cos) {
            min_cos = c;
            worst = i;
        }
    }
    cr_assert_geq(min_cos, 0.99999, "min cosine %.8f (text %d)", min_cos, worst);
    cr_assert_leq(max_diff, 1e-4, "max abs diff %g", max_diff);
    /* batch size and order do not change the result */
    sc_encoder_set_batch(enc, 7);
    float *again = malloc(sizeof(float) * 20 * D);
    const char *sub[20];
    for (int i = 0; i < 20; i++) sub[i] = texts[n - 1 - i * 3];
    cr_assert_eq(sc_encoder_encode(enc, sub, 20, again, &e), SC_OK);
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < D; k++)
            cr_assert_float_eq(again[i * D + k], got[(n - 1 - i * 3) * D + k], 1e-5, "text %d dim %d", i, k);
    free(again);
    free(got);
    free(ref);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    sc_encoder_free(enc);
}

/* --precision bf16: weights and activations of the four GEMMs rounded to
 * bfloat16, sums in float. The bound is the one the default rests on
 * (docs/embed.md; bench/bench_embed.py measures it on 4,400 texts): cosine
 * >= 0.9999 to float. Switching back gives float's bits again. Without
 * AVX512_BF16 the plain C kernel runs (slow), so fewer texts. */
Test(lm_encoder, bf16_precision_stays_near_float, .timeout = 300) {
    int n_all;
    char **texts = load_texts(&n_all);
    int n = sc_cpu_has_bf16() ? n_all : 24;
    sc_encoder *enc;
    sc_error e;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 2, &e), SC_OK, "%s", e.msg);
    sc_bert *m = sc_encoder_bert(enc);
    const int D = 384;
    float *f32 = malloc(sizeof(float) * (size_t)n * D), *bf = malloc(sizeof(float) * (size_t)n * D),
          *back = malloc(sizeof(float) * (size_t)n * D);
    cr_assert_eq(sc_encoder_encode(enc, (const char *const *)texts, n, f32, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_bert_set_precision(m, SC_BERT_BF16, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_encoder_encode(enc, (const char *const *)texts, n, bf, &e), SC_OK, "%s", e.msg);
    double min_cos = 1;
    int worst = 0, differ = 0;
    for (int i = 0; i < n; i++) {
        double dot = 0, a = 0, b = 0;
        for (int k = 0; k < D; k++) {
            dot += (double)f32[i * D + k] * bf[i * D + k];
            a += (double)f32[i * D + k] * f32[i * D + k];
            b += (double)bf[i * D + k] * bf[i * D + k];
            differ += f32[i * D + k] != bf[i * D + k];
        }
        if (dot / sqrt(a * b) < min_cos) min_cos = dot / sqrt(a * b), worst = i;
    }
    cr_assert_geq(min_cos, 0.9999, "bf16 vs f32: min cosine %.8f (text %d)", min_cos, worst);
    cr_assert_gt(differ, n * D / 2, "bf16 gave float's values: the bfloat16 path did not run");
    cr_assert_eq(sc_bert_set_precision(m, SC_BERT_F32, &e), SC_OK);
    cr_assert_null(m->bf16_weights);
    cr_assert_eq(sc_encoder_encode(enc, (const char *const *)texts, n, back, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(memcmp(back, f32, sizeof(float) * (size_t)n * D), 0, "f32 after bf16 is not float's bits");
    cr_assert_eq(sc_bert_set_precision(m, 7, &e), SC_EINVAL);
    free(f32), free(bf), free(back);
    for (int i = 0; i < n_all; i++) free(texts[i]);
    free(texts);
    sc_encoder_free(enc);
}

Test(lm_encoder, attention_kernel_matches_plain) {
    sc_rng r;
    sc_rng_seed(&r, 7);
    int Ts[] = {1, 2, 15, 16, 17, 33, 130};
    for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++)
        for (int HS = 16; HS <= 64; HS += 16) {
            int T = Ts[ti], ld = HS * 2 + 3;
            size_t n = (size_t)T * ld;
            float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o1 = calloc(n, 4), *o2 = calloc(n, 4);
            float bq[64], bk[64], bv[64];
            for (size_t i = 0; i < n; i++) {
                q[i] = sc_rng_normal(&r) * 2;
                k[i] = sc_rng_normal(&r) * 2;
                v[i] = sc_rng_normal(&r);
            }
            for (int d = 0; d < HS; d++) {
                bq[d] = sc_rng_normal(&r);
                bk[d] = sc_rng_normal(&r);
                bv[d] = sc_rng_normal(&r);
            }
            float *scr = malloc(sizeof(float) * (size_t)sc_attention_scratch(T, HS));
            sc_attention_head(o1, q, k, v, bq, bk, bv, T, HS, ld, ld, scr);
            sc_attention_head_ref(o2, q, k, v, bq, bk, bv, T, HS, ld, ld, scr);
            for (int i = 0; i < T; i++)
                for (int d = 0; d < HS; d++)
                    cr_assert_float_eq(o1[i * ld + d], o2[i * ld + d], 1e-4, "T %d HS %d [%d,%d]", T, HS, i, d);
            free(q), free(k), free(v), free(o1), free(o2), free(scr);
        }
}

Test(lm_encoder, gelu_and_exp_match_libm) {
    float a[4001], b[4001];
    for (int i = 0; i < 4001; i++) a[i] = b[i] = (float)(i - 2000) / 200.0f;
    sc_gelu_forward(a, 4001);
    sc_gelu_forward_ref(b, 4001);
    for (int i = 0; i < 4001; i++) cr_assert_float_eq(a[i], b[i], 5e-7f * (1 + fabsf(b[i])), "x = %g", (i - 2000) / 200.0);
    for (float x = -87; x < 88; x += 0.37f)
        cr_assert_float_eq(sc_exp_approx(x), expf(x), 4e-7f * expf(x), "exp(%g)", x);
}

/* A model directory with the real files linked in and config.json replaced. */
static void fake_model(char *dir, const char *config, int link_weights) {
    strcpy(dir, "/tmp/sc_model_XXXXXX");
    cr_assert(mkdtemp(dir));
    char p[4300], q[4300];
    const char *files[] = {"tokenizer.json", "vocab.txt", "modules.json", "sentence_bert_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", lmt_model_dir(), files[i]);
        snprintf(q, sizeof q, "%s/%s", dir, files[i]);
        cr_assert_eq(symlink(p, q), 0);
    }
    if (link_weights) {
        snprintf(p, sizeof p, "%s/model.safetensors", lmt_model_dir());
        snprintf(q, sizeof q, "%s/model.safetensors", dir);
        cr_assert_eq(symlink(p, q), 0);
    }
    snprintf(q, sizeof q, "%s/config.json", dir);
    FILE *f = fopen(q, "w");
    fputs(config, f);
    fclose(f);
}

static void rm_model(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#define CFG(hidden, layers, extra)                                                                              \
    "{\"model_type\":\"bert\",\"vocab_size\":30522,\"hidden_size\":" #hidden ",\"num_hidden_layers\":" #layers \
    ",\"num_attention_heads\":12,\"intermediate_size\":1536,\"max_position_embeddings\":512" extra "}"

Test(lm_encoder, bad_model_directories) {
    char dir[64];
    sc_encoder *enc = NULL;
    sc_error e;
    cr_assert_eq(sc_encoder_load(&enc, "/nonexistent/model", 1, &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "/nonexistent/model/config.json"), "%s", e.msg);

    fake_model(dir, CFG(384, 6, ""), 1); /* the real config, rewritten: loads */
    cr_assert_eq(sc_encoder_load(&enc, dir, 1, &e), SC_OK, "%s", e.msg);
    sc_encoder_free(enc);
    rm_model(dir);

    fake_model(dir, CFG(768, 6, ""), 1); /* hidden size that the tensors do not have */
    cr_assert_neq(sc_encoder_load(&enc, dir, 1, &e), SC_OK);
    cr_assert(strstr(e.msg, "embeddings.word_embeddings.weight") && strstr(e.msg, "model.safetensors"), "%s", e.msg);
    rm_model(dir);

    fake_model(dir, CFG(384, 5, ""), 1); /* fewer layers than the checkpoint */
    cr_assert_neq(sc_encoder_load(&enc, dir, 1, &e), SC_OK);
    cr_assert(strstr(e.msg, "encoder.layer.5"), "%s", e.msg);
    rm_model(dir);

    fake_model(dir, CFG(384, 7, ""), 1); /* more layers than the checkpoint */
    cr_assert_neq(sc_encoder_load(&enc, dir, 1, &e), SC_OK);
    cr_assert(strstr(e.msg, "encoder.layer.6") && strstr(e.msg, "not found"), "%s", e.msg);
    rm_model(dir);

    fake_model(dir, CFG(384, 6, ",\"hidden_act\":\"relu\""), 1);
    cr_assert_neq(sc_encoder_load(&enc, dir, 1, &e), SC_OK);
    cr_assert(strstr(e.msg, "hidden_act") && strstr(e.msg, "config.json"), "%s", e.msg);
    rm_model(dir);

    fake_model(dir, "{\"model_type\":\"bert\",\"hidden_size\":384}", 1);
    cr_assert_neq(sc_encoder_load(&enc, dir, 1, &e), SC_OK);
    cr_assert(strstr(e.msg, "vocab_size") && strstr(e.msg, "missing"), "%s", e.msg);
    rm_model(dir);

    fake_model(dir, CFG(384, 6, ""), 0); /* no weights */
    cr_assert_eq(sc_encoder_load(&enc, dir, 1, &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "model.safetensors"), "%s", e.msg);
    rm_model(dir);
}

Test(lm_encoder, tokenize_and_settings) {
    sc_encoder *enc;
    sc_error e;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 1, &e), SC_OK, "%s", e.msg);
    int ids[300], n;
    cr_assert_eq(sc_encoder_tokenize(enc, "Hello, world!", ids, 300, &n, &e), SC_OK);
    cr_assert_eq(n, 6);
    cr_assert_eq(ids[0], 101);
    cr_assert_eq(ids[5], 102);
    cr_assert_eq(sc_encoder_set_max_length(enc, 513), SC_EINVAL);
    cr_assert_eq(sc_encoder_set_batch(enc, 0), SC_EINVAL);
    sc_encoder_free(enc);
}
