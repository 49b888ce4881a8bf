/* ONNX export of a network (see export/onnx.h; docs/onnx.md).
 *
 * The graph is built node by node into protobuf buffers (export/protobuf.h),
 * following sc_model_forward (ctr/model.c) step by step so that ONNX
 * Runtime's scores match semctr's to float rounding. Weights stay where
 * the loaded model keeps them and are streamed into the file at the end,
 * so exporting a large embedding table costs no copy of it.
 *
 * Dimension letters as in ctr/model.c: N rows (symbolic in the graph), F
 * dataset fields, Fe = F + K fields entering the interactions (K: MSD's
 * semantic fields), D embedding size, W ids per row of a multi / sequence
 * field, X = Fe*D the DNN / cross input, A attention width, H heads. */
#include "export/onnx.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/file.h"
#include "export/protobuf.h"
#include "methods/msd/msd.h"

/* ONNX enums (onnx.proto): TensorProto.DataType, AttributeProto.AttributeType. */
enum { T_FLOAT = 1, T_INT64 = 7 };
enum { A_FLOAT = 1, A_INT = 2, A_INTS = 7 };

/* ---------------------------------------------------------------- graph */

/* An initializer: a weight of the model (borrowed), or a constant the
 * export made (owned). */
typedef struct tensor {
    int value;        /* its value handle */
    int dtype;        /* T_FLOAT or T_INT64 */
    int ndim;
    int64_t dims[4];
    const void *data; /* (prod dims) elements */
    void *owned;      /* == data when the export allocated it */
    int64_t n_zero;   /* the first n_zero elements are written as zeros instead of data's (see table()) */
} tensor;

typedef struct graph {
    sc_pb nodes;      /* GraphProto.node entries, in topological order */
    sc_pb io;         /* GraphProto.input / .output entries */
    char **name;      /* (n_values) names of values; handle 0 is a placeholder after a failure */
    int n_values, cap_values;
    tensor *init;     /* (n_init) */
    int n_init, cap_init;
    int n_nodes, oom;
} graph;

static int64_t n_elems(const tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->dims[i];
    return n;
}

/* A new value named by fmt; 0 (the placeholder) when out of memory, so
 * building goes on and the failure is reported once, at the end. */
static int value(graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int value(graph *g, const char *fmt, ...) {
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? 2 * g->cap_values : 256;
        char **p = sc_realloc(g->name, (size_t)cap * sizeof *p);
        if (!p) return g->oom = 1, 0;
        g->name = p;
        g->cap_values = cap;
    }
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = sc_strdup(buf);
    if (!s) return g->oom = 1, 0;
    g->name[g->n_values] = s;
    return g->n_values++;
}

static void graph_init(graph *g) {
    memset(g, 0, sizeof *g);
    value(g, "%s", ""); /* handle 0 */
}

static void graph_free(graph *g) {
    for (int i = 0; i < g->n_values; i++) sc_free(g->name[i]);
    for (int i = 0; i < g->n_init; i++) sc_free(g->init[i].owned);
    sc_free(g->name);
    sc_free(g->init);
    sc_pb_free(&g->nodes);
    sc_pb_free(&g->io);
}

typedef struct attr {
    const char *name;
    int type;            /* A_INT, A_FLOAT, A_INTS */
    int64_t i;
    float f;
    const int64_t *ints; /* (n) */
    int n;
} attr;

/* Append node op(in...) -> one new value (named out_name, or "t/<k>"). */
static int node(graph *g, const char *op, const int *in, int n_in, const attr *at, int n_at, const char *out_name) {
    int out = out_name ? value(g, "%s", out_name) : value(g, "t/%d", g->n_values);
    sc_pb n = {0};
    for (int i = 0; i < n_in; i++) sc_pb_str(&n, 1, g->name[in[i]]);
    sc_pb_str(&n, 2, g->name[out]);
    sc_pb_str(&n, 4, op);
    for (int k = 0; k < n_at; k++) {
        sc_pb a = {0};
        sc_pb_str(&a, 1, at[k].name);
        sc_pb_int(&a, 20, at[k].type);
        if (at[k].type == A_INT) sc_pb_int(&a, 3, at[k].i);
        else if (at[k].type == A_FLOAT) sc_pb_float(&a, 2, at[k].f);
        else
            for (int j = 0; j < at[k].n; j++) sc_pb_int(&a, 8, at[k].ints[j]);
        sc_pb_msg(&n, 5, &a);
        sc_pb_free(&a);
    }
    sc_pb_msg(&g->nodes, 1, &n);
    g->oom |= n.oom;
    sc_pb_free(&n);
    g->n_nodes++;
    return out;
}

static int op1(graph *g, const char *op, int a) { return node(g, op, &a, 1, NULL, 0, NULL); }
static int op2(graph *g, const char *op, int a, int b) {
    int in[2] = {a, b};
    return node(g, op, in, 2, NULL, 0, NULL);
}

/* An initializer of g named name (an existing one of that name is reused:
 * fields sharing a table gather from one initializer). */
static int add_tensor(graph *g, const char *name, int dtype, int ndim, const int64_t *dims, const void *data, void *owned,
                      int64_t n_zero) {
    for (int i = 0; i < g->n_init; i++)
        if (!strcmp(g->name[g->init[i].value], name)) {
            sc_free(owned);
            return g->init[i].value;
        }
    if (g->n_init == g->cap_init) {
        int cap = g->cap_init ? 2 * g->cap_init : 64;
        tensor *p = sc_realloc(g->init, (size_t)cap * sizeof *p);
        if (!p) {
            sc_free(owned);
            return g->oom = 1, 0;
        }
        g->init = p;
        g->cap_init = cap;
    }
    tensor *t = &g->init[g->n_init++];
    memset(t, 0, sizeof *t);
    t->value = value(g, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
    t->data = data;
    t->owned = owned;
    t->n_zero = n_zero;
    return t->value;
}

/* Constants: int64 vectors (axes, shapes), float scalars (as shape (1)). */
static int const_i64(graph *g, const int64_t *v, int n) {
    char name[64];
    int k = snprintf(name, sizeof name, "const/i64");
    for (int i = 0; i < n && k < (int)sizeof name - 24; i++) k += snprintf(name + k, sizeof name - (size_t)k, "_%lld", (long long)v[i]);
    int64_t *d = sc_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!d) return g->oom = 1, 0;
    memcpy(d, v, sizeof(int64_t) * (size_t)n);
    int64_t dims[1] = {n};
    return add_tensor(g, name, T_INT64, 1, dims, d, d, 0);
}

static int const_f32(graph *g, float v) {
    char name[64];
    snprintf(name, sizeof name, "const/f32_%.9g", v);
    float *d = sc_malloc(sizeof(float));
    if (!d) return g->oom = 1, 0;
    *d = v;
    int64_t dims[1] = {1};
    return add_tensor(g, name, T_FLOAT, 1, dims, d, d, 0);
}

/* op(x, axes) for the opset-13 ops that take their axes as an input
 * (ReduceSum, Unsqueeze); keepdims < 0: no keepdims attribute. */
static int axes_op(graph *g, const char *op, int x, const int64_t *axes, int n, int keepdims) {
    int in[2] = {x, const_i64(g, axes, n)};
    attr a = {"keepdims", A_INT, keepdims, 0, NULL, 0};
    return node(g, op, in, 2, &a, keepdims >= 0 ? 1 : 0, NULL);
}
static int reduce_sum(graph *g, int x, int64_t axis, int keepdims) { return axes_op(g, "ReduceSum", x, &axis, 1, keepdims); }
static int unsqueeze(graph *g, int x, int64_t axis) { return axes_op(g, "Unsqueeze", x, &axis, 1, -1); }

/* Reshape to dims (0 copies the input's dimension, -1 is inferred). */
static int reshape(graph *g, int x, const int64_t *dims, int n) {
    int in[2] = {x, const_i64(g, dims, n)};
    return node(g, "Reshape", in, 2, NULL, 0, NULL);
}

static int transpose(graph *g, int x, const int64_t *perm, int n) {
    attr a = {"perm", A_INTS, 0, 0, perm, n};
    return node(g, "Transpose", &x, 1, &a, 1, NULL);
}

static int concat(graph *g, const int *in, int n, int64_t axis) {
    attr a = {"axis", A_INT, axis, 0, NULL, 0};
    return node(g, "Concat", in, n, &a, 1, NULL);
}

/* x (N, I) W^T + b with W (O, I): nn.Linear, as sc_linear_forward. */
static int linear(graph *g, int x, int w, int b) {
    int in[3] = {x, w, b};
    attr a = {"transB", A_INT, 1, 0, NULL, 0};
    return node(g, "Gemm", in, 3, &a, 1, NULL);
}

/* ---------------------------------------------------------------- network */

typedef struct net {
    graph *g;
    sc_param *P;      /* (nP) the network's parameters */
    int nP;
    uint8_t *used;    /* (nP) exported: every parameter must be, or the graph would miss a part */
    const sc_model_config *c;
    const sc_field_info *fi; /* (F) */
    int F, D, Hh;   /* Hh: width of the hidden representation (sc_model_hidden_dim) */
    int *in;          /* (F) graph input of each field */
    sc_error *err;
    int rc;           /* first failure */
} net;

/* Parameter pname as an initializer of shape dims (its data reinterpreted:
 * same element count, row-major). n_zero: leading elements written as 0. */
static int param(net *n, const char *pname, int ndim, const int64_t *dims, int64_t n_zero) {
    for (int i = 0; i < n->nP; i++) {
        if (strcmp(n->P[i].name, pname)) continue;
        int64_t want = 1;
        for (int k = 0; k < ndim; k++) want *= dims[k];
        if (want != n->P[i].size) {
            if (!n->rc)
                n->rc = sc_fail(n->err, SC_EINTERNAL, "ONNX export: parameter '%s' has %lld values, the graph needs %lld",
                                pname, (long long)n->P[i].size, (long long)want);
            return 0;
        }
        n->used[i] = 1;
        char name[96];
        snprintf(name, sizeof name, "param/%s", pname);
        return add_tensor(n->g, name, T_FLOAT, ndim, dims, n->P[i].data, NULL, n_zero);
    }
    if (!n->rc) n->rc = sc_fail(n->err, SC_EINTERNAL, "ONNX export: the network has no parameter '%s'", pname);
    return 0;
}

static int param2(net *n, const char *pname, int64_t d0, int64_t d1) {
    int64_t d[2] = {d0, d1};
    return param(n, pname, 2, d, 0);
}

static int param1(net *n, const char *pname, int64_t d0) { return param(n, pname, 1, &d0, 0); }

/* Field f's embedding (N, 1, D) and its linear term (N, 1) (lin NULL: the
 * backbone has none), as emb_fwd_task in ctr/model.c. Tables are exported
 * with row 0 zeroed: semctr skips padding ids instead of reading the row
 * (which keeps its random initial value), so a gather from a zeroed row
 * gives the same sum. */
static int field_embedding(net *n, int f, int use_emb, int *lin) {
    graph *g = n->g;
    const sc_field_info *fi = &n->fi[f];
    int owner = fi->share_with >= 0 ? fi->share_with : f;
    int64_t V = n->fi[owner].vocab_size, D = n->D;
    char en[96], ln[96];
    snprintf(en, sizeof en, "emb.%.58s", n->fi[owner].name);
    snprintf(ln, sizeof ln, "lin.%.58s", n->fi[owner].name);
    int x = n->in[f], e = 0;
    if (fi->kind == SC_FIELD_NUMERIC) {
        /* value * its one row: (N) -> (N, 1, 1) * (1, 1, D) */
        static const int64_t ax12[2] = {1, 2};
        if (use_emb) {
            int64_t d[3] = {1, 1, D};
            e = op2(g, "Mul", axes_op(g, "Unsqueeze", x, ax12, 2, -1), param(n, en, 3, d, 0));
        }
        if (lin) *lin = op2(g, "Mul", unsqueeze(g, x, 1), param1(n, ln, 1));
        return e;
    }
    if (fi->kind == SC_FIELD_CATEGORICAL) {
        int64_t d[2] = {V, D}, dl[2] = {V, 1};
        if (use_emb) e = unsqueeze(g, op2(g, "Gather", param(n, en, 2, d, D), x), 1);
        if (lin) *lin = op2(g, "Gather", param(n, ln, 2, dl, 1), x);
        return e;
    }
    /* multi / sequence: sum over the W slots, then (mean) times 1 / (non-padding ids), 0 when none */
    int scale = 0;
    if (fi->pooling == SC_POOL_MEAN) {
        int in[2] = {x, const_i64(g, (int64_t[]){0}, 1)};
        int mask = node(g, "Greater", in, 2, NULL, 0, NULL);
        attr to = {"to", A_INT, T_FLOAT, 0, NULL, 0};
        int cnt = reduce_sum(g, node(g, "Cast", &mask, 1, &to, 1, NULL), 1, 1); /* (N, 1) */
        scale = op2(g, "Div", const_f32(g, 1.0f), op2(g, "Max", cnt, const_f32(g, 1.0f)));
    }
    if (use_emb) {
        int64_t d[2] = {V, D};
        e = reduce_sum(g, op2(g, "Gather", param(n, en, 2, d, D), x), 1, 1); /* (N, 1, D) */
        if (scale) e = op2(g, "Mul", e, unsqueeze(g, scale, 2));
    }
    if (lin) {
        int64_t dl[2] = {V, 1};
        *lin = reduce_sum(g, op2(g, "Gather", param(n, ln, 2, dl, 1), x), 1, 0); /* (N, W, 1) -> (N, 1) */
        if (scale) *lin = op2(g, "Mul", *lin, scale);
    }
    return e;
}

/* One AutoInt interacting layer (sc_attention_forward): x (N, Fe, din) ->
 * ReLU(softmax_j(Q_i . K_j) V + x W_res), per head, (N, Fe, A). */
static int attention(net *n, int l, int x, int Fe, int din) {
    graph *g = n->g;
    const sc_model_config *c = n->c;
    int64_t H = c->att_heads, hd = c->att_dim, A = H * hd;
    char nm[64];
    int w[4] = {0, 0, 0, 0};
    static const char *wn[4] = {"W_query", "W_key", "W_value", "W_res"};
    for (int k = 0; k < (c->att_residual ? 4 : 3); k++) {
        snprintf(nm, sizeof nm, "att.%d.%s", l, wn[k]);
        w[k] = param2(n, nm, din, A);
    }
    int64_t split[4] = {0, Fe, H, hd}, merge[3] = {0, Fe, A};
    static const int64_t p_nhfd[4] = {0, 2, 1, 3}, p_nhdf[4] = {0, 2, 3, 1};
    int q = transpose(n->g, reshape(g, op2(g, "MatMul", x, w[0]), split, 4), p_nhfd, 4); /* (N, H, Fe, hd) */
    int k = transpose(n->g, reshape(g, op2(g, "MatMul", x, w[1]), split, 4), p_nhdf, 4); /* (N, H, hd, Fe) */
    int v = transpose(n->g, reshape(g, op2(g, "MatMul", x, w[2]), split, 4), p_nhfd, 4);
    int s = op2(g, "MatMul", q, k); /* (N, H, Fe, Fe) */
    if (c->att_scaling) s = op2(g, "Mul", s, const_f32(g, 1.0f / sqrtf((float)hd)));
    attr ax = {"axis", A_INT, -1, 0, NULL, 0};
    int p = node(g, "Softmax", &s, 1, &ax, 1, NULL);
    int r = reshape(g, transpose(g, op2(g, "MatMul", p, v), p_nhfd, 4), merge, 3); /* (N, Fe, A) */
    if (c->att_residual) r = op2(g, "Add", op2(g, "MatMul", x, w[3]), r);
    return op1(g, "Relu", r);
}

/* MSD's semantic fields (N, D) each, in the order of the extra input
 * (item, user, fused history), as sc_msd_model_extra: ids that are
 * padding or OOV give zeros (the tables' rows 0 and 1 are exported as 0). */
static int msd_fields(net *n, const sc_msd_model *msd, int *out) {
    graph *g = n->g;
    int K = 0;
    int64_t D = msd->D;
    static const char *TN[2] = {"msd/item.table", "msd/user.table"};
    int tab[2] = {0, 0};
    for (int l = 0; l < 2; l++)
        if (msd->table[l]) {
            int64_t d[2] = {msd->V[l], D};
            tab[l] = add_tensor(g, TN[l], T_FLOAT, 2, d, msd->table[l], NULL, 2 * D);
        }
    for (int l = 0; l < 2; l++) {
        int lev = l == 0 ? SC_MSD_ITEM : SC_MSD_USER;
        if (!(msd->levels & lev)) continue;
        if (n->fi[msd->field[l]].kind != SC_FIELD_CATEGORICAL) {
            n->rc = sc_fail(n->err, SC_EINVAL, "ONNX export: MSD %s field '%s' is not categorical", l ? "user" : "item",
                            n->fi[msd->field[l]].name);
            return 0;
        }
        out[K++] = op2(g, "Gather", tab[l], n->in[msd->field[l]]);
    }
    if (msd->levels & SC_MSD_FUSION) {
        /* w = sigmoid(a log(1 + freq) + b) depends on the item alone once trained: a table,
         * computed as layers.c computes it; 0 for padding and OOV slots (skipped there) */
        int64_t V = msd->V[0];
        float *wt = sc_malloc(sizeof(float) * (size_t)V);
        if (!wt) return g->oom = 1, K;
        for (int64_t i = 0; i < V; i++) {
            float z = msd->ab[0] * log1pf(msd->item_freq[i]) + msd->ab[1];
            wt[i] = i < 2 ? 0.0f : z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
        }
        int wtab = add_tensor(g, "msd/item.fusion_weight", T_FLOAT, 1, &V, wt, wt, 0);
        int h = n->in[msd->field[2]];                                      /* (N, W) */
        int w = op2(g, "Gather", wtab, h);                                 /* (N, W) */
        int s = reduce_sum(g, w, 1, 1);                                    /* (N, 1) */
        int num = reduce_sum(g, op2(g, "Mul", op2(g, "Gather", tab[0], h), unsqueeze(g, w, 2)), 1, 0); /* (N, D) */
        int pos = op2(g, "Greater", s, const_f32(g, 0.0f));
        int in[3] = {pos, s, const_f32(g, 1.0f)};
        out[K++] = op2(g, "Div", num, node(g, "Where", in, 3, NULL, 0, NULL));
    }
    return K;
}

/* The whole forward pass: logit (N) and score (N) outputs. */
static void build(net *n, const sc_msd_model *msd) {
    graph *g = n->g;
    const sc_model_config *c = n->c;
    sc_backbone bb = c->backbone;
    int F = n->F, D = n->D;
    /* which parts the backbone has: as sc_model_create decides (ctr/model.c) */
    int use_lin = bb != SC_BB_DNN, use_emb = bb != SC_BB_LR;
    int use_fm = bb == SC_BB_FM || bb == SC_BB_DEEPFM;
    int use_dnn = c->n_hidden > 0, use_cross = c->n_cross > 0, use_att = c->att_layers > 0;
    int use_out = bb != SC_BB_LR && bb != SC_BB_FM;

    int *piece = sc_calloc((size_t)F + 4, sizeof(int)); /* (Fe) field embeddings (N, 1, D) */
    if (!piece) {
        g->oom = 1;
        return;
    }
    int Fe = 0, lin_sum = 0;
    for (int f = 0; f < F; f++) {
        int lin = 0;
        int e = field_embedding(n, f, use_emb, use_lin ? &lin : NULL);
        if (use_emb) piece[Fe++] = e;
        if (use_lin) lin_sum = lin_sum ? op2(g, "Add", lin_sum, lin) : lin;
    }
    /* MSD: K semantic fields after the dataset's (SC_EXTRA_FIELDS), or for LR a linear term over them */
    int extra[3], K = msd ? msd_fields(n, msd, extra) : 0, extra_lin = 0;
    if (K && use_emb) {
        for (int k = 0; k < K; k++) piece[Fe++] = unsqueeze(g, extra[k], 1);
    } else if (K) {
        extra_lin = op2(g, "MatMul", concat(g, extra, K, 1), param2(n, "extra.lin.weight", (int64_t)K * D, 1));
    }

    /* logit = bias + linear + extra linear + FM + out . hidden, in sc_model_forward's order */
    int logit = param1(n, "bias", 1);
    if (lin_sum) logit = op2(g, "Add", logit, lin_sum);
    if (extra_lin) logit = op2(g, "Add", logit, extra_lin);
    int E = Fe ? concat(g, piece, Fe, 1) : 0; /* (N, Fe, D) */
    if (use_fm) {
        int s = reduce_sum(g, E, 1, 0), q = reduce_sum(g, op2(g, "Mul", E, E), 1, 0); /* (N, D) */
        int fmv = op2(g, "Mul", op2(g, "Sub", op2(g, "Mul", s, s), q), const_f32(g, 0.5f));
        logit = op2(g, "Add", logit, reduce_sum(g, fmv, 1, 1));
    }
    int64_t X = (int64_t)Fe * D, flat[2] = {-1, X};
    int x0 = use_dnn || use_cross ? reshape(g, E, flat, 2) : 0; /* (N, X) */
    int h = x0, last = 0;
    char nm[64];
    int64_t in_w = X;
    for (int l = 0; l < c->n_hidden; l++) { /* Linear -> ReLU (dropout is off when scoring) */
        snprintf(nm, sizeof nm, "dnn.%d.weight", l);
        int w = param2(n, nm, c->hidden[l], in_w);
        snprintf(nm, sizeof nm, "dnn.%d.bias", l);
        h = op1(g, "Relu", linear(g, h, w, param1(n, nm, c->hidden[l])));
        in_w = c->hidden[l];
        last = h;
    }
    int xl = x0;
    for (int l = 0; l < c->n_cross; l++) {
        snprintf(nm, sizeof nm, "cross.%d.bias", l);
        int b = param1(n, nm, X);
        snprintf(nm, sizeof nm, "cross.%d.weight", l);
        if (bb == SC_BB_DCNV2) /* x0 * (W xl + b) + xl */
            xl = op2(g, "Add", op2(g, "Mul", x0, linear(g, xl, param2(n, nm, X, X), b)), xl);
        else /* x0 (xl . w) + b + xl */
            xl = op2(g, "Add", op2(g, "Add", op2(g, "Mul", x0, op2(g, "MatMul", xl, param2(n, nm, X, 1))), b), xl);
    }
    int ax = E, din = D;
    for (int l = 0; l < c->att_layers; l++) {
        ax = attention(n, l, ax, Fe, din);
        din = c->att_heads * c->att_dim;
    }
    if (use_out) {
        /* the hidden representation: [cross out | attention out flattened, DNN out], or one of them */
        int parts[2], np = 0;
        if (use_cross) parts[np++] = xl;
        if (use_att) {
            int64_t fa[2] = {-1, (int64_t)Fe * din};
            parts[np++] = reshape(g, ax, fa, 2);
        }
        if (use_dnn) parts[np++] = last;
        int hidden = np == 1 ? parts[0] : concat(g, parts, np, 1);
        logit = op2(g, "Add", logit, op2(g, "MatMul", hidden, param2(n, "out.weight", n->Hh, 1)));
    }
    int64_t vec[1] = {-1};
    int in[2] = {logit, const_i64(g, vec, 1)};
    int lg = node(g, "Reshape", in, 2, NULL, 0, "logit");
    node(g, "Sigmoid", &lg, 1, NULL, 0, "score");
    sc_free(piece);
}

/* ---------------------------------------------------------------- file */

static uint64_t payload_bytes(const tensor *t) { return (uint64_t)n_elems(t) * (t->dtype == T_INT64 ? 8u : 4u); }

/* t as a TensorProto up to the length prefix of its raw_data; the payload
 * (write_payload) follows in the file. */
static void tensor_head(const graph *g, const tensor *t, sc_pb *h) {
    for (int i = 0; i < t->ndim; i++) sc_pb_int(h, 1, t->dims[i]);
    sc_pb_int(h, 2, t->dtype);
    sc_pb_str(h, 8, g->name[t->value]);
    sc_pb_len_prefix(h, 9, payload_bytes(t));
}

/* t's elements, little-endian as raw_data requires, through a buffer
 * (zeros first, then byte-swapped on a big-endian host). */
static int write_payload(sc_atomic_file *f, const tensor *t, sc_error *err) {
    size_t es = t->dtype == T_INT64 ? 8 : 4;
    int64_t n = n_elems(t), z = t->n_zero < n ? t->n_zero : n;
    const uint16_t one = 1;
    int little = *(const uint8_t *)&one == 1;
    uint8_t buf[16384];
    int64_t per = (int64_t)(sizeof buf / es);
    for (int64_t i = 0; i < n;) {
        const uint8_t *src = (const uint8_t *)t->data + (size_t)i * es;
        if (i >= z && little) /* the rest as it is */
            return sc_atomic_write(f, src, (size_t)(n - i) * es, err);
        int64_t k = n - i < per ? n - i : per;
        if (i < z && k > z - i) k = z - i;
        if (i < z) memset(buf, 0, (size_t)k * es);
        else
            for (int64_t j = 0; j < k; j++)
                for (size_t b = 0; b < es; b++) buf[(size_t)j * es + b] = src[(size_t)j * es + es - 1 - b];
        int rc = sc_atomic_write(f, buf, (size_t)k * es, err);
        if (rc) return rc;
        i += k;
    }
    return SC_OK;
}

/* ModelProto: header fields, then the graph (nodes, inputs and outputs,
 * initializers streamed from the weights). meta: key/value pairs (2n). */
static int write_model(graph *g, const char *path, const char *doc, const char *const *meta, int n_meta,
                       uint64_t *bytes, sc_error *err) {
    static const char GRAPH_NAME[] = "semctr";
    sc_pb *heads = sc_calloc((size_t)g->n_init + 1, sizeof *heads);
    sc_pb head = {0}, tail = {0};
    if (!heads) return sc_fail(err, SC_ENOMEM, "ONNX export: out of memory");
    uint64_t glen = g->nodes.len + g->io.len + sc_pb_len_field_size(2, sizeof GRAPH_NAME - 1);
    for (int i = 0; i < g->n_init; i++) {
        tensor_head(g, &g->init[i], &heads[i]);
        glen += sc_pb_len_field_size(5, heads[i].len + payload_bytes(&g->init[i]));
    }
    sc_pb_int(&head, 1, SC_ONNX_IR_VERSION);
    sc_pb_str(&head, 2, "semctr");
    sc_pb_str(&head, 3, "0.1.0");
    sc_pb_str(&head, 6, doc);
    sc_pb os = {0};
    sc_pb_str(&os, 1, ""); /* the default ONNX operator set */
    sc_pb_int(&os, 2, SC_ONNX_OPSET);
    sc_pb_msg(&head, 8, &os);
    sc_pb_free(&os);
    for (int i = 0; i < n_meta; i++) {
        sc_pb kv = {0};
        sc_pb_str(&kv, 1, meta[2 * i]);
        sc_pb_str(&kv, 2, meta[2 * i + 1]);
        sc_pb_msg(&head, 14, &kv);
        sc_pb_free(&kv);
    }
    sc_pb_len_prefix(&head, 7, glen);
    sc_pb_str(&tail, 2, GRAPH_NAME);
    int rc = SC_OK, oom = head.oom || tail.oom || g->nodes.oom || g->io.oom;
    for (int i = 0; i < g->n_init; i++) oom |= heads[i].oom;
    *bytes = head.len + glen;
    /* protobuf (and so every ONNX reader) refuses messages of 2 GiB and more */
    if (oom) rc = sc_fail(err, SC_ENOMEM, "ONNX export: out of memory");
    else if (*bytes > INT32_MAX)
        rc = sc_fail(err, SC_EINVAL,
                     "ONNX export: the graph would be %.2f GiB; an ONNX file holds at most 2 GiB (protobuf's limit), "
                     "and external weight files are not written yet: use a smaller embedding size or hash_buckets",
                     (double)*bytes / (1 << 30));
    sc_atomic_file f;
    int open = 0;
    if (!rc) open = !(rc = sc_atomic_open(&f, path, err));
    if (!rc) rc = sc_atomic_write(&f, head.buf, head.len, err);
    if (!rc) rc = sc_atomic_write(&f, g->nodes.buf, g->nodes.len, err);
    if (!rc) rc = sc_atomic_write(&f, tail.buf, tail.len, err);
    if (!rc) rc = sc_atomic_write(&f, g->io.buf, g->io.len, err);
    for (int i = 0; i < g->n_init && !rc; i++) {
        sc_pb pre = {0};
        sc_pb_len_prefix(&pre, 5, heads[i].len + payload_bytes(&g->init[i]));
        rc = pre.oom ? sc_fail(err, SC_ENOMEM, "ONNX export: out of memory") : sc_atomic_write(&f, pre.buf, pre.len, err);
        if (!rc) rc = sc_atomic_write(&f, heads[i].buf, heads[i].len, err);
        if (!rc) rc = write_payload(&f, &g->init[i], err);
        sc_pb_free(&pre);
    }
    if (open) {
        if (!rc) rc = sc_atomic_commit(&f, err);
        else sc_atomic_abort(&f);
    }
    for (int i = 0; i < g->n_init; i++) sc_pb_free(&heads[i]);
    sc_free(heads);
    sc_pb_free(&head);
    sc_pb_free(&tail);
    return rc;
}

/* ValueInfoProto of a graph input or output: dtype, shape (N) or (N, W). */
static void value_info(sc_pb *dst, int field, const char *name, int dtype, int width, const char *doc) {
    sc_pb dn = {0}, dw = {0}, shape = {0}, tt = {0}, ty = {0}, vi = {0};
    sc_pb_str(&dn, 2, "N"); /* a symbolic batch dimension */
    sc_pb_msg(&shape, 1, &dn);
    if (width > 0) {
        sc_pb_int(&dw, 1, width);
        sc_pb_msg(&shape, 1, &dw);
    }
    sc_pb_int(&tt, 1, dtype);
    sc_pb_msg(&tt, 2, &shape);
    sc_pb_msg(&ty, 1, &tt);
    sc_pb_str(&vi, 1, name);
    sc_pb_msg(&vi, 2, &ty);
    sc_pb_str(&vi, 3, doc);
    sc_pb_msg(dst, field, &vi);
    sc_pb_free(&dn);
    sc_pb_free(&dw);
    sc_pb_free(&shape);
    sc_pb_free(&tt);
    sc_pb_free(&ty);
    sc_pb_free(&vi);
}

/* ---------------------------------------------------------------- export */

/* Names the graph uses for itself; an input (a field) may not take one. */
static int reserved_name(const char *s) {
    return !strcmp(s, "score") || !strcmp(s, "logit") || !strncmp(s, "param/", 6) || !strncmp(s, "const/", 6) ||
           !strncmp(s, "msd/", 4) || !strncmp(s, "t/", 2);
}

int sc_onnx_export(const sc_model_bundle *b, const char *network, const char *out, sc_onnx_info *info,
                   sc_error *err) {
    const char *name = network ? network : sc_model_bundle_default_network(b);
    sc_model *m = sc_model_bundle_network(b, name);
    if (!m) return sc_fail(err, SC_ENOTFOUND, "ONNX export: the model has no network '%s'", name);
    const sc_model_config *c = sc_model_get_config(m);
    int is_msd = !strcmp(b->method, "msd");
    if (c->extra_dim > 0 && !(is_msd && c->extra_mode == SC_EXTRA_FIELDS))
        return sc_fail(err, SC_EINVAL,
                       "ONNX export: network '%s' needs language-model vectors at scoring time; export the vanilla "
                       "network (--network vanilla)",
                       name);
    int F;
    const sc_field_info *fi = sc_schema_fields(b->schema, &F);
    for (int f = 0; f < F; f++)
        if (reserved_name(fi[f].name))
            return sc_fail(err, SC_EINVAL,
                           "ONNX export: field '%s' would clash with the graph's own names (score, logit, param/*, "
                           "const/*, msd/*, t/*); rename it in the dataset config",
                           fi[f].name);
    sc_msd_model msd;
    memset(&msd, 0, sizeof msd);
    int rc = SC_OK, have_msd = is_msd && c->extra_dim > 0;
    if (have_msd && (rc = sc_msd_model_load(&msd, b, err))) return rc;

    graph g;
    graph_init(&g);
    if (g.oom) {
        graph_free(&g);
        if (have_msd) sc_msd_model_free(&msd);
        return sc_fail(err, SC_ENOMEM, "ONNX export: out of memory");
    }
    net n = {.g = &g, .c = c, .fi = fi, .F = F, .D = c->embed_dim, .Hh = sc_model_hidden_dim(m), .err = err};
    n.P = sc_model_params(m, &n.nP);
    n.used = sc_calloc((size_t)n.nP + 1, 1);
    n.in = sc_calloc((size_t)F, sizeof(int));
    if (!n.used || !n.in) g.oom = 1;
    for (int f = 0; f < F && !g.oom; f++) {
        int id = fi[f].kind != SC_FIELD_NUMERIC;
        char doc[160];
        snprintf(doc, sizeof doc, "%s: %s", fi[f].name,
                 !id ? "normalised value" : fi[f].kind == SC_FIELD_CATEGORICAL ? "id in [0, vocab_size)" : "ids, 0 = padding");
        n.in[f] = value(&g, "%s", fi[f].name);
        value_info(&g.io, 11, fi[f].name, id ? T_INT64 : T_FLOAT, fi[f].kind >= SC_FIELD_MULTI ? fi[f].width : 0, doc);
    }
    if (!g.oom) build(&n, have_msd ? &msd : NULL);
    rc = n.rc;
    if (!rc && g.oom) rc = sc_fail(err, SC_ENOMEM, "ONNX export: out of memory");
    for (int i = 0; i < n.nP && !rc; i++)
        if (!n.used[i]) /* a part this export does not know: the graph would score differently */
            rc = sc_fail(err, SC_EINTERNAL, "ONNX export: parameter '%s' of network '%s' has no place in the graph",
                         n.P[i].name, name);
    value_info(&g.io, 12, "score", T_FLOAT, 0, "click probability, sigmoid(logit)");
    value_info(&g.io, 12, "logit", T_FLOAT, 0, "logit");

    char stem[4096];
    size_t L = strlen(out);
    if (L >= sizeof stem - 32) rc = rc ? rc : sc_fail(err, SC_EINVAL, "ONNX export: path too long: %.100s...", out);
    snprintf(stem, sizeof stem, "%.*s", (int)(L > 5 && !strcmp(out + L - 5, ".onnx") ? L - 5 : L), out);
    const char *base = strrchr(stem, '/') ? strrchr(stem, '/') + 1 : stem;
    char doc[600];
    snprintf(doc, sizeof doc,
             "semctr %s network '%s' (%s model). Inputs: one per dataset field, named like it; encode raw values "
             "with %.200s.inputs.json (docs/onnx.md). Outputs: score (click probability) and logit.",
             sc_backbone_name(c->backbone), name, b->method, base);
    const char *meta[] = {"semctr.network", name, "semctr.method", b->method, "semctr.backbone",
                          sc_backbone_name(c->backbone)};
    sc_onnx_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    snprintf(info->manifest, sizeof info->manifest, "%s.inputs.json", stem);
    snprintf(info->vocab_dir, sizeof info->vocab_dir, "%s.vocab", stem);
    if (!rc) rc = write_model(&g, out, doc, meta, 3, &info->bytes, err);
    if (!rc) rc = sc_onnx_write_inputs(b, name, out, info->manifest, info->vocab_dir, err);
    info->n_inputs = F;
    info->n_nodes = g.n_nodes;
    info->n_initializers = g.n_init;
    sc_free(n.used);
    sc_free(n.in);
    graph_free(&g);
    if (have_msd) sc_msd_model_free(&msd);
    return rc;
}
