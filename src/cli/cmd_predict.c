/* semctr predict: score the rows of a CSV file (raw columns, as in the click
 * log) with a model file; no dataset preparation needed, the model carries
 * its schema and vocabularies. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "cli/cli.h"
#include "data/schema.h"
#include "train/modelfile.h"
#include "methods/msd/msd.h"

static const char *USAGE =
    "usage: semctr predict --model FILE --input CSV --output CSV [options]\n"
    "\n"
    "Scores every row of CSV (a header row names the raw columns, as in the click\n"
    "log the model was trained on; unknown categories fall into the OOV bucket,\n"
    "missing columns count as missing values) and writes one score per row.\n"
    "\n"
    "  --network NAME    network of a multi-network model (ELEC: vanilla)\n"
    "  --delimiter D     field separator of the input (,)\n"
    "  --id-column COL   copy this input column next to the score\n"
    "  --batch-size N    rows scored at once (4096)\n"
    "  --threads N       (all cores)\n";

int cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *input = NULL, *output = NULL, *network = NULL, *delim = ",", *id_col = NULL;
    long batch = 4096, threads = sc_default_threads();
    const cli_opt opts[] = {
        CLI_STR("--model", &model_path),
        CLI_STR("--input", &input),
        CLI_STR("--output", &output),
        CLI_STR("--network", &network),
        CLI_STR("--delimiter", &delim),
        CLI_STR("--id-column", &id_col),
        CLI_INT("--batch-size", &batch, 1, 1 << 20),
        CLI_INT("--threads", &threads, 1, 256),
    };
    int code = cli_parse("predict", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!model_path || !input || !output) {
        fprintf(stderr, "semctr predict: --model, --input and --output are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    sc_error err = {0};
    sc_model_bundle b;
    int rc = sc_model_bundle_load(&b, model_path, (int)threads, &err);
    if (rc) return cli_fail("predict", &err);
    const char *name = network ? network : sc_model_bundle_default_network(&b);
    sc_model *m = sc_model_bundle_network(&b, name);
    sc_csv_chunks *csv = NULL;
    sc_batch batch_buf = {0};
    float *logits = NULL;
    sc_atomic_file out = {0};
    int out_open = 0;
    sc_msd_model msd = {0};
    float *extra = NULL;
    int64_t unknown = 0;
    int is_msd = !strcmp(b.method, "msd");
    if (!m) rc = sc_fail(&err, SC_ENOTFOUND, "%s has no network '%s'", model_path, name);
    else if (is_msd) {
        /* MSD: the semantic fields are lookups in the file's tables */
        rc = sc_msd_model_load(&msd, &b, &err);
        if (!rc && !(extra = sc_malloc((size_t)batch * (msd.K ? msd.K * msd.D : 1) * sizeof(float))))
            rc = sc_fail(&err, SC_ENOMEM, "out of memory");
    } else if (sc_model_get_config(m)->extra_dim > 0)
        rc = sc_fail(&err, SC_EINVAL, "network '%s' needs language-model vectors; score with the vanilla network", name);
    int nf;
    const sc_field_info *fields = sc_schema_fields(b.schema, &nf);
    if (!rc) rc = sc_batch_alloc(&batch_buf, fields, nf, (int)batch, &err);
    if (!rc) {
        logits = sc_malloc((size_t)batch * sizeof *logits);
        if (!logits) rc = sc_fail(&err, SC_ENOMEM, "out of memory");
    }
    if (!rc) rc = sc_csv_chunks_open(&csv, input, delim, &err);
    if (!rc) {
        rc = sc_atomic_open(&out, output, &err);
        out_open = !rc;
    }
    int64_t total = 0;
    int id_index = -2; /* -2: not looked up yet; -1: absent */
    if (!rc) fprintf(out.fp, id_col ? "%s,score\n" : "score\n", id_col ? id_col : "");
    while (!rc) {
        int n_rows, n_cols;
        const char *const *names, *const *cells;
        rc = sc_csv_chunks_next(csv, (int)batch, &n_rows, &n_cols, &names, &cells, &err);
        if (rc || n_rows == 0) break;
        if (id_col && id_index == -2) {
            id_index = -1;
            for (int c = 0; c < n_cols; c++)
                if (!strcmp(names[c], id_col)) id_index = c;
            if (id_index < 0) {
                rc = sc_fail(&err, SC_ENOTFOUND, "%s: no column '%s' for --id-column", input, id_col);
                break;
            }
        }
        rc = sc_schema_encode(b.schema, n_rows, n_cols, names, cells, &batch_buf, &err);
        if (!rc && is_msd) {
            rc = sc_msd_model_extra(&msd, &batch_buf, NULL, NULL, extra, &unknown, &err);
            batch_buf.extra = extra;
        }
        if (!rc) rc = sc_model_forward(m, &batch_buf, 0, logits, &err);
        for (int i = 0; i < n_rows && !rc; i++) {
            float z = logits[i];
            double p = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
            if (id_col) {
                const char *idv = cells[(size_t)i * n_cols + id_index];
                fprintf(out.fp, "%s,%.9g\n", idv ? idv : "", p);
            } else {
                fprintf(out.fp, "%.9g\n", p);
            }
        }
        total += n_rows;
    }
    if (!rc && out_open) {
        rc = sc_atomic_commit(&out, &err);
        out_open = 0;
    }
    if (out_open) sc_atomic_abort(&out);
    if (csv) sc_csv_chunks_close(csv);
    sc_batch_free(&batch_buf);
    sc_free(logits);
    sc_free(extra);
    sc_msd_model_free(&msd);
    sc_model_bundle_free(&b);
    if (rc) return cli_fail("predict", &err);
    if (unknown)
        fprintf(stderr, "MSD: %lld user/item ids were not in the model's semantic tables (zeros used)\n",
                (long long)unknown);
    fprintf(stderr, "scored %lld rows of %s into %s\n", (long long)total, input, output);
    return 0;
}
