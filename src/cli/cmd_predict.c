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

/* Text files this reads are UTF-8. A UTF-16 or UTF-32 file (a byte-order
 * mark, or NUL bytes in its first line) is refused with a hint, not read
 * as columns nobody asked for. */
static int check_encoding(const char *path, sc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return SC_OK; /* the CSV reader reports it */
    unsigned char b[512];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    const char *what = NULL;
    if (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF)))
        what = "starts with a UTF-16 (or UTF-32) byte-order mark";
    for (size_t i = 0; i < n && !what && b[i] != '\n'; i++)
        if (!b[i]) what = "has NUL bytes in its first line (UTF-16 or UTF-32 text, or not text at all)";
    if (!what) return SC_OK;
    return sc_fail(err, SC_EINVAL, "%s %s: semctr reads UTF-8 text; convert it first, e.g. "
                                   "iconv -f UTF-16 -t UTF-8 %s > rows.csv", path, what, path);
}

/* The header's names the model reads: none is an error (a wrong file or
 * --delimiter, not rows of missing values to score). */
static int check_columns(const sc_schema *schema, const char *path, int n_cols, const char *const *names,
                         sc_error *err) {
    int nk, hits = 0;
    const char *const *known = sc_schema_input_columns(schema, &nk);
    for (int c = 0; c < n_cols; c++)
        for (int k = 0; k < nk; k++) hits += !strcmp(names[c], known[k]);
    if (hits) return SC_OK;
    char have[512] = "", want[512] = "";
    for (int c = 0; c < n_cols; c++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s'%.60s'", c ? ", " : "", names[c]);
    for (int k = 0; k < nk; k++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", k ? ", " : "", known[k]);
    return sc_fail(err, SC_EINVAL,
                   "%s: none of its columns (%s) is one the model reads (%s); is the header row right, and the "
                   "delimiter (--delimiter)?", path, have, want);
}

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
    if (!rc) rc = check_encoding(input, &err);
    if (!rc) rc = sc_csv_chunks_open(&csv, input, delim, &err);
    if (!rc) {
        rc = sc_atomic_open(&out, output, &err);
        out_open = !rc;
    }
    int64_t total = 0;
    int id_index = -2; /* -2: not looked up yet; -1: absent */
    const char **names = NULL; /* the header, a UTF-8 byte-order mark taken off its first name */
    if (!rc) fprintf(out.fp, id_col ? "%s,score\n" : "score\n", id_col ? id_col : "");
    while (!rc) {
        int n_rows, n_cols;
        const char *const *header, *const *cells;
        rc = sc_csv_chunks_next(csv, (int)batch, &n_rows, &n_cols, &header, &cells, &err);
        if (!rc && !names) {
            if (!(names = sc_malloc((size_t)n_cols * sizeof *names))) {
                rc = sc_fail(&err, SC_ENOMEM, "out of memory");
                break;
            }
            memcpy(names, header, (size_t)n_cols * sizeof *names);
            if (!strncmp(names[0], "\xEF\xBB\xBF", 3)) names[0] += 3; /* as spreadsheets write UTF-8 */
            rc = check_columns(b.schema, input, n_cols, names, &err);
        }
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
            if (!isfinite(z)) { /* never written as a score */
                rc = sc_fail(&err, SC_EINVAL,
                             "%s: data row %lld: the network's score is not a number (logit %g): its weights, or a "
                             "value of this row it overflows on", input, (long long)(total + i + 1), (double)z);
                break;
            }
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
    sc_free(names);
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
