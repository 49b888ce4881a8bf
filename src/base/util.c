#include "base/util.h"

#include "base/alloc.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sc_log_level = SC_LOG_INFO;

void sc_log(int level, const char *fmt, ...) {
    if (level > sc_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double sc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sc_median(double *a, int n) {
    if (n <= 0) return 0;
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

void sc_progress_begin(sc_progress *p, const char *label, int64_t total, const char *unit) {
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start = p->last_draw = sc_now();
    p->enabled = isatty(fileno(stderr)) && sc_log_level >= SC_LOG_INFO;
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
}

static void progress_draw(sc_progress *p, const char *extra) {
    double el = sc_now() - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    if (frac > 1) frac = 1;
    int w = 30, fill = (int)(frac * w);
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = '\0';
    double eta = rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0;
    fprintf(stderr, "\r%s [%s] %3.0f%% %.0f %s/s eta %.0fs %s\033[K", p->label, bar,
            100 * frac, rate, p->unit, eta, extra ? extra : "");
    fflush(stderr);
}

void sc_progress_update(sc_progress *p, int64_t done, const char *extra) {
    p->done = done;
    if (!p->enabled) return;
    double t = sc_now();
    if (t - p->last_draw < 0.1 && done < p->total) return;
    p->last_draw = t;
    progress_draw(p, extra);
}

void sc_progress_end(sc_progress *p) {
    if (!p->enabled) return;
    progress_draw(p, NULL);
    fputc('\n', stderr);
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sc_rng_seed(sc_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sc_rng_next(sc_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sc_rng_uniform(sc_rng *r) { return (double)(sc_rng_next(r) >> 11) * 0x1.0p-53; }

float sc_rng_normal(sc_rng *r) {
    double u1 = sc_rng_uniform(r), u2 = sc_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t sc_rng_below(sc_rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = sc_rng_next(r); while (x >= limit);
    return x % n;
}

void sc_shuffle_i64(int64_t *a, int64_t n, sc_rng *r) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sc_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---- the pool ----
 * Workers sleep on a condition variable between jobs and spin briefly before
 * sleeping. A job is n_tasks tasks handed out one at a time by
 * compare-and-swap on `state` (generation << 32 | next task), so:
 * - the caller takes part and runs whatever no worker has claimed: it never
 *   waits for a worker that has not started (descheduled by another process,
 *   or still asleep); it waits only for tasks already claimed and running;
 * - a worker that is slow (its core shared with a busy process) takes fewer
 *   tasks and the others take the rest, so callers that cut their work into
 *   a few more tasks than threads lose little to a slow thread.
 * Which thread runs a task never changes what the task computes. */
struct sc_pool;
typedef struct {
    struct sc_pool *p;
    int id; /* 1..: workers; the caller is 0 */
} pool_worker_arg;

struct sc_pool {
    int n_threads, started;
    pthread_t th[64];
    pool_worker_arg wa[64];
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* The current job. fn/ctx/n_tasks/active are written before the
     * generation is published and stay fixed until every task of that
     * generation has finished. A worker that wakes late for an old
     * generation claims nothing (its compare-and-swap fails). */
    sc_task_fn fn;
    void *ctx;
    int active; /* workers 1..active-1 take part in this job */
    atomic_int n_tasks, n_done;
    atomic_ullong state;
    int quit;
};

/* pause instructions a waiting thread spins before sleeping: about 0.1 ms,
 * longer than the gap between most parallel sections, short enough not to
 * steal much from other processes on an oversubscribed machine */
enum { SPIN = 2000 };

/* claim and run tasks of generation gen; returns when none is left */
static void pool_drain(sc_pool *p, unsigned gen) {
    for (;;) {
        unsigned long long s = atomic_load_explicit(&p->state, memory_order_acquire);
        if ((unsigned)(s >> 32) != gen) return;
        int i = (int)(s & 0xffffffffu);
        if (i >= atomic_load_explicit(&p->n_tasks, memory_order_acquire)) return;
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1)) continue;
        p->fn(p->ctx, i);
        if (atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel) + 1 == p->n_tasks) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void pool_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *pool_worker(void *arg) {
    pool_worker_arg *w = arg;
    sc_pool *p = w->p;
    pthread_mutex_lock(&p->mu);
    unsigned seen = (unsigned)(atomic_load(&p->state) >> 32);
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        /* spin first: the next job usually follows at once */
        for (int k = 0; k < SPIN && (unsigned)(atomic_load_explicit(&p->state, memory_order_acquire) >> 32) == seen; k++)
            pool_pause();
        pthread_mutex_lock(&p->mu);
        while (!p->quit && (unsigned)(atomic_load(&p->state) >> 32) == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = (unsigned)(atomic_load(&p->state) >> 32);
        int go = w->id < p->active;
        pthread_mutex_unlock(&p->mu);
        if (go) pool_drain(p, seen);
    }
}

/* start workers up to n_threads - 1 (the caller is the n-th); fewer if
 * thread creation fails. Called by the pool's one caller. */
static void pool_grow(sc_pool *p, int n_threads) {
    if (n_threads > 64) n_threads = 64;
    for (int t = p->started + 1; t < n_threads; t++) {
        p->wa[t] = (pool_worker_arg){p, t};
        if (pthread_create(&p->th[t], NULL, pool_worker, &p->wa[t]) != 0) break;
        p->started = t;
    }
    p->n_threads = p->started + 1;
}

static void pool_init(sc_pool *p) {
    memset(p, 0, sizeof *p);
    p->n_threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
}

sc_pool *sc_pool_new(int n_threads) {
    sc_pool *p = sc_calloc(1, sizeof *p);
    if (!p) return NULL;
    pool_init(p);
    pool_grow(p, n_threads);
    return p;
}

/* run the job on the caller and workers 1..n_threads-1 */
static void pool_run(sc_pool *p, int n_tasks, int n_threads, sc_task_fn fn, void *ctx) {
    pthread_mutex_lock(&p->mu);
    /* Close the last job's generation before changing fn, ctx and n_tasks:
     * a worker still in pool_drain for it may have read its state and the
     * new n_tasks, and its compare-and-swap must fail rather than run a task
     * of this job under the old generation (that task would run twice and
     * n_done would count it twice). The closed generation has no task to
     * claim; workers see this job's under the mutex, held until it is set. */
    unsigned gen = (unsigned)(atomic_load(&p->state) >> 32) + 1;
    atomic_store(&p->state, (unsigned long long)gen << 32 | 0x7fffffffu);
    gen++;
    p->fn = fn;
    p->ctx = ctx;
    p->active = n_threads;
    atomic_store(&p->n_tasks, n_tasks);
    atomic_store(&p->n_done, 0);
    atomic_store_explicit(&p->state, (unsigned long long)gen << 32, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_drain(p, gen);
    /* tasks claimed by workers may still run: spin, then sleep */
    for (int k = 0; k < SPIN && atomic_load(&p->n_done) < n_tasks; k++) pool_pause();
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->n_done) < n_tasks) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void sc_pool_run(sc_pool *p, int n_tasks, sc_task_fn fn, void *ctx) {
    if (!p || p->n_threads <= 1 || n_tasks <= 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pool_run(p, n_tasks, p->n_threads, fn, ctx);
}

int sc_pool_threads(const sc_pool *p) { return p ? p->n_threads : 1; }

static void pool_destroy(sc_pool *p) {
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t <= p->started; t++) pthread_join(p->th[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
}

void sc_pool_free(sc_pool *p) {
    if (!p) return;
    pool_destroy(p);
    sc_free(p);
}

/* ---- sc_parallel_for: one process-wide pool, started on first use and
 * grown to the most threads asked for. It is not counted by the allocation
 * wrapper (it lives for the process, like OpenBLAS's threads). One parallel
 * section runs on it at a time: a call made while it is busy (from a task of
 * the running section, or from another thread) runs its tasks inline, which
 * gives the same results. A forked child starts a fresh pool. */
static sc_pool g_pool;
static pthread_mutex_t g_pool_mu = PTHREAD_MUTEX_INITIALIZER; /* held by the running section */
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static void pool_after_fork(void) {
    /* the child has none of the parent's workers; the parent's state is dropped */
    pool_init(&g_pool);
    pthread_mutex_init(&g_pool_mu, NULL);
}

static void pool_global_init(void) {
    pool_init(&g_pool);
    pthread_atfork(NULL, NULL, pool_after_fork);
}

void sc_parallel_for(int n_tasks, int n_threads, sc_task_fn fn, void *ctx) {
    if (n_threads > n_tasks) n_threads = n_tasks;
    if (n_threads <= 1 || pthread_once(&g_pool_once, pool_global_init) != 0 ||
        pthread_mutex_trylock(&g_pool_mu) != 0) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    if (g_pool.n_threads < n_threads) pool_grow(&g_pool, n_threads);
    if (g_pool.n_threads <= 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
    } else {
        pool_run(&g_pool, n_tasks, n_threads < g_pool.n_threads ? n_threads : g_pool.n_threads, fn, ctx);
    }
    pthread_mutex_unlock(&g_pool_mu);
}

int sc_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

void sc_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int sc_interrupted(void) { return interrupted; }
void sc_clear_interrupted(void) { interrupted = 0; }

void sc_strbuf_add(sc_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *t = sc_realloc(b->s, nc);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void sc_strbuf_str(sc_strbuf *b, const char *s) { sc_strbuf_add(b, s, strlen(s)); }
