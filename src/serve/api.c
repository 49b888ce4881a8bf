/* include/semctr.h over the internal scorer. The public status codes equal
 * the internal ones; the asserts keep them so. */
#include "semctr.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "serve/scorer.h"

_Static_assert((int)SEMCTR_EINVAL == (int)SC_EINVAL && (int)SEMCTR_EIO == (int)SC_EIO &&
                   (int)SEMCTR_ENOMEM == (int)SC_ENOMEM && (int)SEMCTR_EFORMAT == (int)SC_EFORMAT &&
                   (int)SEMCTR_ENOTFOUND == (int)SC_ENOTFOUND && (int)SEMCTR_EVERSION == (int)SC_EVERSION &&
                   (int)SEMCTR_EINTERRUPTED == (int)SC_EINTERRUPTED && (int)SEMCTR_EINTERNAL == (int)SC_EINTERNAL,
               "public status codes must equal the internal ones");
_Static_assert(sizeof(((semctr_error *)0)->message) == sizeof(((sc_error *)0)->msg), "message sizes");

struct semctr_model {
    sc_scorer *scorer;
};

static int put_error(semctr_error *out, const sc_error *e) {
    if (out) {
        out->code = e->code;
        snprintf(out->message, sizeof out->message, "%s", e->msg);
    }
    return e->code;
}

static void clear_error(semctr_error *out) {
    if (out) {
        out->code = SEMCTR_OK;
        out->message[0] = '\0';
    }
}

void semctr_options_init(semctr_options *o) {
    if (o) memset(o, 0, sizeof *o);
}

int semctr_load(semctr_model **out, const char *path, const semctr_options *opts, semctr_error *err) {
    sc_error e = {0};
    clear_error(err);
    if (!out) return put_error(err, &(sc_error){SC_EINVAL, "semctr_load: out is NULL"});
    *out = NULL;
    sc_scorer_options so = {0};
    if (opts) {
        so.network = opts->network;
        so.max_contexts = opts->max_concurrency;
        so.batch_cap = opts->max_batch_rows;
        so.threads_per_call = opts->threads_per_call;
        so.encoder = opts->encoder;
        if (opts->precision && !strcmp(opts->precision, "bf16"))
            so.bf16 = 1;
        else if (opts->precision && strcmp(opts->precision, "f32"))
            return put_error(err, &(sc_error){SC_EINVAL, "semctr_load: precision must be \"f32\" or \"bf16\""});
    }
    semctr_model *m = sc_calloc(1, sizeof *m);
    if (!m) return put_error(err, &(sc_error){SC_ENOMEM, "semctr_load: out of memory"});
    int rc = sc_scorer_load(&m->scorer, path, &so, &e);
    if (rc) {
        sc_free(m);
        return put_error(err, &e);
    }
    *out = m;
    return SEMCTR_OK;
}

void semctr_free(semctr_model *m) {
    if (!m) return;
    sc_scorer_free(m->scorer);
    sc_free(m);
}

int semctr_score(semctr_model *m, int n_rows, int n_cols, const char *const *columns,
                 const char *const *cells, float *scores, semctr_error *err) {
    sc_error e = {0};
    clear_error(err);
    if (!m) return put_error(err, &(sc_error){SC_EINVAL, "semctr_score: the model is NULL"});
    int rc = sc_scorer_score(m->scorer, n_rows, n_cols, columns, cells, scores, NULL, &e);
    return rc ? put_error(err, &e) : SEMCTR_OK;
}

int semctr_score_values(semctr_model *m, int n_rows, int n_cols, const char *const *columns,
                        const semctr_value *cells, float *scores, semctr_error *err) {
    sc_error e = {0};
    clear_error(err);
    if (!m) return put_error(err, &(sc_error){SC_EINVAL, "semctr_score_values: the model is NULL"});
    if (n_rows < 0 || n_cols < 0)
        return put_error(err, &(sc_error){SC_EINVAL, "semctr_score_values: negative row or column count"});
    if (n_rows == 0) return SEMCTR_OK;
    if (n_cols > 0 && !cells) return put_error(err, &(sc_error){SC_EINVAL, "semctr_score_values: cells is NULL"});
    size_t n;
    if (sc_mul_size((size_t)n_rows, (size_t)n_cols, &n))
        return put_error(err, &(sc_error){SC_EINVAL, "semctr_score_values: too many cells"});
    /* Numbers become text in one arena of 32 bytes per cell. */
    const char **text = sc_calloc(n ? n : 1, sizeof *text);
    char *nums = sc_malloc((n ? n : 1) * 32);
    int rc = SC_OK;
    if (!text || !nums) rc = sc_fail(&e, SC_ENOMEM, "semctr_score_values: out of memory for %zu cells", n);
    for (size_t i = 0; i < n && !rc; i++) {
        const semctr_value *v = &cells[i];
        if (v->type == SEMCTR_MISSING) {
            text[i] = NULL;
        } else if (v->type == SEMCTR_STRING) {
            text[i] = v->str;
        } else if (v->type == SEMCTR_NUMBER) {
            if (!isfinite(v->num))
                rc = sc_fail(&e, SC_EINVAL, "row %zu, column '%s': the number is not finite", i / n_cols,
                             columns && columns[i % n_cols] ? columns[i % n_cols] : "?");
            else
                text[i] = sc_format_number(v->num, nums + i * 32);
        } else {
            rc = sc_fail(&e, SC_EINVAL, "row %zu, column %zu: unknown value type %d", i / n_cols, i % n_cols,
                         (int)v->type);
        }
    }
    if (!rc) rc = sc_scorer_score(m->scorer, n_rows, n_cols, columns, text, scores, NULL, &e);
    sc_free(text);
    sc_free(nums);
    return rc ? put_error(err, &e) : SEMCTR_OK;
}

int semctr_input_columns(const semctr_model *m, const char *const **names) {
    if (!m) return 0;
    int n;
    const char *const *c = sc_scorer_input_columns(m->scorer, &n);
    if (names) *names = c;
    return n;
}

const char *semctr_model_network(const semctr_model *m) { return m ? sc_scorer_network(m->scorer) : ""; }
const char *semctr_model_backbone(const semctr_model *m) { return m ? sc_scorer_backbone(m->scorer) : ""; }
int semctr_model_n_fields(const semctr_model *m) {
    int n = 0;
    if (m) sc_schema_fields(sc_scorer_schema(m->scorer), &n);
    return n;
}

const char *semctr_strerror(int code) { return sc_strerror(code); }
const char *semctr_version(void) { return "0.1.0"; }
