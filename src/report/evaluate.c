#include "report/evaluate.h"

#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "methods/msd/msd.h"
#include "train/trainer.h"

int sc_eval_load(sc_model_bundle *b, const char *path, const char *network, int n_threads, sc_model **out,
                 sc_error *err) {
    int rc = sc_model_bundle_load(b, path, n_threads, err);
    if (rc) return rc;
    const char *name = network ? network : sc_model_bundle_default_network(b);
    *out = sc_model_bundle_network(b, name);
    if (!*out) {
        rc = sc_fail(err, SC_ENOTFOUND, "%s: has no network '%s'", path, name);
        sc_model_bundle_free(b);
    }
    return rc;
}

int sc_eval_predict(const sc_model_bundle *b, sc_model *model, const sc_dataset *ds, const char *encoder_dir,
                    int n_threads, float **prob, int64_t *n_unknown, sc_error *err) {
    int64_t unknown = 0;
    *prob = NULL;
    if (n_unknown) *n_unknown = 0;
    if (ds->n_rows == 0) return sc_fail(err, SC_EINVAL, "cannot evaluate an empty split");
    *prob = sc_malloc((size_t)ds->n_rows * sizeof **prob);
    if (!*prob) return sc_fail(err, SC_ENOMEM, "out of memory for %lld scores", (long long)ds->n_rows);
    int rc;
    if (strcmp(b->method, "msd")) {
        rc = sc_predict_dataset(model, ds, NULL, 4096, *prob, err);
    } else {
        int64_t enc = 0;
        rc = sc_msd_bundle_predict(b, model, ds, encoder_dir, n_threads, *prob, &unknown, &enc, err);
        if (!rc && encoder_dir) sc_info("MSD: %lld new entities encoded with %s", (long long)enc, encoder_dir);
    }
    if (rc) {
        sc_free(*prob);
        *prob = NULL;
    } else if (n_unknown) {
        *n_unknown = unknown;
    }
    return rc;
}
