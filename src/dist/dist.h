/* Data-parallel training over processes (MPI ranks), with one code path for
 * one process and for many.
 *
 * Built with `make MPI=1` (-DSC_MPI, mpicc), the calls below run over
 * MPI_COMM_WORLD; in the plain build they are their one-process selves (a
 * rank 0 of 1). A NULL sc_dist * is also one process, so library code that
 * never heard of ranks passes NULL.
 *
 * The scheme (llm.c, Horovod): every rank holds a full replica of the model
 * and of the optimizer state, maps the same dataset, computes the same
 * shuffled order, and takes its own contiguous slice of each global batch
 * (sc_dist_slice). After backward, sc_dist_optim_step sums the gradients of
 * all slices, each weighted by its share of the global batch, so the
 * optimizer sees the gradient of the global batch's mean loss, exactly as one
 * process with the whole batch (up to the order of float additions):
 *
 *   - dense tensors: one MPI_Allreduce over all of them, packed;
 *   - embedding tables (sc_param.sparse): only the rows a slice touched
 *     travel, ids and gradient rows, with MPI_Allgatherv; every rank adds
 *     them up in rank order into the union of touched rows, so the lazy
 *     sparse update touches the same rows as on one process and every
 *     replica computes bit-identical sums. The bytes grow with the rows a
 *     batch touches, never with the vocabulary.
 *
 * Every rank applies the same update to the same weights, so replicas stay
 * identical; sc_dist_check_replicas verifies it (a hash per rank).
 *
 * Failure: a rank that fails returns a status like any library call; the
 * others are then waiting in a collective, so the caller (cli/) ends the job
 * with sc_dist_abort. A rank that dies is noticed by the launcher (mpirun,
 * srun), which ends the job. */
#ifndef SC_DIST_DIST_H
#define SC_DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/optim.h"
#include "nn/param.h"

typedef struct sc_dist sc_dist;

/* Join the job: MPI_Init (MPI build, unless already initialised), else one
 * process. argc/argv may be NULL. *out is freed by sc_dist_finalize. */
int sc_dist_init(sc_dist **out, int *argc, char ***argv, sc_error *err);
/* MPI_Finalize (when sc_dist_init initialised MPI) and free. NULL is fine. */
void sc_dist_finalize(sc_dist *d);
/* End every rank of the job with exit status code (MPI_Abort); on one
 * process, returns and lets the caller exit. */
void sc_dist_abort(sc_dist *d, int code);

int sc_dist_rank(const sc_dist *d); /* 0 for NULL */
int sc_dist_size(const sc_dist *d); /* 1 for NULL */

/* This rank's rows [*lo, *hi) of a global batch of n rows: contiguous
 * slices in rank order, sizes differing by at most one (a slice may be
 * empty when n < size). Remembers n and the slice for sc_dist_optim_step. */
void sc_dist_slice(sc_dist *d, int64_t n, int64_t *lo, int64_t *hi);

/* One optimizer step on the global batch's gradient. On entry p[0..np)
 * hold this rank's gradient of the MEAN loss over its slice of the batch
 * last given to sc_dist_slice (dense grad; sparse: touched rows and their
 * gradients). The gradients are summed over ranks weighted by slice size,
 * then sc_optim_step(o, lr) runs on the sum (o must have been created over
 * these params). Dense gradients are left holding the sum; sparse params'
 * grad / touched / n_touched point back at this rank's own buffers on
 * return. Also agrees on interruption (sc_dist_interrupted). */
int sc_dist_optim_step(sc_dist *d, sc_optim *o, sc_param *p, int np, float lr, sc_error *err);

/* Whether to stop: sc_interrupted() on one process; with ranks, whether any
 * rank had been interrupted at the last sc_dist_optim_step, so that all
 * ranks stop after the same step. */
int sc_dist_interrupted(const sc_dist *d);

/* Rank 0's bytes to every rank. */
int sc_dist_bcast(sc_dist *d, void *buf, size_t bytes, sc_error *err);
/* x[0..n) = their sum over ranks (every rank gets the same sum). */
int sc_dist_sum(sc_dist *d, double *x, int n, sc_error *err);

/* Every rank's status rc after a section that any rank may have failed
 * (one that only rank 0 ran: validation, writing files; or one all ran):
 * when a rank failed, every rank returns a failure, the others with a
 * message naming that rank (its own message is on its stderr), so no rank
 * goes on to wait for it in a collective. Returns rc on one process. */
int sc_dist_agree(sc_dist *d, int rc, sc_error *err);

/* Rows spread by sc_dist_slice, collected on rank 0. buf (n, width): on
 * entry this rank's rows [lo, hi) of sc_dist_slice(d, n) hold its results;
 * on return rank 0's buf holds every rank's rows in order (on the other
 * ranks buf is unchanged). n * width must be below 2^31. */
int sc_dist_gather_slices(sc_dist *d, float *buf, int64_t n, int64_t width, sc_error *err);

/* This rank's share of the last sc_dist_slice's batch, (hi - lo) / n: the
 * weight of its mean-loss gradient in the batch's (1 on one process). */
float sc_dist_share(const sc_dist *d);

/* Personalised exchange, for embedding tables sharded over ranks
 * (dist/shard.h). counts: send (size, k) int64, block q for rank q; recv
 * (size, k), block q from rank q. alltoallv: send_bytes[q] bytes (packed in
 * rank order in send) go to rank q, recv_bytes[q] bytes come from rank q
 * (packed in rank order in recv); the caller knows recv_bytes from a counts
 * exchange. step_traffic: count the bytes and seconds in the per-step
 * statistics (a training step's lookups and gradients, not a checkpoint).
 * One process: copies. Every rank's totals must stay below 2 GiB (MPI's
 * int counts): the error says so. */
int sc_dist_alltoall_counts(sc_dist *d, const int64_t *send, int64_t *recv, int k, sc_error *err);
int sc_dist_alltoallv(sc_dist *d, const void *send, const int64_t *send_bytes, void *recv, const int64_t *recv_bytes,
                      int step_traffic, sc_error *err);

/* Make every rank's weights p[0..np) and optimizer state (o may be NULL)
 * equal to rank 0's: after a resume or a reload on rank 0. */
int sc_dist_bcast_state(sc_dist *d, sc_param *p, int np, sc_optim *o, sc_error *err);

/* SC_EINTERNAL naming `what` when the weights p[0..np) are not
 * bit-identical on every rank (a hash of each rank's weights is compared). */
int sc_dist_check_replicas(sc_dist *d, const sc_param *p, int np, const char *what, sc_error *err);

/* What sc_dist_optim_step moved, over all steps so far, for this rank. */
typedef struct sc_dist_stats {
    int64_t steps;
    double dense_bytes;       /* allreduce payload (one copy of the dense gradients and a flag, per step) */
    double sparse_bytes_sent; /* this rank's touched rows: ids and gradient rows (sharded tables:
                                 the ids it looks up, the rows it serves, the gradients it returns) */
    double sparse_bytes_recv; /* the other ranks' touched rows (sharded: what reaches this rank) */
    double comm_s;            /* seconds inside the collectives (including waiting for slower ranks) */
} sc_dist_stats;
void sc_dist_get_stats(const sc_dist *d, sc_dist_stats *out);

/* ---- the union of sparse gradient rows (used by sc_dist_optim_step; its
 * own type so it can be tested without ranks) ----
 *
 * Rows of a table of V rows and C columns are added part by part (one part
 * per rank, in rank order); a row seen before has its gradient added to the
 * earlier one. ids[] lists the union in order of first appearance, grad
 * (n, C) the sums. Bookkeeping is O(rows added), not O(V), per begin. */
typedef struct sc_row_union {
    int64_t V;
    int C;
    int64_t *stamp;   /* (V) the begin() in which the row was last seen */
    int32_t *slot;    /* (V) its index in ids[] then */
    int64_t epoch;
    int32_t *ids;     /* (cap) */
    float *grad;      /* (cap, C) */
    int64_t n, cap;
} sc_row_union;

int sc_row_union_init(sc_row_union *u, int64_t V, int C, sc_error *err);
void sc_row_union_free(sc_row_union *u);
void sc_row_union_begin(sc_row_union *u); /* empty the union, O(1) */
/* Add n rows: ids (n) and their gradients (n, C). An id outside [0, V) is
 * SC_EFORMAT naming it (received bytes are checked); so is running out of
 * memory for the union, as SC_ENOMEM. */
int sc_row_union_add(sc_row_union *u, const int32_t *ids, const float *grad, int64_t n, sc_error *err);

/* ---- LLM work over ranks (cmd_extract, ELEC/MSD text encoding) ---- */

/* Variable-length byte records collected on rank 0: every rank passes its
 * n bytes at mine; rank 0 gets *all (sc_free; n_all bytes, every rank's in
 * rank order, plus a NUL after them), the other ranks *all = NULL, *n_all =
 * 0. One process: a copy of its own bytes. The total must stay below 2 GiB
 * (MPI's int counts): the error says so. */
int sc_dist_gather_bytes(sc_dist *d, const void *mine, int64_t n, unsigned char **all, int64_t *n_all, sc_error *err);

/* sc_dist_agree for ranks that wait while another works alone (rank 0
 * training ELEC or MSD): the same result, but a waiting rank sleeps between
 * polls (a few ms) instead of spinning a core in the collective. */
int sc_dist_agree_idle(sc_dist *d, int rc, sc_error *err);

#endif
