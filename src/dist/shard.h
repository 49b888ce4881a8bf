/* Embedding tables sharded over ranks by id (train --shard-embeddings;
 * docs/distributed.md), as TorchRec's and HugeCTR's row-wise sharding.
 *
 * Row `id` of a table of V rows belongs to rank id % N, which stores it as
 * its local row id / N, with the row's optimizer state. No rank holds a
 * whole table. A training step:
 *
 *   1. sc_shard_lookup: each rank sends the distinct ids its slice of the
 *      batch uses to their owners (MPI_Alltoallv), the owners read the rows
 *      (a callback), and the rows come back the same way;
 *   2. the rank runs forward and backward on those rows;
 *   3. sc_shard_push_grads: each row's gradient goes back to its owner,
 *      which receives the parts in rank order (a callback) and applies the
 *      lazy sparse update to its rows.
 *
 * What travels grows with the ids a batch uses, never with the vocabulary:
 * per rank and step, 4 bytes per id asked plus 4 bytes per float of the rows
 * received and of the gradients returned.
 *
 * The exchange knows tables only by rows V and row width (floats per row:
 * one table may hold several parameters with the same ids, e.g. a DeepFM
 * field's embedding and its first-order weight). Widths and V are the same
 * on every rank. On one process every id is local and the exchange copies. */
#ifndef SC_DIST_SHARD_H
#define SC_DIST_SHARD_H

#include <stdint.h>

#include "base/error.h"
#include "dist/dist.h"

/* Rows of a V-row table that rank `rank` of `size` owns: ids rank, rank +
 * size, ... */
int64_t sc_shard_local_rows(int64_t V, int rank, int size);

/* Owner side: fill out (n, width) with local rows rows[0..n) of table t. */
typedef void (*sc_shard_read_fn)(void *ctx, int t, const int32_t *rows, int64_t n, float *out);
/* Owner side: gradients grad (n, width) of local rows rows[0..n) of table t,
 * from one rank; called for rank 0's part first, then rank 1's, ... */
typedef int (*sc_shard_add_fn)(void *ctx, int t, const int32_t *rows, const float *grad, int64_t n, sc_error *err);

typedef struct sc_shard_exchange sc_shard_exchange;

/* An exchange for n_tables tables of V[t] rows and width[t] floats per row,
 * over d's ranks (NULL: one process). */
int sc_shard_exchange_create(sc_shard_exchange **out, sc_dist *d, int n_tables, const int64_t *V, const int *width,
                             sc_error *err);
void sc_shard_exchange_free(sc_shard_exchange *x);

/* For every table t: ids[t][0..n[t]) distinct global ids this rank needs;
 * on return rows[t] (n[t], width[t]) hold their values, read by their
 * owners with read(ctx, ...). Every rank calls it, with its own ids (n may
 * be 0). An id outside [0, V) arriving at its owner is SC_EFORMAT. The
 * exchange remembers the ids for sc_shard_push_grads. */
int sc_shard_lookup(sc_shard_exchange *x, const int32_t *const *ids, const int64_t *n, float *const *rows,
                    sc_shard_read_fn read, void *ctx, sc_error *err);

/* The gradients grad[t] (n[t], width[t]) of the rows of the last lookup go
 * to their owners, which receive them through add(ctx, ...) in rank order.
 * Every rank calls it. */
int sc_shard_push_grads(sc_shard_exchange *x, const float *const *grad, sc_shard_add_fn add, void *ctx,
                        sc_error *err);

/* A whole table from rank 0 (a model file or checkpoint it read): rank 0's
 * full (V, cols) goes to every rank's local rows (sc_shard_local_rows,
 * cols), in pieces of bounded size (full is only read on rank 0). */
int sc_shard_scatter(sc_dist *d, const float *full, int64_t V, int cols, float *local, sc_error *err);

/* A whole table gathered to rank 0 a piece at a time, for a file written as
 * it arrives: rank 0 never holds more than a piece (about 16 MiB). Piece p is
 * the rows with ids from p K N on (K local rows of every rank), so the pieces
 * in order are the table in order. Every rank opens a stream over its local
 * rows and calls next until the pieces are done (sc_shard_stream_send does it
 * for a rank that writes nothing); on rank 0, next returns each piece's bytes
 * (valid until the next call), elsewhere nothing. */
typedef struct sc_shard_stream sc_shard_stream;
int64_t sc_shard_n_pieces(int64_t V, int cols, int size);
int sc_shard_stream_open(sc_shard_stream **out, sc_dist *d, const float *local, int64_t V, int cols, sc_error *err);
int sc_shard_stream_next(sc_shard_stream *s, const void **data, uint64_t *bytes, sc_error *err);
/* Whether every piece has been read; release frees rank 0's piece buffers
 * (a read stream's last piece stays readable until then: many streams can
 * be open at once, one being read). */
int sc_shard_stream_done(const sc_shard_stream *s);
void sc_shard_stream_release(sc_shard_stream *s);
void sc_shard_stream_close(sc_shard_stream *s);
int sc_shard_stream_send(sc_dist *d, const float *local, int64_t V, int cols, sc_error *err);

#endif
