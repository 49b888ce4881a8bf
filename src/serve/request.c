/* Request bodies -> cell grids; predictions -> JSON. See request.h. */
#include "serve/request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "serve/scorer.h"

static const char *const KIND_NAMES[SC_REQ_KIND_COUNT] = {
    "none", "bad_json", "bad_shape", "bad_type", "unknown_field", "empty", "too_many_instances", "no_memory",
};

const char *sc_req_error_name(sc_req_error k) {
    return k >= 0 && k < SC_REQ_KIND_COUNT ? KIND_NAMES[k] : "unknown";
}

static const char *type_name(const cJSON *v) {
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

typedef struct parse_state {
    const char *const *known;
    int n_known;
    const sc_request_limits *lim;
    sc_request *req;
    int fill;        /* 0: validate and count numbers, 1: write cells */
    size_t n_numbers;
    sc_req_error *kind;
    sc_error *err;
} parse_state;

static int refuse(parse_state *ps, sc_req_error k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(parse_state *ps, sc_req_error k, const char *fmt, ...) {
    *ps->kind = k;
    if (ps->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
        va_end(ap);
        ps->err->code = k == SC_REQ_NO_MEMORY ? SC_ENOMEM : SC_EINVAL;
    }
    return k == SC_REQ_NO_MEMORY ? SC_ENOMEM : SC_EINVAL;
}

/* Column index of name, or -1. hint: the index to try first. */
static int find_col(const parse_state *ps, const char *name, int hint) {
    if (hint >= 0 && hint < ps->n_known && !strcmp(ps->known[hint], name)) return hint;
    for (int c = 0; c < ps->n_known; c++)
        if (!strcmp(ps->known[c], name)) return c;
    return -1;
}

static int known_list(const parse_state *ps, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int c = 0; c < ps->n_known; c++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", c ? ", " : "", ps->known[c]);
    }
    return 0;
}

/* One value v for row r, column c; where names it for messages. */
static int put_value(parse_state *ps, const cJSON *v, int r, int c, const char *where_a, const char *where_b) {
    sc_request *q = ps->req;
    if (cJSON_IsNull(v)) return SC_OK;
    if (cJSON_IsString(v)) {
        if (ps->fill) q->cells[(size_t)r * q->n_cols + c] = v->valuestring;
        return SC_OK;
    }
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble))
            return refuse(ps, SC_REQ_BAD_TYPE, "%s%s: the number is out of range", where_a, where_b);
        if (ps->fill) {
            char *buf = q->numbers + ps->n_numbers * 32;
            q->cells[(size_t)r * q->n_cols + c] = sc_format_number(v->valuedouble, buf);
        }
        ps->n_numbers++;
        return SC_OK;
    }
    return refuse(ps, SC_REQ_BAD_TYPE, "%s%s: expected a string, a number or null, got %s", where_a, where_b,
                  type_name(v));
}

static int walk_instances(parse_state *ps, const cJSON *inst) {
    int r = 0;
    const cJSON *row;
    char where[160];
    cJSON_ArrayForEach(row, inst) {
        if (!cJSON_IsObject(row))
            return refuse(ps, SC_REQ_BAD_SHAPE, "instances[%d]: expected an object of column: value, got %s", r,
                          type_name(row));
        const cJSON *v;
        int j = 0;
        cJSON_ArrayForEach(v, row) {
            int c = find_col(ps, v->string, j);
            j++;
            if (c < 0) {
                if (ps->lim->ignore_unknown) continue;
                char list[1024];
                known_list(ps, list, sizeof list);
                return refuse(ps, SC_REQ_UNKNOWN_FIELD,
                              "instances[%d].%.100s: the model reads no such column (it reads: %s)", r, v->string, list);
            }
            if (!ps->fill) {
                /* duplicate keys: cJSON keeps both; refuse rather than pick one */
                const cJSON *w;
                for (w = row->child; w != v; w = w->next)
                    if (!strcmp(w->string, v->string))
                        return refuse(ps, SC_REQ_BAD_SHAPE, "instances[%d].%.100s: the column appears twice", r,
                                      v->string);
            }
            snprintf(where, sizeof where, "instances[%d].%.100s", r, v->string);
            int rc = put_value(ps, v, r, c, where, "");
            if (rc) return rc;
        }
        r++;
    }
    return SC_OK;
}

static int walk_inputs(parse_state *ps, const cJSON *inputs, int n_rows) {
    const cJSON *col;
    char where[160];
    int j = 0;
    cJSON_ArrayForEach(col, inputs) {
        int c = find_col(ps, col->string, j++);
        if (c < 0) {
            if (ps->lim->ignore_unknown) continue;
            char list[1024];
            known_list(ps, list, sizeof list);
            return refuse(ps, SC_REQ_UNKNOWN_FIELD, "inputs.%.100s: the model reads no such column (it reads: %s)",
                          col->string, list);
        }
        if (!cJSON_IsArray(col))
            return refuse(ps, SC_REQ_BAD_SHAPE, "inputs.%.100s: expected an array of values, got %s", col->string,
                          type_name(col));
        int n = cJSON_GetArraySize(col);
        if (n != n_rows)
            return refuse(ps, SC_REQ_BAD_SHAPE, "inputs.%.100s: has %d values, the first column has %d", col->string,
                          n, n_rows);
        if (!ps->fill) {
            const cJSON *w;
            for (w = inputs->child; w != col; w = w->next)
                if (!strcmp(w->string, col->string))
                    return refuse(ps, SC_REQ_BAD_SHAPE, "inputs.%.100s: the column appears twice", col->string);
        }
        const cJSON *v;
        int r = 0;
        cJSON_ArrayForEach(v, col) {
            snprintf(where, sizeof where, "inputs.%.100s[%d]", col->string, r);
            int rc = put_value(ps, v, r, c, where, "");
            if (rc) return rc;
            r++;
        }
    }
    return SC_OK;
}

void sc_request_free(sc_request *req) {
    if (!req) return;
    cJSON_Delete(req->json);
    sc_free(req->cells);
    sc_free(req->numbers);
    memset(req, 0, sizeof *req);
}

int sc_request_parse(const char *body, size_t len, const char *const *known, int n_known,
                     const sc_request_limits *lim, sc_request *req, sc_req_error *kind, sc_error *err) {
    memset(req, 0, sizeof *req);
    sc_req_error kind_local;
    if (!kind) kind = &kind_local;
    *kind = SC_REQ_OK;
    parse_state ps = {known, n_known, lim, req, 0, 0, kind, err};
    if (!body || len == 0) return refuse(&ps, SC_REQ_BAD_JSON, "the request body is empty: expected a JSON object");
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!doc) {
        /* cJSON's own error pointer is a global; the parse end is per call */
        const char *at = end;
        size_t off = at && at >= body && at <= body + len ? (size_t)(at - body) : 0;
        return refuse(&ps, SC_REQ_BAD_JSON, "the body is not valid JSON (error at byte %zu of %zu)", off, len);
    }
    req->json = doc;
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0')
            return refuse(&ps, SC_REQ_BAD_JSON, "the body has bytes after the JSON value (at byte %zu)",
                          (size_t)(p - body));
    if (!cJSON_IsObject(doc))
        return refuse(&ps, SC_REQ_BAD_SHAPE, "expected a JSON object with \"instances\" or \"inputs\", got %s",
                      type_name(doc));
    const cJSON *inst = NULL, *inputs = NULL, *k;
    cJSON_ArrayForEach(k, doc) {
        if (!strcmp(k->string, "instances") && !inst) inst = k;
        else if (!strcmp(k->string, "inputs") && !inputs) inputs = k;
        else if (!strcmp(k->string, "signature_name")) continue;
        else
            return refuse(&ps, SC_REQ_BAD_SHAPE,
                          "unexpected key \"%.100s\" at the top level (expected \"instances\" or \"inputs\")", k->string);
    }
    if (!inst == !inputs)
        return refuse(&ps, SC_REQ_BAD_SHAPE, inst ? "give either \"instances\" or \"inputs\", not both"
                                                  : "the body has neither \"instances\" nor \"inputs\"");
    int n_rows;
    if (inst) {
        if (!cJSON_IsArray(inst))
            return refuse(&ps, SC_REQ_BAD_SHAPE, "\"instances\" must be an array of objects, got %s", type_name(inst));
        n_rows = cJSON_GetArraySize(inst);
    } else {
        if (!cJSON_IsObject(inputs))
            return refuse(&ps, SC_REQ_BAD_SHAPE, "\"inputs\" must be an object of column: [values], got %s",
                          type_name(inputs));
        if (!inputs->child) return refuse(&ps, SC_REQ_EMPTY, "\"inputs\" has no columns");
        const cJSON *first = inputs->child;
        if (!cJSON_IsArray(first))
            return refuse(&ps, SC_REQ_BAD_SHAPE, "inputs.%.100s: expected an array of values, got %s", first->string,
                          type_name(first));
        n_rows = cJSON_GetArraySize(first);
    }
    if (n_rows == 0) return refuse(&ps, SC_REQ_EMPTY, "the request has no instances");
    if (n_rows > lim->max_instances)
        return refuse(&ps, SC_REQ_TOO_MANY, "the request has %d instances, the limit is %d", n_rows, lim->max_instances);
    req->n_rows = n_rows;
    req->n_cols = n_known;
    req->col_names = known;
    /* Pass 1 validates and counts numbers; pass 2 fills the grid. */
    int rc = inst ? walk_instances(&ps, inst) : walk_inputs(&ps, inputs, n_rows);
    if (rc) goto fail;
    req->cells = sc_calloc((size_t)n_rows * (n_known ? n_known : 1), sizeof *req->cells);
    req->numbers = sc_malloc((ps.n_numbers ? ps.n_numbers : 1) * 32);
    if (!req->cells || !req->numbers) {
        rc = refuse(&ps, SC_REQ_NO_MEMORY, "out of memory for %d instances", n_rows);
        goto fail;
    }
    ps.fill = 1;
    ps.n_numbers = 0;
    rc = inst ? walk_instances(&ps, inst) : walk_inputs(&ps, inputs, n_rows);
    if (rc) goto fail;
    return SC_OK;
fail:
    sc_request_free(req);
    return rc;
}

char *sc_predictions_json(const float *probs, int n, size_t *len) {
    size_t cap = 32 + (size_t)n * 18;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t o = (size_t)snprintf(s, cap, "{\"predictions\":[");
    for (int i = 0; i < n; i++) {
        /* %.9g round-trips a float; probabilities are finite by construction */
        int w = snprintf(s + o, cap - o, "%s%.9g", i ? "," : "", (double)probs[i]);
        o += (size_t)w;
    }
    o += (size_t)snprintf(s + o, cap - o, "]}\n");
    if (len) *len = o;
    return s;
}
