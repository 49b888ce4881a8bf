/* Embedding tables sharded over ranks by id; see shard.h.
 *
 * Messages are laid out by destination rank, then table: the block a rank
 * sends to rank q holds its ids (or rows, or gradients) of table 0, then of
 * table 1, ... The lookup's ids and the gradients that follow use the same
 * order, so the gradients travel without their ids: the owner kept them. */
#include "dist/shard.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

struct sc_shard_exchange {
    sc_dist *d;
    int rank, size, T;
    int64_t *V;              /* (T) */
    int *width;              /* (T) */
    int64_t *ask_n, *asked_n; /* (size, T): ids this rank asks of rank q; ids rank q asks of this rank */
    int64_t *sbytes, *rbytes; /* (size) scratch */
    int64_t *fill;            /* (size, T) scratch: where the next id of block (q, t) goes */
    int32_t *ask, *slot;     /* ids asked, in (q, t) order, and each one's index in its table's list */
    int32_t *asked;          /* ids asked of this rank, in (q, t) order; after serving, local rows */
    float *out, *in;         /* rows (then gradients) sent and received */
    int64_t ask_cap, slot_cap, asked_cap, out_cap, in_cap;
};

int64_t sc_shard_local_rows(int64_t V, int rank, int size) { return V > rank ? (V - rank + size - 1) / size : 0; }

int sc_shard_exchange_create(sc_shard_exchange **out, sc_dist *d, int n_tables, const int64_t *V, const int *width,
                             sc_error *err) {
    *out = NULL;
    sc_shard_exchange *x = sc_calloc(1, sizeof *x);
    if (!x) return sc_fail(err, SC_ENOMEM, "out of memory");
    x->d = d;
    x->rank = sc_dist_rank(d);
    x->size = sc_dist_size(d);
    x->T = n_tables;
    size_t nt = (size_t)(n_tables > 0 ? n_tables : 1), nq = (size_t)x->size;
    x->V = sc_malloc(nt * sizeof *x->V);
    x->width = sc_malloc(nt * sizeof *x->width);
    x->ask_n = sc_calloc(nq * nt, sizeof *x->ask_n);
    x->asked_n = sc_calloc(nq * nt, sizeof *x->asked_n);
    x->sbytes = sc_calloc(nq, sizeof *x->sbytes);
    x->rbytes = sc_calloc(nq, sizeof *x->rbytes);
    x->fill = sc_calloc(nq * nt, sizeof *x->fill);
    if (!x->V || !x->width || !x->ask_n || !x->asked_n || !x->sbytes || !x->rbytes || !x->fill) {
        sc_shard_exchange_free(x);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int t = 0; t < n_tables; t++) {
        x->V[t] = V[t];
        x->width[t] = width[t];
    }
    *out = x;
    return SC_OK;
}

void sc_shard_exchange_free(sc_shard_exchange *x) {
    if (!x) return;
    sc_free(x->V);
    sc_free(x->width);
    sc_free(x->ask_n);
    sc_free(x->asked_n);
    sc_free(x->sbytes);
    sc_free(x->rbytes);
    sc_free(x->fill);
    sc_free(x->ask);
    sc_free(x->slot);
    sc_free(x->asked);
    sc_free(x->out);
    sc_free(x->in);
    sc_free(x);
}

static int grow(void **buf, int64_t *cap, int64_t need, size_t elem, sc_error *err) {
    if (need <= *cap) return SC_OK;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *b = sc_realloc(*buf, (size_t)c * elem);
    if (!b) return sc_fail(err, SC_ENOMEM, "out of memory for %lld embedding rows in flight", (long long)need);
    *buf = b;
    *cap = c;
    return SC_OK;
}

/* bytes[q] = unit * sum over t of n[q, t] * (per_row ? width[t] : 1) */
static void block_bytes(const sc_shard_exchange *x, const int64_t *n, int per_row, int64_t *bytes, int64_t *total) {
    *total = 0;
    for (int q = 0; q < x->size; q++) {
        int64_t b = 0;
        for (int t = 0; t < x->T; t++) b += n[(int64_t)q * x->T + t] * (per_row ? x->width[t] : 1);
        bytes[q] = b * 4; /* int32 ids and float rows alike */
        *total += b;
    }
}

int sc_shard_lookup(sc_shard_exchange *x, const int32_t *const *ids, const int64_t *n, float *const *rows,
                    sc_shard_read_fn read, void *ctx, sc_error *err) {
    int N = x->size, T = x->T, rc;
    /* 1. this rank's ids by owner, then table */
    memset(x->ask_n, 0, sizeof(int64_t) * (size_t)N * (size_t)T);
    int64_t total = 0;
    for (int t = 0; t < T; t++)
        for (int64_t i = 0; i < n[t]; i++) {
            if (ids[t][i] < 0 || ids[t][i] >= x->V[t])
                return sc_fail(err, SC_EFORMAT, "sharded table %d: id %d outside its %lld rows", t, (int)ids[t][i],
                               (long long)x->V[t]);
            x->ask_n[(int64_t)(ids[t][i] % N) * T + t]++;
        }
    /* each (q, t) block's start: prefix sums in block order */
    for (int64_t k = 0; k < (int64_t)N * T; k++) {
        x->fill[k] = total;
        total += x->ask_n[k];
    }
    if ((rc = grow((void **)&x->ask, &x->ask_cap, total, sizeof(int32_t), err)) ||
        (rc = grow((void **)&x->slot, &x->slot_cap, total, sizeof(int32_t), err)))
        return rc;
    for (int t = 0; t < T; t++)
        for (int64_t i = 0; i < n[t]; i++) {
            int64_t pos = x->fill[(int64_t)(ids[t][i] % N) * T + t]++;
            x->ask[pos] = ids[t][i];
            x->slot[pos] = (int32_t)i;
        }
    /* 2. the ids to their owners */
    if ((rc = sc_dist_alltoall_counts(x->d, x->ask_n, x->asked_n, T, err))) return rc;
    int64_t n_ask, n_asked;
    block_bytes(x, x->ask_n, 0, x->sbytes, &n_ask);
    block_bytes(x, x->asked_n, 0, x->rbytes, &n_asked);
    if ((rc = grow((void **)&x->asked, &x->asked_cap, n_asked, sizeof(int32_t), err))) return rc;
    if ((rc = sc_dist_alltoallv(x->d, x->ask, x->sbytes, x->asked, x->rbytes, 1, err))) return rc;
    /* 3. the owner reads the rows asked of it (ids checked: they came over the wire) */
    int64_t n_out, n_in;
    block_bytes(x, x->asked_n, 1, x->sbytes, &n_out);
    block_bytes(x, x->ask_n, 1, x->rbytes, &n_in);
    if ((rc = grow((void **)&x->out, &x->out_cap, n_out, sizeof(float), err)) ||
        (rc = grow((void **)&x->in, &x->in_cap, n_in, sizeof(float), err)))
        return rc;
    int64_t a = 0, o = 0;
    for (int q = 0; q < N; q++)
        for (int t = 0; t < T; t++) {
            int64_t cnt = x->asked_n[(int64_t)q * T + t];
            int32_t *seg = x->asked + a;
            for (int64_t j = 0; j < cnt; j++) {
                if (seg[j] < 0 || seg[j] >= x->V[t] || seg[j] % N != x->rank)
                    return sc_fail(err, SC_EFORMAT, "rank %d asked rank %d for row %d of sharded table %d (%lld rows)",
                                   q, x->rank, (int)seg[j], t, (long long)x->V[t]);
                seg[j] /= N;
            }
            if (cnt) read(ctx, t, seg, cnt, x->out + o);
            a += cnt;
            o += cnt * x->width[t];
        }
    /* 4. the rows back to who asked, into their places */
    if ((rc = sc_dist_alltoallv(x->d, x->out, x->sbytes, x->in, x->rbytes, 1, err))) return rc;
    a = o = 0;
    for (int q = 0; q < N; q++)
        for (int t = 0; t < T; t++) {
            int64_t cnt = x->ask_n[(int64_t)q * T + t];
            int w = x->width[t];
            for (int64_t j = 0; j < cnt; j++)
                memcpy(rows[t] + (int64_t)x->slot[a + j] * w, x->in + o + j * w, sizeof(float) * (size_t)w);
            a += cnt;
            o += cnt * w;
        }
    return SC_OK;
}

int sc_shard_push_grads(sc_shard_exchange *x, const float *const *grad, sc_shard_add_fn add, void *ctx,
                        sc_error *err) {
    int N = x->size, T = x->T, rc;
    /* the gradients in the order the ids were asked: the owners know the ids */
    int64_t a = 0, o = 0;
    for (int q = 0; q < N; q++)
        for (int t = 0; t < T; t++) {
            int64_t cnt = x->ask_n[(int64_t)q * T + t];
            int w = x->width[t];
            for (int64_t j = 0; j < cnt; j++)
                memcpy(x->in + o + j * w, grad[t] + (int64_t)x->slot[a + j] * w, sizeof(float) * (size_t)w);
            a += cnt;
            o += cnt * w;
        }
    int64_t n_in, n_out;
    block_bytes(x, x->ask_n, 1, x->sbytes, &n_in);
    block_bytes(x, x->asked_n, 1, x->rbytes, &n_out);
    if ((rc = sc_dist_alltoallv(x->d, x->in, x->sbytes, x->out, x->rbytes, 1, err))) return rc;
    a = o = 0;
    for (int q = 0; q < N; q++)
        for (int t = 0; t < T; t++) {
            int64_t cnt = x->asked_n[(int64_t)q * T + t];
            if (cnt && (rc = add(ctx, t, x->asked + a, x->out + o, cnt, err))) return rc;
            a += cnt;
            o += cnt * x->width[t];
        }
    return SC_OK;
}

/* Local rows per piece of a table moved to or from rank 0: every rank's
 * piece together stays near 16 MiB (SEMCTR_SHARD_PIECE_FLOATS sets another
 * size, so that tests on small tables cut them into many pieces). */
static int64_t piece_rows(int cols, int size) {
    static int64_t floats;
    if (!floats) {
        const char *e = getenv("SEMCTR_SHARD_PIECE_FLOATS");
        floats = e && atoll(e) > 0 ? atoll(e) : (int64_t)1 << 22;
    }
    int64_t k = floats / ((int64_t)cols * size);
    return k > 0 ? k : 1;
}

int64_t sc_shard_n_pieces(int64_t V, int cols, int size) {
    int64_t K = piece_rows(cols, size);
    return (sc_shard_local_rows(V, 0, size) + K - 1) / K;
}

/* Piece p of a table between every rank's local rows and rank 0's rows of the piece, full (ids from p K N
 * on, relative to the piece): gathered (to_root) or scattered. buf: rank 0's packing space, (K N, cols). */
static int move_piece(sc_dist *d, float *full, int64_t V, int cols, float *local, int64_t p, int to_root,
                      float *buf, int64_t *sb, int64_t *rb, int64_t *rows, sc_error *err) {
    int N = sc_dist_size(d), r = sc_dist_rank(d), root = r == 0;
    int64_t K = piece_rows(cols, N), c0 = p * K, mine = sc_shard_local_rows(V, r, N);
    int64_t cnt = mine > c0 ? (mine - c0 < K ? mine - c0 : K) : 0; /* this rank's rows in the piece */
    memset(sb, 0, (size_t)N * sizeof *sb);
    memset(rb, 0, (size_t)N * sizeof *rb);
    int64_t at = 0;
    *rows = 0;
    for (int q = 0; q < N && root; q++) { /* rank q's rows of the piece: ids (c0 + j) N + q */
        int64_t Lq = sc_shard_local_rows(V, q, N), nq = Lq > c0 ? (Lq - c0 < K ? Lq - c0 : K) : 0;
        if (to_root) rb[q] = nq * cols * 4;
        else sb[q] = nq * cols * 4;
        for (int64_t j = 0; j < nq && !to_root; j++)
            memcpy(buf + (at + j) * cols, full + (j * N + q) * cols, sizeof(float) * (size_t)cols);
        at += nq;
    }
    *rows = at;
    if (to_root) sb[0] = cnt * cols * 4;
    else rb[0] = cnt * cols * 4;
    float *lp = local + c0 * cols;
    int rc = to_root ? sc_dist_alltoallv(d, lp, sb, buf, rb, 0, err) : sc_dist_alltoallv(d, buf, sb, lp, rb, 0, err);
    if (!rc && root && to_root) {
        at = 0;
        for (int q = 0; q < N; q++) {
            int64_t Lq = sc_shard_local_rows(V, q, N), nq = Lq > c0 ? (Lq - c0 < K ? Lq - c0 : K) : 0;
            for (int64_t j = 0; j < nq; j++)
                memcpy(full + (j * N + q) * cols, buf + (at + j) * cols, sizeof(float) * (size_t)cols);
            at += nq;
        }
    }
    return rc;
}

int sc_shard_scatter(sc_dist *d, const float *full, int64_t V, int cols, float *local, sc_error *err) {
    int N = sc_dist_size(d), root = sc_dist_rank(d) == 0;
    if (N == 1) {
        memcpy(local, full, sizeof(float) * (size_t)V * (size_t)cols);
        return SC_OK;
    }
    int64_t K = piece_rows(cols, N), rows;
    int64_t *sb = sc_calloc(2 * (size_t)N, sizeof *sb);
    float *buf = root ? sc_malloc((size_t)N * (size_t)K * (size_t)cols * sizeof *buf) : NULL;
    int rc = !sb || (root && !buf) ? sc_fail(err, SC_ENOMEM, "out of memory for a piece of an embedding table") : SC_OK;
    rc = sc_dist_agree(d, rc, err);
    for (int64_t p = 0; p < sc_shard_n_pieces(V, cols, N) && !rc; p++)
        rc = move_piece(d, root ? (float *)full + p * K * N * cols : NULL, V, cols, local, p, 0, buf, sb, sb + N,
                        &rows, err);
    sc_free(sb);
    sc_free(buf);
    return rc;
}

/* ---- a table streamed to rank 0 piece by piece ---- */

struct sc_shard_stream {
    sc_dist *d;
    const float *local;
    int64_t V, piece, n_pieces;
    int cols;
    float *buf, *out; /* rank 0, while a piece is in flight: packing space and the piece's rows, (K N, cols) */
    int64_t *counts;  /* (2 size) */
};

int sc_shard_stream_open(sc_shard_stream **out, sc_dist *d, const float *local, int64_t V, int cols, sc_error *err) {
    int N = sc_dist_size(d);
    sc_shard_stream *s = sc_calloc(1, sizeof *s);
    if (s) {
        *s = (sc_shard_stream){d, local, V, 0, sc_shard_n_pieces(V, cols, N), cols, NULL, NULL, NULL};
        s->counts = sc_calloc(2 * (size_t)N, sizeof *s->counts);
    }
    if (!s || !s->counts) {
        sc_shard_stream_close(s);
        *out = NULL;
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    *out = s;
    return SC_OK;
}

int sc_shard_stream_next(sc_shard_stream *s, const void **data, uint64_t *bytes, sc_error *err) {
    *data = NULL;
    *bytes = 0;
    int N = sc_dist_size(s->d);
    int64_t K = piece_rows(s->cols, N), rows;
    if (s->piece == s->n_pieces) return sc_fail(err, SC_EINTERNAL, "embedding table stream read past its end");
    if (N == 1) { /* one process: the local rows are the table */
        int64_t lo = s->piece++ * K, n = s->V - lo < K ? s->V - lo : K;
        *data = s->local + lo * s->cols;
        *bytes = (uint64_t)(n * s->cols) * sizeof(float);
        return SC_OK;
    }
    /* rank 0's buffers live while the stream is being read: many streams may be open at once */
    int rc = SC_OK;
    if (sc_dist_rank(s->d) == 0 && !s->out) {
        s->buf = sc_malloc((size_t)N * (size_t)K * (size_t)s->cols * sizeof *s->buf);
        s->out = sc_malloc((size_t)N * (size_t)K * (size_t)s->cols * sizeof *s->out);
        if (!s->buf || !s->out) rc = sc_fail(err, SC_ENOMEM, "rank 0: out of memory for a piece of an embedding table");
    }
    if (!rc)
        rc = move_piece(s->d, s->out, s->V, s->cols, (float *)s->local, s->piece++, 1, s->buf, s->counts,
                        s->counts + N, &rows, err);
    if (!rc) {
        *data = s->out;
        *bytes = (uint64_t)(rows * s->cols) * sizeof(float);
    }
    if (s->piece == s->n_pieces || rc) { /* the last piece stays readable until release or close */
        sc_free(s->buf);
        s->buf = NULL;
    }
    return rc;
}

int sc_shard_stream_done(const sc_shard_stream *s) { return s->piece == s->n_pieces; }

void sc_shard_stream_release(sc_shard_stream *s) {
    sc_free(s->buf);
    sc_free(s->out);
    s->buf = s->out = NULL;
}

int sc_shard_stream_send(sc_dist *d, const float *local, int64_t V, int cols, sc_error *err) {
    sc_shard_stream *s;
    int rc = sc_shard_stream_open(&s, d, local, V, cols, err);
    while (!rc && s->piece < s->n_pieces) {
        const void *data;
        uint64_t bytes;
        rc = sc_shard_stream_next(s, &data, &bytes, err);
    }
    sc_shard_stream_close(s);
    return rc;
}

void sc_shard_stream_close(sc_shard_stream *s) {
    if (!s) return;
    sc_shard_stream_release(s);
    sc_free(s->counts);
    sc_free(s);
}
