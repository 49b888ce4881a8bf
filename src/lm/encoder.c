/* Sentence encoder over the BERT forward pass; see encoder.h. */
#include "lm/encoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "lm/bert.h"
#include "text/wordpiece.h"

struct sc_encoder {
    sc_bert bert;
    sc_wordpiece *tok;
    char name[256];
    sc_lm_pooling pooling;
    int normalize;
    int max_length;
    int batch;
    int n_threads;
    sc_encoder_progress_fn progress;
    void *progress_ctx;
};

/* Parse a small JSON file; a missing file gives *out = NULL and SC_OK. */
static int read_json_opt(const char *path, cJSON **out, sc_error *err) {
    *out = NULL;
    if (!sc_file_exists(path)) return SC_OK;
    char *buf;
    size_t len;
    int rc = sc_read_file(path, &buf, &len, err);
    if (rc != SC_OK) return rc;
    *out = cJSON_ParseWithLength(buf, len);
    sc_free(buf);
    if (!*out) return sc_fail(err, SC_EFORMAT, "%s: not valid JSON", path);
    return SC_OK;
}

static int read_st_config(sc_encoder *e, const char *dir, sc_error *err) {
    char path[4500];
    cJSON *j;
    /* modules.json: where the pooling config is, and whether to normalise */
    char pool_dir[4400];
    snprintf(pool_dir, sizeof pool_dir, "%s/1_Pooling", dir);
    snprintf(path, sizeof path, "%s/modules.json", dir);
    int rc = read_json_opt(path, &j, err);
    if (rc != SC_OK) return rc;
    if (j) {
        if (!cJSON_IsArray(j)) {
            cJSON_Delete(j);
            return sc_fail(err, SC_EFORMAT, "%s: expected a JSON array of modules", path);
        }
        for (const cJSON *m = j->child; m; m = m->next) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type");
            const cJSON *mp = cJSON_GetObjectItemCaseSensitive(m, "path");
            if (!cJSON_IsString(type)) continue;
            const char *t = type->valuestring;
            size_t tl = strlen(t);
            if (tl >= 9 && strcmp(t + tl - 9, "Normalize") == 0) e->normalize = 1;
            if (tl >= 7 && strcmp(t + tl - 7, "Pooling") == 0 && cJSON_IsString(mp))
                snprintf(pool_dir, sizeof pool_dir, "%s/%s", dir, mp->valuestring);
        }
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/config.json", pool_dir);
    rc = read_json_opt(path, &j, err);
    if (rc != SC_OK) return rc;
    if (j) {
        int mean = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_mean_tokens"));
        int cls = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_cls_token"));
        int mx = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_max_tokens"));
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(j, "pooling_mode");
        if (cJSON_IsString(mode)) {
            mean = strcmp(mode->valuestring, "mean") == 0;
            cls = strcmp(mode->valuestring, "cls") == 0;
            mx = strcmp(mode->valuestring, "max") == 0;
        }
        int other = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_mean_sqrt_len_tokens")) ||
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_weightedmean_tokens")) ||
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pooling_mode_lasttoken"));
        cJSON_Delete(j);
        if (mean + cls + mx != 1 || other)
            return sc_fail(err, SC_EFORMAT, "%s: exactly one of mean, cls or max pooling is supported", path);
        e->pooling = mean ? SC_LM_POOL_MEAN : cls ? SC_LM_POOL_CLS : SC_LM_POOL_MAX;
    }
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    rc = read_json_opt(path, &j, err);
    if (rc != SC_OK) return rc;
    if (j) {
        const cJSON *ml = cJSON_GetObjectItemCaseSensitive(j, "max_seq_length");
        if (cJSON_IsNumber(ml)) {
            if (ml->valueint < 2) {
                cJSON_Delete(j);
                return sc_fail(err, SC_EFORMAT, "%s: max_seq_length must be at least 2", path);
            }
            if (ml->valueint < e->max_length) e->max_length = ml->valueint;
        }
        cJSON_Delete(j);
    }
    return SC_OK;
}

int sc_encoder_load(sc_encoder **out, const char *model_dir, int n_threads, sc_error *err) {
    *out = NULL;
    sc_encoder *e = sc_calloc(1, sizeof *e);
    if (!e) return sc_fail(err, SC_ENOMEM, "out of memory");
    e->n_threads = n_threads > 0 ? n_threads : sc_default_threads();
    e->batch = 32;
    e->pooling = SC_LM_POOL_MEAN;
    int rc = sc_bert_load(&e->bert, model_dir, e->n_threads, err);
    if (rc == SC_OK) rc = sc_wordpiece_load_dir(&e->tok, model_dir, err);
    if (rc == SC_OK && sc_wordpiece_vocab_size(e->tok) > e->bert.cfg.vocab_size)
        rc = sc_fail(err, SC_EFORMAT, "%s: the tokenizer has %d tokens but config.json's vocab_size is %d", model_dir,
                     sc_wordpiece_vocab_size(e->tok), e->bert.cfg.vocab_size);
    e->max_length = e->bert.cfg.max_pos;
    if (rc == SC_OK) rc = read_st_config(e, model_dir, err);
    if (rc != SC_OK) {
        sc_encoder_free(e);
        return rc;
    }
    size_t n = strlen(model_dir);
    while (n > 1 && model_dir[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && model_dir[s - 1] != '/') s--;
    snprintf(e->name, sizeof e->name, "%.*s", (int)(n - s), model_dir + s);
    *out = e;
    return SC_OK;
}

void sc_encoder_free(sc_encoder *e) {
    if (!e) return;
    sc_bert_free(&e->bert);
    sc_wordpiece_free(e->tok);
    sc_free(e);
}

int sc_encoder_dim(const sc_encoder *e) { return e->bert.cfg.hidden; }
const char *sc_encoder_name(const sc_encoder *e) { return e->name; }
int sc_encoder_max_length(const sc_encoder *e) { return e->max_length; }
sc_lm_pooling sc_encoder_pooling(const sc_encoder *e) { return e->pooling; }
int sc_encoder_normalizes(const sc_encoder *e) { return e->normalize; }
struct sc_bert *sc_encoder_bert(sc_encoder *e) { return &e->bert; }
void sc_encoder_set_normalize(sc_encoder *e, int on) { e->normalize = on != 0; }

int sc_encoder_set_batch(sc_encoder *e, int batch) {
    if (batch < 1 || batch > 65536) return SC_EINVAL;
    e->batch = batch;
    return SC_OK;
}

int sc_encoder_set_max_length(sc_encoder *e, int max_length) {
    if (max_length < 2 || max_length > e->bert.cfg.max_pos) return SC_EINVAL;
    e->max_length = max_length;
    return SC_OK;
}

void sc_encoder_set_progress(sc_encoder *e, sc_encoder_progress_fn fn, void *ctx) {
    e->progress = fn;
    e->progress_ctx = ctx;
}

int sc_encoder_tokenize(sc_encoder *e, const char *text, int *ids, int cap, int *n_ids, sc_error *err) {
    sc_tokens t = {0};
    int rc = sc_wordpiece_encode(e->tok, text, strlen(text), e->max_length, &t, err);
    if (rc == SC_OK) {
        for (int i = 0; i < t.n && i < cap; i++) ids[i] = t.ids[i];
        *n_ids = t.n;
    }
    sc_tokens_free(&t);
    return rc;
}

/* ---- batch encoding ---- */

typedef struct tok_ctx {
    sc_encoder *e;
    const char *const *texts;
    int n, n_tasks;
    int32_t **ids;
    int *len;
    int failed;
} tok_ctx;

static void tok_task(void *ctx, int task) {
    tok_ctx *t = ctx;
    sc_tokens buf = {0};
    for (int i = task; i < t->n; i += t->n_tasks) {
        const char *s = t->texts[i] ? t->texts[i] : "";
        if (sc_wordpiece_encode(t->e->tok, s, strlen(s), t->e->max_length, &buf, NULL) != SC_OK ||
            !(t->ids[i] = sc_malloc((size_t)buf.n * sizeof(int32_t)))) {
            t->failed = 1;
            break;
        }
        memcpy(t->ids[i], buf.ids, (size_t)buf.n * sizeof(int32_t));
        t->len[i] = buf.n;
    }
    sc_tokens_free(&buf);
}

static int cmp_by_len(const void *a, const void *b, void *ctx) {
    const int *sort_len = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_len[x] != sort_len[y]) return sort_len[y] - sort_len[x];
    return x - y;
}

static void pool(const sc_encoder *e, const float *h, int T, float *out) {
    const int C = e->bert.cfg.hidden;
    if (e->pooling == SC_LM_POOL_CLS) {
        memcpy(out, h, (size_t)C * sizeof(float));
    } else if (e->pooling == SC_LM_POOL_MAX) {
        memcpy(out, h, (size_t)C * sizeof(float));
        for (int t = 1; t < T; t++)
            for (int c = 0; c < C; c++) out[c] = h[(int64_t)t * C + c] > out[c] ? h[(int64_t)t * C + c] : out[c];
    } else {
        for (int c = 0; c < C; c++) out[c] = 0;
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) out[c] += h[(int64_t)t * C + c];
        for (int c = 0; c < C; c++) out[c] /= (float)T;
    }
    if (e->normalize) { /* as torch.nn.functional.normalize: x / max(||x||, 1e-12) */
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)out[c] * out[c];
        float nrm = (float)sqrt(ss);
        if (nrm < 1e-12f) nrm = 1e-12f;
        for (int c = 0; c < C; c++) out[c] /= nrm;
    }
}

int sc_encoder_encode(sc_encoder *e, const char *const *texts, int n, float *out, sc_error *err) {
    if (n <= 0) return SC_OK;
    tok_ctx t = {.e = e, .texts = texts, .n = n, .n_tasks = e->n_threads};
    t.ids = sc_calloc((size_t)n, sizeof *t.ids);
    t.len = sc_calloc((size_t)n, sizeof *t.len);
    int *order = sc_calloc((size_t)n, sizeof *order);
    int32_t *packed = NULL;
    int rc = SC_OK;
    if (!t.ids || !t.len || !order) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory for %d texts", n);
        goto done;
    }
    sc_parallel_for(t.n_tasks, t.n_tasks, tok_task, &t);
    if (t.failed) {
        rc = sc_fail(err, SC_ENOMEM, "out of memory while tokenizing %d texts", n);
        goto done;
    }
    /* Longest first: batches of similar lengths, and the largest activation
     * buffer is allocated once, at the first batch. */
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_by_len, t.len);
    packed = sc_malloc((size_t)e->batch * (size_t)e->max_length * sizeof *packed);
    int *blen = sc_malloc((size_t)e->batch * sizeof *blen);
    if (!packed || !blen) {
        sc_free(blen);
        rc = sc_fail(err, SC_ENOMEM, "out of memory for a batch");
        goto done;
    }
    const int C = e->bert.cfg.hidden;
    for (int s = 0; s < n && rc == SC_OK; s += e->batch) {
        int B = n - s < e->batch ? n - s : e->batch;
        int64_t at = 0;
        for (int b = 0; b < B; b++) {
            int i = order[s + b];
            memcpy(packed + at, t.ids[i], (size_t)t.len[i] * sizeof *packed);
            blen[b] = t.len[i];
            at += t.len[i];
        }
        rc = sc_bert_forward(&e->bert, packed, blen, B, err);
        if (rc != SC_OK) break;
        at = 0;
        for (int b = 0; b < B; b++) {
            pool(e, e->bert.a.x + at * C, blen[b], out + (int64_t)order[s + b] * C);
            at += blen[b];
        }
        if (e->progress) e->progress(e->progress_ctx, s + B, n);
    }
    sc_free(blen);
done:
    if (t.ids)
        for (int i = 0; i < n; i++) sc_free(t.ids[i]);
    sc_free(t.ids);
    sc_free(t.len);
    sc_free(order);
    sc_free(packed);
    return rc;
}
