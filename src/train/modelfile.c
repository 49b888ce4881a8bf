#include "train/modelfile.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

cJSON *sc_model_config_to_json(const sc_model_config *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "backbone", sc_backbone_name(c->backbone));
    cJSON_AddNumberToObject(j, "embed_dim", c->embed_dim);
    cJSON *h = cJSON_AddArrayToObject(j, "hidden");
    for (int i = 0; i < c->n_hidden; i++) cJSON_AddItemToArray(h, cJSON_CreateNumber(c->hidden[i]));
    cJSON_AddNumberToObject(j, "dropout", c->dropout);
    cJSON_AddNumberToObject(j, "n_cross", c->n_cross);
    cJSON_AddNumberToObject(j, "att_layers", c->att_layers);
    cJSON_AddNumberToObject(j, "att_heads", c->att_heads);
    cJSON_AddNumberToObject(j, "att_dim", c->att_dim);
    cJSON_AddNumberToObject(j, "att_residual", c->att_residual);
    cJSON_AddNumberToObject(j, "att_scaling", c->att_scaling);
    cJSON_AddNumberToObject(j, "extra_dim", c->extra_dim);
    cJSON_AddStringToObject(j, "extra_mode",
                            c->extra_mode == SC_EXTRA_CONCAT ? "concat" : c->extra_mode == SC_EXTRA_FIELDS ? "fields" : "field");
    return j;
}

static int get_int(const cJSON *j, const char *key, int lo, int hi, int *out, sc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return SC_OK; /* keep the default */
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi || v->valuedouble != (int)v->valuedouble)
        return sc_fail(err, SC_EFORMAT, "network config: '%s' must be an integer in [%d, %d]", key, lo, hi);
    *out = (int)v->valuedouble;
    return SC_OK;
}

int sc_model_config_from_json(const cJSON *j, sc_model_config *c, sc_error *err) {
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(j, "backbone");
    sc_backbone kind;
    if (!cJSON_IsString(bb) || sc_backbone_parse(bb->valuestring, &kind))
        return sc_fail(err, SC_EFORMAT, "network config: missing or unknown 'backbone'");
    sc_model_config_default(c, kind);
    int rc = get_int(j, "embed_dim", 1, 4096, &c->embed_dim, err);
    if (!rc) rc = get_int(j, "n_cross", 0, 64, &c->n_cross, err);
    if (!rc) rc = get_int(j, "att_layers", 0, 64, &c->att_layers, err);
    if (!rc) rc = get_int(j, "att_heads", 1, 64, &c->att_heads, err);
    if (!rc) rc = get_int(j, "att_dim", 1, 4096, &c->att_dim, err);
    if (!rc) rc = get_int(j, "att_residual", 0, 1, &c->att_residual, err);
    if (!rc) rc = get_int(j, "att_scaling", 0, 1, &c->att_scaling, err);
    if (!rc) rc = get_int(j, "extra_dim", 0, 1 << 20, &c->extra_dim, err);
    if (rc) return rc;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "hidden");
    if (h) {
        if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) > SC_MAX_LAYERS)
            return sc_fail(err, SC_EFORMAT, "network config: 'hidden' must be a list of at most %d sizes", SC_MAX_LAYERS);
        c->n_hidden = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, h) {
            if (!cJSON_IsNumber(x) || x->valuedouble < 1 || x->valuedouble > 1 << 16)
                return sc_fail(err, SC_EFORMAT, "network config: bad hidden size");
            c->hidden[c->n_hidden++] = (int)x->valuedouble;
        }
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dropout");
    if (d) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble >= 1)
            return sc_fail(err, SC_EFORMAT, "network config: 'dropout' must be in [0, 1)");
        c->dropout = (float)d->valuedouble;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "extra_mode");
    if (m) {
        if (!cJSON_IsString(m) ||
            (strcmp(m->valuestring, "field") && strcmp(m->valuestring, "concat") && strcmp(m->valuestring, "fields")))
            return sc_fail(err, SC_EFORMAT, "network config: 'extra_mode' must be \"field\", \"fields\" or \"concat\"");
        c->extra_mode = !strcmp(m->valuestring, "concat")   ? SC_EXTRA_CONCAT
                        : !strcmp(m->valuestring, "fields") ? SC_EXTRA_FIELDS
                                                            : SC_EXTRA_FIELD;
    }
    return SC_OK;
}

int sc_model_bundle_stage(const sc_model_bundle *b, sc_container_writer *w, cJSON *header,
                          uint8_t **schema_buf, sc_error *err) {
    size_t slen;
    int rc = sc_schema_serialize(b->schema, schema_buf, &slen, err);
    if (rc) return rc;
    rc = sc_container_add(w, "schema", 0, *schema_buf, slen, err);
    if (rc) return rc;
    cJSON_AddStringToObject(header, "format", "semctr-model");
    cJSON_AddStringToObject(header, "method", b->method);
    cJSON *nets = cJSON_AddArrayToObject(header, "networks");
    for (int i = 0; i < b->n_networks; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", b->networks[i].name);
        cJSON_AddItemToObject(o, "config", sc_model_config_to_json(sc_model_get_config(b->networks[i].model)));
        cJSON_AddItemToArray(nets, o);
        int np;
        sc_param *p = sc_model_params(b->networks[i].model, &np);
        for (int k = 0; k < np && !rc; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s/%s", b->networks[i].name, p[k].name);
            rc = sc_container_add(w, name, 1, p[k].data, (uint64_t)p[k].size * sizeof(float), err);
        }
        if (rc) return rc;
    }
    if (b->info) cJSON_AddItemToObject(header, "info", cJSON_Duplicate(b->info, 1));
    return SC_OK;
}

void sc_model_bundle_plain(sc_model_bundle *b, const sc_schema *schema, sc_model *model) {
    b->schema = (sc_schema *)schema;
    snprintf(b->method, sizeof b->method, "plain");
    b->n_networks = 1;
    snprintf(b->networks[0].name, sizeof b->networks[0].name, "main");
    b->networks[0].model = model;
}

int sc_model_bundle_save(const sc_model_bundle *b, const char *path, sc_error *err) {
    sc_container_writer w;
    sc_container_writer_init(&w);
    cJSON *header = cJSON_CreateObject();
    uint8_t *schema_buf = NULL;
    int rc = sc_model_bundle_stage(b, &w, header, &schema_buf, err);
    if (!rc) rc = sc_container_write(&w, path, header, err);
    cJSON_Delete(header);
    sc_free(schema_buf);
    sc_container_writer_free(&w);
    return rc;
}

/* Copy every parameter of model m from entries "<prefix>/<param>". */
static int load_params(sc_model *m, const sc_container *c, const char *prefix, sc_error *err) {
    int np;
    sc_param *p = sc_model_params(m, &np);
    for (int k = 0; k < np; k++) {
        char name[128];
        snprintf(name, sizeof name, "%s/%s", prefix, p[k].name);
        const sc_container_entry *e = sc_container_find(c, name);
        if (!e) return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' is missing", c->path, name);
        if (!e->is_f32 || e->bytes != (uint64_t)p[k].size * sizeof(float))
            return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has %llu bytes, the network config implies %llu",
                           c->path, name, (unsigned long long)e->bytes,
                           (unsigned long long)p[k].size * sizeof(float));
        memcpy(p[k].data, e->data, e->bytes);
    }
    return SC_OK;
}

int sc_model_bundle_load(sc_model_bundle *b, const char *path, int n_threads, sc_error *err) {
    memset(b, 0, sizeof *b);
    int rc = sc_container_open(&b->file, path, err);
    if (rc) return rc;
    b->file_open = 1;
    const cJSON *h = b->file.header;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(h, "format");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(h, "method");
    const cJSON *nets = cJSON_GetObjectItemCaseSensitive(h, "networks");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "semctr-model") || !cJSON_IsString(method) ||
        !cJSON_IsArray(nets) || cJSON_GetArraySize(nets) < 1 || cJSON_GetArraySize(nets) > SC_MAX_NETWORKS) {
        rc = sc_fail(err, SC_EFORMAT, "%s: not a semctr model (header lacks format, method or networks)", path);
        goto fail;
    }
    snprintf(b->method, sizeof b->method, "%s", method->valuestring);
    const sc_container_entry *se = sc_container_find(&b->file, "schema");
    if (!se) {
        rc = sc_fail(err, SC_EFORMAT, "%s: the dataset schema is missing", path);
        goto fail;
    }
    rc = sc_schema_deserialize(&b->schema, se->data, se->bytes, err);
    if (rc) {
        sc_fail_prefix(err, "%s: schema: ", path);
        goto fail;
    }
    int nf;
    const sc_field_info *fields = sc_schema_fields(b->schema, &nf);
    const cJSON *o;
    cJSON_ArrayForEach(o, nets) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *cj = cJSON_GetObjectItemCaseSensitive(o, "config");
        sc_model_config cfg;
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= sizeof b->networks[0].name) {
            rc = sc_fail(err, SC_EFORMAT, "%s: a network has no valid name", path);
            goto fail;
        }
        rc = sc_model_config_from_json(cj, &cfg, err);
        if (rc) {
            sc_fail_prefix(err, "%s: network '%s': ", path, nm->valuestring);
            goto fail;
        }
        cfg.n_threads = n_threads;
        sc_network *net = &b->networks[b->n_networks];
        snprintf(net->name, sizeof net->name, "%s", nm->valuestring);
        rc = sc_model_create(&net->model, &cfg, fields, nf, 0, err);
        if (rc) goto fail;
        b->n_networks++;
        rc = load_params(net->model, &b->file, net->name, err);
        if (rc) goto fail;
    }
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(h, "info");
    if (info) b->info = cJSON_Duplicate(info, 1);
    return SC_OK;
fail:
    sc_model_bundle_free(b);
    return rc;
}

int sc_check_dataset_fields(const sc_schema *schema, const sc_dataset *ds, sc_error *err) {
    int nf;
    const sc_field_info *f = sc_schema_fields(schema, &nf);
    if (nf != ds->n_fields)
        return sc_fail(err, SC_EINVAL, "the dataset has %d fields, the model was trained on %d: prepare it with the model's config",
                       ds->n_fields, nf);
    for (int i = 0; i < nf; i++) {
        const sc_field_info *a = &f[i], *b = &ds->fields[i];
        if (strcmp(a->name, b->name) || a->kind != b->kind || a->width != b->width || a->vocab_size != b->vocab_size)
            return sc_fail(err, SC_EINVAL,
                           "dataset field %d ('%s', %lld ids) differs from the model's ('%s', %lld ids): "
                           "prepare the data with the model's config and vocabularies",
                           i, b->name, (long long)b->vocab_size, a->name, (long long)a->vocab_size);
    }
    return SC_OK;
}

const char *sc_model_bundle_default_network(const sc_model_bundle *b) {
    return b->n_networks == 1 ? b->networks[0].name : "vanilla";
}

sc_model *sc_model_bundle_network(const sc_model_bundle *b, const char *name) {
    for (int i = 0; i < b->n_networks; i++)
        if (!strcmp(b->networks[i].name, name)) return b->networks[i].model;
    return NULL;
}

void sc_model_bundle_free(sc_model_bundle *b) {
    for (int i = 0; i < b->n_networks; i++) sc_model_free(b->networks[i].model);
    if (b->schema) sc_schema_free(b->schema);
    cJSON_Delete(b->info);
    if (b->file_open) sc_container_close(&b->file);
    memset(b, 0, sizeof *b);
}
