/* data: prepare of the real ml-100k, checked from the raw u.data: split
 * sizes, labels in time order, vocabularies from train only, histories
 * holding only earlier items; schema round trip; encode of raw rows equals
 * the prepared columns. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"
#include "data/dataset.h"
#include "data/prepare.h"
#include "data/schema.h"

typedef struct rating {
    int user, item, rating;
    long ts;
    int idx;
} rating;

static rating *g_r; /* u.data sorted by time (stable) */
static int g_n;
static char g_dir[64];
static sc_dataset g_ds[3];
static sc_schema *g_s;

static int cmp_ts(const void *a, const void *b) {
    const rating *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->idx - y->idx;
}

static void setup(void) {
    sc_log_level = SC_LOG_QUIET;
    const char *data = getenv("SEMCTR_DATA");
    if (!data || !*data) {
        data = "../shared/data"; /* the layout the config's default assumes */
        setenv("SEMCTR_DATA", data, 1);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/ml-100k/u.data", data);
    FILE *fp = fopen(path, "r");
    cr_assert(fp, "cannot open %s", path);
    g_r = calloc(100000, sizeof *g_r);
    while (g_n < 100000 && fscanf(fp, "%d %d %d %ld", &g_r[g_n].user, &g_r[g_n].item, &g_r[g_n].rating, &g_r[g_n].ts) == 4) {
        g_r[g_n].idx = g_n;
        g_n++;
    }
    fclose(fp);
    cr_assert_eq(g_n, 100000);
    qsort(g_r, (size_t)g_n, sizeof *g_r, cmp_ts);
    strcpy(g_dir, "/tmp/sc_ml_XXXXXX");
    cr_assert(mkdtemp(g_dir));
    sc_error e;
    sc_prepare_stats st;
    int rc = sc_prepare_file("configs/ml-100k.yaml", g_dir, -1, &st, &e);
    cr_assert_eq(rc, SC_OK, "%s", e.msg);
    static const char *const sn[3] = {"train", "valid", "test"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s.scd", g_dir, sn[k]);
        cr_assert_eq(sc_dataset_open(&g_ds[k], path, &e), SC_OK, "%s", e.msg);
    }
    cr_assert_eq(sc_schema_load(&g_s, g_dir, &e), SC_OK, "%s", e.msg);
}

static void teardown(void) {
    for (int k = 0; k < 3; k++) sc_dataset_close(&g_ds[k]);
    sc_schema_free(g_s);
    free(g_r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    cr_assert_eq(system(cmd), 0);
}

/* global row r (time order) -> split and row within it */
static const sc_dataset *at(int r, int64_t *row) {
    int k = r < 80000 ? 0 : r < 90000 ? 1 : 2;
    *row = r - (k == 0 ? 0 : k == 1 ? 80000 : 90000);
    return &g_ds[k];
}

TestSuite(data_ml100k, .init = setup, .fini = teardown, .timeout = 60);

Test(data_ml100k, sizes_labels_time_order) {
    cr_assert_eq(g_ds[0].n_rows, 80000);
    cr_assert_eq(g_ds[1].n_rows, 10000);
    cr_assert_eq(g_ds[2].n_rows, 10000);
    int pos = 0;
    for (int r = 0; r < g_n; r++) {
        int64_t row;
        const sc_dataset *ds = at(r, &row);
        float want = g_r[r].rating >= 4;
        cr_assert_eq(ds->label[row], want, "row %d: label %g, rating %d", r, ds->label[row], g_r[r].rating);
        pos += ds->label[row] > 0.5f;
    }
    cr_assert_eq(pos, 55375);
    cr_assert_eq(sc_schema_group_field(g_s), sc_schema_field_index(g_s, "user_id"));
    cr_assert_not_null(g_ds[0].group);
}

Test(data_ml100k, vocab_from_train_only) {
    int fi = sc_schema_field_index(g_s, "item_id");
    cr_assert(fi >= 0);
    static char in_train[2000];
    memset(in_train, 0, sizeof in_train);
    for (int r = 0; r < 80000; r++) in_train[g_r[r].item] = 1;
    int oov_seen = 0;
    for (int r = 0; r < g_n; r++) {
        int64_t row;
        const sc_dataset *ds = at(r, &row);
        int32_t id = ds->ids[fi][row];
        if (!in_train[g_r[r].item]) {
            cr_assert_eq(id, 1, "item %d first seen after train must be OOV", g_r[r].item);
            oov_seen++;
        } else {
            const char *s = sc_schema_id_string(g_s, fi, id);
            cr_assert_not_null(s);
            cr_assert_eq(atoi(s), g_r[r].item);
        }
    }
    cr_assert(oov_seen > 0, "ml-100k has items first rated in the test period");
    int nf;
    const sc_field_info *f = sc_schema_fields(g_s, &nf);
    int n_train_items = 0;
    for (int i = 0; i < 2000; i++) n_train_items += in_train[i];
    cr_assert_eq(f[fi].vocab_size, n_train_items + 2);
}

Test(data_ml100k, history_holds_only_earlier_items) {
    int fi = sc_schema_field_index(g_s, "item_id"), hi = sc_schema_field_index(g_s, "history");
    int nf;
    const sc_field_info *f = sc_schema_fields(g_s, &nf);
    cr_assert_eq(f[hi].kind, SC_FIELD_SEQUENCE);
    cr_assert_eq(f[hi].width, 20);
    cr_assert_eq(f[hi].share_with, fi);
    /* per user, the item ids (encoded) seen so far */
    static int32_t seen[1000][1800];
    static int n_seen[1000];
    memset(n_seen, 0, sizeof n_seen);
    for (int r = 0; r < g_n; r++) {
        int64_t row;
        const sc_dataset *ds = at(r, &row);
        const int32_t *h = ds->ids[hi] + row * 20;
        int u = g_r[r].user, n = n_seen[u];
        for (int k = 0; k < 20; k++) {
            int32_t want = k < n ? seen[u][n - 1 - k] : 0;
            cr_assert_eq(h[k], want, "row %d user %d slot %d: %d, want %d", r, u, k, h[k], want);
        }
        seen[u][n_seen[u]++] = ds->ids[fi][row];
    }
}

Test(data_ml100k, joined_fields_and_text) {
    int gi = sc_schema_field_index(g_s, "genres"), ti = sc_schema_text_index(g_s, "title");
    int oi = sc_schema_text_index(g_s, "occupation");
    cr_assert(gi >= 0 && ti >= 0 && oi >= 0);
    cr_assert_str_eq(sc_schema_text_entity(g_s, ti), "item");
    cr_assert_str_eq(sc_schema_text_entity(g_s, oi), "user");
    /* find a row about item 1 (Toy Story: Animation, Children's, Comedy) and user 1 (technician) */
    int found = 0;
    for (int r = 0; r < 80000 && found < 2; r++) {
        int64_t row;
        const sc_dataset *ds = at(r, &row);
        if (g_r[r].item == 1) {
            const char *title = sc_schema_text(g_s, ti, sc_dataset_text(ds, ti)[row]);
            cr_assert_str_eq(title, "Toy Story (1995)");
            const int32_t *g = ds->ids[gi] + row * 6;
            cr_assert_str_eq(sc_schema_id_string(g_s, gi, g[0]), "Animation");
            cr_assert_str_eq(sc_schema_id_string(g_s, gi, g[1]), "Children's");
            cr_assert_str_eq(sc_schema_id_string(g_s, gi, g[2]), "Comedy");
            cr_assert_eq(g[3], 0);
            cr_assert_str_eq(sc_schema_text(g_s, sc_schema_text_index(g_s, "genres"),
                                            sc_dataset_text(ds, sc_schema_text_index(g_s, "genres"))[row]),
                             "Animation, Children's, Comedy");
            found++;
        }
        if (g_r[r].user == 1 && found == 1) {
            cr_assert_str_eq(sc_schema_text(g_s, oi, sc_dataset_text(ds, oi)[row]), "technician");
            found++;
        }
    }
    cr_assert_eq(found, 2);
    /* Latin-1 u.item converted to UTF-8: item 1296 is "Indian Summer" ... any title with an accent */
    int64_t n = sc_schema_text_count(g_s, ti), accented = 0;
    for (int64_t i = 0; i < n; i++) accented += strstr(sc_schema_text(g_s, ti, (int32_t)i), "\xc3\xa9") != NULL;
    cr_assert(accented > 0, "titles with an e-acute, converted from Latin-1");
}

Test(data_ml100k, schema_roundtrip) {
    uint8_t *a, *b;
    size_t na, nb;
    sc_error e;
    cr_assert_eq(sc_schema_serialize(g_s, &a, &na, &e), SC_OK);
    sc_schema *s2;
    cr_assert_eq(sc_schema_deserialize(&s2, a, na, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_schema_serialize(s2, &b, &nb, &e), SC_OK);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na), 0);
    cr_assert_str_eq(sc_schema_label_rule(s2), "rating >= 4");
    cr_assert(strstr(sc_schema_config_text(s2), "ml-100k"));
    sc_schema_free(s2);
    /* every truncation and a sweep of corrupted bytes fail cleanly */
    for (size_t cut = 0; cut < na; cut += na / 97 + 1) {
        cr_assert_neq(sc_schema_deserialize(&s2, a, cut, &e), SC_OK);
        cr_assert_null(s2);
    }
    uint8_t *c = malloc(na);
    for (int t = 0; t < 200; t++) {
        memcpy(c, a, na);
        size_t at = ((size_t)t * 2654435761u) % na;
        c[at] ^= (uint8_t)(1u << (t % 8));
        if (sc_schema_deserialize(&s2, c, na, &e) == SC_OK) sc_schema_free(s2); /* some flips are benign (text) */
    }
    free(c);
    sc_free(a);
    sc_free(b);
}

Test(data_ml100k, encode_raw_rows_equals_prepared) {
    const char *cols[] = {"user_id", "item_id", "rating", "timestamp", "history"};
    enum { R = 300 };
    static char buf[R][5][400];
    const char *cells[R * 5];
    int hi = sc_schema_field_index(g_s, "history");
    /* raw history per user: the items rated before, most recent first */
    static int hist[1000][1800];
    static int nh[1000];
    memset(nh, 0, sizeof nh);
    int first = 90000; /* encode the first R rows of the test split */
    for (int r = 0; r < first; r++) hist[g_r[r].user][nh[g_r[r].user]++] = g_r[r].item;
    for (int i = 0; i < R; i++) {
        const rating *x = &g_r[first + i];
        snprintf(buf[i][0], 400, "%d", x->user);
        snprintf(buf[i][1], 400, "%d", x->item);
        snprintf(buf[i][2], 400, "%d", x->rating);
        snprintf(buf[i][3], 400, "%ld", x->ts);
        size_t w = 0;
        buf[i][4][0] = 0;
        for (int k = 0; k < 20 && k < nh[x->user]; k++)
            w += (size_t)snprintf(buf[i][4] + w, 400 - w, "%s%d", k ? "|" : "", hist[x->user][nh[x->user] - 1 - k]);
        for (int c = 0; c < 5; c++) cells[i * 5 + c] = buf[i][c];
        if (i % 7 == 3) cells[i * 5 + 3] = NULL; /* unused columns may be missing */
        hist[x->user][nh[x->user]++] = x->item;
    }
    int nf;
    const sc_field_info *f = sc_schema_fields(g_s, &nf);
    sc_batch b;
    sc_error e;
    cr_assert_eq(sc_batch_alloc(&b, f, nf, R, &e), SC_OK);
    cr_assert_eq(sc_schema_encode(g_s, R, 5, cols, cells, &b, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(b.n, R);
    const sc_dataset *ds = &g_ds[2];
    for (int i = 0; i < R; i++) {
        cr_assert_eq(b.label[i], ds->label[i]);
        for (int fi = 0; fi < nf; fi++) {
            if (f[fi].kind == SC_FIELD_NUMERIC) {
                cr_assert_float_eq(b.values[fi][i], ds->values[fi][i], 1e-6);
                continue;
            }
            for (int k = 0; k < f[fi].width; k++)
                cr_assert_eq(b.ids[fi][i * f[fi].width + k], ds->ids[fi][i * f[fi].width + k],
                             "row %d field %s slot %d", i, f[fi].name, k);
        }
    }
    (void)hi;
    /* a row with everything missing: categorical -> OOV, multi/sequence -> padding */
    const char *none[5] = {NULL, NULL, NULL, NULL, NULL};
    cr_assert_eq(sc_schema_encode(g_s, 1, 5, cols, none, &b, &e), SC_OK);
    cr_assert_eq(b.ids[sc_schema_field_index(g_s, "user_id")][0], 1);
    cr_assert_eq(b.ids[sc_schema_field_index(g_s, "genres")][0], 0);
    cr_assert_eq(b.ids[hi][0], 0);
    cr_assert_eq(b.label[0], 0.0f);
    sc_batch_free(&b);
}
