/* Small shared utilities: logging, timers, a progress bar, a deterministic
 * random number generator, a parallel-for over a fixed number of threads,
 * and a flag set by SIGINT/SIGTERM that long loops poll. */
#ifndef SC_BASE_UTIL_H
#define SC_BASE_UTIL_H

#include <stdint.h>
#include <stdio.h>

/* ---- logging: to stderr, level set once by the CLI ---- */
enum { SC_LOG_QUIET = 0, SC_LOG_INFO = 1, SC_LOG_DEBUG = 2 };
extern int sc_log_level;
void sc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sc_info(...) sc_log(SC_LOG_INFO, __VA_ARGS__)

/* ---- time ---- */
double sc_now(void); /* monotonic seconds */

/* Median of a[0..n) (sorts a in place); 0 for n == 0. For timings. */
double sc_median(double *a, int n);

/* ---- progress bar: drawn only when stderr is a terminal ---- */
typedef struct sc_progress {
    const char *label;
    int64_t total, done;
    double start, last_draw;
    int enabled;
    char unit[16]; /* "rows", "texts", ... for the rate */
} sc_progress;
void sc_progress_begin(sc_progress *p, const char *label, int64_t total, const char *unit);
void sc_progress_update(sc_progress *p, int64_t done, const char *extra);
void sc_progress_end(sc_progress *p);

/* ---- deterministic RNG (xoshiro256**, seeded through splitmix64) ---- */
typedef struct sc_rng { uint64_t s[4]; } sc_rng;
void sc_rng_seed(sc_rng *r, uint64_t seed);
uint64_t sc_rng_next(sc_rng *r);
double sc_rng_uniform(sc_rng *r);            /* [0, 1) */
float sc_rng_normal(sc_rng *r);              /* standard normal */
uint64_t sc_rng_below(sc_rng *r, uint64_t n); /* [0, n) without modulo bias */
void sc_shuffle_i64(int64_t *a, int64_t n, sc_rng *r);

/* ---- parallel for: fn(ctx, i) for i in [0, n_tasks) on up to n_threads
 * threads (the caller's included) of a process-wide pool that persists
 * between calls. Tasks are claimed one at a time, so a thread descheduled by
 * another process delays only the task it holds: the others (the caller
 * first) take the rest; cut work into a few more tasks than threads to make
 * use of that. Task i always runs the same work whatever the thread, so
 * results that are written per task are deterministic. n_threads <= 1 runs
 * inline, and so does a call made while the pool runs another section (a
 * nested call, or a second thread's). */
typedef void (*sc_task_fn)(void *ctx, int task);
void sc_parallel_for(int n_tasks, int n_threads, sc_task_fn fn, void *ctx);
int sc_default_threads(void); /* online CPUs */

/* ---- persistent pool: the same contract as sc_parallel_for (fn(ctx, i) for
 * i in [0, n_tasks), each task's result independent of the thread that runs
 * it) without creating threads per call, for loops that run thousands of
 * short parallel sections (a decoder's matrix-vector products: ~150 per
 * token). Tasks are handed out dynamically, so a busy core does not stall
 * the others. Workers spin briefly, then sleep on a condition variable.
 * The caller's thread takes part; n_threads <= 1 runs inline. One caller at
 * a time per pool. sc_pool_new returns NULL when out of memory. */
typedef struct sc_pool sc_pool;
sc_pool *sc_pool_new(int n_threads);
void sc_pool_run(sc_pool *p, int n_tasks, sc_task_fn fn, void *ctx);
int sc_pool_threads(const sc_pool *p); /* 1 for NULL */
void sc_pool_free(sc_pool *p);

/* ---- interruption: sc_install_signal_handlers() makes SIGINT/SIGTERM set a
 * flag instead of killing the process; loops check sc_interrupted(). ---- */
void sc_install_signal_handlers(void);
int sc_interrupted(void);
/* Forget an interruption (a library caller that runs commands again, src/cli/api.c). */
void sc_clear_interrupted(void);

/* Growable NUL-terminated string. Zero-initialise; an allocation failure
 * sets oom and makes later appends no-ops (check oom once at the end);
 * release with sc_free(b.s). */
typedef struct sc_strbuf {
    char *s;
    size_t len, cap;
    int oom;
} sc_strbuf;
void sc_strbuf_add(sc_strbuf *b, const char *s, size_t n);
void sc_strbuf_str(sc_strbuf *b, const char *s);

#endif
