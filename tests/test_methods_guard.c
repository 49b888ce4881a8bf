/* The guard of the LLM methods from the user's side (the real `semctr`): a
 * teacher worse than its student is refused by ELEC and the plain backbone
 * is served, bit for bit the network `semctr train` makes; cross-fitting
 * (--elec-folds) is reported and validated; MSD's --msd-levels auto keeps no
 * level that does not help, keeps one that does, and runs on a dataset
 * without a user table.
 *
 * The fixture is a small synthetic click log written here (6,000 rows, 300
 * users, 200 items, 8 "slots"), split by time 60/20/20; every user and item
 * occurs in the training period. The clicks depend on the slot (a stable
 * signal every model can learn) and on the colour of the item and the region
 * of the user, the entity texts the LLM methods read ("Colour is red.", "Tag
 * is north."), but only during the training period: afterwards the colour
 * and region effects are reversed, so the texts carry no signal for
 * validation and test, worse, a misleading one, and a model that leans on
 * them is worse on validation than the plain backbone. The control
 * (`helpful`): the texts' effect lasts, with more users and items (1,000 and
 * 600, a handful of rows each, so their ids learn it less well than the two
 * texts do). The texts are four distinct strings, so the encoder's work is
 * nothing. The verdicts asserted held for 12 pairs of fixture and training
 * seeds when the tests were written; the seeds here are fixed. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "test_cli_util.h"

/* ---------------- the fixture ---------------- */

static uint64_t fx_state;

static double fx_uniform(void) { /* splitmix64: the fixture must not move when the library's generator does */
    uint64_t z = (fx_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int fx_below(int n) { return (int)(fx_uniform() * n); }

enum { FX_USERS = 300, FX_ITEMS = 200, FX_HELP_USERS = 1000, FX_HELP_ITEMS = 600, FX_ROWS = 6000, FX_SLOTS = 8, FX_MAX = 2000 };

typedef struct {
    int user_table; /* users.csv joined, with its text column */
    int history;    /* a behaviour-sequence field of item ids (MSD's fusion level) */
    int helpful;    /* the control: the texts' effect holds after the training period too */
    int users, items; /* 0: FX_USERS, FX_ITEMS */
} fx_opts;

static FILE *fx_open(const char *dir, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    return f;
}

/* A fresh temp dir DIR with the fixture's files and DIR/data prepared. */
static void fixture(char *dir, const fx_opts *o) {
    strcpy(dir, "/tmp/sc_guard_XXXXXX");
    cr_assert(mkdtemp(dir));
    fx_state = 2026;
    int colour[FX_MAX], region[FX_MAX], n_users = o->users ? o->users : FX_USERS, n_items = o->items ? o->items : FX_ITEMS;
    cr_assert(n_users <= FX_MAX && n_items <= FX_MAX);
    FILE *f = fx_open(dir, "items.csv");
    fprintf(f, "item_id,colour\n");
    for (int i = 0; i < n_items; i++) {
        colour[i] = fx_below(2);
        fprintf(f, "i%d,%s\n", i, colour[i] ? "blue" : "red");
    }
    fclose(f);
    f = fx_open(dir, "users.csv");
    fprintf(f, "user_id,tag\n");
    for (int u = 0; u < n_users; u++) {
        region[u] = fx_below(2);
        fprintf(f, "u%d,%s\n", u, region[u] ? "south" : "north");
    }
    fclose(f);
    f = fx_open(dir, "log.csv");
    fprintf(f, "user_id,item_id,slot,click,ts\n");
    for (int t = 0; t < FX_ROWS; t++) {
        int u = fx_below(n_users), i = fx_below(n_items), k = fx_below(FX_SLOTS);
        if (t < n_users) u = t; /* every user and item occurs in the training period: no unknown ids later */
        if (t < n_items) i = t;
        double x = -1.5 + 3.0 * k / (FX_SLOTS - 1);
        double text_effect = (o->helpful ? 0.8 : 0.6) * ((colour[i] ? 1 : -1) + (o->user_table ? (region[u] ? 1 : -1) : 0));
        x += t < FX_ROWS * 6 / 10 || o->helpful ? text_effect : -text_effect; /* reversed after the training period */
        int click = fx_uniform() < 1.0 / (1.0 + exp(-x));
        fprintf(f, "u%d,i%d,s%d,%d,%d\n", u, i, k, click, t);
    }
    fclose(f);
    f = fx_open(dir, "c.yaml");
    fprintf(f, "input: {path: log.csv, format: csv, header: true}\n"
               "label: click\n"
               "joins:\n"
               "  - {name: item, path: items.csv, header: true, key: item_id}\n");
    if (o->user_table) fprintf(f, "  - {name: user, path: users.csv, header: true, key: user_id}\n");
    fprintf(f, "fields:\n"
               "  - {name: user_id, type: categorical}\n"
               "  - {name: item_id, type: categorical}\n"
               "  - {name: slot, type: categorical}\n");
    if (o->history)
        fprintf(f, "  - {name: history, type: sequence, of: item_id, by: user_id, max_len: 5, share_embedding: item_id}\n");
    fprintf(f, "text:\n  - {name: colour, column: item.colour}\n");
    if (o->user_table) fprintf(f, "  - {name: tag, column: user.tag}\n");
    fprintf(f, "split: {method: time, column: ts, fractions: [0.6, 0.2, 0.2]}\n");
    fclose(f);
    cr_assert_eq(tcli_semctr("prepare --config %s/c.yaml --out %s/data", dir, dir), 0, "%s", tcli_out());
}

static void cleanup(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Training settings shared by every run of a test: the plain backbone and the
 * methods' plain backbones must be the same network. */
#define TRAIN "--model deepfm --epochs 3 --lr 0.01 --seed 7 --threads 2"
#define ELEC "--method elec --elec-granularity entity --adapter-epochs 2"

/* ---------------- reading the output ---------------- */

/* The JSON object printed by --json (the last line that starts with '{'). */
static cJSON *json_out(void) {
    const char *out = tcli_out(), *last = NULL;
    for (const char *p = out; p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (*p == '{') last = p;
    }
    cr_assert(last, "no JSON in:\n%s", out);
    cJSON *j = cJSON_ParseWithOpts(last, NULL, 0);
    cr_assert(j, "unparsable JSON:\n%s", out);
    return j;
}

/* The item at a dotted path ("elec.guard.teacher.diff"), or NULL. */
static const cJSON *jget(const cJSON *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = cJSON_GetObjectItemCaseSensitive(j, k);
    return j;
}

static double jnum(const cJSON *j, const char *path) {
    const cJSON *x = jget(j, path);
    cr_assert(cJSON_IsNumber(x), "'%s' is not a number in %s", path, cJSON_PrintUnformatted(j));
    return x->valuedouble;
}

static const char *jstr(const cJSON *j, const char *path) {
    const cJSON *x = jget(j, path);
    cr_assert(cJSON_IsString(x), "'%s' is not a string in %s", path, cJSON_PrintUnformatted(j));
    return x->valuestring;
}

static int jbool(const cJSON *j, const char *path) {
    const cJSON *x = jget(j, path);
    cr_assert(cJSON_IsBool(x), "'%s' is not a boolean in %s", path, cJSON_PrintUnformatted(j));
    return cJSON_IsTrue(x);
}

/* The text of the number after "key": in out (as printed, every digit). */
static void printed(const char *out, const char *key, char *val, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(out, pat);
    cr_assert(p, "no '%s' in %s", key, out);
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    cr_assert(n > 0 && n < cap);
    memcpy(val, p, n);
    val[n] = '\0';
}

/* `semctr eval --json` of two model files on the valid and test splits:
 * auc and logloss identical to every printed digit. */
static void same_eval(const char *dir, const char *a, const char *b) {
    static const char *splits[2] = {"valid", "test"}, *keys[2] = {"auc", "logloss"};
    for (int s = 0; s < 2; s++) {
        char va[2][64], vb[2][64];
        cr_assert_eq(tcli_semctr("eval --model %s/%s --data %s/data --split %s --json", dir, a, dir, splits[s]), 0, "%s",
                     tcli_out());
        for (int k = 0; k < 2; k++) printed(tcli_out(), keys[k], va[k], sizeof va[k]);
        cr_assert_eq(tcli_semctr("eval --model %s/%s --data %s/data --split %s --json", dir, b, dir, splits[s]), 0, "%s",
                     tcli_out());
        for (int k = 0; k < 2; k++) {
            printed(tcli_out(), keys[k], vb[k], sizeof vb[k]);
            cr_assert_str_eq(va[k], vb[k], "%s %s: %s %s, %s %s", splits[s], keys[k], a, va[k], b, vb[k]);
        }
    }
}

/* `semctr predict` of two model files on the first raw rows of the log:
 * the same scores (1) or not (0). */
static int same_predictions(const char *dir, const char *a, const char *b) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "head -301 '%s/log.csv' > '%s/rows.csv'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    const char *m[2] = {a, b};
    char *txt[2];
    size_t n[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tcli_semctr("predict --model %s/%s --input %s/rows.csv --output %s/p_%s.csv", dir, m[i], dir, dir, m[i]),
                     0, "%s", tcli_out());
        char path[256];
        snprintf(path, sizeof path, "%s/p_%s.csv", dir, m[i]);
        cr_assert_eq(sc_read_file(path, &txt[i], &n[i], NULL), SC_OK);
        cr_assert(n[i] > 300 * 2, "%s", txt[i]);
    }
    int same = n[0] == n[1] && !memcmp(txt[0], txt[1], n[0]);
    sc_free(txt[0]);
    sc_free(txt[1]);
    return same;
}

/* The plain backbone: `semctr train` with the shared settings, into DIR/plain. */
static void train_plain(const char *d) {
    cr_assert_eq(tcli_semctr("train --data %s/data " TRAIN " --out %s/plain --json", d, d), 0, "%s", tcli_out());
}

/* ---------------- ELEC ---------------- */

Test(guard_elec, a_teacher_worse_than_its_student_is_refused, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1};
    fixture(d, &o);
    train_plain(d);
    cJSON *pj = json_out();
    double plain_valid_auc = jnum(pj, "valid_auc");
    cJSON_Delete(pj);

    cr_assert_eq(tcli_semctr("train " ELEC " --data %s/data " TRAIN " --out %s/e --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    cr_assert_eq(jbool(j, "elec.guard.enabled"), 1);
    cr_assert_eq(jnum(j, "elec.guard.folds"), 5, "the default cross-fitting");
    /* the teacher leans on the texts and is worse than the plain backbone: refused */
    double diff = jnum(j, "elec.guard.teacher.diff"), se = jnum(j, "elec.guard.teacher.se");
    cr_assert_lt(diff, 0, "fixture: the teacher should be worse than the plain backbone (diff %g)", diff);
    cr_assert_gt(se, 0);
    cr_assert_eq(jbool(j, "elec.guard.teacher.pass"), 0, "diff %g, se %g", diff, se);
    cr_assert_eq(jbool(j, "elec.guard.teacher_accepted"), 0, "a teacher worse than its student was accepted: %s",
                 cJSON_PrintUnformatted(jget(j, "elec.guard")));
    cr_assert_str_eq(jstr(j, "elec.guard.served"), "plain backbone");
    cr_assert(strstr(jstr(j, "elec.guard.reason"), "teacher"), "%s", jstr(j, "elec.guard.reason"));
    /* the verdict is about the networks reported beside it */
    cr_assert_eq(jnum(j, "elec.guard.teacher.valid_auc"), jnum(j, "valid.gain.auc"));
    cr_assert_eq(jnum(j, "elec.guard.teacher.base_valid_auc"), jnum(j, "valid.base.auc"));
    cr_assert(fabs(diff - (jnum(j, "valid.gain.auc") - jnum(j, "valid.base.auc"))) < 1e-12);
    /* the guard's plain backbone is the one `semctr train` makes, and it is what is served */
    cr_assert(fabs(jnum(j, "valid.base.auc") - plain_valid_auc) < 1e-6, "base %.9f, semctr train %.9f",
              jnum(j, "valid.base.auc"), plain_valid_auc);
    const char *keys[2] = {"auc", "logloss"}, *splits[2] = {"valid", "test"};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            char a[64], b[64];
            snprintf(a, sizeof a, "%s.served.%s", splits[s], keys[k]);
            snprintf(b, sizeof b, "%s.base.%s", splits[s], keys[k]);
            cr_assert_eq(jnum(j, a), jnum(j, b), "%s %.17g vs %s %.17g", a, jnum(j, a), b, jnum(j, b));
        }
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("export --model %s/e --network vanilla --out %s/v", d, d), 0, "%s", tcli_out());
    same_eval(d, "plain", "v");
    same_eval(d, "plain", "e"); /* eval of the ELEC file scores with its vanilla network */
    cr_assert(same_predictions(d, "plain", "v"), "the served network does not score like the plain backbone");
    cleanup(d);
}

/* Guard off: the distilled network is served, the very one the guard judged
 * when on (the plain backbone trained beside it changes nothing in the pair). */
Test(guard_elec, guard_off_serves_the_distilled_network, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1};
    fixture(d, &o);
    train_plain(d);
    cr_assert_eq(tcli_semctr("train " ELEC " --data %s/data " TRAIN " --out %s/e --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    double guarded_vanilla_auc = jnum(j, "valid.vanilla.auc");
    cr_assert_eq(jnum(j, "elec.guard.vanilla.valid_auc"), guarded_vanilla_auc);
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("train " ELEC " --elec-guard off --data %s/data " TRAIN " --out %s/e2 --json", d, d), 0, "%s",
                 tcli_out());
    j = json_out();
    cr_assert_eq(jbool(j, "elec.guard.enabled"), 0);
    cr_assert_str_eq(jstr(j, "elec.guard.served"), "distilled vanilla network");
    cr_assert_null(jget(j, "elec.guard.teacher"));
    cr_assert_null(jget(j, "valid.base"), "no plain backbone is trained with the guard off");
    cr_assert_eq(jnum(j, "valid.served.auc"), jnum(j, "valid.vanilla.auc"));
    cr_assert_eq(jnum(j, "valid.vanilla.auc"), guarded_vanilla_auc, "guard off %.17g, on %.17g",
                 jnum(j, "valid.vanilla.auc"), guarded_vanilla_auc);
    double vanilla_auc = jnum(j, "valid.vanilla.auc");
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("export --model %s/e2 --network vanilla --out %s/v2", d, d), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/v2 --data %s/data --split valid --json", d, d), 0, "%s", tcli_out());
    cr_assert(fabs(tcli_json_number(tcli_out(), "auc") - vanilla_auc) < 1e-8, "eval %.9f, train %.9f",
              tcli_json_number(tcli_out(), "auc"), vanilla_auc);
    cr_assert_eq(same_predictions(d, "plain", "v2"), 0, "the distilled network scores like the plain backbone");
    cleanup(d);
}

/* The control: texts whose effect lasts. A teacher that beats its student is
 * accepted; what is served follows the distilled network's own verdict. */
Test(guard_elec, a_teacher_that_helps_is_accepted, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1, .helpful = 1, .users = FX_HELP_USERS, .items = FX_HELP_ITEMS};
    fixture(d, &o);
    train_plain(d);
    cr_assert_eq(tcli_semctr("train " ELEC " --data %s/data " TRAIN " --out %s/e --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    cr_assert_gt(jnum(j, "elec.guard.teacher.diff"), 0, "fixture: the teacher should beat the plain backbone: %s",
                 cJSON_PrintUnformatted(jget(j, "elec.guard")));
    cr_assert_eq(jbool(j, "elec.guard.teacher_accepted"), 1, "%s", cJSON_PrintUnformatted(jget(j, "elec.guard")));
    int distilled = jbool(j, "elec.guard.vanilla.pass");
    cr_assert_eq(jnum(j, "elec.guard.vanilla.valid_auc"), jnum(j, "valid.vanilla.auc"));
    cr_assert_str_eq(jstr(j, "elec.guard.served"), distilled ? "distilled vanilla network" : "plain backbone");
    cr_assert_eq(jnum(j, "valid.served.auc"), jnum(j, distilled ? "valid.vanilla.auc" : "valid.base.auc"));
    cr_assert_eq(jnum(j, "test.served.auc"), jnum(j, distilled ? "test.vanilla.auc" : "test.base.auc"));
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("export --model %s/e --network vanilla --out %s/v", d, d), 0, "%s", tcli_out());
    cr_assert_eq(same_predictions(d, "plain", "v"), !distilled, "served: %s", distilled ? "distilled" : "plain backbone");
    cleanup(d);
}

/* Staged: the teacher is judged before the student is trained from it; a
 * refused teacher teaches nothing and the plain backbone is served. */
Test(guard_elec, staged_refused_teacher_trains_no_student, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1};
    fixture(d, &o);
    train_plain(d);
    cr_assert_eq(tcli_semctr("train " ELEC " --elec-schedule staged --data %s/data " TRAIN " --out %s/e --json", d, d), 0,
                 "%s", tcli_out());
    cJSON *j = json_out();
    cr_assert_lt(jnum(j, "elec.guard.teacher.diff"), 0, "fixture: the teacher should be worse");
    cr_assert_eq(jbool(j, "elec.guard.teacher_accepted"), 0);
    cr_assert_str_eq(jstr(j, "elec.guard.served"), "plain backbone");
    cr_assert(cJSON_IsNull(jget(j, "valid.vanilla")), "a student was trained from a refused teacher: %s",
              cJSON_PrintUnformatted(jget(j, "valid")));
    cr_assert_eq(jnum(j, "test.served.auc"), jnum(j, "test.base.auc"));
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("export --model %s/e --network vanilla --out %s/v", d, d), 0, "%s", tcli_out());
    same_eval(d, "plain", "v");
    cr_assert(same_predictions(d, "plain", "v"));
    cleanup(d);
}

Test(guard_elec, cross_fitting_folds_are_reported_and_checked, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1};
    fixture(d, &o);
    double adapter[2], gain[2];
    int folds[2] = {3, 1};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tcli_semctr("train " ELEC " --elec-folds %d --data %s/data " TRAIN " --out %s/e%d --json", folds[i], d, d, i),
                     0, "%s", tcli_out());
        cJSON *j = json_out();
        cr_assert_eq(jnum(j, "elec.guard.folds"), folds[i], "%s", cJSON_PrintUnformatted(jget(j, "elec.guard")));
        adapter[i] = jnum(j, "valid.adapter.auc");
        gain[i] = jnum(j, "valid.gain.auc");
        cJSON_Delete(j);
    }
    /* validation uses the adapter fitted on all training rows whatever the folds;
     * the gain network trains on other representations of the training rows */
    cr_assert_eq(adapter[0], adapter[1], "folds 3: %.17g, folds 1: %.17g", adapter[0], adapter[1]);
    cr_assert_neq(gain[0], gain[1], "the gain network is the same with 3 folds and in-sample: folds ignored?");
    /* bad values are usage errors, before any work */
    const char *bad[3] = {"0", "101", "two"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tcli_semctr("train " ELEC " --elec-folds %s --data %s/data " TRAIN " --out %s/x", bad[i], d, d), 2,
                     "--elec-folds %s: %s", bad[i], tcli_out());
        cr_assert(strstr(tcli_out(), "--elec-folds"), "%s", tcli_out());
    }
    cr_assert_eq(tcli_semctr("train " ELEC " --elec-guard maybe --data %s/data " TRAIN " --out %s/x", d, d), 2, "%s",
                 tcli_out());
    cr_assert(strstr(tcli_out(), "--elec-guard"), "%s", tcli_out());
    char x[96];
    snprintf(x, sizeof x, "%s/x", d);
    cr_assert(!sc_file_exists(x), "a usage error wrote a model");
    cleanup(d);
}

/* ---------------- MSD ---------------- */

/* The levels of --json's msd.selection, comma-separated, and the chosen one. */
static void selection(const cJSON *j, char *levels, size_t cap, char *chosen, size_t ccap) {
    const cJSON *sel = jget(j, "msd.selection");
    cr_assert(cJSON_IsArray(sel), "%s", cJSON_PrintUnformatted(j));
    levels[0] = chosen[0] = '\0';
    int n_chosen = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, sel) {
        const char *lv = jstr(c, "levels");
        strncat(levels, levels[0] ? "," : "", cap - strlen(levels) - 1);
        strncat(levels, lv, cap - strlen(levels) - 1);
        if (jbool(c, "chosen")) {
            snprintf(chosen, ccap, "%s", lv);
            n_chosen++;
        }
        if (strcmp(lv, "none")) {
            /* kept exactly when the guard passes it: diff > se and diff > 0 */
            double diff = jnum(c, "diff_vs_base"), se = jnum(c, "se");
            cr_assert_eq(jbool(c, "kept"), diff > 0 && diff > se, "%s: diff %g, se %g", lv, diff, se);
            /* (every entity is known to the model file, so the file's scores, which the guard
             * judges, and the training-time ones, reported as valid_auc, agree) */
            cr_assert(fabs(jnum(c, "valid_auc") - diff - jnum(sel->child, "valid_auc")) < 1e-12,
                      "%s: valid_auc %.17g - plain %.17g != diff_vs_base %.17g", lv, jnum(c, "valid_auc"),
                      jnum(sel->child, "valid_auc"), diff);
        } else {
            cr_assert_eq(jbool(c, "kept"), 0);
        }
    }
    cr_assert_eq(n_chosen, 1, "%s", cJSON_PrintUnformatted(sel));
}

Test(guard_msd, auto_keeps_no_level_that_does_not_help, .timeout = 240) {
    char d[64];
    fx_opts o = {.user_table = 1, .history = 1};
    fixture(d, &o);
    train_plain(d);
    cr_assert_eq(tcli_semctr("train --method msd --data %s/data " TRAIN " --out %s/m --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    char levels[128], chosen[64];
    selection(j, levels, sizeof levels, chosen, sizeof chosen);
    cr_assert_str_eq(levels, "none,item,user,fusion", "every level the dataset has is a candidate");
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(j, "msd.selection")) {
        if (!strcmp(jstr(c, "levels"), "none")) continue;
        cr_assert_lt(jnum(c, "diff_vs_base"), 0, "fixture: level %s should be worse than the plain backbone",
                     jstr(c, "levels"));
        cr_assert_gt(jnum(c, "se"), 0);
        cr_assert_eq(jbool(c, "kept"), 0, "level %s kept", jstr(c, "levels"));
    }
    cr_assert_str_eq(chosen, "none", "%s", cJSON_PrintUnformatted(jget(j, "msd.selection")));
    cr_assert_str_eq(jstr(j, "msd.levels"), "none");
    cr_assert_str_eq(jstr(j, "msd.requested"), "auto");
    cr_assert_str_eq(jstr(j, "msd_settings.levels"), "auto");
    cr_assert_eq(jnum(j, "base.valid.all.auc"), jnum(j, "valid.all.auc"));
    cr_assert_eq(jnum(j, "base.test.all.auc"), jnum(j, "test.all.auc"));
    cr_assert_eq(jnum(jget(j, "msd.selection")->child, "valid_auc"), jnum(j, "valid.all.auc"));
    cJSON_Delete(j);
    /* the written model is the plain backbone `semctr train` makes */
    same_eval(d, "plain", "m");
    cr_assert(same_predictions(d, "plain", "m"));
    /* the candidates' temporary files are gone */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", d);
    cr_assert_neq(system(cmd), 0, "temporary files left in %s", d);
    cleanup(d);
}

/* The control: texts whose effect lasts. A level that helps is kept, the
 * best kept candidate is written. */
Test(guard_msd, auto_keeps_a_level_that_helps, .timeout = 240) {
    char d[64], levels[128], chosen[64];
    fx_opts o = {.user_table = 1, .history = 1, .helpful = 1, .users = FX_HELP_USERS, .items = FX_HELP_ITEMS};
    fixture(d, &o);
    cr_assert_eq(tcli_semctr("train --method msd --data %s/data " TRAIN " --out %s/m --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    selection(j, levels, sizeof levels, chosen, sizeof chosen);
    cr_assert_str_neq(chosen, "none", "%s", cJSON_PrintUnformatted(jget(j, "msd.selection")));
    cr_assert_str_eq(jstr(j, "msd.levels"), chosen);
    double best = -1, chosen_auc = -1;
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(j, "msd.selection")) {
        if (jbool(c, "kept") && jnum(c, "valid_auc") > best) best = jnum(c, "valid_auc");
        if (jbool(c, "chosen")) {
            cr_assert_eq(jbool(c, "kept"), 1, "a level chosen without passing the guard");
            chosen_auc = jnum(c, "valid_auc");
        }
    }
    cr_assert_eq(chosen_auc, best, "the chosen level is not the best kept one: %s",
                 cJSON_PrintUnformatted(jget(j, "msd.selection")));
    cr_assert_eq(jnum(j, "valid.all.auc"), chosen_auc);
    cr_assert_gt(chosen_auc, jnum(j, "base.valid.all.auc"));
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split valid --json", d, d), 0, "%s", tcli_out());
    cr_assert(fabs(tcli_json_number(tcli_out(), "auc") - chosen_auc) < 1e-6, "eval %.9f, selection %.9f",
              tcli_json_number(tcli_out(), "auc"), chosen_auc);
    cleanup(d);
}

Test(guard_msd, auto_without_a_user_table, .timeout = 240) {
    char d[64], levels[128], chosen[64];
    fx_opts o = {.user_table = 0, .history = 1};
    fixture(d, &o);
    cr_assert_eq(tcli_semctr("train --method msd --data %s/data " TRAIN " --out %s/m --json", d, d), 0, "%s", tcli_out());
    cJSON *j = json_out();
    selection(j, levels, sizeof levels, chosen, sizeof chosen);
    cr_assert_str_eq(levels, "none,item,fusion", "no user texts: no user level");
    cJSON_Delete(j);
    /* asking for the user level is an error that says why */
    const char *ask[2] = {"user", "all"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tcli_semctr("train --method msd --msd-levels %s --data %s/data " TRAIN " --out %s/x", ask[i], d, d), 1,
                     "--msd-levels %s: %s", ask[i], tcli_out());
        cr_assert(strstr(tcli_out(), "user") && strstr(tcli_out(), "no text columns"), "%s", tcli_out());
    }
    cleanup(d);
    /* nor a behaviour sequence: the item level alone */
    o.history = 0;
    fixture(d, &o);
    cr_assert_eq(tcli_semctr("train --method msd --data %s/data " TRAIN " --out %s/m --json", d, d), 0, "%s", tcli_out());
    j = json_out();
    selection(j, levels, sizeof levels, chosen, sizeof chosen);
    cr_assert_str_eq(levels, "none,item");
    cJSON_Delete(j);
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels fusion --data %s/data " TRAIN " --out %s/x", d, d), 1, "%s",
                 tcli_out());
    cr_assert(strstr(tcli_out(), "fusion") && strstr(tcli_out(), "sequence"), "%s", tcli_out());
    cleanup(d);
}
