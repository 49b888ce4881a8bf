/* The HTTP scoring server (libmicrohttpd, an internal thread pool): the
 * TensorFlow Serving REST endpoints over several models, Prometheus
 * metrics, hot reload with atomic swap, graceful shutdown. docs/serve.md
 * documents every endpoint.
 *
 * Models live in slots; a slot holds the current loaded version with a
 * reference count. A request takes a reference for its whole life, so a
 * reload that swaps the slot never frees a model a request still uses: the
 * old version is freed by whoever drops its last reference. */
#ifndef SC_SERVE_SERVER_H
#define SC_SERVE_SERVER_H

#include <stddef.h>

#include "base/error.h"

#define SC_SERVER_MAX_MODELS 64

typedef struct sc_model_spec {
    const char *name; /* [A-Za-z0-9_.-]+, at most 63 bytes */
    const char *path;
} sc_model_spec;

typedef struct sc_server_config {
    const char *host;      /* an IPv4 or IPv6 address; NULL = 127.0.0.1 */
    int port;              /* 0 = any free port (sc_server_port tells which) */
    int threads;           /* worker threads (and scoring contexts per model); 0 = online CPUs */
    size_t max_body;       /* bytes; a larger body gets 413. 0 = 16 MiB */
    int max_instances;     /* rows per request; 0 = 10000 */
    int timeout_s;         /* a request whose body is not all in this long after its head, or that
                              stalls this long (no byte either way), is closed; 0 = 30 */
    int idle_timeout_s;    /* a connection waiting for a request (new, or kept alive) must send its
                              whole head (request line and headers) within this; 0 = 10 */
    int max_connections;   /* open connections at most; 0 = 1024. Needs that many open files
                              (RLIMIT_NOFILE) plus a few per thread, or the start fails */
    int max_per_ip;        /* open connections from one address at most; 0 = 256, < 0 = no limit */
    int ignore_unknown;    /* 1: columns the model does not read are dropped, not a 400 */
    const char *network;   /* network to serve (NULL: main, or vanilla for ELEC) */
    const char *encoder;   /* MSD: small encoder directory for new items' "item_text" (NULL: none) */
    int bf16;              /* dense layers in bfloat16 (--precision bf16; sc_scorer_options.bf16) */
    int n_models;
    const sc_model_spec *models; /* (n_models) copied */
} sc_server_config;

typedef struct sc_server sc_server;

/* Load every model (all must load), then listen. *out is the caller's;
 * stop it with sc_server_stop. */
int sc_server_start(sc_server **out, const sc_server_config *cfg, sc_error *err);

/* The port the server listens on. */
int sc_server_port(const sc_server *s);

/* Look at every model file: when it changed since it was loaded (device,
 * inode, size, modification time) or force is set, load the new file
 * aside, check it, and swap it in. A file that fails is reported (log,
 * /metrics, GET /v1/models/NAME) and the old version keeps serving; the
 * same failed file is not retried until it changes again or force is set.
 * Returns the number of models that failed to reload. Call from one thread
 * at a time (the one that runs the server loop). */
int sc_server_check_reload(sc_server *s, int force);

/* Stop accepting connections, wait up to drain_s seconds for requests in
 * flight to finish, stop the workers, free everything. NULL is fine. */
void sc_server_stop(sc_server *s, double drain_s);

#endif
