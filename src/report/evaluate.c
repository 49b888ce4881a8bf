#include "report/evaluate.h"

#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
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
    /* a network with a dense side input outside MSD is ELEC's gain network: its per-row LLM vector needs the
     * language model, which scoring here (as serving) does without; say so rather than fail in the forward pass */
    if (strcmp(b->method, "msd") && sc_model_get_config(model)->extra_dim > 0) {
        const char *name = "?";
        for (int i = 0; i < b->n_networks; i++)
            if (b->networks[i].model == model) name = b->networks[i].name;
        return sc_fail(err, SC_EINVAL,
                       "%s: network '%s' takes a language-model vector per row (ELEC's gain network), which is not "
                       "computed here: score the vanilla network (the default); the file's training info holds the "
                       "gain network's validation and test metrics",
                       b->file.path, name);
    }
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
