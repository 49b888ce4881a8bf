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

typedef struct {
    sc_task_fn fn;
    void *ctx;
    int n_tasks, n_threads, tid;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    /* static round-robin: thread t runs tasks t, t+T, t+2T, ... */
    for (int i = w->tid; i < w->n_tasks; i += w->n_threads) w->fn(w->ctx, i);
    return NULL;
}

void sc_parallel_for(int n_tasks, int n_threads, sc_task_fn fn, void *ctx) {
    if (n_threads > n_tasks) n_threads = n_tasks;
    if (n_threads <= 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
    pthread_t th[256];
    worker_arg args[256];
    if (n_threads > 256) n_threads = 256;
    int started = 0;
    for (int t = 1; t < n_threads; t++) {
        args[t] = (worker_arg){fn, ctx, n_tasks, n_threads, t};
        if (pthread_create(&th[t], NULL, worker, &args[t]) != 0) break;
        started = t;
    }
    /* If thread creation failed part-way, this thread picks up the rest. */
    args[0] = (worker_arg){fn, ctx, n_tasks, n_threads, 0};
    worker(&args[0]);
    for (int t = started + 1; t < n_threads; t++)
        for (int i = t; i < n_tasks; i += n_threads) fn(ctx, i);
    for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
}

struct sc_pool {
    int n_threads, started;
    pthread_t th[64];
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* The current job. state packs (generation << 32 | next task): a thread
     * claims a task by compare-and-swap, so a worker that wakes late for an
     * old generation claims nothing, and the caller never waits for a worker
     * that did not start: it runs the tasks left itself. fn/ctx/n_tasks are
     * written before the generation is published and stay fixed until every
     * task of that generation has finished. */
    sc_task_fn fn;
    void *ctx;
    atomic_int n_tasks, n_done;
    atomic_ullong state;
    int quit;
};

/* pause instructions a waiting thread spins before sleeping: about 0.1 ms,
 * longer than the gap between a decoder's parallel sections, short enough
 * not to steal much from other processes on an oversubscribed machine */
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
    sc_pool *p = arg;
    unsigned seen = 0;
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
        pthread_mutex_unlock(&p->mu);
        pool_drain(p, seen);
    }
}

sc_pool *sc_pool_new(int n_threads) {
    sc_pool *p = sc_calloc(1, sizeof *p);
    if (!p) return NULL;
    if (n_threads > 64) n_threads = 64;
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int t = 1; t < p->n_threads; t++) {
        if (pthread_create(&p->th[t], NULL, pool_worker, p) != 0) break;
        p->started = t;
    }
    p->n_threads = p->started + 1; /* fewer threads if creation failed part-way */
    return p;
}

void sc_pool_run(sc_pool *p, int n_tasks, sc_task_fn fn, void *ctx) {
    if (!p || p->n_threads <= 1 || n_tasks <= 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i);
        return;
    }
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

int sc_pool_threads(const sc_pool *p) { return p ? p->n_threads : 1; }

void sc_pool_free(sc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t <= p->started; t++) pthread_join(p->th[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    sc_free(p);
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
