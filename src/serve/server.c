/* The HTTP scoring server; see server.h and docs/serve.md. */
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"
#include "serve/request.h"
#include "serve/scorer.h"

/* ---- metrics ---- */

/* Latency buckets of semctr_request_duration_seconds (upper bounds). */
static const double BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
#define NB ((int)(sizeof BUCKETS / sizeof *BUCKETS))

enum { EP_PREDICT, EP_MODEL, EP_MODELS, EP_HEALTH, EP_METRICS, EP_OTHER, EP_COUNT };
static const char *const EP_NAMES[EP_COUNT] = {"predict", "model_status", "models", "healthz", "metrics", "other"};
static const int CODES[] = {200, 400, 404, 405, 413, 500, 503};
#define NCODES ((int)(sizeof CODES / sizeof *CODES))

/* Error kinds: the request parser's (sc_req_error) then the HTTP ones. */
enum { ERR_NOT_FOUND = SC_REQ_KIND_COUNT, ERR_METHOD, ERR_TOO_LARGE, ERR_SCORING, ERR_NON_FINITE, ERR_TIMEOUT, ERR_COUNT };
static const char *err_kind_name(int k) {
    switch (k) {
    case ERR_NOT_FOUND: return "not_found";
    case ERR_METHOD: return "method_not_allowed";
    case ERR_TOO_LARGE: return "body_too_large";
    case ERR_SCORING: return "scoring";
    case ERR_NON_FINITE: return "non_finite_score";
    case ERR_TIMEOUT: return "timeout";
    default: return sc_req_error_name((sc_req_error)k);
    }
}

/* ---- models ---- */

typedef struct loaded {
    sc_scorer *scorer;
    int64_t version;
    double loaded_at; /* unix seconds */
    _Atomic int refs;
} loaded;

typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_sig;

typedef struct model_slot {
    char name[64];
    char path[4096];
    pthread_mutex_t mu; /* guards cur, last_error, failed_sig, has_failed */
    loaded *cur;
    file_sig sig;        /* of the file cur came from */
    file_sig failed_sig; /* of the last file that failed, not retried until it changes */
    int has_failed;      /* the last reload attempt failed */
    char last_error[1024];
    _Atomic uint64_t requests, errors, instances;
    _Atomic uint64_t hist[NB + 1]; /* per bucket (not cumulative); last = +Inf */
    _Atomic uint64_t dur_us;
    _Atomic uint64_t reloads_ok, reloads_failed;
} model_slot;

/* ---- connections ----
 *
 * libmicrohttpd caps the open connections (--max-connections) and closes
 * one that stalls (--timeout, an inactivity timer that any byte resets).
 * What it does not do is done here, on its connection notifications: a
 * per-address cap that is counted (a refused connection is shut down as
 * soon as it is accepted), and deadlines that no trickle of bytes extends: a
 * connection waiting for a request, new or kept alive after a response, must
 * complete the request head (request line and headers) within
 * --idle-timeout, and then its body within --timeout; past its deadline the
 * reaper thread shuts the socket down and libmicrohttpd closes it. So a
 * crowd of connections that send nothing, or a byte now and then
 * (slow-loris, slow POST), holds its slots for a deadline at most, and one
 * address never holds more than --max-connections-per-ip of them. */

enum { CONN_HEAD, CONN_BODY, CONN_BUSY }; /* waiting for a request head, receiving a body, answering */

typedef struct conn {
    struct conn *prev, *next;
    MHD_socket fd;
    struct ip_count *ip; /* NULL when refused */
    int state;           /* CONN_* */
    int shut;            /* shut down by the reaper or refused; libmicrohttpd closes it */
    double deadline;     /* sc_now() by which a CONN_HEAD or CONN_BODY connection must be through */
} conn;

typedef struct ip_count {
    struct ip_count *next;
    unsigned char addr[16];
    int len, n;
} ip_count;

#define IP_BUCKETS 1024

struct sc_server {
    struct MHD_Daemon *daemon;
    int port;
    int threads;
    size_t max_body;
    int max_connections, max_per_ip; /* max_per_ip 0: no limit */
    double idle_timeout, body_timeout;
    pthread_mutex_t conn_mu; /* guards conns, ips and every conn */
    pthread_cond_t conn_cv;  /* wakes the reaper to stop */
    conn *conns;
    ip_count *ips[IP_BUCKETS];
    int n_conns, reaper_stop, reaper_running;
    pthread_t reaper;
    _Atomic uint64_t conns_total, conns_refused_ip, conns_idle_closed;
    sc_request_limits lim;
    char network[32];
    int has_network;
    char encoder[4096];
    int has_encoder;
    int bf16;
    int n_models;
    model_slot *slots;
    double started;
    _Atomic int in_flight;
    _Atomic int stopping;
    _Atomic uint64_t by_code[EP_COUNT][NCODES + 1]; /* last: any other code */
    _Atomic uint64_t errors[ERR_COUNT];
};

static int sig_of(const char *path, file_sig *out) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    memset(out, 0, sizeof *out);
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->size = st.st_size;
    out->mtime = st.st_mtim;
    return 0;
}

static int sig_eq(const file_sig *a, const file_sig *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void loaded_release(loaded *l) {
    if (l && atomic_fetch_sub(&l->refs, 1) == 1) {
        sc_scorer_free(l->scorer);
        sc_free(l);
    }
}

static loaded *slot_acquire(model_slot *m) {
    pthread_mutex_lock(&m->mu);
    loaded *l = m->cur;
    if (l) atomic_fetch_add(&l->refs, 1);
    pthread_mutex_unlock(&m->mu);
    return l;
}

static int load_version(sc_server *s, model_slot *m, int64_t version, loaded **out, sc_error *err) {
    sc_scorer_options o = {0};
    o.network = s->has_network ? s->network : NULL;
    o.encoder = s->has_encoder ? s->encoder : NULL;
    o.bf16 = s->bf16;
    o.max_contexts = s->threads;
    o.threads_per_call = 1;
    sc_scorer *sc;
    int rc = sc_scorer_load(&sc, m->path, &o, err);
    if (rc) return rc;
    loaded *l = sc_calloc(1, sizeof *l);
    if (!l) {
        sc_scorer_free(sc);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    l->scorer = sc;
    l->version = version;
    l->loaded_at = unix_now();
    atomic_init(&l->refs, 1); /* the slot's reference */
    *out = l;
    return SC_OK;
}

int sc_server_check_reload(sc_server *s, int force) {
    int failed = 0;
    for (int i = 0; i < s->n_models; i++) {
        model_slot *m = &s->slots[i];
        file_sig now;
        sc_error err = {0};
        int have = sig_of(m->path, &now) == 0;
        pthread_mutex_lock(&m->mu);
        int changed = have && !sig_eq(&now, &m->sig) && !(m->has_failed && sig_eq(&now, &m->failed_sig));
        int64_t next = m->cur->version + 1;
        int64_t old_version = m->cur->version;
        pthread_mutex_unlock(&m->mu);
        if (!force && !changed) continue;
        loaded *l = NULL;
        int rc;
        if (!have)
            rc = sc_fail(&err, SC_ENOTFOUND, "%s: cannot stat the model file: %s", m->path, strerror(errno));
        else
            rc = load_version(s, m, next, &l, &err);
        /* A file replaced during the load: take the signature from before
         * the load, so a newer file is picked up on the next check. */
        pthread_mutex_lock(&m->mu);
        loaded *old = NULL;
        if (rc) {
            m->has_failed = 1;
            if (have) m->failed_sig = now;
            snprintf(m->last_error, sizeof m->last_error, "%s", err.msg);
        } else {
            old = m->cur;
            m->cur = l;
            m->sig = now;
            m->has_failed = 0;
            m->last_error[0] = '\0';
        }
        pthread_mutex_unlock(&m->mu);
        if (rc) {
            failed++;
            atomic_fetch_add(&m->reloads_failed, 1);
            sc_info("serve: model '%s': reload of %s failed, version %lld keeps serving: %s", m->name,
                   m->path, (long long)old_version, err.msg);
        } else {
            atomic_fetch_add(&m->reloads_ok, 1);
            sc_info("serve: model '%s': version %lld loaded from %s (%s, network %s)", m->name,
                   (long long)next, m->path, sc_scorer_backbone(l->scorer), sc_scorer_network(l->scorer));
            loaded_release(old); /* requests in flight on it keep their references */
        }
    }
    return failed;
}

static ip_count **ip_slot(sc_server *s, const unsigned char *addr, int len) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < len; i++) h = (h ^ addr[i]) * 16777619u;
    ip_count **pp = &s->ips[h % IP_BUCKETS];
    while (*pp && ((*pp)->len != len || memcmp((*pp)->addr, addr, (size_t)len))) pp = &(*pp)->next;
    return pp;
}

/* The address of a connection as bytes (4 for IPv4, 16 for IPv6; an
 * IPv4-mapped IPv6 address counts as its IPv4 address). */
static int peer_addr(struct MHD_Connection *c, unsigned char out[16]) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char V4MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a, V4MAPPED, 12)) {
            memcpy(out, a + 12, 4);
            return 4;
        }
        memcpy(out, a, 16);
        return 16;
    }
    return 0;
}

/* libmicrohttpd's connection notifications, in the thread that serves the
 * connection. It calls CLOSED before it closes the socket, and the reaper
 * shuts sockets down only under conn_mu, so it never touches a closed (or
 * reused) descriptor. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode what) {
    sc_server *s = cls;
    conn *k = *socket_context;
    pthread_mutex_lock(&s->conn_mu);
    if (what == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k = ci ? calloc(1, sizeof *k) : NULL;
        if (k) {
            k->fd = ci->connect_fd;
            k->state = CONN_HEAD;
            k->deadline = sc_now() + s->idle_timeout;
            unsigned char addr[16];
            int len = peer_addr(c, addr);
            ip_count **pp = ip_slot(s, addr, len), *ip = *pp;
            if (s->max_per_ip > 0 && ip && ip->n >= s->max_per_ip) {
                atomic_fetch_add(&s->conns_refused_ip, 1);
                shutdown(k->fd, SHUT_RDWR);
                k->shut = 1;
            } else {
                if (!ip && (ip = calloc(1, sizeof *ip))) {
                    memcpy(ip->addr, addr, (size_t)len);
                    ip->len = len;
                    *pp = ip;
                }
                if (ip) ip->n++;
                k->ip = ip;
            }
            k->next = s->conns;
            if (s->conns) s->conns->prev = k;
            s->conns = k;
            s->n_conns++;
            atomic_fetch_add(&s->conns_total, 1);
        } else if (ci) {
            shutdown(ci->connect_fd, SHUT_RDWR); /* out of memory: refuse it */
        }
        *socket_context = k;
    } else if (k) {
        if (k->ip && --k->ip->n == 0) {
            ip_count **pp = ip_slot(s, k->ip->addr, k->ip->len), *ip = *pp;
            *pp = ip->next;
            free(ip);
        }
        if (k->prev) k->prev->next = k->next;
        else s->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        s->n_conns--;
        free(k);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&s->conn_mu);
}

/* A connection moves on: a request head arrived (CONN_BODY), its body
 * (CONN_BUSY), or its response was sent (CONN_HEAD again, kept alive). */
static void conn_state(sc_server *s, struct MHD_Connection *c, int state) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&s->conn_mu);
    k->state = state;
    k->deadline = sc_now() + (state == CONN_HEAD ? s->idle_timeout : s->body_timeout);
    pthread_mutex_unlock(&s->conn_mu);
}

/* Every 100 ms: shut down the connections whose request head or body is late. */
static void *reaper_main(void *arg) {
    sc_server *s = arg;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->conn_cv, &s->conn_mu, &ts);
        double now = sc_now();
        for (conn *k = s->conns; k; k = k->next)
            if (k->state != CONN_BUSY && !k->shut && now > k->deadline) {
                shutdown(k->fd, SHUT_RDWR);
                k->shut = 1;
                /* a late body is a request that timed out, as libmicrohttpd's own --timeout counts it */
                atomic_fetch_add(k->state == CONN_HEAD ? &s->conns_idle_closed : &s->errors[ERR_TIMEOUT], 1);
            }
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

/* ---- responses ---- */

typedef struct req_state {
    double t0;
    char *body;
    size_t len, cap;
    size_t expect; /* Content-Length, 0 when not given */
    int too_large;
    int counted; /* in in_flight */
} req_state;

/* A body of BODY_MMAP bytes or more lives in pages of its own, which go
 * back to the system when its request ends. Through malloc they would
 * not: glibc raises its mmap threshold to the largest block freed, so the
 * next large bodies come from arenas that keep their memory (four 16 MB
 * bodies left 75 MB resident after they were freed). */
enum { BODY_MMAP = 64 << 10 };

static void body_free(char *p, size_t cap) {
    if (p && cap < BODY_MMAP) free(p);
    else if (p) munmap(p, cap);
}

/* The body grown to cap bytes (its first len kept); NULL when out of memory. */
static char *body_grow(char *old, size_t len, size_t old_cap, size_t cap) {
    if (cap < BODY_MMAP) return realloc(old, cap);
    char *q = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) return NULL;
    if (old) memcpy(q, old, len);
    body_free(old, old_cap);
    return q;
}

static void count(sc_server *s, int ep, int code) {
    int k = NCODES;
    for (int i = 0; i < NCODES; i++)
        if (CODES[i] == code) k = i;
    atomic_fetch_add(&s->by_code[ep][k], 1);
}

/* Queue buf (malloc'ed, ownership passes to libmicrohttpd). */
static enum MHD_Result respond(sc_server *s, struct MHD_Connection *c, int ep, int code, const char *type,
                               char *buf, size_t len) {
    count(s, ep, code);
    if (!buf) {
        code = 500;
        buf = NULL;
        len = 0;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_error(sc_server *s, struct MHD_Connection *c, int ep, int code, int kind,
                                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result respond_error(sc_server *s, struct MHD_Connection *c, int ep, int code, int kind,
                                     const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&s->errors[kind], 1);
    char *esc = sc_json_quote(msg); /* the message may quote a URL or a key: any bytes */
    size_t cap = (esc ? strlen(esc) : 2) + 96;
    char *body = malloc(cap);
    size_t len = 0;
    if (body) len = (size_t)snprintf(body, cap, "{\"error\":%s,\"kind\":\"%s\",\"code\":%d}\n", esc ? esc : "\"\"",
                                     err_kind_name(kind), code);
    free(esc);
    return respond(s, c, ep, code, "application/json", body, len);
}

/* ---- endpoints ---- */

static model_slot *find_slot(sc_server *s, const char *name, size_t n) {
    for (int i = 0; i < s->n_models; i++)
        if (strlen(s->slots[i].name) == n && !strncmp(s->slots[i].name, name, n)) return &s->slots[i];
    return NULL;
}

static void observe(model_slot *m, double dt) {
    int b = NB;
    for (int i = 0; i < NB; i++)
        if (dt <= BUCKETS[i]) {
            b = i;
            break;
        }
    atomic_fetch_add(&m->hist[b], 1);
    atomic_fetch_add(&m->dur_us, (uint64_t)(dt * 1e6));
}

static enum MHD_Result do_predict(sc_server *s, struct MHD_Connection *c, model_slot *m, req_state *st) {
    atomic_fetch_add(&m->requests, 1);
    if (st->too_large) {
        atomic_fetch_add(&m->errors, 1);
        return respond_error(s, c, EP_PREDICT, 413, ERR_TOO_LARGE, "the request body is larger than the limit of %zu bytes (--max-body)",
                             s->max_body);
    }
    loaded *l = slot_acquire(m);
    int nk;
    const char *const *known = sc_scorer_input_columns(l->scorer, &nk);
    sc_request req;
    sc_req_error kind;
    sc_error err = {0};
    int rc = sc_request_parse(st->body, st->len, known, nk, &s->lim, &req, &kind, &err);
    enum MHD_Result res;
    if (rc) {
        atomic_fetch_add(&m->errors, 1);
        res = respond_error(s, c, EP_PREDICT, kind == SC_REQ_NO_MEMORY ? 503 : kind == SC_REQ_TOO_MANY ? 413 : 400,
                            (int)kind, "model '%s': %s", m->name, err.msg);
    } else {
        float *probs = sc_malloc((size_t)req.n_rows * sizeof *probs);
        int bad_row = -1;
        if (!probs) rc = sc_fail(&err, SC_ENOMEM, "out of memory for %d scores", req.n_rows);
        if (!rc) rc = sc_scorer_score(l->scorer, req.n_rows, req.n_cols, req.col_names, req.cells, probs, &bad_row, &err);
        if (rc) {
            atomic_fetch_add(&m->errors, 1);
            if (bad_row >= 0) /* not the client's fault, and never answered as a probability */
                res = respond_error(s, c, EP_PREDICT, 500, ERR_NON_FINITE, "model '%s': instance %d: %s", m->name,
                                    bad_row, err.msg);
            else
                res = respond_error(s, c, EP_PREDICT, 500, ERR_SCORING, "model '%s': scoring failed: %s", m->name, err.msg);
        } else {
            size_t len;
            char *body = sc_predictions_json(probs, req.n_rows, &len);
            atomic_fetch_add(&m->instances, (uint64_t)req.n_rows);
            res = respond(s, c, EP_PREDICT, body ? 200 : 500, "application/json", body, len);
        }
        sc_free(probs);
    }
    sc_request_free(&req);
    loaded_release(l);
    observe(m, sc_now() - st->t0);
    return res;
}

static cJSON *model_status_json(model_slot *m) {
    loaded *l = slot_acquire(m);
    pthread_mutex_lock(&m->mu);
    int failed = m->has_failed;
    char last_error[1024];
    snprintf(last_error, sizeof last_error, "%s", m->last_error);
    pthread_mutex_unlock(&m->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    /* TensorFlow Serving's shape, then semctr's own keys */
    cJSON *vs = cJSON_AddArrayToObject(o, "model_version_status");
    cJSON *v = cJSON_CreateObject();
    char ver[32];
    snprintf(ver, sizeof ver, "%lld", (long long)l->version);
    cJSON_AddStringToObject(v, "version", ver);
    cJSON_AddStringToObject(v, "state", "AVAILABLE");
    cJSON *stt = cJSON_AddObjectToObject(v, "status");
    cJSON_AddStringToObject(stt, "error_code", "OK");
    cJSON_AddStringToObject(stt, "error_message", "");
    cJSON_AddItemToArray(vs, v);
    cJSON_AddNumberToObject(o, "version", (double)l->version);
    cJSON_AddStringToObject(o, "path", m->path);
    cJSON_AddNumberToObject(o, "loaded_at", l->loaded_at);
    cJSON_AddStringToObject(o, "method", sc_scorer_method(l->scorer));
    cJSON_AddStringToObject(o, "network", sc_scorer_network(l->scorer));
    cJSON_AddStringToObject(o, "backbone", sc_scorer_backbone(l->scorer));
    cJSON *rl = cJSON_AddObjectToObject(o, "last_reload");
    cJSON_AddBoolToObject(rl, "failed", failed);
    cJSON_AddStringToObject(rl, "error", last_error);
    cJSON *sch = cJSON_AddObjectToObject(o, "schema");
    int nk;
    const char *const *known = sc_scorer_input_columns(l->scorer, &nk);
    cJSON *cols = cJSON_AddArrayToObject(sch, "input_columns");
    for (int i = 0; i < nk; i++) cJSON_AddItemToArray(cols, cJSON_CreateString(known[i]));
    const sc_schema *schema = sc_scorer_schema(l->scorer);
    const char *label = sc_schema_label_name(schema);
    cJSON_AddStringToObject(sch, "label", label ? label : "");
    int nf;
    const sc_field_info *f = sc_schema_fields(schema, &nf);
    static const char *const KINDS[] = {"categorical", "numeric", "multi", "sequence"};
    cJSON *fa = cJSON_AddArrayToObject(sch, "fields");
    for (int i = 0; i < nf; i++) {
        cJSON *fo = cJSON_CreateObject();
        cJSON_AddStringToObject(fo, "name", f[i].name);
        cJSON_AddStringToObject(fo, "kind", f[i].kind >= 0 && f[i].kind < 4 ? KINDS[f[i].kind] : "?");
        cJSON_AddNumberToObject(fo, "width", f[i].width);
        cJSON_AddNumberToObject(fo, "vocab_size", (double)f[i].vocab_size);
        cJSON_AddItemToArray(fa, fo);
    }
    loaded_release(l);
    return o;
}

static enum MHD_Result send_json(sc_server *s, struct MHD_Connection *c, int ep, cJSON *o) {
    char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    char *body = NULL;
    size_t len = 0;
    if (txt) {
        len = strlen(txt);
        body = malloc(len + 2);
        if (body) {
            memcpy(body, txt, len);
            body[len++] = '\n';
            body[len] = '\0';
        }
    }
    cJSON_free(txt);
    return respond(s, c, ep, body ? 200 : 500, "application/json", body, len);
}

/* A growing text buffer for /metrics. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    int oom;
} tbuf;

static void tb_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(tbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static enum MHD_Result do_metrics(sc_server *s, struct MHD_Connection *c) {
    /* This request counts itself before rendering, so the numbers it shows include it. */
    count(s, EP_METRICS, 200);
    tbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p) return respond(s, c, EP_METRICS, 500, "text/plain", NULL, 0);
    b.p[0] = '\0';
    tb_printf(&b, "# HELP semctr_requests_total HTTP requests by endpoint and status code.\n"
                  "# TYPE semctr_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int k = 0; k <= NCODES; k++) {
            uint64_t v = atomic_load(&s->by_code[e][k]);
            if (k == NCODES)
                tb_printf(&b, "semctr_requests_total{endpoint=\"%s\",code=\"other\"} %llu\n", EP_NAMES[e], (unsigned long long)v);
            else
                tb_printf(&b, "semctr_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n", EP_NAMES[e], CODES[k], (unsigned long long)v);
        }
    tb_printf(&b, "# HELP semctr_request_errors_total Refused or failed requests by kind.\n"
                  "# TYPE semctr_request_errors_total counter\n");
    for (int k = 1; k < ERR_COUNT; k++)
        tb_printf(&b, "semctr_request_errors_total{kind=\"%s\"} %llu\n", err_kind_name(k),
                  (unsigned long long)atomic_load(&s->errors[k]));
    tb_printf(&b, "# HELP semctr_requests_in_flight Requests being received or answered.\n"
                  "# TYPE semctr_requests_in_flight gauge\nsemctr_requests_in_flight %d\n", atomic_load(&s->in_flight));
    pthread_mutex_lock(&s->conn_mu);
    int open_now = s->n_conns;
    pthread_mutex_unlock(&s->conn_mu);
    tb_printf(&b, "# HELP semctr_connections_open Connections open now.\n"
                  "# TYPE semctr_connections_open gauge\nsemctr_connections_open %d\n", open_now);
    tb_printf(&b, "# HELP semctr_connections_max Most connections open at once, in all and from one address (0: no limit).\n"
                  "# TYPE semctr_connections_max gauge\nsemctr_connections_max{scope=\"total\"} %d\n"
                  "semctr_connections_max{scope=\"per_ip\"} %d\n", s->max_connections, s->max_per_ip);
    tb_printf(&b, "# HELP semctr_connections_total Connections accepted, refused ones included.\n"
                  "# TYPE semctr_connections_total counter\nsemctr_connections_total %llu\n",
              (unsigned long long)atomic_load(&s->conns_total));
    tb_printf(&b, "# HELP semctr_connections_closed_total Connections the server closed before a request: refused "
                  "(per_ip_limit), or no whole request head within --idle-timeout (idle_timeout).\n"
                  "# TYPE semctr_connections_closed_total counter\n"
                  "semctr_connections_closed_total{reason=\"per_ip_limit\"} %llu\n"
                  "semctr_connections_closed_total{reason=\"idle_timeout\"} %llu\n",
              (unsigned long long)atomic_load(&s->conns_refused_ip), (unsigned long long)atomic_load(&s->conns_idle_closed));
    tb_printf(&b, "# HELP semctr_uptime_seconds Seconds since the server started.\n"
                  "# TYPE semctr_uptime_seconds gauge\nsemctr_uptime_seconds %.3f\n", sc_now() - s->started);
    static const char *const MH[][3] = {
        {"semctr_predict_requests_total", "counter", "Prediction requests per model."},
        {"semctr_predict_errors_total", "counter", "Prediction requests per model answered with an error."},
        {"semctr_instances_scored_total", "counter", "Rows scored per model."},
        {"semctr_model_version", "gauge", "Version of the model serving now (1 at start, +1 per successful reload)."},
        {"semctr_model_loaded_timestamp_seconds", "gauge", "Unix time the serving version was loaded."},
        {"semctr_model_reload_failed", "gauge", "1 when the last reload attempt failed (the previous version keeps serving)."},
        {"semctr_model_reloads_total", "counter", "Reload attempts per model and result."},
    };
    for (size_t q = 0; q < sizeof MH / sizeof *MH; q++) {
        tb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", MH[q][0], MH[q][2], MH[q][0], MH[q][1]);
        for (int i = 0; i < s->n_models; i++) {
            model_slot *m = &s->slots[i];
            pthread_mutex_lock(&m->mu);
            int64_t ver = m->cur->version;
            double at = m->cur->loaded_at;
            int failed = m->has_failed;
            pthread_mutex_unlock(&m->mu);
            switch (q) {
            case 0: tb_printf(&b, "%s{model=\"%s\"} %llu\n", MH[q][0], m->name, (unsigned long long)atomic_load(&m->requests)); break;
            case 1: tb_printf(&b, "%s{model=\"%s\"} %llu\n", MH[q][0], m->name, (unsigned long long)atomic_load(&m->errors)); break;
            case 2: tb_printf(&b, "%s{model=\"%s\"} %llu\n", MH[q][0], m->name, (unsigned long long)atomic_load(&m->instances)); break;
            case 3: tb_printf(&b, "%s{model=\"%s\"} %lld\n", MH[q][0], m->name, (long long)ver); break;
            case 4: tb_printf(&b, "%s{model=\"%s\"} %.3f\n", MH[q][0], m->name, at); break;
            case 5: tb_printf(&b, "%s{model=\"%s\"} %d\n", MH[q][0], m->name, failed); break;
            case 6:
                tb_printf(&b, "%s{model=\"%s\",result=\"success\"} %llu\n", MH[q][0], m->name,
                          (unsigned long long)atomic_load(&m->reloads_ok));
                tb_printf(&b, "%s{model=\"%s\",result=\"failure\"} %llu\n", MH[q][0], m->name,
                          (unsigned long long)atomic_load(&m->reloads_failed));
                break;
            }
        }
    }
    tb_printf(&b, "# HELP semctr_request_duration_seconds Prediction request latency, from the first byte of the "
                  "request to the response being queued.\n# TYPE semctr_request_duration_seconds histogram\n");
    for (int i = 0; i < s->n_models; i++) {
        model_slot *m = &s->slots[i];
        uint64_t cum = 0;
        for (int k = 0; k <= NB; k++) {
            cum += atomic_load(&m->hist[k]);
            if (k < NB)
                tb_printf(&b, "semctr_request_duration_seconds_bucket{model=\"%s\",le=\"%g\"} %llu\n", m->name, BUCKETS[k],
                          (unsigned long long)cum);
            else
                tb_printf(&b, "semctr_request_duration_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", m->name,
                          (unsigned long long)cum);
        }
        tb_printf(&b, "semctr_request_duration_seconds_sum{model=\"%s\"} %.6f\n", m->name, atomic_load(&m->dur_us) * 1e-6);
        tb_printf(&b, "semctr_request_duration_seconds_count{model=\"%s\"} %llu\n", m->name, (unsigned long long)cum);
    }
    if (b.oom) {
        free(b.p);
        b.p = NULL;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(b.p ? b.len : 0, b.p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    enum MHD_Result ok = MHD_queue_response(c, b.p ? 200 : 500, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result route(sc_server *s, struct MHD_Connection *c, const char *url, const char *method, req_state *st) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/healthz")) {
        if (!get) return respond_error(s, c, EP_HEALTH, 405, ERR_METHOD, "%s /healthz: use GET", method);
        const char *ok = atomic_load(&s->stopping) ? "{\"status\":\"stopping\"}\n" : "{\"status\":\"ok\"}\n";
        return respond(s, c, EP_HEALTH, atomic_load(&s->stopping) ? 503 : 200, "application/json", strdup(ok), strlen(ok));
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return respond_error(s, c, EP_METRICS, 405, ERR_METHOD, "%s /metrics: use GET", method);
        return do_metrics(s, c);
    }
    if (!strcmp(url, "/v1/models") || !strcmp(url, "/v1/models/")) {
        if (!get) return respond_error(s, c, EP_MODELS, 405, ERR_METHOD, "%s /v1/models: use GET", method);
        cJSON *o = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(o, "models");
        for (int i = 0; i < s->n_models; i++) cJSON_AddItemToArray(a, model_status_json(&s->slots[i]));
        return send_json(s, c, EP_MODELS, o);
    }
    const char *pre = "/v1/models/";
    if (!strncmp(url, pre, strlen(pre))) {
        const char *name = url + strlen(pre);
        const char *colon = strchr(name, ':');
        size_t n = colon ? (size_t)(colon - name) : strlen(name);
        if (n && name[n - 1] == '/' && !colon) n--;
        model_slot *m = find_slot(s, name, n);
        int ep = colon ? EP_PREDICT : EP_MODEL;
        if (!m) {
            char list[512] = "";
            for (int i = 0; i < s->n_models; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", s->slots[i].name);
            return respond_error(s, c, ep, 404, ERR_NOT_FOUND, "no model named '%.*s' (serving: %s)",
                                 (int)(n > 100 ? 100 : n), name, list);
        }
        if (colon) {
            if (strcmp(colon, ":predict"))
                return respond_error(s, c, ep, 404, ERR_NOT_FOUND, "unknown verb '%.50s' (only :predict)", colon);
            if (!post) return respond_error(s, c, ep, 405, ERR_METHOD, "%s %.200s: use POST", method, url);
            return do_predict(s, c, m, st);
        }
        if (!get) return respond_error(s, c, ep, 405, ERR_METHOD, "%s %.200s: use GET", method, url);
        return send_json(s, c, ep, model_status_json(m));
    }
    return respond_error(s, c, EP_OTHER, 404, ERR_NOT_FOUND,
                         "no endpoint %.200s (see /v1/models, /v1/models/NAME:predict, /healthz, /metrics)", url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    sc_server *s = cls;
    req_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        st->t0 = sc_now();
        st->counted = 1;
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = st;
        conn_state(s, c, CONN_BODY); /* the head is complete: the body has --timeout */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            st->expect = errno || end == cl ? 0 : (size_t)v;
            if (errno || end == cl || v > s->max_body) {
                /* Refuse before reading the body (curl waits for this on
                 * "Expect: 100-continue"); the connection is closed after. */
                st->too_large = 1;
                if (!strcmp(method, "POST") && !strncmp(url, "/v1/models/", 11) && strchr(url, ':')) {
                    const char *name = url + 11;
                    model_slot *m = find_slot(s, name, (size_t)(strchr(url, ':') - name));
                    if (m) atomic_fetch_add(&m->requests, 1), atomic_fetch_add(&m->errors, 1);
                }
                return respond_error(s, c, EP_PREDICT, 413, ERR_TOO_LARGE,
                                     "the request body (%s bytes) is larger than the limit of %zu bytes (--max-body)", cl,
                                     s->max_body);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->too_large) {
            if (*upload_size > s->max_body - st->len) {
                st->too_large = 1;
                body_free(st->body, st->cap);
                st->body = NULL;
                st->len = st->cap = 0;
            } else {
                if (st->len + *upload_size > st->cap) {
                    size_t cap = st->cap ? st->cap : st->expect ? st->expect : 4096;
                    while (cap < st->len + *upload_size) cap *= 2;
                    if (cap > s->max_body) cap = s->max_body;
                    char *q = body_grow(st->body, st->len, st->cap, cap);
                    if (!q) return MHD_NO;
                    st->body = q;
                    st->cap = cap;
                }
                memcpy(st->body + st->len, upload, *upload_size);
                st->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    conn_state(s, c, CONN_BUSY);
    return route(s, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    sc_server *s = cls;
    req_state *st = *con_cls;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) atomic_fetch_add(&s->errors[ERR_TIMEOUT], 1);
    conn_state(s, c, CONN_HEAD); /* kept alive: the next request head has --idle-timeout */
    if (!st) return;
    if (st->counted) atomic_fetch_sub(&s->in_flight, 1);
    body_free(st->body, st->cap);
    free(st);
    *con_cls = NULL;
}

/* Everything but the daemon and the reaper (stopped before). */
static void free_server(sc_server *s) {
    for (int i = 0; i < s->n_models; i++) {
        loaded_release(s->slots[i].cur);
        pthread_mutex_destroy(&s->slots[i].mu);
    }
    sc_free(s->slots);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->conn_cv);
    sc_free(s);
}

int sc_server_start(sc_server **out, const sc_server_config *cfg, sc_error *err) {
    *out = NULL;
    if (cfg->n_models < 1) return sc_fail(err, SC_EINVAL, "serve: no model given (--model NAME=FILE or --model-dir DIR)");
    if (cfg->n_models > SC_SERVER_MAX_MODELS)
        return sc_fail(err, SC_EINVAL, "serve: %d models, at most %d", cfg->n_models, SC_SERVER_MAX_MODELS);
    if (cfg->port < 0 || cfg->port > 65535) return sc_fail(err, SC_EINVAL, "serve: port %d not in [0, 65535]", cfg->port);
    for (int i = 0; i < cfg->n_models; i++) {
        const char *n = cfg->models[i].name;
        size_t l = n ? strlen(n) : 0;
        if (l == 0 || l > 63 || strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != l)
            return sc_fail(err, SC_EINVAL, "serve: model name '%s' must be 1-63 characters of A-Z a-z 0-9 _ . -", n ? n : "");
        if (!cfg->models[i].path) return sc_fail(err, SC_EINVAL, "serve: model '%s' has no file", n);
        for (int j = 0; j < i; j++)
            if (!strcmp(cfg->models[j].name, n)) return sc_fail(err, SC_EINVAL, "serve: model name '%s' given twice", n);
    }
    /* every connection is a descriptor; so are each worker's epoll and wake-up pipe, the listener, the logs */
    struct rlimit nofile;
    int threads = cfg->threads > 0 ? cfg->threads : sc_default_threads();
    long need = (long)(cfg->max_connections > 0 ? cfg->max_connections : 1024) + 4L * threads + 32;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY && (long)nofile.rlim_cur < need)
        return sc_fail(err, SC_EINVAL,
                       "serve: --max-connections %d with %d threads needs %ld open files, the limit is %ld "
                       "(raise it with ulimit -n, or lower --max-connections)",
                       cfg->max_connections > 0 ? cfg->max_connections : 1024, threads, need, (long)nofile.rlim_cur);
    sc_server *s = sc_calloc(1, sizeof *s);
    if (!s) return sc_fail(err, SC_ENOMEM, "serve: out of memory");
    s->threads = threads;
    s->max_body = cfg->max_body ? cfg->max_body : (size_t)16 << 20;
    s->lim.max_instances = cfg->max_instances > 0 ? cfg->max_instances : 10000;
    s->lim.ignore_unknown = cfg->ignore_unknown;
    s->max_connections = cfg->max_connections > 0 ? cfg->max_connections : 1024;
    s->max_per_ip = cfg->max_per_ip > 0 ? cfg->max_per_ip : cfg->max_per_ip < 0 ? 0 : 256;
    s->idle_timeout = cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : 10;
    s->body_timeout = cfg->timeout_s > 0 ? cfg->timeout_s : 30;
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_cond_init(&s->conn_cv, NULL);
    s->bf16 = cfg->bf16;
    if (cfg->encoder) {
        snprintf(s->encoder, sizeof s->encoder, "%s", cfg->encoder);
        s->has_encoder = 1;
    }
    if (cfg->network) {
        snprintf(s->network, sizeof s->network, "%s", cfg->network);
        s->has_network = 1;
    }
    s->started = sc_now();
    s->slots = sc_calloc((size_t)cfg->n_models, sizeof *s->slots);
    if (!s->slots) {
        free_server(s);
        return sc_fail(err, SC_ENOMEM, "serve: out of memory");
    }
    int rc = SC_OK;
    for (int i = 0; i < cfg->n_models && !rc; i++) {
        model_slot *m = &s->slots[i];
        snprintf(m->name, sizeof m->name, "%s", cfg->models[i].name);
        snprintf(m->path, sizeof m->path, "%s", cfg->models[i].path);
        pthread_mutex_init(&m->mu, NULL);
        s->n_models = i + 1;
        if (sig_of(m->path, &m->sig) != 0) {
            rc = sc_fail(err, SC_ENOTFOUND, "serve: model '%s': cannot open %s: %s", m->name, m->path, strerror(errno));
            break;
        }
        rc = load_version(s, m, 1, &m->cur, err);
        if (rc) sc_fail_prefix(err, "serve: model '%s': ", m->name);
        else
            sc_info("serve: model '%s': version 1 loaded from %s (%s, network %s)", m->name, m->path,
                   sc_scorer_backbone(m->cur->scorer), sc_scorer_network(m->cur->scorer));
    }
    if (rc) {
        free_server(s);
        return rc;
    }
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)cfg->port);
        addr = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)cfg->port);
        addr = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free_server(s);
        return sc_fail(err, SC_EINVAL, "serve: --host '%s' is not an IPv4 or IPv6 address", host);
    }
    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->body_timeout,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->max_connections,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                                 MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        free_server(s);
        return sc_fail(err, SC_EIO, "serve: cannot listen on %s port %d: %s", host, cfg->port,
                       e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        free_server(s);
        return sc_fail(err, SC_ENOMEM, "serve: cannot start the idle-connection thread");
    }
    s->reaper_running = 1;
    *out = s;
    return SC_OK;
}

int sc_server_port(const sc_server *s) { return s->port; }

void sc_server_stop(sc_server *s, double drain_s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    /* Stop accepting; connections already open are served until their
     * requests finish (or the drain time runs out). */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    double t0 = sc_now();
    while (atomic_load(&s->in_flight) > 0 && sc_now() - t0 < drain_s) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&s->conn_mu);
    s->reaper_stop = 1;
    pthread_cond_signal(&s->conn_cv);
    pthread_mutex_unlock(&s->conn_mu);
    if (s->reaper_running) pthread_join(s->reaper, NULL);
    MHD_stop_daemon(s->daemon); /* closes the connections left, each through on_connection */
    free_server(s);
}
