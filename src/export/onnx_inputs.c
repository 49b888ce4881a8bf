/* The input manifest of an exported ONNX graph and its lookup files (see
 * export/onnx.h; docs/onnx.md is the reference for the format).
 *
 * The graph takes ids; a client has raw click-log rows. For each input the
 * manifest says which raw column it comes from and how prepare / predict
 * encode it (sc_schema_encode), with the parameters that encoding needs.
 * A field joined from a side table (ml-100k's age, genres, year: through
 * user_id or item_id) is resolved here once for every key of the side
 * table, by sc_schema_encode itself, so the client needs one lookup from
 * the key column and none of the join, pattern, bucket or flag logic.
 *
 * This reads the schema's internals (data/schema_impl.h): the transforms
 * and join tables are not part of the schema's public API. */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/file.h"
#include "data/schema_impl.h"
#include "export/onnx.h"

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int write_json(const char *path, const cJSON *j, int pretty, sc_error *err) {
    char *s = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (!s) return sc_fail(err, SC_ENOMEM, "ONNX export: out of memory writing %s", path);
    sc_atomic_file f;
    int rc = sc_atomic_open(&f, path, err);
    if (!rc) {
        rc = sc_atomic_write(&f, s, strlen(s), err);
        if (!rc) rc = sc_atomic_write(&f, "\n", 1, err);
        if (!rc) rc = sc_atomic_commit(&f, err);
        else sc_atomic_abort(&f);
    }
    cJSON_free(s);
    return rc;
}

/* Field f of row r of a batch as the graph takes it: an id, a value, or W ids. */
static cJSON *encoded(const sc_field_info *fi, const sc_batch *b, int f, int r) {
    if (fi->kind == SC_FIELD_NUMERIC) return cJSON_CreateNumber(b->values[f][r]);
    if (fi->kind == SC_FIELD_CATEGORICAL) return cJSON_CreateNumber(b->ids[f][r]);
    cJSON *a = cJSON_CreateArray();
    for (int w = 0; w < fi->width; w++) cJSON_AddItemToArray(a, cJSON_CreateNumber(b->ids[f][(size_t)r * fi->width + w]));
    return a;
}

/* The table a field reads its cell(s) from: -1 the main table, j a join,
 * -2 flag columns spread over several tables. */
static int source_table(const sc_fenc *e) {
    if (e->transform != SC_TR_MULTI || !e->n_flags) return e->src.table;
    for (int i = 1; i < e->n_flags; i++)
        if (e->flag_src[i].table != e->flag_src[0].table) return -2;
    return e->flag_src[0].table;
}

/* The id of value v in field e's vocabulary or hash buckets, as
 * schema.c's lookup() gives it (1: not in the vocabulary). */
static double id_of(const sc_fenc *e, const char *v) {
    if (e->hash_buckets) return 2.0 + (double)(XXH64(v, strlen(v), 0) % (uint64_t)e->hash_buckets);
    int64_t k = sc_strmap_find(&e->vocab, v, strlen(v));
    return k < 0 ? 1.0 : (double)k + 2;
}

/* {value: id} of a vocabulary. */
static cJSON *vocab_table(const sc_fenc *e) {
    cJSON *t = cJSON_CreateObject();
    for (size_t i = 0; i < e->vocab.n; i++) cJSON_AddItemToObject(t, e->vocab.key[i], cJSON_CreateNumber((double)i + 2));
    return t;
}

static const char *kind_name(int k) {
    return k == SC_FIELD_NUMERIC ? "numeric" : k == SC_FIELD_MULTI ? "multi" : k == SC_FIELD_SEQUENCE ? "sequence" : "categorical";
}

/* *out: the manifest entry of field f (without its lookup table's
 * contents). *table gets the lookup object the entry's "file" names, or
 * NULL; *join the join whose keys the caller resolves into it, or -1.
 * miss: the field's encoding in a row with every column missing. */
static int describe(const sc_schema *s, int f, const cJSON *miss, cJSON **out, cJSON **table, int *join, sc_error *err) {
    const sc_fenc *e = &s->fenc[f];
    const sc_field_info *fi = &e->info;
    *out = *table = NULL;
    *join = -1;
    if (source_table(e) == -2)
        return sc_fail(err, SC_EINVAL, "ONNX export: field '%s' reads flag columns from several tables; the input "
                       "manifest cannot describe it", fi->name);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", fi->name);
    cJSON_AddStringToObject(x, "dtype", fi->kind == SC_FIELD_NUMERIC ? "float32" : "int64");
    cJSON *shape = cJSON_AddArrayToObject(x, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateString("N"));
    if (fi->kind >= SC_FIELD_MULTI) cJSON_AddItemToArray(shape, cJSON_CreateNumber(fi->width));
    cJSON_AddStringToObject(x, "kind", kind_name(fi->kind));
    if (fi->kind != SC_FIELD_NUMERIC) cJSON_AddNumberToObject(x, "vocab_size", (double)fi->vocab_size);
    if (fi->kind >= SC_FIELD_MULTI) cJSON_AddNumberToObject(x, "width", fi->width);
    int src = source_table(e);
    if (e->transform == SC_TR_SEQUENCE) {
        /* the cell of the column named like the field: values split at the separator, most recent first */
        const sc_fenc *of = &s->fenc[e->of];
        cJSON_AddStringToObject(x, "encoding", "split");
        cJSON_AddStringToObject(x, "column", fi->name);
        cJSON_AddStringToObject(x, "separator", e->sep);
        cJSON_AddStringToObject(x, "vocabulary_of", of->info.name);
        if (of->hash_buckets) cJSON_AddNumberToObject(x, "hash_buckets", (double)of->hash_buckets);
        else *table = vocab_table(of);
    } else if (src >= 0) {
        const sc_jtable *j = &s->joins[src];
        cJSON_AddStringToObject(x, "encoding", "lookup");
        cJSON_AddStringToObject(x, "column", s->main_cols[j->on_idx]);
        cJSON_AddStringToObject(x, "join", j->name);
        *table = cJSON_CreateObject();
        *join = src;
    } else {
        cJSON_AddStringToObject(x, "column", s->main_cols[e->src.col]);
        switch (e->transform) {
        case SC_TR_CATEGORICAL:
            if (e->hash_buckets) {
                cJSON_AddStringToObject(x, "encoding", "hash");
                cJSON_AddNumberToObject(x, "hash_buckets", (double)e->hash_buckets);
            } else {
                cJSON_AddStringToObject(x, "encoding", "lookup");
                *table = vocab_table(e);
            }
            break;
        case SC_TR_LOG2:
            cJSON_AddStringToObject(x, "encoding", "log2");
            if (e->hash_buckets) cJSON_AddNumberToObject(x, "hash_buckets", (double)e->hash_buckets);
            else *table = vocab_table(e);
            break;
        case SC_TR_NUMERIC: {
            static const char *NORM[] = {"none", "standard", "minmax", "log"};
            cJSON_AddStringToObject(x, "encoding", "numeric");
            cJSON_AddStringToObject(x, "normalize", NORM[e->normalize]);
            cJSON_AddNumberToObject(x, "fill", e->fill);
            if (e->normalize == SC_NORM_STANDARD) {
                cJSON_AddNumberToObject(x, "mean", e->p0);
                cJSON_AddNumberToObject(x, "std", e->p1);
            } else if (e->normalize == SC_NORM_MINMAX) {
                cJSON_AddNumberToObject(x, "min", e->p0);
                cJSON_AddNumberToObject(x, "max", e->p1);
            }
            break;
        }
        case SC_TR_BUCKET:
            cJSON_AddStringToObject(x, "encoding", "bucket");
            cJSON_AddItemToObject(x, "boundaries", cJSON_CreateDoubleArray(e->bounds, e->n_bounds));
            break;
        default: /* SC_TR_MULTI */
            if (e->n_flags) {
                cJSON_DeleteItemFromObject(x, "column");
                cJSON_AddStringToObject(x, "encoding", "flags");
                cJSON *cols = cJSON_AddArrayToObject(x, "columns"), *ids = cJSON_AddArrayToObject(x, "ids");
                for (int i = 0; i < e->n_flags; i++) {
                    cJSON_AddItemToArray(cols, cJSON_CreateString(s->main_cols[e->flag_src[i].col]));
                    cJSON_AddItemToArray(ids, cJSON_CreateNumber(id_of(e, e->flags[i])));
                }
            } else {
                cJSON_AddStringToObject(x, "encoding", "split");
                cJSON_AddStringToObject(x, "separator", e->sep);
                if (e->hash_buckets) cJSON_AddNumberToObject(x, "hash_buckets", (double)e->hash_buckets);
                else *table = vocab_table(e);
            }
        }
        if (e->pattern) cJSON_AddStringToObject(x, "pattern", e->pattern);
    }
    cJSON_AddItemToObject(x, "missing", cJSON_Duplicate(miss, 1));
    *out = x;
    return SC_OK;
}

/* Fill tables[f] of every field joined through join j: key -> encoding,
 * by encoding a row holding only the key, as predict would. */
static int resolve_join(const sc_schema *s, int j, cJSON **tables, const int *join, sc_batch *b, sc_error *err) {
    const sc_jtable *t = &s->joins[j];
    const char *col = s->main_cols[t->on_idx];
    int used = 0;
    for (int f = 0; f < s->n_fields; f++) used |= join[f] == j;
    for (size_t r0 = 0; used && r0 < t->keys.n; r0 += (size_t)b->cap) {
        int n = (int)(t->keys.n - r0 < (size_t)b->cap ? t->keys.n - r0 : (size_t)b->cap);
        int rc = sc_schema_encode(s, n, 1, &col, t->keys.key + r0, b, err);
        if (rc) return rc;
        for (int f = 0; f < s->n_fields; f++)
            if (join[f] == j)
                for (int r = 0; r < n; r++)
                    cJSON_AddItemToObject(tables[f], t->keys.key[r0 + (size_t)r], encoded(&s->infos[f], b, f, r));
    }
    return SC_OK;
}

/* A file name for field f's table: the name with anything but [A-Za-z0-9._-]
 * replaced, made unique among the fields before it. */
static void table_file(const sc_schema *s, int f, char (*names)[80]) {
    char *o = names[f];
    snprintf(o, 64, "%s", s->infos[f].name);
    for (char *p = o; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
              *p == '_') || (p == o && *p == '.'))
            *p = '_';
    for (int g = 0; g < f; g++)
        if (!strcmp(names[g], o)) {
            snprintf(o + strlen(o), 16, "-%d", f);
            break;
        }
}

int sc_onnx_write_inputs(const sc_model_bundle *b, const char *network, const char *onnx_path, const char *manifest,
                         const char *vocab_dir, sc_error *err) {
    const sc_schema *s = b->schema;
    int F = s->n_fields, rc = sc_mkdirs(vocab_dir, err);
    if (rc) return rc;
    cJSON **tables = sc_calloc((size_t)F, sizeof *tables);
    int *join = sc_calloc((size_t)F, sizeof *join);
    char(*files)[80] = sc_calloc((size_t)F, sizeof *files);
    sc_batch batch = {0};
    cJSON *root = cJSON_CreateObject();
    if (!tables || !join || !files || !root) rc = sc_fail(err, SC_ENOMEM, "ONNX export: out of memory");
    if (!rc) rc = sc_batch_alloc(&batch, s->infos, F, 4096, err);
    /* every field's encoding of a row with nothing in it: the value of a missing cell or unknown key */
    if (!rc) rc = sc_schema_encode(s, 1, 0, NULL, NULL, &batch, err);
    cJSON_AddStringToObject(root, "format", "semctr-onnx-inputs");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "model", base_name(onnx_path));
    cJSON_AddStringToObject(root, "network", network);
    cJSON_AddStringToObject(root, "method", b->method);
    cJSON *outs = cJSON_AddArrayToObject(root, "outputs");
    static const char *ON[2] = {"score", "logit"}, *OD[2] = {"click probability, sigmoid(logit)", "logit"};
    for (int k = 0; k < 2; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ON[k]);
        cJSON_AddStringToObject(o, "dtype", "float32");
        cJSON_AddItemToObject(o, "shape", cJSON_CreateStringArray((const char *[]){"N"}, 1));
        cJSON_AddStringToObject(o, "doc", OD[k]);
        cJSON_AddItemToArray(outs, o);
    }
    cJSON *ins = cJSON_AddArrayToObject(root, "inputs");
    for (int f = 0; f < F && !rc; f++) {
        cJSON *miss = encoded(&s->infos[f], &batch, f, 0), *x;
        rc = describe(s, f, miss, &x, &tables[f], &join[f], err);
        cJSON_Delete(miss);
        if (rc) break;
        if (tables[f]) {
            table_file(s, f, files);
            char rel[4300];
            snprintf(rel, sizeof rel, "%s/%s.json", base_name(vocab_dir), files[f]);
            cJSON_AddStringToObject(x, "file", rel);
        }
        cJSON_AddItemToArray(ins, x);
    }
    for (int j = 0; j < s->n_joins && !rc; j++) rc = resolve_join(s, j, tables, join, &batch, err);
    for (int f = 0; f < F && !rc; f++) {
        if (!tables[f]) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.json", vocab_dir, files[f]);
        rc = write_json(path, tables[f], 0, err);
    }
    if (!rc) rc = write_json(manifest, root, 1, err);
    for (int f = 0; tables && f < F; f++) cJSON_Delete(tables[f]);
    cJSON_Delete(root);
    sc_batch_free(&batch);
    sc_free(tables);
    sc_free(join);
    sc_free(files);
    return rc;
}
