/* semctr report: the page's numbers are eval's, it renders in headless
 * Chromium (not blank), every string in it is escaped, it is written
 * atomically, and bad input (a missing model, a model of another dataset, a
 * bad training log, misplaced options) is an error that names what is wrong.
 * Also the library under it: ROC / PR curves (their area is metrics' AUC),
 * slices (cold / warm / buckets partition the rows), the ELEC / MSD section
 * drawn from a file's training info. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "base/alloc.h"
#include "data/dataset.h"
#include "report/curves.h"
#include "report/html.h"
#include "report/report.h"
#include "report/slices.h"
#include "train/metrics.h"
#include "test_cli_util.h"

static char g_dir[64];

static void teardown(void) {
    if (!g_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
    g_dir[0] = '\0';
}

TestSuite(report, .fini = teardown, .timeout = 300);

/* MovieLens-100K prepared in DIR/data, a logistic regression (DIR/lr, log
 * DIR/lr.log) and an FM (DIR/fm, log DIR/fm.log) trained on it. */
static void setup_models(void) {
    strcpy(g_dir, "/tmp/sc_report_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", g_dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model lr --out %s/lr --epochs 2 --seed 1 --threads 1 --log %s/lr.log",
                             g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model fm --out %s/fm --epochs 3 --seed 1 --threads 1 --log %s/fm.log",
                             g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
}

/* The whole of a file (NUL-terminated, malloc'ed). */
static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

/* The number in the first <td class="n CLS"> after `from` in page. */
static double cell_after(const char *page, const char *from, const char *cls) {
    const char *p = strstr(page, from);
    cr_assert(p, "no %s in the page", from);
    char pat[64];
    snprintf(pat, sizeof pat, "<td class=\"n %s\">", cls);
    p = strstr(p, pat);
    cr_assert(p, "no %s cell after %s", cls, from);
    return strtod(p + strlen(pat), NULL);
}

/* tests/test_report_html.sh: every element closed in order, only SVG inside an <svg>. */
static void assert_well_formed(const char *path) {
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "bash tests/test_report_html.sh '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s is not well formed:\n%s", path, out);
}

static const char *REPORT = "report --model %s/lr --label 'logistic regression' --log %s/lr.log --model %s/fm "
                            "--log %s/fm.log --data %s/data --split test --out %s/report.html --threads 1";

Test(report, numbers_equal_eval) {
    setup_models();
    cr_assert_eq(tcli_semctr(REPORT, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir), 0, "%s", tcli_out());
    char path[128];
    snprintf(path, sizeof path, "%s/report.html", g_dir);
    assert_well_formed(path);
    char *page = slurp(path);
    const char *names[2] = {"lr", "fm"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tcli_semctr("eval --model %s/%s --data %s/data --split test --json --cold 5 --threads 1", g_dir,
                                 names[i], g_dir),
                     0, "%s", tcli_out());
        double auc = tcli_json_number(tcli_out(), "auc"), gauc = tcli_json_number(tcli_out(), "gauc"),
               ll = tcli_json_number(tcli_out(), "logloss"), ece = tcli_json_number(tcli_out(), "ece");
        const char *cold = strstr(tcli_out(), "\"cold\"");
        cr_assert(cold);
        double cold_auc = tcli_json_number(cold, "auc"), cold_rows = tcli_json_number(cold, "rows");
        char row[32];
        snprintf(row, sizeof row, "<tr data-model=\"%d\">", i);
        /* printed with 6 decimals: equal to eval's to half a unit of the last */
        cr_assert(fabs(cell_after(page, row, "auc") - auc) <= 5e-7, "%s: AUC %f vs eval %.9f", names[i],
                  cell_after(page, row, "auc"), auc);
        cr_assert(fabs(cell_after(page, row, "gauc") - gauc) <= 5e-7, "%s: gAUC", names[i]);
        cr_assert(fabs(cell_after(page, row, "logloss") - ll) <= 5e-7, "%s: logloss", names[i]);
        cr_assert(fabs(cell_after(page, row, "ece") - ece) <= 5e-7, "%s: ECE", names[i]);
        /* the cold items' slice is eval --cold 5's (4 decimals in the slice table; model i's columns come i-th) */
        const char *slice = strstr(page, "<td>items: cold (&lt;= 5 train rows)</td>");
        cr_assert(slice, "no cold items slice");
        cr_assert_eq(strtod(strstr(slice, "<td class=\"n\">") + 14, NULL), cold_rows);
        const char *c = slice;
        for (int k = 0; k <= i; k++) c = strstr(c + 1, "<td class=\"n auc\">");
        cr_assert(fabs(strtod(c + 18, NULL) - cold_auc) <= 5e-5, "%s: cold AUC %.4f vs eval %.9f", names[i],
                  strtod(c + 18, NULL), cold_auc);
    }
    /* training curves: both logs, the FM's 3 epochs in its table */
    cr_assert(strstr(page, "3 epochs logged"), "no FM training curves");
    cr_assert(strstr(page, "2 epochs logged"), "no LR training curves");
    /* self-contained: no script, no external resource */
    cr_assert_null(strstr(page, "<script"));
    cr_assert_null(strstr(page, "src="));
    cr_assert_null(strstr(page, "href=\"http"));
    cr_assert_null(strstr(page, "url(http"));
    cr_assert(strstr(page, "<svg"));
    free(page);
}

Test(report, renders_in_chromium) {
    setup_models();
    cr_assert_eq(tcli_semctr(REPORT, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir), 0, "%s", tcli_out());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash tests/test_report_render.sh %s/report.html %s/shot.png 2>&1", g_dir, g_dir);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 77) cr_skip_test("chromium is not installed, the page was not rendered: %s", out);
    cr_assert_eq(code, 0, "%s", out);
    cr_log_info("%s", out);
}

Test(report, errors_name_what_is_wrong) {
    setup_models();
    /* a missing model file */
    cr_assert_eq(tcli_semctr("report --model %s/nope.model --data %s/data --out %s/r.html", g_dir, g_dir, g_dir), 1);
    cr_assert(strstr(tcli_out(), "nope.model"), "%s", tcli_out());
    /* a model of another dataset: the same log prepared without the zip field */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -v 'name: zip' configs/ml-100k.yaml > %s/other.yaml", g_dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("prepare --config %s/other.yaml --out %s/other", g_dir, g_dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/other --out %s/r.html", g_dir, g_dir, g_dir), 1);
    cr_assert(strstr(tcli_out(), "/fm: does not fit the dataset") && strstr(tcli_out(), "/other"), "%s", tcli_out());
    /* a dataset directory without the split */
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/absent --out %s/r.html", g_dir, g_dir, g_dir), 1);
    cr_assert(strstr(tcli_out(), "absent/test.scd"), "%s", tcli_out());
    /* a training log that is not one: file and line */
    snprintf(cmd, sizeof cmd, "printf '{\"epoch\": 1, \"valid_auc\": 0.7}\\nnot json\\n' > %s/bad.log", g_dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("report --model %s/fm --log %s/bad.log --data %s/data --out %s/r.html", g_dir, g_dir,
                             g_dir, g_dir),
                 1);
    cr_assert(strstr(tcli_out(), "bad.log:2:"), "%s", tcli_out());
    /* options in the wrong place */
    cr_assert_eq(tcli_semctr("report --log %s/fm.log --model %s/fm --data %s/data --out %s/r.html", g_dir, g_dir,
                             g_dir, g_dir),
                 2);
    cr_assert(strstr(tcli_out(), "before any --model"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --log a --log b --data %s/data --out %s/r.html", g_dir, g_dir, g_dir),
                 2);
    cr_assert(strstr(tcli_out(), "two --log"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/data --out %s/r.html --buckets 5,2", g_dir, g_dir, g_dir),
                 2);
    cr_assert(strstr(tcli_out(), "--buckets") && strstr(tcli_out(), "'5,2'"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/data --out %s/r.html --item-field genres", g_dir, g_dir,
                             g_dir),
                 1);
    cr_assert(strstr(tcli_out(), "'genres'") && strstr(tcli_out(), "not categorical"), "%s", tcli_out());
    /* an output directory that does not exist */
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/data --out %s/no/such/dir/r.html", g_dir, g_dir, g_dir),
                 1);
    cr_assert(strstr(tcli_out(), "no/such/dir/r.html"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --data %s/data", g_dir, g_dir), 2);
    cr_assert(strstr(tcli_out(), "--out"), "%s", tcli_out());
    /* none of the failures left a page */
    snprintf(cmd, sizeof cmd, "%s/r.html", g_dir);
    struct stat st;
    cr_assert_neq(stat(cmd, &st), 0, "a failed report left %s", cmd);
}

Test(report, escapes_every_string_and_writes_atomically) {
    setup_models();
    char page_path[128], cmd[512];
    snprintf(page_path, sizeof page_path, "%s/report.html", g_dir);
    cr_assert_eq(tcli_semctr("report --model %s/fm --label '<script>alert(1)</script> & \"q\"' --data %s/data "
                             "--out %s/report.html",
                             g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
    char *page = slurp(page_path);
    cr_assert_null(strstr(page, "<script"), "an unescaped label");
    cr_assert(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"));
    /* a failing run (a missing model after a good one) leaves the earlier page as it was, and no temporary */
    cr_assert_eq(tcli_semctr("report --model %s/lr --model %s/missing --data %s/data --out %s/report.html", g_dir,
                             g_dir, g_dir, g_dir),
                 1);
    char *again = slurp(page_path);
    cr_assert_str_eq(again, page);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", g_dir);
    FILE *p = popen(cmd, "r");
    char out[64] = "";
    cr_assert(fgets(out, sizeof out, p));
    pclose(p);
    cr_assert_eq(atoi(out), 0, "a temporary file was left in %s", g_dir);
    free(page);
    free(again);
}

/* An ELEC model (short entity texts keep the encoder's work small): the page
 * scores its vanilla network as eval does and draws the guard and the
 * per-network metrics its training recorded; its gain network, which needs
 * the LLM at scoring time, is refused by name. */
Test(report, elec_model_section_and_gain_refused) {
    setup_models();
    cr_assert_eq(tcli_semctr("train --method elec --elec-granularity entity --elec-text genres,occupation --data %s/data "
                             "--model fm --out %s/e --epochs 2 --adapter-epochs 1 --seed 3 --threads 1 --log %s/e.log",
                             g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/e --network gain --data %s/data --out %s/r.html", g_dir, g_dir, g_dir),
                 1);
    cr_assert(strstr(tcli_out(), "/e: network 'gain'") && strstr(tcli_out(), "vanilla"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/fm --model %s/e --label ELEC --log %s/e.log --data %s/data "
                             "--out %s/r.html --threads 1",
                             g_dir, g_dir, g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
    char path[128];
    snprintf(path, sizeof path, "%s/r.html", g_dir);
    assert_well_formed(path);
    char *page = slurp(path);
    cr_assert_eq(tcli_semctr("eval --model %s/e --data %s/data --split test --json --threads 1", g_dir, g_dir), 0);
    double auc = tcli_json_number(tcli_out(), "auc");
    cr_assert(fabs(cell_after(page, "<tr data-model=\"1\">", "auc") - auc) <= 5e-7, "ELEC AUC vs eval %.9f", auc);
    cr_assert(strstr(page, "<td>elec</td><td>fm</td><td>vanilla</td>"), "the summary does not say vanilla was scored");
    cr_assert(strstr(page, "Guard: serves <strong>"), "no guard decision");
    cr_assert(strstr(page, "<td>gain</td><td class=\"n auc\">"), "no gain network row");
    cr_assert(strstr(page, "<td>vanilla</td><td class=\"n auc\">"), "no vanilla network row");
    cr_assert(strstr(page, "2 epochs logged"), "no ELEC training curves");
    free(page);
}

/* A dataset without users or items (Criteo): no such slices, a note that
 * says why, undefined gAUC (no group) drawn as a dash; --item-field names
 * another field to slice by. */
Test(report, criteo_without_users_or_items) {
    strcpy(g_dir, "/tmp/sc_report_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/criteo.yaml --out %s/data", g_dir), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model lr --out %s/lr --epochs 1 --threads 1", g_dir, g_dir), 0,
                 "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model fm --out %s/fm --epochs 1 --threads 1", g_dir, g_dir), 0,
                 "%s", tcli_out());
    cr_assert_eq(tcli_semctr("report --model %s/lr --model %s/fm --data %s/data --out %s/r.html", g_dir, g_dir, g_dir,
                             g_dir),
                 0, "%s", tcli_out());
    char path[128];
    snprintf(path, sizeof path, "%s/r.html", g_dir);
    assert_well_formed(path);
    char *page = slurp(path);
    cr_assert(strstr(page, "No items slices: the dataset has no categorical field &#39;item_id&#39;"), "no note");
    cr_assert(strstr(page, "No users slices"), "no note");
    cr_assert_null(strstr(page, "slice-table"));
    cr_assert(strstr(page, "<td class=\"n gauc\">&ndash;</td>"), "gAUC without groups is not a dash");
    cr_assert(strstr(page, "<td class=\"n relaimpr\">baseline</td>"));
    /* RelaImpr of the second model against the first, as eval --baseline computes it */
    cr_assert_eq(tcli_semctr("eval --model %s/fm --baseline %s/lr --data %s/data --json", g_dir, g_dir, g_dir), 0);
    double rel = tcli_json_number(tcli_out(), "relaimpr");
    cr_assert(fabs(cell_after(page, "<tr data-model=\"1\">", "relaimpr") - rel) <= 0.005 + 1e-9, "RelaImpr vs %.4f",
              rel);
    free(page);
    cr_assert_eq(tcli_semctr("report --model %s/lr --data %s/data --out %s/r.html --item-field C1", g_dir, g_dir, g_dir),
                 0, "%s", tcli_out());
    page = slurp(path);
    cr_assert(strstr(page, "<td>items: cold (&lt;= 5 train rows)</td>"), "no C1 slices");
    cr_assert(strstr(page, "No users slices"));
    free(page);
}

/* ---- the library ---- */

/* n rows of random scores with ties (scores on a 1/50 grid) and labels that
 * follow the score. */
static void random_rows(float *label, float *prob, int n, unsigned seed) {
    srand(seed);
    for (int i = 0; i < n; i++) {
        prob[i] = (float)(rand() % 51) / 50.0f;
        label[i] = (float)((double)rand() / RAND_MAX < 0.3 + 0.4 * prob[i]);
    }
}

Test(report, roc_area_is_metrics_auc) {
    enum { N = 5000 };
    static float label[N], prob[N];
    random_rows(label, prob, N, 7);
    sc_metrics m;
    sc_error err;
    cr_assert_eq(sc_metrics_compute(label, prob, NULL, N, &m, &err), SC_OK, "%s", err.msg);
    sc_curves c;
    /* unthinned (a point per distinct score): the trapezoid area is the AUC exactly */
    cr_assert_eq(sc_curves_compute(label, prob, N, N, &c, &err), SC_OK);
    cr_assert(fabs(sc_curve_area(c.roc, c.n_roc) - m.auc) < 1e-12, "%.12f vs %.12f", sc_curve_area(c.roc, c.n_roc),
              m.auc);
    cr_assert_eq(c.roc[0].x, 0);
    cr_assert_eq(c.roc[c.n_roc - 1].x, 1);
    cr_assert_eq(c.roc[c.n_roc - 1].y, 1);
    sc_curves_free(&c);
    /* continuous scores, thinned to 400 points: what the page draws stays within 1e-3 of the AUC it prints */
    for (int i = 0; i < N; i++) prob[i] = fminf(1, fmaxf(0, prob[i] + (float)(rand() % 1000) / 50000.0f));
    cr_assert_eq(sc_metrics_compute(label, prob, NULL, N, &m, &err), SC_OK);
    cr_assert_eq(sc_curves_compute(label, prob, N, 400, &c, &err), SC_OK);
    cr_assert(c.n_roc <= 2 * 400 + 4 && c.n_roc > 50, "%d points", c.n_roc);
    cr_assert(fabs(sc_curve_area(c.roc, c.n_roc) - m.auc) < 1e-3, "%.6f vs %.6f", sc_curve_area(c.roc, c.n_roc), m.auc);
    /* PR: thinned along recall (precision jumps about at low recall), ending at (1, CTR) */
    cr_assert(c.n_pr <= 400 + 2 && c.n_pr > 50, "%d PR points", c.n_pr);
    cr_assert_eq(c.pr[c.n_pr - 1].x, 1);
    cr_assert(fabs(c.pr[c.n_pr - 1].y - m.ctr) < 1e-12);
    for (int i = 1; i < c.n_pr; i++) cr_assert(c.pr[i].x >= c.pr[i - 1].x);
    sc_curves_free(&c);
    /* one class: no ROC curve, no error */
    for (int i = 0; i < N; i++) label[i] = 0;
    cr_assert_eq(sc_curves_compute(label, prob, N, 400, &c, &err), SC_OK);
    cr_assert_eq(c.n_roc, 0);
    cr_assert_eq(c.n_pr, 0);
    cr_assert(isnan(c.average_precision));
    sc_curves_free(&c);
}

Test(report, average_precision_is_sklearns) {
    /* sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333333333333333 */
    static const float label[] = {0, 0, 1, 1}, prob[] = {0.1f, 0.4f, 0.35f, 0.8f};
    sc_curves c;
    sc_error err;
    cr_assert_eq(sc_curves_compute(label, prob, 4, 16, &c, &err), SC_OK);
    cr_assert(fabs(c.average_precision - 0.8333333333333333) < 1e-12, "%.15f", c.average_precision);
    cr_assert_eq(c.pr[0].x, 0.5);
    cr_assert_eq(c.pr[0].y, 1);
    cr_assert_eq(c.pr[c.n_pr - 1].x, 1);
    cr_assert_eq(c.pr[c.n_pr - 1].y, 0.5);
    sc_curves_free(&c);
}

/* A one-field split of categorical ids (vocabulary V) over n rows. */
static sc_dataset one_field(sc_field_info *fi, const int32_t **col, const int32_t *ids, int64_t n, int64_t V) {
    *fi = (sc_field_info){.name = "item", .kind = SC_FIELD_CATEGORICAL, .width = 1, .vocab_size = V, .share_with = -1};
    *col = ids;
    return (sc_dataset){.n_rows = n, .n_fields = 1, .fields = fi, .ids = col};
}

Test(report, slices_cut_rows_by_train_interactions) {
    /* train: id 2 three times, id 3 once, id 1 (OOV) twice; ids 4, 5 never */
    static const int32_t tr[] = {2, 2, 3, 1, 2, 1}, ev[] = {2, 3, 4, 1, 0, 5, 2};
    sc_field_info f1, f2;
    const int32_t *c1, *c2;
    sc_dataset train = one_field(&f1, &c1, tr, 6, 6), ds = one_field(&f2, &c2, ev, 7, 6);
    sc_slices s = {0};
    sc_error err;
    static const int64_t edges[] = {0, 2};
    cr_assert_eq(sc_slices_add(&s, &train, &ds, "item", "items", 1, edges, 2, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(s.n, 5); /* cold, warm, 0, 1-2, > 2 */
    static const uint8_t cold[] = {0, 1, 1, 1, 1, 1, 0}, zero[] = {0, 0, 1, 1, 1, 1, 0}, one_two[] = {0, 1, 0, 0, 0, 0, 0},
                         many[] = {1, 0, 0, 0, 0, 0, 1};
    cr_assert_arr_eq(s.s[0].keep, cold, 7);
    cr_assert_eq(s.s[0].rows, 5);
    cr_assert_eq(s.s[1].rows, 2);
    cr_assert_arr_eq(s.s[2].keep, zero, 7);
    cr_assert_arr_eq(s.s[3].keep, one_two, 7);
    cr_assert_arr_eq(s.s[4].keep, many, 7);
    cr_assert_str_eq(s.s[0].name, "items: cold (<= 1 train rows)");
    cr_assert_str_eq(s.s[3].label, "1-2");
    cr_assert_str_eq(s.s[4].label, "> 2");
    /* the cold slice is eval --cold's */
    uint8_t keep[7];
    int64_t n;
    cr_assert_eq(sc_cold_rows(&train, &ds, "item", 1, keep, &n, &err), SC_OK);
    cr_assert_arr_eq(keep, s.s[0].keep, 7);
    sc_slices_free(&s);
    static const int64_t bad[] = {3, 3};
    cr_assert_eq(sc_slices_add(&s, &train, &ds, "item", "items", 1, bad, 2, &err), SC_EINVAL);
    cr_assert(strstr(err.msg, "ascending"), "%s", err.msg);
    cr_assert_eq(sc_slices_add(&s, &train, &ds, "user", "users", 1, edges, 2, &err), SC_ENOTFOUND);
    cr_assert(strstr(err.msg, "'user'"), "%s", err.msg);
    sc_slices_free(&s);
}

/* The ELEC / MSD section from a file's info, through a page written to memory. */
Test(report, methods_section_from_training_info) {
    static const char *ELEC =
        "{\"elec\": {\"guard\": {\"served\": \"plain backbone\", \"reason\": \"the teacher <gain> does not beat it\","
        " \"teacher\": {\"valid_auc\": 0.69, \"base_valid_auc\": 0.695, \"diff\": -0.005, \"se\": 0.002, \"pass\": false}}},"
        " \"valid\": {\"gain\": {\"auc\": 0.6923, \"gauc\": 0.68, \"logloss\": 0.63},"
        "             \"vanilla\": {\"auc\": 0.6958, \"gauc\": 0.69, \"logloss\": 0.62}},"
        " \"test\": {\"gain\": {\"auc\": 0.7174, \"gauc\": 0.71, \"logloss\": 0.61}}}";
    static const char *MSD =
        "{\"msd_settings\": {\"levels\": \"auto\"}, \"msd\": {\"levels\": \"item\", \"cold_max\": 5, \"best_epoch\": 3,"
        " \"epochs_run\": 5, \"selection\": [{\"levels\": \"none\", \"valid_auc\": 0.69, \"kept\": false, \"chosen\": false},"
        " {\"levels\": \"item\", \"valid_auc\": 0.70, \"diff_vs_base\": 0.01, \"se\": 0.002, \"kept\": true, \"chosen\": true}]},"
        " \"test\": {\"all\": {\"auc\": 0.7195, \"gauc\": 0.71, \"logloss\": 0.61}, \"cold\": {\"auc\": 0.65, \"gauc\": -1,"
        " \"logloss\": 0.66}}}";
    sc_report_model m[2];
    memset(m, 0, sizeof m);
    strcpy(m[0].label, "elec & co");
    strcpy(m[0].method, "elec");
    strcpy(m[0].network, "vanilla");
    m[0].info = cJSON_Parse(ELEC);
    strcpy(m[1].label, "msd");
    strcpy(m[1].method, "msd");
    strcpy(m[1].network, "main");
    m[1].info = cJSON_Parse(MSD);
    cr_assert(m[0].info && m[1].info);
    for (int i = 0; i < 2; i++) m[i].all = (sc_metrics){.auc = 0.7, .gauc = 0.7, .logloss = 0.6, .ctr = 0.5};
    sc_report r = {.opt = {.data_dir = "d<ir", .split = "test"}, .models = m, .n_models = 2};
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    sc_report_html(&r, fp);
    fclose(fp);
    cr_assert(strstr(buf, "serves <strong>plain backbone</strong>"), "%s", buf);
    cr_assert(strstr(buf, "the teacher &lt;gain&gt; does not beat it"));
    cr_assert(strstr(buf, "<td>teacher (gain network)</td><td class=\"n auc\">0.69000</td>"));
    cr_assert(strstr(buf, "<td>gain</td><td class=\"n auc\">0.69230</td>"));
    cr_assert(strstr(buf, "<strong>item</strong> (asked for: auto)"));
    cr_assert(strstr(buf, "<td>item</td><td class=\"n auc\">0.70000</td>"));
    /* an undefined gAUC (-1 in the file) is a dash, not -1 */
    cr_assert(strstr(buf, "<td>cold</td><td class=\"n auc\">0.65000</td><td class=\"n gauc\">&ndash;</td>"), "%s",
              strstr(buf, "<td>cold</td>"));
    cr_assert(strstr(buf, "elec &amp; co"));
    cr_assert(strstr(buf, "<code>d&lt;ir</code>"));
    cr_assert_null(strstr(buf, "d<ir"));
    /* the sections of models without a dataset behind them still close every element */
    strcpy(g_dir, "/tmp/sc_report_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/m.html", g_dir);
    FILE *out = fopen(path, "w");
    cr_assert(out && fwrite(buf, 1, len, out) == len);
    fclose(out);
    assert_well_formed(path);
    free(buf);
    cJSON_Delete(m[0].info);
    cJSON_Delete(m[1].info);
}

Test(report, html_escape) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    sc_html_esc(fp, "a<b>&\"c'\x01\td\xc3\xa9");
    sc_html_esc(fp, NULL);
    fclose(fp);
    cr_assert_str_eq(buf, "a&lt;b&gt;&amp;&quot;c&#39;\td\xc3\xa9");
    free(buf);
}

Test(report, training_log_errors_name_file_and_line) {
    strcpy(g_dir, "/tmp/sc_report_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/t.log", g_dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"epoch\": 1, \"train_loss\": 0.6, \"valid_auc\": 0.7, \"valid_gauc\": -1, \"best\": true}\n\n"
          "{\"epoch\": 2, \"valid_logloss\": 0.5}\n",
          fp);
    fclose(fp);
    sc_report_epoch *e;
    int n;
    sc_error err;
    cr_assert_eq(sc_report_read_log(path, &e, &n, &err), SC_EFORMAT);
    cr_assert(strstr(err.msg, "t.log:3:") && strstr(err.msg, "valid_auc"), "%s", err.msg);
    fp = fopen(path, "w");
    fputs("{\"epoch\": 1, \"train_loss\": 0.6, \"valid_auc\": 0.7, \"valid_gauc\": -1, \"best\": true}\n", fp);
    fclose(fp);
    cr_assert_eq(sc_report_read_log(path, &e, &n, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(e[0].epoch, 1);
    cr_assert(isnan(e[0].valid_gauc)); /* -1: undefined */
    cr_assert(isnan(e[0].valid_logloss));
    cr_assert(e[0].best);
    sc_free(e);
    fp = fopen(path, "w");
    fclose(fp);
    cr_assert_eq(sc_report_read_log(path, &e, &n, &err), SC_EFORMAT);
    cr_assert(strstr(err.msg, "no epoch"), "%s", err.msg);
}
