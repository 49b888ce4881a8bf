#include "report/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "ctr/model.h"
#include "report/evaluate.h"
#include "report/html.h"
#include "train/modelfile.h"

enum { CURVE_POINTS = 400 }; /* per curve: finer than a 400 px plot can show */

/* ---- training logs ---- */

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int sc_report_read_log(const char *path, sc_report_epoch **out, int *n, sc_error *err) {
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    *n = 0;
    int rc = sc_read_file(path, &text, &len, err);
    if (rc) return sc_fail_prefix(err, "training log: ");
    int cap = 0, line_no = 0;
    for (char *line = text; line && *line && !rc;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p) {
            cJSON *o = cJSON_Parse(p);
            const cJSON *ep = o ? cJSON_GetObjectItemCaseSensitive(o, "epoch") : NULL;
            const cJSON *auc = o ? cJSON_GetObjectItemCaseSensitive(o, "valid_auc") : NULL;
            if (!cJSON_IsObject(o)) {
                rc = sc_fail(err, SC_EFORMAT, "%s:%d: not a JSON object (a training log from `semctr train --log`?)",
                             path, line_no);
            } else if (!cJSON_IsNumber(ep) || !cJSON_IsNumber(auc)) {
                rc = sc_fail(err, SC_EFORMAT, "%s:%d: no numeric \"%s\" (a training log has epoch and valid_auc)",
                             path, line_no, cJSON_IsNumber(ep) ? "valid_auc" : "epoch");
            } else {
                if (*n == cap) {
                    cap = cap ? 2 * cap : 16;
                    sc_report_epoch *g = sc_realloc(*out, (size_t)cap * sizeof *g);
                    if (!g) rc = sc_fail(err, SC_ENOMEM, "%s: out of memory", path);
                    else *out = g;
                }
                if (!rc) {
                    const cJSON *best = cJSON_GetObjectItemCaseSensitive(o, "best");
                    double gauc = num_or_nan(o, "valid_gauc");
                    (*out)[(*n)++] = (sc_report_epoch){
                        .epoch = ep->valueint,
                        .train_loss = num_or_nan(o, "train_loss"),
                        .valid_auc = auc->valuedouble,
                        .valid_gauc = gauc == -1 ? NAN : gauc, /* the log writes an undefined gAUC as -1 */
                        .valid_logloss = num_or_nan(o, "valid_logloss"),
                        .lr = num_or_nan(o, "lr"),
                        .best = cJSON_IsTrue(best),
                    };
                }
            }
            cJSON_Delete(o);
        }
        line = next;
    }
    sc_free(text);
    if (!rc && *n == 0) rc = sc_fail(err, SC_EFORMAT, "%s: the training log holds no epoch", path);
    if (rc) {
        sc_free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- collecting ---- */

static int has_categorical(const sc_dataset *ds, const char *name) {
    for (int f = 0; f < ds->n_fields; f++)
        if (!strcmp(ds->fields[f].name, name)) return ds->fields[f].kind == SC_FIELD_CATEGORICAL;
    return 0;
}

/* Slices of one entity: an absent field is an error only when asked for by name. */
static int entity_slices(sc_report *r, const char *field, const char *entity, int given, sc_error *err) {
    if (!given && !(has_categorical(&r->ds, field) && has_categorical(&r->train, field))) {
        if (r->n_notes < 4)
            snprintf(r->notes[r->n_notes++], sizeof r->notes[0],
                     "No %s slices: the dataset has no categorical field '%s' (name one with --%s-field).", entity,
                     field, !strcmp(entity, "items") ? "item" : "user");
        return SC_OK;
    }
    int rc = sc_slices_add(&r->slices, &r->train, &r->ds, field, entity, r->opt.cold_max, r->opt.edges,
                           r->opt.n_edges, err);
    if (rc) sc_fail_prefix(err, "--%s-field %s: ", !strcmp(entity, "items") ? "item" : "user", field);
    return rc;
}

int sc_report_open(sc_report *r, const sc_report_options *o, sc_error *err) {
    memset(r, 0, sizeof *r);
    r->opt = *o;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.scd", o->data_dir, o->split);
    int rc = sc_dataset_open(&r->ds, path, err);
    if (!rc) r->ds_open = 1;
    if (!rc && r->ds.n_rows == 0) rc = sc_fail(err, SC_EINVAL, "%s: the split is empty: nothing to report", path);
    snprintf(path, sizeof path, "%s/train.scd", o->data_dir);
    if (!rc) rc = sc_dataset_open(&r->train, path, err);
    if (!rc) r->train_open = 1;
    if (!rc) rc = entity_slices(r, o->item_field, "items", o->fields_given & 1, err);
    if (!rc) rc = entity_slices(r, o->user_field, "users", o->fields_given & 2, err);
    if (rc) sc_report_close(r);
    return rc;
}

static void model_free(sc_report_model *m) {
    sc_curves_free(&m->curves);
    sc_free(m->slice);
    sc_free(m->epochs);
    cJSON_Delete(m->info);
    memset(m, 0, sizeof *m);
}

int sc_report_add_model(sc_report *r, const char *path, const char *network, const char *label, const char *log,
                        sc_error *err) {
    sc_report_model *grown = sc_realloc(r->models, (size_t)(r->n_models + 1) * sizeof *grown);
    if (!grown) return sc_fail(err, SC_ENOMEM, "out of memory");
    r->models = grown;
    sc_report_model *m = &r->models[r->n_models];
    memset(m, 0, sizeof *m);
    const char *base = strrchr(path, '/');
    snprintf(m->label, sizeof m->label, "%s", label ? label : base ? base + 1 : path);
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->log, sizeof m->log, "%s", log ? log : "");

    sc_model_bundle b = {0};
    sc_model *net = NULL;
    float *prob = NULL;
    int rc = sc_eval_load(&b, path, network, r->opt.threads, &net, err);
    if (rc) return rc; /* the message names the file already */
    int loaded = 1;
    rc = sc_check_dataset_fields(b.schema, &r->ds, err);
    if (rc)
        sc_fail_prefix(err, "%s: does not fit the dataset %s (%s split): ", path, r->opt.data_dir, r->opt.split);
    if (!rc) {
        snprintf(m->method, sizeof m->method, "%s", b.method);
        snprintf(m->network, sizeof m->network, "%s", network ? network : sc_model_bundle_default_network(&b));
        snprintf(m->backbone, sizeof m->backbone, "%s", sc_backbone_name(sc_model_get_config(net)->backbone));
        if (b.info && !(m->info = cJSON_Duplicate(b.info, 1))) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (!rc) rc = sc_eval_predict(&b, net, &r->ds, r->opt.encoder, r->opt.threads, &prob, &m->msd_unknown, err);
    if (!rc) rc = sc_metrics_compute(r->ds.label, prob, r->ds.group, r->ds.n_rows, &m->all, err);
    if (!rc) sc_calibration_bins(r->ds.label, prob, r->ds.n_rows, SC_CALIB_BINS, m->bins);
    if (!rc) rc = sc_curves_compute(r->ds.label, prob, r->ds.n_rows, CURVE_POINTS, &m->curves, err);
    if (!rc && r->slices.n && !(m->slice = sc_calloc((size_t)r->slices.n, sizeof *m->slice)))
        rc = sc_fail(err, SC_ENOMEM, "out of memory");
    for (int s = 0; s < r->slices.n && !rc; s++)
        rc = sc_metrics_on_rows(r->ds.label, prob, r->ds.group, r->slices.s[s].keep, r->ds.n_rows, &m->slice[s], err);
    if (!rc && log) {
        rc = sc_report_read_log(log, &m->epochs, &m->n_epochs, err);
        if (rc) sc_fail_prefix(err, "%s: ", path);
    }
    sc_free(prob);
    if (loaded) sc_model_bundle_free(&b);
    if (rc) model_free(m);
    else r->n_models++;
    return rc;
}

void sc_report_close(sc_report *r) {
    for (int i = 0; i < r->n_models; i++) model_free(&r->models[i]);
    sc_free(r->models);
    sc_slices_free(&r->slices);
    if (r->ds_open) sc_dataset_close(&r->ds);
    if (r->train_open) sc_dataset_close(&r->train);
    memset(r, 0, sizeof *r);
}

/* ---- the page ---- */

static const char *CSS =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1400px;"
    "color:#222;padding:0 16px}\n"
    "h1{font-size:26px;margin-bottom:4px}h2{margin-top:36px;border-bottom:2px solid #0072B2;padding-bottom:4px}\n"
    "table{border-collapse:collapse;margin:12px 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px}\n"
    "th{background:#eef3f8;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "tr:nth-child(even) td{background:#fafafa}.charts{display:flex;flex-wrap:wrap;gap:16px}\n"
    ".chart{border:1px solid #ddd;background:#fff}.ct{font-size:15px;font-weight:600}.tk{font-size:11px;fill:#444}\n"
    ".at{font-size:12px;fill:#222}.lg{font-size:12px}.grid{stroke:#e4e4e4}.frame{fill:none;stroke:#888}\n"
    ".diag{stroke:#999;stroke-dasharray:3 3}.leg{fill:#fff;fill-opacity:0.85;stroke:#ccc}\n"
    ".note{background:#fff6e0;border-left:4px solid #E69F00;padding:6px 10px}.sw{display:inline-block;width:12px;"
    "height:12px;margin-right:6px;vertical-align:middle}code{background:#f3f3f3;padding:1px 4px}\n"
    "footer{margin-top:40px;color:#777;font-size:12px}\n";

static void cell(FILE *fp, const char *cls, double v, int digits) {
    fprintf(fp, "<td class=\"n %s\">", cls);
    sc_html_num(fp, v, digits);
    fputs("</td>", fp);
}

static void swatch(FILE *fp, int i) { fprintf(fp, "<span class=\"sw\" style=\"background:%s\"></span>", sc_html_color(i)); }

static void summary(const sc_report *r, FILE *fp) {
    fputs("<h2 id=\"models\">Models</h2>\n<table id=\"summary\"><tr><th>model</th><th>file</th><th>method</th>"
          "<th>backbone</th><th>network</th><th>AUC</th><th>gAUC</th><th>logloss</th><th>ECE</th>"
          "<th>average precision</th><th>mean predicted</th><th>observed CTR</th><th>RelaImpr vs the first</th></tr>\n",
          fp);
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        fprintf(fp, "<tr data-model=\"%d\"><td>", i);
        swatch(fp, i);
        sc_html_esc(fp, m->label);
        fputs("</td><td><code>", fp);
        sc_html_esc(fp, m->path);
        fputs("</code></td><td>", fp);
        sc_html_esc(fp, m->method);
        fputs("</td><td>", fp);
        sc_html_esc(fp, m->backbone);
        fputs("</td><td>", fp);
        sc_html_esc(fp, m->network);
        fputs("</td>", fp);
        cell(fp, "auc", m->all.auc, 6);
        cell(fp, "gauc", m->all.gauc, 6);
        cell(fp, "logloss", m->all.logloss, 6);
        cell(fp, "ece", m->all.ece, 6);
        cell(fp, "ap", m->curves.average_precision, 6);
        cell(fp, "mean_pred", m->all.mean_pred, 4);
        cell(fp, "ctr", m->all.ctr, 4);
        /* RelaImpr (eval --baseline) against the first model, the usual way to state an AUC gain in CTR papers */
        if (i == 0) fputs("<td class=\"n relaimpr\">baseline</td>", fp);
        else if (isfinite(sc_relaimpr(m->all.auc, r->models[0].all.auc)))
            fprintf(fp, "<td class=\"n relaimpr\">%+.2f%%</td>", sc_relaimpr(m->all.auc, r->models[0].all.auc));
        else fputs("<td class=\"n relaimpr\">&ndash;</td>", fp);
        fputs("</tr>\n", fp);
    }
    fputs("</table>\n<p>AUC, gAUC (per-user AUC weighted by the user's rows, over users with both labels), logloss "
          "and ECE are those of <code>semctr eval</code> on the same split; average precision is scikit-learn's "
          "<code>average_precision_score</code>; RelaImpr is <code>eval --baseline</code>'s, (AUC &minus; 0.5) / "
          "(AUC<sub>first</sub> &minus; 0.5) &minus; 1.</p>\n", fp);
    for (int i = 0; i < r->n_models; i++)
        if (!strcmp(r->models[i].method, "msd") && r->models[i].msd_unknown) {
            fputs("<p class=\"note\">", fp);
            sc_html_esc(fp, r->models[i].label);
            fprintf(fp, ": %lld user/item ids of the split are not in the model's semantic tables and got zero vectors "
                        "(give <code>--encoder DIR</code> to encode them, as <code>eval</code>).</p>\n",
                    (long long)r->models[i].msd_unknown);
        }
}

static void curves_section(const sc_report *r, FILE *fp) {
    sc_series *s = sc_calloc((size_t)r->n_models + 1, sizeof *s);
    sc_curve_point *cal = sc_calloc((size_t)r->n_models * SC_CALIB_BINS + 1, sizeof *cal);
    char(*names)[320] = sc_calloc((size_t)r->n_models + 1, sizeof *names);
    if (!s || !cal || !names) {
        fputs("<p class=\"note\">out of memory for the charts</p>\n", fp);
        goto done;
    }
    fputs("<h2 id=\"curves\">ROC and precision&ndash;recall</h2>\n<div class=\"charts\">\n", fp);
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        snprintf(names[i], sizeof names[i], "%.200s (AUC %.4f)", m->label, m->all.auc);
        s[i] = (sc_series){names[i], m->curves.roc, m->curves.n_roc, sc_html_color(i), 0, 0};
    }
    sc_html_line_chart(fp, "ROC curve", "false positive rate", "true positive rate", 0, 1, 0, 1, s, r->n_models,
                       SC_CHART_DIAGONAL | SC_CHART_LEGEND_RIGHT | SC_CHART_LEGEND_BOTTOM);
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        snprintf(names[i], sizeof names[i], "%.200s (AP %.4f)", m->label, m->curves.average_precision);
        s[i] = (sc_series){names[i], m->curves.pr, m->curves.n_pr, sc_html_color(i), 0, 0};
    }
    /* chance: a random ranking's precision is the click rate at every recall */
    double ctr = r->n_models ? r->models[0].all.ctr : 0;
    sc_curve_point chance[2] = {{0, ctr}, {1, ctr}};
    snprintf(names[r->n_models], sizeof names[0], "chance (CTR %.4f)", ctr);
    s[r->n_models] = (sc_series){names[r->n_models], chance, 2, "#999999", 1, 0};
    sc_html_line_chart(fp, "Precision-recall curve", "recall", "precision", 0, 1, 0, 1, s, r->n_models + 1,
                       SC_CHART_LEGEND_BOTTOM);
    fputs("</div>\n", fp);

    fputs("<h2 id=\"calibration\">Calibration</h2>\n<div class=\"charts\">\n", fp);
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        sc_curve_point *p = cal + (size_t)i * SC_CALIB_BINS;
        int k = 0;
        for (int b = 0; b < SC_CALIB_BINS; b++)
            if (m->bins[b].n > 0) p[k++] = (sc_curve_point){m->bins[b].mean_pred, m->bins[b].ctr};
        snprintf(names[i], sizeof names[i], "%.200s (ECE %.4f)", m->label, m->all.ece);
        s[i] = (sc_series){names[i], p, k, sc_html_color(i), 0, 1};
    }
    sc_html_line_chart(fp, "Reliability diagram (10 equal-width bins)", "mean predicted probability",
                       "observed click rate", 0, 1, 0, 1, s, r->n_models, SC_CHART_DIAGONAL);
    fputs("<div><table id=\"calibration-bins\"><tr><th>bin</th>", fp);
    for (int i = 0; i < r->n_models; i++) {
        fputs("<th>", fp);
        swatch(fp, i);
        sc_html_esc(fp, r->models[i].label);
        fputs(": rows / predicted / observed</th>", fp);
    }
    fputs("</tr>\n", fp);
    for (int b = 0; b < SC_CALIB_BINS; b++) {
        fprintf(fp, "<tr><td>%s%.1f, %.1f]</td>", b ? "(" : "[", b * 1.0 / SC_CALIB_BINS, (b + 1) * 1.0 / SC_CALIB_BINS);
        for (int i = 0; i < r->n_models; i++) {
            const sc_calib_bin *c = &r->models[i].bins[b];
            fprintf(fp, "<td class=\"n\">%lld / ", (long long)c->n);
            sc_html_num(fp, c->mean_pred, 3);
            fputs(" / ", fp);
            sc_html_num(fp, c->ctr, 3);
            fputs("</td>", fp);
        }
        fputs("</tr>\n", fp);
    }
    fputs("</table></div></div>\n<p>A point per non-empty bin: a calibrated model lies on the diagonal. Ads bid on "
          "the probability itself, so a model can rank well (AUC) and still over- or under-bid.</p>\n", fp);
done:
    sc_free(s);
    sc_free(cal);
    sc_free(names);
}

static void slices_section(const sc_report *r, FILE *fp) {
    fputs("<h2 id=\"slices\">Slices: cold-start, warm, activity</h2>\n", fp);
    for (int k = 0; k < r->n_notes; k++) {
        fputs("<p class=\"note\">", fp);
        sc_html_esc(fp, r->notes[k]);
        fputs("</p>\n", fp);
    }
    if (!r->slices.n || !r->n_models) return;
    fprintf(fp, "<p>A row's item (user) is <em>cold</em> when it has at most %lld rows in the train split (ids never "
                "seen there, or out of vocabulary, count 0: <code>semctr eval --cold %lld</code>), <em>warm</em> "
                "otherwise; the buckets cut the same count finer. &ndash;: undefined (one class only, or no user "
                "with both labels).</p>\n",
            (long long)r->opt.cold_max, (long long)r->opt.cold_max);
    fputs("<table id=\"slice-table\"><tr><th rowspan=\"2\">slice</th><th rowspan=\"2\">rows</th>"
          "<th rowspan=\"2\">positives</th>", fp);
    for (int i = 0; i < r->n_models; i++) {
        fputs("<th colspan=\"3\">", fp);
        swatch(fp, i);
        sc_html_esc(fp, r->models[i].label);
        fputs("</th>", fp);
    }
    fputs("</tr><tr>", fp);
    for (int i = 0; i < r->n_models; i++) fputs("<th>AUC</th><th>gAUC</th><th>logloss</th>", fp);
    fputs("</tr>\n<tr data-slice=\"all\"><td>all rows</td>", fp);
    fprintf(fp, "<td class=\"n\">%lld</td><td class=\"n\">%lld</td>", (long long)r->models[0].all.n,
            (long long)r->models[0].all.n_pos);
    for (int i = 0; i < r->n_models; i++) {
        cell(fp, "auc", r->models[i].all.auc, 4);
        cell(fp, "gauc", r->models[i].all.gauc, 4);
        cell(fp, "logloss", r->models[i].all.logloss, 4);
    }
    fputs("</tr>\n", fp);
    for (int s = 0; s < r->slices.n; s++) {
        fprintf(fp, "<tr data-slice=\"%d\"><td>", s);
        sc_html_esc(fp, r->slices.s[s].name);
        fprintf(fp, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>", (long long)r->slices.s[s].rows,
                (long long)r->models[0].slice[s].n_pos);
        for (int i = 0; i < r->n_models; i++) {
            cell(fp, "auc", r->models[i].slice[s].auc, 4);
            cell(fp, "gauc", r->models[i].slice[s].gauc, 4);
            cell(fp, "logloss", r->models[i].slice[s].logloss, 4);
        }
        fputs("</tr>\n", fp);
    }
    fputs("</table>\n<div class=\"charts\">\n", fp);
    /* one bar chart of AUC per entity: categories are its slices, bars its models */
    const char *cats[64];
    const char **groups = sc_calloc((size_t)r->n_models + 1, sizeof *groups);
    double *v = sc_calloc((size_t)64 * (r->n_models + 1), sizeof *v);
    for (int s0 = 0; s0 < r->slices.n && groups && v;) {
        int s1 = s0;
        while (s1 < r->slices.n && s1 - s0 < 64 && !strcmp(r->slices.s[s1].entity, r->slices.s[s0].entity)) s1++;
        double lo = INFINITY, hi = -INFINITY;
        for (int s = s0; s < s1; s++) {
            cats[s - s0] = r->slices.s[s].label;
            for (int i = 0; i < r->n_models; i++) {
                double a = r->models[i].slice[s].auc;
                v[(s - s0) * r->n_models + i] = a;
                if (isfinite(a)) {
                    lo = fmin(lo, a);
                    hi = fmax(hi, a);
                }
            }
        }
        for (int i = 0; i < r->n_models; i++) groups[i] = r->models[i].label;
        if (isfinite(lo)) {
            lo = fmax(0, lo - 0.05);
            hi = fmin(1, hi + 0.02);
        }
        sc_html_range(&lo, &hi);
        char title[96];
        snprintf(title, sizeof title, "AUC by %s slice", r->slices.s[s0].entity);
        sc_html_bar_chart(fp, title, "AUC", cats, s1 - s0, groups, r->n_models, v, lo, hi);
        s0 = s1;
    }
    sc_free(groups);
    sc_free(v);
    fputs("</div>\n", fp);
}

static void training_section(const sc_report *r, FILE *fp) {
    fputs("<h2 id=\"training\">Training curves</h2>\n", fp);
    int any = 0;
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        if (!m->n_epochs) {
            fputs("<p>", fp);
            swatch(fp, i);
            sc_html_esc(fp, m->label);
            fputs(": no training log given (<code>--log FILE</code> after its <code>--model</code>; "
                  "<code>semctr train --log FILE</code> writes one).</p>\n", fp);
            continue;
        }
        any = 1;
        sc_curve_point *p = sc_calloc((size_t)m->n_epochs * 5 + 1, sizeof *p);
        if (!p) continue;
        sc_curve_point *loss = p, *vll = p + m->n_epochs, *auc = p + 2 * m->n_epochs, *gauc = p + 3 * m->n_epochs,
                       *best = p + 4 * m->n_epochs;
        int nb = 0, ng = 0, nl = 0, nv = 0;
        double llo = INFINITY, lhi = -INFINITY, alo = INFINITY, ahi = -INFINITY, x1 = 1;
        /* x is the line's position: a log of several phases (or runs) restarts its epoch numbers */
        for (int e = 0; e < m->n_epochs; e++) {
            const sc_report_epoch *ep = &m->epochs[e];
            double x = e + 1;
            x1 = x;
            if (isfinite(ep->train_loss)) loss[nl++] = (sc_curve_point){x, ep->train_loss};
            if (isfinite(ep->valid_logloss)) vll[nv++] = (sc_curve_point){x, ep->valid_logloss};
            auc[e] = (sc_curve_point){x, ep->valid_auc};
            if (isfinite(ep->valid_gauc)) gauc[ng++] = (sc_curve_point){x, ep->valid_gauc};
            if (ep->best) best[nb++] = (sc_curve_point){x, ep->valid_auc};
            double l[2] = {ep->train_loss, ep->valid_logloss}, a[2] = {ep->valid_auc, ep->valid_gauc};
            for (int k = 0; k < 2; k++) {
                if (isfinite(l[k])) llo = fmin(llo, l[k]), lhi = fmax(lhi, l[k]);
                if (isfinite(a[k])) alo = fmin(alo, a[k]), ahi = fmax(ahi, a[k]);
            }
        }
        fputs("<h3>", fp);
        swatch(fp, i);
        sc_html_esc(fp, m->label);
        fputs(" <small>(<code>", fp);
        sc_html_esc(fp, m->log);
        fprintf(fp, "</code>, %d epochs logged)</small></h3>\n<div class=\"charts\">\n", m->n_epochs);
        sc_html_range(&llo, &lhi);
        sc_html_range(&alo, &ahi);
        sc_series sl[2] = {{"train loss", loss, nl, sc_html_color(0), 0, 1},
                           {"valid logloss", vll, nv, sc_html_color(1), 0, 1}};
        sc_html_line_chart(fp, "Loss", "epoch (log line)", "loss", 0.5, x1 + 0.5, llo, lhi, sl, 2,
                           SC_CHART_LEGEND_RIGHT | SC_CHART_INT_X);
        sc_series sa[3] = {{"valid AUC", auc, m->n_epochs, sc_html_color(0), 0, 1},
                           {"valid gAUC", gauc, ng, sc_html_color(2), 1, 1},
                           {"best so far (saved)", best, nb, sc_html_color(1), 0, 2}};
        /* the best epochs as dots only (markers 2): a line between them would suggest a curve */
        sc_html_line_chart(fp, "Validation AUC", "epoch (log line)", "AUC", 0.5, x1 + 0.5, alo, ahi, sa, 3,
                           SC_CHART_LEGEND_RIGHT | SC_CHART_LEGEND_BOTTOM | SC_CHART_INT_X);
        fputs("</div>\n", fp);
        fputs("<table class=\"epochs\"><tr><th>line</th><th>epoch</th><th>train loss</th><th>valid AUC</th>"
              "<th>valid gAUC</th><th>valid logloss</th><th>learning rate</th><th>best so far</th></tr>\n", fp);
        for (int e = 0; e < m->n_epochs; e++) {
            const sc_report_epoch *ep = &m->epochs[e];
            fprintf(fp, "<tr><td class=\"n\">%d</td><td class=\"n\">%d</td>", e + 1, ep->epoch);
            cell(fp, "loss", ep->train_loss, 5);
            cell(fp, "auc", ep->valid_auc, 5);
            cell(fp, "gauc", ep->valid_gauc, 5);
            cell(fp, "logloss", ep->valid_logloss, 5);
            fprintf(fp, "<td class=\"n\">%g</td><td>%s</td></tr>\n", ep->lr, ep->best ? "&#10003;" : "");
        }
        fputs("</table>\n", fp);
        sc_free(p);
    }
    if (!any && r->n_models) fputs("<p>No model came with a training log.</p>\n", fp);
}

/* ELEC / MSD: the per-network (per-slice) metrics their training wrote into
 * the file's info: objects valid / test / test_cold whose members are
 * {auc, gauc, logloss} (ELEC: adapter, gain, vanilla, base, served; MSD:
 * all, cold; "base" (MSD auto): the plain backbone's, one level deeper). */
static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) && v->valuedouble != -1 ? v->valuedouble : NAN;
}

static void method_table(FILE *fp, const cJSON *info, int model_index) {
    static const char *const PARTS[3] = {"valid", "test", "test_cold"};
    const char *rows[16];
    int n = 0;
    for (int p = 0; p < 3; p++) {
        const cJSON *o = get(info, PARTS[p]);
        for (const cJSON *it = o ? o->child : NULL; it && n < 16; it = it->next) {
            if (!cJSON_IsObject(it) || !get(it, "auc")) continue;
            int seen = 0;
            for (int k = 0; k < n; k++) seen |= !strcmp(rows[k], it->string);
            if (!seen) rows[n++] = it->string;
        }
    }
    if (!n) return;
    fprintf(fp, "<table class=\"method\" data-model=\"%d\"><tr><th>network / slice</th>", model_index);
    for (int p = 0; p < 3; p++)
        if (get(info, PARTS[p]))
            fprintf(fp, "<th>%s AUC</th><th>%s gAUC</th><th>%s logloss</th>", PARTS[p], PARTS[p], PARTS[p]);
    fputs("</tr>\n", fp);
    double v[16 * 3];
    const char *cats[16];
    for (int k = 0; k < n; k++) {
        fputs("<tr><td>", fp);
        sc_html_esc(fp, rows[k]);
        fputs("</td>", fp);
        cats[k] = rows[k];
        for (int p = 0; p < 3; p++) {
            const cJSON *o = get(info, PARTS[p]);
            if (!o) {
                v[k * 3 + p] = NAN;
                continue;
            }
            const cJSON *e = get(o, rows[k]);
            v[k * 3 + p] = jnum(e, "auc");
            cell(fp, "auc", jnum(e, "auc"), 5);
            cell(fp, "gauc", jnum(e, "gauc"), 5);
            cell(fp, "logloss", jnum(e, "logloss"), 5);
        }
        fputs("</tr>\n", fp);
    }
    fputs("</table>\n", fp);
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n * 3; k++)
        if (isfinite(v[k])) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
    if (isfinite(lo)) lo = fmax(0, lo - 0.03), hi = fmin(1, hi + 0.01);
    sc_html_range(&lo, &hi);
    sc_html_bar_chart(fp, "AUC per network, as recorded in training", "AUC", cats, n, PARTS, 3, v, lo, hi);
}

static void verdict_row(FILE *fp, const char *what, const cJSON *g) {
    if (!cJSON_IsObject(g)) return;
    fputs("<tr><td>", fp);
    sc_html_esc(fp, what);
    fputs("</td>", fp);
    cell(fp, "auc", jnum(g, "valid_auc"), 5);
    cell(fp, "base", jnum(g, "base_valid_auc"), 5);
    cell(fp, "diff", jnum(g, "diff"), 5);
    cell(fp, "se", jnum(g, "se"), 5);
    fprintf(fp, "<td>%s</td></tr>\n", cJSON_IsTrue(get(g, "pass")) ? "passes" : "refused");
}

static void methods_section(const sc_report *r, FILE *fp) {
    fputs("<h2 id=\"methods\">ELEC and MSD: what training recorded</h2>\n", fp);
    int any = 0;
    for (int i = 0; i < r->n_models; i++) {
        const sc_report_model *m = &r->models[i];
        if (strcmp(m->method, "elec") && strcmp(m->method, "msd")) continue;
        any = 1;
        fputs("<h3>", fp);
        swatch(fp, i);
        sc_html_esc(fp, m->label);
        fputs(" <small>(", fp);
        sc_html_esc(fp, m->method);
        fputs(", scored here: network <code>", fp);
        sc_html_esc(fp, m->network);
        fputs("</code>)</small></h3>\n", fp);
        if (!m->info) {
            fputs("<p>The file records no training information.</p>\n", fp);
            continue;
        }
        if (!strcmp(m->method, "elec")) {
            const cJSON *g = get(get(m->info, "elec"), "guard");
            if (cJSON_IsObject(g)) {
                fputs("<p>Guard: serves <strong>", fp);
                sc_html_esc(fp, cJSON_GetStringValue(get(g, "served")));
                fputs("</strong>. ", fp);
                sc_html_esc(fp, cJSON_GetStringValue(get(g, "reason")));
                fputs("</p>\n<table class=\"guard\"><tr><th>candidate</th><th>valid AUC</th><th>plain backbone</th>"
                      "<th>difference</th><th>standard error</th><th>verdict</th></tr>\n", fp);
                verdict_row(fp, "teacher (gain network)", get(g, "teacher"));
                verdict_row(fp, "vanilla network (distilled)", get(g, "vanilla"));
                fputs("</table>\n", fp);
            }
            fputs("<p>The gain network sees the LLM vector; the vanilla network, distilled from it, does not and is "
                  "what serving runs (docs/elec.md). <em>base</em> is the plain backbone trained beside them, "
                  "<em>served</em> what the guard chose.</p>\n", fp);
        } else {
            const cJSON *ms = get(m->info, "msd");
            fputs("<p>Semantic levels in the file: <strong>", fp);
            sc_html_esc(fp, cJSON_GetStringValue(get(ms, "levels")));
            fputs("</strong>", fp);
            const cJSON *set = get(m->info, "msd_settings");
            if (cJSON_GetStringValue(get(set, "levels"))) {
                fputs(" (asked for: ", fp);
                sc_html_esc(fp, cJSON_GetStringValue(get(set, "levels")));
                fputs(")", fp);
            }
            if (isfinite(jnum(ms, "cold_max"))) fprintf(fp, "; cold slice: items with at most %g train rows",
                                                        jnum(ms, "cold_max"));
            if (isfinite(jnum(ms, "best_epoch")) && isfinite(jnum(ms, "epochs_run")))
                fprintf(fp, "; best epoch %g of %g", jnum(ms, "best_epoch"), jnum(ms, "epochs_run"));
            fputs(".</p>\n", fp);
            const cJSON *sel = get(ms, "selection");
            if (cJSON_IsArray(sel)) {
                fputs("<table class=\"selection\"><tr><th>levels</th><th>valid AUC</th><th>vs plain backbone</th>"
                      "<th>standard error</th><th>kept</th><th>chosen</th></tr>\n", fp);
                for (const cJSON *it = sel->child; it; it = it->next) {
                    fputs("<tr><td>", fp);
                    sc_html_esc(fp, cJSON_GetStringValue(get(it, "levels")));
                    fputs("</td>", fp);
                    cell(fp, "auc", jnum(it, "valid_auc"), 5);
                    cell(fp, "diff", jnum(it, "diff_vs_base"), 5);
                    cell(fp, "se", jnum(it, "se"), 5);
                    fprintf(fp, "<td>%s</td><td>%s</td></tr>\n", cJSON_IsTrue(get(it, "kept")) ? "yes" : "",
                            cJSON_IsTrue(get(it, "chosen")) ? "&#10003;" : "");
                }
                fputs("</table>\n", fp);
            }
            fputs("<p><em>all</em>: every row; <em>cold</em>: the rows of cold-start items (docs/msd.md).</p>\n", fp);
        }
        method_table(fp, m->info, i);
    }
    if (!any) fputs("<p>No ELEC or MSD model in this report.</p>\n", fp);
}

void sc_report_html(const sc_report *r, FILE *fp) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>semctr report: ", fp);
    sc_html_esc(fp, r->opt.data_dir);
    fputs(" (", fp);
    sc_html_esc(fp, r->opt.split);
    fprintf(fp, ")</title>\n<style>\n%s</style></head><body>\n<h1>semctr report</h1>\n<p>Dataset <code>", CSS);
    sc_html_esc(fp, r->opt.data_dir);
    fputs("</code>, split <strong>", fp);
    sc_html_esc(fp, r->opt.split);
    double ctr = 0;
    int64_t pos = 0;
    for (int64_t i = 0; i < r->ds.n_rows; i++) pos += r->ds.label[i] == 1.0f;
    ctr = r->ds.n_rows ? (double)pos / (double)r->ds.n_rows : 0;
    fprintf(fp, "</strong>: %lld rows, %lld positive (CTR %.4f); %d model%s.</p>\n", (long long)r->ds.n_rows,
            (long long)pos, ctr, r->n_models, r->n_models == 1 ? "" : "s");
    fputs("<nav><a href=\"#models\">models</a> &middot; <a href=\"#curves\">ROC and PR</a> &middot; "
          "<a href=\"#calibration\">calibration</a> &middot; <a href=\"#slices\">slices</a> &middot; "
          "<a href=\"#training\">training</a> &middot; <a href=\"#methods\">ELEC / MSD</a></nav>\n", fp);
    summary(r, fp);
    curves_section(r, fp);
    slices_section(r, fp);
    training_section(r, fp);
    methods_section(r, fp);
    fputs("<footer>Written by ", fp);
    sc_html_esc(fp, r->opt.generator ? r->opt.generator : "semctr");
    fputs(" (<code>semctr report</code>, docs/report.md). One file: no script, no network.</footer>\n</body></html>\n",
          fp);
}

int sc_report_write(const sc_report *r, const char *out_path, sc_error *err) {
    sc_atomic_file f;
    int rc = sc_atomic_open(&f, out_path, err);
    if (rc) return rc;
    sc_report_html(r, f.fp);
    if (ferror(f.fp)) {
        sc_atomic_abort(&f);
        return sc_fail(err, SC_EIO, "%s: write failed", out_path);
    }
    return sc_atomic_commit(&f, err);
}
