/* Training with the embedding tables sharded over ranks; see sharded.h.
 *
 * Three kinds of weights live on each rank:
 *   - the step model (sc_sharded_model_create): the network, with id tables
 *     of a batch's rows; its dense layers (and numeric fields' tables) are
 *     the real, replicated weights, `rep`, stepped by sc_dist_optim_step;
 *   - `shard`: this rank's rows of every sharded parameter (local row j is
 *     id j N + rank), with their own optimizer, `opt_shard`;
 *   - the best epoch's copies of both.
 * A step maps the slice's ids to slots 0..n-1 of the step model's tables
 * (map_ids), fetches the rows (sc_shard_lookup), runs forward and
 * backward, and pushes each slot's gradient to its row's owner. */
#include "train/sharded.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "dist/shard.h"
#include "nn/layers.h"
#include "train/metrics.h"

/* One sharded table: an id field's rows (and those of the fields sharing
 * them). Its parameters travel together: a row is `width` floats, the
 * embedding's columns and then the first-order weight's. */
typedef struct stable {
    int64_t V;      /* rows of the full table */
    int width;
    int n_p;
    int mp[2];      /* the parameters in the step model */
    int sp[2];      /* the same in ctx->shard */
    int64_t cap;    /* rows of the step model's table: distinct ids one batch can have */
    /* this step's distinct ids: slot -> id, and a hash map id -> slot whose
     * entries are live while their stamp is the step's */
    int32_t *uniq;
    int64_t n;
    int64_t hmask;
    int32_t *hkey, *hslot;
    uint32_t *hstamp, stamp;
    float *rows, *grad; /* (cap, width) */
    sc_row_union un;    /* owner side: gradients of this rank's rows, summed over ranks */
} stable;

typedef struct sharded_ctx {
    sc_dist *d;
    int rank, ranks;
    sc_model *model, *best;
    const sc_dataset *valid;
    int batch_size;
    const char *out_path;
    sc_model_bundle bundle; /* wraps best for writing */
    stable *tab;
    int T;
    int F;
    int *field_tab;     /* (F) its index in tab, or -1 (a numeric field: replicated) */
    int32_t **mapped;   /* (F) ids mapped to slots, (batch_size, W); NULL for other fields */
    int32_t **ids_view; /* (F) the ids a step's batch view points at */
    sc_param *rep;      /* the step model's replicated parameters (copied before each step) */
    int *rep_of;        /* (n_rep) their index in the step model */
    int n_rep;
    sc_optim *opt_rep, *opt_shard;
    sc_param *shard; /* (n_shard) this rank's rows of each sharded parameter */
    int *shard_tab;  /* (n_shard) its table */
    int n_shard;
    float *shard_block, *best_block; /* the shard parameters' values, and the best epoch's */
    int64_t shard_floats;
    int64_t *shard_off; /* (n_shard) each one's offset in the blocks */
    float **grad_of;    /* (n_shard) gradient rows handed to the optimizer, (cap, cols) */
    int64_t *grad_cap;
    sc_shard_exchange *x;
    float *logits, *dlogits; /* (batch_size) */
    sc_batch vb;             /* validation batch */
    int64_t *vrows;          /* (batch_size) */
    float *vprob;            /* (valid rows) */
    int *shard_of;           /* (step model params) the index in shard, or -1 */
    struct table_stream *streams; /* rank 0: tables of the file being written, read as it is written */
    int n_streams;
    sc_shard_stream *reading;
} sharded_ctx;

/* ---- the step model ---- */

/* Rows of a step model's table: id 0 (padding, which the network skips) and the distinct ids a batch of B
   rows can use, min(V, 1 + B x the ids per row of the fields reading the table). fields is changed in
   place: an owner field and the fields sharing its table get that size. */
static void cache_sizes(sc_field_info *fields, int F, int B) {
    for (int f = 0; f < F; f++) {
        if (fields[f].kind == SC_FIELD_NUMERIC || fields[f].share_with >= 0) continue;
        int64_t w = 0;
        for (int g = 0; g < F; g++)
            if (g == f || fields[g].share_with == f) w += fields[g].width;
        int64_t cap = (int64_t)B * w + 1 < fields[f].vocab_size ? (int64_t)B * w + 1 : fields[f].vocab_size;
        fields[f].vocab_size = cap > 0 ? cap : 1;
    }
    for (int f = 0; f < F; f++)
        if (fields[f].share_with >= 0) fields[f].vocab_size = fields[fields[f].share_with].vocab_size;
}

int sc_sharded_model_create(sc_model **out, const sc_model_config *cfg, const sc_field_info *fields, int n_fields,
                            int batch_size, uint64_t seed, sc_error *err) {
    *out = NULL;
    if (batch_size < 1) return sc_fail(err, SC_EINVAL, "sharded training: batch size %d", batch_size);
    sc_field_info *fs = sc_malloc((size_t)(n_fields > 0 ? n_fields : 1) * sizeof *fs);
    if (!fs) return sc_fail(err, SC_ENOMEM, "out of memory");
    memcpy(fs, fields, (size_t)n_fields * sizeof *fs);
    cache_sizes(fs, n_fields, batch_size);
    int rc = sc_model_create(out, cfg, fs, n_fields, seed, err);
    sc_free(fs);
    return rc;
}

/* ---- a step ---- */

static uint32_t hash_id(int32_t id) { return (uint32_t)id * 2654435761u; }

/* Map the batch's ids of every sharded table to slots 1..n-1 (first use first; id 0, padding, stays 0,
   the network skips it) and point v at b with the mapped ids. */
static int map_ids(sharded_ctx *c, const sc_batch *b, sc_batch *v, sc_error *err) {
    for (int t = 0; t < c->T; t++) {
        stable *s = &c->tab[t];
        s->uniq[0] = 0;
        s->n = 1;
        if (++s->stamp == 0) { /* the stamps wrapped: clear them */
            memset(s->hstamp, 0, (size_t)(s->hmask + 1) * sizeof *s->hstamp);
            s->stamp = 1;
        }
    }
    *v = *b;
    v->ids = c->ids_view;
    for (int f = 0; f < c->F; f++) {
        c->ids_view[f] = b->ids[f];
        int t = c->field_tab[f];
        if (t < 0 || !b->ids[f]) continue;
        stable *s = &c->tab[t];
        int64_t m = (int64_t)b->n * c->valid->fields[f].width; /* the splits' fields are the same */
        for (int64_t j = 0; j < m; j++) {
            int32_t id = b->ids[f][j];
            if (id == 0) {
                c->mapped[f][j] = 0;
                continue;
            }
            int64_t h = hash_id(id) & s->hmask;
            while (s->hstamp[h] == s->stamp && s->hkey[h] != id) h = (h + 1) & s->hmask;
            if (s->hstamp[h] != s->stamp) {
                if (s->n == s->cap)
                    return sc_fail(err, SC_EINTERNAL, "sharded table %d: more than %lld distinct ids in a batch", t,
                                   (long long)s->cap);
                s->hstamp[h] = s->stamp;
                s->hkey[h] = id;
                s->hslot[h] = (int32_t)s->n;
                s->uniq[s->n++] = id;
            }
            c->mapped[f][j] = s->hslot[h];
        }
        c->ids_view[f] = c->mapped[f];
    }
    return SC_OK;
}

static void read_rows(void *vc, int t, const int32_t *rows, int64_t n, float *out) {
    sharded_ctx *c = vc;
    const stable *s = &c->tab[t];
    for (int64_t j = 0; j < n; j++) {
        float *o = out + j * s->width;
        for (int i = 0; i < s->n_p; i++) {
            const sc_param *p = &c->shard[s->sp[i]];
            memcpy(o, p->data + (int64_t)rows[j] * p->cols, sizeof(float) * (size_t)p->cols);
            o += p->cols;
        }
    }
}

/* The rows batch b uses, into the step model's tables; v: b with its ids mapped to those rows. */
static int fetch_rows(sharded_ctx *c, const sc_batch *b, sc_batch *v, sc_error *err) {
    int rc = map_ids(c, b, v, err);
    if (rc) return rc;
    const int32_t *ids[c->T > 0 ? c->T : 1];
    int64_t n[c->T > 0 ? c->T : 1];
    float *rows[c->T > 0 ? c->T : 1];
    for (int t = 0; t < c->T; t++) { /* slot 0, padding, is never read: not fetched */
        ids[t] = c->tab[t].uniq + 1;
        n[t] = c->tab[t].n - 1;
        rows[t] = c->tab[t].rows + c->tab[t].width;
    }
    rc = sc_shard_lookup(c->x, ids, n, rows, read_rows, c, err);
    if (rc) return rc;
    int np;
    sc_param *mp = sc_model_params(c->model, &np);
    for (int t = 0; t < c->T; t++) {
        const stable *s = &c->tab[t];
        int off = 0;
        for (int i = 0; i < s->n_p; i++) {
            sc_param *p = &mp[s->mp[i]];
            for (int64_t j = 1; j < s->n; j++)
                memcpy(p->data + j * p->cols, s->rows + j * s->width + off, sizeof(float) * (size_t)p->cols);
            off += p->cols;
        }
    }
    return SC_OK;
}

static int add_grads(void *vc, int t, const int32_t *rows, const float *grad, int64_t n, sc_error *err) {
    sharded_ctx *c = vc;
    return sc_row_union_add(&c->tab[t].un, rows, grad, n, err);
}

/* The step model's table gradients (times this rank's share of the batch) to the rows' owners; then each
   shard parameter's grad / touched hold the summed gradients of its rows that the batch used. */
static int push_grads(sharded_ctx *c, sc_error *err) {
    int np;
    sc_param *mp = sc_model_params(c->model, &np);
    float share = sc_dist_share(c->d);
    const float *grad[c->T > 0 ? c->T : 1];
    for (int t = 0; t < c->T; t++) {
        stable *s = &c->tab[t];
        memset(s->grad, 0, sizeof(float) * (size_t)(s->n * s->width));
        int off = 0;
        for (int i = 0; i < s->n_p; i++) {
            const sc_param *p = &mp[s->mp[i]];
            for (int64_t k = 0; p->grad && k < p->n_touched; k++) {
                float *g = s->grad + (int64_t)p->touched[k] * s->width + off;
                const float *src = p->grad + k * p->cols;
                for (int j = 0; j < p->cols; j++) g[j] = src[j] * share;
            }
            off += p->cols;
        }
        grad[t] = s->grad + s->width; /* the rows fetched: slot 0 is padding */
        sc_row_union_begin(&s->un);
    }
    int rc = sc_shard_push_grads(c->x, grad, add_grads, c, err);
    if (rc) return rc;
    for (int t = 0; t < c->T; t++) {
        const stable *s = &c->tab[t];
        int off = 0;
        for (int i = 0; i < s->n_p; i++) {
            int k = s->sp[i];
            sc_param *p = &c->shard[k];
            if (s->un.n > c->grad_cap[k]) {
                float *g = sc_realloc(c->grad_of[k], (size_t)s->un.n * (size_t)p->cols * sizeof *g);
                if (!g) return sc_fail(err, SC_ENOMEM, "out of memory for embedding gradients");
                c->grad_of[k] = g;
                c->grad_cap[k] = s->un.n;
            }
            for (int64_t j = 0; j < s->un.n; j++)
                memcpy(c->grad_of[k] + j * p->cols, s->un.grad + j * s->width + off, sizeof(float) * (size_t)p->cols);
            p->grad = c->grad_of[k];
            p->touched = s->un.ids;
            p->n_touched = s->un.n;
            off += p->cols;
        }
    }
    return SC_OK;
}

/* the step model's replicated parameters as its last backward left them */
static void refresh_rep(sharded_ctx *c) {
    int np;
    sc_param *mp = sc_model_params(c->model, &np);
    for (int i = 0; i < c->n_rep; i++) c->rep[i] = mp[c->rep_of[i]];
}

static int sharded_step(void *vc, const sc_batch *b, const int64_t *rows, float lr, double *loss, sc_error *err) {
    (void)rows;
    sharded_ctx *c = vc;
    sc_batch v;
    int rc = fetch_rows(c, b, &v, err);
    if (!rc) rc = sc_model_forward(c->model, &v, 1, c->logits, err);
    if (rc) return rc;
    *loss = sc_bce_logits_forward(c->logits, v.label, v.n);
    sc_bce_logits_backward(c->dlogits, c->logits, v.label, v.n, 1.0f);
    rc = sc_model_backward(c->model, &v, c->dlogits, NULL, NULL, err);
    if (!rc) rc = push_grads(c, err);
    if (!rc) rc = sc_optim_step(c->opt_shard, lr, err);
    if (rc) return rc;
    refresh_rep(c);
    return sc_dist_optim_step(c->d, c->opt_rep, c->rep, c->n_rep, lr, err);
}

/* ---- validation: every rank scores its slice of each batch, rank 0 computes the metrics ---- */

static int sharded_validate(void *vc, sc_metrics *m, sc_error *err) {
    sharded_ctx *c = vc;
    const sc_dataset *ds = c->valid;
    int rc = SC_OK;
    for (int64_t start = 0; start < ds->n_rows && !rc; start += c->batch_size) {
        int64_t n = ds->n_rows - start < c->batch_size ? ds->n_rows - start : c->batch_size, lo, hi;
        sc_dist_slice(c->d, n, &lo, &hi);
        for (int64_t i = lo; i < hi; i++) c->vrows[i - lo] = start + i;
        sc_batch_gather(&c->vb, ds, c->vrows, (int)(hi - lo));
        sc_batch v;
        rc = fetch_rows(c, &c->vb, &v, err);
        if (!rc) rc = sc_model_forward(c->model, &v, 0, c->vprob + start + lo, err);
        if (!rc) sc_sigmoid_forward(c->vprob + start + lo, c->vprob + start + lo, hi - lo);
        if (!rc) rc = sc_dist_gather_slices(c->d, c->vprob + start, n, 1, err);
    }
    if (!rc && c->rank == 0) rc = sc_metrics_compute(ds->label, c->vprob, ds->group, ds->n_rows, m, err);
    return rc;
}

/* ---- files: whole tables streamed to rank 0 as it writes them, in the layout of sc_train's ---- */

typedef struct table_stream {
    sharded_ctx *c;
    sc_shard_stream *s;
} table_stream;

static void close_streams(sharded_ctx *c) {
    for (int i = 0; i < c->n_streams; i++) sc_shard_stream_close(c->streams[i].s);
    c->n_streams = 0;
    c->reading = NULL;
}

/* the file writer's source for a table's entry; a table read to its end gives its piece buffers back when
   the writer moves on to the next one */
static int stream_next(void *ctx, const void **data, uint64_t *bytes, sc_error *err) {
    table_stream *ts = ctx;
    sharded_ctx *c = ts->c;
    if (c->reading && c->reading != ts->s && sc_shard_stream_done(c->reading)) sc_shard_stream_release(c->reading);
    c->reading = ts->s;
    return sc_shard_stream_next(ts->s, data, bytes, err);
}

/* The whole table (V, cols) of every rank's local rows as entry `name` of rank 0's file: rank 0 makes the
   entry (or turns the one staged with the step model's rows into it) a stream read while the file is
   written; the other ranks send their rows piece by piece as rank 0's writer asks, and return when all is
   sent. Calls must come in the order of the entries in the file. */
static int stream_table(sharded_ctx *c, sc_container_writer *w, const char *name, const float *local, int64_t V,
                        int cols, sc_error *err) {
    if (c->rank != 0) return sc_shard_stream_send(c->d, local, V, cols, err);
    table_stream *ts = &c->streams[c->n_streams];
    int rc = sc_shard_stream_open(&ts->s, c->d, local, V, cols, err);
    if (rc) return rc;
    ts->c = c;
    c->n_streams++;
    uint64_t bytes = (uint64_t)V * (uint64_t)cols * sizeof(float);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name)) {
            w->entries[i].data = NULL;
            w->entries[i].bytes = bytes;
            w->entries[i].next = stream_next;
            w->entries[i].next_ctx = ts;
            return SC_OK;
        }
    return sc_container_add_stream(w, name, 1, bytes, stream_next, ts, err);
}

static int sharded_save_best(void *vc, sc_error *err) {
    sharded_ctx *c = vc;
    close_streams(c); /* the last checkpoint's: that file is written */
    int rc = sc_model_copy_weights(c->best, c->model, err);
    if (rc) return rc;
    memcpy(c->best_block, c->shard_block, sizeof(float) * (size_t)c->shard_floats);
    sc_container_writer w;
    sc_container_writer_init(&w);
    cJSON *header = c->rank == 0 ? cJSON_CreateObject() : NULL;
    uint8_t *schema_buf = NULL;
    if (c->rank == 0) rc = sc_model_bundle_stage(&c->bundle, &w, header, &schema_buf, err);
    rc = sc_dist_agree(c->d, rc, err);
    /* in the file's order: the step model's parameters' */
    int np;
    sc_model_params(c->model, &np);
    for (int mp = 0; mp < np && !rc; mp++) {
        int k = c->shard_of[mp];
        if (k < 0) continue;
        char name[128];
        snprintf(name, sizeof name, "main/%s", c->shard[k].name);
        rc = stream_table(c, &w, name, c->best_block + c->shard_off[k], c->tab[c->shard_tab[k]].V, c->shard[k].cols,
                          err);
    }
    if (!rc && c->rank == 0) rc = sc_container_write(&w, c->out_path, header, err);
    close_streams(c);
    cJSON_Delete(header);
    sc_free(schema_buf);
    sc_container_writer_free(&w);
    return rc;
}

/* Rank 0 checks that c holds "<prefix>/<name>" of floats floats. */
static int check_entry(const sc_container *ct, const char *prefix, const char *name, int64_t floats, sc_error *err) {
    char full[160];
    snprintf(full, sizeof full, "%s/%s", prefix, name);
    const sc_container_entry *e = sc_container_find(ct, full);
    if (!e || !e->is_f32 || e->bytes != (uint64_t)floats * sizeof(float))
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' missing or of the wrong size for this model", ct->path, full);
    return SC_OK;
}

static const float *entry_data(const sc_container *ct, const char *prefix, const char *name) {
    char full[160];
    snprintf(full, sizeof full, "%s/%s", prefix, name);
    const sc_container_entry *e = sc_container_find(ct, full);
    return e ? e->data : NULL;
}

/* From a model file or checkpoint open on rank 0 (ct; NULL elsewhere): the replicated parameters into rep
   (rank 0; the caller broadcasts them) and each sharded table's rows into every rank's block (values laid out
   as shard_block). */
static int load_tables(sharded_ctx *c, const sc_container *ct, sc_param *rep, float *block, sc_error *err) {
    int rc = SC_OK;
    if (c->rank == 0) {
        for (int i = 0; i < c->n_rep && !rc; i++) rc = check_entry(ct, "main", rep[i].name, rep[i].size, err);
        for (int k = 0; k < c->n_shard && !rc; k++)
            rc = check_entry(ct, "main", c->shard[k].name, c->tab[c->shard_tab[k]].V * c->shard[k].cols, err);
        for (int i = 0; i < c->n_rep && !rc; i++)
            memcpy(rep[i].data, entry_data(ct, "main", rep[i].name), sizeof(float) * (size_t)rep[i].size);
    }
    rc = sc_dist_agree(c->d, rc, err);
    for (int k = 0; k < c->n_shard && !rc; k++) {
        const sc_param *p = &c->shard[k];
        rc = sc_shard_scatter(c->d, c->rank == 0 ? entry_data(ct, "main", p->name) : NULL, c->tab[c->shard_tab[k]].V,
                              p->cols, block + c->shard_off[k], err);
    }
    return rc;
}

static int sharded_restore_best(void *vc, int from_file, sc_error *err) {
    sharded_ctx *c = vc;
    int rc = SC_OK;
    if (from_file) {
        sc_container ct;
        int opened = 0;
        if (c->rank == 0) {
            rc = sc_container_open(&ct, c->out_path, err);
            opened = !rc;
            if (rc) sc_fail_prefix(err, "reloading the best model: ");
        }
        rc = sc_dist_agree(c->d, rc, err);
        if (!rc) {
            /* the best weights: rank 0's replicated ones (sc_fit broadcasts them after), every rank's rows */
            int np;
            sc_param *bp = sc_model_params(c->best, &np);
            sc_param *rep = sc_malloc((size_t)(c->n_rep > 0 ? c->n_rep : 1) * sizeof *rep);
            if (!rep) rc = sc_fail(err, SC_ENOMEM, "out of memory");
            for (int i = 0; !rc && i < c->n_rep; i++) rep[i] = bp[c->rep_of[i]];
            if (!rc) rc = load_tables(c, opened ? &ct : NULL, rep, c->best_block, err);
            sc_free(rep);
        }
        if (opened) sc_container_close(&ct);
        if (rc) return rc;
    }
    rc = sc_model_copy_weights(c->model, c->best, err);
    if (!rc) memcpy(c->shard_block, c->best_block, sizeof(float) * (size_t)c->shard_floats);
    return rc;
}

/* ---- checkpoints: the layout of sc_train's ("main/<param>", "main.optim/<state>"), whole tables ---- */

/* opt_shard's state i: its name, this rank's rows of it (data), and its parameter's rows in the full table
   and columns (states come parameter by parameter, each of its parameter's shape) */
static float *shard_state(sharded_ctx *c, int i, const char **name, int64_t *V, int *cols) {
    float *data;
    int64_t size;
    sc_optim_state(c->opt_shard, i, name, &data, &size);
    int k = i / (sc_optim_n_states(c->opt_shard) / (c->n_shard > 0 ? c->n_shard : 1));
    *V = c->tab[c->shard_tab[k]].V;
    *cols = c->shard[k].cols;
    return data;
}

static int sharded_stage_checkpoint(void *vc, sc_container_writer *w, cJSON *header, sc_error *err) {
    sharded_ctx *c = vc;
    close_streams(c);
    int rc = SC_OK;
    if (c->rank == 0) {
        cJSON_AddNumberToObject(header, "optim_steps", (double)sc_optim_get_step(c->opt_rep));
        refresh_rep(c);
        rc = sc_checkpoint_stage(w, "main", c->rep, c->n_rep, c->opt_rep, err);
    }
    rc = sc_dist_agree(c->d, rc, err);
    for (int k = 0; k < c->n_shard && !rc; k++) {
        char name[128];
        snprintf(name, sizeof name, "main/%s", c->shard[k].name);
        rc = stream_table(c, w, name, c->shard[k].data, c->tab[c->shard_tab[k]].V, c->shard[k].cols, err);
    }
    for (int i = 0; i < sc_optim_n_states(c->opt_shard) && !rc; i++) {
        const char *sname;
        int64_t V;
        int cols;
        float *data = shard_state(c, i, &sname, &V, &cols);
        char name[160];
        snprintf(name, sizeof name, "main.optim/%s", sname);
        rc = stream_table(c, w, name, data, V, cols, err);
    }
    return rc; /* rank 0's streams are read when sc_fit writes the file (closed at the next stage or the end) */
}

static int sharded_load_checkpoint(void *vc, const sc_container *ct, sc_error *err) {
    sharded_ctx *c = vc;
    int rc = SC_OK;
    refresh_rep(c);
    if (c->rank == 0) {
        rc = sc_checkpoint_load(ct, "main", c->rep, c->n_rep, c->opt_rep, err); /* names and sizes checked */
        for (int i = 0; i < sc_optim_n_states(c->opt_shard) && !rc; i++) {
            const char *sname;
            int64_t V;
            int cols;
            shard_state(c, i, &sname, &V, &cols);
            rc = check_entry(ct, "main.optim", sname, V * cols, err);
        }
    }
    if (!rc) rc = load_tables(c, ct, c->rep, c->shard_block, err);
    else rc = sc_dist_agree(c->d, rc, err); /* the others wait in load_tables' agreement */
    for (int i = 0; i < sc_optim_n_states(c->opt_shard) && !rc; i++) {
        const char *sname;
        int64_t V;
        int cols;
        float *data = shard_state(c, i, &sname, &V, &cols);
        rc = sc_shard_scatter(c->d, c->rank == 0 ? entry_data(ct, "main.optim", sname) : NULL, V, cols, data, err);
    }
    int64_t step = 0;
    if (!rc && c->rank == 0) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(ct->header, "optim_steps");
        step = cJSON_IsNumber(s) ? (int64_t)s->valuedouble : 0;
    }
    if (!rc) rc = sc_dist_bcast(c->d, &step, sizeof step, err);
    if (!rc) {
        sc_optim_set_step(c->opt_rep, step);
        sc_optim_set_step(c->opt_shard, step);
    }
    return rc;
}

/* ---- setup ---- */

/* This rank's rows of shard parameter k, drawn as sc_model_create draws embeddings (N(0, 1e-4)), each row
   from its own seed so that no rank draws rows it does not own. */
static void init_shard_rows(sharded_ctx *c, int k, int model_param, uint64_t seed) {
    sc_param *p = &c->shard[k];
    int64_t L = sc_shard_local_rows(c->tab[c->shard_tab[k]].V, c->rank, c->ranks);
    for (int64_t j = 0; j < L; j++) {
        uint64_t id = (uint64_t)(j * c->ranks + c->rank);
        sc_rng r;
        sc_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(model_param + 1)) ^ (id * 0xd1b54a32d192ed03ULL));
        for (int col = 0; col < p->cols; col++) p->data[j * p->cols + col] = 1e-4f * sc_rng_normal(&r);
    }
}

static int setup(sharded_ctx *c, const sc_train_config *cfg, const sc_dataset *train, sc_error *err) {
    int np;
    sc_param *mp = sc_model_params(c->model, &np);
    int nt = sc_model_n_tables(c->model);
    c->F = train->n_fields;
    c->tab = sc_calloc((size_t)(nt > 0 ? nt : 1), sizeof *c->tab);
    c->field_tab = sc_malloc((size_t)c->F * sizeof *c->field_tab);
    c->mapped = sc_calloc((size_t)c->F, sizeof *c->mapped);
    c->ids_view = sc_calloc((size_t)c->F, sizeof *c->ids_view);
    c->rep = sc_calloc((size_t)np, sizeof *c->rep);
    c->rep_of = sc_calloc((size_t)np, sizeof *c->rep_of);
    c->shard = sc_calloc((size_t)(2 * nt > 0 ? 2 * nt : 1), sizeof *c->shard);
    c->shard_tab = sc_calloc((size_t)(2 * nt > 0 ? 2 * nt : 1), sizeof *c->shard_tab);
    c->shard_off = sc_calloc((size_t)(2 * nt > 0 ? 2 * nt : 1), sizeof *c->shard_off);
    c->grad_of = sc_calloc((size_t)(2 * nt > 0 ? 2 * nt : 1), sizeof *c->grad_of);
    c->grad_cap = sc_calloc((size_t)(2 * nt > 0 ? 2 * nt : 1), sizeof *c->grad_cap);
    /* a checkpoint holds per parameter its values and at most two optimizer states (Adam) */
    c->streams = sc_calloc((size_t)(6 * nt > 0 ? 6 * nt : 1), sizeof *c->streams);
    c->shard_of = sc_malloc((size_t)np * sizeof *c->shard_of);
    if (!c->tab || !c->field_tab || !c->mapped || !c->ids_view || !c->rep || !c->rep_of || !c->shard ||
        !c->shard_tab || !c->shard_off || !c->grad_of || !c->grad_cap || !c->streams || !c->shard_of)
        return sc_fail(err, SC_ENOMEM, "out of memory");

    /* which tables are sharded (every id table), their parameters, this rank's rows of them */
    for (int k = 0; k < np; k++) c->shard_of[k] = -1;
    int64_t *V = sc_malloc((size_t)(nt > 0 ? nt : 1) * sizeof *V);
    int *width = sc_malloc((size_t)(nt > 0 ? nt : 1) * sizeof *width);
    int *tab_of = sc_malloc((size_t)(nt > 0 ? nt : 1) * sizeof *tab_of);
    if (!V || !width || !tab_of) {
        sc_free(V);
        sc_free(width);
        sc_free(tab_of);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    int rc = SC_OK;
    for (int mt = 0; mt < nt; mt++) {
        sc_model_table info;
        sc_model_get_table(c->model, mt, &info);
        tab_of[mt] = -1;
        if (info.numeric || (info.p_emb < 0 && info.p_lin < 0)) continue;
        stable *s = &c->tab[c->T];
        s->V = train->fields[info.owner].vocab_size;
        s->cap = info.rows;
        int pi[2] = {info.p_emb, info.p_lin};
        for (int i = 0; i < 2; i++) {
            if (pi[i] < 0) continue;
            sc_param *sp = &c->shard[c->n_shard];
            const sc_param *m = &mp[pi[i]];
            snprintf(sp->name, sizeof sp->name, "%s", m->name);
            sp->cols = m->cols;
            sp->rows = sc_shard_local_rows(s->V, c->rank, c->ranks);
            sp->sparse = 1;
            sp->weight_decay = m->weight_decay;
            c->shard_tab[c->n_shard] = c->T;
            c->shard_of[pi[i]] = c->n_shard;
            s->mp[s->n_p] = pi[i];
            s->sp[s->n_p++] = c->n_shard++;
            s->width += m->cols;
        }
        V[c->T] = s->V;
        width[c->T] = s->width;
        tab_of[mt] = c->T++;
    }
    for (int f = 0; f < c->F; f++) c->field_tab[f] = tab_of[sc_model_field_table(c->model, f)];
    for (int k = 0; k < np; k++)
        if (c->shard_of[k] < 0) c->rep_of[c->n_rep++] = k;
    sc_free(tab_of);
    rc = sc_shard_exchange_create(&c->x, c->d, c->T, V, width, err);
    sc_free(V);
    sc_free(width);
    if (rc) return rc;

    /* this rank's rows: one block (at least one row per parameter, so that every buffer exists) */
    for (int k = 0; k < c->n_shard; k++) {
        c->shard_off[k] = c->shard_floats;
        int64_t rows = c->shard[k].rows > 0 ? c->shard[k].rows : 1;
        c->shard[k].rows = rows;
        c->shard[k].size = rows * c->shard[k].cols;
        c->shard_floats += c->shard[k].size;
    }
    c->shard_block = sc_malloc((size_t)(c->shard_floats > 0 ? c->shard_floats : 1) * sizeof(float));
    c->best_block = sc_malloc((size_t)(c->shard_floats > 0 ? c->shard_floats : 1) * sizeof(float));
    if (!c->shard_block || !c->best_block)
        return sc_fail(err, SC_ENOMEM, "out of memory for this rank's %lld embedding values",
                       (long long)c->shard_floats);
    for (int t = 0; t < c->T; t++)
        for (int i = 0; i < c->tab[t].n_p; i++) {
            int k = c->tab[t].sp[i];
            c->shard[k].data = c->shard_block + c->shard_off[k];
            init_shard_rows(c, k, c->tab[t].mp[i], cfg->seed);
        }
    memcpy(c->best_block, c->shard_block, sizeof(float) * (size_t)c->shard_floats);

    /* per table: the step's id map, rows and gradients, and the owner's union of gradient rows */
    for (int t = 0; t < c->T && !rc; t++) {
        stable *s = &c->tab[t];
        int64_t h = 16;
        while (h < 2 * s->cap) h *= 2;
        s->hmask = h - 1;
        s->hkey = sc_malloc((size_t)h * sizeof *s->hkey);
        s->hslot = sc_malloc((size_t)h * sizeof *s->hslot);
        s->hstamp = sc_calloc((size_t)h, sizeof *s->hstamp);
        s->uniq = sc_malloc((size_t)s->cap * sizeof *s->uniq);
        s->rows = sc_malloc((size_t)(s->cap * s->width) * sizeof *s->rows);
        s->grad = sc_malloc((size_t)(s->cap * s->width) * sizeof *s->grad);
        if (!s->hkey || !s->hslot || !s->hstamp || !s->uniq || !s->rows || !s->grad)
            rc = sc_fail(err, SC_ENOMEM, "out of memory");
        else rc = sc_row_union_init(&s->un, c->shard[s->sp[0]].rows, s->width, err);
    }
    for (int f = 0; f < c->F && !rc; f++) {
        if (c->field_tab[f] < 0 || train->fields[f].kind == SC_FIELD_NUMERIC) continue;
        c->mapped[f] = sc_malloc((size_t)cfg->batch_size * (size_t)train->fields[f].width * sizeof **c->mapped);
        if (!c->mapped[f]) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (rc) return rc;

    refresh_rep(c);
    rc = sc_train_optim_create(&c->opt_rep, cfg, c->rep, c->n_rep, err);
    if (!rc) rc = sc_train_optim_create(&c->opt_shard, cfg, c->shard, c->n_shard, err);
    return rc;
}

static void teardown(sharded_ctx *c) {
    for (int t = 0; t < c->T; t++) {
        stable *s = &c->tab[t];
        sc_free(s->hkey);
        sc_free(s->hslot);
        sc_free(s->hstamp);
        sc_free(s->uniq);
        sc_free(s->rows);
        sc_free(s->grad);
        sc_row_union_free(&s->un);
    }
    for (int f = 0; c->mapped && f < c->F; f++) sc_free(c->mapped[f]);
    for (int k = 0; c->grad_of && k < c->n_shard; k++) sc_free(c->grad_of[k]);
    if (c->streams) close_streams(c);
    sc_free(c->tab);
    sc_free(c->field_tab);
    sc_free(c->mapped);
    sc_free(c->ids_view);
    sc_free(c->rep);
    sc_free(c->rep_of);
    sc_free(c->shard);
    sc_free(c->shard_tab);
    sc_free(c->shard_off);
    sc_free(c->grad_of);
    sc_free(c->grad_cap);
    sc_free(c->streams);
    sc_free(c->shard_of);
    sc_free(c->shard_block);
    sc_free(c->best_block);
    sc_free(c->logits);
    sc_free(c->dlogits);
    sc_free(c->vrows);
    sc_free(c->vprob);
    sc_batch_free(&c->vb);
    sc_shard_exchange_free(c->x);
    if (c->opt_rep) sc_optim_free(c->opt_rep);
    if (c->opt_shard) sc_optim_free(c->opt_shard);
    if (c->best) sc_model_free(c->best);
}

int sc_train_sharded(sc_model *model, const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                     const sc_train_config *cfg, const char *out_path, sc_train_result *res, sc_error *err) {
    if (valid->n_rows == 0) return sc_fail(err, SC_EINVAL, "the validation split is empty");
    sharded_ctx c = {.d = cfg->dist, .rank = sc_dist_rank(cfg->dist), .ranks = sc_dist_size(cfg->dist),
                     .model = model, .valid = valid, .batch_size = cfg->batch_size,
                     .out_path = out_path};
    int rc = setup(&c, cfg, train, err);
    if (!rc)
        rc = sc_sharded_model_create(&c.best, sc_model_get_config(model), train->fields, train->n_fields,
                                     cfg->batch_size, cfg->seed, err);
    if (!rc) rc = sc_batch_alloc(&c.vb, valid->fields, valid->n_fields, cfg->batch_size, err);
    if (!rc) {
        c.logits = sc_malloc((size_t)cfg->batch_size * sizeof(float));
        c.dlogits = sc_malloc((size_t)cfg->batch_size * sizeof(float));
        c.vrows = sc_malloc((size_t)cfg->batch_size * sizeof *c.vrows);
        c.vprob = sc_malloc((size_t)valid->n_rows * sizeof *c.vprob);
        if (!c.logits || !c.dlogits || !c.vrows || !c.vprob) rc = sc_fail(err, SC_ENOMEM, "out of memory");
    }
    if (!rc) {
        int64_t rows = 0, mine = 0;
        for (int t = 0; t < c.T; t++) {
            rows += c.tab[t].V;
            mine += sc_shard_local_rows(c.tab[t].V, c.rank, c.ranks);
        }
        sc_info("%d embedding tables sharded over %d rank%s: %lld rows, %lld on rank 0", c.T, c.ranks,
                c.ranks > 1 ? "s" : "", (long long)rows, (long long)mine);
        sc_model_bundle_plain(&c.bundle, schema, c.best);
        sc_fit_task t = {&c, sharded_step, sharded_validate, sharded_save_best, sharded_restore_best,
                         sharded_stage_checkpoint, sharded_load_checkpoint, c.rep, c.n_rep, c.opt_rep, 1};
        rc = sc_fit(train, cfg, &t, res, err);
    }
    teardown(&c);
    return rc;
}
