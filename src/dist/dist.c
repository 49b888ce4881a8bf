/* Data-parallel training over MPI ranks; see dist.h. Every function has its
 * one-process meaning first (NULL, or a job of one rank), then the MPI part
 * under SC_MPI. */
#include "dist/dist.h"

#include <limits.h>
#include <string.h>
#include <xxhash.h>

#ifdef SC_MPI
#include <mpi.h>
#endif

#include "base/alloc.h"
#include "base/util.h"

struct sc_dist {
    int rank, size;
    int own_mpi;             /* sc_dist_init called MPI_Init, so sc_dist_finalize calls MPI_Finalize */
    int64_t batch_n, lo, hi; /* the last sc_dist_slice: global batch rows, this rank's [lo, hi) */
    int stop;                /* the interruption flag agreed at the last step */
    sc_dist_stats stats;
    /* scratch of sc_dist_optim_step, grown as needed */
    float *dense; /* (dense_cap): every dense gradient, then the interruption flag */
    int64_t dense_cap;
    unsigned char *send, *recv; /* this rank's sparse rows; every rank's, in rank order */
    size_t send_cap, recv_cap;
    int64_t *counts;            /* (size, n_unions): rows each rank touched in each sparse param */
    int *recv_bytes, *displs;   /* (size) */
    sc_row_union *unions;       /* (n_unions): one per sparse param, in param order */
    struct own_rows {           /* (n_unions): a sparse param's own gradient while the optimizer reads the union */
        float *grad;
        int32_t *touched;
        int64_t n_touched;
    } *own;
    int n_unions;
};

/* ---- the union of sparse rows ---- */

int sc_row_union_init(sc_row_union *u, int64_t V, int C, sc_error *err) {
    memset(u, 0, sizeof *u);
    if (V <= 0 || V > INT32_MAX || C <= 0) return sc_fail(err, SC_EINVAL, "row union: bad shape (%lld, %d)", (long long)V, C);
    u->V = V;
    u->C = C;
    u->stamp = sc_calloc((size_t)V, sizeof *u->stamp);
    u->slot = sc_malloc((size_t)V * sizeof *u->slot);
    if (!u->stamp || !u->slot) {
        sc_row_union_free(u);
        return sc_fail(err, SC_ENOMEM, "row union: out of memory for %lld rows", (long long)V);
    }
    return SC_OK;
}

void sc_row_union_free(sc_row_union *u) {
    sc_free(u->stamp);
    sc_free(u->slot);
    sc_free(u->ids);
    sc_free(u->grad);
    memset(u, 0, sizeof *u);
}

void sc_row_union_begin(sc_row_union *u) {
    u->epoch++; /* stamps of earlier unions no longer match: every row is new again */
    u->n = 0;
}

static int union_grow(sc_row_union *u, int64_t need, sc_error *err) {
    if (need <= u->cap) return SC_OK;
    int64_t cap = u->cap ? u->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > u->V) cap = u->V; /* a union never holds more rows than the table */
    int32_t *ids = sc_realloc(u->ids, (size_t)cap * sizeof *ids);
    if (ids) u->ids = ids;
    float *grad = ids ? sc_realloc(u->grad, (size_t)cap * (size_t)u->C * sizeof *grad) : NULL;
    if (!grad) return sc_fail(err, SC_ENOMEM, "row union: out of memory for %lld rows", (long long)cap);
    u->grad = grad;
    u->cap = cap;
    return SC_OK;
}

int sc_row_union_add(sc_row_union *u, const int32_t *ids, const float *grad, int64_t n, sc_error *err) {
    int C = u->C;
    for (int64_t j = 0; j < n; j++) {
        int32_t id = ids[j];
        if (id < 0 || id >= u->V)
            return sc_fail(err, SC_EFORMAT, "sparse gradient row %d outside the table's %lld rows", (int)id,
                           (long long)u->V);
        const float *g = grad + j * C;
        if (u->stamp[id] == u->epoch) {
            float *dst = u->grad + (int64_t)u->slot[id] * C;
            for (int c = 0; c < C; c++) dst[c] += g[c];
            continue;
        }
        int rc = union_grow(u, u->n + 1, err);
        if (rc) return rc;
        u->stamp[id] = u->epoch;
        u->slot[id] = (int32_t)u->n;
        u->ids[u->n] = id;
        memcpy(u->grad + u->n * C, g, sizeof(float) * (size_t)C);
        u->n++;
    }
    return SC_OK;
}

/* ---- the job ---- */

#ifdef SC_MPI
/* An MPI call's failure as a status naming the call and this rank. */
static int mpi_check(const sc_dist *d, int mrc, const char *what, sc_error *err) {
    if (mrc == MPI_SUCCESS) return SC_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(mrc, msg, &len);
    return sc_fail(err, SC_EIO, "rank %d of %d: %s failed: %s", d->rank, d->size, what, msg);
}

/* MPI counts are ints: big buffers go in pieces of 1 GiB. */
enum { MPI_CHUNK = 1 << 30 };
#endif

int sc_dist_init(sc_dist **out, int *argc, char ***argv, sc_error *err) {
    *out = NULL;
    sc_dist *d = sc_calloc(1, sizeof *d);
    if (!d) return sc_fail(err, SC_ENOMEM, "out of memory");
    d->size = 1;
#ifdef SC_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init(argc, argv) != MPI_SUCCESS) {
            sc_free(d);
            return sc_fail(err, SC_EIO, "MPI_Init failed (is this an Open MPI job? see docs/distributed.md)");
        }
        d->own_mpi = 1;
    }
    /* failures come back as statuses with a message instead of aborting inside MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
#else
    (void)argc;
    (void)argv;
#endif
    *out = d;
    return SC_OK;
}

void sc_dist_finalize(sc_dist *d) {
    if (!d) return;
#ifdef SC_MPI
    if (d->own_mpi) MPI_Finalize();
#endif
    for (int i = 0; i < d->n_unions; i++) sc_row_union_free(&d->unions[i]);
    sc_free(d->unions);
    sc_free(d->own);
    sc_free(d->dense);
    sc_free(d->send);
    sc_free(d->recv);
    sc_free(d->counts);
    sc_free(d->recv_bytes);
    sc_free(d->displs);
    sc_free(d);
}

void sc_dist_abort(sc_dist *d, int code) {
#ifdef SC_MPI
    if (d && d->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)d;
    (void)code;
#endif
}

int sc_dist_rank(const sc_dist *d) { return d ? d->rank : 0; }
int sc_dist_size(const sc_dist *d) { return d ? d->size : 1; }

void sc_dist_slice(sc_dist *d, int64_t n, int64_t *lo, int64_t *hi) {
    int r = sc_dist_rank(d), N = sc_dist_size(d);
    *lo = n * r / N;
    *hi = n * (r + 1) / N;
    if (d) {
        d->batch_n = n;
        d->lo = *lo;
        d->hi = *hi;
    }
}

int sc_dist_interrupted(const sc_dist *d) { return d && d->size > 1 ? d->stop : sc_interrupted(); }

void sc_dist_get_stats(const sc_dist *d, sc_dist_stats *out) {
    if (d) *out = d->stats;
    else memset(out, 0, sizeof *out);
}

#ifdef SC_MPI
static int grow_bytes(unsigned char **buf, size_t *cap, size_t need, sc_error *err) {
    if (need <= *cap) return SC_OK;
    unsigned char *b = sc_realloc(*buf, need);
    if (!b) return sc_fail(err, SC_ENOMEM, "out of memory for %zu bytes of gradients", need);
    *buf = b;
    *cap = need;
    return SC_OK;
}

/* Dense gradients, each times share, summed over ranks in place; the
 * interruption flag travels in the same message. A param is dense or sparse
 * by its flag alone: a rank whose slice is empty may not have allocated
 * gradients yet (NULL grad: zeros, no rows), and every rank must still
 * send the same layout. */
static int sum_dense(sc_dist *d, sc_param *p, int np, float share, sc_error *err) {
    int64_t nd = 0;
    for (int k = 0; k < np; k++)
        if (!p[k].sparse) nd += p[k].size;
    if (nd + 1 > d->dense_cap) {
        float *b = sc_realloc(d->dense, (size_t)(nd + 1) * sizeof *b);
        if (!b) return sc_fail(err, SC_ENOMEM, "out of memory for %lld dense gradients", (long long)nd);
        d->dense = b;
        d->dense_cap = nd + 1;
    }
    int64_t off = 0;
    for (int k = 0; k < np; k++) {
        if (p[k].sparse) continue;
        for (int64_t j = 0; j < p[k].size; j++) d->dense[off + j] = p[k].grad ? p[k].grad[j] * share : 0.0f;
        off += p[k].size;
    }
    d->dense[nd] = sc_interrupted() ? 1.0f : 0.0f;
    double t0 = sc_now();
    for (int64_t at = 0; at < nd + 1; at += MPI_CHUNK) {
        int n = (int)(nd + 1 - at < MPI_CHUNK ? nd + 1 - at : MPI_CHUNK);
        int rc = mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, d->dense + at, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                           "MPI_Allreduce of the dense gradients", err);
        if (rc) return rc;
    }
    d->stats.comm_s += sc_now() - t0;
    d->stats.dense_bytes += (double)(nd + 1) * sizeof(float);
    off = 0;
    for (int k = 0; k < np; k++) {
        if (p[k].sparse) continue;
        if (p[k].grad) memcpy(p[k].grad, d->dense + off, sizeof(float) * (size_t)p[k].size);
        off += p[k].size;
    }
    d->stop = d->dense[nd] > 0;
    return SC_OK;
}

/* Every rank's touched rows of every sparse param (ids, then gradients
 * times share), gathered, and added up in rank order into d->unions. */
static int gather_sparse(sc_dist *d, sc_param *p, int np, float share, sc_error *err) {
    int ns = 0, rc;
    for (int k = 0; k < np; k++)
        if (p[k].sparse) ns++;
    if (!d->unions) {
        d->unions = sc_calloc((size_t)(ns ? ns : 1), sizeof *d->unions);
        d->own = sc_calloc((size_t)(ns ? ns : 1), sizeof *d->own);
        d->counts = sc_calloc((size_t)d->size * (size_t)(ns ? ns : 1), sizeof *d->counts);
        d->recv_bytes = sc_calloc((size_t)d->size, sizeof *d->recv_bytes);
        d->displs = sc_calloc((size_t)d->size, sizeof *d->displs);
        if (!d->unions || !d->own || !d->counts || !d->recv_bytes || !d->displs)
            return sc_fail(err, SC_ENOMEM, "out of memory");
        for (int k = 0, i = 0; k < np; k++) {
            if (!p[k].sparse) continue;
            if ((rc = sc_row_union_init(&d->unions[i++], p[k].rows, p[k].cols, err))) return rc;
            d->n_unions = i;
        }
    }
    if (ns != d->n_unions) return sc_fail(err, SC_EINTERNAL, "data-parallel step: the sparse parameters changed");
    /* this rank's row counts, then everyone's */
    int64_t *mine = d->counts + (int64_t)d->rank * ns;
    size_t send_bytes = 0;
    for (int k = 0, i = 0; k < np; k++) {
        if (!p[k].sparse) continue;
        if (p[k].rows != d->unions[i].V || p[k].cols != d->unions[i].C)
            return sc_fail(err, SC_EINTERNAL, "data-parallel step: '%s' changed shape", p[k].name);
        mine[i] = p[k].grad ? p[k].n_touched : 0;
        send_bytes += (size_t)mine[i++] * (sizeof(int32_t) + sizeof(float) * (size_t)p[k].cols);
    }
    double t0 = sc_now();
    rc = mpi_check(d, MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, d->counts, ns, MPI_INT64_T, MPI_COMM_WORLD),
                   "MPI_Allgather of the sparse row counts", err);
    d->stats.comm_s += sc_now() - t0;
    if (rc) return rc;
    size_t total = 0;
    for (int r = 0; r < d->size; r++) {
        size_t bytes = 0;
        for (int k = 0, i = 0; k < np; k++)
            if (p[k].sparse)
                bytes += (size_t)d->counts[(int64_t)r * ns + i++] * (sizeof(int32_t) + sizeof(float) * (size_t)p[k].cols);
        if (bytes > INT_MAX)
            return sc_fail(err, SC_EINVAL,
                           "rank %d touched %zu bytes of embedding rows in one step (MPI allows 2 GiB): lower "
                           "--batch-size", r, bytes);
        d->recv_bytes[r] = (int)bytes;
        d->displs[r] = (int)total;
        total += bytes;
    }
    if (total > INT_MAX)
        return sc_fail(err, SC_EINVAL,
                       "one step's embedding rows over all ranks are %zu bytes (MPI allows 2 GiB): lower --batch-size",
                       total);
    if ((rc = grow_bytes(&d->send, &d->send_cap, send_bytes ? send_bytes : 1, err)) ||
        (rc = grow_bytes(&d->recv, &d->recv_cap, total ? total : 1, err)))
        return rc;
    unsigned char *w = d->send;
    for (int k = 0, i = 0; k < np; k++) {
        if (!p[k].sparse) continue;
        size_t n = (size_t)mine[i++], nv = n * (size_t)p[k].cols;
        if (n == 0) continue;
        memcpy(w, p[k].touched, n * sizeof(int32_t));
        w += n * sizeof(int32_t);
        float *g = (float *)w;
        for (size_t j = 0; j < nv; j++) g[j] = p[k].grad[j] * share;
        w += nv * sizeof(float);
    }
    t0 = sc_now();
    rc = mpi_check(d, MPI_Allgatherv(d->send, (int)send_bytes, MPI_BYTE, d->recv, d->recv_bytes, d->displs, MPI_BYTE,
                                     MPI_COMM_WORLD),
                   "MPI_Allgatherv of the embedding gradients", err);
    d->stats.comm_s += sc_now() - t0;
    if (rc) return rc;
    d->stats.sparse_bytes_sent += (double)send_bytes;
    d->stats.sparse_bytes_recv += (double)(total - send_bytes);
    for (int i = 0; i < ns; i++) sc_row_union_begin(&d->unions[i]);
    for (int r = 0; r < d->size; r++) {
        const unsigned char *q = d->recv + d->displs[r];
        for (int i = 0; i < ns; i++) {
            int64_t n = d->counts[(int64_t)r * ns + i];
            const int32_t *ids = (const int32_t *)q;
            const float *g = (const float *)(q + n * sizeof(int32_t));
            if ((rc = sc_row_union_add(&d->unions[i], ids, g, n, err)))
                return sc_fail_prefix(err, "embedding gradients from rank %d: ", r);
            q += (size_t)n * (sizeof(int32_t) + sizeof(float) * (size_t)d->unions[i].C);
        }
    }
    return SC_OK;
}
#endif

int sc_dist_optim_step(sc_dist *d, sc_optim *o, sc_param *p, int np, float lr, sc_error *err) {
    if (!d || d->size == 1) return sc_optim_step(o, lr, err);
#ifdef SC_MPI
    /* each slice's gradient is of its own mean loss: weighting by the slice's share of
       the batch makes the sum the gradient of the batch's mean loss */
    float share = d->batch_n > 0 ? (float)(d->hi - d->lo) / (float)d->batch_n : 0.0f;
    int rc = sum_dense(d, p, np, share, err);
    if (!rc) rc = gather_sparse(d, p, np, share, err);
    if (rc) return rc;
    /* the optimizer reads the unions; this rank's own sparse buffers are put back after */
    for (int k = 0, i = 0; k < np; k++) {
        if (!p[k].sparse) continue;
        d->own[i] = (struct own_rows){p[k].grad, p[k].touched, p[k].n_touched};
        p[k].grad = d->unions[i].grad;
        p[k].touched = d->unions[i].ids;
        p[k].n_touched = d->unions[i].n;
        i++;
    }
    rc = sc_optim_step(o, lr, err);
    for (int k = 0, i = 0; k < np; k++) {
        if (!p[k].sparse) continue;
        p[k].grad = d->own[i].grad;
        p[k].touched = d->own[i].touched;
        p[k].n_touched = d->own[i].n_touched;
        i++;
    }
    d->stats.steps++;
    return rc;
#else
    return sc_fail(err, SC_EINTERNAL, "a job of %d ranks in a build without MPI", d->size);
#endif
}

int sc_dist_bcast(sc_dist *d, void *buf, size_t bytes, sc_error *err) {
    if (!d || d->size == 1) return SC_OK;
#ifdef SC_MPI
    for (size_t at = 0; at < bytes; at += MPI_CHUNK) {
        int n = (int)(bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK);
        int rc = mpi_check(d, MPI_Bcast((unsigned char *)buf + at, n, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast", err);
        if (rc) return rc;
    }
#endif
    (void)buf;
    (void)bytes;
    (void)err;
    return SC_OK;
}

int sc_dist_sum(sc_dist *d, double *x, int n, sc_error *err) {
    if (!d || d->size == 1) return SC_OK;
#ifdef SC_MPI
    return mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce", err);
#else
    (void)x;
    (void)n;
    (void)err;
    return SC_OK;
#endif
}

int sc_dist_agree(sc_dist *d, int rc, sc_error *err) {
    if (!d || d->size == 1) return rc;
#ifdef SC_MPI
    /* the lowest status code and the lowest rank that has it (codes are negative) */
    struct {
        int rc, rank;
    } v = {rc, d->rank};
    int mrc = mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD), "MPI_Allreduce",
                        err);
    if (mrc) return mrc;
    if (rc || !v.rc) return rc;
    return sc_fail(err, v.rc, "rank %d failed (its message is on its stderr)", v.rank);
#else
    (void)err;
    return rc;
#endif
}

int sc_dist_gather_slices(sc_dist *d, float *buf, int64_t n, int64_t width, sc_error *err) {
    if (!d || d->size == 1) return SC_OK;
#ifdef SC_MPI
    if (n * width >= INT_MAX)
        return sc_fail(err, SC_EINVAL, "gathering %lld x %lld values at once (MPI counts stop at 2^31)",
                       (long long)n, (long long)width);
    int *counts = sc_malloc(2 * (size_t)d->size * sizeof *counts), *displs = counts + d->size;
    if (!counts) return sc_fail(err, SC_ENOMEM, "out of memory");
    for (int r = 0; r < d->size; r++) {
        int64_t lo = n * r / d->size, hi = n * (r + 1) / d->size;
        counts[r] = (int)((hi - lo) * width);
        displs[r] = (int)(lo * width);
    }
    float *mine = buf + displs[d->rank];
    int rc = mpi_check(d, MPI_Gatherv(d->rank == 0 ? MPI_IN_PLACE : mine, counts[d->rank], MPI_FLOAT, buf, counts,
                                      displs, MPI_FLOAT, 0, MPI_COMM_WORLD),
                       "MPI_Gatherv", err);
    sc_free(counts);
    return rc;
#else
    (void)buf;
    (void)n;
    (void)width;
    (void)err;
    return SC_OK;
#endif
}

float sc_dist_share(const sc_dist *d) {
    if (!d || d->size == 1) return 1.0f;
    return d->batch_n > 0 ? (float)(d->hi - d->lo) / (float)d->batch_n : 0.0f;
}

int sc_dist_alltoall_counts(sc_dist *d, const int64_t *send, int64_t *recv, int k, sc_error *err) {
    if (!d || d->size == 1) {
        memcpy(recv, send, sizeof(int64_t) * (size_t)k);
        return SC_OK;
    }
#ifdef SC_MPI
    double t0 = sc_now();
    int rc = mpi_check(d, MPI_Alltoall(send, k, MPI_INT64_T, recv, k, MPI_INT64_T, MPI_COMM_WORLD),
                       "MPI_Alltoall of the row counts", err);
    d->stats.comm_s += sc_now() - t0;
    return rc;
#else
    (void)err;
    return sc_fail(err, SC_EINTERNAL, "a job of %d ranks in a build without MPI", d->size);
#endif
}

int sc_dist_alltoallv(sc_dist *d, const void *send, const int64_t *send_bytes, void *recv, const int64_t *recv_bytes,
                      int step_traffic, sc_error *err) {
    if (!d || d->size == 1) {
        if (send_bytes[0] != recv_bytes[0])
            return sc_fail(err, SC_EINTERNAL, "exchange: %lld bytes sent, %lld expected", (long long)send_bytes[0],
                           (long long)recv_bytes[0]);
        if (send_bytes[0]) memmove(recv, send, (size_t)send_bytes[0]);
        return SC_OK;
    }
#ifdef SC_MPI
    int N = d->size;
    int *sc = sc_malloc(4 * (size_t)N * sizeof *sc), *sd = sc + N, *rcnt = sc + 2 * N, *rd = sc + 3 * N;
    if (!sc) return sc_fail(err, SC_ENOMEM, "out of memory");
    int64_t st = 0, rt = 0;
    for (int q = 0; q < N; q++) {
        sc[q] = (int)send_bytes[q];
        sd[q] = (int)st;
        rcnt[q] = (int)recv_bytes[q];
        rd[q] = (int)rt;
        st += send_bytes[q];
        rt += recv_bytes[q];
    }
    if (st > INT_MAX || rt > INT_MAX) {
        sc_free(sc);
        return sc_fail(err, SC_EINVAL,
                       "rank %d would exchange %lld / %lld bytes of embedding rows at once (MPI allows 2 GiB): "
                       "lower --batch-size", d->rank, (long long)st, (long long)rt);
    }
    double t0 = sc_now();
    int rc = mpi_check(d, MPI_Alltoallv(send, sc, sd, MPI_BYTE, recv, rcnt, rd, MPI_BYTE, MPI_COMM_WORLD),
                       "MPI_Alltoallv of embedding rows", err);
    if (step_traffic) {
        d->stats.comm_s += sc_now() - t0;
        d->stats.sparse_bytes_sent += (double)(st - send_bytes[d->rank]);
        d->stats.sparse_bytes_recv += (double)(rt - recv_bytes[d->rank]);
    }
    sc_free(sc);
    return rc;
#else
    (void)send;
    (void)recv;
    (void)step_traffic;
    return sc_fail(err, SC_EINTERNAL, "a job of %d ranks in a build without MPI", d->size);
#endif
}

int sc_dist_bcast_state(sc_dist *d, sc_param *p, int np, sc_optim *o, sc_error *err) {
    if (!d || d->size == 1) return SC_OK;
    int rc = SC_OK;
    for (int k = 0; k < np && !rc; k++) rc = sc_dist_bcast(d, p[k].data, (size_t)p[k].size * sizeof(float), err);
    int ns = o ? sc_optim_n_states(o) : 0;
    for (int k = 0; k < ns && !rc; k++) {
        float *data;
        int64_t size;
        sc_optim_state(o, k, NULL, &data, &size);
        rc = sc_dist_bcast(d, data, (size_t)size * sizeof(float), err);
    }
    if (!rc && o) {
        int64_t step = sc_optim_get_step(o);
        rc = sc_dist_bcast(d, &step, sizeof step, err);
        sc_optim_set_step(o, step);
    }
    return rc;
}

int sc_dist_check_replicas(sc_dist *d, const sc_param *p, int np, const char *what, sc_error *err) {
    if (!d || d->size == 1) return SC_OK;
#ifdef SC_MPI
    XXH3_state_t *h = XXH3_createState();
    if (!h) return sc_fail(err, SC_ENOMEM, "out of memory");
    XXH3_64bits_reset(h);
    for (int k = 0; k < np; k++) XXH3_64bits_update(h, p[k].data, (size_t)p[k].size * sizeof(float));
    uint64_t mine = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    /* min of h and of ~h: equal everywhere iff min(h) == max(h) */
    uint64_t v[2] = {mine, ~mine};
    int rc = mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce",
                       err);
    if (rc) return rc;
    if (v[0] != ~v[1])
        return sc_fail(err, SC_EINTERNAL, "%s: the ranks' model replicas differ (this rank %d's weights hash %016llx)",
                       what, d->rank, (unsigned long long)mine);
    return SC_OK;
#else
    (void)p;
    (void)np;
    (void)what;
    (void)err;
    return SC_OK;
#endif
}

/* ---- LLM work over ranks ---- */

#include <time.h> /* nanosleep, for sc_dist_agree_idle */

int sc_dist_gather_bytes(sc_dist *d, const void *mine, int64_t n, unsigned char **all, int64_t *n_all, sc_error *err) {
    *all = NULL;
    *n_all = 0;
    if (!d || d->size == 1) {
        unsigned char *b = sc_malloc((size_t)n + 1);
        if (!b) return sc_fail(err, SC_ENOMEM, "out of memory for %lld bytes", (long long)n);
        if (n) memcpy(b, mine, (size_t)n);
        b[n] = 0;
        *all = b;
        *n_all = n;
        return SC_OK;
    }
#ifdef SC_MPI
    int64_t *cnt = sc_malloc((size_t)d->size * sizeof *cnt);
    int *counts = sc_malloc(2 * (size_t)d->size * sizeof *counts), *displs = counts ? counts + d->size : NULL;
    int rc = cnt && counts ? SC_OK : sc_fail(err, SC_ENOMEM, "out of memory");
    rc = sc_dist_agree(d, rc, err);
    if (!rc)
        rc = mpi_check(d, MPI_Gather(&n, 1, MPI_INT64_T, cnt, 1, MPI_INT64_T, 0, MPI_COMM_WORLD),
                       "MPI_Gather of the record sizes", err);
    int64_t total = 0;
    if (!rc && d->rank == 0) {
        for (int r = 0; r < d->size; r++) {
            displs[r] = (int)total;
            counts[r] = (int)cnt[r];
            total += cnt[r];
            if (total >= INT_MAX) {
                rc = sc_fail(err, SC_EINVAL, "gathering %lld bytes or more at once (MPI counts stop at 2^31)",
                             (long long)total);
                break;
            }
        }
        if (!rc && !(*all = sc_malloc((size_t)total + 1))) rc = sc_fail(err, SC_ENOMEM, "out of memory for %lld bytes",
                                                                        (long long)total);
    }
    rc = sc_dist_agree(d, rc, err);
    if (!rc)
        rc = mpi_check(d, MPI_Gatherv(mine, (int)n, MPI_BYTE, *all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD),
                       "MPI_Gatherv of the records", err);
    if (!rc && *all) {
        (*all)[total] = 0;
        *n_all = total;
    }
    if (rc) {
        sc_free(*all);
        *all = NULL;
    }
    sc_free(cnt);
    sc_free(counts);
    return rc;
#else
    return SC_OK;
#endif
}

int sc_dist_agree_idle(sc_dist *d, int rc, sc_error *err) {
    if (!d || d->size == 1) return rc;
#ifdef SC_MPI
    struct {
        int rc, rank;
    } v = {rc, d->rank};
    MPI_Request req;
    int mrc = mpi_check(d, MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD, &req),
                        "MPI_Iallreduce", err);
    for (int done = 0; !mrc && !done;) {
        mrc = mpi_check(d, MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test", err);
        if (!mrc && !done) nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (mrc) return mrc;
    if (rc || !v.rc) return rc;
    return sc_fail(err, v.rc, "rank %d failed (its message is on its stderr)", v.rank);
#else
    (void)err;
    return rc;
#endif
}
