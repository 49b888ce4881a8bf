#include "lm/textvec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int sc_textvec_open(sc_textvec *t, const char *path, int n_threads, sc_error *err) {
    memset(t, 0, sizeof *t);
    if (ends_with(path, ".gguf")) {
        /* 512 positions: texts for CTR are short; longer ones are cut (sc_llama_embed) */
        int rc = sc_llama_load(&t->llm, path, 512, err);
        if (rc) return rc;
        if (n_threads > 0 && (rc = sc_llama_set_threads(t->llm, n_threads, err))) {
            sc_llama_free(t->llm);
            t->llm = NULL;
            return rc;
        }
        t->dim = t->llm->cfg.dim;
        const char *base = strrchr(path, '/');
        snprintf(t->name, sizeof t->name, "%s", base && base[1] ? base + 1 : path);
        return SC_OK;
    }
    int rc = sc_encoder_load(&t->enc, path, n_threads, err);
    if (rc) return rc;
    t->dim = sc_encoder_dim(t->enc);
    t->normalize = sc_encoder_normalizes(t->enc);
    snprintf(t->name, sizeof t->name, "%s", sc_encoder_name(t->enc));
    return SC_OK;
}

void sc_textvec_set_normalize(sc_textvec *t, int on) {
    t->normalize = on;
    if (t->enc) sc_encoder_set_normalize(t->enc, on);
}

int sc_textvec_encode(sc_textvec *t, const char *const *texts, int n, float *out, sc_error *err) {
    if (t->enc) return sc_encoder_encode(t->enc, texts, n, out, err);
    for (int i = 0; i < n; i++) {
        float *v = out + (int64_t)i * t->dim;
        int rc = sc_llama_embed(t->llm, texts[i], v, err);
        if (rc) return rc;
        if (t->normalize) {
            double ss = 0;
            for (int k = 0; k < t->dim; k++) ss += (double)v[k] * v[k];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (int k = 0; k < t->dim; k++) v[k] *= inv;
        }
    }
    return SC_OK;
}

void sc_textvec_close(sc_textvec *t) {
    if (t->enc) sc_encoder_free(t->enc);
    if (t->llm) sc_llama_free(t->llm);
    memset(t, 0, sizeof *t);
}
